//! Resources: one generic [`Store`] plus a [`Strategy`] per kind, as Kubernetes' registry does.
//!
//! The store does what every kind shares (keys, preconditions, resourceVersion checks,
//! selectors, graceful deletion, watches); a strategy holds what is particular to one kind
//! (decoding, defaulting, validation, which fields can be selected, how it prints as a Table).
//! A kind writes its rules as a [`TypedStrategy`] on its own type (the Pod on
//! `k8s_openapi`'s `Pod`, simpler kinds on JSON); the store calls them through [`Strategy`],
//! which converts once into the type and once back per request phase.
//! Mirrors `pkg/registry/core/pod/strategy.go` and `apiserver/pkg/registry/generic/registry`.

pub mod binding;
pub mod configmaps;
pub mod cronjobs;
pub mod decode;
pub mod deployments;
pub mod events;
pub mod eviction;
pub mod field_error;
pub mod jobs;
pub mod leases;
pub mod namespace_finalizer;
pub mod namespaces;
pub mod nodes;
pub mod pod;
pub mod pods;
pub mod podtemplates;
pub mod rbac;
pub mod replicasets;
pub mod secrets;
pub mod serviceaccounts;
mod store;
#[cfg(test)]
mod store_tests;
pub mod workloads;

use jiff::Timestamp;
use serde_json::Value;
use std::sync::Arc;

use crate::meta::patch::PatchSchema;
use crate::meta::ApiError;
pub use field_error::FieldError;
pub use store::{
    Admit, CreateOptions, DeleteOptions, FieldValidation, ListOptions, ListResult, Propagation,
    Registry, Store, Watch, WatchEvent, WatchOptions,
};

/// The largest request body accepted, as kube-apiserver's `MaxRequestBodyBytes`. It lives
/// here, below the HTTP layer, because the store names it too when etcd refuses a value.
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// Every kind rkube serves, in discovery order: adding a kind is a folder and a line here.
pub fn kinds(event_ttl: std::time::Duration) -> Vec<Arc<dyn Strategy>> {
    vec![
        Arc::new(namespaces::NamespaceStrategy),
        Arc::new(pods::PodStrategy),
        Arc::new(podtemplates::PodTemplateStrategy),
        Arc::new(configmaps::ConfigMapStrategy),
        Arc::new(secrets::SecretStrategy),
        Arc::new(serviceaccounts::ServiceAccountStrategy),
        Arc::new(deployments::DeploymentStrategy),
        Arc::new(replicasets::ReplicaSetStrategy),
        Arc::new(jobs::JobStrategy),
        Arc::new(cronjobs::CronJobStrategy),
        Arc::new(events::EventStrategy {
            ttl_secs: event_ttl.as_secs().max(1) as i64,
        }),
        Arc::new(nodes::NodeStrategy),
        Arc::new(leases::LeaseStrategy),
        Arc::new(rbac::ClusterRoleBindingStrategy),
        Arc::new(rbac::ClusterRoleStrategy),
        Arc::new(rbac::RoleBindingStrategy),
        Arc::new(rbac::RoleStrategy),
    ]
}

/// What discovery says about a resource, and what the store needs to name it in errors.
#[derive(Debug)]
pub struct ResourceInfo {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    pub namespaced: bool,
    /// Subresources served besides the main resource, e.g. `status`, `binding`.
    pub subresources: &'static [&'static str],
}

impl ResourceInfo {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    pub fn group_resource(&self) -> crate::meta::GroupResource<'static> {
        crate::meta::GroupResource {
            group: self.group,
            resource: self.plural,
        }
    }
}

/// The store's view of a kind: one call per request phase, on the stored JSON form. Every
/// [`TypedStrategy`] is one (the adapter below); the store never sees the typed object.
pub trait Strategy: Send + Sync {
    fn info(&self) -> &'static ResourceInfo;

    /// Turns a request body into the canonical stored form: decoded through the kind's type,
    /// so unknown fields drop out (and are reported) and every known field has its type.
    fn decode(&self, body: Value) -> Result<decode::Decoded, ApiError>;

    /// The create phase, after the store set uid, namespace, name and creationTimestamp: the
    /// kind's admission and defaults (a refusal is the request's error), validation (422) and
    /// the warnings the client gets.
    fn prepare_create(&self, obj: &mut Value) -> Result<Vec<String>, ApiError>;

    /// The decoded object with the scheme's defaults only (upstream applies them while
    /// decoding, before managed fields are computed; admission and the create rules come
    /// after): what a create's manager is recorded as having set.
    fn scheme_defaulted(&self, obj: &Value) -> Value;

    /// The update phase of a write to the main resource or to `status`: what the write may
    /// not change is reset from `old`, defaults are applied, the result is validated against
    /// `old` (422) and the warnings the client gets are returned.
    fn prepare_update(
        &self,
        new: &mut Value,
        old: &Value,
        target: UpdateTarget,
    ) -> Result<Vec<String>, ApiError>;

    /// The value of a selectable field, or None when the kind does not support selecting on it.
    fn field_value(&self, obj: &Value, field: &str) -> Option<String>;

    /// Every field [`Strategy::field_value`] answers for: what the watch cache keeps of each
    /// object for field selectors.
    fn selectable_fields(&self) -> &'static [&'static str];

    /// The grace period a delete gets: None deletes at once, Some(n) marks the object for
    /// deletion in n seconds and leaves it to its owner (the kubelet) to finish.
    fn delete_grace(&self, obj: &Value, requested: Option<i64>) -> Option<i64>;

    /// What happens to dependents when a delete names no propagation policy and the object
    /// carries no garbage-collection finalizer (upstream `DefaultGarbageCollectionPolicy`).
    fn default_garbage_collection_policy(&self) -> GarbageCollectionPolicy;

    fn patch_schema(&self) -> PatchSchema;

    /// How long objects of this kind live in etcd before expiring, if they expire at all.
    fn time_to_live(&self) -> Option<i64>;

    /// Admission of new objects that reads other kinds, built from their watch caches.
    fn create_admission(
        &self,
        sources: &store::AdmissionSources<'_>,
    ) -> Option<Arc<dyn store::CreateAdmission>>;

    /// Whether a replacement without a resourceVersion overwrites whatever is stored
    /// (upstream's `AllowUnconditionalUpdate`); when not, it is refused with 422.
    fn allow_unconditional_update(&self) -> bool;

    /// The Table `columnDefinitions` for this kind (priority 1 columns show with `-o wide`).
    fn column_definitions(&self) -> Value;

    /// One Table row's cells, in the order of [`Strategy::column_definitions`].
    fn row(&self, obj: &Value, now: Timestamp) -> Vec<Value>;
}

/// A kind's garbage-collection policy (upstream `rest.GarbageCollectionPolicy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GarbageCollectionPolicy {
    /// Dependents are deleted (in the background unless a delete asks for the foreground).
    DeleteDependents,
    /// Dependents are orphaned unless a delete asks otherwise.
    OrphanDependents,
    /// The kind takes no garbage-collection finalizers at all.
    Unsupported,
}

/// Which part of an object an update writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateTarget {
    /// The object itself (PUT or PATCH of the resource).
    Main,
    /// The `status` subresource.
    Status,
    /// A Pod's `ephemeralcontainers` subresource.
    EphemeralContainers,
}

/// The type a kind's strategy works on, and its one conversion from and to the stored JSON.
/// A kind whose rules are written on JSON uses [`Value`] itself, for which both are moves.
pub trait KindObject: Clone + Send + Sync + Sized + 'static {
    fn from_value(value: Value) -> Result<Self, serde_json::Error>;
    /// The typed form of a stored object that stays stored (the current object of an update).
    fn from_stored(value: &Value) -> Result<std::borrow::Cow<'_, Self>, serde_json::Error>;
    fn into_value(self) -> Result<Value, serde_json::Error>;
}

impl KindObject for Value {
    fn from_value(value: Value) -> Result<Self, serde_json::Error> {
        Ok(value)
    }
    fn from_stored(value: &Value) -> Result<std::borrow::Cow<'_, Self>, serde_json::Error> {
        Ok(std::borrow::Cow::Borrowed(value))
    }
    fn into_value(self) -> Result<Value, serde_json::Error> {
        Ok(self)
    }
}

/// A k8s-openapi type as a [`KindObject`]: converted through serde both ways.
macro_rules! typed_kind_object {
    ($($kind:ty),*) => {$(
        impl KindObject for $kind {
            fn from_value(value: Value) -> Result<Self, serde_json::Error> {
                serde_json::from_value(value)
            }
            fn from_stored(value: &Value) -> Result<std::borrow::Cow<'_, Self>, serde_json::Error> {
                serde::Deserialize::deserialize(value).map(std::borrow::Cow::Owned)
            }
            fn into_value(self) -> Result<Value, serde_json::Error> {
                serde_json::to_value(self)
            }
        }
    )*};
}

typed_kind_object!(
    k8s_openapi::api::core::v1::Pod,
    k8s_openapi::api::core::v1::PodTemplate,
    k8s_openapi::api::core::v1::ConfigMap,
    k8s_openapi::api::core::v1::Secret,
    k8s_openapi::api::core::v1::ServiceAccount,
    k8s_openapi::api::apps::v1::ReplicaSet,
    k8s_openapi::api::apps::v1::Deployment,
    k8s_openapi::api::batch::v1::Job,
    k8s_openapi::api::batch::v1::CronJob,
    k8s_openapi::api::rbac::v1::Role,
    k8s_openapi::api::rbac::v1::ClusterRole,
    k8s_openapi::api::rbac::v1::RoleBinding,
    k8s_openapi::api::rbac::v1::ClusterRoleBinding
);

/// The per-kind behaviour behind a [`Store`], on the kind's own type: upstream's
/// `RESTCreateStrategy`/`RESTUpdateStrategy` hooks. The store reaches it through
/// [`Strategy`], which converts the stored JSON to [`TypedStrategy::Object`] once per phase
/// and back once.
pub trait TypedStrategy: Send + Sync + 'static {
    type Object: KindObject;

    fn info(&self) -> &'static ResourceInfo;

    /// Bytes already parsed to JSON become the canonical stored form (see
    /// [`decode::decode_typed`]): unknown fields reported, wrong types refused, values
    /// written the one way the kind stores them.
    fn decode(&self, body: Value) -> Result<decode::Decoded, ApiError>;

    /// The kind's admission and defaults on create (upstream's admission chain and
    /// `PrepareForCreate`); a refusal (e.g. the Priority plugin's 403) is the request's answer.
    fn admit_create(&self, obj: &mut Self::Object) -> Result<(), ApiError> {
        let _ = obj;
        Ok(())
    }

    fn validate(&self, obj: &Self::Object) -> Vec<FieldError>;

    /// The scheme's defaults (upstream's `SetDefaults_*`, applied on decoding), without
    /// admission or the create rules.
    fn apply_scheme_defaults(&self, obj: &mut Self::Object) {
        let _ = obj;
    }

    /// Warnings about a valid new object, sent as `Warning:` headers (upstream
    /// `WarningsOnCreate`).
    fn warnings_on_create(&self, obj: &Self::Object) -> Vec<String> {
        let _ = obj;
        Vec::new()
    }

    /// Resets what a write of the main resource may not change (e.g. `status`) and applies
    /// the update defaults.
    fn prepare_for_update(&self, new: &mut Self::Object, old: &Self::Object);

    /// For writes through the `status` subresource: keeps all but the status (and what else
    /// the kind lets a status writer change) from `old`.
    fn prepare_for_status_update(&self, new: &mut Self::Object, old: &Self::Object);

    fn validate_update(&self, new: &Self::Object, old: &Self::Object) -> Vec<FieldError> {
        let _ = old;
        self.validate(new)
    }

    /// For writes through `ephemeralcontainers`, which only Pods serve (the front door answers
    /// 404 for a subresource a kind does not list): keeps all but what the subresource writes.
    fn prepare_for_ephemeral_containers_update(&self, new: &mut Self::Object, old: &Self::Object) {
        let _ = (new, old);
    }

    /// The validation of an `ephemeralcontainers` write (see above).
    fn validate_ephemeral_containers_update(
        &self,
        new: &Self::Object,
        old: &Self::Object,
    ) -> Vec<FieldError> {
        self.validate_update(new, old)
    }

    /// Warnings about a valid update, sent as `Warning:` headers (upstream
    /// `WarningsOnUpdate`); writes through `status` get none, as upstream's status strategies.
    fn warnings_on_update(&self, new: &Self::Object, old: &Self::Object) -> Vec<String> {
        let _ = (new, old);
        Vec::new()
    }

    /// The value of a selectable field, or None when the kind does not support selecting on it.
    fn field_value(&self, obj: &Value, field: &str) -> Option<String> {
        default_field_value(self.info(), obj, field)
    }

    /// See [`Strategy::selectable_fields`].
    fn selectable_fields(&self) -> &'static [&'static str] {
        default_selectable_fields(self.info())
    }

    /// See [`Strategy::delete_grace`].
    fn delete_grace(&self, obj: &Value, requested: Option<i64>) -> Option<i64> {
        let _ = (obj, requested);
        None
    }

    /// See [`Strategy::default_garbage_collection_policy`]: upstream's default for a kind
    /// without its own policy, and the policy of every version rkube serves (apps/v1
    /// ReplicaSets delete their dependents; only their retired versions orphaned them).
    fn default_garbage_collection_policy(&self) -> GarbageCollectionPolicy {
        GarbageCollectionPolicy::DeleteDependents
    }

    fn patch_schema(&self) -> PatchSchema {
        crate::meta::patch::generic_patch_schema()
    }

    fn create_admission(
        &self,
        sources: &store::AdmissionSources<'_>,
    ) -> Option<Arc<dyn store::CreateAdmission>> {
        let _ = sources;
        None
    }

    fn time_to_live(&self) -> Option<i64> {
        None
    }

    /// See [`Strategy::allow_unconditional_update`]: most kinds allow it.
    fn allow_unconditional_update(&self) -> bool {
        true
    }

    fn column_definitions(&self) -> Value {
        serde_json::json!([
            {"name": "Name", "type": "string", "format": "name", "description": NAME_DESCRIPTION, "priority": 0},
            {"name": "Created At", "type": "date", "format": "", "description": CREATED_DESCRIPTION, "priority": 0},
        ])
    }

    fn row(&self, obj: &Value, now: Timestamp) -> Vec<Value> {
        let _ = now;
        vec![
            Value::String(crate::meta::object::name(obj).to_string()),
            obj.pointer("/metadata/creationTimestamp")
                .cloned()
                .unwrap_or(Value::Null),
        ]
    }
}

/// The one adapter between the store and a kind: each phase converts the stored JSON to the
/// kind's type once, runs every hook of the phase on it, and converts the result back once.
impl<S: TypedStrategy> Strategy for S {
    fn info(&self) -> &'static ResourceInfo {
        TypedStrategy::info(self)
    }

    fn decode(&self, body: Value) -> Result<decode::Decoded, ApiError> {
        TypedStrategy::decode(self, body)
    }

    fn prepare_create(&self, obj: &mut Value) -> Result<Vec<String>, ApiError> {
        let name = crate::meta::object::name(obj).to_string();
        let mut typed = S::Object::from_value(std::mem::take(obj)).map_err(ApiError::internal)?;
        self.admit_create(&mut typed)?;
        let errors = self.validate(&typed);
        if !errors.is_empty() {
            return Err(store::invalid(self, &name, errors));
        }
        let warnings = self.warnings_on_create(&typed);
        *obj = typed.into_value().map_err(ApiError::internal)?;
        Ok(warnings)
    }

    fn scheme_defaulted(&self, obj: &Value) -> Value {
        let Ok(mut typed) = S::Object::from_value(obj.clone()) else {
            return obj.clone();
        };
        self.apply_scheme_defaults(&mut typed);
        typed.into_value().unwrap_or_else(|_| obj.clone())
    }

    fn prepare_update(
        &self,
        new: &mut Value,
        old: &Value,
        target: UpdateTarget,
    ) -> Result<Vec<String>, ApiError> {
        let name = crate::meta::object::name(old).to_string();
        let old = S::Object::from_stored(old).map_err(ApiError::internal)?;
        let mut typed = S::Object::from_value(std::mem::take(new)).map_err(ApiError::internal)?;
        let errors = match target {
            UpdateTarget::Main => {
                self.prepare_for_update(&mut typed, &old);
                self.validate_update(&typed, &old)
            }
            UpdateTarget::Status => {
                self.prepare_for_status_update(&mut typed, &old);
                self.validate_update(&typed, &old)
            }
            UpdateTarget::EphemeralContainers => {
                self.prepare_for_ephemeral_containers_update(&mut typed, &old);
                self.validate_ephemeral_containers_update(&typed, &old)
            }
        };
        if !errors.is_empty() {
            return Err(store::invalid(self, &name, errors));
        }
        let warnings = match target {
            UpdateTarget::Main => self.warnings_on_update(&typed, &old),
            UpdateTarget::Status | UpdateTarget::EphemeralContainers => Vec::new(),
        };
        *new = typed.into_value().map_err(ApiError::internal)?;
        Ok(warnings)
    }

    fn field_value(&self, obj: &Value, field: &str) -> Option<String> {
        TypedStrategy::field_value(self, obj, field)
    }

    fn selectable_fields(&self) -> &'static [&'static str] {
        TypedStrategy::selectable_fields(self)
    }

    fn delete_grace(&self, obj: &Value, requested: Option<i64>) -> Option<i64> {
        TypedStrategy::delete_grace(self, obj, requested)
    }

    fn default_garbage_collection_policy(&self) -> GarbageCollectionPolicy {
        TypedStrategy::default_garbage_collection_policy(self)
    }

    fn patch_schema(&self) -> PatchSchema {
        TypedStrategy::patch_schema(self)
    }

    fn create_admission(
        &self,
        sources: &store::AdmissionSources<'_>,
    ) -> Option<Arc<dyn store::CreateAdmission>> {
        TypedStrategy::create_admission(self, sources)
    }

    fn time_to_live(&self) -> Option<i64> {
        TypedStrategy::time_to_live(self)
    }

    fn allow_unconditional_update(&self) -> bool {
        TypedStrategy::allow_unconditional_update(self)
    }

    fn column_definitions(&self) -> Value {
        TypedStrategy::column_definitions(self)
    }

    fn row(&self, obj: &Value, now: Timestamp) -> Vec<Value> {
        TypedStrategy::row(self, obj, now)
    }
}

/// The status-subresource rule of a kind held as JSON: the stored object with the new
/// `status` (none if the write has none) and the writer's resourceVersion precondition.
pub fn keep_all_but_status(new: &mut Value, old: &Value) {
    let status = new.get("status").cloned();
    let mut merged = old.clone();
    match status {
        Some(status) => merged["status"] = status,
        None => {
            if let Some(obj) = merged.as_object_mut() {
                obj.remove("status");
            }
        }
    }
    for field in ["resourceVersion"] {
        if let Some(v) = new.pointer(&format!("/metadata/{field}")) {
            crate::meta::object::metadata_mut(&mut merged).insert(field.into(), v.clone());
        }
    }
    *new = merged;
}

/// A Table column definition.
pub fn column(name: &str, kind: &str, format: &str, description: &str, priority: u8) -> Value {
    serde_json::json!({"name": name, "type": kind, "format": format, "description": description, "priority": priority})
}

pub const NAME_DESCRIPTION: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
pub const CREATED_DESCRIPTION: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
pub const AGE_DESCRIPTION: &str = CREATED_DESCRIPTION;

/// Validates the `metadata` of an object held as JSON, with `name_fn` judging its name.
pub fn validate_meta(
    obj: &Value,
    namespaced: bool,
    name_fn: impl Fn(&str, bool) -> Vec<String>,
) -> Vec<FieldError> {
    let meta = obj
        .get("metadata")
        .cloned()
        .and_then(|m| serde_json::from_value(m).ok())
        .unwrap_or_default();
    field_error::validate_object_meta(&meta, namespaced, name_fn)
}

/// The fields [`default_field_value`] answers for.
pub fn default_selectable_fields(info: &ResourceInfo) -> &'static [&'static str] {
    const METADATA: &[&str] = &["metadata.name", "metadata.namespace"];
    if info.namespaced {
        METADATA
    } else {
        &METADATA[..1]
    }
}

/// `metadata.name` and `metadata.namespace` are selectable on every kind.
pub fn default_field_value(info: &ResourceInfo, obj: &Value, field: &str) -> Option<String> {
    match field {
        "metadata.name" => Some(crate::meta::object::name(obj).to_string()),
        "metadata.namespace" if info.namespaced => {
            Some(crate::meta::object::namespace(obj).to_string())
        }
        _ => None,
    }
}

/// The AGE cell: how long ago `metadata.creationTimestamp` was, as kubectl prints it.
pub fn age(obj: &Value, now: Timestamp) -> String {
    since(obj.pointer("/metadata/creationTimestamp"), now)
}

/// The time since the timestamp in `value`, as kubectl prints an age, or `<unknown>`.
pub fn since(value: Option<&Value>, now: Timestamp) -> String {
    let when = value
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<Timestamp>().ok());
    crate::meta::duration::since(when, now)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The watch cache keeps a value for each listed field and selects by those alone, so a
    /// field the kind answers for but does not list would never match from the cache.
    #[test]
    fn every_kind_lists_exactly_the_fields_it_selects_by() {
        let kinds = kinds(std::time::Duration::from_secs(3600));
        let names: Vec<&str> = kinds
            .iter()
            .flat_map(|k| k.selectable_fields().iter().copied())
            .chain(["spec.containers", "status", "nope"])
            .collect();
        let probe = serde_json::json!({"metadata": {}});
        for kind in &kinds {
            let plural = kind.info().plural;
            for name in &names {
                assert_eq!(
                    kind.field_value(&probe, name).is_some(),
                    kind.selectable_fields().contains(name),
                    "{plural}: {name}"
                );
            }
        }
    }
}
