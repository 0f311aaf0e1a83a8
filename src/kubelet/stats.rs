//! `/stats/summary`: what the node's Pods use now, in the shape of upstream kubelet's Summary
//! API (`node` and `pods[].containers[]` with `cpu.usageNanoCores` and
//! `memory.workingSetBytes`), from the engine's statistics of each running container. The API
//! server's built-in resource metrics API (`kubectl top`) reads it.
//!
//! Deviation: the node's figures are the sum of its Pods' containers; the machine's other
//! processes (and the other nodes of a cluster on the same machine) are not counted.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Value};

use super::labels;
use super::runtime::{ContainerState, RunState, Runtime};

/// The summary of the Pods running on `node`.
pub async fn summary(runtime: &Arc<dyn Runtime>, node: &str) -> Result<Value, String> {
    let filter = [(labels::NODE.to_string(), node.to_string())];
    let containers: Vec<ContainerState> = runtime
        .list(&filter)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|c| c.state == RunState::Running)
        .filter(|c| c.labels.get(labels::KIND).map(String::as_str) != Some("sandbox"))
        .collect();
    let sampled = futures::future::join_all(containers.iter().map(|c| runtime.stats(&c.id))).await;
    let now = jiff::Timestamp::now().to_string();
    let (mut node_cpu, mut node_memory) = (0u64, 0u64);
    let mut pods: BTreeMap<String, (Value, Vec<Value>)> = BTreeMap::new();
    for (container, stats) in containers.iter().zip(sampled) {
        // A container that stopped between the list and its sample is left out.
        let Ok(stats) = stats else { continue };
        let label = |key: &str| container.labels.get(key).cloned().unwrap_or_default();
        node_cpu = node_cpu.saturating_add(stats.cpu_nano_cores);
        node_memory = node_memory.saturating_add(stats.memory_working_set_bytes);
        let pod_ref = json!({"name": label(labels::POD_NAME),
            "namespace": label(labels::POD_NAMESPACE), "uid": label(labels::POD_UID)});
        let entry = pods
            .entry(label(labels::POD_UID))
            .or_insert_with(|| (pod_ref, Vec::new()));
        entry.1.push(json!({
            "name": label(labels::CONTAINER_NAME),
            "startTime": container.started_at.map(|t| t.to_string()),
            "cpu": {"time": now, "usageNanoCores": stats.cpu_nano_cores},
            "memory": {"time": now, "workingSetBytes": stats.memory_working_set_bytes},
        }));
    }
    let pods: Vec<Value> = pods
        .into_values()
        .map(|(pod_ref, containers)| json!({"podRef": pod_ref, "containers": containers}))
        .collect();
    Ok(json!({
        "node": {
            "nodeName": node,
            "cpu": {"time": now, "usageNanoCores": node_cpu},
            "memory": {"time": now, "workingSetBytes": node_memory},
        },
        "pods": pods,
    }))
}
