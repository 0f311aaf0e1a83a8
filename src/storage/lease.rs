//! Shared etcd leases for objects that expire by themselves (Events).
//!
//! One lease per object would make etcd track as many leases as there are Events, and a busy
//! cluster makes tens of thousands. Like kube-apiserver's `etcd3.leaseManager`, rkube grants a
//! lease a little longer than asked for and attaches every object written in a short window
//! after it to the same lease, up to a maximum count: an object then lives between `ttl` and
//! `ttl` plus the window, never less than asked.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The longest window during which one lease is reused (upstream default: 60 s).
const REUSE_MAX_SECONDS: i64 = 60;
/// The window as a fraction of the TTL, for short TTLs (upstream default: 5%).
const REUSE_PERCENT: f64 = 0.05;
/// Objects attached to one lease at most (upstream default: 1000).
const MAX_OBJECTS_PER_LEASE: u64 = 1000;

/// What to do for an object that must expire after some TTL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseChoice {
    /// Attach the object to this existing lease.
    Reuse(i64),
    /// Grant a new lease of this many seconds, then [`LeaseManager::granted`] it.
    Grant(i64),
}

#[derive(Debug, Default)]
struct Current {
    id: i64,
    expires: Option<Instant>,
    attached: u64,
}

/// Decides which lease an expiring object goes on; the etcd calls stay with the caller.
#[derive(Debug, Default)]
pub struct LeaseManager {
    current: Mutex<Current>,
}

fn reuse_seconds(ttl: i64) -> i64 {
    ((ttl as f64 * REUSE_PERCENT) as i64).min(REUSE_MAX_SECONDS)
}

impl LeaseManager {
    /// The lease for an object that must live `ttl` seconds from `now`.
    pub fn choose(&self, ttl: i64, now: Instant) -> LeaseChoice {
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        let reuse = reuse_seconds(ttl);
        let wanted = now + Duration::from_secs(ttl.max(0) as u64);
        let latest = wanted + Duration::from_secs(reuse.max(0) as u64);
        // The lease must outlive the object's TTL, and not by more than the reuse window.
        let fits = current
            .expires
            .is_some_and(|expires| wanted < expires && expires <= latest);
        if fits && current.attached < MAX_OBJECTS_PER_LEASE {
            current.attached += 1;
            return LeaseChoice::Reuse(current.id);
        }
        LeaseChoice::Grant(ttl + reuse)
    }

    /// Records a lease granted at `now` for `seconds`, with one object attached.
    pub fn granted(&self, id: i64, seconds: i64, now: Instant) {
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        *current = Current {
            id,
            expires: Some(now + Duration::from_secs(seconds.max(0) as u64)),
            attached: 1,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_written_close_together_share_a_lease() {
        let leases = LeaseManager::default();
        let t0 = Instant::now();
        assert_eq!(leases.choose(3600, t0), LeaseChoice::Grant(3660));
        leases.granted(7, 3660, t0);
        assert_eq!(
            leases.choose(3600, t0 + Duration::from_secs(30)),
            LeaseChoice::Reuse(7)
        );
        // Past the window the lease would expire before the new object's TTL.
        assert_eq!(
            leases.choose(3600, t0 + Duration::from_secs(61)),
            LeaseChoice::Grant(3660)
        );
    }

    #[test]
    fn a_lease_carries_a_bounded_number_of_objects() {
        let leases = LeaseManager::default();
        let t0 = Instant::now();
        leases.granted(1, 3660, t0);
        for _ in 1..MAX_OBJECTS_PER_LEASE {
            assert_eq!(leases.choose(3600, t0), LeaseChoice::Reuse(1));
        }
        assert_eq!(leases.choose(3600, t0), LeaseChoice::Grant(3660));
    }

    #[test]
    fn a_shorter_ttl_never_gets_a_lease_that_lives_too_long() {
        let leases = LeaseManager::default();
        let t0 = Instant::now();
        leases.granted(1, 3660, t0);
        assert_eq!(leases.choose(60, t0), LeaseChoice::Grant(63));
    }
}
