//! Pod validation on create and update (upstream `pkg/apis/core/validation`): the pod spec here,
//! metadata, containers, volumes, security contexts and affinity, and updates in the submodules.

use k8s_openapi::api::core::v1::{Pod, PodSpec, ResourceRequirements, Toleration, Volume};

mod constraints;
mod containers;
mod ephemeral;
mod metadata;
mod template;
mod update;
mod volumes;

use crate::registry::field_error::{
    go_string_slice, inclusive_range_error, is_dns1123_label, is_dns1123_subdomain,
    is_qualified_name, is_valid_label_value, name_is_dns_subdomain, validate_labels, FieldError,
    Literal,
};
use crate::registry::pod::validation::constraints::{
    validate_container_security_contexts, validate_node_affinity, validate_pod_security_context,
};
use crate::registry::pod::validation::containers::{
    validate_containers, validate_init_containers, validate_resources,
};
use crate::registry::pod::validation::volumes::validate_volumes;
use crate::registry::pod::{child, index, is_empty, s, slice, MAX_INT32};
pub use ephemeral::validate_pod_ephemeral_containers_update;
pub use metadata::validate_pod;
use std::collections::{BTreeMap, BTreeSet};
pub use template::validate_pod_template_spec;
pub use update::validate_pod_update;

/// What container validation needs to know about the rest of the pod.
pub(crate) struct PodContext<'a> {
    volumes: BTreeMap<&'a str, &'a Volume>,
    grace_period: Option<i64>,
    claim_names: BTreeSet<&'a str>,
}

pub(crate) fn empty_spec() -> &'static PodSpec {
    static EMPTY: std::sync::OnceLock<PodSpec> = std::sync::OnceLock::new();
    EMPTY.get_or_init(PodSpec::default)
}

pub(crate) fn spec_of(pod: &Pod) -> &PodSpec {
    pod.spec.as_ref().unwrap_or_else(|| empty_spec())
}

/// `ValidatePodSpec`, in upstream's order.
pub(crate) fn validate_pod_spec<'a>(spec: &'a PodSpec, pod_name: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if spec.termination_grace_period_seconds.is_none() {
        errs.push(FieldError::required(
            "spec.terminationGracePeriodSeconds",
            "",
        ));
    }
    let (volumes, vol_errs) = validate_volumes(slice(&spec.volumes), pod_name);
    errs.extend(vol_errs);
    let ctx = PodContext {
        volumes,
        grace_period: spec.termination_grace_period_seconds,
        claim_names: slice(&spec.resource_claims)
            .iter()
            .map(|c| c.name.as_str())
            .filter(|n| !n.is_empty())
            .collect::<BTreeSet<&'a str>>(),
    };
    let restart_policy = s(&spec.restart_policy);
    errs.extend(validate_containers(&spec.containers, &ctx));
    errs.extend(validate_init_containers(
        slice(&spec.init_containers),
        &spec.containers,
        &ctx,
    ));
    errs.extend(ephemeral::validate_ephemeral_containers(spec, &ctx));
    errs.extend(validate_container_security_contexts(spec));
    if spec.host_network.unwrap_or(false) {
        for (i, c) in spec.containers.iter().enumerate() {
            for (j, p) in slice(&c.ports).iter().enumerate() {
                let hp = p.host_port.unwrap_or(0);
                if hp != p.container_port {
                    errs.push(FieldError::invalid(
                        format!("spec.containers[{i}].ports[{j}].hostPort"),
                        hp,
                        "must match `containerPort` when `hostNetwork` is true",
                    ));
                }
            }
        }
    }
    match restart_policy {
        "Always" | "OnFailure" | "Never" => {}
        "" => errs.push(FieldError::required("spec.restartPolicy", "")),
        other => errs.push(FieldError::not_supported(
            "spec.restartPolicy",
            other,
            &["Always", "OnFailure", "Never"],
        )),
    }
    let dns_policy = s(&spec.dns_policy);
    match dns_policy {
        "ClusterFirstWithHostNet" | "ClusterFirst" | "Default" | "None" => {}
        "" => errs.push(FieldError::required("spec.dnsPolicy", "")),
        other => errs.push(FieldError::not_supported(
            "spec.dnsPolicy",
            other,
            &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
        )),
    }
    if let Some(sel) = &spec.node_selector {
        errs.extend(validate_labels(sel, "spec.nodeSelector"));
    }
    errs.extend(validate_pod_security_context(spec));
    errs.extend(validate_node_affinity(spec));
    errs.extend(validate_dns_config(spec, dns_policy));
    for (i, g) in slice(&spec.readiness_gates).iter().enumerate() {
        errs.extend(qualified_name_errors(
            &g.condition_type,
            &format!("spec.readinessGates[{i}].conditionType"),
        ));
    }
    let mut seen_gates = BTreeSet::new();
    for (i, g) in slice(&spec.scheduling_gates).iter().enumerate() {
        let p = index("spec.schedulingGates", i);
        errs.extend(qualified_name_errors(&g.name, &p));
        if !seen_gates.insert(g.name.as_str()) {
            errs.push(FieldError::duplicate(p, &g.name));
        }
    }
    for (field, value) in [
        ("spec.serviceAccountName", s(&spec.service_account_name)),
        ("spec.nodeName", s(&spec.node_name)),
    ] {
        if !value.is_empty() {
            for msg in name_is_dns_subdomain(value, false) {
                errs.push(FieldError::invalid(field, value, msg));
            }
        }
    }
    if let Some(v) = spec.active_deadline_seconds {
        if !(1..=MAX_INT32).contains(&v) {
            errs.push(FieldError::invalid(
                "spec.activeDeadlineSeconds",
                v,
                inclusive_range_error(1, MAX_INT32),
            ));
        }
    }
    for (field, value) in [
        ("spec.hostname", s(&spec.hostname)),
        ("spec.subdomain", s(&spec.subdomain)),
    ] {
        if !value.is_empty() {
            for msg in is_dns1123_label(value) {
                errs.push(FieldError::invalid(field, value, msg));
            }
        }
    }
    errs.extend(validate_tolerations(
        slice(&spec.tolerations),
        "spec.tolerations",
    ));
    for (i, alias) in slice(&spec.host_aliases).iter().enumerate() {
        let p = index("spec.hostAliases", i);
        errs.extend(ip_errors(&alias.ip, &child(&p, "ip")));
        for (j, h) in slice(&alias.hostnames).iter().enumerate() {
            for msg in is_dns1123_subdomain(h) {
                errs.push(FieldError::invalid(format!("{p}.hostnames[{j}]"), h, msg));
            }
        }
    }
    let priority_class = s(&spec.priority_class_name);
    if !priority_class.is_empty() {
        for msg in name_is_dns_subdomain(priority_class, false) {
            errs.push(FieldError::invalid(
                "spec.priorityClassName",
                priority_class,
                msg,
            ));
        }
    }
    // runtimeClassName is a pointer upstream: an explicit "" is checked (and rejected).
    if let Some(rc) = &spec.runtime_class_name {
        for msg in name_is_dns_subdomain(rc, false) {
            errs.push(FieldError::invalid("spec.runtimeClassName", rc, msg));
        }
    }
    if let Some(p) = &spec.preemption_policy {
        match p.as_str() {
            "PreemptLowerPriority" | "Never" => {}
            "" => errs.push(FieldError::required("spec.preemptionPolicy", "")),
            other => errs.push(FieldError::not_supported(
                "spec.preemptionPolicy",
                other,
                &["PreemptLowerPriority", "Never"],
            )),
        }
    }
    if let Some(overhead) = &spec.overhead {
        let req = ResourceRequirements {
            limits: Some(overhead.clone()),
            ..Default::default()
        };
        errs.extend(validate_resources(&req, &ctx, "spec.overhead"));
    }
    if let Some(os) = &spec.os {
        if os.name.is_empty() {
            errs.push(FieldError::required("spec.os.name", "cannot be empty"));
        } else if os.name != "linux" && os.name != "windows" {
            errs.push(FieldError::not_supported(
                "spec.os",
                &os.name,
                &["linux", "windows"],
            ));
        }
    }
    errs
}

pub(crate) fn qualified_name_errors(value: &str, path: &str) -> Vec<FieldError> {
    is_qualified_name(value)
        .into_iter()
        .map(|m| FieldError::invalid(path, value, m))
        .collect()
}

/// `IsValidIP` as of v1.32 (the apiserver's sloppy parser also accepts leading zeros in IPv4).
pub(crate) fn ip_errors(ip: &str, path: &str) -> Vec<FieldError> {
    let sloppy_v4 = || {
        let parts: Vec<&str> = ip.split('.').collect();
        parts.len() == 4
            && parts.iter().all(|p| {
                !p.is_empty()
                    && p.len() <= 3
                    && p.bytes().all(|c| c.is_ascii_digit())
                    && p.parse::<u16>().is_ok_and(|n| n <= 255)
            })
    };
    if ip.parse::<std::net::IpAddr>().is_ok() || sloppy_v4() {
        Vec::new()
    } else {
        vec![FieldError::invalid(
            path,
            ip,
            "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
        )]
    }
}

pub(crate) fn validate_dns_config(spec: &PodSpec, dns_policy: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let cfg = spec.dns_config.as_ref();
    if dns_policy == "None" {
        match cfg {
            None => {
                errs.push(FieldError::required(
                    "spec.dnsConfig",
                    "must provide `dnsConfig` when `dnsPolicy` is None",
                ));
                return errs;
            }
            Some(c) if slice(&c.nameservers).is_empty() => {
                errs.push(FieldError::required(
                    "spec.dnsConfig.nameservers",
                    "must provide at least one DNS nameserver when `dnsPolicy` is None",
                ));
                return errs;
            }
            _ => {}
        }
    }
    let Some(cfg) = cfg else {
        return errs;
    };
    let servers = slice(&cfg.nameservers);
    if servers.len() > 3 {
        errs.push(FieldError::invalid(
            "spec.dnsConfig.nameservers",
            Literal(go_string_slice(servers)),
            "must not have more than 3 nameservers",
        ));
    }
    for (i, ns) in servers.iter().enumerate() {
        errs.extend(ip_errors(ns, &index("spec.dnsConfig.nameservers", i)));
    }
    let searches = slice(&cfg.searches);
    if searches.len() > 32 {
        errs.push(FieldError::invalid(
            "spec.dnsConfig.searches",
            Literal(go_string_slice(searches)),
            "must not have more than 32 search paths",
        ));
    }
    if searches.join(" ").len() > 2048 {
        errs.push(FieldError::invalid(
            "spec.dnsConfig.searches",
            Literal(go_string_slice(searches)),
            "must not have more than 2048 characters (including spaces) in the search list",
        ));
    }
    for (i, search) in searches.iter().enumerate() {
        let trimmed = search.strip_suffix('.').unwrap_or(search);
        for msg in is_dns1123_subdomain(trimmed) {
            errs.push(FieldError::invalid(
                index("spec.dnsConfig.searches", i),
                trimmed,
                msg,
            ));
        }
    }
    for (i, o) in slice(&cfg.options).iter().enumerate() {
        if is_empty(&o.name) {
            errs.push(FieldError::required(
                index("spec.dnsConfig.options", i),
                "must not be empty",
            ));
        }
    }
    errs
}

/// `ValidateTolerations`.
pub(crate) fn validate_tolerations(tolerations: &[Toleration], path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, t) in tolerations.iter().enumerate() {
        let p = index(path, i);
        let (k, op, value, effect) = (s(&t.key), s(&t.operator), s(&t.value), s(&t.effect));
        if !k.is_empty() {
            errs.extend(qualified_name_errors(k, &child(&p, "key")));
        }
        if k.is_empty() && op != "Exists" {
            errs.push(FieldError::invalid(
                child(&p, "operator"),
                op,
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            ));
        }
        if t.toleration_seconds.is_some() && effect != "NoExecute" {
            errs.push(FieldError::invalid(
                child(&p, "effect"),
                effect,
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
        match op {
            "Equal" | "" => {
                let msgs = is_valid_label_value(value);
                if !msgs.is_empty() {
                    errs.push(FieldError::invalid(
                        child(&p, "operator"),
                        value,
                        msgs.join(";"),
                    ));
                }
            }
            "Exists" => {
                if !value.is_empty() {
                    errs.push(FieldError::invalid(
                        child(&p, "operator"),
                        value,
                        "value must be empty when `operator` is 'Exists'",
                    ));
                }
            }
            other => errs.push(FieldError::not_supported(
                child(&p, "operator"),
                other,
                &["Equal", "Exists"],
            )),
        }
        if !effect.is_empty() && !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute")
        {
            errs.push(FieldError::not_supported(
                child(&p, "effect"),
                effect,
                &["NoSchedule", "PreferNoSchedule", "NoExecute"],
            ));
        }
    }
    errs
}

// ---- volumes --------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::pod::test_support::*;
    use crate::registry::pod::{
        default_pod, pod_qos_class, pod_table_row, pod_warnings, POD_DELETION_COST_ANNOTATION,
    };
    use std::collections::BTreeMap;

    // ---- create validation ------------------------------------------------------------------

    const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

    type Mutation = fn(&mut Pod);

    fn expect_errors(cases: &[(&str, Mutation, &[&str])]) {
        for (name, mutate, want) in cases {
            let mut pod = valid_pod();
            mutate(&mut pod);
            let got = messages(&validate_pod(&pod));
            assert_eq!(
                got,
                want.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                "case {name}"
            );
        }
    }

    #[test]
    fn validation_rejects_bad_metadata() {
        expect_errors(&[
            ("bad name", |p| p.metadata.name = Some("Bad_Name".into()), &["metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"]),
            ("no name", |p| p.metadata.name = None, &["metadata.name: Required value: name or generateName is required"]),
            ("bad label value", |p| {
                p.metadata.labels.get_or_insert_with(BTreeMap::new).insert("tier".into(), "-x".into());
            }, &["metadata.labels: Invalid value: \"-x\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"]),
            ("huge annotations", |p| {
                p.metadata.annotations = Some(BTreeMap::from([("big".to_string(), "x".repeat(262_144))]));
            }, &["metadata.annotations: Too long: must have at most 262144 bytes"]),
            ("unqualified finalizer", |p| p.metadata.finalizers = Some(vec!["cleanup".into()]), &["metadata.finalizers[0]: Invalid value: \"cleanup\": name is neither a standard finalizer name nor is it fully qualified"]),
            ("deletion cost", |p| {
                p.metadata.annotations = Some(BTreeMap::from([(POD_DELETION_COST_ANNOTATION.to_string(), "+1".to_string())]));
            }, &["metadata.annotations[controller.kubernetes.io/pod-deletion-cost]: Invalid value: \"+1\": must be a 32bit integer"]),
        ]);
    }

    #[test]
    fn validation_rejects_duplicate_container_name() {
        expect_errors(&[
            (
                "regular",
                |p| {
                    let c = spec_mut(p).containers[0].clone();
                    spec_mut(p).containers.push(c);
                },
                &["spec.containers[1].name: Duplicate value: \"db\""],
            ),
            (
                "init vs regular",
                |p| {
                    let c = spec_mut(p).containers[0].clone();
                    spec_mut(p).init_containers = Some(vec![c]);
                },
                &["spec.initContainers[0].name: Duplicate value: \"db\""],
            ),
        ]);
    }

    #[test]
    fn validation_rejects_bad_containers() {
        expect_errors(&[
            ("no containers", |p| spec_mut(p).containers.clear(), &["spec.containers: Required value"]),
            ("bad name", |p| container_mut(p).name = "Db_1".into(), &[&format!("spec.containers[0].name: Invalid value: \"Db_1\": {LABEL_MSG}")]),
            ("no image", |p| container_mut(p).image = None, &["spec.containers[0].image: Required value"]),
            ("padded image", |p| container_mut(p).image = Some(" mongo".into()), &["spec.containers[0].image: Invalid value: \" mongo\": must not have leading or trailing whitespace"]),
            ("bad reference is fine", |p| container_mut(p).image = Some("UPPER::case@@".into()), &[]),
            ("pull policy", |p| container_mut(p).image_pull_policy = Some("Sometimes".into()), &["spec.containers[0].imagePullPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"IfNotPresent\", \"Never\""]),
            ("termination message policy", |p| container_mut(p).termination_message_policy = Some("Maybe".into()), &["spec.containers[0].terminationMessagePolicy: Unsupported value: \"Maybe\": supported values: \"File\", \"FallbackToLogsOnError\""]),
            ("restartPolicy on regular container", |p| container_mut(p).restart_policy = Some("Always".into()), &["spec.containers[0].restartPolicy: Forbidden: may not be set for non-init containers"]),
        ]);
    }

    #[test]
    fn validation_checks_pod_level_enums_and_numbers() {
        expect_errors(&[
            ("restart policy", |p| spec_mut(p).restart_policy = Some("Sometimes".into()), &["spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\""]),
            ("dns policy", |p| spec_mut(p).dns_policy = Some("Bogus".into()), &["spec.dnsPolicy: Unsupported value: \"Bogus\": supported values: \"ClusterFirstWithHostNet\", \"ClusterFirst\", \"Default\", \"None\""]),
            ("dns none needs config", |p| spec_mut(p).dns_policy = Some("None".into()), &["spec.dnsConfig: Required value: must provide `dnsConfig` when `dnsPolicy` is None"]),
            ("grace period missing", |p| spec_mut(p).termination_grace_period_seconds = None, &["spec.terminationGracePeriodSeconds: Required value"]),
            // Upstream accepts negative grace periods at create time (they act as 1 on delete).
            ("negative grace period allowed", |p| spec_mut(p).termination_grace_period_seconds = Some(-5), &[]),
            ("active deadline", |p| spec_mut(p).active_deadline_seconds = Some(0), &["spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, inclusive"]),
            ("hostname", |p| spec_mut(p).hostname = Some("a.b".into()), &["spec.hostname: Invalid value: \"a.b\": must not contain dots"]),
            ("preemption", |p| spec_mut(p).preemption_policy = Some("Sometimes".into()), &["spec.preemptionPolicy: Unsupported value: \"Sometimes\": supported values: \"PreemptLowerPriority\", \"Never\""]),
            ("os", |p| spec_mut(p).os = Some(k8s_openapi::api::core::v1::PodOS { name: "plan9".into() }), &["spec.os: Unsupported value: \"plan9\": supported values: \"linux\", \"windows\""]),
            ("ephemeral on create", |p| spec_mut(p).ephemeral_containers = Some(vec![serde_json::from_value(json!({"name": "e", "image": "i", "imagePullPolicy": "Always", "terminationMessagePolicy": "File"})).expect("an ephemeral container")]), &["spec.ephemeralContainers: Forbidden: cannot be set on create"]),
            ("an empty ephemeral container", |p| spec_mut(p).ephemeral_containers = Some(vec![Default::default()]), &["spec.ephemeralContainers[0].name: Required value", "spec.ephemeralContainers[0].image: Required value", "spec.ephemeralContainers[0].terminationMessagePolicy: Required value", "spec.ephemeralContainers[0].imagePullPolicy: Required value", "spec.ephemeralContainers: Forbidden: cannot be set on create"]),
            ("toleration operator", |p| {
                spec_mut(p).tolerations = Some(vec![Toleration { key: Some("k".into()), operator: Some("Maybe".into()), ..Default::default() }]);
            }, &["spec.tolerations[0].operator: Unsupported value: \"Maybe\": supported values: \"Equal\", \"Exists\""]),
            ("toleration seconds need NoExecute", |p| {
                spec_mut(p).tolerations = Some(vec![Toleration { key: Some("k".into()), operator: Some("Exists".into()), effect: Some("NoSchedule".into()), toleration_seconds: Some(5), ..Default::default() }]);
            }, &["spec.tolerations[0].effect: Invalid value: \"NoSchedule\": effect must be 'NoExecute' when `tolerationSeconds` is set"]),
        ]);
    }

    #[test]
    fn validation_checks_ports() {
        fn port(p: &mut Pod, v: serde_json::Value) {
            container_mut(p).ports = Some(serde_json::from_value(v).expect("ports"));
        }
        expect_errors(&[
            ("protocol", |p| port(p, json!([{"containerPort": 80, "protocol": "HTTP"}])), &["spec.containers[0].ports[0].protocol: Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\""]),
            ("too big", |p| port(p, json!([{"containerPort": 70000, "protocol": "TCP"}])), &["spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive"]),
            ("zero", |p| port(p, json!([{"containerPort": 0, "protocol": "TCP"}])), &["spec.containers[0].ports[0].containerPort: Required value"]),
            ("negative host port", |p| port(p, json!([{"containerPort": 80, "hostPort": -1, "protocol": "TCP"}])), &["spec.containers[0].ports[0].hostPort: Invalid value: -1: must be between 1 and 65535, inclusive"]),
            ("duplicate name", |p| port(p, json!([{"name": "web", "containerPort": 80, "protocol": "TCP"}, {"name": "web", "containerPort": 81, "protocol": "TCP"}])), &["spec.containers[0].ports[1].name: Duplicate value: \"web\""]),
            ("host port clash", |p| port(p, json!([{"containerPort": 80, "hostPort": 8080, "protocol": "TCP"}, {"containerPort": 81, "hostPort": 8080, "protocol": "TCP"}])), &["spec.containers[0].ports[1].hostPort: Duplicate value: \"TCP//8080\""]),
            // Same containerPort/protocol twice is only a warning.
            ("duplicate container port", |p| port(p, json!([{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 80, "protocol": "TCP"}])), &[]),
        ]);
    }

    #[test]
    fn validation_checks_resources() {
        fn res(p: &mut Pod, v: serde_json::Value) {
            container_mut(p).resources = Some(serde_json::from_value(v).expect("resources"));
        }
        expect_errors(&[
            ("negative", |p| res(p, json!({"requests": {"cpu": "-1"}})), &["spec.containers[0].resources.requests[cpu]: Invalid value: \"-1\": must be greater than or equal to 0"]),
            ("request above limit", |p| res(p, json!({"limits": {"cpu": "1"}, "requests": {"cpu": "2"}})), &["spec.containers[0].resources.requests: Invalid value: \"2\": must be less than or equal to cpu limit of 1"]),
            ("equal is fine", |p| res(p, json!({"limits": {"cpu": "1"}, "requests": {"cpu": "1000m"}})), &[]),
            ("unknown name", |p| res(p, json!({"limits": {"foo": "1"}})), &["spec.containers[0].resources.limits[foo]: Invalid value: foo: must be a standard resource type or fully qualified"]),
            ("quota name", |p| res(p, json!({"limits": {"pods": "1"}})), &["spec.containers[0].resources.limits[pods]: Invalid value: pods: must be a standard resource for containers"]),
            ("extended needs limit", |p| res(p, json!({"requests": {"example.com/gpu": "1"}})), &["spec.containers[0].resources.limits: Required value: Limit must be set for non overcommitable resources"]),
            ("extended must be whole", |p| res(p, json!({"limits": {"example.com/gpu": "500m"}})), &["spec.containers[0].resources.limits[example.com/gpu]: Invalid value: 500m: must be an integer"]),
            ("extended must match", |p| res(p, json!({"limits": {"example.com/gpu": "2"}, "requests": {"example.com/gpu": "1"}})), &["spec.containers[0].resources.requests: Invalid value: \"1\": must be equal to example.com/gpu limit of 2"]),
            ("bad syntax", |p| res(p, json!({"limits": {"memory": "1KB"}})), &["spec.containers[0].resources.limits[memory]: Invalid value: \"1KB\": must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"]),
            ("hugepages alone", |p| res(p, json!({"limits": {"hugepages-2Mi": "2Mi"}, "requests": {"hugepages-2Mi": "2Mi"}})), &["spec.containers[0].resources: Forbidden: HugePages require cpu or memory"]),
        ]);
    }

    #[test]
    fn validation_checks_volumes() {
        fn vols(p: &mut Pod, v: serde_json::Value) {
            spec_mut(p).volumes = Some(serde_json::from_value(v).expect("volumes"));
        }
        expect_errors(&[
            ("bad name", |p| vols(p, json!([{"name": "Data", "emptyDir": {}}])), &[&format!("spec.volumes[0].name: Invalid value: \"Data\": {LABEL_MSG}")]),
            ("duplicate", |p| vols(p, json!([{"name": "data", "emptyDir": {}}, {"name": "data", "emptyDir": {}}])), &["spec.volumes[1].name: Duplicate value: \"data\""]),
            ("two sources", |p| vols(p, json!([{"name": "data", "emptyDir": {}, "hostPath": {"path": "/x", "type": ""}}])), &["spec.volumes[0].hostPath: Forbidden: may not specify more than 1 volume type"]),
            ("no source", |p| vols(p, json!([{"name": "data"}])), &["spec.volumes[0]: Required value: must specify a volume type"]),
            ("hostPath backstep", |p| vols(p, json!([{"name": "data", "hostPath": {"path": "/var/../etc", "type": ""}}])), &["spec.volumes[0].hostPath.path: Invalid value: \"/var/../etc\": must not contain '..'"]),
            ("hostPath type", |p| vols(p, json!([{"name": "data", "hostPath": {"path": "/x", "type": "Pipe"}}])), &["spec.volumes[0].hostPath.type: Unsupported value: \"Pipe\": supported values: \"\", \"BlockDevice\", \"CharDevice\", \"Directory\", \"DirectoryOrCreate\", \"File\", \"FileOrCreate\", \"Socket\""]),
            ("secret name", |p| vols(p, json!([{"name": "data", "secret": {"defaultMode": 420}}])), &["spec.volumes[0].secret.secretName: Required value"]),
            ("secret mode", |p| vols(p, json!([{"name": "data", "secret": {"secretName": "s", "defaultMode": 4096}}])), &["spec.volumes[0].secret.defaultMode: Invalid value: 4096: must be a number between 0 and 0777 (octal), both inclusive"]),
            ("configMap item path", |p| vols(p, json!([{"name": "data", "configMap": {"name": "c", "items": [{"key": "k", "path": "..data"}]}}])), &["spec.volumes[0].configMap.items[0].path: Invalid value: \"..data\": must not start with '..'"]),
            ("pvc claim", |p| vols(p, json!([{"name": "data", "persistentVolumeClaim": {"claimName": ""}}])), &["spec.volumes[0].persistentVolumeClaim.claimName: Required value"]),
        ]);
    }

    #[test]
    fn validation_checks_volume_mounts() {
        fn mount(p: &mut Pod, v: serde_json::Value) {
            spec_mut(p).volumes = Some(
                serde_json::from_value(json!([{"name": "data", "emptyDir": {}}])).expect("volumes"),
            );
            container_mut(p).volume_mounts = Some(serde_json::from_value(v).expect("mounts"));
        }
        expect_errors(&[
            ("fine", |p| mount(p, json!([{"name": "data", "mountPath": "/data", "subPath": "a/b"}])), &[]),
            ("unknown volume", |p| mount(p, json!([{"name": "x", "mountPath": "/data"}])), &["spec.containers[0].volumeMounts[0].name: Not found: \"x\""]),
            ("no mount path", |p| mount(p, json!([{"name": "data", "mountPath": ""}])), &["spec.containers[0].volumeMounts[0].mountPath: Required value"]),
            ("duplicate path", |p| mount(p, json!([{"name": "data", "mountPath": "/d"}, {"name": "data", "mountPath": "/d"}])), &["spec.containers[0].volumeMounts[1].mountPath: Invalid value: \"/d\": must be unique"]),
            ("absolute subPath", |p| mount(p, json!([{"name": "data", "mountPath": "/d", "subPath": "/abs"}])), &["spec.containers[0].volumeMounts.subPath: Invalid value: \"/abs\": must be a relative path"]),
            ("backstep subPath", |p| mount(p, json!([{"name": "data", "mountPath": "/d", "subPath": "a/../b"}])), &["spec.containers[0].volumeMounts.subPath: Invalid value: \"a/../b\": must not contain '..'"]),
            ("bidirectional", |p| mount(p, json!([{"name": "data", "mountPath": "/d", "mountPropagation": "Bidirectional"}])), &["spec.containers[0].volumeMounts.mountPropagation: Forbidden: Bidirectional mount propagation is available only to privileged containers"]),
        ]);
    }

    #[test]
    fn validation_checks_probes_and_handlers() {
        fn probe(p: &mut Pod, which: &str, v: serde_json::Value) {
            let probe: k8s_openapi::api::core::v1::Probe =
                serde_json::from_value(v).expect("probe");
            let c = container_mut(p);
            match which {
                "liveness" => c.liveness_probe = Some(probe),
                "readiness" => c.readiness_probe = Some(probe),
                _ => c.startup_probe = Some(probe),
            }
        }
        expect_errors(&[
            ("fine", |p| probe(p, "liveness", json!({"exec": {"command": ["true"]}, "successThreshold": 1})), &[]),
            ("no handler", |p| probe(p, "liveness", json!({"successThreshold": 1})), &["spec.containers[0].livenessProbe: Required value: must specify a handler type"]),
            ("two handlers", |p| probe(p, "readiness", json!({"exec": {"command": ["true"]}, "httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}})), &["spec.containers[0].readinessProbe.httpGet: Forbidden: may not specify more than 1 handler type"]),
            ("empty command", |p| probe(p, "readiness", json!({"exec": {}})), &["spec.containers[0].readinessProbe.exec.command: Required value"]),
            ("negative delay", |p| probe(p, "readiness", json!({"tcpSocket": {"port": 80}, "initialDelaySeconds": -1})), &["spec.containers[0].readinessProbe.initialDelaySeconds: Invalid value: -1: must be greater than or equal to 0"]),
            ("liveness success threshold", |p| probe(p, "liveness", json!({"tcpSocket": {"port": 80}, "successThreshold": 2})), &["spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1"]),
            ("startup success threshold", |p| probe(p, "startup", json!({"tcpSocket": {"port": 80}, "successThreshold": 3})), &["spec.containers[0].startupProbe.successThreshold: Invalid value: 3: must be 1"]),
            ("bad port", |p| probe(p, "readiness", json!({"httpGet": {"port": 0, "path": "/", "scheme": "HTTP"}})), &["spec.containers[0].readinessProbe.httpGet.port: Invalid value: 0: must be between 1 and 65535, inclusive"]),
            ("bad port name", |p| probe(p, "readiness", json!({"tcpSocket": {"port": "Web"}})), &["spec.containers[0].readinessProbe.tcpSocket.port: Invalid value: \"Web\": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"]),
            ("scheme", |p| probe(p, "readiness", json!({"httpGet": {"port": 80, "path": "/", "scheme": "FTP"}})), &["spec.containers[0].readinessProbe.httpGet.scheme: Unsupported value: \"FTP\": supported values: \"HTTP\", \"HTTPS\""]),
            ("probe grace", |p| probe(p, "liveness", json!({"tcpSocket": {"port": 80}, "successThreshold": 1, "terminationGracePeriodSeconds": 0})), &["spec.containers[0].livenessProbe.terminationGracePeriodSeconds: Invalid value: 0: must be greater than 0"]),
            ("readiness grace", |p| probe(p, "readiness", json!({"tcpSocket": {"port": 80}, "terminationGracePeriodSeconds": 5})), &["spec.containers[0].readinessProbe.terminationGracePeriodSeconds: Invalid value: 5: must not be set for readinessProbes"]),
            ("sleep too long", |p| {
                container_mut(p).lifecycle = Some(serde_json::from_value(json!({"preStop": {"sleep": {"seconds": 31}}})).expect("lifecycle"));
            }, &["spec.containers[0].lifecycle.preStop.sleep: Invalid value: 31: must be greater than 0 and less than terminationGracePeriodSeconds (30). Enable AllowPodLifecycleSleepActionZeroValue feature gate for zero sleep."]),
            ("init container probe", |p| {
                let mut init = spec_mut(p).containers[0].clone();
                init.name = "init".into();
                init.liveness_probe = Some(serde_json::from_value(json!({"tcpSocket": {"port": 80}})).expect("probe"));
                spec_mut(p).init_containers = Some(vec![init]);
            }, &["spec.initContainers[0].livenessProbe: Forbidden: may not be set for init containers without restartPolicy=Always"]),
        ]);
    }

    #[test]
    fn validation_checks_env() {
        fn env(p: &mut Pod, v: serde_json::Value) {
            container_mut(p).env = Some(serde_json::from_value(v).expect("env"));
        }
        expect_errors(&[
            ("relaxed name ok", |p| env(p, json!([{"name": "1.weird-Name", "value": "x"}])), &[]),
            ("equals sign", |p| env(p, json!([{"name": "A=B", "value": "x"}])), &["spec.containers[0].env[0].name: Invalid value: \"A=B\": a valid environment variable name must consist only of printable ASCII characters other than '='"]),
            ("empty name", |p| env(p, json!([{"name": "", "value": "x"}])), &["spec.containers[0].env[0].name: Required value"]),
            ("value and valueFrom", |p| env(p, json!([{"name": "A", "value": "x", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}}])), &["spec.containers[0].env[0].valueFrom: Invalid value: \"\": may not be specified when `value` is not empty"]),
            ("empty valueFrom", |p| env(p, json!([{"name": "A", "valueFrom": {}}])), &["spec.containers[0].env[0].valueFrom: Invalid value: \"\": must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"]),
            ("two sources", |p| env(p, json!([{"name": "A", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}, "secretKeyRef": {"name": "s", "key": "k"}}}])), &["spec.containers[0].env[0].valueFrom: Invalid value: \"\": may not have more than one field specified at a time"]),
            ("field not exposed", |p| env(p, json!([{"name": "A", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "spec.restartPolicy"}}}])), &["spec.containers[0].env[0].valueFrom.fieldRef.fieldPath: Unsupported value: \"spec.restartPolicy\": supported values: \"metadata.name\", \"metadata.namespace\", \"metadata.uid\", \"spec.nodeName\", \"spec.serviceAccountName\", \"status.hostIP\", \"status.hostIPs\", \"status.podIP\", \"status.podIPs\""]),
            ("unknown field", |p| env(p, json!([{"name": "A", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "spec.nope"}}}])), &["spec.containers[0].env[0].valueFrom.fieldRef.fieldPath: Invalid value: \"spec.nope\": error converting fieldPath: field label not supported: spec.nope"]),
            ("label subscript", |p| env(p, json!([{"name": "A", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.labels['app']"}}}])), &[]),
            ("secret key", |p| env(p, json!([{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": "bad key"}}}])), &["spec.containers[0].env[0].valueFrom.secretKeyRef.key: Invalid value: \"bad key\": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"]),
            ("cpu divisor", |p| env(p, json!([{"name": "A", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "2"}}}])), &["spec.containers[0].env[0].valueFrom.resourceFieldRef.divisor: Invalid value: \"limits.cpu\": only divisor's values 1m and 1 are supported with the cpu resource"]),
        ]);
    }

    #[test]
    fn validation_survives_hostile_values() {
        let weird = [
            "",
            "ü",
            "\u{0}",
            "💥/💥",
            "a/b/c/d",
            "-",
            "..",
            &"x".repeat(5000),
        ];
        for w in weird {
            let mut pod = pod_from(json!({
                "metadata": {"name": w, "generateName": w, "namespace": w, "labels": {w: w}, "annotations": {w: w}, "finalizers": [w]},
                "spec": {
                    "containers": [{"name": w, "image": w, "ports": [{"containerPort": i32::MIN, "hostPort": i32::MAX, "name": w, "protocol": w}],
                        "env": [{"name": w, "valueFrom": {"fieldRef": {"fieldPath": w}, "resourceFieldRef": {"resource": w, "divisor": w}}}],
                        "resources": {"limits": {w: w}, "requests": {w: "1e999999999"}},
                        "volumeMounts": [{"name": w, "mountPath": w, "subPath": w}],
                        "livenessProbe": {"httpGet": {"port": w}, "initialDelaySeconds": i32::MIN}}],
                    "volumes": [{"name": w, "hostPath": {"path": w, "type": w}}],
                    "activeDeadlineSeconds": i64::MIN,
                    "terminationGracePeriodSeconds": i64::MIN,
                    "tolerations": [{"key": w, "operator": w, "value": w, "effect": w, "tolerationSeconds": i64::MAX}]
                }
            }));
            default_pod(&mut pod).expect("the pod is admitted");
            let _ = validate_pod(&pod);
            let _ = validate_pod_update(&pod, &valid_pod());
            let _ = pod_table_row(&pod, ts("2024-01-01T00:00:00Z"));
            let _ = pod_warnings(&pod);
            let _ = pod_qos_class(&pod);
        }
        // A pod with no spec at all.
        let mut bare = Pod::default();
        let _ = validate_pod(&bare);
        default_pod(&mut bare).expect("the pod is admitted");
        assert_eq!(
            messages(&validate_pod(&bare))[0],
            "metadata.name: Required value: name or generateName is required"
        );
    }
}
