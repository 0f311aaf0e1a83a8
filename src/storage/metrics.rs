//! etcd request latencies, as kube-apiserver names them (`etcd_request_duration_seconds`, by
//! operation and resource), for the API server's `/metrics`.

use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Upstream's buckets for etcd and request latencies, in seconds.
pub const LATENCY_BUCKETS: [f64; 23] = [
    0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0,
    10.0, 15.0, 20.0, 30.0, 45.0, 60.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EtcdLabels {
    operation: &'static str,
    /// The resource the key belongs to (`pods`, `leases`, ...).
    r#type: String,
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// The latency of every etcd request, by operation (`get`, `list`, `create`, `update`,
/// `delete`) and the resource of its key.
#[derive(Clone)]
pub struct EtcdMetrics {
    /// The key prefix every resource's keys start with (`/registry`).
    prefix: String,
    durations: Family<EtcdLabels, Histogram, fn() -> Histogram>,
}

impl EtcdMetrics {
    pub fn new(prefix: &str) -> Self {
        EtcdMetrics {
            prefix: prefix.trim_end_matches('/').to_string(),
            durations: Family::new_with_constructor(latency_histogram),
        }
    }

    /// The resource a key or key prefix belongs to: its first segment after the prefix.
    fn resource_of<'k>(&self, key: &'k str) -> &'k str {
        let rest = key.strip_prefix(self.prefix.as_str()).unwrap_or(key);
        rest.trim_start_matches('/').split('/').next().unwrap_or("")
    }

    /// Records one request on `key` that started at `started`.
    pub fn observe(&self, operation: &'static str, key: &str, started: Instant) {
        let labels = EtcdLabels {
            operation,
            r#type: self.resource_of(key).to_string(),
        };
        self.durations
            .get_or_create(&labels)
            .observe(started.elapsed().as_secs_f64());
    }

    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "etcd_request_duration_seconds",
            "Etcd request latency in seconds for each operation and object type.",
            self.durations.clone(),
        );
    }
}

impl Default for EtcdMetrics {
    fn default() -> Self {
        EtcdMetrics::new("/registry")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_by_operation_and_resource() {
        let metrics = EtcdMetrics::new("/registry/");
        let started = Instant::now();
        metrics.observe("get", "/registry/pods/default/a", started);
        metrics.observe("get", "/registry/pods/default/b", started);
        metrics.observe("list", "/registry/leases/", started);
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encodes");
        assert!(
            text.contains(r#"etcd_request_duration_seconds_count{operation="get",type="pods"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"etcd_request_duration_seconds_count{operation="list",type="leases"} 1"#
            ),
            "{text}"
        );
        assert!(text.contains(r#"le="0.005""#), "{text}");
    }
}
