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

/// Drops an object's `managedFields` as it arrives from a watch, before it is kept: the
/// scheduler and the controllers never read them, and they are often the larger part of a
/// small object (upstream's kube-scheduler and kube-controller-manager trim their informers'
/// objects the same way). Absent — not empty — so that an update built from the kept copy
/// leaves the stored ones as they are.
pub fn strip_managed_fields<K: kube::Resource>(object: &mut K) {
    object.meta_mut().managed_fields = None;
}

/// A client authenticated by the kubeconfig at `path`.
pub async fn from_kubeconfig(path: &Path) -> Result<kube::Client, ClientError> {
    build(path, None).await
}

/// A client for one of rkube's components: its User-Agent names the component as upstream's
/// do (`kubelet/v1.32.0 (linux/amd64) rkube`), so that the API server records its writes in
/// `managedFields` under that name (`kubelet`, `kube-scheduler`, …).
pub async fn for_component(path: &Path, component: &str) -> Result<kube::Client, ClientError> {
    build(path, Some(component)).await
}

async fn build(path: &Path, component: Option<&str>) -> Result<kube::Client, ClientError> {
    let shown = path.display().to_string();
    let config =
        kube::config::Kubeconfig::read_from(path).map_err(|e| ClientError::Kubeconfig {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
    let mut config =
        kube::Config::from_custom_kubeconfig(config, &kube::config::KubeConfigOptions::default())
            .await
            .map_err(|e| ClientError::Kubeconfig {
                path: shown.clone(),
                reason: e.to_string(),
            })?;
    if let Some(component) = component {
        let agent = format!(
            "{component}/v1.32.0 ({}/{}) rkube",
            std::env::consts::OS,
            match std::env::consts::ARCH {
                "x86_64" => "amd64",
                "aarch64" => "arm64",
                other => other,
            }
        );
        let value = http::HeaderValue::from_str(&agent).map_err(|e| ClientError::Build {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
        config.headers.push((http::header::USER_AGENT, value));
    }
    kube::Client::try_from(config).map_err(|e| ClientError::Build {
        path: shown,
        reason: e.to_string(),
    })
}
