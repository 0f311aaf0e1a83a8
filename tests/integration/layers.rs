//! The API server answers as it did before its registry work moved below the HTTP layer:
//! bindings (both routes, with the UID precondition) and the system namespaces.

use serde_json::{json, Value};

use crate::harness::TestCluster;
use crate::raw::{admin, Raw};

const PODS: &str = "/api/v1/namespaces/default/pods";

async fn create_pod(raw: &Raw, name: &str) -> Value {
    let body = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "busybox:1"}]}});
    let (code, pod) = raw
        .json(
            "POST",
            PODS,
            "application/json",
            body.to_string().into_bytes(),
        )
        .await;
    assert_eq!(code, 201, "{pod}");
    pod
}

fn binding(name: &str, uid: Option<&str>, node: &str) -> Vec<u8> {
    let mut b = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node}});
    if let Some(uid) = uid {
        b["metadata"]["uid"] = json!(uid);
    }
    b.to_string().into_bytes()
}

#[tokio::test]
async fn bindings_bind_once_and_honour_the_uid_precondition() {
    let cluster = TestCluster::builder().start().await;
    let raw = admin(&cluster);

    // The subresource, with another Pod's UID: 409 with upstream's precondition wording.
    let pod = create_pod(&raw, "b1").await;
    let uid = pod["metadata"]["uid"].as_str().expect("uid").to_string();
    let (code, body) = raw
        .json(
            "POST",
            &format!("{PODS}/b1/binding"),
            "application/json",
            binding("b1", Some("not-the-uid"), "n1"),
        )
        .await;
    assert_eq!(code, 409, "{body}");
    assert_eq!(
        body["message"],
        format!("Operation cannot be fulfilled on pods/binding \"b1\": Precondition failed: UID in precondition: not-the-uid, UID in object meta: {uid}")
    );

    // With its own UID: 201 Success, and the Pod is on the node.
    let (code, body) = raw
        .json(
            "POST",
            &format!("{PODS}/b1/binding"),
            "application/json",
            binding("b1", Some(&uid), "n1"),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["kind"], "Status");
    assert_eq!(body["status"], "Success");
    let (_, got) = raw.json("GET", &format!("{PODS}/b1"), "", vec![]).await;
    assert_eq!(got["spec"]["nodeName"], "n1");

    // Bound already: 409.
    let (code, body) = raw
        .json(
            "POST",
            &format!("{PODS}/b1/binding"),
            "application/json",
            binding("b1", None, "n2"),
        )
        .await;
    assert_eq!(code, 409, "{body}");
    assert_eq!(
        body["message"],
        "Operation cannot be fulfilled on pods/binding \"b1\": pod b1 is already assigned to node \"n1\""
    );

    // The legacy collection binds the Pod the body names.
    create_pod(&raw, "b2").await;
    let (code, body) = raw
        .json(
            "POST",
            "/api/v1/namespaces/default/bindings",
            "application/json",
            binding("b2", None, "n2"),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    let (_, got) = raw.json("GET", &format!("{PODS}/b2"), "", vec![]).await;
    assert_eq!(got["spec"]["nodeName"], "n2");

    // A Binding without a target is invalid.
    create_pod(&raw, "b3").await;
    let (code, body) = raw
        .json(
            "POST",
            &format!("{PODS}/b3/binding"),
            "application/json",
            json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "b3"}, "target": {}})
                .to_string()
                .into_bytes(),
        )
        .await;
    assert_eq!(code, 422, "{body}");
    assert_eq!(body["details"]["causes"][0]["field"], "target.name");
}

#[tokio::test]
async fn the_system_namespaces_exist_at_start() {
    let cluster = TestCluster::builder().start().await;
    let raw = admin(&cluster);
    for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        let (code, ns) = raw
            .json("GET", &format!("/api/v1/namespaces/{name}"), "", vec![])
            .await;
        assert_eq!(code, 200, "{ns}");
        assert_eq!(ns["status"]["phase"], "Active");
        assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));
        assert_eq!(
            ns["metadata"]["labels"]["kubernetes.io/metadata.name"],
            name
        );
    }
}
