//! `pods/exec`, `pods/attach` and `pods/portforward`: the API server authorizes the request,
//! finds the container and the Pod's kubelet as upstream's `ExecLocation`, `AttachLocation` and
//! `PortForwardLocation` do, and proxies the upgraded connection to the kubelet over HTTPS with
//! its kubelet client certificate (upstream's `UpgradeAwareHandler`). Whatever protocol the
//! client negotiates (WebSocket channel protocols, SPDY/3.1, SPDY tunnelled in a WebSocket) is
//! spoken by the kubelet; the API server copies bytes both ways with bounded buffers, so
//! backpressure holds end to end and a client that goes away closes both hops.
//!
//! Upstream v1.32 authorizes these as `create` whatever the method
//! (`AuthorizePodWebsocketUpgradeCreatePermission`), so a WebSocket GET needs the same grant as
//! a SPDY POST.

use std::sync::Arc;

use http::{header, HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::handler::{attributes, authorize, Body};
use super::kubelet_client::Kubelet;
use super::request::{Query, ResourcePath};
use super::Server;
use crate::meta::ApiError;
use crate::tls::User;

/// The streaming subresources of a Pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subresource {
    Exec,
    Attach,
    PortForward,
}

impl Subresource {
    pub fn parse(name: &str) -> Option<Subresource> {
        match name {
            "exec" => Some(Subresource::Exec),
            "attach" => Some(Subresource::Attach),
            "portforward" => Some(Subresource::PortForward),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Subresource::Exec => "exec",
            Subresource::Attach => "attach",
            Subresource::PortForward => "portforward",
        }
    }
}

/// Request headers that stay with the API server: credentials and what names the hop.
fn forwarded(name: &header::HeaderName) -> bool {
    let name = name.as_str();
    !(name == "authorization"
        || name == "host"
        || name == "content-length"
        || name == "transfer-encoding"
        || name.starts_with("impersonate-"))
}

fn names(pod: &Value, pointer: &str) -> Vec<String> {
    pod.pointer(pointer)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str().map(str::to_string))
        .collect()
}

/// The container a request names, or the Pod's only one; upstream's `streamLocation` messages.
pub fn container(pod: &Value, requested: Option<&str>) -> Result<String, ApiError> {
    let name = pod
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let containers = names(pod, "/spec/containers");
    let init = names(pod, "/spec/initContainers");
    match requested.filter(|c| !c.is_empty()) {
        Some(c) => {
            let known = containers
                .iter()
                .chain(&init)
                .chain(&names(pod, "/spec/ephemeralContainers"))
                .any(|n| n == c);
            if known {
                Ok(c.to_string())
            } else {
                Err(ApiError::bad_request(format!(
                    "container {c} is not valid for pod {name}"
                )))
            }
        }
        None if containers.len() == 1 => Ok(containers[0].clone()),
        None if containers.is_empty() => Err(ApiError::bad_request(format!(
            "a container name must be specified for pod {name}"
        ))),
        None => {
            let mut message = format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                containers.join(" ")
            );
            if !init.is_empty() {
                message.push_str(&format!(
                    " or one of the init containers: [{}]",
                    init.join(" ")
                ));
            }
            Err(ApiError::bad_request(message))
        }
    }
}

/// The kubelet path and query for the request, as upstream's `streamParams` re-encodes the
/// parsed options: a value that does not parse fails the request here.
fn kubelet_target(sub: Subresource, pod: &Value, query: &Query) -> Result<String, ApiError> {
    let namespace = pod
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .unwrap_or("");
    let name = pod
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let mut params = form_urlencoded::Serializer::new(String::new());
    let path = match sub {
        Subresource::Exec | Subresource::Attach => {
            let container = container(pod, query.get("container"))?;
            let mut any_stream = false;
            for key in ["stdin", "stdout", "stderr", "tty"] {
                let on = query.flag(key)?;
                if on {
                    params.append_pair(key, "1");
                    any_stream |= key != "tty";
                }
            }
            if sub == Subresource::Exec {
                let command = query.all("command");
                if command.is_empty() {
                    return Err(ApiError::bad_request("you must specify at least 1 command"));
                }
                for arg in &command {
                    params.append_pair("command", arg);
                }
            }
            if !any_stream {
                return Err(ApiError::bad_request(
                    "you must specify at least 1 of stdin, stdout, stderr",
                ));
            }
            let kind = if sub == Subresource::Exec {
                "exec"
            } else {
                "attach"
            };
            format!("/{kind}/{namespace}/{name}/{container}")
        }
        Subresource::PortForward => {
            for value in query.all("ports") {
                for port in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                    match port.parse::<u16>() {
                        Ok(p) if p > 0 => {
                            params.append_pair("port", port);
                        }
                        _ => {
                            return Err(ApiError::bad_request(format!(
                                "invalid port {port:?}: ports must be between 1 and 65535"
                            )))
                        }
                    }
                }
            }
            format!("/portForward/{namespace}/{name}")
        }
    };
    let params = params.finish();
    Ok(if params.is_empty() {
        path
    } else {
        format!("{path}?{params}")
    })
}

/// Serves one streaming request: the kubelet's answer when it does not upgrade, else its
/// `101 Switching Protocols`, after which the two connections are joined.
#[allow(clippy::too_many_arguments)]
pub async fn connect(
    server: &Arc<Server>,
    user: &User,
    mut req: Request<Incoming>,
    namespace: &str,
    name: &str,
    sub: Subresource,
    query: &Query,
    shutdown: CancellationToken,
) -> Result<Response<Body>, ApiError> {
    if !matches!(*req.method(), Method::GET | Method::POST) {
        return Err(ApiError::new_method_not_allowed(req.method()));
    }
    let path = ResourcePath {
        version: "v1".into(),
        namespace: namespace.to_string(),
        resource: "pods".into(),
        name: name.to_string(),
        subresource: sub.name().into(),
        ..ResourcePath::default()
    };
    authorize(
        &server.rbac,
        user,
        &attributes("create", &path, query),
        None,
    )
    .await?;
    let pods = server
        .registry
        .get("", "pods")
        .ok_or_else(|| ApiError::internal("no pods registry"))?;
    let pod = pods.get(namespace, name).await?;
    let target = kubelet_target(sub, &pod, query)?;
    let node = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request(format!("pod {name} does not have a host assigned"))
        })?;
    let kubelet = Kubelet::of(server, node).await?;
    let stream = kubelet.connect(server).await?;
    let unreachable = |e: hyper::Error| {
        ApiError::service_unavailable(format!(
            "error trying to reach the kubelet of node {node:?}: {e}"
        ))
    };
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(unreachable)?;
    server.tracker.spawn(conn.with_upgrades());
    let mut outgoing = Request::builder()
        .method(req.method().clone())
        .uri(&target)
        .header(header::HOST, &kubelet.address)
        .body(Empty::<bytes::Bytes>::new())
        .map_err(|e| ApiError::bad_request(format!("cannot proxy the request: {e}")))?;
    for (name, value) in req.headers().iter().filter(|(n, _)| forwarded(n)) {
        outgoing.headers_mut().append(name, value.clone());
    }
    let client_upgrade = hyper::upgrade::on(&mut req);
    let mut answer = sender.send_request(outgoing).await.map_err(unreachable)?;
    if answer.status() != StatusCode::SWITCHING_PROTOCOLS {
        // The kubelet refused (no such container, no protocol in common, not an upgrade):
        // its answer goes back as it is.
        let (parts, body) = answer.into_parts();
        let mut out = Response::new(body.map_err(std::io::Error::other).boxed());
        *out.status_mut() = parts.status;
        copy_headers(&parts.headers, out.headers_mut());
        return Ok(out);
    }
    let kubelet_upgrade = hyper::upgrade::on(&mut answer);
    let mut out = Response::new(
        Empty::new()
            .map_err(|never: std::convert::Infallible| match never {})
            .boxed(),
    );
    *out.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    copy_headers(answer.headers(), out.headers_mut());
    server.tracker.spawn(async move {
        let (Ok(client), Ok(kubelet)) = tokio::join!(client_upgrade, kubelet_upgrade) else {
            return;
        };
        tokio::select! {
            () = splice(TokioIo::new(client), TokioIo::new(kubelet)) => {}
            () = shutdown.cancelled() => {}
        }
    });
    Ok(out)
}

/// Joins two connections. Each direction is copied until its source ends, an error counting
/// as an end, and then its destination is shut down (flushing what it holds); the join is over
/// when both directions are. A failure in one direction therefore never discards the bytes the
/// other has yet to deliver, as a joint copy that stops at the first error would.
async fn splice<A, B>(a: A, b: B)
where
    A: tokio::io::AsyncRead + tokio::io::AsyncWrite,
    B: tokio::io::AsyncRead + tokio::io::AsyncWrite,
{
    use tokio::io::AsyncWriteExt as _;
    let (mut a_read, mut a_write) = tokio::io::split(a);
    let (mut b_read, mut b_write) = tokio::io::split(b);
    let forth = async {
        let _ = tokio::io::copy(&mut a_read, &mut b_write).await;
        let _ = b_write.shutdown().await;
    };
    let back = async {
        let _ = tokio::io::copy(&mut b_read, &mut a_write).await;
        let _ = a_write.shutdown().await;
    };
    tokio::join!(forth, back);
}

fn copy_headers(from: &HeaderMap, to: &mut HeaderMap) {
    for (name, value) in from {
        if name != header::CONTENT_LENGTH && name != header::TRANSFER_ENCODING {
            to.append(name, value.clone());
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Value {
        json!({"metadata": {"name": "p", "namespace": "ns"},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}],
                "initContainers": [{"name": "i"}],
                "ephemeralContainers": [{"name": "debugger"}]}})
    }

    #[test]
    fn the_container_is_named_or_the_only_one() {
        let p = pod();
        assert_eq!(container(&p, Some("b")).unwrap(), "b");
        assert_eq!(container(&p, Some("i")).unwrap(), "i");
        assert_eq!(container(&p, Some("debugger")).unwrap(), "debugger");
        assert_eq!(
            container(&p, Some("x")).unwrap_err().message,
            "container x is not valid for pod p"
        );
        assert_eq!(
            container(&p, None).unwrap_err().message,
            "a container name must be specified for pod p, choose one of: [a b] or one of the init containers: [i]"
        );
        let single = json!({"metadata": {"name": "s"}, "spec": {"containers": [{"name": "c"}]}});
        assert_eq!(container(&single, None).unwrap(), "c");
    }

    #[test]
    fn options_are_reencoded_for_the_kubelet_and_bad_ones_fail() {
        let p = pod();
        let q = Query::parse(Some(
            "container=a&command=sh&command=-c&command=echo%20hi&stdin=true&stdout=true&tty=false",
        ));
        assert_eq!(
            kubelet_target(Subresource::Exec, &p, &q).unwrap(),
            "/exec/ns/p/a?stdin=1&stdout=1&command=sh&command=-c&command=echo+hi"
        );
        let no_command = Query::parse(Some("container=a&stdout=true"));
        assert_eq!(
            kubelet_target(Subresource::Exec, &p, &no_command)
                .unwrap_err()
                .message,
            "you must specify at least 1 command"
        );
        let no_stream = Query::parse(Some("container=a&command=ls"));
        assert_eq!(
            kubelet_target(Subresource::Exec, &p, &no_stream)
                .unwrap_err()
                .code,
            400
        );
        let bad_flag = Query::parse(Some("container=a&command=ls&stdout=maybe"));
        assert_eq!(
            kubelet_target(Subresource::Exec, &p, &bad_flag)
                .unwrap_err()
                .code,
            400
        );
        let attach = Query::parse(Some("container=b&stdin=1&stdout=1&tty=1"));
        assert_eq!(
            kubelet_target(Subresource::Attach, &p, &attach).unwrap(),
            "/attach/ns/p/b?stdin=1&stdout=1&tty=1"
        );
        let ports = Query::parse(Some("ports=80,81&ports=8080"));
        assert_eq!(
            kubelet_target(Subresource::PortForward, &p, &ports).unwrap(),
            "/portForward/ns/p?port=80&port=81&port=8080"
        );
        for bad in ["ports=0", "ports=65536", "ports=http"] {
            let q = Query::parse(Some(bad));
            assert_eq!(
                kubelet_target(Subresource::PortForward, &p, &q)
                    .unwrap_err()
                    .code,
                400,
                "{bad}"
            );
        }
    }

    /// One side whose reads give some bytes and then fail, and which keeps what is written to
    /// it.
    struct Failing {
        reads: std::collections::VecDeque<std::io::Result<&'static [u8]>>,
        written: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    }

    impl tokio::io::AsyncRead for Failing {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(match self.reads.pop_front() {
                Some(Ok(bytes)) => {
                    buf.put_slice(bytes);
                    Ok(())
                }
                Some(Err(e)) => Err(e),
                None => Ok(()),
            })
        }
    }

    impl tokio::io::AsyncWrite for Failing {
        fn poll_write(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            self.written.lock().unwrap().extend_from_slice(buf);
            std::task::Poll::Ready(Ok(buf.len()))
        }

        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }

        fn poll_shutdown(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn a_failing_direction_leaves_the_other_to_finish() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let written = std::sync::Arc::default();
        let kubelet = Failing {
            reads: [
                Ok(&b"hello"[..]),
                Err(std::io::ErrorKind::UnexpectedEof.into()),
            ]
            .into(),
            written: std::sync::Arc::clone(&written),
        };
        let (mut client, proxied) = tokio::io::duplex(1024);
        let joined = tokio::spawn(splice(proxied, kubelet));
        // The kubelet's side ended (badly) after its bytes: the client gets them, then its end.
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"hello");
        // The client's direction is still open, and what it sends still arrives.
        client.write_all(b"world").await.unwrap();
        client.shutdown().await.unwrap();
        joined.await.unwrap();
        assert_eq!(*written.lock().unwrap(), b"world");
    }
}
