//! The default Filter plugins: NodeUnschedulable, NodeName, TaintToleration, NodeAffinity,
//! NodePorts and NodeResourcesFit, run in upstream order.

use super::*;

/// Runs the default Filter plugins in upstream order and returns the first rejection.
pub fn filter(pod: &Pod, node: &NodeInfo) -> Result<(), Rejection> {
    filter_wanting(&Wants::of(pod), node)
}

/// What a Pod asks of every node, worked out once per attempt rather than once per node
/// (upstream keeps it in the cycle state its PreFilter plugins write).
pub(super) struct Wants<'a> {
    pod: &'a Pod,
    requests: Resources,
    extra: BTreeMap<String, i64>,
    host_ports: Vec<HostPort>,
}

impl<'a> Wants<'a> {
    pub(super) fn of(pod: &'a Pod) -> Self {
        let list = pod_request_list(pod, false);
        Wants {
            pod,
            requests: resources_of(&list),
            extra: pod_extra_requests(&list),
            host_ports: wanted_host_ports(pod),
        }
    }
}

/// [`filter`] with the Pod's wants already worked out.
pub(super) fn filter_wanting(wants: &Wants, node: &NodeInfo) -> Result<(), Rejection> {
    let pod = wants.pod;
    node_unschedulable(pod, node)?;
    node_name(pod, node)?;
    taint_toleration(pod, node)?;
    node_affinity(pod, node)?;
    node_ports(wants, node)?;
    node_resources_fit(wants, node)
}

pub(super) fn tolerations(pod: &Pod) -> &[Toleration] {
    spec(pod)
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or_default()
}

pub(super) fn taints(node: &NodeInfo) -> &[Taint] {
    node.node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_deref())
        .unwrap_or_default()
}

/// Upstream `Toleration.ToleratesTaint`: an empty effect matches every effect, an empty key
/// every key; operator `Exists` matches any value, `Equal` (or none) the exact value.
pub fn tolerates_taint(toleration: &Toleration, taint: &Taint) -> bool {
    let effect = toleration.effect.as_deref().unwrap_or("");
    if !effect.is_empty() && effect != taint.effect {
        return false;
    }
    let key = toleration.key.as_deref().unwrap_or("");
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match toleration.operator.as_deref().unwrap_or("") {
        "" | "Equal" => {
            toleration.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
        }
        "Exists" => true,
        _ => false,
    }
}

pub(super) fn tolerated(tolerations: &[Toleration], taint: &Taint) -> bool {
    tolerations.iter().any(|t| tolerates_taint(t, taint))
}

/// NodeUnschedulable: a cordoned node takes only Pods tolerating
/// `node.kubernetes.io/unschedulable:NoSchedule`. Unresolvable.
fn node_unschedulable(pod: &Pod, node: &NodeInfo) -> Result<(), Rejection> {
    let cordoned = node
        .node
        .spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false);
    if !cordoned {
        return Ok(());
    }
    let cordon = Taint {
        key: TAINT_NODE_UNSCHEDULABLE.to_string(),
        effect: EFFECT_NO_SCHEDULE.to_string(),
        ..Taint::default()
    };
    if !tolerated(tolerations(pod), &cordon) {
        return Err(Rejection::unresolvable(
            PLUGIN_NODE_UNSCHEDULABLE,
            REASON_NODE_UNSCHEDULABLE,
        ));
    }
    Ok(())
}

/// NodeName: a Pod naming a node fits only there. Unresolvable.
pub(super) fn node_name(pod: &Pod, node: &NodeInfo) -> Result<(), Rejection> {
    let wanted = spec(pod).and_then(|s| s.node_name.as_deref()).unwrap_or("");
    if !wanted.is_empty() && wanted != node.name() {
        return Err(Rejection::unresolvable(PLUGIN_NODE_NAME, REASON_NODE_NAME));
    }
    Ok(())
}

/// TaintToleration: the first NoSchedule/NoExecute taint, in the node's order, that no
/// toleration covers. Unresolvable.
pub(super) fn taint_toleration(pod: &Pod, node: &NodeInfo) -> Result<(), Rejection> {
    let tolerations = tolerations(pod);
    let untolerated = taints(node).iter().find(|t| {
        (t.effect == EFFECT_NO_SCHEDULE || t.effect == EFFECT_NO_EXECUTE)
            && !tolerated(tolerations, t)
    });
    match untolerated {
        Some(t) => Err(Rejection::unresolvable(
            PLUGIN_TAINT_TOLERATION,
            untolerated_taint_reason(&t.key, t.value.as_deref().unwrap_or("")),
        )),
        None => Ok(()),
    }
}

/// NodeAffinity: `spec.nodeSelector` and required node affinity. Unresolvable.
pub(super) fn node_affinity(pod: &Pod, node: &NodeInfo) -> Result<(), Rejection> {
    if required_node_affinity_matches(pod, &node.node) {
        Ok(())
    } else {
        Err(Rejection::unresolvable(
            PLUGIN_NODE_AFFINITY,
            REASON_NODE_AFFINITY,
        ))
    }
}

/// NodePorts: every wanted host port must be free on the node. Unschedulable (preemption
/// could free a port).
fn node_ports(wants: &Wants, node: &NodeInfo) -> Result<(), Rejection> {
    if wants.host_ports.iter().any(|p| node.host_port_taken(p)) {
        return Err(Rejection::unschedulable(
            PLUGIN_NODE_PORTS,
            vec![REASON_NODE_PORTS.to_string()],
        ));
    }
    Ok(())
}

/// NodeResourcesFit (upstream `fitsRequest`): one more Pod must stay within `pods`, and each
/// requested resource within allocatable minus what placed Pods request. Every shortfall is a
/// reason. Unschedulable (preemption could free room).
fn node_resources_fit(wants: &Wants, node: &NodeInfo) -> Result<(), Rejection> {
    let want = wants.requests;
    let want_extra = &wants.extra;
    let allocatable_list = node.allocatable_list();
    let allocatable = node.allocatable();
    let mut reasons = Vec::new();
    if node.pod_count() as i128 + 1 > i128::from(allocatable.pods) {
        reasons.push(REASON_TOO_MANY_PODS.to_string());
    }
    let free = |alloc: i64, used: i128| i128::from(alloc) - used;
    if want.milli_cpu > 0
        && i128::from(want.milli_cpu) > free(allocatable.milli_cpu, node.requested_cpu)
    {
        reasons.push(insufficient_reason(CPU));
    }
    if want.memory > 0 && i128::from(want.memory) > free(allocatable.memory, node.requested_memory)
    {
        reasons.push(insufficient_reason(MEMORY));
    }
    // Ephemeral storage first, then scalar resources (upstream walks a map; the order of
    // reasons within one node does not show in the message, which counts and sorts them).
    let extra_order = want_extra
        .iter()
        .filter(|(name, _)| name.as_str() == EPHEMERAL_STORAGE)
        .chain(
            want_extra
                .iter()
                .filter(|(name, _)| name.as_str() != EPHEMERAL_STORAGE),
        );
    for (name, amount) in extra_order {
        let is_storage = name == EPHEMERAL_STORAGE;
        if (is_storage && *amount <= 0) || (!is_storage && *amount == 0) {
            continue;
        }
        let alloc = clamp_i64(milli_to_units(
            allocatable_list.get(name).copied().unwrap_or(0),
        ));
        let used = node.requested_extra.get(name).copied().unwrap_or(0);
        if i128::from(*amount) > free(alloc, used) {
            reasons.push(insufficient_reason(name));
        }
    }
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(Rejection::unschedulable(PLUGIN_NODE_RESOURCES_FIT, reasons))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::framework::test_support::*;

    #[test]
    fn filter_rejects_cordoned_node_unless_pod_tolerates_the_unschedulable_taint() {
        let cordoned = node(
            "n",
            "4",
            "8Gi",
            "110",
            json!({"spec": {"unschedulable": true}}),
        );
        let plain = requesting("p", "1", "1Gi");
        let want = Rejection::unresolvable(PLUGIN_NODE_UNSCHEDULABLE, REASON_NODE_UNSCHEDULABLE);
        assert_eq!(filter(&plain, &cordoned), Err(want));
        for toleration in [
            json!({"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}),
            json!({"operator": "Exists"}),
        ] {
            let tolerant = pod_req("p", Some("1"), None, json!({"tolerations": [toleration]}));
            assert_eq!(filter(&tolerant, &cordoned), Ok(()));
        }
    }

    #[test]
    fn filter_rejects_nodes_other_than_spec_node_name() {
        let p = pod_req("p", None, None, json!({"nodeName": "b"}));
        let want = Rejection::unresolvable(PLUGIN_NODE_NAME, REASON_NODE_NAME);
        assert_eq!(filter(&p, &plain_node("a")), Err(want));
        assert_eq!(filter(&p, &plain_node("b")), Ok(()));
    }

    #[test]
    fn filter_rejects_the_first_untolerated_no_schedule_or_no_execute_taint() {
        let tainted = node(
            "n",
            "4",
            "8Gi",
            "110",
            json!({"spec": {"taints": [
                {"key": "soft", "value": "x", "effect": "PreferNoSchedule"},
                {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"},
                {"key": "dedicated", "value": "gpu", "effect": "NoExecute"}
            ]}}),
        );
        let cp = "node-role.kubernetes.io/control-plane";
        let cp_reason = "node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }";
        let gpu_reason = "node(s) had untolerated taint {dedicated: gpu}";
        #[rustfmt::skip]
        let cases = [
            (json!([]), Some(cp_reason)),
            (json!([{"key": cp, "operator": "Exists", "effect": "NoSchedule"}]), Some(gpu_reason)),
            (json!([{"key": cp, "operator": "Exists"}, {"key": "dedicated", "operator": "Equal", "value": "gpu"}]), None),
            (json!([{"key": cp, "operator": "Exists"}, {"key": "dedicated", "value": "cpu"}]), Some(gpu_reason)),
            (json!([{"operator": "Exists"}]), None),
        ];
        for (tolerations, want) in cases {
            let p = pod_req("p", None, None, json!({"tolerations": tolerations.clone()}));
            let want = match want {
                None => Ok(()),
                Some(reason) => Err(Rejection::unresolvable(PLUGIN_TAINT_TOLERATION, reason)),
            };
            assert_eq!(filter(&p, &tainted), want, "{tolerations}");
        }
    }

    #[test]
    fn tolerates_taint_follows_upstream_rules() {
        let taint = Taint {
            key: "k".into(),
            value: Some("v".into()),
            effect: "NoSchedule".into(),
            ..Taint::default()
        };
        // key, operator, value, effect; "" leaves the field out.
        let t = |key: &str, operator: &str, value: &str, effect: &str| {
            let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
            Toleration {
                key: some(key),
                operator: some(operator),
                value: some(value),
                effect: some(effect),
                ..Toleration::default()
            }
        };
        #[rustfmt::skip]
        let cases = [
            ("equal key and value", t("k", "Equal", "v", ""), true),
            ("operator defaults to Equal", t("k", "", "v", "NoSchedule"), true),
            ("value differs", t("k", "", "w", ""), false),
            ("Exists ignores the value", t("k", "Exists", "", ""), true),
            ("empty key with Exists tolerates every taint", t("", "Exists", "", ""), true),
            ("effect must match when set", t("k", "Exists", "", "NoExecute"), false),
            ("key differs", t("other", "Exists", "", ""), false),
            ("unknown operator", t("k", "Like", "v", ""), false),
        ];
        for (what, toleration, want) in cases {
            assert_eq!(tolerates_taint(&toleration, &taint), want, "{what}");
        }
    }

    #[test]
    fn filter_rejects_host_ports_already_taken_on_the_node() {
        let port = |ip: &str, protocol: &str, n: i32| json!({"containerPort": 80, "hostPort": n, "hostIP": ip, "protocol": protocol});
        let with_ports = |uid: &str, ports: Value| {
            pod(json!({"metadata": {"uid": uid},
                       "spec": {"containers": [{"name": "c", "image": "i", "ports": ports}]}}))
        };
        let mut n = plain_node("n");
        let old = with_ports(
            "old",
            json!([port("10.0.0.1", "TCP", 8080), port("", "", 9090)]),
        );
        n.add_pod(&old);
        let mut used: Vec<_> = n.used_host_ports().collect();
        used.sort();
        assert_eq!(used, [("0.0.0.0", "TCP", 9090), ("10.0.0.1", "TCP", 8080)]);
        #[rustfmt::skip]
        let cases = [
            ("same ip, protocol and port", port("10.0.0.1", "TCP", 8080), false),
            ("a wildcard wanted collides with any ip", port("0.0.0.0", "TCP", 8080), false),
            ("an empty ip means the wildcard", port("", "TCP", 8080), false),
            ("another ip is free", port("10.0.0.2", "TCP", 8080), true),
            ("another protocol is free", port("10.0.0.1", "UDP", 8080), true),
            ("any ip collides with a wildcard in use", port("10.0.0.7", "TCP", 9090), false),
            ("an empty protocol means TCP", port("10.0.0.1", "", 8080), false),
            ("another port is free", port("10.0.0.1", "TCP", 8081), true),
        ];
        for (what, wanted, fits) in cases {
            let p = with_ports("new", json!([wanted]));
            let want = match fits {
                true => Ok(()),
                false => Err(Rejection::unschedulable(
                    PLUGIN_NODE_PORTS,
                    vec![REASON_NODE_PORTS.to_string()],
                )),
            };
            assert_eq!(filter(&p, &n), want, "{what}");
        }
        assert!(n.remove_pod("old"));
        assert_eq!(
            filter(&with_ports("new", json!([port("", "", 9090)])), &n),
            Ok(())
        );
    }

    #[test]
    fn filter_rejects_node_without_room_for_memory_request() {
        let mut n = node("n", "4", "4Gi", "110", json!({}));
        n.add_pod(&requesting("old", "1", "3Gi"));
        let want = Rejection::unschedulable(
            PLUGIN_NODE_RESOURCES_FIT,
            vec!["Insufficient memory".to_string()],
        );
        assert_eq!(filter(&requesting("p", "1", "2Gi"), &n), Err(want));
        assert_eq!(
            filter(&requesting("p", "1", "1Gi"), &n),
            Ok(()),
            "exactly full fits"
        );
    }

    #[test]
    fn filter_reports_every_resource_a_node_lacks() {
        let gpu_and_disk = pod(json!({"metadata": {"uid": "p"}, "spec": {"containers": [
            {"name": "c", "image": "i",
             "resources": {"requests": {"example.com/gpu": "1", "ephemeral-storage": "2Gi"}}}
        ]}}));
        let small_disk = json!({"status": {"allocatable": {"ephemeral-storage": "1Gi"}}});
        #[rustfmt::skip]
        let cases = [
            ("cpu", requesting("p", "5", "1Gi"), node("n", "4", "8Gi", "110", json!({})),
                vec!["Insufficient cpu"]),
            ("all three", requesting("p", "5", "9Gi"), node("n", "4", "8Gi", "0", json!({})),
                vec!["Too many pods", "Insufficient cpu", "Insufficient memory"]),
            ("a request-less pod only needs a pod slot", pod_req("p", None, None, json!({})),
                node("n", "0", "0", "1", json!({})), vec![]),
            ("extended resources and storage the node lacks", gpu_and_disk,
                node("n", "4", "8Gi", "110", small_disk),
                vec!["Insufficient ephemeral-storage", "Insufficient example.com/gpu"]),
            ("overhead counts", pod_req("p", Some("3900m"), None, json!({"overhead": {"cpu": "200m"}})),
                node("n", "4", "8Gi", "110", json!({})), vec!["Insufficient cpu"]),
        ];
        for (what, p, n, want) in cases {
            assert_eq!(reasons(filter(&p, &n)), want, "{what}");
        }
    }

    #[test]
    fn filter_counts_pods_already_on_the_node_against_the_pod_limit() {
        let mut n = node("n", "4", "8Gi", "2", json!({}));
        n.add_pod(&requesting("a", "1", "1Gi"));
        assert_eq!(filter(&requesting("p", "1", "1Gi"), &n), Ok(()));
        n.add_pod(&requesting("b", "1", "1Gi"));
        assert_eq!(
            reasons(filter(&requesting("p", "1", "1Gi"), &n)),
            ["Too many pods"]
        );
    }

    #[test]
    fn filter_returns_the_first_rejection_in_upstream_plugin_order() {
        let n = node(
            "n",
            "1",
            "1Gi",
            "110",
            json!({
                "metadata": {"labels": {"zone": "a"}},
                "spec": {"unschedulable": true, "taints": [{"key": "t", "effect": "NoSchedule"}]}
            }),
        );
        let cordon = json!({"key": "node.kubernetes.io/unschedulable", "operator": "Exists"});
        let everything = json!({"operator": "Exists"});
        #[rustfmt::skip]
        let cases = [
            (json!({"nodeSelector": {"zone": "b"}, "nodeName": "other"}), PLUGIN_NODE_UNSCHEDULABLE),
            (json!({"nodeSelector": {"zone": "b"}, "nodeName": "other", "tolerations": [cordon]}), PLUGIN_NODE_NAME),
            (json!({"nodeSelector": {"zone": "b"}, "tolerations": [cordon]}), PLUGIN_TAINT_TOLERATION),
            (json!({"nodeSelector": {"zone": "b"}, "tolerations": [everything]}), PLUGIN_NODE_AFFINITY),
            (json!({"tolerations": [everything]}), PLUGIN_NODE_RESOURCES_FIT),
        ];
        for (extra, plugin) in cases {
            let p = pod_req("p", Some("2"), Some("2Gi"), extra.clone());
            assert_eq!(filter(&p, &n).map_err(|r| r.plugin), Err(plugin), "{extra}");
        }
    }

    #[test]
    fn only_node_ports_and_resource_fit_rejections_are_resolvable_by_preemption() {
        let mut n = node("n", "1", "1Gi", "110", json!({}));
        let port = json!([{"containerPort": 80, "hostPort": 80}]);
        let with_port = |uid: &str| {
            pod(json!({"metadata": {"uid": uid},
                       "spec": {"containers": [{"name": "c", "image": "i", "ports": port}]}}))
        };
        n.add_pod(&with_port("old"));
        let ports = filter(&with_port("new"), &n).expect_err("port taken");
        let fit = filter(&requesting("p", "2", "1Mi"), &n).expect_err("too big");
        assert!(!ports.unresolvable && !fit.unresolvable);
        let named = filter(&pod_req("p", None, None, json!({"nodeName": "x"})), &n);
        assert!(named.expect_err("other node").unresolvable);
    }
}
