//! The pod worker against the scripted engine (`FakeRuntime`) and a stand-in API server.
//!
//! Most tests step a worker by hand (`sync`, then look), which makes back-off and grace
//! periods checkable without waiting them out; the mailbox test runs the real loop.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Pod, PodSpec, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::super::fake::{Call, FakeRuntime};
use super::super::fake_api::FakeApi;
use super::super::labels;
use super::super::mailbox::Inbox;
use super::super::runtime::{ContainerState, RunState, Runtime as _, RuntimeError};
use super::{Lifecycle, Shared, Worker};
use crate::client::EventRecorder;

const NETWORK: &str = "rkube-test";

struct Rig {
    fake: Arc<FakeRuntime>,
    api: FakeApi,
    shared: Arc<Shared>,
    _root: tempfile::TempDir,
}

async fn rig() -> Rig {
    let fake = Arc::new(FakeRuntime::new());
    fake.ensure_network(NETWORK).await.unwrap();
    fake.add_image("img:1");
    fake.add_image("img:2");
    let api = FakeApi::start().await;
    let root = tempfile::tempdir().unwrap();
    let shared = Arc::new(Shared {
        client: api.client(),
        runtime: fake.clone(),
        recorder: Arc::new(EventRecorder::new(api.client(), "kubelet", "node-1")),
        node: "node-1".into(),
        cluster: "test".into(),
        network: NETWORK.into(),
        host_ip: "10.0.0.1".into(),
        services: Vec::new(),
        root_dir: root.path().to_path_buf(),
        tracker: TaskTracker::new(),
        sources: super::super::sources::Sources::new(api.client()),
    });
    Rig {
        fake,
        api,
        shared,
        _root: root,
    }
}

impl Rig {
    /// The reasons of the Events written so far, once the recorder's queue is written.
    async fn event_reasons(&self) -> Vec<String> {
        self.shared.recorder.flush().await;
        self.api.event_reasons()
    }
}

fn pod(name: &str, image: &str) -> Pod {
    let mut pod = Pod::default();
    pod.metadata.name = Some(name.into());
    pod.metadata.namespace = Some("default".into());
    pod.metadata.uid = Some(format!("uid-{name}"));
    pod.metadata.resource_version = Some("1".into());
    pod.spec = Some(PodSpec {
        node_name: Some("node-1".into()),
        termination_grace_period_seconds: Some(30),
        containers: vec![Container {
            name: "c".into(),
            image: Some(image.into()),
            ..Container::default()
        }],
        ..PodSpec::default()
    });
    pod
}

fn deleting(mut pod: Pod, grace: i64) -> Pod {
    pod.metadata.deletion_timestamp = Some(Time(jiff::Timestamp::now()));
    pod.metadata.deletion_grace_period_seconds = Some(grace);
    pod
}

fn inbox(pod: &Pod, version: u64) -> Inbox {
    Inbox {
        pod: Arc::new(pod.clone()),
        version,
        gone: false,
    }
}

fn apps(fake: &FakeRuntime) -> Vec<ContainerState> {
    let mut apps: Vec<ContainerState> = fake
        .containers()
        .into_iter()
        .filter(|c| c.labels.get(labels::KIND).map(String::as_str) == Some("app"))
        .collect();
    apps.sort_by_key(|c| labels::attempt(&c.labels));
    apps
}

fn running(fake: &FakeRuntime) -> Vec<ContainerState> {
    apps(fake)
        .into_iter()
        .filter(|c| c.state == RunState::Running)
        .collect()
}

async fn worker_for(rig: &Rig, pod: &Pod) -> Worker {
    rig.api.put(pod);
    let mut worker = Worker::new(rig.shared.clone(), &inbox(pod, 0));
    worker.read(&inbox(pod, 0));
    worker
}

async fn poll(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A burst of updates while the worker cannot run (the test never yields): the worker acts on
/// the newest. The last update marks the Pod deleted; with a bounded queue that dropped the
/// newest, the worker never saw it and the Pod was never cleaned up.
#[tokio::test]
async fn the_newest_of_a_burst_of_updates_wins() {
    let rig = rig().await;
    let first = pod("burst", "img:1");
    rig.api.put(&first);
    let shutdown = CancellationToken::new();
    let mut workers = HashMap::new();
    super::super::dispatch(&rig.shared, &mut workers, first.clone(), &shutdown);
    for i in 2..=200 {
        let mut update = first.clone();
        update.metadata.resource_version = Some(i.to_string());
        if i == 200 {
            update = deleting(update, 0);
        }
        super::super::dispatch(&rig.shared, &mut workers, update, &shutdown);
    }
    let deleted = |api: &FakeApi| {
        api.seen().iter().any(|s| {
            s.method == http::Method::DELETE && s.path.ends_with("/namespaces/default/pods/burst")
        })
    };
    poll("the worker to act on the deletion", || deleted(&rig.api)).await;
    poll("the worker to end", || {
        workers.values().all(|h| h.mailbox.is_closed())
    })
    .await;
    assert!(
        rig.fake.containers().is_empty(),
        "{:?}",
        rig.fake.containers()
    );
    shutdown.cancel();
}

#[tokio::test]
async fn a_changed_image_replaces_exactly_that_container() {
    let rig = rig().await;
    let one = pod("web", "img:1");
    let mut worker = worker_for(&rig, &one).await;
    worker.sync().await.unwrap();
    let before = running(&rig.fake);
    assert_eq!(before.len(), 1);
    assert_eq!(before[0].image, "img:1");
    // Syncing again changes nothing.
    rig.fake.take_calls();
    worker.sync().await.unwrap();
    assert!(!rig
        .fake
        .calls()
        .iter()
        .any(|c| matches!(c, Call::Stop(..) | Call::CreateContainer(_))));

    let mut two = pod("web", "img:2");
    two.metadata.resource_version = Some("2".into());
    rig.api.put(&two);
    worker.read(&inbox(&two, 1));
    worker.sync().await.unwrap();
    let calls = rig.fake.take_calls();
    let stops: Vec<&Call> = calls
        .iter()
        .filter(|c| matches!(c, Call::Stop(..)))
        .collect();
    assert_eq!(stops.len(), 1, "{calls:?}");
    assert!(matches!(stops[0], Call::Stop(id, _) if *id == before[0].id));
    assert!(!calls.iter().any(|c| matches!(c, Call::CreateSandbox(_))));
    let after = running(&rig.fake);
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].image, "img:2");
    assert_eq!(labels::attempt(&after[0].labels), 1);
    let status = rig.api.pod("default", "web").unwrap().status.unwrap();
    let c = &status.container_statuses.unwrap()[0];
    assert_eq!(c.restart_count, 1);
    assert!(rig.event_reasons().await.iter().any(|r| r == "Killing"));

    // And it stays replaced.
    worker.sync().await.unwrap();
    assert!(!rig
        .fake
        .take_calls()
        .iter()
        .any(|c| matches!(c, Call::Stop(..) | Call::CreateContainer(_))));
}

/// `exec: "mongod": executable file not found` on every attempt: restarts go on under the
/// crash-loop back-off (10 s doubling to 5 min) and the Pod shows `CrashLoopBackOff`.
#[tokio::test]
async fn a_container_that_cannot_start_crash_loops_with_a_doubling_back_off() {
    let rig = rig().await;
    let p = pod("mongo", "img:1");
    let error = "exec: \"mongod\": executable file not found in $PATH";
    for attempt in 0..12 {
        rig.fake
            .script_start_failure(&labels::container_name(&p, "c", attempt), error);
    }
    let mut worker = worker_for(&rig, &p).await;
    worker.sync().await.unwrap();
    assert_eq!(worker.waiting["c"].reason, "RunContainerError");
    // The first failure is retried at once (upstream's back-off starts after it).
    worker.sync().await.unwrap();
    assert_eq!(labels::attempt(&apps(&rig.fake).last().unwrap().labels), 1);
    let mut delays = Vec::new();
    for round in 0..7 {
        // Backing off: nothing is started, the Pod waits in CrashLoopBackOff.
        rig.fake.take_calls();
        worker.sync().await.unwrap();
        assert!(
            !rig.fake
                .calls()
                .iter()
                .any(|c| matches!(c, Call::CreateContainer(_))),
            "round {round}"
        );
        let waiting = &worker.waiting["c"];
        assert_eq!(waiting.reason, "CrashLoopBackOff");
        let status = rig.api.pod("default", "mongo").unwrap().status.unwrap();
        let c = &status.container_statuses.unwrap()[0];
        assert_eq!(
            c.state
                .as_ref()
                .unwrap()
                .waiting
                .as_ref()
                .unwrap()
                .reason
                .as_deref(),
            Some("CrashLoopBackOff")
        );
        let last = c.last_state.as_ref().unwrap().terminated.as_ref().unwrap();
        assert_eq!(last.message.as_deref(), Some(error));
        assert_eq!(c.restart_count, round + 1);
        let backoff = worker.restart_backoff["c"];
        delays.push(backoff.delay.as_secs());
        assert!(worker.wake_at.is_some_and(|w| w <= backoff.next));
        // The back-off runs out: the next sync tries again, with a new attempt.
        worker.restart_backoff.get_mut("c").unwrap().next = Instant::now();
        worker.sync().await.unwrap();
        assert_eq!(
            labels::attempt(&apps(&rig.fake).last().unwrap().labels),
            round + 2
        );
    }
    assert_eq!(delays, [10, 20, 40, 80, 160, 300, 300]);
    assert_eq!(
        rig.event_reasons()
            .await
            .iter()
            .filter(|r| *r == "BackOff")
            .count(),
        7
    );
}

#[tokio::test]
async fn deletion_stops_containers_within_the_grace_period() {
    let rig = rig().await;
    let p = pod("graceful", "img:1");
    let mut worker = worker_for(&rig, &p).await;
    worker.sync().await.unwrap();
    let app = running(&rig.fake).remove(0);
    rig.fake.take_calls();
    let gone = deleting(p.clone(), 7);
    rig.api.put(&gone);
    worker.read(&inbox(&gone, 1));
    assert!(matches!(worker.lifecycle, Lifecycle::Terminating { .. }));
    // A later delete with a shorter grace period brings the deadline forward.
    let sooner = deleting(p.clone(), 3);
    worker.read(&inbox(&sooner, 2));
    let again = deleting(p, 20);
    worker.read(&inbox(&again, 3));
    worker.sync().await.unwrap();
    assert_eq!(worker.lifecycle, Lifecycle::Terminated);
    let calls = rig.fake.calls();
    assert!(
        calls.contains(&Call::Stop(app.id.clone(), Duration::from_secs(3))),
        "{calls:?}"
    );
    assert!(rig.fake.containers().is_empty());
    assert!(
        rig.api.pod("default", "graceful").is_none(),
        "deleted from the API"
    );
}

#[tokio::test]
async fn a_pod_gone_from_the_api_is_cleaned_up_without_a_delete() {
    let rig = rig().await;
    let p = pod("forced", "img:1");
    let mut worker = worker_for(&rig, &p).await;
    worker.sync().await.unwrap();
    worker.read(&Inbox {
        gone: true,
        ..inbox(&p, 0)
    });
    worker.sync().await.unwrap();
    assert_eq!(worker.lifecycle, Lifecycle::Terminated);
    assert!(rig.fake.containers().is_empty());
    assert!(!rig
        .api
        .seen()
        .iter()
        .any(|s| s.method == http::Method::DELETE));
}

/// A restarted kubelet reads what runs back from the engine and starts nothing twice.
#[tokio::test]
async fn a_new_worker_adopts_what_runs() {
    let rig = rig().await;
    let p = pod("kept", "img:1");
    let mut first = worker_for(&rig, &p).await;
    first.sync().await.unwrap();
    let before = rig.fake.containers();
    assert_eq!(before.len(), 2, "sandbox and app");
    drop(first);
    rig.fake.take_calls();
    let reported = rig.api.pod("default", "kept").unwrap();
    let mut second = worker_for(&rig, &reported).await;
    second.sync().await.unwrap();
    second.sync().await.unwrap();
    let calls = rig.fake.calls();
    assert!(
        !calls.iter().any(|c| matches!(
            c,
            Call::CreateSandbox(_) | Call::CreateContainer(_) | Call::Start(_) | Call::Stop(..)
        )),
        "{calls:?}"
    );
    assert_eq!(rig.fake.containers(), before);
    let status = rig.api.pod("default", "kept").unwrap().status.unwrap();
    assert_eq!(status.phase.as_deref(), Some("Running"));
}

/// The status PATCHes the fake API received since `from` requests.
fn status_writes(api: &FakeApi, from: usize) -> Vec<serde_json::Value> {
    api.seen()
        .into_iter()
        .skip(from)
        .filter(|s| s.method == http::Method::PATCH && s.path.ends_with("/status"))
        .map(|s| s.body)
        .collect()
}

fn condition(status: &PodStatus, kind: &str) -> String {
    status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == kind)
        .map(|c| c.status.clone())
        .unwrap_or_default()
}

/// A Pod that ran, whose containers the engine then lost with the kubelet away (`rkube down`
/// removes them; `rkube up` keeps the data): its status as the first worker left it.
async fn lost_while_away(rig: &Rig, p: &Pod) -> Pod {
    let mut first = worker_for(rig, p).await;
    first.sync().await.unwrap();
    drop(first);
    let reported = rig
        .api
        .pod("default", p.metadata.name.as_deref().unwrap())
        .unwrap();
    let status = reported.status.clone().unwrap();
    assert_eq!(condition(&status, "Ready"), "True");
    assert!(status.pod_ip.is_some());
    for c in rig.fake.containers() {
        rig.fake.remove(&c.id).await.unwrap();
    }
    rig.fake.take_calls();
    reported
}

/// Upstream's kubelet publishes the status it computed from the runtime before it creates a
/// sandbox: a container the previous status showed running and the runtime no longer has is
/// shown as waiting, its last state `ContainerStatusUnknown` (137), one more restart; the Pod
/// is not ready and has no IP. The old code wrote nothing until the sandbox and containers
/// were back, so the stale `Running`, ready, with the old IP, stood meanwhile.
#[tokio::test]
async fn a_restarted_kubelet_first_publishes_a_status_that_claims_nothing_unconfirmed() {
    let rig = rig().await;
    let reported = lost_while_away(&rig, &pod("lost", "img:1")).await;
    let old_ip = reported.status.as_ref().unwrap().pod_ip.clone();
    let from = rig.api.seen().len();
    let mut second = worker_for(&rig, &reported).await;
    // The sandbox cannot be made yet: the status is published all the same, before it.
    rig.fake.fail_next(
        |c| matches!(c, Call::CreateSandbox(_)),
        RuntimeError::Conflict("the engine is busy".into()),
    );
    second.sync().await.unwrap();
    assert!(rig
        .fake
        .calls()
        .iter()
        .any(|c| matches!(c, Call::CreateSandbox(_))));
    let writes = status_writes(&rig.api, from);
    assert_eq!(writes.len(), 1, "{writes:#?}");
    assert_eq!(writes[0]["status"]["podIP"], serde_json::Value::Null);
    assert_eq!(writes[0]["status"]["podIPs"], serde_json::Value::Null);

    let status = rig.api.pod("default", "lost").unwrap().status.unwrap();
    assert_eq!(status.pod_ip, None);
    assert_eq!(status.pod_ips, None);
    assert_eq!(status.phase.as_deref(), Some("Running"));
    for kind in ["Ready", "ContainersReady", "PodReadyToStartContainers"] {
        assert_eq!(condition(&status, kind), "False", "{kind}");
    }
    let c = &status.container_statuses.clone().unwrap()[0];
    assert!(!c.ready);
    assert_eq!(c.started, Some(false));
    assert_eq!(c.restart_count, 1);
    assert_eq!(c.container_id, None);
    let state = c.state.clone().unwrap();
    assert!(state.running.is_none());
    assert_eq!(
        state.waiting.and_then(|w| w.reason).as_deref(),
        Some("ContainerCreating")
    );
    let last = c.last_state.clone().unwrap().terminated.unwrap();
    assert_eq!(last.reason.as_deref(), Some("ContainerStatusUnknown"));
    assert_eq!(last.exit_code, 137);
    assert_eq!(
        last.message.as_deref(),
        Some("The container could not be located when the pod was deleted.  The container used to be Running")
    );

    // The next try recreates the sandbox and the container, whose restarts count on.
    second.sandbox_backoff = None;
    second.sync().await.unwrap();
    let app = running(&rig.fake);
    assert_eq!(app.len(), 1);
    assert_eq!(labels::attempt(&app[0].labels), 1);
    let status = rig.api.pod("default", "lost").unwrap().status.unwrap();
    assert!(
        status.pod_ip.is_some() && status.pod_ip != old_ip,
        "{status:?}"
    );
    assert_eq!(condition(&status, "Ready"), "True");
    let c = &status.container_statuses.unwrap()[0];
    assert_eq!(c.restart_count, 1);
    assert!(c.state.as_ref().unwrap().running.is_some());
    assert!(c.ready);
}

/// A Pod that must not restart its containers and lost them is `Failed`, as upstream's
/// `getPhase` has it, and they are not run a second time.
#[tokio::test]
async fn a_lost_pod_that_never_restarts_fails_instead_of_running_again() {
    let rig = rig().await;
    let mut p = pod("once", "img:1");
    p.spec.as_mut().unwrap().restart_policy = Some("Never".into());
    let reported = lost_while_away(&rig, &p).await;
    let mut second = worker_for(&rig, &reported).await;
    second.sync().await.unwrap();
    second.sync().await.unwrap();
    let status = rig.api.pod("default", "once").unwrap().status.unwrap();
    assert_eq!(status.phase.as_deref(), Some("Failed"));
    let c = &status.container_statuses.unwrap()[0];
    let last = c.last_state.clone().unwrap().terminated.unwrap();
    assert_eq!(last.reason.as_deref(), Some("ContainerStatusUnknown"));
    assert!(rig.fake.containers().is_empty(), "{:?}", rig.fake.calls());
}
