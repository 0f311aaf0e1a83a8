//! The CronJob kind (batch/v1, namespaced), as upstream's `pkg/registry/batch/cronjob`: Jobs
//! made from a template on a cron schedule, defaulted as `SetDefaults_CronJob` (the job
//! template's Pods as a Job's), validated as `ValidateCronJobCreate` and
//! `ValidateCronJobUpdate` (the schedule read by [`crate::meta::cron`], as robfig/cron's
//! standard parser reads it), a `status` subresource and kube-apiserver's Table columns.

use k8s_openapi::api::batch::v1::{CronJob, CronJobSpec};
use serde_json::{json, Value};

use super::decode::{decode_typed, Decoded};
use super::{
    age, column, field_error, jobs, since, workloads, FieldError, ResourceInfo, TypedStrategy,
    AGE_DESCRIPTION, NAME_DESCRIPTION,
};
use crate::meta::cron;
use crate::meta::patch::{generic_patch_schema, PatchSchema};
use crate::meta::{validation, ApiError};

static INFO: ResourceInfo = ResourceInfo {
    group: "batch",
    version: "v1",
    kind: "CronJob",
    plural: "cronjobs",
    singular: "cronjob",
    short_names: &["cj"],
    categories: &["all"],
    namespaced: true,
    subresources: &["status"],
};

pub fn info() -> &'static ResourceInfo {
    &INFO
}

/// The longest CronJob name: its Jobs are named `<cronjob>-<minutes since the epoch>`, an
/// 11-character suffix, and a Job's name must fit a 63-character label.
const MAX_NAME_LENGTH: usize = 52;

pub const CONCURRENCY_POLICIES: [&str; 3] = ["Allow", "Forbid", "Replace"];

pub struct CronJobStrategy;

/// Upstream `validateScheduleFormat`: robfig's parse error, and `TZ=` refused unless the
/// stored schedule already had it (it was allowed before `timeZone` existed).
fn validate_schedule(
    errs: &mut Vec<FieldError>,
    schedule: &str,
    allow_tz: bool,
    time_zone: Option<&str>,
) {
    let path = "spec.schedule";
    if let Err(e) = cron::parse_standard(schedule) {
        errs.push(FieldError::invalid(path, schedule.to_string(), e));
    }
    if schedule.contains("TZ") {
        if !allow_tz {
            errs.push(FieldError::invalid(
                path,
                schedule.to_string(),
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
            ));
        } else if time_zone.is_some() {
            errs.push(FieldError::invalid(
                path,
                schedule.to_string(),
                "cannot use both timeZone field and TZ or CRON_TZ in schedule",
            ));
        }
    }
}

/// Upstream `validateTimeZone`: an IANA name the time zone database knows, never `Local`.
fn validate_time_zone(errs: &mut Vec<FieldError>, time_zone: Option<&str>) {
    let Some(tz) = time_zone else {
        return;
    };
    let path = "spec.timeZone";
    if tz.is_empty() {
        errs.push(FieldError::invalid(
            path,
            tz.to_string(),
            "timeZone must be nil or non-empty string",
        ));
        return;
    }
    // The IANA naming rules (upstream's character check), which keep a name from reaching
    // outside the database as a path.
    let bad_part = |part: &str| {
        part == "."
            || part == ".."
            || part.starts_with('-')
            || part.is_empty()
            || part.len() > 14
            || !part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-+".contains(&b))
    };
    if tz.split('/').any(bad_part) {
        errs.push(FieldError::invalid(
            path,
            tz.to_string(),
            format!("unknown time zone {tz}"),
        ));
        return;
    }
    if tz.eq_ignore_ascii_case("Local") {
        errs.push(FieldError::invalid(
            path,
            tz.to_string(),
            "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
        ));
    }
    // Go's `time.LoadLocation("Local")` is the process's zone, never an error.
    if tz != "Local" {
        if let Err(e) = cron::time_zone(tz) {
            errs.push(FieldError::invalid(path, tz.to_string(), e));
        }
    }
}

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

/// Upstream `validateCronJobSpec`, with the stored spec on an update.
fn validate_spec(spec: &CronJobSpec, old: Option<&CronJobSpec>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if spec.schedule.is_empty() {
        errs.push(FieldError::required("spec.schedule", ""));
    } else {
        let allow_tz = old.is_some_and(|o| o.schedule.contains("TZ"));
        validate_schedule(
            &mut errs,
            &spec.schedule,
            allow_tz,
            spec.time_zone.as_deref(),
        );
    }
    non_negative(
        &mut errs,
        "spec.startingDeadlineSeconds",
        spec.starting_deadline_seconds,
    );
    if old.is_none_or(|o| o.time_zone != spec.time_zone) {
        validate_time_zone(&mut errs, spec.time_zone.as_deref());
    }
    match spec.concurrency_policy.as_deref().unwrap_or("") {
        "Allow" | "Forbid" | "Replace" => {}
        "" => errs.push(FieldError::required("spec.concurrencyPolicy", "")),
        other => errs.push(FieldError::not_supported(
            "spec.concurrencyPolicy",
            other.to_string(),
            &CONCURRENCY_POLICIES,
        )),
    }
    errs.extend(validate_job_template(spec));
    non_negative(
        &mut errs,
        "spec.successfulJobsHistoryLimit",
        spec.successful_jobs_history_limit.map(i64::from),
    );
    non_negative(
        &mut errs,
        "spec.failedJobsHistoryLimit",
        spec.failed_jobs_history_limit.map(i64::from),
    );
    errs
}

/// Upstream `ValidateJobTemplateSpec`: the Job spec as a Job's, without a selector, which the
/// Jobs made from it get generated.
fn validate_job_template(spec: &CronJobSpec) -> Vec<FieldError> {
    let path = "spec.jobTemplate.spec";
    let job = spec.job_template.spec.clone().unwrap_or_default();
    let mut errs = jobs::validate_job_spec(&job, path);
    if let Some(selector) = job.selector.as_ref() {
        errs.push(FieldError::invalid(
            format!("{path}.selector"),
            workloads::selector_literal(Some(selector)),
            "`selector` will be auto-generated",
        ));
    }
    if job.manual_selector == Some(true) {
        errs.push(FieldError::not_supported(
            format!("{path}.manualSelector"),
            true,
            &["nil", "false"],
        ));
    }
    errs
}

impl TypedStrategy for CronJobStrategy {
    type Object = CronJob;

    fn info(&self) -> &'static ResourceInfo {
        &INFO
    }

    fn decode(&self, body: Value) -> Result<Decoded, ApiError> {
        decode_typed::<CronJob>(&INFO, body, |cj: &mut CronJob| {
            match cj.spec.as_mut().and_then(|s| s.job_template.spec.as_mut()) {
                Some(spec) => jobs::canonical_template_quantities(spec, &INFO),
                None => Ok(()),
            }
        })
    }

    /// batch/v1 `SetDefaults_CronJob`: Allow concurrent runs, not suspended, three successful
    /// and one failed finished Jobs kept; the job template's Pods defaulted as a Job's.
    fn apply_scheme_defaults(&self, cj: &mut CronJob) {
        let spec = cj.spec.get_or_insert_with(Default::default);
        spec.concurrency_policy
            .get_or_insert_with(|| "Allow".to_string());
        spec.suspend.get_or_insert(false);
        spec.successful_jobs_history_limit.get_or_insert(3);
        spec.failed_jobs_history_limit.get_or_insert(1);
        if let Some(job) = spec.job_template.spec.as_mut() {
            jobs::default_template(job);
        }
    }

    /// `PrepareForCreate`: no status, generation 1.
    fn admit_create(&self, cj: &mut CronJob) -> Result<(), ApiError> {
        self.apply_scheme_defaults(cj);
        cj.status = None;
        cj.metadata.generation = Some(1);
        Ok(())
    }

    /// `ValidateCronJobCreate`: the name is a DNS subdomain of at most 52 characters.
    fn validate(&self, cj: &CronJob) -> Vec<FieldError> {
        let mut errs = field_error::validate_object_meta(
            &cj.metadata,
            true,
            field_error::name_is_dns_subdomain,
        );
        errs.extend(validate_spec(&cj.spec.clone().unwrap_or_default(), None));
        let name = cj.metadata.name.clone().unwrap_or_default();
        if name.len() > MAX_NAME_LENGTH {
            errs.push(FieldError::invalid(
                "metadata.name",
                name,
                format!("must be no more than {MAX_NAME_LENGTH} characters"),
            ));
        }
        errs
    }

    /// Upstream `WarningsOnCreate`: the name becomes part of Pod names and host names.
    fn warnings_on_create(&self, cj: &CronJob) -> Vec<String> {
        let name = cj.metadata.name.clone().unwrap_or_default();
        let msgs = validation::is_dns1123_label(&name);
        if msgs.is_empty() {
            return Vec::new();
        }
        vec![format!(
            "metadata.name: this is used in Pod names and hostnames, which can result in surprising behavior; a DNS label is recommended: [{}]",
            msgs.join(" ")
        )]
    }

    /// `PrepareForUpdate`: the status is the status writer's; a changed spec is a new
    /// generation.
    fn prepare_for_update(&self, new: &mut CronJob, old: &CronJob) {
        self.apply_scheme_defaults(new);
        workloads::prepare_update(new, old, false);
    }

    /// Writes through `status` change the status only.
    fn prepare_for_status_update(&self, new: &mut CronJob, old: &CronJob) {
        workloads::prepare_status_update(new, old);
    }

    /// `ValidateCronJobUpdate`: the spec as on create, against the stored one; the name's
    /// length is not checked again, so a CronJob named before the limit can still change.
    fn validate_update(&self, new: &CronJob, old: &CronJob) -> Vec<FieldError> {
        let mut errs = field_error::validate_object_meta_update(&new.metadata, &old.metadata);
        errs.extend(validate_spec(
            &new.spec.clone().unwrap_or_default(),
            Some(&old.spec.clone().unwrap_or_default()),
        ));
        errs
    }

    /// Upstream `WarningsOnUpdate`: a schedule still using `TZ=`.
    fn warnings_on_update(&self, new: &CronJob, _old: &CronJob) -> Vec<String> {
        let schedule = new.spec.as_ref().map(|s| s.schedule.as_str()).unwrap_or("");
        if !schedule.contains("TZ") {
            return Vec::new();
        }
        vec!["cannot use TZ or CRON_TZ in spec.spec.schedule, use timeZone instead, see https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/ for more details".into()]
    }

    fn patch_schema(&self) -> PatchSchema {
        generic_patch_schema().graft("spec.jobTemplate", &workloads::template_patch_schema())
    }

    fn column_definitions(&self) -> Value {
        let own = [
            column("Name", "string", "name", NAME_DESCRIPTION, 0),
            column("Schedule", "string", "", "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron.", 0),
            column("Timezone", "string", "", "The time zone name for the given schedule, see https://en.wikipedia.org/wiki/List_of_tz_database_time_zones. If not specified, this will default to the time zone of the kube-controller-manager process. The set of valid time zone names and the time zone offset is loaded from the system-wide time zone database by the API server during CronJob validation and the controller manager during execution. If no system-wide time zone database can be found a bundled version of the database is used instead. If the time zone name becomes invalid during the lifetime of a CronJob or due to a change in host configuration, the controller will stop creating new new Jobs and will create a system event with the reason UnknownTimeZone. More information can be found in https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/#time-zones", 0),
            column("Suspend", "boolean", "", "This flag tells the controller to suspend subsequent executions, it does not apply to already started executions.  Defaults to false.", 0),
            column("Active", "integer", "", "A list of pointers to currently running jobs.", 0),
            column("Last Schedule", "string", "", "Information when was the last time the job was successfully scheduled.", 0),
            column("Age", "string", "", AGE_DESCRIPTION, 0),
        ];
        let template = workloads::template_columns("A label query over pods that should match the pod count. Normally, the system sets this field for you. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors");
        Value::Array(own.into_iter().chain(template).collect())
    }

    /// Upstream `printCronJob`.
    fn row(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let cj: CronJob = serde::Deserialize::deserialize(obj).unwrap_or_default();
        let spec = cj.spec.unwrap_or_default();
        let status = cj.status.unwrap_or_default();
        let last_schedule = match obj.pointer("/status/lastScheduleTime") {
            Some(t) if !t.is_null() => since(Some(t), now),
            _ => "<none>".to_string(),
        };
        let suspend = match spec.suspend {
            Some(true) => "True",
            Some(false) => "False",
            None => "<unset>",
        };
        let job = spec.job_template.spec.unwrap_or_default();
        let selector = job
            .selector
            .as_ref()
            .map(crate::meta::label_selector::format)
            .unwrap_or_else(|| "<none>".into());
        let mut row = vec![
            json!(cj.metadata.name.unwrap_or_default()),
            json!(spec.schedule),
            json!(spec.time_zone.as_deref().unwrap_or("<none>")),
            json!(suspend),
            json!(status.active.map_or(0, |a| a.len())),
            json!(last_schedule),
            json!(age(obj, now)),
        ];
        row.extend(workloads::template_cells(
            job.template.spec.as_ref(),
            &selector,
        ));
        row
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{Strategy, UpdateTarget};

    fn hello() -> Value {
        json!({"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "hello", "namespace": "default", "uid": "u1"},
            "spec": {"schedule": "*/1 * * * *", "jobTemplate": {"spec": {"template": {"spec": {
                "restartPolicy": "OnFailure",
                "containers": [{"name": "hello", "image": "busybox"}]}}}}}})
    }

    fn created(body: Value) -> Result<Value, ApiError> {
        let mut obj = Strategy::decode(&CronJobStrategy, body)?.object;
        Strategy::prepare_create(&CronJobStrategy, &mut obj)?;
        Ok(obj)
    }

    #[test]
    fn defaults_follow_batch_v1_and_the_template_pods_are_defaulted_as_a_jobs() {
        let cj = created(hello()).expect("valid");
        let spec = &cj["spec"];
        assert_eq!(spec["concurrencyPolicy"], "Allow");
        assert_eq!(spec["suspend"], false);
        assert_eq!(spec["successfulJobsHistoryLimit"], 3);
        assert_eq!(spec["failedJobsHistoryLimit"], 1);
        let pod = &spec["jobTemplate"]["spec"]["template"]["spec"];
        assert_eq!(pod["dnsPolicy"], "ClusterFirst");
        assert_eq!(pod["terminationGracePeriodSeconds"], 30);
        assert_eq!(pod["containers"][0]["imagePullPolicy"], "Always");
        // The Job's own defaults are for the Jobs made from it, not the template.
        assert!(spec["jobTemplate"]["spec"].get("backoffLimit").is_none());
        assert_eq!(cj["metadata"]["generation"], 1);
        assert!(cj.get("status").is_none(), "{cj}");
    }

    #[test]
    fn invalid_cronjobs_are_refused_in_upstreams_words() {
        type Edit = fn(&mut Value);
        let cases: &[(&str, Edit, &str)] = &[
            (
                "a bad schedule",
                |b| b["spec"]["schedule"] = json!("bad"),
                "spec.schedule: Invalid value: \"bad\": expected exactly 5 fields, found 1: [bad]",
            ),
            (
                "no schedule",
                |b| b["spec"]["schedule"] = json!(""),
                "spec.schedule: Required value",
            ),
            (
                "out of range",
                |b| b["spec"]["schedule"] = json!("0 24 * * *"),
                "spec.schedule: Invalid value: \"0 24 * * *\": end of range (24) above maximum (23): 24",
            ),
            (
                "a TZ prefix",
                |b| b["spec"]["schedule"] = json!("TZ=UTC 0 0 * * *"),
                "spec.schedule: Invalid value: \"TZ=UTC 0 0 * * *\": cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
            ),
            (
                "an unknown time zone",
                |b| b["spec"]["timeZone"] = json!("Mars/Olympus"),
                "spec.timeZone: Invalid value: \"Mars/Olympus\": unknown time zone Mars/Olympus",
            ),
            (
                "the local time zone",
                |b| b["spec"]["timeZone"] = json!("Local"),
                "spec.timeZone: Invalid value: \"Local\": timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
            ),
            (
                "an empty time zone",
                |b| b["spec"]["timeZone"] = json!(""),
                "spec.timeZone: Invalid value: \"\": timeZone must be nil or non-empty string",
            ),
            (
                "a path as a time zone",
                |b| b["spec"]["timeZone"] = json!("../../etc/passwd"),
                "spec.timeZone: Invalid value: \"../../etc/passwd\": unknown time zone ../../etc/passwd",
            ),
            (
                "an unknown concurrency policy",
                |b| b["spec"]["concurrencyPolicy"] = json!("Sometimes"),
                "spec.concurrencyPolicy: Unsupported value: \"Sometimes\": supported values: \"Allow\", \"Forbid\", \"Replace\"",
            ),
            (
                "a template that restarts always",
                |b| b["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"] = json!("Always"),
                "spec.jobTemplate.spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\"",
            ),
            (
                "a negative backoff limit",
                |b| b["spec"]["jobTemplate"]["spec"]["backoffLimit"] = json!(-1),
                "spec.jobTemplate.spec.backoffLimit: Invalid value: -1: must be greater than or equal to 0",
            ),
            (
                "a selector",
                |b| b["spec"]["jobTemplate"]["spec"]["selector"] = json!({"matchLabels": {"a": "b"}}),
                "spec.jobTemplate.spec.selector: Invalid value: &v1.LabelSelector{MatchLabels:map[string]string{\"a\":\"b\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: `selector` will be auto-generated",
            ),
            (
                "a manual selector",
                |b| b["spec"]["jobTemplate"]["spec"]["manualSelector"] = json!(true),
                "spec.jobTemplate.spec.manualSelector: Unsupported value: true: supported values: \"nil\", \"false\"",
            ),
            (
                "a long name",
                |b| b["metadata"]["name"] = json!("a".repeat(53)),
                "metadata.name: Invalid value: \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\": must be no more than 52 characters",
            ),
        ];
        for (name, edit, want) in cases {
            let mut body = hello();
            edit(&mut body);
            let err = created(body).expect_err(name);
            assert_eq!(err.code, 422, "{name}");
            assert_eq!(
                err.message,
                format!(
                    "CronJob.batch \"{}\" is invalid: {want}",
                    if *name == "a long name" {
                        "a".repeat(53)
                    } else {
                        "hello".into()
                    }
                ),
                "{name}"
            );
        }
        let mut body = hello();
        body["spec"]["startingDeadlineSeconds"] = json!(-1);
        body["spec"]["successfulJobsHistoryLimit"] = json!(-2);
        body["spec"]["failedJobsHistoryLimit"] = json!(-3);
        let err = created(body).expect_err("negative numbers");
        assert!(
            err.message.ends_with("[spec.startingDeadlineSeconds: Invalid value: -1: must be greater than or equal to 0, spec.successfulJobsHistoryLimit: Invalid value: -2: must be greater than or equal to 0, spec.failedJobsHistoryLimit: Invalid value: -3: must be greater than or equal to 0]"),
            "{}",
            err.message
        );
        let mut body = hello();
        body["metadata"]["name"] = json!("a".repeat(52));
        body["spec"]["timeZone"] = json!("Europe/Berlin");
        body["spec"]["schedule"] = json!("@every 1h");
        created(body).expect("a 52-character name, a zone and a descriptor are valid");
    }

    #[test]
    fn updates_keep_the_status_bump_the_generation_and_keep_an_old_tz_schedule() {
        let old = created(hello()).expect("valid");
        let mut suspended = old.clone();
        suspended["spec"]["suspend"] = json!(true);
        suspended["status"] = json!({"lastScheduleTime": "2024-01-01T00:00:00Z"});
        Strategy::prepare_update(&CronJobStrategy, &mut suspended, &old, UpdateTarget::Main)
            .expect("valid");
        assert_eq!(suspended["metadata"]["generation"], 2);
        assert!(suspended.get("status").is_none(), "{suspended}");

        let mut status = old.clone();
        status["spec"]["suspend"] = json!(true);
        status["status"] = json!({"lastScheduleTime": "2024-01-01T00:00:00Z",
            "active": [{"kind": "Job", "name": "hello-1", "namespace": "default"}]});
        Strategy::prepare_update(&CronJobStrategy, &mut status, &old, UpdateTarget::Status)
            .expect("valid");
        assert_eq!(status["spec"]["suspend"], false);
        assert_eq!(status["status"]["active"][0]["name"], "hello-1");

        // A schedule stored with TZ= before timeZone existed can still be updated, with a
        // warning; adding a timeZone beside it cannot.
        let mut legacy = old.clone();
        legacy["spec"]["schedule"] = json!("TZ=UTC */5 * * * *");
        let mut changed = legacy.clone();
        changed["spec"]["suspend"] = json!(true);
        let warnings =
            Strategy::prepare_update(&CronJobStrategy, &mut changed, &legacy, UpdateTarget::Main)
                .expect("an old TZ= schedule stays");
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        let mut both = legacy.clone();
        both["spec"]["timeZone"] = json!("UTC");
        let err =
            Strategy::prepare_update(&CronJobStrategy, &mut both, &legacy, UpdateTarget::Main)
                .expect_err("both");
        assert!(
            err.message
                .contains("cannot use both timeZone field and TZ or CRON_TZ in schedule"),
            "{}",
            err.message
        );
    }

    #[test]
    fn rows_print_schedule_zone_suspend_active_and_last_schedule_as_kubectl() {
        let now: jiff::Timestamp = "2024-01-01T00:10:00Z".parse().expect("time");
        let mut cj = created(hello()).expect("valid");
        cj["metadata"]["creationTimestamp"] = json!("2024-01-01T00:00:00Z");
        let row = |cj: &Value| Strategy::row(&CronJobStrategy, cj, now);
        assert_eq!(
            row(&cj),
            [
                json!("hello"),
                json!("*/1 * * * *"),
                json!("<none>"),
                json!("False"),
                json!(0),
                json!("<none>"),
                json!("10m"),
                json!("hello"),
                json!("busybox"),
                json!("<none>")
            ]
        );
        cj["spec"]["timeZone"] = json!("Europe/Paris");
        cj["spec"]["suspend"] = json!(true);
        cj["status"] = json!({"lastScheduleTime": "2024-01-01T00:09:00Z",
            "active": [{"name": "hello-28401069"}]});
        assert_eq!(
            &row(&cj)[2..6],
            &[json!("Europe/Paris"), json!("True"), json!(1), json!("60s")]
        );
        let columns = Strategy::column_definitions(&CronJobStrategy);
        let names: Vec<&str> = columns
            .as_array()
            .expect("columns")
            .iter()
            .filter_map(|c| c["name"].as_str())
            .collect();
        assert_eq!(
            names,
            [
                "Name",
                "Schedule",
                "Timezone",
                "Suspend",
                "Active",
                "Last Schedule",
                "Age",
                "Containers",
                "Images",
                "Selector"
            ]
        );
    }
}
