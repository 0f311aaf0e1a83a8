//! The etcd storage layer on the cluster's own etcd, below the API: what the watch cache's one
//! watch receives for a prefix it follows only for its revisions.

use std::time::Duration;

use rkube::storage::{EtcdStorage, EventType, Storage, StorageEvent, WatchStream};
use serde_json::{json, Value};

use crate::harness::TestCluster;

async fn next(changes: &mut WatchStream) -> std::sync::Arc<StorageEvent> {
    tokio::time::timeout(Duration::from_secs(10), changes.recv())
        .await
        .expect("a change within 10 s")
        .expect("the watch is open")
        .expect("the change is not an error")
}

fn object(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "ns"}, "data": {"k": "v"}})
}

#[tokio::test]
async fn a_skipped_prefix_arrives_with_key_and_revision_and_no_object() {
    let cluster = TestCluster::builder().start().await;
    let storage = EtcdStorage::connect(std::slice::from_ref(&cluster.etcd_url))
        .await
        .expect("etcd answers");
    let root = "/storage-test/";
    let after = storage.current_revision().await.expect("a revision");
    let skip = vec![format!("{root}events/")];
    let mut changes = storage
        .watch_changes(root, after, &skip)
        .await
        .expect("the watch starts");

    let skipped = storage
        .create(&format!("{root}events/ns/e"), object("e"), None)
        .await
        .expect("created");
    let decoded = storage
        .create(&format!("{root}configmaps/ns/c"), object("c"), None)
        .await
        .expect("created");

    let first = next(&mut changes).await;
    assert_eq!(first.key, format!("{root}events/ns/e"));
    assert_eq!(first.rev, skipped.rev);
    assert_eq!(
        *first.object,
        Value::Null,
        "a skipped change is not decoded"
    );
    let second = next(&mut changes).await;
    assert_eq!(second.key, format!("{root}configmaps/ns/c"));
    assert_eq!(second.rev, decoded.rev);
    assert_eq!(second.kind, EventType::Added);
    assert_eq!(
        *second.object, *decoded.object,
        "the rest is decoded as stored"
    );

    // The skipped prefix's deletions are followed the same way.
    storage
        .delete(&format!("{root}events/ns/e"), &mut |_| Ok(()))
        .await
        .expect("deleted");
    let third = next(&mut changes).await;
    assert_eq!(third.key, format!("{root}events/ns/e"));
    assert!(third.rev > second.rev);
    assert_eq!(*third.object, Value::Null);
}
