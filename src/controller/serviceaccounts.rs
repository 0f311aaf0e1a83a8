//! What every namespace is given, as upstream's `serviceaccount-controller` and
//! `root-ca-cert-publisher` give it: a ServiceAccount named `default`, and the ConfigMap
//! `kube-root-ca.crt` holding the cluster's CA bundle (`ca.crt`), so Pods can verify the API
//! server. Each is made again when deleted, and the ConfigMap is put back when its contents are
//! changed; a namespace that is terminating gets neither.
//!
//! Both run as one reconciler keyed by namespace: a namespace's event, or an event on either of
//! its two objects (watched by name only), brings its namespace back to be checked.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, ServiceAccount};
use kube::api::{ObjectMeta, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::Api;
use tokio_util::sync::CancellationToken;

/// The account every namespace is given.
const DEFAULT: &str = "default";
/// The ConfigMap the CA bundle is published in, and its key.
pub const ROOT_CA_CONFIG_MAP: &str = "kube-root-ca.crt";
pub const ROOT_CA_KEY: &str = "ca.crt";
const DESCRIPTION_ANNOTATION: &str = "kubernetes.io/description";
const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

/// Why one namespace could not be brought up to date (it is retried).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct SyncError(#[from] kube::Error);

struct Context {
    client: kube::Client,
    /// Whether the `default` accounts are kept (the serviceaccount controller is on).
    accounts: bool,
    /// The PEM bundle to publish; `None` publishes nothing (no `--root-ca-file` and none in
    /// the kubeconfig).
    root_ca: Option<String>,
}

/// Runs the controllers until `shutdown`: the `default` accounts' if `accounts`, the CA
/// bundle's if there is one to publish.
pub async fn run(
    client: kube::Client,
    accounts: bool,
    root_ca: Option<String>,
    shutdown: CancellationToken,
) {
    if !accounts && root_ca.is_none() {
        return;
    }
    let by_namespace =
        |meta: &ObjectMeta| meta.namespace.as_deref().map(ObjectRef::<Namespace>::new);
    let named = |name: &str| watcher::Config::default().fields(&format!("metadata.name={name}"));
    let context = Arc::new(Context {
        client: client.clone(),
        accounts,
        root_ca,
    });
    tracing::info!("serviceaccount and root-ca-cert-publisher controllers started");
    Controller::new(
        Api::<Namespace>::all(client.clone()),
        watcher::Config::default(),
    )
    .watches(
        Api::<ServiceAccount>::all(client.clone()),
        named(DEFAULT),
        move |sa| by_namespace(&sa.metadata),
    )
    .watches(
        Api::<ConfigMap>::all(client),
        named(ROOT_CA_CONFIG_MAP),
        move |cm| by_namespace(&cm.metadata),
    )
    .graceful_shutdown_on(async move { shutdown.cancelled().await })
    .run(
        sync,
        |_, error, _| {
            tracing::debug!(%error, "namespace sync failed; retrying");
            Action::requeue(std::time::Duration::from_secs(1))
        },
        context,
    )
    .for_each(|_| async {})
    .await;
}

fn terminating(ns: &Namespace) -> bool {
    ns.metadata.deletion_timestamp.is_some()
        || ns.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Terminating")
}

async fn sync(ns: Arc<Namespace>, ctx: Arc<Context>) -> Result<Action, SyncError> {
    let Some(name) = ns.metadata.name.as_deref() else {
        return Ok(Action::await_change());
    };
    if terminating(&ns) {
        return Ok(Action::await_change());
    }
    let post = PostParams::default();
    let accounts: Api<ServiceAccount> = Api::namespaced(ctx.client.clone(), name);
    if ctx.accounts && accounts.get_opt(DEFAULT).await?.is_none() {
        let account = ServiceAccount {
            metadata: ObjectMeta {
                name: Some(DEFAULT.to_string()),
                ..ObjectMeta::default()
            },
            ..ServiceAccount::default()
        };
        ignore_conflicts(accounts.create(&post, &account).await)?;
    }
    if let Some(ca) = &ctx.root_ca {
        let maps: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), name);
        let data = BTreeMap::from([(ROOT_CA_KEY.to_string(), ca.clone())]);
        match maps.get_opt(ROOT_CA_CONFIG_MAP).await? {
            None => {
                let map = ConfigMap {
                    metadata: ObjectMeta {
                        name: Some(ROOT_CA_CONFIG_MAP.to_string()),
                        annotations: Some(BTreeMap::from([(
                            DESCRIPTION_ANNOTATION.to_string(),
                            DESCRIPTION.to_string(),
                        )])),
                        ..ObjectMeta::default()
                    },
                    data: Some(data),
                    ..ConfigMap::default()
                };
                ignore_conflicts(maps.create(&post, &map).await)?;
            }
            Some(mut map) if map.data.as_ref() != Some(&data) || map.binary_data.is_some() => {
                // Put back what was changed, keeping whatever else the object carries.
                map.data = Some(data);
                map.binary_data = None;
                map.metadata
                    .annotations
                    .get_or_insert_with(BTreeMap::new)
                    .entry(DESCRIPTION_ANNOTATION.to_string())
                    .or_insert_with(|| DESCRIPTION.to_string());
                maps.replace(ROOT_CA_CONFIG_MAP, &post, &map).await?;
            }
            Some(_) => {}
        }
    }
    Ok(Action::await_change())
}

/// A create that lost a race to another writer (409 AlreadyExists) leaves the object there,
/// which is what was wanted; a namespace that began terminating (403) is left alone.
fn ignore_conflicts<T>(result: Result<T, kube::Error>) -> Result<(), kube::Error> {
    match result {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 409 || status.code == 403 => Ok(()),
        Err(e) => Err(e),
    }
}

/// The CA bundle to publish: the file named by `--root-ca-file`, or else the certificate
/// authority of the kubeconfig's current cluster, as upstream falls back to its client's.
pub fn root_ca(
    root_ca_file: Option<&std::path::Path>,
    kubeconfig: &std::path::Path,
) -> anyhow::Result<Option<String>> {
    use anyhow::Context as _;
    if let Some(path) = root_ca_file {
        let pem = std::fs::read_to_string(path)
            .with_context(|| format!("reading --root-ca-file {}", path.display()))?;
        return Ok(Some(pem));
    }
    let config = kube::config::Kubeconfig::read_from(kubeconfig)
        .with_context(|| format!("reading {}", kubeconfig.display()))?;
    let context = config.current_context.as_deref().and_then(|current| {
        config
            .contexts
            .iter()
            .find(|c| c.name == current)
            .and_then(|c| c.context.as_ref())
    });
    let cluster = context.and_then(|context| {
        config
            .clusters
            .iter()
            .find(|c| c.name == context.cluster)
            .and_then(|c| c.cluster.as_ref())
    });
    let Some(cluster) = cluster else {
        return Ok(None);
    };
    if let Some(data) = &cluster.certificate_authority_data {
        use base64::Engine as _;
        let pem = base64::engine::general_purpose::STANDARD
            .decode(data)
            .context("the kubeconfig's certificate-authority-data is not base64")?;
        return Ok(Some(String::from_utf8_lossy(&pem).into_owned()));
    }
    match &cluster.certificate_authority {
        Some(path) => Ok(Some(std::fs::read_to_string(path).with_context(|| {
            format!("reading the kubeconfig's certificate-authority {path}")
        })?)),
        None => Ok(None),
    }
}
