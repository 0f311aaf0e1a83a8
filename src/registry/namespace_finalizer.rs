//! The namespace finalizer: empties a Terminating namespace, then lets it go.
//!
//! Upstream this is the namespace controller of kube-controller-manager: it deletes every
//! namespaced object of a namespace marked for deletion and then removes the `kubernetes`
//! finalizer from `spec.finalizers` through `namespaces/<name>/finalize`, which deletes the
//! namespace. rkube has no controller-manager process yet, so the same loop runs inside the
//! API server, on its task tracker (deviation, to be moved when `rkube controller-manager`
//! exists). Until the finalizer is gone the namespace stays, so a namespace re-created with the
//! same name can never show the objects of the old one.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::namespaces::UNDELETABLE;
use super::{DeleteOptions, ListOptions, Propagation, Store, WatchOptions};
use crate::meta::{object, ApiError};

/// The finalizer the API server puts on every namespace (`FinalizerKubernetes`).
pub const FINALIZER: &str = "kubernetes";

/// How often a namespace still waiting on graceful deletions is looked at again.
const RESYNC: Duration = Duration::from_secs(2);

/// Runs until `shutdown`: wakes on every namespace change and every [`RESYNC`].
pub async fn run(stores: Vec<Arc<Store>>, shutdown: CancellationToken) {
    let Some(namespaces) = stores
        .iter()
        .find(|s| s.info().group.is_empty() && s.info().plural == "namespaces")
        .cloned()
    else {
        return;
    };
    let mut watch = None;
    loop {
        if watch.as_ref().is_none_or(|w: &super::Watch| w.is_closed()) {
            watch = namespaces.watch("", WatchOptions::default()).await.ok();
        }
        if let Err(e) = sweep(&namespaces, &stores).await {
            tracing::warn!(error = %e, "namespace finalizer");
        }
        let changed = async {
            match watch.as_mut() {
                Some(w) => w.next().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(RESYNC) => {}
            event = changed => {
                if event.is_none() {
                    watch = None;
                }
            }
        }
    }
}

/// Finalizes every namespace that is Terminating and still carries [`FINALIZER`].
async fn sweep(namespaces: &Store, stores: &[Arc<Store>]) -> Result<(), ApiError> {
    let listed = namespaces
        .list(
            "",
            &ListOptions {
                any_version: true,
                ..ListOptions::default()
            },
        )
        .await?;
    for ns in listed.items.into_iter().map(|s| s.object) {
        let name = object::name(&ns);
        if super::store::terminating(&ns) && waits_on_us(&ns) && !UNDELETABLE.contains(&name) {
            finalize(namespaces, stores, name).await?;
        }
    }
    Ok(())
}

fn waits_on_us(ns: &Value) -> bool {
    ns.pointer("/spec/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| f.iter().any(|v| v == FINALIZER))
}

/// What is left of a namespace's contents after a round of deletion.
#[derive(Default)]
struct Remaining {
    /// `<resource>.<group>` and how many objects of it remain.
    by_resource: BTreeMap<String, usize>,
    /// Each finalizer still held by remaining objects, and on how many.
    by_finalizer: BTreeMap<String, usize>,
}

/// Deletes everything in the namespace and reports what remains in its conditions; once
/// nothing is left, drops the finalizer, which deletes the namespace itself.
async fn finalize(namespaces: &Store, stores: &[Arc<Store>], name: &str) -> Result<(), ApiError> {
    let mut remaining = Remaining::default();
    let mut failures = Vec::new();
    for store in stores.iter().filter(|s| s.info().namespaced) {
        // In the background, as upstream's namespace deleter asks: a foreground or orphaning
        // deletion under way does not hold the namespace's contents back.
        let background = DeleteOptions {
            propagation: Some(Propagation::Background),
            ..DeleteOptions::default()
        };
        let info = store.info();
        let pending = match store.delete_collection(name, None, None, &background).await {
            Ok(done) => done.pending,
            Err(e) => {
                failures.push(format!("{}.{}: {}", info.plural, info.group, e.message));
                continue;
            }
        };
        if pending == 0 {
            continue;
        }
        // Objects waiting on a grace period or on finalizers: count them and their finalizers.
        let left = store.list(name, &ListOptions::default()).await?;
        if left.items.is_empty() {
            continue;
        }
        remaining
            .by_resource
            .insert(format!("{}.{}", info.plural, info.group), left.items.len());
        for obj in left.objects() {
            for finalizer in obj["metadata"]["finalizers"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                *remaining
                    .by_finalizer
                    .entry(finalizer.to_string())
                    .or_default() += 1;
            }
        }
    }
    report(namespaces, name, &remaining, &failures).await?;
    if !remaining.by_resource.is_empty() || !failures.is_empty() {
        return Ok(());
    }
    let dropped = namespaces
        .update_with("", name, "finalize", false, &mut |current| {
            let mut ns = current.clone();
            if let Some(list) = ns
                .pointer_mut("/spec/finalizers")
                .and_then(Value::as_array_mut)
            {
                list.retain(|v| v != FINALIZER);
            }
            Ok(ns)
        })
        .await;
    match dropped {
        Ok(_) => Ok(()),
        Err(e) if e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// The conditions upstream's namespace deleter keeps on a terminating namespace, in its order,
/// each with the reason and message it has when all is well.
const CONDITIONS: [(&str, &str, &str); 5] = [
    (
        "NamespaceDeletionDiscoveryFailure",
        "ResourcesDiscovered",
        "All resources successfully discovered",
    ),
    (
        "NamespaceDeletionGroupVersionParsingFailure",
        "ParsedGroupVersions",
        "All legacy kube types successfully parsed",
    ),
    (
        "NamespaceDeletionContentFailure",
        "ContentDeleted",
        "All content successfully deleted, may be waiting on finalization",
    ),
    (
        "NamespaceContentRemaining",
        "ContentRemoved",
        "All content successfully removed",
    ),
    (
        "NamespaceFinalizersRemaining",
        "ContentHasNoFinalizers",
        "All content-preserving finalizers finished",
    ),
];

/// Each condition's (status, reason, message) for what a round of deletion left.
fn conditions(
    remaining: &Remaining,
    failures: &[String],
) -> Vec<(&'static str, bool, String, String)> {
    CONDITIONS
        .iter()
        .map(|(kind, ok_reason, ok_message)| {
            let failing = match *kind {
                "NamespaceDeletionContentFailure" if !failures.is_empty() => {
                    let mut failures = failures.to_vec();
                    failures.sort();
                    Some((
                        "ContentDeletionFailed",
                        format!(
                            "Failed to delete all resource types, {} remaining: {}",
                            failures.len(),
                            failures.join(", ")
                        ),
                    ))
                }
                "NamespaceContentRemaining" if !remaining.by_resource.is_empty() => {
                    let listed: Vec<String> = remaining
                        .by_resource
                        .iter()
                        .map(|(resource, n)| format!("{resource} has {n} resource instances"))
                        .collect();
                    Some((
                        "SomeResourcesRemain",
                        format!("Some resources are remaining: {}", listed.join(", ")),
                    ))
                }
                "NamespaceFinalizersRemaining" if !remaining.by_finalizer.is_empty() => {
                    let listed: Vec<String> = remaining
                        .by_finalizer
                        .iter()
                        .map(|(finalizer, n)| format!("{finalizer} in {n} resource instances"))
                        .collect();
                    Some((
                        "SomeFinalizersRemain",
                        format!(
                            "Some content in the namespace has finalizers remaining: {}",
                            listed.join(", ")
                        ),
                    ))
                }
                _ => None,
            };
            match failing {
                Some((reason, message)) => (*kind, true, reason.to_string(), message),
                None => (*kind, false, ok_reason.to_string(), ok_message.to_string()),
            }
        })
        .collect()
}

/// Writes the namespace's deletion conditions through its status, when they changed; a
/// condition's transition time moves only when its status does.
async fn report(
    namespaces: &Store,
    name: &str,
    remaining: &Remaining,
    failures: &[String],
) -> Result<(), ApiError> {
    let wanted = conditions(remaining, failures);
    let now = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let changed = |ns: &Value| {
        wanted.iter().any(|(kind, status, reason, message)| {
            let old = ns["status"]["conditions"]
                .as_array()
                .and_then(|c| c.iter().find(|c| c["type"] == *kind));
            old.is_none_or(|old| {
                old["status"] != if *status { "True" } else { "False" }
                    || old["reason"] != reason.as_str()
                    || old["message"] != message.as_str()
            })
        })
    };
    let current = namespaces.get("", name).await?;
    if !changed(&current) {
        return Ok(());
    }
    let written = namespaces
        .update_with("", name, "status", false, &mut |current| {
            let mut ns = current.clone();
            let old: Vec<Value> = ns["status"]["conditions"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let mut list: Vec<Value> = old
                .iter()
                .filter(|c| !CONDITIONS.iter().any(|(kind, _, _)| c["type"] == *kind))
                .cloned()
                .collect();
            for (kind, status, reason, message) in &wanted {
                let status = if *status { "True" } else { "False" };
                let since = old
                    .iter()
                    .find(|c| c["type"] == *kind && c["status"] == status)
                    .and_then(|c| c["lastTransitionTime"].as_str())
                    .unwrap_or(&now)
                    .to_string();
                list.push(
                    json!({"type": kind, "status": status, "lastTransitionTime": since,
                    "reason": reason, "message": message}),
                );
            }
            ns["status"]["conditions"] = Value::Array(list);
            Ok(ns)
        })
        .await;
    match written {
        Ok(_) => Ok(()),
        Err(e) if e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_read_as_upstreams_namespace_deleter_writes_them() {
        let clean = conditions(&Remaining::default(), &[]);
        assert_eq!(clean.len(), 5);
        assert!(clean.iter().all(|(_, status, _, _)| !status));
        assert_eq!(
            clean[3],
            (
                "NamespaceContentRemaining",
                false,
                "ContentRemoved".to_string(),
                "All content successfully removed".to_string()
            )
        );
        let mut remaining = Remaining::default();
        remaining.by_resource.insert("pods.".into(), 2);
        remaining.by_resource.insert("replicasets.apps".into(), 1);
        remaining.by_finalizer.insert("example.com/hold".into(), 1);
        let left = conditions(&remaining, &[]);
        assert_eq!(
            left[3],
            (
                "NamespaceContentRemaining",
                true,
                "SomeResourcesRemain".to_string(),
                "Some resources are remaining: pods. has 2 resource instances, replicasets.apps has 1 resource instances".to_string()
            )
        );
        assert_eq!(
            left[4].3,
            "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances"
        );
        let failed = conditions(&Remaining::default(), &["pods.: etcd is down".to_string()]);
        assert_eq!(
            failed[2].3,
            "Failed to delete all resource types, 1 remaining: pods.: etcd is down"
        );
    }
}
