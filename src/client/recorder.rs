//! Recording core/v1 Events, queued and written by one writer as client-go's broadcaster does,
//! and aggregated as its correlator does: a repeat of the same event about the same object
//! bumps `count` and `lastTimestamp` of the existing Event instead of creating another.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::Event;
use kube::api::{Patch, PatchParams, PostParams};
use kube::Api;
use serde_json::json;
use tokio::sync::{mpsc, oneshot};

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

enum Queued {
    Event(Box<Key>),
    /// Answered once everything queued before it has been written.
    Flush(oneshot::Sender<()>),
}

/// Emits Events as `component` (and, for kubelets, `host`). Recording never waits: as
/// client-go's broadcaster does, events wait in a queue of [`QUEUED_EVENTS`] and one writer
/// sends them in order; an event that finds the queue full is dropped, so a burst of events
/// never competes with the writes its component exists to make.
pub struct EventRecorder {
    queue: mpsc::Sender<Queued>,
}

/// How many events wait for the writer at most (client-go's `maxQueuedEvents`).
pub const QUEUED_EVENTS: usize = 1000;

/// How many distinct events a recorder remembers for aggregation.
const MAX_REMEMBERED: usize = 4096;

impl EventRecorder {
    /// A recorder and its writer, which runs on the current Tokio runtime until the recorder
    /// is dropped and its queue is written.
    pub fn new(client: kube::Client, component: &str, host: &str) -> EventRecorder {
        let (queue, rx) = mpsc::channel(QUEUED_EVENTS);
        let writer = Writer {
            client,
            component: component.into(),
            host: host.into(),
            seen: HashMap::new(),
        };
        tokio::spawn(writer.run(rx));
        EventRecorder { queue }
    }

    /// Queues an event; it is dropped (and logged) if the queue is full: events are best effort.
    pub fn record(&self, object: &ObjectRef, kind: &str, reason: &str, message: &str) {
        let key = Key {
            object: object.clone(),
            kind: kind.into(),
            reason: reason.into(),
            message: message.into(),
        };
        if let Err(mpsc::error::TrySendError::Full(_)) =
            self.queue.try_send(Queued::Event(Box::new(key)))
        {
            tracing::debug!(reason, object = %object.name, "event dropped: {QUEUED_EVENTS} are waiting to be written");
        }
    }

    /// Waits until every event recorded so far has been written (or has failed).
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.queue.send(Queued::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

/// The recorder's one writer: creates each event, or bumps the count of the same event
/// written before, as client-go's correlator does.
struct Writer {
    client: kube::Client,
    component: String,
    host: String,
    seen: HashMap<Key, (String, i32)>,
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::Receiver<Queued>) {
        while let Some(queued) = rx.recv().await {
            match queued {
                Queued::Event(key) => {
                    let reason = key.reason.clone();
                    if let Err(e) = self.write(*key).await {
                        tracing::debug!(%reason, error = %e, "cannot record event");
                    }
                }
                Queued::Flush(done) => {
                    let _ = done.send(());
                }
            }
        }
    }

    async fn write(&mut self, key: Key) -> Result<(), kube::Error> {
        let object = &key.object;
        let namespace = if object.namespace.is_empty() {
            "default"
        } else {
            object.namespace.as_str()
        };
        let api: Api<Event> = Api::namespaced(self.client.clone(), namespace);
        let now = crate::meta::object::now_rfc3339();
        if let Some((name, count)) = self.seen.get(&key).cloned() {
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
            "reason": key.reason,
            "message": key.message,
            "type": key.kind,
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

    fn remember(&mut self, key: Key, name: String, count: i32) {
        if self.seen.len() >= MAX_REMEMBERED && !self.seen.contains_key(&key) {
            self.seen.clear();
        }
        self.seen.insert(key, (name, count));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kubelet::fake_api::FakeApi;

    // A current-thread runtime runs the writer only when the test awaits, so every event
    // recorded before the first await finds the queue as the burst left it.
    #[tokio::test(flavor = "current_thread")]
    async fn a_burst_past_the_queue_is_dropped_and_the_queue_is_written_in_order() {
        let api = FakeApi::start().await;
        let recorder = EventRecorder::new(api.client(), "test", "");
        let pod = ObjectRef::pod("default", "web", "uid-1");
        for i in 0..QUEUED_EVENTS + 50 {
            recorder.record(&pod, "Normal", &format!("R{i}"), "burst");
        }
        recorder.flush().await;
        let written = api.event_reasons();
        let queued: Vec<String> = (0..QUEUED_EVENTS).map(|i| format!("R{i}")).collect();
        assert_eq!(
            written, queued,
            "the first {QUEUED_EVENTS} are written, the rest dropped"
        );

        // Once written, the queue takes events again.
        recorder.record(&pod, "Normal", "After", "burst over");
        recorder.flush().await;
        assert_eq!(
            api.event_reasons().last().map(String::as_str),
            Some("After")
        );
    }
}
