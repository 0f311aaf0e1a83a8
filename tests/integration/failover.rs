//! Controller managers that fail over mid-rollout: two run (one leads through the Lease, the
//! other waits), the leader is killed while a Deployment rolls out, and the standby finishes
//! the rollout. The Pods' container runtime is a small kubelet stand-in in the test (it marks
//! bound Pods Running and Ready and finishes deletions), so what is checked is the controllers
//! alone: no Pod made twice, none lost, the strategy's bounds kept throughout.

use std::time::{Duration, Instant};

use futures::StreamExt as _;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::deployments::watch_extremes;
use crate::harness::TestCluster;

const DEADLINE: Duration = Duration::from_secs(120);

/// Marks every Pod bound to a node Running and Ready, and deletes at once every Pod marked
/// for deletion, as a kubelet whose containers start and stop instantly would.
async fn stand_in_kubelet(client: kube::Client, stop: CancellationToken) {
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let mut events = watcher::watcher(pods.clone(), watcher::Config::default()).boxed();
    loop {
        let event = tokio::select! {
            event = events.next() => event,
            () = stop.cancelled() => return,
        };
        let Some(Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod))) = event else {
            continue;
        };
        let name = pod.metadata.name.clone().unwrap_or_default();
        if pod.metadata.deletion_timestamp.is_some() {
            let _ = pods
                .delete(&name, &DeleteParams::default().grace_period(0))
                .await;
            continue;
        }
        let bound = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_ref())
            .is_some();
        let running = pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
        if bound && !running {
            let now = jiff::Timestamp::now().to_string();
            let status = json!({"status": {
                "phase": "Running",
                "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": now}],
            }});
            let _ = pods
                .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
                .await;
        }
    }
}

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

fn hash_of(rs: &ReplicaSet) -> String {
    rs.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("pod-template-hash"))
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn a_rollout_survives_its_controller_manager_being_killed_midway() {
    let mut cluster = TestCluster::builder().scheduler().start().await;
    let client = cluster.client().await;
    for i in 0..3 {
        let node: Node = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Node", "metadata": {"name": format!("n{i}")},
            "status": {
                "capacity": {"cpu": "8", "memory": "16Gi", "pods": "110"},
                "allocatable": {"cpu": "8", "memory": "16Gi", "pods": "110"},
                "conditions": [{"type": "Ready", "status": "True"}],
            },
        }))
        .expect("node");
        Api::<Node>::all(client.clone())
            .create(&PostParams::default(), &node)
            .await
            .expect("node created");
    }
    let stop = CancellationToken::new();
    let kubelet = tokio::spawn(stand_in_kubelet(client.clone(), stop.clone()));

    // Two controller managers: the first leads, the second waits for the Lease.
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-system");
    let first = cluster.start_controller_manager();
    eventually("a leader", async || {
        let lease = leases
            .get_opt("kube-controller-manager")
            .await
            .expect("lease");
        lease
            .and_then(|l| l.spec?.holder_identity)
            .filter(|h| !h.is_empty())
    })
    .await;
    let second = cluster.start_controller_manager();

    // 10 replicas, 25 % surge and unavailability: at most 13 Pods, at least 8 ready. Each
    // step waits a second for minReadySeconds, so the rollout takes several seconds.
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let deployment: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {
            "replicas": 10, "minReadySeconds": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "main", "image": "web:1"}]},
            },
        },
    }))
    .expect("deployment");
    deployments
        .create(&PostParams::default(), &deployment)
        .await
        .expect("deployment created");
    let available = |want_image: &'static str| {
        let deployments = deployments.clone();
        async move || {
            let d = deployments.get("web").await.expect("deployment");
            let status = d.status.clone().unwrap_or_default();
            let image = d.spec.as_ref()?.template.spec.as_ref()?.containers[0]
                .image
                .clone();
            (image.as_deref() == Some(want_image)
                && status.observed_generation == d.metadata.generation
                && status.updated_replicas == Some(10)
                && status.available_replicas == Some(10)
                && status.replicas == Some(10))
            .then_some(())
        }
    };
    eventually("the first rollout", available("web:1")).await;

    let watching = CancellationToken::new();
    let extremes = tokio::spawn(watch_extremes(
        client.clone(),
        "web".into(),
        watching.clone(),
    ));
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "web:2"}]}}}});
    deployments
        .patch("web", &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .expect("new image");
    // Midway: some Pods of the new template are up, not all.
    let replica_sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    eventually("the rollout under way", async || {
        let d = deployments.get("web").await.expect("deployment");
        let updated = d.status.and_then(|s| s.updated_replicas).unwrap_or(0);
        (1..10).contains(&updated).then_some(())
    })
    .await;
    cluster.kill_controller_manager(first);
    assert!(cluster.controller_manager_running(second));
    eventually("the rollout finished by the standby", available("web:2")).await;
    watching.cancel();
    let extremes = extremes.await.expect("the watch");

    assert!(extremes.pods_seen >= 20, "{extremes:?}");
    assert!(
        extremes.most_live <= 13,
        "more than replicas + maxSurge: {extremes:?}"
    );
    assert!(
        extremes.fewest_ready.is_some_and(|f| f >= 8),
        "fewer than replicas - maxUnavailable ready: {extremes:?}"
    );
    // One ReplicaSet per template, the old one scaled to zero; exactly ten Pods, all new.
    let sets = replica_sets
        .list(&ListParams::default())
        .await
        .expect("replica sets");
    assert_eq!(
        sets.items.len(),
        2,
        "{:?}",
        sets.items.iter().map(hash_of).collect::<Vec<_>>()
    );
    let new_hash = eventually(
        "ten Pods of the new template and nothing else",
        async || {
            let pods = Api::<Pod>::namespaced(client.clone(), "default")
                .list(&ListParams::default().labels("app=web"))
                .await
                .expect("pods");
            let hashes: Vec<String> = pods
                .items
                .iter()
                .map(|p| {
                    p.metadata
                        .labels
                        .as_ref()
                        .and_then(|l| l.get("pod-template-hash"))
                        .cloned()
                        .unwrap_or_default()
                })
                .collect();
            (hashes.len() == 10 && hashes.iter().all(|h| *h == hashes[0]))
                .then(|| hashes[0].clone())
        },
    )
    .await;
    for rs in &sets.items {
        let replicas = rs.spec.as_ref().and_then(|s| s.replicas);
        let want = if hash_of(rs) == new_hash { 10 } else { 0 };
        assert_eq!(replicas, Some(want), "ReplicaSet {:?}", rs.metadata.name);
    }
    stop.cancel();
    kubelet.await.expect("stand-in kubelet");
}
