//! The watch cache: one etcd watch per resource, fanned out in memory to every API watcher.
//!
//! Follows Kubernetes' `storage/cacher`: the cache holds the current objects and a bounded
//! window of recent events, so a watch resumed from a recent resourceVersion is served from
//! memory without a gap. A watch from before the window falls through to etcd, which answers
//! from its own history or, when compacted, with 410 Expired. Writes and consistent reads go
//! straight to etcd.
//!
//! Architecture invariant: a slow watcher never blocks the others. Each gets a bounded buffer;
//! when it fills, the watcher is ended with 410 Expired and must relist (`slow_watcher_...` test).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{
    CheckDelete, EtcdStorage, EventType, Storage, StorageError, StorageEvent, Stored, TryUpdate,
    WatchItem, WatchStream,
};

/// Events a watcher may have queued before it counts as too slow.
pub const WATCHER_BUFFER: usize = 1000;
/// Recent events kept in memory for resuming watches.
const HISTORY: usize = 10_000;

struct Slot {
    prefix: String,
    after: i64,
    tx: mpsc::Sender<WatchItem>,
}

#[derive(Default)]
struct State {
    objects: BTreeMap<String, Arc<Value>>,
    /// The revision of the last event applied (or of the initial list).
    rev: i64,
    /// Every change after this revision is in `history`.
    oldest: i64,
    history: VecDeque<Arc<StorageEvent>>,
    watchers: Vec<Slot>,
    buffer: usize,
}

impl State {
    /// Offers an event to one watcher; false when the watcher is gone or was too slow.
    fn offer(slot: &Slot, event: &Arc<StorageEvent>, oldest: i64) -> bool {
        if event.rev <= slot.after || !event.key.starts_with(&slot.prefix) {
            return !slot.tx.is_closed();
        }
        // One permit is kept back so that a slow watcher can still be told why it ends.
        if slot.tx.capacity() <= 1 {
            let _ = slot.tx.try_send(Err(StorageError::Expired {
                requested: slot.after,
                oldest,
            }));
            return false;
        }
        slot.tx.try_send(Ok(event.clone())).is_ok()
    }

    fn apply(&mut self, event: StorageEvent) {
        match event.kind {
            EventType::Deleted => {
                self.objects.remove(&event.key);
            }
            EventType::Added | EventType::Modified => {
                self.objects.insert(event.key.clone(), event.object.clone());
            }
        }
        self.rev = self.rev.max(event.rev);
        let event = Arc::new(event);
        let oldest = self.oldest;
        self.watchers
            .retain(|slot| State::offer(slot, &event, oldest));
        self.history.push_back(event);
        while self.history.len() > HISTORY {
            if let Some(dropped) = self.history.pop_front() {
                self.oldest = dropped.rev;
            }
        }
    }

    /// Ends every watcher with 410, e.g. after the cache had to relist.
    fn expire_all(&mut self) {
        for slot in self.watchers.drain(..) {
            let _ = slot.tx.try_send(Err(StorageError::Expired {
                requested: slot.after,
                oldest: self.oldest,
            }));
        }
    }

    fn register(&mut self, prefix: &str, after: i64, backlog: usize) -> WatchStream {
        let (tx, rx) = mpsc::channel(self.buffer + backlog + 1);
        let slot = Slot {
            prefix: prefix.to_string(),
            after,
            tx,
        };
        for event in &self.history {
            if event.rev > after && event.key.starts_with(prefix) {
                let _ = slot.tx.try_send(Ok(event.clone()));
            }
        }
        self.watchers.push(slot);
        rx
    }
}

pub struct Cacher {
    inner: EtcdStorage,
    prefix: String,
    state: Mutex<State>,
}

impl Cacher {
    /// Lists `prefix` from etcd and keeps the cache current until `shutdown`.
    pub async fn start(
        inner: EtcdStorage,
        prefix: String,
        tracker: &TaskTracker,
        shutdown: CancellationToken,
    ) -> Result<Arc<Cacher>, StorageError> {
        let cacher = Arc::new(Cacher {
            inner,
            prefix,
            state: Mutex::new(State {
                buffer: WATCHER_BUFFER,
                ..State::default()
            }),
        });
        cacher.relist().await?;
        let runner = cacher.clone();
        tracker.spawn(async move { runner.run(shutdown).await });
        Ok(cacher)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the map half-updated in a way that
        // matters more than losing the whole server, so a poisoned lock is taken over.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn relist(&self) -> Result<(), StorageError> {
        let (items, rev) = self.inner.list(&self.prefix).await?;
        let mut state = self.lock();
        state.objects = items.into_iter().map(|s| (s.key, s.object)).collect();
        state.rev = rev;
        state.oldest = rev;
        state.history.clear();
        state.expire_all();
        Ok(())
    }

    /// Follows etcd from the cache's revision; on a broken watch it reconnects, and when the
    /// history it needs was compacted away it relists and expires its watchers.
    async fn run(&self, shutdown: CancellationToken) {
        loop {
            let from = self.lock().rev;
            let stream = tokio::select! {
                s = self.inner.watch(&self.prefix, from) => s,
                () = shutdown.cancelled() => return,
            };
            match stream {
                Ok(mut stream) => loop {
                    let item = tokio::select! {
                        item = stream.recv() => item,
                        () = shutdown.cancelled() => return,
                    };
                    match item {
                        Some(Ok(event)) => {
                            let event = Arc::try_unwrap(event).unwrap_or_else(|e| (*e).clone());
                            self.lock().apply(event);
                        }
                        Some(Err(StorageError::Expired { .. })) => {
                            if let Err(e) = self.relist().await {
                                tracing::warn!(prefix = %self.prefix, error = %e, "relist failed");
                            }
                            break;
                        }
                        Some(Err(e)) => {
                            tracing::warn!(prefix = %self.prefix, error = %e, "watch broke");
                            break;
                        }
                        None => break,
                    }
                },
                Err(e) => tracing::warn!(prefix = %self.prefix, error = %e, "cannot watch etcd"),
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
                () = shutdown.cancelled() => return,
            }
        }
    }

    /// The cached objects under `prefix` and the revision they are current at, plus a watch
    /// of every later change: the two are taken atomically, so nothing falls between them.
    pub fn snapshot_and_watch(&self, prefix: &str) -> (Vec<Stored>, i64, WatchStream) {
        let mut state = self.lock();
        let items = Self::snapshot(&state, prefix);
        let rev = state.rev;
        let rx = state.register(prefix, rev, 0);
        (items, rev, rx)
    }

    /// The cached objects under `prefix` ("any" freshness, as resourceVersion=0 asks for).
    pub fn list_cached(&self, prefix: &str) -> (Vec<Stored>, i64) {
        let state = self.lock();
        (Self::snapshot(&state, prefix), state.rev)
    }

    fn snapshot(state: &State, prefix: &str) -> Vec<Stored> {
        state
            .objects
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| Stored {
                key: k.clone(),
                rev: crate::meta::object::resource_version(v)
                    .parse()
                    .unwrap_or_default(),
                object: v.clone(),
            })
            .collect()
    }

    /// The revision the cache is current at.
    pub fn revision(&self) -> i64 {
        self.lock().rev
    }

    /// One page of a list read from etcd (see [`EtcdStorage::list_page`]).
    pub async fn list_page(
        &self,
        prefix: &str,
        from: &str,
        rev: i64,
        limit: i64,
    ) -> Result<super::Page, StorageError> {
        self.inner.list_page(prefix, from, rev, limit).await
    }

    /// A consistent list at an earlier revision, read from etcd.
    pub async fn list_at(
        &self,
        prefix: &str,
        rev: i64,
    ) -> Result<(Vec<Stored>, i64), StorageError> {
        self.inner.list_at(prefix, rev).await
    }

    /// Forgets history at and before `rev` after etcd was compacted to it, so that the cache
    /// answers an old resourceVersion exactly as etcd would: 410 Expired.
    pub fn compacted(&self, rev: i64) {
        let mut state = self.lock();
        while state.history.front().is_some_and(|e| e.rev <= rev) {
            state.history.pop_front();
        }
        state.oldest = state.oldest.max(rev.min(state.rev));
    }

    /// How many watchers are attached (for tests and metrics).
    pub fn watcher_count(&self) -> usize {
        let mut state = self.lock();
        state.watchers.retain(|s| !s.tx.is_closed());
        state.watchers.len()
    }
}

#[async_trait]
impl Storage for Cacher {
    async fn create(
        &self,
        key: &str,
        object: Value,
        ttl: Option<i64>,
    ) -> Result<Stored, StorageError> {
        self.inner.create(key, object, ttl).await
    }

    async fn get(&self, key: &str) -> Result<Stored, StorageError> {
        self.inner.get(key).await
    }

    async fn list(&self, prefix: &str) -> Result<(Vec<Stored>, i64), StorageError> {
        self.inner.list(prefix).await
    }

    async fn guaranteed_update(
        &self,
        key: &str,
        try_update: &mut TryUpdate<'_>,
    ) -> Result<Stored, StorageError> {
        self.inner.guaranteed_update(key, try_update).await
    }

    async fn delete(&self, key: &str, check: &mut CheckDelete<'_>) -> Result<Stored, StorageError> {
        self.inner.delete(key, check).await
    }

    async fn watch(&self, prefix: &str, after: i64) -> Result<WatchStream, StorageError> {
        {
            let mut state = self.lock();
            if after >= state.oldest {
                let backlog = state.history.iter().filter(|e| e.rev > after).count();
                return Ok(state.register(prefix, after, backlog));
            }
        }
        self.inner.watch(prefix, after).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(rev: i64, key: &str) -> StorageEvent {
        StorageEvent {
            kind: EventType::Added,
            key: key.to_string(),
            object: Arc::new(json!({"metadata": {"name": key}})),
            prev: None,
            rev,
        }
    }

    fn state(buffer: usize) -> State {
        State {
            buffer,
            ..State::default()
        }
    }

    #[test]
    fn slow_watcher_is_expired_without_blocking_others() {
        let mut state = state(3);
        let mut slow = state.register("/r/pods/", 0, 0);
        let mut fast = state.register("/r/pods/", 0, 0);
        for rev in 1..=10 {
            state.apply(event(rev, &format!("/r/pods/ns/p{rev}")));
            while let Ok(item) = fast.try_recv() {
                assert!(item.is_ok());
            }
        }
        let mut got = Vec::new();
        while let Ok(item) = slow.try_recv() {
            got.push(item);
        }
        assert_eq!(got.len(), 4, "three events, then the expiry");
        assert!(matches!(got[3], Err(StorageError::Expired { .. })));
        assert_eq!(state.watchers.len(), 1, "only the fast watcher remains");
    }

    #[test]
    fn resumed_watch_replays_history_after_its_revision() {
        let mut state = state(10);
        for rev in 1..=5 {
            state.apply(event(rev, &format!("/r/pods/ns/p{rev}")));
        }
        let mut rx = state.register("/r/pods/", 3, 2);
        let revs: Vec<i64> = std::iter::from_fn(|| rx.try_recv().ok())
            .map(|i| i.map(|e| e.rev).unwrap_or(-1))
            .collect();
        assert_eq!(revs, vec![4, 5]);
    }

    #[test]
    fn watch_sees_only_its_prefix() {
        let mut state = state(10);
        let mut rx = state.register("/r/pods/a/", 0, 0);
        state.apply(event(1, "/r/pods/b/x"));
        state.apply(event(2, "/r/pods/a/y"));
        let got: Vec<String> = std::iter::from_fn(|| rx.try_recv().ok())
            .filter_map(|i| i.ok().map(|e| e.key.clone()))
            .collect();
        assert_eq!(got, vec!["/r/pods/a/y".to_string()]);
    }

    #[test]
    fn deletion_removes_the_cached_object() {
        let mut state = state(10);
        state.apply(event(1, "/r/pods/a/x"));
        let mut gone = event(2, "/r/pods/a/x");
        gone.kind = EventType::Deleted;
        state.apply(gone);
        assert!(state.objects.is_empty());
        assert_eq!(state.rev, 2);
    }
}
