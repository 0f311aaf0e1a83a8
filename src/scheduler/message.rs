//! The texts kube-scheduler v1.32 writes when a Pod cannot be placed: per-node filter reasons,
//! and the `FailedScheduling` event / `PodScheduled=False` condition message built from them.
//!
//! Upstream builds the message in two steps, both reproduced here: `FitError.Error()`
//! (`pkg/scheduler/framework/types.go`) counts every reason of every rejected node and sorts the
//! `"<count> <reason>"` strings as plain strings; then DefaultPreemption's PostFilter
//! (`pkg/scheduler/framework/preemption/preemption.go`) appends a second such summary, prefixed
//! with `preemption: `, over the statuses it assigned to each node while looking for victims.

use std::collections::BTreeMap;
use std::fmt;

/// NodeUnschedulable: `spec.unschedulable` is set and the Pod does not tolerate it.
pub const REASON_NODE_UNSCHEDULABLE: &str = "node(s) were unschedulable";
/// NodeName: `spec.nodeName` names another node.
pub const REASON_NODE_NAME: &str = "node(s) didn't match the requested node name";
/// NodeAffinity: `spec.nodeSelector` or required node affinity does not select the node.
pub const REASON_NODE_AFFINITY: &str = "node(s) didn't match Pod's node affinity/selector";
/// NodeAffinity PreFilter: every required term pins `metadata.name` to an empty set.
pub const REASON_AFFINITY_TERMS_CONFLICT: &str = "pod affinity terms conflict";
/// NodePorts: a requested host port is taken on the node.
pub const REASON_NODE_PORTS: &str = "node(s) didn't have free ports for the requested pod ports";
/// NodeResourcesFit: the node already holds `pods` allocatable Pods.
pub const REASON_TOO_MANY_PODS: &str = "Too many pods";
/// The whole message when the cluster has no nodes at all (upstream `ErrNoNodesAvailable`).
pub const NO_NODES_AVAILABLE: &str = "no nodes available to schedule pods";
/// Upstream truncates event notes to `NoteLengthLimit` bytes; the condition keeps the full text.
pub const EVENT_MESSAGE_LIMIT: usize = 1024;

/// DefaultPreemption's status for nodes that were rejected as unresolvable (or never looked at).
const PREEMPTION_NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";
/// DefaultPreemption's status for a node with no Pod of lower priority to evict.
const PREEMPTION_NO_VICTIMS: &str = "No preemption victims found for incoming pod";
/// DefaultPreemption's answer for a Pod with `preemptionPolicy: Never`.
const PREEMPTION_POLICY_NEVER: &str = "not eligible due to preemptionPolicy=Never.";

/// TaintToleration's reason, formatted as upstream's `{%s: %s}` (an empty value leaves `: }`).
pub fn untolerated_taint_reason(key: &str, value: &str) -> String {
    format!("node(s) had untolerated taint {{{key}: {value}}}")
}

/// NodeResourcesFit's reason for one resource: `Insufficient cpu`, `Insufficient nvidia.com/gpu`.
pub fn insufficient_reason(resource: &str) -> String {
    format!("Insufficient {resource}")
}

/// Why a node was filtered out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// Every reason the rejecting plugin gave (NodeResourcesFit can give several).
    pub reasons: Vec<String>,
    /// Upstream's `UnschedulableAndUnresolvable`: evicting Pods from the node cannot help.
    pub unresolvable: bool,
    /// The plugin that rejected the node, as upstream names it (used to decide which cluster
    /// events may make the Pod schedulable again).
    pub plugin: &'static str,
}

impl Rejection {
    /// A rejection that preemption could in principle resolve (upstream `Unschedulable`).
    pub fn unschedulable(plugin: &'static str, reasons: Vec<String>) -> Self {
        Rejection {
            reasons,
            unresolvable: false,
            plugin,
        }
    }

    /// A rejection preemption cannot resolve (upstream `UnschedulableAndUnresolvable`).
    pub fn unresolvable(plugin: &'static str, reason: impl Into<String>) -> Self {
        Rejection {
            reasons: vec![reason.into()],
            unresolvable: true,
            plugin,
        }
    }
}

/// A Pod fitted no node. `message()` is the text for the event and the condition.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FitError {
    /// Every node in the cluster, including any a PreFilter result excluded from filtering.
    pub num_all_nodes: usize,
    /// The nodes that were filtered and rejected, each once.
    pub rejections: Vec<(String, Rejection)>,
    /// Set when a PreFilter plugin rejected the Pod outright: upstream then prints this text
    /// once instead of the per-node counts (every node carries it for preemption's sake).
    pub pre_filter_message: Option<String>,
    /// The Pod has `preemptionPolicy: Never`, so preemption answers that it is not eligible.
    pub preemption_never: bool,
}

impl FitError {
    /// The `FailedScheduling` event and `PodScheduled` condition message, as kube-scheduler
    /// v1.32 builds it with the default PostFilter (DefaultPreemption) enabled.
    pub fn message(&self) -> String {
        if self.num_all_nodes == 0 {
            // Upstream returns ErrNoNodesAvailable before filtering and runs no PostFilter.
            return NO_NODES_AVAILABLE.to_string();
        }
        let mut message = format!("0/{} nodes are available:", self.num_all_nodes);
        match &self.pre_filter_message {
            Some(pre_filter) => {
                message.push(' ');
                message.push_str(pre_filter);
                message.push('.');
            }
            None => {
                let reasons = self
                    .rejections
                    .iter()
                    .flat_map(|(_, r)| r.reasons.iter().map(|s| (s.as_str(), 1)));
                let summary = histogram(reasons);
                if !summary.is_empty() {
                    message.push(' ');
                    message.push_str(&summary);
                    message.push('.');
                }
            }
        }
        // Upstream appends the PostFilter message with " %v": no extra full stop.
        message.push(' ');
        message.push_str(&self.preemption_message());
        message
    }

    /// `message()` cut to the event note limit the way upstream's `truncateMessage` cuts it.
    pub fn event_message(&self) -> String {
        truncate_note(self.message())
    }

    /// DefaultPreemption's PostFilter message, given that no Pod has a lower priority than the
    /// incoming one (rkube runs every Pod at priority 0), so no node yields victims.
    ///
    /// Upstream only dry-runs preemption on nodes whose filter status was `Unschedulable`;
    /// each of those ends as "No preemption victims found for incoming pod". Nodes rejected as
    /// unresolvable, and nodes absent from the status map (excluded by a PreFilter result),
    /// get "Preemption is not helpful for scheduling". The inner `0/N` counts that whole map,
    /// which covers every node.
    fn preemption_message(&self) -> String {
        if self.preemption_never {
            return format!("preemption: {PREEMPTION_POLICY_NEVER}");
        }
        let mut resolvable: Vec<&str> = self
            .rejections
            .iter()
            .filter(|(_, r)| !r.unresolvable)
            .map(|(name, _)| name.as_str())
            .collect();
        resolvable.sort_unstable();
        resolvable.dedup();
        let no_victims = resolvable.len();
        let not_helpful = self.num_all_nodes.saturating_sub(no_victims);
        let summary = histogram([
            (PREEMPTION_NOT_HELPFUL, not_helpful),
            (PREEMPTION_NO_VICTIMS, no_victims),
        ]);
        format!(
            "preemption: 0/{} nodes are available: {summary}.",
            not_helpful + no_victims
        )
    }
}

impl fmt::Display for FitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for FitError {}

/// Upstream's `sortReasonsHistogram`: `"<count> <reason>"` per distinct reason, sorted as
/// strings (so `10 x` sorts before `2 y`), joined with `, `. Zero counts are left out.
fn histogram<'a>(reasons: impl IntoIterator<Item = (&'a str, usize)>) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for (reason, n) in reasons {
        if n > 0 {
            *counts.entry(reason).or_default() += n;
        }
    }
    let mut lines: Vec<String> = counts
        .into_iter()
        .map(|(reason, n)| format!("{n} {reason}"))
        .collect();
    lines.sort();
    lines.join(", ")
}

/// Upstream's `truncateMessage`: at most `EVENT_MESSAGE_LIMIT` bytes, ending in ` ...` when cut.
/// Upstream cuts at a byte offset; here the cut moves back to a character boundary so the
/// result stays valid UTF-8.
fn truncate_note(message: String) -> String {
    if message.len() <= EVENT_MESSAGE_LIMIT {
        return message;
    }
    const SUFFIX: &str = " ...";
    let mut end = EVENT_MESSAGE_LIMIT - SUFFIX.len();
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    let mut cut = message[..end].to_string();
    cut.push_str(SUFFIX);
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected(
        node: &str,
        plugin: &'static str,
        reasons: &[&str],
        unresolvable: bool,
    ) -> (String, Rejection) {
        (
            node.to_string(),
            Rejection {
                reasons: reasons.iter().map(|r| r.to_string()).collect(),
                unresolvable,
                plugin,
            },
        )
    }

    #[test]
    fn message_counts_reasons_per_node_and_appends_preemption_summary() {
        let taint = untolerated_taint_reason("node-role.kubernetes.io/control-plane", "");
        let err = FitError {
            num_all_nodes: 3,
            rejections: vec![
                rejected("cp", "TaintToleration", &[&taint], true),
                rejected("w1", "NodeResourcesFit", &["Insufficient memory"], false),
                rejected("w2", "NodeResourcesFit", &["Insufficient memory"], false),
            ],
            ..FitError::default()
        };
        assert_eq!(
            err.message(),
            "0/3 nodes are available: 1 node(s) had untolerated taint \
             {node-role.kubernetes.io/control-plane: }, 2 Insufficient memory. \
             preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, \
             2 No preemption victims found for incoming pod."
        );
    }

    #[test]
    fn message_counts_every_reason_of_a_node_with_several() {
        let err = FitError {
            num_all_nodes: 2,
            rejections: vec![
                rejected(
                    "a",
                    "NodeResourcesFit",
                    &["Insufficient cpu", "Insufficient memory"],
                    false,
                ),
                rejected("b", "NodeResourcesFit", &["Insufficient cpu"], false),
            ],
            ..FitError::default()
        };
        assert_eq!(
            err.message(),
            "0/2 nodes are available: 1 Insufficient memory, 2 Insufficient cpu. \
             preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod."
        );
    }

    #[test]
    fn message_sorts_counts_as_strings_like_upstream() {
        let mut rejections: Vec<(String, Rejection)> = (0..10)
            .map(|i| rejected(&format!("n{i}"), "NodeName", &[REASON_NODE_NAME], true))
            .collect();
        rejections.push(rejected(
            "x",
            "NodeUnschedulable",
            &[REASON_NODE_UNSCHEDULABLE],
            true,
        ));
        rejections.push(rejected(
            "y",
            "NodeUnschedulable",
            &[REASON_NODE_UNSCHEDULABLE],
            true,
        ));
        let err = FitError {
            num_all_nodes: 12,
            rejections,
            ..FitError::default()
        };
        assert_eq!(
            err.message(),
            "0/12 nodes are available: 10 node(s) didn't match the requested node name, \
             2 node(s) were unschedulable. preemption: 0/12 nodes are available: \
             12 Preemption is not helpful for scheduling."
        );
    }

    #[test]
    fn message_for_an_empty_cluster_is_upstreams_no_nodes_error() {
        assert_eq!(
            FitError::default().message(),
            "no nodes available to schedule pods"
        );
    }

    #[test]
    fn message_uses_the_pre_filter_text_once_instead_of_counts() {
        let err = FitError {
            num_all_nodes: 2,
            rejections: vec![
                rejected("a", "NodeAffinity", &[REASON_AFFINITY_TERMS_CONFLICT], true),
                rejected("b", "NodeAffinity", &[REASON_AFFINITY_TERMS_CONFLICT], true),
            ],
            pre_filter_message: Some(REASON_AFFINITY_TERMS_CONFLICT.to_string()),
            preemption_never: false,
        };
        assert_eq!(
            err.message(),
            "0/2 nodes are available: pod affinity terms conflict. preemption: 0/2 nodes are \
             available: 2 Preemption is not helpful for scheduling."
        );
    }

    #[test]
    fn message_counts_nodes_never_filtered_as_not_helpful_for_preemption() {
        let err = FitError {
            num_all_nodes: 3,
            rejections: vec![rejected(
                "a",
                "NodeResourcesFit",
                &["Insufficient cpu"],
                false,
            )],
            ..FitError::default()
        };
        assert_eq!(
            err.message(),
            "0/3 nodes are available: 1 Insufficient cpu. preemption: 0/3 nodes are available: \
             1 No preemption victims found for incoming pod, 2 Preemption is not helpful for \
             scheduling."
        );
    }

    #[test]
    fn message_for_preemption_policy_never_says_not_eligible() {
        let err = FitError {
            num_all_nodes: 1,
            rejections: vec![rejected(
                "a",
                "NodeResourcesFit",
                &["Insufficient cpu"],
                false,
            )],
            preemption_never: true,
            ..FitError::default()
        };
        assert_eq!(
            err.message(),
            "0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to \
             preemptionPolicy=Never."
        );
    }

    #[test]
    fn event_message_is_cut_to_the_note_limit_with_an_ellipsis() {
        let long = "é".repeat(700);
        let err = FitError {
            num_all_nodes: 1,
            rejections: vec![rejected("a", "TaintToleration", &[&long], true)],
            ..FitError::default()
        };
        let event = err.event_message();
        assert!(event.len() <= EVENT_MESSAGE_LIMIT);
        assert!(event.ends_with(" ..."));
        assert!(err.message().starts_with(event.trim_end_matches(" ...")));
        let short = FitError {
            num_all_nodes: 1,
            rejections: vec![rejected("a", "NodeName", &[REASON_NODE_NAME], true)],
            ..FitError::default()
        };
        assert_eq!(short.event_message(), short.message());
    }

    #[test]
    fn display_is_the_message() {
        let err = FitError {
            num_all_nodes: 1,
            rejections: vec![rejected("a", "NodeName", &[REASON_NODE_NAME], true)],
            ..FitError::default()
        };
        assert_eq!(err.to_string(), err.message());
    }
}
