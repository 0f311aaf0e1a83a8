//! Decoding request bodies through the kind's k8s-openapi type, with strict field checking.
//!
//! kube-apiserver decodes into Go structs: unknown fields drop out (reported under
//! `fieldValidation=Strict` as `strict decoding error: unknown field "spec.x"`) and wrong types
//! fail with 400 `... cannot be handled as a Pod: ...`. Here the same happens by decoding into
//! the k8s-openapi type and comparing the result with the input: whatever the type did not
//! keep was unknown.

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

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

/// Checks `apiVersion` and `kind` of a body meant for `info`'s endpoint.
pub fn check_type_meta(info: &ResourceInfo, body: &Value) -> Result<(), ApiError> {
    let Some(obj) = body.as_object() else {
        return Err(cannot_handle(info, "the body is not a JSON object"));
    };
    let shown = || {
        let mut text = body.to_string();
        if text.len() > 200 {
            let mut cut = 200;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
        }
        text
    };
    let kind = match obj.get("kind").and_then(Value::as_str) {
        Some(kind) if !kind.is_empty() => kind,
        _ => {
            return Err(ApiError::bad_request(format!(
                "Object 'Kind' is missing in '{}'",
                shown()
            )))
        }
    };
    let api_version = match obj.get("apiVersion").and_then(Value::as_str) {
        Some(v) if !v.is_empty() => v,
        _ => {
            return Err(ApiError::bad_request(format!(
                "Object 'apiVersion' is missing in '{}'",
                shown()
            )))
        }
    };
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
    check_type_meta(info, &body)?;
    let typed: K = serde_path_to_error::deserialize(&body).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path.is_empty() || path == "." {
            cannot_handle(info, inner)
        } else {
            cannot_handle(info, format!("{path}: {inner}"))
        }
    })?;
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

/// The 400 for unknown fields under `fieldValidation=Strict`, all of them in one message.
pub fn strict_error(info: &ResourceInfo, unknown: &[String]) -> ApiError {
    strict_fields_error(info, &[], unknown)
}

/// The 400 for duplicate and unknown fields under `fieldValidation=Strict`.
pub fn strict_fields_error(
    info: &ResourceInfo,
    duplicate: &[String],
    unknown: &[String],
) -> ApiError {
    let listed: Vec<String> = duplicate
        .iter()
        .map(|f| format!("duplicate field \"{f}\""))
        .chain(unknown.iter().map(|f| format!("unknown field \"{f}\"")))
        .collect();
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
    fn type_meta_is_checked() {
        let missing = json!({"apiVersion": "v1", "metadata": {}});
        assert!(check_type_meta(pods(), &missing)
            .expect_err("no kind")
            .message
            .starts_with("Object 'Kind' is missing in"));
        let v2 = json!({"apiVersion": "v2", "kind": "Pod"});
        assert_eq!(
            check_type_meta(pods(), &v2).expect_err("v2").message,
            "no kind \"Pod\" is registered for version \"v2\" in scheme \"pkg/api/legacyscheme/scheme.go:30\""
        );
    }

    #[test]
    fn strict_error_lists_every_field() {
        let err = strict_error(pods(), &["a".into(), "b.c".into()]);
        assert_eq!(
            err.message,
            "Pod in version \"v1\" cannot be handled as a Pod: strict decoding error: unknown field \"a\", unknown field \"b.c\""
        );
    }
}

/// The paths of keys that appear twice in one JSON object of `bytes` (strict decoding
/// reports them as `duplicate field "metadata.name"`). Malformed JSON yields no paths: the
/// parse error is reported elsewhere.
pub fn duplicate_fields(bytes: &[u8]) -> Vec<String> {
    use serde::de::{
        DeserializeSeed, Deserializer as _, IgnoredAny, MapAccess, SeqAccess, Visitor,
    };

    struct Walk<'a> {
        path: String,
        found: &'a mut Vec<String>,
    }

    impl<'de> DeserializeSeed<'de> for Walk<'_> {
        type Value = ();
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Walk<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_bool<E>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_str<E>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            let mut i = 0;
            loop {
                let path = format!("{}[{i}]", self.path);
                let walk = Walk {
                    path,
                    found: &mut *self.found,
                };
                if seq.next_element_seed(walk)?.is_none() {
                    return Ok(());
                }
                i += 1;
            }
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let mut seen = std::collections::HashSet::new();
            while let Some(key) = map.next_key::<String>()? {
                let path = if self.path.is_empty() {
                    key.clone()
                } else {
                    format!("{}.{key}", self.path)
                };
                if !seen.insert(key) {
                    self.found.push(path);
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
                map.next_value_seed(Walk {
                    path,
                    found: &mut *self.found,
                })?;
            }
            Ok(())
        }
    }

    let mut found = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let walk = Walk {
        path: String::new(),
        found: &mut found,
    };
    if de.deserialize_any(walk).is_err() {
        return Vec::new();
    }
    found
}

#[cfg(test)]
mod duplicate_tests {
    use super::duplicate_fields;

    #[test]
    fn duplicate_keys_are_found_with_their_paths() {
        let body = br#"{"metadata":{"name":"a","name":"b"},"spec":{"containers":[{"image":"x","image":"y"}]}}"#;
        assert_eq!(
            duplicate_fields(body),
            vec![
                "metadata.name".to_string(),
                "spec.containers[0].image".to_string()
            ]
        );
        assert!(duplicate_fields(br#"{"a":1,"b":{"a":2}}"#).is_empty());
        assert!(duplicate_fields(b"{").is_empty());
    }
}
