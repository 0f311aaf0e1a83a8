//! OpenAPI documents with real kubectl: `explain`, and manifests that mix served kinds with
//! kinds the server does not have.

use crate::harness::TestCluster;

const MIXED: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - port: 80
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: web
data:
  key: value
---
apiVersion: v1
kind: Pod
metadata:
  name: mixed
spec:
  containers:
  - name: app
    image: busybox
"#;

#[tokio::test]
async fn explain_pod_spec_containers_prints_upstream_field_text() {
    let cluster = TestCluster::builder().start().await;
    let out = cluster.kubectl_ok(&["explain", "pod.spec.containers"]);
    let expected = [
        "KIND:       Pod\nVERSION:    v1\n",
        "FIELD: containers <[]Container>",
        "DESCRIPTION:\n    List of containers belonging to the pod. Containers cannot currently be\n    added or removed. There must be at least one container in a Pod. Cannot be\n    updated.\n    A single application container that you want to run within a pod.",
        "  name\t<string> -required-\n    Name of the container specified as a DNS_LABEL.",
        "  ports\t<[]ContainerPort>\n",
        "  resources\t<ResourceRequirements>\n",
    ];
    for text in expected {
        assert!(out.contains(text), "{text:?} missing from:\n{out}");
    }
}

#[tokio::test]
async fn explain_recursive_walks_every_kind() {
    let cluster = TestCluster::builder().start().await;
    let out = cluster.kubectl_ok(&["explain", "pods", "--recursive"]);
    for text in [
        "  metadata\t<ObjectMeta>\n",
        "    ownerReferences\t<[]OwnerReference>\n",
        "  spec\t<PodSpec>\n",
        "    containers\t<[]Container> -required-\n",
        "        containerPort\t<integer> -required-\n",
        "  status\t<PodStatus>\n",
    ] {
        assert!(out.contains(text), "{text:?} missing from:\n{out}");
    }
    for (resource, text) in [
        ("nodes.spec", "FIELD: spec <NodeSpec>"),
        ("namespaces.status.phase", "FIELD: phase <string>"),
        (
            "events.involvedObject",
            "FIELD: involvedObject <ObjectReference>",
        ),
        (
            "leases.spec.holderIdentity",
            "GROUP:      coordination.k8s.io",
        ),
    ] {
        let out = cluster.kubectl_ok(&["explain", resource]);
        assert!(out.contains(text), "{text:?} missing from:\n{out}");
    }
    let err = cluster.kubectl_err(&["explain", "pods.spec.bogus"]);
    assert!(err.contains("field \"bogus\" does not exist"), "{err}");
}

/// kube-apiserver creates the Pod and names each kind it lacks, with kubectl's default
/// validation (which reads `/openapi/v2` in gnostic protobuf for the kinds the v3 documents do
/// not declare) as with `--validate=false`.
#[tokio::test]
async fn create_of_a_mixed_manifest_creates_what_is_served_and_names_the_kinds_not_served() {
    let cluster = TestCluster::builder().start().await;
    // One error left: kubectl prefixes it with `error: ` (it lists several without).
    let expected = "error: resource mapping not found for name: \"web\" namespace: \"\" from \"STDIN\": no matches for kind \"Service\" in version \"v1\"\nensure CRDs are installed first\n";
    for validate in ["--validate=strict", "--validate=false"] {
        let out = cluster.kubectl_stdin(&["create", "-f", "-", validate], Some(MIXED));
        assert_eq!(out.status.code(), Some(1), "{validate}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "deployment.apps/web created\nconfigmap/web created\npod/mixed created\n",
            "{validate}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stderr), expected, "{validate}");
        cluster.kubectl_ok(&["get", "pod", "mixed"]);
        cluster.kubectl_ok(&["delete", "pod", "mixed"]);
        cluster.kubectl_ok(&["delete", "configmap", "web"]);
        cluster.kubectl_ok(&["delete", "deployment", "web"]);
    }
}

#[tokio::test]
async fn strict_apply_still_rejects_an_unknown_field_on_the_server() {
    let cluster = TestCluster::builder().start().await;
    let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: strict\nspec:\n  bogus: 1\n  containers:\n  - name: app\n    image: busybox\n";
    let out = cluster.kubectl_stdin(
        &["apply", "-f", "-", "--validate=strict", "-v=6"],
        Some(pod),
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("fieldValidation=Strict"),
        "kubectl left validation to the server: {stderr}"
    );
    assert!(
        stderr.contains("Error from server (BadRequest): error when creating \"STDIN\": Pod in version \"v1\" cannot be handled as a Pod: strict decoding error: unknown field \"spec.bogus\""),
        "{stderr}"
    );
}

/// kubectl computes `apply`'s strategic merge patch from the kind's v3 schema when its PATCH
/// operation takes strategic merge patches (it says so at `-v=5` when it cannot): the merge
/// keys must be there.
#[tokio::test]
async fn apply_computes_its_patch_from_the_served_schema() {
    let cluster = TestCluster::builder().start().await;
    let pod = |image: &str| {
        format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: merged\nspec:\n  containers:\n  - name: app\n    image: {image}\n  - name: sidecar\n    image: busybox\n")
    };
    cluster.kubectl_stdin(&["apply", "-f", "-"], Some(&pod("busybox")));
    let out = cluster.kubectl_stdin(&["apply", "-f", "-", "-v=8"], Some(&pod("busybox:1")));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "pod/merged configured\n"
    );
    assert!(stderr.contains("/openapi/v3/api/v1?hash="), "{stderr}");
    assert!(!stderr.contains("OpenAPI V3 path does not"), "{stderr}");
    assert!(!stderr.contains("error calculating patch"), "{stderr}");
    assert!(
        stderr.contains(r#"\"$setElementOrder/containers\":[{\"name\":\"app\"},{\"name\":\"sidecar\"}],\"containers\":[{\"image\":\"busybox:1\",\"name\":\"app\"}]"#),
        "{stderr}"
    );
    let images = cluster.kubectl_ok(&[
        "get",
        "pod",
        "merged",
        "-o",
        "jsonpath={.spec.containers[*].image}",
    ]);
    assert_eq!(images, "busybox:1 busybox");
}

#[tokio::test]
async fn the_documents_are_served_to_get_only() {
    let cluster = TestCluster::builder().start().await;
    let v2: serde_json::Value =
        serde_json::from_str(&cluster.kubectl_ok(&["get", "--raw", "/openapi/v2"])).expect("JSON");
    assert_eq!(v2["swagger"], "2.0");
    assert!(v2["definitions"]["io.k8s.api.core.v1.Pod"].is_object());
    let index: serde_json::Value =
        serde_json::from_str(&cluster.kubectl_ok(&["get", "--raw", "/openapi/v3"])).expect("JSON");
    let url = index["paths"]["apis/coordination.k8s.io/v1"]["serverRelativeURL"]
        .as_str()
        .expect("the Lease group is indexed");
    let lease: serde_json::Value =
        serde_json::from_str(&cluster.kubectl_ok(&["get", "--raw", url])).expect("JSON");
    assert!(lease["components"]["schemas"]["io.k8s.api.coordination.v1.Lease"].is_object());
    let err = cluster.kubectl_err(&["get", "--raw", "/openapi/v3/apis/networking.k8s.io/v1"]);
    assert!(err.contains("NotFound"), "{err}");
    let out = cluster.kubectl_stdin(&["create", "--raw", "/openapi/v2", "-f", "-"], Some("{}"));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("MethodNotAllowed"), "{err}");
}
