//! The labels and names rkube puts on containers, so a restarted kubelet finds its own.
//!
//! Names follow dockershim (`k8s_<container>_<pod>_<namespace>_<uid>_<attempt>`); the
//! `io.kubernetes.*` labels are the ones dockershim and cri-dockerd set.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;

pub const POD_UID: &str = "io.kubernetes.pod.uid";
pub const POD_NAME: &str = "io.kubernetes.pod.name";
pub const POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
pub const CONTAINER_NAME: &str = "io.kubernetes.container.name";
pub const RESTART_COUNT: &str = "io.kubernetes.container.restartCount";
/// `sandbox`, `init` or `app`.
pub const KIND: &str = "io.rkube.container.kind";
pub const NODE: &str = "io.rkube.node";
pub const CLUSTER: &str = "io.rkube.cluster";
/// The sandbox's "container name", as dockershim used.
pub const SANDBOX_NAME: &str = "POD";

fn meta(pod: &Pod) -> (&str, &str, &str) {
    (
        pod.metadata.name.as_deref().unwrap_or(""),
        pod.metadata.namespace.as_deref().unwrap_or(""),
        pod.metadata.uid.as_deref().unwrap_or(""),
    )
}

/// The labels of one container of `pod` on `node`.
pub fn for_container(
    pod: &Pod,
    node: &str,
    cluster: &str,
    container: &str,
    kind: &str,
    attempt: i32,
) -> BTreeMap<String, String> {
    let (name, namespace, uid) = meta(pod);
    [
        (POD_UID, uid.to_string()),
        (POD_NAME, name.to_string()),
        (POD_NAMESPACE, namespace.to_string()),
        (CONTAINER_NAME, container.to_string()),
        (RESTART_COUNT, attempt.to_string()),
        (KIND, kind.to_string()),
        (NODE, node.to_string()),
        (CLUSTER, cluster.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// The engine-level name of a container (unique per node and attempt).
pub fn container_name(pod: &Pod, container: &str, attempt: i32) -> String {
    let (name, namespace, uid) = meta(pod);
    format!("k8s_{container}_{name}_{namespace}_{uid}_{attempt}")
}

pub fn attempt(labels: &BTreeMap<String, String>) -> i32 {
    labels
        .get(RESTART_COUNT)
        .and_then(|a| a.parse().ok())
        .unwrap_or(0)
}
