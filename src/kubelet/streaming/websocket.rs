//! The WebSocket side of streaming: the opening handshake on an HTTP request (RFC 6455 with
//! Kubernetes' subprotocol choice) and exec/attach sessions over the channel protocol, where
//! each binary message starts with its channel: 0 stdin, 1 stdout, 2 stderr, 3 error, 4 resize,
//! and (v5) 255 for "this channel is closed".

use std::sync::Arc;

use bytes::{BufMut as _, Bytes, BytesMut};
use futures::{SinkExt as _, StreamExt as _};
use http::{header, HeaderMap};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::{frame::coding::CloseCode, CloseFrame, Role};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

use super::remotecommand::{self, FromClient, Outcome, Target, Version, CHANNEL_DEPTH};
use crate::kubelet::runtime::{Output, Runtime};

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
const RESIZE: u8 = 4;
const CLOSE: u8 = 255;

/// Largest message accepted from a client: kubectl sends stdin in chunks of a few KiB.
const MAX_MESSAGE: usize = 1 << 20;
/// How long a finished session waits for the client to answer its close.
const CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// The protocol a request asks to upgrade to (`websocket`, `SPDY/3.1`), when it asks properly:
/// `Connection` must name `Upgrade` (RFC 9110 §7.8).
pub fn upgrade_to(headers: &HeaderMap) -> Option<&str> {
    let connection_upgrade = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("upgrade"));
    if !connection_upgrade {
        return None;
    }
    headers.get(header::UPGRADE).and_then(|v| v.to_str().ok())
}

/// True when the request asks for a WebSocket.
pub fn is_websocket(headers: &HeaderMap) -> bool {
    upgrade_to(headers).is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// The subprotocols the client offers, in its order (one header or several, comma-separated).
pub fn offered(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// The first protocol of the client's that is supported; a client that offers none gets the
/// first supported one's meaning without naming it (upstream treats a bare connection as the
/// oldest channel protocol). `Err` when it offers only protocols nobody here speaks.
pub fn choose<T: Copy>(
    offered: &[String],
    supported: &[(&'static str, T)],
    bare: Option<T>,
) -> Result<(Option<&'static str>, T), String> {
    if offered.is_empty() {
        return bare.map(|t| (None, t)).ok_or_else(|| {
            format!(
                "a WebSocket subprotocol is required, one of {:?}",
                supported.iter().map(|(n, _)| *n).collect::<Vec<_>>()
            )
        });
    }
    offered
        .iter()
        .find_map(|o| supported.iter().find(|(name, _)| name == o))
        .map(|(name, t)| (Some(*name), *t))
        .ok_or_else(|| {
            format!(
                "unable to negotiate protocol: client supports {offered:?}, server accepts {:?}",
                supported.iter().map(|(n, _)| *n).collect::<Vec<_>>()
            )
        })
}

/// The `Sec-WebSocket-Accept` value for a request, `None` without a usable key.
pub fn accept_key(headers: &HeaderMap) -> Option<String> {
    let key = headers.get(header::SEC_WEBSOCKET_KEY)?;
    let version_ok = headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_some_and(|v| v.as_bytes() == b"13");
    version_ok.then(|| tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes()))
}

/// The server side of an upgraded connection.
pub async fn server<S>(io: S) -> WebSocketStream<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE))
        .read_buffer_size(64 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(1 << 20);
    WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await
}

fn frame(channel: u8, data: &[u8]) -> Message {
    let mut out = BytesMut::with_capacity(data.len() + 1);
    out.put_u8(channel);
    out.put_slice(data);
    Message::Binary(out.freeze())
}

/// What one client message means for the session, if anything.
fn decode(version: Version, data: &[u8]) -> Option<FromClient> {
    let (&channel, rest) = data.split_first()?;
    match channel {
        STDIN => Some(FromClient::Stdin(Bytes::copy_from_slice(rest))),
        RESIZE if version >= Version::V3 => remotecommand::parse_resize(rest),
        CLOSE if version >= Version::V5 && rest.first() == Some(&STDIN) => {
            Some(FromClient::StdinClosed)
        }
        _ => None,
    }
}

/// Runs an exec or attach session over the WebSocket until it ends, then reports how on the
/// error channel and closes the connection.
pub async fn remotecommand<S>(
    ws: WebSocketStream<S>,
    version: Version,
    runtime: Arc<dyn Runtime>,
    target: Target,
    shutdown: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sink, mut stream) = ws.split();
    let (in_tx, in_rx) = mpsc::channel(CHANNEL_DEPTH);
    let (out_tx, mut out_rx) = mpsc::channel(CHANNEL_DEPTH);
    let session = remotecommand::run(runtime, target, in_rx, out_tx);
    let writer = async move {
        while let Some(chunk) = out_rx.recv().await {
            let message = match &chunk {
                Output::Stdout(bytes) => frame(STDOUT, bytes),
                Output::Stderr(bytes) => frame(STDERR, bytes),
            };
            if sink.send(message).await.is_err() {
                // The client is gone: dropping the receiver ends the session.
                break;
            }
        }
        sink
    };
    let reader = async {
        while let Some(Ok(message)) = stream.next().await {
            let data = match message {
                Message::Binary(data) => data,
                Message::Text(text) => Bytes::from(text),
                Message::Close(_) => break,
                _ => continue,
            };
            if let Some(msg) = decode(version, &data) {
                if in_tx.send(msg).await.is_err() {
                    break;
                }
            }
        }
    };
    let work = async { tokio::join!(session, writer) };
    tokio::pin!(work);
    let (outcome, mut sink) = tokio::select! {
        done = &mut work => done,
        () = reader => work.await,
        () = shutdown.cancelled() => return,
    };
    if let Some(message) = outcome.error_message(version) {
        let _ = sink.send(frame(ERROR, &message)).await;
    }
    if outcome != Outcome::ClientGone {
        let close = CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        };
        let _ = sink.send(Message::Close(Some(close))).await;
    }
    let _ = sink.close().await;
    // The client answers the close. Reading its answer before the connection goes means the
    // connection ends with a FIN: closed with bytes unread, it would end with a reset, and a
    // reset may make the API server drop output it has received but not yet passed on.
    let answered = async { while let Some(Ok(_)) = stream.next().await {} };
    let _ = tokio::time::timeout(CLOSE_GRACE, answered).await;
    if let Ok(mut ws) = sink.reunite(stream) {
        let _ = tokio::io::AsyncWriteExt::shutdown(ws.get_mut()).await;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_clients_first_supported_protocol_wins() {
        let offer = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let supported = &Version::WEBSOCKET;
        assert_eq!(
            choose(
                &offer(&["v5.channel.k8s.io", "v4.channel.k8s.io"]),
                supported,
                None
            ),
            Ok((Some("v5.channel.k8s.io"), Version::V5))
        );
        assert_eq!(
            choose(
                &offer(&["base64.channel.k8s.io", "v4.channel.k8s.io"]),
                supported,
                None
            ),
            Ok((Some("v4.channel.k8s.io"), Version::V4))
        );
        assert!(choose(&offer(&["v9.channel.k8s.io"]), supported, None).is_err());
        assert_eq!(
            choose(&[], supported, Some(Version::V1)),
            Ok((None, Version::V1))
        );
        assert!(choose(&[], supported, None).is_err());
    }

    #[test]
    fn offered_protocols_come_from_every_header() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::SEC_WEBSOCKET_PROTOCOL,
            "v5.channel.k8s.io, v4.channel.k8s.io".parse().unwrap(),
        );
        headers.append(
            header::SEC_WEBSOCKET_PROTOCOL,
            "v3.channel.k8s.io".parse().unwrap(),
        );
        assert_eq!(
            offered(&headers),
            [
                "v5.channel.k8s.io",
                "v4.channel.k8s.io",
                "v3.channel.k8s.io"
            ]
        );
    }

    #[test]
    fn client_messages_decode_by_channel_and_version() {
        assert_eq!(
            decode(Version::V5, b"\x00hi"),
            Some(FromClient::Stdin(Bytes::from_static(b"hi")))
        );
        assert_eq!(
            decode(Version::V5, b"\xff\x00"),
            Some(FromClient::StdinClosed)
        );
        assert_eq!(decode(Version::V4, b"\xff\x00"), None);
        assert_eq!(
            decode(Version::V4, br#"\x04{"Width":3,"Height":4}"#),
            None,
            "not a resize: the channel byte is text"
        );
        assert_eq!(
            decode(Version::V4, b"\x04{\"Width\":3,\"Height\":4}"),
            Some(FromClient::Resize {
                width: 3,
                height: 4
            })
        );
        assert_eq!(decode(Version::V2, b"\x04{\"Width\":3,\"Height\":4}"), None);
        assert_eq!(decode(Version::V5, b""), None);
        assert_eq!(decode(Version::V5, b"\x01out"), None);
    }

    #[test]
    fn an_upgrade_needs_the_connection_header_too() {
        let mut headers = HeaderMap::new();
        headers.insert(header::UPGRADE, "websocket".parse().unwrap());
        assert!(!is_websocket(&headers));
        headers.insert(header::CONNECTION, "keep-alive, Upgrade".parse().unwrap());
        assert!(is_websocket(&headers));
        headers.insert(header::UPGRADE, "SPDY/3.1".parse().unwrap());
        assert!(!is_websocket(&headers));
        assert_eq!(upgrade_to(&headers), Some("SPDY/3.1"));
    }

    #[test]
    fn the_accept_key_follows_rfc6455() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::SEC_WEBSOCKET_KEY,
            "dGhlIHNhbXBsZSBub25jZQ==".parse().unwrap(),
        );
        assert_eq!(accept_key(&headers), None, "version 13 is required");
        headers.insert(header::SEC_WEBSOCKET_VERSION, "13".parse().unwrap());
        assert_eq!(
            accept_key(&headers).as_deref(),
            Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        );
    }
}
