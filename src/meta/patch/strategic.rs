//! Strategic merge patch (`application/strategic-merge-patch+json`, apimachinery
//! `util/strategicpatch`): lists merged by the [`PatchSchema`](super::PatchSchema)'s merge keys,
//! and the `$patch`, `$retainKeys`, `$setElementOrder` and `$deleteFromPrimitiveList` directives.

use super::*;

/// Applies a strategic merge patch the way `strategicpatch.StrategicMergeMapPatch` does on the
/// server (parallel lists merged, unmatched nulls ignored).
pub(super) fn apply_strategic_merge_patch(
    original: &Value,
    patch: Value,
    schema: &PatchSchema,
) -> Result<Value, PatchError> {
    let Value::Object(patch) = patch else {
        return Err(PatchError::MalformedBody(format!(
            "invalid patch: a strategic merge patch must be a JSON object, not {}",
            json_type(&patch)
        )));
    };
    let base = match original {
        Value::Object(members) => members.clone(),
        _ => Object::new(),
    };
    merge_map(base, patch, Some(&schema.root)).map(Value::Object)
}

pub(super) fn child<'a>(node: Option<&'a FieldNode>, field: &str) -> Option<&'a FieldNode> {
    node.and_then(|n| n.fields.get(field))
}

pub(super) fn strategy_of(node: Option<&FieldNode>) -> &ListStrategy {
    const ATOMIC: &ListStrategy = &ListStrategy::Atomic;
    node.map_or(ATOMIC, |n| &n.list)
}

/// The field a `$setElementOrder/<field>` or `$deleteFromPrimitiveList/<field>` key names:
/// whatever follows the first `/`, provided what precedes it is exactly the prefix.
pub(super) fn directive_target<'a>(key: &'a str, prefix: &str) -> Option<&'a str> {
    key.split_once('/')
        .and_then(|(head, field)| (head == prefix).then_some(field))
}

/// A map as Go's `%v` prints a `map[string]interface{}` in upstream's error messages:
/// `map[k1:v1 k2:v2]`, keys sorted.
pub(super) fn map_json(map: &Object) -> String {
    go_value(&Value::Object(map.clone()))
}

/// A list as Go's `%v` prints a `[]interface{}`: `[a b c]`.
pub(super) fn list_json(list: &[Value]) -> String {
    go_value(&Value::Array(list.to_vec()))
}

/// Go's `%v` of a decoded JSON value: strings bare, `null` as `<nil>`, lists space-separated in
/// brackets, maps as `map[key:value ...]` with sorted keys.
pub fn go_value(value: &Value) -> String {
    match value {
        Value::Null => "<nil>".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let shown: Vec<String> = items.iter().map(go_value).collect();
            format!("[{}]", shown.join(" "))
        }
        Value::Object(members) => {
            let mut keys: Vec<&String> = members.keys().collect();
            keys.sort();
            let shown: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{k}:{}", go_value(&members[k])))
                .collect();
            format!("map[{}]", shown.join(" "))
        }
    }
}

pub(super) fn no_merge_key(element: &Object, merge_key: &str) -> PatchError {
    PatchError::Strategic(format!(
        "map: {} does not contain declared merge key: {merge_key}",
        map_json(element)
    ))
}

pub(super) fn unknown_patch_type(directive: &Value, map: &Object) -> PatchError {
    let shown = directive
        .as_str()
        .map_or_else(|| directive.to_string(), str::to_string);
    PatchError::Strategic(format!(
        "unknown patch type: {shown} in map: {}",
        map_json(map)
    ))
}

/// Merges `patch` into `original`, both objects described by `node`.
///
/// In order, as upstream's `mergeMap`: a `$patch` directive on the map itself; then
/// `$retainKeys`; then every `$setElementOrder/<list>` together with its list; then the
/// remaining keys in patch order, where `null` deletes, `$deleteFromPrimitiveList/<list>`
/// removes scalars, objects merge, lists follow their strategy and anything else replaces.
pub(super) fn merge_map(
    mut original: Object,
    mut patch: Object,
    node: Option<&FieldNode>,
) -> Result<Object, PatchError> {
    if let Some(directive) = patch.shift_remove(DIRECTIVE_MARKER) {
        match directive.as_str() {
            // The patch's content replaces the map wholesale: merge it into nothing so that
            // its own directives are applied rather than stored.
            Some("replace") => return merge_map(Object::new(), patch, node),
            Some("delete") => return Ok(Object::new()),
            // Upstream's `handleDirectiveInMergeMap` knows only `replace` and `delete`: an
            // explicit `merge` on a map is an unknown patch type there too.
            _ => {
                let mut shown = patch.clone();
                shown.insert(DIRECTIVE_MARKER.into(), directive.clone());
                return Err(unknown_patch_type(&directive, &shown));
            }
        }
    }
    apply_retain_keys(&mut original, &mut patch)?;
    apply_element_orders(&mut original, &mut patch, node)?;

    for (key, patch_value) in patch {
        if key.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX) {
            let field =
                directive_target(&key, DELETE_FROM_PRIMITIVE_LIST_PREFIX).ok_or_else(|| {
                    PatchError::InvalidDirective("invalid patch format of primitive list".into())
                })?;
            // Only a list can be removed from a list; a deletion list for a field the object
            // does not have adds nothing (upstream's "should not add the item" cases).
            match (patch_value, original.get_mut(field)) {
                (Value::Array(items), Some(Value::Array(existing))) => {
                    let current = std::mem::take(existing);
                    *existing = merge_list_field(current, items, child(node, field), true)?;
                }
                (Value::Array(_), _) => {}
                // Upstream's `mergeMap` stores a value that is not a list under the field
                // itself, where decoding the patched object then refuses it (422): never
                // silently dropped.
                (other, _) => {
                    original.insert(field.to_string(), other);
                }
            }
            continue;
        }

        let field_node = child(node, &key);
        if patch_value.is_null() {
            original.shift_remove(&key);
            continue;
        }
        let Some(slot) = original.get_mut(&key) else {
            if let Some(fresh) = fresh_value(patch_value, field_node)? {
                original.insert(key, fresh);
            }
            continue;
        };
        let current = std::mem::take(slot);
        let merged = match (current, patch_value) {
            (Value::Object(current), Value::Object(patch_map)) => {
                Some(Value::Object(merge_map(current, patch_map, field_node)?))
            }
            (Value::Array(current), Value::Array(patch_list)) => Some(Value::Array(
                merge_list_field(current, patch_list, field_node, false)?,
            )),
            (_, replacement) => fresh_value(replacement, field_node)?,
        };
        match merged {
            Some(value) => *slot = value,
            None => {
                original.shift_remove(&key);
            }
        }
    }
    Ok(original)
}

/// `$retainKeys`: keys of the original missing from the list are cleared before merging, and
/// the patch may only set keys the list names (nulls and parallel lists aside). This is how a
/// union such as a Volume's source switches member, e.g. from `emptyDir` to `hostPath`.
/// Upstream honours the directive wherever it appears, whatever the field's tags say.
pub(super) fn apply_retain_keys(
    original: &mut Object,
    patch: &mut Object,
) -> Result<(), PatchError> {
    let Some(directive) = patch.shift_remove(RETAIN_KEYS_DIRECTIVE) else {
        return Ok(());
    };
    let bad = || PatchError::InvalidDirective("invalid patch format of retainKeys".into());
    let Value::Array(listed) = directive else {
        return Err(bad());
    };
    let keep: HashSet<&str> = listed.iter().filter_map(Value::as_str).collect();
    let sets_unlisted_key = patch.iter().any(|(key, value)| {
        !value.is_null()
            && !key.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX)
            && !key.starts_with(SET_ELEMENT_ORDER_PREFIX)
            && !keep.contains(key.as_str())
    });
    if sets_unlisted_key {
        return Err(bad());
    }
    original.retain(|key, _| keep.contains(key.as_str()));
    Ok(())
}

/// Turns a patch value that has nothing to merge with into the value to store: directives are
/// applied (so never stored) and `null` members dropped, as upstream's `removeDirectives` and
/// `discardNullValuesFromPatch` do. `None` means the field is not to be stored at all (a map
/// whose `$patch` is `delete`).
pub(super) fn fresh_value(
    value: Value,
    node: Option<&FieldNode>,
) -> Result<Option<Value>, PatchError> {
    match value {
        Value::Object(members) => {
            if members.get(DIRECTIVE_MARKER).and_then(Value::as_str) == Some("delete") {
                return Ok(None);
            }
            Ok(Some(Value::Object(merge_map(
                Object::new(),
                members,
                node,
            )?)))
        }
        Value::Array(items) => Ok(Some(Value::Array(fresh_list(items, node)?))),
        scalar => Ok(Some(scalar)),
    }
}

/// [`fresh_value`] for a list: elements that are list-level markers (`$patch: replace`) or
/// deletions (`$patch: delete`) carry no content and are dropped; other object elements have
/// their directives applied.
pub(super) fn fresh_list(
    items: Vec<Value>,
    node: Option<&FieldNode>,
) -> Result<Vec<Value>, PatchError> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        match item {
            Value::Object(mut members) => {
                if let Some(directive) = members.get(DIRECTIVE_MARKER) {
                    match directive.as_str() {
                        Some("delete") | Some("replace") => continue,
                        Some("merge") => {
                            members.shift_remove(DIRECTIVE_MARKER);
                        }
                        _ => return Err(unknown_patch_type(directive, &members)),
                    }
                }
                out.push(Value::Object(merge_map(Object::new(), members, node)?));
            }
            Value::Array(inner) => out.push(Value::Array(fresh_list(inner, None)?)),
            scalar => out.push(scalar),
        }
    }
    Ok(out)
}

/// Combines an existing list with the patch's list for a field (upstream's
/// `mergeSliceHandler`): merge-strategy lists and deletion lists merge, any other list is
/// replaced by the patch's.
pub(super) fn merge_list_field(
    current: Vec<Value>,
    patch: Vec<Value>,
    node: Option<&FieldNode>,
    deletion: bool,
) -> Result<Vec<Value>, PatchError> {
    let strategy = strategy_of(node);
    if strategy.is_merge() || deletion {
        merge_slice(current, patch, node, strategy.merge_key(), deletion)
    } else {
        fresh_list(patch, node)
    }
}

/// The JSON type of a list element, as far as upstream distinguishes them (Go's decoder keeps
/// integers and floats apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ElementKind {
    Null,
    Bool,
    Integer,
    Float,
    String,
    List,
    Map,
}

pub(super) fn element_kind(value: &Value) -> ElementKind {
    match value {
        Value::Null => ElementKind::Null,
        Value::Bool(_) => ElementKind::Bool,
        Value::Number(n) if n.is_f64() => ElementKind::Float,
        Value::Number(_) => ElementKind::Integer,
        Value::String(_) => ElementKind::String,
        Value::Array(_) => ElementKind::List,
        Value::Object(_) => ElementKind::Map,
    }
}

/// The common element type of the lists, or `None` when they are all empty. Lists of lists
/// and mixed element types are refused, as upstream's `sliceElementType` does.
pub(super) fn common_element_kind(lists: &[&[Value]]) -> Result<Option<ElementKind>, PatchError> {
    let mut seen: Option<ElementKind> = None;
    for item in lists.iter().flat_map(|list| list.iter()) {
        let kind = element_kind(item);
        match seen {
            None if kind == ElementKind::List => return Err(PatchError::ListOfLists),
            None => seen = Some(kind),
            Some(prev) if prev != kind => {
                return Err(PatchError::Strategic(format!(
                    "list element types are not identical: {}",
                    lists
                        .iter()
                        .map(|l| list_json(l))
                        .collect::<Vec<_>>()
                        .join(" ")
                )))
            }
            Some(_) => {}
        }
    }
    Ok(seen)
}

/// How list elements are told apart: by the value of their merge key, or (scalars) by value.
#[derive(Debug, Clone, Copy)]
pub(super) enum Identity<'a> {
    MergeKey(&'a str),
    Value,
}

impl Identity<'_> {
    /// A hashable identity of `element`; `None` for an object lacking the merge key. Compact
    /// JSON text tells the same values apart as `Value` equality does (`1` is not `1.0`).
    fn of(self, element: &Value) -> Option<String> {
        match self {
            Identity::MergeKey(key) => element.get(key).map(Value::to_string),
            Identity::Value => Some(element.to_string()),
        }
    }
}

/// First position of each identity in `list`.
pub(super) fn positions(list: &[Value], identity: Identity<'_>) -> HashMap<String, usize> {
    let mut out = HashMap::with_capacity(list.len());
    for (index, element) in list.iter().enumerate() {
        if let Some(id) = identity.of(element) {
            out.entry(id).or_insert(index);
        }
    }
    out
}

/// Every element must be an object carrying `merge_key` (upstream's
/// `validateMergeKeyInLists` / `partitionMapsByPresentInList`).
pub(super) fn require_merge_keys(list: &[Value], merge_key: &str) -> Result<(), PatchError> {
    for element in list {
        match element {
            Value::Object(members) if members.contains_key(merge_key) => {}
            Value::Object(members) => return Err(no_merge_key(members, merge_key)),
            other => {
                return Err(PatchError::Strategic(format!(
                    "expected a map with merge key {merge_key}, but received a {}",
                    json_type(other)
                )))
            }
        }
    }
    Ok(())
}

/// Merges two lists of a merge-strategy field (upstream's `mergeSlice`).
///
/// Scalars: a deletion list removes every occurrence of its values; otherwise the union
/// without duplicates. Objects: `$patch: delete` elements remove the elements with their key,
/// `$patch: replace` makes the remaining patch elements the whole list, other patch elements
/// merge into the element with the same key or are appended. The result is then ordered as
/// upstream orders it: patch elements in patch order, elements only the server had in their
/// old order, interleaved by [`interleave`].
pub(super) fn merge_slice(
    current: Vec<Value>,
    patch: Vec<Value>,
    node: Option<&FieldNode>,
    merge_key: Option<&str>,
    deletion: bool,
) -> Result<Vec<Value>, PatchError> {
    if current.is_empty() && patch.is_empty() {
        return Ok(current);
    }
    let kind = common_element_kind(&[&current, &patch])?;
    if kind != Some(ElementKind::Map) {
        let identity = Identity::Value;
        let in_patch = positions(&patch, identity);
        if deletion {
            return Ok(current
                .into_iter()
                .filter(|v| !identity.of(v).is_some_and(|id| in_patch.contains_key(&id)))
                .collect());
        }
        let server_order = positions(&current, identity);
        let mut seen = HashSet::new();
        let merged: Vec<Value> = current
            .into_iter()
            .chain(patch)
            .filter(|v| identity.of(v).is_none_or(|id| seen.insert(id)))
            .collect();
        return Ok(order_merged(merged, &in_patch, &server_order, identity));
    }

    let Some(merge_key) = merge_key else {
        return Err(PatchError::Strategic(
            "cannot merge lists of objects without a merge key".into(),
        ));
    };
    let identity = Identity::MergeKey(merge_key);

    let mut plain: Vec<Object> = Vec::with_capacity(patch.len());
    let mut deleted: HashSet<String> = HashSet::new();
    let mut replace = false;
    for element in patch {
        let Value::Object(members) = element else {
            // common_element_kind saw only objects.
            continue;
        };
        let Some(directive) = members.get(DIRECTIVE_MARKER) else {
            plain.push(members);
            continue;
        };
        match directive.as_str() {
            Some("delete") => match members.get(merge_key) {
                Some(key_value) => {
                    deleted.insert(key_value.to_string());
                }
                None => return Err(no_merge_key(&members, merge_key)),
            },
            Some("replace") => replace = true,
            // Upstream's `mergeSliceWithSpecialElements` refuses `merge` on list elements.
            Some("merge") => {
                return Err(PatchError::Strategic(
                    "merging lists cannot yet be specified in the patch".into(),
                ))
            }
            _ => return Err(unknown_patch_type(directive, &members)),
        }
    }

    let mut list: Vec<Value> = if replace {
        // Nothing of the old list survives; the other patch elements are the new list.
        let replacement = std::mem::take(&mut plain)
            .into_iter()
            .map(|members| merge_map(Object::new(), members, node).map(Value::Object))
            .collect::<Result<Vec<_>, _>>()?;
        require_merge_keys(&replacement, merge_key)?;
        replacement
    } else {
        current
            .into_iter()
            .filter(|v| !identity.of(v).is_some_and(|id| deleted.contains(&id)))
            .collect()
    };

    let server_order = positions(&list, identity);
    let mut index = server_order.clone();
    let mut patch_order: HashMap<String, usize> = HashMap::with_capacity(plain.len());
    for (position, members) in plain.into_iter().enumerate() {
        let Some(key_value) = members.get(merge_key) else {
            return Err(no_merge_key(&members, merge_key));
        };
        let id = key_value.to_string();
        patch_order.entry(id.clone()).or_insert(position);
        match index.get(&id) {
            Some(&at) => {
                let merged = match std::mem::take(&mut list[at]) {
                    Value::Object(existing) => merge_map(existing, members, node)?,
                    // common_element_kind saw only objects; merge onto nothing otherwise.
                    _ => merge_map(Object::new(), members, node)?,
                };
                list[at] = Value::Object(merged);
            }
            None => {
                index.insert(id, list.len());
                list.push(Value::Object(merge_map(Object::new(), members, node)?));
            }
        }
    }
    require_merge_keys(&list, merge_key)?;
    Ok(order_merged(list, &patch_order, &server_order, identity))
}

/// A list element with its position in some ordering list, if it has one there.
pub(super) type Placed = (Option<usize>, Value);

/// Splits `merged` into the elements the patch (or `$setElementOrder` list) names and those
/// only the server had, orders each, and interleaves them.
pub(super) fn order_merged(
    merged: Vec<Value>,
    patch_order: &HashMap<String, usize>,
    server_order: &HashMap<String, usize>,
    identity: Identity<'_>,
) -> Vec<Value> {
    let position_in = |order: &HashMap<String, usize>, v: &Value| {
        identity.of(v).and_then(|id| order.get(&id).copied())
    };
    let (mut named, mut server_only): (Vec<Placed>, Vec<Placed>) = merged
        .into_iter()
        .map(|v| (position_in(patch_order, &v), v))
        .partition(|(at, _)| at.is_some());
    // Stable sorts: elements with equal positions (duplicates) keep their relative order.
    named.sort_by_key(|(at, _)| *at);
    for entry in &mut server_only {
        entry.0 = position_in(server_order, &entry.1);
    }
    server_only.sort_by_key(|(at, _)| at.unwrap_or(usize::MAX));
    let named: Vec<Placed> = named
        .into_iter()
        .map(|(_, v)| (position_in(server_order, &v), v))
        .collect();
    interleave(server_only, named)
}

/// Upstream's `mergeSortedSlice`: walks both ordered lists, taking the server-only element
/// first only when both it and the next patch element existed on the server and it came
/// earlier there; otherwise the patch element goes first. Both lists keep their own order.
/// Each element comes with its position in the server's list.
pub(super) fn interleave(server_only: Vec<Placed>, named: Vec<Placed>) -> Vec<Value> {
    let mut out = Vec::with_capacity(server_only.len() + named.len());
    let mut left = server_only.into_iter().peekable();
    let mut right = named.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (Some((l, _)), Some((r, _))) => matches!((l, r), (Some(l), Some(r)) if l < r),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        let next = if take_left { left.next() } else { right.next() };
        if let Some((_, value)) = next {
            out.push(value);
        }
    }
    out
}

/// Applies every `$setElementOrder/<field>` of `patch` (upstream's `mergePatchIntoOriginal`):
/// the field's list is merged with the patch's list (if any), then ordered so that the elements
/// the directive names follow its order, and elements only the server had keep their relative
/// order among them. The field's list is removed from `patch` afterwards.
pub(super) fn apply_element_orders(
    original: &mut Object,
    patch: &mut Object,
    node: Option<&FieldNode>,
) -> Result<(), PatchError> {
    let directives: Vec<String> = patch
        .keys()
        .filter(|k| k.starts_with(SET_ELEMENT_ORDER_PREFIX))
        .cloned()
        .collect();
    for directive in directives {
        let bad =
            || PatchError::InvalidDirective("invalid patch format of setElementOrder list".into());
        let Some(order) = patch.shift_remove(&directive) else {
            continue;
        };
        let field = directive_target(&directive, SET_ELEMENT_ORDER_PREFIX)
            .ok_or_else(bad)?
            .to_string();
        let Value::Array(order) = order else {
            return Err(bad());
        };
        let field_node = child(node, &field);
        let merge_key = strategy_of(field_node).merge_key();

        let current = match original.get_mut(&field) {
            None => None,
            Some(Value::Array(items)) => Some(std::mem::take(items)),
            Some(other) => {
                return Err(PatchError::Strategic(format!(
                    "expected a list in {field}, but the object has a {}",
                    json_type(other)
                )))
            }
        };
        let patch_list = match patch.shift_remove(&field) {
            None => None,
            Some(Value::Array(items)) => Some(items),
            Some(other) => {
                return Err(PatchError::Strategic(format!(
                    "expected a list in {field} beside {directive}, but the patch has a {}",
                    json_type(&other)
                )))
            }
        };
        validate_element_order(patch_list.as_deref().unwrap_or_default(), &order, merge_key)?;

        let identity = merge_key.map_or(Identity::Value, Identity::MergeKey);
        let server_order = current
            .as_deref()
            .map(|items| positions(items, identity))
            .unwrap_or_default();
        let merged = match (current, patch_list) {
            (Some(current), None) => current,
            (None, Some(patch_list)) => fresh_list(patch_list, field_node)?,
            (Some(current), Some(patch_list)) => {
                merge_list_field(current, patch_list, field_node, false)?
            }
            (None, None) => continue,
        };
        if let Some(key) = merge_key {
            require_merge_keys(&order, key)?;
            require_merge_keys(&merged, key)?;
        }
        let order_positions = positions(&order, identity);
        let ordered = order_merged(merged, &order_positions, &server_order, identity);
        original.insert(field, Value::Array(ordered));
    }
    Ok(())
}

/// Upstream's `validatePatchWithSetOrderList`: the patch's elements (deletions and other
/// directive elements aside) must appear in the `$setElementOrder` list, in the same relative
/// order.
pub(super) fn validate_element_order(
    patch_list: &[Value],
    order: &[Value],
    merge_key: Option<&str>,
) -> Result<(), PatchError> {
    if patch_list.is_empty() || order.is_empty() {
        return Ok(());
    }
    let mut elements: Vec<&Value> = Vec::with_capacity(patch_list.len());
    for element in patch_list {
        if merge_key.is_some() {
            let Value::Object(members) = element else {
                return Err(PatchError::Strategic(format!(
                    "expected a map in a merge list, but received a {}",
                    json_type(element)
                )));
            };
            if members.get(DIRECTIVE_MARKER).and_then(Value::as_str) == Some("delete") {
                continue;
            }
        }
        elements.push(element);
    }
    let same = |a: &Value, b: &Value| -> Result<bool, PatchError> {
        let Some(key) = merge_key else {
            return Ok(a == b);
        };
        let key_of = |v: &Value| -> Result<Value, PatchError> {
            match v {
                Value::Object(members) => members
                    .get(key)
                    .cloned()
                    .ok_or_else(|| no_merge_key(members, key)),
                other => Err(PatchError::Strategic(format!(
                    "expected a map in a merge list, but received a {}",
                    json_type(other)
                ))),
            }
        };
        Ok(key_of(a)? == key_of(b)?)
    };
    let (mut at_patch, mut at_order) = (0, 0);
    while at_patch < elements.len() && at_order < order.len() {
        let element = elements[at_patch];
        if element.get(DIRECTIVE_MARKER).is_some() {
            at_patch += 1;
            continue;
        }
        if same(element, &order[at_order])? {
            at_patch += 1;
        }
        at_order += 1;
    }
    if at_patch < elements.len() && at_order >= order.len() {
        return Err(PatchError::Strategic(format!(
            "the order in patch list:\n{}\n doesn't match {SET_ELEMENT_ORDER_PREFIX} list:\n{}\n",
            list_json(patch_list),
            list_json(order)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::patch::tests::*;

    // --- strategic merge: list order ----------------------------------------------------------

    #[test]
    fn strategic_merge_set_element_order_table_follows_upstream_cases() {
        let schema = PatchSchema::new()
            .merge_list("mergingList", "name")
            .merge_primitive_list("mergingIntList");
        let named = |ns: &[i64]| -> Value { ns.iter().map(|n| json!({"name": n})).collect() };
        let cases: Vec<(&str, Value, Value, Value)> = vec![
            (
                "server-only items keep their place between the ordered ones",
                json!({"mergingList": named(&[1, 2, 9, 3, 4])}),
                json!({"$setElementOrder/mergingList": named(&[2, 1, 4, 3])}),
                json!({"mergingList": named(&[2, 1, 9, 4, 3])}),
            ),
            (
                "several server-only items stay together",
                json!({"mergingList": named(&[1, 2, 7, 9, 8, 3, 4])}),
                json!({"$setElementOrder/mergingList": named(&[2, 1, 4, 3])}),
                json!({"mergingList": named(&[2, 1, 7, 9, 8, 4, 3])}),
            ),
            (
                "an order entry that no element has is ignored",
                json!({"mergingList": named(&[1, 3])}),
                json!({
                    "$setElementOrder/mergingList": named(&[3, 2, 1]),
                    "mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}]
                }),
                json!({"mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}]}),
            ),
            (
                "primitive lists are reordered too",
                json!({"mergingIntList": [1, 3]}),
                json!({"$setElementOrder/mergingIntList": [3, 2, 1]}),
                json!({"mergingIntList": [3, 1]}),
            ),
            (
                "duplicates stay next to each other",
                json!({"mergingIntList": [1, 2, 3, 2, 4]}),
                json!({"$setElementOrder/mergingIntList": [2, 1, 4, 3, 2]}),
                json!({"mergingIntList": [2, 2, 1, 4, 3]}),
            ),
            (
                "the order also places added elements",
                json!({"mergingList": named(&[1, 2])}),
                json!({
                    "$setElementOrder/mergingList": named(&[1, 3, 2]),
                    "mergingList": [{"name": 3}]
                }),
                json!({"mergingList": named(&[1, 3, 2])}),
            ),
        ];
        for (name, original, patch, want) in cases {
            assert_eq!(smp(&schema, original, patch), want, "{name}");
        }
    }

    #[test]
    fn strategic_merge_set_element_order_contradicting_the_patch_is_an_error() {
        let schema = PatchSchema::new().merge_list("mergingList", "name");
        let err = smp_err(
            &schema,
            json!({"mergingList": [{"name": 1}, {"name": 3}, {"name": 2}]}),
            json!({
                "$setElementOrder/mergingList": [{"name": 1}, {"name": 2}, {"name": 3}],
                "mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}]
            }),
        );
        assert!(err.to_string().contains("doesn't match"), "{err}");
    }

    // --- strategic merge: metadata lists ------------------------------------------------------

    #[test]
    fn strategic_merge_unions_finalizers_without_duplicates() {
        let out = smp(
            &generic_patch_schema(),
            pod(),
            json!({"metadata": {"finalizers": ["b.example.com/y", "c.example.com/z", "c.example.com/z"]}}),
        );
        assert_eq!(
            out["metadata"]["finalizers"],
            json!(["a.example.com/x", "b.example.com/y", "c.example.com/z"])
        );
    }

    #[test]
    fn strategic_merge_primitive_union_follows_upstream_ordering() {
        let schema = PatchSchema::new().merge_primitive_list("mergingIntList");
        let cases = [
            (
                "overlap keeps server order",
                json!([1, 2]),
                json!([2, 3]),
                json!([1, 2, 3]),
            ),
            (
                "new items lead when first in patch",
                json!([1, 2]),
                json!([3, 2]),
                json!([3, 1, 2]),
            ),
            ("nothing new", json!([1, 2]), json!([1]), json!([1, 2])),
            ("empty server list", json!([]), json!([2, 1]), json!([2, 1])),
        ];
        for (name, current, patch, want) in cases {
            let out = smp(
                &schema,
                json!({"mergingIntList": current}),
                json!({"mergingIntList": patch}),
            );
            assert_eq!(out["mergingIntList"], want, "{name}");
        }
    }

    #[test]
    fn strategic_merge_delete_from_primitive_list_removes_finalizer() {
        let out = smp(
            &generic_patch_schema(),
            pod(),
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a.example.com/x", "never.there"]}}),
        );
        assert_eq!(out["metadata"]["finalizers"], json!(["b.example.com/y"]));
        assert!(!out.to_string().contains("$deleteFromPrimitiveList"));
    }

    #[test]
    fn strategic_merge_delete_from_primitive_list_never_creates_the_list() {
        let out = smp(
            &generic_patch_schema(),
            json!({"metadata": {"name": "x"}}),
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}),
        );
        assert_eq!(out, json!({"metadata": {"name": "x"}}));
    }

    #[test]
    fn strategic_merge_delete_from_primitive_list_also_applies_to_atomic_lists() {
        let out = smp(
            &PatchSchema::new(),
            json!({"nonMergingIntList": [1, 2, 3]}),
            json!({"$deleteFromPrimitiveList/nonMergingIntList": [2]}),
        );
        assert_eq!(out, json!({"nonMergingIntList": [1, 3]}));
    }

    #[test]
    fn strategic_merge_merges_owner_references_by_uid() {
        let original = json!({"metadata": {"ownerReferences": [
            {"uid": "u1", "kind": "ReplicaSet", "name": "rs1"}
        ]}});
        let out = smp(
            &generic_patch_schema(),
            original,
            json!({"metadata": {"ownerReferences": [
                {"uid": "u1", "controller": true},
                {"uid": "u2", "kind": "Job", "name": "j"}
            ]}}),
        );
        assert_eq!(
            out["metadata"]["ownerReferences"],
            json!([
                {"uid": "u1", "kind": "ReplicaSet", "name": "rs1", "controller": true},
                {"uid": "u2", "kind": "Job", "name": "j"}
            ])
        );
    }

    // --- strategic merge: malformed patches ---------------------------------------------------

    #[test]
    fn strategic_merge_rejects_lists_of_lists_in_merge_lists() {
        let err = smp_err(
            &generic_patch_schema(),
            json!({"metadata": {"finalizers": []}}),
            json!({"metadata": {"finalizers": [["a"]]}}),
        );
        assert_eq!(err, PatchError::ListOfLists);
        assert_eq!(err.status_code(), 422);
    }
}
