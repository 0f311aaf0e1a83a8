//! The resource metrics API, `metrics.k8s.io/v1beta1` NodeMetrics and PodMetrics, built in:
//! kind needs metrics-server for `kubectl top`; rkube answers from the kubelets' Summary API
//! (`/stats/summary`, the containers' Docker statistics) when asked, as metrics-server would
//! from its last scrape. Read-only (`get`, `list`, label selectors), authorized as any resource
//! of the group.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Response, StatusCode};
use http_body_util::BodyExt as _;
use serde_json::{json, Value};

use super::handler::{attributes, authorize, selectors, Body};
use super::kubelet_client::Kubelet;
use super::request::{Query, ResourcePath};
use super::Server;
use crate::meta::{ApiError, GroupResource};
use crate::registry::{ListOptions, ResourceInfo};
use crate::tls::User;

pub const GROUP: &str = "metrics.k8s.io";
pub const VERSION: &str = "v1beta1";

pub static NODE_METRICS: ResourceInfo = ResourceInfo {
    group: GROUP,
    version: VERSION,
    kind: "NodeMetrics",
    plural: "nodes",
    singular: "",
    short_names: &[],
    categories: &[],
    namespaced: false,
    subresources: &[],
};

pub static POD_METRICS: ResourceInfo = ResourceInfo {
    group: GROUP,
    version: VERSION,
    kind: "PodMetrics",
    plural: "pods",
    singular: "",
    short_names: &[],
    categories: &[],
    namespaced: true,
    subresources: &[],
};

/// What discovery lists for the group, besides the registry's kinds.
pub fn infos() -> [&'static ResourceInfo; 2] {
    [&NODE_METRICS, &POD_METRICS]
}

/// The verbs the group serves.
pub const VERBS: &[&str] = &["get", "list"];

/// How long asking a kubelet for its summary may take (its engine samples for a second).
const SUMMARY_TIMEOUT: Duration = Duration::from_secs(10);

/// The window a sample covers: Docker's two readings a second apart.
const WINDOW: &str = "1s";

fn cpu(nano_cores: u64) -> String {
    format!("{nano_cores}n")
}

fn memory(bytes: u64) -> String {
    format!("{}Ki", bytes / 1024)
}

/// A kubelet's summary, or None when it cannot give one (a node without metrics is left out,
/// as metrics-server leaves it out).
async fn summary(server: &Arc<Server>, node: &str) -> Option<Value> {
    let ask = async {
        let kubelet = Kubelet::of(server, node).await.ok()?;
        let resp = kubelet
            .send(server, Method::GET, "/stats/summary", &[], Bytes::new())
            .await
            .ok()?;
        if resp.status() != StatusCode::OK {
            return None;
        }
        let body = http_body_util::Limited::new(resp.into_body(), 16 << 20)
            .collect()
            .await
            .ok()?
            .to_bytes();
        serde_json::from_slice::<Value>(&body).ok()
    };
    tokio::time::timeout(SUMMARY_TIMEOUT, ask)
        .await
        .ok()
        .flatten()
}

/// `nodemetrics.metrics.k8s.io "x" not found`, as metrics-server words it.
fn not_found(info: &ResourceInfo, name: &str) -> ApiError {
    let resource = if info.namespaced {
        "podmetrics"
    } else {
        "nodemetrics"
    };
    ApiError::not_found(
        GroupResource {
            group: GROUP,
            resource,
        },
        name,
    )
}

fn meta(obj: &Value, now: &str) -> Value {
    let mut meta = json!({
        "name": obj.pointer("/metadata/name").cloned().unwrap_or(Value::Null),
        "creationTimestamp": now,
    });
    if let Some(ns) = obj.pointer("/metadata/namespace") {
        meta["namespace"] = ns.clone();
    }
    if let Some(labels) = obj.pointer("/metadata/labels") {
        meta["labels"] = labels.clone();
    }
    meta
}

fn answer(value: &Value) -> Response<Body> {
    let mut resp = Response::new(
        http_body_util::Full::new(Bytes::from(value.to_string()))
            .map_err(|never| match never {})
            .boxed(),
    );
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp
}

/// Serves `/apis/metrics.k8s.io/v1beta1/<rest>`.
pub async fn serve(
    server: &Arc<Server>,
    user: &User,
    method: &Method,
    rest: &[&str],
    query: &Query,
) -> Result<Response<Body>, ApiError> {
    let (info, namespace, name) = match rest {
        ["nodes"] => (&NODE_METRICS, "", ""),
        ["nodes", name] => (&NODE_METRICS, "", *name),
        ["pods"] => (&POD_METRICS, "", ""),
        ["namespaces", ns, "pods"] => (&POD_METRICS, *ns, ""),
        ["namespaces", ns, "pods", name] => (&POD_METRICS, *ns, *name),
        _ => return Err(ApiError::path_not_found()),
    };
    let gr = GroupResource {
        group: GROUP,
        resource: info.plural,
    };
    if *method != Method::GET {
        return Err(ApiError::method_not_supported(
            gr,
            &method.to_string().to_lowercase(),
        ));
    }
    let verb = match (name.is_empty(), query.flag("watch")?) {
        (_, true) => return Err(ApiError::method_not_supported(gr, "watch")),
        (true, false) => "list",
        (false, false) => "get",
    };
    let path = ResourcePath {
        group: GROUP.into(),
        version: VERSION.into(),
        namespace: namespace.to_string(),
        resource: info.plural.into(),
        name: name.to_string(),
        ..ResourcePath::default()
    };
    authorize(&server.rbac, user, &attributes(verb, &path, query), None).await?;
    let (label, _) = selectors(query)?;
    let now = jiff::Timestamp::now().to_string();
    let store_of = |plural: &str| {
        server
            .registry
            .get("", plural)
            .cloned()
            .ok_or_else(|| ApiError::internal(format!("no {plural} registry")))
    };
    let items: Vec<Value> = if info.namespaced {
        let pods = store_of("pods")?;
        let options = ListOptions {
            label,
            any_version: true,
            ..ListOptions::default()
        };
        let listed = pods.list(namespace, &options).await?;
        let wanted: Vec<Arc<Value>> = listed
            .items
            .into_iter()
            .map(|p| p.object.into_arc())
            .filter(|p| name.is_empty() || p.pointer("/metadata/name") == Some(&json!(name)))
            .collect();
        let mut by_node: BTreeMap<String, Vec<Arc<Value>>> = BTreeMap::new();
        for pod in wanted {
            if let Some(node) = pod.pointer("/spec/nodeName").and_then(Value::as_str) {
                by_node
                    .entry(node.to_string())
                    .or_default()
                    .push(pod.clone());
            }
        }
        let summaries =
            futures::future::join_all(by_node.keys().map(|node| summary(server, node))).await;
        let mut items = Vec::new();
        for ((_, pods), summary) in by_node.iter().zip(summaries) {
            let Some(summary) = summary else { continue };
            let reported = summary["pods"].as_array().cloned().unwrap_or_default();
            for pod in pods {
                let uid = pod.pointer("/metadata/uid").cloned().unwrap_or(Value::Null);
                let Some(stats) = reported.iter().find(|p| p["podRef"]["uid"] == uid) else {
                    continue;
                };
                let containers: Vec<Value> = stats["containers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|c| {
                        json!({"name": c["name"], "usage": {
                            "cpu": cpu(c["cpu"]["usageNanoCores"].as_u64().unwrap_or(0)),
                            "memory": memory(c["memory"]["workingSetBytes"].as_u64().unwrap_or(0)),
                        }})
                    })
                    .collect();
                items.push(json!({
                    "kind": "PodMetrics",
                    "apiVersion": format!("{GROUP}/{VERSION}"),
                    "metadata": meta(pod, &now),
                    "timestamp": now,
                    "window": WINDOW,
                    "containers": containers,
                }));
            }
        }
        items
    } else {
        let nodes = store_of("nodes")?;
        let options = ListOptions {
            label,
            any_version: true,
            ..ListOptions::default()
        };
        let listed: Vec<Arc<Value>> = nodes
            .list("", &options)
            .await?
            .items
            .into_iter()
            .map(|n| n.object.into_arc())
            .filter(|n| name.is_empty() || n.pointer("/metadata/name") == Some(&json!(name)))
            .collect();
        let summaries = futures::future::join_all(listed.iter().map(|n| {
            let node = n
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("");
            summary(server, node)
        }))
        .await;
        listed
            .iter()
            .zip(summaries)
            .filter_map(|(node, summary)| {
                let summary = summary?;
                Some(json!({
                    "kind": "NodeMetrics",
                    "apiVersion": format!("{GROUP}/{VERSION}"),
                    "metadata": meta(node, &now),
                    "timestamp": now,
                    "window": WINDOW,
                    "usage": {
                        "cpu": cpu(summary["node"]["cpu"]["usageNanoCores"].as_u64().unwrap_or(0)),
                        "memory": memory(summary["node"]["memory"]["workingSetBytes"].as_u64().unwrap_or(0)),
                    },
                }))
            })
            .collect()
    };
    if !name.is_empty() {
        return items
            .into_iter()
            .next()
            .map(|item| answer(&item))
            .ok_or_else(|| not_found(info, name));
    }
    Ok(answer(&json!({
        "kind": format!("{}List", info.kind),
        "apiVersion": format!("{GROUP}/{VERSION}"),
        "metadata": {},
        "items": items,
    })))
}
