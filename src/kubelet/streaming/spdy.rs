//! SPDY/3.1 sessions, the server side, as kubectl speaks them for port-forward (tunnelled in a
//! WebSocket or not) and as its fallback for exec and attach: the client opens streams
//! (SYN_STREAM with compressed headers), the server accepts each with a SYN_REPLY, DATA frames
//! carry bytes with FIN for a half-close, RST_STREAM cancels, PING is answered, GOAWAY ends.
//!
//! Written here because no maintained Rust crate speaks SPDY/3.1 (it was superseded by HTTP/2
//! everywhere but Kubernetes). Behaviour follows Go's `moby/spdystream`, the implementation on
//! both kubectl's and upstream's kubelet side: replies carry no headers, flow-control windows
//! are not enforced (this side still returns WINDOW_UPDATEs for what it read, which a peer that
//! counts would need), unknown control frames are ignored.
//!
//! Memory stays bounded: a stream holds at most [`STREAM_DEPTH`] frames its reader has not
//! taken; past that the connection's reader waits (backpressure to the peer through TCP), and
//! a frame larger than [`MAX_FRAME`] ends the session.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf as _, BufMut as _, Bytes, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use http::{HeaderMap, HeaderName, HeaderValue};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::sync::mpsc;
use tokio_util::sync::{CancellationToken, PollSender};

const VERSION: u16 = 3;
const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const HEADERS: u16 = 8;
const WINDOW_UPDATE: u16 = 9;
const FLAG_FIN: u8 = 0x01;
/// RST_STREAM status codes.
const PROTOCOL_ERROR: u32 = 1;
const CANCEL: u32 = 5;

/// The largest frame accepted; kubectl writes DATA in chunks of 32 KiB.
pub const MAX_FRAME: usize = 1 << 20;
/// Frames a stream may hold that its reader has not taken.
pub const STREAM_DEPTH: usize = 16;
/// The largest DATA frame this side writes.
const MAX_WRITE: usize = 32 * 1024;
/// The most bytes of queued frames the writer puts in one write, and the largest WebSocket
/// message a [`Tunnel`] sends: well under the WebSocket's write buffer (1 MiB), which refuses
/// a message that would not fit.
const MAX_BATCH: usize = 256 * 1024;

/// The words of the SPDY/3 header compression dictionary (draft-mbelshe-httpbis-spdy-00
/// §2.6.10.1), each written with a 4-byte length before it, then [`DICTIONARY_TAIL`] as is.
const DICTIONARY_WORDS: &[&str] = &[
    "options",
    "head",
    "post",
    "put",
    "delete",
    "trace",
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "accept-ranges",
    "age",
    "allow",
    "authorization",
    "cache-control",
    "connection",
    "content-base",
    "content-encoding",
    "content-language",
    "content-length",
    "content-location",
    "content-md5",
    "content-range",
    "content-type",
    "date",
    "etag",
    "expect",
    "expires",
    "from",
    "host",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "last-modified",
    "location",
    "max-forwards",
    "pragma",
    "proxy-authenticate",
    "proxy-authorization",
    "range",
    "referer",
    "retry-after",
    "server",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "vary",
    "via",
    "warning",
    "www-authenticate",
    "method",
    "get",
    "status",
    "200 OK",
    "version",
    "HTTP/1.1",
    "url",
    "public",
    "set-cookie",
    "keep-alive",
    "origin",
];
const DICTIONARY_TAIL: &str = concat!(
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417",
    "502504505203 Non-Authoritative Information204 No Content301 Moved Permanently",
    "400 Bad Request401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error",
    "501 Not Implemented503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct ",
    "Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,",
    "image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,text/javascript,",
    "publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.",
);

fn dictionary() -> Vec<u8> {
    let mut out = Vec::with_capacity(1424);
    for word in DICTIONARY_WORDS {
        out.extend_from_slice(&(word.len() as u32).to_be_bytes());
        out.extend_from_slice(word.as_bytes());
    }
    out.extend_from_slice(DICTIONARY_TAIL.as_bytes());
    out
}

/// Why a session ended badly.
#[derive(Debug, thiserror::Error)]
pub enum SpdyError {
    #[error("spdy: {0}")]
    Protocol(String),
    #[error("spdy: {0}")]
    Io(#[from] io::Error),
}

fn protocol(why: impl Into<String>) -> SpdyError {
    SpdyError::Protocol(why.into())
}

/// Header blocks, each direction one zlib stream for the life of the connection.
struct HeaderCodec {
    inflate: Decompress,
    deflate: Compress,
    dictionary: Vec<u8>,
}

impl HeaderCodec {
    fn new() -> HeaderCodec {
        let dictionary = dictionary();
        let mut deflate = Compress::new(Compression::default(), true);
        // Setting it can only fail on a misused stream; a fresh one accepts it.
        let _ = deflate.set_dictionary(&dictionary);
        HeaderCodec {
            inflate: Decompress::new(true),
            deflate,
            dictionary,
        }
    }

    /// Inflates one header block (bounded: a block may not grow past [`MAX_FRAME`]).
    fn decode(&mut self, mut input: &[u8]) -> Result<HeaderMap, SpdyError> {
        let mut out: Vec<u8> = Vec::with_capacity(input.len() * 4 + 64);
        loop {
            if out.capacity() - out.len() < 1024 {
                out.reserve(4096);
            }
            let before_in = self.inflate.total_in();
            let result = self
                .inflate
                .decompress_vec(input, &mut out, FlushDecompress::Sync);
            let used = usize::try_from(self.inflate.total_in() - before_in).unwrap_or(input.len());
            input = &input[used.min(input.len())..];
            match result {
                Ok(Status::Ok | Status::BufError)
                    if input.is_empty() && out.len() < out.capacity() =>
                {
                    break
                }
                Ok(Status::StreamEnd) => break,
                Ok(_) => {}
                Err(e) if e.needs_dictionary().is_some() => {
                    self.inflate
                        .set_dictionary(&self.dictionary)
                        .map_err(|e| protocol(format!("header dictionary: {e}")))?;
                }
                Err(e) => return Err(protocol(format!("header block: {e}"))),
            }
            if out.len() > MAX_FRAME {
                return Err(protocol("header block too large"));
            }
        }
        parse_header_block(&out)
    }

    fn encode(&mut self, headers: &HeaderMap) -> Vec<u8> {
        let mut plain = Vec::new();
        let names: Vec<&HeaderName> = headers.keys().collect();
        plain.extend_from_slice(&(names.len() as u32).to_be_bytes());
        for name in names {
            let values: Vec<&[u8]> = headers
                .get_all(name)
                .iter()
                .map(HeaderValue::as_bytes)
                .collect();
            let value = values.join(&0u8);
            plain.extend_from_slice(&(name.as_str().len() as u32).to_be_bytes());
            plain.extend_from_slice(name.as_str().as_bytes());
            plain.extend_from_slice(&(value.len() as u32).to_be_bytes());
            plain.extend_from_slice(&value);
        }
        let mut out = Vec::with_capacity(plain.len() + 64);
        let mut input = plain.as_slice();
        loop {
            out.reserve(256);
            let before = self.deflate.total_in();
            // Compressing into memory cannot fail.
            let _ = self
                .deflate
                .compress_vec(input, &mut out, FlushCompress::Sync);
            let used = usize::try_from(self.deflate.total_in() - before).unwrap_or(input.len());
            input = &input[used.min(input.len())..];
            if input.is_empty() && out.len() < out.capacity() {
                break;
            }
        }
        out
    }
}

/// The name/value pairs of an inflated header block; a value with NULs is several values.
fn parse_header_block(mut block: &[u8]) -> Result<HeaderMap, SpdyError> {
    fn take<'a>(block: &mut &'a [u8]) -> Result<&'a [u8], SpdyError> {
        if block.len() < 4 {
            return Err(protocol("truncated header block"));
        }
        let len = block.get_u32() as usize;
        if block.len() < len {
            return Err(protocol("truncated header block"));
        }
        let (value, rest) = block.split_at(len);
        *block = rest;
        Ok(value)
    }
    if block.len() < 4 {
        return Err(protocol("truncated header block"));
    }
    let count = block.get_u32();
    let mut headers = HeaderMap::new();
    for _ in 0..count {
        let name = take(&mut block)?;
        let value = take(&mut block)?;
        let name = HeaderName::from_bytes(&name.to_ascii_lowercase())
            .map_err(|_| protocol("invalid header name"))?;
        for part in value.split(|b| *b == 0) {
            let value =
                HeaderValue::from_bytes(part).map_err(|_| protocol("invalid header value"))?;
            headers.append(name.clone(), value);
        }
    }
    Ok(headers)
}

/// What the writer puts on the wire.
#[derive(Debug)]
enum Out {
    Reply(u32),
    Data { id: u32, bytes: Bytes, fin: bool },
    Reset { id: u32, status: u32 },
    Ping(u32),
    WindowUpdate { id: u32, delta: u32 },
    GoAway,
}

fn control(kind: u16, flags: u8, payload: &[u8], out: &mut BytesMut) {
    out.put_u16(0x8000 | VERSION);
    out.put_u16(kind);
    out.put_u8(flags);
    let len = payload.len() as u32;
    out.put_slice(&len.to_be_bytes()[1..]);
    out.put_slice(payload);
}

fn encode(frame: &Out, codec: &mut HeaderCodec, out: &mut BytesMut) {
    match frame {
        Out::Reply(id) => {
            let mut payload = id.to_be_bytes().to_vec();
            payload.extend(codec.encode(&HeaderMap::new()));
            control(SYN_REPLY, 0, &payload, out);
        }
        Out::Data { id, bytes, fin } => {
            out.put_u32(id & 0x7fff_ffff);
            out.put_u8(if *fin { FLAG_FIN } else { 0 });
            out.put_slice(&(bytes.len() as u32).to_be_bytes()[1..]);
            out.put_slice(bytes);
        }
        Out::Reset { id, status } => {
            let mut payload = id.to_be_bytes().to_vec();
            payload.extend(status.to_be_bytes());
            control(RST_STREAM, 0, &payload, out);
        }
        Out::Ping(id) => control(PING, 0, &id.to_be_bytes(), out),
        Out::WindowUpdate { id, delta } => {
            let mut payload = id.to_be_bytes().to_vec();
            payload.extend(delta.to_be_bytes());
            control(WINDOW_UPDATE, 0, &payload, out);
        }
        Out::GoAway => control(GOAWAY, 0, &[0, 0, 0, 0, 0, 0, 0, 0], out),
    }
}

/// A handle on a session: closing it says GOAWAY and ends the connection.
#[derive(Clone)]
pub struct Session {
    // Weak: the handle alone keeps nothing alive; the session ends when its connection and
    // its streams do.
    out: mpsc::WeakSender<Out>,
    stop: CancellationToken,
}

impl Session {
    pub fn close(&self) {
        if let Some(out) = self.out.upgrade() {
            let _ = out.try_send(Out::GoAway);
        }
        self.stop.cancel();
    }
}

/// One stream the client opened: its headers (names lower-case), the bytes it sends (EOF at
/// its FIN) and a way to send bytes back (`shutdown` sends FIN).
pub struct Stream {
    id: u32,
    headers: HeaderMap,
    incoming: mpsc::Receiver<Bytes>,
    pending: Bytes,
    out: PollSender<Out>,
    raw_out: mpsc::Sender<Out>,
    finished: bool,
}

impl Stream {
    pub fn id(&self) -> u32 {
        self.id
    }

    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// A header's value as text, empty when absent.
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// Cancels the stream (RST_STREAM).
    pub fn reset(&self) {
        let _ = self.raw_out.try_send(Out::Reset {
            id: self.id,
            status: CANCEL,
        });
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.pending.is_empty() {
            match ready!(self.incoming.poll_recv(cx)) {
                Some(bytes) => self.pending = bytes,
                None => return Poll::Ready(Ok(())),
            }
        }
        let n = self.pending.len().min(buf.remaining());
        buf.put_slice(&self.pending[..n]);
        self.pending.advance(n);
        Poll::Ready(Ok(()))
    }
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the SPDY session is closed")
}

impl AsyncWrite for Stream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.finished {
            return Poll::Ready(Err(closed()));
        }
        ready!(self.out.poll_reserve(cx)).map_err(|_| closed())?;
        let n = buf.len().min(MAX_WRITE);
        let frame = Out::Data {
            id: self.id,
            bytes: Bytes::copy_from_slice(&buf[..n]),
            fin: false,
        };
        self.out.send_item(frame).map_err(|_| closed())?;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.finished {
            return Poll::Ready(Ok(()));
        }
        ready!(self.out.poll_reserve(cx)).map_err(|_| closed())?;
        let frame = Out::Data {
            id: self.id,
            bytes: Bytes::new(),
            fin: true,
        };
        self.out.send_item(frame).map_err(|_| closed())?;
        self.finished = true;
        Poll::Ready(Ok(()))
    }
}

/// Serves a SPDY session on `io`: the streams the client opens arrive on the receiver, which
/// ends when the connection does. The session's work runs on the returned future's tasks; it
/// ends when the connection ends or the session is closed.
pub fn serve<IO>(
    io: IO,
) -> (
    Session,
    mpsc::Receiver<Stream>,
    impl std::future::Future<Output = ()> + Send,
)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (out_tx, out_rx) = mpsc::channel::<Out>(64);
    let (streams_tx, streams_rx) = mpsc::channel(16);
    let stop = CancellationToken::new();
    let session = Session {
        out: out_tx.downgrade(),
        stop: stop.clone(),
    };
    let (read, write) = tokio::io::split(io);
    let run = async move {
        let codec = std::sync::Arc::new(std::sync::Mutex::new(HeaderCodec::new()));
        let writer = write_frames(write, out_rx, codec.clone(), stop.clone());
        let reader = read_frames(read, out_tx, streams_tx, codec);
        let reading = async {
            tokio::select! {
                result = reader => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "a SPDY session ended");
                    }
                }
                () = stop.cancelled() => {}
            }
        };
        // The writer ends once every sender (session handle, streams) is gone.
        tokio::join!(reading, writer);
    };
    (session, streams_rx, run)
}

async fn write_frames<W: AsyncWrite + Unpin>(
    mut write: W,
    mut frames: mpsc::Receiver<Out>,
    codec: std::sync::Arc<std::sync::Mutex<HeaderCodec>>,
    stop: CancellationToken,
) {
    let mut buf = BytesMut::new();
    loop {
        let frame = tokio::select! {
            frame = frames.recv() => frame,
            // Closing: what is queued (the GOAWAY) still goes out.
            () = stop.cancelled() => frames.try_recv().ok(),
        };
        let Some(frame) = frame else { break };
        let goaway = matches!(frame, Out::GoAway) || stop.is_cancelled();
        {
            let mut codec = codec.lock().unwrap_or_else(|e| e.into_inner());
            encode(&frame, &mut codec, &mut buf);
            // Whatever else is queued goes in the same write, up to a bound: the streams keep
            // queueing while this drains, so without one a batch could grow without end.
            while buf.len() < MAX_BATCH {
                let Ok(frame) = frames.try_recv() else { break };
                encode(&frame, &mut codec, &mut buf);
            }
        }
        if let Err(e) = async {
            write.write_all(&buf).await?;
            write.flush().await
        }
        .await
        {
            // The session cannot go on without its writer: it ends, so the client sees the
            // connection close instead of waiting on streams that will never move again.
            tracing::debug!(error = %e, "a SPDY session's writer failed");
            stop.cancel();
            return;
        }
        buf.clear();
        if goaway {
            break;
        }
    }
    let _ = write.shutdown().await;
}

async fn read_frames<R: AsyncRead + Unpin>(
    mut read: R,
    out: mpsc::Sender<Out>,
    streams: mpsc::Sender<Stream>,
    codec: std::sync::Arc<std::sync::Mutex<HeaderCodec>>,
) -> Result<(), SpdyError> {
    let mut open: HashMap<u32, mpsc::Sender<Bytes>> = HashMap::new();
    let mut header = [0u8; 8];
    loop {
        match read.read_exact(&mut header).await {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        let flags = header[4];
        let len = u32::from_be_bytes([0, header[5], header[6], header[7]]) as usize;
        if len > MAX_FRAME {
            let _ = out.try_send(Out::GoAway);
            return Err(protocol(format!("a frame of {len} bytes")));
        }
        let mut payload = vec![0u8; len];
        read.read_exact(&mut payload).await?;
        let payload = Bytes::from(payload);
        if header[0] & 0x80 == 0 {
            let id = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
            let fin = flags & FLAG_FIN != 0;
            let delta = payload.len() as u32;
            match open.get(&id) {
                Some(stream) => {
                    if !payload.is_empty() {
                        // A reader that went away stops nothing else.
                        let _ = stream.send(payload).await;
                        // Advisory (windows are not enforced): never wait on it, so the
                        // reader is never stuck behind a writer stuck behind the peer.
                        let _ = out.try_send(Out::WindowUpdate { id, delta });
                    }
                    if fin {
                        open.remove(&id);
                    }
                }
                None => {
                    let _ = out.try_send(Out::Reset {
                        id,
                        status: PROTOCOL_ERROR,
                    });
                }
            }
            continue;
        }
        let version = u16::from_be_bytes([header[0] & 0x7f, header[1]]);
        if version != VERSION {
            let _ = out.try_send(Out::GoAway);
            return Err(protocol(format!("version {version}")));
        }
        let kind = u16::from_be_bytes([header[2], header[3]]);
        let id_at = |p: &Bytes| -> Result<u32, SpdyError> {
            p.get(..4)
                .map(|b| u32::from_be_bytes([b[0] & 0x7f, b[1], b[2], b[3]]))
                .ok_or_else(|| protocol("truncated control frame"))
        };
        match kind {
            SYN_STREAM => {
                if payload.len() < 10 {
                    return Err(protocol("truncated SYN_STREAM"));
                }
                let id = id_at(&payload)?;
                let headers = codec
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .decode(&payload[10..])?;
                let (tx, rx) = mpsc::channel(STREAM_DEPTH);
                if flags & FLAG_FIN == 0 {
                    open.insert(id, tx);
                }
                let stream = Stream {
                    id,
                    headers,
                    incoming: rx,
                    pending: Bytes::new(),
                    out: PollSender::new(out.clone()),
                    raw_out: out.clone(),
                    finished: false,
                };
                if out.send(Out::Reply(id)).await.is_err() {
                    return Ok(());
                }
                if streams.send(stream).await.is_err() {
                    // Nobody takes streams any more: the session is over.
                    return Ok(());
                }
            }
            // Keeps the compression context in step; a client has nothing to say here.
            SYN_REPLY | HEADERS if payload.len() >= 4 => {
                codec
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .decode(&payload[4..])?;
            }
            RST_STREAM => {
                open.remove(&id_at(&payload)?);
            }
            PING => {
                let _ = out.try_send(Out::Ping(id_at(&payload)?));
            }
            GOAWAY => return Ok(()),
            // SETTINGS, WINDOW_UPDATE (windows are not enforced) and unknown types.
            _ => {}
        }
    }
}

/// WebSocket binary messages as one byte stream, for `SPDY/3.1+portforward.k8s.io`, where
/// kubectl carries a SPDY session inside a WebSocket (each message a run of bytes).
pub struct Tunnel<S> {
    ws: tokio_tungstenite::WebSocketStream<S>,
    pending: Bytes,
}

impl<S> Tunnel<S> {
    pub fn new(ws: tokio_tungstenite::WebSocketStream<S>) -> Tunnel<S> {
        Tunnel {
            ws,
            pending: Bytes::new(),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Tunnel<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        use futures::Stream as _;
        use tokio_tungstenite::tungstenite::Message;
        while self.pending.is_empty() {
            match ready!(Pin::new(&mut self.ws).poll_next(cx)) {
                Some(Ok(Message::Binary(bytes))) => self.pending = bytes,
                Some(Ok(Message::Text(text))) => self.pending = Bytes::from(text),
                Some(Ok(Message::Close(_))) | None => return Poll::Ready(Ok(())),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Poll::Ready(Err(io::Error::other(e))),
            }
        }
        let n = self.pending.len().min(buf.remaining());
        buf.put_slice(&self.pending[..n]);
        self.pending.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Tunnel<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        use futures::Sink as _;
        use tokio_tungstenite::tungstenite::Message;
        ready!(Pin::new(&mut self.ws).poll_ready(cx)).map_err(io::Error::other)?;
        let n = buf.len().min(MAX_BATCH);
        Pin::new(&mut self.ws)
            .start_send(Message::Binary(Bytes::copy_from_slice(&buf[..n])))
            .map_err(io::Error::other)?;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        use futures::Sink as _;
        Pin::new(&mut self.ws)
            .poll_flush(cx)
            .map_err(io::Error::other)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        use futures::Sink as _;
        Pin::new(&mut self.ws)
            .poll_close(cx)
            .map_err(io::Error::other)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn the_dictionary_is_the_specs() {
        let dict = dictionary();
        assert_eq!(dict.len(), 1423);
        assert_eq!(&dict[..11], b"\x00\x00\x00\x07options");
        assert!(dict.ends_with(b",*,enq=0."));
    }

    #[test]
    fn header_blocks_round_trip_through_both_contexts() {
        let mut client = HeaderCodec::new();
        let mut server = HeaderCodec::new();
        for round in 0..3 {
            let mut headers = HeaderMap::new();
            headers.insert("streamtype", HeaderValue::from_static("data"));
            headers.insert(
                "port",
                HeaderValue::from_str(&format!("{}", 80 + round)).unwrap(),
            );
            headers.append("x-multi", HeaderValue::from_static("a"));
            headers.append("x-multi", HeaderValue::from_static("b"));
            let block = client.encode(&headers);
            let decoded = server.decode(&block).unwrap();
            assert_eq!(decoded, headers, "round {round}");
        }
    }

    #[test]
    fn broken_header_blocks_are_errors_not_panics() {
        let mut codec = HeaderCodec::new();
        for bad in [
            &b""[..],
            b"\x78",
            b"\x78\x9c\xff\xff",
            b"garbage that is not zlib",
        ] {
            let _ = codec.decode(bad);
            codec = HeaderCodec::new();
        }
        assert!(parse_header_block(b"\x00\x00\x00\x01\x00\x00\x00\x09abc").is_err());
        assert!(parse_header_block(b"\x00\x00").is_err());
    }

    /// A minimal client for tests: opens streams and speaks DATA frames.
    pub(crate) struct Client<IO> {
        pub io: IO,
        codec: HeaderCodec,
        next_id: u32,
    }

    impl<IO: AsyncRead + AsyncWrite + Unpin> Client<IO> {
        pub fn new(io: IO) -> Self {
            Client {
                io,
                codec: HeaderCodec::new(),
                next_id: 1,
            }
        }

        pub async fn open(&mut self, headers: &[(&str, &str)]) -> u32 {
            let id = self.next_id;
            self.next_id += 2;
            let mut map = HeaderMap::new();
            for (k, v) in headers {
                map.append(
                    HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    HeaderValue::from_str(v).unwrap(),
                );
            }
            let mut payload = id.to_be_bytes().to_vec();
            payload.extend([0, 0, 0, 0, 0, 0]);
            payload.extend(self.codec.encode(&map));
            let mut buf = BytesMut::new();
            control(SYN_STREAM, 0, &payload, &mut buf);
            self.io.write_all(&buf).await.unwrap();
            id
        }

        pub async fn send(&mut self, id: u32, bytes: &[u8], fin: bool) {
            let mut buf = BytesMut::new();
            encode(
                &Out::Data {
                    id,
                    bytes: Bytes::copy_from_slice(bytes),
                    fin,
                },
                &mut self.codec,
                &mut buf,
            );
            self.io.write_all(&buf).await.unwrap();
        }

        /// The next frame: `(Some(stream id), bytes, fin)` for DATA, `(None, type, _)` else.
        pub async fn frame(&mut self) -> Option<(Option<u32>, Vec<u8>, bool)> {
            let mut header = [0u8; 8];
            self.io.read_exact(&mut header).await.ok()?;
            let len = u32::from_be_bytes([0, header[5], header[6], header[7]]) as usize;
            let mut payload = vec![0u8; len];
            self.io.read_exact(&mut payload).await.ok()?;
            if header[0] & 0x80 == 0 {
                let id = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
                Some((Some(id), payload, header[4] & FLAG_FIN != 0))
            } else {
                let kind = u16::from_be_bytes([header[2], header[3]]);
                if kind == SYN_REPLY {
                    self.codec.decode(&payload[4..]).unwrap();
                }
                Some((None, kind.to_be_bytes().to_vec(), false))
            }
        }
    }

    #[tokio::test]
    async fn streams_are_accepted_answered_and_carry_bytes_both_ways() {
        let (client_io, server_io) = tokio::io::duplex(1 << 16);
        let (session, mut streams, run) = serve(server_io);
        let running = tokio::spawn(run);
        let mut client = Client::new(client_io);
        let id = client.open(&[("streamtype", "data"), ("port", "80")]).await;
        let mut stream = streams.recv().await.unwrap();
        assert_eq!(stream.id(), id);
        assert_eq!(stream.header("streamtype"), "data");
        assert_eq!(
            client.frame().await.unwrap(),
            (None, SYN_REPLY.to_be_bytes().to_vec(), false)
        );
        // 1 MiB up, through the stream's bounded queue.
        let big: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            let mut buf = vec![0u8; 8192];
            while got.len() < (1 << 20) {
                let n = stream.read(&mut buf).await.unwrap();
                assert!(n > 0);
                got.extend_from_slice(&buf[..n]);
            }
            stream.write_all(b"pong").await.unwrap();
            stream.shutdown().await.unwrap();
            got
        });
        for chunk in big.chunks(32 * 1024) {
            client.send(id, chunk, false).await;
        }
        // Window updates come back for what was read; then the reply and the FIN.
        let mut answer = Vec::new();
        loop {
            if let (Some(got), bytes, fin) = client.frame().await.unwrap() {
                assert_eq!(got, id);
                answer.extend(bytes);
                if fin {
                    break;
                }
            }
        }
        assert_eq!(answer, b"pong");
        assert_eq!(reader.await.unwrap(), big);
        session.close();
        drop(streams);
        running.await.unwrap();
    }

    #[tokio::test]
    async fn garbage_ends_the_session_without_a_panic() {
        for bad in [
            vec![0x80, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00],
            vec![0x80, 0x02, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00],
            vec![0x80, 0x03, 0x00, 0x01, 0x00, 0xff, 0xff, 0xff],
            vec![0x00, 0x00, 0x00, 0x09, 0x00, 0x00, 0x00, 0x01, 0x41],
            (0..200).map(|i| (i * 37) as u8).collect(),
        ] {
            let (mut client_io, server_io) = tokio::io::duplex(1 << 16);
            let (_session, _streams, run) = serve(server_io);
            client_io.write_all(&bad).await.unwrap();
            drop(client_io);
            tokio::time::timeout(std::time::Duration::from_secs(5), run)
                .await
                .expect("the session ends");
        }
    }

    /// A write larger than the WebSocket's write buffer goes out in messages that fit, all
    /// of it, to a peer that reads slowly.
    #[tokio::test]
    async fn a_tunnel_splits_a_large_write_into_messages_that_fit() {
        use futures::StreamExt as _;
        let (server_io, client_io) = tokio::io::duplex(64 * 1024);
        let server = tokio::spawn(async move {
            let ws = super::super::websocket::server(server_io).await;
            let mut tunnel = Tunnel::new(ws);
            tunnel.write_all(&vec![7u8; 3 << 20]).await.unwrap();
            tunnel.flush().await.unwrap();
        });
        let mut client = tokio_tungstenite::WebSocketStream::from_raw_socket(
            client_io,
            tokio_tungstenite::tungstenite::protocol::Role::Client,
            None,
        )
        .await;
        let mut received = 0;
        while received < 3 << 20 {
            let message = client.next().await.unwrap().unwrap();
            assert!(message.len() <= MAX_BATCH, "{}", message.len());
            received += message.len();
            tokio::task::yield_now().await;
        }
        assert_eq!(received, 3 << 20);
        server.await.unwrap();
    }
}
