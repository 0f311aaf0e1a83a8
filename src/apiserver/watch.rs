//! Watch responses: a chunked stream of `{"type": ..., "object": ...}` lines.
//!
//! The stream ends at the client's `timeoutSeconds` (else after a random 30–60 minutes, as
//! kube-apiserver's `--min-request-timeout` does), at server shutdown, or when the client goes
//! away. Errors after the stream started are `ERROR` events carrying a `Status`, e.g. 410
//! Expired for a compacted resourceVersion. Bookmarks, when asked for, come every minute and
//! just before the timeout.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rand::Rng as _;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::table::{self, Include};
use crate::meta::object;
use crate::registry::{Store, Watch, WatchEvent};

/// How often a watcher that asked for bookmarks gets one.
const BOOKMARK_EVERY: Duration = Duration::from_secs(60);

pub struct WatchParams {
    pub table: Option<Include>,
    pub bookmarks: bool,
    pub timeout: Option<Duration>,
    /// The resourceVersion the watch started from, for bookmarks before any event.
    pub start_rv: i64,
}

fn frame(kind: &str, object: &Value) -> Bytes {
    let mut line = serde_json::to_vec(&json!({"type": kind, "object": object}))
        .expect("a JSON value always serializes");
    line.push(b'\n');
    Bytes::from(line)
}

fn bookmark(store: &Store, rv: i64, initial_end: bool) -> Value {
    let info = store.info();
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    json!({"kind": info.kind, "apiVersion": info.api_version(), "metadata": meta})
}

/// Pumps `watch` into `tx` until it ends; returns when the client is gone or time is up.
pub async fn pump(
    store: Arc<Store>,
    mut watch: Watch,
    params: WatchParams,
    tx: mpsc::Sender<Bytes>,
    shutdown: CancellationToken,
) {
    let timeout = params
        .timeout
        .unwrap_or_else(|| Duration::from_secs(rand::rng().random_range(1800..3600)));
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last_rv = params.start_rv;
    let mut first_table = true;
    let mut next_bookmark = tokio::time::Instant::now() + BOOKMARK_EVERY;
    loop {
        let bookmark_at = if params.bookmarks {
            next_bookmark.min(deadline)
        } else {
            deadline
        };
        let event = tokio::select! {
            event = watch.next() => event,
            () = tokio::time::sleep_until(bookmark_at) => {
                if params.bookmarks {
                    let _ = tx.send(frame("BOOKMARK", &bookmark(&store, last_rv, false))).await;
                    next_bookmark = tokio::time::Instant::now() + BOOKMARK_EVERY;
                }
                if tokio::time::Instant::now() >= deadline {
                    return;
                }
                continue;
            }
            () = tx.closed() => return,
            () = shutdown.cancelled() => return,
        };
        let bytes = match event {
            None => return,
            Some(WatchEvent::Changed(kind, obj)) => {
                if let Ok(rv) = object::resource_version(&obj).parse::<i64>() {
                    last_rv = last_rv.max(rv);
                }
                match params.table {
                    Some(include) => {
                        let meta = json!({"resourceVersion": object::resource_version(&obj)});
                        let t = table::table(
                            store.strategy.as_ref(),
                            std::slice::from_ref(&obj),
                            include,
                            meta,
                            first_table,
                        );
                        first_table = false;
                        frame(kind.as_str(), &t)
                    }
                    None => frame(kind.as_str(), &obj),
                }
            }
            Some(WatchEvent::InitialEventsEnd(rv)) => {
                last_rv = last_rv.max(rv);
                frame("BOOKMARK", &bookmark(&store, rv, true))
            }
            Some(WatchEvent::Error(e)) => {
                let _ = tx.send(frame("ERROR", &e.to_status())).await;
                return;
            }
        };
        if tx.send(bytes).await.is_err() {
            return;
        }
    }
}
