//! Recording core/v1 Events, aggregated as client-go's event correlator does: a repeat of the
//! same event about the same object bumps `count` and `lastTimestamp` of the existing Event
//! instead of creating another.

use std::collections::HashMap;
use std::sync::Mutex;

use k8s_openapi::api::core::v1::Event;
use kube::api::{Patch, PatchParams, PostParams};
use kube::Api;
use serde_json::json;

/// The object an event is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectRef {
    pub kind: String,
    pub api_version: String,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub field_path: String,
}

impl ObjectRef {
    pub fn pod(namespace: &str, name: &str, uid: &str) -> ObjectRef {
        ObjectRef {
            kind: "Pod".into(),
            api_version: "v1".into(),
            namespace: namespace.into(),
            name: name.into(),
            uid: uid.into(),
            field_path: String::new(),
        }
    }

    pub fn node(name: &str, uid: &str) -> ObjectRef {
        ObjectRef {
            kind: "Node".into(),
            api_version: "v1".into(),
            namespace: String::new(),
            name: name.into(),
            uid: uid.into(),
            field_path: String::new(),
        }
    }

    /// The same object, narrowed to one of its parts (e.g. `spec.containers{db}`).
    pub fn with_field_path(mut self, path: &str) -> ObjectRef {
        self.field_path = path.into();
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    object: ObjectRef,
    kind: String,
    reason: String,
    message: String,
}

/// Emits Events as `component` (and, for kubelets, `host`).
pub struct EventRecorder {
    client: kube::Client,
    component: String,
    host: String,
    seen: Mutex<HashMap<Key, (String, i32)>>,
}

/// How many distinct events a recorder remembers for aggregation.
const MAX_REMEMBERED: usize = 4096;

impl EventRecorder {
    pub fn new(client: kube::Client, component: &str, host: &str) -> EventRecorder {
        EventRecorder {
            client,
            component: component.into(),
            host: host.into(),
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Records an event; failures are logged, never returned: events are best effort.
    pub async fn record(&self, object: &ObjectRef, kind: &str, reason: &str, message: &str) {
        if let Err(e) = self.try_record(object, kind, reason, message).await {
            tracing::debug!(reason, error = %e, "cannot record event");
        }
    }

    async fn try_record(
        &self,
        object: &ObjectRef,
        kind: &str,
        reason: &str,
        message: &str,
    ) -> Result<(), kube::Error> {
        let namespace = if object.namespace.is_empty() {
            "default"
        } else {
            object.namespace.as_str()
        };
        let api: Api<Event> = Api::namespaced(self.client.clone(), namespace);
        let key = Key {
            object: object.clone(),
            kind: kind.into(),
            reason: reason.into(),
            message: message.into(),
        };
        let now = crate::meta::object::now_rfc3339();
        let previous = self
            .seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .cloned();
        if let Some((name, count)) = previous {
            let patch = json!({"count": count + 1, "lastTimestamp": now});
            match api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {
                    self.remember(key, name, count + 1);
                    return Ok(());
                }
                // Expired meanwhile: record it afresh.
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        let nanos = jiff::Timestamp::now().as_nanosecond();
        let name = format!("{}.{:x}", object.name, nanos);
        let mut involved = json!({
            "kind": object.kind, "apiVersion": object.api_version,
            "name": object.name, "uid": object.uid,
        });
        if !object.namespace.is_empty() {
            involved["namespace"] = json!(object.namespace);
        }
        if !object.field_path.is_empty() {
            involved["fieldPath"] = json!(object.field_path);
        }
        let mut source = json!({"component": self.component});
        if !self.host.is_empty() {
            source["host"] = json!(self.host);
        }
        let event: Event = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": involved,
            "reason": reason,
            "message": message,
            "type": kind,
            "source": source,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "reportingComponent": self.component,
            "reportingInstance": if self.host.is_empty() { self.component.clone() } else { self.host.clone() },
        }))
        .expect("an Event built from known fields decodes");
        api.create(&PostParams::default(), &event).await?;
        self.remember(key, name, 1);
        Ok(())
    }

    fn remember(&self, key: Key, name: String, count: i32) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() >= MAX_REMEMBERED && !seen.contains_key(&key) {
            seen.clear();
        }
        seen.insert(key, (name, count));
    }
}
