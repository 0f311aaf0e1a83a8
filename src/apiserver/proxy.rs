//! The proxy subresources: `nodes/<n>/proxy/<path>` to the node's kubelet (over HTTPS with the
//! API server's kubelet client certificate) and `pods/<name>[:<port>]/proxy/<path>` to the Pod's
//! IP (over HTTP), as upstream's `NodeProxyOptions` and `PodProxyOptions` endpoints. The request
//! is authorized as a verb on the subresource; the answer streams back as the backend gives it.

use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderName, HeaderValue, Method, Request, Response};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};

use super::handler::{attributes, authorize, read_body, Body};
use super::kubelet_client::Kubelet;
use super::request::{Query, ResourcePath};
use super::Server;
use crate::meta::ApiError;
use crate::tls::User;

/// How long connecting to a Pod and getting response headers may take.
const POD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Why one HTTP exchange with a backend failed.
pub enum ExchangeError {
    /// The request could not be built: the caller's fault.
    Api(ApiError),
    /// The backend could not be reached or answered nonsense.
    Io(hyper::Error),
}

/// One HTTP/1 request over `stream` (already connected, TLS or not) to `host`; the response
/// body streams from the backend.
pub async fn exchange<S>(
    server: &Server,
    stream: S,
    host: &str,
    method: Method,
    path_and_query: &str,
    headers: &[(HeaderName, HeaderValue)],
    body: Bytes,
) -> Result<Response<Incoming>, ExchangeError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(ExchangeError::Io)?;
    server.tracker.spawn(conn);
    let mut req = Request::builder()
        .method(method)
        .uri(path_and_query)
        .header(header::HOST, host);
    for (name, value) in headers {
        req = req.header(name, value);
    }
    let req = req.body(Full::new(body)).map_err(|e| {
        ExchangeError::Api(ApiError::bad_request(format!(
            "cannot proxy the request: {e}"
        )))
    })?;
    sender.send_request(req).await.map_err(ExchangeError::Io)
}

/// The verb a proxied method is authorized as.
fn verb_of(method: &Method) -> Result<&'static str, ApiError> {
    Ok(match *method {
        Method::GET | Method::HEAD => "get",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE => "delete",
        _ => return Err(ApiError::new_method_not_allowed(method)),
    })
}

/// What is proxied of a request: the path after `prefix` (at least `/`) with the query, the
/// headers that describe the body, and the body.
async fn outgoing(
    req: Request<Incoming>,
    prefix: &str,
) -> Result<(String, Vec<(HeaderName, HeaderValue)>, Bytes), ApiError> {
    let mut target = match req.uri().path().strip_prefix(prefix) {
        Some("") | None => "/".to_string(),
        Some(rest) => rest.to_string(),
    };
    if let Some(q) = req.uri().query() {
        target.push('?');
        target.push_str(q);
    }
    let headers = [header::CONTENT_TYPE, header::ACCEPT]
        .into_iter()
        .filter_map(|name| {
            let value = req.headers().get(&name)?.clone();
            Some((name, value))
        })
        .collect();
    let (bytes, _) = read_body(req).await?;
    Ok((target, headers, bytes))
}

/// The backend's answer, streamed: its status, Content-Type and body.
fn incoming(resp: Response<Incoming>) -> Response<Body> {
    let (parts, body) = resp.into_parts();
    let mut out = Response::new(body.map_err(std::io::Error::other).boxed());
    *out.status_mut() = parts.status;
    if let Some(ct) = parts.headers.get(header::CONTENT_TYPE) {
        out.headers_mut().insert(header::CONTENT_TYPE, ct.clone());
    }
    out
}

/// `nodes/<node>/proxy/<path>` (`kubectl get --raw /api/v1/nodes/<n>/proxy/pods` lists what
/// the kubelet runs).
pub async fn node(
    server: &Arc<Server>,
    user: &User,
    req: Request<Incoming>,
    node: &str,
    query: &Query,
) -> Result<Response<Body>, ApiError> {
    let method = req.method().clone();
    let path = ResourcePath {
        version: "v1".into(),
        resource: "nodes".into(),
        name: node.to_string(),
        subresource: "proxy".into(),
        ..ResourcePath::default()
    };
    authorize(
        &server.rbac,
        user,
        &attributes(verb_of(&method)?, &path, query),
        None,
    )
    .await?;
    let kubelet = Kubelet::of(server, node).await?;
    let (target, headers, body) = outgoing(req, &format!("/api/v1/nodes/{node}/proxy")).await?;
    let resp = kubelet
        .send(server, method, &target, &headers, body)
        .await?;
    Ok(incoming(resp))
}

/// `pods/<name>[:<port>]/proxy/<path>`: to the Pod's IP at the port named, or its first
/// container's first port, or 80 (as upstream's pod `ResourceLocation`).
pub async fn pod(
    server: &Arc<Server>,
    user: &User,
    req: Request<Incoming>,
    namespace: &str,
    name_port: &str,
    query: &Query,
) -> Result<Response<Body>, ApiError> {
    let method = req.method().clone();
    let (scheme, name, port) = match name_port.split(':').collect::<Vec<_>>().as_slice() {
        [name] => ("", *name, ""),
        [name, port] => ("", *name, *port),
        [scheme, name, port] => (*scheme, *name, *port),
        _ => {
            return Err(ApiError::bad_request(format!(
                "invalid request {name_port:?}"
            )))
        }
    };
    if !matches!(scheme, "" | "http") {
        return Err(ApiError::bad_request(format!(
            "rkube proxies to Pods over http only, not {scheme:?}"
        )));
    }
    let path = ResourcePath {
        version: "v1".into(),
        namespace: namespace.to_string(),
        resource: "pods".into(),
        name: name.to_string(),
        subresource: "proxy".into(),
        ..ResourcePath::default()
    };
    authorize(
        &server.rbac,
        user,
        &attributes(verb_of(&method)?, &path, query),
        None,
    )
    .await?;
    let pods = server
        .registry
        .get("", "pods")
        .ok_or_else(|| ApiError::internal("no pods registry"))?;
    let found = pods.get(namespace, name).await?;
    let ip = found
        .pointer("/status/podIP")
        .and_then(Value::as_str)
        .filter(|ip| !ip.is_empty())
        .ok_or_else(|| {
            ApiError::service_unavailable(format!("pod {name:?} has no IP address yet"))
        })?
        .to_string();
    let port: u16 = if port.is_empty() {
        found
            .pointer("/spec/containers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find_map(|c| c.pointer("/ports/0/containerPort").and_then(Value::as_u64))
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or(80)
    } else {
        port.parse()
            .map_err(|_| ApiError::bad_request(format!("invalid port {port:?} in {name_port:?}")))?
    };
    let prefix = format!("/api/v1/namespaces/{namespace}/pods/{name_port}/proxy");
    let (target, headers, body) = outgoing(req, &prefix).await?;
    let unreachable = |e: &dyn std::fmt::Display| {
        ApiError::service_unavailable(format!(
            "error trying to reach service: dial tcp {ip}:{port}: {e}"
        ))
    };
    let request = async {
        let tcp = tokio::net::TcpStream::connect((ip.as_str(), port))
            .await
            .map_err(|e| unreachable(&e))?;
        let _ = tcp.set_nodelay(true);
        exchange(server, tcp, &ip, method, &target, &headers, body)
            .await
            .map_err(|e| match e {
                ExchangeError::Api(e) => e,
                ExchangeError::Io(e) => unreachable(&e),
            })
    };
    let resp = tokio::time::timeout(POD_TIMEOUT, request)
        .await
        .map_err(|_| ApiError::timeout(format!("pod {name:?} did not answer within 30s")))??;
    Ok(incoming(resp))
}
