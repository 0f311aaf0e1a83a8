//! PATCH for the API server: applies JSON patch, JSON merge patch and strategic merge patch
//! bodies to stored objects the way kube-apiserver v1.32 does.
//!
//! kube-apiserver accepts four patch media types on `PATCH`; the fourth,
//! `application/apply-patch+yaml`, is server-side apply, which merges with managed fields
//! (`meta::managed_fields`) rather than here. The other three:
//!
//! * `application/json-patch+json` — an RFC 6902 operation list. Upstream runs it through
//!   `gopkg.in/evanphx/json-patch.v4` with at most 10,000 operations and a 3 MiB budget for what
//!   `copy` operations may add.
//! * `application/merge-patch+json` — RFC 7386: `null` deletes, objects merge, anything else
//!   replaces.
//! * `application/strategic-merge-patch+json` — Kubernetes' own format
//!   (`k8s.io/apimachinery/pkg/util/strategicpatch`). Lists are merged according to per-field
//!   metadata taken from the Go struct tags (`patchStrategy`, `patchMergeKey`); here a
//!   [`PatchSchema`] carries that metadata, since rkube works on `serde_json::Value` rather than
//!   typed structs.
//!
//! Every operation works on a copy of the original: an error leaves nothing half applied.
//!
//! Layout: this module holds the media types, errors, per-kind [`PatchSchema`]s and the entry
//! point [`apply_patch`]; each format lives in its own submodule (`merge`, `json`, `strategic`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;

use serde_json::{Map, Value};

type Object = Map<String, Value>;

mod json;
mod merge;
mod strategic;

use json::*;
use merge::*;
pub use strategic::go_value;
use strategic::*;

/// Deepest nesting of arrays and objects accepted in an original object, a patch body, and a
/// patched result: 127 levels, the most `serde_json` parses.
///
/// kube-apiserver's decoder (`sigs.k8s.io/json`) allows 10,000 levels, but that is not safe
/// here: `serde_json::Value` clones, compares and drops itself recursively, and a value 10,000
/// levels deep overflows a 2 MiB thread stack in doing so. Nor could rkube read back a stored
/// object deeper than its parser accepts, and JSON patch can build one (`add` of a deep value at
/// a deep path), so results are held to the same limit as bodies.
pub const MAX_NESTING_DEPTH: usize = 127;

/// Most operations one JSON patch may hold (`maxJSONPatchOperations` in the apiserver's
/// patch handler); more is answered with 413.
pub const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;

/// Most bytes the `copy` operations of one JSON patch may add, summed over the patch
/// (kube-apiserver's default `JSONPatchMaxCopyBytes`). Without it, a few dozen copies that each
/// double the document would exhaust memory.
pub const MAX_JSON_PATCH_COPY_BYTES: usize = 3 * 1024 * 1024;

const DIRECTIVE_MARKER: &str = "$patch";
const RETAIN_KEYS_DIRECTIVE: &str = "$retainKeys";
const SET_ELEMENT_ORDER_PREFIX: &str = "$setElementOrder";
const DELETE_FROM_PRIMITIVE_LIST_PREFIX: &str = "$deleteFromPrimitiveList";

/// The four PATCH media types kube-apiserver accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PatchType {
    /// `application/json-patch+json` (RFC 6902).
    Json,
    /// `application/merge-patch+json` (RFC 7386).
    Merge,
    /// `application/strategic-merge-patch+json`.
    StrategicMerge,
    /// `application/apply-patch+yaml`: server-side apply of a whole configuration, done by
    /// the store with managed fields ([`crate::meta::managed_fields::apply`]), not by
    /// [`apply_patch`].
    Apply,
}

impl PatchType {
    /// Recognises a `Content-Type` header value. Parameters after `;` (such as `charset`) and
    /// letter case are ignored, as the apiserver's media-type negotiation ignores them.
    pub fn from_content_type(ct: &str) -> Option<PatchType> {
        let media = ct.split(';').next().unwrap_or_default().trim();
        if media.eq_ignore_ascii_case("application/json-patch+json") {
            Some(PatchType::Json)
        } else if media.eq_ignore_ascii_case("application/merge-patch+json") {
            Some(PatchType::Merge)
        } else if media.eq_ignore_ascii_case("application/strategic-merge-patch+json") {
            Some(PatchType::StrategicMerge)
        } else if media.eq_ignore_ascii_case("application/apply-patch+yaml") {
            Some(PatchType::Apply)
        } else {
            None
        }
    }

    /// The media type, as listed in a 415 answer's list of supported types.
    pub fn content_type(self) -> &'static str {
        match self {
            PatchType::Json => "application/json-patch+json",
            PatchType::Merge => "application/merge-patch+json",
            PatchType::StrategicMerge => "application/strategic-merge-patch+json",
            PatchType::Apply => "application/apply-patch+yaml",
        }
    }
}

/// Why a patch could not be applied. [`PatchError::status_code`] gives the HTTP status
/// kube-apiserver answers with for the same failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The body is not JSON, or not of the shape its patch type needs (an operation array for
    /// JSON patch, an object for the merge patches).
    #[error("{0}")]
    MalformedBody(String),
    /// The body, the original object or the patched result nests arrays and objects deeper
    /// than `limit` levels.
    #[error("the document nests deeper than the limit of {limit} levels")]
    TooDeep { limit: usize },
    /// A JSON patch with more operations than the apiserver allows.
    #[error("the allowed maximum operations in a JSON patch is {limit}, got {got}")]
    TooManyOperations { limit: usize, got: usize },
    /// A JSON patch operation did not apply: a failed `test`, a path that does not exist, an
    /// index out of range, an unknown `op`.
    #[error("{0}")]
    OperationFailed(String),
    /// The `copy` operations of a JSON patch added more than [`MAX_JSON_PATCH_COPY_BYTES`].
    #[error("unable to complete the copy, the accumulated size increase of copy is {accumulated}, exceeding the limit {limit}")]
    CopyLimitExceeded { accumulated: usize, limit: usize },
    /// A strategic merge patch directive (`$retainKeys`, `$setElementOrder/…`,
    /// `$deleteFromPrimitiveList/…`) is malformed, or the patch sets a field its `$retainKeys`
    /// list does not name.
    #[error("{0}")]
    InvalidDirective(String),
    /// A list to be merged holds lists.
    #[error("lists of lists are not supported")]
    ListOfLists,
    /// Any other strategic merge failure: a list element without its merge key, an unknown
    /// `$patch` value, elements of mixed types, a `$setElementOrder` list that contradicts the
    /// patch.
    #[error("{0}")]
    Strategic(String),
}

impl PatchError {
    /// The HTTP status kube-apiserver v1.32 answers with for this failure.
    ///
    /// Malformed bodies and malformed directives are 400 Bad Request; operations that do not
    /// apply are 422 Unprocessable Entity; an over-long JSON patch is 413.
    ///
    /// Deviation: upstream's `interpretStrategicMergePatchError` passes the remaining strategic
    /// merge errors (unknown `$patch` value, missing merge key, mixed element types) through
    /// unwrapped, so kube-apiserver answers them with 500 and an empty reason. They are the
    /// client's fault, not the server's, so rkube answers 400 Bad Request with the same message,
    /// the code upstream gives the other malformed-directive errors; a 500 is kept for rkube's
    /// own faults.
    pub fn status_code(&self) -> u16 {
        match self {
            PatchError::MalformedBody(_)
            | PatchError::TooDeep { .. }
            | PatchError::InvalidDirective(_)
            | PatchError::Strategic(_) => 400,
            PatchError::TooManyOperations { .. } => 413,
            PatchError::OperationFailed(_)
            | PatchError::CopyLimitExceeded { .. }
            | PatchError::ListOfLists => 422,
        }
    }
}

/// How a list-valued field is combined with the list in a strategic merge patch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ListStrategy {
    /// The patch's list replaces the whole list: the default for fields without a
    /// `patchStrategy` tag (tolerations, command, args, …).
    #[default]
    Atomic,
    /// `patchStrategy:"merge"` on a list of scalars: a set-like union without duplicates,
    /// with `$deleteFromPrimitiveList/<field>` to remove entries (finalizers, podCIDRs).
    MergePrimitives,
    /// `patchStrategy:"merge"` with `patchMergeKey`: elements are objects matched by the value of
    /// that key and merged one by one (containers by `name`, ports by `containerPort`).
    MergeByKey(String),
}

impl ListStrategy {
    fn is_merge(&self) -> bool {
        !matches!(self, ListStrategy::Atomic)
    }

    fn merge_key(&self) -> Option<&str> {
        match self {
            ListStrategy::MergeByKey(key) => Some(key),
            _ => None,
        }
    }
}

/// Patch metadata of one field: its list strategy (if it is a list), whether it carries the
/// `retainKeys` strategy, and the metadata of its own fields (for a list: of its elements').
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct FieldNode {
    list: ListStrategy,
    retain_keys: bool,
    /// Server-side apply's list-map-keys where they differ from the strategic merge key
    /// (`+listMapKey` tags naming more or other fields than `patchMergeKey`).
    list_map_keys: Option<Vec<String>>,
    /// Server-side apply treats this list or map as one value (`+listType=atomic`,
    /// `+mapType=atomic`, `+structType=atomic`) whatever its strategic merge tags say.
    atomic: bool,
    /// The value server-side apply gives this field of a list item when the item leaves it
    /// out (a list-map key's OpenAPI default, such as a port's `protocol`).
    default: Option<Value>,
    fields: BTreeMap<String, FieldNode>,
}

impl FieldNode {
    fn graft(&mut self, other: &FieldNode) {
        if other.list.is_merge() {
            self.list = other.list.clone();
        }
        self.retain_keys |= other.retain_keys;
        self.atomic |= other.atomic;
        if other.default.is_some() {
            self.default.clone_from(&other.default);
        }
        if other.list_map_keys.is_some() {
            self.list_map_keys.clone_from(&other.list_map_keys);
        }
        for (name, node) in &other.fields {
            self.fields.entry(name.clone()).or_default().graft(node);
        }
    }
}

/// How server-side apply and managed fields see a list (upstream's `x-kubernetes-list-type`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListType {
    /// One value: owned, compared and replaced whole.
    Atomic,
    /// A set of scalars: each value is owned on its own (`v:"x"` in FieldsV1).
    Set,
    /// An associative list: each element is owned by the values of these keys
    /// (`k:{"name":"c"}` in FieldsV1).
    Map(Vec<String>),
}

/// Per-kind structural metadata: the `patchStrategy` / `patchMergeKey` struct tags of the
/// kind's Go types for strategic merge patch, and the list types (`listType`, `listMapKey`,
/// atomic maps) server-side apply and managed fields read, as a tree of field paths.
///
/// Paths are dotted field names from the object's root (`spec.containers.env`); a segment after
/// a list field names a field of that list's elements. Fields not described behave as upstream
/// treats untagged fields: objects merge key by key, lists are replaced whole. Server-side
/// apply sees a merged list of scalars as a set and a list merged by a key as a map keyed by
/// it, unless [`PatchSchema::list_map_keys`] or [`PatchSchema::atomic`] says otherwise, as
/// upstream's OpenAPI conversion reads the same tags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PatchSchema {
    root: FieldNode,
    /// The kind's empty object as upstream's typed Go value encodes it (`New()` of the kind):
    /// what a create is compared with when managed fields are computed.
    zero: Option<Value>,
}

/// A position in a [`PatchSchema`]: the metadata of one field (none when undescribed).
#[derive(Debug, Clone, Copy)]
pub struct SchemaNode<'a>(Option<&'a FieldNode>);

impl<'a> SchemaNode<'a> {
    /// The metadata of the field `name` of this object (or of this list's elements).
    pub fn child(self, name: &str) -> SchemaNode<'a> {
        SchemaNode(self.0.and_then(|n| n.fields.get(name)))
    }

    /// How server-side apply treats this field when it is a list.
    pub fn list_type(self) -> ListType {
        let Some(node) = self.0 else {
            return ListType::Atomic;
        };
        if node.atomic {
            return ListType::Atomic;
        }
        if let Some(keys) = &node.list_map_keys {
            return ListType::Map(keys.clone());
        }
        match &node.list {
            ListStrategy::Atomic => ListType::Atomic,
            ListStrategy::MergePrimitives => ListType::Set,
            ListStrategy::MergeByKey(key) => ListType::Map(vec![key.clone()]),
        }
    }

    /// The default server-side apply gives this field when an item leaves it out.
    pub fn default_value(self) -> Option<&'a Value> {
        self.0.and_then(|n| n.default.as_ref())
    }

    /// Whether server-side apply treats this field, when it is a map, as one value.
    pub fn is_atomic_map(self) -> bool {
        self.0.is_some_and(|n| n.atomic)
    }
}

impl PatchSchema {
    /// A schema with no metadata: every list is atomic.
    pub fn new() -> Self {
        Self::default()
    }

    /// Marks the list at `path` as merged element-wise, matching elements by `merge_key`.
    pub fn merge_list(mut self, path: &str, merge_key: &str) -> Self {
        self.node_mut(path).list = ListStrategy::MergeByKey(merge_key.to_string());
        self
    }

    /// Marks the list of scalars at `path` as merged like a set.
    pub fn merge_primitive_list(mut self, path: &str) -> Self {
        self.node_mut(path).list = ListStrategy::MergePrimitives;
        self
    }

    /// Marks the field at `path` as carrying the `retainKeys` strategy (a union such as a
    /// Volume's source), so that clients computing patches send `$retainKeys` for it.
    pub fn retain_keys(mut self, path: &str) -> Self {
        self.node_mut(path).retain_keys = true;
        self
    }

    /// Gives the list at `path` server-side apply's list-map-keys where they differ from its
    /// strategic merge key (container ports: `containerPort` and `protocol`).
    pub fn list_map_keys(mut self, path: &str, keys: &[&str]) -> Self {
        self.node_mut(path).list_map_keys = Some(keys.iter().map(|k| k.to_string()).collect());
        self
    }

    /// Gives the list-map key field at `path` (e.g. `ports.protocol`) the default server-side
    /// apply fills in when an item leaves it out, so that `{"containerPort": 80}` and
    /// `{"containerPort": 80, "protocol": "TCP"}` name the same port.
    pub fn key_default(mut self, path: &str, value: Value) -> Self {
        self.node_mut(path).default = Some(value);
        self
    }

    /// Marks the list or map at `path` atomic for server-side apply (`+listType=atomic`,
    /// `+mapType=atomic`, `+structType=atomic`), whatever its strategic merge tags say.
    pub fn atomic(mut self, path: &str) -> Self {
        self.node_mut(path).atomic = true;
        self
    }

    /// Sets the kind's empty object as upstream's Go type encodes it (e.g. a Pod's
    /// `{"metadata":{"creationTimestamp":null},"spec":{"containers":null},"status":{}}`).
    pub fn zero_object(mut self, zero: Value) -> Self {
        self.zero = Some(zero);
        self
    }

    /// The kind's empty object; `{"metadata":{"creationTimestamp":null}}` unless set.
    pub fn zero(&self) -> Value {
        self.zero
            .clone()
            .unwrap_or_else(|| serde_json::json!({"metadata": {"creationTimestamp": null}}))
    }

    /// The metadata of the object's root, to walk an object with.
    pub fn root(&self) -> SchemaNode<'_> {
        SchemaNode(Some(&self.root))
    }

    /// Places the metadata of `sub` under `path`, e.g. a Pod's metadata under
    /// `spec.template` of a workload kind.
    pub fn graft(mut self, path: &str, sub: &PatchSchema) -> Self {
        self.node_mut(path).graft(&sub.root);
        self
    }

    /// Adds the ObjectMeta tags every kind has: `finalizers` (merge), `ownerReferences`
    /// (merge by `uid`).
    pub fn with_object_meta(self) -> Self {
        self.merge_primitive_list("metadata.finalizers")
            .merge_list("metadata.ownerReferences", "uid")
    }

    /// The list strategy recorded for `path`.
    pub fn list_strategy(&self, path: &str) -> ListStrategy {
        self.node(path).map(|n| n.list.clone()).unwrap_or_default()
    }

    /// Whether the field at `path` carries the `retainKeys` strategy.
    pub fn retains_keys(&self, path: &str) -> bool {
        self.node(path).is_some_and(|n| n.retain_keys)
    }

    /// Every field that carries a tag, with its dotted path, list strategy and `retainKeys`
    /// flag, in path order: the tags as published in the OpenAPI documents.
    pub fn tagged_fields(&self) -> Vec<(String, ListStrategy, bool)> {
        fn walk(node: &FieldNode, path: &str, out: &mut Vec<(String, ListStrategy, bool)>) {
            for (name, child) in &node.fields {
                let path = if path.is_empty() {
                    name.clone()
                } else {
                    format!("{path}.{name}")
                };
                if child.list.is_merge() || child.retain_keys {
                    out.push((path.clone(), child.list.clone(), child.retain_keys));
                }
                walk(child, &path, out);
            }
        }
        let mut out = Vec::new();
        walk(&self.root, "", &mut out);
        out
    }

    fn node(&self, path: &str) -> Option<&FieldNode> {
        path_segments(path).try_fold(&self.root, |node, seg| node.fields.get(seg))
    }

    fn node_mut(&mut self, path: &str) -> &mut FieldNode {
        let mut node = &mut self.root;
        for seg in path_segments(path) {
            node = node.fields.entry(seg.to_string()).or_default();
        }
        node
    }
}

fn path_segments(path: &str) -> impl Iterator<Item = &str> {
    path.split('.').filter(|s| !s.is_empty())
}

/// Patch metadata for kinds with nothing but ObjectMeta tags (Namespaces, Events, Leases, …).
pub fn generic_patch_schema() -> PatchSchema {
    PatchSchema::new().with_object_meta()
}

/// Applies `patch_body`, a PATCH request body of type `kind`, to `original` and returns the
/// patched object. `schema` is consulted for strategic merge patches only.
pub fn apply_patch(
    original: &Value,
    patch_body: &[u8],
    kind: PatchType,
    schema: &PatchSchema,
) -> Result<Value, PatchError> {
    check_depth(original)?;
    let patch: Value = serde_json::from_slice(patch_body).map_err(|e| {
        // serde_json reports its nesting limit as a syntax error; name it for what it is.
        if e.to_string().starts_with("recursion limit exceeded") {
            PatchError::TooDeep {
                limit: MAX_NESTING_DEPTH,
            }
        } else {
            PatchError::MalformedBody(format!("invalid JSON in patch body: {e}"))
        }
    })?;
    check_depth(&patch)?;
    let result = match kind {
        PatchType::Json => apply_json_patch(original, patch),
        PatchType::Merge => apply_merge_patch(original, patch),
        PatchType::StrategicMerge => apply_strategic_merge_patch(original, patch, schema),
        PatchType::Apply => Err(PatchError::MalformedBody(
            "an apply configuration is merged by server-side apply, not patched".into(),
        )),
    }?;
    check_depth(&result)?;
    Ok(result)
}

/// Refuses values nested deeper than [`MAX_NESTING_DEPTH`], walking them without recursion so
/// that the check itself cannot exhaust the stack. Everything after it recurses at most as deep
/// as its inputs, which this bounds.
fn check_depth(value: &Value) -> Result<(), PatchError> {
    let mut pending: Vec<(&Value, usize)> = vec![(value, 1)];
    while let Some((value, depth)) = pending.pop() {
        let children: &mut dyn Iterator<Item = &Value> = match value {
            Value::Array(items) => &mut items.iter(),
            Value::Object(members) => &mut members.values(),
            _ => continue,
        };
        if depth > MAX_NESTING_DEPTH {
            return Err(PatchError::TooDeep {
                limit: MAX_NESTING_DEPTH,
            });
        }
        pending.extend(
            children
                .filter(|c| c.is_array() || c.is_object())
                .map(|c| (c, depth + 1)),
        );
    }
    Ok(())
}

/// A short name of a JSON value's type for messages.
fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
pub(crate) mod tests {
    //! Helpers shared by every patch test (also the kinds' own, under `registry`).
    use super::*;
    pub(crate) use serde_json::json;

    pub(crate) fn patched(
        kind: PatchType,
        schema: &PatchSchema,
        original: Value,
        patch: Value,
    ) -> Value {
        let body = serde_json::to_vec(&patch).expect("a Value always serializes");
        match apply_patch(&original, &body, kind, schema) {
            Ok(result) => result,
            Err(e) => panic!("patch {patch} failed: {e}"),
        }
    }

    pub(crate) fn smp(schema: &PatchSchema, original: Value, patch: Value) -> Value {
        patched(PatchType::StrategicMerge, schema, original, patch)
    }

    pub(crate) fn smp_err(schema: &PatchSchema, original: Value, patch: Value) -> PatchError {
        let body = serde_json::to_vec(&patch).expect("a Value always serializes");
        match apply_patch(&original, &body, PatchType::StrategicMerge, schema) {
            Ok(result) => panic!("patch {patch} unexpectedly gave {result}"),
            Err(e) => e,
        }
    }

    pub(crate) fn pod() -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "web",
                "namespace": "default",
                "labels": {"app": "web", "tier": "frontend"},
                "finalizers": ["a.example.com/x", "b.example.com/y"]
            },
            "spec": {
                "containers": [
                    {
                        "name": "app",
                        "image": "nginx:1.25",
                        "ports": [{"containerPort": 80, "protocol": "TCP"}],
                        "env": [{"name": "MODE", "value": "prod"}, {"name": "DEBUG", "value": "0"}]
                    },
                    {"name": "sidecar", "image": "envoy:1.0"}
                ],
                "volumes": [{"name": "data", "emptyDir": {}}],
                "tolerations": [
                    {"key": "a", "operator": "Exists"},
                    {"key": "b", "operator": "Exists"}
                ]
            }
        })
    }

    pub(crate) fn container_names(pod: &Value) -> Vec<&str> {
        pod["spec"]["containers"]
            .as_array()
            .map(|cs| cs.iter().filter_map(|c| c["name"].as_str()).collect())
            .unwrap_or_default()
    }

    /// Tears a value down without recursion, so that very deep test values can be dropped on
    /// a test thread's small stack.
    pub(crate) fn dismantle(value: Value) {
        let mut pending = vec![value];
        while let Some(value) = pending.pop() {
            match value {
                Value::Array(items) => pending.extend(items),
                Value::Object(members) => pending.extend(members.into_iter().map(|(_, v)| v)),
                _ => {}
            }
        }
    }

    // --- content types ----------------------------------------------------------------------

    #[test]
    fn content_types_map_to_patch_types_ignoring_parameters_and_case() {
        let cases = [
            ("application/json-patch+json", Some(PatchType::Json)),
            ("application/merge-patch+json", Some(PatchType::Merge)),
            (
                "application/strategic-merge-patch+json",
                Some(PatchType::StrategicMerge),
            ),
            (
                "application/strategic-merge-patch+json; charset=utf-8",
                Some(PatchType::StrategicMerge),
            ),
            ("Application/Merge-Patch+JSON", Some(PatchType::Merge)),
            ("application/apply-patch+yaml", Some(PatchType::Apply)),
            (
                "application/apply-patch+yaml; charset=utf-8",
                Some(PatchType::Apply),
            ),
            ("application/json", None),
            ("", None),
        ];
        for (ct, want) in cases {
            assert_eq!(
                PatchType::from_content_type(ct),
                want,
                "content type {ct:?}"
            );
            if let Some(kind) = want {
                assert_eq!(
                    PatchType::from_content_type(kind.content_type()),
                    Some(kind)
                );
            }
        }
    }

    // --- bodies and depth ---------------------------------------------------------------------

    #[test]
    fn malformed_bodies_are_errors_for_every_patch_type() {
        for kind in [PatchType::Json, PatchType::Merge, PatchType::StrategicMerge] {
            for body in [&b"{"[..], b"", b"{\"a\":}", b"\xff\xfe", b"[1,]"] {
                let err = apply_patch(&pod(), body, kind, &generic_patch_schema())
                    .expect_err("malformed body");
                assert!(
                    matches!(err, PatchError::MalformedBody(_)),
                    "{kind:?}: {err:?}"
                );
                assert_eq!(err.status_code(), 400);
            }
        }
    }

    #[test]
    fn deeply_nested_patch_body_is_an_error_not_a_stack_overflow() {
        let depth = 20_000;
        let mut body = "{\"a\":".repeat(depth);
        body.push('1');
        body.push_str(&"}".repeat(depth));
        for kind in [PatchType::Json, PatchType::Merge, PatchType::StrategicMerge] {
            let err = apply_patch(&pod(), body.as_bytes(), kind, &generic_patch_schema())
                .expect_err("too deep");
            assert!(
                matches!(err, PatchError::TooDeep { .. }),
                "{kind:?}: {err:?}"
            );
        }
        let arrays = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let err = apply_patch(
            &pod(),
            arrays.as_bytes(),
            PatchType::Json,
            &PatchSchema::new(),
        )
        .expect_err("too deep");
        assert!(matches!(err, PatchError::TooDeep { .. }), "{err:?}");
    }

    #[test]
    fn deeply_nested_original_is_an_error_not_a_stack_overflow() {
        let mut deep = json!(1);
        for _ in 0..20_000 {
            let mut members = Object::new();
            members.insert("a".into(), deep);
            deep = Value::Object(members);
        }
        for kind in [PatchType::Json, PatchType::Merge, PatchType::StrategicMerge] {
            let body: &[u8] = if kind == PatchType::Json {
                b"[]"
            } else {
                b"{}"
            };
            let err = apply_patch(&deep, body, kind, &PatchSchema::new()).expect_err("too deep");
            assert_eq!(
                err,
                PatchError::TooDeep {
                    limit: MAX_NESTING_DEPTH
                }
            );
        }
        dismantle(deep);
    }

    #[test]
    fn moderately_nested_documents_still_patch() {
        let depth = MAX_NESTING_DEPTH;
        let mut body = "{\"a\":".repeat(depth);
        body.push('1');
        body.push_str(&"}".repeat(depth));
        let out = apply_patch(
            &json!({}),
            body.as_bytes(),
            PatchType::StrategicMerge,
            &PatchSchema::new(),
        )
        .expect("within the parser's limit");
        assert_eq!(out.to_string(), body);
    }

    #[test]
    fn json_patch_result_deeper_than_the_limit_is_refused() {
        let nested = |levels: usize| -> Value {
            let mut value = json!(1);
            for _ in 0..levels {
                value = json!({ "a": value });
            }
            value
        };
        let half = MAX_NESTING_DEPTH / 2 + 1;
        let path = "/a".repeat(half - 1);
        let ops = json!([{"op": "add", "path": format!("{path}/b"), "value": nested(half)}]);
        let body = serde_json::to_vec(&ops).expect("a Value always serializes");
        let err = apply_patch(&nested(half), &body, PatchType::Json, &PatchSchema::new())
            .expect_err("result too deep");
        assert_eq!(
            err,
            PatchError::TooDeep {
                limit: MAX_NESTING_DEPTH
            }
        );
    }

    // --- schema --------------------------------------------------------------------------------

    #[test]
    fn the_generic_schema_carries_object_meta_tags_only() {
        let generic = generic_patch_schema();
        assert_eq!(
            generic.list_strategy("metadata.finalizers"),
            ListStrategy::MergePrimitives
        );
        assert_eq!(
            generic.list_strategy("metadata.ownerReferences"),
            ListStrategy::MergeByKey("uid".into())
        );
        assert_eq!(
            generic.list_strategy("spec.containers"),
            ListStrategy::Atomic
        );
    }
}
