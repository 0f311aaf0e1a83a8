//! Port-forward over SPDY (`portforward.k8s.io`, tunnelled in a WebSocket by kubectl or not):
//! for each connection the client opens an `error` stream and a `data` stream with the same
//! `requestID` and `port` (upstream kubelet `portforward/httpstream.go`); the kubelet connects
//! to that port of the Pod and copies bytes both ways, half-closes included. A port that
//! refuses gets upstream's message on that connection's error stream, and the session goes on.
//!
//! Deviation: upstream dials `localhost:<port>` inside the Pod's network namespace; rkube
//! dials the Pod's IP on the cluster's Docker network, which reaches every port a container
//! listens on except those bound to 127.0.0.1 only.

use std::collections::HashMap;
use std::net::IpAddr;

use tokio::io::AsyncWriteExt as _;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::spdy;

/// A connection's two streams, as they arrive.
#[derive(Default)]
struct Pair {
    error: Option<spdy::Stream>,
    data: Option<spdy::Stream>,
}

/// The request a stream belongs to: its `requestID`, or (old clients) what its stream ID
/// implies, as upstream pairs them.
fn request_id(stream: &spdy::Stream, kind: &str) -> String {
    match stream.header("requestid") {
        "" if kind == "data" => stream.id().saturating_sub(2).to_string(),
        "" => stream.id().to_string(),
        id => id.to_string(),
    }
}

/// Serves a port-forward session on `io` until the client goes away or `cancel`.
pub async fn serve_spdy<IO>(io: IO, target: IpAddr, pod: String, cancel: CancellationToken)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (session, mut streams, run) = spdy::serve(io);
    let mut connections = JoinSet::new();
    let accept = async {
        let mut pending: HashMap<String, Pair> = HashMap::new();
        while let Some(stream) = streams.recv().await {
            let kind = stream.header("streamtype").to_string();
            let id = request_id(&stream, &kind);
            let pair = pending.entry(id.clone()).or_default();
            match kind.as_str() {
                "error" => pair.error = Some(stream),
                "data" => pair.data = Some(stream),
                _ => {
                    stream.reset();
                    continue;
                }
            }
            if pair.error.is_some() && pair.data.is_some() {
                if let Some(Pair {
                    error: Some(error),
                    data: Some(data),
                }) = pending.remove(&id)
                {
                    connections.spawn(forward(error, data, target, pod.clone()));
                }
            }
        }
    };
    tokio::select! {
        _ = async { tokio::join!(run, accept) } => {}
        () = cancel.cancelled() => session.close(),
    }
    connections.shutdown().await;
}

/// Port-forward over the WebSocket channel protocol (`v4.channel.k8s.io`, what kube-rs and the
/// Python client speak): the `i`-th port of `?port=` gets channel `2i` for data and `2i+1` for
/// errors, each announced by a first message holding the port (2 bytes, little endian), and one
/// connection to that port for the life of the WebSocket (upstream kubelet
/// `portforward/websocket.go`).
pub async fn serve_websocket<S>(
    ws: tokio_tungstenite::WebSocketStream<S>,
    ports: Vec<u16>,
    target: IpAddr,
    pod: String,
    cancel: CancellationToken,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    use bytes::{BufMut as _, Bytes, BytesMut};
    use futures::{SinkExt as _, StreamExt as _};
    use tokio::io::AsyncReadExt as _;
    use tokio::sync::mpsc;
    use tokio_tungstenite::tungstenite::Message;

    let (mut sink, mut stream) = ws.split();
    let (out_tx, mut out_rx) = mpsc::channel::<(u8, Bytes)>(16);
    let writer = async move {
        while let Some((channel, data)) = out_rx.recv().await {
            let mut frame = BytesMut::with_capacity(data.len() + 1);
            frame.put_u8(channel);
            frame.put_slice(&data);
            if sink.send(Message::Binary(frame.freeze())).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    };
    let mut inputs = Vec::new();
    let mut connections = JoinSet::new();
    for (i, port) in ports.iter().copied().enumerate() {
        let (data_channel, error_channel) = ((2 * i) as u8, (2 * i + 1) as u8);
        let announce = Bytes::copy_from_slice(&port.to_le_bytes());
        let _ = out_tx.send((data_channel, announce.clone())).await;
        let _ = out_tx.send((error_channel, announce)).await;
        let (in_tx, mut in_rx) = mpsc::channel::<Bytes>(16);
        inputs.push(in_tx);
        let out = out_tx.clone();
        let pod = pod.clone();
        connections.spawn(async move {
            let tcp = match tokio::net::TcpStream::connect((target, port)).await {
                Ok(tcp) => tcp,
                Err(e) => {
                    let message = format!(
                        "error forwarding port {port} to pod {pod}, uid : dial tcp {target}:{port}: connect: {}",
                        connect_error(&e)
                    );
                    let _ = out.send((error_channel, Bytes::from(message))).await;
                    return;
                }
            };
            let (mut read, mut write) = tcp.into_split();
            let upstream = async {
                while let Some(data) = in_rx.recv().await {
                    if write.write_all(&data).await.is_err() {
                        break;
                    }
                }
                let _ = write.shutdown().await;
            };
            let downstream = async {
                let mut buf = vec![0u8; 32 * 1024];
                loop {
                    match read.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            let chunk = Bytes::copy_from_slice(&buf[..n]);
                            if out.send((data_channel, chunk)).await.is_err() {
                                break;
                            }
                        }
                    }
                }
            };
            tokio::join!(upstream, downstream);
        });
    }
    drop(out_tx);
    let reader = async {
        while let Some(Ok(message)) = stream.next().await {
            let data = match message {
                Message::Binary(data) => data,
                Message::Close(_) => break,
                _ => continue,
            };
            let Some((&channel, rest)) = data.split_first() else {
                continue;
            };
            if channel % 2 == 0 {
                if let Some(input) = inputs.get(usize::from(channel / 2)) {
                    let _ = input.send(Bytes::copy_from_slice(rest)).await;
                }
            }
        }
        // The client is gone: the connections' inputs end, and with them the connections.
        inputs.clear();
    };
    tokio::select! {
        _ = async { tokio::join!(reader, writer) } => {}
        () = cancel.cancelled() => {}
    }
    connections.shutdown().await;
}

/// One forwarded connection.
async fn forward(mut error: spdy::Stream, mut data: spdy::Stream, target: IpAddr, pod: String) {
    let port = data.header("port").to_string();
    let result = match port.parse::<u16>() {
        Ok(port) if port > 0 => match tokio::net::TcpStream::connect((target, port)).await {
            Ok(mut tcp) => tokio::io::copy_bidirectional(&mut data, &mut tcp)
                .await
                .map(|_| ())
                .map_err(|e| format!("error copying data for port {port}: {e}")),
            Err(e) => Err(format!(
                "error forwarding port {port} to pod {pod}, uid : dial tcp {target}:{port}: connect: {}",
                connect_error(&e)
            )),
        },
        _ => Err(format!("invalid port {port:?}")),
    };
    tracing::debug!(?result, "a forwarded connection ended");
    if let Err(message) = result {
        let _ = error.write_all(message.as_bytes()).await;
        data.reset();
    } else {
        let _ = data.shutdown().await;
    }
    let _ = error.shutdown().await;
}

/// The errno text Go prints for a failed dial (`connection refused`, …).
fn connect_error(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
        std::io::ErrorKind::TimedOut => "connection timed out".to_string(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::spdy::tests::Client;
    use super::*;
    use tokio::io::AsyncReadExt as _;

    #[tokio::test]
    async fn connections_are_forwarded_and_a_refused_port_is_reported_on_its_own() {
        // An echo server on a free port, and a port nothing listens on.
        let echo = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let echo_port = echo.local_addr().unwrap().port();
        let closed_port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let server = tokio::spawn(async move {
            loop {
                let (mut sock, _) = echo.accept().await.unwrap();
                tokio::spawn(async move {
                    let (mut r, mut w) = sock.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        let (client_io, server_io) = tokio::io::duplex(1 << 16);
        let cancel = CancellationToken::new();
        let session = tokio::spawn(serve_spdy(
            server_io,
            "127.0.0.1".parse().unwrap(),
            "web".into(),
            cancel.clone(),
        ));
        let mut client = Client::new(client_io);
        let refused_port = closed_port.to_string();
        let err1 = client
            .open(&[
                ("streamtype", "error"),
                ("port", &refused_port),
                ("requestid", "1"),
            ])
            .await;
        let data1 = client
            .open(&[
                ("streamtype", "data"),
                ("port", &refused_port),
                ("requestid", "1"),
            ])
            .await;
        let port = echo_port.to_string();
        let err2 = client
            .open(&[("streamtype", "error"), ("port", &port), ("requestid", "2")])
            .await;
        let data2 = client
            .open(&[("streamtype", "data"), ("port", &port), ("requestid", "2")])
            .await;
        let payload: Vec<u8> = (0..200_000).map(|i| (i % 253) as u8).collect();
        for chunk in payload.chunks(32 * 1024) {
            client.send(data2, chunk, false).await;
        }
        client.send(data2, b"", true).await;
        let (mut error_text, mut echoed) = (Vec::new(), Vec::new());
        let (mut echo_done, mut refused_done) = (false, false);
        while !(echo_done && refused_done) {
            match client.frame().await.unwrap() {
                (Some(id), bytes, fin) if id == err1 => {
                    error_text.extend(bytes);
                    refused_done |= fin;
                }
                (Some(id), bytes, fin) if id == data2 => {
                    echoed.extend(bytes);
                    echo_done |= fin;
                }
                (Some(id), _, _) => assert!(id == data1 || id == err2, "{id}"),
                (None, _, _) => {}
            }
        }
        let error_text = String::from_utf8(error_text).unwrap();
        assert_eq!(
            error_text,
            format!("error forwarding port {closed_port} to pod web, uid : dial tcp 127.0.0.1:{closed_port}: connect: connection refused")
        );
        assert_eq!(echoed, payload);
        cancel.cancel();
        session.await.unwrap();
        server.abort();
        let _ = client.io.read(&mut [0u8; 1]).await;
        let _ = client.io.shutdown().await;
    }
}
