//! Tests of the OpenAPI documents, built from the kinds rkube serves and checked for what
//! kubectl and server-side apply read.

use std::sync::OnceLock;

use http::{header, HeaderMap, HeaderValue, StatusCode};
use serde_json::Value;

use super::schemas::{self, Definitions, ServedKind};
use super::*;

fn strategies() -> Vec<Arc<dyn Strategy>> {
    crate::registry::kinds(std::time::Duration::from_secs(3600))
}

fn built() -> &'static Documents {
    static DOCS: OnceLock<Documents> = OnceLock::new();
    DOCS.get_or_init(|| {
        let strategies = strategies();
        let refs: Vec<&dyn Strategy> = strategies.iter().map(|s| &**s).collect();
        Documents::build(&refs)
    })
}

fn parse(served: &Served) -> Value {
    serde_json::from_slice(&served.body).expect("documents are JSON")
}

fn core_v1() -> Value {
    parse(&built().v3["api/v1"])
}

fn schema<'a>(doc: &'a Value, container: &str, name: &str) -> &'a Value {
    doc.pointer(&format!("/{container}/{}", name.replace('/', "~1")))
        .unwrap_or_else(|| panic!("{name} is defined"))
}

/// Every `$ref` of every document names a definition of that same document.
#[test]
fn every_reference_resolves_within_its_document() {
    let docs = built();
    let mut checked = 0;
    let mut check = |doc: &Value, prefix: &str, container: &str| {
        let mut refs = Vec::new();
        schemas::collect_refs(doc, &mut refs);
        assert!(!refs.is_empty());
        let text = doc.to_string();
        assert!(!text.contains(if prefix == schemas::V2_REFS {
            schemas::V3_REFS
        } else {
            schemas::V2_REFS
        }));
        for name in refs {
            let defs = doc.pointer(container).expect("definitions");
            assert!(defs.get(&name).is_some(), "{name} does not resolve");
            checked += 1;
        }
    };
    for served in docs.v3.values() {
        check(&parse(served), schemas::V3_REFS, "/components/schemas");
    }
    check(&parse(&docs.v2), schemas::V2_REFS, "/definitions");
    assert!(checked > 500, "only {checked} references");
}

#[test]
fn the_index_points_at_each_group_version_by_its_hash() {
    let docs = built();
    let index = parse(&docs.root);
    let paths = index["paths"].as_object().expect("paths");
    let names: Vec<&str> = paths.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "api/v1",
            "apis/apps/v1",
            "apis/batch/v1",
            "apis/coordination.k8s.io/v1",
            "apis/rbac.authorization.k8s.io/v1"
        ]
    );
    for (gv, entry) in paths {
        assert_eq!(
            entry["serverRelativeURL"],
            format!("/openapi/v3/{gv}?hash={}", docs.v3[gv].etag)
        );
    }
}

#[test]
fn pod_containers_carry_their_merge_key_and_type() {
    let doc = core_v1();
    let containers = &schema(&doc, "components/schemas", "io.k8s.api.core.v1.PodSpec")
        ["properties"]["containers"];
    assert_eq!(containers["type"], "array");
    assert_eq!(
        containers["items"]["$ref"],
        "#/components/schemas/io.k8s.api.core.v1.Container"
    );
    assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
    assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
    let container = schema(&doc, "components/schemas", "io.k8s.api.core.v1.Container");
    let cases = [
        ("ports", Some("containerPort"), "merge"),
        ("env", Some("name"), "merge"),
        ("volumeMounts", Some("mountPath"), "merge"),
        ("args", None, ""),
    ];
    for (field, key, strategy) in cases {
        let property = &container["properties"][field];
        assert_eq!(
            property["x-kubernetes-patch-merge-key"].as_str(),
            key,
            "{field}"
        );
        assert_eq!(
            property["x-kubernetes-patch-strategy"]
                .as_str()
                .unwrap_or(""),
            strategy,
            "{field}"
        );
    }
    let spec = &schema(&doc, "components/schemas", "io.k8s.api.core.v1.PodSpec")["properties"];
    assert_eq!(
        spec["volumes"]["x-kubernetes-patch-strategy"],
        "merge,retainKeys"
    );
    let list_types = [
        (&spec["containers"], "map", serde_json::json!(["name"])),
        (&spec["tolerations"], "atomic", Value::Null),
        (
            &container["properties"]["ports"],
            "map",
            serde_json::json!(["containerPort", "protocol"]),
        ),
        (
            &spec["topologySpreadConstraints"],
            "map",
            serde_json::json!(["topologyKey", "whenUnsatisfiable"]),
        ),
    ];
    for (property, list_type, keys) in list_types {
        assert_eq!(property["x-kubernetes-list-type"], list_type, "{property}");
        assert_eq!(property["x-kubernetes-list-map-keys"], keys, "{property}");
    }
    let meta = &schema(
        &doc,
        "components/schemas",
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
    )["properties"];
    assert_eq!(meta["finalizers"]["x-kubernetes-patch-strategy"], "merge");
    assert!(meta["finalizers"]
        .get("x-kubernetes-patch-merge-key")
        .is_none());
    assert_eq!(
        meta["ownerReferences"]["x-kubernetes-patch-merge-key"],
        "uid"
    );
    assert_eq!(meta["finalizers"]["x-kubernetes-list-type"], "set");
}

/// A tag or list type that names no field would silently vanish from the documents.
#[test]
fn every_patch_tag_and_list_type_names_a_field_of_the_schema() {
    let kinds: Vec<ServedKind> = strategies()
        .iter()
        .map(|s| ServedKind {
            gvk: gvk(s.info()),
            plural: s.info().plural,
            subresources: s.info().subresources,
            patch: s.patch_schema(),
        })
        .collect();
    let (defs, unresolved) = Definitions::build(&kinds);
    assert_eq!(unresolved, []);
    for kind in &kinds {
        assert!(
            defs.names.contains_key(&kind.gvk),
            "{:?} has a schema",
            kind.gvk
        );
        assert!(
            defs.lists.contains_key(&kind.gvk),
            "{:?} has a list",
            kind.gvk
        );
        for sub in kind.subresources {
            if let Some(gvk) = schemas::subresource_kind(kind.gvk, sub) {
                assert!(
                    defs.names.contains_key(&gvk),
                    "{gvk:?} ({sub}) has a schema"
                );
            }
        }
    }
}

#[test]
fn kinds_carry_their_group_version_kind() {
    let doc = core_v1();
    let cases = [
        ("io.k8s.api.core.v1.Pod", "", "Pod"),
        ("io.k8s.api.core.v1.PodList", "", "PodList"),
        ("io.k8s.api.core.v1.Namespace", "", "Namespace"),
        ("io.k8s.api.core.v1.Node", "", "Node"),
        ("io.k8s.api.core.v1.Event", "", "Event"),
        ("io.k8s.api.core.v1.Binding", "", "Binding"),
        ("io.k8s.api.policy.v1.Eviction", "policy", "Eviction"),
        ("io.k8s.apimachinery.pkg.apis.meta.v1.Status", "", "Status"),
    ];
    for (name, group, kind) in cases {
        let gvks = &schema(&doc, "components/schemas", name)["x-kubernetes-group-version-kind"];
        assert_eq!(
            gvks,
            &serde_json::json!([{"group": group, "kind": kind, "version": "v1"}]),
            "{name}"
        );
    }
    let lease = parse(&built().v3["apis/coordination.k8s.io/v1"]);
    let gvks = &schema(
        &lease,
        "components/schemas",
        "io.k8s.api.coordination.v1.Lease",
    )["x-kubernetes-group-version-kind"];
    assert_eq!(gvks[0]["group"], "coordination.k8s.io");
    // The core document holds nothing of other groups' kinds.
    assert!(doc["components"]["schemas"]
        .get("io.k8s.api.coordination.v1.Lease")
        .is_none());
}

/// kubectl sends `fieldValidation=Strict` only where the kind's PATCH declares the parameter.
#[test]
fn every_patch_operation_declares_field_validation() {
    let mut patches = 0;
    for served in built().v3.values() {
        let doc = parse(served);
        for (path, item) in doc["paths"].as_object().expect("paths") {
            let Some(patch) = item.get("patch") else {
                continue;
            };
            patches += 1;
            assert!(
                patch["x-kubernetes-group-version-kind"]["kind"].is_string(),
                "{path}"
            );
            let params = patch["parameters"].as_array().expect("parameters");
            assert!(
                params
                    .iter()
                    .any(|p| p["name"] == "fieldValidation" && p["in"] == "query"),
                "{path}"
            );
            assert_eq!(
                patch["requestBody"]["content"]["application/strategic-merge-patch+json"]["schema"]
                    ["$ref"],
                "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.Patch"
            );
        }
    }
    assert!(patches >= 8, "{patches} PATCH operations");
    let doc = core_v1();
    let read = &doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["get"];
    assert_eq!(read["operationId"], "readCoreV1NamespacedPod");
    assert_eq!(
        read["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/io.k8s.api.core.v1.Pod"
    );
    let list = &doc["paths"]["/api/v1/nodes"]["get"];
    assert_eq!(list["operationId"], "listCoreV1Node");
}

/// References with a description beside them are wrapped in `allOf` in v3 and left bare in
/// v2, as upstream writes each.
#[test]
fn described_references_take_each_documents_form() {
    let v3 = core_v1();
    let metadata =
        &schema(&v3, "components/schemas", "io.k8s.api.core.v1.Pod")["properties"]["metadata"];
    assert_eq!(
        metadata["allOf"],
        serde_json::json!([{"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}])
    );
    assert!(metadata["description"]
        .as_str()
        .expect("described")
        .starts_with("Standard object's metadata."));
    let v2 = parse(&built().v2);
    assert_eq!(v2["swagger"], "2.0");
    let metadata = &schema(&v2, "definitions", "io.k8s.api.core.v1.Pod")["properties"]["metadata"];
    assert_eq!(
        metadata["$ref"],
        "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
    );
    assert!(
        v2["paths"]["/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}"]["patch"]
            .is_object()
    );
}

#[test]
fn metadata_is_required_only_where_upstream_requires_it() {
    let doc = core_v1();
    let required = |name: &str| {
        schema(&doc, "components/schemas", name)
            .get("required")
            .cloned()
    };
    assert_eq!(required("io.k8s.api.core.v1.Pod"), None);
    assert_eq!(required("io.k8s.api.core.v1.Namespace"), None);
    assert_eq!(
        required("io.k8s.api.core.v1.Event"),
        Some(serde_json::json!(["involvedObject", "metadata"]))
    );
    assert_eq!(
        required("io.k8s.api.core.v1.PodList"),
        Some(serde_json::json!(["items"]))
    );
    let int_or_string = schema(
        &doc,
        "components/schemas",
        "io.k8s.apimachinery.pkg.util.intstr.IntOrString",
    );
    assert_eq!(int_or_string["type"], "string");
    assert_eq!(int_or_string["format"], "int-or-string");
}

#[test]
fn documents_and_their_etags_are_stable() {
    let strategies = strategies();
    let refs: Vec<&dyn Strategy> = strategies.iter().map(|s| &**s).collect();
    let again = Documents::build(&refs);
    let first = built();
    assert_eq!(again.root.etag, first.root.etag);
    assert_eq!(again.v2.etag, first.v2.etag);
    for (gv, served) in &first.v3 {
        assert_eq!(again.v3[gv].etag, served.etag, "{gv}");
        assert_eq!(again.v3[gv].body, served.body, "{gv}");
    }
    assert_ne!(
        first.v3["api/v1"].etag,
        first.v3["apis/coordination.k8s.io/v1"].etag
    );
}

fn headers(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.insert(
            name.clone(),
            HeaderValue::from_str(value).expect("valid header"),
        );
    }
    map
}

#[test]
fn serving_answers_as_kube_openapi_does() {
    let doc = &built().v3["api/v1"];
    let quoted = format!("\"{}\"", doc.etag);
    let resp = serve(
        doc,
        &headers(&[(header::ACCEPT, "application/json, */*")]),
        false,
    );
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()[header::ETAG], quoted.as_str());
    assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/json");
    assert!(resp.headers().get(header::CACHE_CONTROL).is_none());
    assert_eq!(resp.body(), &doc.body);

    let resp = serve(doc, &HeaderMap::new(), true);
    assert_eq!(resp.headers()[header::CACHE_CONTROL], "public, immutable");
    assert_eq!(resp.headers()[header::VARY], "Accept");
    assert!(resp.headers()[header::EXPIRES]
        .to_str()
        .expect("ascii")
        .ends_with(" GMT"));

    let resp = serve(doc, &headers(&[(header::IF_NONE_MATCH, &quoted)]), false);
    assert_eq!(resp.status(), StatusCode::NOT_MODIFIED);
    assert!(resp.body().is_empty());

    let protobuf_only = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";
    let resp = serve(
        &built().v2,
        &headers(&[(header::ACCEPT, protobuf_only)]),
        false,
    );
    assert_eq!(resp.status(), StatusCode::NOT_ACCEPTABLE);
}

#[test]
fn a_stale_hash_is_redirected_to_the_current_one() {
    let docs = built();
    let current = &docs.v3["api/v1"].etag;
    let resp = serve_v3(
        docs,
        "api/v1",
        Some("hash=0123&timeout=32s"),
        &HeaderMap::new(),
    )
    .expect("api/v1 is served");
    assert_eq!(resp.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(
        resp.headers()[header::LOCATION],
        format!("/openapi/v3/api/v1?hash={current}").as_str()
    );
    let query = format!("hash={current}&timeout=32s");
    let resp = serve_v3(docs, "api/v1", Some(&query), &HeaderMap::new()).expect("served");
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()[header::CACHE_CONTROL], "public, immutable");
    assert!(serve_v3(docs, "apis/networking.k8s.io/v1", None, &HeaderMap::new()).is_none());
}

#[test]
fn kubectl_gets_the_gnostic_form_of_v2_when_it_names_it_first() {
    let kubectl = headers(&[(header::ACCEPT, GNOSTIC)]);
    assert!(wants_gnostic(&kubectl));
    assert!(!wants_gnostic(&headers(&[(
        header::ACCEPT,
        "application/json, application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
    )])));
    assert!(!wants_gnostic(&HeaderMap::new()));
    let docs = built();
    let body = &docs.v2_protobuf.body;
    assert!(body.starts_with(b"\x0a\x032.0"), "swagger: 2.0 first");
    // Every definition's name is in the message, and its GVK extension as YAML.
    let text = String::from_utf8_lossy(body);
    assert!(text.contains("io.k8s.api.core.v1.Pod"));
    assert!(text.contains("x-kubernetes-group-version-kind"));
    assert!(text.contains("kind: Pod"));
    assert_ne!(docs.v2_protobuf.etag, docs.v2.etag);
}

#[test]
fn patch_operations_declare_server_side_apply_and_force() {
    let doc: Value = serde_json::from_slice(&built().v3["api/v1"].body).expect("JSON");
    let patch = &doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"];
    let types: Vec<&str> = patch["requestBody"]["content"]
        .as_object()
        .expect("content")
        .keys()
        .map(String::as_str)
        .collect();
    assert!(types.contains(&"application/apply-patch+yaml"), "{types:?}");
    let params: Vec<&str> = patch["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(params.contains(&"force"), "{params:?}");
}
