//! Pod update validation: what a write of the main resource may change (upstream
//! `ValidatePodUpdate`).

use k8s_openapi::api::core::v1::{Pod, PodSpec, Toleration};

use crate::registry::field_error::{
    go_string_map, inclusive_range_error, validate_object_meta_update, FieldError, Literal,
};
use crate::registry::pod::validation::metadata::validate_pod_metadata_and_spec;
use crate::registry::pod::validation::{spec_of, validate_tolerations};
use crate::registry::pod::{key, quantity_key, s, slice, MAX_INT32, MIRROR_POD_ANNOTATION};
use std::collections::{BTreeMap, BTreeSet};

/// The full v1.32 immutability sentence (without the trailing `cmp.Diff`, see
/// [`validate_pod_update`]).
pub const POD_UPDATE_FORBIDDEN_MESSAGE: &str = "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// `ValidatePodUpdate`: the new pod must itself be valid, metadata identity is immutable, and of
/// the spec only images, a shortened/added `activeDeadlineSeconds`, added tolerations, removed
/// scheduling gates, `terminationGracePeriodSeconds` going from negative to 1 and (while gated)
/// added nodeSelector entries may change.
///
/// Deviation: upstream appends a `cmp.Diff` of the old and new spec after the sentence in
/// [`POD_UPDATE_FORBIDDEN_MESSAGE`]; we keep the newline but omit the Go-specific diff.
/// Deviation: the "resourceVersion must be specified" check is left to the generic store.
pub fn validate_pod_update(new: &Pod, old: &Pod) -> Vec<FieldError> {
    let mut errs = validate_object_meta_update(&new.metadata, &old.metadata);
    errs.extend(validate_pod_metadata_and_spec(new));
    errs.extend(validate_mirror_annotation_update(new, old));
    let (new_spec, old_spec) = (spec_of(new), spec_of(old));

    for (new_list, old_list, path) in [
        (
            &new_spec.containers[..],
            &old_spec.containers[..],
            "spec.containers",
        ),
        (
            slice(&new_spec.init_containers),
            slice(&old_spec.init_containers),
            "spec.initContainers",
        ),
    ] {
        if new_list.len() != old_list.len() {
            errs.push(FieldError::forbidden(
                path,
                "pod updates may not add or remove containers",
            ));
            return errs;
        }
        for (i, c) in new_list.iter().enumerate() {
            let image = s(&c.image);
            let p = format!("{path}[{i}].image");
            if image.is_empty() {
                errs.push(FieldError::required(&p, ""));
            }
            if image.trim().len() != image.len() {
                errs.push(FieldError::invalid(
                    &p,
                    image,
                    "must not have leading or trailing whitespace",
                ));
            }
        }
    }

    match (
        new_spec.active_deadline_seconds,
        old_spec.active_deadline_seconds,
    ) {
        (Some(n), old_value) => {
            if !(0..=MAX_INT32).contains(&n) {
                errs.push(FieldError::invalid(
                    "spec.activeDeadlineSeconds",
                    n,
                    inclusive_range_error(0, MAX_INT32),
                ));
                return errs;
            }
            if old_value.is_some_and(|o| o < n) {
                errs.push(FieldError::invalid(
                    "spec.activeDeadlineSeconds",
                    n,
                    "must be less than or equal to previous value",
                ));
                return errs;
            }
        }
        (None, Some(_)) => errs.push(FieldError::invalid(
            "spec.activeDeadlineSeconds",
            None::<i64>,
            "must not update from a positive integer to nil value",
        )),
        (None, None) => {}
    }

    errs.extend(validate_only_added_tolerations(
        slice(&new_spec.tolerations),
        slice(&old_spec.tolerations),
    ));
    errs.extend(validate_only_deleted_scheduling_gates(new_spec, old_spec));

    // Munge the mutable fields back to their old values; anything still different is forbidden.
    let mut munged = new_spec.clone();
    for (c, o) in munged.containers.iter_mut().zip(&old_spec.containers) {
        c.image = o.image.clone();
    }
    for (c, o) in munged
        .init_containers
        .iter_mut()
        .flatten()
        .zip(slice(&old_spec.init_containers))
    {
        c.image = o.image.clone();
    }
    munged.active_deadline_seconds = old_spec.active_deadline_seconds;
    munged.scheduling_gates = old_spec.scheduling_gates.clone();
    munged.tolerations = old_spec.tolerations.clone();
    if old_spec
        .termination_grace_period_seconds
        .is_some_and(|g| g < 0)
        && munged.termination_grace_period_seconds == Some(1)
    {
        munged.termination_grace_period_seconds = old_spec.termination_grace_period_seconds;
    }
    if !slice(&old_spec.scheduling_gates).is_empty() {
        let empty = BTreeMap::new();
        let new_sel = munged.node_selector.as_ref().unwrap_or(&empty);
        let old_sel = old_spec.node_selector.as_ref().unwrap_or(&empty);
        if new_sel != old_sel {
            if old_sel.iter().any(|(k, v)| new_sel.get(k) != Some(v)) {
                errs.push(FieldError::invalid(
                    "spec.nodeSelector",
                    Literal(go_string_map(new_sel)),
                    "only additions to spec.nodeSelector are allowed (no mutations or deletions)",
                ));
            }
            munged.node_selector = old_spec.node_selector.clone();
        }
    }
    if !specs_semantically_equal(&munged, old_spec) {
        // Upstream: "...%s\n%v" with the spec diff; the diff is omitted here.
        errs.push(FieldError::forbidden(
            "spec",
            format!("{POD_UPDATE_FORBIDDEN_MESSAGE}\n"),
        ));
    }
    errs
}

/// The mirror-pod annotation may be neither added, changed nor removed.
pub(crate) fn validate_mirror_annotation_update(new: &Pod, old: &Pod) -> Vec<FieldError> {
    let get = |p: &Pod| {
        p.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(MIRROR_POD_ANNOTATION).cloned())
    };
    let p = key("metadata.annotations", MIRROR_POD_ANNOTATION);
    match (get(new), get(old)) {
        (Some(n), Some(o)) if n != o => vec![FieldError::forbidden(
            p,
            "may not remove or update mirror pod annotation",
        )],
        (None, Some(_)) => vec![FieldError::forbidden(
            p,
            "may not remove or update mirror pod annotation",
        )],
        (Some(_), None) => vec![FieldError::forbidden(
            p,
            "may not add mirror pod annotation",
        )],
        _ => Vec::new(),
    }
}

/// `validateOnlyAddedTolerations`: every old toleration must still be present (its
/// `tolerationSeconds` may change), then the new list is validated.
pub(crate) fn validate_only_added_tolerations(
    new: &[Toleration],
    old: &[Toleration],
) -> Vec<FieldError> {
    let same = |a: &Toleration, b: &Toleration| {
        s(&a.key) == s(&b.key)
            && s(&a.operator) == s(&b.operator)
            && s(&a.value) == s(&b.value)
            && s(&a.effect) == s(&b.effect)
    };
    for o in old {
        if !new.iter().any(|n| same(o, n)) {
            return vec![FieldError::forbidden(
                "spec.tolerations",
                "existing toleration can not be modified except its tolerationSeconds",
            )];
        }
    }
    validate_tolerations(new, "spec.tolerations")
}

/// `validateOnlyDeletedSchedulingGates`.
pub(crate) fn validate_only_deleted_scheduling_gates(
    new: &PodSpec,
    old: &PodSpec,
) -> Vec<FieldError> {
    let old_names: BTreeSet<&str> = slice(&old.scheduling_gates)
        .iter()
        .map(|g| g.name.as_str())
        .collect();
    // Upstream collects new gates in a map (last index wins) and iterates it; we sort by name.
    let mut added: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, g) in slice(&new.scheduling_gates).iter().enumerate() {
        added.insert(g.name.as_str(), i);
    }
    added
        .into_iter()
        .filter(|(name, _)| !old_names.contains(name))
        .map(|(name, i)| {
            FieldError::forbidden(
                format!("spec.schedulingGates[{i}].name"),
                format!("only deletion is allowed, but found new scheduling gate '{name}'"),
            )
        })
        .collect()
}

/// Keys whose JSON value is a Go map (so `{}` equals absent under `Semantic.DeepEqual`).
pub(crate) const MAP_KEYS: [&str; 8] = [
    "nodeSelector",
    "overhead",
    "limits",
    "requests",
    "options",
    "volumeAttributes",
    "matchLabels",
    "labels",
];
/// Keys whose Go field is a pointer, so a zero value is distinct from absent.
pub(crate) const POINTER_KEYS: [&str; 27] = [
    "terminationGracePeriodSeconds",
    "activeDeadlineSeconds",
    "automountServiceAccountToken",
    "enableServiceLinks",
    "priority",
    "preemptionPolicy",
    "runtimeClassName",
    "shareProcessNamespace",
    "setHostnameAsFQDN",
    "hostUsers",
    "runAsUser",
    "runAsGroup",
    "runAsNonRoot",
    "fsGroup",
    "fsGroupChangePolicy",
    "privileged",
    "readOnlyRootFilesystem",
    "allowPrivilegeEscalation",
    "procMount",
    "defaultMode",
    "mode",
    "optional",
    "restartPolicy",
    "type",
    "service",
    "expirationSeconds",
    "sizeLimit",
];

/// `apiequality.Semantic.DeepEqual` on pod specs, approximated over JSON: nil and empty
/// slices/maps are equal, zero scalars equal absent for non-pointer Go fields, and quantities
/// compare by value. The deprecated `serviceAccount` alias is not part of the internal type.
pub(crate) fn specs_semantically_equal(a: &PodSpec, b: &PodSpec) -> bool {
    let norm = |spec: &PodSpec| {
        let mut v = serde_json::to_value(spec).unwrap_or(serde_json::Value::Null);
        if let Some(obj) = v.as_object_mut() {
            obj.remove("serviceAccount");
        }
        normalize_json(&mut v, None);
        v
    };
    norm(a) == norm(b)
}

pub(crate) fn normalize_json(v: &mut serde_json::Value, parent_key: Option<&str>) {
    use serde_json::Value;
    match v {
        Value::Object(obj) => {
            let quantity_map = matches!(parent_key, Some("limits" | "requests" | "overhead"));
            for (k, child_v) in obj.iter_mut() {
                if quantity_map || k == "sizeLimit" || k == "divisor" {
                    if let Value::String(q) = child_v {
                        *q = quantity_key(q);
                    }
                }
                normalize_json(child_v, Some(k));
            }
            obj.retain(|k, child_v| {
                let pointer = POINTER_KEYS.contains(&k.as_str());
                match child_v {
                    Value::Null => false,
                    Value::Array(a) => !a.is_empty(),
                    Value::Object(o) => !(o.is_empty() && MAP_KEYS.contains(&k.as_str())),
                    Value::String(s) => pointer || !s.is_empty(),
                    Value::Bool(b) => pointer || *b,
                    Value::Number(n) => pointer || n.as_f64() != Some(0.0),
                }
            });
        }
        Value::Array(items) => {
            for item in items {
                normalize_json(item, parent_key);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::pod::test_support::*;
    use std::collections::BTreeMap;

    // ---- update validation ------------------------------------------------------------------

    fn update_errors(mutate: impl FnOnce(&mut Pod), old: &Pod) -> Vec<String> {
        let mut new = old.clone();
        mutate(&mut new);
        messages(&validate_pod_update(&new, old))
    }

    fn forbidden() -> String {
        format!("spec: Forbidden: {POD_UPDATE_FORBIDDEN_MESSAGE}\n")
    }

    #[test]
    fn update_allows_image_changes() {
        let old = valid_pod();
        assert!(
            update_errors(|p| container_mut(p).image = Some("mongo:3.4".into()), &old).is_empty()
        );
        assert_eq!(
            update_errors(|p| container_mut(p).image = Some(String::new()), &old),
            vec![
                "spec.containers[0].image: Required value".to_string(),
                "spec.containers[0].image: Required value".to_string()
            ]
        );
    }

    #[test]
    fn update_rejects_other_spec_changes_with_upstream_message() {
        let old = valid_pod();
        assert_eq!(
            POD_UPDATE_FORBIDDEN_MESSAGE,
            "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"
        );
        let cases: [fn(&mut Pod); 4] = [
            |p| container_mut(p).args = Some(vec!["--other".into()]),
            |p| spec_mut(p).restart_policy = Some("Never".into()),
            |p| spec_mut(p).termination_grace_period_seconds = Some(10),
            |p| {
                spec_mut(p).node_selector =
                    Some(BTreeMap::from([("a".to_string(), "b".to_string())]))
            },
        ];
        for mutate in cases {
            assert_eq!(update_errors(mutate, &old), vec![forbidden()]);
        }
    }

    #[test]
    fn update_treats_empty_and_absent_as_equal() {
        let old = valid_pod();
        let cases: [fn(&mut Pod); 5] = [
            |p| spec_mut(p).volumes = Some(vec![]),
            |p| spec_mut(p).host_network = Some(false),
            |p| spec_mut(p).node_selector = Some(BTreeMap::new()),
            |p| spec_mut(p).service_account = None,
            |p| container_mut(p).working_dir = Some(String::new()),
        ];
        for mutate in cases {
            assert!(update_errors(mutate, &old).is_empty());
        }
        let mut with_limits = valid_pod();
        container_mut(&mut with_limits).resources = Some(
            serde_json::from_value(json!({"limits": {"cpu": "1"}, "requests": {"cpu": "1"}}))
                .expect("resources"),
        );
        let canonical = |p: &mut Pod| {
            container_mut(p).resources = Some(
                serde_json::from_value(
                    json!({"limits": {"cpu": "1000m"}, "requests": {"cpu": "1"}}),
                )
                .expect("resources"),
            );
        };
        assert!(update_errors(canonical, &with_limits).is_empty());
    }

    #[test]
    fn update_keeps_metadata_identity_immutable() {
        let mut old = valid_pod();
        old.metadata.uid = Some("u1".into());
        assert_eq!(
            update_errors(|p| p.metadata.name = Some("other".into()), &old),
            vec!["metadata.name: Invalid value: \"other\": field is immutable".to_string()]
        );
        assert_eq!(
            update_errors(|p| p.metadata.namespace = Some("kube-system".into()), &old),
            vec![
                "metadata.namespace: Invalid value: \"kube-system\": field is immutable"
                    .to_string()
            ]
        );
        assert_eq!(
            update_errors(|p| p.metadata.uid = Some("u2".into()), &old),
            vec!["metadata.uid: Invalid value: \"u2\": field is immutable".to_string()]
        );
        assert!(update_errors(
            |p| {
                p.metadata
                    .labels
                    .get_or_insert_with(BTreeMap::new)
                    .insert("new".into(), "label".into());
            },
            &old
        )
        .is_empty());
    }

    #[test]
    fn update_limits_active_deadline_changes() {
        let old = valid_pod();
        assert!(
            update_errors(|p| spec_mut(p).active_deadline_seconds = Some(100), &old).is_empty()
        );
        let mut with_deadline = valid_pod();
        spec_mut(&mut with_deadline).active_deadline_seconds = Some(100);
        assert!(update_errors(
            |p| spec_mut(p).active_deadline_seconds = Some(50),
            &with_deadline
        )
        .is_empty());
        assert_eq!(
            update_errors(|p| spec_mut(p).active_deadline_seconds = Some(200), &with_deadline),
            vec!["spec.activeDeadlineSeconds: Invalid value: 200: must be less than or equal to previous value".to_string()]
        );
        assert_eq!(
            update_errors(|p| spec_mut(p).active_deadline_seconds = None, &with_deadline),
            vec!["spec.activeDeadlineSeconds: Invalid value: null: must not update from a positive integer to nil value".to_string()]
        );
    }

    #[test]
    fn update_allows_only_added_tolerations() {
        let old = valid_pod();
        assert!(update_errors(
            |p| {
                spec_mut(p)
                    .tolerations
                    .get_or_insert_with(Vec::new)
                    .push(Toleration {
                        key: Some("k".into()),
                        operator: Some("Exists".into()),
                        ..Default::default()
                    });
            },
            &old
        )
        .is_empty());
        assert!(update_errors(
            |p| {
                if let Some(t) = spec_mut(p).tolerations.as_mut() {
                    t[0].toleration_seconds = Some(10);
                }
            },
            &old
        )
        .is_empty());
        assert_eq!(
            update_errors(|p| spec_mut(p).tolerations = None, &old),
            vec!["spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds".to_string()]
        );
    }

    #[test]
    fn update_allows_grace_period_from_negative_to_one() {
        let mut old = valid_pod();
        spec_mut(&mut old).termination_grace_period_seconds = Some(-1);
        assert!(update_errors(
            |p| spec_mut(p).termination_grace_period_seconds = Some(1),
            &old
        )
        .is_empty());
        assert_eq!(
            update_errors(
                |p| spec_mut(p).termination_grace_period_seconds = Some(2),
                &old
            ),
            vec![forbidden()]
        );
    }

    #[test]
    fn update_rejects_adding_containers() {
        let old = valid_pod();
        let errs = update_errors(
            |p| {
                let mut c = spec_mut(p).containers[0].clone();
                c.name = "two".into();
                spec_mut(p).containers.push(c);
            },
            &old,
        );
        assert_eq!(
            errs,
            vec![
                "spec.containers: Forbidden: pod updates may not add or remove containers"
                    .to_string()
            ]
        );
    }

    #[test]
    fn update_handles_scheduling_gates_and_gated_node_selectors() {
        let mut gated = valid_pod();
        spec_mut(&mut gated).scheduling_gates =
            Some(vec![k8s_openapi::api::core::v1::PodSchedulingGate {
                name: "example.com/a".into(),
            }]);
        spec_mut(&mut gated).node_selector =
            Some(BTreeMap::from([("zone".to_string(), "a".to_string())]));
        assert!(update_errors(|p| spec_mut(p).scheduling_gates = None, &gated).is_empty());
        assert!(update_errors(
            |p| {
                spec_mut(p)
                    .node_selector
                    .get_or_insert_with(BTreeMap::new)
                    .insert("disk".into(), "ssd".into());
            },
            &gated
        )
        .is_empty());
        assert_eq!(
            update_errors(|p| spec_mut(p).node_selector = Some(BTreeMap::from([("zone".to_string(), "b".to_string())])), &gated),
            vec!["spec.nodeSelector: Invalid value: map[string]string{\"zone\":\"b\"}: only additions to spec.nodeSelector are allowed (no mutations or deletions)".to_string()]
        );
        assert_eq!(
            update_errors(|p| {
                spec_mut(p).scheduling_gates.get_or_insert_with(Vec::new).push(k8s_openapi::api::core::v1::PodSchedulingGate { name: "example.com/b".into() });
            }, &gated),
            vec!["spec.schedulingGates[1].name: Forbidden: only deletion is allowed, but found new scheduling gate 'example.com/b'".to_string()]
        );
    }
}
