//! Quantities and Pod requests as the scheduler counts them (upstream `pkg/api/v1/resource`
//! `PodRequests` and the scheduler's non-zero defaults).

use super::*;

/// A quantity's value in thousandths of a unit, rounded away from zero (upstream
/// `Quantity.MilliValue`), or `None` when the text is not a quantity. Surrounding whitespace is
/// ignored, as upstream's JSON decoding trims it before parsing.
fn parse_quantity_milli(q: &str) -> Option<i128> {
    ApiQuantity::parse(q.trim()).ok().map(|q| q.milli_value())
}

/// Thousandths to whole units, rounded up (upstream `Quantity.Value`).
pub(super) fn milli_to_units(milli: i128) -> i128 {
    milli / 1000 + i128::from(milli % 1000 > 0)
}

pub(super) fn clamp_i64(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

/// Resource name → value in thousandths, one entry per key present in the API list.
pub(super) type MilliList = BTreeMap<String, i128>;

pub(super) fn milli_list(list: Option<&BTreeMap<String, Quantity>>) -> MilliList {
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
        && is_qualified_name(&format!("requests.{name}")).is_empty();
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

pub(super) fn spec(pod: &Pod) -> Option<&PodSpec> {
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
pub(super) fn pod_request_list(pod: &Pod, fill_missing: bool) -> MilliList {
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

pub(super) fn resources_of(list: &MilliList) -> Resources {
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
pub(super) fn pod_extra_requests(list: &MilliList) -> BTreeMap<String, i64> {
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
pub(super) fn node_non_zero_of(pod: &Pod) -> (i128, i128) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::framework::test_support::*;

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
}
