//! The scheduling queue: Pods waiting for a node, each either ready now or backing off.
//!
//! Follows kube-scheduler's `PriorityQueue` in what matters here: new Pods are tried in
//! arrival order; a Pod that fit nowhere waits 1 s, doubling up to 10 s
//! (`podInitialBackoffSeconds`, `podMaxBackoffSeconds`); and a change in the cluster that can
//! make room (a node added or changed, a bound Pod gone) makes every waiting Pod ready at once.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use tokio::time::Instant;

pub const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);

#[derive(Debug, Default)]
pub struct SchedulingQueue {
    active: VecDeque<String>,
    waiting: HashMap<String, Instant>,
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
        if self.waiting.contains_key(uid) || self.active.iter().any(|u| u == uid) {
            return;
        }
        self.active.push_back(uid.to_string());
    }

    /// Forgets a Pod (bound, deleted, or no longer ours).
    pub fn remove(&mut self, uid: &str) {
        self.active.retain(|u| u != uid);
        self.waiting.remove(uid);
        self.attempts.remove(uid);
    }

    /// A Pod fit nowhere: it waits out its backoff before the next try.
    pub fn failed(&mut self, uid: &str, now: Instant) {
        let attempts = self.attempts.entry(uid.to_string()).or_insert(0);
        *attempts += 1;
        let ready = now + backoff(*attempts);
        self.active.retain(|u| u != uid);
        self.waiting.insert(uid.to_string(), ready);
    }

    /// Something changed that may make room: every waiting Pod is ready now.
    pub fn move_all_to_active(&mut self) {
        let mut ready: Vec<(String, Instant)> = self.waiting.drain().collect();
        ready.sort_by_key(|(_, at)| *at);
        self.active.extend(ready.into_iter().map(|(uid, _)| uid));
    }

    /// The next Pod to try, if any is ready at `now`.
    pub fn pop(&mut self, now: Instant) -> Option<String> {
        let mut due: Vec<(String, Instant)> = self
            .waiting
            .iter()
            .filter(|(_, at)| **at <= now)
            .map(|(u, at)| (u.clone(), *at))
            .collect();
        due.sort_by_key(|(_, at)| *at);
        for (uid, _) in due {
            self.waiting.remove(&uid);
            self.active.push_back(uid);
        }
        self.active.pop_front()
    }

    /// When the earliest waiting Pod becomes ready.
    pub fn next_wakeup(&self) -> Option<Instant> {
        self.waiting.values().min().copied()
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.active.is_empty() && self.waiting.is_empty()
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
    fn failed_pod_waits_its_backoff_unless_the_cluster_changes() {
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
        q.move_all_to_active();
        assert_eq!(q.pop(now).as_deref(), Some("a"));
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
}
