//! The generic store and the kinds' create, update, patch and delete rules, on the in-memory
//! storage: every rule the registry owns, proven without etcd or HTTP.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::decode::Parsed;
use super::{
    binding, namespaces, CreateOptions, DeleteOptions, FieldValidation, Propagation, Registry,
    Store,
};
use crate::meta::patch::PatchType;
use crate::storage::{MemoryStorage, Storage};

const PREFIX: &str = "/registry";

struct Fixture {
    registry: Registry,
    shutdown: CancellationToken,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

impl Fixture {
    async fn new() -> Fixture {
        let memory: Arc<dyn Storage> = MemoryStorage::new();
        namespaces::bootstrap_system(memory.as_ref(), PREFIX)
            .await
            .expect("system namespaces");
        super::serviceaccounts::seed_default(memory.as_ref(), PREFIX, "default")
            .await
            .expect("default account");
        let shutdown = CancellationToken::new();
        let registry = Registry::start(
            memory,
            PREFIX,
            super::kinds(Duration::from_secs(3600)),
            1 << 20,
            &TaskTracker::new(),
            shutdown.clone(),
        )
        .await
        .expect("registry");
        Fixture { registry, shutdown }
    }

    fn store(&self, plural: &str) -> &Store {
        self.registry.get("", plural).expect("a served kind")
    }
}

fn pod(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "busybox:1"}]}})
}

async fn create_pod(f: &Fixture, name: &str) -> Value {
    let (created, _) = f
        .store("pods")
        .create("default", pod(name), &CreateOptions::default())
        .await
        .expect("created");
    created
}

#[tokio::test]
async fn create_sets_system_metadata_and_defaults() {
    let f = Fixture::new().await;
    let mut body = pod("db");
    body["metadata"]["uid"] = json!("mine");
    body["status"] = json!({"phase": "Running"});
    let (created, _) = f
        .store("pods")
        .create("default", body, &CreateOptions::default())
        .await
        .expect("created");
    assert_ne!(created["metadata"]["uid"], "mine");
    assert_eq!(created["metadata"]["namespace"], "default");
    assert!(created["metadata"]["creationTimestamp"].is_string());
    // After the four system namespaces and the `default` account.
    assert_eq!(created["metadata"]["resourceVersion"], "6");
    assert_eq!(created["spec"]["restartPolicy"], "Always");
    assert_eq!(created["status"]["phase"], "Pending");
}

#[tokio::test]
async fn create_refuses_invalid_objects_and_missing_or_terminating_namespaces() {
    let f = Fixture::new().await;
    let pods = f.store("pods");
    let mut bad = pod("db");
    bad["spec"]["containers"] = json!([]);
    let err = pods
        .create("default", bad, &CreateOptions::default())
        .await
        .expect_err("no containers");
    assert_eq!(err.code, 422);
    assert_eq!(err.reason, "Invalid");

    let err = pods
        .create("nowhere", pod("db"), &CreateOptions::default())
        .await
        .expect_err("no namespace");
    assert_eq!(err.code, 404);
    assert_eq!(err.message, "namespaces \"nowhere\" not found");

    let nss = f.store("namespaces");
    nss.create(
        "",
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "going"}}),
        &CreateOptions::default(),
    )
    .await
    .expect("namespace");
    let (marked, gone) = nss
        .delete("", "going", &DeleteOptions::default())
        .await
        .expect("marked");
    assert!(!gone, "the kubernetes finalizer holds it");
    assert_eq!(marked["status"]["phase"], "Terminating");
    let err = pods
        .create("going", pod("db"), &CreateOptions::default())
        .await
        .expect_err("terminating");
    assert_eq!(err.code, 403);
    assert_eq!(
        err.message,
        "pods \"db\" is forbidden: unable to create new content in namespace going because it is being terminated"
    );
}

#[tokio::test]
async fn generate_name_makes_a_unique_name_and_a_dry_run_stores_nothing() {
    let f = Fixture::new().await;
    let pods = f.store("pods");
    let mut body = pod("");
    body["metadata"]["generateName"] = json!("web-");
    let (created, _) = pods
        .create("default", body, &CreateOptions::default())
        .await
        .expect("created");
    let name = created["metadata"]["name"].as_str().expect("name");
    assert!(
        name.starts_with("web-") && name.len() == "web-".len() + 5,
        "{name}"
    );

    let dry = CreateOptions {
        dry_run: true,
        ..CreateOptions::default()
    };
    pods.create("default", pod("ghost"), &dry)
        .await
        .expect("dry run");
    let err = pods.get("default", "ghost").await.expect_err("not stored");
    assert_eq!(err.code, 404);
}

#[tokio::test]
async fn update_checks_name_resource_version_and_uid_and_keeps_status() {
    let f = Fixture::new().await;
    let pods = f.store("pods");
    let created = create_pod(&f, "db").await;
    let opts = CreateOptions::default();

    let mut renamed = created.clone();
    renamed["metadata"]["name"] = json!("other");
    let err = pods
        .update("default", "db", "", renamed, &opts)
        .await
        .expect_err("renamed");
    assert_eq!(err.code, 400);
    assert_eq!(
        err.message,
        "the name of the object (other) does not match the name on the URL (db)"
    );

    let mut moved = created.clone();
    moved["metadata"]["namespace"] = json!("kube-system");
    let err = pods
        .update("default", "db", "", moved, &opts)
        .await
        .expect_err("moved");
    assert_eq!(err.code, 400);
    assert_eq!(
        err.message,
        "the namespace of the object (kube-system) does not match the namespace on the request (default)"
    );

    let mut other_uid = created.clone();
    other_uid["metadata"]["uid"] = json!("u-other");
    let err = pods
        .update("default", "db", "", other_uid, &opts)
        .await
        .expect_err("uid");
    assert_eq!(err.code, 409);
    let expected = format!(
        "Precondition failed: UID in precondition: u-other, UID in object meta: {}",
        created["metadata"]["uid"].as_str().expect("uid")
    );
    assert!(err.message.ends_with(&expected), "{}", err.message);

    let mut labelled = created.clone();
    labelled["metadata"]["labels"] = json!({"app": "db"});
    labelled["status"] = json!({"phase": "Running"});
    let (updated, _) = pods
        .update("default", "db", "", labelled.clone(), &opts)
        .await
        .expect("updated");
    assert_eq!(updated["metadata"]["labels"]["app"], "db");
    assert_eq!(
        updated["status"]["phase"], "Pending",
        "status changes only through pods/status"
    );

    // `labelled` still carries the first resourceVersion: stale now.
    let err = pods
        .update("default", "db", "", labelled.clone(), &opts)
        .await
        .expect_err("stale");
    assert_eq!(err.code, 409);
    assert_eq!(
        err.message,
        "Operation cannot be fulfilled on pods \"db\": the object has been modified; please apply your changes to the latest version and try again"
    );

    // Without a resourceVersion, or with "0", the update is unconditional (upstream's
    // AllowUnconditionalUpdate for Pods).
    for (unset, round) in [(json!("0"), "zero"), (Value::Null, "none")] {
        let mut blind = labelled.clone();
        blind["metadata"]["resourceVersion"] = unset.clone();
        blind["metadata"]["labels"]["round"] = json!(round);
        let (updated, _) = pods
            .update("default", "db", "", blind, &opts)
            .await
            .unwrap_or_else(|e| panic!("resourceVersion {unset}: {e}"));
        assert_eq!(updated["metadata"]["labels"]["round"], round);
    }
}

#[tokio::test]
async fn patch_is_held_to_the_same_rules_as_update() {
    let f = Fixture::new().await;
    let pods = f.store("pods");
    let created = create_pod(&f, "db").await;
    let opts = CreateOptions::default();
    let patch = |body: Value| body.to_string().into_bytes();

    let err = pods
        .patch(
            "default",
            "db",
            "",
            PatchType::Merge,
            &patch(json!({"metadata": {"name": "x"}})),
            &opts,
        )
        .await
        .expect_err("renamed");
    assert_eq!(err.code, 400);
    assert_eq!(
        err.message,
        "the name of the object (x) does not match the name on the URL (db)"
    );

    let err = pods
        .patch(
            "default",
            "db",
            "",
            PatchType::Merge,
            &patch(json!({"metadata": {"uid": "u-other"}})),
            &opts,
        )
        .await
        .expect_err("uid");
    assert_eq!(err.code, 422, "a patch may not change the UID");
    assert_eq!(err.details.causes[0].field, "metadata.uid");

    let err = pods
        .patch(
            "default",
            "db",
            "",
            PatchType::Merge,
            &patch(json!({"metadata": {"resourceVersion": "1"}})),
            &opts,
        )
        .await
        .expect_err("stale");
    assert_eq!(err.code, 409);

    let (patched, _) = pods
        .patch(
            "default",
            "db",
            "",
            PatchType::StrategicMerge,
            &patch(json!({"metadata": {"labels": {"tier": "data"}}})),
            &opts,
        )
        .await
        .expect("patched");
    assert_eq!(patched["metadata"]["labels"]["tier"], "data");
    assert_eq!(patched["metadata"]["uid"], created["metadata"]["uid"]);
}

#[tokio::test]
async fn delete_is_graceful_for_a_bound_pod_and_checks_preconditions() {
    let f = Fixture::new().await;
    let pods = f.store("pods");
    let created = create_pod(&f, "db").await;

    let err = pods
        .delete(
            "default",
            "db",
            &DeleteOptions {
                uid: Some("u-other".into()),
                ..DeleteOptions::default()
            },
        )
        .await
        .expect_err("uid");
    assert_eq!(err.code, 409);

    // An unbound Pod goes at once.
    let (_, gone) = pods
        .delete("default", "db", &DeleteOptions::default())
        .await
        .expect("deleted");
    assert!(gone);
    assert_eq!(pods.get("default", "db").await.expect_err("gone").code, 404);

    // A bound one is marked and left to its kubelet.
    let created_again = create_pod(&f, "db").await;
    assert_ne!(created_again["metadata"]["uid"], created["metadata"]["uid"]);
    binding::create(
        pods,
        "default",
        "db",
        &json!({"target": {"kind": "Node", "name": "n1"}}),
        false,
    )
    .await
    .expect("bound");
    let (marked, gone) = pods
        .delete("default", "db", &DeleteOptions::default())
        .await
        .expect("marked");
    assert!(!gone);
    assert!(marked["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(marked["metadata"]["deletionGracePeriodSeconds"], 30);

    // Grace period 0 finishes it.
    let (_, gone) = pods
        .delete(
            "default",
            "db",
            &DeleteOptions {
                grace_period: Some(0),
                ..DeleteOptions::default()
            },
        )
        .await
        .expect("deleted");
    assert!(gone);
}

#[tokio::test]
async fn delete_collection_pages_through_what_the_selector_chooses() {
    let f = Fixture::new().await;
    let pods = f.store("pods");
    f.store("namespaces")
        .create(
            "",
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}}),
            &CreateOptions::default(),
        )
        .await
        .expect("namespace");
    // More than two pages: every third Pod is chosen by the selector.
    for i in 0..1_203 {
        let mut body = pod(&format!("p{i:04}"));
        body["metadata"]["labels"] = json!({"app": if i % 3 == 0 { "x" } else { "y" }});
        pods.create("default", body, &CreateOptions::default())
            .await
            .expect("created");
    }
    f.store("serviceaccounts")
        .create(
            "other",
            json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}),
            &CreateOptions::default(),
        )
        .await
        .expect("the other namespace's account");
    let mut elsewhere = pod("p0000");
    elsewhere["metadata"]["labels"] = json!({"app": "x"});
    pods.create("other", elsewhere, &CreateOptions::default())
        .await
        .expect("created in the other namespace");
    let selector = || Some(crate::meta::selector::LabelSelector::parse("app=x").expect("parses"));

    let dry = DeleteOptions {
        dry_run: true,
        ..DeleteOptions::default()
    };
    let done = pods
        .delete_collection("default", selector(), None, &dry)
        .await
        .expect("dry run");
    assert_eq!(done.listed.len(), 401);
    assert_eq!(
        count(pods, "default").await,
        1_203,
        "a dry run deletes nothing"
    );

    // A bound Pod is only marked, and counted as pending.
    binding::create(
        pods,
        "default",
        "p0000",
        &json!({"target": {"kind": "Node", "name": "n1"}}),
        false,
    )
    .await
    .expect("bound");
    let done = pods
        .delete_collection("default", selector(), None, &DeleteOptions::default())
        .await
        .expect("deleted");
    assert_eq!(done.listed.len(), 401, "the answer is the list as read");
    assert!(done
        .listed
        .iter()
        .all(|p| p["metadata"]["labels"]["app"] == "x"));
    assert_eq!(done.pending, 1);
    assert_eq!(count(pods, "default").await, 803);
    let marked = pods.get("default", "p0000").await.expect("still there");
    assert!(marked["metadata"]["deletionTimestamp"].is_string());
    pods.get("other", "p0000")
        .await
        .expect("another namespace is untouched");
}

#[tokio::test]
async fn eviction_deletes_as_a_delete_would_and_honours_dry_run() {
    let f = Fixture::new().await;
    let pods = f.store("pods");
    create_pod(&f, "pending").await;
    let dry = DeleteOptions {
        dry_run: true,
        ..DeleteOptions::default()
    };
    let ok = super::eviction::create(pods, "default", "pending", &dry)
        .await
        .expect("dry run");
    assert_eq!(ok["status"], "Success");
    assert_eq!(ok["code"], 201);
    pods.get("default", "pending")
        .await
        .expect("a dry run evicts nothing");
    super::eviction::create(pods, "default", "pending", &DeleteOptions::default())
        .await
        .expect("evicted");
    assert_eq!(
        pods.get("default", "pending").await.expect_err("gone").code,
        404
    );
    let err = super::eviction::create(pods, "default", "pending", &DeleteOptions::default())
        .await
        .expect_err("nothing left to evict");
    assert_eq!(err.code, 404);
    assert_eq!(err.message, "pods \"pending\" not found");

    // A bound Pod gets its grace period, as a plain DELETE gives it; a stale precondition is
    // a conflict, not an eviction.
    create_pod(&f, "bound").await;
    binding::create(
        pods,
        "default",
        "bound",
        &json!({"target": {"kind": "Node", "name": "n1"}}),
        false,
    )
    .await
    .expect("bound");
    let stale = DeleteOptions {
        resource_version: Some("1".into()),
        ..DeleteOptions::default()
    };
    let err = super::eviction::create(pods, "default", "bound", &stale)
        .await
        .expect_err("stale resourceVersion");
    assert_eq!(err.code, 409);
    super::eviction::create(pods, "default", "bound", &DeleteOptions::default())
        .await
        .expect("evicted");
    let marked = pods
        .get("default", "bound")
        .await
        .expect("still terminating");
    assert_eq!(marked["metadata"]["deletionGracePeriodSeconds"], 30);
}

async fn count(store: &Store, namespace: &str) -> usize {
    store
        .list(namespace, &super::ListOptions::default())
        .await
        .expect("listed")
        .items
        .len()
}

#[tokio::test]
async fn binding_assigns_once_and_honours_the_uid_precondition() {
    let f = Fixture::new().await;
    let pods = f.store("pods");
    let created = create_pod(&f, "db").await;
    let target = json!({"metadata": {"uid": "u-other"}, "target": {"name": "n1"}});
    let err = binding::create(pods, "default", "db", &target, false)
        .await
        .expect_err("another pod's uid");
    assert_eq!(err.code, 409);

    let uid = created["metadata"]["uid"].clone();
    let target = json!({"metadata": {"uid": uid}, "target": {"name": "n1"}});
    let ok = binding::create(pods, "default", "db", &target, false)
        .await
        .expect("bound");
    assert_eq!(
        (ok["status"].as_str(), ok["code"].as_i64()),
        (Some("Success"), Some(201))
    );
    let bound = pods.get("default", "db").await.expect("pod");
    assert_eq!(bound["spec"]["nodeName"], "n1");

    let again = json!({"target": {"name": "n2"}});
    let err = binding::create(pods, "default", "db", &again, false)
        .await
        .expect_err("bound already");
    assert_eq!(err.code, 409);
    assert_eq!(
        err.message,
        "Operation cannot be fulfilled on pods/binding \"db\": pod db is already assigned to node \"n1\""
    );
}

#[tokio::test]
async fn protected_namespaces_come_from_bootstrap() {
    let f = Fixture::new().await;
    for name in namespaces::SYSTEM {
        let ns = f.store("namespaces").get("", name).await.expect(name);
        assert_eq!(ns["status"]["phase"], "Active");
        assert_eq!(
            ns["metadata"]["labels"]["kubernetes.io/metadata.name"],
            name
        );
    }
}

#[tokio::test]
async fn namespace_delete_refuses_protected_and_terminating_namespaces() {
    let f = Fixture::new().await;
    let nss = f.store("namespaces");
    let plain = DeleteOptions::default();
    let err = namespaces::delete(nss, "default", &plain)
        .await
        .expect_err("protected");
    assert_eq!(err.code, 403);
    assert_eq!(
        err.message,
        "namespaces \"default\" is forbidden: this namespace may not be deleted"
    );
    let (_, gone) = namespaces::delete(nss, "kube-node-lease", &plain)
        .await
        .expect("not protected");
    assert!(!gone, "held by its finalizer until emptied");
    let err = namespaces::delete(nss, "kube-node-lease", &plain)
        .await
        .expect_err("terminating");
    assert_eq!(err.code, 409);
}

#[tokio::test]
async fn a_refused_admission_reaches_the_caller_and_stores_nothing() {
    let f = Fixture::new().await;
    let pods = f.store("pods");
    let mut body = pod("high");
    body["spec"]["priorityClassName"] = json!("high");
    let err = pods
        .create("default", body, &CreateOptions::default())
        .await
        .expect_err("no PriorityClass named high");
    assert_eq!(err.code, 403);
    assert_eq!(
        err.message,
        "pods \"high\" is forbidden: no PriorityClass with name high was found"
    );
    assert_eq!(
        pods.get("default", "high").await.expect_err("absent").code,
        404
    );
}

fn node(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}})
}

fn with_level(level: FieldValidation) -> CreateOptions {
    CreateOptions {
        field_validation: level,
        ..CreateOptions::default()
    }
}

#[tokio::test]
async fn updates_carry_decoding_and_strategy_warnings_by_field_validation_level() {
    let f = Fixture::new().await;
    let nodes = f.store("nodes");
    let (created, warnings) = nodes
        .create("", node("n1"), &CreateOptions::default())
        .await
        .expect("created");
    assert!(warnings.is_empty(), "{warnings:?}");

    let deprecated = "spec.externalID: this field is deprecated, and is unused by Kubernetes";
    let mut changed = body_without_rv(&created);
    changed["spec"] = json!({"externalID": "i-1", "bogus": 1});
    let twice_named = |object: Value| Parsed {
        object,
        duplicate_fields: vec!["metadata.name".to_string()],
    };
    let (_, warnings) = nodes
        .update(
            "",
            "n1",
            "",
            twice_named(changed),
            &with_level(FieldValidation::Warn),
        )
        .await
        .expect("updated");
    assert_eq!(
        warnings,
        vec![
            "duplicate field \"metadata.name\"".to_string(),
            "unknown field \"spec.bogus\"".to_string(),
            deprecated.to_string(),
        ]
    );
    let (_, warnings) = nodes
        .update(
            "",
            "n1",
            "",
            twice_named(body_without_rv(&created)),
            &with_level(FieldValidation::Ignore),
        )
        .await
        .expect("updated");
    assert_eq!(warnings, Vec::<String>::new());
    let err = nodes
        .update(
            "",
            "n1",
            "",
            twice_named(body_without_rv(&created)),
            &with_level(FieldValidation::Strict),
        )
        .await
        .expect_err("duplicate field under Strict");
    assert_eq!(err.code, 400);
    assert_eq!(
        err.message,
        "Node in version \"v1\" cannot be handled as a Node: strict decoding error: duplicate field \"metadata.name\""
    );

    let (patched, warnings) = nodes
        .patch(
            "",
            "n1",
            "",
            PatchType::Merge,
            br#"{"spec":{"externalID":"i-2"}}"#,
            &CreateOptions::default(),
        )
        .await
        .expect("patched");
    assert_eq!(patched["spec"]["externalID"], "i-2");
    assert_eq!(warnings, vec![deprecated.to_string()]);
}

/// A replacement without a resourceVersion: an unconditional update.
fn body_without_rv(obj: &Value) -> Value {
    let mut obj = obj.clone();
    if let Some(meta) = obj["metadata"].as_object_mut() {
        meta.remove("resourceVersion");
    }
    obj
}

/// A dry-run delete of a Pod that is only marked for deletion (bound, so it gets its grace
/// period) answers with the marked Pod and writes nothing: not the deletion timestamp, not a
/// new resourceVersion. The same for a dry-run eviction (`kubectl drain --dry-run=server`).
#[tokio::test]
async fn a_dry_run_graceful_delete_marks_nothing() {
    let f = Fixture::new().await;
    let pods = f.store("pods");
    create_pod(&f, "bound").await;
    binding::create(
        pods,
        "default",
        "bound",
        &json!({"target": {"kind": "Node", "name": "n1"}}),
        false,
    )
    .await
    .expect("bound");
    let before = pods.get("default", "bound").await.expect("there");
    let dry = DeleteOptions {
        dry_run: true,
        ..DeleteOptions::default()
    };
    let (answer, gone) = pods
        .delete("default", "bound", &dry)
        .await
        .expect("dry run");
    assert!(!gone);
    assert!(answer["metadata"]["deletionTimestamp"].is_string());
    super::eviction::create(pods, "default", "bound", &dry)
        .await
        .expect("dry-run eviction");
    let after = pods.get("default", "bound").await.expect("still there");
    assert_eq!(after, before, "a dry run writes nothing");
}

/// Leases allow no unconditional update (upstream's leaseStrategy): a replacement without a
/// resourceVersion, or with "0", is 422 in upstream's words; one with the current version works.
#[tokio::test]
async fn a_lease_replaced_without_a_resource_version_is_refused() {
    let f = Fixture::new().await;
    let leases = f
        .registry
        .get("coordination.k8s.io", "leases")
        .expect("a served kind");
    let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "l", "namespace": "default"}, "spec": {"holderIdentity": "a"}});
    let created = leases
        .create("default", lease, &CreateOptions::default())
        .await
        .expect("created")
        .0;
    for unset in [json!("0"), Value::Null] {
        let mut blind = created.clone();
        blind["metadata"]["resourceVersion"] = unset.clone();
        blind["spec"]["holderIdentity"] = json!("b");
        let err = leases
            .update("default", "l", "", blind, &CreateOptions::default())
            .await
            .expect_err("unconditional");
        assert_eq!(err.code, 422, "{unset}");
        assert_eq!(
            err.message,
            "leases.coordination.k8s.io \"l\" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update"
        );
        assert_eq!(
            (err.details.group.as_str(), err.details.kind.as_str()),
            ("coordination.k8s.io", "leases")
        );
    }
    let mut held = created.clone();
    held["spec"]["holderIdentity"] = json!("b");
    let (updated, _) = leases
        .update("default", "l", "", held, &CreateOptions::default())
        .await
        .expect("a conditional update");
    assert_eq!(updated["spec"]["holderIdentity"], "b");
}

fn replica_set(name: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name},
        "spec": {"selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "c", "image": "busybox:1"}]}}}})
}

fn propagating(propagation: Propagation) -> DeleteOptions {
    DeleteOptions {
        propagation: Some(propagation),
        ..DeleteOptions::default()
    }
}

/// Upstream `deletionFinalizersForGarbageCollection` through the store: Foreground and Orphan
/// keep the object, marked and with the collector's finalizer (its generation bumped once);
/// a later Background delete drops the finalizer and the object at once.
#[tokio::test]
async fn foreground_and_orphan_deletes_mark_the_object_with_the_collectors_finalizer() {
    let f = Fixture::new().await;
    let sets = f.registry.get("apps", "replicasets").expect("served");
    sets.create("default", replica_set("fg"), &CreateOptions::default())
        .await
        .expect("created");
    let (marked, gone) = sets
        .delete("default", "fg", &propagating(Propagation::Foreground))
        .await
        .expect("marked");
    assert!(!gone);
    assert_eq!(
        marked["metadata"]["finalizers"],
        json!(["foregroundDeletion"])
    );
    assert_eq!(marked["metadata"]["deletionGracePeriodSeconds"], 0);
    assert_eq!(marked["metadata"]["generation"], 2);
    let stamp = marked["metadata"]["deletionTimestamp"].clone();
    assert!(stamp.is_string());

    // Switching to Orphan swaps the finalizers and keeps the first timestamp.
    let (swapped, gone) = sets
        .delete("default", "fg", &propagating(Propagation::Orphan))
        .await
        .expect("still marked");
    assert!(!gone);
    assert_eq!(swapped["metadata"]["finalizers"], json!(["orphan"]));
    assert_eq!(swapped["metadata"]["deletionTimestamp"], stamp);
    assert_eq!(swapped["metadata"]["generation"], 2);

    // No option: the finalizer already there decides, so nothing changes.
    let (_, gone) = sets
        .delete("default", "fg", &DeleteOptions::default())
        .await
        .expect("still marked");
    assert!(!gone);

    let (_, gone) = sets
        .delete("default", "fg", &propagating(Propagation::Background))
        .await
        .expect("deleted");
    assert!(gone);
    assert_eq!(sets.get("default", "fg").await.expect_err("gone").code, 404);

    // The legacy `orphanDependents=true` is Orphan; dropping the last finalizer finishes it.
    sets.create("default", replica_set("legacy"), &CreateOptions::default())
        .await
        .expect("created");
    let legacy = DeleteOptions {
        orphan_dependents: Some(true),
        ..DeleteOptions::default()
    };
    let (marked, _) = sets
        .delete("default", "legacy", &legacy)
        .await
        .expect("marked");
    assert_eq!(marked["metadata"]["finalizers"], json!(["orphan"]));
    let patch = br#"{"metadata":{"finalizers":null}}"#;
    sets.patch(
        "default",
        "legacy",
        "",
        PatchType::Merge,
        patch,
        &CreateOptions::default(),
    )
    .await
    .expect("finalizer removed");
    assert_eq!(
        sets.get("default", "legacy").await.expect_err("gone").code,
        404
    );

    // A dry run marks nothing.
    sets.create("default", replica_set("dry"), &CreateOptions::default())
        .await
        .expect("created");
    let before = sets.get("default", "dry").await.expect("there");
    let dry = DeleteOptions {
        dry_run: true,
        ..propagating(Propagation::Foreground)
    };
    let (answer, gone) = sets.delete("default", "dry", &dry).await.expect("dry run");
    assert!(!gone);
    assert_eq!(
        answer["metadata"]["finalizers"],
        json!(["foregroundDeletion"])
    );
    assert_eq!(sets.get("default", "dry").await.expect("there"), before);
}

/// A bound Pod deleted in the foreground is graceful as ever and carries the finalizer; once
/// a graceful deletion is under way, the options no longer change the finalizers.
#[tokio::test]
async fn a_graceful_pod_deletion_takes_the_finalizer_only_when_it_starts() {
    let f = Fixture::new().await;
    let pods = f.store("pods");
    create_pod(&f, "web").await;
    binding::create(
        pods,
        "default",
        "web",
        &json!({"target": {"kind": "Node", "name": "n1"}}),
        false,
    )
    .await
    .expect("bound");
    let (marked, gone) = pods
        .delete("default", "web", &propagating(Propagation::Foreground))
        .await
        .expect("marked");
    assert!(!gone);
    assert_eq!(marked["metadata"]["deletionGracePeriodSeconds"], 30);
    assert_eq!(
        marked["metadata"]["finalizers"],
        json!(["foregroundDeletion"])
    );
    let (again, _) = pods
        .delete("default", "web", &propagating(Propagation::Background))
        .await
        .expect("pending");
    assert_eq!(
        again["metadata"]["finalizers"],
        json!(["foregroundDeletion"])
    );
    // The kubelet's final delete leaves it to the finalizer.
    let (last, gone) = pods
        .delete(
            "default",
            "web",
            &DeleteOptions {
                grace_period: Some(0),
                ..DeleteOptions::default()
            },
        )
        .await
        .expect("finalizing");
    assert!(!gone);
    assert_eq!(last["metadata"]["deletionGracePeriodSeconds"], 0);
}
