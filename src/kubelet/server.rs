//! The kubelet's HTTPS server: what the API server proxies to it (`pods/log`, `exec`, `attach`,
//! `portForward`, and through `nodes/proxy`: `/pods`, `/healthz`).
//!
//! Like the kubelet's port 10250 it requires a client certificate from the cluster CA, and
//! only the API server's identity (group `system:masters`) may read logs. Each kubelet of a
//! machine listens on its own port, which its Node reports in
//! `status.daemonEndpoints.kubeletEndpoint.Port`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use k8s_openapi::api::core::v1::Pod;

use super::logs;
use super::runtime::Runtime;
use super::streaming::{self, Endpoint, Streams};
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

    /// The UID of the Pod `namespace/name` if this node runs it.
    pub fn uid_of(&self, namespace: &str, name: &str) -> Option<String> {
        let pods = self.0.read().unwrap_or_else(|e| e.into_inner());
        pods.iter()
            .find(|(_, p)| {
                p.metadata.namespace.as_deref() == Some(namespace)
                    && p.metadata.name.as_deref() == Some(name)
            })
            .map(|(uid, _)| uid.clone())
    }

    /// Whether container `container` of the Pod `namespace/name` is `stdinOnce`.
    pub fn stdin_once(&self, namespace: &str, name: &str, container: &str) -> bool {
        let pods = self.0.read().unwrap_or_else(|e| e.into_inner());
        pods.values()
            .filter(|p| {
                p.metadata.namespace.as_deref() == Some(namespace)
                    && p.metadata.name.as_deref() == Some(name)
            })
            .filter_map(|p| p.spec.as_ref())
            .flat_map(|s| s.containers.iter())
            .any(|c| c.name == container && c.stdin_once == Some(true))
    }

    /// A `PodList` of them, as upstream's kubelet answers `/pods`.
    fn list(&self) -> serde_json::Value {
        let pods = self.0.read().unwrap_or_else(|e| e.into_inner());
        serde_json::json!({"kind": "PodList", "apiVersion": "v1", "metadata": {},
            "items": pods.values().collect::<Vec<_>>()})
    }
}

/// What the server answers with: whole bodies and streamed ones (logs) alike.
pub type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, std::io::Error>;

pub fn reply(code: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut resp = Response::new(
        Full::new(body.into())
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
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
        // As the API server's: no 40 ms wait for a delayed ACK between small writes.
        let _ = stream.set_nodelay(true);
        let acceptor = acceptor.clone();
        let ctx = ctx.clone();
        let authenticator = authenticator.clone();
        let sessions = tracker.clone();
        let stop = shutdown.clone();
        tracker.spawn(async move {
            let handshake = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream));
            let Ok(Ok(tls)) = handshake.await else { return };
            let user = authenticator.authenticate(tls.get_ref().1.peer_certificates());
            let service = service_fn(move |req| {
                let ctx = ctx.clone();
                let user = user.clone();
                let (sessions, stop) = (sessions.clone(), stop.clone());
                async move {
                    let served = handle(&ctx, &sessions, &stop, user, req).await;
                    Ok::<_, std::convert::Infallible>(served)
                }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection_with_upgrades(TokioIo::new(tls), service)
                .await;
        });
    }
}

async fn handle(
    ctx: &Context,
    tasks: &TaskTracker,
    shutdown: &CancellationToken,
    user: Option<User>,
    req: Request<Incoming>,
) -> Response<Body> {
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
    let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let streams = |ns: &str, pod: &str, container: &str| Streams {
        runtime: &ctx.runtime,
        node: &ctx.node,
        pod_uid: ctx.pods.uid_of(ns, pod),
        stdin_once: ctx.pods.stdin_once(ns, pod, container),
        tasks,
        shutdown,
    };
    match parts.as_slice() {
        ["exec", ns, pod, container] => {
            let endpoint = Endpoint::Exec {
                container: container.to_string(),
            };
            upgrade(streaming::serve(streams(ns, pod, container), req, endpoint).await)
        }
        ["attach", ns, pod, container] => {
            let endpoint = Endpoint::Attach {
                container: container.to_string(),
            };
            upgrade(streaming::serve(streams(ns, pod, container), req, endpoint).await)
        }
        ["portForward", ns, pod] => {
            upgrade(streaming::serve(streams(ns, pod, ""), req, Endpoint::PortForward).await)
        }
        ["healthz"] => reply(StatusCode::OK, "ok"),
        ["stats", "summary"] => match super::stats::summary(&ctx.runtime, &ctx.node).await {
            Ok(summary) => {
                let mut resp = reply(StatusCode::OK, summary.to_string());
                resp.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    http::HeaderValue::from_static("application/json"),
                );
                resp
            }
            Err(e) => reply(StatusCode::INTERNAL_SERVER_ERROR, e),
        },
        ["pods"] => {
            let mut resp = reply(StatusCode::OK, ctx.pods.list().to_string());
            resp.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            );
            resp
        }
        ["containerLogs", ns, pod, container] => {
            logs::serve(&ctx.runtime, &ctx.node, (ns, pod, container), &query).await
        }
        _ => reply(StatusCode::NOT_FOUND, "404 page not found"),
    }
}

/// An answer of the streaming endpoints (an upgrade, or a short refusal) as this server's.
fn upgrade(resp: Response<Full<Bytes>>) -> Response<Body> {
    resp.map(|body| body.map_err(|never| match never {}).boxed_unsync())
}
