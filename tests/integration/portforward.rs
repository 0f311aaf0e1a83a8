//! `kubectl port-forward` with the stock kubectl, over its default SPDY-in-WebSocket tunnel and
//! its plain SPDY fallback: HTTP through it, requests in parallel, 50 MiB both ways byte for
//! byte, a port nothing listens on, and 100 MiB through it with the API server and kubelet
//! holding none of it.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::up::{peak_rss_kib, UpCluster, TEST_IMAGE};

/// A running `kubectl port-forward`, killed when dropped.
struct Forward {
    child: Child,
    lines: BufReader<std::process::ChildStdout>,
}

impl Forward {
    fn start(cluster: &UpCluster, env: &[(&str, &str)], args: &[&str]) -> Forward {
        let mut child = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&cluster.kubeconfig)
            .arg("port-forward")
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl runs");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout"));
        // Ready once it says where it listens (once per address family and port).
        let mut line = String::new();
        lines.read_line(&mut line).expect("kubectl output");
        assert!(line.starts_with("Forwarding from"), "{line}");
        Forward { child, lines }
    }

    /// Stops kubectl and returns what it wrote on stderr.
    fn stop(mut self) -> String {
        let _ = self.child.kill();
        let mut err = String::new();
        if let Some(mut stderr) = self.child.stderr.take() {
            let _ = stderr.read_to_string(&mut err);
        }
        let _ = self.child.wait();
        let _ = &self.lines;
        err
    }
}

impl Drop for Forward {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// One HTTP/1.0 GET through the forward; the body.
fn get(port: u16, path: &str) -> Vec<u8> {
    let mut sock = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    sock.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    write!(sock, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").expect("request");
    let mut answer = Vec::new();
    sock.read_to_end(&mut answer).expect("answer");
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("headers end");
    let head = String::from_utf8_lossy(&answer[..split]).into_owned();
    assert!(
        head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200"),
        "{head}"
    );
    answer[split + 4..].to_vec()
}

fn sha256(bytes: &[u8]) -> String {
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sha256sum");
    let mut stdin = child.stdin.take().expect("stdin");
    let data = bytes.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output().expect("sha256sum ends");
    writer.join().expect("writer").expect("written");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

fn web_pod(cluster: &UpCluster) {
    cluster.apply(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: web}}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: http\n    image: {TEST_IMAGE}\n    imagePullPolicy: Never\n    command: [sh, -c, 'mkdir -p /www && echo hello > /www/index.html && head -c 52428800 /dev/urandom > /www/big && touch /www/ready && httpd -f -p 80 -h /www']\n  - name: sink\n    image: {TEST_IMAGE}\n    imagePullPolicy: Never\n    command: [sh, -c, 'sleep 3600 | nc -l -p 81 > /tmp/upload']\n"
    ));
    cluster.kubectl_ok(&["wait", "--for=condition=Ready", "pod/web", "--timeout=60s"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !cluster
        .kubectl(&[
            "exec",
            "web",
            "-c",
            "http",
            "--",
            "test",
            "-f",
            "/www/ready",
        ])
        .status
        .success()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the Pod's files are not there"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test]
async fn port_forward_carries_http_in_parallel_and_50_mib_both_ways() {
    let cluster = UpCluster::start(None);
    web_pod(&cluster);
    let (web, sink) = (free_port(), free_port());
    let forward = Forward::start(
        &cluster,
        &[],
        &["pod/web", &format!("{web}:80"), &format!("{sink}:81")],
    );
    let parallel: Vec<_> = (0..8)
        .map(|_| std::thread::spawn(move || get(web, "/index.html")))
        .collect();
    for request in parallel {
        assert_eq!(request.join().expect("request"), b"hello\n");
    }
    let big = get(web, "/big");
    assert_eq!(big.len(), 50 * 1024 * 1024);
    let inside = cluster.kubectl_ok(&["exec", "web", "-c", "http", "--", "sha256sum", "/www/big"]);
    assert!(inside.starts_with(&sha256(&big)), "{inside}");

    let upload: Vec<u8> = (0..50 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect();
    let mut sock = TcpStream::connect(("127.0.0.1", sink)).expect("connect");
    sock.write_all(&upload).expect("upload");
    sock.shutdown(std::net::Shutdown::Write)
        .expect("half-close");
    let _ = sock.read(&mut [0u8; 1]);
    let stored = cluster.kubectl_ok(&[
        "exec",
        "web",
        "-c",
        "sink",
        "--",
        "sha256sum",
        "/tmp/upload",
    ]);
    assert!(stored.starts_with(&sha256(&upload)), "{stored}");
    drop(forward);

    // The plain SPDY fallback works alike.
    let port = free_port();
    let fallback = Forward::start(
        &cluster,
        &[("KUBECTL_PORT_FORWARD_WEBSOCKETS", "false")],
        &["web", &format!("{port}:80")],
    );
    assert_eq!(get(port, "/index.html"), b"hello\n");
    drop(fallback);

    // The client libraries' form: the WebSocket channel protocol.
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let pods: kube::Api<k8s_openapi::api::core::v1::Pod> =
        kube::Api::default_namespaced(cluster.client().await);
    let mut forwarder = pods
        .portforward("web", &[80])
        .await
        .expect("kube-rs port-forward");
    let mut stream = forwarder.take_stream(80).expect("the port's stream");
    stream
        .write_all(b"GET /index.html HTTP/1.0\r\nHost: x\r\n\r\n")
        .await
        .expect("request");
    let mut answer = Vec::new();
    let mut buf = vec![0u8; 4096];
    while !String::from_utf8_lossy(&answer).ends_with("hello\n") {
        let n = tokio::time::timeout(Duration::from_secs(30), stream.read(&mut buf))
            .await
            .expect("an answer in time")
            .expect("read");
        assert!(n > 0, "{}", String::from_utf8_lossy(&answer));
        answer.extend_from_slice(&buf[..n]);
    }
    assert!(String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200"));
    drop(stream);
    forwarder.abort();

    let script = r#"
from kubernetes import client, config
from kubernetes.stream import portforward
config.load_kube_config()
v1 = client.CoreV1Api()
pf = portforward(v1.connect_get_namespaced_pod_portforward, "web", "default", ports="80")
sock = pf.socket(80)
sock.setblocking(True)
sock.sendall(b"GET /index.html HTTP/1.0\r\nHost: x\r\n\r\n")
seen = b""
while not seen.endswith(b"hello\n"):
    chunk = sock.recv(4096)
    if not chunk:
        break
    seen += chunk
assert seen.endswith(b"hello\n"), seen
sock.close()
print("python port-forward: ok")
"#;
    let out = crate::clients::python_with(&cluster.kubeconfig, &["-c", script]).await;
    assert!(out.contains("python port-forward: ok"), "{out}");
}

/// A port nothing listens on: the kubelet reports it on that connection's error stream in
/// upstream's words; kubectl v1.32 prints it and then ends the forward itself
/// (`lost connection to pod`), as it does against any cluster.
#[tokio::test]
async fn a_refused_port_is_reported_as_upstream() {
    let cluster = UpCluster::start(None);
    web_pod(&cluster);
    let port = free_port();
    let forward = Forward::start(&cluster, &[], &["pod/web", &format!("{port}:82")]);
    let mut sock = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    sock.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let _ = sock.write_all(b"GET / HTTP/1.0\r\n\r\n");
    let mut answer = Vec::new();
    let _ = sock.read_to_end(&mut answer);
    assert!(answer.is_empty());
    let uid = cluster.kubectl_ok(&["get", "pod", "web", "-o", "jsonpath={.metadata.uid}"]);
    let err = forward.stop();
    assert!(
        err.contains(&format!("an error occurred forwarding {port} -> 82: error forwarding port 82 to pod {uid}, uid : dial tcp ")),
        "{err}"
    );
    assert!(err.contains(":82: connect: connection refused"), "{err}");
}

/// 100 MiB through port-forward while the API server and the kubelet stay within a few MiB of
/// their memory before.
#[tokio::test]
async fn a_100_mib_forward_holds_nothing() {
    let cluster = UpCluster::start(None);
    cluster.apply(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: big}}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: http\n    image: {TEST_IMAGE}\n    imagePullPolicy: Never\n    command: [sh, -c, 'mkdir -p /www && head -c 104857600 /dev/zero > /www/big && touch /www/ready && httpd -f -p 80 -h /www']\n"
    ));
    cluster.kubectl_ok(&["wait", "--for=condition=Ready", "pod/big", "--timeout=60s"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !cluster
        .kubectl(&["exec", "big", "--", "test", "-f", "/www/ready"])
        .status
        .success()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the file is not there"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let node = cluster.kubectl_ok(&["get", "pod", "big", "-o", "jsonpath={.spec.nodeName}"]);
    let pids = [
        cluster.pid("apiserver"),
        cluster.pid(&format!("kubelet {node}")),
    ];
    let port = free_port();
    let forward = Forward::start(&cluster, &[], &["pod/big", &format!("{port}:80")]);
    // Warm up once, so that connection set-up costs are in the baseline.
    // A forward that stalls fails the test within two minutes instead of hanging it.
    let stall = Some(Duration::from_secs(120));
    let mut sock = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    sock.set_read_timeout(stall).expect("read timeout");
    write!(sock, "HEAD /big HTTP/1.0\r\n\r\n").expect("request");
    let warm_up = sock.read_to_end(&mut Vec::new());
    assert!(warm_up.is_ok(), "the warm-up request stalled: {warm_up:?}");
    let mut received = 0u64;
    let rss = peak_rss_kib(&pids, || {
        let mut sock = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        sock.set_read_timeout(stall).expect("read timeout");
        write!(sock, "GET /big HTTP/1.0\r\n\r\n").expect("request");
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match sock.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => received += n as u64,
            }
        }
    });
    drop(forward);
    assert!(received > 100 * 1024 * 1024, "{received} bytes");
    for ((before, peak), who) in rss.iter().zip(["apiserver", "kubelet"]) {
        println!("{who}: {before} KiB before, {peak} KiB at peak while forwarding 100 MiB");
        assert!(
            *peak < before + 16 * 1024,
            "{who} grew from {before} KiB to {peak} KiB"
        );
    }
}
