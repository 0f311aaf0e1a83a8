//! Validation of the RBAC kinds, as upstream's `pkg/apis/rbac/validation`: names are path
//! segments, every rule has verbs and either resources (with API groups) or non-resource URLs
//! (cluster roles only), a roleRef names a Role or ClusterRole of the RBAC group and never
//! changes, subjects are Users, Groups or ServiceAccounts of their own API group.

use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};

use super::GROUP;
use crate::meta::validation::{name_is_dns_subdomain, validate_path_segment_name};
use crate::registry::field_error::{self, go_string_slice, validate_object_meta, Literal};
use crate::registry::FieldError;

/// Upstream `ValidateRBACName`: any name that can be a URL path segment.
fn rbac_name(name: &str, prefix: bool) -> Vec<String> {
    validate_path_segment_name(name, prefix)
}

/// Upstream `ValidatePolicyRule`.
pub fn validate_policy_rule(rule: &PolicyRule, namespaced: bool, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let non_empty = |v: &Option<Vec<String>>| v.as_ref().is_some_and(|v| !v.is_empty());
    if rule.verbs.is_empty() {
        errs.push(FieldError::required(
            format!("{path}.verbs"),
            "verbs must contain at least one value",
        ));
    }
    if let Some(urls) = rule.non_resource_urls.as_ref().filter(|u| !u.is_empty()) {
        let value = || Literal(go_string_slice(urls));
        if namespaced {
            errs.push(FieldError::invalid(
                format!("{path}.nonResourceURLs"),
                value(),
                "namespaced rules cannot apply to non-resource URLs",
            ));
        }
        if non_empty(&rule.api_groups)
            || non_empty(&rule.resources)
            || non_empty(&rule.resource_names)
        {
            errs.push(FieldError::invalid(
                format!("{path}.nonResourceURLs"),
                value(),
                "rules cannot apply to both regular resources and non-resource URLs",
            ));
        }
        return errs;
    }
    if !non_empty(&rule.api_groups) {
        errs.push(FieldError::required(
            format!("{path}.apiGroups"),
            "resource rules must supply at least one api group",
        ));
    }
    if !non_empty(&rule.resources) {
        errs.push(FieldError::required(
            format!("{path}.resources"),
            "resource rules must supply at least one resource",
        ));
    }
    errs
}

fn validate_rules(rules: Option<&Vec<PolicyRule>>, namespaced: bool) -> Vec<FieldError> {
    rules
        .into_iter()
        .flatten()
        .enumerate()
        .flat_map(|(i, r)| validate_policy_rule(r, namespaced, &format!("rules[{i}]")))
        .collect()
}

pub fn validate_role(role: &Role) -> Vec<FieldError> {
    let mut errs = validate_object_meta(&role.metadata, true, rbac_name);
    errs.extend(validate_rules(role.rules.as_ref(), true));
    errs
}

pub fn validate_cluster_role(role: &ClusterRole) -> Vec<FieldError> {
    let mut errs = validate_object_meta(&role.metadata, false, rbac_name);
    errs.extend(validate_rules(role.rules.as_ref(), false));
    if let Some(aggregation) = &role.aggregation_rule {
        let selectors = aggregation
            .cluster_role_selectors
            .as_deref()
            .unwrap_or_default();
        if selectors.is_empty() {
            errs.push(FieldError::required(
                "aggregationRule.clusterRoleSelectors",
                "at least one clusterRoleSelector required if aggregationRule is non-nil",
            ));
        }
        for (i, selector) in selectors.iter().enumerate() {
            let path = format!("aggregationRule.clusterRoleSelectors[{i}]");
            for (j, e) in selector.match_expressions.iter().flatten().enumerate() {
                if !matches!(
                    e.operator.as_str(),
                    "In" | "NotIn" | "Exists" | "DoesNotExist"
                ) {
                    errs.push(FieldError::invalid(
                        format!("{path}.matchExpressions[{j}].operator"),
                        e.operator.clone(),
                        "not a valid selector operator",
                    ));
                }
            }
            errs.extend(field_error::validate_labels(
                &selector.match_labels.clone().unwrap_or_default(),
                &format!("{path}.matchLabels"),
            ));
        }
    }
    errs
}

fn validate_role_ref(role_ref: &RoleRef, kinds: &[&str]) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if role_ref.api_group != GROUP {
        errs.push(FieldError::not_supported(
            "roleRef.apiGroup",
            role_ref.api_group.clone(),
            &[GROUP],
        ));
    }
    if !kinds.contains(&role_ref.kind.as_str()) {
        errs.push(FieldError::not_supported(
            "roleRef.kind",
            role_ref.kind.clone(),
            kinds,
        ));
    }
    if role_ref.name.is_empty() {
        errs.push(FieldError::required("roleRef.name", ""));
    } else {
        for msg in rbac_name(&role_ref.name, false) {
            errs.push(FieldError::invalid(
                "roleRef.name",
                role_ref.name.clone(),
                msg,
            ));
        }
    }
    errs
}

/// Upstream `ValidateRoleBindingSubject`.
pub fn validate_subject(subject: &Subject, namespaced: bool, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if subject.name.is_empty() {
        errs.push(FieldError::required(format!("{path}.name"), ""));
    }
    let api_group = subject.api_group.clone().unwrap_or_default();
    match subject.kind.as_str() {
        "ServiceAccount" => {
            if !subject.name.is_empty() {
                for msg in name_is_dns_subdomain(&subject.name, false) {
                    errs.push(FieldError::invalid(
                        format!("{path}.name"),
                        subject.name.clone(),
                        msg,
                    ));
                }
            }
            if !api_group.is_empty() {
                errs.push(FieldError::not_supported(
                    format!("{path}.apiGroup"),
                    api_group,
                    &[""],
                ));
            }
            if !namespaced && subject.namespace.as_deref().unwrap_or("").is_empty() {
                errs.push(FieldError::required(format!("{path}.namespace"), ""));
            }
        }
        "User" | "Group" => {
            if api_group != GROUP {
                errs.push(FieldError::not_supported(
                    format!("{path}.apiGroup"),
                    api_group,
                    &[GROUP],
                ));
            }
        }
        other => errs.push(FieldError::not_supported(
            format!("{path}.kind"),
            other.to_string(),
            &["ServiceAccount", "User", "Group"],
        )),
    }
    errs
}

fn validate_subjects(subjects: Option<&Vec<Subject>>, namespaced: bool) -> Vec<FieldError> {
    subjects
        .into_iter()
        .flatten()
        .enumerate()
        .flat_map(|(i, s)| validate_subject(s, namespaced, &format!("subjects[{i}]")))
        .collect()
}

pub fn validate_role_binding(b: &RoleBinding) -> Vec<FieldError> {
    let mut errs = validate_object_meta(&b.metadata, true, rbac_name);
    errs.extend(validate_role_ref(&b.role_ref, &["Role", "ClusterRole"]));
    errs.extend(validate_subjects(b.subjects.as_ref(), true));
    errs
}

pub fn validate_cluster_role_binding(b: &ClusterRoleBinding) -> Vec<FieldError> {
    let mut errs = validate_object_meta(&b.metadata, false, rbac_name);
    errs.extend(validate_role_ref(&b.role_ref, &["ClusterRole"]));
    errs.extend(validate_subjects(b.subjects.as_ref(), false));
    errs
}

/// A binding's roleRef is fixed at creation: a binding to another role is a new binding.
pub fn role_ref_unchanged(new: &RoleRef, old: &RoleRef) -> Vec<FieldError> {
    if new == old {
        return Vec::new();
    }
    vec![FieldError::invalid(
        "roleRef",
        Literal(format!(
            "rbac.RoleRef{{APIGroup:{:?}, Kind:{:?}, Name:{:?}}}",
            new.api_group, new.kind, new.name
        )),
        "cannot change roleRef",
    )]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(verbs: &[&str], groups: &[&str], resources: &[&str], urls: &[&str]) -> PolicyRule {
        let list = |v: &[&str]| (!v.is_empty()).then(|| v.iter().map(|s| s.to_string()).collect());
        PolicyRule {
            verbs: verbs.iter().map(|s| s.to_string()).collect(),
            api_groups: list(groups),
            resources: list(resources),
            non_resource_urls: list(urls),
            resource_names: None,
        }
    }

    fn messages(errs: Vec<FieldError>) -> Vec<String> {
        errs.iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn rules_need_verbs_and_either_resources_or_urls() {
        assert!(
            validate_policy_rule(&rule(&["get"], &[""], &["pods"], &[]), true, "rules[0]")
                .is_empty()
        );
        assert_eq!(
            messages(validate_policy_rule(&rule(&[], &[], &[], &[]), true, "rules[0]")),
            [
                "rules[0].verbs: Required value: verbs must contain at least one value",
                "rules[0].apiGroups: Required value: resource rules must supply at least one api group",
                "rules[0].resources: Required value: resource rules must supply at least one resource",
            ]
        );
        assert_eq!(
            messages(validate_policy_rule(&rule(&["get"], &[""], &[], &["/healthz"]), true, "rules[1]")),
            [
                "rules[1].nonResourceURLs: Invalid value: []string{\"/healthz\"}: namespaced rules cannot apply to non-resource URLs",
                "rules[1].nonResourceURLs: Invalid value: []string{\"/healthz\"}: rules cannot apply to both regular resources and non-resource URLs",
            ]
        );
        assert!(
            validate_policy_rule(&rule(&["get"], &[], &[], &["/healthz"]), false, "r").is_empty()
        );
    }

    #[test]
    fn subjects_and_role_refs_read_as_upstream() {
        let subject = |kind: &str, group: Option<&str>, ns: Option<&str>| Subject {
            kind: kind.into(),
            name: "x".into(),
            api_group: group.map(str::to_string),
            namespace: ns.map(str::to_string),
        };
        assert!(validate_subject(&subject("User", Some(GROUP), None), false, "s").is_empty());
        assert_eq!(
            messages(validate_subject(&subject("User", Some("v1"), None), false, "subjects[0]")),
            ["subjects[0].apiGroup: Unsupported value: \"v1\": supported values: \"rbac.authorization.k8s.io\""]
        );
        assert_eq!(
            messages(validate_subject(
                &subject("ServiceAccount", Some(""), None),
                false,
                "subjects[0]"
            )),
            ["subjects[0].namespace: Required value"]
        );
        assert!(validate_subject(&subject("ServiceAccount", Some(""), None), true, "s").is_empty());
        assert_eq!(
            messages(validate_subject(&subject("Robot", None, None), true, "subjects[0]")),
            ["subjects[0].kind: Unsupported value: \"Robot\": supported values: \"ServiceAccount\", \"User\", \"Group\""]
        );
        let role_ref = RoleRef {
            api_group: GROUP.into(),
            kind: "Role".into(),
            name: "a/b".into(),
        };
        assert_eq!(
            messages(validate_role_ref(&role_ref, &["ClusterRole"])),
            [
                "roleRef.kind: Unsupported value: \"Role\": supported values: \"ClusterRole\"",
                "roleRef.name: Invalid value: \"a/b\": may not contain '/'",
            ]
        );
        let other = RoleRef {
            name: "c".into(),
            ..role_ref.clone()
        };
        assert_eq!(
            messages(role_ref_unchanged(&other, &role_ref)),
            ["roleRef: Invalid value: rbac.RoleRef{APIGroup:\"rbac.authorization.k8s.io\", Kind:\"Role\", Name:\"c\"}: cannot change roleRef"]
        );
    }
}
