//! The schemas of rkube's OpenAPI documents: generated from k8s-openapi's typed API definitions
//! (whose `schemars` derivation carries upstream's definition names and descriptions), then put
//! in the form kube-apiserver publishes them in.
//!
//! What the generated schemas lack is added from rkube's own sources: the
//! `x-kubernetes-group-version-kind` of each kind, the `x-kubernetes-patch-*` tags from each
//! kind's [`PatchSchema`] (the very metadata strategic merge patches are applied with), and the
//! `List` kinds (k8s-openapi has one generic `List<T>` without a schema).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::schemars::{generate::SchemaSettings, JsonSchema, SchemaGenerator};
use serde_json::{json, Map, Value};

use super::list_types::LIST_TYPES;
use crate::meta::patch::{ListStrategy, PatchSchema};

/// Where definitions live in an OpenAPI v3 document, and in a swagger 2.0 one.
pub const V3_REFS: &str = "#/components/schemas/";
pub const V2_REFS: &str = "#/definitions/";

pub const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
pub const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
pub const WATCH_EVENT: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent";
pub const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";
const INT_OR_STRING: &str = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";

/// A group, version and kind.
pub type Gvk = (&'static str, &'static str, &'static str);

/// Adds `T` and everything it references to `gen`; returns `T`'s definition name.
fn add<T: JsonSchema>(gen: &mut SchemaGenerator) -> String {
    gen.subschema_for::<T>();
    T::schema_name().into_owned()
}

/// Adds the typed definition of a kind rkube serves (as a resource or as the body of a
/// subresource) to `gen`, and returns its name; `None` for a kind without a type here (a test
/// keeps this list complete for every served kind).
fn add_kind(gen: &mut SchemaGenerator, gvk: Gvk) -> Option<String> {
    use k8s_openapi::api::{apps, autoscaling, batch, coordination, core, policy, rbac};
    Some(match gvk {
        ("", "v1", "Namespace") => add::<core::v1::Namespace>(gen),
        ("", "v1", "Pod") => add::<core::v1::Pod>(gen),
        ("", "v1", "PodTemplate") => add::<core::v1::PodTemplate>(gen),
        ("", "v1", "ConfigMap") => add::<core::v1::ConfigMap>(gen),
        ("", "v1", "Secret") => add::<core::v1::Secret>(gen),
        ("", "v1", "ServiceAccount") => add::<core::v1::ServiceAccount>(gen),
        ("", "v1", "Event") => add::<core::v1::Event>(gen),
        ("", "v1", "Node") => add::<core::v1::Node>(gen),
        ("", "v1", "Binding") => add::<core::v1::Binding>(gen),
        ("apps", "v1", "Deployment") => add::<apps::v1::Deployment>(gen),
        ("apps", "v1", "ReplicaSet") => add::<apps::v1::ReplicaSet>(gen),
        ("batch", "v1", "Job") => add::<batch::v1::Job>(gen),
        ("batch", "v1", "CronJob") => add::<batch::v1::CronJob>(gen),
        ("autoscaling", "v1", "Scale") => add::<autoscaling::v1::Scale>(gen),
        ("policy", "v1", "Eviction") => add::<policy::v1::Eviction>(gen),
        ("coordination.k8s.io", "v1", "Lease") => add::<coordination::v1::Lease>(gen),
        ("rbac.authorization.k8s.io", "v1", "Role") => add::<rbac::v1::Role>(gen),
        ("rbac.authorization.k8s.io", "v1", "ClusterRole") => add::<rbac::v1::ClusterRole>(gen),
        ("rbac.authorization.k8s.io", "v1", "RoleBinding") => add::<rbac::v1::RoleBinding>(gen),
        ("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding") => {
            add::<rbac::v1::ClusterRoleBinding>(gen)
        }
        _ => return None,
    })
}

/// The kind a subresource's requests carry, for the subresources that have a body of their own.
pub fn subresource_kind(parent: Gvk, subresource: &str) -> Option<Gvk> {
    match subresource {
        "status" | "finalize" => Some(parent),
        "binding" => Some(("", "v1", "Binding")),
        "eviction" => Some(("policy", "v1", "Eviction")),
        "scale" => Some(("autoscaling", "v1", "Scale")),
        _ => None,
    }
}

/// One kind served as a resource: its identity and its strategic-merge metadata.
pub struct ServedKind {
    pub gvk: Gvk,
    pub plural: &'static str,
    pub subresources: &'static [&'static str],
    pub patch: PatchSchema,
}

/// Every definition of the served kinds, in a generic form: `$ref`s point at
/// [`V3_REFS`] and may have siblings (a description); [`Definitions::v3`] and
/// [`Definitions::v2`] give each document's form.
#[derive(Debug, Clone)]
pub struct Definitions {
    pub schemas: Map<String, Value>,
    /// The definition name of each kind (`Pod` → `io.k8s.api.core.v1.Pod`).
    pub names: BTreeMap<Gvk, String>,
    /// The definition name of each served kind's list (`Pod` → `io.k8s.api.core.v1.PodList`).
    pub lists: BTreeMap<Gvk, String>,
}

/// A field that patch tags or list types name and the schema does not have.
#[derive(Debug, PartialEq, Eq)]
pub struct Unresolved(pub String);

impl Definitions {
    /// Generates the definitions of `kinds`, of the kinds their subresources carry, and of
    /// the meta types every document's operations name. Also returns the patch tags and list
    /// types that named no field (a test keeps this empty).
    pub fn build(kinds: &[ServedKind]) -> (Definitions, Vec<Unresolved>) {
        let mut gen = SchemaGenerator::new(SchemaSettings::openapi3().with(|s| {
            s.meta_schema = None;
            s.transforms = Vec::new();
        }));
        let mut names = BTreeMap::new();
        for kind in kinds {
            if let Some(name) = add_kind(&mut gen, kind.gvk) {
                names.insert(kind.gvk, name);
            }
            for sub in kind.subresources {
                if let Some(gvk) = subresource_kind(kind.gvk, sub) {
                    if let Some(name) = add_kind(&mut gen, gvk) {
                        names.insert(gvk, name);
                    }
                }
            }
        }
        add::<k8s_openapi::apimachinery::pkg::apis::meta::v1::ListMeta>(&mut gen);
        add::<k8s_openapi::apimachinery::pkg::apis::meta::v1::Status>(&mut gen);
        add::<k8s_openapi::apimachinery::pkg::apis::meta::v1::DeleteOptions>(&mut gen);
        add::<k8s_openapi::apimachinery::pkg::apis::meta::v1::Patch>(&mut gen);
        add::<k8s_openapi::apimachinery::pkg::apis::meta::v1::WatchEvent<()>>(&mut gen);
        let mut schemas = gen.take_definitions(false);

        upstream_leaf_forms(&mut schemas);
        for schema in schemas.values_mut() {
            drop_metadata_requirement(schema);
        }
        // Upstream requires `metadata` where the Go field is not `omitempty`: of the kinds
        // rkube serves, only core/v1 Event.
        if let Some(Value::Object(event)) = schemas.get_mut("io.k8s.api.core.v1.Event") {
            event.insert("required".into(), json!(["involvedObject", "metadata"]));
        }

        let mut unresolved = Vec::new();
        let mut lists = BTreeMap::new();
        for kind in kinds {
            let Some(name) = names.get(&kind.gvk).cloned() else {
                continue;
            };
            unresolved.extend(apply_patch_tags(&mut schemas, &name, &kind.patch));
            let list_name = format!("{name}List");
            if let Some(list) = list_schema(&schemas, &name, kind) {
                schemas.insert(list_name.clone(), list);
                lists.insert(kind.gvk, list_name);
            }
        }
        unresolved.extend(apply_list_types(&mut schemas));
        let mut group_versions = BTreeSet::new();
        let kind_names = names
            .iter()
            .map(|(&gvk, name)| (gvk, gvk.2.to_string(), name));
        let list_names = lists
            .iter()
            .map(|(&gvk, name)| (gvk, format!("{}List", gvk.2), name));
        for ((group, version, _), kind, name) in kind_names.chain(list_names) {
            group_versions.insert((group, version));
            if let Some(Value::Object(schema)) = schemas.get_mut(name) {
                schema.insert(
                    "x-kubernetes-group-version-kind".into(),
                    json!([{"group": group, "kind": kind, "version": version}]),
                );
            }
        }
        // The meta kinds: Status is core/v1's, the options and watch events every group's.
        let every_group = |kind: &str| -> Value {
            group_versions
                .iter()
                .map(|(g, v)| json!({"group": g, "kind": kind, "version": v}))
                .collect()
        };
        let meta = [
            (
                STATUS,
                json!([{"group": "", "kind": "Status", "version": "v1"}]),
            ),
            (DELETE_OPTIONS, every_group("DeleteOptions")),
            (WATCH_EVENT, every_group("WatchEvent")),
        ];
        for (name, gvks) in meta {
            if let Some(Value::Object(schema)) = schemas.get_mut(name) {
                schema.insert("x-kubernetes-group-version-kind".into(), gvks);
            }
        }
        (
            Definitions {
                schemas,
                names,
                lists,
            },
            unresolved,
        )
    }

    /// The definitions reachable from `roots`, in the generic form.
    pub fn closure<'a>(&self, roots: impl IntoIterator<Item = &'a str>) -> Map<String, Value> {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<String> = roots.into_iter().map(str::to_string).collect();
        while let Some(name) = todo.pop() {
            if !seen.insert(name.clone()) {
                continue;
            }
            if let Some(schema) = self.schemas.get(&name) {
                collect_refs(schema, &mut todo);
            }
        }
        seen.into_iter()
            .filter_map(|name| self.schemas.get(&name).map(|s| (name, s.clone())))
            .collect()
    }
}

/// A reference to the definition `name`, in the generic form.
pub fn reference(name: &str) -> Value {
    json!({ "$ref": format!("{V3_REFS}{name}") })
}

/// Puts generic-form schemas in OpenAPI v3's form: a `$ref` with siblings (a description)
/// becomes an `allOf` holding the reference, as upstream writes it.
pub fn v3(value: Value) -> Value {
    match value {
        Value::Object(mut map) => {
            if map.len() > 1 {
                if let Some(reference) = map.remove("$ref") {
                    map.insert("allOf".into(), json!([{ "$ref": reference }]));
                }
            }
            Value::Object(map.into_iter().map(|(k, v)| (k, v3(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(v3).collect()),
        other => other,
    }
}

/// Puts generic-form schemas in swagger 2.0's form: references point at `#/definitions/`.
pub fn v2(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => {
                        let r = r
                            .strip_prefix(V3_REFS)
                            .map_or(r.clone(), |name| format!("{V2_REFS}{name}"));
                        (k, Value::String(r))
                    }
                    (_, v) => (k, v2(v)),
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(v2).collect()),
        other => other,
    }
}

/// Every definition name a schema refers to.
pub fn collect_refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => {
                        let name = r
                            .strip_prefix(V3_REFS)
                            .or_else(|| r.strip_prefix(V2_REFS))
                            .unwrap_or(r);
                        out.push(name.to_string());
                    }
                    _ => collect_refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

/// The object keys in order, as upstream's documents (Go maps) have them.
pub fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let sorted: BTreeMap<String, Value> =
                map.into_iter().map(|(k, v)| (k, sorted(v))).collect();
            Value::Object(sorted.into_iter().collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// k8s-openapi describes IntOrString as a CRD schema would (`x-kubernetes-int-or-string`);
/// the built-in documents carry it as a string of format `int-or-string`.
fn upstream_leaf_forms(schemas: &mut Map<String, Value>) {
    if let Some(Value::Object(schema)) = schemas.get_mut(INT_OR_STRING) {
        schema.remove("x-kubernetes-int-or-string");
        schema.insert("type".into(), json!("string"));
        schema.insert("format".into(), json!("int-or-string"));
    }
}

/// k8s-openapi lists `metadata` as required on every kind, since its types hold metadata
/// unconditionally; upstream's `metadata` fields are `omitempty`, hence optional.
fn drop_metadata_requirement(schema: &mut Value) {
    let Some(map) = schema.as_object_mut() else {
        return;
    };
    let Some(Value::Array(required)) = map.get_mut("required") else {
        return;
    };
    required.retain(|r| r != "metadata");
    if required.is_empty() {
        map.remove("required");
    }
}

/// The definition a property points at, directly or through its array items.
fn target_of(property: &Value) -> Option<String> {
    let direct = property.get("$ref");
    let through_items = property.get("items").and_then(|i| i.get("$ref"));
    let r = direct.or(through_items)?.as_str()?;
    Some(r.strip_prefix(V3_REFS).unwrap_or(r).to_string())
}

/// Writes the `x-kubernetes-patch-strategy` / `x-kubernetes-patch-merge-key` of every tagged
/// field of `patch` on the property it names, starting from the definition `root`. Shared
/// definitions (a Container under `containers` and `initContainers`) get each tag once.
fn apply_patch_tags(
    schemas: &mut Map<String, Value>,
    root: &str,
    patch: &PatchSchema,
) -> Vec<Unresolved> {
    let mut unresolved = Vec::new();
    for (path, list, retain_keys) in patch.tagged_fields() {
        let segments: Vec<&str> = path.split('.').collect();
        let Some((last, parents)) = segments.split_last() else {
            continue;
        };
        let mut owner = root.to_string();
        let mut found = true;
        for seg in parents {
            match schemas
                .get(&owner)
                .and_then(|s| s.get("properties"))
                .and_then(|p| p.get(*seg))
                .and_then(target_of)
            {
                Some(next) => owner = next,
                None => {
                    found = false;
                    break;
                }
            }
        }
        let property = schemas
            .get_mut(&owner)
            .and_then(|s| s.get_mut("properties"))
            .and_then(|p| p.get_mut(*last))
            .and_then(Value::as_object_mut);
        let (true, Some(property)) = (found, property) else {
            unresolved.push(Unresolved(format!("{root}: {path}")));
            continue;
        };
        let mut strategy = Vec::new();
        if let ListStrategy::MergeByKey(key) = &list {
            property.insert("x-kubernetes-patch-merge-key".into(), json!(key));
        }
        if list != ListStrategy::Atomic {
            strategy.push("merge");
        }
        if retain_keys {
            strategy.push("retainKeys");
        }
        property.insert(
            "x-kubernetes-patch-strategy".into(),
            json!(strategy.join(",")),
        );
    }
    unresolved
}

/// Writes `x-kubernetes-list-type` (and `x-kubernetes-list-map-keys`) on every field
/// [`LIST_TYPES`] names.
fn apply_list_types(schemas: &mut Map<String, Value>) -> Vec<Unresolved> {
    let mut unresolved = Vec::new();
    for (definition, field, list_type, keys) in LIST_TYPES {
        let property = schemas
            .get_mut(*definition)
            .and_then(|s| s.get_mut("properties"))
            .and_then(|p| p.get_mut(*field))
            .and_then(Value::as_object_mut);
        let Some(property) = property else {
            unresolved.push(Unresolved(format!("{definition}: {field}")));
            continue;
        };
        property.insert("x-kubernetes-list-type".into(), json!(list_type));
        if !keys.is_empty() {
            property.insert("x-kubernetes-list-map-keys".into(), json!(keys));
        }
    }
    unresolved
}

/// The `<Kind>List` of a served kind, in the shape every built-in list has.
fn list_schema(schemas: &Map<String, Value>, item: &str, kind: &ServedKind) -> Option<Value> {
    let properties = schemas.get(item)?.get("properties")?;
    let (_, _, name) = kind.gvk;
    Some(json!({
        "description": format!("{name}List is a list of {name} objects."),
        "type": "object",
        "properties": {
            "apiVersion": properties.get("apiVersion")?,
            "kind": properties.get("kind")?,
            "items": {
                "description": format!("List of {}.", kind.plural),
                "type": "array",
                "items": reference(item),
            },
            "metadata": {
                "$ref": format!("{V3_REFS}{LIST_META}"),
                "description": "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds",
            },
        },
        "required": ["items"],
    }))
}
