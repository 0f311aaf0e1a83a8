//! The arithmetic of a rollout, free of I/O (upstream `pkg/controller/deployment/util`):
//! surge and unavailability budgets, the pod-template hash, revisions, proportional
//! scaling, and the status and conditions a Deployment reports.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

pub const REVISION: &str = "deployment.kubernetes.io/revision";
pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
const ROLLBACK_TO: &str = "deprecated.deployment.rollback.to";

/// Condition reasons, as upstream's `deploymentutil` constants.
pub const NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
pub const RS_UPDATED: &str = "ReplicaSetUpdated";
pub const TIMED_OUT: &str = "ProgressDeadlineExceeded";
pub const NEW_RS_CREATED: &str = "NewReplicaSetCreated";
pub const FOUND_NEW_RS: &str = "FoundNewReplicaSet";
pub const FAILED_RS_CREATE: &str = "ReplicaSetCreateError";
pub const PAUSED: &str = "DeploymentPaused";
pub const RESUMED: &str = "DeploymentResumed";

/// A progress deadline of `MaxInt32` means none (upstream `HasProgressDeadline`).
pub fn has_progress_deadline(d: &Deployment) -> bool {
    spec(d)
        .progress_deadline_seconds
        .is_some_and(|s| s != i32::MAX)
}

fn spec(d: &Deployment) -> &k8s_openapi::api::apps::v1::DeploymentSpec {
    static EMPTY: std::sync::OnceLock<k8s_openapi::api::apps::v1::DeploymentSpec> =
        std::sync::OnceLock::new();
    d.spec
        .as_ref()
        .unwrap_or_else(|| EMPTY.get_or_init(Default::default))
}

pub fn desired(d: &Deployment) -> i32 {
    spec(d).replicas.unwrap_or(1)
}

pub fn rs_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
}

fn rs_status(rs: &ReplicaSet) -> (i32, i32, i32) {
    rs.status
        .as_ref()
        .map(|s| {
            (
                s.replicas,
                s.ready_replicas.unwrap_or(0),
                s.available_replicas.unwrap_or(0),
            )
        })
        .unwrap_or_default()
}

pub fn is_rolling_update(d: &Deployment) -> bool {
    spec(d)
        .strategy
        .as_ref()
        .and_then(|s| s.type_.as_deref())
        .unwrap_or("RollingUpdate")
        == "RollingUpdate"
}

/// Upstream `GetScaledValueFromIntOrPercent`; a malformed percentage counts as 0 (validation
/// refuses it before it is stored).
pub fn scaled_value(v: Option<&IntOrString>, total: i32, round_up: bool) -> i32 {
    match v {
        Some(IntOrString::Int(i)) => *i,
        Some(IntOrString::String(s)) => {
            let percent: i64 = s
                .strip_suffix('%')
                .and_then(|p| p.parse().ok())
                .unwrap_or(0);
            let product = percent * i64::from(total);
            let value = if round_up {
                (product + 99) / 100
            } else {
                product / 100
            };
            value as i32
        }
        None => 0,
    }
}

/// Upstream `ResolveFenceposts`: (surge, unavailable) for `desired` replicas; both 0 would
/// stall a rollout, so unavailability is then 1.
pub fn resolve_fenceposts(d: &Deployment, desired: i32) -> (i32, i32) {
    let ru = spec(d)
        .strategy
        .as_ref()
        .and_then(|s| s.rolling_update.as_ref());
    let surge = scaled_value(ru.and_then(|r| r.max_surge.as_ref()), desired, true);
    let unavailable = scaled_value(ru.and_then(|r| r.max_unavailable.as_ref()), desired, false);
    if surge == 0 && unavailable == 0 {
        (0, 1)
    } else {
        (surge, unavailable)
    }
}

/// Upstream `MaxUnavailable`: never more than the desired count; 0 for Recreate.
pub fn max_unavailable(d: &Deployment) -> i32 {
    let want = desired(d);
    if !is_rolling_update(d) || want == 0 {
        return 0;
    }
    resolve_fenceposts(d, want).1.min(want)
}

/// Upstream `MaxSurge`: 0 for Recreate.
pub fn max_surge(d: &Deployment) -> i32 {
    if !is_rolling_update(d) {
        return 0;
    }
    resolve_fenceposts(d, desired(d)).0
}

/// The sum of the ReplicaSets' desired replicas (upstream `GetReplicaCountForReplicaSets`).
pub fn spec_replicas(sets: &[&ReplicaSet]) -> i32 {
    sets.iter().map(|rs| rs_replicas(rs)).sum()
}

/// The available replicas a ReplicaSet can be counted on for: its status's, but never more
/// than it is asked for. Right after a scale-down the status still counts Pods the
/// ReplicaSet controller is deleting; since that controller deletes unavailable Pods first,
/// `min(available, replicas)` is exactly what remains available once it has acted, so the
/// unavailability budget is never spent twice.
pub fn countable_available(rs: &ReplicaSet) -> i32 {
    rs_status(rs).2.min(rs_replicas(rs))
}

/// Upstream `NewRSNewReplicas`: how big the new ReplicaSet may grow now.
pub fn new_rs_new_replicas(d: &Deployment, all: &[&ReplicaSet], new_rs: &ReplicaSet) -> i32 {
    let want = desired(d);
    if !is_rolling_update(d) {
        return want;
    }
    let current = rs_replicas(new_rs);
    let max_total = want + max_surge(d);
    // Pods still counted by a ReplicaSet's status exist until its controller deletes them.
    let existing: i32 = all
        .iter()
        .map(|rs| rs_replicas(rs).max(rs_status(rs).0))
        .sum();
    if existing >= max_total {
        return current;
    }
    let up = (max_total - existing).min(want - current);
    current + up.max(0)
}

/// Upstream `ComputeHash`: FNV-1a (32 bits) of the template, then of the collision count,
/// written in the safe alphabet of `rand.SafeEncodeString`. rkube hashes the template's
/// canonical JSON where upstream hashes its Go dump, so the names differ from a real
/// cluster's but are stable for one template.
pub fn pod_template_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let mut hash: u32 = 0x811c_9dc5;
    let mut write = |bytes: &[u8]| {
        for b in bytes {
            hash ^= u32::from(*b);
            hash = hash.wrapping_mul(0x0100_0193);
        }
    };
    write(&serde_json::to_vec(template).unwrap_or_default());
    if let Some(c) = collision_count {
        write(&(c as u32).to_le_bytes());
    }
    const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    hash.to_string()
        .bytes()
        .map(|b| ALPHANUMS[usize::from(b) % ALPHANUMS.len()] as char)
        .collect()
}

/// Upstream `EqualIgnoreHash`: the templates are equal once `pod-template-hash` is dropped
/// from both.
pub fn equal_ignore_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    let strip = |t: &PodTemplateSpec| {
        let mut t = t.clone();
        if let Some(labels) = t.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
            labels.remove(POD_TEMPLATE_HASH);
        }
        if let Some(m) = t.metadata.as_mut() {
            if m.labels.as_ref().is_some_and(BTreeMap::is_empty) {
                m.labels = None;
            }
        }
        t
    };
    strip(a) == strip(b)
}

pub fn revision(rs: &ReplicaSet) -> i64 {
    rs.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REVISION))
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// Upstream `copyDeploymentAnnotationsToReplicaSet`: the Deployment's own annotations go to
/// its new ReplicaSet, except the ones the controller and kubectl keep per object.
fn copy_annotations(d: &Deployment, rs: &mut ReplicaSet) -> bool {
    let mut changed = false;
    let target = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
    for (k, v) in d.metadata.annotations.iter().flatten() {
        let skip = [
            LAST_APPLIED,
            REVISION,
            REVISION_HISTORY,
            DESIRED_REPLICAS,
            MAX_REPLICAS,
            ROLLBACK_TO,
        ];
        if skip.contains(&k.as_str()) || target.get(k) == Some(v) {
            continue;
        }
        target.insert(k.clone(), v.clone());
        changed = true;
    }
    changed
}

/// Upstream `SetReplicasAnnotations`.
pub fn set_replicas_annotations(rs: &mut ReplicaSet, desired: i32, max: i32) -> bool {
    let a = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
    let mut changed = false;
    for (k, v) in [(DESIRED_REPLICAS, desired), (MAX_REPLICAS, max)] {
        let v = v.to_string();
        if a.get(k) != Some(&v) {
            a.insert(k.to_string(), v);
            changed = true;
        }
    }
    changed
}

/// Upstream `SetNewReplicaSetAnnotations`: the Deployment's annotations, a revision above
/// every old one (a ReplicaSet rolled back to keeps its earlier numbers in
/// `revision-history`), and on creation the replica annotations.
pub fn set_new_rs_annotations(
    d: &Deployment,
    rs: &mut ReplicaSet,
    new_revision: i64,
    exists: bool,
) -> bool {
    let mut changed = copy_annotations(d, rs);
    let a = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
    let old = a.get(REVISION).cloned();
    let old_number = match old.as_deref().map(str::parse::<i64>) {
        None => 0,
        Some(Ok(n)) => n,
        Some(Err(_)) => return changed,
    };
    if old_number < new_revision {
        a.insert(REVISION.to_string(), new_revision.to_string());
        changed = true;
        if let Some(old) = old {
            let history = match a.get(REVISION_HISTORY) {
                Some(h) if !h.is_empty() => format!("{h},{old}"),
                _ => old,
            };
            a.insert(REVISION_HISTORY.to_string(), history);
        }
    }
    if !exists && set_replicas_annotations(rs, desired(d), desired(d) + max_surge(d)) {
        changed = true;
    }
    changed
}

/// Upstream `getReplicaSetFraction`: how many replicas `rs` gains (or loses) for the
/// Deployment's new size, in proportion to its share of the size it was last scaled for.
fn rs_fraction(rs: &ReplicaSet, d: &Deployment) -> i32 {
    if desired(d) == 0 {
        return -rs_replicas(rs);
    }
    let deployment_replicas = desired(d) + max_surge(d);
    let annotated = rs
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(MAX_REPLICAS))
        .and_then(|v| v.parse::<i32>().ok())
        .unwrap_or_else(|| d.status.as_ref().and_then(|s| s.replicas).unwrap_or(0));
    if annotated == 0 {
        return 0;
    }
    let size = f64::from(rs_replicas(rs)) * f64::from(deployment_replicas) / f64::from(annotated);
    size.round() as i32 - rs_replicas(rs)
}

/// Upstream `GetProportion`.
pub fn proportion(rs: &ReplicaSet, d: &Deployment, to_add: i32, added: i32) -> i32 {
    if rs_replicas(rs) == 0 || to_add == 0 || to_add == added {
        return 0;
    }
    let fraction = rs_fraction(rs, d);
    let allowed = to_add - added;
    if to_add > 0 {
        fraction.min(allowed)
    } else {
        fraction.max(allowed)
    }
}

pub fn condition<'a>(status: &'a DeploymentStatus, kind: &str) -> Option<&'a DeploymentCondition> {
    status.conditions.iter().flatten().find(|c| c.type_ == kind)
}

pub fn new_condition(
    kind: &str,
    status: &str,
    reason: &str,
    message: String,
) -> DeploymentCondition {
    let now = Some(Time(jiff::Timestamp::now()));
    DeploymentCondition {
        type_: kind.to_string(),
        status: status.to_string(),
        reason: Some(reason.to_string()),
        message: Some(message),
        last_update_time: now.clone(),
        last_transition_time: now,
    }
}

/// Upstream `SetDeploymentCondition`: the same status and reason change nothing; the same
/// status keeps its transition time.
pub fn set_condition(status: &mut DeploymentStatus, mut cond: DeploymentCondition) {
    if let Some(current) = condition(status, &cond.type_) {
        if current.status == cond.status && current.reason == cond.reason {
            return;
        }
        if current.status == cond.status {
            cond.last_transition_time = current.last_transition_time.clone();
        }
    }
    remove_condition(status, &cond.type_);
    status.conditions.get_or_insert_with(Vec::new).push(cond);
}

pub fn remove_condition(status: &mut DeploymentStatus, kind: &str) {
    if let Some(conds) = status.conditions.as_mut() {
        conds.retain(|c| c.type_ != kind);
    }
}

/// Upstream `calculateStatus`: counts from the ReplicaSets, and the Available condition.
pub fn calculate_status(
    all: &[&ReplicaSet],
    new_rs: Option<&ReplicaSet>,
    d: &Deployment,
) -> DeploymentStatus {
    let available: i32 = all.iter().map(|rs| rs_status(rs).2).sum();
    let total = spec_replicas(all);
    // Upstream's counts are `omitempty` values: a zero is left out.
    let count = |n: i32| (n != 0).then_some(n);
    let mut status = d.status.clone().unwrap_or_default();
    status.observed_generation = d.metadata.generation;
    status.replicas = count(all.iter().map(|rs| rs_status(rs).0).sum());
    status.updated_replicas = count(new_rs.map(|rs| rs_status(rs).0).unwrap_or(0));
    status.ready_replicas = count(all.iter().map(|rs| rs_status(rs).1).sum());
    status.available_replicas = count(available);
    status.unavailable_replicas = count((total - available).max(0));
    if available >= desired(d) - max_unavailable(d) {
        set_condition(
            &mut status,
            new_condition(
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.".into(),
            ),
        );
    } else {
        set_condition(
            &mut status,
            new_condition(
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.".into(),
            ),
        );
    }
    status
}

/// Upstream `DeploymentComplete`.
pub fn complete(d: &Deployment, status: &DeploymentStatus) -> bool {
    let want = desired(d);
    let n = |v: Option<i32>| v.unwrap_or(0);
    n(status.updated_replicas) == want
        && n(status.replicas) == want
        && n(status.available_replicas) == want
        && status.observed_generation >= d.metadata.generation
}

/// Upstream `DeploymentProgressing`: more updated, ready or available Pods than before, or
/// fewer old ones.
pub fn progressing(d: &Deployment, new: &DeploymentStatus) -> bool {
    let old = d.status.clone().unwrap_or_default();
    let n = |v: Option<i32>| v.unwrap_or(0);
    let old_old = n(old.replicas) - n(old.updated_replicas);
    let new_old = n(new.replicas) - n(new.updated_replicas);
    n(new.updated_replicas) > n(old.updated_replicas)
        || old_old > new_old
        || n(new.ready_replicas) > n(old.ready_replicas)
        || n(new.available_replicas) > n(old.available_replicas)
}

/// Upstream `DeploymentTimedOut`: no progress recorded for longer than the deadline.
pub fn timed_out(d: &Deployment, status: &DeploymentStatus, now: jiff::Timestamp) -> bool {
    if !has_progress_deadline(d) {
        return false;
    }
    let Some(cond) = condition(status, "Progressing") else {
        return false;
    };
    match cond.reason.as_deref() {
        Some(NEW_RS_AVAILABLE) => return false,
        Some(TIMED_OUT) => return true,
        _ => {}
    }
    let Some(from) = cond.last_update_time.as_ref() else {
        return false;
    };
    let deadline = i64::from(spec(d).progress_deadline_seconds.unwrap_or(600));
    from.0 + jiff::SignedDuration::from_secs(deadline) < now
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(
        replicas: i32,
        surge: serde_json::Value,
        unavailable: serde_json::Value,
    ) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "generation": 1},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}},
                "template": {"metadata": {"labels": {"app": "web"}}}},
        }))
        .expect("deployment")
    }

    fn rs(replicas: i32, status_replicas: i32, available: i32) -> ReplicaSet {
        serde_json::from_value(json!({
            "metadata": {"name": "rs"},
            "spec": {"replicas": replicas, "selector": {}},
            "status": {"replicas": status_replicas, "readyReplicas": available, "availableReplicas": available},
        }))
        .expect("rs")
    }

    #[test]
    fn budgets_round_surge_up_and_unavailability_down() {
        let cases = [
            (10, json!("25%"), json!("25%"), 3, 2),
            (1, json!("25%"), json!("25%"), 1, 0),
            (4, json!(0), json!(0), 0, 1),
            (10, json!(2), json!("100%"), 2, 10),
        ];
        for (replicas, surge, unavailable, want_surge, want_unavailable) in cases {
            let d = deployment(replicas, surge.clone(), unavailable.clone());
            assert_eq!(
                (max_surge(&d), max_unavailable(&d)),
                (want_surge, want_unavailable),
                "{replicas} {surge} {unavailable}"
            );
        }
    }

    #[test]
    fn the_new_replicaset_grows_only_within_the_surge() {
        let d = deployment(10, json!("25%"), json!("25%"));
        let old = rs(10, 10, 10);
        let new = rs(0, 0, 0);
        assert_eq!(new_rs_new_replicas(&d, &[&old, &new], &new), 3);
        // The old ReplicaSet was scaled down but its Pods are still counted.
        let old = rs(7, 10, 10);
        let new = rs(3, 3, 0);
        assert_eq!(new_rs_new_replicas(&d, &[&old, &new], &new), 3);
        let old = rs(7, 7, 7);
        assert_eq!(new_rs_new_replicas(&d, &[&old, &new], &new), 6);
    }

    #[test]
    fn a_scaled_down_replicaset_counts_no_more_than_it_keeps() {
        assert_eq!(countable_available(&rs(7, 10, 10)), 7);
        assert_eq!(countable_available(&rs(7, 10, 5)), 5);
    }

    #[test]
    fn the_hash_depends_on_the_template_and_the_collision_count() {
        let a: PodTemplateSpec =
            serde_json::from_value(json!({"metadata": {"labels": {"app": "web"}}})).expect("t");
        let b: PodTemplateSpec =
            serde_json::from_value(json!({"metadata": {"labels": {"app": "db"}}})).expect("t");
        let h = pod_template_hash(&a, None);
        assert_eq!(h, pod_template_hash(&a, None));
        assert_ne!(h, pod_template_hash(&b, None));
        assert_ne!(h, pod_template_hash(&a, Some(1)));
        assert!(
            h.bytes()
                .all(|c| b"bcdfghjklmnpqrstvwxz2456789".contains(&c)),
            "{h}"
        );
        let hashed: PodTemplateSpec = serde_json::from_value(
            json!({"metadata": {"labels": {"app": "web", "pod-template-hash": h}}}),
        )
        .expect("t");
        assert!(equal_ignore_hash(&a, &hashed));
        assert!(!equal_ignore_hash(&b, &hashed));
    }

    #[test]
    fn a_rolled_back_replicaset_keeps_its_old_revision_in_the_history() {
        let d = deployment(3, json!(1), json!(0));
        let mut old = rs(0, 0, 0);
        old.metadata.annotations = Some([(REVISION.to_string(), "1".to_string())].into());
        assert!(set_new_rs_annotations(&d, &mut old, 3, true));
        let a = old.metadata.annotations.clone().expect("annotations");
        assert_eq!(a[REVISION], "3");
        assert_eq!(a[REVISION_HISTORY], "1");
        assert!(!set_new_rs_annotations(&d, &mut old, 3, true));
        let mut new = rs(0, 0, 0);
        assert!(set_new_rs_annotations(&d, &mut new, 1, false));
        let a = new.metadata.annotations.expect("annotations");
        assert_eq!(a[REVISION], "1");
        assert_eq!(a[DESIRED_REPLICAS], "3");
        assert_eq!(a[MAX_REPLICAS], "4");
    }

    #[test]
    fn status_counts_leave_zeros_out_and_available_follows_the_budget() {
        let d = deployment(10, json!("25%"), json!("25%"));
        let old = rs(2, 2, 2);
        let new = rs(8, 8, 6);
        let status = calculate_status(&[&old, &new], Some(&new), &d);
        assert_eq!(status.replicas, Some(10));
        assert_eq!(status.updated_replicas, Some(8));
        assert_eq!(status.available_replicas, Some(8));
        assert_eq!(status.unavailable_replicas, Some(2));
        let available = condition(&status, "Available").expect("Available");
        assert_eq!(available.status, "True");
        assert!(!complete(&d, &status));
        let empty = calculate_status(&[], None, &deployment(0, json!(1), json!(0)));
        assert_eq!((empty.replicas, empty.unavailable_replicas), (None, None));
        let low = calculate_status(&[&rs(10, 10, 7)], None, &d);
        let available = condition(&low, "Available").expect("Available");
        assert_eq!(
            (available.status.as_str(), available.reason.as_deref()),
            ("False", Some("MinimumReplicasUnavailable"))
        );
    }

    #[test]
    fn scaling_a_deployment_mid_rollout_shares_replicas_in_proportion() {
        // 10 replicas with 3 surge, scaled to 20 (surge 5) halfway: 6 old and 7 new, each
        // grown by its share of 25/13.
        let d = deployment(20, json!("25%"), json!("25%"));
        let mut old = rs(6, 6, 6);
        let mut new = rs(7, 7, 0);
        for r in [&mut old, &mut new] {
            set_replicas_annotations(r, 10, 13);
        }
        let to_add = 25 - 13;
        let a = proportion(&new, &d, to_add, 0);
        let b = proportion(&old, &d, to_add, a);
        assert_eq!((a, b), (6, 6));
    }
}
