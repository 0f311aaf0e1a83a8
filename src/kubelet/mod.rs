//! The kubelet: runs the Pods bound to one node through the container engine.
//!
//! A client of the API server (as `system:node:<name>`) and of Docker, nothing else. It
//! registers its Node, renews its Lease, watches the Pods with `spec.nodeName=<node>` and
//! runs one [`pod_worker`] per Pod. Engine events wake the worker of the Pod they concern,
//! so state changes are reported as soon as Docker sees them.
//!
//! Architecture invariant: everything the kubelet knows about running containers it reads
//! back from the engine (by label), so a restarted kubelet adopts what runs and never starts a
//! container twice.

pub mod docker;
pub mod env;
pub mod fake;
#[cfg(test)]
pub(crate) mod fake_api;
pub mod labels;
mod logs;
mod mailbox;
mod node;
pub mod pause;
mod pod_worker;
mod probes;
mod pull_secrets;
pub mod runtime;
mod server;
mod sources;
mod stats;
mod status;
pub mod streaming;
mod volumes;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::watcher;
use kube::runtime::WatchStreamExt as _;
use kube::Api;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use pod_worker::RESYNC_LONGEST;

use crate::client::{Change, EventRecorder, Relist};
use mailbox::Mailbox;
pub use node::{machine_capacity, Heartbeats};
use pod_worker::Shared;
use runtime::{RunState, Runtime};

#[derive(Debug, Clone)]
pub struct KubeletConfig {
    pub node_name: String,
    pub cluster: String,
    /// Where Pod volumes live.
    pub root_dir: PathBuf,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<Value>,
    /// cpu, memory, pods; the machine's values where not given.
    pub capacity: BTreeMap<String, String>,
    pub host_ip: String,
    /// Where Pods reach the API server (`KUBERNETES_SERVICE_HOST`/`_PORT`), if they can.
    pub kubernetes_service: Option<(String, u16)>,
    /// The serving certificate, key and client CA of the kubelet's HTTPS port (for logs);
    /// without them the kubelet serves nothing.
    pub tls: Option<(String, String, String)>,
    pub heartbeats: node::Heartbeats,
}

#[derive(Debug, thiserror::Error)]
pub enum KubeletError {
    #[error("the container engine failed: {0}")]
    Runtime(#[from] runtime::RuntimeError),
    #[error("cannot register node {node}: {source}")]
    Register {
        node: String,
        #[source]
        source: kube::Error,
    },
    #[error("the pod watch ended")]
    WatchEnded,
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error("cannot listen for the kubelet's HTTPS port: {0}")]
    Listen(#[from] std::io::Error),
}

/// The Docker network of a cluster: every Pod of every node of it is on it.
pub fn network_name(cluster: &str) -> String {
    format!("rkube-{cluster}")
}

/// A Pod's memory-backed directory on the host (tmpfs): its memory-medium emptyDirs and its
/// secret and projected volumes, tokens among them. It outlives the Pod's containers, so
/// whoever removes those without the kubelet (`rkube down`) removes it too.
pub fn memory_dir(pod_uid: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(format!("/dev/shm/rkube-{pod_uid}"))
}

/// This host's first address (what kind shows as a node's InternalIP), or loopback.
pub fn host_ip() -> String {
    std::process::Command::new("hostname")
        .arg("-I")
        .output()
        .ok()
        .and_then(|out| {
            String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .find(|a| a.parse::<std::net::Ipv4Addr>().is_ok())
                .map(str::to_string)
        })
        .unwrap_or_else(|| "127.0.0.1".into())
}

struct WorkerHandle {
    mailbox: Mailbox,
    stop: CancellationToken,
}

/// Runs the kubelet until `shutdown`.
pub async fn run(
    client: kube::Client,
    runtime: Arc<dyn Runtime>,
    config: KubeletConfig,
    shutdown: CancellationToken,
) -> Result<(), KubeletError> {
    let network = network_name(&config.cluster);
    runtime.ensure_network(&network).await?;
    runtime.ensure_pause_image().await?;
    let tracker = TaskTracker::new();
    let known = Arc::new(server::KnownPods::default());
    let mut port = 0;
    if let Some((cert, key, ca)) = &config.tls {
        let (tls, authenticator) = crate::tls::server_config(cert, key, ca)?;
        let listener = tokio::net::TcpListener::bind(("0.0.0.0", 0)).await?;
        port = listener.local_addr()?.port();
        tracker.spawn(server::serve(
            listener,
            tls,
            authenticator,
            server::Context {
                runtime: runtime.clone(),
                node: config.node_name.clone(),
                pods: known.clone(),
            },
            tracker.clone(),
            shutdown.clone(),
        ));
    }
    let mut capacity = machine_capacity();
    capacity.extend(config.capacity.clone());
    let spec = node::NodeSpec {
        name: config.node_name.clone(),
        labels: config.labels.clone(),
        taints: config.taints.clone(),
        capacity,
        host_ip: config.host_ip.clone(),
        runtime_version: runtime.version().await?,
        port,
    };
    let registered =
        node::register(&client, &spec)
            .await
            .map_err(|source| KubeletError::Register {
                node: config.node_name.clone(),
                source,
            })?;
    tracing::info!(node = %config.node_name, port, "node registered");
    tracker.spawn(node::heartbeat(
        client.clone(),
        spec,
        registered.metadata.uid.clone().unwrap_or_default(),
        config.heartbeats,
        shutdown.clone(),
    ));
    let shared = Arc::new(Shared {
        client: client.clone(),
        runtime: runtime.clone(),
        recorder: Arc::new(EventRecorder::new(
            client.clone(),
            "kubelet",
            &config.node_name,
        )),
        node: config.node_name.clone(),
        cluster: config.cluster.clone(),
        network,
        host_ip: config.host_ip.clone(),
        services: config
            .kubernetes_service
            .as_ref()
            .map(|(host, port)| env::service_env(host, *port))
            .unwrap_or_default(),
        root_dir: config.root_dir.clone(),
        tracker: tracker.clone(),
        sources: sources::Sources::new(client.clone()),
    });
    let pods = watcher::watcher(
        Api::<Pod>::all(client.clone()),
        watcher::Config::default().fields(&format!("spec.nodeName={}", config.node_name)),
    )
    .default_backoff();
    let mut pods = std::pin::pin!(pods);
    let mut events = runtime.events((labels::NODE.to_string(), config.node_name.clone()));
    let mut workers: HashMap<String, WorkerHandle> = HashMap::new();
    let mut pod_list = Relist::new();
    loop {
        tokio::select! {
            event = pods.next() => match event {
                Some(Ok(event)) => match pod_list.step(event) {
                    Some(Change::Listed(listed)) => {
                        known.replace(&listed);
                        let live: HashSet<String> = listed.iter().filter_map(|p| p.metadata.uid.clone()).collect();
                        for pod in listed {
                            dispatch(&shared, &mut workers, pod, &shutdown);
                        }
                        for (uid, handle) in &workers {
                            if !live.contains(uid) {
                                handle.mailbox.gone();
                            }
                        }
                        remove_orphans(&shared, &live).await;
                    }
                    Some(Change::Applied(pod)) => {
                        known.apply(&pod);
                        dispatch(&shared, &mut workers, pod, &shutdown);
                    }
                    Some(Change::Deleted(pod)) => {
                        known.remove(&pod);
                        let uid = pod.metadata.uid.clone().unwrap_or_default();
                        // Never waits: a slow worker cannot hold up the main loop.
                        if let Some(handle) = workers.get(&uid) {
                            handle.mailbox.gone();
                        }
                    }
                    None => {}
                },
                Some(Err(e)) => tracing::warn!(error = %e, "pod watch failed; retrying"),
                None => return Err(KubeletError::WatchEnded),
            },
            Some(event) = events.next() => {
                if let Some(uid) = event.labels.get(labels::POD_UID) {
                    if let Some(handle) = workers.get(uid) {
                        handle.mailbox.poke();
                    }
                }
            }
            () = shutdown.cancelled() => break,
        }
        workers.retain(|_, h| !h.mailbox.is_closed());
    }
    for handle in workers.values() {
        handle.stop.cancel();
    }
    tracker.close();
    let _ = tokio::time::timeout(Duration::from_secs(5), tracker.wait()).await;
    Ok(())
}

/// Hands a Pod to its worker, starting one for a Pod not seen before.
fn dispatch(
    shared: &Arc<Shared>,
    workers: &mut HashMap<String, WorkerHandle>,
    pod: Pod,
    shutdown: &CancellationToken,
) {
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    if let Some(handle) = workers.get(&uid).filter(|h| !h.mailbox.is_closed()) {
        // Overwrites any update the worker has not read yet: the newest always wins.
        handle.mailbox.update(pod);
        return;
    }
    let (mailbox, rx) = mailbox::mailbox(pod);
    let stop = shutdown.child_token();
    shared
        .tracker
        .spawn(pod_worker::run(shared.clone(), rx, stop.clone()));
    workers.insert(uid, WorkerHandle { mailbox, stop });
}

/// Removes containers of this node whose Pods no longer exist (deleted while the kubelet was
/// down, or force-deleted).
async fn remove_orphans(shared: &Shared, live: &HashSet<String>) {
    let filter = [(labels::NODE.to_string(), shared.node.clone())];
    let Ok(containers) = shared.runtime.list(&filter).await else {
        return;
    };
    for c in containers {
        let uid = c.labels.get(labels::POD_UID).cloned().unwrap_or_default();
        if live.contains(&uid) {
            continue;
        }
        if c.state == RunState::Running {
            let _ = shared.runtime.stop(&c.id, Duration::from_secs(2)).await;
        }
        let _ = shared.runtime.remove(&c.id).await;
        let _ = std::fs::remove_dir_all(shared.root_dir.join("pods").join(&uid));
    }
}
