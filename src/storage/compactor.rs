//! Periodic etcd compaction, as kube-apiserver's storage layer runs it (`etcd3/compact.go`).
//!
//! Every interval etcd is compacted to the revision seen one interval earlier, so at least one
//! interval of history always stays for watches to resume from. After each compaction the
//! watch caches are told, so that they stop offering history etcd no longer has.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{Cacher, EtcdStorage};

/// Compacts `etcd` every `interval` until `shutdown`, telling `caches` what was dropped.
pub async fn run(
    etcd: EtcdStorage,
    caches: Vec<Arc<Cacher>>,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut previous: Option<i64> = None;
    loop {
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = shutdown.cancelled() => return,
        }
        if let Some(rev) = previous {
            match etcd.compact(rev).await {
                Ok(()) => {
                    for cache in &caches {
                        cache.compacted(rev);
                    }
                    tracing::debug!(revision = rev, "compacted etcd");
                }
                Err(e) => tracing::warn!(error = %e, "compaction failed"),
            }
        }
        previous = etcd.current_revision().await.ok();
    }
}
