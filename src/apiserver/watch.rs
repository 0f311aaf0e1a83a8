//! Watch responses: a chunked stream of `{"type": ..., "object": ...}` lines, or, for a client
//! that asked for protobuf, of length-prefixed `WatchEvent` frames
//! (`application/vnd.kubernetes.protobuf;stream=watch`).
//!
//! The stream ends at the client's `timeoutSeconds` (else after a random 30–60 minutes, as
//! kube-apiserver's `--min-request-timeout` does), at server shutdown, or when the client goes
//! away. Errors after the stream started are `ERROR` events carrying a `Status`, e.g. 410
//! Expired for a compacted resourceVersion. Bookmarks, when asked for, come every minute and
//! just before the timeout.
//!
//! A change's object is encoded once, however many watchers see it: the watch cache shares one
//! event among them and the event keeps its object's JSON ([`StorageEvent::object_json`]);
//! each line is that JSON with the watcher's own event type around it. The protobuf encoding
//! of the object is kept and shared the same way ([`StorageEvent::object_encoded`]). Table
//! watches still
//! print each row per watcher (the AGE column is computed at the moment it is sent).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rand::Rng as _;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::protobuf;
use super::request::MetaVersion;
use super::table::{self, Include};
use crate::meta::{object, ApiError};
use crate::registry::{Store, Watch, WatchEvent};
use crate::storage::{EventType, StorageEvent};

/// How often a watcher that asked for bookmarks gets one.
const BOOKMARK_EVERY: Duration = Duration::from_secs(60);

pub struct WatchParams {
    /// Frames in protobuf (`;stream=watch`) rather than JSON lines.
    pub protobuf: bool,
    pub table: Option<Include>,
    /// Objects reduced to their metadata, as `PartialObjectMetadata` of this version.
    pub metadata: Option<MetaVersion>,
    pub bookmarks: bool,
    pub timeout: Option<Duration>,
    /// The resourceVersion the watch started from, for bookmarks before any event.
    pub start_rv: i64,
}

/// One line of the stream around an object already encoded as JSON:
/// `{"type":<kind>,"object":<object>}` and a newline, byte for byte what serde_json writes for
/// `json!({"type": kind, "object": object})` (it keeps keys in insertion order), so a watch
/// event's object, encoded once and shared by every watcher, is copied in, never re-encoded.
fn frame(kind: &str, object_json: &[u8]) -> Bytes {
    const OPEN: &[u8] = b"{\"type\":";
    const OBJECT: &[u8] = b",\"object\":";
    const CLOSE: &[u8] = b"}\n";
    let mut line = Vec::with_capacity(
        OPEN.len() + kind.len() + 2 + OBJECT.len() + object_json.len() + CLOSE.len(),
    );
    line.extend_from_slice(OPEN);
    serde_json::to_writer(&mut line, kind).expect("a string always serializes");
    line.extend_from_slice(OBJECT);
    line.extend_from_slice(object_json);
    line.extend_from_slice(CLOSE);
    Bytes::from(line)
}

/// The line of one change as a watcher sees it: the object's JSON is the event's, encoded by
/// the first watcher that needs it and shared by all.
fn event_frame(kind: EventType, event: &StorageEvent) -> Bytes {
    frame(kind.as_str(), event.object_json())
}

/// A line for an object made for this watcher alone: a bookmark, an error, a Table, an
/// object's metadata.
fn value_frame(kind: &str, object: &impl serde::Serialize) -> Bytes {
    let json = serde_json::to_vec(object).expect("a JSON value always serializes");
    frame(kind, &json)
}

/// An object in protobuf, for a watch frame; None if the table cannot carry it.
fn protobuf_object(object: &Value) -> Option<Bytes> {
    protobuf::encode_object(object).map(Bytes::from)
}

/// The protobuf frame of one change: the object's encoding is the event's, made once and
/// shared by every protobuf watcher, as the JSON is.
fn event_protobuf_frame(kind: EventType, event: &StorageEvent) -> Option<Bytes> {
    let object = event.object_encoded(protobuf_object)?;
    Some(Bytes::from(protobuf::watch_frame(kind.as_str(), object)))
}

/// The frame of an object made for this watcher alone, in the watcher's encoding.
fn own_frame(protobuf: bool, kind: &str, object: &Value) -> Option<Bytes> {
    if !protobuf {
        return Some(value_frame(kind, object));
    }
    let encoded = protobuf_object(object)?;
    Some(Bytes::from(protobuf::watch_frame(kind, &encoded)))
}

/// The ERROR frame that ends a stream whose object could not be encoded.
fn unencodable(protobuf: bool) -> Bytes {
    let e = ApiError::internal("the object cannot be encoded in the watch's media type");
    own_frame(protobuf, "ERROR", &e.to_status())
        .unwrap_or_else(|| value_frame("ERROR", &e.to_status()))
}

fn bookmark(store: &Store, params: &WatchParams, rv: i64, initial_end: bool) -> Value {
    let info = store.info();
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    let mark = json!({"kind": info.kind, "apiVersion": info.api_version(), "metadata": meta});
    match params.metadata {
        Some(version) => json!(table::partial(&mark, version.api_version())),
        None => mark,
    }
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
                    let mark = bookmark(&store, &params, last_rv, false);
                    let line = own_frame(params.protobuf, "BOOKMARK", &mark)
                        .unwrap_or_else(|| unencodable(params.protobuf));
                    let _ = tx.send(line).await;
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
            Some(WatchEvent::Changed(kind, event)) => {
                // The event's revision is its object's resourceVersion.
                last_rv = last_rv.max(event.rev);
                match (params.table, params.metadata) {
                    // Metadata is cut out per watcher; it is small beside the object.
                    (_, Some(version)) => {
                        let partial = table::partial(&event.object, version.api_version());
                        value_frame(kind.as_str(), &partial)
                    }
                    // A row is made per watcher: its AGE is "now", and only a watcher's first
                    // Table carries the column definitions.
                    (Some(include), None) => {
                        let obj = &event.object;
                        let meta = json!({"resourceVersion": object::resource_version(obj)});
                        let t = table::table(
                            store.strategy.as_ref(),
                            [&**obj],
                            include,
                            meta,
                            first_table,
                        );
                        first_table = false;
                        value_frame(kind.as_str(), &t)
                    }
                    (None, None) if params.protobuf => match event_protobuf_frame(kind, &event) {
                        Some(line) => line,
                        None => {
                            let _ = tx.send(unencodable(true)).await;
                            return;
                        }
                    },
                    (None, None) => event_frame(kind, &event),
                }
            }
            Some(WatchEvent::InitialEventsEnd(rv)) => {
                last_rv = last_rv.max(rv);
                let mark = bookmark(&store, &params, rv, true);
                own_frame(params.protobuf, "BOOKMARK", &mark)
                    .unwrap_or_else(|| unencodable(params.protobuf))
            }
            Some(WatchEvent::Error(e)) => {
                let line = own_frame(params.protobuf, "ERROR", &e.to_status())
                    .unwrap_or_else(|| value_frame("ERROR", &e.to_status()));
                let _ = tx.send(line).await;
                return;
            }
        };
        if tx.send(bytes).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::patch::PatchType;
    use crate::meta::selector::LabelSelector;
    use crate::registry::{namespaces, CreateOptions, Registry, WatchOptions};
    use crate::storage::{MemoryStorage, Storage};
    use tokio_util::task::TaskTracker;

    /// What every watch line was before objects were shared: the whole frame encoded at once.
    fn encoded_whole(kind: &str, object: &Value) -> Vec<u8> {
        let mut line = serde_json::to_vec(&json!({"type": kind, "object": object}))
            .expect("a JSON value always serializes");
        line.push(b'\n');
        line
    }

    #[test]
    fn a_frame_is_byte_for_byte_the_whole_event_encoded() {
        let objects = [
            json!({"kind": "Pod", "metadata": {"name": "p", "resourceVersion": "7"}}),
            json!({"z": 1, "a": [1.5, -2, null, true], "m": {"b": "é\n\"q\"\u{1}", "a": {}}}),
            json!("just a string"),
            json!({}),
        ];
        for kind in ["ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"] {
            for object in &objects {
                let json = serde_json::to_vec(object).expect("serializes");
                assert_eq!(
                    frame(kind, &json).as_ref(),
                    encoded_whole(kind, object).as_slice(),
                    "{kind} {object}"
                );
                assert_eq!(
                    value_frame(kind, object).as_ref(),
                    encoded_whole(kind, object).as_slice()
                );
            }
        }
    }

    async fn registry(shutdown: &CancellationToken) -> Registry {
        let memory: Arc<dyn Storage> = MemoryStorage::new();
        namespaces::bootstrap_system(memory.as_ref(), "/registry")
            .await
            .expect("system namespaces");
        crate::registry::serviceaccounts::seed_default(memory.as_ref(), "/registry", "default")
            .await
            .expect("default account");
        Registry::start(
            memory,
            "/registry",
            crate::registry::kinds(Duration::from_secs(3600)),
            1 << 20,
            &TaskTracker::new(),
            shutdown.clone(),
        )
        .await
        .expect("registry")
    }

    #[tokio::test]
    async fn watchers_of_one_change_share_one_encoding_of_its_object() {
        let shutdown = CancellationToken::new();
        let registry = registry(&shutdown).await;
        let pods = registry.get("", "pods").expect("pods are served");
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "labels": {"tier": "web"}},
            "spec": {"containers": [{"name": "c", "image": "busybox:1"}]}});
        let (created, _) = pods
            .create("default", pod, &CreateOptions::default())
            .await
            .expect("created");
        let from = object::resource_version(&created).parse().ok();
        let watch = |label: Option<&str>| {
            pods.watch(
                "default",
                WatchOptions {
                    label: label.map(|l| LabelSelector::parse(l).expect("a selector")),
                    resource_version: from,
                    ..WatchOptions::default()
                },
            )
        };
        // Two see a modification; for the third the pod starts to match, so it is ADDED.
        let mut watches = vec![
            watch(None).await.expect("watch"),
            watch(None).await.expect("watch"),
            watch(Some("tier=db")).await.expect("watch"),
        ];
        let (patched, _) = pods
            .patch(
                "default",
                "p",
                "",
                PatchType::Merge,
                br#"{"metadata": {"labels": {"tier": "db"}}}"#,
                &CreateOptions::default(),
            )
            .await
            .expect("patched");
        let mut seen = Vec::new();
        for w in &mut watches {
            let Some(WatchEvent::Changed(kind, event)) = w.next().await else {
                panic!("a change");
            };
            seen.push((kind, event));
        }
        let kinds: Vec<&str> = seen.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(kinds, ["MODIFIED", "MODIFIED", "ADDED"]);
        let shared = seen[0].1.object_json().clone();
        for (kind, event) in &seen {
            let line = event_frame(*kind, event);
            assert_eq!(
                event.object_json().as_ptr(),
                shared.as_ptr(),
                "one encoding for every watcher"
            );
            assert_eq!(
                line.as_ref(),
                encoded_whole(kind.as_str(), &patched).as_slice()
            );
            let parsed: Value = serde_json::from_slice(&line).expect("a JSON line");
            assert_eq!(parsed, json!({"type": kind.as_str(), "object": patched}));
        }
        assert_eq!(
            patched["metadata"]["resourceVersion"],
            json!(seen[0].1.rev.to_string()),
            "the shared object carries the change's resourceVersion"
        );
        // Protobuf watchers share one protobuf encoding of the object the same way.
        let shared = event_protobuf_frame(seen[0].0, &seen[0].1).expect("a Pod encodes");
        let encoded = seen[0]
            .1
            .object_encoded(|_| panic!("encoded once"))
            .expect("kept")
            .clone();
        for (kind, event) in &seen {
            let frame = event_protobuf_frame(*kind, event).expect("a Pod encodes");
            let object = event
                .object_encoded(|_| panic!("encoded once"))
                .expect("kept");
            assert_eq!(
                object.as_ptr(),
                encoded.as_ptr(),
                "one encoding for every watcher"
            );
            assert_eq!(
                frame.as_ref(),
                protobuf::watch_frame(kind.as_str(), &encoded).as_slice()
            );
        }
        assert_eq!(
            shared.len(),
            4 + u32::from_be_bytes(shared[..4].try_into().expect("4")) as usize
        );
        let decoded = protobuf::decode_object(&encoded).expect("decodes");
        assert_eq!(decoded["metadata"]["labels"], json!({"tier": "db"}));
        assert_eq!(
            decoded["metadata"]["resourceVersion"],
            patched["metadata"]["resourceVersion"]
        );
        shutdown.cancel();
    }

    #[test]
    fn bookmarks_and_errors_are_framed_in_the_watchers_encoding() {
        let mark = json!({"kind": "Pod", "apiVersion": "v1",
            "metadata": {"resourceVersion": "12",
                "annotations": {"k8s.io/initial-events-end": "true"}}});
        let json_line = own_frame(false, "BOOKMARK", &mark).expect("JSON always frames");
        assert_eq!(
            json_line.as_ref(),
            encoded_whole("BOOKMARK", &mark).as_slice()
        );
        let frame = own_frame(true, "BOOKMARK", &mark).expect("a Pod bookmark encodes");
        let object = protobuf::encode_object(&mark).expect("known");
        assert_eq!(
            frame.as_ref(),
            protobuf::watch_frame("BOOKMARK", &object).as_slice()
        );
        let status = ApiError::internal("boom").to_status();
        assert!(own_frame(true, "ERROR", &status).is_some());
        // A Table has no protobuf form: no frame, and the stream ends with an ERROR instead.
        let table = json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "rows": []});
        assert!(own_frame(true, "ADDED", &table).is_none());
        assert!(!unencodable(true).is_empty());
    }
}
