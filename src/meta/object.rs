//! Helpers for reading and writing the `metadata` of objects held as JSON values.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// The finalizer that has the garbage collector orphan an object's dependents before the
/// object goes (upstream `metav1.FinalizerOrphanDependents`).
pub const FINALIZER_ORPHAN: &str = "orphan";
/// The finalizer that keeps an object until the garbage collector has deleted its dependents
/// (upstream `metav1.FinalizerDeleteDependents`).
pub const FINALIZER_FOREGROUND: &str = "foregroundDeletion";

/// A string field of `metadata`, or "" when absent. Read map by map: a JSON pointer splits
/// and unescapes its path on every call, and these are read for every object a list scans.
fn metadata_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// `metadata.name`, or "" when absent.
pub fn name(obj: &Value) -> &str {
    metadata_str(obj, "name")
}

/// `metadata.namespace`, or "" when absent.
pub fn namespace(obj: &Value) -> &str {
    metadata_str(obj, "namespace")
}

/// `metadata.uid`, or "" when absent.
pub fn uid(obj: &Value) -> &str {
    metadata_str(obj, "uid")
}

/// `metadata.resourceVersion`, or "" when absent.
pub fn resource_version(obj: &Value) -> &str {
    metadata_str(obj, "resourceVersion")
}

/// The value of label `key`, or None when absent or not a string (as [`labels`] skips it).
pub fn label<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.get("metadata")?.get("labels")?.get(key)?.as_str()
}

/// `metadata.labels` as a sorted map; non-string values are skipped.
pub fn labels(obj: &Value) -> BTreeMap<String, String> {
    obj.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// The `metadata` map, created if missing. Objects that are not JSON maps get replaced by one.
pub fn metadata_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = Value::Object(Map::new());
    }
    let root = obj.as_object_mut().expect("obj was made an object above");
    let meta = root
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    meta.as_object_mut()
        .expect("metadata was made an object above")
}

pub fn set_resource_version(obj: &mut Value, rev: i64) {
    metadata_mut(obj).insert("resourceVersion".into(), Value::String(rev.to_string()));
}

/// The current time as Kubernetes writes it: RFC 3339, whole seconds, UTC.
pub fn now_rfc3339() -> String {
    format_time(jiff::Timestamp::now())
}

pub fn format_time(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The current time with microseconds, as `MicroTime` fields (`eventTime`, lease times) carry it.
pub fn now_micro_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// This machine's architecture as Go (and so Kubernetes) names it.
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

/// Parses a resourceVersion query parameter: "" means unset; anything else must be a number.
pub fn parse_resource_version(rv: &str) -> Result<Option<i64>, String> {
    if rv.is_empty() {
        return Ok(None);
    }
    rv.parse::<i64>()
        .ok()
        .filter(|v| *v >= 0)
        .map(Some)
        .ok_or_else(|| format!("invalid resource version {rv:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn labels_skip_non_strings() {
        let obj = json!({"metadata": {"labels": {"a": "1", "b": 2}}});
        let labels = labels(&obj);
        assert_eq!(labels.len(), 1);
        assert_eq!(labels["a"], "1");
    }

    #[test]
    fn metadata_mut_repairs_non_object_metadata() {
        let mut obj = json!({"metadata": 3});
        set_resource_version(&mut obj, 42);
        assert_eq!(resource_version(&obj), "42");
    }

    #[test]
    fn resource_versions_must_be_numbers() {
        assert_eq!(parse_resource_version(""), Ok(None));
        assert_eq!(parse_resource_version("17"), Ok(Some(17)));
        assert!(parse_resource_version("abc").is_err());
        assert!(parse_resource_version("-3").is_err());
    }
}
