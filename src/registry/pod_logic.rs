//! Pod registry logic modelled on kube-apiserver v1.32: create defaulting (scheme defaults, the pod
//! strategy's PrepareForCreate and the always-on mutating admission plugins), create and update
//! validation, the `kubectl get pods` table row, field selectors and the QoS class.
//!
//! Everything here is a pure function over typed `k8s_openapi` pods; storage, admission lookups
//! and HTTP live elsewhere. Where upstream behaviour needs data we do not have (PriorityClass
//! objects, ServiceAccount objects) the function documents what the caller must do.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::api::core::v1::{
    Container, ContainerPort, ContainerStatus, DownwardAPIVolumeFile, EnvFromSource, EnvVar,
    HTTPGetAction, KeyToPath, LifecycleHandler, ObjectFieldSelector, Pod, PodAffinityTerm,
    PodCondition, PodSpec, PodStatus, Probe, ResourceFieldSelector, ResourceRequirements,
    Toleration, Volume, VolumeDevice, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelectorRequirement, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::field_error::{
    go_string_map, go_string_slice, inclusive_range_error, is_config_map_key, is_dns1123_label,
    is_dns1123_subdomain, is_http_header_name, is_qualified_name, is_relaxed_env_var_name,
    is_valid_label_value, is_valid_port_name, is_valid_port_num, name_is_dns_subdomain,
    validate_labels, validate_object_meta, validate_object_meta_update, FieldError, Literal,
};

/// `v1.DefaultTerminationGracePeriodSeconds`.
const DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS: i64 = 30;
/// `v1.DefaultSchedulerName`.
const DEFAULT_SCHEDULER_NAME: &str = "default-scheduler";
/// `v1.TerminationMessagePathDefault`.
const TERMINATION_MESSAGE_PATH_DEFAULT: &str = "/dev/termination-log";
/// 0644, the default mode of secret/configMap/downwardAPI/projected volumes.
const DEFAULT_VOLUME_MODE: i32 = 0o644;
/// Default `expirationSeconds` of a projected service account token.
const DEFAULT_TOKEN_EXPIRATION_SECONDS: i64 = 3600;
/// `DefaultTolerationSeconds` admission: both node-lifecycle taints are tolerated for 300s.
const DEFAULT_TOLERATION_SECONDS: i64 = 300;
const TAINT_NODE_NOT_READY: &str = "node.kubernetes.io/not-ready";
const TAINT_NODE_UNREACHABLE: &str = "node.kubernetes.io/unreachable";
/// `kubernetes.io/config.mirror`: static pods mirrored by the kubelet.
const MIRROR_POD_ANNOTATION: &str = "kubernetes.io/config.mirror";
const POD_DELETION_COST_ANNOTATION: &str = "controller.kubernetes.io/pod-deletion-cost";
/// Reason the node lifecycle controller puts on pods of an unreachable node.
const NODE_UNREACHABLE_POD_REASON: &str = "NodeLost";
const SCHEDULING_GATED: &str = "SchedulingGated";
const MAX_INT32: i64 = i32::MAX as i64;

/// The full v1.32 immutability sentence (without the trailing `cmp.Diff`, see
/// [`validate_pod_update`]).
pub const POD_UPDATE_FORBIDDEN_MESSAGE: &str = "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

// =============================================================================================
// QUANTITY STAND-IN — swap point for the shared quantity parser being written elsewhere.
// Everything in this file that needs a quantity goes through `parse_quantity` only.
// =============================================================================================

/// Parses a Kubernetes quantity (`<sign><digits>[.<digits>]<suffix>`, suffixes `Ki..Ei`,
/// `n u m k M G T P E` or `e<exp>`/`E<exp>`) into milli-units, rounding up like `MilliValue()`.
/// Returns `None` for text upstream would reject. Values beyond `i128` saturate rather than fail,
/// because upstream accepts arbitrarily large quantities.
fn parse_quantity(s: &str) -> Option<i128> {
    let b = s.as_bytes();
    let mut pos = 0;
    let mut negative = false;
    if let Some(&c) = b.first() {
        if c == b'+' || c == b'-' {
            negative = c == b'-';
            pos = 1;
        }
    }
    let int_start = pos;
    while pos < b.len() && b[pos].is_ascii_digit() {
        pos += 1;
    }
    let int_digits = &s[int_start..pos];
    let mut frac_digits = "";
    if pos < b.len() && b[pos] == b'.' {
        pos += 1;
        let frac_start = pos;
        while pos < b.len() && b[pos].is_ascii_digit() {
            pos += 1;
        }
        frac_digits = &s[frac_start..pos];
    }
    if int_digits.is_empty() && frac_digits.is_empty() {
        return None;
    }
    let suffix = &s[pos..];
    let (binary_power, mut exp10): (u32, i64) = match suffix {
        "" => (0, 0),
        "Ki" => (1, 0),
        "Mi" => (2, 0),
        "Gi" => (3, 0),
        "Ti" => (4, 0),
        "Pi" => (5, 0),
        "Ei" => (6, 0),
        "n" => (0, -9),
        "u" => (0, -6),
        "m" => (0, -3),
        "k" => (0, 3),
        "M" => (0, 6),
        "G" => (0, 9),
        "T" => (0, 12),
        "P" => (0, 15),
        "E" => (0, 18),
        other => {
            let rest = other
                .strip_prefix('e')
                .or_else(|| other.strip_prefix('E'))?;
            let digits = rest
                .strip_prefix('+')
                .or_else(|| rest.strip_prefix('-'))
                .unwrap_or(rest);
            if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            // Clamp absurd exponents; anything past ±10^6 saturates or rounds to the smallest unit.
            let magnitude: i64 = digits.get(..digits.len().min(7))?.parse().ok()?;
            let magnitude = if digits.len() > 7 {
                10_000_000
            } else {
                magnitude
            };
            (
                0,
                if rest.starts_with('-') {
                    -magnitude
                } else {
                    magnitude
                },
            )
        }
    };
    // Accumulate significant digits while they fit in i128 (38 digits is far beyond any real
    // quantity); integer digits that no longer fit only scale the value, extra fraction digits
    // are dropped.
    let mut mantissa: i128 = 0;
    let mut frac_len: i64 = 0;
    let mut full = false;
    for c in int_digits.bytes() {
        match mantissa
            .checked_mul(10)
            .and_then(|m| m.checked_add(i128::from(c - b'0')))
        {
            Some(m) if !full => mantissa = m,
            _ => {
                full = true;
                exp10 = exp10.saturating_add(1);
            }
        }
    }
    for c in frac_digits.bytes() {
        match mantissa
            .checked_mul(10)
            .and_then(|m| m.checked_add(i128::from(c - b'0')))
        {
            Some(m) if !full => {
                mantissa = m;
                frac_len += 1;
            }
            _ => break,
        }
    }
    let mut value = mantissa;
    for _ in 0..binary_power {
        value = value.saturating_mul(1024);
    }
    let scale = exp10 + 3 - frac_len;
    let value = if value == 0 {
        0
    } else if scale >= 0 {
        let mut v = value;
        for _ in 0..scale.min(40) {
            v = v.saturating_mul(10);
        }
        v
    } else if scale < -38 {
        1
    } else {
        let div = 10i128.pow(u32::try_from(-scale).ok()?);
        // Round up to the next milli-unit, as MilliValue() does, without overflowing when the
        // value already saturated at the top of i128.
        value / div + i128::from(value % div != 0)
    };
    Some(if negative { -value } else { value })
}

/// The canonical text we compare quantities by (milli-units); unparsable text compares verbatim.
fn quantity_key(q: &str) -> String {
    match parse_quantity(q) {
        Some(m) => format!("{m}m"),
        None => q.to_string(),
    }
}

// =============================================================================================
// Image references (the bit of distribution/reference that imagePullPolicy defaulting needs).
// =============================================================================================

/// Splits a container image reference the way `parsers.ParseImageName` does. Returns the tag (if
/// any) and whether a digest is present, or `None` when the reference does not parse (upstream
/// then treats the tag as empty).
fn parse_image_reference(image: &str) -> Option<(Option<String>, bool)> {
    if image.is_empty()
        || image.len() == 64
            && image
                .bytes()
                .all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
    {
        // Empty, or a bare 64-hex image ID, which is reserved and not a repository name.
        return None;
    }
    let (name_tag, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    if let Some(d) = digest {
        if !valid_digest(d) {
            return None;
        }
    }
    let last_slash = name_tag.rfind('/');
    let (name, tag) = match name_tag.rfind(':') {
        Some(colon) if last_slash.is_none_or(|s| colon > s) => {
            (&name_tag[..colon], Some(&name_tag[colon + 1..]))
        }
        _ => (name_tag, None),
    };
    if let Some(t) = tag {
        let ok = t.len() <= 128
            && t.bytes()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
            && t.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c == b'-');
        if !ok {
            return None;
        }
    }
    if name.is_empty() || name.len() > 255 {
        return None;
    }
    // The first component is a registry host when it looks like one (has '.' or ':', is
    // "localhost", or has upper case); otherwise the whole name is a Docker Hub path.
    let (domain, path) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.to_lowercase() != first =>
        {
            (Some(first), rest)
        }
        _ => (None, name),
    };
    if let Some(d) = domain {
        if !valid_registry_host(d) {
            return None;
        }
    }
    if !path.split('/').all(valid_path_component) {
        return None;
    }
    Some((tag.map(str::to_string), digest.is_some()))
}

/// `algorithm:hex` where the algorithm is one the digest library registers.
fn valid_digest(d: &str) -> bool {
    let Some((alg, hex)) = d.split_once(':') else {
        return false;
    };
    let want = match alg {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return false,
    };
    hex.len() == want && hex.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

/// `host[:port]` where host is dotted DNS-ish components or a bracketed IPv6 address.
fn valid_registry_host(d: &str) -> bool {
    let (host, port) = if let Some(rest) = d.strip_prefix('[') {
        match rest.split_once(']') {
            Some((v6, after)) => {
                if v6.parse::<std::net::Ipv6Addr>().is_err() {
                    return false;
                }
                match after {
                    "" => return true,
                    p => match p.strip_prefix(':') {
                        Some(port) => ("", Some(port)),
                        None => return false,
                    },
                }
            }
            None => return false,
        }
    } else {
        match d.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (d, None),
        }
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|c| c.is_ascii_digit()) {
            return false;
        }
    }
    if host.is_empty() {
        return d.starts_with('[');
    }
    host.split('.').all(|comp| {
        let b = comp.as_bytes();
        match (b.first(), b.last()) {
            (Some(f), Some(l)) => {
                f.is_ascii_alphanumeric()
                    && l.is_ascii_alphanumeric()
                    && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
            }
            _ => false,
        }
    })
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if !b.first().is_some_and(|&x| alnum(x)) || !b.last().is_some_and(|&x| alnum(x)) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// `SetDefaults_Container`'s pull policy: `Always` when the effective tag is `latest` (an
/// untagged, undigested reference means `latest`), else `IfNotPresent` — including references
/// that fail to parse, since upstream ignores the parse error here.
fn default_pull_policy(image: &str) -> &'static str {
    match parse_image_reference(image) {
        Some((Some(tag), _)) if tag == "latest" => "Always",
        Some((None, false)) => "Always",
        _ => "IfNotPresent",
    }
}

// =============================================================================================
// Small helpers.
// =============================================================================================

fn child(p: &str, c: &str) -> String {
    format!("{p}.{c}")
}
fn index(p: &str, i: usize) -> String {
    format!("{p}[{i}]")
}
fn key(p: &str, k: &str) -> String {
    format!("{p}[{k}]")
}
/// Go treats an empty string and an absent one identically for non-pointer fields.
fn s(o: &Option<String>) -> &str {
    o.as_deref().unwrap_or("")
}
fn is_empty(o: &Option<String>) -> bool {
    s(o).is_empty()
}
fn set_if_empty(o: &mut Option<String>, v: &str) {
    if is_empty(o) {
        *o = Some(v.to_string());
    }
}
fn slice<T>(o: &Option<Vec<T>>) -> &[T] {
    o.as_deref().unwrap_or(&[])
}

// =============================================================================================
// Defaulting.
// =============================================================================================

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
pub fn default_pod(pod: &mut Pod) {
    apply_scheme_defaults(pod);
    admit_service_account(pod);
    // Unknown class names are the caller's job (they need a lookup); errors surface there.
    let _ = admit_priority(pod, &builtin_priority_class);
    admit_default_toleration_seconds(pod);
    prepare_for_create(pod);
    mirror_deprecated_service_account(pod);
}

/// The update-time counterpart of [`default_pod`]: scheme defaults, `DefaultTolerationSeconds`
/// (it also handles updates), status carried over from the stored pod (`PrepareForUpdate`), and
/// the `serviceAccount` mirror. Call before [`validate_pod_update`].
pub fn default_pod_for_update(new: &mut Pod, old: &Pod) {
    apply_scheme_defaults(new);
    admit_default_toleration_seconds(new);
    new.status = old.status.clone();
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

fn apply_scheme_defaults(pod: &mut Pod) {
    let spec = pod.spec.get_or_insert_with(PodSpec::default);
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
    // SetDefaults_Pod.
    if spec.enable_service_links.is_none() {
        spec.enable_service_links = Some(true);
    }
    let host_network = spec.host_network.unwrap_or(false);
    for c in spec
        .containers
        .iter_mut()
        .chain(spec.init_containers.iter_mut().flatten())
    {
        default_container(c);
        default_requests_from_limits(c.resources.get_or_insert_with(Default::default));
        if host_network {
            for p in c.ports.iter_mut().flatten() {
                if p.host_port.unwrap_or(0) == 0 {
                    p.host_port = Some(p.container_port);
                }
            }
        }
    }
    for c in spec.ephemeral_containers.iter_mut().flatten() {
        default_container_fields!(c);
    }
    for v in spec.volumes.iter_mut().flatten() {
        default_volume(v);
    }
}

fn default_container(c: &mut Container) {
    default_container_fields!(c);
}

/// `SetDefaults_Pod`: a limit without a matching request becomes the request (pods only, not
/// templates).
fn default_requests_from_limits(r: &mut ResourceRequirements) {
    let Some(limits) = r.limits.as_ref() else {
        return;
    };
    let requests = r.requests.get_or_insert_with(BTreeMap::new);
    for (name, q) in limits {
        requests.entry(name.clone()).or_insert_with(|| q.clone());
    }
}

fn default_probe(p: &mut Probe) {
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

fn default_http_get(g: &mut HTTPGetAction) {
    set_if_empty(&mut g.path, "/");
    set_if_empty(&mut g.scheme, "HTTP");
}

fn default_field_selector(f: &mut ObjectFieldSelector) {
    set_if_empty(&mut f.api_version, "v1");
}

fn default_downward_items(items: &mut Option<Vec<DownwardAPIVolumeFile>>) {
    for item in items.iter_mut().flatten() {
        if let Some(f) = item.field_ref.as_mut() {
            default_field_selector(f);
        }
    }
}

/// `SetDefaults_Volume` (a volume with no source is an emptyDir) and the per-source defaults.
fn default_volume(v: &mut Volume) {
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
fn volume_sources(v: &Volume) -> [(&'static str, bool); 30] {
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
fn admit_service_account(pod: &mut Pod) {
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
fn mirror_deprecated_service_account(pod: &mut Pod) {
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
fn admit_default_toleration_seconds(pod: &mut Pod) {
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
fn prepare_for_create(pod: &mut Pod) {
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
fn mutate_pod_affinity(pod: &mut Pod) {
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
// Create validation.
// =============================================================================================

/// What container validation needs to know about the rest of the pod.
struct PodContext<'a> {
    volumes: BTreeMap<&'a str, &'a Volume>,
    grace_period: Option<i64>,
    claim_names: BTreeSet<&'a str>,
}

fn empty_spec() -> &'static PodSpec {
    static EMPTY: std::sync::OnceLock<PodSpec> = std::sync::OnceLock::new();
    EMPTY.get_or_init(PodSpec::default)
}

fn spec_of(pod: &Pod) -> &PodSpec {
    pod.spec.as_ref().unwrap_or_else(|| empty_spec())
}

/// `ValidatePodCreate` (the pod strategy's `Validate`), with the pod-only options upstream uses
/// by default in v1.32 (relaxed env var names, strict DNS search names, no zero-second sleep).
/// Expects the generic store to have set `metadata.namespace` and the final name already.
pub fn validate_pod(pod: &Pod) -> Vec<FieldError> {
    let mut errs = validate_pod_metadata_and_spec(pod);
    let spec = spec_of(pod);
    if !slice(&spec.ephemeral_containers).is_empty() {
        errs.push(FieldError::forbidden(
            "spec.ephemeralContainers",
            "cannot be set on create",
        ));
    }
    if !is_empty(&spec.node_name) && !slice(&spec.scheduling_gates).is_empty() {
        errs.push(FieldError::forbidden(
            "spec.nodeName",
            "cannot be set until all schedulingGates have been cleared",
        ));
    }
    errs
}

fn validate_pod_metadata_and_spec(pod: &Pod) -> Vec<FieldError> {
    let meta = &pod.metadata;
    let spec = spec_of(pod);
    let mut errs = validate_object_meta(meta, true, name_is_dns_subdomain);
    // Core adds a check that unqualified finalizer names are the well-known ones.
    for (i, f) in slice(&meta.finalizers).iter().enumerate() {
        if !f.contains('/') && !matches!(f.as_str(), "kubernetes" | "orphan" | "foregroundDeletion")
        {
            errs.push(FieldError::invalid(
                index("metadata.finalizers", i),
                f,
                "name is neither a standard finalizer name nor is it fully qualified",
            ));
        }
    }
    errs.extend(validate_pod_annotations(meta.annotations.as_ref(), spec));
    errs.extend(validate_pod_spec(spec, s(&meta.name)));
    if is_empty(&spec.service_account_name) {
        for (vi, v) in slice(&spec.volumes).iter().enumerate() {
            let Some(p) = &v.projected else { continue };
            for (si, src) in slice(&p.sources).iter().enumerate() {
                if src.service_account_token.is_some() {
                    errs.push(FieldError::forbidden(
                        format!("spec.volumes[{vi}].projected.sources[{si}].serviceAccountToken"),
                        "must not be specified when serviceAccountName is not set",
                    ));
                }
            }
        }
    }
    // Pods (not templates) reject padded image names; unparsable references are the kubelet's
    // problem, not an API error.
    for (list, path) in [
        (&spec.containers[..], "spec.containers"),
        (slice(&spec.init_containers), "spec.initContainers"),
    ] {
        for (i, c) in list.iter().enumerate() {
            let image = s(&c.image);
            if image.len() != image.trim().len() {
                errs.push(FieldError::invalid(
                    child(&index(path, i), "image"),
                    image,
                    "must not have leading or trailing whitespace",
                ));
            }
        }
    }
    errs
}

/// `ValidatePodSpecificAnnotations`: mirror pods must be bound, and the deletion-cost annotation
/// must be a canonical int32.
fn validate_pod_annotations(
    annotations: Option<&BTreeMap<String, String>>,
    spec: &PodSpec,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(a) = annotations else {
        return errs;
    };
    if let Some(v) = a.get(MIRROR_POD_ANNOTATION) {
        if is_empty(&spec.node_name) {
            errs.push(FieldError::invalid(
                key("metadata.annotations", MIRROR_POD_ANNOTATION),
                v,
                "must set spec.nodeName if mirror pod annotation is set",
            ));
        }
    }
    if let Some(v) = a.get(POD_DELETION_COST_ANNOTATION) {
        // "+1" and "007" are rejected even though they parse.
        let first_ok = match v.as_bytes().first() {
            Some(b'-') => true,
            Some(b'0') => v == "0",
            Some(c) => c.is_ascii_digit(),
            None => false,
        };
        if !first_ok || v.parse::<i32>().is_err() {
            errs.push(FieldError::invalid(
                key("metadata.annotations", POD_DELETION_COST_ANNOTATION),
                v,
                "must be a 32bit integer",
            ));
        }
    }
    errs
}

/// `ValidatePodSpec`, in upstream's order.
fn validate_pod_spec<'a>(spec: &'a PodSpec, pod_name: &str) -> Vec<FieldError> {
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
    errs.extend(super::pod_constraints::validate_container_security_contexts(spec));
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
    errs.extend(super::pod_constraints::validate_pod_security_context(spec));
    errs.extend(super::pod_constraints::validate_node_affinity(spec));
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

fn qualified_name_errors(value: &str, path: &str) -> Vec<FieldError> {
    is_qualified_name(value)
        .into_iter()
        .map(|m| FieldError::invalid(path, value, m))
        .collect()
}

/// `IsValidIP` as of v1.32 (the apiserver's sloppy parser also accepts leading zeros in IPv4).
fn ip_errors(ip: &str, path: &str) -> Vec<FieldError> {
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

fn validate_dns_config(spec: &PodSpec, dns_policy: &str) -> Vec<FieldError> {
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
fn validate_tolerations(tolerations: &[Toleration], path: &str) -> Vec<FieldError> {
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

/// `ValidateVolumes`: returns the usable volumes by name (only error-free ones, as upstream) and
/// the errors.
fn validate_volumes<'a>(
    volumes: &'a [Volume],
    pod_name: &str,
) -> (BTreeMap<&'a str, &'a Volume>, Vec<FieldError>) {
    let mut errs = Vec::new();
    let mut usable: BTreeMap<&str, &Volume> = BTreeMap::new();
    let created_pvcs: BTreeSet<String> = if pod_name.is_empty() {
        BTreeSet::new()
    } else {
        volumes
            .iter()
            .filter(|v| v.ephemeral.is_some())
            .map(|v| format!("{pod_name}-{}", v.name))
            .collect()
    };
    for (i, v) in volumes.iter().enumerate() {
        let p = index("spec.volumes", i);
        let name_path = child(&p, "name");
        let mut el = validate_volume_source(v, &p, pod_name);
        if v.name.is_empty() {
            el.push(FieldError::required(&name_path, ""));
        } else {
            for msg in is_dns1123_label(&v.name) {
                el.push(FieldError::invalid(&name_path, &v.name, msg));
            }
        }
        if usable.contains_key(v.name.as_str()) {
            el.push(FieldError::duplicate(&name_path, &v.name));
        }
        if el.is_empty() {
            usable.insert(v.name.as_str(), v);
        } else {
            errs.extend(el);
        }
        if let Some(pvc) = &v.persistent_volume_claim {
            if created_pvcs.contains(&pvc.claim_name) {
                errs.push(FieldError::invalid(
                    format!("{p}.persistentVolumeClaim.claimName"),
                    &pvc.claim_name,
                    "must not reference a PVC that gets created for an ephemeral volume",
                ));
            }
        }
    }
    (usable, errs)
}

fn file_mode_errors(mode: Option<i32>, path: &str) -> Vec<FieldError> {
    match mode {
        Some(m) if !(0..=0o777).contains(&m) => {
            vec![FieldError::invalid(
                path,
                m,
                "must be a number between 0 and 0777 (octal), both inclusive",
            )]
        }
        _ => Vec::new(),
    }
}

/// Exactly one source per volume, plus the per-source checks for the sources rkube can run.
/// Other (cloud/legacy) sources are only counted.
fn validate_volume_source(v: &Volume, p: &str, pod_name: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut seen = 0;
    for (name, present) in volume_sources(v) {
        if !present {
            continue;
        }
        if seen > 0 {
            errs.push(FieldError::forbidden(
                child(p, name),
                "may not specify more than 1 volume type",
            ));
            continue;
        }
        seen += 1;
        errs.extend(validate_one_source(v, name, p, pod_name));
    }
    if seen == 0 {
        errs.push(FieldError::required(p, "must specify a volume type"));
    }
    errs
}

fn validate_one_source(v: &Volume, which: &str, p: &str, pod_name: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    match which {
        "emptyDir" => {
            let limit = v.empty_dir.as_ref().and_then(|e| e.size_limit.as_ref());
            if limit
                .and_then(|q| parse_quantity(&q.0))
                .is_some_and(|m| m < 0)
            {
                errs.push(FieldError::forbidden(
                    format!("{p}.emptyDir.sizeLimit"),
                    "SizeLimit field must be a valid resource quantity",
                ));
            }
        }
        "hostPath" => {
            if let Some(h) = &v.host_path {
                let hp = child(p, "hostPath");
                if h.path.is_empty() {
                    errs.push(FieldError::required(child(&hp, "path"), ""));
                    return errs;
                }
                errs.extend(no_backsteps(&h.path, &child(&hp, "path")));
                if let Some(t) = &h.type_ {
                    const TYPES: [&str; 8] = [
                        "",
                        "BlockDevice",
                        "CharDevice",
                        "Directory",
                        "DirectoryOrCreate",
                        "File",
                        "FileOrCreate",
                        "Socket",
                    ];
                    if !TYPES.contains(&t.as_str()) {
                        errs.push(FieldError::not_supported(child(&hp, "type"), t, &TYPES));
                    }
                }
            }
        }
        "gitRepo" => {
            if let Some(g) = &v.git_repo {
                if g.repository.is_empty() {
                    errs.push(FieldError::required(format!("{p}.gitRepo.repository"), ""));
                }
                errs.extend(local_descending_path(
                    s(&g.directory),
                    &format!("{p}.gitRepo.directory"),
                ));
            }
        }
        "secret" => {
            if let Some(x) = &v.secret {
                let sp = child(p, "secret");
                if is_empty(&x.secret_name) {
                    errs.push(FieldError::required(child(&sp, "secretName"), ""));
                }
                errs.extend(file_mode_errors(x.default_mode, &child(&sp, "defaultMode")));
                for (i, kp) in slice(&x.items).iter().enumerate() {
                    errs.extend(validate_key_to_path(kp, &format!("{sp}.items[{i}]")));
                }
            }
        }
        "configMap" => {
            if let Some(x) = &v.config_map {
                let cp = child(p, "configMap");
                if x.name.is_empty() {
                    errs.push(FieldError::required(child(&cp, "name"), ""));
                }
                errs.extend(file_mode_errors(x.default_mode, &child(&cp, "defaultMode")));
                for (i, kp) in slice(&x.items).iter().enumerate() {
                    errs.extend(validate_key_to_path(kp, &format!("{cp}.items[{i}]")));
                }
            }
        }
        "persistentVolumeClaim"
            if v.persistent_volume_claim
                .as_ref()
                .is_some_and(|c| c.claim_name.is_empty()) =>
        {
            errs.push(FieldError::required(
                format!("{p}.persistentVolumeClaim.claimName"),
                "",
            ));
        }
        "nfs" => {
            if let Some(n) = &v.nfs {
                if n.server.is_empty() {
                    errs.push(FieldError::required(format!("{p}.nfs.server"), ""));
                }
                if n.path.is_empty() {
                    errs.push(FieldError::required(format!("{p}.nfs.path"), ""));
                }
                if !n.path.starts_with('/') {
                    errs.push(FieldError::invalid(
                        format!("{p}.nfs.path"),
                        &n.path,
                        "must be an absolute path",
                    ));
                }
            }
        }
        "downwarAPI" => {
            if let Some(d) = &v.downward_api {
                let dp = child(p, "downwardAPI");
                errs.extend(file_mode_errors(d.default_mode, &child(&dp, "defaultMode")));
                // Upstream reports item problems at the source path, not at items[i].
                for item in slice(&d.items) {
                    errs.extend(validate_downward_file(item, &dp));
                }
            }
        }
        "projected" => {
            if let Some(x) = &v.projected {
                errs.extend(validate_projected(x, &child(p, "projected")));
            }
        }
        "ephemeral" => {
            if let Some(e) = &v.ephemeral {
                if e.volume_claim_template.is_none() {
                    errs.push(FieldError::required(
                        format!("{p}.ephemeral.volumeClaimTemplate"),
                        "",
                    ));
                } else if !pod_name.is_empty() && !v.name.is_empty() {
                    let pvc = format!("{pod_name}-{}", v.name);
                    for msg in name_is_dns_subdomain(&pvc, false) {
                        errs.push(FieldError::invalid(
                            child(p, "name"),
                            &v.name,
                            format!("PVC name {}: {msg}", super::field_error::go_quote(&pvc)),
                        ));
                    }
                }
            }
        }
        "image" if v.image.as_ref().is_some_and(|i| is_empty(&i.reference)) => {
            errs.push(FieldError::required(format!("{p}.image.reference"), ""));
        }
        _ => {}
    }
    errs
}

fn validate_key_to_path(kp: &KeyToPath, p: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if kp.key.is_empty() {
        errs.push(FieldError::required(child(p, "key"), ""));
    }
    if kp.path.is_empty() {
        errs.push(FieldError::required(child(p, "path"), ""));
    }
    errs.extend(local_non_reserved_path(&kp.path, &child(p, "path")));
    errs.extend(file_mode_errors(kp.mode, &child(p, "mode")));
    errs
}

fn validate_downward_file(f: &DownwardAPIVolumeFile, p: &str) -> Vec<FieldError> {
    const VOLUME_FIELDS: [&str; 5] = [
        "metadata.annotations",
        "metadata.labels",
        "metadata.name",
        "metadata.namespace",
        "metadata.uid",
    ];
    let mut errs = Vec::new();
    if f.path.is_empty() {
        errs.push(FieldError::required(child(p, "path"), ""));
    }
    errs.extend(local_non_reserved_path(&f.path, &child(p, "path")));
    if let Some(fr) = &f.field_ref {
        errs.extend(validate_field_selector(
            fr,
            &VOLUME_FIELDS,
            &child(p, "fieldRef"),
        ));
        if f.resource_field_ref.is_some() {
            errs.push(FieldError::invalid(
                p,
                "resource",
                "fieldRef and resourceFieldRef can not be specified simultaneously",
            ));
        }
    } else if let Some(rf) = &f.resource_field_ref {
        errs.extend(validate_resource_field_selector(
            rf,
            &child(p, "resourceFieldRef"),
            true,
        ));
    } else {
        errs.push(FieldError::required(
            p,
            "one of fieldRef and resourceFieldRef is required",
        ));
    }
    errs.extend(file_mode_errors(f.mode, &child(p, "mode")));
    errs
}

fn validate_projected(
    x: &k8s_openapi::api::core::v1::ProjectedVolumeSource,
    p: &str,
) -> Vec<FieldError> {
    let mut errs = file_mode_errors(x.default_mode, &child(p, "defaultMode"));
    let mut paths: BTreeSet<String> = BTreeSet::new();
    let mut note_path = |path: &str, value: &str, errs: &mut Vec<FieldError>| {
        if !path.is_empty() && !paths.insert(path.to_string()) {
            errs.push(FieldError::invalid(p, value, "conflicting duplicate paths"));
        }
    };
    for (i, src) in slice(&x.sources).iter().enumerate() {
        let sp = format!("{p}.sources[{i}]");
        let mut n = 0;
        if let Some(sec) = &src.secret {
            n += 1;
            if sec.name.is_empty() {
                errs.push(FieldError::required(format!("{sp}.secret.name"), ""));
            }
            for (j, kp) in slice(&sec.items).iter().enumerate() {
                errs.extend(validate_key_to_path(kp, &format!("{sp}.secret.items[{j}]")));
                note_path(&kp.path, &sec.name, &mut errs);
            }
        }
        if let Some(cm) = &src.config_map {
            n += 1;
            if cm.name.is_empty() {
                errs.push(FieldError::required(format!("{sp}.configMap.name"), ""));
            }
            for (j, kp) in slice(&cm.items).iter().enumerate() {
                errs.extend(validate_key_to_path(
                    kp,
                    &format!("{sp}.configMap.items[{j}]"),
                ));
                note_path(&kp.path, &cm.name, &mut errs);
            }
        }
        if let Some(d) = &src.downward_api {
            n += 1;
            for item in slice(&d.items) {
                errs.extend(validate_downward_file(item, &format!("{sp}.downwardAPI")));
                note_path(&item.path, &item.path, &mut errs);
            }
        }
        if let Some(t) = &src.service_account_token {
            n += 1;
            let exp = t.expiration_seconds.unwrap_or(0);
            let ep = format!("{sp}.serviceAccountToken.expirationSeconds");
            if exp < 600 {
                errs.push(FieldError::invalid(
                    &ep,
                    exp,
                    "may not specify a duration less than 10 minutes",
                ));
            }
            if exp > 1 << 32 {
                errs.push(FieldError::invalid(
                    &ep,
                    exp,
                    "may not specify a duration larger than 2^32 seconds",
                ));
            }
            // Upstream reports the token path at the projected source root.
            if t.path.is_empty() {
                errs.push(FieldError::required(child(p, "path"), ""));
            } else {
                errs.extend(local_non_reserved_path(&t.path, &child(p, "path")));
            }
        }
        if src.cluster_trust_bundle.is_some() {
            n += 1;
        }
        if n > 1 {
            errs.push(FieldError::forbidden(
                sp,
                "may not specify more than 1 volume type per source",
            ));
        }
    }
    errs
}

/// `validatePathNoBacksteps`: no `..` element (one error is enough).
fn no_backsteps(path: &str, field: &str) -> Vec<FieldError> {
    // filepath.ToSlash is the identity on Linux, so only '/' separates elements.
    if path.split('/').any(|e| e == "..") {
        vec![FieldError::invalid(field, path, "must not contain '..'")]
    } else {
        Vec::new()
    }
}

/// `validateLocalDescendingPath`: relative, and no `..` element.
fn local_descending_path(path: &str, field: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if path.starts_with('/') {
        errs.push(FieldError::invalid(field, path, "must be a relative path"));
    }
    errs.extend(no_backsteps(path, field));
    errs
}

/// `ValidateLocalNonReservedPath`: also may not start with `..` (e.g. `..data`, which the
/// atomic-writer uses internally).
fn local_non_reserved_path(path: &str, field: &str) -> Vec<FieldError> {
    let mut errs = local_descending_path(path, field);
    if path.starts_with("..") && !path.starts_with("../") {
        errs.push(FieldError::invalid(field, path, "must not start with '..'"));
    }
    errs
}

// ---- containers -----------------------------------------------------------------------------

/// `validateContainers` for `spec.containers`.
fn validate_containers(containers: &[Container], ctx: &PodContext<'_>) -> Vec<FieldError> {
    let path = "spec.containers";
    let mut errs = Vec::new();
    if containers.is_empty() {
        errs.push(FieldError::required(path, ""));
        return errs;
    }
    let mut names = BTreeSet::new();
    for (i, c) in containers.iter().enumerate() {
        let p = index(path, i);
        errs.extend(validate_container_common(c, ctx, &p));
        if !names.insert(c.name.as_str()) {
            errs.push(FieldError::duplicate(child(&p, "name"), &c.name));
        }
        if let Some(l) = &c.lifecycle {
            errs.extend(validate_lifecycle(
                l,
                ctx.grace_period,
                &child(&p, "lifecycle"),
            ));
        }
        errs.extend(validate_probes(c, ctx.grace_period, &p));
        if c.restart_policy.is_some() {
            errs.push(FieldError::forbidden(
                child(&p, "restartPolicy"),
                "may not be set for non-init containers",
            ));
        }
    }
    errs.extend(host_port_conflicts(containers.iter().enumerate(), path));
    errs
}

/// `validateInitContainers`: names must also be unique against regular containers; only
/// restartable ("sidecar") init containers may have probes or lifecycle hooks.
fn validate_init_containers(
    inits: &[Container],
    regular: &[Container],
    ctx: &PodContext<'_>,
) -> Vec<FieldError> {
    let path = "spec.initContainers";
    let mut errs = Vec::new();
    let mut names: BTreeSet<&str> = regular.iter().map(|c| c.name.as_str()).collect();
    for (i, c) in inits.iter().enumerate() {
        let p = index(path, i);
        errs.extend(validate_container_common(c, ctx, &p));
        let mut restart_always = false;
        if let Some(rp) = &c.restart_policy {
            if rp != "Always" {
                errs.push(FieldError::not_supported(
                    child(&p, "restartPolicy"),
                    rp,
                    &["Always"],
                ));
            }
            restart_always = rp == "Always";
        }
        if names.contains(c.name.as_str()) {
            errs.push(FieldError::duplicate(child(&p, "name"), &c.name));
        } else if !c.name.is_empty() {
            names.insert(c.name.as_str());
        }
        // Init containers run one at a time, so each is checked alone; upstream indexes that
        // one-element list, hence the `[0]` in the reported path.
        errs.extend(host_port_conflicts(std::iter::once((0, c)), path));
        if restart_always {
            if let Some(l) = &c.lifecycle {
                errs.extend(validate_lifecycle(
                    l,
                    ctx.grace_period,
                    &child(&p, "lifecycle"),
                ));
            }
            errs.extend(validate_probes(c, ctx.grace_period, &p));
        } else {
            let forbidden = "may not be set for init containers without restartPolicy=Always";
            for (set, name) in [
                (c.lifecycle.is_some(), "lifecycle"),
                (c.liveness_probe.is_some(), "livenessProbe"),
                (c.readiness_probe.is_some(), "readinessProbe"),
                (c.startup_probe.is_some(), "startupProbe"),
            ] {
                if set {
                    errs.push(FieldError::forbidden(child(&p, name), forbidden));
                }
            }
        }
    }
    errs
}

/// `checkHostPortConflicts`: the same protocol/hostIP/hostPort twice.
fn host_port_conflicts<'a>(
    containers: impl Iterator<Item = (usize, &'a Container)>,
    path: &str,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut seen = BTreeSet::new();
    for (ci, c) in containers {
        for (pi, port) in slice(&c.ports).iter().enumerate() {
            let hp = port.host_port.unwrap_or(0);
            if hp == 0 {
                continue;
            }
            let k = format!("{}/{}/{hp}", s(&port.protocol), s(&port.host_ip));
            if !seen.insert(k.clone()) {
                errs.push(FieldError::duplicate(
                    format!("{path}[{ci}].ports[{pi}].hostPort"),
                    k,
                ));
            }
        }
    }
    errs
}

/// `validateContainerCommon`.
fn validate_container_common(c: &Container, ctx: &PodContext<'_>, p: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let name_path = child(p, "name");
    if c.name.is_empty() {
        errs.push(FieldError::required(&name_path, ""));
    } else {
        for msg in is_dns1123_label(&c.name) {
            errs.push(FieldError::invalid(&name_path, &c.name, msg));
        }
    }
    // Only presence is checked: reference syntax is the runtime's concern.
    if is_empty(&c.image) {
        errs.push(FieldError::required(child(p, "image"), ""));
    }
    match s(&c.termination_message_policy) {
        "File" | "FallbackToLogsOnError" => {}
        "" => errs.push(FieldError::required(
            child(p, "terminationMessagePolicy"),
            "",
        )),
        other => errs.push(FieldError::not_supported(
            child(p, "terminationMessagePolicy"),
            other,
            &["File", "FallbackToLogsOnError"],
        )),
    }
    errs.extend(validate_container_ports(
        slice(&c.ports),
        &child(p, "ports"),
    ));
    errs.extend(validate_env(slice(&c.env), &child(p, "env")));
    errs.extend(validate_env_from(slice(&c.env_from), &child(p, "envFrom")));
    errs.extend(validate_volume_mounts(c, ctx, &child(p, "volumeMounts")));
    errs.extend(validate_volume_devices(c, ctx, &child(p, "volumeDevices")));
    match s(&c.image_pull_policy) {
        "Always" | "IfNotPresent" | "Never" => {}
        "" => errs.push(FieldError::required(child(p, "imagePullPolicy"), "")),
        other => errs.push(FieldError::not_supported(
            child(p, "imagePullPolicy"),
            other,
            &["Always", "IfNotPresent", "Never"],
        )),
    }
    if let Some(r) = &c.resources {
        errs.extend(validate_resources(r, ctx, &child(p, "resources")));
    }
    errs.extend(validate_resize_policy(c, &child(p, "resizePolicy")));
    errs
}

/// `validateContainerPorts`. Duplicate containerPort/protocol pairs are only warnings
/// (see [`pod_warnings`]).
fn validate_container_ports(ports: &[ContainerPort], path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut names = BTreeSet::new();
    for (i, port) in ports.iter().enumerate() {
        let p = index(path, i);
        let name = s(&port.name);
        if !name.is_empty() {
            let msgs = is_valid_port_name(name);
            if !msgs.is_empty() {
                for m in msgs {
                    errs.push(FieldError::invalid(child(&p, "name"), name, m));
                }
            } else if !names.insert(name) {
                errs.push(FieldError::duplicate(child(&p, "name"), name));
            }
        }
        if port.container_port == 0 {
            errs.push(FieldError::required(child(&p, "containerPort"), ""));
        } else {
            for m in is_valid_port_num(i64::from(port.container_port)) {
                errs.push(FieldError::invalid(
                    child(&p, "containerPort"),
                    port.container_port,
                    m,
                ));
            }
        }
        let hp = port.host_port.unwrap_or(0);
        if hp != 0 {
            for m in is_valid_port_num(i64::from(hp)) {
                errs.push(FieldError::invalid(child(&p, "hostPort"), hp, m));
            }
        }
        match s(&port.protocol) {
            "" => errs.push(FieldError::required(child(&p, "protocol"), "")),
            "TCP" | "UDP" | "SCTP" => {}
            other => errs.push(FieldError::not_supported(
                child(&p, "protocol"),
                other,
                &["SCTP", "TCP", "UDP"],
            )),
        }
    }
    errs
}

/// `ValidateEnv` with v1.32's default relaxed names (any printable ASCII but `=`).
fn validate_env(vars: &[EnvVar], path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, ev) in vars.iter().enumerate() {
        let p = index(path, i);
        if ev.name.is_empty() {
            errs.push(FieldError::required(child(&p, "name"), ""));
        } else {
            for m in is_relaxed_env_var_name(&ev.name) {
                errs.push(FieldError::invalid(child(&p, "name"), &ev.name, m));
            }
        }
        errs.extend(validate_env_value_from(ev, &child(&p, "valueFrom")));
    }
    errs
}

fn validate_env_value_from(ev: &EnvVar, p: &str) -> Vec<FieldError> {
    const ENV_FIELDS: [&str; 9] = [
        "metadata.name",
        "metadata.namespace",
        "metadata.uid",
        "spec.nodeName",
        "spec.serviceAccountName",
        "status.hostIP",
        "status.hostIPs",
        "status.podIP",
        "status.podIPs",
    ];
    let mut errs = Vec::new();
    let Some(from) = &ev.value_from else {
        return errs;
    };
    let mut sources = 0;
    if let Some(f) = &from.field_ref {
        sources += 1;
        errs.extend(validate_field_selector(
            f,
            &ENV_FIELDS,
            &child(p, "fieldRef"),
        ));
    }
    if let Some(r) = &from.resource_field_ref {
        sources += 1;
        errs.extend(validate_resource_field_selector(
            r,
            &child(p, "resourceFieldRef"),
            false,
        ));
    }
    if let Some(c) = &from.config_map_key_ref {
        sources += 1;
        errs.extend(validate_key_selector(
            &c.name,
            &c.key,
            &child(p, "configMapKeyRef"),
        ));
    }
    if let Some(c) = &from.secret_key_ref {
        sources += 1;
        errs.extend(validate_key_selector(
            &c.name,
            &c.key,
            &child(p, "secretKeyRef"),
        ));
    }
    if sources == 0 {
        errs.push(FieldError::invalid(
            p,
            "",
            "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
        ));
    } else if !is_empty(&ev.value) {
        errs.push(FieldError::invalid(
            p,
            "",
            "may not be specified when `value` is not empty",
        ));
    } else if sources > 1 {
        errs.push(FieldError::invalid(
            p,
            "",
            "may not have more than one field specified at a time",
        ));
    }
    errs
}

/// `validateObjectFieldSelector` including the downward-API label conversion checks.
fn validate_field_selector(f: &ObjectFieldSelector, allowed: &[&str], p: &str) -> Vec<FieldError> {
    let api_version = s(&f.api_version);
    if api_version.is_empty() {
        return vec![FieldError::required(child(p, "apiVersion"), "")];
    }
    if f.field_path.is_empty() {
        return vec![FieldError::required(child(p, "fieldPath"), "")];
    }
    let conversion_error = |msg: String| {
        vec![FieldError::invalid(
            child(p, "fieldPath"),
            &f.field_path,
            format!("error converting fieldPath: {msg}"),
        )]
    };
    if api_version != "v1" {
        return conversion_error(format!("unsupported pod version: {api_version}"));
    }
    let fp = f.field_path.as_str();
    if let Some((path, subscript)) = split_subscripted_path(fp) {
        return match path {
            "metadata.annotations" => qualified_name_errors(&subscript.to_lowercase(), p),
            "metadata.labels" => qualified_name_errors(subscript, p),
            _ => conversion_error(format!("field label does not support subscript: {fp}")),
        };
    }
    let internal = match fp {
        "metadata.annotations"
        | "metadata.labels"
        | "metadata.name"
        | "metadata.namespace"
        | "metadata.uid"
        | "spec.nodeName"
        | "spec.restartPolicy"
        | "spec.serviceAccountName"
        | "spec.schedulerName"
        | "status.phase"
        | "status.hostIP"
        | "status.hostIPs"
        | "status.podIP"
        | "status.podIPs" => fp,
        // Old clients still send spec.host.
        "spec.host" => "spec.nodeName",
        _ => return conversion_error(format!("field label not supported: {fp}")),
    };
    if allowed.contains(&internal) {
        Vec::new()
    } else {
        vec![FieldError::not_supported(
            child(p, "fieldPath"),
            internal,
            allowed,
        )]
    }
}

/// `fieldpath.SplitMaybeSubscriptedPath`: `metadata.labels['key']` -> (`metadata.labels`, `key`).
fn split_subscripted_path(fp: &str) -> Option<(&str, &str)> {
    let inner = fp.strip_suffix("']")?;
    let (path, subscript) = inner.split_once("['")?;
    if path.is_empty() {
        None
    } else {
        Some((path, subscript))
    }
}

fn validate_resource_field_selector(
    r: &ResourceFieldSelector,
    p: &str,
    in_volume: bool,
) -> Vec<FieldError> {
    const RESOURCES: [&str; 6] = [
        "limits.cpu",
        "limits.ephemeral-storage",
        "limits.memory",
        "requests.cpu",
        "requests.ephemeral-storage",
        "requests.memory",
    ];
    let mut errs = Vec::new();
    if in_volume && is_empty(&r.container_name) {
        errs.push(FieldError::required(child(p, "containerName"), ""));
    } else if r.resource.is_empty() {
        errs.push(FieldError::required(child(p, "resource"), ""));
    } else if !RESOURCES.contains(&r.resource.as_str())
        && !r.resource.starts_with("requests.hugepages-")
        && !r.resource.starts_with("limits.hugepages-")
    {
        errs.push(FieldError::not_supported(
            child(p, "resource"),
            &r.resource,
            &RESOURCES,
        ));
    }
    if let Some(d) = &r.divisor {
        errs.extend(validate_divisor(&r.resource, &d.0, p));
    }
    errs
}

/// `validateContainerResourceDivisor`, comparing values numerically instead of by canonical text.
fn validate_divisor(resource: &str, divisor: &str, p: &str) -> Vec<FieldError> {
    let Some(d) = parse_quantity(divisor) else {
        return Vec::new();
    };
    if d == 0 {
        return Vec::new();
    }
    const BYTE_DIVISORS: [&str; 13] = [
        "1", "1k", "1M", "1G", "1T", "1P", "1E", "1Ki", "1Mi", "1Gi", "1Ti", "1Pi", "1Ei",
    ];
    let one_of = |allowed: &[&str]| allowed.iter().any(|a| parse_quantity(a) == Some(d));
    let bytes_msg = |what: &str| {
        format!("only divisor's values 1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, 1Gi, 1Ti, 1Pi, 1Ei are supported with the {what} resource")
    };
    let msg = match resource {
        "limits.cpu" | "requests.cpu" if !one_of(&["1m", "1"]) => {
            Some("only divisor's values 1m and 1 are supported with the cpu resource".to_string())
        }
        "limits.memory" | "requests.memory" if !one_of(&BYTE_DIVISORS) => Some(bytes_msg("memory")),
        "limits.ephemeral-storage" | "requests.ephemeral-storage" if !one_of(&BYTE_DIVISORS) => {
            Some(bytes_msg("local ephemeral storage"))
        }
        r if (r.starts_with("requests.hugepages-") || r.starts_with("limits.hugepages-"))
            && !one_of(&BYTE_DIVISORS) =>
        {
            Some(bytes_msg("hugepages"))
        }
        _ => None,
    };
    msg.map(|m| vec![FieldError::invalid(child(p, "divisor"), resource, m)])
        .unwrap_or_default()
}

/// `validateConfigMapKeySelector` / `validateSecretKeySelector`.
fn validate_key_selector(name: &str, key: &str, p: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for m in name_is_dns_subdomain(name, false) {
        errs.push(FieldError::invalid(child(p, "name"), name, m));
    }
    if key.is_empty() {
        errs.push(FieldError::required(child(p, "key"), ""));
    } else {
        for m in is_config_map_key(key) {
            errs.push(FieldError::invalid(child(p, "key"), key, m));
        }
    }
    errs
}

/// `ValidateEnvFrom`.
fn validate_env_from(sources: &[EnvFromSource], path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (i, ev) in sources.iter().enumerate() {
        let p = index(path, i);
        let prefix = s(&ev.prefix);
        if !prefix.is_empty() {
            for m in is_relaxed_env_var_name(prefix) {
                errs.push(FieldError::invalid(child(&p, "prefix"), prefix, m));
            }
        }
        let mut n = 0;
        for (set, name, field) in [
            (
                ev.config_map_ref.is_some(),
                ev.config_map_ref.as_ref().map(|r| r.name.as_str()),
                "configMapRef",
            ),
            (
                ev.secret_ref.is_some(),
                ev.secret_ref.as_ref().map(|r| r.name.as_str()),
                "secretRef",
            ),
        ] {
            if !set {
                continue;
            }
            n += 1;
            let name = name.unwrap_or("");
            let np = format!("{p}.{field}.name");
            if name.is_empty() {
                errs.push(FieldError::required(np, ""));
            } else {
                // Upstream checks these names as prefixes (trailing '-' allowed).
                for m in name_is_dns_subdomain(name, true) {
                    errs.push(FieldError::invalid(&np, name, m));
                }
            }
        }
        if n == 0 {
            errs.push(FieldError::invalid(
                path,
                "",
                "must specify one of: `configMapRef` or `secretRef`",
            ));
        } else if n > 1 {
            errs.push(FieldError::invalid(
                path,
                "",
                "may not have more than one field specified at a time",
            ));
        }
    }
    errs
}

/// `ValidateVolumeMounts`. Upstream reports subPath/subPathExpr/mountPropagation problems at the
/// list path (without the index); we keep that quirk so messages match.
fn validate_volume_mounts(c: &Container, ctx: &PodContext<'_>, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let devices: BTreeMap<&str, &str> = slice(&c.volume_devices)
        .iter()
        .map(|d| (d.name.as_str(), d.device_path.as_str()))
        .collect();
    let mut mount_points = BTreeSet::new();
    for (i, m) in slice(&c.volume_mounts).iter().enumerate() {
        let p = index(path, i);
        if m.name.is_empty() {
            errs.push(FieldError::required(child(&p, "name"), ""));
        }
        if !ctx.volumes.contains_key(m.name.as_str()) {
            errs.push(FieldError::not_found(child(&p, "name"), &m.name));
        }
        if m.mount_path.is_empty() {
            errs.push(FieldError::required(child(&p, "mountPath"), ""));
        }
        if !mount_points.insert(m.mount_path.as_str()) {
            errs.push(FieldError::invalid(
                child(&p, "mountPath"),
                &m.mount_path,
                "must be unique",
            ));
        }
        if devices.contains_key(m.name.as_str()) {
            errs.push(FieldError::invalid(
                child(&p, "name"),
                &m.name,
                "must not already exist in volumeDevices",
            ));
        }
        if devices.values().any(|d| *d == m.mount_path) {
            errs.push(FieldError::invalid(
                child(&p, "mountPath"),
                &m.mount_path,
                "must not already exist as a path in volumeDevices",
            ));
        }
        if ctx
            .volumes
            .get(m.name.as_str())
            .is_some_and(|v| v.image.is_some())
        {
            if !is_empty(&m.sub_path) {
                errs.push(FieldError::invalid(
                    child(&p, "subPath"),
                    s(&m.sub_path),
                    "not allowed in image volume sources",
                ));
            }
            if !is_empty(&m.sub_path_expr) {
                errs.push(FieldError::invalid(
                    child(&p, "subPathExpr"),
                    s(&m.sub_path_expr),
                    "not allowed in image volume sources",
                ));
            }
        }
        if !is_empty(&m.sub_path) {
            errs.extend(local_descending_path(
                s(&m.sub_path),
                &child(path, "subPath"),
            ));
        }
        if !is_empty(&m.sub_path_expr) {
            if !is_empty(&m.sub_path) {
                errs.push(FieldError::invalid(
                    child(&p, "subPathExpr"),
                    s(&m.sub_path_expr),
                    "subPathExpr and subPath are mutually exclusive",
                ));
            }
            errs.extend(local_descending_path(
                s(&m.sub_path_expr),
                &child(path, "subPathExpr"),
            ));
        }
        errs.extend(validate_mount_propagation(
            m,
            c,
            &child(path, "mountPropagation"),
        ));
        errs.extend(validate_recursive_read_only(
            m,
            &child(path, "recursiveReadOnly"),
        ));
    }
    errs
}

fn validate_mount_propagation(m: &VolumeMount, c: &Container, p: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(mode) = &m.mount_propagation else {
        return errs;
    };
    if !matches!(mode.as_str(), "Bidirectional" | "HostToContainer" | "None") {
        errs.push(FieldError::not_supported(
            p,
            mode,
            &["Bidirectional", "HostToContainer", "None"],
        ));
    }
    let privileged = c
        .security_context
        .as_ref()
        .and_then(|sc| sc.privileged)
        .unwrap_or(false);
    if mode == "Bidirectional" && !privileged {
        errs.push(FieldError::forbidden(
            p,
            "Bidirectional mount propagation is available only to privileged containers",
        ));
    }
    errs
}

fn validate_recursive_read_only(m: &VolumeMount, p: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(rro) = &m.recursive_read_only else {
        return errs;
    };
    match rro.as_str() {
        "Disabled" => {}
        "Enabled" | "IfPossible" => {
            if !m.read_only.unwrap_or(false) {
                errs.push(FieldError::forbidden(
                    p,
                    "may only be specified when readOnly is true",
                ));
            }
            if m.mount_propagation
                .as_deref()
                .is_some_and(|mp| mp != "None")
            {
                errs.push(FieldError::forbidden(
                    p,
                    "may only be specified when mountPropagation is None or not specified",
                ));
            }
        }
        other => errs.push(FieldError::not_supported(
            p,
            other,
            &["Disabled", "Enabled", "IfPossible"],
        )),
    }
    errs
}

/// `ValidateVolumeDevices`: block devices must come from PVC-backed volumes.
fn validate_volume_devices(c: &Container, ctx: &PodContext<'_>, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mounts: BTreeMap<&str, &str> = slice(&c.volume_mounts)
        .iter()
        .map(|m| (m.name.as_str(), m.mount_path.as_str()))
        .collect();
    let mut names = BTreeSet::new();
    let mut paths = BTreeSet::new();
    for (i, d) in slice(&c.volume_devices).iter().enumerate() {
        let d: &VolumeDevice = d;
        let p = index(path, i);
        let matched = ctx.volumes.get(d.name.as_str());
        if d.name.is_empty() {
            errs.push(FieldError::required(child(&p, "name"), ""));
        }
        if names.contains(d.name.as_str()) {
            errs.push(FieldError::invalid(
                child(&p, "name"),
                &d.name,
                "must be unique",
            ));
        }
        match matched {
            Some(v) if v.persistent_volume_claim.is_none() && v.ephemeral.is_none() => {
                errs.push(FieldError::invalid(
                    child(&p, "name"),
                    &d.name,
                    "can only use volume source type of PersistentVolumeClaim or Ephemeral for block mode",
                ));
            }
            Some(_) => {}
            None => errs.push(FieldError::not_found(child(&p, "name"), &d.name)),
        }
        if d.device_path.is_empty() {
            errs.push(FieldError::required(child(&p, "devicePath"), ""));
        }
        if paths.contains(d.device_path.as_str()) {
            errs.push(FieldError::invalid(
                child(&p, "devicePath"),
                &d.device_path,
                "must be unique",
            ));
        }
        if !d.device_path.is_empty() && !no_backsteps(&d.device_path, "").is_empty() {
            errs.push(FieldError::invalid(
                child(&p, "devicePath"),
                &d.device_path,
                "can not contain backsteps ('..')",
            ));
        } else {
            paths.insert(d.device_path.as_str());
        }
        if mounts.contains_key(d.name.as_str()) {
            errs.push(FieldError::invalid(
                child(&p, "name"),
                &d.name,
                "must not already exist in volumeMounts",
            ));
        }
        if mounts.values().any(|m| *m == d.device_path) {
            errs.push(FieldError::invalid(
                child(&p, "devicePath"),
                &d.device_path,
                "must not already exist as a path in volumeMounts",
            ));
        }
        if !d.name.is_empty() {
            names.insert(d.name.as_str());
        }
    }
    errs
}

// ---- resources ------------------------------------------------------------------------------

const QUANTITY_SYNTAX_ERROR: &str =
    "must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

/// Names that count as "standard" for `validateResourceName` (quota and compute names).
fn is_standard_resource_name(name: &str) -> bool {
    const STANDARD: [&str; 20] = [
        "cpu",
        "memory",
        "ephemeral-storage",
        "requests.cpu",
        "requests.memory",
        "requests.ephemeral-storage",
        "limits.cpu",
        "limits.memory",
        "limits.ephemeral-storage",
        "pods",
        "services",
        "replicationcontrollers",
        "resourcequotas",
        "secrets",
        "configmaps",
        "persistentvolumeclaims",
        "storage",
        "requests.storage",
        "services.nodeports",
        "services.loadbalancers",
    ];
    STANDARD.contains(&name)
        || name.starts_with("hugepages-")
        || name.starts_with("requests.hugepages-")
}

/// `IsNativeResource`: unprefixed, or in the kubernetes.io namespace.
fn is_native_resource(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

/// `IsExtendedResourceName`: a domain-prefixed, non-native name usable in quota as `requests.<name>`.
fn is_extended_resource_name(name: &str) -> bool {
    !is_native_resource(name)
        && !name.starts_with("requests.")
        && is_qualified_name(&format!("requests.{name}")).is_empty()
}

/// `IsOvercommitAllowed`: extended resources and hugepages need requests == limits.
fn is_overcommit_allowed(name: &str) -> bool {
    is_native_resource(name) && !name.starts_with("hugepages-")
}

fn is_integer_resource(name: &str) -> bool {
    matches!(
        name,
        "pods"
            | "services"
            | "replicationcontrollers"
            | "resourcequotas"
            | "secrets"
            | "configmaps"
            | "persistentvolumeclaims"
            | "services.nodeports"
            | "services.loadbalancers"
    ) || is_extended_resource_name(name)
}

/// `validateContainerResourceName`. Resource names print unquoted because the Go type has a
/// `String()` method.
fn validate_container_resource_name(name: &str, p: &str) -> Vec<FieldError> {
    let errs = qualified_name_errors(name, p);
    if !errs.is_empty() {
        return errs;
    }
    if !name.contains('/') {
        if !is_standard_resource_name(name) {
            return vec![FieldError::invalid(
                p,
                Literal(name.to_string()),
                "must be a standard resource type or fully qualified",
            )];
        }
        let container_standard = matches!(name, "cpu" | "memory" | "ephemeral-storage")
            || name.starts_with("hugepages-");
        if !container_standard {
            return vec![FieldError::invalid(
                p,
                Literal(name.to_string()),
                "must be a standard resource for containers",
            )];
        }
    } else if !is_native_resource(name) && !is_extended_resource_name(name) {
        return vec![FieldError::invalid(
            p,
            Literal(name.to_string()),
            "doesn't follow extended resource name standard",
        )];
    }
    Vec::new()
}

/// `ValidateResourceQuantityValue`; `None` (with an error) when the text is not a quantity.
fn validate_quantity_value(
    name: &str,
    q: &Quantity,
    p: &str,
    errs: &mut Vec<FieldError>,
) -> Option<i128> {
    let Some(milli) = parse_quantity(&q.0) else {
        // Upstream never gets here: the JSON decoder rejects the request with a 400.
        errs.push(FieldError::invalid(p, &q.0, QUANTITY_SYNTAX_ERROR));
        return None;
    };
    if milli < 0 {
        errs.push(FieldError::invalid(
            p,
            &q.0,
            "must be greater than or equal to 0",
        ));
    }
    if is_integer_resource(name) && milli % 1000 != 0 {
        errs.push(FieldError::invalid(
            p,
            Literal(q.0.clone()),
            "must be an integer",
        ));
    }
    Some(milli)
}

/// `validateResourceRequirements` for containers (and pod overhead). Quantities are echoed as
/// written rather than in upstream's canonical form (the shared quantity type will fix that).
fn validate_resources(
    r: &ResourceRequirements,
    ctx: &PodContext<'_>,
    path: &str,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let lim_path = child(path, "limits");
    let req_path = child(path, "requests");
    let empty = BTreeMap::new();
    let limits = r.limits.as_ref().unwrap_or(&empty);
    let requests = r.requests.as_ref().unwrap_or(&empty);
    let (mut lim_cpu_mem, mut req_cpu_mem, mut hugepages) = (false, false, false);
    let mut limit_values = BTreeMap::new();
    for (name, q) in limits {
        let p = key(&lim_path, name);
        errs.extend(validate_container_resource_name(name, &p));
        if let Some(v) = validate_quantity_value(name, q, &p, &mut errs) {
            limit_values.insert(name.as_str(), v);
        }
        hugepages |= name.starts_with("hugepages-");
        lim_cpu_mem |= name == "cpu" || name == "memory";
    }
    for (name, q) in requests {
        let p = key(&req_path, name);
        errs.extend(validate_container_resource_name(name, &p));
        let value = validate_quantity_value(name, q, &p, &mut errs);
        if let Some(limit_q) = limits.get(name) {
            if let (Some(v), Some(l)) = (value, limit_values.get(name.as_str())) {
                if v != *l && !is_overcommit_allowed(name) {
                    errs.push(FieldError::invalid(
                        &req_path,
                        &q.0,
                        format!("must be equal to {name} limit of {}", limit_q.0),
                    ));
                } else if v > *l {
                    errs.push(FieldError::invalid(
                        &req_path,
                        &q.0,
                        format!(
                            "must be less than or equal to {name} limit of {}",
                            limit_q.0
                        ),
                    ));
                }
            }
        } else if !is_overcommit_allowed(name) {
            errs.push(FieldError::required(
                &lim_path,
                "Limit must be set for non overcommitable resources",
            ));
        }
        hugepages |= name.starts_with("hugepages-");
        req_cpu_mem |= name == "cpu" || name == "memory";
    }
    if !lim_cpu_mem && !req_cpu_mem && hugepages {
        errs.push(FieldError::forbidden(
            path,
            "HugePages require cpu or memory",
        ));
    }
    let mut claims = BTreeSet::new();
    for (i, claim) in slice(&r.claims).iter().enumerate() {
        let p = index(&child(path, "claims"), i);
        if claim.name.is_empty() {
            errs.push(FieldError::required(p, ""));
            continue;
        }
        if !claims.insert(claim.name.as_str()) {
            errs.push(FieldError::duplicate(&p, &claim.name));
        }
        if !ctx.claim_names.contains(claim.name.as_str()) {
            let known: Vec<&str> = ctx.claim_names.iter().copied().collect();
            let detail = if known.is_empty() {
                "must be one of the names in pod.spec.resourceClaims which is empty".to_string()
            } else {
                format!(
                    "must be one of the names in pod.spec.resourceClaims: {}",
                    known.join(", ")
                )
            };
            errs.push(FieldError::not_found(&p, &claim.name).with_detail(detail));
        }
    }
    errs
}

/// `validateResizePolicy`.
fn validate_resize_policy(c: &Container, p: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, rp) in slice(&c.resize_policy).iter().enumerate() {
        if !seen.insert(rp.resource_name.as_str()) {
            errs.push(FieldError::duplicate(
                index(p, i),
                Literal(rp.resource_name.clone()),
            ));
        }
        match rp.resource_name.as_str() {
            "cpu" | "memory" => {}
            "" => errs.push(FieldError::required(p, "")),
            other => errs.push(FieldError::not_supported(
                p,
                Literal(other.to_string()),
                &["cpu", "memory"],
            )),
        }
        match rp.restart_policy.as_str() {
            "NotRequired" | "RestartContainer" => {}
            "" => errs.push(FieldError::required(p, "")),
            other => errs.push(FieldError::not_supported(
                p,
                other,
                &["NotRequired", "RestartContainer"],
            )),
        }
    }
    errs
}

// ---- probes and handlers --------------------------------------------------------------------

fn validate_probes(c: &Container, grace: Option<i64>, p: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if let Some(probe) = &c.liveness_probe {
        let pp = child(p, "livenessProbe");
        errs.extend(validate_probe(probe, grace, &pp));
        if probe.success_threshold.unwrap_or(0) != 1 {
            errs.push(FieldError::invalid(
                child(&pp, "successThreshold"),
                probe.success_threshold.unwrap_or(0),
                "must be 1",
            ));
        }
    }
    if let Some(probe) = &c.readiness_probe {
        let pp = child(p, "readinessProbe");
        errs.extend(validate_probe(probe, grace, &pp));
        if let Some(t) = probe.termination_grace_period_seconds {
            errs.push(FieldError::invalid(
                child(&pp, "terminationGracePeriodSeconds"),
                t,
                "must not be set for readinessProbes",
            ));
        }
    }
    if let Some(probe) = &c.startup_probe {
        let pp = child(p, "startupProbe");
        errs.extend(validate_probe(probe, grace, &pp));
        if probe.success_threshold.unwrap_or(0) != 1 {
            errs.push(FieldError::invalid(
                child(&pp, "successThreshold"),
                probe.success_threshold.unwrap_or(0),
                "must be 1",
            ));
        }
    }
    errs
}

/// `validateProbe`: exactly one handler, non-negative timings, positive probe-level grace.
fn validate_probe(probe: &Probe, grace: Option<i64>, p: &str) -> Vec<FieldError> {
    let handlers = Handlers {
        exec: probe.exec.as_ref().map(|e| slice(&e.command).is_empty()),
        http_get: probe.http_get.as_ref(),
        tcp_port: probe.tcp_socket.as_ref().map(|t| &t.port),
        grpc_port: probe.grpc.as_ref().map(|g| g.port),
        sleep_seconds: None,
    };
    let mut errs = validate_handler(&handlers, grace, p);
    for (name, v) in [
        ("initialDelaySeconds", probe.initial_delay_seconds),
        ("timeoutSeconds", probe.timeout_seconds),
        ("periodSeconds", probe.period_seconds),
        ("successThreshold", probe.success_threshold),
        ("failureThreshold", probe.failure_threshold),
    ] {
        let v = i64::from(v.unwrap_or(0));
        if v < 0 {
            errs.push(FieldError::invalid(
                child(p, name),
                v,
                "must be greater than or equal to 0",
            ));
        }
    }
    if let Some(t) = probe.termination_grace_period_seconds {
        if t <= 0 {
            errs.push(FieldError::invalid(
                child(p, "terminationGracePeriodSeconds"),
                t,
                "must be greater than 0",
            ));
        }
    }
    errs
}

fn validate_lifecycle(
    l: &k8s_openapi::api::core::v1::Lifecycle,
    grace: Option<i64>,
    p: &str,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    for (h, name) in [(&l.post_start, "postStart"), (&l.pre_stop, "preStop")] {
        if let Some(h) = h {
            errs.extend(validate_handler(&handlers_of(h), grace, &child(p, name)));
        }
    }
    errs
}

/// The union of probe and lifecycle handler kinds, as upstream's `commonHandler`.
struct Handlers<'a> {
    /// `Some(command_is_empty)` when an exec action is present.
    exec: Option<bool>,
    http_get: Option<&'a HTTPGetAction>,
    tcp_port: Option<&'a IntOrString>,
    grpc_port: Option<i32>,
    sleep_seconds: Option<i64>,
}

fn handlers_of(h: &LifecycleHandler) -> Handlers<'_> {
    Handlers {
        exec: h.exec.as_ref().map(|e| slice(&e.command).is_empty()),
        http_get: h.http_get.as_ref(),
        tcp_port: h.tcp_socket.as_ref().map(|t| &t.port),
        grpc_port: None,
        sleep_seconds: h.sleep.as_ref().map(|s| s.seconds),
    }
}

/// `validateHandler`: exactly one handler type.
fn validate_handler(h: &Handlers<'_>, grace: Option<i64>, p: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut n = 0;
    let mut take = |name: &str, errs: &mut Vec<FieldError>| {
        if n > 0 {
            errs.push(FieldError::forbidden(
                child(p, name),
                "may not specify more than 1 handler type",
            ));
            false
        } else {
            n += 1;
            true
        }
    };
    if let Some(command_empty) = h.exec {
        if take("exec", &mut errs) && command_empty {
            errs.push(FieldError::required(format!("{p}.exec.command"), ""));
        }
    }
    if let Some(g) = h.http_get {
        if take("httpGet", &mut errs) {
            let gp = child(p, "httpGet");
            if is_empty(&g.path) {
                errs.push(FieldError::required(child(&gp, "path"), ""));
            }
            errs.extend(port_num_or_name(&g.port, &child(&gp, "port")));
            let scheme = s(&g.scheme);
            if scheme != "HTTP" && scheme != "HTTPS" {
                errs.push(FieldError::not_supported(
                    child(&gp, "scheme"),
                    scheme,
                    &["HTTP", "HTTPS"],
                ));
            }
            for header in slice(&g.http_headers) {
                for m in is_http_header_name(&header.name) {
                    errs.push(FieldError::invalid(
                        child(&gp, "httpHeaders"),
                        &header.name,
                        m,
                    ));
                }
            }
        }
    }
    if let Some(port) = h.tcp_port {
        if take("tcpSocket", &mut errs) {
            errs.extend(port_num_or_name(port, &format!("{p}.tcpSocket.port")));
        }
    }
    if let Some(port) = h.grpc_port {
        if take("grpc", &mut errs) {
            errs.extend(port_num_or_name(
                &IntOrString::Int(port),
                &format!("{p}.grpc.port"),
            ));
        }
    }
    if let Some(secs) = h.sleep_seconds {
        if take("sleep", &mut errs) {
            if let Some(g) = grace {
                if secs <= 0 || secs > g {
                    errs.push(FieldError::invalid(
                        child(p, "sleep"),
                        secs,
                        format!("must be greater than 0 and less than terminationGracePeriodSeconds ({g}). Enable AllowPodLifecycleSleepActionZeroValue feature gate for zero sleep."),
                    ));
                }
            }
        }
    }
    if n == 0 {
        errs.push(FieldError::required(p, "must specify a handler type"));
    }
    errs
}

/// `ValidatePortNumOrName`.
fn port_num_or_name(port: &IntOrString, p: &str) -> Vec<FieldError> {
    match port {
        IntOrString::Int(n) => is_valid_port_num(i64::from(*n))
            .into_iter()
            .map(|m| FieldError::invalid(p, *n, m))
            .collect(),
        IntOrString::String(name) => is_valid_port_name(name)
            .into_iter()
            .map(|m| FieldError::invalid(p, name, m))
            .collect(),
    }
}

// =============================================================================================
// Update validation.
// =============================================================================================

/// `ValidatePodUpdate`: the new pod must itself be valid, metadata identity is immutable, and of
/// the spec only images, a shortened/added `activeDeadlineSeconds`, added tolerations, removed
/// scheduling gates, `terminationGracePeriodSeconds` going from negative to 1 and (while gated)
/// added nodeSelector entries may change.
///
/// Deviation: upstream appends a `cmp.Diff` of the old and new spec after the sentence in
/// [`POD_UPDATE_FORBIDDEN_MESSAGE`]; we keep the newline but omit the Go-specific diff.
/// Deviation: the "resourceVersion must be specified" check is left to the generic store.
pub fn validate_pod_update(new: &Pod, old: &Pod) -> Vec<FieldError> {
    let mut errs = validate_object_meta_update(&new.metadata, &old.metadata);
    errs.extend(validate_pod_metadata_and_spec(new));
    errs.extend(validate_mirror_annotation_update(new, old));
    let (new_spec, old_spec) = (spec_of(new), spec_of(old));

    for (new_list, old_list, path) in [
        (
            &new_spec.containers[..],
            &old_spec.containers[..],
            "spec.containers",
        ),
        (
            slice(&new_spec.init_containers),
            slice(&old_spec.init_containers),
            "spec.initContainers",
        ),
    ] {
        if new_list.len() != old_list.len() {
            errs.push(FieldError::forbidden(
                path,
                "pod updates may not add or remove containers",
            ));
            return errs;
        }
        for (i, c) in new_list.iter().enumerate() {
            let image = s(&c.image);
            let p = format!("{path}[{i}].image");
            if image.is_empty() {
                errs.push(FieldError::required(&p, ""));
            }
            if image.trim().len() != image.len() {
                errs.push(FieldError::invalid(
                    &p,
                    image,
                    "must not have leading or trailing whitespace",
                ));
            }
        }
    }

    match (
        new_spec.active_deadline_seconds,
        old_spec.active_deadline_seconds,
    ) {
        (Some(n), old_value) => {
            if !(0..=MAX_INT32).contains(&n) {
                errs.push(FieldError::invalid(
                    "spec.activeDeadlineSeconds",
                    n,
                    inclusive_range_error(0, MAX_INT32),
                ));
                return errs;
            }
            if old_value.is_some_and(|o| o < n) {
                errs.push(FieldError::invalid(
                    "spec.activeDeadlineSeconds",
                    n,
                    "must be less than or equal to previous value",
                ));
                return errs;
            }
        }
        (None, Some(_)) => errs.push(FieldError::invalid(
            "spec.activeDeadlineSeconds",
            None::<i64>,
            "must not update from a positive integer to nil value",
        )),
        (None, None) => {}
    }

    errs.extend(validate_only_added_tolerations(
        slice(&new_spec.tolerations),
        slice(&old_spec.tolerations),
    ));
    errs.extend(validate_only_deleted_scheduling_gates(new_spec, old_spec));

    // Munge the mutable fields back to their old values; anything still different is forbidden.
    let mut munged = new_spec.clone();
    for (c, o) in munged.containers.iter_mut().zip(&old_spec.containers) {
        c.image = o.image.clone();
    }
    for (c, o) in munged
        .init_containers
        .iter_mut()
        .flatten()
        .zip(slice(&old_spec.init_containers))
    {
        c.image = o.image.clone();
    }
    munged.active_deadline_seconds = old_spec.active_deadline_seconds;
    munged.scheduling_gates = old_spec.scheduling_gates.clone();
    munged.tolerations = old_spec.tolerations.clone();
    if old_spec
        .termination_grace_period_seconds
        .is_some_and(|g| g < 0)
        && munged.termination_grace_period_seconds == Some(1)
    {
        munged.termination_grace_period_seconds = old_spec.termination_grace_period_seconds;
    }
    if !slice(&old_spec.scheduling_gates).is_empty() {
        let empty = BTreeMap::new();
        let new_sel = munged.node_selector.as_ref().unwrap_or(&empty);
        let old_sel = old_spec.node_selector.as_ref().unwrap_or(&empty);
        if new_sel != old_sel {
            if old_sel.iter().any(|(k, v)| new_sel.get(k) != Some(v)) {
                errs.push(FieldError::invalid(
                    "spec.nodeSelector",
                    Literal(go_string_map(new_sel)),
                    "only additions to spec.nodeSelector are allowed (no mutations or deletions)",
                ));
            }
            munged.node_selector = old_spec.node_selector.clone();
        }
    }
    if !specs_semantically_equal(&munged, old_spec) {
        // Upstream: "...%s\n%v" with the spec diff; the diff is omitted here.
        errs.push(FieldError::forbidden(
            "spec",
            format!("{POD_UPDATE_FORBIDDEN_MESSAGE}\n"),
        ));
    }
    errs
}

/// The mirror-pod annotation may be neither added, changed nor removed.
fn validate_mirror_annotation_update(new: &Pod, old: &Pod) -> Vec<FieldError> {
    let get = |p: &Pod| {
        p.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(MIRROR_POD_ANNOTATION).cloned())
    };
    let p = key("metadata.annotations", MIRROR_POD_ANNOTATION);
    match (get(new), get(old)) {
        (Some(n), Some(o)) if n != o => vec![FieldError::forbidden(
            p,
            "may not remove or update mirror pod annotation",
        )],
        (None, Some(_)) => vec![FieldError::forbidden(
            p,
            "may not remove or update mirror pod annotation",
        )],
        (Some(_), None) => vec![FieldError::forbidden(
            p,
            "may not add mirror pod annotation",
        )],
        _ => Vec::new(),
    }
}

/// `validateOnlyAddedTolerations`: every old toleration must still be present (its
/// `tolerationSeconds` may change), then the new list is validated.
fn validate_only_added_tolerations(new: &[Toleration], old: &[Toleration]) -> Vec<FieldError> {
    let same = |a: &Toleration, b: &Toleration| {
        s(&a.key) == s(&b.key)
            && s(&a.operator) == s(&b.operator)
            && s(&a.value) == s(&b.value)
            && s(&a.effect) == s(&b.effect)
    };
    for o in old {
        if !new.iter().any(|n| same(o, n)) {
            return vec![FieldError::forbidden(
                "spec.tolerations",
                "existing toleration can not be modified except its tolerationSeconds",
            )];
        }
    }
    validate_tolerations(new, "spec.tolerations")
}

/// `validateOnlyDeletedSchedulingGates`.
fn validate_only_deleted_scheduling_gates(new: &PodSpec, old: &PodSpec) -> Vec<FieldError> {
    let old_names: BTreeSet<&str> = slice(&old.scheduling_gates)
        .iter()
        .map(|g| g.name.as_str())
        .collect();
    // Upstream collects new gates in a map (last index wins) and iterates it; we sort by name.
    let mut added: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, g) in slice(&new.scheduling_gates).iter().enumerate() {
        added.insert(g.name.as_str(), i);
    }
    added
        .into_iter()
        .filter(|(name, _)| !old_names.contains(name))
        .map(|(name, i)| {
            FieldError::forbidden(
                format!("spec.schedulingGates[{i}].name"),
                format!("only deletion is allowed, but found new scheduling gate '{name}'"),
            )
        })
        .collect()
}

/// Keys whose JSON value is a Go map (so `{}` equals absent under `Semantic.DeepEqual`).
const MAP_KEYS: [&str; 8] = [
    "nodeSelector",
    "overhead",
    "limits",
    "requests",
    "options",
    "volumeAttributes",
    "matchLabels",
    "labels",
];
/// Keys whose Go field is a pointer, so a zero value is distinct from absent.
const POINTER_KEYS: [&str; 27] = [
    "terminationGracePeriodSeconds",
    "activeDeadlineSeconds",
    "automountServiceAccountToken",
    "enableServiceLinks",
    "priority",
    "preemptionPolicy",
    "runtimeClassName",
    "shareProcessNamespace",
    "setHostnameAsFQDN",
    "hostUsers",
    "runAsUser",
    "runAsGroup",
    "runAsNonRoot",
    "fsGroup",
    "fsGroupChangePolicy",
    "privileged",
    "readOnlyRootFilesystem",
    "allowPrivilegeEscalation",
    "procMount",
    "defaultMode",
    "mode",
    "optional",
    "restartPolicy",
    "type",
    "service",
    "expirationSeconds",
    "sizeLimit",
];

/// `apiequality.Semantic.DeepEqual` on pod specs, approximated over JSON: nil and empty
/// slices/maps are equal, zero scalars equal absent for non-pointer Go fields, and quantities
/// compare by value. The deprecated `serviceAccount` alias is not part of the internal type.
fn specs_semantically_equal(a: &PodSpec, b: &PodSpec) -> bool {
    let norm = |spec: &PodSpec| {
        let mut v = serde_json::to_value(spec).unwrap_or(serde_json::Value::Null);
        if let Some(obj) = v.as_object_mut() {
            obj.remove("serviceAccount");
        }
        normalize_json(&mut v, None);
        v
    };
    norm(a) == norm(b)
}

fn normalize_json(v: &mut serde_json::Value, parent_key: Option<&str>) {
    use serde_json::Value;
    match v {
        Value::Object(obj) => {
            let quantity_map = matches!(parent_key, Some("limits" | "requests" | "overhead"));
            for (k, child_v) in obj.iter_mut() {
                if quantity_map || k == "sizeLimit" || k == "divisor" {
                    if let Value::String(q) = child_v {
                        *q = quantity_key(q);
                    }
                }
                normalize_json(child_v, Some(k));
            }
            obj.retain(|k, child_v| {
                let pointer = POINTER_KEYS.contains(&k.as_str());
                match child_v {
                    Value::Null => false,
                    Value::Array(a) => !a.is_empty(),
                    Value::Object(o) => !(o.is_empty() && MAP_KEYS.contains(&k.as_str())),
                    Value::String(s) => pointer || !s.is_empty(),
                    Value::Bool(b) => pointer || *b,
                    Value::Number(n) => pointer || n.as_f64() != Some(0.0),
                }
            });
        }
        Value::Array(items) => {
            for item in items {
                normalize_json(item, parent_key);
            }
        }
        _ => {}
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

// =============================================================================================
// QoS class.
// =============================================================================================

/// `ComputePodQOS` (v1.32, pod-level resources off): Guaranteed when every container has
/// non-zero cpu and memory limits and the summed requests equal the summed limits; BestEffort
/// when nothing requests or limits cpu/memory; Burstable otherwise.
pub fn pod_qos_class(pod: &Pod) -> &'static str {
    let spec = spec_of(pod);
    let mut requests: BTreeMap<&str, i128> = BTreeMap::new();
    let mut limits: BTreeMap<&str, i128> = BTreeMap::new();
    let mut guaranteed = true;
    for c in spec.containers.iter().chain(slice(&spec.init_containers)) {
        let r = c.resources.as_ref();
        for (name, q) in r.and_then(|r| r.requests.as_ref()).into_iter().flatten() {
            if name == "cpu" || name == "memory" {
                if let Some(v) = parse_quantity(&q.0).filter(|v| *v > 0) {
                    let e = requests.entry(name.as_str()).or_insert(0);
                    *e = e.saturating_add(v);
                }
            }
        }
        let mut found = BTreeSet::new();
        for (name, q) in r.and_then(|r| r.limits.as_ref()).into_iter().flatten() {
            if name == "cpu" || name == "memory" {
                if let Some(v) = parse_quantity(&q.0).filter(|v| *v > 0) {
                    found.insert(name.as_str());
                    let e = limits.entry(name.as_str()).or_insert(0);
                    *e = e.saturating_add(v);
                }
            }
        }
        if found.len() < 2 {
            guaranteed = false;
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return "BestEffort";
    }
    if guaranteed
        && requests.iter().all(|(k, v)| limits.get(k) == Some(v))
        && requests.len() == limits.len()
    {
        return "Guaranteed";
    }
    "Burstable"
}

// =============================================================================================
// Field selectors.
// =============================================================================================

/// `pod.ToSelectableFields`: the fields `?fieldSelector=` may use on pods. `None` for any other
/// field, which upstream rejects as "field label not supported".
pub fn pod_selectable_field(pod: &Pod, field: &str) -> Option<String> {
    let spec = spec_of(pod);
    let status = pod.status.as_ref();
    let value = match field {
        "metadata.name" => s(&pod.metadata.name).to_string(),
        "metadata.namespace" => s(&pod.metadata.namespace).to_string(),
        "spec.nodeName" => s(&spec.node_name).to_string(),
        "spec.restartPolicy" => s(&spec.restart_policy).to_string(),
        "spec.schedulerName" => s(&spec.scheduler_name).to_string(),
        "spec.serviceAccountName" => s(&spec.service_account_name).to_string(),
        "spec.hostNetwork" => spec.host_network.unwrap_or(false).to_string(),
        "status.phase" => status
            .map(|st| s(&st.phase).to_string())
            .unwrap_or_default(),
        "status.podIP" => pod_ip(pod).to_string(),
        "status.nominatedNodeName" => status
            .map(|st| s(&st.nominated_node_name).to_string())
            .unwrap_or_default(),
        _ => return None,
    };
    Some(value)
}

/// The primary pod IP: `podIPs[0]`, falling back to the legacy `podIP` (v1 conversion).
fn pod_ip(pod: &Pod) -> &str {
    let Some(st) = pod.status.as_ref() else {
        return "";
    };
    match slice(&st.pod_ips).first() {
        Some(ip) => ip.ip.as_str(),
        None => s(&st.pod_ip),
    }
}

// =============================================================================================
// Table printing (`kubectl get pods`).
// =============================================================================================

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
const NAME_DOC: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const CREATION_TIMESTAMP_DOC: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
const POD_IP_DOC: &str = "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.";
const NODE_NAME_DOC: &str = "NodeName indicates in which node this pod is scheduled. If empty, this pod is a candidate for scheduling by the scheduler defined in schedulerName. Once this field is set, the kubelet for this node becomes responsible for the lifecycle of this pod. This field should not be used to express a desire for the pod to be scheduled on a specific node. https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#nodename";
const NOMINATED_NODE_DOC: &str = "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods. This field does not guarantee that the pod will be scheduled on this node. Scheduler may decide to place the pod elsewhere if other nodes become available sooner. Scheduler may also decide to give the resources on this node to a higher priority pod that is created after preemption. As a result, this field may be different than PodSpec.nodeName when the pod is scheduled.";
const READINESS_GATES_DOC: &str = "If specified, all readiness gates will be evaluated for pod readiness. A pod is ready when all its containers are ready AND all conditions specified in the readiness gates have status equal to \"True\" More info: https://git.k8s.io/enhancements/keps/sig-network/580-pod-readiness-gates";

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

/// apimachinery `duration.HumanDuration`: about two significant units ("5s", "2m3s", "3h",
/// "4d", "2y").
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs < 60 * 2 {
        return format!("{secs}s");
    }
    let minutes = secs / 60;
    if minutes < 10 {
        let s = secs % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = secs / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// `translateTimestampSince`: `<unknown>` for no timestamp; up to a second in the future reads
/// as `0s` (clock skew), further is `<invalid>`.
fn since(t: Option<&Time>, now: jiff::Timestamp) -> String {
    let Some(t) = t else {
        return "<unknown>".to_string();
    };
    let nanos = now.as_nanosecond() - t.0.as_nanosecond();
    // Go truncates toward zero when converting seconds to int.
    let secs = nanos / 1_000_000_000;
    if secs < -1 {
        "<invalid>".to_string()
    } else if nanos < 0 {
        "0s".to_string()
    } else {
        let secs = u64::try_from(secs).unwrap_or(u64::MAX);
        let sub = u32::try_from(nanos % 1_000_000_000).unwrap_or(0);
        human_duration(Duration::new(secs, sub))
    }
}

fn is_restartable_init(c: Option<&Container>) -> bool {
    c.is_some_and(|c| c.restart_policy.as_deref() == Some("Always"))
}

fn last_termination(cs: &ContainerStatus) -> Option<&Time> {
    cs.last_state
        .as_ref()?
        .terminated
        .as_ref()?
        .finished_at
        .as_ref()
}

fn later<'a>(current: Option<&'a Time>, candidate: Option<&'a Time>) -> Option<&'a Time> {
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
    use serde_json::json;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn pod_from(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).expect("test pod must deserialize")
    }

    /// The manifest from the brief, as `kubectl create -f` sends it.
    fn db_manifest() -> Pod {
        pod_from(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "db", "labels": {"type": "db", "vendor": "MongoLabs"}},
            "spec": {"containers": [{"name": "db", "image": "mongo:3.3", "command": ["mongod"], "args": ["--rest", "--httpinterface"]}]}
        }))
    }

    /// The db pod after defaulting and the store's namespace assignment: valid as is.
    fn valid_pod() -> Pod {
        let mut pod = db_manifest();
        default_pod(&mut pod);
        pod.metadata.namespace = Some("default".into());
        pod
    }

    fn spec_mut(pod: &mut Pod) -> &mut PodSpec {
        pod.spec.as_mut().expect("test pods have a spec")
    }

    fn container_mut(pod: &mut Pod) -> &mut Container {
        &mut spec_mut(pod).containers[0]
    }

    fn messages(errs: &[FieldError]) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }

    fn ts(s: &str) -> jiff::Timestamp {
        s.parse().expect("valid timestamp")
    }

    // ---- quantity stand-in ---------------------------------------------------------------

    #[test]
    fn parse_quantity_handles_suffixes_signs_and_garbage() {
        let cases: [(&str, Option<i128>); 20] = [
            ("1", Some(1000)),
            ("100m", Some(100)),
            ("0.5", Some(500)),
            (".5", Some(500)),
            ("1.5Gi", Some(1_610_612_736_000)),
            ("1Ki", Some(1_024_000)),
            ("1k", Some(1_000_000)),
            ("1e3", Some(1_000_000)),
            ("1E", Some(1_000_000_000_000_000_000_000)),
            ("-1", Some(-1000)),
            ("+2", Some(2000)),
            ("1n", Some(1)),
            ("0.0001", Some(1)),
            ("0", Some(0)),
            ("1K", None),
            ("", None),
            ("1e", None),
            ("abc", None),
            ("1 Ki", None),
            ("1.2.3", None),
        ];
        for (input, want) in cases {
            assert_eq!(parse_quantity(input), want, "input {input:?}");
        }
        // Absurd values saturate instead of panicking.
        assert_eq!(parse_quantity("1e400"), Some(i128::MAX));
        assert!(parse_quantity(&format!("{}Ei", "9".repeat(60))).is_some());
        assert_eq!(parse_quantity("1e-400"), Some(1));
        // A saturated mantissa with a negative scale must round up without overflowing.
        assert!(parse_quantity(&format!("1.{}1Ei", "0".repeat(36))).is_some_and(|v| v > 0));
        assert!(parse_quantity(&format!("{}.{}1Ei", "9".repeat(30), "0".repeat(30))).is_some());
        assert_eq!(parse_quantity(&format!("0.{}1", "0".repeat(80))), Some(1));
    }

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
            default_pod(&mut pod);
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
        default_pod(&mut explicit);
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
        default_pod(&mut pod);
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
        default_pod(&mut pod);
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
        default_pod(&mut pod);
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
            default_pod(&mut pod);
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
        default_pod(&mut pod);
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
        default_pod(&mut pod);
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
        default_pod(&mut pod);
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
        default_pod(&mut legacy);
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
        default_pod(&mut mirror);
        assert_eq!(spec_mut(&mut mirror).service_account_name, None);

        let mut critical = pod_from(
            json!({"spec": {"priorityClassName": "system-node-critical", "containers": [{"name": "c", "image": "x"}]}}),
        );
        default_pod(&mut critical);
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
        default_pod(&mut pod);
        let spec = serde_json::to_value(&pod.spec).expect("serializes");
        assert_eq!(
            spec["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
                [0]["labelSelector"]["matchExpressions"],
            json!([{"key": "track", "operator": "In", "values": ["canary"]}, {"key": "app", "operator": "NotIn", "values": ["web"]}])
        );
    }

    #[test]
    fn defaulting_for_update_keeps_stored_status() {
        let old = valid_pod();
        let mut new = db_manifest();
        new.metadata.namespace = Some("default".into());
        new.status = Some(PodStatus {
            phase: Some("Failed".into()),
            ..Default::default()
        });
        default_pod_for_update(&mut new, &old);
        assert_eq!(new.status, old.status);
    }

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
            ("ephemeral on create", |p| spec_mut(p).ephemeral_containers = Some(vec![Default::default()]), &["spec.ephemeralContainers: Forbidden: cannot be set on create"]),
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
            let probe: Probe = serde_json::from_value(v).expect("probe");
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
            default_pod(&mut pod);
            let _ = validate_pod(&pod);
            let _ = validate_pod_update(&pod, &valid_pod());
            let _ = pod_table_row(&pod, ts("2024-01-01T00:00:00Z"));
            let _ = pod_warnings(&pod);
            let _ = pod_qos_class(&pod);
        }
        // A pod with no spec at all.
        let mut bare = Pod::default();
        let _ = validate_pod(&bare);
        default_pod(&mut bare);
        assert_eq!(
            messages(&validate_pod(&bare))[0],
            "metadata.name: Required value: name or generateName is required"
        );
    }

    // ---- update validation ------------------------------------------------------------------

    fn update_errors(mutate: impl FnOnce(&mut Pod), old: &Pod) -> Vec<String> {
        let mut new = old.clone();
        mutate(&mut new);
        messages(&validate_pod_update(&new, old))
    }

    fn forbidden() -> String {
        format!("spec: Forbidden: {POD_UPDATE_FORBIDDEN_MESSAGE}\n")
    }

    #[test]
    fn update_allows_image_changes() {
        let old = valid_pod();
        assert!(
            update_errors(|p| container_mut(p).image = Some("mongo:3.4".into()), &old).is_empty()
        );
        assert_eq!(
            update_errors(|p| container_mut(p).image = Some(String::new()), &old),
            vec![
                "spec.containers[0].image: Required value".to_string(),
                "spec.containers[0].image: Required value".to_string()
            ]
        );
    }

    #[test]
    fn update_rejects_other_spec_changes_with_upstream_message() {
        let old = valid_pod();
        assert_eq!(
            POD_UPDATE_FORBIDDEN_MESSAGE,
            "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"
        );
        let cases: [fn(&mut Pod); 4] = [
            |p| container_mut(p).args = Some(vec!["--other".into()]),
            |p| spec_mut(p).restart_policy = Some("Never".into()),
            |p| spec_mut(p).termination_grace_period_seconds = Some(10),
            |p| {
                spec_mut(p).node_selector =
                    Some(BTreeMap::from([("a".to_string(), "b".to_string())]))
            },
        ];
        for mutate in cases {
            assert_eq!(update_errors(mutate, &old), vec![forbidden()]);
        }
    }

    #[test]
    fn update_treats_empty_and_absent_as_equal() {
        let old = valid_pod();
        let cases: [fn(&mut Pod); 5] = [
            |p| spec_mut(p).volumes = Some(vec![]),
            |p| spec_mut(p).host_network = Some(false),
            |p| spec_mut(p).node_selector = Some(BTreeMap::new()),
            |p| spec_mut(p).service_account = None,
            |p| container_mut(p).working_dir = Some(String::new()),
        ];
        for mutate in cases {
            assert!(update_errors(mutate, &old).is_empty());
        }
        let mut with_limits = valid_pod();
        container_mut(&mut with_limits).resources = Some(
            serde_json::from_value(json!({"limits": {"cpu": "1"}, "requests": {"cpu": "1"}}))
                .expect("resources"),
        );
        let canonical = |p: &mut Pod| {
            container_mut(p).resources = Some(
                serde_json::from_value(
                    json!({"limits": {"cpu": "1000m"}, "requests": {"cpu": "1"}}),
                )
                .expect("resources"),
            );
        };
        assert!(update_errors(canonical, &with_limits).is_empty());
    }

    #[test]
    fn update_keeps_metadata_identity_immutable() {
        let mut old = valid_pod();
        old.metadata.uid = Some("u1".into());
        assert_eq!(
            update_errors(|p| p.metadata.name = Some("other".into()), &old),
            vec!["metadata.name: Invalid value: \"other\": field is immutable".to_string()]
        );
        assert_eq!(
            update_errors(|p| p.metadata.namespace = Some("kube-system".into()), &old),
            vec![
                "metadata.namespace: Invalid value: \"kube-system\": field is immutable"
                    .to_string()
            ]
        );
        assert_eq!(
            update_errors(|p| p.metadata.uid = Some("u2".into()), &old),
            vec!["metadata.uid: Invalid value: \"u2\": field is immutable".to_string()]
        );
        assert!(update_errors(
            |p| {
                p.metadata
                    .labels
                    .get_or_insert_with(BTreeMap::new)
                    .insert("new".into(), "label".into());
            },
            &old
        )
        .is_empty());
    }

    #[test]
    fn update_limits_active_deadline_changes() {
        let old = valid_pod();
        assert!(
            update_errors(|p| spec_mut(p).active_deadline_seconds = Some(100), &old).is_empty()
        );
        let mut with_deadline = valid_pod();
        spec_mut(&mut with_deadline).active_deadline_seconds = Some(100);
        assert!(update_errors(
            |p| spec_mut(p).active_deadline_seconds = Some(50),
            &with_deadline
        )
        .is_empty());
        assert_eq!(
            update_errors(|p| spec_mut(p).active_deadline_seconds = Some(200), &with_deadline),
            vec!["spec.activeDeadlineSeconds: Invalid value: 200: must be less than or equal to previous value".to_string()]
        );
        assert_eq!(
            update_errors(|p| spec_mut(p).active_deadline_seconds = None, &with_deadline),
            vec!["spec.activeDeadlineSeconds: Invalid value: null: must not update from a positive integer to nil value".to_string()]
        );
    }

    #[test]
    fn update_allows_only_added_tolerations() {
        let old = valid_pod();
        assert!(update_errors(
            |p| {
                spec_mut(p)
                    .tolerations
                    .get_or_insert_with(Vec::new)
                    .push(Toleration {
                        key: Some("k".into()),
                        operator: Some("Exists".into()),
                        ..Default::default()
                    });
            },
            &old
        )
        .is_empty());
        assert!(update_errors(
            |p| {
                if let Some(t) = spec_mut(p).tolerations.as_mut() {
                    t[0].toleration_seconds = Some(10);
                }
            },
            &old
        )
        .is_empty());
        assert_eq!(
            update_errors(|p| spec_mut(p).tolerations = None, &old),
            vec!["spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds".to_string()]
        );
    }

    #[test]
    fn update_allows_grace_period_from_negative_to_one() {
        let mut old = valid_pod();
        spec_mut(&mut old).termination_grace_period_seconds = Some(-1);
        assert!(update_errors(
            |p| spec_mut(p).termination_grace_period_seconds = Some(1),
            &old
        )
        .is_empty());
        assert_eq!(
            update_errors(
                |p| spec_mut(p).termination_grace_period_seconds = Some(2),
                &old
            ),
            vec![forbidden()]
        );
    }

    #[test]
    fn update_rejects_adding_containers() {
        let old = valid_pod();
        let errs = update_errors(
            |p| {
                let mut c = spec_mut(p).containers[0].clone();
                c.name = "two".into();
                spec_mut(p).containers.push(c);
            },
            &old,
        );
        assert_eq!(
            errs,
            vec![
                "spec.containers: Forbidden: pod updates may not add or remove containers"
                    .to_string()
            ]
        );
    }

    #[test]
    fn update_handles_scheduling_gates_and_gated_node_selectors() {
        let mut gated = valid_pod();
        spec_mut(&mut gated).scheduling_gates =
            Some(vec![k8s_openapi::api::core::v1::PodSchedulingGate {
                name: "example.com/a".into(),
            }]);
        spec_mut(&mut gated).node_selector =
            Some(BTreeMap::from([("zone".to_string(), "a".to_string())]));
        assert!(update_errors(|p| spec_mut(p).scheduling_gates = None, &gated).is_empty());
        assert!(update_errors(
            |p| {
                spec_mut(p)
                    .node_selector
                    .get_or_insert_with(BTreeMap::new)
                    .insert("disk".into(), "ssd".into());
            },
            &gated
        )
        .is_empty());
        assert_eq!(
            update_errors(|p| spec_mut(p).node_selector = Some(BTreeMap::from([("zone".to_string(), "b".to_string())])), &gated),
            vec!["spec.nodeSelector: Invalid value: map[string]string{\"zone\":\"b\"}: only additions to spec.nodeSelector are allowed (no mutations or deletions)".to_string()]
        );
        assert_eq!(
            update_errors(|p| {
                spec_mut(p).scheduling_gates.get_or_insert_with(Vec::new).push(k8s_openapi::api::core::v1::PodSchedulingGate { name: "example.com/b".into() });
            }, &gated),
            vec!["spec.schedulingGates[1].name: Forbidden: only deletion is allowed, but found new scheduling gate 'example.com/b'".to_string()]
        );
    }

    // ---- QoS and selectors --------------------------------------------------------------------

    #[test]
    fn qos_class_follows_requests_and_limits() {
        let cases = [
            (
                json!([{"name": "a", "image": "x"}]),
                json!([]),
                "BestEffort",
            ),
            (
                json!([{"name": "a", "image": "x", "resources": {"requests": {"cpu": "100m"}}}]),
                json!([]),
                "Burstable",
            ),
            (
                json!([{"name": "a", "image": "x", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1", "memory": "1Gi"}}}]),
                json!([]),
                "Guaranteed",
            ),
            (
                json!([{"name": "a", "image": "x", "resources": {"limits": {"cpu": "1"}, "requests": {"cpu": "1"}}}]),
                json!([]),
                "Burstable",
            ),
            (
                json!([{"name": "a", "image": "x", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m", "memory": "1Gi"}}}]),
                json!([]),
                "Burstable",
            ),
            (
                json!([{"name": "a", "image": "x", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1", "memory": "1Gi"}}}]),
                json!([{"name": "i", "image": "x"}]),
                "Burstable",
            ),
            (
                json!([{"name": "a", "image": "x", "resources": {"requests": {"example.com/gpu": "1"}}}]),
                json!([]),
                "BestEffort",
            ),
            (
                json!([{"name": "a", "image": "x", "resources": {"requests": {"cpu": "0"}}}]),
                json!([]),
                "BestEffort",
            ),
        ];
        for (containers, inits, want) in cases {
            let pod = pod_from(
                json!({"spec": {"containers": containers.clone(), "initContainers": inits}}),
            );
            assert_eq!(pod_qos_class(&pod), want, "containers {containers}");
        }
    }

    #[test]
    fn selectable_fields_cover_upstream_set_only() {
        let mut pod = valid_pod();
        spec_mut(&mut pod).node_name = Some("node-1".into());
        pod.status = Some(serde_json::from_value(json!({"phase": "Running", "podIP": "10.0.0.9", "podIPs": [{"ip": "10.0.0.7"}], "nominatedNodeName": "n2"})).expect("status"));
        let cases = [
            ("metadata.name", Some("db")),
            ("metadata.namespace", Some("default")),
            ("spec.nodeName", Some("node-1")),
            ("spec.restartPolicy", Some("Always")),
            ("spec.schedulerName", Some("default-scheduler")),
            ("spec.serviceAccountName", Some("default")),
            ("spec.hostNetwork", Some("false")),
            ("status.phase", Some("Running")),
            ("status.podIP", Some("10.0.0.7")),
            ("status.nominatedNodeName", Some("n2")),
            ("metadata.uid", None),
            ("spec.containers", None),
        ];
        for (field, want) in cases {
            assert_eq!(
                pod_selectable_field(&pod, field).as_deref(),
                want,
                "field {field}"
            );
        }
        pod.status = Some(serde_json::from_value(json!({"podIP": "10.0.0.9"})).expect("status"));
        assert_eq!(
            pod_selectable_field(&pod, "status.podIP").as_deref(),
            Some("10.0.0.9")
        );
    }

    // ---- printing -----------------------------------------------------------------------------

    #[test]
    fn human_duration_boundaries() {
        let h = 3600;
        let d = 24 * h;
        let cases: [(u64, &str); 22] = [
            (0, "0s"),
            (5, "5s"),
            (119, "119s"),
            (120, "2m"),
            (123, "2m3s"),
            (599, "9m59s"),
            (600, "10m"),
            (3 * h - 1, "179m"),
            (3 * h, "3h"),
            (3 * h + 30 * 60, "3h30m"),
            (8 * h - 1, "7h59m"),
            (8 * h, "8h"),
            (47 * h + 59 * 60, "47h"),
            (48 * h, "2d"),
            (49 * h, "2d1h"),
            (8 * d - 1, "7d23h"),
            (8 * d, "8d"),
            (4 * d, "4d"),
            (2 * 365 * d - 1, "729d"),
            (2 * 365 * d, "2y"),
            (2 * 365 * d + d, "2y1d"),
            (8 * 365 * d, "8y"),
        ];
        for (secs, want) in cases {
            assert_eq!(
                human_duration(Duration::from_secs(secs)),
                want,
                "secs {secs}"
            );
        }
        assert_eq!(human_duration(Duration::from_millis(1999)), "1s");
        assert_eq!(
            human_duration(Duration::MAX),
            format!("{}y", u64::MAX / 3600 / 24 / 365)
        );
    }

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
