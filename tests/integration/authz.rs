//! Authorization of the built-in identities (scheduler, controller manager, kubelets, anyone
//! else), NodeRestriction admission and impersonation, over real HTTPS with certificates from
//! the cluster CA, against upstream v1.32's answers.

use std::path::PathBuf;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use serde_json::{json, Value};

use crate::harness::TestCluster;
use crate::raw::{client_config, Identity, Raw};

/// A client presenting one identity's certificate.
struct As {
    raw: Raw,
}

impl As {
    fn new(cluster: &TestCluster, user: &str, groups: &[&str]) -> As {
        let creds = cluster.issue_client_cert(user, groups);
        As::from_files(cluster, creds.cert, creds.key)
    }

    fn from_files(cluster: &TestCluster, cert: PathBuf, key: PathBuf) -> As {
        let config = client_config(
            &cluster.certs().join("ca.crt"),
            Identity::Files {
                cert: &cert,
                key: &key,
            },
            &[&rustls::version::TLS13],
        );
        As {
            raw: Raw::new(&cluster.server, config),
        }
    }

    /// Sends a request with a JSON (or merge-patch) body and extra headers; returns the
    /// status and the body (JSON when it parses, else the text).
    async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let tls = self.raw.connect().await.expect("TLS handshake");
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
                .await
                .expect("HTTP handshake");
        tokio::spawn(conn);
        let content_type = if method == "PATCH" {
            "application/merge-patch+json"
        } else {
            "application/json"
        };
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "localhost")
            .header("content-type", content_type)
            .header("accept", "application/json");
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let req = req.body(Full::new(Bytes::from(bytes))).expect("request");
        let resp = sender.send_request(req).await.expect("response");
        let code = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        (code, value)
    }
}

fn pod(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "a"}},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
}

fn node(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}}})
}

fn lease(name: &str) -> Value {
    json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": name},
        "spec": {"holderIdentity": name}})
}

fn event(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": name},
        "involvedObject": {"kind": "Pod", "namespace": "default", "name": "p1"},
        "reason": "Test", "message": "m", "type": "Normal"})
}

/// Two nodes, a Pod bound to each, and the Lease of n2: what the table's requests act on.
async fn populate(admin: &As) {
    for n in ["n1", "n2"] {
        let (code, body) = admin
            .call("POST", "/api/v1/nodes", Some(node(n)), &[])
            .await;
        assert_eq!(code, 201, "{body}");
    }
    for (p, n) in [("p1", "n1"), ("p2", "n2")] {
        let (code, body) = admin
            .call("POST", "/api/v1/namespaces/default/pods", Some(pod(p)), &[])
            .await;
        assert_eq!(code, 201, "{body}");
        let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": p},
            "target": {"kind": "Node", "name": n}});
        let (code, body) = admin
            .call(
                "POST",
                &format!("/api/v1/namespaces/default/pods/{p}/binding"),
                Some(binding),
                &[],
            )
            .await;
        assert_eq!(code, 201, "{body}");
    }
    let (code, body) = admin
        .call(
            "POST",
            "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
            Some(lease("n2")),
            &[],
        )
        .await;
    assert_eq!(code, 201, "{body}");
}

/// What a row expects: the request passes authorization and admission (any answer but 403),
/// or it is refused with exactly this message.
enum Expect {
    Allowed,
    Forbidden(&'static str),
    ForbiddenOwned(String),
}

use Expect::{Allowed, Forbidden, ForbiddenOwned};

/// One request of the table: who, method, path, body, and what upstream answers.
type Row<'a> = (&'a str, &'a As, &'a str, String, Option<Value>, Expect);

const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces";

#[tokio::test(flavor = "multi_thread")]
async fn built_in_identities_get_exactly_their_bootstrap_permissions() {
    let cluster = TestCluster::builder().start().await;
    let admin = As::new(&cluster, "kubernetes-admin", &["system:masters"]);
    populate(&admin).await;
    let scheduler = As::new(&cluster, "system:kube-scheduler", &[]);
    let kcm = As::new(&cluster, "system:kube-controller-manager", &[]);
    let kubelet = As::new(&cluster, "system:node:n1", &["system:nodes"]);
    let jane = As::new(&cluster, "jane", &[]);
    let (_, n1) = admin.call("GET", "/api/v1/nodes/n1", None, &[]).await;
    let n1_uid = n1["metadata"]["uid"].as_str().expect("uid").to_string();
    let mirror = |name: &str, uid: &str, extra: Value| {
        let mut pod = pod(name);
        pod["metadata"]["annotations"] = json!({"kubernetes.io/config.mirror": "hash"});
        pod["metadata"]["ownerReferences"] = json!([{"apiVersion": "v1", "kind": "Node",
            "name": "n1", "uid": uid, "controller": true}]);
        pod["spec"]["nodeName"] = json!("n1");
        if let Some(volumes) = extra.get("volumes") {
            pod["spec"]["volumes"] = volumes.clone();
        }
        pod
    };
    let status_patch = json!({"status": {"conditions": [{"type": "Ready", "status": "False"}]}});
    let relabel = |key: &str| json!({"metadata": {"labels": {key: "x"}}});
    // One row per (identity, verb, resource) the bootstrap table decides, in its order:
    // system:node (Node authorizer), system:kube-scheduler (+ its leader-locking Role),
    // system:kube-controller-manager (+ its leader-locking Role, the pod GC and the garbage
    // collector roles).
    let rows: Vec<Row<'_>> = vec![
        // --- system:node: nodes ---
        (
            "kubelet",
            &kubelet,
            "GET",
            "/api/v1/nodes/n1".into(),
            None,
            Allowed,
        ),
        (
            "kubelet",
            &kubelet,
            "GET",
            "/api/v1/nodes/n2".into(),
            None,
            Forbidden(
                r#"nodes "n2" is forbidden: User "system:node:n1" cannot get resource "nodes" in API group "" at the cluster scope: node 'n1' cannot read 'n2', only its own Node object"#,
            ),
        ),
        (
            "kubelet",
            &kubelet,
            "GET",
            "/api/v1/nodes".into(),
            None,
            Forbidden(
                r#"nodes is forbidden: User "system:node:n1" cannot list resource "nodes" in API group "" at the cluster scope: node 'n1' cannot read all nodes, only its own Node object"#,
            ),
        ),
        (
            "kubelet",
            &kubelet,
            "GET",
            "/api/v1/nodes?fieldSelector=metadata.name%3Dn1".into(),
            None,
            Allowed,
        ),
        (
            "kubelet",
            &kubelet,
            "POST",
            "/api/v1/nodes".into(),
            Some(node("evil-node")),
            Forbidden(
                r#"nodes "evil-node" is forbidden: node "n1" is not allowed to modify node "evil-node""#,
            ),
        ),
        (
            "kubelet",
            &kubelet,
            "PATCH",
            "/api/v1/nodes/n2".into(),
            Some(relabel("example.com/a")),
            Forbidden(r#"nodes "n2" is forbidden: node "n1" is not allowed to modify node "n2""#),
        ),
        (
            "kubelet",
            &kubelet,
            "PATCH",
            "/api/v1/nodes/n1".into(),
            Some(relabel("node-role.kubernetes.io/worker")),
            Forbidden(
                r#"nodes "n1" is forbidden: is not allowed to modify labels: node-role.kubernetes.io/worker"#,
            ),
        ),
        (
            "kubelet",
            &kubelet,
            "PATCH",
            "/api/v1/nodes/n1".into(),
            Some(relabel("node-restriction.kubernetes.io/secure")),
            Forbidden(
                r#"nodes "n1" is forbidden: is not allowed to modify labels: node-restriction.kubernetes.io/secure"#,
            ),
        ),
        (
            "kubelet",
            &kubelet,
            "PATCH",
            "/api/v1/nodes/n1".into(),
            Some(json!({"spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]}})),
            Forbidden(r#"nodes "n1" is forbidden: node "n1" is not allowed to modify taints"#),
        ),
        (
            "kubelet",
            &kubelet,
            "PATCH",
            "/api/v1/nodes/n1".into(),
            Some(relabel("example.com/tier")),
            Allowed,
        ),
        (
            "kubelet",
            &kubelet,
            "PATCH",
            "/api/v1/nodes/n1".into(),
            Some(relabel("topology.kubernetes.io/zone")),
            Allowed,
        ),
        (
            "kubelet",
            &kubelet,
            "PATCH",
            "/api/v1/nodes/n1/status".into(),
            Some(status_patch.clone()),
            Allowed,
        ),
        (
            "kubelet",
            &kubelet,
            "DELETE",
            "/api/v1/nodes/n1".into(),
            None,
            Forbidden(
                r#"nodes "n1" is forbidden: User "system:node:n1" cannot delete resource "nodes" in API group "" at the cluster scope"#,
            ),
        ),
        // --- system:node: pods ---
        (
            "kubelet",
            &kubelet,
            "GET",
            "/api/v1/namespaces/default/pods/p1".into(),
            None,
            Allowed,
        ),
        (
            "kubelet",
            &kubelet,
            "GET",
            "/api/v1/namespaces/default/pods/p2".into(),
            None,
            Forbidden(
                r#"pods "p2" is forbidden: User "system:node:n1" cannot get resource "pods" in API group "" in the namespace "default": no relationship found between node 'n1' and this object"#,
            ),
        ),
        (
            "kubelet",
            &kubelet,
            "GET",
            "/api/v1/pods".into(),
            None,
            Forbidden(
                r#"pods is forbidden: User "system:node:n1" cannot list resource "pods" in API group "" at the cluster scope: can only list/watch pods with spec.nodeName field selector"#,
            ),
        ),
        (
            "kubelet",
            &kubelet,
            "GET",
            "/api/v1/pods?fieldSelector=spec.nodeName%3Dn1".into(),
            None,
            Allowed,
        ),
        (
            "kubelet",
            &kubelet,
            "GET",
            "/api/v1/namespaces/default/pods/p2/log".into(),
            None,
            Forbidden(
                r#"pods "p2" is forbidden: User "system:node:n1" cannot get resource "pods/log" in API group "" in the namespace "default""#,
            ),
        ),
        (
            "kubelet",
            &kubelet,
            "GET",
            "/api/v1/namespaces/default/pods/p1/log".into(),
            None,
            Forbidden(
                r#"pods "p1" is forbidden: User "system:node:n1" cannot get resource "pods/log" in API group "" in the namespace "default""#,
            ),
        ),
        (
            "kubelet",
            &kubelet,
            "PATCH",
            "/api/v1/namespaces/default/pods/p1".into(),
            Some(relabel("app")),
            Forbidden(
                r#"pods "p1" is forbidden: User "system:node:n1" cannot patch resource "pods" in API group "" in the namespace "default""#,
            ),
        ),
        (
            "kubelet",
            &kubelet,
            "PATCH",
            "/api/v1/namespaces/default/pods/p2/status".into(),
            Some(status_patch.clone()),
            Forbidden(
                r#"pods "p2" is forbidden: node "n1" can only update pod status for pods with spec.nodeName set to itself"#,
            ),
        ),
        (
            "kubelet",
            &kubelet,
            "PATCH",
            "/api/v1/namespaces/default/pods/p1/status".into(),
            Some(status_patch.clone()),
            Allowed,
        ),
        (
            "kubelet",
            &kubelet,
            "POST",
            "/api/v1/namespaces/default/pods".into(),
            Some(pod("made-by-kubelet")),
            Forbidden(
                r#"pods "made-by-kubelet" is forbidden: pod does not have "kubernetes.io/config.mirror" annotation, node "n1" can only create mirror pods"#,
            ),
        ),
        (
            "kubelet",
            &kubelet,
            "POST",
            "/api/v1/namespaces/default/pods".into(),
            Some(mirror("static-web-n1", &n1_uid, json!({}))),
            Allowed,
        ),
        (
            "kubelet",
            &kubelet,
            "POST",
            "/api/v1/namespaces/default/pods".into(),
            Some(mirror("static-bad-uid", "0000", json!({}))),
            ForbiddenOwned(format!(
                r#"pods "static-bad-uid" is forbidden: node n1 UID mismatch: expected 0000 got {n1_uid}"#
            )),
        ),
        (
            "kubelet",
            &kubelet,
            "POST",
            "/api/v1/namespaces/default/pods".into(),
            Some(mirror(
                "static-secret",
                &n1_uid,
                json!({"volumes": [{"name": "s", "secret": {"secretName": "x"}}]}),
            )),
            Forbidden(
                r#"pods "static-secret" is forbidden: node "n1" can not create pods that reference secrets"#,
            ),
        ),
        (
            "kubelet",
            &kubelet,
            "DELETE",
            "/api/v1/namespaces/default/pods/p2".into(),
            None,
            Forbidden(
                r#"pods "p2" is forbidden: node "n1" can only delete pods with spec.nodeName set to itself"#,
            ),
        ),
        (
            "kubelet",
            &kubelet,
            "POST",
            "/api/v1/namespaces/default/pods/p2/binding".into(),
            Some(
                json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p2"}, "target": {"kind": "Node", "name": "n1"}}),
            ),
            Forbidden(
                r#"pods "p2" is forbidden: User "system:node:n1" cannot create resource "pods/binding" in API group "" in the namespace "default""#,
            ),
        ),
        // --- system:node: events, leases, the rest ---
        (
            "kubelet",
            &kubelet,
            "POST",
            "/api/v1/namespaces/default/events".into(),
            Some(event("e-kubelet")),
            Allowed,
        ),
        (
            "kubelet",
            &kubelet,
            "GET",
            "/api/v1/namespaces/default/events".into(),
            None,
            Forbidden(
                r#"events is forbidden: User "system:node:n1" cannot list resource "events" in API group "" in the namespace "default""#,
            ),
        ),
        (
            "kubelet",
            &kubelet,
            "POST",
            format!("{LEASES}/kube-node-lease/leases"),
            Some(lease("n2")),
            Forbidden(
                r#"leases.coordination.k8s.io "n2" is forbidden: can only access node lease with the same name as the requesting node"#,
            ),
        ),
        (
            "kubelet",
            &kubelet,
            "POST",
            format!("{LEASES}/kube-node-lease/leases"),
            Some(lease("n1")),
            Allowed,
        ),
        (
            "kubelet",
            &kubelet,
            "GET",
            format!("{LEASES}/kube-node-lease/leases/n1"),
            None,
            Allowed,
        ),
        (
            "kubelet",
            &kubelet,
            "PATCH",
            format!("{LEASES}/kube-node-lease/leases/n1"),
            Some(json!({"spec": {"leaseDurationSeconds": 40}})),
            Allowed,
        ),
        (
            "kubelet",
            &kubelet,
            "PATCH",
            format!("{LEASES}/kube-node-lease/leases/n2"),
            Some(json!({"spec": {"leaseDurationSeconds": 40}})),
            Forbidden(
                r#"leases.coordination.k8s.io "n2" is forbidden: User "system:node:n1" cannot patch resource "leases" in API group "coordination.k8s.io" in the namespace "kube-node-lease": can only access node lease with the same name as the requesting node"#,
            ),
        ),
        (
            "kubelet",
            &kubelet,
            "GET",
            format!("{LEASES}/kube-node-lease/leases"),
            None,
            Forbidden(
                r#"leases.coordination.k8s.io is forbidden: User "system:node:n1" cannot list resource "leases" in API group "coordination.k8s.io" in the namespace "kube-node-lease": can only get, create, update, patch, or delete a node lease"#,
            ),
        ),
        (
            "kubelet",
            &kubelet,
            "POST",
            format!("{LEASES}/kube-system/leases"),
            Some(lease("n1")),
            Forbidden(
                r#"leases.coordination.k8s.io is forbidden: User "system:node:n1" cannot create resource "leases" in API group "coordination.k8s.io" in the namespace "kube-system": can only access leases in the "kube-node-lease" system namespace"#,
            ),
        ),
        (
            "kubelet",
            &kubelet,
            "GET",
            "/api/v1/namespaces/default".into(),
            None,
            Forbidden(
                r#"namespaces "default" is forbidden: User "system:node:n1" cannot get resource "namespaces" in API group "" at the cluster scope"#,
            ),
        ),
        // --- system:kube-scheduler ---
        (
            "scheduler",
            &scheduler,
            "GET",
            "/api/v1/nodes".into(),
            None,
            Allowed,
        ),
        (
            "scheduler",
            &scheduler,
            "GET",
            "/api/v1/pods".into(),
            None,
            Allowed,
        ),
        (
            "scheduler",
            &scheduler,
            "GET",
            "/api/v1/namespaces".into(),
            None,
            Allowed,
        ),
        (
            "scheduler",
            &scheduler,
            "GET",
            "/api/v1/namespaces/default/pods/p2/log".into(),
            None,
            Forbidden(
                r#"pods "p2" is forbidden: User "system:kube-scheduler" cannot get resource "pods/log" in API group "" in the namespace "default""#,
            ),
        ),
        (
            "scheduler",
            &scheduler,
            "POST",
            "/api/v1/namespaces/default/pods/absent/binding".into(),
            Some(
                json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "absent"}, "target": {"kind": "Node", "name": "n1"}}),
            ),
            Allowed,
        ),
        (
            "scheduler",
            &scheduler,
            "PATCH",
            "/api/v1/namespaces/default/pods/p1/status".into(),
            Some(status_patch.clone()),
            Allowed,
        ),
        (
            "scheduler",
            &scheduler,
            "DELETE",
            "/api/v1/namespaces/default/pods/absent".into(),
            None,
            Allowed,
        ),
        (
            "scheduler",
            &scheduler,
            "PATCH",
            "/api/v1/namespaces/default/pods/p1".into(),
            Some(relabel("app")),
            Forbidden(
                r#"pods "p1" is forbidden: User "system:kube-scheduler" cannot patch resource "pods" in API group "" in the namespace "default""#,
            ),
        ),
        (
            "scheduler",
            &scheduler,
            "POST",
            "/api/v1/namespaces/default/pods".into(),
            Some(pod("made-by-scheduler")),
            Forbidden(
                r#"pods is forbidden: User "system:kube-scheduler" cannot create resource "pods" in API group "" in the namespace "default""#,
            ),
        ),
        (
            "scheduler",
            &scheduler,
            "POST",
            "/api/v1/namespaces/default/events".into(),
            Some(event("e-scheduler")),
            Allowed,
        ),
        (
            "scheduler",
            &scheduler,
            "PATCH",
            "/api/v1/nodes/n1".into(),
            Some(relabel("example.com/a")),
            Forbidden(
                r#"nodes "n1" is forbidden: User "system:kube-scheduler" cannot patch resource "nodes" in API group "" at the cluster scope"#,
            ),
        ),
        (
            "scheduler",
            &scheduler,
            "DELETE",
            format!("{LEASES}/kube-node-lease/leases/n2"),
            None,
            Forbidden(
                r#"leases.coordination.k8s.io "n2" is forbidden: User "system:kube-scheduler" cannot delete resource "leases" in API group "coordination.k8s.io" in the namespace "kube-node-lease""#,
            ),
        ),
        (
            "scheduler",
            &scheduler,
            "PATCH",
            format!("{LEASES}/kube-node-lease/leases/n2"),
            Some(json!({"spec": {"leaseDurationSeconds": 1}})),
            Forbidden(
                r#"leases.coordination.k8s.io "n2" is forbidden: User "system:kube-scheduler" cannot patch resource "leases" in API group "coordination.k8s.io" in the namespace "kube-node-lease""#,
            ),
        ),
        (
            "scheduler",
            &scheduler,
            "POST",
            format!("{LEASES}/kube-system/leases"),
            Some(lease("kube-scheduler")),
            Allowed,
        ),
        (
            "scheduler",
            &scheduler,
            "GET",
            format!("{LEASES}/kube-system/leases/kube-scheduler"),
            None,
            Allowed,
        ),
        (
            "scheduler",
            &scheduler,
            "GET",
            format!("{LEASES}/kube-system/leases/other"),
            None,
            Forbidden(
                r#"leases.coordination.k8s.io "other" is forbidden: User "system:kube-scheduler" cannot get resource "leases" in API group "coordination.k8s.io" in the namespace "kube-system""#,
            ),
        ),
        // --- system:kube-controller-manager (+ leader locking, pod GC, garbage collector) ---
        (
            "controller-manager",
            &kcm,
            "GET",
            "/api/v1/pods".into(),
            None,
            Allowed,
        ),
        (
            "controller-manager",
            &kcm,
            "GET",
            "/api/v1/nodes".into(),
            None,
            Allowed,
        ),
        (
            "controller-manager",
            &kcm,
            "GET",
            "/api/v1/nodes/n1".into(),
            None,
            Allowed,
        ),
        (
            "controller-manager",
            &kcm,
            "GET",
            format!("{LEASES}/kube-node-lease/leases"),
            None,
            Allowed,
        ),
        (
            "controller-manager",
            &kcm,
            "GET",
            "/api/v1/namespaces/default".into(),
            None,
            Allowed,
        ),
        (
            "controller-manager",
            &kcm,
            "PATCH",
            "/api/v1/namespaces/default/pods/p2/status".into(),
            Some(status_patch.clone()),
            Allowed,
        ),
        (
            "controller-manager",
            &kcm,
            "DELETE",
            "/api/v1/namespaces/default/pods/absent".into(),
            None,
            Allowed,
        ),
        (
            "controller-manager",
            &kcm,
            "POST",
            format!("{LEASES}/kube-system/leases"),
            Some(lease("kube-controller-manager")),
            Allowed,
        ),
        // The garbage collector's role (get, list, watch, patch, update, delete on every
        // resource) leaves creating most kinds and the subresources that are created out.
        (
            "controller-manager",
            &kcm,
            "POST",
            "/api/v1/nodes".into(),
            Some(node("n9")),
            Forbidden(
                r#"nodes is forbidden: User "system:kube-controller-manager" cannot create resource "nodes" in API group "" at the cluster scope"#,
            ),
        ),
        // The root CA publisher creates ConfigMaps; nothing it runs creates PodTemplates.
        (
            "controller-manager",
            &kcm,
            "POST",
            "/api/v1/namespaces/default/configmaps".into(),
            Some(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})),
            Allowed,
        ),
        (
            "controller-manager",
            &kcm,
            "POST",
            "/api/v1/namespaces/default/podtemplates".into(),
            Some(json!({"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": "t"}})),
            Forbidden(
                r#"podtemplates is forbidden: User "system:kube-controller-manager" cannot create resource "podtemplates" in API group "" in the namespace "default""#,
            ),
        ),
        (
            "controller-manager",
            &kcm,
            "POST",
            "/api/v1/namespaces/default/pods/p1/eviction".into(),
            Some(
                json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "p1"}}),
            ),
            Forbidden(
                r#"pods "p1" is forbidden: User "system:kube-controller-manager" cannot create resource "pods/eviction" in API group "" in the namespace "default""#,
            ),
        ),
        // --- anyone else ---
        (
            "jane",
            &jane,
            "GET",
            "/api/v1/namespaces/default/pods".into(),
            None,
            Forbidden(
                r#"pods is forbidden: User "jane" cannot list resource "pods" in API group "" in the namespace "default""#,
            ),
        ),
        ("jane", &jane, "GET", "/api/v1".into(), None, Allowed),
    ];
    let mut failures = Vec::new();
    for (who, client, method, path, body, expect) in rows {
        let (code, answer) = client.call(method, &path, body, &[]).await;
        match &expect {
            Allowed if code == 403 => {
                failures.push(format!("{who} {method} {path}: refused: {answer}"));
            }
            Allowed => {}
            Forbidden(_) | ForbiddenOwned(_) => {
                let message = match &expect {
                    Forbidden(m) => m.to_string(),
                    ForbiddenOwned(m) => m.clone(),
                    Allowed => unreachable!("matched above"),
                };
                if code != 403 || answer["message"] != message || answer["reason"] != "Forbidden" {
                    failures.push(format!(
                        "{who} {method} {path}: expected 403 {message:?}, got {code} {answer}"
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kubelet_cannot_relabel_a_pod_through_its_status() {
    let cluster = TestCluster::builder().start().await;
    let admin = As::new(&cluster, "kubernetes-admin", &["system:masters"]);
    populate(&admin).await;
    let kubelet = As::new(&cluster, "system:node:n1", &["system:nodes"]);
    let path = "/api/v1/namespaces/default/pods/p1/status";
    let patch = json!({"metadata": {"labels": {"app": "stolen"}},
        "status": {"conditions": [{"type": "Ready", "status": "False"}]}});
    let (code, body) = kubelet.call("PATCH", path, Some(patch.clone()), &[]).await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        body["message"],
        r#"pods "p1" is forbidden: node "n1" cannot update labels through pod status"#
    );
    // Nothing was written: neither the labels nor the status.
    let (_, pod) = admin
        .call("GET", "/api/v1/namespaces/default/pods/p1", None, &[])
        .await;
    assert_eq!(pod["metadata"]["labels"]["app"], "a");
    assert!(pod["status"]["conditions"]
        .as_array()
        .is_none_or(|c| !c.iter().any(|c| c["type"] == "Ready")));
    // A full replace through pods/status that drops a label is refused the same way.
    let mut replaced = pod.clone();
    replaced["metadata"]["labels"] = json!({});
    let (code, body) = kubelet.call("PUT", path, Some(replaced), &[]).await;
    assert_eq!(code, 403, "{body}");
    // The same status write without the label change goes through.
    let (code, body) = kubelet
        .call(
            "PATCH",
            path,
            Some(json!({"status": {"conditions": [{"type": "Ready", "status": "False"}]}})),
            &[],
        )
        .await;
    assert_eq!(code, 200, "{body}");
    // Anyone else's status write may change labels, as upstream's status strategy keeps them.
    let (code, body) = admin
        .call(
            "PATCH",
            path,
            Some(json!({"metadata": {"labels": {"app": "b"}}})),
            &[],
        )
        .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["metadata"]["labels"]["app"], "b");
}

#[tokio::test(flavor = "multi_thread")]
async fn impersonation_is_authorized_and_then_acts_as_the_impersonated_user() {
    let cluster = TestCluster::builder().start().await;
    // kubectl --as=jane: the admin may impersonate, and jane may do nothing.
    let err = cluster.kubectl_err(&["--as=jane", "get", "pods"]);
    assert!(
        err.contains(r#"pods is forbidden: User "jane" cannot list resource "pods" in API group "" in the namespace "default""#),
        "{err}"
    );
    // With the admin group impersonated as well, jane acts as an admin.
    let out = cluster.kubectl(&["--as=jane", "--as-group=system:masters", "get", "pods"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Impersonating a kubelet gives the kubelet's rights, not the admin's.
    let err = cluster.kubectl_err(&[
        "--as=system:node:n1",
        "--as-group=system:nodes",
        "get",
        "namespaces",
    ]);
    assert!(
        err.contains(r#"User "system:node:n1" cannot list resource "namespaces""#),
        "{err}"
    );
    // Someone without the impersonate verb is refused, naming what they asked to be.
    let scheduler = cluster.kubeconfig_as("system:kube-scheduler", &[]);
    let out = cluster.kubectl_with(&scheduler, &["--as=jane", "get", "pods"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(r#"users "jane" is forbidden: User "system:kube-scheduler" cannot impersonate resource "users" in API group "" at the cluster scope"#),
        "{err}"
    );
    let scheduler = As::new(&cluster, "system:kube-scheduler", &[]);
    let (code, body) = scheduler
        .call(
            "GET",
            "/api/v1/namespaces/default/pods",
            None,
            &[
                ("Impersonate-User", "jane"),
                ("Impersonate-Group", "system:masters"),
            ],
        )
        .await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        body["message"],
        r#"users "jane" is forbidden: User "system:kube-scheduler" cannot impersonate resource "users" in API group "" at the cluster scope"#
    );
    let (code, body) = scheduler
        .call(
            "GET",
            "/api/v1/namespaces/default/pods",
            None,
            &[("Impersonate-User", "system:serviceaccount:default:builder")],
        )
        .await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(
        body["message"],
        r#"serviceaccounts "builder" is forbidden: User "system:kube-scheduler" cannot impersonate resource "serviceaccounts" in API group "" in the namespace "default""#
    );
    // A group without a user is malformed: upstream answers 500 in plain text.
    let admin = As::new(&cluster, "kubernetes-admin", &["system:masters"]);
    let (code, body) = admin
        .call(
            "GET",
            "/api/v1/namespaces/default/pods",
            None,
            &[("Impersonate-Group", "system:masters")],
        )
        .await;
    assert_eq!(code, 500, "{body}");
    assert_eq!(
        body,
        Value::String(
            "Internal Server Error: \"/api/v1/namespaces/default/pods\": requested [{Group  system:masters    }] without impersonating a user\n".into()
        )
    );
}
