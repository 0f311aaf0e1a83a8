//! The controller manager (Pod garbage collection, leader election) against real etcd and the
//! real API server, and the kubelet's restart counts across sandboxes on real Docker.

use std::time::{Duration, Instant};

use futures::TryStreamExt as _;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, Node, Pod, PodTemplate};
use kube::api::{
    DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::Api;
use serde_json::json;

use crate::harness::TestCluster;
use crate::up::{UpCluster, TEST_IMAGE};

/// Generous: the CI machine is slow.
const DEADLINE: Duration = Duration::from_secs(120);

async fn create_node(client: &kube::Client, name: &str) {
    let node: Node = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
    }))
    .expect("node");
    Api::<Node>::all(client.clone())
        .create(&PostParams::default(), &node)
        .await
        .expect("node created");
}

async fn create_pod(client: &kube::Client, name: &str, node: Option<&str>) -> Pod {
    let mut spec = json!({
        "terminationGracePeriodSeconds": 3600,
        "containers": [{"name": "c", "image": "busybox"}],
    });
    if let Some(node) = node {
        spec["nodeName"] = json!(node);
    }
    let pod: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec,
    }))
    .expect("pod");
    Api::<Pod>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &pod)
        .await
        .expect("pod created")
}

/// Polls `check` every 200 ms until it holds, failing with `what` after [`DEADLINE`].
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
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn lease(client: &kube::Client) -> Option<Lease> {
    Api::<Lease>::namespaced(client.clone(), "kube-system")
        .get_opt("kube-controller-manager")
        .await
        .expect("lease readable")
}

fn holder(lease: &Lease) -> String {
    lease
        .spec
        .as_ref()
        .and_then(|s| s.holder_identity.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn pods_bound_to_a_deleted_node_are_force_deleted_and_others_stay() {
    let mut cluster = TestCluster::builder().start().await;
    let client = cluster.client().await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    create_node(&client, "gc-doomed").await;
    create_node(&client, "gc-alive").await;
    let orphan = create_pod(&client, "orphan", Some("gc-doomed")).await;
    create_pod(&client, "terminating", Some("gc-doomed")).await;
    create_pod(&client, "bound", None).await;
    let binding = json!({
        "apiVersion": "v1", "kind": "Binding", "metadata": {"name": "bound"},
        "target": {"apiVersion": "v1", "kind": "Node", "name": "gc-doomed"},
    });
    pods.create_subresource::<_, serde_json::Value>(
        "binding",
        "bound",
        &PostParams::default(),
        &binding,
    )
    .await
    .expect("bound through pods/binding");
    create_pod(&client, "survivor", Some("gc-alive")).await;
    // A graceful delete of a bound Pod only marks it: no kubelet will ever confirm it.
    pods.delete("terminating", &DeleteParams::default())
        .await
        .expect("graceful delete");
    let marked = pods.get("terminating").await.expect("still there");
    assert!(marked.metadata.deletion_timestamp.is_some());

    cluster.start_controller_manager();
    let rv = orphan.metadata.resource_version.clone().expect("rv");
    let watch = pods
        .watch(&WatchParams::default().fields("metadata.name=orphan"), &rv)
        .await
        .expect("watch");
    let seen = tokio::spawn(async move {
        let mut events = std::pin::pin!(watch);
        let mut seen = Vec::new();
        while let Ok(Some(event)) = events.try_next().await {
            let deleted = matches!(event, WatchEvent::Deleted(_));
            seen.push(event);
            if deleted {
                break;
            }
        }
        seen
    });

    Api::<Node>::all(client.clone())
        .delete("gc-doomed", &DeleteParams::default())
        .await
        .expect("node deleted");
    for name in ["orphan", "terminating", "bound"] {
        eventually(&format!("{name} force-deleted"), async || {
            pods.get_opt(name)
                .await
                .expect("pod readable")
                .is_none()
                .then_some(())
        })
        .await;
    }
    let survivor = pods.get("survivor").await.expect("survivor stays");
    assert!(survivor.metadata.deletion_timestamp.is_none());
    assert_ne!(
        survivor.status.and_then(|s| s.phase).as_deref(),
        Some("Failed")
    );

    // As upstream: the Pod is moved to Failed with a DisruptionTarget condition, then deleted.
    let seen = tokio::time::timeout(DEADLINE, seen)
        .await
        .expect("the watch ends with the deletion")
        .expect("watch task");
    let failed = seen.iter().find_map(|e| match e {
        WatchEvent::Modified(p)
            if p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Failed") =>
        {
            Some(p)
        }
        _ => None,
    });
    let failed = failed.unwrap_or_else(|| panic!("no Failed update before deletion: {seen:?}"));
    let condition = failed
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "DisruptionTarget"))
        .expect("DisruptionTarget condition");
    assert_eq!(condition.status, "True");
    assert_eq!(condition.reason.as_deref(), Some("DeletionByPodGC"));
    assert_eq!(
        condition.message.as_deref(),
        Some("PodGC: node no longer exists")
    );
    assert!(matches!(seen.last(), Some(WatchEvent::Deleted(_))));
}

#[tokio::test]
async fn the_oldest_terminated_pods_beyond_the_threshold_are_deleted() {
    let mut cluster = TestCluster::builder().start().await;
    let client = cluster.client().await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    create_node(&client, "n1").await;
    for name in ["a-oldest", "b-older", "c-newest"] {
        create_pod(&client, name, Some("n1")).await;
        pods.patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Succeeded"}})),
        )
        .await
        .expect("status written");
    }
    create_pod(&client, "running", Some("n1")).await;
    cluster.start_controller_manager_with(&["--terminated-pod-gc-threshold", "1"]);
    for name in ["a-oldest", "b-older"] {
        eventually(&format!("{name} deleted"), async || {
            pods.get_opt(name)
                .await
                .expect("pod readable")
                .is_none()
                .then_some(())
        })
        .await;
    }
    for name in ["c-newest", "running"] {
        let pod = pods.get(name).await.expect("kept");
        assert!(pod.metadata.deletion_timestamp.is_none(), "{name}");
    }
}

#[tokio::test]
async fn a_standby_controller_manager_takes_over_when_the_leader_dies() {
    let mut cluster = TestCluster::builder().start().await;
    let client = cluster.client().await;
    let first = cluster.start_controller_manager();
    let leader = eventually("a leader", async || {
        lease(&client)
            .await
            .map(|l| holder(&l))
            .filter(|h| !h.is_empty())
    })
    .await;
    let second = cluster.start_controller_manager();
    // While both run, the leader keeps renewing and the standby never takes the Lease.
    let mut renewals = Vec::new();
    eventually("three renewals by the leader", async || {
        let l = lease(&client).await.expect("lease exists");
        assert_eq!(
            holder(&l),
            leader,
            "the standby took the lease from a live leader"
        );
        let renewed = l.spec.and_then(|s| s.renew_time).map(|t| t.0);
        if renewals.last() != Some(&renewed) {
            renewals.push(renewed);
        }
        (renewals.len() > 3).then_some(())
    })
    .await;
    assert!(cluster.controller_manager_running(second));

    cluster.kill_controller_manager(first);
    let successor = eventually("a new leader", async || {
        let l = lease(&client).await?;
        let h = holder(&l);
        (!h.is_empty() && h != leader).then_some(l)
    })
    .await;
    let spec = successor.spec.clone().expect("spec");
    assert!(spec.lease_transitions.unwrap_or(0) >= 1, "{spec:?}");
    assert_eq!(spec.lease_duration_seconds, Some(4));
    let new_leader = holder(&successor);
    let events: Api<Event> = Api::namespaced(client.clone(), "kube-system");
    eventually("the LeaderElection event", async || {
        let list = events.list(&ListParams::default()).await.expect("events");
        list.items
            .iter()
            .any(|e| {
                e.reason.as_deref() == Some("LeaderElection")
                    && e.message.as_deref() == Some(&format!("{new_leader} became leader"))
                    && e.involved_object.kind.as_deref() == Some("Lease")
            })
            .then_some(())
    })
    .await;

    // The new leader runs the controllers: a Pod on a node that never existed goes.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    create_pod(&client, "stray", Some("never-registered")).await;
    eventually("stray force-deleted by the new leader", async || {
        pods.get_opt("stray")
            .await
            .expect("pod readable")
            .is_none()
            .then_some(())
    })
    .await;
}

#[tokio::test]
async fn the_controller_manager_identity_may_only_do_what_its_controllers_need() {
    let cluster = TestCluster::builder().start().await;
    let admin = cluster.client().await;
    create_pod(&admin, "victim", Some("n1")).await;
    let cm =
        rkube::client::from_kubeconfig(&cluster.dir.path().join("controller-manager.kubeconfig"))
            .await
            .expect("controller manager client");
    let pods: Api<Pod> = Api::namespaced(cm.clone(), "default");
    pods.list(&ListParams::default())
        .await
        .expect("may list pods");
    Api::<Node>::all(cm.clone())
        .list(&ListParams::default())
        .await
        .expect("may list nodes");
    let refused = |r: Result<_, kube::Error>| match r {
        Err(kube::Error::Api(e)) => e.code == 403 && e.reason == "Forbidden",
        _ => false,
    };
    let pod: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "made-by-cm"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }))
    .expect("pod");
    // The ReplicaSet controller creates Pods (upstream's replicaset-controller role).
    pods.create(&PostParams::default(), &pod)
        .await
        .expect("may create pods");
    let node: Node =
        serde_json::from_value(json!({"metadata": {"name": "cm-node"}})).expect("node");
    assert!(refused(
        Api::<Node>::all(cm.clone())
            .create(&PostParams::default(), &node)
            .await
            .map(|_| ())
    ));
    // The garbage collector's role reads, changes and deletes any object, but creates none
    // (ConfigMaps it may create, as the root CA publisher; PodTemplates no controller makes).
    let template: PodTemplate =
        serde_json::from_value(json!({"metadata": {"name": "made-by-cm"}})).expect("template");
    assert!(refused(
        Api::<PodTemplate>::namespaced(cm.clone(), "default")
            .create(&PostParams::default(), &template)
            .await
            .map(|_| ())
    ));
    // The Job controller reads Jobs and writes their status; the CronJob controller creates
    // Jobs, but no controller creates CronJobs.
    let jobs: Api<k8s_openapi::api::batch::v1::Job> = Api::namespaced(cm.clone(), "default");
    jobs.list(&ListParams::default())
        .await
        .expect("may list jobs");
    let cronjobs: Api<k8s_openapi::api::batch::v1::CronJob> =
        Api::namespaced(cm.clone(), "default");
    let cronjob = serde_json::from_value(json!({"metadata": {"name": "made-by-cm"},
        "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {}}}}}))
    .expect("cronjob");
    assert!(refused(
        cronjobs
            .create(&PostParams::default(), &cronjob)
            .await
            .map(|_| ())
    ));
    pods.delete("victim", &DeleteParams::default().grace_period(0))
        .await
        .expect("may force-delete pods");
}

fn docker(args: &[&str]) -> String {
    let out = std::process::Command::new("docker")
        .args(args)
        .output()
        .expect("docker runs");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test]
async fn a_new_sandbox_keeps_counting_restarts_and_shows_the_last_state() {
    let cluster = UpCluster::start(None);
    cluster.apply(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: sandboxed\nspec:\n  terminationGracePeriodSeconds: 2\n  containers:\n  - name: main\n    image: {TEST_IMAGE}\n    command: [\"sleep\", \"3600\"]\n"
    ));
    let pods: Api<Pod> = Api::namespaced(cluster.client().await, "default");
    let main = |p: &Pod| {
        p.status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|c| c.iter().find(|c| c.name == "main").cloned())
    };
    let running =
        |p: &Pod| main(p).is_some_and(|c| c.state.as_ref().is_some_and(|s| s.running.is_some()));
    let before = eventually("main running", async || {
        pods.get_opt("sandboxed")
            .await
            .ok()
            .flatten()
            .filter(running)
    })
    .await;
    let before = main(&before).expect("status");
    assert_eq!(before.restart_count, 0);

    let cluster_label = format!("label=io.rkube.cluster={}", cluster.name);
    let pause = docker(&[
        "ps",
        "-q",
        "--filter",
        &cluster_label,
        "--filter",
        "label=io.kubernetes.pod.name=sandboxed",
        "--filter",
        "label=io.kubernetes.container.name=POD",
    ]);
    assert_eq!(pause.lines().count(), 1, "one pause container: {pause:?}");
    docker(&["kill", &pause]);

    let after = eventually("main running again in a new sandbox", async || {
        pods.get_opt("sandboxed")
            .await
            .ok()
            .flatten()
            .filter(running)
            .and_then(|p| main(&p))
            .filter(|c| c.container_id != before.container_id)
    })
    .await;
    assert!(after.restart_count > before.restart_count, "{after:?}");
    let last = after
        .last_state
        .as_ref()
        .and_then(|l| l.terminated.as_ref())
        .unwrap_or_else(|| panic!("no lastState.terminated: {after:?}"));
    assert_eq!(last.container_id, before.container_id);
    let described = cluster.kubectl_ok(&["describe", "pod", "sandboxed"]);
    assert!(described.contains("SandboxChanged"), "{described}");
    let row = cluster.kubectl_ok(&["get", "pod", "sandboxed", "--no-headers"]);
    assert_eq!(row.split_whitespace().nth(3), Some("1"), "{row}");

    // `rkube up` also started the controller manager, which took its Lease.
    let client = cluster.client().await;
    eventually("the controller manager's lease", async || {
        lease(&client)
            .await
            .map(|l| holder(&l))
            .filter(|h| !h.is_empty())
    })
    .await;
}
