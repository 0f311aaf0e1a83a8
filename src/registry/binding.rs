//! The `pods/binding` subresource: assigns a Pod to a node (upstream `BindingREST` in
//! `pkg/registry/core/pod/storage/storage.go`).
//!
//! Both `POST .../pods/<name>/binding` and the legacy `POST .../namespaces/<ns>/bindings`
//! end here; the HTTP layer only decodes the body and encodes the `Status` this returns.

use serde_json::{json, Value};

use super::{pods, Store};
use crate::meta::{object, status, ApiError, Cause, GroupResource};

const BINDING: GroupResource<'static> = GroupResource {
    group: "",
    resource: "pods/binding",
};

/// Binds the Pod `namespace/name` to the node the `Binding` in `body` names, with the
/// Binding's UID (when it has one) as a precondition on the Pod. Returns the 201 `Status`
/// upstream answers a binding with.
pub async fn create(
    pods_store: &Store,
    namespace: &str,
    name: &str,
    body: &Value,
    dry_run: bool,
) -> Result<Value, ApiError> {
    let given = object::name(body);
    if !given.is_empty() && given != name {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({given}) does not match the name on the URL ({name})"
        )));
    }
    let node = validate(body, name)?;
    let annotations = body.pointer("/metadata/annotations").cloned();
    let uid = body
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .map(str::to_string);
    pods_store
        .update_with(namespace, name, "binding", dry_run, &mut |pod| {
            check_uid(uid.as_deref(), pod, name)?;
            pods::bind(pod, &node, annotations.as_ref())
        })
        .await?;
    let mut ok = status::success_status(BINDING, name, "");
    ok["code"] = json!(201);
    Ok(ok)
}

/// The Binding's own rules: a target node is required, and only a Node can be a target.
/// Returns the target node's name.
fn validate(body: &Value, name: &str) -> Result<String, ApiError> {
    let node = body
        .pointer("/target/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    if node.is_empty() {
        return Err(ApiError::invalid(
            "Binding",
            BINDING,
            name,
            vec![Cause {
                reason: "FieldValueRequired".into(),
                message: "Required value".into(),
                field: "target.name".into(),
            }],
        ));
    }
    let kind = body
        .pointer("/target/kind")
        .and_then(Value::as_str)
        .unwrap_or("Node");
    if !kind.is_empty() && kind != "Node" {
        return Err(ApiError::invalid(
            "Binding",
            BINDING,
            name,
            vec![Cause {
                reason: "FieldValueNotSupported".into(),
                message: format!("Unsupported value: {kind:?}: supported values: \"Node\""),
                field: "target.kind".into(),
            }],
        ));
    }
    Ok(node.to_string())
}

/// A Binding naming a UID binds only the Pod with that UID (a Pod deleted and made again
/// under the same name is another Pod): 409 otherwise, with upstream's precondition wording.
fn check_uid(uid: Option<&str>, pod: &Value, name: &str) -> Result<(), ApiError> {
    match uid {
        Some(uid) if uid != object::uid(pod) => Err(ApiError::conflict(
            BINDING,
            name,
            &format!(
                "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                object::uid(pod)
            ),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binding_requires_a_target_node() {
        let err = validate(&json!({"target": {}}), "db").expect_err("no target");
        assert_eq!(err.code, 422);
        assert_eq!(err.details.causes[0].field, "target.name");
        assert_eq!(err.details.causes[0].reason, "FieldValueRequired");
    }

    #[test]
    fn binding_targets_only_nodes() {
        let body = json!({"target": {"kind": "Pod", "name": "n1"}});
        let err = validate(&body, "db").expect_err("not a node");
        assert_eq!(err.code, 422);
        assert_eq!(
            err.details.causes[0].message,
            "Unsupported value: \"Pod\": supported values: \"Node\""
        );
        let node = validate(&json!({"target": {"name": "n1"}}), "db").expect("a node");
        assert_eq!(node, "n1");
    }

    #[test]
    fn binding_fails_if_uid_precondition_does_not_match() {
        let pod = json!({"metadata": {"name": "db", "uid": "u2"}});
        let err = check_uid(Some("u1"), &pod, "db").expect_err("another pod");
        assert_eq!(err.code, 409);
        assert_eq!(
            err.message,
            "Operation cannot be fulfilled on pods/binding \"db\": Precondition failed: UID in precondition: u1, UID in object meta: u2"
        );
        check_uid(Some("u2"), &pod, "db").expect("same pod");
        check_uid(None, &pod, "db").expect("no precondition");
    }
}
