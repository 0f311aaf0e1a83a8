//! The RBAC authorizer, as upstream's `plugin/pkg/auth/authorizer/rbac`: decides from the
//! Roles, ClusterRoles and their bindings, held in memory in a [`RbacView`] that watches them
//! through the API server's own watch cache (no etcd read per request).
//!
//! A request is allowed when a ClusterRoleBinding, or a RoleBinding of the request's
//! namespace, names the user (by name, by one of its groups, or as the service account
//! `system:serviceaccount:<ns>:<name>`) and its role has a rule covering the request. A binding
//! to a role that does not exist is reported in the refusal (`RBAC: clusterrole... not found`),
//! as upstream does. [`aggregation`] fills aggregated ClusterRoles; [`reviews`] answers the
//! self-subject reviews; [`escalation`] refuses roles and bindings that grant more than their
//! writer holds.

pub mod aggregation;
pub mod escalation;
pub mod reviews;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::registry::rbac::{rules, GROUP};
use crate::registry::{Registry, Store, WatchEvent, WatchOptions};
use crate::storage::EventType;
use crate::tls::User;

/// The RBAC objects as the watch cache last showed them.
#[derive(Default)]
struct State {
    cluster_roles: BTreeMap<String, ClusterRole>,
    roles: BTreeMap<(String, String), Role>,
    cluster_role_bindings: BTreeMap<String, ClusterRoleBinding>,
    role_bindings: BTreeMap<(String, String), RoleBinding>,
}

/// One of the four kinds the view follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    ClusterRoles,
    Roles,
    ClusterRoleBindings,
    RoleBindings,
}

impl Kind {
    const ALL: [Kind; 4] = [
        Kind::ClusterRoles,
        Kind::Roles,
        Kind::ClusterRoleBindings,
        Kind::RoleBindings,
    ];

    fn plural(self) -> &'static str {
        match self {
            Kind::ClusterRoles => "clusterroles",
            Kind::Roles => "roles",
            Kind::ClusterRoleBindings => "clusterrolebindings",
            Kind::RoleBindings => "rolebindings",
        }
    }
}

impl State {
    fn clear(&mut self, kind: Kind) {
        match kind {
            Kind::ClusterRoles => self.cluster_roles.clear(),
            Kind::Roles => self.roles.clear(),
            Kind::ClusterRoleBindings => self.cluster_role_bindings.clear(),
            Kind::RoleBindings => self.role_bindings.clear(),
        }
    }

    /// Takes in (or, when `deleted`, drops) one object of `kind`.
    fn apply(&mut self, kind: Kind, obj: &Value, deleted: bool) {
        let name = crate::meta::object::name(obj).to_string();
        let ns = crate::meta::object::namespace(obj).to_string();
        fn typed<T: serde::de::DeserializeOwned>(obj: &Value) -> Option<T> {
            T::deserialize(obj).ok()
        }
        match kind {
            Kind::ClusterRoles => match typed(obj).filter(|_| !deleted) {
                Some(o) => drop(self.cluster_roles.insert(name, o)),
                None => drop(self.cluster_roles.remove(&name)),
            },
            Kind::Roles => match typed(obj).filter(|_| !deleted) {
                Some(o) => drop(self.roles.insert((ns, name), o)),
                None => drop(self.roles.remove(&(ns, name))),
            },
            Kind::ClusterRoleBindings => match typed(obj).filter(|_| !deleted) {
                Some(o) => drop(self.cluster_role_bindings.insert(name, o)),
                None => drop(self.cluster_role_bindings.remove(&name)),
            },
            Kind::RoleBindings => match typed(obj).filter(|_| !deleted) {
                Some(o) => drop(self.role_bindings.insert((ns, name), o)),
                None => drop(self.role_bindings.remove(&(ns, name))),
            },
        }
    }

    fn contains(&self, kind: Kind, ns: &str, name: &str) -> bool {
        let key = (ns.to_string(), name.to_string());
        match kind {
            Kind::ClusterRoles => self.cluster_roles.contains_key(name),
            Kind::Roles => self.roles.contains_key(&key),
            Kind::ClusterRoleBindings => self.cluster_role_bindings.contains_key(name),
            Kind::RoleBindings => self.role_bindings.contains_key(&key),
        }
    }

    /// The rules a roleRef names, or upstream's not-found error.
    fn role_rules(&self, role_ref: &RoleRef, namespace: &str) -> Result<&[PolicyRule], String> {
        match role_ref.kind.as_str() {
            "ClusterRole" => self
                .cluster_roles
                .get(&role_ref.name)
                .map(|r| r.rules.as_deref().unwrap_or_default())
                .ok_or_else(|| format!("clusterrole.{GROUP} {:?} not found", role_ref.name)),
            "Role" => self
                .roles
                .get(&(namespace.to_string(), role_ref.name.clone()))
                .map(|r| r.rules.as_deref().unwrap_or_default())
                .ok_or_else(|| format!("role.{GROUP} {:?} not found", role_ref.name)),
            other => Err(format!("unsupported role reference kind: {other:?}")),
        }
    }

    /// Visits every rule that applies to `user` in `namespace` (cluster-wide ones first) with
    /// the binding that grants it, until `visit` returns true; errors resolving roles go to
    /// `errors`.
    fn visit_rules(
        &self,
        user: &User,
        namespace: &str,
        errors: &mut Vec<String>,
        visit: &mut dyn FnMut(&PolicyRule, &dyn Fn() -> String) -> bool,
    ) -> bool {
        for (name, binding) in &self.cluster_role_bindings {
            let Some(subject) = applies_to(user, binding.subjects.as_deref(), "") else {
                continue;
            };
            match self.role_rules(&binding.role_ref, "") {
                Ok(list) => {
                    let source = || {
                        format!(
                            "ClusterRoleBinding {name:?} of {} {:?} to {}",
                            binding.role_ref.kind,
                            binding.role_ref.name,
                            describe_subject(subject, "")
                        )
                    };
                    if list.iter().any(|r| visit(r, &source)) {
                        return true;
                    }
                }
                Err(e) => errors.push(e),
            }
        }
        if namespace.is_empty() {
            return false;
        }
        let in_namespace = self
            .role_bindings
            .range((namespace.to_string(), String::new())..)
            .take_while(|((ns, _), _)| ns == namespace);
        for ((ns, name), binding) in in_namespace {
            let Some(subject) = applies_to(user, binding.subjects.as_deref(), ns) else {
                continue;
            };
            match self.role_rules(&binding.role_ref, ns) {
                Ok(list) => {
                    let source = || {
                        format!(
                            "RoleBinding {:?} of {} {:?} to {}",
                            format!("{name}/{ns}"),
                            binding.role_ref.kind,
                            binding.role_ref.name,
                            describe_subject(subject, ns)
                        )
                    };
                    if list.iter().any(|r| visit(r, &source)) {
                        return true;
                    }
                }
                Err(e) => errors.push(e),
            }
        }
        false
    }
}

/// The first subject of a binding that names `user` (upstream `appliesTo`).
fn applies_to<'a>(
    user: &User,
    subjects: Option<&'a [Subject]>,
    namespace: &str,
) -> Option<&'a Subject> {
    subjects?.iter().find(|s| match s.kind.as_str() {
        "User" => user.name == s.name,
        "Group" => user.in_group(&s.name),
        "ServiceAccount" => {
            let ns = s
                .namespace
                .as_deref()
                .filter(|n| !n.is_empty())
                .unwrap_or(namespace);
            !ns.is_empty() && user.name == format!("system:serviceaccount:{ns}:{}", s.name)
        }
        _ => false,
    })
}

fn describe_subject(s: &Subject, namespace: &str) -> String {
    match s.kind.as_str() {
        "ServiceAccount" => {
            let ns = s
                .namespace
                .as_deref()
                .filter(|n| !n.is_empty())
                .unwrap_or(namespace);
            format!("{} {:?}", s.kind, format!("{}/{ns}", s.name))
        }
        _ => format!("{} {:?}", s.kind, s.name),
    }
}

/// Upstream's reason for errors met while resolving roles (`RBAC: <aggregate>`).
fn errors_reason(errors: &[String]) -> String {
    match errors {
        [] => String::new(),
        [one] => format!("RBAC: {one}"),
        many => format!("RBAC: [{}]", many.join(", ")),
    }
}

/// What RBAC says about a request: allowed (with the binding that allows it, as upstream's
/// reason), or no opinion (with the errors met, if any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RbacDecision {
    Allow(String),
    NoOpinion(String),
}

/// A resource request as RBAC sees it.
#[derive(Debug, Clone, Copy)]
pub struct ResourceRequest<'a> {
    pub verb: &'a str,
    pub group: &'a str,
    pub resource: &'a str,
    pub subresource: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
}

/// The RBAC objects in memory, kept current by watches of their stores.
#[derive(Default)]
pub struct RbacView {
    state: RwLock<State>,
    /// Woken whenever a ClusterRole changes, for the aggregation loop.
    pub cluster_roles_changed: tokio::sync::Notify,
    /// Woken on every change, for those waiting for an object to arrive.
    changed: tokio::sync::Notify,
}

impl RbacView {
    /// A view of fixed objects (tests, and the bootstrap policy before the watches run).
    pub fn from_objects(objects: &[Value]) -> RbacView {
        let view = RbacView::default();
        {
            let mut state = view.write();
            for obj in objects {
                let kind = match obj.get("kind").and_then(Value::as_str) {
                    Some("ClusterRole") => Kind::ClusterRoles,
                    Some("Role") => Kind::Roles,
                    Some("ClusterRoleBinding") => Kind::ClusterRoleBindings,
                    Some("RoleBinding") => Kind::RoleBindings,
                    _ => continue,
                };
                state.apply(kind, obj, false);
            }
        }
        view
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        // A panic while holding the lock leaves whole maps behind; reading them is safe.
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts one watch per RBAC kind feeding the view.
    pub fn start(
        registry: &Registry,
        tracker: &TaskTracker,
        shutdown: CancellationToken,
    ) -> Arc<RbacView> {
        let view = Arc::new(RbacView::default());
        for kind in Kind::ALL {
            if let Some(store) = registry.get(GROUP, kind.plural()).cloned() {
                tracker.spawn(follow(view.clone(), kind, store, shutdown.clone()));
            }
        }
        view
    }

    /// Waits until every object named by `keys` (`<plural>/<namespace>/<name>`) is in the
    /// view, or `deadline` passes.
    pub async fn wait_for(&self, keys: &[String], deadline: Duration) -> bool {
        let until = tokio::time::Instant::now() + deadline;
        loop {
            let notified = self.changed.notified();
            let missing = {
                let state = self.read();
                keys.iter().any(|key| {
                    let mut parts = key.splitn(3, '/');
                    let (plural, ns, name) = (
                        parts.next().unwrap_or(""),
                        parts.next().unwrap_or(""),
                        parts.next().unwrap_or(""),
                    );
                    let kind = Kind::ALL.into_iter().find(|k| k.plural() == plural);
                    !kind.is_some_and(|k| state.contains(k, ns, name))
                })
            };
            if !missing {
                return true;
            }
            if tokio::time::timeout_at(until, notified).await.is_err() {
                return false;
            }
        }
    }

    /// Upstream `RBACAuthorizer.Authorize` for a resource request.
    pub fn authorize(&self, user: &User, r: &ResourceRequest<'_>) -> RbacDecision {
        let request = rules::Request {
            verb: r.verb,
            group: r.group,
            resource: r.resource,
            subresource: r.subresource,
            name: r.name,
        };
        self.decide(user, r.namespace, &mut |rule| rules::allows(rule, &request))
    }

    /// Upstream `RBACAuthorizer.Authorize` for a non-resource request (only cluster-wide
    /// bindings count).
    pub fn authorize_path(&self, user: &User, verb: &str, path: &str) -> RbacDecision {
        self.decide(user, "", &mut |rule| rules::allows_path(rule, verb, path))
    }

    fn decide(
        &self,
        user: &User,
        namespace: &str,
        check: &mut dyn FnMut(&PolicyRule) -> bool,
    ) -> RbacDecision {
        let state = self.read();
        let mut errors = Vec::new();
        let mut allowed_by = String::new();
        let found = state.visit_rules(user, namespace, &mut errors, &mut |rule, source| {
            if check(rule) {
                allowed_by = source();
                true
            } else {
                false
            }
        });
        if found {
            RbacDecision::Allow(format!("RBAC: allowed by {allowed_by}"))
        } else {
            RbacDecision::NoOpinion(errors_reason(&errors))
        }
    }

    /// Every rule `user` holds in `namespace` (cluster-wide ones included), and the errors met
    /// resolving roles (upstream `RulesFor`).
    pub fn rules_for(&self, user: &User, namespace: &str) -> (Vec<PolicyRule>, Vec<String>) {
        let state = self.read();
        let mut errors = Vec::new();
        let mut all = Vec::new();
        state.visit_rules(user, namespace, &mut errors, &mut |rule, _| {
            all.push(rule.clone());
            false
        });
        (all, errors)
    }

    /// The rules of the role a binding in `namespace` refers to.
    pub fn role_rules(
        &self,
        role_ref: &RoleRef,
        namespace: &str,
    ) -> Result<Vec<PolicyRule>, String> {
        self.read()
            .role_rules(role_ref, namespace)
            .map(<[_]>::to_vec)
    }

    /// Every ClusterRole, for the aggregation loop.
    pub fn cluster_roles(&self) -> Vec<ClusterRole> {
        self.read().cluster_roles.values().cloned().collect()
    }
}

/// Keeps one kind of the view current: the store's current objects, then its changes; a
/// watch that ends or fails is started again from the current objects.
async fn follow(view: Arc<RbacView>, kind: Kind, store: Arc<Store>, shutdown: CancellationToken) {
    loop {
        let options = WatchOptions {
            send_initial_events: true,
            ..WatchOptions::default()
        };
        match store.watch("", options).await {
            Ok(mut watch) => {
                let mut initial: Option<Vec<Arc<Value>>> = Some(Vec::new());
                loop {
                    let event = tokio::select! {
                        event = watch.next() => event,
                        () = shutdown.cancelled() => return,
                    };
                    match event {
                        Some(WatchEvent::Changed(event_type, event)) => {
                            if let Some(list) = initial.as_mut() {
                                list.push(event.object.arc().clone());
                                continue;
                            }
                            view.write().apply(
                                kind,
                                &event.object,
                                event_type == EventType::Deleted,
                            );
                        }
                        Some(WatchEvent::InitialEventsEnd(_)) => {
                            let list = initial.take().unwrap_or_default();
                            let mut state = view.write();
                            state.clear(kind);
                            for obj in &list {
                                state.apply(kind, obj, false);
                            }
                        }
                        Some(WatchEvent::Error(e)) => {
                            tracing::warn!(resource = kind.plural(), error = %e, "RBAC watch failed; starting again");
                            break;
                        }
                        None => break,
                    }
                    if kind == Kind::ClusterRoles {
                        view.cluster_roles_changed.notify_one();
                    }
                    view.changed.notify_waiters();
                }
            }
            Err(e) => {
                tracing::warn!(resource = kind.plural(), error = %e, "cannot watch RBAC objects")
            }
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user(name: &str, groups: &[&str]) -> User {
        User {
            name: name.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            ..User::default()
        }
    }

    fn request<'a>(verb: &'a str, resource: &'a str, ns: &'a str) -> ResourceRequest<'a> {
        ResourceRequest {
            verb,
            group: "",
            resource,
            subresource: "",
            namespace: ns,
            name: "",
        }
    }

    fn view() -> RbacView {
        RbacView::from_objects(&[
            json!({"kind": "ClusterRole", "metadata": {"name": "pod-reader"},
                "rules": [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}]}),
            json!({"kind": "Role", "metadata": {"name": "cm-writer", "namespace": "dev"},
                "rules": [{"verbs": ["create"], "apiGroups": [""], "resources": ["configmaps"]}]}),
            json!({"kind": "ClusterRoleBinding", "metadata": {"name": "readers"},
                "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": "pod-reader"},
                "subjects": [{"kind": "Group", "apiGroup": GROUP, "name": "readers"}]}),
            json!({"kind": "RoleBinding", "metadata": {"name": "alice-pods", "namespace": "dev"},
                "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": "pod-reader"},
                "subjects": [{"kind": "User", "apiGroup": GROUP, "name": "alice"}]}),
            json!({"kind": "RoleBinding", "metadata": {"name": "sa-cm", "namespace": "dev"},
                "roleRef": {"apiGroup": GROUP, "kind": "Role", "name": "cm-writer"},
                "subjects": [{"kind": "ServiceAccount", "name": "robot"}]}),
            json!({"kind": "RoleBinding", "metadata": {"name": "dangling", "namespace": "dev"},
                "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": "gone"},
                "subjects": [{"kind": "User", "apiGroup": GROUP, "name": "bob"}]}),
        ])
    }

    #[test]
    fn bindings_grant_their_roles_to_users_groups_and_service_accounts() {
        let view = view();
        let alice = user("alice", &["system:authenticated"]);
        assert_eq!(
            view.authorize(&alice, &request("list", "pods", "dev")),
            RbacDecision::Allow(
                "RBAC: allowed by RoleBinding \"alice-pods/dev\" of ClusterRole \"pod-reader\" to User \"alice\"".into()
            )
        );
        // A RoleBinding to a ClusterRole grants it in its namespace only.
        assert_eq!(
            view.authorize(&alice, &request("list", "pods", "default")),
            RbacDecision::NoOpinion(String::new())
        );
        let reader = user("carol", &["readers"]);
        assert!(matches!(
            view.authorize(&reader, &request("get", "pods", "default")),
            RbacDecision::Allow(_)
        ));
        assert!(matches!(
            view.authorize(&reader, &request("delete", "pods", "default")),
            RbacDecision::NoOpinion(_)
        ));
        let robot = user(
            "system:serviceaccount:dev:robot",
            &["system:serviceaccounts"],
        );
        assert_eq!(
            view.authorize(&robot, &request("create", "configmaps", "dev")),
            RbacDecision::Allow(
                "RBAC: allowed by RoleBinding \"sa-cm/dev\" of Role \"cm-writer\" to ServiceAccount \"robot/dev\"".into()
            )
        );
        let other_robot = user("system:serviceaccount:prod:robot", &[]);
        assert!(matches!(
            view.authorize(&other_robot, &request("create", "configmaps", "dev")),
            RbacDecision::NoOpinion(_)
        ));
    }

    #[test]
    fn a_binding_to_a_missing_role_is_named_in_the_refusal() {
        let bob = user("bob", &[]);
        assert_eq!(
            view().authorize(&bob, &request("get", "pods", "dev")),
            RbacDecision::NoOpinion(
                "RBAC: clusterrole.rbac.authorization.k8s.io \"gone\" not found".into()
            )
        );
    }

    #[test]
    fn rules_for_collects_cluster_and_namespace_rules() {
        let view = view();
        let (rules, errors) = view.rules_for(&user("alice", &["readers"]), "dev");
        assert_eq!(rules.len(), 2);
        assert!(errors.is_empty());
        let (rules, _) = view.rules_for(&user("alice", &[]), "default");
        assert!(rules.is_empty());
    }
}
