//! Pods really running in Docker, on clusters `rkube up` brings up from kind-style configs.

use std::collections::HashMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::ListParams;
use kube::runtime::wait::await_condition;
use kube::Api;

use crate::up::{UpCluster, TEST_IMAGE};

fn manifest(name: &str, spec: &str) -> String {
    format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  terminationGracePeriodSeconds: 2\n{spec}")
}

async fn wait_pod(
    cluster: &UpCluster,
    name: &str,
    timeout: Duration,
    what: &str,
    check: impl Fn(&Pod) -> bool,
) -> Pod {
    let pods: Api<Pod> = Api::namespaced(cluster.client().await, "default");
    let cond = move |p: Option<&Pod>| p.is_some_and(&check);
    match tokio::time::timeout(timeout, await_condition(pods.clone(), name, cond)).await {
        Ok(Ok(Some(pod))) => pod,
        _ => {
            let now = pods.get(name).await.ok();
            panic!("{name}: {what} not seen within {timeout:?}; pod is {now:#?}")
        }
    }
}

fn phase(p: &Pod) -> &str {
    p.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

fn statuses(p: &Pod) -> Vec<k8s_openapi::api::core::v1::ContainerStatus> {
    p.status
        .as_ref()
        .and_then(|s| s.container_statuses.clone())
        .unwrap_or_default()
}

fn waiting_reason(p: &Pod, container: &str) -> String {
    statuses(p)
        .iter()
        .find(|s| s.name == container)
        .and_then(|s| s.state.as_ref())
        .and_then(|s| s.waiting.as_ref())
        .and_then(|w| w.reason.clone())
        .unwrap_or_default()
}

fn restarts(p: &Pod, container: &str) -> i32 {
    statuses(p)
        .iter()
        .find(|s| s.name == container)
        .map(|s| s.restart_count)
        .unwrap_or(0)
}

#[tokio::test]
async fn pod_runs_in_docker_and_is_deleted_within_its_grace_period() {
    let cluster = UpCluster::start(None);
    let nodes = cluster.kubectl_ok(&["get", "nodes"]);
    assert!(
        nodes.contains(&format!(
            "{}-control-plane   Ready    control-plane",
            cluster.name
        )),
        "{nodes}"
    );
    let mut watch = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&cluster.kubeconfig)
        .args(["get", "pods", "-w"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("kubectl -w");
    let spec = format!("  containers:\n  - name: main\n    image: {TEST_IMAGE}\n    command: [\"sh\", \"-c\", \"trap 'exit 0' TERM; sleep 3600 & wait\"]\n");
    cluster.apply(&manifest("web", &spec));
    let pod = wait_pod(&cluster, "web", Duration::from_secs(20), "Running", |p| {
        phase(p) == "Running"
    })
    .await;
    let ip = pod
        .status
        .as_ref()
        .and_then(|s| s.pod_ip.clone())
        .expect("pod IP");
    let wide = cluster.kubectl_ok(&["get", "pods", "-o", "wide"]);
    assert!(
        wide.contains(&ip) && wide.contains(&format!("{}-control-plane", cluster.name)),
        "{wide}"
    );
    let described = cluster.kubectl_ok(&["describe", "pod", "web"]);
    let reasons: Vec<&str> = described
        .lines()
        .skip_while(|l| !l.starts_with("Events:"))
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter(|r| ["Scheduled", "Pulled", "Created", "Started"].contains(r))
        .collect();
    assert_eq!(
        reasons,
        ["Scheduled", "Pulled", "Created", "Started"],
        "{described}"
    );

    let started = std::time::Instant::now();
    cluster.kubectl_ok(&["delete", "pod", "web"]);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "deletion took {:?}",
        started.elapsed()
    );
    assert!(
        cluster.containers().is_empty(),
        "left behind: {:?}",
        cluster.containers()
    );
    let _ = watch.kill();
    let out = watch.wait_with_output().expect("watch output");
    let text = String::from_utf8_lossy(&out.stdout);
    let statuses: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .collect();
    for expected in ["Pending", "ContainerCreating", "Running", "Terminating"] {
        assert!(
            statuses.contains(&expected),
            "{expected} missing from the watch:\n{text}"
        );
    }
}

#[tokio::test]
async fn containers_of_a_pod_share_localhost_and_an_empty_dir() {
    let cluster = UpCluster::start(None);
    let spec = format!(
        "  volumes:\n  - name: shared\n    emptyDir: {{}}\n  containers:\n  - name: server\n    image: {TEST_IMAGE}\n    command: [\"sh\", \"-c\", \"echo hello > /www/index.html && httpd -f -p 8080 -h /www\"]\n    volumeMounts: [{{name: shared, mountPath: /www}}]\n    ports: [{{containerPort: 8080}}]\n  - name: client\n    image: {TEST_IMAGE}\n    command: [\"sleep\", \"3600\"]\n    volumeMounts: [{{name: shared, mountPath: /shared}}]\n    readinessProbe:\n      exec:\n        command: [\"sh\", \"-c\", \"wget -qO- http://localhost:8080/index.html | grep hello && grep hello /shared/index.html\"]\n      periodSeconds: 1\n"
    );
    cluster.apply(&manifest("pair", &spec));
    wait_pod(
        &cluster,
        "pair",
        Duration::from_secs(30),
        "both containers ready",
        |p| statuses(p).len() == 2 && statuses(p).iter().all(|s| s.ready),
    )
    .await;
    let row = cluster.kubectl_ok(&["get", "pod", "pair", "--no-headers"]);
    assert!(row.split_whitespace().nth(1) == Some("2/2"), "{row}");
}

#[tokio::test]
async fn port_clash_crash_loops_like_a_real_cluster() {
    let cluster = UpCluster::start(None);
    let serve =
        format!("    image: {TEST_IMAGE}\n    command: [\"httpd\", \"-f\", \"-p\", \"8080\"]\n");
    let spec = format!("  containers:\n  - name: api-1\n{serve}  - name: api-2\n    image: {TEST_IMAGE}\n    command: [\"sh\", \"-c\", \"sleep 1; exec httpd -f -p 8080\"]\n");
    cluster.apply(&manifest("clash", &spec));
    let pod = wait_pod(
        &cluster,
        "clash",
        Duration::from_secs(60),
        "CrashLoopBackOff with restarts",
        |p| waiting_reason(p, "api-2") == "CrashLoopBackOff" && restarts(p, "api-2") >= 2,
    )
    .await;
    assert_eq!(phase(&pod), "Running");
    assert_eq!(restarts(&pod, "api-1"), 0);
    let row = cluster.kubectl_ok(&["get", "pod", "clash", "--no-headers"]);
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!((cells[1], cells[2]), ("1/2", "CrashLoopBackOff"), "{row}");
    let last = statuses(&pod)
        .into_iter()
        .find(|s| s.name == "api-2")
        .and_then(|s| s.last_state)
        .and_then(|l| l.terminated)
        .expect("last state");
    assert_eq!(last.reason.as_deref(), Some("Error"));
}

#[tokio::test]
async fn failing_liveness_probe_restarts_and_readiness_flips() {
    let cluster = UpCluster::start(None);
    let spec = format!(
        "  containers:\n  - name: api\n    image: {TEST_IMAGE}\n    command: [\"httpd\", \"-f\", \"-p\", \"8080\"]\n    livenessProbe:\n      httpGet: {{path: /this/path/does/not/exist, port: 8080}}\n      initialDelaySeconds: 1\n      periodSeconds: 1\n      failureThreshold: 1\n"
    );
    cluster.apply(&manifest("live", &spec));
    wait_pod(
        &cluster,
        "live",
        Duration::from_secs(60),
        "liveness restarts",
        |p| restarts(p, "api") >= 2,
    )
    .await;
    let described = cluster.kubectl_ok(&["describe", "pod", "live"]);
    assert!(
        described.contains("Liveness probe failed: HTTP probe failed with statuscode: 404"),
        "{described}"
    );
    assert!(
        described.contains("Container api failed liveness probe, will be restarted"),
        "{described}"
    );

    let spec = format!(
        "  containers:\n  - name: flip\n    image: {TEST_IMAGE}\n    command: [\"sh\", \"-c\", \"while true; do touch /tmp/ready; sleep 3; rm -f /tmp/ready; sleep 3; done\"]\n    readinessProbe:\n      exec: {{command: [\"cat\", \"/tmp/ready\"]}}\n      periodSeconds: 1\n      failureThreshold: 1\n"
    );
    cluster.apply(&manifest("flip", &spec));
    let ready = |p: &Pod| statuses(p).first().is_some_and(|s| s.ready);
    wait_pod(&cluster, "flip", Duration::from_secs(30), "ready", ready).await;
    wait_pod(
        &cluster,
        "flip",
        Duration::from_secs(30),
        "unready",
        move |p| phase(p) == "Running" && !ready(p),
    )
    .await;
    wait_pod(
        &cluster,
        "flip",
        Duration::from_secs(30),
        "ready again",
        ready,
    )
    .await;
}

#[tokio::test]
async fn missing_images_fail_with_err_image_pull_then_back_off() {
    let cluster = UpCluster::start(None);
    cluster.apply(&manifest(
        "absent",
        "  containers:\n  - name: c\n    image: rkube-test/absent:1\n",
    ));
    cluster.kubectl_ok(&["create", "-f", "pod/db.yml"]);
    for (pod, container) in [("absent", "c"), ("db", "db")] {
        wait_pod(
            &cluster,
            pod,
            Duration::from_secs(30),
            "ErrImagePull",
            |p| waiting_reason(p, container) == "ErrImagePull",
        )
        .await;
        wait_pod(
            &cluster,
            pod,
            Duration::from_secs(30),
            "ImagePullBackOff",
            |p| waiting_reason(p, container) == "ImagePullBackOff",
        )
        .await;
    }
    let described = cluster.kubectl_ok(&["describe", "pod", "absent"]);
    for expected in [
        "Pulling image \"rkube-test/absent:1\"",
        "Failed to pull image \"rkube-test/absent:1\"",
        "Error: ErrImagePull",
        "Back-off pulling image \"rkube-test/absent:1\"",
        "Error: ImagePullBackOff",
    ] {
        assert!(
            described.contains(expected),
            "missing {expected:?}:\n{described}"
        );
    }
    let row = cluster.kubectl_ok(&["get", "pod", "db", "--no-headers"]);
    assert!(
        row.contains("ImagePullBackOff") || row.contains("ErrImagePull"),
        "{row}"
    );
}

#[tokio::test]
async fn three_node_cluster_spreads_pods_over_the_workers() {
    let cluster = UpCluster::start(Some("tests/configs/three-nodes.yaml"));
    let client = cluster.client().await;
    let nodes: Api<Node> = Api::all(client.clone());
    let list = nodes.list(&ListParams::default()).await.expect("nodes");
    let mut names: Vec<String> = list
        .items
        .iter()
        .filter_map(|n| n.metadata.name.clone())
        .collect();
    names.sort();
    let (cp, w1, w2) = (
        format!("{}-control-plane", cluster.name),
        format!("{}-worker", cluster.name),
        format!("{}-worker2", cluster.name),
    );
    assert_eq!(names, [cp.clone(), w1.clone(), w2.clone()]);
    let nodes_out = cluster.kubectl_ok(&["get", "nodes"]);
    assert_eq!(
        nodes_out.lines().filter(|l| l.contains(" Ready ")).count(),
        3,
        "{nodes_out}"
    );

    for i in 0..20 {
        cluster.apply(&manifest(&format!("p{i}"), &format!("  containers:\n  - name: c\n    image: {TEST_IMAGE}\n    command: [\"sleep\", \"3600\"]\n")));
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let mut per_node: HashMap<String, usize> = HashMap::new();
    for i in 0..20 {
        let pod = wait_pod(
            &cluster,
            &format!("p{i}"),
            Duration::from_secs(60),
            "Running",
            |p| phase(p) == "Running",
        )
        .await;
        *per_node
            .entry(pod.spec.and_then(|s| s.node_name).unwrap_or_default())
            .or_default() += 1;
    }
    assert!(
        !per_node.contains_key(&cp),
        "the tainted control plane ran pods: {per_node:?}"
    );
    assert!(
        per_node.get(&w1).copied().unwrap_or(0) >= 5
            && per_node.get(&w2).copied().unwrap_or(0) >= 5,
        "{per_node:?}"
    );

    cluster.kubectl_ok(&["cordon", &w2]);
    cluster.apply(&manifest("after-cordon", &format!("  containers:\n  - name: c\n    image: {TEST_IMAGE}\n    command: [\"sleep\", \"3600\"]\n")));
    let pod = wait_pod(
        &cluster,
        "after-cordon",
        Duration::from_secs(30),
        "Running",
        |p| phase(p) == "Running",
    )
    .await;
    assert_eq!(
        pod.spec.and_then(|s| s.node_name).as_deref(),
        Some(w1.as_str())
    );
    cluster.kubectl_ok(&["uncordon", &w2]);
    cluster.apply(&manifest("backend", &format!("  nodeSelector: {{tier: backend}}\n  containers:\n  - name: c\n    image: {TEST_IMAGE}\n    command: [\"sleep\", \"3600\"]\n")));
    let pod = wait_pod(
        &cluster,
        "backend",
        Duration::from_secs(30),
        "Running",
        |p| phase(p) == "Running",
    )
    .await;
    assert_eq!(
        pod.spec.and_then(|s| s.node_name).as_deref(),
        Some(w2.as_str())
    );
    drop(pods);
}

#[tokio::test]
async fn killed_kubelet_adopts_its_running_containers() {
    let cluster = UpCluster::start(None);
    cluster.apply(&manifest("keep", &format!("  containers:\n  - name: c\n    image: {TEST_IMAGE}\n    command: [\"sleep\", \"3600\"]\n")));
    let before = wait_pod(&cluster, "keep", Duration::from_secs(30), "Running", |p| {
        phase(p) == "Running"
    })
    .await;
    let ids = |p: &Pod| -> Vec<(Option<String>, i32, String)> {
        statuses(p)
            .iter()
            .map(|s| {
                let started = s
                    .state
                    .as_ref()
                    .and_then(|st| st.running.as_ref())
                    .and_then(|r| r.started_at.as_ref())
                    .map(|t| t.0.to_string())
                    .unwrap_or_default();
                (s.container_id.clone(), s.restart_count, started)
            })
            .collect()
    };
    let state: serde_json::Value = serde_json::from_slice(
        &std::fs::read(cluster.state_dir().join("state.json")).expect("state"),
    )
    .expect("json");
    let kubelet = state["processes"]
        .as_array()
        .expect("processes")
        .iter()
        .find(|p| p["marker"] == "kubelet")
        .expect("kubelet");
    let pid = kubelet["pid"].as_i64().expect("pid") as i32;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill");
    let out = cluster.rkube(&["up".to_string()]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Restarting kubelet"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // Another change makes the restarted kubelet write status again.
    cluster.kubectl_ok(&["label", "pod", "keep", "seen=again"]);
    cluster.apply(&manifest("after", &format!("  containers:\n  - name: c\n    image: {TEST_IMAGE}\n    command: [\"sleep\", \"3600\"]\n")));
    wait_pod(&cluster, "after", Duration::from_secs(30), "Running", |p| {
        phase(p) == "Running"
    })
    .await;
    let pods: Api<Pod> = Api::namespaced(cluster.client().await, "default");
    let now = pods.get("keep").await.expect("pod");
    assert_eq!(
        ids(&now),
        ids(&before),
        "the running container was restarted or replaced"
    );
    assert_eq!(
        cluster
            .containers()
            .iter()
            .filter(|c| c.contains("_keep_"))
            .count(),
        2,
        "{:?}",
        cluster.containers()
    );
}

#[tokio::test]
async fn logs_show_the_current_and_the_previous_container() {
    let cluster = UpCluster::start(None);
    let spec = format!(
        "  volumes: [{{name: d, emptyDir: {{}}}}]\n  containers:\n  - name: c\n    image: {TEST_IMAGE}\n    command: [\"sh\", \"-c\", \"n=$(cat /d/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /d/n; echo run $n; sleep 1; exit 1\"]\n    volumeMounts: [{{name: d, mountPath: /d}}]\n"
    );
    cluster.apply(&manifest("counter", &spec));
    wait_pod(
        &cluster,
        "counter",
        Duration::from_secs(30),
        "a restart",
        |p| restarts(p, "c") >= 1,
    )
    .await;
    let current = cluster.kubectl_ok(&["logs", "counter"]);
    let previous = cluster.kubectl_ok(&["logs", "counter", "--previous"]);
    let run = |text: &str| -> u32 {
        text.trim()
            .strip_prefix("run ")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unexpected log {text:?}"))
    };
    assert_eq!(
        run(&current),
        run(&previous) + 1,
        "current {current:?}, previous {previous:?}"
    );
    let out = cluster.kubectl(&["logs", "counter", "-c", "nope"]);
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("container nope is not valid for pod counter"));
    cluster.apply(&manifest(
        "waiting",
        "  containers:\n  - name: c\n    image: rkube-test/absent:1\n",
    ));
    wait_pod(
        &cluster,
        "waiting",
        Duration::from_secs(30),
        "a pull error",
        |p| !waiting_reason(p, "c").is_empty() && waiting_reason(p, "c") != "ContainerCreating",
    )
    .await;
    let out = cluster.kubectl(&["logs", "waiting"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("container \"c\" in pod \"waiting\" is waiting to start: "),
        "{err}"
    );
}

/// `nodes/<n>/proxy/<path>` reaches the node's kubelet, as `kubectl get --raw` uses it: `/pods`
/// lists what the kubelet runs, `/healthz` answers, only the admin may use it. `pods/<p>/proxy`
/// reaches the Pod's first port, or the port named.
#[tokio::test]
async fn proxies_reach_the_kubelet_and_pods() {
    let cluster = UpCluster::start(None);
    cluster.apply(&manifest(
        "proxied",
        &format!("  containers:\n  - name: c\n    image: {TEST_IMAGE}\n    command: [\"sleep\", \"3600\"]\n"),
    ));
    let node = cluster.kubectl_ok(&["get", "nodes", "-o", "jsonpath={.items[0].metadata.name}"]);
    let pods_path = format!("/api/v1/nodes/{node}/proxy/pods");
    // The kubelet records a Pod before it works on it, so once the Pod has a status from the
    // kubelet, `/pods` lists it.
    wait_pod(
        &cluster,
        "proxied",
        Duration::from_secs(30),
        "a status from the kubelet",
        |p| {
            p.status
                .as_ref()
                .is_some_and(|s| s.container_statuses.is_some())
        },
    )
    .await;
    let list: serde_json::Value =
        serde_json::from_str(&cluster.kubectl_ok(&["get", "--raw", &pods_path]))
            .expect("a PodList");
    assert_eq!(list["kind"], "PodList");
    let names: Vec<&str> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|p| p["metadata"]["name"].as_str())
        .collect();
    assert_eq!(names, ["proxied"]);
    assert_eq!(
        cluster.kubectl_ok(&[
            "get",
            "--raw",
            &format!("/api/v1/nodes/{node}/proxy/healthz")
        ]),
        "ok"
    );
    let out = cluster.kubectl(&["get", "--raw", &pods_path, "--as=jane"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(r#"User "jane" cannot get resource "nodes/proxy" in API group """#),
        "{err}"
    );

    cluster.apply(&manifest(
        "web",
        &format!("  containers:\n  - name: c\n    image: {TEST_IMAGE}\n    command: [\"sh\", \"-c\", \"mkdir -p /www && echo hello > /www/index.html && echo other > /www/other.html && (httpd -p 9090 -h /www; exec httpd -f -p 8080 -h /www)\"]\n    ports: [{{containerPort: 8080}}]\n    readinessProbe:\n      httpGet: {{path: /index.html, port: 8080}}\n      periodSeconds: 1\n"),
    ));
    wait_pod(&cluster, "web", Duration::from_secs(30), "ready", |p| {
        p.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
    })
    .await;
    let get = |path: &str| cluster.kubectl_ok(&["get", "--raw", path]);
    assert_eq!(
        get("/api/v1/namespaces/default/pods/web/proxy/index.html"),
        "hello\n"
    );
    assert_eq!(
        get("/api/v1/namespaces/default/pods/web:9090/proxy/other.html"),
        "other\n"
    );
    let out = cluster.kubectl(&[
        "get",
        "--raw",
        "/api/v1/namespaces/default/pods/web:9/proxy/",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ServiceUnavailable") || err.contains("error trying to reach service"),
        "{err}"
    );
    // Malformed targets and oversized bodies are refused before anything is reached.
    for (path, wanted) in [
        (
            "/api/v1/namespaces/default/pods/web:99999/proxy/",
            "invalid port",
        ),
        (
            "/api/v1/namespaces/default/pods/a:b:c:d/proxy/",
            "invalid request",
        ),
        (
            "/api/v1/namespaces/default/pods/https:web:80/proxy/",
            "http only",
        ),
    ] {
        let out = cluster.kubectl(&["get", "--raw", path]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(wanted),
            "{path}: {err}"
        );
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let big = dir.path().join("big");
    std::fs::write(&big, vec![b'x'; 4 << 20]).expect("write");
    let out = cluster.kubectl(&[
        "create",
        "--raw",
        &format!("/api/v1/nodes/{node}/proxy/pods"),
        "-f",
        big.to_str().expect("utf-8 path"),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Request entity too large"), "{err}");
}
