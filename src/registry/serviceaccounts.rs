//! The ServiceAccount kind (core/v1, namespaced): an identity for the Pods that run as it, as
//! upstream's `pkg/registry/core/serviceaccount` keeps it: names are DNS subdomains, secret
//! references keep only their names, and setting the deprecated
//! `kubernetes.io/enforce-mountable-secrets` annotation draws upstream's warning. Its `token`
//! subresource (the TokenRequest API) is served by the API server's token issuer.

use k8s_openapi::api::core::v1::{ObjectReference, ServiceAccount};
use serde_json::{json, Value};

use super::decode::{decode_typed, Decoded};
use super::{
    age, column, field_error, FieldError, ResourceInfo, TypedStrategy, AGE_DESCRIPTION,
    NAME_DESCRIPTION,
};
use crate::meta::{object, ApiError};

static INFO: ResourceInfo = ResourceInfo {
    group: "",
    version: "v1",
    kind: "ServiceAccount",
    plural: "serviceaccounts",
    singular: "serviceaccount",
    short_names: &["sa"],
    categories: &[],
    namespaced: true,
    subresources: &["token"],
};

pub fn info() -> &'static ResourceInfo {
    &INFO
}

/// The account every namespace gets, and the one a Pod runs as when it names none.
pub const DEFAULT: &str = "default";

const ENFORCE_MOUNTABLE_SECRETS: &str = "kubernetes.io/enforce-mountable-secrets";

/// A secret reference keeps its name only (upstream `cleanSecretReferences`).
fn clean_secret_references(sa: &mut ServiceAccount) {
    for secret in sa.secrets.iter_mut().flatten() {
        *secret = ObjectReference {
            name: secret.name.take(),
            ..ObjectReference::default()
        };
    }
}

fn sets_enforce_mountable_secrets(new: &ServiceAccount, old: Option<&ServiceAccount>) -> bool {
    let has = |sa: &ServiceAccount| {
        sa.metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key(ENFORCE_MOUNTABLE_SECRETS))
    };
    has(new) && !old.is_some_and(has)
}

fn enforce_mountable_secrets_warning() -> Vec<String> {
    vec![format!(
        "metadata.annotations[{ENFORCE_MOUNTABLE_SECRETS}]: deprecated in v1.32+; prefer separate namespaces to isolate access to mounted secrets"
    )]
}

pub struct ServiceAccountStrategy;

impl TypedStrategy for ServiceAccountStrategy {
    type Object = ServiceAccount;

    fn info(&self) -> &'static ResourceInfo {
        &INFO
    }

    fn decode(&self, body: Value) -> Result<Decoded, ApiError> {
        decode_typed::<ServiceAccount>(&INFO, body, |_| Ok(()))
    }

    fn admit_create(&self, sa: &mut ServiceAccount) -> Result<(), ApiError> {
        clean_secret_references(sa);
        Ok(())
    }

    fn validate(&self, sa: &ServiceAccount) -> Vec<FieldError> {
        field_error::validate_object_meta(&sa.metadata, true, field_error::name_is_dns_subdomain)
    }

    fn warnings_on_create(&self, sa: &ServiceAccount) -> Vec<String> {
        if sets_enforce_mountable_secrets(sa, None) {
            enforce_mountable_secrets_warning()
        } else {
            Vec::new()
        }
    }

    fn prepare_for_update(&self, new: &mut ServiceAccount, _old: &ServiceAccount) {
        clean_secret_references(new);
    }

    /// ServiceAccounts have no status subresource; the front door never routes one here.
    fn prepare_for_status_update(&self, new: &mut ServiceAccount, old: &ServiceAccount) {
        new.clone_from(old);
    }

    fn validate_update(&self, new: &ServiceAccount, old: &ServiceAccount) -> Vec<FieldError> {
        let mut errors = field_error::validate_object_meta_update(&new.metadata, &old.metadata);
        errors.extend(self.validate(new));
        errors
    }

    fn warnings_on_update(&self, new: &ServiceAccount, old: &ServiceAccount) -> Vec<String> {
        if sets_enforce_mountable_secrets(new, Some(old)) {
            enforce_mountable_secrets_warning()
        } else {
            Vec::new()
        }
    }

    fn allow_unconditional_update(&self) -> bool {
        true
    }

    fn column_definitions(&self) -> Value {
        json!([
            column("Name", "string", "name", NAME_DESCRIPTION, 0),
            column("Secrets", "string", "", "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use. Pods are only limited to this list if this service account has a \"kubernetes.io/enforce-mountable-secrets\" annotation set to \"true\". The \"kubernetes.io/enforce-mountable-secrets\" annotation is deprecated since v1.32. Prefer separate namespaces to isolate access to mounted secrets. This field should not be used to find auto-generated service account token secrets for use outside of pods. Instead, tokens can be requested directly using the TokenRequest API, or service account token secrets can be manually created. More info: https://kubernetes.io/docs/concepts/configuration/secret", 0),
            column("Age", "string", "", AGE_DESCRIPTION, 0),
        ])
    }

    fn row(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let secrets = obj
            .get("secrets")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        vec![
            json!(object::name(obj)),
            json!(secrets),
            json!(age(obj, now)),
        ]
    }
}

/// Stores the `default` account of `namespace` as the controller would, for registries
/// that run without a controller manager (the registry's own tests).
#[cfg(test)]
pub(crate) async fn seed_default(
    storage: &dyn crate::storage::Storage,
    prefix: &str,
    namespace: &str,
) -> Result<(), crate::storage::StorageError> {
    let key = crate::storage::object_key(prefix, INFO.plural, namespace, DEFAULT);
    let account = json!({"apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": {"name": DEFAULT, "namespace": namespace,
            "uid": uuid::Uuid::new_v4().to_string(), "creationTimestamp": object::now_rfc3339()}});
    storage.create(&key, account, None).await.map(|_| ())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sa(v: Value) -> ServiceAccount {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn secret_references_keep_their_names_only() {
        let s = ServiceAccountStrategy;
        let mut account = sa(json!({"metadata": {"name": "ci", "namespace": "d"},
            "secrets": [{"name": "token", "namespace": "elsewhere", "uid": "u", "kind": "Secret"}]}));
        s.admit_create(&mut account).unwrap();
        assert_eq!(
            serde_json::to_value(&account.secrets).unwrap(),
            json!([{"name": "token"}])
        );
        let old = account.clone();
        let mut new = sa(json!({"metadata": {"name": "ci", "namespace": "d"},
            "secrets": [{"name": "other", "fieldPath": "x"}]}));
        s.prepare_for_update(&mut new, &old);
        assert_eq!(
            serde_json::to_value(&new.secrets).unwrap(),
            json!([{"name": "other"}])
        );
    }

    #[test]
    fn names_are_dns_subdomains_and_the_deprecated_annotation_warns_once() {
        let s = ServiceAccountStrategy;
        let bad = sa(json!({"metadata": {"name": "Not_Valid", "namespace": "d"}}));
        let errors: Vec<String> = s.validate(&bad).iter().map(ToString::to_string).collect();
        assert!(
            errors.iter().any(|e| e.starts_with(
                "metadata.name: Invalid value: \"Not_Valid\": a lowercase RFC 1123 subdomain"
            )),
            "{errors:?}"
        );
        let annotated = sa(json!({"metadata": {"name": "a", "namespace": "d",
            "annotations": {ENFORCE_MOUNTABLE_SECRETS: "true"}}}));
        assert_eq!(s.warnings_on_create(&annotated).len(), 1);
        assert!(s.warnings_on_update(&annotated, &annotated).is_empty());
        let plain = sa(json!({"metadata": {"name": "a", "namespace": "d"}}));
        assert_eq!(s.warnings_on_update(&annotated, &plain).len(), 1);
        assert!(s.warnings_on_create(&plain).is_empty());
    }
}
