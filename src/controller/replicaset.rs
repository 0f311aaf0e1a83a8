//! The ReplicaSet controller (upstream `pkg/controller/replicaset`): keeps as many live Pods
//! as each ReplicaSet asks for, adopting orphans that match its selector and releasing its
//! Pods that stop matching, and writes the ReplicaSet's status.
//!
//! Expectations: a ReplicaSet whose own creates or deletes have not yet shown up in the Pod
//! watch is not acted on again (upstream `ControllerExpectations`), so a lagging watch never
//! makes it create twice. They are held in memory only; after a restart the controller lists
//! everything before acting, which is what makes a restart safe.
//! Available Pods are those Ready for `minReadySeconds` (upstream `IsPodAvailable`); the
//! resync tick notices when that time has passed.
//! Deviation: ReplicaSets are resynced on a short tick rather than through a work queue fed
//! by event handlers.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector::Store;
use kube::Api;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::client::{EventRecorder, ObjectRef};
use crate::meta::label_selector;

/// Upstream's `BurstReplicas`: at most this many creates or deletes per sync.
const BURST_REPLICAS: usize = 500;
/// Upstream's `ExpectationsTimeout`: unobserved expectations are dropped after this.
const EXPECTATIONS_TIMEOUT: Duration = Duration::from_secs(300);
const RESYNC: Duration = Duration::from_millis(250);

/// What a ReplicaSet's last sync is still waiting to see in the Pod watch.
#[derive(Debug, Default)]
struct Expectations {
    creates: HashSet<String>,
    deletes: HashSet<String>,
    since: Option<Instant>,
}

impl Expectations {
    fn satisfied(&mut self, pods: &HashSet<String>) -> bool {
        self.creates.retain(|n| !pods.contains(n));
        self.deletes.retain(|n| pods.contains(n));
        let expired = self
            .since
            .is_some_and(|t| t.elapsed() > EXPECTATIONS_TIMEOUT);
        (self.creates.is_empty() && self.deletes.is_empty()) || expired
    }
}

pub struct ReplicaSetController {
    client: kube::Client,
    sets: Store<ReplicaSet>,
    pods: Store<Pod>,
    expectations: HashMap<String, Expectations>,
    recorder: EventRecorder,
}

fn is_active(pod: &Pod) -> bool {
    let phase = pod
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("");
    pod.metadata.deletion_timestamp.is_none() && phase != "Succeeded" && phase != "Failed"
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Upstream `IsPodAvailable`: Ready for at least `min_ready_seconds`.
pub fn is_available(pod: &Pod, min_ready_seconds: i32, now: jiff::Timestamp) -> bool {
    let Some(ready) = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready" && c.status == "True"))
    else {
        return false;
    };
    if min_ready_seconds <= 0 {
        return true;
    }
    ready
        .last_transition_time
        .as_ref()
        .is_some_and(|t| t.0 + jiff::SignedDuration::from_secs(i64::from(min_ready_seconds)) <= now)
}

fn controller_uid(pod: &Pod) -> Option<&str> {
    pod.metadata
        .owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true))
        .map(|r| r.uid.as_str())
}

/// Upstream `ActivePodsWithRanks` order for deletion: unscheduled before scheduled, pending
/// before unknown before running, not ready before ready, newer before older.
pub fn deletion_order(pods: &mut [Arc<Pod>]) {
    pods.sort_by_key(|p| {
        let scheduled = p
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .is_some_and(|n| !n.is_empty());
        let phase = match p.status.as_ref().and_then(|s| s.phase.as_deref()) {
            Some("Pending") => 0,
            Some("Running") => 2,
            _ => 1,
        };
        let created = p.metadata.creation_timestamp.as_ref().map(|t| t.0);
        (scheduled, phase, is_ready(p), std::cmp::Reverse(created))
    });
}

/// Upstream `slowStartBatch` sizes: 1, 2, 4, … until `count` are made.
pub fn slow_start_batches(count: usize) -> Vec<usize> {
    let mut batches = Vec::new();
    let (mut left, mut size) = (count, 1);
    while left > 0 {
        let n = size.min(left);
        batches.push(n);
        left -= n;
        size *= 2;
    }
    batches
}

/// The Pod a ReplicaSet makes.
pub fn pod_from_template(rs: &ReplicaSet) -> Pod {
    let template = rs
        .spec
        .as_ref()
        .and_then(|s| s.template.clone())
        .unwrap_or_default();
    super::pod_from_template(rs, template)
}

impl ReplicaSetController {
    pub async fn run(
        client: kube::Client,
        informers: Arc<super::Informers>,
        shutdown: CancellationToken,
    ) {
        let sets = informers.store::<ReplicaSet>("replicaset");
        let pods = informers.store::<Pod>("pod");
        let mut c = ReplicaSetController {
            recorder: EventRecorder::new(client.clone(), super::COMPONENT, ""),
            client,
            sets,
            pods,
            expectations: HashMap::new(),
        };
        let work = async {
            let (Ok(()), Ok(())) = (
                c.sets.wait_until_ready().await,
                c.pods.wait_until_ready().await,
            ) else {
                return;
            };
            tracing::info!("replicaset controller started");
            loop {
                for rs in c.sets.state() {
                    c.sync(&rs).await;
                }
                tokio::time::sleep(RESYNC).await;
            }
        };
        tokio::select! {
            () = work => {}
            () = shutdown.cancelled() => {}
        }
    }

    async fn sync(&mut self, rs: &ReplicaSet) {
        let (Some(ns), Some(name), Some(uid)) = (
            rs.metadata.namespace.clone(),
            rs.metadata.name.clone(),
            rs.metadata.uid.clone(),
        ) else {
            return;
        };
        let Some(spec) = rs.spec.as_ref() else { return };
        let all: Vec<Arc<Pod>> = self
            .pods
            .state()
            .into_iter()
            .filter(|p| p.metadata.namespace.as_deref() == Some(ns.as_str()))
            .collect();
        let names: HashSet<String> = all.iter().filter_map(|p| p.metadata.name.clone()).collect();
        let exp = self.expectations.entry(uid.clone()).or_default();
        if !exp.satisfied(&names) {
            return;
        }
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        let labels_of = |p: &Pod| p.metadata.labels.clone().unwrap_or_default();
        let mut owned: Vec<Arc<Pod>> = Vec::new();
        for pod in &all {
            let matches = label_selector::matches(&spec.selector, &labels_of(pod));
            let pod_name = pod.metadata.name.clone().unwrap_or_default();
            match controller_uid(pod) {
                Some(u) if u == uid && matches => owned.push(pod.clone()),
                Some(u) if u == uid && rs.metadata.deletion_timestamp.is_none() => {
                    // Release: the Pod no longer matches the selector.
                    let refs: Vec<_> = pod
                        .metadata
                        .owner_references
                        .iter()
                        .flatten()
                        .filter(|r| r.uid != uid)
                        .cloned()
                        .collect();
                    let patch =
                        json!({"metadata": {"ownerReferences": refs, "uid": pod.metadata.uid}});
                    if let Err(e) = api
                        .patch(&pod_name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                    {
                        tracing::warn!(pod = %pod_name, error = %e, "cannot release pod");
                    }
                }
                None if matches
                    && is_active(pod)
                    && rs.metadata.deletion_timestamp.is_none()
                    && !label_selector::is_empty(&spec.selector) =>
                {
                    let mut refs = pod.metadata.owner_references.clone().unwrap_or_default();
                    refs.push(super::controller_ref(rs));
                    let patch =
                        json!({"metadata": {"ownerReferences": refs, "uid": pod.metadata.uid}});
                    match api
                        .patch(&pod_name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                    {
                        Ok(p) => owned.push(Arc::new(p)),
                        Err(e) => tracing::warn!(pod = %pod_name, error = %e, "cannot adopt pod"),
                    }
                }
                _ => {}
            }
        }
        let mut active: Vec<Arc<Pod>> = owned.iter().filter(|p| is_active(p)).cloned().collect();
        let want = spec.replicas.unwrap_or(1).max(0) as usize;
        let rs_ref = ObjectRef {
            kind: "ReplicaSet".into(),
            api_version: "apps/v1".into(),
            namespace: ns.clone(),
            name: name.clone(),
            uid: uid.clone(),
            field_path: String::new(),
        };
        if rs.metadata.deletion_timestamp.is_none() {
            if active.len() < want {
                let missing = (want - active.len()).min(BURST_REPLICAS);
                let template = pod_from_template(rs);
                let post = PostParams::default();
                'batches: for size in slow_start_batches(missing) {
                    let made =
                        futures::future::join_all((0..size).map(|_| api.create(&post, &template)))
                            .await;
                    let mut failed = false;
                    for result in made {
                        match result {
                            Ok(p) => {
                                let pod_name = p.metadata.name.clone().unwrap_or_default();
                                if let Some(e) = self.expectations.get_mut(&uid) {
                                    e.creates.insert(pod_name.clone());
                                    e.since = Some(Instant::now());
                                }
                                self.recorder.record(
                                    &rs_ref,
                                    "Normal",
                                    "SuccessfulCreate",
                                    &format!("Created pod: {pod_name}"),
                                );
                            }
                            Err(e) => {
                                failed = true;
                                self.recorder.record(
                                    &rs_ref,
                                    "Warning",
                                    "FailedCreate",
                                    &format!("Error creating: {e}"),
                                );
                            }
                        }
                    }
                    if failed {
                        break 'batches;
                    }
                }
            } else if active.len() > want {
                deletion_order(&mut active);
                let extra = (active.len() - want).min(BURST_REPLICAS);
                for pod in active.iter().take(extra) {
                    let pod_name = pod.metadata.name.clone().unwrap_or_default();
                    match api.delete(&pod_name, &DeleteParams::default()).await {
                        Ok(_) => {
                            if let Some(e) = self.expectations.get_mut(&uid) {
                                e.deletes.insert(pod_name.clone());
                                e.since = Some(Instant::now());
                            }
                            self.recorder.record(
                                &rs_ref,
                                "Normal",
                                "SuccessfulDelete",
                                &format!("Deleted pod: {pod_name}"),
                            );
                        }
                        Err(e) => self.recorder.record(
                            &rs_ref,
                            "Warning",
                            "FailedDelete",
                            &format!("Error deleting: {e}"),
                        ),
                    }
                }
            }
        }
        let template_labels: BTreeMap<String, String> = spec
            .template
            .as_ref()
            .and_then(|t| t.metadata.as_ref())
            .and_then(|m| m.labels.clone())
            .unwrap_or_default();
        let active: Vec<&Arc<Pod>> = owned.iter().filter(|p| is_active(p)).collect();
        let fully = active
            .iter()
            .filter(|p| {
                let l = labels_of(p);
                template_labels.iter().all(|(k, v)| l.get(k) == Some(v))
            })
            .count();
        let ready = active.iter().filter(|p| is_ready(p)).count();
        let min_ready = spec.min_ready_seconds.unwrap_or(0);
        let now = jiff::Timestamp::now();
        let available = active
            .iter()
            .filter(|p| is_available(p, min_ready, now))
            .count();
        let status = json!({
            "replicas": active.len(),
            "fullyLabeledReplicas": fully,
            "readyReplicas": ready,
            "availableReplicas": available,
            "observedGeneration": rs.metadata.generation,
        });
        let current = rs.status.as_ref().map(|s| {
            json!({
                "replicas": s.replicas,
                "fullyLabeledReplicas": s.fully_labeled_replicas.unwrap_or(0),
                "readyReplicas": s.ready_replicas.unwrap_or(0),
                "availableReplicas": s.available_replicas.unwrap_or(0),
                "observedGeneration": s.observed_generation,
            })
        });
        if current.as_ref() != Some(&status) {
            let sets: Api<ReplicaSet> = Api::namespaced(self.client.clone(), &ns);
            let patch = json!({"status": status});
            if let Err(e) = sets
                .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                tracing::debug!(replicaset = %name, error = %e, "cannot update status");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_go_in_slow_start_batches() {
        let cases: &[(usize, &[usize])] = &[(0, &[]), (1, &[1]), (3, &[1, 2]), (10, &[1, 2, 4, 3])];
        for (count, want) in cases {
            assert_eq!(slow_start_batches(*count), *want, "{count}");
        }
    }

    fn pod(name: &str, node: &str, phase: &str, ready: bool, created: &str) -> Arc<Pod> {
        Arc::new(serde_json::from_value(json!({
            "metadata": {"name": name, "creationTimestamp": created},
            "spec": {"nodeName": node, "containers": []},
            "status": {"phase": phase, "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]},
        })).expect("pod"))
    }

    #[test]
    fn a_pod_is_available_once_ready_for_min_ready_seconds() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "status": {"conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2024-01-01T00:00:00Z"}]},
        }))
        .expect("pod");
        let at = |s: &str| s.parse::<jiff::Timestamp>().expect("time");
        assert!(is_available(&pod, 0, at("2024-01-01T00:00:00Z")));
        assert!(!is_available(&pod, 10, at("2024-01-01T00:00:09Z")));
        assert!(is_available(&pod, 10, at("2024-01-01T00:00:10Z")));
    }

    #[test]
    fn deletion_prefers_unscheduled_then_pending_then_not_ready_then_newest() {
        let mut pods = vec![
            pod("old-ready", "n", "Running", true, "2024-01-01T00:00:00Z"),
            pod("new-ready", "n", "Running", true, "2024-01-02T00:00:00Z"),
            pod("not-ready", "n", "Running", false, "2024-01-01T00:00:00Z"),
            pod("pending", "n", "Pending", false, "2024-01-01T00:00:00Z"),
            pod("unscheduled", "", "Pending", false, "2024-01-01T00:00:00Z"),
        ];
        deletion_order(&mut pods);
        let names: Vec<_> = pods
            .iter()
            .map(|p| p.metadata.name.clone().unwrap_or_default())
            .collect();
        assert_eq!(
            names,
            [
                "unscheduled",
                "pending",
                "not-ready",
                "new-ready",
                "old-ready"
            ]
        );
    }
}
