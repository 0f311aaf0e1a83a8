//! The comparison of two versions of an object by its structural schema: which field paths
//! the newer one added, modified and removed (upstream structured-merge-diff's
//! `TypedValue.Compare`), the input of managed fields on every write.

use serde_json::{Map, Value};

use super::set::{FieldSet, Path, PathElement};
use crate::meta::patch::{ListType, SchemaNode};

/// What changed between two objects, as sets of paths.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Comparison {
    pub added: FieldSet,
    pub modified: FieldSet,
    pub removed: FieldSet,
}

/// Compares `old` with `new`, walking both by `schema`.
pub fn compare(old: &Value, new: &Value, schema: SchemaNode<'_>) -> Comparison {
    let mut out = Comparison::default();
    walk(Some(old), Some(new), schema, &mut Vec::new(), &mut out);
    out
}

fn empty_or_null(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::Object(m)) => m.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(_) => false,
    }
}

fn as_map(v: Option<&Value>) -> Option<Option<&Map<String, Value>>> {
    match v {
        None | Some(Value::Null) => Some(None),
        Some(Value::Object(m)) => Some(Some(m)),
        Some(_) => None,
    }
}

fn as_list(v: Option<&Value>) -> Option<Option<&Vec<Value>>> {
    match v {
        None | Some(Value::Null) => Some(None),
        Some(Value::Array(a)) => Some(Some(a)),
        Some(_) => None,
    }
}

fn walk(
    lhs: Option<&Value>,
    rhs: Option<&Value>,
    schema: SchemaNode<'_>,
    path: &mut Path,
    out: &mut Comparison,
) {
    let is_map = matches!(lhs, Some(Value::Object(_))) || matches!(rhs, Some(Value::Object(_)));
    let is_list = matches!(lhs, Some(Value::Array(_))) || matches!(rhs, Some(Value::Array(_)));
    let descended = match (as_map(lhs), as_map(rhs), as_list(lhs), as_list(rhs)) {
        (Some(l), Some(r), _, _) if is_map => {
            if schema.is_atomic_map() || (empty_or_null(lhs) && empty_or_null(rhs)) {
                false
            } else {
                walk_map(l, r, schema, path, out);
                true
            }
        }
        (_, _, Some(l), Some(r)) if is_list => {
            let list_type = schema.list_type();
            if list_type == ListType::Atomic || (empty_or_null(lhs) && empty_or_null(rhs)) {
                false
            } else {
                walk_list(l, r, &list_type, schema, path, out);
                true
            }
        }
        _ => false,
    };
    if !descended {
        leaf(lhs, rhs, path, out);
        return;
    }
    if lhs.is_none() {
        out.added.insert(path);
    } else if rhs.is_none() {
        out.removed.insert(path);
    }
}

fn leaf(lhs: Option<&Value>, rhs: Option<&Value>, path: &Path, out: &mut Comparison) {
    match (lhs, rhs) {
        (None, Some(_)) => out.added.insert(path),
        (Some(_), None) => out.removed.insert(path),
        (Some(l), Some(r)) if l != r => out.modified.insert(path),
        _ => {}
    }
}

fn walk_map(
    lhs: Option<&Map<String, Value>>,
    rhs: Option<&Map<String, Value>>,
    schema: SchemaNode<'_>,
    path: &mut Path,
    out: &mut Comparison,
) {
    let mut keys: Vec<&String> = lhs.map(|m| m.keys().collect()).unwrap_or_default();
    if let Some(r) = rhs {
        for k in r.keys() {
            if !lhs.is_some_and(|l| l.contains_key(k)) {
                keys.push(k);
            }
        }
    }
    for key in keys {
        path.push(PathElement::Field(key.clone()));
        walk(
            lhs.and_then(|m| m.get(key)),
            rhs.and_then(|m| m.get(key)),
            schema.child(key),
            path,
            out,
        );
        path.pop();
    }
}

/// The path element of an item of the list `schema` describes: its keys in an associative
/// list (a key the item leaves out takes its default, if it has one), itself in a set, its
/// position otherwise (an associative list whose item is not an object).
pub(super) fn item_element(
    list_type: &ListType,
    schema: SchemaNode<'_>,
    item: &Value,
    index: usize,
) -> PathElement {
    match (list_type, item) {
        (ListType::Map(keys), Value::Object(fields)) => {
            let mut filled = Map::new();
            for key in keys {
                let value = fields
                    .get(key)
                    .or_else(|| schema.child(key).default_value());
                if let Some(value) = value {
                    filled.insert(key.clone(), value.clone());
                }
            }
            PathElement::key(&filled, keys)
        }
        (ListType::Set, v) => PathElement::value(v),
        _ => PathElement::Index(index),
    }
}

/// Items grouped by path element, in first-seen order; duplicates stay together.
fn index_items<'v>(
    list: Option<&'v Vec<Value>>,
    list_type: &ListType,
    schema: SchemaNode<'_>,
) -> Vec<(PathElement, Vec<&'v Value>)> {
    let mut out: Vec<(PathElement, Vec<&'v Value>)> = Vec::new();
    for (i, item) in list.into_iter().flatten().enumerate() {
        let pe = item_element(list_type, schema, item, i);
        match out.iter_mut().find(|(seen, _)| *seen == pe) {
            Some((_, items)) => items.push(item),
            None => out.push((pe, vec![item])),
        }
    }
    out
}

fn walk_list(
    lhs: Option<&Vec<Value>>,
    rhs: Option<&Vec<Value>>,
    list_type: &ListType,
    schema: SchemaNode<'_>,
    path: &mut Path,
    out: &mut Comparison,
) {
    let left = index_items(lhs, list_type, schema);
    let right = index_items(rhs, list_type, schema);
    let mut elements: Vec<&PathElement> = left.iter().map(|(pe, _)| pe).collect();
    for (pe, _) in &right {
        if !left.iter().any(|(l, _)| l == pe) {
            elements.push(pe);
        }
    }
    let find = |side: &[(PathElement, Vec<&'_ Value>)], pe: &PathElement| -> Vec<Value> {
        side.iter()
            .find(|(p, _)| p == pe)
            .map(|(_, items)| items.iter().map(|v| (*v).clone()).collect())
            .unwrap_or_default()
    };
    for pe in elements {
        let l = find(&left, pe);
        let r = find(&right, pe);
        path.push(pe.clone());
        // Duplicated items (which an associative list should not have) are compared as one
        // value, as upstream does.
        match (l.len(), r.len()) {
            (0..=1, 0..=1) => walk(l.first(), r.first(), schema, path, out),
            (2.., 2..) => {
                if l != r {
                    out.modified.insert(path);
                }
            }
            (2.., _) => {
                if let Some(first) = r.first() {
                    walk(None, Some(first), schema, path, out);
                }
                out.removed.insert(path);
            }
            (_, 2..) => {
                if let Some(first) = l.first() {
                    walk(Some(first), None, schema, path, out);
                }
                out.added.insert(path);
            }
        }
        path.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::patch::PatchSchema;
    use serde_json::json;

    fn schema() -> PatchSchema {
        PatchSchema::new()
            .merge_primitive_list("metadata.finalizers")
            .merge_list("spec.containers", "name")
            .merge_list("spec.containers.ports", "containerPort")
            .list_map_keys("spec.containers.ports", &["containerPort", "protocol"])
            .atomic("spec.nodeSelector")
    }

    fn fields(set: &FieldSet) -> Value {
        set.to_fields_v1()
    }

    #[test]
    fn comparisons_follow_the_schema() {
        // (old, new, added, modified, removed)
        let cases = [
            (
                json!({"metadata": {"creationTimestamp": null}, "spec": {"containers": null}}),
                json!({"metadata": {"labels": {"app": "a"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}),
                json!({"f:metadata": {"f:labels": {".": {}, "f:app": {}}}, "f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {".": {}, "f:image": {}, "f:name": {}}}}}),
                json!({}),
                json!({"f:metadata": {"f:creationTimestamp": {}}}),
            ),
            (
                json!({"metadata": {"labels": {"app": "a"}}}),
                json!({"metadata": {"labels": {"app": "b", "tier": "t"}}}),
                json!({"f:metadata": {"f:labels": {"f:tier": {}}}}),
                json!({"f:metadata": {"f:labels": {"f:app": {}}}}),
                json!({}),
            ),
            (
                json!({"metadata": {"finalizers": ["a", "b"]}}),
                json!({"metadata": {"finalizers": ["b", "c"]}}),
                json!({"f:metadata": {"f:finalizers": {"v:\"c\"": {}}}}),
                json!({}),
                json!({"f:metadata": {"f:finalizers": {"v:\"a\"": {}}}}),
            ),
            (
                json!({"spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80, "protocol": "TCP"}]}]}}),
                json!({"spec": {"containers": [{"name": "c", "ports": [{"containerPort": 80, "protocol": "UDP"}]}]}}),
                json!({"f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {"f:ports": {"k:{\"containerPort\":80,\"protocol\":\"UDP\"}": {".": {}, "f:containerPort": {}, "f:protocol": {}}}}}}}),
                json!({}),
                json!({"f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {"f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}, "f:protocol": {}}}}}}}),
            ),
            (
                json!({"spec": {"nodeSelector": {"a": "1"}, "tolerations": [{"key": "a"}]}}),
                json!({"spec": {"nodeSelector": {"a": "2"}, "tolerations": [{"key": "b"}]}}),
                json!({}),
                json!({"f:spec": {"f:nodeSelector": {}, "f:tolerations": {}}}),
                json!({}),
            ),
            (
                json!({"spec": {"resources": {}}}),
                json!({"spec": {"resources": {}, "securityContext": {}}}),
                json!({"f:spec": {"f:securityContext": {}}}),
                json!({}),
                json!({}),
            ),
        ];
        let schema = schema();
        for (i, (old, new, added, modified, removed)) in cases.into_iter().enumerate() {
            let c = compare(&old, &new, schema.root());
            assert_eq!(fields(&c.added), added, "case {i}: added");
            assert_eq!(fields(&c.modified), modified, "case {i}: modified");
            assert_eq!(fields(&c.removed), removed, "case {i}: removed");
        }
    }

    #[test]
    fn duplicated_set_items_compare_as_one_value() {
        let old = json!({"metadata": {"finalizers": ["a", "a"]}});
        let new = json!({"metadata": {"finalizers": ["a", "a", "a"]}});
        let c = compare(&old, &new, schema().root());
        assert_eq!(
            fields(&c.modified),
            json!({"f:metadata": {"f:finalizers": {"v:\"a\"": {}}}})
        );
    }
}
