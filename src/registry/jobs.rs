//! The Job kind (batch/v1, namespaced), as upstream's `pkg/registry/batch/job`: Pods run to
//! completion, defaulted as `SetDefaults_Job`, given a generated selector on the Job's uid
//! unless `manualSelector` (upstream `generateSelector`), validated as `ValidateJob` and
//! `ValidateJobUpdate`; a `status` subresource and kube-apiserver's Table columns.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{Job, JobSpec, JobStatus};
use serde_json::{json, Value};

use super::decode::{decode_typed, Decoded};
use super::workloads;
use super::{
    age, column, field_error, pod, pods, FieldError, ResourceInfo, TypedStrategy, AGE_DESCRIPTION,
    NAME_DESCRIPTION,
};
use crate::meta::label_selector;
use crate::meta::patch::PatchSchema;
use crate::meta::ApiError;

static INFO: ResourceInfo = ResourceInfo {
    group: "batch",
    version: "v1",
    kind: "Job",
    plural: "jobs",
    singular: "job",
    short_names: &[],
    categories: &["all"],
    namespaced: true,
    subresources: &["status"],
};

pub fn info() -> &'static ResourceInfo {
    &INFO
}

/// The labels a generated selector puts on the template (upstream `batch.ControllerUidLabel`,
/// `batch.JobNameLabel` and their legacy, unprefixed forms).
pub const CONTROLLER_UID_LABEL: &str = "batch.kubernetes.io/controller-uid";
pub const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";
pub const LEGACY_CONTROLLER_UID_LABEL: &str = "controller-uid";
pub const LEGACY_JOB_NAME_LABEL: &str = "job-name";

/// Upstream `maxParallelismForIndexedJob`.
const MAX_PARALLELISM_FOR_INDEXED_JOB: i32 = 100_000;

pub struct JobStrategy;

/// Upstream `ValidateNonnegativeField`.
fn non_negative(errs: &mut Vec<FieldError>, path: &str, value: Option<i64>) {
    if let Some(v) = value.filter(|v| *v < 0) {
        errs.push(FieldError::invalid(
            path,
            v,
            "must be greater than or equal to 0",
        ));
    }
}

/// Go's `%#v` of a `*metav1.LabelSelector`, as upstream prints a selector in errors.
fn manual_selector(spec: &JobSpec) -> bool {
    spec.manual_selector == Some(true)
}

fn template_labels(spec: &JobSpec) -> BTreeMap<String, String> {
    spec.template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default()
}

/// Upstream `generateSelector`: the template gets the Job's name and uid as labels (a label
/// the user set is kept, and validation refuses it if it is wrong), and the selector picks the
/// uid label.
fn generate_selector(job: &mut Job) {
    let name = job.metadata.name.clone().unwrap_or_default();
    let uid = job.metadata.uid.clone().unwrap_or_default();
    let Some(spec) = job.spec.as_mut() else {
        return;
    };
    let labels = spec
        .template
        .metadata
        .get_or_insert_with(Default::default)
        .labels
        .get_or_insert_with(Default::default);
    for key in [LEGACY_JOB_NAME_LABEL, JOB_NAME_LABEL] {
        labels.entry(key.into()).or_insert_with(|| name.clone());
    }
    for key in [LEGACY_CONTROLLER_UID_LABEL, CONTROLLER_UID_LABEL] {
        labels.entry(key.into()).or_insert_with(|| uid.clone());
    }
    spec.selector
        .get_or_insert_with(Default::default)
        .match_labels
        .get_or_insert_with(Default::default)
        .entry(CONTROLLER_UID_LABEL.into())
        .or_insert(uid);
}

/// Upstream `ValidateHasLabel` for a template's labels.
fn validate_has_label(
    errs: &mut Vec<FieldError>,
    labels: &BTreeMap<String, String>,
    key: &str,
    want: &str,
) {
    let path = format!("spec.template.metadata.labels[{key}]");
    match labels.get(key) {
        None => errs.push(FieldError::required(path, format!("must be '{want}'"))),
        Some(v) if v != want => errs.push(FieldError::invalid(
            path,
            field_error::Literal(field_error::go_string_map(labels)),
            format!("must be '{want}'"),
        )),
        Some(_) => {}
    }
}

/// Upstream `validateGeneratedSelector`: a generated selector's labels must be on the template
/// and the selector must pick the Job's uid.
fn validate_generated_selector(job: &Job) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let spec = job.spec.clone().unwrap_or_default();
    if manual_selector(&spec) {
        return errs;
    }
    let uid = job.metadata.uid.clone().unwrap_or_default();
    let name = job.metadata.name.clone().unwrap_or_default();
    if uid.is_empty() {
        errs.push(FieldError::required("metadata.uid", ""));
    }
    let labels = template_labels(&spec);
    validate_has_label(&mut errs, &labels, LEGACY_CONTROLLER_UID_LABEL, &uid);
    validate_has_label(&mut errs, &labels, LEGACY_JOB_NAME_LABEL, &name);
    validate_has_label(&mut errs, &labels, CONTROLLER_UID_LABEL, &uid);
    validate_has_label(&mut errs, &labels, JOB_NAME_LABEL, &name);
    let expected = BTreeMap::from([(CONTROLLER_UID_LABEL.to_string(), uid)]);
    if let Some(selector) = spec.selector.as_ref() {
        if !label_selector::matches(selector, &expected) {
            errs.push(FieldError::invalid(
                "spec.selector",
                workloads::selector_literal(Some(selector)),
                "`selector` not auto-generated",
            ));
        }
    }
    errs
}

/// Upstream `validateJobSpec`, for a spec at `path` (a Job's `spec`, a CronJob's
/// `spec.jobTemplate.spec`): counts, completion mode, replacement policy and the template, whose
/// restart policy must be OnFailure or Never.
pub fn validate_job_spec(spec: &JobSpec, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    non_negative(
        &mut errs,
        &format!("{path}.parallelism"),
        spec.parallelism.map(i64::from),
    );
    non_negative(
        &mut errs,
        &format!("{path}.completions"),
        spec.completions.map(i64::from),
    );
    non_negative(
        &mut errs,
        &format!("{path}.activeDeadlineSeconds"),
        spec.active_deadline_seconds,
    );
    non_negative(
        &mut errs,
        &format!("{path}.backoffLimit"),
        spec.backoff_limit.map(i64::from),
    );
    non_negative(
        &mut errs,
        &format!("{path}.ttlSecondsAfterFinished"),
        spec.ttl_seconds_after_finished.map(i64::from),
    );
    if let Some(mode) = spec.completion_mode.as_deref() {
        if mode != "NonIndexed" && mode != "Indexed" {
            errs.push(FieldError::not_supported(
                format!("{path}.completionMode"),
                mode.to_string(),
                &["NonIndexed", "Indexed"],
            ));
        }
        if mode == "Indexed" {
            if spec.completions.is_none() {
                errs.push(FieldError::required(
                    format!("{path}.completions"),
                    "when completion mode is Indexed",
                ));
            }
            if let Some(p) = spec
                .parallelism
                .filter(|p| *p > MAX_PARALLELISM_FOR_INDEXED_JOB)
            {
                errs.push(FieldError::invalid(
                    format!("{path}.parallelism"),
                    i64::from(p),
                    format!(
                        "must be less than or equal to {MAX_PARALLELISM_FOR_INDEXED_JOB} when completion mode is Indexed"
                    ),
                ));
            }
        }
    }
    if let Some(policy) = spec.pod_replacement_policy.as_deref() {
        if policy != "TerminatingOrFailed" && policy != "Failed" {
            errs.push(FieldError::not_supported(
                format!("{path}.podReplacementPolicy"),
                policy.to_string(),
                &["Failed", "TerminatingOrFailed"],
            ));
        }
    }
    errs.extend(pod::validate_pod_template_spec(
        &spec.template,
        &format!("{path}.template"),
    ));
    // The Pod defaults give an unset restart policy `Always`, so both are "required" here.
    let policy = spec
        .template
        .spec
        .as_ref()
        .and_then(|s| s.restart_policy.clone())
        .unwrap_or_default();
    match policy.as_str() {
        "" | "Always" => errs.push(FieldError::required(
            format!("{path}.template.spec.restartPolicy"),
            "valid values: \"OnFailure\", \"Never\"",
        )),
        "OnFailure" | "Never" => {
            if spec.pod_failure_policy.is_some() && policy != "Never" {
                errs.push(FieldError::invalid(
                    format!("{path}.template.spec.restartPolicy"),
                    policy.clone(),
                    "only \"Never\" is supported when podFailurePolicy is specified",
                ));
            }
        }
        _ => errs.push(FieldError::not_supported(
            format!("{path}.template.spec.restartPolicy"),
            policy.clone(),
            &["OnFailure", "Never"],
        )),
    }
    errs
}

/// Upstream `ValidateJobSpec`: [`validate_job_spec`] and the selector, which must match the
/// template.
pub fn validate_spec(spec: &JobSpec) -> Vec<FieldError> {
    let mut errs = validate_job_spec(spec, "spec");
    match spec.selector.as_ref() {
        None => errs.push(FieldError::required("spec.selector", "")),
        Some(selector) => {
            for (i, e) in selector.match_expressions.iter().flatten().enumerate() {
                if !matches!(
                    e.operator.as_str(),
                    "In" | "NotIn" | "Exists" | "DoesNotExist"
                ) {
                    errs.push(FieldError::invalid(
                        format!("spec.selector.matchExpressions[{i}].operator"),
                        e.operator.clone(),
                        "not a valid selector operator",
                    ));
                }
            }
            errs.extend(field_error::validate_labels(
                &selector.match_labels.clone().unwrap_or_default(),
                "spec.selector.matchLabels",
            ));
            let labels = template_labels(spec);
            if !label_selector::matches(selector, &labels) {
                let unset = spec
                    .template
                    .metadata
                    .as_ref()
                    .is_none_or(|m| m.labels.is_none());
                let shown = if unset {
                    "map[string]string(nil)".to_string()
                } else {
                    field_error::go_string_map(&labels)
                };
                errs.push(FieldError::invalid(
                    "spec.template.metadata.labels",
                    field_error::Literal(shown),
                    "`selector` does not match template `labels`",
                ));
            }
        }
    }
    errs
}

/// Upstream `ValidateJobStatus`: counts are never negative.
fn validate_status(status: Option<&JobStatus>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(s) = status else {
        return errs;
    };
    for (path, v) in [
        ("status.active", s.active),
        ("status.succeeded", s.succeeded),
        ("status.failed", s.failed),
        ("status.ready", s.ready),
        ("status.terminating", s.terminating),
    ] {
        non_negative(&mut errs, path, v.map(i64::from));
    }
    errs
}

/// Upstream `ValidateImmutableField` for a value printed as a literal.
fn immutable(errs: &mut Vec<FieldError>, path: &str, changed: bool, shown: String) {
    if changed {
        errs.push(FieldError::invalid(
            path,
            field_error::Literal(shown),
            "field is immutable",
        ));
    }
}

fn shown<T: std::fmt::Debug>(v: &Option<T>) -> String {
    match v {
        Some(v) => format!("{v:?}"),
        None => "null".into(),
    }
}

impl TypedStrategy for JobStrategy {
    type Object = Job;

    fn info(&self) -> &'static ResourceInfo {
        &INFO
    }

    fn decode(&self, body: Value) -> Result<Decoded, ApiError> {
        decode_typed::<Job>(&INFO, body, |job: &mut Job| match job.spec.as_mut() {
            Some(spec) => canonical_template_quantities(spec, &INFO),
            None => Ok(()),
        })
    }

    /// batch/v1 `SetDefaults_Job`: completions and parallelism 1 when both are unset
    /// (parallelism 1 when only it is), a backoff limit of 6, NonIndexed completions, not
    /// suspended, failed or terminating Pods replaced; the Job's labels are its template's when
    /// it has none; the template defaulted as a Pod's.
    fn apply_scheme_defaults(&self, job: &mut Job) {
        let spec = job.spec.get_or_insert_with(Default::default);
        if spec.completions.is_none() && spec.parallelism.is_none() {
            spec.completions = Some(1);
        }
        spec.parallelism.get_or_insert(1);
        let backoff = if spec.backoff_limit_per_index.is_some() {
            i32::MAX
        } else {
            6
        };
        spec.backoff_limit.get_or_insert(backoff);
        spec.completion_mode
            .get_or_insert_with(|| "NonIndexed".to_string());
        spec.suspend.get_or_insert(false);
        let replacement = if spec.pod_failure_policy.is_some() {
            "Failed"
        } else {
            "TerminatingOrFailed"
        };
        spec.pod_replacement_policy
            .get_or_insert_with(|| replacement.to_string());
        default_template(spec);
        copy_template_labels(job);
    }

    /// `PrepareForCreate`: the generated selector, no status, generation 1. Upstream defaults
    /// again when it reads the stored Job back, so the Job's own labels come from the template
    /// with the generated labels in it; here that second pass is part of the create.
    fn admit_create(&self, job: &mut Job) -> Result<(), ApiError> {
        self.apply_scheme_defaults(job);
        if !job.spec.as_ref().is_some_and(manual_selector) {
            generate_selector(job);
        }
        copy_template_labels(job);
        job.status = None;
        job.metadata.generation = Some(1);
        Ok(())
    }

    fn validate(&self, job: &Job) -> Vec<FieldError> {
        let mut errs = field_error::validate_object_meta(
            &job.metadata,
            true,
            field_error::name_is_dns_subdomain,
        );
        errs.extend(validate_generated_selector(job));
        errs.extend(validate_spec(&job.spec.clone().unwrap_or_default()));
        errs
    }

    /// `PrepareForUpdate`: the status is the status writer's; a changed spec is a new
    /// generation.
    fn prepare_for_update(&self, new: &mut Job, old: &Job) {
        self.apply_scheme_defaults(new);
        workloads::prepare_update(new, old, false);
    }

    /// Writes through `status` change the status only.
    fn prepare_for_status_update(&self, new: &mut Job, old: &Job) {
        workloads::prepare_status_update(new, old);
    }

    /// `ValidateJobUpdate`: the spec as on create; the selector, the template, completions
    /// (of a NonIndexed Job) and the completion mode are immutable. Status writes validate
    /// the status.
    fn validate_update(&self, new: &Job, old: &Job) -> Vec<FieldError> {
        let mut errs = field_error::validate_object_meta_update(&new.metadata, &old.metadata);
        let n = new.spec.clone().unwrap_or_default();
        let o = old.spec.clone().unwrap_or_default();
        errs.extend(validate_spec(&n));
        immutable(
            &mut errs,
            "spec.completions",
            n.completions != o.completions,
            n.completions
                .map_or_else(|| "null".into(), |c| c.to_string()),
        );
        immutable(
            &mut errs,
            "spec.selector",
            n.selector != o.selector,
            workloads::selector_literal(n.selector.as_ref()).0,
        );
        immutable(
            &mut errs,
            "spec.template",
            n.template != o.template,
            format!("{:?}", n.template),
        );
        immutable(
            &mut errs,
            "spec.completionMode",
            n.completion_mode != o.completion_mode,
            shown(&n.completion_mode).trim_matches('"').to_string(),
        );
        errs.extend(validate_status(new.status.as_ref()));
        errs
    }

    /// batch/v1 Jobs orphan their Pods when a delete names no policy, for compatibility with
    /// the Jobs of old (upstream's `DefaultGarbageCollectionPolicy` for batch/v1); kubectl
    /// asks for background deletion.
    fn default_garbage_collection_policy(&self) -> super::GarbageCollectionPolicy {
        super::GarbageCollectionPolicy::OrphanDependents
    }

    fn selectable_fields(&self) -> &'static [&'static str] {
        &["metadata.name", "metadata.namespace", "status.successful"]
    }

    /// Upstream `JobToSelectableFields`: `status.successful` besides the name and namespace.
    fn field_value(&self, obj: &Value, field: &str) -> Option<String> {
        match field {
            "status.successful" => Some(
                obj.pointer("/status/succeeded")
                    .and_then(Value::as_i64)
                    .unwrap_or(0)
                    .to_string(),
            ),
            _ => super::default_field_value(&INFO, obj, field),
        }
    }

    fn patch_schema(&self) -> PatchSchema {
        workloads::template_patch_schema()
    }

    fn column_definitions(&self) -> Value {
        let own = [
            column("Name", "string", "name", NAME_DESCRIPTION, 0),
            column("Status", "string", "", "Status of the job.", 0),
            column("Completions", "string", "", "The number of pods which reached phase Succeeded. The value increases monotonically for a given spec. However, it may decrease in reaction to scale down of elastic indexed jobs.", 0),
            column("Duration", "string", "", "Time required to complete the job.", 0),
            column("Age", "string", "", AGE_DESCRIPTION, 0),
        ];
        let template = workloads::template_columns("A label query over pods that should match the pod count. Normally, the system sets this field for you. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors");
        Value::Array(own.into_iter().chain(template).collect())
    }

    /// Upstream `printJob`.
    fn row(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let job: Job = serde::Deserialize::deserialize(obj).unwrap_or_default();
        let spec = job.spec.unwrap_or_default();
        let status = job.status.unwrap_or_default();
        let succeeded = status.succeeded.unwrap_or(0);
        let completions = match (spec.completions, spec.parallelism.unwrap_or(0)) {
            (Some(c), _) => format!("{succeeded}/{c}"),
            (None, p) if p > 1 => format!("{succeeded}/1 of {p}"),
            (None, _) => format!("{succeeded}/1"),
        };
        let duration = match (&status.start_time, &status.completion_time) {
            (None, _) => String::new(),
            (Some(start), None) => crate::meta::duration::since(Some(start.0), now),
            (Some(start), Some(end)) => crate::meta::duration::since(Some(start.0), end.0),
        };
        let has = |kind: &str| {
            status
                .conditions
                .iter()
                .flatten()
                .any(|c| c.type_ == kind && c.status == "True")
        };
        let state = if has("Complete") {
            "Complete"
        } else if has("Failed") {
            "Failed"
        } else if job.metadata.deletion_timestamp.is_some() {
            "Terminating"
        } else if has("Suspended") {
            "Suspended"
        } else if has("FailureTarget") {
            "FailureTarget"
        } else if has("SuccessCriteriaMet") {
            "SuccessCriteriaMet"
        } else {
            "Running"
        };
        let mut row = vec![
            json!(job.metadata.name.unwrap_or_default()),
            json!(state),
            json!(completions),
            json!(duration),
            json!(age(obj, now)),
        ];
        let selector = spec
            .selector
            .as_ref()
            .map(label_selector::format)
            .unwrap_or_else(|| "<none>".into());
        row.extend(workloads::template_cells(
            spec.template.spec.as_ref(),
            &selector,
        ));
        row
    }
}

/// The defaults a Job's Pod template gets wherever the Job spec is (a Job, a CronJob's job
/// template): a Pod spec's.
pub fn default_template(spec: &mut JobSpec) {
    if let Some(pod_spec) = spec.template.spec.as_mut() {
        pod::strategy::default_pod_spec(pod_spec);
    }
}

/// A Job spec's Pod quantities in their canonical form, as a Pod's.
pub fn canonical_template_quantities(
    spec: &mut JobSpec,
    info: &'static ResourceInfo,
) -> Result<(), ApiError> {
    match spec.template.spec.as_mut() {
        Some(pod_spec) => pods::canonical_quantities(pod_spec, info),
        None => Ok(()),
    }
}

/// Part of `SetDefaults_Job`: a Job without labels takes its template's.
fn copy_template_labels(job: &mut Job) {
    let labels = job.spec.as_ref().map(template_labels).unwrap_or_default();
    if !labels.is_empty() && job.metadata.labels.as_ref().is_none_or(|l| l.is_empty()) {
        job.metadata.labels = Some(labels);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{Strategy, UpdateTarget};

    const UID: &str = "0b6d4f7e-1111-2222-3333-444455556666";

    fn pi() -> Value {
        json!({"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "pi", "namespace": "default", "uid": UID},
            "spec": {"template": {"spec": {"restartPolicy": "Never",
                "containers": [{"name": "pi", "image": "perl:5.34"}]}}}})
    }

    fn created(body: Value) -> Result<Value, ApiError> {
        let mut obj = Strategy::decode(&JobStrategy, body)?.object;
        Strategy::prepare_create(&JobStrategy, &mut obj)?;
        Ok(obj)
    }

    #[test]
    fn defaults_follow_batch_v1_and_the_selector_is_generated() {
        let job = created(pi()).expect("valid");
        let spec = &job["spec"];
        assert_eq!(spec["completions"], 1);
        assert_eq!(spec["parallelism"], 1);
        assert_eq!(spec["backoffLimit"], 6);
        assert_eq!(spec["completionMode"], "NonIndexed");
        assert_eq!(spec["suspend"], false);
        assert_eq!(spec["podReplacementPolicy"], "TerminatingOrFailed");
        assert_eq!(
            spec["selector"],
            json!({"matchLabels": {CONTROLLER_UID_LABEL: UID}})
        );
        let labels = json!({CONTROLLER_UID_LABEL: UID, JOB_NAME_LABEL: "pi",
            LEGACY_CONTROLLER_UID_LABEL: UID, LEGACY_JOB_NAME_LABEL: "pi"});
        assert_eq!(spec["template"]["metadata"]["labels"], labels);
        assert_eq!(job["metadata"]["labels"], labels);
        assert_eq!(job["metadata"]["generation"], 1);
        assert!(job.get("status").is_none(), "{job}");

        // Parallelism alone leaves completions unset (a work queue); a template's own labels
        // are the Job's.
        let mut body = pi();
        body["spec"]["parallelism"] = json!(3);
        body["spec"]["template"]["metadata"] = json!({"labels": {"app": "pi"}});
        let job = created(body).expect("valid");
        assert!(job["spec"].get("completions").is_none(), "{job}");
        assert_eq!(job["metadata"]["labels"], json!({"app": "pi"}));

        // A manual selector is kept as it is.
        let mut body = pi();
        body["spec"]["manualSelector"] = json!(true);
        body["spec"]["selector"] = json!({"matchLabels": {"app": "pi"}});
        body["spec"]["template"]["metadata"] = json!({"labels": {"app": "pi"}});
        let job = created(body).expect("valid");
        assert_eq!(
            job["spec"]["selector"],
            json!({"matchLabels": {"app": "pi"}})
        );
        assert_eq!(
            job["spec"]["template"]["metadata"]["labels"],
            json!({"app": "pi"})
        );
    }

    #[test]
    fn invalid_jobs_are_refused_in_upstreams_words() {
        type Edit = fn(&mut Value);
        let cases: &[(&str, Edit, &str)] = &[
            (
                "restartPolicy unset",
                |b| {
                    b["spec"]["template"]["spec"]
                        .as_object_mut()
                        .expect("spec")
                        .remove("restartPolicy");
                },
                "spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\"",
            ),
            (
                "restartPolicy Always",
                |b| b["spec"]["template"]["spec"]["restartPolicy"] = json!("Always"),
                "spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\"",
            ),
            (
                "negative counts",
                |b| {
                    b["spec"]["parallelism"] = json!(-1);
                    b["spec"]["completions"] = json!(-2);
                },
                "[spec.parallelism: Invalid value: -1: must be greater than or equal to 0, spec.completions: Invalid value: -2: must be greater than or equal to 0]",
            ),
            (
                "negative deadline",
                |b| b["spec"]["activeDeadlineSeconds"] = json!(-5),
                "spec.activeDeadlineSeconds: Invalid value: -5: must be greater than or equal to 0",
            ),
            (
                "negative ttl",
                |b| b["spec"]["ttlSecondsAfterFinished"] = json!(-1),
                "spec.ttlSecondsAfterFinished: Invalid value: -1: must be greater than or equal to 0",
            ),
            (
                "unknown completion mode",
                |b| b["spec"]["completionMode"] = json!("Sometimes"),
                "spec.completionMode: Unsupported value: \"Sometimes\": supported values: \"NonIndexed\", \"Indexed\"",
            ),
            (
                "indexed without completions",
                |b| {
                    b["spec"]["completionMode"] = json!("Indexed");
                    b["spec"]["parallelism"] = json!(2);
                },
                "spec.completions: Required value: when completion mode is Indexed",
            ),
            (
                "a selector without manualSelector",
                |b| b["spec"]["selector"] = json!({"matchLabels": {"app": "pi"}}),
                "spec.selector: Invalid value: &v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"pi\", \"batch.kubernetes.io/controller-uid\":\"0b6d4f7e-1111-2222-3333-444455556666\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: `selector` not auto-generated",
            ),
            (
                "a wrong job-name label",
                |b| b["spec"]["template"]["metadata"] = json!({"labels": {"job-name": "other"}}),
                "spec.template.metadata.labels[job-name]: Invalid value: map[string]string{",
            ),
            (
                "a manual selector that does not match",
                |b| {
                    b["spec"]["manualSelector"] = json!(true);
                    b["spec"]["selector"] = json!({"matchLabels": {"app": "pi"}});
                },
                "spec.template.metadata.labels: Invalid value: map[string]string(nil): `selector` does not match template `labels`",
            ),
        ];
        for (name, edit, want) in cases {
            let mut body = pi();
            edit(&mut body);
            let err = created(body).expect_err(name);
            assert_eq!(err.code, 422, "{name}");
            assert!(
                err.message.starts_with("Job.batch \"pi\" is invalid: "),
                "{name}: {}",
                err.message
            );
            assert!(err.message.contains(want), "{name}: {}", err.message);
        }
    }

    #[test]
    fn completions_selector_and_template_are_immutable_but_parallelism_is_not() {
        let old = created(pi()).expect("valid");
        let mut scaled = old.clone();
        scaled["spec"]["parallelism"] = json!(4);
        Strategy::prepare_update(&JobStrategy, &mut scaled, &old, UpdateTarget::Main)
            .expect("parallelism changes");
        assert_eq!(scaled["metadata"]["generation"], 2);
        let mut labelled = old.clone();
        labelled["metadata"]["labels"] = json!({"x": "y"});
        Strategy::prepare_update(&JobStrategy, &mut labelled, &old, UpdateTarget::Main)
            .expect("labels change");
        assert_eq!(labelled["metadata"]["generation"], 1);
        type Edit = fn(&mut Value);
        let cases: &[(Edit, &str)] = &[
            (
                |j| j["spec"]["completions"] = json!(5),
                "spec.completions: Invalid value: 5: field is immutable",
            ),
            (
                |j| j["spec"]["template"]["spec"]["containers"][0]["image"] = json!("perl:5.36"),
                "spec.template: Invalid value: ",
            ),
            (
                |j| {
                    j["spec"]["selector"]["matchLabels"]["x"] = json!("y");
                    j["spec"]["template"]["metadata"]["labels"]["x"] = json!("y");
                },
                "spec.selector: Invalid value: &v1.LabelSelector{",
            ),
        ];
        for (edit, want) in cases {
            let mut new = old.clone();
            edit(&mut new);
            let err = Strategy::prepare_update(&JobStrategy, &mut new, &old, UpdateTarget::Main)
                .expect_err(want);
            assert!(
                err.message.contains(want) && err.message.contains("field is immutable"),
                "{}",
                err.message
            );
        }
    }

    #[test]
    fn status_writes_change_the_status_only() {
        let old = created(pi()).expect("valid");
        let mut new = old.clone();
        new["spec"]["parallelism"] = json!(9);
        new["status"] = json!({"active": 1, "ready": 0, "startTime": "2024-01-01T00:00:00Z"});
        Strategy::prepare_update(&JobStrategy, &mut new, &old, UpdateTarget::Status)
            .expect("valid");
        assert_eq!(new["spec"]["parallelism"], 1);
        assert_eq!(new["status"]["active"], 1);
        let mut bad = old.clone();
        bad["status"] = json!({"failed": -1});
        let err = Strategy::prepare_update(&JobStrategy, &mut bad, &old, UpdateTarget::Status)
            .expect_err("invalid");
        assert!(
            err.message
                .contains("status.failed: Invalid value: -1: must be greater than or equal to 0"),
            "{}",
            err.message
        );
    }

    #[test]
    fn rows_print_status_completions_and_duration_as_kubectl() {
        let now: jiff::Timestamp = "2024-01-01T00:10:00Z".parse().expect("time");
        let mut job = created(pi()).expect("valid");
        job["metadata"]["creationTimestamp"] = json!("2024-01-01T00:00:00Z");
        let row = |job: &Value| Strategy::row(&JobStrategy, job, now);
        let r = row(&job);
        assert_eq!(
            &r[..5],
            &[
                json!("pi"),
                json!("Running"),
                json!("0/1"),
                json!(""),
                json!("10m")
            ]
        );
        assert_eq!(r[5], "pi");
        assert_eq!(r[6], "perl:5.34");
        assert_eq!(r[7], format!("{CONTROLLER_UID_LABEL}={UID}"));
        job["status"] = json!({"startTime": "2024-01-01T00:00:00Z", "active": 1});
        assert_eq!(row(&job)[3], "10m");
        job["status"] = json!({"startTime": "2024-01-01T00:00:00Z",
            "completionTime": "2024-01-01T00:00:42Z", "succeeded": 1,
            "conditions": [{"type": "SuccessCriteriaMet", "status": "True"}, {"type": "Complete", "status": "True"}]});
        assert_eq!(
            &row(&job)[1..4],
            &[json!("Complete"), json!("1/1"), json!("42s")]
        );
        job["status"] =
            json!({"failed": 2, "conditions": [{"type": "FailureTarget", "status": "True"}]});
        assert_eq!(row(&job)[1], "FailureTarget");
        job["status"]["conditions"] = json!([{"type": "Failed", "status": "True"}]);
        assert_eq!(row(&job)[1], "Failed");
        job["status"] = json!({"conditions": [{"type": "Suspended", "status": "True"}]});
        assert_eq!(row(&job)[1], "Suspended");
        job["metadata"]["deletionTimestamp"] = json!("2024-01-01T00:09:00Z");
        assert_eq!(row(&job)[1], "Terminating");
        let mut queue = created(pi()).expect("valid");
        queue["spec"]
            .as_object_mut()
            .expect("spec")
            .remove("completions");
        queue["spec"]["parallelism"] = json!(3);
        queue["status"] = json!({"succeeded": 1});
        assert_eq!(row(&queue)[2], "1/1 of 3");
        let field = |obj: &Value, f: &str| Strategy::field_value(&JobStrategy, obj, f);
        assert_eq!(field(&queue, "status.successful").as_deref(), Some("1"));
        assert_eq!(field(&job, "status.successful").as_deref(), Some("0"));
        assert_eq!(field(&job, "metadata.name").as_deref(), Some("pi"));
        assert_eq!(field(&job, "spec.parallelism"), None);
        assert_eq!(
            Strategy::default_garbage_collection_policy(&JobStrategy),
            crate::registry::GarbageCollectionPolicy::OrphanDependents
        );
    }
}
