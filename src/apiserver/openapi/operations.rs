//! The paths and operations of the OpenAPI documents: each kind's, named as kube-apiserver
//! names them (`readCoreV1NamespacedPod`, `patchCoordinationV1NamespacedLease`, …), described
//! once and rendered in the v3 or the v2 form.

use serde_json::{json, Map, Value};

use super::schemas::{self, Definitions, Gvk};
use super::{group_version_path, gvk};
use crate::registry::ResourceInfo;

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
/// The patch media types served, server-side apply's included, in upstream's order.
const PATCH_TYPES: &[&str] = &[
    "application/apply-patch+yaml",
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

/// A PATCH's parameters: a write's, and `force` for server-side apply.
fn patch_params() -> Vec<Value> {
    let mut params = write_params();
    params.push(param("force", "query", "boolean", "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people. Force flag must be unset for non-apply patch requests."));
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
pub struct PathItem {
    pub path: String,
    params: Vec<Value>,
    operations: Vec<Operation>,
}

impl PathItem {
    /// The definitions its operations take and answer.
    pub fn referenced(&self) -> impl Iterator<Item = &str> {
        self.operations.iter().flat_map(|op| {
            let body = op.body.iter().map(|(name, _)| name.as_str());
            body.chain(op.responses.iter().map(|(_, name)| name.as_str()))
        })
    }

    pub fn v3(&self) -> Value {
        let mut entry = Map::new();
        let params = self.params.iter().map(param_v3).collect();
        entry.insert("parameters".into(), Value::Array(params));
        for op in &self.operations {
            entry.insert(op.method.into(), op.v3());
        }
        Value::Object(entry)
    }

    pub fn v2(&self) -> Value {
        let mut entry = Map::new();
        let params = self.params.iter().map(param_v2).collect();
        entry.insert("parameters".into(), Value::Array(params));
        for op in &self.operations {
            entry.insert(op.method.into(), op.v2());
        }
        Value::Object(entry)
    }
}

/// The paths and operations of one kind, as kube-apiserver names them.
pub fn kind_paths(defs: &Definitions, info: &ResourceInfo) -> Vec<PathItem> {
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
                    params: patch_params(),
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
                    params: patch_params(),
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
