//! The CronJob controller (upstream `pkg/controller/cronjob`, its v2 controller): each CronJob
//! starts a Job at the most recent time its schedule came due, named
//! `<cronjob>-<scheduled time in minutes since the epoch>` so that a time is never started
//! twice, keeps `status.active`, `lastScheduleTime` and `lastSuccessfulTime`, honours
//! `suspend`, `startingDeadlineSeconds` and the concurrency policy (Allow, Forbid, Replace),
//! and deletes the oldest finished Jobs past its history limits.
//!
//! A sync is the pure decisions below ([`reconcile_children`], [`history_to_delete`],
//! [`plan`]) around the API calls that carry them out, so unit tests drive the decisions with a
//! fake clock. As upstream, a CronJob is queued when it or one of its Jobs changes, and
//! otherwise sleeps until its next run time (plus 100 ms): nothing polls.
//!
//! Deviation: a succeeded Job sets `lastSuccessfulTime` in the sync that takes it off
//! `status.active`; upstream leaves that to the sync after, which ends the same.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures::StreamExt as _;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::batch::v1::{CronJob, CronJobStatus, Job};
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, PostParams, PropagationPolicy};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt as _};
use kube::Api;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::client::{EventRecorder, ObjectRef};
use crate::meta::cron::{self, Schedule};

/// The annotation a scheduled Job carries: its scheduled time, RFC 3339 in the CronJob's zone.
pub const SCHEDULED_TIMESTAMP_ANNOTATION: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";
/// Upstream `nextScheduleDelta`: a requeue lands this far after the run time, for clock skew.
const NEXT_SCHEDULE_DELTA: SignedDuration = SignedDuration::from_millis(100);
/// More missed times than this is a clock problem, not a backlog (upstream's 100).
const TOO_MANY_MISSED: i64 = 100;
/// How soon a sync that failed on an API call is tried again.
const RETRY: Duration = Duration::from_secs(1);

/// An event the controller records about a CronJob: (type, reason, message).
pub type CronJobEvent = (&'static str, &'static str, String);

/// How many run times were missed since the last one (upstream `missedSchedulesType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missed {
    None,
    Few,
    Many,
}

/// Upstream `mostRecentScheduleTime`'s answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Recent {
    /// The last schedule time, or the CronJob's creation.
    pub earliest: Timestamp,
    /// The latest run time not after now, if one came due since `earliest`.
    pub most_recent: Option<Timestamp>,
    pub missed: Missed,
}

fn spec(cj: &CronJob) -> k8s_openapi::api::batch::v1::CronJobSpec {
    cj.spec.clone().unwrap_or_default()
}

/// The zone a CronJob's schedule is read in: its `timeZone`, else this process's zone (as
/// upstream reads it in kube-controller-manager's).
pub fn zone_of(cj: &CronJob) -> Result<TimeZone, String> {
    match cj.spec.as_ref().and_then(|s| s.time_zone.as_deref()) {
        Some(name) => cron::time_zone(name),
        None => Ok(TimeZone::system()),
    }
}

/// Upstream `mostRecentScheduleTime`: counts the run times since the last one (or since
/// creation, or since `startingDeadlineSeconds` ago when asked and that is later) from the gap
/// between two consecutive run times, then walks the schedule from just before the latest.
pub fn most_recent_schedule_time(
    cj: &CronJob,
    now: Timestamp,
    schedule: &Schedule,
    zone: &TimeZone,
    include_deadline: bool,
) -> Result<Recent, String> {
    let status = cj.status.clone().unwrap_or_default();
    let mut earliest = status
        .last_schedule_time
        .map(|t| t.0)
        .or_else(|| cj.metadata.creation_timestamp.as_ref().map(|t| t.0))
        .unwrap_or(now);
    if include_deadline {
        if let Some(deadline) = spec(cj).starting_deadline_seconds {
            earliest = earliest.max(now - SignedDuration::from_secs(deadline));
        }
    }
    let never = || "time difference between two schedules is less than 1 second".to_string();
    let t1 = schedule.next(earliest, zone).ok_or_else(never)?;
    let none = |most_recent| Recent {
        earliest,
        most_recent,
        missed: Missed::None,
    };
    if now < t1 {
        return Ok(none(None));
    }
    let t2 = schedule.next(t1, zone).ok_or_else(never)?;
    if now < t2 {
        return Ok(none(Some(t1)));
    }
    let between = t1
        .duration_until(t2)
        .round(jiff::Unit::Second)
        .map_err(|e| e.to_string())?;
    let between = between.as_secs();
    if between < 1 {
        return Err(never());
    }
    let missed = t1.duration_until(now).as_secs() / between + 1;
    let mut t = schedule.next(t1 + SignedDuration::from_secs((missed - 2) * between), zone);
    let mut most_recent = None;
    while let Some(at) = t.filter(|at| *at <= now) {
        most_recent = Some(at);
        t = schedule.next(at, zone);
    }
    Ok(Recent {
        earliest,
        most_recent,
        missed: if missed > TOO_MANY_MISSED {
            Missed::Many
        } else {
            Missed::Few
        },
    })
}

/// Upstream `nextScheduleTimeDuration`: how long until the run after the last one (or after
/// now, when times were missed), plus [`NEXT_SCHEDULE_DELTA`].
pub fn next_schedule_delay(
    cj: &CronJob,
    now: Timestamp,
    schedule: &Schedule,
    zone: &TimeZone,
) -> SignedDuration {
    let from = match most_recent_schedule_time(cj, now, schedule, zone, false) {
        Err(_) => now,
        Ok(Recent {
            most_recent: Some(t),
            ..
        }) => t,
        Ok(Recent {
            most_recent: None,
            missed: Missed::None,
            earliest,
        }) => earliest,
        Ok(Recent {
            most_recent: None, ..
        }) => now,
    };
    match schedule.next(from, zone) {
        Some(next) => now.duration_until(next) + NEXT_SCHEDULE_DELTA,
        // Nothing ever comes due; a change to the CronJob queues it again.
        None => SignedDuration::from_hours(24),
    }
}

/// Upstream `getJobName`.
pub fn job_name(cj: &CronJob, scheduled: Timestamp) -> String {
    format!(
        "{}-{}",
        cj.metadata.name.as_deref().unwrap_or(""),
        scheduled.as_second().div_euclid(60)
    )
}

/// Go's `time.RFC3339` of a time in a zone (`Z` for a zero offset).
fn rfc3339(t: Timestamp, zone: &TimeZone) -> String {
    let zoned = t.to_zoned(zone.clone());
    if zoned.offset().seconds() == 0 {
        zoned.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        zoned.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
    }
}

/// Upstream `getJobFromTemplate2`: the template's labels and annotations, the scheduled time
/// as an annotation (in the CronJob's zone, UTC when it names none), owned by the CronJob.
pub fn job_from_template(cj: &CronJob, scheduled: Timestamp) -> Job {
    let template = spec(cj).job_template;
    let meta = template.metadata.unwrap_or_default();
    let zone = cj
        .spec
        .as_ref()
        .and_then(|s| s.time_zone.as_deref())
        .and_then(|name| cron::time_zone(name).ok())
        .unwrap_or(TimeZone::UTC);
    let mut annotations = meta.annotations.unwrap_or_default();
    annotations.insert(
        SCHEDULED_TIMESTAMP_ANNOTATION.into(),
        rfc3339(scheduled, &zone),
    );
    let mut job = Job {
        spec: template.spec,
        ..Default::default()
    };
    job.metadata.name = Some(job_name(cj, scheduled));
    job.metadata.namespace.clone_from(&cj.metadata.namespace);
    job.metadata.labels = meta.labels;
    job.metadata.annotations = Some(annotations);
    job.metadata.owner_references = Some(vec![super::controller_ref(cj)]);
    job
}

/// The terminal condition of a finished Job: `Complete` or `Failed`.
fn finished(job: &Job) -> Option<&'static str> {
    let conditions = job.status.as_ref()?.conditions.as_ref()?;
    conditions
        .iter()
        .filter(|c| c.status == "True")
        .find_map(|c| match c.type_.as_str() {
            "Complete" => Some("Complete"),
            "Failed" => Some("Failed"),
            _ => None,
        })
}

fn uid(job: &Job) -> &str {
    job.metadata.uid.as_deref().unwrap_or("")
}

/// A reference to a Job for `status.active` (upstream `ref.GetReference`).
pub fn job_ref(job: &Job) -> ObjectReference {
    ObjectReference {
        api_version: Some("batch/v1".into()),
        kind: Some("Job".into()),
        namespace: job.metadata.namespace.clone(),
        name: job.metadata.name.clone(),
        uid: job.metadata.uid.clone(),
        resource_version: job.metadata.resource_version.clone(),
        ..Default::default()
    }
}

/// What [`reconcile_children`] leaves to API calls.
#[derive(Debug, Default, PartialEq)]
pub struct Children {
    /// Unfinished Jobs the CronJob controls that `status.active` does not list: the stored
    /// CronJob may be newer than the cached one.
    pub unexpected: Vec<String>,
    /// `status.active` entries with no Job in the cache: they may be gone.
    pub unseen: Vec<ObjectReference>,
}

/// The first part of upstream `syncCronJob`: finished Jobs leave `status.active` (event
/// `SawCompletedJob`), the latest completion of a succeeded Job is `lastSuccessfulTime`.
/// Returns whether the status changed.
pub fn reconcile_children(
    status: &mut CronJobStatus,
    jobs: &[&Job],
    events: &mut Vec<CronJobEvent>,
) -> (bool, Children) {
    let mut changed = false;
    let mut children = Children::default();
    for job in jobs {
        let name = job.metadata.name.clone().unwrap_or_default();
        let active = status
            .active
            .iter()
            .flatten()
            .any(|r| r.uid.as_deref() == Some(uid(job)));
        match (active, finished(job)) {
            (false, None) => children.unexpected.push(name.clone()),
            (true, Some(condition)) => {
                remove_active(status, uid(job));
                events.push((
                    "Normal",
                    "SawCompletedJob",
                    format!("Saw completed job: {name}, condition: {condition}"),
                ));
                changed = true;
            }
            _ => {}
        }
        if finished(job) == Some("Complete") {
            let completed = job.status.as_ref().and_then(|s| s.completion_time.clone());
            let last = status.last_successful_time.as_ref().map(|t| t.0);
            if let Some(c) = completed.filter(|c| last.is_none_or(|l| c.0 > l)) {
                status.last_successful_time = Some(c);
                changed = true;
            }
        }
    }
    let seen: HashSet<&str> = jobs.iter().map(|j| uid(j)).collect();
    children.unseen = status
        .active
        .iter()
        .flatten()
        .filter(|r| !seen.contains(r.uid.as_deref().unwrap_or("")))
        .cloned()
        .collect();
    (changed, children)
}

fn remove_active(status: &mut CronJobStatus, uid: &str) {
    if let Some(active) = status.active.as_mut() {
        active.retain(|r| r.uid.as_deref() != Some(uid));
    }
}

/// Upstream `cleanupFinishedJobs`: past `successfulJobsHistoryLimit` completed Jobs and
/// `failedJobsHistoryLimit` failed ones, the oldest (by start time, unstarted last, then by
/// name) are deleted.
pub fn history_to_delete<'a>(cj: &CronJob, jobs: &[&'a Job]) -> Vec<&'a Job> {
    let spec = spec(cj);
    let mut doomed = Vec::new();
    for (condition, limit) in [
        ("Complete", spec.successful_jobs_history_limit),
        ("Failed", spec.failed_jobs_history_limit),
    ] {
        let Some(limit) = limit else { continue };
        let mut done: Vec<&Job> = jobs
            .iter()
            .copied()
            .filter(|j| finished(j) == Some(condition))
            .collect();
        let excess = done.len().saturating_sub(limit.max(0) as usize);
        done.sort_by_key(|j| {
            let start = j
                .status
                .as_ref()
                .and_then(|s| s.start_time.as_ref())
                .map(|t| t.0);
            (start.is_none(), start, j.metadata.name.clone())
        });
        doomed.extend(done.into_iter().take(excess));
    }
    doomed
}

/// What a sync does after reconciling the CronJob's Jobs.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Start nothing; sync again after the delay, if any.
    Wait(Option<SignedDuration>),
    /// Start the Job of `scheduled`, once the Jobs in `replace` are deleted (Replace policy),
    /// and sync again after `requeue`.
    Start {
        scheduled: Timestamp,
        replace: Vec<ObjectReference>,
        requeue: SignedDuration,
    },
}

/// The rest of upstream `syncCronJob`, on the CronJob with its reconciled status: whether a
/// Job is due now, and the events of the decision.
pub fn plan(cj: &CronJob, now: Timestamp, events: &mut Vec<CronJobEvent>) -> Plan {
    let spec = spec(cj);
    let status = cj.status.clone().unwrap_or_default();
    if cj.metadata.deletion_timestamp.is_some() {
        return Plan::Wait(None);
    }
    let zone = match zone_of(cj) {
        Ok(zone) => zone,
        Err(e) => {
            let tz = spec.time_zone.unwrap_or_default();
            events.push((
                "Warning",
                "UnknownTimeZone",
                format!("invalid timeZone: {tz:?}: {e}"),
            ));
            return Plan::Wait(None);
        }
    };
    if spec.suspend == Some(true) {
        return Plan::Wait(None);
    }
    let schedule = match cron::parse_standard(&spec.schedule) {
        Ok(s) => s,
        Err(e) => {
            events.push((
                "Warning",
                "UnparseableSchedule",
                format!("unparseable schedule: {:?} : {e}", spec.schedule),
            ));
            return Plan::Wait(None);
        }
    };
    let recent = match most_recent_schedule_time(cj, now, &schedule, &zone, true) {
        Ok(r) => r,
        Err(e) => {
            events.push((
                "Warning",
                "InvalidSchedule",
                format!("invalid schedule: {} : {e}", spec.schedule),
            ));
            return Plan::Wait(None);
        }
    };
    let requeue = || Plan::Wait(Some(next_schedule_delay(cj, now, &schedule, &zone)));
    let Some(scheduled) = recent.most_recent else {
        return requeue();
    };
    if recent.missed == Missed::Many {
        events.push(("Warning", "TooManyMissedTimes", "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew".into()));
    }
    if let Some(deadline) = spec.starting_deadline_seconds {
        if scheduled + SignedDuration::from_secs(deadline) < now {
            let at = scheduled.to_zoned(TimeZone::UTC);
            events.push((
                "Warning",
                "MissSchedule",
                format!(
                    "Missed scheduled time to start a job: {}",
                    at.strftime("%a, %d %b %Y %H:%M:%S %z")
                ),
            ));
            return requeue();
        }
    }
    let active = status.active.clone().unwrap_or_default();
    let name = job_name(cj, scheduled);
    let last = status.last_schedule_time.as_ref().map(|t| t.0);
    if active
        .iter()
        .any(|r| r.name.as_deref() == Some(name.as_str()))
        || last == Some(scheduled)
    {
        return requeue();
    }
    let policy = spec.concurrency_policy.as_deref().unwrap_or("Allow");
    if policy == "Forbid" && !active.is_empty() {
        events.push((
            "Normal",
            "JobAlreadyActive",
            "Not starting job because prior execution is running and concurrency policy is Forbid"
                .into(),
        ));
        return requeue();
    }
    let replace = if policy == "Replace" {
        active
    } else {
        Vec::new()
    };
    let mut after = cj.clone();
    after
        .status
        .get_or_insert_with(Default::default)
        .last_schedule_time = Some(Time(scheduled));
    Plan::Start {
        scheduled,
        replace,
        requeue: next_schedule_delay(&after, now, &schedule, &zone),
    }
}

/// A CronJob by namespace and name.
type Key = (String, String);

/// Upstream's delaying work queue, reduced to what one worker needs: each CronJob is due at
/// one instant, the earliest it was asked for.
#[derive(Debug, Default)]
struct Queue {
    due: HashMap<Key, Instant>,
}

impl Queue {
    fn add_after(&mut self, key: Key, delay: Duration) {
        let at = Instant::now() + delay;
        self.due
            .entry(key)
            .and_modify(|d| *d = (*d).min(at))
            .or_insert(at);
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.due.values().min().copied()
    }

    fn pop_due(&mut self, now: Instant) -> Vec<Key> {
        let due: Vec<Key> = self
            .due
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in &due {
            self.due.remove(key);
        }
        due
    }
}

fn key_of(cj: &CronJob) -> Option<Key> {
    Some((cj.metadata.namespace.clone()?, cj.metadata.name.clone()?))
}

/// The CronJob a Job's controller reference names.
fn owner_key(job: &Job) -> Option<Key> {
    let owner = job
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true))?;
    (owner.kind == "CronJob" && owner.api_version.starts_with("batch/")).then(|| {
        (
            job.metadata.namespace.clone().unwrap_or_default(),
            owner.name.clone(),
        )
    })
}

/// A failed API call of a sync; the CronJob is tried again shortly.
#[derive(Debug, thiserror::Error)]
enum SyncError {
    #[error(transparent)]
    Api(#[from] kube::Error),
    #[error("could not replace job {0}")]
    Replace(String),
}

pub struct CronJobController {
    client: kube::Client,
    cronjobs: Store<CronJob>,
    jobs: Store<Job>,
    recorder: EventRecorder,
}

impl CronJobController {
    pub async fn run(client: kube::Client, shutdown: CancellationToken) {
        let (cronjobs, cj_writer) = reflector::store();
        let (jobs, job_writer) = reflector::store();
        let cj_keys = watcher(
            Api::<CronJob>::all(client.clone()),
            watcher::Config::default(),
        )
        .default_backoff()
        .reflect(cj_writer)
        .touched_objects()
        .map(|r| r.map(|cj| key_of(&cj)));
        let job_keys = watcher(Api::<Job>::all(client.clone()), watcher::Config::default())
            .default_backoff()
            .reflect(job_writer)
            .touched_objects()
            .map(|r| r.map(|job| owner_key(&job)));
        let mut keys = std::pin::pin!(futures::stream::select(cj_keys, job_keys));
        let c = CronJobController {
            recorder: EventRecorder::new(client.clone(), "cronjob-controller", ""),
            client,
            cronjobs: cronjobs.clone(),
            jobs: jobs.clone(),
        };
        let mut ready = std::pin::pin!(async {
            let _ = futures::join!(cronjobs.wait_until_ready(), jobs.wait_until_ready());
        });
        let mut started = false;
        let mut queue = Queue::default();
        loop {
            let deadline = queue.next_deadline().filter(|_| started);
            let wake = async {
                match deadline {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = &mut ready, if !started => {
                    started = true;
                    tracing::info!("cronjob controller started");
                }
                key = keys.next() => match key {
                    Some(Ok(Some(key))) => queue.add_after(key, Duration::ZERO),
                    Some(Ok(None)) => {}
                    Some(Err(e)) => tracing::warn!(error = %e, "cronjob controller watch failed; retrying"),
                    None => return,
                },
                () = wake => {
                    for key in queue.pop_due(Instant::now()) {
                        let requeue = match c.sync(&key).await {
                            Ok(requeue) => requeue.map(|d| Duration::try_from(d).unwrap_or_default()),
                            Err(e) => {
                                tracing::debug!(namespace = %key.0, cronjob = %key.1, error = %e, "sync failed; retrying");
                                Some(RETRY)
                            }
                        };
                        if let Some(delay) = requeue {
                            queue.add_after(key, delay);
                        }
                    }
                }
            }
        }
    }

    async fn sync(&self, key: &Key) -> Result<Option<SignedDuration>, SyncError> {
        let (ns, name) = key;
        let cached = self
            .cronjobs
            .get(&reflector::ObjectRef::new(name).within(ns));
        let Some(cached) = cached else {
            return Ok(None);
        };
        let mut cj = (*cached).clone();
        let all_jobs = self.jobs.state();
        let jobs: Vec<&Job> = all_jobs
            .iter()
            .map(|j| j.as_ref())
            .filter(|j| owner_key(j).as_ref() == Some(key))
            .collect();
        let cronjobs: Api<CronJob> = Api::namespaced(self.client.clone(), ns);
        let job_api: Api<Job> = Api::namespaced(self.client.clone(), ns);
        let object = ObjectRef {
            kind: "CronJob".into(),
            api_version: "batch/v1".into(),
            namespace: ns.clone(),
            name: name.clone(),
            uid: cj.metadata.uid.clone().unwrap_or_default(),
            field_path: String::new(),
        };
        let mut events = Vec::new();
        let mut changed = false;

        for job in history_to_delete(&cj, &jobs) {
            changed |= self
                .delete_job(&job_api, &mut cj, &job_ref(job), &mut events)
                .await;
        }
        let mut status = cj.status.clone().unwrap_or_default();
        let mut child_events = Vec::new();
        let (mut reconciled, mut children) =
            reconcile_children(&mut status, &jobs, &mut child_events);
        if !children.unexpected.is_empty() {
            // The cache may predate this controller's own status write: read the stored one.
            let stored = cronjobs.get(name).await?;
            let listed = |job: &str| {
                stored
                    .status
                    .as_ref()
                    .and_then(|s| s.active.as_ref())
                    .is_some_and(|a| a.iter().any(|r| r.name.as_deref() == Some(job)))
            };
            let forgotten: Vec<String> = children
                .unexpected
                .iter()
                .filter(|j| !listed(j))
                .cloned()
                .collect();
            if forgotten.is_empty() {
                cj = stored;
                status = cj.status.clone().unwrap_or_default();
                child_events.clear();
                (reconciled, children) = reconcile_children(&mut status, &jobs, &mut child_events);
            }
            for job in forgotten {
                child_events.push((
                    "Warning",
                    "UnexpectedJob",
                    format!("Saw a job that the controller did not create or forgot: {job}"),
                ));
            }
        }
        changed |= reconciled;
        events.extend(child_events);
        for gone in &children.unseen {
            let job = gone.name.clone().unwrap_or_default();
            if job_api.get_opt(&job).await?.is_none() {
                events.push((
                    "Normal",
                    "MissingJob",
                    format!("Active job went missing: {job}"),
                ));
                remove_active(&mut status, gone.uid.as_deref().unwrap_or(""));
                changed = true;
            }
        }
        cj.status = Some(status);

        let result = match plan(&cj, Timestamp::now(), &mut events) {
            Plan::Wait(requeue) => Ok(requeue),
            Plan::Start {
                scheduled,
                replace,
                requeue,
            } => self
                .start(&job_api, &mut cj, scheduled, &replace, &mut events)
                .await
                .map(|started| {
                    changed |= started;
                    Some(requeue)
                }),
        };
        for (kind, reason, message) in &events {
            self.recorder.record(&object, kind, reason, message);
        }
        if changed {
            cronjobs
                .replace_status(name, &PostParams::default(), &cj)
                .await?;
        }
        result
    }

    /// Deletes the Jobs a Replace policy replaces, then creates the Job of `scheduled` and
    /// lists it in `status.active`; returns whether the status changed.
    async fn start(
        &self,
        api: &Api<Job>,
        cj: &mut CronJob,
        scheduled: Timestamp,
        replace: &[ObjectReference],
        events: &mut Vec<CronJobEvent>,
    ) -> Result<bool, SyncError> {
        let mut changed = false;
        for old in replace {
            if !self.delete_job(api, cj, old, events).await {
                return Err(SyncError::Replace(old.name.clone().unwrap_or_default()));
            }
            changed = true;
        }
        if let Some(job) = self.create_job(api, cj, scheduled, events).await? {
            let status = cj.status.get_or_insert_with(Default::default);
            status
                .active
                .get_or_insert_with(Vec::new)
                .push(job_ref(&job));
            status.last_schedule_time = Some(Time(scheduled));
            changed = true;
        }
        Ok(changed)
    }

    /// Upstream `deleteJob`: the Job goes in the background (the garbage collector takes its
    /// Pods) and leaves `status.active`.
    async fn delete_job(
        &self,
        api: &Api<Job>,
        cj: &mut CronJob,
        job: &ObjectReference,
        events: &mut Vec<CronJobEvent>,
    ) -> bool {
        let name = job.name.clone().unwrap_or_default();
        let params = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            ..Default::default()
        };
        match api.delete(&name, &params).await {
            Ok(_) => {
                if let Some(status) = cj.status.as_mut() {
                    remove_active(status, job.uid.as_deref().unwrap_or(""));
                }
                events.push(("Normal", "SuccessfulDelete", format!("Deleted job {name}")));
                true
            }
            Err(e) => {
                events.push(("Warning", "FailedDelete", format!("Deleted job: {e}")));
                false
            }
        }
    }

    /// Creates the Job of `scheduled`; a Job of that name the CronJob already controls is
    /// taken as created unless `status.active` lists it already (`None`), one it does not
    /// control is left to its owner (`None`).
    async fn create_job(
        &self,
        api: &Api<Job>,
        cj: &CronJob,
        scheduled: Timestamp,
        events: &mut Vec<CronJobEvent>,
    ) -> Result<Option<Job>, SyncError> {
        let job = job_from_template(cj, scheduled);
        match api.create(&PostParams::default(), &job).await {
            Ok(made) => {
                let name = made.metadata.name.clone().unwrap_or_default();
                events.push(("Normal", "SuccessfulCreate", format!("Created job {name}")));
                Ok(Some(made))
            }
            Err(kube::Error::Api(status)) if status.is_already_exists() => {
                let name = job.metadata.name.clone().unwrap_or_default();
                let existing = api.get(&name).await?;
                let ours = existing
                    .metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|r| {
                        r.controller == Some(true) && Some(&r.uid) == cj.metadata.uid.as_ref()
                    });
                let listed = cj
                    .status
                    .as_ref()
                    .and_then(|s| s.active.as_ref())
                    .is_some_and(|a| a.iter().any(|r| r.uid.as_deref() == Some(uid(&existing))));
                tracing::info!(job = %name, "job already exists");
                Ok((ours && !listed).then_some(existing))
            }
            Err(e) => {
                events.push((
                    "Warning",
                    "FailedCreate",
                    format!("Error creating job: {e}"),
                ));
                Err(e.into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    const CREATED: &str = "2024-01-01T00:00:00Z";

    fn at(s: &str) -> Timestamp {
        s.parse().expect("time")
    }

    fn cronjob(spec: Value, status: Value) -> CronJob {
        let mut full = json!({"schedule": "*/1 * * * *", "concurrencyPolicy": "Allow",
            "suspend": false, "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 1,
            "jobTemplate": {"metadata": {"labels": {"app": "hello"}, "annotations": {"a": "b"}},
                "spec": {"template": {"spec": {"restartPolicy": "OnFailure",
                    "containers": [{"name": "c", "image": "x"}]}}}}});
        for (k, v) in spec.as_object().expect("spec") {
            full[k] = v.clone();
        }
        serde_json::from_value(json!({
            "apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "hello", "namespace": "default", "uid": "cj-uid",
                "creationTimestamp": CREATED},
            "spec": full,
            "status": status,
        }))
        .expect("cronjob")
    }

    fn active(names: &[&str]) -> Value {
        json!(names
            .iter()
            .map(|n| json!({"kind": "Job", "name": n, "namespace": "default", "uid": format!("uid-{n}")}))
            .collect::<Vec<_>>())
    }

    /// A Job of the CronJob: `condition` is `Complete`, `Failed` or running (empty).
    fn job(name: &str, start: Option<&str>, condition: &str, completed: Option<&str>) -> Job {
        let conditions = if condition.is_empty() {
            json!([])
        } else {
            json!([{"type": condition, "status": "True"}])
        };
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}"),
                "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob", "name": "hello",
                    "uid": "cj-uid", "controller": true}]},
            "status": {"startTime": start, "completionTime": completed, "conditions": conditions},
        }))
        .expect("job")
    }

    fn planned(cj: &CronJob, now: &str) -> (Plan, Vec<CronJobEvent>) {
        let mut events = Vec::new();
        let plan = plan(cj, at(now), &mut events);
        (plan, events)
    }

    fn reasons(events: &[CronJobEvent]) -> Vec<&str> {
        events.iter().map(|e| e.1).collect()
    }

    #[test]
    fn a_due_time_starts_a_job_named_by_its_minute_and_requeues_at_the_next() {
        let cj = cronjob(json!({}), json!({}));
        let (plan, events) = planned(&cj, "2024-01-01T00:01:30Z");
        assert_eq!(
            plan,
            Plan::Start {
                scheduled: at("2024-01-01T00:01:00Z"),
                replace: vec![],
                requeue: SignedDuration::from_millis(30_100),
            }
        );
        assert!(events.is_empty(), "{events:?}");
        let job = job_from_template(&cj, at("2024-01-01T00:01:00Z"));
        assert_eq!(job.metadata.name.as_deref(), Some("hello-28401121"));
        let annotations = job.metadata.annotations.clone().unwrap_or_default();
        assert_eq!(
            annotations[SCHEDULED_TIMESTAMP_ANNOTATION],
            "2024-01-01T00:01:00Z"
        );
        assert_eq!(annotations["a"], "b");
        assert_eq!(
            job.metadata.labels.clone().unwrap_or_default()["app"],
            "hello"
        );
        let owner = &job.metadata.owner_references.clone().unwrap_or_default()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.uid.as_str()),
            ("CronJob", "hello", "cj-uid")
        );
        assert_eq!(
            (owner.controller, owner.block_owner_deletion),
            (Some(true), Some(true))
        );
        assert_eq!(
            job.spec
                .and_then(|s| s.template.spec)
                .map(|s| s.containers[0].image.clone()),
            Some(Some("x".into()))
        );
        // The annotation is written in the CronJob's zone.
        let paris = cronjob(json!({"timeZone": "Europe/Paris"}), json!({}));
        let job = job_from_template(&paris, at("2024-07-01T00:01:00Z"));
        assert_eq!(
            job.metadata.annotations.unwrap_or_default()[SCHEDULED_TIMESTAMP_ANNOTATION],
            "2024-07-01T02:01:00+02:00"
        );
    }

    #[test]
    fn nothing_is_due_before_the_first_run_and_the_requeue_waits_for_it() {
        let cj = cronjob(json!({}), json!({}));
        assert_eq!(
            planned(&cj, "2024-01-01T00:00:20Z").0,
            Plan::Wait(Some(SignedDuration::from_millis(40_100)))
        );
        // A time already started is not started again; the next one is awaited.
        let cj = cronjob(
            json!({}),
            json!({"lastScheduleTime": "2024-01-01T00:05:00Z"}),
        );
        assert_eq!(
            planned(&cj, "2024-01-01T00:05:10Z").0,
            Plan::Wait(Some(SignedDuration::from_millis(50_100)))
        );
        // An hourly schedule sleeps until the hour.
        let cj = cronjob(json!({"schedule": "@hourly"}), json!({}));
        assert_eq!(
            planned(&cj, "2024-01-01T00:10:00Z").0,
            Plan::Wait(Some(
                SignedDuration::from_secs(50 * 60) + NEXT_SCHEDULE_DELTA
            ))
        );
    }

    #[test]
    fn suspend_forbid_replace_and_allow_decide_over_active_jobs() {
        let now = "2024-01-01T00:02:05Z";
        let busy = json!({"lastScheduleTime": "2024-01-01T00:01:00Z", "active": active(&["hello-28401121"])});
        let suspended = cronjob(json!({"suspend": true}), busy.clone());
        assert_eq!(planned(&suspended, now), (Plan::Wait(None), vec![]));

        let forbid = cronjob(json!({"concurrencyPolicy": "Forbid"}), busy.clone());
        let (plan, events) = planned(&forbid, now);
        assert_eq!(plan, Plan::Wait(Some(SignedDuration::from_millis(55_100))));
        assert_eq!(
            events,
            [(
                "Normal",
                "JobAlreadyActive",
                "Not starting job because prior execution is running and concurrency policy is Forbid".to_string()
            )]
        );

        let replace = cronjob(json!({"concurrencyPolicy": "Replace"}), busy.clone());
        let Plan::Start {
            scheduled, replace, ..
        } = planned(&replace, now).0
        else {
            panic!("replace starts");
        };
        assert_eq!(scheduled, at("2024-01-01T00:02:00Z"));
        assert_eq!(replace.len(), 1);
        assert_eq!(replace[0].name.as_deref(), Some("hello-28401121"));

        let allow = cronjob(json!({}), busy);
        let Plan::Start { replace, .. } = planned(&allow, now).0 else {
            panic!("allow starts");
        };
        assert!(replace.is_empty());
    }

    #[test]
    fn missed_times_start_only_the_latest_and_too_many_warn() {
        // Five minutes missed: the latest starts, quietly.
        let cj = cronjob(json!({}), json!({}));
        let (plan, events) = planned(&cj, "2024-01-01T00:05:30Z");
        assert!(
            matches!(plan, Plan::Start { scheduled, .. } if scheduled == at("2024-01-01T00:05:00Z"))
        );
        assert!(events.is_empty());
        // Three hours of minutes missed: still only the latest, with a warning.
        let (plan, events) = planned(&cj, "2024-01-01T03:00:30Z");
        assert!(
            matches!(plan, Plan::Start { scheduled, .. } if scheduled == at("2024-01-01T03:00:00Z"))
        );
        assert_eq!(reasons(&events), ["TooManyMissedTimes"]);
        let schedule = cron::parse_standard("*/1 * * * *").expect("valid");
        let recent = most_recent_schedule_time(
            &cj,
            at("2024-01-01T01:40:00Z"),
            &schedule,
            &TimeZone::UTC,
            false,
        )
        .expect("valid");
        assert_eq!(recent.missed, Missed::Few);
        let recent = most_recent_schedule_time(
            &cj,
            at("2024-01-01T01:41:00Z"),
            &schedule,
            &TimeZone::UTC,
            false,
        )
        .expect("valid");
        assert_eq!(recent.missed, Missed::Many);
        assert_eq!(recent.most_recent, Some(at("2024-01-01T01:41:00Z")));
        // An irregular schedule: 06:30, 10:30, 14:30 on weekdays.
        let schedule = cron::parse_standard("30 6-16/4 * * 1-5").expect("valid");
        let recent = most_recent_schedule_time(
            &cj,
            at("2024-01-03T12:00:00Z"),
            &schedule,
            &TimeZone::UTC,
            false,
        )
        .expect("valid");
        assert_eq!(recent.most_recent, Some(at("2024-01-03T10:30:00Z")));
        // `@every` counts from the creation.
        let schedule = cron::parse_standard("@every 7m").expect("valid");
        let recent = most_recent_schedule_time(
            &cj,
            at("2024-01-01T01:00:00Z"),
            &schedule,
            &TimeZone::UTC,
            false,
        )
        .expect("valid");
        assert_eq!(recent.most_recent, Some(at("2024-01-01T00:56:00Z")));
    }

    #[test]
    fn a_starting_deadline_skips_times_too_late_to_start() {
        let late = cronjob(
            json!({"schedule": "0 * * * *", "startingDeadlineSeconds": 600}),
            json!({}),
        );
        // 01:00 is 30 minutes late: nothing starts; the next try is at 02:00.
        assert_eq!(
            planned(&late, "2024-01-01T01:30:00Z").0,
            Plan::Wait(Some(
                SignedDuration::from_secs(30 * 60) + NEXT_SCHEDULE_DELTA
            ))
        );
        // Within the deadline it starts.
        assert!(matches!(
            planned(&late, "2024-01-01T01:09:00Z").0,
            Plan::Start { scheduled, .. } if scheduled == at("2024-01-01T01:00:00Z")
        ));
    }

    #[test]
    fn a_bad_time_zone_or_schedule_starts_nothing_and_says_why() {
        let cj = cronjob(json!({"timeZone": "Mars/Olympus"}), json!({}));
        let (plan, events) = planned(&cj, "2024-01-01T00:05:00Z");
        assert_eq!(plan, Plan::Wait(None));
        assert_eq!(
            events,
            [(
                "Warning",
                "UnknownTimeZone",
                "invalid timeZone: \"Mars/Olympus\": unknown time zone Mars/Olympus".to_string()
            )]
        );
        let cj = cronjob(json!({"schedule": "0 0 30 2 *"}), json!({}));
        let (plan, events) = planned(&cj, "2024-01-01T00:05:00Z");
        assert_eq!(plan, Plan::Wait(None));
        assert_eq!(reasons(&events), ["InvalidSchedule"]);
        let cj = cronjob(json!({"schedule": "bad"}), json!({}));
        assert_eq!(
            reasons(&planned(&cj, "2024-01-01T00:05:00Z").1),
            ["UnparseableSchedule"]
        );
        // Runs are read in the CronJob's zone: 09:00 in Tokyo is midnight UTC.
        let tokyo = cronjob(
            json!({"schedule": "0 9 * * *", "timeZone": "Asia/Tokyo"}),
            json!({}),
        );
        assert!(matches!(
            planned(&tokyo, "2024-01-02T00:00:05Z").0,
            Plan::Start { scheduled, .. } if scheduled == at("2024-01-02T00:00:00Z")
        ));
    }

    #[test]
    fn finished_jobs_leave_active_and_the_latest_success_is_recorded() {
        let cj = cronjob(
            json!({}),
            json!({"active": active(&["a", "b", "c", "gone"]), "lastSuccessfulTime": "2024-01-01T00:00:30Z"}),
        );
        let a = job(
            "a",
            Some("2024-01-01T00:01:00Z"),
            "Complete",
            Some("2024-01-01T00:01:20Z"),
        );
        let b = job("b", Some("2024-01-01T00:02:00Z"), "Failed", None);
        let c = job("c", Some("2024-01-01T00:03:00Z"), "", None);
        let manual = job("manual", Some("2024-01-01T00:03:30Z"), "", None);
        let old = job(
            "old",
            Some("2024-01-01T00:00:00Z"),
            "Complete",
            Some("2024-01-01T00:00:10Z"),
        );
        let mut status = cj.status.clone().unwrap_or_default();
        let mut events = Vec::new();
        let (changed, children) =
            reconcile_children(&mut status, &[&a, &b, &c, &manual, &old], &mut events);
        assert!(changed);
        let names: Vec<_> = status
            .active
            .iter()
            .flatten()
            .filter_map(|r| r.name.clone())
            .collect();
        assert_eq!(names, ["c", "gone"]);
        assert_eq!(
            status.last_successful_time.as_ref().map(|t| t.0),
            Some(at("2024-01-01T00:01:20Z"))
        );
        assert_eq!(
            events.iter().map(|e| e.2.as_str()).collect::<Vec<_>>(),
            [
                "Saw completed job: a, condition: Complete",
                "Saw completed job: b, condition: Failed"
            ]
        );
        assert_eq!(children.unexpected, ["manual"]);
        assert_eq!(children.unseen.len(), 1);
        assert_eq!(children.unseen[0].name.as_deref(), Some("gone"));
        // Nothing new: nothing changes.
        let mut events = Vec::new();
        let (changed, _) = reconcile_children(&mut status, &[&a, &b, &c], &mut events);
        assert!(!changed && events.is_empty());
    }

    #[test]
    fn history_keeps_the_newest_finished_jobs_of_each_kind() {
        let cj = cronjob(
            json!({"successfulJobsHistoryLimit": 2, "failedJobsHistoryLimit": 1}),
            json!({}),
        );
        let done = |n: &str, start: Option<&str>| job(n, start, "Complete", start);
        let s1 = done("s1", Some("2024-01-01T00:01:00Z"));
        let s2 = done("s2", Some("2024-01-01T00:02:00Z"));
        let s3 = done("s3", Some("2024-01-01T00:03:00Z"));
        let unstarted = done("s0", None);
        let f1 = job("f1", Some("2024-01-01T00:01:30Z"), "Failed", None);
        let f2 = job("f2", Some("2024-01-01T00:02:30Z"), "Failed", None);
        let running = job("r", Some("2024-01-01T00:00:00Z"), "", None);
        let all = [&s3, &unstarted, &f2, &running, &s1, &f1, &s2];
        let doomed: Vec<_> = history_to_delete(&cj, &all)
            .iter()
            .filter_map(|j| j.metadata.name.clone())
            .collect();
        // Unstarted Jobs sort last, so they count as the newest.
        assert_eq!(doomed, ["s1", "s2", "f1"]);
        let none = cronjob(
            json!({"successfulJobsHistoryLimit": 0, "failedJobsHistoryLimit": 5}),
            json!({}),
        );
        let doomed: Vec<_> = history_to_delete(&none, &all)
            .iter()
            .filter_map(|j| j.metadata.name.clone())
            .collect();
        assert_eq!(doomed, ["s1", "s2", "s3", "s0"]);
    }

    #[test]
    fn jobs_wake_their_controlling_cronjob_and_the_queue_keeps_the_earliest_time() {
        let j = job("a", None, "", None);
        assert_eq!(owner_key(&j), Some(("default".into(), "hello".into())));
        let mut orphan = j.clone();
        orphan.metadata.owner_references = None;
        assert_eq!(owner_key(&orphan), None);
        let mut queue = Queue::default();
        let key: Key = ("default".into(), "hello".into());
        queue.add_after(key.clone(), Duration::from_secs(60));
        queue.add_after(key.clone(), Duration::from_secs(5));
        queue.add_after(key.clone(), Duration::from_secs(30));
        let deadline = queue.next_deadline().expect("due");
        assert!(deadline <= Instant::now() + Duration::from_secs(5));
        assert!(queue.pop_due(Instant::now()).is_empty());
        assert_eq!(queue.pop_due(deadline), [key]);
        assert_eq!(queue.next_deadline(), None);
    }
}
