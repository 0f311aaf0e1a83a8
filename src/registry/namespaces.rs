//! The Namespace kind (cluster-scoped): the four namespaces every cluster starts with.

use k8s_openapi::api::core::v1::Namespace;
use serde_json::{json, Value};

use super::decode::{decode_as, Decoded};
use super::{
    age, column, field_error, FieldError, ResourceInfo, TypedStrategy, AGE_DESCRIPTION,
    NAME_DESCRIPTION,
};
use crate::meta::patch::{generic_patch_schema, PatchSchema};
use crate::meta::{object, ApiError};

static INFO: ResourceInfo = ResourceInfo {
    group: "",
    version: "v1",
    kind: "Namespace",
    plural: "namespaces",
    singular: "namespace",
    short_names: &["ns"],
    categories: &[],
    namespaced: false,
    subresources: &["status", "finalize"],
};

/// The namespaces kube-apiserver creates at start, and which may never be deleted (but
/// `kube-node-lease`, which upstream lets go).
pub const SYSTEM: [&str; 4] = ["default", "kube-system", "kube-public", "kube-node-lease"];
pub const UNDELETABLE: [&str; 3] = ["default", "kube-system", "kube-public"];

pub fn info() -> &'static ResourceInfo {
    &INFO
}

/// A namespace as the apiserver bootstraps it.
pub fn bootstrap(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
}

/// Creates the namespaces every cluster has ([`SYSTEM`]) where they are missing, as
/// kube-apiserver's system-namespaces controller does at start.
pub async fn bootstrap_system(
    storage: &dyn crate::storage::Storage,
    prefix: &str,
) -> Result<(), crate::storage::StorageError> {
    for name in SYSTEM {
        let key = crate::storage::object_key(prefix, INFO.plural, "", name);
        let mut obj = bootstrap(name);
        let meta = object::metadata_mut(&mut obj);
        meta.insert("uid".into(), uuid::Uuid::new_v4().to_string().into());
        meta.insert("creationTimestamp".into(), object::now_rfc3339().into());
        // Recorded as kube-apiserver's own create, as its system-namespaces controller's is.
        let mut tracked = obj.clone();
        set_name_label(&mut tracked);
        let schema = namespace_patch_schema();
        let writer = crate::meta::managed_fields::Writer {
            manager: "kube-apiserver",
            api_version: "v1".into(),
            subresource: "",
            now: object::now_rfc3339(),
        };
        crate::meta::managed_fields::track_update(
            &schema.zero(),
            &mut tracked,
            None,
            &schema,
            &writer,
        );
        set_create_defaults(&mut obj);
        if let Some(entries) = tracked.pointer("/metadata/managedFields") {
            object::metadata_mut(&mut obj).insert("managedFields".into(), entries.clone());
        }
        match storage.create(&key, obj, None).await {
            Ok(_) | Err(crate::storage::StorageError::AlreadyExists(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Deletes a namespace as upstream's namespace store does: the namespace is marked
/// (deletionTimestamp, `status.phase: Terminating`) and stays while its `kubernetes` finalizer
/// is there; [`super::namespace_finalizer`] empties it and then lets it go. The protected
/// namespaces are refused with NamespaceLifecycle's 403, a namespace already terminating
/// with upstream's 409.
pub async fn delete(
    store: &super::Store,
    name: &str,
    options: &super::DeleteOptions,
) -> Result<(Value, bool), ApiError> {
    let gr = INFO.group_resource();
    if UNDELETABLE.contains(&name) {
        return Err(ApiError::forbidden(
            gr,
            name,
            "this namespace may not be deleted",
        ));
    }
    let current = store.get("", name).await?;
    if current.pointer("/metadata/deletionTimestamp").is_some() {
        return Err(ApiError::conflict(
            gr,
            name,
            "The system is ensuring all content is removed from this namespace.  Upon completion, this namespace will automatically be purged by the system.",
        ));
    }
    store.delete("", name, options).await
}

pub struct NamespaceStrategy;

/// The scheme's default of a namespace (upstream `SetDefaults_Namespace`): its name label.
fn set_name_label(obj: &mut Value) {
    let name = object::name(obj).to_string();
    let meta = object::metadata_mut(obj);
    let labels = meta.entry("labels").or_insert_with(|| json!({}));
    if let Some(labels) = labels.as_object_mut() {
        labels.insert("kubernetes.io/metadata.name".into(), json!(name));
    }
}

/// What a new namespace gets: its name label, the `kubernetes` finalizer and phase `Active`.
fn set_create_defaults(obj: &mut Value) {
    set_name_label(obj);
    obj["spec"] = json!({"finalizers": ["kubernetes"]});
    obj["status"] = json!({"phase": "Active"});
}

impl TypedStrategy for NamespaceStrategy {
    type Object = Value;

    fn info(&self) -> &'static ResourceInfo {
        &INFO
    }

    fn decode(&self, body: Value) -> Result<Decoded, ApiError> {
        decode_as::<Namespace>(&INFO, body)
    }

    fn patch_schema(&self) -> PatchSchema {
        namespace_patch_schema()
    }

    fn apply_scheme_defaults(&self, obj: &mut Value) {
        set_name_label(obj);
    }

    fn admit_create(&self, obj: &mut Value) -> Result<(), ApiError> {
        set_create_defaults(obj);
        Ok(())
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let mut errors = super::validate_meta(obj, false, field_error::name_is_dns_label);
        if object::name(obj).is_empty() && errors.is_empty() {
            errors.push(FieldError::required(
                "metadata.name",
                "name or generateName is required",
            ));
        }
        errors
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        new["status"] = old.get("status").cloned().unwrap_or(json!({}));
        let name = object::name(old).to_string();
        let meta = object::metadata_mut(new);
        let labels = meta.entry("labels").or_insert_with(|| json!({}));
        if let Some(labels) = labels.as_object_mut() {
            labels.insert("kubernetes.io/metadata.name".into(), json!(name));
        }
    }

    fn prepare_for_status_update(&self, new: &mut Value, old: &Value) {
        super::keep_all_but_status(new, old);
    }

    fn selectable_fields(&self) -> &'static [&'static str] {
        &["metadata.name", "status.phase"]
    }

    fn field_value(&self, obj: &Value, field: &str) -> Option<String> {
        match field {
            "status.phase" => Some(
                obj.pointer("/status/phase")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
            ),
            _ => super::default_field_value(&INFO, obj, field),
        }
    }

    fn column_definitions(&self) -> Value {
        json!([
            column("Name", "string", "name", NAME_DESCRIPTION, 0),
            column("Status", "string", "", "The status of the namespace", 0),
            column("Age", "string", "", AGE_DESCRIPTION, 0),
        ])
    }

    fn row(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        vec![
            json!(object::name(obj)),
            json!(obj
                .pointer("/status/phase")
                .and_then(Value::as_str)
                .unwrap_or("")),
            json!(age(obj, now)),
        ]
    }
}

/// Patch metadata for Namespaces: ObjectMeta plus `status.conditions` merged by `type`.
pub fn namespace_patch_schema() -> PatchSchema {
    generic_patch_schema()
        .merge_list("status.conditions", "type")
        .zero_object(json!({"metadata": {"creationTimestamp": null}, "spec": {}, "status": {}}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::patch::ListStrategy;

    #[test]
    fn a_strategic_patch_merges_namespace_conditions_by_type() {
        let schema = NamespaceStrategy.patch_schema();
        assert_eq!(
            schema.list_strategy("status.conditions"),
            ListStrategy::MergeByKey("type".into())
        );
        assert_eq!(
            schema.list_strategy("metadata.finalizers"),
            ListStrategy::MergePrimitives
        );
    }
}
