//! The namespace finalizer: empties a Terminating namespace, then lets it go.
//!
//! Upstream this is the namespace controller of kube-controller-manager: it deletes every
//! namespaced object of a namespace marked for deletion and then removes the `kubernetes`
//! finalizer from `spec.finalizers` through `namespaces/<name>/finalize`, which deletes the
//! namespace. rkube has no controller-manager process yet, so the same loop runs inside the
//! API server, on its task tracker (deviation, to be moved when `rkube controller-manager`
//! exists). Until the finalizer is gone the namespace stays, so a namespace re-created with the
//! same name can never show the objects of the old one.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
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
    for ns in listed.items {
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

/// Deletes everything in the namespace; once nothing is left, drops the finalizer, which
/// deletes the namespace itself.
async fn finalize(namespaces: &Store, stores: &[Arc<Store>], name: &str) -> Result<(), ApiError> {
    let mut remaining = 0;
    for store in stores.iter().filter(|s| s.info().namespaced) {
        // In the background, as upstream's namespace deleter asks: a foreground or orphaning
        // deletion under way does not hold the namespace's contents back.
        let background = DeleteOptions {
            propagation: Some(Propagation::Background),
            ..DeleteOptions::default()
        };
        remaining += store
            .delete_collection(name, None, None, &background)
            .await?
            .pending;
    }
    if remaining > 0 {
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
