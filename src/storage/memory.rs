//! [`Storage`] in memory, with etcd's semantics, for tests of everything above storage.
//!
//! Like etcd it has one revision counter for all keys, a create that fails on an existing key,
//! updates and deletes that apply atomically to the state they checked, a history that watches
//! replay from any revision after the last compaction (an older one is `Expired`), and lists
//! at any such revision. Time-to-live is accepted and ignored: nothing expires.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use serde_json::Value;
use tokio::sync::mpsc;

use super::{
    CheckDelete, EventType, Page, Storage, StorageError, StorageEvent, Stored, TryUpdate,
    WatchItem, WatchStream,
};
use crate::meta::object;

/// Events a watcher may have unread before it is cut off, as a slow etcd watcher would be.
const WATCH_BUFFER: usize = 1024;

#[derive(Default)]
struct State {
    rev: i64,
    /// The revision history was compacted to: reads and watches at or before it are gone.
    compacted: i64,
    /// Every key's value and the revision it was last written at.
    objects: BTreeMap<String, (Arc<Value>, i64)>,
    /// Every change ever made, oldest first (trimmed by compaction).
    history: Vec<Arc<StorageEvent>>,
    watchers: Vec<(String, mpsc::Sender<WatchItem>)>,
}

impl State {
    fn stored(key: &str, value: &Arc<Value>, rev: i64) -> Stored {
        Stored::new(key.to_string(), Arc::new(with_rv(value, rev)), rev)
    }

    /// Records a change and hands it to every watcher of its key; a watcher that cannot keep
    /// up is dropped.
    fn publish(&mut self, event: StorageEvent) {
        let event = Arc::new(event);
        self.history.push(event.clone());
        self.watchers.retain(|(prefix, tx)| {
            !event.key.starts_with(prefix.as_str()) || tx.try_send(Ok(event.clone())).is_ok()
        });
    }

    /// The objects under `prefix` as they were at `rev`, replayed from history.
    fn at(&self, prefix: &str, rev: i64) -> BTreeMap<String, Stored> {
        let mut out = BTreeMap::new();
        for event in self.history.iter().take_while(|e| e.rev <= rev) {
            if !event.key.starts_with(prefix) {
                continue;
            }
            match event.kind {
                EventType::Deleted => {
                    out.remove(&event.key);
                }
                _ => {
                    out.insert(
                        event.key.clone(),
                        Stored::new(event.key.clone(), event.object.arc().clone(), event.rev),
                    );
                }
            }
        }
        out
    }
}

/// The object with `metadata.resourceVersion` set to `rev`.
fn with_rv(value: &Value, rev: i64) -> Value {
    let mut obj = value.clone();
    object::metadata_mut(&mut obj).insert("resourceVersion".into(), rev.to_string().into());
    obj
}

/// The object as it is stored: without a resourceVersion.
fn without_rv(mut value: Value) -> Value {
    object::metadata_mut(&mut value).remove("resourceVersion");
    value
}

#[derive(Default)]
pub struct MemoryStorage {
    state: Mutex<State>,
}

impl MemoryStorage {
    pub fn new() -> Arc<MemoryStorage> {
        Arc::new(MemoryStorage::default())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current revision.
    pub fn revision(&self) -> i64 {
        self.lock().rev
    }

    /// Drops history at and before `rev`, as an etcd compaction does.
    pub fn compact(&self, rev: i64) {
        let mut state = self.lock();
        let rev = rev.min(state.rev);
        state.compacted = state.compacted.max(rev);
        // Keep the events a list at the compacted revision still needs: each key's state then.
        let live: std::collections::HashSet<(String, i64)> = state
            .at("", rev)
            .into_values()
            .map(|s| (s.key, s.rev))
            .collect();
        state
            .history
            .retain(|e| e.rev > rev || live.contains(&(e.key.clone(), e.rev)));
    }
}

#[async_trait]
impl Storage for MemoryStorage {
    async fn create(
        &self,
        key: &str,
        object: Value,
        _ttl: Option<i64>,
    ) -> Result<Stored, StorageError> {
        let mut state = self.lock();
        if state.objects.contains_key(key) {
            return Err(StorageError::AlreadyExists(key.to_string()));
        }
        state.rev += 1;
        let rev = state.rev;
        let value = Arc::new(without_rv(object));
        state.objects.insert(key.to_string(), (value.clone(), rev));
        let stored = State::stored(key, &value, rev);
        state.publish(StorageEvent::new(
            EventType::Added,
            key.to_string(),
            stored.object.arc().clone(),
            None,
            rev,
        ));
        Ok(stored)
    }

    async fn current_revision(&self) -> Result<i64, StorageError> {
        Ok(self.revision())
    }

    async fn get(&self, key: &str) -> Result<Stored, StorageError> {
        let state = self.lock();
        match state.objects.get(key) {
            Some((value, rev)) => Ok(State::stored(key, value, *rev)),
            None => Err(StorageError::NotFound(key.to_string())),
        }
    }

    async fn list(&self, prefix: &str) -> Result<(Vec<Stored>, i64), StorageError> {
        let state = self.lock();
        let items = state
            .objects
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, (v, r))| State::stored(k, v, *r))
            .collect();
        Ok((items, state.rev))
    }

    async fn list_page(
        &self,
        prefix: &str,
        from: &str,
        rev: i64,
        limit: i64,
    ) -> Result<Page, StorageError> {
        let state = self.lock();
        if rev > 0 && rev <= state.compacted {
            return Err(StorageError::Expired {
                requested: rev,
                oldest: state.compacted,
            });
        }
        let rev = if rev > 0 {
            rev.min(state.rev)
        } else {
            state.rev
        };
        let start = if from.is_empty() { prefix } else { from };
        let all: Vec<Stored> = state
            .at(prefix, rev)
            .into_values()
            .filter(|s| s.key.as_str() >= start)
            .collect();
        let count = all.len() as i64;
        let limit = limit.max(1) as usize;
        let more = all.len() > limit;
        Ok(Page {
            items: all.into_iter().take(limit).collect(),
            rev,
            count,
            more,
        })
    }

    async fn guaranteed_update(
        &self,
        key: &str,
        try_update: &mut TryUpdate<'_>,
    ) -> Result<Stored, StorageError> {
        // The state is locked from read to write: nothing can change in between, so one try
        // is always enough (etcd would retry on a concurrent write instead).
        let mut state = self.lock();
        let (value, rev) = state
            .objects
            .get(key)
            .cloned()
            .ok_or_else(|| StorageError::NotFound(key.to_string()))?;
        let current = State::stored(key, &value, rev);
        let new = without_rv(try_update(&current)?);
        if new == *value {
            return Ok(current);
        }
        state.rev += 1;
        let rev = state.rev;
        let new = Arc::new(new);
        state.objects.insert(key.to_string(), (new.clone(), rev));
        let stored = State::stored(key, &new, rev);
        state.publish(StorageEvent::new(
            EventType::Modified,
            key.to_string(),
            stored.object.arc().clone(),
            Some(current.object.into_arc()),
            rev,
        ));
        Ok(stored)
    }

    async fn delete(&self, key: &str, check: &mut CheckDelete<'_>) -> Result<Stored, StorageError> {
        let mut state = self.lock();
        let (value, rev) = state
            .objects
            .get(key)
            .cloned()
            .ok_or_else(|| StorageError::NotFound(key.to_string()))?;
        let current = State::stored(key, &value, rev);
        check(&current)?;
        state.objects.remove(key);
        state.rev += 1;
        let rev = state.rev;
        let last = State::stored(key, &value, rev);
        state.publish(StorageEvent::new(
            EventType::Deleted,
            key.to_string(),
            last.object.arc().clone(),
            Some(current.object.into_arc()),
            rev,
        ));
        Ok(last)
    }

    async fn watch(&self, prefix: &str, after: i64) -> Result<WatchStream, StorageError> {
        let mut state = self.lock();
        let (tx, rx) = mpsc::channel(WATCH_BUFFER);
        if after < state.compacted {
            // As etcd does: the stream opens and its first item is the 410.
            let _ = tx.try_send(Err(StorageError::Expired {
                requested: after,
                oldest: state.compacted,
            }));
            return Ok(rx);
        }
        for event in state.history.iter().filter(|e| e.rev > after) {
            if event.key.starts_with(prefix) && tx.try_send(Ok(event.clone())).is_err() {
                // More history than a watcher may buffer: it is cut off at once.
                return Ok(rx);
            }
        }
        state.watchers.push((prefix.to_string(), tx));
        Ok(rx)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn obj(name: &str, v: i64) -> Value {
        json!({"metadata": {"name": name}, "v": v})
    }

    #[tokio::test]
    async fn revisions_are_shared_by_all_keys_and_never_stored() {
        let s = MemoryStorage::new();
        let a = s.create("/r/a", obj("a", 1), None).await.expect("a");
        let b = s.create("/r/b", obj("b", 1), None).await.expect("b");
        assert_eq!((a.rev, b.rev), (1, 2));
        assert_eq!(b.object["metadata"]["resourceVersion"], "2");
        let again = s.create("/r/a", obj("a", 2), None).await;
        assert!(matches!(again, Err(StorageError::AlreadyExists(_))));
        let (items, rev) = s.list("/r/").await.expect("list");
        assert_eq!((items.len(), rev), (2, 2));
    }

    #[tokio::test]
    async fn an_update_that_changes_nothing_writes_nothing() {
        let s = MemoryStorage::new();
        s.create("/r/a", obj("a", 1), None).await.expect("a");
        let same = s
            .guaranteed_update("/r/a", &mut |cur| Ok((*cur.object).clone()))
            .await
            .expect("same");
        assert_eq!(same.rev, 1);
        let changed = s
            .guaranteed_update("/r/a", &mut |_| Ok(obj("a", 2)))
            .await
            .expect("changed");
        assert_eq!(changed.rev, 2);
        let refused = s
            .guaranteed_update("/r/a", &mut |_| {
                Err(crate::meta::ApiError::bad_request("no"))
            })
            .await;
        assert!(matches!(refused, Err(StorageError::Rejected(_))));
    }

    #[tokio::test]
    async fn watches_replay_history_and_expire_before_compaction() {
        let s = MemoryStorage::new();
        s.create("/r/a", obj("a", 1), None).await.expect("a");
        s.create("/x/b", obj("b", 1), None).await.expect("b");
        let mut w = s.watch("/r/", 0).await.expect("watch");
        s.delete("/r/a", &mut |_| Ok(())).await.expect("delete");
        let first = w.recv().await.expect("event").expect("ok");
        assert_eq!((first.kind, first.rev), (EventType::Added, 1));
        let second = w.recv().await.expect("event").expect("ok");
        assert_eq!((second.kind, second.rev), (EventType::Deleted, 3));
        assert_eq!(second.prev.as_ref().expect("prev")["v"], 1);

        s.compact(2);
        let mut old = s.watch("/r/", 1).await.expect("watch");
        assert!(matches!(
            old.recv().await,
            Some(Err(StorageError::Expired { .. }))
        ));
        let page = s.list_page("/x/", "", 2, 10).await;
        assert!(matches!(page, Err(StorageError::Expired { .. })));
    }

    #[tokio::test]
    async fn list_pages_read_one_revision() {
        let s = MemoryStorage::new();
        for name in ["a", "b", "c"] {
            s.create(&format!("/r/{name}"), obj(name, 1), None)
                .await
                .expect("create");
        }
        let first = s.list_page("/r/", "", 0, 2).await.expect("page");
        assert_eq!((first.items.len(), first.count, first.more), (2, 3, true));
        s.delete("/r/c", &mut |_| Ok(())).await.expect("delete");
        let from = super::super::key_after(&first.items[1].key);
        let second = s.list_page("/r/", &from, first.rev, 2).await.expect("page");
        assert_eq!(
            second.items.len(),
            1,
            "c is still there at the first page's revision"
        );
        assert!(!second.more);
    }
}
