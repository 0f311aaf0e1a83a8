//! Server-side `Table` output (`meta.k8s.io/v1`), which `kubectl get` prints column by column,
//! and objects reduced to their metadata (`PartialObjectMetadata`), which metadata-only clients
//! (client-go's metadata informers, kube-rs's `metadata_watcher`) ask for.

use serde_json::{json, Value};

use crate::meta::ApiError;
use crate::registry::Strategy;

/// What each row carries besides its cells (`includeObject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Include {
    None,
    Metadata,
    Object,
}

impl Include {
    pub fn parse(value: Option<&str>) -> Result<Include, ApiError> {
        match value {
            None | Some("") | Some("Metadata") => Ok(Include::Metadata),
            Some("None") => Ok(Include::None),
            Some("Object") => Ok(Include::Object),
            Some(other) => Err(ApiError::bad_request(format!(
                "includeObject must be one of None, Metadata, Object (got {other:?})"
            ))),
        }
    }
}

/// An object reduced to its metadata: a `PartialObjectMetadata` of `api_version`, written
/// from the object's own metadata without copying it.
#[derive(serde::Serialize)]
pub struct Partial<'a> {
    kind: &'static str,
    #[serde(rename = "apiVersion")]
    api_version: &'a str,
    metadata: &'a Value,
}

/// `obj` reduced to its metadata (an object without any has empty metadata).
pub fn partial<'a>(obj: &'a Value, api_version: &'a str) -> Partial<'a> {
    static EMPTY: std::sync::LazyLock<Value> = std::sync::LazyLock::new(|| json!({}));
    Partial {
        kind: "PartialObjectMetadata",
        api_version,
        metadata: obj.get("metadata").unwrap_or(&EMPTY),
    }
}

/// A `PartialObjectMetadataList` of `items`, with the list's own `metadata`, as JSON.
pub fn partial_list<'a>(
    items: impl IntoIterator<Item = &'a Value>,
    metadata: Value,
    api_version: &'a str,
) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct List<'a> {
        kind: &'static str,
        #[serde(rename = "apiVersion")]
        api_version: &'a str,
        metadata: Value,
        items: Vec<Partial<'a>>,
    }
    let list = List {
        kind: "PartialObjectMetadataList",
        api_version,
        metadata,
        items: items.into_iter().map(|o| partial(o, api_version)).collect(),
    };
    serde_json::to_vec(&list).expect("a JSON value always serializes")
}

/// Upstream's 406 for a metadata form that does not fit the answer: `asked_list` when the list
/// form was asked of one object, else the single form of a list. The message names the Go type
/// the answer has before it is reduced (`*core.Pod`, `*apps.DeploymentList`).
pub fn metadata_form_refused(group: &str, kind: &str, asked_list: bool) -> ApiError {
    let package = match group.split('.').next() {
        None | Some("") => "core",
        Some(first) => first,
    };
    let message = if asked_list {
        format!(
            "you requested PartialObjectMetadataList, but the requested object is not a list \
             (*{package}.{kind})"
        )
    } else {
        format!(
            "you requested PartialObjectMetadata, but the requested object is a list \
             (*{package}.{kind}List)"
        )
    };
    ApiError::not_acceptable(message)
}

fn row(strategy: &dyn Strategy, obj: &Value, include: Include, now: jiff::Timestamp) -> Value {
    let object = match include {
        Include::None => Value::Null,
        Include::Metadata => json!(partial(obj, "meta.k8s.io/v1")),
        Include::Object => obj.clone(),
    };
    json!({"cells": strategy.row(obj, now), "object": object})
}

/// A Table of `items`. `with_columns` is false for watch events after the first, which
/// kubectl reads as "same columns as before".
pub fn table<'a>(
    strategy: &dyn Strategy,
    items: impl IntoIterator<Item = &'a Value>,
    include: Include,
    metadata: Value,
    with_columns: bool,
) -> Value {
    let now = jiff::Timestamp::now();
    let rows: Vec<Value> = items
        .into_iter()
        .map(|obj| row(strategy, obj, include, now))
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": if with_columns { strategy.column_definitions() } else { json!([]) },
        "rows": rows,
    })
}
