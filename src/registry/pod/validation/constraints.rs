//! Pod validation of user and group IDs in security contexts and of node affinity, as
//! kube-apiserver v1.32 does it (`pkg/apis/core/validation`: `validatePodSpecSecurityContext`,
//! `ValidateSecurityContext`, `validateAffinity` and the node selector validators).

use k8s_openapi::api::core::v1::{
    NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, PodSpec,
    PreferredSchedulingTerm, SecurityContext,
};

use crate::registry::field_error::{
    inclusive_range_error, is_qualified_name, is_valid_label_value, name_is_dns_subdomain,
    FieldError,
};

/// The largest user or group ID upstream accepts (`math.MaxInt32`).
const MAX_ID: i64 = i32::MAX as i64;

/// Upstream's `IsValidUserID` / `IsValidGroupID`: both are 0..=2^31-1.
fn id_errors(value: i64, path: String) -> Vec<FieldError> {
    if (0..=MAX_ID).contains(&value) {
        return Vec::new();
    }
    vec![FieldError::invalid(
        path,
        value,
        inclusive_range_error(0, MAX_ID),
    )]
}

/// The Pod-level `securityContext`: `fsGroup`, `runAsUser`, `runAsGroup` and every
/// `supplementalGroups` entry, in upstream's order.
pub fn validate_pod_security_context(spec: &PodSpec) -> Vec<FieldError> {
    let Some(sc) = &spec.security_context else {
        return Vec::new();
    };
    let p = "spec.securityContext";
    let mut errs = Vec::new();
    if let Some(v) = sc.fs_group {
        errs.extend(id_errors(v, format!("{p}.fsGroup")));
    }
    if let Some(v) = sc.run_as_user {
        errs.extend(id_errors(v, format!("{p}.runAsUser")));
    }
    if let Some(v) = sc.run_as_group {
        errs.extend(id_errors(v, format!("{p}.runAsGroup")));
    }
    for (i, g) in sc.supplemental_groups.iter().flatten().enumerate() {
        errs.extend(id_errors(*g, format!("{p}.supplementalGroups[{i}]")));
    }
    errs
}

/// Every container's `securityContext` (`runAsUser`, `runAsGroup`): regular, init and
/// ephemeral containers.
pub fn validate_container_security_contexts(spec: &PodSpec) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let regular = spec.containers.iter().map(|c| c.security_context.as_ref());
    errs.extend(container_list("spec.containers", regular));
    let init = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| c.security_context.as_ref());
    errs.extend(container_list("spec.initContainers", init));
    let ephemeral = spec
        .ephemeral_containers
        .iter()
        .flatten()
        .map(|c| c.security_context.as_ref());
    errs.extend(container_list("spec.ephemeralContainers", ephemeral));
    errs
}

fn container_list<'a>(
    path: &str,
    contexts: impl Iterator<Item = Option<&'a SecurityContext>>,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, sc) in contexts.enumerate() {
        let Some(sc) = sc else { continue };
        let p = format!("{path}[{i}].securityContext");
        if let Some(v) = sc.run_as_user {
            errs.extend(id_errors(v, format!("{p}.runAsUser")));
        }
        if let Some(v) = sc.run_as_group {
            errs.extend(id_errors(v, format!("{p}.runAsGroup")));
        }
    }
    errs
}

/// `spec.affinity.nodeAffinity`: required terms (at least one; operators, keys and label
/// values checked) and preferred terms (weight 1-100; label values not checked, as upstream
/// lets old objects keep them).
pub fn validate_node_affinity(spec: &PodSpec) -> Vec<FieldError> {
    let Some(NodeAffinity {
        required_during_scheduling_ignored_during_execution: required,
        preferred_during_scheduling_ignored_during_execution: preferred,
    }) = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
    else {
        return Vec::new();
    };
    let p = "spec.affinity.nodeAffinity";
    let mut errs = Vec::new();
    if let Some(required) = required {
        errs.extend(node_selector(
            required,
            &format!("{p}.requiredDuringSchedulingIgnoredDuringExecution"),
        ));
    }
    for (i, PreferredSchedulingTerm { weight, preference }) in
        preferred.iter().flatten().enumerate()
    {
        let term = format!("{p}.preferredDuringSchedulingIgnoredDuringExecution[{i}]");
        if !(1..=100).contains(weight) {
            errs.push(FieldError::invalid(
                format!("{term}.weight"),
                i64::from(*weight),
                "must be in the range 1-100",
            ));
        }
        errs.extend(selector_term(
            preference,
            true,
            &format!("{term}.preference"),
        ));
    }
    errs
}

fn node_selector(selector: &NodeSelector, path: &str) -> Vec<FieldError> {
    let terms = format!("{path}.nodeSelectorTerms");
    if selector.node_selector_terms.is_empty() {
        return vec![FieldError::required(
            terms,
            "must have at least one node selector term",
        )];
    }
    selector
        .node_selector_terms
        .iter()
        .enumerate()
        .flat_map(|(i, term)| selector_term(term, false, &format!("{terms}[{i}]")))
        .collect()
}

fn selector_term(
    term: &NodeSelectorTerm,
    allow_invalid_label_values: bool,
    path: &str,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (j, rq) in term.match_expressions.iter().flatten().enumerate() {
        errs.extend(label_requirement(
            rq,
            allow_invalid_label_values,
            &format!("{path}.matchExpressions[{j}]"),
        ));
    }
    for (j, rq) in term.match_fields.iter().flatten().enumerate() {
        errs.extend(field_requirement(rq, &format!("{path}.matchFields[{j}]")));
    }
    errs
}

fn label_requirement(
    rq: &NodeSelectorRequirement,
    allow_invalid_label_values: bool,
    path: &str,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let values = rq.values.as_deref().unwrap_or_default();
    let values_path = format!("{path}.values");
    match rq.operator.as_str() {
        "In" | "NotIn" if values.is_empty() => errs.push(FieldError::required(
            &values_path,
            "must be specified when `operator` is 'In' or 'NotIn'",
        )),
        "Exists" | "DoesNotExist" if !values.is_empty() => errs.push(FieldError::forbidden(
            &values_path,
            "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
        )),
        "Gt" | "Lt" if values.len() != 1 => errs.push(FieldError::required(
            &values_path,
            "must be specified single value when `operator` is 'Lt' or 'Gt'",
        )),
        "In" | "NotIn" | "Exists" | "DoesNotExist" | "Gt" | "Lt" => {}
        other => errs.push(FieldError::invalid(
            format!("{path}.operator"),
            other,
            "not a valid selector operator",
        )),
    }
    for msg in is_qualified_name(&rq.key) {
        errs.push(FieldError::invalid(format!("{path}.key"), &rq.key, msg));
    }
    if !allow_invalid_label_values {
        for (i, value) in values.iter().enumerate() {
            for msg in is_valid_label_value(value) {
                errs.push(FieldError::invalid(
                    format!("{values_path}[{i}]"),
                    value.as_str(),
                    msg,
                ));
            }
        }
    }
    errs
}

fn field_requirement(rq: &NodeSelectorRequirement, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let values = rq.values.as_deref().unwrap_or_default();
    match rq.operator.as_str() {
        "In" | "NotIn" => {
            if values.len() != 1 {
                errs.push(FieldError::required(
                    format!("{path}.values"),
                    "must be only one value when `operator` is 'In' or 'NotIn' for node field selector",
                ));
            }
        }
        other => errs.push(FieldError::invalid(
            format!("{path}.operator"),
            other,
            "not a valid selector operator",
        )),
    }
    // Only `metadata.name` can be selected on, and its values must be node names.
    if rq.key != "metadata.name" {
        errs.push(FieldError::invalid(
            format!("{path}.key"),
            &rq.key,
            "not a valid field selector key",
        ));
    } else {
        for (i, value) in values.iter().enumerate() {
            for msg in name_is_dns_subdomain(value, false) {
                errs.push(FieldError::invalid(
                    format!("{path}.values[{i}]"),
                    value.as_str(),
                    msg,
                ));
            }
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;

    fn spec(value: serde_json::Value) -> PodSpec {
        let pod: Pod = serde_json::from_value(serde_json::json!({"spec": value})).expect("pod");
        pod.spec.expect("spec")
    }

    fn shown(errs: Vec<FieldError>) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn negative_and_oversized_ids_are_refused_at_pod_and_container_level() {
        let s = spec(serde_json::json!({
            "securityContext": {"runAsUser": -1, "runAsGroup": 2147483648i64, "fsGroup": -2,
                "supplementalGroups": [5, -3]},
            "containers": [{"name": "c", "image": "i", "securityContext": {"runAsUser": -1, "runAsGroup": 0}}],
            "initContainers": [{"name": "i", "image": "i", "securityContext": {"runAsGroup": -7}}]
        }));
        let range = "must be between 0 and 2147483647, inclusive";
        assert_eq!(
            shown(validate_pod_security_context(&s)),
            [
                format!("spec.securityContext.fsGroup: Invalid value: -2: {range}"),
                format!("spec.securityContext.runAsUser: Invalid value: -1: {range}"),
                format!("spec.securityContext.runAsGroup: Invalid value: 2147483648: {range}"),
                format!("spec.securityContext.supplementalGroups[1]: Invalid value: -3: {range}"),
            ]
        );
        assert_eq!(
            shown(validate_container_security_contexts(&s)),
            [
                format!("spec.containers[0].securityContext.runAsUser: Invalid value: -1: {range}"),
                format!(
                    "spec.initContainers[0].securityContext.runAsGroup: Invalid value: -7: {range}"
                ),
            ]
        );
        let fine = spec(serde_json::json!({
            "securityContext": {"runAsUser": 0, "runAsGroup": 2147483647, "fsGroup": 1000},
            "containers": [{"name": "c", "image": "i", "securityContext": {"runAsUser": 65534}}]
        }));
        assert!(validate_pod_security_context(&fine).is_empty());
        assert!(validate_container_security_contexts(&fine).is_empty());
    }

    #[test]
    fn node_affinity_follows_upstream_selector_rules() {
        let req = "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms";
        let pref = "spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution";
        let cases: Vec<(serde_json::Value, Vec<String>)> = vec![
            (
                serde_json::json!({"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "zone", "operator": "Bogus", "values": ["a"]}]}]}}),
                vec![format!("{req}[0].matchExpressions[0].operator: Invalid value: \"Bogus\": not a valid selector operator")],
            ),
            (
                serde_json::json!({"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}),
                vec![format!("{req}: Required value: must have at least one node selector term")],
            ),
            (
                serde_json::json!({"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                    {"matchExpressions": [
                        {"key": "zone", "operator": "In"},
                        {"key": "zone", "operator": "Exists", "values": ["a"]},
                        {"key": "n", "operator": "Gt", "values": ["1", "2"]},
                        {"key": "bad key", "operator": "In", "values": ["not a label value"]}
                    ]},
                    {"matchFields": [{"key": "metadata.uid", "operator": "Exists"}]}]}}),
                vec![
                    format!("{req}[0].matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'"),
                    format!("{req}[0].matchExpressions[1].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'"),
                    format!("{req}[0].matchExpressions[2].values: Required value: must be specified single value when `operator` is 'Lt' or 'Gt'"),
                    format!("{req}[0].matchExpressions[3].key: Invalid value: \"bad key\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"),
                    format!("{req}[0].matchExpressions[3].values[0]: Invalid value: \"not a label value\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"),
                    format!("{req}[1].matchFields[0].operator: Invalid value: \"Exists\": not a valid selector operator"),
                    format!("{req}[1].matchFields[0].key: Invalid value: \"metadata.uid\": not a valid field selector key"),
                ],
            ),
            (
                serde_json::json!({"preferredDuringSchedulingIgnoredDuringExecution": [
                    {"weight": 0, "preference": {"matchExpressions": [{"key": "zone", "operator": "Bogus"}]}},
                    {"weight": 5, "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["not a label value"]}]}}]}),
                vec![
                    format!("{pref}[0].weight: Invalid value: 0: must be in the range 1-100"),
                    format!("{pref}[0].preference.matchExpressions[0].operator: Invalid value: \"Bogus\": not a valid selector operator"),
                ],
            ),
        ];
        for (affinity, want) in cases {
            let s =
                spec(serde_json::json!({"containers": [], "affinity": {"nodeAffinity": affinity}}));
            assert_eq!(shown(validate_node_affinity(&s)), want);
        }
    }
}
