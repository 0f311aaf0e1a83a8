//! The node lifecycle controller, as upstream's `pkg/controller/nodelifecycle`, with the
//! taint-based eviction of `pkg/controller/tainteviction`.
//!
//! Every monitor period it looks at each Node's heartbeats — its Lease in `kube-node-lease`
//! and its `Ready` condition's `lastHeartbeatTime` — and notes when either last *changed*, by
//! its own clock (a kubelet's clock may be wrong; what counts is that it keeps writing). A Node
//! silent for longer than the grace period (`--node-monitor-grace-period`, 50 s in v1.32) gets
//! its conditions set to `Unknown` ("Kubelet stopped posting node status."), and its Pods'
//! `Ready` condition set to `False`.
//!
//! Taints follow the `Ready` condition: `node.kubernetes.io/unreachable` when it is
//! `Unknown`, `node.kubernetes.io/not-ready` when it is `False`, each with both the
//! `NoSchedule` and the `NoExecute` effect; none when the Node is Ready again.
//!
//! A Pod on a Node with a `NoExecute` taint it does not tolerate is evicted at once; one that
//! tolerates it for `tolerationSeconds` (300 s for these two taints, added to every Pod by the
//! API server's DefaultTolerationSeconds admission) is evicted when that time has passed since
//! the taint was added; one that tolerates it forever stays. Evicting adds the
//! `DisruptionTarget` condition and deletes the Pod; its controller makes a replacement, which
//! the scheduler keeps off the tainted Node. Nothing is evicted from a Node that comes back in
//! time: the taint goes, and with it every pending eviction.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, NodeCondition, Pod, Taint};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector::Store;
use kube::Api;
use serde_json::json;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::client::{EventRecorder, ObjectRef};
use crate::meta::object;
use crate::scheduler::framework::tolerates_taint;

/// Upstream `--node-monitor-period`.
pub const MONITOR_PERIOD: Duration = Duration::from_secs(5);
/// Upstream `--node-monitor-grace-period` (v1.32).
pub const GRACE_PERIOD: Duration = Duration::from_secs(50);

pub const TAINT_UNREACHABLE: &str = "node.kubernetes.io/unreachable";
pub const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";
/// The conditions a silent Node's kubelet no longer vouches for.
const WATCHED_CONDITIONS: [&str; 4] = ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];
const EVICTION_SOURCE: &str = "taint-eviction-controller";

#[derive(Debug, Clone)]
pub struct NodeLifecycleConfig {
    pub monitor_period: Duration,
    pub grace_period: Duration,
}

impl Default for NodeLifecycleConfig {
    fn default() -> Self {
        NodeLifecycleConfig {
            monitor_period: MONITOR_PERIOD,
            grace_period: GRACE_PERIOD,
        }
    }
}

/// What was last seen of a Node's heartbeats, and when it changed.
#[derive(Debug, Clone, PartialEq)]
struct Heartbeat {
    lease_renewed: Option<String>,
    ready_heartbeat: Option<String>,
}

struct Observed {
    beat: Heartbeat,
    changed_at: Instant,
}

pub struct NodeLifecycleController {
    client: kube::Client,
    config: NodeLifecycleConfig,
    nodes: Store<Node>,
    leases: Store<Lease>,
    pods: Store<Pod>,
    observed: HashMap<String, Observed>,
    recorder: EventRecorder,
}

fn ready_condition(node: &Node) -> Option<&NodeCondition> {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready"))
}

fn taints(node: &Node) -> &[Taint] {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.as_deref())
        .unwrap_or(&[])
}

/// The taints the `Ready` condition calls for (upstream's `doNoScheduleTaintingPass` and
/// `doNoExecuteTaintingPass`).
fn wanted_key(node: &Node) -> Option<&'static str> {
    match ready_condition(node).map(|c| c.status.as_str()) {
        Some("True") => None,
        Some("False") => Some(TAINT_NOT_READY),
        _ => Some(TAINT_UNREACHABLE),
    }
}

/// The Node's taints with the lifecycle ones brought in line with `wanted`; `None` when they
/// already are.
fn reconciled_taints(node: &Node, now: &str) -> Option<Vec<Taint>> {
    let wanted = wanted_key(node);
    let current = taints(node);
    let ours = |t: &Taint| t.key == TAINT_UNREACHABLE || t.key == TAINT_NOT_READY;
    let has = |effect: &str| {
        current
            .iter()
            .any(|t| Some(t.key.as_str()) == wanted && t.effect == effect)
    };
    let stale = current
        .iter()
        .any(|t| ours(t) && Some(t.key.as_str()) != wanted);
    if !stale && (wanted.is_none() || (has("NoSchedule") && has("NoExecute"))) {
        return None;
    }
    let mut next: Vec<Taint> = current
        .iter()
        .filter(|t| !ours(t) || Some(t.key.as_str()) == wanted)
        .cloned()
        .collect();
    if let Some(key) = wanted {
        for effect in ["NoSchedule", "NoExecute"] {
            if !next.iter().any(|t| t.key == key && t.effect == effect) {
                next.push(Taint {
                    key: key.to_string(),
                    effect: effect.to_string(),
                    time_added: (effect == "NoExecute")
                        .then(|| serde_json::from_value(json!(now)).ok())
                        .flatten(),
                    value: None,
                });
            }
        }
    }
    Some(next)
}

/// When a Pod must leave a Node with these `NoExecute` taints, counted from each taint's
/// `timeAdded`: `Some(Duration::ZERO)` for at once, `None` for never (upstream's
/// `getMinTolerationTime` over the taints the Pod tolerates, at once if it tolerates not all).
fn eviction_delay(pod: &Pod, taints: &[&Taint], now: jiff::Timestamp) -> Option<Duration> {
    let tolerations = pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or(&[]);
    let mut delay: Option<Duration> = None;
    for taint in taints {
        let tolerating: Vec<_> = tolerations
            .iter()
            .filter(|t| tolerates_taint(t, taint))
            .collect();
        if tolerating.is_empty() {
            return Some(Duration::ZERO);
        }
        // Tolerated forever by any toleration without seconds.
        let Some(seconds) = tolerating
            .iter()
            .map(|t| t.toleration_seconds)
            .collect::<Option<Vec<i64>>>()
            .and_then(|s| s.into_iter().min())
        else {
            continue;
        };
        let added = taint.time_added.as_ref().map(|t| t.0).unwrap_or(now);
        let until = added + jiff::SignedDuration::from_secs(seconds.max(0));
        let left = Duration::try_from(until.duration_since(now)).unwrap_or(Duration::ZERO);
        delay = Some(delay.map_or(left, |d| d.min(left)));
    }
    delay
}

impl NodeLifecycleController {
    /// Runs the controller until `shutdown`.
    pub async fn run(
        client: kube::Client,
        informers: Arc<super::Informers>,
        config: NodeLifecycleConfig,
        shutdown: CancellationToken,
    ) {
        let nodes = informers.store::<Node>("node");
        let (leases, lease_stream) = super::cached(
            Api::<Lease>::namespaced(client.clone(), "kube-node-lease"),
            "lease",
        );
        let pods = informers.store::<Pod>("pod");
        let recorder = EventRecorder::new(client.clone(), EVICTION_SOURCE, "");
        let mut controller = NodeLifecycleController {
            client,
            config,
            nodes,
            leases,
            pods,
            observed: HashMap::new(),
            recorder,
        };
        let work = async {
            let (Ok(()), Ok(()), Ok(())) = (
                controller.nodes.wait_until_ready().await,
                controller.leases.wait_until_ready().await,
                controller.pods.wait_until_ready().await,
            ) else {
                return;
            };
            tracing::info!("node lifecycle controller started");
            loop {
                controller.pass().await;
                tokio::time::sleep(controller.config.monitor_period).await;
            }
        };
        tokio::select! {
            () = lease_stream => {}
            () = work => {}
            () = shutdown.cancelled() => {}
        }
    }

    async fn pass(&mut self) {
        let nodes = self.nodes.state();
        let now = Instant::now();
        self.observed.retain(|name, _| {
            nodes
                .iter()
                .any(|n| n.metadata.name.as_deref() == Some(name))
        });
        for node in &nodes {
            let name = node.metadata.name.clone().unwrap_or_default();
            let beat = Heartbeat {
                lease_renewed: self
                    .leases
                    .state()
                    .iter()
                    .find(|l| l.metadata.name.as_deref() == Some(&name))
                    .and_then(|l| l.spec.as_ref()?.renew_time.as_ref())
                    .map(|t| t.0.to_string()),
                ready_heartbeat: ready_condition(node)
                    .and_then(|c| c.last_heartbeat_time.as_ref())
                    .map(|t| t.0.to_string()),
            };
            let seen = self.observed.entry(name.clone()).or_insert(Observed {
                beat: beat.clone(),
                changed_at: now,
            });
            if seen.beat != beat {
                seen.beat = beat;
                seen.changed_at = now;
            }
            let silent = now.duration_since(seen.changed_at) > self.config.grace_period;
            let ready = ready_condition(node).map(|c| c.status.as_str());
            if silent && ready != Some("Unknown") {
                tracing::info!(node = %name, "node stopped posting status; marking it unknown");
                if let Err(e) = self.mark_unknown(node).await {
                    tracing::warn!(node = %name, error = %e, "cannot mark the node unknown");
                }
                self.mark_pods_not_ready(&name).await;
                // The taints follow on the next pass, from the status as written.
                continue;
            }
            let stamp = object::now_rfc3339();
            if let Some(next) = reconciled_taints(node, &stamp) {
                if let Err(e) = self.set_taints(node, next).await {
                    tracing::warn!(node = %name, error = %e, "cannot update the node's taints");
                }
            }
        }
        self.evict(&nodes).await;
    }

    /// Sets the watched conditions to `Unknown`, keeping their heartbeat times (upstream
    /// `tryUpdateNodeHealth`).
    async fn mark_unknown(&self, node: &Node) -> Result<(), kube::Error> {
        let now = object::now_rfc3339();
        let existing = node
            .status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default();
        let conditions: Vec<serde_json::Value> = WATCHED_CONDITIONS
            .iter()
            .map(|kind| {
                let old = existing.iter().find(|c| c.type_ == *kind);
                let (reason, message) = if old.is_some() {
                    ("NodeStatusUnknown", "Kubelet stopped posting node status.")
                } else {
                    (
                        "NodeStatusNeverUpdated",
                        "Kubelet never posted node status.",
                    )
                };
                json!({
                    "type": kind,
                    "status": "Unknown",
                    "reason": reason,
                    "message": message,
                    "lastHeartbeatTime": old.and_then(|c| c.last_heartbeat_time.clone()),
                    "lastTransitionTime": now,
                })
            })
            .collect();
        let name = node.metadata.name.as_deref().unwrap_or("");
        let patch = json!({"status": {"conditions": conditions}});
        Api::<Node>::all(self.client.clone())
            .patch_status(name, &PatchParams::default(), &Patch::Strategic(&patch))
            .await
            .map(drop)
    }

    /// Sets `Ready=False` on the Node's Pods (upstream `MarkPodsNotReady`).
    async fn mark_pods_not_ready(&self, node: &str) {
        let now = object::now_rfc3339();
        for pod in self
            .pods
            .state()
            .iter()
            .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node))
        {
            let ready = pod
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .and_then(|c| c.iter().find(|c| c.type_ == "Ready"));
            if ready.is_none_or(|c| c.status == "False") {
                continue;
            }
            let patch = json!({
                "metadata": {"uid": pod.metadata.uid},
                "status": {"conditions": [{"type": "Ready", "status": "False", "lastTransitionTime": now}]},
            });
            let api: Api<Pod> = Api::namespaced(
                self.client.clone(),
                pod.metadata.namespace.as_deref().unwrap_or(""),
            );
            let name = pod.metadata.name.as_deref().unwrap_or("");
            if let Err(e) = api
                .patch_status(name, &PatchParams::default(), &Patch::Strategic(&patch))
                .await
            {
                tracing::debug!(pod = %name, error = %e, "cannot mark the pod not ready");
            }
        }
    }

    /// Replaces the Node's taints, with its resourceVersion as precondition so a concurrent
    /// change (a user's taint) is never overwritten.
    async fn set_taints(&self, node: &Node, taints: Vec<Taint>) -> Result<(), kube::Error> {
        let mut next = node.clone();
        next.spec.get_or_insert_with(Default::default).taints = Some(taints);
        let name = node.metadata.name.as_deref().unwrap_or("");
        Api::<Node>::all(self.client.clone())
            .replace(name, &PostParams::default(), &next)
            .await
            .map(drop)
    }

    /// Evicts the Pods whose time on a `NoExecute`-tainted Node is up.
    async fn evict(&self, nodes: &[Arc<Node>]) {
        let now = jiff::Timestamp::now();
        let tainted: HashMap<&str, Vec<&Taint>> = nodes
            .iter()
            .filter_map(|n| {
                let no_execute: Vec<&Taint> = taints(n)
                    .iter()
                    .filter(|t| t.effect == "NoExecute")
                    .collect();
                let name = n.metadata.name.as_deref()?;
                (!no_execute.is_empty()).then_some((name, no_execute))
            })
            .collect();
        if tainted.is_empty() {
            return;
        }
        for pod in self.pods.state() {
            if pod.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let Some(node_taints) = pod
                .spec
                .as_ref()
                .and_then(|s| s.node_name.as_deref())
                .and_then(|n| tainted.get(n))
            else {
                continue;
            };
            if eviction_delay(&pod, node_taints, now) != Some(Duration::ZERO) {
                continue;
            }
            self.evict_pod(&pod).await;
        }
    }

    /// Upstream `addConditionAndDeletePod`: the `DisruptionTarget` condition, then a delete.
    async fn evict_pod(&self, pod: &Pod) {
        let namespace = pod.metadata.namespace.as_deref().unwrap_or("");
        let name = pod.metadata.name.as_deref().unwrap_or("");
        let uid = pod.metadata.uid.as_deref().unwrap_or("");
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let message = format!("Marking for deletion Pod {namespace}/{name}");
        tracing::info!(pod = %format!("{namespace}/{name}"), "evicting: its node has a NoExecute taint it does not tolerate");
        self.recorder.record(
            &ObjectRef::pod(namespace, name, uid),
            "Normal",
            "TaintManagerEviction",
            &message,
        );
        let condition = json!({
            "metadata": {"uid": uid},
            "status": {"conditions": [{
                "type": "DisruptionTarget",
                "status": "True",
                "reason": "DeletionByTaintManager",
                "message": "Taint manager: deleting due to NoExecute taint",
                "lastTransitionTime": object::now_rfc3339(),
            }]},
        });
        if let Err(e) = api
            .patch_status(name, &PatchParams::default(), &Patch::Strategic(&condition))
            .await
        {
            tracing::debug!(pod = %name, error = %e, "cannot add the DisruptionTarget condition");
        }
        let options = DeleteParams {
            preconditions: Some(kube::api::Preconditions {
                uid: Some(uid.to_string()),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        if let Err(e) = api.delete(name, &options).await {
            tracing::debug!(pod = %name, error = %e, "cannot evict the pod");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(ready: Option<&str>, taints: serde_json::Value) -> Node {
        let conditions = ready
            .map(|s| json!([{"type": "Ready", "status": s}]))
            .unwrap_or(json!([]));
        serde_json::from_value(json!({
            "metadata": {"name": "n"},
            "spec": {"taints": taints},
            "status": {"conditions": conditions},
        }))
        .expect("node")
    }

    fn keys(taints: &[Taint]) -> Vec<String> {
        let mut keys: Vec<String> = taints
            .iter()
            .map(|t| format!("{}:{}", t.key, t.effect))
            .collect();
        keys.sort();
        keys
    }

    #[test]
    fn taints_follow_the_ready_condition_and_keep_the_users() {
        let user = json!([{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]);
        assert!(reconciled_taints(&node(Some("True"), user.clone()), "t").is_none());
        let unknown = reconciled_taints(&node(Some("Unknown"), user.clone()), "t").expect("change");
        assert_eq!(
            keys(&unknown),
            [
                "dedicated:NoSchedule",
                "node.kubernetes.io/unreachable:NoExecute",
                "node.kubernetes.io/unreachable:NoSchedule",
            ]
        );
        // Unreachable → not ready: the one replaces the other.
        let tainted = serde_json::to_value(&unknown).expect("taints");
        let not_ready =
            reconciled_taints(&node(Some("False"), tainted.clone()), "t").expect("change");
        assert_eq!(
            keys(&not_ready),
            [
                "dedicated:NoSchedule",
                "node.kubernetes.io/not-ready:NoExecute",
                "node.kubernetes.io/not-ready:NoSchedule",
            ]
        );
        // Ready again: only the user's taint stays; already in line: nothing to do.
        let back = reconciled_taints(&node(Some("True"), tainted.clone()), "t").expect("change");
        assert_eq!(keys(&back), ["dedicated:NoSchedule"]);
        assert!(reconciled_taints(&node(Some("Unknown"), tainted), "t").is_none());
        // A node that never posted a Ready condition is unreachable.
        let never = reconciled_taints(&node(None, json!([])), "t").expect("change");
        assert_eq!(never.len(), 2);
        assert!(never.iter().all(|t| t.key == TAINT_UNREACHABLE));
    }

    fn pod(tolerations: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [], "tolerations": tolerations},
        }))
        .expect("pod")
    }

    #[test]
    fn a_pod_leaves_when_its_toleration_runs_out() {
        let now: jiff::Timestamp = "2026-01-01T00:01:00Z".parse().expect("time");
        let taint: Taint = serde_json::from_value(json!({
            "key": TAINT_UNREACHABLE, "effect": "NoExecute", "timeAdded": "2026-01-01T00:00:00Z",
        }))
        .expect("taint");
        let taints = [&taint];
        let default = pod(json!([{"key": TAINT_UNREACHABLE, "operator": "Exists",
            "effect": "NoExecute", "tolerationSeconds": 300}]));
        assert_eq!(
            eviction_delay(&default, &taints, now),
            Some(Duration::from_secs(240))
        );
        let short = pod(json!([{"key": TAINT_UNREACHABLE, "operator": "Exists",
            "effect": "NoExecute", "tolerationSeconds": 30}]));
        assert_eq!(eviction_delay(&short, &taints, now), Some(Duration::ZERO));
        let forever = pod(json!([{"operator": "Exists"}]));
        assert_eq!(eviction_delay(&forever, &taints, now), None);
        let none = pod(json!([]));
        assert_eq!(eviction_delay(&none, &taints, now), Some(Duration::ZERO));
    }
}
