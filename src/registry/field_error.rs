//! Field-level validation errors and the name/label/metadata validators shared by every resource.
//!
//! The text produced here is meant to be byte-for-byte what kube-apiserver v1.32 puts into a 422
//! `Status` (apimachinery `util/validation/field` and `util/validation`), because clients and
//! conformance-style tests match on it. The code is an independent implementation: the Go regular
//! expressions are reproduced as hand-written character checks so no regex engine is needed.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};

/// The kind of a field error; each maps 1:1 onto a `StatusCause.reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorType {
    Required,
    Invalid,
    Duplicate,
    NotSupported,
    Forbidden,
    TooLong,
    TooMany,
    /// Upstream `field.NotFound`, used e.g. for a volumeMount naming an unknown volume.
    NotFound,
}

impl ErrorType {
    /// The human prefix upstream uses in messages ("Required value", "Unsupported value", ...).
    pub fn label(self) -> &'static str {
        match self {
            ErrorType::Required => "Required value",
            ErrorType::Invalid => "Invalid value",
            ErrorType::Duplicate => "Duplicate value",
            ErrorType::NotSupported => "Unsupported value",
            ErrorType::Forbidden => "Forbidden",
            ErrorType::TooLong => "Too long",
            ErrorType::TooMany => "Too many",
            ErrorType::NotFound => "Not found",
        }
    }

    /// The machine-readable `StatusCause.reason`.
    pub fn reason(self) -> &'static str {
        match self {
            ErrorType::Required => "FieldValueRequired",
            ErrorType::Invalid => "FieldValueInvalid",
            ErrorType::Duplicate => "FieldValueDuplicate",
            ErrorType::NotSupported => "FieldValueNotSupported",
            ErrorType::Forbidden => "FieldValueForbidden",
            ErrorType::TooLong => "FieldValueTooLong",
            ErrorType::TooMany => "FieldValueTooMany",
            ErrorType::NotFound => "FieldValueNotFound",
        }
    }
}

/// One validation failure, rendered like upstream's `field.Error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub kind: ErrorType,
    /// The JSON-path-like field, e.g. `spec.containers[1].name`.
    pub field: String,
    /// The offending value; `None` renders as `null` (a nil pointer upstream).
    pub value: Option<String>,
    /// When true the value is printed bare (numbers, booleans, `Stringer` types such as quantities),
    /// otherwise it is printed Go-quoted like a string (`%q`).
    pub value_is_literal: bool,
    /// Free-text explanation appended after the value.
    pub detail: String,
    /// For `NotSupported`: the allowed values (already folded into `detail`).
    pub supported: Vec<String>,
}

/// Conversion of Rust values into the way upstream would print them as a "bad value".
pub trait BadValue {
    /// Returns the printed value and whether it is printed bare (true) or quoted (false).
    fn into_bad_value(self) -> (Option<String>, bool);
}

impl BadValue for &str {
    fn into_bad_value(self) -> (Option<String>, bool) {
        (Some(self.to_string()), false)
    }
}
impl BadValue for String {
    fn into_bad_value(self) -> (Option<String>, bool) {
        (Some(self), false)
    }
}
impl BadValue for &String {
    fn into_bad_value(self) -> (Option<String>, bool) {
        (Some(self.clone()), false)
    }
}
macro_rules! literal_bad_value {
    ($($t:ty),*) => {$(
        impl BadValue for $t {
            fn into_bad_value(self) -> (Option<String>, bool) {
                (Some(self.to_string()), true)
            }
        }
    )*};
}
literal_bad_value!(i32, i64, u32, u64, usize, bool);

impl<T: BadValue> BadValue for Option<T> {
    fn into_bad_value(self) -> (Option<String>, bool) {
        match self {
            Some(v) => v.into_bad_value(),
            None => (None, true),
        }
    }
}

/// A value that upstream prints through its `String()` method (quantities, timestamps, Go
/// `%#v` dumps), i.e. without quotes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Literal(pub String);

impl BadValue for Literal {
    fn into_bad_value(self) -> (Option<String>, bool) {
        (Some(self.0), true)
    }
}

impl FieldError {
    fn new(
        kind: ErrorType,
        field: impl Into<String>,
        value: impl BadValue,
        detail: impl Into<String>,
    ) -> Self {
        let (value, value_is_literal) = value.into_bad_value();
        FieldError {
            kind,
            field: field.into(),
            value,
            value_is_literal,
            detail: detail.into(),
            supported: Vec::new(),
        }
    }

    /// `field.Required`: "Required value" plus an optional detail.
    pub fn required(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(ErrorType::Required, field, "", detail)
    }

    /// `field.Invalid`.
    pub fn invalid(
        field: impl Into<String>,
        value: impl BadValue,
        detail: impl Into<String>,
    ) -> Self {
        Self::new(ErrorType::Invalid, field, value, detail)
    }

    /// `field.Duplicate`.
    pub fn duplicate(field: impl Into<String>, value: impl BadValue) -> Self {
        Self::new(ErrorType::Duplicate, field, value, "")
    }

    /// `field.NotFound`.
    pub fn not_found(field: impl Into<String>, value: impl BadValue) -> Self {
        Self::new(ErrorType::NotFound, field, value, "")
    }

    /// `field.NotSupported`: the detail lists the allowed values, each Go-quoted, in the order given.
    pub fn not_supported<S: AsRef<str>>(
        field: impl Into<String>,
        value: impl BadValue,
        supported: &[S],
    ) -> Self {
        let supported: Vec<String> = supported.iter().map(|s| s.as_ref().to_string()).collect();
        let detail = if supported.is_empty() {
            String::new()
        } else {
            let quoted: Vec<String> = supported.iter().map(|s| go_quote(s)).collect();
            format!("supported values: {}", quoted.join(", "))
        };
        let mut err = Self::new(ErrorType::NotSupported, field, value, detail);
        err.supported = supported;
        err
    }

    /// `field.Forbidden`.
    pub fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(ErrorType::Forbidden, field, "", detail)
    }

    /// `field.TooLong` as of v1.32 ("must have at most N bytes"); the value is never printed.
    pub fn too_long(field: impl Into<String>, max: usize) -> Self {
        Self::new(
            ErrorType::TooLong,
            field,
            "",
            format!("must have at most {max} bytes"),
        )
    }

    /// `field.TooMany`.
    pub fn too_many(field: impl Into<String>, actual: usize, max: usize) -> Self {
        Self::new(
            ErrorType::TooMany,
            field,
            actual,
            format!("must have at most {max} items"),
        )
    }

    /// Replaces the detail (upstream sometimes sets `Detail` after construction, e.g. on NotFound).
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }

    /// The StatusCause reason, e.g. `FieldValueInvalid`.
    pub fn reason(&self) -> &'static str {
        self.kind.reason()
    }

    /// The `StatusCause` a 422 carries for this error.
    pub fn cause(&self) -> crate::meta::Cause {
        crate::meta::Cause {
            reason: self.reason().to_string(),
            message: self.body(),
            field: self.field.clone(),
        }
    }

    /// Upstream `ErrorBody()`: the message without the leading field, used as `StatusCause.message`.
    pub fn body(&self) -> String {
        let mut s = match self.kind {
            // These kinds never show the value.
            ErrorType::Required | ErrorType::Forbidden | ErrorType::TooLong => {
                self.kind.label().to_string()
            }
            _ => {
                let shown = match &self.value {
                    None => "null".to_string(),
                    Some(v) if self.value_is_literal => v.clone(),
                    Some(v) => go_quote(v),
                };
                format!("{}: {}", self.kind.label(), shown)
            }
        };
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.body())
    }
}

impl std::error::Error for FieldError {}

/// Upstream `utilerrors.Aggregate.Error()` over a field error list: a single message as-is, several
/// de-duplicated and joined as `[a, b]`. This is the tail of a 422 `Status.message`
/// (`Pod "x" is invalid: <aggregate>`).
pub fn aggregate_message(errs: &[FieldError]) -> String {
    let mut seen: Vec<String> = Vec::new();
    for e in errs {
        let msg = e.to_string();
        if !seen.contains(&msg) {
            seen.push(msg);
        }
    }
    match seen.len() {
        0 => String::new(),
        1 => seen.remove(0),
        _ => format!("[{}]", seen.join(", ")),
    }
}

// The name, label and key validators live in `meta::validation` (apimachinery's
// `util/validation`); they are re-exported here because every strategy reaches them through this
// module.
pub use crate::meta::validation::*;

// ---------------------------------------------------------------------------------------------
// ObjectMeta validation.
// ---------------------------------------------------------------------------------------------

/// Upstream `ValidateLabels`: every problem is reported at the map path itself (no key suffix).
pub fn validate_labels(labels: &BTreeMap<String, String>, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (k, v) in labels {
        for msg in is_qualified_name(k) {
            errs.push(FieldError::invalid(path, k, msg));
        }
        for msg in is_valid_label_value(v) {
            errs.push(FieldError::invalid(path, v, msg));
        }
    }
    errs
}

/// Upstream `ValidateAnnotations`: keys are qualified names compared case-insensitively, and the
/// total size of keys plus values is capped at 256 KiB.
pub fn validate_annotations(annotations: &BTreeMap<String, String>, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut total: usize = 0;
    for (k, v) in annotations {
        for msg in is_qualified_name(&k.to_lowercase()) {
            errs.push(FieldError::invalid(path, k, msg));
        }
        total = total.saturating_add(k.len()).saturating_add(v.len());
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        errs.push(FieldError::too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT));
    }
    errs
}

/// Upstream `ValidateOwnerReferences`, minus the banned-owner and the single-controller checks
/// (their messages embed Go struct dumps we cannot reproduce faithfully).
fn validate_owner_references(refs: &[OwnerReference], path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for r in refs {
        // schema.ParseGroupVersion: "" and "a/b/c" give no version; "v1" or "g/v" do.
        let version = match r.api_version.split('/').collect::<Vec<_>>().as_slice() {
            [v] => v.to_string(),
            [_, v] => v.to_string(),
            _ => String::new(),
        };
        if version.is_empty() {
            errs.push(FieldError::invalid(
                format!("{path}.apiVersion"),
                &r.api_version,
                "version must not be empty",
            ));
        }
        if r.kind.is_empty() {
            errs.push(FieldError::invalid(
                format!("{path}.kind"),
                &r.kind,
                "kind must not be empty",
            ));
        }
        if r.name.is_empty() {
            errs.push(FieldError::invalid(
                format!("{path}.name"),
                &r.name,
                "name must not be empty",
            ));
        }
        if r.uid.is_empty() {
            errs.push(FieldError::invalid(
                format!("{path}.uid"),
                &r.uid,
                "uid must not be empty",
            ));
        }
    }
    errs
}

/// Upstream apimachinery `ValidateFinalizers`.
fn validate_finalizers(finalizers: &[String], path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for f in finalizers {
        for msg in is_qualified_name(f) {
            errs.push(FieldError::invalid(path, f, msg));
        }
    }
    let orphan = finalizers.iter().any(|f| f == "orphan");
    let foreground = finalizers.iter().any(|f| f == "foregroundDeletion");
    if orphan && foreground {
        errs.push(FieldError::invalid(
            path,
            Literal(go_string_slice(finalizers)),
            "finalizer orphan and foregroundDeletion cannot be both set",
        ));
    }
    errs
}

/// Go `%#v` of a `[]string`, used where upstream prints a whole slice as the bad value.
pub fn go_string_slice(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| go_quote(s)).collect();
    format!("[]string{{{}}}", quoted.join(", "))
}

/// Go `%#v` of a `map[string]string` (keys sorted, as Go's fmt does).
pub fn go_string_map(map: &BTreeMap<String, String>) -> String {
    let items: Vec<String> = map
        .iter()
        .map(|(k, v)| format!("{}:{}", go_quote(k), go_quote(v)))
        .collect();
    format!("map[string]string{{{}}}", items.join(", "))
}

/// Upstream `ValidateObjectMeta` for create. `name_fn(name, is_prefix)` returns the messages for an
/// invalid name (e.g. [`name_is_dns_subdomain`]); generateName is checked with `is_prefix = true`.
/// Name generation is assumed to have happened already, so an empty name is reported even when
/// generateName is set, exactly like upstream.
pub fn validate_object_meta<F>(meta: &ObjectMeta, namespaced: bool, name_fn: F) -> Vec<FieldError>
where
    F: Fn(&str, bool) -> Vec<String>,
{
    let mut errs = Vec::new();
    let generate_name = meta.generate_name.as_deref().unwrap_or("");
    if !generate_name.is_empty() {
        for msg in name_fn(generate_name, true) {
            errs.push(FieldError::invalid(
                "metadata.generateName",
                generate_name,
                msg,
            ));
        }
    }
    let name = meta.name.as_deref().unwrap_or("");
    if name.is_empty() {
        errs.push(FieldError::required(
            "metadata.name",
            "name or generateName is required",
        ));
    } else {
        for msg in name_fn(name, false) {
            errs.push(FieldError::invalid("metadata.name", name, msg));
        }
    }
    let namespace = meta.namespace.as_deref().unwrap_or("");
    if namespaced {
        if namespace.is_empty() {
            errs.push(FieldError::required("metadata.namespace", ""));
        } else {
            for msg in name_is_dns_label(namespace, false) {
                errs.push(FieldError::invalid("metadata.namespace", namespace, msg));
            }
        }
    } else if !namespace.is_empty() {
        errs.push(FieldError::forbidden(
            "metadata.namespace",
            "not allowed on this type",
        ));
    }
    if let Some(g) = meta.generation {
        if g < 0 {
            errs.push(FieldError::invalid(
                "metadata.generation",
                g,
                "must be greater than or equal to 0",
            ));
        }
    }
    if let Some(labels) = &meta.labels {
        errs.extend(validate_labels(labels, "metadata.labels"));
    }
    if let Some(annotations) = &meta.annotations {
        errs.extend(validate_annotations(annotations, "metadata.annotations"));
    }
    if let Some(refs) = &meta.owner_references {
        errs.extend(validate_owner_references(refs, "metadata.ownerReferences"));
    }
    if let Some(finalizers) = &meta.finalizers {
        errs.extend(validate_finalizers(finalizers, "metadata.finalizers"));
    }
    errs
}

/// Go's `time.Time.String()` for a UTC instant ("2006-01-02 15:04:05.999999999 +0000 UTC"), which
/// is how upstream prints a `metav1.Time` bad value.
pub fn go_time_string(t: &Time) -> String {
    let ts = t.0;
    let base = ts.strftime("%Y-%m-%d %H:%M:%S").to_string();
    let nanos = ts.subsec_nanosecond();
    if nanos > 0 {
        let frac = format!("{nanos:09}");
        format!("{base}.{} +0000 UTC", frac.trim_end_matches('0'))
    } else {
        format!("{base} +0000 UTC")
    }
}

fn immutable(field: &str, value: impl BadValue) -> FieldError {
    FieldError::invalid(field, value, "field is immutable")
}

/// Upstream `ValidateObjectMetaUpdate`, except the `resourceVersion must be specified` check, which
/// belongs to the generic store (it fills in the current version for unconditional updates).
pub fn validate_object_meta_update(new: &ObjectMeta, old: &ObjectMeta) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let empty: Vec<String> = Vec::new();
    if old.deletion_timestamp.is_some() {
        let old_f = old.finalizers.as_ref().unwrap_or(&empty);
        let new_f = new.finalizers.as_ref().unwrap_or(&empty);
        // Upstream reports the sorted set difference.
        let mut extra: Vec<String> = new_f
            .iter()
            .filter(|f| !old_f.contains(f))
            .cloned()
            .collect();
        extra.sort();
        extra.dedup();
        if !extra.is_empty() {
            errs.push(FieldError::forbidden(
                "metadata.finalizers",
                format!("no new finalizers can be added if the object is being deleted, found new finalizers {}", go_string_slice(&extra)),
            ));
        }
    }
    let (new_gen, old_gen) = (new.generation.unwrap_or(0), old.generation.unwrap_or(0));
    if new_gen < old_gen {
        errs.push(FieldError::invalid(
            "metadata.generation",
            new_gen,
            "must not be decremented",
        ));
    }
    let s = |o: &Option<String>| o.clone().unwrap_or_default();
    if s(&new.name) != s(&old.name) {
        errs.push(immutable("metadata.name", s(&new.name)));
    }
    if s(&new.namespace) != s(&old.namespace) {
        errs.push(immutable("metadata.namespace", s(&new.namespace)));
    }
    if s(&new.uid) != s(&old.uid) {
        errs.push(immutable("metadata.uid", s(&new.uid)));
    }
    if new.creation_timestamp != old.creation_timestamp {
        let shown = new
            .creation_timestamp
            .as_ref()
            .map(go_time_string)
            .unwrap_or_else(|| "0001-01-01 00:00:00 +0000 UTC".to_string());
        errs.push(immutable("metadata.creationTimestamp", Literal(shown)));
    }
    if new.deletion_timestamp != old.deletion_timestamp {
        let shown = new
            .deletion_timestamp
            .as_ref()
            .map(|t| Literal(go_time_string(t)));
        errs.push(immutable("metadata.deletionTimestamp", shown));
    }
    if new.deletion_grace_period_seconds != old.deletion_grace_period_seconds {
        errs.push(immutable(
            "metadata.deletionGracePeriodSeconds",
            new.deletion_grace_period_seconds,
        ));
    }
    if let Some(labels) = &new.labels {
        errs.extend(validate_labels(labels, "metadata.labels"));
    }
    if let Some(annotations) = &new.annotations {
        errs.extend(validate_annotations(annotations, "metadata.annotations"));
    }
    if let Some(refs) = &new.owner_references {
        errs.extend(validate_owner_references(refs, "metadata.ownerReferences"));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
    const QNAME_REGEX: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";

    fn meta(v: serde_json::Value) -> ObjectMeta {
        serde_json::from_value(v).expect("test metadata must deserialize")
    }

    #[test]
    fn display_renders_each_error_kind_like_upstream() {
        let cases: Vec<(FieldError, &str)> = vec![
            (FieldError::required("spec.containers", ""), "spec.containers: Required value"),
            (
                FieldError::required("metadata.name", "name or generateName is required"),
                "metadata.name: Required value: name or generateName is required",
            ),
            (FieldError::duplicate("spec.containers[1].name", "db"), "spec.containers[1].name: Duplicate value: \"db\""),
            (
                FieldError::not_supported("spec.restartPolicy", "Sometimes", &["Always", "OnFailure", "Never"]),
                "spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
            ),
            (
                FieldError::invalid("spec.containers[0].ports[0].containerPort", 70000, "must be between 1 and 65535, inclusive"),
                "spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
            ),
            (
                FieldError::invalid("spec.activeDeadlineSeconds", None::<i64>, "must not update from a positive integer to nil value"),
                "spec.activeDeadlineSeconds: Invalid value: null: must not update from a positive integer to nil value",
            ),
            (FieldError::invalid("x", true, "d"), "x: Invalid value: true: d"),
            (FieldError::invalid("x", Literal("500m".into()), "must be an integer"), "x: Invalid value: 500m: must be an integer"),
            (FieldError::forbidden("spec", "nope"), "spec: Forbidden: nope"),
            (FieldError::too_long("metadata.annotations", 262144), "metadata.annotations: Too long: must have at most 262144 bytes"),
            (FieldError::too_many("spec.x", 5, 3), "spec.x: Too many: 5: must have at most 3 items"),
            (FieldError::not_found("spec.containers[0].volumeMounts[0].name", "x"), "spec.containers[0].volumeMounts[0].name: Not found: \"x\""),
            (FieldError::invalid("metadata.name", "Bad_Name", SUBDOMAIN_MSG), "metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"),
        ];
        for (err, want) in cases {
            assert_eq!(err.to_string(), want);
        }
    }

    #[test]
    fn reason_maps_each_kind_to_status_cause_reason() {
        let cases = [
            (FieldError::required("f", ""), "FieldValueRequired"),
            (FieldError::invalid("f", "v", ""), "FieldValueInvalid"),
            (FieldError::duplicate("f", "v"), "FieldValueDuplicate"),
            (
                FieldError::not_supported::<&str>("f", "v", &[]),
                "FieldValueNotSupported",
            ),
            (FieldError::forbidden("f", ""), "FieldValueForbidden"),
            (FieldError::too_long("f", 1), "FieldValueTooLong"),
            (FieldError::too_many("f", 2, 1), "FieldValueTooMany"),
            (FieldError::not_found("f", "v"), "FieldValueNotFound"),
        ];
        for (err, want) in cases {
            assert_eq!(err.reason(), want);
        }
    }

    #[test]
    fn body_omits_field_and_matches_status_cause_message() {
        let err = FieldError::duplicate("spec.containers[1].name", "db");
        assert_eq!(err.body(), "Duplicate value: \"db\"");
        assert_eq!(
            FieldError::not_supported::<&str>("f", "v", &[]).body(),
            "Unsupported value: \"v\""
        );
    }

    #[test]
    fn aggregate_message_dedups_and_brackets_multiple_errors() {
        let a = FieldError::required("a", "");
        let b = FieldError::required("b", "");
        assert_eq!(aggregate_message(&[]), "");
        assert_eq!(
            aggregate_message(std::slice::from_ref(&a)),
            "a: Required value"
        );
        assert_eq!(
            aggregate_message(&[a.clone(), b, a]),
            "[a: Required value, b: Required value]"
        );
    }

    #[test]
    fn object_meta_requires_name_and_namespace() {
        let errs = validate_object_meta(&meta(serde_json::json!({})), true, name_is_dns_subdomain);
        let msgs: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(
            msgs,
            vec![
                "metadata.name: Required value: name or generateName is required".to_string(),
                "metadata.namespace: Required value".to_string(),
            ]
        );
    }

    #[test]
    fn object_meta_rejects_namespace_on_cluster_scoped() {
        let errs = validate_object_meta(
            &meta(serde_json::json!({"name": "n", "namespace": "x"})),
            false,
            name_is_dns_subdomain,
        );
        assert_eq!(
            errs[0].to_string(),
            "metadata.namespace: Forbidden: not allowed on this type"
        );
    }

    #[test]
    fn object_meta_validates_name_generate_name_labels_and_annotations() {
        let m = meta(serde_json::json!({
            "name": "Bad_Name",
            "generateName": "Bad_",
            "namespace": "default",
            "generation": -1,
            "labels": {"type": "db", "bad key!": "ok", "vendor": "-bad"},
            "annotations": {"Example.COM/Note": "fine", "no good/x/y": "v"},
            "finalizers": ["example.com/f", "Bad Finalizer"],
            "ownerReferences": [{"apiVersion": "", "kind": "", "name": "", "uid": ""}]
        }));
        let msgs: Vec<String> = validate_object_meta(&m, true, name_is_dns_subdomain)
            .iter()
            .map(ToString::to_string)
            .collect();
        let fields: Vec<&str> = msgs
            .iter()
            .map(|m| m.split(':').next().unwrap_or(""))
            .collect();
        assert!(msgs.contains(&format!(
            "metadata.name: Invalid value: \"Bad_Name\": {SUBDOMAIN_MSG}"
        )));
        assert!(msgs
            .iter()
            .any(|m| m.starts_with("metadata.generateName: Invalid value: \"Bad_\"")));
        assert!(msgs.contains(
            &"metadata.generation: Invalid value: -1: must be greater than or equal to 0"
                .to_string()
        ));
        assert!(msgs.contains(&format!(
            "metadata.labels: Invalid value: \"bad key!\": name part {QNAME_REGEX}"
        )));
        assert!(msgs
            .iter()
            .any(|m| m
                .starts_with("metadata.labels: Invalid value: \"-bad\": a valid label must be")));
        assert!(msgs.iter().any(|m| m.starts_with(
            "metadata.annotations: Invalid value: \"no good/x/y\": a qualified name"
        )));
        assert!(msgs
            .iter()
            .any(|m| m.starts_with("metadata.finalizers: Invalid value: \"Bad Finalizer\"")));
        assert!(msgs.contains(
            &"metadata.ownerReferences.apiVersion: Invalid value: \"\": version must not be empty"
                .to_string()
        ));
        assert!(msgs.contains(
            &"metadata.ownerReferences.uid: Invalid value: \"\": uid must not be empty".to_string()
        ));
        assert!(!fields.contains(&"metadata.annotations[Example.COM/Note]"));
    }

    #[test]
    fn object_meta_caps_total_annotation_size() {
        let at_limit = "x".repeat(TOTAL_ANNOTATION_SIZE_LIMIT - 1);
        let ok = meta(
            serde_json::json!({"name": "n", "namespace": "d", "annotations": {"a": at_limit}}),
        );
        assert!(validate_object_meta(&ok, true, name_is_dns_subdomain).is_empty());
        let over = "x".repeat(TOTAL_ANNOTATION_SIZE_LIMIT);
        let big =
            meta(serde_json::json!({"name": "n", "namespace": "d", "annotations": {"a": over}}));
        let msgs: Vec<String> = validate_object_meta(&big, true, name_is_dns_subdomain)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            msgs,
            vec!["metadata.annotations: Too long: must have at most 262144 bytes".to_string()]
        );
    }

    #[test]
    fn object_meta_update_keeps_identity_immutable() {
        let old = meta(
            serde_json::json!({"name": "a", "namespace": "d", "uid": "u1", "generation": 2,
            "creationTimestamp": "2024-01-02T03:04:05Z"}),
        );
        let new = meta(
            serde_json::json!({"name": "b", "namespace": "e", "uid": "u2", "generation": 1,
            "creationTimestamp": "2024-01-02T03:04:06Z"}),
        );
        let msgs: Vec<String> = validate_object_meta_update(&new, &old)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            msgs,
            vec![
                "metadata.generation: Invalid value: 1: must not be decremented".to_string(),
                "metadata.name: Invalid value: \"b\": field is immutable".to_string(),
                "metadata.namespace: Invalid value: \"e\": field is immutable".to_string(),
                "metadata.uid: Invalid value: \"u2\": field is immutable".to_string(),
                "metadata.creationTimestamp: Invalid value: 2024-01-02 03:04:06 +0000 UTC: field is immutable".to_string(),
            ]
        );
        assert!(validate_object_meta_update(&old, &old).is_empty());
    }

    #[test]
    fn object_meta_update_blocks_new_finalizers_while_deleting() {
        let old = meta(
            serde_json::json!({"name": "a", "deletionTimestamp": "2024-01-02T03:04:05Z", "finalizers": ["x/a"]}),
        );
        let new = meta(
            serde_json::json!({"name": "a", "deletionTimestamp": "2024-01-02T03:04:05Z", "finalizers": ["x/a", "x/c", "x/b"]}),
        );
        let msgs: Vec<String> = validate_object_meta_update(&new, &old)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            msgs,
            vec!["metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{\"x/b\", \"x/c\"}".to_string()]
        );
    }

    #[test]
    fn go_time_string_prints_fractional_seconds_trimmed() {
        let t: Time = serde_json::from_value(serde_json::json!("2024-01-02T03:04:05.120Z"))
            .expect("valid time");
        assert_eq!(go_time_string(&t), "2024-01-02 03:04:05.12 +0000 UTC");
    }
}
