//! The controller manager: the controllers that keep the cluster's objects consistent with
//! each other (the ReplicaSet, Deployment and Job controllers, node lifecycle, the garbage
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

pub mod deployment;
pub mod garbagecollector;
pub mod job;
pub mod leaderelection;
pub mod nodelifecycle;
pub mod podgc;
pub mod replicaset;
pub mod serviceaccounts;

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
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    use futures::StreamExt as _;
    use kube::runtime::{reflector, watcher, WatchStreamExt as _};
    let (store, writer) = reflector::store();
    let kept = reflector::reflector(writer, watcher::watcher(api, watcher::Config::default()))
        .default_backoff()
        .for_each(move |event| async move {
            if let Err(e) = event {
                tracing::warn!(error = %e, "{what} watch failed; retrying");
            }
        });
    (store, kept)
}

/// The Lease the controller managers compete for, and its namespace.
pub const LEASE_NAME: &str = "kube-controller-manager";
pub const LEASE_NAMESPACE: &str = "kube-system";
/// The events' source component, as upstream.
pub const COMPONENT: &str = "kube-controller-manager";

#[derive(Debug, Clone)]
pub struct ControllerManagerConfig {
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
    tokio::join!(
        PodGc::run(client.clone(), config.pod_gc.clone(), shutdown.clone()),
        replicaset::ReplicaSetController::run(client.clone(), shutdown.clone()),
        deployment::DeploymentController::run(client.clone(), shutdown.clone()),
        job::JobController::run(client.clone(), shutdown.clone()),
        nodelifecycle::NodeLifecycleController::run(
            client.clone(),
            config.node_lifecycle.clone(),
            shutdown.clone()
        ),
        serviceaccounts::run(client.clone(), config.root_ca.clone(), shutdown.clone()),
        garbagecollector::run(client, shutdown),
    );
}
