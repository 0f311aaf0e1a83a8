//! The kubelet's Node: registration with capacity, labels and taints; status with the four
//! conditions; and the heartbeat Lease in `kube-node-lease`, renewed every 10 s.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Patch, PatchParams, PostParams};
use kube::Api;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::meta::object;

/// How a kubelet shows it is alive: its Lease in `kube-node-lease`, renewed every quarter of
/// the Lease's duration (upstream's `NodeLeaseRenewIntervalFraction`), and its conditions'
/// `lastHeartbeatTime`, refreshed every `status_every`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heartbeats {
    /// `nodeLeaseDurationSeconds` (40 by default).
    pub lease_seconds: u32,
    /// `nodeStatusUpdateFrequency` (10 s by default).
    pub status_every: Duration,
}

impl Default for Heartbeats {
    fn default() -> Self {
        Heartbeats {
            lease_seconds: 40,
            status_every: Duration::from_secs(10),
        }
    }
}

impl Heartbeats {
    pub fn renew_every(&self) -> Duration {
        Duration::from_secs(u64::from(self.lease_seconds.max(1))) / 4
    }
}
pub const KUBELET_VERSION: &str = "v1.32.0";

/// What the Node says about itself.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<Value>,
    /// cpu, memory, pods, as quantities.
    pub capacity: BTreeMap<String, String>,
    pub host_ip: String,
    pub runtime_version: String,
    /// The kubelet's HTTPS port (0: none).
    pub port: u16,
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The machine's CPU count, memory and a pod limit of 110, as the kubelet reports them.
pub fn machine_capacity() -> BTreeMap<String, String> {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mem_kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .unwrap_or(0);
    [
        ("cpu".to_string(), cpus.to_string()),
        ("memory".to_string(), format!("{mem_kib}Ki")),
        ("pods".to_string(), "110".to_string()),
    ]
    .into_iter()
    .collect()
}

fn os_image() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_string())
        })
        .unwrap_or_else(|| "Linux".into())
}

fn conditions(now: &str) -> Value {
    let condition = |kind: &str, status: &str, reason: &str, message: &str| {
        json!({"type": kind, "status": status, "reason": reason, "message": message,
            "lastHeartbeatTime": now, "lastTransitionTime": now})
    };
    json!([
        condition(
            "MemoryPressure",
            "False",
            "KubeletHasSufficientMemory",
            "kubelet has sufficient memory available"
        ),
        condition(
            "DiskPressure",
            "False",
            "KubeletHasNoDiskPressure",
            "kubelet has no disk pressure"
        ),
        condition(
            "PIDPressure",
            "False",
            "KubeletHasSufficientPID",
            "kubelet has sufficient PID available"
        ),
        condition(
            "Ready",
            "True",
            "KubeletReady",
            "kubelet is posting ready status"
        ),
    ])
}

/// The Node's status as the kubelet posts it.
pub fn status(spec: &NodeSpec) -> Value {
    let now = object::now_rfc3339();
    json!({
        "capacity": spec.capacity,
        "allocatable": spec.capacity,
        "conditions": conditions(&now),
        "addresses": [
            {"type": "InternalIP", "address": spec.host_ip},
            {"type": "Hostname", "address": spec.name},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": spec.port}},
        "nodeInfo": {
            "machineID": read_trimmed("/etc/machine-id"),
            "systemUUID": read_trimmed("/sys/class/dmi/id/product_uuid"),
            "bootID": read_trimmed("/proc/sys/kernel/random/boot_id"),
            "kernelVersion": read_trimmed("/proc/sys/kernel/osrelease"),
            "osImage": os_image(),
            "containerRuntimeVersion": spec.runtime_version,
            "kubeletVersion": KUBELET_VERSION,
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": object::go_arch(),
        },
    })
}

/// Creates the Node, or brings an existing one up to date (a restarted kubelet).
pub async fn register(client: &kube::Client, spec: &NodeSpec) -> Result<Node, kube::Error> {
    let api: Api<Node> = Api::all(client.clone());
    let mut labels = spec.labels.clone();
    labels.insert("kubernetes.io/hostname".into(), spec.name.clone());
    labels.insert("kubernetes.io/os".into(), "linux".into());
    labels.insert("kubernetes.io/arch".into(), object::go_arch().into());
    labels.insert("beta.kubernetes.io/os".into(), "linux".into());
    labels.insert("beta.kubernetes.io/arch".into(), object::go_arch().into());
    let mut body = json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": spec.name, "labels": labels,
            "annotations": {"node.alpha.kubernetes.io/ttl": "0", "volumes.kubernetes.io/controller-managed-attach-detach": "true"}},
        "spec": {},
        "status": status(spec),
    });
    if !spec.taints.is_empty() {
        body["spec"]["taints"] = json!(spec.taints);
    }
    let node: Node =
        serde_json::from_value(body.clone()).expect("a Node built from known fields decodes");
    match api.create(&PostParams::default(), &node).await {
        Ok(node) => Ok(node),
        Err(kube::Error::Api(e)) if e.code == 409 => {
            let patch = json!({"metadata": {"labels": labels}});
            api.patch(&spec.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
            let patch = json!({"status": status(spec)});
            api.patch_status(&spec.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
        }
        Err(e) => Err(e),
    }
}

/// Renews the Lease and refreshes the status as `beats` says until `shutdown`.
pub async fn heartbeat(
    client: kube::Client,
    spec: NodeSpec,
    node_uid: String,
    beats: Heartbeats,
    shutdown: CancellationToken,
) {
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let nodes: Api<Node> = Api::all(client);
    let mut renewal = tokio::time::interval(beats.renew_every());
    let mut status = tokio::time::interval(beats.status_every);
    for timer in [&mut renewal, &mut status] {
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    }
    loop {
        tokio::select! {
            _ = renewal.tick() => {
                if let Err(e) = renew(&leases, &spec.name, &node_uid, beats.lease_seconds).await {
                    tracing::warn!(node = %spec.name, error = %e, "cannot renew the node lease");
                }
            }
            _ = status.tick() => {
                if let Err(e) = post_heartbeat(&nodes, &spec.name).await {
                    tracing::warn!(node = %spec.name, error = %e, "cannot update the node status");
                }
            }
            () = shutdown.cancelled() => return,
        }
    }
}

/// Moves only the conditions' heartbeat: each keeps its transition time (conditions merge by
/// type in a strategic merge patch).
async fn post_heartbeat(nodes: &Api<Node>, name: &str) -> Result<(), kube::Error> {
    let now = object::now_rfc3339();
    let beats: Vec<Value> = ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"]
        .iter()
        .map(|kind| json!({"type": kind, "lastHeartbeatTime": now}))
        .collect();
    let patch = json!({"status": {"conditions": beats}});
    nodes
        .patch_status(name, &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .map(drop)
}

async fn renew(
    leases: &Api<Lease>,
    node: &str,
    node_uid: &str,
    lease_seconds: u32,
) -> Result<(), kube::Error> {
    let lease_seconds = i32::try_from(lease_seconds).unwrap_or(i32::MAX);
    let now = object::now_micro_rfc3339();
    match leases.get_opt(node).await? {
        Some(mut lease) => {
            let spec = lease.spec.get_or_insert_with(Default::default);
            spec.renew_time = serde_json::from_value(json!(now)).ok();
            spec.holder_identity = Some(node.to_string());
            spec.lease_duration_seconds = Some(lease_seconds);
            leases.replace(node, &PostParams::default(), &lease).await?;
        }
        None => {
            let lease: Lease = serde_json::from_value(json!({
                "metadata": {"name": node, "namespace": "kube-node-lease",
                    "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": node, "uid": node_uid}]},
                "spec": {"holderIdentity": node, "leaseDurationSeconds": lease_seconds, "renewTime": now},
            }))
            .expect("a Lease built from known fields decodes");
            leases.create(&PostParams::default(), &lease).await?;
        }
    }
    Ok(())
}
