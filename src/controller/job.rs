//! The Job controller (upstream `pkg/controller/job`) and the deletion of finished Jobs whose
//! time to live is over (upstream `pkg/controller/ttlafterfinished`).
//!
//! Each sync turns a Job and the Pods it controls into a [`Decision`] ([`decide`], a pure
//! function): how many Pods to create, which to delete, the new status and the events. The
//! Job keeps `parallelism` Pods running until `completions` have succeeded; a Job whose failed
//! Pods exceed `backoffLimit`, or that runs past `activeDeadlineSeconds`, fails. As upstream
//! v1.32, a Job first gets the interim `SuccessCriteriaMet` or `FailureTarget` condition, and
//! the terminal `Complete` or `Failed` only once none of its Pods is still running. Failed Pods
//! are replaced after upstream's exponential back-off (10 s, doubled per failure, at most six
//! minutes).
//!
//! Deviation: upstream counts finished Pods through the `batch.kubernetes.io/job-tracking`
//! finalizer, so a finished Pod deleted before the controller saw it is still counted. rkube
//! counts the Pods it sees and never lets `succeeded` or `failed` go down; a finished Pod
//! deleted by someone else before the controller's watch saw it finish is not counted.
//! Orphan Pods matching a Job's selector are not adopted. Jobs are resynced on a short tick
//! rather than through a work queue fed by event handlers, as the ReplicaSet controller is.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::batch::v1::{Job, JobCondition, JobStatus, UncountedTerminatedPods};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, PropagationPolicy};
use kube::runtime::reflector::Store;
use kube::Api;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::client::{EventRecorder, ObjectRef};

const RESYNC: Duration = Duration::from_millis(250);
/// Upstream's `ExpectationsTimeout`.
const EXPECTATIONS_TIMEOUT: Duration = Duration::from_secs(300);
/// Upstream's `DefaultJobPodFailureBackOff` and `MaxJobPodFailureBackOff`.
const BACKOFF_BASE: SignedDuration = SignedDuration::from_secs(10);
const BACKOFF_MAX: SignedDuration = SignedDuration::from_secs(360);
/// Upstream's `MaxPodCreateDeletePerSync`.
const MAX_POD_CREATE_DELETE_PER_SYNC: usize = 500;

pub const REASON_BACKOFF_LIMIT: &str = "BackoffLimitExceeded";
pub const REASON_DEADLINE: &str = "DeadlineExceeded";
pub const REASON_COMPLETIONS_REACHED: &str = "CompletionsReached";

/// An event the controller records about a Job: (type, reason, message).
pub type JobEvent = (&'static str, &'static str, String);

/// What one sync of a Job does.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub status: JobStatus,
    /// How many Pods to create from the template.
    pub create: usize,
    /// The Pods to delete, by name.
    pub delete: Vec<String>,
    pub events: Vec<JobEvent>,
}

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

fn is_terminal(pod: &Pod) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed")
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn condition<'a>(status: &'a JobStatus, kind: &str) -> Option<&'a JobCondition> {
    status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == kind && c.status == "True")
}

/// Whether the Job has its terminal condition (upstream `IsJobFinished`).
pub fn is_finished(job: &Job) -> bool {
    job.status
        .as_ref()
        .is_some_and(|s| condition(s, "Complete").is_some() || condition(s, "Failed").is_some())
}

/// Sets a condition, keeping its transition time when its status does not change.
fn set_condition(
    status: &mut JobStatus,
    kind: &str,
    value: bool,
    reason: &str,
    message: &str,
    now: Timestamp,
) {
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    let value = if value { "True" } else { "False" };
    let time = Some(Time(now));
    match conditions.iter_mut().find(|c| c.type_ == kind) {
        Some(c) if c.status == value && c.reason.as_deref() == Some(reason) => {}
        Some(c) => {
            if c.status != value {
                c.last_transition_time = time.clone();
            }
            c.status = value.into();
            c.reason = Some(reason.into());
            c.message = Some(message.into());
            c.last_probe_time = time;
        }
        None => conditions.push(JobCondition {
            type_: kind.into(),
            status: value.into(),
            reason: Some(reason.into()),
            message: Some(message.into()),
            last_probe_time: time.clone(),
            last_transition_time: time,
        }),
    }
}

/// When a Pod finished: its containers' latest finish, else its creation.
fn finished_at(pod: &Pod) -> Option<Timestamp> {
    let statuses = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref());
    statuses
        .into_iter()
        .flatten()
        .filter_map(|c| c.state.as_ref()?.terminated.as_ref()?.finished_at.as_ref())
        .map(|t| t.0)
        .max()
        .or_else(|| pod.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

/// Upstream's back-off before a failed Pod is replaced: 10 s doubled per further failure.
pub fn backoff(failures: i32) -> SignedDuration {
    if failures <= 0 {
        return SignedDuration::ZERO;
    }
    let mut delay = BACKOFF_BASE;
    for _ in 1..failures {
        delay = (delay * 2).min(BACKOFF_MAX);
    }
    delay.min(BACKOFF_MAX)
}

/// Upstream `pastBackoffLimitOnFailure`: with restartPolicy OnFailure the kubelet restarts
/// containers in place, so their restarts count against the limit.
fn past_backoff_limit_on_failure(job: &Job, active: &[&Pod]) -> bool {
    let spec = job.spec.clone().unwrap_or_default();
    let policy = spec.template.spec.and_then(|s| s.restart_policy);
    if policy.as_deref() != Some("OnFailure") {
        return false;
    }
    let restarts: i32 = active
        .iter()
        .filter_map(|p| p.status.as_ref())
        .flat_map(|s| {
            s.init_container_statuses
                .iter()
                .flatten()
                .chain(s.container_statuses.iter().flatten())
        })
        .map(|c| c.restart_count)
        .sum();
    let limit = spec.backoff_limit.unwrap_or(6);
    if limit == 0 {
        restarts > 0
    } else {
        restarts >= limit
    }
}

/// Upstream `syncJob`'s decisions for a Job that has not finished, given the Pods it controls.
pub fn decide(job: &Job, pods: &[&Pod], now: Timestamp) -> Decision {
    let spec = job.spec.clone().unwrap_or_default();
    let old = job.status.clone().unwrap_or_default();
    let mut status = old.clone();
    let mut decision = Decision {
        status: old.clone(),
        create: 0,
        delete: Vec::new(),
        events: Vec::new(),
    };
    if is_finished(job) {
        return decision;
    }
    let mut active: Vec<&Pod> = pods
        .iter()
        .copied()
        .filter(|p| p.metadata.deletion_timestamp.is_none() && !is_terminal(p))
        .collect();
    let terminating = pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_some() && !is_terminal(p))
        .count();
    let succeeded_pods = pods.iter().filter(|p| phase(p) == "Succeeded").count() as i32;
    let failed_pods: Vec<&Pod> = pods
        .iter()
        .copied()
        .filter(|p| phase(p) == "Failed")
        .collect();
    let succeeded = old.succeeded.unwrap_or(0).max(succeeded_pods);
    let mut failed = old.failed.unwrap_or(0).max(failed_pods.len() as i32);
    let suspended = spec.suspend == Some(true);

    if status.start_time.is_none() && !suspended {
        status.start_time = Some(Time(now));
    }
    let backoff_limit = spec.backoff_limit.unwrap_or(6);
    let deadline_passed = || {
        let (Some(secs), Some(start)) = (spec.active_deadline_seconds, &status.start_time) else {
            return false;
        };
        !suspended && start.0 + SignedDuration::from_secs(secs) <= now
    };
    let failure = if let Some(c) = condition(&old, "FailureTarget") {
        Some((
            c.reason.clone().unwrap_or_default(),
            c.message.clone().unwrap_or_default(),
        ))
    } else if failed > backoff_limit || past_backoff_limit_on_failure(job, &active) {
        Some((
            REASON_BACKOFF_LIMIT.to_string(),
            "Job has reached the specified backoff limit".to_string(),
        ))
    } else if deadline_passed() {
        Some((
            REASON_DEADLINE.to_string(),
            "Job was active longer than specified deadline".to_string(),
        ))
    } else {
        None
    };
    let complete = match spec.completions {
        Some(c) => succeeded >= c,
        None => succeeded > 0 && active.is_empty(),
    };

    if let Some((reason, message)) = failure {
        set_condition(&mut status, "FailureTarget", true, &reason, &message, now);
        // The Pods still running are stopped and count as failed.
        failed += active.len() as i32;
        decision.delete = active
            .iter()
            .filter_map(|p| p.metadata.name.clone())
            .collect();
        if active.is_empty() && terminating == 0 {
            set_condition(&mut status, "Failed", true, &reason, &message, now);
            let reason = if reason == REASON_DEADLINE {
                REASON_DEADLINE
            } else {
                REASON_BACKOFF_LIMIT
            };
            decision.events.push(("Warning", reason, message));
        }
        active.clear();
    } else if complete {
        let message = "Reached expected number of succeeded pods";
        set_condition(
            &mut status,
            "SuccessCriteriaMet",
            true,
            REASON_COMPLETIONS_REACHED,
            message,
            now,
        );
        decision.delete = active
            .iter()
            .filter_map(|p| p.metadata.name.clone())
            .collect();
        if active.is_empty() && terminating == 0 {
            set_condition(
                &mut status,
                "Complete",
                true,
                REASON_COMPLETIONS_REACHED,
                message,
                now,
            );
            status.completion_time = Some(Time(now));
            decision
                .events
                .push(("Normal", "Completed", "Job completed".to_string()));
        }
        active.clear();
    } else if suspended {
        if condition(&old, "Suspended").is_none() {
            set_condition(
                &mut status,
                "Suspended",
                true,
                "JobSuspended",
                "Job suspended",
                now,
            );
            decision
                .events
                .push(("Normal", "Suspended", "Job suspended".to_string()));
        }
        decision.delete = active
            .iter()
            .filter_map(|p| p.metadata.name.clone())
            .collect();
        active.clear();
    } else {
        if condition(&old, "Suspended").is_some() {
            set_condition(
                &mut status,
                "Suspended",
                false,
                "JobResumed",
                "Job resumed",
                now,
            );
            // The deadline counts from the resumption.
            status.start_time = Some(Time(now));
            decision
                .events
                .push(("Normal", "Resumed", "Job resumed".to_string()));
        }
        let parallelism = spec.parallelism.unwrap_or(1).max(0) as usize;
        let want = match spec.completions {
            Some(c) => parallelism.min((c - succeeded).max(0) as usize),
            None if succeeded > 0 => active.len().min(parallelism),
            None => parallelism,
        };
        if active.len() > want {
            let mut extra: Vec<Arc<Pod>> = active.iter().map(|p| Arc::new((*p).clone())).collect();
            super::replicaset::deletion_order(&mut extra);
            let n = (active.len() - want).min(MAX_POD_CREATE_DELETE_PER_SYNC);
            let doomed: HashSet<String> = extra
                .iter()
                .take(n)
                .filter_map(|p| p.metadata.name.clone())
                .collect();
            active.retain(|p| !p.metadata.name.as_ref().is_some_and(|n| doomed.contains(n)));
            decision.delete = doomed.into_iter().collect();
            decision.delete.sort();
        } else if active.len() < want {
            let last_failure = failed_pods.iter().filter_map(|p| finished_at(p)).max();
            let waited = match last_failure {
                Some(at) => at + backoff(failed) <= now,
                None => true,
            };
            if waited {
                decision.create = (want - active.len()).min(MAX_POD_CREATE_DELETE_PER_SYNC);
            }
        }
    }

    // Upstream's counts are `omitempty` values; `ready` and `terminating` are pointers.
    let count = |n: i32| (n != 0).then_some(n);
    status.active = count((active.len() + decision.create) as i32);
    status.ready = Some(active.iter().filter(|p| is_ready(p)).count() as i32);
    status.succeeded = count(succeeded);
    status.failed = count(failed);
    status.terminating = Some((terminating + decision.delete.len()) as i32);
    status
        .uncounted_terminated_pods
        .get_or_insert_with(UncountedTerminatedPods::default);
    decision.status = status;
    decision
}

/// How long until a finished Job's `ttlSecondsAfterFinished` is over (zero or negative: it
/// is), counted from its terminal condition (upstream `timeLeft`); `None` when it has none.
pub fn ttl_left(job: &Job, now: Timestamp) -> Option<SignedDuration> {
    let ttl = job.spec.as_ref()?.ttl_seconds_after_finished?;
    let status = job.status.as_ref()?;
    let done = condition(status, "Complete").or_else(|| condition(status, "Failed"))?;
    let finished = done.last_transition_time.as_ref()?.0;
    Some(now.duration_until(finished + SignedDuration::from_secs(i64::from(ttl))))
}

/// The Pod a Job makes: `<job>-<5 random>`.
pub fn pod_from_template(job: &Job) -> Pod {
    let template = job
        .spec
        .as_ref()
        .map(|s| s.template.clone())
        .unwrap_or_default();
    super::pod_from_template(job, template)
}

/// The status as a merge patch: a count that dropped to zero is removed, not left behind.
fn status_patch(status: &JobStatus) -> Value {
    let mut value = serde_json::to_value(status).unwrap_or(Value::Null);
    if let Some(map) = value.as_object_mut() {
        for key in ["active", "succeeded", "failed"] {
            map.entry(key).or_insert(Value::Null);
        }
    }
    json!({ "status": value })
}

/// What a Job's last sync is still waiting to see in the Pod watch.
#[derive(Debug, Default)]
struct Expectations {
    creates: HashSet<String>,
    deletes: HashSet<String>,
    since: Option<Instant>,
}

impl Expectations {
    fn satisfied(&mut self, pods: &HashMap<String, Arc<Pod>>) -> bool {
        self.creates.retain(|n| !pods.contains_key(n));
        self.deletes.retain(|n| {
            pods.get(n)
                .is_some_and(|p| p.metadata.deletion_timestamp.is_none() && !is_terminal(p))
        });
        let expired = self
            .since
            .is_some_and(|t| t.elapsed() > EXPECTATIONS_TIMEOUT);
        (self.creates.is_empty() && self.deletes.is_empty()) || expired
    }
}

pub struct JobController {
    client: kube::Client,
    jobs: Store<Job>,
    pods: Store<Pod>,
    expectations: HashMap<String, Expectations>,
    /// The status last written per Job uid, with the resourceVersion it was written over: a
    /// watch that has not caught up with the write is read with it.
    written: HashMap<String, (String, JobStatus)>,
    recorder: EventRecorder,
}

impl JobController {
    pub async fn run(
        client: kube::Client,
        informers: Arc<super::Informers>,
        shutdown: CancellationToken,
    ) {
        let jobs = informers.store::<Job>("job");
        let pods = informers.store::<Pod>("pod");
        let mut c = JobController {
            // Upstream's Job events come from `job-controller`.
            recorder: EventRecorder::new(client.clone(), "job-controller", ""),
            client,
            jobs,
            pods,
            expectations: HashMap::new(),
            written: HashMap::new(),
        };
        let work = async {
            let (Ok(()), Ok(())) = (
                c.jobs.wait_until_ready().await,
                c.pods.wait_until_ready().await,
            ) else {
                return;
            };
            tracing::info!("job controller started");
            loop {
                let jobs = c.jobs.state();
                let live: HashSet<&str> = jobs
                    .iter()
                    .filter_map(|j| j.metadata.uid.as_deref())
                    .collect();
                c.expectations.retain(|uid, _| live.contains(uid.as_str()));
                c.written.retain(|uid, _| live.contains(uid.as_str()));
                for job in &jobs {
                    c.sync(job).await;
                }
                tokio::time::sleep(RESYNC).await;
            }
        };
        tokio::select! {
            () = work => {}
            () = shutdown.cancelled() => {}
        }
    }

    async fn sync(&mut self, job: &Job) {
        let (Some(ns), Some(name), Some(uid)) = (
            job.metadata.namespace.clone(),
            job.metadata.name.clone(),
            job.metadata.uid.clone(),
        ) else {
            return;
        };
        let mut job = job.clone();
        if let Some((rv, status)) = self.written.get(&uid) {
            if job.metadata.resource_version.as_ref() == Some(rv) {
                job.status = Some(status.clone());
            }
        }
        let now = Timestamp::now();
        if is_finished(&job) {
            self.expire(&job, &ns, &name, &uid, now).await;
            return;
        }
        if job.metadata.deletion_timestamp.is_some() {
            return;
        }
        let in_namespace: HashMap<String, Arc<Pod>> = self
            .pods
            .state()
            .into_iter()
            .filter(|p| p.metadata.namespace.as_deref() == Some(ns.as_str()))
            .filter_map(|p| Some((p.metadata.name.clone()?, p)))
            .collect();
        if !self
            .expectations
            .entry(uid.clone())
            .or_default()
            .satisfied(&in_namespace)
        {
            return;
        }
        let owned: Vec<&Pod> = in_namespace
            .values()
            .filter(|p| {
                p.metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|r| r.controller == Some(true) && r.uid == uid)
            })
            .map(|p| p.as_ref())
            .collect();
        let decision = decide(&job, &owned, now);
        let object = ObjectRef {
            kind: "Job".into(),
            api_version: "batch/v1".into(),
            namespace: ns.clone(),
            name: name.clone(),
            uid: uid.clone(),
            field_path: String::new(),
        };
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        let mut status = decision.status.clone();
        for pod in &decision.delete {
            match api.delete(pod, &DeleteParams::default()).await {
                Ok(_) => {
                    let e = self.expectations.entry(uid.clone()).or_default();
                    e.deletes.insert(pod.clone());
                    e.since = Some(Instant::now());
                    self.recorder.record(
                        &object,
                        "Normal",
                        "SuccessfulDelete",
                        &format!("Deleted pod: {pod}"),
                    );
                }
                Err(e) => self.recorder.record(
                    &object,
                    "Warning",
                    "FailedDelete",
                    &format!("Error deleting: {e}"),
                ),
            }
        }
        if decision.create > 0 {
            let template = pod_from_template(&job);
            let post = PostParams::default();
            let made = futures::future::join_all(
                (0..decision.create).map(|_| api.create(&post, &template)),
            )
            .await;
            let mut failed_creates = 0;
            for result in made {
                match result {
                    Ok(p) => {
                        let pod = p.metadata.name.clone().unwrap_or_default();
                        let e = self.expectations.entry(uid.clone()).or_default();
                        e.creates.insert(pod.clone());
                        e.since = Some(Instant::now());
                        self.recorder.record(
                            &object,
                            "Normal",
                            "SuccessfulCreate",
                            &format!("Created pod: {pod}"),
                        );
                    }
                    Err(e) => {
                        failed_creates += 1;
                        self.recorder.record(
                            &object,
                            "Warning",
                            "FailedCreate",
                            &format!("Error creating: {e}"),
                        );
                    }
                }
            }
            let active = status.active.unwrap_or(0) - failed_creates;
            status.active = (active != 0).then_some(active);
        }
        if job.status.as_ref() != Some(&status) {
            let jobs: Api<Job> = Api::namespaced(self.client.clone(), &ns);
            match jobs
                .patch_status(
                    &name,
                    &PatchParams::default(),
                    &Patch::Merge(&status_patch(&status)),
                )
                .await
            {
                Ok(_) => {
                    if let Some(rv) = job.metadata.resource_version.clone() {
                        self.written.insert(uid.clone(), (rv, status));
                    }
                    for (kind, reason, message) in &decision.events {
                        self.recorder.record(&object, kind, reason, message);
                    }
                }
                Err(e) => tracing::debug!(job = %name, error = %e, "cannot update status"),
            }
        }
    }

    /// Upstream's ttl-after-finished controller: a finished Job whose time to live is over is
    /// deleted in the foreground, so the garbage collector takes its Pods first.
    async fn expire(&mut self, job: &Job, ns: &str, name: &str, uid: &str, now: Timestamp) {
        if job.metadata.deletion_timestamp.is_some() {
            return;
        }
        if ttl_left(job, now).is_none_or(|left| left > SignedDuration::ZERO) {
            return;
        }
        let jobs: Api<Job> = Api::namespaced(self.client.clone(), ns);
        let params = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Foreground),
            preconditions: Some(kube::api::Preconditions {
                uid: Some(uid.to_string()),
                resource_version: None,
            }),
            ..Default::default()
        };
        match jobs.delete(name, &params).await {
            Ok(_) => {
                tracing::info!(job = %name, namespace = %ns, "deleted finished job whose time to live is over")
            }
            Err(e) => tracing::debug!(job = %name, error = %e, "cannot delete expired job"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const START: &str = "2024-01-01T00:00:00Z";

    fn at(s: &str) -> Timestamp {
        s.parse().expect("time")
    }

    fn job(spec: Value, status: Value) -> Job {
        let mut spec = spec;
        spec["template"] = json!({"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "x"}]}});
        serde_json::from_value(json!({
            "metadata": {"name": "pi", "namespace": "default", "uid": "u1"},
            "spec": spec,
            "status": status,
        }))
        .expect("job")
    }

    fn pod(name: &str, phase: &str, finished: &str) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "creationTimestamp": START},
            "spec": {"containers": []},
            "status": {"phase": phase,
                "conditions": [{"type": "Ready", "status": if phase == "Running" {"True"} else {"False"}}],
                "containerStatuses": [{"name": "c", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
                    "state": if finished.is_empty() { json!({"running": {}}) } else { json!({"terminated": {"exitCode": 0, "finishedAt": finished}}) }}]},
        }))
        .expect("pod")
    }

    fn true_conditions(status: &JobStatus) -> Vec<String> {
        status
            .conditions
            .iter()
            .flatten()
            .filter(|c| c.status == "True")
            .map(|c| format!("{}={}", c.type_, c.reason.clone().unwrap_or_default()))
            .collect()
    }

    #[test]
    fn a_new_job_starts_parallelism_pods_but_no_more_than_completions_left() {
        let now = at(START);
        let d = decide(
            &job(json!({"completions": 3, "parallelism": 2}), json!(null)),
            &[],
            now,
        );
        assert_eq!(d.create, 2);
        assert_eq!(d.status.active, Some(2));
        assert_eq!(d.status.start_time, Some(Time(now)));
        assert_eq!(d.status.ready, Some(0));
        assert!(d.status.uncounted_terminated_pods.is_some());
        let done = pod("a", "Succeeded", START);
        let running = pod("b", "Running", "");
        let d = decide(
            &job(
                json!({"completions": 3, "parallelism": 2}),
                json!({"startTime": START}),
            ),
            &[&done, &running],
            now,
        );
        assert_eq!(d.create, 1);
        assert_eq!(
            (d.status.active, d.status.succeeded, d.status.ready),
            (Some(2), Some(1), Some(1))
        );
        let two_done = pod("c", "Succeeded", START);
        let d = decide(
            &job(
                json!({"completions": 3, "parallelism": 2}),
                json!({"startTime": START}),
            ),
            &[&done, &two_done, &running],
            now,
        );
        assert_eq!(d.create, 0, "one left to complete and one running");
    }

    #[test]
    fn a_job_is_complete_once_its_pods_have_succeeded_and_none_runs() {
        let now = at("2024-01-01T00:00:30Z");
        let pods = [pod("a", "Succeeded", START), pod("b", "Succeeded", START)];
        let refs: Vec<&Pod> = pods.iter().collect();
        let d = decide(
            &job(
                json!({"completions": 2, "parallelism": 2}),
                json!({"startTime": START}),
            ),
            &refs,
            now,
        );
        assert_eq!(d.create, 0);
        assert_eq!(
            true_conditions(&d.status),
            [
                "SuccessCriteriaMet=CompletionsReached",
                "Complete=CompletionsReached"
            ]
        );
        assert_eq!(d.status.completion_time, Some(Time(now)));
        assert_eq!(d.status.succeeded, Some(2));
        assert_eq!(d.status.active, None);
        assert_eq!(
            d.events,
            [("Normal", "Completed", "Job completed".to_string())]
        );
        // Finished Jobs are left alone.
        let finished = Job {
            status: Some(d.status.clone()),
            ..job(json!({"completions": 2}), json!(null))
        };
        assert_eq!(decide(&finished, &refs, now).status, d.status);

        // A work queue (no completions) is complete when one Pod succeeded and none runs.
        let running = pod("c", "Running", "");
        let d = decide(
            &job(json!({"parallelism": 2}), json!({"startTime": START})),
            &[refs[0], &running],
            now,
        );
        assert_eq!((d.create, d.delete.len()), (0, 0));
        assert!(true_conditions(&d.status).is_empty());
    }

    #[test]
    fn failed_pods_are_replaced_after_a_backoff_until_the_limit_is_passed() {
        assert_eq!(backoff(1), SignedDuration::from_secs(10));
        assert_eq!(backoff(3), SignedDuration::from_secs(40));
        assert_eq!(backoff(20), SignedDuration::from_secs(360));
        let failed = pod("a", "Failed", START);
        let spec = json!({"completions": 1, "backoffLimit": 1});
        let d = decide(
            &job(spec.clone(), json!({"startTime": START})),
            &[&failed],
            at("2024-01-01T00:00:05Z"),
        );
        assert_eq!(
            (d.create, d.status.failed),
            (0, Some(1)),
            "within the back-off"
        );
        let d = decide(
            &job(spec.clone(), json!({"startTime": START})),
            &[&failed],
            at("2024-01-01T00:00:10Z"),
        );
        assert_eq!(d.create, 1, "after the back-off");
        let again = pod("b", "Failed", "2024-01-01T00:00:20Z");
        let d = decide(
            &job(spec, json!({"startTime": START})),
            &[&failed, &again],
            at("2024-01-01T00:00:21Z"),
        );
        assert_eq!(d.create, 0);
        assert_eq!(
            true_conditions(&d.status),
            [
                "FailureTarget=BackoffLimitExceeded",
                "Failed=BackoffLimitExceeded"
            ]
        );
        assert_eq!(d.status.completion_time, None);
        assert_eq!(
            d.events,
            [(
                "Warning",
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit".to_string()
            )]
        );
    }

    #[test]
    fn a_job_past_its_deadline_stops_its_pods_before_it_is_failed() {
        let running = pod("a", "Running", "");
        let spec = json!({"completions": 1, "activeDeadlineSeconds": 5});
        let d = decide(
            &job(spec.clone(), json!({"startTime": START})),
            &[&running],
            at("2024-01-01T00:00:04Z"),
        );
        assert!(d.delete.is_empty() && true_conditions(&d.status).is_empty());
        let d = decide(
            &job(spec.clone(), json!({"startTime": START})),
            &[&running],
            at("2024-01-01T00:00:05Z"),
        );
        assert_eq!(d.delete, ["a"]);
        assert_eq!(
            true_conditions(&d.status),
            ["FailureTarget=DeadlineExceeded"]
        );
        assert_eq!(
            (d.status.failed, d.status.active, d.status.terminating),
            (Some(1), None, Some(1))
        );
        assert!(d.events.is_empty());
        // Once the Pod is gone the Job fails with the interim condition's reason.
        let status = serde_json::to_value(&d.status).expect("status");
        let d = decide(&job(spec, status), &[], at("2024-01-01T00:00:07Z"));
        assert_eq!(
            true_conditions(&d.status),
            ["FailureTarget=DeadlineExceeded", "Failed=DeadlineExceeded"]
        );
        assert_eq!(d.status.failed, Some(1));
        assert_eq!(
            d.events,
            [(
                "Warning",
                "DeadlineExceeded",
                "Job was active longer than specified deadline".to_string()
            )]
        );
    }

    #[test]
    fn a_suspended_job_stops_its_pods_and_resumes_with_a_new_start_time() {
        let running = pod("a", "Running", "");
        let now = at("2024-01-01T00:01:00Z");
        let d = decide(
            &job(
                json!({"completions": 1, "suspend": true}),
                json!({"startTime": START}),
            ),
            &[&running],
            now,
        );
        assert_eq!(d.delete, ["a"]);
        assert_eq!(true_conditions(&d.status), ["Suspended=JobSuspended"]);
        assert_eq!(d.events[0].1, "Suspended");
        let status = serde_json::to_value(&d.status).expect("status");
        let later = at("2024-01-01T00:02:00Z");
        let d = decide(
            &job(json!({"completions": 1, "suspend": false}), status),
            &[],
            later,
        );
        assert_eq!(d.create, 1);
        assert_eq!(d.status.start_time, Some(Time(later)));
        assert!(true_conditions(&d.status).is_empty());
        assert_eq!(d.events[0].1, "Resumed");
    }

    #[test]
    fn a_lower_parallelism_deletes_the_extra_pods() {
        let pods = [
            pod("a", "Running", ""),
            pod("b", "Pending", ""),
            pod("c", "Running", ""),
        ];
        let refs: Vec<&Pod> = pods.iter().collect();
        let d = decide(
            &job(
                json!({"completions": 5, "parallelism": 1}),
                json!({"startTime": START}),
            ),
            &refs,
            at(START),
        );
        assert_eq!(d.delete.len(), 2);
        assert!(
            d.delete.contains(&"b".to_string()),
            "pending pods go first: {:?}",
            d.delete
        );
        assert_eq!(d.status.active, Some(1));
    }

    #[test]
    fn a_finished_job_expires_ttl_seconds_after_its_terminal_condition() {
        let done = json!({"conditions": [{"type": "Complete", "status": "True", "lastTransitionTime": START}]});
        let j = job(json!({"ttlSecondsAfterFinished": 30}), done.clone());
        assert_eq!(
            ttl_left(&j, at("2024-01-01T00:00:10Z")),
            Some(SignedDuration::from_secs(20))
        );
        assert_eq!(
            ttl_left(&j, at("2024-01-01T00:00:30Z")),
            Some(SignedDuration::ZERO)
        );
        assert_eq!(ttl_left(&job(json!({}), done), at(START)), None);
        assert_eq!(
            ttl_left(
                &job(json!({"ttlSecondsAfterFinished": 0}), json!(null)),
                at(START)
            ),
            None
        );
    }

    #[test]
    fn pods_are_named_after_the_job_and_controlled_by_it() {
        let p = pod_from_template(&job(json!({}), json!(null)));
        assert_eq!(p.metadata.generate_name.as_deref(), Some("pi-"));
        let owner = &p.metadata.owner_references.expect("owner")[0];
        assert_eq!(
            (
                owner.kind.as_str(),
                owner.api_version.as_str(),
                owner.uid.as_str()
            ),
            ("Job", "batch/v1", "u1")
        );
        assert_eq!(
            (owner.controller, owner.block_owner_deletion),
            (Some(true), Some(true))
        );
        let patch = status_patch(&JobStatus {
            ready: Some(0),
            ..Default::default()
        });
        assert_eq!(patch["status"]["active"], Value::Null);
        assert!(patch["status"]
            .as_object()
            .expect("status")
            .contains_key("succeeded"));
    }
}
