//! What a request asks for: path parsed into resource and verb, query parameters, and the
//! media types of its body and of the answer it accepts.

use std::collections::HashMap;

use crate::meta::ApiError;

/// A request for a resource, parsed from its path (`/api/v1/namespaces/ns/pods/name/status`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourcePath {
    pub group: String,
    pub version: String,
    pub namespace: String,
    pub resource: String,
    pub name: String,
    pub subresource: String,
}

/// Parses the path of a resource request; None if the path names no resource.
pub fn parse_resource_path(segments: &[&str]) -> Option<ResourcePath> {
    let (group, version, rest) = match segments {
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return None,
    };
    let mut path = ResourcePath {
        group: group.to_string(),
        version: version.to_string(),
        ..ResourcePath::default()
    };
    let rest = match rest {
        ["namespaces", ns, resource, tail @ ..] => {
            path.namespace = ns.to_string();
            path.resource = resource.to_string();
            tail
        }
        [resource, tail @ ..] => {
            path.resource = resource.to_string();
            tail
        }
        [] => return None,
    };
    match rest {
        [] => {}
        [name] => path.name = name.to_string(),
        [name, sub] => {
            path.name = name.to_string();
            path.subresource = sub.to_string();
        }
        _ => return None,
    }
    if path.resource.is_empty() {
        return None;
    }
    Some(path)
}

/// Query parameters. Every value of a repeated parameter is kept: list-valued options
/// (`dryRun`) are judged on all of them; single-valued ones read the first, as upstream's
/// parameter codec does.
#[derive(Debug, Default)]
pub struct Query(HashMap<String, Vec<String>>);

impl Query {
    pub fn parse(raw: Option<&str>) -> Query {
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            map.entry(k.into_owned()).or_default().push(v.into_owned());
        }
        Query(map)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .get(key)
            .and_then(|values| values.first())
            .map(String::as_str)
    }

    /// Every value given for `key`, in order.
    pub fn all(&self, key: &str) -> Vec<String> {
        self.0.get(key).cloned().unwrap_or_default()
    }

    pub fn flag(&self, key: &str) -> Result<bool, ApiError> {
        match self.get(key) {
            None | Some("") | Some("false") | Some("0") => Ok(false),
            Some("true") | Some("1") => Ok(true),
            Some(other) => Err(ApiError::bad_request(format!(
                "invalid value {other:?} for query parameter {key:?}: must be a boolean"
            ))),
        }
    }

    /// A non-negative integer parameter.
    pub fn count(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(text) => text
                .parse::<i64>()
                .ok()
                .filter(|v| *v >= 0)
                .map(Some)
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "invalid value {text:?} for query parameter {key:?}: must be a non-negative integer"
                    ))
                }),
        }
    }

    /// An integer parameter that may be negative (e.g. `gracePeriodSeconds`).
    pub fn integer(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some(text) => text.parse::<i64>().map(Some).map_err(|_| {
                ApiError::bad_request(format!(
                    "invalid value {text:?} for query parameter {key:?}: must be an integer"
                ))
            }),
        }
    }
}

/// The verb a request on a resource asks for, and whether the server serves that verb on
/// that path. Upstream registers no cluster-wide create or deletecollection route for a
/// namespaced kind (`/api/v1/pods` serves list and watch only), and the namespace store has
/// no deletecollection: those requests are authorized under their verb, then answered 405.
pub fn verb_for(
    method: &http::Method,
    path: &ResourcePath,
    namespaced: bool,
    watch: bool,
) -> Option<(&'static str, bool)> {
    use http::Method;
    let collection = path.name.is_empty();
    let cluster_wide = namespaced && path.namespace.is_empty();
    let verb = match (method, collection) {
        (&Method::GET, true) if watch => "watch",
        (&Method::GET, true) => "list",
        (&Method::GET, false) => "get",
        (&Method::POST, _) => "create",
        (&Method::PUT, false) => "update",
        (&Method::PATCH, false) => "patch",
        (&Method::DELETE, false) => "delete",
        (&Method::DELETE, true) => "deletecollection",
        _ => return None,
    };
    let served = match verb {
        "create" if collection => !cluster_wide,
        "deletecollection" => {
            let namespaces = path.group.is_empty() && path.resource == "namespaces";
            !(cluster_wide || namespaces)
        }
        _ => true,
    };
    Some((verb, served))
}

/// How a response body is to be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Json,
    Yaml,
    /// `application/json;as=Table;v=v1;g=meta.k8s.io`
    Table,
    /// `application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io` (`list`: `as=…List`):
    /// objects reduced to their metadata, in `meta.k8s.io/<version>`.
    Metadata {
        list: bool,
        version: MetaVersion,
    },
    /// `application/vnd.kubernetes.protobuf` (watches: `;stream=watch` frames).
    Protobuf,
}

/// The `meta.k8s.io` version a Table or metadata answer is given in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetaVersion {
    V1,
    V1beta1,
}

impl MetaVersion {
    /// The version an `Accept` entry names (`v`), when it names one that exists; one that
    /// names none means v1.
    fn of(params: &HashMap<String, String>) -> Option<MetaVersion> {
        if params.get("g").is_some_and(|g| g != "meta.k8s.io") {
            return None;
        }
        match params.get("v").map(String::as_str) {
            None | Some("v1") => Some(MetaVersion::V1),
            Some("v1beta1") => Some(MetaVersion::V1beta1),
            Some(_) => None,
        }
    }

    pub fn api_version(self) -> &'static str {
        match self {
            MetaVersion::V1 => "meta.k8s.io/v1",
            MetaVersion::V1beta1 => "meta.k8s.io/v1beta1",
        }
    }
}

/// The entries of an `Accept` header in the client's order: each media type (lower-cased)
/// with its parameters (`as`, `g`, `v`, ...).
pub fn accept_entries(
    accept: &str,
) -> impl Iterator<Item = (String, HashMap<String, String>)> + '_ {
    accept.split(',').map(|entry| {
        let mut parts = entry.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let params = parts
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        (media, params)
    })
}

/// Picks the response form from an `Accept` header, as the server's negotiation does: the
/// first listed type it can produce wins. Tables and metadata-only answers are JSON only
/// (kubectl asks for Tables in JSON; client-go's metadata client lists JSON after protobuf); a
/// protobuf entry with `as=` is passed over for the next.
pub fn negotiate(accept: Option<&str>) -> Result<Output, ApiError> {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Ok(Output::Json);
    };
    for (media, params) in accept_entries(accept) {
        let as_kind = params.get("as").map(String::as_str);
        match (media.as_str(), as_kind) {
            ("application/json" | "*/*" | "application/*", Some("Table"))
                if MetaVersion::of(&params).is_some() =>
            {
                return Ok(Output::Table);
            }
            (
                "application/json" | "*/*" | "application/*",
                Some(kind @ ("PartialObjectMetadata" | "PartialObjectMetadataList")),
            ) => {
                // Another group or version is not this conversion: the next entry is taken.
                let Some(version) = MetaVersion::of(&params) else {
                    continue;
                };
                let list = kind == "PartialObjectMetadataList";
                return Ok(Output::Metadata { list, version });
            }
            ("application/json" | "*/*" | "application/*", None) => return Ok(Output::Json),
            ("application/yaml", None) => return Ok(Output::Yaml),
            ("application/vnd.kubernetes.protobuf", None) => return Ok(Output::Protobuf),
            _ => {}
        }
    }
    Err(ApiError::not_acceptable(format!(
        "only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf;as=Table (got {accept:?})"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(path: &str) -> Vec<&str> {
        path.trim_matches('/').split('/').collect()
    }

    #[test]
    fn resource_paths_parse_into_their_parts() {
        let p = parse_resource_path(&segs("/api/v1/namespaces/default/pods/db/status"))
            .expect("parses");
        assert_eq!(
            (
                p.namespace.as_str(),
                p.resource.as_str(),
                p.name.as_str(),
                p.subresource.as_str()
            ),
            ("default", "pods", "db", "status")
        );
        let ns = parse_resource_path(&segs("/api/v1/namespaces/default")).expect("parses");
        assert_eq!(
            (ns.resource.as_str(), ns.name.as_str()),
            ("namespaces", "default")
        );
        let all = parse_resource_path(&segs("/api/v1/pods")).expect("parses");
        assert_eq!(
            (all.namespace.as_str(), all.resource.as_str()),
            ("", "pods")
        );
        let lease = parse_resource_path(&segs(
            "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n1",
        ))
        .expect("parses");
        assert_eq!(lease.group, "coordination.k8s.io");
        assert!(parse_resource_path(&segs("/api/v1/namespaces/a/pods/b/c/d")).is_none());
    }

    #[test]
    fn kubectl_get_negotiates_a_table() {
        let accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(negotiate(Some(accept)), Ok(Output::Table));
        assert_eq!(negotiate(Some("application/json")), Ok(Output::Json));
        assert_eq!(negotiate(None), Ok(Output::Json));
        assert_eq!(negotiate(Some("application/yaml")), Ok(Output::Yaml));
        assert_eq!(
            negotiate(Some("application/vnd.kubernetes.protobuf")),
            Ok(Output::Protobuf)
        );
        // What kubectl's typed clients send.
        assert_eq!(
            negotiate(Some(
                "application/vnd.kubernetes.protobuf, application/json"
            )),
            Ok(Output::Protobuf)
        );
        assert_eq!(
            negotiate(Some(
                "application/json, application/vnd.kubernetes.protobuf"
            )),
            Ok(Output::Json)
        );
        assert_eq!(
            negotiate(Some(
                "application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io,application/json"
            )),
            Ok(Output::Json)
        );
        assert_eq!(
            negotiate(Some(
                "application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io"
            ))
            .expect_err("no protobuf Table")
            .code,
            406
        );
        assert_eq!(negotiate(Some("application")).expect_err("bad").code, 406);
    }

    #[test]
    fn metadata_clients_negotiate_partial_objects() {
        let list = |version| {
            Ok(Output::Metadata {
                list: true,
                version,
            })
        };
        // kube-rs's `list_metadata` and `watch_metadata`.
        assert_eq!(
            negotiate(Some(
                "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
            )),
            list(MetaVersion::V1)
        );
        assert_eq!(
            negotiate(Some(
                "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
            )),
            Ok(Output::Metadata {
                list: false,
                version: MetaVersion::V1
            })
        );
        // client-go's metadata client names protobuf first: JSON is what it gets.
        assert_eq!(
            negotiate(Some("application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1beta1,application/json")),
            list(MetaVersion::V1beta1)
        );
        // Another group or version is not this conversion: the next entry is taken.
        assert_eq!(
            negotiate(Some(
                "application/json;as=PartialObjectMetadataList;g=apps;v=v1,application/json"
            )),
            Ok(Output::Json)
        );
        assert_eq!(
            negotiate(Some(
                "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v2"
            ))
            .expect_err("no such version")
            .code,
            406
        );
        assert_eq!(
            negotiate(Some("application/json;as=Pod;g=meta.k8s.io;v=v1"))
                .expect_err("not a conversion")
                .code,
            406
        );
    }

    #[test]
    fn query_numbers_are_checked() {
        let q = Query::parse(Some("limit=-1&timeoutSeconds=5&gracePeriodSeconds=abc"));
        assert_eq!(q.count("limit").expect_err("negative").code, 400);
        assert_eq!(q.count("timeoutSeconds").expect("ok"), Some(5));
        assert_eq!(q.integer("gracePeriodSeconds").expect_err("abc").code, 400);
    }
}
