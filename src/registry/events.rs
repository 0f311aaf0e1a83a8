//! The core/v1 Event kind, with the field selectors `kubectl describe` and `get events` use.

use k8s_openapi::api::core::v1::Event;
use serde_json::{json, Value};

use super::decode::{decode_as, Decoded};
use super::{
    column, field_error, since, FieldError, ResourceInfo, TypedStrategy, NAME_DESCRIPTION,
};
use crate::meta::{object, ApiError};

static INFO: ResourceInfo = ResourceInfo {
    group: "",
    version: "v1",
    kind: "Event",
    plural: "events",
    singular: "event",
    short_names: &["ev"],
    categories: &[],
    namespaced: true,
    subresources: &[],
};

pub fn info() -> &'static ResourceInfo {
    &INFO
}

/// Events live an hour unless the API server is told otherwise (`--event-ttl`).
pub struct EventStrategy {
    pub ttl_secs: i64,
}

impl Default for EventStrategy {
    fn default() -> Self {
        EventStrategy { ttl_secs: 3600 }
    }
}

fn text(obj: &Value, pointer: &str) -> String {
    obj.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

impl TypedStrategy for EventStrategy {
    type Object = Value;

    fn info(&self) -> &'static ResourceInfo {
        &INFO
    }

    fn decode(&self, body: Value) -> Result<Decoded, ApiError> {
        decode_as::<Event>(&INFO, body)
    }

    fn time_to_live(&self) -> Option<i64> {
        Some(self.ttl_secs)
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let mut errors = super::validate_meta(obj, true, field_error::name_is_dns_subdomain);
        if obj.pointer("/involvedObject").is_none() {
            errors.push(FieldError::required("involvedObject", ""));
        }
        errors
    }

    fn prepare_for_update(&self, _new: &mut Value, _old: &Value) {}

    fn prepare_for_status_update(&self, new: &mut Value, old: &Value) {
        super::keep_all_but_status(new, old);
    }

    fn selectable_fields(&self) -> &'static [&'static str] {
        &[
            "metadata.name",
            "metadata.namespace",
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ]
    }

    /// Upstream `EventToSelectableFields` (plus the metadata fields every kind has).
    fn field_value(&self, obj: &Value, field: &str) -> Option<String> {
        let pointer = match field {
            "involvedObject.kind" => "/involvedObject/kind",
            "involvedObject.namespace" => "/involvedObject/namespace",
            "involvedObject.name" => "/involvedObject/name",
            "involvedObject.uid" => "/involvedObject/uid",
            "involvedObject.apiVersion" => "/involvedObject/apiVersion",
            "involvedObject.resourceVersion" => "/involvedObject/resourceVersion",
            "involvedObject.fieldPath" => "/involvedObject/fieldPath",
            "reason" => "/reason",
            "reportingComponent" => "/reportingComponent",
            "source" => "/source/component",
            "type" => "/type",
            _ => return super::default_field_value(&INFO, obj, field),
        };
        Some(text(obj, pointer))
    }

    fn column_definitions(&self) -> Value {
        json!([
            column("Last Seen", "string", "", "Time when last event from this object was seen", 0),
            column("Type", "string", "", "Type of this event (Normal, Warning), new types could be added in the future", 0),
            column("Reason", "string", "", "Short, machine understandable string that gives the reason for the transition into the object's current status", 0),
            column("Object", "string", "", "Object this event is about", 0),
            column("Subobject", "string", "", "Field path of the part of the object this event is about", 1),
            column("Source", "string", "", "The component reporting this event", 1),
            column("Message", "string", "", "A human-readable description of the status of this operation", 0),
            column("First Seen", "string", "", "The time at which the event was first recorded", 1),
            column("Count", "string", "", "The number of times this event has occurred", 1),
            column("Name", "string", "name", NAME_DESCRIPTION, 1),
        ])
    }

    /// Upstream `printEvent`, including how `count` and `series` read.
    fn row(&self, obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let first = obj
            .pointer("/firstTimestamp")
            .filter(|v| !v.is_null())
            .or_else(|| obj.pointer("/eventTime"))
            .filter(|v| !v.is_null())
            .or_else(|| obj.pointer("/metadata/creationTimestamp"));
        let last = obj
            .pointer("/series/lastObservedTime")
            .filter(|v| !v.is_null())
            .or_else(|| obj.pointer("/lastTimestamp"))
            .filter(|v| !v.is_null())
            .or(first);
        let count = obj
            .pointer("/series/count")
            .or_else(|| obj.pointer("/count"))
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let last_seen = if count > 1 {
            format!("{} (x{count} over {})", since(last, now), since(first, now))
        } else {
            since(last, now)
        };
        let kind = text(obj, "/involvedObject/kind").to_lowercase();
        let target = format!("{kind}/{}", text(obj, "/involvedObject/name"));
        let mut source = text(obj, "/source/component");
        if source.is_empty() {
            source = text(obj, "/reportingComponent");
        }
        let host = text(obj, "/source/host");
        if !host.is_empty() {
            source = format!("{source}, {host}");
        }
        vec![
            json!(last_seen),
            json!(text(obj, "/type")),
            json!(text(obj, "/reason")),
            json!(target),
            json!(text(obj, "/involvedObject/fieldPath")),
            json!(source),
            json!(text(obj, "/message").trim()),
            json!(since(first, now)),
            json!(count.to_string()),
            json!(object::name(obj)),
        ]
    }
}
