//! The default Score plugins with their weights and normalization: NodeResourcesFit
//! (LeastAllocated), NodeResourcesBalancedAllocation, TaintToleration and NodeAffinity.

use super::*;

/// Each default Score plugin's normalized (0–100), unweighted score for one node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct PluginScores {
    least_allocated: i64,
    balanced_allocation: i64,
    taint_toleration: i64,
    pub(super) node_affinity: i64,
}

impl PluginScores {
    fn total(&self) -> i64 {
        self.least_allocated * WEIGHT_NODE_RESOURCES_FIT
            + self.balanced_allocation * WEIGHT_BALANCED_ALLOCATION
            + self.taint_toleration * WEIGHT_TAINT_TOLERATION
            + self.node_affinity * WEIGHT_NODE_AFFINITY
    }
}

/// Scores feasible nodes with the default Score plugins and weights; one total per node, in
/// the order given.
pub fn score(pod: &Pod, feasible: &[&NodeInfo]) -> Vec<i64> {
    plugin_scores(pod, feasible)
        .iter()
        .map(PluginScores::total)
        .collect()
}

pub(super) fn plugin_scores(pod: &Pod, feasible: &[&NodeInfo]) -> Vec<PluginScores> {
    let non_zero = pod_requests_non_zero(pod);
    let plain = pod_requests(pod);
    let prefer_tolerations: Vec<Toleration> = tolerations(pod)
        .iter()
        .filter(|t| {
            let effect = t.effect.as_deref().unwrap_or("");
            effect.is_empty() || effect == EFFECT_PREFER_NO_SCHEDULE
        })
        .cloned()
        .collect();
    let mut taint_counts = Vec::with_capacity(feasible.len());
    let mut affinity_sums = Vec::with_capacity(feasible.len());
    let mut scores: Vec<PluginScores> = feasible
        .iter()
        .map(|node| {
            let allocatable = node.allocatable();
            taint_counts.push(untolerated_prefer_no_schedule(node, &prefer_tolerations));
            affinity_sums.push(preferred_affinity_score(pod, &node.node));
            PluginScores {
                least_allocated: least_allocated(
                    allocatable,
                    node.non_zero_cpu + i128::from(non_zero.milli_cpu),
                    node.non_zero_memory + i128::from(non_zero.memory),
                ),
                balanced_allocation: balanced_allocation(
                    allocatable,
                    node.requested_cpu + i128::from(plain.milli_cpu),
                    node.requested_memory + i128::from(plain.memory),
                ),
                ..PluginScores::default()
            }
        })
        .collect();
    // TaintToleration: fewer untolerated PreferNoSchedule taints is better (reversed).
    default_normalize(&mut taint_counts, true);
    // NodeAffinity: more matched preferred weight is better.
    default_normalize(&mut affinity_sums, false);
    for ((s, taint), affinity) in scores.iter_mut().zip(taint_counts).zip(affinity_sums) {
        s.taint_toleration = taint;
        s.node_affinity = affinity;
    }
    scores
}

fn untolerated_prefer_no_schedule(node: &NodeInfo, tolerations: &[Toleration]) -> i64 {
    let n = taints(node)
        .iter()
        .filter(|t| t.effect == EFFECT_PREFER_NO_SCHEDULE && !tolerated(tolerations, t))
        .count();
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Upstream `helper.DefaultNormalizeScore`: scale so the highest becomes 100 (then subtract
/// from 100 when reversed); all-zero scores stay 0, or become 100 when reversed. Results are
/// kept within 0..=100 (upstream errors out on a plugin score outside that range, reachable
/// only with negative preference weights that API validation rejects).
fn default_normalize(scores: &mut [i64], reverse: bool) {
    let max = scores.iter().copied().fold(0, i64::max);
    for s in scores.iter_mut() {
        let mut v = if max == 0 {
            *s
        } else {
            clamp_i64(i128::from(MAX_NODE_SCORE) * i128::from(*s) / i128::from(max))
        };
        if reverse {
            v = MAX_NODE_SCORE.saturating_sub(v);
        }
        *s = v.clamp(0, MAX_NODE_SCORE);
    }
}

/// NodeResourcesFit's LeastAllocated score: per resource `(allocatable - requested) × 100 /
/// allocatable` (0 when over), averaged with weight 1 each over the resources the node has.
/// `requested` includes the node's NonZeroRequested and the Pod's non-zero requests.
fn least_allocated(allocatable: Resources, cpu: i128, memory: i128) -> i64 {
    let mut sum = 0i128;
    let mut weights = 0i128;
    for (capacity, requested) in [(allocatable.milli_cpu, cpu), (allocatable.memory, memory)] {
        let capacity = i128::from(capacity);
        if capacity == 0 {
            continue;
        }
        let resource_score = if requested > capacity {
            0
        } else {
            (capacity - requested) * i128::from(MAX_NODE_SCORE) / capacity
        };
        sum += resource_score;
        weights += 1;
    }
    if weights == 0 {
        0
    } else {
        // Within 0..=100 unless a request is negative, which API validation forbids.
        clamp_i64(sum / weights).clamp(0, MAX_NODE_SCORE)
    }
}

/// NodeResourcesBalancedAllocation: `(1 - std) × 100` over the requested fraction of each
/// resource the node has (at most one); with two resources std is `|f_cpu - f_mem| / 2`. It
/// uses plain requests (upstream `useRequested: true`), not the non-zero defaults.
fn balanced_allocation(allocatable: Resources, cpu: i128, memory: i128) -> i64 {
    let fractions: Vec<f64> = [(allocatable.milli_cpu, cpu), (allocatable.memory, memory)]
        .iter()
        .filter(|(capacity, _)| *capacity != 0)
        .map(|(capacity, requested)| (*requested as f64 / *capacity as f64).min(1.0))
        .collect();
    let std = match fractions.as_slice() {
        [a, b] => ((a - b) / 2.0).abs(),
        _ => 0.0,
    };
    // Truncation toward zero, as Go's int64(float64) conversion.
    (((1.0 - std) * MAX_NODE_SCORE as f64) as i64).clamp(0, MAX_NODE_SCORE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::framework::test_support::*;

    #[test]
    fn least_allocated_prefers_the_emptier_node() {
        let empty = plain_node("empty");
        let mut busy = plain_node("busy");
        busy.add_pod(&requesting("old", "2", "4Gi"));
        let p = requesting("p", "1", "1Gi");
        let scores = plugin_scores(&p, &[&empty, &busy]);
        // empty: cpu 3000/4000 → 75, memory 7/8 → 87; busy: 1000/4000 → 25, 3/8 → 37.
        assert_eq!(scores[0].least_allocated, (75 + 87) / 2);
        assert_eq!(scores[1].least_allocated, (25 + 37) / 2);
    }

    #[test]
    fn least_allocated_counts_default_requests_for_request_less_pods() {
        let mut one = node("one", "1", "1000Mi", "110", json!({}));
        one.add_pod(&pod_req("old", None, None, json!({})));
        let empty = node("empty", "1", "1000Mi", "110", json!({}));
        let p = pod_req("p", None, None, json!({}));
        let scores = plugin_scores(&p, &[&one, &empty]);
        // one: cpu (1000-200)/1000 → 80, memory (1000-400)/1000 → 60; empty: 90 and 80.
        assert_eq!(scores[0].least_allocated, 70);
        assert_eq!(scores[1].least_allocated, 85);
    }

    #[test]
    fn balanced_allocation_prefers_even_use_of_cpu_and_memory() {
        let mut lopsided = node("lopsided", "4", "4Gi", "110", json!({}));
        lopsided.add_pod(&requesting("a", "1", "3Gi"));
        let mut even = node("even", "4", "4Gi", "110", json!({}));
        even.add_pod(&requesting("b", "1", "1Gi"));
        let p = requesting("p", "1", "1Gi");
        let scores = plugin_scores(&p, &[&lopsided, &even]);
        // lopsided: fractions 0.5 and 1.0 → std 0.25 → 75; even: 0.5 and 0.5 → 100.
        assert_eq!(scores[0].balanced_allocation, 75);
        assert_eq!(scores[1].balanced_allocation, 100);
        // Plain requests, not the defaults: a request-less Pod on an idle node is even.
        let idle = node("idle", "4", "1Gi", "110", json!({}));
        let none = pod_req("q", None, None, json!({}));
        assert_eq!(plugin_scores(&none, &[&idle])[0].balanced_allocation, 100);
    }

    #[test]
    fn taint_toleration_score_penalises_untolerated_prefer_no_schedule_taints() {
        let taints = |list: Value| node("n", "4", "8Gi", "110", json!({"spec": {"taints": list}}));
        let soft = |key: &str| json!({"key": key, "effect": "PreferNoSchedule"});
        let one = taints(json!([soft("a")]));
        let none = taints(json!([{"key": "hard", "effect": "NoSchedule"}]));
        let two = taints(json!([soft("a"), soft("b")]));
        let scores = |p: &Pod| -> Vec<i64> {
            let s = plugin_scores(p, &[&one, &none, &two]);
            s.iter().map(|s| s.taint_toleration).collect()
        };
        let hard = json!({"key": "hard", "operator": "Exists"});
        assert_eq!(
            scores(&pod_req("p", None, None, json!({"tolerations": [hard]}))),
            [50, 100, 0]
        );
        // Only tolerations with no effect or PreferNoSchedule count when scoring.
        let p = pod_req(
            "p",
            None,
            None,
            json!({"tolerations": [
                {"key": "a", "operator": "Exists", "effect": "PreferNoSchedule"},
                {"key": "b", "operator": "Exists", "effect": "NoSchedule"}
            ]}),
        );
        assert_eq!(scores(&p), [100, 100, 0]);
    }

    #[test]
    fn score_sums_plugins_with_default_weights() {
        let empty = plain_node("empty");
        let mut busy = plain_node("busy");
        busy.add_pod(&requesting("old", "2", "4Gi"));
        let p = requesting("p", "1", "1Gi");
        // LeastAllocated 81 / 31, BalancedAllocation 93 each, TaintToleration 100 × 3 each.
        assert_eq!(score(&p, &[&empty, &busy]), [81 + 93 + 300, 31 + 93 + 300]);
    }
}
