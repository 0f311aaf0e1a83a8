//! `/openapi/v2` in the protobuf form kubectl asks for
//! (`application/com.github.proto-openapi.spec.v2@v1.0+protobuf`): the swagger document as
//! gnostic's `openapi.v2.Document` message, which client-go decodes for kubectl's client-side
//! validation and `explain --output=plaintext-openapiv2`.
//!
//! The message numbers are those of gnostic's `OpenAPIv2.proto`. Written here: the header
//! (`swagger`, `info`) and every definition with the schema keywords the document uses
//! (`$ref`, `type`, `format`, `description`, `required`, `items`, `properties`,
//! `additionalProperties`, `allOf`) and its `x-` extensions as YAML, as gnostic carries them.
//! Deviation: `paths` are left out of this form (kubectl's validation and `explain` read only
//! the definitions); the JSON form has them.

use prost::encoding::{encode_key, encode_varint, WireType};
use serde_json::Value;

/// A protobuf message being written: fields appended in the order given.
#[derive(Default)]
struct Message(Vec<u8>);

impl Message {
    fn bytes(&mut self, tag: u32, data: &[u8]) {
        encode_key(tag, WireType::LengthDelimited, &mut self.0);
        encode_varint(data.len() as u64, &mut self.0);
        self.0.extend_from_slice(data);
    }

    fn string(&mut self, tag: u32, text: &str) {
        if !text.is_empty() {
            self.bytes(tag, text.as_bytes());
        }
    }

    fn message(&mut self, tag: u32, inner: Message) {
        self.bytes(tag, &inner.0);
    }

    fn boolean(&mut self, tag: u32, value: bool) {
        if value {
            encode_key(tag, WireType::Varint, &mut self.0);
            encode_varint(1, &mut self.0);
        }
    }
}

/// gnostic `Any`: a value as its YAML text (field 2).
fn any(value: &Value) -> Message {
    let mut m = Message::default();
    let yaml = serde_yaml::to_string(value).unwrap_or_default();
    m.string(2, yaml.trim_end());
    m
}

/// gnostic `NamedSchema` / `NamedAny`: a name (1) and a value (2).
fn named(name: &str, value: Message) -> Message {
    let mut m = Message::default();
    m.string(1, name);
    m.message(2, value);
    m
}

/// gnostic `Schema` from a swagger schema object.
fn schema(s: &Value) -> Message {
    let mut m = Message::default();
    let text = |key: &str| s.get(key).and_then(Value::as_str).unwrap_or("");
    m.string(1, text("$ref"));
    m.string(2, text("format"));
    m.string(4, text("description"));
    for required in s
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        m.string(19, required.as_str().unwrap_or(""));
    }
    match s.get("additionalProperties") {
        Some(Value::Bool(b)) => {
            let mut item = Message::default();
            encode_key(2, WireType::Varint, &mut item.0);
            encode_varint(u64::from(*b), &mut item.0);
            m.message(21, item);
        }
        Some(inner @ Value::Object(_)) => {
            let mut item = Message::default();
            item.message(1, schema(inner));
            m.message(21, item);
        }
        _ => {}
    }
    if let Some(kind) = s.get("type") {
        let mut item = Message::default();
        match kind {
            Value::String(t) => item.string(1, t),
            Value::Array(ts) => ts
                .iter()
                .filter_map(Value::as_str)
                .for_each(|t| item.string(1, t)),
            _ => {}
        }
        m.message(22, item);
    }
    if let Some(items) = s.get("items") {
        let mut item = Message::default();
        item.message(1, schema(items));
        m.message(23, item);
    }
    for part in s
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        m.message(24, schema(part));
    }
    if let Some(properties) = s.get("properties").and_then(Value::as_object) {
        let mut props = Message::default();
        for (name, value) in properties {
            props.message(1, named(name, schema(value)));
        }
        m.message(25, props);
    }
    m.boolean(
        27,
        s.get("readOnly").and_then(Value::as_bool).unwrap_or(false),
    );
    if let Some(obj) = s.as_object() {
        for (key, value) in obj.iter().filter(|(k, _)| k.starts_with("x-")) {
            m.message(31, named(key, any(value)));
        }
    }
    m
}

/// The protobuf form of a swagger 2.0 document.
pub fn encode(doc: &Value) -> Vec<u8> {
    let mut m = Message::default();
    m.string(
        1,
        doc.get("swagger").and_then(Value::as_str).unwrap_or("2.0"),
    );
    let mut info = Message::default();
    let field = |key: &str| {
        doc.pointer(&format!("/info/{key}"))
            .and_then(Value::as_str)
            .unwrap_or("")
    };
    info.string(1, field("title"));
    info.string(2, field("version"));
    m.message(2, info);
    if let Some(definitions) = doc.get("definitions").and_then(Value::as_object) {
        let mut defs = Message::default();
        for (name, value) in definitions {
            defs.message(1, named(name, schema(value)));
        }
        m.message(9, defs);
    }
    m.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A hand-checked encoding: every byte of a tiny document, field by field.
    #[test]
    fn a_document_encodes_as_gnostic_lays_it_out() {
        let doc = json!({"swagger": "2.0", "info": {"title": "K", "version": "v1"},
            "definitions": {"A": {"type": "object", "required": ["x"],
                "properties": {"x": {"$ref": "#/definitions/B"}},
                "x-kubernetes-group-version-kind": [{"group": "", "kind": "A", "version": "v1"}]}}});
        let bytes = encode(&doc);
        let mut want: Vec<u8> = vec![0x0a, 3, b'2', b'.', b'0'];
        want.extend([0x12, 7, 0x0a, 1, b'K', 0x12, 2, b'v', b'1']);
        // Schema A: required (19), type (22), properties (25), extension (31).
        let gvk_yaml = b"- group: ''\n  kind: A\n  version: v1";
        let mut any = vec![0x12, gvk_yaml.len() as u8];
        any.extend_from_slice(gvk_yaml);
        let ext_name = b"x-kubernetes-group-version-kind";
        let mut ext = vec![0x0a, ext_name.len() as u8];
        ext.extend_from_slice(ext_name);
        ext.extend([0x12, any.len() as u8]);
        ext.extend(any);
        let reference = b"#/definitions/B";
        let mut x = vec![0x0a, reference.len() as u8];
        x.extend_from_slice(reference);
        let mut named_x = vec![0x0a, 1, b'x', 0x12, x.len() as u8];
        named_x.extend(x);
        let mut props = vec![0x0a, named_x.len() as u8];
        props.extend(named_x);
        let mut a = vec![0x9a, 0x01, 1, b'x']; // required: tag 19, length-delimited
        a.extend([0xb2, 0x01, 8, 0x0a, 6]); // type: tag 22 → TypeItem{value: "object"}
        a.extend_from_slice(b"object");
        a.extend([0xca, 0x01, props.len() as u8]); // properties: tag 25
        a.extend(props);
        a.extend([0xfa, 0x01, ext.len() as u8]); // vendor_extension: tag 31
        a.extend(ext);
        let mut named_a = vec![0x0a, 1, b'A', 0x12, a.len() as u8];
        named_a.extend(a);
        let mut defs = vec![0x0a, named_a.len() as u8];
        defs.extend(named_a);
        want.extend([0x4a, defs.len() as u8]);
        want.extend(defs);
        assert_eq!(bytes, want);
    }
}
