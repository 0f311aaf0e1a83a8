//! Where a Pod goes: kube-scheduler v1.32's default-profile Filter and Score plugins, host
//! selection and failure messages, as pure functions over Pods and per-node accounting.
//!
//! Followed upstream (v1.32, `pkg/scheduler`):
//! - Filter, in the default profile's order, stopping at the first rejection (as
//!   `RunFilterPlugins` does): NodeUnschedulable, NodeName, TaintToleration, NodeAffinity,
//!   NodePorts, NodeResourcesFit. NodeAffinity's PreFilter (`metadata.name` matchFields) runs in
//!   [`schedule`].
//! - Score with the default weights: NodeResourcesFit (LeastAllocated, cpu and memory weight 1)
//!   ×1, NodeResourcesBalancedAllocation ×1, TaintToleration ×3, NodeAffinity ×2, each
//!   normalized as upstream does.
//! - Pod requests as `pkg/api/v1/resource` `PodRequests` computes them (sidecar init
//!   containers included), NodeInfo accounting as `framework/types.go` keeps it.
//!
//! Not modelled (the plugins are no-ops for Pods rkube can run today, or need cluster state this
//! module does not see): volume plugins, PodTopologySpread, InterPodAffinity, ImageLocality,
//! DynamicResources, scheduling gates (the caller must skip gated Pods), nominated Pods of other
//! Pods, and real preemption (every rkube Pod has priority 0, so there are never victims).
//!
//! Layout: `resources` (quantities and Pod requests), `node_info` (per-node accounting),
//! `filters`, `affinity` (node selector terms, shared by a filter and a score) and `scores`;
//! this module holds host selection and the whole decision, [`schedule`].

use std::collections::{BTreeMap, BTreeSet, HashMap};

use k8s_openapi::api::core::v1::{
    Container, Node, NodeSelectorRequirement, NodeSelectorTerm, Pod, PodSpec, Taint, Toleration,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use crate::meta::quantity::Quantity as ApiQuantity;
use crate::meta::selector::{LabelOperator, LabelRequirement};
use crate::meta::validation::is_qualified_name;

use super::message::{
    insufficient_reason, untolerated_taint_reason, REASON_AFFINITY_TERMS_CONFLICT,
    REASON_NODE_AFFINITY, REASON_NODE_NAME, REASON_NODE_PORTS, REASON_NODE_UNSCHEDULABLE,
    REASON_TOO_MANY_PODS,
};
pub use super::message::{FitError, Rejection};

/// Plugin names as upstream reports them.
pub const PLUGIN_NODE_UNSCHEDULABLE: &str = "NodeUnschedulable";
pub const PLUGIN_NODE_NAME: &str = "NodeName";
pub const PLUGIN_TAINT_TOLERATION: &str = "TaintToleration";
pub const PLUGIN_NODE_AFFINITY: &str = "NodeAffinity";
pub const PLUGIN_NODE_PORTS: &str = "NodePorts";
pub const PLUGIN_NODE_RESOURCES_FIT: &str = "NodeResourcesFit";

/// Upstream `framework.MaxNodeScore`: every plugin's normalized score is in 0..=100.
pub const MAX_NODE_SCORE: i64 = 100;
const WEIGHT_NODE_RESOURCES_FIT: i64 = 1;
const WEIGHT_BALANCED_ALLOCATION: i64 = 1;
const WEIGHT_TAINT_TOLERATION: i64 = 3;
const WEIGHT_NODE_AFFINITY: i64 = 2;

/// Upstream `schedutil.DefaultMilliCPURequest`: what scoring assumes for a container that
/// requests no cpu, so that request-less Pods do not all pile onto one node.
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
/// Upstream `schedutil.DefaultMemoryRequest` (200Mi), likewise for memory.
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

const CPU: &str = "cpu";
const MEMORY: &str = "memory";
const PODS: &str = "pods";
const EPHEMERAL_STORAGE: &str = "ephemeral-storage";
const TAINT_NODE_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";
const EFFECT_NO_SCHEDULE: &str = "NoSchedule";
const EFFECT_NO_EXECUTE: &str = "NoExecute";
const EFFECT_PREFER_NO_SCHEDULE: &str = "PreferNoSchedule";
const BIND_ALL_HOST_IP: &str = "0.0.0.0";
const OBJECT_NAME_FIELD: &str = "metadata.name";

static NO_LABELS: BTreeMap<String, String> = BTreeMap::new();

mod affinity;
mod filters;
mod node_info;
mod resources;
mod scores;
#[cfg(test)]
pub(super) mod test_support;

use affinity::*;
use filters::*;
pub use filters::{filter, tolerates_taint};
pub use node_info::NodeInfo;
use node_info::*;
use resources::*;
pub use resources::{pod_requests, pod_requests_non_zero, Resources};
pub use scores::score;

// ---------------------------------------------------------------------------------------------
// Host selection and the whole decision
// ---------------------------------------------------------------------------------------------

/// The best-scoring node; ties are broken uniformly at random by reservoir sampling, as
/// upstream `selectHost` does (the k-th node seen with the top score replaces the pick with
/// probability 1/k). None for an empty list.
pub fn select_host(scores: &[(String, i64)], rng: &mut impl rand::Rng) -> Option<String> {
    let mut best: Option<(&String, i64)> = None;
    let mut ties: u64 = 0;
    for (name, score) in scores {
        match best {
            Some((_, top)) if *score < top => {}
            Some((_, top)) if *score == top => {
                ties += 1;
                if rng.random_range(0..ties) == 0 {
                    best = Some((name, *score));
                }
            }
            _ => {
                best = Some((name, *score));
                ties = 1;
            }
        }
    }
    best.map(|(name, _)| name.clone())
}

/// Upstream `minFeasibleNodesToFind`: clusters smaller than this have every node filtered.
const MIN_FEASIBLE_NODES_TO_FIND: usize = 100;
/// Upstream `minFeasibleNodesPercentageToFind`.
const MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND: usize = 5;

/// Upstream `numFeasibleNodesToFind` with the default `percentageOfNodesToScore` (0, adaptive):
/// how many feasible nodes are enough to stop filtering — every node below 100, else
/// 50 % less 1 % per 125 nodes (at least 5 %), and never fewer than 100.
pub fn feasible_nodes_to_find(all: usize) -> usize {
    if all < MIN_FEASIBLE_NODES_TO_FIND {
        return all;
    }
    let percentage = 50usize
        .saturating_sub(all / 125)
        .max(MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND);
    (all * percentage / 100).max(MIN_FEASIBLE_NODES_TO_FIND)
}

/// The whole decision for one Pod over a snapshot of nodes: the chosen node's name, or why
/// none fits.
///
/// As upstream's `schedulePod`: no nodes is its own error; NodeAffinity's PreFilter may reject
/// outright or narrow the nodes filtered; a still-fitting `status.nominatedNodeName` is taken
/// first without scoring; a single feasible node is taken without scoring. Filtering starts at
/// `next_start` (upstream's `nextStartNodeIndex`) and stops once
/// [`feasible_nodes_to_find`] nodes fit; `next_start` then moves past every node looked at, so
/// consecutive Pods spread their search over the whole cluster.
pub fn schedule(
    pod: &Pod,
    nodes: &[NodeInfo],
    next_start: &mut usize,
    rng: &mut impl rand::Rng,
) -> Result<String, FitError> {
    let preemption_never = spec(pod).and_then(|s| s.preemption_policy.as_deref()) == Some("Never");
    let fit_error = |rejections: Vec<(String, Rejection)>| FitError {
        num_all_nodes: nodes.len(),
        rejections,
        pre_filter_message: None,
        preemption_never,
    };
    if nodes.is_empty() {
        return Err(fit_error(Vec::new()));
    }
    let allowed = match node_affinity_pre_filter(pod) {
        Ok(allowed) => allowed,
        Err(reason) => {
            // Upstream gives every node the PreFilter status so preemption skips them all.
            let rejections = nodes
                .iter()
                .map(|n| {
                    let rejection = Rejection::unresolvable(PLUGIN_NODE_AFFINITY, reason);
                    (n.name().to_string(), rejection)
                })
                .collect();
            return Err(FitError {
                pre_filter_message: Some(reason.to_string()),
                ..fit_error(rejections)
            });
        }
    };
    let wants = Wants::of(pod);
    let nominated = pod
        .status
        .as_ref()
        .and_then(|s| s.nominated_node_name.as_deref())
        .filter(|n| !n.is_empty());
    if let Some(info) = nominated.and_then(|n| nodes.iter().find(|i| i.name() == n)) {
        if filter_wanting(&wants, info).is_ok() {
            return Ok(info.name().to_string());
        }
    }
    let considered: Vec<&NodeInfo> = match &allowed {
        None => nodes.iter().collect(),
        Some(set) => nodes.iter().filter(|n| set.contains(n.name())).collect(),
    };
    let enough = feasible_nodes_to_find(considered.len());
    let mut feasible: Vec<&NodeInfo> = Vec::new();
    let mut rejections = Vec::new();
    let mut looked_at = 0;
    for i in 0..considered.len() {
        if feasible.len() >= enough {
            break;
        }
        let info = considered[(*next_start + i) % considered.len()];
        looked_at += 1;
        match filter_wanting(&wants, info) {
            Ok(()) => feasible.push(info),
            Err(rejection) => rejections.push((info.name().to_string(), rejection)),
        }
    }
    *next_start = (*next_start + looked_at) % nodes.len();
    match feasible.as_slice() {
        [] => Err(fit_error(rejections)),
        [only] => Ok(only.name().to_string()),
        _ => {
            let totals = score(pod, &feasible);
            let ranked: Vec<(String, i64)> = feasible
                .iter()
                .map(|n| n.name().to_string())
                .zip(totals)
                .collect();
            select_host(&ranked, rng).ok_or_else(|| fit_error(rejections))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::framework::test_support::*;

    #[test]
    fn large_clusters_stop_filtering_once_enough_nodes_fit() {
        let table = [
            (1, 1),
            (99, 99),
            (100, 100),
            (150, 100),
            (1000, 420),
            (5000, 500),
        ];
        for (all, enough) in table {
            assert_eq!(feasible_nodes_to_find(all), enough, "{all} nodes");
        }
        // Past 5,625 nodes the percentage stays at its floor of 5 %.
        assert_eq!(feasible_nodes_to_find(6000), 300);
        assert_eq!(feasible_nodes_to_find(10_000), 500);
    }

    #[test]
    fn consecutive_pods_search_on_where_the_last_one_stopped() {
        let mut rng = StdRng::seed_from_u64(3);
        let nodes: Vec<NodeInfo> = (0..250).map(|i| plain_node(&format!("n{i:03}"))).collect();
        let index = |name: &str| nodes.iter().position(|n| n.name() == name).expect("a node");
        let p = requesting("p", "100m", "64Mi");
        let mut next_start = 0;
        // Of 250 nodes, 48 % are enough: 120.
        let enough = feasible_nodes_to_find(250);
        assert_eq!(enough, 120);
        let first = schedule(&p, &nodes, &mut next_start, &mut rng).expect("fits");
        assert!(
            index(&first) < enough,
            "{first} is among the first {enough}"
        );
        assert_eq!(next_start, enough);
        let second = schedule(&p, &nodes, &mut next_start, &mut rng).expect("fits");
        assert!((enough..2 * enough).contains(&index(&second)), "{second}");
        assert_eq!(next_start, 2 * enough);
        // The third search wraps around the end of the list.
        let third = schedule(&p, &nodes, &mut next_start, &mut rng).expect("fits");
        let i = index(&third);
        assert!(i >= 2 * enough || i < 3 * enough - 250, "{third}");
        assert_eq!(next_start, 3 * enough - 250);
    }

    #[test]
    fn a_node_that_does_not_fit_counts_as_looked_at() {
        let mut rng = StdRng::seed_from_u64(5);
        let mut nodes: Vec<NodeInfo> = (0..200).map(|i| plain_node(&format!("n{i:03}"))).collect();
        // The first ten are full: they are looked at, rejected, and the search goes on.
        for (i, n) in nodes.iter_mut().take(10).enumerate() {
            n.add_pod(&requesting(&format!("big{i}"), "4", "1Gi"));
        }
        let mut next_start = 0;
        let chosen = schedule(
            &requesting("p", "1", "1Gi"),
            &nodes,
            &mut next_start,
            &mut rng,
        )
        .expect("fits");
        assert!(!nodes[..10].iter().any(|n| n.name() == chosen));
        assert_eq!(next_start, 110, "10 rejected and 100 feasible");
    }

    #[test]
    fn select_host_picks_the_highest_score() {
        let mut rng = StdRng::seed_from_u64(7);
        let scores = [("a", 10), ("b", 30), ("c", 20)].map(|(n, s)| (n.to_string(), s));
        for _ in 0..100 {
            assert_eq!(select_host(&scores, &mut rng).as_deref(), Some("b"));
        }
        assert_eq!(select_host(&[], &mut rng), None);
    }

    #[test]
    fn select_host_breaks_ties_uniformly_at_random() {
        let mut rng = StdRng::seed_from_u64(42);
        let scores =
            [("a", 50), ("low", 10), ("b", 50), ("c", 50)].map(|(n, s)| (n.to_string(), s));
        let mut counts: HashMap<String, usize> = HashMap::new();
        for _ in 0..30_000 {
            let pick = select_host(&scores, &mut rng).expect("non-empty");
            *counts.entry(pick).or_default() += 1;
        }
        assert_eq!(counts.get("low"), None);
        for name in ["a", "b", "c"] {
            let n = counts.get(name).copied().unwrap_or(0);
            // Expected 10,000 each; one standard deviation is about 82.
            assert!((9_500..=10_500).contains(&n), "{name} picked {n} times");
        }
    }

    #[test]
    fn schedule_picks_the_emptier_node() {
        let mut busy = plain_node("busy");
        busy.add_pod(&requesting("old", "3", "6Gi"));
        let nodes = vec![busy, plain_node("empty")];
        let mut rng = StdRng::seed_from_u64(1);
        let p = requesting("p", "500m", "1Gi");
        assert_eq!(
            schedule(&p, &nodes, &mut 0, &mut rng),
            Ok("empty".to_string())
        );
    }

    #[test]
    fn message_counts_reasons_per_node_like_upstream() {
        let control_plane = json!({"spec": {"taints": [
            {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}
        ]}});
        let nodes = vec![
            node("cp", "8", "32Gi", "110", control_plane),
            node("w1", "8", "2Gi", "110", json!({})),
            node("w2", "8", "2Gi", "110", json!({})),
        ];
        let mut rng = StdRng::seed_from_u64(1);
        let p = requesting("p", "1", "4Gi");
        let err = schedule(&p, &nodes, &mut 0, &mut rng).expect_err("nothing fits");
        assert_eq!(err.num_all_nodes, 3);
        assert_eq!(err.rejections.len(), 3);
        assert_eq!(
            err.message(),
            "0/3 nodes are available: 1 node(s) had untolerated taint \
             {node-role.kubernetes.io/control-plane: }, 2 Insufficient memory. preemption: 0/3 \
             nodes are available: 1 Preemption is not helpful for scheduling, 2 No preemption \
             victims found for incoming pod."
        );
    }

    #[test]
    fn message_for_mixed_rejections_counts_each_reason_once_per_node() {
        let mut full = node("full", "2", "2Gi", "1", json!({}));
        full.add_pod(&requesting("old", "2", "2Gi"));
        let nodes = vec![
            full,
            node(
                "cordoned",
                "8",
                "8Gi",
                "110",
                json!({"spec": {"unschedulable": true}}),
            ),
            node("small", "1", "8Gi", "110", json!({})),
            node(
                "elsewhere",
                "8",
                "8Gi",
                "110",
                json!({"metadata": {"labels": {"zone": "b"}}}),
            ),
        ];
        let p = pod_req(
            "p",
            Some("1500m"),
            Some("1Gi"),
            json!({"affinity": {"nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["b"]}]}
                ]}
            }}}),
        );
        let mut rng = StdRng::seed_from_u64(1);
        let err = schedule(&p, &nodes, &mut 0, &mut rng).expect_err("nothing fits");
        assert_eq!(
            err.message(),
            "0/4 nodes are available: 1 Insufficient memory, 1 Too many pods, \
             1 node(s) didn't match Pod's node affinity/selector, 1 node(s) were unschedulable, \
             2 Insufficient cpu. preemption: 0/4 nodes are available: 2 No preemption victims \
             found for incoming pod, 2 Preemption is not helpful for scheduling."
        );
    }

    #[test]
    fn schedule_with_no_nodes_reports_upstreams_no_nodes_message() {
        let mut rng = StdRng::seed_from_u64(1);
        let err =
            schedule(&requesting("p", "1", "1Gi"), &[], &mut 0, &mut rng).expect_err("no nodes");
        assert_eq!(err.num_all_nodes, 0);
        assert_eq!(err.message(), "no nodes available to schedule pods");
    }

    #[test]
    fn schedule_takes_a_nominated_node_that_still_fits() {
        let mut busy = plain_node("busy");
        busy.add_pod(&requesting("old", "3", "6Gi"));
        let nodes = vec![busy, plain_node("empty")];
        let nominated = Some(PodStatus {
            nominated_node_name: Some("busy".into()),
            ..PodStatus::default()
        });
        let mut p = requesting("p", "500m", "1Gi");
        p.status = nominated.clone();
        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(
            schedule(&p, &nodes, &mut 0, &mut rng),
            Ok("busy".to_string())
        );
        let mut big = requesting("p", "2", "1Gi");
        big.status = nominated;
        assert_eq!(
            schedule(&big, &nodes, &mut 0, &mut rng),
            Ok("empty".to_string())
        );
    }

    #[test]
    fn schedule_reports_that_preemption_policy_never_is_not_eligible() {
        let nodes = vec![node("a", "1", "1Gi", "110", json!({}))];
        let p = pod_req("p", Some("2"), None, json!({"preemptionPolicy": "Never"}));
        let mut rng = StdRng::seed_from_u64(1);
        let err = schedule(&p, &nodes, &mut 0, &mut rng).expect_err("too big");
        assert_eq!(
            err.message(),
            "0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to \
             preemptionPolicy=Never."
        );
    }

    #[test]
    fn scheduling_many_random_pods_never_overcommits_a_node() {
        const ZONES: [&str; 3] = ["a", "b", "c"];
        let mut rng = StdRng::seed_from_u64(2024);
        let mut nodes: Vec<NodeInfo> = (0..50)
            .map(|i| {
                let mut extra = json!({"metadata": {"labels": {"zone": ZONES[i % 3]}}});
                if i % 7 == 0 {
                    let taint = json!({"key": "dedicated", "value": "x", "effect": "NoSchedule"});
                    merge(&mut extra, json!({"spec": {"taints": [taint]}}));
                }
                if i % 11 == 0 {
                    merge(&mut extra, json!({"spec": {"unschedulable": true}}));
                }
                let cpu = format!("{}m", rng.random_range(500..8000));
                let memory = format!("{}Mi", rng.random_range(512..16384));
                let pods = rng.random_range(3..30).to_string();
                node(&format!("node-{i}"), &cpu, &memory, &pods, extra)
            })
            .collect();
        let (mut placed, mut refused) = (0, 0);
        let mut placed_on: HashMap<String, Vec<Pod>> = HashMap::new();
        for i in 0..1000 {
            let cpu =
                (rng.random_range(0..4) > 0).then(|| format!("{}m", rng.random_range(0..1500)));
            let memory =
                (rng.random_range(0..4) > 0).then(|| format!("{}Mi", rng.random_range(0..3000)));
            let mut extra = json!({});
            if rng.random_range(0..5) == 0 {
                let tolerate = json!({"key": "dedicated", "operator": "Exists"});
                merge(&mut extra, json!({"tolerations": [tolerate]}));
            }
            if rng.random_range(0..6) == 0 {
                let zone = ZONES[rng.random_range(0..3)];
                merge(&mut extra, json!({"nodeSelector": {"zone": zone}}));
            }
            if rng.random_range(0..8) == 0 {
                let init_cpu = format!("{}m", rng.random_range(0..2000));
                merge(
                    &mut extra,
                    json!({"initContainers": [
                        {"name": "s", "image": "i", "restartPolicy": "Always",
                         "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}},
                        {"name": "init", "image": "i", "resources": {"requests": {"cpu": init_cpu}}}
                    ]}),
                );
            }
            if rng.random_range(0..10) == 0 {
                merge(
                    &mut extra,
                    json!({"overhead": {"cpu": "50m", "memory": "16Mi"}}),
                );
            }
            let p = pod_req(
                &format!("pod-{i}"),
                cpu.as_deref(),
                memory.as_deref(),
                extra,
            );
            match schedule(&p, &nodes, &mut 0, &mut rng) {
                Ok(name) => {
                    let info = nodes
                        .iter_mut()
                        .find(|n| n.name() == name)
                        .expect("chosen node exists");
                    info.add_pod(&p);
                    placed_on.entry(name).or_default().push(p);
                    placed += 1;
                }
                Err(err) => {
                    assert!(err.message().starts_with("0/50 nodes are available: "));
                    refused += 1;
                }
            }
        }
        assert!(
            placed > 100 && refused > 100,
            "placed {placed}, refused {refused}"
        );
        for n in &nodes {
            let (alloc, used) = (n.allocatable(), n.requested());
            assert!(
                used.milli_cpu <= alloc.milli_cpu,
                "{} cpu {used:?} > {alloc:?}",
                n.name()
            );
            assert!(
                used.memory <= alloc.memory,
                "{} memory {used:?} > {alloc:?}",
                n.name()
            );
            assert!(
                used.pods <= alloc.pods,
                "{} pods {used:?} > {alloc:?}",
                n.name()
            );
            let on_node = placed_on
                .get(n.name())
                .map(Vec::as_slice)
                .unwrap_or_default();
            assert_eq!(n.pod_count(), on_node.len(), "{} pod count", n.name());
            let summed = on_node
                .iter()
                .map(pod_requests)
                .fold((0, 0), |(c, m), r| (c + r.milli_cpu, m + r.memory));
            assert_eq!(
                (used.milli_cpu, used.memory),
                summed,
                "{} cached sums",
                n.name()
            );
            let cordoned = n
                .node
                .spec
                .as_ref()
                .and_then(|s| s.unschedulable)
                .unwrap_or(false);
            assert!(!cordoned || on_node.is_empty(), "{} is cordoned", n.name());
        }
    }
}
