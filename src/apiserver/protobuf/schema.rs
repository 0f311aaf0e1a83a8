//! The shape of the field table the transcoder walks: messages, their fields, field kinds.

/// What a field holds. Scalars map to JSON scalars; `Msg` to a JSON object; the rest are
/// upstream's messages that stand for one JSON value (a time, a quantity, embedded JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Str,
    Bool,
    I32,
    I64,
    F64,
    /// Bytes, base64 in JSON.
    Bytes,
    Msg(&'static str),
    /// A Go embedded struct: the message's fields stand in the parent's JSON object.
    Inline(&'static str),
    /// `map<string, V>`: repeated entries `{key=1, value=2}`.
    Map(&'static Kind),
    /// `meta.v1.Time {seconds=1, nanos=2}`: RFC 3339 in whole seconds.
    Time,
    /// `meta.v1.MicroTime`: RFC 3339 with six fractional digits.
    MicroTime,
    /// `meta.v1.FieldsV1 {Raw=1}`: embedded JSON.
    FieldsV1,
    /// `resource.Quantity {string=1}`: a string.
    Quantity,
    /// `intstr.IntOrString {type=1, intVal=2, strVal=3}`: a number or a string.
    IntOrString,
    /// `runtime.RawExtension {raw=1}`: embedded JSON (or an embedded protobuf object).
    RawExtension,
}

#[derive(Debug)]
pub struct Field {
    pub number: u32,
    /// The JSON name; empty for an inline field.
    pub json: &'static str,
    pub kind: Kind,
    pub repeated: bool,
}

#[derive(Debug)]
pub struct Message {
    pub name: &'static str,
    pub fields: &'static [Field],
}

impl Message {
    /// Whether this is a Go named string slice (`ExtraValue`, `Verbs`): one repeated string
    /// `items` in protobuf, a bare JSON array. (`DownwardAPIProjection`, a struct with one
    /// list of messages, stays an object.)
    pub fn is_list(&self) -> bool {
        matches!(self.fields, [f] if f.number == 1 && f.json == "items" && f.repeated
            && matches!(f.kind, Kind::Str))
    }

    pub fn field(&self, number: u32) -> Option<&Field> {
        self.fields.iter().find(|f| f.number == number)
    }
}

pub const fn msg(name: &'static str, fields: &'static [Field]) -> Message {
    Message { name, fields }
}

pub const fn one(number: u32, json: &'static str, kind: Kind) -> Field {
    Field {
        number,
        json,
        kind,
        repeated: false,
    }
}

pub const fn rep(number: u32, json: &'static str, kind: Kind) -> Field {
    Field {
        number,
        json,
        kind,
        repeated: true,
    }
}

/// A set of messages (sorted by name) and the top-level kinds among them.
#[derive(Debug, Clone, Copy)]
pub struct Schema {
    /// (apiVersion, kind, message); an empty apiVersion matches any.
    pub kinds: &'static [(&'static str, &'static str, &'static str)],
    pub messages: &'static [Message],
}

impl Schema {
    pub fn message(&self, name: &str) -> Option<&'static Message> {
        self.messages
            .binary_search_by(|m| m.name.cmp(name))
            .ok()
            .map(|at| &self.messages[at])
    }

    /// The message of a top-level object.
    pub fn kind(&self, api_version: &str, kind: &str) -> Option<&'static Message> {
        self.kinds
            .iter()
            .find(|(v, k, _)| *k == kind && (v.is_empty() || *v == api_version))
            .and_then(|(_, _, name)| self.message(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every message a field names is in the table, the table is sorted (lookups are binary
    /// searches), and field numbers are unique within a message.
    #[test]
    fn the_generated_table_is_closed_and_sorted() {
        let schema = super::super::SCHEMA;
        for pair in schema.messages.windows(2) {
            assert!(
                pair[0].name < pair[1].name,
                "{} before {}",
                pair[0].name,
                pair[1].name
            );
        }
        for (_, kind, name) in schema.kinds {
            assert!(schema.message(name).is_some(), "{kind}: {name}");
        }
        for m in schema.messages {
            let mut numbers: Vec<u32> = m.fields.iter().map(|f| f.number).collect();
            numbers.sort_unstable();
            numbers.dedup();
            assert_eq!(numbers.len(), m.fields.len(), "{}", m.name);
            for f in m.fields {
                let named = match f.kind {
                    Kind::Msg(n) | Kind::Inline(n) => Some(n),
                    Kind::Map(Kind::Msg(n)) => Some(*n),
                    _ => None,
                };
                if let Some(n) = named {
                    assert!(schema.message(n).is_some(), "{}.{}: {n}", m.name, f.json);
                }
            }
        }
        assert_eq!(
            schema.kind("v1", "Pod").map(|m| m.name),
            Some("core.v1.Pod")
        );
        assert_eq!(
            schema.kind("policy/v1", "DeleteOptions").map(|m| m.name),
            Some("meta.v1.DeleteOptions")
        );
        assert!(schema.kind("apps/v1", "Pod").is_none());
    }
}
