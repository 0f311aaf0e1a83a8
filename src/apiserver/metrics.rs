//! `/metrics`: request counts and latencies, watches in flight and etcd latencies in the
//! Prometheus text format, named and labelled as kube-apiserver names them
//! (`apiserver_request_total`, `apiserver_request_duration_seconds`,
//! `apiserver_longrunning_requests`, `etcd_request_duration_seconds`).
//!
//! Labels come only from what the server serves (a served resource, a known path), never
//! from free text in a request, so hostile requests cannot grow the label sets.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::handler::exact_field;
use super::request::{parse_resource_path, Query};
use crate::registry::Registry as Kinds;
use crate::storage::{EtcdMetrics, LATENCY_BUCKETS};

/// The Content-Type of the exposition.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What a request is, as upstream's request metrics label it.
#[derive(Clone, Debug, Default, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// GET, LIST, WATCH, POST, PUT, PATCH, APPLY, DELETE or CONNECT.
    pub verb: String,
    /// `All` for a dry run, else empty.
    pub dry_run: String,
    pub group: String,
    pub version: String,
    pub resource: String,
    /// A resource request's subresource, or a non-resource request's path.
    pub subresource: String,
    /// `resource`, `namespace` or `cluster` (empty for non-resource requests).
    pub scope: String,
    pub component: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabels {
    #[prometheus(flatten)]
    request: RequestLabels,
    code: String,
}

impl RequestLabels {
    /// The labels of a request, or None for one that names nothing served (a 404 to be).
    pub fn of(
        method: &http::Method,
        path: &str,
        query: &Query,
        content_type: &str,
        kinds: &Kinds,
    ) -> Option<RequestLabels> {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let component = "apiserver".to_string();
        let mut verb = method.as_str().to_string();
        let Some(mut p) = parse_resource_path(&segments) else {
            let known = matches!(
                segments.first().copied(),
                Some("version" | "healthz" | "livez" | "readyz" | "metrics" | "openapi")
            ) || matches!(segments.as_slice(), ["api" | "apis"] | ["apis", _]);
            return known.then(|| RequestLabels {
                verb,
                subresource: format!("/{}", segments.join("/")),
                component,
                ..RequestLabels::default()
            });
        };
        // `/api/v1/namespaces/<ns>/status` is the namespace's own subresource.
        if p.group.is_empty()
            && p.name.is_empty()
            && !p.namespace.is_empty()
            && matches!(p.resource.as_str(), "status" | "finalize")
        {
            p.subresource = std::mem::take(&mut p.resource);
            p.name = std::mem::take(&mut p.namespace);
            p.resource = "namespaces".into();
        }
        let served = kinds.get(&p.group, &p.resource).is_some_and(|s| {
            s.info().version == p.version
                && (p.subresource.is_empty()
                    || s.info().subresources.contains(&p.subresource.as_str()))
        }) || (p.group.is_empty() && p.resource == "bindings");
        if !served {
            return None;
        }
        // A list or watch selecting one object by `metadata.name` names it, as upstream's
        // request info does; a create is about one object too (upstream's `CleanScope`).
        let read = matches!(verb.as_str(), "GET" | "HEAD");
        let selected = read
            && p.name.is_empty()
            && exact_field(query, "metadata.name").is_some_and(is_path_segment_name);
        let scope = if !p.name.is_empty() || selected || verb == "POST" {
            "resource"
        } else if !p.namespace.is_empty() {
            "namespace"
        } else {
            "cluster"
        };
        // A watch flag that does not parse fails the request later, as a plain GET would.
        let watch = query.flag("watch").unwrap_or(false);
        verb = match verb.as_str() {
            "GET" if watch => "WATCH".into(),
            // A read of one selected object counts as a GET, as upstream's `CanonicalVerb`.
            "GET" if scope != "resource" => "LIST".into(),
            _ if matches!(p.subresource.as_str(), "exec" | "attach" | "portforward") => {
                "CONNECT".into()
            }
            "PATCH" if content_type.starts_with("application/apply-patch") => "APPLY".into(),
            _ => verb,
        };
        let dry_run = if query.get("dryRun") == Some("All") {
            "All"
        } else {
            ""
        };
        Some(RequestLabels {
            verb,
            dry_run: dry_run.into(),
            group: p.group,
            version: p.version,
            resource: p.resource,
            subresource: p.subresource,
            scope: scope.into(),
            component,
        })
    }
}

/// Whether `name` can stand in a path as one segment (upstream's `IsValidPathSegmentName`).
fn is_path_segment_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '%'])
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// The API server's metrics and the etcd latencies of its storage.
pub struct Metrics {
    registry: Registry,
    requests: Family<CodeLabels, Counter>,
    durations: Family<RequestLabels, Histogram, fn() -> Histogram>,
    longrunning: Family<RequestLabels, Gauge>,
}

/// Counts one long-running request (a watch) while it is alive.
pub struct InFlight {
    gauge: Gauge,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

impl Metrics {
    pub fn new(etcd: &EtcdMetrics) -> Metrics {
        let mut registry = Registry::default();
        let requests = Family::<CodeLabels, Counter>::default();
        let durations = Family::<RequestLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        let longrunning = Family::<RequestLabels, Gauge>::default();
        registry.register(
            "apiserver_request",
            "Counter of apiserver requests broken out for each verb, dry run value, group, version, resource, scope, component, and HTTP response code.",
            requests.clone(),
        );
        registry.register(
            "apiserver_request_duration_seconds",
            "Response latency distribution in seconds for each verb, dry run value, group, version, resource, subresource, scope and component.",
            durations.clone(),
        );
        registry.register(
            "apiserver_longrunning_requests",
            "Gauge of all active long-running apiserver requests broken out by verb, group, version, resource, scope and component. Not all requests are tracked this way.",
            longrunning.clone(),
        );
        etcd.register(&mut registry);
        Metrics {
            registry,
            requests,
            durations,
            longrunning,
        }
    }

    /// Records a finished request (for a watch: its start; its latency is not a response
    /// time, so it is left out of the durations). A path outside the resources that was not
    /// found is not recorded: its label would be whatever the client made up.
    pub fn observe(&self, labels: &RequestLabels, code: u16, elapsed: Duration) {
        if code == 404 && labels.scope.is_empty() {
            return;
        }
        self.requests
            .get_or_create(&CodeLabels {
                request: labels.clone(),
                code: code.to_string(),
            })
            .inc();
        if labels.verb != "WATCH" {
            self.durations
                .get_or_create(labels)
                .observe(elapsed.as_secs_f64());
        }
    }

    /// Counts a long-running request until the returned guard is dropped.
    pub fn long_running(&self, labels: &RequestLabels) -> InFlight {
        let gauge = self.longrunning.get_or_create(labels).clone();
        gauge.inc();
        InFlight { gauge }
    }

    /// The exposition text.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_counted_and_timed_with_upstreams_names() {
        let metrics = Metrics::new(&EtcdMetrics::default());
        let labels = RequestLabels {
            verb: "LIST".into(),
            version: "v1".into(),
            resource: "pods".into(),
            scope: "namespace".into(),
            component: "apiserver".into(),
            ..RequestLabels::default()
        };
        metrics.observe(&labels, 200, Duration::from_millis(3));
        metrics.observe(&labels, 200, Duration::from_millis(30));
        let watch = RequestLabels {
            verb: "WATCH".into(),
            ..labels.clone()
        };
        let guard = metrics.long_running(&watch);
        let text = metrics.encode();
        assert!(text.contains(r#"apiserver_request_total{verb="LIST",dry_run="",group="",version="v1",resource="pods",subresource="",scope="namespace",component="apiserver",code="200"} 2"#), "{text}");
        assert!(
            text.contains(r#"apiserver_request_duration_seconds_bucket{le="0.005",verb="LIST""#),
            "{text}"
        );
        assert!(
            text.contains(r#"apiserver_longrunning_requests{verb="WATCH""#)
                && text.contains("} 1\n"),
            "{text}"
        );
        drop(guard);
        assert!(metrics
            .encode()
            .contains(r#"scope="namespace",component="apiserver"} 0"#));
        let made_up = RequestLabels {
            verb: "GET".into(),
            subresource: "/openapi/v3/made-up".into(),
            component: "apiserver".into(),
            ..RequestLabels::default()
        };
        metrics.observe(&made_up, 404, Duration::from_millis(1));
        assert!(!metrics.encode().contains("made-up"));
    }

    #[tokio::test]
    async fn labels_name_only_what_is_served() {
        let shutdown = tokio_util::sync::CancellationToken::new();
        let registry = Kinds::start(
            crate::storage::MemoryStorage::new(),
            "/registry",
            crate::registry::kinds(Duration::from_secs(60)),
            1 << 20,
            &tokio_util::task::TaskTracker::new(),
            shutdown.clone(),
        )
        .await
        .expect("a registry");
        let of = |method: &str, path: &str, query: &str| {
            RequestLabels::of(
                &method.parse().expect("a method"),
                path,
                &Query::parse(Some(query)),
                "",
                &registry,
            )
            .map(|l| {
                format!(
                    "{} {} {} {} {}",
                    l.verb, l.resource, l.subresource, l.scope, l.dry_run
                )
            })
        };
        let cases = [
            (
                "GET",
                "/api/v1/namespaces/default/pods",
                "",
                Some("LIST pods  namespace "),
            ),
            (
                "GET",
                "/api/v1/pods",
                "watch=1",
                Some("WATCH pods  cluster "),
            ),
            (
                "POST",
                "/api/v1/namespaces/d/pods",
                "dryRun=All",
                Some("POST pods  resource All"),
            ),
            // One object selected by name (a kubelet's watch of a ConfigMap) is a `resource`
            // read, and a list of it counts as a GET, as upstream counts them.
            (
                "GET",
                "/api/v1/namespaces/d/configmaps",
                "watch=true&fieldSelector=metadata.name%3Dcfg",
                Some("WATCH configmaps  resource "),
            ),
            (
                "GET",
                "/api/v1/namespaces/d/configmaps",
                "fieldSelector=metadata.name%3Dcfg",
                Some("GET configmaps  resource "),
            ),
            (
                "GET",
                "/api/v1/namespaces/d/configmaps",
                "fieldSelector=metadata.name%3D..",
                Some("LIST configmaps  namespace "),
            ),
            (
                "GET",
                "/api/v1/configmaps",
                "fieldSelector=metadata.name!%3Dcfg",
                Some("LIST configmaps  cluster "),
            ),
            (
                "POST",
                "/api/v1/namespaces/d/pods/p/eviction",
                "",
                Some("POST pods eviction resource "),
            ),
            (
                "PUT",
                "/api/v1/namespaces/d/status",
                "",
                Some("PUT namespaces status resource "),
            ),
            ("GET", "/api/v1/namespaces/d/pods/p/made-up", "", None),
            ("GET", "/api/v1/made-ups", "", None),
            ("GET", "/made-up", "", None),
            ("GET", "/readyz", "", Some("GET  /readyz  ")),
        ];
        for (method, path, query, want) in cases {
            assert_eq!(
                of(method, path, query).as_deref(),
                want,
                "{method} {path}?{query}"
            );
        }
        shutdown.cancel();
    }
}
