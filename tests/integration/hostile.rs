//! Hostile input: a table of several hundred bad requests, each with kube-apiserver's code and
//! reason, sent over raw HTTPS as the admin; afterwards nothing stored may have changed. Plus
//! the data-loss regressions of namespace deletion, collection deletes and delete options.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::harness::TestCluster;
use super::raw::{admin, Raw};

const JSON: &str = "application/json";
const YAML: &str = "application/yaml";
const MERGE: &str = "application/merge-patch+json";
const STRATEGIC: &str = "application/strategic-merge-patch+json";
const JSON_PATCH: &str = "application/json-patch+json";

/// One row: a request and the answer kube-apiserver gives it.
struct Case {
    method: &'static str,
    path: String,
    content_type: &'static str,
    body: Vec<u8>,
    code: u16,
    reason: &'static str,
}

fn case(
    method: &'static str,
    path: impl Into<String>,
    content_type: &'static str,
    body: impl Into<Vec<u8>>,
    code: u16,
) -> Case {
    let reason = match code {
        400 => "BadRequest",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        409 => "Conflict",
        413 => "RequestEntityTooLarge",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        other => panic!("no reason for {other}"),
    };
    Case {
        method,
        path: path.into(),
        content_type,
        body: body.into(),
        code,
        reason,
    }
}

async fn must(raw: &Raw, method: &str, path: &str, body: Value, code: u16) -> Value {
    let bytes = if body.is_null() {
        Vec::new()
    } else {
        body.to_string().into_bytes()
    };
    let (got, value) = raw.json(method, path, JSON, bytes).await;
    assert_eq!(got, code, "{method} {path}: {value}");
    value
}

/// A kind the table writes to: its collection, one existing object, and a body for a name.
struct Target {
    collection: &'static str,
    existing: &'static str,
    object: fn(&str) -> Value,
}

fn pod(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
}
fn namespace(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
}
fn node(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}})
}
fn lease(name: &str) -> Value {
    json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": name}})
}

fn targets() -> Vec<Target> {
    vec![
        Target {
            collection: "/api/v1/namespaces/hostile/pods",
            existing: "p1",
            object: pod,
        },
        Target {
            collection: "/api/v1/namespaces",
            existing: "hostile",
            object: namespace,
        },
        Target {
            collection: "/api/v1/nodes",
            existing: "n1",
            object: node,
        },
        Target {
            collection: "/apis/coordination.k8s.io/v1/namespaces/hostile/leases",
            existing: "l1",
            object: lease,
        },
    ]
}

/// Every object of every kind, by kind/namespace/name, with its uid and resourceVersion.
async fn snapshot(raw: &Raw) -> BTreeMap<String, (String, String)> {
    let mut all = BTreeMap::new();
    for list in [
        "/api/v1/pods",
        "/api/v1/namespaces",
        "/api/v1/nodes",
        "/api/v1/events",
        "/apis/coordination.k8s.io/v1/leases",
    ] {
        let value = must(raw, "GET", list, Value::Null, 200).await;
        for item in value["items"].as_array().expect("items") {
            let meta = &item["metadata"];
            let key = format!(
                "{list}/{}/{}",
                meta["namespace"].as_str().unwrap_or(""),
                meta["name"].as_str().unwrap_or("")
            );
            let uid = meta["uid"].as_str().unwrap_or("").to_string();
            let rv = meta["resourceVersion"].as_str().unwrap_or("").to_string();
            all.insert(key, (uid, rv));
        }
    }
    all
}

fn bad_names(namespace_kind: bool) -> Vec<String> {
    let mut names: Vec<String> = [
        "Upper", "UPPER", "Bad_Name", "-lead", "trail-", "a b", "ünï",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    names.push("a".repeat(254));
    if namespace_kind {
        names.push("a.b".into());
        names.push("a".repeat(64));
    } else {
        names.push("a..b".into());
    }
    names
}

fn table() -> Vec<Case> {
    let mut cases = Vec::new();
    let targets = targets();

    // Bad names, for each kind, plain, Strict and dry-run: 422 before anything is stored.
    for t in &targets {
        for name in bad_names(t.collection == "/api/v1/namespaces") {
            for query in ["", "?fieldValidation=Strict", "?dryRun=All"] {
                let body = (t.object)(&name).to_string();
                cases.push(case(
                    "POST",
                    format!("{}{query}", t.collection),
                    JSON,
                    body,
                    422,
                ));
            }
        }
    }

    // Malformed bodies, as JSON and as YAML, to every create and update.
    let malformed: [&[u8]; 9] = [
        b"",
        b"{",
        b"[]",
        b"null",
        b"42",
        b"\"text\"",
        b"{\"metadata\":",
        b"\xff\xfe\x00",
        b"{]",
    ];
    for t in &targets {
        for body in malformed {
            for ct in [JSON, YAML] {
                cases.push(case("POST", t.collection, ct, body, 400));
                let path = format!("{}/{}", t.collection, t.existing);
                cases.push(case("PUT", path, ct, body, 400));
            }
        }
    }

    // Patches that are not documents of their type.
    for t in &targets {
        let path = format!("{}/{}", t.collection, t.existing);
        for ct in [MERGE, STRATEGIC, JSON_PATCH] {
            for body in [&b"{"[..], b"\xff", b"{]", b"{\"metadata\":"] {
                cases.push(case("PATCH", path.clone(), ct, body, 400));
            }
        }
    }

    // Wrong content types: 415 on every write.
    for t in &targets {
        let path = format!("{}/{}", t.collection, t.existing);
        let body = (t.object)(t.existing).to_string();
        for ct in [
            "text/plain",
            "application/xml",
            "image/png",
            "multipart/form-data",
        ] {
            cases.push(case("POST", t.collection, ct, body.clone(), 415));
            cases.push(case("PUT", path.clone(), ct, body.clone(), 415));
        }
        for ct in [JSON, YAML, "text/plain"] {
            cases.push(case("PATCH", path.clone(), ct, "{}", 415));
        }
    }

    // Unknown and duplicate fields under Strict: 400 (dry run or not).
    for t in &targets {
        for query in [
            "?fieldValidation=Strict",
            "?fieldValidation=Strict&dryRun=All",
        ] {
            let mut top = (t.object)("strict-x");
            top["bogus"] = json!(1);
            let mut meta = (t.object)("strict-x");
            meta["metadata"]["bogus"] = json!(1);
            for body in [top.to_string(), meta.to_string()] {
                cases.push(case(
                    "POST",
                    format!("{}{query}", t.collection),
                    JSON,
                    body,
                    400,
                ));
            }
            let dup = r#"{"apiVersion":"v1","metadata":{"name":"a","name":"b"}}"#;
            cases.push(case(
                "POST",
                format!("{}{query}", t.collection),
                JSON,
                dup,
                400,
            ));
            let mut unknown = (t.object)(t.existing);
            unknown["bogus"] = json!(1);
            cases.push(case(
                "PUT",
                format!("{}/{}{query}", t.collection, t.existing),
                JSON,
                unknown.to_string(),
                400,
            ));
        }
    }
    let mut cmd = pod("strict-cmd");
    cmd["spec"]["containers"][0]["cmd"] = json!(["sh"]);
    cases.push(case(
        "POST",
        "/api/v1/namespaces/hostile/pods?fieldValidation=Strict",
        JSON,
        cmd.to_string(),
        400,
    ));

    // Selectors, resourceVersions and list options that do not parse: 400, for list and watch.
    let collections = [
        "/api/v1/namespaces/hostile/pods",
        "/api/v1/pods",
        "/api/v1/namespaces",
        "/api/v1/nodes",
        "/api/v1/namespaces/hostile/events",
        "/apis/coordination.k8s.io/v1/namespaces/hostile/leases",
    ];
    let bad_queries = [
        "labelSelector=a%3D%3Db%3D%3Dc",
        "labelSelector=%3Dx",
        "labelSelector=a%20in%20(b",
        "labelSelector=!",
        "labelSelector=-a%3Db",
        "fieldSelector=spec.foo%3Dx",
        "fieldSelector=bogus.field%3D1",
        "resourceVersion=abc",
        "resourceVersion=-1",
        "limit=-1",
        "limit=abc",
        "timeoutSeconds=abc",
    ];
    for c in collections {
        for q in bad_queries {
            cases.push(case("GET", format!("{c}?{q}"), JSON, "", 400));
            if !q.starts_with("limit") {
                cases.push(case("GET", format!("{c}?watch=1&{q}"), JSON, "", 400));
            }
        }
        cases.push(case("GET", format!("{c}?watch=maybe"), JSON, "", 400));
    }

    // Options of every write verb.
    let long_manager = "m".repeat(129);
    let write_queries: Vec<(String, u16)> = vec![
        ("dryRun=Bogus".into(), 422),
        ("dryRun=all".into(), 422),
        ("dryRun=All&dryRun=Bogus".into(), 422),
        (format!("fieldManager={long_manager}"), 422),
        ("fieldManager=a%07b".into(), 422),
        ("fieldManager=a%0Ab".into(), 422),
        ("fieldValidation=Bogus".into(), 422),
    ];
    for t in &targets {
        let path = format!("{}/{}", t.collection, t.existing);
        for (q, code) in &write_queries {
            let fresh = (t.object)("opts-x").to_string();
            cases.push(case(
                "POST",
                format!("{}?{q}", t.collection),
                JSON,
                fresh,
                *code,
            ));
            let same = (t.object)(t.existing).to_string();
            cases.push(case("PUT", format!("{path}?{q}"), JSON, same, *code));
            cases.push(case("PATCH", format!("{path}?{q}"), MERGE, "{}", *code));
        }
        cases.push(case(
            "PATCH",
            format!("{path}?force=true"),
            MERGE,
            "{}",
            422,
        ));
        cases.push(case(
            "PATCH",
            format!("{path}?force=maybe"),
            MERGE,
            "{}",
            400,
        ));
    }

    // Options of a delete, in the query and in the body (the body wins).
    let delete_queries: [(&str, u16); 6] = [
        ("dryRun=Bogus", 422),
        ("dryRun=All&dryRun=Bogus", 422),
        ("propagationPolicy=Bogus", 422),
        ("gracePeriodSeconds=abc", 400),
        ("orphanDependents=maybe", 400),
        ("orphanDependents=true&propagationPolicy=Orphan", 422),
    ];
    let delete_bodies: [(Value, u16); 9] = [
        (json!({"dryRun": ["all"]}), 422),
        (json!({"dryRun": ["Bogus"]}), 422),
        (json!({"dryRun": ["All", "Bogus"]}), 422),
        (json!({"dryRun": "All"}), 400),
        (json!({"dryRun": [1]}), 400),
        (json!({"gracePeriodSeconds": "x"}), 400),
        (json!({"propagationPolicy": "Bogus"}), 422),
        (json!({"kind": "Pod", "apiVersion": "v1"}), 400),
        (json!({"preconditions": "x"}), 400),
    ];
    for t in &targets {
        let path = format!("{}/{}", t.collection, t.existing);
        for (q, code) in delete_queries {
            cases.push(case("DELETE", format!("{path}?{q}"), JSON, "", code));
        }
        for (body, code) in &delete_bodies {
            cases.push(case("DELETE", path.clone(), JSON, body.to_string(), *code));
            // A valid dryRun=All in the query does not rescue a bad body.
            cases.push(case(
                "DELETE",
                format!("{path}?dryRun=All"),
                JSON,
                body.to_string(),
                *code,
            ));
        }
        cases.push(case("DELETE", path.clone(), JSON, b"{".to_vec(), 400));
    }
    // The same for deletecollection where it exists.
    for c in [
        "/api/v1/namespaces/hostile/pods",
        "/api/v1/nodes",
        "/apis/coordination.k8s.io/v1/namespaces/hostile/leases",
    ] {
        for (body, code) in &delete_bodies {
            cases.push(case("DELETE", c, JSON, body.to_string(), *code));
        }
        cases.push(case("DELETE", format!("{c}?dryRun=Bogus"), JSON, "", 422));
    }

    // Bodies naming another namespace, name or kind than the URL.
    let mut other_ns = pod("ns-x");
    other_ns["metadata"]["namespace"] = json!("other");
    cases.push(case(
        "POST",
        "/api/v1/namespaces/hostile/pods",
        JSON,
        other_ns.to_string(),
        400,
    ));
    let mut other_ns = pod("p1");
    other_ns["metadata"]["namespace"] = json!("other");
    cases.push(case(
        "PUT",
        "/api/v1/namespaces/hostile/pods/p1",
        JSON,
        other_ns.to_string(),
        400,
    ));
    let mut other_lease = lease("lease-x");
    other_lease["metadata"]["namespace"] = json!("default");
    cases.push(case(
        "POST",
        "/apis/coordination.k8s.io/v1/namespaces/hostile/leases",
        JSON,
        other_lease.to_string(),
        400,
    ));
    for t in &targets {
        let path = format!("{}/{}", t.collection, t.existing);
        let renamed = (t.object)("someone-else").to_string();
        cases.push(case("PUT", path, JSON, renamed, 400));
    }
    for (kind, api_version) in [
        ("Node", "v1"),
        ("pod", "v1"),
        ("Pod", "v2"),
        ("Service", "v1"),
        ("Pod", "apps/v1"),
    ] {
        let mut body = pod("kind-x");
        body["kind"] = json!(kind);
        body["apiVersion"] = json!(api_version);
        cases.push(case(
            "POST",
            "/api/v1/namespaces/hostile/pods",
            JSON,
            body.to_string(),
            400,
        ));
    }

    // Items 1 and 2: no cluster-wide create or deletecollection of namespaced kinds, no
    // deletecollection of namespaces, no deleting the protected namespaces.
    for c in [
        "/api/v1/pods",
        "/api/v1/events",
        "/apis/coordination.k8s.io/v1/leases",
    ] {
        for q in [
            "",
            "?labelSelector=app%3Dx",
            "?dryRun=All",
            "?fieldSelector=metadata.name%3Dp1",
        ] {
            cases.push(case("DELETE", format!("{c}{q}"), JSON, "", 405));
        }
        cases.push(case("POST", c, JSON, pod("cw-x").to_string(), 405));
    }
    for q in [
        "",
        "?fieldSelector=metadata.name%3Ddefault",
        "?dryRun=All",
        "?labelSelector=kubernetes.io%2Fmetadata.name%3Dhostile",
    ] {
        cases.push(case(
            "DELETE",
            format!("/api/v1/namespaces{q}"),
            JSON,
            "",
            405,
        ));
    }
    for ns in ["default", "kube-system", "kube-public"] {
        for q in ["", "?dryRun=All", "?gracePeriodSeconds=0"] {
            cases.push(case(
                "DELETE",
                format!("/api/v1/namespaces/{ns}{q}"),
                JSON,
                "",
                403,
            ));
        }
    }
    cases.extend(later_classes());
    cases
}

/// Rows for the classes of issue 7's later items: patches that cannot apply, values upstream's
/// validation refuses, and list and watch options that do not parse or contradict each other.
fn later_classes() -> Vec<Case> {
    let mut cases = Vec::new();
    let p1 = "/api/v1/namespaces/hostile/pods/p1";
    // Strategic merge patches that cannot apply: 400; ones whose result does not decode: 422.
    for (body, code) in [
        (r#"{"$patch":"bogus"}"#, 400),
        (r#"{"spec":{"containers":[{"$patch":"delete"}]}}"#, 400),
        (
            r#"{"spec":{"containers":[{"$patch":"bogus","name":"c"}]}}"#,
            400,
        ),
        (r#"{"spec":{"containers":[{"image":"x"}]}}"#, 400),
        (r#"{"metadata":{"labels":{"$patch":"merge"}}}"#, 400),
        (r#"{"metadata":{"$retainKeys":"name"}}"#, 400),
        (r#"{"metadata":{"$setElementOrder/finalizers":"x"}}"#, 400),
        (
            r#"{"metadata":{"$deleteFromPrimitiveList/finalizers":"x"}}"#,
            422,
        ),
        (r#"{"metadata":{"$bogus":"x"}}"#, 422),
    ] {
        for q in [
            "?fieldValidation=Strict",
            "?fieldValidation=Strict&dryRun=All",
        ] {
            cases.push(case("PATCH", format!("{p1}{q}"), STRATEGIC, body, code));
        }
    }
    // A changed uid, by every patch type: 422 (field is immutable).
    let uid = "00000000-0000-0000-0000-000000000000";
    let uid_patch = json!({"metadata": {"uid": uid}}).to_string();
    cases.push(case("PATCH", p1, MERGE, uid_patch.clone(), 422));
    cases.push(case("PATCH", p1, STRATEGIC, uid_patch, 422));
    let json_patch = json!([{"op": "replace", "path": "/metadata/uid", "value": uid}]);
    cases.push(case("PATCH", p1, JSON_PATCH, json_patch.to_string(), 422));
    // Out-of-range IDs and unknown affinity operators: 422, also as a dry run.
    let mut invalid_pods = Vec::new();
    for field in ["runAsUser", "runAsGroup", "fsGroup"] {
        for id in [-1i64, 2147483648] {
            let mut body = pod("ids");
            body["spec"]["securityContext"] = json!({ field: id });
            invalid_pods.push(body);
        }
    }
    for field in ["runAsUser", "runAsGroup"] {
        let mut body = pod("ids");
        body["spec"]["containers"][0]["securityContext"] = json!({ field: -1 });
        invalid_pods.push(body);
    }
    for operator in ["Bogus", "in", "", "Equals"] {
        let mut body = pod("affinity");
        body["spec"]["affinity"] = json!({"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "zone", "operator": operator, "values": ["a"]}]}]}}});
        invalid_pods.push(body);
    }
    for body in invalid_pods {
        for q in ["", "?dryRun=All"] {
            let path = format!("/api/v1/namespaces/hostile/pods{q}");
            cases.push(case("POST", path, JSON, body.to_string(), 422));
        }
    }
    // Streaming subresources: options that do not parse or say nothing to do, a container
    // that is not there, a Pod on no node, a Pod that does not exist, other methods.
    for (method, query, code) in [
        ("POST", "exec?command=ls&stdout=maybe", 400),
        ("GET", "exec?command=ls&tty=yes&stdout=1", 400),
        ("POST", "exec?stdout=true", 400),
        ("POST", "exec?command=ls", 400),
        ("POST", "exec?command=ls&stdout=true&container=nope", 400),
        ("POST", "exec?command=ls&stdout=true", 400),
        ("POST", "attach?stdout=true&stdin=2", 400),
        ("POST", "attach?stdout=true", 400),
        ("POST", "portforward?ports=0", 400),
        ("POST", "portforward?ports=65536", 400),
        ("GET", "portforward?ports=http", 400),
        ("POST", "portforward?ports=80", 400),
        ("DELETE", "exec?command=ls&stdout=true", 405),
        ("PUT", "attach?stdout=true", 405),
        ("PATCH", "portforward?ports=80", 405),
    ] {
        cases.push(case(method, format!("{p1}/{query}"), JSON, "", code));
    }
    let ghost = "/api/v1/namespaces/hostile/pods/ghost/exec?command=ls&stdout=true";
    cases.push(case("POST", ghost, JSON, "", 404));
    // List and watch options: each on every collection.
    for t in targets() {
        for (query, code) in [
            ("resourceVersionMatch=Bogus&resourceVersion=1", 422),
            ("resourceVersionMatch=Exact", 422),
            ("resourceVersionMatch=NotOlderThan", 422),
            ("resourceVersionMatch=Exact&resourceVersion=0", 422),
            (
                "watch=true&resourceVersionMatch=Exact&resourceVersion=1",
                422,
            ),
            ("timeoutSeconds=abc", 400),
            ("watch=true&timeoutSeconds=abc", 400),
            ("limit=abc", 400),
            ("continue=not-a-token", 400),
            ("labelSelector=a%20in%20(b", 400),
            ("fieldSelector=metadata.name%3D%3D%3Dx", 400),
        ] {
            cases.push(case(
                "GET",
                format!("{}?{query}", t.collection),
                JSON,
                "",
                code,
            ));
        }
        let path = format!("{}/{}", t.collection, t.existing);
        for (query, code) in [
            ("propagationPolicy=Bogus", 422),
            ("dryRun=All&dryRun=Bogus", 422),
            ("gracePeriodSeconds=abc", 400),
        ] {
            cases.push(case("DELETE", format!("{path}?{query}"), JSON, "", code));
        }
        let long_manager = format!("fieldManager={}", "m".repeat(129));
        for query in [long_manager.as_str(), "fieldManager=a%07b"] {
            let path = format!("{path}?{query}");
            cases.push(case("PATCH", path, MERGE, "{}", 422));
        }
    }
    cases
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_requests_get_upstreams_answers_and_change_nothing() {
    let cluster = TestCluster::builder().start().await;
    let raw = admin(&cluster);
    must(
        &raw,
        "POST",
        "/api/v1/namespaces",
        namespace("hostile"),
        201,
    )
    .await;
    let mut p1 = pod("p1");
    p1["metadata"]["labels"] = json!({"app": "x"});
    must(&raw, "POST", "/api/v1/namespaces/hostile/pods", p1, 201).await;
    must(&raw, "POST", "/api/v1/nodes", node("n1"), 201).await;
    must(
        &raw,
        "POST",
        "/apis/coordination.k8s.io/v1/namespaces/hostile/leases",
        lease("l1"),
        201,
    )
    .await;
    let before = snapshot(&raw).await;

    let cases = table();
    assert!(cases.len() >= 300, "only {} cases", cases.len());
    let mut failures = Vec::new();
    for c in &cases {
        let (code, value) = raw
            .json(c.method, &c.path, c.content_type, c.body.clone())
            .await;
        let reason = value["reason"].as_str().unwrap_or("");
        if code != c.code || reason != c.reason {
            let body = String::from_utf8_lossy(&c.body);
            let shown: String = body.chars().take(120).collect();
            failures.push(format!(
                "{} {} [{}] {shown:?}: want {} {}, got {code} {value}",
                c.method, c.path, c.content_type, c.code, c.reason
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    // Oversized bodies: 413 on every write, answered before the body is read.
    for (method, path) in [
        ("POST", "/api/v1/namespaces/hostile/pods"),
        ("PUT", "/api/v1/namespaces/hostile/pods/p1"),
        ("PATCH", "/api/v1/namespaces/hostile/pods/p1"),
        ("DELETE", "/api/v1/namespaces/hostile/pods/p1"),
    ] {
        let line = raw.head_only(method, path, 3 * 1024 * 1024 + 1).await;
        assert!(line.starts_with("HTTP/1.1 413"), "{method} {path}: {line}");
    }
    let after = snapshot(&raw).await;
    assert_eq!(before, after, "the table changed what is stored");
}

async fn wait_for(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deleted_namespace_terminates_empties_and_never_returns_its_pods() {
    let cluster = TestCluster::builder().start().await;
    let raw = admin(&cluster);
    must(&raw, "POST", "/api/v1/namespaces", namespace("doomed"), 201).await;
    // A Pod bound to a node without a kubelet: its graceful deletion is never confirmed, so
    // the namespace has to wait for it.
    let mut bound = pod("bound");
    bound["spec"]["nodeName"] = json!("nowhere");
    must(&raw, "POST", "/api/v1/namespaces/doomed/pods", bound, 201).await;
    must(
        &raw,
        "POST",
        "/api/v1/namespaces/doomed/pods",
        pod("free"),
        201,
    )
    .await;
    must(
        &raw,
        "POST",
        "/apis/coordination.k8s.io/v1/namespaces/doomed/leases",
        lease("l"),
        201,
    )
    .await;

    let ns = must(
        &raw,
        "DELETE",
        "/api/v1/namespaces/doomed",
        Value::Null,
        200,
    )
    .await;
    assert_eq!(ns["status"]["phase"], "Terminating", "{ns}");
    assert!(ns["metadata"]["deletionTimestamp"].is_string(), "{ns}");
    assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]), "{ns}");

    let refused = must(
        &raw,
        "POST",
        "/api/v1/namespaces/doomed/pods",
        pod("late"),
        403,
    )
    .await;
    assert_eq!(
        refused["message"],
        "pods \"late\" is forbidden: unable to create new content in namespace doomed because it is being terminated"
    );
    assert_eq!(
        refused["details"]["causes"][0]["reason"],
        "NamespaceTerminating"
    );
    let again = must(
        &raw,
        "DELETE",
        "/api/v1/namespaces/doomed",
        Value::Null,
        409,
    )
    .await;
    assert_eq!(again["reason"], "Conflict");

    wait_for("the unbound pod and the lease to go", async || {
        let (_, pods) = raw
            .json("GET", "/api/v1/namespaces/doomed/pods", JSON, Vec::new())
            .await;
        let (_, leases) = raw
            .json(
                "GET",
                "/apis/coordination.k8s.io/v1/namespaces/doomed/leases",
                JSON,
                Vec::new(),
            )
            .await;
        pods["items"].as_array().map(Vec::len) == Some(1)
            && leases["items"].as_array().is_some_and(Vec::is_empty)
    })
    .await;
    // The namespace says what it waits on, in upstream's namespace deleter's conditions.
    let condition = |ns: &Value, kind: &str| {
        ns["status"]["conditions"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["type"] == kind).cloned())
            .unwrap_or(Value::Null)
    };
    wait_for("the namespace to report the Pod it waits on", async || {
        let (_, ns) = raw
            .json("GET", "/api/v1/namespaces/doomed", JSON, Vec::new())
            .await;
        condition(&ns, "NamespaceContentRemaining")["status"] == "True"
    })
    .await;
    let ns = must(&raw, "GET", "/api/v1/namespaces/doomed", Value::Null, 200).await;
    let remaining = condition(&ns, "NamespaceContentRemaining");
    assert_eq!(remaining["reason"], "SomeResourcesRemain");
    assert_eq!(
        remaining["message"],
        "Some resources are remaining: pods. has 1 resource instances"
    );
    assert!(remaining["lastTransitionTime"].is_string(), "{remaining}");
    for (kind, reason, message) in [
        (
            "NamespaceDeletionDiscoveryFailure",
            "ResourcesDiscovered",
            "All resources successfully discovered",
        ),
        (
            "NamespaceDeletionContentFailure",
            "ContentDeleted",
            "All content successfully deleted, may be waiting on finalization",
        ),
        (
            "NamespaceFinalizersRemaining",
            "ContentHasNoFinalizers",
            "All content-preserving finalizers finished",
        ),
    ] {
        let c = condition(&ns, kind);
        assert_eq!(
            (
                c["status"].as_str(),
                c["reason"].as_str(),
                c["message"].as_str()
            ),
            (Some("False"), Some(reason), Some(message)),
            "{kind}: {c}"
        );
    }

    // Once the last Pod is gone, the namespace goes too.
    must(
        &raw,
        "DELETE",
        "/api/v1/namespaces/doomed/pods/bound",
        json!({"gracePeriodSeconds": 0}),
        200,
    )
    .await;
    wait_for("the namespace to go", async || {
        raw.json("GET", "/api/v1/namespaces/doomed", JSON, Vec::new())
            .await
            .0
            == 404
    })
    .await;
    must(&raw, "POST", "/api/v1/namespaces", namespace("doomed"), 201).await;
    let pods = must(
        &raw,
        "GET",
        "/api/v1/namespaces/doomed/pods",
        Value::Null,
        200,
    )
    .await;
    assert_eq!(
        pods["items"],
        json!([]),
        "a re-created namespace shows old pods"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_delete_options_delete_nothing_and_collections_stay_namespaced() {
    let cluster = TestCluster::builder().start().await;
    let raw = admin(&cluster);
    for ns in ["a", "b"] {
        must(&raw, "POST", "/api/v1/namespaces", namespace(ns), 201).await;
        let mut p = pod("p");
        p["metadata"]["labels"] = json!({"app": "x"});
        must(
            &raw,
            "POST",
            &format!("/api/v1/namespaces/{ns}/pods"),
            p,
            201,
        )
        .await;
    }
    let gone = must(
        &raw,
        "DELETE",
        "/api/v1/pods?labelSelector=app%3Dx",
        Value::Null,
        405,
    )
    .await;
    assert_eq!(
        gone["message"],
        "the server does not allow this method on the requested resource"
    );
    for body in [json!({"dryRun": ["all"]}), json!({"dryRun": ["Bogus"]})] {
        let err = must(&raw, "DELETE", "/api/v1/namespaces/a/pods/p", body, 422).await;
        assert_eq!(err["details"]["kind"], "DeleteOptions", "{err}");
    }
    must(
        &raw,
        "DELETE",
        "/api/v1/namespaces/a/pods/p",
        json!({"dryRun": "All"}),
        400,
    )
    .await;
    // Upstream's label parser reads `a in ()` as "a is the empty string": accepted.
    let listed = must(
        &raw,
        "GET",
        "/api/v1/pods?labelSelector=a%20in%20()",
        Value::Null,
        200,
    )
    .await;
    assert_eq!(listed["items"], json!([]));
    // A namespaced deletecollection only touches its namespace.
    must(
        &raw,
        "DELETE",
        "/api/v1/namespaces/a/pods?labelSelector=app%3Dx",
        Value::Null,
        200,
    )
    .await;
    must(&raw, "GET", "/api/v1/namespaces/a/pods/p", Value::Null, 404).await;
    must(&raw, "GET", "/api/v1/namespaces/b/pods/p", Value::Null, 200).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_object_is_named_in_the_404_and_kubectl_debug_reports_it() {
    let cluster = TestCluster::builder().start().await;
    let raw = admin(&cluster);
    let err = must(
        &raw,
        "GET",
        "/api/v1/namespaces/default/pods/missing",
        Value::Null,
        404,
    )
    .await;
    assert_eq!(err["details"], json!({"name": "missing", "kind": "pods"}));
    let err = must(
        &raw,
        "GET",
        "/apis/coordination.k8s.io/v1/namespaces/default/leases/missing",
        Value::Null,
        404,
    )
    .await;
    assert_eq!(
        err["details"],
        json!({"name": "missing", "group": "coordination.k8s.io", "kind": "leases"})
    );
    let out = cluster.kubectl(&["debug", "missing", "--image=busybox", "-n", "default"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("pods \"missing\" not found"), "{stderr}");
    assert!(!stderr.contains("panic"), "{stderr}");
}
