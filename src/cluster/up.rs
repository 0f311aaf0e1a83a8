//! `rkube up` and `rkube down`: start a cluster's processes (etcd, API server, scheduler,
//! controller manager, kubelets), detached, and stop them again.
//!
//! Everything a cluster keeps lives in its state directory (`.rkube/` by default): etcd's
//! data, the logs of every process and `state.json`, which names the processes `down` stops.
//! Certificates go to `certs/` and the admin kubeconfig to `./kubeconfig`.

use std::fs;
use std::io::Write as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::config::{ClusterConfig, Role};
use super::pki::{self, Ca, PkiError};
use crate::storage::EtcdStorage;

#[derive(Debug, Clone)]
pub struct UpOptions {
    pub config: Option<PathBuf>,
    pub name: Option<String>,
    pub state_dir: PathBuf,
    pub certs_dir: PathBuf,
    pub kubeconfig: PathBuf,
    pub port: u16,
    pub bind_address: String,
}

#[derive(Debug, thiserror::Error)]
pub enum UpError {
    #[error(transparent)]
    Pki(#[from] PkiError),
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Failed(String),
    #[error(transparent)]
    Preflight(#[from] super::preflight::PreflightError),
    /// `down` could not stop everything: the state file is kept so a later `down` can.
    #[error(
        "{what}; the cluster's state is kept in {state}: run `rkube down` again once that is fixed"
    )]
    NotStopped { what: String, state: PathBuf },
    #[error("{path}")]
    Config {
        path: String,
        #[source]
        source: super::config::ConfigError,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> UpError {
    let what = what.into();
    move |source| UpError::Io { what, source }
}

/// What `down` needs to find the processes `up` started.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    #[serde(default)]
    pub cluster: String,
    pub etcd_url: String,
    pub server: String,
    /// In start order; stopped in reverse.
    pub processes: Vec<ProcessRecord>,
}

/// One process of the cluster: its pid and a word its command line contains (so that a pid
/// reused by something else is never signalled).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProcessRecord {
    pub name: String,
    pub pid: u32,
    pub marker: String,
    /// How it was started, so that `up` can restart it alone if it died.
    #[serde(default)]
    pub program: PathBuf,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub log: PathBuf,
}

impl State {
    fn all_alive(&self) -> bool {
        !self.processes.is_empty() && self.processes.iter().all(|p| alive(p.pid, &p.marker))
    }

    fn save(&self, dir: &Path) -> Result<(), UpError> {
        let text = serde_json::to_vec_pretty(self).expect("state always serializes");
        pki::write_file(&state_path(dir), &text, false)?;
        Ok(())
    }
}

fn state_path(dir: &Path) -> PathBuf {
    dir.join("state.json")
}

fn read_state(dir: &Path) -> Option<State> {
    let text = fs::read_to_string(state_path(dir)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Whether `pid` is a live process whose command line mentions `name`.
pub(crate) fn alive(pid: u32, name: &str) -> bool {
    if pid == 0 {
        return false;
    }
    fs::read(format!("/proc/{pid}/cmdline"))
        .map(|cmd| String::from_utf8_lossy(&cmd).contains(name))
        .unwrap_or(false)
}

fn free_port() -> Result<u16, UpError> {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").map_err(io("cannot find a free port"))?;
    let port = listener
        .local_addr()
        .map_err(io("cannot find a free port"))?
        .port();
    Ok(port)
}

/// Finds `name` on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

fn step(message: &str) -> Instant {
    print!("{message} ... ");
    let _ = std::io::stdout().flush();
    Instant::now()
}

fn done(started: Instant) {
    println!("ok ({:.1}s)", started.elapsed().as_secs_f64());
}

/// Starts `program` detached from this process, its output appended to `log`.
fn spawn_detached(program: &Path, args: &[String], log: &Path) -> Result<u32, UpError> {
    let out = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(io(format!("cannot open {}", log.display())))?;
    let err = out
        .try_clone()
        .map_err(io("cannot duplicate the log file"))?;
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        // Its own process group: Ctrl-C in the shell that ran `rkube up` does not reach it.
        .process_group(0)
        .spawn()
        .map_err(io(format!("cannot start {}", program.display())))?;
    Ok(child.id())
}

/// Whether the API server behind `kubeconfig` answers `/readyz` with 200.
pub async fn ready(kubeconfig: &Path) -> bool {
    let Ok(config) = kube::config::Kubeconfig::read_from(kubeconfig) else {
        return false;
    };
    let Ok(config) =
        kube::Config::from_custom_kubeconfig(config, &kube::config::KubeConfigOptions::default())
            .await
    else {
        return false;
    };
    let Ok(client) = kube::Client::try_from(config) else {
        return false;
    };
    let Ok(req) = http::Request::get("/readyz").body(Vec::new()) else {
        return false;
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), client.request_text(req)).await,
        Ok(Ok(text)) if text.trim() == "ok"
    )
}

/// etcd's raft timing for one member on loopback: it elects itself within 100 ms of starting
/// rather than after the default second-long election timeout, which was most of `rkube up`
/// (0.3–1.0 s of etcd alone). With no peers there is no one to lose a heartbeat to.
pub const SINGLE_MEMBER_ETCD_FLAGS: [&str; 4] =
    ["--heartbeat-interval", "10", "--election-timeout", "100"];

async fn wait_for(
    what: &str,
    log: &Path,
    deadline: Duration,
    mut check: impl AsyncFnMut() -> bool,
) -> Result<(), UpError> {
    wait_unless_dead(what, log, deadline, &[], &mut check).await
}

/// Polls `check` until it holds, failing at once when one of `watched` (processes it depends
/// on) has exited, with the last line of that process's log.
async fn wait_unless_dead(
    what: &str,
    log: &Path,
    deadline: Duration,
    watched: &[&ProcessRecord],
    check: &mut impl AsyncFnMut() -> bool,
) -> Result<(), UpError> {
    let started = Instant::now();
    while started.elapsed() < deadline {
        if check().await {
            return Ok(());
        }
        if let Some(dead) = watched.iter().find(|p| !alive(p.pid, &p.marker)) {
            return Err(UpError::Failed(format!(
                "{} exited while waiting for {what}: {}; see {}",
                dead.name,
                last_line(&dead.log),
                dead.log.display()
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(UpError::Failed(format!(
        "{what} did not become ready within {}s; see {}",
        deadline.as_secs(),
        log.display()
    )))
}

/// The last non-empty line of a log, without the tracing prefix noise it may carry.
fn last_line(log: &Path) -> String {
    fs::read_to_string(log)
        .ok()
        .and_then(|text| {
            text.lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .map(str::to_string)
        })
        .unwrap_or_else(|| "(its log is empty)".into())
}

/// Brings the cluster up, or returns at once if it is already up and healthy. Nothing is
/// started unless Docker answers and the API server's port is free; when a step fails after
/// processes were started, they are stopped again (as `kind create cluster` deletes what it
/// made), and the state file is kept for `down` to remove containers the kubelets made.
pub async fn up(options: &UpOptions) -> Result<State, UpError> {
    let config = match &options.config {
        Some(path) => {
            let text =
                fs::read_to_string(path).map_err(io(format!("cannot read {}", path.display())))?;
            ClusterConfig::parse(&text).map_err(|source| UpError::Config {
                path: path.display().to_string(),
                source,
            })?
        }
        None => ClusterConfig::single_node(),
    };
    let config = match &options.name {
        Some(name) => config.renamed(name).map_err(|source| UpError::Config {
            path: "--name".into(),
            source,
        })?,
        None => config,
    };
    let port = config.api_server_port.unwrap_or(options.port);
    let state_dir = &options.state_dir;
    // Heartbeats older than this are from an earlier run (data kept across `down`/`up`).
    let since = jiff::Timestamp::now();
    super::preflight::check_docker().await?;
    if let Some(mut state) = read_state(state_dir) {
        let core_alive = state
            .processes
            .iter()
            .filter(|p| p.marker == "etcd" || p.marker == "apiserver")
            .all(|p| alive(p.pid, &p.marker));
        if core_alive && ready(&options.kubeconfig).await {
            if state.all_alive() {
                println!("rkube is already running: API server {}", state.server);
                return Ok(state);
            }
            // etcd and the API server are fine: restart only what died.
            for p in state
                .processes
                .iter_mut()
                .filter(|p| !alive(p.pid, &p.marker))
            {
                let t = step(&format!("Restarting {}", p.name));
                p.pid = spawn_detached(&p.program, &p.args, &p.log)?;
                done(t);
            }
            state.save(state_dir)?;
            let names: Vec<String> = config.nodes.iter().map(|n| n.name.clone()).collect();
            wait_for_nodes(&options.kubeconfig, &state, &names, since).await?;
            return Ok(state);
        }
        let running = stop(&state).await;
        if !running.is_empty() {
            return Err(UpError::Failed(format!(
                "cannot stop {} of the earlier run",
                running.join(", ")
            )));
        }
    }
    let address = config
        .api_server_address
        .clone()
        .unwrap_or_else(|| options.bind_address.clone());
    super::preflight::check_port(&address, port)?;
    let mut started = None;
    let result = start(options, &config, port, since, &mut started).await;
    if result.is_err() {
        if let Some(state) = &started {
            // What cannot be stopped stays in the state file for `down`.
            stop(state).await;
        }
    }
    result
}

/// Waits until every named node is Ready with a heartbeat newer than `since`, failing at once
/// when a kubelet exits.
async fn wait_for_nodes(
    kubeconfig: &Path,
    state: &State,
    names: &[String],
    since: jiff::Timestamp,
) -> Result<(), UpError> {
    let t = step(&format!("Waiting for {} node(s) to be Ready", names.len()));
    let kubelets: Vec<&ProcessRecord> = state
        .processes
        .iter()
        .filter(|p| p.marker == "kubelet")
        .collect();
    let logs = kubelets
        .first()
        .and_then(|p| p.log.parent())
        .map(Path::to_path_buf)
        .unwrap_or_default();
    wait_unless_dead(
        "the nodes",
        &logs,
        Duration::from_secs(60),
        &kubelets,
        &mut async || nodes_ready_since(kubeconfig, names, Some(since)).await,
    )
    .await?;
    done(t);
    Ok(())
}

/// Starts the processes of a fresh cluster; `started` holds what runs so far, for the caller
/// to stop on failure.
async fn start(
    options: &UpOptions,
    config: &ClusterConfig,
    port: u16,
    since: jiff::Timestamp,
    started: &mut Option<State>,
) -> Result<State, UpError> {
    let state_dir = &options.state_dir;
    let logs = state_dir.join("logs");
    fs::create_dir_all(&logs).map_err(io(format!("cannot create {}", logs.display())))?;

    // Pods reach the API server at this host's address on their network, which must exist
    // before the serving certificate can name it.
    let gateway = pod_network_gateway(&config.name).await?;
    let t = step(&format!(
        "Generating certificates in {}",
        options.certs_dir.display()
    ));
    let ca = Ca::load_or_create(&options.certs_dir)?;
    let serving = ca.issue_server(
        &options.certs_dir,
        "apiserver",
        "kube-apiserver",
        &pki::apiserver_hosts(std::slice::from_ref(&gateway)),
    )?;
    let admin = ca.issue_client(
        &options.certs_dir,
        "admin",
        "kubernetes-admin",
        &["system:masters"],
    )?;
    let kubelet_client = ca.issue_client(
        &options.certs_dir,
        "apiserver-kubelet-client",
        "kube-apiserver-kubelet-client",
        &["system:masters"],
    )?;
    let scheduler = ca.issue_client(
        &options.certs_dir,
        "scheduler",
        "system:kube-scheduler",
        &[],
    )?;
    let controller_manager = ca.issue_controller_manager(&options.certs_dir)?;
    // The key pair that signs and verifies service account tokens (kubeadm's sa.key, sa.pub).
    let service_account_key = options.certs_dir.join("sa.key");
    let service_account_public = options.certs_dir.join("sa.pub");
    pki::service_account_key_pair(&service_account_key, &service_account_public)?;
    // Secrets are encrypted at rest with a key made for this cluster.
    let encryption_config = options.certs_dir.join("encryption-config.yaml");
    crate::storage::encryption::ensure_config(&encryption_config).map_err(|source| {
        PkiError::Write {
            path: encryption_config.clone(),
            source,
        }
    })?;
    done(t);

    let etcd_bin = which("etcd").ok_or_else(|| {
        UpError::Failed(
            "etcd is not installed: run scripts/up, or `apt-get install etcd-server`".into(),
        )
    })?;
    let (client_port, peer_port) = (free_port()?, free_port()?);
    let etcd_url = format!("http://127.0.0.1:{client_port}");
    let peer_url = format!("http://127.0.0.1:{peer_port}");
    let etcd_log = logs.join("etcd.log");
    let t = step(&format!("Starting etcd on {etcd_url}"));
    let etcd_args: Vec<String> = [
        "--name".into(),
        "rkube".into(),
        "--data-dir".into(),
        state_dir.join("etcd").display().to_string(),
        "--listen-client-urls".into(),
        etcd_url.clone(),
        "--advertise-client-urls".into(),
        etcd_url.clone(),
        "--listen-peer-urls".into(),
        peer_url.clone(),
        "--initial-advertise-peer-urls".into(),
        peer_url.clone(),
        "--initial-cluster".into(),
        format!("rkube={peer_url}"),
        "--logger".into(),
        "zap".into(),
        "--log-level".into(),
        "warn".into(),
    ]
    .into_iter()
    .chain(SINGLE_MEMBER_ETCD_FLAGS.map(String::from))
    .collect();
    let etcd_pid = spawn_detached(&etcd_bin, &etcd_args, &etcd_log)?;
    let mut state = State {
        cluster: config.name.clone(),
        etcd_url: etcd_url.clone(),
        server: String::new(),
        processes: vec![ProcessRecord {
            name: "etcd".into(),
            pid: etcd_pid,
            marker: "etcd".into(),
            program: etcd_bin.clone(),
            args: etcd_args.clone(),
            log: etcd_log.clone(),
        }],
    };
    state.save(state_dir)?;
    *started = Some(state.clone());
    let endpoints = vec![etcd_url.clone()];
    wait_for(
        "etcd",
        &etcd_log,
        Duration::from_secs(20),
        async || match EtcdStorage::connect(&endpoints).await {
            Ok(etcd) => etcd.healthy().await,
            Err(_) => false,
        },
    )
    .await?;
    done(t);

    let address = config
        .api_server_address
        .clone()
        .unwrap_or_else(|| "127.0.0.1".into());
    let server = format!("https://{address}:{port}");
    state.server = server.clone();
    // Named after the cluster, as kind names them `kind-<name>`, so that kubeconfigs of
    // several clusters merge without one entry replacing another.
    let context = super::kubeconfig::context_name(&config.name);
    super::kubeconfig::write(
        &options.kubeconfig,
        &context,
        &server,
        &ca.cert_pem,
        &context,
        &admin,
    )?;
    let scheduler_kubeconfig = options.certs_dir.join("scheduler.kubeconfig");
    super::kubeconfig::write(
        &scheduler_kubeconfig,
        &context,
        &server,
        &ca.cert_pem,
        "system:kube-scheduler",
        &scheduler,
    )?;
    let controller_manager_kubeconfig = options.certs_dir.join("controller-manager.kubeconfig");
    super::kubeconfig::write(
        &controller_manager_kubeconfig,
        &context,
        &server,
        &ca.cert_pem,
        pki::CONTROLLER_MANAGER_USER,
        &controller_manager,
    )?;
    let apiserver_log = logs.join("apiserver.log");
    let t = step(&format!("Starting the API server on {server}"));
    let exe = std::env::current_exe().map_err(io("cannot find the rkube binary"))?;
    let certs = |f: &Path| f.display().to_string();
    let args: Vec<String> = vec![
        "apiserver".into(),
        "--etcd-servers".into(),
        etcd_url.clone(),
        "--bind-address".into(),
        config
            .api_server_address
            .clone()
            .unwrap_or_else(|| options.bind_address.clone()),
        "--secure-port".into(),
        port.to_string(),
        "--tls-cert-file".into(),
        certs(&serving.cert),
        "--tls-private-key-file".into(),
        certs(&serving.key),
        "--client-ca-file".into(),
        certs(&options.certs_dir.join("ca.crt")),
        "--kubelet-client-certificate".into(),
        certs(&kubelet_client.cert),
        "--kubelet-client-key".into(),
        certs(&kubelet_client.key),
        "--kubelet-certificate-authority".into(),
        certs(&options.certs_dir.join("ca.crt")),
        "--service-account-key-file".into(),
        certs(&service_account_public),
        "--service-account-signing-key-file".into(),
        certs(&service_account_key),
        "--encryption-provider-config".into(),
        certs(&encryption_config),
        "--advertise-address".into(),
        gateway.clone(),
    ];
    let apiserver_pid = spawn_detached(&exe, &args, &apiserver_log)?;
    state.processes.push(ProcessRecord {
        name: "apiserver".into(),
        pid: apiserver_pid,
        marker: "apiserver".into(),
        program: exe.clone(),
        args: args.clone(),
        log: apiserver_log.clone(),
    });
    state.save(state_dir)?;
    *started = Some(state.clone());
    let kubeconfig = options.kubeconfig.clone();
    let apiserver = state.processes.last().cloned().unwrap_or_default();
    wait_unless_dead(
        "the API server",
        &apiserver_log,
        Duration::from_secs(20),
        &[&apiserver],
        &mut async || ready(&kubeconfig).await,
    )
    .await?;
    done(t);

    let t = step("Starting the scheduler");
    let scheduler_log = logs.join("scheduler.log");
    let args: Vec<String> = vec![
        "scheduler".into(),
        "--kubeconfig".into(),
        certs(&scheduler_kubeconfig),
    ];
    let scheduler_pid = spawn_detached(&exe, &args, &scheduler_log)?;
    state.processes.push(ProcessRecord {
        name: "scheduler".into(),
        pid: scheduler_pid,
        marker: "scheduler".into(),
        program: exe.clone(),
        args: args.clone(),
        log: scheduler_log.clone(),
    });
    state.save(state_dir)?;
    *started = Some(state.clone());
    done(t);

    let t = step("Starting the controller manager");
    let log = logs.join("controller-manager.log");
    let args: Vec<String> = vec![
        "controller-manager".into(),
        "--kubeconfig".into(),
        certs(&controller_manager_kubeconfig),
        "--root-ca-file".into(),
        certs(&options.certs_dir.join("ca.crt")),
    ];
    let args = [args, config.controller_manager.args()].concat();
    let pid = spawn_detached(&exe, &args, &log)?;
    state.processes.push(ProcessRecord {
        name: "controller-manager".into(),
        pid,
        marker: "controller-manager".into(),
        program: exe.clone(),
        args,
        log,
    });
    state.save(state_dir)?;
    *started = Some(state.clone());
    done(t);

    // Labels NodeRestriction keeps kubelets from setting (`node-role.kubernetes.io/*`,
    // `node-restriction.kubernetes.io/*`, ...) are set with the admin's credentials once the
    // Node exists, as kubeadm does for kind; the kubelet registers with the others.
    let mut admin_labels: Vec<(String, std::collections::BTreeMap<String, String>)> = Vec::new();
    for node in &config.nodes {
        let t = step(&format!("Starting the kubelet of {}", node.name));
        let creds = ca.issue_client(
            &options.certs_dir,
            &format!("kubelet-{}", node.name),
            &format!("system:node:{}", node.name),
            &["system:nodes"],
        )?;
        let kubeconfig = options
            .certs_dir
            .join(format!("kubelet-{}.kubeconfig", node.name));
        super::kubeconfig::write(
            &kubeconfig,
            &context,
            &server,
            &ca.cert_pem,
            &format!("system:node:{}", node.name),
            &creds,
        )?;
        let host_ip = crate::kubelet::host_ip();
        let serving = ca.issue_server(
            &options.certs_dir,
            &format!("kubelet-{}-serving", node.name),
            &node.name,
            &[
                host_ip,
                "127.0.0.1".into(),
                "localhost".into(),
                node.name.clone(),
            ],
        )?;
        let mut labels = node.labels.clone();
        if node.role == Role::ControlPlane {
            labels.insert(
                "node-role.kubernetes.io/control-plane".into(),
                String::new(),
            );
        }
        let mut args: Vec<String> = vec![
            "kubelet".into(),
            "--node-name".into(),
            node.name.clone(),
            "--kubeconfig".into(),
            certs(&kubeconfig),
            "--cluster".into(),
            config.name.clone(),
            "--root-dir".into(),
            certs(&state_dir.join("kubelet")),
            "--tls-cert-file".into(),
            certs(&serving.cert),
            "--tls-private-key-file".into(),
            certs(&serving.key),
            "--client-ca-file".into(),
            certs(&options.certs_dir.join("ca.crt")),
            "--kubernetes-service-address".into(),
            format!("{gateway}:{port}"),
        ];
        let pairs = |m: &std::collections::BTreeMap<String, String>| {
            m.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        let (restricted, labels): (std::collections::BTreeMap<_, _>, _) = labels
            .into_iter()
            .partition(|(k, _)| crate::apiserver::authz::is_restricted_node_label(k));
        if !restricted.is_empty() {
            admin_labels.push((node.name.clone(), restricted));
        }
        if !labels.is_empty() {
            args.extend(["--node-labels".into(), pairs(&labels)]);
        }
        if !node.capacity.is_empty() {
            args.extend(["--capacity".into(), pairs(&node.capacity)]);
        }
        args.extend(config.kubelet.args());
        if node.taint_control_plane {
            args.extend([
                "--register-with-taints".into(),
                "node-role.kubernetes.io/control-plane:NoSchedule".into(),
            ]);
        }
        let log = logs.join(format!("kubelet-{}.log", node.name));
        let pid = spawn_detached(&exe, &args, &log)?;
        state.processes.push(ProcessRecord {
            name: format!("kubelet {}", node.name),
            pid,
            marker: "kubelet".into(),
            program: exe.clone(),
            args: args.clone(),
            log: log.clone(),
        });
        state.save(state_dir)?;
        *started = Some(state.clone());
        done(t);
    }
    let names: Vec<String> = config.nodes.iter().map(|n| n.name.clone()).collect();
    wait_for_nodes(&options.kubeconfig, &state, &names, since).await?;
    label_nodes(&options.kubeconfig, &admin_labels).await?;
    Ok(state)
}

/// Sets labels on Nodes with the admin's credentials.
async fn label_nodes(
    kubeconfig: &Path,
    labels: &[(String, std::collections::BTreeMap<String, String>)],
) -> Result<(), UpError> {
    if labels.is_empty() {
        return Ok(());
    }
    // kind's nodes get these labels from kubeadm, and its writes are recorded under that name.
    let client = crate::client::for_component(kubeconfig, "kubeadm")
        .await
        .map_err(|e| UpError::Failed(format!("cannot reach the API server to label nodes: {e}")))?;
    let api: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(client);
    for (name, labels) in labels {
        let patch = serde_json::json!({"metadata": {"labels": labels}});
        api.patch(
            name,
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await
        .map_err(|e| UpError::Failed(format!("cannot label node {name}: {e}")))?;
    }
    Ok(())
}

/// Whether every named node reports `Ready=True`.
pub async fn nodes_ready(kubeconfig: &Path, names: &[String]) -> bool {
    nodes_ready_since(kubeconfig, names, None).await
}

/// Whether every named node reports `Ready=True` and, with `since`, has renewed its Lease at
/// or after `since`: a Node kept in etcd from an earlier run still says Ready (until the node
/// lifecycle controller notices its stale heartbeat), so only a fresh heartbeat shows that
/// this run's kubelet is there.
pub async fn nodes_ready_since(
    kubeconfig: &Path,
    names: &[String],
    since: Option<jiff::Timestamp>,
) -> bool {
    let Ok(client) = crate::client::from_kubeconfig(kubeconfig).await else {
        return false;
    };
    if let Some(since) = since {
        let leases: kube::Api<k8s_openapi::api::coordination::v1::Lease> =
            kube::Api::namespaced(client.clone(), "kube-node-lease");
        let Ok(list) = leases.list(&Default::default()).await else {
            return false;
        };
        let fresh = |name: &String| {
            list.items.iter().any(|l| {
                l.metadata.name.as_ref() == Some(name)
                    && l.spec
                        .as_ref()
                        .and_then(|s| s.renew_time.as_ref())
                        .and_then(|t| serde_json::to_value(t).ok())
                        .and_then(|v| v.as_str().and_then(|t| t.parse::<jiff::Timestamp>().ok()))
                        .is_some_and(|renewed| renewed >= since)
            })
        };
        if !names.iter().all(fresh) {
            return false;
        }
    }
    let api: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(client);
    let Ok(list) = api.list(&Default::default()).await else {
        return false;
    };
    names.iter().all(|name| {
        list.items.iter().any(|n| {
            n.metadata.name.as_deref() == Some(name.as_str())
                && n.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
    })
}

/// How long a process may take to exit after SIGTERM before it gets SIGKILL: the 2 s
/// `kill` gives a container by default in kind's `docker stop`-less teardown is the model;
/// every component here exits on SIGTERM within milliseconds when healthy.
const STOP_GRACE: Duration = Duration::from_secs(2);
/// How long the kernel may take to tear a killed process down.
const KILL_WAIT: Duration = Duration::from_secs(2);

/// Stops `processes`, all at once: SIGTERM, then SIGKILL after [`STOP_GRACE`]. Returns the
/// names of those still running afterwards (none, normally).
async fn stop_processes(processes: &[&ProcessRecord]) -> Vec<String> {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let live = |p: &&&ProcessRecord| alive(p.pid, &p.marker);
    let signal = |sig: Signal| {
        for p in processes.iter().filter(live) {
            let _ = kill(Pid::from_raw(p.pid as i32), sig);
        }
    };
    let wait = async |limit: Duration| {
        let started = Instant::now();
        while processes.iter().any(|p| live(&p)) && started.elapsed() < limit {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    signal(Signal::SIGTERM);
    wait(STOP_GRACE).await;
    signal(Signal::SIGKILL);
    wait(KILL_WAIT).await;
    processes
        .iter()
        .filter(live)
        .map(|p| format!("{} (pid {})", p.name, p.pid))
        .collect()
}

/// Stops every process of a cluster (used by `up` before starting afresh or after a failure).
async fn stop(state: &State) -> Vec<String> {
    let all: Vec<&ProcessRecord> = state.processes.iter().collect();
    stop_processes(&all).await
}

/// Makes the cluster's Pod network and returns this host's address on it.
async fn pod_network_gateway(cluster: &str) -> Result<String, UpError> {
    use crate::kubelet::runtime::Runtime as _;
    let network = crate::kubelet::network_name(cluster);
    let unreachable = |e: crate::kubelet::runtime::RuntimeError| {
        UpError::Failed(format!("cannot set up the Pod network {network}: {e} (is dockerd running? `docker info` tells)"))
    };
    let docker = crate::kubelet::docker::DockerRuntime::connect()
        .await
        .map_err(unreachable)?;
    docker.ensure_network(&network).await.map_err(unreachable)?;
    docker
        .network_gateway(&network)
        .await
        .map_err(unreachable)?
        .ok_or_else(|| {
            UpError::Failed(format!(
                "the Docker network {network} has no IPv4 gateway: remove it (`docker network rm {network}`) and run rkube up again"
            ))
        })
}

/// Removes every container of `cluster`, all at once, its network, and the memory-backed
/// directories of its Pods (which hold their tokens and Secrets).
async fn remove_containers(cluster: &str) -> Result<(), UpError> {
    use crate::kubelet::runtime::Runtime as _;
    let docker = crate::kubelet::docker::DockerRuntime::connect()
        .await
        .map_err(|e| UpError::Failed(format!("cannot reach Docker to remove containers: {e}")))?;
    let filter = [(
        crate::kubelet::labels::CLUSTER.to_string(),
        cluster.to_string(),
    )];
    let containers = docker
        .list(&filter)
        .await
        .map_err(|e| UpError::Failed(format!("cannot list the cluster's containers: {e}")))?;
    let removals = containers.iter().map(|c| docker.remove(&c.id));
    let failed: Vec<String> = futures::future::join_all(removals)
        .await
        .into_iter()
        .filter_map(Result::err)
        .map(|e| e.to_string())
        .collect();
    if !failed.is_empty() {
        return Err(UpError::Failed(format!(
            "cannot remove {} container(s): {}",
            failed.len(),
            failed.join("; ")
        )));
    }
    let pods: std::collections::BTreeSet<&String> = containers
        .iter()
        .filter_map(|c| c.labels.get(crate::kubelet::labels::POD_UID))
        .collect();
    for uid in pods {
        match fs::remove_dir_all(crate::kubelet::memory_dir(uid)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(UpError::Failed(format!(
                    "cannot remove {}: {e}",
                    crate::kubelet::memory_dir(uid).display()
                )))
            }
            _ => {}
        }
    }
    let _ = docker
        .remove_network(&crate::kubelet::network_name(cluster))
        .await;
    Ok(())
}

/// Stops the cluster; with `purge`, also deletes its data, certificates and kubeconfig.
///
/// The kubelets stop first, so that none recreates a container while they are removed; then
/// the other processes stop while the containers are removed. The state file is deleted only
/// once nothing it names runs any more: a `down` that failed can be run again.
pub async fn down(options: &UpOptions, purge: bool) -> Result<(), UpError> {
    match read_state(&options.state_dir) {
        Some(state) => {
            let names: Vec<&str> = state
                .processes
                .iter()
                .rev()
                .map(|p| p.name.as_str())
                .collect();
            let t = step(&format!("Stopping {}", names.join(", ")));
            let (kubelets, others): (Vec<&ProcessRecord>, Vec<&ProcessRecord>) =
                state.processes.iter().partition(|p| p.marker == "kubelet");
            let mut running = stop_processes(&kubelets).await;
            let removing = async {
                if state.cluster.is_empty() {
                    Ok(())
                } else {
                    remove_containers(&state.cluster).await
                }
            };
            let (still, removed) = tokio::join!(stop_processes(&others), removing);
            running.extend(still);
            let keep = |what: String| UpError::NotStopped {
                what,
                state: state_path(&options.state_dir),
            };
            if !running.is_empty() {
                println!("failed");
                return Err(keep(format!("cannot stop {}", running.join(", "))));
            }
            if let Err(e) = removed {
                println!("failed");
                return Err(keep(e.to_string()));
            }
            let _ = fs::remove_file(state_path(&options.state_dir));
            done(t);
        }
        None => println!(
            "No rkube cluster is running from {}",
            options.state_dir.display()
        ),
    }
    if purge {
        for dir in [&options.state_dir, &options.certs_dir] {
            if dir.exists() {
                fs::remove_dir_all(dir).map_err(io(format!("cannot remove {}", dir.display())))?;
            }
        }
        let _ = fs::remove_file(&options.kubeconfig);
        println!("Removed the cluster's data, certificates and kubeconfig");
    }
    Ok(())
}
