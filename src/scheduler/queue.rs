//! The scheduling queue: Pods waiting for a node, ready now, backing off, or unschedulable.
//!
//! Follows kube-scheduler's `PriorityQueue`: new Pods are tried in arrival order. A Pod that fit
//! nowhere is *unschedulable*: it is not tried again until the cluster changes in a way that
//! can make room (a node added or changed, a bound Pod gone), or until it has waited
//! [`UNSCHEDULABLE_MAX`]. Even then it waits out its backoff first — 1 s after the first
//! failure, doubling up to 10 s (`podInitialBackoffSeconds`, `podMaxBackoffSeconds`) — so a
//! burst of changes (fifty nodes appearing one by one) retries each Pod once per backoff, not
//! once per change. A Pod whose binding failed for another reason goes straight to backoff.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::Duration;

use tokio::time::Instant;

pub const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// How long an unschedulable Pod waits for a change before it is tried anyway
/// (`podMaxInUnschedulablePodsDuration`).
pub const UNSCHEDULABLE_MAX: Duration = Duration::from_secs(300);

/// Every operation costs what the Pods it touches cost, never what the queue holds, so ten
/// thousand pending Pods are as cheap to queue as ten.
#[derive(Debug, Default)]
pub struct SchedulingQueue {
    active: VecDeque<(u64, String)>,
    /// The Pods that are in `active`, each with the number its entry there carries; an entry
    /// whose number differs was removed (or popped) since, and is skipped.
    queued: HashMap<String, u64>,
    next_entry: u64,
    /// Backing-off Pods and when each is ready, also ordered by that time in `ready_at`.
    backing_off: HashMap<String, Instant>,
    ready_at: BTreeSet<(Instant, String)>,
    /// Unschedulable Pods: since when, and when their backoff ends; ordered by `since` in
    /// `unschedulable_since` for the periodic flush.
    unschedulable: HashMap<String, (Instant, Instant)>,
    unschedulable_since: BTreeSet<(Instant, String)>,
    attempts: HashMap<String, u32>,
}

/// The wait after `attempts` failures: 1 s, 2 s, 4 s, 8 s, then 10 s.
pub fn backoff(attempts: u32) -> Duration {
    let doubled = INITIAL_BACKOFF.saturating_mul(1u32 << attempts.saturating_sub(1).min(16));
    doubled.min(MAX_BACKOFF)
}

impl SchedulingQueue {
    /// Queues a Pod that needs a node, unless it is queued already.
    pub fn add(&mut self, uid: &str) {
        if self.backing_off.contains_key(uid) || self.unschedulable.contains_key(uid) {
            return;
        }
        self.activate(uid.to_string());
    }

    /// Forgets a Pod (bound, deleted, or no longer ours).
    pub fn remove(&mut self, uid: &str) {
        self.queued.remove(uid);
        self.take_out(uid);
        self.attempts.remove(uid);
    }

    /// A Pod fit nowhere: it waits for a change in the cluster, and then out its backoff.
    pub fn unschedulable(&mut self, uid: &str, now: Instant) {
        let ready = now + self.count_attempt(uid);
        self.queued.remove(uid);
        self.take_out(uid);
        self.unschedulable.insert(uid.to_string(), (now, ready));
        self.unschedulable_since.insert((now, uid.to_string()));
    }

    /// A Pod's attempt failed for a reason other than room (its binding was refused): it is
    /// tried again once its backoff is over.
    pub fn failed(&mut self, uid: &str, now: Instant) {
        let ready = now + self.count_attempt(uid);
        self.queued.remove(uid);
        self.take_out(uid);
        self.back_off(uid.to_string(), ready);
    }

    /// Something changed that may make room: every unschedulable Pod is ready now, or once its
    /// backoff is over.
    pub fn move_all_to_active(&mut self, now: Instant) {
        self.unschedulable_since.clear();
        let moved: Vec<(String, (Instant, Instant))> = self.unschedulable.drain().collect();
        let mut moved: Vec<(Instant, Instant, String)> = moved
            .into_iter()
            .map(|(uid, (since, ready))| (since, ready, uid))
            .collect();
        moved.sort();
        for (_, ready, uid) in moved {
            if ready <= now {
                self.activate(uid);
            } else {
                self.back_off(uid, ready);
            }
        }
    }

    /// The next Pod to try, if any is ready at `now`.
    pub fn pop(&mut self, now: Instant) -> Option<String> {
        while let Some((since, uid)) = self.unschedulable_since.first().cloned() {
            if since + UNSCHEDULABLE_MAX > now {
                break;
            }
            self.unschedulable_since.pop_first();
            if let Some((_, ready)) = self.unschedulable.remove(&uid) {
                self.back_off(uid, ready);
            }
        }
        while self.ready_at.first().is_some_and(|(at, _)| *at <= now) {
            if let Some((_, uid)) = self.ready_at.pop_first() {
                self.backing_off.remove(&uid);
                self.activate(uid);
            }
        }
        while let Some((entry, uid)) = self.active.pop_front() {
            if self.queued.get(&uid) == Some(&entry) {
                self.queued.remove(&uid);
                return Some(uid);
            }
        }
        None
    }

    /// Whether [`pop`](Self::pop) would return a Pod at `now`.
    pub fn has_ready(&self, now: Instant) -> bool {
        !self.queued.is_empty()
            || self.ready_at.first().is_some_and(|(at, _)| *at <= now)
            || self
                .unschedulable_since
                .first()
                .is_some_and(|(since, _)| *since + UNSCHEDULABLE_MAX <= now)
    }

    /// When the queue next has something to do without a change in the cluster.
    pub fn next_wakeup(&self) -> Option<Instant> {
        let backoff = self.ready_at.first().map(|(at, _)| *at);
        let flush = self
            .unschedulable_since
            .first()
            .map(|(since, _)| *since + UNSCHEDULABLE_MAX);
        backoff.into_iter().chain(flush).min()
    }

    fn count_attempt(&mut self, uid: &str) -> Duration {
        let attempts = self.attempts.entry(uid.to_string()).or_insert(0);
        *attempts += 1;
        backoff(*attempts)
    }

    fn activate(&mut self, uid: String) {
        if !self.queued.contains_key(&uid) {
            self.next_entry += 1;
            self.queued.insert(uid.clone(), self.next_entry);
            self.active.push_back((self.next_entry, uid));
        }
    }

    fn back_off(&mut self, uid: String, ready: Instant) {
        self.backing_off.insert(uid.clone(), ready);
        self.ready_at.insert((ready, uid));
    }

    /// Takes a Pod out of the backoff and unschedulable sets.
    fn take_out(&mut self, uid: &str) {
        if let Some(at) = self.backing_off.remove(uid) {
            self.ready_at.remove(&(at, uid.to_string()));
        }
        if let Some((since, _)) = self.unschedulable.remove(uid) {
            self.unschedulable_since.remove(&(since, uid.to_string()));
        }
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.queued.is_empty() && self.backing_off.is_empty() && self.unschedulable.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_one_second_to_ten() {
        let waits: Vec<u64> = (1..=6).map(|a| backoff(a).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 10, 10]);
    }

    #[test]
    fn pods_come_out_in_arrival_order_once_each() {
        let mut q = SchedulingQueue::default();
        let now = Instant::now();
        q.add("a");
        q.add("b");
        q.add("a");
        assert_eq!(q.pop(now).as_deref(), Some("a"));
        assert_eq!(q.pop(now).as_deref(), Some("b"));
        assert_eq!(q.pop(now), None);
    }

    #[test]
    fn a_failed_binding_is_retried_after_its_backoff() {
        let mut q = SchedulingQueue::default();
        let now = Instant::now();
        q.add("a");
        q.pop(now);
        q.failed("a", now);
        assert_eq!(q.pop(now), None);
        assert_eq!(q.next_wakeup(), Some(now + Duration::from_secs(1)));
        assert_eq!(q.pop(now + Duration::from_secs(1)).as_deref(), Some("a"));
        q.failed("a", now);
        assert_eq!(q.next_wakeup(), Some(now + Duration::from_secs(2)));
    }

    #[test]
    fn an_unschedulable_pod_waits_for_a_change_then_its_backoff() {
        let mut q = SchedulingQueue::default();
        let now = Instant::now();
        q.add("a");
        q.pop(now);
        q.unschedulable("a", now);
        // Nothing changed: not tried again, however long its backoff was.
        assert_eq!(q.pop(now + MAX_BACKOFF), None);
        assert_eq!(q.next_wakeup(), Some(now + UNSCHEDULABLE_MAX));
        // A change after the backoff: ready at once.
        let later = now + Duration::from_secs(5);
        q.move_all_to_active(later);
        assert_eq!(q.pop(later).as_deref(), Some("a"));
        // A change during the second backoff (2 s): it waits the backoff out.
        q.unschedulable("a", later);
        q.move_all_to_active(later + Duration::from_millis(500));
        assert_eq!(q.pop(later + Duration::from_millis(500)), None);
        assert_eq!(q.next_wakeup(), Some(later + Duration::from_secs(2)));
        assert_eq!(q.pop(later + Duration::from_secs(2)).as_deref(), Some("a"));
    }

    #[test]
    fn many_changes_retry_an_unschedulable_pod_once_per_backoff() {
        let mut q = SchedulingQueue::default();
        let now = Instant::now();
        q.add("a");
        q.pop(now);
        q.unschedulable("a", now);
        let mut tries = 0;
        for step in 0..100u32 {
            let at = now + Duration::from_millis(20) * step;
            q.move_all_to_active(at);
            while q.pop(at).is_some() {
                tries += 1;
                q.unschedulable("a", at);
            }
        }
        // Two seconds of changes every 20 ms: tried after 1 s only (its next backoff is 2 s).
        assert_eq!(tries, 1);
    }

    #[test]
    fn an_unschedulable_pod_is_tried_again_after_five_minutes_without_a_change() {
        let mut q = SchedulingQueue::default();
        let now = Instant::now();
        q.add("a");
        q.pop(now);
        q.unschedulable("a", now);
        assert_eq!(
            q.pop(now + UNSCHEDULABLE_MAX - Duration::from_secs(1)),
            None
        );
        assert_eq!(q.pop(now + UNSCHEDULABLE_MAX).as_deref(), Some("a"));
    }

    #[test]
    fn removed_pod_is_never_returned() {
        let mut q = SchedulingQueue::default();
        let now = Instant::now();
        q.add("a");
        q.failed("a", now);
        q.remove("a");
        assert_eq!(q.pop(now + MAX_BACKOFF), None);
        assert!(q.is_empty());
    }

    #[test]
    fn a_pod_removed_and_queued_again_comes_out_once() {
        let mut q = SchedulingQueue::default();
        let now = Instant::now();
        q.add("a");
        q.add("b");
        q.remove("a");
        q.add("a");
        let popped: Vec<String> = std::iter::from_fn(|| q.pop(now)).collect();
        assert_eq!(popped, ["b", "a"]);
        assert!(q.is_empty());
    }

    #[test]
    fn backed_off_pods_return_in_the_order_they_become_ready() {
        let mut q = SchedulingQueue::default();
        let now = Instant::now();
        q.failed("late", now + Duration::from_millis(500));
        q.failed("early", now);
        assert_eq!(q.pop(now), None);
        let later = now + Duration::from_secs(2);
        let popped: Vec<String> = std::iter::from_fn(|| q.pop(later)).collect();
        assert_eq!(popped, ["early", "late"]);
    }
}
