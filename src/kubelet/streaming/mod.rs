//! The kubelet's streaming endpoints: `exec`, `attach` and `portForward`, reached through the API
//! server's upgrade proxy, over the protocols kubectl and the client libraries speak (WebSocket
//! channel protocols `v1`…`v5.channel.k8s.io`, SPDY/3.1, and SPDY tunnelled in a WebSocket).
//!
//! Upstream's kubelet hands these to the container runtime's streaming server and redirects;
//! here the kubelet serves them itself on its HTTPS port, as dockershim's in-process streaming
//! server did, so the API server's one connection to the kubelet carries the session.

pub mod portforward;
pub mod remotecommand;
pub mod spdy;
mod spdy_exec;
pub mod websocket;

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::labels;
use super::runtime::{ExecSpec, RunState, Runtime};
use remotecommand::{Target, Version};

/// Which endpoint a request is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Exec { container: String },
    Attach { container: String },
    PortForward,
}

/// What a streaming request needs of the kubelet.
pub struct Streams<'a> {
    pub runtime: &'a Arc<dyn Runtime>,
    pub node: &'a str,
    /// The UID of the Pod the request names, if the kubelet runs it.
    pub pod_uid: Option<String>,
    /// The container the request names is `stdinOnce` (attach replays its output).
    pub stdin_once: bool,
    pub tasks: &'a TaskTracker,
    pub shutdown: &'a CancellationToken,
}

/// An answer that is not an upgrade: plain text, as upstream's kubelet writes its errors.
fn refuse(code: StatusCode, message: impl Into<String>) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(message.into())));
    *resp.status_mut() = code;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

fn switching(protocol_header: (&str, Option<&str>)) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = resp.headers_mut();
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    let (upgrade, _) = protocol_header;
    if let Ok(v) = HeaderValue::from_str(upgrade) {
        headers.insert(header::UPGRADE, v);
    }
    resp
}

/// Names the WebSocket subprotocol chosen, if the client asked for one.
fn name_protocol(resp: &mut Response<Full<Bytes>>, name: Option<&'static str>) {
    if let Some(name) = name {
        resp.headers_mut().insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(name),
        );
    }
}

/// The query's values for `key`.
fn values(query: &[(String, String)], key: &str) -> Vec<String> {
    query
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .collect()
}

fn flag(query: &[(String, String)], key: &str) -> bool {
    values(query, key)
        .first()
        .is_some_and(|v| v == "1" || v == "true")
}

/// The running container of the Pod named `container` (its latest attempt).
async fn running_container(
    streams: &Streams<'_>,
    uid: &str,
    container: &str,
) -> Result<String, Response<Full<Bytes>>> {
    let filter = [
        (labels::NODE.to_string(), streams.node.to_string()),
        (labels::POD_UID.to_string(), uid.to_string()),
        (labels::CONTAINER_NAME.to_string(), container.to_string()),
    ];
    let mut found = streams
        .runtime
        .list(&filter)
        .await
        .map_err(|e| refuse(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    found.retain(|c| c.labels.get(labels::KIND).map(String::as_str) != Some("sandbox"));
    found.sort_by_key(|c| std::cmp::Reverse(labels::attempt(&c.labels)));
    match found.first() {
        None => Err(refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("container not found ({container:?})"),
        )),
        Some(c) if c.state != RunState::Running => Err(refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("container not running ({})", c.id),
        )),
        Some(c) => Ok(c.id.clone()),
    }
}

/// The address port-forward connects to: the Pod sandbox's IP on the cluster network.
async fn sandbox_ip(streams: &Streams<'_>, uid: &str) -> Result<IpAddr, Response<Full<Bytes>>> {
    let filter = [
        (labels::NODE.to_string(), streams.node.to_string()),
        (labels::POD_UID.to_string(), uid.to_string()),
        (labels::KIND.to_string(), "sandbox".to_string()),
    ];
    let found = streams
        .runtime
        .list(&filter)
        .await
        .map_err(|e| refuse(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    found
        .iter()
        .filter(|c| c.state == RunState::Running)
        .find_map(|c| c.ip.as_deref().and_then(|ip| ip.parse().ok()))
        .ok_or_else(|| {
            refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("pod sandbox of pod {uid} is not running"),
            )
        })
}

/// Serves one streaming request: checks it, answers `101 Switching Protocols` in the protocol
/// the client and the kubelet share, and runs the session on the upgraded connection.
pub async fn serve(
    streams: Streams<'_>,
    mut req: Request<Incoming>,
    endpoint: Endpoint,
) -> Response<Full<Bytes>> {
    let query: Vec<(String, String)> =
        form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let Some(uid) = streams.pod_uid.clone() else {
        return refuse(StatusCode::NOT_FOUND, "pod does not exist");
    };
    let target = match &endpoint {
        Endpoint::Exec { container } | Endpoint::Attach { container } => {
            let (stdin, stdout, tty) = (
                flag(&query, "stdin"),
                flag(&query, "stdout"),
                flag(&query, "tty"),
            );
            // With a terminal there is one output stream (upstream drops stderr).
            let stderr = flag(&query, "stderr") && !tty;
            if !stdin && !stdout && !stderr {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    "you must specify at least 1 of stdin, stdout, stderr",
                );
            }
            let id = match running_container(&streams, &uid, container).await {
                Ok(id) => id,
                Err(resp) => return resp,
            };
            match endpoint {
                Endpoint::Exec { .. } => {
                    let cmd = values(&query, "command");
                    if cmd.is_empty() {
                        return refuse(
                            StatusCode::BAD_REQUEST,
                            "you must specify at least 1 command",
                        );
                    }
                    Some(Target::Exec {
                        container: id,
                        spec: ExecSpec {
                            cmd,
                            stdin,
                            stdout,
                            stderr,
                            tty,
                        },
                    })
                }
                _ => Some(Target::Attach {
                    container: id,
                    stdin,
                    tty,
                    replay: streams.stdin_once,
                }),
            }
        }
        Endpoint::PortForward => None,
    };
    let headers = req.headers().clone();
    let upgraded = hyper::upgrade::on(&mut req);
    let runtime = streams.runtime.clone();
    let shutdown = streams.shutdown.clone();
    if websocket::is_websocket(&headers) {
        let Some(accept) = websocket::accept_key(&headers) else {
            return refuse(
                StatusCode::BAD_REQUEST,
                "a WebSocket upgrade needs Sec-WebSocket-Key and Sec-WebSocket-Version: 13",
            );
        };
        let offered = websocket::offered(&headers);
        let mut resp = switching(("websocket", None));
        resp.headers_mut().insert(
            header::SEC_WEBSOCKET_ACCEPT,
            HeaderValue::from_str(&accept).expect("base64 is a valid header value"),
        );
        match target {
            Some(target) => {
                let (name, version) =
                    match websocket::choose(&offered, &Version::WEBSOCKET, Some(Version::V1)) {
                        Ok(chosen) => chosen,
                        Err(why) => return refuse(StatusCode::BAD_REQUEST, why),
                    };
                name_protocol(&mut resp, name);
                streams.tasks.spawn(async move {
                    let Ok(io) = upgraded.await else { return };
                    let ws = websocket::server(TokioIo::new(io)).await;
                    websocket::remotecommand(ws, version, runtime, target, shutdown).await;
                });
                resp
            }
            None => {
                // kubectl tunnels a SPDY session in the WebSocket; the client libraries speak
                // the channel protocol with `?port=`.
                #[derive(Clone, Copy)]
                enum Flavor {
                    Tunnel,
                    Channels,
                }
                let supported = [
                    ("SPDY/3.1+portforward.k8s.io", Flavor::Tunnel),
                    ("v4.channel.k8s.io", Flavor::Channels),
                    ("portforward.k8s.io", Flavor::Channels),
                ];
                let (name, flavor) =
                    match websocket::choose(&offered, &supported, Some(Flavor::Channels)) {
                        Ok(chosen) => chosen,
                        Err(why) => return refuse(StatusCode::BAD_REQUEST, why),
                    };
                let mut ports = Vec::new();
                if let Flavor::Channels = flavor {
                    for value in values(&query, "port") {
                        for p in value.split(',') {
                            match p.trim().parse::<u16>() {
                                Ok(port) if port > 0 => ports.push(port),
                                _ => {
                                    return refuse(
                                        StatusCode::BAD_REQUEST,
                                        format!("unable to parse {value:?} as a port"),
                                    )
                                }
                            }
                        }
                    }
                    if ports.is_empty() || ports.len() > 127 {
                        return refuse(
                            StatusCode::BAD_REQUEST,
                            "query parameter \"port\" is required (at most 127 ports)",
                        );
                    }
                }
                let ip = match sandbox_ip(&streams, &uid).await {
                    Ok(ip) => ip,
                    Err(resp) => return resp,
                };
                name_protocol(&mut resp, name);
                streams.tasks.spawn(async move {
                    let Ok(io) = upgraded.await else { return };
                    let ws = websocket::server(TokioIo::new(io)).await;
                    match flavor {
                        Flavor::Tunnel => {
                            let tunnel = spdy::Tunnel::new(ws);
                            portforward::serve_spdy(tunnel, ip, uid, shutdown).await;
                        }
                        Flavor::Channels => {
                            portforward::serve_websocket(ws, ports, ip, uid, shutdown).await;
                        }
                    }
                });
                resp
            }
        }
    } else if websocket::upgrade_to(&headers).is_some_and(|u| u.eq_ignore_ascii_case("SPDY/3.1")) {
        spdy_upgrade(streams, &headers, target, upgraded, uid, shutdown, runtime).await
    } else {
        refuse(StatusCode::BAD_REQUEST, "Upgrade request required")
    }
}

/// A plain SPDY/3.1 upgrade (kubectl's fallback): the protocol is chosen from the client's
/// `X-Stream-Protocol-Version` list, as upstream's `httpstream.Handshake`.
async fn spdy_upgrade(
    streams: Streams<'_>,
    headers: &http::HeaderMap,
    target: Option<Target>,
    upgraded: hyper::upgrade::OnUpgrade,
    uid: String,
    shutdown: CancellationToken,
    runtime: Arc<dyn Runtime>,
) -> Response<Full<Bytes>> {
    let offered: Vec<String> = headers
        .get_all("x-stream-protocol-version")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect();
    let supported: Vec<&str> = match &target {
        Some(_) => Version::SPDY.iter().map(|(n, _)| *n).collect(),
        None => vec!["portforward.k8s.io"],
    };
    let Some(chosen) = offered
        .iter()
        .find_map(|o| supported.iter().find(|s| *s == o).copied())
    else {
        return refuse(
            StatusCode::FORBIDDEN,
            format!(
                "unable to upgrade: unable to negotiate protocol: client supports {offered:?}, server accepts {supported:?}"
            ),
        );
    };
    let mut resp = switching(("SPDY/3.1", None));
    resp.headers_mut().insert(
        "x-stream-protocol-version",
        HeaderValue::from_static(chosen),
    );
    match target {
        Some(target) => {
            let version = Version::SPDY
                .iter()
                .find(|(n, _)| *n == chosen)
                .map_or(Version::V1, |(_, v)| *v);
            streams.tasks.spawn(async move {
                let Ok(io) = upgraded.await else { return };
                spdy_exec::remotecommand(TokioIo::new(io), version, runtime, target, shutdown)
                    .await;
            });
        }
        None => {
            let ip = match sandbox_ip(&streams, &uid).await {
                Ok(ip) => ip,
                Err(resp) => return resp,
            };
            streams.tasks.spawn(async move {
                let Ok(io) = upgraded.await else { return };
                portforward::serve_spdy(TokioIo::new(io), ip, uid, shutdown).await;
            });
        }
    }
    resp
}
