//! Ephemeral containers: their rules inside any pod spec (upstream `validateEphemeralContainers`)
//! and the rules of a write through `pods/ephemeralcontainers`
//! (`ValidatePodEphemeralContainersUpdate`).

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{Container, EphemeralContainer, Pod, PodSpec};

use crate::registry::field_error::{validate_object_meta_update, FieldError};
use crate::registry::pod::validation::containers::validate_container_common;
use crate::registry::pod::validation::metadata::validate_pod_metadata_and_spec;
use crate::registry::pod::validation::update::validate_mirror_annotation_update;
use crate::registry::pod::validation::{spec_of, PodContext};
use crate::registry::pod::{child, index, is_empty, s, slice, MIRROR_POD_ANNOTATION};

const NOT_FOR_EPHEMERAL: &str = "cannot be set for an Ephemeral Container";

/// The container an ephemeral container describes: `EphemeralContainerCommon` has exactly the
/// fields of `Container` (upstream converts one into the other with a cast).
fn as_container(ec: &EphemeralContainer) -> Container {
    let mut value = serde_json::to_value(ec).expect("a k8s-openapi type always serializes");
    if let Some(obj) = value.as_object_mut() {
        obj.remove("targetContainerName");
    }
    serde_json::from_value(value).expect("an ephemeral container's fields are a container's")
}

/// The fields upstream's allow-list leaves out, in the order of `EphemeralContainerCommon`,
/// each with whether it is set (Go's zero value counts as unset: an empty `resources` is).
fn disallowed_fields(c: &Container) -> [(&'static str, bool); 8] {
    let resources = c.resources.as_ref().is_some_and(|r| {
        !(r.limits.as_ref().is_none_or(|m| m.is_empty())
            && r.requests.as_ref().is_none_or(|m| m.is_empty())
            && slice(&r.claims).is_empty())
    });
    [
        ("ports", !slice(&c.ports).is_empty()),
        ("resources", resources),
        ("resizePolicy", !slice(&c.resize_policy).is_empty()),
        ("restartPolicy", c.restart_policy.is_some()),
        ("livenessProbe", c.liveness_probe.is_some()),
        ("readinessProbe", c.readiness_probe.is_some()),
        ("startupProbe", c.startup_probe.is_some()),
        ("lifecycle", c.lifecycle.is_some()),
    ]
}

/// `validateEphemeralContainers`: each is a valid container whose name no other container of
/// the Pod has, whose target (if any) is a regular or init container, and which sets none of
/// what a workload container relies on (ports, probes, resources, lifecycle, subpaths).
pub(crate) fn validate_ephemeral_containers(
    spec: &PodSpec,
    ctx: &PodContext<'_>,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let others: BTreeSet<&str> = spec
        .containers
        .iter()
        .chain(slice(&spec.init_containers))
        .map(|c| c.name.as_str())
        .collect();
    let mut all = others.clone();
    for (i, ec) in slice(&spec.ephemeral_containers).iter().enumerate() {
        let p = index("spec.ephemeralContainers", i);
        let c = as_container(ec);
        errs.extend(validate_container_common(&c, ctx, &p));
        let image = s(&c.image);
        if image.len() != image.trim().len() {
            errs.push(FieldError::invalid(
                child(&p, "image"),
                image,
                "must not have leading or trailing whitespace",
            ));
        }
        if !all.insert(ec.name.as_str()) {
            errs.push(FieldError::duplicate(child(&p, "name"), &ec.name));
        }
        let target = s(&ec.target_container_name);
        if !target.is_empty() && !others.contains(target) {
            errs.push(FieldError::not_found(
                child(&p, "targetContainerName"),
                target,
            ));
        }
        for (field, set) in disallowed_fields(&c) {
            if set {
                errs.push(FieldError::forbidden(child(&p, field), NOT_FOR_EPHEMERAL));
            }
        }
        for (j, mount) in slice(&c.volume_mounts).iter().enumerate() {
            let mp = index(&child(&p, "volumeMounts"), j);
            if !is_empty(&mount.sub_path) {
                errs.push(FieldError::forbidden(
                    child(&mp, "subPath"),
                    NOT_FOR_EPHEMERAL,
                ));
            }
            if !is_empty(&mount.sub_path_expr) {
                errs.push(FieldError::forbidden(
                    child(&mp, "subPathExpr"),
                    NOT_FOR_EPHEMERAL,
                ));
            }
        }
    }
    errs
}

/// `ValidatePodEphemeralContainersUpdate`: the Pod stays valid, static Pods take none, and
/// ephemeral containers already there are neither removed nor changed (patches do not keep
/// the order, so each is found by name).
///
/// Deviation: upstream appends a `cmp.Diff` of the old and new container after "may not be
/// changed"; rkube keeps the newline and leaves the Go-specific diff out.
pub fn validate_pod_ephemeral_containers_update(new: &Pod, old: &Pod) -> Vec<FieldError> {
    let mut errs = validate_object_meta_update(&new.metadata, &old.metadata);
    errs.extend(validate_pod_metadata_and_spec(new));
    errs.extend(validate_mirror_annotation_update(new, old));
    let is_static = old
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(MIRROR_POD_ANNOTATION));
    if is_static {
        return vec![FieldError::forbidden(
            "",
            "static pods do not support ephemeral containers",
        )];
    }
    let path = "spec.ephemeralContainers";
    let current = slice(&spec_of(new).ephemeral_containers);
    for before in slice(&spec_of(old).ephemeral_containers) {
        match current.iter().find(|c| c.name == before.name) {
            None => errs.push(FieldError::forbidden(
                path,
                format!(
                    "existing ephemeral containers {:?} may not be removed\n",
                    before.name
                ),
            )),
            Some(now) if now != before => errs.push(FieldError::forbidden(
                format!("{path}[{}]", before.name),
                format!(
                    "existing ephemeral containers {:?} may not be changed\n",
                    before.name
                ),
            )),
            Some(_) => {}
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::pod::strategy::apply_scheme_defaults;
    use crate::registry::pod::test_support::*;

    /// The valid db pod with `debugger` (targeting `db`) added as `kubectl debug` adds it.
    fn debugged(edit: impl FnOnce(&mut serde_json::Value)) -> Pod {
        let mut ec = json!({"name": "debugger", "image": "busybox", "targetContainerName": "db",
            "stdin": true, "tty": true});
        edit(&mut ec);
        let mut pod = valid_pod();
        spec_mut(&mut pod).ephemeral_containers = Some(vec![
            serde_json::from_value(ec).expect("an ephemeral container")
        ]);
        apply_scheme_defaults(&mut pod);
        pod
    }

    /// A case: its name, how it edits the added container, the errors it gives.
    type Case = (
        &'static str,
        fn(&mut serde_json::Value),
        &'static [&'static str],
    );

    #[test]
    fn ephemeral_containers_are_checked_as_upstream_checks_them() {
        let cases: &[Case] = &[
            ("valid", |_| {}, &[]),
            ("same name as a container", |ec| ec["name"] = json!("db"),
                &["spec.ephemeralContainers[0].name: Duplicate value: \"db\""]),
            ("unknown target", |ec| ec["targetContainerName"] = json!("web"),
                &["spec.ephemeralContainers[0].targetContainerName: Not found: \"web\""]),
            ("no image", |ec| { ec.as_object_mut().expect("object").remove("image"); },
                &["spec.ephemeralContainers[0].image: Required value"]),
            ("padded image", |ec| ec["image"] = json!("busybox "),
                &["spec.ephemeralContainers[0].image: Invalid value: \"busybox \": must not have leading or trailing whitespace"]),
            ("workload fields", |ec| {
                ec["ports"] = json!([{"containerPort": 80}]);
                ec["resources"] = json!({"limits": {"cpu": "1"}});
                ec["readinessProbe"] = json!({"exec": {"command": ["true"]}});
                ec["lifecycle"] = json!({"preStop": {"exec": {"command": ["true"]}}});
            }, &[
                "spec.ephemeralContainers[0].ports: Forbidden: cannot be set for an Ephemeral Container",
                "spec.ephemeralContainers[0].resources: Forbidden: cannot be set for an Ephemeral Container",
                "spec.ephemeralContainers[0].readinessProbe: Forbidden: cannot be set for an Ephemeral Container",
                "spec.ephemeralContainers[0].lifecycle: Forbidden: cannot be set for an Ephemeral Container",
            ]),
            ("empty resources are unset", |ec| ec["resources"] = json!({}), &[]),
            ("subPath", |ec| {
                ec["volumeMounts"] = json!([{"name": "v", "mountPath": "/v", "subPath": "x"}]);
            }, &[
                "spec.ephemeralContainers[0].volumeMounts[0].name: Not found: \"v\"",
                "spec.ephemeralContainers[0].volumeMounts[0].subPath: Forbidden: cannot be set for an Ephemeral Container",
            ]),
        ];
        for (name, edit, want) in cases {
            let pod = debugged(edit);
            let old = valid_pod();
            let errs = validate_pod_ephemeral_containers_update(&pod, &old);
            assert_eq!(messages(&errs), *want, "{name}");
        }
    }

    #[test]
    fn existing_ephemeral_containers_may_only_be_kept() {
        let old = debugged(|_| {});
        let mut removed = old.clone();
        spec_mut(&mut removed).ephemeral_containers = Some(Vec::new());
        assert_eq!(
            messages(&validate_pod_ephemeral_containers_update(&removed, &old)),
            ["spec.ephemeralContainers: Forbidden: existing ephemeral containers \"debugger\" may not be removed\n"]
        );
        let changed = debugged(|ec| ec["image"] = json!("busybox:2"));
        assert_eq!(
            messages(&validate_pod_ephemeral_containers_update(&changed, &old)),
            ["spec.ephemeralContainers[debugger]: Forbidden: existing ephemeral containers \"debugger\" may not be changed\n"]
        );
        let mut added = old.clone();
        let mut second = spec_of(&old).ephemeral_containers.clone().expect("one")[0].clone();
        second.name = "second".into();
        spec_mut(&mut added)
            .ephemeral_containers
            .get_or_insert_with(Vec::new)
            .insert(0, second);
        assert_eq!(
            messages(&validate_pod_ephemeral_containers_update(&added, &old)),
            Vec::<String>::new()
        );
    }

    #[test]
    fn static_pods_take_no_ephemeral_containers() {
        let mut old = valid_pod();
        old.metadata.annotations =
            Some([(MIRROR_POD_ANNOTATION.to_string(), "x".to_string())].into());
        let mut new = debugged(|_| {});
        new.metadata.annotations = old.metadata.annotations.clone();
        assert_eq!(
            messages(&validate_pod_ephemeral_containers_update(&new, &old)),
            [": Forbidden: static pods do not support ephemeral containers"]
        );
    }

    #[test]
    fn the_main_resource_cannot_add_ephemeral_containers() {
        let new = debugged(|_| {});
        let errs = crate::registry::pod::validate_pod_update(&new, &valid_pod());
        assert!(
            messages(&errs)
                .iter()
                .any(|m| m.starts_with("spec: Forbidden: pod updates may not change fields")),
            "{errs:?}"
        );
    }
}
