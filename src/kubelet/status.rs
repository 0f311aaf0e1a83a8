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

fn container_status(o: &Observed<'_>, spec: &Container, default_waiting: &str) -> ContainerStatus {
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
    let (state, last, running) = match (latest, waiting) {
        (Some(c), _) if c.state == RunState::Running => {
            let state = ApiState {
                running: Some(ContainerStateRunning {
                    started_at: time(c.started_at),
                }),
                ..ApiState::default()
            };
            (state, previous.map(exited_last), true)
        }
        (Some(c), Some(w)) if c.state == RunState::Exited || start_failed(c) => {
            (waiting_state(w), Some(exited_last(c)), false)
        }
        (Some(c), None) if c.state == RunState::Exited || start_failed(c) => {
            (exited_last(c), previous.map(exited_last), false)
        }
        (_, Some(w)) => (waiting_state(w), previous.map(exited_last), false),
        _ => (
            waiting_state(&Waiting {
                reason: default_waiting.into(),
                message: String::new(),
            }),
            previous.map(exited_last),
            false,
        ),
    };
    let started = running && probes.started;
    ContainerStatus {
        name: spec.name.clone(),
        image: spec.image.clone().unwrap_or_default(),
        image_id: latest
            .map(|c| format!("docker://{}", c.image_id))
            .unwrap_or_default(),
        container_id: latest.map(|c| format!("docker://{}", c.id)),
        ready: started && probes.ready,
        started: Some(started),
        restart_count: latest.map(|c| labels::attempt(&c.labels)).unwrap_or(0),
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
pub fn pod_status(o: &Observed<'_>) -> PodStatus {
    let spec = o.pod.spec.clone().unwrap_or_default();
    let old = o.pod.status.clone().unwrap_or_default();
    let old_conditions = old.conditions.clone().unwrap_or_default();
    let restart_policy = spec.restart_policy.as_deref().unwrap_or("Always");

    let init_specs = spec.init_containers.clone().unwrap_or_default();
    let init: Vec<ContainerStatus> = init_specs
        .iter()
        .map(|c| container_status(o, c, "PodInitializing"))
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
        .map(|c| container_status(o, c, app_waiting))
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

    let pod_ip = o
        .sandbox
        .filter(|s| s.state == RunState::Running)
        .and_then(|s| s.ip.clone())
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
}
