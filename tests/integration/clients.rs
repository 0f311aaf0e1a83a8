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

/// Sends a GET with `accept` and answers the status code and the body as JSON.
async fn get_as(client: &kube::Client, path: &str, accept: &str) -> (u16, serde_json::Value) {
    let request = http::Request::get(path)
        .header(http::header::ACCEPT, accept)
        .body(Vec::new())
        .expect("request");
    let response = client.send(request.map(kube::client::Body::from)).await;
    let response = response.expect("an answer");
    let code = response.status().as_u16();
    let bytes = http_body_util::BodyExt::collect(response.into_body())
        .await
        .expect("body")
        .to_bytes();
    (code, serde_json::from_slice(&bytes).expect("JSON"))
}

/// Metadata-only reads (kube-rs's `*_metadata` calls and `metadata_watcher`, client-go's
/// metadata client): objects reduced to `PartialObjectMetadata`, lists to
/// `PartialObjectMetadataList`, and upstream's 406 for a form that does not fit the answer.
#[tokio::test]
async fn metadata_only_reads_answer_as_upstream() {
    use kube::core::PartialObjectMeta;
    let cluster = TestCluster::builder().start().await;
    let client = cluster.client().await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.create(&PostParams::default(), &pod("one"))
        .await
        .expect("create");

    let list = pods
        .list_metadata(&ListParams::default().labels("app=demo"))
        .await
        .expect("list_metadata");
    assert_eq!(list.items.len(), 1);
    let item = &list.items[0];
    assert_eq!(item.metadata.name.as_deref(), Some("one"));
    let types = item.types.as_ref().expect("each item says what it is");
    assert_eq!(
        (types.api_version.as_str(), types.kind.as_str()),
        ("meta.k8s.io/v1", "PartialObjectMetadata")
    );
    let one: PartialObjectMeta<Pod> = pods.get_metadata("one").await.expect("get_metadata");
    assert_eq!(
        one.metadata.labels.as_ref().and_then(|l| l.get("app")),
        Some(&"demo".to_string())
    );

    // On the wire: the metadata and nothing else; the list keeps its own metadata.
    let path = "/api/v1/namespaces/default/pods";
    let json_list = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";
    let (code, body) = get_as(&client, &format!("{path}?limit=1"), json_list).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["kind"], "PartialObjectMetadataList");
    assert_eq!(body["apiVersion"], "meta.k8s.io/v1");
    assert!(body["metadata"]["resourceVersion"].is_string(), "{body}");
    let mut keys: Vec<&String> = body["items"][0]
        .as_object()
        .expect("an item")
        .keys()
        .collect();
    keys.sort();
    assert_eq!(keys, ["apiVersion", "kind", "metadata"], "{body}");
    // client-go's metadata client names protobuf first, then JSON in v1beta1.
    let client_go = "application/vnd.kubernetes.protobuf;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1beta1,application/json";
    let (code, body) = get_as(&client, &format!("{path}/one"), client_go).await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["apiVersion"], "meta.k8s.io/v1beta1");
    assert_eq!(body["metadata"]["name"], "one");
    assert!(body.get("spec").is_none(), "{body}");

    // The form must fit the answer, as upstream's 406s say.
    let (code, body) = get_as(&client, &format!("{path}/one"), json_list).await;
    assert_eq!(code, 406, "{body}");
    assert_eq!(
        body["message"],
        "you requested PartialObjectMetadataList, but the requested object is not a list (*core.Pod)"
    );
    let json_one = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1";
    let (code, body) = get_as(&client, path, json_one).await;
    assert_eq!(code, 406, "{body}");
    assert_eq!(
        body["message"],
        "you requested PartialObjectMetadata, but the requested object is a list (*core.PodList)"
    );

    // kube-rs's watcher of metadata lists, then watches: a new Pod arrives as its metadata.
    let metadata: Api<PartialObjectMeta<Pod>> = Api::namespaced(client.clone(), "default");
    let watcher = kube::runtime::watcher(metadata, kube::runtime::watcher::Config::default());
    let mut watcher = Box::pin(watcher);
    let mut seen_two = None;
    let mut created = false;
    while seen_two.is_none() {
        let event = tokio::time::timeout(Duration::from_secs(10), watcher.next())
            .await
            .expect("an event in time")
            .expect("a stream")
            .expect("a good event");
        match event {
            kube::runtime::watcher::Event::InitDone if !created => {
                pods.create(&PostParams::default(), &pod("two"))
                    .await
                    .expect("create two");
                created = true;
            }
            kube::runtime::watcher::Event::Apply(p)
                if p.metadata.name.as_deref() == Some("two") =>
            {
                seen_two = Some(p);
            }
            _ => {}
        }
    }
    let two = seen_two.expect("seen");
    assert_eq!(
        two.types.map(|t| t.kind).as_deref(),
        Some("PartialObjectMetadata")
    );
    assert!(two.metadata.uid.is_some());
}

#[tokio::test]
async fn python_kubernetes_client_drives_the_api() {
    let cluster = TestCluster::builder().start().await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/client_test.py");
    let out = python(&cluster, &[script]).await;
    assert!(out.contains("python client: ok"));
}

/// `/api` and `/apis` in the aggregated form (`apidiscovery.k8s.io/v2`), which kube-rs's
/// `run_aggregated` and kubectl v1.32 ask for first, with an ETag that a revalidation gets
/// 304 for; a client that asks for plain JSON still gets the legacy documents.
#[tokio::test]
async fn aggregated_discovery_serves_kube_rs_and_kubectl() {
    use http_body_util::BodyExt as _;
    use kube::core::discovery::v2::ACCEPT_AGGREGATED_DISCOVERY_V2;
    use kube::core::GroupVersionKind;

    let cluster = TestCluster::builder().start().await;
    let client = cluster.client().await;
    let discovery = kube::Discovery::new(client.clone())
        .run_aggregated()
        .await
        .expect("aggregated discovery");
    let (pods, caps) = discovery
        .resolve_gvk(&GroupVersionKind::gvk("", "v1", "Pod"))
        .expect("Pods are discovered");
    assert_eq!(pods.plural, "pods");
    assert!(caps.supports_operation(kube::discovery::verbs::WATCH));
    let status = caps
        .subresources
        .iter()
        .find(|(r, _)| r.plural == "status")
        .expect("pods/status is listed");
    assert_eq!(status.0.kind, "Pod");
    let (leases, _) = discovery
        .resolve_gvk(&GroupVersionKind::gvk("coordination.k8s.io", "v1", "Lease"))
        .expect("Leases are discovered");
    assert_eq!(leases.plural, "leases");

    let get = |accept: &str, etag: Option<&str>| {
        let mut req = http::Request::get("/apis").header("accept", accept);
        if let Some(tag) = etag {
            req = req.header("if-none-match", tag);
        }
        client.send(
            req.body(kube::client::Body::from(Vec::new()))
                .expect("request"),
        )
    };
    let resp = get(ACCEPT_AGGREGATED_DISCOVERY_V2, None)
        .await
        .expect("GET /apis");
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"],
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    );
    assert_eq!(resp.headers()["vary"], "Accept");
    let etag = resp.headers()["etag"].to_str().expect("ascii").to_string();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    let list: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(list["kind"], "APIGroupDiscoveryList");
    assert!(
        list["items"]
            .as_array()
            .expect("items")
            .iter()
            .all(|g| g["metadata"]["name"] != ""),
        "the core group is only under /api"
    );
    let again = get(ACCEPT_AGGREGATED_DISCOVERY_V2, Some(&etag))
        .await
        .expect("revalidation");
    assert_eq!(again.status(), 304);
    let legacy = get("application/json", None)
        .await
        .expect("legacy GET /apis");
    let body = legacy.into_body().collect().await.expect("body").to_bytes();
    let groups: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    assert_eq!(groups["kind"], "APIGroupList");

    // kubectl v1.32 takes the aggregated path.
    let out = cluster.kubectl_ok(&["api-resources", "--api-group="]);
    let pods_line = out
        .lines()
        .find(|l| l.starts_with("pods "))
        .unwrap_or_else(|| panic!("pods listed in:\n{out}"));
    let columns: Vec<&str> = pods_line.split_whitespace().collect();
    assert_eq!(columns, ["pods", "po", "v1", "true", "Pod"]);
}

/// `pods/eviction` through kube-rs (`Api::evict`, as drain-like tools call it) and the
/// Python client: the Pod is deleted as a DELETE with the Eviction's options would; an
/// Eviction naming another Pod is a 400; a missing Pod is a 404.
#[tokio::test]
async fn eviction_deletes_the_pod_for_kube_rs_and_python() {
    use kube::api::EvictParams;

    let cluster = TestCluster::builder().start().await;
    let pods: Api<Pod> = Api::namespaced(cluster.client().await, "default");
    for name in ["evicted", "dry", "other"] {
        pods.create(&PostParams::default(), &pod(name))
            .await
            .expect("create");
    }
    pods.evict("evicted", &EvictParams::default())
        .await
        .expect("eviction");
    assert!(pods.get_opt("evicted").await.expect("get").is_none());
    match pods.evict("evicted", &EvictParams::default()).await {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 404),
        other => panic!("evicting a missing Pod: {other:?}"),
    }
    let raw = crate::raw::admin(&cluster);
    let evict = |target: &str, body: serde_json::Value| {
        let path = format!("/api/v1/namespaces/default/pods/{target}/eviction");
        let raw = &raw;
        async move {
            raw.json(
                "POST",
                &path,
                "application/json",
                serde_json::to_vec(&body).expect("body"),
            )
            .await
        }
    };
    let dry = json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "dry"},
        "deleteOptions": {"dryRun": ["All"]}});
    let (code, status) = evict("dry", dry).await;
    assert_eq!((code, &status["status"]), (201, &json!("Success")));
    pods.get("dry").await.expect("a dry run evicts nothing");
    let (code, status) = evict("other", json!({"metadata": {"name": "dry"}})).await;
    assert_eq!(code, 400);
    assert_eq!(
        status["message"],
        "name in URL does not match name in Eviction object"
    );
    pods.get("other").await.expect("not evicted");

    let script = r#"
import kubernetes
kubernetes.config.load_kube_config()
v1 = kubernetes.client.CoreV1Api()
body = kubernetes.client.V1Eviction(metadata=kubernetes.client.V1ObjectMeta(name="other"))
v1.create_namespaced_pod_eviction("other", "default", body)
try:
    v1.read_namespaced_pod("other", "default")
    raise SystemExit("still there")
except kubernetes.client.exceptions.ApiException as e:
    assert e.status == 404, e.status
print("evicted")
"#;
    let out = python(&cluster, &["-c", script]).await;
    assert!(out.contains("evicted"));
}

/// Runs python3 with `args` against the cluster and returns what it printed; fails the test
/// when the script fails.
pub(crate) async fn python(cluster: &TestCluster, args: &[&str]) -> String {
    python_with(&cluster.kubeconfig, args).await
}

/// [`python`] with the kubeconfig given.
pub(crate) async fn python_with(kubeconfig: &std::path::Path, args: &[&str]) -> String {
    let out = tokio::process::Command::new("python3")
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .output()
        .await
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "python client script failed (scripts/test installs the kubernetes package):\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
