//! The controller manager: the controllers that keep the cluster's objects consistent with
//! each other (the ReplicaSet, Deployment, Job and CronJob controllers, node lifecycle, the garbage
//! collector and the Pod garbage collector, and what every namespace is given: its `default`
//! ServiceAccount and the `kube-root-ca.crt` ConfigMap), behind one leader election.
//!
//! # Why its own process
//!
//! DESIGN.md gives every control-plane part its own OS process, and upstream runs
//! kube-controller-manager beside kube-scheduler rather than inside it. The separation is
//! real, not ceremony: the controller manager has its own identity
//! (`system:kube-controller-manager`) with its own permissions, so a scheduler credential can
//! never force-delete Pods and the other way round; it is elected on its own Lease
//! (`kube-system/kube-controller-manager`), so a standby can take over the controllers
//! without touching scheduling; and it can crash, restart or be upgraded alone. Like the
//! scheduler and the kubelet it is a client of the API server only, through the `kube` crate;
//! it never reads storage.
//!
//! # Leadership
//!
//! With leader election on (the default, as upstream), controllers start only once this
//! process holds the Lease. A leader that cannot renew within the renew deadline stops its
//! controllers and [`run`] returns [`ControllerError::LeadershipLost`], so the process exits
//! and its supervisor restarts it as a candidate, exactly as kube-controller-manager exits with
//! "leaderelection lost".

pub mod cronjob;
pub mod deployment;
pub mod garbagecollector;
pub mod job;
pub mod leaderelection;
pub mod nodelifecycle;
pub mod podgc;
pub mod replicaset;
pub mod serviceaccounts;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use leaderelection::{LeaderElectionConfig, LeaderElectionError, LeaderElector};
use podgc::{PodGc, PodGcConfig};

/// The reference a controller puts on what it makes: kube's `controller_owner_ref` with
/// `blockOwnerDeletion` set, as upstream's controllers set it.
pub fn controller_ref<K>(
    owner: &K,
) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference
where
    K: kube::Resource<DynamicType = ()>,
{
    let mut reference = owner.controller_owner_ref(&()).unwrap_or_default();
    reference.block_owner_deletion = Some(true);
    reference
}

/// The Pod a controller makes from its template (upstream `GetPodFromTemplate`): named
/// `<owner>-<5 random>` by the API server, with the template's labels, annotations and
/// finalizers, owned by `owner`.
pub fn pod_from_template<K>(
    owner: &K,
    template: k8s_openapi::api::core::v1::PodTemplateSpec,
) -> k8s_openapi::api::core::v1::Pod
where
    K: kube::Resource<DynamicType = ()>,
{
    let meta = template.metadata.unwrap_or_default();
    let mut pod = k8s_openapi::api::core::v1::Pod {
        spec: template.spec,
        ..Default::default()
    };
    pod.metadata.generate_name = Some(format!(
        "{}-",
        owner.meta().name.clone().unwrap_or_default()
    ));
    pod.metadata.labels = meta.labels;
    pod.metadata.annotations = meta.annotations;
    pod.metadata.finalizers = meta.finalizers;
    pod.metadata.owner_references = Some(vec![controller_ref(owner)]);
    pod
}

/// A cache of every object `api` lists, and the future that keeps it current: a failed watch
/// is logged and retried with backoff, as client-go's reflector does.
pub fn cached<K>(
    api: kube::Api<K>,
    what: &'static str,
) -> (
    kube::runtime::reflector::Store<K>,
    impl std::future::Future<Output = ()>,
)
where
    K: Cacheable,
{
    use futures::StreamExt as _;
    use kube::runtime::{reflector, watcher, WatchStreamExt as _};
    let (store, writer) = reflector::store();
    let watch = watcher::watcher(api, watcher::Config::default())
        .modify(crate::client::strip_managed_fields);
    let kept = reflector::reflector(writer, watch)
        .default_backoff()
        .for_each(move |event| async move {
            if let Err(e) = event {
                tracing::warn!(error = %e, "{what} watch failed; retrying");
            }
        });
    (store, kept)
}

/// What [`cached`] can keep: a kind of the cluster, with its whole list watched.
pub trait Cacheable:
    kube::Resource<DynamicType = ()>
    + Clone
    + serde::de::DeserializeOwned
    + std::fmt::Debug
    + Send
    + Sync
    + 'static
{
}

impl<K> Cacheable for K where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static
{
}

/// The caches the controllers share: one watch and one cache per kind however many
/// controllers read it, as upstream's shared informer factory gives them (five controllers
/// read Pods; five watches would decode every Pod change five times). A kind is watched from
/// the first controller that asks for it until `shutdown`.
pub struct Informers {
    client: kube::Client,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    stores: std::sync::Mutex<Vec<Box<dyn std::any::Any + Send>>>,
}

impl Informers {
    pub fn new(client: kube::Client, shutdown: CancellationToken) -> Informers {
        Informers {
            client,
            shutdown,
            tracker: TaskTracker::new(),
            stores: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// The cache of every `K` in the cluster, started by the first caller.
    pub fn store<K: Cacheable>(&self, what: &'static str) -> kube::runtime::reflector::Store<K> {
        let mut stores = self.stores.lock().unwrap_or_else(|p| p.into_inner());
        let found = stores
            .iter()
            .find_map(|s| s.downcast_ref::<kube::runtime::reflector::Store<K>>());
        if let Some(store) = found {
            return store.clone();
        }
        let (store, kept) = cached(kube::Api::<K>::all(self.client.clone()), what);
        let shutdown = self.shutdown.clone();
        self.tracker.spawn(async move {
            tokio::select! {
                () = kept => {}
                () = shutdown.cancelled() => {}
            }
        });
        stores.push(Box::new(store.clone()));
        store
    }

    /// Waits for every watch to end once `shutdown` is cancelled.
    pub async fn stopped(&self) {
        self.tracker.close();
        self.tracker.wait().await;
    }
}

/// The Lease the controller managers compete for, and its namespace.
pub const LEASE_NAME: &str = "kube-controller-manager";
pub const LEASE_NAMESPACE: &str = "kube-system";
/// The events' source component, as upstream.
pub const COMPONENT: &str = "kube-controller-manager";

/// The controllers this process runs, by upstream's names, with the short names upstream
/// still accepts.
pub const CONTROLLERS: &[(&str, &str)] = &[
    ("cronjob-controller", "cronjob"),
    ("deployment-controller", "deployment"),
    ("garbage-collector-controller", "garbagecollector"),
    ("job-controller", "job"),
    ("node-lifecycle-controller", "nodelifecycle"),
    ("pod-garbage-collector-controller", "podgc"),
    ("replicaset-controller", "replicaset"),
    (
        "root-ca-certificate-publisher-controller",
        "root-ca-cert-publisher",
    ),
    ("serviceaccount-controller", "serviceaccount"),
];

/// `--controllers`: `*` turns on every controller, `name` one, `-name` turns one off; the
/// first entry that names a controller decides for it (upstream `IsControllerEnabled`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection(Vec<String>);

impl Default for Selection {
    fn default() -> Self {
        Selection(vec!["*".into()])
    }
}

impl Selection {
    /// Parses the flag's entries, refusing names no controller has.
    pub fn parse(entries: &[String]) -> Result<Selection, String> {
        let mut canonical = Vec::new();
        for entry in entries.iter().map(|e| e.trim()) {
            if entry == "*" {
                canonical.push(entry.to_string());
                continue;
            }
            let (sign, name) = match entry.strip_prefix('-') {
                Some(name) => ("-", name),
                None => ("", entry),
            };
            let known = CONTROLLERS
                .iter()
                .find(|(full, short)| name == *full || name == *short)
                .ok_or_else(|| format!("{name:?} is not in the list of known controllers"))?;
            canonical.push(format!("{sign}{}", known.0));
        }
        Ok(Selection(canonical))
    }

    pub fn enabled(&self, name: &str) -> bool {
        for entry in &self.0 {
            if entry == name {
                return true;
            }
            if entry.strip_prefix('-') == Some(name) {
                return false;
            }
        }
        self.0.iter().any(|e| e == "*")
    }
}

#[derive(Debug, Clone)]
pub struct ControllerManagerConfig {
    /// Which controllers run (`--controllers`).
    pub controllers: Selection,
    /// `None` runs the controllers at once, without an election (`--leader-elect=false`).
    pub leader_election: Option<LeaderElectionConfig>,
    pub pod_gc: PodGcConfig,
    pub node_lifecycle: nodelifecycle::NodeLifecycleConfig,
    /// The CA bundle published in every namespace as `kube-root-ca.crt`.
    pub root_ca: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error(transparent)]
    LeadershipLost(#[from] LeaderElectionError),
}

/// Runs the controllers until `shutdown` or until leadership is lost.
pub async fn run(
    client: kube::Client,
    config: ControllerManagerConfig,
    shutdown: CancellationToken,
) -> Result<(), ControllerError> {
    let Some(election) = config.leader_election.clone() else {
        run_controllers(client, &config, shutdown.clone()).await;
        return Ok(());
    };
    let mut elector = LeaderElector::new(client.clone(), election, COMPONENT)?;
    if !elector.acquire(&shutdown).await {
        return Ok(());
    }
    tracing::info!(
        identity = elector.identity(),
        "leading: starting controllers"
    );
    let controllers = shutdown.child_token();
    let tracker = TaskTracker::new();
    tracker.spawn({
        let token = controllers.clone();
        let config = config.clone();
        async move { run_controllers(client, &config, token).await }
    });
    tracker.close();
    let outcome = elector.renew_until(&shutdown).await;
    controllers.cancel();
    tracker.wait().await;
    if let Err(e) = &outcome {
        tracing::error!(error = %e, "stopping controllers");
    }
    Ok(outcome?)
}

async fn run_controllers(
    client: kube::Client,
    config: &ControllerManagerConfig,
    shutdown: CancellationToken,
) {
    let on = |name: &str| config.controllers.enabled(name);
    // A controller that is off is a future that is done at once.
    let when = |name: &str, run: futures::future::BoxFuture<'static, ()>| {
        if on(name) {
            run
        } else {
            Box::pin(async {})
        }
    };
    let informers = Arc::new(Informers::new(client.clone(), shutdown.clone()));
    tokio::join!(
        when(
            "pod-garbage-collector-controller",
            Box::pin(PodGc::run(
                client.clone(),
                informers.clone(),
                config.pod_gc.clone(),
                shutdown.clone()
            ))
        ),
        when(
            "replicaset-controller",
            Box::pin(replicaset::ReplicaSetController::run(
                client.clone(),
                informers.clone(),
                shutdown.clone()
            ))
        ),
        when(
            "deployment-controller",
            Box::pin(deployment::DeploymentController::run(
                client.clone(),
                informers.clone(),
                shutdown.clone()
            ))
        ),
        when(
            "job-controller",
            Box::pin(job::JobController::run(
                client.clone(),
                informers.clone(),
                shutdown.clone()
            ))
        ),
        when(
            "cronjob-controller",
            Box::pin(cronjob::CronJobController::run(
                client.clone(),
                shutdown.clone()
            ))
        ),
        when(
            "node-lifecycle-controller",
            Box::pin(nodelifecycle::NodeLifecycleController::run(
                client.clone(),
                informers.clone(),
                config.node_lifecycle.clone(),
                shutdown.clone()
            ))
        ),
        serviceaccounts::run(
            client.clone(),
            on("serviceaccount-controller"),
            config
                .root_ca
                .clone()
                .filter(|_| on("root-ca-certificate-publisher-controller")),
            shutdown.clone()
        ),
        when(
            "garbage-collector-controller",
            Box::pin(garbagecollector::run(client, shutdown))
        ),
    );
    informers.stopped().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn selection(flag: &str) -> Result<Selection, String> {
        Selection::parse(&flag.split(',').map(str::to_string).collect::<Vec<_>>())
    }

    #[test]
    fn the_first_entry_naming_a_controller_decides_and_star_covers_the_rest() {
        let all = Selection::default();
        assert!(CONTROLLERS.iter().all(|(name, _)| all.enabled(name)));
        let some = selection("-job,*").expect("valid");
        assert!(!some.enabled("job-controller"));
        assert!(some.enabled("replicaset-controller"));
        let only = selection("serviceaccount,root-ca-cert-publisher").expect("valid");
        assert!(only.enabled("serviceaccount-controller"));
        assert!(only.enabled("root-ca-certificate-publisher-controller"));
        assert!(!only.enabled("garbage-collector-controller"));
        assert!(selection("deployment-controller,-deployment")
            .expect("valid")
            .enabled("deployment-controller"));
        assert_eq!(
            selection("*,-nosuch"),
            Err("\"nosuch\" is not in the list of known controllers".into())
        );
    }
}
