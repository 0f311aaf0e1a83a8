//! The ConfigMaps and Secrets the node's Pods use, each kept current by a watch of that one
//! object (upstream's watch-based manager).
//!
//! A pod worker registers each object its Pod reads (for volumes, the environment, image pull
//! secrets) before it first reads it, and drops its registrations when it ends (upstream
//! registers them all when the Pod arrives). The first registration of an object starts a
//! watch selecting it by `metadata.name` (the one list and watch the node authorizer lets a
//! kubelet make); the last one going stops it. Reads are served from what the watch last saw,
//! so a running Pod's volumes cost nothing until their data changes. A change pokes every
//! worker that uses the object, which then brings its files up to date at once, where
//! upstream's kubelet waits for its next sync, up to a minute later.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::NamespaceResourceScope;
use kube::runtime::watcher;
use kube::runtime::WatchStreamExt as _;
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::client::{Change, Relist};

/// How long a read waits for an object's first list (upstream's one second).
const SYNC_WAIT: Duration = Duration::from_secs(1);

/// The objects of both kinds that the node's Pods refer to.
pub struct Sources {
    pub config_maps: Cache<ConfigMap>,
    pub secrets: Cache<Secret>,
}

impl Sources {
    pub fn new(client: kube::Client) -> Sources {
        Sources {
            config_maps: Cache::new(client.clone(), "configmap"),
            secrets: Cache::new(client, "secret"),
        }
    }
}

/// What a watch has seen of its object.
#[derive(Debug)]
enum Seen<K> {
    /// The first list has not completed.
    Syncing,
    /// The object as last seen (`None`: it does not exist), and how many times that changed.
    Synced {
        object: Option<Arc<K>>,
        changes: u64,
    },
}

/// One watched object: what was seen, and the workers to poke when it changes.
struct Watched<K> {
    seen: watch::Sender<Seen<K>>,
    users: Mutex<HashMap<String, mpsc::Sender<()>>>,
}

struct Item<K> {
    watched: Arc<Watched<K>>,
    /// Stops the watch when the item goes.
    _stop: DropGuard,
}

/// Objects of one kind, by `namespace/name`, each followed by its own watch while used.
pub struct Cache<K> {
    client: kube::Client,
    /// The kind's name in messages (`configmap`), as upstream's `NotFound` names it.
    noun: &'static str,
    items: Mutex<HashMap<(String, String), Item<K>>>,
}

impl<K> Cache<K>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Debug
        + Send
        + Sync
        + 'static,
{
    fn new(client: kube::Client, noun: &'static str) -> Cache<K> {
        Cache {
            client,
            noun,
            items: Mutex::new(HashMap::new()),
        }
    }

    fn items(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Item<K>>> {
        self.items.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers `user` (a Pod's UID) as using `namespace/name`: `poke` is sent to whenever
    /// the object changes. The first user starts the object's watch.
    pub fn register(&self, namespace: &str, name: &str, user: &str, poke: mpsc::Sender<()>) {
        let mut items = self.items();
        let key = (namespace.to_string(), name.to_string());
        let item = items
            .entry(key)
            .or_insert_with(|| self.follow(namespace, name));
        let mut users = item
            .watched
            .users
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        users.insert(user.to_string(), poke);
    }

    /// `user` no longer uses `namespace/name`; the last user going stops its watch.
    pub fn unregister(&self, namespace: &str, name: &str, user: &str) {
        let mut items = self.items();
        let key = (namespace.to_string(), name.to_string());
        let Some(item) = items.get(&key) else {
            return;
        };
        let mut users = item
            .watched
            .users
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        users.remove(user);
        if users.is_empty() {
            drop(users);
            items.remove(&key);
        }
    }

    /// How many times the object changed since it was first seen; 0 before that, or when it
    /// is not registered. A sum of these over a Pod's objects moves whenever one of them does.
    pub fn changes(&self, namespace: &str, name: &str) -> u64 {
        let key = (namespace.to_string(), name.to_string());
        let items = self.items();
        let Some(item) = items.get(&key) else {
            return 0;
        };
        let seen = item.watched.seen.borrow();
        match &*seen {
            Seen::Syncing => 0,
            Seen::Synced { changes, .. } => *changes,
        }
    }

    /// The object as its watch last saw it, `None` if it does not exist. Waits up to a second
    /// for a watch that has not listed yet; an object not registered is an error, as upstream's.
    pub async fn get(&self, namespace: &str, name: &str) -> Result<Option<K>, String> {
        let key = (namespace.to_string(), name.to_string());
        let mut seen = match self.items().get(&key) {
            Some(item) => item.watched.seen.subscribe(),
            None => return Err(format!("object \"{namespace}\"/\"{name}\" not registered")),
        };
        let synced = tokio::time::timeout(
            SYNC_WAIT,
            seen.wait_for(|s| matches!(s, Seen::Synced { .. })),
        )
        .await;
        match synced {
            Ok(Ok(seen)) => match &*seen {
                Seen::Synced {
                    object: Some(object),
                    ..
                } => Ok(Some(K::clone(object))),
                _ => Ok(None),
            },
            Ok(Err(_)) | Err(_) => Err(format!(
                "failed to sync {} cache: timed out waiting for the condition",
                self.noun
            )),
        }
    }

    /// Starts the watch of one object.
    fn follow(&self, namespace: &str, name: &str) -> Item<K> {
        let watched = Arc::new(Watched {
            seen: watch::Sender::new(Seen::Syncing),
            users: Mutex::new(HashMap::new()),
        });
        let stop = CancellationToken::new();
        let api = Api::<K>::namespaced(self.client.clone(), namespace);
        let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
        tokio::spawn(watch_one(api, config, watched.clone(), stop.clone()));
        Item {
            watched,
            _stop: stop.drop_guard(),
        }
    }
}

/// Follows one object until `stop`: each whole change is recorded and its users poked.
async fn watch_one<K>(
    api: Api<K>,
    config: watcher::Config,
    watched: Arc<Watched<K>>,
    stop: CancellationToken,
) where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let events = watcher::watcher(api, config).default_backoff();
    let mut events = std::pin::pin!(events);
    let mut relist = Relist::new();
    loop {
        let event = tokio::select! {
            () = stop.cancelled() => return,
            event = events.next() => event,
        };
        let object = match event {
            Some(Ok(event)) => match relist.step(event) {
                Some(Change::Listed(listed)) => listed.into_iter().next().map(Arc::new),
                Some(Change::Applied(object)) => Some(Arc::new(object)),
                Some(Change::Deleted(_)) => None,
                None => continue,
            },
            Some(Err(e)) => {
                tracing::debug!(error = %e, "watch of a Pod's source failed; retrying");
                continue;
            }
            None => return,
        };
        watched.seen.send_modify(|seen| {
            let changes = match seen {
                Seen::Syncing => 1,
                Seen::Synced { changes, .. } => *changes + 1,
            };
            *seen = Seen::Synced { object, changes };
        });
        let users = watched.users.lock().unwrap_or_else(PoisonError::into_inner);
        for poke in users.values() {
            // A full mailbox already holds a wake-up.
            let _ = poke.try_send(());
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A client of an address where nothing answers: watches never list.
    fn unanswered() -> kube::Client {
        let url = "http://127.0.0.1:1".parse().expect("a URL");
        kube::Client::try_from(kube::Config::new(url)).expect("a client")
    }

    #[tokio::test]
    async fn an_object_is_followed_while_any_pod_uses_it() {
        let sources = Sources::new(unanswered());
        let cache = &sources.config_maps;
        let (poke, _woken) = mpsc::channel(1);
        assert_eq!(
            cache.get("ns", "cfg").await.unwrap_err(),
            r#"object "ns"/"cfg" not registered"#
        );
        cache.register("ns", "cfg", "pod-a", poke.clone());
        cache.register("ns", "cfg", "pod-b", poke.clone());
        cache.unregister("ns", "cfg", "pod-a");
        // Still used by pod-b: a read waits for a first list that does not come.
        assert_eq!(
            cache.get("ns", "cfg").await.unwrap_err(),
            "failed to sync configmap cache: timed out waiting for the condition"
        );
        assert_eq!(cache.changes("ns", "cfg"), 0);
        cache.unregister("ns", "cfg", "pod-b");
        assert_eq!(
            cache.get("ns", "cfg").await.unwrap_err(),
            r#"object "ns"/"cfg" not registered"#
        );
        // The kinds are apart: a Secret of the same name was never registered.
        assert!(sources.secrets.get("ns", "cfg").await.is_err());
    }
}
