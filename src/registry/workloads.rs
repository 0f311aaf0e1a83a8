//! What the kinds that run Pods from a template (ReplicaSet, Deployment, Job) share: the
//! selector as upstream's validation prints it, the template's patch schema, and the
//! `Containers`, `Images` and `Selector` columns of their wide tables.

use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde_json::{json, Value};

use super::{column, field_error, pod};
use crate::meta::patch::{generic_patch_schema, PatchSchema};

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
