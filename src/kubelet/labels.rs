//! The labels and names rkube puts on containers, so a restarted kubelet finds its own.
//!
//! Names follow dockershim (`k8s_<container>_<pod>_<namespace>_<uid>_<attempt>`); the
//! `io.kubernetes.*` labels are the ones dockershim and cri-dockerd set.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod};

pub const POD_UID: &str = "io.kubernetes.pod.uid";
pub const POD_NAME: &str = "io.kubernetes.pod.name";
pub const POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
pub const CONTAINER_NAME: &str = "io.kubernetes.container.name";
pub const RESTART_COUNT: &str = "io.kubernetes.container.restartCount";
/// A hash of the container's spec; a different one means the spec changed (`kubectl set image`).
pub const CONTAINER_HASH: &str = "io.kubernetes.container.hash";
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

/// The hash of a container's spec, as the kubelet's `HashContainer` labels containers with:
/// 32-bit FNV-1a over the spec's JSON, in hex. Stable across kubelet restarts (no random seed).
pub fn spec_hash(container: &Container) -> String {
    let text = serde_json::to_string(container).unwrap_or_default();
    let mut hash: u32 = 0x811c_9dc5;
    for byte in text.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    format!("{hash:x}")
}

/// Whether a container was created from another spec than `container`; containers created
/// without the hash label (by an older kubelet) are taken as unchanged.
pub fn spec_changed(labels: &BTreeMap<String, String>, container: &Container) -> bool {
    labels
        .get(CONTAINER_HASH)
        .is_some_and(|hash| *hash != spec_hash(container))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_hash_changes_with_the_image_only() {
        let one = Container {
            name: "c".into(),
            image: Some("img:1".into()),
            ..Container::default()
        };
        let two = Container {
            image: Some("img:2".into()),
            ..one.clone()
        };
        assert_eq!(spec_hash(&one), spec_hash(&one.clone()));
        assert_ne!(spec_hash(&one), spec_hash(&two));
        let mut labels = BTreeMap::new();
        assert!(!spec_changed(&labels, &two), "no label: adopted as is");
        labels.insert(CONTAINER_HASH.to_string(), spec_hash(&one));
        assert!(!spec_changed(&labels, &one));
        assert!(spec_changed(&labels, &two));
    }
}
