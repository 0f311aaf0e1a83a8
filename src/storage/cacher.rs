//! The watch cache: one cache per resource, all fed by ONE etcd watch of the registry's root
//! and fanned out in memory to every API watcher.
//!
//! Follows Kubernetes' `storage/cacher`: the cache holds the current objects and a bounded
//! window of recent events, so a watch resumed from a recent resourceVersion is served from
//! memory without a gap. A watch from before the window falls through to etcd, which answers
//! from its own history or, when compacted, with 410 Expired. Writes and GETs go straight to
//! etcd. A consistent LIST asks etcd for its current revision (one count-only read) and is
//! served from memory once the shared watch has delivered that revision: because every change
//! under the root arrives on the one watch in etcd's order, a cache is then exactly etcd's
//! state at it, whichever resource the last write was to. That is upstream's
//! ConsistentListFromCache without etcd's progress requests, which etcd 3.4 cannot be trusted
//! with; a write outside the root (nothing of rkube's) sends the read to etcd instead.
//!
//! The cache keeps each object as its JSON alone (shared with the change that made that
//! state), beside its labels and the values of its kind's selectable fields ([`Attrs`]): a
//! decoded Pod takes about seven times its JSON, a LIST sends the JSON as it is, and a selector
//! LIST reads the attributes. An object is decoded again where something reads it (a GET from
//! the cache, a table, protobuf, admission), and that copy lives as long as its reader. Each
//! change reaches the watchers decoded, as the shared etcd watch decoded it; the history keeps
//! it as JSON too, decoded again only for a watcher that resumes from it and filters.
//!
//! The history is bounded twice: at most [`HISTORY`] events and at most `history_bytes` (what the
//! events hold: each new state's JSON and the protobuf a replay may make of it;
//! `--watch-cache-history-mib`, [`DEFAULT_HISTORY_MIB`] MiB per resource by default), so neither a
//! few large objects updated often nor a burst of ordinary ones can make it grow without bound.
//! Past the newest [`HISTORY_FLOOR`], a change is also forgotten once it is [`HISTORY_FRESH`] old
//! (upstream's `eventFreshDuration`), so the memory a burst took comes back when the cluster goes
//! quiet; a watcher that is current (it saw the last change, or a later bookmark) resumes all the
//! same. A modification shares its previous state with the cached object instead of keeping a copy.
//! A watch from a resourceVersion older than the history is answered as upstream's `watch_cache.go`
//! does: one `ERROR` event, 410 `too old resource version: <requested> (<oldest available>)`, where
//! the bracketed number is the oldest resourceVersion a watch can still start from.
//!
//! A resource may also go uncached (upstream's `--watch-cache-sizes=<resource>#0`, the default
//! for Events): its reads and watches then all go to etcd, and it holds no memory here.
//!
//! Architecture invariant: a slow watcher never blocks the others. Each gets a bounded buffer;
//! when it fills, the watcher is ended with 410 Expired and must relist (`slow_watcher_...` test).

use std::collections::{BTreeMap, VecDeque};
use std::mem::size_of;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::meta::object;

use super::{
    CheckDelete, EventType, Object, Storage, StorageError, StorageEvent, Stored, TryUpdate,
    WatchItem, WatchStream,
};

/// Events a watcher may have queued before it counts as too slow.
pub const WATCHER_BUFFER: usize = 1000;
/// Recent events kept in memory for resuming watches.
pub const HISTORY: usize = 10_000;
/// The default bound of one resource's history, in MiB.
pub const DEFAULT_HISTORY_MIB: usize = 64;
/// How long a change stays in the history once more than [`HISTORY_FLOOR`] are kept:
/// upstream's `eventFreshDuration`, a bookmark's period and a margin, so a watcher that saw
/// its last bookmark can still resume from it.
pub const HISTORY_FRESH: Duration = Duration::from_secs(75);
/// The newest changes kept however old they are (upstream's lower bound of the history).
pub const HISTORY_FLOOR: usize = 100;
/// How often the shared watch looks for changes that have grown stale.
const SWEEP: Duration = Duration::from_secs(10);

struct Slot {
    prefix: String,
    /// The revision of the last event this watcher was given (or the one it started after).
    after: i64,
    /// Whether it was given an event yet: after that, a further event at the same revision
    /// (one transaction writes several keys at one revision) is new to it too.
    given: bool,
    tx: mpsc::Sender<WatchItem>,
}

fn event_size(event: &StorageEvent) -> usize {
    // The history keeps each change's states as their JSON alone. `prev` is shared with the
    // object cached before (or with an earlier change), so only the new state counts: once as
    // its JSON, and once as the protobuf a replay to a protobuf watcher may make of it (field
    // tags and lengths take no more room than JSON's quoted names and punctuation, so the
    // JSON's size bounds it), counted up front whether or not it is ever made.
    size_of::<Change>()
        + size_of::<StorageEvent>()
        + event.key.len()
        + 2 * event.object.json().len()
}

/// What a selector reads of a cached object: its labels and the values of the fields its kind
/// can select by, taken when the object is cached so that a selector list never decodes it.
#[derive(Debug, Clone, Default)]
pub struct Attrs {
    labels: Vec<(Box<str>, Box<str>)>,
    fields: Vec<Box<str>>,
}

impl Attrs {
    /// `labels` as the object has them ([`object::labels`]); `fields` in the order of the
    /// kind's selectable fields.
    pub fn new(
        labels: impl IntoIterator<Item = (String, String)>,
        fields: impl IntoIterator<Item = String>,
    ) -> Attrs {
        Attrs {
            labels: labels
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            fields: fields.into_iter().map(String::into_boxed_str).collect(),
        }
    }

    /// The value of label `key`, if the object has it.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| &**k == key)
            .map(|(_, v)| &**v)
    }

    /// The value of the kind's selectable field at `index` in its list.
    pub fn field(&self, index: usize) -> Option<&str> {
        self.fields.get(index).map(|f| &**f)
    }
}

/// How a cache takes the [`Attrs`] of the objects it holds.
pub type AttrsOf = Arc<dyn Fn(&Value) -> Attrs + Send + Sync>;

/// A page of a list served from the cache.
#[derive(Debug)]
pub struct CachedPage {
    pub items: Vec<Stored>,
    /// The revision the cache was current at.
    pub rev: i64,
    /// When the limit cut the list short: the key of the first selected object left out.
    pub next: Option<String>,
    /// How many objects under the prefix, selected or not, are left from `next` on.
    pub left: Option<usize>,
}

/// A change in the history and when it reached the cache.
struct Change {
    event: Arc<StorageEvent>,
    at: Instant,
}

/// A cached object, kept as its JSON (shared with the event that made it this state) and
/// what selectors read of it.
#[derive(Clone)]
struct Cached {
    object: Object,
    rev: i64,
    attrs: Attrs,
}

impl Cached {
    /// The state `object` (decoded) is at `rev`.
    fn of(object: &Object, rev: i64, attrs_of: Option<&AttrsOf>) -> Cached {
        Cached {
            attrs: match attrs_of {
                Some(attrs_of) => attrs_of(object),
                None => Attrs::new(object::labels(object), []),
            },
            object: object.compact(),
            rev,
        }
    }

    fn stored(&self, key: &str) -> Stored {
        Stored {
            key: key.to_string(),
            object: self.object.clone(),
            rev: self.rev,
        }
    }
}

#[derive(Default)]
struct State {
    objects: BTreeMap<String, Cached>,
    /// The revision of the last event applied (or of the initial list).
    rev: i64,
    /// The revision of the last list from storage: changes up to it are in `objects`
    /// already, later ones are not (however many keys one revision changed).
    listed: i64,
    /// Every change after this revision is in `history`.
    oldest: i64,
    history: VecDeque<Change>,
    /// The estimated size of `history`, bounded by `history_bytes`.
    history_size: usize,
    history_bytes: usize,
    watchers: Vec<Slot>,
    buffer: usize,
    /// How this cache takes its objects' [`Attrs`]; without it, their labels alone.
    attrs_of: Option<AttrsOf>,
}

impl State {
    /// Offers an event to one watcher; false when the watcher is gone or was too slow.
    fn offer(slot: &mut Slot, event: &Arc<StorageEvent>) -> bool {
        let seen = event.rev < slot.after || (event.rev == slot.after && !slot.given);
        if seen || !event.key.starts_with(&slot.prefix) {
            return !slot.tx.is_closed();
        }
        // One permit is kept back so that a slow watcher can still be told why it ends: it
        // has everything up to its last event, and could only go on from before this one.
        if slot.tx.capacity() <= 1 {
            let _ = slot.tx.try_send(Err(StorageError::Expired {
                requested: slot.after,
                oldest: event.rev - 1,
            }));
            return false;
        }
        if slot.tx.try_send(Ok(event.clone())).is_err() {
            return false;
        }
        slot.after = event.rev;
        slot.given = true;
        true
    }

    fn apply(&mut self, mut event: StorageEvent) {
        let previous = match event.kind {
            EventType::Deleted => self.objects.remove(&event.key),
            EventType::Added | EventType::Modified => {
                let cached = Cached::of(&event.object, event.rev, self.attrs_of.as_ref());
                self.objects.insert(event.key.clone(), cached)
            }
        };
        if event.kind != EventType::Added {
            event.prev = previous.map(|c| c.object).or(event.prev.take());
        }
        self.rev = self.rev.max(event.rev);
        // The watchers get the change as it was decoded; the history keeps its JSON alone.
        let kept = Arc::new(event.compact());
        let event = Arc::new(event);
        self.watchers.retain_mut(|slot| State::offer(slot, &event));
        self.history_size += event_size(&kept);
        self.history.push_back(Change {
            event: kept,
            at: Instant::now(),
        });
        while self.history.len() > HISTORY
            || (self.history_size > self.history_bytes && self.history.len() > 1)
        {
            self.forget_oldest();
        }
    }

    /// Drops the oldest change: a watch can no longer start before it.
    fn forget_oldest(&mut self) {
        if let Some(dropped) = self.history.pop_front() {
            self.history_size = self.history_size.saturating_sub(event_size(&dropped.event));
            self.oldest = self.oldest.max(dropped.event.rev);
        }
    }

    /// Forgets the changes older than [`HISTORY_FRESH`] at `now`, keeping the newest
    /// [`HISTORY_FLOOR`], and gives back the room the history had grown to.
    fn forget_stale(&mut self, now: Instant) {
        while self.history.len() > HISTORY_FLOOR
            && self
                .history
                .front()
                .is_some_and(|c| now.saturating_duration_since(c.at) > HISTORY_FRESH)
        {
            self.forget_oldest();
        }
        if self.history.capacity() > 4 * self.history.len().max(HISTORY_FLOOR) {
            self.history.shrink_to_fit();
        }
    }

    /// The oldest resourceVersion a watch can start from: every change of this resource after
    /// it is in the history (upstream: the oldest event's resourceVersion minus one).
    fn oldest_watchable(&self) -> i64 {
        match self.history.front() {
            Some(first) => self.oldest.max(first.event.rev - 1),
            None => self.oldest.max(self.rev),
        }
    }

    /// Ends every watcher with 410, e.g. after the cache had to relist.
    fn expire_all(&mut self) {
        let oldest = self.oldest_watchable();
        for slot in self.watchers.drain(..) {
            let _ = slot.tx.try_send(Err(StorageError::Expired {
                requested: slot.after,
                oldest,
            }));
        }
    }

    fn register(&mut self, prefix: &str, after: i64, backlog: usize) -> WatchStream {
        let (tx, rx) = mpsc::channel(self.buffer + backlog + 1);
        let mut slot = Slot {
            prefix: prefix.to_string(),
            after,
            given: false,
            tx,
        };
        for Change { event, .. } in &self.history {
            if event.rev > after
                && event.key.starts_with(prefix)
                && slot.tx.try_send(Ok(event.clone())).is_ok()
            {
                slot.after = event.rev;
                slot.given = true;
            }
        }
        self.watchers.push(slot);
        rx
    }

    /// A watch from `after`, or None when its history is gone.
    fn watch_from(&mut self, prefix: &str, after: i64) -> Option<WatchStream> {
        if after < self.oldest_watchable() {
            return None;
        }
        let backlog = self.history.iter().filter(|c| c.event.rev > after).count();
        Some(self.register(prefix, after, backlog))
    }
}

pub struct Cacher {
    inner: Arc<dyn Storage>,
    prefix: String,
    /// False for a resource with no watch cache: every read and watch goes to `inner`.
    caching: bool,
    state: Mutex<State>,
    /// The revision of the last change the shared watch has applied, to whichever cache it
    /// belonged: every cache is current at least up to it.
    observed: watch::Receiver<i64>,
}

/// How long a consistent read waits for the caches to reach etcd's current revision before
/// it reads etcd itself.
pub const FRESH_WAIT: Duration = Duration::from_millis(50);

impl Cacher {
    /// Lists each of `prefixes` that is cached (beside it: how the cache takes its objects'
    /// [`Attrs`]; None for no cache) from etcd into a cache of its own, then keeps every cache
    /// current from ONE etcd watch of `root` (the prefix they all share) until `shutdown`.
    /// Changes reach the caches in etcd's order, so once the watch has delivered revision R
    /// every cache holds exactly etcd's state at R (see [`Cacher::fresh_at`]). An uncached
    /// prefix gets a `Cacher` that passes everything on.
    pub async fn start_all(
        inner: Arc<dyn Storage>,
        root: String,
        prefixes: Vec<(String, Option<AttrsOf>)>,
        history_bytes: usize,
        tracker: &TaskTracker,
        shutdown: CancellationToken,
    ) -> Result<Vec<Arc<Cacher>>, StorageError> {
        let (observed_tx, observed) = watch::channel(0);
        let mut cachers = Vec::with_capacity(prefixes.len());
        for (prefix, attrs_of) in prefixes {
            let caching = attrs_of.is_some();
            let cacher = Arc::new(Cacher {
                inner: inner.clone(),
                prefix,
                caching,
                state: Mutex::new(State {
                    buffer: WATCHER_BUFFER,
                    history_bytes,
                    attrs_of,
                    ..State::default()
                }),
                observed: observed.clone(),
            });
            if caching {
                cacher.relist().await?;
            }
            cachers.push(cacher);
        }
        let (fed, unfed): (Vec<_>, Vec<_>) = cachers.iter().cloned().partition(|c| c.caching);
        let from = fed.iter().map(|c| c.lock().rev).min().unwrap_or(0);
        observed_tx.send_replace(from);
        let feed = Feed {
            inner,
            root,
            cachers: fed,
            uncached: unfed.iter().map(|c| c.prefix.clone()).collect(),
            observed: observed_tx,
        };
        tracker.spawn(async move { feed.run(shutdown).await });
        Ok(cachers)
    }

    /// Whether this resource has a watch cache: when not, reads must go to storage.
    pub fn caching(&self) -> bool {
        self.caching
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the map half-updated in a way that
        // matters more than losing the whole server, so a poisoned lock is taken over.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn relist(&self) -> Result<(), StorageError> {
        let (items, rev) = self.inner.list(&self.prefix).await?;
        let mut state = self.lock();
        let attrs_of = state.attrs_of.clone();
        state.objects = items
            .into_iter()
            .map(|s| {
                let cached = Cached::of(&s.object, s.rev, attrs_of.as_ref());
                (s.key, cached)
            })
            .collect();
        state.rev = rev;
        state.listed = rev;
        state.oldest = rev;
        state.history.clear();
        state.history_size = 0;
        state.expire_all();
        Ok(())
    }

    /// Whether this cache is current at `rev` (etcd's revision when a consistent read began),
    /// waiting up to `wait` for the shared watch to get there. False when it did not: the
    /// read must then go to etcd (e.g. the last write was to a key outside the caches' root).
    pub async fn fresh_at(&self, rev: i64, wait: Duration) -> bool {
        if !self.caching {
            return false;
        }
        if self.revision() >= rev {
            return true;
        }
        let mut observed = self.observed.clone();
        let reached = tokio::time::timeout(wait, observed.wait_for(|r| *r >= rev)).await;
        matches!(reached, Ok(Ok(_)))
    }

    /// The revision the cache is current at, read with its lock held. The shared revision is
    /// read first: every change of this cache up to it was applied before it was published,
    /// so the state under the lock is current at the larger of the two.
    fn current(&self) -> (MutexGuard<'_, State>, i64) {
        let observed = *self.observed.borrow();
        let state = self.lock();
        let rev = state.rev.max(observed);
        (state, rev)
    }

    /// The objects under `prefix` and the revision they are current at, plus a watch of every
    /// later change: nothing falls between the two. From the cache, taken atomically; without
    /// one, a list from storage and a watch from its revision (upstream's etcd watcher).
    pub async fn list_and_watch(
        &self,
        prefix: &str,
    ) -> Result<(Vec<Stored>, i64, WatchStream), StorageError> {
        if !self.caching {
            let (items, rev) = self.inner.list(prefix).await?;
            let stream = self.inner.watch(prefix, rev).await?;
            return Ok((items, rev, stream));
        }
        let (mut state, rev) = self.current();
        let items = Self::snapshot(&state, prefix);
        let rx = state.register(prefix, rev, 0);
        Ok((items, rev, rx))
    }

    /// The first `limit` (or all) cached objects under `prefix` that `keep` selects, as
    /// current as the cache is. They are selected before they are copied out, so what is not
    /// selected is never copied, and selecting stops at the first selected object past the
    /// limit (the objects after it are only counted); up to there every object is looked at,
    /// with the cache's lock held (there is no index by field or label yet).
    pub fn list_cached(
        &self,
        prefix: &str,
        keep: impl Fn(&Attrs) -> bool,
        limit: Option<usize>,
    ) -> CachedPage {
        let (state, rev) = self.current();
        let mut objects = Self::under(&state, prefix);
        let mut items = Vec::new();
        let mut next = None;
        for (key, cached) in objects.by_ref() {
            if !keep(&cached.attrs) {
                continue;
            }
            if limit.is_some_and(|l| items.len() >= l) {
                next = Some(key.clone());
                break;
            }
            items.push(cached.stored(key));
        }
        let left = next.is_some().then(|| 1 + objects.count());
        CachedPage {
            items,
            rev,
            next,
            left,
        }
    }

    fn snapshot(state: &State, prefix: &str) -> Vec<Stored> {
        Self::under(state, prefix)
            .map(|(k, c)| c.stored(k))
            .collect()
    }

    fn under<'a>(
        state: &'a State,
        prefix: &'a str,
    ) -> impl Iterator<Item = (&'a String, &'a Cached)> + 'a {
        state
            .objects
            .range::<str, _>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .take_while(move |(k, _)| k.starts_with(prefix))
    }

    /// The cached copy of one object: a write's first guess, or what a reader that may lag
    /// behind by an event uses (authentication, admission); never a client's read.
    pub(crate) fn cached(&self, key: &str) -> Option<Stored> {
        Some(self.lock().objects.get(key)?.stored(key))
    }

    /// The revision the cache is current at.
    pub fn revision(&self) -> i64 {
        self.current().1
    }

    /// Forgets history at and before `rev` after etcd was compacted to it, so that the cache
    /// answers an old resourceVersion exactly as etcd would: 410 Expired.
    pub fn compacted(&self, rev: i64) {
        let mut state = self.lock();
        while state.history.front().is_some_and(|c| c.event.rev <= rev) {
            state.forget_oldest();
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

/// The one etcd watch behind every cache.
struct Feed {
    inner: Arc<dyn Storage>,
    root: String,
    cachers: Vec<Arc<Cacher>>,
    /// The prefixes under the root with no cache: followed for their revisions only.
    uncached: Vec<String>,
    observed: watch::Sender<i64>,
}

impl Feed {
    /// Follows etcd from the caches' revision; on a broken watch it reconnects, and when the
    /// history it needs was compacted away it relists every cache and expires its watchers.
    async fn run(&self, shutdown: CancellationToken) {
        let mut sweep = tokio::time::interval(SWEEP);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let from = *self.observed.borrow();
            let stream = tokio::select! {
                s = self.inner.watch_changes(&self.root, from, &self.uncached) => s,
                () = shutdown.cancelled() => return,
            };
            match stream {
                Ok(mut stream) => loop {
                    let item = tokio::select! {
                        item = stream.recv() => item,
                        _ = sweep.tick() => {
                            let now = Instant::now();
                            for cacher in &self.cachers {
                                cacher.lock().forget_stale(now);
                            }
                            continue;
                        }
                        () = shutdown.cancelled() => return,
                    };
                    match item {
                        Some(Ok(event)) => self.apply(event),
                        Some(Err(StorageError::Expired { .. })) => {
                            if let Err(e) = self.relist().await {
                                tracing::warn!(prefix = %self.root, error = %e, "relist failed");
                            }
                            break;
                        }
                        Some(Err(e)) => {
                            tracing::warn!(prefix = %self.root, error = %e, "watch broke");
                            break;
                        }
                        None => break,
                    }
                },
                Err(e) => tracing::warn!(prefix = %self.root, error = %e, "cannot watch etcd"),
            }
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
                () = shutdown.cancelled() => return,
            }
        }
    }

    /// Gives a change to the cache it belongs to (unless that cache's own list already
    /// holds it), then publishes its revision.
    fn apply(&self, event: Arc<StorageEvent>) {
        let rev = event.rev;
        if let Some(cacher) = self
            .cachers
            .iter()
            .find(|c| event.key.starts_with(&c.prefix))
        {
            let mut state = cacher.lock();
            if rev > state.listed {
                let event = Arc::try_unwrap(event).unwrap_or_else(|e| (*e).clone());
                state.apply(event);
            }
        }
        self.observed.send_if_modified(|observed| {
            let newer = rev > *observed;
            *observed = (*observed).max(rev);
            newer
        });
    }

    async fn relist(&self) -> Result<(), StorageError> {
        for cacher in &self.cachers {
            cacher.relist().await?;
        }
        let from = self.cachers.iter().map(|c| c.lock().rev).min().unwrap_or(0);
        // Going back is right here: the watch must restart where the oldest list stands.
        self.observed.send_replace(from);
        Ok(())
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

    async fn current_revision(&self) -> Result<i64, StorageError> {
        self.inner.current_revision().await
    }

    async fn list(&self, prefix: &str) -> Result<(Vec<Stored>, i64), StorageError> {
        self.inner.list(prefix).await
    }

    /// Pages are read from the storage below: they must be exact at their revision.
    async fn list_page(
        &self,
        prefix: &str,
        from: &str,
        rev: i64,
        limit: i64,
    ) -> Result<super::Page, StorageError> {
        self.inner.list_page(prefix, from, rev, limit).await
    }

    async fn guaranteed_update(
        &self,
        key: &str,
        try_update: &mut TryUpdate<'_>,
    ) -> Result<Stored, StorageError> {
        let guess = self.cached(key);
        self.inner
            .guaranteed_update_from(key, guess, try_update)
            .await
    }

    async fn delete(&self, key: &str, check: &mut CheckDelete<'_>) -> Result<Stored, StorageError> {
        let guess = self.cached(key);
        self.inner.delete_from(key, guess, check).await
    }

    /// A watch from `after`, served from the history; when the history no longer reaches back
    /// that far, a stream holding only the 410 (an `ERROR` event on the wire, as upstream).
    async fn watch(&self, prefix: &str, after: i64) -> Result<WatchStream, StorageError> {
        if !self.caching {
            return self.inner.watch(prefix, after).await;
        }
        let mut state = self.lock();
        if let Some(stream) = state.watch_from(prefix, after) {
            return Ok(stream);
        }
        let (tx, rx) = mpsc::channel(1);
        let _ = tx.try_send(Err(StorageError::Expired {
            requested: after,
            oldest: state.oldest_watchable(),
        }));
        Ok(rx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemoryStorage;
    use bytes::Bytes;
    use serde_json::json;

    fn event(rev: i64, key: &str) -> StorageEvent {
        StorageEvent::new(
            EventType::Added,
            key.to_string(),
            Arc::new(json!({"metadata": {"name": key}})),
            None,
            rev,
        )
    }

    fn state(buffer: usize) -> State {
        State {
            buffer,
            history_bytes: usize::MAX,
            ..State::default()
        }
    }

    fn big(rev: i64, key: &str, bytes: usize) -> StorageEvent {
        let mut e = event(rev, key);
        e.kind = EventType::Modified;
        let object = json!({"metadata": {"name": key}, "data": "x".repeat(bytes)});
        e.object = Object::decoded(Arc::new(object));
        e.prev = Some(Object::decoded(Arc::new(json!({}))));
        e
    }

    #[test]
    fn history_is_bounded_in_bytes() {
        let mut state = state(10);
        state.history_bytes = 10 << 20;
        for rev in 1..=50 {
            state.apply(big(rev, "/r/pods/a/big", 1 << 20));
        }
        assert!(state.history_size <= 10 << 20, "{}", state.history_size);
        assert!(state.history.len() < 10, "{}", state.history.len());
        let oldest = state
            .history
            .front()
            .expect("the newest events stay")
            .event
            .rev;
        assert_eq!(state.oldest_watchable(), oldest - 1);
        assert!(state.watch_from("/r/pods/", oldest - 2).is_none());
        assert!(state.watch_from("/r/pods/", oldest - 1).is_some());
    }

    #[test]
    fn the_cache_keeps_objects_as_json_and_decodes_them_where_read() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web", "namespace": "a", "labels": {"app": "web"},
                "resourceVersion": "1"},
            "spec": {"nodeName": "n1"}});
        let mut state = state(10);
        state.attrs_of = Some(Arc::new(|o: &Value| {
            let node = o["spec"]["nodeName"].as_str().unwrap_or("").to_string();
            Attrs::new(object::labels(o), [node])
        }));
        let mut watcher = state.register("/r/pods/", 0, 0);
        let event = StorageEvent::new(
            EventType::Added,
            "/r/pods/a/web".into(),
            Arc::new(pod.clone()),
            None,
            1,
        );
        state.apply(event);
        let live = watcher.try_recv().expect("an event").expect("not an error");
        assert!(live.object.is_decoded(), "watchers get the change decoded");
        let cached = &state.objects["/r/pods/a/web"];
        assert!(!cached.object.is_decoded(), "the cache keeps JSON");
        assert_eq!(cached.attrs.label("app"), Some("web"));
        assert_eq!(cached.attrs.field(0), Some("n1"));
        let kept = &state.history.back().expect("a change").event;
        assert!(!kept.object.is_decoded(), "so does the history");
        assert_eq!(
            kept.object.json().as_ptr(),
            live.object_json().as_ptr(),
            "one encoding for the watchers, the history and the cache"
        );
        let listed = Cacher::snapshot(&state, "/r/pods/");
        assert_eq!(*listed[0].object, pod, "decoded when read");
        assert!(!state.objects["/r/pods/a/web"].object.is_decoded());
        assert!(
            event_size(kept) >= "/r/pods/a/web".len() + 2 * live.object_json().len(),
            "the history counts the JSON and the protobuf a replay may make"
        );
    }

    #[test]
    fn history_bound_holds_with_every_event_encoded() {
        let mut state = state(10);
        state.history_bytes = 10 << 20;
        for rev in 1..=50 {
            state.apply(big(rev, "/r/pods/a/big", 1 << 20));
        }
        // The protobuf form is never larger than the JSON; a stand-in of the JSON's size
        // stands for it here (the storage layer does not know the API server's encoder).
        let held: usize = state
            .history
            .iter()
            .map(|Change { event: e, .. }| {
                let json = e.object_json().len();
                let encoded = e
                    .object_encoded(|_| Some(Bytes::from(vec![0; json])))
                    .map_or(0, Bytes::len);
                e.key.len() + json + encoded
            })
            .sum();
        assert!(
            held <= state.history_size,
            "{held} > {}",
            state.history_size
        );
        assert!(state.history_size <= 10 << 20, "{}", state.history_size);
    }

    #[test]
    fn every_watcher_of_a_change_shares_one_encoding() {
        let mut state = state(10);
        let mut watchers: Vec<WatchStream> =
            (0..3).map(|_| state.register("/r/pods/", 0, 0)).collect();
        state.apply(event(1, "/r/pods/a/p"));
        watchers.push(state.register("/r/pods/", 0, 1));
        let got: Vec<Arc<StorageEvent>> = watchers
            .iter_mut()
            .map(|w| w.try_recv().expect("an event").expect("not an error"))
            .collect();
        let first = got[0].object_json();
        for event in &got[..3] {
            assert!(
                Arc::ptr_eq(event, &got[0]),
                "one event for all live watchers"
            );
        }
        assert!(
            !got[3].object.is_decoded(),
            "a replay is the history's copy"
        );
        for event in &got {
            let json = event.object_json();
            assert_eq!(json.as_ptr(), first.as_ptr(), "encoded once, then shared");
        }
        assert_eq!(
            serde_json::from_slice::<Value>(first).expect("JSON"),
            *got[0].object
        );
    }

    #[test]
    fn a_listed_object_shares_the_encoding_of_the_change_that_made_it() {
        let mut state = state(10);
        let mut watcher = state.register("/r/pods/", 0, 0);
        state.apply(big(1, "/r/pods/a/p", 100));
        let event = watcher.try_recv().expect("an event").expect("not an error");
        let sent = event.object_json().clone();
        let listed = Cacher::snapshot(&state, "/r/pods/");
        assert_eq!(
            listed[0].object_json().as_ptr(),
            sent.as_ptr(),
            "encoded once"
        );
        assert_eq!(listed[0].rev, 1);

        // A change makes a new state with an encoding of its own; the old one stays as it was.
        state.apply(big(2, "/r/pods/a/p", 200));
        let relisted = Cacher::snapshot(&state, "/r/pods/");
        let json: Value = serde_json::from_slice(relisted[0].object_json()).expect("JSON");
        assert_eq!(json, *relisted[0].object);
        assert_eq!(json["data"].as_str().map(str::len), Some(200));
        assert_eq!(relisted[0].rev, 2);
        let old: Value = serde_json::from_slice(listed[0].object_json()).expect("JSON");
        assert_eq!(old["data"].as_str().map(str::len), Some(100));
    }

    #[test]
    fn a_modification_shares_the_cached_previous_state() {
        let mut state = state(10);
        state.apply(big(1, "/r/pods/a/p", 100));
        let cached = state.objects["/r/pods/a/p"].object.json().clone();
        state.apply(big(2, "/r/pods/a/p", 100));
        let last = state.history.back().expect("event");
        let prev = last.event.prev.as_ref().expect("prev");
        assert_eq!(
            prev.json().as_ptr(),
            cached.as_ptr(),
            "no second copy of the old state"
        );
    }

    #[test]
    fn stale_changes_are_forgotten_past_the_newest_floor() {
        let mut state = state(10);
        let total = HISTORY_FLOOR as i64 + 50;
        for rev in 1..=total {
            state.apply(event(rev, &format!("/r/pods/a/p{rev}")));
        }
        state.forget_stale(Instant::now());
        assert_eq!(state.history.len(), total as usize, "nothing is stale yet");

        state.forget_stale(Instant::now() + HISTORY_FRESH + Duration::from_secs(1));
        assert_eq!(state.history.len(), HISTORY_FLOOR);
        let oldest = state.oldest_watchable();
        assert_eq!(oldest, total - HISTORY_FLOOR as i64);
        assert!(state.watch_from("/r/pods/", oldest - 1).is_none());
        assert!(state.watch_from("/r/pods/", oldest).is_some());
        // A watcher that saw the last change resumes however long the cluster was quiet.
        let mut current = state.watch_from("/r/pods/", total).expect("current");
        state.apply(event(total + 1, "/r/pods/a/next"));
        let next = current.try_recv().expect("an event").expect("not an error");
        assert_eq!(next.rev, total + 1);
        assert_eq!(state.objects.len(), total as usize + 1, "objects stay");
    }

    #[test]
    fn too_old_watch_names_requested_then_oldest_available() {
        let mut state = state(10);
        state.history_bytes = 3 * 1000;
        for rev in 10..=20 {
            state.apply(big(rev, "/r/pods/a/p", 900));
        }
        let oldest = state.oldest_watchable();
        assert!(oldest > 12, "history was trimmed: {oldest}");
        let err = StorageError::Expired {
            requested: 12,
            oldest,
        };
        assert_eq!(
            err.to_string(),
            format!("too old resource version: 12 ({oldest})")
        );
        assert!(state.watch_from("/r/pods/", 12).is_none());
    }

    #[test]
    fn slow_watcher_is_told_where_it_stopped() {
        let mut state = state(2);
        let mut slow = state.register("/r/pods/", 0, 0);
        for rev in 5..=9 {
            state.apply(event(rev, &format!("/r/pods/ns/p{rev}")));
        }
        let got: Vec<WatchItem> = std::iter::from_fn(|| slow.try_recv().ok()).collect();
        let Some(Err(StorageError::Expired { requested, oldest })) = got.last() else {
            panic!("ends with 410");
        };
        assert_eq!(
            (*requested, *oldest),
            (6, 6),
            "had 5 and 6, could not take 7"
        );
        assert!(requested <= oldest);
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
    fn every_key_one_revision_changed_reaches_a_watcher() {
        let mut state = state(10);
        let mut rx = state.register("/r/pods/", 1, 0);
        state.apply(event(1, "/r/pods/a/old"));
        state.apply(event(2, "/r/pods/a/x"));
        state.apply(event(2, "/r/pods/a/y"));
        state.apply(event(3, "/r/pods/a/z"));
        let got: Vec<String> = std::iter::from_fn(|| rx.try_recv().ok())
            .filter_map(|i| i.ok().map(|e| e.key.clone()))
            .collect();
        assert_eq!(got, ["/r/pods/a/x", "/r/pods/a/y", "/r/pods/a/z"]);
    }

    #[tokio::test]
    async fn every_key_one_revision_changed_reaches_the_cache() {
        let storage = MemoryStorage::new();
        let caches = start(&storage).await;
        let (observed, _) = watch::channel(0);
        let feed = Feed {
            inner: storage.clone(),
            root: "/r/".into(),
            cachers: caches.clone(),
            uncached: Vec::new(),
            observed,
        };
        feed.apply(Arc::new(event(7, "/r/a/1")));
        feed.apply(Arc::new(event(7, "/r/a/2")));
        assert_eq!(
            caches[0].list_cached("/r/a/", |_| true, None).items.len(),
            2
        );
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

    fn by_labels() -> AttrsOf {
        Arc::new(|o: &Value| Attrs::new(object::labels(o), []))
    }

    async fn start(storage: &Arc<MemoryStorage>) -> Vec<Arc<Cacher>> {
        let tracker = TaskTracker::new();
        Cacher::start_all(
            storage.clone(),
            "/r/".into(),
            vec![
                ("/r/a/".into(), Some(by_labels())),
                ("/r/b/".into(), Some(by_labels())),
            ],
            usize::MAX,
            &tracker,
            CancellationToken::new(),
        )
        .await
        .expect("caches start")
    }

    #[tokio::test]
    async fn one_watch_keeps_every_cache_current_at_the_latest_revision() {
        let storage = MemoryStorage::new();
        storage
            .create("/r/a/1", json!({"metadata": {"name": "1"}}), None)
            .await
            .expect("create");
        let caches = start(&storage).await;
        let (a, b) = (&caches[0], &caches[1]);
        assert_eq!(a.list_cached("/r/a/", |_| true, None).items.len(), 1);
        // A write to b's resource only: a is current at its revision too, once the watch
        // has delivered it, so a consistent read of a may be served from memory.
        let written = storage
            .create("/r/b/x", json!({"metadata": {"name": "x"}}), None)
            .await
            .expect("create")
            .rev;
        let now = storage.current_revision().await.expect("revision");
        assert_eq!(now, written);
        assert!(a.fresh_at(now, Duration::from_secs(5)).await);
        assert_eq!(a.list_cached("/r/a/", |_| true, None).rev, written);
        assert_eq!(b.list_cached("/r/b/", |_| true, None).items.len(), 1);
        // A revision etcd has not reached is never claimed.
        assert!(!a.fresh_at(now + 1, Duration::from_millis(20)).await);
    }

    #[tokio::test]
    async fn a_limited_list_stops_at_the_first_selected_object_past_the_limit() {
        let storage = MemoryStorage::new();
        for i in 1..=6 {
            let odd = i % 2 == 1;
            storage
                .create(
                    &format!("/r/a/{i}"),
                    json!({"metadata": {"name": i.to_string(), "labels": {"odd": odd.to_string()}}}),
                    None,
                )
                .await
                .expect("create");
        }
        let caches = start(&storage).await;
        let names = |page: &CachedPage| -> Vec<String> {
            page.items
                .iter()
                .map(|s| {
                    s.object["metadata"]["name"]
                        .as_str()
                        .unwrap_or("")
                        .to_string()
                })
                .collect()
        };
        let all = caches[0].list_cached("/r/a/", |_| true, Some(2));
        assert_eq!(names(&all), ["1", "2"]);
        assert_eq!(all.next.as_deref(), Some("/r/a/3"));
        assert_eq!(all.left, Some(4), "3 to 6 are left");

        let looked = std::cell::Cell::new(0);
        let odd = caches[0].list_cached(
            "/r/a/",
            |o| {
                looked.set(looked.get() + 1);
                o.label("odd") == Some("true")
            },
            Some(2),
        );
        assert_eq!(names(&odd), ["1", "3"]);
        assert_eq!(odd.next.as_deref(), Some("/r/a/5"));
        assert_eq!(
            looked.get(),
            5,
            "nothing past the next selected object is looked at"
        );

        let whole = caches[0].list_cached("/r/a/", |_| true, Some(6));
        assert_eq!(whole.items.len(), 6);
        assert_eq!((whole.next, whole.left), (None, None));
    }

    #[tokio::test]
    async fn a_write_outside_the_root_makes_a_consistent_read_go_to_storage() {
        let storage = MemoryStorage::new();
        let caches = start(&storage).await;
        storage
            .create("/elsewhere/k", json!({"metadata": {"name": "k"}}), None)
            .await
            .expect("create");
        let now = storage.current_revision().await.expect("revision");
        assert!(!caches[0].fresh_at(now, Duration::from_millis(20)).await);
    }

    #[tokio::test]
    async fn an_uncached_resource_holds_nothing_and_is_read_and_watched_from_storage() {
        let storage = MemoryStorage::new();
        storage
            .create("/r/e/old", json!({"metadata": {"name": "old"}}), None)
            .await
            .expect("create");
        let caches = Cacher::start_all(
            storage.clone(),
            "/r/".into(),
            vec![("/r/a/".into(), Some(by_labels())), ("/r/e/".into(), None)],
            usize::MAX,
            &TaskTracker::new(),
            CancellationToken::new(),
        )
        .await
        .expect("caches start");
        let (cached, uncached) = (&caches[0], &caches[1]);
        assert!(cached.caching() && !uncached.caching());
        let (items, rev, mut stream) = uncached.list_and_watch("/r/e/").await.expect("list");
        assert_eq!(items.len(), 1, "the list comes from storage");
        let written = storage
            .create("/r/e/new", json!({"metadata": {"name": "new"}}), None)
            .await
            .expect("create")
            .rev;
        let event = stream.recv().await.expect("an event").expect("a change");
        assert_eq!((event.key.as_str(), event.rev), ("/r/e/new", written));
        assert!(event.rev > rev);
        // Nothing of it is kept, and a consistent read of it is never claimed from memory...
        assert!(uncached.cached("/r/e/new").is_none());
        assert!(!uncached.fresh_at(written, Duration::from_millis(20)).await);
        // ...while the caches still follow its revisions: a write of it is no reason for a
        // cached resource's consistent read to go to storage.
        assert!(cached.fresh_at(written, Duration::from_secs(5)).await);
        let mut resumed = uncached.watch("/r/e/", rev).await.expect("watch");
        let again = resumed.recv().await.expect("an event").expect("a change");
        assert_eq!(
            again.rev, written,
            "a watch from a revision is storage's own"
        );
    }

    #[tokio::test]
    async fn a_watch_from_a_shared_revision_misses_nothing_after_it() {
        let storage = MemoryStorage::new();
        let caches = start(&storage).await;
        storage
            .create("/r/b/x", json!({"metadata": {"name": "x"}}), None)
            .await
            .expect("create");
        let now = storage.current_revision().await.expect("revision");
        assert!(caches[0].fresh_at(now, Duration::from_secs(5)).await);
        let (items, rev, mut stream) = caches[0]
            .list_and_watch("/r/a/")
            .await
            .expect("a list and a watch");
        assert!(items.is_empty());
        assert_eq!(rev, now);
        let created = storage
            .create("/r/a/1", json!({"metadata": {"name": "1"}}), None)
            .await
            .expect("create");
        let event = tokio::time::timeout(Duration::from_secs(5), stream.recv())
            .await
            .expect("in time")
            .expect("open")
            .expect("an event");
        assert_eq!(event.rev, created.rev);
        assert_eq!(event.key, "/r/a/1");
    }
}
