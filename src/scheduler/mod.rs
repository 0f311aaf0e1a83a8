//! The scheduler: binds each unassigned Pod to a node with room for it.
//!
//! A client of the API server and nothing else (architecture invariant). One task owns the
//! state: the nodes, every non-terminal Pod, and the Pods assumed onto a node while their
//! binding is in flight, so two Pods never take the same room. Decisions are made in memory
//! (see [`framework`]); bindings and status writes run beside the loop and report back.
//!
//! Nothing is scheduled before both watches have listed everything, so a restarted scheduler
//! counts every bound Pod before it places a new one.

pub mod framework;
pub mod message;
mod queue;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt as _};
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::watcher::{self, Event};
use kube::runtime::WatchStreamExt as _;
use kube::Api;
use serde_json::json;
use tokio::sync::{mpsc, Notify, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::client::{Change, EventRecorder, ObjectRef, Relist};
use framework::NodeInfo;
use queue::SchedulingQueue;

/// The name Pods ask for in `spec.schedulerName`, and the events' source.
pub const SCHEDULER_NAME: &str = "default-scheduler";

#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error("the {what} watch ended")]
    WatchEnded { what: &'static str },
}

/// How many Pods are placed between two looks at the watches.
const BATCH: usize = 100;

/// How many bindings and status writes the scheduler has in flight at most (events have their
/// recorder's queue and writer). The API server answers 429 past
/// `--max-mutating-requests-inflight` (200), and a client told so backs off for seconds: ten
/// thousand Pods placed at once must queue here instead (upstream's scheduler is held back by
/// its client's QPS limit the same way).
const WRITES_IN_FLIGHT: usize = 64;

/// How many writes may be waiting, in flight or not, before the loop places no more Pods until
/// some are done: each waiting write holds its request's future (kilobytes), and ten thousand
/// Pods placed at once, each with a write waiting, left tens of megabytes behind them.
const WRITES_WAITING: usize = 4 * WRITES_IN_FLIGHT;

/// What the scheduler sends to the API server, and where the answers go.
struct Writes {
    client: kube::Client,
    recorder: Arc<EventRecorder>,
    tracker: TaskTracker,
    bound_tx: mpsc::Sender<BindOutcome>,
    in_flight: Arc<Semaphore>,
    backlog: Backlog,
}

impl Writes {
    /// Runs `write` beside the scheduling loop once one of the [`WRITES_IN_FLIGHT`] is free.
    fn spawn(&self, write: impl std::future::Future<Output = ()> + Send + 'static) {
        let in_flight = self.in_flight.clone();
        let waiting = self.backlog.enter();
        self.tracker.spawn(async move {
            let _waiting = waiting;
            let Ok(_permit) = in_flight.acquire_owned().await else {
                return;
            };
            write.await;
        });
    }
}

/// The writes spawned and not yet done, up to a limit.
#[derive(Debug)]
struct Backlog {
    waiting: Arc<AtomicUsize>,
    done: Arc<Notify>,
    limit: usize,
}

/// One write counted in its [`Backlog`] until it is done or dropped.
struct Waiting {
    waiting: Arc<AtomicUsize>,
    done: Arc<Notify>,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        self.done.notify_one();
    }
}

impl Backlog {
    fn new(limit: usize) -> Backlog {
        Backlog {
            waiting: Arc::default(),
            done: Arc::default(),
            limit,
        }
    }

    /// Counts one more write, until the returned guard is dropped.
    fn enter(&self) -> Waiting {
        self.waiting.fetch_add(1, Ordering::Relaxed);
        Waiting {
            waiting: self.waiting.clone(),
            done: self.done.clone(),
        }
    }

    /// Whether the limit is reached: no Pod is placed until a write is done.
    fn full(&self) -> bool {
        self.waiting.load(Ordering::Relaxed) >= self.limit
    }

    /// Returns once a write is done (at once if one was done since the last call).
    async fn done(&self) {
        self.done.notified().await;
    }
}

/// How a binding went.
struct BindOutcome {
    uid: String,
    result: Result<(), kube::Error>,
}

#[derive(Default)]
struct State {
    nodes: HashMap<String, Node>,
    pods: HashMap<String, Pod>,
    /// uid → node, for Pods whose binding has not shown up in the watch yet.
    assumed: HashMap<String, String>,
    queue: SchedulingQueue,
    /// Per-node accounting, sorted by name when rebuilt, new nodes after: kept in step Pod by
    /// Pod and node by node, and rebuilt from `nodes`, `pods` and `assumed` only when stale
    /// (after a relist, or when a node goes).
    infos: Vec<NodeInfo>,
    /// Node name → its place in `infos`.
    index: HashMap<String, usize>,
    stale: bool,
    /// Where the next Pod's search over `infos` starts (upstream's `nextStartNodeIndex`).
    next_start: usize,
    /// Each watch's (re)lists, taken whole.
    node_list: Relist<Node>,
    pod_list: Relist<Pod>,
}

fn uid(pod: &Pod) -> String {
    pod.metadata.uid.clone().unwrap_or_default()
}

fn node_of(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or("")
}

/// Whether this scheduler should place the Pod.
fn wants_scheduling(pod: &Pod) -> bool {
    let spec = pod.spec.as_ref();
    let ours = spec
        .and_then(|s| s.scheduler_name.as_deref())
        .is_none_or(|n| n == SCHEDULER_NAME);
    // Gated Pods wait for their gates to be removed (upstream's SchedulingGates plugin).
    let gated = spec
        .and_then(|s| s.scheduling_gates.as_ref())
        .is_some_and(|g| !g.is_empty());
    ours && !gated && node_of(pod).is_empty() && pod.metadata.deletion_timestamp.is_none()
}

/// Whether a node's change may let a waiting Pod fit (upstream's
/// `nodeSchedulingPropertiesChange`): a new node, a node uncordoned, or a change to its
/// allocatable, labels, annotations, taints, or conditions' statuses. A heartbeat — the same
/// conditions with newer times — wakes no one, or every status update of every node would
/// retry every waiting Pod and stretch their back-off.
fn may_make_room(old: Option<&Node>, new: &Node) -> bool {
    let Some(old) = old else {
        return true;
    };
    let spec = |n: &Node| n.spec.clone().unwrap_or_default();
    let (old_spec, new_spec) = (spec(old), spec(new));
    let uncordoned =
        old_spec.unschedulable.unwrap_or(false) && !new_spec.unschedulable.unwrap_or(false);
    let allocatable = |n: &Node| n.status.as_ref().and_then(|s| s.allocatable.clone());
    let conditions = |n: &Node| -> Vec<(String, String)> {
        let mut list: Vec<(String, String)> = n
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .into_iter()
            .flatten()
            .map(|c| (c.type_.clone(), c.status.clone()))
            .collect();
        list.sort();
        list
    };
    uncordoned
        || allocatable(old) != allocatable(new)
        || old.metadata.labels != new.metadata.labels
        || old.metadata.annotations != new.metadata.annotations
        || old_spec.taints != new_spec.taints
        || conditions(old) != conditions(new)
}

impl State {
    fn synced(&self) -> bool {
        self.node_list.synced() && self.pod_list.synced()
    }

    fn on_node_event(&mut self, event: Event<Node>) {
        match self.node_list.step(event) {
            Some(Change::Listed(listed)) => {
                self.nodes = listed
                    .into_iter()
                    .map(|n| (n.metadata.name.clone().unwrap_or_default(), n))
                    .collect();
                self.stale = true;
                self.queue.move_all_to_active(Instant::now());
            }
            Some(Change::Applied(node)) => {
                let name = node.metadata.name.clone().unwrap_or_default();
                // A known node changes in place (its Pods' accounting stays). A new one needs
                // the Pods already bound to it, which only a pass over every Pod finds: the
                // snapshot is rebuilt once before the next placement, however many nodes
                // appeared meanwhile (a pass per node was 10 million steps for 1,000 nodes
                // and 10,000 Pods).
                if !self.stale {
                    match self.index.get(&name) {
                        Some(i) => self.infos[*i].set_node(node.clone()),
                        None => self.stale = true,
                    }
                }
                let wakes = may_make_room(self.nodes.get(&name), &node);
                self.nodes.insert(name, node);
                if wakes {
                    self.queue.move_all_to_active(Instant::now());
                }
            }
            Some(Change::Deleted(node)) => {
                self.nodes
                    .remove(node.metadata.name.as_deref().unwrap_or_default());
                shrink_sparse(&mut self.nodes);
                self.stale = true;
            }
            None => {}
        }
    }

    fn on_pod_event(&mut self, event: Event<Pod>) {
        match self.pod_list.step(event) {
            Some(Change::Listed(listed)) => {
                let before: Vec<String> = self.pods.keys().cloned().collect();
                self.pods.clear();
                for pod in listed {
                    self.apply_pod(pod);
                }
                for gone in before.iter().filter(|u| !self.pods.contains_key(*u)) {
                    self.queue.remove(gone);
                    self.assumed.remove(gone);
                }
                shrink_sparse(&mut self.pods);
                self.stale = true;
                self.queue.move_all_to_active(Instant::now());
            }
            Some(Change::Applied(pod)) => self.apply_pod(pod),
            Some(Change::Deleted(pod)) => {
                let id = uid(&pod);
                let before = self.placement(&id);
                self.pods.remove(&id);
                shrink_sparse(&mut self.pods);
                self.assumed.remove(&id);
                self.queue.remove(&id);
                self.reaccount(&id, before.clone());
                // Room was freed: every waiting Pod may fit now.
                if before.is_some() {
                    self.queue.move_all_to_active(Instant::now());
                }
            }
            None => {}
        }
    }

    fn apply_pod(&mut self, pod: Pod) {
        let id = uid(&pod);
        let before = self.placement(&id);
        if wants_scheduling(&pod) {
            if !self.assumed.contains_key(&id) {
                self.queue.add(&id);
            }
        } else {
            self.queue.remove(&id);
            if !node_of(&pod).is_empty() {
                self.assumed.remove(&id);
            }
        }
        self.pods.insert(id.clone(), pod);
        // A Pod's requests only change with its placement (a binding confirming an assumed
        // node changes nothing); anything else about it leaves the accounting as it is.
        self.reaccount(&id, before);
    }

    /// The node a Pod takes room on: the one it is assumed onto, else the one it is bound to.
    fn placement(&self, id: &str) -> Option<String> {
        self.assumed.get(id).cloned().or_else(|| {
            let node = node_of(self.pods.get(id)?);
            (!node.is_empty()).then(|| node.to_string())
        })
    }

    /// Moves a Pod's room from the node it was on (`before`) to where it is now.
    fn reaccount(&mut self, id: &str, before: Option<String>) {
        if self.stale {
            return;
        }
        let after = self.placement(id);
        if before == after {
            return;
        }
        if let Some(i) = before.and_then(|node| self.index.get(&node)) {
            self.infos[*i].remove_pod(id);
        }
        let (Some(node), Some(pod)) = (after, self.pods.get(id)) else {
            return;
        };
        if let Some(i) = self.index.get(&node) {
            self.infos[*i].add_pod(pod);
        }
    }

    fn rebuild(&mut self) {
        let mut infos: Vec<NodeInfo> = self.nodes.values().cloned().map(NodeInfo::new).collect();
        infos.sort_by(|a, b| a.name().cmp(b.name()));
        let index: HashMap<String, usize> = infos
            .iter()
            .enumerate()
            .map(|(i, n)| (n.name().to_string(), i))
            .collect();
        for (id, pod) in &self.pods {
            let node = match self.assumed.get(id) {
                Some(node) => node.as_str(),
                None => node_of(pod),
            };
            if let Some(i) = index.get(node) {
                infos[*i].add_pod(pod);
            }
        }
        self.infos = infos;
        self.index = index;
        self.stale = false;
    }
}

/// Runs the scheduler until `shutdown`.
pub async fn run(client: kube::Client, shutdown: CancellationToken) -> Result<(), SchedulerError> {
    let recorder = Arc::new(EventRecorder::new(client.clone(), SCHEDULER_NAME, ""));
    let nodes = watcher::watcher(Api::<Node>::all(client.clone()), watcher::Config::default())
        .modify(crate::client::strip_managed_fields)
        .default_backoff();
    // Terminal Pods hold no room (upstream's informer leaves them out the same way).
    let pod_config =
        watcher::Config::default().fields("status.phase!=Succeeded,status.phase!=Failed");
    let pods = watcher::watcher(Api::<Pod>::all(client.clone()), pod_config)
        .modify(crate::client::strip_managed_fields)
        .default_backoff();
    let tracker = TaskTracker::new();
    let mut nodes = forward(nodes, "node", &tracker);
    let mut pods = forward(pods, "pod", &tracker);
    let (bound_tx, mut bound_rx) = mpsc::channel::<BindOutcome>(1024);
    let writes = Writes {
        client,
        recorder,
        tracker: tracker.clone(),
        bound_tx,
        in_flight: Arc::new(Semaphore::new(WRITES_IN_FLIGHT)),
        backlog: Backlog::new(WRITES_WAITING),
    };
    let mut state = State::default();
    let mut rng = rand::rng();
    tracing::info!("scheduler started");
    loop {
        let now = Instant::now();
        let wake = if writes.backlog.full() {
            // Woken by a write that is done, or by a change.
            now + Duration::from_secs(3600)
        } else if state.queue.has_ready(now) {
            now
        } else {
            state
                .queue
                .next_wakeup()
                .unwrap_or_else(|| now + Duration::from_secs(3600))
        };
        tokio::select! {
            event = nodes.recv() => state.on_node_event(event.ok_or(SchedulerError::WatchEnded { what: "node" })?),
            event = pods.recv() => state.on_pod_event(event.ok_or(SchedulerError::WatchEnded { what: "pod" })?),
            Some(outcome) = bound_rx.recv() => on_bound(&mut state, outcome),
            () = writes.backlog.done(), if writes.backlog.full() => {}
            () = tokio::time::sleep_until(wake) => {}
            () = shutdown.cancelled() => break,
        }
        // Take in every change already here before placing anything, so a Pod is placed
        // against the newest view (fifty nodes that appeared together are all candidates).
        loop {
            if let Ok(event) = nodes.try_recv() {
                state.on_node_event(event);
            } else if let Ok(event) = pods.try_recv() {
                state.on_pod_event(event);
            } else if let Ok(outcome) = bound_rx.try_recv() {
                on_bound(&mut state, outcome);
            } else {
                break;
            }
        }
        if !state.synced() {
            continue;
        }
        // A batch at a time, so changes keep coming in while thousands of Pods wait.
        for _ in 0..BATCH {
            if writes.backlog.full() {
                break;
            }
            let Some(id) = state.queue.pop(Instant::now()) else {
                break;
            };
            schedule_one(&mut state, &id, &writes, &mut rng);
        }
    }
    // The watch readers end once nothing receives what they read.
    drop((nodes, pods, writes));
    tracker.close();
    let _ = tokio::time::timeout(Duration::from_secs(5), tracker.wait()).await;
    Ok(())
}

/// Gives a map's room back once it holds less than a quarter of the room it reports: a map
/// never shrinks by itself, and Pods and Nodes are stored in place (a Pod takes over 2 KB
/// before anything on the heap), so one that had held 10,000 Pods would keep ~35 MB after
/// they were gone. The reported room falls as removals leave tombstones, so the first shrink
/// of a map that held 10,000 comes at ~450 left, not 3,500. Shrinking to twice what is left
/// costs a pass over it after at least as many removals: a constant per removal.
fn shrink_sparse<V>(map: &mut HashMap<String, V>) {
    if map.capacity() > 64 && map.len() < map.capacity() / 4 {
        map.shrink_to(map.len() * 2);
    }
}

/// Reads a watch in a task of its own into an unbounded queue, as client-go's reflector feeds
/// its DeltaFIFO: the API server ends a watcher that reads too slowly with 410 (and a relist of
/// every Pod), and a scheduling loop busy with thousands of Pods must not be that watcher.
/// Transient watch errors are logged and skipped (the watcher re-lists or resumes by itself);
/// the queue closes when the watch ends for good.
fn forward<K: Send + 'static>(
    stream: impl Stream<Item = Result<Event<K>, watcher::Error>> + Send + 'static,
    what: &'static str,
    tracker: &TaskTracker,
) -> mpsc::UnboundedReceiver<Event<K>> {
    let (tx, rx) = mpsc::unbounded_channel();
    tracker.spawn(async move {
        let mut stream = std::pin::pin!(stream);
        loop {
            let item = tokio::select! {
                item = stream.next() => item,
                () = tx.closed() => return,
            };
            match item {
                Some(Ok(event)) => {
                    if tx.send(event).is_err() {
                        return;
                    }
                }
                Some(Err(e)) => tracing::warn!(watch = what, error = %e, "watch failed; retrying"),
                None => return,
            }
        }
    });
    rx
}

fn on_bound(state: &mut State, outcome: BindOutcome) {
    let Err(e) = outcome.result else {
        return;
    };
    let before = state.placement(&outcome.uid);
    state.assumed.remove(&outcome.uid);
    state.reaccount(&outcome.uid, before);
    match &e {
        // Bound by someone else, or gone: nothing to retry.
        kube::Error::Api(s) if s.code == 409 || s.code == 404 => {
            tracing::info!(uid = %outcome.uid, error = %e, "binding refused");
        }
        _ => {
            tracing::warn!(uid = %outcome.uid, error = %e, "binding failed; will retry");
            state.queue.failed(&outcome.uid, Instant::now());
        }
    }
}

fn schedule_one(state: &mut State, id: &str, writes: &Writes, rng: &mut impl rand::Rng) {
    let Some(pod) = state.pods.get(id).cloned() else {
        return;
    };
    if !wants_scheduling(&pod) || state.assumed.contains_key(id) {
        return;
    }
    if state.stale {
        state.rebuild();
    }
    let namespace = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let object = ObjectRef::pod(&namespace, &name, id);
    match framework::schedule(&pod, &state.infos, &mut state.next_start, rng) {
        Ok(node) => {
            state.assumed.insert(id.to_string(), node.clone());
            state.reaccount(id, None);
            let client = writes.client.clone();
            let recorder = writes.recorder.clone();
            let bound_tx = writes.bound_tx.clone();
            let uid = id.to_string();
            writes.spawn(async move {
                let result = bind(&client, &namespace, &name, &uid, &node).await;
                if result.is_ok() {
                    let message = format!("Successfully assigned {namespace}/{name} to {node}");
                    recorder.record(&object, "Normal", "Scheduled", &message);
                }
                let _ = bound_tx.send(BindOutcome { uid, result }).await;
            });
        }
        Err(fit) => {
            state.queue.unschedulable(id, Instant::now());
            let message = fit.message();
            let event_message = fit.event_message();
            let already = pod
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .and_then(|c| c.iter().find(|c| c.type_ == "PodScheduled"))
                .is_some_and(|c| c.status == "False" && c.message.as_deref() == Some(&message));
            writes
                .recorder
                .record(&object, "Warning", "FailedScheduling", &event_message);
            if !already {
                let client = writes.client.clone();
                writes.spawn(async move {
                    if let Err(e) = mark_unschedulable(&client, &namespace, &name, &message).await {
                        tracing::debug!(pod = %name, error = %e, "cannot update PodScheduled");
                    }
                });
            }
        }
    }
}

/// POSTs the Binding (`pods/<name>/binding`), with the Pod's uid as precondition.
async fn bind(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    uid: &str,
    node: &str,
) -> Result<(), kube::Error> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let body = json!({
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": name, "namespace": namespace, "uid": uid},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node},
    });
    let _: serde_json::Value = api
        .create_subresource("binding", name, &PostParams::default(), &body)
        .await?;
    Ok(())
}

/// Sets `PodScheduled=False`, reason `Unschedulable`, as upstream's scheduler does.
async fn mark_unschedulable(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    message: &str,
) -> Result<(), kube::Error> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let patch = json!({"status": {"conditions": [{
        "type": "PodScheduled",
        "status": "False",
        "reason": "Unschedulable",
        "message": message,
        "lastProbeTime": null,
        "lastTransitionTime": crate::meta::object::now_rfc3339(),
    }]}});
    api.patch_status(name, &PatchParams::default(), &Patch::Strategic(&patch))
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(v: serde_json::Value) -> Node {
        serde_json::from_value(v).expect("a Node")
    }

    #[test]
    fn a_map_that_held_ten_thousand_pods_gives_their_room_back_as_they_go() {
        let mut pods: HashMap<String, Pod> = (0..10_000)
            .map(|i| (format!("uid-{i}"), Pod::default()))
            .collect();
        let full = pods.capacity();
        assert!(full >= 10_000);
        let mut shrinks = 0;
        for i in 10..10_000 {
            let before = pods.capacity();
            pods.remove(&format!("uid-{i}"));
            shrink_sparse(&mut pods);
            // (A removal alone lowers the reported capacity by a slot or so; a shrink halves it.)
            shrinks += usize::from(pods.capacity() <= before / 2);
        }
        assert_eq!(pods.len(), 10);
        assert!(pods.capacity() <= 64, "{} of room kept", pods.capacity());
        assert!((0..10).all(|i| pods.contains_key(&format!("uid-{i}"))));
        // Each shrink follows at least as many removals as what is left: a handful, not one
        // per removal.
        assert!((1..=10).contains(&shrinks), "{shrinks} shrinks");
        // A map that is small to begin with is left alone.
        let mut few: HashMap<String, Pod> = HashMap::with_capacity(32);
        few.insert("a".into(), Pod::default());
        let room = few.capacity();
        shrink_sparse(&mut few);
        assert_eq!(few.capacity(), room);
    }

    #[tokio::test]
    async fn a_full_backlog_is_freed_and_woken_by_each_write_done() {
        let backlog = Backlog::new(2);
        let first = backlog.enter();
        assert!(!backlog.full());
        let second = backlog.enter();
        assert!(backlog.full(), "two writes waiting of two");
        drop(first);
        assert!(!backlog.full(), "a write done frees its place");
        // The loop waits for a write to be done only once the backlog is full: a write done
        // before it began waiting still wakes it.
        let third = backlog.enter();
        assert!(backlog.full());
        drop(second);
        tokio::time::timeout(Duration::from_secs(5), backlog.done())
            .await
            .expect("woken by the write that was done");
        drop(third);
        assert_eq!(backlog.waiting.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn only_changes_that_can_make_room_wake_waiting_pods() {
        let base = json!({
            "metadata": {"name": "n", "labels": {"zone": "a"}},
            "spec": {"unschedulable": true},
            "status": {
                "allocatable": {"cpu": "4", "pods": "110"},
                "conditions": [{"type": "Ready", "status": "True",
                                "lastHeartbeatTime": "2026-11-29T01:00:00Z"}],
            },
        });
        let old = node(base.clone());
        assert!(may_make_room(None, &old), "a new node");
        let changed = |patch: serde_json::Value| {
            let mut v = base.clone();
            framework::test_support::merge(&mut v, patch);
            may_make_room(Some(&old), &node(v))
        };
        let heartbeat = json!({"status": {"conditions": [{"type": "Ready", "status": "True",
            "lastHeartbeatTime": "2026-11-29T01:00:10Z"}]}});
        assert!(!changed(heartbeat), "a heartbeat");
        assert!(!changed(json!({"metadata": {"resourceVersion": "7"}})));
        assert!(
            changed(json!({"spec": {"unschedulable": false}})),
            "uncordoned"
        );
        assert!(changed(json!({"metadata": {"labels": {"zone": "b"}}})));
        assert!(changed(json!({"metadata": {"annotations": {"a": "b"}}})));
        assert!(changed(
            json!({"spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]}})
        ));
        assert!(changed(json!({"status": {"allocatable": {"cpu": "8"}}})));
        let not_ready = json!({"status": {"conditions": [{"type": "Ready", "status": "False"}]}});
        assert!(changed(not_ready));
        // Cordoning makes no room (upstream wakes Pods only when a node is uncordoned).
        let schedulable = node(json!({"metadata": {"name": "n"}}));
        let cordoned = node(json!({"metadata": {"name": "n"}, "spec": {"unschedulable": true}}));
        assert!(!may_make_room(Some(&schedulable), &cordoned));
    }
}
