//! `DockerRuntime`: the kubelet's [`Runtime`] on the local Docker engine, through bollard.
//!
//! This is rkube's counterpart of dockershim / cri-dockerd: a pod sandbox is a pause container
//! on the cluster's bridge network, and each app container joins the sandbox's network and IPC
//! namespaces with `container:<sandbox>` modes. Where dockershim made a choice (swap disabled
//! under a memory limit, CFS quota with a 100ms period, a progress deadline on pulls,
//! `ipc=shareable` sandboxes) this file makes the same one and says so.
#![forbid(unsafe_code)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Display;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bollard::errors::Error as DockerError;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, ContainerStateStatusEnum, EventMessage,
    HostConfig, HostConfigLogConfig, NetworkCreateRequest,
};
use bollard::query_parameters::{
    AttachContainerOptions, CreateContainerOptionsBuilder, CreateImageOptionsBuilder,
    EventsOptions, ListContainersOptionsBuilder, ListNetworksOptionsBuilder, LogsOptionsBuilder,
    RemoveContainerOptionsBuilder, RemoveImageOptionsBuilder, ResizeContainerTTYOptions,
    ResizeExecOptions, StatsOptions, StopContainerOptionsBuilder,
};
use bollard::Docker;
use futures::stream::{BoxStream, StreamExt};
use tokio::sync::Mutex;

use super::pause::{
    pause_fingerprint, pause_image_changes, pause_image_tar, PAUSE_DIGEST_LABEL, PAUSE_IMAGE,
};
use super::runtime::{
    with_default_tag, Attached, ContainerSpec, ContainerState, ContainerStats, ExecResult,
    ExecSpec, ImageInfo, LogOptions, Output, RegistryAuth, RunState, Runtime, RuntimeError,
    RuntimeEvent, SandboxSpec, Terminal,
};

/// How long a pull may go without any progress message before it is cancelled: dockershim's
/// `--image-pull-progress-deadline` default. It also bounds a pull stuck on an unanswered DNS
/// query or a silent registry.
pub const DEFAULT_PULL_PROGRESS_DEADLINE: Duration = Duration::from_secs(60);

/// The CFS period the kubelet uses for CPU limits (`quotaPeriod`, 100ms).
pub const CPU_PERIOD_US: i64 = 100_000;

/// The smallest CFS quota the kubelet sets (`minQuotaPeriod`, 1ms).
const MIN_CPU_QUOTA_US: i64 = 1_000;

/// Upstream's OOM score for sandboxes (`PodInfraOOMAdj`), so the kernel kills app containers
/// before the process that holds the pod's namespaces. Opt-in through
/// [`DockerRuntime::with_sandbox_oom_score_adj`]: lowering a score needs CAP_SYS_RESOURCE, which
/// engines running inside a sandboxed environment may lack (on rkube's development machines
/// runc then fails every such start with "can't get final child's PID from pipe").
pub const UPSTREAM_SANDBOX_OOM_SCORE_ADJ: i64 = -998;

/// Label put on networks created by [`Runtime::ensure_network`], to tell them apart.
pub const NETWORK_LABEL: &str = "io.rkube.network";

/// Extra time allowed to the HTTP call that stops a container, past its grace period.
const STOP_CALL_SLACK: Duration = Duration::from_secs(30);

const EVENTS_BACKOFF_START: Duration = Duration::from_millis(100);
const EVENTS_BACKOFF_MAX: Duration = Duration::from_secs(10);

/// The [`Runtime`] backed by a Docker engine.
#[derive(Debug, Clone)]
pub struct DockerRuntime {
    docker: Docker,
    pause_image: String,
    pull_progress_deadline: Duration,
    sandbox_oom_score_adj: Option<i64>,
    sandbox_init: bool,
    /// Log rotation of containers (not sandboxes), as [`DockerRuntime::with_container_log_rotation`].
    container_log: Option<(u64, u32)>,
    // Serialise the check-then-create sequences, so that concurrent pod starts on one node do
    // not import the pause image twice or create the cluster network twice (engine 20.10
    // happily creates two networks of one name; see ensure_network for other processes).
    pause_lock: Arc<Mutex<()>>,
    network_lock: Arc<Mutex<()>>,
}

impl DockerRuntime {
    /// Connects to the local engine (`DOCKER_HOST` or the default socket) and settles on the API
    /// version both sides speak.
    pub async fn connect() -> Result<Self, RuntimeError> {
        let docker = Docker::connect_with_local_defaults()
            .map_err(|e| RuntimeError::Engine(format!("connecting to docker: {e}")))?;
        let docker = docker.negotiate_version().await.map_err(|e| {
            RuntimeError::Engine(format!("negotiating the docker API version: {e}"))
        })?;
        Ok(Self::from_docker(docker))
    }

    /// Wraps an already connected (and version-negotiated) client.
    pub fn from_docker(docker: Docker) -> Self {
        Self {
            docker,
            pause_image: PAUSE_IMAGE.to_string(),
            pull_progress_deadline: DEFAULT_PULL_PROGRESS_DEADLINE,
            sandbox_oom_score_adj: None,
            sandbox_init: true,
            container_log: None,
            pause_lock: Arc::default(),
            network_lock: Arc::default(),
        }
    }

    /// Uses another reference for the pause image (tests use one per test).
    pub fn with_pause_image(mut self, reference: impl Into<String>) -> Self {
        self.pause_image = reference.into();
        self
    }

    /// Changes how long a pull may show no progress before it is cancelled.
    pub fn with_pull_progress_deadline(mut self, deadline: Duration) -> Self {
        self.pull_progress_deadline = deadline;
        self
    }

    /// Sets the OOM score adjustment of sandboxes (see [`UPSTREAM_SANDBOX_OOM_SCORE_ADJ`]).
    pub fn with_sandbox_oom_score_adj(mut self, adj: Option<i64>) -> Self {
        self.sandbox_oom_score_adj = adj;
        self
    }

    /// Whether sandboxes run the engine's init (docker-init) as PID 1 in front of pause; on by
    /// default, see `create_sandbox`. Turn it off for engines installed without docker-init:
    /// sandboxes then take their whole grace period to stop.
    /// Rotates each container's log at `max_size` bytes and keeps `max_files` files, as the
    /// kubelet's `containerLogMaxSize` and `containerLogMaxFiles` do upstream (Docker's
    /// `json-file` driver with `max-size` and `max-file`), whatever the engine's defaults.
    pub fn with_container_log_rotation(mut self, max_size: u64, max_files: u32) -> Self {
        self.container_log = Some((max_size, max_files));
        self
    }

    pub fn with_sandbox_init(mut self, init: bool) -> Self {
        self.sandbox_init = init;
        self
    }

    /// The bollard client, for callers that need more than the trait.
    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// The pause image reference sandboxes run.
    pub fn pause_image(&self) -> &str {
        &self.pause_image
    }

    /// `docker import`: makes an image named `reference` whose root filesystem is the given
    /// tar archive, with Dockerfile-style `changes` (`CMD […]`, `ENV …`, `LABEL …`) applied.
    pub async fn import_image(
        &self,
        reference: &str,
        tar: Vec<u8>,
        changes: Vec<String>,
    ) -> Result<ImageInfo, RuntimeError> {
        let context = format!("importing image {reference:?}");
        let (repo, tag) = split_tag(reference);
        let mut options = CreateImageOptionsBuilder::default()
            .from_src("-")
            .repo(repo)
            .changes(changes);
        if let Some(tag) = tag {
            options = options.tag(tag);
        }
        let mut progress = self.docker.create_image(
            Some(options.build()),
            Some(bollard::body_full(tar.into())),
            None,
        );
        while let Some(item) = progress.next().await {
            item.map_err(|e| engine_error(&context, e))?;
        }
        self.image(reference).await?.ok_or_else(|| {
            RuntimeError::Engine(format!(
                "{context}: the engine reported no image afterwards"
            ))
        })
    }

    async fn create_named(
        &self,
        name: &str,
        body: ContainerCreateBody,
    ) -> Result<String, RuntimeError> {
        let options = CreateContainerOptionsBuilder::default().name(name).build();
        let created = self
            .docker
            .create_container(Some(options), body)
            .await
            .map_err(|e| engine_error(format!("creating container {name:?}"), e))?;
        for warning in created.warnings {
            tracing::warn!(container = name, "{warning}");
        }
        Ok(created.id)
    }

    /// The networks called exactly `name` (the engine's name filter also matches substrings).
    /// The gateway of the network `name` (this host's address on it, where Pods reach the
    /// host), if the network exists and has one.
    pub async fn network_gateway(&self, name: &str) -> Result<Option<String>, RuntimeError> {
        let networks = self.networks_named(name).await?;
        Ok(networks
            .iter()
            .filter_map(|n| n.ipam.as_ref()?.config.as_ref())
            .flatten()
            .filter_map(|c| c.gateway.clone())
            .find(|g| g.parse::<std::net::Ipv4Addr>().is_ok()))
    }

    async fn networks_named(
        &self,
        name: &str,
    ) -> Result<Vec<bollard::models::Network>, RuntimeError> {
        let filters = HashMap::from([("name".to_string(), vec![name.to_string()])]);
        let options = ListNetworksOptionsBuilder::default()
            .filters(&filters)
            .build();
        let networks = self
            .docker
            .list_networks(Some(options))
            .await
            .map_err(|e| engine_error(format!("listing networks named {name:?}"), e))?;
        Ok(networks
            .into_iter()
            .filter(|n| n.name.as_deref() == Some(name))
            .collect())
    }

    async fn import_pause_image(&self) -> Result<ImageInfo, RuntimeError> {
        tracing::info!(image = %self.pause_image, "importing the built-in pause image");
        self.import_image(&self.pause_image, pause_image_tar(), pause_image_changes())
            .await
    }
}

#[async_trait::async_trait]
impl Runtime for DockerRuntime {
    async fn version(&self) -> Result<String, RuntimeError> {
        let version = self
            .docker
            .version()
            .await
            .map_err(|e| engine_error("asking docker for its version", e))?;
        Ok(format!("docker://{}", version.version.unwrap_or_default()))
    }

    async fn ensure_pause_image(&self) -> Result<String, RuntimeError> {
        let _serial = self.pause_lock.lock().await;
        let context = format!("inspecting image {:?}", self.pause_image);
        match self.docker.inspect_image(&self.pause_image).await {
            Ok(existing) => {
                let fingerprint = existing
                    .config
                    .and_then(|c| c.labels)
                    .and_then(|labels| labels.get(PAUSE_DIGEST_LABEL).cloned());
                if fingerprint.as_deref() == Some(pause_fingerprint().as_str()) {
                    return Ok(self.pause_image.clone());
                }
                // Same version, different binary (a development rebuild): replace it, and
                // drop the old image unless running sandboxes still use it.
                self.import_pause_image().await?;
                if let Some(old) = existing.id {
                    let options = RemoveImageOptionsBuilder::default().build();
                    if let Err(e) = self.docker.remove_image(&old, Some(options), None).await {
                        tracing::debug!(image = %old, "stale pause image kept: {e}");
                    }
                }
            }
            Err(DockerError::DockerResponseServerError {
                status_code: 404, ..
            }) => {
                self.import_pause_image().await?;
            }
            Err(e) => return Err(engine_error(context, e)),
        }
        Ok(self.pause_image.clone())
    }

    async fn ensure_network(&self, name: &str) -> Result<(), RuntimeError> {
        let _serial = self.network_lock.lock().await;
        let mut existing = self.networks_named(name).await?;
        if existing.is_empty() {
            let request = NetworkCreateRequest {
                name: name.to_string(),
                driver: Some("bridge".to_string()),
                labels: Some(HashMap::from([(
                    NETWORK_LABEL.to_string(),
                    name.to_string(),
                )])),
                ..Default::default()
            };
            self.docker
                .create_network(request)
                .await
                .map_err(|e| engine_error(format!("creating network {name:?}"), e))?;
            existing = self.networks_named(name).await?;
        }
        if existing.len() > 1 {
            // Before API 1.44 the engine lets two creators race to two networks of one name,
            // after which attaching by name fails as "ambiguous". Every caller that sees the
            // duplicates keeps the same one (the oldest, then the lowest ID) and removes the
            // rest, so racing kubelets converge.
            existing.sort_by_key(|n| {
                let created = serde_json::to_value(&n.created)
                    .ok()
                    .and_then(|v| v.as_str().and_then(parse_time));
                (created, n.id.clone())
            });
            for duplicate in existing.iter().skip(1) {
                let Some(id) = &duplicate.id else { continue };
                tracing::debug!(network = name, id = %id, "removing a duplicate network");
                if let Err(e) = self.docker.remove_network(id).await {
                    tracing::warn!(network = name, "cannot remove duplicate network {id}: {e}");
                }
            }
        }
        Ok(())
    }

    async fn remove_network(&self, name: &str) -> Result<(), RuntimeError> {
        let context = format!("removing network {name:?}");
        // Remove every network of that name by ID (old engines may hold several, see
        // ensure_network).
        for network in self.networks_named(name).await? {
            let Some(id) = network.id else { continue };
            match self.docker.remove_network(&id).await {
                Ok(()) => {}
                Err(DockerError::DockerResponseServerError {
                    status_code: 404, ..
                }) => {}
                Err(DockerError::DockerResponseServerError {
                    status_code: 403 | 409,
                    message,
                }) => return Err(RuntimeError::Conflict(format!("{context}: {message}"))),
                Err(e) => return Err(engine_error(&context, e)),
            }
        }
        Ok(())
    }

    async fn image(&self, reference: &str) -> Result<Option<ImageInfo>, RuntimeError> {
        match self.docker.inspect_image(reference).await {
            Ok(image) => Ok(Some(ImageInfo {
                id: image.id.unwrap_or_default(),
                repo_digests: image.repo_digests.unwrap_or_default(),
                repo_tags: image.repo_tags.unwrap_or_default(),
            })),
            Err(DockerError::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(e) => Err(engine_error(format!("inspecting image {reference:?}"), e)),
        }
    }

    async fn pull(
        &self,
        reference: &str,
        auth: Option<&RegistryAuth>,
    ) -> Result<ImageInfo, RuntimeError> {
        let reference = with_default_tag(reference);
        let options = CreateImageOptionsBuilder::default()
            .from_image(&reference)
            .build();
        let credentials = auth.map(|a| bollard::auth::DockerCredentials {
            username: Some(a.username.clone()),
            password: Some(a.password.clone()),
            serveraddress: Some(a.server.clone()),
            ..Default::default()
        });
        let mut progress = self.docker.create_image(Some(options), None, credentials);
        loop {
            match tokio::time::timeout(self.pull_progress_deadline, progress.next()).await {
                Err(_) => {
                    return Err(RuntimeError::Pull(format!(
                        "pulling image {reference:?}: cancelled after no progress for {:?}",
                        self.pull_progress_deadline
                    )))
                }
                Ok(None) => break,
                Ok(Some(Ok(info))) => {
                    tracing::trace!(image = %reference, status = ?info.status, "pull progress");
                }
                Ok(Some(Err(e))) => return Err(pull_error(&reference, e)),
            }
        }
        self.image(&reference).await?.ok_or_else(|| {
            RuntimeError::ImageNotFound(format!(
                "pulling image {reference:?}: the engine reported success but has no such image"
            ))
        })
    }

    async fn remove_image(&self, reference: &str) -> Result<(), RuntimeError> {
        let options = RemoveImageOptionsBuilder::default().build();
        match self
            .docker
            .remove_image(reference, Some(options), None)
            .await
        {
            Ok(_)
            | Err(DockerError::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(e) => Err(engine_error(format!("removing image {reference:?}"), e)),
        }
    }

    async fn create_sandbox(&self, spec: &SandboxSpec) -> Result<String, RuntimeError> {
        // Like dockershim's RunPodSandbox: make sure the image is there, create, start.
        let image = self.ensure_pause_image().await?;
        let body = ContainerCreateBody {
            image: Some(image),
            // A Pod on the host's network has the node's hostname, as upstream.
            hostname: (!spec.host_network).then(|| spec.hostname.clone()),
            labels: Some(to_hash_map(&spec.labels)),
            exposed_ports: exposed_ports(&spec.exposed_ports),
            host_config: Some(HostConfig {
                network_mode: Some(if spec.host_network {
                    "host".to_string()
                } else {
                    spec.network.clone()
                }),
                // Containers can only join the IPC namespace of a "shareable" one
                // (dockershim sets this since Docker 17.06 made "private" the default).
                ipc_mode: Some(if spec.host_ipc { "host" } else { "shareable" }.to_string()),
                pid_mode: spec.host_pid.then(|| "host".to_string()),
                // The engine's init (tini) is PID 1 and forwards SIGTERM to pause, which has
                // no handler of its own (see pause/pause.rs): sandboxes then stop at once
                // instead of waiting out the grace period.
                init: Some(self.sandbox_init),
                oom_score_adj: self.sandbox_oom_score_adj,
                ..Default::default()
            }),
            ..Default::default()
        };
        let id = self.create_named(&spec.name, body).await?;
        if let Err(e) = self.start(&id).await {
            // A sandbox that cannot start is of no use, and leaving it would keep its name
            // taken for the kubelet's next attempt.
            let _ = self.remove(&id).await;
            return Err(e);
        }
        Ok(id)
    }

    async fn create_container(&self, spec: &ContainerSpec) -> Result<String, RuntimeError> {
        let sandbox = format!("container:{}", spec.sandbox_id);
        let binds: Vec<String> = spec
            .mounts
            .iter()
            .map(|m| {
                let mode = if m.read_only { ":ro" } else { "" };
                format!("{}:{}{mode}", m.host_path, m.container_path)
            })
            .collect();
        let tmpfs: HashMap<String, String> = spec
            .tmpfs
            .iter()
            .map(|path| (path.clone(), String::new()))
            .collect();
        let (cpu_quota, cpu_period) = match spec.cpu_limit_milli {
            Some(milli) if milli > 0 => (Some(milli_cpu_to_quota(milli)), Some(CPU_PERIOD_US)),
            _ => (None, None),
        };
        let host_config = HostConfig {
            // Joining the sandbox's network namespace also gives the container the sandbox's
            // hostname, /etc/hosts and /etc/resolv.conf: the engine copies them, so the UTS
            // namespace needs no mode of its own (as with dockershim).
            network_mode: Some(sandbox.clone()),
            ipc_mode: Some(if spec.host_ipc {
                "host".to_string()
            } else {
                sandbox
            }),
            pid_mode: spec.pid_mode.clone(),
            log_config: self.container_log.map(|(size, files)| HostConfigLogConfig {
                typ: Some("json-file".to_string()),
                config: Some(HashMap::from([
                    ("max-size".to_string(), size.to_string()),
                    ("max-file".to_string(), files.to_string()),
                ])),
            }),
            binds: non_empty(binds),
            tmpfs: (!tmpfs.is_empty()).then_some(tmpfs),
            // dockershim sets MemorySwap to the limit: no swap beyond the memory limit.
            memory: spec.memory_limit,
            memory_swap: spec.memory_limit,
            cpu_quota,
            cpu_period,
            cpu_shares: spec.cpu_shares,
            privileged: spec.privileged.then_some(true),
            cap_add: non_empty(spec.cap_add.clone()),
            cap_drop: non_empty(spec.cap_drop.clone()),
            ..Default::default()
        };
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            // Kubernetes `command` is Docker's entrypoint and `args` its CMD; an empty list
            // means "the image's default", not "nothing".
            entrypoint: spec.command.clone().and_then(non_empty),
            cmd: spec.args.clone().and_then(non_empty),
            env: non_empty(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            working_dir: spec.working_dir.clone().filter(|d| !d.is_empty()),
            labels: Some(to_hash_map(&spec.labels)),
            user: spec.user.clone().filter(|u| !u.is_empty()),
            tty: Some(spec.tty),
            open_stdin: Some(spec.stdin),
            attach_stdin: Some(spec.stdin),
            stdin_once: Some(spec.stdin_once),
            host_config: Some(host_config),
            ..Default::default()
        };
        self.create_named(&spec.name, body).await
    }

    async fn start(&self, id: &str) -> Result<(), RuntimeError> {
        self.docker
            .start_container(id, None)
            .await
            .map_err(|e| engine_error(format!("starting container {id:?}"), e))
    }

    async fn stop(&self, id: &str, grace: Duration) -> Result<(), RuntimeError> {
        // The engine takes whole seconds; round up so the container never gets less time.
        let secs = grace.as_secs() + u64::from(grace.subsec_nanos() > 0);
        let options = StopContainerOptionsBuilder::default()
            .t(i32::try_from(secs).unwrap_or(i32::MAX))
            .build();
        // The engine answers only once the container is down, so the HTTP call must be allowed
        // to outlast the grace period.
        let client = self.docker.clone().with_timeout(grace + STOP_CALL_SLACK);
        client
            .stop_container(id, Some(options))
            .await
            .map_err(|e| engine_error(format!("stopping container {id:?}"), e))
    }

    async fn remove(&self, id: &str) -> Result<(), RuntimeError> {
        // As dockershim's RemoveContainer: force (kill if running), and drop anonymous volumes.
        let options = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        match self.docker.remove_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(DockerError::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(DockerError::DockerResponseServerError {
                status_code: 409,
                message,
            }) if message.contains("already in progress") => Ok(()),
            Err(e) => Err(engine_error(format!("removing container {id:?}"), e)),
        }
    }

    async fn list(
        &self,
        label_filter: &[(String, String)],
    ) -> Result<Vec<ContainerState>, RuntimeError> {
        let labels: Vec<String> = label_filter
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let filters = HashMap::from([("label".to_string(), labels)]);
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        let summaries = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(|e| engine_error("listing containers", e))?;
        // The list lacks exit codes, OOM flags and times, so inspect each (as the kubelet's
        // relist does); one that vanished in between is simply gone.
        let ids: Vec<String> = summaries.into_iter().filter_map(|s| s.id).collect();
        let inspected: Vec<Result<ContainerState, RuntimeError>> = futures::stream::iter(ids)
            .map(|id| async move { self.inspect(&id).await })
            .buffered(8)
            .collect()
            .await;
        let mut states = Vec::with_capacity(inspected.len());
        for state in inspected {
            match state {
                Ok(state) => states.push(state),
                Err(RuntimeError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        states.sort_by(|a, b| (a.created_at, &a.name).cmp(&(b.created_at, &b.name)));
        Ok(states)
    }

    async fn inspect(&self, id: &str) -> Result<ContainerState, RuntimeError> {
        let inspected = self
            .docker
            .inspect_container(id, None)
            .await
            .map_err(|e| engine_error(format!("inspecting container {id:?}"), e))?;
        Ok(container_state(inspected))
    }

    async fn exec(
        &self,
        id: &str,
        cmd: &[String],
        timeout: Duration,
    ) -> Result<ExecResult, RuntimeError> {
        let context = format!("exec {cmd:?} in container {id:?}");
        let run = async {
            let created = self
                .docker
                .create_exec(
                    id,
                    CreateExecOptions {
                        attach_stdout: Some(true),
                        attach_stderr: Some(true),
                        cmd: Some(cmd.to_vec()),
                        ..Default::default()
                    },
                )
                .await
                .map_err(|e| engine_error(&context, e))?;
            let mut output = Vec::new();
            match self
                .docker
                .start_exec(&created.id, None)
                .await
                .map_err(|e| engine_error(&context, e))?
            {
                StartExecResults::Attached {
                    output: mut stream, ..
                } => {
                    while let Some(chunk) = stream.next().await {
                        let chunk = chunk.map_err(|e| engine_error(&context, e))?;
                        output.extend_from_slice(&chunk.into_bytes());
                    }
                }
                StartExecResults::Detached => {}
            }
            // The output ends when the process closes its streams; its exit code is recorded
            // a moment later.
            loop {
                let inspected = self
                    .docker
                    .inspect_exec(&created.id)
                    .await
                    .map_err(|e| engine_error(&context, e))?;
                if inspected.running != Some(true) {
                    return Ok(ExecResult {
                        exit_code: inspected.exit_code.unwrap_or_default(),
                        output,
                    });
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        match tokio::time::timeout(timeout, run).await {
            Ok(result) => result,
            Err(_) => Err(RuntimeError::Timeout(format!(
                "{context}: timed out after {timeout:?}"
            ))),
        }
    }

    async fn exec_attached(&self, id: &str, spec: &ExecSpec) -> Result<Attached, RuntimeError> {
        let context = format!("exec {:?} in container {id:?}", spec.cmd);
        let created = self
            .docker
            .create_exec(
                id,
                CreateExecOptions {
                    attach_stdin: Some(spec.stdin),
                    attach_stdout: Some(spec.stdout),
                    attach_stderr: Some(spec.stderr && !spec.tty),
                    tty: Some(spec.tty),
                    cmd: Some(spec.cmd.clone()),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| engine_error(&context, e))?;
        let started = self
            .docker
            .start_exec(
                &created.id,
                Some(StartExecOptions {
                    detach: false,
                    tty: spec.tty,
                    output_capacity: None,
                }),
            )
            .await
            .map_err(|e| engine_error(&context, e))?;
        match started {
            StartExecResults::Attached { output, input } => Ok(Attached {
                terminal: Terminal::Exec(created.id),
                output: attached_output(output, context),
                input,
            }),
            StartExecResults::Detached => Err(RuntimeError::Engine(format!(
                "{context}: the engine started the command detached"
            ))),
        }
    }

    async fn exec_exit_code(&self, exec_id: &str) -> Result<Option<i64>, RuntimeError> {
        let inspected = self
            .docker
            .inspect_exec(exec_id)
            .await
            .map_err(|e| engine_error(format!("inspecting exec {exec_id:?}"), e))?;
        Ok(if inspected.running == Some(true) {
            None
        } else {
            Some(inspected.exit_code.unwrap_or_default())
        })
    }

    async fn attach(&self, id: &str, stdin: bool, replay: bool) -> Result<Attached, RuntimeError> {
        let context = format!("attaching to container {id:?}");
        let options = AttachContainerOptions {
            stdin,
            stdout: true,
            stderr: true,
            stream: true,
            logs: replay,
            detach_keys: None,
        };
        let attached = self
            .docker
            .attach_container(id, Some(options))
            .await
            .map_err(|e| engine_error(&context, e))?;
        Ok(Attached {
            terminal: Terminal::Container(id.to_string()),
            output: attached_output(attached.output, context),
            input: attached.input,
        })
    }

    async fn stats(&self, id: &str) -> Result<ContainerStats, RuntimeError> {
        let context = format!("reading the statistics of container {id:?}");
        // Not one-shot: the engine samples twice, a second apart, so the CPU use is a rate.
        let options = StatsOptions {
            stream: false,
            one_shot: false,
        };
        let sample = self
            .docker
            .stats(id, Some(options))
            .next()
            .await
            .ok_or_else(|| RuntimeError::Engine(format!("{context}: no sample")))?
            .map_err(|e| engine_error(&context, e))?;
        let total = |cpu: &Option<bollard::models::ContainerCpuStats>| {
            cpu.as_ref()
                .and_then(|c| c.cpu_usage.as_ref())
                .and_then(|u| u.total_usage)
                .unwrap_or(0)
        };
        let nanos = |t: &Option<String>| {
            t.as_deref()
                .and_then(|t| t.parse::<jiff::Timestamp>().ok())
                .map(|t| t.as_nanosecond())
        };
        let used = total(&sample.cpu_stats).saturating_sub(total(&sample.precpu_stats));
        let cpu_nano_cores = match (nanos(&sample.read), nanos(&sample.preread)) {
            (Some(now), Some(before)) if now > before && before > 0 => {
                let elapsed = (now - before) as u128;
                u64::try_from(u128::from(used) * 1_000_000_000 / elapsed).unwrap_or(u64::MAX)
            }
            _ => 0,
        };
        let memory = sample.memory_stats.unwrap_or_default();
        let inactive = memory
            .stats
            .as_ref()
            .and_then(|s| {
                s.get("inactive_file")
                    .or_else(|| s.get("total_inactive_file"))
            })
            .copied()
            .unwrap_or(0);
        Ok(ContainerStats {
            cpu_nano_cores,
            memory_working_set_bytes: memory.usage.unwrap_or(0).saturating_sub(inactive),
        })
    }

    async fn resize(
        &self,
        terminal: &Terminal,
        width: u16,
        height: u16,
    ) -> Result<(), RuntimeError> {
        let (w, h) = (i32::from(width), i32::from(height));
        match terminal {
            Terminal::Exec(id) => self
                .docker
                .resize_exec(id, ResizeExecOptions { w, h })
                .await
                .map_err(|e| engine_error(format!("resizing exec {id:?}"), e)),
            Terminal::Container(id) => self
                .docker
                .resize_container_tty(id, ResizeContainerTTYOptions { w, h })
                .await
                .map_err(|e| engine_error(format!("resizing container {id:?}"), e)),
        }
    }

    async fn logs(&self, id: &str, options: &LogOptions) -> Result<Vec<u8>, RuntimeError> {
        let options = LogOptions {
            follow: false,
            ..options.clone()
        };
        let mut stream = self.log_stream(id, &options).await?;
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(out)
    }

    async fn log_stream(
        &self,
        id: &str,
        options: &LogOptions,
    ) -> Result<BoxStream<'static, Result<bytes::Bytes, RuntimeError>>, RuntimeError> {
        let context = format!("reading logs of container {id:?}");
        let tail = options
            .tail
            .map_or_else(|| "all".to_string(), |n| n.to_string());
        // The API (as bollard types it) takes whole seconds, which is also what dockershim
        // passed on; lines from earlier in that second may be included.
        let since = options.since.map_or(0, |t| {
            i32::try_from(t.as_second().max(0)).unwrap_or(i32::MAX)
        });
        let request = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .follow(options.follow)
            .timestamps(options.timestamps)
            .tail(&tail)
            .since(since)
            .build();
        let mut stream = self.docker.logs(id, Some(request)).map(move |chunk| {
            chunk
                .map(|c| c.into_bytes())
                .map_err(|e| engine_error(&context, e))
        });
        // The engine answers a missing container with an error as the first item.
        let first = match stream.next().await {
            Some(Err(e)) => return Err(e),
            first => first,
        };
        Ok(futures::stream::iter(first).chain(stream).boxed())
    }

    fn events(&self, label: (String, String)) -> BoxStream<'static, RuntimeEvent> {
        let feed = EventFeed {
            docker: self.docker.clone(),
            label: format!("{}={}", label.0, label.1),
            since_nanos: now_nanos(),
            seen_at_since: HashSet::new(),
            current: None,
            backoff: EVENTS_BACKOFF_START,
        };
        futures::stream::unfold(feed, |mut feed| async move {
            let event = feed.next_event().await;
            Some((event, feed))
        })
        .boxed()
    }
}

/// A `docker events` subscription that reconnects after failures, resuming from the last event
/// seen so nothing in the gap is lost (the engine replays recent events given `since`).
struct EventFeed {
    docker: Docker,
    label: String,
    /// Time of the last event delivered (or of the subscription), in Unix nanoseconds.
    since_nanos: i128,
    /// `(id, action)` of the events already delivered at exactly `since_nanos`, which a replay
    /// sends again.
    seen_at_since: HashSet<(String, String)>,
    current: Option<BoxStream<'static, Result<EventMessage, DockerError>>>,
    backoff: Duration,
}

impl EventFeed {
    async fn next_event(&mut self) -> RuntimeEvent {
        loop {
            let stream = match &mut self.current {
                Some(stream) => stream,
                None => self.current.insert(self.connect()),
            };
            match stream.next().await {
                Some(Ok(message)) => {
                    self.backoff = EVENTS_BACKOFF_START;
                    if let Some(event) = self.accept(message) {
                        return event;
                    }
                }
                Some(Err(e)) => {
                    tracing::warn!(label = %self.label, "docker event stream broke: {e}");
                    self.reconnect_later().await;
                }
                None => {
                    tracing::debug!(label = %self.label, "docker event stream ended");
                    self.reconnect_later().await;
                }
            }
        }
    }

    fn connect(&self) -> BoxStream<'static, Result<EventMessage, DockerError>> {
        let filters = HashMap::from([
            ("type".to_string(), vec!["container".to_string()]),
            ("label".to_string(), vec![self.label.clone()]),
        ]);
        let since = format!(
            "{}.{:09}",
            self.since_nanos.div_euclid(1_000_000_000),
            self.since_nanos.rem_euclid(1_000_000_000)
        );
        let options = EventsOptions {
            since: Some(since),
            until: None,
            filters: Some(filters),
        };
        self.docker.events(Some(options)).boxed()
    }

    async fn reconnect_later(&mut self) {
        self.current = None;
        tokio::time::sleep(self.backoff).await;
        self.backoff = (self.backoff * 2).min(EVENTS_BACKOFF_MAX);
    }

    /// Turns a message into an event, dropping what a replay repeats.
    fn accept(&mut self, message: EventMessage) -> Option<RuntimeEvent> {
        let actor = message.actor.unwrap_or_default();
        let id = actor.id.unwrap_or_default();
        let action = message.action.unwrap_or_default();
        let nanos = message
            .time_nano
            .map(i128::from)
            .or_else(|| message.time.map(|s| i128::from(s) * 1_000_000_000))
            .unwrap_or(self.since_nanos);
        let key = (id.clone(), action.clone());
        if nanos < self.since_nanos
            || (nanos == self.since_nanos && self.seen_at_since.contains(&key))
        {
            return None;
        }
        if nanos > self.since_nanos {
            self.since_nanos = nanos;
            self.seen_at_since.clear();
        }
        self.seen_at_since.insert(key);
        Some(RuntimeEvent {
            id,
            action,
            labels: actor.attributes.unwrap_or_default().into_iter().collect(),
            time: jiff::Timestamp::from_nanosecond(nanos).ok(),
        })
    }
}

fn now_nanos() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i128::try_from(d.as_nanos()).unwrap_or(i128::MAX))
}

/// Converts a Docker inspect answer into the runtime's snapshot.
fn container_state(inspected: ContainerInspectResponse) -> ContainerState {
    let config = inspected.config.unwrap_or_default();
    let state = inspected.state.unwrap_or_default();
    let run_state = match state.status {
        Some(ContainerStateStatusEnum::RUNNING)
        | Some(ContainerStateStatusEnum::PAUSED)
        | Some(ContainerStateStatusEnum::RESTARTING) => RunState::Running,
        Some(ContainerStateStatusEnum::EXITED)
        | Some(ContainerStateStatusEnum::DEAD)
        | Some(ContainerStateStatusEnum::REMOVING)
        | Some(ContainerStateStatusEnum::STOPPING) => RunState::Exited,
        Some(ContainerStateStatusEnum::CREATED) | Some(ContainerStateStatusEnum::EMPTY) | None => {
            RunState::Created
        }
    };
    // Sort the networks so "the" IP is stable when a container has several.
    let networks: BTreeMap<String, String> = inspected
        .network_settings
        .and_then(|n| n.networks)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(name, endpoint)| endpoint.ip_address.map(|ip| (name, ip)))
        .filter(|(_, ip)| !ip.is_empty())
        .collect();
    ContainerState {
        id: inspected.id.unwrap_or_default(),
        name: inspected
            .name
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_string(),
        labels: config.labels.unwrap_or_default().into_iter().collect(),
        image: config.image.unwrap_or_default(),
        image_id: inspected.image.unwrap_or_default(),
        state: run_state,
        exit_code: state.exit_code.unwrap_or_default(),
        oom_killed: state.oom_killed.unwrap_or_default(),
        error: state.error.unwrap_or_default(),
        // `created` is typed by bollard's date feature (a string by default, chrono or time
        // when enabled); all of them serialise to RFC 3339, so go through JSON.
        created_at: serde_json::to_value(&inspected.created)
            .ok()
            .and_then(|v| v.as_str().and_then(parse_time)),
        started_at: state.started_at.as_deref().and_then(parse_time),
        finished_at: state.finished_at.as_deref().and_then(parse_time),
        ip: networks.into_values().next(),
    }
}

/// Parses an engine time; the engine writes year 1 for "never".
fn parse_time(text: &str) -> Option<jiff::Timestamp> {
    text.parse::<jiff::Timestamp>()
        .ok()
        .filter(|t| t.as_second() > 0)
}

/// The kubelet's `milliCPUToQuota`: the CFS quota for a CPU limit, never below 1ms.
pub fn milli_cpu_to_quota(milli: i64) -> i64 {
    (milli.saturating_mul(CPU_PERIOD_US) / 1000).max(MIN_CPU_QUOTA_US)
}

/// `repo[:tag]` split at the tag's colon (a colon before the last slash is a registry port).
fn split_tag(reference: &str) -> (&str, Option<&str>) {
    let name_start = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[name_start..].rfind(':') {
        Some(i) => (
            &reference[..name_start + i],
            Some(&reference[name_start + i + 1..]),
        ),
        None => (reference, None),
    }
}

fn exposed_ports(ports: &[(u16, String)]) -> Option<Vec<String>> {
    non_empty(
        ports
            .iter()
            .map(|(port, protocol)| format!("{port}/{}", protocol.to_ascii_lowercase()))
            .collect(),
    )
}

fn non_empty<T>(items: Vec<T>) -> Option<Vec<T>> {
    (!items.is_empty()).then_some(items)
}

fn to_hash_map(labels: &BTreeMap<String, String>) -> HashMap<String, String> {
    labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// Maps a bollard error to the runtime's, prefixed with what was being done.
/// An attached process's output as the runtime trait speaks it.
fn attached_output(
    output: std::pin::Pin<
        Box<dyn futures::Stream<Item = Result<bollard::container::LogOutput, DockerError>> + Send>,
    >,
    context: String,
) -> BoxStream<'static, Result<Output, RuntimeError>> {
    use bollard::container::LogOutput;
    output
        .filter_map(move |chunk| {
            let out = match chunk {
                Ok(LogOutput::StdErr { message }) => Some(Ok(Output::Stderr(message))),
                Ok(LogOutput::StdOut { message } | LogOutput::Console { message }) => {
                    Some(Ok(Output::Stdout(message)))
                }
                Ok(LogOutput::StdIn { .. }) => None,
                Err(e) => Some(Err(engine_error(&context, e))),
            };
            futures::future::ready(out)
        })
        .boxed()
}

fn engine_error(context: impl Display, error: DockerError) -> RuntimeError {
    match error {
        DockerError::DockerResponseServerError {
            status_code: 404,
            message,
        } => {
            if message.starts_with("No such image") {
                RuntimeError::ImageNotFound(format!("{context}: {message}"))
            } else {
                RuntimeError::NotFound(format!("{context}: {message}"))
            }
        }
        DockerError::DockerResponseServerError {
            status_code: 409,
            message,
        } => RuntimeError::Conflict(format!("{context}: {message}")),
        DockerError::DockerResponseServerError { message, .. } => {
            RuntimeError::Engine(format!("{context}: {message}"))
        }
        DockerError::RequestTimeoutError => {
            RuntimeError::Timeout(format!("{context}: docker did not answer in time"))
        }
        other => RuntimeError::Engine(format!("{context}: {other}")),
    }
}

/// Maps a pull failure, keeping the engine's words (the kubelet shows them under
/// `ErrImagePull`) and telling "no such image" apart from "could not reach the registry".
fn pull_error(reference: &str, error: DockerError) -> RuntimeError {
    let message = match error {
        DockerError::DockerResponseServerError { message, .. } => message,
        DockerError::DockerStreamError { error } => error,
        other => other.to_string(),
    };
    let text = format!("pulling image {reference:?}: {message}");
    let lower = message.to_ascii_lowercase();
    let missing = [
        "manifest unknown",
        "not found",
        "pull access denied",
        "repository does not exist",
    ]
    .iter()
    .any(|needle| lower.contains(needle));
    if missing {
        RuntimeError::ImageNotFound(text)
    } else {
        RuntimeError::Pull(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_quota_follows_the_kubelet() {
        assert_eq!(milli_cpu_to_quota(1000), 100_000);
        assert_eq!(milli_cpu_to_quota(250), 25_000);
        assert_eq!(milli_cpu_to_quota(5), MIN_CPU_QUOTA_US);
    }

    #[test]
    fn tags_split_after_the_last_slash() {
        assert_eq!(
            split_tag("rkube/pause:0.1.0"),
            ("rkube/pause", Some("0.1.0"))
        );
        assert_eq!(
            split_tag("localhost:5000/app"),
            ("localhost:5000/app", None)
        );
        assert_eq!(split_tag("app"), ("app", None));
    }

    #[test]
    fn pull_errors_keep_the_engine_text() {
        let dns = DockerError::DockerResponseServerError {
            status_code: 500,
            message: "Get \"https://registry-1.docker.io/v2/\": dial tcp: no such host".into(),
        };
        let err = pull_error("x:1", dns);
        assert!(matches!(err, RuntimeError::Pull(_)), "{err:?}");
        assert!(err.to_string().contains("no such host"));
        let denied = DockerError::DockerResponseServerError {
            status_code: 404,
            message: "pull access denied for x, repository does not exist".into(),
        };
        assert!(matches!(
            pull_error("x:1", denied),
            RuntimeError::ImageNotFound(_)
        ));
    }

    #[test]
    fn never_is_no_time() {
        assert_eq!(parse_time("0001-01-01T00:00:00Z"), None);
        assert!(parse_time("2024-05-01T10:00:00.123456789Z").is_some());
    }
}
