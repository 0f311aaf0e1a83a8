//! Pod templates (upstream `ValidatePodTemplateSpec`): the labels and annotations of the Pods
//! a template makes, and their spec, validated as a Pod's would be, at `template.*`.

use k8s_openapi::api::core::v1::PodTemplateSpec;

use crate::registry::field_error::{validate_annotations, validate_labels, FieldError};
use crate::registry::pod::slice;
use crate::registry::pod::validation::metadata::validate_pod_annotations;
use crate::registry::pod::validation::{empty_spec, validate_pod_spec};

/// `ValidatePodTemplateSpec` for the template at `path` (e.g. `template`). As upstream, the
/// labels and annotations are reported at `<path>.labels` and `<path>.annotations` (not under
/// `metadata`), the spec at `<path>.spec`; a template takes no ephemeral containers.
pub fn validate_pod_template_spec(template: &PodTemplateSpec, path: &str) -> Vec<FieldError> {
    let meta = template.metadata.as_ref();
    let spec = template.spec.as_ref().unwrap_or_else(|| empty_spec());
    let mut errs = Vec::new();
    if let Some(labels) = meta.and_then(|m| m.labels.as_ref()) {
        errs.extend(validate_labels(labels, &format!("{path}.labels")));
    }
    let annotations = meta.and_then(|m| m.annotations.as_ref());
    if let Some(annotations) = annotations {
        errs.extend(validate_annotations(
            annotations,
            &format!("{path}.annotations"),
        ));
    }
    errs.extend(validate_pod_annotations(
        annotations,
        spec,
        &format!("{path}.annotations"),
    ));
    // The pod spec's rules name their fields from `spec`; a template's spec sits at
    // `<path>.spec`.
    errs.extend(validate_pod_spec(spec, "").into_iter().map(|mut e| {
        e.field = format!("{path}.{}", e.field);
        e
    }));
    if !slice(&spec.ephemeral_containers).is_empty() {
        errs.push(FieldError::forbidden(
            format!("{path}.spec.ephemeralContainers"),
            "ephemeral containers not allowed in pod template",
        ));
    }
    errs
}
