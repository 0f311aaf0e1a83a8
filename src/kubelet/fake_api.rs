//! `FakeApi`: a tiny in-process stand-in for the API server, for unit tests of the pod worker.
//!
//! It speaks plain HTTP on a loopback port and answers only what a pod worker asks: status
//! writes of the Pods it holds (`PATCH …/pods/<name>/status`, the merge patch applied to the
//! status), the final delete, and Event writes (accepted and kept). Every request is recorded,
//! so a test can assert what the worker told the API.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use k8s_openapi::api::core::v1::Pod;
use serde_json::{json, Value};

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: Method,
    pub path: String,
    pub body: Value,
}

#[derive(Default)]
struct State {
    /// Pods by `namespace/name`.
    pods: HashMap<String, Value>,
    seen: Vec<Seen>,
    version: u64,
}

/// The fake API server; dropped, it stops serving.
pub struct FakeApi {
    state: Arc<Mutex<State>>,
    client: kube::Client,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeApi {
    pub async fn start() -> FakeApi {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let address = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let served = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let state = served.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(handle(&state, req).await) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        let config = kube::Config::new(format!("http://{address}").parse().unwrap());
        let client = kube::Client::try_from(config).unwrap();
        FakeApi {
            state,
            client,
            task,
        }
    }

    /// A client of this fake.
    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    /// Stores (or replaces) a Pod, as a watch would then deliver it.
    pub fn put(&self, pod: &Pod) {
        let key = format!(
            "{}/{}",
            pod.metadata.namespace.as_deref().unwrap_or("default"),
            pod.metadata.name.as_deref().unwrap_or("")
        );
        let value = serde_json::to_value(pod).unwrap();
        let mut state = self.state.lock().unwrap();
        let status = state.pods.get(&key).and_then(|p| p.get("status").cloned());
        let mut value = value;
        if value.get("status").is_none() {
            if let Some(status) = status {
                value["status"] = status;
            }
        }
        state.pods.insert(key, value);
    }

    /// The stored Pod `namespace/name`, with the status the worker wrote.
    pub fn pod(&self, namespace: &str, name: &str) -> Option<Pod> {
        let state = self.state.lock().unwrap();
        let value = state.pods.get(&format!("{namespace}/{name}"))?.clone();
        serde_json::from_value(value).ok()
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    /// The reasons of the Events recorded so far, in order.
    pub fn event_reasons(&self) -> Vec<String> {
        self.seen()
            .iter()
            .filter(|s| s.method == Method::POST && s.path.ends_with("/events"))
            .filter_map(|s| s.body.get("reason")?.as_str().map(str::to_string))
            .collect()
    }
}

async fn handle(state: &Mutex<State>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut state = state.lock().unwrap();
    state.seen.push(Seen {
        method: method.clone(),
        path: path.clone(),
        body: body.clone(),
    });
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (&method, parts.as_slice()) {
        (&Method::POST, ["api", "v1", "namespaces", _, "events"]) => {
            reply(StatusCode::CREATED, &body)
        }
        (&Method::PATCH, ["api", "v1", "namespaces", ns, "pods", name, "status"]) => {
            let key = format!("{ns}/{name}");
            state.version += 1;
            let version = state.version.to_string();
            let Some(pod) = state.pods.get_mut(&key) else {
                return not_found(name);
            };
            if let Some(status) = body.get("status") {
                let mut merged = pod.get("status").cloned().unwrap_or_else(|| json!({}));
                merge(&mut merged, status);
                pod["status"] = merged;
            }
            pod["metadata"]["resourceVersion"] = json!(version);
            let pod = pod.clone();
            reply(StatusCode::OK, &pod)
        }
        (&Method::DELETE, ["api", "v1", "namespaces", ns, "pods", name]) => {
            match state.pods.remove(&format!("{ns}/{name}")) {
                Some(pod) => reply(StatusCode::OK, &pod),
                None => not_found(name),
            }
        }
        _ => not_found(parts.last().copied().unwrap_or("")),
    }
}

/// RFC 7386 merge.
fn merge(target: &mut Value, patch: &Value) {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(target), Some(patch)) => {
            for (k, v) in patch {
                if v.is_null() {
                    target.remove(k);
                } else {
                    merge(target.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        _ => *target = patch.clone(),
    }
}

fn reply(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    response
}

fn not_found(name: &str) -> Response<Full<Bytes>> {
    reply(
        StatusCode::NOT_FOUND,
        &json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": format!("pods \"{name}\" not found"), "reason": "NotFound",
            "details": {"name": name, "kind": "pods"}, "code": 404,
        }),
    )
}
