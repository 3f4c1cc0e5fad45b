//! The row store: every source's rows, in arrival order, bounded by a row
//! count and a retention age.
//!
//! Rows are kept behind `Arc` and never modified, so a generate call copies
//! pointers under the lock and formats outside it. Eviction takes the oldest
//! arrivals first and is counted per source, so the status table can say when
//! the store, not the sources, lost rows.

use crate::constraints::IntRange;
use crate::event::SourceKind;
use crate::row::Row;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreConfig {
    /// At most this many rows; the oldest arrivals are evicted first.
    pub max_rows: usize,
    /// Rows that arrived longer ago than this are evicted.
    pub retention: Duration,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            max_rows: 10_000,
            retention: Duration::from_secs(24 * 3600),
        }
    }
}

/// Which rows a query wants: a superset is always acceptable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RowFilter {
    pub time: IntRange,
    /// Only rows with one of these pids; `None` for any.
    pub pids: Option<Vec<i64>>,
}

impl RowFilter {
    pub fn accepts(&self, row: &Row) -> bool {
        self.time.contains(row.time) && self.pids.as_ref().is_none_or(|p| p.contains(&row.pid))
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    pub rows: usize,
    pub inserted: u64,
    pub duplicates: u64,
    pub evicted_capacity: u64,
    pub evicted_age: u64,
}

struct Entry {
    /// When the row arrived, unix seconds: retention counts from here, so a
    /// long-running process found by the snapshot is not evicted on arrival.
    arrived: i64,
    row: Arc<Row>,
}

#[derive(Default)]
struct Inner {
    entries: VecDeque<Entry>,
    eids: HashSet<String>,
    stats: StoreStats,
    evicted_by_source: HashMap<String, u64>,
}

pub struct Store {
    config: StoreConfig,
    inner: Mutex<Inner>,
}

impl Store {
    pub fn new(config: StoreConfig) -> Store {
        Store {
            config,
            inner: Mutex::new(Inner::default()),
        }
    }

    pub fn config(&self) -> StoreConfig {
        self.config
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves consistent data
        // (every mutation below is completed before it can panic), so keep
        // serving rather than poisoning the table forever.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a row unless one with the same eid is already stored. Returns the
    /// shared row when it was added.
    pub fn insert(&self, row: Row, now: i64) -> Option<Arc<Row>> {
        let mut inner = self.lock();
        if inner.eids.contains(&row.eid) {
            inner.stats.duplicates += 1;
            return None;
        }
        let row = Arc::new(row);
        inner.eids.insert(row.eid.clone());
        inner.entries.push_back(Entry {
            arrived: now,
            row: Arc::clone(&row),
        });
        inner.stats.inserted += 1;
        self.evict(&mut inner, now);
        Some(row)
    }

    fn evict(&self, inner: &mut Inner, now: i64) {
        let max_age = i64::try_from(self.config.retention.as_secs()).unwrap_or(i64::MAX);
        let oldest_allowed = now.saturating_sub(max_age);
        loop {
            let by_capacity = inner.entries.len() > self.config.max_rows;
            let by_age = inner
                .entries
                .front()
                .is_some_and(|e| e.arrived < oldest_allowed);
            if !by_capacity && !by_age {
                break;
            }
            let Some(entry) = inner.entries.pop_front() else {
                break;
            };
            inner.eids.remove(&entry.row.eid);
            if by_capacity {
                inner.stats.evicted_capacity += 1;
            } else {
                inner.stats.evicted_age += 1;
            }
            *inner
                .evicted_by_source
                .entry(entry.row.source.clone())
                .or_default() += 1;
        }
    }

    /// Applies retention without inserting (called before each query, so
    /// old rows go even when nothing new arrives).
    pub fn expire(&self, now: i64) {
        let mut inner = self.lock();
        self.evict(&mut inner, now);
    }

    /// The stored rows that `filter` accepts, oldest arrival first.
    pub fn select(&self, filter: &RowFilter) -> Vec<Arc<Row>> {
        let inner = self.lock();
        inner
            .entries
            .iter()
            .filter(|e| filter.accepts(&e.row))
            .map(|e| Arc::clone(&e.row))
            .collect()
    }

    /// Whether the store already holds this execution as seen by the other
    /// kind of source: the snapshot (a running process) or an exec-event
    /// source (the exec). Both must have the same pid, path and command line
    /// and the exec must not precede the process start. When the snapshot
    /// row came first (a slower source, e.g. a 5 s osquery_es poll, delivers
    /// its exec later), the exec must also not postdate the snapshot's
    /// arrival (+1 s for second granularity), so a reused pid running the
    /// same command later is not mistaken for it.
    pub fn has_same_execution(&self, row: &Row) -> bool {
        let new_is_snapshot = row.source == "snapshot";
        self.lock().entries.iter().any(|e| {
            let old = &e.row;
            if (old.source == "snapshot") == new_is_snapshot
                || old.pid != row.pid
                || old.path != row.path
                || old.cmdline != row.cmdline
            {
                return false;
            }
            if new_is_snapshot {
                old.time >= row.time
            } else {
                old.time <= row.time && row.time <= e.arrived.saturating_add(1)
            }
        })
    }

    pub fn contains(&self, eid: &str) -> bool {
        self.lock().eids.contains(eid)
    }

    pub fn stats(&self) -> StoreStats {
        let inner = self.lock();
        StoreStats {
            rows: inner.entries.len(),
            ..inner.stats
        }
    }

    pub fn evicted(&self, source: SourceKind) -> u64 {
        self.lock()
            .evicted_by_source
            .get(source.as_str())
            .copied()
            .unwrap_or(0)
    }
}

// The journal's view of the store (see `journal`): kept in its own block so
// changes to the store's internals leave it easy to adapt.
impl Store {
    /// Every stored row with its arrival time, oldest arrival first: what a
    /// compacted journal holds, in the order that replays to the same store.
    pub fn entries(&self) -> Vec<(i64, Arc<Row>)> {
        self.lock()
            .entries
            .iter()
            .map(|e| (e.arrived, Arc::clone(&e.row)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(eid: &str, time: i64, pid: i64) -> Row {
        Row {
            time,
            eid: eid.to_string(),
            pid,
            parent: 1,
            path: String::new(),
            name: String::new(),
            cmdline: String::new(),
            args: "[]".into(),
            cwd: String::new(),
            uid: None,
            euid: None,
            gid: None,
            egid: None,
            auid: None,
            username: String::new(),
            parent_path: String::new(),
            parent_cmdline: String::new(),
            tool: String::new(),
            action: String::new(),
            ccache: String::new(),
            indicator: String::new(),
            technique: String::new(),
            signing_id: String::new(),
            team_id: String::new(),
            platform_binary: None,
            sha256: String::new(),
            source: "snapshot".into(),
        }
    }

    fn store(max_rows: usize, retention_secs: u64) -> Store {
        Store::new(StoreConfig {
            max_rows,
            retention: Duration::from_secs(retention_secs),
        })
    }

    #[test]
    fn duplicates_are_not_stored_twice() {
        let s = store(10, 100);
        assert!(s.insert(row("a", 1, 1), 1000).is_some());
        assert!(s.insert(row("a", 1, 1), 1001).is_none());
        assert_eq!(s.stats().rows, 1);
        assert_eq!(s.stats().duplicates, 1);
    }

    #[test]
    fn capacity_evicts_oldest_arrivals_and_counts_them() {
        let s = store(3, 10_000);
        for i in 0..5 {
            s.insert(row(&format!("r{i}"), 100 - i, i), 1000);
        }
        let eids: Vec<String> = s
            .select(&RowFilter::default())
            .iter()
            .map(|r| r.eid.clone())
            .collect();
        assert_eq!(eids, ["r2", "r3", "r4"]);
        assert_eq!(s.stats().evicted_capacity, 2);
        assert_eq!(s.evicted(SourceKind::Snapshot), 2);
        // An evicted eid may come back (the store no longer knows it).
        assert!(!s.contains("r0"));
    }

    #[test]
    fn retention_counts_from_arrival() {
        let s = store(100, 60);
        s.insert(row("old", 5, 1), 1000);
        s.insert(row("new", 5, 2), 1050);
        s.expire(1061);
        let left = s.select(&RowFilter::default());
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].eid, "new");
        assert_eq!(s.stats().evicted_age, 1);
    }

    #[test]
    fn filter_by_time_and_pid() {
        let s = store(100, 1000);
        for i in 0..10 {
            s.insert(row(&format!("r{i}"), 100 + i, i % 3), 1000);
        }
        let f = RowFilter {
            time: IntRange {
                min: Some(104),
                max: Some(107),
            },
            pids: Some(vec![1]),
        };
        let got: Vec<i64> = s.select(&f).iter().map(|r| r.time).collect();
        assert_eq!(got, [104, 107]);
    }
}
