//! Sets of field paths, as upstream's structured-merge-diff `fieldpath.Set` holds them, and
//! their FieldsV1 JSON encoding (`{"f:metadata":{"f:labels":{".":{},"f:app":{}}}}`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::{Map, Value};

/// One step of a field path. The order (fields, then keys, then values, then indexes) is
/// the order upstream sorts them in.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathElement {
    /// A field of an object or an entry of a map: `f:name`.
    Field(String),
    /// An element of an associative list, by its keys: `k:{"name":"c"}` (the canonical JSON
    /// of an object holding the key fields, sorted by name).
    Key(String),
    /// An element of a set: `v:"x"` (its canonical JSON).
    Value(String),
    /// An element of a list by position: `i:0`.
    Index(usize),
}

/// A FieldsV1 document that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FieldsV1Error(pub String);

impl PathElement {
    /// The element of an associative list item: its key fields, sorted by name. Keys the item
    /// lacks are left out.
    pub fn key(item: &Map<String, Value>, keys: &[String]) -> PathElement {
        let mut sorted: Vec<&String> = keys.iter().collect();
        sorted.sort();
        sorted.dedup();
        let mut fields = Map::new();
        for k in sorted {
            if let Some(v) = item.get(k) {
                fields.insert(k.clone(), canonical(v));
            }
        }
        PathElement::Key(Value::Object(fields).to_string())
    }

    /// The element of a set item.
    pub fn value(v: &Value) -> PathElement {
        PathElement::Value(canonical(v).to_string())
    }

    /// The FieldsV1 form: `f:name`, `k:{...}`, `v:...`, `i:N`.
    pub fn encode(&self) -> String {
        match self {
            PathElement::Field(name) => format!("f:{name}"),
            PathElement::Key(json) => format!("k:{json}"),
            PathElement::Value(json) => format!("v:{json}"),
            PathElement::Index(i) => format!("i:{i}"),
        }
    }

    /// Reads the FieldsV1 form of a path element.
    pub fn decode(text: &str) -> Result<PathElement, FieldsV1Error> {
        let bad = |why: &str| FieldsV1Error(format!("parsing path element {text:?}: {why}"));
        let Some((prefix, rest)) = text.split_once(':') else {
            return Err(bad("missing colon"));
        };
        match prefix {
            "f" => Ok(PathElement::Field(rest.to_string())),
            "k" => match serde_json::from_str::<Value>(rest) {
                Ok(Value::Object(fields)) => {
                    let keys: Vec<String> = fields.keys().cloned().collect();
                    Ok(PathElement::key(&fields, &keys))
                }
                _ => Err(bad("the key is not a JSON object")),
            },
            "v" => serde_json::from_str::<Value>(rest)
                .map(|v| PathElement::value(&v))
                .map_err(|e| bad(&e.to_string())),
            "i" => rest
                .parse()
                .map(PathElement::Index)
                .map_err(|e| bad(&e.to_string())),
            _ => Err(bad("unknown prefix")),
        }
    }
}

/// Upstream's path notation, used in conflict messages: `.name`, `[name="c"]`, `[="x"]`,
/// `[0]`.
impl fmt::Display for PathElement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathElement::Field(name) => write!(f, ".{name}"),
            PathElement::Key(json) => {
                let fields = match serde_json::from_str::<Value>(json) {
                    Ok(Value::Object(fields)) => fields,
                    _ => Map::new(),
                };
                let parts: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
                write!(f, "[{}]", parts.join(","))
            }
            PathElement::Value(json) => write!(f, "[={json}]"),
            PathElement::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// A path from the object's root.
pub type Path = Vec<PathElement>;

/// Upstream's notation of a whole path (`.spec.containers[name="c"].image`).
pub fn path_string(path: &[PathElement]) -> String {
    path.iter().map(ToString::to_string).collect()
}

/// A value with its object members sorted, so that equal values encode alike.
pub(super) fn canonical(v: &Value) -> Value {
    match v {
        Value::Object(members) => {
            let mut sorted: Vec<(&String, &Value)> = members.iter().collect();
            sorted.sort_by(|a, b| a.0.cmp(b.0));
            Value::Object(
                sorted
                    .into_iter()
                    .map(|(k, v)| (k.clone(), canonical(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// A set of field paths: the paths that end here (`members`) and, for paths that go on, the
/// set below each element (`children`). A child set is never empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet {
    members: BTreeSet<PathElement>,
    children: BTreeMap<PathElement, FieldSet>,
}

impl FieldSet {
    pub fn new() -> FieldSet {
        FieldSet::default()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.is_empty()
    }

    /// Adds one path; the empty path (the object itself) is not a member of any set.
    pub fn insert(&mut self, path: &[PathElement]) {
        let Some((last, parents)) = path.split_last() else {
            return;
        };
        let mut set = self;
        for pe in parents {
            set = set.children.entry(pe.clone()).or_default();
        }
        set.members.insert(last.clone());
    }

    pub fn contains(&self, path: &[PathElement]) -> bool {
        let Some((last, parents)) = path.split_last() else {
            return false;
        };
        let mut set = self;
        for pe in parents {
            match set.children.get(pe) {
                Some(child) => set = child,
                None => return false,
            }
        }
        set.members.contains(last)
    }

    /// Whether the set holds `path` or any path below it.
    pub fn contains_prefix(&self, path: &[PathElement]) -> bool {
        let Some((last, parents)) = path.split_last() else {
            return !self.is_empty();
        };
        let mut set = self;
        for pe in parents {
            match set.children.get(pe) {
                Some(child) => set = child,
                None => return false,
            }
        }
        set.members.contains(last) || set.children.contains_key(last)
    }

    pub fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        out.members.extend(other.members.iter().cloned());
        for (pe, child) in &other.children {
            let merged = match out.children.get(pe) {
                Some(mine) => mine.union(child),
                None => child.clone(),
            };
            out.children.insert(pe.clone(), merged);
        }
        out
    }

    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let members = self.members.difference(&other.members).cloned().collect();
        let mut children = BTreeMap::new();
        for (pe, child) in &self.children {
            let rest = match other.children.get(pe) {
                Some(theirs) => child.difference(theirs),
                None => child.clone(),
            };
            if !rest.is_empty() {
                children.insert(pe.clone(), rest);
            }
        }
        FieldSet { members, children }
    }

    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let members = self.members.intersection(&other.members).cloned().collect();
        let mut children = BTreeMap::new();
        for (pe, child) in &self.children {
            if let Some(theirs) = other.children.get(pe) {
                let both = child.intersection(theirs);
                if !both.is_empty() {
                    children.insert(pe.clone(), both);
                }
            }
        }
        FieldSet { members, children }
    }

    /// Every member path, in order.
    pub fn paths(&self) -> Vec<Path> {
        let mut out = Vec::new();
        self.collect_paths(&mut Vec::new(), &mut out);
        out
    }

    fn collect_paths(&self, prefix: &mut Path, out: &mut Vec<Path>) {
        let mut elements: BTreeSet<&PathElement> = self.members.iter().collect();
        elements.extend(self.children.keys());
        for pe in elements {
            prefix.push(pe.clone());
            if self.members.contains(pe) {
                out.push(prefix.clone());
            }
            if let Some(child) = self.children.get(pe) {
                child.collect_paths(prefix, out);
            }
            prefix.pop();
        }
    }

    /// The FieldsV1 JSON of this set.
    pub fn to_fields_v1(&self) -> Value {
        Value::Object(self.encode_members(false))
    }

    fn encode_members(&self, include_self: bool) -> Map<String, Value> {
        let mut out = Map::new();
        if include_self {
            out.insert(".".into(), Value::Object(Map::new()));
        }
        let mut elements: BTreeSet<&PathElement> = self.members.iter().collect();
        elements.extend(self.children.keys());
        for pe in elements {
            let member = self.members.contains(pe);
            let inner = match self.children.get(pe) {
                Some(child) => child.encode_members(member),
                None => Map::new(),
            };
            out.insert(pe.encode(), Value::Object(inner));
        }
        out
    }

    /// Reads a FieldsV1 document.
    pub fn from_fields_v1(value: &Value) -> Result<FieldSet, FieldsV1Error> {
        let Value::Object(members) = value else {
            return Err(FieldsV1Error("FieldsV1 is not a JSON object".into()));
        };
        let mut set = FieldSet::new();
        for (text, inner) in members {
            if text == "." {
                continue;
            }
            let pe = PathElement::decode(text)?;
            let Value::Object(inner_members) = inner else {
                return Err(FieldsV1Error(format!(
                    "expected an object for path element {text:?}"
                )));
            };
            if inner_members.is_empty() || inner_members.contains_key(".") {
                set.members.insert(pe.clone());
            }
            let child = FieldSet::from_fields_v1(inner)?;
            if !child.is_empty() {
                set.children.insert(pe, child);
            }
        }
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn f(name: &str) -> PathElement {
        PathElement::Field(name.into())
    }

    fn set(paths: &[Vec<PathElement>]) -> FieldSet {
        let mut s = FieldSet::new();
        for p in paths {
            s.insert(p);
        }
        s
    }

    #[test]
    fn fields_v1_round_trips() {
        let cases = [
            json!({}),
            json!({"f:metadata": {"f:labels": {".": {}, "f:app": {}}}}),
            json!({"f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {".": {}, "f:image": {}, "f:name": {}}}}}),
            json!({"f:metadata": {"f:finalizers": {".": {}, "v:\"a/b\"": {}}}}),
            json!({"f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {"f:ports": {
                "k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}}}}}),
            json!({"f:items": {"i:0": {}, "i:1": {"f:a": {}}}}),
        ];
        for doc in cases {
            let parsed = FieldSet::from_fields_v1(&doc).expect("valid FieldsV1");
            assert_eq!(parsed.to_fields_v1(), doc, "{doc}");
        }
    }

    #[test]
    fn keys_are_canonical_whatever_the_order_they_are_written_in() {
        let doc = json!({"k:{\"protocol\":\"TCP\",\"containerPort\":80}": {}});
        let parsed = FieldSet::from_fields_v1(&doc).expect("valid");
        assert_eq!(
            parsed.to_fields_v1(),
            json!({"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {}})
        );
    }

    #[test]
    fn malformed_fields_v1_is_an_error() {
        let cases = [
            json!([]),
            json!({"x:a": {}}),
            json!({"nocolon": {}}),
            json!({"f:a": 1}),
            json!({"k:[1]": {}}),
            json!({"v:{": {}}),
            json!({"i:x": {}}),
        ];
        for doc in cases {
            assert!(FieldSet::from_fields_v1(&doc).is_err(), "{doc}");
        }
    }

    #[test]
    fn set_operations() {
        let a = vec![f("spec"), f("a")];
        let b = vec![f("spec"), f("b")];
        let c = vec![f("metadata"), f("labels")];
        let ab = set(&[a.clone(), b.clone()]);
        let bc = set(&[b.clone(), c.clone()]);
        let cases = [
            (ab.union(&bc), set(&[a.clone(), b.clone(), c.clone()])),
            (ab.difference(&bc), set(std::slice::from_ref(&a))),
            (bc.difference(&ab), set(std::slice::from_ref(&c))),
            (ab.intersection(&bc), set(std::slice::from_ref(&b))),
            (ab.difference(&ab), FieldSet::new()),
            (ab.intersection(&FieldSet::new()), FieldSet::new()),
        ];
        for (i, (got, want)) in cases.into_iter().enumerate() {
            assert_eq!(got, want, "case {i}");
        }
        assert!(ab.contains(&a) && !ab.contains(&c) && !ab.contains(&[f("spec")]));
        assert!(ab.contains_prefix(&[f("spec")]) && ab.contains_prefix(&a));
        assert!(!ab.contains_prefix(&[f("metadata")]) && !ab.contains_prefix(&[f("spec"), f("c")]));
    }

    #[test]
    fn a_parent_and_its_child_can_both_be_members() {
        let s = set(&[vec![f("labels")], vec![f("labels"), f("app")]]);
        assert_eq!(
            s.to_fields_v1(),
            json!({"f:labels": {".": {}, "f:app": {}}})
        );
        assert_eq!(s.paths().len(), 2);
        let without_parent = s.difference(&set(&[vec![f("labels")]]));
        assert_eq!(
            without_parent.to_fields_v1(),
            json!({"f:labels": {"f:app": {}}})
        );
    }

    #[test]
    fn paths_print_as_upstream_prints_them() {
        let key = PathElement::key(
            json!({"name": "c", "image": "x"})
                .as_object()
                .expect("object"),
            &["name".to_string()],
        );
        let cases = [
            (
                vec![f("spec"), f("containers"), key, f("image")],
                ".spec.containers[name=\"c\"].image",
            ),
            (
                vec![
                    f("metadata"),
                    f("finalizers"),
                    PathElement::value(&json!("a")),
                ],
                ".metadata.finalizers[=\"a\"]",
            ),
            (vec![f("items"), PathElement::Index(3)], ".items[3]"),
        ];
        for (path, want) in cases {
            assert_eq!(path_string(&path), want);
        }
    }
}
