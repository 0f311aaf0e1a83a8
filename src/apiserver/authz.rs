//! Who may do what: the authorizers upstream hard-codes (`system:masters` may do anything, the
//! Node authorizer's rules for kubelets), then RBAC ([`super::rbac`]) from the Role,
//! ClusterRole and binding objects; and the admission rules that restrict kubelets to their own
//! node, and impersonation.
//!
//! kube-apiserver runs `--authorization-mode=Node,RBAC` with the `NodeRestriction` admission
//! plugin (`plugin/pkg/admission/noderestriction/`); the privileged group `system:masters` is
//! allowed before any authorizer is asked. The built-in components (scheduler, controller
//! manager) hold their rights through the bootstrap policy's RBAC objects
//! (`registry::rbac::bootstrap`), as upstream's do. Non-resource paths (discovery, OpenAPI,
//! health, version, `/metrics`) are RBAC's too: every authenticated user reaches discovery and
//! health through the bootstrap `system:discovery` and `system:public-info-viewer` bindings.
//!
//! Client identities come from the x509 certificate: CN is the user, O the groups.

use std::collections::BTreeSet;

use serde_json::Value;

use super::rbac::{RbacDecision, RbacView, ResourceRequest};
use crate::meta::{object, ApiError, GroupResource};
use crate::tls::User;

/// What a request asks to do, as upstream's `authorizer.Attributes` of a resource request.
#[derive(Debug, Clone, Copy, Default)]
pub struct Attributes<'a> {
    pub verb: &'a str,
    pub group: &'a str,
    pub resource: &'a str,
    pub subresource: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
    /// For list and watch: the node named by a `spec.nodeName=<node>` field selector.
    pub node_selector: Option<&'a str>,
}

/// Which objects of a rule's resources a rule covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every object (RBAC semantics; for kubelets, NodeRestriction then checks the object).
    Any,
    /// Only objects with one of these names (RBAC `resourceNames`).
    Names(&'static [&'static str]),
    /// Node authorizer: only the kubelet's own Node, read by name.
    OwnNode,
    /// Node authorizer: only Pods bound to the kubelet's node; a list or watch must select
    /// `spec.nodeName=<node>`.
    BoundPods,
    /// Node authorizer: only the kubelet's own Lease in `kube-node-lease`.
    OwnLease,
    /// Node authorizer: only ConfigMaps and Secrets a Pod bound to the kubelet's node refers to,
    /// by name (a list or watch must select `metadata.name`).
    ReferencedByBoundPods,
}

/// One row of a role: these verbs on these resources (`pods/status` names a subresource).
#[derive(Debug)]
pub struct Rule {
    pub verbs: &'static [&'static str],
    pub groups: &'static [&'static str],
    pub resources: &'static [&'static str],
    pub scope: Scope,
}

/// Who a binding gives its role to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    User(&'static str),
    Group(&'static str),
}

/// A role given to a subject: upstream's ClusterRoleBinding / RoleBinding of the bootstrap
/// policy, or the Node authorizer's rules for `system:nodes`.
#[derive(Debug)]
pub struct Binding {
    pub subject: Subject,
    pub role: &'static str,
    /// Some for a Role bound in one namespace (a RoleBinding), None for a ClusterRoleBinding.
    pub namespace: Option<&'static str>,
    pub rules: &'static [Rule],
}

const READ: &[&str] = &["get", "list", "watch"];
const CORE: &[&str] = &[""];
const COORDINATION: &[&str] = &["coordination.k8s.io"];
const EVENTS: Rule = Rule {
    verbs: &["create", "update", "patch"],
    groups: &["", "events.k8s.io"],
    resources: &["events"],
    scope: Scope::Any,
};

/// The admin group: bound to `cluster-admin` (every verb on everything).
pub const MASTERS: &str = "system:masters";
/// The group of kubelets (user `system:node:<name>`).
pub const NODES: &str = "system:nodes";
/// Every authenticated user is in this group.
pub const AUTHENTICATED: &str = "system:authenticated";
/// The group upstream's `system:monitoring` role is bound to: it may read `/metrics`.
pub const MONITORING: &str = "system:monitoring";

/// A non-resource request (`/healthz`, `/api`, `/metrics`, ...): the admin group, else what
/// RBAC's non-resource rules give (the bootstrap `system:discovery`,
/// `system:public-info-viewer` and `system:monitoring` bindings, any a user adds).
pub fn authorize_path(
    user: &User,
    verb: &str,
    path: &str,
    rbac: &RbacView,
) -> Result<(), ApiError> {
    if user.in_group(MASTERS) {
        return Ok(());
    }
    match rbac.authorize_path(user, verb, path) {
        RbacDecision::Allow(_) => Ok(()),
        RbacDecision::NoOpinion(reason) => {
            let mut why = format!("User {:?} cannot {verb} path {path:?}", user.name);
            if !reason.is_empty() {
                why = format!("{why}: {reason}");
            }
            Err(ApiError::forbidden_path(&why))
        }
    }
}

/// The grants upstream hard-codes rather than stores: the privileged group, and the Node
/// authorizer's rules for kubelets. Everything else is RBAC's.
pub static BINDINGS: &[Binding] = &[
    Binding {
        subject: Subject::Group(MASTERS),
        role: "cluster-admin",
        namespace: None,
        rules: &[Rule {
            verbs: &["*"],
            groups: &["*"],
            resources: &["*"],
            scope: Scope::Any,
        }],
    },
    // The Node authorizer's static rules (bootstrappolicy `NodeRules`) with its subdivisions
    // (`node_authorizer.go`, AuthorizeNodeWithSelectors on, as in v1.32).
    Binding {
        subject: Subject::Group(NODES),
        role: "system:node",
        namespace: None,
        rules: &[
            Rule {
                verbs: &["create", "update", "patch"],
                groups: CORE,
                resources: &["nodes"],
                scope: Scope::Any,
            },
            Rule {
                verbs: READ,
                groups: CORE,
                resources: &["nodes"],
                scope: Scope::OwnNode,
            },
            Rule {
                verbs: &["update", "patch"],
                groups: CORE,
                resources: &["nodes/status"],
                scope: Scope::Any,
            },
            EVENTS,
            Rule {
                verbs: READ,
                groups: CORE,
                resources: &["pods"],
                scope: Scope::BoundPods,
            },
            Rule {
                verbs: &["create", "delete"],
                groups: CORE,
                resources: &["pods"],
                scope: Scope::Any,
            },
            Rule {
                verbs: &["update", "patch"],
                groups: CORE,
                resources: &["pods/status"],
                scope: Scope::Any,
            },
            Rule {
                verbs: READ,
                groups: CORE,
                resources: &["configmaps", "secrets"],
                scope: Scope::ReferencedByBoundPods,
            },
            Rule {
                verbs: &["create"],
                groups: CORE,
                resources: &["pods/eviction"],
                scope: Scope::Any,
            },
            // Tokens for the accounts its Pods run as (the graph's pod → serviceaccount edge).
            Rule {
                verbs: &["create"],
                groups: CORE,
                resources: &["serviceaccounts/token"],
                scope: Scope::ReferencedByBoundPods,
            },
            Rule {
                verbs: &["get", "create", "update", "patch", "delete"],
                groups: COORDINATION,
                resources: &["leases"],
                scope: Scope::OwnLease,
            },
            Rule {
                verbs: READ,
                groups: CORE,
                resources: &["services"],
                scope: Scope::Any,
            },
            Rule {
                verbs: &["create"],
                groups: &["authentication.k8s.io"],
                resources: &["tokenreviews"],
                scope: Scope::Any,
            },
            Rule {
                verbs: &["create"],
                groups: &["authorization.k8s.io"],
                resources: &["subjectaccessreviews", "localsubjectaccessreviews"],
                scope: Scope::Any,
            },
            Rule {
                verbs: &["create", "get", "list", "watch"],
                groups: &["certificates.k8s.io"],
                resources: &["certificatesigningrequests"],
                scope: Scope::Any,
            },
            Rule {
                verbs: READ,
                groups: &["node.k8s.io"],
                resources: &["runtimeclasses"],
                scope: Scope::Any,
            },
            Rule {
                verbs: READ,
                groups: &["storage.k8s.io"],
                resources: &["csidrivers"],
                scope: Scope::Any,
            },
        ],
    },
];

/// The outcome of authorizing a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Allowed if the named Pod exists and is bound to `node` (the Node authorizer's graph);
    /// the caller looks the Pod up.
    AllowIfBound {
        node: String,
    },
    /// Allowed if a Pod bound to `node` in the request's namespace refers to the named object
    /// (the Node authorizer's graph); the caller looks the Pods up.
    AllowIfReferenced {
        node: String,
    },
    /// Refused; the reason (possibly empty) follows upstream's message after a colon.
    Deny(String),
}

/// The node a kubelet's identity names: user `system:node:<name>` in group `system:nodes`.
pub fn node_name(user: &User) -> Option<&str> {
    if !user.in_group(NODES) {
        return None;
    }
    user.name.strip_prefix("system:node:")
}

fn subject_matches(subject: Subject, user: &User) -> bool {
    match subject {
        Subject::User(name) => user.name == name,
        Subject::Group(group) => user.in_group(group),
    }
}

fn matches_any(list: &[&str], value: &str) -> bool {
    list.iter().any(|v| *v == "*" || *v == value)
}

fn rule_covers(rule: &Rule, a: &Attributes<'_>) -> bool {
    let resource = if a.subresource.is_empty() {
        a.resource.to_string()
    } else {
        format!("{}/{}", a.resource, a.subresource)
    };
    matches_any(rule.verbs, a.verb)
        && matches_any(rule.groups, a.group)
        && matches_any(rule.resources, &resource)
}

/// Decides on a resource request, as the chain Node, RBAC does upstream (after the
/// privileged group).
pub fn authorize(user: &User, a: &Attributes<'_>, rbac: &RbacView) -> Decision {
    let node = node_name(user);
    let mut reason = String::new();
    for binding in BINDINGS.iter().filter(|b| subject_matches(b.subject, user)) {
        let is_node_role = binding.subject == Subject::Group(NODES);
        if is_node_role && node.is_none() {
            // The Node authorizer only speaks for identifiable nodes.
            continue;
        }
        if binding.namespace.is_some_and(|ns| ns != a.namespace) {
            continue;
        }
        for rule in binding.rules.iter().filter(|r| rule_covers(r, a)) {
            match (rule.scope, node) {
                (Scope::Any, _) => return Decision::Allow,
                (Scope::Names(names), _) => {
                    if !a.name.is_empty() && names.contains(&a.name) {
                        return Decision::Allow;
                    }
                }
                (Scope::OwnNode, Some(node)) => match a.name {
                    n if n == node => return Decision::Allow,
                    "" => {
                        reason =
                            format!("node '{node}' cannot read all nodes, only its own Node object")
                    }
                    other => {
                        reason =
                            format!("node '{node}' cannot read '{other}', only its own Node object")
                    }
                },
                (Scope::BoundPods, Some(node)) => {
                    if a.verb != "get" && a.node_selector == Some(node) {
                        return Decision::Allow;
                    }
                    if !a.name.is_empty() {
                        return Decision::AllowIfBound {
                            node: node.to_string(),
                        };
                    }
                    reason = "can only list/watch pods with spec.nodeName field selector".into();
                }
                (Scope::ReferencedByBoundPods, Some(node)) => {
                    if !a.name.is_empty() {
                        return Decision::AllowIfReferenced {
                            node: node.to_string(),
                        };
                    }
                    reason = format!(
                        "node '{node}' cannot list/watch {} without a metadata.name field selector",
                        a.resource
                    );
                }
                (Scope::OwnLease, Some(node)) => {
                    if a.namespace != "kube-node-lease" {
                        reason =
                            "can only access leases in the \"kube-node-lease\" system namespace"
                                .into();
                    } else if a.verb != "create" && a.name != node {
                        reason =
                            "can only access node lease with the same name as the requesting node"
                                .into();
                    } else {
                        return Decision::Allow;
                    }
                }
                (_, None) => {}
            }
        }
        if is_node_role && reason.is_empty() {
            reason = node_reason(a);
        }
    }
    let request = ResourceRequest {
        verb: a.verb,
        group: a.group,
        resource: a.resource,
        subresource: a.subresource,
        namespace: a.namespace,
        name: a.name,
    };
    match rbac.authorize(user, &request) {
        RbacDecision::Allow(_) => Decision::Allow,
        // The union of authorizers joins the reasons each gave.
        RbacDecision::NoOpinion(rbac_reason) => {
            let reasons: Vec<&str> = [reason.as_str(), rbac_reason.as_str()]
                .into_iter()
                .filter(|r| !r.is_empty())
                .collect();
            Decision::Deny(reasons.join(", "))
        }
    }
}

/// The Node authorizer's reason for refusing a request no rule covered, where it gives one.
fn node_reason(a: &Attributes<'_>) -> String {
    match (a.group, a.resource) {
        ("coordination.k8s.io", "leases") => {
            "can only get, create, update, patch, or delete a node lease".into()
        }
        _ => String::new(),
    }
}

/// The 403 of a refused request, worded as upstream's authorization filter words it.
pub fn forbidden(user: &User, a: &Attributes<'_>, reason: &str) -> ApiError {
    let mut shown = a.resource.to_string();
    if !a.subresource.is_empty() {
        shown = format!("{shown}/{}", a.subresource);
    }
    let mut why = if a.namespace.is_empty() {
        format!(
            "User {:?} cannot {} resource {shown:?} in API group {:?} at the cluster scope",
            user.name, a.verb, a.group
        )
    } else {
        format!(
            "User {:?} cannot {} resource {shown:?} in API group {:?} in the namespace {:?}",
            user.name, a.verb, a.group, a.namespace
        )
    };
    if !reason.is_empty() {
        why = format!("{why}: {reason}");
    }
    ApiError::forbidden(
        GroupResource {
            group: a.group,
            resource: a.resource,
        },
        a.name,
        &why,
    )
}

/// Checks a decision that needed the Pod: allowed if `pod` is bound to the node.
pub fn check_bound(node: &str, pod: Option<&Value>) -> Result<(), String> {
    let bound = pod
        .and_then(|p| p.pointer("/spec/nodeName"))
        .and_then(Value::as_str);
    if bound == Some(node) {
        Ok(())
    } else {
        Err(format!(
            "no relationship found between node '{node}' and this object"
        ))
    }
}

/// Whether `pod` refers to the ConfigMap, Secret or ServiceAccount (`resource`) named `name`:
/// through its containers' `env` and `envFrom`, its volumes (also projected ones), for Secrets
/// its `imagePullSecrets`, for accounts the one it runs as — the edges of upstream's node
/// authorizer graph.
pub fn pod_refers_to(pod: &Value, resource: &str, name: &str) -> bool {
    if resource == "serviceaccounts" {
        return pod
            .pointer("/spec/serviceAccountName")
            .and_then(Value::as_str)
            == Some(name);
    }
    let (key_ref, from_ref, volume, volume_key) = match resource {
        "configmaps" => ("configMapKeyRef", "configMapRef", "configMap", "name"),
        "secrets" => ("secretKeyRef", "secretRef", "secret", "secretName"),
        _ => return false,
    };
    let Some(spec) = pod.get("spec") else {
        return false;
    };
    let named = |v: Option<&Value>, key: &str| v.and_then(|v| v[key].as_str()) == Some(name);
    let containers = ["containers", "initContainers", "ephemeralContainers"]
        .iter()
        .filter_map(|list| spec[*list].as_array())
        .flatten();
    for container in containers {
        let env = container["env"].as_array().into_iter().flatten();
        if env
            .into_iter()
            .any(|e| named(e.pointer(&format!("/valueFrom/{key_ref}")), "name"))
        {
            return true;
        }
        let env_from = container["envFrom"].as_array().into_iter().flatten();
        if env_from.into_iter().any(|e| named(e.get(from_ref), "name")) {
            return true;
        }
    }
    for v in spec["volumes"].as_array().into_iter().flatten() {
        if named(v.get(volume), volume_key) {
            return true;
        }
        let sources = v.pointer("/projected/sources").and_then(Value::as_array);
        if sources
            .into_iter()
            .flatten()
            .any(|s| named(s.get(volume), "name"))
        {
            return true;
        }
    }
    resource == "secrets"
        && spec["imagePullSecrets"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|s| s["name"].as_str() == Some(name))
}

// ---------------------------------------------------------------------------------------------
// NodeRestriction admission
// ---------------------------------------------------------------------------------------------

/// NodeRestriction's rule for a kubelet's TokenRequest (for the account `account`): the token
/// must be bound to a Pod, named with its UID, that runs on the kubelet's node. `pod` is the
/// bound Pod as stored, if it is.
pub fn admit_node_token_request(
    node: &str,
    account: &str,
    request: &Value,
    pod: Option<&Value>,
) -> Result<(), ApiError> {
    let refuse = |why: &str| {
        ApiError::forbidden(
            GroupResource {
                group: "",
                resource: "serviceaccounts",
            },
            account,
            why,
        )
    };
    let bound = &request["spec"]["boundObjectRef"];
    let field = |key: &str| bound[key].as_str().unwrap_or("");
    if field("apiVersion") != "v1" || field("kind") != "Pod" || field("name").is_empty() {
        return Err(refuse("node requested token not bound to a pod"));
    }
    if field("uid").is_empty() {
        return Err(refuse(
            "node requested token with a pod binding without a uid",
        ));
    }
    let Some(pod) = pod else {
        return Err(ApiError::not_found(
            GroupResource {
                group: "",
                resource: "pods",
            },
            field("name"),
        ));
    };
    if pod.pointer("/metadata/uid").and_then(Value::as_str) != Some(field("uid")) {
        return Err(refuse(&format!("the UID in the bound object reference ({}) does not match the UID in record. The object might have been deleted and then recreated", field("uid"))));
    }
    if pod.pointer("/spec/nodeName").and_then(Value::as_str) != Some(node) {
        return Err(refuse(
            "node requested token bound to a pod scheduled on a different node",
        ));
    }
    Ok(())
}

/// The 403 of NodeRestriction: `<resource> "<name>" is forbidden: <why>`, where the name is
/// the request's, else the object's name or generateName, else "Unknown" (upstream
/// `admission.NewForbidden`).
fn admission_forbidden(a: &Attributes<'_>, obj: Option<&Value>, why: &str) -> ApiError {
    let from_object = |field: &str| {
        obj.and_then(|o| o.pointer(&format!("/metadata/{field}")))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let name = Some(a.name)
        .filter(|n| !n.is_empty())
        .or_else(|| from_object("name"))
        .or_else(|| from_object("generateName"))
        .unwrap_or("Unknown");
    ApiError::forbidden(
        GroupResource {
            group: a.group,
            resource: a.resource,
        },
        name,
        why,
    )
}

/// NodeRestriction for a create or update by a kubelet: `new` is the object the write would
/// store (before the kind's update rules), `old` the current one (None on create).
/// `node_uid` is the uid of the kubelet's Node (or the error looking it up), which a mirror
/// Pod's owner must carry.
pub fn admit_node_write(
    node: &str,
    node_uid: Option<&Result<String, ApiError>>,
    a: &Attributes<'_>,
    new: &Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    let deny = |why: String| Err(admission_forbidden(a, Some(new), &why));
    match (a.group, a.resource, a.subresource) {
        ("", "nodes", _) => {
            let requested = if a.name.is_empty() {
                object::name(new)
            } else {
                a.name
            };
            if requested != node {
                return deny(format!(
                    "node {node:?} is not allowed to modify node {requested:?}"
                ));
            }
            let config_source = |o: &Value| {
                o.pointer("/spec/configSource")
                    .filter(|v| !v.is_null())
                    .cloned()
            };
            match old {
                None => {
                    if config_source(new).is_some() {
                        return deny(format!("node {node:?} is not allowed to create pods with a non-nil configSource"));
                    }
                    let forbidden = forbidden_labels(&modified_labels(new, None));
                    if !forbidden.is_empty() {
                        return deny(format!(
                            "node {node:?} is not allowed to set the following labels: {}",
                            forbidden.join(", ")
                        ));
                    }
                }
                Some(old) => {
                    if let Some(source) = config_source(new) {
                        if Some(&source) != config_source(old).as_ref() {
                            return deny(format!("node {node:?} is not allowed to update configSource to a new non-nil configSource"));
                        }
                    }
                    if taints(new) != taints(old) {
                        return deny(format!("node {node:?} is not allowed to modify taints"));
                    }
                    let forbidden = forbidden_labels(&modified_labels(new, Some(old)));
                    if !forbidden.is_empty() {
                        // Upstream's message for updates does not name the node.
                        return deny(format!(
                            "is not allowed to modify labels: {}",
                            forbidden.join(", ")
                        ));
                    }
                }
            }
            Ok(())
        }
        ("", "pods", "") if old.is_none() => match admit_mirror_pod(node, node_uid, new) {
            Ok(()) => Ok(()),
            Err(Refusal::Why(why)) => deny(why),
            Err(Refusal::Error(e)) => Err(e),
        },
        ("", "pods", "status") => {
            let Some(old) = old else {
                return deny("unexpected operation \"CREATE\"".into());
            };
            if old.pointer("/spec/nodeName").and_then(Value::as_str) != Some(node) {
                return deny(format!("node {node:?} can only update pod status for pods with spec.nodeName set to itself"));
            }
            if labels(new) != labels(old) {
                return deny(format!(
                    "node {node:?} cannot update labels through pod status"
                ));
            }
            let claims = |o: &Value| {
                o.pointer("/status/resourceClaimStatuses")
                    .filter(|v| !v.is_null())
                    .and_then(Value::as_array)
                    .map(|list| {
                        list.iter()
                            .map(|c| (c.get("name").cloned(), c.get("resourceClaimName").cloned()))
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default()
            };
            if claims(new) != claims(old) {
                return deny(format!(
                    "node {node:?} cannot update resource claim statues"
                ));
            }
            Ok(())
        }
        ("coordination.k8s.io", "leases", _) => {
            if a.namespace != "kube-node-lease" {
                return deny(
                    "can only access leases in the \"kube-node-lease\" system namespace".into(),
                );
            }
            let name = if old.is_none() {
                object::name(new)
            } else {
                a.name
            };
            if name != node {
                return deny(
                    "can only access node lease with the same name as the requesting node".into(),
                );
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// NodeRestriction for a kubelet deleting a Pod: only Pods bound to its node.
pub fn admit_node_pod_delete(node: &str, a: &Attributes<'_>, pod: &Value) -> Result<(), ApiError> {
    if pod.pointer("/spec/nodeName").and_then(Value::as_str) == Some(node) {
        return Ok(());
    }
    Err(admission_forbidden(
        a,
        Some(pod),
        &format!("node {node:?} can only delete pods with spec.nodeName set to itself"),
    ))
}

/// Why a mirror Pod is refused: NodeRestriction's reason, or the error of looking its Node up.
enum Refusal {
    Why(String),
    Error(ApiError),
}

/// A kubelet may only create mirror Pods of its static Pods, owned by its Node and
/// referencing no other API objects.
fn admit_mirror_pod(
    node: &str,
    node_uid: Option<&Result<String, ApiError>>,
    pod: &Value,
) -> Result<(), Refusal> {
    let mirror = pod
        .pointer("/metadata/annotations/kubernetes.io~1config.mirror")
        .is_some();
    if !mirror {
        return Err(Refusal::Why(format!("pod does not have \"kubernetes.io/config.mirror\" annotation, node {node:?} can only create mirror pods")));
    }
    if pod.pointer("/spec/nodeName").and_then(Value::as_str) != Some(node) {
        return Err(Refusal::Why(format!(
            "node {node:?} can only create pods with spec.nodeName set to itself"
        )));
    }
    let owners = pod
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    match owners.as_slice() {
        [] => {
            return Err(Refusal::Why(format!(
                "node {node:?} can only create pods with an owner reference set to itself"
            )))
        }
        [owner] => {
            let text = |k: &str| owner.get(k).and_then(Value::as_str).unwrap_or("");
            if text("apiVersion") != "v1" || text("kind") != "Node" || text("name") != node {
                return Err(Refusal::Why(format!(
                    "node {node:?} can only create pods with an owner reference set to itself"
                )));
            }
            if owner.get("controller").and_then(Value::as_bool) != Some(true) {
                return Err(Refusal::Why(format!("node {node:?} can only create pods with a controller owner reference set to itself")));
            }
            if owner.get("blockOwnerDeletion").and_then(Value::as_bool) == Some(true) {
                return Err(Refusal::Why(format!(
                    "node {node:?} must not set blockOwnerDeletion on an owner reference"
                )));
            }
            // Upstream prints the owner's uid as "expected" and the Node's as "got".
            match node_uid {
                Some(Ok(uid)) if text("uid") != uid => {
                    return Err(Refusal::Why(format!(
                        "node {node} UID mismatch: expected {} got {uid}",
                        text("uid")
                    )));
                }
                Some(Err(lookup)) => return Err(Refusal::Error(lookup.clone())),
                _ => {}
            }
        }
        _ => {
            return Err(Refusal::Why(format!(
                "node {node:?} can only create pods with a single owner reference set to itself"
            )))
        }
    }
    let spec = pod.get("spec").cloned().unwrap_or(Value::Null);
    if spec
        .get("serviceAccountName")
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty())
    {
        return Err(Refusal::Why(format!(
            "node {node:?} can not create pods that reference a service account"
        )));
    }
    let mut keys = BTreeSet::new();
    object_keys(&spec, &mut keys);
    let refers = |names: &[&str]| names.iter().any(|k| keys.contains(*k));
    if refers(&["imagePullSecrets", "secret", "secretKeyRef", "secretRef"]) {
        return Err(Refusal::Why(format!(
            "node {node:?} can not create pods that reference secrets"
        )));
    }
    if refers(&["configMap", "configMapKeyRef", "configMapRef"]) {
        return Err(Refusal::Why(format!(
            "node {node:?} can not create pods that reference configmaps"
        )));
    }
    if refers(&["clusterTrustBundle"]) {
        return Err(Refusal::Why(format!(
            "node {node:?} can not create pods that reference clustertrustbundles"
        )));
    }
    if refers(&["persistentVolumeClaim"]) {
        return Err(Refusal::Why(format!(
            "node {node:?} can not create pods that reference persistentvolumeclaims"
        )));
    }
    Ok(())
}

/// Every object key anywhere in `value` (the fields a Pod spec sets, at any depth).
fn object_keys(value: &Value, keys: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if !v.is_null() {
                    keys.insert(k.clone());
                }
                object_keys(v, keys);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| object_keys(v, keys)),
        _ => {}
    }
}

fn labels(obj: &Value) -> Vec<(String, String)> {
    obj.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| {
            let mut pairs: Vec<(String, String)> = m
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect();
            pairs.sort();
            pairs
        })
        .unwrap_or_default()
}

/// Taints compared as upstream's semantic equality does: absent, null and `[]` are equal.
fn taints(node: &Value) -> Vec<Value> {
    node.pointer("/spec/taints")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// The label keys that differ between `new` and `old` (added, removed or changed).
fn modified_labels(new: &Value, old: Option<&Value>) -> BTreeSet<String> {
    let new = labels(new);
    let old = old.map(labels).unwrap_or_default();
    let mut modified = BTreeSet::new();
    for (k, v) in &new {
        if !old.iter().any(|(k2, v2)| k2 == k && v2 == v) {
            modified.insert(k.clone());
        }
    }
    for (k, v) in &old {
        if !new.iter().any(|(k2, v2)| k2 == k && v2 == v) {
            modified.insert(k.clone());
        }
    }
    modified
}

fn label_namespace(key: &str) -> &str {
    key.split_once('/').map(|(ns, _)| ns).unwrap_or("")
}

fn in_namespace(ns: &str, domain: &str) -> bool {
    ns == domain || ns.ends_with(&format!(".{domain}"))
}

/// Labels a kubelet may set on its Node (`k8s.io/kubelet/pkg/apis` well-known labels).
const KUBELET_LABELS: &[&str] = &[
    "kubernetes.io/hostname",
    "topology.kubernetes.io/zone",
    "topology.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone",
    "failure-domain.beta.kubernetes.io/region",
    "node.kubernetes.io/instance-type",
    "beta.kubernetes.io/instance-type",
    "kubernetes.io/os",
    "kubernetes.io/arch",
    "beta.kubernetes.io/os",
    "beta.kubernetes.io/arch",
];

/// Label namespaces a kubelet may set on its Node, with their subdomains.
const KUBELET_LABEL_NAMESPACES: &[&str] = &["kubelet.kubernetes.io", "node.kubernetes.io"];

/// Whether a kubelet may set this label on its own Node.
pub fn is_kubelet_label(key: &str) -> bool {
    if KUBELET_LABELS.contains(&key) {
        return true;
    }
    let ns = label_namespace(key);
    KUBELET_LABEL_NAMESPACES
        .iter()
        .any(|allowed| in_namespace(ns, allowed))
}

/// Whether NodeRestriction refuses a kubelet setting, changing or removing this label.
pub fn is_restricted_node_label(key: &str) -> bool {
    let ns = label_namespace(key);
    if in_namespace(ns, "node-restriction.kubernetes.io") {
        return true;
    }
    let kubernetes = in_namespace(ns, "kubernetes.io") || in_namespace(ns, "k8s.io");
    kubernetes && !is_kubelet_label(key)
}

fn forbidden_labels(modified: &BTreeSet<String>) -> Vec<String> {
    modified
        .iter()
        .filter(|k| is_restricted_node_label(k))
        .cloned()
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Impersonation
// ---------------------------------------------------------------------------------------------

/// Why a request's impersonation headers are refused.
#[derive(Debug, thiserror::Error)]
pub enum ImpersonationError {
    /// Groups, extras or a uid without `Impersonate-User`: upstream answers 500 with this
    /// text (`responsewriters.InternalError`).
    #[error("requested {0} without impersonating a user")]
    WithoutUser(String),
    /// The requester may not impersonate this user, group or service account.
    #[error(transparent)]
    Forbidden(ApiError),
}

/// One thing a request asks to act as, in the form upstream prints a `v1.ObjectReference`.
struct Requested {
    kind: &'static str,
    namespace: String,
    name: String,
    api_version: &'static str,
    field_path: String,
}

impl Requested {
    fn go_format(&self) -> String {
        format!(
            "{{{} {} {}  {}  {}}}",
            self.kind, self.namespace, self.name, self.api_version, self.field_path
        )
    }
}

/// Applies `Impersonate-*` headers (upstream `filters.WithImpersonation`): the requester must
/// be allowed the `impersonate` verb on each user, group, service account, uid and extra it
/// asks for; then the request runs as that user, with `system:authenticated` added.
/// Returns the requester unchanged when no such header is present.
pub fn impersonate(
    requester: User,
    headers: &http::HeaderMap,
    rbac: &RbacView,
) -> Result<User, ImpersonationError> {
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_string))
            .collect()
    };
    let mut requested = Vec::new();
    let user = values("impersonate-user")
        .into_iter()
        .next()
        .unwrap_or_default();
    if !user.is_empty() {
        let sa = user
            .strip_prefix("system:serviceaccount:")
            .and_then(|rest| rest.split_once(':'))
            .filter(|(ns, name)| !ns.is_empty() && !name.is_empty() && !name.contains(':'));
        requested.push(match sa {
            Some((ns, name)) => Requested {
                kind: "ServiceAccount",
                namespace: ns.into(),
                name: name.into(),
                api_version: "",
                field_path: String::new(),
            },
            None => Requested {
                kind: "User",
                namespace: String::new(),
                name: user.clone(),
                api_version: "",
                field_path: String::new(),
            },
        });
    }
    let groups_requested = values("impersonate-group");
    for group in &groups_requested {
        requested.push(Requested {
            kind: "Group",
            namespace: String::new(),
            name: group.clone(),
            api_version: "",
            field_path: String::new(),
        });
    }
    let mut extras = false;
    for (name, value) in headers {
        let Some(key) = name.as_str().strip_prefix("impersonate-extra-") else {
            continue;
        };
        extras = true;
        requested.push(Requested {
            kind: "UserExtra",
            namespace: String::new(),
            name: value.to_str().unwrap_or("").to_string(),
            api_version: "authentication.k8s.io/v1",
            field_path: key.to_string(),
        });
    }
    let uid = values("impersonate-uid")
        .into_iter()
        .next()
        .unwrap_or_default();
    if !uid.is_empty() {
        requested.push(Requested {
            kind: "UID",
            namespace: String::new(),
            name: uid,
            api_version: "authentication.k8s.io/v1",
            field_path: String::new(),
        });
    }
    if requested.is_empty() {
        return Ok(requester);
    }
    let has_user = !user.is_empty();
    if !has_user
        && (!groups_requested.is_empty() || extras || requested.iter().any(|r| r.kind == "UID"))
    {
        let list: Vec<String> = requested.iter().map(Requested::go_format).collect();
        return Err(ImpersonationError::WithoutUser(format!(
            "[{}]",
            list.join(" ")
        )));
    }
    let mut name = String::new();
    let mut groups: Vec<String> = Vec::new();
    for r in &requested {
        let (group, resource, subresource) = match r.kind {
            "ServiceAccount" => ("", "serviceaccounts", ""),
            "User" => ("", "users", ""),
            "Group" => ("", "groups", ""),
            "UserExtra" => ("authentication.k8s.io", "userextras", r.field_path.as_str()),
            _ => ("authentication.k8s.io", "uids", ""),
        };
        let a = Attributes {
            verb: "impersonate",
            group,
            resource,
            subresource,
            namespace: &r.namespace,
            name: &r.name,
            node_selector: None,
        };
        match authorize(&requester, &a, rbac) {
            Decision::Allow => {}
            Decision::AllowIfBound { .. } | Decision::AllowIfReferenced { .. } => {
                return Err(ImpersonationError::Forbidden(forbidden(&requester, &a, "")))
            }
            Decision::Deny(reason) => {
                return Err(ImpersonationError::Forbidden(forbidden(
                    &requester, &a, &reason,
                )))
            }
        }
        match r.kind {
            "ServiceAccount" => {
                name = format!("system:serviceaccount:{}:{}", r.namespace, r.name);
                if groups_requested.is_empty() {
                    groups = vec![
                        "system:serviceaccounts".into(),
                        format!("system:serviceaccounts:{}", r.namespace),
                    ];
                }
            }
            "User" => name = r.name.clone(),
            "Group" => groups.push(r.name.clone()),
            _ => {}
        }
    }
    if name != "system:anonymous" {
        if !groups
            .iter()
            .any(|g| g == AUTHENTICATED || g == "system:unauthenticated")
        {
            groups.push(AUTHENTICATED.into());
        }
    } else if !groups.iter().any(|g| g == "system:unauthenticated") {
        groups.push("system:unauthenticated".into());
    }
    Ok(User {
        name,
        groups,
        ..User::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The bootstrap policy's RBAC objects, as the API server holds them after start.
    fn policy() -> RbacView {
        use crate::registry::rbac::bootstrap;
        let mut all = bootstrap::cluster_roles();
        all.extend(bootstrap::cluster_role_bindings());
        all.extend(bootstrap::roles());
        all.extend(bootstrap::role_bindings());
        RbacView::from_objects(&all)
    }

    fn authorize(user: &User, a: &Attributes<'_>) -> Decision {
        super::authorize(user, a, &policy())
    }

    fn impersonate(user: User, headers: &http::HeaderMap) -> Result<User, ImpersonationError> {
        super::impersonate(user, headers, &policy())
    }

    fn user(name: &str, groups: &[&str]) -> User {
        User {
            name: name.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            ..User::default()
        }
    }

    fn attrs<'a>(verb: &'a str, resource: &'a str, ns: &'a str, name: &'a str) -> Attributes<'a> {
        let (resource, subresource) = resource.split_once('/').unwrap_or((resource, ""));
        let group = if resource == "leases" {
            "coordination.k8s.io"
        } else {
            ""
        };
        Attributes {
            verb,
            group,
            resource,
            subresource,
            namespace: ns,
            name,
            node_selector: None,
        }
    }

    /// Walks [`BINDINGS`] row by row: every verb on every resource a rule names is allowed
    /// to an identity the binding names, in the binding's namespace and within the rule's
    /// scope, and refused outside that namespace when nothing else grants it.
    #[test]
    fn every_row_of_the_table_grants_what_it_says() {
        let mut checked = 0;
        for binding in BINDINGS {
            let who = match binding.subject {
                Subject::User(name) => user(name, &[]),
                Subject::Group(NODES) => user("system:node:n1", &[NODES]),
                Subject::Group(group) => user("someone", &[group]),
            };
            for rule in binding.rules {
                let verbs: &[&str] = if rule.verbs == ["*"] {
                    &[
                        "get", "list", "watch", "create", "update", "patch", "delete",
                    ]
                } else {
                    rule.verbs
                };
                let resources: &[&str] = if rule.resources == ["*"] {
                    &["pods", "nodes", "leases", "pods/log"]
                } else {
                    rule.resources
                };
                for verb in verbs {
                    for group in rule.groups.iter().map(|g| if *g == "*" { "" } else { g }) {
                        for resource in resources {
                            let (resource, subresource) =
                                resource.split_once('/').unwrap_or((resource, ""));
                            let (namespace, name) = match rule.scope {
                                Scope::Any => (binding.namespace.unwrap_or("default"), "x"),
                                Scope::Names(names) => {
                                    (binding.namespace.unwrap_or("kube-system"), names[0])
                                }
                                Scope::OwnNode => ("", "n1"),
                                Scope::OwnLease => ("kube-node-lease", "n1"),
                                // Decided by the Pods' bindings: covered by their own tests.
                                Scope::BoundPods | Scope::ReferencedByBoundPods => continue,
                            };
                            // A kubelet lists its own Node by a `metadata.name` selector,
                            // which names it; other lists and creates name nothing.
                            let own_node = rule.scope == Scope::OwnNode;
                            let name = if !own_node && matches!(*verb, "list" | "watch" | "create")
                            {
                                ""
                            } else {
                                name
                            };
                            let a = Attributes {
                                verb,
                                group,
                                resource,
                                subresource,
                                namespace,
                                name,
                                node_selector: None,
                            };
                            let got = authorize(&who, &a);
                            assert_eq!(got, Decision::Allow, "{} {} {a:?}", binding.role, who.name);
                            checked += 1;
                        }
                    }
                }
            }
        }
        assert!(checked > 50, "only {checked} grants walked");
    }

    #[test]
    fn kubelets_get_tokens_only_for_their_pods_accounts_bound_to_those_pods() {
        let kubelet = user("system:node:n1", &[NODES]);
        let mut a = attrs("create", "serviceaccounts", "default", "ci");
        a.subresource = "token";
        assert_eq!(
            authorize(&kubelet, &a),
            Decision::AllowIfReferenced { node: "n1".into() }
        );
        let pod = json!({"metadata": {"uid": "u1"}, "spec": {"nodeName": "n1", "serviceAccountName": "ci"}});
        assert!(pod_refers_to(&pod, "serviceaccounts", "ci"));
        assert!(!pod_refers_to(&pod, "serviceaccounts", "default"));

        let request = |bound: Value| json!({"spec": {"boundObjectRef": bound}});
        let refusal = |r: Result<(), ApiError>| r.err().map(|e| e.message).unwrap_or_default();
        let to_pod = |uid: &str| {
            request(json!({"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": uid}))
        };
        assert_eq!(
            refusal(admit_node_token_request(
                "n1",
                "ci",
                &json!({"spec": {}}),
                Some(&pod)
            )),
            "serviceaccounts \"ci\" is forbidden: node requested token not bound to a pod"
        );
        assert_eq!(
            refusal(admit_node_token_request("n1", "ci", &to_pod(""), Some(&pod))),
            "serviceaccounts \"ci\" is forbidden: node requested token with a pod binding without a uid"
        );
        assert!(refusal(admit_node_token_request(
            "n1",
            "ci",
            &to_pod("u2"),
            Some(&pod)
        ))
        .contains("does not match the UID in record"));
        assert_eq!(
            refusal(admit_node_token_request("n2", "ci", &to_pod("u1"), Some(&pod))),
            "serviceaccounts \"ci\" is forbidden: node requested token bound to a pod scheduled on a different node"
        );
        assert_eq!(
            refusal(admit_node_token_request("n1", "ci", &to_pod("u1"), None)),
            "pods \"p\" not found"
        );
        assert!(admit_node_token_request("n1", "ci", &to_pod("u1"), Some(&pod)).is_ok());
    }

    /// The components' rights now live in the bootstrap policy: each User bound to a role
    /// gets every verb of every rule of it, through the RBAC authorizer.
    #[test]
    fn every_bootstrap_binding_grants_its_role_to_its_user() {
        use crate::registry::rbac::bootstrap;
        let roles = bootstrap::cluster_roles();
        let mut checked = 0;
        for binding in bootstrap::cluster_role_bindings() {
            let role_name = binding["roleRef"]["name"].as_str().expect("a role");
            let role = roles
                .iter()
                .find(|r| r["metadata"]["name"] == role_name)
                .expect("the role exists");
            for subject in binding["subjects"].as_array().into_iter().flatten() {
                if subject["kind"] != "User" {
                    continue;
                }
                let who = user(subject["name"].as_str().expect("a name"), &[AUTHENTICATED]);
                for rule in role["rules"].as_array().into_iter().flatten() {
                    let strings = |k: &str| -> Vec<&str> {
                        rule[k]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(Value::as_str)
                            .collect()
                    };
                    let name = strings("resourceNames").first().copied().unwrap_or("x");
                    for verb in strings("verbs") {
                        for group in strings("apiGroups") {
                            for resource in strings("resources") {
                                let (resource, subresource) =
                                    resource.split_once('/').unwrap_or((resource, ""));
                                let a = Attributes {
                                    verb,
                                    group: if group == "*" { "apps" } else { group },
                                    resource: if resource == "*" { "pods" } else { resource },
                                    subresource,
                                    namespace: "default",
                                    name,
                                    node_selector: None,
                                };
                                assert_eq!(
                                    authorize(&who, &a),
                                    Decision::Allow,
                                    "{role_name} {a:?}"
                                );
                                checked += 1;
                            }
                        }
                    }
                }
            }
        }
        assert!(checked > 100, "only {checked} grants walked");
    }

    #[test]
    fn a_pod_refers_to_config_maps_and_secrets_through_every_edge() {
        let pod = serde_json::json!({"spec": {
            "containers": [{"name": "c",
                "env": [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "env-cm", "key": "k"}}},
                        {"name": "B", "valueFrom": {"secretKeyRef": {"name": "env-secret", "key": "k"}}}],
                "envFrom": [{"configMapRef": {"name": "from-cm"}}, {"secretRef": {"name": "from-secret"}}]}],
            "initContainers": [{"name": "i", "envFrom": [{"configMapRef": {"name": "init-cm"}}]}],
            "volumes": [{"name": "v1", "configMap": {"name": "vol-cm"}},
                        {"name": "v2", "secret": {"secretName": "vol-secret"}},
                        {"name": "v3", "projected": {"sources": [{"configMap": {"name": "proj-cm"}},
                                                                  {"secret": {"name": "proj-secret"}}]}}],
            "imagePullSecrets": [{"name": "pull"}]}});
        for name in ["env-cm", "from-cm", "init-cm", "vol-cm", "proj-cm"] {
            assert!(pod_refers_to(&pod, "configmaps", name), "{name}");
            assert!(!pod_refers_to(&pod, "secrets", name), "{name}");
        }
        for name in [
            "env-secret",
            "from-secret",
            "vol-secret",
            "proj-secret",
            "pull",
        ] {
            assert!(pod_refers_to(&pod, "secrets", name), "{name}");
            assert!(!pod_refers_to(&pod, "configmaps", name), "{name}");
        }
        assert!(!pod_refers_to(&pod, "configmaps", "other"));
        assert!(!pod_refers_to(&pod, "pods", "env-cm"));
        let kubelet = user("system:node:n1", &[NODES]);
        let mut a = attrs("get", "secrets", "default", "vol-secret");
        assert_eq!(
            authorize(&kubelet, &a),
            Decision::AllowIfReferenced { node: "n1".into() }
        );
        a.verb = "list";
        a.name = "";
        assert!(matches!(authorize(&kubelet, &a), Decision::Deny(_)));
        a.verb = "delete";
        a.name = "vol-secret";
        assert!(matches!(authorize(&kubelet, &a), Decision::Deny(_)));
    }

    #[test]
    fn each_identity_gets_exactly_its_bootstrap_rights() {
        let admin = user("kubernetes-admin", &[MASTERS]);
        let scheduler = user("system:kube-scheduler", &[]);
        let kcm = user("system:kube-controller-manager", &[]);
        let kubelet = user("system:node:n1", &[NODES]);
        let jane = user("jane", &[AUTHENTICATED]);
        let allow = Decision::Allow;
        let cases: Vec<(&User, Attributes<'_>, bool)> = vec![
            (
                &admin,
                attrs("delete", "leases", "kube-node-lease", "n1"),
                true,
            ),
            (
                &scheduler,
                attrs("delete", "leases", "kube-node-lease", "n1"),
                false,
            ),
            (
                &scheduler,
                attrs("patch", "leases", "kube-node-lease", "n1"),
                false,
            ),
            (
                &scheduler,
                attrs("get", "leases", "kube-system", "kube-scheduler"),
                true,
            ),
            (
                &scheduler,
                attrs("update", "leases", "kube-system", "kube-scheduler"),
                true,
            ),
            (
                &scheduler,
                attrs("create", "leases", "kube-system", ""),
                true,
            ),
            (&scheduler, attrs("get", "pods/log", "default", "p"), false),
            (
                &scheduler,
                attrs("create", "pods/binding", "default", "p"),
                true,
            ),
            (
                &scheduler,
                attrs("patch", "pods/status", "default", "p"),
                true,
            ),
            (&scheduler, attrs("update", "pods", "default", "p"), false),
            (&scheduler, attrs("list", "namespaces", "", ""), true),
            (&scheduler, attrs("create", "namespaces", "", ""), false),
            (&kcm, attrs("list", "leases", "kube-node-lease", ""), true),
            (&kcm, attrs("delete", "pods", "default", "p"), true),
            (&kcm, attrs("get", "leases", "kube-system", "other"), true),
            // The garbage collector's role: any object read, changed or deleted, none made.
            (&kcm, attrs("get", "leases", "default", "other"), true),
            (&kcm, attrs("update", "pods", "default", "p"), true),
            // The root CA publisher's and the service account controller's rights.
            (&kcm, attrs("create", "configmaps", "default", ""), true),
            (
                &kcm,
                attrs("create", "serviceaccounts", "default", ""),
                true,
            ),
            (
                &kcm,
                attrs("create", "pods/eviction", "default", "p"),
                false,
            ),
            (&kubelet, attrs("get", "nodes", "", "n1"), true),
            (&kubelet, attrs("get", "nodes", "", "n2"), false),
            (&kubelet, attrs("list", "nodes", "", ""), false),
            (&kubelet, attrs("create", "nodes", "", ""), true),
            (&kubelet, attrs("delete", "nodes", "", "n1"), false),
            (&kubelet, attrs("get", "pods/log", "default", "p"), false),
            (&kubelet, attrs("update", "pods", "default", "p"), false),
            (
                &kubelet,
                attrs("get", "leases", "kube-node-lease", "n1"),
                true,
            ),
            (
                &kubelet,
                attrs("update", "leases", "kube-node-lease", "n2"),
                false,
            ),
            (
                &kubelet,
                attrs("list", "leases", "kube-node-lease", ""),
                false,
            ),
            (&kubelet, attrs("get", "namespaces", "", "default"), false),
            (&jane, attrs("list", "pods", "default", ""), false),
        ];
        for (who, a, allowed) in cases {
            let got = authorize(who, &a);
            assert_eq!(got == allow, allowed, "{} {:?}: {got:?}", who.name, a);
        }
    }

    #[test]
    fn kubelets_read_pods_bound_to_them_only() {
        let kubelet = user("system:node:n1", &[NODES]);
        let mut a = attrs("list", "pods", "", "");
        assert_eq!(
            authorize(&kubelet, &a),
            Decision::Deny("can only list/watch pods with spec.nodeName field selector".into())
        );
        a.node_selector = Some("n1");
        assert_eq!(authorize(&kubelet, &a), Decision::Allow);
        a.node_selector = Some("n2");
        assert_ne!(authorize(&kubelet, &a), Decision::Allow);
        let get = attrs("get", "pods", "default", "p");
        assert_eq!(
            authorize(&kubelet, &get),
            Decision::AllowIfBound { node: "n1".into() }
        );
    }

    #[test]
    fn refusals_read_as_upstream() {
        let kubelet = user("system:node:n1", &[NODES]);
        let a = attrs("get", "pods/log", "default", "p");
        let Decision::Deny(reason) = authorize(&kubelet, &a) else {
            panic!("refused")
        };
        assert_eq!(
            forbidden(&kubelet, &a, &reason).message,
            "pods \"p\" is forbidden: User \"system:node:n1\" cannot get resource \"pods/log\" in API group \"\" in the namespace \"default\""
        );
        let lease = attrs("update", "leases", "kube-node-lease", "n2");
        let Decision::Deny(reason) = authorize(&kubelet, &lease) else {
            panic!("refused")
        };
        assert_eq!(
            forbidden(&kubelet, &lease, &reason).message,
            "leases.coordination.k8s.io \"n2\" is forbidden: User \"system:node:n1\" cannot update resource \"leases\" in API group \"coordination.k8s.io\" in the namespace \"kube-node-lease\": can only access node lease with the same name as the requesting node"
        );
    }

    #[test]
    fn kubelet_labels_follow_node_restriction() {
        for allowed in [
            "kubernetes.io/hostname",
            "topology.kubernetes.io/zone",
            "node.kubernetes.io/instance-type",
            "node.kubernetes.io/anything",
            "foo.kubelet.kubernetes.io/x",
            "example.com/tier",
            "plain",
        ] {
            assert!(!is_restricted_node_label(allowed), "{allowed}");
        }
        for refused in [
            "node-role.kubernetes.io/control-plane",
            "node-restriction.kubernetes.io/secure",
            "a.node-restriction.kubernetes.io/x",
            "kubernetes.io/role",
            "k8s.io/x",
            "x.k8s.io/y",
        ] {
            assert!(is_restricted_node_label(refused), "{refused}");
        }
    }

    #[test]
    fn node_restriction_guards_node_labels_and_taints() {
        let a = attrs("update", "nodes", "", "n1");
        let old = serde_json::json!({"metadata": {"name": "n1", "labels": {"kubernetes.io/hostname": "n1"}}});
        let relabelled = serde_json::json!({"metadata": {"name": "n1", "labels": {"kubernetes.io/hostname": "n1", "node-role.kubernetes.io/x": ""}}});
        assert_eq!(
            admit_node_write("n1", None, &a, &relabelled, Some(&old))
                .expect_err("refused")
                .message,
            "nodes \"n1\" is forbidden: is not allowed to modify labels: node-role.kubernetes.io/x"
        );
        let tainted = serde_json::json!({"metadata": {"name": "n1", "labels": {"kubernetes.io/hostname": "n1"}}, "spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]}});
        assert!(admit_node_write("n1", None, &a, &tainted, Some(&old)).is_err());
        let same = serde_json::json!({"metadata": {"name": "n1", "labels": {"kubernetes.io/hostname": "n1"}}, "spec": {"taints": []}});
        assert!(admit_node_write("n1", None, &a, &same, Some(&old)).is_ok());
        let create = attrs("create", "nodes", "", "");
        let evil = serde_json::json!({"metadata": {"name": "evil"}});
        assert_eq!(
            admit_node_write("n1", None, &create, &evil, None)
                .expect_err("refused")
                .message,
            "nodes \"evil\" is forbidden: node \"n1\" is not allowed to modify node \"evil\""
        );
    }

    #[test]
    fn impersonation_needs_a_user_and_the_right_to_impersonate() {
        let admin = user("kubernetes-admin", &[MASTERS]);
        let mut headers = http::HeaderMap::new();
        headers.append("impersonate-group", "devs".parse().expect("header"));
        let err = impersonate(admin.clone(), &headers).expect_err("no user");
        assert_eq!(
            err.to_string(),
            "requested [{Group  devs    }] without impersonating a user"
        );
        headers.append("impersonate-user", "jane".parse().expect("header"));
        let jane = impersonate(admin, &headers).expect("admin may impersonate");
        assert_eq!(jane.name, "jane");
        assert_eq!(jane.groups, vec!["devs".to_string(), AUTHENTICATED.into()]);
        let scheduler = user("system:kube-scheduler", &[]);
        let mut headers = http::HeaderMap::new();
        headers.append("impersonate-user", "jane".parse().expect("header"));
        match impersonate(scheduler, &headers) {
            Err(ImpersonationError::Forbidden(e)) => assert_eq!(
                e.message,
                "users \"jane\" is forbidden: User \"system:kube-scheduler\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope"
            ),
            other => panic!("unexpected {other:?}"),
        }
    }
}
