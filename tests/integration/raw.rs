//! A bare HTTPS client for tests that need what kubectl cannot do: no client certificate,
//! a foreign one, old TLS versions, hostile bodies, reading a watch line by line.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::TlsConnector;

/// Which client certificate to present.
pub enum Identity<'a> {
    None,
    Files {
        cert: &'a std::path::Path,
        key: &'a std::path::Path,
    },
}

pub struct Raw {
    pub address: String,
    config: Arc<rustls::ClientConfig>,
}

fn roots(ca: &std::path::Path) -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(ca).expect("CA file");
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots.add(cert.expect("CA cert")).expect("CA accepted");
    }
    roots
}

pub fn client_config(
    ca: &std::path::Path,
    identity: Identity<'_>,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("versions")
        .with_root_certificates(roots(ca));
    match identity {
        Identity::None => builder.with_no_client_auth(),
        Identity::Files { cert, key } => {
            let pem = std::fs::read(cert).expect("cert");
            let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut pem.as_slice())
                .collect::<Result<_, _>>()
                .expect("certs");
            let pem = std::fs::read(key).expect("key");
            let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut pem.as_slice())
                .expect("key")
                .expect("a key");
            builder
                .with_client_auth_cert(certs, key)
                .expect("client auth")
        }
    }
}

impl Raw {
    pub fn new(server: &str, config: rustls::ClientConfig) -> Raw {
        Raw {
            address: server.trim_start_matches("https://").to_string(),
            config: Arc::new(config),
        }
    }

    /// Connects and completes the TLS handshake, or returns the error.
    pub async fn connect(
        &self,
    ) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
        let tcp = tokio::net::TcpStream::connect(&self.address).await?;
        let connector = TlsConnector::from(self.config.clone());
        let name = ServerName::try_from("localhost").expect("valid name");
        connector.connect(name, tcp).await
    }

    /// Sends one HTTP/1.1 request and returns the response (body still streaming).
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> hyper::Response<Incoming> {
        let tls = self.connect().await.expect("TLS handshake");
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
                .await
                .expect("HTTP handshake");
        tokio::spawn(conn);
        let req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "localhost")
            .header("content-type", content_type)
            .header("accept", "application/json")
            .body(Full::new(Bytes::from(body)))
            .expect("request");
        sender.send_request(req).await.expect("response")
    }

    /// Sends only the head of a request that announces a `length`-byte body, and returns the
    /// status line of the answer: a server must refuse an oversized body without reading it.
    pub async fn head_only(&self, method: &str, path: &str, length: usize) -> String {
        use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};
        let mut tls = self.connect().await.expect("TLS handshake");
        let head = format!(
            "{method} {path} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: {length}\r\n\r\n"
        );
        tls.write_all(head.as_bytes()).await.expect("write head");
        let mut line = String::new();
        tokio::io::BufReader::new(tls)
            .read_line(&mut line)
            .await
            .expect("status line");
        line.trim().to_string()
    }

    /// Sends a request and reads the whole answer: status code and body as JSON.
    pub async fn json(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> (u16, serde_json::Value) {
        let resp = self.send(method, path, content_type, body).await;
        let code = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&bytes).into()));
        (code, value)
    }
}

/// A raw client authenticated as the cluster admin (`system:masters`).
pub fn admin(cluster: &super::harness::TestCluster) -> Raw {
    let certs = cluster.certs();
    let config = client_config(
        &certs.join("ca.crt"),
        Identity::Files {
            cert: &certs.join("admin.crt"),
            key: &certs.join("admin.key"),
        },
        &[&rustls::version::TLS13, &rustls::version::TLS12],
    );
    Raw::new(&cluster.server, config)
}

/// Reads a watch response as JSON lines until `count` arrived or `timeout` passed.
pub async fn read_events(
    resp: hyper::Response<Incoming>,
    count: usize,
    timeout: Duration,
) -> Vec<serde_json::Value> {
    let mut body = resp.into_body();
    let mut buffer = Vec::new();
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + timeout;
    while events.len() < count {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => frame,
            _ => break,
        };
        if let Ok(data) = frame.into_data() {
            buffer.extend_from_slice(&data);
            while let Some(pos) = buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buffer.drain(..=pos).collect();
                if let Ok(event) = serde_json::from_slice(&line) {
                    events.push(event);
                }
            }
        }
    }
    events
}
