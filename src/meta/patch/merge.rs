//! JSON merge patch (RFC 7386, `application/merge-patch+json`): `null` deletes, objects merge,
//! anything else replaces.

use super::*;

/// RFC 7386. The body must be an object (upstream rejects `null` and scalars as an invalid
/// patch, and a top-level array could never decode as an object). Nulls inside values that are
/// added rather than merged are dropped, as `evanphx/json-patch` prunes them.
pub(super) fn apply_merge_patch(original: &Value, patch: Value) -> Result<Value, PatchError> {
    let Value::Object(patch) = patch else {
        return Err(PatchError::MalformedBody(format!(
            "invalid JSON patch: a merge patch must be a JSON object, not {}",
            json_type(&patch)
        )));
    };
    let mut target = match original {
        Value::Object(members) => members.clone(),
        _ => Object::new(),
    };
    merge_patch_object(&mut target, patch);
    Ok(Value::Object(target))
}

pub(super) fn merge_patch_object(target: &mut Object, patch: Object) {
    for (key, value) in patch {
        match value {
            Value::Null => {
                target.shift_remove(&key);
            }
            Value::Object(inner) => match target.get_mut(&key) {
                Some(Value::Object(existing)) => merge_patch_object(existing, inner),
                _ => {
                    let mut fresh = Object::new();
                    merge_patch_object(&mut fresh, inner);
                    target.insert(key, Value::Object(fresh));
                }
            },
            other => {
                target.insert(key, without_null_members(other));
            }
        }
    }
}

/// Drops `null` members of objects anywhere inside `value`; `null` elements of arrays stay,
/// as upstream's pruning keeps them.
pub(super) fn without_null_members(value: Value) -> Value {
    match value {
        Value::Object(members) => Value::Object(
            members
                .into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, without_null_members(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(without_null_members).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::patch::tests::*;

    // --- JSON merge patch ----------------------------------------------------------------------

    #[test]
    fn merge_patch_follows_rfc_7386() {
        let original = json!({
            "metadata": {"labels": {"a": "1", "b": "2"}},
            "spec": {"containers": [{"name": "x"}, {"name": "y"}], "replicas": 1}
        });
        let cases: Vec<(&str, Value, Value)> = vec![
            (
                "null deletes a key",
                json!({"metadata": {"labels": {"a": null}}}),
                json!({"metadata": {"labels": {"b": "2"}}, "spec": {"containers": [{"name": "x"}, {"name": "y"}], "replicas": 1}}),
            ),
            (
                "lists are replaced, not merged",
                json!({"spec": {"containers": [{"name": "z"}]}}),
                json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"containers": [{"name": "z"}], "replicas": 1}}),
            ),
            (
                "objects merge recursively and scalars replace",
                json!({"spec": {"replicas": 3, "paused": true}}),
                json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"containers": [{"name": "x"}, {"name": "y"}], "replicas": 3, "paused": true}}),
            ),
            (
                "nulls inside added values are dropped",
                json!({"status": {"phase": "Running", "reason": null}, "spec": {"replicas": {"x": null}}}),
                json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"containers": [{"name": "x"}, {"name": "y"}], "replicas": {}}, "status": {"phase": "Running"}}),
            ),
            (
                "strategic directives mean nothing here",
                json!({"spec": {"$patch": "delete"}}),
                json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"containers": [{"name": "x"}, {"name": "y"}], "replicas": 1, "$patch": "delete"}}),
            ),
        ];
        for (name, patch, want) in cases {
            assert_eq!(
                patched(
                    PatchType::Merge,
                    &PatchSchema::new(),
                    original.clone(),
                    patch
                ),
                want,
                "{name}"
            );
        }
    }

    #[test]
    fn merge_patch_that_is_not_an_object_is_an_error() {
        for body in ["null", "[1]", "true"] {
            let err = apply_patch(
                &pod(),
                body.as_bytes(),
                PatchType::Merge,
                &PatchSchema::new(),
            )
            .expect_err("only objects are merge patches");
            assert!(
                matches!(err, PatchError::MalformedBody(_)),
                "{body}: {err:?}"
            );
        }
    }
}
