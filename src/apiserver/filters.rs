//! What stands between a connection and the handler: how long a request may take, how many may
//! be in flight, and what happens to a connection that carries no credentials or sits idle.
//!
//! Follows kube-apiserver's handler chain (`staging/src/k8s.io/apiserver/pkg/server/filters`):
//! `WithTimeoutForNonLongRunningRequests` answers 504 `Timeout: request did not complete within
//! 1m0s` for a request that takes longer than `--request-timeout`; `WithMaxInFlightLimit`
//! answers 429 with `Retry-After: 1` past `--max-requests-inflight` (read-only) or
//! `--max-mutating-requests-inflight` (everything else). Long-running requests (watch, logs,
//! exec, attach, port-forward, proxy) are neither timed out nor counted, and `system:masters`
//! is never refused for load, so an administrator can always get in.
//!
//! Deviations: upstream's 429 body is the plain text `Too many requests, please try again
//! later.`; rkube sends a `Status` with that message, reason `TooManyRequests` and
//! `details.retryAfterSeconds`, which clients parse as well and which names the reason. A
//! request past its deadline is cancelled (upstream lets the handler run on in the background
//! and discards its answer). A connection whose client presented no valid certificate is
//! closed after its 401, so an unauthenticated client cannot hold it open.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{header, Method, Request, Response, Version};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use super::handler::{self, error_response, Body};
use super::request::{parse_resource_path, Query};
use super::Server;
use crate::meta::{duration, ApiError};
use crate::tls::User;

/// The limits a client meets, with kube-apiserver's defaults.
#[derive(Debug, Clone)]
pub struct Limits {
    /// `--request-timeout` (1m0s).
    pub request_timeout: Duration,
    /// `--max-requests-inflight` (400); 0 means no limit.
    pub max_requests_inflight: usize,
    /// `--max-mutating-requests-inflight` (200); 0 means no limit.
    pub max_mutating_requests_inflight: usize,
    /// The TLS handshake timeout of kube-apiserver's `http.Server` (10s).
    pub tls_handshake_timeout: Duration,
    /// The idle timeout of kube-apiserver's `http.Server` (90s): a connection with no request
    /// in progress for this long is closed.
    pub idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            request_timeout: Duration::from_secs(60),
            max_requests_inflight: 400,
            max_mutating_requests_inflight: 200,
            tls_handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(90),
        }
    }
}

/// How the limits treat a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Watch, logs, exec, attach, port-forward, proxy: no timeout, not counted.
    LongRunning,
    /// get, list (upstream's non-mutating verbs).
    ReadOnly,
    Mutating,
}

/// Classifies a request as upstream's `BasicLongRunningRequestCheck` and `WithMaxInFlightLimit`
/// do: the verbs `watch` and `proxy` and the subresources `attach`, `exec`, `log`,
/// `portforward` and `proxy` are long-running; `get`, `list` and `watch` are read-only.
pub fn classify(method: &Method, path: &str, query: Option<&str>) -> Class {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if let Some(resource) = parse_resource_path(&segments) {
        let watch_path = resource.resource == "watch" || resource.resource == "proxy";
        let long_sub = matches!(
            resource.subresource.as_str(),
            "attach" | "exec" | "log" | "portforward" | "proxy"
        );
        let watch_query = method == Method::GET
            && resource.name.is_empty()
            && Query::parse(query).flag("watch").unwrap_or(false);
        if watch_path || long_sub || watch_query {
            return Class::LongRunning;
        }
    }
    if method == Method::GET || method == Method::HEAD {
        Class::ReadOnly
    } else {
        Class::Mutating
    }
}

/// The two pools of in-flight slots.
pub struct InFlight {
    read_only: Option<Arc<Semaphore>>,
    mutating: Option<Arc<Semaphore>>,
}

impl InFlight {
    pub fn new(limits: &Limits) -> InFlight {
        let pool = |n: usize| (n > 0).then(|| Arc::new(Semaphore::new(n)));
        InFlight {
            read_only: pool(limits.max_requests_inflight),
            mutating: pool(limits.max_mutating_requests_inflight),
        }
    }

    /// A slot for a request of `class`: `Ok(None)` when the request is not counted, `Err` when
    /// its pool is full.
    fn admit(&self, class: Class) -> Result<Option<OwnedSemaphorePermit>, ()> {
        let pool = match class {
            Class::LongRunning => return Ok(None),
            Class::ReadOnly => &self.read_only,
            Class::Mutating => &self.mutating,
        };
        match pool {
            None => Ok(None),
            Some(pool) => pool.clone().try_acquire_owned().map(Some).map_err(|_| ()),
        }
    }
}

/// upstream's `tooManyRequests`: 429, `Retry-After: 1`.
pub fn too_many_requests() -> ApiError {
    let mut e = ApiError::service_unavailable("Too many requests, please try again later.");
    e.code = 429;
    e.reason = "TooManyRequests";
    e.details.retry_after = Some(1);
    e
}

/// upstream's timeout filter: 504 `Timeout: request did not complete within 1m0s`.
pub fn request_timed_out(limit: Duration) -> ApiError {
    ApiError::timeout(format!(
        "request did not complete within {}",
        duration::format(limit)
    ))
}

/// What one connection's requests share: whether any is in progress (for the idle timeout)
/// and a token that asks the connection to close once its current answer is out.
pub struct Connection {
    active: AtomicUsize,
    last_active: Mutex<Instant>,
    pub close: CancellationToken,
}

impl Connection {
    pub fn new() -> Arc<Connection> {
        Arc::new(Connection {
            active: AtomicUsize::new(0),
            last_active: Mutex::new(Instant::now()),
            close: CancellationToken::new(),
        })
    }

    fn touch(&self) {
        *self.last_active.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    /// How long the connection has had nothing in progress (zero while a request or a
    /// response body is under way).
    pub fn idle_for(&self) -> Duration {
        if self.active.load(Ordering::SeqCst) > 0 {
            return Duration::ZERO;
        }
        self.last_active
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .elapsed()
    }
}

/// Counts a request (and its response body) as in progress on its connection.
struct Busy(Arc<Connection>);

impl Busy {
    fn new(conn: &Arc<Connection>) -> Busy {
        conn.active.fetch_add(1, Ordering::SeqCst);
        conn.touch();
        Busy(conn.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.touch();
        self.0.active.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The token of an `Authorization: Bearer <token>` header, if there is one.
fn bearer_token(headers: &http::HeaderMap) -> Option<&str> {
    let value = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Serves one request through the filters, then the handler.
pub async fn serve(
    server: Arc<Server>,
    conn: Arc<Connection>,
    user: Option<User>,
    req: Request<Incoming>,
    shutdown: CancellationToken,
) -> Response<Body> {
    let busy = Busy::new(&conn);
    let version = req.version();
    // A client certificate wins; without one, a bearer token may stand for a service account
    // (upstream's union authenticator tries x509 first too).
    let user = match (user, bearer_token(req.headers())) {
        (Some(user), _) => Some(user),
        (None, Some(token)) => server.tokens.authenticate(&server.registry, token).await,
        (None, None) => None,
    };
    let Some(user) = user else {
        // No credentials: answer 401 and do not keep the connection for more attempts.
        conn.close.cancel();
        let mut resp = error_response(&ApiError::unauthorized());
        close_after(&mut resp, version);
        return resp;
    };
    let class = classify(req.method(), req.uri().path(), req.uri().query());
    let _slot = match server.inflight.admit(class) {
        Ok(slot) => slot,
        // As upstream, the privileged group is served even when the pool is full.
        Err(()) if user.in_group("system:masters") => None,
        Err(()) => return error_response(&too_many_requests()),
    };
    let limit = server.limits.request_timeout;
    let served = handler::handle(server, Some(user), req, shutdown);
    let resp = if class == Class::LongRunning || limit.is_zero() {
        served.await
    } else {
        match tokio::time::timeout(limit, served).await {
            Ok(resp) => resp,
            Err(_) => {
                // Over HTTP/1 the body may still be arriving (a client trickling it): cut the
                // connection. An HTTP/2 stream ends alone; the connection's other streams (a
                // client's watches among them) go on, as upstream's.
                if version < Version::HTTP_2 {
                    conn.close.cancel();
                }
                let mut resp = error_response(&request_timed_out(limit));
                close_after(&mut resp, version);
                resp
            }
        }
    };
    // The connection stays busy until the body is sent (a watch's, for as long as it runs).
    resp.map(move |inner| Tracked { inner, _busy: busy }.boxed())
}

/// A response body that keeps its connection counted as busy until it is dropped; it keeps
/// the inner body's size, so a buffered answer still goes out with a `content-length`.
struct Tracked {
    inner: Body,
    _busy: Busy,
}

impl hyper::body::Body for Tracked {
    type Data = bytes::Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// Tells an HTTP/1 client that the connection ends with this answer.
fn close_after(resp: &mut Response<Body>, version: Version) {
    if version < Version::HTTP_2 {
        resp.headers_mut().insert(
            header::CONNECTION,
            header::HeaderValue::from_static("close"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_running_requests_are_told_apart() {
        let cases = [
            (
                "GET",
                "/api/v1/pods",
                Some("watch=true"),
                Class::LongRunning,
            ),
            (
                "GET",
                "/api/v1/namespaces/a/pods",
                Some("watch=1"),
                Class::LongRunning,
            ),
            ("GET", "/api/v1/watch/pods", None, Class::LongRunning),
            (
                "GET",
                "/api/v1/namespaces/a/pods/p/log",
                None,
                Class::LongRunning,
            ),
            (
                "POST",
                "/api/v1/namespaces/a/pods/p/exec",
                None,
                Class::LongRunning,
            ),
            (
                "GET",
                "/api/v1/namespaces/a/pods/p/attach",
                None,
                Class::LongRunning,
            ),
            (
                "POST",
                "/api/v1/namespaces/a/pods/p/portforward",
                None,
                Class::LongRunning,
            ),
            ("GET", "/api/v1/pods", Some("watch=false"), Class::ReadOnly),
            ("GET", "/api/v1/namespaces/a/pods/p", None, Class::ReadOnly),
            ("GET", "/version", None, Class::ReadOnly),
            ("GET", "/healthz", None, Class::ReadOnly),
            ("POST", "/api/v1/namespaces/a/pods", None, Class::Mutating),
            (
                "PATCH",
                "/api/v1/namespaces/a/pods/p/status",
                None,
                Class::Mutating,
            ),
            ("DELETE", "/api/v1/namespaces/a/pods", None, Class::Mutating),
            ("PUT", "/api/v1/nodes/n", None, Class::Mutating),
        ];
        for (method, path, query, want) in cases {
            let method = Method::from_bytes(method.as_bytes()).expect("method");
            assert_eq!(
                classify(&method, path, query),
                want,
                "{method} {path} {query:?}"
            );
        }
    }

    #[test]
    fn full_pools_refuse_and_long_running_requests_pass() {
        let inflight = InFlight::new(&Limits {
            max_requests_inflight: 1,
            max_mutating_requests_inflight: 1,
            ..Limits::default()
        });
        let read = inflight.admit(Class::ReadOnly).expect("first read");
        assert!(
            inflight.admit(Class::ReadOnly).is_err(),
            "second read refused"
        );
        let write = inflight
            .admit(Class::Mutating)
            .expect("writes have their own pool");
        assert!(
            inflight.admit(Class::Mutating).is_err(),
            "second write refused"
        );
        for _ in 0..10 {
            assert!(matches!(inflight.admit(Class::LongRunning), Ok(None)));
        }
        drop(read);
        assert!(
            inflight.admit(Class::ReadOnly).is_ok(),
            "a freed slot is reused"
        );
        drop(write);
        let unlimited = InFlight::new(&Limits {
            max_requests_inflight: 0,
            max_mutating_requests_inflight: 0,
            ..Limits::default()
        });
        for _ in 0..1000 {
            assert!(matches!(unlimited.admit(Class::Mutating), Ok(None)));
        }
    }

    #[test]
    fn refusals_carry_upstream_codes_and_messages() {
        let status = too_many_requests().to_status();
        assert_eq!(status["code"], 429);
        assert_eq!(status["reason"], "TooManyRequests");
        assert_eq!(
            status["message"],
            "Too many requests, please try again later."
        );
        assert_eq!(status["details"]["retryAfterSeconds"], 1);
        let status = request_timed_out(Duration::from_secs(60)).to_status();
        assert_eq!(status["code"], 504);
        assert_eq!(status["reason"], "Timeout");
        assert_eq!(
            status["message"],
            "Timeout: request did not complete within 1m0s"
        );
    }
}
