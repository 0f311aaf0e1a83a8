//! `application/vnd.kubernetes.protobuf` on the wire: request bodies transcoded to JSON values,
//! answers and watch frames transcoded from them.
//!
//! A body is the magic `k8s\0` and a `runtime.Unknown {typeMeta=1 {apiVersion=1, kind=2},
//! raw=2, contentEncoding=3, contentType=4}` whose `raw` is the object's own message (no
//! TypeMeta). A watch stream is a sequence of frames, each a 4-byte big-endian length and a
//! `meta.v1.WatchEvent {type=1, object=2 RawExtension{raw=1}}` whose raw object is the whole
//! `k8s\0` encoding of the object.
//!
//! The transcoder is generic: it walks a field table ([`table`], generated from upstream's
//! message definitions) instead of typed messages. Upstream's generator writes every
//! non-pointer field even when it holds the zero value, so a decoded object leaves out what
//! Go's JSON would treat as unset: empty strings and zero times (bools and numbers stay, as
//! pointer fields give them meaning). Go's embedded structs (`json:",inline"`, e.g. a Volume's
//! VolumeSource) are fields of their own on the wire and flattened in JSON. Encoding leaves out
//! what the JSON does not have, and a value that does not fit its field.

mod schema;
#[rustfmt::skip]
mod table;

use base64::Engine as _;
use prost::encoding::{decode_varint, encode_key, encode_varint, WireType};
use serde_json::{Map, Number, Value};

use schema::{Field, Kind, Message, Schema};

/// The media type, and that of a watch stream.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";
pub const WATCH_MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf;stream=watch";

/// What every protobuf body starts with.
const MAGIC: &[u8] = b"k8s\0";

/// The deepest nesting of messages (and embedded JSON) a body may have.
const MAX_DEPTH: usize = 100;

/// Go's zero `time.Time` in Unix seconds: what an unset time decodes from.
const GO_ZERO_TIME: i64 = -62_135_596_800;

/// The table of every message rkube transcodes.
pub const SCHEMA: Schema = Schema {
    kinds: table::KINDS,
    messages: table::MESSAGES,
};

/// A body that cannot be read, worded as upstream's decoder words it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A request body that cannot be read: the decoder's words, and the kind and version the
/// envelope named when it could be read that far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyError {
    pub error: DecodeError,
    pub kind: Option<(String, String)>,
}

impl BodyError {
    /// The 400's message as upstream's handlers word a decode failure, for a body that was to
    /// be a `target` (the kind the endpoint decodes into).
    pub fn message(&self, target: &str, body: &[u8]) -> String {
        match &self.kind {
            Some((kind, version)) => format!(
                "{kind} in version {version:?} cannot be handled as a {target}: {}",
                self.error
            ),
            None => format!(
                "the object provided is unrecognized (must be of type {target}): {} ({})",
                self.error,
                summarize(body)
            ),
        }
    }
}

/// The start of a body, for an error: as text when it looks like JSON, else in hex.
fn summarize(body: &[u8]) -> String {
    const MAX: usize = 30;
    let head = &body[..body.len().min(MAX)];
    let more = if body.len() > MAX { " ..." } else { "" };
    match body.first() {
        None => "<empty>".to_string(),
        Some(b'{') => format!("{}{more}", String::from_utf8_lossy(head)),
        Some(_) => {
            let hex: String = head.iter().map(|b| format!("{b:02x}")).collect();
            format!("{hex}{more}")
        }
    }
}

fn err(text: impl Into<String>) -> DecodeError {
    DecodeError(text.into())
}

fn eof() -> DecodeError {
    err("unexpected EOF")
}

/// One field as it stands on the wire.
#[derive(Debug, Clone, Copy)]
enum Wire<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32,
    Len(&'a [u8]),
}

impl Wire<'_> {
    fn wire_type(&self) -> WireType {
        match self {
            Wire::Varint(_) => WireType::Varint,
            Wire::Fixed64(_) => WireType::SixtyFourBit,
            Wire::Fixed32 => WireType::ThirtyTwoBit,
            Wire::Len(_) => WireType::LengthDelimited,
        }
    }
}

fn varint(buf: &mut &[u8]) -> Result<u64, DecodeError> {
    // A varint is at most 10 bytes; one the body ends inside of is a truncated body.
    let ends = buf.iter().take(10).any(|b| b & 0x80 == 0);
    if !ends && buf.len() < 10 {
        return Err(eof());
    }
    decode_varint(buf).map_err(|_| err("proto: integer overflow"))
}

fn take<'a>(buf: &mut &'a [u8], n: usize) -> Result<&'a [u8], DecodeError> {
    if buf.len() < n {
        return Err(eof());
    }
    let (head, rest) = buf.split_at(n);
    *buf = rest;
    Ok(head)
}

/// The fields of one message, in wire order.
fn scan(mut buf: &[u8]) -> Result<Vec<(u32, Wire<'_>)>, DecodeError> {
    let mut fields = Vec::new();
    while !buf.is_empty() {
        let key = varint(&mut buf)?;
        let number = u32::try_from(key >> 3).map_err(|_| err("proto: integer overflow"))?;
        let wire_type = key & 7;
        if number == 0 {
            return Err(err(format!("proto: illegal tag 0 (wire type {wire_type})")));
        }
        let wire = match WireType::try_from(wire_type) {
            Ok(WireType::Varint) => Wire::Varint(varint(&mut buf)?),
            Ok(WireType::SixtyFourBit) => {
                let bytes: [u8; 8] = take(&mut buf, 8)?.try_into().expect("eight bytes");
                Wire::Fixed64(u64::from_le_bytes(bytes))
            }
            Ok(WireType::ThirtyTwoBit) => {
                take(&mut buf, 4)?;
                Wire::Fixed32
            }
            Ok(WireType::LengthDelimited) => {
                let len = varint(&mut buf)?;
                if len > i64::MAX as u64 {
                    return Err(err("proto: negative length found during unmarshaling"));
                }
                Wire::Len(take(&mut buf, usize::try_from(len).map_err(|_| eof())?)?)
            }
            _ => {
                return Err(err(format!(
                    "proto: illegal wireType {wire_type} for field {number}"
                )))
            }
        };
        fields.push((number, wire));
    }
    Ok(fields)
}

fn wrong_wire(field: &Field, wire: &Wire<'_>, message: &Message) -> DecodeError {
    let name = if field.json.is_empty() {
        message.name.rsplit('.').next().unwrap_or(message.name)
    } else {
        field.json
    };
    err(format!(
        "proto: wrong wireType = {} for field {}",
        wire.wire_type() as u8,
        upper_first(name)
    ))
}

fn upper_first(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(c) => c.to_ascii_uppercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

fn utf8(bytes: &[u8]) -> Result<String, DecodeError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| err("proto: invalid UTF-8 in a string field"))
}

/// Decodes `buf` as `message` into a JSON object.
fn decode_message(
    schema: &Schema,
    message: &Message,
    buf: &[u8],
    depth: usize,
) -> Result<Map<String, Value>, DecodeError> {
    let mut out = Map::new();
    decode_into(schema, message, buf, depth, &mut out)?;
    Ok(out)
}

fn decode_into(
    schema: &Schema,
    message: &Message,
    buf: &[u8],
    depth: usize,
    out: &mut Map<String, Value>,
) -> Result<(), DecodeError> {
    if depth > MAX_DEPTH {
        return Err(err(format!(
            "proto: exceeded maximum nesting depth of {MAX_DEPTH}"
        )));
    }
    for (number, wire) in scan(buf)? {
        // Fields this table does not know are skipped, as upstream skips unknown fields.
        let Some(field) = message.field(number) else {
            continue;
        };
        match (field.kind, wire) {
            (
                Kind::Inline(_) | Kind::Map(_),
                Wire::Varint(_) | Wire::Fixed64(_) | Wire::Fixed32,
            ) => {
                return Err(wrong_wire(field, &wire, message));
            }
            (Kind::Inline(name), Wire::Len(bytes)) => {
                let nested = lookup(schema, name)?;
                decode_into(schema, nested, bytes, depth + 1, out)?;
            }
            (Kind::Map(value_kind), Wire::Len(bytes)) => {
                let (key, value) = decode_entry(schema, value_kind, bytes, depth + 1)?;
                let map = out
                    .entry(field.json)
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(map) = map {
                    map.insert(key, value);
                }
            }
            (kind, wire) if field.repeated => {
                let mut values = Vec::new();
                match (kind, wire) {
                    // Packed scalars: one length-delimited run of values.
                    (Kind::Bool | Kind::I32 | Kind::I64, Wire::Len(mut run)) => {
                        while !run.is_empty() {
                            let v = varint(&mut run)?;
                            values.push(scalar(kind, Wire::Varint(v)).expect("a varint kind"));
                        }
                    }
                    (Kind::F64, Wire::Len(mut run)) => {
                        while !run.is_empty() {
                            let bytes: [u8; 8] = take(&mut run, 8)?.try_into().expect("eight");
                            let v = Wire::Fixed64(u64::from_le_bytes(bytes));
                            values.push(scalar(kind, v).expect("a double"));
                        }
                    }
                    _ => {
                        if !fits(kind, &wire) {
                            return Err(wrong_wire(field, &wire, message));
                        }
                        let value = decode_value(schema, kind, wire, depth + 1)?;
                        // A repeated field keeps its zero elements.
                        values.push(value.unwrap_or_else(|| zero(kind)));
                    }
                }
                let list = out
                    .entry(field.json)
                    .or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(list) = list {
                    list.extend(values);
                }
            }
            (kind, wire) => {
                if !fits(kind, &wire) {
                    return Err(wrong_wire(field, &wire, message));
                }
                match decode_value(schema, kind, wire, depth + 1)? {
                    // A message given twice merges, as protobuf merges it.
                    Some(Value::Object(more)) => match out.get_mut(field.json) {
                        Some(Value::Object(have)) => have.extend(more),
                        _ => {
                            out.insert(field.json.to_string(), Value::Object(more));
                        }
                    },
                    Some(value) => {
                        out.insert(field.json.to_string(), value);
                    }
                    None => {
                        out.remove(field.json);
                    }
                }
            }
        }
    }
    Ok(())
}

/// What a repeated element that decodes to "unset" stands for.
fn zero(kind: Kind) -> Value {
    match kind {
        Kind::Str | Kind::Quantity | Kind::Bytes => Value::String(String::new()),
        _ => Value::Null,
    }
}

fn lookup(schema: &Schema, name: &str) -> Result<&'static Message, DecodeError> {
    schema
        .message(name)
        .ok_or_else(|| err(format!("proto: no message {name} is known")))
}

/// A scalar from a varint or fixed64; None if the wire type does not fit the kind.
fn scalar(kind: Kind, wire: Wire<'_>) -> Option<Value> {
    match (kind, wire) {
        (Kind::Bool, Wire::Varint(v)) => Some(Value::Bool(v != 0)),
        // Go truncates a varint to the field's width.
        (Kind::I32, Wire::Varint(v)) => Some(Value::from(v as i32)),
        (Kind::I64, Wire::Varint(v)) => Some(Value::from(v as i64)),
        (Kind::F64, Wire::Fixed64(v)) => {
            Some(Number::from_f64(f64::from_bits(v)).map_or(Value::Null, Value::Number))
        }
        _ => None,
    }
}

/// Whether a value of `kind` may stand on the wire as `wire`.
fn fits(kind: Kind, wire: &Wire<'_>) -> bool {
    match kind {
        Kind::Bool | Kind::I32 | Kind::I64 => matches!(wire, Wire::Varint(_)),
        Kind::F64 => matches!(wire, Wire::Fixed64(_)),
        _ => matches!(wire, Wire::Len(_)),
    }
}

/// One value of `kind` (whose wire type [`fits`]); None for a value that stands for "unset"
/// (an empty string, a zero time).
fn decode_value(
    schema: &Schema,
    kind: Kind,
    wire: Wire<'_>,
    depth: usize,
) -> Result<Option<Value>, DecodeError> {
    if let Some(v) = scalar(kind, wire) {
        return Ok(Some(v));
    }
    let Wire::Len(bytes) = wire else {
        return Ok(None);
    };
    match kind {
        Kind::Str => utf8(bytes).map(|s| (!s.is_empty()).then_some(Value::String(s))),
        Kind::Bytes => Ok((!bytes.is_empty())
            .then(|| Value::String(base64::engine::general_purpose::STANDARD.encode(bytes)))),
        Kind::Msg(name) => {
            let m = lookup(schema, name)?;
            let mut obj = decode_message(schema, m, bytes, depth)?;
            if m.is_list() {
                return Ok(Some(
                    obj.remove("items")
                        .unwrap_or_else(|| Value::Array(Vec::new())),
                ));
            }
            Ok(Some(Value::Object(obj)))
        }
        Kind::Time => decode_time(bytes, false),
        Kind::MicroTime => decode_time(bytes, true),
        Kind::Quantity => {
            let s = match last_len(bytes, 1)? {
                Some(b) => utf8(b)?,
                None => String::new(),
            };
            Ok((!s.is_empty()).then_some(Value::String(s)))
        }
        Kind::IntOrString => decode_int_or_string(bytes),
        Kind::RawExtension | Kind::FieldsV1 => {
            let raw = last_len(bytes, 1)?.unwrap_or_default();
            embedded(schema, raw, depth)
        }
        Kind::Bool | Kind::I32 | Kind::I64 | Kind::F64 | Kind::Inline(_) | Kind::Map(_) => Ok(None),
    }
}

/// The last length-delimited value of field `number` in a message.
fn last_len(bytes: &[u8], number: u32) -> Result<Option<&[u8]>, DecodeError> {
    Ok(scan(bytes)?
        .into_iter()
        .filter_map(|(n, w)| match w {
            Wire::Len(b) if n == number => Some(b),
            _ => None,
        })
        .next_back())
}

/// The last varint of field `number` in a message.
fn last_varint(fields: &[(u32, Wire<'_>)], number: u32) -> Option<u64> {
    fields
        .iter()
        .filter_map(|(n, w)| match w {
            Wire::Varint(v) if *n == number => Some(*v),
            _ => None,
        })
        .next_back()
}

/// `meta.v1.Time`/`MicroTime`: an empty message or Go's zero time is unset.
fn decode_time(bytes: &[u8], micro: bool) -> Result<Option<Value>, DecodeError> {
    let fields = scan(bytes)?;
    if fields.is_empty() {
        return Ok(None);
    }
    let seconds = last_varint(&fields, 1).unwrap_or(0) as i64;
    let nanos = last_varint(&fields, 2).unwrap_or(0) as i32;
    if seconds == GO_ZERO_TIME && nanos == 0 {
        return Ok(None);
    }
    Ok(Some(Value::String(format_time(seconds, nanos, micro)?)))
}

fn format_time(seconds: i64, nanos: i32, micro: bool) -> Result<String, DecodeError> {
    let at = jiff::Timestamp::from_second(seconds)
        .map_err(|_| err(format!("proto: time of {seconds} seconds is out of range")))?;
    let whole = at.strftime("%Y-%m-%dT%H:%M:%S").to_string();
    Ok(if micro {
        format!("{whole}.{:06}Z", nanos.clamp(0, 999_999_999) / 1000)
    } else {
        format!("{whole}Z")
    })
}

fn decode_int_or_string(bytes: &[u8]) -> Result<Option<Value>, DecodeError> {
    let fields = scan(bytes)?;
    if last_varint(&fields, 1).unwrap_or(0) == 1 {
        let s = match last_len(bytes, 3)? {
            Some(b) => utf8(b)?,
            None => String::new(),
        };
        Ok(Some(Value::String(s)))
    } else {
        Ok(Some(Value::from(
            last_varint(&fields, 2).unwrap_or(0) as i32
        )))
    }
}

/// Embedded JSON (or, inside a watch event, an embedded protobuf object).
fn embedded(schema: &Schema, raw: &[u8], depth: usize) -> Result<Option<Value>, DecodeError> {
    if raw.is_empty() {
        return Ok(None);
    }
    if raw.starts_with(MAGIC) {
        return decode_envelope(schema, raw, ("", ""), depth + 1)
            .map(|(_, v)| Some(v))
            .map_err(|e| e.error);
    }
    let value: Value = serde_json::from_slice(raw)
        .map_err(|e| err(format!("proto: embedded JSON does not parse: {e}")))?;
    if json_depth(&value) + depth > MAX_DEPTH {
        return Err(err(format!(
            "proto: exceeded maximum nesting depth of {MAX_DEPTH}"
        )));
    }
    Ok(Some(value))
}

fn json_depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(json_depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(json_depth).max().unwrap_or(0),
        _ => 0,
    }
}

fn decode_entry(
    schema: &Schema,
    value_kind: &Kind,
    bytes: &[u8],
    depth: usize,
) -> Result<(String, Value), DecodeError> {
    let mut key = String::new();
    let mut value = None;
    for (number, wire) in scan(bytes)? {
        match (number, wire) {
            (1, Wire::Len(b)) => key = utf8(b)?,
            (2, wire) if fits(*value_kind, &wire) => {
                value = decode_value(schema, *value_kind, wire, depth)?;
            }
            (1 | 2, _) => return Err(err("proto: wrong wireType in a map entry")),
            _ => {}
        }
    }
    // A map's values keep their zero values (a label may be "").
    Ok((key, value.unwrap_or_else(|| zero(*value_kind))))
}

/// The type and object of a `k8s\0` body. An envelope without a kind or apiVersion takes
/// `default`'s (the endpoint's), as upstream's decoder does.
fn decode_envelope(
    schema: &Schema,
    body: &[u8],
    default: (&str, &str),
    depth: usize,
) -> Result<((String, String), Value), BodyError> {
    let bare = |error| BodyError { error, kind: None };
    let Some(rest) = body.strip_prefix(MAGIC) else {
        // Go prints the prefix as `%v` of a byte slice: `[107 56 115 0]`.
        let prefix: Vec<String> = MAGIC.iter().map(u8::to_string).collect();
        return Err(bare(err(format!(
            "provided data does not appear to be a protobuf message, expected prefix [{}]",
            prefix.join(" ")
        ))));
    };
    let fields = scan(rest).map_err(bare)?;
    let (mut api_version, mut kind) = (String::new(), String::new());
    let mut raw: &[u8] = &[];
    let mut encoding = String::new();
    for (number, wire) in fields {
        match (number, wire) {
            (1, Wire::Len(type_meta)) => {
                for (n, w) in scan(type_meta).map_err(bare)? {
                    match (n, w) {
                        (1, Wire::Len(b)) => api_version = utf8(b).map_err(bare)?,
                        (2, Wire::Len(b)) => kind = utf8(b).map_err(bare)?,
                        _ => {}
                    }
                }
            }
            (2, Wire::Len(b)) => raw = b,
            (3, Wire::Len(b)) => encoding = utf8(b).map_err(bare)?,
            (4, Wire::Len(_)) => {}
            (1..=4, w) => {
                return Err(bare(err(format!(
                    "proto: wrong wireType = {} for field {}",
                    w.wire_type() as u8,
                    ["TypeMeta", "Raw", "ContentEncoding", "ContentType"][number as usize - 1]
                ))))
            }
            _ => {}
        }
    }
    if kind.is_empty() {
        kind = default.1.to_string();
    }
    if api_version.is_empty() {
        api_version = default.0.to_string();
    }
    if kind.is_empty() {
        return Err(bare(err(format!(
            "Object 'Kind' is missing in 'runtime.TypeMeta{{APIVersion:{api_version:?}, Kind:\"\"}}'"
        ))));
    }
    let version = api_version.rsplit('/').next().unwrap_or("").to_string();
    let named = |error| BodyError {
        error,
        kind: Some((kind.clone(), version.clone())),
    };
    if !encoding.is_empty() {
        return Err(named(err(format!(
            "unsupported content encoding {encoding:?}"
        ))));
    }
    let Some(message) = schema.kind(&api_version, &kind) else {
        return Err(named(err(format!(
            "no kind {kind:?} is registered for version {api_version:?} in scheme \"k8s.io/kubernetes/pkg/api/legacyscheme/scheme.go:30\""
        ))));
    };
    let object = decode_message(schema, message, raw, depth + 1).map_err(named)?;
    let mut out = Map::new();
    out.insert("apiVersion".into(), Value::String(api_version.clone()));
    out.insert("kind".into(), Value::String(kind.clone()));
    out.extend(object);
    Ok(((api_version, kind), Value::Object(out)))
}

/// A request body: the object, with its apiVersion and kind from the envelope (or, where the
/// envelope has none, `default`'s: the endpoint's apiVersion and kind).
pub fn decode_body(body: &[u8], default: (&str, &str)) -> Result<Value, BodyError> {
    decode_envelope(&SCHEMA, body, default, 0).map(|(_, mut v)| {
        drop_go_zero_values(&mut v);
        v
    })
}

/// Go's protobuf encoding always writes the fields its types hold without a pointer, zero or
/// not, and Go's JSON leaves those zero values out (`omitempty`): the same object decoded from
/// protobuf must not grow `generation: 0` or `stdin: false` that its JSON form lacks. These are
/// the fields of that kind in what rkube decodes from protobuf.
fn drop_go_zero_values(obj: &mut Value) {
    fn drop_zero(map: &mut Map<String, Value>, key: &str) {
        let zero = match map.get(key) {
            Some(Value::Number(n)) => n.as_i64() == Some(0),
            Some(Value::Bool(b)) => !b,
            _ => false,
        };
        if zero {
            map.remove(key);
        }
    }
    for meta in [
        "/metadata",
        "/template/metadata",
        "/spec/template/metadata",
        "/spec/jobTemplate/metadata",
        "/spec/jobTemplate/spec/template/metadata",
    ] {
        if let Some(meta) = obj.pointer_mut(meta).and_then(Value::as_object_mut) {
            drop_zero(meta, "generation");
        }
    }
    // The workload kinds' own value fields (`replicas` is a pointer: its zero stays).
    if matches!(
        obj.get("kind").and_then(Value::as_str),
        Some("Deployment" | "ReplicaSet")
    ) {
        if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
            for key in ["minReadySeconds", "paused"] {
                drop_zero(spec, key);
            }
        }
    }
    // A Job's counts are values (`ready` and `terminating` are pointers: their zeros stay).
    if obj.get("kind").and_then(Value::as_str) == Some("Job") {
        if let Some(status) = obj.get_mut("status").and_then(Value::as_object_mut) {
            for key in ["active", "succeeded", "failed"] {
                drop_zero(status, key);
            }
        }
    }
    for spec in POD_SPECS {
        if let Some(pod_spec) = obj.pointer_mut(spec).and_then(Value::as_object_mut) {
            for key in ["hostNetwork", "hostPID", "hostIPC"] {
                drop_zero(pod_spec, key);
            }
        }
    }
    for list in ["containers", "initContainers", "ephemeralContainers"] {
        for spec in POD_SPECS {
            let Some(containers) = obj
                .pointer_mut(&format!("{spec}/{list}"))
                .and_then(Value::as_array_mut)
            else {
                continue;
            };
            for container in containers.iter_mut().filter_map(Value::as_object_mut) {
                for key in ["stdin", "stdinOnce", "tty"] {
                    drop_zero(container, key);
                }
            }
        }
    }
}

/// Where a Pod spec sits in the kinds decoded from protobuf: a Pod's, a template's, a
/// workload's template's and a CronJob's job template's.
const POD_SPECS: [&str; 4] = [
    "/spec",
    "/template/spec",
    "/spec/template/spec",
    "/spec/jobTemplate/spec/template/spec",
];

/// A body that must name its own kind.
pub fn decode_object(body: &[u8]) -> Result<Value, DecodeError> {
    decode_body(body, ("", "")).map_err(|e| e.error)
}

// ---- encoding ----

fn put_len(number: u32, bytes: &[u8], out: &mut Vec<u8>) {
    encode_key(number, WireType::LengthDelimited, out);
    encode_varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

fn put_varint(number: u32, v: u64, out: &mut Vec<u8>) {
    encode_key(number, WireType::Varint, out);
    encode_varint(v, out);
}

/// A value whose shape its field does not allow; the field is left out.
#[derive(Debug, Clone, PartialEq, Eq)]
struct EncodeError(String);

impl std::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot encode as protobuf: {}", self.0)
    }
}

fn mismatch(json: &str, want: &str, got: &Value) -> EncodeError {
    EncodeError(format!("{json}: expected {want}, got {got}"))
}

/// Writes the fields of `message` that `obj` has. A value that does not fit its field (which a
/// typed upstream object cannot hold, but a stored JSON value might) is left out, so one odd
/// field never makes a whole answer or watch stream unwritable.
fn encode_message(schema: &Schema, message: &Message, obj: &Map<String, Value>, out: &mut Vec<u8>) {
    for field in message.fields {
        let mark = out.len();
        if let Err(e) = encode_field(schema, field, obj, out) {
            out.truncate(mark);
            tracing::debug!(error = %e, message = message.name, "a field left out of protobuf");
        }
    }
}

fn encode_field(
    schema: &Schema,
    field: &Field,
    obj: &Map<String, Value>,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    if let Kind::Inline(name) = field.kind {
        let nested = schema
            .message(name)
            .ok_or_else(|| EncodeError(format!("no message {name}")))?;
        let mut bytes = Vec::new();
        encode_message(schema, nested, obj, &mut bytes);
        put_len(field.number, &bytes, out);
        return Ok(());
    }
    let Some(value) = obj.get(field.json).filter(|v| !v.is_null()) else {
        return Ok(());
    };
    match (field.kind, value) {
        (Kind::Map(value_kind), Value::Object(map)) => {
            for (k, v) in map {
                let mut entry = Vec::new();
                put_len(1, k.as_bytes(), &mut entry);
                if !v.is_null() {
                    encode_value(schema, *value_kind, 2, field.json, v, &mut entry)?;
                }
                put_len(field.number, &entry, out);
            }
            Ok(())
        }
        (Kind::Map(_), other) => Err(mismatch(field.json, "an object", other)),
        (kind, Value::Array(items)) if field.repeated => {
            for item in items.iter().filter(|v| !v.is_null()) {
                encode_value(schema, kind, field.number, field.json, item, out)?;
            }
            Ok(())
        }
        (_, other) if field.repeated => Err(mismatch(field.json, "an array", other)),
        (kind, value) => encode_value(schema, kind, field.number, field.json, value, out),
    }
}

fn text<'a>(json: &str, value: &'a Value) -> Result<std::borrow::Cow<'a, str>, EncodeError> {
    match value {
        Value::String(s) => Ok(std::borrow::Cow::Borrowed(s)),
        Value::Number(n) => Ok(std::borrow::Cow::Owned(n.to_string())),
        other => Err(mismatch(json, "a string", other)),
    }
}

fn parse_time(json: &str, value: &Value) -> Result<(i64, i32), EncodeError> {
    let s = text(json, value)?;
    let at: jiff::Timestamp = s
        .parse()
        .map_err(|_| mismatch(json, "an RFC 3339 time", value))?;
    Ok((at.as_second(), at.subsec_nanosecond()))
}

fn encode_value(
    schema: &Schema,
    kind: Kind,
    number: u32,
    json: &str,
    value: &Value,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    match kind {
        Kind::Str => put_len(number, text(json, value)?.as_bytes(), out),
        Kind::Bool => {
            let b = value
                .as_bool()
                .ok_or_else(|| mismatch(json, "a boolean", value))?;
            put_varint(number, u64::from(b), out);
        }
        Kind::I32 | Kind::I64 => {
            let n = value
                .as_i64()
                .or_else(|| value.as_f64().map(|f| f as i64))
                .ok_or_else(|| mismatch(json, "an integer", value))?;
            let n = if kind == Kind::I32 {
                i64::from(n as i32)
            } else {
                n
            };
            put_varint(number, n as u64, out);
        }
        Kind::F64 => {
            let f = value
                .as_f64()
                .ok_or_else(|| mismatch(json, "a number", value))?;
            encode_key(number, WireType::SixtyFourBit, out);
            out.extend_from_slice(&f.to_bits().to_le_bytes());
        }
        Kind::Bytes => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(text(json, value)?.as_bytes())
                .map_err(|_| mismatch(json, "base64", value))?;
            put_len(number, &bytes, out);
        }
        Kind::Msg(name) => {
            let nested = schema
                .message(name)
                .ok_or_else(|| EncodeError(format!("no message {name}")))?;
            let wrapped;
            let obj = match value {
                Value::Object(obj) => obj,
                Value::Array(_) if nested.is_list() => {
                    wrapped = Map::from_iter([("items".to_string(), value.clone())]);
                    &wrapped
                }
                _ => return Err(mismatch(json, "an object", value)),
            };
            let mut bytes = Vec::new();
            encode_message(schema, nested, obj, &mut bytes);
            put_len(number, &bytes, out);
        }
        Kind::Time | Kind::MicroTime => {
            let (seconds, nanos) = parse_time(json, value)?;
            let mut bytes = Vec::new();
            put_varint(1, seconds as u64, &mut bytes);
            if nanos != 0 {
                put_varint(2, i64::from(nanos) as u64, &mut bytes);
            }
            put_len(number, &bytes, out);
        }
        Kind::Quantity => {
            let mut bytes = Vec::new();
            put_len(1, text(json, value)?.as_bytes(), &mut bytes);
            put_len(number, &bytes, out);
        }
        Kind::IntOrString => {
            let mut bytes = Vec::new();
            match value {
                Value::String(s) => {
                    put_varint(1, 1, &mut bytes);
                    put_len(3, s.as_bytes(), &mut bytes);
                }
                Value::Number(n) => {
                    let n = n
                        .as_i64()
                        .ok_or_else(|| mismatch(json, "an integer", value))?;
                    put_varint(1, 0, &mut bytes);
                    put_varint(2, i64::from(n as i32) as u64, &mut bytes);
                }
                other => return Err(mismatch(json, "a number or a string", other)),
            }
            put_len(number, &bytes, out);
        }
        Kind::RawExtension | Kind::FieldsV1 => {
            let raw = serde_json::to_vec(value).expect("a JSON value always serializes");
            let mut bytes = Vec::new();
            put_len(1, &raw, &mut bytes);
            put_len(number, &bytes, out);
        }
        Kind::Inline(_) | Kind::Map(_) => {
            return Err(EncodeError(format!("{json}: a nested map or inline field")))
        }
    }
    Ok(())
}

fn encode_envelope(schema: &Schema, value: &Value) -> Option<Vec<u8>> {
    let Value::Object(obj) = value else {
        return None;
    };
    let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    let message = schema.kind(api_version, kind)?;
    let mut raw = Vec::new();
    encode_message(schema, message, obj, &mut raw);
    let mut type_meta = Vec::new();
    put_len(1, api_version.as_bytes(), &mut type_meta);
    put_len(2, kind.as_bytes(), &mut type_meta);
    let mut out = MAGIC.to_vec();
    put_len(1, &type_meta, &mut out);
    put_len(2, &raw, &mut out);
    put_len(3, b"", &mut out);
    put_len(4, b"", &mut out);
    Some(out)
}

/// An object (with its apiVersion and kind) as a protobuf body; None for a kind the table does
/// not have.
pub fn encode_object(value: &Value) -> Option<Vec<u8>> {
    encode_envelope(&SCHEMA, value)
}

/// One frame of a protobuf watch stream around an object already encoded by
/// [`encode_object`].
pub fn watch_frame(event_type: &str, object: &[u8]) -> Vec<u8> {
    let mut raw_extension = Vec::with_capacity(object.len() + 6);
    put_len(1, object, &mut raw_extension);
    let mut event = Vec::with_capacity(raw_extension.len() + event_type.len() + 10);
    put_len(1, event_type.as_bytes(), &mut event);
    put_len(2, &raw_extension, &mut event);
    let mut frame = Vec::with_capacity(event.len() + 4);
    frame.extend_from_slice(&(event.len() as u32).to_be_bytes());
    frame.extend_from_slice(&event);
    frame
}

#[cfg(test)]
mod tests;
