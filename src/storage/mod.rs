//! The storage seam: objects under keys with etcd revisions as resource versions.
//!
//! Modelled on Kubernetes `storage.Interface` (`staging/src/k8s.io/apiserver/pkg/storage/
//! interfaces.go`). Objects are JSON values; `metadata.resourceVersion` is never stored, it is
//! filled from the key's etcd `mod_revision` on every read (and from the header revision for
//! lists), so an object's version can never disagree with etcd.
//!
//! Architecture invariant: nothing above this module knows about etcd; the [`Cacher`] wraps
//! [`EtcdStorage`] and implements the same trait, fanning one etcd watch per resource out to
//! every API watcher.

mod cacher;
pub mod compactor;
pub mod encryption;
mod etcd;
mod json;
mod lease;
mod memory;
mod metrics;

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use bytes::Bytes;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::meta::ApiError;

pub use cacher::{Attrs, AttrsOf, Cacher, DEFAULT_HISTORY_MIB, FRESH_WAIT};
pub use etcd::{key_after, EtcdStorage, Page, LIST_PAGE};
pub use memory::MemoryStorage;
pub use metrics::{EtcdMetrics, LATENCY_BUCKETS};

/// An object's compact JSON, encoded at most once, by whoever first needs it, and then shared
/// by everything holding the same state of the object: the watch cache, the event of the change
/// that made it, and every list and initial watch event that returns it (upstream: the watch
/// cache's `cachingObject`). Whoever shares it never changes the object it encodes.
#[derive(Debug, Clone, Default)]
pub struct Json(Arc<OnceLock<Bytes>>);

impl Json {
    /// `object`'s JSON (which must be the object this encoding belongs to): encoded on the
    /// first call, and a clone of the returned `Bytes` is the same allocation.
    pub fn of(&self, object: &Value) -> &Bytes {
        self.0.get_or_init(|| {
            Bytes::from(
                serde_json::to_vec(object)
                    .expect("a JSON value has string keys only, so it always serializes"),
            )
        })
    }

    /// The encoding, if it was made.
    fn made(&self) -> Option<&Bytes> {
        self.0.get()
    }
}

/// One state of an object, held decoded, as its JSON, or both. The watch cache keeps the
/// objects it holds as their JSON alone (a decoded Pod takes about seven times its JSON) and
/// they are decoded again only where something reads them: a selector, a table, protobuf, an
/// admission check. Reading one (it dereferences to its [`Value`]) decodes it once, and the
/// copy is kept for as long as this handle lives.
#[derive(Debug, Clone)]
pub struct Object {
    json: Json,
    value: OnceLock<Arc<Value>>,
}

impl Object {
    /// An object already decoded; its JSON is made when first asked for.
    pub fn decoded(value: Arc<Value>) -> Object {
        Object {
            json: Json::default(),
            value: OnceLock::from(value),
        }
    }

    /// An object kept as its JSON, which must have been encoded already: decoded when read.
    fn encoded(json: Json) -> Object {
        debug_assert!(json.made().is_some(), "an encoded object has its JSON");
        Object {
            json,
            value: OnceLock::new(),
        }
    }

    /// The object, decoded on the first read of this handle.
    pub fn arc(&self) -> &Arc<Value> {
        self.value.get_or_init(|| {
            let bytes = self.json.made().map(Bytes::as_ref).unwrap_or_default();
            // The JSON was encoded from a value that `json::from_slice` had decoded from
            // etcd, so it decodes again; were it ever not to, the reader gets `null`, not a
            // panic.
            Arc::new(json::from_slice(bytes).unwrap_or_else(|e| {
                tracing::error!(error = %e, "a cached object no longer decodes");
                Value::Null
            }))
        })
    }

    /// The object, decoded if it was not, as an owned handle.
    pub fn into_arc(self) -> Arc<Value> {
        self.arc();
        self.value.into_inner().unwrap_or_default()
    }

    /// The object itself: taken when this was its only holder (as a write's result is),
    /// copied otherwise.
    pub fn into_value(self) -> Value {
        Arc::try_unwrap(self.into_arc()).unwrap_or_else(|shared| (*shared).clone())
    }

    /// Whether the object is held decoded.
    pub fn is_decoded(&self) -> bool {
        self.value.get().is_some()
    }

    /// The object as compact JSON, encoded once and shared by every holder of this state
    /// (see [`Json`]).
    pub fn json(&self) -> &Bytes {
        match self.json.made() {
            Some(bytes) => bytes,
            None => self.json.of(self.arc()),
        }
    }

    /// The same state kept as its JSON alone (encoded now if it was not), sharing the
    /// encoding: what the watch cache holds.
    fn compact(&self) -> Object {
        self.json();
        Object::encoded(self.json.clone())
    }
}

impl std::ops::Deref for Object {
    type Target = Value;

    fn deref(&self) -> &Value {
        self.arc()
    }
}

/// An object as read from storage, with its resourceVersion already set.
#[derive(Debug, Clone)]
pub struct Stored {
    pub key: String,
    pub object: Object,
    pub rev: i64,
}

impl Stored {
    pub fn new(key: String, object: Arc<Value>, rev: i64) -> Stored {
        Stored {
            key,
            object: Object::decoded(object),
            rev,
        }
    }

    /// The object as compact JSON, encoded once (see [`Json`]).
    pub fn object_json(&self) -> &Bytes {
        self.object.json()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change of one key. `object` carries the revision of the change as its resourceVersion
/// (for a deletion: the last state, stamped with the deletion's revision); `prev` is the state
/// before, which watchers need to tell when an object stops matching their selector.
///
/// The watch cache hands one `Arc<StorageEvent>` to every watcher of the change, and the
/// object's JSON is computed at most once, by the first watcher that asks
/// ([`StorageEvent::object_json`]), then shared by all (upstream: the watch cache's
/// `cachingObject`). Whoever builds an event sets `object` before it is shared and never after.
#[derive(Debug, Clone)]
pub struct StorageEvent {
    pub kind: EventType,
    pub key: String,
    pub object: Object,
    pub prev: Option<Object>,
    pub rev: i64,
    /// The object in another encoding (protobuf), made and shared as its JSON is.
    encoded: OnceLock<Option<Bytes>>,
}

impl StorageEvent {
    pub fn new(
        kind: EventType,
        key: String,
        object: Arc<Value>,
        prev: Option<Arc<Value>>,
        rev: i64,
    ) -> StorageEvent {
        StorageEvent {
            kind,
            key,
            object: Object::decoded(object),
            prev: prev.map(Object::decoded),
            rev,
            encoded: OnceLock::new(),
        }
    }

    /// The object as compact JSON, encoded on the first call and shared by every later one
    /// (a clone of the returned `Bytes` is the same allocation).
    pub fn object_json(&self) -> &Bytes {
        self.object.json()
    }

    /// An ADDED event of an object already read, sharing its encoding (a watch's initial
    /// events, made from the cache).
    pub fn added(stored: Stored) -> StorageEvent {
        StorageEvent {
            kind: EventType::Added,
            key: stored.key,
            object: stored.object,
            prev: None,
            rev: stored.rev,
            encoded: OnceLock::new(),
        }
    }

    /// The same change with both states kept as their JSON alone (what the watch cache's
    /// history holds); the other encoding is made again if a replay needs it.
    fn compact(&self) -> StorageEvent {
        StorageEvent {
            kind: self.kind,
            key: self.key.clone(),
            object: self.object.compact(),
            prev: self.prev.as_ref().map(Object::compact),
            rev: self.rev,
            encoded: OnceLock::new(),
        }
    }

    /// The object in the watchers' other encoding (the API server's protobuf), made by
    /// `encode` on the first call and shared by every later one; None if it has none.
    pub fn object_encoded(&self, encode: impl FnOnce(&Value) -> Option<Bytes>) -> Option<&Bytes> {
        self.encoded
            .get_or_init(|| encode(self.object.arc()))
            .as_ref()
    }
}

/// What a watch stream yields: a change, or the error that ends the stream (e.g. 410 Expired).
pub type WatchItem = Result<Arc<StorageEvent>, StorageError>;

/// The receiving end of a watch. The stream ends when the sender is dropped.
pub type WatchStream = mpsc::Receiver<WatchItem>;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("key {0} not found")]
    NotFound(String),
    #[error("key {0} already exists")]
    AlreadyExists(String),
    #[error("key {key} was modified: expected revision {expected}")]
    Conflict { key: String, expected: i64 },
    /// History at `requested` is no longer available; `oldest` is the oldest revision left.
    #[error("too old resource version: {requested} ({oldest})")]
    Expired { requested: i64, oldest: i64 },
    #[error("request is too large")]
    TooLarge,
    #[error("etcd is unavailable: {0}")]
    Unavailable(String),
    #[error("stored value at {key} is corrupt: {reason}")]
    Corrupt { key: String, reason: String },
    /// The update function refused to produce a new object.
    #[error(transparent)]
    Rejected(#[from] ApiError),
}

/// The function a guaranteed update applies to the current state. It gets the current object
/// (with its resourceVersion) and returns the new one, or an error that aborts the update.
pub type TryUpdate<'a> = dyn FnMut(&Stored) -> Result<Value, ApiError> + Send + 'a;

/// The function a delete checks the current state with before deleting (preconditions,
/// graceful-deletion rules); an error aborts the delete.
pub type CheckDelete<'a> = dyn FnMut(&Stored) -> Result<(), ApiError> + Send + 'a;

#[async_trait]
pub trait Storage: Send + Sync {
    /// Stores `object` at `key` if nothing is there; returns the stored object. With `ttl`
    /// (seconds) the object expires by itself, as Events do upstream (`--event-ttl`).
    async fn create(
        &self,
        key: &str,
        object: Value,
        ttl: Option<i64>,
    ) -> Result<Stored, StorageError>;

    /// Reads the object at `key`.
    async fn get(&self, key: &str) -> Result<Stored, StorageError>;

    /// Reads every object under `prefix` and the revision the list is consistent at.
    async fn list(&self, prefix: &str) -> Result<(Vec<Stored>, i64), StorageError>;

    /// Reads at most `limit` objects under `prefix` from key `from` on (`from` empty: the
    /// start), at revision `rev` (0: the current one). A compacted `rev` is `Expired`.
    async fn list_page(
        &self,
        prefix: &str,
        from: &str,
        rev: i64,
        limit: i64,
    ) -> Result<Page, StorageError>;

    /// Applies `try_update` to the current object until the write lands without a concurrent
    /// change in between (optimistic concurrency, retried). An update that changes nothing
    /// writes nothing and returns the current object.
    async fn guaranteed_update(
        &self,
        key: &str,
        try_update: &mut TryUpdate<'_>,
    ) -> Result<Stored, StorageError>;

    /// As [`Storage::guaranteed_update`], starting from `guess` (a cached copy of the
    /// object, possibly stale) instead of reading it: a stale guess is detected by the
    /// conditional write and replaced by a fresh read, so the result is the same.
    async fn guaranteed_update_from(
        &self,
        key: &str,
        guess: Option<Stored>,
        try_update: &mut TryUpdate<'_>,
    ) -> Result<Stored, StorageError> {
        let _ = guess;
        self.guaranteed_update(key, try_update).await
    }

    /// Deletes the object at `key` if `check` accepts its current state; returns the last
    /// state stamped with the deletion's revision.
    async fn delete(&self, key: &str, check: &mut CheckDelete<'_>) -> Result<Stored, StorageError>;

    /// As [`Storage::delete`], checking `guess` (a cached copy) first.
    async fn delete_from(
        &self,
        key: &str,
        guess: Option<Stored>,
        check: &mut CheckDelete<'_>,
    ) -> Result<Stored, StorageError> {
        let _ = guess;
        self.delete(key, check).await
    }

    /// Streams every change under `prefix` after revision `after`.
    async fn watch(&self, prefix: &str, after: i64) -> Result<WatchStream, StorageError>;

    /// As [`Storage::watch`], for a watcher that keeps every object itself (the watch cache):
    /// a modification need not carry its previous state, which such a watcher already holds,
    /// and a store may leave it out rather than decode it. A change under one of `skip` (what
    /// the watcher follows only for its revision) may come with a `Null` object, undecoded.
    async fn watch_changes(
        &self,
        prefix: &str,
        after: i64,
        skip: &[String],
    ) -> Result<WatchStream, StorageError> {
        let _ = skip;
        self.watch(prefix, after).await
    }

    /// The store's current revision: a consistent read must see every write up to it.
    async fn current_revision(&self) -> Result<i64, StorageError>;
}

/// The key of an object: `<prefix>/<resource>/<namespace>/<name>` or, cluster-scoped,
/// `<prefix>/<resource>/<name>`.
pub fn object_key(prefix: &str, resource: &str, namespace: &str, name: &str) -> String {
    if namespace.is_empty() {
        format!("{prefix}/{resource}/{name}")
    } else {
        format!("{prefix}/{resource}/{namespace}/{name}")
    }
}

/// The key prefix of a list: every object of a resource, or those of one namespace.
pub fn list_prefix(prefix: &str, resource: &str, namespace: &str) -> String {
    if namespace.is_empty() {
        format!("{prefix}/{resource}/")
    } else {
        format!("{prefix}/{resource}/{namespace}/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_registry_layout() {
        assert_eq!(
            object_key("/registry", "pods", "default", "db"),
            "/registry/pods/default/db"
        );
        assert_eq!(
            object_key("/registry", "nodes", "", "n1"),
            "/registry/nodes/n1"
        );
        assert_eq!(list_prefix("/r", "pods", ""), "/r/pods/");
        assert_eq!(
            list_prefix("/r", "pods", "kube-system"),
            "/r/pods/kube-system/"
        );
    }
}
