//! The garbage collector (upstream `pkg/controller/garbagecollector`): deletes the objects
//! whose owners are all gone, and finishes the deletions that wait on dependents.
//!
//! - A dependent none of whose `ownerReferences` names an existing object (absent, or present
//!   with another uid) is deleted with Background propagation, or with the propagation its
//!   own `orphan`/`foregroundDeletion` finalizer asks for.
//! - An owner marked for deletion with `foregroundDeletion` has its dependents deleted; it
//!   loses the finalizer (and so goes) once no dependent with `blockOwnerDeletion` is left.
//! - An owner marked for deletion with `orphan` has its reference removed from every
//!   dependent, then loses the finalizer.
//!
//! It watches every kind the API server serves that can be listed, watched and deleted
//! (upstream `GetDeletableResources`, Events aside as upstream ignores them), for their
//! metadata only ([`PartialObjectMeta`], as upstream's metadata informers), and finds them again
//! by discovery every [`DISCOVERY_PERIOD`], so a kind
//! served later is collected without a change here. An owner the watches do not hold is
//! looked up with a live GET before its dependents are judged, as upstream verifies "virtual"
//! owners: a lagging watch never gets a dependent deleted.
//!
//! Deviation: upstream keeps an incrementally updated graph with work queues; rkube rebuilds
//! the graph from the watch caches on each change (see [`graph`]), which is cheap at the
//! sizes of one machine and leaves one place where decisions are made.

pub mod graph;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{
    Api, DeleteParams, DynamicObject, Patch, PatchParams, Preconditions, PropagationPolicy,
};
use kube::core::PartialObjectMeta;
use kube::discovery::{verbs, Discovery, Scope};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt as _};
use serde_json::{json, Value};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::meta::object::{FINALIZER_FOREGROUND, FINALIZER_ORPHAN};
use graph::{decide, split_api_version, Decision, Graph, Kind, Node, OwnerState, Work};

/// How often the served kinds are discovered again (upstream resyncs its monitors every 30s).
pub const DISCOVERY_PERIOD: Duration = Duration::from_secs(30);
/// The least time between two passes over every watched object.
const PASS_SPACING: Duration = Duration::from_millis(200);
/// Resources never watched (upstream's default `GCIgnoredResources`).
const IGNORED: &[(&str, &str)] = &[("", "events"), ("events.k8s.io", "events")];
/// The first wait before an object whose handling failed is tried again; it doubles up to
/// [`RETRY_MAX`].
const RETRY_MIN: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(30);
/// How long an object acted on is left alone while the watch has not shown the result.
const SETTLE: Duration = Duration::from_secs(5);
/// Upstream keeps the 500 newest absent owners; rkube forgets them all past this many.
const ABSENT_CACHE: usize = 1000;
/// How often removing a finalizer is retried on a conflict before the next pass.
const FINALIZER_TRIES: usize = 3;

/// The kinds served, as discovery found them: those to watch, and every one an owner
/// reference may name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Kinds {
    pub watched: Vec<Kind>,
    pub all: Vec<Kind>,
}

impl Kinds {
    /// From discovery: every resource of every served version, and the preferred version's
    /// deletable ones to watch.
    pub fn discovered(discovery: &Discovery) -> Kinds {
        let mut kinds = Kinds::default();
        for group in discovery.groups() {
            for version in group.versions() {
                for (resource, caps) in group.versioned_resources(version) {
                    kinds.all.push(Kind {
                        resource,
                        namespaced: caps.scope == Scope::Namespaced,
                    });
                }
            }
            for (resource, caps) in group.recommended_resources() {
                let ignored = IGNORED
                    .iter()
                    .any(|(g, r)| resource.group == *g && resource.plural == *r);
                let deletable = [verbs::LIST, verbs::WATCH, verbs::DELETE]
                    .iter()
                    .all(|v| caps.supports_operation(v));
                if deletable && !ignored {
                    kinds.watched.push(Kind {
                        resource,
                        namespaced: caps.scope == Scope::Namespaced,
                    });
                }
            }
        }
        kinds
            .watched
            .sort_by(|a, b| a.resource.api_version.cmp(&b.resource.api_version));
        kinds
    }

    /// The kind an owner reference names: its exact version, else any served version of
    /// its group and kind (an object is the same object in every version).
    pub fn resolve(&self, api_version: &str, kind: &str) -> Option<&Kind> {
        let (group, version) = split_api_version(api_version);
        let same = |k: &&Kind| k.resource.group == group && k.resource.kind == kind;
        self.all
            .iter()
            .filter(same)
            .find(|k| k.resource.version == version)
            .or_else(|| self.all.iter().find(same))
    }
}

/// Why a dependent could not be judged now.
#[derive(Debug, thiserror::Error)]
enum GcError {
    #[error("owner kind {kind} of {api_version} is not served")]
    UnknownKind { api_version: String, kind: String },
    #[error("a cluster-scoped object cannot have the namespaced owner {kind} {name}")]
    NamespacedOwner { kind: String, name: String },
    #[error(transparent)]
    Api(#[from] kube::Error),
}

/// When an object may be looked at again, and at which resourceVersion it was last handled.
#[derive(Debug)]
struct Hold {
    resource_version: String,
    until: Instant,
    failures: u32,
}

pub struct GarbageCollector {
    client: kube::Client,
    kinds: Kinds,
    stores: Vec<(Kind, Store<PartialObjectMeta>)>,
    /// Owner references confirmed to name nothing (upstream `absentOwnerCache`).
    absent: HashSet<String>,
    holds: HashMap<String, Hold>,
}

/// Runs the collector until `shutdown`, watching whatever discovery finds and starting over
/// when the served kinds change.
pub async fn run(client: kube::Client, shutdown: CancellationToken) {
    let mut wait = RETRY_MIN;
    loop {
        let kinds = match discover(&client).await {
            Ok(kinds) => kinds,
            Err(e) => {
                tracing::warn!(error = %e, "garbage collector discovery failed; retrying");
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = shutdown.cancelled() => return,
                }
                wait = (wait * 2).min(RETRY_MAX);
                continue;
            }
        };
        wait = RETRY_MIN;
        let changed = async {
            loop {
                tokio::time::sleep(DISCOVERY_PERIOD).await;
                match discover(&client).await {
                    Ok(now) if now.watched != kinds.watched => return,
                    Ok(_) => {}
                    Err(e) => tracing::debug!(error = %e, "rediscovery failed"),
                }
            }
        };
        tokio::select! {
            () = GarbageCollector::collect(client.clone(), kinds.clone()) => return,
            () = changed => tracing::info!("served kinds changed; the garbage collector restarts"),
            () = shutdown.cancelled() => return,
        }
    }
}

async fn discover(client: &kube::Client) -> Result<Kinds, kube::Error> {
    let discovery = match Discovery::new(client.clone()).run_aggregated().await {
        Ok(d) => d,
        Err(_) => Discovery::new(client.clone()).run().await?,
    };
    Ok(Kinds::discovered(&discovery))
}

fn key(kind: &Kind, namespace: &str, reference: &OwnerReference) -> String {
    let ns = if kind.namespaced { namespace } else { "" };
    format!(
        "{}/{}/{ns}/{}/{}",
        kind.resource.group, kind.resource.kind, reference.name, reference.uid
    )
}

impl GarbageCollector {
    /// Watches `kinds.watched` and collects until a watch ends for good.
    pub async fn collect(client: kube::Client, kinds: Kinds) {
        let changed = Arc::new(Notify::new());
        let mut streams = Vec::new();
        let mut stores = Vec::new();
        for kind in &kinds.watched {
            let writer = reflector::store::Writer::new(kind.resource.clone());
            stores.push((kind.clone(), writer.as_reader()));
            // Metadata-only requests: the collector needs no more of any object.
            let api = Api::<PartialObjectMeta>::all_with(client.clone(), &kind.resource);
            let changed = changed.clone();
            let plural = kind.resource.plural.clone();
            streams.push(
                reflector::reflector(
                    writer,
                    watcher::watcher(api, watcher::Config::default())
                        .modify(crate::client::strip_managed_fields),
                )
                .default_backoff()
                .for_each(move |event| {
                    match event {
                        Ok(_) => changed.notify_one(),
                        Err(e) => {
                            tracing::warn!(resource = %plural, error = %e, "watch failed; retrying")
                        }
                    }
                    async {}
                }),
            );
        }
        let mut gc = GarbageCollector {
            client,
            kinds,
            stores,
            absent: HashSet::new(),
            holds: HashMap::new(),
        };
        let work = async {
            for (_, store) in &gc.stores {
                if store.wait_until_ready().await.is_err() {
                    return;
                }
            }
            tracing::info!(kinds = gc.stores.len(), "garbage collector started");
            loop {
                let started = Instant::now();
                gc.pass().await;
                // A pass looks at everything, so passes are spaced out: at most a fifth of a
                // core goes to them however busy the cluster is (changes meanwhile are
                // coalesced into the next pass).
                let spent = started.elapsed();
                tokio::time::sleep(PASS_SPACING.max(spent * 4)).await;
                let now = Instant::now();
                let next = gc
                    .holds
                    .values()
                    .map(|h| h.until)
                    .filter(|until| *until > now)
                    .min()
                    .unwrap_or(now + RETRY_MAX);
                tokio::select! {
                    () = changed.notified() => {}
                    () = tokio::time::sleep_until(next) => {}
                }
            }
        };
        tokio::select! {
            _ = futures::future::join_all(streams) => {}
            () = work => {}
        }
    }

    /// One look at every watched object.
    async fn pass(&mut self) {
        let snapshot: Vec<(Kind, Vec<Arc<PartialObjectMeta>>)> = self
            .stores
            .iter()
            .map(|(kind, store)| (kind.clone(), store.state()))
            .collect();
        let graph = Graph::build(&snapshot);
        let now = Instant::now();
        let live: HashSet<&str> = graph.nodes.iter().map(|n| n.uid()).collect();
        // A hold over is forgotten, unless it counts failures for the next wait.
        self.holds
            .retain(|uid, h| live.contains(uid.as_str()) && (h.until > now || h.failures > 0));
        if self.absent.len() > ABSENT_CACHE {
            self.absent.clear();
        }
        for work in graph.work() {
            let index = match work {
                Work::Orphan(i) | Work::ForegroundDone(i) | Work::AttemptToDelete(i) => i,
            };
            let node = graph.nodes[index];
            if let Some(hold) = self.holds.get(node.uid()) {
                if hold.resource_version == node.resource_version() && hold.until > now {
                    continue;
                }
            }
            let outcome = match work {
                Work::Orphan(_) => self.orphan_dependents(&graph, &node).await.map(|()| true),
                Work::ForegroundDone(_) => self
                    .remove_finalizer(&node, FINALIZER_FOREGROUND)
                    .await
                    .map(|()| true)
                    .map_err(GcError::from),
                Work::AttemptToDelete(_) => self.attempt_to_delete(&graph, &node).await,
            };
            self.settle(&node, outcome);
        }
    }

    /// Holds `node` until the watch shows a change to it (or for a while), longer after each
    /// failure; `outcome` says whether anything was written, or what stopped it.
    fn settle(&mut self, node: &Node<'_>, outcome: Result<bool, GcError>) {
        let failures = match &outcome {
            Ok(_) => 0,
            Err(e) => {
                if matches!(e, GcError::Api(kube::Error::Api(ref s)) if s.code == 409) {
                    // The watch had not caught up with a change: judged again once it has.
                    tracing::debug!(object = %node.describe(), error = %e, "garbage collection conflicted");
                } else {
                    tracing::warn!(object = %node.describe(), error = %e, "garbage collection failed");
                }
                self.holds
                    .get(node.uid())
                    .map_or(1, |h| h.failures.saturating_add(1))
            }
        };
        let wait = match (&outcome, failures) {
            (Err(GcError::NamespacedOwner { .. }), _) => RETRY_MAX,
            (Ok(true), _) => SETTLE,
            // Kept: the watches lag behind an owner the API server has; they catch up soon.
            (Ok(false), _) => RETRY_MIN * 5,
            (Err(_), n) => (RETRY_MIN * 2u32.saturating_pow(n.min(8) - 1)).min(RETRY_MAX),
        };
        self.holds.insert(
            node.uid().to_string(),
            Hold {
                resource_version: node.resource_version().to_string(),
                until: Instant::now() + wait,
                failures,
            },
        );
    }

    fn api(&self, kind: &Kind, namespace: &str) -> Api<DynamicObject> {
        if kind.namespaced {
            Api::namespaced_with(self.client.clone(), namespace, &kind.resource)
        } else {
            Api::all_with(self.client.clone(), &kind.resource)
        }
    }

    /// What one owner reference of `dependent` names now: from the watches when they hold
    /// the owner, else from the API server itself.
    async fn classify(
        &mut self,
        graph: &Graph<'_>,
        dependent: &Node<'_>,
        reference: &OwnerReference,
    ) -> Result<OwnerState, GcError> {
        if let Some(owner) = graph.owner(dependent, reference) {
            return Ok(if owner.deleting_dependents() {
                OwnerState::Waiting
            } else {
                OwnerState::Solid
            });
        }
        let Some(kind) = self.kinds.resolve(&reference.api_version, &reference.kind) else {
            return Err(GcError::UnknownKind {
                api_version: reference.api_version.clone(),
                kind: reference.kind.clone(),
            });
        };
        let absent_key = key(kind, dependent.namespace(), reference);
        if self.absent.contains(&absent_key) {
            return Ok(OwnerState::Dangling);
        }
        if kind.namespaced && !dependent.kind.namespaced {
            return Err(GcError::NamespacedOwner {
                kind: reference.kind.clone(),
                name: reference.name.clone(),
            });
        }
        let owner = self
            .api(kind, dependent.namespace())
            .get_metadata_opt(&reference.name)
            .await?;
        match owner {
            Some(owner) if owner.metadata.uid.as_deref() == Some(reference.uid.as_str()) => {
                let node = Node { kind, obj: &owner };
                Ok(if node.deleting_dependents() {
                    OwnerState::Waiting
                } else {
                    OwnerState::Solid
                })
            }
            _ => {
                self.absent.insert(absent_key);
                Ok(OwnerState::Dangling)
            }
        }
    }

    /// Upstream `attemptToDeleteItem` for a dependent that is not being deleted.
    async fn attempt_to_delete(
        &mut self,
        graph: &Graph<'_>,
        dependent: &Node<'_>,
    ) -> Result<bool, GcError> {
        let mut owners = Vec::new();
        for reference in dependent.owners() {
            let state = self.classify(graph, dependent, reference).await?;
            owners.push((reference, state));
        }
        let dependents = graph.dependents_of(dependent);
        let cycle = dependents.iter().any(|d| d.deleting_dependents());
        let api = self.api(dependent.kind, dependent.namespace());
        let name = dependent.name();
        match decide(dependent, &owners, !dependents.is_empty(), cycle) {
            Decision::Keep => Ok(false),
            Decision::RemoveOwners(uids) => {
                tracing::info!(object = %dependent.describe(), owners = ?uids, "removing references to owners that are gone or deleting");
                let patch = remove_owners_patch(dependent.uid(), &uids);
                ignore_not_found(
                    api.patch(name, &PatchParams::default(), &Patch::Strategic(patch))
                        .await,
                )?;
                Ok(true)
            }
            Decision::DeleteInForeground { unblock } => {
                if unblock {
                    let patch = unblock_patch(dependent);
                    ignore_not_found(
                        api.patch(name, &PatchParams::default(), &Patch::Strategic(patch))
                            .await,
                    )?;
                }
                tracing::info!(object = %dependent.describe(), "deleting in the foreground: an owner deletes its dependents");
                self.delete(dependent, PropagationPolicy::Foreground)
                    .await?;
                Ok(true)
            }
            Decision::Delete(policy) => {
                if owners.iter().any(|(_, s)| *s == OwnerState::Waiting) {
                    tracing::info!(object = %dependent.describe(), ?policy, "deleting: its owner deletes its dependents in the foreground");
                } else {
                    tracing::info!(object = %dependent.describe(), ?policy, "deleting: no owner left");
                }
                self.delete(dependent, policy).await?;
                Ok(true)
            }
        }
    }

    /// Deletes `node` as it was seen (uid and resourceVersion preconditions), so an object
    /// that gained an owner meanwhile is judged again rather than deleted.
    async fn delete(&self, node: &Node<'_>, policy: PropagationPolicy) -> Result<(), GcError> {
        let params = DeleteParams {
            propagation_policy: Some(policy),
            preconditions: Some(Preconditions {
                uid: Some(node.uid().to_string()),
                resource_version: Some(node.resource_version().to_string()),
            }),
            ..DeleteParams::default()
        };
        ignore_not_found(
            self.api(node.kind, node.namespace())
                .delete(node.name(), &params)
                .await
                .map(|_| ()),
        )
    }

    /// Upstream `attemptToOrphanWorker`: every dependent loses its reference to `owner`, then
    /// `owner` loses its `orphan` finalizer.
    async fn orphan_dependents(&self, graph: &Graph<'_>, owner: &Node<'_>) -> Result<(), GcError> {
        let uids = [owner.uid().to_string()];
        for dependent in graph.dependents_of(owner) {
            let patch = remove_owners_patch(dependent.uid(), &uids);
            ignore_not_found(
                self.api(dependent.kind, dependent.namespace())
                    .patch(
                        dependent.name(),
                        &PatchParams::default(),
                        &Patch::Strategic(patch),
                    )
                    .await,
            )?;
        }
        tracing::info!(object = %owner.describe(), "dependents orphaned");
        self.remove_finalizer(owner, FINALIZER_ORPHAN).await?;
        Ok(())
    }

    /// Removes `finalizer` from the object as it is now (a read, then a write conditional on
    /// that read's resourceVersion, retried on conflict as upstream's `removeFinalizer`).
    async fn remove_finalizer(&self, node: &Node<'_>, finalizer: &str) -> Result<(), kube::Error> {
        let api = self.api(node.kind, node.namespace());
        for attempt in 1..=FINALIZER_TRIES {
            let Some(current) = api.get_metadata_opt(node.name()).await? else {
                return Ok(());
            };
            if current.metadata.uid.as_deref() != Some(node.uid()) {
                return Ok(());
            }
            let finalizers = current.metadata.finalizers.clone().unwrap_or_default();
            if !finalizers.iter().any(|f| f == finalizer) {
                return Ok(());
            }
            let patch = remove_finalizer_patch(&current, finalizer);
            match api
                .patch(node.name(), &PatchParams::default(), &Patch::Merge(patch))
                .await
            {
                Ok(_) => {
                    tracing::info!(object = %node.describe(), finalizer, "finalizer removed");
                    return Ok(());
                }
                Err(kube::Error::Api(e)) if e.code == 404 => return Ok(()),
                Err(kube::Error::Api(e)) if e.code == 409 && attempt < FINALIZER_TRIES => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

fn ignore_not_found<T>(result: Result<T, kube::Error>) -> Result<(), GcError> {
    match result {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// A strategic merge patch that removes the references to `owners` (merged by uid), and
/// applies only to the object with `uid` (upstream `deleteOwnerRefStrategicMergePatch`).
fn remove_owners_patch(uid: &str, owners: &[String]) -> Value {
    let deletes: Vec<Value> = owners
        .iter()
        .map(|owner| json!({"$patch": "delete", "uid": owner}))
        .collect();
    json!({"metadata": {"uid": uid, "ownerReferences": deletes}})
}

/// A strategic merge patch that makes every blocking reference of `node` non-blocking
/// (upstream `unblockOwnerReferencesStrategicMergePatch`).
fn unblock_patch(node: &Node<'_>) -> Value {
    let refs: Vec<Value> = node
        .owners()
        .iter()
        .filter(|r| r.block_owner_deletion == Some(true))
        .map(|r| {
            let mut r = json!(r);
            r["blockOwnerDeletion"] = json!(false);
            r
        })
        .collect();
    json!({"metadata": {"uid": node.uid(), "ownerReferences": refs}})
}

/// A merge patch that leaves the finalizers without `finalizer`, conditional on the
/// resourceVersion it was computed from.
fn remove_finalizer_patch(current: &PartialObjectMeta, finalizer: &str) -> Value {
    let left: Vec<&String> = current
        .metadata
        .finalizers
        .iter()
        .flatten()
        .filter(|f| *f != finalizer)
        .collect();
    let list = if left.is_empty() {
        json!(null)
    } else {
        json!(left)
    };
    json!({"metadata": {
        "finalizers": list,
        "resourceVersion": current.metadata.resource_version,
        "uid": current.metadata.uid,
    }})
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::api::ApiResource;

    fn kind(group: &str, version: &str, kind: &str, plural: &str) -> Kind {
        Kind {
            resource: ApiResource {
                group: group.into(),
                version: version.into(),
                api_version: if group.is_empty() {
                    version.into()
                } else {
                    format!("{group}/{version}")
                },
                kind: kind.into(),
                plural: plural.into(),
            },
            namespaced: true,
        }
    }

    #[test]
    fn an_owner_reference_resolves_to_its_version_or_another_of_its_group() {
        let kinds = Kinds {
            watched: vec![],
            all: vec![
                kind("apps", "v1", "ReplicaSet", "replicasets"),
                kind("apps", "v1beta2", "ReplicaSet", "replicasets"),
                kind("", "v1", "Pod", "pods"),
            ],
        };
        let version = |v: &str, k: &str| kinds.resolve(v, k).map(|k| k.resource.version.clone());
        assert_eq!(
            version("apps/v1beta2", "ReplicaSet").as_deref(),
            Some("v1beta2")
        );
        assert_eq!(version("apps/v1beta1", "ReplicaSet").as_deref(), Some("v1"));
        assert_eq!(version("v1", "Pod").as_deref(), Some("v1"));
        assert_eq!(version("batch/v1", "Job"), None);
        assert_eq!(version("v1", "ReplicaSet"), None);
    }

    #[test]
    fn patches_name_the_object_and_touch_only_what_they_change() {
        let patch = remove_owners_patch("dep", &["a".into()]);
        assert_eq!(
            patch,
            json!({"metadata": {"uid": "dep", "ownerReferences": [{"$patch": "delete", "uid": "a"}]}})
        );
        let obj: PartialObjectMeta = serde_json::from_value(json!({"metadata": {"name": "x",
            "uid": "u", "resourceVersion": "7", "finalizers": ["a", "orphan"]}}))
        .expect("object");
        assert_eq!(
            remove_finalizer_patch(&obj, "orphan"),
            json!({"metadata": {"finalizers": ["a"], "resourceVersion": "7", "uid": "u"}})
        );
        assert_eq!(
            remove_finalizer_patch(&obj, "a")["metadata"]["finalizers"],
            json!(["orphan"])
        );
        let only: PartialObjectMeta =
            serde_json::from_value(json!({"metadata": {"name": "x", "finalizers": ["orphan"]}}))
                .expect("object");
        assert_eq!(
            remove_finalizer_patch(&only, "orphan")["metadata"]["finalizers"],
            Value::Null
        );
    }
}
