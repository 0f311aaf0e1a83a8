//! The Pod garbage collector, as upstream's `pkg/controller/podgc`: it force-deletes the Pods
//! no kubelet will ever finish.
//!
//! Every check period it looks at the Pods and Nodes its watches hold and:
//! - deletes the oldest terminated Pods (phase `Succeeded`/`Failed`) beyond the threshold,
//!   evicted ones first (`gcTerminated`, off when the threshold is 0);
//! - deletes terminating Pods on NotReady Nodes tainted `node.kubernetes.io/out-of-service`
//!   (`gcTerminating`);
//! - deletes Pods bound to Nodes that no longer exist (`gcOrphaned`): a missing Node is first
//!   quarantined, because the watch may simply lag behind, and then confirmed with a live GET;
//!   the Pod is marked `Failed` with a `DisruptionTarget` condition before it goes;
//! - deletes terminating Pods that were never bound (`gcUnscheduledTerminating`).
//!
//! "Deletes" is always a force deletion (grace period 0) after the Pod was moved to `Failed`,
//! since no kubelet is left to confirm a graceful one.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::reflector::Store;
use kube::Api;
use serde_json::{json, Value};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Upstream `gcCheckPeriod`.
pub const CHECK_PERIOD: Duration = Duration::from_secs(20);
/// Upstream `quarantineTime`: how long a Node must stay missing before its Pods go.
pub const QUARANTINE: Duration = Duration::from_secs(40);
/// Upstream's `--terminated-pod-gc-threshold` default.
pub const TERMINATED_THRESHOLD: usize = 12500;
/// The taint that lets terminating Pods of a NotReady node go (upstream `TaintNodeOutOfService`).
const OUT_OF_SERVICE: &str = "node.kubernetes.io/out-of-service";

#[derive(Debug, Clone)]
pub struct PodGcConfig {
    pub check_period: Duration,
    pub quarantine: Duration,
    /// 0 turns the terminated-Pod collection off, as upstream.
    pub terminated_threshold: usize,
}

impl Default for PodGcConfig {
    fn default() -> Self {
        PodGcConfig {
            check_period: CHECK_PERIOD,
            quarantine: QUARANTINE,
            terminated_threshold: TERMINATED_THRESHOLD,
        }
    }
}

pub struct PodGc {
    client: kube::Client,
    config: PodGcConfig,
    pods: Store<Pod>,
    nodes: Store<Node>,
    /// Missing node → when its quarantine ends (upstream's delaying `nodeQueue`).
    quarantined: HashMap<String, Instant>,
}

fn node_of(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("")
}

fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

/// Upstream `isPodTerminated`: any phase but Pending, Running and Unknown (an empty phase too).
fn is_terminated(pod: &Pod) -> bool {
    !matches!(phase(pod), "Pending" | "Running" | "Unknown")
}

fn is_evicted(pod: &Pod) -> bool {
    phase(pod) == "Failed"
        && pod.status.as_ref().and_then(|s| s.reason.as_deref()) == Some("Evicted")
}

fn key(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or(""),
        pod.metadata.name.as_deref().unwrap_or("")
    )
}

fn node_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn out_of_service(node: &Node) -> bool {
    node.spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .is_some_and(|t| t.iter().any(|t| t.key == OUT_OF_SERVICE))
}

/// Evicted first, then oldest first, then by name (upstream `byEvictionAndCreationTimestamp`).
fn deletion_order(pods: &mut [Arc<Pod>]) {
    pods.sort_by(|a, b| {
        is_evicted(b)
            .cmp(&is_evicted(a))
            .then_with(|| {
                let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
                created(a).cmp(&created(b))
            })
            .then_with(|| a.metadata.name.cmp(&b.metadata.name))
    });
}

/// The terminated Pods to delete so that at most `threshold` remain.
fn over_threshold(pods: &[Arc<Pod>], threshold: usize) -> Vec<Arc<Pod>> {
    let mut terminated: Vec<Arc<Pod>> = pods.iter().filter(|p| is_terminated(p)).cloned().collect();
    let excess = terminated.len().saturating_sub(threshold);
    if threshold == 0 || excess == 0 {
        return Vec::new();
    }
    deletion_order(&mut terminated);
    terminated.truncate(excess);
    terminated
}

/// The status patch that marks a Pod `Failed`, with `condition` merged by type.
fn failed_patch(pod: &Pod, condition: Option<&Value>) -> Value {
    let mut status = json!({"phase": "Failed"});
    if let Some(condition) = condition {
        status["conditions"] = json!([condition]);
    }
    // The uid makes the patch apply to this very Pod, never to a namesake created since.
    json!({"metadata": {"uid": pod.metadata.uid}, "status": status})
}

impl PodGc {
    /// Runs the collector until `shutdown`.
    pub async fn run(
        client: kube::Client,
        informers: Arc<super::Informers>,
        config: PodGcConfig,
        shutdown: CancellationToken,
    ) {
        let pods = informers.store::<Pod>("pod");
        let nodes = informers.store::<Node>("node");
        let mut gc = PodGc {
            client,
            config,
            pods,
            nodes,
            quarantined: HashMap::new(),
        };
        let work = async {
            // Nothing is collected before both watches have listed everything.
            let (Ok(()), Ok(())) = (
                gc.pods.wait_until_ready().await,
                gc.nodes.wait_until_ready().await,
            ) else {
                return;
            };
            tracing::info!("pod garbage collector started");
            loop {
                gc.gc().await;
                tokio::time::sleep(gc.config.check_period).await;
            }
        };
        tokio::select! {
            () = work => {}
            () = shutdown.cancelled() => {}
        }
    }

    /// One pass, in upstream's order.
    async fn gc(&mut self) {
        let pods = self.pods.state();
        let nodes = self.nodes.state();
        if self.config.terminated_threshold > 0 {
            for pod in over_threshold(&pods, self.config.terminated_threshold) {
                self.mark_failed_and_delete(&pod, None).await;
            }
        }
        self.gc_terminating(&pods, &nodes).await;
        self.gc_orphaned(&pods, &nodes).await;
        for pod in pods
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_some() && node_of(p).is_empty())
        {
            tracing::info!(pod = %key(pod), "deleting unscheduled terminating pod");
            self.mark_failed_and_delete(pod, None).await;
        }
    }

    async fn gc_terminating(&self, pods: &[Arc<Pod>], nodes: &[Arc<Node>]) {
        let by_name: HashMap<&str, &Node> = nodes
            .iter()
            .filter_map(|n| n.metadata.name.as_deref().map(|name| (name, n.as_ref())))
            .collect();
        let mut doomed: Vec<Arc<Pod>> = pods
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_some())
            .filter(|p| {
                by_name
                    .get(node_of(p))
                    .is_some_and(|n| !node_ready(n) && out_of_service(n))
            })
            .cloned()
            .collect();
        deletion_order(&mut doomed);
        for pod in doomed {
            tracing::info!(pod = %key(&pod), "deleting terminating pod on an out-of-service node");
            self.mark_failed_and_delete(&pod, None).await;
        }
    }

    async fn gc_orphaned(&mut self, pods: &[Arc<Pod>], nodes: &[Arc<Node>]) {
        let existing: HashSet<&str> = nodes
            .iter()
            .filter_map(|n| n.metadata.name.as_deref())
            .collect();
        let now = Instant::now();
        for pod in pods.iter() {
            let node = node_of(pod);
            if !node.is_empty() && !existing.contains(node) {
                self.quarantined
                    .entry(node.to_string())
                    .or_insert(now + self.config.quarantine);
            }
        }
        let due: Vec<String> = self
            .quarantined
            .iter()
            .filter(|(_, until)| **until <= now)
            .map(|(name, _)| name.clone())
            .collect();
        let api: Api<Node> = Api::all(self.client.clone());
        let mut deleted = HashSet::new();
        for name in due {
            self.quarantined.remove(&name);
            if existing.contains(name.as_str()) {
                continue;
            }
            // The watch may lag: only the API server's own answer proves the node is gone.
            match api.get_opt(&name).await {
                Ok(None) => {
                    deleted.insert(name);
                }
                Ok(Some(_)) => {}
                Err(e) => tracing::warn!(node = %name, error = %e, "cannot get node"),
            }
        }
        if deleted.is_empty() {
            return;
        }
        let condition = json!({
            "type": "DisruptionTarget",
            "status": "True",
            "reason": "DeletionByPodGC",
            "message": "PodGC: node no longer exists",
            "lastTransitionTime": jiff::Timestamp::now().to_string(),
        });
        for pod in pods.iter().filter(|p| deleted.contains(node_of(p))) {
            tracing::info!(pod = %key(pod), node = node_of(pod), "deleting orphaned pod");
            self.mark_failed_and_delete(pod, Some(&condition)).await;
        }
    }

    /// Moves the Pod to `Failed` unless it already finished, then force-deletes it. Errors are
    /// logged: the next pass tries again.
    async fn mark_failed_and_delete(&self, pod: &Pod, condition: Option<&Value>) {
        let namespace = pod.metadata.namespace.as_deref().unwrap_or("");
        let name = pod.metadata.name.as_deref().unwrap_or("");
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        if !matches!(phase(pod), "Succeeded" | "Failed") {
            let patch = failed_patch(pod, condition);
            match api
                .patch_status(name, &PatchParams::default(), &Patch::Strategic(patch))
                .await
            {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => return,
                Err(e) => {
                    tracing::warn!(pod = %key(pod), error = %e, "cannot mark pod failed");
                    return;
                }
            }
        }
        match api
            .delete(name, &DeleteParams::default().grace_period(0))
            .await
        {
            Ok(_) => tracing::info!(pod = %key(pod), "forced deletion of pod succeeded"),
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => tracing::warn!(pod = %key(pod), error = %e, "cannot delete pod"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, phase: &str, created: &str, reason: Option<&str>) -> Arc<Pod> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": {"name": name, "namespace": "default", "uid": format!("u-{name}"),
                    "creationTimestamp": created},
                "spec": {"containers": [], "nodeName": "n1"},
                "status": {"phase": phase, "reason": reason},
            }))
            .expect("a valid pod"),
        )
    }

    fn names(pods: &[Arc<Pod>]) -> Vec<&str> {
        pods.iter()
            .map(|p| p.metadata.name.as_deref().unwrap_or(""))
            .collect()
    }

    #[test]
    fn terminated_pods_beyond_the_threshold_go_evicted_then_oldest_first() {
        let pods = vec![
            pod("running", "Running", "2020-01-01T00:00:00Z", None),
            pod("old", "Succeeded", "2020-01-02T00:00:00Z", None),
            pod("new", "Failed", "2020-01-04T00:00:00Z", None),
            pod("evicted", "Failed", "2020-01-05T00:00:00Z", Some("Evicted")),
            pod("b-same", "Succeeded", "2020-01-03T00:00:00Z", None),
            pod("a-same", "Succeeded", "2020-01-03T00:00:00Z", None),
        ];
        assert_eq!(names(&over_threshold(&pods, 5)), Vec::<&str>::new());
        assert_eq!(names(&over_threshold(&pods, 4)), ["evicted"]);
        assert_eq!(
            names(&over_threshold(&pods, 2)),
            ["evicted", "old", "a-same"]
        );
        assert_eq!(
            names(&over_threshold(&pods, 1)),
            ["evicted", "old", "a-same", "b-same"]
        );
        assert_eq!(names(&over_threshold(&pods, 0)), Vec::<&str>::new());
    }

    #[test]
    fn failed_patch_names_the_pod_uid_and_merges_the_condition() {
        let p = pod("x", "Running", "2020-01-01T00:00:00Z", None);
        let c = json!({"type": "DisruptionTarget", "status": "True"});
        let patch = failed_patch(&p, Some(&c));
        assert_eq!(patch["metadata"]["uid"], "u-x");
        assert_eq!(patch["status"]["phase"], "Failed");
        assert_eq!(patch["status"]["conditions"][0]["type"], "DisruptionTarget");
        assert!(failed_patch(&p, None)["status"].get("conditions").is_none());
    }
}
