//! rkube's entry point: parses the command line, owns signals and shutdown, and hands over to
//! one component.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use rkube::cluster::up::{self, UpOptions};
use rkube::meta::duration;

// jemalloc gives freed memory back to the system (after a short decay, from its background
// thread); glibc's malloc keeps most of it, so the API server would stay at its high-water mark
// after large objects come and go.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "rkube",
    version,
    about = "A Kubernetes-compatible control plane"
)]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Subcommand)]
enum Commands {
    /// Serve the Kubernetes API over HTTPS, backed by etcd.
    Apiserver(ApiserverArgs),
    /// Bind unassigned Pods to nodes, as a client of the API server.
    Scheduler {
        /// The kubeconfig naming the API server and the scheduler's credentials.
        #[arg(long)]
        kubeconfig: PathBuf,
    },
    /// Run the controllers (Pod garbage collection), leader-elected, as a client of the API
    /// server.
    ControllerManager(ControllerManagerArgs),
    /// Run the Pods bound to one node through Docker, as a client of the API server.
    Kubelet(KubeletArgs),
    /// Start a cluster (etcd, the API server, the scheduler, a kubelet per node) and return once
    /// every node is Ready.
    Up(ClusterArgs),
    /// Bring up a cluster of its own and measure it against raw etcd and raw Docker in the
    /// same run; prints a table of figures, ratios and goals and plots the latencies.
    Bench(BenchArgs),
    /// Write a kubeconfig for a user of the cluster started by `rkube up`: a client
    /// certificate from the cluster CA (CN the user, O each group), to try RBAC by hand.
    Kubeconfig {
        #[command(flatten)]
        cluster: ClusterArgs,
        /// The user name.
        #[arg(long)]
        user: String,
        /// The user's group (one: the certificate carries a single organization).
        #[arg(long = "group")]
        groups: Vec<String>,
        /// Where to write it (default `<user>.kubeconfig`).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Stop the cluster started by `rkube up`.
    Down {
        #[command(flatten)]
        cluster: ClusterArgs,
        /// Also delete the cluster's data, certificates and kubeconfig.
        #[arg(long)]
        purge: bool,
    },
}

#[derive(clap::Args)]
struct ApiserverArgs {
    /// etcd client URLs, comma-separated.
    #[arg(long, default_value = "http://127.0.0.1:2379", value_delimiter = ',')]
    etcd_servers: Vec<String>,
    /// The key prefix of every object in etcd.
    #[arg(long, default_value = "/registry")]
    etcd_prefix: String,
    #[arg(long, default_value = "0.0.0.0")]
    bind_address: String,
    /// The address the rest of the cluster (Pods) reaches this server at; served on as well
    /// when `--bind-address` does not cover it.
    #[arg(long)]
    advertise_address: Option<std::net::IpAddr>,
    /// The HTTPS port; 0 picks a free one (printed on stdout).
    #[arg(long, default_value_t = 6443)]
    secure_port: u16,
    #[arg(long)]
    tls_cert_file: String,
    #[arg(long)]
    tls_private_key_file: String,
    /// The CA that signs client certificates.
    #[arg(long)]
    client_ca_file: String,
    /// How often etcd history is compacted, e.g. 5m or 30s.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    etcd_compaction_interval: Duration,
    /// How long Events are kept, e.g. 1h.
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    event_ttl: Duration,
    /// The client certificate (and key) the API server presents to kubelets, for logs.
    #[arg(long, requires_all = ["kubelet_client_key", "kubelet_certificate_authority"])]
    kubelet_client_certificate: Option<String>,
    #[arg(long)]
    kubelet_client_key: Option<String>,
    /// The CA that signed the kubelets' serving certificates.
    #[arg(long)]
    kubelet_certificate_authority: Option<String>,
    /// How long a request may take before it is answered 504 (watch and logs excepted).
    #[arg(long, default_value = "1m0s", value_parser = parse_duration)]
    request_timeout: Duration,
    /// Read-only requests in flight at once; the excess gets 429. 0: no limit.
    #[arg(long, default_value_t = 400)]
    max_requests_inflight: usize,
    /// Mutating requests in flight at once; the excess gets 429. 0: no limit.
    #[arg(long, default_value_t = 200)]
    max_mutating_requests_inflight: usize,
    /// How long a client may take to complete the TLS handshake.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    tls_handshake_timeout: Duration,
    /// How long a connection may stay open with no request in progress.
    #[arg(long, default_value = "90s", value_parser = parse_duration)]
    idle_connection_timeout: Duration,
    /// The most memory the watch cache's history of each resource may hold, in MiB.
    #[arg(long, default_value_t = rkube::storage::DEFAULT_HISTORY_MIB)]
    watch_cache_history_mib: usize,
    /// The PEM public key that verifies service account tokens.
    #[arg(long)]
    service_account_key_file: Option<PathBuf>,
    /// The PEM private key (ECDSA P-256) that signs service account tokens; without it the
    /// TokenRequest API is not served.
    #[arg(long)]
    service_account_signing_key_file: Option<PathBuf>,
    /// The issuer (`iss`) of service account tokens.
    #[arg(long, default_value = rkube::apiserver::tokens::DEFAULT_ISSUER)]
    service_account_issuer: String,
    /// The audiences a token must name to be accepted (default: the issuer).
    #[arg(long, value_delimiter = ',')]
    api_audiences: Vec<String>,
    /// An `EncryptionConfiguration` naming the resources encrypted at rest and their keys.
    #[arg(long)]
    encryption_provider_config: Option<PathBuf>,
}

#[derive(clap::Args)]
struct ControllerManagerArgs {
    /// The kubeconfig naming the API server and the credentials
    /// (`system:kube-controller-manager`).
    #[arg(long)]
    kubeconfig: PathBuf,
    /// Run the controllers only while holding the Lease `kube-system/kube-controller-manager`.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    leader_elect: bool,
    /// How long a leader's Lease is valid without renewal.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    leader_elect_lease_duration: Duration,
    /// How long a leader keeps trying to renew before it gives up leading.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    leader_elect_renew_deadline: Duration,
    /// How long candidates wait between tries to acquire or renew.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    leader_elect_retry_period: Duration,
    /// How many terminated Pods may exist before the oldest are deleted; 0 disables it.
    #[arg(long, default_value_t = rkube::controller::podgc::TERMINATED_THRESHOLD)]
    terminated_pod_gc_threshold: usize,
    /// How often the Pod garbage collector runs (upstream's fixed 20s; shorter for tests).
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    pod_gc_period: Duration,
    /// How long a Node must stay missing before its Pods are deleted (upstream's fixed 40s).
    #[arg(long, default_value = "40s", value_parser = parse_duration)]
    pod_gc_quarantine: Duration,
    /// How often the node lifecycle controller looks at the Nodes' heartbeats.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    node_monitor_period: Duration,
    /// How long a Node may stay silent before it is marked unknown and tainted unreachable.
    #[arg(long, default_value = "50s", value_parser = parse_duration)]
    node_monitor_grace_period: Duration,
    /// Which controllers run: `*` for all, `name` to turn one on, `-name` to turn one off
    /// (e.g. `*,-job-controller`).
    #[arg(long, value_delimiter = ',', default_value = "*")]
    controllers: Vec<String>,
    /// The CA bundle published in every namespace as the ConfigMap `kube-root-ca.crt`
    /// (default: the certificate authority of the kubeconfig's cluster).
    #[arg(long)]
    root_ca_file: Option<PathBuf>,
}

#[derive(clap::Args)]
struct KubeletArgs {
    #[arg(long)]
    node_name: String,
    /// The kubeconfig with this node's credentials (`system:node:<name>`).
    #[arg(long)]
    kubeconfig: PathBuf,
    /// The cluster this node belongs to (its Pods join the Docker network `rkube-<cluster>`).
    #[arg(long, default_value = "rkube")]
    cluster: String,
    /// Where Pod volumes are kept.
    #[arg(long, default_value = ".rkube/kubelet")]
    root_dir: PathBuf,
    /// The API server's address as Pods reach it (`ip:port`), given to every container as
    /// `KUBERNETES_SERVICE_HOST` and `KUBERNETES_SERVICE_PORT`.
    #[arg(long)]
    kubernetes_service_address: Option<String>,
    /// Labels to register the node with, `key=value,...`.
    #[arg(long, value_delimiter = ',')]
    node_labels: Vec<String>,
    /// Taints to register the node with, `key=value:Effect,...` (value optional).
    #[arg(long, value_delimiter = ',')]
    register_with_taints: Vec<String>,
    /// Capacity overrides, `cpu=2,memory=4Gi,pods=110`.
    #[arg(long, value_delimiter = ',')]
    capacity: Vec<String>,
    /// The serving certificate of the kubelet's HTTPS port (logs); with the key and client CA.
    #[arg(long, requires_all = ["tls_private_key_file", "client_ca_file"])]
    tls_cert_file: Option<String>,
    #[arg(long)]
    tls_private_key_file: Option<String>,
    #[arg(long)]
    client_ca_file: Option<String>,
    /// The size a container's log file may reach before it is rotated (upstream's
    /// `containerLogMaxSize`), a quantity such as `10Mi`.
    #[arg(long, default_value = "10Mi")]
    container_log_max_size: String,
    /// How many log files a container keeps (upstream's `containerLogMaxFiles`).
    #[arg(long, default_value_t = 5)]
    container_log_max_files: u32,
    /// How long the node's Lease lasts (upstream's `nodeLeaseDurationSeconds`); the kubelet
    /// renews it every quarter of that.
    #[arg(long, default_value_t = 40, value_parser = clap::value_parser!(u32).range(1..))]
    node_lease_duration_seconds: u32,
    /// How often the kubelet posts the node's conditions (upstream's
    /// `--node-status-update-frequency`).
    #[arg(long, default_value = "10s", value_parser = parse_positive_duration)]
    node_status_update_frequency: Duration,
}

#[derive(clap::Args)]
struct BenchArgs {
    /// Every workload at a small size: checks that the bench works, measures nothing.
    #[arg(long)]
    quick: bool,
    /// Where the table (`bench.md`) and the plot (`bench.png`) are written.
    #[arg(long, default_value = "bench")]
    out: PathBuf,
    /// Only these workloads (comma-separated), e.g. to profile one; the table then holds
    /// their rows alone.
    #[arg(long, value_enum, value_delimiter = ',')]
    only: Vec<rkube::bench::Workload>,
}

#[derive(clap::Args)]
struct ClusterArgs {
    /// A kind-style cluster config (`kind: Cluster`); without it, one schedulable node.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The cluster's name (overrides the config's `name`, as `kind --name` does).
    #[arg(long)]
    name: Option<String>,
    /// Where the cluster keeps its data and logs.
    #[arg(long, default_value = ".rkube")]
    state_dir: PathBuf,
    #[arg(long, default_value = "certs")]
    certs_dir: PathBuf,
    #[arg(long, default_value = "kubeconfig")]
    kubeconfig: PathBuf,
    /// The API server's port.
    #[arg(long, default_value_t = 6443)]
    port: u16,
    #[arg(long, default_value = "0.0.0.0")]
    bind_address: String,
}

impl ClusterArgs {
    fn options(&self) -> UpOptions {
        UpOptions {
            config: self.config.clone(),
            name: self.name.clone(),
            state_dir: self.state_dir.clone(),
            certs_dir: self.certs_dir.clone(),
            kubeconfig: self.kubeconfig.clone(),
            port: self.port,
            bind_address: self.bind_address.clone(),
        }
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    duration::parse(text).map_err(|e| e.to_string())
}

fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    match parse_duration(text)? {
        d if d.is_zero() => Err("must be longer than zero".into()),
        d => Ok(d),
    }
}

/// Starts jemalloc's background thread, which gives freed memory back to the system after a
/// short decay even when the process is idle (without it, only a later allocation does).
fn return_freed_memory() {
    if let Err(e) = tikv_jemalloc_ctl::background_thread::write(true) {
        tracing::warn!(error = %e, "jemalloc's background thread did not start: freed memory returns more slowly");
    }
}

/// Cancels `token` on SIGINT or SIGTERM.
fn cancel_on_signals(token: CancellationToken) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    tokio::spawn(async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        token.cancel();
    });
    Ok(())
}

/// Prints a failure as `error: what: why` on one line, each cause once, and exits 1: errors
/// are for the user, so no Rust `Debug` form and no backtrace, whatever RUST_BACKTRACE says.
#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", rkube::cluster::report::error_chain(e.as_ref()));
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,kube_client=off")),
        )
        .with_writer(std::io::stderr)
        .init();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    match cli.command {
        Commands::Apiserver(args) => {
            let shutdown = CancellationToken::new();
            cancel_on_signals(shutdown.clone())?;
            let address = format!("{}:{}", args.bind_address, args.secure_port);
            let listener = tokio::net::TcpListener::bind(&address)
                .await
                .with_context(|| format!("cannot listen on {address}: is another API server running? Pass --secure-port"))?;
            let local = listener.local_addr().context("listener has no address")?;
            let mut extra = Vec::new();
            if let Some(advertised) = args.advertise_address {
                let covered = local.ip().is_unspecified() || local.ip() == advertised;
                if !covered {
                    let address = std::net::SocketAddr::new(advertised, local.port());
                    extra.push(tokio::net::TcpListener::bind(address).await.with_context(|| {
                        format!("cannot listen on the advertise address {address}: is it an address of this host?")
                    })?);
                }
            }
            println!("listening on {local}");
            let config = rkube::apiserver::Config {
                etcd_servers: args.etcd_servers,
                etcd_prefix: args.etcd_prefix.clone(),
                cert_file: args.tls_cert_file,
                key_file: args.tls_private_key_file,
                client_ca_file: args.client_ca_file,
                compaction_interval: args.etcd_compaction_interval,
                event_ttl: args.event_ttl,
                kubelet_client: match (
                    args.kubelet_certificate_authority,
                    args.kubelet_client_certificate,
                    args.kubelet_client_key,
                ) {
                    (Some(ca), Some(cert), Some(key)) => Some((ca, cert, key)),
                    _ => None,
                },
                limits: rkube::apiserver::filters::Limits {
                    request_timeout: args.request_timeout,
                    max_requests_inflight: args.max_requests_inflight,
                    max_mutating_requests_inflight: args.max_mutating_requests_inflight,
                    tls_handshake_timeout: args.tls_handshake_timeout,
                    idle_timeout: args.idle_connection_timeout,
                },
                history_bytes: args.watch_cache_history_mib.saturating_mul(1 << 20),
                encryption: std::sync::Arc::new(match &args.encryption_provider_config {
                    Some(path) => {
                        rkube::storage::encryption::Encryption::load(path, &args.etcd_prefix)?
                    }
                    None => rkube::storage::encryption::Encryption::default(),
                }),
                tokens: std::sync::Arc::new(rkube::apiserver::tokens::Tokens::load(
                    args.service_account_key_file.as_deref(),
                    args.service_account_signing_key_file.as_deref(),
                    &args.service_account_issuer,
                    &args.api_audiences,
                )?),
            };
            return_freed_memory();
            rkube::apiserver::run(listener, extra, config, shutdown).await?;
        }
        Commands::Scheduler { kubeconfig } => {
            let shutdown = CancellationToken::new();
            cancel_on_signals(shutdown.clone())?;
            let client = rkube::client::for_component(&kubeconfig, "kube-scheduler").await?;
            return_freed_memory();
            rkube::scheduler::run(client, shutdown).await?;
        }
        Commands::ControllerManager(args) => {
            use rkube::controller::{self, leaderelection};
            let shutdown = CancellationToken::new();
            cancel_on_signals(shutdown.clone())?;
            let client =
                rkube::client::for_component(&args.kubeconfig, "kube-controller-manager").await?;
            let leader_election = args.leader_elect.then(|| {
                let mut election = leaderelection::LeaderElectionConfig::new(
                    controller::LEASE_NAMESPACE,
                    controller::LEASE_NAME,
                    &leaderelection::default_identity(),
                );
                election.lease_duration = args.leader_elect_lease_duration;
                election.renew_deadline = args.leader_elect_renew_deadline;
                election.retry_period = args.leader_elect_retry_period;
                election
            });
            let controllers = controller::Selection::parse(&args.controllers)
                .map_err(|e| anyhow::anyhow!("--controllers: {e}"))?;
            let config = controller::ControllerManagerConfig {
                controllers,
                leader_election,
                pod_gc: controller::podgc::PodGcConfig {
                    check_period: args.pod_gc_period,
                    quarantine: args.pod_gc_quarantine,
                    terminated_threshold: args.terminated_pod_gc_threshold,
                },
                node_lifecycle: controller::nodelifecycle::NodeLifecycleConfig {
                    monitor_period: args.node_monitor_period,
                    grace_period: args.node_monitor_grace_period,
                },
                root_ca: controller::serviceaccounts::root_ca(
                    args.root_ca_file.as_deref(),
                    &args.kubeconfig,
                )?,
            };
            return_freed_memory();
            controller::run(client, config, shutdown).await?;
        }
        Commands::Kubelet(args) => {
            let shutdown = CancellationToken::new();
            cancel_on_signals(shutdown.clone())?;
            let client = rkube::client::for_component(&args.kubeconfig, "kubelet").await?;
            let log_max_size = rkube::meta::quantity::Quantity::parse(&args.container_log_max_size)
                .ok()
                .map(|q| q.value())
                .filter(|bytes| *bytes > 0)
                .with_context(|| {
                    format!(
                        "--container-log-max-size {:?} is not a positive quantity such as 10Mi",
                        args.container_log_max_size
                    )
                })?;
            anyhow::ensure!(
                args.container_log_max_files >= 2,
                "--container-log-max-files must be at least 2, as upstream requires"
            );
            let runtime = rkube::kubelet::docker::DockerRuntime::connect()
                .await
                .context("cannot reach the Docker engine: is dockerd running?")?
                .with_container_log_rotation(
                    u64::try_from(log_max_size).unwrap_or(u64::MAX),
                    args.container_log_max_files,
                );
            let pairs = |list: &[String],
                         what: &str|
             -> anyhow::Result<std::collections::BTreeMap<String, String>> {
                list.iter()
                    .filter(|s| !s.is_empty())
                    .map(|kv| {
                        kv.split_once('=')
                            .map(|(k, v)| (k.to_string(), v.to_string()))
                            .with_context(|| format!("{what} {kv:?} is not key=value"))
                    })
                    .collect()
            };
            let taints = args
                .register_with_taints
                .iter()
                .filter(|s| !s.is_empty())
                .map(|t| {
                    let (kv, effect) = t
                        .split_once(':')
                        .with_context(|| format!("taint {t:?} is not key[=value]:Effect"))?;
                    let (key, value) = kv.split_once('=').unwrap_or((kv, ""));
                    Ok(serde_json::json!({"key": key, "value": value, "effect": effect}))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let config = rkube::kubelet::KubeletConfig {
                node_name: args.node_name.clone(),
                cluster: args.cluster,
                // Docker bind-mounts need absolute paths.
                root_dir: std::path::absolute(args.root_dir.join(&args.node_name))
                    .context("cannot resolve --root-dir")?,
                labels: pairs(&args.node_labels, "label")?,
                taints,
                capacity: pairs(&args.capacity, "capacity")?,
                host_ip: rkube::kubelet::host_ip(),
                heartbeats: rkube::kubelet::Heartbeats {
                    lease_seconds: args.node_lease_duration_seconds,
                    status_every: args.node_status_update_frequency,
                },
                kubernetes_service: match &args.kubernetes_service_address {
                    Some(address) => {
                        let parsed: std::net::SocketAddr = address.parse().with_context(|| {
                            format!("--kubernetes-service-address {address:?} is not host:port, e.g. 172.18.0.1:6443")
                        })?;
                        Some((parsed.ip().to_string(), parsed.port()))
                    }
                    None => None,
                },
                tls: match (
                    args.tls_cert_file,
                    args.tls_private_key_file,
                    args.client_ca_file,
                ) {
                    (Some(c), Some(k), Some(ca)) => Some((c, k, ca)),
                    _ => None,
                },
            };
            return_freed_memory();
            rkube::kubelet::run(client, std::sync::Arc::new(runtime), config, shutdown).await?;
        }
        Commands::Up(args) => {
            let state = up::up(&args.options()).await?;
            let locations = rkube::cluster::report::Locations {
                program: std::env::current_exe().unwrap_or_else(|_| "rkube".into()),
                name: args.name.clone(),
                state_dir: args.state_dir.clone(),
                certs_dir: args.certs_dir.clone(),
                kubeconfig: args.kubeconfig.clone(),
            };
            let cwd = std::env::current_dir().context("cannot read the current directory")?;
            println!();
            print!(
                "{}",
                rkube::cluster::report::next_steps(
                    &cwd,
                    &locations,
                    &state.server,
                    &state.etcd_url
                )
            );
        }
        Commands::Bench(args) => {
            rkube::bench::run(&rkube::bench::BenchOptions {
                quick: args.quick,
                out: args.out,
                only: args.only,
            })
            .await?;
        }
        Commands::Kubeconfig {
            cluster,
            user,
            groups,
            out,
        } => {
            let out = out.unwrap_or_else(|| PathBuf::from(format!("{user}.kubeconfig")));
            let groups: Vec<&str> = groups.iter().map(String::as_str).collect();
            rkube::cluster::kubeconfig::write_for_user(
                &cluster.certs_dir,
                &cluster.kubeconfig,
                &user,
                &groups,
                &out,
            )?;
            println!("{}", out.display());
        }
        Commands::Down { cluster, purge } => up::down(&cluster.options(), purge).await?,
    }
    Ok(())
}
