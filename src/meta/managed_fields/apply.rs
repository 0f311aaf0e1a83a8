//! Server-side apply on JSON values: the applied configuration is merged into the live object
//! by the kind's structural schema, fields the manager applied before and no longer applies
//! are removed (unless another manager owns them), and a changed field another manager owns
//! is a conflict unless forced (upstream structured-merge-diff `merge.Updater.Apply`, with the
//! managers of k8s.io/apimachinery `util/managedfields`).

use serde_json::{Map, Value};

use super::compare::{compare, item_element};
use super::set::{path_string, FieldSet, Path, PathElement};
use super::{entries_of, stripped, Entry, Writer, APPLY, UPDATE};
use crate::meta::patch::{ListType, PatchSchema, SchemaNode};

/// The annotation client-side `kubectl apply` keeps its last applied configuration in.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Who owns what an object held when it is first applied to without managed fields.
pub const BEFORE_FIRST_APPLY: &str = "before-first-apply";

/// The manager whose first server-side apply may take over what client-side apply set.
const KUBECTL: &str = "kubectl";

/// One field an apply would change that another manager owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The other manager, as upstream prints it (`"kubectl-create" using v1`).
    pub manager: String,
    pub path: Path,
}

/// An apply's conflicts, sorted by manager then path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflicts(pub Vec<Conflict>);

impl Conflicts {
    /// Upstream's message: one conflict on one line, several grouped by manager.
    pub fn message(&self) -> String {
        if let [only] = self.0.as_slice() {
            return format!(
                "Apply failed with 1 conflict: conflict with {}: {}",
                only.manager,
                path_string(&only.path)
            );
        }
        let mut lines = Vec::new();
        let mut current: Option<&str> = None;
        for c in &self.0 {
            if current != Some(c.manager.as_str()) {
                lines.push(format!("conflicts with {}:", c.manager));
                current = Some(&c.manager);
            }
            lines.push(format!("- {}", path_string(&c.path)));
        }
        format!(
            "Apply failed with {} conflicts: {}",
            self.0.len(),
            lines.join("\n")
        )
    }
}

/// How upstream names a manager in a conflict.
fn print_manager(entry: &Entry) -> String {
    let mut out = format!("{:?}", entry.manager);
    if !entry.subresource.is_empty() {
        out = format!("{out} with subresource {:?}", entry.subresource);
    }
    if entry.operation == UPDATE {
        out = format!("{out} using {}", entry.api_version);
    }
    out
}

/// Upstream sorts conflicting managers by their identifier (the JSON of the entry without
/// fields and time).
fn identifier(entry: &Entry) -> String {
    let mut id = Map::new();
    id.insert("manager".into(), Value::String(entry.manager.clone()));
    id.insert("operation".into(), Value::String(entry.operation.clone()));
    if entry.operation == UPDATE {
        id.insert(
            "apiVersion".into(),
            Value::String(entry.api_version.clone()),
        );
    }
    if !entry.subresource.is_empty() {
        id.insert(
            "subresource".into(),
            Value::String(entry.subresource.clone()),
        );
    }
    Value::Object(id).to_string()
}

/// The fields an applied configuration sets (upstream `TypedValue.ToFieldSet`): every
/// scalar, every list item, every atomic list or map, every empty or null value.
pub fn applied_fields(config: &Value, schema: SchemaNode<'_>) -> FieldSet {
    let mut set = FieldSet::new();
    fields_of(config, schema, &mut Vec::new(), &mut set);
    set
}

fn fields_of(value: &Value, schema: SchemaNode<'_>, path: &mut Path, set: &mut FieldSet) {
    match value {
        Value::Object(members) if !schema.is_atomic_map() => {
            if members.is_empty() {
                set.insert(path);
            }
            for (key, child) in members {
                path.push(PathElement::Field(key.clone()));
                fields_of(child, schema.child(key), path, set);
                path.pop();
            }
        }
        Value::Array(items) => {
            let list_type = schema.list_type();
            if list_type == ListType::Atomic {
                set.insert(path);
                return;
            }
            for (i, item) in items.iter().enumerate() {
                path.push(item_element(&list_type, schema, item, i));
                fields_of(item, schema, path, set);
                set.insert(path);
                path.pop();
            }
        }
        _ => set.insert(path),
    }
}

/// Merges `rhs` (the applied configuration) into `lhs` (the live object): objects merge key
/// by key, associative lists and sets item by item in upstream's order, everything else
/// (scalars, atomic lists and maps) is `rhs`'s.
pub fn merge(lhs: Option<&Value>, rhs: Option<&Value>, schema: SchemaNode<'_>) -> Option<Value> {
    match (lhs, rhs) {
        (None, None) => None,
        (Some(l), None) => Some(l.clone()),
        (None, Some(r)) => Some(r.clone()),
        (Some(Value::Object(l)), Some(Value::Object(r))) if !schema.is_atomic_map() => {
            let mut out = Map::new();
            for (key, lv) in l {
                if let Some(v) = merge(Some(lv), r.get(key), schema.child(key)) {
                    out.insert(key.clone(), v);
                }
            }
            for (key, rv) in r {
                if !l.contains_key(key) {
                    out.insert(key.clone(), rv.clone());
                }
            }
            Some(Value::Object(out))
        }
        (Some(Value::Array(l)), Some(Value::Array(r))) => {
            let list_type = schema.list_type();
            if list_type == ListType::Atomic {
                return Some(Value::Array(r.clone()));
            }
            Some(Value::Array(merge_list(l, r, &list_type, schema)))
        }
        (Some(_), Some(r)) => Some(r.clone()),
    }
}

/// Upstream's list merge: items both sides have take `rhs`'s order, items only `lhs` has
/// stay where they were relative to them, items only `rhs` has come where `rhs` puts them.
fn merge_list(
    l: &[Value],
    r: &[Value],
    list_type: &ListType,
    schema: SchemaNode<'_>,
) -> Vec<Value> {
    let lpes: Vec<PathElement> = l
        .iter()
        .enumerate()
        .map(|(i, v)| item_element(list_type, schema, v, i))
        .collect();
    let rpes: Vec<PathElement> = r
        .iter()
        .enumerate()
        .map(|(i, v)| item_element(list_type, schema, v, i))
        .collect();
    let in_l = |pe: &PathElement| lpes.iter().position(|p| p == pe);
    let in_r = |pe: &PathElement| rpes.iter().position(|p| p == pe);
    let mut shared = rpes.iter().filter(|pe| in_l(pe).is_some());
    let mut next_shared = shared.next();
    let mut merged_r: Vec<&PathElement> = Vec::new();
    let mut out = Vec::new();
    let (mut li, mut ri) = (0, 0);
    while li < l.len() || ri < r.len() {
        if li < l.len() && ri < r.len() {
            if lpes[li] == rpes[ri] {
                merged_r.push(&rpes[ri]);
                out.extend(merge(Some(&l[li]), Some(&r[ri]), schema));
                li += 1;
                ri += 1;
                next_shared = shared.next();
                continue;
            }
            if in_r(&lpes[li]).is_some() && next_shared.is_some_and(|s| *s != lpes[li]) {
                li += 1;
                continue;
            }
        }
        if li < l.len() {
            if in_r(&lpes[li]).is_none() {
                out.push(l[li].clone());
                li += 1;
                continue;
            } else if merged_r.contains(&&lpes[li]) {
                li += 1;
            }
        }
        if ri < r.len() {
            let pe = &rpes[ri];
            merged_r.push(pe);
            let live = in_l(pe).map(|i| &l[i]);
            out.extend(merge(live, Some(&r[ri]), schema));
            ri += 1;
            if next_shared == Some(pe) {
                next_shared = shared.next();
            }
        }
    }
    out
}

/// Removes the field at `path` from `value`, if it is there.
fn remove_path(value: &mut Value, path: &[PathElement], list_types: SchemaNode<'_>) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    match (value, first) {
        (Value::Object(members), PathElement::Field(name)) => {
            if rest.is_empty() {
                members.remove(name);
            } else if let Some(child) = members.get_mut(name) {
                remove_path(child, rest, list_types.child(name));
            }
        }
        (Value::Array(items), pe) => {
            let list_type = list_types.list_type();
            let position = items
                .iter()
                .enumerate()
                .position(|(i, item)| item_element(&list_type, list_types, item, i) == *pe);
            if let Some(i) = position {
                if rest.is_empty() {
                    items.remove(i);
                } else {
                    remove_path(&mut items[i], rest, list_types);
                }
            }
        }
        _ => {}
    }
}

/// Whether `path` names a key field of an associative list item (`[name="c"].name`): the
/// item's identity, which stays as long as the item does.
fn is_key_of_its_item(path: &[PathElement]) -> bool {
    match path {
        [.., PathElement::Key(keys), PathElement::Field(field)] => {
            serde_json::from_str::<Value>(keys).is_ok_and(|k| k.get(field).is_some())
        }
        _ => false,
    }
}

/// Removes what `manager` applied last time and applies no more, unless another manager (or
/// the new configuration) holds it or something below it.
fn prune(merged: &mut Value, last: &FieldSet, kept: &FieldSet, schema: SchemaNode<'_>) {
    let mut gone: Vec<Path> = last
        .difference(kept)
        .paths()
        .into_iter()
        .filter(|p| !kept.contains_prefix(p) && !is_key_of_its_item(p))
        .collect();
    // Deepest first, so that a parent's removal never hides a child's.
    gone.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for path in gone {
        remove_path(merged, &path, schema);
    }
}

/// What client-side apply set that a first server-side apply by kubectl may take over: the
/// fields of the last-applied configuration whose live value is still the applied one.
fn allowed_from_last_applied(live: &Value, schema: &PatchSchema) -> Option<FieldSet> {
    let text = live
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(LAST_APPLIED))
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())?;
    let last: Value = serde_json::from_str(text).ok()?;
    let fields = applied_fields(&last, schema.root());
    let changes = compare(&last, live, schema.root());
    Some(fields.difference(&changes.modified))
}

/// Applies `config` for `writer` to `live` (the kind's zero object when creating) and returns
/// the new object with its `managedFields`, or the conflicts.
pub fn apply(
    live: &Value,
    config: &Value,
    schema: &PatchSchema,
    writer: &Writer<'_>,
    force: bool,
) -> Result<Value, Conflicts> {
    let first = apply_once(live, config, schema, writer, force);
    let Err(conflicts) = &first else {
        return first;
    };
    // kubectl's first server-side apply of an object client-side apply manages takes over
    // what the last-applied configuration still describes (upstream `lastAppliedManager`).
    if writer.manager != KUBECTL {
        return first;
    }
    let Some(allowed) = allowed_from_last_applied(live, schema) else {
        return first;
    };
    let remaining: Vec<Conflict> = conflicts
        .0
        .iter()
        .filter(|c| !allowed.contains(&c.path))
        .cloned()
        .collect();
    if remaining.is_empty() {
        apply_once(live, config, schema, writer, true)
    } else {
        Err(Conflicts(remaining))
    }
}

fn apply_once(
    live: &Value,
    config: &Value,
    schema: &PatchSchema,
    writer: &Writer<'_>,
    force: bool,
) -> Result<Value, Conflicts> {
    let mut managed = entries_of(live);
    if managed.is_empty() && live.pointer("/metadata/uid").is_some() {
        // An object nobody manages yet: what it holds is first recorded as set by
        // `before-first-apply`, so that the apply conflicts with it (upstream
        // `skipNonAppliedManager.Apply`).
        let before = Writer {
            manager: BEFORE_FIRST_APPLY,
            ..writer.clone()
        };
        managed = super::updated(&schema.zero(), live, Vec::new(), schema, &before);
    }
    let mut live_plain = live.clone();
    crate::meta::object::metadata_mut(&mut live_plain).remove("managedFields");
    let root = schema.root();
    let mut merged =
        merge(Some(&live_plain), Some(config), root).unwrap_or_else(|| live_plain.clone());
    let strip = stripped();
    let applied = applied_fields(config, root).difference(&strip);
    let mine = |e: &Entry| {
        e.manager == writer.manager && e.operation == APPLY && e.subresource == writer.subresource
    };
    let last = managed
        .iter()
        .find(|e| mine(e))
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    let others = managed
        .iter()
        .filter(|e| !mine(e))
        .fold(FieldSet::new(), |acc, e| acc.union(&e.fields));
    prune(&mut merged, &last, &others.union(&applied), root);

    let changes = compare(&live_plain, &merged, root);
    let changed = changes.modified.union(&changes.added);
    let mut conflicts = Vec::new();
    let mut sorted: Vec<&Entry> = managed.iter().filter(|e| !mine(e)).collect();
    sorted.sort_by_key(|e| identifier(e));
    for entry in sorted {
        for path in entry.fields.intersection(&changed).paths() {
            conflicts.push(Conflict {
                manager: print_manager(entry),
                path,
            });
        }
    }
    if !force && !conflicts.is_empty() {
        return Err(Conflicts(conflicts));
    }
    for entry in managed.iter_mut().filter(|e| !mine(e)) {
        entry.fields = entry
            .fields
            .difference(&changed)
            .difference(&changes.removed)
            .difference(&strip);
    }
    let changed_anything = merged != live_plain;
    let previous_time = managed
        .iter()
        .find(|e| mine(e))
        .and_then(|e| e.time.clone());
    managed.retain(|e| !mine(e));
    managed.push(Entry {
        manager: writer.manager.to_string(),
        operation: APPLY.to_string(),
        api_version: writer.api_version.clone(),
        time: if changed_anything || previous_time.is_none() {
            Some(writer.now.clone())
        } else {
            previous_time
        },
        subresource: writer.subresource.to_string(),
        fields: applied,
    });
    managed.retain(|e| !e.fields.is_empty());
    super::cap_update_managers(&mut managed);

    // kubectl keeps client-side apply's annotation in step with what it applies server-side.
    if writer.manager == KUBECTL {
        let has_last_applied = live
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(LAST_APPLIED))
            .is_some();
        if has_last_applied {
            // As upstream encodes it: the configuration without the annotation itself, its
            // keys sorted, ending in a newline.
            let mut last_applied = config.clone();
            if let Some(annotations) = last_applied
                .pointer_mut("/metadata/annotations")
                .and_then(Value::as_object_mut)
            {
                annotations.remove(LAST_APPLIED);
            }
            let last_applied = format!("{}\n", super::set::canonical(&last_applied));
            let annotations = crate::meta::object::metadata_mut(&mut merged)
                .entry("annotations")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(annotations) = annotations {
                annotations.insert(LAST_APPLIED.into(), Value::String(last_applied));
            }
        }
    }
    super::set_entries(&mut merged, &managed);
    Ok(merged)
}
