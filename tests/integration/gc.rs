//! The garbage collector and deletion propagation with the real kubectl on a real cluster
//! (`rkube up`): `kubectl delete --cascade=background|orphan|foreground` on a ReplicaSet, and
//! objects whose owners are gone.

use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::TestCluster;
use crate::raw::{admin, Raw};
use crate::up::{UpCluster, TEST_IMAGE};

const DEADLINE: Duration = Duration::from_secs(120);

/// A ReplicaSet of `replicas` Pods labelled `app: <name>`; `finalizer` is put on each Pod so
/// that a test decides when they may go.
fn replica_set(name: &str, replicas: u32, finalizer: Option<&str>) -> String {
    let finalizers = finalizer
        .map(|f| format!("      finalizers: [\"{f}\"]\n"))
        .unwrap_or_default();
    format!(
        "apiVersion: apps/v1\nkind: ReplicaSet\nmetadata:\n  name: {name}\nspec:\n  replicas: {replicas}\n  selector:\n    matchLabels:\n      app: {name}\n  template:\n    metadata:\n      labels:\n        app: {name}\n{finalizers}    spec:\n      terminationGracePeriodSeconds: 1\n      containers:\n      - name: c\n        image: {TEST_IMAGE}\n        imagePullPolicy: Never\n        command: [\"sleep\", \"3600\"]\n"
    )
}

/// Polls `check` until it holds, failing with `what` after [`DEADLINE`].
fn eventually(what: &str, check: impl FnMut() -> bool) {
    crate::up::poll(what, DEADLINE, check);
}

/// `name uid owner-uids deletionTimestamp` of each Pod labelled `app=<app>`, one a line.
fn pods(cluster: &UpCluster, app: &str) -> Vec<Vec<String>> {
    let out = cluster.kubectl_ok(&[
        "get",
        "pods",
        "-l",
        &format!("app={app}"),
        "-o",
        "jsonpath={range .items[*]}{.metadata.name}{\"|\"}{.metadata.uid}{\"|\"}{.metadata.ownerReferences[*].uid}{\"|\"}{.metadata.deletionTimestamp}{\"\\n\"}{end}",
    ]);
    out.lines()
        .map(|l| l.split('|').map(str::to_string).collect())
        .collect()
}

fn live(pods: &[Vec<String>]) -> usize {
    pods.iter().filter(|p| p[3].is_empty()).count()
}

fn uid(cluster: &UpCluster, kind: &str, name: &str) -> String {
    cluster.kubectl_ok(&["get", kind, name, "-o", "jsonpath={.metadata.uid}"])
}

fn exists(cluster: &UpCluster, kind: &str, name: &str) -> bool {
    let out = cluster.kubectl_ok(&["get", kind, name, "--ignore-not-found", "-o", "name"]);
    !out.trim().is_empty()
}

#[test]
fn a_replicaset_deleted_by_default_takes_its_pods_with_it() {
    let cluster = UpCluster::start(None);
    cluster.apply(&replica_set("web", 2, None));
    eventually("two pods", || live(&pods(&cluster, "web")) == 2);
    let out = cluster.kubectl_ok(&["delete", "rs", "web"]);
    assert_eq!(out.trim(), "replicaset.apps \"web\" deleted");
    assert!(
        !exists(&cluster, "rs", "web"),
        "background deletion is at once"
    );
    eventually("the pods collected", || pods(&cluster, "web").is_empty());
}

#[test]
fn orphaned_pods_lose_their_owner_and_a_new_replicaset_adopts_them() {
    let cluster = UpCluster::start(None);
    cluster.apply(&replica_set("web", 2, None));
    eventually("two pods", || live(&pods(&cluster, "web")) == 2);
    let before = pods(&cluster, "web");
    let old_uid = uid(&cluster, "rs", "web");
    assert!(before.iter().all(|p| p[2] == old_uid), "{before:?}");

    cluster.kubectl_ok(&["delete", "rs", "web", "--cascade=orphan"]);
    assert!(!exists(&cluster, "rs", "web"));
    let orphans = pods(&cluster, "web");
    let names = |pods: &[Vec<String>]| {
        let mut n: Vec<String> = pods.iter().map(|p| p[0].clone()).collect();
        n.sort();
        n
    };
    assert_eq!(names(&orphans), names(&before), "the pods stay");
    assert!(
        orphans.iter().all(|p| p[2].is_empty() && p[3].is_empty()),
        "no owner left, none deleted: {orphans:?}"
    );

    cluster.apply(&replica_set("web", 2, None));
    let new_uid = uid(&cluster, "rs", "web");
    assert_ne!(new_uid, old_uid);
    eventually("the orphans adopted", || {
        let now = pods(&cluster, "web");
        now.iter().all(|p| p[2] == new_uid) && names(&now) == names(&before)
    });
    let created = cluster.kubectl_ok(&[
        "get",
        "events",
        "--field-selector",
        &format!("involvedObject.uid={new_uid},reason=SuccessfulCreate"),
        "-o",
        "name",
    ]);
    assert!(created.trim().is_empty(), "nothing created: {created}");
}

#[test]
fn a_foreground_deletion_keeps_the_replicaset_until_its_pods_are_gone() {
    let cluster = UpCluster::start(None);
    // The Pods' own finalizer keeps them, so the ReplicaSet's wait can be seen.
    cluster.apply(&replica_set("web", 2, Some("example.com/hold")));
    eventually("two pods", || live(&pods(&cluster, "web")) == 2);

    cluster.kubectl_ok(&[
        "delete",
        "rs",
        "web",
        "--cascade=foreground",
        "--wait=false",
    ]);
    eventually("the pods deleted by the collector", || {
        let now = pods(&cluster, "web");
        now.len() == 2 && live(&now) == 0
    });
    let marks = cluster.kubectl_ok(&[
        "get",
        "rs",
        "web",
        "-o",
        "jsonpath={.metadata.deletionTimestamp}|{.metadata.finalizers}",
    ]);
    let (stamp, finalizers) = marks.split_once('|').expect("two fields");
    assert!(!stamp.is_empty(), "{marks}");
    assert_eq!(finalizers, "[\"foregroundDeletion\"]");

    for pod in pods(&cluster, "web") {
        cluster.kubectl_ok(&[
            "patch",
            "pod",
            &pod[0],
            "--type=merge",
            "-p",
            "{\"metadata\":{\"finalizers\":null}}",
        ]);
    }
    eventually("the pods gone", || pods(&cluster, "web").is_empty());
    eventually("the replicaset gone after them", || {
        !exists(&cluster, "rs", "web")
    });
}

#[test]
fn objects_whose_owner_uid_does_not_exist_are_collected() {
    let cluster = UpCluster::start(None);
    cluster.apply("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: owner\ndata: {a: b}\n");
    let owner_uid = uid(&cluster, "configmap", "owner");
    let pod = |name: &str, owner: &str, uid: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  labels: {{app: orphans}}\n  ownerReferences:\n  - apiVersion: v1\n    kind: ConfigMap\n    name: {owner}\n    uid: {uid}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: c\n    image: {TEST_IMAGE}\n    imagePullPolicy: Never\n    command: [\"sleep\", \"3600\"]\n"
        )
    };
    cluster.apply(&format!(
        "{}---\n{}---\n{}",
        pod("absent", "ghost", "00000000-0000-0000-0000-000000000001"),
        pod("wrong-uid", "owner", "00000000-0000-0000-0000-000000000002"),
        pod("owned", "owner", &owner_uid),
    ));
    // A ConfigMap owned by the ConfigMap: any kind can own and be owned.
    cluster.apply(&format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: dependent\n  ownerReferences:\n  - apiVersion: v1\n    kind: ConfigMap\n    name: owner\n    uid: {owner_uid}\n"
    ));
    eventually("the pods with dangling owners collected", || {
        let names: Vec<String> = pods(&cluster, "orphans")
            .into_iter()
            .filter(|p| p[3].is_empty())
            .map(|p| p[0].clone())
            .collect();
        names == ["owned"]
    });
    assert!(exists(&cluster, "configmap", "dependent"));

    cluster.kubectl_ok(&["delete", "configmap", "owner"]);
    eventually("the owner's dependents collected", || {
        !exists(&cluster, "configmap", "dependent") && pods(&cluster, "orphans").is_empty()
    });
}

/// `deletionTimestamp|finalizers` of a ConfigMap, or None once it is gone.
fn marks(cluster: &UpCluster, name: &str) -> Option<String> {
    let out = cluster.kubectl_ok(&[
        "get",
        "configmap",
        name,
        "--ignore-not-found",
        "-o",
        "jsonpath={.metadata.deletionTimestamp}|{.metadata.finalizers}",
    ]);
    (!out.is_empty()).then_some(out)
}

/// A foreground deletion goes down a chain: the middle object, having dependents of its
/// own, is deleted in the foreground too, and each owner goes only after what it blocks.
#[test]
fn a_foreground_deletion_waits_for_the_whole_chain_of_dependents() {
    let cluster = UpCluster::start(None);
    let config_map = |name: &str, owner: Option<(&str, &str)>, finalizers: &str| {
        let owner = owner
            .map(|(name, uid)| {
                format!(
                    "  ownerReferences:\n  - apiVersion: v1\n    kind: ConfigMap\n    name: {name}\n    uid: {uid}\n    blockOwnerDeletion: true\n"
                )
            })
            .unwrap_or_default();
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  finalizers: {finalizers}\n{owner}"
        )
    };
    cluster.apply(&config_map("top", None, "[]"));
    let top = uid(&cluster, "configmap", "top");
    cluster.apply(&config_map("middle", Some(("top", &top)), "[]"));
    let middle = uid(&cluster, "configmap", "middle");
    // The bottom one's own finalizer holds the chain until the test lets it go.
    cluster.apply(&config_map(
        "bottom",
        Some(("middle", &middle)),
        "[example.com/hold]",
    ));

    cluster.kubectl_ok(&[
        "delete",
        "configmap",
        "top",
        "--cascade=foreground",
        "--wait=false",
    ]);
    eventually("the bottom one deleted", || {
        marks(&cluster, "bottom").is_some_and(|m| !m.starts_with('|'))
    });
    for name in ["top", "middle"] {
        let m = marks(&cluster, name).expect("still there");
        let (stamp, finalizers) = m.split_once('|').expect("two fields");
        assert!(!stamp.is_empty(), "{name}: {m}");
        assert_eq!(finalizers, "[\"foregroundDeletion\"]", "{name}");
    }

    cluster.kubectl_ok(&[
        "patch",
        "configmap",
        "bottom",
        "--type=merge",
        "-p",
        "{\"metadata\":{\"finalizers\":null}}",
    ]);
    eventually("the whole chain gone", || {
        ["top", "middle", "bottom"]
            .iter()
            .all(|n| marks(&cluster, n).is_none())
    });
}

async fn call(raw: &Raw, method: &str, path: &str, body: Value, code: u16) -> Value {
    let bytes = if body.is_null() {
        Vec::new()
    } else {
        body.to_string().into_bytes()
    };
    let (got, value) = raw.json(method, path, "application/json", bytes).await;
    assert_eq!(got, code, "{method} {path}: {value}");
    value
}

/// The API server's half, without a controller manager: the propagation policy (or the
/// legacy `orphanDependents`) sets the collector's finalizer and leaves the object marked;
/// `orphanDependents=false` on an object that stays is answered 202, as upstream.
#[tokio::test]
async fn delete_options_set_the_collectors_finalizers() {
    let cluster = TestCluster::builder().start().await;
    let raw = admin(&cluster);
    let sets = "/apis/apps/v1/namespaces/default/replicasets";
    let rs = |name: &str, finalizers: Value| {
        json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": name, "finalizers": finalizers},
            "spec": {"selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}})
    };
    call(&raw, "POST", sets, rs("fg", json!([])), 201).await;
    let marked = call(
        &raw,
        "DELETE",
        &format!("{sets}/fg?propagationPolicy=Foreground"),
        Value::Null,
        200,
    )
    .await;
    assert_eq!(
        marked["metadata"]["finalizers"],
        json!(["foregroundDeletion"])
    );
    assert!(marked["metadata"]["deletionTimestamp"].is_string());
    let body = json!({"kind": "DeleteOptions", "apiVersion": "v1", "orphanDependents": true});
    let swapped = call(&raw, "DELETE", &format!("{sets}/fg"), body, 200).await;
    assert_eq!(swapped["metadata"]["finalizers"], json!(["orphan"]));
    let got = call(&raw, "GET", &format!("{sets}/fg"), Value::Null, 200).await;
    assert_eq!(got["metadata"]["finalizers"], json!(["orphan"]));
    call(
        &raw,
        "DELETE",
        &format!("{sets}/fg?propagationPolicy=Background"),
        Value::Null,
        200,
    )
    .await;
    call(&raw, "GET", &format!("{sets}/fg"), Value::Null, 404).await;

    call(
        &raw,
        "POST",
        sets,
        rs("held", json!(["example.com/hold"])),
        201,
    )
    .await;
    let kept = call(
        &raw,
        "DELETE",
        &format!("{sets}/held?orphanDependents=false"),
        Value::Null,
        202,
    )
    .await;
    assert_eq!(kept["metadata"]["finalizers"], json!(["example.com/hold"]));
    let patch = json!({"metadata": {"finalizers": null}})
        .to_string()
        .into_bytes();
    let (code, _) = raw
        .json(
            "PATCH",
            &format!("{sets}/held"),
            "application/merge-patch+json",
            patch,
        )
        .await;
    assert_eq!(code, 200);
    call(&raw, "GET", &format!("{sets}/held"), Value::Null, 404).await;
}
