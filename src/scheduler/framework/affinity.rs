//! Node affinity (component-helpers `nodeaffinity`): `nodeSelector`, required and preferred
//! node selector terms, and NodeAffinity's PreFilter.

use super::*;

/// A `matchExpressions` entry as a label requirement (upstream
/// `nodeSelectorRequirementsAsSelector`), or None when upstream would refuse it (unknown
/// operator, wrong value count, invalid key or value); the whole term then never matches.
fn label_requirement(r: &NodeSelectorRequirement) -> Option<LabelRequirement> {
    let operator = match r.operator.as_str() {
        "In" => LabelOperator::In,
        "NotIn" => LabelOperator::NotIn,
        "Exists" => LabelOperator::Exists,
        "DoesNotExist" => LabelOperator::DoesNotExist,
        "Gt" => LabelOperator::GreaterThan,
        "Lt" => LabelOperator::LessThan,
        _ => return None,
    };
    LabelRequirement::new(&r.key, operator, r.values.as_deref().unwrap_or_default()).ok()
}

/// A parsed `matchFields` entry: `In`/`NotIn` with exactly one value. The only field a node
/// has is `metadata.name`; any other key reads as empty, as upstream's field set does.
struct FieldRequirement<'a> {
    key: &'a str,
    value: &'a str,
    equal: bool,
}

impl<'a> FieldRequirement<'a> {
    fn parse(r: &'a NodeSelectorRequirement) -> Option<Self> {
        let [value] = r.values.as_deref().unwrap_or_default() else {
            return None;
        };
        let equal = match r.operator.as_str() {
            "In" => true,
            "NotIn" => false,
            _ => return None,
        };
        Some(FieldRequirement {
            key: &r.key,
            value,
            equal,
        })
    }

    fn matches(&self, node_name: &str) -> bool {
        let field = if self.key == OBJECT_NAME_FIELD {
            node_name
        } else {
            ""
        };
        (field == self.value) == self.equal
    }
}

fn is_empty_term(term: &NodeSelectorTerm) -> bool {
    term.match_expressions.as_ref().is_none_or(Vec::is_empty)
        && term.match_fields.as_ref().is_none_or(Vec::is_empty)
}

/// One node selector term: expressions and fields all ANDed. None when the term does not
/// parse (upstream skips such a term when ORing and never lets it match).
fn term_matches(term: &NodeSelectorTerm, node: &Node) -> Option<bool> {
    let expressions: Vec<LabelRequirement> = term
        .match_expressions
        .iter()
        .flatten()
        .map(label_requirement)
        .collect::<Option<_>>()?;
    let fields: Vec<FieldRequirement> = term
        .match_fields
        .iter()
        .flatten()
        .map(FieldRequirement::parse)
        .collect::<Option<_>>()?;
    let labels = node.metadata.labels.as_ref().unwrap_or(&NO_LABELS);
    if !expressions.iter().all(|r| r.matches(labels)) {
        return Some(false);
    }
    let name = node.metadata.name.as_deref().unwrap_or("");
    // Upstream only applies field requirements when the node has a name to match against.
    if !name.is_empty() && !fields.iter().all(|r| r.matches(name)) {
        return Some(false);
    }
    Some(true)
}

/// Upstream `RequiredNodeAffinity.Match`: every nodeSelector label equal, and (when required
/// node affinity is set) at least one non-empty, valid term matching. Required affinity with
/// no usable terms matches no node.
pub(super) fn required_node_affinity_matches(pod: &Pod, node: &Node) -> bool {
    let Some(spec) = spec(pod) else {
        return true;
    };
    let labels = node.metadata.labels.as_ref().unwrap_or(&NO_LABELS);
    let selector_ok = spec
        .node_selector
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    if !selector_ok {
        return false;
    }
    match required_terms(spec) {
        Some(terms) => terms
            .iter()
            .filter(|t| !is_empty_term(t))
            .any(|t| term_matches(t, node) == Some(true)),
        None => true,
    }
}

fn required_terms(spec: &PodSpec) -> Option<&[NodeSelectorTerm]> {
    spec.affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()
        .map(|s| s.node_selector_terms.as_slice())
}

/// NodeAffinity's PreFilter: when every required term pins `metadata.name` with `In`, only the
/// union of those names is filtered at all. `Ok(None)`: every node. `Err`: the terms leave no
/// name (unresolvable for every node).
pub(super) fn node_affinity_pre_filter(
    pod: &Pod,
) -> Result<Option<BTreeSet<String>>, &'static str> {
    let Some(terms) = spec(pod).and_then(required_terms) else {
        return Ok(None);
    };
    if terms.is_empty() {
        return Ok(None);
    }
    let mut names = BTreeSet::new();
    for term in terms {
        let mut term_names: Option<BTreeSet<String>> = None;
        for r in term.match_fields.iter().flatten() {
            if r.key == OBJECT_NAME_FIELD && r.operator == "In" {
                let set: BTreeSet<String> = r.values.iter().flatten().cloned().collect();
                term_names = Some(match term_names {
                    None => set,
                    Some(before) => before.intersection(&set).cloned().collect(),
                });
            }
        }
        match term_names {
            // A term that does not pin the name lets every node through (terms are ORed).
            None => return Ok(None),
            Some(set) => names.extend(set),
        }
    }
    if names.is_empty() {
        Err(REASON_AFFINITY_TERMS_CONFLICT)
    } else {
        Ok(Some(names))
    }
}

/// Sum of the weights of the preferred terms the node matches (upstream
/// `PreferredSchedulingTerms.Score`). Terms with weight 0 or no requirements are ignored.
/// Upstream fails the whole scheduling attempt when a preferred term does not parse; here the
/// bad term just scores nothing, so one malformed preference cannot wedge the Pod.
pub(super) fn preferred_affinity_score(pod: &Pod, node: &Node) -> i64 {
    spec(pod)
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|n| {
            n.preferred_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .into_iter()
        .flatten()
        .filter(|t| t.weight != 0 && !is_empty_term(&t.preference))
        .filter(|t| term_matches(&t.preference, node) == Some(true))
        .fold(0i64, |sum, t| sum.saturating_add(i64::from(t.weight)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::framework::scores::plugin_scores;
    use crate::scheduler::framework::test_support::*;

    /// The requirement constructor node affinity now shares with label selectors refuses what
    /// upstream `labels.NewRequirement` refuses, with its messages.
    #[test]
    fn label_requirements_are_checked_like_upstream_new_requirement() {
        use crate::meta::selector::LabelOperator as Op;
        let v = |values: &[&str]| values.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let err = |key: &str, op: Op, values: &[&str]| {
            LabelRequirement::new(key, op, &v(values))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default()
        };
        assert_eq!(
            err("zone", Op::In, &[]),
            "unable to parse requirement: values: Invalid value: []string{}: \
             for 'in', 'notin' operators, values set can't be empty"
        );
        assert_eq!(
            err("disk", Op::Exists, &["ssd"]),
            "unable to parse requirement: values: Invalid value: []string{\"ssd\"}: \
             values set must be empty for exists and does not exist"
        );
        assert!(
            err("cores", Op::GreaterThan, &["1", "2"]).contains("exactly one value is required")
        );
        assert!(err("cores", Op::LessThan, &["x"]).contains("the value must be an integer"));
        assert!(err("-zone", Op::Exists, &[])
            .starts_with("unable to parse requirement: key: Invalid value: \"-zone\""));
        assert!(err("zone", Op::NotIn, &["b c"]).contains("Invalid value: \"b c\""));
        let ok = LabelRequirement::new("example.com/zone", Op::NotIn, &v(&["b", "a", "b"]))
            .expect("a valid requirement");
        assert_eq!(ok.values(), ["a", "b"]);
        assert_eq!(ok.to_string(), "example.com/zone notin (a,b)");
    }

    #[test]
    fn filter_applies_node_selector_and_required_node_affinity() {
        let labelled = node(
            "node-1",
            "4",
            "8Gi",
            "110",
            json!({"metadata": {"labels": {
                "zone": "a", "disk": "ssd", "cores": "16"
            }}}),
        );
        let e = |key: &str, op: &str, values: &[&str]| json!({"key": key, "operator": op, "values": values});
        let exprs = |list: Vec<Value>| json!({"matchExpressions": list});
        let fields = |list: Vec<Value>| json!({"matchFields": list});
        let required = |terms: Vec<Value>| {
            json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                {"nodeSelectorTerms": terms}}}})
        };
        let mut both = required(vec![exprs(vec![e("zone", "In", &["a"])])]);
        merge(&mut both, json!({"nodeSelector": {"disk": "hdd"}}));
        #[rustfmt::skip]
        let cases = [
            ("nodeSelector matches", json!({"nodeSelector": {"zone": "a"}}), true),
            ("nodeSelector value differs", json!({"nodeSelector": {"zone": "b"}}), false),
            ("nodeSelector label missing", json!({"nodeSelector": {"gpu": "yes"}}), false),
            ("In", required(vec![exprs(vec![e("zone", "In", &["a", "b"])])]), true),
            ("In misses", required(vec![exprs(vec![e("zone", "In", &["b"])])]), false),
            ("NotIn", required(vec![exprs(vec![e("zone", "NotIn", &["b"])])]), true),
            ("NotIn on a missing label", required(vec![exprs(vec![e("gpu", "NotIn", &["x"])])]), true),
            ("Exists", required(vec![exprs(vec![e("disk", "Exists", &[])])]), true),
            ("DoesNotExist", required(vec![exprs(vec![e("disk", "DoesNotExist", &[])])]), false),
            ("Gt", required(vec![exprs(vec![e("cores", "Gt", &["8"])])]), true),
            ("Lt", required(vec![exprs(vec![e("cores", "Lt", &["8"])])]), false),
            ("Gt on a missing label", required(vec![exprs(vec![e("ram", "Gt", &["1"])])]), false),
            ("Gt needs an integer", required(vec![exprs(vec![e("cores", "Gt", &["many"])])]), false),
            ("expressions are ANDed", required(vec![exprs(vec![e("zone", "In", &["a"]), e("disk", "In", &["hdd"])])]), false),
            ("terms are ORed", required(vec![exprs(vec![e("zone", "In", &["b"])]), exprs(vec![e("disk", "In", &["ssd"])])]), true),
            ("matchFields on the name", required(vec![fields(vec![e("metadata.name", "In", &["node-1"])])]), true),
            ("matchFields NotIn the name", required(vec![fields(vec![e("metadata.name", "NotIn", &["node-1"])])]), false),
            ("no terms match nothing", required(vec![]), false),
            ("an empty term matches nothing", required(vec![json!({})]), false),
            ("an invalid term never matches, a later one still can",
                required(vec![exprs(vec![e("zone", "In", &[])]), exprs(vec![e("zone", "In", &["a"])])]), true),
            ("nodeSelector and affinity both apply", both, false),
            ("Exists with values is refused", required(vec![exprs(vec![e("disk", "Exists", &["ssd"])])]), false),
            ("Gt with two values is refused", required(vec![exprs(vec![e("cores", "Gt", &["1", "2"])])]), false),
            ("an unknown operator is refused", required(vec![exprs(vec![e("zone", "Equals", &["a"])])]), false),
            ("an invalid key is refused", required(vec![exprs(vec![e("-zone", "DoesNotExist", &[])])]), false),
            ("an invalid value is refused", required(vec![exprs(vec![e("zone", "NotIn", &["b c"])])]), false),
            ("a prefixed key matches", required(vec![exprs(vec![e("example.com/gpu", "DoesNotExist", &[])])]), true),
        ];
        for (what, extra, fits) in cases {
            let p = pod_req("p", None, None, extra);
            let want = match fits {
                true => Ok(()),
                false => Err(Rejection::unresolvable(
                    PLUGIN_NODE_AFFINITY,
                    REASON_NODE_AFFINITY,
                )),
            };
            assert_eq!(filter(&p, &labelled), want, "{what}");
        }
    }

    #[test]
    fn node_affinity_score_prefers_nodes_matching_heavier_preferred_terms() {
        let labelled = |name: &str, labels: Value| {
            node(
                name,
                "4",
                "8Gi",
                "110",
                json!({"metadata": {"labels": labels}}),
            )
        };
        let nodes = [
            labelled("a", json!({"zone": "a"})),
            labelled("b", json!({"disk": "ssd"})),
            labelled("c", json!({"zone": "a", "disk": "ssd"})),
            labelled("d", json!({})),
        ];
        let term = |weight: i32, key: &str, value: &str| {
            json!({"weight": weight, "preference": {"matchExpressions":
                [{"key": key, "operator": "In", "values": [value]}]}})
        };
        let p = pod_req(
            "p",
            None,
            None,
            json!({"affinity": {"nodeAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution":
                    [term(10, "zone", "a"), term(30, "disk", "ssd"), term(0, "zone", "a")]
            }}}),
        );
        let refs: Vec<&NodeInfo> = nodes.iter().collect();
        let got: Vec<i64> = plugin_scores(&p, &refs)
            .iter()
            .map(|s| s.node_affinity)
            .collect();
        assert_eq!(got, [25, 75, 100, 0]);
    }

    #[test]
    fn schedule_filters_only_the_nodes_named_by_match_fields() {
        let mut small = node("a", "1", "8Gi", "110", json!({}));
        small.add_pod(&requesting("old", "500m", "1Gi"));
        let nodes = vec![small, plain_node("b"), plain_node("c")];
        let pinned = |cpu: &str| {
            let name_in_a = json!({"key": "metadata.name", "operator": "In", "values": ["a"]});
            pod_req(
                "p",
                Some(cpu),
                None,
                json!({"affinity": {"nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution":
                        {"nodeSelectorTerms": [{"matchFields": [name_in_a]}]}
                }}}),
            )
        };
        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(
            schedule(&pinned("100m"), &nodes, &mut 0, &mut rng),
            Ok("a".to_string())
        );
        let err = schedule(&pinned("1"), &nodes, &mut 0, &mut rng).expect_err("a is too small");
        assert_eq!(
            err.message(),
            "0/3 nodes are available: 1 Insufficient cpu. preemption: 0/3 nodes are available: \
             1 No preemption victims found for incoming pod, 2 Preemption is not helpful for \
             scheduling."
        );
    }

    #[test]
    fn schedule_rejects_every_node_when_name_terms_conflict() {
        let nodes = vec![plain_node("a"), plain_node("b")];
        let name_in = |n: &str| json!({"key": "metadata.name", "operator": "In", "values": [n]});
        let p = pod_req(
            "p",
            None,
            None,
            json!({"affinity": {"nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution":
                    {"nodeSelectorTerms": [{"matchFields": [name_in("a"), name_in("b")]}]}
            }}}),
        );
        let mut rng = StdRng::seed_from_u64(1);
        let err = schedule(&p, &nodes, &mut 0, &mut rng).expect_err("conflict");
        assert_eq!(
            err.message(),
            "0/2 nodes are available: pod affinity terms conflict. preemption: 0/2 nodes are \
             available: 2 Preemption is not helpful for scheduling."
        );
    }
}
