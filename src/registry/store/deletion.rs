//! Deletion in the store: graceful deletion, finalizers, and the garbage collector's
//! `orphan` and `foregroundDeletion` finalizers that a delete's propagation policy sets.
//!
//! Follows upstream's `Store.Delete` with `BeforeDelete`,
//! `deletionFinalizersForGarbageCollection` and `updateForGracefulDeletionAndFinalizers`
//! (`apiserver/pkg/registry/generic/registry/store.go`): a delete first decides the object's
//! garbage-collection finalizers; an object that then has finalizers, or a grace period, is
//! only marked (`deletionTimestamp`), and is removed once the last finalizer goes and its grace
//! period is over. Everything else is removed at once.

use serde_json::{json, Value};

use super::{has_finalizers, mark_for_deletion, storage_error, Store, MARK_DELETION};
use crate::meta::object::{self, FINALIZER_FOREGROUND, FINALIZER_ORPHAN};
use crate::meta::ApiError;
use crate::registry::GarbageCollectionPolicy;
use crate::storage::Storage as _;

/// `DeleteOptions.propagationPolicy`: what becomes of the dependents of a deleted object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    /// The dependents lose their ownerReference to the object and stay.
    Orphan,
    /// The object goes at once; the garbage collector deletes the dependents afterwards.
    Background,
    /// The object stays (marked) until the garbage collector has deleted its blocking
    /// dependents.
    Foreground,
}

/// The reason of the internal error that leaves a delete's update loop when the object is to
/// be removed at once (upstream's `errDeleteNow`); it never reaches a client.
const DELETE_NOW_REASON: &str = "\0DeleteNow";

/// Whether the dependents are to be orphaned (upstream `shouldOrphanDependents`): an explicit
/// option wins, then a finalizer the object already has, then the kind's default.
fn should_orphan(
    policy: GarbageCollectionPolicy,
    finalizers: &[&str],
    orphan_dependents: Option<bool>,
    propagation: Option<Propagation>,
) -> bool {
    if policy == GarbageCollectionPolicy::Unsupported {
        return false;
    }
    if let Some(orphan) = orphan_dependents {
        return orphan;
    }
    if let Some(propagation) = propagation {
        return propagation == Propagation::Orphan;
    }
    match finalizers
        .iter()
        .find(|f| **f == FINALIZER_ORPHAN || **f == FINALIZER_FOREGROUND)
    {
        Some(f) => *f == FINALIZER_ORPHAN,
        None => policy == GarbageCollectionPolicy::OrphanDependents,
    }
}

/// Whether the dependents are to be deleted in the foreground (upstream
/// `shouldDeleteDependents`); the same order of precedence, and never by default.
fn should_delete_in_foreground(
    policy: GarbageCollectionPolicy,
    finalizers: &[&str],
    orphan_dependents: Option<bool>,
    propagation: Option<Propagation>,
) -> bool {
    if policy == GarbageCollectionPolicy::Unsupported || orphan_dependents.is_some() {
        return false;
    }
    if let Some(propagation) = propagation {
        return propagation == Propagation::Foreground;
    }
    finalizers
        .iter()
        .find(|f| **f == FINALIZER_ORPHAN || **f == FINALIZER_FOREGROUND)
        .is_some_and(|f| *f == FINALIZER_FOREGROUND)
}

/// The object's finalizers as a delete with these options leaves them (upstream
/// `deletionFinalizersForGarbageCollection`), or None when they stay as they are.
pub(super) fn gc_finalizers(
    policy: GarbageCollectionPolicy,
    obj: &Value,
    orphan_dependents: Option<bool>,
    propagation: Option<Propagation>,
) -> Option<Vec<String>> {
    let current: Vec<&str> = obj
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let orphan = should_orphan(policy, &current, orphan_dependents, propagation);
    let foreground = should_delete_in_foreground(policy, &current, orphan_dependents, propagation);
    let mut wanted: Vec<String> = current
        .iter()
        .filter(|f| **f != FINALIZER_ORPHAN && **f != FINALIZER_FOREGROUND)
        .map(|f| f.to_string())
        .collect();
    if orphan {
        wanted.push(FINALIZER_ORPHAN.into());
    }
    if foreground {
        wanted.push(FINALIZER_FOREGROUND.into());
    }
    let same = |a: &[&str], b: &[String]| {
        a.iter().all(|f| b.iter().any(|g| g == f)) && b.iter().all(|g| a.contains(&g.as_str()))
    };
    (!same(&current, &wanted)).then_some(wanted)
}

/// Upstream `markAsDeleting`: what an object deleted without a grace period gets when
/// finalizers keep it — `deletionTimestamp` now (unless an earlier one is set), a zero grace
/// period, and the first time a new `generation`.
fn mark_as_deleting(obj: &mut Value) {
    let now = jiff::Timestamp::now();
    let existing = obj
        .pointer("/metadata/deletionTimestamp")
        .and_then(Value::as_str)
        .map(|t| t.parse::<jiff::Timestamp>().ok());
    let meta = object::metadata_mut(obj);
    if existing.is_none() {
        if let Some(generation) = meta
            .get("generation")
            .and_then(Value::as_i64)
            .filter(|g| *g > 0)
        {
            meta.insert("generation".into(), json!(generation + 1));
        }
    }
    // A later (graceful) deadline, or one that does not parse, is brought forward to now.
    if existing.is_none_or(|t| t.is_none_or(|t| t > now)) {
        meta.insert("deletionTimestamp".into(), json!(object::format_time(now)));
    }
    meta.insert("deletionGracePeriodSeconds".into(), json!(0));
}

impl Store {
    /// Deletes an object, gracefully where the kind asks for it, setting the garbage
    /// collector's finalizers as the options' propagation policy says. Returns the object and
    /// whether it is gone (true) or only marked for deletion (false).
    pub async fn delete(
        &self,
        namespace: &str,
        name: &str,
        options: &super::DeleteOptions,
    ) -> Result<(Value, bool), ApiError> {
        let key = self.key(namespace, name);
        let current = self
            .storage
            .get(&key)
            .await
            .map_err(|e| storage_error(self.gr(), name, e))?;
        self.check_preconditions(name, &current.object, options)?;
        let policy = self.strategy.default_garbage_collection_policy();
        let finalizers = |obj: &Value| {
            gc_finalizers(policy, obj, options.orphan_dependents, options.propagation)
        };
        let graceful = self
            .strategy
            .delete_grace(&current.object, options.grace_period)
            .is_some_and(|g| g > 0);
        if graceful || has_finalizers(&current.object) || finalizers(&current.object).is_some() {
            let marked = self
                .update_with(
                    namespace,
                    name,
                    MARK_DELETION,
                    options.dry_run,
                    &mut |obj| {
                        self.check_preconditions(name, obj, options)?;
                        let grace = self
                            .strategy
                            .delete_grace(obj, options.grace_period)
                            .unwrap_or(0)
                            .max(0);
                        let pending = obj
                            .pointer("/metadata/deletionGracePeriodSeconds")
                            .and_then(Value::as_i64)
                            .is_some_and(|current| current > 0 && grace >= current);
                        if pending && obj.pointer("/metadata/deletionTimestamp").is_some() {
                            // A graceful deletion under way may only be shortened; its
                            // finalizers are no longer the options' to change (upstream).
                            return Ok(obj.clone());
                        }
                        let mut marked = obj.clone();
                        if let Some(list) = finalizers(obj) {
                            object::metadata_mut(&mut marked)
                                .insert("finalizers".into(), json!(list));
                        }
                        if grace > 0 {
                            marked = mark_for_deletion(&marked, grace);
                        } else if has_finalizers(&marked) {
                            mark_as_deleting(&mut marked);
                        } else {
                            let mut now = ApiError::internal("delete now");
                            now.reason = DELETE_NOW_REASON;
                            return Err(now);
                        }
                        if marked.pointer("/spec/finalizers").is_some() {
                            // A namespace: upstream's namespace store shows it Terminating.
                            marked["status"]["phase"] = json!("Terminating");
                        }
                        Ok(marked)
                    },
                )
                .await;
            match marked {
                Ok(marked) => {
                    let gone = marked.pointer("/metadata/deletionTimestamp").is_none();
                    return Ok((marked, gone));
                }
                Err(e) if e.reason == DELETE_NOW_REASON => {}
                Err(e) => return Err(e),
            }
        }
        if options.dry_run {
            return Ok(((*current.object).clone(), true));
        }
        let last = self
            .storage
            .delete(&key, &mut |stored| {
                self.check_preconditions(name, &stored.object, options)
            })
            .await
            .map_err(|e| storage_error(self.gr(), name, e))?;
        Ok((last.object.into_value(), true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use GarbageCollectionPolicy::{DeleteDependents, OrphanDependents, Unsupported};
    use Propagation::{Background, Foreground, Orphan};

    /// The kind's policy, the object's finalizers, `orphanDependents`, `propagationPolicy`, and
    /// the finalizers wanted (None: unchanged).
    type Case = (
        GarbageCollectionPolicy,
        &'static [&'static str],
        Option<bool>,
        Option<Propagation>,
        Option<Vec<String>>,
    );

    fn with(finalizers: &[&str]) -> Value {
        json!({"metadata": {"name": "x", "finalizers": finalizers}})
    }

    #[test]
    fn the_propagation_policy_sets_the_garbage_collection_finalizers() {
        let none: Option<Vec<String>> = None;
        let list = |l: &[&str]| Some(l.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        let cases: &[Case] = &[
            (DeleteDependents, &[], None, None, none.clone()),
            (DeleteDependents, &[], None, Some(Background), none.clone()),
            (DeleteDependents, &[], None, Some(Orphan), list(&["orphan"])),
            (
                DeleteDependents,
                &[],
                None,
                Some(Foreground),
                list(&["foregroundDeletion"]),
            ),
            (DeleteDependents, &[], Some(true), None, list(&["orphan"])),
            (DeleteDependents, &["orphan"], Some(false), None, list(&[])),
            // Others' finalizers stay, in their order, before the collector's.
            (
                DeleteDependents,
                &["a", "orphan", "b"],
                None,
                Some(Foreground),
                list(&["a", "b", "foregroundDeletion"]),
            ),
            // Without an option, a finalizer already there decides.
            (
                DeleteDependents,
                &["foregroundDeletion"],
                None,
                None,
                none.clone(),
            ),
            (DeleteDependents, &["orphan"], None, None, none.clone()),
            (
                DeleteDependents,
                &["foregroundDeletion"],
                None,
                Some(Background),
                list(&[]),
            ),
            (OrphanDependents, &[], None, None, list(&["orphan"])),
            (OrphanDependents, &[], None, Some(Background), none.clone()),
            (
                OrphanDependents,
                &["foregroundDeletion"],
                None,
                None,
                none.clone(),
            ),
            (Unsupported, &[], None, Some(Orphan), none.clone()),
            (
                Unsupported,
                &["orphan", "x"],
                None,
                Some(Orphan),
                list(&["x"]),
            ),
        ];
        for (policy, current, orphan_dependents, propagation, want) in cases {
            assert_eq!(
                &gc_finalizers(*policy, &with(current), *orphan_dependents, *propagation),
                want,
                "{policy:?} {current:?} {orphan_dependents:?} {propagation:?}"
            );
        }
    }

    #[test]
    fn marking_as_deleting_keeps_an_earlier_timestamp_and_bumps_the_generation_once() {
        let mut obj = json!({"metadata": {"name": "x", "generation": 3}});
        mark_as_deleting(&mut obj);
        assert_eq!(obj["metadata"]["generation"], 4);
        assert_eq!(obj["metadata"]["deletionGracePeriodSeconds"], 0);
        assert!(obj["metadata"]["deletionTimestamp"].is_string());
        obj["metadata"]["deletionTimestamp"] = json!("2020-01-01T00:00:00Z");
        mark_as_deleting(&mut obj);
        assert_eq!(obj["metadata"]["generation"], 4);
        assert_eq!(obj["metadata"]["deletionTimestamp"], "2020-01-01T00:00:00Z");
        obj["metadata"]["deletionTimestamp"] = json!("2999-01-01T00:00:00Z");
        mark_as_deleting(&mut obj);
        assert_ne!(obj["metadata"]["deletionTimestamp"], "2999-01-01T00:00:00Z");
        let mut unversioned = json!({"metadata": {"name": "y"}});
        mark_as_deleting(&mut unversioned);
        assert!(unversioned["metadata"].get("generation").is_none());
    }
}
