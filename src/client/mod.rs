//! What rkube's own components (scheduler, kubelet) share as clients of the API server:
//! building a `kube::Client` from a kubeconfig, recording Events, and taking a watch's
//! (re)lists whole.

mod recorder;
mod relist;

use std::path::Path;

pub use recorder::{EventRecorder, ObjectRef};
pub use relist::{Change, Relist};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot read kubeconfig {path}: {reason}")]
    Kubeconfig { path: String, reason: String },
    #[error("cannot build a client from {path}: {reason}")]
    Build { path: String, reason: String },
}

/// A client authenticated by the kubeconfig at `path`.
pub async fn from_kubeconfig(path: &Path) -> Result<kube::Client, ClientError> {
    let shown = path.display().to_string();
    let config =
        kube::config::Kubeconfig::read_from(path).map_err(|e| ClientError::Kubeconfig {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
    let config =
        kube::Config::from_custom_kubeconfig(config, &kube::config::KubeConfigOptions::default())
            .await
            .map_err(|e| ClientError::Kubeconfig {
                path: shown.clone(),
                reason: e.to_string(),
            })?;
    kube::Client::try_from(config).map_err(|e| ClientError::Build {
        path: shown,
        reason: e.to_string(),
    })
}
