//! The Deployment controller (upstream `pkg/controller/deployment`): rolls each Deployment's
//! Pod template out through ReplicaSets named `<deployment>-<pod-template-hash>`, one per
//! template, honouring the RollingUpdate budgets (`maxSurge`, `maxUnavailable`) or Recreate,
//! `paused`, `minReadySeconds` and `revisionHistoryLimit`, and reports replica counts and the
//! Available and Progressing conditions in the Deployment's status.
//!
//! Expectations: a Deployment whose last writes to its ReplicaSets have not yet shown up in
//! the ReplicaSet watch is not acted on again, so a decision never rests on a ReplicaSet as
//! it was before this controller changed it (upstream relies on its work queue and on the
//! ReplicaSet controller for this). Writes carry the resourceVersion they were decided on, so
//! a stale cache makes a write fail with a conflict rather than undo someone else's.
//! Deviation: Deployments are resynced on a short tick rather than through a work queue fed
//! by event handlers, as the ReplicaSet controller is.

mod util;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector::Store;
use kube::Api;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::client::{EventRecorder, ObjectRef};
use crate::meta::label_selector;
use util::{desired, rs_replicas};

const RESYNC: Duration = Duration::from_millis(250);
/// Unobserved writes stop holding a Deployment back after this long.
const EXPECTATIONS_TIMEOUT: Duration = Duration::from_secs(60);

/// The ReplicaSet writes of a Deployment's last sync that the watch has yet to show: a name
/// with the resourceVersion written, or `None` for a deletion.
#[derive(Debug, Default)]
struct Expectations {
    writes: Vec<(String, Option<u64>)>,
    since: Option<Instant>,
}

/// A resourceVersion as the number it is in rkube (the etcd revision of the write), so the
/// controller can tell whether its cache has caught up with a write.
fn rv_number(meta: &ObjectMeta) -> u64 {
    meta.resource_version
        .as_deref()
        .and_then(|rv| rv.parse().ok())
        .unwrap_or(0)
}

fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true))
}

fn created_key(rs: &ReplicaSet) -> (Option<jiff::Timestamp>, String) {
    (
        rs.metadata.creation_timestamp.as_ref().map(|t| t.0),
        rs.metadata.name.clone().unwrap_or_default(),
    )
}

fn available(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0)
}

/// A failed step of a sync; the next tick tries again.
#[derive(Debug, thiserror::Error)]
enum SyncError {
    #[error(transparent)]
    Api(#[from] kube::Error),
    #[error("replicaset {0} collides with the new template's name")]
    Collision(String),
}

pub struct DeploymentController {
    client: kube::Client,
    deployments: Store<Deployment>,
    sets: Store<ReplicaSet>,
    pods: Store<Pod>,
    expectations: HashMap<String, Expectations>,
    recorder: EventRecorder,
}

/// One Deployment being synced: its working copy, its ReplicaSets (updated as they are
/// written) and where events about it go.
struct Sync {
    d: Deployment,
    sets: Vec<ReplicaSet>,
    api: Api<ReplicaSet>,
    object: ObjectRef,
    writes: Vec<(String, Option<u64>)>,
}

impl Sync {
    fn refs(&self) -> Vec<&ReplicaSet> {
        self.sets.iter().collect()
    }

    fn name(&self, i: usize) -> String {
        self.sets[i].metadata.name.clone().unwrap_or_default()
    }

    /// Indices of the ReplicaSets other than `new`, oldest first.
    fn old(&self, new: Option<usize>) -> Vec<usize> {
        let mut old: Vec<usize> = (0..self.sets.len()).filter(|i| Some(*i) != new).collect();
        old.sort_by_key(|i| created_key(&self.sets[*i]));
        old
    }

    fn old_active(&self, new: Option<usize>) -> Vec<usize> {
        self.old(new)
            .into_iter()
            .filter(|i| rs_replicas(&self.sets[*i]) > 0)
            .collect()
    }

    fn status(&self) -> k8s_openapi::api::apps::v1::DeploymentStatus {
        self.d.status.clone().unwrap_or_default()
    }
}

impl DeploymentController {
    pub async fn run(
        client: kube::Client,
        informers: Arc<super::Informers>,
        shutdown: CancellationToken,
    ) {
        let deployments = informers.store::<Deployment>("deployment");
        let sets = informers.store::<ReplicaSet>("replicaset");
        let pods = informers.store::<Pod>("pod");
        let mut c = DeploymentController {
            // Upstream's Deployment events come from `deployment-controller`.
            recorder: EventRecorder::new(client.clone(), "deployment-controller", ""),
            client,
            deployments,
            sets,
            pods,
            expectations: HashMap::new(),
        };
        let work = async {
            let (Ok(()), Ok(()), Ok(())) = (
                c.deployments.wait_until_ready().await,
                c.sets.wait_until_ready().await,
                c.pods.wait_until_ready().await,
            ) else {
                return;
            };
            tracing::info!("deployment controller started");
            loop {
                for d in c.deployments.state() {
                    c.sync_deployment(&d).await;
                }
                tokio::time::sleep(RESYNC).await;
            }
        };
        tokio::select! {
            () = work => {}
            () = shutdown.cancelled() => {}
        }
    }

    /// Whether the cache shows every ReplicaSet write of the Deployment's last sync.
    fn observed(&mut self, uid: &str, ns: &str) -> bool {
        let Some(exp) = self.expectations.get_mut(uid) else {
            return true;
        };
        let sets = &self.sets;
        exp.writes.retain(|(name, rv)| {
            let cached = sets.state().into_iter().find(|rs| {
                rs.metadata.namespace.as_deref() == Some(ns)
                    && rs.metadata.name.as_deref() == Some(name.as_str())
            });
            match (rv, cached) {
                (Some(rv), Some(rs)) => rv_number(&rs.metadata) < *rv,
                (Some(_), None) => true,
                (None, cached) => cached.is_some(),
            }
        });
        let expired = exp
            .since
            .is_some_and(|t| t.elapsed() > EXPECTATIONS_TIMEOUT);
        exp.writes.is_empty() || expired
    }

    async fn sync_deployment(&mut self, d: &Deployment) {
        let (Some(ns), Some(name), Some(uid)) = (
            d.metadata.namespace.clone(),
            d.metadata.name.clone(),
            d.metadata.uid.clone(),
        ) else {
            return;
        };
        if !self.observed(&uid, &ns) {
            return;
        }
        self.expectations.remove(&uid);
        let mut s = Sync {
            d: d.clone(),
            sets: Vec::new(),
            api: Api::namespaced(self.client.clone(), &ns),
            object: ObjectRef {
                kind: "Deployment".into(),
                api_version: "apps/v1".into(),
                namespace: ns.clone(),
                name: name.clone(),
                uid: uid.clone(),
                field_path: String::new(),
            },
            writes: Vec::new(),
        };
        if let Err(e) = self.sync(&mut s).await {
            tracing::debug!(deployment = %name, error = %e, "sync failed; retrying");
        }
        if let Err(e) = self.write_status(d, &mut s).await {
            tracing::debug!(deployment = %name, error = %e, "cannot update status");
        }
        if !s.writes.is_empty() {
            self.expectations.insert(
                uid,
                Expectations {
                    writes: s.writes,
                    since: Some(Instant::now()),
                },
            );
        }
    }

    /// Upstream `syncDeployment`.
    async fn sync(&mut self, s: &mut Sync) -> Result<(), SyncError> {
        let Some(selector) = s.d.spec.as_ref().map(|sp| sp.selector.clone()) else {
            return Ok(());
        };
        if label_selector::is_empty(&selector) {
            return Ok(());
        }
        s.sets = self.claim_replica_sets(s, &selector).await;
        if s.d.metadata.deletion_timestamp.is_some() {
            let new = self.new_replica_set(s, false).await?;
            self.sync_status_only(s, new);
            return Ok(());
        }
        self.check_paused_conditions(s);
        let paused = s.d.spec.as_ref().and_then(|sp| sp.paused).unwrap_or(false);
        if paused || self.is_scaling_event(s).await? {
            return self.sync_scale(s, paused).await;
        }
        if util::is_rolling_update(&s.d) {
            self.rollout_rolling(s).await
        } else {
            self.rollout_recreate(s).await
        }
    }

    /// Upstream `getReplicaSetsForDeployment`: the ReplicaSets this Deployment controls,
    /// adopting orphans its selector matches and releasing its own that it no longer matches.
    async fn claim_replica_sets(
        &mut self,
        s: &Sync,
        selector: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
    ) -> Vec<ReplicaSet> {
        let ns = s.object.namespace.as_str();
        let uid = s.object.uid.as_str();
        let alive = s.d.metadata.deletion_timestamp.is_none();
        let mut owned = Vec::new();
        for rs in self.sets.state() {
            if rs.metadata.namespace.as_deref() != Some(ns) {
                continue;
            }
            let labels = rs.metadata.labels.clone().unwrap_or_default();
            let matches = label_selector::matches(selector, &labels);
            let rs_name = rs.metadata.name.clone().unwrap_or_default();
            let refs = rs.metadata.owner_references.clone().unwrap_or_default();
            match controller_of(&rs.metadata).map(|r| r.uid.as_str()) {
                Some(u) if u == uid && matches => owned.push((*rs).clone()),
                Some(u) if u == uid && alive => {
                    let refs: Vec<_> = refs.into_iter().filter(|r| r.uid != uid).collect();
                    let patch =
                        json!({"metadata": {"ownerReferences": refs, "uid": rs.metadata.uid}});
                    if let Err(e) = s
                        .api
                        .patch(&rs_name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                    {
                        tracing::warn!(replicaset = %rs_name, error = %e, "cannot release replicaset");
                    }
                }
                None if matches && alive && rs.metadata.deletion_timestamp.is_none() => {
                    let mut refs = refs;
                    refs.push(super::controller_ref(&s.d));
                    let patch =
                        json!({"metadata": {"ownerReferences": refs, "uid": rs.metadata.uid}});
                    match s
                        .api
                        .patch(&rs_name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                    {
                        Ok(adopted) => owned.push(adopted),
                        Err(e) => {
                            tracing::warn!(replicaset = %rs_name, error = %e, "cannot adopt replicaset")
                        }
                    }
                }
                _ => {}
            }
        }
        owned.sort_by_key(created_key);
        owned
    }

    /// Upstream `getNewReplicaSet`: the ReplicaSet of the current template, its annotations
    /// and revision brought up to date; created when `create` and there is none.
    async fn new_replica_set(
        &mut self,
        s: &mut Sync,
        create: bool,
    ) -> Result<Option<usize>, SyncError> {
        let template =
            s.d.spec
                .as_ref()
                .map(|sp| sp.template.clone())
                .unwrap_or_default();
        let existing = s.sets.iter().position(|rs| {
            rs.spec
                .as_ref()
                .and_then(|sp| sp.template.as_ref())
                .is_some_and(|t| util::equal_ignore_hash(t, &template))
        });
        let max_old = (0..s.sets.len())
            .filter(|i| Some(*i) != existing)
            .map(|i| util::revision(&s.sets[i]))
            .max()
            .unwrap_or(0);
        let new_revision = max_old + 1;
        let min_ready = s.d.spec.as_ref().and_then(|sp| sp.min_ready_seconds);
        if let Some(i) = existing {
            let mut copy = s.sets[i].clone();
            let annotated = util::set_new_rs_annotations(&s.d, &mut copy, new_revision, true);
            let spec = copy.spec.get_or_insert_with(Default::default);
            let min_ready_changed = spec.min_ready_seconds.unwrap_or(0) != min_ready.unwrap_or(0);
            if annotated || min_ready_changed {
                spec.min_ready_seconds = min_ready;
                let name = s.name(i);
                let updated = s.api.replace(&name, &PostParams::default(), &copy).await?;
                s.writes.push((name, Some(rv_number(&updated.metadata))));
                s.sets[i] = updated;
            }
            let rev = s.sets[i]
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(util::REVISION))
                .cloned()
                .unwrap_or_default();
            set_deployment_revision(&mut s.d, &rev);
            let mut status = s.status();
            if util::has_progress_deadline(&s.d)
                && util::condition(&status, "Progressing").is_none()
            {
                util::set_condition(
                    &mut status,
                    util::new_condition(
                        "Progressing",
                        "True",
                        util::FOUND_NEW_RS,
                        format!("Found new replica set {:?}", s.name(i)),
                    ),
                );
                s.d.status = Some(status);
            }
            return Ok(Some(i));
        }
        if !create {
            return Ok(None);
        }
        let collision_count = s.d.status.as_ref().and_then(|st| st.collision_count);
        let hash = util::pod_template_hash(&template, collision_count);
        let mut rs_template = template.clone();
        rs_template
            .metadata
            .get_or_insert_with(Default::default)
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert(util::POD_TEMPLATE_HASH.into(), hash.clone());
        let mut selector =
            s.d.spec
                .as_ref()
                .map(|sp| sp.selector.clone())
                .unwrap_or_default();
        selector
            .match_labels
            .get_or_insert_with(BTreeMap::new)
            .insert(util::POD_TEMPLATE_HASH.into(), hash.clone());
        let name = format!("{}-{hash}", s.object.name);
        let mut rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(s.object.namespace.clone()),
                owner_references: Some(vec![super::controller_ref(&s.d)]),
                labels: rs_template.metadata.as_ref().and_then(|m| m.labels.clone()),
                ..Default::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(0),
                min_ready_seconds: min_ready,
                selector,
                template: Some(rs_template),
            }),
            status: None,
        };
        let replicas = {
            let mut all = s.refs();
            all.push(&rs);
            util::new_rs_new_replicas(&s.d, &all, &rs)
        };
        if let Some(spec) = rs.spec.as_mut() {
            spec.replicas = Some(replicas);
        }
        util::set_new_rs_annotations(&s.d, &mut rs, new_revision, false);
        let (created, already) = match s.api.create(&PostParams::default(), &rs).await {
            Ok(created) => (created, false),
            Err(kube::Error::Api(e)) if e.code == 409 => {
                let current = s.api.get(&name).await?;
                let ours = controller_of(&current.metadata).is_some_and(|r| r.uid == s.object.uid);
                let same = current
                    .spec
                    .as_ref()
                    .and_then(|sp| sp.template.as_ref())
                    .is_some_and(|t| util::equal_ignore_hash(t, &template));
                if !(ours && same) {
                    // A hash collision: the next name comes from a higher count.
                    let mut status = s.status();
                    status.collision_count = Some(collision_count.unwrap_or(0) + 1);
                    s.d.status = Some(status);
                    return Err(SyncError::Collision(name));
                }
                (current, true)
            }
            Err(e) => {
                let msg = format!("Failed to create new replica set {name:?}: {e}");
                if util::has_progress_deadline(&s.d) {
                    let mut status = s.status();
                    util::set_condition(
                        &mut status,
                        util::new_condition(
                            "Progressing",
                            "False",
                            util::FAILED_RS_CREATE,
                            msg.clone(),
                        ),
                    );
                    s.d.status = Some(status);
                }
                self.recorder
                    .record(&s.object, "Warning", util::FAILED_RS_CREATE, &msg);
                return Err(e.into());
            }
        };
        s.writes
            .push((name.clone(), Some(rv_number(&created.metadata))));
        if !already && replicas > 0 {
            self.recorder.record(
                &s.object,
                "Normal",
                "ScalingReplicaSet",
                &format!("Scaled up replica set {name} from 0 to {replicas}"),
            );
        }
        set_deployment_revision(&mut s.d, &new_revision.to_string());
        if !already && util::has_progress_deadline(&s.d) {
            let mut status = s.status();
            util::set_condition(
                &mut status,
                util::new_condition(
                    "Progressing",
                    "True",
                    util::NEW_RS_CREATED,
                    format!("Created new replica set {name:?}"),
                ),
            );
            s.d.status = Some(status);
        }
        s.sets.push(created);
        Ok(Some(s.sets.len() - 1))
    }

    /// Upstream `scaleReplicaSet`: the size and the replica annotations; an event when the
    /// size changed. Returns whether it did.
    async fn scale_rs(&mut self, s: &mut Sync, i: usize, size: i32) -> Result<bool, SyncError> {
        let old = rs_replicas(&s.sets[i]);
        let want = desired(&s.d);
        let max = want + util::max_surge(&s.d);
        let mut copy = s.sets[i].clone();
        let annotated = util::set_replicas_annotations(&mut copy, want, max);
        if old == size && !annotated {
            return Ok(false);
        }
        copy.spec.get_or_insert_with(Default::default).replicas = Some(size);
        let name = s.name(i);
        let updated = s.api.replace(&name, &PostParams::default(), &copy).await?;
        s.writes
            .push((name.clone(), Some(rv_number(&updated.metadata))));
        s.sets[i] = updated;
        if old == size {
            return Ok(false);
        }
        let direction = if old < size { "up" } else { "down" };
        self.recorder.record(
            &s.object,
            "Normal",
            "ScalingReplicaSet",
            &format!("Scaled {direction} replica set {name} from {old} to {size}"),
        );
        Ok(true)
    }

    /// Upstream `rolloutRolling`.
    async fn rollout_rolling(&mut self, s: &mut Sync) -> Result<(), SyncError> {
        let new = self.new_replica_set(s, true).await?;
        if let Some(n) = new {
            let current = rs_replicas(&s.sets[n]);
            let want = desired(&s.d);
            if current != want {
                let size = if current > want {
                    want
                } else {
                    util::new_rs_new_replicas(&s.d, &s.refs(), &s.sets[n])
                };
                if self.scale_rs(s, n, size).await? {
                    self.sync_rollout_status(s, new);
                    return Ok(());
                }
            }
        }
        if self.reconcile_old_replica_sets(s, new).await? {
            self.sync_rollout_status(s, new);
            return Ok(());
        }
        if util::complete(&s.d, &s.status()) {
            self.cleanup(s, new).await?;
        }
        self.sync_rollout_status(s, new);
        Ok(())
    }

    /// Upstream `reconcileOldReplicaSets`: scales old ReplicaSets down as far as the
    /// unavailability budget allows, unhealthy replicas first.
    async fn reconcile_old_replica_sets(
        &mut self,
        s: &mut Sync,
        new: Option<usize>,
    ) -> Result<bool, SyncError> {
        let old = s.old_active(new);
        if old.is_empty() {
            return Ok(false);
        }
        let all_pods = util::spec_replicas(&s.refs());
        let min_available = desired(&s.d) - util::max_unavailable(&s.d);
        let new_unavailable = new
            .map(|n| rs_replicas(&s.sets[n]) - util::countable_available(&s.sets[n]))
            .unwrap_or(0);
        let max_scaled_down = all_pods - min_available - new_unavailable;
        if max_scaled_down <= 0 {
            return Ok(false);
        }
        // Upstream `cleanupUnhealthyReplicas`: unavailable old replicas go first; they
        // count against no budget.
        let mut cleaned = 0;
        for &i in &old {
            if cleaned >= max_scaled_down {
                break;
            }
            let replicas = rs_replicas(&s.sets[i]);
            let unhealthy = replicas - util::countable_available(&s.sets[i]);
            if replicas == 0 || unhealthy == 0 {
                continue;
            }
            let n = (max_scaled_down - cleaned).min(unhealthy);
            self.scale_rs(s, i, replicas - n).await?;
            cleaned += n;
        }
        // Upstream `scaleDownOldReplicaSetsForRollingUpdate`.
        let available: i32 = s.sets.iter().map(util::countable_available).sum();
        let mut scaled = 0;
        if available > min_available {
            let total = available - min_available;
            for &i in &old {
                if scaled >= total {
                    break;
                }
                let replicas = rs_replicas(&s.sets[i]);
                if replicas == 0 {
                    continue;
                }
                let n = replicas.min(total - scaled);
                self.scale_rs(s, i, replicas - n).await?;
                scaled += n;
            }
        }
        Ok(cleaned + scaled > 0)
    }

    /// Upstream `rolloutRecreate`: every old Pod gone before the new ReplicaSet grows.
    async fn rollout_recreate(&mut self, s: &mut Sync) -> Result<(), SyncError> {
        let mut new = self.new_replica_set(s, false).await?;
        let mut scaled_down = false;
        for i in s.old_active(new) {
            scaled_down |= self.scale_rs(s, i, 0).await?;
        }
        if scaled_down || self.old_pods_running(s, new) {
            self.sync_rollout_status(s, new);
            return Ok(());
        }
        if new.is_none() {
            new = self.new_replica_set(s, true).await?;
        }
        if let Some(n) = new {
            let want = desired(&s.d);
            self.scale_rs(s, n, want).await?;
        }
        if util::complete(&s.d, &s.status()) {
            self.cleanup(s, new).await?;
        }
        self.sync_rollout_status(s, new);
        Ok(())
    }

    /// Upstream `oldPodsRunning`: an old ReplicaSet still counts Pods, or a Pod of one has
    /// not finished (terminating ones included).
    fn old_pods_running(&self, s: &Sync, new: Option<usize>) -> bool {
        let old = s.old(new);
        if old
            .iter()
            .any(|i| s.sets[*i].status.as_ref().is_some_and(|st| st.replicas > 0))
        {
            return true;
        }
        let old_uids: Vec<&str> = old
            .iter()
            .filter_map(|i| s.sets[*i].metadata.uid.as_deref())
            .collect();
        self.pods.state().iter().any(|p| {
            p.metadata.namespace.as_deref() == Some(s.object.namespace.as_str())
                && controller_of(&p.metadata).is_some_and(|r| old_uids.contains(&r.uid.as_str()))
                && !matches!(
                    p.status.as_ref().and_then(|st| st.phase.as_deref()),
                    Some("Failed" | "Succeeded")
                )
        })
    }

    /// Upstream `isScalingEvent`: an active ReplicaSet was sized for another replica count.
    async fn is_scaling_event(&mut self, s: &mut Sync) -> Result<bool, SyncError> {
        self.new_replica_set(s, false).await?;
        let want = desired(&s.d).to_string();
        Ok(s.sets.iter().any(|rs| {
            rs_replicas(rs) > 0
                && rs
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(util::DESIRED_REPLICAS))
                    .is_some_and(|v| *v != want)
        }))
    }

    /// Upstream `sync`: a paused Deployment or a scaling event resizes the ReplicaSets
    /// without rolling anything out.
    async fn sync_scale(&mut self, s: &mut Sync, paused: bool) -> Result<(), SyncError> {
        let new = self.new_replica_set(s, false).await?;
        self.scale(s, new).await?;
        if paused {
            self.cleanup(s, new).await?;
        }
        self.sync_status_only(s, new);
        Ok(())
    }

    /// Upstream `scale`: one active ReplicaSet takes the whole count; otherwise the
    /// difference is shared in proportion to each one's size (RollingUpdate).
    async fn scale(&mut self, s: &mut Sync, new: Option<usize>) -> Result<(), SyncError> {
        let want = desired(&s.d);
        let mut active: Vec<usize> = (0..s.sets.len())
            .filter(|i| rs_replicas(&s.sets[*i]) > 0)
            .collect();
        let single = match active.len() {
            0 => new.or_else(|| s.old(new).last().copied()),
            1 => Some(active[0]),
            _ => None,
        };
        if let Some(i) = single {
            if rs_replicas(&s.sets[i]) != want {
                self.scale_rs(s, i, want).await?;
            }
            return Ok(());
        }
        if let Some(n) = new {
            let rs = &s.sets[n];
            let annotated = rs
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(util::DESIRED_REPLICAS))
                .and_then(|v| v.parse::<i32>().ok());
            if rs_replicas(rs) == want && annotated == Some(want) && available(rs) == want {
                for i in s.old_active(new) {
                    self.scale_rs(s, i, 0).await?;
                }
                return Ok(());
            }
        }
        if !util::is_rolling_update(&s.d) {
            return Ok(());
        }
        let current: i32 = active.iter().map(|i| rs_replicas(&s.sets[*i])).sum();
        let allowed = if want > 0 {
            want + util::max_surge(&s.d)
        } else {
            0
        };
        let to_add = allowed - current;
        // Growing favours the largest and then the newest; shrinking the largest and then
        // the oldest.
        active.sort_by(|a, b| {
            let (ra, rb) = (&s.sets[*a], &s.sets[*b]);
            let by_size = rs_replicas(rb).cmp(&rs_replicas(ra));
            let by_age = created_key(ra).cmp(&created_key(rb));
            by_size.then(if to_add > 0 { by_age.reverse() } else { by_age })
        });
        let mut added = 0;
        let mut sizes = Vec::new();
        for &i in &active {
            let share = if to_add != 0 {
                util::proportion(&s.sets[i], &s.d, to_add, added)
            } else {
                0
            };
            added += share;
            sizes.push(rs_replicas(&s.sets[i]) + share);
        }
        if let Some(first) = sizes.first_mut() {
            if to_add != 0 {
                *first = (*first + to_add - added).max(0);
            }
        }
        for (i, size) in active.into_iter().zip(sizes) {
            self.scale_rs(s, i, size).await?;
        }
        Ok(())
    }

    /// Upstream `cleanupDeployment`: old ReplicaSets beyond `revisionHistoryLimit`, lowest
    /// revision first, once they have no Pods.
    async fn cleanup(&mut self, s: &mut Sync, new: Option<usize>) -> Result<(), SyncError> {
        let Some(limit) = s.d.spec.as_ref().and_then(|sp| sp.revision_history_limit) else {
            return Ok(());
        };
        let mut old: Vec<usize> = s
            .old(new)
            .into_iter()
            .filter(|i| s.sets[*i].metadata.deletion_timestamp.is_none())
            .collect();
        let excess = old.len() as i64 - i64::from(limit);
        if excess <= 0 {
            return Ok(());
        }
        old.sort_by_key(|i| (util::revision(&s.sets[*i]), created_key(&s.sets[*i])));
        for &i in old.iter().take(excess as usize) {
            let rs = &s.sets[i];
            let settled = rs.status.as_ref().is_none_or(|st| {
                st.replicas == 0 && st.observed_generation >= rs.metadata.generation
            });
            if rs_replicas(rs) != 0 || !settled {
                continue;
            }
            let name = s.name(i);
            let precondition = DeleteParams {
                preconditions: Some(kube::api::Preconditions {
                    uid: rs.metadata.uid.clone(),
                    resource_version: rs.metadata.resource_version.clone(),
                }),
                ..Default::default()
            };
            s.api.delete(&name, &precondition).await?;
            s.writes.push((name, None));
        }
        Ok(())
    }

    /// Upstream `checkPausedConditions`: Progressing is Unknown while paused.
    fn check_paused_conditions(&self, s: &mut Sync) {
        if !util::has_progress_deadline(&s.d) {
            return;
        }
        let mut status = s.status();
        let reason = util::condition(&status, "Progressing").and_then(|c| c.reason.clone());
        if reason.as_deref() == Some(util::TIMED_OUT) {
            return;
        }
        let paused = s.d.spec.as_ref().and_then(|sp| sp.paused).unwrap_or(false);
        let paused_cond = reason.as_deref() == Some(util::PAUSED);
        let cond = if paused && !paused_cond {
            util::new_condition(
                "Progressing",
                "Unknown",
                util::PAUSED,
                "Deployment is paused".into(),
            )
        } else if !paused && paused_cond {
            util::new_condition(
                "Progressing",
                "Unknown",
                util::RESUMED,
                "Deployment is resumed".into(),
            )
        } else {
            return;
        };
        util::set_condition(&mut status, cond);
        s.d.status = Some(status);
    }

    /// Upstream `syncDeploymentStatus`: the counts and Available, Progressing untouched.
    fn sync_status_only(&self, s: &mut Sync, new: Option<usize>) {
        let status = util::calculate_status(&s.refs(), new.map(|n| &s.sets[n]), &s.d);
        s.d.status = Some(status);
    }

    /// Upstream `syncRolloutStatus`: the counts, Available, and Progressing from the
    /// rollout's progress against its deadline.
    fn sync_rollout_status(&self, s: &mut Sync, new: Option<usize>) {
        let mut status = util::calculate_status(&s.refs(), new.map(|n| &s.sets[n]), &s.d);
        let subject = match new {
            Some(n) => format!("ReplicaSet {:?}", s.name(n)),
            None => format!("Deployment {:?}", s.object.name),
        };
        if !util::has_progress_deadline(&s.d) {
            util::remove_condition(&mut status, "Progressing");
        }
        let current = util::condition(&status, "Progressing").cloned();
        let is_complete = status.replicas == status.updated_replicas
            && current.as_ref().and_then(|c| c.reason.as_deref()) == Some(util::NEW_RS_AVAILABLE);
        if util::has_progress_deadline(&s.d) && !is_complete {
            if util::complete(&s.d, &status) {
                util::set_condition(
                    &mut status,
                    util::new_condition(
                        "Progressing",
                        "True",
                        util::NEW_RS_AVAILABLE,
                        format!("{subject} has successfully progressed."),
                    ),
                );
            } else if util::progressing(&s.d, &status) {
                let mut cond = util::new_condition(
                    "Progressing",
                    "True",
                    util::RS_UPDATED,
                    format!("{subject} is progressing."),
                );
                if let Some(c) = current.filter(|c| c.status == "True") {
                    cond.last_transition_time = c.last_transition_time;
                }
                util::remove_condition(&mut status, "Progressing");
                status.conditions.get_or_insert_with(Vec::new).push(cond);
            } else if util::timed_out(&s.d, &status, jiff::Timestamp::now()) {
                util::set_condition(
                    &mut status,
                    util::new_condition(
                        "Progressing",
                        "False",
                        util::TIMED_OUT,
                        format!("{subject} has timed out progressing."),
                    ),
                );
            }
        }
        s.d.status = Some(status);
    }

    /// Writes the working copy's status and annotations when they differ from the cached
    /// Deployment's (through `status`, which keeps both, as upstream's status strategy does).
    async fn write_status(&self, cached: &Deployment, s: &mut Sync) -> Result<(), SyncError> {
        if s.d.status == cached.status && s.d.metadata.annotations == cached.metadata.annotations {
            return Ok(());
        }
        let deployments: Api<Deployment> =
            Api::namespaced(self.client.clone(), &s.object.namespace);
        deployments
            .replace_status(&s.object.name, &PostParams::default(), &s.d)
            .await?;
        Ok(())
    }
}

/// Upstream `SetDeploymentRevision`.
fn set_deployment_revision(d: &mut Deployment, revision: &str) {
    if revision.is_empty() {
        return;
    }
    let annotations = d.metadata.annotations.get_or_insert_with(BTreeMap::new);
    if annotations.get(util::REVISION).map(String::as_str) != Some(revision) {
        annotations.insert(util::REVISION.into(), revision.into());
    }
}
