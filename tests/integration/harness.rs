//! The test cluster: real etcd and the real `rkube apiserver` on free ports, with a kubeconfig
//! in a temp dir. The handle kills its processes and removes its files when dropped, also
//! when a test fails.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use rkube::cluster::{kubeconfig, pki};

/// A process killed when the handle goes away.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub struct TestClusterBuilder {
    compaction: Option<String>,
    scheduler: bool,
    apiserver_args: Vec<String>,
}

pub struct TestCluster {
    // Dropped in order: the API server before etcd, both before the temp dir.
    scheduler: Option<Process>,
    controller_managers: Vec<Option<Process>>,
    /// The controllers every cluster needs before it takes a Pod: the `default` account
    /// (ServiceAccount admission refuses Pods without one) and `kube-root-ca.crt`.
    _accounts: Process,
    _apiserver: Process,
    _etcd: Process,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
    pub server: String,
    /// The cluster's own etcd, for tests that check what is stored.
    pub etcd_url: String,
    certs: PathBuf,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("the loopback interface has free ports")
}

/// Starts a one-member etcd in `dir` on free ports and waits until it answers. A port that
/// was free when picked may be taken before etcd binds it (another test's process): etcd
/// then exits, and it is started again on other ports.
async fn start_etcd(dir: &std::path::Path) -> (Process, String) {
    let log_path = dir.join("etcd.log");
    for _ in 0..3 {
        let (client_port, peer_port) = (free_port(), free_port());
        let etcd_url = format!("http://127.0.0.1:{client_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let etcd_log = std::fs::File::create(&log_path).expect("log file");
        let _ = std::fs::remove_dir_all(dir.join("etcd"));
        let etcd = Command::new("etcd")
            .args(["--name", "test", "--data-dir"])
            .arg(dir.join("etcd"))
            .args([
                "--listen-client-urls",
                &etcd_url,
                "--advertise-client-urls",
                &etcd_url,
            ])
            .args([
                "--listen-peer-urls",
                &peer_url,
                "--initial-advertise-peer-urls",
                &peer_url,
            ])
            .args(["--initial-cluster", &format!("test={peer_url}")])
            .args(["--logger", "zap", "--log-level", "error"])
            .args(rkube::cluster::up::SINGLE_MEMBER_ETCD_FLAGS)
            .stdout(Stdio::null())
            .stderr(etcd_log)
            .spawn()
            .expect("etcd runs (scripts/test installs etcd-server)");
        let mut etcd = Process(etcd);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(storage) =
                rkube::storage::EtcdStorage::connect(std::slice::from_ref(&etcd_url)).await
            {
                if storage.healthy().await {
                    return (etcd, etcd_url);
                }
            }
            if etcd.0.try_wait().ok().flatten().is_some() {
                break;
            }
            if Instant::now() >= deadline {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                panic!("etcd did not start within 20 s:\n{log}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    panic!("etcd exited three times on ports it was given:\n{log}");
}

impl TestCluster {
    pub fn builder() -> TestClusterBuilder {
        TestClusterBuilder {
            compaction: None,
            scheduler: false,
            apiserver_args: Vec::new(),
        }
    }

    /// Runs the real kubectl against this cluster.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_stdin(args, None)
    }

    pub fn kubectl_stdin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new("kubectl");
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.dir.path().join("kube-cache"))
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env_remove("KUBECONFIG")
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .expect("kubectl runs (is /usr/bin/kubectl installed?)");
        if let Some(input) = stdin {
            use std::io::Write as _;
            child
                .stdin
                .take()
                .expect("stdin is piped")
                .write_all(input.as_bytes())
                .expect("kubectl reads its stdin");
        }
        child.wait_with_output().expect("kubectl finishes")
    }

    /// Runs kubectl and returns its stdout, failing the test with stderr if it fails.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs kubectl expecting failure and returns its stderr.
    pub fn kubectl_err(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            !out.status.success(),
            "kubectl {args:?} should have failed but printed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Starts (or restarts) the scheduler process.
    pub fn start_scheduler(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("scheduler.log"))
            .expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_rkube"))
            .arg("scheduler")
            .arg("--kubeconfig")
            .arg(self.dir.path().join("scheduler.kubeconfig"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("rkube scheduler runs");
        self.scheduler = Some(Process(child));
    }

    /// Kills the scheduler with SIGKILL, as a crash would.
    pub fn kill_scheduler(&mut self) {
        self.scheduler = None;
    }

    /// Starts one more `rkube controller-manager` (as `system:kube-controller-manager`), with
    /// test timings: pod GC every second, 2 s node quarantine, a 4 s leader lease renewed
    /// every second. Returns its index for [`TestCluster::kill_controller_manager`].
    pub fn start_controller_manager(&mut self) -> usize {
        self.start_controller_manager_with(&[])
    }

    /// [`TestCluster::start_controller_manager`] with extra flags.
    pub fn start_controller_manager_with(&mut self, extra: &[&str]) -> usize {
        let index = self.controller_managers.len();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(
                self.dir
                    .path()
                    .join(format!("controller-manager-{index}.log")),
            )
            .expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_rkube"))
            .arg("controller-manager")
            .arg("--kubeconfig")
            .arg(self.dir.path().join("controller-manager.kubeconfig"))
            .args(["--pod-gc-period", "1s", "--pod-gc-quarantine", "2s"])
            .args(["--leader-elect-lease-duration", "4s"])
            .args(["--leader-elect-renew-deadline", "3s"])
            .args(["--leader-elect-retry-period", "1s"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("rkube controller-manager runs");
        self.controller_managers.push(Some(Process(child)));
        index
    }

    /// Kills a controller manager with SIGKILL, as a crash would.
    pub fn kill_controller_manager(&mut self, index: usize) {
        if let Some(slot) = self.controller_managers.get_mut(index) {
            *slot = None;
        }
    }

    /// Whether a controller manager started by this handle is still running.
    pub fn controller_manager_running(&mut self, index: usize) -> bool {
        self.controller_managers
            .get_mut(index)
            .and_then(Option::as_mut)
            .is_some_and(|p| matches!(p.0.try_wait(), Ok(None)))
    }

    /// The API server's process id (to read its memory use from `/proc`).
    pub fn apiserver_pid(&self) -> u32 {
        self._apiserver.0.id()
    }

    pub fn certs(&self) -> &Path {
        &self.certs
    }

    /// A client certificate from the cluster CA for `user` (CN) in `groups` (O).
    pub fn issue_client_cert(&self, user: &str, groups: &[&str]) -> pki::Issued {
        let ca = pki::Ca::load_or_create(&self.certs).expect("the cluster CA");
        let base: String = user
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        ca.issue_client(&self.certs, &format!("as-{base}"), user, groups)
            .expect("client cert")
    }

    /// A kubeconfig for this cluster that authenticates as `user` in `groups`.
    pub fn kubeconfig_as(&self, user: &str, groups: &[&str]) -> PathBuf {
        let creds = self.issue_client_cert(user, groups);
        let base: String = user
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let path = self.dir.path().join(format!("{base}.kubeconfig"));
        let ca_pem = std::fs::read_to_string(self.certs.join("ca.crt")).expect("CA file");
        kubeconfig::write(&path, "test", &self.server, &ca_pem, user, &creds).expect("kubeconfig");
        path
    }

    /// Runs kubectl with another kubeconfig (e.g. from [`TestCluster::kubeconfig_as`]).
    pub fn kubectl_with(&self, kubeconfig: &Path, args: &[&str]) -> Output {
        let mut all = vec!["--kubeconfig", kubeconfig.to_str().expect("UTF-8 path")];
        all.extend_from_slice(args);
        let mut cmd = Command::new("kubectl");
        cmd.arg("--cache-dir")
            .arg(self.dir.path().join("kube-cache"))
            .args(&all)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env_remove("KUBECONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd.output().expect("kubectl runs")
    }

    /// A `kube` client authenticated as the cluster admin.
    pub async fn client(&self) -> kube::Client {
        let config = kube::config::Kubeconfig::read_from(&self.kubeconfig).expect("kubeconfig");
        let config = kube::Config::from_custom_kubeconfig(
            config,
            &kube::config::KubeConfigOptions::default(),
        )
        .await
        .expect("kubeconfig is valid");
        kube::Client::try_from(config).expect("client builds")
    }
}

impl TestClusterBuilder {
    /// Also runs `rkube scheduler` (as `system:kube-scheduler`).
    pub fn scheduler(mut self) -> Self {
        self.scheduler = true;
        self
    }

    /// Compacts etcd every `interval` (e.g. "1s"), to exercise 410 Expired.
    pub fn compaction(mut self, interval: &str) -> Self {
        self.compaction = Some(interval.to_string());
        self
    }

    /// Passes extra flags to `rkube apiserver` (e.g. `--request-timeout=2s`).
    pub fn apiserver_args(mut self, args: &[&str]) -> Self {
        self.apiserver_args
            .extend(args.iter().map(|a| a.to_string()));
        self
    }

    pub async fn start(self) -> TestCluster {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().expect("temp dir");
        let certs = dir.path().join("certs");
        let ca = pki::Ca::load_or_create(&certs).expect("CA");
        let serving = ca
            .issue_server(
                &certs,
                "apiserver",
                "kube-apiserver",
                &pki::apiserver_hosts(&[]),
            )
            .expect("serving cert");
        let admin = ca
            .issue_client(&certs, "admin", "kubernetes-admin", &["system:masters"])
            .expect("admin cert");

        let (etcd, etcd_url) = start_etcd(dir.path()).await;

        let log = std::fs::File::create(dir.path().join("apiserver.log")).expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rkube"));
        cmd.args([
            "apiserver",
            "--bind-address",
            "127.0.0.1",
            "--secure-port",
            "0",
        ])
        .args(["--etcd-servers", &etcd_url])
        .arg("--tls-cert-file")
        .arg(&serving.cert)
        .arg("--tls-private-key-file")
        .arg(&serving.key)
        .arg("--client-ca-file")
        .arg(certs.join("ca.crt"));
        if let Some(interval) = &self.compaction {
            cmd.args(["--etcd-compaction-interval", interval]);
        }
        cmd.args(&self.apiserver_args);
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("rkube apiserver runs");
        let stdout = child.stdout.take().expect("stdout is piped");
        let apiserver = Process(child);
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the API server prints its address");
        let address = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        let server = format!("https://{address}");
        let kubeconfig_path = dir.path().join("kubeconfig");
        kubeconfig::write(
            &kubeconfig_path,
            "test",
            &server,
            &ca.cert_pem,
            "admin",
            &admin,
        )
        .expect("kubeconfig");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !rkube::cluster::up::ready(&kubeconfig_path).await {
            let log = std::fs::read_to_string(dir.path().join("apiserver.log")).unwrap_or_default();
            assert!(
                Instant::now() < deadline,
                "the API server did not become ready:\n{log}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let scheduler_creds = ca
            .issue_client(&certs, "scheduler", "system:kube-scheduler", &[])
            .expect("scheduler cert");
        kubeconfig::write(
            &dir.path().join("scheduler.kubeconfig"),
            "test",
            &server,
            &ca.cert_pem,
            "scheduler",
            &scheduler_creds,
        )
        .expect("scheduler kubeconfig");
        let controller_manager_creds = ca
            .issue_controller_manager(&certs)
            .expect("controller manager cert");
        kubeconfig::write(
            &dir.path().join("controller-manager.kubeconfig"),
            "test",
            &server,
            &ca.cert_pem,
            "controller-manager",
            &controller_manager_creds,
        )
        .expect("controller manager kubeconfig");
        let accounts_log =
            std::fs::File::create(dir.path().join("accounts-controllers.log")).expect("log file");
        let accounts = Command::new(env!("CARGO_BIN_EXE_rkube"))
            .arg("controller-manager")
            .arg("--kubeconfig")
            .arg(dir.path().join("controller-manager.kubeconfig"))
            .args(["--leader-elect=false", "--controllers"])
            .arg("serviceaccount-controller,root-ca-certificate-publisher-controller")
            .stdout(Stdio::null())
            .stderr(accounts_log)
            .spawn()
            .expect("rkube controller-manager runs");
        let mut cluster = TestCluster {
            scheduler: None,
            controller_managers: Vec::new(),
            _accounts: Process(accounts),
            _apiserver: apiserver,
            _etcd: etcd,
            dir,
            kubeconfig: kubeconfig_path,
            server,
            etcd_url,
            certs,
        };
        // Pods are taken once the `default` account exists (tests that starve the server of
        // requests must not starve its controller first).
        let client = cluster.client().await;
        let accounts: kube::Api<k8s_openapi::api::core::v1::ServiceAccount> =
            kube::Api::namespaced(client, "default");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !matches!(accounts.get_opt("default").await, Ok(Some(_))) {
            assert!(
                Instant::now() < deadline,
                "the default service account was not created"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if self.scheduler {
            cluster.start_scheduler();
        }
        cluster
    }
}
