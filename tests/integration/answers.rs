//! Wrong answers: patches that cannot apply, values upstream refuses, identity changes, and huge
//! quantities, each answered with kube-apiserver's code, reason and message.

use serde_json::{json, Value};

use crate::harness::TestCluster;
use crate::raw::{admin, Raw};

const PODS: &str = "/api/v1/namespaces/default/pods";
const SMP: &str = "application/strategic-merge-patch+json";
const MERGE: &str = "application/merge-patch+json";
const JSON_PATCH: &str = "application/json-patch+json";

fn pod_with(name: &str, spec: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "finalizers": ["example.com/keep"]}, "spec": spec}))
    .expect("JSON")
}

fn plain_spec() -> Value {
    json!({"containers": [{"name": "c", "image": "busybox:1"}]})
}

async fn create_pod(api: &Raw, name: &str) -> Value {
    let (code, body) = api
        .json(
            "POST",
            PODS,
            "application/json",
            pod_with(name, plain_spec()),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    body
}

async fn get_pod(api: &Raw, name: &str) -> Value {
    let (code, body) = api.json("GET", &format!("{PODS}/{name}"), "", vec![]).await;
    assert_eq!(code, 200, "{body}");
    body
}

/// Removes the finalizer the test Pods carry, so that the cluster's teardown is not held up.
async fn release(api: &Raw, name: &str) {
    let (code, body) = api
        .json(
            "PATCH",
            &format!("{PODS}/{name}"),
            MERGE,
            br#"{"metadata":{"finalizers":null}}"#.to_vec(),
        )
        .await;
    assert_eq!(code, 200, "{body}");
}

#[tokio::test]
async fn strategic_merge_patches_that_cannot_apply_are_client_errors() {
    let cluster = TestCluster::builder().start().await;
    let api = admin(&cluster);
    let before = create_pod(&api, "keep").await;
    let path = format!("{PODS}/keep?fieldValidation=Strict");

    // (body, code, reason, message)
    let cases: Vec<(&str, u16, &str, &str)> = vec![
        (
            r#"{"$patch":"bogus"}"#,
            400,
            "BadRequest",
            "unknown patch type: bogus in map: map[$patch:bogus]",
        ),
        (
            r#"{"spec":{"containers":[{"$patch":"delete"}]}}"#,
            400,
            "BadRequest",
            "map: map[$patch:delete] does not contain declared merge key: name",
        ),
        (
            r#"{"spec":{"containers":[{"$patch":"bogus","name":"c"}]}}"#,
            400,
            "BadRequest",
            "unknown patch type: bogus in map: map[$patch:bogus name:c]",
        ),
        (
            r#"{"spec":{"containers":[{"image":"x"}]}}"#,
            400,
            "BadRequest",
            "map: map[image:x] does not contain declared merge key: name",
        ),
        (
            r#"{"metadata":{"labels":{"$patch":"merge","a":"b"}}}"#,
            400,
            "BadRequest",
            "unknown patch type: merge in map: map[$patch:merge a:b]",
        ),
        (
            r#"{"spec":{"containers":[{"$patch":"merge","name":"c"}]}}"#,
            400,
            "BadRequest",
            "merging lists cannot yet be specified in the patch",
        ),
        (
            r#"{"metadata":{"$retainKeys":"name"}}"#,
            400,
            "BadRequest",
            "invalid patch format of retainKeys",
        ),
        (
            r#"{"metadata":{"$setElementOrder/finalizers":"x"}}"#,
            400,
            "BadRequest",
            "invalid patch format of setElementOrder list",
        ),
        (
            r#"{"metadata":{"$deleteFromPrimitiveList/finalizers":"example.com/keep"}}"#,
            422,
            "Invalid",
            "",
        ),
        (
            r#"{"metadata":{"$bogus":"x"}}"#,
            422,
            "Invalid",
            " \"\" is invalid: patch: Invalid value: \"map[metadata:map[$bogus:x]]\": strict decoding error: unknown field \"metadata.$bogus\"",
        ),
        (
            r#"{"metadata":{"labels":"invalid"}}"#,
            422,
            "Invalid",
            " \"\" is invalid: patch: Invalid value: \"map[metadata:map[labels:invalid]]\": cannot restore map from string",
        ),
    ];
    for (body, code, reason, message) in cases {
        let (got, status) = api.json("PATCH", &path, SMP, body.into()).await;
        assert_eq!(got, code, "{body}: {status}");
        assert_eq!(status["reason"], reason, "{body}: {status}");
        if !message.is_empty() {
            assert_eq!(status["message"], message, "{body}");
        }
        if code == 422 {
            assert_eq!(status["details"]["causes"][0]["field"], "patch", "{status}");
        }
    }

    // The same through kubectl, which prints the server's reason and message.
    let stderr = cluster.kubectl_err(&["patch", "pod", "keep", "-p", r#"{"$patch":"bogus"}"#]);
    assert!(
        stderr.contains("Error from server (BadRequest): unknown patch type: bogus"),
        "{stderr}"
    );
    let stderr = cluster.kubectl_err(&[
        "patch",
        "pod",
        "keep",
        "-p",
        r#"{"spec":{"containers":[{"$patch":"delete"}]}}"#,
    ]);
    assert!(
        stderr.contains("does not contain declared merge key: name"),
        "{stderr}"
    );
    // Upstream's kubectl command test: a label map given as a string.
    let stderr = cluster.kubectl_err(&[
        "patch",
        "pod",
        "keep",
        "-p",
        r#"{"metadata":{"labels":"invalid"}}"#,
    ]);
    assert!(
        stderr.contains("cannot restore map from string"),
        "{stderr}"
    );

    // Nothing was written by any of them.
    let after = get_pod(&api, "keep").await;
    assert_eq!(
        after["metadata"]["resourceVersion"],
        before["metadata"]["resourceVersion"]
    );
    release(&api, "keep").await;
}

#[tokio::test]
async fn identity_metadata_cannot_be_changed_by_patch_or_update() {
    let cluster = TestCluster::builder().start().await;
    let api = admin(&cluster);
    let before = create_pod(&api, "keep").await;
    let uid = before["metadata"]["uid"].as_str().expect("uid").to_string();
    let other = "00000000-0000-0000-0000-000000000001";
    let path = format!("{PODS}/keep");
    let immutable = format!(
        "Pod \"keep\" is invalid: metadata.uid: Invalid value: \"{other}\": field is immutable"
    );

    let merge = json!({"metadata": {"uid": other}}).to_string();
    let json_patch =
        json!([{"op": "replace", "path": "/metadata/uid", "value": other}]).to_string();
    for (content_type, body) in [(MERGE, &merge), (JSON_PATCH, &json_patch), (SMP, &merge)] {
        let (code, status) = api
            .json("PATCH", &path, content_type, body.clone().into_bytes())
            .await;
        assert_eq!(code, 422, "{content_type}: {status}");
        assert_eq!(status["reason"], "Invalid");
        assert_eq!(status["message"], immutable.as_str());
        assert_eq!(status["details"]["causes"][0]["field"], "metadata.uid");
    }
    let stderr = cluster.kubectl_err(&["patch", "pod", "keep", "--type=merge", "-p", &merge]);
    assert!(stderr.contains("field is immutable"), "{stderr}");

    // A full update naming another UID fails its precondition.
    let mut replaced = get_pod(&api, "keep").await;
    replaced["metadata"]["uid"] = json!(other);
    let (code, status) = api
        .json(
            "PUT",
            &path,
            "application/json",
            serde_json::to_vec(&replaced).expect("JSON"),
        )
        .await;
    assert_eq!(code, 409, "{status}");
    assert_eq!(status["reason"], "Conflict");
    assert_eq!(
        status["message"],
        format!("Operation cannot be fulfilled on pods \"keep\": Precondition failed: UID in precondition: {other}, UID in object meta: {uid}")
    );

    // Name and namespace are checked against the URL.
    let (code, status) = api
        .json(
            "PATCH",
            &path,
            MERGE,
            br#"{"metadata":{"name":"x"}}"#.to_vec(),
        )
        .await;
    assert_eq!(code, 400, "{status}");
    assert_eq!(
        status["message"],
        "the name of the object (x) does not match the name on the URL (keep)"
    );
    let (code, status) = api
        .json(
            "PATCH",
            &path,
            MERGE,
            br#"{"metadata":{"namespace":"kube-system"}}"#.to_vec(),
        )
        .await;
    assert_eq!(code, 400, "{status}");
    assert_eq!(
        status["message"],
        "the namespace of the object (kube-system) does not match the namespace on the request (default)"
    );

    // The creation timestamp is system-owned: upstream keeps the stored one and says nothing.
    let (code, patched) = api
        .json(
            "PATCH",
            &path,
            MERGE,
            br#"{"metadata":{"creationTimestamp":"2001-01-01T00:00:00Z"}}"#.to_vec(),
        )
        .await;
    assert_eq!(code, 200, "{patched}");
    assert_eq!(
        patched["metadata"]["creationTimestamp"],
        before["metadata"]["creationTimestamp"]
    );

    let after = get_pod(&api, "keep").await;
    assert_eq!(after["metadata"]["uid"], uid.as_str());
    assert_eq!(after["metadata"]["namespace"], "default");
    release(&api, "keep").await;
}

#[tokio::test]
async fn ids_out_of_range_and_unknown_affinity_operators_are_invalid() {
    let cluster = TestCluster::builder().start().await;
    let api = admin(&cluster);
    let range = "must be between 0 and 2147483647, inclusive";
    let term = "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0]";
    let cases: Vec<(Value, String, &str)> = vec![
        (
            json!({"securityContext": {"runAsUser": -1}, "containers": [{"name": "c", "image": "i"}]}),
            format!("spec.securityContext.runAsUser: Invalid value: -1: {range}"),
            "spec.securityContext.runAsUser",
        ),
        (
            json!({"securityContext": {"runAsGroup": -1}, "containers": [{"name": "c", "image": "i"}]}),
            format!("spec.securityContext.runAsGroup: Invalid value: -1: {range}"),
            "spec.securityContext.runAsGroup",
        ),
        (
            json!({"securityContext": {"fsGroup": -1}, "containers": [{"name": "c", "image": "i"}]}),
            format!("spec.securityContext.fsGroup: Invalid value: -1: {range}"),
            "spec.securityContext.fsGroup",
        ),
        (
            json!({"containers": [{"name": "c", "image": "i", "securityContext": {"runAsUser": -1}}]}),
            format!("spec.containers[0].securityContext.runAsUser: Invalid value: -1: {range}"),
            "spec.containers[0].securityContext.runAsUser",
        ),
        (
            json!({"containers": [{"name": "c", "image": "i", "securityContext": {"runAsGroup": 2147483648i64}}]}),
            format!(
                "spec.containers[0].securityContext.runAsGroup: Invalid value: 2147483648: {range}"
            ),
            "spec.containers[0].securityContext.runAsGroup",
        ),
        (
            json!({"containers": [{"name": "c", "image": "i"}], "affinity": {"nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "zone", "operator": "Bogus", "values": ["a"]}]}]}}}}),
            format!("{term}.operator: Invalid value: \"Bogus\": not a valid selector operator"),
            "",
        ),
    ];
    for (i, (spec, message, field)) in cases.into_iter().enumerate() {
        let name = format!("bad-{i}");
        let body = serde_json::to_vec(&json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name}, "spec": spec}))
        .expect("JSON");
        let (code, status) = api.json("POST", PODS, "application/json", body).await;
        assert_eq!(code, 422, "{status}");
        assert_eq!(status["reason"], "Invalid");
        assert_eq!(
            status["message"],
            format!("Pod \"{name}\" is invalid: {message}")
        );
        let field = if field.is_empty() {
            format!("{term}.operator")
        } else {
            field.to_string()
        };
        assert_eq!(status["details"]["causes"][0]["field"], field.as_str());
    }

    // kubectl shows the same refusal, and a patch cannot smuggle the value in either.
    let manifest = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"via-kubectl"},
        "spec":{"securityContext":{"runAsUser":-1},"containers":[{"name":"c","image":"i"}]}}"#;
    let out = cluster.kubectl_stdin(&["create", "-f", "-"], Some(manifest));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "spec.securityContext.runAsUser: Invalid value: -1: {range}"
        )),
        "{stderr}"
    );
    create_pod(&api, "keep").await;
    let stderr = cluster.kubectl_err(&[
        "patch",
        "pod",
        "keep",
        "-p",
        r#"{"spec":{"containers":[{"name":"c","securityContext":{"runAsUser":-1}}]}}"#,
    ]);
    assert!(stderr.contains("Pod \"keep\" is invalid"), "{stderr}");
    let stored = get_pod(&api, "keep").await;
    assert!(stored["spec"]["containers"][0]["securityContext"].is_null());

    let (code, list) = api.json("GET", PODS, "", vec![]).await;
    assert_eq!(code, 200);
    let names: Vec<&str> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|p| p["metadata"]["name"].as_str())
        .collect();
    assert_eq!(names, ["keep"]);
    release(&api, "keep").await;
}

#[tokio::test]
async fn huge_quantities_are_stored_as_upstream_parses_them() {
    let cluster = TestCluster::builder().start().await;
    let api = admin(&cluster);
    // Binary-suffixed quantities are capped at 2^63-1 by upstream's ParseQuantity; decimal ones
    // are arbitrary precision there and written back in canonical form.
    let cases = [
        (
            "binary",
            "99999999999999999999999999Ei",
            "9223372036854775807",
        ),
        (
            "decimal",
            "99999999999999999999999999E",
            "99999999999999999999999999E",
        ),
        ("exponent", "1e400", "10e399"),
    ];
    for (name, written, stored) in cases {
        let spec = json!({"containers": [{"name": "c", "image": "busybox:1",
            "resources": {"limits": {"memory": written}}}]});
        let body = serde_json::to_vec(&json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name}, "spec": spec}))
        .expect("JSON");
        let (code, created) = api.json("POST", PODS, "application/json", body).await;
        assert_eq!(code, 201, "{written}: {created}");
        let resources = &get_pod(&api, name).await["spec"]["containers"][0]["resources"];
        assert_eq!(resources["limits"]["memory"], stored, "{written}");
        // Requests default to the limits, as upstream's defaulting copies them.
        assert_eq!(resources["requests"]["memory"], stored, "{written}");
        let shown = cluster.kubectl_ok(&[
            "get",
            "pod",
            name,
            "-o",
            "jsonpath={.spec.containers[0].resources.limits.memory}",
        ]);
        assert_eq!(shown, stored);
    }

    let spec = json!({"containers": [{"name": "c", "image": "busybox:1",
        "resources": {"limits": {"memory": "1Gb"}}}]});
    let body = serde_json::to_vec(&json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "malformed"}, "spec": spec}))
    .expect("JSON");
    let (code, status) = api.json("POST", PODS, "application/json", body).await;
    assert_eq!(code, 400, "{status}");
    assert_eq!(
        status["message"],
        "Pod in version \"v1\" cannot be handled as a Pod: quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
    );
}
