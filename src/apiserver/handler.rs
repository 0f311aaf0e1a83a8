//! Request handling: authentication result in, resource and verb out, answered in the
//! negotiated form. Every failure leaves as a `Status` body with upstream's code and reason.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt as _;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::authz::{self, Attributes, Decision, ImpersonationError};
use super::options::{self, WriteKind};
use super::rbac::RbacView;
use super::request::{negotiate, parse_resource_path, verb_for, Output, Query, ResourcePath};
use super::table::{self, Include};
use super::{
    discovery, metrics, openapi, protobuf, proxy, resource_metrics, streaming, watch, Server,
    MAX_BODY_BYTES,
};
use crate::meta::patch::PatchType;
use crate::meta::selector::{FieldSelector, LabelSelector};
use crate::meta::{object, ApiError, GroupResource};
use crate::registry::decode::{self, Parsed};
use crate::registry::{
    binding, namespaces, Admit, DeleteOptions, ListOptions, Store, WatchOptions,
};
use crate::tls::User;

pub type Body = BoxBody<Bytes, std::io::Error>;

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

fn respond(code: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    let mut resp = Response::new(full(body));
    *resp.status_mut() = code;
    if let Ok(value) = header::HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    resp
}

/// The response for an error: its `Status` as JSON.
pub fn error_response(err: &ApiError) -> Response<Body> {
    status_response(err, false)
}

/// The response for an error: its `Status` in protobuf when the client asked for protobuf
/// first, else in JSON.
fn status_response(err: &ApiError, in_protobuf: bool) -> Response<Body> {
    let status = err.to_status();
    let code = StatusCode::from_u16(err.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = match in_protobuf.then(|| protobuf_body(&status)).flatten() {
        Some(bytes) => respond(code, protobuf::MEDIA_TYPE, bytes),
        None => respond(
            code,
            "application/json",
            serde_json::to_vec(&status).expect("a JSON value always serializes"),
        ),
    };
    if let Some(secs) = err.details.retry_after {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
    }
    resp
}

/// An object in protobuf; None for a kind the protobuf table does not have (answered in JSON,
/// which every client that names protobuf also accepts).
fn protobuf_body(value: &Value) -> Option<Vec<u8>> {
    protobuf::encode_object(value)
}

/// An object (or list) in the negotiated form.
fn encode(code: StatusCode, value: &Value, output: Output, warnings: &[String]) -> Response<Body> {
    let mut resp = match output {
        Output::Protobuf => match protobuf_body(value) {
            Some(bytes) => respond(code, protobuf::MEDIA_TYPE, bytes),
            None => return encode(code, value, Output::Json, warnings),
        },
        Output::Yaml => match serde_yaml::to_string(value) {
            Ok(text) => respond(code, "application/yaml", text),
            Err(e) => return error_response(&ApiError::internal(e)),
        },
        Output::Json | Output::Table => respond(
            code,
            "application/json",
            serde_json::to_vec(value).expect("a JSON value always serializes"),
        ),
        Output::Metadata { version, .. } => respond(
            code,
            "application/json",
            serde_json::to_vec(&table::partial(value, version.api_version()))
                .expect("a JSON value always serializes"),
        ),
    };
    for warning in warnings {
        let text = format!(
            "299 - \"{}\"",
            warning.replace('\\', "\\\\").replace('"', "\\\"")
        );
        if let Ok(value) = header::HeaderValue::from_str(&text) {
            resp.headers_mut().append(header::WARNING, value);
        }
    }
    resp
}

fn json_ok(value: &Value) -> Result<Response<Body>, ApiError> {
    Ok(encode(StatusCode::OK, value, Output::Json, &[]))
}

pub async fn handle(
    server: Arc<Server>,
    user: Option<User>,
    req: Request<Incoming>,
    shutdown: CancellationToken,
) -> Response<Body> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let started = std::time::Instant::now();
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // Parsed once: the metrics' labels and the route read the same query.
    let query = Query::parse(req.uri().query());
    let labels = metrics::RequestLabels::of(&method, &path, &query, content_type, &server.registry);
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    let in_protobuf = negotiate(accept) == Ok(Output::Protobuf);
    let mut resp = match route(&server, user, req, query, &shutdown).await {
        Ok(resp) => resp,
        Err(e) => status_response(&e, in_protobuf),
    };
    let status = resp.status();
    tracing::debug!(%method, %path, status = status.as_u16(), elapsed = ?started.elapsed(), "request");
    if let Some(labels) = labels {
        server
            .metrics
            .observe(&labels, status.as_u16(), started.elapsed());
        if labels.verb == "WATCH" && status == StatusCode::OK {
            // Counted while the stream lives: the guard goes with the body.
            let watching = server.metrics.long_running(&labels);
            resp = resp.map(|body| {
                body.map_frame(move |frame| {
                    let _ = &watching;
                    frame
                })
                .boxed()
            });
        }
    }
    resp
}

async fn route(
    server: &Arc<Server>,
    user: Option<User>,
    req: Request<Incoming>,
    query: Query,
    shutdown: &CancellationToken,
) -> Result<Response<Body>, ApiError> {
    // No anonymous access at all (as k3s runs kube-apiserver): every request needs a client
    // certificate the cluster CA signed.
    let mut user = user.ok_or_else(ApiError::unauthorized)?;
    // Every authenticated user is in `system:authenticated` (upstream's group adder).
    if !user.in_group(authz::AUTHENTICATED) {
        user.groups.push(authz::AUTHENTICATED.into());
    }
    let user = match authz::impersonate(user, req.headers(), &server.rbac) {
        Ok(user) => user,
        // Upstream answers this malformed request with a plain-text 500.
        Err(e @ ImpersonationError::WithoutUser(_)) => {
            let uri = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("");
            return Ok(respond(
                StatusCode::INTERNAL_SERVER_ERROR,
                "text/plain; charset=utf-8",
                format!("Internal Server Error: {uri:?}: {e}\n"),
            ));
        }
        Err(ImpersonationError::Forbidden(e)) => return Err(e),
    };
    let path = req.uri().path().to_string();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    // Paths that name no resource (discovery, OpenAPI, health, version, metrics, anything
    // unknown) are authorized as upstream's non-resource requests, before routing: the verb is
    // the lower-cased method, and a refused path is 403 whether it exists or not.
    let resource_path = match segments.as_slice() {
        ["api"] | ["api", _] | ["apis"] | ["apis", _] | ["apis", _, _] => false,
        ["api" | "apis", ..] => true,
        _ => false,
    };
    if !resource_path {
        let verb = req.method().as_str().to_ascii_lowercase();
        authz::authorize_path(&user, &verb, &path, &server.rbac)?;
    }
    let stores = server.registry.stores();
    let get_only = |method: &Method| {
        if method == Method::GET {
            Ok(())
        } else {
            Err(ApiError::new_method_not_allowed(method))
        }
    };
    match segments.as_slice() {
        ["version"] => {
            get_only(req.method())?;
            json_ok(&discovery::version())
        }
        ["healthz" | "livez" | "readyz", ..] => health(server, &segments, &query, shutdown).await,
        ["metrics"] => {
            get_only(req.method())?;
            Ok(respond(
                StatusCode::OK,
                metrics::CONTENT_TYPE,
                server.metrics.encode(),
            ))
        }
        ["api"] => discovery_answer(server, true, req.headers()),
        ["apis"] => discovery_answer(server, false, req.headers()),
        ["apis", group] => discovery::group(stores, group)
            .ok_or_else(ApiError::path_not_found)
            .and_then(|v| json_ok(&v)),
        ["api", version] => discovery::resource_list(stores, "", version)
            .ok_or_else(ApiError::path_not_found)
            .and_then(|v| json_ok(&v)),
        ["apis", group, version] => discovery::resource_list(stores, group, version)
            .ok_or_else(ApiError::path_not_found)
            .and_then(|v| json_ok(&v)),
        ["apis", resource_metrics::GROUP, resource_metrics::VERSION, rest @ ..]
            if !rest.is_empty() =>
        {
            resource_metrics::serve(server, &user, req.method(), rest, &query).await
        }
        ["apis", group, version, plural]
            if super::rbac::reviews::find(group, version, plural)
                .is_some_and(|info| !info.namespaced) =>
        {
            let info =
                super::rbac::reviews::find(group, version, plural).expect("matched just above");
            review(server, &user, req, info, &query, "").await
        }
        ["apis", group, version, "namespaces", ns, plural]
            if super::rbac::reviews::find(group, version, plural)
                .is_some_and(|info| info.namespaced) =>
        {
            let info =
                super::rbac::reviews::find(group, version, plural).expect("matched just above");
            let ns = ns.to_string();
            review(server, &user, req, info, &query, &ns).await
        }
        ["api", "v1", "nodes", node, "proxy", ..] => {
            let node = node.to_string();
            proxy::node(server, &user, req, &node, &query).await
        }
        ["api", "v1", "namespaces", ns, "pods", pod, sub]
            if streaming::Subresource::parse(sub).is_some() =>
        {
            let (ns, pod) = (ns.to_string(), pod.to_string());
            let sub = streaming::Subresource::parse(sub).expect("matched just above");
            streaming::connect(server, &user, req, &ns, &pod, sub, &query, shutdown.clone()).await
        }
        ["api", "v1", "namespaces", ns, "pods", pod, "proxy", ..] => {
            let (ns, pod) = (ns.to_string(), pod.to_string());
            proxy::pod(server, &user, req, &ns, &pod, &query).await
        }
        ["openapi", "v2"] => {
            get_only(req.method())?;
            Ok(openapi::serve_v2(stores, req.headers()).map(full))
        }
        ["openapi", "v3"] => {
            get_only(req.method())?;
            Ok(openapi::serve_root(stores, req.headers()).map(full))
        }
        ["openapi", "v3", rest @ ..] => {
            get_only(req.method())?;
            let query = req.uri().query();
            openapi::serve_group_version(stores, &rest.join("/"), query, req.headers())
                .map(|resp| resp.map(full))
                .ok_or_else(ApiError::path_not_found)
        }
        _ => {
            let resource = parse_resource_path(&segments).ok_or_else(ApiError::path_not_found)?;
            resource_request(server, &user, req, resource, query, shutdown).await
        }
    }
}

/// A self-subject review: authorized as a create of its resource, answered from the
/// authorizer, stored nowhere.
async fn review(
    server: &Arc<Server>,
    user: &User,
    req: Request<Incoming>,
    info: &'static crate::registry::ResourceInfo,
    query: &Query,
    namespace: &str,
) -> Result<Response<Body>, ApiError> {
    if req.method() != Method::POST {
        return Err(ApiError::method_not_supported(
            info.group_resource(),
            &req.method().to_string().to_lowercase(),
        ));
    }
    let a = Attributes {
        verb: "create",
        group: info.group,
        resource: info.plural,
        subresource: "",
        namespace,
        name: "",
        node_selector: None,
    };
    authorize(&server.rbac, user, &a, None).await?;
    let output = negotiate(
        req.headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok()),
    )?;
    options::write_options(query, WriteKind::Create)?;
    let (bytes, ct) = read_body(req).await?;
    let body = parse_object(&bytes, &ct, (&info.api_version(), info.kind))?.object;
    let answer = super::rbac::reviews::answer(server, user, info, &body, namespace).await?;
    Ok(encode(StatusCode::CREATED, &answer, output.plain(), &[]))
}

/// `/api` or `/apis` (`core` false) in the form the client asks for first. The aggregated form
/// carries an ETag and answers a matching `If-None-Match` with 304, as upstream does.
fn discovery_answer(
    server: &Server,
    core: bool,
    headers: &http::HeaderMap,
) -> Result<Response<Body>, ApiError> {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let form = discovery::Form::negotiate(accept);
    let stores = server.registry.stores();
    let body = match form {
        discovery::Form::Legacy if core => discovery::core_versions(&server.local_addr.to_string()),
        discovery::Form::Legacy => discovery::group_list(stores),
        discovery::Form::Aggregated(version) => discovery::aggregated(stores, core, version),
    };
    let bytes = serde_json::to_vec(&body).expect("a JSON value always serializes");
    let mut resp = if let discovery::Form::Aggregated(_) = form {
        let etag = format!("\"{:016X}\"", {
            use std::hash::{Hash as _, Hasher as _};
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            bytes.hash(&mut hasher);
            hasher.finish()
        });
        let fresh = headers
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag));
        let mut resp = if fresh {
            respond(StatusCode::NOT_MODIFIED, &form.content_type(), Bytes::new())
        } else {
            respond(StatusCode::OK, &form.content_type(), bytes)
        };
        if let Ok(value) = header::HeaderValue::from_str(&etag) {
            resp.headers_mut().insert(header::ETAG, value);
        }
        resp
    } else {
        respond(StatusCode::OK, &form.content_type(), bytes)
    };
    resp.headers_mut()
        .insert(header::VARY, header::HeaderValue::from_static("Accept"));
    Ok(resp)
}

impl ApiError {
    /// The 405 kube-apiserver's router gives a path that exists without the method: its
    /// generic server response, with the router's own text as the cause.
    pub(super) fn new_method_not_allowed(method: &Method) -> ApiError {
        let _ = method;
        let mut e = ApiError::bad_request(
            "the server does not allow this method on the requested resource",
        );
        e.code = 405;
        e.reason = "MethodNotAllowed";
        e.details.causes.push(crate::meta::Cause {
            reason: "UnexpectedServerResponse".into(),
            message: "405: Method Not Allowed".into(),
            field: String::new(),
        });
        e
    }
}

async fn health(
    server: &Server,
    segments: &[&str],
    query: &Query,
    shutdown: &CancellationToken,
) -> Result<Response<Body>, ApiError> {
    let etcd_ok = server.etcd.healthy().await;
    let which = segments[0];
    let checks = health_checks(which, etcd_ok, shutdown.is_cancelled());
    if let Some(check) = segments.get(1) {
        return match checks.iter().find(|(name, _)| name == check) {
            Some((_, true)) => Ok(respond(StatusCode::OK, "text/plain; charset=utf-8", "ok")),
            Some((name, false)) => Ok(respond(
                StatusCode::INTERNAL_SERVER_ERROR,
                "text/plain; charset=utf-8",
                format!("internal server error: {name} check failed"),
            )),
            None => Err(ApiError::path_not_found()),
        };
    }
    Ok(health_answer(which, &checks, query))
}

/// The named checks of `/healthz`, `/livez` and `/readyz`, as upstream names them: `ping` and
/// `log` always pass, `etcd` asks etcd, and readiness adds `etcd-readiness` and `shutdown`
/// (failing once the server is stopping, so load balancers move away first).
fn health_checks(which: &str, etcd_ok: bool, stopping: bool) -> Vec<(&'static str, bool)> {
    let mut checks = vec![("ping", true), ("log", true), ("etcd", etcd_ok)];
    if which == "readyz" {
        checks.push(("etcd-readiness", etcd_ok));
        checks.push(("shutdown", !stopping));
    }
    checks
}

/// The body of a health endpoint: `ok`, or with `?verbose` (and always on failure) one line per
/// check. `?exclude=<name>` (repeatable) skips a check, reported as `excluded: ok`; a name that
/// matches no check gets upstream's warning line.
fn health_answer(which: &str, checks: &[(&str, bool)], query: &Query) -> Response<Body> {
    let mut excluded = query.all("exclude");
    excluded.sort();
    excluded.dedup();
    let mut text = String::new();
    let mut healthy = true;
    for (name, ok) in checks {
        if let Some(at) = excluded.iter().position(|e| e == name) {
            excluded.remove(at);
            text.push_str(&format!("[+]{name} excluded: ok\n"));
        } else if *ok {
            text.push_str(&format!("[+]{name} ok\n"));
        } else {
            healthy = false;
            text.push_str(&format!("[-]{name} failed: reason withheld\n"));
        }
    }
    if !excluded.is_empty() {
        let names: Vec<String> = excluded.iter().map(|e| format!("{e:?}")).collect();
        text.push_str(&format!(
            "warn: some health checks cannot be excluded: no matches for {}\n",
            names.join(",")
        ));
    }
    if !healthy {
        text.push_str(&format!("{which} check failed\n"));
        return respond(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain; charset=utf-8",
            text,
        );
    }
    if query.get("verbose").is_none() {
        return respond(StatusCode::OK, "text/plain; charset=utf-8", "ok");
    }
    text.push_str(&format!("{which} check passed\n"));
    respond(StatusCode::OK, "text/plain; charset=utf-8", text)
}

/// The request as the authorizer sees it. A list or watch selecting `metadata.name=<n>`
/// names that object, as upstream's request info does.
pub(super) fn attributes<'a>(
    verb: &'a str,
    path: &'a ResourcePath,
    query: &'a Query,
) -> Attributes<'a> {
    let list = matches!(verb, "list" | "watch");
    let name = if list && path.name.is_empty() {
        exact_field(query, "metadata.name").unwrap_or("")
    } else {
        &path.name
    };
    Attributes {
        verb,
        group: &path.group,
        resource: &path.resource,
        subresource: &path.subresource,
        namespace: &path.namespace,
        name,
        node_selector: if list {
            exact_field(query, "spec.nodeName")
        } else {
            None
        },
    }
}

/// The value a field selector requires `field` to equal exactly, if it does.
pub(super) fn exact_field<'a>(query: &'a Query, field: &str) -> Option<&'a str> {
    query.get("fieldSelector")?.split(',').find_map(|term| {
        let (key, value) = term
            .split_once("==")
            .or_else(|| term.split_once('='))
            .filter(|(k, _)| !k.ends_with('!'))?;
        (key.trim() == field).then(|| value.trim())
    })
}

/// Decides whether `user` may do this, before anything is read or written (see
/// [`authz::authorize`]); `pods` answers the Node authorizer's questions: whether a Pod is
/// bound to the kubelet's node, and whether one bound there refers to an object.
pub(super) async fn authorize(
    rbac: &RbacView,
    user: &User,
    a: &Attributes<'_>,
    pods: Option<&Store>,
) -> Result<(), ApiError> {
    match authz::authorize(user, a, rbac) {
        Decision::Allow => Ok(()),
        Decision::AllowIfBound { node } => {
            let pod = match pods {
                Some(store) => store.get(a.namespace, a.name).await.ok(),
                None => None,
            };
            authz::check_bound(&node, pod.as_deref()).map_err(|why| authz::forbidden(user, a, &why))
        }
        Decision::AllowIfReferenced { node } => {
            let referred = match pods {
                Some(store) => {
                    let options = ListOptions {
                        field: crate::meta::selector::FieldSelector::parse(&format!(
                            "spec.nodeName={node}"
                        ))
                        .ok(),
                        any_version: true,
                        ..ListOptions::default()
                    };
                    let bound = store.list(a.namespace, &options).await?;
                    bound
                        .items
                        .iter()
                        .any(|pod| authz::pod_refers_to(&pod.object, a.resource, a.name))
                }
                None => false,
            };
            if referred {
                Ok(())
            } else {
                let why = format!("no relationship found between node '{node}' and this object");
                Err(authz::forbidden(user, a, &why))
            }
        }
        Decision::Deny(reason) => Err(authz::forbidden(user, a, &reason)),
    }
}

/// NodeRestriction's check of what a kubelet writes, run by the store on the object.
/// `node_uid` is the uid of the kubelet's Node (for mirror Pods).
fn node_admission(
    user: &User,
    node_uid: Option<Result<String, ApiError>>,
    verb: &str,
    path: &ResourcePath,
) -> Option<Admit> {
    let node = authz::node_name(user)?.to_string();
    let verb = verb.to_string();
    let path = path.clone();
    Some(Admit(Arc::new(move |new: &Value, old: Option<&Value>| {
        let a = Attributes {
            verb: &verb,
            group: &path.group,
            resource: &path.resource,
            subresource: &path.subresource,
            namespace: &path.namespace,
            name: &path.name,
            node_selector: None,
        };
        authz::admit_node_write(&node, node_uid.as_ref(), &a, new, old)
    })))
}

/// Two admission checks run one after the other.
fn both(first: Option<Admit>, second: Option<Admit>) -> Option<Admit> {
    match (first, second) {
        (Some(Admit(a)), Some(Admit(b))) => {
            Some(Admit(Arc::new(move |new: &Value, old: Option<&Value>| {
                a(new, old)?;
                b(new, old)
            })))
        }
        (a, b) => a.or(b),
    }
}

/// NodeRestriction for deletes: a kubelet may only delete Pods bound to its node.
async fn admit_node_delete(store: &Store, user: &User, a: &Attributes<'_>) -> Result<(), ApiError> {
    let Some(node) = authz::node_name(user) else {
        return Ok(());
    };
    if a.group.is_empty() && a.resource == "pods" && a.subresource.is_empty() {
        let pod = store.get(a.namespace, a.name).await?;
        authz::admit_node_pod_delete(node, a, &pod)?;
    }
    Ok(())
}

pub(super) async fn read_body(req: Request<Incoming>) -> Result<(Bytes, String), ApiError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > MAX_BODY_BYTES) {
        return Err(ApiError::too_large(MAX_BODY_BYTES));
    }
    let collected = Limited::new(req.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                ApiError::too_large(MAX_BODY_BYTES)
            } else {
                ApiError::bad_request(format!("cannot read the request body: {e}"))
            }
        })?;
    Ok((collected.to_bytes(), content_type))
}

fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Parses an object body sent as JSON, YAML or protobuf, once: a JSON body's duplicate keys are found
/// in the same pass (the store applies the `fieldValidation` level to them). A YAML body with
/// a duplicate key does not parse at all.
///
/// `target` is the apiVersion and kind the endpoint decodes into: a protobuf envelope without
/// its own takes them, and decode errors name the kind, as upstream's handlers do.
fn parse_object(
    bytes: &[u8],
    content_type: &str,
    target: (&str, &str),
) -> Result<Parsed, ApiError> {
    let media = media_type(content_type);
    let parsed = match media.as_str() {
        "" | "application/json" | "*/*" => decode::parse_json(bytes).map_err(|e| {
            if bytes.iter().all(u8::is_ascii_whitespace) {
                ApiError::bad_request("Object 'Kind' is missing in ''")
            } else {
                ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
            }
        })?,
        "application/yaml" | "application/x-yaml" | "text/yaml" => {
            serde_yaml::from_slice::<Value>(bytes)
                .map(Parsed::from)
                .map_err(|e| {
                    ApiError::bad_request(format!(
                        "couldn't get version/kind; yaml parse error: {e}"
                    ))
                })?
        }
        protobuf::MEDIA_TYPE => protobuf::decode_body(bytes, target)
            .map(Parsed::from)
            .map_err(|e| ApiError::bad_request(e.message(target.1, bytes)))?,
        _ => return Err(ApiError::unsupported_media_type(content_type)),
    };
    if !parsed.object.is_object() {
        return Err(ApiError::bad_request(format!(
            "couldn't get version/kind; json parse error: expected an object, got {}",
            short_type(&parsed.object)
        )));
    }
    Ok(parsed)
}

fn short_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub(super) fn selectors(
    query: &Query,
) -> Result<(Option<LabelSelector>, Option<FieldSelector>), ApiError> {
    let label = query
        .get("labelSelector")
        .filter(|s| !s.is_empty())
        .map(LabelSelector::parse)
        .transpose()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let field = query
        .get("fieldSelector")
        .filter(|s| !s.is_empty())
        .map(FieldSelector::parse)
        .transpose()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok((label, field))
}

fn list_kind(store: &Store) -> String {
    format!("{}List", store.info().kind)
}

async fn resource_request(
    server: &Arc<Server>,
    user: &User,
    req: Request<Incoming>,
    mut path: ResourcePath,
    query: Query,
    shutdown: &CancellationToken,
) -> Result<Response<Body>, ApiError> {
    // The legacy `POST /api/v1/namespaces/<ns>/bindings` binds the Pod named in the body.
    if path.group.is_empty() && path.resource == "bindings" && path.name.is_empty() {
        if req.method() != Method::POST {
            return Err(ApiError::method_not_supported(
                GroupResource {
                    group: "",
                    resource: "bindings",
                },
                &req.method().to_string().to_lowercase(),
            ));
        }
        authorize(
            &server.rbac,
            user,
            &attributes("create", &path, &query),
            None,
        )
        .await?;
        let store = server
            .registry
            .get("", "pods")
            .cloned()
            .ok_or_else(ApiError::path_not_found)?;
        let output = negotiate(
            req.headers()
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok()),
        )?;
        let (bytes, ct) = read_body(req).await?;
        let body = parse_object(&bytes, &ct, ("v1", "Binding"))?.object;
        let name = object::name(&body).to_string();
        return bind(&store, &path.namespace, &name, &body, &query, output).await;
    }
    // `/api/v1/namespaces/<ns>/status` names the namespace's own subresource.
    if path.group.is_empty()
        && path.name.is_empty()
        && !path.namespace.is_empty()
        && matches!(path.resource.as_str(), "status" | "finalize")
    {
        path = ResourcePath {
            resource: "namespaces".into(),
            name: std::mem::take(&mut path.namespace),
            subresource: std::mem::take(&mut path.resource),
            ..path
        };
    }
    let store = server
        .registry
        .get(&path.group, &path.resource)
        .filter(|s| s.info().version == path.version)
        .cloned()
        .ok_or_else(ApiError::path_not_found)?;
    let info = store.info();
    let api_version = info.api_version();
    let own = (api_version.as_str(), info.kind);
    if (!info.namespaced && !path.namespace.is_empty())
        || (info.namespaced && path.namespace.is_empty() && !path.name.is_empty())
    {
        return Err(ApiError::path_not_found());
    }
    if !path.subresource.is_empty() && !info.subresources.contains(&path.subresource.as_str()) {
        return Err(ApiError::path_not_found());
    }
    let output = negotiate(
        req.headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok()),
    )?;
    let method = req.method().clone();
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let collection = path.name.is_empty();
    let ns = path.namespace.clone();
    let gr = info.group_resource();
    let watching = method == Method::GET && collection && query.flag("watch")?;
    let Some((verb, served)) = verb_for(&method, &path, info.namespaced, watching) else {
        return Err(ApiError::method_not_supported(
            gr,
            &method.to_string().to_lowercase(),
        ));
    };
    let attrs = attributes(verb, &path, &query);
    // The Node authorizer's graph is read from the Pods.
    let pods = server.registry.get("", "pods").cloned();
    authorize(&server.rbac, user, &attrs, pods.as_deref()).await?;
    if !served {
        return Err(ApiError::new_method_not_allowed(&method));
    }
    if verb == "delete" {
        admit_node_delete(&store, user, &attrs).await?;
    }
    let node_uid = match authz::node_name(user) {
        // A mirror Pod must be owned by its kubelet's Node, which must exist.
        Some(node) if verb == "create" && info.plural == "pods" && path.subresource.is_empty() => {
            let nodes = server
                .registry
                .get("", "nodes")
                .ok_or_else(ApiError::path_not_found)?;
            let found = nodes.get("", node).await;
            Some(found.map(|n| object::uid(&n).to_string()))
        }
        _ => None,
    };
    let admit = node_admission(user, node_uid, verb, &path);
    let admit = if path.group == crate::registry::rbac::GROUP {
        let escalation =
            super::rbac::escalation::admit(server.rbac.clone(), user, &path.resource, &ns);
        both(admit, escalation)
    } else {
        admit
    };
    let sub = path.subresource.as_str();
    match (verb, sub) {
        ("watch", "") => watch(server, store, &ns, &query, output, shutdown).await,
        ("list", "") => {
            options::list::check_types(&query)?;
            list(&store, &ns, &query, output).await
        }
        ("get", "log") if info.plural == "pods" => {
            let pod = store.get(&ns, &path.name).await?;
            super::logs::serve(server, &pod, &query).await
        }
        ("get", "" | "status" | "ephemeralcontainers") => {
            let obj = store.get(&ns, &path.name).await?;
            match output {
                Output::Table => {
                    let include = Include::parse(query.get("includeObject"))?;
                    let meta = json!({"resourceVersion": object::resource_version(&obj)});
                    let t =
                        table::table(store.strategy.as_ref(), [obj.as_ref()], include, meta, true);
                    Ok(encode(StatusCode::OK, &t, Output::Json, &[]))
                }
                Output::Metadata { list: true, .. } => {
                    Err(table::metadata_form_refused(info.group, info.kind, true))
                }
                _ => Ok(encode(StatusCode::OK, &obj, output, &[])),
            }
        }
        ("create", "") if collection => {
            let (bytes, ct) = read_body(req).await?;
            let mut options = options::write_options(&query, WriteKind::Create)?;
            options.admit = admit.clone();
            options.field_manager = Some(options::manager_or_user_agent(&query, &user_agent));
            let body = parse_object(&bytes, &ct, own)?;
            let (created, warnings) = store.create(&ns, body, &options).await?;
            Ok(encode(
                StatusCode::CREATED,
                &created,
                output.plain(),
                &warnings,
            ))
        }
        ("create", "binding") if info.plural == "pods" => {
            let (bytes, ct) = read_body(req).await?;
            let body = parse_object(&bytes, &ct, ("v1", "Binding"))?.object;
            options::write_options(&query, WriteKind::Create)?;
            bind(&store, &ns, &path.name, &body, &query, output).await
        }
        ("create", "eviction") if info.plural == "pods" => {
            let (bytes, ct) = read_body(req).await?;
            let create = options::write_options(&query, WriteKind::Create)?;
            let body = parse_object(&bytes, &ct, ("policy/v1", "Eviction"))?;
            let given = crate::registry::eviction::check(&body.object, &path.name)?;
            let mut options = options::delete_options(given, &Query::parse(None))?;
            options.dry_run |= create.dry_run;
            let ok = crate::registry::eviction::create(&store, &ns, &path.name, &options).await?;
            Ok(encode(StatusCode::CREATED, &ok, output.plain(), &[]))
        }
        ("create", "token") if info.plural == "serviceaccounts" => {
            let (bytes, ct) = read_body(req).await?;
            options::write_options(&query, WriteKind::Create)?;
            let body = parse_object(&bytes, &ct, ("authentication.k8s.io/v1", "TokenRequest"))?;
            if let Some(node) = authz::node_name(user) {
                let pod_name = body.object["spec"]["boundObjectRef"]["name"]
                    .as_str()
                    .unwrap_or("");
                let pod = match server.registry.get("", "pods") {
                    Some(pods) if !pod_name.is_empty() => pods.get(&ns, pod_name).await.ok(),
                    _ => None,
                };
                authz::admit_node_token_request(node, &path.name, &body.object, pod.as_deref())?;
            }
            let account = store.get(&ns, &path.name).await?;
            let issued = server
                .tokens
                .request(&server.registry, &account, body.object)
                .await?;
            Ok(encode(StatusCode::CREATED, &issued, output.plain(), &[]))
        }
        ("get", "scale") => {
            let obj = store.get(&ns, &path.name).await?;
            let scale = crate::registry::replicasets::scale_of(&obj);
            Ok(encode(StatusCode::OK, &scale, output.plain(), &[]))
        }
        ("update" | "patch", "scale") => {
            let (bytes, ct) = read_body(req).await?;
            let write = if verb == "update" {
                WriteKind::Update
            } else {
                WriteKind::Patch
            };
            let options = options::write_options(&query, write)?;
            let patch = PatchType::from_content_type(&ct);
            let wanted = match verb {
                "update" => Some(parse_object(&bytes, &ct, ("autoscaling/v1", "Scale"))?.object),
                _ => None,
            };
            let schema = crate::meta::patch::generic_patch_schema();
            let updated = store
                .update_with(&ns, &path.name, "", options.dry_run, &mut |current| {
                    let scale = crate::registry::replicasets::scale_of(current);
                    let wanted = match (&wanted, patch) {
                        (Some(w), _) => w.clone(),
                        (None, Some(kind)) => {
                            crate::meta::patch::apply_patch(&scale, &bytes, kind, &schema)
                                .map_err(|e| ApiError::bad_request(e.to_string()))?
                        }
                        (None, None) => return Err(ApiError::unsupported_media_type(&ct)),
                    };
                    crate::registry::replicasets::apply_scale(current, &wanted)
                })
                .await?;
            let scale = crate::registry::replicasets::scale_of(&updated);
            Ok(encode(StatusCode::OK, &scale, output.plain(), &[]))
        }
        ("update", "" | "status" | "ephemeralcontainers") => {
            let (bytes, ct) = read_body(req).await?;
            let mut options = options::write_options(&query, WriteKind::Update)?;
            options.admit = admit.clone();
            options.field_manager = Some(options::manager_or_user_agent(&query, &user_agent));
            let body = parse_object(&bytes, &ct, own)?;
            let (updated, warnings) = store.update(&ns, &path.name, sub, body, &options).await?;
            Ok(encode(StatusCode::OK, &updated, output.plain(), &warnings))
        }
        ("patch", "" | "status" | "ephemeralcontainers") => {
            let (bytes, ct) = read_body(req).await?;
            let kind = PatchType::from_content_type(&ct).ok_or_else(|| {
                let mut e = ApiError::unsupported_media_type(&ct);
                e.message = format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml (got {ct:?})");
                e
            })?;
            let write = match kind {
                PatchType::Apply => WriteKind::Apply,
                _ => WriteKind::Patch,
            };
            let mut options = options::write_options(&query, write)?;
            options.admit = admit.clone();
            options.field_manager = Some(options::manager_or_user_agent(&query, &user_agent));
            if kind == PatchType::Apply {
                let (applied, warnings, created) =
                    store.apply(&ns, &path.name, sub, &bytes, &options).await?;
                let code = if created {
                    StatusCode::CREATED
                } else {
                    StatusCode::OK
                };
                return Ok(encode(code, &applied, output.plain(), &warnings));
            }
            let (patched, warnings) = store
                .patch(&ns, &path.name, sub, kind, &bytes, &options)
                .await?;
            Ok(encode(StatusCode::OK, &patched, output.plain(), &warnings))
        }
        ("delete", "") => {
            let (bytes, ct) = read_body(req).await?;
            let options = delete_options(&bytes, &ct, &api_version, &query)?;
            let (obj, gone) = if info.plural == "namespaces" {
                namespaces::delete(&store, &path.name, &options).await?
            } else {
                store.delete(&ns, &path.name, &options).await?
            };
            // Upstream answers 202 only to the legacy `orphanDependents=false` when the object
            // stays; every other deletion that leaves the object marked is a 200.
            let code = if !gone && options.orphan_dependents == Some(false) {
                StatusCode::ACCEPTED
            } else {
                StatusCode::OK
            };
            Ok(encode(code, &obj, output.plain(), &[]))
        }
        ("deletecollection", "") => {
            let (bytes, ct) = read_body(req).await?;
            let options = delete_options(&bytes, &ct, &api_version, &query)?;
            let (label, field) = selectors(&query)?;
            let done = store.delete_collection(&ns, label, field, &options).await?;
            // Upstream answers with the list as it was read before the deletions.
            let list = json!({"kind": list_kind(&store), "apiVersion": info.api_version(),
                "metadata": {"resourceVersion": done.resource_version.to_string()},
                "items": done.listed.iter().map(|o| o.as_ref()).collect::<Vec<_>>()});
            let output = match output {
                Output::Metadata { .. } => Output::Json,
                other => other.plain(),
            };
            Ok(encode(StatusCode::OK, &list, output, &[]))
        }
        _ => Err(ApiError::method_not_supported(gr, verb)),
    }
}

impl Output {
    /// Tables and lists of metadata are only for reads; writes answer with the object (or
    /// its metadata).
    fn plain(self) -> Output {
        match self {
            Output::Table | Output::Metadata { list: true, .. } => Output::Json,
            other => other,
        }
    }
}

/// The options of a delete: the body (JSON or YAML) when there is one, else the query.
fn delete_options(
    bytes: &[u8],
    content_type: &str,
    api_version: &str,
    query: &Query,
) -> Result<DeleteOptions, ApiError> {
    let body = if bytes.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        Some(parse_object(bytes, content_type, (api_version, "DeleteOptions"))?.object)
    };
    options::delete_options(body, query)
}

async fn list(
    store: &Arc<Store>,
    ns: &str,
    query: &Query,
    output: Output,
) -> Result<Response<Body>, ApiError> {
    let (label, field) = selectors(query)?;
    let rv = query.get("resourceVersion").unwrap_or("");
    let parsed = object::parse_resource_version(rv).map_err(ApiError::bad_request)?;
    let continue_token = query
        .get("continue")
        .filter(|c| !c.is_empty())
        .map(str::to_string);
    let exact = options::list::check_list(query)?;
    let options = ListOptions {
        label,
        field,
        any_version: rv == "0",
        limit: query.count("limit")?.map(|l| l as usize),
        continue_token,
        exact: parsed.filter(|_| exact),
        not_older_than: parsed.filter(|rv| !exact && *rv > 0),
    };
    let result = store.list(ns, &options).await?;
    let mut meta = json!({"resourceVersion": result.resource_version.to_string()});
    if let Some(token) = &result.continue_token {
        meta["continue"] = json!(token);
    }
    if let Some(remaining) = result.remaining {
        meta["remainingItemCount"] = json!(remaining);
    }
    match output {
        Output::Table => {
            let include = Include::parse(query.get("includeObject"))?;
            let t = table::table(
                store.strategy.as_ref(),
                result.objects(),
                include,
                meta,
                true,
            );
            return Ok(encode(StatusCode::OK, &t, Output::Json, &[]));
        }
        Output::Metadata {
            list: true,
            version,
        } => {
            let list = table::partial_list(result.objects(), meta, version.api_version());
            return Ok(respond(StatusCode::OK, "application/json", list));
        }
        Output::Metadata { list: false, .. } => {
            let info = store.info();
            return Err(table::metadata_form_refused(info.group, info.kind, false));
        }
        _ => {}
    }
    let head = ListHead {
        kind: list_kind(store),
        api_version: store.info().api_version(),
        metadata: meta,
    };
    if output == Output::Json {
        let items = result.items.iter().map(|s| s.object_json().clone());
        let mut resp = Response::new(JsonList::new(&head, items.collect()).boxed());
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/json"),
        );
        return Ok(resp);
    }
    let mut list = serde_json::to_value(&head).map_err(ApiError::internal)?;
    list["items"] = result.objects().cloned().collect();
    Ok(encode(StatusCode::OK, &list, output, &[]))
}

/// A list's fields before its items, in the wire's order.
#[derive(serde::Serialize)]
struct ListHead {
    kind: String,
    #[serde(rename = "apiVersion")]
    api_version: String,
    metadata: Value,
}

/// What a [`JsonList`] copies its items into before it hands them to the connection.
const LIST_CHUNK: usize = 64 * 1024;

/// A JSON list as a response body, made from its items' own encodings: each is encoded once
/// per change of the object and shared with the watch cache (encoding every item again was
/// most of a 10,000-Pod LIST). Items are copied into chunks of about [`LIST_CHUNK`] bytes as
/// the connection takes them, so the client reads the first while later ones are copied and
/// no copy of the whole list is held. Its exact size is known, so it keeps a `content-length`.
struct JsonList {
    /// The list's fields before its items, then `"items":[`; empty once sent.
    head: Bytes,
    items: std::vec::IntoIter<Bytes>,
    /// Whether an item was sent (the next one needs a comma).
    started: bool,
    ended: bool,
    left: u64,
}

impl JsonList {
    fn new(head: &ListHead, items: Vec<Bytes>) -> JsonList {
        let mut start = serde_json::to_vec(head).expect("a list's head always serializes");
        // The head is a JSON map: its closing brace gives way to the items.
        start.pop();
        start.extend_from_slice(b",\"items\":[");
        let commas = items.len().saturating_sub(1);
        let size = start.len() + items.iter().map(Bytes::len).sum::<usize>() + commas + 2;
        JsonList {
            head: Bytes::from(start),
            items: items.into_iter(),
            started: false,
            ended: false,
            left: size as u64,
        }
    }
}

impl hyper::body::Body for JsonList {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        if self.ended {
            return std::task::Poll::Ready(None);
        }
        let mut chunk = Vec::with_capacity(LIST_CHUNK + 1024);
        chunk.extend_from_slice(&std::mem::take(&mut self.head));
        while chunk.len() < LIST_CHUNK {
            let Some(item) = self.items.next() else {
                chunk.extend_from_slice(b"]}");
                self.ended = true;
                break;
            };
            if self.started {
                chunk.push(b',');
            }
            self.started = true;
            chunk.extend_from_slice(&item);
        }
        self.left -= chunk.len() as u64;
        std::task::Poll::Ready(Some(Ok(Frame::data(Bytes::from(chunk)))))
    }

    fn is_end_stream(&self) -> bool {
        self.ended
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(self.left)
    }
}

async fn watch(
    server: &Arc<Server>,
    store: Arc<Store>,
    ns: &str,
    query: &Query,
    output: Output,
    shutdown: &CancellationToken,
) -> Result<Response<Body>, ApiError> {
    let (label, field) = selectors(query)?;
    let rv = object::parse_resource_version(query.get("resourceVersion").unwrap_or(""))
        .map_err(ApiError::bad_request)?;
    let send_initial_events = query.flag("sendInitialEvents")?;
    options::list::check_watch(query)?;
    let include = match output {
        Output::Table => Some(Include::parse(query.get("includeObject"))?),
        _ => None,
    };
    let metadata = match output {
        Output::Metadata {
            list: false,
            version,
        } => Some(version),
        Output::Metadata { list: true, .. } => {
            let info = store.info();
            return Err(table::metadata_form_refused(info.group, info.kind, true));
        }
        _ => None,
    };
    let timeout = query
        .count("timeoutSeconds")?
        .map(|s| Duration::from_secs(s as u64));
    let bookmarks = query.flag("allowWatchBookmarks")?;
    let w = store
        .watch(
            ns,
            WatchOptions {
                label,
                field,
                resource_version: rv,
                send_initial_events,
            },
        )
        .await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    let params = watch::WatchParams {
        protobuf: output == Output::Protobuf,
        table: include,
        metadata,
        bookmarks,
        timeout,
        start_rv: rv.unwrap_or(0),
    };
    server
        .tracker
        .spawn(watch::pump(store, w, params, tx, shutdown.clone()));
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx)
        .map(|bytes| Ok::<_, std::io::Error>(Frame::data(bytes)));
    let mut resp = Response::new(BodyExt::boxed(StreamBody::new(stream)));
    let content_type = if output == Output::Protobuf {
        protobuf::WATCH_MEDIA_TYPE
    } else {
        "application/json"
    };
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    Ok(resp)
}

/// `pods/binding` (and the legacy `bindings` collection): the registry binds, this encodes.
async fn bind(
    store: &Store,
    ns: &str,
    name: &str,
    body: &Value,
    query: &Query,
    output: Output,
) -> Result<Response<Body>, ApiError> {
    let dry_run = options::write_options(query, WriteKind::Create)?.dry_run;
    let ok = binding::create(store, ns, name, body, dry_run).await?;
    Ok(encode(StatusCode::CREATED, &ok, output.plain(), &[]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_list_of_encoded_items_is_the_list_serialized_whole() {
        let head = || ListHead {
            kind: "PodList".into(),
            api_version: "v1".into(),
            metadata: json!({"resourceVersion": "7", "continue": "x\"y"}),
        };
        // Two small items, then enough to span several chunks.
        let mut items = vec![json!({"metadata": {"name": "a"}}), json!({"a": [1, "é"]})];
        items.extend(
            (0..300).map(|i| json!({"metadata": {"name": format!("p{i}")}, "x": "y".repeat(1000)})),
        );
        let encoded: Vec<Bytes> = items
            .iter()
            .map(|i| Bytes::from(serde_json::to_vec(i).expect("JSON")))
            .collect();
        for n in [0, 1, 2, items.len()] {
            let body = JsonList::new(&head(), encoded[..n].to_vec());
            let size = hyper::body::Body::size_hint(&body).exact();
            let written = body.collect().await.expect("a body").to_bytes();
            assert_eq!(size, Some(written.len() as u64));
            let mut whole = serde_json::to_value(head()).expect("JSON");
            whole["items"] = Value::Array(items[..n].to_vec());
            assert_eq!(
                String::from_utf8(written.to_vec()).expect("UTF-8"),
                serde_json::to_string(&whole).expect("JSON"),
                "{n} items"
            );
        }
    }

    async fn body_text(resp: Response<Body>) -> (u16, String) {
        let code = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.expect("a body").to_bytes();
        (code, String::from_utf8_lossy(&bytes).into_owned())
    }

    #[tokio::test]
    async fn health_answers_as_upstreams_health_endpoints() {
        let ready = health_checks("readyz", true, false);
        let names: Vec<&str> = ready.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["ping", "log", "etcd", "etcd-readiness", "shutdown"]);
        let live = health_checks("livez", true, true);
        assert!(live.iter().all(|(_, ok)| *ok), "stopping is not dead");

        let q = |raw: &str| Query::parse(Some(raw));
        assert_eq!(
            body_text(health_answer("readyz", &ready, &q(""))).await,
            (200, "ok".into())
        );
        assert_eq!(
            body_text(health_answer("readyz", &ready, &q("verbose&exclude=etcd&exclude=nope&exclude=etcd"))).await,
            (200, "[+]ping ok\n[+]log ok\n[+]etcd excluded: ok\n[+]etcd-readiness ok\n[+]shutdown ok\nwarn: some health checks cannot be excluded: no matches for \"nope\"\nreadyz check passed\n".into())
        );
        let stopping = health_checks("readyz", true, true);
        assert_eq!(
            body_text(health_answer("readyz", &stopping, &q(""))).await,
            (500, "[+]ping ok\n[+]log ok\n[+]etcd ok\n[+]etcd-readiness ok\n[-]shutdown failed: reason withheld\nreadyz check failed\n".into())
        );
        let excluded = body_text(health_answer("readyz", &stopping, &q("exclude=shutdown"))).await;
        assert_eq!(excluded, (200, "ok".into()));
    }
}
