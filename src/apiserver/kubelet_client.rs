//! The API server's client of kubelets: where a node's kubelet listens (its Node's
//! `InternalIP` and `daemonEndpoints.kubeletEndpoint.Port`), and one request to it over HTTPS
//! with the API server's kubelet client certificate, as kube-apiserver's `--kubelet-client-*`
//! flags configure. Used by `pods/log`, `nodes/proxy` and the streaming subresources.

use std::time::Duration;

use bytes::Bytes;
use hyper::body::Incoming;
use rustls::pki_types::ServerName;
use serde_json::Value;
use tokio_rustls::TlsConnector;

use super::Server;
use crate::meta::ApiError;

/// How long connecting and getting response headers from a kubelet may take.
const KUBELET_TIMEOUT: Duration = Duration::from_secs(30);

/// A node's kubelet endpoint.
#[derive(Debug, Clone)]
pub struct Kubelet {
    pub node: String,
    pub address: String,
    pub port: u16,
}

impl Kubelet {
    /// The kubelet of `node`, from its Node object; 503 when the Node reports no port.
    pub async fn of(server: &Server, node: &str) -> Result<Kubelet, ApiError> {
        let nodes = server
            .registry
            .get("", "nodes")
            .ok_or_else(|| ApiError::internal("no nodes registry"))?;
        let obj = nodes.get("", node).await?;
        let address = obj
            .pointer("/status/addresses")
            .and_then(Value::as_array)
            .and_then(|a| a.iter().find(|a| a["type"] == "InternalIP"))
            .and_then(|a| a["address"].as_str())
            .unwrap_or("127.0.0.1")
            .to_string();
        let port = obj
            .pointer("/status/daemonEndpoints/kubeletEndpoint/Port")
            .and_then(Value::as_u64)
            .and_then(|p| u16::try_from(p).ok())
            .filter(|p| *p > 0)
            .ok_or_else(|| {
                ApiError::service_unavailable(format!("node {node:?} serves no kubelet port"))
            })?;
        Ok(Kubelet {
            node: node.to_string(),
            address,
            port,
        })
    }

    fn unreachable(&self, e: &dyn std::fmt::Display) -> ApiError {
        ApiError::service_unavailable(format!(
            "error trying to reach the kubelet of node {:?} at {}:{}: {e}",
            self.node, self.address, self.port
        ))
    }

    /// Sends one request (`path_and_query` on the kubelet) and returns its response, whose
    /// body streams from the kubelet.
    /// A TLS connection to the kubelet with the API server's kubelet client certificate.
    pub async fn connect(
        &self,
        server: &Server,
    ) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, ApiError> {
        let tls = server.kubelet_tls.clone().ok_or_else(|| {
            ApiError::service_unavailable(
                "the API server has no kubelet client credentials (--kubelet-client-certificate)",
            )
        })?;
        let connect = async {
            let tcp = tokio::net::TcpStream::connect((self.address.as_str(), self.port))
                .await
                .map_err(|e| self.unreachable(&e))?;
            let _ = tcp.set_nodelay(true);
            let server_name =
                ServerName::try_from(self.address.clone()).map_err(|e| self.unreachable(&e))?;
            TlsConnector::from(tls)
                .connect(server_name, tcp)
                .await
                .map_err(|e| self.unreachable(&e))
        };
        tokio::time::timeout(KUBELET_TIMEOUT, connect)
            .await
            .map_err(|_| self.timed_out())?
    }

    fn timed_out(&self) -> ApiError {
        ApiError::timeout(format!(
            "the kubelet of node {:?} did not answer within {}s",
            self.node,
            KUBELET_TIMEOUT.as_secs()
        ))
    }

    pub async fn send(
        &self,
        server: &Server,
        method: http::Method,
        path_and_query: &str,
        headers: &[(http::HeaderName, http::HeaderValue)],
        body: Bytes,
    ) -> Result<http::Response<Incoming>, ApiError> {
        let request = async {
            let stream = self.connect(server).await?;
            super::proxy::exchange(
                server,
                stream,
                &self.address,
                method,
                path_and_query,
                headers,
                body,
            )
            .await
            .map_err(|e| match e {
                super::proxy::ExchangeError::Api(e) => e,
                super::proxy::ExchangeError::Io(e) => self.unreachable(&e),
            })
        };
        tokio::time::timeout(KUBELET_TIMEOUT, request)
            .await
            .map_err(|_| self.timed_out())?
    }
}
