//! The controller manager: the controllers that keep the cluster's objects consistent with
//! each other (today the Pod garbage collector), behind one leader election.
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

pub mod leaderelection;
pub mod podgc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use leaderelection::{LeaderElectionConfig, LeaderElectionError, LeaderElector};
use podgc::{PodGc, PodGcConfig};

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
    PodGc::run(client, config.pod_gc.clone(), shutdown).await;
}
