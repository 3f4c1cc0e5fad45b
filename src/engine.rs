//! The pipeline every event goes through: source → classify → row → store.
//!
//! Sources call [`Engine::ingest`] from their own threads; tables read the
//! store. Everything a source needs from the rest of the program goes through
//! here, so sources stay independent of osquery and of each other.

use crate::classify::classify;
use crate::event::{ExecEvent, SourceKind};
use crate::row::Row;
use crate::sources::snapshot::Snapshot;
use crate::status::{Counters, StatusBoard};
use crate::store::{Store, StoreConfig};
use crate::users::UserNames;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The snapshot runs at most this often on behalf of queries, so a join that
/// calls generate once per outer row does not rescan the process table each
/// time.
const MIN_QUERY_SNAPSHOT_GAP: Duration = Duration::from_secs(1);

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

struct SnapshotSlot {
    snapshot: Snapshot,
    last_scan: Option<Instant>,
}

pub struct Engine {
    store: Store,
    status: StatusBoard,
    users: Box<dyn UserNames>,
    observer: Mutex<Option<Sender<Arc<Row>>>>,
    snapshot: Mutex<Option<SnapshotSlot>>,
}

impl Engine {
    pub fn new(config: StoreConfig, users: Box<dyn UserNames>) -> Engine {
        Engine {
            store: Store::new(config),
            status: StatusBoard::default(),
            users,
            observer: Mutex::new(None),
            snapshot: Mutex::new(None),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn status(&self) -> &StatusBoard {
        &self.status
    }

    /// Every row added from now on is also sent to `tx` (the standalone
    /// printer).
    pub fn observe(&self, tx: Sender<Arc<Row>>) {
        *self.observer.lock().unwrap_or_else(|e| e.into_inner()) = Some(tx);
    }

    /// Classifies one event and stores it if it is Kerberos-related. Returns
    /// the new row, or `None` if the event was dropped as unrelated or was
    /// already stored.
    pub fn ingest(&self, event: &ExecEvent, counters: &Counters) -> Option<Arc<Row>> {
        counters.saw(event.time);
        if event.incomplete {
            counters.incomplete.fetch_add(1, Ordering::Relaxed);
        }
        let class = classify(&event.path, &event.argv)?;
        let username = event
            .uid
            .and_then(|uid| self.users.name_of(uid))
            .unwrap_or_default();
        let row = Row::from_event(event, &class, username);
        if event.source == SourceKind::Snapshot && self.store.has_exec_event_for(&row) {
            // An exec source already reported this process image; the
            // snapshot's row would be a second row for one execution.
            return None;
        }
        let row = self.store.insert(row, unix_now())?;
        counters.rows_added.fetch_add(1, Ordering::Relaxed);
        let observer = self.observer.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tx) = observer.as_ref() {
            // The printer going away is not our concern here.
            let _ = tx.send(Arc::clone(&row));
        }
        Some(row)
    }

    /// Hands the process snapshot to the engine, which runs it on demand.
    pub fn install_snapshot(&self, snapshot: Snapshot) {
        *self.snapshot.lock().unwrap_or_else(|e| e.into_inner()) = Some(SnapshotSlot {
            snapshot,
            last_scan: None,
        });
    }

    pub fn has_snapshot(&self) -> bool {
        self.snapshot
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// Runs the snapshot now (if installed). With `min_gap`, skips it when the
    /// last scan is more recent than that.
    pub fn scan_snapshot(&self, min_gap: Option<Duration>) {
        let mut slot = self.snapshot.lock().unwrap_or_else(|e| e.into_inner());
        let Some(slot) = slot.as_mut() else {
            return;
        };
        if let (Some(gap), Some(last)) = (min_gap, slot.last_scan) {
            if last.elapsed() < gap {
                return;
            }
        }
        slot.snapshot.scan(self);
        slot.last_scan = Some(Instant::now());
    }

    /// Called before a query reads the store: adds live matching processes
    /// and applies retention.
    pub fn refresh_for_query(&self) {
        self.scan_snapshot(Some(MIN_QUERY_SNAPSHOT_GAP));
        self.store.expire(unix_now());
    }

    pub fn counters(&self, source: SourceKind) -> Arc<Counters> {
        self.status.counters(source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::State;
    use crate::users::FixedUsers;

    fn kcc(source: SourceKind, time: i64) -> ExecEvent {
        ExecEvent {
            time,
            pid: 42,
            ppid: 1,
            path: b"/usr/bin/kcc".to_vec(),
            argv: vec![b"kcc".to_vec(), b"copy_cred_cache".to_vec()],
            source,
            ..ExecEvent::default()
        }
    }

    #[test]
    fn the_snapshot_does_not_repeat_an_exec_an_event_source_reported() {
        let engine = Engine::new(StoreConfig::default(), Box::new(FixedUsers::default()));
        let audit = engine
            .status()
            .set(SourceKind::LinuxAudit, State::Active, "t");
        let snap = engine
            .status()
            .set(SourceKind::Snapshot, State::Active, "t");
        assert!(engine
            .ingest(&kcc(SourceKind::LinuxAudit, 1000), &audit)
            .is_some());
        // The same process seen running, with its (earlier) fork time.
        assert!(engine
            .ingest(&kcc(SourceKind::Snapshot, 999), &snap)
            .is_none());
        // A different image of that pid is a new execution.
        let mut other = kcc(SourceKind::Snapshot, 999);
        other.argv.push(b"/tmp/x".to_vec());
        assert!(engine.ingest(&other, &snap).is_some());
        assert_eq!(engine.store().stats().rows, 2);
    }
}
