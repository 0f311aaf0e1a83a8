//! The `kubectl get pods` Table row and its column definitions (upstream `printPod`).

use crate::meta::duration;
use crate::registry::pod::fields::pod_ip;
use crate::registry::pod::validation::spec_of;
use crate::registry::pod::{is_empty, s, slice, NODE_UNREACHABLE_POD_REASON, SCHEDULING_GATED};
use k8s_openapi::api::core::v1::{Container, ContainerStatus, Pod, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

/// One row of the pods table; all nine cells upstream's server-side printer produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodRow {
    pub name: String,
    pub ready: String,
    pub status: String,
    pub restarts: String,
    pub age: String,
    pub ip: String,
    pub node: String,
    pub nominated_node: String,
    pub readiness_gates: String,
}

impl PodRow {
    /// The `cells` of a `meta.k8s.io/v1` TableRow, in column order (all strings, as upstream).
    pub fn cells(&self) -> Vec<serde_json::Value> {
        [
            &self.name,
            &self.ready,
            &self.status,
            &self.restarts,
            &self.age,
            &self.ip,
            &self.node,
            &self.nominated_node,
            &self.readiness_gates,
        ]
        .into_iter()
        .map(|c| serde_json::Value::String(c.clone()))
        .collect()
    }
}

/// The `conditions` upstream attaches to a row of a finished pod (`Completed=True`), if any.
pub fn pod_row_conditions(pod: &Pod) -> Option<serde_json::Value> {
    let phase = pod.status.as_ref().map(|st| s(&st.phase)).unwrap_or("");
    let message = match phase {
        "Succeeded" => "The pod has completed successfully.",
        "Failed" => "The pod failed.",
        _ => return None,
    };
    Some(
        serde_json::json!([{ "type": "Completed", "status": "True", "reason": phase, "message": message }]),
    )
}

/// `metav1.ObjectMeta` and core field descriptions used by the column definitions (the same text
/// as the OpenAPI schema).
pub(crate) const NAME_DOC: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
pub(crate) const CREATION_TIMESTAMP_DOC: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
pub(crate) const POD_IP_DOC: &str = "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.";
pub(crate) const NODE_NAME_DOC: &str = "NodeName indicates in which node this pod is scheduled. If empty, this pod is a candidate for scheduling by the scheduler defined in schedulerName. Once this field is set, the kubelet for this node becomes responsible for the lifecycle of this pod. This field should not be used to express a desire for the pod to be scheduled on a specific node. https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#nodename";
pub(crate) const NOMINATED_NODE_DOC: &str = "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods. This field does not guarantee that the pod will be scheduled on this node. Scheduler may decide to place the pod elsewhere if other nodes become available sooner. Scheduler may also decide to give the resources on this node to a higher priority pod that is created after preemption. As a result, this field may be different than PodSpec.nodeName when the pod is scheduled.";
pub(crate) const READINESS_GATES_DOC: &str = "If specified, all readiness gates will be evaluated for pod readiness. A pod is ready when all its containers are ready AND all conditions specified in the readiness gates have status equal to \"True\" More info: https://git.k8s.io/enhancements/keps/sig-network/580-pod-readiness-gates";

/// `columnDefinitions` of the pods Table. Upstream names the columns in title case ("Name",
/// "Nominated Node"); kubectl upper-cases them for display.
pub fn pod_column_definitions() -> serde_json::Value {
    let col = |name: &str, format: &str, description: &str, priority: i32| serde_json::json!({ "name": name, "type": "string", "format": format, "description": description, "priority": priority });
    serde_json::Value::Array(vec![
        col("Name", "name", NAME_DOC, 0),
        col("Ready", "", "The aggregate readiness state of this pod for accepting traffic.", 0),
        col("Status", "", "The aggregate status of the containers in this pod.", 0),
        col(
            "Restarts",
            "",
            "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
            0,
        ),
        col("Age", "", CREATION_TIMESTAMP_DOC, 0),
        col("IP", "", POD_IP_DOC, 1),
        col("Node", "", NODE_NAME_DOC, 1),
        col("Nominated Node", "", NOMINATED_NODE_DOC, 1),
        col("Readiness Gates", "", READINESS_GATES_DOC, 1),
    ])
}

/// The time since `t`, as kubectl prints an age (see [`duration::since`]).
pub(crate) fn since(t: Option<&Time>, now: jiff::Timestamp) -> String {
    duration::since(t.map(|t| t.0), now)
}

pub(crate) fn is_restartable_init(c: Option<&Container>) -> bool {
    c.is_some_and(|c| c.restart_policy.as_deref() == Some("Always"))
}

pub(crate) fn last_termination(cs: &ContainerStatus) -> Option<&Time> {
    cs.last_state
        .as_ref()?
        .terminated
        .as_ref()?
        .finished_at
        .as_ref()
}

pub(crate) fn later<'a>(
    current: Option<&'a Time>,
    candidate: Option<&'a Time>,
) -> Option<&'a Time> {
    match (current, candidate) {
        (Some(c), Some(n)) if n.0 > c.0 => Some(n),
        (None, Some(n)) => Some(n),
        (c, _) => c,
    }
}

/// Upstream `printPod` (v1.32): READY, STATUS (with init-container progress, waiting/terminated
/// reasons, `Terminating`, `NotReady`, `SchedulingGated`), RESTARTS with the age of the last
/// restart, AGE, and the wide columns.
pub fn pod_table_row(pod: &Pod, now: jiff::Timestamp) -> PodRow {
    let spec = spec_of(pod);
    let empty_status = PodStatus::default();
    let status = pod.status.as_ref().unwrap_or(&empty_status);
    let phase = s(&status.phase);
    let conditions = slice(&status.conditions);
    let inits = slice(&spec.init_containers);

    let mut reason = if is_empty(&status.reason) {
        phase.to_string()
    } else {
        s(&status.reason).to_string()
    };
    if conditions
        .iter()
        .any(|c| c.type_ == "PodScheduled" && s(&c.reason) == SCHEDULING_GATED)
    {
        reason = SCHEDULING_GATED.to_string();
    }

    let total = spec.containers.len()
        + inits
            .iter()
            .filter(|c| is_restartable_init(Some(c)))
            .count();
    let mut ready = 0usize;
    let mut restarts: i64 = 0;
    let mut sidecar_restarts: i64 = 0;
    let mut last_restart: Option<&Time> = None;
    let mut last_sidecar_restart: Option<&Time> = None;
    let init_by_name = |name: &str| inits.iter().find(|c| c.name == name);

    let mut initializing = false;
    for (i, cs) in slice(&status.init_container_statuses).iter().enumerate() {
        restarts = restarts.saturating_add(i64::from(cs.restart_count));
        last_restart = later(last_restart, last_termination(cs));
        let restartable = is_restartable_init(init_by_name(&cs.name));
        if restartable {
            sidecar_restarts = sidecar_restarts.saturating_add(i64::from(cs.restart_count));
            last_sidecar_restart = later(last_sidecar_restart, last_termination(cs));
        }
        let state = cs.state.as_ref();
        let terminated = state.and_then(|st| st.terminated.as_ref());
        let waiting = state.and_then(|st| st.waiting.as_ref());
        if terminated.is_some_and(|t| t.exit_code == 0) {
            continue;
        }
        if restartable && cs.started == Some(true) {
            if cs.ready {
                ready += 1;
            }
            continue;
        }
        if let Some(t) = terminated {
            reason = if is_empty(&t.reason) {
                match t.signal.filter(|sig| *sig != 0) {
                    Some(sig) => format!("Init:Signal:{sig}"),
                    None => format!("Init:ExitCode:{}", t.exit_code),
                }
            } else {
                format!("Init:{}", s(&t.reason))
            };
        } else if let Some(w) =
            waiting.filter(|w| !is_empty(&w.reason) && s(&w.reason) != "PodInitializing")
        {
            reason = format!("Init:{}", s(&w.reason));
        } else {
            reason = format!("Init:{i}/{}", inits.len());
        }
        initializing = true;
        break;
    }

    let initialized = conditions
        .iter()
        .find(|c| c.type_ == "Initialized")
        .is_some_and(|c| c.status == "True");
    if !initializing || initialized {
        restarts = sidecar_restarts;
        last_restart = last_sidecar_restart;
        let mut has_running = false;
        for cs in slice(&status.container_statuses).iter().rev() {
            restarts = restarts.saturating_add(i64::from(cs.restart_count));
            last_restart = later(last_restart, last_termination(cs));
            let state = cs.state.as_ref();
            let waiting = state.and_then(|st| st.waiting.as_ref());
            let terminated = state.and_then(|st| st.terminated.as_ref());
            if let Some(w) = waiting.filter(|w| !is_empty(&w.reason)) {
                reason = s(&w.reason).to_string();
            } else if let Some(t) = terminated {
                reason = if !is_empty(&t.reason) {
                    s(&t.reason).to_string()
                } else {
                    match t.signal.filter(|sig| *sig != 0) {
                        Some(sig) => format!("Signal:{sig}"),
                        None => format!("ExitCode:{}", t.exit_code),
                    }
                };
            } else if cs.ready && state.is_some_and(|st| st.running.is_some()) {
                has_running = true;
                ready += 1;
            }
        }
        // A container still running after another completed: Running if the pod is Ready.
        if reason == "Completed" && has_running {
            let pod_ready = conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            reason = if pod_ready {
                "Running".to_string()
            } else {
                "NotReady".to_string()
            };
        }
    }

    if pod.metadata.deletion_timestamp.is_some() {
        if s(&status.reason) == NODE_UNREACHABLE_POD_REASON {
            reason = "Unknown".to_string();
        } else if phase != "Succeeded" && phase != "Failed" {
            reason = "Terminating".to_string();
        }
    }

    let restarts_cell = match last_restart {
        Some(t) if restarts != 0 => format!("{restarts} ({} ago)", since(Some(t), now)),
        _ => restarts.to_string(),
    };

    let or_none = |v: &str| {
        if v.is_empty() {
            "<none>".to_string()
        } else {
            v.to_string()
        }
    };
    let gates = slice(&spec.readiness_gates);
    let readiness_gates = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let true_count = gates
            .iter()
            .filter(|g| {
                conditions
                    .iter()
                    .find(|c| c.type_ == g.condition_type)
                    .is_some_and(|c| c.status == "True")
            })
            .count();
        format!("{true_count}/{}", gates.len())
    };
    PodRow {
        name: s(&pod.metadata.name).to_string(),
        ready: format!("{ready}/{total}"),
        status: reason,
        restarts: restarts_cell,
        age: since(pod.metadata.creation_timestamp.as_ref(), now),
        ip: or_none(pod_ip(pod)),
        node: or_none(s(&spec.node_name)),
        nominated_node: or_none(s(&status.nominated_node_name)),
        readiness_gates,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::pod::test_support::*;

    // ---- printing -----------------------------------------------------------------------------

    #[test]
    fn column_definitions_match_upstream_printer() {
        let cols = pod_column_definitions();
        let cols = cols.as_array().expect("array");
        let summary: Vec<(String, String, i64)> = cols
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap_or("").to_string(),
                    c["format"].as_str().unwrap_or("").to_string(),
                    c["priority"].as_i64().unwrap_or(-1),
                )
            })
            .collect();
        let want = [
            ("Name", "name", 0),
            ("Ready", "", 0),
            ("Status", "", 0),
            ("Restarts", "", 0),
            ("Age", "", 0),
            ("IP", "", 1),
            ("Node", "", 1),
            ("Nominated Node", "", 1),
            ("Readiness Gates", "", 1),
        ];
        assert_eq!(
            summary,
            want.iter()
                .map(|(n, f, p)| (n.to_string(), f.to_string(), *p))
                .collect::<Vec<_>>()
        );
        assert!(cols
            .iter()
            .all(|c| c["type"] == "string"
                && c["description"].as_str().is_some_and(|d| !d.is_empty())));
        assert_eq!(
            cols[2]["description"],
            "The aggregate status of the containers in this pod."
        );
    }

    const NOW: &str = "2024-05-01T12:00:00Z";

    fn row(v: serde_json::Value) -> PodRow {
        let mut base = json!({
            "metadata": {"name": "web", "creationTimestamp": "2024-05-01T11:55:00Z"},
            "spec": {"containers": [{"name": "app", "image": "x"}]}
        });
        if let (Some(b), Some(extra)) = (base.as_object_mut(), v.as_object()) {
            for (k, val) in extra {
                b.insert(k.clone(), val.clone());
            }
        }
        pod_table_row(&pod_from(base), ts(NOW))
    }

    fn status_of(r: &PodRow) -> (&str, &str, &str) {
        (r.ready.as_str(), r.status.as_str(), r.restarts.as_str())
    }

    #[test]
    fn print_pod_status_column_cases() {
        let two =
            json!({"containers": [{"name": "app", "image": "x"}, {"name": "side", "image": "x"}]});
        let with_init = json!({"containers": [{"name": "app", "image": "x"}], "initContainers": [{"name": "init", "image": "x"}]});
        let cases: Vec<(&str, serde_json::Value, (&str, &str, &str))> = vec![
            (
                "pending",
                json!({"status": {"phase": "Pending"}}),
                ("0/1", "Pending", "0"),
            ),
            (
                "container creating",
                json!({"status": {"phase": "Pending", "containerStatuses": [
                {"name": "app", "image": "x", "imageID": "", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}}]}}),
                ("0/1", "ContainerCreating", "0"),
            ),
            (
                "running",
                json!({"status": {"phase": "Running", "containerStatuses": [
                {"name": "app", "image": "x", "imageID": "", "ready": true, "restartCount": 0, "state": {"running": {"startedAt": "2024-05-01T11:56:00Z"}}}]}}),
                ("1/1", "Running", "0"),
            ),
            (
                "crash loop",
                json!({"status": {"phase": "Running", "containerStatuses": [
                {"name": "app", "image": "x", "imageID": "", "ready": false, "restartCount": 3,
                 "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                 "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": "2024-05-01T11:58:00Z"}}}]}}),
                ("0/1", "CrashLoopBackOff", "3 (2m ago)"),
            ),
            (
                "completed",
                json!({"status": {"phase": "Succeeded", "containerStatuses": [
                {"name": "app", "image": "x", "imageID": "", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}}),
                ("0/1", "Completed", "0"),
            ),
            (
                "error",
                json!({"status": {"phase": "Failed", "containerStatuses": [
                {"name": "app", "image": "x", "imageID": "", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}]}}),
                ("0/1", "Error", "0"),
            ),
            (
                "oom",
                json!({"status": {"phase": "Running", "containerStatuses": [
                {"name": "app", "image": "x", "imageID": "", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}]}}),
                ("0/1", "OOMKilled", "0"),
            ),
            (
                "signal",
                json!({"status": {"phase": "Running", "containerStatuses": [
                {"name": "app", "image": "x", "imageID": "", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 137, "signal": 9}}}]}}),
                ("0/1", "Signal:9", "0"),
            ),
            (
                "exit code",
                json!({"status": {"phase": "Running", "containerStatuses": [
                {"name": "app", "image": "x", "imageID": "", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 2}}}]}}),
                ("0/1", "ExitCode:2", "0"),
            ),
            (
                "err image pull",
                json!({"status": {"phase": "Pending", "containerStatuses": [
                {"name": "app", "image": "x", "imageID": "", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "ErrImagePull"}}}]}}),
                ("0/1", "ErrImagePull", "0"),
            ),
            (
                "init 0/1",
                json!({"spec": with_init.clone(), "status": {"phase": "Pending", "initContainerStatuses": [
                {"name": "init", "image": "x", "imageID": "", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}}]}}),
                ("0/1", "Init:0/1", "0"),
            ),
            (
                "init err image pull",
                json!({"spec": with_init.clone(), "status": {"phase": "Pending", "initContainerStatuses": [
                {"name": "init", "image": "x", "imageID": "", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "ErrImagePull"}}}]}}),
                ("0/1", "Init:ErrImagePull", "0"),
            ),
            (
                "init error",
                json!({"spec": with_init.clone(), "status": {"phase": "Pending", "initContainerStatuses": [
                {"name": "init", "image": "x", "imageID": "", "ready": false, "restartCount": 2, "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}]}}),
                ("0/1", "Init:Error", "2"),
            ),
            (
                "init exit code",
                json!({"spec": with_init.clone(), "status": {"phase": "Pending", "initContainerStatuses": [
                {"name": "init", "image": "x", "imageID": "", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 3}}}]}}),
                ("0/1", "Init:ExitCode:3", "0"),
            ),
            (
                "pod initializing",
                json!({"spec": with_init.clone(), "status": {"phase": "Pending",
                "initContainerStatuses": [{"name": "init", "image": "x", "imageID": "", "ready": true, "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}],
                "containerStatuses": [{"name": "app", "image": "x", "imageID": "", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}}]}}),
                ("0/1", "PodInitializing", "0"),
            ),
            (
                "terminating",
                json!({"metadata": {"name": "web", "creationTimestamp": "2024-05-01T11:55:00Z", "deletionTimestamp": "2024-05-01T11:59:00Z"},
                "status": {"phase": "Running", "containerStatuses": [
                {"name": "app", "image": "x", "imageID": "", "ready": true, "restartCount": 0, "state": {"running": {}}}]}}),
                ("1/1", "Terminating", "0"),
            ),
            (
                "deleted but done",
                json!({"metadata": {"name": "web", "creationTimestamp": "2024-05-01T11:55:00Z", "deletionTimestamp": "2024-05-01T11:59:00Z"},
                "status": {"phase": "Succeeded"}}),
                ("0/1", "Succeeded", "0"),
            ),
            (
                "node lost",
                json!({"metadata": {"name": "web", "creationTimestamp": "2024-05-01T11:55:00Z", "deletionTimestamp": "2024-05-01T11:59:00Z"},
                "status": {"phase": "Running", "reason": "NodeLost"}}),
                ("0/1", "Unknown", "0"),
            ),
            (
                "evicted",
                json!({"status": {"phase": "Failed", "reason": "Evicted"}}),
                ("0/1", "Evicted", "0"),
            ),
            (
                "scheduling gated",
                json!({"status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}}),
                ("0/1", "SchedulingGated", "0"),
            ),
            (
                "not ready",
                json!({"spec": two.clone(), "status": {"phase": "Running", "containerStatuses": [
                {"name": "app", "image": "x", "imageID": "", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                {"name": "side", "image": "x", "imageID": "", "ready": true, "restartCount": 0, "state": {"running": {}}}]}}),
                ("1/2", "NotReady", "0"),
            ),
            (
                "running again",
                json!({"spec": two.clone(), "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}], "containerStatuses": [
                {"name": "app", "image": "x", "imageID": "", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                {"name": "side", "image": "x", "imageID": "", "ready": true, "restartCount": 0, "state": {"running": {}}}]}}),
                ("1/2", "Running", "0"),
            ),
            (
                "sidecar",
                json!({"spec": {"containers": [{"name": "app", "image": "x"}], "initContainers": [{"name": "proxy", "image": "x", "restartPolicy": "Always"}]},
                "status": {"phase": "Running", "conditions": [{"type": "Initialized", "status": "True"}],
                "initContainerStatuses": [{"name": "proxy", "image": "x", "imageID": "", "ready": true, "started": true, "restartCount": 1,
                    "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2024-05-01T11:30:00Z"}}, "state": {"running": {}}}],
                "containerStatuses": [{"name": "app", "image": "x", "imageID": "", "ready": true, "restartCount": 0, "state": {"running": {}}}]}}),
                ("2/2", "Running", "1 (30m ago)"),
            ),
        ];
        for (name, extra, want) in cases {
            let r = row(extra);
            assert_eq!(status_of(&r), want, "case {name}");
        }
    }

    #[test]
    fn print_pod_age_and_wide_columns() {
        let r = row(json!({}));
        assert_eq!(
            r,
            PodRow {
                name: "web".into(),
                ready: "0/1".into(),
                status: String::new(),
                restarts: "0".into(),
                age: "5m".into(),
                ip: "<none>".into(),
                node: "<none>".into(),
                nominated_node: "<none>".into(),
                readiness_gates: "<none>".into(),
            }
        );
        let wide = row(json!({
            "spec": {"nodeName": "node-1", "containers": [{"name": "app", "image": "x"}], "readinessGates": [{"conditionType": "example.com/a"}, {"conditionType": "example.com/b"}]},
            "status": {"phase": "Running", "podIP": "10.1.0.5", "nominatedNodeName": "node-2",
                "conditions": [{"type": "example.com/a", "status": "True"}, {"type": "example.com/b", "status": "False"}]}
        }));
        assert_eq!(
            (
                wide.ip.as_str(),
                wide.node.as_str(),
                wide.nominated_node.as_str(),
                wide.readiness_gates.as_str()
            ),
            ("10.1.0.5", "node-1", "node-2", "1/2")
        );
        assert_eq!(wide.cells().len(), 9);
        let unknown = pod_table_row(&pod_from(json!({"metadata": {"name": "x"}})), ts(NOW));
        assert_eq!(unknown.age, "<unknown>");
        let skew = pod_table_row(
            &pod_from(json!({"metadata": {"creationTimestamp": "2024-05-01T12:00:01Z"}})),
            ts(NOW),
        );
        assert_eq!(skew.age, "0s");
        let future = pod_table_row(
            &pod_from(json!({"metadata": {"creationTimestamp": "2024-05-01T12:00:05Z"}})),
            ts(NOW),
        );
        assert_eq!(future.age, "<invalid>");
        let old = pod_table_row(
            &pod_from(json!({"metadata": {"creationTimestamp": "2020-05-01T12:00:00Z"}})),
            ts(NOW),
        );
        // 1461 days: the leap day shows, as upstream prints it.
        assert_eq!(old.age, "4y1d");
    }

    #[test]
    fn row_conditions_mark_finished_pods() {
        assert_eq!(pod_row_conditions(&valid_pod()), None);
        let done = pod_from(json!({"status": {"phase": "Succeeded"}}));
        assert_eq!(
            pod_row_conditions(&done),
            Some(
                json!([{"type": "Completed", "status": "True", "reason": "Succeeded", "message": "The pod has completed successfully."}])
            )
        );
    }
}
