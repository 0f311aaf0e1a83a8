//! The pod worker: one task per Pod that drives the engine towards the Pod's spec.
//!
//! Level-triggered, as the kubelet's `syncPod`: every wake-up (a Pod update from the watch,
//! a container event from the engine, a probe result, a back-off expiring) reads what the
//! engine has for the Pod and does the next step — sandbox, volumes, init containers in order,
//! then the app containers — and writes the resulting status through `pods/status`. Deleted
//! Pods are stopped within their grace period, cleaned up, and finally deleted from the API.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::Api;
use serde_json::json;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::env;
use super::labels;
use super::mailbox::Inbox;
use super::probes::{self, ProbeContext, ProbeTable};
use super::runtime::{ContainerSpec, ContainerState, Mount, RunState, Runtime, SandboxSpec};
use super::sources::Sources;
use super::status::{self, Observed, ProbeResults, Waiting};
use super::volumes;
use crate::client::{EventRecorder, ObjectRef};
use crate::meta::quantity::Quantity;

/// Crash-loop back-off: 10 s doubling to 5 min (`backOffPeriod`, `MaxContainerBackOff`).
const BACKOFF_START: Duration = Duration::from_secs(10);
const BACKOFF_MAX: Duration = Duration::from_secs(300);
/// A periodic resync in case an engine event was missed: upstream's sync frequency, a minute,
/// stretched by up to half as much at random so Pods started together do not resync together.
const RESYNC: Duration = Duration::from_secs(60);
const RESYNC_SPREAD: Duration = Duration::from_secs(30);
/// The longest a Pod goes without a sync.
pub const RESYNC_LONGEST: Duration = RESYNC.saturating_add(RESYNC_SPREAD);
/// How soon a volume that could not be set up is tried again: at first soon (what it waits
/// for, a ConfigMap, a token, often comes moments later), then every 2 s.
const MOUNT_RETRY_FIRST: Duration = Duration::from_millis(200);
const MOUNT_RETRY_MAX: Duration = Duration::from_secs(2);
/// The longest a token is kept before it is replaced, whatever its expiry (upstream's 24 h).
const TOKEN_MAX_AGE: Duration = Duration::from_secs(24 * 60 * 60);

/// What every pod worker of a kubelet shares.
pub struct Shared {
    pub client: kube::Client,
    pub runtime: Arc<dyn Runtime>,
    pub recorder: Arc<EventRecorder>,
    pub node: String,
    pub cluster: String,
    pub network: String,
    pub host_ip: String,
    /// The Service variables every container gets (the `kubernetes` Service's).
    pub services: Vec<(String, String)>,
    pub root_dir: PathBuf,
    pub tracker: TaskTracker,
    /// The ConfigMaps and Secrets the Pods use, as their watches last saw them.
    pub sources: Sources,
}

/// Where a worker is in its Pod's life (upstream's `SyncPod`, `TerminatingPod`, `TerminatedPod`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lifecycle {
    /// Driving the engine towards the spec.
    Syncing,
    /// Stopping every container; they must be gone by `deadline` (the grace period's end).
    /// `delete_from_api`: the Pod still exists in the API and is deleted there once stopped;
    /// false when it is already gone (force-deleted).
    Terminating {
        deadline: Instant,
        delete_from_api: bool,
    },
    /// Everything is stopped and removed; the worker ends.
    Terminated,
}
#[derive(Debug, Clone, Copy)]
struct Backoff {
    next: Instant,
    delay: Duration,
}

impl Backoff {
    /// After a failure at `now`: the next try waits the doubled delay.
    fn after(previous: Option<Backoff>, now: Instant) -> Backoff {
        let delay = previous
            .map(|b| (b.delay * 2).min(BACKOFF_MAX))
            .unwrap_or(BACKOFF_START);
        Backoff {
            next: now + delay,
            delay,
        }
    }
}

struct Worker {
    shared: Arc<Shared>,
    pod: Pod,
    /// The mailbox version `pod` came from.
    seen_version: u64,
    lifecycle: Lifecycle,
    waiting: HashMap<String, Waiting>,
    restart_backoff: HashMap<String, Backoff>,
    pull_backoff: HashMap<String, Backoff>,
    sandbox_backoff: Option<Backoff>,
    /// The next attempt of a container the engine has no attempt of, so counts go on: of init
    /// containers purged with a dead sandbox, and of containers the engine lost while the
    /// kubelet was away (see [`attempt_bases`]).
    attempt_base: HashMap<String, i32>,
    probes: ProbeTable,
    probe_stops: HashMap<String, CancellationToken>,
    /// The container ID whose process namespace an ephemeral container joins, by its name.
    pid_targets: HashMap<String, String>,
    poke_tx: mpsc::Sender<()>,
    poke_rx: Option<mpsc::Receiver<()>>,
    last_status: Option<serde_json::Value>,
    wake_at: Option<Instant>,
    /// What the API-data volumes were last written from.
    volumes_written: Option<Written>,
    /// The ConfigMaps and Secrets this worker registered with [`Sources`], by name.
    used: Used,
    /// The last wait before setting the volumes up again, while they fail.
    mount_retry: Option<Duration>,
    /// The service account tokens issued for the Pod's projected volumes.
    tokens: HashMap<volumes::TokenSource, IssuedToken>,
}

/// What a Pod's API-data volumes were written from: while it stays the same and no token is
/// due, their files are up to date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Written {
    /// The mailbox version of the Pod (the downward API reads its labels and annotations).
    pod_version: u64,
    /// The sum of the change counts of the objects read (see [`super::sources::Cache::changes`]).
    source_changes: u64,
}

/// The names of the ConfigMaps and Secrets a worker registered as using.
#[derive(Debug, Default)]
struct Used {
    config_maps: std::collections::BTreeSet<String>,
    secrets: std::collections::BTreeSet<String>,
}

/// A token the kubelet holds for a Pod, and when it is to be replaced.
struct IssuedToken {
    token: String,
    refresh_at: Instant,
}

/// Runs the worker of one Pod until the Pod is gone and cleaned up.
pub async fn run(shared: Arc<Shared>, mut rx: watch::Receiver<Inbox>, shutdown: CancellationToken) {
    let inbox = rx.borrow_and_update().clone();
    let mut worker = Worker::new(shared, &inbox);
    let mut poke_rx = worker.take_pokes();
    worker.read(&inbox);
    loop {
        worker.wake_at = None;
        match worker.sync().await {
            Ok(()) => {}
            Err(e) => {
                tracing::warn!(pod = %worker.describe(), error = %e, "sync failed; retrying");
                worker.wake_at = Some(Instant::now() + Duration::from_secs(1));
            }
        }
        if worker.lifecycle == Lifecycle::Terminated {
            break;
        }
        let resync = Instant::now() + RESYNC + RESYNC_SPREAD.mul_f64(rand::random_range(0.0..1.0));
        let wake = worker.wake_at.map_or(resync, |at| at.min(resync));
        tokio::select! {
            // A kubelet shutting down leaves its Pods running, whatever else is ready.
            biased;
            () = shutdown.cancelled() => break,
            changed = rx.changed() => {
                if changed.is_err() {
                    // The kubelet dropped the mailbox: nobody will tell of this Pod again.
                    worker.pod_gone();
                }
            }
            _ = poke_rx.recv() => {}
            () = tokio::time::sleep_until(wake) => {}
        }
        let inbox = rx.borrow_and_update().clone();
        worker.read(&inbox);
    }
    for stop in worker.probe_stops.values() {
        stop.cancel();
    }
    worker.release_sources();
}

#[derive(Debug, thiserror::Error)]
enum SyncError {
    #[error(transparent)]
    Runtime(#[from] super::runtime::RuntimeError),
    #[error(transparent)]
    Api(#[from] kube::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Upstream's message for a volume that could not be set up.
fn set_up_failed(volume: &str, why: impl std::fmt::Display) -> String {
    format!("MountVolume.SetUp failed for volume {volume:?} : {why}")
}

fn kind_of(c: &ContainerState) -> &str {
    c.labels.get(labels::KIND).map(String::as_str).unwrap_or("")
}

/// A container the engine created but could not start (bad command, missing binary…).
pub(super) fn start_failed(c: &ContainerState) -> bool {
    c.state == RunState::Created && !c.error.is_empty()
}

fn named<'a>(all: &'a [ContainerState], name: &str, kind: &str) -> Vec<&'a ContainerState> {
    let mut found: Vec<&ContainerState> = all
        .iter()
        .filter(|c| kind_of(c) == kind)
        .filter(|c| c.labels.get(labels::CONTAINER_NAME).map(String::as_str) == Some(name))
        .collect();
    found.sort_by_key(|c| std::cmp::Reverse(labels::attempt(&c.labels)));
    found
}

/// Where the attempts of each container go on from when the engine has none of them, read
/// from the status the Pod arrives with: after its recorded restart count, or at it when no
/// container of that count was ever created (the status names no container id). Upstream's
/// kubelet reads the same from the log files of the attempts (`calcRestartCountByLogDir`).
fn attempt_bases(pod: &Pod) -> HashMap<String, i32> {
    let Some(status) = pod.status.as_ref() else {
        return HashMap::new();
    };
    let init = status.init_container_statuses.iter().flatten();
    let app = status.container_statuses.iter().flatten();
    init.chain(app)
        .map(|s| {
            let created = s.container_id.as_deref().is_some_and(|id| !id.is_empty());
            (s.name.clone(), s.restart_count + i32::from(created))
        })
        .filter(|(_, base)| *base > 0)
        .collect()
}

/// Whether a status claims a container runs.
fn claims_running(pod: &Pod) -> bool {
    let Some(status) = pod.status.as_ref() else {
        return false;
    };
    let init = status.init_container_statuses.iter().flatten();
    let app = status.container_statuses.iter().flatten();
    init.chain(app)
        .any(|s| s.state.as_ref().is_some_and(|st| st.running.is_some()))
}

fn terminal(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    matches!(phase, Some("Succeeded" | "Failed"))
}

impl Worker {
    fn describe(&self) -> String {
        format!(
            "{}/{}",
            self.pod.metadata.namespace.as_deref().unwrap_or(""),
            self.pod.metadata.name.as_deref().unwrap_or("")
        )
    }

    /// The Pod as the kubelet names it in messages: `name_namespace(uid)`.
    fn full_name(&self) -> String {
        format!(
            "{}_{}({})",
            self.pod.metadata.name.as_deref().unwrap_or(""),
            self.pod.metadata.namespace.as_deref().unwrap_or(""),
            self.uid()
        )
    }

    fn uid(&self) -> String {
        self.pod.metadata.uid.clone().unwrap_or_default()
    }

    fn object(&self) -> ObjectRef {
        ObjectRef::pod(
            self.pod.metadata.namespace.as_deref().unwrap_or(""),
            self.pod.metadata.name.as_deref().unwrap_or(""),
            &self.uid(),
        )
    }

    fn container_object(&self, name: &str, init: bool) -> ObjectRef {
        let field = if init { "initContainers" } else { "containers" };
        self.object()
            .with_field_path(&format!("spec.{field}{{{name}}}"))
    }

    fn event(&self, object: &ObjectRef, kind: &str, reason: &str, message: &str) {
        self.shared.recorder.record(object, kind, reason, message);
    }

    fn new(shared: Arc<Shared>, inbox: &Inbox) -> Worker {
        let (poke_tx, poke_rx) = mpsc::channel(16);
        Worker {
            shared,
            pod: (*inbox.pod).clone(),
            seen_version: inbox.version,
            lifecycle: Lifecycle::Syncing,
            waiting: HashMap::new(),
            restart_backoff: HashMap::new(),
            pull_backoff: HashMap::new(),
            sandbox_backoff: None,
            attempt_base: attempt_bases(&inbox.pod),
            probes: ProbeTable::default(),
            probe_stops: HashMap::new(),
            pid_targets: HashMap::new(),
            poke_tx,
            poke_rx: Some(poke_rx),
            last_status: None,
            wake_at: None,
            volumes_written: None,
            used: Used::default(),
            mount_retry: None,
            tokens: HashMap::new(),
        }
    }

    /// The receiving end of the probes' wake-ups (taken once, by the loop).
    fn take_pokes(&mut self) -> mpsc::Receiver<()> {
        self.poke_rx.take().unwrap_or_else(|| mpsc::channel(1).1)
    }

    /// Takes in what the mailbox holds: the newest Pod (when newer than the last read) and
    /// whether it is gone; then moves the lifecycle on.
    fn read(&mut self, inbox: &Inbox) {
        if inbox.version != self.seen_version {
            self.pod = (*inbox.pod).clone();
            self.seen_version = inbox.version;
        }
        if inbox.gone {
            self.pod_gone();
        }
        self.observe_deletion();
    }

    /// The grace period the Pod's deletion allows (spec's when the deletion names none).
    fn grace(&self) -> Duration {
        let seconds = self
            .pod
            .metadata
            .deletion_grace_period_seconds
            .or_else(|| {
                self.pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.termination_grace_period_seconds)
            })
            .unwrap_or(30)
            .max(0);
        Duration::from_secs(seconds as u64)
    }

    /// Starts terminating a Pod marked for deletion; a shorter grace period given later (a
    /// second `kubectl delete --grace-period`) brings the deadline forward.
    fn observe_deletion(&mut self) {
        if self.pod.metadata.deletion_timestamp.is_none() {
            return;
        }
        let deadline = Instant::now() + self.grace();
        self.lifecycle = match self.lifecycle {
            Lifecycle::Syncing => Lifecycle::Terminating {
                deadline,
                delete_from_api: true,
            },
            Lifecycle::Terminating {
                deadline: current,
                delete_from_api,
            } => Lifecycle::Terminating {
                deadline: current.min(deadline),
                delete_from_api,
            },
            Lifecycle::Terminated => Lifecycle::Terminated,
        };
    }

    /// The Pod no longer exists in the API: stop everything, delete nothing there.
    fn pod_gone(&mut self) {
        let deadline = Instant::now() + self.grace();
        self.lifecycle = match self.lifecycle {
            Lifecycle::Syncing => Lifecycle::Terminating {
                deadline,
                delete_from_api: false,
            },
            Lifecycle::Terminating { deadline, .. } => Lifecycle::Terminating {
                deadline,
                delete_from_api: false,
            },
            Lifecycle::Terminated => Lifecycle::Terminated,
        };
    }

    fn wake(&mut self, at: Instant) {
        self.wake_at = Some(self.wake_at.map_or(at, |w| w.min(at)));
    }

    fn pod_dir(&self) -> PathBuf {
        self.shared.root_dir.join("pods").join(self.uid())
    }

    /// One step of the lifecycle: towards the spec, or towards everything stopped.
    async fn sync(&mut self) -> Result<(), SyncError> {
        // The Pod may have been read back from a status write, too.
        self.observe_deletion();
        match self.lifecycle {
            Lifecycle::Syncing => self.sync_pod().await,
            Lifecycle::Terminating {
                deadline,
                delete_from_api,
            } => {
                let filter = [(labels::POD_UID.to_string(), self.uid())];
                let containers = self.shared.runtime.list(&filter).await?;
                self.terminate(&containers, deadline).await?;
                if delete_from_api {
                    self.finish_delete().await?;
                }
                self.lifecycle = Lifecycle::Terminated;
                Ok(())
            }
            Lifecycle::Terminated => Ok(()),
        }
    }

    /// One step towards the spec.
    async fn sync_pod(&mut self) -> Result<(), SyncError> {
        let runtime = self.shared.runtime.clone();
        let filter = [(labels::POD_UID.to_string(), self.uid())];
        let containers = runtime.list(&filter).await?;
        if terminal(&self.pod) {
            return Ok(());
        }
        // The status claims containers run that the engine does not run (a restarted kubelet
        // whose engine lost the Pod, as after `rkube down` and `up`): tell what the engine
        // confirms before the slow sandbox creation, as upstream's `SyncPod` publishes the
        // status it computed from the runtime before it creates a sandbox. Nothing that is not
        // running is claimed ready, the pod IP goes with the sandbox, and a Pod that must not
        // restart its containers ends here (`Failed`, as upstream's `getPhase` has it).
        let running = containers.iter().any(|c| c.state == RunState::Running);
        if !running && claims_running(&self.pod) {
            self.report(&containers).await?;
            if terminal(&self.pod) {
                return Ok(());
            }
        }
        let Some((sandbox_id, pod_ip)) = self.ensure_sandbox(&containers).await? else {
            return Ok(());
        };
        let mounted = self.mount_volumes(&pod_ip).await;
        if mounted.is_ok() {
            self.mount_retry = None;
        }
        if let Err(why) = mounted {
            // Nothing starts until every volume is there; the Pod shows ContainerCreating.
            self.event(&self.object(), "Warning", "FailedMount", &why);
            let reported = self
                .pod
                .status
                .as_ref()
                .is_some_and(|s| s.container_statuses.is_some());
            if !reported {
                self.report(&containers).await?;
            }
            let delay = self
                .mount_retry
                .map_or(MOUNT_RETRY_FIRST, |d| (d * 2).min(MOUNT_RETRY_MAX));
            self.mount_retry = Some(delay);
            self.wake(Instant::now() + delay);
            return Ok(());
        }
        let containers = runtime.list(&filter).await?;
        // Tell the API the Pod is being set up (`ContainerCreating`) before pulling and
        // starting, which can take a while; upstream's first status write looks the same.
        let reported = self
            .pod
            .status
            .as_ref()
            .is_some_and(|s| s.container_statuses.is_some());
        if !reported {
            self.report(&containers).await?;
        }
        let spec = self.pod.spec.clone().unwrap_or_default();
        let policy = spec
            .restart_policy
            .clone()
            .unwrap_or_else(|| "Always".into());
        let mut initialized = true;
        for init in spec.init_containers.clone().unwrap_or_default() {
            let tries = named(&containers, &init.name, "init");
            match tries.first() {
                Some(c) if c.state == RunState::Exited && c.exit_code == 0 => continue,
                Some(c) if c.state == RunState::Running => {}
                Some(c) if c.state == RunState::Exited || start_failed(c) => {
                    if policy != "Never" {
                        let attempt = labels::attempt(&c.labels) + 1;
                        self.restart_with_backoff(&init, attempt, "init", &sandbox_id, &pod_ip)
                            .await?;
                    }
                }
                Some(c) => {
                    let id = c.id.clone();
                    runtime.start(&id).await?;
                }
                None => {
                    let attempt = self.attempt_base.get(&init.name).copied();
                    self.start_container(&init, attempt.unwrap_or(0), "init", &sandbox_id, &pod_ip)
                        .await?
                }
            }
            initialized = false;
            break;
        }
        if initialized {
            for container in &spec.containers {
                self.sync_app_container(container, &containers, &policy, &sandbox_id, &pod_ip)
                    .await?;
            }
            self.start_ephemeral_containers(&spec, &sandbox_id, &pod_ip)
                .await?;
        }
        let containers = runtime.list(&filter).await?;
        self.collect_garbage(&containers).await;
        self.sync_probes(&containers, &spec.containers, &pod_ip);
        self.report(&containers).await?;
        Ok(())
    }

    /// Starts each ephemeral container once (`kubectl debug`): never restarted, in the
    /// process namespace of its `targetContainerName` when it names a running container.
    async fn start_ephemeral_containers(
        &mut self,
        spec: &k8s_openapi::api::core::v1::PodSpec,
        sandbox_id: &str,
        pod_ip: &str,
    ) -> Result<(), SyncError> {
        let wanted = spec.ephemeral_containers.clone().unwrap_or_default();
        if wanted.is_empty() {
            return Ok(());
        }
        let filter = [(labels::POD_UID.to_string(), self.uid())];
        let containers = self.shared.runtime.list(&filter).await?;
        for ephemeral in wanted {
            if !named(&containers, &ephemeral.name, "ephemeral").is_empty() {
                continue;
            }
            if let Some(target) = ephemeral.target_container_name.as_deref() {
                let running = named(&containers, target, "app")
                    .into_iter()
                    .find(|c| c.state == RunState::Running);
                if let Some(c) = running {
                    self.pid_targets
                        .insert(ephemeral.name.clone(), c.id.clone());
                }
            }
            let Some(container) = status::as_container(&ephemeral) else {
                continue;
            };
            self.start_container(&container, 0, "ephemeral", sandbox_id, pod_ip)
                .await?;
        }
        Ok(())
    }

    async fn sync_app_container(
        &mut self,
        container: &Container,
        all: &[ContainerState],
        policy: &str,
        sandbox_id: &str,
        pod_ip: &str,
    ) -> Result<(), SyncError> {
        let runtime = self.shared.runtime.clone();
        let tries = named(all, &container.name, "app");
        let Some(latest) = tries.first() else {
            let attempt = self.attempt_base.get(&container.name).copied();
            return self
                .start_container(container, attempt.unwrap_or(0), "app", sandbox_id, pod_ip)
                .await;
        };
        let attempt = labels::attempt(&latest.labels);
        match latest.state {
            RunState::Running => {
                let kill = {
                    let table = self.probes.lock().unwrap_or_else(|p| p.into_inner());
                    table
                        .get(&container.name)
                        .filter(|p| p.container_id == latest.id)
                        .and_then(|p| p.kill.clone())
                };
                // A changed spec (`kubectl set image`) replaces the container, as upstream's
                // `computePodActions` does when the hash label differs.
                let kill = kill.or_else(|| {
                    labels::spec_changed(&latest.labels, container).then(|| {
                        format!(
                            "Container {} definition changed, will be restarted",
                            container.name
                        )
                    })
                });
                if let Some(why) = kill {
                    let object = self.container_object(&container.name, false);
                    self.event(&object, "Normal", "Killing", &why);
                    let grace = self
                        .pod
                        .spec
                        .as_ref()
                        .and_then(|s| s.termination_grace_period_seconds)
                        .unwrap_or(30);
                    self.stop_probes(&latest.id);
                    runtime
                        .stop(&latest.id, Duration::from_secs(grace.max(0) as u64))
                        .await?;
                    // A liveness restart happens at once; the back-off applies to what follows.
                    return self
                        .start_container(container, attempt + 1, "app", sandbox_id, pod_ip)
                        .await;
                }
                Ok(())
            }
            RunState::Created if !start_failed(latest) => {
                runtime.start(&latest.id).await?;
                Ok(())
            }
            // A container the engine could not start counts as exited (exit code 128), so it
            // is retried under the crash-loop back-off and its restart count goes on.
            RunState::Created | RunState::Exited => {
                let restart = match policy {
                    "Always" => true,
                    "OnFailure" => latest.exit_code != 0,
                    _ => false,
                };
                if restart {
                    self.restart_with_backoff(container, attempt + 1, "app", sandbox_id, pod_ip)
                        .await?;
                }
                Ok(())
            }
        }
    }

    /// Restarts a container unless it is backing off, in which case it waits in
    /// `CrashLoopBackOff` (upstream `doBackOff`).
    async fn restart_with_backoff(
        &mut self,
        container: &Container,
        attempt: i32,
        kind: &str,
        sandbox_id: &str,
        pod_ip: &str,
    ) -> Result<(), SyncError> {
        let now = Instant::now();
        let previous = self.restart_backoff.get(&container.name).copied();
        if let Some(b) = previous.filter(|b| b.next > now) {
            let message = format!(
                "back-off {}s restarting failed container={} pod={}",
                b.delay.as_secs(),
                container.name,
                self.full_name()
            );
            let first = self.waiting.get(&container.name).map(|w| w.reason.as_str())
                != Some("CrashLoopBackOff");
            self.waiting.insert(
                container.name.clone(),
                Waiting {
                    reason: "CrashLoopBackOff".into(),
                    message,
                },
            );
            if first {
                let object = self.container_object(&container.name, kind == "init");
                let text = format!(
                    "Back-off restarting failed container {} in pod {}",
                    container.name,
                    self.full_name()
                );
                self.event(&object, "Warning", "BackOff", &text);
            }
            self.wake(b.next);
            return Ok(());
        }
        self.restart_backoff
            .insert(container.name.clone(), Backoff::after(previous, now));
        self.start_container(container, attempt, kind, sandbox_id, pod_ip)
            .await
    }

    /// Pulls if the policy says so, then creates and starts one attempt of a container.
    async fn start_container(
        &mut self,
        container: &Container,
        attempt: i32,
        kind: &str,
        sandbox_id: &str,
        pod_ip: &str,
    ) -> Result<(), SyncError> {
        let runtime = self.shared.runtime.clone();
        let object = self.container_object(&container.name, kind == "init");
        // A container the engine refused waits out a back-off before the next attempt.
        let refused = matches!(
            self.waiting.get(&container.name).map(|w| w.reason.as_str()),
            Some("CreateContainerError" | "CreateContainerConfigError")
        );
        if let Some(b) = self
            .restart_backoff
            .get(&container.name)
            .copied()
            .filter(|b| refused && b.next > Instant::now())
        {
            self.wake(b.next);
            return Ok(());
        }
        let image = container.image.clone().unwrap_or_default();
        // The kubelet refuses a reference that does not parse, as the API server's defaulting
        // reads it (one parser for both).
        if crate::meta::image::parse_image_reference(&image).is_none() {
            let message = format!(
                "Failed to apply default image tag {image:?}: couldn't parse image name {image:?}: invalid reference format"
            );
            self.event(&object, "Warning", "InspectFailed", &message);
            self.set_waiting(&container.name, "InvalidImageName", &message);
            self.event(&object, "Warning", "Failed", "Error: InvalidImageName");
            return Ok(());
        }
        let image = super::runtime::with_default_tag(&image);
        let policy = container
            .image_pull_policy
            .clone()
            .unwrap_or_else(|| "IfNotPresent".into());
        let present = runtime.image(&image).await?;
        let must_pull = match policy.as_str() {
            "Always" => true,
            "Never" => {
                if present.is_none() {
                    let message = format!(
                        "Container image {image:?} is not present with pull policy of Never"
                    );
                    let first = self.waiting.get(&container.name).map(|w| w.reason.as_str())
                        != Some("ErrImageNeverPull");
                    self.set_waiting(&container.name, "ErrImageNeverPull", &message);
                    if first {
                        self.event(&object, "Warning", "ErrImageNeverPull", &message);
                        self.event(&object, "Warning", "Failed", "Error: ErrImageNeverPull");
                    }
                    return Ok(());
                }
                false
            }
            _ => present.is_none(),
        };
        if must_pull {
            let now = Instant::now();
            if let Some(b) = self
                .pull_backoff
                .get(&image)
                .copied()
                .filter(|b| b.next > now)
            {
                let message = format!("Back-off pulling image {image:?}");
                let first = self.waiting.get(&container.name).map(|w| w.reason.as_str())
                    != Some("ImagePullBackOff");
                self.set_waiting(&container.name, "ImagePullBackOff", &message);
                if first {
                    self.event(&object, "Normal", "BackOff", &message);
                    self.event(&object, "Warning", "Failed", "Error: ImagePullBackOff");
                }
                self.wake(b.next);
                return Ok(());
            }
            self.event(
                &object,
                "Normal",
                "Pulling",
                &format!("Pulling image {image:?}"),
            );
            let started = std::time::Instant::now();
            match self.pull(&image).await {
                Ok(_) => {
                    self.pull_backoff.remove(&image);
                    let took = started.elapsed().as_secs_f64();
                    let message = format!("Successfully pulled image {image:?} in {took:.3}s ({took:.3}s including waiting)");
                    self.event(&object, "Normal", "Pulled", &message);
                }
                Err(e) => {
                    let previous = self.pull_backoff.get(&image).copied();
                    let backoff = Backoff::after(previous, Instant::now());
                    self.pull_backoff.insert(image.clone(), backoff);
                    let message = format!("Failed to pull image {image:?}: {e}");
                    self.event(&object, "Warning", "Failed", &message);
                    self.event(&object, "Warning", "Failed", "Error: ErrImagePull");
                    self.set_waiting(&container.name, "ErrImagePull", &message);
                    self.wake(backoff.next);
                    return Ok(());
                }
            }
        } else {
            let message = format!("Container image {image:?} already present on machine");
            self.event(&object, "Normal", "Pulled", &message);
        }
        let env = match self.environment(container, pod_ip).await {
            Ok(env) => env,
            Err(message) => {
                self.event(&object, "Warning", "Failed", &format!("Error: {message}"));
                self.set_waiting(&container.name, "CreateContainerConfigError", &message);
                self.refused(&container.name);
                return Ok(());
            }
        };
        let spec = self.container_spec(container, env, &image, attempt, kind, sandbox_id)?;
        // A name left over from an attempt that failed half-way is cleared first.
        let _ = runtime.remove(&spec.name).await;
        let id = match runtime.create_container(&spec).await {
            Ok(id) => id,
            Err(e) => {
                let message = e.to_string();
                self.event(&object, "Warning", "Failed", &format!("Error: {message}"));
                self.set_waiting(&container.name, "CreateContainerError", &message);
                self.refused(&container.name);
                return Ok(());
            }
        };
        self.event(
            &object,
            "Normal",
            "Created",
            &format!("Created container {}", container.name),
        );
        if let Err(e) = runtime.start(&id).await {
            let message = e.to_string();
            self.event(&object, "Warning", "Failed", &format!("Error: {message}"));
            self.set_waiting(&container.name, "RunContainerError", &message);
            // The next sync sees the failed container and retries it under the back-off.
            self.wake(Instant::now());
            return Ok(());
        }
        self.waiting.remove(&container.name);
        self.event(
            &object,
            "Normal",
            "Started",
            &format!("Started container {}", container.name),
        );
        Ok(())
    }

    /// Pulls `image` with the credentials the Pod's image pull secrets hold for its registry,
    /// each in turn until one works, or anonymously when none applies. Secrets that cannot be
    /// read are named in upstream's warning, and the pull goes on without them.
    async fn pull(&mut self, image: &str) -> Result<(), super::runtime::RuntimeError> {
        let names: Vec<String> = self
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.image_pull_secrets.clone())
            .unwrap_or_default()
            .into_iter()
            .map(|r| r.name)
            .filter(|n| !n.is_empty())
            .collect();
        self.register_sources(&volumes::Needs {
            secrets: names.clone(),
            ..volumes::Needs::default()
        });
        let namespace = self.pod.metadata.namespace.as_deref().unwrap_or("default");
        let (mut secrets, mut missing) = (Vec::new(), Vec::new());
        for name in names {
            match self.shared.sources.secrets.get(namespace, &name).await {
                Ok(Some(secret)) => secrets.push(secret),
                _ => missing.push(name),
            }
        }
        if !missing.is_empty() {
            let message = format!("Unable to retrieve some image pull secrets ({}); attempting to pull the image may not succeed.", missing.join(", "));
            self.event(
                &self.object(),
                "Warning",
                "FailedToRetrieveImagePullSecret",
                &message,
            );
        }
        let runtime = &self.shared.runtime;
        let credentials = super::pull_secrets::credentials(image, &secrets);
        if credentials.is_empty() {
            return runtime.pull(image, None).await.map(|_| ());
        }
        let mut last = None;
        for auth in &credentials {
            match runtime.pull(image, Some(auth)).await {
                Ok(_) => return Ok(()),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| super::runtime::RuntimeError::Pull(image.to_string())))
    }

    /// Starts or lengthens the back-off of a container the engine refused.
    fn refused(&mut self, name: &str) {
        let previous = self.restart_backoff.get(name).copied();
        let backoff = Backoff::after(previous, Instant::now());
        self.restart_backoff.insert(name.to_string(), backoff);
        self.wake(backoff.next);
    }

    fn set_waiting(&mut self, name: &str, reason: &str, message: &str) {
        self.waiting.insert(
            name.to_string(),
            Waiting {
                reason: reason.into(),
                message: message.into(),
            },
        );
    }

    /// The container's environment, reading the ConfigMaps and Secrets it names; upstream's
    /// message when one is missing.
    async fn environment(
        &mut self,
        container: &Container,
        pod_ip: &str,
    ) -> Result<Vec<(String, String)>, String> {
        let (config_maps, secrets) = env::references(container);
        let needs = volumes::Needs {
            config_maps,
            secrets,
            tokens: Vec::new(),
        };
        self.register_sources(&needs);
        let mut read = volumes::Inputs::default();
        self.read_sources(&needs, &mut read).await?;
        let sources = env::Sources {
            config_maps: read
                .config_maps
                .into_iter()
                .map(|(name, cm)| (name, cm.map(|c| c.data.unwrap_or_default())))
                .collect(),
            secrets: read
                .secrets
                .into_iter()
                .map(|(name, s)| {
                    let data = s.map(|s| {
                        s.data
                            .unwrap_or_default()
                            .into_iter()
                            .map(|(k, v)| (k, v.0))
                            .collect()
                    });
                    (name, data)
                })
                .collect(),
        };
        env::resolve(container, &self.env_context(pod_ip), &sources)
    }

    /// What the downward API reads of this Pod and node, for environment and volumes.
    fn env_context<'a>(&'a self, pod_ip: &'a str) -> env::Context<'a> {
        env::Context {
            pod: &self.pod,
            node: &self.shared.node,
            host_ip: &self.shared.host_ip,
            pod_ip,
            services: &self.shared.services,
        }
    }

    /// Where a volume's files are on the host, and whether containers see it read-only
    /// (upstream mounts every API-data volume read-only).
    fn volume_path(&self, name: &str) -> Option<(String, bool)> {
        let spec = self.pod.spec.as_ref()?;
        let volume = spec.volumes.as_ref()?.iter().find(|v| v.name == name)?;
        if let Some(dir) = &volume.empty_dir {
            if dir.medium.as_deref() == Some("Memory") {
                // /dev/shm is memory-backed and, unlike a per-container tmpfs, shared by every
                // container that mounts the volume.
                return Some((self.shm_dir().join(name).display().to_string(), false));
            }
            let path = self
                .pod_dir()
                .join("volumes/kubernetes.io~empty-dir")
                .join(name);
            return Some((path.display().to_string(), false));
        }
        if let Some(host) = &volume.host_path {
            return Some((host.path.clone(), false));
        }
        let kind = volumes::Kind::of(volume)?;
        let dir = volumes::host_dir(kind, &self.pod_dir(), &self.shm_dir(), name);
        Some((dir.display().to_string(), true))
    }

    /// The Pod's memory-backed directory (on `/dev/shm`).
    fn shm_dir(&self) -> PathBuf {
        super::memory_dir(&self.uid())
    }

    /// Sets up every volume: directories for emptyDir and hostPath, and the files of
    /// ConfigMap, Secret, downward-API and projected volumes, which are written again when
    /// what they are made from changes: the Pod, an object it reads, a token due for renewal.
    /// The error is upstream's `MountVolume.SetUp failed` message.
    async fn mount_volumes(&mut self, pod_ip: &str) -> Result<(), String> {
        let spec = self.pod.spec.clone().unwrap_or_default();
        let all = spec.volumes.unwrap_or_default();
        for volume in &all {
            let Some((path, _)) = self.volume_path(&volume.name) else {
                continue;
            };
            let failed = |e: std::io::Error| set_up_failed(&volume.name, e);
            if volume.empty_dir.is_some() {
                std::fs::create_dir_all(&path).map_err(failed)?;
                use std::os::unix::fs::PermissionsExt as _;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777))
                    .map_err(failed)?;
            }
            if let Some(host) = &volume.host_path {
                match host.type_.as_deref() {
                    Some("DirectoryOrCreate") => std::fs::create_dir_all(&path).map_err(failed)?,
                    Some("FileOrCreate") => {
                        if let Some(parent) = std::path::Path::new(&path).parent() {
                            std::fs::create_dir_all(parent).map_err(failed)?;
                        }
                        std::fs::OpenOptions::new()
                            .create(true)
                            .append(true)
                            .open(&path)
                            .map_err(failed)?;
                    }
                    _ => {}
                }
            }
        }
        let api_data: Vec<_> = all
            .iter()
            .filter(|v| volumes::Kind::of(v).is_some())
            .collect();
        let now = Instant::now();
        let token_due = self.tokens.values().any(|t| now >= t.refresh_at);
        if api_data.is_empty() || (self.volumes_written == Some(self.written()) && !token_due) {
            return Ok(());
        }
        let needs: Vec<volumes::Needs> = api_data.iter().map(|v| volumes::needs(v)).collect();
        for needed in &needs {
            self.register_sources(needed);
        }
        // Taken before anything is read, so that a change landing meanwhile is written next.
        let written = self.written();
        let mut inputs = volumes::Inputs::default();
        for (volume, needed) in api_data.iter().zip(needs) {
            let failed = |e: String| set_up_failed(&volume.name, e);
            self.read_sources(&needed, &mut inputs)
                .await
                .map_err(failed)?;
            for wanted in needed.tokens {
                let token = self.token(&wanted).await.map_err(failed)?;
                inputs.tokens.insert(wanted, token);
            }
        }
        let ctx = self.env_context(pod_ip);
        for volume in &api_data {
            let failed = |e: String| set_up_failed(&volume.name, e);
            let Some(payload) = volumes::payload(volume, &ctx, &inputs).map_err(failed)? else {
                continue;
            };
            let Some((path, _)) = self.volume_path(&volume.name) else {
                continue;
            };
            volumes::write(std::path::Path::new(&path), &payload)
                .map_err(|e| failed(e.to_string()))?;
        }
        self.volumes_written = Some(written);
        Ok(())
    }

    /// What the volumes would be written from now: the Pod's version and the change counts
    /// of the objects it reads.
    fn written(&self) -> Written {
        let namespace = self.pod.metadata.namespace.as_deref().unwrap_or("default");
        let sources = &self.shared.sources;
        let config_maps = self.used.config_maps.iter();
        let secrets = self.used.secrets.iter();
        Written {
            pod_version: self.seen_version,
            source_changes: config_maps
                .map(|name| sources.config_maps.changes(namespace, name))
                .chain(secrets.map(|name| sources.secrets.changes(namespace, name)))
                .sum(),
        }
    }

    /// Drops this worker's registrations: the watches of objects no other Pod uses end.
    fn release_sources(&mut self) {
        let namespace = self.pod.metadata.namespace.clone().unwrap_or_default();
        let uid = self.uid();
        let sources = &self.shared.sources;
        for name in std::mem::take(&mut self.used.config_maps) {
            sources.config_maps.unregister(&namespace, &name, &uid);
        }
        for name in std::mem::take(&mut self.used.secrets) {
            sources.secrets.unregister(&namespace, &name, &uid);
        }
    }

    /// Registers this worker as using the ConfigMaps and Secrets `needs` names, so their
    /// changes wake it.
    fn register_sources(&mut self, needs: &volumes::Needs) {
        let namespace = self.pod.metadata.namespace.as_deref().unwrap_or("default");
        let uid = self.pod.metadata.uid.as_deref().unwrap_or("");
        let sources = &self.shared.sources;
        for name in &needs.config_maps {
            if self.used.config_maps.insert(name.clone()) {
                sources
                    .config_maps
                    .register(namespace, name, uid, self.poke_tx.clone());
            }
        }
        for name in &needs.secrets {
            if self.used.secrets.insert(name.clone()) {
                sources
                    .secrets
                    .register(namespace, name, uid, self.poke_tx.clone());
            }
        }
    }

    /// Reads the ConfigMaps and Secrets `needs` names that `inputs` does not hold yet, as their
    /// watches last saw them.
    async fn read_sources(
        &self,
        needs: &volumes::Needs,
        inputs: &mut volumes::Inputs,
    ) -> Result<(), String> {
        let namespace = self.pod.metadata.namespace.as_deref().unwrap_or("default");
        let sources = &self.shared.sources;
        for name in &needs.config_maps {
            if inputs.config_maps.contains_key(name) {
                continue;
            }
            let found = sources.config_maps.get(namespace, name).await?;
            inputs.config_maps.insert(name.clone(), found);
        }
        for name in &needs.secrets {
            if inputs.secrets.contains_key(name) {
                continue;
            }
            let found = sources.secrets.get(namespace, name).await?;
            inputs.secrets.insert(name.clone(), found);
        }
        Ok(())
    }

    /// A token of the Pod's account bound to the Pod, from the TokenRequest API; one already
    /// held is kept until 80 % of its life has passed (upstream's token manager).
    async fn token(&mut self, wanted: &volumes::TokenSource) -> Result<String, String> {
        use k8s_openapi::api::authentication::v1::{
            BoundObjectReference, TokenRequest, TokenRequestSpec,
        };
        use k8s_openapi::api::core::v1::ServiceAccount;
        if let Some(held) = self.tokens.get(wanted) {
            if Instant::now() < held.refresh_at {
                return Ok(held.token.clone());
            }
        }
        let namespace = self.pod.metadata.namespace.clone().unwrap_or_default();
        let account = self
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_else(|| "default".into());
        let request = TokenRequest {
            spec: TokenRequestSpec {
                audiences: wanted.audience.iter().cloned().collect(),
                expiration_seconds: Some(wanted.expiration_seconds),
                bound_object_ref: Some(BoundObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("Pod".into()),
                    name: self.pod.metadata.name.clone(),
                    uid: self.pod.metadata.uid.clone(),
                }),
            },
            ..TokenRequest::default()
        };
        let issued = Api::<ServiceAccount>::namespaced(self.shared.client.clone(), &namespace)
            .create_token_request(&account, &PostParams::default(), &request)
            .await
            .map_err(|e| format!("failed to fetch token: {e}"))?;
        let status = issued
            .status
            .ok_or_else(|| "failed to fetch token: the answer holds no token".to_string())?;
        let now = jiff::Timestamp::now();
        let life = Duration::from_secs(
            u64::try_from(status.expiration_timestamp.0.as_second() - now.as_second()).unwrap_or(0),
        );
        let refresh_at = Instant::now() + (life * 4 / 5).min(TOKEN_MAX_AGE);
        self.wake(refresh_at);
        self.tokens.insert(
            wanted.clone(),
            IssuedToken {
                token: status.token.clone(),
                refresh_at,
            },
        );
        Ok(status.token)
    }

    #[allow(clippy::too_many_arguments)]
    fn container_spec(
        &self,
        container: &Container,
        env: Vec<(String, String)>,
        image: &str,
        attempt: i32,
        kind: &str,
        sandbox_id: &str,
    ) -> Result<ContainerSpec, SyncError> {
        let expand_all = |list: &Option<Vec<String>>| {
            list.as_ref()
                .map(|l| l.iter().map(|a| env::expand(a, &env)).collect::<Vec<_>>())
        };
        let mut mounts = Vec::new();
        for mount in container.volume_mounts.clone().unwrap_or_default() {
            if let Some((mut host, api_data)) = self.volume_path(&mount.name) {
                if let Some(sub) = mount.sub_path.as_deref().filter(|s| !s.is_empty()) {
                    host = format!("{host}/{sub}");
                    // A subPath into written files names one of them; elsewhere a missing
                    // one is made as a directory, as upstream makes it.
                    if std::fs::symlink_metadata(&host).is_err() && !api_data {
                        std::fs::create_dir_all(&host)?;
                    }
                }
                mounts.push(Mount {
                    host_path: host,
                    container_path: mount.mount_path.clone(),
                    read_only: api_data || mount.read_only.unwrap_or(false),
                });
            }
        }
        let resources = container.resources.clone().unwrap_or_default();
        let quantity = |map: &Option<
            BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
        >,
                        key: &str| {
            map.as_ref()
                .and_then(|m| m.get(key))
                .and_then(|q| Quantity::parse(&q.0).ok())
        };
        // Quantities beyond int64 (upstream keeps decimal ones of any size) saturate.
        let saturated =
            |v: i128| i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX });
        let memory_limit = quantity(&resources.limits, "memory").map(|q| saturated(q.value()));
        let cpu_limit_milli =
            quantity(&resources.limits, "cpu").map(|q| saturated(q.milli_value()));
        // The kubelet's `MilliCPUToShares`: 1024 shares a core, at least 2.
        let cpu_shares = quantity(&resources.requests, "cpu")
            .or_else(|| quantity(&resources.limits, "cpu"))
            .map(|q| (saturated(q.milli_value()).saturating_mul(1024) / 1000).max(2));
        let security = container.security_context.clone().unwrap_or_default();
        let pod_security = self
            .pod
            .spec
            .as_ref()
            .and_then(|s| s.security_context.clone())
            .unwrap_or_default();
        let uid = security.run_as_user.or(pod_security.run_as_user);
        let gid = security.run_as_group.or(pod_security.run_as_group);
        let user = uid.map(|u| match gid {
            Some(g) => format!("{u}:{g}"),
            None => u.to_string(),
        });
        let caps = security.capabilities.clone().unwrap_or_default();
        let pod_spec = self.pod.spec.clone().unwrap_or_default();
        Ok(ContainerSpec {
            name: labels::container_name(&self.pod, &container.name, attempt),
            image: image.to_string(),
            command: expand_all(&container.command),
            args: expand_all(&container.args),
            env,
            working_dir: container.working_dir.clone(),
            labels: {
                let mut labels = labels::for_container(
                    &self.pod,
                    &self.shared.node,
                    &self.shared.cluster,
                    &container.name,
                    kind,
                    attempt,
                );
                labels.insert(
                    labels::CONTAINER_HASH.to_string(),
                    labels::spec_hash(container),
                );
                labels
            },
            sandbox_id: sandbox_id.to_string(),
            mounts,
            tmpfs: Vec::new(),
            memory_limit,
            cpu_limit_milli,
            cpu_shares,
            user,
            privileged: security.privileged.unwrap_or(false),
            cap_add: caps.add.unwrap_or_default(),
            cap_drop: caps.drop.unwrap_or_default(),
            tty: container.tty.unwrap_or(false),
            stdin: container.stdin.unwrap_or(false),
            stdin_once: container.stdin_once.unwrap_or(false),
            pid_mode: if pod_spec.host_pid == Some(true) {
                Some("host".to_string())
            } else {
                self.pid_targets
                    .get(&container.name)
                    .map(|id| format!("container:{id}"))
            },
            host_ipc: pod_spec.host_ipc == Some(true),
        })
    }

    /// The running sandbox (id and IP), creating it when missing or dead.
    async fn ensure_sandbox(
        &mut self,
        containers: &[ContainerState],
    ) -> Result<Option<(String, String)>, SyncError> {
        let runtime = self.shared.runtime.clone();
        let sandboxes = named(containers, labels::SANDBOX_NAME, "sandbox");
        // A Pod on the host's network has the node's address, as upstream.
        let host_network = self
            .pod
            .spec
            .as_ref()
            .is_some_and(|s| s.host_network == Some(true));
        if let Some(sb) = sandboxes.first().filter(|s| s.state == RunState::Running) {
            let ip = match &sb.ip {
                _ if host_network => self.shared.host_ip.clone(),
                Some(ip) if !ip.is_empty() => ip.clone(),
                _ => runtime.inspect(&sb.id).await?.ip.unwrap_or_default(),
            };
            return Ok(Some((sb.id.clone(), ip)));
        }
        if let Some(b) = self.sandbox_backoff.filter(|b| b.next > Instant::now()) {
            self.wake(b.next);
            return Ok(None);
        }
        let attempt = sandboxes
            .first()
            .map(|s| labels::attempt(&s.labels) + 1)
            .unwrap_or(0);
        if !sandboxes.is_empty() {
            // The old sandbox died: its containers lost their network; start over, as the
            // kubelet does after "Pod sandbox changed, it will be killed and re-created."
            self.event(
                &self.object(),
                "Normal",
                "SandboxChanged",
                "Pod sandbox changed, it will be killed and re-created.",
            );
            self.retire_sandbox_containers(containers).await?;
        }
        let spec = self.pod.spec.clone().unwrap_or_default();
        let exposed_ports = spec
            .containers
            .iter()
            .flat_map(|c| c.ports.clone().unwrap_or_default())
            .filter_map(|p| {
                u16::try_from(p.container_port).ok().map(|port| {
                    (
                        port,
                        p.protocol.unwrap_or_else(|| "TCP".into()).to_lowercase(),
                    )
                })
            })
            .collect();
        let sandbox = SandboxSpec {
            name: labels::container_name(&self.pod, labels::SANDBOX_NAME, attempt),
            hostname: self.pod.metadata.name.clone().unwrap_or_default(),
            labels: labels::for_container(
                &self.pod,
                &self.shared.node,
                &self.shared.cluster,
                labels::SANDBOX_NAME,
                "sandbox",
                attempt,
            ),
            network: self.shared.network.clone(),
            exposed_ports,
            host_network: spec.host_network == Some(true),
            host_pid: spec.host_pid == Some(true),
            host_ipc: spec.host_ipc == Some(true),
        };
        let _ = runtime.remove(&sandbox.name).await;
        let id = match runtime.create_sandbox(&sandbox).await {
            Ok(id) => id,
            Err(e) => {
                let message = format!("Failed to create pod sandbox: {e}");
                self.event(
                    &self.object(),
                    "Warning",
                    "FailedCreatePodSandBox",
                    &message,
                );
                let backoff = Backoff::after(self.sandbox_backoff, Instant::now());
                self.sandbox_backoff = Some(backoff);
                self.wake(backoff.next);
                return Ok(None);
            }
        };
        self.sandbox_backoff = None;
        let ip = if host_network {
            self.shared.host_ip.clone()
        } else {
            runtime.inspect(&id).await?.ip.unwrap_or_default()
        };
        Ok(Some((id, ip)))
    }

    /// Stops the containers of a sandbox that died, keeping each app container's last attempt.
    ///
    /// Upstream's kubelet kills the old containers but keeps them, so the next attempt counts
    /// on from their `restartCount` label and the status shows them as `lastState`; removing
    /// them would restart every count at 0. Init containers are purged and run again in the
    /// new sandbox (`purgeInitContainers`); their next attempt still counts on from the last.
    /// A container that never started is removed: it belongs to the dead sandbox's network.
    async fn retire_sandbox_containers(
        &mut self,
        containers: &[ContainerState],
    ) -> Result<(), SyncError> {
        let runtime = self.shared.runtime.clone();
        for c in containers.iter().filter(|c| kind_of(c) != "sandbox") {
            if c.state == RunState::Running {
                self.stop_probes(&c.id);
                runtime.stop(&c.id, Duration::from_secs(2)).await?;
            }
            if kind_of(c) == "init" {
                let name = c
                    .labels
                    .get(labels::CONTAINER_NAME)
                    .cloned()
                    .unwrap_or_default();
                let next = labels::attempt(&c.labels) + 1;
                let base = self.attempt_base.entry(name).or_insert(0);
                *base = (*base).max(next);
                runtime.remove(&c.id).await?;
            } else if c.state == RunState::Created {
                runtime.remove(&c.id).await?;
            }
        }
        Ok(())
    }

    /// Removes container attempts older than the previous one (kept for `logs --previous`).
    async fn collect_garbage(&self, containers: &[ContainerState]) {
        let mut by_name: HashMap<(String, String), Vec<&ContainerState>> = HashMap::new();
        for c in containers {
            let name = c
                .labels
                .get(labels::CONTAINER_NAME)
                .cloned()
                .unwrap_or_default();
            by_name
                .entry((kind_of(c).to_string(), name))
                .or_default()
                .push(c);
        }
        for (_, mut list) in by_name {
            list.sort_by_key(|c| std::cmp::Reverse(labels::attempt(&c.labels)));
            for old in list.iter().skip(2).filter(|c| c.state != RunState::Running) {
                let _ = self.shared.runtime.remove(&old.id).await;
            }
        }
    }

    fn stop_probes(&mut self, id: &str) {
        if let Some(stop) = self.probe_stops.remove(id) {
            stop.cancel();
        }
    }

    fn sync_probes(&mut self, containers: &[ContainerState], specs: &[Container], pod_ip: &str) {
        let running: HashMap<String, &ContainerState> = containers
            .iter()
            .filter(|c| kind_of(c) == "app" && c.state == RunState::Running)
            .map(|c| (c.id.clone(), c))
            .collect();
        let stale: Vec<String> = self
            .probe_stops
            .keys()
            .filter(|id| !running.contains_key(*id))
            .cloned()
            .collect();
        for id in stale {
            self.stop_probes(&id);
        }
        let ctx = ProbeContext {
            runtime: self.shared.runtime.clone(),
            recorder: self.shared.recorder.clone(),
            object: self.object(),
            table: self.probes.clone(),
            poke: self.poke_tx.clone(),
        };
        for (id, c) in running {
            if self.probe_stops.contains_key(&id) {
                continue;
            }
            let name = c
                .labels
                .get(labels::CONTAINER_NAME)
                .cloned()
                .unwrap_or_default();
            let Some(spec) = specs.iter().find(|s| s.name == name) else {
                continue;
            };
            let stop = CancellationToken::new();
            probes::start(&ctx, spec, &id, pod_ip, &self.shared.tracker, stop.clone());
            self.probe_stops.insert(id, stop);
        }
    }

    /// Writes the status through `pods/status` when it changed.
    async fn report(&mut self, containers: &[ContainerState]) -> Result<(), SyncError> {
        let sandboxes = named(containers, labels::SANDBOX_NAME, "sandbox");
        let probe_results: HashMap<String, ProbeResults> = {
            let table = self.probes.lock().unwrap_or_else(|p| p.into_inner());
            containers
                .iter()
                .filter(|c| kind_of(c) == "app" && c.state == RunState::Running)
                .filter_map(|c| {
                    let name = c.labels.get(labels::CONTAINER_NAME)?.clone();
                    let result = match table.get(&name).filter(|p| p.container_id == c.id) {
                        Some(p) => ProbeResults {
                            ready: p.ready,
                            started: p.started,
                        },
                        None => {
                            let spec = self.pod.spec.as_ref()?;
                            let container = spec.containers.iter().find(|s| s.name == name)?;
                            let plain = container.readiness_probe.is_none()
                                && container.startup_probe.is_none();
                            ProbeResults {
                                ready: plain,
                                started: container.startup_probe.is_none(),
                            }
                        }
                    };
                    Some((name, result))
                })
                .collect()
        };
        // A container that runs again no longer waits.
        for c in containers.iter().filter(|c| c.state == RunState::Running) {
            if let Some(name) = c.labels.get(labels::CONTAINER_NAME) {
                self.waiting.remove(name);
            }
        }
        let status = status::pod_status(&Observed {
            pod: &self.pod,
            sandbox: sandboxes.first().copied(),
            containers,
            waiting: &self.waiting,
            probes: &probe_results,
            host_ip: &self.shared.host_ip,
            now: jiff::Timestamp::now(),
        });
        let value = serde_json::to_value(&status).expect("a PodStatus serializes");
        let current = self
            .pod
            .status
            .as_ref()
            .and_then(|s| serde_json::to_value(s).ok());
        if Some(&value) == self.last_status.as_ref() && current.as_ref() == Some(&value) {
            return Ok(());
        }
        if current.as_ref() == Some(&value) {
            self.last_status = Some(value);
            return Ok(());
        }
        let api: Api<Pod> = Api::namespaced(
            self.shared.client.clone(),
            self.pod.metadata.namespace.as_deref().unwrap_or("default"),
        );
        let name = self.pod.metadata.name.clone().unwrap_or_default();
        // A merge patch replaces the lists it names (conditions, container statuses), which
        // are computed whole here; PodScheduled is carried over from the current status. A
        // pod IP that went with its sandbox is removed, as upstream's status patch does.
        let mut patch = json!({"status": value});
        if status.pod_ip.is_none() {
            patch["status"]["podIP"] = serde_json::Value::Null;
            patch["status"]["podIPs"] = serde_json::Value::Null;
        }
        match api
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(pod) => {
                self.pod = pod;
                self.last_status = Some(value);
                Ok(())
            }
            Err(kube::Error::Api(e)) if e.code == 404 => {
                self.pod_gone();
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Stops every container within the grace period, then removes them and the volumes.
    async fn terminate(
        &mut self,
        containers: &[ContainerState],
        deadline: Instant,
    ) -> Result<(), SyncError> {
        let runtime = self.shared.runtime.clone();
        // What is left of the grace period, in whole seconds (rounded up), as the engine takes it.
        let left = deadline.saturating_duration_since(Instant::now());
        let grace = left.as_secs() + u64::from(left.subsec_nanos() > 0);
        for stop in self.probe_stops.values() {
            stop.cancel();
        }
        self.probe_stops.clear();
        let mut stops = tokio::task::JoinSet::new();
        for c in containers
            .iter()
            .filter(|c| c.state == RunState::Running && kind_of(c) != "sandbox")
        {
            let name = c
                .labels
                .get(labels::CONTAINER_NAME)
                .cloned()
                .unwrap_or_default();
            let object = self.container_object(&name, kind_of(c) == "init");
            self.event(
                &object,
                "Normal",
                "Killing",
                &format!("Stopping container {name}"),
            );
            let runtime = runtime.clone();
            let id = c.id.clone();
            stops.spawn(async move { runtime.stop(&id, Duration::from_secs(grace)).await });
        }
        while let Some(done) = stops.join_next().await {
            if let Ok(Err(e)) = done {
                tracing::warn!(pod = %self.describe(), error = %e, "stopping a container failed");
            }
        }
        for c in containers.iter().filter(|c| kind_of(c) != "sandbox") {
            runtime.remove(&c.id).await?;
        }
        for c in containers.iter().filter(|c| kind_of(c) == "sandbox") {
            runtime.remove(&c.id).await?;
        }
        let _ = std::fs::remove_dir_all(self.pod_dir());
        let _ = std::fs::remove_dir_all(self.shm_dir());
        Ok(())
    }

    /// The final delete (grace 0, this Pod's uid only) that removes the Pod from the API.
    async fn finish_delete(&self) -> Result<(), SyncError> {
        let api: Api<Pod> = Api::namespaced(
            self.shared.client.clone(),
            self.pod.metadata.namespace.as_deref().unwrap_or("default"),
        );
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(self.uid()),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match api
            .delete(self.pod.metadata.name.as_deref().unwrap_or(""), &params)
            .await
        {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
#[path = "pod_worker_tests.rs"]
mod worker_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crash_backoff_doubles_to_five_minutes() {
        let now = Instant::now();
        let mut b = Backoff::after(None, now);
        let mut delays = vec![b.delay.as_secs()];
        for _ in 0..6 {
            b = Backoff::after(Some(b), now);
            delays.push(b.delay.as_secs());
        }
        assert_eq!(delays, [10, 20, 40, 80, 160, 300, 300]);
    }
}
