//! `NodeInfo`: a node and the Pods placed on it, with the sums the plugins read (upstream
//! `framework/types.go`).

use super::*;

/// A host port as upstream's `HostPortInfo` keys it: empty IP means 0.0.0.0, empty protocol TCP.
pub(super) type HostPort = (String, String, i32);

fn host_port(ip: Option<&str>, protocol: Option<&str>, port: i32) -> HostPort {
    let ip = ip.filter(|s| !s.is_empty()).unwrap_or(BIND_ALL_HOST_IP);
    let protocol = protocol.filter(|s| !s.is_empty()).unwrap_or("TCP");
    (ip.to_string(), protocol.to_string(), port)
}

/// The host ports a Pod's app containers ask for (upstream ignores init containers here).
pub(super) fn wanted_host_ports(pod: &Pod) -> Vec<HostPort> {
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

/// What a placed Pod takes from its node, worked out once when it is placed.
#[derive(Clone, Debug)]
struct Placed {
    requested_cpu: i128,
    requested_memory: i128,
    requested_extra: BTreeMap<String, i64>,
    non_zero_cpu: i128,
    non_zero_memory: i128,
    host_ports: Vec<HostPort>,
}

impl Placed {
    fn of(pod: &Pod) -> Self {
        let list = pod_request_list(pod, false);
        let fit = resources_of(&list);
        let (non_zero_cpu, non_zero_memory) = node_non_zero_of(pod);
        Placed {
            requested_cpu: i128::from(fit.milli_cpu),
            requested_memory: i128::from(fit.memory),
            requested_extra: pod_extra_requests(&list),
            non_zero_cpu,
            non_zero_memory,
            host_ports: wanted_host_ports(pod),
        }
    }
}

/// A node and the Pods placed on it, with the sums the plugins read (upstream `NodeInfo`).
///
/// The node's allocatable is parsed once, when the node is set; each placed Pod is kept as
/// what it takes (by uid), not as a copy of the Pod. Change the node only through
/// [`NodeInfo::set_node`] and the Pods only through [`NodeInfo::add_pod`] and
/// [`NodeInfo::remove_pod`], which keep the cached figures in step.
#[derive(Clone, Debug)]
pub struct NodeInfo {
    pub(super) node: Node,
    allocatable_list: MilliList,
    allocatable: Resources,
    /// uid → what the Pod takes.
    pods: HashMap<String, Placed>,
    /// Sums are kept wider than i64 so adding and removing are exact inverses.
    pub(super) requested_cpu: i128,
    pub(super) requested_memory: i128,
    pub(super) non_zero_cpu: i128,
    pub(super) non_zero_memory: i128,
    pub(super) requested_extra: BTreeMap<String, i128>,
    /// Port → number of placed Pods using it. Upstream keeps a set, so removing one of two Pods
    /// that share a port (possible only for Pods bound without the scheduler) frees it; a count
    /// keeps it taken until the last one leaves.
    used_host_ports: HashMap<HostPort, usize>,
}

impl NodeInfo {
    pub fn new(node: Node) -> Self {
        let mut info = NodeInfo {
            node: Node::default(),
            allocatable_list: MilliList::new(),
            allocatable: Resources::default(),
            pods: HashMap::new(),
            requested_cpu: 0,
            requested_memory: 0,
            non_zero_cpu: 0,
            non_zero_memory: 0,
            requested_extra: BTreeMap::new(),
            used_host_ports: HashMap::new(),
        };
        info.set_node(node);
        info
    }

    /// Replaces the node (a newer version of it); its placed Pods stay.
    pub fn set_node(&mut self, node: Node) {
        self.allocatable_list =
            milli_list(node.status.as_ref().and_then(|s| s.allocatable.as_ref()));
        let list = &self.allocatable_list;
        self.allocatable = Resources {
            milli_cpu: clamp_i64(list.get(CPU).copied().unwrap_or(0)),
            memory: clamp_i64(milli_to_units(list.get(MEMORY).copied().unwrap_or(0))),
            pods: clamp_i64(milli_to_units(list.get(PODS).copied().unwrap_or(0))),
        };
        self.node = node;
    }

    pub fn node(&self) -> &Node {
        &self.node
    }

    /// The node's name (`""` if it has none).
    pub fn name(&self) -> &str {
        self.node.metadata.name.as_deref().unwrap_or("")
    }

    /// How many Pods are placed here.
    pub fn pod_count(&self) -> usize {
        self.pods.len()
    }

    /// Whether the Pod with this uid is placed here.
    pub fn holds(&self, uid: &str) -> bool {
        self.pods.contains_key(uid)
    }

    /// Accounts a Pod placed on this node (upstream `NodeInfo.AddPod`); a Pod already here
    /// under the same uid is replaced.
    pub fn add_pod(&mut self, pod: &Pod) {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        self.remove_pod(&uid);
        let placed = Placed::of(pod);
        self.update(&placed, true);
        self.pods.insert(uid, placed);
    }

    /// Forgets the Pod with this uid; false if there is none.
    pub fn remove_pod(&mut self, uid: &str) -> bool {
        let Some(placed) = self.pods.remove(uid) else {
            return false;
        };
        self.update(&placed, false);
        true
    }

    fn update(&mut self, placed: &Placed, add: bool) {
        let sign: i128 = if add { 1 } else { -1 };
        self.requested_cpu += sign * placed.requested_cpu;
        self.requested_memory += sign * placed.requested_memory;
        for (name, v) in &placed.requested_extra {
            *self.requested_extra.entry(name.clone()).or_insert(0) += sign * i128::from(*v);
        }
        self.non_zero_cpu += sign * placed.non_zero_cpu;
        self.non_zero_memory += sign * placed.non_zero_memory;
        for port in &placed.host_ports {
            if add {
                *self.used_host_ports.entry(port.clone()).or_insert(0) += 1;
            } else if let Some(n) = self.used_host_ports.get_mut(port) {
                *n -= 1;
                if *n == 0 {
                    self.used_host_ports.remove(port);
                }
            }
        }
    }

    /// `status.allocatable`: cpu in millicores, memory in bytes, and the Pod count.
    pub fn allocatable(&self) -> Resources {
        self.allocatable
    }

    /// `status.allocatable` in thousandths, every resource it names.
    pub(super) fn allocatable_list(&self) -> &MilliList {
        &self.allocatable_list
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
    pub(super) fn host_port_taken(&self, (ip, protocol, port): &HostPort) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::framework::test_support::*;

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
}
