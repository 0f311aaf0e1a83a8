//! OpenAPI documents: `/openapi/v3` (the index), `/openapi/v3/<group-version>` and
//! `/openapi/v2`, with real schemas for every kind rkube serves.
//!
//! kubectl reads them for three things: `kubectl explain` walks the v3 schemas; the
//! `fieldValidation` query parameter on a kind's PATCH operation (tagged with its
//! `x-kubernetes-group-version-kind`) tells it that the server validates fields itself, so it
//! sends `fieldValidation=Strict`; and for kinds the server does not declare, it validates
//! client-side against `/openapi/v2`. Schemas come from [`schemas`]; each document is built
//! once, on first use, and served with an `ETag` (and, under its hashed URL, cached for good),
//! as kube-openapi's handlers do.
//!
//! `/openapi/v2` is served as JSON, or in the gnostic protobuf form kubectl asks for
//! (`application/com.github.proto-openapi.spec.v2@v1.0+protobuf`, see [`gnostic`]).
//! Deviations: the v3 documents are JSON only (upstream also offers protobuf, which kubectl
//! does not ask for). Document hashes are 64-bit, not SHA-512.

mod gnostic;
mod list_types;
mod operations;
mod schemas;

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use serde_json::{json, Map, Value};

use crate::registry::{ResourceInfo, Store, Strategy};
use operations::kind_paths;
use schemas::{Definitions, Gvk, ServedKind};

/// A document as served: its bytes and its entity tag (unquoted, also its URL hash).
pub struct Served {
    pub body: Bytes,
    pub etag: String,
}

impl Served {
    fn new(doc: &Value) -> Served {
        Served::of_bytes(serde_json::to_vec(doc).expect("a JSON value always serializes"))
    }

    fn of_bytes(body: Vec<u8>) -> Served {
        let etag = {
            use std::hash::{Hash as _, Hasher as _};
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            body.hash(&mut hasher);
            format!("{:016X}", hasher.finish())
        };
        Served {
            body: Bytes::from(body),
            etag,
        }
    }
}

/// Every OpenAPI document of this server.
pub struct Documents {
    /// `/openapi/v3`: where each group version's document is.
    pub root: Served,
    /// `/openapi/v3/<gv>`, keyed by `api/v1`, `apis/coordination.k8s.io/v1`, …
    pub v3: BTreeMap<String, Served>,
    /// `/openapi/v2`.
    pub v2: Served,
    /// `/openapi/v2` in gnostic protobuf.
    pub v2_protobuf: Served,
}

/// The documents, built on first use: the kinds served are fixed for the life of the process.
pub fn documents(stores: &[Arc<Store>]) -> &'static Documents {
    static DOCUMENTS: OnceLock<Documents> = OnceLock::new();
    DOCUMENTS.get_or_init(|| {
        let started = std::time::Instant::now();
        let strategies: Vec<&dyn Strategy> = stores.iter().map(|s| &*s.strategy).collect();
        let docs = Documents::build(&strategies);
        let sizes: Vec<String> = docs
            .v3
            .iter()
            .map(|(gv, doc)| format!("{gv}={}", doc.body.len()))
            .collect();
        tracing::info!(
            elapsed = ?started.elapsed(),
            v3_bytes = %sizes.join(" "),
            v2_bytes = docs.v2.body.len(),
            "built the OpenAPI documents"
        );
        docs
    })
}

fn gvk(info: &ResourceInfo) -> Gvk {
    (info.group, info.version, info.kind)
}

fn group_version_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

impl Documents {
    /// Builds every document for the kinds of `strategies`, in discovery order.
    pub fn build(strategies: &[&dyn Strategy]) -> Documents {
        let kinds: Vec<ServedKind> = strategies
            .iter()
            .map(|strategy| {
                let info = strategy.info();
                ServedKind {
                    gvk: gvk(info),
                    plural: info.plural,
                    subresources: info.subresources,
                    patch: strategy.patch_schema(),
                }
            })
            .collect();
        let infos: Vec<&ResourceInfo> = strategies.iter().map(|s| s.info()).collect();
        let (defs, unresolved) = Definitions::build(&kinds);
        for u in unresolved {
            tracing::warn!(field = %u.0, "a patch tag or list type names no field of the schemas");
        }
        let mut group_versions: Vec<(&str, &str)> = Vec::new();
        for info in &infos {
            if !group_versions.contains(&(info.group, info.version)) {
                group_versions.push((info.group, info.version));
            }
        }
        let mut v3 = BTreeMap::new();
        let mut index = Map::new();
        for (group, version) in group_versions {
            let gv = group_version_path(group, version);
            let members: Vec<&ResourceInfo> = infos
                .iter()
                .copied()
                .filter(|i| i.group == group && i.version == version)
                .collect();
            let served = Served::new(&v3_document(&defs, &members));
            index.insert(
                gv.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{gv}?hash={}", served.etag)}),
            );
            v3.insert(gv, served);
        }
        let root = Served::new(&json!({ "paths": index }));
        let v2_doc = v2_document(&defs, &infos);
        let v2 = Served::new(&v2_doc);
        let v2_protobuf = Served::of_bytes(gnostic::encode(&v2_doc));
        Documents {
            root,
            v3,
            v2,
            v2_protobuf,
        }
    }
}

fn info_object() -> Value {
    json!({
        "title": "Kubernetes",
        "version": format!("v{}.{}.0", super::KUBE_VERSION.0, super::KUBE_VERSION.1),
    })
}

/// `/openapi/v3/<gv>`: the operations of one group version and every schema they reference.
fn v3_document(defs: &Definitions, infos: &[&ResourceInfo]) -> Value {
    let mut paths = Map::new();
    let mut roots = vec![
        schemas::STATUS.to_string(),
        schemas::DELETE_OPTIONS.to_string(),
        schemas::PATCH.to_string(),
        schemas::WATCH_EVENT.to_string(),
    ];
    for info in infos {
        for item in kind_paths(defs, info) {
            roots.extend(item.referenced().map(str::to_string));
            paths.insert(item.path.clone(), item.v3());
        }
    }
    let components = defs.closure(roots.iter().map(String::as_str));
    schemas::sorted(schemas::v3(json!({
        "openapi": "3.0.0",
        "info": info_object(),
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"BearerToken": {"type": "apiKey", "description": "Bearer Token authentication", "name": "authorization", "in": "header"}},
        },
        "security": [{"BearerToken": []}],
    })))
}

/// `/openapi/v2`: every operation and definition in one swagger 2.0 document.
fn v2_document(defs: &Definitions, infos: &[&ResourceInfo]) -> Value {
    let mut paths = Map::new();
    for info in infos {
        for item in kind_paths(defs, info) {
            paths.insert(item.path.clone(), item.v2());
        }
    }
    schemas::sorted(schemas::v2(json!({
        "swagger": "2.0",
        "info": info_object(),
        "paths": paths,
        "definitions": defs.schemas,
        "securityDefinitions": {"BearerToken": {"type": "apiKey", "description": "Bearer Token authentication", "name": "authorization", "in": "header"}},
        "security": [{"BearerToken": []}],
    })))
}

/// Whether `accept` lets the answer be JSON: no header, or an entry for JSON or a wildcard.
fn accepts_json(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    accept.trim().is_empty()
        || super::request::accept_entries(accept).any(|(media, _)| {
            matches!(media.as_str(), "application/json" | "application/*" | "*/*")
        })
}

fn respond(code: StatusCode, content_type: Option<&str>, body: Bytes) -> Response<Bytes> {
    let mut resp = Response::new(body);
    *resp.status_mut() = code;
    if let Some(value) = content_type.and_then(|c| HeaderValue::from_str(c).ok()) {
        resp.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    resp
}

/// Answers with `doc` as JSON: 304 when `If-None-Match` names its ETag, 406 when the client
/// does not take JSON. `cache_for_good` adds the headers of a hashed URL.
fn serve(doc: &Served, headers: &HeaderMap, cache_for_good: bool) -> Response<Bytes> {
    if !accepts_json(headers) {
        return respond(StatusCode::NOT_ACCEPTABLE, None, Bytes::new());
    }
    serve_as(doc, "application/json", headers, cache_for_good)
}

/// Answers with `doc` as `content_type`: 304 when `If-None-Match` names its ETag.
fn serve_as(
    doc: &Served,
    content_type: &str,
    headers: &HeaderMap,
    cache_for_good: bool,
) -> Response<Bytes> {
    let etag = format!("\"{}\"", doc.etag);
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut resp = if fresh {
        respond(StatusCode::NOT_MODIFIED, None, Bytes::new())
    } else {
        respond(StatusCode::OK, Some(content_type), doc.body.clone())
    };
    let out = resp.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&etag) {
        out.insert(header::ETAG, value);
    }
    if cache_for_good {
        // As kube-openapi: the content under a hashed URL never changes.
        out.insert(header::VARY, HeaderValue::from_static("Accept"));
        out.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, immutable"),
        );
        let in_a_year = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(365 * 24);
        let expires = in_a_year.strftime("%a, %d %b %Y %H:%M:%S GMT").to_string();
        if let Ok(value) = HeaderValue::from_str(&expires) {
            out.insert(header::EXPIRES, value);
        }
    }
    resp
}

/// `GET /openapi/v3`.
pub fn serve_root(stores: &[Arc<Store>], headers: &HeaderMap) -> Response<Bytes> {
    serve(&documents(stores).root, headers, false)
}

/// `GET /openapi/v3/<gv>[?hash=…]`: a hash other than the current one is redirected to the
/// current URL (301), as upstream does; `None` for a group version not served.
pub fn serve_group_version(
    stores: &[Arc<Store>],
    gv: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Option<Response<Bytes>> {
    serve_v3(documents(stores), gv, query, headers)
}

fn serve_v3(
    docs: &Documents,
    gv: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Option<Response<Bytes>> {
    let doc = docs.v3.get(gv)?;
    let hash = form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(k, _)| k == "hash")
        .map(|(_, v)| v.into_owned())
        .filter(|h| !h.is_empty());
    Some(match hash {
        Some(h) if h != doc.etag => {
            let location = format!("/openapi/v3/{gv}?hash={}", doc.etag);
            let mut resp = respond(
                StatusCode::MOVED_PERMANENTLY,
                Some("text/html; charset=utf-8"),
                Bytes::from(format!("<a href=\"{location}\">Moved Permanently</a>.\n\n")),
            );
            if let Ok(value) = HeaderValue::from_str(&location) {
                resp.headers_mut().insert(header::LOCATION, value);
            }
            resp
        }
        Some(_) => serve(doc, headers, true),
        None => serve(doc, headers, false),
    })
}

/// `GET /openapi/v2`.
pub fn serve_v2(stores: &[Arc<Store>], headers: &HeaderMap) -> Response<Bytes> {
    let docs = documents(stores);
    if wants_gnostic(headers) {
        // As kube-openapi answers it: Go's media-type parser refuses the `@` of the name.
        return serve_as(
            &docs.v2_protobuf,
            "application/octet-stream",
            headers,
            false,
        );
    }
    serve(&docs.v2, headers, false)
}

/// The media type of `/openapi/v2` in gnostic protobuf.
const GNOSTIC: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";

/// Whether the client names the gnostic protobuf form before any JSON form.
fn wants_gnostic(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    super::request::accept_entries(accept)
        .find_map(|(media, _)| match media.as_str() {
            GNOSTIC => Some(true),
            "application/json" | "application/*" | "*/*" => Some(false),
            _ => None,
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests;
