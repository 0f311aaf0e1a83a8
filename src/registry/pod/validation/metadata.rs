//! Pod create validation entry point and the pod's metadata (annotations, name).

use k8s_openapi::api::core::v1::{Pod, PodSpec};

use crate::registry::field_error::{name_is_dns_subdomain, validate_object_meta, FieldError};
use crate::registry::pod::validation::{spec_of, validate_pod_spec};
use crate::registry::pod::{
    child, index, is_empty, key, s, slice, MIRROR_POD_ANNOTATION, POD_DELETION_COST_ANNOTATION,
};
use std::collections::BTreeMap;

/// `ValidatePodCreate` (the pod strategy's `Validate`), with the pod-only options upstream uses
/// by default in v1.32 (relaxed env var names, strict DNS search names, no zero-second sleep).
/// Expects the generic store to have set `metadata.namespace` and the final name already.
pub fn validate_pod(pod: &Pod) -> Vec<FieldError> {
    let mut errs = validate_pod_metadata_and_spec(pod);
    let spec = spec_of(pod);
    if !slice(&spec.ephemeral_containers).is_empty() {
        errs.push(FieldError::forbidden(
            "spec.ephemeralContainers",
            "cannot be set on create",
        ));
    }
    if !is_empty(&spec.node_name) && !slice(&spec.scheduling_gates).is_empty() {
        errs.push(FieldError::forbidden(
            "spec.nodeName",
            "cannot be set until all schedulingGates have been cleared",
        ));
    }
    errs
}

pub(crate) fn validate_pod_metadata_and_spec(pod: &Pod) -> Vec<FieldError> {
    let meta = &pod.metadata;
    let spec = spec_of(pod);
    let mut errs = validate_object_meta(meta, true, name_is_dns_subdomain);
    // Core adds a check that unqualified finalizer names are the well-known ones.
    for (i, f) in slice(&meta.finalizers).iter().enumerate() {
        if !f.contains('/') && !matches!(f.as_str(), "kubernetes" | "orphan" | "foregroundDeletion")
        {
            errs.push(FieldError::invalid(
                index("metadata.finalizers", i),
                f,
                "name is neither a standard finalizer name nor is it fully qualified",
            ));
        }
    }
    errs.extend(validate_pod_annotations(
        meta.annotations.as_ref(),
        spec,
        "metadata.annotations",
    ));
    errs.extend(validate_pod_spec(spec, s(&meta.name)));
    if is_empty(&spec.service_account_name) {
        for (vi, v) in slice(&spec.volumes).iter().enumerate() {
            let Some(p) = &v.projected else { continue };
            for (si, src) in slice(&p.sources).iter().enumerate() {
                if src.service_account_token.is_some() {
                    errs.push(FieldError::forbidden(
                        format!("spec.volumes[{vi}].projected.sources[{si}].serviceAccountToken"),
                        "must not be specified when serviceAccountName is not set",
                    ));
                }
            }
        }
    }
    // Pods (not templates) reject padded image names; unparsable references are the kubelet's
    // problem, not an API error.
    for (list, path) in [
        (&spec.containers[..], "spec.containers"),
        (slice(&spec.init_containers), "spec.initContainers"),
    ] {
        for (i, c) in list.iter().enumerate() {
            let image = s(&c.image);
            if image.len() != image.trim().len() {
                errs.push(FieldError::invalid(
                    child(&index(path, i), "image"),
                    image,
                    "must not have leading or trailing whitespace",
                ));
            }
        }
    }
    errs
}

/// `ValidatePodSpecificAnnotations`: mirror pods must be bound, and the deletion-cost annotation
/// must be a canonical int32. `path` is where the annotations are (`metadata.annotations` of a
/// Pod, `template.annotations` of a template).
pub(crate) fn validate_pod_annotations(
    annotations: Option<&BTreeMap<String, String>>,
    spec: &PodSpec,
    path: &str,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(a) = annotations else {
        return errs;
    };
    if let Some(v) = a.get(MIRROR_POD_ANNOTATION) {
        if is_empty(&spec.node_name) {
            errs.push(FieldError::invalid(
                key(path, MIRROR_POD_ANNOTATION),
                v,
                "must set spec.nodeName if mirror pod annotation is set",
            ));
        }
    }
    if let Some(v) = a.get(POD_DELETION_COST_ANNOTATION) {
        // "+1" and "007" are rejected even though they parse.
        let first_ok = match v.as_bytes().first() {
            Some(b'-') => true,
            Some(b'0') => v == "0",
            Some(c) => c.is_ascii_digit(),
            None => false,
        };
        if !first_ok || v.parse::<i32>().is_err() {
            errs.push(FieldError::invalid(
                key(path, POD_DELETION_COST_ANNOTATION),
                v,
                "must be a 32bit integer",
            ));
        }
    }
    errs
}
