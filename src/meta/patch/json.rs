//! JSON patch (RFC 6902, `application/json-patch+json`): an operation list applied as
//! `gopkg.in/evanphx/json-patch.v4` does, with upstream's operation and copy limits.

use super::*;

/// RFC 6902, with the apiserver's limits: at most [`MAX_JSON_PATCH_OPERATIONS`] operations and
/// [`MAX_JSON_PATCH_COPY_BYTES`] added by `copy`. Operations apply in order to a copy of the
/// original; the first that fails fails the whole patch.
pub(super) fn apply_json_patch(original: &Value, patch: Value) -> Result<Value, PatchError> {
    let Value::Array(operations) = patch else {
        return Err(PatchError::MalformedBody(format!(
            "invalid JSON patch: expected an array of operations, not {}",
            json_type(&patch)
        )));
    };
    if operations.len() > MAX_JSON_PATCH_OPERATIONS {
        return Err(PatchError::TooManyOperations {
            limit: MAX_JSON_PATCH_OPERATIONS,
            got: operations.len(),
        });
    }
    let mut doc = original.clone();
    let mut copied_bytes = 0usize;
    for (index, operation) in operations.into_iter().enumerate() {
        let Value::Object(operation) = operation else {
            return Err(PatchError::MalformedBody(format!(
                "invalid JSON patch: operation {index} is {}, not an object",
                json_type(&operation)
            )));
        };
        apply_operation(&mut doc, operation, &mut copied_bytes)?;
    }
    Ok(doc)
}

pub(super) fn op_failed(message: String) -> PatchError {
    PatchError::OperationFailed(message)
}

pub(super) fn pointer_field(
    op: &Object,
    name: &str,
    kind: &str,
) -> Result<Vec<String>, PatchError> {
    match op.get(name) {
        Some(Value::String(pointer)) => parse_pointer(pointer)
            .map_err(|e| op_failed(format!("{kind} operation has an invalid {name}: {e}"))),
        Some(other) => Err(op_failed(format!(
            "{kind} operation has a {} {name}, expected a string",
            json_type(other)
        ))),
        None => Err(op_failed(format!("{kind} operation missing {name} field"))),
    }
}

pub(super) fn apply_operation(
    doc: &mut Value,
    mut op: Object,
    copied_bytes: &mut usize,
) -> Result<(), PatchError> {
    let kind = match op.get("op") {
        Some(Value::String(kind)) => kind.clone(),
        _ => "unknown".to_string(),
    };
    let path_text = op
        .get("path")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    match kind.as_str() {
        "add" => {
            let path = pointer_field(&op, "path", &kind)?;
            let value = take_value(&mut op, &kind)?;
            pointer_add(doc, &path, value).map_err(|e| {
                op_failed(format!(
                    "add operation does not apply: doc is missing path: \"{path_text}\": {e}"
                ))
            })
        }
        "remove" => {
            let path = pointer_field(&op, "path", &kind)?;
            pointer_remove(doc, &path).map(drop).map_err(|e| {
                op_failed(format!(
                    "remove operation does not apply: doc is missing path: \"{path_text}\": {e}"
                ))
            })
        }
        "replace" => {
            let path = pointer_field(&op, "path", &kind)?;
            let value = take_value(&mut op, &kind)?;
            match pointer_get_mut(doc, &path) {
                Some(slot) => {
                    *slot = value;
                    Ok(())
                }
                None => Err(op_failed(format!(
                    "replace operation does not apply: doc is missing key: {path_text}: missing value"
                ))),
            }
        }
        "move" => {
            let from = pointer_field(&op, "from", &kind)?;
            let path = pointer_field(&op, "path", &kind)?;
            if path.len() > from.len() && path.starts_with(&from) {
                return Err(op_failed(format!(
                    "move operation does not apply: from path is a parent of path \"{path_text}\""
                )));
            }
            let value = pointer_remove(doc, &from).map_err(|e| {
                op_failed(format!(
                    "move operation does not apply: doc is missing from path: {}: {e}",
                    op.get("from").and_then(Value::as_str).unwrap_or_default()
                ))
            })?;
            pointer_add(doc, &path, value).map_err(|e| {
                op_failed(format!(
                    "move operation does not apply: doc is missing destination path: {path_text}: {e}"
                ))
            })
        }
        "copy" => {
            let from = pointer_field(&op, "from", &kind)?;
            let path = pointer_field(&op, "path", &kind)?;
            let value = pointer_get(doc, &from).ok_or_else(|| {
                op_failed(format!(
                    "copy operation does not apply: doc is missing from path: {}: missing value",
                    op.get("from").and_then(Value::as_str).unwrap_or_default()
                ))
            })?;
            charge_copy(value, copied_bytes)?;
            let value = value.clone();
            pointer_add(doc, &path, value).map_err(|e| {
                op_failed(format!(
                    "copy operation does not apply: doc is missing destination path: {path_text}: {e}"
                ))
            })
        }
        "test" => {
            let path = pointer_field(&op, "path", &kind)?;
            let expected = take_value(&mut op, &kind)?;
            match pointer_get(doc, &path) {
                Some(actual) if json_equal(actual, &expected) => Ok(()),
                Some(_) => Err(op_failed(format!(
                    "testing value {path_text} failed: test failed"
                ))),
                None => Err(op_failed(format!(
                    "test operation does not apply: is missing path: {path_text}: missing value"
                ))),
            }
        }
        other => Err(op_failed(format!("unexpected kind: {other}"))),
    }
}

pub(super) fn take_value(op: &mut Object, kind: &str) -> Result<Value, PatchError> {
    op.shift_remove("value")
        .ok_or_else(|| op_failed(format!("{kind} operation missing value field")))
}

/// Adds the serialized size of `value` to the patch's copy total, failing once the total
/// passes [`MAX_JSON_PATCH_COPY_BYTES`]. Serialization stops as soon as the budget is spent,
/// so a huge value costs no more than the budget to measure.
pub(super) fn charge_copy(value: &Value, copied_bytes: &mut usize) -> Result<(), PatchError> {
    struct Meter {
        written: usize,
        budget: usize,
    }
    impl io::Write for Meter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.written = self.written.saturating_add(buf.len());
            if self.written > self.budget {
                Err(io::Error::other("copy budget spent"))
            } else {
                Ok(buf.len())
            }
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut meter = Meter {
        written: 0,
        budget: MAX_JSON_PATCH_COPY_BYTES.saturating_sub(*copied_bytes),
    };
    let fits = serde_json::to_writer(&mut meter, value).is_ok();
    *copied_bytes = copied_bytes.saturating_add(meter.written);
    if fits {
        Ok(())
    } else {
        Err(PatchError::CopyLimitExceeded {
            accumulated: *copied_bytes,
            limit: MAX_JSON_PATCH_COPY_BYTES,
        })
    }
}

/// Splits an RFC 6901 pointer into unescaped reference tokens (`~1` is `/`, `~0` is `~`).
pub(super) fn parse_pointer(pointer: &str) -> Result<Vec<String>, String> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err(format!("JSON pointer {pointer:?} does not start with '/'"));
    };
    rest.split('/')
        .map(|token| {
            let mut out = String::with_capacity(token.len());
            let mut chars = token.chars();
            while let Some(c) = chars.next() {
                if c != '~' {
                    out.push(c);
                    continue;
                }
                match chars.next() {
                    Some('0') => out.push('~'),
                    Some('1') => out.push('/'),
                    _ => {
                        return Err(format!(
                            "JSON pointer {pointer:?} has an invalid '~' escape"
                        ))
                    }
                }
            }
            Ok(out)
        })
        .collect()
}

/// An RFC 6901 array index: `0` or digits without a leading zero.
pub(super) fn array_index(token: &str) -> Option<usize> {
    let digits_only = !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit());
    if !digits_only || (token.len() > 1 && token.starts_with('0')) {
        return None;
    }
    token.parse().ok()
}

pub(super) fn pointer_get<'a>(doc: &'a Value, tokens: &[String]) -> Option<&'a Value> {
    tokens.iter().try_fold(doc, |node, token| match node {
        Value::Object(members) => members.get(token),
        Value::Array(items) => items.get(array_index(token)?),
        _ => None,
    })
}

pub(super) fn pointer_get_mut<'a>(doc: &'a mut Value, tokens: &[String]) -> Option<&'a mut Value> {
    tokens.iter().try_fold(doc, |node, token| match node {
        Value::Object(members) => members.get_mut(token),
        Value::Array(items) => items.get_mut(array_index(token)?),
        _ => None,
    })
}

/// RFC 6902 `add`: sets an object member, inserts before an array index (`-` or the length
/// appends), or with the empty pointer replaces the whole document.
pub(super) fn pointer_add(doc: &mut Value, tokens: &[String], value: Value) -> Result<(), String> {
    let Some((last, parent_path)) = tokens.split_last() else {
        *doc = value;
        return Ok(());
    };
    match pointer_get_mut(doc, parent_path) {
        Some(Value::Object(members)) => {
            members.insert(last.clone(), value);
            Ok(())
        }
        Some(Value::Array(items)) => {
            if last == "-" {
                items.push(value);
                return Ok(());
            }
            match array_index(last) {
                Some(index) if index <= items.len() => {
                    items.insert(index, value);
                    Ok(())
                }
                _ => Err(format!("invalid index referenced: {last}")),
            }
        }
        Some(_) | None => Err("missing value".to_string()),
    }
}

/// RFC 6902 `remove`, returning what was removed (for `move`). Removing the whole document is
/// not possible.
pub(super) fn pointer_remove(doc: &mut Value, tokens: &[String]) -> Result<Value, String> {
    let Some((last, parent_path)) = tokens.split_last() else {
        return Err("the whole document cannot be removed".to_string());
    };
    match pointer_get_mut(doc, parent_path) {
        Some(Value::Object(members)) => members
            .shift_remove(last)
            .ok_or_else(|| format!("unable to remove nonexistent key: {last}: missing value")),
        Some(Value::Array(items)) => match array_index(last) {
            Some(index) if index < items.len() => Ok(items.remove(index)),
            _ => Err(format!("invalid index referenced: {last}")),
        },
        Some(_) | None => Err("missing value".to_string()),
    }
}

/// JSON equality for `test`: numbers compare by value (`1` equals `1.0`, as Go's decoder makes
/// both float64 upstream), objects regardless of member order.
pub(super) fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
                x == y
            } else if let (Some(x), Some(y)) = (x.as_u64(), y.as_u64()) {
                x == y
            } else {
                x.as_f64() == y.as_f64()
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_equal(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::patch::tests::*;

    // --- JSON patch ------------------------------------------------------------------------------

    #[test]
    fn json_patch_operations_follow_rfc_6902() {
        let original = json!({
            "metadata": {"name": "p", "annotations": {"a/b": "1", "c~d": "2"}},
            "spec": {"list": [1, 2, 3]}
        });
        let cases: Vec<(&str, Value, Value)> = vec![
            (
                "add a member",
                json!([{"op": "add", "path": "/metadata/labels", "value": {"x": "y"}}]),
                json!({"metadata": {"name": "p", "annotations": {"a/b": "1", "c~d": "2"}, "labels": {"x": "y"}}, "spec": {"list": [1, 2, 3]}}),
            ),
            (
                "add inserts before an index",
                json!([{"op": "add", "path": "/spec/list/1", "value": 9}]),
                json!({"metadata": {"name": "p", "annotations": {"a/b": "1", "c~d": "2"}}, "spec": {"list": [1, 9, 2, 3]}}),
            ),
            (
                "add with - appends",
                json!([{"op": "add", "path": "/spec/list/-", "value": 4}]),
                json!({"metadata": {"name": "p", "annotations": {"a/b": "1", "c~d": "2"}}, "spec": {"list": [1, 2, 3, 4]}}),
            ),
            (
                "add at the length appends",
                json!([{"op": "add", "path": "/spec/list/3", "value": 4}]),
                json!({"metadata": {"name": "p", "annotations": {"a/b": "1", "c~d": "2"}}, "spec": {"list": [1, 2, 3, 4]}}),
            ),
            (
                "remove with ~1 and ~0 escapes",
                json!([
                    {"op": "remove", "path": "/metadata/annotations/a~1b"},
                    {"op": "remove", "path": "/metadata/annotations/c~0d"}
                ]),
                json!({"metadata": {"name": "p", "annotations": {}}, "spec": {"list": [1, 2, 3]}}),
            ),
            (
                "remove an array element",
                json!([{"op": "remove", "path": "/spec/list/0"}]),
                json!({"metadata": {"name": "p", "annotations": {"a/b": "1", "c~d": "2"}}, "spec": {"list": [2, 3]}}),
            ),
            (
                "replace a value",
                json!([{"op": "replace", "path": "/metadata/name", "value": "q"}]),
                json!({"metadata": {"name": "q", "annotations": {"a/b": "1", "c~d": "2"}}, "spec": {"list": [1, 2, 3]}}),
            ),
            (
                "move a value",
                json!([{"op": "move", "from": "/spec/list", "path": "/spec/items"}]),
                json!({"metadata": {"name": "p", "annotations": {"a/b": "1", "c~d": "2"}}, "spec": {"items": [1, 2, 3]}}),
            ),
            (
                "copy a value",
                json!([{"op": "copy", "from": "/spec/list/2", "path": "/spec/list/0"}]),
                json!({"metadata": {"name": "p", "annotations": {"a/b": "1", "c~d": "2"}}, "spec": {"list": [3, 1, 2, 3]}}),
            ),
            (
                "passing tests change nothing, numbers compare by value",
                json!([
                    {"op": "test", "path": "/metadata/name", "value": "p"},
                    {"op": "test", "path": "/spec/list/0", "value": 1.0},
                    {"op": "test", "path": "/metadata/annotations", "value": {"c~d": "2", "a/b": "1"}}
                ]),
                original.clone(),
            ),
            (
                "test then replace, the optimistic-concurrency idiom",
                json!([
                    {"op": "test", "path": "/metadata/name", "value": "p"},
                    {"op": "replace", "path": "/spec/list", "value": []}
                ]),
                json!({"metadata": {"name": "p", "annotations": {"a/b": "1", "c~d": "2"}}, "spec": {"list": []}}),
            ),
            (
                "an empty patch changes nothing",
                json!([]),
                original.clone(),
            ),
        ];
        for (name, patch, want) in cases {
            assert_eq!(
                patched(
                    PatchType::Json,
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
    fn json_patch_failures_are_errors() {
        let original = json!({"metadata": {"name": "p"}, "spec": {"list": [1, 2]}});
        let cases: Vec<(&str, &str, &str)> = vec![
            (
                "failed test",
                r#"[{"op":"test","path":"/metadata/name","value":"q"}]"#,
                "testing value /metadata/name failed: test failed",
            ),
            (
                "test of a missing path",
                r#"[{"op":"test","path":"/metadata/uid","value":"q"}]"#,
                "missing path",
            ),
            (
                "remove a missing member",
                r#"[{"op":"remove","path":"/metadata/labels"}]"#,
                "unable to remove nonexistent key",
            ),
            (
                "remove past the end",
                r#"[{"op":"remove","path":"/spec/list/2"}]"#,
                "invalid index",
            ),
            (
                "replace a missing member",
                r#"[{"op":"replace","path":"/spec/replicas","value":1}]"#,
                "missing key",
            ),
            (
                "add under a missing parent",
                r#"[{"op":"add","path":"/status/phase","value":"x"}]"#,
                "missing path",
            ),
            (
                "add past the end",
                r#"[{"op":"add","path":"/spec/list/5","value":1}]"#,
                "invalid index",
            ),
            (
                "index with a leading zero",
                r#"[{"op":"replace","path":"/spec/list/01","value":1}]"#,
                "missing key",
            ),
            (
                "move from a missing path",
                r#"[{"op":"move","from":"/nope","path":"/x"}]"#,
                "missing from path",
            ),
            (
                "move into its own child",
                r#"[{"op":"move","from":"/spec","path":"/spec/x"}]"#,
                "parent",
            ),
            (
                "copy from a missing path",
                r#"[{"op":"copy","from":"/nope","path":"/x"}]"#,
                "missing from path",
            ),
            (
                "unknown operation",
                r#"[{"op":"frobnicate","path":"/x"}]"#,
                "unexpected kind: frobnicate",
            ),
            (
                "missing op",
                r#"[{"path":"/x"}]"#,
                "unexpected kind: unknown",
            ),
            (
                "missing value",
                r#"[{"op":"add","path":"/x"}]"#,
                "missing value field",
            ),
            (
                "bad pointer",
                r#"[{"op":"add","path":"x","value":1}]"#,
                "does not start with '/'",
            ),
            (
                "bad escape",
                r#"[{"op":"add","path":"/a~2","value":1}]"#,
                "invalid '~' escape",
            ),
        ];
        for (name, body, fragment) in cases {
            let err = apply_patch(
                &original,
                body.as_bytes(),
                PatchType::Json,
                &PatchSchema::new(),
            )
            .expect_err(name);
            assert!(
                matches!(err, PatchError::OperationFailed(_)),
                "{name}: {err:?}"
            );
            assert!(err.to_string().contains(fragment), "{name}: {err}");
            assert_eq!(err.status_code(), 422);
        }
    }

    #[test]
    fn json_patch_failure_leaves_nothing_applied() {
        let original = json!({"a": 1});
        let body = br#"[{"op":"add","path":"/b","value":2},{"op":"test","path":"/a","value":2}]"#;
        assert!(apply_patch(&original, body, PatchType::Json, &PatchSchema::new()).is_err());
        assert_eq!(original, json!({"a": 1}));
    }

    #[test]
    fn json_patch_body_must_be_an_operation_array() {
        for body in [r#"{"op":"add"}"#, "[1]", "null"] {
            let err = apply_patch(
                &pod(),
                body.as_bytes(),
                PatchType::Json,
                &PatchSchema::new(),
            )
            .expect_err(body);
            assert!(
                matches!(err, PatchError::MalformedBody(_)),
                "{body}: {err:?}"
            );
        }
    }

    #[test]
    fn json_patch_with_too_many_operations_is_refused() {
        let ops: Vec<Value> = (0..=MAX_JSON_PATCH_OPERATIONS)
            .map(|_| json!({"op": "test", "path": "", "value": {}}))
            .collect();
        let body = serde_json::to_vec(&ops).expect("a Value always serializes");
        let err = apply_patch(&json!({}), &body, PatchType::Json, &PatchSchema::new())
            .expect_err("too many operations");
        assert_eq!(
            err,
            PatchError::TooManyOperations {
                limit: MAX_JSON_PATCH_OPERATIONS,
                got: MAX_JSON_PATCH_OPERATIONS + 1
            }
        );
        assert_eq!(err.status_code(), 413);
    }

    #[test]
    fn json_patch_copies_that_grow_the_document_without_bound_are_refused() {
        // Each copy doubles /a; 30 doublings of a 1 KiB string would need a terabyte.
        let mut ops = Vec::new();
        for _ in 0..30 {
            ops.push(json!({"op": "copy", "from": "/a", "path": "/b"}));
            ops.push(json!({"op": "add", "path": "/a", "value": []}));
            ops.push(json!({"op": "add", "path": "/a/-", "value": null}));
            ops.push(json!({"op": "move", "from": "/b", "path": "/a/0"}));
            ops.push(json!({"op": "copy", "from": "/a/0", "path": "/a/1"}));
        }
        let body = serde_json::to_vec(&ops).expect("a Value always serializes");
        let original = json!({"a": "x".repeat(1024)});
        let err = apply_patch(&original, &body, PatchType::Json, &PatchSchema::new())
            .expect_err("copy budget");
        assert!(
            matches!(err, PatchError::CopyLimitExceeded { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn json_patch_at_the_root_replaces_the_document() {
        let out = patched(
            PatchType::Json,
            &PatchSchema::new(),
            json!({"a": 1}),
            json!([{"op": "replace", "path": "", "value": {"b": 2}}]),
        );
        assert_eq!(out, json!({"b": 2}));
    }
}
