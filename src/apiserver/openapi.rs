//! OpenAPI v3 documents, as far as clients need them.
//!
//! kubectl reads `/openapi/v3/<group-version>` to learn whether the server validates fields
//! itself: it looks for the `fieldValidation` query parameter on the PATCH operation tagged
//! with the kind's `x-kubernetes-group-version-kind`. Where it finds it, kubectl sends
//! `fieldValidation=Strict` and leaves validation to the server. rkube declares every
//! operation of every kind with its parameters. Schemas are left out (deviation: `kubectl
//! explain` has nothing to show), so `kubectl apply` computes strategic merge patches from
//! its built-in types, which for the core kinds carry the same patch metadata.

use std::sync::Arc;

use serde_json::{json, Map, Value};

use crate::registry::{ResourceInfo, Store};

fn group_version_path(info: &ResourceInfo) -> String {
    if info.group.is_empty() {
        format!("api/{}", info.version)
    } else {
        format!("apis/{}/{}", info.group, info.version)
    }
}

/// A stable hash of a document, for the `?hash=` in its URL.
fn hash(doc: &Value) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    doc.to_string().hash(&mut hasher);
    format!("{:016X}", hasher.finish())
}

/// `/openapi/v3`: where each group version's document is.
pub fn root(stores: &[Arc<Store>]) -> Value {
    let mut paths = Map::new();
    let mut seen = Vec::new();
    for store in stores {
        let gv = group_version_path(store.info());
        if seen.contains(&gv) {
            continue;
        }
        seen.push(gv.clone());
        if let Some(doc) = document(stores, &gv) {
            paths.insert(
                gv.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{gv}?hash={}", hash(&doc))}),
            );
        }
    }
    json!({"paths": paths})
}

fn param(name: &str, description: &str) -> Value {
    json!({"name": name, "in": "query", "description": description, "schema": {"type": "string", "uniqueItems": true}})
}

fn write_params() -> Vec<Value> {
    vec![
        param("dryRun", "When present, indicates that modifications should not be persisted."),
        param("fieldManager", "fieldManager is a name associated with the actor or entity that is making these changes."),
        param("fieldValidation", "fieldValidation instructs the server on how to handle objects in the request containing unknown or duplicate fields. Valid values are: - Ignore - Warn - Strict"),
    ]
}

fn operation(info: &ResourceInfo, action: &str, id: &str, params: Vec<Value>) -> Value {
    json!({
        "operationId": id,
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {"group": info.group, "version": info.version, "kind": info.kind},
        "parameters": params,
        "responses": {"200": {"description": "OK"}, "401": {"description": "Unauthorized"}},
    })
}

/// `/openapi/v3/<gv>`: the operations of one group version.
pub fn document(stores: &[Arc<Store>], gv: &str) -> Option<Value> {
    let mut paths = Map::new();
    for store in stores {
        let info = store.info();
        if group_version_path(info) != gv {
            continue;
        }
        let base = format!("/{gv}");
        let (collection, item) = if info.namespaced {
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
        let kind = info.kind;
        paths.insert(
            collection,
            json!({
                "get": operation(info, "list", &format!("list{kind}"), vec![]),
                "post": operation(info, "post", &format!("create{kind}"), write_params()),
                "delete": operation(info, "deletecollection", &format!("deletecollection{kind}"), vec![]),
            }),
        );
        paths.insert(
            item.clone(),
            json!({
                "get": operation(info, "get", &format!("read{kind}"), vec![]),
                "put": operation(info, "put", &format!("replace{kind}"), write_params()),
                "patch": operation(info, "patch", &format!("patch{kind}"), write_params()),
                "delete": operation(info, "delete", &format!("delete{kind}"), vec![]),
            }),
        );
        if info.subresources.contains(&"status") {
            paths.insert(
                format!("{item}/status"),
                json!({
                    "get": operation(info, "get", &format!("read{kind}Status"), vec![]),
                    "put": operation(info, "put", &format!("replace{kind}Status"), write_params()),
                    "patch": operation(info, "patch", &format!("patch{kind}Status"), write_params()),
                }),
            );
        }
    }
    if paths.is_empty() {
        return None;
    }
    Some(json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": format!("v{}.{}.0", super::KUBE_VERSION.0, super::KUBE_VERSION.1)},
        "paths": paths,
        "components": {"schemas": {}},
    }))
}
