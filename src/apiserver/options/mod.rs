//! The options of every verb (`CreateOptions`, `UpdateOptions`, `PatchOptions`,
//! `DeleteOptions`), decoded strictly: an option that does not parse or validate fails the
//! request, it never falls back to doing the write for real.
//!
//! Follows kube-apiserver's handlers (`apiserver/pkg/endpoints/handlers/{create,update,patch,
//! delete}.go`) and `apimachinery/pkg/apis/meta/v1/validation`: a value of the wrong type is a
//! 400 BadRequest from decoding; a well-typed value that validation refuses (`dryRun=Bogus`,
//! `propagationPolicy=Bogus`, an over-long `fieldManager`) is a 422 Invalid naming the options
//! kind (`DeleteOptions.meta.k8s.io "" is invalid: ...`). A DELETE body replaces the query
//! entirely, as upstream reads the query only when the body is empty.

use serde::Deserialize;
use serde_json::Value;

pub mod list;

use super::request::Query;
use crate::meta::{ApiError, Cause, GroupResource};
use crate::registry::{CreateOptions, DeleteOptions, FieldValidation, Propagation};

/// Which options object a write verb takes; named in validation errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteKind {
    Create,
    Update,
    Patch,
    /// A PATCH with `application/apply-patch+yaml` (server-side apply).
    Apply,
}

impl WriteKind {
    fn kind(self) -> &'static str {
        match self {
            WriteKind::Create => "CreateOptions",
            WriteKind::Update => "UpdateOptions",
            WriteKind::Patch | WriteKind::Apply => "PatchOptions",
        }
    }
}

/// Upstream's `FieldManagerMaxLength`.
const FIELD_MANAGER_MAX: usize = 128;

/// The 422 for options that decoded but do not validate.
pub(super) fn invalid_options(kind: &'static str, causes: Vec<Cause>) -> ApiError {
    let gr = GroupResource {
        group: "meta.k8s.io",
        resource: kind,
    };
    let mut err = ApiError::invalid(&format!("{kind}.meta.k8s.io"), gr, "", causes);
    err.details.kind = kind.to_string();
    err
}

fn cause(reason: &str, field: &str, message: String) -> Cause {
    Cause {
        reason: reason.into(),
        message,
        field: field.into(),
    }
}

/// Go's `%#v` of a `[]string`, as `field.NotSupported` prints the refused `dryRun`.
fn go_string_slice(values: &[String]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
    format!("[]string{{{}}}", quoted.join(", "))
}

/// `dryRun` may only hold `All` (any number of times); returns whether it asks for a dry run.
fn dry_run(values: &[String], causes: &mut Vec<Cause>) -> bool {
    if values.iter().any(|v| v != "All") {
        causes.push(cause(
            "FieldValueNotSupported",
            "dryRun",
            format!(
                "Unsupported value: {}: supported values: \"All\"",
                go_string_slice(values)
            ),
        ));
        return false;
    }
    !values.is_empty()
}

fn field_manager(value: &str, causes: &mut Vec<Cause>) {
    if value.len() > FIELD_MANAGER_MAX {
        causes.push(cause(
            "FieldValueTooLong",
            "fieldManager",
            format!("Too long: may not be more than {FIELD_MANAGER_MAX} bytes"),
        ));
    }
    for (at, c) in value.char_indices() {
        if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}') {
            causes.push(cause(
                "FieldValueInvalid",
                "fieldManager",
                format!(
                    "Invalid value: {value:?}: invalid character U+{:04X} (at position {at})",
                    c as u32
                ),
            ));
        }
    }
}

/// The options of a create, update or patch, from the query.
pub fn write_options(query: &Query, kind: WriteKind) -> Result<CreateOptions, ApiError> {
    let mut causes = Vec::new();
    let field_validation = match query.get("fieldValidation") {
        None | Some("") | Some("Warn") => FieldValidation::Warn,
        Some("Ignore") => FieldValidation::Ignore,
        Some("Strict") => FieldValidation::Strict,
        Some(other) => {
            causes.push(cause(
                "FieldValueNotSupported",
                "fieldValidation",
                format!("Unsupported value: {other:?}: supported values: \"\", \"Ignore\", \"Strict\", \"Warn\""),
            ));
            FieldValidation::Warn
        }
    };
    if kind == WriteKind::Patch && query.get("force").is_some() {
        query.flag("force")?;
        causes.push(cause(
            "FieldValueForbidden",
            "force",
            "Forbidden: may not be specified for non-apply patch".into(),
        ));
    }
    let force = if kind == WriteKind::Apply {
        if query.get("fieldManager").unwrap_or("").is_empty() {
            // kubectl defaults it; other clients must name themselves to apply.
            causes.push(cause(
                "FieldValueRequired",
                "fieldManager",
                "Required value: is required for apply patch".into(),
            ));
        }
        query.get("force").is_some() && query.flag("force")?
    } else {
        false
    };
    field_manager(query.get("fieldManager").unwrap_or(""), &mut causes);
    let dry_run = dry_run(&query.all("dryRun"), &mut causes);
    if !causes.is_empty() {
        return Err(invalid_options(kind.kind(), causes));
    }
    Ok(CreateOptions {
        dry_run,
        field_validation,
        admit: None,
        field_manager: None,
        force,
    })
}

/// The manager a write is recorded under: its `fieldManager`, else the product of its
/// User-Agent (what precedes the first `/`, without unprintable characters, cut to 128 bytes),
/// as upstream's `managerOrUserAgent`.
pub fn manager_or_user_agent(query: &Query, user_agent: &str) -> String {
    if let Some(manager) = query.get("fieldManager").filter(|m| !m.is_empty()) {
        return manager.to_string();
    }
    let product = user_agent.split('/').next().unwrap_or_default();
    let mut out = String::new();
    for c in product.chars().filter(|c| !c.is_control()) {
        if out.len() + c.len_utf8() > FIELD_MANAGER_MAX {
            break;
        }
        out.push(c);
    }
    out
}

/// A `DeleteOptions` body; fields the type does not know are ignored, as upstream's
/// non-strict decoder ignores them, but a known field of the wrong type fails.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeleteBody {
    kind: Option<String>,
    api_version: Option<String>,
    grace_period_seconds: Option<i64>,
    preconditions: Option<Preconditions>,
    orphan_dependents: Option<bool>,
    propagation_policy: Option<String>,
    dry_run: Option<Vec<String>>,
    #[allow(dead_code)]
    ignore_store_read_error_with_cluster_breaking_potential: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Preconditions {
    uid: Option<String>,
    resource_version: Option<String>,
}

/// The options of a delete or deletecollection: the body when there is one (JSON or YAML
/// already parsed into `body`), else the query.
pub fn delete_options(body: Option<Value>, query: &Query) -> Result<DeleteOptions, ApiError> {
    let decoded = match body {
        Some(value) => {
            let decoded: DeleteBody = serde_json::from_value(value).map_err(|e| {
                ApiError::bad_request(format!("unable to decode DeleteOptions: {e}"))
            })?;
            if let Some(kind) = decoded.kind.as_deref().filter(|k| !k.is_empty()) {
                if kind != "DeleteOptions" {
                    return Err(ApiError::bad_request(format!(
                        "the body of the request must be DeleteOptions, not {kind:?}"
                    )));
                }
            }
            if let Some(version) = decoded.api_version.as_deref().filter(|v| !v.is_empty()) {
                if !matches!(version, "v1" | "meta.k8s.io/v1" | "meta.k8s.io/v1beta1") {
                    return Err(ApiError::bad_request(format!(
                        "no kind \"DeleteOptions\" is registered for version {version:?}"
                    )));
                }
            }
            decoded
        }
        None => DeleteBody {
            grace_period_seconds: query.integer("gracePeriodSeconds")?,
            orphan_dependents: query
                .get("orphanDependents")
                .map(|_| query.flag("orphanDependents"))
                .transpose()?,
            propagation_policy: query.get("propagationPolicy").map(str::to_string),
            dry_run: Some(query.all("dryRun")),
            ..DeleteBody::default()
        },
    };
    let mut causes = Vec::new();
    if let Some(policy) = &decoded.propagation_policy {
        if decoded.orphan_dependents.is_some() {
            causes.push(cause(
                "FieldValueInvalid",
                "propagationPolicy",
                format!("Invalid value: {policy:?}: orphanDependents and deletionPropagation cannot be both set"),
            ));
        }
        if !matches!(policy.as_str(), "Foreground" | "Background" | "Orphan") {
            causes.push(cause(
                "FieldValueNotSupported",
                "propagationPolicy",
                format!("Unsupported value: {policy:?}: supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""),
            ));
        }
    }
    let dry_run = dry_run(&decoded.dry_run.unwrap_or_default(), &mut causes);
    if !causes.is_empty() {
        return Err(invalid_options("DeleteOptions", causes));
    }
    let preconditions = decoded.preconditions.unwrap_or_default();
    let propagation = decoded
        .propagation_policy
        .as_deref()
        .and_then(|policy| match policy {
            "Orphan" => Some(Propagation::Orphan),
            "Background" => Some(Propagation::Background),
            "Foreground" => Some(Propagation::Foreground),
            _ => None,
        });
    Ok(DeleteOptions {
        grace_period: decoded.grace_period_seconds,
        orphan_dependents: decoded.orphan_dependents,
        propagation,
        uid: preconditions.uid,
        resource_version: preconditions.resource_version,
        dry_run,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn q(raw: &str) -> Query {
        Query::parse(Some(raw))
    }

    #[test]
    fn every_dry_run_value_must_be_all() {
        assert!(
            write_options(&q("dryRun=All&dryRun=All"), WriteKind::Create)
                .expect("valid")
                .dry_run
        );
        let err = write_options(&q("dryRun=All&dryRun=Bogus"), WriteKind::Create)
            .expect_err("Bogus refused");
        assert_eq!((err.code, err.reason), (422, "Invalid"));
        assert_eq!(
            err.message,
            "CreateOptions.meta.k8s.io \"\" is invalid: dryRun: Unsupported value: []string{\"All\", \"Bogus\"}: supported values: \"All\""
        );
    }

    #[test]
    fn a_delete_body_wins_over_the_query_and_is_checked() {
        let opts = delete_options(Some(json!({"dryRun": ["All"]})), &q("")).expect("valid");
        assert!(opts.dry_run);
        let opts = delete_options(Some(json!({})), &q("dryRun=All")).expect("valid");
        assert!(!opts.dry_run, "a body replaces the query");
        for bad in [json!({"dryRun": ["all"]}), json!({"dryRun": ["Bogus"]})] {
            assert_eq!(
                delete_options(Some(bad), &q("")).expect_err("bad").code,
                422
            );
        }
        let err = delete_options(Some(json!({"dryRun": "All"})), &q("")).expect_err("string");
        assert_eq!(err.code, 400);
        let err = delete_options(None, &q("propagationPolicy=Bogus")).expect_err("policy");
        assert_eq!(err.code, 422);
        assert_eq!(
            delete_options(None, &q("gracePeriodSeconds=abc"))
                .expect_err("")
                .code,
            400
        );
    }

    #[test]
    fn the_manager_is_the_field_manager_or_the_user_agents_product() {
        let long = "k".repeat(200);
        let cases = [
            (
                "fieldManager=kubectl-create",
                "kubectl/v1.32.0 (linux/amd64)",
                "kubectl-create",
            ),
            (
                "",
                "kubectl/v1.32.0 (linux/amd64) kubernetes/abc",
                "kubectl",
            ),
            ("fieldManager=", "kube-scheduler/v1.32.0", "kube-scheduler"),
            ("", "plain", "plain"),
            ("", "", ""),
            ("", "a\u{7}b/1", "ab"),
            ("", long.as_str(), &long[..FIELD_MANAGER_MAX]),
        ];
        for (query, agent, want) in cases {
            assert_eq!(
                manager_or_user_agent(&q(query), agent),
                want,
                "{query} {agent}"
            );
        }
    }

    #[test]
    fn field_managers_are_short_and_printable() {
        let long = format!("fieldManager={}", "a".repeat(129));
        assert_eq!(
            write_options(&q(&long), WriteKind::Update)
                .expect_err("long")
                .code,
            422
        );
        let err = write_options(&q("fieldManager=a%07b"), WriteKind::Patch).expect_err("bell");
        assert_eq!(err.code, 422);
        assert!(write_options(
            &q(&format!("fieldManager={}", "a".repeat(128))),
            WriteKind::Create
        )
        .is_ok());
    }
}
