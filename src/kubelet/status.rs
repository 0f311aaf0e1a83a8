//! Pod status from what the container engine shows: phase, conditions and one status per
//! container, computed as the kubelet's `generateAPIPodStatus` and `getPhase` do.
//!
//! Pure: the pod worker gathers the observations, this turns them into a `PodStatus`.

use std::collections::HashMap;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{
    Container, ContainerState as ApiState, ContainerStateRunning, ContainerStateTerminated,
    ContainerStateWaiting, ContainerStatus, HostIP, Pod, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::labels;
use super::pod_worker::start_failed;
use super::runtime::{ContainerState, RunState};

/// Why a container waits, as the worker decided (pull errors, back-off, creation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waiting {
    pub reason: String,
    pub message: String,
}

/// What the probes said about a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProbeResults {
    pub ready: bool,
    pub started: bool,
}

pub struct Observed<'a> {
    pub pod: &'a Pod,
    pub sandbox: Option<&'a ContainerState>,
    /// Every container of the Pod the engine has, all attempts.
    pub containers: &'a [ContainerState],
    pub waiting: &'a HashMap<String, Waiting>,
    pub probes: &'a HashMap<String, ProbeResults>,
    pub host_ip: &'a str,
    pub now: Timestamp,
}

fn time(t: Option<Timestamp>) -> Option<Time> {
    t.map(Time)
}

/// The attempts of one container, newest first.
fn attempts<'a>(all: &'a [ContainerState], name: &str) -> Vec<&'a ContainerState> {
    let mut found: Vec<&ContainerState> = all
        .iter()
        .filter(|c| c.labels.get(labels::CONTAINER_NAME).map(String::as_str) == Some(name))
        .filter(|c| c.labels.get(labels::KIND).map(String::as_str) != Some("sandbox"))
        .collect();
    found.sort_by_key(|c| std::cmp::Reverse(labels::attempt(&c.labels)));
    found
}

fn terminated(c: &ContainerState) -> ContainerStateTerminated {
    let reason = if c.oom_killed {
        "OOMKilled"
    } else if start_failed(c) {
        "StartError"
    } else if c.exit_code == 0 {
        "Completed"
    } else {
        "Error"
    };
    ContainerStateTerminated {
        container_id: Some(format!("docker://{}", c.id)),
        exit_code: c.exit_code as i32,
        reason: Some(reason.into()),
        message: if c.error.is_empty() {
            None
        } else {
            Some(c.error.clone())
        },
        started_at: time(c.started_at),
        finished_at: time(c.finished_at),
        signal: None,
    }
}

/// Why a container the previous status showed running is no longer there (upstream's
/// `ContainerReasonStatusUnknown`, in `convertToAPIContainerStatuses`).
const STATUS_UNKNOWN: &str = "ContainerStatusUnknown";
const STATUS_UNKNOWN_MESSAGE: &str =
    "The container could not be located when the pod was deleted.  The container used to be Running";

/// The status of a container the engine has no attempt of, from the previous status as
/// upstream's `convertToAPIContainerStatuses` derives it. A container that had terminated keeps
/// that status (a container that ran to completion is not shown as never run). Otherwise the
/// restart count and last state carry over, and a container that was running is not claimed
/// to run any more: its last state says it could not be located (exit code 137) and, unless
/// the Pod is being deleted, it counts one more restart. A reason the worker has for the
/// container to wait (`waiting`) is its state in every case.
fn status_without_attempts(
    o: &Observed<'_>,
    spec: &Container,
    old: Option<&ContainerStatus>,
    waiting: Option<ApiState>,
    default: ApiState,
) -> ContainerStatus {
    let fresh = ContainerStatus {
        name: spec.name.clone(),
        image: spec.image.clone().unwrap_or_default(),
        ready: false,
        started: Some(false),
        state: Some(waiting.clone().unwrap_or(default)),
        last_state: Some(ApiState::default()),
        ..ContainerStatus::default()
    };
    let Some(old) = old else {
        return fresh;
    };
    let old_state = old.state.clone().unwrap_or_default();
    if old_state.terminated.is_some() {
        // Nothing that does not run is ready or started (upstream's prober sets both).
        let mut kept = ContainerStatus {
            ready: false,
            started: Some(false),
            ..old.clone()
        };
        if let Some(waiting) = waiting {
            kept.last_state = Some(old_state);
            kept.state = Some(waiting);
        }
        return kept;
    }
    let mut status = ContainerStatus {
        restart_count: old.restart_count,
        last_state: Some(old.last_state.clone().unwrap_or_default()),
        ..fresh
    };
    let last_known = status
        .last_state
        .as_ref()
        .is_some_and(|l| l.terminated.is_some());
    if old_state.running.is_some() && !last_known {
        status.last_state = Some(ApiState {
            terminated: Some(ContainerStateTerminated {
                reason: Some(STATUS_UNKNOWN.into()),
                message: Some(STATUS_UNKNOWN_MESSAGE.into()),
                exit_code: 137,
                ..ContainerStateTerminated::default()
            }),
            ..ApiState::default()
        });
        if o.pod.metadata.deletion_timestamp.is_none() {
            status.restart_count += 1;
        }
    }
    status
}

fn container_status(
    o: &Observed<'_>,
    spec: &Container,
    old: Option<&ContainerStatus>,
    default_waiting: &str,
) -> ContainerStatus {
    let tries = attempts(o.containers, &spec.name);
    let latest = tries.first().copied();
    let previous = tries.get(1).copied();
    let waiting = o.waiting.get(&spec.name);
    let probes = o.probes.get(&spec.name).copied().unwrap_or_default();
    let waiting_state = |w: &Waiting| ApiState {
        waiting: Some(ContainerStateWaiting {
            reason: Some(w.reason.clone()),
            message: if w.message.is_empty() {
                None
            } else {
                Some(w.message.clone())
            },
        }),
        ..ApiState::default()
    };
    let exited_last = |c: &ContainerState| ApiState {
        terminated: Some(terminated(c)),
        ..ApiState::default()
    };
    let default = waiting_state(&Waiting {
        reason: default_waiting.into(),
        message: String::new(),
    });
    let Some(latest) = latest else {
        return status_without_attempts(o, spec, old, waiting.map(waiting_state), default);
    };
    let (state, last, running) = match waiting {
        _ if latest.state == RunState::Running => {
            let state = ApiState {
                running: Some(ContainerStateRunning {
                    started_at: time(latest.started_at),
                }),
                ..ApiState::default()
            };
            (state, previous.map(exited_last), true)
        }
        Some(w) if latest.state == RunState::Exited || start_failed(latest) => {
            (waiting_state(w), Some(exited_last(latest)), false)
        }
        None if latest.state == RunState::Exited || start_failed(latest) => {
            (exited_last(latest), previous.map(exited_last), false)
        }
        Some(w) => (waiting_state(w), previous.map(exited_last), false),
        None => (default, previous.map(exited_last), false),
    };
    let started = running && probes.started;
    ContainerStatus {
        name: spec.name.clone(),
        image: spec.image.clone().unwrap_or_default(),
        image_id: format!("docker://{}", latest.image_id),
        container_id: Some(format!("docker://{}", latest.id)),
        ready: started && probes.ready,
        started: Some(started),
        restart_count: labels::attempt(&latest.labels),
        state: Some(state),
        last_state: Some(last.unwrap_or_default()),
        ..ContainerStatus::default()
    }
}

fn condition(
    old: &[PodCondition],
    kind: &str,
    ok: bool,
    reason: Option<String>,
    message: Option<String>,
    now: Timestamp,
) -> PodCondition {
    let status = if ok { "True" } else { "False" };
    let previous = old.iter().find(|c| c.type_ == kind);
    let since = match previous {
        Some(p) if p.status == status => p.last_transition_time.clone(),
        _ => Some(Time(now)),
    };
    PodCondition {
        type_: kind.into(),
        status: status.into(),
        reason: if ok { None } else { reason },
        message: if ok { None } else { message },
        last_probe_time: None,
        last_transition_time: since,
        ..PodCondition::default()
    }
}

fn init_done(s: &ContainerStatus) -> bool {
    s.state
        .as_ref()
        .and_then(|st| st.terminated.as_ref())
        .is_some_and(|t| t.exit_code == 0)
}

/// The whole status of the Pod.
/// An ephemeral container as the container it runs as (the same fields; the API server's
/// validation keeps out what ephemeral containers may not have).
pub fn as_container(
    ephemeral: &k8s_openapi::api::core::v1::EphemeralContainer,
) -> Option<Container> {
    serde_json::to_value(ephemeral)
        .and_then(serde_json::from_value)
        .ok()
}

pub fn pod_status(o: &Observed<'_>) -> PodStatus {
    let spec = o.pod.spec.clone().unwrap_or_default();
    let old = o.pod.status.clone().unwrap_or_default();
    let old_conditions = old.conditions.clone().unwrap_or_default();
    let restart_policy = spec.restart_policy.as_deref().unwrap_or("Always");

    let init_specs = spec.init_containers.clone().unwrap_or_default();
    let previous = |list: &Option<Vec<ContainerStatus>>, name: &str| {
        list.as_ref()
            .and_then(|l| l.iter().find(|s| s.name == name))
            .cloned()
    };
    let init: Vec<ContainerStatus> = init_specs
        .iter()
        .map(|c| {
            let was = previous(&old.init_container_statuses, &c.name);
            container_status(o, c, was.as_ref(), "PodInitializing")
        })
        .collect();
    let pending_init: Vec<String> = init
        .iter()
        .filter(|s| !init_done(s))
        .map(|s| s.name.clone())
        .collect();
    let initialized = pending_init.is_empty();
    let app_waiting = if initialized {
        "ContainerCreating"
    } else {
        "PodInitializing"
    };
    let app: Vec<ContainerStatus> = spec
        .containers
        .iter()
        .map(|c| {
            let was = previous(&old.container_statuses, &c.name);
            container_status(o, c, was.as_ref(), app_waiting)
        })
        .collect();

    let ephemeral: Vec<ContainerStatus> = spec
        .ephemeral_containers
        .iter()
        .flatten()
        .filter_map(as_container)
        .map(|c| {
            let was = previous(&old.ephemeral_container_statuses, &c.name);
            container_status(o, &c, was.as_ref(), "ContainerCreating")
        })
        .collect();

    let init_failed = init.iter().any(|s| {
        s.state
            .as_ref()
            .and_then(|st| st.terminated.as_ref())
            .is_some_and(|t| t.exit_code != 0)
    });
    let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for s in &app {
        let state = s.state.clone().unwrap_or_default();
        if state.running.is_some() {
            running += 1;
        } else if let Some(t) = state.terminated {
            stopped += 1;
            if t.exit_code == 0 {
                succeeded += 1;
            }
        } else if s
            .last_state
            .as_ref()
            .is_some_and(|l| l.terminated.is_some())
        {
            stopped += 1;
        } else {
            waiting += 1;
        }
    }
    let phase = if !initialized {
        if init_failed && restart_policy == "Never" {
            "Failed"
        } else {
            "Pending"
        }
    } else if waiting > 0 {
        "Pending"
    } else if running > 0 {
        "Running"
    } else if stopped > 0 {
        if restart_policy == "Always" {
            "Running"
        } else if stopped == succeeded {
            "Succeeded"
        } else if restart_policy == "Never" {
            "Failed"
        } else {
            "Running"
        }
    } else {
        "Pending"
    };

    // A Pod on the host's network has the node's address, as upstream.
    let host_network = spec.host_network == Some(true);
    let pod_ip = o
        .sandbox
        .filter(|s| s.state == RunState::Running)
        .and_then(|s| {
            if host_network {
                Some(o.host_ip.to_string())
            } else {
                s.ip.clone()
            }
        })
        .filter(|ip| !ip.is_empty());
    let unready: Vec<String> = app
        .iter()
        .filter(|s| !s.ready)
        .map(|s| s.name.clone())
        .collect();
    let now = o.now;
    let terminal = phase == "Succeeded" || phase == "Failed";
    let (ready_reason, ready_message) = if terminal && phase == "Succeeded" {
        (Some("PodCompleted".to_string()), None)
    } else {
        (
            Some("ContainersNotReady".to_string()),
            Some(format!(
                "containers with unready status: [{}]",
                unready.join(" ")
            )),
        )
    };
    let mut conditions = vec![
        condition(
            &old_conditions,
            "PodReadyToStartContainers",
            pod_ip.is_some(),
            None,
            None,
            now,
        ),
        condition(
            &old_conditions,
            "Initialized",
            initialized,
            Some("ContainersNotInitialized".into()),
            Some(format!(
                "containers with incomplete status: [{}]",
                pending_init.join(" ")
            )),
            now,
        ),
        condition(
            &old_conditions,
            "Ready",
            unready.is_empty() && !terminal,
            ready_reason.clone(),
            ready_message.clone(),
            now,
        ),
        condition(
            &old_conditions,
            "ContainersReady",
            unready.is_empty() && !terminal,
            ready_reason,
            ready_message,
            now,
        ),
    ];
    if let Some(scheduled) = old_conditions.iter().find(|c| c.type_ == "PodScheduled") {
        conditions.push(scheduled.clone());
    }
    PodStatus {
        phase: Some(phase.into()),
        conditions: Some(conditions),
        host_ip: Some(o.host_ip.to_string()),
        host_ips: Some(vec![HostIP {
            ip: o.host_ip.to_string(),
        }]),
        pod_ip: pod_ip.clone(),
        pod_ips: pod_ip.map(|ip| vec![PodIP { ip }]),
        start_time: old.start_time.clone().or(Some(Time(now))),
        container_statuses: Some(app),
        init_container_statuses: if init.is_empty() { None } else { Some(init) },
        ephemeral_container_statuses: if ephemeral.is_empty() {
            None
        } else {
            Some(ephemeral)
        },
        qos_class: old.qos_class.clone(),
        ..PodStatus::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(restart: &str) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "default", "uid": "u1"},
            "spec": {"restartPolicy": restart, "containers": [{"name": "a", "image": "img:1"}, {"name": "b", "image": "img:1"}]},
            "status": {"phase": "Pending", "qosClass": "BestEffort",
                "conditions": [{"type": "PodScheduled", "status": "True"}]},
        }))
        .expect("pod")
    }

    fn container(name: &str, attempt: i32, state: RunState, exit: i64) -> ContainerState {
        let p = pod("Always");
        ContainerState {
            id: format!("{name}{attempt}"),
            labels: labels::for_container(&p, "n1", "c", name, "app", attempt),
            state,
            exit_code: exit,
            image_id: "sha256:abc".into(),
            ..ContainerState::default()
        }
    }

    fn sandbox() -> ContainerState {
        ContainerState {
            state: RunState::Running,
            ip: Some("172.18.0.5".into()),
            ..ContainerState::default()
        }
    }

    fn status(
        p: &Pod,
        containers: &[ContainerState],
        waiting: &[(&str, &str)],
        ready: bool,
    ) -> PodStatus {
        let waiting: HashMap<String, Waiting> = waiting
            .iter()
            .map(|(c, r)| {
                (
                    c.to_string(),
                    Waiting {
                        reason: r.to_string(),
                        message: String::new(),
                    },
                )
            })
            .collect();
        let probes: HashMap<String, ProbeResults> = ["a", "b"]
            .iter()
            .map(|c| {
                (
                    c.to_string(),
                    ProbeResults {
                        ready,
                        started: true,
                    },
                )
            })
            .collect();
        let sb = sandbox();
        pod_status(&Observed {
            pod: p,
            sandbox: Some(&sb),
            containers,
            waiting: &waiting,
            probes: &probes,
            host_ip: "10.0.0.1",
            now: Timestamp::now(),
        })
    }

    fn reason(s: &ContainerStatus) -> String {
        let st = s.state.clone().unwrap_or_default();
        st.waiting
            .and_then(|w| w.reason)
            .or(st.terminated.and_then(|t| t.reason))
            .unwrap_or_else(|| "Running".into())
    }

    #[test]
    fn nothing_created_yet_is_pending_container_creating() {
        let s = status(&pod("Always"), &[], &[], true);
        assert_eq!(s.phase.as_deref(), Some("Pending"));
        assert_eq!(
            reason(&s.container_statuses.expect("statuses")[0]),
            "ContainerCreating"
        );
        assert_eq!(s.pod_ip.as_deref(), Some("172.18.0.5"));
    }

    #[test]
    fn all_running_and_ready_is_running_and_ready() {
        let cs = [
            container("a", 0, RunState::Running, 0),
            container("b", 0, RunState::Running, 0),
        ];
        let s = status(&pod("Always"), &cs, &[], true);
        assert_eq!(s.phase.as_deref(), Some("Running"));
        let conditions = s.conditions.expect("conditions");
        let ready = conditions
            .iter()
            .find(|c| c.type_ == "Ready")
            .expect("Ready");
        assert_eq!(ready.status, "True");
        assert!(conditions.iter().any(|c| c.type_ == "PodScheduled"));
    }

    #[test]
    fn crash_looping_container_keeps_the_pod_running_with_its_last_state() {
        let cs = [
            container("a", 0, RunState::Running, 0),
            container("b", 0, RunState::Exited, 1),
            container("b", 1, RunState::Exited, 1),
        ];
        let s = status(&pod("Always"), &cs, &[("b", "CrashLoopBackOff")], true);
        assert_eq!(s.phase.as_deref(), Some("Running"));
        let b = &s.container_statuses.expect("statuses")[1];
        assert_eq!(reason(b), "CrashLoopBackOff");
        assert_eq!(b.restart_count, 1);
        let last = b
            .last_state
            .clone()
            .and_then(|l| l.terminated)
            .expect("last state");
        assert_eq!((last.exit_code, last.reason.as_deref()), (1, Some("Error")));
    }

    #[test]
    fn finished_pods_succeed_or_fail_by_restart_policy() {
        let ok = [
            container("a", 0, RunState::Exited, 0),
            container("b", 0, RunState::Exited, 0),
        ];
        assert_eq!(
            status(&pod("Never"), &ok, &[], true).phase.as_deref(),
            Some("Succeeded")
        );
        assert_eq!(
            status(&pod("Always"), &ok, &[], true).phase.as_deref(),
            Some("Running")
        );
        let bad = [
            container("a", 0, RunState::Exited, 0),
            container("b", 0, RunState::Exited, 2),
        ];
        assert_eq!(
            status(&pod("Never"), &bad, &[], true).phase.as_deref(),
            Some("Failed")
        );
        assert_eq!(
            status(&pod("OnFailure"), &bad, &[], true).phase.as_deref(),
            Some("Running")
        );
    }

    #[test]
    fn unready_container_is_named_in_the_ready_condition() {
        let cs = [
            container("a", 0, RunState::Running, 0),
            container("b", 0, RunState::Running, 0),
        ];
        let s = status(&pod("Always"), &cs, &[], false);
        let conditions = s.conditions.expect("conditions");
        let ready = conditions
            .iter()
            .find(|c| c.type_ == "Ready")
            .expect("Ready");
        assert_eq!(ready.status, "False");
        assert_eq!(
            ready.message.as_deref(),
            Some("containers with unready status: [a b]")
        );
    }

    #[test]
    fn image_pull_errors_show_as_waiting_reasons() {
        let s = status(
            &pod("Always"),
            &[],
            &[("a", "ErrImagePull"), ("b", "ImagePullBackOff")],
            true,
        );
        let statuses = s.container_statuses.expect("statuses");
        assert_eq!(reason(&statuses[0]), "ErrImagePull");
        assert_eq!(reason(&statuses[1]), "ImagePullBackOff");
        assert_eq!(s.phase.as_deref(), Some("Pending"));
    }

    /// `p` with a previous status of both its containers in the given state (as JSON).
    fn with_previous(state: serde_json::Value, last: serde_json::Value, deleting: bool) -> Pod {
        let mut p = pod("Always");
        let status = p.status.as_mut().expect("status");
        let previous = |name: &str| {
            serde_json::from_value(json!({
                "name": name, "image": "img:1", "imageID": "", "ready": true, "restartCount": 2,
                "containerID": "docker://old", "state": state, "lastState": last,
            }))
            .expect("container status")
        };
        status.container_statuses = Some(vec![previous("a"), previous("b")]);
        if deleting {
            p.metadata.deletion_timestamp = Some(Time(Timestamp::now()));
        }
        p
    }

    #[test]
    fn a_container_the_engine_lost_is_shown_as_upstream_derives_it_from_the_previous_status() {
        let running = json!({"running": {"startedAt": "2024-01-01T00:00:00Z"}});
        let waiting = json!({"waiting": {"reason": "CrashLoopBackOff"}});
        let done = json!({"terminated": {"exitCode": 0, "reason": "Completed", "containerID": "docker://old"}});
        let error = json!({"terminated": {"exitCode": 1, "reason": "Error"}});
        // previous state, previous last state, deleting → (state, last reason, restarts)
        let cases = [
            (
                running.clone(),
                json!({}),
                false,
                "ContainerCreating",
                "ContainerStatusUnknown",
                3,
            ),
            (
                running.clone(),
                json!({}),
                true,
                "ContainerCreating",
                "ContainerStatusUnknown",
                2,
            ),
            (
                running,
                error.clone(),
                false,
                "ContainerCreating",
                "Error",
                2,
            ),
            (waiting, error, false, "ContainerCreating", "Error", 2),
            (done, json!({}), false, "Completed", "", 2),
        ];
        for (state, last, deleting, want_state, want_last, want_restarts) in cases {
            let p = with_previous(state.clone(), last.clone(), deleting);
            let s = status(&p, &[], &[], true);
            let a = &s.container_statuses.expect("statuses")[0];
            let case = format!("{state} {last} deleting={deleting}: {a:?}");
            assert_eq!(reason(a), want_state, "{case}");
            let got_last = a
                .last_state
                .clone()
                .and_then(|l| l.terminated)
                .and_then(|t| t.reason)
                .unwrap_or_default();
            assert_eq!(got_last, want_last, "{case}");
            assert_eq!(a.restart_count, want_restarts, "{case}");
            assert!(!a.ready, "{case}");
        }
    }

    #[test]
    fn a_lost_container_that_used_to_run_leaves_the_pod_running_but_not_ready() {
        let p = with_previous(json!({"running": {}}), json!({}), false);
        let s = status(&p, &[], &[], true);
        // Restarting, not pending: the containers ran (upstream's `getPhase` counts a waiting
        // container with a last termination as stopped).
        assert_eq!(s.phase.as_deref(), Some("Running"), "{s:?}");
        let a = &s.container_statuses.clone().expect("statuses")[0];
        let last = a
            .last_state
            .clone()
            .and_then(|l| l.terminated)
            .expect("last");
        assert_eq!(last.exit_code, 137);
        let ready = s
            .conditions
            .expect("conditions")
            .into_iter()
            .find(|c| c.type_ == "Ready")
            .expect("Ready");
        assert_eq!(ready.status, "False");
    }
}
