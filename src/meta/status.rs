//! The API's error type and its `Status` form: every failed request becomes one of these.
//!
//! Constructors follow `k8s.io/apimachinery/pkg/api/errors` so that kubectl prints the same
//! `Error from server (Reason): message` lines it prints against kube-apiserver.

use serde_json::{json, Value};

/// One `details.causes[]` entry of a `Status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    pub reason: String,
    pub message: String,
    pub field: String,
}

/// An error as the API reports it: HTTP code, machine-readable reason and human message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    /// Boxed: errors travel through every `Result` of a request, so they stay small.
    pub details: Box<Details>,
}

/// The `details` of a `Status`: what the error is about.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Details {
    pub group: String,
    pub kind: String,
    pub name: String,
    pub uid: String,
    pub causes: Vec<Cause>,
    /// Seconds the client should wait before retrying (`Retry-After`), if any.
    pub retry_after: Option<u64>,
}

/// Names the resource an error is about: `pods` in the core group, `leases.coordination.k8s.io`.
#[derive(Debug, Clone, Copy)]
pub struct GroupResource<'a> {
    pub group: &'a str,
    pub resource: &'a str,
}

impl std::fmt::Display for GroupResource<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.group.is_empty() {
            f.write_str(self.resource)
        } else {
            write!(f, "{}.{}", self.resource, self.group)
        }
    }
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: Box::default(),
        }
    }

    fn about(mut self, gr: GroupResource<'_>, name: &str) -> Self {
        self.details.group = gr.group.to_string();
        self.details.kind = gr.resource.to_string();
        self.details.name = name.to_string();
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    pub fn forbidden(gr: GroupResource<'_>, name: &str, why: &str) -> Self {
        let subject = if name.is_empty() {
            gr.to_string()
        } else {
            format!("{gr} \"{name}\"")
        };
        Self::new(403, "Forbidden", format!("{subject} is forbidden: {why}")).about(gr, name)
    }

    /// A 403 about no resource (a non-resource path), as upstream words it.
    pub fn forbidden_path(why: &str) -> Self {
        Self::new(403, "Forbidden", format!("forbidden: {why}"))
    }

    pub fn not_found(gr: GroupResource<'_>, name: &str) -> Self {
        Self::new(404, "NotFound", format!("{gr} \"{name}\" not found")).about(gr, name)
    }

    /// The plain 404 for a path that names no resource at all.
    pub fn path_not_found() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    }

    pub fn method_not_supported(gr: GroupResource<'_>, action: &str) -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            format!("{action} is not supported on resources of kind \"{gr}\""),
        )
        .about(gr, "")
    }

    pub fn not_acceptable(message: impl Into<String>) -> Self {
        Self::new(406, "NotAcceptable", message)
    }

    pub fn already_exists(gr: GroupResource<'_>, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{gr} \"{name}\" already exists"),
        )
        .about(gr, name)
    }

    pub fn conflict(gr: GroupResource<'_>, name: &str, why: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!("Operation cannot be fulfilled on {gr} \"{name}\": {why}"),
        )
        .about(gr, name)
    }

    /// A server-side apply that would change fields other managers own (upstream
    /// `NewApplyConflict`): 409 with one `FieldManagerConflict` cause per field and no
    /// object named in the details.
    pub fn apply_conflict(message: String, causes: Vec<Cause>) -> Self {
        let mut err = Self::new(409, "Conflict", message);
        err.details.causes = causes;
        err
    }

    /// The optimistic-concurrency failure: the client's resourceVersion is stale.
    pub fn modified(gr: GroupResource<'_>, name: &str) -> Self {
        Self::conflict(
            gr,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 410 Expired: a watch or list asked for history that is gone.
    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    pub fn too_large(limit: usize) -> Self {
        Self::new(
            413,
            "RequestEntityTooLarge",
            format!("Request entity too large: limit is {limit}"),
        )
    }

    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (got {content_type:?})"),
        )
    }

    /// 422 Invalid, with one cause per field error: `Pod "db" is invalid: [a, b]`.
    /// Each cause's message is the error without its field, as upstream's `StatusCause`; the
    /// top-level message lists them with their fields.
    pub fn invalid(kind: &str, gr: GroupResource<'_>, name: &str, causes: Vec<Cause>) -> Self {
        let listed: Vec<String> = causes
            .iter()
            .map(|c| {
                if c.field.is_empty() {
                    c.message.clone()
                } else {
                    format!("{}: {}", c.field, c.message)
                }
            })
            .collect();
        let body = match listed.as_slice() {
            [one] => one.clone(),
            many => format!("[{}]", many.join(", ")),
        };
        let mut err = Self::new(
            422,
            "Invalid",
            format!("{kind} \"{name}\" is invalid: {body}"),
        )
        .about(gr, name);
        err.details.kind = kind.to_string();
        err.details.causes = causes;
        err
    }

    pub fn internal(message: impl std::fmt::Display) -> Self {
        Self::new(
            500,
            "InternalError",
            format!("Internal error occurred: {message}"),
        )
    }

    pub fn service_unavailable(message: impl Into<String>) -> Self {
        Self::new(503, "ServiceUnavailable", message)
    }

    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(504, "Timeout", format!("Timeout: {}", message.into()))
    }

    pub fn with_uid(mut self, uid: &str) -> Self {
        self.details.uid = uid.to_string();
        self
    }

    /// The `Status` object sent as the response body (and inside watch `ERROR` events).
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        let d = &self.details;
        let mut details = serde_json::Map::new();
        if !d.name.is_empty() {
            details.insert("name".into(), json!(d.name));
        }
        if !d.group.is_empty() {
            details.insert("group".into(), json!(d.group));
        }
        if !d.kind.is_empty() {
            details.insert("kind".into(), json!(d.kind));
        }
        if !d.uid.is_empty() {
            details.insert("uid".into(), json!(d.uid));
        }
        if !d.causes.is_empty() {
            let causes: Vec<Value> = d
                .causes
                .iter()
                .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
                .collect();
            details.insert("causes".into(), Value::Array(causes));
        }
        if let Some(secs) = d.retry_after {
            details.insert("retryAfterSeconds".into(), json!(secs));
        }
        if !details.is_empty() {
            status["details"] = Value::Object(details);
        }
        status
    }
}

/// The `Status` a successful delete answers with when there is no object left to return.
pub fn success_status(gr: GroupResource<'_>, name: &str, uid: &str) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {"name": name, "group": gr.group, "kind": gr.resource, "uid": uid},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PODS: GroupResource<'static> = GroupResource {
        group: "",
        resource: "pods",
    };

    #[test]
    fn not_found_reads_as_upstream() {
        let err = ApiError::not_found(PODS, "db");
        assert_eq!(err.code, 404);
        assert_eq!(err.message, "pods \"db\" not found");
        let status = err.to_status();
        assert_eq!(status["reason"], "NotFound");
        assert_eq!(status["details"]["kind"], "pods");
        assert_eq!(status["details"]["name"], "db");
    }

    #[test]
    fn invalid_lists_several_causes_in_brackets() {
        let causes = vec![
            Cause {
                reason: "FieldValueRequired".into(),
                message: "Required value".into(),
                field: "spec.containers".into(),
            },
            Cause {
                reason: "FieldValueInvalid".into(),
                message: "Invalid value: \"A\"".into(),
                field: "metadata.name".into(),
            },
        ];
        let err = ApiError::invalid("Pod", PODS, "A", causes);
        assert_eq!(
            err.message,
            "Pod \"A\" is invalid: [spec.containers: Required value, metadata.name: Invalid value: \"A\"]"
        );
        assert_eq!(err.to_status()["details"]["kind"], "Pod");
        assert_eq!(
            err.to_status()["details"]["causes"][0]["field"],
            "spec.containers"
        );
    }

    #[test]
    fn group_appears_after_the_resource() {
        let leases = GroupResource {
            group: "coordination.k8s.io",
            resource: "leases",
        };
        assert_eq!(
            ApiError::already_exists(leases, "n1").message,
            "leases.coordination.k8s.io \"n1\" already exists"
        );
    }

    #[test]
    fn conflict_names_the_object() {
        assert_eq!(
            ApiError::modified(PODS, "db").message,
            "Operation cannot be fulfilled on pods \"db\": the object has been modified; please apply your changes to the latest version and try again"
        );
    }
}
