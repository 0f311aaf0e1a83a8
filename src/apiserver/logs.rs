//! `pods/log`: the API server asks the Pod's kubelet for the container's log, as upstream
//! proxies to the kubelet's `/containerLogs/<namespace>/<pod>/<container>`, and streams the
//! answer through as it comes (`follow` goes on until the container ends or the client goes),
//! holding no more of it than a chunk in flight.

use std::sync::Arc;

use bytes::Bytes;
use http::{header, Response};
use http_body_util::BodyExt as _;
use serde_json::Value;

use super::handler::Body;
use super::kubelet_client::Kubelet;
use super::request::Query;
use super::Server;
use crate::meta::{ApiError, Cause, GroupResource};

/// Upstream `ValidatePodLogOptions`: 422 for values that parse but make no sense.
fn validate(name: &str, query: &Query) -> Result<(), ApiError> {
    let mut causes = Vec::new();
    let mut invalid = |field: &str, value: i64, why: &str| {
        causes.push(Cause {
            reason: "FieldValueInvalid".into(),
            message: format!("Invalid value: {value}: {why}"),
            field: field.into(),
        });
    };
    if let Some(n) = query.integer("tailLines")?.filter(|n| *n < 0) {
        invalid("tailLines", n, "must be greater than or equal to 0");
    }
    if let Some(n) = query.integer("limitBytes")?.filter(|n| *n < 1) {
        invalid("limitBytes", n, "must be greater than 0");
    }
    let since_seconds = query.integer("sinceSeconds")?;
    if let Some(n) = since_seconds.filter(|n| *n < 1) {
        invalid("sinceSeconds", n, "must be greater than 0");
    }
    let since_time = query.get("sinceTime").filter(|t| !t.is_empty());
    if let Some(t) = since_time {
        t.parse::<jiff::Timestamp>().map_err(|_| {
            ApiError::bad_request(format!(
                "invalid value {t:?} for query parameter \"sinceTime\": must be an RFC 3339 time"
            ))
        })?;
    }
    if since_seconds.is_some() && since_time.is_some() {
        causes.push(Cause {
            reason: "FieldValueForbidden".into(),
            message: "Forbidden: at most one of sinceTime or sinceSeconds may be specified".into(),
            field: "".into(),
        });
    }
    for key in [
        "follow",
        "previous",
        "timestamps",
        "insecureSkipTLSVerifyBackend",
    ] {
        query.flag(key)?;
    }
    if causes.is_empty() {
        Ok(())
    } else {
        let gr = GroupResource {
            group: "",
            resource: "podlogoptions",
        };
        Err(ApiError::invalid("PodLogOptions", gr, name, causes))
    }
}

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

/// The log of the container the query names, streamed from its kubelet.
pub async fn serve(
    server: &Arc<Server>,
    pod: &Value,
    query: &Query,
) -> Result<Response<Body>, ApiError> {
    let name = pod
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let namespace = pod
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("");
    validate(name, query)?;
    let container = container(pod, query)?;
    let previous = query.flag("previous")?;
    // A container that never ran has no log: upstream says why it is waiting.
    let status = [
        "/status/containerStatuses",
        "/status/initContainerStatuses",
        "/status/ephemeralContainerStatuses",
    ]
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
    let params = {
        let mut params = form_urlencoded::Serializer::new(String::new());
        for key in [
            "follow",
            "previous",
            "tailLines",
            "timestamps",
            "sinceSeconds",
            "sinceTime",
            "limitBytes",
        ] {
            if let Some(v) = query.get(key).filter(|v| !v.is_empty()) {
                params.append_pair(key, v);
            }
        }
        params.finish()
    };
    let path = format!("/containerLogs/{namespace}/{name}/{container}?{params}");
    let resp = kubelet
        .send(server, http::Method::GET, &path, &[], Bytes::new())
        .await?;
    let code = resp.status().as_u16();
    if code != 200 {
        // An error is short: read it whole (bounded) to answer in the kubelet's words.
        let body = http_body_util::Limited::new(resp.into_body(), 64 * 1024)
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&body).into_owned();
        return Err(if code >= 500 {
            ApiError::internal(text)
        } else {
            ApiError::bad_request(text)
        });
    }
    let body = resp.into_body().map_err(std::io::Error::other).boxed();
    let mut out = Response::new(body);
    out.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain"),
    );
    Ok(out)
}
