//! The Pod QoS class (upstream `qos.GetPodQOS`).

use crate::registry::pod::validation::spec_of;
use crate::registry::pod::{quantity_milli, slice};
use k8s_openapi::api::core::v1::Pod;
use std::collections::{BTreeMap, BTreeSet};

/// `ComputePodQOS` (v1.32, pod-level resources off): Guaranteed when every container has
/// non-zero cpu and memory limits and the summed requests equal the summed limits; BestEffort
/// when nothing requests or limits cpu/memory; Burstable otherwise.
pub fn pod_qos_class(pod: &Pod) -> &'static str {
    let spec = spec_of(pod);
    let mut requests: BTreeMap<&str, i128> = BTreeMap::new();
    let mut limits: BTreeMap<&str, i128> = BTreeMap::new();
    let mut guaranteed = true;
    for c in spec.containers.iter().chain(slice(&spec.init_containers)) {
        let r = c.resources.as_ref();
        for (name, q) in r.and_then(|r| r.requests.as_ref()).into_iter().flatten() {
            if name == "cpu" || name == "memory" {
                if let Some(v) = quantity_milli(&q.0).filter(|v| *v > 0) {
                    let e = requests.entry(name.as_str()).or_insert(0);
                    *e = e.saturating_add(v);
                }
            }
        }
        let mut found = BTreeSet::new();
        for (name, q) in r.and_then(|r| r.limits.as_ref()).into_iter().flatten() {
            if name == "cpu" || name == "memory" {
                if let Some(v) = quantity_milli(&q.0).filter(|v| *v > 0) {
                    found.insert(name.as_str());
                    let e = limits.entry(name.as_str()).or_insert(0);
                    *e = e.saturating_add(v);
                }
            }
        }
        if found.len() < 2 {
            guaranteed = false;
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return "BestEffort";
    }
    if guaranteed
        && requests.iter().all(|(k, v)| limits.get(k) == Some(v))
        && requests.len() == limits.len()
    {
        return "Guaranteed";
    }
    "Burstable"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::pod::test_support::*;

    // ---- QoS and selectors --------------------------------------------------------------------

    #[test]
    fn qos_class_follows_requests_and_limits() {
        let cases = [
            (
                json!([{"name": "a", "image": "x"}]),
                json!([]),
                "BestEffort",
            ),
            (
                json!([{"name": "a", "image": "x", "resources": {"requests": {"cpu": "100m"}}}]),
                json!([]),
                "Burstable",
            ),
            (
                json!([{"name": "a", "image": "x", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1", "memory": "1Gi"}}}]),
                json!([]),
                "Guaranteed",
            ),
            (
                json!([{"name": "a", "image": "x", "resources": {"limits": {"cpu": "1"}, "requests": {"cpu": "1"}}}]),
                json!([]),
                "Burstable",
            ),
            (
                json!([{"name": "a", "image": "x", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m", "memory": "1Gi"}}}]),
                json!([]),
                "Burstable",
            ),
            (
                json!([{"name": "a", "image": "x", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1", "memory": "1Gi"}}}]),
                json!([{"name": "i", "image": "x"}]),
                "Burstable",
            ),
            (
                json!([{"name": "a", "image": "x", "resources": {"requests": {"example.com/gpu": "1"}}}]),
                json!([]),
                "BestEffort",
            ),
            (
                json!([{"name": "a", "image": "x", "resources": {"requests": {"cpu": "0"}}}]),
                json!([]),
                "BestEffort",
            ),
        ];
        for (containers, inits, want) in cases {
            let pod = pod_from(
                json!({"spec": {"containers": containers.clone(), "initContainers": inits}}),
            );
            assert_eq!(pod_qos_class(&pod), want, "containers {containers}");
        }
    }
}
