//! Watches under churn: twenty watchers that reconnect at random (some after a pause long
//! enough for their resource version to be compacted away) follow five thousand writes while
//! etcd is compacted every second. Every event each one sees is checked against etcd's own
//! history, read by a raw etcd watch held from before the first write: no gap, no reorder, no
//! duplicate, each event's type and resource version as etcd recorded it; and every relist
//! after a 410 equals the state etcd history gives at the list's resource version.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use rand::Rng as _;
use serde_json::json;
use tokio::sync::watch;

use crate::harness::TestCluster;

const NAMESPACE: &str = "churn";
const NAMES: usize = 50;
const WRITERS: usize = 4;
const WRITES: usize = 5_000;
const WATCHERS: usize = 20;
const PREFIX: &str = "/registry/configmaps/churn/";

/// One change as a watcher reports it: resource version, type, name.
type Change = (u64, &'static str, String);

/// What one watcher saw between two (re)lists.
#[derive(Debug, Default)]
struct Segment {
    /// The resource version of the list it started from, and what that list held
    /// (name → resource version).
    listed_at: u64,
    listed: BTreeMap<String, u64>,
    changes: Vec<Change>,
    /// The last resource version it knew of (an event's or a bookmark's).
    reached: u64,
}

fn rv_of(meta: &kube::api::ObjectMeta) -> u64 {
    meta.resource_version
        .as_deref()
        .and_then(|rv| rv.parse().ok())
        .expect("a numeric resourceVersion")
}

async fn relist(api: &Api<ConfigMap>) -> Segment {
    let list = api.list(&ListParams::default()).await.expect("list");
    let at: u64 = list
        .metadata
        .resource_version
        .as_deref()
        .and_then(|rv| rv.parse().ok())
        .expect("list resourceVersion");
    Segment {
        listed_at: at,
        listed: list
            .items
            .iter()
            .map(|cm| {
                (
                    cm.metadata.name.clone().unwrap_or_default(),
                    rv_of(&cm.metadata),
                )
            })
            .collect(),
        changes: Vec::new(),
        reached: at,
    }
}

/// Follows the namespace until it has seen `last` (once the writers are done), reconnecting
/// after a random number of events, sometimes after a pause of a few compactions.
async fn follow(
    api: Api<ConfigMap>,
    mut done: watch::Receiver<Option<u64>>,
) -> (Vec<Segment>, usize) {
    let mut segments = vec![relist(&api).await];
    let mut reconnects = 0;
    loop {
        let segment = segments.last_mut().expect("one segment at least");
        if done.borrow().is_some_and(|last| segment.reached >= last) {
            return (segments, reconnects);
        }
        let (take, pause) = {
            let mut rng = rand::rng();
            let pause = if rng.random_ratio(1, 6) {
                Duration::from_millis(rng.random_range(0..3_000))
            } else {
                Duration::ZERO
            };
            (rng.random_range(1..300usize), pause)
        };
        if !pause.is_zero() {
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                _ = done.changed() => {}
            }
        }
        reconnects += 1;
        let params = WatchParams::default().timeout(5);
        let stream = api
            .watch(&params, &segment.reached.to_string())
            .await
            .expect("watch");
        let mut stream = std::pin::pin!(stream.take(take));
        let mut expired = false;
        while let Some(event) = stream.next().await {
            let (kind, cm) = match event.expect("watch event") {
                WatchEvent::Added(cm) => ("ADDED", cm),
                WatchEvent::Modified(cm) => ("MODIFIED", cm),
                WatchEvent::Deleted(cm) => ("DELETED", cm),
                WatchEvent::Bookmark(b) => {
                    let rv: u64 = b.metadata.resource_version.parse().expect("bookmark rv");
                    segment.reached = segment.reached.max(rv);
                    continue;
                }
                WatchEvent::Error(e) => {
                    assert_eq!(e.code, 410, "{e:?}");
                    expired = true;
                    break;
                }
            };
            let rv = rv_of(&cm.metadata);
            segment
                .changes
                .push((rv, kind, cm.metadata.name.unwrap_or_default()));
            segment.reached = rv;
        }
        if expired {
            segments.push(relist(&api).await);
        }
    }
}

/// etcd's history of the namespace's ConfigMaps, as (revision, type, name), in order.
async fn record_history(
    etcd_url: String,
    from: i64,
    mut done: watch::Receiver<Option<u64>>,
) -> Vec<Change> {
    let mut etcd = etcd_client::Client::connect([etcd_url], None)
        .await
        .expect("etcd");
    let options = etcd_client::WatchOptions::new()
        .with_prefix()
        .with_start_revision(from);
    let mut stream = etcd.watch(PREFIX, Some(options)).await.expect("etcd watch");
    let mut history = Vec::new();
    loop {
        if let Some(last) = *done.borrow() {
            if history
                .last()
                .is_some_and(|(rv, _, _): &Change| *rv >= last)
            {
                return history;
            }
        }
        let message = tokio::select! {
            message = stream.message() => message.expect("etcd watch message").expect("etcd watch open"),
            _ = done.changed() => continue,
        };
        for event in message.events() {
            let kv = event.kv().expect("an event's key");
            let name = kv
                .key_str()
                .expect("UTF-8 key")
                .trim_start_matches(PREFIX)
                .to_string();
            let kind = match event.event_type() {
                etcd_client::EventType::Delete => "DELETED",
                etcd_client::EventType::Put if kv.create_revision() == kv.mod_revision() => "ADDED",
                etcd_client::EventType::Put => "MODIFIED",
            };
            history.push((kv.mod_revision() as u64, kind, name));
        }
    }
}

/// What the namespace held at `rv` according to `history` (it was empty before).
fn state_at(history: &[Change], rv: u64) -> BTreeMap<String, u64> {
    let mut state = BTreeMap::new();
    for (at, kind, name) in history.iter().take_while(|(at, _, _)| *at <= rv) {
        if *kind == "DELETED" {
            state.remove(name);
        } else {
            state.insert(name.clone(), *at);
        }
    }
    state
}

/// Creates, updates and deletes the ConfigMaps `i % WRITERS == w` until `writes` are done.
async fn write(api: Api<ConfigMap>, w: usize, writes: usize) -> u64 {
    let mut exists: HashMap<usize, bool> = HashMap::new();
    let mut last = 0;
    for n in 0..writes {
        let i = {
            let slot = rand::rng().random_range(0..NAMES / WRITERS);
            slot * WRITERS + w
        };
        let name = format!("cm-{i}");
        let present = exists.get(&i).copied().unwrap_or(false);
        let delete = present && rand::rng().random_ratio(1, 4);
        if delete {
            api.delete(&name, &DeleteParams::default())
                .await
                .expect("delete");
            exists.insert(i, false);
            continue;
        }
        let cm = if present {
            let patch = json!({"data": {"n": n.to_string()}});
            api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .expect("update")
        } else {
            let cm: ConfigMap = serde_json::from_value(json!({
                "metadata": {"name": name}, "data": {"n": n.to_string()},
            }))
            .expect("ConfigMap");
            exists.insert(i, true);
            api.create(&PostParams::default(), &cm)
                .await
                .expect("create")
        };
        last = last.max(rv_of(&cm.metadata));
    }
    last
}

#[tokio::test]
async fn watchers_reconnecting_through_compactions_miss_nothing_and_see_nothing_twice() {
    let cluster = TestCluster::builder().compaction("1s").start().await;
    // The history starts before the namespace exists: the controller manager's
    // `kube-root-ca.crt` in it may be written at any moment after, and is part of every list.
    let mut etcd = etcd_client::Client::connect([cluster.etcd_url.clone()], None)
        .await
        .expect("etcd");
    let start = etcd
        .get("/", None)
        .await
        .expect("etcd revision")
        .header()
        .expect("header")
        .revision();
    let (done_tx, done) = watch::channel(None);
    let history = tokio::spawn(record_history(
        cluster.etcd_url.clone(),
        start + 1,
        done.clone(),
    ));
    cluster.kubectl(&["create", "namespace", NAMESPACE]);
    let client = cluster.client().await;
    let api: Api<ConfigMap> = Api::namespaced(client, NAMESPACE);

    let watchers: Vec<_> = (0..WATCHERS)
        .map(|_| tokio::spawn(follow(api.clone(), done.clone())))
        .collect();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| tokio::spawn(write(api.clone(), w, WRITES / WRITERS)))
        .collect();
    let mut last = 0;
    for writer in writers {
        last = last.max(writer.await.expect("writer"));
    }
    // The last change may be a delete, whose revision no answer tells: one more write marks
    // the end.
    let end: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "end"}})).expect("ConfigMap");
    let end = api
        .create(&PostParams::default(), &end)
        .await
        .expect("end marker");
    last = last.max(rv_of(&end.metadata));
    let _ = done_tx.send(Some(last));

    let history = Arc::new(history.await.expect("etcd history"));
    assert!(history.len() > WRITES, "{} writes in etcd", history.len());
    let mut relists = 0;
    let mut reconnects = 0;
    for (w, watcher) in watchers.into_iter().enumerate() {
        let (segments, reconnected) = watcher.await.expect("watcher");
        reconnects += reconnected;
        relists += segments.len() - 1;
        for segment in segments {
            assert_eq!(
                segment.listed,
                state_at(&history, segment.listed_at),
                "watcher {w}: the list at {} is not etcd's state at that revision",
                segment.listed_at
            );
            let expected: Vec<&Change> = history
                .iter()
                .filter(|(rv, _, _)| *rv > segment.listed_at && *rv <= segment.reached)
                .collect();
            let got: Vec<&Change> = segment.changes.iter().collect();
            if got != expected {
                let missing: Vec<_> = expected
                    .iter()
                    .filter(|c| !got.contains(c))
                    .take(5)
                    .collect();
                let extra: Vec<_> = got
                    .iter()
                    .filter(|c| !expected.contains(c))
                    .take(5)
                    .collect();
                let ordered = got.windows(2).all(|p| p[0].0 < p[1].0);
                panic!(
                    "watcher {w} from {} to {}: {} events, etcd has {}; missing {missing:?}, \
                     not in etcd {extra:?}, strictly ordered: {ordered}",
                    segment.listed_at,
                    segment.reached,
                    got.len(),
                    expected.len()
                );
            }
        }
    }
    eprintln!(
        "{} changes in etcd; {WATCHERS} watchers reconnected {reconnects} times and relisted \
         {relists} times after 410",
        history.len()
    );
    // The run exercised what it claims to: reconnects, and relists after 410.
    assert!(reconnects > WATCHERS * 5, "{reconnects} reconnects");
    assert!(relists > 0, "no watcher ever had to relist");
}
