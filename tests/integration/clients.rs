//! The API through two more real clients: the `kube` crate and Python's `kubernetes` package.

use std::time::Duration;

use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{
    DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::Api;
use serde_json::json;

use crate::harness::TestCluster;

fn pod(name: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": "demo"}},
        "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}
    }))
    .expect("pod")
}

#[tokio::test]
async fn kube_client_lists_watches_with_resume_creates_patches_and_deletes() {
    let cluster = TestCluster::builder().start().await;
    let pods: Api<Pod> = Api::namespaced(cluster.client().await, "default");

    let created = pods
        .create(&PostParams::default(), &pod("one"))
        .await
        .expect("create");
    assert_eq!(
        created
            .spec
            .as_ref()
            .and_then(|s| s.restart_policy.as_deref()),
        Some("Always")
    );
    let list = pods
        .list(&ListParams::default().labels("app=demo"))
        .await
        .expect("list");
    assert_eq!(list.items.len(), 1);
    let rv = list.metadata.resource_version.clone().expect("list rv");

    // Changes made while nobody watches are seen by a watch resumed from the list's version.
    let patch = json!({"metadata": {"labels": {"tier": "backend"}}});
    pods.patch("one", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("patch");
    pods.create(&PostParams::default(), &pod("two"))
        .await
        .expect("create two");
    let stream = pods
        .watch(&WatchParams::default().timeout(10), &rv)
        .await
        .expect("watch");
    let events: Vec<WatchEvent<Pod>> =
        tokio::time::timeout(Duration::from_secs(10), stream.take(2).try_collect())
            .await
            .expect("events in time")
            .expect("watch events");
    let seen: Vec<String> = events
        .iter()
        .map(|e| match e {
            WatchEvent::Added(p) => format!("ADDED {}", p.metadata.name.as_deref().unwrap_or("")),
            WatchEvent::Modified(p) => {
                format!("MODIFIED {}", p.metadata.name.as_deref().unwrap_or(""))
            }
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(seen, ["MODIFIED one", "ADDED two"]);

    let strategic = json!({"spec": {"containers": [{"name": "c", "image": "busybox:1.37"}]}});
    let patched = pods
        .patch(
            "one",
            &PatchParams::default(),
            &Patch::Strategic(&strategic),
        )
        .await
        .expect("strategic patch");
    assert_eq!(
        patched.spec.expect("spec").containers[0].image.as_deref(),
        Some("busybox:1.37")
    );

    pods.delete("one", &DeleteParams::default())
        .await
        .expect("delete");
    let err = pods.get("one").await.expect_err("gone");
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 404),
        "{err}"
    );

    // The runtime watcher (list, then watch, with resume) sees the remaining Pod.
    let mut watcher = Box::pin(kube::runtime::watcher(
        pods.clone(),
        kube::runtime::watcher::Config::default(),
    ));
    let first = tokio::time::timeout(Duration::from_secs(10), watcher.next())
        .await
        .expect("in time");
    assert!(first.is_some());
}

#[tokio::test]
async fn python_kubernetes_client_drives_the_api() {
    let cluster = TestCluster::builder().start().await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/client_test.py");
    let out = tokio::process::Command::new("python3")
        .arg(script)
        .env("KUBECONFIG", &cluster.kubeconfig)
        .output()
        .await
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "python client test failed (scripts/test installs the kubernetes package):\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("python client: ok"));
}
