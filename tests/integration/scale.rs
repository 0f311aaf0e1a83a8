//! Collections of thousands of objects: paged lists, continue tokens, watches from 0,
//! shared Event leases and namespace deletion, plus `resourceVersionMatch`.
//!
//! The 10,000 Pods are put into etcd directly, 100 to a transaction: through the API they
//! would cost about 45 s of the two shared cores, and what is tested here is reading them
//! back, not creating them (creation has its own tests). Their Events are created through the
//! API server with concurrent HTTPS POSTs (the `kube` client, 32 in flight over pooled
//! connections), because the lease each Event is stored with is chosen there.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::{Event, Namespace, Node, Pod};
use kube::api::{Api, PostParams};
use serde_json::{json, Value};

use crate::harness::TestCluster;
use crate::raw::{admin, read_events, Raw};

const IN_FLIGHT: usize = 32;

fn pod(name: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": "scale"}},
        "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]},
    }))
    .expect("pod")
}

fn event(ns: &str, pod: &str) -> Event {
    serde_json::from_value(json!({
        "metadata": {"name": format!("{pod}.scale")},
        "involvedObject": {"kind": "Pod", "namespace": ns, "name": pod, "apiVersion": "v1"},
        "reason": "Testing", "message": format!("event of {pod}"), "type": "Normal",
        "source": {"component": "scale-test"},
    }))
    .expect("event")
}

async fn create_namespace(client: &kube::Client, name: &str) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace =
        serde_json::from_value(json!({"metadata": {"name": name}})).expect("namespace");
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .expect("namespace created");
}

/// Stores `count` Pods of `ns` straight into etcd as the API server would have stored them.
async fn put_pods(cluster: &TestCluster, ns: &str, count: usize) {
    let mut etcd = etcd_client::Client::connect([cluster.etcd_url.as_str()], None)
        .await
        .expect("etcd");
    let names: Vec<String> = (0..count).map(|i| format!("pod-{i:05}")).collect();
    for chunk in names.chunks(100) {
        let puts: Vec<etcd_client::TxnOp> = chunk
            .iter()
            .map(|name| {
                let pod = json!({
                    "apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": name, "namespace": ns, "labels": {"app": "scale"},
                        "uid": uuid::Uuid::new_v4().to_string(),
                        "creationTimestamp": "2026-01-01T00:00:00Z"},
                    "spec": {"containers": [{"name": "c", "image": "busybox:1.36",
                        "imagePullPolicy": "IfNotPresent"}],
                        "restartPolicy": "Always", "dnsPolicy": "ClusterFirst",
                        "schedulerName": "default-scheduler", "terminationGracePeriodSeconds": 30},
                    "status": {"phase": "Pending", "qosClass": "BestEffort"},
                });
                let key = format!("/registry/pods/{ns}/{name}");
                etcd_client::TxnOp::put(key, pod.to_string(), None)
            })
            .collect();
        etcd.txn(etcd_client::Txn::new().and_then(puts))
            .await
            .expect("pods stored");
    }
}

/// Creates one Event for each of `count` Pods of `ns` through the API, `IN_FLIGHT` at a time.
async fn create_events(client: &kube::Client, ns: &str, count: usize) {
    let recorded: Api<Event> = Api::namespaced(client.clone(), ns);
    futures::stream::iter(0..count)
        .map(|i| {
            let recorded = recorded.clone();
            async move {
                let name = format!("pod-{i:05}");
                recorded
                    .create(&PostParams::default(), &event(ns, &name))
                    .await
                    .unwrap_or_else(|e| panic!("event of {name}: {e}"));
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect::<Vec<()>>()
        .await;
}

/// Creates `count` Pods in `ns` through the API, `IN_FLIGHT` at a time.
async fn create_pods(client: &kube::Client, ns: &str, count: usize) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    futures::stream::iter(0..count)
        .map(|i| {
            let pods = pods.clone();
            async move {
                let name = format!("pod-{i:05}");
                pods.create(&PostParams::default(), &pod(&name))
                    .await
                    .unwrap_or_else(|e| panic!("pod {name}: {e}"));
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect::<Vec<()>>()
        .await;
}

/// The non-empty lines of a command's output.
fn lines(text: &str) -> usize {
    text.lines().filter(|l| !l.trim().is_empty()).count()
}

async fn get(raw: &Raw, path: &str) -> (u16, Value) {
    raw.json("GET", path, "application/json", Vec::new()).await
}

/// Walks a list page by page; returns every name and the number of pages.
async fn walk_pages(raw: &Raw, path: &str, limit: usize) -> (Vec<String>, usize) {
    let mut names = Vec::new();
    let mut pages = 0;
    let mut token = String::new();
    loop {
        let url = if token.is_empty() {
            format!("{path}?limit={limit}")
        } else {
            format!("{path}?limit={limit}&continue={token}")
        };
        let (code, body) = get(raw, &url).await;
        assert_eq!(code, 200, "{url}: {body}");
        let items = body["items"].as_array().expect("items");
        assert!(items.len() <= limit, "a page holds at most the limit");
        names.extend(
            items
                .iter()
                .map(|i| i["metadata"]["name"].as_str().unwrap_or("").to_string()),
        );
        pages += 1;
        match body["metadata"]["continue"].as_str() {
            Some(next) if !next.is_empty() => {
                let remaining = body["metadata"]["remainingItemCount"].as_i64();
                assert!(
                    remaining.is_some_and(|r| r > 0),
                    "remainingItemCount: {body:?}"
                );
                token = next.to_string();
            }
            _ => return (names, pages),
        }
    }
}

/// The number of leases etcd holds.
async fn lease_count(cluster: &TestCluster) -> usize {
    let mut etcd = etcd_client::Client::connect([cluster.etcd_url.as_str()], None)
        .await
        .expect("etcd");
    etcd.leases().await.expect("leases").leases().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_thousand_pods_and_events_page_watch_and_delete() {
    const COUNT: usize = 10_000;
    const NS: &str = "scale";
    let started = Instant::now();
    let cluster = TestCluster::builder().start().await;
    let client = cluster.client().await;
    let raw = admin(&cluster);
    create_namespace(&client, NS).await;
    put_pods(&cluster, NS, COUNT).await;
    create_events(&client, NS, COUNT).await;
    eprintln!("created {COUNT} pods and events in {:?}", started.elapsed());

    // Events share leases: a handful for 10,000 Events, not one each.
    let leases = lease_count(&cluster).await;
    assert!(
        (1..=50).contains(&leases),
        "{leases} leases for {COUNT} events"
    );

    // kubectl pages with limit=500 by default; --chunk-size=0 asks for one response.
    let out = cluster.kubectl_ok(&["get", "pods", "-n", NS, "--no-headers"]);
    assert_eq!(lines(&out), COUNT);
    let out = cluster.kubectl_ok(&["get", "pods", "-n", NS, "--chunk-size=500", "-o", "name"]);
    assert_eq!(lines(&out), COUNT);
    let out = cluster.kubectl_ok(&["get", "pods", "-n", NS, "--chunk-size=0", "-o", "name"]);
    assert_eq!(lines(&out), COUNT);
    let out = cluster.kubectl_ok(&["get", "events", "-A", "--no-headers"]);
    assert_eq!(lines(&out), COUNT);

    // Every page within its limit, every Pod exactly once.
    let pods_path = format!("/api/v1/namespaces/{NS}/pods");
    let (names, pages) = walk_pages(&raw, &pods_path, 1000).await;
    assert_eq!(pages, 10);
    assert_eq!(names.len(), COUNT);
    assert_eq!(names.iter().collect::<HashSet<_>>().len(), COUNT);
    let (names, _) = walk_pages(&raw, "/api/v1/events", 3000).await;
    assert_eq!(names.len(), COUNT);

    // The first page says how many are left; a token belongs to its own namespace and kind.
    let (code, first) = get(&raw, &format!("{pods_path}?limit=100")).await;
    assert_eq!(code, 200);
    assert_eq!(first["metadata"]["remainingItemCount"], json!(COUNT - 100));
    let token = first["metadata"]["continue"]
        .as_str()
        .expect("continue")
        .to_string();
    let (code, body) = get(
        &raw,
        &format!("/api/v1/namespaces/default/pods?limit=100&continue={token}"),
    )
    .await;
    assert_eq!(code, 400, "{body}");
    assert_eq!(body["reason"], "BadRequest");
    let (code, _) = get(
        &raw,
        &format!("/api/v1/namespaces/{NS}/events?limit=100&continue={token}"),
    )
    .await;
    assert_eq!(code, 400);

    // A watch from resourceVersion 0 first sees every Pod as ADDED.
    let resp = raw
        .send(
            "GET",
            &format!("{pods_path}?watch=1&resourceVersion=0&timeoutSeconds=300"),
            "application/json",
            Vec::new(),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let seen = read_events(resp, COUNT, Duration::from_secs(300)).await;
    assert_eq!(seen.len(), COUNT);
    assert!(seen.iter().all(|e| e["type"] == "ADDED"));
    let distinct: HashSet<&str> = seen
        .iter()
        .filter_map(|e| e["object"]["metadata"]["name"].as_str())
        .collect();
    assert_eq!(distinct.len(), COUNT);

    // Events have no watch cache (upstream's default): the same watch is served by etcd, a
    // list at one revision and then its changes, and a new Event arrives after every old one.
    let resp = raw
        .send(
            "GET",
            &format!("/api/v1/namespaces/{NS}/events?watch=1&resourceVersion=0&timeoutSeconds=300"),
            "application/json",
            Vec::new(),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let events: Api<Event> = Api::namespaced(client.clone(), NS);
    events
        .create(&PostParams::default(), &event(NS, "late"))
        .await
        .expect("one more event");
    let seen = read_events(resp, COUNT + 1, Duration::from_secs(300)).await;
    assert_eq!(seen.len(), COUNT + 1);
    assert!(seen.iter().all(|e| e["type"] == "ADDED"));
    let late = &seen[COUNT]["object"];
    assert_eq!(late["involvedObject"]["name"], "late", "{late}");
    let distinct: HashSet<&str> = seen
        .iter()
        .filter_map(|e| e["object"]["metadata"]["name"].as_str())
        .collect();
    assert_eq!(distinct.len(), COUNT + 1);

    // Once etcd forgot the token's revision, the token is 410 Gone.
    let mut etcd = etcd_client::Client::connect([cluster.etcd_url.as_str()], None)
        .await
        .expect("etcd");
    create_pods(&client, "default", 1).await;
    let rev = etcd
        .get("/", None)
        .await
        .expect("etcd get")
        .header()
        .map(|h| h.revision())
        .expect("revision");
    etcd.compact(rev, None).await.expect("compaction");
    let (code, body) = get(&raw, &format!("{pods_path}?limit=100&continue={token}")).await;
    assert_eq!(code, 410, "{body}");
    assert_eq!(body["reason"], "Expired");

    let deleting = Instant::now();
    let out = cluster.kubectl(&["delete", "ns", NS, "--timeout=600s"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let out = cluster.kubectl(&["get", "ns", NS]);
        if !out.status.success() {
            break;
        }
        assert!(Instant::now() < deadline, "namespace {NS} is still there");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let (code, body) = get(&raw, &pods_path).await;
    assert_eq!(code, 200);
    assert_eq!(body["items"].as_array().map(Vec::len), Some(0));
    let (code, body) = get(&raw, &format!("/api/v1/namespaces/{NS}/events")).await;
    assert_eq!(code, 200);
    assert_eq!(body["items"].as_array().map(Vec::len), Some(0));
    eprintln!(
        "namespace deleted in {:?}; whole test {:?}",
        deleting.elapsed(),
        started.elapsed()
    );
}

fn node(name: &str) -> Node {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "status": {
            "capacity": {"cpu": "64", "memory": "256Gi", "pods": "250"},
            "allocatable": {"cpu": "64", "memory": "256Gi", "pods": "250"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                "message": "kubelet is posting ready status",
                "lastHeartbeatTime": "2026-01-01T00:00:00Z",
                "lastTransitionTime": "2026-01-01T00:00:00Z"}],
        },
    }))
    .expect("node")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thousand_pods_bound_by_the_scheduler_list_their_events() {
    const COUNT: usize = 1000;
    const NS: &str = "bound";
    let started = Instant::now();
    let cluster = TestCluster::builder().scheduler().start().await;
    let client = cluster.client().await;
    let nodes: Api<Node> = Api::all(client.clone());
    for i in 0..5 {
        let node = node(&format!("node-{i}"));
        let status = json!({"status": node.status.clone()});
        nodes
            .create(&PostParams::default(), &node)
            .await
            .expect("node created");
        nodes
            .patch_status(
                &format!("node-{i}"),
                &Default::default(),
                &kube::api::Patch::Merge(&status),
            )
            .await
            .expect("node status");
    }
    create_namespace(&client, NS).await;
    create_pods(&client, NS, COUNT).await;

    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let listed = pods.list(&Default::default()).await.expect("pods");
        let bound = listed
            .items
            .iter()
            .filter(|p| p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some())
            .count();
        if bound == COUNT {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{bound} of {COUNT} pods bound in time"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // The scheduler records one Scheduled event per Pod; kubectl lists them all.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let out = cluster.kubectl_ok(&["get", "events", "-n", NS, "--no-headers"]);
        let scheduled = out.lines().filter(|l| l.contains("Scheduled")).count();
        if scheduled >= COUNT {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{scheduled} Scheduled events of {COUNT}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    eprintln!("{COUNT} pods bound and listed in {:?}", started.elapsed());
}

#[tokio::test]
async fn resource_version_match_is_validated_and_exact_lists_the_past() {
    let cluster = TestCluster::builder().start().await;
    let client = cluster.client().await;
    let raw = admin(&cluster);
    const PODS: &str = "/api/v1/namespaces/default/pods";
    create_pods(&client, "default", 3).await;
    let (code, before) = get(&raw, PODS).await;
    assert_eq!(code, 200);
    let rv = before["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_string();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.create(&PostParams::default(), &pod("late"))
        .await
        .expect("created");

    // Exact serves the list as it was; NotOlderThan at least as new.
    let (code, exact) = get(
        &raw,
        &format!("{PODS}?resourceVersion={rv}&resourceVersionMatch=Exact"),
    )
    .await;
    assert_eq!(code, 200, "{exact}");
    assert_eq!(exact["items"].as_array().map(Vec::len), Some(3));
    assert_eq!(exact["metadata"]["resourceVersion"], json!(rv));
    let (code, exact_page) = get(
        &raw,
        &format!("{PODS}?resourceVersion={rv}&resourceVersionMatch=Exact&limit=2"),
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(exact_page["items"].as_array().map(Vec::len), Some(2));
    assert_eq!(exact_page["metadata"]["remainingItemCount"], json!(1));
    let (code, newer) = get(
        &raw,
        &format!("{PODS}?resourceVersion={rv}&resourceVersionMatch=NotOlderThan"),
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(newer["items"].as_array().map(Vec::len), Some(4));

    let (code, body) = get(
        &raw,
        &format!("{PODS}?resourceVersion={rv}&resourceVersionMatch=Bogus"),
    )
    .await;
    assert_eq!(code, 422);
    assert_eq!(body["reason"], "Invalid");
    assert_eq!(
        body["message"],
        "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Unsupported value: \"Bogus\": supported values: \"Exact\", \"NotOlderThan\", \"\""
    );
    for matching in ["Exact", "NotOlderThan"] {
        let (code, body) = get(&raw, &format!("{PODS}?resourceVersionMatch={matching}")).await;
        assert_eq!(code, 422, "{matching}: {body}");
        assert_eq!(
            body["message"],
            "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided"
        );
        let (code, body) = get(
            &raw,
            &format!("{PODS}?watch=1&resourceVersionMatch={matching}"),
        )
        .await;
        assert_eq!(code, 422, "watch {matching}: {body}");
        assert_eq!(body["reason"], "Invalid");
    }

    // Exact at a compacted revision: 410.
    let mut etcd = etcd_client::Client::connect([cluster.etcd_url.as_str()], None)
        .await
        .expect("etcd");
    pods.create(&PostParams::default(), &pod("later"))
        .await
        .expect("created");
    let current = etcd
        .get("/", None)
        .await
        .expect("etcd get")
        .header()
        .map(|h| h.revision())
        .expect("revision");
    etcd.compact(current, None).await.expect("compaction");
    let (code, body) = get(
        &raw,
        &format!("{PODS}?resourceVersion={rv}&resourceVersionMatch=Exact"),
    )
    .await;
    assert_eq!(code, 410, "{body}");
    assert_eq!(body["reason"], "Expired");
    assert_eq!(
        body["message"],
        "The resourceVersion for the provided list is too old."
    );
}
