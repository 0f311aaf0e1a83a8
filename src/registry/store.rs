//! The generic store: create, read, list, update, patch, delete and watch for any kind.
//!
//! What it does follows `apiserver/pkg/registry/generic/registry/store.go`: system metadata is
//! set here (uid, creationTimestamp, namespace), resourceVersion preconditions become 409s,
//! graceful deletion marks an object and leaves it for its owner to finish, and a watch only
//! shows what matches its selectors (an object that stops matching is seen as DELETED). Every
//! client's create, update and patch is recorded in `metadata.managedFields`; server-side
//! apply is in `store/apply.rs`.

use std::collections::VecDeque;
use std::sync::Arc;

use base64::Engine as _;
use futures::StreamExt as _;
use rand::Rng as _;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::decode::{field_warnings, strict_fields_error, Parsed};
use super::field_error::Literal;
use super::{FieldError, Strategy, UpdateTarget};
use crate::meta::managed_fields;
use crate::meta::patch::{apply_patch, PatchSchema, PatchType};
use crate::meta::selector::{FieldSelector, LabelSelector};
use crate::meta::{object, ApiError, Cause, GroupResource};
use crate::storage::{
    self, Attrs, AttrsOf, Cacher, EventType, Storage, StorageError, Stored, WatchStream,
};

/// How often generateName may collide before the create fails (upstream: 7 since v1.32).
const GENERATE_NAME_TRIES: usize = 8;

#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub dry_run: bool,
    /// What duplicate and unknown fields of the body do (`fieldValidation`).
    pub field_validation: FieldValidation,
    /// Admission: a last check of the object a write would store.
    pub admit: Option<Admit>,
    /// The manager recorded in `metadata.managedFields` (the request's `fieldManager`, else
    /// its User-Agent's product); None for the server's own writes, which keep the field as
    /// it was.
    pub field_manager: Option<String>,
    /// `force` of a server-side apply: take the fields other managers own.
    pub force: bool,
}

/// What a write does to `managedFields`.
#[derive(Debug, Clone, Copy)]
enum Tracking<'a> {
    /// The server's own write: the field stays as it was.
    Keep,
    /// An `Update` by this manager.
    Update(&'a str),
    /// A server-side apply: the object produced carries its managed fields already.
    Applied,
}

/// The `fieldValidation` level of a write, as upstream: duplicate and unknown fields are a 400
/// (`Strict`), a warning each (`Warn`, the default), or nothing (`Ignore`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FieldValidation {
    Ignore,
    #[default]
    Warn,
    Strict,
}

/// A check of the object a create or update would store, given the object it replaces (None
/// on create). It runs on the decoded object before the kind's create or update rules, and
/// inside the update's retry loop, as upstream's admission chain does.
#[derive(Clone)]
pub struct Admit(pub std::sync::Arc<AdmitFn>);

/// The check an [`Admit`] runs: the new object, then the current one (None on create).
pub type AdmitFn = dyn Fn(&Value, Option<&Value>) -> Result<(), ApiError> + Send + Sync;

impl std::fmt::Debug for Admit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Admit(..)")
    }
}

impl CreateOptions {
    fn admit(&self, new: &Value, old: Option<&Value>) -> Result<(), ApiError> {
        match &self.admit {
            Some(Admit(check)) => check(new, old),
            None => Ok(()),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    pub label: Option<LabelSelector>,
    pub field: Option<FieldSelector>,
    /// `resourceVersion=0`: any recent state will do, so the cache answers.
    pub any_version: bool,
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
    /// `resourceVersionMatch=Exact`: the list exactly as it was at this revision.
    pub exact: Option<i64>,
    /// `resourceVersion=N` (match unset or `NotOlderThan`): any state at least as new as N.
    pub not_older_than: Option<i64>,
}

#[derive(Debug)]
pub struct ListResult {
    /// The objects, each with its JSON (shared with the watch cache when listed from it).
    pub items: Vec<Stored>,
    pub resource_version: i64,
    pub continue_token: Option<String>,
    pub remaining: Option<usize>,
}

impl ListResult {
    /// The objects listed, in order.
    pub fn objects(&self) -> impl Iterator<Item = &Value> {
        self.items.iter().map(|s| &*s.object)
    }
}

#[derive(Debug, Clone, Default)]
pub struct WatchOptions {
    pub label: Option<LabelSelector>,
    pub field: Option<FieldSelector>,
    /// Where the watch starts; None (or 0) starts with the current objects as ADDED events.
    pub resource_version: Option<i64>,
    /// `sendInitialEvents=true`: current objects first, then a marker bookmark.
    pub send_initial_events: bool,
}

/// What [`Store::delete_collection`] did.
#[derive(Debug, Default)]
pub struct CollectionDeleted {
    /// The objects as listed before their deletion: the answer upstream gives.
    pub listed: Vec<Arc<Value>>,
    /// The revision of the newest page read.
    pub resource_version: i64,
    /// How many are still there, marked for a graceful deletion their owner has to finish.
    pub pending: usize,
}

#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    pub grace_period: Option<i64>,
    /// The legacy `orphanDependents`; never set together with `propagation`.
    pub orphan_dependents: Option<bool>,
    /// `propagationPolicy`.
    pub propagation: Option<Propagation>,
    pub uid: Option<String>,
    pub resource_version: Option<String>,
    pub dry_run: bool,
}

/// What a watch yields to the HTTP layer.
#[derive(Debug)]
pub enum WatchEvent {
    /// A change as this watcher sees it: the type is the watcher's own (a modification that
    /// makes an object start or stop matching its selectors is ADDED or DELETED), the event is
    /// the one every watcher of the change shares, with its object encoded once for all.
    Changed(EventType, Arc<storage::StorageEvent>),
    /// The current objects have all been sent (for `sendInitialEvents`).
    InitialEventsEnd(i64),
    Error(ApiError),
}

/// The resources with no watch cache: their reads and watches go to etcd (upstream's
/// `DefaultWatchCacheSizes`, which gives Events none: they are many, written once, rarely read
/// and kept an hour, so caching them costs memory and buys nothing).
const UNCACHED: &[(&str, &str)] = &[("", "events")];

/// Every store of the server, by (group, plural).
pub struct Registry {
    stores: Vec<Arc<Store>>,
}

impl Registry {
    /// Starts a watch cache for each kind and builds its store.
    pub async fn start(
        storage: Arc<dyn Storage>,
        prefix: &str,
        strategies: Vec<Arc<dyn Strategy>>,
        history_bytes: usize,
        tracker: &TaskTracker,
        shutdown: CancellationToken,
    ) -> Result<Registry, StorageError> {
        let prefixes = strategies
            .iter()
            .map(|s| {
                let info = s.info();
                let cached = !UNCACHED.contains(&(info.group, info.plural));
                let prefix = storage::list_prefix(prefix, info.plural, "");
                (prefix, cached.then(|| attrs_of(s.clone())))
            })
            .collect();
        let root = format!("{}/", prefix.trim_end_matches('/'));
        let caches =
            Cacher::start_all(storage, root, prefixes, history_bytes, tracker, shutdown).await?;
        let namespaces = strategies
            .iter()
            .zip(&caches)
            .find(|(s, _)| s.info().group.is_empty() && s.info().plural == "namespaces")
            .map(|(_, c)| c.clone());
        let sources = AdmissionSources {
            caches: strategies
                .iter()
                .zip(&caches)
                .filter(|(s, _)| s.info().group.is_empty())
                .map(|(s, c)| (s.info().plural, c.clone()))
                .collect(),
            prefix,
        };
        let mut stores = Vec::new();
        for (strategy, cacher) in strategies.into_iter().zip(caches) {
            let info = strategy.info();
            let store = Arc::new(Store {
                create_admission: strategy.create_admission(&sources),
                schema: strategy.patch_schema(),
                namespaces: if info.namespaced {
                    namespaces.clone()
                } else {
                    None
                },
                strategy,
                storage: cacher,
                prefix: prefix.to_string(),
            });
            stores.push(store);
        }
        Ok(Registry { stores })
    }

    pub fn get(&self, group: &str, plural: &str) -> Option<&Arc<Store>> {
        self.stores
            .iter()
            .find(|s| s.info().group == group && s.info().plural == plural)
    }

    pub fn stores(&self) -> &[Arc<Store>] {
        &self.stores
    }

    /// The watch cache of every kind, for the compactor to tell what history is gone.
    pub fn caches(&self) -> Vec<Arc<Cacher>> {
        self.stores.iter().map(|s| s.storage.clone()).collect()
    }
}

pub struct Store {
    pub strategy: Arc<dyn Strategy>,
    storage: Arc<Cacher>,
    prefix: String,
    /// The namespaces cache, for namespaced kinds: objects go only into existing namespaces.
    namespaces: Option<Arc<Cacher>>,
    /// Admission that reads other objects, run on creates (see [`CreateAdmission`]).
    create_admission: Option<Arc<dyn CreateAdmission>>,
    /// The kind's patch schema, built once: every create, patch and update reads it.
    schema: PatchSchema,
}

/// Admission that reads other objects to decide on, or complete, a new object (upstream's
/// plugins that consult informers, as ServiceAccount's). It runs on a create after decoding and
/// before the kind's create rules and validation; what it adds is no manager's.
#[async_trait::async_trait]
pub trait CreateAdmission: Send + Sync {
    async fn admit(&self, namespace: &str, obj: &mut Value) -> Result<(), ApiError>;
}

/// What the registry's stores need to build the admission of one kind: the watch caches of
/// the kinds it reads, by plural, and the key prefix.
pub struct AdmissionSources<'a> {
    pub caches: Vec<(&'static str, Arc<Cacher>)>,
    pub prefix: &'a str,
}

impl AdmissionSources<'_> {
    pub fn cache(&self, plural: &str) -> Option<Arc<Cacher>> {
        self.caches
            .iter()
            .find(|(p, _)| *p == plural)
            .map(|(_, c)| c.clone())
    }
}

/// Whether a list selects nothing out: upstream counts the items left after a page only then.
fn unfiltered(options: &ListOptions) -> bool {
    options.label.as_ref().is_none_or(|l| l.is_empty())
        && options.field.as_ref().is_none_or(|f| f.is_empty())
}

/// Translates a storage failure into the API error about `name`.
pub fn storage_error(gr: GroupResource<'_>, name: &str, err: StorageError) -> ApiError {
    match err {
        StorageError::NotFound(_) => ApiError::not_found(gr, name),
        StorageError::AlreadyExists(_) => ApiError::already_exists(gr, name),
        StorageError::Conflict { .. } => ApiError::modified(gr, name),
        StorageError::Expired { requested, oldest } => {
            ApiError::expired(format!("too old resource version: {requested} ({oldest})"))
        }
        // etcd refuses values over its request limit; upstream answers 500 here, which tells
        // the client nothing useful, so rkube answers 413 as for an oversized body.
        StorageError::TooLarge => {
            let mut e = ApiError::too_large(super::MAX_BODY_BYTES);
            e.message =
                format!("Request entity too large: {gr} \"{name}\" is larger than etcd accepts");
            e
        }
        StorageError::Unavailable(why) => {
            ApiError::service_unavailable(format!("the storage backend is unavailable: {why}"))
        }
        StorageError::Corrupt { .. } => ApiError::internal(err),
        StorageError::Rejected(api) => api,
    }
}

/// The 422 for a list of field errors. As upstream's `NewInvalid`, the message names the kind
/// qualified by its group (`Deployment.apps "web" is invalid: ...`; a core kind stays bare)
/// and the details carry the kind alone, which is what kubectl prints.
pub fn invalid(strategy: &dyn Strategy, name: &str, errors: Vec<FieldError>) -> ApiError {
    let info = strategy.info();
    let causes = errors.iter().map(FieldError::cause).collect();
    let qualified = if info.group.is_empty() {
        info.kind.to_string()
    } else {
        format!("{}.{}", info.kind, info.group)
    };
    let mut err = ApiError::invalid(&qualified, info.group_resource(), name, causes);
    err.details.kind = info.kind.to_string();
    err
}

impl Store {
    pub fn info(&self) -> &'static super::ResourceInfo {
        self.strategy.info()
    }

    /// Who a write by `manager` to `subresource` is recorded as in `managedFields`.
    fn writer<'a>(&self, manager: &'a str, subresource: &'a str) -> managed_fields::Writer<'a> {
        managed_fields::Writer {
            manager,
            api_version: self.info().api_version(),
            subresource,
            now: object::now_rfc3339(),
        }
    }

    fn gr(&self) -> GroupResource<'static> {
        self.info().group_resource()
    }

    fn key(&self, namespace: &str, name: &str) -> String {
        storage::object_key(&self.prefix, self.info().plural, namespace, name)
    }

    fn list_prefix(&self, namespace: &str) -> String {
        storage::list_prefix(&self.prefix, self.info().plural, namespace)
    }

    /// How many watchers this kind's cache serves.
    pub fn watcher_count(&self) -> usize {
        self.storage.watcher_count()
    }

    /// New objects go only into namespaces that exist and are not being terminated
    /// (upstream's NamespaceLifecycle admission, with its wording and cause).
    async fn ensure_namespace(&self, namespace: &str, name: &str) -> Result<(), ApiError> {
        let Some(namespaces) = &self.namespaces else {
            return Ok(());
        };
        // As upstream's NamespaceLifecycle reads its informer: the watch cache answers, and
        // only a namespace it has not seen yet (created a moment ago) is read from storage.
        let key = storage::object_key(&self.prefix, "namespaces", "", namespace);
        let found = match namespaces.cached(&key) {
            Some(found) => Ok(found),
            None => namespaces.get(&key).await,
        };
        match found {
            Ok(ns) if terminating(&ns.object) => {
                let mut err = ApiError::forbidden(
                    self.gr(),
                    name,
                    &format!("unable to create new content in namespace {namespace} because it is being terminated"),
                );
                err.details.causes.push(Cause {
                    reason: "NamespaceTerminating".into(),
                    message: format!("namespace {namespace} is being terminated"),
                    field: "metadata.namespace".into(),
                });
                Err(err)
            }
            Ok(_) => Ok(()),
            Err(StorageError::NotFound(_)) => Err(ApiError::not_found(
                GroupResource {
                    group: "",
                    resource: "namespaces",
                },
                namespace,
            )),
            Err(e) => Err(storage_error(self.gr(), namespace, e)),
        }
    }

    /// Decodes a parsed body and applies the field-validation level to its duplicate and
    /// unknown fields; returns the object and the warnings.
    fn decode(
        &self,
        body: Parsed,
        level: FieldValidation,
    ) -> Result<(Value, Vec<String>), ApiError> {
        // A body that names a field twice is refused before anything else is looked at, as
        // upstream's strict JSON decoder does.
        if level == FieldValidation::Strict && !body.duplicate_fields.is_empty() {
            return Err(strict_fields_error(
                self.info(),
                &body.duplicate_fields,
                &[],
            ));
        }
        let decoded = self.strategy.decode(body.object)?;
        let warnings = match level {
            FieldValidation::Ignore => Vec::new(),
            FieldValidation::Warn => {
                field_warnings(&body.duplicate_fields, &decoded.unknown_fields)
            }
            FieldValidation::Strict if decoded.unknown_fields.is_empty() => Vec::new(),
            FieldValidation::Strict => {
                return Err(strict_fields_error(
                    self.info(),
                    &[],
                    &decoded.unknown_fields,
                ))
            }
        };
        Ok((decoded.object, warnings))
    }

    fn check_namespace(&self, obj: &mut Value, namespace: &str) -> Result<(), ApiError> {
        let given = object::namespace(obj).to_string();
        if self.info().namespaced {
            if !given.is_empty() && given != namespace {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            object::metadata_mut(obj).insert("namespace".into(), json!(namespace));
        } else {
            object::metadata_mut(obj).remove("namespace");
        }
        Ok(())
    }

    pub async fn create(
        &self,
        namespace: &str,
        body: impl Into<Parsed>,
        options: &CreateOptions,
    ) -> Result<(Value, Vec<String>), ApiError> {
        let (mut obj, warnings) = self.decode(body.into(), options.field_validation)?;
        self.check_namespace(&mut obj, namespace)?;
        options.admit(&obj, None)?;
        let meta = object::metadata_mut(&mut obj);
        let sent_managed_fields = meta.remove("managedFields");
        for system_field in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "selfLink",
        ] {
            meta.remove(system_field);
        }
        meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
        meta.insert("creationTimestamp".into(), json!(object::now_rfc3339()));
        let generate = meta
            .get("generateName")
            .and_then(Value::as_str)
            .map(str::to_string)
            .filter(|_| {
                meta.get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .is_empty()
            });
        if let Some(base) = &generate {
            meta.insert("name".into(), json!(generated_name(base)));
        }
        // The manager owns what it sent and the scheme's defaults; what admission and the
        // create rules add next is no manager's (upstream tracks the create before them).
        let tracked = options
            .field_manager
            .as_ref()
            .map(|_| self.strategy.scheme_defaulted(&obj));
        // Admission as upstream orders it: NamespaceLifecycle, then the plugins that read
        // other objects, then the kind's own rules and validation.
        if self.info().namespaced {
            self.ensure_namespace(namespace, object::name(&obj)).await?;
        }
        if let Some(admission) = &self.create_admission {
            admission.admit(namespace, &mut obj).await?;
        }
        let warnings = [warnings, self.strategy.prepare_create(&mut obj)?].concat();
        match (&options.field_manager, sent_managed_fields) {
            (Some(manager), sent) => {
                let schema = &self.schema;
                let mut tracked = tracked.unwrap_or_else(|| obj.clone());
                managed_fields::track_update(
                    &schema.zero(),
                    &mut tracked,
                    sent.as_ref(),
                    schema,
                    &self.writer(manager, ""),
                );
                let recorded = tracked.pointer("/metadata/managedFields").cloned();
                let meta = object::metadata_mut(&mut obj);
                match recorded {
                    Some(list) => meta.insert("managedFields".into(), list),
                    None => meta.remove("managedFields"),
                };
            }
            // The server's own create, or a server-side apply's, which made them.
            (None, Some(made)) => {
                object::metadata_mut(&mut obj).insert("managedFields".into(), made);
            }
            (None, None) => {}
        }
        if options.dry_run {
            return Ok((obj, warnings));
        }
        let mut tries = 0;
        loop {
            let name = object::name(&obj).to_string();
            // Only a generated name may be tried again, with the object: otherwise it is
            // handed over, not copied.
            let attempt = match generate {
                Some(_) => obj.clone(),
                None => std::mem::take(&mut obj),
            };
            match self
                .storage
                .create(
                    &self.key(namespace, &name),
                    attempt,
                    self.strategy.time_to_live(),
                )
                .await
            {
                Ok(stored) => return Ok((stored.object.into_value(), warnings)),
                Err(StorageError::AlreadyExists(_)) if generate.is_some() => {
                    tries += 1;
                    if tries >= GENERATE_NAME_TRIES {
                        return Err(ApiError::already_exists(self.gr(), &name));
                    }
                    let base = generate.as_deref().unwrap_or_default();
                    object::metadata_mut(&mut obj)
                        .insert("name".into(), json!(generated_name(base)));
                }
                Err(e) => return Err(storage_error(self.gr(), &name, e)),
            }
        }
    }

    /// The object as the watch cache holds it, or from storage when the cache has not seen
    /// it: how upstream's authenticators and admission read (informers with a live lookup
    /// behind them), never for a client's GET, which must see its own writes.
    pub async fn get_cached(&self, namespace: &str, name: &str) -> Result<Arc<Value>, ApiError> {
        match self.storage.cached(&self.key(namespace, name)) {
            Some(found) => Ok(found.object.into_arc()),
            None => self.get(namespace, name).await,
        }
    }

    pub async fn get(&self, namespace: &str, name: &str) -> Result<Arc<Value>, ApiError> {
        self.storage
            .get(&self.key(namespace, name))
            .await
            .map(|s| s.object.into_arc())
            .map_err(|e| storage_error(self.gr(), name, e))
    }

    /// Rejects field selectors on fields the kind cannot select by (400, as upstream).
    pub fn check_field_selector(&self, field: &FieldSelector) -> Result<(), ApiError> {
        let probe = json!({"metadata": {}});
        for req in field.requirements() {
            if self.strategy.field_value(&probe, &req.field).is_none() {
                return Err(ApiError::bad_request(format!(
                    "field label not supported: {}",
                    req.field
                )));
            }
        }
        Ok(())
    }

    fn matches(
        &self,
        obj: &Value,
        label: Option<&LabelSelector>,
        field: Option<&FieldSelector>,
    ) -> bool {
        selected(self.strategy.as_ref(), obj, label, field)
    }

    pub async fn list(
        &self,
        namespace: &str,
        options: &ListOptions,
    ) -> Result<ListResult, ApiError> {
        if let Some(field) = &options.field {
            self.check_field_selector(field)?;
        }
        let prefix = self.list_prefix(namespace);
        let continued = options
            .continue_token
            .as_deref()
            .map(|token| ContinueToken::decode(token, &self.prefix, &prefix))
            .transpose()?;
        let consistent = continued.is_none() && options.exact.is_none() && !options.any_version;
        let from_cache = self.storage.caching()
            && match options.not_older_than {
                _ if !consistent => continued.is_none() && options.exact.is_none(),
                Some(rv) => rv <= self.storage.revision(),
                // A consistent read (no resourceVersion): from the cache once it has caught up
                // with etcd's current revision, so it sees every write acknowledged before it
                // (upstream's ConsistentListFromCache, without etcd's progress requests).
                None => {
                    let rev = self
                        .storage
                        .current_revision()
                        .await
                        .map_err(|e| storage_error(self.gr(), "", e))?;
                    self.storage.fresh_at(rev, storage::FRESH_WAIT).await
                }
            };
        if from_cache {
            let (label, field) = (options.label.as_ref(), options.field.as_ref());
            let limit = options.limit.filter(|l| *l > 0);
            let fields = self.strategy.selectable_fields();
            let page = self.storage.list_cached(
                &prefix,
                |attrs| {
                    selected_by(
                        label,
                        field,
                        |key| attrs.label(key),
                        |name| {
                            let at = fields.iter().position(|known| *known == name)?;
                            attrs.field(at).map(str::to_string)
                        },
                    )
                },
                limit,
            );
            // A continuation is read from etcd at the cache's revision.
            let continue_token = page.next.map(|start| {
                ContinueToken {
                    rv: page.rev,
                    start,
                }
                .encode(&self.prefix)
            });
            return Ok(ListResult {
                items: page.items,
                resource_version: page.rev,
                continue_token,
                remaining: page.left.filter(|_| unfiltered(options)),
            });
        }
        let (from, rev) = match &continued {
            Some(token) => (token.start.clone(), token.rv),
            None => (String::new(), options.exact.unwrap_or(0)),
        };
        self.list_from_etcd(&prefix, &from, rev, options)
            .await
            .map_err(|e| match e {
                StorageError::Expired { .. } if continued.is_some() => {
                    ApiError::expired(CONTINUE_EXPIRED)
                }
                StorageError::Expired { .. } => ApiError::expired(LIST_EXPIRED),
                e => storage_error(self.gr(), "", e),
            })
    }

    /// Serves a list from etcd page by page, all pages at one revision (`rev`, or the current
    /// one when 0), from key `from` on, until the limit is reached: etcd never returns more
    /// than [`storage::LIST_PAGE`] keys at once, however large the collection.
    async fn list_from_etcd(
        &self,
        prefix: &str,
        from: &str,
        rev: i64,
        options: &ListOptions,
    ) -> Result<ListResult, StorageError> {
        let limit = options.limit.filter(|l| *l > 0);
        let page_size = limit.map_or(storage::LIST_PAGE, |l| {
            (l as i64).saturating_add(1).min(storage::LIST_PAGE)
        });
        let unfiltered = unfiltered(options);
        let mut from = from.to_string();
        let mut rev = rev;
        let mut out = Vec::new();
        loop {
            let page = self
                .storage
                .list_page(prefix, &from, rev, page_size)
                .await?;
            rev = page.rev;
            let more = page.more;
            let count = page.count;
            for (index, stored) in page.items.into_iter().enumerate() {
                if limit.is_some_and(|l| out.len() >= l) {
                    // Upstream counts what is left only when no selector filters the list.
                    let remaining = (count - index as i64).max(0) as usize;
                    return Ok(ListResult {
                        items: out,
                        resource_version: rev,
                        continue_token: Some(
                            ContinueToken {
                                rv: rev,
                                start: stored.key.clone(),
                            }
                            .encode(&self.prefix),
                        ),
                        remaining: unfiltered.then_some(remaining),
                    });
                }
                from = storage::key_after(&stored.key);
                if self.matches(
                    &stored.object,
                    options.label.as_ref(),
                    options.field.as_ref(),
                ) {
                    out.push(stored);
                }
            }
            if !more {
                return Ok(ListResult {
                    items: out,
                    resource_version: rev,
                    continue_token: None,
                    remaining: None,
                });
            }
        }
    }

    pub async fn watch(&self, namespace: &str, options: WatchOptions) -> Result<Watch, ApiError> {
        if let Some(field) = &options.field {
            self.check_field_selector(field)?;
        }
        let prefix = self.list_prefix(namespace);
        let mut pending = VecDeque::new();
        let from_scratch =
            options.send_initial_events || options.resource_version.unwrap_or(0) == 0;
        let stream = if from_scratch {
            let (items, rev, stream) = self
                .storage
                .list_and_watch(&prefix)
                .await
                .map_err(|e| storage_error(self.gr(), "", e))?;
            for stored in items {
                if self.matches(
                    &stored.object,
                    options.label.as_ref(),
                    options.field.as_ref(),
                ) {
                    let added = storage::StorageEvent::added(stored);
                    pending.push_back(WatchEvent::Changed(EventType::Added, Arc::new(added)));
                }
            }
            if options.send_initial_events {
                pending.push_back(WatchEvent::InitialEventsEnd(rev));
            }
            stream
        } else {
            let after = options.resource_version.unwrap_or(0);
            self.storage
                .watch(&prefix, after)
                .await
                .map_err(|e| storage_error(self.gr(), "", e))?
        };
        Ok(Watch {
            strategy: self.strategy.clone(),
            stream,
            pending,
            label: options.label,
            field: options.field,
        })
    }

    /// Replaces an object (PUT). `subresource` is "", "status" or "ephemeralcontainers".
    pub async fn update(
        &self,
        namespace: &str,
        name: &str,
        subresource: &str,
        body: impl Into<Parsed>,
        options: &CreateOptions,
    ) -> Result<(Value, Vec<String>), ApiError> {
        let (mut obj, warnings) = self.decode(body.into(), options.field_validation)?;
        // The body is known before anything is read: a wrong name or namespace is a 400 even
        // when the object does not exist.
        self.check_name(&mut obj, namespace, name)?;
        let proposal = Proposal::Replace(obj);
        let (result, more) = self
            .update_from(namespace, name, subresource, &proposal, options)
            .await?;
        Ok((result, [warnings, more].concat()))
    }

    /// Applies a PATCH body of the given type to the current object.
    pub async fn patch(
        &self,
        namespace: &str,
        name: &str,
        subresource: &str,
        kind: PatchType,
        patch: &[u8],
        options: &CreateOptions,
    ) -> Result<(Value, Vec<String>), ApiError> {
        let proposal = Proposal::Patch {
            kind,
            patch,
            schema: &self.schema,
        };
        self.update_from(namespace, name, subresource, &proposal, options)
            .await
    }

    /// The one path of PUT and PATCH: the new object is made from the current one (a patch)
    /// or given (a replacement), then held to the same preconditions, upstream's
    /// `rest.Update` with a `defaultUpdatedObjectInfo` or a patcher's `UpdatedObjectInfo`.
    /// Returns the object and the warnings of a patch's decoding and of the update itself.
    async fn update_from(
        &self,
        namespace: &str,
        name: &str,
        subresource: &str,
        proposal: &Proposal<'_>,
        options: &CreateOptions,
    ) -> Result<(Value, Vec<String>), ApiError> {
        let mut decode_warnings = Vec::new();
        let (result, update_warnings) = self
            .update_with_warnings(
                namespace,
                name,
                subresource,
                options.dry_run,
                options
                    .field_manager
                    .as_deref()
                    .map_or(Tracking::Keep, Tracking::Update),
                &mut |current| {
                    let obj = match proposal {
                        Proposal::Replace(obj) => obj.clone(),
                        Proposal::Patch {
                            kind,
                            patch,
                            schema,
                        } => {
                            let patched =
                                apply_patch(current, patch, *kind, schema).map_err(patch_error)?;
                            let shown = patched_value_shown(*kind, patch, &patched);
                            let (mut obj, w) = self
                                .decode(patched.into(), options.field_validation)
                                .map_err(|e| undecodable_patch(self.info(), *kind, &shown, e))?;
                            self.check_name(&mut obj, namespace, name)?;
                            decode_warnings = w;
                            obj
                        }
                    };
                    self.check_update_preconditions(&obj, current, name, proposal)?;
                    options.admit(&obj, Some(current))?;
                    Ok(obj)
                },
            )
            .await?;
        Ok((result, [decode_warnings, update_warnings].concat()))
    }

    /// The object's name and namespace must be those of the URL (upstream's `checkName`);
    /// a namespaced object gets the request's namespace, a cluster-scoped one none.
    fn check_name(&self, obj: &mut Value, namespace: &str, name: &str) -> Result<(), ApiError> {
        let given = object::name(obj);
        if given != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({given}) does not match the name on the URL ({name})"
            )));
        }
        let given_ns = object::namespace(obj);
        if self.info().namespaced && !given_ns.is_empty() && given_ns != namespace {
            return Err(ApiError::bad_request(format!(
                "the namespace of the object ({given_ns}) does not match the namespace on the request ({namespace})"
            )));
        }
        self.check_namespace(obj, namespace)
    }

    /// What an update may not do to the object it replaces: carry a stale resourceVersion
    /// (409), or name another UID. A replacement's UID is a precondition, as upstream's
    /// `defaultUpdatedObjectInfo` makes it (409); a patch may leave the UID out but not change
    /// it, which upstream's `ValidateObjectMetaUpdate` refuses with 422.
    fn check_update_preconditions(
        &self,
        obj: &Value,
        current: &Value,
        name: &str,
        proposal: &Proposal<'_>,
    ) -> Result<(), ApiError> {
        let wanted_uid = object::uid(obj);
        let actual_uid = object::uid(current);
        let uid_changed = !wanted_uid.is_empty() && wanted_uid != actual_uid;
        // Upstream checks a replacement's UID precondition before the resourceVersion, and
        // validates a patched object's UID only after it.
        if uid_changed && matches!(proposal, Proposal::Replace(_)) {
            return Err(ApiError::conflict(
                self.gr(),
                name,
                &format!("Precondition failed: UID in precondition: {wanted_uid}, UID in object meta: {actual_uid}"),
            ));
        }
        // No resourceVersion, or "0" (the same to upstream's versioner), is an unconditional
        // update, where the kind allows one.
        let wanted_rv = object::resource_version(obj);
        if matches!(wanted_rv, "" | "0")
            && matches!(proposal, Proposal::Replace(_))
            && !self.strategy.allow_unconditional_update()
        {
            let gr = self.gr();
            let error = FieldError::invalid(
                "metadata.resourceVersion",
                Literal("0x0".into()),
                "must be specified for an update",
            );
            let mut e = ApiError::invalid(&gr.to_string(), gr, name, vec![error.cause()]);
            e.details.kind = gr.resource.to_string();
            return Err(e);
        }
        if !matches!(wanted_rv, "" | "0") && wanted_rv != object::resource_version(current) {
            return Err(ApiError::modified(self.gr(), name));
        }
        if uid_changed {
            let error = FieldError::invalid("metadata.uid", wanted_uid, "field is immutable");
            return Err(invalid(self.strategy.as_ref(), name, vec![error]));
        }
        Ok(())
    }

    /// Read-modify-write of one object with the update rules of the kind applied to whatever
    /// `produce` makes of the current state.
    pub async fn update_with(
        &self,
        namespace: &str,
        name: &str,
        subresource: &str,
        dry_run: bool,
        produce: &mut (dyn FnMut(&Value) -> Result<Value, ApiError> + Send),
    ) -> Result<Value, ApiError> {
        self.update_with_warnings(
            namespace,
            name,
            subresource,
            dry_run,
            Tracking::Keep,
            produce,
        )
        .await
        .map(|(obj, _)| obj)
    }

    /// [`Store::update_with`], also returning the kind's warnings about the update (those of
    /// the attempt that was stored). `tracking` says what becomes of `managedFields`.
    async fn update_with_warnings(
        &self,
        namespace: &str,
        name: &str,
        subresource: &str,
        dry_run: bool,
        tracking: Tracking<'_>,
        produce: &mut (dyn FnMut(&Value) -> Result<Value, ApiError> + Send),
    ) -> Result<(Value, Vec<String>), ApiError> {
        let key = self.key(namespace, name);
        let strategy = self.strategy.clone();
        let schema = &self.schema;
        let mut warnings = Vec::new();
        let mut try_update = |current: &Stored| -> Result<Value, ApiError> {
            let old = &*current.object;
            let mut new = produce(old)?;
            if subresource == MARK_DELETION {
                // Only the deletion marks change: nothing else to default or validate. A dry
                // run is answered with the marked object and writes nothing.
                if dry_run {
                    return Err(DryRun(new).into());
                }
                return Ok(new);
            }
            let sent_managed_fields = object::metadata_mut(&mut new).remove("managedFields");
            keep_system_metadata(&mut new, old);
            // An update's manager is recorded for the object as it sent it (with the scheme's
            // defaults), before the kind's update rules reset what it may not change.
            let tracked =
                matches!(tracking, Tracking::Update(_)).then(|| strategy.scheme_defaulted(&new));
            warnings = match subresource {
                // A binding may set what no other write may (spec.nodeName); its rules are
                // checked by the binding itself.
                "binding" => Vec::new(),
                "status" => strategy.prepare_update(&mut new, old, UpdateTarget::Status)?,
                "ephemeralcontainers" => {
                    strategy.prepare_update(&mut new, old, UpdateTarget::EphemeralContainers)?
                }
                _ => strategy.prepare_update(&mut new, old, UpdateTarget::Main)?,
            };
            match tracking {
                Tracking::Update(manager) => {
                    let mut tracked = tracked.unwrap_or_else(|| new.clone());
                    managed_fields::track_update(
                        old,
                        &mut tracked,
                        sent_managed_fields.as_ref(),
                        schema,
                        &self.writer(manager, subresource),
                    );
                    let recorded = tracked.pointer("/metadata/managedFields").cloned();
                    let meta = object::metadata_mut(&mut new);
                    match recorded {
                        Some(list) => meta.insert("managedFields".into(), list),
                        None => meta.remove("managedFields"),
                    };
                }
                Tracking::Applied => {
                    if let Some(made) = sent_managed_fields {
                        object::metadata_mut(&mut new).insert("managedFields".into(), made);
                    }
                }
                Tracking::Keep => {
                    let kept = old.pointer("/metadata/managedFields").cloned();
                    let meta = object::metadata_mut(&mut new);
                    match kept {
                        Some(list) => meta.insert("managedFields".into(), list),
                        None => meta.remove("managedFields"),
                    };
                }
            }
            if dry_run {
                return Err(DryRun(new).into());
            }
            Ok(new)
        };
        let stored = match self.storage.guaranteed_update(&key, &mut try_update).await {
            Ok(stored) => stored,
            Err(StorageError::Rejected(e)) if e.reason == DRY_RUN_REASON => {
                let obj = serde_json::from_str(&e.message).map_err(ApiError::internal)?;
                return Ok((obj, warnings));
            }
            Err(e) => return Err(storage_error(self.gr(), name, e)),
        };
        let obj = self.finish_if_finalized(namespace, name, stored).await?;
        Ok((obj, warnings))
    }

    /// An object marked for deletion whose last finalizer is gone and whose grace period is
    /// zero is deleted for real, as the generic store does after an update.
    async fn finish_if_finalized(
        &self,
        namespace: &str,
        name: &str,
        stored: Stored,
    ) -> Result<Value, ApiError> {
        let obj = &*stored.object;
        let marked = obj.pointer("/metadata/deletionTimestamp").is_some();
        let grace = obj
            .pointer("/metadata/deletionGracePeriodSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if marked && grace == 0 && !has_finalizers(obj) {
            let rev = stored.rev;
            let deleted = self
                .storage
                .delete(&self.key(namespace, name), &mut |current| {
                    if current.rev != rev {
                        return Err(ApiError::modified(self.gr(), name));
                    }
                    Ok(())
                })
                .await;
            return match deleted {
                Ok(last) => Ok(last.object.into_value()),
                Err(StorageError::NotFound(_)) => Ok(stored.object.into_value()),
                Err(e) => Err(storage_error(self.gr(), name, e)),
            };
        }
        // The written object is this result's alone: it is handed over, not copied.
        Ok(stored.object.into_value())
    }

    /// Upstream's `DeleteCollection`: deletes every object of this kind in `namespace` (every
    /// namespace when empty) that the selectors choose, each as a plain DELETE with `options`
    /// would, [`DELETE_WORKERS`] at a time. It reads a page of [`DELETE_PAGE`] objects at a
    /// time, never one unbounded read. Objects that went away meanwhile are skipped; the first
    /// other failure ends it (what was deleted stays deleted, as upstream).
    pub async fn delete_collection(
        &self,
        namespace: &str,
        label: Option<LabelSelector>,
        field: Option<FieldSelector>,
        options: &DeleteOptions,
    ) -> Result<CollectionDeleted, ApiError> {
        let mut done = CollectionDeleted::default();
        let mut continue_token = None;
        loop {
            let list_options = ListOptions {
                label: label.clone(),
                field: field.clone(),
                limit: Some(DELETE_PAGE),
                continue_token: continue_token.take(),
                ..ListOptions::default()
            };
            let page = match self.list(namespace, &list_options).await {
                Ok(page) => page,
                // The page's revision was compacted away: go on from what is there now.
                Err(e) if e.code == 410 => continue,
                Err(e) => return Err(e),
            };
            done.resource_version = done.resource_version.max(page.resource_version);
            // Collected first: a lazy map would make this future's Send-ness unprovable.
            let deletions: Vec<_> = page
                .objects()
                .map(|obj| self.delete(object::namespace(obj), object::name(obj), options))
                .collect();
            let results: Vec<_> = futures::stream::iter(deletions)
                .buffer_unordered(DELETE_WORKERS)
                .collect()
                .await;
            for result in results {
                match result {
                    Ok((_, true)) => {}
                    Ok((_, false)) => done.pending += 1,
                    Err(e) if e.code == 404 => {}
                    Err(e) => return Err(e),
                }
            }
            done.listed
                .extend(page.items.into_iter().map(|s| s.object.into_arc()));
            match page.continue_token {
                Some(token) => continue_token = Some(token),
                None => return Ok(done),
            }
        }
    }

    fn check_preconditions(
        &self,
        name: &str,
        obj: &Value,
        options: &DeleteOptions,
    ) -> Result<(), ApiError> {
        if let Some(uid) = &options.uid {
            let actual = object::uid(obj);
            if uid != actual {
                return Err(ApiError::conflict(
                    self.gr(),
                    name,
                    &format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {actual}"),
                ));
            }
        }
        if let Some(rv) = &options.resource_version {
            let actual = object::resource_version(obj);
            if rv != actual {
                return Err(ApiError::conflict(
                    self.gr(),
                    name,
                    &format!("Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {actual}"),
                ));
            }
        }
        Ok(())
    }
}

/// Where the new object of an update comes from.
enum Proposal<'a> {
    /// A PUT body, decoded and checked against the URL.
    Replace(Value),
    /// A PATCH body, applied to whatever the current object is at each try.
    Patch {
        kind: PatchType,
        patch: &'a [u8],
        schema: &'a PatchSchema,
    },
}

/// What upstream shows as the bad value when a patched object cannot be decoded: the patch
/// map (Go's `%v`) for a strategic merge patch, the patched object's JSON otherwise.
fn patched_value_shown(kind: PatchType, patch: &[u8], patched: &Value) -> String {
    match kind {
        PatchType::StrategicMerge => serde_json::from_slice::<Value>(patch)
            .map(|p| crate::meta::patch::go_value(&p))
            .unwrap_or_default(),
        PatchType::Json | PatchType::Merge | PatchType::Apply => patched.to_string(),
    }
}

/// A patched object that does not decode (a field of the wrong type, or an unknown field under
/// `fieldValidation=Strict`): upstream's patch handler answers 422 with one `patch` cause
/// carrying the decoder's words, not the 400 a create or update body gets.
fn undecodable_patch(
    info: &super::ResourceInfo,
    kind: PatchType,
    shown: &str,
    e: ApiError,
) -> ApiError {
    if e.code != 400 {
        return e;
    }
    let prefix = format!(
        "{kind} in version \"{version}\" cannot be handled as a {kind}: ",
        kind = info.kind,
        version = info.version
    );
    let detail = e.message.strip_prefix(&prefix).unwrap_or(&e.message);
    let detail = match kind {
        // Upstream turns a strategic-merge-patched map into the typed object with its
        // unstructured converter, which words a value of the wrong shape its own way.
        PatchType::StrategicMerge => restore_error(detail).unwrap_or_else(|| detail.to_string()),
        PatchType::Json | PatchType::Merge | PatchType::Apply => detail.to_string(),
    };
    let cause = FieldError::invalid("patch", shown, detail).cause();
    ApiError::invalid(
        "",
        GroupResource {
            group: "",
            resource: "",
        },
        "",
        vec![cause],
    )
}

/// The unstructured converter's words (`cannot restore map from string`) for a decoder's
/// "invalid type: string \"x\", expected a map", when the wanted shape is a map, a list or an
/// object.
fn restore_error(detail: &str) -> Option<String> {
    let at = detail.find("invalid type: ")?;
    let (given, expected) = detail[at + "invalid type: ".len()..].split_once(", expected ")?;
    let from = match given.split([' ', '`']).next()? {
        "string" => "string",
        "integer" => "int64",
        "floating" => "float64",
        "boolean" => "bool",
        "sequence" => "slice",
        "map" => "map",
        _ => return None,
    };
    let into = if expected.starts_with("a map") {
        "map"
    } else if expected.starts_with("a sequence") {
        "slice"
    } else if expected.starts_with(|c: char| c.is_ascii_uppercase()) {
        "struct"
    } else {
        return None;
    };
    Some(format!("cannot restore {into} from {from}"))
}

/// How many objects [`Store::delete_collection`] reads per page.
const DELETE_PAGE: usize = 500;
/// How many deletions of one page [`Store::delete_collection`] runs at once.
const DELETE_WORKERS: usize = 16;

/// Whether a deletion must wait: `metadata.finalizers`, or a namespace's own
/// `spec.finalizers` (only Namespace has that field; upstream's namespace store waits on it).
fn has_finalizers(obj: &Value) -> bool {
    ["/metadata/finalizers", "/spec/finalizers"]
        .iter()
        .any(|p| {
            obj.pointer(p)
                .and_then(Value::as_array)
                .is_some_and(|f| !f.is_empty())
        })
}

/// Whether a namespace is being deleted.
pub fn terminating(ns: &Value) -> bool {
    ns.pointer("/metadata/deletionTimestamp").is_some()
        || ns.pointer("/status/phase").and_then(Value::as_str) == Some("Terminating")
}

/// A patch that cannot be applied, with the code kube-apiserver gives that failure.
fn patch_error(e: crate::meta::patch::PatchError) -> ApiError {
    let mut err = ApiError::bad_request(e.to_string());
    match e.status_code() {
        413 => {
            err.code = 413;
            err.reason = "RequestEntityTooLarge";
        }
        422 => {
            err.code = 422;
            err.reason = "Invalid";
        }
        _ => {}
    }
    err
}

/// Sets `deletionTimestamp` `grace` seconds ahead; a second delete may only shorten it.
fn mark_for_deletion(obj: &Value, grace: i64) -> Value {
    let mut marked = obj.clone();
    let current = obj
        .pointer("/metadata/deletionGracePeriodSeconds")
        .and_then(Value::as_i64);
    if obj.pointer("/metadata/deletionTimestamp").is_some() && current.is_some_and(|c| c <= grace) {
        return marked;
    }
    let when = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_secs(grace))
        .unwrap_or_else(|_| jiff::Timestamp::now());
    let meta = object::metadata_mut(&mut marked);
    meta.insert("deletionTimestamp".into(), json!(object::format_time(when)));
    meta.insert("deletionGracePeriodSeconds".into(), json!(grace));
    marked
}

/// System metadata a client cannot change by writing the object.
fn keep_system_metadata(new: &mut Value, old: &Value) {
    let meta = object::metadata_mut(new);
    for field in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "namespace",
        "generateName",
    ] {
        match old.pointer(&format!("/metadata/{field}")) {
            Some(v) => {
                meta.insert(field.into(), v.clone());
            }
            None => {
                meta.remove(field);
            }
        }
    }
    meta.remove("selfLink");
}

const DRY_RUN_REASON: &str = "DryRun";

/// The internal "subresource" of a graceful delete's write: it sets `deletionTimestamp`,
/// which every other write keeps as it was.
const MARK_DELETION: &str = "\0mark-deletion";

/// Carries the would-be object of a dry-run update out of the storage retry loop.
struct DryRun(Value);

impl From<DryRun> for ApiError {
    fn from(d: DryRun) -> ApiError {
        let mut e = ApiError::bad_request(d.0.to_string());
        e.reason = DRY_RUN_REASON;
        e
    }
}

const CONTINUE_EXPIRED: &str = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.";

/// What an `Exact` list at a compacted revision is answered with (410).
const LIST_EXPIRED: &str = "The resourceVersion for the provided list is too old.";

/// Where the next page of a list starts, and the revision all pages are read at. On the wire
/// it is upstream's base64 JSON `{"v", "rv", "start"}`; `start` is the first key of the next
/// page below the storage prefix (`/pods/default/web-2`), so that a token can be checked to
/// belong to the resource and namespace it is used with.
struct ContinueToken {
    rv: i64,
    /// The absolute etcd key the next page starts at.
    start: String,
}

impl ContinueToken {
    fn encode(&self, storage_prefix: &str) -> String {
        let start = self
            .start
            .strip_prefix(storage_prefix)
            .unwrap_or(&self.start);
        let body = json!({"v": "meta.k8s.io/v1", "rv": self.rv, "start": start});
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(body.to_string())
    }

    /// Decodes a token for a list of `list_prefix` (an absolute key prefix below
    /// `storage_prefix`); a token of another resource or namespace is a 400.
    fn decode(
        token: &str,
        storage_prefix: &str,
        list_prefix: &str,
    ) -> Result<ContinueToken, ApiError> {
        let bad = |why: &str| ApiError::bad_request(format!("continue key is not valid: {why}"));
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token.trim_end_matches('='))
            .map_err(|_| bad("incorrect encoded start resourceVersion (version meta.k8s.io/v1)"))?;
        let body: Value = serde_json::from_slice(&bytes)
            .map_err(|_| bad("incorrect encoded start resourceVersion (version meta.k8s.io/v1)"))?;
        let version = body["v"].as_str().unwrap_or_default();
        if version != "meta.k8s.io/v1" {
            return Err(bad(&format!(
                "server does not recognize this encoded version \"{version}\""
            )));
        }
        let rv = body["rv"].as_i64().filter(|r| *r > 0).ok_or_else(|| {
            bad("incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
        })?;
        let start = body["start"].as_str().unwrap_or_default();
        if start.is_empty() {
            return Err(bad("encoded start key empty"));
        }
        // Path traversal is refused as upstream does; a key outside this list's range means the
        // token was issued for another resource or namespace.
        let absolute = format!("{storage_prefix}{start}");
        let traverses = start.split('/').any(|part| part == ".." || part == ".");
        if traverses || !start.starts_with('/') || !absolute.starts_with(list_prefix) {
            return Err(bad(start));
        }
        Ok(ContinueToken {
            rv,
            start: absolute,
        })
    }
}

pub(crate) fn generated_name(base: &str) -> String {
    // The alphabet upstream uses: no vowels (no words), no look-alikes.
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    let suffix: String = (0..5)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    let mut base = base.to_string();
    // Names are at most 253 characters; the base gives way to the suffix.
    if base.len() > 58 {
        let mut cut = 58;
        while !base.is_char_boundary(cut) {
            cut -= 1;
        }
        base.truncate(cut);
    }
    format!("{base}{suffix}")
}

/// How the watch cache of `strategy`'s kind takes what selectors read of its objects.
fn attrs_of(strategy: Arc<dyn Strategy>) -> AttrsOf {
    Arc::new(move |obj| {
        let fields = strategy.selectable_fields().iter();
        Attrs::new(
            object::labels(obj),
            fields.map(|f| strategy.field_value(obj, f).unwrap_or_default()),
        )
    })
}

/// Whether `obj` matches the label and field selectors (absent ones match everything).
fn selected(
    strategy: &dyn Strategy,
    obj: &Value,
    label: Option<&LabelSelector>,
    field: Option<&FieldSelector>,
) -> bool {
    selected_by(
        label,
        field,
        |key| object::label(obj, key),
        |name| strategy.field_value(obj, name),
    )
}

/// Whether an object whose labels and fields read as `label_of` and `field_of` answer
/// matches the selectors: a decoded object's, or what the watch cache keeps of one.
fn selected_by<'a>(
    label: Option<&LabelSelector>,
    field: Option<&FieldSelector>,
    label_of: impl Fn(&str) -> Option<&'a str> + Copy,
    field_of: impl Fn(&str) -> Option<String>,
) -> bool {
    label.is_none_or(|l| l.is_empty() || l.matches_with(label_of))
        && field.is_none_or(|f| f.matches(field_of))
}

/// A watch of one kind, filtered by selectors.
pub struct Watch {
    strategy: Arc<dyn Strategy>,
    stream: WatchStream,
    pending: VecDeque<WatchEvent>,
    label: Option<LabelSelector>,
    field: Option<FieldSelector>,
}

impl Watch {
    fn matches(&self, obj: &Value) -> bool {
        selected(
            self.strategy.as_ref(),
            obj,
            self.label.as_ref(),
            self.field.as_ref(),
        )
    }

    /// The next event, or None when the stream ended.
    pub async fn next(&mut self) -> Option<WatchEvent> {
        if let Some(event) = self.pending.pop_front() {
            return Some(event);
        }
        loop {
            let item = self.stream.recv().await?;
            let event = match item {
                Ok(event) => event,
                Err(e) => {
                    let gr = self.strategy.info().group_resource();
                    return Some(WatchEvent::Error(storage_error(gr, "", e)));
                }
            };
            // Without selectors neither state is read: one the cache kept as JSON stays so.
            let filtered =
                self.label.as_ref().is_some_and(|l| !l.is_empty()) || self.field.is_some();
            let now = !filtered || self.matches(&event.object);
            let before = event
                .prev
                .as_ref()
                .is_some_and(|p| !filtered || self.matches(p));
            let kind = match event.kind {
                EventType::Added if now => EventType::Added,
                EventType::Modified if now && before => EventType::Modified,
                EventType::Modified if now => EventType::Added,
                EventType::Modified if before => EventType::Deleted,
                EventType::Deleted if now => EventType::Deleted,
                _ => continue,
            };
            return Some(WatchEvent::Changed(kind, event));
        }
    }

    /// The resourceVersion of the newest event the cache has seen, for bookmarks.
    pub fn is_closed(&self) -> bool {
        self.stream.is_closed()
    }
}

mod apply;
mod deletion;

pub use deletion::Propagation;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_of_the_wrong_shape_is_worded_as_upstreams_converter_words_it() {
        let cases = [
            (
                r#"metadata.labels: invalid type: string "invalid", expected a map"#,
                Some("cannot restore map from string"),
            ),
            (
                "spec.containers: invalid type: integer `5`, expected a sequence",
                Some("cannot restore slice from int64"),
            ),
            (
                "spec: invalid type: boolean `true`, expected PodSpec",
                Some("cannot restore struct from bool"),
            ),
            (
                "metadata: invalid type: sequence, expected ObjectMeta",
                Some("cannot restore struct from slice"),
            ),
            (
                "spec.containers: invalid type: floating point `1.5`, expected a sequence",
                Some("cannot restore slice from float64"),
            ),
            (
                r#"spec.nodeName: invalid type: map, expected a string"#,
                None,
            ),
            ("missing field `name`", None),
        ];
        for (detail, want) in cases {
            assert_eq!(restore_error(detail).as_deref(), want, "{detail}");
        }
    }

    #[test]
    fn continue_tokens_round_trip() {
        let token = ContinueToken {
            rv: 42,
            start: "/registry/pods/default/b".into(),
        }
        .encode("/registry");
        let back =
            ContinueToken::decode(&token, "/registry", "/registry/pods/default/").expect("decodes");
        assert_eq!(back.rv, 42);
        assert_eq!(back.start, "/registry/pods/default/b");
        let wire = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&token)
            .expect("base64");
        let wire: Value = serde_json::from_slice(&wire).expect("JSON");
        assert_eq!(
            wire,
            json!({"v": "meta.k8s.io/v1", "rv": 42, "start": "/pods/default/b"})
        );
        let refused = |token: &str, list: &str| {
            ContinueToken::decode(token, "/registry", list)
                .err()
                .map(|e| e.code)
        };
        assert_eq!(refused("!!", "/registry/pods/default/"), Some(400));
        assert_eq!(refused(&token, "/registry/pods/other/"), Some(400));
        assert_eq!(refused(&token, "/registry/events/default/"), Some(400));
        let sneaky = ContinueToken {
            rv: 42,
            start: "/registry/pods/default/../../secrets/x".into(),
        }
        .encode("/registry");
        assert_eq!(refused(&sneaky, "/registry/pods/default/"), Some(400));
    }

    #[test]
    fn generated_names_keep_the_base_and_add_five_characters() {
        let name = generated_name("web-");
        assert!(name.starts_with("web-"));
        assert_eq!(name.len(), 9);
    }

    #[test]
    fn a_second_delete_may_only_shorten_the_grace_period() {
        let obj = json!({"metadata": {"name": "p"}});
        let first = mark_for_deletion(&obj, 30);
        assert_eq!(first["metadata"]["deletionGracePeriodSeconds"], 30);
        let longer = mark_for_deletion(&first, 60);
        assert_eq!(longer["metadata"]["deletionGracePeriodSeconds"], 30);
        let shorter = mark_for_deletion(&first, 5);
        assert_eq!(shorter["metadata"]["deletionGracePeriodSeconds"], 5);
    }
}
