//! PATCH for the API server: applies JSON patch, JSON merge patch and strategic merge patch
//! bodies to stored objects the way kube-apiserver v1.32 does.
//!
//! kube-apiserver accepts three patch media types on `PATCH` (server-side apply is a separate
//! mechanism and is not handled here):
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

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;

use serde_json::{Map, Value};

type Object = Map<String, Value>;

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

/// The three PATCH media types kube-apiserver accepts besides server-side apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PatchType {
    /// `application/json-patch+json` (RFC 6902).
    Json,
    /// `application/merge-patch+json` (RFC 7386).
    Merge,
    /// `application/strategic-merge-patch+json`.
    StrategicMerge,
}

impl PatchType {
    /// Recognises a `Content-Type` header value. Parameters after `;` (such as `charset`) and
    /// letter case are ignored, as the apiserver's media-type negotiation ignores them.
    /// `application/apply-patch+yaml` (server-side apply) is not one of these and gives `None`.
    pub fn from_content_type(ct: &str) -> Option<PatchType> {
        let media = ct.split(';').next().unwrap_or_default().trim();
        if media.eq_ignore_ascii_case("application/json-patch+json") {
            Some(PatchType::Json)
        } else if media.eq_ignore_ascii_case("application/merge-patch+json") {
            Some(PatchType::Merge)
        } else if media.eq_ignore_ascii_case("application/strategic-merge-patch+json") {
            Some(PatchType::StrategicMerge)
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
    fields: BTreeMap<String, FieldNode>,
}

impl FieldNode {
    fn graft(&mut self, other: &FieldNode) {
        if other.list.is_merge() {
            self.list = other.list.clone();
        }
        self.retain_keys |= other.retain_keys;
        for (name, node) in &other.fields {
            self.fields.entry(name.clone()).or_default().graft(node);
        }
    }
}

/// Per-kind strategic merge metadata: the `patchStrategy` / `patchMergeKey` struct tags of the
/// kind's Go types, as a tree of field paths.
///
/// Paths are dotted field names from the object's root (`spec.containers.env`); a segment after
/// a list field names a field of that list's elements. Fields not described behave as upstream
/// treats untagged fields: objects merge key by key, lists are replaced whole.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PatchSchema {
    root: FieldNode,
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

/// Patch metadata for Namespaces: ObjectMeta plus `status.conditions` merged by `type`.
pub fn namespace_patch_schema() -> PatchSchema {
    generic_patch_schema().merge_list("status.conditions", "type")
}

/// Container tags, shared by `containers`, `initContainers` and `ephemeralContainers`
/// (`Container` and `EphemeralContainerCommon` in core/v1 carry the same ones).
fn container_schema() -> PatchSchema {
    PatchSchema::new()
        .merge_list("ports", "containerPort")
        .merge_list("env", "name")
        .merge_list("volumeMounts", "mountPath")
        .merge_list("volumeDevices", "devicePath")
}

/// Patch metadata for a PodSpec at the root, for grafting under `spec.template.spec` and the
/// like. Tags as in core/v1 `PodSpec` of Kubernetes 1.32; `tolerations`, `readinessGates` and
/// the lists inside affinity and security contexts have none and are atomic.
pub fn pod_spec_patch_schema() -> PatchSchema {
    let container = container_schema();
    PatchSchema::new()
        .merge_list("volumes", "name")
        .retain_keys("volumes")
        .merge_list("initContainers", "name")
        .graft("initContainers", &container)
        .merge_list("containers", "name")
        .graft("containers", &container)
        .merge_list("ephemeralContainers", "name")
        .graft("ephemeralContainers", &container)
        .merge_list("imagePullSecrets", "name")
        .merge_list("hostAliases", "ip")
        .merge_list("topologySpreadConstraints", "topologyKey")
        .merge_list("resourceClaims", "name")
        .retain_keys("resourceClaims")
        .merge_list("schedulingGates", "name")
}

/// Patch metadata for Pods: ObjectMeta, PodSpec and PodStatus tags. Also fits a
/// PodTemplateSpec when grafted at `spec.template` (the `status` part then goes unused).
pub fn pod_patch_schema() -> PatchSchema {
    generic_patch_schema()
        .graft("spec", &pod_spec_patch_schema())
        .merge_list("status.conditions", "type")
        .merge_list("status.podIPs", "ip")
        .merge_list("status.hostIPs", "ip")
        .merge_list("status.resourceClaimStatuses", "name")
        .retain_keys("status.resourceClaimStatuses")
}

/// Patch metadata for Nodes: ObjectMeta, `spec.podCIDRs` (merge), `status.conditions` and
/// `status.addresses` (both merged by `type`). `spec.taints` has no tag and is atomic.
pub fn node_patch_schema() -> PatchSchema {
    generic_patch_schema()
        .merge_primitive_list("spec.podCIDRs")
        .merge_list("status.conditions", "type")
        .merge_list("status.addresses", "type")
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

// ---------------------------------------------------------------------------------------------
// JSON merge patch (RFC 7386)
// ---------------------------------------------------------------------------------------------

/// RFC 7386. The body must be an object (upstream rejects `null` and scalars as an invalid
/// patch, and a top-level array could never decode as an object). Nulls inside values that are
/// added rather than merged are dropped, as `evanphx/json-patch` prunes them.
fn apply_merge_patch(original: &Value, patch: Value) -> Result<Value, PatchError> {
    let Value::Object(patch) = patch else {
        return Err(PatchError::MalformedBody(format!(
            "invalid JSON patch: a merge patch must be a JSON object, not {}",
            json_type(&patch)
        )));
    };
    let mut target = match original {
        Value::Object(members) => members.clone(),
        _ => Object::new(),
    };
    merge_patch_object(&mut target, patch);
    Ok(Value::Object(target))
}

fn merge_patch_object(target: &mut Object, patch: Object) {
    for (key, value) in patch {
        match value {
            Value::Null => {
                target.shift_remove(&key);
            }
            Value::Object(inner) => match target.get_mut(&key) {
                Some(Value::Object(existing)) => merge_patch_object(existing, inner),
                _ => {
                    let mut fresh = Object::new();
                    merge_patch_object(&mut fresh, inner);
                    target.insert(key, Value::Object(fresh));
                }
            },
            other => {
                target.insert(key, without_null_members(other));
            }
        }
    }
}

/// Drops `null` members of objects anywhere inside `value`; `null` elements of arrays stay,
/// as upstream's pruning keeps them.
fn without_null_members(value: Value) -> Value {
    match value {
        Value::Object(members) => Value::Object(
            members
                .into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, without_null_members(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(without_null_members).collect()),
        other => other,
    }
}

// ---------------------------------------------------------------------------------------------
// JSON patch (RFC 6902)
// ---------------------------------------------------------------------------------------------

/// RFC 6902, with the apiserver's limits: at most [`MAX_JSON_PATCH_OPERATIONS`] operations and
/// [`MAX_JSON_PATCH_COPY_BYTES`] added by `copy`. Operations apply in order to a copy of the
/// original; the first that fails fails the whole patch.
fn apply_json_patch(original: &Value, patch: Value) -> Result<Value, PatchError> {
    let Value::Array(operations) = patch else {
        return Err(PatchError::MalformedBody(format!(
            "invalid JSON patch: expected an array of operations, not {}",
            json_type(&patch)
        )));
    };
    if operations.len() > MAX_JSON_PATCH_OPERATIONS {
        return Err(PatchError::TooManyOperations {
            limit: MAX_JSON_PATCH_OPERATIONS,
            got: operations.len(),
        });
    }
    let mut doc = original.clone();
    let mut copied_bytes = 0usize;
    for (index, operation) in operations.into_iter().enumerate() {
        let Value::Object(operation) = operation else {
            return Err(PatchError::MalformedBody(format!(
                "invalid JSON patch: operation {index} is {}, not an object",
                json_type(&operation)
            )));
        };
        apply_operation(&mut doc, operation, &mut copied_bytes)?;
    }
    Ok(doc)
}

fn op_failed(message: String) -> PatchError {
    PatchError::OperationFailed(message)
}

fn pointer_field(op: &Object, name: &str, kind: &str) -> Result<Vec<String>, PatchError> {
    match op.get(name) {
        Some(Value::String(pointer)) => parse_pointer(pointer)
            .map_err(|e| op_failed(format!("{kind} operation has an invalid {name}: {e}"))),
        Some(other) => Err(op_failed(format!(
            "{kind} operation has a {} {name}, expected a string",
            json_type(other)
        ))),
        None => Err(op_failed(format!("{kind} operation missing {name} field"))),
    }
}

fn apply_operation(
    doc: &mut Value,
    mut op: Object,
    copied_bytes: &mut usize,
) -> Result<(), PatchError> {
    let kind = match op.get("op") {
        Some(Value::String(kind)) => kind.clone(),
        _ => "unknown".to_string(),
    };
    let path_text = op
        .get("path")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    match kind.as_str() {
        "add" => {
            let path = pointer_field(&op, "path", &kind)?;
            let value = take_value(&mut op, &kind)?;
            pointer_add(doc, &path, value).map_err(|e| {
                op_failed(format!(
                    "add operation does not apply: doc is missing path: \"{path_text}\": {e}"
                ))
            })
        }
        "remove" => {
            let path = pointer_field(&op, "path", &kind)?;
            pointer_remove(doc, &path).map(drop).map_err(|e| {
                op_failed(format!(
                    "remove operation does not apply: doc is missing path: \"{path_text}\": {e}"
                ))
            })
        }
        "replace" => {
            let path = pointer_field(&op, "path", &kind)?;
            let value = take_value(&mut op, &kind)?;
            match pointer_get_mut(doc, &path) {
                Some(slot) => {
                    *slot = value;
                    Ok(())
                }
                None => Err(op_failed(format!(
                    "replace operation does not apply: doc is missing key: {path_text}: missing value"
                ))),
            }
        }
        "move" => {
            let from = pointer_field(&op, "from", &kind)?;
            let path = pointer_field(&op, "path", &kind)?;
            if path.len() > from.len() && path.starts_with(&from) {
                return Err(op_failed(format!(
                    "move operation does not apply: from path is a parent of path \"{path_text}\""
                )));
            }
            let value = pointer_remove(doc, &from).map_err(|e| {
                op_failed(format!(
                    "move operation does not apply: doc is missing from path: {}: {e}",
                    op.get("from").and_then(Value::as_str).unwrap_or_default()
                ))
            })?;
            pointer_add(doc, &path, value).map_err(|e| {
                op_failed(format!(
                    "move operation does not apply: doc is missing destination path: {path_text}: {e}"
                ))
            })
        }
        "copy" => {
            let from = pointer_field(&op, "from", &kind)?;
            let path = pointer_field(&op, "path", &kind)?;
            let value = pointer_get(doc, &from).ok_or_else(|| {
                op_failed(format!(
                    "copy operation does not apply: doc is missing from path: {}: missing value",
                    op.get("from").and_then(Value::as_str).unwrap_or_default()
                ))
            })?;
            charge_copy(value, copied_bytes)?;
            let value = value.clone();
            pointer_add(doc, &path, value).map_err(|e| {
                op_failed(format!(
                    "copy operation does not apply: doc is missing destination path: {path_text}: {e}"
                ))
            })
        }
        "test" => {
            let path = pointer_field(&op, "path", &kind)?;
            let expected = take_value(&mut op, &kind)?;
            match pointer_get(doc, &path) {
                Some(actual) if json_equal(actual, &expected) => Ok(()),
                Some(_) => Err(op_failed(format!(
                    "testing value {path_text} failed: test failed"
                ))),
                None => Err(op_failed(format!(
                    "test operation does not apply: is missing path: {path_text}: missing value"
                ))),
            }
        }
        other => Err(op_failed(format!("unexpected kind: {other}"))),
    }
}

fn take_value(op: &mut Object, kind: &str) -> Result<Value, PatchError> {
    op.shift_remove("value")
        .ok_or_else(|| op_failed(format!("{kind} operation missing value field")))
}

/// Adds the serialized size of `value` to the patch's copy total, failing once the total
/// passes [`MAX_JSON_PATCH_COPY_BYTES`]. Serialization stops as soon as the budget is spent,
/// so a huge value costs no more than the budget to measure.
fn charge_copy(value: &Value, copied_bytes: &mut usize) -> Result<(), PatchError> {
    struct Meter {
        written: usize,
        budget: usize,
    }
    impl io::Write for Meter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.written = self.written.saturating_add(buf.len());
            if self.written > self.budget {
                Err(io::Error::other("copy budget spent"))
            } else {
                Ok(buf.len())
            }
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut meter = Meter {
        written: 0,
        budget: MAX_JSON_PATCH_COPY_BYTES.saturating_sub(*copied_bytes),
    };
    let fits = serde_json::to_writer(&mut meter, value).is_ok();
    *copied_bytes = copied_bytes.saturating_add(meter.written);
    if fits {
        Ok(())
    } else {
        Err(PatchError::CopyLimitExceeded {
            accumulated: *copied_bytes,
            limit: MAX_JSON_PATCH_COPY_BYTES,
        })
    }
}

/// Splits an RFC 6901 pointer into unescaped reference tokens (`~1` is `/`, `~0` is `~`).
fn parse_pointer(pointer: &str) -> Result<Vec<String>, String> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err(format!("JSON pointer {pointer:?} does not start with '/'"));
    };
    rest.split('/')
        .map(|token| {
            let mut out = String::with_capacity(token.len());
            let mut chars = token.chars();
            while let Some(c) = chars.next() {
                if c != '~' {
                    out.push(c);
                    continue;
                }
                match chars.next() {
                    Some('0') => out.push('~'),
                    Some('1') => out.push('/'),
                    _ => {
                        return Err(format!(
                            "JSON pointer {pointer:?} has an invalid '~' escape"
                        ))
                    }
                }
            }
            Ok(out)
        })
        .collect()
}

/// An RFC 6901 array index: `0` or digits without a leading zero.
fn array_index(token: &str) -> Option<usize> {
    let digits_only = !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit());
    if !digits_only || (token.len() > 1 && token.starts_with('0')) {
        return None;
    }
    token.parse().ok()
}

fn pointer_get<'a>(doc: &'a Value, tokens: &[String]) -> Option<&'a Value> {
    tokens.iter().try_fold(doc, |node, token| match node {
        Value::Object(members) => members.get(token),
        Value::Array(items) => items.get(array_index(token)?),
        _ => None,
    })
}

fn pointer_get_mut<'a>(doc: &'a mut Value, tokens: &[String]) -> Option<&'a mut Value> {
    tokens.iter().try_fold(doc, |node, token| match node {
        Value::Object(members) => members.get_mut(token),
        Value::Array(items) => items.get_mut(array_index(token)?),
        _ => None,
    })
}

/// RFC 6902 `add`: sets an object member, inserts before an array index (`-` or the length
/// appends), or with the empty pointer replaces the whole document.
fn pointer_add(doc: &mut Value, tokens: &[String], value: Value) -> Result<(), String> {
    let Some((last, parent_path)) = tokens.split_last() else {
        *doc = value;
        return Ok(());
    };
    match pointer_get_mut(doc, parent_path) {
        Some(Value::Object(members)) => {
            members.insert(last.clone(), value);
            Ok(())
        }
        Some(Value::Array(items)) => {
            if last == "-" {
                items.push(value);
                return Ok(());
            }
            match array_index(last) {
                Some(index) if index <= items.len() => {
                    items.insert(index, value);
                    Ok(())
                }
                _ => Err(format!("invalid index referenced: {last}")),
            }
        }
        Some(_) | None => Err("missing value".to_string()),
    }
}

/// RFC 6902 `remove`, returning what was removed (for `move`). Removing the whole document is
/// not possible.
fn pointer_remove(doc: &mut Value, tokens: &[String]) -> Result<Value, String> {
    let Some((last, parent_path)) = tokens.split_last() else {
        return Err("the whole document cannot be removed".to_string());
    };
    match pointer_get_mut(doc, parent_path) {
        Some(Value::Object(members)) => members
            .shift_remove(last)
            .ok_or_else(|| format!("unable to remove nonexistent key: {last}: missing value")),
        Some(Value::Array(items)) => match array_index(last) {
            Some(index) if index < items.len() => Ok(items.remove(index)),
            _ => Err(format!("invalid index referenced: {last}")),
        },
        Some(_) | None => Err("missing value".to_string()),
    }
}

/// JSON equality for `test`: numbers compare by value (`1` equals `1.0`, as Go's decoder makes
/// both float64 upstream), objects regardless of member order.
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
                x == y
            } else if let (Some(x), Some(y)) = (x.as_u64(), y.as_u64()) {
                x == y
            } else {
                x.as_f64() == y.as_f64()
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_equal(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

// ---------------------------------------------------------------------------------------------
// Strategic merge patch
// ---------------------------------------------------------------------------------------------

/// Applies a strategic merge patch the way `strategicpatch.StrategicMergeMapPatch` does on the
/// server (parallel lists merged, unmatched nulls ignored).
fn apply_strategic_merge_patch(
    original: &Value,
    patch: Value,
    schema: &PatchSchema,
) -> Result<Value, PatchError> {
    let Value::Object(patch) = patch else {
        return Err(PatchError::MalformedBody(format!(
            "invalid patch: a strategic merge patch must be a JSON object, not {}",
            json_type(&patch)
        )));
    };
    let base = match original {
        Value::Object(members) => members.clone(),
        _ => Object::new(),
    };
    merge_map(base, patch, Some(&schema.root)).map(Value::Object)
}

fn child<'a>(node: Option<&'a FieldNode>, field: &str) -> Option<&'a FieldNode> {
    node.and_then(|n| n.fields.get(field))
}

fn strategy_of(node: Option<&FieldNode>) -> &ListStrategy {
    const ATOMIC: &ListStrategy = &ListStrategy::Atomic;
    node.map_or(ATOMIC, |n| &n.list)
}

/// The field a `$setElementOrder/<field>` or `$deleteFromPrimitiveList/<field>` key names:
/// whatever follows the first `/`, provided what precedes it is exactly the prefix.
fn directive_target<'a>(key: &'a str, prefix: &str) -> Option<&'a str> {
    key.split_once('/')
        .and_then(|(head, field)| (head == prefix).then_some(field))
}

/// A map as Go's `%v` prints a `map[string]interface{}` in upstream's error messages:
/// `map[k1:v1 k2:v2]`, keys sorted.
fn map_json(map: &Object) -> String {
    go_value(&Value::Object(map.clone()))
}

/// A list as Go's `%v` prints a `[]interface{}`: `[a b c]`.
fn list_json(list: &[Value]) -> String {
    go_value(&Value::Array(list.to_vec()))
}

/// Go's `%v` of a decoded JSON value: strings bare, `null` as `<nil>`, lists space-separated in
/// brackets, maps as `map[key:value ...]` with sorted keys.
pub fn go_value(value: &Value) -> String {
    match value {
        Value::Null => "<nil>".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let shown: Vec<String> = items.iter().map(go_value).collect();
            format!("[{}]", shown.join(" "))
        }
        Value::Object(members) => {
            let mut keys: Vec<&String> = members.keys().collect();
            keys.sort();
            let shown: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{k}:{}", go_value(&members[k])))
                .collect();
            format!("map[{}]", shown.join(" "))
        }
    }
}

fn no_merge_key(element: &Object, merge_key: &str) -> PatchError {
    PatchError::Strategic(format!(
        "map: {} does not contain declared merge key: {merge_key}",
        map_json(element)
    ))
}

fn unknown_patch_type(directive: &Value, map: &Object) -> PatchError {
    let shown = directive
        .as_str()
        .map_or_else(|| directive.to_string(), str::to_string);
    PatchError::Strategic(format!(
        "unknown patch type: {shown} in map: {}",
        map_json(map)
    ))
}

/// Merges `patch` into `original`, both objects described by `node`.
///
/// In order, as upstream's `mergeMap`: a `$patch` directive on the map itself; then
/// `$retainKeys`; then every `$setElementOrder/<list>` together with its list; then the
/// remaining keys in patch order, where `null` deletes, `$deleteFromPrimitiveList/<list>`
/// removes scalars, objects merge, lists follow their strategy and anything else replaces.
fn merge_map(
    mut original: Object,
    mut patch: Object,
    node: Option<&FieldNode>,
) -> Result<Object, PatchError> {
    if let Some(directive) = patch.shift_remove(DIRECTIVE_MARKER) {
        match directive.as_str() {
            // The patch's content replaces the map wholesale: merge it into nothing so that
            // its own directives are applied rather than stored.
            Some("replace") => return merge_map(Object::new(), patch, node),
            Some("delete") => return Ok(Object::new()),
            // Upstream's `handleDirectiveInMergeMap` knows only `replace` and `delete`: an
            // explicit `merge` on a map is an unknown patch type there too.
            _ => {
                let mut shown = patch.clone();
                shown.insert(DIRECTIVE_MARKER.into(), directive.clone());
                return Err(unknown_patch_type(&directive, &shown));
            }
        }
    }
    apply_retain_keys(&mut original, &mut patch)?;
    apply_element_orders(&mut original, &mut patch, node)?;

    for (key, patch_value) in patch {
        if key.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX) {
            let field =
                directive_target(&key, DELETE_FROM_PRIMITIVE_LIST_PREFIX).ok_or_else(|| {
                    PatchError::InvalidDirective("invalid patch format of primitive list".into())
                })?;
            // Only a list can be removed from a list; a deletion list for a field the object
            // does not have adds nothing (upstream's "should not add the item" cases).
            match (patch_value, original.get_mut(field)) {
                (Value::Array(items), Some(Value::Array(existing))) => {
                    let current = std::mem::take(existing);
                    *existing = merge_list_field(current, items, child(node, field), true)?;
                }
                (Value::Array(_), _) => {}
                // Upstream's `mergeMap` stores a value that is not a list under the field
                // itself, where decoding the patched object then refuses it (422): never
                // silently dropped.
                (other, _) => {
                    original.insert(field.to_string(), other);
                }
            }
            continue;
        }

        let field_node = child(node, &key);
        if patch_value.is_null() {
            original.shift_remove(&key);
            continue;
        }
        let Some(slot) = original.get_mut(&key) else {
            if let Some(fresh) = fresh_value(patch_value, field_node)? {
                original.insert(key, fresh);
            }
            continue;
        };
        let current = std::mem::take(slot);
        let merged = match (current, patch_value) {
            (Value::Object(current), Value::Object(patch_map)) => {
                Some(Value::Object(merge_map(current, patch_map, field_node)?))
            }
            (Value::Array(current), Value::Array(patch_list)) => Some(Value::Array(
                merge_list_field(current, patch_list, field_node, false)?,
            )),
            (_, replacement) => fresh_value(replacement, field_node)?,
        };
        match merged {
            Some(value) => *slot = value,
            None => {
                original.shift_remove(&key);
            }
        }
    }
    Ok(original)
}

/// `$retainKeys`: keys of the original missing from the list are cleared before merging, and
/// the patch may only set keys the list names (nulls and parallel lists aside). This is how a
/// union such as a Volume's source switches member, e.g. from `emptyDir` to `hostPath`.
/// Upstream honours the directive wherever it appears, whatever the field's tags say.
fn apply_retain_keys(original: &mut Object, patch: &mut Object) -> Result<(), PatchError> {
    let Some(directive) = patch.shift_remove(RETAIN_KEYS_DIRECTIVE) else {
        return Ok(());
    };
    let bad = || PatchError::InvalidDirective("invalid patch format of retainKeys".into());
    let Value::Array(listed) = directive else {
        return Err(bad());
    };
    let keep: HashSet<&str> = listed.iter().filter_map(Value::as_str).collect();
    let sets_unlisted_key = patch.iter().any(|(key, value)| {
        !value.is_null()
            && !key.starts_with(DELETE_FROM_PRIMITIVE_LIST_PREFIX)
            && !key.starts_with(SET_ELEMENT_ORDER_PREFIX)
            && !keep.contains(key.as_str())
    });
    if sets_unlisted_key {
        return Err(bad());
    }
    original.retain(|key, _| keep.contains(key.as_str()));
    Ok(())
}

/// Turns a patch value that has nothing to merge with into the value to store: directives are
/// applied (so never stored) and `null` members dropped, as upstream's `removeDirectives` and
/// `discardNullValuesFromPatch` do. `None` means the field is not to be stored at all (a map
/// whose `$patch` is `delete`).
fn fresh_value(value: Value, node: Option<&FieldNode>) -> Result<Option<Value>, PatchError> {
    match value {
        Value::Object(members) => {
            if members.get(DIRECTIVE_MARKER).and_then(Value::as_str) == Some("delete") {
                return Ok(None);
            }
            Ok(Some(Value::Object(merge_map(
                Object::new(),
                members,
                node,
            )?)))
        }
        Value::Array(items) => Ok(Some(Value::Array(fresh_list(items, node)?))),
        scalar => Ok(Some(scalar)),
    }
}

/// [`fresh_value`] for a list: elements that are list-level markers (`$patch: replace`) or
/// deletions (`$patch: delete`) carry no content and are dropped; other object elements have
/// their directives applied.
fn fresh_list(items: Vec<Value>, node: Option<&FieldNode>) -> Result<Vec<Value>, PatchError> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        match item {
            Value::Object(mut members) => {
                if let Some(directive) = members.get(DIRECTIVE_MARKER) {
                    match directive.as_str() {
                        Some("delete") | Some("replace") => continue,
                        Some("merge") => {
                            members.shift_remove(DIRECTIVE_MARKER);
                        }
                        _ => return Err(unknown_patch_type(directive, &members)),
                    }
                }
                out.push(Value::Object(merge_map(Object::new(), members, node)?));
            }
            Value::Array(inner) => out.push(Value::Array(fresh_list(inner, None)?)),
            scalar => out.push(scalar),
        }
    }
    Ok(out)
}

/// Combines an existing list with the patch's list for a field (upstream's
/// `mergeSliceHandler`): merge-strategy lists and deletion lists merge, any other list is
/// replaced by the patch's.
fn merge_list_field(
    current: Vec<Value>,
    patch: Vec<Value>,
    node: Option<&FieldNode>,
    deletion: bool,
) -> Result<Vec<Value>, PatchError> {
    let strategy = strategy_of(node);
    if strategy.is_merge() || deletion {
        merge_slice(current, patch, node, strategy.merge_key(), deletion)
    } else {
        fresh_list(patch, node)
    }
}

/// The JSON type of a list element, as far as upstream distinguishes them (Go's decoder keeps
/// integers and floats apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ElementKind {
    Null,
    Bool,
    Integer,
    Float,
    String,
    List,
    Map,
}

fn element_kind(value: &Value) -> ElementKind {
    match value {
        Value::Null => ElementKind::Null,
        Value::Bool(_) => ElementKind::Bool,
        Value::Number(n) if n.is_f64() => ElementKind::Float,
        Value::Number(_) => ElementKind::Integer,
        Value::String(_) => ElementKind::String,
        Value::Array(_) => ElementKind::List,
        Value::Object(_) => ElementKind::Map,
    }
}

/// The common element type of the lists, or `None` when they are all empty. Lists of lists
/// and mixed element types are refused, as upstream's `sliceElementType` does.
fn common_element_kind(lists: &[&[Value]]) -> Result<Option<ElementKind>, PatchError> {
    let mut seen: Option<ElementKind> = None;
    for item in lists.iter().flat_map(|list| list.iter()) {
        let kind = element_kind(item);
        match seen {
            None if kind == ElementKind::List => return Err(PatchError::ListOfLists),
            None => seen = Some(kind),
            Some(prev) if prev != kind => {
                return Err(PatchError::Strategic(format!(
                    "list element types are not identical: {}",
                    lists
                        .iter()
                        .map(|l| list_json(l))
                        .collect::<Vec<_>>()
                        .join(" ")
                )))
            }
            Some(_) => {}
        }
    }
    Ok(seen)
}

/// How list elements are told apart: by the value of their merge key, or (scalars) by value.
#[derive(Debug, Clone, Copy)]
enum Identity<'a> {
    MergeKey(&'a str),
    Value,
}

impl Identity<'_> {
    /// A hashable identity of `element`; `None` for an object lacking the merge key. Compact
    /// JSON text tells the same values apart as `Value` equality does (`1` is not `1.0`).
    fn of(self, element: &Value) -> Option<String> {
        match self {
            Identity::MergeKey(key) => element.get(key).map(Value::to_string),
            Identity::Value => Some(element.to_string()),
        }
    }
}

/// First position of each identity in `list`.
fn positions(list: &[Value], identity: Identity<'_>) -> HashMap<String, usize> {
    let mut out = HashMap::with_capacity(list.len());
    for (index, element) in list.iter().enumerate() {
        if let Some(id) = identity.of(element) {
            out.entry(id).or_insert(index);
        }
    }
    out
}

/// Every element must be an object carrying `merge_key` (upstream's
/// `validateMergeKeyInLists` / `partitionMapsByPresentInList`).
fn require_merge_keys(list: &[Value], merge_key: &str) -> Result<(), PatchError> {
    for element in list {
        match element {
            Value::Object(members) if members.contains_key(merge_key) => {}
            Value::Object(members) => return Err(no_merge_key(members, merge_key)),
            other => {
                return Err(PatchError::Strategic(format!(
                    "expected a map with merge key {merge_key}, but received a {}",
                    json_type(other)
                )))
            }
        }
    }
    Ok(())
}

/// Merges two lists of a merge-strategy field (upstream's `mergeSlice`).
///
/// Scalars: a deletion list removes every occurrence of its values; otherwise the union
/// without duplicates. Objects: `$patch: delete` elements remove the elements with their key,
/// `$patch: replace` makes the remaining patch elements the whole list, other patch elements
/// merge into the element with the same key or are appended. The result is then ordered as
/// upstream orders it: patch elements in patch order, elements only the server had in their
/// old order, interleaved by [`interleave`].
fn merge_slice(
    current: Vec<Value>,
    patch: Vec<Value>,
    node: Option<&FieldNode>,
    merge_key: Option<&str>,
    deletion: bool,
) -> Result<Vec<Value>, PatchError> {
    if current.is_empty() && patch.is_empty() {
        return Ok(current);
    }
    let kind = common_element_kind(&[&current, &patch])?;
    if kind != Some(ElementKind::Map) {
        let identity = Identity::Value;
        let in_patch = positions(&patch, identity);
        if deletion {
            return Ok(current
                .into_iter()
                .filter(|v| !identity.of(v).is_some_and(|id| in_patch.contains_key(&id)))
                .collect());
        }
        let server_order = positions(&current, identity);
        let mut seen = HashSet::new();
        let merged: Vec<Value> = current
            .into_iter()
            .chain(patch)
            .filter(|v| identity.of(v).is_none_or(|id| seen.insert(id)))
            .collect();
        return Ok(order_merged(merged, &in_patch, &server_order, identity));
    }

    let Some(merge_key) = merge_key else {
        return Err(PatchError::Strategic(
            "cannot merge lists of objects without a merge key".into(),
        ));
    };
    let identity = Identity::MergeKey(merge_key);

    let mut plain: Vec<Object> = Vec::with_capacity(patch.len());
    let mut deleted: HashSet<String> = HashSet::new();
    let mut replace = false;
    for element in patch {
        let Value::Object(members) = element else {
            // common_element_kind saw only objects.
            continue;
        };
        let Some(directive) = members.get(DIRECTIVE_MARKER) else {
            plain.push(members);
            continue;
        };
        match directive.as_str() {
            Some("delete") => match members.get(merge_key) {
                Some(key_value) => {
                    deleted.insert(key_value.to_string());
                }
                None => return Err(no_merge_key(&members, merge_key)),
            },
            Some("replace") => replace = true,
            // Upstream's `mergeSliceWithSpecialElements` refuses `merge` on list elements.
            Some("merge") => {
                return Err(PatchError::Strategic(
                    "merging lists cannot yet be specified in the patch".into(),
                ))
            }
            _ => return Err(unknown_patch_type(directive, &members)),
        }
    }

    let mut list: Vec<Value> = if replace {
        // Nothing of the old list survives; the other patch elements are the new list.
        let replacement = std::mem::take(&mut plain)
            .into_iter()
            .map(|members| merge_map(Object::new(), members, node).map(Value::Object))
            .collect::<Result<Vec<_>, _>>()?;
        require_merge_keys(&replacement, merge_key)?;
        replacement
    } else {
        current
            .into_iter()
            .filter(|v| !identity.of(v).is_some_and(|id| deleted.contains(&id)))
            .collect()
    };

    let server_order = positions(&list, identity);
    let mut index = server_order.clone();
    let mut patch_order: HashMap<String, usize> = HashMap::with_capacity(plain.len());
    for (position, members) in plain.into_iter().enumerate() {
        let Some(key_value) = members.get(merge_key) else {
            return Err(no_merge_key(&members, merge_key));
        };
        let id = key_value.to_string();
        patch_order.entry(id.clone()).or_insert(position);
        match index.get(&id) {
            Some(&at) => {
                let merged = match std::mem::take(&mut list[at]) {
                    Value::Object(existing) => merge_map(existing, members, node)?,
                    // common_element_kind saw only objects; merge onto nothing otherwise.
                    _ => merge_map(Object::new(), members, node)?,
                };
                list[at] = Value::Object(merged);
            }
            None => {
                index.insert(id, list.len());
                list.push(Value::Object(merge_map(Object::new(), members, node)?));
            }
        }
    }
    require_merge_keys(&list, merge_key)?;
    Ok(order_merged(list, &patch_order, &server_order, identity))
}

/// A list element with its position in some ordering list, if it has one there.
type Placed = (Option<usize>, Value);

/// Splits `merged` into the elements the patch (or `$setElementOrder` list) names and those
/// only the server had, orders each, and interleaves them.
fn order_merged(
    merged: Vec<Value>,
    patch_order: &HashMap<String, usize>,
    server_order: &HashMap<String, usize>,
    identity: Identity<'_>,
) -> Vec<Value> {
    let position_in = |order: &HashMap<String, usize>, v: &Value| {
        identity.of(v).and_then(|id| order.get(&id).copied())
    };
    let (mut named, mut server_only): (Vec<Placed>, Vec<Placed>) = merged
        .into_iter()
        .map(|v| (position_in(patch_order, &v), v))
        .partition(|(at, _)| at.is_some());
    // Stable sorts: elements with equal positions (duplicates) keep their relative order.
    named.sort_by_key(|(at, _)| *at);
    for entry in &mut server_only {
        entry.0 = position_in(server_order, &entry.1);
    }
    server_only.sort_by_key(|(at, _)| at.unwrap_or(usize::MAX));
    let named: Vec<Placed> = named
        .into_iter()
        .map(|(_, v)| (position_in(server_order, &v), v))
        .collect();
    interleave(server_only, named)
}

/// Upstream's `mergeSortedSlice`: walks both ordered lists, taking the server-only element
/// first only when both it and the next patch element existed on the server and it came
/// earlier there; otherwise the patch element goes first. Both lists keep their own order.
/// Each element comes with its position in the server's list.
fn interleave(server_only: Vec<Placed>, named: Vec<Placed>) -> Vec<Value> {
    let mut out = Vec::with_capacity(server_only.len() + named.len());
    let mut left = server_only.into_iter().peekable();
    let mut right = named.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (Some((l, _)), Some((r, _))) => matches!((l, r), (Some(l), Some(r)) if l < r),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        let next = if take_left { left.next() } else { right.next() };
        if let Some((_, value)) = next {
            out.push(value);
        }
    }
    out
}

/// Applies every `$setElementOrder/<field>` of `patch` (upstream's `mergePatchIntoOriginal`):
/// the field's list is merged with the patch's list (if any), then ordered so that the elements
/// the directive names follow its order, and elements only the server had keep their relative
/// order among them. The field's list is removed from `patch` afterwards.
fn apply_element_orders(
    original: &mut Object,
    patch: &mut Object,
    node: Option<&FieldNode>,
) -> Result<(), PatchError> {
    let directives: Vec<String> = patch
        .keys()
        .filter(|k| k.starts_with(SET_ELEMENT_ORDER_PREFIX))
        .cloned()
        .collect();
    for directive in directives {
        let bad =
            || PatchError::InvalidDirective("invalid patch format of setElementOrder list".into());
        let Some(order) = patch.shift_remove(&directive) else {
            continue;
        };
        let field = directive_target(&directive, SET_ELEMENT_ORDER_PREFIX)
            .ok_or_else(bad)?
            .to_string();
        let Value::Array(order) = order else {
            return Err(bad());
        };
        let field_node = child(node, &field);
        let merge_key = strategy_of(field_node).merge_key();

        let current = match original.get_mut(&field) {
            None => None,
            Some(Value::Array(items)) => Some(std::mem::take(items)),
            Some(other) => {
                return Err(PatchError::Strategic(format!(
                    "expected a list in {field}, but the object has a {}",
                    json_type(other)
                )))
            }
        };
        let patch_list = match patch.shift_remove(&field) {
            None => None,
            Some(Value::Array(items)) => Some(items),
            Some(other) => {
                return Err(PatchError::Strategic(format!(
                    "expected a list in {field} beside {directive}, but the patch has a {}",
                    json_type(&other)
                )))
            }
        };
        validate_element_order(patch_list.as_deref().unwrap_or_default(), &order, merge_key)?;

        let identity = merge_key.map_or(Identity::Value, Identity::MergeKey);
        let server_order = current
            .as_deref()
            .map(|items| positions(items, identity))
            .unwrap_or_default();
        let merged = match (current, patch_list) {
            (Some(current), None) => current,
            (None, Some(patch_list)) => fresh_list(patch_list, field_node)?,
            (Some(current), Some(patch_list)) => {
                merge_list_field(current, patch_list, field_node, false)?
            }
            (None, None) => continue,
        };
        if let Some(key) = merge_key {
            require_merge_keys(&order, key)?;
            require_merge_keys(&merged, key)?;
        }
        let order_positions = positions(&order, identity);
        let ordered = order_merged(merged, &order_positions, &server_order, identity);
        original.insert(field, Value::Array(ordered));
    }
    Ok(())
}

/// Upstream's `validatePatchWithSetOrderList`: the patch's elements (deletions and other
/// directive elements aside) must appear in the `$setElementOrder` list, in the same relative
/// order.
fn validate_element_order(
    patch_list: &[Value],
    order: &[Value],
    merge_key: Option<&str>,
) -> Result<(), PatchError> {
    if patch_list.is_empty() || order.is_empty() {
        return Ok(());
    }
    let mut elements: Vec<&Value> = Vec::with_capacity(patch_list.len());
    for element in patch_list {
        if merge_key.is_some() {
            let Value::Object(members) = element else {
                return Err(PatchError::Strategic(format!(
                    "expected a map in a merge list, but received a {}",
                    json_type(element)
                )));
            };
            if members.get(DIRECTIVE_MARKER).and_then(Value::as_str) == Some("delete") {
                continue;
            }
        }
        elements.push(element);
    }
    let same = |a: &Value, b: &Value| -> Result<bool, PatchError> {
        let Some(key) = merge_key else {
            return Ok(a == b);
        };
        let key_of = |v: &Value| -> Result<Value, PatchError> {
            match v {
                Value::Object(members) => members
                    .get(key)
                    .cloned()
                    .ok_or_else(|| no_merge_key(members, key)),
                other => Err(PatchError::Strategic(format!(
                    "expected a map in a merge list, but received a {}",
                    json_type(other)
                ))),
            }
        };
        Ok(key_of(a)? == key_of(b)?)
    };
    let (mut at_patch, mut at_order) = (0, 0);
    while at_patch < elements.len() && at_order < order.len() {
        let element = elements[at_patch];
        if element.get(DIRECTIVE_MARKER).is_some() {
            at_patch += 1;
            continue;
        }
        if same(element, &order[at_order])? {
            at_patch += 1;
        }
        at_order += 1;
    }
    if at_patch < elements.len() && at_order >= order.len() {
        return Err(PatchError::Strategic(format!(
            "the order in patch list:\n{}\n doesn't match {SET_ELEMENT_ORDER_PREFIX} list:\n{}\n",
            list_json(patch_list),
            list_json(order)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn patched(kind: PatchType, schema: &PatchSchema, original: Value, patch: Value) -> Value {
        let body = serde_json::to_vec(&patch).expect("a Value always serializes");
        match apply_patch(&original, &body, kind, schema) {
            Ok(result) => result,
            Err(e) => panic!("patch {patch} failed: {e}"),
        }
    }

    fn smp(schema: &PatchSchema, original: Value, patch: Value) -> Value {
        patched(PatchType::StrategicMerge, schema, original, patch)
    }

    fn smp_err(schema: &PatchSchema, original: Value, patch: Value) -> PatchError {
        let body = serde_json::to_vec(&patch).expect("a Value always serializes");
        match apply_patch(&original, &body, PatchType::StrategicMerge, schema) {
            Ok(result) => panic!("patch {patch} unexpectedly gave {result}"),
            Err(e) => e,
        }
    }

    fn pod() -> Value {
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

    fn container_names(pod: &Value) -> Vec<&str> {
        pod["spec"]["containers"]
            .as_array()
            .map(|cs| cs.iter().filter_map(|c| c["name"].as_str()).collect())
            .unwrap_or_default()
    }

    /// Tears a value down without recursion, so that very deep test values can be dropped on
    /// a test thread's small stack.
    fn dismantle(value: Value) {
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
            ("application/apply-patch+yaml", None),
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

    // --- strategic merge: containers --------------------------------------------------------

    #[test]
    fn strategic_merge_replaces_container_image_by_name() {
        let out = smp(
            &pod_patch_schema(),
            pod(),
            json!({"spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}}),
        );
        let app = &out["spec"]["containers"][0];
        assert_eq!(app["image"], "nginx:1.27");
        assert_eq!(
            app["ports"],
            json!([{"containerPort": 80, "protocol": "TCP"}])
        );
        assert_eq!(container_names(&out), ["app", "sidecar"]);
        assert_eq!(out["spec"]["containers"][1]["image"], "envoy:1.0");
    }

    #[test]
    fn strategic_merge_appends_new_containers_in_patch_order() {
        let out = smp(
            &pod_patch_schema(),
            pod(),
            json!({"spec": {"containers": [
                {"name": "z-extra", "image": "busybox"},
                {"name": "a-extra", "image": "alpine"}
            ]}}),
        );
        // Upstream puts patch elements the server did not have ahead of server-only ones.
        assert_eq!(
            container_names(&out),
            ["z-extra", "a-extra", "app", "sidecar"]
        );
    }

    #[test]
    fn strategic_merge_keeps_server_order_for_patched_and_unpatched_containers() {
        let out = smp(
            &pod_patch_schema(),
            pod(),
            json!({"spec": {"containers": [{"name": "sidecar", "image": "envoy:2.0"}]}}),
        );
        assert_eq!(container_names(&out), ["app", "sidecar"]);
        assert_eq!(out["spec"]["containers"][1]["image"], "envoy:2.0");
    }

    #[test]
    fn strategic_merge_patch_delete_removes_container() {
        let out = smp(
            &pod_patch_schema(),
            pod(),
            json!({"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}),
        );
        assert_eq!(container_names(&out), ["app"]);
        assert!(!out.to_string().contains("$patch"));
    }

    #[test]
    fn strategic_merge_set_element_order_reorders_containers() {
        let out = smp(
            &pod_patch_schema(),
            pod(),
            json!({"spec": {"$setElementOrder/containers": [{"name": "sidecar"}, {"name": "app"}]}}),
        );
        assert_eq!(container_names(&out), ["sidecar", "app"]);
        assert_eq!(out["spec"]["containers"][1]["image"], "nginx:1.25");
        assert!(!out.to_string().contains("$setElementOrder"));
    }

    #[test]
    fn strategic_merge_set_element_order_table_follows_upstream_cases() {
        let schema = PatchSchema::new()
            .merge_list("mergingList", "name")
            .merge_primitive_list("mergingIntList");
        let named = |ns: &[i64]| -> Value { ns.iter().map(|n| json!({"name": n})).collect() };
        let cases: Vec<(&str, Value, Value, Value)> = vec![
            (
                "server-only items keep their place between the ordered ones",
                json!({"mergingList": named(&[1, 2, 9, 3, 4])}),
                json!({"$setElementOrder/mergingList": named(&[2, 1, 4, 3])}),
                json!({"mergingList": named(&[2, 1, 9, 4, 3])}),
            ),
            (
                "several server-only items stay together",
                json!({"mergingList": named(&[1, 2, 7, 9, 8, 3, 4])}),
                json!({"$setElementOrder/mergingList": named(&[2, 1, 4, 3])}),
                json!({"mergingList": named(&[2, 1, 7, 9, 8, 4, 3])}),
            ),
            (
                "an order entry that no element has is ignored",
                json!({"mergingList": named(&[1, 3])}),
                json!({
                    "$setElementOrder/mergingList": named(&[3, 2, 1]),
                    "mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}]
                }),
                json!({"mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}]}),
            ),
            (
                "primitive lists are reordered too",
                json!({"mergingIntList": [1, 3]}),
                json!({"$setElementOrder/mergingIntList": [3, 2, 1]}),
                json!({"mergingIntList": [3, 1]}),
            ),
            (
                "duplicates stay next to each other",
                json!({"mergingIntList": [1, 2, 3, 2, 4]}),
                json!({"$setElementOrder/mergingIntList": [2, 1, 4, 3, 2]}),
                json!({"mergingIntList": [2, 2, 1, 4, 3]}),
            ),
            (
                "the order also places added elements",
                json!({"mergingList": named(&[1, 2])}),
                json!({
                    "$setElementOrder/mergingList": named(&[1, 3, 2]),
                    "mergingList": [{"name": 3}]
                }),
                json!({"mergingList": named(&[1, 3, 2])}),
            ),
        ];
        for (name, original, patch, want) in cases {
            assert_eq!(smp(&schema, original, patch), want, "{name}");
        }
    }

    #[test]
    fn strategic_merge_set_element_order_contradicting_the_patch_is_an_error() {
        let schema = PatchSchema::new().merge_list("mergingList", "name");
        let err = smp_err(
            &schema,
            json!({"mergingList": [{"name": 1}, {"name": 3}, {"name": 2}]}),
            json!({
                "$setElementOrder/mergingList": [{"name": 1}, {"name": 2}, {"name": 3}],
                "mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}]
            }),
        );
        assert!(err.to_string().contains("doesn't match"), "{err}");
    }

    // --- strategic merge: env ---------------------------------------------------------------

    #[test]
    fn strategic_merge_merges_env_by_name() {
        let out = smp(
            &pod_patch_schema(),
            pod(),
            json!({"spec": {"containers": [{"name": "app", "env": [
                {"name": "DEBUG", "value": "1"},
                {"name": "NEW", "value": "x"}
            ]}]}}),
        );
        assert_eq!(
            out["spec"]["containers"][0]["env"],
            json!([
                {"name": "MODE", "value": "prod"},
                {"name": "DEBUG", "value": "1"},
                {"name": "NEW", "value": "x"}
            ])
        );
    }

    #[test]
    fn strategic_merge_patch_delete_removes_env_var() {
        let out = smp(
            &pod_patch_schema(),
            pod(),
            json!({"spec": {"containers": [{"name": "app", "env": [
                {"name": "MODE", "$patch": "delete"}
            ]}]}}),
        );
        assert_eq!(
            out["spec"]["containers"][0]["env"],
            json!([{"name": "DEBUG", "value": "0"}])
        );
    }

    #[test]
    fn strategic_merge_merges_container_ports_by_container_port() {
        let out = smp(
            &pod_patch_schema(),
            pod(),
            json!({"spec": {"containers": [{"name": "app", "ports": [
                {"containerPort": 80, "name": "http"},
                {"containerPort": 443}
            ]}]}}),
        );
        assert_eq!(
            out["spec"]["containers"][0]["ports"],
            json!([
                {"containerPort": 80, "protocol": "TCP", "name": "http"},
                {"containerPort": 443}
            ])
        );
    }

    // --- strategic merge: maps, metadata ------------------------------------------------------

    #[test]
    fn strategic_merge_null_removes_label() {
        let out = smp(
            &pod_patch_schema(),
            pod(),
            json!({"metadata": {"labels": {"tier": null, "track": "stable"}}}),
        );
        assert_eq!(
            out["metadata"]["labels"],
            json!({"app": "web", "track": "stable"})
        );
    }

    #[test]
    fn strategic_merge_null_for_absent_field_is_ignored() {
        let out = smp(
            &pod_patch_schema(),
            pod(),
            json!({"metadata": {"annotations": null, "labels": {"nope": null}}}),
        );
        assert_eq!(out, pod());
    }

    #[test]
    fn strategic_merge_unions_finalizers_without_duplicates() {
        let out = smp(
            &generic_patch_schema(),
            pod(),
            json!({"metadata": {"finalizers": ["b.example.com/y", "c.example.com/z", "c.example.com/z"]}}),
        );
        assert_eq!(
            out["metadata"]["finalizers"],
            json!(["a.example.com/x", "b.example.com/y", "c.example.com/z"])
        );
    }

    #[test]
    fn strategic_merge_primitive_union_follows_upstream_ordering() {
        let schema = PatchSchema::new().merge_primitive_list("mergingIntList");
        let cases = [
            (
                "overlap keeps server order",
                json!([1, 2]),
                json!([2, 3]),
                json!([1, 2, 3]),
            ),
            (
                "new items lead when first in patch",
                json!([1, 2]),
                json!([3, 2]),
                json!([3, 1, 2]),
            ),
            ("nothing new", json!([1, 2]), json!([1]), json!([1, 2])),
            ("empty server list", json!([]), json!([2, 1]), json!([2, 1])),
        ];
        for (name, current, patch, want) in cases {
            let out = smp(
                &schema,
                json!({"mergingIntList": current}),
                json!({"mergingIntList": patch}),
            );
            assert_eq!(out["mergingIntList"], want, "{name}");
        }
    }

    #[test]
    fn strategic_merge_delete_from_primitive_list_removes_finalizer() {
        let out = smp(
            &generic_patch_schema(),
            pod(),
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a.example.com/x", "never.there"]}}),
        );
        assert_eq!(out["metadata"]["finalizers"], json!(["b.example.com/y"]));
        assert!(!out.to_string().contains("$deleteFromPrimitiveList"));
    }

    #[test]
    fn strategic_merge_delete_from_primitive_list_never_creates_the_list() {
        let out = smp(
            &generic_patch_schema(),
            json!({"metadata": {"name": "x"}}),
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}),
        );
        assert_eq!(out, json!({"metadata": {"name": "x"}}));
    }

    #[test]
    fn strategic_merge_delete_from_primitive_list_also_applies_to_atomic_lists() {
        let out = smp(
            &PatchSchema::new(),
            json!({"nonMergingIntList": [1, 2, 3]}),
            json!({"$deleteFromPrimitiveList/nonMergingIntList": [2]}),
        );
        assert_eq!(out, json!({"nonMergingIntList": [1, 3]}));
    }

    #[test]
    fn strategic_merge_merges_owner_references_by_uid() {
        let original = json!({"metadata": {"ownerReferences": [
            {"uid": "u1", "kind": "ReplicaSet", "name": "rs1"}
        ]}});
        let out = smp(
            &generic_patch_schema(),
            original,
            json!({"metadata": {"ownerReferences": [
                {"uid": "u1", "controller": true},
                {"uid": "u2", "kind": "Job", "name": "j"}
            ]}}),
        );
        assert_eq!(
            out["metadata"]["ownerReferences"],
            json!([
                {"uid": "u1", "kind": "ReplicaSet", "name": "rs1", "controller": true},
                {"uid": "u2", "kind": "Job", "name": "j"}
            ])
        );
    }

    // --- strategic merge: directives ----------------------------------------------------------

    #[test]
    fn strategic_merge_retain_keys_switches_volume_source() {
        let out = smp(
            &pod_patch_schema(),
            pod(),
            json!({"spec": {
                "$setElementOrder/volumes": [{"name": "data"}],
                "volumes": [{
                    "$retainKeys": ["hostPath", "name"],
                    "emptyDir": null,
                    "hostPath": {"path": "/srv/data"},
                    "name": "data"
                }]
            }}),
        );
        assert_eq!(
            out["spec"]["volumes"],
            json!([{"name": "data", "hostPath": {"path": "/srv/data"}}])
        );
        assert!(!out.to_string().contains("$retainKeys"));
    }

    #[test]
    fn strategic_merge_retain_keys_rejects_fields_it_does_not_list() {
        let err = smp_err(
            &pod_patch_schema(),
            pod(),
            json!({"spec": {"volumes": [{
                "$retainKeys": ["name"],
                "hostPath": {"path": "/srv/data"},
                "name": "data"
            }]}}),
        );
        assert_eq!(
            err,
            PatchError::InvalidDirective("invalid patch format of retainKeys".into())
        );
        assert_eq!(err.status_code(), 400);
    }

    #[test]
    fn strategic_merge_patch_replace_on_map_replaces_it_wholesale() {
        let out = smp(
            &pod_patch_schema(),
            pod(),
            json!({"metadata": {"labels": {"$patch": "replace", "only": "this", "gone": null}}}),
        );
        assert_eq!(out["metadata"]["labels"], json!({"only": "this"}));
        assert_eq!(out["metadata"]["name"], "web");
    }

    #[test]
    fn strategic_merge_explicit_patch_merge_is_refused_as_upstream_does() {
        let err = smp_err(
            &pod_patch_schema(),
            pod(),
            json!({"metadata": {"labels": {"$patch": "merge", "extra": "1"}}}),
        );
        assert_eq!(
            err,
            PatchError::Strategic(
                "unknown patch type: merge in map: map[$patch:merge extra:1]".into()
            )
        );
        let err = smp_err(
            &pod_patch_schema(),
            pod(),
            json!({"spec": {"containers": [{"name": "app", "$patch": "merge", "image": "nginx:2"}]}}),
        );
        assert_eq!(
            err,
            PatchError::Strategic("merging lists cannot yet be specified in the patch".into())
        );
        assert_eq!(err.status_code(), 400);
    }

    #[test]
    fn failures_are_client_errors_with_go_formatted_values() {
        let err = smp_err(&pod_patch_schema(), pod(), json!({"$patch": "bogus"}));
        assert_eq!(
            err.to_string(),
            "unknown patch type: bogus in map: map[$patch:bogus]"
        );
        let err = smp_err(
            &pod_patch_schema(),
            pod(),
            json!({"spec": {"containers": [{"$patch": "delete"}]}}),
        );
        assert_eq!(
            err.to_string(),
            "map: map[$patch:delete] does not contain declared merge key: name"
        );
        for err in [
            PatchError::Strategic(String::new()),
            PatchError::InvalidDirective(String::new()),
            PatchError::MalformedBody(String::new()),
            PatchError::TooDeep { limit: 1 },
        ] {
            assert_eq!(err.status_code(), 400, "{err:?}");
        }
        assert_eq!(
            go_value(&json!({"b": [1, "x", null, true], "a": {"c": 1.5}})),
            "map[a:map[c:1.5] b:[1 x <nil> true]]"
        );
    }

    #[test]
    fn strategic_merge_patch_delete_on_map_empties_it() {
        let out = smp(
            &pod_patch_schema(),
            pod(),
            json!({"metadata": {"labels": {"$patch": "delete"}}}),
        );
        assert_eq!(out["metadata"]["labels"], json!({}));
    }

    #[test]
    fn strategic_merge_patch_replace_element_replaces_whole_list() {
        let out = smp(
            &pod_patch_schema(),
            pod(),
            json!({"spec": {"containers": [
                {"name": "only", "image": "busybox"},
                {"$patch": "replace"}
            ]}}),
        );
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "only", "image": "busybox"}])
        );
    }

    #[test]
    fn strategic_merge_replaces_tolerations_atomically() {
        let out = smp(
            &pod_patch_schema(),
            pod(),
            json!({"spec": {"tolerations": [{"key": "c", "operator": "Equal", "value": "v"}]}}),
        );
        assert_eq!(
            out["spec"]["tolerations"],
            json!([{"key": "c", "operator": "Equal", "value": "v"}])
        );
    }

    #[test]
    fn strategic_merge_directives_never_leak_into_new_values() {
        let out = smp(
            &pod_patch_schema(),
            json!({"metadata": {"name": "p"}}),
            json!({
                "metadata": {"labels": {"$patch": "replace", "a": "b"}},
                "spec": {
                    "$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
                    "containers": [
                        {"name": "b", "$patch": "delete"},
                        {"name": "b", "image": "img", "$retainKeys": ["name", "image"]},
                        {"name": "a", "env": [{"name": "X", "$patch": "delete"}, {"name": "Y", "value": null}]}
                    ],
                    "tolerations": [{"$patch": "replace"}, {"key": "k", "value": null}],
                    "affinity": {"$patch": "delete"}
                }
            }),
        );
        assert_eq!(
            out,
            json!({
                "metadata": {"name": "p", "labels": {"a": "b"}},
                "spec": {
                    "containers": [
                        {"name": "b", "image": "img"},
                        {"name": "a", "env": [{"name": "Y"}]}
                    ],
                    "tolerations": [{"key": "k"}]
                }
            })
        );
    }

    #[test]
    fn strategic_merge_merges_node_pod_cidrs_and_addresses() {
        let node = json!({
            "metadata": {"name": "n1"},
            "spec": {"podCIDRs": ["10.0.0.0/24"], "taints": [{"key": "a", "effect": "NoSchedule"}]},
            "status": {
                "addresses": [{"type": "InternalIP", "address": "192.0.2.1"}],
                "conditions": [{"type": "Ready", "status": "False"}, {"type": "DiskPressure", "status": "False"}]
            }
        });
        let out = smp(
            &node_patch_schema(),
            node,
            json!({
                "spec": {"podCIDRs": ["fd00::/64"], "taints": [{"key": "b", "effect": "NoExecute"}]},
                "status": {
                    "addresses": [{"type": "Hostname", "address": "n1"}],
                    "conditions": [{"type": "Ready", "status": "True"}]
                }
            }),
        );
        // As upstream orders a merged list: what the patch adds goes ahead of what only the
        // server had, unless both were on the server.
        assert_eq!(out["spec"]["podCIDRs"], json!(["fd00::/64", "10.0.0.0/24"]));
        assert_eq!(
            out["spec"]["taints"],
            json!([{"key": "b", "effect": "NoExecute"}])
        );
        assert_eq!(
            out["status"]["addresses"],
            json!([
                {"type": "Hostname", "address": "n1"},
                {"type": "InternalIP", "address": "192.0.2.1"}
            ])
        );
        assert_eq!(
            out["status"]["conditions"],
            json!([{"type": "Ready", "status": "True"}, {"type": "DiskPressure", "status": "False"}])
        );
    }

    #[test]
    fn strategic_merge_merges_pod_status_conditions_by_type() {
        let original = json!({"status": {
            "conditions": [{"type": "Ready", "status": "False"}, {"type": "PodScheduled", "status": "True"}],
            "podIPs": [{"ip": "10.0.0.5"}]
        }});
        let out = smp(
            &pod_patch_schema(),
            original,
            json!({"status": {"conditions": [{"type": "Ready", "status": "True"}], "podIPs": [{"ip": "fd00::5"}]}}),
        );
        assert_eq!(
            out["status"]["conditions"],
            json!([{"type": "Ready", "status": "True"}, {"type": "PodScheduled", "status": "True"}])
        );
        assert_eq!(
            out["status"]["podIPs"],
            json!([{"ip": "fd00::5"}, {"ip": "10.0.0.5"}])
        );
    }

    #[test]
    fn strategic_merge_kubectl_apply_three_way_patch_changes_label_and_image() {
        let original = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "db",
                "namespace": "default",
                "resourceVersion": "41",
                "annotations": {
                    "kubectl.kubernetes.io/last-applied-configuration":
                        "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"annotations\":{},\"labels\":{\"app\":\"db\",\"tier\":\"cache\"},\"name\":\"db\",\"namespace\":\"default\"},\"spec\":{\"containers\":[{\"image\":\"mongo:3.2\",\"name\":\"db\"}]}}\n"
                },
                "labels": {"app": "db", "tier": "cache"}
            },
            "spec": {
                "containers": [{
                    "name": "db",
                    "image": "mongo:3.2",
                    "imagePullPolicy": "IfNotPresent",
                    "terminationMessagePath": "/dev/termination-log",
                    "volumeMounts": [{"name": "kube-api-access", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true}]
                }],
                "nodeName": "node-1",
                "restartPolicy": "Always",
                "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]
            },
            "status": {"phase": "Running"}
        });
        let last_applied = "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"annotations\":{},\"labels\":{\"app\":\"db\",\"tier\":\"backend\"},\"name\":\"db\",\"namespace\":\"default\"},\"spec\":{\"containers\":[{\"image\":\"mongo:3.4\",\"name\":\"db\"}]}}\n";
        // The body `kubectl apply` sends, byte for byte as Go marshals it (keys sorted).
        let body = format!(
            "{{\"metadata\":{{\"annotations\":{{\"kubectl.kubernetes.io/last-applied-configuration\":{}}},\"labels\":{{\"tier\":\"backend\"}}}},\"spec\":{{\"$setElementOrder/containers\":[{{\"name\":\"db\"}}],\"containers\":[{{\"image\":\"mongo:3.4\",\"name\":\"db\"}}]}}}}",
            serde_json::to_string(last_applied).expect("a string always serializes")
        );
        let out = apply_patch(
            &original,
            body.as_bytes(),
            PatchType::StrategicMerge,
            &pod_patch_schema(),
        )
        .expect("kubectl's patch applies");

        let mut want = original.clone();
        want["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] =
            json!(last_applied);
        want["metadata"]["labels"]["tier"] = json!("backend");
        want["spec"]["containers"][0]["image"] = json!("mongo:3.4");
        assert_eq!(out, want);
        // Field order of the stored object is kept.
        let keys: Vec<&String> = out["spec"]["containers"][0]
            .as_object()
            .map(|c| c.keys().collect())
            .unwrap_or_default();
        assert_eq!(
            keys,
            [
                "name",
                "image",
                "imagePullPolicy",
                "terminationMessagePath",
                "volumeMounts"
            ]
        );
    }

    // --- strategic merge: errors --------------------------------------------------------------

    #[test]
    fn strategic_merge_rejects_bad_patches() {
        let schema = pod_patch_schema();
        type Check = fn(&PatchError) -> bool;
        let cases: Vec<(&str, Value, Check)> = vec![
            (
                "element without its merge key",
                json!({"spec": {"containers": [{"image": "x"}]}}),
                |e| matches!(e, PatchError::Strategic(m) if m.contains("does not contain declared merge key: name")),
            ),
            (
                "unknown $patch on a map",
                json!({"metadata": {"labels": {"$patch": "explode"}}}),
                |e| matches!(e, PatchError::Strategic(m) if m.starts_with("unknown patch type: explode")),
            ),
            (
                "unknown $patch in a list",
                json!({"spec": {"containers": [{"name": "app", "$patch": "explode"}]}}),
                |e| matches!(e, PatchError::Strategic(m) if m.starts_with("unknown patch type: explode")),
            ),
            (
                "$retainKeys that is not a list",
                json!({"spec": {"$retainKeys": "containers"}}),
                |e| matches!(e, PatchError::InvalidDirective(_)),
            ),
            (
                "$setElementOrder without a field",
                json!({"spec": {"$setElementOrder": []}}),
                |e| matches!(e, PatchError::InvalidDirective(m) if m == "invalid patch format of setElementOrder list"),
            ),
            (
                "$deleteFromPrimitiveList with a wrong prefix",
                json!({"metadata": {"$deleteFromPrimitiveListX/finalizers": ["a"]}}),
                |e| matches!(e, PatchError::InvalidDirective(m) if m == "invalid patch format of primitive list"),
            ),
            (
                "mixed element types in a merge list",
                json!({"metadata": {"finalizers": [1]}}),
                |e| matches!(e, PatchError::Strategic(m) if m.starts_with("list element types are not identical")),
            ),
        ];
        for (name, patch, check) in cases {
            let err = smp_err(&schema, pod(), patch);
            assert!(check(&err), "{name}: got {err:?}");
        }
    }

    #[test]
    fn strategic_merge_rejects_lists_of_lists_in_merge_lists() {
        let err = smp_err(
            &generic_patch_schema(),
            json!({"metadata": {"finalizers": []}}),
            json!({"metadata": {"finalizers": [["a"]]}}),
        );
        assert_eq!(err, PatchError::ListOfLists);
        assert_eq!(err.status_code(), 422);
    }

    #[test]
    fn strategic_merge_patch_that_is_not_an_object_is_an_error() {
        for body in ["[]", "\"x\"", "3", "null"] {
            let err = apply_patch(
                &pod(),
                body.as_bytes(),
                PatchType::StrategicMerge,
                &pod_patch_schema(),
            )
            .expect_err("only objects are strategic merge patches");
            assert!(
                matches!(err, PatchError::MalformedBody(_)),
                "{body}: {err:?}"
            );
            assert_eq!(err.status_code(), 400);
        }
    }

    // --- JSON merge patch ----------------------------------------------------------------------

    #[test]
    fn merge_patch_follows_rfc_7386() {
        let original = json!({
            "metadata": {"labels": {"a": "1", "b": "2"}},
            "spec": {"containers": [{"name": "x"}, {"name": "y"}], "replicas": 1}
        });
        let cases: Vec<(&str, Value, Value)> = vec![
            (
                "null deletes a key",
                json!({"metadata": {"labels": {"a": null}}}),
                json!({"metadata": {"labels": {"b": "2"}}, "spec": {"containers": [{"name": "x"}, {"name": "y"}], "replicas": 1}}),
            ),
            (
                "lists are replaced, not merged",
                json!({"spec": {"containers": [{"name": "z"}]}}),
                json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"containers": [{"name": "z"}], "replicas": 1}}),
            ),
            (
                "objects merge recursively and scalars replace",
                json!({"spec": {"replicas": 3, "paused": true}}),
                json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"containers": [{"name": "x"}, {"name": "y"}], "replicas": 3, "paused": true}}),
            ),
            (
                "nulls inside added values are dropped",
                json!({"status": {"phase": "Running", "reason": null}, "spec": {"replicas": {"x": null}}}),
                json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"containers": [{"name": "x"}, {"name": "y"}], "replicas": {}}, "status": {"phase": "Running"}}),
            ),
            (
                "strategic directives mean nothing here",
                json!({"spec": {"$patch": "delete"}}),
                json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"containers": [{"name": "x"}, {"name": "y"}], "replicas": 1, "$patch": "delete"}}),
            ),
        ];
        for (name, patch, want) in cases {
            assert_eq!(
                patched(
                    PatchType::Merge,
                    &PatchSchema::new(),
                    original.clone(),
                    patch
                ),
                want,
                "{name}"
            );
        }
    }

    #[test]
    fn merge_patch_that_is_not_an_object_is_an_error() {
        for body in ["null", "[1]", "true"] {
            let err = apply_patch(
                &pod(),
                body.as_bytes(),
                PatchType::Merge,
                &PatchSchema::new(),
            )
            .expect_err("only objects are merge patches");
            assert!(
                matches!(err, PatchError::MalformedBody(_)),
                "{body}: {err:?}"
            );
        }
    }

    // --- JSON patch ------------------------------------------------------------------------------

    #[test]
    fn json_patch_operations_follow_rfc_6902() {
        let original = json!({
            "metadata": {"name": "p", "annotations": {"a/b": "1", "c~d": "2"}},
            "spec": {"list": [1, 2, 3]}
        });
        let cases: Vec<(&str, Value, Value)> = vec![
            (
                "add a member",
                json!([{"op": "add", "path": "/metadata/labels", "value": {"x": "y"}}]),
                json!({"metadata": {"name": "p", "annotations": {"a/b": "1", "c~d": "2"}, "labels": {"x": "y"}}, "spec": {"list": [1, 2, 3]}}),
            ),
            (
                "add inserts before an index",
                json!([{"op": "add", "path": "/spec/list/1", "value": 9}]),
                json!({"metadata": {"name": "p", "annotations": {"a/b": "1", "c~d": "2"}}, "spec": {"list": [1, 9, 2, 3]}}),
            ),
            (
                "add with - appends",
                json!([{"op": "add", "path": "/spec/list/-", "value": 4}]),
                json!({"metadata": {"name": "p", "annotations": {"a/b": "1", "c~d": "2"}}, "spec": {"list": [1, 2, 3, 4]}}),
            ),
            (
                "add at the length appends",
                json!([{"op": "add", "path": "/spec/list/3", "value": 4}]),
                json!({"metadata": {"name": "p", "annotations": {"a/b": "1", "c~d": "2"}}, "spec": {"list": [1, 2, 3, 4]}}),
            ),
            (
                "remove with ~1 and ~0 escapes",
                json!([
                    {"op": "remove", "path": "/metadata/annotations/a~1b"},
                    {"op": "remove", "path": "/metadata/annotations/c~0d"}
                ]),
                json!({"metadata": {"name": "p", "annotations": {}}, "spec": {"list": [1, 2, 3]}}),
            ),
            (
                "remove an array element",
                json!([{"op": "remove", "path": "/spec/list/0"}]),
                json!({"metadata": {"name": "p", "annotations": {"a/b": "1", "c~d": "2"}}, "spec": {"list": [2, 3]}}),
            ),
            (
                "replace a value",
                json!([{"op": "replace", "path": "/metadata/name", "value": "q"}]),
                json!({"metadata": {"name": "q", "annotations": {"a/b": "1", "c~d": "2"}}, "spec": {"list": [1, 2, 3]}}),
            ),
            (
                "move a value",
                json!([{"op": "move", "from": "/spec/list", "path": "/spec/items"}]),
                json!({"metadata": {"name": "p", "annotations": {"a/b": "1", "c~d": "2"}}, "spec": {"items": [1, 2, 3]}}),
            ),
            (
                "copy a value",
                json!([{"op": "copy", "from": "/spec/list/2", "path": "/spec/list/0"}]),
                json!({"metadata": {"name": "p", "annotations": {"a/b": "1", "c~d": "2"}}, "spec": {"list": [3, 1, 2, 3]}}),
            ),
            (
                "passing tests change nothing, numbers compare by value",
                json!([
                    {"op": "test", "path": "/metadata/name", "value": "p"},
                    {"op": "test", "path": "/spec/list/0", "value": 1.0},
                    {"op": "test", "path": "/metadata/annotations", "value": {"c~d": "2", "a/b": "1"}}
                ]),
                original.clone(),
            ),
            (
                "test then replace, the optimistic-concurrency idiom",
                json!([
                    {"op": "test", "path": "/metadata/name", "value": "p"},
                    {"op": "replace", "path": "/spec/list", "value": []}
                ]),
                json!({"metadata": {"name": "p", "annotations": {"a/b": "1", "c~d": "2"}}, "spec": {"list": []}}),
            ),
            (
                "an empty patch changes nothing",
                json!([]),
                original.clone(),
            ),
        ];
        for (name, patch, want) in cases {
            assert_eq!(
                patched(
                    PatchType::Json,
                    &PatchSchema::new(),
                    original.clone(),
                    patch
                ),
                want,
                "{name}"
            );
        }
    }

    #[test]
    fn json_patch_failures_are_errors() {
        let original = json!({"metadata": {"name": "p"}, "spec": {"list": [1, 2]}});
        let cases: Vec<(&str, &str, &str)> = vec![
            (
                "failed test",
                r#"[{"op":"test","path":"/metadata/name","value":"q"}]"#,
                "testing value /metadata/name failed: test failed",
            ),
            (
                "test of a missing path",
                r#"[{"op":"test","path":"/metadata/uid","value":"q"}]"#,
                "missing path",
            ),
            (
                "remove a missing member",
                r#"[{"op":"remove","path":"/metadata/labels"}]"#,
                "unable to remove nonexistent key",
            ),
            (
                "remove past the end",
                r#"[{"op":"remove","path":"/spec/list/2"}]"#,
                "invalid index",
            ),
            (
                "replace a missing member",
                r#"[{"op":"replace","path":"/spec/replicas","value":1}]"#,
                "missing key",
            ),
            (
                "add under a missing parent",
                r#"[{"op":"add","path":"/status/phase","value":"x"}]"#,
                "missing path",
            ),
            (
                "add past the end",
                r#"[{"op":"add","path":"/spec/list/5","value":1}]"#,
                "invalid index",
            ),
            (
                "index with a leading zero",
                r#"[{"op":"replace","path":"/spec/list/01","value":1}]"#,
                "missing key",
            ),
            (
                "move from a missing path",
                r#"[{"op":"move","from":"/nope","path":"/x"}]"#,
                "missing from path",
            ),
            (
                "move into its own child",
                r#"[{"op":"move","from":"/spec","path":"/spec/x"}]"#,
                "parent",
            ),
            (
                "copy from a missing path",
                r#"[{"op":"copy","from":"/nope","path":"/x"}]"#,
                "missing from path",
            ),
            (
                "unknown operation",
                r#"[{"op":"frobnicate","path":"/x"}]"#,
                "unexpected kind: frobnicate",
            ),
            (
                "missing op",
                r#"[{"path":"/x"}]"#,
                "unexpected kind: unknown",
            ),
            (
                "missing value",
                r#"[{"op":"add","path":"/x"}]"#,
                "missing value field",
            ),
            (
                "bad pointer",
                r#"[{"op":"add","path":"x","value":1}]"#,
                "does not start with '/'",
            ),
            (
                "bad escape",
                r#"[{"op":"add","path":"/a~2","value":1}]"#,
                "invalid '~' escape",
            ),
        ];
        for (name, body, fragment) in cases {
            let err = apply_patch(
                &original,
                body.as_bytes(),
                PatchType::Json,
                &PatchSchema::new(),
            )
            .expect_err(name);
            assert!(
                matches!(err, PatchError::OperationFailed(_)),
                "{name}: {err:?}"
            );
            assert!(err.to_string().contains(fragment), "{name}: {err}");
            assert_eq!(err.status_code(), 422);
        }
    }

    #[test]
    fn json_patch_failure_leaves_nothing_applied() {
        let original = json!({"a": 1});
        let body = br#"[{"op":"add","path":"/b","value":2},{"op":"test","path":"/a","value":2}]"#;
        assert!(apply_patch(&original, body, PatchType::Json, &PatchSchema::new()).is_err());
        assert_eq!(original, json!({"a": 1}));
    }

    #[test]
    fn json_patch_body_must_be_an_operation_array() {
        for body in [r#"{"op":"add"}"#, "[1]", "null"] {
            let err = apply_patch(
                &pod(),
                body.as_bytes(),
                PatchType::Json,
                &PatchSchema::new(),
            )
            .expect_err(body);
            assert!(
                matches!(err, PatchError::MalformedBody(_)),
                "{body}: {err:?}"
            );
        }
    }

    #[test]
    fn json_patch_with_too_many_operations_is_refused() {
        let ops: Vec<Value> = (0..=MAX_JSON_PATCH_OPERATIONS)
            .map(|_| json!({"op": "test", "path": "", "value": {}}))
            .collect();
        let body = serde_json::to_vec(&ops).expect("a Value always serializes");
        let err = apply_patch(&json!({}), &body, PatchType::Json, &PatchSchema::new())
            .expect_err("too many operations");
        assert_eq!(
            err,
            PatchError::TooManyOperations {
                limit: MAX_JSON_PATCH_OPERATIONS,
                got: MAX_JSON_PATCH_OPERATIONS + 1
            }
        );
        assert_eq!(err.status_code(), 413);
    }

    #[test]
    fn json_patch_copies_that_grow_the_document_without_bound_are_refused() {
        // Each copy doubles /a; 30 doublings of a 1 KiB string would need a terabyte.
        let mut ops = Vec::new();
        for _ in 0..30 {
            ops.push(json!({"op": "copy", "from": "/a", "path": "/b"}));
            ops.push(json!({"op": "add", "path": "/a", "value": []}));
            ops.push(json!({"op": "add", "path": "/a/-", "value": null}));
            ops.push(json!({"op": "move", "from": "/b", "path": "/a/0"}));
            ops.push(json!({"op": "copy", "from": "/a/0", "path": "/a/1"}));
        }
        let body = serde_json::to_vec(&ops).expect("a Value always serializes");
        let original = json!({"a": "x".repeat(1024)});
        let err = apply_patch(&original, &body, PatchType::Json, &PatchSchema::new())
            .expect_err("copy budget");
        assert!(
            matches!(err, PatchError::CopyLimitExceeded { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn json_patch_at_the_root_replaces_the_document() {
        let out = patched(
            PatchType::Json,
            &PatchSchema::new(),
            json!({"a": 1}),
            json!([{"op": "replace", "path": "", "value": {"b": 2}}]),
        );
        assert_eq!(out, json!({"b": 2}));
    }

    // --- bodies and depth ---------------------------------------------------------------------

    #[test]
    fn malformed_bodies_are_errors_for_every_patch_type() {
        for kind in [PatchType::Json, PatchType::Merge, PatchType::StrategicMerge] {
            for body in [&b"{"[..], b"", b"{\"a\":}", b"\xff\xfe", b"[1,]"] {
                let err = apply_patch(&pod(), body, kind, &pod_patch_schema())
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
            let err = apply_patch(&pod(), body.as_bytes(), kind, &pod_patch_schema())
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
    fn schemas_carry_core_v1_patch_tags() {
        let pod = pod_patch_schema();
        let key = |k: &str| ListStrategy::MergeByKey(k.to_string());
        let cases = [
            ("metadata.finalizers", ListStrategy::MergePrimitives),
            ("metadata.ownerReferences", key("uid")),
            ("spec.volumes", key("name")),
            ("spec.containers", key("name")),
            ("spec.initContainers.env", key("name")),
            ("spec.ephemeralContainers.volumeMounts", key("mountPath")),
            ("spec.containers.volumeDevices", key("devicePath")),
            ("spec.containers.ports", key("containerPort")),
            ("spec.containers.args", ListStrategy::Atomic),
            ("spec.containers.envFrom", ListStrategy::Atomic),
            ("spec.imagePullSecrets", key("name")),
            ("spec.hostAliases", key("ip")),
            ("spec.topologySpreadConstraints", key("topologyKey")),
            ("spec.resourceClaims", key("name")),
            ("spec.schedulingGates", key("name")),
            ("spec.tolerations", ListStrategy::Atomic),
            ("status.conditions", key("type")),
            ("status.podIPs", key("ip")),
            ("status.hostIPs", key("ip")),
            ("status.containerStatuses", ListStrategy::Atomic),
        ];
        for (path, want) in cases {
            assert_eq!(pod.list_strategy(path), want, "{path}");
        }
        assert!(pod.retains_keys("spec.volumes"));
        assert!(pod.retains_keys("spec.resourceClaims"));
        assert!(!pod.retains_keys("spec.containers"));

        let node = node_patch_schema();
        assert_eq!(
            node.list_strategy("spec.podCIDRs"),
            ListStrategy::MergePrimitives
        );
        assert_eq!(node.list_strategy("spec.taints"), ListStrategy::Atomic);
        assert_eq!(node.list_strategy("status.addresses"), key("type"));
        assert_eq!(node.list_strategy("status.conditions"), key("type"));

        let generic = generic_patch_schema();
        assert_eq!(
            generic.list_strategy("metadata.finalizers"),
            ListStrategy::MergePrimitives
        );
        assert_eq!(
            generic.list_strategy("spec.containers"),
            ListStrategy::Atomic
        );

        let workload = generic_patch_schema().graft("spec.template", &pod_patch_schema());
        assert_eq!(
            workload.list_strategy("spec.template.spec.containers.env"),
            key("name")
        );
    }
}
