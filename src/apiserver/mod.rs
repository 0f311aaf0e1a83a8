//! The API server: HTTPS, authentication, routing and encoding over the registry.
//!
//! Requests flow `tls` (who is calling) → `handler` (which resource and verb, authorization,
//! content negotiation) → the registry's stores. `authz` holds who may do what: the built-in
//! identities' grants, NodeRestriction admission and impersonation. Discovery and OpenAPI
//! documents are built from the same `ResourceInfo` the stores use, so they cannot disagree.

pub mod authz;
mod discovery;
pub mod filters;
mod handler;
mod kubelet_client;
mod logs;
mod metrics;
mod openapi;
mod options;
pub mod protobuf;
mod proxy;
pub mod rbac;
mod request;
mod resource_metrics;
mod streaming;
mod table;
pub mod tokens;

mod watch;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::registry::{self, Registry};
use crate::storage::{EtcdStorage, StorageError};
use crate::tls;

pub use crate::registry::MAX_BODY_BYTES;

/// The Kubernetes version rkube reports and behaves as.
pub const KUBE_VERSION: (&str, &str) = ("1", "32");

#[derive(Debug, Clone)]
pub struct Config {
    pub etcd_servers: Vec<String>,
    pub etcd_prefix: String,
    pub cert_file: String,
    pub key_file: String,
    pub client_ca_file: String,
    /// How often etcd history is compacted (upstream `--etcd-compaction-interval`, 5m).
    pub compaction_interval: Duration,
    /// How long Events live (upstream `--event-ttl`, 1h).
    pub event_ttl: Duration,
    /// The CA of kubelets' serving certificates and the client certificate and key the API
    /// server presents to them (for `pods/log`).
    pub kubelet_client: Option<(String, String, String)>,
    /// Timeouts and in-flight limits ([`filters::Limits`]).
    pub limits: filters::Limits,
    /// The most memory the watch cache's history of each resource may hold.
    pub history_bytes: usize,
    /// Service account tokens: the keys that sign and verify them, issuer and audiences.
    pub tokens: Arc<tokens::Tokens>,
    /// Which resources are encrypted at rest, and how.
    pub encryption: Arc<crate::storage::encryption::Encryption>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("cannot reach etcd at {servers}: {source}")]
    Etcd {
        servers: String,
        #[source]
        source: StorageError,
    },
    #[error("cannot create the system namespaces: {0}")]
    Bootstrap(String),
}

/// What every request handler shares.
pub struct Server {
    pub registry: Registry,
    /// Request and etcd metrics for `/metrics`.
    pub metrics: metrics::Metrics,
    pub etcd: EtcdStorage,
    pub local_addr: SocketAddr,
    /// How to reach kubelets, if configured.
    pub kubelet_tls: Option<Arc<rustls::ClientConfig>>,
    /// Long-running work (watch streams), so that shutdown waits for it.
    pub tracker: TaskTracker,
    pub limits: filters::Limits,
    /// Slots for requests in flight (`--max-requests-inflight` and its mutating twin).
    pub inflight: filters::InFlight,
    /// The RBAC objects the authorizer decides from, kept current by watches.
    pub rbac: Arc<rbac::RbacView>,
    /// Issues service account tokens and authenticates requests bearing them.
    pub tokens: Arc<tokens::Tokens>,
}

/// Serves the API on `listener`, and on `extra` listeners (the advertise address), until
/// `shutdown` is cancelled.
pub async fn run(
    listener: TcpListener,
    extra: Vec<TcpListener>,
    config: Config,
    shutdown: CancellationToken,
) -> Result<(), ServerError> {
    let (tls_config, authenticator) =
        tls::server_config(&config.cert_file, &config.key_file, &config.client_ca_file)?;
    let etcd_error = |source| ServerError::Etcd {
        servers: config.etcd_servers.join(","),
        source,
    };
    let etcd = EtcdStorage::connect(&config.etcd_servers)
        .await
        .map_err(etcd_error)?
        .measured(&config.etcd_prefix)
        .encrypted(config.encryption.clone());
    let tracker = TaskTracker::new();
    let registry = Registry::start(
        Arc::new(etcd.clone()),
        &config.etcd_prefix,
        registry::kinds(config.event_ttl),
        config.history_bytes,
        &tracker,
        shutdown.clone(),
    )
    .await
    .map_err(etcd_error)?;
    registry::namespaces::bootstrap_system(&etcd, &config.etcd_prefix)
        .await
        .map_err(|e| ServerError::Bootstrap(e.to_string()))?;
    let rbac_view = rbac::RbacView::start(&registry, &tracker, shutdown.clone());
    let bootstrap_keys = registry::rbac::bootstrap::ensure(&registry)
        .await
        .map_err(|e| ServerError::Bootstrap(format!("the RBAC bootstrap policy: {e}")))?;
    // The built-in components' first requests are decided by these objects: serve once the
    // authorizer holds them.
    if !rbac_view
        .wait_for(&bootstrap_keys, Duration::from_secs(30))
        .await
    {
        return Err(ServerError::Bootstrap(
            "the RBAC bootstrap policy did not reach the authorizer".into(),
        ));
    }
    if let Some(store) = registry.get(registry::rbac::GROUP, "clusterroles") {
        tracker.spawn(rbac::aggregation::run(
            rbac_view.clone(),
            store.clone(),
            shutdown.clone(),
        ));
    }
    let local_addr = listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
    let kubelet_tls = match &config.kubelet_client {
        Some((ca, cert, key)) => Some(Arc::new(tls::client_config(ca, cert, key)?)),
        None => None,
    };
    let server = Arc::new(Server {
        registry,
        metrics: metrics::Metrics::new(etcd.metrics()),
        etcd,
        local_addr,
        kubelet_tls,
        tracker: tracker.clone(),
        inflight: filters::InFlight::new(&config.limits),
        limits: config.limits.clone(),
        rbac: rbac_view,
        tokens: config.tokens.clone(),
    });
    tracker.spawn(registry::namespace_finalizer::run(
        server.registry.stores().to_vec(),
        shutdown.clone(),
    ));
    tracker.spawn(crate::storage::compactor::run(
        server.etcd.clone(),
        server.registry.caches(),
        config.compaction_interval,
        shutdown.clone(),
    ));
    let acceptor = TlsAcceptor::from(Arc::new(tls_config));
    tracing::info!(address = %local_addr, "serving the API");
    for listener in extra {
        tracker.spawn(accept(
            listener,
            acceptor.clone(),
            server.clone(),
            authenticator.clone(),
            shutdown.clone(),
        ));
    }
    accept(listener, acceptor, server, authenticator, shutdown).await;
    tracker.close();
    let _ = tokio::time::timeout(Duration::from_secs(10), tracker.wait()).await;
    Ok(())
}

/// Takes connections on `listener` until `shutdown`, serving each in its own task.
async fn accept(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    server: Arc<Server>,
    authenticator: tls::Authenticator,
    shutdown: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => break,
        };
        let (stream, _) = match accepted {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                continue;
            }
        };
        // Small writes go out at once, as on every connection Go's net package makes: with
        // Nagle's algorithm a watch event written while the previous one is unacknowledged
        // waited for the client's delayed ACK, 40 ms.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        server.tracker.spawn(serve_connection(
            stream,
            acceptor.clone(),
            server.clone(),
            authenticator.clone(),
            shutdown.clone(),
        ));
    }
}

/// Serves one client connection: the TLS handshake within its timeout, then HTTP until the
/// client leaves, the connection sits idle past the idle timeout, a filter asks it to close
/// (after a 401 or a timed-out request), or the server shuts down.
async fn serve_connection(
    stream: tokio::net::TcpStream,
    acceptor: TlsAcceptor,
    server: Arc<Server>,
    authenticator: tls::Authenticator,
    shutdown: CancellationToken,
) {
    let limits = server.limits.clone();
    let handshake = tokio::time::timeout(limits.tls_handshake_timeout, acceptor.accept(stream));
    let Ok(Ok(tls)) = handshake.await else {
        return;
    };
    let user = authenticator.authenticate(tls.get_ref().1.peer_certificates());
    let conn_state = filters::Connection::new();
    let service = {
        let conn_state = conn_state.clone();
        let shutdown = shutdown.clone();
        service_fn(move |req| {
            let served = filters::serve(
                server.clone(),
                conn_state.clone(),
                user.clone(),
                req,
                shutdown.clone(),
            );
            async move { Ok::<_, std::convert::Infallible>(served.await) }
        })
    };
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .header_read_timeout(Duration::from_secs(32))
        .timer(hyper_util::rt::TokioTimer::new());
    builder.http2().max_concurrent_streams(100);
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
    tokio::pin!(conn);
    let idle_limit = limits.idle_timeout;
    let idle = async {
        loop {
            let idle_for = conn_state.idle_for();
            if !idle_limit.is_zero() && idle_for >= idle_limit {
                return;
            }
            let check = if idle_limit.is_zero() {
                Duration::from_secs(3600)
            } else {
                (idle_limit - idle_for).max(Duration::from_millis(100))
            };
            tokio::time::sleep(check).await;
        }
    };
    let drain = tokio::select! {
        _ = conn.as_mut() => return,
        () = idle => Duration::from_secs(1),
        () = conn_state.close.cancelled() => Duration::from_secs(5),
        () = shutdown.cancelled() => Duration::from_secs(5),
    };
    conn.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(drain, conn).await;
}
