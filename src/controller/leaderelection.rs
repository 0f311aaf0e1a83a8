//! Leader election through a `coordination.k8s.io/v1` Lease, as client-go's `leaderelection`
//! package does it for kube-controller-manager and kube-scheduler.
//!
//! Every candidate tries, each retry period, to take or renew the Lease. A Lease held by
//! someone else counts as expired only when this candidate has seen the same record, unchanged,
//! for a whole lease duration measured on its own clock: a candidate never compares its clock
//! with the holder's `renewTime` (upstream's `observedTime` rule). Writes carry the Lease's
//! `resourceVersion`, so two candidates racing for an expired Lease cannot both win. A leader
//! that cannot renew within the renew deadline has lost and must stop acting at once.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::PostParams;
use kube::Api;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::client::{EventRecorder, ObjectRef};

/// How the election is run; the defaults are upstream's (`--leader-elect-*` flags).
#[derive(Debug, Clone)]
pub struct LeaderElectionConfig {
    pub namespace: String,
    pub name: String,
    /// This candidate's name in `holderIdentity`: host name and a random suffix, as upstream.
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

impl LeaderElectionConfig {
    /// Upstream's defaults: 15 s lease, 10 s renew deadline, 2 s retry period.
    pub fn new(namespace: &str, name: &str, identity: &str) -> LeaderElectionConfig {
        LeaderElectionConfig {
            namespace: namespace.into(),
            name: name.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LeaderElectionError {
    #[error("leaderelection lost: lease {namespace}/{name} not renewed within {deadline:?}")]
    Lost {
        namespace: String,
        name: String,
        deadline: Duration,
    },
    #[error(
        "leader election needs renew deadline < lease duration and retry period < renew deadline"
    )]
    BadTiming,
}

/// The identity a candidate uses: `<hostname>_<random>`, unique per process.
pub fn default_identity() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    format!("{host}_{}", uuid::Uuid::new_v4())
}

/// The Lease record as this candidate last saw it, and when (on the local clock).
struct Observed {
    spec: LeaseSpec,
    at: Instant,
}

pub struct LeaderElector {
    config: LeaderElectionConfig,
    leases: Api<Lease>,
    recorder: EventRecorder,
    observed: Option<Observed>,
}

fn now_micro() -> MicroTime {
    MicroTime(Timestamp::now())
}

impl LeaderElector {
    pub fn new(
        client: kube::Client,
        config: LeaderElectionConfig,
        component: &str,
    ) -> Result<LeaderElector, LeaderElectionError> {
        if config.lease_duration <= config.renew_deadline
            || config.renew_deadline <= config.retry_period
        {
            return Err(LeaderElectionError::BadTiming);
        }
        Ok(LeaderElector {
            leases: Api::namespaced(client.clone(), &config.namespace),
            recorder: EventRecorder::new(client, component, ""),
            config,
            observed: None,
        })
    }

    pub fn identity(&self) -> &str {
        &self.config.identity
    }

    /// Waits until this candidate holds the Lease; false if `shutdown` came first.
    pub async fn acquire(&mut self, shutdown: &CancellationToken) -> bool {
        tracing::info!(
            lease = %format!("{}/{}", self.config.namespace, self.config.name),
            identity = %self.config.identity,
            "attempting to acquire leader lease"
        );
        loop {
            if self.try_acquire_or_renew().await {
                tracing::info!(identity = %self.config.identity, "successfully acquired lease");
                let lease = self.observed_lease_ref();
                let message = format!("{} became leader", self.config.identity);
                self.recorder
                    .record(&lease, "Normal", "LeaderElection", &message);
                return true;
            }
            tokio::select! {
                () = tokio::time::sleep(jittered(self.config.retry_period)) => {}
                () = shutdown.cancelled() => return false,
            }
        }
    }

    /// Renews the Lease every retry period until `shutdown` (Ok) or until a renewal does not
    /// succeed within the renew deadline (Err: leadership is lost).
    pub async fn renew_until(
        &mut self,
        shutdown: &CancellationToken,
    ) -> Result<(), LeaderElectionError> {
        loop {
            tokio::select! {
                () = tokio::time::sleep(self.config.retry_period) => {}
                () = shutdown.cancelled() => return Ok(()),
            }
            let deadline = Instant::now() + self.config.renew_deadline;
            loop {
                let attempt = tokio::time::timeout_at(deadline, self.try_acquire_or_renew());
                match attempt.await {
                    Ok(true) => break,
                    Ok(false) if Instant::now() + self.config.retry_period < deadline => {
                        tokio::select! {
                            () = tokio::time::sleep(self.config.retry_period) => {}
                            () = shutdown.cancelled() => return Ok(()),
                        }
                    }
                    _ => {
                        return Err(LeaderElectionError::Lost {
                            namespace: self.config.namespace.clone(),
                            name: self.config.name.clone(),
                            deadline: self.config.renew_deadline,
                        })
                    }
                }
            }
        }
    }

    fn observed_lease_ref(&self) -> ObjectRef {
        ObjectRef {
            kind: "Lease".into(),
            api_version: "coordination.k8s.io/v1".into(),
            namespace: self.config.namespace.clone(),
            name: self.config.name.clone(),
            uid: String::new(),
            field_path: String::new(),
        }
    }

    /// One try (upstream `tryAcquireOrRenew`): true when this candidate holds the Lease now.
    async fn try_acquire_or_renew(&mut self) -> bool {
        let me = self.config.identity.clone();
        let seconds = i32::try_from(self.config.lease_duration.as_secs()).unwrap_or(i32::MAX);
        let now = now_micro();
        let current = match self.leases.get_opt(&self.config.name).await {
            Ok(current) => current,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the leader lease");
                return false;
            }
        };
        let Some(mut lease) = current else {
            let spec = LeaseSpec {
                holder_identity: Some(me),
                lease_duration_seconds: Some(seconds),
                acquire_time: Some(now.clone()),
                renew_time: Some(now),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            };
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.config.name.clone()),
                    namespace: Some(self.config.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(spec.clone()),
            };
            return match self.leases.create(&PostParams::default(), &lease).await {
                Ok(_) => {
                    self.observed = Some(Observed {
                        spec,
                        at: Instant::now(),
                    });
                    true
                }
                Err(e) => {
                    tracing::debug!(error = %e, "cannot create the leader lease");
                    false
                }
            };
        };
        let old = lease.spec.clone().unwrap_or_default();
        if self.observed.as_ref().is_none_or(|o| o.spec != old) {
            self.observed = Some(Observed {
                spec: old.clone(),
                at: Instant::now(),
            });
        }
        let holder = old.holder_identity.clone().unwrap_or_default();
        let held_by_me = holder == me;
        let observed_at = self
            .observed
            .as_ref()
            .map(|o| o.at)
            .unwrap_or_else(Instant::now);
        let their_duration = old
            .lease_duration_seconds
            .and_then(|s| u64::try_from(s).ok())
            .map(Duration::from_secs)
            .unwrap_or(self.config.lease_duration);
        if !holder.is_empty() && !held_by_me && observed_at + their_duration > Instant::now() {
            return false;
        }
        let spec = LeaseSpec {
            holder_identity: Some(me),
            lease_duration_seconds: Some(seconds),
            acquire_time: if held_by_me {
                old.acquire_time.clone()
            } else {
                Some(now.clone())
            },
            renew_time: Some(now),
            lease_transitions: Some(if held_by_me {
                old.lease_transitions.unwrap_or(0)
            } else {
                old.lease_transitions.unwrap_or(0).saturating_add(1)
            }),
            ..old
        };
        lease.spec = Some(spec.clone());
        // The update carries the resourceVersion just read: a racing candidate gets 409.
        match self
            .leases
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => {
                self.observed = Some(Observed {
                    spec,
                    at: Instant::now(),
                });
                true
            }
            Err(e) => {
                tracing::debug!(error = %e, "cannot update the leader lease");
                false
            }
        }
    }
}

/// `period` stretched by up to 20 %, as upstream's `wait.JitterUntil` with factor 1.2.
fn jittered(period: Duration) -> Duration {
    let factor: f64 = rand::random::<f64>() * 0.2;
    period + period.mul_f64(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_twenty_percent() {
        for _ in 0..100 {
            let d = jittered(Duration::from_secs(10));
            assert!(d >= Duration::from_secs(10) && d <= Duration::from_secs(12));
        }
    }

    #[test]
    fn identities_are_unique_per_process() {
        assert_ne!(default_identity(), default_identity());
    }
}
