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
