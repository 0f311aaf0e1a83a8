//! Stored objects decoded into JSON values that hold no spare capacity, for the watch cache
//! and the lists that keep them.
//!
//! serde_json builds a map by inserting into an empty one, so its table and its entries grow
//! by doubling: a map of one field has room for three, one of five room for seven. Objects
//! are mostly small maps (a Pod's `managedFields` is a tree of one-field maps), and each spare
//! entry of an order-preserving map takes over 100 bytes. Collecting a map's fields first and
//! building it at its exact size takes a third less memory for a running Pod and a fifth less
//! for a Node or an Event (counted with a counting allocator), and decodes as fast. The result
//! equals what `serde_json::from_slice` gives, field order included.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Parses `bytes` as one JSON value whose maps, arrays and strings are sized to their contents.
/// An object's `metadata` has room for one more field: `resourceVersion`, which is not stored
/// and is filled in on every read.
pub fn from_slice(bytes: &[u8]) -> serde_json::Result<Value> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = Tight::Object.deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

/// The seed and visitor that build tight values: what is being decoded.
#[derive(Clone, Copy, PartialEq)]
enum Tight {
    /// The stored object itself.
    Object,
    /// Its `metadata`.
    Metadata,
    /// Anything inside.
    Inner,
}

impl<'de> DeserializeSeed<'de> for Tight {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Tight {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_f64<E>(self, value: f64) -> Result<Value, E> {
        // JSON text never holds a non-finite number; serde_json maps one to null likewise.
        Ok(Number::from_f64(value).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_owned()))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Tight::Inner)? {
            items.push(item);
        }
        items.shrink_to_fit();
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut fields = Vec::new();
        while let Some(key) = access.next_key::<String>()? {
            let seed = match self {
                Tight::Object if key == "metadata" => Tight::Metadata,
                _ => Tight::Inner,
            };
            let value = access.next_value_seed(seed)?;
            fields.push((key, value));
        }
        let spare = usize::from(self == Tight::Metadata);
        // A repeated key keeps its first place and its last value, as serde_json's maps do.
        let mut map = Map::with_capacity(fields.len() + spare);
        map.extend(fields);
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tight_values_equal_serde_jsons_in_content_and_order() {
        let cases = [
            r#"{"b":1,"a":{"z":[],"y":{},"x":[1,2.5,-3,"s\u00e9\n",true,null]},"c":"d"}"#,
            r#"{"k":1,"k":2,"j":0}"#,
            r#"[{"f:metadata":{"f:labels":{".":{},"f:app":{}}}}]"#,
            r#""just a string""#,
            "18446744073709551615",
            "-9223372036854775808",
            "1e300",
            "null",
        ];
        for text in cases {
            let ours = from_slice(text.as_bytes()).expect("parses");
            let theirs: Value = serde_json::from_str(text).expect("parses");
            assert_eq!(ours, theirs, "{text}");
            assert_eq!(
                serde_json::to_string(&ours).expect("encodes"),
                serde_json::to_string(&theirs).expect("encodes"),
                "{text}"
            );
        }
    }

    #[test]
    fn what_serde_json_refuses_is_refused() {
        for text in [
            "",
            "{",
            r#"{"a":1,}"#,
            "[1 2]",
            "{} {}",
            "1e400",
            r#"{"a":"\ud800"}"#,
        ] {
            let theirs = serde_json::from_str::<Value>(text).is_err();
            assert!(theirs, "serde_json accepts {text:?}");
            assert!(
                from_slice(text.as_bytes()).is_err(),
                "{text:?} was accepted"
            );
        }
        // serde_json's nesting limit holds for this visitor too: deep input is an error, not
        // a stack overflow.
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(from_slice(deep.as_bytes()).is_err());
        let deep = format!("{}1{}", r#"{"a":"#.repeat(100_000), "}".repeat(100_000));
        assert!(from_slice(deep.as_bytes()).is_err());
    }

    #[test]
    fn maps_and_arrays_hold_exactly_their_contents() {
        let value = from_slice(br#"{"a":{"b":{"c":{}}},"l":[1,2,3,4,5]}"#).expect("parses");
        let Value::Array(list) = &value["l"] else {
            panic!("an array");
        };
        assert_eq!(list.capacity(), 5);
        // serde_json's own decoding leaves the array with room to spare.
        let theirs: Value = serde_json::from_str(r#"[1,2,3,4,5]"#).expect("parses");
        let Value::Array(theirs) = theirs else {
            panic!("an array");
        };
        assert!(theirs.capacity() > 5, "{}", theirs.capacity());
    }
}
