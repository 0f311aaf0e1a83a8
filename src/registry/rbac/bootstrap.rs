//! The bootstrap policy: the roles and bindings the API server makes sure exist at start, as
//! upstream's `plugin/pkg/auth/authorizer/rbac/bootstrappolicy` and its storage-ensure hook
//! (`--auto-reconcile`): missing objects are created, existing ones only gain what they lack
//! (rules, aggregation selectors, subjects, labels, annotations), never lose what a user added,
//! and an object whose `rbac.authorization.kubernetes.io/autoupdate` annotation is `false` is
//! left alone.
//!
//! rkube's controller manager runs every controller under its own identity
//! (`system:kube-controller-manager`) rather than one service account per controller
//! (upstream's `--use-service-account-credentials`), so the `system:controller:*` roles are
//! bound to that user.

use serde_json::{json, Value};

use super::GROUP;
use crate::meta::{object, ApiError};
use crate::registry::{CreateOptions, Registry, Store};

const READ: [&str; 3] = ["get", "list", "watch"];
const WRITE: [&str; 5] = ["create", "update", "patch", "delete", "deletecollection"];
const READ_WRITE: [&str; 8] = [
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
];

/// A resource rule.
fn rule(verbs: &[&str], groups: &[&str], resources: &[&str]) -> Value {
    json!({"verbs": verbs, "apiGroups": groups, "resources": resources})
}

/// A resource rule limited to some names.
fn named(verbs: &[&str], groups: &[&str], resources: &[&str], names: &[&str]) -> Value {
    json!({"verbs": verbs, "apiGroups": groups, "resources": resources, "resourceNames": names})
}

/// A non-resource rule.
fn urls(verbs: &[&str], paths: &[&str]) -> Value {
    json!({"verbs": verbs, "nonResourceURLs": paths})
}

fn events() -> Value {
    rule(
        &["create", "update", "patch"],
        &["", "events.k8s.io"],
        &["events"],
    )
}

fn metadata(name: &str, extra_labels: &[(&str, &str)]) -> Value {
    let mut labels = serde_json::Map::new();
    labels.insert("kubernetes.io/bootstrapping".into(), "rbac-defaults".into());
    for (k, v) in extra_labels {
        labels.insert((*k).into(), (*v).into());
    }
    json!({"name": name, "labels": labels,
        "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}})
}

fn cluster_role(name: &str, labels: &[(&str, &str)], rules: Vec<Value>) -> Value {
    json!({"apiVersion": format!("{GROUP}/v1"), "kind": "ClusterRole",
        "metadata": metadata(name, labels), "rules": rules})
}

/// A ClusterRole whose rules the aggregation loop fills from the ClusterRoles labelled
/// `rbac.authorization.k8s.io/aggregate-to-<to>`.
fn aggregated(name: &str, labels: &[(&str, &str)], to: &str) -> Value {
    let selector =
        json!({"matchLabels": {format!("rbac.authorization.k8s.io/aggregate-to-{to}"): "true"}});
    json!({"apiVersion": format!("{GROUP}/v1"), "kind": "ClusterRole",
        "metadata": metadata(name, labels), "aggregationRule": {"clusterRoleSelectors": [selector]}})
}

fn subject(kind: &str, name: &str) -> Value {
    json!({"kind": kind, "apiGroup": GROUP, "name": name})
}

fn cluster_binding(role: &str, subjects: Vec<Value>) -> Value {
    json!({"apiVersion": format!("{GROUP}/v1"), "kind": "ClusterRoleBinding",
        "metadata": metadata(role, &[]),
        "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": role},
        "subjects": subjects})
}

fn role(namespace: &str, name: &str, rules: Vec<Value>) -> Value {
    let mut meta = metadata(name, &[]);
    meta["namespace"] = json!(namespace);
    json!({"apiVersion": format!("{GROUP}/v1"), "kind": "Role", "metadata": meta, "rules": rules})
}

fn role_binding(namespace: &str, name: &str, subjects: Vec<Value>) -> Value {
    let mut meta = metadata(name, &[]);
    meta["namespace"] = json!(namespace);
    json!({"apiVersion": format!("{GROUP}/v1"), "kind": "RoleBinding", "metadata": meta,
        "roleRef": {"apiGroup": GROUP, "kind": "Role", "name": name}, "subjects": subjects})
}

const SCHEDULER: &str = "system:kube-scheduler";
const CONTROLLER_MANAGER: &str = "system:kube-controller-manager";

/// Every ClusterRole of the bootstrap policy.
pub fn cluster_roles() -> Vec<Value> {
    let to = |what: &'static str| {
        (
            format!("rbac.authorization.k8s.io/aggregate-to-{what}"),
            what,
        )
    };
    let (admin_label, _) = to("admin");
    let (edit_label, _) = to("edit");
    let (view_label, _) = to("view");
    let apps = &["apps"];
    let ext = &["extensions"];
    vec![
        cluster_role(
            "cluster-admin",
            &[],
            vec![rule(&["*"], &["*"], &["*"]), urls(&["*"], &["*"])],
        ),
        cluster_role(
            "system:discovery",
            &[],
            vec![urls(
                &["get"],
                &[
                    "/api",
                    "/api/*",
                    "/apis",
                    "/apis/*",
                    "/healthz",
                    "/livez",
                    "/openapi",
                    "/openapi/*",
                    "/readyz",
                    "/version",
                    "/version/",
                ],
            )],
        ),
        cluster_role(
            "system:monitoring",
            &[],
            vec![urls(
                &["get"],
                &[
                    "/healthz",
                    "/healthz/*",
                    "/livez",
                    "/livez/*",
                    "/metrics",
                    "/metrics/slis",
                    "/readyz",
                    "/readyz/*",
                ],
            )],
        ),
        cluster_role(
            "system:basic-user",
            &[],
            vec![
                rule(
                    &["create"],
                    &["authentication.k8s.io"],
                    &["selfsubjectreviews"],
                ),
                rule(
                    &["create"],
                    &["authorization.k8s.io"],
                    &["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                ),
            ],
        ),
        cluster_role(
            "system:public-info-viewer",
            &[],
            vec![urls(
                &["get"],
                &["/healthz", "/livez", "/readyz", "/version", "/version/"],
            )],
        ),
        aggregated("admin", &[], "admin"),
        aggregated("edit", &[(&admin_label, "true")], "edit"),
        aggregated("view", &[(&edit_label, "true")], "view"),
        cluster_role(
            "system:aggregate-to-admin",
            &[(&admin_label, "true")],
            vec![
                rule(
                    &["create"],
                    &["authorization.k8s.io"],
                    &["localsubjectaccessreviews"],
                ),
                rule(&READ_WRITE, &[GROUP], &["roles", "rolebindings"]),
            ],
        ),
        cluster_role(
            "system:aggregate-to-edit",
            &[(&edit_label, "true")],
            vec![
                rule(
                    &READ,
                    &[""],
                    &[
                        "pods/attach",
                        "pods/proxy",
                        "pods/exec",
                        "pods/portforward",
                        "secrets",
                        "services/proxy",
                    ],
                ),
                rule(&["impersonate"], &[""], &["serviceaccounts"]),
                rule(
                    &WRITE,
                    &[""],
                    &[
                        "pods",
                        "pods/attach",
                        "pods/proxy",
                        "pods/exec",
                        "pods/portforward",
                    ],
                ),
                rule(&["create"], &[""], &["pods/eviction"]),
                rule(
                    &WRITE,
                    &[""],
                    &[
                        "replicationcontrollers",
                        "replicationcontrollers/scale",
                        "serviceaccounts",
                        "services",
                        "services/proxy",
                        "persistentvolumeclaims",
                        "configmaps",
                        "secrets",
                        "events",
                    ],
                ),
                rule(&["create"], &[""], &["serviceaccounts/token"]),
                rule(
                    &WRITE,
                    apps,
                    &[
                        "statefulsets",
                        "statefulsets/scale",
                        "daemonsets",
                        "deployments",
                        "deployments/scale",
                        "deployments/rollback",
                        "replicasets",
                        "replicasets/scale",
                    ],
                ),
                rule(&WRITE, &["autoscaling"], &["horizontalpodautoscalers"]),
                rule(&WRITE, &["batch"], &["jobs", "cronjobs"]),
                rule(
                    &WRITE,
                    ext,
                    &[
                        "daemonsets",
                        "deployments",
                        "deployments/scale",
                        "deployments/rollback",
                        "ingresses",
                        "replicasets",
                        "replicasets/scale",
                        "replicationcontrollers/scale",
                        "networkpolicies",
                    ],
                ),
                rule(&WRITE, &["policy"], &["poddisruptionbudgets"]),
                rule(
                    &WRITE,
                    &["networking.k8s.io"],
                    &["networkpolicies", "ingresses"],
                ),
                rule(&READ_WRITE, &["coordination.k8s.io"], &["leases"]),
            ],
        ),
        cluster_role(
            "system:aggregate-to-view",
            &[(&view_label, "true")],
            vec![
                rule(
                    &READ,
                    &[""],
                    &[
                        "pods",
                        "replicationcontrollers",
                        "replicationcontrollers/scale",
                        "serviceaccounts",
                        "services",
                        "services/status",
                        "endpoints",
                        "persistentvolumeclaims",
                        "persistentvolumeclaims/status",
                        "configmaps",
                    ],
                ),
                rule(
                    &READ,
                    &[""],
                    &[
                        "limitranges",
                        "resourcequotas",
                        "bindings",
                        "events",
                        "pods/status",
                        "resourcequotas/status",
                        "namespaces/status",
                        "replicationcontrollers/status",
                        "pods/log",
                    ],
                ),
                rule(&READ, &[""], &["namespaces"]),
                rule(&READ, &["discovery.k8s.io"], &["endpointslices"]),
                rule(
                    &READ,
                    apps,
                    &[
                        "controllerrevisions",
                        "statefulsets",
                        "statefulsets/status",
                        "statefulsets/scale",
                        "daemonsets",
                        "daemonsets/status",
                        "deployments",
                        "deployments/status",
                        "deployments/scale",
                        "replicasets",
                        "replicasets/status",
                        "replicasets/scale",
                    ],
                ),
                rule(
                    &READ,
                    &["autoscaling"],
                    &[
                        "horizontalpodautoscalers",
                        "horizontalpodautoscalers/status",
                    ],
                ),
                rule(
                    &READ,
                    &["batch"],
                    &["jobs", "cronjobs", "cronjobs/status", "jobs/status"],
                ),
                rule(
                    &READ,
                    ext,
                    &[
                        "daemonsets",
                        "daemonsets/status",
                        "deployments",
                        "deployments/scale",
                        "deployments/status",
                        "ingresses",
                        "ingresses/status",
                        "replicasets",
                        "replicasets/scale",
                        "replicasets/status",
                        "replicationcontrollers/scale",
                        "networkpolicies",
                    ],
                ),
                rule(
                    &READ,
                    &["policy"],
                    &["poddisruptionbudgets", "poddisruptionbudgets/status"],
                ),
                rule(
                    &READ,
                    &["networking.k8s.io"],
                    &["networkpolicies", "ingresses", "ingresses/status"],
                ),
            ],
        ),
        cluster_role(
            SCHEDULER,
            &[],
            vec![
                events(),
                rule(&["create"], &["coordination.k8s.io"], &["leases"]),
                named(
                    &["get", "update"],
                    &["coordination.k8s.io"],
                    &["leases"],
                    &["kube-scheduler"],
                ),
                rule(&READ, &[""], &["nodes"]),
                rule(&["get", "list", "watch", "delete"], &[""], &["pods"]),
                rule(&["create"], &[""], &["pods/binding", "bindings"]),
                rule(&["patch", "update"], &[""], &["pods/status"]),
                rule(
                    &READ,
                    &[""],
                    &[
                        "services",
                        "replicationcontrollers",
                        "persistentvolumeclaims",
                        "persistentvolumes",
                        "namespaces",
                    ],
                ),
                rule(&READ, &["apps", "extensions"], &["replicasets"]),
                rule(&READ, apps, &["statefulsets"]),
                rule(&READ, &["policy"], &["poddisruptionbudgets"]),
                rule(
                    &READ,
                    &["storage.k8s.io"],
                    &["csinodes", "csidrivers", "csistoragecapacities"],
                ),
                rule(&["create"], &["authentication.k8s.io"], &["tokenreviews"]),
                rule(
                    &["create"],
                    &["authorization.k8s.io"],
                    &["subjectaccessreviews"],
                ),
            ],
        ),
        cluster_role(
            CONTROLLER_MANAGER,
            &[],
            vec![
                events(),
                rule(&["create"], &["coordination.k8s.io"], &["leases"]),
                named(
                    &["get", "update"],
                    &["coordination.k8s.io"],
                    &["leases"],
                    &["kube-controller-manager"],
                ),
                rule(
                    &["create", "update"],
                    &[""],
                    &["secrets", "serviceaccounts"],
                ),
                rule(&["delete"], &[""], &["secrets"]),
                rule(
                    &["get"],
                    &[""],
                    &["configmaps", "namespaces", "secrets", "serviceaccounts"],
                ),
                rule(&["create"], &[""], &["serviceaccounts/token"]),
                rule(&["list", "watch"], &["*"], &["*"]),
                rule(&["create"], &["authentication.k8s.io"], &["tokenreviews"]),
                rule(
                    &["create"],
                    &["authorization.k8s.io"],
                    &["subjectaccessreviews"],
                ),
            ],
        ),
        // Upstream grants `update` on the status; rkube's controllers write it with a merge
        // PATCH, so `patch` is granted too.
        cluster_role(
            "system:controller:replicaset-controller",
            &[],
            vec![
                rule(
                    &["get", "list", "watch", "update"],
                    &["apps", "extensions"],
                    &["replicasets"],
                ),
                rule(
                    &["update", "patch"],
                    &["apps", "extensions"],
                    &["replicasets/status", "replicasets/finalizers"],
                ),
                rule(
                    &["list", "watch", "patch", "create", "delete"],
                    &[""],
                    &["pods"],
                ),
                events(),
            ],
        ),
        cluster_role(
            "system:controller:deployment-controller",
            &[],
            vec![
                rule(
                    &["get", "list", "watch", "update", "patch"],
                    &["apps", "extensions"],
                    &["deployments"],
                ),
                rule(
                    &["update", "patch"],
                    &["apps", "extensions"],
                    &["deployments/status", "deployments/finalizers"],
                ),
                rule(
                    &[
                        "create", "delete", "get", "list", "patch", "update", "watch",
                    ],
                    &["apps", "extensions"],
                    &["replicasets"],
                ),
                rule(&["get", "list", "watch", "update"], &[""], &["pods"]),
                events(),
            ],
        ),
        cluster_role(
            "system:controller:generic-garbage-collector",
            &[],
            vec![
                rule(
                    &["get", "list", "watch", "patch", "update", "delete"],
                    &["*"],
                    &["*"],
                ),
                events(),
            ],
        ),
        cluster_role(
            "system:controller:cronjob-controller",
            &[],
            vec![
                rule(
                    &["get", "list", "watch", "update"],
                    &["batch"],
                    &["cronjobs"],
                ),
                rule(
                    &[
                        "create", "delete", "get", "list", "patch", "update", "watch",
                    ],
                    &["batch"],
                    &["jobs"],
                ),
                rule(&["update"], &["batch"], &["cronjobs/status"]),
                rule(&["update"], &["batch"], &["cronjobs/finalizers"]),
                rule(&["delete", "list"], &[""], &["pods"]),
                events(),
            ],
        ),
        cluster_role(
            "system:controller:job-controller",
            &[],
            vec![
                rule(
                    &["get", "list", "watch", "update", "patch"],
                    &["batch"],
                    &["jobs"],
                ),
                rule(
                    &["update", "patch"],
                    &["batch"],
                    &["jobs/status", "jobs/finalizers"],
                ),
                rule(
                    &["list", "watch", "create", "delete", "patch"],
                    &[""],
                    &["pods"],
                ),
                events(),
            ],
        ),
        cluster_role(
            "system:controller:ttl-after-finished-controller",
            &[],
            vec![
                rule(&["delete", "get", "list", "watch"], &["batch"], &["jobs"]),
                events(),
            ],
        ),
        // The node lifecycle controller, with upstream's taint-eviction-controller rights
        // (rkube runs both in one loop); it replaces a Node's taints with a PUT.
        cluster_role(
            "system:controller:node-controller",
            &[],
            vec![
                rule(
                    &["get", "list", "update", "delete", "patch"],
                    &[""],
                    &["nodes"],
                ),
                rule(&["patch", "update"], &[""], &["nodes/status"]),
                rule(&["patch", "update"], &[""], &["pods/status"]),
                rule(&["list", "delete"], &[""], &["pods"]),
                events(),
            ],
        ),
        cluster_role(
            "system:controller:service-account-controller",
            &[],
            vec![rule(&["create"], &[""], &["serviceaccounts"]), events()],
        ),
        cluster_role(
            "system:controller:root-ca-cert-publisher",
            &[],
            vec![
                rule(&["create", "update"], &[""], &["configmaps"]),
                events(),
            ],
        ),
        cluster_role(
            "system:controller:pod-garbage-collector",
            &[],
            vec![
                rule(&["list", "watch", "delete"], &[""], &["pods"]),
                rule(&["get", "list"], &[""], &["nodes"]),
                rule(&["patch"], &[""], &["pods/status"]),
            ],
        ),
        // The Node authorizer's rules as a role: upstream keeps it for reference and binds it
        // to no one (kubelets are authorized by the Node authorizer, in code).
        cluster_role(
            "system:node",
            &[],
            vec![
                rule(&["create"], &["authentication.k8s.io"], &["tokenreviews"]),
                rule(
                    &["create"],
                    &["authorization.k8s.io"],
                    &["subjectaccessreviews", "localsubjectaccessreviews"],
                ),
                rule(&READ, &[""], &["services"]),
                rule(&["create", "get", "list", "watch"], &[""], &["nodes"]),
                rule(&["update", "patch"], &[""], &["nodes/status"]),
                rule(&["update", "patch"], &[""], &["nodes"]),
                events(),
                rule(&READ, &[""], &["pods"]),
                rule(&["create", "delete"], &[""], &["pods"]),
                rule(&["update", "patch"], &[""], &["pods/status"]),
                rule(&["create"], &[""], &["pods/eviction"]),
                rule(&["get"], &[""], &["secrets", "configmaps"]),
                rule(
                    &["get", "create", "update", "patch", "delete"],
                    &["coordination.k8s.io"],
                    &["leases"],
                ),
                rule(
                    &["create", "get", "list", "watch"],
                    &["certificates.k8s.io"],
                    &["certificatesigningrequests"],
                ),
                rule(&READ, &["node.k8s.io"], &["runtimeclasses"]),
                rule(&READ, &["storage.k8s.io"], &["csidrivers"]),
            ],
        ),
        cluster_role(
            "system:controller:clusterrole-aggregation-controller",
            &[],
            vec![rule(
                &["escalate", "get", "list", "watch", "update", "patch"],
                &[GROUP],
                &["clusterroles"],
            )],
        ),
    ]
}

/// Every ClusterRoleBinding of the bootstrap policy.
pub fn cluster_role_bindings() -> Vec<Value> {
    let authenticated = || subject("Group", "system:authenticated");
    let manager = || subject("User", CONTROLLER_MANAGER);
    vec![
        cluster_binding("cluster-admin", vec![subject("Group", "system:masters")]),
        cluster_binding("system:discovery", vec![authenticated()]),
        cluster_binding("system:basic-user", vec![authenticated()]),
        cluster_binding(
            "system:public-info-viewer",
            vec![authenticated(), subject("Group", "system:unauthenticated")],
        ),
        cluster_binding(
            "system:monitoring",
            vec![subject("Group", "system:monitoring")],
        ),
        cluster_binding(SCHEDULER, vec![subject("User", SCHEDULER)]),
        cluster_binding(CONTROLLER_MANAGER, vec![manager()]),
        cluster_binding("system:controller:replicaset-controller", vec![manager()]),
        cluster_binding("system:controller:deployment-controller", vec![manager()]),
        cluster_binding(
            "system:controller:generic-garbage-collector",
            vec![manager()],
        ),
        cluster_binding("system:controller:pod-garbage-collector", vec![manager()]),
        cluster_binding("system:controller:cronjob-controller", vec![manager()]),
        cluster_binding("system:controller:job-controller", vec![manager()]),
        cluster_binding(
            "system:controller:ttl-after-finished-controller",
            vec![manager()],
        ),
        cluster_binding("system:controller:node-controller", vec![manager()]),
        cluster_binding(
            "system:controller:service-account-controller",
            vec![manager()],
        ),
        cluster_binding("system:controller:root-ca-cert-publisher", vec![manager()]),
    ]
}

/// The Roles of the bootstrap policy (the components' leader-election locks in kube-system).
pub fn roles() -> Vec<Value> {
    vec![
        role(
            "kube-system",
            "system::leader-locking-kube-scheduler",
            vec![
                rule(&["watch"], &[""], &["configmaps"]),
                named(
                    &["get", "update"],
                    &[""],
                    &["configmaps"],
                    &["kube-scheduler"],
                ),
            ],
        ),
        role(
            "kube-system",
            "system::leader-locking-kube-controller-manager",
            vec![
                rule(&["watch"], &[""], &["configmaps"]),
                rule(
                    &["get", "watch", "list", "create", "update"],
                    &["coordination.k8s.io"],
                    &["leases"],
                ),
            ],
        ),
    ]
}

pub fn role_bindings() -> Vec<Value> {
    vec![
        role_binding(
            "kube-system",
            "system::leader-locking-kube-scheduler",
            vec![subject("User", SCHEDULER)],
        ),
        role_binding(
            "kube-system",
            "system::leader-locking-kube-controller-manager",
            vec![subject("User", CONTROLLER_MANAGER)],
        ),
    ]
}

/// Appends to `current[field]` each item of `wanted[field]` it does not hold.
fn add_missing(current: &mut Value, wanted: &Value, field: &str) -> bool {
    let Some(items) = wanted.get(field).and_then(Value::as_array) else {
        return false;
    };
    let list = current
        .as_object_mut()
        .map(|o| o.entry(field).or_insert_with(|| json!([])));
    let Some(Value::Array(list)) = list else {
        return false;
    };
    let mut changed = false;
    for item in items {
        if !list.contains(item) {
            list.push(item.clone());
            changed = true;
        }
    }
    changed
}

/// Adds the labels and annotations of `wanted` that `current` lacks (never overwriting).
fn add_missing_map(current: &mut Value, wanted: &Value, field: &str) -> bool {
    let Some(items) = wanted
        .pointer(&format!("/metadata/{field}"))
        .and_then(Value::as_object)
    else {
        return false;
    };
    let meta = object::metadata_mut(current);
    let Some(map) = meta
        .entry(field)
        .or_insert_with(|| json!({}))
        .as_object_mut()
    else {
        return false;
    };
    let mut changed = false;
    for (k, v) in items {
        if !map.contains_key(k) {
            map.insert(k.clone(), v.clone());
            changed = true;
        }
    }
    changed
}

/// What reconciling `current` with `wanted` makes of it, or None when nothing is missing or
/// the object opted out of reconciliation.
pub fn reconciled(current: &Value, wanted: &Value) -> Option<Value> {
    let opted_out = current
        .pointer("/metadata/annotations/rbac.authorization.kubernetes.io~1autoupdate")
        .and_then(Value::as_str)
        == Some("false");
    if opted_out {
        return None;
    }
    let mut next = current.clone();
    let mut changed = add_missing_map(&mut next, wanted, "labels");
    changed |= add_missing_map(&mut next, wanted, "annotations");
    // An aggregated role's rules belong to the aggregation loop; only its selectors are
    // reconciled.
    if wanted.get("aggregationRule").is_some() {
        let mut rule = next.get("aggregationRule").cloned().unwrap_or(json!({}));
        if add_missing(
            &mut rule,
            &wanted["aggregationRule"],
            "clusterRoleSelectors",
        ) {
            next["aggregationRule"] = rule;
            changed = true;
        }
    } else {
        changed |= add_missing(&mut next, wanted, "rules");
    }
    changed |= add_missing(&mut next, wanted, "subjects");
    changed.then_some(next)
}

/// Creates what is missing of the bootstrap policy and reconciles what exists. Returns the
/// keys (`<plural>/<namespace>/<name>`) of every bootstrap object, so that the caller can wait
/// until its authorizer has seen them all. The objects are independent of one another, so a
/// few are written at a time: a first start waits on etcd a few times, not once per object.
pub async fn ensure(registry: &Registry) -> Result<Vec<String>, ApiError> {
    use futures::{StreamExt as _, TryStreamExt as _};
    /// Bootstrap objects written at once.
    const CONCURRENCY: usize = 16;
    let mut keys = Vec::new();
    let mut work = Vec::new();
    let kinds = [
        ("clusterroles", cluster_roles()),
        ("clusterrolebindings", cluster_role_bindings()),
        ("roles", roles()),
        ("rolebindings", role_bindings()),
    ];
    for (plural, objects) in kinds {
        let store = registry
            .get(GROUP, plural)
            .ok_or_else(|| ApiError::internal(format!("{plural} are not served")))?;
        for wanted in objects {
            let ns = object::namespace(&wanted).to_string();
            let name = object::name(&wanted).to_string();
            keys.push(format!("{plural}/{ns}/{name}"));
            work.push(ensure_one(store, plural, ns, name, wanted));
        }
    }
    futures::stream::iter(work)
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(keys)
}

/// Creates one bootstrap object, or adds to the stored one what it lacks.
async fn ensure_one(
    store: &Store,
    plural: &str,
    ns: String,
    name: String,
    wanted: Value,
) -> Result<(), ApiError> {
    match store.get(&ns, &name).await {
        Ok(current) => {
            if reconciled(&current, &wanted).is_none() {
                return Ok(());
            }
            store
                .update_with(&ns, &name, "", false, &mut |current| {
                    Ok(reconciled(current, &wanted).unwrap_or_else(|| current.clone()))
                })
                .await?;
            tracing::info!(%plural, %name, "reconciled bootstrap RBAC object");
            Ok(())
        }
        Err(e) if e.code == 404 => {
            let options = CreateOptions {
                field_manager: Some("kube-apiserver".into()),
                ..CreateOptions::default()
            };
            match store.create(&ns, wanted, &options).await {
                Ok(_) => Ok(()),
                Err(e) if e.code == 409 => Ok(()),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconciling_adds_what_is_missing_and_keeps_what_users_added() {
        let wanted = cluster_binding(
            "system:discovery",
            vec![subject("Group", "system:authenticated")],
        );
        let mut current = wanted.clone();
        current["subjects"] = json!([subject("User", "alice")]);
        current["metadata"]["labels"]["kubernetes.io/bootstrapping"] = json!("mine");
        let next = reconciled(&current, &wanted).expect("a subject is missing");
        assert_eq!(
            next["subjects"],
            json!([
                subject("User", "alice"),
                subject("Group", "system:authenticated")
            ])
        );
        assert_eq!(
            next["metadata"]["labels"]["kubernetes.io/bootstrapping"],
            "mine"
        );
        assert!(reconciled(&next, &wanted).is_none());
        current["metadata"]["annotations"]["rbac.authorization.kubernetes.io/autoupdate"] =
            json!("false");
        assert!(reconciled(&current, &wanted).is_none());
    }

    #[test]
    fn every_bootstrap_object_is_valid() {
        use crate::registry::TypedStrategy as _;
        for obj in cluster_roles() {
            let typed = serde_json::from_value(obj.clone()).expect("a ClusterRole");
            assert!(
                super::super::ClusterRoleStrategy
                    .validate(&typed)
                    .is_empty(),
                "{obj}"
            );
        }
        for obj in roles() {
            let typed = serde_json::from_value(obj.clone()).expect("a Role");
            assert!(
                super::super::RoleStrategy.validate(&typed).is_empty(),
                "{obj}"
            );
        }
    }
}
