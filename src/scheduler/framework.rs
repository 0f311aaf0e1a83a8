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

use std::collections::{BTreeMap, BTreeSet, HashMap};

use k8s_openapi::api::core::v1::{
    Container, Node, NodeSelectorRequirement, NodeSelectorTerm, Pod, PodSpec, Taint, Toleration,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

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

// ---------------------------------------------------------------------------------------------
// Quantities
// ---------------------------------------------------------------------------------------------

/// SWAP POINT for the project's quantity type: the quantity's value in thousandths of a unit,
/// rounded up (upstream `Quantity.MilliValue`), or `None` when the text is not a quantity.
///
/// A small private parser so this module stands alone: `<sign><digits>[.<digits>]<suffix>` with
/// the decimal (`n u m k M G T P E`), binary (`Ki`…`Ei`) and exponent (`e3`, `E-2`) suffixes.
/// Magnitudes beyond i128 saturate; callers clamp to i64 like upstream's int64 accessors.
fn parse_quantity_milli(q: &str) -> Option<i128> {
    let s = q.trim();
    let (negative, unsigned) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let int_len = unsigned.bytes().take_while(u8::is_ascii_digit).count();
    let (int_digits, rest) = unsigned.split_at(int_len);
    let (frac_digits, suffix) = match rest.strip_prefix('.') {
        Some(after) => after.split_at(after.bytes().take_while(u8::is_ascii_digit).count()),
        None => ("", rest),
    };
    if int_digits.is_empty() && frac_digits.is_empty() {
        return None;
    }
    // (decimal exponent, binary multiplier) of the suffix.
    let (exp10, multiplier): (i64, u128) = match suffix {
        "" => (0, 1),
        "n" => (-9, 1),
        "u" => (-6, 1),
        "m" => (-3, 1),
        "k" => (3, 1),
        "M" => (6, 1),
        "G" => (9, 1),
        "T" => (12, 1),
        "P" => (15, 1),
        "E" => (18, 1),
        "Ki" => (0, 1 << 10),
        "Mi" => (0, 1 << 20),
        "Gi" => (0, 1 << 30),
        "Ti" => (0, 1 << 40),
        "Pi" => (0, 1 << 50),
        "Ei" => (0, 1 << 60),
        other => {
            let exponent = other.strip_prefix(['e', 'E'])?;
            let digits = exponent.trim_start_matches(['+', '-']);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            // Out-of-range exponents saturate (upstream also bounds them).
            let value: i64 = exponent.parse().unwrap_or(if exponent.starts_with('-') {
                i64::MIN / 2
            } else {
                i64::MAX / 2
            });
            (value.clamp(-1_000_000, 1_000_000), 1)
        }
    };
    let frac_len = i64::try_from(frac_digits.len()).unwrap_or(i64::MAX / 2);
    let mut digits = String::with_capacity(int_digits.len() + frac_digits.len());
    digits.push_str(int_digits);
    digits.push_str(frac_digits);
    // value × 1000 = digits × multiplier × 10^(exp10 + 3 - frac_len)
    let (floor, inexact) = scale_digits(&digits, exp10 + 3 - frac_len, multiplier);
    let magnitude = i128::try_from(floor).unwrap_or(i128::MAX);
    Some(if negative {
        // Rounding up a negative value drops its fraction.
        -magnitude
    } else {
        magnitude.saturating_add(i128::from(inexact))
    })
}

/// `floor(digits × multiplier × 10^pow10)` and whether anything was cut off; saturating.
fn scale_digits(digits: &str, mut pow10: i64, multiplier: u128) -> (u128, bool) {
    let mut digits = digits.trim_start_matches('0');
    if digits.is_empty() {
        return (0, false);
    }
    // Keep the significant digits within u128 once multiplied; what is dropped only decides
    // rounding (absurdly long inputs lose precision rather than failing).
    let keep = if multiplier == 1 { 38 } else { 19 };
    let mut inexact = false;
    if digits.len() > keep {
        let (kept, dropped) = digits.split_at(keep);
        inexact = dropped.bytes().any(|b| b != b'0');
        pow10 = pow10.saturating_add(i64::try_from(dropped.len()).unwrap_or(i64::MAX / 2));
        digits = kept;
    }
    let Ok(value) = digits.parse::<u128>() else {
        return (u128::MAX, false);
    };
    let Some(value) = value.checked_mul(multiplier) else {
        return (u128::MAX, false);
    };
    if pow10 >= 0 {
        let scaled = u32::try_from(pow10)
            .ok()
            .and_then(|p| 10u128.checked_pow(p))
            .and_then(|p| value.checked_mul(p));
        return (scaled.unwrap_or(u128::MAX), inexact);
    }
    match u32::try_from(pow10.unsigned_abs())
        .ok()
        .and_then(|p| 10u128.checked_pow(p))
    {
        Some(divisor) => (value / divisor, inexact || value % divisor != 0),
        None => (0, true),
    }
}

/// Thousandths to whole units, rounded up (upstream `Quantity.Value`).
fn milli_to_units(milli: i128) -> i128 {
    milli / 1000 + i128::from(milli % 1000 > 0)
}

fn clamp_i64(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

/// Resource name → value in thousandths, one entry per key present in the API list.
type MilliList = BTreeMap<String, i128>;

fn milli_list(list: Option<&BTreeMap<String, Quantity>>) -> MilliList {
    list.into_iter()
        .flatten()
        // An unparsable quantity cannot pass API validation; count it as an explicit zero.
        .map(|(name, q)| (name.clone(), parse_quantity_milli(&q.0).unwrap_or(0)))
        .collect()
}

/// Upstream `addResourceList`.
fn add_into(dst: &mut MilliList, src: &MilliList) {
    for (name, v) in src {
        let entry = dst.entry(name.clone()).or_insert(0);
        *entry = entry.saturating_add(*v);
    }
}

/// Upstream `maxResourceList`.
fn max_into(dst: &mut MilliList, src: &MilliList) {
    for (name, v) in src {
        let entry = dst.entry(name.clone()).or_insert(*v);
        if *v > *entry {
            *entry = *v;
        }
    }
}

/// Whether upstream counts this resource name as a "scalar" resource (`IsScalarResourceName`):
/// extended (`example.com/foo`), hugepages, `kubernetes.io/`-prefixed or attachable volumes.
fn is_scalar_resource(name: &str) -> bool {
    let prefixed_native = name.contains("kubernetes.io/");
    let extended = name.contains('/')
        && !prefixed_native
        && !name.starts_with("requests.")
        && is_qualified_name(&format!("requests.{name}"));
    extended
        || prefixed_native
        || name.starts_with("hugepages-")
        || name.starts_with("attachable-volumes-")
}

// ---------------------------------------------------------------------------------------------
// Pod requests
// ---------------------------------------------------------------------------------------------

/// The cpu, memory and Pod-count dimensions the scheduler accounts and scores.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Resources {
    pub milli_cpu: i64,
    pub memory: i64,
    pub pods: i64,
}

fn spec(pod: &Pod) -> Option<&PodSpec> {
    pod.spec.as_ref()
}

fn requests_of(container: &Container) -> MilliList {
    milli_list(
        container
            .resources
            .as_ref()
            .and_then(|r| r.requests.as_ref()),
    )
}

fn is_restartable_init(container: &Container) -> bool {
    container.restart_policy.as_deref() == Some("Always")
}

/// Upstream `PodRequests`: app containers summed; then, walking init containers in order, a
/// sidecar (restartable init container) adds to the sum and to a running sidecar total, and
/// each container's use while it runs (a sidecar: the running sidecar total; a plain init
/// container: itself plus the sidecars started before it) is maxed into the init peak; the
/// result is max(sum, init peak) plus overhead. With `fill_missing`, a container with no cpu or
/// memory request counts the scoring defaults instead (`NonMissingContainerRequests`).
fn pod_request_list(pod: &Pod, fill_missing: bool) -> MilliList {
    let mut total = MilliList::new();
    let Some(spec) = spec(pod) else {
        return total;
    };
    let requests = |c: &Container| {
        let mut list = requests_of(c);
        if fill_missing {
            list.entry(CPU.to_string())
                .or_insert(i128::from(DEFAULT_MILLI_CPU_REQUEST));
            list.entry(MEMORY.to_string())
                .or_insert(i128::from(DEFAULT_MEMORY_REQUEST) * 1000);
        }
        list
    };
    for container in &spec.containers {
        add_into(&mut total, &requests(container));
    }
    let mut sidecars = MilliList::new();
    let mut init_peak = MilliList::new();
    for container in spec.init_containers.iter().flatten() {
        let own = requests(container);
        let running = if is_restartable_init(container) {
            add_into(&mut total, &own);
            add_into(&mut sidecars, &own);
            sidecars.clone()
        } else {
            let mut with_sidecars = own;
            add_into(&mut with_sidecars, &sidecars);
            with_sidecars
        };
        max_into(&mut init_peak, &running);
    }
    max_into(&mut total, &init_peak);
    add_into(&mut total, &milli_list(spec.overhead.as_ref()));
    total
}

fn resources_of(list: &MilliList) -> Resources {
    Resources {
        milli_cpu: clamp_i64(list.get(CPU).copied().unwrap_or(0)),
        memory: clamp_i64(milli_to_units(list.get(MEMORY).copied().unwrap_or(0))),
        pods: 1,
    }
}

/// What NodeResourcesFit checks against free room: upstream `PodRequests` with no defaults
/// (a missing request counts 0), overhead included. `pods` is always 1.
pub fn pod_requests(pod: &Pod) -> Resources {
    resources_of(&pod_request_list(pod, false))
}

/// What the LeastAllocated score adds for the Pod: the same sum, but each container without a
/// cpu or memory request counts 100m / 200Mi (explicit zeros stay zero). `pods` is always 1.
pub fn pod_requests_non_zero(pod: &Pod) -> Resources {
    resources_of(&pod_request_list(pod, true))
}

/// Requests of resources other than cpu and memory that NodeResourcesFit checks:
/// `ephemeral-storage` and scalar resources, in whole units.
fn pod_extra_requests(list: &MilliList) -> BTreeMap<String, i64> {
    list.iter()
        .filter(|(name, _)| name.as_str() == EPHEMERAL_STORAGE || is_scalar_resource(name))
        .map(|(name, milli)| (name.clone(), clamp_i64(milli_to_units(*milli))))
        .collect()
}

/// What a placed Pod adds to its node's `NonZeroRequested` (upstream `calculateResource`).
///
/// This is not `pod_requests_non_zero`: upstream applies the defaults to each container's
/// effective list as it is visited — app containers one by one, init containers as their
/// running list (a sidecar's includes the sidecars before it) — and takes
/// max(app sum, init peak), so sidecars are not added to the app sum here. Overhead cpu and
/// memory are added when present.
fn node_non_zero_of(pod: &Pod) -> (i128, i128) {
    let Some(spec) = spec(pod) else {
        return (0, 0);
    };
    let non_zero = |list: &MilliList| {
        let cpu = list
            .get(CPU)
            .copied()
            .unwrap_or(i128::from(DEFAULT_MILLI_CPU_REQUEST));
        let memory = list
            .get(MEMORY)
            .map(|m| milli_to_units(*m))
            .unwrap_or(i128::from(DEFAULT_MEMORY_REQUEST));
        (clamp_i64(cpu), clamp_i64(memory))
    };
    let (mut cpu, mut memory) = (0i128, 0i128);
    for container in &spec.containers {
        let (c, m) = non_zero(&requests_of(container));
        cpu = cpu.saturating_add(i128::from(c));
        memory = memory.saturating_add(i128::from(m));
    }
    let mut sidecars = MilliList::new();
    let (mut init_cpu, mut init_memory) = (0i128, 0i128);
    for container in spec.init_containers.iter().flatten() {
        let own = requests_of(container);
        let running = if is_restartable_init(container) {
            add_into(&mut sidecars, &own);
            sidecars.clone()
        } else {
            let mut with_sidecars = own;
            add_into(&mut with_sidecars, &sidecars);
            with_sidecars
        };
        let (c, m) = non_zero(&running);
        init_cpu = init_cpu.max(i128::from(c));
        init_memory = init_memory.max(i128::from(m));
    }
    cpu = cpu.max(init_cpu);
    memory = memory.max(init_memory);
    let overhead = milli_list(spec.overhead.as_ref());
    if let Some(c) = overhead.get(CPU) {
        cpu = cpu.saturating_add(i128::from(clamp_i64(*c)));
    }
    if let Some(m) = overhead.get(MEMORY) {
        memory = memory.saturating_add(i128::from(clamp_i64(milli_to_units(*m))));
    }
    (cpu, memory)
}

// ---------------------------------------------------------------------------------------------
// NodeInfo
// ---------------------------------------------------------------------------------------------

/// A host port as upstream's `HostPortInfo` keys it: empty IP means 0.0.0.0, empty protocol TCP.
type HostPort = (String, String, i32);

fn host_port(ip: Option<&str>, protocol: Option<&str>, port: i32) -> HostPort {
    let ip = ip.filter(|s| !s.is_empty()).unwrap_or(BIND_ALL_HOST_IP);
    let protocol = protocol.filter(|s| !s.is_empty()).unwrap_or("TCP");
    (ip.to_string(), protocol.to_string(), port)
}

/// The host ports a Pod's app containers ask for (upstream ignores init containers here).
fn wanted_host_ports(pod: &Pod) -> Vec<HostPort> {
    spec(pod)
        .into_iter()
        .flat_map(|s| &s.containers)
        .flat_map(|c| c.ports.iter().flatten())
        .filter_map(|p| {
            let port = p.host_port.unwrap_or(0);
            (port > 0).then(|| host_port(p.host_ip.as_deref(), p.protocol.as_deref(), port))
        })
        .collect()
}

/// A node and the Pods placed on it, with the sums the plugins read (upstream `NodeInfo`).
///
/// Change `pods` only through [`NodeInfo::add_pod`] and [`NodeInfo::remove_pod`], which keep the
/// cached sums in step.
#[derive(Clone, Debug)]
pub struct NodeInfo {
    pub node: Node,
    pub pods: Vec<Pod>,
    /// Sums are kept wider than i64 so adding and removing are exact inverses.
    requested_cpu: i128,
    requested_memory: i128,
    non_zero_cpu: i128,
    non_zero_memory: i128,
    requested_extra: BTreeMap<String, i128>,
    /// Port → number of placed Pods using it. Upstream keeps a set, so removing one of two Pods
    /// that share a port (possible only for Pods bound without the scheduler) frees it; a count
    /// keeps it taken until the last one leaves.
    used_host_ports: HashMap<HostPort, usize>,
}

impl NodeInfo {
    pub fn new(node: Node) -> Self {
        NodeInfo {
            node,
            pods: Vec::new(),
            requested_cpu: 0,
            requested_memory: 0,
            non_zero_cpu: 0,
            non_zero_memory: 0,
            requested_extra: BTreeMap::new(),
            used_host_ports: HashMap::new(),
        }
    }

    /// The node's name (`""` if it has none).
    pub fn name(&self) -> &str {
        self.node.metadata.name.as_deref().unwrap_or("")
    }

    /// Accounts a Pod placed on this node (upstream `NodeInfo.AddPod`).
    pub fn add_pod(&mut self, pod: &Pod) {
        self.update(pod, true);
        self.pods.push(pod.clone());
    }

    /// Forgets the Pod with this uid; false if there is none. As upstream, Pods are keyed by
    /// uid and an empty uid matches nothing.
    pub fn remove_pod(&mut self, uid: &str) -> bool {
        if uid.is_empty() {
            return false;
        }
        let Some(i) = self
            .pods
            .iter()
            .position(|p| p.metadata.uid.as_deref() == Some(uid))
        else {
            return false;
        };
        let pod = self.pods.remove(i);
        self.update(&pod, false);
        true
    }

    fn update(&mut self, pod: &Pod, add: bool) {
        let sign: i128 = if add { 1 } else { -1 };
        let list = pod_request_list(pod, false);
        let fit = resources_of(&list);
        self.requested_cpu += sign * i128::from(fit.milli_cpu);
        self.requested_memory += sign * i128::from(fit.memory);
        for (name, v) in pod_extra_requests(&list) {
            *self.requested_extra.entry(name).or_insert(0) += sign * i128::from(v);
        }
        let (cpu, memory) = node_non_zero_of(pod);
        self.non_zero_cpu += sign * cpu;
        self.non_zero_memory += sign * memory;
        for port in wanted_host_ports(pod) {
            if add {
                *self.used_host_ports.entry(port).or_insert(0) += 1;
            } else if let Some(n) = self.used_host_ports.get_mut(&port) {
                *n -= 1;
                if *n == 0 {
                    self.used_host_ports.remove(&port);
                }
            }
        }
    }

    /// `status.allocatable`: cpu in millicores, memory in bytes, and the Pod count.
    pub fn allocatable(&self) -> Resources {
        let list = self.allocatable_list();
        Resources {
            milli_cpu: clamp_i64(list.get(CPU).copied().unwrap_or(0)),
            memory: clamp_i64(milli_to_units(list.get(MEMORY).copied().unwrap_or(0))),
            pods: clamp_i64(milli_to_units(list.get(PODS).copied().unwrap_or(0))),
        }
    }

    fn allocatable_list(&self) -> MilliList {
        milli_list(
            self.node
                .status
                .as_ref()
                .and_then(|s| s.allocatable.as_ref()),
        )
    }

    /// Sum of the placed Pods' requests (missing requests count 0); `pods` is their number.
    pub fn requested(&self) -> Resources {
        Resources {
            milli_cpu: clamp_i64(self.requested_cpu),
            memory: clamp_i64(self.requested_memory),
            pods: clamp_i64(self.pods.len() as i128),
        }
    }

    /// Sum of the placed Pods' requests with the scoring defaults for missing ones (upstream
    /// `NonZeroRequested`); `pods` is their number.
    pub fn non_zero_requested(&self) -> Resources {
        Resources {
            milli_cpu: clamp_i64(self.non_zero_cpu),
            memory: clamp_i64(self.non_zero_memory),
            pods: clamp_i64(self.pods.len() as i128),
        }
    }

    /// Whether a wanted (ip, protocol, port) collides with a used one (upstream
    /// `HostPortInfo.CheckConflict`): 0.0.0.0 collides with the port on any IP, and any IP
    /// collides with the port on 0.0.0.0 or on itself.
    fn host_port_taken(&self, (ip, protocol, port): &HostPort) -> bool {
        if ip == BIND_ALL_HOST_IP {
            return self
                .used_host_ports
                .keys()
                .any(|(_, p, n)| p == protocol && n == port);
        }
        [BIND_ALL_HOST_IP, ip.as_str()].iter().any(|candidate| {
            self.used_host_ports
                .contains_key(&(candidate.to_string(), protocol.clone(), *port))
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Filter
// ---------------------------------------------------------------------------------------------

/// Runs the default Filter plugins in upstream order and returns the first rejection.
pub fn filter(pod: &Pod, node: &NodeInfo) -> Result<(), Rejection> {
    node_unschedulable(pod, node)?;
    node_name(pod, node)?;
    taint_toleration(pod, node)?;
    node_affinity(pod, node)?;
    node_ports(pod, node)?;
    node_resources_fit(pod, node)
}

fn tolerations(pod: &Pod) -> &[Toleration] {
    spec(pod)
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or_default()
}

fn taints(node: &NodeInfo) -> &[Taint] {
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
        "" | "Equal" => toleration.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
        "Exists" => true,
        _ => false,
    }
}

fn tolerated(tolerations: &[Toleration], taint: &Taint) -> bool {
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
    let cordon = Taint {
        key: TAINT_NODE_UNSCHEDULABLE.to_string(),
        effect: EFFECT_NO_SCHEDULE.to_string(),
        ..Taint::default()
    };
    if cordoned && !tolerated(tolerations(pod), &cordon) {
        return Err(Rejection::unresolvable(
            PLUGIN_NODE_UNSCHEDULABLE,
            REASON_NODE_UNSCHEDULABLE,
        ));
    }
    Ok(())
}

/// NodeName: a Pod naming a node fits only there. Unresolvable.
fn node_name(pod: &Pod, node: &NodeInfo) -> Result<(), Rejection> {
    let wanted = spec(pod).and_then(|s| s.node_name.as_deref()).unwrap_or("");
    if !wanted.is_empty() && wanted != node.name() {
        return Err(Rejection::unresolvable(PLUGIN_NODE_NAME, REASON_NODE_NAME));
    }
    Ok(())
}

/// TaintToleration: the first NoSchedule/NoExecute taint, in the node's order, that no
/// toleration covers. Unresolvable.
fn taint_toleration(pod: &Pod, node: &NodeInfo) -> Result<(), Rejection> {
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
fn node_affinity(pod: &Pod, node: &NodeInfo) -> Result<(), Rejection> {
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
fn node_ports(pod: &Pod, node: &NodeInfo) -> Result<(), Rejection> {
    if wanted_host_ports(pod)
        .iter()
        .any(|p| node.host_port_taken(p))
    {
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
fn node_resources_fit(pod: &Pod, node: &NodeInfo) -> Result<(), Rejection> {
    let list = pod_request_list(pod, false);
    let want = resources_of(&list);
    let want_extra = pod_extra_requests(&list);
    let allocatable_list = node.allocatable_list();
    let allocatable = node.allocatable();
    let mut reasons = Vec::new();
    if node.pods.len() as i128 + 1 > i128::from(allocatable.pods) {
        reasons.push(REASON_TOO_MANY_PODS.to_string());
    }
    let free = |alloc: i64, used: i128| i128::from(alloc) - used;
    if want.milli_cpu > 0 && i128::from(want.milli_cpu) > free(allocatable.milli_cpu, node.requested_cpu) {
        reasons.push(insufficient_reason(CPU));
    }
    if want.memory > 0 && i128::from(want.memory) > free(allocatable.memory, node.requested_memory) {
        reasons.push(insufficient_reason(MEMORY));
    }
    // Ephemeral storage first, then scalar resources (upstream walks a map; the order of
    // reasons within one node does not show in the message, which counts and sorts them).
    let extra_order = want_extra
        .iter()
        .filter(|(name, _)| name.as_str() == EPHEMERAL_STORAGE)
        .chain(want_extra.iter().filter(|(name, _)| name.as_str() != EPHEMERAL_STORAGE));
    for (name, amount) in extra_order {
        let is_storage = name == EPHEMERAL_STORAGE;
        if (is_storage && *amount <= 0) || (!is_storage && *amount == 0) {
            continue;
        }
        let alloc = clamp_i64(milli_to_units(allocatable_list.get(name).copied().unwrap_or(0)));
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

// ---------------------------------------------------------------------------------------------
// Node affinity (component-helpers `nodeaffinity`)
// ---------------------------------------------------------------------------------------------

/// A parsed `matchExpressions` entry (upstream `labels.NewRequirement`).
enum LabelRequirement<'a> {
    In(&'a str, &'a [String]),
    NotIn(&'a str, &'a [String]),
    Exists(&'a str),
    DoesNotExist(&'a str),
    Gt(&'a str, i64),
    Lt(&'a str, i64),
}

impl<'a> LabelRequirement<'a> {
    /// None when upstream would refuse the requirement; the whole term then never matches.
    fn parse(r: &'a NodeSelectorRequirement) -> Option<Self> {
        let key = r.key.as_str();
        let values = r.values.as_deref().unwrap_or_default();
        if !is_qualified_name(key) || !values.iter().all(|v| is_label_value(v)) {
            return None;
        }
        let single_int = || match values {
            [v] => v.parse::<i64>().ok(),
            _ => None,
        };
        match r.operator.as_str() {
            "In" if !values.is_empty() => Some(Self::In(key, values)),
            "NotIn" if !values.is_empty() => Some(Self::NotIn(key, values)),
            "Exists" if values.is_empty() => Some(Self::Exists(key)),
            "DoesNotExist" if values.is_empty() => Some(Self::DoesNotExist(key)),
            "Gt" => single_int().map(|v| Self::Gt(key, v)),
            "Lt" => single_int().map(|v| Self::Lt(key, v)),
            _ => None,
        }
    }

    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Self::In(key, values) => labels.get(*key).is_some_and(|v| values.contains(v)),
            Self::NotIn(key, values) => labels.get(*key).is_none_or(|v| !values.contains(v)),
            Self::Exists(key) => labels.contains_key(*key),
            Self::DoesNotExist(key) => !labels.contains_key(*key),
            Self::Gt(key, bound) => label_int(labels, key).is_some_and(|v| v > *bound),
            Self::Lt(key, bound) => label_int(labels, key).is_some_and(|v| v < *bound),
        }
    }
}

fn label_int(labels: &BTreeMap<String, String>, key: &str) -> Option<i64> {
    labels.get(key).and_then(|v| v.parse().ok())
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
        let field = if self.key == OBJECT_NAME_FIELD { node_name } else { "" };
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
        .map(LabelRequirement::parse)
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
fn required_node_affinity_matches(pod: &Pod, node: &Node) -> bool {
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
fn node_affinity_pre_filter(pod: &Pod) -> Result<Option<BTreeSet<String>>, &'static str> {
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
fn preferred_affinity_score(pod: &Pod, node: &Node) -> i64 {
    spec(pod)
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|n| n.preferred_during_scheduling_ignored_during_execution.as_ref())
        .into_iter()
        .flatten()
        .filter(|t| t.weight != 0 && !is_empty_term(&t.preference))
        .filter(|t| term_matches(&t.preference, node) == Some(true))
        .fold(0i64, |sum, t| sum.saturating_add(i64::from(t.weight)))
}

/// Upstream `validation.IsQualifiedName`: `[prefix/]name`, prefix a DNS-1123 subdomain, name
/// 1–63 alphanumerics with `-`, `_`, `.` inside.
fn is_qualified_name(s: &str) -> bool {
    let (prefix, name) = match s.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, s),
    };
    if name.contains('/') {
        return false;
    }
    if let Some(prefix) = prefix {
        if !is_dns1123_subdomain(prefix) {
            return false;
        }
    }
    !name.is_empty() && is_label_value(name)
}

/// Upstream `validation.IsValidLabelValue`: empty, or at most 63 alphanumerics with `-`, `_`,
/// `.` inside.
fn is_label_value(s: &str) -> bool {
    let bytes = s.as_bytes();
    match (bytes.first(), bytes.last()) {
        (None, _) | (_, None) => true,
        (Some(first), Some(last)) => {
            bytes.len() <= 63
                && first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        }
    }
}

/// Upstream `validation.IsDNS1123Subdomain`.
fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            let b = label.as_bytes();
            let edge = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
            b.first().is_some_and(edge)
                && b.last().is_some_and(edge)
                && b.iter().all(|c| edge(c) || *c == b'-')
        })
}

// ---------------------------------------------------------------------------------------------
// Score
// ---------------------------------------------------------------------------------------------

/// Each default Score plugin's normalized (0–100), unweighted score for one node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct PluginScores {
    least_allocated: i64,
    balanced_allocation: i64,
    taint_toleration: i64,
    node_affinity: i64,
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

fn plugin_scores(pod: &Pod, feasible: &[&NodeInfo]) -> Vec<PluginScores> {
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
            v = MAX_NODE_SCORE - v;
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
        clamp_i64(sum / weights)
    }
}

/// NodeResourcesBalancedAllocation: `(1 - std) × 100` over the requested fractions (capped at
/// 1) of the resources the node has; with two resources std is `|f_cpu - f_mem| / 2`. It uses
/// plain requests (upstream `useRequested: true`), not the non-zero defaults.
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
    ((1.0 - std) * MAX_NODE_SCORE as f64) as i64
}

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

/// The whole decision for one Pod over a snapshot of nodes: the chosen node's name, or why
/// none fits.
///
/// As upstream's `schedulePod`: no nodes is its own error; NodeAffinity's PreFilter may reject
/// outright or narrow the nodes filtered; a still-fitting `status.nominatedNodeName` is taken
/// first without scoring; a single feasible node is taken without scoring. Deviation: every
/// node is filtered and scored — upstream stops after `numFeasibleNodesToFind` feasible nodes
/// in clusters of 100+ nodes, resuming where the previous Pod stopped.
pub fn schedule(
    pod: &Pod,
    nodes: &[NodeInfo],
    rng: &mut impl rand::Rng,
) -> Result<String, FitError> {
    let preemption_never =
        spec(pod).and_then(|s| s.preemption_policy.as_deref()) == Some("Never");
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
    let nominated = pod
        .status
        .as_ref()
        .and_then(|s| s.nominated_node_name.as_deref())
        .filter(|n| !n.is_empty());
    if let Some(info) = nominated.and_then(|n| nodes.iter().find(|i| i.name() == n)) {
        if filter(pod, info).is_ok() {
            return Ok(info.name().to_string());
        }
    }
    let mut feasible: Vec<&NodeInfo> = Vec::new();
    let mut rejections = Vec::new();
    let considered = nodes
        .iter()
        .filter(|n| allowed.as_ref().is_none_or(|set| set.contains(n.name())));
    for info in considered {
        match filter(pod, info) {
            Ok(()) => feasible.push(info),
            Err(rejection) => rejections.push((info.name().to_string(), rejection)),
        }
    }
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
