//! The garbage collector's view of one moment of the cluster: every watched object by uid,
//! its owners and its dependents, what each object needs (upstream's `GraphBuilder`), and what
//! becomes of a dependent once its owners are known (upstream `attemptToDeleteItem`). Pure
//! functions of a snapshot; the collector does the I/O.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{ApiResource, PropagationPolicy};
use kube::core::PartialObjectMeta;

use crate::meta::object::{FINALIZER_FOREGROUND, FINALIZER_ORPHAN};

/// A kind the collector watches (or can look an owner up in).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Kind {
    pub resource: ApiResource,
    pub namespaced: bool,
}

/// `group/version` → (`group`, `version`); the core group has no slash.
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    api_version.split_once('/').unwrap_or(("", api_version))
}

/// One watched object and its kind.
#[derive(Debug, Clone, Copy)]
pub struct Node<'a> {
    pub kind: &'a Kind,
    pub obj: &'a PartialObjectMeta,
}

impl<'a> Node<'a> {
    pub fn uid(&self) -> &'a str {
        self.obj.metadata.uid.as_deref().unwrap_or("")
    }

    pub fn name(&self) -> &'a str {
        self.obj.metadata.name.as_deref().unwrap_or("")
    }

    pub fn namespace(&self) -> &'a str {
        self.obj.metadata.namespace.as_deref().unwrap_or("")
    }

    pub fn resource_version(&self) -> &'a str {
        self.obj.metadata.resource_version.as_deref().unwrap_or("")
    }

    pub fn owners(&self) -> &'a [OwnerReference] {
        self.obj.metadata.owner_references.as_deref().unwrap_or(&[])
    }

    fn has_finalizer(&self, finalizer: &str) -> bool {
        self.obj
            .metadata
            .finalizers
            .iter()
            .flatten()
            .any(|f| f == finalizer)
    }

    pub fn being_deleted(&self) -> bool {
        self.obj.metadata.deletion_timestamp.is_some()
    }

    /// Marked for deletion and waiting for its dependents to go (upstream
    /// `isDeletingDependents`).
    pub fn deleting_dependents(&self) -> bool {
        self.being_deleted() && self.has_finalizer(FINALIZER_FOREGROUND)
    }

    /// Marked for deletion and waiting for its dependents to be orphaned.
    pub fn orphaning(&self) -> bool {
        self.being_deleted() && self.has_finalizer(FINALIZER_ORPHAN)
    }

    /// A short name for logs: `kind namespace/name`.
    pub fn describe(&self) -> String {
        format!(
            "{} {}/{}",
            self.kind.resource.kind,
            self.namespace(),
            self.name()
        )
    }
}

/// What an object needs from the collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// An owner deleted with `Orphan`: its dependents lose their reference to it, then it
    /// loses its `orphan` finalizer (upstream `attemptToOrphan`).
    Orphan(usize),
    /// An owner deleted in the foreground with no blocking dependent left: it loses its
    /// `foregroundDeletion` finalizer (upstream `processDeletingDependentsItem`).
    ForegroundDone(usize),
    /// A dependent with an owner that may be gone or is deleting its dependents in the
    /// foreground (upstream `attemptToDelete`).
    AttemptToDelete(usize),
}

/// Every watched object of one snapshot, by uid, with the dependents of each owner uid.
pub struct Graph<'a> {
    pub nodes: Vec<Node<'a>>,
    by_uid: HashMap<&'a str, usize>,
    dependents: HashMap<&'a str, Vec<usize>>,
}

impl<'a> Graph<'a> {
    pub fn build(snapshot: &'a [(Kind, Vec<Arc<PartialObjectMeta>>)]) -> Graph<'a> {
        let nodes: Vec<Node<'a>> = snapshot
            .iter()
            .flat_map(|(kind, objects)| {
                objects.iter().map(move |obj| Node {
                    kind,
                    obj: obj.as_ref(),
                })
            })
            .filter(|node| !node.uid().is_empty())
            .collect();
        let mut by_uid = HashMap::new();
        let mut dependents: HashMap<&'a str, Vec<usize>> = HashMap::new();
        for (index, node) in nodes.iter().enumerate() {
            by_uid.insert(node.uid(), index);
            for owner in node.owners() {
                let list = dependents.entry(owner.uid.as_str()).or_default();
                if !list.contains(&index) {
                    list.push(index);
                }
            }
        }
        Graph {
            nodes,
            by_uid,
            dependents,
        }
    }

    /// The watched object a reference of `dependent` names: the same uid, group and kind,
    /// and a namespaced owner only in the dependent's own namespace (a reference across
    /// namespaces names nothing, as upstream).
    pub fn owner(&self, dependent: &Node<'_>, reference: &OwnerReference) -> Option<Node<'a>> {
        let node = *self.nodes.get(*self.by_uid.get(reference.uid.as_str())?)?;
        let (group, _) = split_api_version(&reference.api_version);
        let same_kind =
            node.kind.resource.group == group && node.kind.resource.kind == reference.kind;
        let same_scope = !node.kind.namespaced || node.namespace() == dependent.namespace();
        (same_kind && same_scope && node.name() == reference.name).then_some(node)
    }

    /// The objects that name `owner` in their ownerReferences.
    pub fn dependents_of(&self, owner: &Node<'_>) -> Vec<Node<'a>> {
        self.dependents
            .get(owner.uid())
            .into_iter()
            .flatten()
            .filter_map(|i| self.nodes.get(*i).copied())
            .collect()
    }

    /// The dependents whose reference to `owner` blocks its foreground deletion.
    pub fn blocking_dependents(&self, owner: &Node<'_>) -> Vec<Node<'a>> {
        self.dependents_of(owner)
            .into_iter()
            .filter(|d| {
                d.owners()
                    .iter()
                    .any(|r| r.uid == owner.uid() && r.block_owner_deletion == Some(true))
            })
            .collect()
    }

    /// What the snapshot asks of the collector, owners first.
    pub fn work(&self) -> Vec<Work> {
        let mut work = Vec::new();
        for (index, node) in self.nodes.iter().enumerate() {
            if node.orphaning() {
                work.push(Work::Orphan(index));
            } else if node.deleting_dependents() && self.blocking_dependents(node).is_empty() {
                work.push(Work::ForegroundDone(index));
            }
        }
        for (index, node) in self.nodes.iter().enumerate() {
            // An object on its way out is left alone: it goes, and its dependents are seen
            // to afterwards. One deleting its dependents is an owner's business above.
            if node.being_deleted() {
                continue;
            }
            let attention = node.owners().iter().any(|r| match self.owner(node, r) {
                None => true,
                Some(owner) => owner.deleting_dependents(),
            });
            if attention {
                work.push(Work::AttemptToDelete(index));
            }
        }
        work
    }
}

/// What an owner reference of a dependent turned out to name (upstream
/// `classifyReferences`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerState {
    /// The owner exists and is not deleting its dependents.
    Solid,
    /// No object of that kind and name has that uid.
    Dangling,
    /// The owner exists and is deleting its dependents in the foreground.
    Waiting,
}

/// What becomes of a dependent whose owners are classified.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// It has an owner that keeps it, and nothing to tidy.
    Keep,
    /// It keeps its solid owners and loses its references to these uids (dangling ones and
    /// owners deleting their dependents).
    RemoveOwners(Vec<String>),
    /// An owner deletes its dependents in the foreground and this dependent has dependents
    /// of its own: it is deleted in the foreground too, after its blocking references are
    /// made non-blocking when `unblock` (a possible cycle, as upstream).
    DeleteInForeground { unblock: bool },
    /// No owner keeps it: it is deleted with this propagation.
    Delete(PropagationPolicy),
}

/// Upstream `attemptToDeleteItem`'s choice for `dependent`, given its classified owners,
/// whether it has dependents, and whether one of those is deleting its own dependents.
pub fn decide(
    dependent: &Node<'_>,
    owners: &[(&OwnerReference, OwnerState)],
    has_dependents: bool,
    a_dependent_deleting_dependents: bool,
) -> Decision {
    let with = |state: OwnerState| {
        owners
            .iter()
            .filter(move |(_, s)| *s == state)
            .map(|(r, _)| r.uid.clone())
    };
    if with(OwnerState::Solid).next().is_some() {
        let gone: Vec<String> = with(OwnerState::Dangling)
            .chain(with(OwnerState::Waiting))
            .collect();
        return if gone.is_empty() {
            Decision::Keep
        } else {
            Decision::RemoveOwners(gone)
        };
    }
    if with(OwnerState::Waiting).next().is_some() && has_dependents {
        return Decision::DeleteInForeground {
            unblock: a_dependent_deleting_dependents,
        };
    }
    if owners.is_empty() {
        return Decision::Keep;
    }
    // An object's own garbage-collection finalizer is honoured; otherwise, in the background.
    let policy = if dependent.has_finalizer(FINALIZER_ORPHAN) {
        PropagationPolicy::Orphan
    } else if dependent.has_finalizer(FINALIZER_FOREGROUND) {
        PropagationPolicy::Foreground
    } else {
        PropagationPolicy::Background
    };
    Decision::Delete(policy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn kind(group: &str, kind: &str, plural: &str, namespaced: bool) -> Kind {
        let version = "v1";
        Kind {
            resource: ApiResource {
                group: group.into(),
                version: version.into(),
                api_version: if group.is_empty() {
                    version.into()
                } else {
                    format!("{group}/{version}")
                },
                kind: kind.into(),
                plural: plural.into(),
            },
            namespaced,
        }
    }

    fn obj(name: &str, uid: &str, extra: serde_json::Value) -> Arc<PartialObjectMeta> {
        let mut value = json!({"metadata": {"name": name, "namespace": "default", "uid": uid,
            "resourceVersion": "1"}});
        if let Some(meta) = extra.get("metadata").and_then(|m| m.as_object()) {
            for (k, v) in meta {
                value["metadata"][k] = v.clone();
            }
        }
        Arc::new(serde_json::from_value(value).expect("an object"))
    }

    fn rs_ref(name: &str, uid: &str, block: bool) -> serde_json::Value {
        json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": name, "uid": uid,
            "controller": true, "blockOwnerDeletion": block})
    }

    fn snapshot(
        sets: Vec<Arc<PartialObjectMeta>>,
        pods: Vec<Arc<PartialObjectMeta>>,
    ) -> Vec<(Kind, Vec<Arc<PartialObjectMeta>>)> {
        vec![
            (kind("apps", "ReplicaSet", "replicasets", true), sets),
            (kind("", "Pod", "pods", true), pods),
        ]
    }

    fn names(graph: &Graph<'_>, work: &[Work]) -> Vec<String> {
        work.iter()
            .map(|w| {
                let (what, i) = match w {
                    Work::Orphan(i) => ("orphan", i),
                    Work::ForegroundDone(i) => ("done", i),
                    Work::AttemptToDelete(i) => ("attempt", i),
                };
                format!("{what} {}", graph.nodes[*i].name())
            })
            .collect()
    }

    #[test]
    fn dependents_of_missing_or_foreground_deleting_owners_need_attention() {
        let deleting = json!({"metadata": {"deletionTimestamp": "2024-01-01T00:00:00Z",
            "finalizers": ["foregroundDeletion"]}});
        let snap = snapshot(
            vec![
                obj("kept", "rs-1", json!({})),
                obj("going", "rs-2", deleting.clone()),
            ],
            vec![
                obj(
                    "owned",
                    "p-1",
                    json!({"metadata": {"ownerReferences": [rs_ref("kept", "rs-1", true)]}}),
                ),
                obj(
                    "orphan",
                    "p-2",
                    json!({"metadata": {"ownerReferences": [rs_ref("gone", "rs-9", true)]}}),
                ),
                obj(
                    "waiting",
                    "p-3",
                    json!({"metadata": {"ownerReferences": [rs_ref("going", "rs-2", true)]}}),
                ),
                // The uid exists but the name does not match: the reference names nothing.
                obj(
                    "forged",
                    "p-4",
                    json!({"metadata": {"ownerReferences": [rs_ref("other", "rs-1", true)]}}),
                ),
                obj("free", "p-5", json!({})),
            ],
        );
        let graph = Graph::build(&snap);
        assert_eq!(
            names(&graph, &graph.work()),
            ["attempt orphan", "attempt waiting", "attempt forged"]
        );
        let going = graph.nodes[1];
        assert_eq!(graph.blocking_dependents(&going).len(), 1);
    }

    #[test]
    fn owners_finish_when_orphaning_or_when_no_blocking_dependent_is_left() {
        let marked = |f: &str| json!({"metadata": {"deletionTimestamp": "2024-01-01T00:00:00Z", "finalizers": [f]}});
        let snap = snapshot(
            vec![
                obj("orphaning", "rs-1", marked("orphan")),
                obj("blocked", "rs-2", marked("foregroundDeletion")),
                obj("unblocked", "rs-3", marked("foregroundDeletion")),
            ],
            vec![
                obj(
                    "a",
                    "p-1",
                    json!({"metadata": {"ownerReferences": [rs_ref("orphaning", "rs-1", true)]}}),
                ),
                obj(
                    "b",
                    "p-2",
                    json!({"metadata": {"ownerReferences": [rs_ref("blocked", "rs-2", true)]}}),
                ),
                obj(
                    "c",
                    "p-3",
                    json!({"metadata": {"ownerReferences": [rs_ref("unblocked", "rs-3", false)]}}),
                ),
            ],
        );
        let graph = Graph::build(&snap);
        assert_eq!(
            names(&graph, &graph.work()),
            [
                "orphan orphaning",
                "done unblocked",
                "attempt b",
                "attempt c"
            ]
        );
    }

    /// A dependent, its classified owners, whether it has dependents, whether one of those
    /// deletes its own, and the decision.
    type Case<'a, 'r> = (
        Node<'a>,
        Vec<(&'r OwnerReference, OwnerState)>,
        bool,
        bool,
        Decision,
    );

    #[test]
    fn a_dependent_goes_only_when_no_owner_keeps_it() {
        let snap = snapshot(
            vec![],
            vec![
                obj("plain", "p-1", json!({})),
                obj(
                    "orphaner",
                    "p-2",
                    json!({"metadata": {"finalizers": ["orphan"]}}),
                ),
            ],
        );
        let graph = Graph::build(&snap);
        let (plain, orphaner) = (graph.nodes[0], graph.nodes[1]);
        let a: OwnerReference = serde_json::from_value(rs_ref("a", "u-a", true)).expect("ref");
        let b: OwnerReference = serde_json::from_value(rs_ref("b", "u-b", true)).expect("ref");
        use OwnerState::{Dangling, Solid, Waiting};
        let cases: Vec<Case<'_, '_>> = vec![
            (plain, vec![(&a, Solid)], false, false, Decision::Keep),
            (
                plain,
                vec![(&a, Solid), (&b, Dangling)],
                false,
                false,
                Decision::RemoveOwners(vec!["u-b".into()]),
            ),
            (
                plain,
                vec![(&a, Waiting), (&b, Solid)],
                false,
                false,
                Decision::RemoveOwners(vec!["u-a".into()]),
            ),
            (
                plain,
                vec![(&a, Dangling), (&b, Dangling)],
                false,
                false,
                Decision::Delete(PropagationPolicy::Background),
            ),
            (
                plain,
                vec![(&a, Waiting)],
                false,
                false,
                Decision::Delete(PropagationPolicy::Background),
            ),
            (
                plain,
                vec![(&a, Waiting)],
                true,
                false,
                Decision::DeleteInForeground { unblock: false },
            ),
            (
                plain,
                vec![(&a, Waiting)],
                true,
                true,
                Decision::DeleteInForeground { unblock: true },
            ),
            (
                orphaner,
                vec![(&a, Dangling)],
                false,
                false,
                Decision::Delete(PropagationPolicy::Orphan),
            ),
        ];
        for (node, owners, has_dependents, cycle, want) in cases {
            assert_eq!(
                decide(&node, &owners, has_dependents, cycle),
                want,
                "{} {owners:?}",
                node.name()
            );
        }
    }
}
