//! `pods/log`: the API server asks the Pod's kubelet for the container's log, as upstream
//! proxies to the kubelet's `/containerLogs/<namespace>/<pod>/<container>`.
//!
//! Deviation: `follow=true` returns the log as it is now and ends, rather than streaming.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt as _;
use serde_json::Value;

use super::kubelet_client::Kubelet;
use super::request::Query;
use super::Server;
use crate::meta::ApiError;

/// Logs larger than this are cut (upstream streams them; rkube returns them whole).
const MAX_LOG_BYTES: usize = 16 * 1024 * 1024;

fn strings(pod: &Value, pointer: &str) -> Vec<String> {
    pod.pointer(pointer)
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|c| c["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Which container: the one named, or the only one; upstream's messages otherwise.
fn container(pod: &Value, query: &Query) -> Result<String, ApiError> {
    let name = pod
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let containers = strings(pod, "/spec/containers");
    let mut all = containers.clone();
    all.extend(strings(pod, "/spec/initContainers"));
    match query.get("container").filter(|c| !c.is_empty()) {
        Some(c) if all.iter().any(|n| n == c) => Ok(c.to_string()),
        Some(c) => Err(ApiError::bad_request(format!(
            "container {c} is not valid for pod {name}"
        ))),
        None if containers.len() == 1 => Ok(containers[0].clone()),
        None => Err(ApiError::bad_request(format!(
            "a container name must be specified for pod {name}, choose one of: [{}]",
            all.join(" ")
        ))),
    }
}

/// The log text of the container the query names.
pub async fn fetch(server: &Arc<Server>, pod: &Value, query: &Query) -> Result<Bytes, ApiError> {
    let name = pod
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let namespace = pod
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("");
    let container = container(pod, query)?;
    let previous = query.flag("previous")?;
    // A container that never ran has no log: upstream says why it is waiting.
    let status = ["/status/containerStatuses", "/status/initContainerStatuses"]
        .iter()
        .filter_map(|p| pod.pointer(p).and_then(Value::as_array))
        .flatten()
        .find(|s| s["name"] == container.as_str())
        .cloned();
    let never_ran = status.as_ref().is_none_or(|s| {
        s["state"].get("waiting").is_some() && s["lastState"].get("terminated").is_none()
    });
    if never_ran && !previous {
        let reason = status
            .as_ref()
            .and_then(|s| s.pointer("/state/waiting/reason"))
            .and_then(Value::as_str)
            .unwrap_or("ContainerCreating");
        return Err(ApiError::bad_request(format!(
            "container {container:?} in pod {name:?} is waiting to start: {reason}"
        )));
    }
    let node_name = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .unwrap_or("");
    let kubelet = Kubelet::of(server, node_name).await?;
    let mut path = format!("/containerLogs/{namespace}/{name}/{container}?");
    for key in ["previous", "tailLines", "timestamps", "sinceSeconds"] {
        if let Some(v) = query.get(key) {
            path.push_str(&format!(
                "{key}={}&",
                form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>()
            ));
        }
    }
    let resp = kubelet
        .send(server, http::Method::GET, &path, &[], Bytes::new())
        .await?;
    let code = resp.status().as_u16();
    let body = tokio::time::timeout(
        Duration::from_secs(30),
        http_body_util::Limited::new(resp.into_body(), MAX_LOG_BYTES).collect(),
    )
    .await
    .map_err(|_| ApiError::timeout("the kubelet did not send the log within 30s"))?
    .map_err(|e| {
        ApiError::service_unavailable(format!(
            "cannot read the log from the kubelet of node {node_name:?}: {e}"
        ))
    })?
    .to_bytes();
    if code != 200 {
        let text = String::from_utf8_lossy(&body).into_owned();
        return Err(if code >= 500 {
            ApiError::internal(text)
        } else {
            ApiError::bad_request(text)
        });
    }
    match query.count("limitBytes")? {
        Some(limit) if (limit as usize) < body.len() => Ok(body.slice(..limit as usize)),
        _ => Ok(body),
    }
}
