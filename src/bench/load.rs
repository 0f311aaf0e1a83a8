//! The load generator's client: raw HTTP/2 over TLS with the admin certificate, several
//! connections with many streams each, and nothing between a request and its bytes (no typed
//! decoding), so what is timed is the server and not a client library.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio_util::task::TaskTracker;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot set up TLS from {dir}: {reason}")]
    Tls { dir: String, reason: String },
    #[error("cannot connect to {server}: {source}")]
    Connect {
        server: String,
        #[source]
        source: std::io::Error,
    },
    #[error("HTTP/2 to {server}: {source}")]
    Http {
        server: String,
        #[source]
        source: hyper::Error,
    },
    #[error("{method} {path}: {status}: {body}")]
    Status {
        method: Method,
        path: String,
        status: StatusCode,
        body: String,
    },
    #[error("reading a watch: {0}")]
    Watch(#[source] hyper::Error),
}

/// How to open one more connection to the server.
struct Dialer {
    server: String,
    authority: String,
    name: rustls::pki_types::ServerName<'static>,
    connector: tokio_rustls::TlsConnector,
    tasks: TaskTracker,
}

impl Dialer {
    async fn dial(&self) -> Result<SendRequest<Full<Bytes>>, LoadError> {
        let connect_error = |source| LoadError::Connect {
            server: self.server.clone(),
            source,
        };
        let tcp = tokio::net::TcpStream::connect(&self.authority)
            .await
            .map_err(connect_error)?;
        tcp.set_nodelay(true).map_err(connect_error)?;
        let stream = self
            .connector
            .connect(self.name.clone(), tcp)
            .await
            .map_err(connect_error)?;
        let (sender, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .initial_stream_window_size(4 << 20)
            .initial_connection_window_size(16 << 20)
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|source| LoadError::Http {
                server: self.server.clone(),
                source,
            })?;
        self.tasks.spawn(async move {
            let _ = connection.await;
        });
        Ok(sender)
    }
}

/// A pool of HTTP/2 connections to one API server; requests go round-robin over them, and a
/// connection the server closed (idle, or shutting down) is replaced when next used.
#[derive(Clone)]
pub struct Api {
    dialer: Arc<Dialer>,
    certs_dir: std::path::PathBuf,
    senders: Arc<Mutex<Vec<SendRequest<Full<Bytes>>>>>,
    next: Arc<AtomicUsize>,
}

impl Api {
    /// Opens `connections` HTTP/2 connections to `server` (`https://host:port`) as the admin
    /// whose certificate is in `certs_dir` (`admin.crt`, `admin.key`, trusting `ca.crt`).
    pub async fn connect(
        server: &str,
        certs_dir: &Path,
        connections: usize,
        tasks: &TaskTracker,
    ) -> Result<Self, LoadError> {
        let path = |name: &str| certs_dir.join(name).display().to_string();
        let tls_error = |reason: String| LoadError::Tls {
            dir: certs_dir.display().to_string(),
            reason,
        };
        let mut config =
            crate::tls::client_config(&path("ca.crt"), &path("admin.crt"), &path("admin.key"))
                .map_err(|e| tls_error(e.to_string()))?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        let authority = server.trim_start_matches("https://").to_string();
        let host = authority
            .rsplit_once(':')
            .map_or(authority.as_str(), |(h, _)| h)
            .to_string();
        let name =
            rustls::pki_types::ServerName::try_from(host).map_err(|e| tls_error(e.to_string()))?;
        let dialer = Dialer {
            server: server.to_string(),
            authority,
            name,
            connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
            tasks: tasks.clone(),
        };
        let mut senders = Vec::with_capacity(connections);
        for _ in 0..connections.max(1) {
            senders.push(dialer.dial().await?);
        }
        Ok(Self {
            dialer: Arc::new(dialer),
            certs_dir: certs_dir.to_path_buf(),
            senders: Arc::new(Mutex::new(senders)),
            next: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// A new pool of `connections` to the same server as the same user.
    pub async fn reconnect(
        &self,
        connections: usize,
        tasks: &TaskTracker,
    ) -> Result<Self, LoadError> {
        Self::connect(&self.dialer.server, &self.certs_dir, connections, tasks).await
    }

    async fn sender(&self) -> Result<SendRequest<Full<Bytes>>, LoadError> {
        let (i, sender) = {
            let senders = self
                .senders
                .lock()
                .expect("never poisoned: no panics under it");
            let i = self.next.fetch_add(1, Ordering::Relaxed) % senders.len();
            (i, senders[i].clone())
        };
        if !sender.is_closed() {
            return Ok(sender);
        }
        let fresh = self.dialer.dial().await?;
        self.senders
            .lock()
            .expect("never poisoned: no panics under it")[i] = fresh.clone();
        Ok(fresh)
    }

    /// Sends a request and returns the response's head and its body as a stream.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<(&'static str, Bytes)>,
    ) -> Result<http::Response<Incoming>, LoadError> {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.dialer.server))
            .header("accept", "application/json");
        let body = match body {
            Some((content_type, bytes)) => {
                request = request.header("content-type", content_type);
                bytes
            }
            None => Bytes::new(),
        };
        let request = request
            .body(Full::new(body))
            .expect("a method, a URI and headers that are all valid");
        let mut sender = self.sender().await?;
        sender
            .ready()
            .await
            .map_err(|source| self.http_error(source))?;
        sender
            .send_request(request)
            .await
            .map_err(|source| self.http_error(source))
    }

    /// Sends a request and reads the whole response; anything but 2xx is an error.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<(&'static str, Bytes)>,
    ) -> Result<Bytes, LoadError> {
        let response = self.send(method.clone(), path, body).await?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|source| self.http_error(source))?
            .to_bytes();
        if !status.is_success() {
            return Err(LoadError::Status {
                method,
                path: path.to_string(),
                status,
                body: String::from_utf8_lossy(&bytes).into_owned(),
            });
        }
        Ok(bytes)
    }

    /// Sends a request and reads the whole response without keeping it: how many bytes it
    /// had. For large answers whose time ends with their last byte; anything but 2xx is an
    /// error.
    pub async fn call_size(&self, method: Method, path: &str) -> Result<usize, LoadError> {
        let response = self.send(method.clone(), path, None).await?;
        let status = response.status();
        let mut body = response.into_body();
        let mut size = 0;
        let mut kept = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|source| self.http_error(source))?;
            if let Some(data) = frame.data_ref() {
                size += data.len();
                if !status.is_success() {
                    kept.extend_from_slice(data);
                }
            }
        }
        if !status.is_success() {
            return Err(LoadError::Status {
                method,
                path: path.to_string(),
                status,
                body: String::from_utf8_lossy(&kept).into_owned(),
            });
        }
        Ok(size)
    }

    fn http_error(&self, source: hyper::Error) -> LoadError {
        LoadError::Http {
            server: self.dialer.server.clone(),
            source,
        }
    }
}

/// A watch response read one event at a time: each newline-terminated JSON line, with when the
/// chunk that completed it arrived.
pub struct WatchLines {
    body: Incoming,
    partial: Vec<u8>,
    arrived: Instant,
}

impl WatchLines {
    pub fn new(response: http::Response<Incoming>) -> Self {
        WatchLines {
            body: response.into_body(),
            partial: Vec::new(),
            arrived: Instant::now(),
        }
    }

    /// The next event's line and when it arrived; `None` once the watch has ended. Safe to
    /// cancel (in a `select!`): a line half read stays for the next call.
    pub async fn next(&mut self) -> Result<Option<(Vec<u8>, Instant)>, LoadError> {
        loop {
            if let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
                let line = self.partial.drain(..=end).collect();
                return Ok(Some((line, self.arrived)));
            }
            match self.body.frame().await {
                None => return Ok(None),
                Some(Err(e)) => return Err(LoadError::Watch(e)),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.arrived = Instant::now();
                        self.partial.extend_from_slice(&data);
                    }
                }
            }
        }
    }
}
