//! What the kinds that run Pods from a template (ReplicaSet, Deployment, Job, CronJob) share:
//! the update strategies' handling of spec, status and generation, the selector as upstream's
//! validation prints it, the template's patch schema, and the `Containers`, `Images` and
//! `Selector` columns of their wide tables.

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStatus, ReplicaSet, ReplicaSetSpec, ReplicaSetStatus,
};
use k8s_openapi::api::batch::v1::{CronJob, CronJobSpec, CronJobStatus, Job, JobSpec, JobStatus};
use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde_json::{json, Value};

use super::{column, field_error, pod};
use crate::meta::patch::{generic_patch_schema, PatchSchema};

/// A workload's metadata, spec and status, as its update strategies see them.
pub trait SpecAndStatus: Clone {
    type Spec: PartialEq;
    type Status: Clone;
    fn parts(&self) -> (&ObjectMeta, &Option<Self::Spec>, &Option<Self::Status>);
    fn parts_mut(
        &mut self,
    ) -> (
        &mut ObjectMeta,
        &mut Option<Self::Spec>,
        &mut Option<Self::Status>,
    );
}

macro_rules! spec_and_status {
    ($($kind:ty => $spec:ty, $status:ty;)*) => {$(
        impl SpecAndStatus for $kind {
            type Spec = $spec;
            type Status = $status;
            fn parts(&self) -> (&ObjectMeta, &Option<$spec>, &Option<$status>) {
                (&self.metadata, &self.spec, &self.status)
            }
            fn parts_mut(&mut self) -> (&mut ObjectMeta, &mut Option<$spec>, &mut Option<$status>) {
                (&mut self.metadata, &mut self.spec, &mut self.status)
            }
        }
    )*};
}

spec_and_status! {
    ReplicaSet => ReplicaSetSpec, ReplicaSetStatus;
    Deployment => DeploymentSpec, DeploymentStatus;
    Job => JobSpec, JobStatus;
    CronJob => CronJobSpec, CronJobStatus;
}

/// A write of the main resource: the status stays as stored, and the generation moves on when
/// the spec changed (or `also_changed`, for what else a kind counts as its spec).
pub fn prepare_update<W: SpecAndStatus>(new: &mut W, old: &W, also_changed: bool) {
    let (old_meta, old_spec, old_status) = old.parts();
    let (meta, spec, status) = new.parts_mut();
    status.clone_from(old_status);
    let changed = spec != old_spec || also_changed;
    meta.generation = Some(old_meta.generation.unwrap_or(0) + i64::from(changed));
}

/// A write through `status`: all but the status comes from `old`; the `resourceVersion` sent,
/// if any, stays as the write's precondition.
pub fn prepare_status_update<W: SpecAndStatus>(new: &mut W, old: &W) {
    let (meta, _, status) = new.parts_mut();
    let status = status.take();
    let rv = meta.resource_version.take();
    new.clone_from(old);
    let (meta, _, kept) = new.parts_mut();
    *kept = status;
    if rv.is_some() {
        meta.resource_version = rv;
    }
}

/// A selector as Go's `%#v` prints `*metav1.LabelSelector` in an error (`null` when unset).
pub fn selector_literal(selector: Option<&LabelSelector>) -> field_error::Literal {
    field_error::Literal(match selector {
        None => "null".into(),
        Some(s) => format!(
            "&v1.LabelSelector{{MatchLabels:{}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}}",
            field_error::go_string_map(&s.match_labels.clone().unwrap_or_default())
        ),
    })
}

/// A generic patch schema with the Pod spec's under `spec.template.spec`.
pub fn template_patch_schema() -> PatchSchema {
    generic_patch_schema().graft(
        "spec.template.spec",
        &pod::patch_schema::pod_spec_patch_schema(),
    )
}

/// The wide columns after a kind's own: the template's containers and images, and the
/// selector, described as the kind's OpenAPI describes it.
pub fn template_columns(selector_description: &str) -> [Value; 3] {
    [
        column(
            "Containers",
            "string",
            "",
            "Names of each container in the template.",
            1,
        ),
        column(
            "Images",
            "string",
            "",
            "Images referenced by each container in the template.",
            1,
        ),
        column("Selector", "string", "", selector_description, 1),
    ]
}

/// The cells of [`template_columns`]: container names and images, comma-separated.
pub fn template_cells(spec: Option<&PodSpec>, selector: &str) -> [Value; 3] {
    let containers = spec.map(|s| s.containers.as_slice()).unwrap_or_default();
    let join = |f: fn(&k8s_openapi::api::core::v1::Container) -> &str| {
        containers.iter().map(f).collect::<Vec<_>>().join(",")
    };
    [
        json!(join(|c| c.name.as_str())),
        json!(join(|c| c.image.as_deref().unwrap_or(""))),
        json!(selector),
    ]
}
