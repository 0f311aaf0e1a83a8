//! Clusters brought up by the real `rkube up` (etcd, API server, scheduler, kubelets on
//! Docker), each under its own name, state dir and port, and torn down by `rkube down --purge`
//! when the handle is dropped — also when a test fails.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;

/// The image the tests run: Debian's static busybox, imported into Docker once.
pub const TEST_IMAGE: &str = "rkube-test/busybox:2";

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
            "sh", "httpd", "nc", "sleep", "wget", "ps", "cat", "echo", "ls", "mkdir", "head", "tr",
            "touch", "rm", "grep", "true", "false", "test", "[", "seq", "kill", "trap",
        ] {
            std::os::unix::fs::symlink("busybox", bin.join(applet)).expect("applet link");
        }
        let archive = dir.path().join("image.tar");
        let status = Command::new("tar")
            .arg("-C")
            .arg(dir.path())
            .arg("-cf")
            .arg(&archive)
            .args(["bin", "tmp"])
            .status()
            .expect("tar runs");
        assert!(status.success(), "tar of the test image failed");
        let status = Command::new("docker")
            .args(["import", "-c", "ENV PATH=/bin", "-c", "CMD [\"/bin/sh\"]"])
            .arg(&archive)
            .arg(TEST_IMAGE)
            .stdout(Stdio::null())
            .status()
            .expect("docker import runs");
        assert!(status.success(), "docker import of the test image failed");
    }
    *done = true;
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
        ensure_test_image();
        let dir = tempfile::tempdir().expect("temp dir");
        let name = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let cluster = UpCluster {
            kubeconfig: dir.path().join("kubeconfig"),
            dir,
            name,
        };
        let mut args = vec!["up".to_string()];
        if let Some(config) = config {
            args.push("--config".into());
            args.push(format!("{}/{config}", env!("CARGO_MANIFEST_DIR")));
        }
        args.extend([
            "--port".to_string(),
            free_port().to_string(),
            "--bind-address".into(),
            "127.0.0.1".into(),
        ]);
        let out = cluster.rkube(&args);
        assert!(
            out.status.success(),
            "rkube up failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        cluster
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
        Command::new(env!("CARGO_BIN_EXE_rkube"))
            .args(args)
            .args(self.state_args())
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

    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
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
