//! The ConfigMap kind (core/v1, namespaced): settings for Pods, validated as upstream's
//! `ValidateConfigMap` (keys, the 1 MiB bound, keys in both `data` and `binaryData`) and
//! `ValidateConfigMapUpdate` (`immutable` freezes the contents and itself).

use k8s_openapi::api::core::v1::ConfigMap;
use serde_json::{json, Value};

use super::decode::{decode_typed, Decoded};
use super::{
    age, column, field_error, FieldError, ResourceInfo, TypedStrategy, AGE_DESCRIPTION,
    NAME_DESCRIPTION,
};
use crate::meta::validation::is_config_map_key;
use crate::meta::{object, ApiError};

/// The most a ConfigMap's or Secret's values may hold together (upstream `MaxSecretSize`).
pub const MAX_SIZE: usize = 1024 * 1024;

static INFO: ResourceInfo = ResourceInfo {
    group: "",
    version: "v1",
    kind: "ConfigMap",
    plural: "configmaps",
    singular: "configmap",
    short_names: &["cm"],
    categories: &[],
    namespaced: true,
    subresources: &[],
};

pub fn info() -> &'static ResourceInfo {
    &INFO
}

/// Errors for keys that are not valid config keys, at `<path>[<key>]`.
pub fn key_errors<'a>(path: &str, keys: impl IntoIterator<Item = &'a String>) -> Vec<FieldError> {
    keys.into_iter()
        .flat_map(|key| {
            is_config_map_key(key)
                .into_iter()
                .map(move |msg| FieldError::invalid(format!("{path}[{key}]"), key.as_str(), msg))
        })
        .collect()
}

/// The `immutable` rules shared by ConfigMaps and Secrets: once set, neither it nor the
/// contents may change.
pub fn immutable_errors(
    old_immutable: Option<bool>,
    new_immutable: Option<bool>,
    changed: &[(&str, bool)],
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if old_immutable != Some(true) {
        return errors;
    }
    const WHY: &str = "field is immutable when `immutable` is set";
    if new_immutable != Some(true) {
        errors.push(FieldError::forbidden("immutable", WHY));
    }
    for (field, differs) in changed {
        if *differs {
            errors.push(FieldError::forbidden(*field, WHY));
        }
    }
    errors
}

pub struct ConfigMapStrategy;

impl TypedStrategy for ConfigMapStrategy {
    type Object = ConfigMap;

    fn info(&self) -> &'static ResourceInfo {
        &INFO
    }

    fn decode(&self, body: Value) -> Result<Decoded, ApiError> {
        decode_typed::<ConfigMap>(&INFO, body, |_| Ok(()))
    }

    fn validate(&self, cm: &ConfigMap) -> Vec<FieldError> {
        let mut errors = field_error::validate_object_meta(
            &cm.metadata,
            true,
            field_error::name_is_dns_subdomain,
        );
        let data = cm.data.clone().unwrap_or_default();
        let binary = cm.binary_data.clone().unwrap_or_default();
        errors.extend(key_errors("data", data.keys()));
        errors.extend(key_errors("binaryData", binary.keys()));
        for key in binary.keys().filter(|k| data.contains_key(*k)) {
            errors.push(FieldError::invalid(
                format!("data[{key}]"),
                key.as_str(),
                "duplicate of key present in binaryData",
            ));
        }
        let size: usize = data.values().map(String::len).sum::<usize>()
            + binary.values().map(|b| b.0.len()).sum::<usize>();
        if size > MAX_SIZE {
            errors.push(FieldError::too_long("", MAX_SIZE));
        }
        errors
    }

    fn validate_update(&self, new: &ConfigMap, old: &ConfigMap) -> Vec<FieldError> {
        let mut errors = field_error::validate_object_meta_update(&new.metadata, &old.metadata);
        errors.extend(immutable_errors(
            old.immutable,
            new.immutable,
            &[
                ("data", new.data != old.data),
                ("binaryData", new.binary_data != old.binary_data),
            ],
        ));
        errors.extend(self.validate(new));
        errors
    }

    fn prepare_for_update(&self, _new: &mut ConfigMap, _old: &ConfigMap) {}

    /// ConfigMaps have no status subresource; the front door never routes one here.
    fn prepare_for_status_update(&self, new: &mut ConfigMap, old: &ConfigMap) {
        new.clone_from(old);
    }

    fn column_definitions(&self) -> Value {
        json!([
            column("Name", "string", "name", NAME_DESCRIPTION, 0),
            column("Data", "string", "", "Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The keys stored in Data must not overlap with the keys in the BinaryData field, this is enforced during validation process.", 0),
            column("Age", "string", "", AGE_DESCRIPTION, 0),
        ])
    }

    fn row(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let count = |key: &str| {
            obj.get(key)
                .and_then(Value::as_object)
                .map_or(0, |m| m.len())
        };
        vec![
            json!(object::name(obj)),
            json!(count("data") + count("binaryData")),
            json!(age(obj, now)),
        ]
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn cm(v: Value) -> ConfigMap {
        serde_json::from_value(v).unwrap()
    }

    fn messages(errors: &[FieldError]) -> Vec<String> {
        errors.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn keys_sizes_and_duplicates_are_checked_as_upstream() {
        let s = ConfigMapStrategy;
        let ok = cm(json!({"metadata": {"name": "c", "namespace": "d"},
            "data": {"a.b-c_D": "1"}, "binaryData": {"bin": "AAE="}}));
        assert!(
            s.validate(&ok).is_empty(),
            "{:?}",
            messages(&s.validate(&ok))
        );
        let bad = cm(json!({"metadata": {"name": "c", "namespace": "d"},
            "data": {"a b": "1", "..x": "2", "dup": "3"}, "binaryData": {"dup": "AAE="}}));
        let got = messages(&s.validate(&bad));
        assert!(got.iter().any(|m| m.starts_with("data[a b]: Invalid value: \"a b\": a valid config key must consist of alphanumeric characters")), "{got:?}");
        assert!(
            got.iter()
                .any(|m| m == "data[..x]: Invalid value: \"..x\": must not start with '..'"),
            "{got:?}"
        );
        assert!(
            got.iter().any(|m| m
                == "data[dup]: Invalid value: \"dup\": duplicate of key present in binaryData"),
            "{got:?}"
        );
        let big = cm(json!({"metadata": {"name": "c", "namespace": "d"},
            "data": {"a": "x".repeat(MAX_SIZE), "b": "y"}}));
        let got = messages(&s.validate(&big));
        assert_eq!(got, [": Too long: must have at most 1048576 bytes"]);
    }

    #[test]
    fn an_immutable_config_map_keeps_its_data_and_its_flag() {
        let s = ConfigMapStrategy;
        let old = cm(
            json!({"metadata": {"name": "c", "namespace": "d", "uid": "u", "resourceVersion": "1"},
            "data": {"a": "1"}, "immutable": true}),
        );
        let mut same = old.clone();
        same.metadata.labels = Some([("x".to_string(), "y".to_string())].into());
        assert!(s.validate_update(&same, &old).is_empty());
        let mut changed = old.clone();
        changed.data = Some([("a".to_string(), "2".to_string())].into());
        changed.immutable = None;
        let got = messages(&s.validate_update(&changed, &old));
        assert_eq!(
            got,
            [
                "immutable: Forbidden: field is immutable when `immutable` is set",
                "data: Forbidden: field is immutable when `immutable` is set"
            ]
        );
    }
}
