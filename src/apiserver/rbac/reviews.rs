//! The reviews, which ask the authenticator or the authorizer a question and store nothing:
//! about the caller itself, `SelfSubjectAccessReview` (`kubectl auth can-i`),
//! `SelfSubjectRulesReview` (`kubectl auth can-i --list`) and `SelfSubjectReview`
//! (`kubectl auth whoami`); about anyone, `SubjectAccessReview` and `TokenReview` (what a
//! webhook or an aggregated server asks), as upstream's `pkg/registry/authorization/*` and
//! `pkg/registry/authentication/*`.

use serde_json::{json, Value};

use super::RbacDecision;
use crate::apiserver::authz::{self, Attributes, Decision};
use crate::apiserver::Server;
use crate::meta::ApiError;
use crate::registry::ResourceInfo;
use crate::tls::User;

static ACCESS_REVIEW: ResourceInfo = ResourceInfo {
    group: "authorization.k8s.io",
    version: "v1",
    kind: "SelfSubjectAccessReview",
    plural: "selfsubjectaccessreviews",
    singular: "selfsubjectaccessreview",
    short_names: &[],
    categories: &[],
    namespaced: false,
    subresources: &[],
};

static RULES_REVIEW: ResourceInfo = ResourceInfo {
    group: "authorization.k8s.io",
    version: "v1",
    kind: "SelfSubjectRulesReview",
    plural: "selfsubjectrulesreviews",
    singular: "selfsubjectrulesreview",
    short_names: &[],
    categories: &[],
    namespaced: false,
    subresources: &[],
};

static SUBJECT_REVIEW: ResourceInfo = ResourceInfo {
    group: "authentication.k8s.io",
    version: "v1",
    kind: "SelfSubjectReview",
    plural: "selfsubjectreviews",
    singular: "selfsubjectreview",
    short_names: &[],
    categories: &[],
    namespaced: false,
    subresources: &[],
};

static TOKEN_REVIEW: ResourceInfo = ResourceInfo {
    group: "authentication.k8s.io",
    version: "v1",
    kind: "TokenReview",
    plural: "tokenreviews",
    singular: "tokenreview",
    short_names: &[],
    categories: &[],
    namespaced: false,
    subresources: &[],
};

static SUBJECT_ACCESS_REVIEW: ResourceInfo = ResourceInfo {
    group: "authorization.k8s.io",
    version: "v1",
    kind: "SubjectAccessReview",
    plural: "subjectaccessreviews",
    singular: "subjectaccessreview",
    short_names: &[],
    categories: &[],
    namespaced: false,
    subresources: &[],
};

static LOCAL_SUBJECT_ACCESS_REVIEW: ResourceInfo = ResourceInfo {
    group: "authorization.k8s.io",
    version: "v1",
    kind: "LocalSubjectAccessReview",
    plural: "localsubjectaccessreviews",
    singular: "localsubjectaccessreview",
    short_names: &[],
    categories: &[],
    namespaced: true,
    subresources: &[],
};

/// The review resources, for discovery (create only).
pub fn infos() -> [&'static ResourceInfo; 6] {
    [
        &SUBJECT_REVIEW,
        &TOKEN_REVIEW,
        &LOCAL_SUBJECT_ACCESS_REVIEW,
        &ACCESS_REVIEW,
        &RULES_REVIEW,
        &SUBJECT_ACCESS_REVIEW,
    ]
}

/// The one verb the reviews serve.
pub const VERBS: &[&str] = &["create"];

/// Whether `group`/`version`/`plural` names a review.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static ResourceInfo> {
    infos()
        .into_iter()
        .find(|i| i.group == group && i.version == version && i.plural == plural)
}

fn text<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// Answers a review `body` for `user` (the request is already authorized to create it);
/// `namespace` is the request path's, for the one namespaced review.
pub async fn answer(
    server: &Server,
    user: &User,
    info: &ResourceInfo,
    body: &Value,
    namespace: &str,
) -> Result<Value, ApiError> {
    let kind = body
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or(info.kind);
    if kind != info.kind {
        return Err(ApiError::bad_request(format!(
            "no kind {kind:?} is registered for version {:?} in scheme \"pkg/api/legacyscheme/scheme.go:30\"",
            info.api_version()
        )));
    }
    let mut out = body.clone();
    out["apiVersion"] = json!(info.api_version());
    out["kind"] = json!(info.kind);
    if out.get("metadata").is_none_or(|m| !m.is_object()) {
        out["metadata"] = json!({});
    }
    out["metadata"]["creationTimestamp"] = Value::Null;
    let strings = |pointer: &str| -> Vec<String> {
        body.pointer(pointer)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    match info.kind {
        "SelfSubjectAccessReview" => {
            out["status"] = access_status(server, user, body, info)?;
        }
        "SubjectAccessReview" | "LocalSubjectAccessReview" => {
            if info.namespaced {
                match text(body, "/metadata/namespace") {
                    "" => out["metadata"]["namespace"] = json!(namespace),
                    given if given != namespace => {
                        return Err(ApiError::bad_request(
                            "the namespace of the provided object does not match the namespace sent on the request",
                        ))
                    }
                    _ => {}
                }
                if body
                    .pointer("/spec/nonResourceAttributes")
                    .is_some_and(Value::is_object)
                {
                    return Err(invalid_spec(
                        info,
                        "spec.nonResourceAttributes",
                        Value::Null,
                        "disallowed on this kind of request",
                    ));
                }
                let asked = text(body, "/spec/resourceAttributes/namespace");
                if body
                    .pointer("/spec/resourceAttributes")
                    .is_some_and(Value::is_object)
                    && asked != namespace
                {
                    return Err(invalid_spec(
                        info,
                        "spec.resourceAttributes.namespace",
                        Value::String(asked.to_string()),
                        "must match metadata.namespace",
                    ));
                }
            }
            // The subject is the spec's, exactly as given: no group is added to it.
            let subject = User {
                name: text(body, "/spec/user").to_string(),
                groups: strings("/spec/groups"),
                ..User::default()
            };
            if subject.name.is_empty() && subject.groups.is_empty() {
                return Err(invalid_spec(
                    info,
                    "spec.user",
                    Value::String(String::new()),
                    "at least one of user or group must be specified",
                ));
            }
            out["status"] = access_status(server, &subject, body, info)?;
        }
        "TokenReview" => {
            let token = text(body, "/spec/token");
            if token.is_empty() {
                return Err(ApiError::bad_request(
                    "token is required for TokenReview in authentication",
                ));
            }
            let requested = strings("/spec/audiences");
            let audiences = if requested.is_empty() {
                server.tokens.audiences().to_vec()
            } else {
                requested
            };
            out["status"] = match server
                .tokens
                .authenticate_for(&server.registry, token, &audiences)
                .await
            {
                Some((reviewed, valid_for)) => json!({
                    "authenticated": true,
                    "user": reviewed.info(),
                    "audiences": valid_for,
                }),
                None => json!({"user": {}, "error": "invalid bearer token"}),
            };
        }
        "SelfSubjectRulesReview" => {
            let namespace = text(body, "/spec/namespace");
            out["status"] = rules_status(server, user, namespace);
        }
        _ => {
            out["status"] = json!({"userInfo": user.info()});
        }
    }
    Ok(out)
}

fn access_status(
    server: &Server,
    user: &User,
    body: &Value,
    info: &ResourceInfo,
) -> Result<Value, ApiError> {
    let spec = body.get("spec").cloned().unwrap_or(Value::Null);
    let resource = spec.get("resourceAttributes").filter(|v| v.is_object());
    let non_resource = spec.get("nonResourceAttributes").filter(|v| v.is_object());
    let (allowed, reason) = match (resource, non_resource) {
        (Some(_), Some(_)) => {
            return Err(invalid_spec(
                info,
                "spec.nonResourceAttributes",
                Value::Null,
                "cannot be specified in combination with resourceAttributes",
            ))
        }
        (None, None) => {
            return Err(invalid_spec(
                info,
                "spec.resourceAttributes",
                Value::Null,
                "exactly one of nonResourceAttributes or resourceAttributes must be specified",
            ))
        }
        (Some(r), None) => {
            let a = Attributes {
                verb: text(r, "/verb"),
                group: text(r, "/group"),
                resource: text(r, "/resource"),
                subresource: text(r, "/subresource"),
                namespace: text(r, "/namespace"),
                name: text(r, "/name"),
                node_selector: None,
            };
            match authz::authorize(user, &a, &server.rbac) {
                Decision::Allow => (true, String::new()),
                // The Node authorizer's answers that need the Pod graph: a review names no
                // Pod to look up, so they stay refusals.
                Decision::AllowIfBound { .. } | Decision::AllowIfReferenced { .. } => {
                    (false, String::new())
                }
                Decision::Deny(reason) => (false, reason),
            }
        }
        (None, Some(n)) => {
            let (verb, path) = (text(n, "/verb"), text(n, "/path"));
            if user.in_group(authz::MASTERS) {
                (true, String::new())
            } else {
                match server.rbac.authorize_path(user, verb, path) {
                    RbacDecision::Allow(reason) => (true, reason),
                    RbacDecision::NoOpinion(reason) => (false, reason),
                }
            }
        }
    };
    let mut status = json!({"allowed": allowed});
    if !reason.is_empty() {
        status["reason"] = json!(reason);
    }
    Ok(status)
}

fn invalid_spec(info: &ResourceInfo, field: &str, value: Value, why: &str) -> ApiError {
    let value = match value {
        Value::String(s) => crate::registry::field_error::Literal(format!("{s:?}")),
        _ => crate::registry::field_error::Literal("null".into()),
    };
    let err = crate::registry::FieldError::invalid(field, value, why);
    let gr = crate::meta::GroupResource {
        group: info.group,
        resource: info.plural,
    };
    // Upstream names the kind with its group: `SubjectAccessReview.authorization.k8s.io`.
    let kind = format!("{}.{}", info.kind, info.group);
    ApiError::invalid(&kind, gr, "", vec![err.cause()])
}

/// Every rule the caller holds in `namespace`, as upstream's `RulesFor` reports them (the
/// admin's come from the bootstrap `cluster-admin` binding); the Node authorizer's rules stay
/// in code, so a kubelet's list is marked `incomplete`.
fn rules_status(server: &Server, user: &User, namespace: &str) -> Value {
    let (rules, errors) = server.rbac.rules_for(user, namespace);
    let mut resource_rules = Vec::new();
    let mut non_resource_rules = Vec::new();
    for rule in rules {
        if let Some(urls) = rule.non_resource_urls.filter(|u| !u.is_empty()) {
            non_resource_rules.push(json!({"verbs": rule.verbs, "nonResourceURLs": urls}));
            continue;
        }
        let mut r = json!({"verbs": rule.verbs});
        if let Some(groups) = rule.api_groups {
            r["apiGroups"] = json!(groups);
        }
        if let Some(resources) = rule.resources {
            r["resources"] = json!(resources);
        }
        if let Some(names) = rule.resource_names.filter(|n| !n.is_empty()) {
            r["resourceNames"] = json!(names);
        }
        resource_rules.push(r);
    }
    let incomplete = !errors.is_empty() || authz::node_name(user).is_some();
    let mut status = json!({
        "resourceRules": resource_rules,
        "nonResourceRules": non_resource_rules,
        "incomplete": incomplete,
    });
    if !errors.is_empty() {
        status["evaluationError"] = json!(errors.join(", "));
    }
    status
}
