//! The RBAC kinds (`rbac.authorization.k8s.io/v1`): Role, ClusterRole, RoleBinding and
//! ClusterRoleBinding, stored as upstream stores them (`pkg/registry/rbac/*`), with the
//! scheme's defaults (a subject's and a roleRef's `apiGroup`), upstream's validation
//! ([`validation`]) and Table columns, and the policy the API server creates at start
//! ([`bootstrap`]). Who may do what is decided from these objects by the API server's
//! authorizer; the rule matching it shares with escalation checks is in [`rules`].

pub mod bootstrap;
pub mod rules;
pub mod validation;

use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding, Subject};
use serde_json::{json, Value};

use super::decode::{decode_typed, Decoded};
use super::{
    age, column, FieldError, ResourceInfo, TypedStrategy, AGE_DESCRIPTION, NAME_DESCRIPTION,
};
use crate::meta::ApiError;

/// The API group of every RBAC kind, and the `apiGroup` of User and Group subjects.
pub const GROUP: &str = "rbac.authorization.k8s.io";

static ROLE: ResourceInfo = ResourceInfo {
    group: GROUP,
    version: "v1",
    kind: "Role",
    plural: "roles",
    singular: "role",
    short_names: &[],
    categories: &[],
    namespaced: true,
    subresources: &[],
};

static CLUSTER_ROLE: ResourceInfo = ResourceInfo {
    group: GROUP,
    version: "v1",
    kind: "ClusterRole",
    plural: "clusterroles",
    singular: "clusterrole",
    short_names: &[],
    categories: &[],
    namespaced: false,
    subresources: &[],
};

static ROLE_BINDING: ResourceInfo = ResourceInfo {
    group: GROUP,
    version: "v1",
    kind: "RoleBinding",
    plural: "rolebindings",
    singular: "rolebinding",
    short_names: &[],
    categories: &[],
    namespaced: true,
    subresources: &[],
};

static CLUSTER_ROLE_BINDING: ResourceInfo = ResourceInfo {
    group: GROUP,
    version: "v1",
    kind: "ClusterRoleBinding",
    plural: "clusterrolebindings",
    singular: "clusterrolebinding",
    short_names: &[],
    categories: &[],
    namespaced: false,
    subresources: &[],
};

/// Upstream `SetDefaults_Subject`: User and Group subjects belong to the RBAC group, service
/// accounts to the core group.
fn default_subjects(subjects: &mut Option<Vec<Subject>>) {
    for s in subjects.iter_mut().flatten() {
        if s.api_group.is_none() {
            match s.kind.as_str() {
                "User" | "Group" => s.api_group = Some(GROUP.into()),
                "ServiceAccount" => s.api_group = Some(String::new()),
                _ => {}
            }
        }
    }
}

/// Upstream's `SubjectsStrings`: the users, groups and service accounts (`ns/name`) a binding
/// names, for the wide Table columns.
pub fn subjects_strings(subjects: &[Subject]) -> (Vec<String>, Vec<String>, Vec<String>) {
    let (mut users, mut groups, mut sas) = (Vec::new(), Vec::new(), Vec::new());
    for s in subjects {
        match s.kind.as_str() {
            "User" => users.push(s.name.clone()),
            "Group" => groups.push(s.name.clone()),
            "ServiceAccount" => sas.push(format!(
                "{}/{}",
                s.namespace.as_deref().unwrap_or(""),
                s.name
            )),
            _ => {}
        }
    }
    (users, groups, sas)
}

fn binding_columns(what: &str) -> Value {
    json!([
        column("Name", "string", "name", NAME_DESCRIPTION, 0),
        column("Role", "string", "", "RoleRef can reference a Role in the current namespace or a ClusterRole in the global namespace. If the RoleRef cannot be resolved, the Authorizer must return an error. This field is immutable.", 0),
        column("Age", "string", "", AGE_DESCRIPTION, 0),
        column("Users", "string", "", &format!("Users in the {what}"), 1),
        column("Groups", "string", "", &format!("Groups in the {what}"), 1),
        column("ServiceAccounts", "string", "", &format!("ServiceAccounts in the {what}"), 1),
    ])
}

fn binding_row(obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
    let kind = obj.pointer("/roleRef/kind").and_then(Value::as_str);
    let name = obj.pointer("/roleRef/name").and_then(Value::as_str);
    let subjects: Vec<Subject> = obj
        .get("subjects")
        .cloned()
        .and_then(|s| serde_json::from_value(s).ok())
        .unwrap_or_default();
    let (users, groups, sas) = subjects_strings(&subjects);
    vec![
        json!(crate::meta::object::name(obj)),
        json!(format!("{}/{}", kind.unwrap_or(""), name.unwrap_or(""))),
        json!(age(obj, now)),
        json!(users.join(", ")),
        json!(groups.join(", ")),
        json!(sas.join(", ")),
    ]
}

pub struct RoleStrategy;

impl TypedStrategy for RoleStrategy {
    type Object = Role;

    fn info(&self) -> &'static ResourceInfo {
        &ROLE
    }

    fn decode(&self, body: Value) -> Result<Decoded, ApiError> {
        decode_typed::<Role>(&ROLE, body, |_| Ok(()))
    }

    fn validate(&self, role: &Role) -> Vec<FieldError> {
        validation::validate_role(role)
    }

    fn validate_update(&self, new: &Role, old: &Role) -> Vec<FieldError> {
        let mut errs =
            super::field_error::validate_object_meta_update(&new.metadata, &old.metadata);
        errs.extend(self.validate(new));
        errs
    }

    fn prepare_for_update(&self, _new: &mut Role, _old: &Role) {}

    fn prepare_for_status_update(&self, new: &mut Role, old: &Role) {
        new.clone_from(old);
    }
}

pub struct ClusterRoleStrategy;

impl TypedStrategy for ClusterRoleStrategy {
    type Object = ClusterRole;

    fn info(&self) -> &'static ResourceInfo {
        &CLUSTER_ROLE
    }

    fn decode(&self, body: Value) -> Result<Decoded, ApiError> {
        decode_typed::<ClusterRole>(&CLUSTER_ROLE, body, |_| Ok(()))
    }

    fn validate(&self, role: &ClusterRole) -> Vec<FieldError> {
        validation::validate_cluster_role(role)
    }

    fn validate_update(&self, new: &ClusterRole, old: &ClusterRole) -> Vec<FieldError> {
        let mut errs =
            super::field_error::validate_object_meta_update(&new.metadata, &old.metadata);
        errs.extend(self.validate(new));
        errs
    }

    fn prepare_for_update(&self, _new: &mut ClusterRole, _old: &ClusterRole) {}

    fn prepare_for_status_update(&self, new: &mut ClusterRole, old: &ClusterRole) {
        new.clone_from(old);
    }
}

pub struct RoleBindingStrategy;

impl TypedStrategy for RoleBindingStrategy {
    type Object = RoleBinding;

    fn info(&self) -> &'static ResourceInfo {
        &ROLE_BINDING
    }

    fn decode(&self, body: Value) -> Result<Decoded, ApiError> {
        decode_typed::<RoleBinding>(&ROLE_BINDING, body, |_| Ok(()))
    }

    fn apply_scheme_defaults(&self, b: &mut RoleBinding) {
        if b.role_ref.api_group.is_empty() {
            b.role_ref.api_group = GROUP.into();
        }
        default_subjects(&mut b.subjects);
    }

    fn admit_create(&self, b: &mut RoleBinding) -> Result<(), ApiError> {
        self.apply_scheme_defaults(b);
        Ok(())
    }

    fn validate(&self, b: &RoleBinding) -> Vec<FieldError> {
        validation::validate_role_binding(b)
    }

    fn validate_update(&self, new: &RoleBinding, old: &RoleBinding) -> Vec<FieldError> {
        let mut errs =
            super::field_error::validate_object_meta_update(&new.metadata, &old.metadata);
        errs.extend(self.validate(new));
        errs.extend(validation::role_ref_unchanged(&new.role_ref, &old.role_ref));
        errs
    }

    fn prepare_for_update(&self, new: &mut RoleBinding, _old: &RoleBinding) {
        self.apply_scheme_defaults(new);
    }

    fn prepare_for_status_update(&self, new: &mut RoleBinding, old: &RoleBinding) {
        new.clone_from(old);
    }

    fn column_definitions(&self) -> Value {
        binding_columns("roleBinding")
    }

    fn row(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        binding_row(obj, now)
    }
}

pub struct ClusterRoleBindingStrategy;

impl TypedStrategy for ClusterRoleBindingStrategy {
    type Object = ClusterRoleBinding;

    fn info(&self) -> &'static ResourceInfo {
        &CLUSTER_ROLE_BINDING
    }

    fn decode(&self, body: Value) -> Result<Decoded, ApiError> {
        decode_typed::<ClusterRoleBinding>(&CLUSTER_ROLE_BINDING, body, |_| Ok(()))
    }

    fn apply_scheme_defaults(&self, b: &mut ClusterRoleBinding) {
        if b.role_ref.api_group.is_empty() {
            b.role_ref.api_group = GROUP.into();
        }
        default_subjects(&mut b.subjects);
    }

    fn admit_create(&self, b: &mut ClusterRoleBinding) -> Result<(), ApiError> {
        self.apply_scheme_defaults(b);
        Ok(())
    }

    fn validate(&self, b: &ClusterRoleBinding) -> Vec<FieldError> {
        validation::validate_cluster_role_binding(b)
    }

    fn validate_update(
        &self,
        new: &ClusterRoleBinding,
        old: &ClusterRoleBinding,
    ) -> Vec<FieldError> {
        let mut errs =
            super::field_error::validate_object_meta_update(&new.metadata, &old.metadata);
        errs.extend(self.validate(new));
        errs.extend(validation::role_ref_unchanged(&new.role_ref, &old.role_ref));
        errs
    }

    fn prepare_for_update(&self, new: &mut ClusterRoleBinding, _old: &ClusterRoleBinding) {
        self.apply_scheme_defaults(new);
    }

    fn prepare_for_status_update(&self, new: &mut ClusterRoleBinding, old: &ClusterRoleBinding) {
        new.clone_from(old);
    }

    fn column_definitions(&self) -> Value {
        binding_columns("clusterRoleBinding")
    }

    fn row(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        binding_row(obj, now)
    }
}
