//! Pods, nodes and helpers shared by the scheduler framework's unit tests.

use super::*;
pub(super) use k8s_openapi::api::core::v1::PodStatus;
pub(super) use rand::rngs::StdRng;
pub(super) use rand::{Rng, SeedableRng};
pub(super) use serde_json::{json, Value};

pub(super) const GI: i64 = 1024 * 1024 * 1024;
pub(super) const MI: i64 = 1024 * 1024;

pub(super) fn pod(v: Value) -> Pod {
    serde_json::from_value(v).expect("test pod is valid JSON for a Pod")
}

/// A Pod whose one container requests `cpu`/`memory` (None leaves the request out), with
/// `extra` merged into its spec.
pub(super) fn pod_req(uid: &str, cpu: Option<&str>, memory: Option<&str>, extra: Value) -> Pod {
    let mut requests = serde_json::Map::new();
    if let Some(cpu) = cpu {
        requests.insert("cpu".into(), json!(cpu));
    }
    if let Some(memory) = memory {
        requests.insert("memory".into(), json!(memory));
    }
    let mut spec = json!({
        "containers": [{"name": "app", "image": "app", "resources": {"requests": requests}}]
    });
    merge(&mut spec, extra);
    pod(json!({"metadata": {"name": uid, "namespace": "default", "uid": uid}, "spec": spec}))
}

pub(super) fn requesting(uid: &str, cpu: &str, memory: &str) -> Pod {
    pod_req(uid, Some(cpu), Some(memory), json!({}))
}

/// A node with this allocatable, and `extra` merged into the whole object.
pub(super) fn node(name: &str, cpu: &str, memory: &str, pods: &str, extra: Value) -> NodeInfo {
    let mut v = json!({
        "metadata": {"name": name},
        "status": {"allocatable": {"cpu": cpu, "memory": memory, "pods": pods}}
    });
    merge(&mut v, extra);
    NodeInfo::new(serde_json::from_value(v).expect("test node is valid JSON for a Node"))
}

pub(in crate::scheduler) fn merge(into: &mut Value, from: Value) {
    match (into, from) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                merge(a.entry(k).or_insert(Value::Null), v);
            }
        }
        (slot, v) => *slot = v,
    }
}

pub(super) fn plain_node(name: &str) -> NodeInfo {
    node(name, "4", "8Gi", "110", json!({}))
}

pub(super) fn reasons(result: Result<(), Rejection>) -> Vec<String> {
    result.err().map(|r| r.reasons).unwrap_or_default()
}
