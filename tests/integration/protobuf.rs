//! Protobuf on the wire with the real kubectl: its typed commands (`create namespace`,
//! `drain`, `debug`, `run -i`) send and read `application/vnd.kubernetes.protobuf`, watches
//! included. Each test reads kubectl's own request log, so none can pass through a JSON
//! fallback.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt as _, BufReader};

use crate::harness::TestCluster;

const PAUSE: &str = "rkube/pause:0.1.0";
const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";

/// The request bodies kubectl dumped in hex (`-v=10` dumps a binary body whole).
fn dumped_bodies(log: &str) -> Vec<Vec<u8>> {
    let mut bodies = Vec::new();
    let mut lines = log.lines();
    while let Some(line) = lines.next() {
        if !line.contains("\"Request Body\" body=<") {
            continue;
        }
        let mut body = Vec::new();
        for dump in lines.by_ref() {
            // `\t00000010  73 70 61 ...  |ascii|`
            let Some(row) = dump.strip_prefix('\t') else {
                break;
            };
            let hex = row
                .get(10..)
                .and_then(|r| r.split("  |").next())
                .unwrap_or("");
            body.extend(
                hex.split_whitespace()
                    .map(|b| u8::from_str_radix(b, 16).expect("a hex byte")),
            );
        }
        bodies.push(body);
    }
    bodies
}

/// The Content-Type of every answer in kubectl's `-v=8` (or higher) log, in order.
fn answer_types(log: &str) -> Vec<String> {
    content_types(log, "Response Headers:")
}

/// The Content-Type of every request with a body in kubectl's `-v=8` log, in order.
fn request_types(log: &str) -> Vec<String> {
    content_types(log, "Request Headers:")
}

fn content_types(log: &str, section: &str) -> Vec<String> {
    let mut types = Vec::new();
    let mut in_answer = false;
    for line in log.lines() {
        if line.ends_with(section) {
            in_answer = true;
            continue;
        }
        // A header line is the log prefix, `]`, and the header indented by four spaces.
        match line.split_once("]     ") {
            Some((_, header)) if in_answer => {
                if let Some(t) = header.strip_prefix("Content-Type: ") {
                    types.push(t.to_string());
                }
            }
            _ => in_answer = false,
        }
    }
    types
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn get_json(cluster: &TestCluster, args: &[&str]) -> Value {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", "json"]);
    serde_json::from_str(&cluster.kubectl_ok(&all)).expect("kubectl prints JSON")
}

/// `kubectl create namespace` posts protobuf and reads the protobuf answer; the body it sends
/// is byte for byte the committed fixture the unit tests decode.
#[tokio::test]
async fn kubectl_create_namespace_posts_protobuf() {
    let cluster = TestCluster::builder().start().await;
    let out = cluster.kubectl(&["create", "namespace", "dev", "-v=10"]);
    let log = stderr(&out);
    assert!(out.status.success(), "{log}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "namespace/dev created\n"
    );
    assert!(log.contains("-XPOST "), "{log}");
    assert!(
        log.contains("-H \"Content-Type: application/vnd.kubernetes.protobuf\""),
        "{log}"
    );
    assert_eq!(answer_types(&log), [PROTOBUF], "{log}");
    let fixture = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/protobuf/namespace.bin"),
    )
    .expect("fixture");
    assert_eq!(dumped_bodies(&log), vec![fixture]);

    let ns = get_json(&cluster, &["namespace", "dev"]);
    assert_eq!(ns["metadata"]["name"], "dev");
    assert_eq!(ns["status"]["phase"], "Active");
    assert_eq!(ns["spec"]["finalizers"], serde_json::json!(["kubernetes"]));
    // Zero fields of the protobuf body are not stored as values.
    assert!(ns["metadata"].get("generateName").is_none(), "{ns}");

    // A second create is a 409, answered as a protobuf Status kubectl reads.
    let out = cluster.kubectl(&["create", "namespace", "dev", "-v=8"]);
    let log = stderr(&out);
    assert!(!out.status.success());
    assert!(
        log.contains("Error from server (AlreadyExists): namespaces \"dev\" already exists"),
        "{log}"
    );
    assert_eq!(answer_types(&log), [PROTOBUF], "{log}");
}

/// `kubectl drain` lists the node's Pods and polls the evicted one in protobuf (the eviction
/// itself kubectl v1.32 posts as JSON) until the protobuf 404 `Status` says it is gone.
#[tokio::test]
async fn kubectl_drain_lists_and_waits_in_protobuf() {
    let cluster = TestCluster::builder().start().await;
    let node = r#"{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}}"#;
    cluster.kubectl_stdin(&["create", "-f", "-"], Some(node));
    let pod = format!(
        r#"{{"apiVersion": "v1", "kind": "Pod", "metadata": {{"name": "web", "namespace": "default"}},
        "spec": {{"nodeName": "n1", "containers": [{{"name": "c", "image": "{PAUSE}"}}]}}}}"#
    );
    let out = cluster.kubectl_stdin(&["create", "-f", "-"], Some(&pod));
    assert!(out.status.success(), "{}", stderr(&out));

    let out = cluster.kubectl(&[
        "drain",
        "n1",
        "--ignore-daemonsets",
        "--force",
        "--grace-period=0",
        "--timeout=60s",
        "-v=8",
    ]);
    let log = stderr(&out);
    assert!(out.status.success(), "{log}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("pod/web evicted"), "{stdout}");
    assert!(stdout.contains("node/n1 drained"), "{stdout}");
    // The list of the node's Pods was answered in protobuf.
    let list = log
        .split("GET https://")
        .find(|req| req.contains("/api/v1/pods?fieldSelector=spec.nodeName%3Dn1"))
        .expect("kubectl lists the node's pods");
    assert!(
        list.contains("Accept: application/vnd.kubernetes.protobuf,application/json"),
        "{list}"
    );
    assert_eq!(
        answer_types(list).first().map(String::as_str),
        Some(PROTOBUF),
        "{list}"
    );
    // Its polls of the evicted Pod too, the last one a 404 Status.
    let polls = log
        .split("GET https://")
        .filter(|req| {
            req.starts_with(&format!(
                "{}/api/v1/namespaces/default/pods/web",
                &cluster.server["https://".len()..]
            ))
        })
        .collect::<Vec<_>>();
    assert!(!polls.is_empty(), "{log}");
    for poll in &polls {
        assert_eq!(
            answer_types(poll).first().map(String::as_str),
            Some(PROTOBUF),
            "{poll}"
        );
    }
    assert!(
        polls.last().is_some_and(|p| p.contains("404 Not Found")),
        "{log}"
    );
    let pods = get_json(&cluster, &["pods", "-A"]);
    assert_eq!(pods["items"], serde_json::json!([]));
    let node = get_json(&cluster, &["node", "n1"]);
    assert_eq!(node["spec"]["unschedulable"], true);
}

/// `kubectl debug` posts its Pods in protobuf: a copy with a debug container, and a node
/// debugger with the host's namespaces.
#[tokio::test]
async fn kubectl_debug_posts_pods_in_protobuf() {
    let cluster = TestCluster::builder().start().await;
    let node = r#"{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}}"#;
    cluster.kubectl_stdin(&["create", "-f", "-"], Some(node));
    cluster.kubectl_ok(&[
        "run",
        "web",
        "--image",
        PAUSE,
        "--restart=Never",
        "-l",
        "app=web",
    ]);

    let out = cluster.kubectl(&[
        "debug",
        "web",
        "--copy-to=web-copy",
        "--image",
        PAUSE,
        "--container=dbg",
        "-v=8",
    ]);
    let log = stderr(&out);
    assert!(out.status.success(), "{log}");
    assert_eq!(request_types(&log), [PROTOBUF], "{log}");
    assert_eq!(
        answer_types(&log).last().map(String::as_str),
        Some(PROTOBUF),
        "{log}"
    );
    let copy = get_json(&cluster, &["pod", "web-copy"]);
    let names: Vec<&str> = copy["spec"]["containers"]
        .as_array()
        .expect("containers")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["web", "dbg"]);
    assert_eq!(copy["spec"]["restartPolicy"], "Never");
    // Zero-valued fields were left out, so defaulting filled them as for JSON.
    assert_eq!(
        copy["spec"]["containers"][1]["imagePullPolicy"],
        "IfNotPresent"
    );

    let out = cluster.kubectl(&["debug", "node/n1", "--image", PAUSE, "-v=8"]);
    let log = stderr(&out);
    assert!(out.status.success(), "{log}");
    assert_eq!(request_types(&log), [PROTOBUF], "{log}");
    assert_eq!(
        answer_types(&log).last().map(String::as_str),
        Some(PROTOBUF),
        "{log}"
    );
    let pods = get_json(&cluster, &["pods", "-l", "!app"]);
    let debugger = pods["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|p| p["spec"]["nodeName"] == "n1" && p["spec"]["hostPID"] == true)
        .unwrap_or_else(|| panic!("a node debugger pod: {pods}"));
    assert_eq!(debugger["spec"]["hostNetwork"], true);
    assert_eq!(
        debugger["spec"]["volumes"][0]["hostPath"]["path"], "/",
        "{debugger}"
    );
    assert_eq!(
        debugger["spec"]["containers"][0]["volumeMounts"][0]["mountPath"],
        "/host"
    );
}

/// `kubectl run -i` waits for its Pod through a protobuf list and watch: once the watch is
/// open, the Pod's phase changes, and kubectl, having read the change from the protobuf
/// stream, goes on to the Pod's logs.
#[tokio::test]
async fn kubectl_run_waits_through_a_protobuf_watch() {
    let cluster = TestCluster::builder().start().await;
    let mut child = tokio::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&cluster.kubeconfig)
        .args(["run", "w", "--image", PAUSE, "--restart=Never", "-i"])
        .args(["--pod-running-timeout=60s", "-v=8"])
        .env_remove("KUBECONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("kubectl runs");
    let mut lines = BufReader::new(child.stderr.take().expect("piped")).lines();
    let mut log = String::new();
    // The watch is open once its answer's headers are logged.
    while let Some(line) = next_line(&mut lines).await {
        log.push_str(&line);
        log.push('\n');
        if line.contains("Content-Type: application/vnd.kubernetes.protobuf;stream=watch") {
            break;
        }
    }
    assert!(log.contains("watch=true"), "{log}");
    let out = cluster.kubectl(&[
        "patch",
        "pod",
        "w",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status": {"phase": "Succeeded"}}"#,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let mut saw_change = false;
    while let Some(line) = next_line(&mut lines).await {
        if line.contains("GET https://") && line.contains("/namespaces/default/pods/w/log") {
            saw_change = true;
            break;
        }
        log.push_str(&line);
        log.push('\n');
    }
    assert!(saw_change, "kubectl never saw the Pod finish: {log}");
    let _ = child.kill().await;
}

type Lines = tokio::io::Lines<BufReader<tokio::process::ChildStderr>>;

/// kubectl's next log line; the test fails if kubectl stays silent for a minute.
async fn next_line(lines: &mut Lines) -> Option<String> {
    tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .expect("kubectl goes on")
        .expect("kubectl's log reads")
}

/// `kubectl describe` reads a Pod, a Node, their Events and the Node's Lease through the
/// typed clients: each answer is protobuf, and what it prints comes from those answers.
#[tokio::test]
async fn kubectl_describe_reads_protobuf() {
    let cluster = TestCluster::builder().start().await;
    let objects = format!(
        r#"{{"apiVersion": "v1", "kind": "Node", "metadata": {{"name": "n1", "labels": {{"zone": "a"}}}},
          "spec": {{"taints": [{{"key": "dedicated", "value": "db", "effect": "NoSchedule"}}]}}}}
        {{"apiVersion": "v1", "kind": "Pod", "metadata": {{"name": "web", "namespace": "default"}},
          "spec": {{"nodeName": "n1", "containers": [{{"name": "c", "image": "{PAUSE}",
            "ports": [{{"containerPort": 8080}}],
            "resources": {{"requests": {{"cpu": "250m", "memory": "64Mi"}}}},
            "readinessProbe": {{"httpGet": {{"path": "/ready", "port": 8080}}}}}}]}}}}
        {{"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
          "metadata": {{"name": "n1", "namespace": "kube-node-lease"}},
          "spec": {{"holderIdentity": "n1", "leaseDurationSeconds": 40,
            "renewTime": "2026-01-02T03:04:05.000000Z"}}}}"#
    );
    let out = cluster.kubectl_stdin(&["create", "-f", "-"], Some(&objects));
    assert!(out.status.success(), "{}", stderr(&out));
    // describe finds a Pod's Events by the Pod's uid.
    let uid = cluster.kubectl_ok(&["get", "pod", "web", "-o", "jsonpath={.metadata.uid}"]);
    let event = format!(
        r#"{{"apiVersion": "v1", "kind": "Event", "metadata": {{"name": "web.1", "namespace": "default"}},
          "involvedObject": {{"kind": "Pod", "name": "web", "namespace": "default", "uid": "{uid}"}},
          "reason": "Pulled", "message": "pulled the pause image", "type": "Normal",
          "source": {{"component": "kubelet"}}, "count": 3}}"#
    );
    let out = cluster.kubectl_stdin(&["create", "-f", "-"], Some(&event));
    assert!(out.status.success(), "{}", stderr(&out));

    let out = cluster.kubectl(&["describe", "pod", "web", "-v=8"]);
    let log = stderr(&out);
    assert!(out.status.success(), "{log}");
    let text = String::from_utf8_lossy(&out.stdout);
    for want in [
        "rkube/pause:0.1.0",
        "8080/TCP",
        "250m",
        "64Mi",
        "http-get http://:8080/ready",
        "node.kubernetes.io/unreachable:NoExecute op=Exists for 300s",
        "Pulled",
        "pulled the pause image",
    ] {
        assert!(text.contains(want), "{want:?} in {text}");
    }
    // The first GET is kubectl's resource builder (JSON); describe's own reads are protobuf.
    let types = answer_types(&log);
    assert_eq!(types.len(), 3, "{log}");
    assert_eq!(types[1..], [PROTOBUF, PROTOBUF], "{log}");

    let out = cluster.kubectl(&["describe", "node", "n1", "-v=8"]);
    let log = stderr(&out);
    assert!(out.status.success(), "{log}");
    let text = String::from_utf8_lossy(&out.stdout);
    for want in [
        "zone=a",
        "dedicated=db:NoSchedule",
        "HolderIdentity:",
        "250m",
    ] {
        assert!(text.contains(want), "{want:?} in {text}");
    }
    let lease = log
        .split("GET https://")
        .find(|req| {
            req.contains("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1")
        })
        .expect("describe reads the node's Lease");
    assert_eq!(
        answer_types(lease).first().map(String::as_str),
        Some(PROTOBUF),
        "{lease}"
    );
    assert!(
        answer_types(&log).iter().filter(|t| *t == PROTOBUF).count() >= 3,
        "{log}"
    );
}

/// A DELETE whose options come as a protobuf body is honoured (grace period 0 deletes a bound
/// Pod at once), and a body that is not protobuf is a 400 worded as upstream's.
#[tokio::test]
async fn protobuf_delete_options_and_bad_bodies() {
    let cluster = TestCluster::builder().start().await;
    let pod = format!(
        r#"{{"apiVersion": "v1", "kind": "Pod", "metadata": {{"name": "web", "namespace": "default"}},
        "spec": {{"nodeName": "n1", "containers": [{{"name": "c", "image": "{PAUSE}"}}]}}}}"#
    );
    let out = cluster.kubectl_stdin(&["create", "-f", "-"], Some(&pod));
    assert!(out.status.success(), "{}", stderr(&out));
    let raw = crate::raw::admin(&cluster);
    let path = "/api/v1/namespaces/default/pods/web";
    let options = serde_json::json!({"apiVersion": "v1", "kind": "DeleteOptions",
        "gracePeriodSeconds": 0, "preconditions": {"uid": "not-its-uid"}});
    let body = rkube::apiserver::protobuf::encode_object(&options).expect("a known kind");
    let (code, status) = raw.json("DELETE", path, PROTOBUF, body).await;
    assert_eq!(code, 409, "the precondition was read: {status}");
    let options = serde_json::json!({"apiVersion": "v1", "kind": "DeleteOptions",
        "gracePeriodSeconds": 0});
    let body = rkube::apiserver::protobuf::encode_object(&options).expect("a known kind");
    let (code, status) = raw.json("DELETE", path, PROTOBUF, body).await;
    assert_eq!(code, 200, "{status}");
    let (code, _) = raw.json("GET", path, "", Vec::new()).await;
    assert_eq!(code, 404, "a grace period of 0 deletes at once");

    let (code, status) = raw
        .json(
            "POST",
            "/api/v1/namespaces/default/pods",
            PROTOBUF,
            pod.clone().into_bytes(),
        )
        .await;
    assert_eq!(code, 400);
    assert_eq!(status["reason"], "BadRequest");
    let message = status["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("the object provided is unrecognized (must be of type Pod): provided data does not appear to be a protobuf message, expected prefix [107 56 115 0] ("),
        "{message}"
    );
}
