//! The scheduler against real Node objects (registered by the tests; no kubelet needed).

use std::collections::HashMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{ListParams, PostParams};
use kube::runtime::wait::await_condition;
use kube::Api;
use serde_json::{json, Value};

use crate::harness::TestCluster;

fn node(name: &str, cpu: &str, memory: &str, extra: Value) -> Node {
    let mut node = json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}},
        "spec": {},
        "status": {
            "capacity": {"cpu": cpu, "memory": memory, "pods": "110"},
            "allocatable": {"cpu": cpu, "memory": memory, "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status",
                "lastHeartbeatTime": "2026-01-01T00:00:00Z", "lastTransitionTime": "2026-01-01T00:00:00Z"}],
            "nodeInfo": {"kubeletVersion": "v1.32.0", "containerRuntimeVersion": "docker://20.10.24", "osImage": "Debian GNU/Linux 12 (bookworm)",
                "kernelVersion": "6.1.0", "operatingSystem": "linux", "architecture": "amd64", "machineID": "", "systemUUID": "", "bootID": "",
                "kubeProxyVersion": "", "kernelVersion": "6.1.0"},
            "addresses": [{"type": "InternalIP", "address": "172.18.0.2"}, {"type": "Hostname", "address": name}],
        },
    });
    merge(&mut node, extra);
    serde_json::from_value(node).expect("node")
}

fn merge(target: &mut Value, extra: Value) {
    match (target, extra) {
        (Value::Object(t), Value::Object(e)) => {
            for (k, v) in e {
                merge(t.entry(k).or_insert(Value::Null), v);
            }
        }
        (t, e) => *t = e,
    }
}

/// Creates a Node with its status (status is kept on create for Nodes registered like this,
/// as the kubelet registers them).
async fn add_node(client: &kube::Client, node: Node) {
    let api: Api<Node> = Api::all(client.clone());
    let name = node.metadata.name.clone().expect("name");
    let status = node.status.clone();
    api.create(&PostParams::default(), &node)
        .await
        .expect("node created");
    if let Some(status) = status {
        let patch = json!({"status": status});
        api.patch_status(&name, &Default::default(), &kube::api::Patch::Merge(&patch))
            .await
            .expect("node status");
    }
}

fn pod(name: &str, memory: &str, extra: Value) -> Pod {
    let mut pod = json!({
        "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "busybox:1.36",
            "resources": {"requests": {"cpu": "100m", "memory": memory}}}]},
    });
    merge(&mut pod, extra);
    serde_json::from_value(pod).expect("pod")
}

fn bound(pod: Option<&Pod>) -> bool {
    pod.and_then(|p| p.spec.as_ref())
        .and_then(|s| s.node_name.as_deref())
        .is_some_and(|n| !n.is_empty())
}

async fn wait_bound(pods: &Api<Pod>, name: &str, timeout: Duration) -> String {
    let pod = tokio::time::timeout(timeout, await_condition(pods.clone(), name, bound))
        .await
        .unwrap_or_else(|_| panic!("{name} was not bound within {timeout:?}"))
        .expect("watch")
        .expect("pod exists");
    pod.spec.and_then(|s| s.node_name).expect("bound")
}

#[tokio::test]
async fn pod_is_bound_to_the_only_node_with_a_scheduled_event() {
    let cluster = TestCluster::builder().scheduler().start().await;
    let client = cluster.client().await;
    add_node(&client, node("n1", "4", "8Gi", json!({}))).await;
    cluster.kubectl_ok(&["create", "-f", "pod/db.yml"]);
    let pods: Api<Pod> = Api::namespaced(client, "default");
    assert_eq!(wait_bound(&pods, "db", Duration::from_secs(5)).await, "n1");
    let wide = cluster.kubectl_ok(&["get", "pods", "-o", "wide"]);
    assert_eq!(
        wide.lines().nth(1).map(|l| l.split_whitespace().nth(6)),
        Some(Some("n1")),
        "{wide}"
    );
    let mut described = String::new();
    for _ in 0..100 {
        described = cluster.kubectl_ok(&["describe", "pod", "db"]);
        if described.contains("Successfully assigned default/db to n1") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let line = described
        .lines()
        .find(|l| l.contains("Successfully assigned"))
        .unwrap_or_else(|| panic!("no Scheduled event in:\n{described}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(&words[..2], ["Normal", "Scheduled"]);
    assert!(line.contains("default-scheduler"), "{line}");
}

#[tokio::test]
async fn pod_that_fits_nowhere_waits_with_upstreams_message_until_a_node_has_room() {
    let cluster = TestCluster::builder().scheduler().start().await;
    let client = cluster.client().await;
    add_node(&client, node("small", "2", "1Gi", json!({}))).await;
    add_node(&client, node("cp", "2", "1Gi", json!({"metadata": {"labels": {"node-role.kubernetes.io/control-plane": ""}},
        "spec": {"taints": [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]}}))).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.create(&PostParams::default(), &pod("big", "4Gi", json!({})))
        .await
        .expect("created");
    let expected = "0/2 nodes are available: 1 Insufficient memory, 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }.";
    // The scheduler may try the Pod before its watch has brought the second Node (it then says
    // "0/1 nodes"); that Node's arrival is a cluster change, so it tries again and says it all.
    let mut events = String::new();
    for _ in 0..400 {
        events = cluster.kubectl_ok(&["get", "events"]);
        if events.contains(expected) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        events.contains("FailedScheduling") && events.contains(expected),
        "{events}"
    );
    let described = cluster.kubectl_ok(&["describe", "pod", "big"]);
    assert!(
        described.contains("Warning  FailedScheduling") && described.contains(expected),
        "{described}"
    );
    let status = cluster.kubectl_ok(&["get", "pod", "big", "-o", "jsonpath={.status.conditions[0].type} {.status.conditions[0].status} {.status.conditions[0].reason}"]);
    assert_eq!(status, "PodScheduled False Unschedulable");

    // The new Node moves the Pod out of the unschedulable set; it is tried again once its
    // backoff (1 s doubled per failed attempt, at most 10 s, as upstream) has passed.
    add_node(&client, node("large", "4", "16Gi", json!({}))).await;
    assert_eq!(
        wait_bound(&pods, "big", Duration::from_secs(15)).await,
        "large"
    );
}

#[tokio::test]
async fn placement_rules_are_respected() {
    let mut cluster = TestCluster::builder().start().await;
    let client = cluster.client().await;
    add_node(
        &client,
        node(
            "a",
            "4",
            "8Gi",
            json!({"metadata": {"labels": {"disk": "ssd", "zone": "z1"}}}),
        ),
    )
    .await;
    add_node(
        &client,
        node(
            "b",
            "4",
            "8Gi",
            json!({"metadata": {"labels": {"zone": "z2"}}}),
        ),
    )
    .await;
    add_node(&client, node("t", "8", "32Gi", json!({"spec": {"taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]}}))).await;
    cluster.start_scheduler();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let cases = [
        (
            "selector",
            json!({"spec": {"nodeSelector": {"disk": "ssd"}}}),
            "a",
        ),
        (
            "affinity",
            json!({"spec": {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z2"]}]}]}}}}}),
            "b",
        ),
        (
            "tolerating",
            json!({"spec": {"tolerations": [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}],
            "nodeSelector": {"kubernetes.io/hostname": "t"}}}),
            "t",
        ),
    ];
    for (name, extra, want) in cases {
        pods.create(&PostParams::default(), &pod(name, "1Gi", extra))
            .await
            .expect("created");
        assert_eq!(
            wait_bound(&pods, name, Duration::from_secs(5)).await,
            want,
            "{name}"
        );
    }
    // Without a toleration the tainted node is never chosen, even though it is the emptiest.
    for i in 0..6 {
        let name = format!("plain-{i}");
        pods.create(&PostParams::default(), &pod(&name, "1Gi", json!({})))
            .await
            .expect("created");
        assert_ne!(wait_bound(&pods, &name, Duration::from_secs(5)).await, "t");
    }
    // A preset spec.nodeName is left alone (the Pod never reaches the scheduler).
    pods.create(
        &PostParams::default(),
        &pod("preset", "1Gi", json!({"spec": {"nodeName": "b"}})),
    )
    .await
    .expect("created");
    assert_eq!(
        wait_bound(&pods, "preset", Duration::from_secs(5)).await,
        "b"
    );
    // A cordoned node takes nothing new.
    assert_eq!(
        cluster.kubectl_ok(&["cordon", "a"]).trim(),
        "node/a cordoned"
    );
    let nodes = cluster.kubectl_ok(&["get", "nodes"]);
    assert!(
        nodes
            .lines()
            .any(|l| l.starts_with("a ") && l.contains("Ready,SchedulingDisabled")),
        "{nodes}"
    );
    pods.create(
        &PostParams::default(),
        &pod(
            "after-cordon",
            "1Gi",
            json!({"spec": {"nodeSelector": {"disk": "ssd"}}}),
        ),
    )
    .await
    .expect("created");
    let mut message = String::new();
    for _ in 0..100 {
        message = cluster.kubectl_ok(&[
            "get",
            "pod",
            "after-cordon",
            "-o",
            "jsonpath={.status.conditions[0].message}",
        ]);
        if !message.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(message.starts_with("0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 1 node(s) had untolerated taint {dedicated: gpu}, 1 node(s) were unschedulable."), "{message}");
    assert_eq!(
        cluster.kubectl_ok(&["uncordon", "a"]).trim(),
        "node/a uncordoned"
    );
    assert_eq!(
        wait_bound(&pods, "after-cordon", Duration::from_secs(5)).await,
        "a"
    );
    cluster.kill_scheduler();
}

/// Sums the requests of the Pods bound to each node and checks them against allocatable.
async fn check_no_overcommit(client: &kube::Client) -> HashMap<String, (i64, i64, usize)> {
    let pods: Api<Pod> = Api::all(client.clone());
    let mut per_node: HashMap<String, (i64, i64, usize)> = HashMap::new();
    for pod in pods.list(&ListParams::default()).await.expect("list").items {
        let node = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default();
        let requests = pod
            .spec
            .as_ref()
            .map(|s| {
                s.containers[0]
                    .resources
                    .clone()
                    .unwrap_or_default()
                    .requests
                    .unwrap_or_default()
            })
            .unwrap_or_default();
        let cpu = requests.get("cpu").map(|q| milli(&q.0)).unwrap_or(0);
        let memory = requests.get("memory").map(|q| mebi(&q.0)).unwrap_or(0);
        let entry = per_node.entry(node).or_default();
        entry.0 += cpu;
        entry.1 += memory;
        entry.2 += 1;
    }
    let nodes: Api<Node> = Api::all(client.clone());
    for node in nodes
        .list(&ListParams::default())
        .await
        .expect("nodes")
        .items
    {
        let name = node.metadata.name.clone().expect("name");
        let allocatable = node
            .status
            .and_then(|s| s.allocatable)
            .expect("allocatable");
        let (cpu, memory, _) = per_node.get(&name).copied().unwrap_or_default();
        assert!(cpu <= milli(&allocatable["cpu"].0), "{name}: {cpu}m of cpu");
        assert!(
            memory <= mebi(&allocatable["memory"].0),
            "{name}: {memory}Mi of memory"
        );
    }
    per_node
}

fn milli(q: &str) -> i64 {
    q.strip_suffix('m')
        .map(|m| m.parse().expect("milli"))
        .unwrap_or_else(|| q.parse::<i64>().expect("cores") * 1000)
}

fn mebi(q: &str) -> i64 {
    q.strip_suffix("Mi")
        .map(|m| m.parse().expect("Mi"))
        .unwrap_or_else(|| {
            q.strip_suffix("Gi")
                .expect("Gi")
                .parse::<i64>()
                .expect("Gi")
                * 1024
        })
}

async fn create_pods(client: &kube::Client, count: usize, prefix: &str) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let mut tasks = tokio::task::JoinSet::new();
    let workers = 10;
    for w in 0..workers {
        let pods = pods.clone();
        let prefix = prefix.to_string();
        tasks.spawn(async move {
            for i in (w..count).step_by(workers) {
                let memory = ["64Mi", "128Mi", "256Mi"][i % 3];
                let p = pod(&format!("{prefix}-{i}"), memory, json!({}));
                pods.create(&PostParams::default(), &p)
                    .await
                    .expect("created");
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("creator");
    }
}

async fn wait_all_bound(client: &kube::Client, count: usize, timeout: Duration) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let list = pods
            .list(&ListParams::default().fields("spec.nodeName="))
            .await
            .expect("list");
        if list.items.is_empty() {
            let all = pods.list(&ListParams::default()).await.expect("list");
            assert_eq!(all.items.len(), count);
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} pods still unbound",
            list.items.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_thousand_pods_over_fifty_nodes_fit_and_spread() {
    let cluster = TestCluster::builder().scheduler().start().await;
    let client = cluster.client().await;
    for i in 0..50 {
        add_node(
            &client,
            node(&format!("node-{i:02}"), "4", "8Gi", json!({})),
        )
        .await;
    }
    create_pods(&client, 1000, "p").await;
    wait_all_bound(&client, 1000, Duration::from_secs(120)).await;
    let per_node = check_no_overcommit(&client).await;
    let counts: Vec<usize> = per_node.values().map(|v| v.2).collect();
    assert_eq!(counts.len(), 50, "every node got pods");
    let (min, max) = (
        counts.iter().min().copied().unwrap_or(0),
        counts.iter().max().copied().unwrap_or(0),
    );
    assert!(
        max - min <= 6,
        "least-allocated spreads pods: {min}..{max} per node"
    );
}

#[tokio::test]
async fn killed_scheduler_restarts_without_double_binding_or_overcommit() {
    let mut cluster = TestCluster::builder().scheduler().start().await;
    let client = cluster.client().await;
    for i in 0..10 {
        // 2Gi each: at most 16 Pods of 128Mi... mixed sizes make the nodes fill up unevenly.
        add_node(&client, node(&format!("w{i}"), "8", "20Gi", json!({}))).await;
    }
    create_pods(&client, 500, "k").await;
    // Kill it mid-way, once some but not all Pods are bound.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    for _ in 0..200 {
        let unbound = pods
            .list(&ListParams::default().fields("spec.nodeName="))
            .await
            .expect("list")
            .items
            .len();
        if unbound < 450 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cluster.kill_scheduler();
    cluster.start_scheduler();
    wait_all_bound(&client, 500, Duration::from_secs(120)).await;
    check_no_overcommit(&client).await;
    // Each Pod was bound once: a second binding would have been refused, and the scheduler
    // emits one Scheduled event per successful binding.
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), "default");
    let scheduled = events
        .list(&ListParams::default().fields("reason=Scheduled"))
        .await
        .expect("events");
    let mut per_pod: HashMap<String, i32> = HashMap::new();
    for e in scheduled.items {
        *per_pod
            .entry(e.involved_object.name.unwrap_or_default())
            .or_default() += e.count.unwrap_or(1);
    }
    assert!(
        per_pod.values().all(|c| *c == 1),
        "a pod was bound twice: {per_pod:?}"
    );
}

#[tokio::test]
async fn node_commands_print_what_a_real_cluster_prints() {
    let cluster = TestCluster::builder().scheduler().start().await;
    let client = cluster.client().await;
    add_node(
        &client,
        node(
            "rkube-control-plane",
            "4",
            "8Gi",
            json!({"metadata": {"labels": {"node-role.kubernetes.io/control-plane": ""}}}),
        ),
    )
    .await;
    cluster.kubectl_ok(&["create", "-f", "pod/db.yml"]);
    let nodes = cluster.kubectl_ok(&["get", "nodes"]);
    let header: Vec<&str> = nodes
        .lines()
        .next()
        .expect("header")
        .split_whitespace()
        .collect();
    assert_eq!(header, ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]);
    let row: Vec<&str> = nodes
        .lines()
        .nth(1)
        .expect("row")
        .split_whitespace()
        .collect();
    assert_eq!(
        (row[0], row[1], row[2], row[4]),
        ("rkube-control-plane", "Ready", "control-plane", "v1.32.0")
    );
    let wide = cluster.kubectl_ok(&["get", "nodes", "-o", "wide"]);
    assert!(
        wide.lines()
            .next()
            .expect("header")
            .contains("INTERNAL-IP   EXTERNAL-IP   OS-IMAGE"),
        "{wide}"
    );
    assert!(
        wide.contains("172.18.0.2") && wide.contains("docker://20.10.24"),
        "{wide}"
    );
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    wait_bound(&pods, "db", Duration::from_secs(5)).await;
    let described = cluster.kubectl_ok(&["describe", "node", "rkube-control-plane"]);
    for expected in [
        "Roles:              control-plane",
        "Capacity:",
        "Allocatable:",
        "Conditions:",
        "Taints:             <none>",
        "Allocated resources:",
        "Non-terminated Pods: (1 in total)",
    ] {
        let folded = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            described
                .lines()
                .any(|l| folded(l).starts_with(&folded(expected))),
            "missing {expected:?} in\n{described}"
        );
    }
    assert!(
        described.contains("default                     db"),
        "{described}"
    );
    // Leases are served (the kubelets renew theirs there); none exist without kubelets.
    let out = cluster.kubectl(&["get", "leases", "-A"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("No resources found"));
}
