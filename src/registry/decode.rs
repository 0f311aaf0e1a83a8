//! Decoding request bodies: bytes parsed once (duplicate keys found in the same pass), then
//! decoded through the kind's k8s-openapi type, with strict field checking.
//!
//! kube-apiserver decodes into Go structs: unknown fields drop out (reported under
//! `fieldValidation=Strict` as `strict decoding error: unknown field "spec.x"`) and wrong types
//! fail with 400 `... cannot be handled as a Pod: ...`. Here the same happens by decoding into
//! the k8s-openapi type and comparing the result with the input: whatever the type did not
//! keep was unknown.

use serde::de::{DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::Serialize;
use serde_json::{Map, Value};

use super::ResourceInfo;
use crate::meta::ApiError;

/// A decoded body: the canonical object, and the paths of the fields the kind does not have.
#[derive(Debug)]
pub struct Decoded {
    pub object: Value,
    pub unknown_fields: Vec<String>,
}

/// The message prefix of every decode failure, as upstream words it.
pub fn cannot_handle(info: &ResourceInfo, why: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!(
        "{kind} in version \"{version}\" cannot be handled as a {kind}: {why}",
        kind = info.kind,
        version = info.version
    ))
}

/// Checks `apiVersion` and `kind` of a body meant for `info`'s endpoint. Where the body leaves
/// them out (or empty) they are the endpoint's, as upstream's decoder fills a missing kind, and a
/// missing group and version together, from the endpoint's defaults: a Python client's
/// `create_namespace({"metadata": {"name": "x"}})` creates the namespace.
pub fn check_type_meta(info: &ResourceInfo, body: &mut Value) -> Result<(), ApiError> {
    let Some(obj) = body.as_object_mut() else {
        return Err(cannot_handle(info, "the body is not a JSON object"));
    };
    let unset = |v: Option<&Value>| v.is_none_or(|v| v.is_null() || v.as_str() == Some(""));
    if unset(obj.get("kind")) {
        obj.insert("kind".into(), Value::from(info.kind));
    }
    if unset(obj.get("apiVersion")) {
        obj.insert("apiVersion".into(), Value::from(info.api_version()));
    }
    // Upstream reads both into a Go struct of strings first.
    let text = |field: &str| {
        match &obj[field] {
        Value::String(s) => Ok(s.as_str()),
        other => Err(ApiError::bad_request(format!(
            "couldn't get version/kind; json parse error: json: cannot unmarshal {} into Go struct field .{field} of type string",
            match other {
                Value::Bool(_) => "bool",
                Value::Number(_) => "number",
                Value::Array(_) => "array",
                _ => "object",
            }
        ))),
    }
    };
    let (api_version, kind) = (text("apiVersion")?, text("kind")?);
    if api_version != info.api_version() || kind != info.kind {
        return Err(ApiError::bad_request(format!(
            "no kind \"{kind}\" is registered for version \"{api_version}\" in scheme \"pkg/api/legacyscheme/scheme.go:30\""
        )));
    }
    Ok(())
}

/// Decodes `body` as `K` and reports the fields `K` does not know.
pub fn decode_as<K: DeserializeOwned + Serialize>(
    info: &ResourceInfo,
    body: Value,
) -> Result<Decoded, ApiError> {
    decode_typed::<K>(info, body, |_| Ok(()))
}

/// Decodes `body` as `K` (one conversion to the type), lets `canonical` check and rewrite the
/// typed object (e.g. quantities in their one stored spelling), and encodes it once; whatever
/// the type did not keep is reported as unknown.
pub fn decode_typed<K: DeserializeOwned + Serialize>(
    info: &ResourceInfo,
    mut body: Value,
    canonical: impl FnOnce(&mut K) -> Result<(), ApiError>,
) -> Result<Decoded, ApiError> {
    check_type_meta(info, &mut body)?;
    let mut typed: K = serde_path_to_error::deserialize(&body).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path.is_empty() || path == "." {
            cannot_handle(info, inner)
        } else {
            cannot_handle(info, format!("{path}: {inner}"))
        }
    })?;
    canonical(&mut typed)?;
    let object = serde_json::to_value(&typed).map_err(ApiError::internal)?;
    let mut unknown_fields = Vec::new();
    collect_unknown(&body, &object, &mut String::new(), &mut unknown_fields);
    Ok(Decoded {
        object,
        unknown_fields,
    })
}

/// Walks `input` beside `known` (the same data after a typed round trip); a key of `input`
/// missing from `known` was dropped by the type, so it is unknown.
fn collect_unknown(input: &Value, known: &Value, path: &mut String, out: &mut Vec<String>) {
    match (input, known) {
        (Value::Object(given), Value::Object(kept)) => {
            for (key, value) in given {
                if value.is_null() {
                    continue;
                }
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                match kept.get(key) {
                    Some(kept_value) => collect_unknown(value, kept_value, path, out),
                    None => out.push(path.clone()),
                }
                path.truncate(len);
            }
        }
        (Value::Array(given), Value::Array(kept)) => {
            for (i, (value, kept_value)) in given.iter().zip(kept).enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                collect_unknown(value, kept_value, path, out);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

/// What `fieldValidation=Warn` sends for duplicate and unknown fields: one warning each,
/// worded as upstream's strict decoding errors (`duplicate field "x"`, `unknown field "y"`).
pub fn field_warnings(duplicate: &[String], unknown: &[String]) -> Vec<String> {
    duplicate
        .iter()
        .map(|f| format!("duplicate field \"{f}\""))
        .chain(unknown.iter().map(|f| format!("unknown field \"{f}\"")))
        .collect()
}

/// The 400 for duplicate and unknown fields under `fieldValidation=Strict`.
pub fn strict_fields_error(
    info: &ResourceInfo,
    duplicate: &[String],
    unknown: &[String],
) -> ApiError {
    let listed = field_warnings(duplicate, unknown);
    cannot_handle(
        info,
        format!("strict decoding error: {}", listed.join(", ")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;
    use serde_json::json;

    fn pods() -> &'static ResourceInfo {
        super::super::pods::info()
    }

    #[test]
    fn unknown_fields_are_reported_with_their_paths() {
        let body = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"},
            "spec": {"containers": [{"name": "c", "image": "i", "imagee": "x"}], "foo": 1}});
        let decoded = decode_as::<Pod>(pods(), body).expect("decodes");
        assert_eq!(
            decoded.unknown_fields,
            vec![
                "spec.containers[0].imagee".to_string(),
                "spec.foo".to_string()
            ]
        );
        assert!(decoded.object.pointer("/spec/foo").is_none());
    }

    #[test]
    fn wrong_types_are_a_bad_request_naming_the_field() {
        let body = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"},
            "spec": {"containers": [{"name": "c", "image": "i", "command": ["sleep", 1200]}]}});
        let err = decode_as::<Pod>(pods(), body).expect_err("must fail");
        assert_eq!(err.code, 400);
        assert!(
            err.message.starts_with(
                "Pod in version \"v1\" cannot be handled as a Pod: spec.containers[0].command[1]"
            ),
            "{}",
            err.message
        );
    }

    #[test]
    fn type_meta_is_checked_and_defaulted_from_the_endpoint() {
        let mut missing = json!({"metadata": {}});
        check_type_meta(pods(), &mut missing).expect("defaults fill it");
        assert_eq!(missing["kind"], "Pod");
        assert_eq!(missing["apiVersion"], "v1");
        let mut empty = json!({"apiVersion": "", "kind": "", "metadata": {}});
        check_type_meta(pods(), &mut empty).expect("empty is unset");
        assert_eq!(
            (empty["kind"].as_str(), empty["apiVersion"].as_str()),
            (Some("Pod"), Some("v1"))
        );
        let mut v2 = json!({"apiVersion": "v2", "kind": "Pod"});
        assert_eq!(
            check_type_meta(pods(), &mut v2).expect_err("v2").message,
            "no kind \"Pod\" is registered for version \"v2\" in scheme \"pkg/api/legacyscheme/scheme.go:30\""
        );
        let mut node = json!({"kind": "Node"});
        assert_eq!(
            check_type_meta(pods(), &mut node).expect_err("a Node").message,
            "no kind \"Node\" is registered for version \"v1\" in scheme \"pkg/api/legacyscheme/scheme.go:30\""
        );
        let mut number = json!({"kind": 3});
        assert_eq!(
            check_type_meta(pods(), &mut number).expect_err("a number").message,
            "couldn't get version/kind; json parse error: json: cannot unmarshal number into Go struct field .kind of type string"
        );
    }

    #[test]
    fn strict_error_lists_every_field() {
        let err = strict_fields_error(pods(), &[], &["a".into(), "b.c".into()]);
        assert_eq!(
            err.message,
            "Pod in version \"v1\" cannot be handled as a Pod: strict decoding error: unknown field \"a\", unknown field \"b.c\""
        );
    }
}

/// A request body parsed once: the object (where a key appears twice the last one counts, as
/// Go's decoder has it) and the paths of the keys that appeared twice.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parsed {
    pub object: Value,
    pub duplicate_fields: Vec<String>,
}

impl From<Value> for Parsed {
    fn from(object: Value) -> Self {
        Parsed {
            object,
            duplicate_fields: Vec::new(),
        }
    }
}

/// Parses JSON `bytes` in one pass into a value and the paths of its duplicate keys (strict
/// decoding reports them as `duplicate field "metadata.name"`). Errors are serde_json's own,
/// word for word as `serde_json::from_slice` gives them.
pub fn parse_json(bytes: &[u8]) -> Result<Parsed, serde_json::Error> {
    let mut duplicate_fields = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let object = Build {
        path: String::new(),
        duplicates: &mut duplicate_fields,
    }
    .deserialize(&mut de)?;
    de.end()?;
    Ok(Parsed {
        object,
        duplicate_fields,
    })
}

/// Builds a [`Value`] like serde_json's own visitor does, and records the path of every key
/// that appears a second time in the same object.
struct Build<'a> {
    path: String,
    duplicates: &'a mut Vec<String>,
}

impl<'de> DeserializeSeed<'de> for Build<'_> {
    type Value = Value;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Build<'_> {
    type Value = Value;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any valid JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        loop {
            let element = Build {
                path: format!("{}[{}]", self.path, items.len()),
                duplicates: &mut *self.duplicates,
            };
            match seq.next_element_seed(element)? {
                Some(value) => items.push(value),
                None => return Ok(Value::Array(items)),
            }
        }
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = if self.path.is_empty() {
                key.clone()
            } else {
                format!("{}.{key}", self.path)
            };
            if object.contains_key(&key) {
                self.duplicates.push(path.clone());
            }
            let value = map.next_value_seed(Build {
                path,
                duplicates: &mut *self.duplicates,
            })?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod parse_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn duplicate_keys_are_found_in_the_same_pass_with_their_paths() {
        let body = br#"{"metadata":{"name":"a","name":"b"},"spec":{"containers":[{"image":"x"},{"image":"y","image":"z"}]},"spec":{}}"#;
        let parsed = parse_json(body).expect("valid JSON");
        assert_eq!(
            parsed.duplicate_fields,
            vec![
                "metadata.name".to_string(),
                "spec.containers[1].image".to_string(),
                "spec".to_string(),
            ]
        );
        // The last occurrence wins, in the first one's place, as serde_json's own map does.
        assert_eq!(
            parsed.object,
            json!({"metadata": {"name": "b"}, "spec": {}})
        );
    }

    #[test]
    fn nested_arrays_and_repeated_names_at_other_levels_are_not_duplicates() {
        let parsed = parse_json(br#"{"a":1,"b":{"a":2},"c":[[{"k":1,"k":2}]]}"#).expect("valid");
        assert_eq!(parsed.duplicate_fields, vec!["c[0][0].k".to_string()]);
        assert_eq!(
            parsed.object,
            json!({"a": 1, "b": {"a": 2}, "c": [[{"k": 2}]]})
        );
    }

    #[test]
    fn parsing_matches_serde_json_values_and_errors() {
        for text in [
            r#"{"a":[1,-2,3.5,1e400,true,null,"\u00e9"],"b":{}}"#,
            r#"{"a":18446744073709551615,"b":-9223372036854775808}"#,
            "[1,2]",
            "\"x\"",
            "{",
            "{\"a\":1} x",
            "{\"a\":01}",
            "",
            "[\"\\ud800\"]",
        ] {
            let ours = parse_json(text.as_bytes()).map(|p| p.object);
            let theirs = serde_json::from_slice::<Value>(text.as_bytes());
            match (ours, theirs) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{text}"),
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{text}"),
                (a, b) => panic!("{text}: {a:?} vs {b:?}"),
            }
        }
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert_eq!(
            parse_json(deep.as_bytes())
                .map(|_| ())
                .map_err(|e| e.to_string()),
            serde_json::from_slice::<Value>(deep.as_bytes())
                .map(|_| ())
                .map_err(|e| e.to_string())
        );
    }
}
