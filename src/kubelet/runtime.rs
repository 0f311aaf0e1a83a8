//! The kubelet's view of a container engine: the `Runtime` trait and the plain types it speaks.
//!
//! This plays the role the CRI plays for the upstream kubelet (and that dockershim filled for
//! Docker): everything the kubelet needs from an engine — sandboxes, containers, images, exec,
//! logs and lifecycle events — and nothing that knows about Pods. The Kubernetes meaning
//! (names, labels, restart policy, probes) lives in the kubelet above this trait, so the same
//! kubelet logic runs against Docker (`docker.rs`) or against the scripted in-memory engine
//! (`fake.rs`) in unit tests.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::time::Duration;

use futures::stream::BoxStream;

/// What a container engine must offer the kubelet.
#[async_trait::async_trait]
pub trait Runtime: Send + Sync {
    /// The engine's name and version, e.g. `docker://20.10.24+dfsg1`, as shown in
    /// `Node.status.nodeInfo.containerRuntimeVersion`.
    async fn version(&self) -> Result<String, RuntimeError>;

    /// Makes sure the pause image is present locally, building it when missing (it is never
    /// pulled); returns the reference sandboxes run.
    async fn ensure_pause_image(&self) -> Result<String, RuntimeError>;

    /// Makes sure the named bridge network (one per cluster) exists, creating it if missing.
    async fn ensure_network(&self, name: &str) -> Result<(), RuntimeError>;

    /// Removes the named network; a missing network is not an error.
    async fn remove_network(&self, name: &str) -> Result<(), RuntimeError>;

    /// The local image with this reference (or ID), `None` when the node does not have it.
    async fn image(&self, reference: &str) -> Result<Option<ImageInfo>, RuntimeError>;

    /// Pulls the image, with the registry credentials given if any; a reference without tag
    /// or digest means `:latest`, as the kubelet's
    /// `applyDefaultImageTag` does. Failures carry the engine's own text, which the kubelet shows
    /// under `ErrImagePull`.
    async fn pull(
        &self,
        reference: &str,
        auth: Option<&RegistryAuth>,
    ) -> Result<ImageInfo, RuntimeError>;

    /// Removes a local image (image garbage collection); a missing image is not an error.
    async fn remove_image(&self, reference: &str) -> Result<(), RuntimeError>;

    /// Creates and starts a pod sandbox: the pause container that owns the pod's network and
    /// IPC namespaces, attached to `spec.network`. Returns its ID.
    async fn create_sandbox(&self, spec: &SandboxSpec) -> Result<String, RuntimeError>;

    /// Creates (does not start) a container inside the sandbox `spec.sandbox_id`, sharing its
    /// network and IPC namespaces. Returns its ID.
    async fn create_container(&self, spec: &ContainerSpec) -> Result<String, RuntimeError>;

    /// Starts a created container.
    async fn start(&self, id: &str) -> Result<(), RuntimeError>;

    /// Sends SIGTERM and, if the container is still running after `grace`, SIGKILL. Stopping a
    /// stopped container is not an error.
    async fn stop(&self, id: &str, grace: Duration) -> Result<(), RuntimeError>;

    /// Removes a container, killing it first if needed; a missing container is not an error.
    async fn remove(&self, id: &str) -> Result<(), RuntimeError>;

    /// Every container, running or not, that carries all of the given labels.
    async fn list(
        &self,
        label_filter: &[(String, String)],
    ) -> Result<Vec<ContainerState>, RuntimeError>;

    /// The current state of one container.
    async fn inspect(&self, id: &str) -> Result<ContainerState, RuntimeError>;

    /// Runs a command in a running container and collects its output. Past `timeout` the call
    /// fails with [`RuntimeError::Timeout`] (the command itself may go on running: engines
    /// offer no way to kill an exec'd process).
    async fn exec(
        &self,
        id: &str,
        cmd: &[String],
        timeout: Duration,
    ) -> Result<ExecResult, RuntimeError>;

    /// Starts `spec.cmd` in a running container with the streams the spec asks for, for
    /// `kubectl exec`. The session's output ends when the process closes its streams.
    async fn exec_attached(&self, id: &str, spec: &ExecSpec) -> Result<Attached, RuntimeError>;

    /// The exit code of an exec session started by [`Runtime::exec_attached`], `None` while it
    /// still runs.
    async fn exec_exit_code(&self, exec_id: &str) -> Result<Option<i64>, RuntimeError>;

    /// Attaches to the main process of a running container (`kubectl attach`): its output from
    /// now on (with `replay`, first what it wrote before) and, when `stdin`, its standard input.
    async fn attach(&self, id: &str, stdin: bool, replay: bool) -> Result<Attached, RuntimeError>;

    /// A running container's resource usage over the engine's last sampling interval (about a
    /// second), for the resource metrics API (`kubectl top`).
    async fn stats(&self, id: &str) -> Result<ContainerStats, RuntimeError>;

    /// Sets the window size of a session's terminal.
    async fn resize(
        &self,
        terminal: &Terminal,
        width: u16,
        height: u16,
    ) -> Result<(), RuntimeError>;

    /// The container's log so far: stdout and stderr interleaved as they were written.
    async fn logs(&self, id: &str, options: &LogOptions) -> Result<Vec<u8>, RuntimeError>;

    /// The container's log as a stream of chunks, as the engine gives them; with
    /// `options.follow` it goes on as the container writes and ends when the container stops.
    /// A container that does not exist fails the call itself, not the stream.
    async fn log_stream(
        &self,
        id: &str,
        options: &LogOptions,
    ) -> Result<BoxStream<'static, Result<bytes::Bytes, RuntimeError>>, RuntimeError>;

    /// Lifecycle events (`create`, `start`, `die`, `oom`, `destroy`, `exec_create: …`, …) of the
    /// containers carrying `label`, from the moment of this call on. The stream reconnects by
    /// itself when the engine connection breaks and ends only when dropped.
    fn events(&self, label: (String, String)) -> BoxStream<'static, RuntimeEvent>;
}

/// A local image.
/// Credentials for a registry, from a Pod's image pull secrets (one entry of a Docker config).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryAuth {
    /// The entry's key as written (`https://index.docker.io/v1/`, `registry.example.com`).
    pub server: String,
    pub username: String,
    pub password: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImageInfo {
    /// The image ID, `sha256:…`.
    pub id: String,
    /// `name@sha256:…` for each registry the image came from (empty for built images).
    pub repo_digests: Vec<String>,
    /// `name:tag` references pointing at this image.
    pub repo_tags: Vec<String>,
}

/// A pod sandbox to create.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SandboxSpec {
    /// Engine-level name of the sandbox container; must be unique on the node.
    pub name: String,
    /// The hostname every container of the sandbox sees.
    pub hostname: String,
    pub labels: BTreeMap<String, String>,
    /// The cluster network to attach to (see [`Runtime::ensure_network`]).
    pub network: String,
    /// Ports the pod's containers declare, as `(port, "tcp"|"udp")`. They are recorded on the
    /// sandbox because containers that join another container's network namespace cannot
    /// expose ports themselves (the engine rejects it); dockershim did the same.
    pub exposed_ports: Vec<(u16, String)>,
    /// The Pod's `hostNetwork`: the sandbox uses the host's network namespace.
    pub host_network: bool,
    /// The Pod's `hostPID`.
    pub host_pid: bool,
    /// The Pod's `hostIPC`.
    pub host_ipc: bool,
}

/// A host directory bind-mounted into a container.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Mount {
    pub host_path: String,
    pub container_path: String,
    pub read_only: bool,
}

/// A container to create inside a sandbox.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContainerSpec {
    /// Engine-level name; must be unique on the node.
    pub name: String,
    pub image: String,
    /// Replaces the image's entrypoint (Kubernetes `command`); the image's CMD is then unused.
    pub command: Option<Vec<String>>,
    /// Replaces the image's CMD (Kubernetes `args`).
    pub args: Option<Vec<String>>,
    pub env: Vec<(String, String)>,
    pub working_dir: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// The sandbox whose namespaces the container joins.
    pub sandbox_id: String,
    pub mounts: Vec<Mount>,
    /// Paths that get a fresh tmpfs (emptyDir with `medium: Memory`).
    pub tmpfs: Vec<String>,
    /// Memory limit in bytes; swap is disabled for limited containers.
    pub memory_limit: Option<i64>,
    /// CPU limit in millicores, enforced by CFS quota.
    pub cpu_limit_milli: Option<i64>,
    /// Relative CPU weight (the kubelet derives it from the CPU request).
    pub cpu_shares: Option<i64>,
    /// `uid`, `uid:gid` or a user name known to the image.
    pub user: Option<String>,
    pub privileged: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub tty: bool,
    pub stdin: bool,
    pub stdin_once: bool,
    /// Whose process namespace the container joins: `host` (the Pod's `hostPID`), or
    /// `container:<id>` (an ephemeral container's target); its own when `None`.
    pub pid_mode: Option<String>,
    /// The container joins the host's IPC namespace (the Pod's `hostIPC`) instead of the
    /// sandbox's.
    pub host_ipc: bool,
}

/// Where a container is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum RunState {
    /// Created, never started.
    #[default]
    Created,
    /// Running (or paused, or being restarted by the engine).
    Running,
    /// Has run and stopped; `exit_code` and `finished_at` say how and when.
    Exited,
}

/// A snapshot of one container.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContainerState {
    pub id: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// The image reference the container was created from.
    pub image: String,
    /// The image ID, `sha256:…`.
    pub image_id: String,
    pub state: RunState,
    pub exit_code: i64,
    /// The kernel's OOM killer ended the container (Kubernetes reason `OOMKilled`).
    pub oom_killed: bool,
    /// The engine's error when the container could not be started.
    pub error: String,
    pub created_at: Option<jiff::Timestamp>,
    pub started_at: Option<jiff::Timestamp>,
    pub finished_at: Option<jiff::Timestamp>,
    /// For sandboxes: the IP address on the cluster network.
    pub ip: Option<String>,
}

/// What a container uses, as the Summary API reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ContainerStats {
    /// CPU in billionths of a core, averaged over the sampling interval.
    pub cpu_nano_cores: u64,
    /// Memory the kernel cannot reclaim without swapping: usage minus inactive file pages, as
    /// cadvisor's working set.
    pub memory_working_set_bytes: u64,
}

/// A command to run in a container with its streams attached.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExecSpec {
    pub cmd: Vec<String>,
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

/// Whose terminal a resize is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Terminal {
    /// An exec session, by the engine's exec ID.
    Exec(String),
    /// A container's main process, by container ID.
    Container(String),
}

/// A chunk a process wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Stdout(bytes::Bytes),
    Stderr(bytes::Bytes),
}

/// The streams of a process the kubelet is attached to. Dropping it detaches.
pub struct Attached {
    pub terminal: Terminal,
    /// What the process writes (with a TTY, everything arrives as stdout).
    pub output: BoxStream<'static, Result<Output, RuntimeError>>,
    /// The process's standard input; shutting it down closes the process's stdin.
    pub input: std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>,
}

/// What an exec'd command did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExecResult {
    pub exit_code: i64,
    /// stdout and stderr interleaved.
    pub output: Vec<u8>,
}

/// Which part of a container's log to return.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogOptions {
    /// Only the last N lines.
    pub tail: Option<u64>,
    /// Only lines written at or after this time (whole seconds, as dockershim passed it).
    pub since: Option<jiff::Timestamp>,
    /// Prefix each line with its RFC 3339 time, as `kubectl logs --timestamps` shows.
    pub timestamps: bool,
    /// Go on with what the container writes until it stops (`kubectl logs -f`).
    pub follow: bool,
}

/// One container lifecycle event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RuntimeEvent {
    /// The container ID.
    pub id: String,
    /// The engine's action: `create`, `start`, `die`, `oom`, `kill`, `stop`, `destroy`, …
    pub action: String,
    /// The container's labels (plus engine attributes such as `exitCode` on `die`).
    pub labels: BTreeMap<String, String>,
    /// When the engine saw it.
    pub time: Option<jiff::Timestamp>,
}

/// Why a runtime call failed. Every message names the container, image or network concerned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuntimeError {
    /// The image is not on the node, or the registry says it does not exist.
    #[error("{0}")]
    ImageNotFound(String),
    /// A pull failed for another reason (registry unreachable, denied, no progress…); the text
    /// is the engine's.
    #[error("{0}")]
    Pull(String),
    /// No such container (or network).
    #[error("{0}")]
    NotFound(String),
    /// The name is taken, or the object is in a state that forbids the call.
    #[error("{0}")]
    Conflict(String),
    /// The call did not finish in the time allowed.
    #[error("{0}")]
    Timeout(String),
    /// Anything else the engine or the connection to it reported.
    #[error("{0}")]
    Engine(String),
}

impl RuntimeError {
    /// True for the "there is no such thing" errors.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            RuntimeError::NotFound(_) | RuntimeError::ImageNotFound(_)
        )
    }
}

/// Adds `:latest` to a reference that has neither tag nor digest, as the kubelet's
/// `applyDefaultImageTag` does (without it the engine would pull every tag of the repository).
pub fn with_default_tag(reference: &str) -> String {
    if reference.contains('@') {
        return reference.to_string();
    }
    // A colon after the last slash is a tag; one before it belongs to a registry's port.
    let last_part = reference.rsplit('/').next().unwrap_or(reference);
    if last_part.contains(':') {
        reference.to_string()
    } else {
        format!("{reference}:latest")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_tag_is_added_only_when_missing() {
        assert_eq!(with_default_tag("busybox"), "busybox:latest");
        assert_eq!(with_default_tag("busybox:1.36"), "busybox:1.36");
        assert_eq!(
            with_default_tag("localhost:5000/app"),
            "localhost:5000/app:latest"
        );
        assert_eq!(
            with_default_tag("localhost:5000/app:v1"),
            "localhost:5000/app:v1"
        );
        assert_eq!(with_default_tag("app@sha256:abcd"), "app@sha256:abcd");
    }
}
