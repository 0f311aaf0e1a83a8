//! The API from inside a Pod, on a cluster from `rkube up`: a kube-rs client built as a static
//! binary (`examples/in_cluster.rs`, which `scripts/test` builds) runs in a container and
//! finds the API server through `KUBERNETES_SERVICE_HOST`/`_PORT`, verifies it with the
//! mounted CA and authenticates with the mounted token; the Python client's in-cluster loader
//! does the same from the files and variables a Pod sees. Its account gets upstream's 403 until
//! a RoleBinding allows it, then its answer, and 401 once the account is deleted. A kubelet may
//! ask for tokens only for the accounts of its own Pods, bound to those Pods.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::up::UpCluster;

const IMAGE: &str = "rkube-test/in-cluster:1";

/// The in-cluster client example, built by `scripts/test` beside the rkube binary.
fn client_binary() -> PathBuf {
    let rkube = PathBuf::from(env!("CARGO_BIN_EXE_rkube"));
    let path = rkube
        .parent()
        .expect("the target directory")
        .join("examples")
        .join("in_cluster");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo rustc --example in_cluster -- -C target-feature=+crt-static` (scripts/test does)",
        path.display()
    );
    path
}

/// Imports an image holding busybox (for `sleep`) and the client as `/bin/in-cluster`.
fn build_image() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).expect("bin dir");
    std::fs::copy("/bin/busybox", bin.join("busybox")).expect("busybox-static is installed");
    for applet in ["sh", "sleep", "cat"] {
        std::os::unix::fs::symlink("busybox", bin.join(applet)).expect("applet link");
    }
    // Without its debug sections the image is a sixth of the size.
    let stripped = Command::new("strip")
        .arg("-o")
        .arg(bin.join("in-cluster"))
        .arg(client_binary())
        .status()
        .is_ok_and(|s| s.success());
    if !stripped {
        std::fs::copy(client_binary(), bin.join("in-cluster")).expect("copy the client");
    }
    crate::up::import_image(dir.path(), &["bin"], IMAGE);
}

#[tokio::test]
async fn a_pod_reaches_the_api_with_its_service_account() {
    build_image();
    let cluster = UpCluster::start(None);
    cluster.kubectl_ok(&["create", "namespace", "ci"]);
    cluster.kubectl_ok(&["create", "serviceaccount", "agent", "-n", "ci"]);
    cluster.apply(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: api-client, namespace: ci}}\nspec:\n  serviceAccountName: agent\n  containers:\n  - name: c\n    image: {IMAGE}\n    imagePullPolicy: Never\n    command: [sleep, '100000']\n"
    ));
    cluster.kubectl_ok(&[
        "wait",
        "-n",
        "ci",
        "--for=condition=Ready",
        "pod/api-client",
        "--timeout=60s",
    ]);
    let in_ci = |args: &[&str]| {
        let mut all = vec!["-n", "ci"];
        all.extend(args);
        all.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let run = |args: &[&str]| {
        let args = in_ci(args);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        cluster.kubectl_ok(&refs)
    };
    let exec_client = || {
        let out = cluster.kubectl(&["exec", "-n", "ci", "api-client", "--", "in-cluster"]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };

    // Where the Pod is told the API server is, and that its certificate covers it.
    let env = run(&[
        "exec",
        "api-client",
        "--",
        "sh",
        "-c",
        "echo $KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT",
    ]);
    let (host, port) = env.trim().split_once(':').expect("host:port");
    assert!(host.parse::<std::net::Ipv4Addr>().is_ok(), "{env}");
    assert_ne!(host, "127.0.0.1", "loopback is the container's own");
    port.parse::<u16>().expect("a port");

    // Before any binding: upstream's 403, naming the account.
    assert_eq!(
        exec_client(),
        "error 403: pods is forbidden: User \"system:serviceaccount:ci:agent\" cannot list resource \"pods\" in API group \"\" in the namespace \"ci\""
    );
    run(&[
        "create",
        "rolebinding",
        "agent-view",
        "--clusterrole=view",
        "--serviceaccount=ci:agent",
    ]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let listed = loop {
        let said = exec_client();
        if said.starts_with("listed") {
            break said;
        }
        assert!(Instant::now() < deadline, "the client still says {said:?}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(listed, "listed 1 pods");

    // The Python client's in-cluster loader, with what the Pod sees: its variables and files.
    let dir = cluster.dir.path();
    let secrets = "/var/run/secrets/kubernetes.io/serviceaccount";
    for file in ["token", "ca.crt"] {
        let content = run(&[
            "exec",
            "api-client",
            "--",
            "cat",
            &format!("{secrets}/{file}"),
        ]);
        std::fs::write(dir.join(file), content).expect("copy");
    }
    let script = format!(
        "from kubernetes import client, config\n\
         from kubernetes.config.incluster_config import InClusterConfigLoader\n\
         InClusterConfigLoader(token_filename={token:?}, cert_filename={ca:?}, environ={{'KUBERNETES_SERVICE_HOST': {host:?}, 'KUBERNETES_SERVICE_PORT': {port:?}}}).load_and_set()\n\
         print(len(client.CoreV1Api().list_namespaced_pod('ci').items))\n",
        token = dir.join("token").display().to_string(),
        ca = dir.join("ca.crt").display().to_string(),
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3 runs");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "1\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Who the mounted token is: the account, with the Pod and node it is bound to.
    let node = run(&[
        "get",
        "pod",
        "api-client",
        "-o",
        "jsonpath={.spec.nodeName}",
    ]);
    let uid = run(&["get", "pod", "api-client", "-o", "jsonpath={.metadata.uid}"]);
    let server = format!("https://{host}:{port}");
    let ca = dir.join("ca.crt").display().to_string();
    let token = std::fs::read_to_string(dir.join("token")).expect("token");
    let out = Command::new("kubectl")
        .args([
            "--kubeconfig=/dev/null",
            "--server",
            &server,
            "--certificate-authority",
            &ca,
        ])
        .args([
            "--token",
            &token,
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.extra}",
        ])
        .output()
        .expect("kubectl runs");
    let extra: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    let key = |k: &str| extra[format!("authentication.kubernetes.io/{k}")][0].clone();
    assert_eq!(key("pod-name"), "api-client");
    assert_eq!(key("pod-uid"), uid.as_str());
    assert_eq!(key("node-name"), node.as_str());
    assert!(
        key("credential-id")
            .as_str()
            .is_some_and(|c| c.starts_with("JTI=")),
        "{extra}"
    );

    // A kubelet may get a token for an account its Pod runs as, bound to that Pod, and no
    // other.
    let kubelet = cluster.kubeconfig_as(&format!("system:node:{node}"), &["system:nodes"]);
    let as_kubelet = |args: &[&str]| {
        let args = in_ci(args);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        cluster.kubectl_with(&kubelet, &refs)
    };
    let bound = ["--bound-object-kind=Pod", "--bound-object-name=api-client"];
    let uid_arg = format!("--bound-object-uid={uid}");
    let out = as_kubelet(&[&["create", "token", "agent", &uid_arg][..], &bound[..]].concat());
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = as_kubelet(&["create", "token", "agent"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(
            "serviceaccounts \"agent\" is forbidden: node requested token not bound to a pod"
        ),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    run(&["create", "serviceaccount", "other"]);
    let out = as_kubelet(&[&["create", "token", "other", &uid_arg][..], &bound[..]].concat());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!(
            "User \"system:node:{node}\" cannot create resource \"serviceaccounts/token\" in API group \"\" in the namespace \"ci\": no relationship found between node '{node}' and this object"
        )),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The account deleted: its tokens stop working at once.
    run(&["delete", "serviceaccount", "agent"]);
    assert_eq!(exec_client(), "error 401: Unauthorized");
}
