//! The Secret kind (core/v1, namespaced): as upstream's `pkg/registry/core/secret`: `stringData`
//! folded into `data` on every write, type `Opaque` by default, the keys each built-in type
//! requires, the 1 MiB bound, `type` immutable, `immutable` as for ConfigMaps, and `type` a
//! selectable field.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::ByteString;
use serde_json::{json, Value};

use super::configmaps::{immutable_errors, key_errors, MAX_SIZE};
use super::decode::{decode_typed, Decoded};
use super::{
    age, column, default_field_value, field_error, FieldError, ResourceInfo, TypedStrategy,
    AGE_DESCRIPTION, NAME_DESCRIPTION,
};
use crate::meta::{object, ApiError};

static INFO: ResourceInfo = ResourceInfo {
    group: "",
    version: "v1",
    kind: "Secret",
    plural: "secrets",
    singular: "secret",
    short_names: &[],
    categories: &[],
    namespaced: true,
    subresources: &[],
};

pub fn info() -> &'static ResourceInfo {
    &INFO
}

/// What a redacted value prints as in errors (upstream never echoes secret contents).
const REDACTED: &str = "<secret contents redacted>";

pub struct SecretStrategy;

/// `stringData` written into `data` (it wins on a shared key) and dropped, as upstream's
/// conversion does; the type defaults to `Opaque`.
fn fold_string_data(secret: &mut Secret) {
    if let Some(strings) = secret.string_data.take() {
        let data = secret.data.get_or_insert_with(BTreeMap::new);
        for (key, value) in strings {
            data.insert(key, ByteString(value.into_bytes()));
        }
    }
    if secret.type_.as_deref().is_none_or(str::is_empty) {
        secret.type_ = Some("Opaque".to_string());
    }
}

/// The keys a built-in Secret type requires (upstream `ValidateSecret`).
fn type_errors(secret: &Secret) -> Vec<FieldError> {
    let data = secret.data.clone().unwrap_or_default();
    let has = |key: &str| data.contains_key(key);
    let required = |key: &str| FieldError::required(format!("data[{key}]"), "");
    let json_errors = |key: &str| -> Vec<FieldError> {
        match data.get(key) {
            None => vec![required(key)],
            Some(bytes) => match serde_json::from_slice::<serde_json::Map<String, Value>>(&bytes.0)
            {
                Ok(_) => Vec::new(),
                Err(e) => vec![FieldError::invalid(
                    format!("data[{key}]"),
                    REDACTED,
                    e.to_string(),
                )],
            },
        }
    };
    match secret.type_.as_deref().unwrap_or("Opaque") {
        "kubernetes.io/service-account-token" => {
            let named = secret
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("kubernetes.io/service-account.name"))
                .is_some_and(|n| !n.is_empty());
            if named {
                Vec::new()
            } else {
                vec![FieldError::required(
                    "metadata.annotations[kubernetes.io/service-account.name]",
                    "",
                )]
            }
        }
        "kubernetes.io/dockercfg" => json_errors(".dockercfg"),
        "kubernetes.io/dockerconfigjson" => json_errors(".dockerconfigjson"),
        "kubernetes.io/basic-auth" if !has("username") && !has("password") => {
            vec![required("username"), required("password")]
        }
        "kubernetes.io/ssh-auth" if data.get("ssh-privatekey").is_none_or(|k| k.0.is_empty()) => {
            vec![required("ssh-privatekey")]
        }
        "kubernetes.io/tls" => ["tls.crt", "tls.key"]
            .into_iter()
            .filter(|k| !has(k))
            .map(required)
            .collect(),
        _ => Vec::new(),
    }
}

impl TypedStrategy for SecretStrategy {
    type Object = Secret;

    fn info(&self) -> &'static ResourceInfo {
        &INFO
    }

    fn decode(&self, body: Value) -> Result<Decoded, ApiError> {
        decode_typed::<Secret>(&INFO, body, |_| Ok(()))
    }

    fn admit_create(&self, secret: &mut Secret) -> Result<(), ApiError> {
        fold_string_data(secret);
        Ok(())
    }

    fn apply_scheme_defaults(&self, secret: &mut Secret) {
        fold_string_data(secret);
    }

    fn validate(&self, secret: &Secret) -> Vec<FieldError> {
        let mut errors = field_error::validate_object_meta(
            &secret.metadata,
            true,
            field_error::name_is_dns_subdomain,
        );
        let data = secret.data.clone().unwrap_or_default();
        errors.extend(key_errors("data", data.keys()));
        let size: usize = data.values().map(|v| v.0.len()).sum();
        if size > MAX_SIZE {
            errors.push(FieldError::too_long("data", MAX_SIZE));
        }
        errors.extend(type_errors(secret));
        errors
    }

    fn prepare_for_update(&self, new: &mut Secret, _old: &Secret) {
        fold_string_data(new);
    }

    /// Secrets have no status subresource; the front door never routes one here.
    fn prepare_for_status_update(&self, new: &mut Secret, old: &Secret) {
        new.clone_from(old);
    }

    fn validate_update(&self, new: &Secret, old: &Secret) -> Vec<FieldError> {
        let mut errors = field_error::validate_object_meta_update(&new.metadata, &old.metadata);
        if new.type_ != old.type_ {
            errors.push(FieldError::invalid(
                "type",
                new.type_.clone().unwrap_or_default(),
                "field is immutable",
            ));
        }
        errors.extend(immutable_errors(
            old.immutable,
            new.immutable,
            &[("data", new.data != old.data)],
        ));
        errors.extend(self.validate(new));
        errors
    }

    fn selectable_fields(&self) -> &'static [&'static str] {
        &["metadata.name", "metadata.namespace", "type"]
    }

    fn field_value(&self, obj: &Value, field: &str) -> Option<String> {
        match field {
            "type" => Some(obj["type"].as_str().unwrap_or("").to_string()),
            _ => default_field_value(&INFO, obj, field),
        }
    }

    fn column_definitions(&self) -> Value {
        json!([
            column("Name", "string", "name", NAME_DESCRIPTION, 0),
            column("Type", "string", "", "Used to facilitate programmatic handling of secret data. More info: https://kubernetes.io/docs/concepts/configuration/secret/#secret-types", 0),
            column("Data", "string", "", "Data contains the secret data. Each key must consist of alphanumeric characters, '-', '_' or '.'. The serialized form of the secret data is a base64 encoded string, representing the arbitrary (possibly non-string) data value here. Described in https://tools.ietf.org/html/rfc4648#section-4", 0),
            column("Age", "string", "", AGE_DESCRIPTION, 0),
        ])
    }

    fn row(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        vec![
            json!(object::name(obj)),
            json!(obj["type"].as_str().unwrap_or("")),
            json!(obj
                .get("data")
                .and_then(Value::as_object)
                .map_or(0, |m| m.len())),
            json!(age(obj, now)),
        ]
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn secret(v: Value) -> Secret {
        serde_json::from_value(v).unwrap()
    }

    fn messages(errors: &[FieldError]) -> Vec<String> {
        errors.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn string_data_is_folded_into_data_and_the_type_defaults() {
        let mut s = secret(json!({"metadata": {"name": "s", "namespace": "d"},
            "data": {"a": "MQ==", "b": "Mg=="}, "stringData": {"b": "two", "c": "three"}}));
        SecretStrategy.admit_create(&mut s).unwrap();
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(
            v["data"],
            json!({"a": "MQ==", "b": "dHdv", "c": "dGhyZWU="})
        );
        assert_eq!(v["type"], "Opaque");
        assert!(v.get("stringData").is_none());
    }

    #[test]
    fn each_built_in_type_requires_its_keys() {
        let check = |kind: &str, data: Value| {
            let s = secret(
                json!({"metadata": {"name": "s", "namespace": "d"}, "type": kind, "data": data}),
            );
            messages(&SecretStrategy.validate(&s))
        };
        assert_eq!(
            check("kubernetes.io/tls", json!({"tls.crt": "eA=="})),
            ["data[tls.key]: Required value"]
        );
        assert!(check("kubernetes.io/tls", json!({"tls.crt": "", "tls.key": ""})).is_empty());
        assert_eq!(
            check("kubernetes.io/basic-auth", json!({})),
            [
                "data[username]: Required value",
                "data[password]: Required value"
            ]
        );
        assert!(check("kubernetes.io/basic-auth", json!({"password": ""})).is_empty());
        assert_eq!(
            check("kubernetes.io/ssh-auth", json!({"ssh-privatekey": ""})),
            ["data[ssh-privatekey]: Required value"]
        );
        let not_json = check(
            "kubernetes.io/dockerconfigjson",
            json!({".dockerconfigjson": "bm9wZQ=="}),
        );
        assert_eq!(not_json.len(), 1);
        assert!(
            not_json[0].starts_with(
                "data[.dockerconfigjson]: Invalid value: \"<secret contents redacted>\""
            ),
            "{not_json:?}"
        );
        assert!(check(
            "kubernetes.io/dockerconfigjson",
            json!({".dockerconfigjson": "e30="})
        )
        .is_empty());
        assert_eq!(
            check("kubernetes.io/service-account-token", json!({})),
            ["metadata.annotations[kubernetes.io/service-account.name]: Required value"]
        );
        assert!(check("example.com/custom", json!({})).is_empty());
        assert_eq!(check("Opaque", json!({"bad key": ""})).len(), 1);
    }

    #[test]
    fn the_type_and_an_immutable_secret_do_not_change() {
        let old = secret(
            json!({"metadata": {"name": "s", "namespace": "d", "uid": "u", "resourceVersion": "1"},
            "type": "Opaque", "data": {"a": "MQ=="}, "immutable": true}),
        );
        let mut new = old.clone();
        new.type_ = Some("kubernetes.io/tls".into());
        new.data = Some(BTreeMap::new());
        let got = messages(&SecretStrategy.validate_update(&new, &old));
        assert!(
            got.contains(
                &"type: Invalid value: \"kubernetes.io/tls\": field is immutable".to_string()
            ),
            "{got:?}"
        );
        assert!(
            got.contains(
                &"data: Forbidden: field is immutable when `immutable` is set".to_string()
            ),
            "{got:?}"
        );
    }
}
