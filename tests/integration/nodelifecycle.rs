//! The node lifecycle controller against Nodes whose heartbeats the test writes: a Node that
//! goes silent becomes Unknown and tainted unreachable, its Pods leave when their tolerations
//! run out (a ReplicaSet's replacements land on the other Node), Pods that tolerate longer
//! stay, and a Node that comes back loses its taints with nothing more evicted. On a
//! kind-style three-node cluster, a worker whose kubelet is killed loses its Pods to the other.

use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, Node, Pod};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::harness::TestCluster;
use crate::up::{UpCluster, TEST_IMAGE};

const DEADLINE: Duration = Duration::from_secs(120);

async fn eventually<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "{what}: not within {DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Renews the node's Lease every 300 ms, as its kubelet would, until `stop`.
async fn heartbeat(client: kube::Client, node: &'static str, stop: CancellationToken) {
    let leases: Api<Lease> = Api::namespaced(client, "kube-node-lease");
    loop {
        let now = jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
            .to_string();
        let lease: Lease = serde_json::from_value(json!({
            "metadata": {"name": node, "namespace": "kube-node-lease"},
            "spec": {"holderIdentity": node, "leaseDurationSeconds": 40, "renewTime": now},
        }))
        .expect("lease");
        let patch = PatchParams::apply("test-kubelet").force();
        leases
            .patch(node, &patch, &Patch::Apply(&lease))
            .await
            .expect("lease renewed");
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(300)) => {}
            () = stop.cancelled() => return,
        }
    }
}

fn ready_condition(node: &Node) -> Option<(String, String)> {
    let c = node
        .status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")?;
    Some((c.status.clone(), c.reason.clone().unwrap_or_default()))
}

fn taint_keys(node: &Node) -> Vec<String> {
    let mut keys: Vec<String> = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .map(|t| {
            t.iter()
                .map(|t| format!("{}:{}", t.key, t.effect))
                .collect()
        })
        .unwrap_or_default();
    keys.sort();
    keys
}

fn pod(name: &str, node: &str, tolerations: Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"nodeName": node, "tolerations": tolerations,
            "containers": [{"name": "c", "image": "busybox"}]},
    }))
    .expect("pod")
}

#[tokio::test]
async fn a_silent_node_is_tainted_and_emptied_as_its_pods_tolerations_run_out() {
    let mut cluster = TestCluster::builder().scheduler().start().await;
    let client = cluster.client().await;
    let nodes: Api<Node> = Api::all(client.clone());
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    for (name, cordoned) in [("n0", false), ("n1", true)] {
        let node: Node = serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {"unschedulable": cordoned},
            "status": {
                "capacity": {"cpu": "8", "memory": "16Gi", "pods": "110"},
                "allocatable": {"cpu": "8", "memory": "16Gi", "pods": "110"},
                "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                    "lastHeartbeatTime": jiff::Timestamp::now().to_string()}],
            },
        }))
        .expect("node");
        nodes
            .create(&PostParams::default(), &node)
            .await
            .expect("node created");
    }
    let n0_beats = CancellationToken::new();
    let n1_beats = CancellationToken::new();
    tokio::spawn(heartbeat(client.clone(), "n0", n0_beats.clone()));
    tokio::spawn(heartbeat(client.clone(), "n1", n1_beats.clone()));
    cluster.start_controller_manager_with(&[
        "--node-monitor-period",
        "500ms",
        "--node-monitor-grace-period",
        "3s",
    ]);

    // On n0: a ReplicaSet's two Pods, which tolerate an unreachable node for a second (n1
    // is cordoned while they are placed); a Pod with the default tolerations (300 s); one that
    // tolerates everything forever. On n1: a Pod that tolerates nothing.
    let replica_sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let rs: ReplicaSet = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                "tolerations": [{"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                    "effect": "NoExecute", "tolerationSeconds": 1}],
                "containers": [{"name": "c", "image": "busybox"}]}}},
    }))
    .expect("replica set");
    replica_sets
        .create(&PostParams::default(), &rs)
        .await
        .expect("rs created");
    pods.create(&PostParams::default(), &pod("patient", "n0", Value::Null))
        .await
        .expect("pod");
    pods.create(
        &PostParams::default(),
        &pod("stubborn", "n0", json!([{"operator": "Exists"}])),
    )
    .await
    .expect("pod");
    pods.create(&PostParams::default(), &pod("elsewhere", "n1", Value::Null))
        .await
        .expect("pod");
    let running = json!({"status": {"phase": "Running",
        "conditions": [{"type": "Ready", "status": "True"}]}});
    pods.patch_status("patient", &PatchParams::default(), &Patch::Merge(&running))
        .await
        .expect("patient running");
    let web_on = async |node: &str| -> Vec<Pod> {
        pods.list(&ListParams::default().labels("app=web"))
            .await
            .expect("pods")
            .items
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node))
            .collect()
    };
    eventually("both web Pods on n0", async || {
        (web_on("n0").await.len() == 2).then_some(())
    })
    .await;
    let uncordon = json!({"spec": {"unschedulable": false}});
    nodes
        .patch("n1", &PatchParams::default(), &Patch::Merge(&uncordon))
        .await
        .expect("uncordoned");

    // Healthy: no taint from the controller while the heartbeats go on.
    let n0 = nodes.get("n0").await.expect("n0");
    assert!(taint_keys(&n0).is_empty(), "{:?}", taint_keys(&n0));

    // n0 goes silent.
    n0_beats.cancel();
    let silent_at = Instant::now();
    let n0 = eventually("n0 unknown and tainted unreachable", async || {
        let n0 = nodes.get("n0").await.expect("n0");
        let unknown = ready_condition(&n0) == Some(("Unknown".into(), "NodeStatusUnknown".into()));
        let tainted = taint_keys(&n0)
            == [
                "node.kubernetes.io/unreachable:NoExecute",
                "node.kubernetes.io/unreachable:NoSchedule",
            ];
        (unknown && tainted).then_some(n0)
    })
    .await;
    assert!(
        silent_at.elapsed() >= Duration::from_secs(3),
        "before the grace period"
    );
    let message = n0.status.and_then(|s| s.conditions).and_then(|c| {
        c.into_iter()
            .find(|c| c.type_ == "Ready")
            .and_then(|c| c.message)
    });
    assert_eq!(
        message.as_deref(),
        Some("Kubelet stopped posting node status.")
    );

    // The web Pods are evicted and replaced on n1; the others stay.
    eventually("the web Pods replaced on n1", async || {
        (web_on("n1").await.len() == 2 && web_on("n0").await.is_empty()).then_some(())
    })
    .await;
    let evicted = pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .expect("pods")
        .items
        .into_iter()
        .find(|p| p.metadata.deletion_timestamp.is_some())
        .expect("an evicted web Pod, terminating with no kubelet to finish it");
    let conditions = evicted
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default();
    let disruption = conditions
        .iter()
        .find(|c| c.type_ == "DisruptionTarget")
        .expect("DisruptionTarget condition");
    assert_eq!(disruption.reason.as_deref(), Some("DeletionByTaintManager"));
    // The Pods of the silent node that were Ready are Ready no more.
    let patient = pods.get("patient").await.expect("patient");
    let ready = patient
        .status
        .and_then(|s| s.conditions)
        .and_then(|c| c.into_iter().find(|c| c.type_ == "Ready"));
    assert_eq!(ready.map(|c| c.status).as_deref(), Some("False"));
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    let name = evicted.metadata.name.clone().unwrap_or_default();
    eventually("the TaintManagerEviction event", async || {
        events
            .list(&ListParams::default())
            .await
            .expect("events")
            .items
            .iter()
            .any(|e| {
                e.reason.as_deref() == Some("TaintManagerEviction")
                    && e.message.as_deref()
                        == Some(&format!("Marking for deletion Pod default/{name}"))
            })
            .then_some(())
    })
    .await;

    // n0 comes back well within the patient Pod's 300 s: its taints go, nothing else left.
    tokio::spawn(heartbeat(client.clone(), "n0", n1_beats.clone()));
    let ready = json!({"status": {"conditions": [{"type": "Ready", "status": "True",
        "reason": "KubeletReady", "lastHeartbeatTime": jiff::Timestamp::now().to_string()}]}});
    nodes
        .patch_status("n0", &PatchParams::default(), &Patch::Strategic(&ready))
        .await
        .expect("n0 ready again");
    eventually("n0's taints removed", async || {
        taint_keys(&nodes.get("n0").await.expect("n0"))
            .is_empty()
            .then_some(())
    })
    .await;
    for name in ["patient", "stubborn", "elsewhere"] {
        let p = pods.get(name).await.expect("pod still there");
        assert!(
            p.metadata.deletion_timestamp.is_none(),
            "{name} was evicted"
        );
    }
    let n1 = nodes.get("n1").await.expect("n1");
    assert_eq!(ready_condition(&n1).map(|c| c.0).as_deref(), Some("True"));
    assert!(taint_keys(&n1).is_empty());
    n1_beats.cancel();
}

/// `kubectl get pods` of the Deployment `app=survivor`: `(name, node, phase, terminating)`.
fn survivor_pods(cluster: &UpCluster) -> Vec<(String, String, String, bool)> {
    let out = cluster.kubectl_ok(&[
        "get",
        "pods",
        "-l",
        "app=survivor",
        "-o",
        "jsonpath={range .items[*]}{.metadata.name}{\" \"}{.spec.nodeName}{\" \"}{.status.phase}{\" \"}{.metadata.deletionTimestamp}{\"\\n\"}{end}",
    ]);
    out.lines()
        .map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let field = |i: usize| fields.get(i).copied().unwrap_or("").to_string();
            (field(0), field(1), field(2), !field(3).is_empty())
        })
        .collect()
}

/// Polls `check` until it holds, failing with `what` after [`DEADLINE`].
fn until(what: &str, check: impl FnMut() -> bool) {
    crate::up::poll(what, DEADLINE, check);
}

/// A kind-style three-node cluster whose controller manager is configured as kind users
/// configure it (4 s Leases renewed every second, a 5 s grace period): one worker's
/// kubelet is killed for good; its Node goes NotReady and tainted unreachable, its Pods are
/// evicted once their toleration runs out, and the Deployment's replacements run on the other
/// worker, while the dead node's Pods stay Terminating as upstream leaves them.
#[test]
fn a_killed_kubelets_pods_are_replaced_on_another_node() {
    crate::up::ensure_test_image();
    let cluster = UpCluster::start(Some("tests/configs/three-nodes-quick-eviction.yaml"));
    let (w1, w2) = (
        format!("{}-worker", cluster.name),
        format!("{}-worker2", cluster.name),
    );
    cluster.apply(&format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: survivor\nspec:\n  replicas: 4\n  selector:\n    matchLabels: {{app: survivor}}\n  template:\n    metadata:\n      labels: {{app: survivor}}\n    spec:\n      terminationGracePeriodSeconds: 1\n      tolerations:\n      - {{key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 2}}\n      - {{key: node.kubernetes.io/not-ready, operator: Exists, effect: NoExecute, tolerationSeconds: 2}}\n      containers:\n      - name: main\n        image: {TEST_IMAGE}\n        command: [sleep, \"3600\"]\n"
    ));
    let mut running = Vec::new();
    until("four Pods running on both workers", || {
        running = survivor_pods(&cluster);
        running.len() == 4
            && running.iter().all(|p| p.2 == "Running")
            && [&w1, &w2]
                .iter()
                .all(|w| running.iter().any(|p| &p.1 == *w))
    });
    let doomed: Vec<String> = running
        .iter()
        .filter(|p| p.1 == w1)
        .map(|p| p.0.clone())
        .collect();

    let pid = cluster.pid(&format!("kubelet {w1}"));
    let killed = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());

    until("the silent worker NotReady in kubectl get nodes", || {
        cluster
            .kubectl_ok(&["get", "nodes", "--no-headers"])
            .lines()
            .any(|l| l.split_whitespace().take(2).eq([w1.as_str(), "NotReady"]))
    });
    let ready = cluster.kubectl_ok(&[
        "get",
        "node",
        &w1,
        "-o",
        "jsonpath={.status.conditions[?(@.type==\"Ready\")].status} {.status.conditions[?(@.type==\"Ready\")].message}",
    ]);
    assert_eq!(ready, "Unknown Kubelet stopped posting node status.");
    // The taints follow the condition, as upstream's, in the controller's next pass.
    until("the silent worker tainted unreachable", || {
        let taints = cluster.kubectl_ok(&[
            "get",
            "node",
            &w1,
            "-o",
            "jsonpath={range .spec.taints[*]}{.key}:{.effect} {end}",
        ]);
        taints.contains("node.kubernetes.io/unreachable:NoExecute")
            && taints.contains("node.kubernetes.io/unreachable:NoSchedule")
    });

    until("four live replacements running on the other worker", || {
        let pods = survivor_pods(&cluster);
        let live: Vec<_> = pods.iter().filter(|p| !p.3).collect();
        live.len() == 4 && live.iter().all(|p| p.1 == w2 && p.2 == "Running")
    });
    // The evicted Pods carry the DisruptionTarget condition and, with no kubelet to finish
    // them, stay Terminating on the dead node, as upstream leaves them.
    for name in &doomed {
        let reason = cluster.kubectl_ok(&[
            "get",
            "pod",
            name,
            "-o",
            "jsonpath={.status.conditions[?(@.type==\"DisruptionTarget\")].reason} {.metadata.deletionTimestamp}",
        ]);
        let (reason, deleted) = reason.split_once(' ').unwrap_or((&reason, ""));
        assert_eq!(reason, "DeletionByTaintManager", "{name}");
        assert!(!deleted.is_empty(), "{name} is not being deleted");
    }
    let described = cluster.kubectl_ok(&["get", "pods", "-l", "app=survivor"]);
    assert_eq!(
        described
            .lines()
            .filter(|l| l.contains("Terminating"))
            .count(),
        doomed.len(),
        "{described}"
    );
}
