//! The kubelet's HTTPS server: what the API server proxies to it (`pods/log`, and through
//! `nodes/proxy`: `/pods`, `/healthz`).
//!
//! Like the kubelet's port 10250 it requires a client certificate from the cluster CA, and
//! only the API server's identity (group `system:masters`) may read logs. Each kubelet of a
//! machine listens on its own port, which its Node reports in
//! `status.daemonEndpoints.kubeletEndpoint.Port`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use k8s_openapi::api::core::v1::Pod;

use super::labels;
use super::runtime::{LogOptions, Runtime};
use crate::tls::{Authenticator, User};

/// What the server answers from: the runtime, the node's name and the Pods it knows.
pub struct Context {
    pub runtime: Arc<dyn Runtime>,
    pub node: String,
    pub pods: Arc<KnownPods>,
}

/// The Pods bound to this node as the kubelet last saw them, for `/pods`. Written by the main
/// loop only; the lock is never held across an await.
#[derive(Default)]
pub struct KnownPods(std::sync::RwLock<std::collections::BTreeMap<String, Pod>>);

impl KnownPods {
    fn uid(pod: &Pod) -> String {
        pod.metadata.uid.clone().unwrap_or_default()
    }

    /// After a (re)list: exactly these Pods.
    pub fn replace(&self, pods: &[Pod]) {
        let fresh = pods.iter().map(|p| (Self::uid(p), p.clone())).collect();
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = fresh;
    }

    pub fn apply(&self, pod: &Pod) {
        self.0
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(Self::uid(pod), pod.clone());
    }

    pub fn remove(&self, pod: &Pod) {
        self.0
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&Self::uid(pod));
    }

    /// A `PodList` of them, as upstream's kubelet answers `/pods`.
    fn list(&self) -> serde_json::Value {
        let pods = self.0.read().unwrap_or_else(|e| e.into_inner());
        serde_json::json!({"kind": "PodList", "apiVersion": "v1", "metadata": {},
            "items": pods.values().collect::<Vec<_>>()})
    }
}

fn reply(code: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = code;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// Serves on `listener` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    tls: rustls::ServerConfig,
    authenticator: Authenticator,
    ctx: Context,
    tracker: TaskTracker,
    shutdown: CancellationToken,
) {
    let acceptor = TlsAcceptor::from(Arc::new(tls));
    let ctx = Arc::new(ctx);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => return,
        };
        let Ok((stream, _)) = accepted else { continue };
        let acceptor = acceptor.clone();
        let ctx = ctx.clone();
        let authenticator = authenticator.clone();
        tracker.spawn(async move {
            let handshake = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream));
            let Ok(Ok(tls)) = handshake.await else { return };
            let user = authenticator.authenticate(tls.get_ref().1.peer_certificates());
            let service = service_fn(move |req| {
                let ctx = ctx.clone();
                let user = user.clone();
                async move { Ok::<_, std::convert::Infallible>(handle(&ctx, user, req).await) }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}

async fn handle(
    ctx: &Context,
    user: Option<User>,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let Some(user) = user else {
        return reply(StatusCode::UNAUTHORIZED, "Unauthorized");
    };
    if !user.in_group("system:masters") {
        return reply(
            StatusCode::FORBIDDEN,
            format!(
                "Forbidden (user={}, verb=get, resource=nodes, subresource=proxy)",
                user.name
            ),
        );
    }
    let path = req.uri().path().to_string();
    let query: Vec<(String, String)> =
        form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let param = |key: &str| {
        query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match parts.as_slice() {
        ["healthz"] => reply(StatusCode::OK, "ok"),
        ["pods"] => {
            let mut resp = reply(StatusCode::OK, ctx.pods.list().to_string());
            resp.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            );
            resp
        }
        ["containerLogs", ns, pod, container] => {
            let previous = matches!(param("previous"), Some("true" | "1"));
            let options = LogOptions {
                tail: param("tailLines").and_then(|t| t.parse().ok()),
                since: param("sinceSeconds")
                    .and_then(|s| s.parse::<i64>().ok())
                    .and_then(|s| {
                        jiff::Timestamp::now()
                            .checked_sub(jiff::SignedDuration::from_secs(s))
                            .ok()
                    }),
                timestamps: matches!(param("timestamps"), Some("true" | "1")),
            };
            logs(ctx, ns, pod, container, previous, &options).await
        }
        _ => reply(StatusCode::NOT_FOUND, "404 page not found"),
    }
}

async fn logs(
    ctx: &Context,
    ns: &str,
    pod: &str,
    container: &str,
    previous: bool,
    options: &LogOptions,
) -> Response<Full<Bytes>> {
    let filter = [
        (labels::NODE.to_string(), ctx.node.clone()),
        (labels::POD_NAMESPACE.to_string(), ns.to_string()),
        (labels::POD_NAME.to_string(), pod.to_string()),
        (labels::CONTAINER_NAME.to_string(), container.to_string()),
    ];
    let mut found = match ctx.runtime.list(&filter).await {
        Ok(found) => found,
        Err(e) => return reply(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    found.retain(|c| c.labels.get(labels::KIND).map(String::as_str) != Some("sandbox"));
    found.sort_by_key(|c| std::cmp::Reverse(labels::attempt(&c.labels)));
    let wanted = if previous {
        found.get(1)
    } else {
        found.first()
    };
    let Some(wanted) = wanted else {
        let message = if previous {
            format!("previous terminated container {container:?} in pod {pod:?} not found")
        } else {
            format!("container {container:?} in pod {pod:?} is not available")
        };
        return reply(StatusCode::BAD_REQUEST, message);
    };
    match ctx.runtime.logs(&wanted.id, options).await {
        Ok(bytes) => reply(StatusCode::OK, bytes),
        Err(e) => reply(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}
