//! [`Storage`] on etcd: create/update as compare-and-swap transactions on revisions.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use etcd_client::{
    Client, Compare, CompareOp, EventType as EtcdEventType, GetOptions, KeyValue, KvClient,
    PutOptions, Txn, TxnOp, WatchClient, WatchOptions,
};
use serde_json::Value;
use tokio::sync::mpsc;

use super::encryption::Encryption;
use super::lease::{LeaseChoice, LeaseManager};
use super::metrics::EtcdMetrics;
use super::{
    CheckDelete, EventType, Storage, StorageError, StorageEvent, Stored, TryUpdate, WatchItem,
    WatchStream,
};
use crate::meta::object;

/// How many events a direct etcd watch may buffer for a slow reader before it is cut off.
const WATCH_BUFFER: usize = 1024;

/// Keys read from etcd in one range request: a list of any size is read in pages of this many
/// keys, all at one revision (kube-apiserver pages its own reads the same way).
pub const LIST_PAGE: i64 = 1000;

/// The largest gRPC message accepted from etcd: kube-apiserver sets `MaxCallRecvMsgSize` to
/// `math.MaxInt32`, so that a page of large objects or a burst of watch events is never cut off
/// by the client's 4 MiB default.
const MAX_RECEIVE_BYTES: usize = i32::MAX as usize;

#[derive(Clone)]
pub struct EtcdStorage {
    client: Client,
    kv: KvClient,
    watcher: WatchClient,
    leases: Arc<LeaseManager>,
    /// Held while a lease is chosen and granted, so that concurrent writes wait for the
    /// new lease rather than each granting its own (upstream holds its lease lock likewise).
    granting: Arc<tokio::sync::Mutex<()>>,
    metrics: EtcdMetrics,
    /// How values are encrypted at rest, by key (`--encryption-provider-config`).
    encryption: Arc<Encryption>,
}

/// One page of a range read.
#[derive(Debug)]
pub struct Page {
    pub items: Vec<Stored>,
    /// The revision the page was read at.
    pub rev: i64,
    /// Keys in the range from the page's first key on, the page included.
    pub count: i64,
    /// Whether keys follow the page.
    pub more: bool,
}

/// The end of the key range of `prefix`: the prefix with its last byte incremented.
fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // Every byte was 0xff: the range runs to the end of the keyspace.
    vec![0]
}

/// The key right after `key`, where the page following it starts.
pub fn key_after(key: &str) -> String {
    format!("{key}\0")
}

impl EtcdStorage {
    pub async fn connect(endpoints: &[String]) -> Result<Self, StorageError> {
        let options = etcd_client::ConnectOptions::new()
            .with_connect_timeout(std::time::Duration::from_secs(2))
            .with_timeout(std::time::Duration::from_secs(30));
        let client = Client::connect(endpoints, Some(options))
            .await
            .map_err(unavailable)?;
        let kv = client
            .kv_client()
            .max_decoding_message_size(MAX_RECEIVE_BYTES);
        let watcher = client
            .watch_client()
            .max_decoding_message_size(MAX_RECEIVE_BYTES);
        Ok(EtcdStorage {
            client,
            kv,
            watcher,
            leases: Arc::default(),
            granting: Arc::default(),
            metrics: EtcdMetrics::default(),
            encryption: Arc::default(),
        })
    }

    /// The same storage, encrypting values at rest as `encryption` says.
    pub fn encrypted(mut self, encryption: Arc<Encryption>) -> Self {
        self.encryption = encryption;
        self
    }

    /// The same storage, measuring its requests against keys under `prefix`.
    pub fn measured(mut self, prefix: &str) -> Self {
        self.metrics = EtcdMetrics::new(prefix);
        self
    }

    /// The latencies of this storage's requests.
    pub fn metrics(&self) -> &EtcdMetrics {
        &self.metrics
    }

    /// Reads at most `limit` keys of `prefix` from `from` on (`from` empty: the start), at
    /// revision `rev` (0: the current one). A compacted `rev` is `Expired`.
    pub async fn list_page(
        &self,
        prefix: &str,
        from: &str,
        rev: i64,
        limit: i64,
    ) -> Result<Page, StorageError> {
        let mut kv = self.kv.clone();
        let start = if from.is_empty() { prefix } else { from };
        let mut options = GetOptions::new()
            .with_range(prefix_end(prefix))
            .with_limit(limit.max(1));
        if rev > 0 {
            options = options.with_revision(rev);
        }
        let started = Instant::now();
        let resp = kv.get(start, Some(options)).await;
        self.metrics.observe("list", prefix, started);
        let resp = resp.map_err(|e| {
            if rev > 0 && e.to_string().contains("compacted") {
                StorageError::Expired {
                    requested: rev,
                    oldest: 0,
                }
            } else {
                unavailable(e)
            }
        })?;
        let items = resp
            .kvs()
            .iter()
            .map(|kv| decode(kv, &self.encryption))
            .collect::<Result<_, _>>()?;
        Ok(Page {
            items,
            rev: if rev > 0 {
                rev
            } else {
                header_revision(resp.header())
            },
            count: resp.count(),
            more: resp.more(),
        })
    }

    /// Reads every key of `prefix` in pages of [`LIST_PAGE`], all at one revision (`rev`, or
    /// the current one when 0).
    async fn list_paged(&self, prefix: &str, rev: i64) -> Result<(Vec<Stored>, i64), StorageError> {
        let mut items = Vec::new();
        let mut from = String::new();
        let mut rev = rev;
        loop {
            let page = self.list_page(prefix, &from, rev, LIST_PAGE).await?;
            rev = page.rev;
            if let Some(last) = page.items.last() {
                from = key_after(&last.key);
            }
            items.extend(page.items);
            if !page.more {
                return Ok((items, rev));
            }
        }
    }

    /// Answers whether etcd serves reads right now (for `/readyz` and `/livez`).
    pub async fn healthy(&self) -> bool {
        let mut client = self.client.clone();
        let probe = client.get("health", Some(GetOptions::new().with_count_only()));
        matches!(
            tokio::time::timeout(std::time::Duration::from_secs(2), probe).await,
            Ok(Ok(_))
        )
    }

    /// The current etcd revision.
    pub async fn current_revision(&self) -> Result<i64, StorageError> {
        let mut client = self.client.clone();
        let resp = client
            .get(
                "compact_rev_probe",
                Some(GetOptions::new().with_count_only()),
            )
            .await
            .map_err(unavailable)?;
        Ok(resp.header().map(|h| h.revision()).unwrap_or(0))
    }

    /// Drops history at and before `rev`, as kube-apiserver's periodic compaction does.
    pub async fn compact(&self, rev: i64) -> Result<(), StorageError> {
        let mut client = self.client.clone();
        match client.compact(rev, None).await {
            Ok(_) => Ok(()),
            // Compacting to an already compacted revision is not a failure.
            Err(e) if e.to_string().contains("compacted") => Ok(()),
            Err(e) => Err(unavailable(e)),
        }
    }

    /// Reads every object under `prefix` as it was at revision `rev` (for continued lists).
    pub async fn list_at(
        &self,
        prefix: &str,
        rev: i64,
    ) -> Result<(Vec<Stored>, i64), StorageError> {
        self.list_paged(prefix, rev.max(1)).await
    }

    /// The lease an object that expires after `ttl` seconds is written with.
    async fn lease_for(&self, ttl: i64) -> Result<i64, StorageError> {
        let _granting = self.granting.lock().await;
        let now = std::time::Instant::now();
        match self.leases.choose(ttl, now) {
            LeaseChoice::Reuse(id) => Ok(id),
            LeaseChoice::Grant(seconds) => {
                let mut client = self.client.clone();
                let lease = client
                    .lease_grant(seconds, None)
                    .await
                    .map_err(unavailable)?;
                self.leases.granted(lease.id(), seconds, now);
                Ok(lease.id())
            }
        }
    }

    async fn get_kv(&self, key: &str) -> Result<Option<Stored>, StorageError> {
        let mut client = self.kv.clone();
        let started = Instant::now();
        let resp = client.get(key, None).await;
        self.metrics.observe("get", key, started);
        resp.map_err(unavailable)?
            .kvs()
            .first()
            .map(|kv| decode(kv, &self.encryption))
            .transpose()
    }
}

fn unavailable(e: etcd_client::Error) -> StorageError {
    let text = e.to_string();
    if text.contains("request is too large") || text.contains("larger than max") {
        StorageError::TooLarge
    } else {
        StorageError::Unavailable(text)
    }
}

/// Turns an etcd key-value into an object with its resourceVersion set.
fn decode(kv: &KeyValue, encryption: &Encryption) -> Result<Stored, StorageError> {
    decode_at(kv, kv.mod_revision(), encryption)
}

fn decode_at(kv: &KeyValue, rev: i64, encryption: &Encryption) -> Result<Stored, StorageError> {
    let key = String::from_utf8_lossy(kv.key()).into_owned();
    let plain = encryption
        .open(&key, kv.value())
        .map_err(|reason| StorageError::Corrupt {
            key: key.clone(),
            reason,
        })?;
    let mut value = super::json::from_slice(&plain).map_err(|e| StorageError::Corrupt {
        key: key.clone(),
        reason: e.to_string(),
    })?;
    object::set_resource_version(&mut value, rev);
    Ok(Stored::new(key, Arc::new(value), rev))
}

/// The bytes stored for an object: its JSON without `metadata.resourceVersion`, written
/// straight from the object (no copy of it is made to leave the field out).
fn encode(object: &Value) -> Vec<u8> {
    serde_json::to_vec(&Stripped(object)).expect("a JSON value always serializes")
}

/// An object serialized without `metadata.resourceVersion`.
struct Stripped<'a>(&'a Value);

/// A `metadata` map serialized without `resourceVersion`.
struct Metadata<'a>(&'a serde_json::Map<String, Value>);

impl serde::Serialize for Stripped<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let Value::Object(map) = self.0 else {
            return self.0.serialize(serializer);
        };
        let mut out = serializer.serialize_map(Some(map.len()))?;
        for (key, value) in map {
            match value {
                Value::Object(meta) if key == "metadata" => {
                    out.serialize_entry(key, &Metadata(meta))?
                }
                _ => out.serialize_entry(key, value)?,
            }
        }
        out.end()
    }
}

impl serde::Serialize for Metadata<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut out = serializer.serialize_map(None)?;
        for (key, value) in self.0 {
            if key != "resourceVersion" {
                out.serialize_entry(key, value)?;
            }
        }
        out.end()
    }
}

fn header_revision(header: Option<&etcd_client::ResponseHeader>) -> i64 {
    header.map(|h| h.revision()).unwrap_or(0)
}

#[async_trait]
impl Storage for EtcdStorage {
    async fn list_page(
        &self,
        prefix: &str,
        from: &str,
        rev: i64,
        limit: i64,
    ) -> Result<Page, StorageError> {
        EtcdStorage::list_page(self, prefix, from, rev, limit).await
    }

    async fn create(
        &self,
        key: &str,
        object: Value,
        ttl: Option<i64>,
    ) -> Result<Stored, StorageError> {
        let mut client = self.kv.clone();
        let bytes = self.encryption.seal(key, encode(&object));
        let options = match ttl {
            Some(secs) => Some(PutOptions::new().with_lease(self.lease_for(secs).await?)),
            None => None,
        };
        let txn = Txn::new()
            .when([Compare::create_revision(key, CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key, bytes, options)]);
        let started = Instant::now();
        let resp = client.txn(txn).await;
        self.metrics.observe("create", key, started);
        let resp = resp.map_err(unavailable)?;
        if !resp.succeeded() {
            return Err(StorageError::AlreadyExists(key.to_string()));
        }
        let rev = header_revision(resp.header());
        let mut value = object;
        object::set_resource_version(&mut value, rev);
        Ok(Stored::new(key.to_string(), Arc::new(value), rev))
    }

    /// One count-only read of a single key: etcd answers it from its index, and every
    /// answer's header carries the current revision.
    async fn current_revision(&self) -> Result<i64, StorageError> {
        let mut client = self.kv.clone();
        let started = Instant::now();
        let resp = client
            .get("/", Some(GetOptions::new().with_count_only()))
            .await;
        self.metrics.observe("get", "/", started);
        Ok(header_revision(resp.map_err(unavailable)?.header()))
    }

    async fn get(&self, key: &str) -> Result<Stored, StorageError> {
        self.get_kv(key)
            .await?
            .ok_or_else(|| StorageError::NotFound(key.to_string()))
    }

    async fn list(&self, prefix: &str) -> Result<(Vec<Stored>, i64), StorageError> {
        self.list_paged(prefix, 0).await
    }

    async fn guaranteed_update(
        &self,
        key: &str,
        try_update: &mut TryUpdate<'_>,
    ) -> Result<Stored, StorageError> {
        self.guaranteed_update_from(key, None, try_update).await
    }

    /// Starts from `guess` (the watch cache's copy) instead of reading etcd, as upstream's
    /// GuaranteedUpdate does with its cached existing object. The guess is only ever a
    /// starting point: the write is conditional on its revision, and if the guess turns out
    /// stale — the write is refused, the update function fails on it, or it would change
    /// nothing — the current state is read from etcd and the update applied again.
    async fn guaranteed_update_from(
        &self,
        key: &str,
        guess: Option<Stored>,
        try_update: &mut TryUpdate<'_>,
    ) -> Result<Stored, StorageError> {
        let mut client = self.kv.clone();
        let mut guess = guess;
        loop {
            let guessed = guess.is_some();
            let current = match guess.take() {
                Some(stored) => stored,
                None => self.get(key).await?,
            };
            let updated = match try_update(&current) {
                Ok(updated) => updated,
                Err(_) if guessed => continue,
                Err(e) => return Err(e.into()),
            };
            let bytes = encode(&updated);
            if bytes == encode(&current.object) {
                if guessed {
                    continue;
                }
                return Ok(current);
            }
            let bytes = self.encryption.seal(key, bytes);
            let txn = Txn::new()
                .when([Compare::mod_revision(key, CompareOp::Equal, current.rev)])
                // An update keeps the key's lease (an Event keeps its expiry).
                .and_then([TxnOp::put(
                    key,
                    bytes,
                    Some(PutOptions::new().with_ignore_lease()),
                )]);
            let started = Instant::now();
            let resp = client.txn(txn).await;
            self.metrics.observe("update", key, started);
            let resp = resp.map_err(unavailable)?;
            if resp.succeeded() {
                let rev = header_revision(resp.header());
                let mut value = updated;
                object::set_resource_version(&mut value, rev);
                return Ok(Stored::new(key.to_string(), Arc::new(value), rev));
            }
            // Someone else wrote in between: read again and re-apply, as GuaranteedUpdate does.
        }
    }

    async fn delete(&self, key: &str, check: &mut CheckDelete<'_>) -> Result<Stored, StorageError> {
        self.delete_from(key, None, check).await
    }

    /// Checks `guess` (the watch cache's copy) first, as [`Storage::guaranteed_update_from`]
    /// does; a stale guess costs one refused transaction and a read.
    async fn delete_from(
        &self,
        key: &str,
        guess: Option<Stored>,
        check: &mut CheckDelete<'_>,
    ) -> Result<Stored, StorageError> {
        let mut client = self.kv.clone();
        let mut guess = guess;
        loop {
            let guessed = guess.is_some();
            let current = match guess.take() {
                Some(stored) => stored,
                None => self.get(key).await?,
            };
            match check(&current) {
                Ok(()) => {}
                Err(_) if guessed => continue,
                Err(e) => return Err(e.into()),
            }
            let txn = Txn::new()
                .when([Compare::mod_revision(key, CompareOp::Equal, current.rev)])
                .and_then([TxnOp::delete(key, None)]);
            let started = Instant::now();
            let resp = client.txn(txn).await;
            self.metrics.observe("delete", key, started);
            let resp = resp.map_err(unavailable)?;
            if resp.succeeded() {
                let rev = header_revision(resp.header());
                let mut last = (*current.object).clone();
                object::set_resource_version(&mut last, rev);
                return Ok(Stored::new(key.to_string(), Arc::new(last), rev));
            }
        }
    }

    async fn watch(&self, prefix: &str, after: i64) -> Result<WatchStream, StorageError> {
        self.watch_decoding(prefix, after, true, Arc::from([]))
            .await
    }

    async fn watch_changes(
        &self,
        prefix: &str,
        after: i64,
        skip: &[String],
    ) -> Result<WatchStream, StorageError> {
        self.watch_decoding(prefix, after, false, skip.into()).await
    }
}

impl EtcdStorage {
    /// An etcd watch of `prefix`; a modification's previous state is decoded only when
    /// `with_prev` (a delete's always is: it is the deleted object's last state), and a change
    /// under one of `skip` not at all: it comes with its key, its revision and a `Null` object.
    async fn watch_decoding(
        &self,
        prefix: &str,
        after: i64,
        with_prev: bool,
        skip: Arc<[String]>,
    ) -> Result<WatchStream, StorageError> {
        let mut client = self.watcher.clone();
        let options = WatchOptions::new()
            .with_prefix()
            .with_prev_key()
            .with_start_revision(after + 1);
        let mut stream = client
            .watch(prefix, Some(options))
            .await
            .map_err(unavailable)?;
        let (tx, rx) = mpsc::channel::<WatchItem>(WATCH_BUFFER);
        let requested = after;
        let encryption = self.encryption.clone();
        tokio::spawn(async move {
            loop {
                let msg = tokio::select! {
                    msg = stream.message() => msg,
                    () = tx.closed() => return,
                };
                let resp = match msg {
                    Ok(Some(resp)) => resp,
                    Ok(None) => return,
                    Err(e) => {
                        let _ = tx.send(Err(unavailable(e))).await;
                        return;
                    }
                };
                if resp.compact_revision() > 0 {
                    let _ = tx
                        .send(Err(StorageError::Expired {
                            requested,
                            oldest: resp.compact_revision(),
                        }))
                        .await;
                    return;
                }
                if resp.canceled() {
                    let reason = resp.cancel_reason().to_string();
                    let _ = tx.send(Err(StorageError::Unavailable(reason))).await;
                    return;
                }
                for event in resp.events() {
                    let skipped = event.kv().filter(|kv| {
                        skip.iter()
                            .any(|prefix| kv.key().starts_with(prefix.as_bytes()))
                    });
                    let item = match skipped {
                        Some(kv) => Ok(StorageEvent::new(
                            EventType::Modified,
                            String::from_utf8_lossy(kv.key()).into_owned(),
                            Arc::new(Value::Null),
                            None,
                            kv.mod_revision(),
                        )),
                        None => convert_event(event, &encryption, with_prev),
                    };
                    if tx.send(item.map(Arc::new)).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(rx)
    }
}

/// Converts an etcd watch event into a storage event; a modification's previous state is
/// decoded only if `with_prev`.
pub(super) fn convert_event(
    event: &etcd_client::Event,
    encryption: &Encryption,
    with_prev: bool,
) -> Result<StorageEvent, StorageError> {
    let kv = event.kv().ok_or_else(|| StorageError::Corrupt {
        key: String::new(),
        reason: "watch event without a key".into(),
    })?;
    let rev = kv.mod_revision();
    match event.event_type() {
        EtcdEventType::Put => {
            let prev = match event.prev_kv() {
                Some(kv) if with_prev => Some(decode(kv, encryption)?),
                _ => None,
            };
            let current = decode(kv, encryption)?;
            let kind = if kv.create_revision() == kv.mod_revision() {
                EventType::Added
            } else {
                EventType::Modified
            };
            Ok(StorageEvent::new(
                kind,
                current.key,
                current.object.into_arc(),
                prev.map(|p| p.object.into_arc()),
                rev,
            ))
        }
        EtcdEventType::Delete => {
            // A delete carries no value: the object is its last state, at the delete's revision.
            let last = event.prev_kv().ok_or_else(|| StorageError::Corrupt {
                key: String::from_utf8_lossy(kv.key()).into_owned(),
                reason: "delete event without its previous value".into(),
            })?;
            let gone = decode_at(last, rev, encryption)?;
            let prev = Some(gone.object.arc().clone());
            Ok(StorageEvent::new(
                EventType::Deleted,
                gone.key,
                gone.object.into_arc(),
                prev,
                rev,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_range_ends_right_after_its_last_key() {
        assert_eq!(prefix_end("/r/pods/"), b"/r/pods0".to_vec());
        assert_eq!(prefix_end("a\u{7f}"), b"a\x80".to_vec());
        assert!(key_after("/r/pods/a").as_str() > "/r/pods/a");
        assert!(key_after("/r/pods/a").as_str() < "/r/pods/a0");
    }
}
