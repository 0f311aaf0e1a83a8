//! The API over raw HTTPS: authentication, hostile input, and watch semantics.

use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::TestCluster;
use crate::raw::{admin, client_config, read_events, Identity, Raw};

fn pod(name: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "x"}},
        "spec": {"containers": [{"name": "c", "image": "busybox:1"}]}}))
    .expect("JSON")
}

const PODS: &str = "/api/v1/namespaces/default/pods";

#[tokio::test]
async fn requests_without_a_valid_client_certificate_get_401() {
    let cluster = TestCluster::builder().start().await;
    let ca = cluster.certs().join("ca.crt");
    let anonymous = Raw::new(
        &cluster.server,
        client_config(&ca, Identity::None, &[&rustls::version::TLS13]),
    );
    let (code, body) = anonymous
        .json("GET", PODS, "application/json", vec![])
        .await;
    assert_eq!(code, 401);
    assert_eq!(body["kind"], "Status");
    assert_eq!(body["reason"], "Unauthorized");

    // A certificate from another CA, with the same user name, is no better.
    let other = tempfile::tempdir().expect("temp dir");
    let other_ca = rkube::cluster::pki::Ca::load_or_create(other.path()).expect("CA");
    let forged = other_ca
        .issue_client(
            other.path(),
            "admin",
            "kubernetes-admin",
            &["system:masters"],
        )
        .expect("cert");
    let config = client_config(
        &ca,
        Identity::Files {
            cert: &forged.cert,
            key: &forged.key,
        },
        &[&rustls::version::TLS13],
    );
    let (code, body) = Raw::new(&cluster.server, config)
        .json("GET", PODS, "application/json", vec![])
        .await;
    assert_eq!(code, 401);
    assert_eq!(body["message"], "Unauthorized");

    let (code, _) = admin(&cluster)
        .json("GET", PODS, "application/json", vec![])
        .await;
    assert_eq!(code, 200);
}

#[tokio::test]
async fn tls_1_2_is_served_and_keys_are_private() {
    let cluster = TestCluster::builder().start().await;
    let certs = cluster.certs();
    let config = client_config(
        &certs.join("ca.crt"),
        Identity::Files {
            cert: &certs.join("admin.crt"),
            key: &certs.join("admin.key"),
        },
        &[&rustls::version::TLS12],
    );
    let (code, _) = Raw::new(&cluster.server, config)
        .json("GET", "/version", "", vec![])
        .await;
    assert_eq!(code, 200);
    use std::os::unix::fs::PermissionsExt as _;
    for key in ["ca.key", "apiserver.key", "admin.key"] {
        let mode = std::fs::metadata(certs.join(key))
            .expect("key file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{key}");
    }
}

#[tokio::test]
async fn serving_certificate_names_loopback_and_host_addresses() {
    let hosts = rkube::cluster::pki::apiserver_hosts(&[]);
    for expected in ["localhost", "127.0.0.1", "kubernetes.default.svc"] {
        assert!(
            hosts.iter().any(|h| h == expected),
            "{expected} missing from {hosts:?}"
        );
    }
    // kubectl verifies the certificate for 127.0.0.1 in every test; check it for `localhost`.
    let cluster = TestCluster::builder().start().await;
    let text = std::fs::read_to_string(&cluster.kubeconfig).expect("kubeconfig");
    let port = cluster.server.rsplit(':').next().expect("port");
    let by_name = text.replace(&cluster.server, &format!("https://localhost:{port}"));
    let path = cluster.dir.path().join("by-name");
    std::fs::write(&path, by_name).expect("write");
    let out = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&path)
        .args(["get", "ns", "default", "-o", "name"])
        .output()
        .expect("kubectl");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "namespace/default",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn hostile_bodies_get_upstream_codes_and_lose_nothing() {
    let cluster = TestCluster::builder().start().await;
    let api = admin(&cluster);
    let (code, _) = api
        .json("POST", PODS, "application/json", pod("keep"))
        .await;
    assert_eq!(code, 201);

    let cases: Vec<(&str, &str, Vec<u8>, u16)> = vec![
        ("POST", "application/json", b"{".to_vec(), 400),
        ("POST", "application/json", vec![0, 0xff], 400),
        ("POST", "application/json", Vec::new(), 400),
        ("POST", "application/json", b"[1,2]".to_vec(), 400),
        ("POST", "application/json", "[".repeat(100_000).into_bytes(), 400),
        ("POST", "text/plain", pod("p"), 415),
        // A protobuf body must start with `k8s\0` and hold a whole envelope.
        ("POST", "application/vnd.kubernetes.protobuf", pod("p"), 400),
        ("POST", "application/vnd.kubernetes.protobuf", b"k8s\0\x0a\x7f".to_vec(), 400),
        ("POST", "application/vnd.kubernetes.protobuf", b"k8s\0\x0a\xff\xff".to_vec(), 400),
        ("POST", "application/json", br#"{"apiVersion":"v2","kind":"Pod","metadata":{"name":"p"}}"#.to_vec(), 400),
        ("POST", "application/json", br#"{"apiVersion":"v1","kind":"pod","metadata":{"name":"p"}}"#.to_vec(), 400),
        ("POST", "application/json", br#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"i","command":["sleep",1200]}]}}"#.to_vec(), 400),
        ("POST", "application/json", br#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"other"},"spec":{"containers":[{"name":"c","image":"i"}]}}"#.to_vec(), 400),
    ];
    for (method, content_type, body, expected) in cases {
        let shown = String::from_utf8_lossy(&body[..body.len().min(40)]).into_owned();
        let (code, status) = api.json(method, PODS, content_type, body).await;
        assert_eq!(code, expected, "{content_type} {shown}: {status}");
        assert_eq!(status["kind"], "Status", "{shown}");
        assert_eq!(status["code"], expected);
    }
    assert_eq!(
        api.head_only("POST", PODS, 4 * 1024 * 1024).await,
        "HTTP/1.1 413 Payload Too Large"
    );
    let (code, status) = api
        .json(
            "POST",
            &format!("{PODS}?fieldValidation=Strict"),
            "application/json",
            br#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"d","name":"e"},"spec":{"containers":[{"name":"c","image":"i"}]}}"#.to_vec(),
        )
        .await;
    assert_eq!(code, 400);
    assert_eq!(
        status["message"],
        "Pod in version \"v1\" cannot be handled as a Pod: strict decoding error: duplicate field \"metadata.name\""
    );
    let yaml = b"apiVersion: v1\nkind: Pod\nmetadata: {name: from-yaml}\nspec: {containers: [{name: c, image: i}]}\n";
    let (code, _) = api
        .json("POST", PODS, "application/yaml", yaml.to_vec())
        .await;
    assert_eq!(code, 201);
    let (code, _) = api
        .json("GET", "/api/v1/namespaces/default/podz", "", vec![])
        .await;
    assert_eq!(code, 404);
    let (code, body) = api.json("PUT", PODS, "application/json", pod("x")).await;
    assert_eq!(
        (code, body["reason"].as_str()),
        (405, Some("MethodNotAllowed"))
    );
    let (code, _) = api
        .json("GET", &format!("{PODS}?limit=-1"), "", vec![])
        .await;
    assert_eq!(code, 400);
    let (code, _) = api
        .json(
            "GET",
            &format!("{PODS}?watch=1&resourceVersion=abc"),
            "",
            vec![],
        )
        .await;
    assert_eq!(code, 400);
    let (code, body) = api
        .json(
            "PUT",
            &format!("{PODS}/keep"),
            "application/json",
            pod("other"),
        )
        .await;
    assert_eq!(code, 400);
    assert_eq!(
        body["message"],
        "the name of the object (other) does not match the name on the URL (keep)"
    );

    let (code, list) = api.json("GET", PODS, "", vec![]).await;
    assert_eq!(code, 200);
    let names: Vec<&str> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|p| p["metadata"]["name"].as_str())
        .collect();
    assert_eq!(names, ["from-yaml", "keep"]);
}

async fn label(api: &Raw, name: &str, value: &str) -> String {
    let patch =
        serde_json::to_vec(&json!({"metadata": {"labels": {"step": value}}})).expect("JSON");
    let (code, pod) = api
        .json(
            "PATCH",
            &format!("{PODS}/{name}"),
            "application/merge-patch+json",
            patch,
        )
        .await;
    assert_eq!(code, 200, "{pod}");
    pod["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_string()
}

#[tokio::test]
async fn watch_resumed_from_an_old_resource_version_has_no_gap() {
    let cluster = TestCluster::builder().start().await;
    let api = admin(&cluster);
    let (_, created) = api.json("POST", PODS, "application/json", pod("w")).await;
    let start = created["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_string();
    let mut expected = Vec::new();
    for step in ["1", "2", "3"] {
        expected.push(label(&api, "w", step).await);
    }
    let resp = api
        .send(
            "GET",
            &format!("{PODS}?watch=true&resourceVersion={start}"),
            "",
            vec![],
        )
        .await;
    assert_eq!(resp.status().as_u16(), 200);
    let events = read_events(resp, 3, Duration::from_secs(10)).await;
    let seen: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap_or("").to_string(),
                e["object"]["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = expected
        .iter()
        .map(|rv| ("MODIFIED".to_string(), rv.clone()))
        .collect();
    assert_eq!(seen, want);
}

#[tokio::test]
async fn watch_ends_objects_that_stop_matching_the_selector() {
    let cluster = TestCluster::builder().start().await;
    let api = admin(&cluster);
    let (_, created) = api.json("POST", PODS, "application/json", pod("sel")).await;
    let rv = created["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_string();
    let resp = api
        .send(
            "GET",
            &format!("{PODS}?watch=1&labelSelector=app%3Dx&resourceVersion={rv}"),
            "",
            vec![],
        )
        .await;
    let patch = br#"{"metadata":{"labels":{"app":"y"}}}"#.to_vec();
    api.json(
        "PATCH",
        &format!("{PODS}/sel"),
        "application/merge-patch+json",
        patch,
    )
    .await;
    let events = read_events(resp, 1, Duration::from_secs(10)).await;
    assert_eq!(events[0]["type"], "DELETED");
    assert_eq!(events[0]["object"]["metadata"]["labels"]["app"], "y");
}

#[tokio::test]
async fn watch_from_a_compacted_resource_version_gets_410_expired() {
    let cluster = TestCluster::builder().compaction("1s").start().await;
    let api = admin(&cluster);
    let (_, created) = api.json("POST", PODS, "application/json", pod("old")).await;
    let start = created["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_string();
    label(&api, "old", "a").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        label(&api, "old", "b").await;
        let resp = api
            .send(
                "GET",
                &format!("{PODS}?watch=1&resourceVersion={start}"),
                "",
                vec![],
            )
            .await;
        assert_eq!(resp.status().as_u16(), 200);
        let events = read_events(resp, 1, Duration::from_secs(5)).await;
        if events.first().is_some_and(|e| e["type"] == "ERROR") {
            let status = &events[0]["object"];
            assert_eq!(status["code"], 410);
            assert_eq!(status["reason"], "Expired");
            assert!(
                status["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with(&format!("too old resource version: {start}"))),
                "{status}"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "history was never compacted"
        );
        // The next compaction is at most one interval away.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // The list still works, and the object is intact.
    let (code, got) = api.json("GET", &format!("{PODS}/old"), "", vec![]).await;
    assert_eq!(code, 200);
    assert_eq!(got["metadata"]["labels"]["step"], "b");
}

#[tokio::test]
async fn bookmarks_are_sent_when_asked_for() {
    let cluster = TestCluster::builder().start().await;
    let api = admin(&cluster);
    let (_, list) = api.json("GET", PODS, "", vec![]).await;
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_string();
    let resp = api
        .send(
            "GET",
            &format!(
                "{PODS}?watch=1&allowWatchBookmarks=true&timeoutSeconds=1&resourceVersion={rv}"
            ),
            "",
            vec![],
        )
        .await;
    let events = read_events(resp, 1, Duration::from_secs(10)).await;
    assert_eq!(events.len(), 1, "one bookmark before the timeout");
    assert_eq!(events[0]["type"], "BOOKMARK");
    assert_eq!(events[0]["object"]["kind"], "Pod");
    assert!(events[0]["object"]["metadata"]["resourceVersion"]
        .as_str()
        .is_some());

    let resp = api
        .send(
            "GET",
            &format!("{PODS}?watch=1&timeoutSeconds=1&resourceVersion={rv}"),
            "",
            vec![],
        )
        .await;
    assert!(
        read_events(resp, 1, Duration::from_secs(10))
            .await
            .is_empty(),
        "no bookmarks unless asked"
    );
}

#[tokio::test]
async fn streaming_list_sends_initial_events_then_a_marker_bookmark() {
    let cluster = TestCluster::builder().start().await;
    let api = admin(&cluster);
    api.json("POST", PODS, "application/json", pod("a")).await;
    api.json("POST", PODS, "application/json", pod("b")).await;
    let resp = api
        .send("GET", &format!("{PODS}?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true"), "", vec![])
        .await;
    let events = read_events(resp, 3, Duration::from_secs(10)).await;
    let types: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(types, ["ADDED", "ADDED", "BOOKMARK"]);
    assert_eq!(
        events[2]["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
}

#[tokio::test]
async fn a_thousand_pods_list_quickly_and_in_pages() {
    let cluster = TestCluster::builder().start().await;
    let client = cluster.client().await;
    let pods: kube::Api<k8s_openapi::api::core::v1::Pod> = kube::Api::namespaced(client, "default");
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..20 {
        let pods = pods.clone();
        tasks.spawn(async move {
            for i in 0..50 {
                let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(json!({
                    "metadata": {"name": format!("p-{worker}-{i}")},
                    "spec": {"containers": [{"name": "c", "image": "busybox:1"}]}}))
                .expect("pod");
                pods.create(&kube::api::PostParams::default(), &pod)
                    .await
                    .expect("created");
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("worker");
    }
    let started = std::time::Instant::now();
    let out = cluster.kubectl_ok(&["get", "pods"]);
    let elapsed = started.elapsed();
    assert_eq!(out.lines().count(), 1001, "a header and 1000 rows");
    // Not a benchmark (see the README for those): a guard against a stalled list.
    assert!(
        elapsed < Duration::from_secs(5),
        "kubectl get pods took {elapsed:?}"
    );

    let api = admin(&cluster);
    let (_, page) = api
        .json("GET", &format!("{PODS}?limit=400"), "", vec![])
        .await;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(400));
    assert_eq!(page["metadata"]["remainingItemCount"], 600);
    let token = page["metadata"]["continue"]
        .as_str()
        .expect("continue token")
        .to_string();
    let (_, rest) = api
        .json(
            "GET",
            &format!("{PODS}?limit=1000&continue={token}"),
            "",
            vec![],
        )
        .await;
    assert_eq!(rest["items"].as_array().map(Vec::len), Some(600));
    assert!(rest["metadata"].get("continue").is_none());
    let first: Vec<Value> = page["items"].as_array().expect("items").clone();
    assert!(first
        .iter()
        .all(|p| !rest["items"].as_array().expect("items").contains(p)));
}

/// The `Warning:` headers of an answer, as sent.
fn warnings(resp: &hyper::Response<hyper::body::Incoming>) -> Vec<String> {
    resp.headers()
        .get_all("warning")
        .iter()
        .map(|v| v.to_str().expect("ASCII header").to_string())
        .collect()
}

#[tokio::test]
async fn duplicate_fields_warn_on_create_put_and_patch_unless_ignored() {
    let cluster = TestCluster::builder().start().await;
    let api = admin(&cluster);
    let dup = |name: &str| {
        format!(r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}","name":"{name}"}},"spec":{{"containers":[{{"name":"c","image":"i"}}]}}}}"#)
            .into_bytes()
    };
    let duplicate = r#"299 - "duplicate field \"metadata.name\"""#.to_string();

    let resp = api
        .send("POST", PODS, "application/json", dup("twice"))
        .await;
    assert_eq!(resp.status().as_u16(), 201);
    assert_eq!(warnings(&resp), vec![duplicate.clone()]);

    // The stored Pod, sent back with its name given twice.
    let path = format!("{PODS}/twice");
    let (code, stored) = api.json("GET", &path, "", Vec::new()).await;
    assert_eq!(code, 200);
    let again = stored
        .to_string()
        .replacen(r#""metadata":{"#, r#""metadata":{"name":"twice","#, 1);
    let resp = api
        .send("PUT", &path, "application/json", again.clone().into_bytes())
        .await;
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(warnings(&resp), vec![duplicate.clone()]);

    let (_, stored) = api.json("GET", &path, "", Vec::new()).await;
    let again = stored
        .to_string()
        .replacen(r#""metadata":{"#, r#""metadata":{"name":"twice","#, 1);
    let ignored = format!("{path}?fieldValidation=Ignore");
    let resp = api
        .send("PUT", &ignored, "application/json", again.into_bytes())
        .await;
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(warnings(&resp), Vec::<String>::new());

    // A Node's strategy warns about deprecated fields on update too (PATCH here).
    let node = br#"{"apiVersion":"v1","kind":"Node","metadata":{"name":"warned"}}"#.to_vec();
    let resp = api
        .send("POST", "/api/v1/nodes", "application/json", node)
        .await;
    assert_eq!(resp.status().as_u16(), 201);
    assert_eq!(warnings(&resp), Vec::<String>::new());
    let resp = api
        .send(
            "PATCH",
            "/api/v1/nodes/warned",
            "application/merge-patch+json",
            br#"{"spec":{"externalID":"i-1"}}"#.to_vec(),
        )
        .await;
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        warnings(&resp),
        vec![
            r#"299 - "spec.externalID: this field is deprecated, and is unused by Kubernetes""#
                .to_string()
        ]
    );
}

/// `/metrics` counts requests and etcd calls under upstream's names, and only the admin group
/// and `system:monitoring` may read it (upstream's 403 for anyone else); health endpoints list
/// their named checks and honour `exclude`.
#[tokio::test]
async fn metrics_and_health_checks_read_as_upstreams() {
    let cluster = TestCluster::builder().start().await;
    cluster.kubectl_ok(&["create", "-f", "pod/db.yml"]);
    cluster.kubectl_ok(&["get", "pods"]);
    cluster.kubectl_ok(&["get", "pod", "db"]);
    let metrics = cluster.kubectl_ok(&["get", "--raw", "/metrics"]);
    for wanted in [
        r#"apiserver_request_total{verb="POST",dry_run="",group="",version="v1",resource="pods",subresource="",scope="resource",component="apiserver",code="201"} 1"#,
        r#"apiserver_request_total{verb="LIST",dry_run="",group="",version="v1",resource="pods",subresource="",scope="namespace",component="apiserver",code="200"}"#,
        r#"apiserver_request_total{verb="GET",dry_run="",group="",version="v1",resource="pods",subresource="",scope="resource",component="apiserver",code="200"}"#,
        r#"apiserver_request_duration_seconds_bucket{le="0.005",verb="POST""#,
        r#"etcd_request_duration_seconds_count{operation="create",type="pods"}"#,
    ] {
        assert!(metrics.contains(wanted), "missing {wanted} in:\n{metrics}");
    }

    let alice = cluster.kubeconfig_as("alice", &[]);
    let out = cluster.kubectl_with(&alice, &["get", "--raw", "/metrics"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(r#"forbidden: User "alice" cannot get path "/metrics""#),
        "{err}"
    );
    let prometheus = cluster.kubeconfig_as("prometheus", &["system:monitoring"]);
    let out = cluster.kubectl_with(&prometheus, &["get", "--raw", "/metrics"]);
    assert!(out.status.success());

    let ready = cluster.kubectl_ok(&["get", "--raw", "/readyz?verbose&exclude=etcd"]);
    assert!(ready.contains("[+]etcd excluded: ok\n"), "{ready}");
    assert!(ready.contains("[+]shutdown ok\n"), "{ready}");
    assert!(ready.ends_with("readyz check passed\n"), "{ready}");
    assert_eq!(cluster.kubectl_ok(&["get", "--raw", "/livez/etcd"]), "ok");

    let dir = tempfile::tempdir().expect("temp dir");
    let body = dir.path().join("body");
    std::fs::write(&body, "{}").expect("write");
    let out = cluster.kubectl(&[
        "create",
        "--raw",
        "/metrics",
        "-f",
        body.to_str().expect("utf-8 path"),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("does not allow this method"),
        "{err}"
    );
}
