//! Escalation prevention, as upstream's RBAC storage (`pkg/registry/rbac/*/policybased`): a
//! Role or ClusterRole may only be written with rules its writer already holds in its
//! namespace, unless the writer may `escalate` it; a binding only to a role whose rules its
//! writer holds, unless the writer may `bind` that role. Members of `system:masters` may do
//! anything. Changes that touch only the fields the garbage collector writes (owner
//! references, finalizers) are not checked.

use std::sync::Arc;

use k8s_openapi::api::rbac::v1::{PolicyRule, RoleRef};
use serde_json::Value;

use super::{RbacDecision, RbacView, ResourceRequest};
use crate::meta::{object, ApiError, GroupResource};
use crate::registry::rbac::{rules, GROUP};
use crate::registry::Admit;
use crate::tls::User;

const MASTERS: &str = "system:masters";

/// The admission check of a write to an RBAC object, or None for other resources.
pub fn admit(view: Arc<RbacView>, user: &User, resource: &str, namespace: &str) -> Option<Admit> {
    let resource: &'static str = match resource {
        "roles" => "roles",
        "clusterroles" => "clusterroles",
        "rolebindings" => "rolebindings",
        "clusterrolebindings" => "clusterrolebindings",
        _ => return None,
    };
    if user.in_group(MASTERS) {
        return None;
    }
    let user = user.clone();
    let namespace = namespace.to_string();
    Some(Admit(Arc::new(move |new: &Value, old: Option<&Value>| {
        if old.is_some_and(|old| only_gc_fields_differ(new, old)) {
            return Ok(());
        }
        check(&view, &user, resource, &namespace, new, old)
    })))
}

/// Whether nothing but owner references and finalizers would change.
fn only_gc_fields_differ(new: &Value, old: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(obj) = v.as_object_mut() {
            obj.remove("metadata");
            obj.remove("apiVersion");
            obj.remove("kind");
        }
        v
    };
    let meta = |v: &Value, f: &str| v.pointer(&format!("/metadata/{f}")).cloned();
    strip(new) == strip(old)
        && meta(new, "labels") == meta(old, "labels")
        && meta(new, "annotations") == meta(old, "annotations")
}

fn check(
    view: &RbacView,
    user: &User,
    resource: &'static str,
    namespace: &str,
    new: &Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    let name = object::name(new).to_string();
    let gr = GroupResource {
        group: GROUP,
        resource,
    };
    let allowed = |verb: &str, resource: &str, name: &str| {
        let r = ResourceRequest {
            verb,
            group: GROUP,
            resource,
            subresource: "",
            namespace,
            name,
        };
        matches!(view.authorize(user, &r), RbacDecision::Allow(_))
    };
    let wanted: Vec<PolicyRule> = match resource {
        "roles" | "clusterroles" => {
            if allowed("escalate", resource, &name) {
                return Ok(());
            }
            let aggregates = |v: Option<&Value>| {
                v.and_then(|v| v.get("aggregationRule"))
                    .is_some_and(|r| !r.is_null())
            };
            if resource == "clusterroles" && (aggregates(Some(new)) || aggregates(old)) {
                let everything: PolicyRule = serde_json::from_value(
                    serde_json::json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}),
                )
                .expect("a literal rule decodes");
                let mut url_rule = PolicyRule {
                    verbs: vec!["*".into()],
                    ..PolicyRule::default()
                };
                url_rule.non_resource_urls = Some(vec!["*".into()]);
                if no_escalation(view, user, namespace, &[everything, url_rule]).is_err() {
                    return Err(ApiError::forbidden(
                        gr,
                        &name,
                        "must have cluster-admin privileges to use an aggregationRule",
                    ));
                }
            }
            new.get("rules")
                .cloned()
                .and_then(|r| serde_json::from_value(r).ok())
                .unwrap_or_default()
        }
        _ => {
            let role_ref: RoleRef = new
                .get("roleRef")
                .cloned()
                .and_then(|r| serde_json::from_value(r).ok())
                .unwrap_or_default();
            let role_resource = if role_ref.kind == "ClusterRole" {
                "clusterroles"
            } else {
                "roles"
            };
            if allowed("bind", role_resource, &role_ref.name) {
                return Ok(());
            }
            view.role_rules(&role_ref, namespace)
                .map_err(|e| ApiError::forbidden(gr, &name, &e))?
        }
    };
    no_escalation(view, user, namespace, &wanted)
        .map_err(|why| ApiError::forbidden(gr, &name, &why))
}

/// Upstream `ConfirmNoEscalation`: the message naming every rule `wanted` grants that the
/// user does not hold in `namespace`.
fn no_escalation(
    view: &RbacView,
    user: &User,
    namespace: &str,
    wanted: &[PolicyRule],
) -> Result<(), String> {
    let (owned, errors) = view.rules_for(user, namespace);
    let missing = rules::uncovered(&owned, wanted);
    if missing.is_empty() {
        return Ok(());
    }
    let groups: Vec<String> = user.groups.iter().map(|g| format!("{g:?}")).collect();
    let mut msg = format!(
        "user {:?} (groups=[{}]) is attempting to grant RBAC permissions not currently held:\n{}",
        user.name,
        groups.join(" "),
        rules::rules_to_string(&missing)
    );
    if !errors.is_empty() {
        msg.push_str(&format!("; resolution errors: [{}]", errors.join(" ")));
    }
    Err(msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_role_granting_more_than_its_writer_holds_is_refused() {
        let view = Arc::new(RbacView::from_objects(&[
            json!({"kind": "Role", "metadata": {"name": "pod-admin", "namespace": "dev"},
                "rules": [{"verbs": ["get", "create"], "apiGroups": [""], "resources": ["pods"]},
                          {"verbs": ["get", "create", "update"], "apiGroups": [GROUP], "resources": ["roles", "rolebindings"]}]}),
            json!({"kind": "RoleBinding", "metadata": {"name": "alice", "namespace": "dev"},
                "roleRef": {"apiGroup": GROUP, "kind": "Role", "name": "pod-admin"},
                "subjects": [{"kind": "User", "apiGroup": GROUP, "name": "alice"}]}),
        ]));
        let alice = User {
            name: "alice".into(),
            groups: vec!["dev".into(), "system:authenticated".into()],
            ..User::default()
        };
        let admit = admit(view.clone(), &alice, "roles", "dev").expect("checked");
        let ok = json!({"metadata": {"name": "r", "namespace": "dev"},
            "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}]});
        assert!((admit.0)(&ok, None).is_ok());
        let more = json!({"metadata": {"name": "r", "namespace": "dev"},
            "rules": [{"verbs": ["get", "delete"], "apiGroups": [""], "resources": ["pods", "secrets"]}]});
        let err = (admit.0)(&more, None).expect_err("escalation");
        assert_eq!(err.code, 403);
        assert_eq!(
            err.message,
            "roles.rbac.authorization.k8s.io \"r\" is forbidden: user \"alice\" (groups=[\"dev\" \"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"delete\"]}\n{APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"get\" \"delete\"]}"
        );
        // Alice holds every rule of pod-admin, so she may bind it.
        let binding_admit = admit_binding_to(&view, &alice);
        assert!(binding_admit.is_ok());
        let admin = User {
            name: "root".into(),
            groups: vec![MASTERS.into()],
            ..User::default()
        };
        assert!(super::admit(view, &admin, "roles", "dev").is_none());
    }

    #[test]
    fn owner_references_and_finalizers_alone_are_not_checked() {
        let old = json!({"metadata": {"name": "r", "labels": {"a": "b"}},
            "rules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]});
        let mut new = old.clone();
        new["metadata"]["finalizers"] = json!(["foregroundDeletion"]);
        new["metadata"]["ownerReferences"] = json!([{"uid": "u"}]);
        assert!(only_gc_fields_differ(&new, &old));
        new["metadata"]["labels"]["a"] = json!("c");
        assert!(!only_gc_fields_differ(&new, &old));
        let mut ruled = old.clone();
        ruled["rules"] = json!([]);
        assert!(!only_gc_fields_differ(&ruled, &old));
        let nobody = User {
            name: "gc".into(),
            groups: vec![],
            ..User::default()
        };
        let view = Arc::new(RbacView::default());
        let admit = admit(view, &nobody, "clusterroles", "").expect("checked");
        assert!((admit.0)(&new_with_finalizer(&old), Some(&old)).is_ok());
        assert_eq!((admit.0)(&old, None).expect_err("escalation").code, 403);
    }

    fn new_with_finalizer(old: &serde_json::Value) -> serde_json::Value {
        let mut new = old.clone();
        new["metadata"]["finalizers"] = json!(["orphan"]);
        new
    }

    fn admit_binding_to(view: &Arc<RbacView>, user: &User) -> Result<(), ApiError> {
        let admit = admit(view.clone(), user, "rolebindings", "dev").expect("checked");
        let binding = json!({"metadata": {"name": "b", "namespace": "dev"},
            "roleRef": {"apiGroup": GROUP, "kind": "Role", "name": "pod-admin"}});
        (admit.0)(&binding, None)
    }
}
