//! Per-source health: state, a reason a person can read, and counters. It is
//! what `kerberos_cache_access_status` shows, so Fleet can see where the
//! detection is blind.

use crate::event::SourceKind;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A source's (or the store's) health, the status table's `state` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Delivering events.
    Active,
    /// Cannot run on this host or with these privileges (not an error of ours).
    Unavailable,
    /// Was supposed to run and broke.
    Failed,
}

impl State {
    /// The `state` column value: `active`, `unavailable` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Active => "active",
            State::Unavailable => "unavailable",
            State::Failed => "failed",
        }
    }
}

/// Counters a source updates on its hot path without taking a lock.
#[derive(Debug, Default)]
pub struct Counters {
    /// Exec events the source delivered (or, for the snapshot, new process
    /// images it examined).
    pub events_seen: AtomicU64,
    /// Rows this source added to the store.
    pub rows_added: AtomicU64,
    /// Events the source knows it lost (kernel buffer overruns, unreadable
    /// records) or could not turn into rows.
    pub dropped: AtomicU64,
    /// Events emitted from partial input (some records lost or late).
    pub incomplete: AtomicU64,
    /// Exec time of the latest event, unix seconds; 0 when none yet.
    pub last_event_time: AtomicI64,
}

impl Counters {
    pub(crate) fn saw(&self, time: i64) {
        self.events_seen.fetch_add(1, Ordering::Relaxed);
        self.last_event_time.fetch_max(time, Ordering::Relaxed);
    }

    /// Counts `n` events lost (see [`Counters::dropped`]).
    pub fn drop_events(&self, n: u64) {
        self.dropped.fetch_add(n, Ordering::Relaxed);
    }
}

#[derive(Debug)]
struct Entry {
    state: State,
    reason: String,
    counters: Arc<Counters>,
}

/// A snapshot of one source's status (one row of the status table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceStatus {
    /// Which source.
    pub source: SourceKind,
    /// Its state as last set.
    pub state: State,
    /// Why, in words: what the source sees, or why it cannot run.
    pub reason: String,
    /// See [`Counters::events_seen`].
    pub events_seen: u64,
    /// See [`Counters::rows_added`].
    pub rows_added: u64,
    /// See [`Counters::dropped`].
    pub dropped: u64,
    /// See [`Counters::incomplete`].
    pub incomplete: u64,
    /// Exec time of the latest event, unix seconds; `None` when none yet.
    pub last_event_time: Option<i64>,
}

/// The health of every source and of the store, shared by the sources (which
/// set it) and the status table (which reads it).
#[derive(Debug, Default)]
pub struct StatusBoard {
    sources: Mutex<BTreeMap<SourceKind, Entry>>,
    /// The store's own health (journal or memory), for the `store` row.
    store: Mutex<Option<(State, String)>>,
}

impl StatusBoard {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<SourceKind, Entry>> {
        self.sources.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets a source's state and reason, creating its entry if needed, and
    /// returns its counters.
    pub fn set(
        &self,
        source: SourceKind,
        state: State,
        reason: impl Into<String>,
    ) -> Arc<Counters> {
        let reason = reason.into();
        let mut map = self.lock();
        let mut fresh = false;
        let entry = map.entry(source).or_insert_with(|| {
            fresh = true;
            Entry {
                state,
                reason: String::new(),
                counters: Arc::default(),
            }
        });
        // A state change is news; a reason that only updates counts is not.
        if fresh || entry.state != state {
            match state {
                State::Active => log::info!("source {source}: {reason}"),
                State::Unavailable | State::Failed => {
                    log::warn!("source {source} {}: {reason}", state.as_str());
                }
            }
        } else if entry.reason != reason {
            log::debug!("source {source}: {reason}");
        }
        entry.state = state;
        entry.reason = reason;
        Arc::clone(&entry.counters)
    }

    /// Records the store's state (journaled, in memory, and why), shown as
    /// the status table's `store` row.
    pub(crate) fn set_store(&self, state: State, reason: impl Into<String>) {
        let reason = reason.into();
        let mut slot = self.store.lock().unwrap_or_else(|e| e.into_inner());
        if slot.as_ref().is_none_or(|(s, _)| *s != state) {
            match state {
                State::Active => log::info!("store: {reason}"),
                State::Unavailable | State::Failed => {
                    log::warn!("store {}: {reason}", state.as_str());
                }
            }
        }
        *slot = Some((state, reason));
    }

    /// The store's state as last set; `None` before anyone set it.
    pub fn store(&self) -> Option<(State, String)> {
        self.store.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The source's counters, without touching its state; a source not seen
    /// before is entered as `unavailable`, "not started".
    pub fn counters(&self, source: SourceKind) -> Arc<Counters> {
        let mut map = self.lock();
        let entry = map.entry(source).or_insert_with(|| Entry {
            state: State::Unavailable,
            reason: "not started".into(),
            counters: Arc::default(),
        });
        Arc::clone(&entry.counters)
    }

    /// One source's current status; `None` if it was never set or counted.
    pub fn get(&self, source: SourceKind) -> Option<SourceStatus> {
        self.snapshot().into_iter().find(|s| s.source == source)
    }

    /// Every known source's current status, ordered as [`SourceKind`]
    /// declares them.
    pub fn snapshot(&self) -> Vec<SourceStatus> {
        self.lock()
            .iter()
            .map(|(source, e)| {
                let last = e.counters.last_event_time.load(Ordering::Relaxed);
                SourceStatus {
                    source: *source,
                    state: e.state,
                    reason: e.reason.clone(),
                    events_seen: e.counters.events_seen.load(Ordering::Relaxed),
                    rows_added: e.counters.rows_added.load(Ordering::Relaxed),
                    dropped: e.counters.dropped.load(Ordering::Relaxed),
                    incomplete: e.counters.incomplete.load(Ordering::Relaxed),
                    last_event_time: (last != 0).then_some(last),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_and_counters_are_reported() {
        let board = StatusBoard::default();
        let c = board.set(SourceKind::Snapshot, State::Active, "scanning");
        c.saw(100);
        c.saw(90);
        c.drop_events(2);
        board.set(SourceKind::LinuxAudit, State::Unavailable, "not root");
        let rows = board.snapshot();
        assert_eq!(rows.len(), 2);
        let snap = board.get(SourceKind::Snapshot).unwrap();
        assert_eq!(snap.events_seen, 2);
        assert_eq!(snap.dropped, 2);
        assert_eq!(snap.last_event_time, Some(100));
        let audit = board.get(SourceKind::LinuxAudit).unwrap();
        assert_eq!(audit.state, State::Unavailable);
        assert_eq!(audit.reason, "not root");
        assert_eq!(audit.last_event_time, None);
    }
}
