//! Discovery documents (`/api`, `/api/v1`, `/apis`, `/apis/<group>/<version>`) and `/version`.
//!
//! `/api` and `/apis` come in two forms: the aggregated `APIGroupDiscoveryList` (every resource
//! of every version in one answer, what kubectl v1.32 and kube-rs ask for first) and the legacy
//! documents, which need one more request per group version. client-go tells the two apart by
//! Content-Type. Either way kubectl resolves `po`, `pod` and `pods` from the short names,
//! singular names and resource names here.

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

/// What a subresource answers with and allows: the group, version and kind of its response
/// and its verbs, as upstream's discovery lists them.
struct Subresource {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    verbs: &'static [&'static str],
}

fn subresource(info: &ResourceInfo, sub: &str) -> Option<Subresource> {
    let own = |verbs| Subresource {
        group: info.group,
        version: info.version,
        kind: info.kind,
        verbs,
    };
    let core = |kind, verbs| Subresource {
        group: "",
        version: "v1",
        kind,
        verbs,
    };
    Some(match sub {
        "status" | "ephemeralcontainers" => own(&["get", "patch", "update"]),
        "finalize" => own(&["update"]),
        "log" => own(&["get"]),
        "binding" => core("Binding", &["create"]),
        "eviction" => Subresource {
            group: "policy",
            version: "v1",
            kind: "Eviction",
            verbs: &["create"],
        },
        "token" => Subresource {
            group: "authentication.k8s.io",
            version: "v1",
            kind: "TokenRequest",
            verbs: &["create"],
        },
        "exec" => core("PodExecOptions", &["create", "get"]),
        "attach" => core("PodAttachOptions", &["create", "get"]),
        "portforward" => core("PodPortForwardOptions", &["create", "get"]),
        "proxy" if info.kind == "Pod" => core(
            "PodProxyOptions",
            &["create", "delete", "get", "patch", "update"],
        ),
        "proxy" => core(
            "NodeProxyOptions",
            &["create", "delete", "get", "patch", "update"],
        ),
        _ => return None,
    })
}

/// A subresource in an `APIResourceList`.
fn subresource_entry(info: &ResourceInfo, sub: &str) -> Option<Value> {
    let s = subresource(info, sub)?;
    let mut entry = json!({
        "name": format!("{}/{sub}", info.plural),
        "singularName": "",
        "namespaced": info.namespaced,
        "kind": s.kind,
        "verbs": s.verbs,
    });
    if (s.group, s.version) != (info.group, info.version) {
        entry["group"] = json!(s.group);
        entry["version"] = json!(s.version);
    }
    Some(entry)
}

/// Every resource served: the registry's kinds and the built-in resource metrics.
fn served(stores: &[std::sync::Arc<Store>]) -> impl Iterator<Item = &'static ResourceInfo> + '_ {
    stores
        .iter()
        .map(|s| s.info())
        .chain(super::resource_metrics::infos())
        .chain(super::rbac::reviews::infos())
}

/// The verbs of a resource: all of them, but only `get` and `list` for the metrics.
fn verbs(info: &ResourceInfo) -> &'static [&'static str] {
    if info.group == super::resource_metrics::GROUP {
        super::resource_metrics::VERBS
    } else if super::rbac::reviews::find(info.group, info.version, info.plural).is_some() {
        super::rbac::reviews::VERBS
    } else {
        &VERBS
    }
}

fn resource_entry(info: &ResourceInfo) -> Value {
    let mut entry = json!({
        "name": info.plural,
        "singularName": info.singular,
        "namespaced": info.namespaced,
        "kind": info.kind,
        "verbs": verbs(info),
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
    for info in served(stores) {
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
    for info in served(stores) {
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

/// The form a discovery answer takes: the legacy documents, or upstream's aggregated
/// `APIGroupDiscoveryList` (GA in v1.30) at `apidiscovery.k8s.io/<version>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    Legacy,
    Aggregated(&'static str),
}

impl Form {
    /// The first form of the client's `Accept` list that rkube serves, as kube-apiserver picks
    /// it; the legacy one when the client names neither (rkube answers discovery in JSON
    /// whatever else is asked for).
    pub fn negotiate(accept: Option<&str>) -> Form {
        let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
            return Form::Legacy;
        };
        for (media, params) in super::request::accept_entries(accept) {
            let param = |name: &str| params.get(name).map(String::as_str);
            if !matches!(media.as_str(), "application/json" | "application/*" | "*/*") {
                continue;
            }
            match param("as") {
                None => return Form::Legacy,
                Some("APIGroupDiscoveryList") if param("g") == Some("apidiscovery.k8s.io") => {
                    match param("v") {
                        Some("v2") => return Form::Aggregated("v2"),
                        Some("v2beta1") => return Form::Aggregated("v2beta1"),
                        _ => {}
                    }
                }
                Some(_) => {}
            }
        }
        Form::Legacy
    }

    /// The Content-Type of an answer in this form.
    pub fn content_type(self) -> String {
        match self {
            Form::Legacy => "application/json".into(),
            Form::Aggregated(v) => {
                format!("application/json;g=apidiscovery.k8s.io;v={v};as=APIGroupDiscoveryList")
            }
        }
    }
}

fn kind_of(group: &str, version: &str, kind: &str) -> Value {
    json!({"group": group, "version": version, "kind": kind})
}

/// One resource in the aggregated form, with its subresources.
fn aggregated_resource(info: &ResourceInfo) -> Value {
    let subresources: Vec<Value> = info
        .subresources
        .iter()
        .filter_map(|sub| {
            let s = subresource(info, sub)?;
            Some(json!({
                "subresource": sub,
                "responseKind": kind_of(s.group, s.version, s.kind),
                "verbs": s.verbs,
            }))
        })
        .collect();
    let mut entry = json!({
        "resource": info.plural,
        "responseKind": kind_of(info.group, info.version, info.kind),
        "scope": if info.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": info.singular,
        "verbs": verbs(info),
    });
    if !info.short_names.is_empty() {
        entry["shortNames"] = json!(info.short_names);
    }
    if !info.categories.is_empty() {
        entry["categories"] = json!(info.categories);
    }
    if !subresources.is_empty() {
        entry["subresources"] = json!(subresources);
    }
    entry
}

/// `/api` (`core`: the core group alone) or `/apis` (every named group) in the aggregated
/// form, `apidiscovery.k8s.io/<version>` `APIGroupDiscoveryList`.
pub fn aggregated(stores: &[std::sync::Arc<Store>], core: bool, version: &str) -> Value {
    let mut groups: BTreeMap<&str, BTreeMap<&str, Vec<Value>>> = BTreeMap::new();
    for info in served(stores) {
        if info.group.is_empty() != core {
            continue;
        }
        groups
            .entry(info.group)
            .or_default()
            .entry(info.version)
            .or_default()
            .push(aggregated_resource(info));
    }
    let items: Vec<Value> = groups
        .into_iter()
        .map(|(name, versions)| {
            let versions: Vec<Value> = versions
                .into_iter()
                .map(|(v, mut resources)| {
                    if core {
                        resources.push(json!({
                            "resource": "bindings",
                            "responseKind": kind_of("", "v1", "Binding"),
                            "scope": "Namespaced",
                            "singularResource": "binding",
                            "verbs": ["create"],
                        }));
                    }
                    resources.sort_by(|a, b| a["resource"].as_str().cmp(&b["resource"].as_str()));
                    json!({"version": v, "resources": resources, "freshness": "Current"})
                })
                .collect();
            let metadata = if name.is_empty() {
                json!({"creationTimestamp": null})
            } else {
                json!({"name": name, "creationTimestamp": null})
            };
            json!({"metadata": metadata, "versions": versions})
        })
        .collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": format!("apidiscovery.k8s.io/{version}"),
        "metadata": {},
        "items": items,
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_served_form_in_the_accept_list_wins() {
        let kubectl = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        let cases = [
            (None, Form::Legacy),
            (Some(""), Form::Legacy),
            (Some("application/json"), Form::Legacy),
            (Some("*/*"), Form::Legacy),
            (Some(kubectl), Form::Aggregated("v2")),
            (
                Some("application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"),
                Form::Aggregated("v2beta1"),
            ),
            (
                Some("application/json;g=apidiscovery.k8s.io;v=v3;as=APIGroupDiscoveryList,application/json"),
                Form::Legacy,
            ),
            (
                Some("application/json;g=other.io;v=v2;as=APIGroupDiscoveryList"),
                Form::Legacy,
            ),
            (Some("application/yaml"), Form::Legacy),
            (Some("application/json;as=Table;g=meta.k8s.io;v=v1"), Form::Legacy),
        ];
        for (accept, want) in cases {
            assert_eq!(Form::negotiate(accept), want, "{accept:?}");
        }
        assert_eq!(
            Form::Aggregated("v2").content_type(),
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
        );
    }
}
