//! The row store: every source's rows, in arrival order, bounded by a row
//! count, a byte budget and a retention age.
//!
//! Rows are kept behind `Arc` and never modified, so a generate call copies
//! pointers under the lock and formats outside it.
//!
//! Detections are protected from floods: rows with an indicator and benign
//! rows (a `klist`, a `kinit`) are kept in two queues, and when the store is
//! over its row or byte budget the oldest *benign* row goes first. An
//! unprivileged user running 10,000 copies of `/bin/true` named `klist`
//! therefore cannot push a `kcc copy_cred_cache` row out before osqueryd
//! reads it; only detections crowd out detections, and that is counted
//! separately (`evicted_detections`) so the health query shows it.

use crate::constraints::IntRange;
use crate::event::SourceKind;
use crate::row::Row;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// The store's budgets (`--max-rows`, `--max-bytes`, `--retention`); the
/// defaults are 10,000 rows, 32 MiB and 24 hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreConfig {
    /// At most this many rows; benign rows are evicted first, oldest first.
    pub max_rows: usize,
    /// At most this many bytes of rows (see `Row::footprint`).
    pub max_bytes: usize,
    /// Rows that arrived longer ago than this are evicted.
    pub retention: Duration,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            max_rows: 10_000,
            max_bytes: 32 << 20,
            retention: Duration::from_secs(24 * 3600),
        }
    }
}

/// Which rows a query wants: a superset is always acceptable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RowFilter {
    /// Only rows whose `time` (unix seconds) lies in this range.
    pub time: IntRange,
    /// Only rows with one of these pids; `None` for any.
    pub pids: Option<Vec<i64>>,
}

impl RowFilter {
    pub(crate) fn accepts(&self, row: &Row) -> bool {
        self.time.contains(row.time) && self.pids.as_ref().is_none_or(|p| p.contains(&row.pid))
    }
}

/// Totals over the whole store, for the status table's `store` row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Rows held now.
    pub rows: usize,
    /// Rows with an indicator held now.
    pub(crate) detections: usize,
    /// Bytes held now (the sum of `Row::footprint`).
    pub bytes: usize,
    pub(crate) inserted: u64,
    pub(crate) duplicates: u64,
    /// Rows evicted because the store was over its row or byte budget.
    pub(crate) evicted_capacity: u64,
    /// Rows evicted because they were older than the retention.
    pub(crate) evicted_age: u64,
    /// Rows with an indicator evicted for capacity before their retention
    /// ran out (only other detections can cause this).
    pub evicted_detections: u64,
}

/// Evictions of one source's rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Evicted {
    /// Rows evicted for any cause (capacity or retention).
    pub rows: u64,
    pub(crate) detections: u64,
}

struct Entry {
    /// Arrival order across both queues, so reads merge them back.
    seq: u64,
    /// When the row arrived, unix seconds: retention counts from here, so a
    /// long-running process found by the snapshot is not evicted on arrival.
    arrived: i64,
    bytes: usize,
    row: Arc<Row>,
}

#[derive(Default)]
struct Inner {
    detections: VecDeque<Entry>,
    benign: VecDeque<Entry>,
    next_seq: u64,
    bytes: usize,
    eids: HashSet<String>,
    stats: StoreStats,
    evicted_by_source: HashMap<SourceKind, Evicted>,
}

impl Inner {
    fn len(&self) -> usize {
        self.detections.len() + self.benign.len()
    }

    /// Both queues, merged back into arrival order.
    fn in_order(&self) -> impl Iterator<Item = &Entry> {
        let mut d = self.detections.iter().peekable();
        let mut b = self.benign.iter().peekable();
        std::iter::from_fn(move || match (d.peek(), b.peek()) {
            (Some(x), Some(y)) if x.seq < y.seq => d.next(),
            (Some(_), Some(_)) => b.next(),
            (Some(_), None) => d.next(),
            (None, _) => b.next(),
        })
    }

    fn remove(&mut self, entry: &Entry) {
        self.eids.remove(&entry.row.eid);
        self.bytes = self.bytes.saturating_sub(entry.bytes);
    }
}

/// The rows every table query reads, shared by all sources; rows with an
/// indicator are evicted only after every benign row (see the module docs).
pub struct Store {
    config: StoreConfig,
    inner: Mutex<Inner>,
}

impl Store {
    /// An empty store with these budgets.
    pub fn new(config: StoreConfig) -> Store {
        Store {
            config,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// The budgets the store was made with.
    pub fn config(&self) -> StoreConfig {
        self.config
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves consistent data
        // (every mutation below is completed before it can panic), so keep
        // serving rather than poisoning the table forever.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a row unless one with the same eid is already stored. `now` is
    /// its arrival time. Returns the shared row when it was added (it may be
    /// evicted again at once if it alone is over the budget).
    pub fn insert(&self, row: Row, now: i64) -> Option<Arc<Row>> {
        let mut inner = self.lock();
        if inner.eids.contains(&row.eid) {
            inner.stats.duplicates += 1;
            return None;
        }
        let bytes = row.footprint();
        let row = Arc::new(row);
        inner.eids.insert(row.eid.clone());
        let entry = Entry {
            seq: inner.next_seq,
            arrived: now,
            bytes,
            row: Arc::clone(&row),
        };
        inner.next_seq += 1;
        inner.bytes = inner.bytes.saturating_add(bytes);
        if row.indicator.is_empty() {
            inner.benign.push_back(entry);
        } else {
            inner.detections.push_back(entry);
        }
        inner.stats.inserted += 1;
        self.evict(&mut inner, now);
        Some(row)
    }

    fn evict(&self, inner: &mut Inner, now: i64) {
        let max_age = i64::try_from(self.config.retention.as_secs()).unwrap_or(i64::MAX);
        let oldest_allowed = now.saturating_sub(max_age);
        let old = |q: &VecDeque<Entry>| q.front().is_some_and(|e| e.arrived < oldest_allowed);
        // Age first: it costs no detection anything.
        loop {
            let entry = if old(&inner.benign) {
                inner.benign.pop_front()
            } else if old(&inner.detections) {
                inner.detections.pop_front()
            } else {
                break;
            };
            let Some(entry) = entry else { break };
            inner.remove(&entry);
            inner.stats.evicted_age += 1;
            inner
                .evicted_by_source
                .entry(entry.row.source)
                .or_default()
                .rows += 1;
        }
        // Then capacity: benign rows first, detections only when no benign
        // row is left.
        while inner.len() > self.config.max_rows || inner.bytes > self.config.max_bytes {
            let (entry, detection) = match inner.benign.pop_front() {
                Some(e) => (e, false),
                None => match inner.detections.pop_front() {
                    Some(e) => (e, true),
                    None => break,
                },
            };
            inner.remove(&entry);
            inner.stats.evicted_capacity += 1;
            let per_source = inner.evicted_by_source.entry(entry.row.source).or_default();
            per_source.rows += 1;
            if detection {
                per_source.detections += 1;
                inner.stats.evicted_detections += 1;
                // First and then every power of two: a flood of detections
                // must not become a flood of log lines.
                let n = inner.stats.evicted_detections;
                if n.is_power_of_two() {
                    log::warn!(
                        "store: evicted detection {} ({}) before its retention ran out; {n} so \
                         far: more detections than --max-rows/--max-bytes allow",
                        entry.row.eid,
                        entry.row.indicator
                    );
                }
            }
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
            .in_order()
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
    pub(crate) fn has_same_execution(&self, row: &Row) -> bool {
        let new_is_snapshot = row.source == SourceKind::Snapshot;
        let inner = self.lock();
        // Order does not matter here: scan both queues as they lie.
        let found = inner.detections.iter().chain(inner.benign.iter()).any(|e| {
            let old = &e.row;
            if (old.source == SourceKind::Snapshot) == new_is_snapshot
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
        });
        found
    }

    /// Whether any stored detection (a row with an indicator) satisfies `f`.
    /// Benign rows are not looked at.
    pub(crate) fn any_detection(&self, f: impl FnMut(&Row) -> bool) -> bool {
        let mut f = f;
        let inner = self.lock();
        let found = inner.detections.iter().any(|e| f(&e.row));
        found
    }

    /// Whether a row with this `eid` is held now.
    pub fn contains(&self, eid: &str) -> bool {
        self.lock().eids.contains(eid)
    }

    /// Current totals: rows and bytes held now, and the counters since the
    /// store was made.
    pub fn stats(&self) -> StoreStats {
        let inner = self.lock();
        StoreStats {
            rows: inner.len(),
            detections: inner.detections.len(),
            bytes: inner.bytes,
            ..inner.stats
        }
    }

    /// How many of `source`'s rows were evicted (all causes), and how many of
    /// those were detections evicted for capacity.
    pub fn evicted(&self, source: SourceKind) -> Evicted {
        self.lock()
            .evicted_by_source
            .get(&source)
            .copied()
            .unwrap_or_default()
    }

    /// Rows and bytes held per source.
    pub(crate) fn held_by_source(&self) -> HashMap<SourceKind, (u64, u64)> {
        let inner = self.lock();
        let mut out: HashMap<SourceKind, (u64, u64)> = HashMap::new();
        for e in inner.detections.iter().chain(inner.benign.iter()) {
            let slot = out.entry(e.row.source).or_default();
            slot.0 += 1;
            slot.1 += e.bytes as u64;
        }
        out
    }
}

// The journal's view of the store (see `journal`): kept in its own block so
// changes to the store's internals leave it easy to adapt.
impl Store {
    /// Every stored row with its arrival time, oldest arrival first: what a
    /// compacted journal holds, in the order that replays to the same store.
    pub fn entries(&self) -> Vec<(i64, Arc<Row>)> {
        self.lock()
            .in_order()
            .map(|e| (e.arrived, Arc::clone(&e.row)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::Classification;
    use crate::event::ExecEvent;

    /// A benign row: what a snapshot stores for an exec without argv.
    fn row(eid: &str, time: i64, pid: i64) -> Row {
        let event = ExecEvent {
            time,
            pid,
            ppid: 1,
            ..ExecEvent::default()
        };
        Row {
            eid: eid.to_string(),
            ..Row::from_event(&event, &Classification::default(), String::new())
        }
    }

    fn store(max_rows: usize, retention_secs: u64) -> Store {
        Store::new(StoreConfig {
            max_rows,
            max_bytes: usize::MAX,
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
        assert_eq!(s.evicted(SourceKind::Snapshot).rows, 2);
        // An evicted eid may come back (the store no longer knows it).
        assert!(!s.contains("r0"));
    }

    fn detection(eid: &str, pid: i64) -> Row {
        Row {
            indicator: "credential_cache_copy".into(),
            source: SourceKind::LinuxAudit,
            ..row(eid, 1, pid)
        }
    }

    #[test]
    fn a_benign_flood_does_not_evict_a_detection() {
        let s = store(100, 10_000);
        s.insert(row("early", 1, 1), 1000);
        s.insert(detection("kcc", 2), 1000);
        for i in 0..10_400 {
            s.insert(row(&format!("klist-{i}"), 1, 3), 1000);
        }
        assert!(s.contains("kcc"), "the detection must survive the flood");
        assert!(!s.contains("early"));
        let st = s.stats();
        assert_eq!((st.rows, st.detections), (100, 1));
        assert_eq!(st.evicted_detections, 0);
        assert_eq!(st.evicted_capacity, 10_402 - 100);
        // Reads still come out in arrival order across both queues.
        let eids: Vec<String> = s
            .select(&RowFilter::default())
            .iter()
            .map(|r| r.eid.clone())
            .collect();
        assert_eq!(eids[0], "kcc");
        assert_eq!(eids[1], "klist-10301");
        assert_eq!(eids.last().map(String::as_str), Some("klist-10399"));
    }

    #[test]
    fn detections_crowding_out_detections_are_counted() {
        let s = store(3, 10_000);
        for i in 0..5 {
            s.insert(detection(&format!("d{i}"), i), 1000);
        }
        assert_eq!(s.stats().evicted_detections, 2);
        assert_eq!(s.evicted(SourceKind::LinuxAudit).detections, 2);
        assert!(!s.contains("d0") && s.contains("d4"));
        // Retention is not a capacity eviction of a detection.
        let s = store(3, 60);
        s.insert(detection("old", 1), 1000);
        s.expire(2000);
        assert_eq!(s.stats().evicted_detections, 0);
        assert_eq!(s.stats().evicted_age, 1);
    }

    #[test]
    fn the_byte_budget_bounds_the_store() {
        let one = row("x", 1, 1).footprint();
        let s = Store::new(StoreConfig {
            max_rows: 1_000_000,
            max_bytes: one * 10 + one / 2,
            retention: Duration::from_secs(10_000),
        });
        for i in 0..100 {
            s.insert(row(&format!("r{i:02}"), 1, i), 1000);
        }
        let st = s.stats();
        assert!(st.bytes <= one * 10 + one / 2, "{} bytes", st.bytes);
        assert!(st.rows >= 9 && st.rows <= 10, "{} rows", st.rows);
        assert!(s.contains("r99"));
        // Evicting everything brings the byte count back to zero.
        s.expire(1_000_000);
        assert_eq!((s.stats().rows, s.stats().bytes), (0, 0));
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
