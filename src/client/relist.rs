//! Whole changes from a kube-rs watcher: a (re)list is delivered in one piece, once complete.
//!
//! A watcher (re)lists after it starts and after a 410 as `Init`, `InitApply`… , `InitDone`.
//! A component that acted on each `InitApply` would see half a world — a scheduler counting
//! half the bound Pods, a kubelet removing the containers of Pods it has not been told of yet.
//! [`Relist`] buffers the listed objects and hands them over as one [`Change::Listed`] when the
//! list is complete, which the consumer takes as the whole set (objects absent from it are
//! gone), as client-go's `Replace` on a `DeltaFIFO` does.

use kube::runtime::watcher::Event;

/// What a watcher event amounts to, once whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change<K> {
    /// A (re)list completed: these are all the objects there are, replacing what was known.
    Listed(Vec<K>),
    /// An object was added or modified.
    Applied(K),
    /// An object was deleted.
    Deleted(K),
}

/// The buffer of one watch's (re)list, and whether a first list has completed.
#[derive(Debug)]
pub struct Relist<K> {
    buffer: Option<Vec<K>>,
    synced: bool,
}

impl<K> Default for Relist<K> {
    fn default() -> Self {
        Relist {
            buffer: None,
            synced: false,
        }
    }
}

impl<K> Relist<K> {
    pub fn new() -> Self {
        Relist::default()
    }

    /// Whether a first list has completed (upstream's `HasSynced`); it stays true through
    /// later relists, whose objects were already known.
    pub fn synced(&self) -> bool {
        self.synced
    }

    /// Takes one watcher event; answers the change it completes, if any.
    pub fn step(&mut self, event: Event<K>) -> Option<Change<K>> {
        match event {
            // A new list starts over: what an interrupted one buffered is dropped.
            Event::Init => {
                self.buffer = Some(Vec::new());
                None
            }
            Event::InitApply(object) => {
                self.buffer.get_or_insert_with(Vec::new).push(object);
                None
            }
            Event::InitDone => {
                self.synced = true;
                Some(Change::Listed(self.buffer.take().unwrap_or_default()))
            }
            Event::Apply(object) => Some(Change::Applied(object)),
            Event::Delete(object) => Some(Change::Deleted(object)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(
        relist: &mut Relist<&'static str>,
        events: Vec<Event<&'static str>>,
    ) -> Vec<Change<&'static str>> {
        events.into_iter().filter_map(|e| relist.step(e)).collect()
    }

    #[test]
    fn a_list_is_delivered_whole_once_done_and_not_piecemeal() {
        let mut relist = Relist::new();
        let changes = steps(
            &mut relist,
            vec![Event::Init, Event::InitApply("a"), Event::InitApply("b")],
        );
        assert!(changes.is_empty(), "{changes:?}");
        assert_eq!(
            relist.step(Event::InitDone),
            Some(Change::Listed(vec!["a", "b"]))
        );
    }

    #[test]
    fn an_empty_list_is_delivered_too() {
        let mut relist: Relist<&str> = Relist::new();
        let changes = steps(&mut relist, vec![Event::Init, Event::InitDone]);
        assert_eq!(changes, [Change::Listed(vec![])]);
    }

    #[test]
    fn a_second_init_restarts_the_buffer() {
        let mut relist = Relist::new();
        let changes = steps(
            &mut relist,
            vec![
                Event::Init,
                Event::InitApply("a"),
                Event::Init,
                Event::InitApply("b"),
                Event::InitDone,
            ],
        );
        assert_eq!(changes, [Change::Listed(vec!["b"])]);
    }

    #[test]
    fn a_relist_replaces_what_the_previous_list_held() {
        let mut relist = Relist::new();
        let changes = steps(
            &mut relist,
            vec![
                Event::Init,
                Event::InitApply("a"),
                Event::InitDone,
                Event::Apply("c"),
                Event::Init,
                Event::InitApply("b"),
                Event::InitDone,
            ],
        );
        assert_eq!(
            changes,
            [
                Change::Listed(vec!["a"]),
                Change::Applied("c"),
                Change::Listed(vec!["b"]),
            ]
        );
    }

    #[test]
    fn synced_only_after_the_first_list_completes_and_through_relists() {
        let mut relist = Relist::new();
        assert!(!relist.synced());
        relist.step(Event::Init);
        relist.step(Event::InitApply("a"));
        assert!(!relist.synced());
        relist.step(Event::InitDone);
        assert!(relist.synced());
        relist.step(Event::Init);
        relist.step(Event::InitApply("a"));
        assert!(relist.synced());
    }

    #[test]
    fn watch_events_pass_through_as_they_come() {
        let mut relist = Relist::new();
        let changes = steps(&mut relist, vec![Event::Apply("a"), Event::Delete("a")]);
        assert_eq!(changes, [Change::Applied("a"), Change::Deleted("a")]);
    }
}
