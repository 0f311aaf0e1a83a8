//! Pod defaulting and admission on create and update (upstream `PrepareForCreate`, the scheme
//! defaults and the always-on mutating admission plugins), and the warnings a create carries.

use crate::meta::image::default_pull_policy;
use crate::registry::field_error::is_dns1123_label;
use crate::registry::pod::validation::spec_of;
use crate::registry::pod::{
    is_empty, pod_qos_class, s, set_if_empty, slice, DEFAULT_SCHEDULER_NAME,
    DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS, DEFAULT_TOKEN_EXPIRATION_SECONDS,
    DEFAULT_TOLERATION_SECONDS, DEFAULT_VOLUME_MODE, MIRROR_POD_ANNOTATION, SCHEDULING_GATED,
    TAINT_NODE_NOT_READY, TAINT_NODE_UNREACHABLE, TERMINATION_MESSAGE_PATH_DEFAULT,
};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, DownwardAPIVolumeFile, HTTPGetAction, ObjectFieldSelector, Pod,
    PodAffinityTerm, PodCondition, PodSpec, PodStatus, Probe, ResourceRequirements, Toleration,
    Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;
use std::collections::BTreeMap;

/// Applies everything kube-apiserver does to a pod between decoding a create request and storing
/// it, in upstream order:
///
/// 1. v1 scheme defaults (`SetDefaults_Pod`, `SetDefaults_PodSpec`, containers, probes, ports,
///    volumes, field selectors) plus the v1→internal conversion of the deprecated
///    `serviceAccount` field;
/// 2. mutating admission that is on by default and needs no lookups: `ServiceAccount` (name
///    `default`), `Priority` (no default PriorityClass: priority 0 and `PreemptLowerPriority`;
///    the two `system-*` classes are known), `DefaultTolerationSeconds`;
/// 3. the pod strategy's `PrepareForCreate`: status reset to `Pending` with its QoS class, the
///    `SchedulingGated` condition, and `matchLabelKeys` folded into pod-affinity selectors;
/// 4. the internal→v1 conversion that mirrors `serviceAccountName` into `serviceAccount`.
///
/// Not done here: uid/creationTimestamp/namespace/generateName (generic store), the projected
/// `kube-api-access-*` token volume the ServiceAccount plugin adds, existence checks of the
/// ServiceAccount and of custom PriorityClasses (see [`admit_priority`]).
///
/// Fails with the `Priority` plugin's refusal (an unknown PriorityClass, or a priority that
/// contradicts the class), which kube-apiserver answers with 403 Forbidden.
pub fn default_pod(pod: &mut Pod) -> Result<(), String> {
    apply_scheme_defaults(pod);
    admit_service_account(pod);
    // Only the built-in classes are known: no PriorityClass objects are served.
    admit_priority(pod, &builtin_priority_class)?;
    admit_default_toleration_seconds(pod);
    prepare_for_create(pod);
    mirror_deprecated_service_account(pod);
    Ok(())
}

/// The update-time counterpart of [`default_pod`]: scheme defaults, `DefaultTolerationSeconds`
/// (it also handles updates) and the `serviceAccount` mirror. Call before
/// [`super::validate_pod_update`]; the stored status is carried over by the caller
/// (`PodStrategy::prepare_for_update`, upstream's `PrepareForUpdate`).
pub fn default_pod_for_update(new: &mut Pod) {
    apply_scheme_defaults(new);
    admit_default_toleration_seconds(new);
    mirror_deprecated_service_account(new);
}

/// `SetDefaults_Container` and the generated defaults for everything nested in a container. A
/// macro because `Container` and `EphemeralContainer` are distinct types with the same fields.
macro_rules! default_container_fields {
    ($c:expr) => {{
        let c = $c;
        if is_empty(&c.image_pull_policy) {
            c.image_pull_policy = Some(default_pull_policy(s(&c.image)).to_string());
        }
        set_if_empty(
            &mut c.termination_message_path,
            TERMINATION_MESSAGE_PATH_DEFAULT,
        );
        set_if_empty(&mut c.termination_message_policy, "File");
        // Go's ResourceRequirements is a non-pointer struct, so it always serialises as `{}`.
        if c.resources.is_none() {
            c.resources = Some(Default::default());
        }
        for p in c.ports.iter_mut().flatten() {
            set_if_empty(&mut p.protocol, "TCP");
        }
        for p in [
            &mut c.liveness_probe,
            &mut c.readiness_probe,
            &mut c.startup_probe,
        ] {
            if let Some(p) = p.as_mut() {
                default_probe(p);
            }
        }
        if let Some(l) = c.lifecycle.as_mut() {
            for h in [&mut l.post_start, &mut l.pre_stop].into_iter().flatten() {
                if let Some(g) = h.http_get.as_mut() {
                    default_http_get(g);
                }
            }
        }
        for e in c.env.iter_mut().flatten() {
            if let Some(f) = e.value_from.as_mut().and_then(|v| v.field_ref.as_mut()) {
                default_field_selector(f);
            }
        }
    }};
}

/// The scheme's defaults for a Pod: those of any pod spec, then `SetDefaults_Pod`'s own
/// (service links, requests from limits, host ports on the host network), which templates do
/// not get.
pub(crate) fn apply_scheme_defaults(pod: &mut Pod) {
    let spec = pod.spec.get_or_insert_with(PodSpec::default);
    default_pod_spec(spec);
    if spec.enable_service_links.is_none() {
        spec.enable_service_links = Some(true);
    }
    let host_network = spec.host_network.unwrap_or(false);
    for c in spec
        .containers
        .iter_mut()
        .chain(spec.init_containers.iter_mut().flatten())
    {
        default_requests_from_limits(c.resources.get_or_insert_with(Default::default));
        if host_network {
            for p in c.ports.iter_mut().flatten() {
                if p.host_port.unwrap_or(0) == 0 {
                    p.host_port = Some(p.container_port);
                }
            }
        }
    }
}

/// The scheme's defaults for any pod spec, a Pod's or a template's: `SetDefaults_PodSpec` and
/// the generated defaults of containers and volumes.
pub(crate) fn default_pod_spec(spec: &mut PodSpec) {
    // v1 -> internal conversion: the deprecated alias only counts when the real field is empty.
    if is_empty(&spec.service_account_name) && !is_empty(&spec.service_account) {
        spec.service_account_name = spec.service_account.clone();
    }
    // SetDefaults_PodSpec.
    set_if_empty(&mut spec.dns_policy, "ClusterFirst");
    set_if_empty(&mut spec.restart_policy, "Always");
    if spec.security_context.is_none() {
        spec.security_context = Some(Default::default());
    }
    if spec.termination_grace_period_seconds.is_none() {
        spec.termination_grace_period_seconds = Some(DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS);
    }
    set_if_empty(&mut spec.scheduler_name, DEFAULT_SCHEDULER_NAME);
    for c in spec
        .containers
        .iter_mut()
        .chain(spec.init_containers.iter_mut().flatten())
    {
        default_container(c);
    }
    for c in spec.ephemeral_containers.iter_mut().flatten() {
        default_container_fields!(c);
    }
    for v in spec.volumes.iter_mut().flatten() {
        default_volume(v);
    }
}

pub(crate) fn default_container(c: &mut Container) {
    default_container_fields!(c);
}

/// `SetDefaults_Pod`: a limit without a matching request becomes the request (pods only, not
/// templates).
pub(crate) fn default_requests_from_limits(r: &mut ResourceRequirements) {
    let Some(limits) = r.limits.as_ref() else {
        return;
    };
    let requests = r.requests.get_or_insert_with(BTreeMap::new);
    for (name, q) in limits {
        requests.entry(name.clone()).or_insert_with(|| q.clone());
    }
}

pub(crate) fn default_probe(p: &mut Probe) {
    if p.timeout_seconds.unwrap_or(0) == 0 {
        p.timeout_seconds = Some(1);
    }
    if p.period_seconds.unwrap_or(0) == 0 {
        p.period_seconds = Some(10);
    }
    if p.success_threshold.unwrap_or(0) == 0 {
        p.success_threshold = Some(1);
    }
    if p.failure_threshold.unwrap_or(0) == 0 {
        p.failure_threshold = Some(3);
    }
    if let Some(g) = p.http_get.as_mut() {
        default_http_get(g);
    }
    if let Some(g) = p.grpc.as_mut() {
        // `+default=""` on GRPCAction.service.
        if g.service.is_none() {
            g.service = Some(String::new());
        }
    }
}

pub(crate) fn default_http_get(g: &mut HTTPGetAction) {
    set_if_empty(&mut g.path, "/");
    set_if_empty(&mut g.scheme, "HTTP");
}

pub(crate) fn default_field_selector(f: &mut ObjectFieldSelector) {
    set_if_empty(&mut f.api_version, "v1");
}

pub(crate) fn default_downward_items(items: &mut Option<Vec<DownwardAPIVolumeFile>>) {
    for item in items.iter_mut().flatten() {
        if let Some(f) = item.field_ref.as_mut() {
            default_field_selector(f);
        }
    }
}

/// `SetDefaults_Volume` (a volume with no source is an emptyDir) and the per-source defaults.
pub(crate) fn default_volume(v: &mut Volume) {
    let no_source = volume_sources(v).iter().all(|(_, set)| !set);
    if no_source {
        v.empty_dir = Some(Default::default());
    }
    if let Some(h) = v.host_path.as_mut() {
        if h.type_.is_none() {
            h.type_ = Some(String::new());
        }
    }
    if let Some(x) = v.secret.as_mut() {
        x.default_mode.get_or_insert(DEFAULT_VOLUME_MODE);
    }
    if let Some(x) = v.config_map.as_mut() {
        x.default_mode.get_or_insert(DEFAULT_VOLUME_MODE);
    }
    if let Some(x) = v.downward_api.as_mut() {
        x.default_mode.get_or_insert(DEFAULT_VOLUME_MODE);
        default_downward_items(&mut x.items);
    }
    if let Some(x) = v.projected.as_mut() {
        x.default_mode.get_or_insert(DEFAULT_VOLUME_MODE);
        for src in x.sources.iter_mut().flatten() {
            if let Some(t) = src.service_account_token.as_mut() {
                t.expiration_seconds
                    .get_or_insert(DEFAULT_TOKEN_EXPIRATION_SECONDS);
            }
            if let Some(d) = src.downward_api.as_mut() {
                default_downward_items(&mut d.items);
            }
        }
    }
    if let Some(x) = v.iscsi.as_mut() {
        set_if_empty(&mut x.iscsi_interface, "default");
    }
    if let Some(x) = v.rbd.as_mut() {
        set_if_empty(&mut x.pool, "rbd");
        set_if_empty(&mut x.user, "admin");
        set_if_empty(&mut x.keyring, "/etc/ceph/keyring");
    }
    if let Some(x) = v.azure_disk.as_mut() {
        x.caching_mode
            .get_or_insert_with(|| "ReadWrite".to_string());
        x.kind.get_or_insert_with(|| "Shared".to_string());
        x.fs_type.get_or_insert_with(|| "ext4".to_string());
        x.read_only.get_or_insert(false);
    }
    if let Some(x) = v.scale_io.as_mut() {
        set_if_empty(&mut x.storage_mode, "ThinProvisioned");
        set_if_empty(&mut x.fs_type, "xfs");
    }
    if let Some(t) = v
        .ephemeral
        .as_mut()
        .and_then(|e| e.volume_claim_template.as_mut())
    {
        t.spec
            .volume_mode
            .get_or_insert_with(|| "Filesystem".to_string());
    }
}

/// Every volume source in upstream's checking order, with the field name upstream uses in the
/// "more than 1 volume type" error (including its `downwarAPI` typo).
pub(crate) fn volume_sources(v: &Volume) -> [(&'static str, bool); 30] {
    [
        ("emptyDir", v.empty_dir.is_some()),
        ("hostPath", v.host_path.is_some()),
        ("gitRepo", v.git_repo.is_some()),
        ("gcePersistentDisk", v.gce_persistent_disk.is_some()),
        ("awsElasticBlockStore", v.aws_elastic_block_store.is_some()),
        ("secret", v.secret.is_some()),
        ("nfs", v.nfs.is_some()),
        ("iscsi", v.iscsi.is_some()),
        ("glusterfs", v.glusterfs.is_some()),
        ("flocker", v.flocker.is_some()),
        ("persistentVolumeClaim", v.persistent_volume_claim.is_some()),
        ("rbd", v.rbd.is_some()),
        ("cinder", v.cinder.is_some()),
        ("cephFS", v.cephfs.is_some()),
        ("quobyte", v.quobyte.is_some()),
        ("downwarAPI", v.downward_api.is_some()),
        ("fc", v.fc.is_some()),
        ("flexVolume", v.flex_volume.is_some()),
        ("configMap", v.config_map.is_some()),
        ("azureFile", v.azure_file.is_some()),
        ("vsphereVolume", v.vsphere_volume.is_some()),
        ("photonPersistentDisk", v.photon_persistent_disk.is_some()),
        ("portworxVolume", v.portworx_volume.is_some()),
        ("azureDisk", v.azure_disk.is_some()),
        ("storageos", v.storageos.is_some()),
        ("projected", v.projected.is_some()),
        ("scaleIO", v.scale_io.is_some()),
        ("csi", v.csi.is_some()),
        ("ephemeral", v.ephemeral.is_some()),
        ("image", v.image.is_some()),
    ]
}

/// ServiceAccount admission: pods without a service account run as `default` (mirror pods are
/// left alone). Whether that account exists is for the caller to check.
pub(crate) fn admit_service_account(pod: &mut Pod) {
    let is_mirror = pod
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(MIRROR_POD_ANNOTATION));
    if is_mirror {
        return;
    }
    if let Some(spec) = pod.spec.as_mut() {
        set_if_empty(&mut spec.service_account_name, "default");
    }
}

/// The internal→v1 conversion always writes the deprecated alias from the real field.
pub(crate) fn mirror_deprecated_service_account(pod: &mut Pod) {
    if let Some(spec) = pod.spec.as_mut() {
        spec.service_account = spec.service_account_name.clone().filter(|n| !n.is_empty());
    }
}

/// A resolved PriorityClass: its value and preemption policy.
pub type ResolvedPriorityClass = (i32, Option<String>);

/// The PriorityClasses every cluster has (created by the apiserver at boot).
pub fn builtin_priority_class(name: &str) -> Option<ResolvedPriorityClass> {
    match name {
        "system-node-critical" => Some((2_000_001_000, Some("PreemptLowerPriority".to_string()))),
        "system-cluster-critical" => {
            Some((2_000_000_000, Some("PreemptLowerPriority".to_string())))
        }
        _ => None,
    }
}

/// Priority admission. `resolve(name)` returns `(value, preemptionPolicy)` of a PriorityClass.
/// With no class name the cluster default applies; we assume no `globalDefault` class exists
/// (priority 0, `PreemptLowerPriority`). Errors are upstream's 403 admission messages and leave
/// the pod untouched.
pub fn admit_priority(
    pod: &mut Pod,
    resolve: &dyn Fn(&str) -> Option<ResolvedPriorityClass>,
) -> Result<(), String> {
    let Some(spec) = pod.spec.as_mut() else {
        return Ok(());
    };
    let (priority, policy) = if is_empty(&spec.priority_class_name) {
        (0, Some("PreemptLowerPriority".to_string()))
    } else {
        let name = s(&spec.priority_class_name).to_string();
        match resolve(&name) {
            Some(found) => found,
            None => return Err(format!("no PriorityClass with name {name} was found")),
        }
    };
    if let Some(p) = spec.priority {
        if p != priority {
            return Err(format!(
                "the integer value of priority ({p}) must not be provided in pod spec; priority admission controller computed {priority} from the given PriorityClass name"
            ));
        }
    }
    if let (Some(mine), Some(theirs)) = (spec.preemption_policy.as_ref(), policy.as_ref()) {
        if mine != theirs {
            return Err(format!(
                "the string value of PreemptionPolicy ({mine}) must not be provided in pod spec; priority admission controller computed {theirs} from the given PriorityClass name"
            ));
        }
    }
    spec.priority = Some(priority);
    spec.preemption_policy = policy;
    Ok(())
}

/// DefaultTolerationSeconds admission: tolerate not-ready/unreachable NoExecute taints for 300s
/// unless the pod already tolerates them (an empty key or effect matches too).
pub(crate) fn admit_default_toleration_seconds(pod: &mut Pod) {
    let Some(spec) = pod.spec.as_mut() else {
        return;
    };
    let tolerates = |taint: &str, ts: &[Toleration]| {
        ts.iter().any(|t| {
            (s(&t.key) == taint || is_empty(&t.key))
                && (s(&t.effect) == "NoExecute" || is_empty(&t.effect))
        })
    };
    let has_not_ready = tolerates(TAINT_NODE_NOT_READY, slice(&spec.tolerations));
    let has_unreachable = tolerates(TAINT_NODE_UNREACHABLE, slice(&spec.tolerations));
    for (present, taint) in [
        (has_not_ready, TAINT_NODE_NOT_READY),
        (has_unreachable, TAINT_NODE_UNREACHABLE),
    ] {
        if !present {
            spec.tolerations
                .get_or_insert_with(Vec::new)
                .push(Toleration {
                    key: Some(taint.to_string()),
                    operator: Some("Exists".to_string()),
                    effect: Some("NoExecute".to_string()),
                    toleration_seconds: Some(DEFAULT_TOLERATION_SECONDS),
                    value: None,
                });
        }
    }
}

/// The pod strategy's `PrepareForCreate`.
pub(crate) fn prepare_for_create(pod: &mut Pod) {
    let qos = pod_qos_class(pod);
    let mut status = PodStatus {
        phase: Some("Pending".to_string()),
        qos_class: Some(qos.to_string()),
        ..Default::default()
    };
    let spec = pod.spec.get_or_insert_with(PodSpec::default);
    if !slice(&spec.scheduling_gates).is_empty() {
        status.conditions = Some(vec![PodCondition {
            type_: "PodScheduled".to_string(),
            status: "False".to_string(),
            reason: Some(SCHEDULING_GATED.to_string()),
            message: Some("Scheduling is blocked due to non-empty scheduling gates".to_string()),
            ..Default::default()
        }]);
    }
    pod.status = Some(status);
    mutate_pod_affinity(pod);
}

/// `matchLabelKeys`/`mismatchLabelKeys` (beta, on in v1.32) become `In`/`NotIn` requirements on
/// the term's label selector using the pod's own labels. A nil selector matches nothing and is
/// left alone.
pub(crate) fn mutate_pod_affinity(pod: &mut Pod) {
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    let Some(affinity) = pod.spec.as_mut().and_then(|s| s.affinity.as_mut()) else {
        return;
    };
    let mut terms: Vec<&mut PodAffinityTerm> = Vec::new();
    for (required, preferred) in [
        affinity.pod_affinity.as_mut().map(|a| {
            (
                &mut a.required_during_scheduling_ignored_during_execution,
                &mut a.preferred_during_scheduling_ignored_during_execution,
            )
        }),
        affinity.pod_anti_affinity.as_mut().map(|a| {
            (
                &mut a.required_during_scheduling_ignored_during_execution,
                &mut a.preferred_during_scheduling_ignored_during_execution,
            )
        }),
    ]
    .into_iter()
    .flatten()
    {
        terms.extend(required.iter_mut().flatten());
        terms.extend(
            preferred
                .iter_mut()
                .flatten()
                .map(|w| &mut w.pod_affinity_term),
        );
    }
    for term in terms {
        let Some(selector) = term.label_selector.as_mut() else {
            continue;
        };
        for (keys, op) in [
            (&term.match_label_keys, "In"),
            (&term.mismatch_label_keys, "NotIn"),
        ] {
            for k in slice(keys) {
                if let Some(v) = labels.get(k) {
                    selector
                        .match_expressions
                        .get_or_insert_with(Vec::new)
                        .push(LabelSelectorRequirement {
                            key: k.clone(),
                            operator: op.to_string(),
                            values: Some(vec![v.clone()]),
                        });
                }
            }
        }
    }
}

// =============================================================================================
// Warnings.
// =============================================================================================

/// The warnings kube-apiserver attaches to a pod create (`Warning:` headers): a name that is not
/// a DNS label, and duplicate/overlapping container ports (which are not errors).
pub fn pod_warnings(pod: &Pod) -> Vec<String> {
    let mut warnings = Vec::new();
    let name = s(&pod.metadata.name);
    let msgs = is_dns1123_label(name);
    if !msgs.is_empty() {
        warnings.push(format!(
            "metadata.name: this is used in the Pod's hostname, which can result in surprising behavior; a DNS label is recommended: [{}]",
            msgs.join(" ")
        ));
    }
    let spec = spec_of(pod);
    // Init containers are visited before regular ones, as VisitContainersWithPath does.
    let all = slice(&spec.init_containers)
        .iter()
        .enumerate()
        .map(|(i, c)| (format!("spec.initContainers[{i}]"), c))
        .chain(
            spec.containers
                .iter()
                .enumerate()
                .map(|(i, c)| (format!("spec.containers[{i}]"), c)),
        );
    let mut seen: BTreeMap<String, Vec<(String, &ContainerPort)>> = BTreeMap::new();
    for (cpath, c) in all {
        for (i, port) in slice(&c.ports).iter().enumerate() {
            let p = format!("{cpath}.ports[{i}]");
            let k = format!("{}/{}", port.container_port, s(&port.protocol));
            let (ip, hp) = (s(&port.host_ip), port.host_port.unwrap_or(0));
            for (other_path, other) in seen.get(&k).into_iter().flatten() {
                let (oip, ohp) = (s(&other.host_ip), other.host_port.unwrap_or(0));
                if ip == oip && hp == ohp {
                    warnings.push(format!("{p}: duplicate port definition with {other_path}"));
                } else if hp == 0 || ohp == 0 {
                    warnings.push(format!(
                        "{p}: overlapping port definition with {other_path}"
                    ));
                } else if hp == ohp && (ip.is_empty() != oip.is_empty()) {
                    warnings.push(format!(
                        "{p}: dangerously ambiguous port definition with {other_path}"
                    ));
                }
            }
            seen.entry(k).or_default().push((p, port));
        }
    }
    warnings
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::pod::test_support::*;
    use crate::registry::pod::{slice, validate_pod};

    // ---- defaulting -----------------------------------------------------------------------

    #[test]
    fn defaulting_matches_kube_apiserver_for_the_db_manifest() {
        let pod = valid_pod();
        let spec = serde_json::to_value(&pod.spec).expect("spec serializes");
        assert_eq!(
            spec,
            json!({
                "containers": [{
                    "args": ["--rest", "--httpinterface"],
                    "command": ["mongod"],
                    "image": "mongo:3.3",
                    "imagePullPolicy": "IfNotPresent",
                    "name": "db",
                    "resources": {},
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File"
                }],
                "dnsPolicy": "ClusterFirst",
                "enableServiceLinks": true,
                "preemptionPolicy": "PreemptLowerPriority",
                "priority": 0,
                "restartPolicy": "Always",
                "schedulerName": "default-scheduler",
                "securityContext": {},
                "serviceAccount": "default",
                "serviceAccountName": "default",
                "terminationGracePeriodSeconds": 30,
                "tolerations": [
                    {"effect": "NoExecute", "key": "node.kubernetes.io/not-ready", "operator": "Exists", "tolerationSeconds": 300},
                    {"effect": "NoExecute", "key": "node.kubernetes.io/unreachable", "operator": "Exists", "tolerationSeconds": 300}
                ]
            })
        );
        assert_eq!(
            serde_json::to_value(&pod.status).expect("status serializes"),
            json!({"phase": "Pending", "qosClass": "BestEffort"})
        );
        assert_eq!(pod.metadata.uid, None);
        assert_eq!(pod.metadata.creation_timestamp, None);
        assert!(
            validate_pod(&pod).is_empty(),
            "{:?}",
            messages(&validate_pod(&pod))
        );
    }

    #[test]
    fn defaulting_sets_image_pull_policy_by_tag() {
        let cases = [
            ("mongo:3.3", "IfNotPresent"),
            ("mongo", "Always"),
            ("mongo:latest", "Always"),
            ("docker.io/library/mongo", "Always"),
            ("registry.example.com:5000/team/app", "Always"),
            ("localhost:5000/app:v1", "IfNotPresent"),
            ("[::1]:5000/app:v2", "IfNotPresent"),
            (&format!("mongo@{DIGEST}"), "IfNotPresent"),
            (&format!("mongo:latest@{DIGEST}"), "Always"),
            ("Mongo", "IfNotPresent"),
            ("mongo:", "IfNotPresent"),
            ("mongo@sha1:abc", "IfNotPresent"),
            ("", "IfNotPresent"),
            ("  mongo", "IfNotPresent"),
        ];
        for (image, want) in cases {
            let mut pod = pod_from(
                json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": image}]}}),
            );
            default_pod(&mut pod).expect("the pod is admitted");
            assert_eq!(
                spec_mut(&mut pod).containers[0]
                    .image_pull_policy
                    .as_deref(),
                Some(want),
                "image {image:?}"
            );
        }
        let mut explicit = pod_from(
            json!({"spec": {"containers": [{"name": "c", "image": "x", "imagePullPolicy": "Never"}]}}),
        );
        default_pod(&mut explicit).expect("the pod is admitted");
        assert_eq!(
            container_mut(&mut explicit).image_pull_policy.as_deref(),
            Some("Never")
        );
    }

    #[test]
    fn defaulting_fills_ports_probes_env_and_handlers() {
        let mut pod = pod_from(json!({"spec": {"containers": [{
            "name": "c", "image": "nginx:1",
            "ports": [{"containerPort": 80}, {"containerPort": 53, "protocol": "UDP"}],
            "livenessProbe": {"httpGet": {"port": 80}},
            "readinessProbe": {"grpc": {"port": 9000}, "periodSeconds": 5},
            "lifecycle": {"preStop": {"httpGet": {"port": "http"}}},
            "env": [{"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}]
        }]}}));
        default_pod(&mut pod).expect("the pod is admitted");
        let c = serde_json::to_value(&spec_mut(&mut pod).containers[0]).expect("serializes");
        assert_eq!(
            c["ports"],
            json!([{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 53, "protocol": "UDP"}])
        );
        assert_eq!(
            c["livenessProbe"],
            json!({"httpGet": {"path": "/", "port": 80, "scheme": "HTTP"}, "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3})
        );
        assert_eq!(
            c["readinessProbe"],
            json!({"grpc": {"port": 9000, "service": ""}, "timeoutSeconds": 1, "periodSeconds": 5, "successThreshold": 1, "failureThreshold": 3})
        );
        assert_eq!(
            c["lifecycle"]["preStop"]["httpGet"],
            json!({"path": "/", "port": "http", "scheme": "HTTP"})
        );
        assert_eq!(
            c["env"][0]["valueFrom"]["fieldRef"],
            json!({"apiVersion": "v1", "fieldPath": "metadata.namespace"})
        );
    }

    #[test]
    fn defaulting_copies_limits_into_missing_requests() {
        let mut pod = pod_from(json!({"spec": {
            "containers": [{"name": "c", "image": "x", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m"}}}],
            "initContainers": [{"name": "i", "image": "x", "resources": {"limits": {"cpu": "2"}}}]
        }}));
        default_pod(&mut pod).expect("the pod is admitted");
        let spec = serde_json::to_value(&pod.spec).expect("serializes");
        assert_eq!(
            spec["containers"][0]["resources"]["requests"],
            json!({"cpu": "500m", "memory": "1Gi"})
        );
        assert_eq!(
            spec["initContainers"][0]["resources"]["requests"],
            json!({"cpu": "2"})
        );
        assert_eq!(
            pod.status.as_ref().and_then(|s| s.qos_class.as_deref()),
            Some("Burstable")
        );
    }

    #[test]
    fn defaulting_fills_volume_sources() {
        let mut pod = pod_from(
            json!({"spec": {"containers": [{"name": "c", "image": "x"}], "volumes": [
                {"name": "scratch", "emptyDir": {}},
                {"name": "nothing"},
                {"name": "host", "hostPath": {"path": "/var/log"}},
                {"name": "sec", "secret": {"secretName": "s"}},
                {"name": "cm", "configMap": {"name": "c"}},
                {"name": "dapi", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
                {"name": "proj", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}
            ]}}),
        );
        default_pod(&mut pod).expect("the pod is admitted");
        let v = serde_json::to_value(&spec_mut(&mut pod).volumes).expect("serializes");
        assert_eq!(v[0], json!({"name": "scratch", "emptyDir": {}}));
        assert_eq!(v[1], json!({"name": "nothing", "emptyDir": {}}));
        assert_eq!(
            v[2],
            json!({"name": "host", "hostPath": {"path": "/var/log", "type": ""}})
        );
        assert_eq!(
            v[3],
            json!({"name": "sec", "secret": {"secretName": "s", "defaultMode": 420}})
        );
        assert_eq!(
            v[4],
            json!({"name": "cm", "configMap": {"name": "c", "defaultMode": 420}})
        );
        assert_eq!(v[5]["downwardAPI"]["defaultMode"], json!(420));
        assert_eq!(
            v[5]["downwardAPI"]["items"][0]["fieldRef"]["apiVersion"],
            json!("v1")
        );
        assert_eq!(
            v[6]["projected"],
            json!({"defaultMode": 420, "sources": [{"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}}]})
        );
    }

    #[test]
    fn defaulting_adds_default_tolerations_unless_already_tolerated() {
        let cases = [
            (json!([]), 2),
            (json!([{"operator": "Exists"}]), 1),
            (
                json!([{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60}]),
                2,
            ),
            (
                json!([{"key": "node.kubernetes.io/unreachable", "operator": "Exists"}]),
                2,
            ),
            (
                json!([{"key": "other", "operator": "Exists", "effect": "NoSchedule"}]),
                3,
            ),
        ];
        for (tolerations, want) in cases {
            let mut pod = pod_from(
                json!({"spec": {"containers": [{"name": "c", "image": "x"}], "tolerations": tolerations.clone()}}),
            );
            default_pod(&mut pod).expect("the pod is admitted");
            assert_eq!(
                slice(&spec_mut(&mut pod).tolerations).len(),
                want,
                "tolerations {tolerations}"
            );
        }
    }

    #[test]
    fn defaulting_resets_status_and_computes_qos() {
        let mut pod = pod_from(json!({
            "spec": {"containers": [{"name": "c", "image": "x", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]},
            "status": {"phase": "Running", "podIP": "10.0.0.1"}
        }));
        default_pod(&mut pod).expect("the pod is admitted");
        assert_eq!(
            serde_json::to_value(&pod.status).expect("serializes"),
            json!({"phase": "Pending", "qosClass": "Guaranteed"})
        );
    }

    #[test]
    fn defaulting_marks_gated_pods_scheduling_gated() {
        let mut pod = pod_from(
            json!({"spec": {"containers": [{"name": "c", "image": "x"}], "schedulingGates": [{"name": "example.com/wait"}]}}),
        );
        default_pod(&mut pod).expect("the pod is admitted");
        assert_eq!(
            serde_json::to_value(&pod.status).expect("serializes")["conditions"],
            json!([{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated", "message": "Scheduling is blocked due to non-empty scheduling gates"}])
        );
    }

    #[test]
    fn defaulting_copies_container_port_to_host_port_on_host_network() {
        let mut pod = pod_from(
            json!({"spec": {"hostNetwork": true, "containers": [{"name": "c", "image": "x", "ports": [{"containerPort": 8080}]}]}}),
        );
        default_pod(&mut pod).expect("the pod is admitted");
        assert_eq!(
            container_mut(&mut pod)
                .ports
                .as_ref()
                .and_then(|p| p[0].host_port),
            Some(8080)
        );
    }

    #[test]
    fn defaulting_service_account_and_priority_classes() {
        let mut legacy = pod_from(
            json!({"spec": {"serviceAccount": "builder", "containers": [{"name": "c", "image": "x"}]}}),
        );
        default_pod(&mut legacy).expect("the pod is admitted");
        assert_eq!(
            spec_mut(&mut legacy).service_account_name.as_deref(),
            Some("builder")
        );
        assert_eq!(
            spec_mut(&mut legacy).service_account.as_deref(),
            Some("builder")
        );

        let mut mirror = pod_from(
            json!({"metadata": {"annotations": {"kubernetes.io/config.mirror": "x"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}),
        );
        default_pod(&mut mirror).expect("the pod is admitted");
        assert_eq!(spec_mut(&mut mirror).service_account_name, None);

        let mut critical = pod_from(
            json!({"spec": {"priorityClassName": "system-node-critical", "containers": [{"name": "c", "image": "x"}]}}),
        );
        default_pod(&mut critical).expect("the pod is admitted");
        assert_eq!(spec_mut(&mut critical).priority, Some(2_000_001_000));
        assert_eq!(
            spec_mut(&mut critical).preemption_policy.as_deref(),
            Some("PreemptLowerPriority")
        );

        let mut custom = pod_from(
            json!({"spec": {"priorityClassName": "high", "containers": [{"name": "c", "image": "x"}]}}),
        );
        assert_eq!(
            admit_priority(&mut custom, &builtin_priority_class),
            Err("no PriorityClass with name high was found".to_string())
        );
        let resolve = |n: &str| (n == "high").then(|| (1000, Some("Never".to_string())));
        assert_eq!(admit_priority(&mut custom, &resolve), Ok(()));
        assert_eq!(spec_mut(&mut custom).priority, Some(1000));

        let mut mismatch =
            pod_from(json!({"spec": {"priority": 7, "containers": [{"name": "c", "image": "x"}]}}));
        assert_eq!(
            admit_priority(&mut mismatch, &builtin_priority_class),
            Err("the integer value of priority (7) must not be provided in pod spec; priority admission controller computed 0 from the given PriorityClass name".to_string())
        );
    }

    #[test]
    fn defaulting_folds_match_label_keys_into_affinity_selectors() {
        let mut pod = pod_from(json!({
            "metadata": {"labels": {"app": "web", "track": "canary"}},
            "spec": {"containers": [{"name": "c", "image": "x"}], "affinity": {"podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [{
                    "topologyKey": "kubernetes.io/hostname",
                    "labelSelector": {"matchLabels": {"app": "web"}},
                    "matchLabelKeys": ["track", "missing"],
                    "mismatchLabelKeys": ["app"]
                }]
            }}}
        }));
        default_pod(&mut pod).expect("the pod is admitted");
        let spec = serde_json::to_value(&pod.spec).expect("serializes");
        assert_eq!(
            spec["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
                [0]["labelSelector"]["matchExpressions"],
            json!([{"key": "track", "operator": "In", "values": ["canary"]}, {"key": "app", "operator": "NotIn", "values": ["web"]}])
        );
    }

    #[test]
    fn warnings_report_duplicate_ports_and_non_label_names() {
        let mut pod = valid_pod();
        pod.metadata.name = Some("db.example".into());
        let mut second = spec_mut(&mut pod).containers[0].clone();
        second.name = "sidecar".into();
        second.ports = Some(vec![ContainerPort {
            container_port: 80,
            protocol: Some("TCP".into()),
            ..Default::default()
        }]);
        container_mut(&mut pod).ports = Some(vec![ContainerPort {
            container_port: 80,
            protocol: Some("TCP".into()),
            ..Default::default()
        }]);
        spec_mut(&mut pod).containers.push(second);
        assert_eq!(
            pod_warnings(&pod),
            vec![
                "metadata.name: this is used in the Pod's hostname, which can result in surprising behavior; a DNS label is recommended: [must not contain dots]".to_string(),
                "spec.containers[1].ports[0]: duplicate port definition with spec.containers[0].ports[0]".to_string(),
            ]
        );
    }
}
