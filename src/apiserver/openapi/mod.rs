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
//! Deviations: `/openapi/v2` is served as JSON only; kubectl asks for it in gnostic protobuf
//! (`application/com.github.proto-openapi.spec.v2@v1.0+protobuf`) and is answered 406, as
//! upstream answers a form it cannot produce. The v3 documents are JSON only (upstream also
//! offers protobuf, which kubectl does not ask for). Document hashes are 64-bit, not SHA-512.

mod list_types;
mod schemas;

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use serde_json::{json, Map, Value};

use crate::registry::{ResourceInfo, Store, Strategy};
use schemas::{Definitions, Gvk, ServedKind};

/// A document as served: its bytes and its entity tag (unquoted, also its URL hash).
pub struct Served {
    pub body: Bytes,
    pub etag: String,
}

impl Served {
    fn new(doc: &Value) -> Served {
        let body = serde_json::to_vec(doc).expect("a JSON value always serializes");
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
}

/// The documents, built on first use: the kinds served are fixed for the life of the process.
pub fn documents(stores: &[Arc<Store>]) -> &'static Documents {
    static DOCUMENTS: OnceLock<Documents> = OnceLock::new();
    DOCUMENTS.get_or_init(|| {
        let strategies: Vec<&dyn Strategy> = stores.iter().map(|s| &*s.strategy).collect();
        Documents::build(&strategies)
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
        let v2 = Served::new(&v2_document(&defs, &infos));
        Documents { root, v3, v2 }
    }
}

fn info_object() -> Value {
    json!({
        "title": "Kubernetes",
        "version": format!("v{}.{}.0", super::KUBE_VERSION.0, super::KUBE_VERSION.1),
    })
}

/// One operation, described once and rendered in either document's form.
struct Operation {
    method: &'static str,
    id: String,
    description: String,
    action: &'static str,
    gvk: Gvk,
    params: Vec<Value>,
    /// The request body's definition and the media types it may come in.
    body: Option<(String, &'static [&'static str])>,
    /// Response codes and the definition each returns.
    responses: Vec<(&'static str, String)>,
}

const OBJECT_TYPES: &[&str] = &["application/json", "application/yaml"];
/// The patch media types served (server-side apply, `application/apply-patch+yaml`, is not).
const PATCH_TYPES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
];

impl Operation {
    fn gvk_value(&self) -> Value {
        let (group, version, kind) = self.gvk;
        json!({"group": group, "kind": kind, "version": version})
    }

    fn tag(&self) -> String {
        let (group, version, _) = self.gvk;
        let group = match group.split('.').next() {
            None | Some("") => "core",
            Some(first) => first,
        };
        format!("{group}_{version}")
    }

    fn v3(&self) -> Value {
        let content = |name: &str, types: &[&str]| -> Value {
            types
                .iter()
                .map(|t| (t.to_string(), json!({"schema": schemas::reference(name)})))
                .collect::<Map<_, _>>()
                .into()
        };
        let mut responses = Map::new();
        for (code, name) in &self.responses {
            responses.insert(
                code.to_string(),
                json!({"description": describe_code(code), "content": content(name, OBJECT_TYPES)}),
            );
        }
        responses.insert("401".into(), json!({"description": "Unauthorized"}));
        let mut op = json!({
            "description": self.description,
            "operationId": self.id,
            "responses": responses,
            "tags": [self.tag()],
            "x-kubernetes-action": self.action,
            "x-kubernetes-group-version-kind": self.gvk_value(),
        });
        if !self.params.is_empty() {
            op["parameters"] = Value::Array(self.params.iter().map(param_v3).collect());
        }
        if let Some((name, types)) = &self.body {
            op["requestBody"] = json!({"content": content(name, types), "required": true});
        }
        op
    }

    fn v2(&self) -> Value {
        let mut responses = Map::new();
        for (code, name) in &self.responses {
            responses.insert(
                code.to_string(),
                json!({"description": describe_code(code), "schema": schemas::reference(name)}),
            );
        }
        responses.insert("401".into(), json!({"description": "Unauthorized"}));
        let mut params: Vec<Value> = Vec::new();
        if let Some((name, _)) = &self.body {
            params.push(json!({"in": "body", "name": "body", "required": true, "schema": schemas::reference(name)}));
        }
        params.extend(self.params.iter().map(param_v2));
        let consumes: Vec<&str> = match &self.body {
            Some((_, types)) => types.to_vec(),
            None => vec!["*/*"],
        };
        let mut op = json!({
            "consumes": consumes,
            "description": self.description,
            "operationId": self.id,
            "produces": OBJECT_TYPES,
            "responses": responses,
            "schemes": ["https"],
            "tags": [self.tag()],
            "x-kubernetes-action": self.action,
            "x-kubernetes-group-version-kind": self.gvk_value(),
        });
        if !params.is_empty() {
            op["parameters"] = Value::Array(params);
        }
        op
    }
}

fn describe_code(code: &str) -> &'static str {
    match code {
        "201" => "Created",
        "202" => "Accepted",
        _ => "OK",
    }
}

/// A parameter, in a neutral form: `{name, in, description, type, required?}`.
fn param(name: &str, location: &str, ty: &str, description: &str) -> Value {
    let mut p = json!({"name": name, "in": location, "type": ty, "description": description});
    if location == "path" {
        p["required"] = json!(true);
    }
    p
}

fn param_v3(p: &Value) -> Value {
    let mut out = p.clone();
    if let Some(map) = out.as_object_mut() {
        let ty = map.remove("type").unwrap_or(json!("string"));
        map.insert("schema".into(), json!({"type": ty, "uniqueItems": true}));
    }
    out
}

fn param_v2(p: &Value) -> Value {
    let mut out = p.clone();
    out["uniqueItems"] = json!(true);
    out
}

fn path_params(namespaced: bool, named: bool) -> Vec<Value> {
    let mut params = Vec::new();
    if named {
        params.push(param("name", "path", "string", "name of the resource"));
    }
    if namespaced {
        params.push(param(
            "namespace",
            "path",
            "string",
            "object name and auth scope, such as for teams and projects",
        ));
    }
    params.push(param("pretty", "query", "string", "If 'true', then the output is pretty printed. Defaults to 'false' unless the user-agent indicates a browser or command-line HTTP tool (curl and wget)."));
    params
}

fn write_params() -> Vec<Value> {
    vec![
        param("dryRun", "query", "string", "When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun directive will result in an error response and no further processing of the request. Valid values are: - All: all dry run stages will be processed"),
        param("fieldManager", "query", "string", "fieldManager is a name associated with the actor or entity that is making these changes. The value must be less than or 128 characters long, and only contain printable characters, as defined by https://golang.org/pkg/unicode/#IsPrint."),
        param("fieldValidation", "query", "string", "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore: This will ignore any unknown fields that are silently dropped from the object, and will ignore all but the last duplicate field that the decoder encounters. This is the default behavior prior to v1.23. - Warn: This will send a warning via the standard warning response header for each unknown field that is dropped from the object, and for each duplicate field that is encountered. The request will still succeed if there are no other errors, and will only persist the last of any duplicate fields. This is the default in v1.23+ - Strict: This will fail the request with a BadRequest error if any unknown fields would be dropped from the object, or if any duplicate fields are present. The error returned from the server will contain all unknown and duplicate fields encountered."),
    ]
}

fn list_params() -> Vec<Value> {
    [
        ("allowWatchBookmarks", "boolean", "allowWatchBookmarks requests watch events with type \"BOOKMARK\"."),
        ("continue", "string", "The continue option should be set when retrieving more results from the server."),
        ("fieldSelector", "string", "A selector to restrict the list of returned objects by their fields. Defaults to everything."),
        ("labelSelector", "string", "A selector to restrict the list of returned objects by their labels. Defaults to everything."),
        ("limit", "integer", "limit is a maximum number of responses to return for a list call."),
        ("resourceVersion", "string", "resourceVersion sets a constraint on what resource versions a request may be served from."),
        ("resourceVersionMatch", "string", "resourceVersionMatch determines how resourceVersion is applied to list calls."),
        ("sendInitialEvents", "boolean", "`sendInitialEvents=true` may be set together with `watch=true`."),
        ("timeoutSeconds", "integer", "Timeout for the list/watch call."),
        ("watch", "boolean", "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications."),
    ]
    .iter()
    .map(|(name, ty, description)| param(name, "query", ty, description))
    .collect()
}

fn delete_params() -> Vec<Value> {
    vec![
        param(
            "dryRun",
            "query",
            "string",
            "When present, indicates that modifications should not be persisted.",
        ),
        param(
            "gracePeriodSeconds",
            "query",
            "integer",
            "The duration in seconds before the object should be deleted.",
        ),
        param(
            "orphanDependents",
            "query",
            "boolean",
            "Deprecated: please use the PropagationPolicy, this field will be deprecated in 1.7.",
        ),
        param(
            "propagationPolicy",
            "query",
            "string",
            "Whether and how garbage collection will be performed.",
        ),
    ]
}

/// One path and what is declared at it: its operations and its shared parameters.
struct PathItem {
    path: String,
    params: Vec<Value>,
    operations: Vec<Operation>,
}

/// The paths and operations of one kind, as kube-apiserver names them.
fn kind_paths(defs: &Definitions, info: &ResourceInfo) -> Vec<PathItem> {
    let gvk = gvk(info);
    let Some(item) = defs.names.get(&gvk).cloned() else {
        return Vec::new();
    };
    let list = defs
        .lists
        .get(&gvk)
        .cloned()
        .unwrap_or_else(|| item.clone());
    let status = schemas::STATUS.to_string();
    let (group, version, kind) = gvk;
    let prefix = {
        let group = match group.split('.').next() {
            None | Some("") => "Core".to_string(),
            Some(first) => {
                let mut chars = first.chars();
                chars
                    .next()
                    .map(|c| c.to_uppercase().chain(chars).collect())
                    .unwrap_or_default()
            }
        };
        let mut v = version.chars();
        let version: String = v
            .next()
            .map(|c| c.to_uppercase().chain(v).collect())
            .unwrap_or_default();
        format!("{group}{version}")
    };
    let scope = if info.namespaced { "Namespaced" } else { "" };
    let base = format!("/{}", group_version_path(group, version));
    let (collection, named) = if info.namespaced {
        (
            format!("{base}/namespaces/{{namespace}}/{}", info.plural),
            format!("{base}/namespaces/{{namespace}}/{}/{{name}}", info.plural),
        )
    } else {
        (
            format!("{base}/{}", info.plural),
            format!("{base}/{}/{{name}}", info.plural),
        )
    };
    let op = |method, verb: &str, suffix: &str, action, description: String| Operation {
        method,
        id: format!("{verb}{prefix}{scope}{kind}{suffix}"),
        description,
        action,
        gvk,
        params: Vec::new(),
        body: None,
        responses: Vec::new(),
    };
    // Deleting a Pod answers the Pod (its deletion is graceful); other kinds answer a Status.
    let deleted = if kind == "Pod" {
        item.clone()
    } else {
        status.clone()
    };
    let mut paths = vec![
        PathItem {
            path: collection,
            params: path_params(info.namespaced, false),
            operations: vec![
                Operation {
                    params: list_params(),
                    responses: vec![("200", list.clone())],
                    ..op(
                        "get",
                        "list",
                        "",
                        "list",
                        format!("list or watch objects of kind {kind}"),
                    )
                },
                Operation {
                    params: write_params(),
                    body: Some((item.clone(), OBJECT_TYPES)),
                    responses: vec![
                        ("200", item.clone()),
                        ("201", item.clone()),
                        ("202", item.clone()),
                    ],
                    ..op("post", "create", "", "post", format!("create a {kind}"))
                },
                Operation {
                    params: [delete_params(), list_params()].concat(),
                    body: Some((schemas::DELETE_OPTIONS.to_string(), OBJECT_TYPES)),
                    responses: vec![("200", status.clone())],
                    ..Operation {
                        id: format!("delete{prefix}Collection{scope}{kind}"),
                        ..op(
                            "delete",
                            "delete",
                            "",
                            "deletecollection",
                            format!("delete collection of {kind}"),
                        )
                    }
                },
            ],
        },
        PathItem {
            path: named.clone(),
            params: path_params(info.namespaced, true),
            operations: vec![
                Operation {
                    responses: vec![("200", item.clone())],
                    ..op(
                        "get",
                        "read",
                        "",
                        "get",
                        format!("read the specified {kind}"),
                    )
                },
                Operation {
                    params: write_params(),
                    body: Some((item.clone(), OBJECT_TYPES)),
                    responses: vec![("200", item.clone()), ("201", item.clone())],
                    ..op(
                        "put",
                        "replace",
                        "",
                        "put",
                        format!("replace the specified {kind}"),
                    )
                },
                Operation {
                    params: write_params(),
                    body: Some((schemas::PATCH.to_string(), PATCH_TYPES)),
                    responses: vec![("200", item.clone()), ("201", item.clone())],
                    ..op(
                        "patch",
                        "patch",
                        "",
                        "patch",
                        format!("partially update the specified {kind}"),
                    )
                },
                Operation {
                    params: delete_params(),
                    body: Some((schemas::DELETE_OPTIONS.to_string(), OBJECT_TYPES)),
                    responses: vec![("200", deleted.clone()), ("202", deleted)],
                    ..op("delete", "delete", "", "delete", format!("delete a {kind}"))
                },
            ],
        },
    ];
    if info.namespaced {
        paths.push(PathItem {
            path: format!("{base}/{}", info.plural),
            params: path_params(false, false),
            operations: vec![Operation {
                params: list_params(),
                responses: vec![("200", list)],
                ..op(
                    "get",
                    "list",
                    "ForAllNamespaces",
                    "list",
                    format!("list or watch objects of kind {kind}"),
                )
            }],
        });
    }
    for sub in info.subresources {
        let Some(sub_gvk) = schemas::subresource_kind(gvk, sub) else {
            continue;
        };
        let Some(body) = defs.names.get(&sub_gvk).cloned() else {
            continue;
        };
        let title = {
            let mut c = sub.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect::<String>())
                .unwrap_or_default()
        };
        let sub_op = |method, verb: &str, action, description: String| Operation {
            gvk: sub_gvk,
            ..op(method, verb, &title, action, description)
        };
        let operations = match *sub {
            "status" => vec![
                Operation {
                    responses: vec![("200", body.clone())],
                    ..sub_op(
                        "get",
                        "read",
                        "get",
                        format!("read status of the specified {kind}"),
                    )
                },
                Operation {
                    params: write_params(),
                    body: Some((body.clone(), OBJECT_TYPES)),
                    responses: vec![("200", body.clone()), ("201", body.clone())],
                    ..sub_op(
                        "put",
                        "replace",
                        "put",
                        format!("replace status of the specified {kind}"),
                    )
                },
                Operation {
                    params: write_params(),
                    body: Some((schemas::PATCH.to_string(), PATCH_TYPES)),
                    responses: vec![("200", body.clone()), ("201", body)],
                    ..sub_op(
                        "patch",
                        "patch",
                        "patch",
                        format!("partially update status of the specified {kind}"),
                    )
                },
            ],
            "finalize" => vec![Operation {
                params: write_params(),
                body: Some((body.clone(), OBJECT_TYPES)),
                responses: vec![("200", body.clone()), ("201", body)],
                ..sub_op(
                    "put",
                    "replace",
                    "put",
                    format!("replace finalize of the specified {kind}"),
                )
            }],
            _ => vec![Operation {
                params: write_params(),
                body: Some((body.clone(), OBJECT_TYPES)),
                responses: vec![("200", body.clone()), ("201", body.clone()), ("202", body)],
                ..sub_op(
                    "post",
                    "create",
                    "post",
                    format!("create {sub} of a {kind}"),
                )
            }],
        };
        paths.push(PathItem {
            path: format!("{named}/{sub}"),
            params: path_params(info.namespaced, true),
            operations,
        });
    }
    paths
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
            let mut entry = Map::new();
            entry.insert(
                "parameters".into(),
                Value::Array(item.params.iter().map(param_v3).collect()),
            );
            for op in &item.operations {
                if let Some((name, _)) = &op.body {
                    roots.push(name.clone());
                }
                roots.extend(op.responses.iter().map(|(_, name)| name.clone()));
                entry.insert(op.method.into(), op.v3());
            }
            paths.insert(item.path, Value::Object(entry));
        }
    }
    let components = defs.closure(roots.iter().map(String::as_str));
    schemas::v3(json!({
        "openapi": "3.0.0",
        "info": info_object(),
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"BearerToken": {"type": "apiKey", "description": "Bearer Token authentication", "name": "authorization", "in": "header"}},
        },
        "security": [{"BearerToken": []}],
    }))
}

/// `/openapi/v2`: every operation and definition in one swagger 2.0 document.
fn v2_document(defs: &Definitions, infos: &[&ResourceInfo]) -> Value {
    let mut paths = Map::new();
    for info in infos {
        for item in kind_paths(defs, info) {
            let mut entry = Map::new();
            entry.insert(
                "parameters".into(),
                Value::Array(item.params.iter().map(param_v2).collect()),
            );
            for op in &item.operations {
                entry.insert(op.method.into(), op.v2());
            }
            paths.insert(item.path, Value::Object(entry));
        }
    }
    schemas::v2(json!({
        "swagger": "2.0",
        "info": info_object(),
        "paths": paths,
        "definitions": defs.schemas,
        "securityDefinitions": {"BearerToken": {"type": "apiKey", "description": "Bearer Token authentication", "name": "authorization", "in": "header"}},
        "security": [{"BearerToken": []}],
    }))
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
    let etag = format!("\"{}\"", doc.etag);
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut resp = if fresh {
        respond(StatusCode::NOT_MODIFIED, None, Bytes::new())
    } else {
        respond(StatusCode::OK, Some("application/json"), doc.body.clone())
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
    serve(&documents(stores).v2, headers, false)
}

#[cfg(test)]
mod tests;
