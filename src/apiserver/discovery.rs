//! Discovery documents (`/api`, `/api/v1`, `/apis`, `/apis/<group>/<version>`) and `/version`.
//!
//! Served in the legacy (unaggregated) form: client-go tells the two apart by Content-Type and
//! falls back to the legacy requests by itself, so kubectl resolves `po`, `pod` and `pods`
//! from `shortNames`, `singularName` and the resource names here.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::KUBE_VERSION;
use crate::registry::{ResourceInfo, Store};

const VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// The verbs of a subresource, and the kind it answers with.
fn subresource_entry(info: &ResourceInfo, sub: &str) -> Option<Value> {
    let (kind, verbs): (&str, &[&str]) = match sub {
        "status" => (info.kind, &["get", "patch", "update"]),
        "binding" => ("Binding", &["create"]),
        "eviction" => ("Eviction", &["create"]),
        "log" => ("Pod", &["get"]),
        "exec" | "attach" | "portforward" => ("PodExecOptions", &["create", "get"]),
        "finalize" => (info.kind, &["update"]),
        _ => return None,
    };
    let mut entry = json!({
        "name": format!("{}/{sub}", info.plural),
        "singularName": "",
        "namespaced": info.namespaced,
        "kind": kind,
        "verbs": verbs,
    });
    if sub == "binding" || sub == "eviction" {
        entry["group"] = json!(if sub == "eviction" { "policy" } else { "" });
        entry["version"] = json!("v1");
    }
    Some(entry)
}

fn resource_entry(info: &ResourceInfo) -> Value {
    let mut entry = json!({
        "name": info.plural,
        "singularName": info.singular,
        "namespaced": info.namespaced,
        "kind": info.kind,
        "verbs": VERBS,
    });
    if !info.short_names.is_empty() {
        entry["shortNames"] = json!(info.short_names);
    }
    if !info.categories.is_empty() {
        entry["categories"] = json!(info.categories);
    }
    entry
}

/// `/api/v1` or `/apis/<group>/<version>`: the resources of one group version.
pub fn resource_list(
    stores: &[std::sync::Arc<Store>],
    group: &str,
    version: &str,
) -> Option<Value> {
    let mut resources = Vec::new();
    for store in stores {
        let info = store.info();
        if info.group != group || info.version != version {
            continue;
        }
        resources.push(resource_entry(info));
        resources.extend(
            info.subresources
                .iter()
                .filter_map(|sub| subresource_entry(info, sub)),
        );
    }
    if resources.is_empty() {
        return None;
    }
    if group.is_empty() {
        // The legacy `POST /api/v1/namespaces/<ns>/bindings`, still used by some schedulers.
        resources.push(
            json!({"name": "bindings", "singularName": "binding", "namespaced": true,
            "kind": "Binding", "verbs": ["create"]}),
        );
        resources.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }))
}

/// `/api`: the core group's versions.
pub fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

fn groups(stores: &[std::sync::Arc<Store>]) -> BTreeMap<&'static str, Vec<&'static str>> {
    let mut groups: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for store in stores {
        let info = store.info();
        if info.group.is_empty() {
            continue;
        }
        let versions = groups.entry(info.group).or_default();
        if !versions.contains(&info.version) {
            versions.push(info.version);
        }
    }
    groups
}

fn group_entry(name: &str, versions: &[&str]) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
        .collect();
    json!({
        "name": name,
        "versions": versions,
        "preferredVersion": versions.first().cloned().unwrap_or(Value::Null),
    })
}

/// `/apis`: every named group.
pub fn group_list(stores: &[std::sync::Arc<Store>]) -> Value {
    let groups: Vec<Value> = groups(stores)
        .iter()
        .map(|(name, versions)| group_entry(name, versions))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/<group>`: one group.
pub fn group(stores: &[std::sync::Arc<Store>], name: &str) -> Option<Value> {
    let groups = groups(stores);
    let versions = groups.get(name)?;
    let mut entry = group_entry(name, versions);
    entry["kind"] = json!("APIGroup");
    entry["apiVersion"] = json!("v1");
    Some(entry)
}

/// `/version`, in the shape kubectl prints as "Server Version".
pub fn version() -> Value {
    let (major, minor) = KUBE_VERSION;
    json!({
        "major": major,
        "minor": minor,
        "gitVersion": format!("v{major}.{minor}.0-rkube.{}", env!("CARGO_PKG_VERSION")),
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
        "goVersion": "",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, crate::meta::object::go_arch()),
    })
}
