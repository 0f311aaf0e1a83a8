//! Clusters brought up by the real `rkube up` (etcd, API server, scheduler, kubelets on
//! Docker), each under its own name, state dir and port, and torn down by `rkube down --purge`
//! when the handle is dropped — also when a test fails.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

/// The image the tests run: Debian's static busybox, imported into Docker once.
pub const TEST_IMAGE: &str = "rkube-test/busybox:4";

static IMAGE: Mutex<bool> = Mutex::new(false);

/// Imports [`TEST_IMAGE`] unless Docker already has it.
pub fn ensure_test_image() {
    let mut done = IMAGE.lock().unwrap_or_else(|p| p.into_inner());
    if *done {
        return;
    }
    let present = Command::new("docker")
        .args(["image", "inspect", TEST_IMAGE])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !present {
        let dir = tempfile::tempdir().expect("temp dir");
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).expect("bin dir");
        let tmp = dir.path().join("tmp");
        std::fs::create_dir_all(&tmp).expect("tmp dir");
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o1777)).expect("chmod");
        std::fs::copy("/bin/busybox", bin.join("busybox")).expect("busybox-static is installed");
        for applet in [
            "sh",
            "httpd",
            "nc",
            "sleep",
            "wget",
            "ps",
            "cat",
            "echo",
            "ls",
            "mkdir",
            "head",
            "tr",
            "touch",
            "rm",
            "grep",
            "true",
            "false",
            "test",
            "[",
            "seq",
            "kill",
            "trap",
            "tar",
            "stty",
            "dd",
            "cmp",
            "sha256sum",
            "stat",
            "wc",
            "env",
            "hostname",
            "chmod",
            "yes",
            "id",
            "tty",
            "readlink",
        ] {
            std::os::unix::fs::symlink("busybox", bin.join(applet)).expect("applet link");
        }
        import_image(dir.path(), &["bin", "tmp"], TEST_IMAGE);
    }
    *done = true;
}

/// Imports the `entries` of `root` as the image `tag`, with `/bin` on its PATH and `sh` as
/// its command.
pub fn import_image(root: &std::path::Path, entries: &[&str], tag: &str) {
    let archive = root.join("image.tar");
    let status = Command::new("tar")
        .arg("-C")
        .arg(root)
        .arg("-cf")
        .arg(&archive)
        .args(entries)
        .status()
        .expect("tar runs");
    assert!(status.success(), "tar of the image {tag} failed");
    let status = Command::new("docker")
        .args(["import", "-c", "ENV PATH=/bin", "-c", "CMD [\"/bin/sh\"]"])
        .arg(&archive)
        .arg(tag)
        .stdout(Stdio::null())
        .status()
        .expect("docker import runs");
    assert!(status.success(), "docker import of the image {tag} failed");
}

/// Polls `check` (a kubectl reading, say) every 200 ms until it holds, failing with `what`
/// after `deadline`.
pub fn poll(what: &str, deadline: std::time::Duration, mut check: impl FnMut() -> bool) {
    let started = std::time::Instant::now();
    while !check() {
        assert!(
            started.elapsed() < deadline,
            "{what}: not within {deadline:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

pub struct UpCluster {
    pub dir: tempfile::TempDir,
    pub name: String,
    pub kubeconfig: PathBuf,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

impl UpCluster {
    /// `rkube up` with the config at `config` (relative to the repository), if any.
    pub fn start(config: Option<&str>) -> UpCluster {
        let cluster = UpCluster::new();
        let out = cluster.up(config, free_port(), &[]);
        assert!(
            out.status.success(),
            "rkube up failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        cluster
    }

    /// A cluster's name and directories, with nothing started yet.
    pub fn new() -> UpCluster {
        ensure_test_image();
        let dir = tempfile::tempdir().expect("temp dir");
        let name = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        UpCluster {
            kubeconfig: dir.path().join("kubeconfig"),
            dir,
            name,
        }
    }

    /// Runs `rkube up` on `port`, with extra environment variables.
    pub fn up(&self, config: Option<&str>, port: u16, env: &[(&str, &str)]) -> Output {
        let mut args = vec!["up".to_string()];
        if let Some(config) = config {
            args.push("--config".into());
            args.push(format!("{}/{config}", env!("CARGO_MANIFEST_DIR")));
        }
        args.extend([
            "--port".to_string(),
            port.to_string(),
            "--bind-address".into(),
            "127.0.0.1".into(),
        ]);
        self.rkube_env(&args, env)
    }

    fn state_args(&self) -> Vec<String> {
        let d = self.dir.path();
        vec![
            "--name".into(),
            self.name.clone(),
            "--state-dir".into(),
            d.join("state").display().to_string(),
            "--certs-dir".into(),
            d.join("certs").display().to_string(),
            "--kubeconfig".into(),
            self.kubeconfig.display().to_string(),
        ]
    }

    /// Runs the real `rkube` with this cluster's state flags appended.
    pub fn rkube(&self, args: &[String]) -> Output {
        self.rkube_env(args, &[])
    }

    /// [`UpCluster::rkube`] with extra environment variables.
    pub fn rkube_env(&self, args: &[String], env: &[(&str, &str)]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_rkube"))
            .args(args)
            .args(self.state_args())
            .envs(env.iter().copied())
            .current_dir(self.dir.path())
            .output()
            .expect("rkube runs")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn kubectl(&self, args: &[&str]) -> Output {
        Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(self.dir.path().join("kube-cache"))
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("kubectl runs")
    }

    /// Polls `kubectl <args>` until it succeeds with output that satisfies `done`, for at most
    /// `within`; returns that output.
    pub fn kubectl_until(
        &self,
        args: &[&str],
        within: std::time::Duration,
        done: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = std::time::Instant::now() + within;
        loop {
            let out = self.kubectl(args);
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            if out.status.success() && done(&text) {
                return text;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "kubectl {args:?} never got there: {text}{}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs kubectl expecting it to fail; returns what it printed on stderr.
    pub fn kubectl_err(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(!out.status.success(), "kubectl {args:?} succeeded");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// Creates objects from a manifest given inline.
    pub fn apply(&self, manifest: &str) {
        let path = self
            .dir
            .path()
            .join(format!("m-{}.yaml", uuid::Uuid::new_v4().simple()));
        std::fs::write(&path, manifest).expect("manifest");
        self.kubectl_ok(&["create", "-f", &path.display().to_string()]);
    }

    pub async fn client(&self) -> kube::Client {
        rkube::client::from_kubeconfig(&self.kubeconfig)
            .await
            .expect("client")
    }

    /// A kubeconfig for this cluster that authenticates as `user` in `groups` (a client
    /// certificate from the cluster's CA).
    pub fn kubeconfig_as(&self, user: &str, groups: &[&str]) -> PathBuf {
        let certs = self.dir.path().join("certs");
        let ca = rkube::cluster::pki::Ca::load_or_create(&certs).expect("the cluster CA");
        let base: String = user
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let creds = ca
            .issue_client(&certs, &format!("as-{base}"), user, groups)
            .expect("client cert");
        let admin = std::fs::read_to_string(&self.kubeconfig).expect("admin kubeconfig");
        let server = admin
            .lines()
            .find_map(|l| l.trim().strip_prefix("server:"))
            .expect("the kubeconfig names the server")
            .trim()
            .to_string();
        let ca_pem = std::fs::read_to_string(certs.join("ca.crt")).expect("CA file");
        let path = self.dir.path().join(format!("{base}.kubeconfig"));
        rkube::cluster::kubeconfig::write(&path, &self.name, &server, &ca_pem, user, &creds)
            .expect("kubeconfig");
        path
    }

    /// Runs kubectl with another kubeconfig (from [`UpCluster::kubeconfig_as`]).
    pub fn kubectl_with(&self, kubeconfig: &std::path::Path, args: &[&str]) -> Output {
        Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .arg("--cache-dir")
            .arg(self.dir.path().join("kube-cache"))
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .expect("kubectl runs")
    }

    /// The PID of one of the cluster's processes (`apiserver`, `kubelet <node>`, …), from the
    /// state `rkube up` keeps.
    pub fn pid(&self, process: &str) -> u32 {
        let state = std::fs::read_to_string(self.state_dir().join("state.json")).expect("state");
        let state: serde_json::Value = serde_json::from_str(&state).expect("state JSON");
        state["processes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["name"] == process)
            .and_then(|p| p["pid"].as_u64())
            .and_then(|p| u32::try_from(p).ok())
            .unwrap_or_else(|| panic!("no process {process:?} in {state}"))
    }

    /// Docker's containers of this cluster, as `name status` lines.
    pub fn containers(&self) -> Vec<String> {
        let out = Command::new("docker")
            .args(["ps", "-a", "--format", "{{.Names}} {{.State}}", "--filter"])
            .arg(format!("label=io.rkube.cluster={}", self.name))
            .output()
            .expect("docker ps");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for UpCluster {
    fn drop(&mut self) {
        let _ = self.rkube(&["down".to_string(), "--purge".to_string()]);
    }
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Where Docker is not: a socket path nothing listens on.
const NO_DOCKER: (&str, &str) = ("DOCKER_HOST", "unix:///nonexistent/rkube-test-docker.sock");

#[test]
fn up_without_docker_fails_at_once_with_the_fix_and_starts_nothing() {
    let cluster = UpCluster::new();
    let started = std::time::Instant::now();
    let out = cluster.up(None, free_port(), &[NO_DOCKER]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(15),
        "{}",
        text(&out)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot reach the Docker engine"),
        "{}",
        text(&out)
    );
    assert!(stderr.contains("systemctl start docker"), "{}", text(&out));
    assert!(
        !cluster.state_dir().join("state.json").exists(),
        "something was started"
    );
}

#[test]
fn a_taken_port_fails_at_once_naming_the_process_holding_it() {
    let cluster = UpCluster::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    let started = std::time::Instant::now();
    let out = cluster.up(None, port, &[]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(15),
        "{}",
        text(&out)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("port {port} is already in use by "))
            && stderr.contains(&format!("(pid {})", std::process::id())),
        "{}",
        text(&out)
    );
    assert!(
        !cluster.state_dir().join("state.json").exists(),
        "something was started"
    );
}

#[test]
fn every_unsupported_field_is_reported_once_without_a_backtrace() {
    let cluster = UpCluster::new();
    let config = cluster.dir.path().join("kind.yaml");
    std::fs::write(
        &config,
        "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nfeatureGates: {A: true}\n\
         nodes:\n- role: control-plane\n  extraMounts: []\n  extraPortMappings: []\n",
    )
    .expect("config");
    let out = cluster.rkube_env(
        &["up".into(), "--config".into(), config.display().to_string()],
        &[("RUST_BACKTRACE", "1")],
    );
    assert!(!out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for field in [
        "featureGates",
        "nodes[0].extraMounts",
        "nodes[0].extraPortMappings",
    ] {
        assert_eq!(stderr.matches(field).count(), 1, "{field}: {}", text(&out));
    }
    assert!(!stderr.contains("backtrace"), "{}", text(&out));
    assert!(!stderr.contains("Caused by"), "{}", text(&out));
    assert_eq!(stderr.lines().count(), 1, "{}", text(&out));
}

/// The status of the only container of `pod`.
fn container(pod: &Pod) -> ContainerStatus {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|c| c.first().cloned())
        .unwrap_or_else(|| panic!("no container status: {pod:#?}"))
}

/// The first version of `was` stored after it whose container status differs, read from
/// etcd's history: it outlives the restart of the API server, whose watch cache starts anew
/// (a watch from before the restart is answered 410), so no write in between goes unseen.
async fn first_container_change(cluster: &UpCluster, was: &Pod) -> Pod {
    let state = std::fs::read(cluster.state_dir().join("state.json")).expect("state.json");
    let state: serde_json::Value = serde_json::from_slice(&state).expect("state JSON");
    let url = state["etcd_url"].as_str().expect("etcd_url").to_string();
    let mut etcd = etcd_client::Client::connect([url], None)
        .await
        .expect("etcd");
    let namespace = was.metadata.namespace.clone().expect("a namespace");
    let name = was.metadata.name.clone().expect("a name");
    let rv: i64 = was
        .metadata
        .resource_version
        .as_deref()
        .and_then(|rv| rv.parse().ok())
        .expect("a resourceVersion");
    let options = etcd_client::WatchOptions::new().with_start_revision(rv + 1);
    let mut history = etcd
        .watch(format!("/registry/pods/{namespace}/{name}"), Some(options))
        .await
        .expect("etcd watch");
    let old = container(was);
    let deadline = std::time::Duration::from_secs(120);
    let found = tokio::time::timeout(deadline, async {
        while let Some(answer) = history.message().await.expect("etcd watch answer") {
            for kv in answer.events().iter().filter_map(|e| e.kv()) {
                let Ok(pod) = serde_json::from_slice::<Pod>(kv.value()) else {
                    continue;
                };
                if container(&pod) != old {
                    return pod;
                }
            }
        }
        panic!("the etcd watch of {name} ended");
    })
    .await;
    found.unwrap_or_else(|_| panic!("{name}'s container status did not change in {deadline:?}"))
}

/// The renewTime of a node's Lease.
async fn renewed(cluster: &UpCluster, node: &str) -> jiff::Timestamp {
    let leases: kube::Api<k8s_openapi::api::coordination::v1::Lease> =
        kube::Api::namespaced(cluster.client().await, "kube-node-lease");
    let lease = leases.get(node).await.expect("lease");
    let time = serde_json::to_value(lease.spec.and_then(|s| s.renew_time)).expect("json");
    time.as_str()
        .expect("a renewTime")
        .parse()
        .expect("a timestamp")
}

/// One cluster for the front door's promises: the printed commands work for this cluster,
/// the kubeconfig is named after it, `down` keeps its state while Docker is away, a restart
/// with kept data waits for fresh heartbeats and its kubelet first marks the Pods whose
/// containers are gone, and `down` is quick.
#[tokio::test(flavor = "multi_thread")]
async fn up_and_down_keep_their_promises() {
    let cluster = UpCluster::new();
    let port = free_port();
    let out = cluster.up(None, port, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();

    // The kubeconfig's entries carry the cluster's name.
    let context = format!("rkube-{}", cluster.name);
    let current = cluster.kubectl_ok(&["config", "current-context"]);
    assert_eq!(current.trim(), context);
    let users = cluster.kubectl_ok(&["config", "view", "-o", "jsonpath={.users[*].name}"]);
    assert_eq!(users.trim(), context);

    // A user's kubeconfig from the cluster CA: RBAC knows the user and its group, and
    // grants it nothing beyond the bootstrap policy.
    let alice = cluster.dir.path().join("alice.kubeconfig");
    let out = cluster.rkube(&[
        "kubeconfig".into(),
        "--user".into(),
        "alice".into(),
        "--group".into(),
        "dev".into(),
        "--out".into(),
        alice.display().to_string(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let as_alice = |args: &[&str]| {
        Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&alice)
            .args(args)
            .output()
            .expect("kubectl runs")
    };
    let whoami = as_alice(&["auth", "whoami", "-o", "jsonpath={.status.userInfo}"]);
    assert_eq!(
        String::from_utf8_lossy(&whoami.stdout),
        r#"{"groups":["dev","system:authenticated"],"username":"alice"}"#,
        "{}",
        text(&whoami)
    );
    let refused = as_alice(&["get", "pods"]);
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains(r#"pods is forbidden: User "alice" cannot list resource "pods" in API group "" in the namespace "default""#),
        "{}",
        text(&refused)
    );

    // The printed commands name this cluster's files, absolutely.
    let export = format!("  export KUBECONFIG={}\n", cluster.kubeconfig.display());
    assert!(stdout.contains(&export), "{}", text(&out));
    assert!(!stdout.contains("scripts/down"), "{}", text(&out));
    let down = stdout
        .lines()
        .skip_while(|l| !l.starts_with("Stop it with"))
        .nth(1)
        .expect("a stop command")
        .trim()
        .to_string();
    assert!(down.contains(&format!("--name {}", cluster.name)), "{down}");

    // Docker away: `down` fails and keeps the state that owns the node's containers.
    let node = format!("{}-control-plane", cluster.name);
    // The control-plane label is kubeadm's, as on kind, next to the kubelet's own writes.
    let managers = cluster.kubectl_ok(&[
        "get",
        "node",
        &node,
        "-o",
        "jsonpath={.metadata.managedFields[*].manager}",
    ]);
    let mut managers: Vec<&str> = managers.split(' ').collect();
    managers.sort();
    managers.dedup();
    assert_eq!(managers, ["kubeadm", "kubelet"]);
    cluster.apply(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  containers:\n  - {{name: c, image: {TEST_IMAGE}, imagePullPolicy: Never, command: [sleep, '3600']}}\n"
    ));
    cluster.kubectl_ok(&["wait", "--for=condition=Ready", "pod/p", "--timeout=120s"]);
    let out = cluster.rkube_env(&["down".into()], &[NO_DOCKER]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        cluster.state_dir().join("state.json").exists(),
        "state forgotten: {}",
        text(&out)
    );
    assert!(!cluster.containers().is_empty());

    // Up again with the data kept: ready only once the kubelet has renewed its Lease.
    let before = jiff::Timestamp::now();
    let out = cluster.up(None, port, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        renewed(&cluster, &node).await >= before,
        "up trusted a stale heartbeat"
    );

    // Down and up with the data kept: Docker's containers are gone. The restarted kubelet
    // first says so — the container's state unknown, not ready, no pod IP — and only then
    // recreates it, counting one more restart.
    let pods: kube::Api<Pod> = kube::Api::namespaced(cluster.client().await, "default");
    let was = pods.get("p").await.expect("pod p");
    let out = cluster.rkube(&["down".into()]);
    assert!(out.status.success(), "{}", text(&out));
    let out = cluster.up(None, port, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let first = first_container_change(&cluster, &was).await;
    let c = container(&first);
    let last = c.last_state.clone().and_then(|l| l.terminated);
    assert_eq!(
        last.and_then(|t| t.reason).as_deref(),
        Some("ContainerStatusUnknown"),
        "{first:#?}"
    );
    assert!(!c.ready, "{first:#?}");
    assert_eq!(c.restart_count, 1, "{first:#?}");
    let status = first.status.clone().expect("status");
    assert_eq!(status.pod_ip, None, "{first:#?}");
    let ready = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Ready");
    assert_eq!(
        ready.map(|c| c.status.as_str()),
        Some("False"),
        "{first:#?}"
    );
    cluster.kubectl_ok(&["wait", "--for=condition=Ready", "pod/p", "--timeout=120s"]);
    let again = pods.get("p").await.expect("pod p");
    assert_eq!(container(&again).restart_count, 1, "{again:#?}");
    assert!(again.status.and_then(|s| s.pod_ip).is_some());
    // The Pod's token volume lives in memory, under /dev/shm, until the cluster goes.
    let memory = rkube::kubelet::memory_dir(&again.metadata.uid.clone().expect("a uid"));
    assert!(
        memory.join("kubernetes.io~projected").is_dir(),
        "{} holds no token volume",
        memory.display()
    );

    // The printed stop command works from anywhere, and quickly.
    let started = std::time::Instant::now();
    let out = Command::new("sh")
        .arg("-c")
        .arg(&down)
        .current_dir("/")
        .output()
        .expect("sh runs");
    let took = started.elapsed();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        !cluster.state_dir().join("state.json").exists(),
        "{}",
        text(&out)
    );
    assert!(
        cluster.containers().is_empty(),
        "{:?}",
        cluster.containers()
    );
    assert!(!memory.exists(), "down left {}", memory.display());
    assert!(
        took < std::time::Duration::from_secs(5),
        "down took {took:?}"
    );
}

/// The resident memory (KiB) of each of `pids` before `work` and at its peak while `work`
/// runs, sampled from /proc every 10 ms.
pub fn peak_rss_kib(pids: &[u32], work: impl FnOnce()) -> Vec<(u64, u64)> {
    let rss = |pid: u32| -> u64 {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
            })
            .unwrap_or(0)
    };
    let before: Vec<u64> = pids.iter().map(|p| rss(*p)).collect();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let done = done.clone();
        let pids = pids.to_vec();
        std::thread::spawn(move || {
            let mut peak = vec![0u64; pids.len()];
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                for (i, pid) in pids.iter().enumerate() {
                    peak[i] = peak[i].max(rss(*pid));
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            peak
        })
    };
    work();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let peak = sampler.join().expect("sampler");
    before.into_iter().zip(peak).collect()
}
