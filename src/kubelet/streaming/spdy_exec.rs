//! Exec and attach over SPDY/3.1, as kubectl falls back to when a WebSocket upgrade is refused
//! and older clients use: the client opens one stream per channel (header `streamType`:
//! `error`, `stdin`, `stdout`, `stderr`, `resize`) right after the upgrade; the session starts
//! once every stream the options call for is there (upstream kubelet
//! `remotecommand/httpstream.go`), and ends with the outcome on the error stream.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::remotecommand::{self, FromClient, Outcome, Target, Version, CHANNEL_DEPTH};
use super::spdy;
use crate::kubelet::runtime::{Output, Runtime};

/// How long the client has to open its streams (upstream's `streamCreationTimeout`).
const STREAM_CREATION_TIMEOUT: Duration = Duration::from_secs(30);

/// The streams of one session.
#[derive(Default)]
struct Streams {
    error: Option<spdy::Stream>,
    stdin: Option<spdy::Stream>,
    stdout: Option<spdy::Stream>,
    stderr: Option<spdy::Stream>,
    resize: Option<spdy::Stream>,
}

/// Which streams a session needs, by the options (upstream's `expectedStreams`).
fn expected(target: &Target, version: Version) -> (bool, bool, bool, bool) {
    let (stdin, stdout, stderr, tty) = match target {
        Target::Exec { spec, .. } => (spec.stdin, spec.stdout, spec.stderr, spec.tty),
        Target::Attach { stdin, tty, .. } => (*stdin, true, true, *tty),
    };
    let resize = tty && version >= Version::V3;
    (stdin, stdout, stderr && !tty, resize)
}

/// Runs an exec or attach session over a SPDY connection.
pub async fn remotecommand<IO>(
    io: IO,
    version: Version,
    runtime: Arc<dyn Runtime>,
    target: Target,
    shutdown: CancellationToken,
) where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (session, incoming, run) = spdy::serve(io);
    let work = drive(session, incoming, version, runtime, target, shutdown);
    tokio::join!(run, work);
}

async fn drive(
    session: spdy::Session,
    mut incoming: mpsc::Receiver<spdy::Stream>,
    version: Version,
    runtime: Arc<dyn Runtime>,
    target: Target,
    shutdown: CancellationToken,
) {
    let (want_stdin, want_stdout, want_stderr, want_resize) = expected(&target, version);
    let mut streams = Streams::default();
    let gathered = async {
        while let Some(stream) = incoming.recv().await {
            let kind = stream
                .headers()
                .get("streamtype")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let slot = match kind.as_str() {
                "error" => &mut streams.error,
                "stdin" => &mut streams.stdin,
                "stdout" => &mut streams.stdout,
                "stderr" => &mut streams.stderr,
                "resize" => &mut streams.resize,
                _ => {
                    stream.reset();
                    continue;
                }
            };
            *slot = Some(stream);
            let complete = streams.error.is_some()
                && (!want_stdin || streams.stdin.is_some())
                && (!want_stdout || streams.stdout.is_some())
                && (!want_stderr || streams.stderr.is_some())
                && (!want_resize || streams.resize.is_some());
            if complete {
                return true;
            }
        }
        false
    };
    let complete = tokio::select! {
        done = tokio::time::timeout(STREAM_CREATION_TIMEOUT, gathered) => done.unwrap_or(false),
        () = shutdown.cancelled() => false,
    };
    if !complete {
        session.close();
        return;
    }
    let (in_tx, in_rx) = mpsc::channel(CHANNEL_DEPTH);
    let (out_tx, mut out_rx) = mpsc::channel::<Output>(CHANNEL_DEPTH);
    // Standard input, then its end.
    let stdin_pump = {
        let in_tx = in_tx.clone();
        let stdin = streams.stdin.take();
        async move {
            let Some(mut stdin) = stdin else {
                return std::future::pending::<()>().await;
            };
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match stdin.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let chunk = Bytes::copy_from_slice(&buf[..n]);
                        if in_tx.send(FromClient::Stdin(chunk)).await.is_err() {
                            return;
                        }
                    }
                }
            }
            let _ = in_tx.send(FromClient::StdinClosed).await;
            std::future::pending::<()>().await
        }
    };
    // Terminal sizes: a stream of JSON objects without framing.
    let resize_pump = {
        let in_tx = in_tx.clone();
        let resize = streams.resize.take();
        async move {
            let Some(mut resize) = resize else {
                return std::future::pending::<()>().await;
            };
            let mut pending = Vec::new();
            let mut buf = vec![0u8; 1024];
            loop {
                match resize.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => pending.extend_from_slice(&buf[..n]),
                }
                let mut objects =
                    serde_json::Deserializer::from_slice(&pending).into_iter::<serde_json::Value>();
                let mut used = 0;
                while let Some(Ok(object)) = objects.next() {
                    used = objects.byte_offset();
                    if let Some(msg) = remotecommand::parse_resize(object.to_string().as_bytes()) {
                        if in_tx.send(msg).await.is_err() {
                            return;
                        }
                    }
                }
                pending.drain(..used);
                if pending.len() > 64 * 1024 {
                    break;
                }
            }
            std::future::pending::<()>().await
        }
    };
    drop(in_tx);
    let mut stdout = streams.stdout.take();
    let mut stderr = streams.stderr.take();
    let writer = async {
        while let Some(chunk) = out_rx.recv().await {
            let (stream, bytes) = match &chunk {
                Output::Stdout(b) => (stdout.as_mut(), b),
                Output::Stderr(b) => (stderr.as_mut(), b),
            };
            if let Some(stream) = stream {
                if stream.write_all(bytes).await.is_err() {
                    break;
                }
            }
        }
    };
    let session_done = async {
        let (outcome, ()) =
            tokio::join!(remotecommand::run(runtime, target, in_rx, out_tx), writer);
        outcome
    };
    // The connection ending (the client went away) ends the session.
    let connection_gone = async {
        while let Some(extra) = incoming.recv().await {
            extra.reset();
        }
    };
    let outcome = tokio::select! {
        outcome = session_done => outcome,
        () = connection_gone => Outcome::ClientGone,
        () = stdin_pump => Outcome::ClientGone,
        () = resize_pump => Outcome::ClientGone,
        () = shutdown.cancelled() => Outcome::ClientGone,
    };
    for stream in [&mut stdout, &mut stderr].into_iter().flatten() {
        let _ = stream.shutdown().await;
    }
    if let (Some(mut error), Some(message)) = (streams.error.take(), outcome.error_message(version))
    {
        let _ = error.write_all(&message).await;
        let _ = error.shutdown().await;
    }
    session.close();
}
