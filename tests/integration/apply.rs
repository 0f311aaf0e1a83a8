//! `metadata.managedFields` as stock kubectl's commands leave it (upstream test/cmd `core.sh`
//! `run_pod_tests` and `apply.sh` check the same managers).

use serde_json::Value;

use crate::harness::TestCluster;

const POD: &str = "apiVersion: v1
kind: Pod
metadata:
  name: valid-pod
  labels:
    name: valid-pod
spec:
  containers:
  - name: kubernetes-serve-hostname
    image: registry.k8s.io/serve_hostname
";

fn managers(cluster: &TestCluster, pod: &str) -> String {
    cluster.kubectl_ok(&[
        "get",
        "pod",
        pod,
        "-o",
        "jsonpath={.metadata.managedFields[*].manager}",
    ])
}

fn pod_json(cluster: &TestCluster, pod: &str) -> Value {
    let out = cluster.kubectl_ok(&["get", "pod", pod, "-o", "json", "--show-managed-fields"]);
    serde_json::from_str(&out).expect("kubectl prints JSON")
}

fn fields_of(pod: &Value, manager: &str) -> Value {
    pod["metadata"]["managedFields"]
        .as_array()
        .and_then(|entries| entries.iter().find(|e| e["manager"] == manager))
        .map(|e| e["fieldsV1"].clone())
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn kubectl_create_label_patch_and_replace_each_record_their_manager() {
    let cluster = TestCluster::builder().start().await;
    cluster.kubectl_stdin(&["create", "-f", "-"], Some(POD));
    assert_eq!(managers(&cluster, "valid-pod"), "kubectl-create");
    let created = pod_json(&cluster, "valid-pod");
    let entry = &created["metadata"]["managedFields"][0];
    assert_eq!(entry["operation"], "Update");
    assert_eq!(entry["apiVersion"], "v1");
    assert_eq!(entry["fieldsType"], "FieldsV1");
    assert!(entry["time"].as_str().is_some_and(|t| t.ends_with('Z')));
    let fields = &entry["fieldsV1"];
    assert_eq!(
        fields["f:metadata"],
        serde_json::json!({"f:labels": {".": {}, "f:name": {}}})
    );
    let container = &fields["f:spec"]["f:containers"]["k:{\"name\":\"kubernetes-serve-hostname\"}"];
    assert!(
        container.get(".").is_some() && container.get("f:image").is_some(),
        "{fields}"
    );
    assert!(fields.get("f:status").is_none(), "{fields}");
    // The scheme's defaults are the creator's; what admission adds is nobody's.
    for defaulted in ["f:dnsPolicy", "f:restartPolicy", "f:schedulerName"] {
        assert!(
            fields["f:spec"].get(defaulted).is_some(),
            "{defaulted} in {fields}"
        );
    }
    assert!(container.get("f:imagePullPolicy").is_some(), "{fields}");
    for admitted in ["f:priority", "f:tolerations", "f:serviceAccountName"] {
        assert!(
            fields["f:spec"].get(admitted).is_none(),
            "{admitted} in {fields}"
        );
    }

    cluster.kubectl_ok(&["label", "pods", "valid-pod", "new-name=new-valid-pod"]);
    assert_eq!(
        managers(&cluster, "valid-pod"),
        "kubectl-create kubectl-label"
    );
    assert_eq!(
        fields_of(&pod_json(&cluster, "valid-pod"), "kubectl-label"),
        serde_json::json!({"f:metadata": {"f:labels": {"f:new-name": {}}}})
    );

    cluster.kubectl_ok(&[
        "patch",
        "pod",
        "valid-pod",
        "-p",
        r#"{"spec":{"containers":[{"name":"kubernetes-serve-hostname","image":"nginx"}]}}"#,
    ]);
    assert_eq!(
        managers(&cluster, "valid-pod"),
        "kubectl-create kubectl-label kubectl-patch"
    );
    let patched = pod_json(&cluster, "valid-pod");
    let image_owner = |pod: &Value, manager: &str| {
        fields_of(pod, manager)["f:spec"]["f:containers"]
            ["k:{\"name\":\"kubernetes-serve-hostname\"}"]
            .get("f:image")
            .is_some()
    };
    assert!(image_owner(&patched, "kubectl-patch"));
    assert!(
        !image_owner(&patched, "kubectl-create"),
        "the patch took the image over"
    );

    let replaced = cluster
        .kubectl_ok(&["get", "pod", "valid-pod", "-o", "json"])
        .replace("\"new-valid-pod\"", "\"replaced\"");
    let out = cluster.kubectl_stdin(&["replace", "-f", "-"], Some(&replaced));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        managers(&cluster, "valid-pod"),
        "kubectl-create kubectl-patch kubectl-replace"
    );
}

#[tokio::test]
async fn client_side_apply_records_its_manager_and_an_empty_list_resets() {
    let cluster = TestCluster::builder().start().await;
    let out = cluster.kubectl_stdin(&["apply", "-f", "-"], Some(POD));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(managers(&cluster, "valid-pod"), "kubectl-client-side-apply");
    let changed = POD.replace(
        "name: valid-pod\nspec",
        "name: valid-pod\n    tier: web\nspec",
    );
    let out = cluster.kubectl_stdin(&["apply", "-f", "-"], Some(&changed));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(managers(&cluster, "valid-pod"), "kubectl-client-side-apply");
    let fields = fields_of(
        &pod_json(&cluster, "valid-pod"),
        "kubectl-client-side-apply",
    );
    assert!(
        fields["f:metadata"]["f:labels"].get("f:tier").is_some(),
        "{fields}"
    );

    // An empty list resets the field, and the object is no longer tracked (as upstream).
    cluster.kubectl_ok(&[
        "patch",
        "pod",
        "valid-pod",
        "--type",
        "merge",
        "-p",
        r#"{"metadata":{"managedFields":[]}}"#,
    ]);
    assert_eq!(managers(&cluster, "valid-pod"), "");
    cluster.kubectl_ok(&["label", "pods", "valid-pod", "more=yes"]);
    assert_eq!(managers(&cluster, "valid-pod"), "");
}

fn kubectl_in(cluster: &TestCluster, args: &[&str], manifest: &str) -> std::process::Output {
    cluster.kubectl_stdin(args, Some(manifest))
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn kubectl_server_side_apply_creates_updates_conflicts_and_forces() {
    let cluster = TestCluster::builder().start().await;
    let apply = ["apply", "--server-side", "-f", "-"];
    let out = kubectl_in(&cluster, &apply, POD);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "pod/valid-pod serverside-applied");
    let pod = pod_json(&cluster, "valid-pod");
    let entry = &pod["metadata"]["managedFields"][0];
    assert_eq!(
        (&entry["manager"], &entry["operation"]),
        (&"kubectl".into(), &"Apply".into())
    );
    assert_eq!(
        entry["fieldsV1"]["f:metadata"],
        serde_json::json!({"f:labels": {"f:name": {}}})
    );

    // Applying again with a label changed and one added updates the Pod.
    let changed = POD.replace(
        "name: valid-pod\nspec",
        "name: changed\n    tier: web\nspec",
    );
    let out = kubectl_in(&cluster, &apply, &changed);
    assert!(out.status.success(), "{}", stderr(&out));
    let labels = cluster.kubectl_ok(&[
        "get",
        "pod",
        "valid-pod",
        "-o",
        "jsonpath={.metadata.labels}",
    ]);
    assert_eq!(labels, r#"{"name":"changed","tier":"web"}"#);

    // `kubectl diff --server-side` shows what an apply would change, and changes nothing.
    let out = kubectl_in(&cluster, &["diff", "--server-side", "-f", "-"], POD);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let diff = stdout(&out);
    assert!(
        diff.contains("-    name: changed") && diff.contains("+    name: valid-pod"),
        "{diff}"
    );
    assert!(diff.contains("-    tier: web"), "{diff}");
    let labels = cluster.kubectl_ok(&[
        "get",
        "pod",
        "valid-pod",
        "-o",
        "jsonpath={.metadata.labels}",
    ]);
    assert_eq!(labels, r#"{"name":"changed","tier":"web"}"#);

    // Another manager setting a field kubectl applied to another value conflicts.
    let other = ["apply", "--server-side", "--field-manager=other", "-f", "-"];
    let out = kubectl_in(&cluster, &other, POD);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(
            r#"Apply failed with 1 conflict: conflict with "kubectl": .metadata.labels.name"#
        ),
        "{}",
        stderr(&out)
    );
    // An update (kubectl label) is never refused: it takes the field over; kubectl's next
    // apply then conflicts with it, and forcing takes the field back.
    cluster.kubectl_ok(&["label", "pod", "valid-pod", "name=labelled", "--overwrite"]);
    let out = kubectl_in(&cluster, &apply, &changed);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(r#"conflict with "kubectl-label" using v1: .metadata.labels.name"#),
        "{}",
        stderr(&out)
    );
    let forced = ["apply", "--server-side", "--force-conflicts", "-f", "-"];
    let out = kubectl_in(&cluster, &forced, &changed);
    assert!(out.status.success(), "{}", stderr(&out));
    let labels = cluster.kubectl_ok(&[
        "get",
        "pod",
        "valid-pod",
        "-o",
        "jsonpath={.metadata.labels}",
    ]);
    assert_eq!(labels, r#"{"name":"changed","tier":"web"}"#);
    assert_eq!(managers(&cluster, "valid-pod"), "kubectl");

    // A server-side dry run changes nothing; cluster-scoped kinds apply as well.
    let out = kubectl_in(
        &cluster,
        &["apply", "--server-side", "--dry-run=server", "-f", "-"],
        POD,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out).trim(),
        "pod/valid-pod serverside-applied (server dry run)"
    );
    let ns =
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: applied\n  labels:\n    team: a\n";
    let out = kubectl_in(&cluster, &apply, ns);
    assert!(out.status.success(), "{}", stderr(&out));
    let got = cluster.kubectl_ok(&[
        "get",
        "ns",
        "applied",
        "-o",
        "jsonpath={.metadata.labels.team} {.status.phase}",
    ]);
    assert_eq!(got, "a Active");

    // Dropping a label from the configuration removes it from the Pod.
    let out = kubectl_in(&cluster, &apply, POD);
    assert!(out.status.success(), "{}", stderr(&out));
    let labels = cluster.kubectl_ok(&[
        "get",
        "pod",
        "valid-pod",
        "-o",
        "jsonpath={.metadata.labels}",
    ]);
    assert_eq!(labels, r#"{"name":"valid-pod"}"#);
}

#[tokio::test]
async fn the_first_server_side_apply_takes_over_from_client_side_apply() {
    let cluster = TestCluster::builder().start().await;
    let out = kubectl_in(&cluster, &["apply", "-f", "-"], POD);
    assert!(out.status.success(), "{}", stderr(&out));
    let changed = POD.replace("name: valid-pod\nspec", "name: changed\nspec");
    let out = kubectl_in(&cluster, &["apply", "--server-side", "-f", "-"], &changed);
    assert!(out.status.success(), "{}", stderr(&out));
    let pod = pod_json(&cluster, "valid-pod");
    assert_eq!(pod["metadata"]["labels"]["name"], "changed");
    let last = pod["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
        .as_str()
        .expect("the annotation is kept");
    let last: Value = serde_json::from_str(last).expect("JSON");
    assert_eq!(last["metadata"]["labels"]["name"], "changed");
    // kubectl then moves what client-side apply owned to its own entry, and the annotation to
    // `kubectl-last-applied` (its client-side migration, a JSON patch of managedFields).
    // Both are `Apply` entries, ordered by time, so by whichever second each landed in.
    let names = managers(&cluster, "valid-pod");
    let mut names: Vec<&str> = names.split_whitespace().collect();
    names.sort();
    assert_eq!(names, ["kubectl", "kubectl-last-applied"]);
    let mine = fields_of(&pod, "kubectl");
    assert!(mine["f:spec"]["f:containers"].is_object(), "{mine}");
}

#[tokio::test]
async fn apply_requires_a_field_manager_and_force_needs_apply() {
    let cluster = TestCluster::builder().start().await;
    let raw = crate::raw::admin(&cluster);
    let path = "/api/v1/namespaces/default/pods/p";
    let body = br#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"i"}]}}"#;
    let (code, status) = raw
        .json("PATCH", path, "application/apply-patch+yaml", body.to_vec())
        .await;
    assert_eq!(code, 422, "{status}");
    assert_eq!(
        status["message"],
        r#"PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch"#
    );
    let (code, status) = raw
        .json(
            "PATCH",
            &format!("{path}?force=true"),
            "application/merge-patch+json",
            b"{}".to_vec(),
        )
        .await;
    assert_eq!(code, 422, "{status}");
    let (code, status) = raw
        .json(
            "PATCH",
            &format!("{path}?fieldManager=m&dryRun=All"),
            "application/apply-patch+yaml",
            body.to_vec(),
        )
        .await;
    assert_eq!(code, 201, "{status}");
    assert_eq!(status["metadata"]["managedFields"][0]["operation"], "Apply");
    let (code, _) = raw.json("GET", path, "application/json", Vec::new()).await;
    assert_eq!(code, 404, "a dry run creates nothing");
    let (code, status) = raw
        .json(
            "PATCH",
            &format!("{path}?fieldManager=m"),
            "application/apply-patch+yaml",
            b"kind: Node\napiVersion: v1\n".to_vec(),
        )
        .await;
    assert_eq!(
        (code, &status["message"]),
        (400, &"invalid object type: /v1, Kind=Node".into())
    );
    let apply_as = |manager: &str, body: &[u8]| {
        let (raw, body) = (&raw, body.to_vec());
        let path = format!("{path}?fieldManager={manager}");
        async move {
            raw.json("PATCH", &path, "application/apply-patch+yaml", body)
                .await
        }
    };
    let (code, status) = apply_as("m", b"{").await;
    assert_eq!(code, 400, "{status}");
    assert!(
        status["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("error decoding YAML: ")),
        "{status}"
    );
    let with_managed =
        br#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","managedFields":[]}}"#;
    let (code, status) = apply_as("m", with_managed).await;
    assert_eq!(
        (code, &status["message"]),
        (400, &"metadata.managedFields must be nil".into())
    );

    // A conflict is a 409 whose causes name the manager and the field.
    let yaml = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: c\n    image: i\n";
    let (code, status) = apply_as("first", yaml.as_bytes()).await;
    assert_eq!(code, 201, "{status}");
    let (code, status) = apply_as("second", yaml.replace("image: i", "image: j").as_bytes()).await;
    assert_eq!(code, 409, "{status}");
    assert_eq!(status["reason"], "Conflict");
    assert_eq!(
        status["message"],
        r#"Apply failed with 1 conflict: conflict with "first": .spec.containers[name="c"].image"#
    );
    assert_eq!(
        status["details"]["causes"],
        serde_json::json!([{"reason": "FieldManagerConflict", "message": "conflict with \"first\"",
            "field": ".spec.containers[name=\"c\"].image"}])
    );
    let (code, status) = apply_as(
        "second&force=true",
        yaml.replace("image: i", "image: j").as_bytes(),
    )
    .await;
    assert_eq!(code, 200, "{status}");
    assert_eq!(status["spec"]["containers"][0]["image"], "j");
}

#[tokio::test]
async fn kube_rs_and_python_apply_a_pod() {
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Api, Patch, PatchParams};

    let cluster = TestCluster::builder().start().await;
    let pods: Api<Pod> = Api::namespaced(cluster.client().await, "default");
    let config = serde_json::json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "from-rust", "labels": {"by": "kube-rs"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}
    });
    let params = PatchParams::apply("rkube-test");
    let pod = pods
        .patch("from-rust", &params, &Patch::Apply(&config))
        .await
        .expect("apply creates");
    let entries = pod.metadata.managed_fields.expect("managed fields");
    assert_eq!(entries[0].manager.as_deref(), Some("rkube-test"));
    assert_eq!(entries[0].operation.as_deref(), Some("Apply"));

    let script = r#"
import kubernetes
from kubernetes import dynamic
kubernetes.config.load_kube_config()
client = dynamic.DynamicClient(kubernetes.client.ApiClient())
pods = client.resources.get(api_version="v1", kind="Pod")
body = {"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "from-python", "labels": {"by": "python"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
pods.server_side_apply(body=body, namespace="default", field_manager="python-client")
body["metadata"]["labels"]["by"] = "python-again"
pod = pods.server_side_apply(body=body, namespace="default", field_manager="python-client")
assert pod.metadata.labels["by"] == "python-again", pod.metadata.labels
print("applied", [m.manager for m in pod.metadata.managedFields])
"#;
    let out = crate::clients::python(&cluster, &["-c", script]).await;
    assert!(out.contains("applied ['python-client']"), "{out}");
}

#[tokio::test]
async fn the_schedulers_status_write_is_its_own_entry() {
    let cluster = TestCluster::builder().scheduler().start().await;
    cluster.kubectl_stdin(&["create", "-f", "-"], Some(POD));
    // No node can take it: the scheduler sets PodScheduled=False through pods/status.
    cluster.kubectl_ok(&[
        "wait",
        "--for=condition=PodScheduled=false",
        "pod/valid-pod",
        "--timeout=60s",
    ]);
    // Entries of the same second sort by manager.
    let names = managers(&cluster, "valid-pod");
    let mut names: Vec<&str> = names.split_whitespace().collect();
    names.sort();
    assert_eq!(names, ["kube-scheduler", "kubectl-create"]);
    let pod = pod_json(&cluster, "valid-pod");
    let entry = pod["metadata"]["managedFields"]
        .as_array()
        .and_then(|e| e.iter().find(|e| e["manager"] == "kube-scheduler"))
        .expect("the scheduler's entry")
        .clone();
    assert_eq!(
        (&entry["operation"], &entry["subresource"]),
        (&"Update".into(), &"status".into())
    );
    let condition = &entry["fieldsV1"]["f:status"]["f:conditions"]["k:{\"type\":\"PodScheduled\"}"];
    for field in [".", "f:type", "f:status", "f:reason", "f:message"] {
        assert!(condition.get(field).is_some(), "{field} in {entry}");
    }
}

#[tokio::test]
async fn the_kubelets_status_writes_are_recorded_under_kubelet() {
    use crate::up::{UpCluster, TEST_IMAGE};
    let cluster = UpCluster::start(None);
    let manifest = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: runs\nspec:\n  terminationGracePeriodSeconds: 1\n  containers:\n  - name: main\n    image: {TEST_IMAGE}\n    command: [\"sleep\", \"3600\"]\n"
    );
    cluster.apply(&manifest);
    cluster.kubectl_ok(&["wait", "--for=condition=Ready", "pod/runs", "--timeout=60s"]);
    let out = cluster.kubectl_ok(&["get", "pod", "runs", "-o", "json", "--show-managed-fields"]);
    let pod: Value = serde_json::from_str(&out).expect("JSON");
    let entries = pod["metadata"]["managedFields"]
        .as_array()
        .expect("entries")
        .clone();
    let kubelet = entries
        .iter()
        .find(|e| e["manager"] == "kubelet")
        .unwrap_or_else(|| panic!("no kubelet entry in {entries:?}"));
    assert_eq!(kubelet["subresource"], "status");
    assert_eq!(kubelet["operation"], "Update");
    let status = &kubelet["fieldsV1"]["f:status"];
    for field in ["f:phase", "f:podIP", "f:containerStatuses", "f:conditions"] {
        assert!(status.get(field).is_some(), "{field} in {status}");
    }
    // The binding is no manager's write, as upstream's binding storage writes directly.
    assert!(
        entries.iter().all(|e| e["manager"] != "kube-scheduler"),
        "{entries:?}"
    );
    cluster.kubectl_ok(&["delete", "pod", "runs"]);
    // The kubelet registers its Node and keeps its status and Lease: all under `kubelet`.
    let node = format!("{}-control-plane", cluster.name);
    let out = cluster.kubectl_ok(&["get", "node", &node, "-o", "json", "--show-managed-fields"]);
    let node: Value = serde_json::from_str(&out).expect("JSON");
    let entries = node["metadata"]["managedFields"]
        .as_array()
        .expect("entries")
        .clone();
    let kubelet: Vec<&Value> = entries
        .iter()
        .filter(|e| e["manager"] == "kubelet")
        .collect();
    assert!(!kubelet.is_empty(), "{entries:?}");
    assert!(
        kubelet
            .iter()
            .any(|e| e["fieldsV1"].get("f:status").is_some()),
        "{entries:?}"
    );
}

#[tokio::test]
async fn namespaces_are_managed_by_their_creator_from_the_start() {
    let cluster = TestCluster::builder().start().await;
    let managers_of = |ns: &str| {
        cluster.kubectl_ok(&[
            "get",
            "ns",
            ns,
            "-o",
            "jsonpath={.metadata.managedFields[*].manager}",
        ])
    };
    assert_eq!(managers_of("default"), "kube-apiserver");
    cluster.kubectl_ok(&["label", "ns", "default", "team=a"]);
    assert_eq!(managers_of("default"), "kube-apiserver kubectl-label");
    let out = cluster.kubectl_stdin(
        &["create", "-f", "-"],
        Some("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: made\n"),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = cluster.kubectl_ok(&["get", "ns", "made", "-o", "json", "--show-managed-fields"]);
    let ns: Value = serde_json::from_str(&out).expect("JSON");
    let entry = &ns["metadata"]["managedFields"][0];
    assert_eq!(entry["manager"], "kubectl-create");
    // The name label is the scheme's default, so the creator's; the finalizer and the phase
    // are the create rules', so nobody's.
    assert_eq!(
        entry["fieldsV1"],
        serde_json::json!({"f:metadata": {"f:labels": {".": {}, "f:kubernetes.io/metadata.name": {}}}})
    );
}

#[tokio::test]
async fn a_port_without_a_protocol_applies_again_as_the_same_port() {
    let cluster = TestCluster::builder().start().await;
    let with_port = format!("{POD}    ports:\n    - containerPort: 80\n");
    for round in 0..2 {
        let out = kubectl_in(&cluster, &["apply", "--server-side", "-f", "-"], &with_port);
        assert!(out.status.success(), "round {round}: {}", stderr(&out));
    }
    let ports = cluster.kubectl_ok(&[
        "get",
        "pod",
        "valid-pod",
        "-o",
        "jsonpath={.spec.containers[0].ports}",
    ]);
    assert_eq!(ports, r#"[{"containerPort":80,"protocol":"TCP"}]"#);
}
