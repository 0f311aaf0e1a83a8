//! `metadata.managedFields`: which manager set which fields of an object, kept on every write
//! as kube-apiserver keeps it (k8s.io/apimachinery `util/managedfields`, with the field sets
//! and comparisons of sigs.k8s.io/structured-merge-diff).
//!
//! A write by manager M (the `fieldManager` of the request, or the User-Agent's product) with
//! operation `Update` compares the object before and after it by the kind's structural schema
//! ([`PatchSchema`]); M then owns every field it added or changed, those fields leave every
//! other manager's set, fields it removed leave every set, and entries left empty go away.
//! Fields the server manages itself (`metadata.uid`, `metadata.resourceVersion`, …) are in no
//! set. Entries are kept per manager, operation, API version and subresource, at most ten of
//! them for updates (older ones are merged into `ancient-changes`), ordered as upstream orders
//! them: `Apply` before `Update`, then by time, then by manager.
//!
//! Server-side apply ([`apply`]) records operation `Apply`: the manager owns exactly the
//! fields its configuration sets, and changing a field another manager owns is a conflict
//! unless forced.

mod apply;
mod compare;
mod set;

pub use apply::{applied_fields, apply, merge, Conflict, Conflicts, LAST_APPLIED};
pub use compare::{compare, Comparison};
pub use set::{path_string, FieldSet, FieldsV1Error, Path, PathElement};

use serde_json::{json, Value};

use crate::meta::patch::PatchSchema;

/// Most `Update` entries an object keeps (upstream `DefaultMaxUpdateManagers`).
pub const MAX_UPDATE_MANAGERS: usize = 10;

/// The manager the oldest `Update` entries are merged into past [`MAX_UPDATE_MANAGERS`].
pub const ANCIENT_CHANGES: &str = "ancient-changes";

/// The operation of an entry.
pub const UPDATE: &str = "Update";
pub const APPLY: &str = "Apply";

/// One `managedFields` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub manager: String,
    pub operation: String,
    pub api_version: String,
    pub time: Option<String>,
    pub subresource: String,
    pub fields: FieldSet,
}

impl Entry {
    /// Upstream's manager identifier: an `Apply` entry is one per manager and subresource
    /// whatever the version it applied, an `Update` entry one per version too.
    fn same_manager(&self, other: &Entry) -> bool {
        self.manager == other.manager
            && self.operation == other.operation
            && self.subresource == other.subresource
            && (self.operation == APPLY || self.api_version == other.api_version)
    }

    fn seconds(&self) -> i64 {
        self.time
            .as_deref()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .map_or(0, |t| t.as_second())
    }

    fn encode(&self) -> Value {
        let mut entry = serde_json::Map::new();
        entry.insert("manager".into(), json!(self.manager));
        entry.insert("operation".into(), json!(self.operation));
        entry.insert("apiVersion".into(), json!(self.api_version));
        if let Some(time) = &self.time {
            entry.insert("time".into(), json!(time));
        }
        entry.insert("fieldsType".into(), json!("FieldsV1"));
        entry.insert("fieldsV1".into(), self.fields.to_fields_v1());
        if !self.subresource.is_empty() {
            entry.insert("subresource".into(), json!(self.subresource));
        }
        Value::Object(entry)
    }
}

/// Reads a `managedFields` list, as upstream's `DecodeManagedFields` does; a later entry of
/// the same manager replaces an earlier one.
pub fn decode(list: &Value) -> Result<Vec<Entry>, FieldsV1Error> {
    let Value::Array(items) = list else {
        return Err(FieldsV1Error("managedFields is not a list".into()));
    };
    let mut out: Vec<Entry> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let text = |field: &str| item.get(field).and_then(Value::as_str).unwrap_or("");
        let operation = text("operation");
        if operation != APPLY && operation != UPDATE {
            return Err(FieldsV1Error(
                "operation must be `Apply` or `Update`".into(),
            ));
        }
        if text("apiVersion").is_empty() {
            return Err(FieldsV1Error("apiVersion must not be empty".into()));
        }
        match text("fieldsType") {
            "FieldsV1" => {}
            "" => {
                return Err(FieldsV1Error(format!(
                    "missing fieldsType in managed fields entry {i}"
                )))
            }
            other => {
                return Err(FieldsV1Error(format!(
                    "invalid fieldsType {other:?} in managed fields entry {i}"
                )))
            }
        }
        let fields = match item.get("fieldsV1") {
            None | Some(Value::Null) => FieldSet::new(),
            Some(doc) => FieldSet::from_fields_v1(doc)?,
        };
        let entry = Entry {
            manager: text("manager").to_string(),
            operation: operation.to_string(),
            api_version: text("apiVersion").to_string(),
            time: item.get("time").and_then(Value::as_str).map(str::to_string),
            subresource: text("subresource").to_string(),
            fields,
        };
        out.retain(|e| !e.same_manager(&entry));
        out.push(entry);
    }
    Ok(out)
}

/// The `managedFields` list of `entries`, in upstream's order.
pub fn encode(entries: &[Entry]) -> Value {
    let mut sorted: Vec<&Entry> = entries.iter().collect();
    sorted.sort_by(|p, q| {
        p.operation
            .cmp(&q.operation)
            .then(p.seconds().cmp(&q.seconds()))
            .then(p.manager.cmp(&q.manager))
            .then(p.api_version.cmp(&q.api_version))
            .then(p.subresource.cmp(&q.subresource))
    });
    Value::Array(sorted.into_iter().map(Entry::encode).collect())
}

/// Who writes: the manager, the kind's API version, the subresource ("" or "status") and the
/// time of the write (RFC 3339, seconds).
#[derive(Debug, Clone)]
pub struct Writer<'a> {
    pub manager: &'a str,
    pub api_version: String,
    pub subresource: &'a str,
    pub now: String,
}

/// Whether a sent `managedFields` asks for a reset: an empty list, or one empty entry.
fn is_reset(sent: &Value) -> bool {
    match sent {
        Value::Array(items) if items.is_empty() => true,
        Value::Array(items) if items.len() == 1 => items[0].as_object().is_some_and(|entry| {
            entry.values().all(|v| match v {
                Value::Null => true,
                Value::String(s) => s.is_empty(),
                Value::Object(m) => m.is_empty(),
                _ => false,
            })
        }),
        _ => false,
    }
}

fn entries_of(obj: &Value) -> Vec<Entry> {
    obj.pointer("/metadata/managedFields")
        .map(|list| decode(list).unwrap_or_default())
        .unwrap_or_default()
}

/// The paths the server manages itself, in no manager's set (upstream's `stripMetaManager`).
fn stripped() -> FieldSet {
    let mut set = FieldSet::new();
    let f = |name: &str| PathElement::Field(name.to_string());
    set.insert(&[f("apiVersion")]);
    set.insert(&[f("kind")]);
    set.insert(&[f("metadata")]);
    for field in [
        "name",
        "namespace",
        "creationTimestamp",
        "selfLink",
        "uid",
        "clusterName",
        "generation",
        "managedFields",
        "resourceVersion",
    ] {
        set.insert(&[f("metadata"), f(field)]);
    }
    set
}

/// Sets `new`'s `managedFields` after an `Update` by `writer`: `live` is the object as stored
/// before the write (the kind's zero object on create, see [`PatchSchema::zero`]), `new` the
/// object as the request made it, with the scheme's defaults but before the kind's create or
/// update rules (upstream tracks a write before `PrepareForCreate`/`PrepareForUpdate`), `sent`
/// the `managedFields` the request's object carried, if any.
///
/// As upstream: a write to a subresource ignores what it sent; an empty list (or one empty
/// entry) resets the field, which then stays unset; a sent list that cannot be read, or an
/// empty one on a create, is replaced by the live object's; an object whose live
/// `managedFields` is empty on update is no longer tracked.
pub fn track_update(
    live: &Value,
    new: &mut Value,
    sent: Option<&Value>,
    schema: &PatchSchema,
    writer: &Writer<'_>,
) {
    let managed = match sent {
        _ if !writer.subresource.is_empty() => entries_of(live),
        Some(sent) if is_reset(sent) => Vec::new(),
        Some(sent) => match decode(sent) {
            Ok(entries) if !entries.is_empty() => entries,
            _ => entries_of(live),
        },
        None => entries_of(live),
    };
    let creating = live.pointer("/metadata/uid").is_none();
    let managed = if managed.is_empty() && !creating {
        Vec::new()
    } else {
        updated(live, new, managed, schema, writer)
    };
    set_entries(new, &managed);
}

/// Writes `entries` into `obj`'s metadata (no field when there are none).
pub fn set_entries(obj: &mut Value, entries: &[Entry]) {
    let meta = crate::meta::object::metadata_mut(obj);
    if entries.is_empty() {
        meta.remove("managedFields");
    } else {
        meta.insert("managedFields".into(), encode(entries));
    }
}

fn updated(
    live: &Value,
    new: &Value,
    mut managed: Vec<Entry>,
    schema: &PatchSchema,
    writer: &Writer<'_>,
) -> Vec<Entry> {
    let mut live = live.clone();
    crate::meta::object::metadata_mut(&mut live).remove("managedFields");
    let mut new = new.clone();
    crate::meta::object::metadata_mut(&mut new).remove("managedFields");
    let changes = compare(&live, &new, schema.root());
    let changed = changes.modified.union(&changes.added);
    let strip = stripped();
    for entry in &mut managed {
        entry.fields = entry
            .fields
            .difference(&changed)
            .difference(&changes.removed)
            .difference(&strip);
    }
    managed.retain(|e| !e.fields.is_empty());
    let mine = changed.difference(&strip);
    if !mine.is_empty() {
        let entry = Entry {
            manager: writer.manager.to_string(),
            operation: UPDATE.to_string(),
            api_version: writer.api_version.clone(),
            time: Some(writer.now.clone()),
            subresource: writer.subresource.to_string(),
            fields: mine,
        };
        match managed.iter_mut().find(|e| e.same_manager(&entry)) {
            Some(previous) => {
                previous.fields = previous.fields.union(&entry.fields);
                previous.time = entry.time;
            }
            None => managed.push(entry),
        }
    }
    cap_update_managers(&mut managed);
    managed
}

/// Merges the oldest `Update` entries into one `ancient-changes` entry until at most
/// [`MAX_UPDATE_MANAGERS`] are left (upstream's `capManagersManager`).
fn cap_update_managers(managed: &mut Vec<Entry>) {
    let mut updaters: Vec<usize> = (0..managed.len())
        .filter(|&i| managed[i].operation == UPDATE)
        .collect();
    if updaters.len() <= MAX_UPDATE_MANAGERS {
        return;
    }
    updaters.sort_by(|&i, &j| {
        let (p, q) = (&managed[i], &managed[j]);
        p.seconds()
            .cmp(&q.seconds())
            .then(p.manager.cmp(&q.manager))
    });
    let excess = updaters.len() - MAX_UPDATE_MANAGERS;
    // The oldest `excess + 1` entries become one.
    let merged: Vec<usize> = updaters[..=excess].to_vec();
    let mut bucket = Entry {
        manager: ANCIENT_CHANGES.to_string(),
        operation: UPDATE.to_string(),
        api_version: managed[merged[0]].api_version.clone(),
        time: None,
        subresource: String::new(),
        fields: FieldSet::new(),
    };
    for &i in &merged {
        bucket.fields = bucket.fields.union(&managed[i].fields);
        bucket.time.clone_from(&managed[i].time);
    }
    let mut index = 0;
    managed.retain(|_| {
        let keep = !merged.contains(&index);
        index += 1;
        keep
    });
    match managed.iter_mut().find(|e| e.same_manager(&bucket)) {
        Some(existing) => {
            existing.fields = existing.fields.union(&bucket.fields);
            existing.time = bucket.time;
        }
        None => managed.push(bucket),
    }
}

#[cfg(test)]
mod tests;
