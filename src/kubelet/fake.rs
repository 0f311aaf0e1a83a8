//! `FakeRuntime`: an in-memory, scripted [`Runtime`] for unit tests of kubelet logic.
//!
//! It keeps containers, images and networks in maps, records every call, and lets a test say
//! what the engine should do: which images exist, how a pull fails, which containers exit
//! (with what code, or OOM-killed) once started, what an exec prints. It follows Docker's
//! observable behaviour where the kubelet depends on it (name conflicts, "No such image" on
//! create, `die` after `start`, exit 143 after SIGTERM, 137 after SIGKILL or OOM). Everything is
//! deterministic: IDs, IPs and times come from counters and a clock that only moves when a
//! container changes state (or the test moves it).
#![forbid(unsafe_code)]

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use futures::channel::mpsc;
use futures::stream::{BoxStream, StreamExt};

use super::pause::PAUSE_IMAGE;
use super::runtime::{
    with_default_tag, Attached, ContainerSpec, ContainerState, ContainerStats, ExecResult,
    ExecSpec, ImageInfo, LogOptions, RegistryAuth, RunState, Runtime, RuntimeError, RuntimeEvent,
    SandboxSpec, Terminal,
};

/// One call made to the fake, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Version,
    EnsurePauseImage,
    EnsureNetwork(String),
    RemoveNetwork(String),
    Image(String),
    Pull(String),
    RemoveImage(String),
    /// Sandbox name.
    CreateSandbox(String),
    /// Container name.
    CreateContainer(String),
    Start(String),
    Stop(String, Duration),
    Remove(String),
    List(Vec<(String, String)>),
    Inspect(String),
    Exec(String, Vec<String>),
    Logs(String),
    Events(String, String),
}

/// What a pull of a given reference does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullOutcome {
    /// The image appears locally.
    Succeed,
    /// The registry says there is no such image (`RuntimeError::ImageNotFound`).
    NotFound(String),
    /// Any other failure (`RuntimeError::Pull`), with the engine's text.
    Fail(String),
}

/// What an exec of a given command does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecOutcome {
    Finish(ExecResult),
    /// The command does not finish in time (`RuntimeError::Timeout`).
    Hang,
}

/// What happens to a container of a given name when it is started or stopped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Script {
    start_error: Option<String>,
    exit_on_start: Option<(i64, bool)>,
    ignores_sigterm: bool,
}

struct FakeContainer {
    state: ContainerState,
    sandbox: Option<SandboxSpec>,
    spec: Option<ContainerSpec>,
    logs: Vec<(jiff::Timestamp, Vec<u8>)>,
}

type Matcher = Box<dyn Fn(&Call) -> bool + Send>;

struct Inner {
    version: String,
    calls: Vec<Call>,
    clock: jiff::Timestamp,
    next_id: u64,
    next_image: u64,
    next_ip: u32,
    images: BTreeMap<String, ImageInfo>,
    pulls: HashMap<String, PullOutcome>,
    /// The user each pull authenticated as, in order (None: anonymously).
    pull_auths: Vec<Option<String>>,
    networks: BTreeSet<String>,
    containers: BTreeMap<String, FakeContainer>,
    scripts: HashMap<String, Script>,
    execs: HashMap<(String, Vec<String>), ExecOutcome>,
    failures: Vec<(Matcher, RuntimeError)>,
    subscribers: Vec<((String, String), mpsc::UnboundedSender<RuntimeEvent>)>,
}

/// The scripted in-memory runtime.
pub struct FakeRuntime {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for FakeRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.lock();
        f.debug_struct("FakeRuntime")
            .field("containers", &inner.containers.len())
            .field("images", &inner.images.keys().collect::<Vec<_>>())
            .field("calls", &inner.calls.len())
            .finish()
    }
}

impl Default for FakeRuntime {
    fn default() -> Self {
        Self::new()
    }
}

/// The fake clock's start: 2024-01-01T00:00:00Z.
const EPOCH_SECONDS: i64 = 1_704_067_200;

impl FakeRuntime {
    pub fn new() -> Self {
        Self {
            inner: Mutex::new(Inner {
                version: "fake://0.0.1".to_string(),
                calls: Vec::new(),
                clock: jiff::Timestamp::from_second(EPOCH_SECONDS)
                    .expect("a 2024 timestamp is in range"),
                next_id: 0,
                next_image: 0,
                next_ip: 2,
                images: BTreeMap::new(),
                pulls: HashMap::new(),
                pull_auths: Vec::new(),
                networks: BTreeSet::new(),
                containers: BTreeMap::new(),
                scripts: HashMap::new(),
                execs: HashMap::new(),
                failures: Vec::new(),
                subscribers: Vec::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A test that panicked while holding the lock must not hide its own failure.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    // ----- scripting -----

    /// What `version()` returns.
    pub fn set_version(&self, version: &str) {
        self.lock().version = version.to_string();
    }

    /// Makes an image present locally (a reference without a tag means `:latest`).
    pub fn add_image(&self, reference: &str) -> ImageInfo {
        self.lock().add_image(&with_default_tag(reference), false)
    }

    /// Decides what pulling `reference` does from now on (the default is to succeed).
    pub fn script_pull(&self, reference: &str, outcome: PullOutcome) {
        self.lock()
            .pulls
            .insert(with_default_tag(reference), outcome);
    }

    /// Starting the container named `name` fails with this engine message; it stays `Created`
    /// with `error` set and exit code 128, as Docker leaves it.
    pub fn script_start_failure(&self, name: &str, message: &str) {
        self.lock()
            .scripts
            .entry(name.to_string())
            .or_default()
            .start_error = Some(message.to_string());
    }

    /// The container named `name` exits with `code` as soon as it has started.
    pub fn script_exit_on_start(&self, name: &str, code: i64) {
        self.lock()
            .scripts
            .entry(name.to_string())
            .or_default()
            .exit_on_start = Some((code, false));
    }

    /// The container named `name` is OOM-killed as soon as it has started (exit code 137).
    pub fn script_oom_on_start(&self, name: &str) {
        self.lock()
            .scripts
            .entry(name.to_string())
            .or_default()
            .exit_on_start = Some((137, true));
    }

    /// The container named `name` ignores SIGTERM: `stop` ends it with SIGKILL (137).
    pub fn script_ignore_sigterm(&self, name: &str) {
        self.lock()
            .scripts
            .entry(name.to_string())
            .or_default()
            .ignores_sigterm = true;
    }

    /// What running `cmd` in the container named `container_name` does (default: exit 0, no
    /// output).
    pub fn script_exec(&self, container_name: &str, cmd: &[&str], outcome: ExecOutcome) {
        let cmd = cmd.iter().map(|s| s.to_string()).collect();
        self.lock()
            .execs
            .insert((container_name.to_string(), cmd), outcome);
    }

    /// Makes the next call for which `matches` is true fail with `error` (once).
    pub fn fail_next(&self, matches: impl Fn(&Call) -> bool + Send + 'static, error: RuntimeError) {
        self.lock().failures.push((Box::new(matches), error));
    }

    // ----- driving containers -----

    /// The running container exits with `code` now (emits `die`).
    pub fn exit(&self, id: &str, code: i64) -> Result<(), RuntimeError> {
        self.lock().finish(id, code, false)
    }

    /// The kernel OOM-kills the running container now (emits `oom` then `die`, exit 137).
    pub fn oom_kill(&self, id: &str) -> Result<(), RuntimeError> {
        self.lock().finish(id, 137, true)
    }

    /// Adds a line (or any bytes) to the container's log, stamped with the fake clock.
    pub fn append_log(&self, id: &str, bytes: &[u8]) -> Result<(), RuntimeError> {
        let mut inner = self.lock();
        let now = inner.clock;
        inner.container_mut(id)?.logs.push((now, bytes.to_vec()));
        Ok(())
    }

    /// Moves the fake clock forward.
    pub fn advance(&self, by: Duration) {
        let mut inner = self.lock();
        inner.clock = inner
            .clock
            .checked_add(jiff::SignedDuration::try_from(by).unwrap_or(jiff::SignedDuration::MAX))
            .unwrap_or(jiff::Timestamp::MAX);
    }

    // ----- looking -----

    /// The fake clock.
    pub fn now(&self) -> jiff::Timestamp {
        self.lock().clock
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// The user each pull so far authenticated as (None: anonymously).
    pub fn pull_auths(&self) -> Vec<Option<String>> {
        self.lock().pull_auths.clone()
    }

    /// Every call so far, forgetting them.
    pub fn take_calls(&self) -> Vec<Call> {
        std::mem::take(&mut self.lock().calls)
    }

    /// All containers (sandboxes included), oldest first.
    pub fn containers(&self) -> Vec<ContainerState> {
        let inner = self.lock();
        let mut all: Vec<_> = inner.containers.values().map(|c| c.state.clone()).collect();
        all.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        all
    }

    /// The spec a container was created with.
    pub fn container_spec(&self, id: &str) -> Option<ContainerSpec> {
        self.lock().containers.get(id).and_then(|c| c.spec.clone())
    }

    /// The spec a sandbox was created with.
    pub fn sandbox_spec(&self, id: &str) -> Option<SandboxSpec> {
        self.lock()
            .containers
            .get(id)
            .and_then(|c| c.sandbox.clone())
    }

    /// Local image references.
    pub fn images(&self) -> Vec<String> {
        self.lock().images.keys().cloned().collect()
    }

    /// Existing networks.
    pub fn networks(&self) -> Vec<String> {
        self.lock().networks.iter().cloned().collect()
    }

    /// Records the call and returns the injected failure for it, if any.
    fn enter(&self, call: Call) -> Result<MutexGuard<'_, Inner>, RuntimeError> {
        let mut inner = self.lock();
        let failure = inner.failures.iter().position(|(m, _)| m(&call));
        inner.calls.push(call);
        if let Some(index) = failure {
            return Err(inner.failures.remove(index).1);
        }
        Ok(inner)
    }
}

impl Inner {
    fn tick(&mut self) -> jiff::Timestamp {
        self.clock = self
            .clock
            .checked_add(jiff::SignedDuration::from_secs(1))
            .unwrap_or(jiff::Timestamp::MAX);
        self.clock
    }

    fn add_image(&mut self, reference: &str, pulled: bool) -> ImageInfo {
        if let Some(existing) = self.images.get(reference) {
            return existing.clone();
        }
        self.next_image += 1;
        let digest = format!("sha256:{:064x}", self.next_image);
        let repo = reference.split(':').next().unwrap_or(reference);
        let info = ImageInfo {
            id: digest.clone(),
            repo_digests: if pulled {
                vec![format!("{repo}@{digest}")]
            } else {
                Vec::new()
            },
            repo_tags: vec![reference.to_string()],
        };
        self.images.insert(reference.to_string(), info.clone());
        info
    }

    fn find_image(&self, reference: &str) -> Option<ImageInfo> {
        self.images
            .get(&with_default_tag(reference))
            .or_else(|| self.images.values().find(|i| i.id == reference))
            .cloned()
    }

    fn resolve(&self, id_or_name: &str) -> Option<String> {
        if self.containers.contains_key(id_or_name) {
            return Some(id_or_name.to_string());
        }
        self.containers
            .iter()
            .find(|(_, c)| c.state.name == id_or_name)
            .map(|(id, _)| id.clone())
    }

    fn container_mut(&mut self, id: &str) -> Result<&mut FakeContainer, RuntimeError> {
        let key = self.resolve(id).ok_or_else(|| no_such_container(id))?;
        self.containers
            .get_mut(&key)
            .ok_or_else(|| no_such_container(id))
    }

    fn new_container(&mut self, name: &str, state: ContainerState) -> Result<String, RuntimeError> {
        if self.containers.values().any(|c| c.state.name == name) {
            return Err(RuntimeError::Conflict(format!(
                "creating container {name:?}: the name is already in use"
            )));
        }
        self.next_id += 1;
        let id = format!("fake{:060x}", self.next_id);
        let created_at = self.tick();
        let state = ContainerState {
            id: id.clone(),
            name: name.to_string(),
            created_at: Some(created_at),
            ..state
        };
        self.containers.insert(
            id.clone(),
            FakeContainer {
                state,
                sandbox: None,
                spec: None,
                logs: Vec::new(),
            },
        );
        self.emit(&id, "create", &[]);
        Ok(id)
    }

    fn start(&mut self, id: &str) -> Result<(), RuntimeError> {
        let key = self.resolve(id).ok_or_else(|| no_such_container(id))?;
        let (name, sandbox_ok) = {
            let c = &self.containers[&key];
            if c.state.state == RunState::Running {
                return Ok(());
            }
            let sandbox_ok = match &c.spec {
                Some(spec) => self
                    .containers
                    .get(&spec.sandbox_id)
                    .is_some_and(|s| s.state.state == RunState::Running),
                None => true,
            };
            (c.state.name.clone(), sandbox_ok)
        };
        let script = self.scripts.get(&name).cloned().unwrap_or_default();
        let failure = if sandbox_ok {
            script.start_error
        } else {
            Some("cannot join network of a non running container".to_string())
        };
        if let Some(message) = failure {
            let container = self.container_mut(&key)?;
            container.state.error = message.clone();
            container.state.exit_code = 128;
            return Err(RuntimeError::Engine(format!(
                "starting container {id:?}: {message}"
            )));
        }
        let now = self.tick();
        let container = self.container_mut(&key)?;
        container.state.state = RunState::Running;
        container.state.started_at = Some(now);
        container.state.finished_at = None;
        container.state.exit_code = 0;
        container.state.oom_killed = false;
        container.state.error.clear();
        self.emit(&key, "start", &[]);
        if let Some((code, oom)) = script.exit_on_start {
            self.finish(&key, code, oom)?;
        }
        Ok(())
    }

    /// A running container ends: `oom` (if so) and `die` events, exit code, finish time.
    fn finish(&mut self, id: &str, code: i64, oom: bool) -> Result<(), RuntimeError> {
        let key = self.resolve(id).ok_or_else(|| no_such_container(id))?;
        if self.containers[&key].state.state != RunState::Running {
            return Err(RuntimeError::Conflict(format!(
                "container {id:?} is not running"
            )));
        }
        let now = self.tick();
        let container = self.container_mut(&key)?;
        container.state.state = RunState::Exited;
        container.state.exit_code = code;
        container.state.oom_killed = oom;
        container.state.finished_at = Some(now);
        if oom {
            self.emit(&key, "oom", &[]);
        }
        self.emit(&key, "die", &[("exitCode", code.to_string())]);
        Ok(())
    }

    /// Sends an event to every subscriber whose label the container carries, like the
    /// engine's label-filtered event stream.
    fn emit(&mut self, id: &str, action: &str, extra: &[(&str, String)]) {
        let Some(container) = self.containers.get(id) else {
            return;
        };
        let mut labels = container.state.labels.clone();
        labels.insert("name".to_string(), container.state.name.clone());
        labels.insert("image".to_string(), container.state.image.clone());
        for (k, v) in extra {
            labels.insert((*k).to_string(), v.clone());
        }
        let event = RuntimeEvent {
            id: id.to_string(),
            action: action.to_string(),
            labels,
            time: Some(self.clock),
        };
        self.subscribers.retain(|((k, v), tx)| {
            if container.state.labels.get(k) != Some(v) {
                return !tx.is_closed();
            }
            tx.unbounded_send(event.clone()).is_ok()
        });
    }
}

fn no_such_container(id: &str) -> RuntimeError {
    RuntimeError::NotFound(format!("no such container: {id}"))
}

#[async_trait::async_trait]
impl Runtime for FakeRuntime {
    async fn version(&self) -> Result<String, RuntimeError> {
        Ok(self.enter(Call::Version)?.version.clone())
    }

    async fn ensure_pause_image(&self) -> Result<String, RuntimeError> {
        let mut inner = self.enter(Call::EnsurePauseImage)?;
        inner.add_image(PAUSE_IMAGE, false);
        Ok(PAUSE_IMAGE.to_string())
    }

    async fn ensure_network(&self, name: &str) -> Result<(), RuntimeError> {
        let mut inner = self.enter(Call::EnsureNetwork(name.to_string()))?;
        inner.networks.insert(name.to_string());
        Ok(())
    }

    async fn remove_network(&self, name: &str) -> Result<(), RuntimeError> {
        let mut inner = self.enter(Call::RemoveNetwork(name.to_string()))?;
        let in_use = inner.containers.values().any(|c| {
            c.state.state == RunState::Running
                && c.sandbox.as_ref().is_some_and(|s| s.network == name)
        });
        if in_use {
            return Err(RuntimeError::Conflict(format!(
                "removing network {name:?}: network has active endpoints"
            )));
        }
        inner.networks.remove(name);
        Ok(())
    }

    async fn image(&self, reference: &str) -> Result<Option<ImageInfo>, RuntimeError> {
        let inner = self.enter(Call::Image(reference.to_string()))?;
        Ok(inner.find_image(reference))
    }

    async fn pull(
        &self,
        reference: &str,
        auth: Option<&RegistryAuth>,
    ) -> Result<ImageInfo, RuntimeError> {
        let mut inner = self.enter(Call::Pull(reference.to_string()))?;
        inner.pull_auths.push(auth.map(|a| a.username.clone()));
        let reference = with_default_tag(reference);
        match inner.pulls.get(&reference).cloned() {
            None | Some(PullOutcome::Succeed) => Ok(inner.add_image(&reference, true)),
            Some(PullOutcome::NotFound(message)) => Err(RuntimeError::ImageNotFound(format!(
                "pulling image {reference:?}: {message}"
            ))),
            Some(PullOutcome::Fail(message)) => Err(RuntimeError::Pull(format!(
                "pulling image {reference:?}: {message}"
            ))),
        }
    }

    async fn remove_image(&self, reference: &str) -> Result<(), RuntimeError> {
        let mut inner = self.enter(Call::RemoveImage(reference.to_string()))?;
        let Some(image) = inner.find_image(reference) else {
            return Ok(());
        };
        if inner
            .containers
            .values()
            .any(|c| c.state.image_id == image.id)
        {
            return Err(RuntimeError::Conflict(format!(
                "removing image {reference:?}: image is being used by a container"
            )));
        }
        inner.images.retain(|_, i| i.id != image.id);
        Ok(())
    }

    async fn create_sandbox(&self, spec: &SandboxSpec) -> Result<String, RuntimeError> {
        let mut inner = self.enter(Call::CreateSandbox(spec.name.clone()))?;
        if !inner.networks.contains(&spec.network) {
            return Err(RuntimeError::NotFound(format!(
                "creating container {:?}: network {} not found",
                spec.name, spec.network
            )));
        }
        let pause = inner.add_image(PAUSE_IMAGE, false);
        let ip = format!("10.88.{}.{}", inner.next_ip / 256, inner.next_ip % 256);
        let id = inner.new_container(
            &spec.name,
            ContainerState {
                labels: spec.labels.clone(),
                image: PAUSE_IMAGE.to_string(),
                image_id: pause.id,
                ..Default::default()
            },
        )?;
        inner.next_ip += 1;
        if let Some(container) = inner.containers.get_mut(&id) {
            container.sandbox = Some(spec.clone());
        }
        inner.start(&id)?;
        if let Some(container) = inner.containers.get_mut(&id) {
            container.state.ip = Some(ip);
        }
        Ok(id)
    }

    async fn create_container(&self, spec: &ContainerSpec) -> Result<String, RuntimeError> {
        let mut inner = self.enter(Call::CreateContainer(spec.name.clone()))?;
        if !inner.containers.contains_key(&spec.sandbox_id) {
            return Err(RuntimeError::NotFound(format!(
                "creating container {:?}: no such container: {}",
                spec.name, spec.sandbox_id
            )));
        }
        let image = inner.find_image(&spec.image).ok_or_else(|| {
            RuntimeError::ImageNotFound(format!(
                "creating container {:?}: No such image: {}",
                spec.name, spec.image
            ))
        })?;
        let id = inner.new_container(
            &spec.name,
            ContainerState {
                labels: spec.labels.clone(),
                image: spec.image.clone(),
                image_id: image.id,
                ..Default::default()
            },
        )?;
        if let Some(container) = inner.containers.get_mut(&id) {
            container.spec = Some(spec.clone());
        }
        Ok(id)
    }

    async fn start(&self, id: &str) -> Result<(), RuntimeError> {
        self.enter(Call::Start(id.to_string()))?.start(id)
    }

    async fn stop(&self, id: &str, grace: Duration) -> Result<(), RuntimeError> {
        let mut inner = self.enter(Call::Stop(id.to_string(), grace))?;
        let key = inner.resolve(id).ok_or_else(|| no_such_container(id))?;
        if inner.containers[&key].state.state != RunState::Running {
            return Ok(());
        }
        let name = inner.containers[&key].state.name.clone();
        let ignores = inner.scripts.get(&name).is_some_and(|s| s.ignores_sigterm);
        inner.emit(&key, "kill", &[("signal", "15".to_string())]);
        if ignores {
            // Docker waits out the grace period, then kills.
            let grace = jiff::SignedDuration::try_from(grace).unwrap_or(jiff::SignedDuration::MAX);
            inner.clock = inner
                .clock
                .checked_add(grace)
                .unwrap_or(jiff::Timestamp::MAX);
            inner.emit(&key, "kill", &[("signal", "9".to_string())]);
        }
        inner.finish(&key, if ignores { 137 } else { 143 }, false)?;
        inner.emit(&key, "stop", &[]);
        Ok(())
    }

    async fn remove(&self, id: &str) -> Result<(), RuntimeError> {
        let mut inner = self.enter(Call::Remove(id.to_string()))?;
        let Some(key) = inner.resolve(id) else {
            return Ok(());
        };
        if inner.containers[&key].state.state == RunState::Running {
            inner.emit(&key, "kill", &[("signal", "9".to_string())]);
            inner.finish(&key, 137, false)?;
        }
        inner.emit(&key, "destroy", &[]);
        inner.containers.remove(&key);
        Ok(())
    }

    async fn list(
        &self,
        label_filter: &[(String, String)],
    ) -> Result<Vec<ContainerState>, RuntimeError> {
        let inner = self.enter(Call::List(label_filter.to_vec()))?;
        let mut found: Vec<ContainerState> = inner
            .containers
            .values()
            .filter(|c| {
                label_filter
                    .iter()
                    .all(|(k, v)| c.state.labels.get(k) == Some(v))
            })
            .map(|c| c.state.clone())
            .collect();
        found.sort_by(|a, b| (a.created_at, &a.name).cmp(&(b.created_at, &b.name)));
        Ok(found)
    }

    async fn inspect(&self, id: &str) -> Result<ContainerState, RuntimeError> {
        let inner = self.enter(Call::Inspect(id.to_string()))?;
        let key = inner.resolve(id).ok_or_else(|| no_such_container(id))?;
        Ok(inner.containers[&key].state.clone())
    }

    async fn exec(
        &self,
        id: &str,
        cmd: &[String],
        timeout: Duration,
    ) -> Result<ExecResult, RuntimeError> {
        let inner = self.enter(Call::Exec(id.to_string(), cmd.to_vec()))?;
        let key = inner.resolve(id).ok_or_else(|| no_such_container(id))?;
        let state = &inner.containers[&key].state;
        if state.state != RunState::Running {
            return Err(RuntimeError::Conflict(format!(
                "exec {cmd:?} in container {id:?}: container {key} is not running"
            )));
        }
        match inner.execs.get(&(state.name.clone(), cmd.to_vec())) {
            None => Ok(ExecResult::default()),
            Some(ExecOutcome::Finish(result)) => Ok(result.clone()),
            Some(ExecOutcome::Hang) => Err(RuntimeError::Timeout(format!(
                "exec {cmd:?} in container {id:?}: timed out after {timeout:?}"
            ))),
        }
    }

    async fn logs(&self, id: &str, options: &LogOptions) -> Result<Vec<u8>, RuntimeError> {
        let inner = self.enter(Call::Logs(id.to_string()))?;
        let key = inner.resolve(id).ok_or_else(|| no_such_container(id))?;
        let lines: Vec<&(jiff::Timestamp, Vec<u8>)> = inner.containers[&key]
            .logs
            .iter()
            .filter(|(at, _)| options.since.is_none_or(|since| *at >= since))
            .collect();
        let skip = options.tail.map_or(0, |n| {
            lines
                .len()
                .saturating_sub(usize::try_from(n).unwrap_or(usize::MAX))
        });
        let mut out = Vec::new();
        for (at, bytes) in lines.into_iter().skip(skip) {
            if options.timestamps {
                out.extend_from_slice(format!("{at} ").as_bytes());
            }
            out.extend_from_slice(bytes);
        }
        Ok(out)
    }

    /// The log so far, in one chunk: the fake's containers write nothing after a call.
    async fn log_stream(
        &self,
        id: &str,
        options: &LogOptions,
    ) -> Result<BoxStream<'static, Result<bytes::Bytes, RuntimeError>>, RuntimeError> {
        let bytes = self.logs(id, options).await?;
        Ok(futures::stream::iter([Ok(bytes::Bytes::from(bytes))]).boxed())
    }

    async fn exec_attached(&self, id: &str, _: &ExecSpec) -> Result<Attached, RuntimeError> {
        Err(RuntimeError::Engine(format!(
            "exec in container {id:?}: the fake engine runs no interactive sessions"
        )))
    }

    async fn exec_exit_code(&self, exec_id: &str) -> Result<Option<i64>, RuntimeError> {
        Err(RuntimeError::NotFound(format!("no exec {exec_id:?}")))
    }

    async fn attach(&self, id: &str, _: bool, _: bool) -> Result<Attached, RuntimeError> {
        Err(RuntimeError::Engine(format!(
            "attaching to container {id:?}: the fake engine runs no interactive sessions"
        )))
    }

    /// The fake's containers use nothing.
    async fn stats(&self, id: &str) -> Result<ContainerStats, RuntimeError> {
        let inner = self.lock();
        inner.resolve(id).ok_or_else(|| no_such_container(id))?;
        Ok(ContainerStats::default())
    }

    async fn resize(&self, _: &Terminal, _: u16, _: u16) -> Result<(), RuntimeError> {
        Ok(())
    }

    fn events(&self, label: (String, String)) -> BoxStream<'static, RuntimeEvent> {
        let (tx, rx) = mpsc::unbounded();
        let mut inner = self.lock();
        inner
            .calls
            .push(Call::Events(label.0.clone(), label.1.clone()));
        inner.subscribers.push((label, tx));
        rx.boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    fn label() -> (String, String) {
        ("app".to_string(), "web".to_string())
    }

    async fn sandbox(fake: &FakeRuntime, name: &str) -> String {
        fake.ensure_network("cluster").await.expect("network");
        fake.create_sandbox(&SandboxSpec {
            name: name.to_string(),
            hostname: name.to_string(),
            labels: BTreeMap::from([label()]),
            network: "cluster".to_string(),
            ..SandboxSpec::default()
        })
        .await
        .expect("sandbox")
    }

    fn spec(name: &str, sandbox_id: &str, image: &str) -> ContainerSpec {
        ContainerSpec {
            name: name.to_string(),
            image: image.to_string(),
            sandbox_id: sandbox_id.to_string(),
            labels: BTreeMap::from([label()]),
            ..Default::default()
        }
    }

    /// Events already queued, without waiting.
    fn drain(events: &mut BoxStream<'static, RuntimeEvent>) -> Vec<String> {
        let mut seen = Vec::new();
        while let Some(Some(event)) = events.next().now_or_never() {
            seen.push(event.action);
        }
        seen
    }

    #[tokio::test]
    async fn sandboxes_get_deterministic_ips_and_run() {
        let fake = FakeRuntime::new();
        let a = sandbox(&fake, "a").await;
        let b = sandbox(&fake, "b").await;
        let a = fake.inspect(&a).await.expect("a");
        let b = fake.inspect(&b).await.expect("b");
        assert_eq!(a.ip.as_deref(), Some("10.88.0.2"));
        assert_eq!(b.ip.as_deref(), Some("10.88.0.3"));
        assert_eq!(a.state, RunState::Running);
        assert_eq!(a.image, PAUSE_IMAGE);
        assert!(fake.images().contains(&PAUSE_IMAGE.to_string()));
        assert!(a.created_at < b.created_at);
    }

    #[tokio::test]
    async fn sandbox_needs_its_network_and_a_free_name() {
        let fake = FakeRuntime::new();
        let err = fake
            .create_sandbox(&SandboxSpec {
                name: "s".into(),
                network: "nope".into(),
                ..Default::default()
            })
            .await
            .expect_err("no network");
        assert!(matches!(err, RuntimeError::NotFound(_)), "{err}");
        sandbox(&fake, "s").await;
        fake.ensure_network("cluster").await.expect("network");
        let err = fake
            .create_sandbox(&SandboxSpec {
                name: "s".into(),
                network: "cluster".into(),
                ..Default::default()
            })
            .await
            .expect_err("name taken");
        assert!(matches!(err, RuntimeError::Conflict(_)), "{err}");
    }

    #[tokio::test]
    async fn images_and_pull_outcomes() {
        let fake = FakeRuntime::new();
        assert_eq!(fake.image("nginx").await.expect("image"), None);
        let pulled = fake.pull("nginx", None).await.expect("pull");
        assert_eq!(
            fake.image("nginx:latest").await.expect("image"),
            Some(pulled.clone())
        );
        assert_eq!(fake.image(&pulled.id).await.expect("by id"), Some(pulled));
        fake.script_pull("bad:1", PullOutcome::NotFound("manifest unknown".into()));
        fake.script_pull("slow:1", PullOutcome::Fail("dial tcp: i/o timeout".into()));
        let err = fake.pull("bad:1", None).await.expect_err("not found");
        assert!(matches!(err, RuntimeError::ImageNotFound(_)));
        assert_eq!(err.to_string(), "pulling image \"bad:1\": manifest unknown");
        let err = fake.pull("slow:1", None).await.expect_err("fails");
        assert!(matches!(err, RuntimeError::Pull(_)));
        assert!(fake.image("bad:1").await.expect("image").is_none());
        let s = sandbox(&fake, "s").await;
        let err = fake
            .create_container(&spec("c", &s, "absent:1"))
            .await
            .expect_err("no image");
        assert!(matches!(err, RuntimeError::ImageNotFound(_)), "{err}");
    }

    #[tokio::test]
    async fn scripted_exits_and_events() {
        let fake = FakeRuntime::new();
        let mut events = fake.events(label());
        fake.add_image("busybox");
        let s = sandbox(&fake, "s").await;
        assert_eq!(drain(&mut events), ["create", "start"]);

        fake.script_exit_on_start("job", 3);
        let job = fake
            .create_container(&spec("job", &s, "busybox"))
            .await
            .expect("create");
        fake.start(&job).await.expect("start");
        let state = fake.inspect(&job).await.expect("inspect");
        assert_eq!(
            (state.state, state.exit_code, state.oom_killed),
            (RunState::Exited, 3, false)
        );
        assert!(state.started_at < state.finished_at);
        assert_eq!(drain(&mut events), ["create", "start", "die"]);

        fake.script_oom_on_start("hog");
        let hog = fake
            .create_container(&spec("hog", &s, "busybox"))
            .await
            .expect("create");
        fake.start(&hog).await.expect("start");
        let state = fake.inspect(&hog).await.expect("inspect");
        assert_eq!((state.exit_code, state.oom_killed), (137, true));
        assert_eq!(drain(&mut events), ["create", "start", "oom", "die"]);

        let web = fake
            .create_container(&spec("web", &s, "busybox"))
            .await
            .expect("create");
        fake.start(&web).await.expect("start");
        fake.oom_kill(&web).expect("running");
        assert!(fake.inspect(&web).await.expect("inspect").oom_killed);
        assert!(fake.exit(&web, 1).is_err(), "already exited");
        drain(&mut events);

        // Events carry the die code like Docker's `exitCode` attribute, and only labelled
        // containers reach the subscriber.
        let other = fake
            .create_container(&ContainerSpec {
                labels: BTreeMap::new(),
                ..spec("other", &s, "busybox")
            })
            .await
            .expect("create");
        fake.start(&other).await.expect("start");
        assert!(drain(&mut events).is_empty());
    }

    #[tokio::test]
    async fn stop_sigterm_and_sigkill() {
        let fake = FakeRuntime::new();
        fake.add_image("busybox");
        let s = sandbox(&fake, "s").await;
        let polite = fake
            .create_container(&spec("polite", &s, "busybox"))
            .await
            .expect("c");
        fake.script_ignore_sigterm("stubborn");
        let stubborn = fake
            .create_container(&spec("stubborn", &s, "busybox"))
            .await
            .expect("c");
        fake.start(&polite).await.expect("start");
        fake.start(&stubborn).await.expect("start");
        let before = fake.now();
        fake.stop(&polite, Duration::from_secs(30))
            .await
            .expect("stop");
        fake.stop(&stubborn, Duration::from_secs(30))
            .await
            .expect("stop");
        assert_eq!(fake.inspect(&polite).await.expect("i").exit_code, 143);
        let stubborn_state = fake.inspect(&stubborn).await.expect("i");
        assert_eq!(stubborn_state.exit_code, 137);
        let waited = stubborn_state.finished_at.expect("finished") - before;
        assert!(waited.get_seconds() >= 30, "{waited}");
        // Stopping again is fine, stopping nothing is not.
        fake.stop(&polite, Duration::ZERO)
            .await
            .expect("idempotent");
        assert!(fake
            .stop("nope", Duration::ZERO)
            .await
            .expect_err("missing")
            .is_not_found());
        fake.remove("nope").await.expect("removing nothing is fine");
    }

    #[tokio::test]
    async fn start_failures_and_injected_errors() {
        let fake = FakeRuntime::new();
        fake.add_image("busybox");
        let s = sandbox(&fake, "s").await;
        fake.script_start_failure(
            "broken",
            "exec: \"nope\": executable file not found in $PATH",
        );
        let broken = fake
            .create_container(&spec("broken", &s, "busybox"))
            .await
            .expect("c");
        let err = fake.start(&broken).await.expect_err("start fails");
        assert!(err.to_string().contains("executable file not found"));
        let state = fake.inspect(&broken).await.expect("i");
        assert_eq!((state.state, state.exit_code), (RunState::Created, 128));
        assert!(state.error.contains("executable file not found"));

        fake.fail_next(
            |c| matches!(c, Call::Start(_)),
            RuntimeError::Engine("boom".into()),
        );
        let ok = fake
            .create_container(&spec("ok", &s, "busybox"))
            .await
            .expect("c");
        assert_eq!(
            fake.start(&ok).await,
            Err(RuntimeError::Engine("boom".into()))
        );
        fake.start(&ok).await.expect("only once");

        // A container whose sandbox is gone cannot start.
        let late = fake
            .create_container(&spec("late", &s, "busybox"))
            .await
            .expect("c");
        fake.stop(&s, Duration::ZERO).await.expect("stop sandbox");
        assert!(fake.start(&late).await.is_err());
    }

    #[tokio::test]
    async fn list_exec_logs_and_calls() {
        let fake = FakeRuntime::new();
        fake.add_image("busybox");
        let s = sandbox(&fake, "s").await;
        let c = fake
            .create_container(&spec("c", &s, "busybox"))
            .await
            .expect("c");
        let other = fake
            .create_container(&ContainerSpec {
                labels: BTreeMap::from([("app".to_string(), "db".to_string())]),
                ..spec("other", &s, "busybox")
            })
            .await
            .expect("c");
        let listed: Vec<String> = fake
            .list(&[label()])
            .await
            .expect("list")
            .into_iter()
            .map(|c| c.id)
            .collect();
        assert_eq!(listed, [s.clone(), c.clone()]);
        assert!(!listed.contains(&other));

        assert!(matches!(
            fake.exec(&c, &["true".into()], Duration::from_secs(1))
                .await,
            Err(RuntimeError::Conflict(_))
        ));
        fake.start(&c).await.expect("start");
        fake.script_exec(
            "c",
            &["cat", "/ready"],
            ExecOutcome::Finish(ExecResult {
                exit_code: 1,
                output: b"no\n".to_vec(),
            }),
        );
        fake.script_exec("c", &["sleep", "9"], ExecOutcome::Hang);
        let cmd = |parts: &[&str]| parts.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let ran = fake
            .exec(&c, &cmd(&["cat", "/ready"]), Duration::from_secs(1))
            .await;
        assert_eq!(
            ran,
            Ok(ExecResult {
                exit_code: 1,
                output: b"no\n".to_vec()
            })
        );
        assert_eq!(
            fake.exec("c", &cmd(&["true"]), Duration::from_secs(1))
                .await,
            Ok(ExecResult::default())
        );
        assert!(matches!(
            fake.exec(&c, &cmd(&["sleep", "9"]), Duration::from_secs(1))
                .await,
            Err(RuntimeError::Timeout(_))
        ));

        fake.append_log(&c, b"one\n").expect("log");
        fake.advance(Duration::from_secs(10));
        let cut = fake.now();
        fake.append_log(&c, b"two\n").expect("log");
        fake.append_log(&c, b"three\n").expect("log");
        let all = fake.logs(&c, &LogOptions::default()).await.expect("logs");
        assert_eq!(all, b"one\ntwo\nthree\n");
        let tail = fake
            .logs(
                &c,
                &LogOptions {
                    tail: Some(1),
                    ..Default::default()
                },
            )
            .await
            .expect("logs");
        assert_eq!(tail, b"three\n");
        let since = fake
            .logs(
                &c,
                &LogOptions {
                    since: Some(cut),
                    timestamps: true,
                    ..Default::default()
                },
            )
            .await
            .expect("logs");
        assert_eq!(
            String::from_utf8_lossy(&since),
            format!("{cut} two\n{cut} three\n")
        );

        let calls = fake.take_calls();
        assert!(calls.contains(&Call::Start(c.clone())));
        assert!(calls.contains(&Call::CreateContainer("other".into())));
        assert!(fake.calls().is_empty());
        fake.remove(&c).await.expect("remove");
        assert!(fake.inspect(&c).await.expect_err("gone").is_not_found());
    }

    #[tokio::test]
    async fn networks_and_image_removal() {
        let fake = FakeRuntime::new();
        fake.add_image("busybox");
        let s = sandbox(&fake, "s").await;
        assert_eq!(fake.networks(), ["cluster"]);
        assert!(matches!(
            fake.remove_network("cluster").await,
            Err(RuntimeError::Conflict(_))
        ));
        let c = fake
            .create_container(&spec("c", &s, "busybox"))
            .await
            .expect("c");
        assert!(matches!(
            fake.remove_image("busybox").await,
            Err(RuntimeError::Conflict(_))
        ));
        fake.remove(&c).await.expect("rm");
        fake.remove(&s).await.expect("rm");
        fake.remove_image("busybox").await.expect("rmi");
        fake.remove_image("busybox").await.expect("missing is fine");
        fake.remove_network("cluster").await.expect("rm net");
        assert!(fake.networks().is_empty());
        assert_eq!(fake.version().await.expect("v"), "fake://0.0.1");
    }
}
