//! A pod worker's mailbox: the newest Pod, a "gone" mark and wake-ups, never a queue.
//!
//! Upstream's pod workers keep only the last undelivered update per Pod; so does this: the
//! kubelet's main loop overwrites the slot (it never waits, however slow the worker), and the
//! worker, when it next looks, sees the newest Pod the watch delivered and nothing older.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use tokio::sync::watch;

/// What the main loop has told a worker so far (only the newest of it).
#[derive(Debug, Clone)]
pub struct Inbox {
    /// The Pod as the watch last saw it.
    pub pod: Arc<Pod>,
    /// Counts the updates of `pod`, so a wake-up without a new Pod is told apart.
    pub version: u64,
    /// The Pod is gone from the API (force-deleted): stop and clean up.
    pub gone: bool,
}

/// The main loop's side of a mailbox.
#[derive(Debug, Clone)]
pub struct Mailbox {
    tx: watch::Sender<Inbox>,
}

/// A new mailbox holding `pod`, and the worker's side of it.
pub fn mailbox(pod: Pod) -> (Mailbox, watch::Receiver<Inbox>) {
    let (tx, rx) = watch::channel(Inbox {
        pod: Arc::new(pod),
        version: 0,
        gone: false,
    });
    (Mailbox { tx }, rx)
}

impl Mailbox {
    /// Replaces the Pod the worker will see next; an undelivered older one is dropped.
    pub fn update(&self, pod: Pod) {
        self.tx.send_modify(|inbox| {
            inbox.pod = Arc::new(pod);
            inbox.version += 1;
        });
    }

    /// Marks the Pod as gone from the API.
    pub fn gone(&self) {
        self.tx.send_modify(|inbox| inbox.gone = true);
    }

    /// Wakes the worker (an engine event concerned its Pod).
    pub fn poke(&self) {
        self.tx.send_modify(|_| {});
    }

    /// True once the worker has finished.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(version: &str) -> Pod {
        let mut pod = Pod::default();
        pod.metadata.resource_version = Some(version.into());
        pod
    }

    #[test]
    fn the_newest_update_wins_and_none_is_queued() {
        let (mailbox, mut rx) = mailbox(pod("0"));
        for i in 1..=1000 {
            mailbox.update(pod(&i.to_string()));
        }
        mailbox.poke();
        assert!(rx.has_changed().unwrap_or(false));
        let inbox = rx.borrow_and_update().clone();
        assert_eq!(inbox.version, 1000);
        assert_eq!(inbox.pod.metadata.resource_version.as_deref(), Some("1000"));
        assert!(!inbox.gone);
        mailbox.gone();
        assert!(rx.borrow_and_update().gone);
        drop(rx);
        assert!(mailbox.is_closed());
    }
}
