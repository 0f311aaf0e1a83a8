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

use crate::meta::quantity::Quantity as ApiQuantity;
use crate::meta::selector::{qualified_name_problems, LabelOperator, LabelRequirement};

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

/// A quantity's value in thousandths of a unit, rounded away from zero (upstream
/// `Quantity.MilliValue`), or `None` when the text is not a quantity. Surrounding whitespace is
/// ignored, as upstream's JSON decoding trims it before parsing.
fn parse_quantity_milli(q: &str) -> Option<i128> {
    ApiQuantity::parse(q.trim()).ok().map(|q| q.milli_value())
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
        && qualified_name_problems(&format!("requests.{name}")).is_empty();
    extended
        || prefixed_native
        || name.starts_with("hugepages-")
        || name.starts_with("attachable-volumes-")
}

// ---------------------------------------------------------------------------------------------
// Pod requests
// ---------------------------------------------------------------------------------------------

/// The cpu (millicores), memory (bytes) and Pod-count dimensions the scheduler accounts and
/// scores. A Pod's requests follow upstream `PodRequests`: max(sum of app containers and
/// sidecars, peak of the init phase) plus overhead; see [`pod_requests`] for the fit view and
/// [`pod_requests_non_zero`] for the LeastAllocated scoring view.
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

    /// The host ports placed Pods hold, as (ip, protocol, port) with upstream's defaults filled
    /// in (`0.0.0.0`, `TCP`).
    pub fn used_host_ports(&self) -> impl Iterator<Item = (&str, &str, i32)> {
        self.used_host_ports
            .keys()
            .map(|(ip, protocol, port)| (ip.as_str(), protocol.as_str(), *port))
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
        "" | "Equal" => {
            toleration.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
        }
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

// ---------------------------------------------------------------------------------------------
// Node affinity (component-helpers `nodeaffinity`)
// ---------------------------------------------------------------------------------------------

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

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::PodStatus;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use serde_json::{json, Value};

    const GI: i64 = 1024 * 1024 * 1024;
    const MI: i64 = 1024 * 1024;

    fn pod(v: Value) -> Pod {
        serde_json::from_value(v).expect("test pod is valid JSON for a Pod")
    }

    /// A Pod whose one container requests `cpu`/`memory` (None leaves the request out), with
    /// `extra` merged into its spec.
    fn pod_req(uid: &str, cpu: Option<&str>, memory: Option<&str>, extra: Value) -> Pod {
        let mut requests = serde_json::Map::new();
        if let Some(cpu) = cpu {
            requests.insert("cpu".into(), json!(cpu));
        }
        if let Some(memory) = memory {
            requests.insert("memory".into(), json!(memory));
        }
        let mut spec = json!({
            "containers": [{"name": "app", "image": "app", "resources": {"requests": requests}}]
        });
        merge(&mut spec, extra);
        pod(json!({"metadata": {"name": uid, "namespace": "default", "uid": uid}, "spec": spec}))
    }

    fn requesting(uid: &str, cpu: &str, memory: &str) -> Pod {
        pod_req(uid, Some(cpu), Some(memory), json!({}))
    }

    /// A node with this allocatable, and `extra` merged into the whole object.
    fn node(name: &str, cpu: &str, memory: &str, pods: &str, extra: Value) -> NodeInfo {
        let mut v = json!({
            "metadata": {"name": name},
            "status": {"allocatable": {"cpu": cpu, "memory": memory, "pods": pods}}
        });
        merge(&mut v, extra);
        NodeInfo::new(serde_json::from_value(v).expect("test node is valid JSON for a Node"))
    }

    fn merge(into: &mut Value, from: Value) {
        match (into, from) {
            (Value::Object(a), Value::Object(b)) => {
                for (k, v) in b {
                    merge(a.entry(k).or_insert(Value::Null), v);
                }
            }
            (slot, v) => *slot = v,
        }
    }

    fn plain_node(name: &str) -> NodeInfo {
        node(name, "4", "8Gi", "110", json!({}))
    }

    fn reasons(result: Result<(), Rejection>) -> Vec<String> {
        result.err().map(|r| r.reasons).unwrap_or_default()
    }

    /// The table the scheduler's former private quantity parser was tested with, now run
    /// against `meta::quantity`. Three rows changed with the move: `-1.5m` rounds away from zero
    /// (-2, upstream `MilliValue`; the old parser rounded towards +∞ to -1), a lone `.` reads
    /// as zero (upstream accepts it; the old parser refused it), and a value beyond i128
    /// nano-units saturates at that bound rather than at i128 milli-units. None of the three can
    /// reach the scheduler: API validation refuses negative requests, and every result is
    /// clamped to i64 anyway.
    #[test]
    fn quantity_parser_rounds_milli_units_up_like_upstream() {
        #[rustfmt::skip]
        let cases: &[(&str, Option<i128>)] = &[
            ("100m", Some(100)), ("1", Some(1000)), ("0.5", Some(500)), ("2.", Some(2000)),
            (".25", Some(250)), ("1k", Some(1_000_000)), ("1Ki", Some(1_024_000)),
            ("1Gi", Some(1_073_741_824_000)), ("1.5Mi", Some(1_572_864_000)),
            ("1e3", Some(1_000_000)), ("1E-3", Some(1)), ("0.0001", Some(1)), ("1n", Some(1)),
            ("1500u", Some(2)), ("0", Some(0)), ("+7m", Some(7)), ("-1.5m", Some(-2)),
            (" 250m ", Some(250)), ("", None), ("abc", None), ("1Qi", None), ("--1", None),
            ("1e", None), ("1e+-3", None), ("1.2.3", None), (".", Some(0)),
            ("99999999999999999999999999999999999999999999999E", Some(i128::MAX / 1_000_000 + 1)),
            ("1e-999999999999", Some(1)),
        ];
        let wrong: Vec<String> = cases
            .iter()
            .filter(|(text, want)| parse_quantity_milli(text) != *want)
            .map(|(text, want)| {
                format!(
                    "{text}: got {:?}, want {want:?}",
                    parse_quantity_milli(text)
                )
            })
            .collect();
        assert!(wrong.is_empty(), "{wrong:#?}");
    }

    #[test]
    fn pod_requests_sum_app_containers_and_take_the_larger_init_peak() {
        let c = |cpu: &str, mem: &str| json!({"name": "c", "image": "i", "resources": {"requests": {"cpu": cpu, "memory": mem}}});
        let sidecar = |cpu: &str| {
            json!({"name": "s", "image": "i", "restartPolicy": "Always",
                   "resources": {"requests": {"cpu": cpu}}})
        };
        #[rustfmt::skip]
        let cases = [
            ("app containers add up", json!([c("1", "1Gi"), c("500m", "1Gi")]), json!([]), (1500, 2 * GI)),
            ("a larger init container wins", json!([c("1", "1Gi")]), json!([c("3", "512Mi")]), (3000, GI)),
            ("init containers do not add up", json!([c("1", "1Gi")]), json!([c("2", "1Gi"), c("2", "1Gi")]), (2000, GI)),
            // sum = 1+2+1 = 4; init peak = max(5, 2, 4+2, 2+1) = 6
            ("sidecars add to the sum and to later init containers", json!([c("1", "1Gi")]),
                json!([c("5", "0"), sidecar("2"), c("4", "0"), sidecar("1")]), (6000, GI)),
            // sum = 1+2 = 3; init peak = max(2, 1+2) = 3
            ("sidecars alone raise the sum", json!([c("1", "1Gi")]), json!([sidecar("2"), c("1", "0")]), (3000, GI)),
        ];
        for (what, containers, init, (cpu, memory)) in cases {
            let p = pod(json!({"spec": {"containers": containers, "initContainers": init}}));
            let got = pod_requests(&p);
            assert_eq!(
                (got.milli_cpu, got.memory, got.pods),
                (cpu, memory, 1),
                "{what}"
            );
        }
    }

    #[test]
    fn pod_requests_include_overhead() {
        let overhead = json!({"overhead": {"cpu": "100m", "memory": "32Mi"}});
        let p = pod_req("p", Some("250m"), Some("64Mi"), overhead);
        let want = Resources {
            milli_cpu: 350,
            memory: 96 * MI,
            pods: 1,
        };
        assert_eq!(pod_requests(&p), want);
        assert_eq!(pod_requests_non_zero(&p), want);
    }

    #[test]
    fn missing_requests_count_zero_for_fit_but_defaults_for_scoring() {
        let none = pod_req("p", None, None, json!({}));
        assert_eq!(
            pod_requests(&none),
            Resources {
                milli_cpu: 0,
                memory: 0,
                pods: 1
            }
        );
        let defaults = Resources {
            milli_cpu: 100,
            memory: 200 * MI,
            pods: 1,
        };
        assert_eq!(pod_requests_non_zero(&none), defaults);
        let explicit_zero = pod_req("p", Some("0"), None, json!({}));
        let zero_cpu = Resources {
            milli_cpu: 0,
            ..defaults
        };
        assert_eq!(pod_requests_non_zero(&explicit_zero), zero_cpu);
    }

    #[test]
    fn node_non_zero_accounting_follows_upstream_calculate_resource_for_sidecars() {
        // Upstream applies the defaults to each visited list and does not add sidecars to the
        // app sum there, unlike PodRequests with NonMissingContainerRequests.
        let p = pod(json!({"metadata": {"uid": "u"}, "spec": {
            "containers": [{"name": "app", "image": "i"}],
            "initContainers": [{"name": "s", "image": "i", "restartPolicy": "Always"}]
        }}));
        assert_eq!(pod_requests_non_zero(&p).milli_cpu, 200);
        let mut n = plain_node("n");
        n.add_pod(&p);
        assert_eq!(n.non_zero_requested().milli_cpu, 100);
        assert_eq!(n.non_zero_requested().memory, 200 * MI);
    }

    #[test]
    fn node_info_add_and_remove_pod_keep_sums_in_step() {
        let mut n = plain_node("n");
        n.add_pod(&requesting("a", "500m", "1Gi"));
        n.add_pod(&pod_req("b", None, Some("2Gi"), json!({})));
        let r = |milli_cpu, memory, pods| Resources {
            milli_cpu,
            memory,
            pods,
        };
        assert_eq!(n.requested(), r(500, 3 * GI, 2));
        assert_eq!(n.non_zero_requested(), r(600, 3 * GI, 2));
        assert!(n.remove_pod("a"));
        assert_eq!(n.requested(), r(0, 2 * GI, 1));
        assert_eq!(n.non_zero_requested(), r(100, 2 * GI, 1));
        assert!(!n.remove_pod("a"), "already gone");
        assert!(!n.remove_pod(""), "empty uid matches nothing");
        assert!(n.remove_pod("b"));
        assert_eq!(n.requested(), Resources::default());
        assert_eq!(n.allocatable(), r(4000, 8 * GI, 110));
    }

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
    fn score_sums_plugins_with_default_weights() {
        let empty = plain_node("empty");
        let mut busy = plain_node("busy");
        busy.add_pod(&requesting("old", "2", "4Gi"));
        let p = requesting("p", "1", "1Gi");
        // LeastAllocated 81 / 31, BalancedAllocation 93 each, TaintToleration 100 × 3 each.
        assert_eq!(score(&p, &[&empty, &busy]), [81 + 93 + 300, 31 + 93 + 300]);
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
        assert_eq!(schedule(&p, &nodes, &mut rng), Ok("empty".to_string()));
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
        let err = schedule(&p, &nodes, &mut rng).expect_err("nothing fits");
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
        let err = schedule(&p, &nodes, &mut rng).expect_err("nothing fits");
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
        let err = schedule(&requesting("p", "1", "1Gi"), &[], &mut rng).expect_err("no nodes");
        assert_eq!(err.num_all_nodes, 0);
        assert_eq!(err.message(), "no nodes available to schedule pods");
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
            schedule(&pinned("100m"), &nodes, &mut rng),
            Ok("a".to_string())
        );
        let err = schedule(&pinned("1"), &nodes, &mut rng).expect_err("a is too small");
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
        let err = schedule(&p, &nodes, &mut rng).expect_err("conflict");
        assert_eq!(
            err.message(),
            "0/2 nodes are available: pod affinity terms conflict. preemption: 0/2 nodes are \
             available: 2 Preemption is not helpful for scheduling."
        );
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
        assert_eq!(schedule(&p, &nodes, &mut rng), Ok("busy".to_string()));
        let mut big = requesting("p", "2", "1Gi");
        big.status = nominated;
        assert_eq!(schedule(&big, &nodes, &mut rng), Ok("empty".to_string()));
    }

    #[test]
    fn schedule_reports_that_preemption_policy_never_is_not_eligible() {
        let nodes = vec![node("a", "1", "1Gi", "110", json!({}))];
        let p = pod_req("p", Some("2"), None, json!({"preemptionPolicy": "Never"}));
        let mut rng = StdRng::seed_from_u64(1);
        let err = schedule(&p, &nodes, &mut rng).expect_err("too big");
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
            match schedule(&p, &nodes, &mut rng) {
                Ok(name) => {
                    let info = nodes
                        .iter_mut()
                        .find(|n| n.name() == name)
                        .expect("chosen node exists");
                    info.add_pod(&p);
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
            let summed = n
                .pods
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
            assert!(!cordoned || n.pods.is_empty(), "{} is cordoned", n.name());
        }
    }
}
