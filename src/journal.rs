//! The row journal, so rows outlive the process.
//!
//! osqueryd reads the table every few minutes; without a journal a kill -9,
//! a crash or a routine respawn loses every row it has not read yet. Each
//! row is appended to a file in the state directory *before* it becomes
//! visible, and read back into the store at start with the same eid and
//! values, so osquery's differential logging does not report it again.
//!
//! Durability: a record is one write(2) made before the row is visible, so a
//! row that anyone could have read survives a kill -9. The file is fsynced
//! every [`SYNC_INTERVAL`] when it changed (never per row), so a power loss
//! loses at most the rows of the last interval plus one fsync.
//!
//! Format (little-endian), a checksummed append-only log:
//! - header, 16 bytes: `KCAJRNL\0`, format version (u32), CRC32 of those 12;
//! - records: payload length (u32), CRC32 of those 4 bytes, CRC32 of the
//!   payload, then the payload: arrival time (i64 unix seconds) and the row
//!   as JSON (field names, not order, so rows gain columns compatibly).
//!
//! The length has its own checksum so a damaged length is told apart from a
//! record cut short by a crash (a torn tail, skipped and counted). A file
//! that fails otherwise is moved aside, never stops the start.
//!
//! Its size follows the store's limits: replay goes through the store's own
//! eviction, so evicted rows never return, and when the file holds much
//! more than the store (twice its rows, or twice its size at the last
//! rewrite) the live rows are rewritten to a new file, renamed over it.

use crate::event::unix_now;
use crate::row::Row;
use crate::state::{lock_holder, StateDir};
use crate::status::State;
use crate::store::Store;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The journal's file name in the state directory.
pub(crate) const JOURNAL_FILE: &str = "rows.journal";
/// Held (flock) by the one instance that writes the journal.
pub(crate) const LOCK_FILE: &str = "rows.journal.lock";
/// A compaction writes here, then renames over [`JOURNAL_FILE`].
const TMP_FILE: &str = ".rows.journal.tmp";
/// A damaged journal is renamed to `rows.journal.corrupt-<unix time>`.
const CORRUPT_PREFIX: &str = "rows.journal.corrupt-";
/// Damaged journals kept for a person to look at; older ones are deleted.
const KEEP_CORRUPT: usize = 3;

const MAGIC: &[u8; 8] = b"KCAJRNL\0";
const VERSION: u32 = 1;
/// Length of the file header: magic (8 bytes), version (u32), CRC32 of
/// those 12 (u32). A file shorter than this holds no records.
pub const HEADER_LEN: usize = 16;
const RECORD_HEADER_LEN: usize = 12;
/// Larger payloads are refused when written and taken as damage when read,
/// so a reader never sizes a buffer from a wild length.
pub(crate) const MAX_PAYLOAD: usize = 64 << 20;

/// How often dirty data is fsynced: the power-loss window is this plus one
/// fsync.
pub const SYNC_INTERVAL: Duration = Duration::from_millis(500);
/// How often a second instance tries to take the journal over.
const RETRY_LOCKED: Duration = Duration::from_secs(1);
/// How often an unusable state directory is tried again.
const RETRY_FAILED: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------
// Format

/// The file header.
pub fn header() -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    let crc = crc32fast::hash(&h[..12]);
    h[12..].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Appends one record to `buf`.
pub(crate) fn encode_record_into(buf: &mut Vec<u8>, arrived: i64, row: &Row) -> io::Result<()> {
    let start = buf.len();
    buf.extend_from_slice(&[0; RECORD_HEADER_LEN]);
    buf.extend_from_slice(&arrived.to_le_bytes());
    if let Err(e) = serde_json::to_writer(&mut *buf, row) {
        buf.truncate(start);
        return Err(e.into());
    }
    let payload_len = buf.len() - start - RECORD_HEADER_LEN;
    let len = match u32::try_from(payload_len) {
        Ok(len) if payload_len <= MAX_PAYLOAD => len,
        _ => {
            buf.truncate(start);
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a row of {payload_len} bytes is over the journal's record limit"),
            ));
        }
    };
    let len_bytes = len.to_le_bytes();
    let payload_crc = crc32fast::hash(&buf[start + RECORD_HEADER_LEN..]);
    let h = &mut buf[start..start + RECORD_HEADER_LEN];
    h[..4].copy_from_slice(&len_bytes);
    h[4..8].copy_from_slice(&crc32fast::hash(&len_bytes).to_le_bytes());
    h[8..].copy_from_slice(&payload_crc.to_le_bytes());
    Ok(())
}

/// One record.
pub fn encode_record(arrived: i64, row: &Row) -> io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(RECORD_HEADER_LEN + 8 + 1024);
    encode_record_into(&mut buf, arrived, row)?;
    Ok(buf)
}

/// A record around any payload (arrival time then row JSON, for a valid
/// one): for tests and the fuzzer, which would rarely guess the checksums.
pub fn frame_payload(payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len())
        .unwrap_or(u32::MAX)
        .to_le_bytes();
    let mut out = Vec::with_capacity(RECORD_HEADER_LEN + payload.len());
    out.extend_from_slice(&len);
    out.extend_from_slice(&crc32fast::hash(&len).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// A row read back, with its arrival time (unix seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// When the row first arrived in the store, unix seconds; retention
    /// counts from here after a restart too.
    pub arrived: i64,
    /// The row as it was stored, same eid and values.
    pub row: Row,
}

/// What reading a journal found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadReport {
    /// Records read whole and decoded.
    pub records: u64,
    /// Where the last whole record ends (0: no valid header); appending may
    /// continue there after a torn tail.
    pub good_len: u64,
    /// Bytes of a last record cut short (a crash while it was written, or
    /// zeros left by a power loss), skipped.
    pub torn_bytes: u64,
    /// Records whose payload failed its checksum, skipped.
    pub corrupt: u64,
    /// Records that passed their checksum but hold no row this build reads.
    pub(crate) undecodable: u64,
    /// Bytes after a record length that failed its checksum: its length, so
    /// everything after it, cannot be trusted.
    pub(crate) lost_bytes: u64,
    /// Why the file is not a journal we can read (header, version, I/O).
    pub(crate) unusable: Option<String>,
}

impl ReadReport {
    /// Whether the file lost more than a torn tail. Such a file is moved
    /// aside for a person to look at and a clean journal is written.
    pub fn damaged(&self) -> bool {
        self.corrupt > 0 || self.undecodable > 0 || self.lost_bytes > 0 || self.unusable.is_some()
    }

    /// The problems, in words; empty when there were none.
    pub(crate) fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(why) = &self.unusable {
            out.push(why.clone());
        }
        if self.torn_bytes > 0 {
            out.push(format!(
                "a torn last record ({} bytes, cut short by a crash) skipped",
                self.torn_bytes
            ));
        }
        if self.corrupt > 0 {
            out.push(format!("{} record(s) failed their checksum", self.corrupt));
        }
        if self.undecodable > 0 {
            out.push(format!(
                "{} record(s) held no readable row",
                self.undecodable
            ));
        }
        if self.lost_bytes > 0 {
            out.push(format!(
                "{} bytes unreadable after a damaged record length",
                self.lost_bytes
            ));
        }
        out
    }
}

/// Reads records from a journal of `len` bytes. Never panics and never
/// allocates more than the input holds, whatever the bytes.
pub(crate) struct Decoder<R> {
    input: R,
    len: u64,
    offset: u64,
    started: bool,
    done: bool,
    buf: Vec<u8>,
    report: ReadReport,
}

impl<R: Read> Decoder<R> {
    pub(crate) fn new(input: R, len: u64) -> Decoder<R> {
        Decoder {
            input,
            len,
            offset: 0,
            started: false,
            done: false,
            buf: Vec::new(),
            report: ReadReport::default(),
        }
    }

    pub(crate) fn into_report(self) -> ReadReport {
        self.report
    }

    /// Reads exactly `n` bytes into `buf`: `Some(true)` when whole,
    /// `Some(false)` at an early end of input, `None` on an I/O error (then
    /// recorded and reading stops).
    fn fill(&mut self, n: usize) -> Option<bool> {
        self.buf.clear();
        self.buf.resize(n, 0);
        let mut got = 0;
        while got < n {
            match self.input.read(&mut self.buf[got..]) {
                Ok(0) => return Some(false),
                Ok(k) => got += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.report.unusable = Some(format!("read error at byte {}: {e}", self.offset));
                    self.done = true;
                    return None;
                }
            }
        }
        Some(true)
    }

    fn unusable(&mut self, why: String) {
        self.report.unusable = Some(why);
        self.done = true;
    }

    fn read_header(&mut self) {
        if self.len == 0 {
            // An empty file: nothing to restore, nothing damaged.
            self.done = true;
            return;
        }
        match self.fill(HEADER_LEN) {
            Some(true) => {}
            Some(false) => {
                return self.unusable(format!("{} bytes, shorter than a journal header", self.len))
            }
            None => return,
        }
        if &self.buf[..8] != MAGIC {
            return self.unusable("not a kerberos_cache_access journal (unknown header)".into());
        }
        let crc = u32::from_le_bytes([self.buf[12], self.buf[13], self.buf[14], self.buf[15]]);
        if crc32fast::hash(&self.buf[..12]) != crc {
            return self.unusable("the journal header failed its checksum".into());
        }
        let version = u32::from_le_bytes([self.buf[8], self.buf[9], self.buf[10], self.buf[11]]);
        if version != VERSION {
            return self.unusable(format!(
                "journal format version {version}; this build reads version {VERSION}"
            ));
        }
        self.offset = HEADER_LEN as u64;
        self.report.good_len = self.offset;
    }

    /// The end of the input, from `self.offset` (whose `already` bytes are
    /// in `buf`), is a torn tail if it is a short record or all zeros (what
    /// a power loss leaves where the last writes were); otherwise it is
    /// damage we cannot read past.
    fn rest_is_torn(&mut self, already: usize) -> bool {
        if self.buf[..already].iter().any(|&b| b != 0) {
            return false;
        }
        let mut chunk = [0u8; 8192];
        loop {
            match self.input.read(&mut chunk) {
                Ok(0) => return true,
                Ok(k) => {
                    if chunk[..k].iter().any(|&b| b != 0) {
                        return false;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
    }

    /// Reads `n` bytes into `buf`; false (reading has ended) when the file
    /// ended first (it shrank while we read: a torn tail of `remaining`
    /// bytes) or could not be read.
    fn fill_or_stop(&mut self, n: usize, remaining: u64) -> bool {
        match self.fill(n) {
            Some(true) => true,
            Some(false) => {
                self.stop_torn(remaining);
                false
            }
            None => false,
        }
    }

    /// Ends reading at a torn tail of `bytes`.
    fn stop_torn(&mut self, bytes: u64) {
        self.report.torn_bytes += bytes;
        self.done = true;
    }

    /// The next record that reads whole; `None` at the end (see `report`).
    pub(crate) fn next_record(&mut self) -> Option<Record> {
        if !self.started {
            self.started = true;
            self.read_header();
        }
        while !self.done {
            let remaining = self.len.saturating_sub(self.offset);
            if remaining == 0 {
                self.done = true;
                break;
            }
            if remaining < RECORD_HEADER_LEN as u64 {
                self.stop_torn(remaining);
                break;
            }
            if !self.fill_or_stop(RECORD_HEADER_LEN, remaining) {
                break;
            }
            let len_bytes = [self.buf[0], self.buf[1], self.buf[2], self.buf[3]];
            let len_crc = u32::from_le_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]]);
            let payload_crc =
                u32::from_le_bytes([self.buf[8], self.buf[9], self.buf[10], self.buf[11]]);
            let len = u32::from_le_bytes(len_bytes) as usize;
            if crc32fast::hash(&len_bytes) != len_crc || !(8..=MAX_PAYLOAD).contains(&len) {
                if self.rest_is_torn(RECORD_HEADER_LEN) {
                    self.stop_torn(remaining);
                } else {
                    self.report.lost_bytes += remaining;
                    self.done = true;
                }
                break;
            }
            let span = (RECORD_HEADER_LEN + len) as u64;
            if span > remaining {
                self.stop_torn(remaining);
                break;
            }
            if !self.fill_or_stop(len, remaining) {
                break;
            }
            self.offset += span;
            if crc32fast::hash(&self.buf) != payload_crc {
                if self.offset >= self.len {
                    // The last record: a write cut short.
                    self.stop_torn(span);
                    break;
                }
                self.report.corrupt += 1;
                self.report.good_len = self.offset;
                continue;
            }
            self.report.good_len = self.offset;
            let mut arrived = [0u8; 8];
            arrived.copy_from_slice(&self.buf[..8]);
            match serde_json::from_slice::<Row>(&self.buf[8..]) {
                Ok(row) => {
                    self.report.records += 1;
                    return Some(Record {
                        arrived: i64::from_le_bytes(arrived),
                        row,
                    });
                }
                Err(_) => self.report.undecodable += 1,
            }
        }
        None
    }
}

impl<R: Read> Iterator for Decoder<R> {
    type Item = Record;
    fn next(&mut self) -> Option<Record> {
        self.next_record()
    }
}

/// Every record of a journal held in memory, and what reading found.
pub fn decode(bytes: &[u8]) -> (Vec<Record>, ReadReport) {
    let mut d = Decoder::new(bytes, bytes.len() as u64);
    let records: Vec<Record> = d.by_ref().collect();
    (records, d.into_report())
}

// ---------------------------------------------------------------------------
// The journal

/// When a compaction is due: the file holds more than twice the store's
/// rows plus `slack_records`, or is more than twice its size after the last
/// rewrite plus `slack_bytes`. The slack keeps small journals from being
/// rewritten often.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    pub(crate) slack_records: u64,
    pub(crate) slack_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            slack_records: 1024,
            slack_bytes: 1 << 20,
        }
    }
}

/// What [`Journal::attach`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attach {
    /// Journaling. `restored` rows came back into the store.
    Attached {
        /// Rows read back into the store (after its eviction); 0 when the
        /// journal was already attached.
        restored: u64,
        /// What reading the old journal found (damage, torn tail).
        report: ReadReport,
        /// Where a damaged journal was moved (`rows.journal.corrupt-<unix
        /// time>`); `None` when it was clean or could not be moved.
        moved_aside: Option<PathBuf>,
    },
    /// Another instance holds the journal (pid when it wrote it down).
    Locked {
        /// The pid the holder wrote into the lock file; `None` when it is
        /// unreadable.
        holder: Option<u32>,
    },
    /// The state directory or the journal cannot be used.
    Failed(String),
}

/// The open journal file.
struct Writer {
    dir: StateDir,
    /// Held for as long as we write; the kernel drops it when we die.
    _lock: crate::state::Lock,
    file: Arc<File>,
    /// Length of the file: where the next record goes.
    bytes: u64,
    records: u64,
    /// Length after the last rewrite (or at attach).
    base_bytes: u64,
    /// Written since the last fsync.
    dirty: bool,
    /// A failed write could not be undone, so the file's end is unknown:
    /// nothing more is appended until the journal is rewritten.
    broken: bool,
}

impl Writer {
    fn append(&mut self, record: &[u8]) -> io::Result<()> {
        // O_APPEND: one write(2) at the end of the file.
        match (&*self.file).write_all(record) {
            Ok(()) => {
                self.bytes += record.len() as u64;
                self.records += 1;
                self.dirty = true;
                Ok(())
            }
            Err(e) => {
                // Cut off a partial record, so the next one starts on a
                // record boundary.
                if self.file.set_len(self.bytes).is_err() {
                    self.broken = true;
                }
                Err(e)
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    NotOpened,
    Attached,
    Locked(Option<u32>),
    Failed(String),
}

struct Inner {
    writer: Option<Writer>,
    mode: Mode,
    /// What the last attach restored, in words (for the status reason).
    restore_note: String,
    /// Rows made visible since the journal last held every stored row but
    /// not written to it (a failed write); cleared by a rewrite.
    missed: u64,
    write_error: Option<String>,
    /// A failed write or fsync: rewrite the journal from the store.
    needs_rewrite: bool,
    /// Rows too large for a record (never journaled).
    oversized: u64,
    last_attempt: Option<Instant>,
}

/// Counters, for tests and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JournalStats {
    pub(crate) attached: bool,
    /// Records in the file now (0 when not attached); drops at a compaction.
    pub records: u64,
    /// Length of the file now, bytes, header included (0 when not attached).
    pub bytes: u64,
    /// Rows made visible but not journaled since the journal last held every
    /// stored row (a failed write); cleared by a rewrite.
    pub missed: u64,
}

/// The on-disk journal of one state directory. Thread-safe; appends from
/// every source thread go through [`Journal::record`].
pub struct Journal {
    dir_path: PathBuf,
    limits: Limits,
    inner: Mutex<Inner>,
    /// Whether a file is attached, read without the lock so a row is
    /// encoded before the lock is taken.
    attached: AtomicBool,
    /// One compaction at a time.
    compacting: Mutex<()>,
}

fn open_flags() -> i32 {
    libc::O_NOFOLLOW | libc::O_CLOEXEC
}

/// Writes `entries` to a new temporary file (header first); returns it
/// (open for appending), its length and its record count. Not yet synced
/// or renamed.
fn write_new(dir: &StateDir, entries: &[(i64, Arc<Row>)]) -> io::Result<(File, u64, u64)> {
    let tmp = dir.file(TMP_FILE);
    let _ = fs::remove_file(&tmp);
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(open_flags())
        .open(&tmp)?;
    let mut out = BufWriter::with_capacity(1 << 16, &file);
    out.write_all(&header())?;
    let mut bytes = HEADER_LEN as u64;
    let mut records = 0;
    let mut buf = Vec::with_capacity(4096);
    for (arrived, row) in entries {
        buf.clear();
        match encode_record_into(&mut buf, *arrived, row) {
            Ok(()) => {
                out.write_all(&buf)?;
                bytes += buf.len() as u64;
                records += 1;
            }
            Err(e) => log::warn!("journal: row {} not written: {e}", row.eid),
        }
    }
    out.flush()?;
    drop(out);
    Ok((file, bytes, records))
}

/// Makes the temporary file durable and renames it over the journal.
fn install(dir: &StateDir, file: &File) -> io::Result<()> {
    file.sync_all()?;
    fs::rename(dir.file(TMP_FILE), dir.file(JOURNAL_FILE))?;
    dir.sync()
}

/// Copies `file[from..to]` to the end of `dst`.
fn copy_range(src: &File, from: u64, to: u64, dst: &File) -> io::Result<()> {
    let mut buf = vec![0u8; 1 << 16];
    let mut at = from;
    let mut out = dst;
    while at < to {
        let n = usize::try_from(to - at)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        src.read_exact_at(&mut buf[..n], at)?;
        out.write_all(&buf[..n])?;
        at += n as u64;
    }
    Ok(())
}

/// Renames the journal to `rows.journal.corrupt-<time>` and deletes the
/// oldest such files beyond [`KEEP_CORRUPT`].
fn move_aside(dir: &StateDir) -> io::Result<PathBuf> {
    let base = format!("{CORRUPT_PREFIX}{}", unix_now());
    let mut name = base.clone();
    let mut n = 1;
    while fs::symlink_metadata(dir.file(&name)).is_ok() {
        name = format!("{base}-{n}");
        n += 1;
    }
    fs::rename(dir.file(JOURNAL_FILE), dir.file(&name))?;
    if let Ok(list) = fs::read_dir(dir.path()) {
        let mut old: Vec<String> = list
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with(CORRUPT_PREFIX))
            .collect();
        // Names carry the unix time, ten digits until 2286.
        old.sort();
        let excess = old.len().saturating_sub(KEEP_CORRUPT);
        for stale in &old[..excess] {
            let _ = fs::remove_file(dir.file(stale));
        }
    }
    Ok(dir.file(&name))
}

/// Reads the journal at `path` into `store`. The records are replayed, in
/// order and with their arrival times, into a scratch store with the same
/// limits, so rows the store had evicted (row cap, byte budget, retention)
/// are evicted again and do not come back, and the live store's eviction
/// counters only count evictions of this run. Returns what reading found
/// and how many rows were added.
fn replay(path: &Path, store: &Store, now: i64) -> (ReadReport, u64) {
    let unusable = |why: String| {
        (
            ReadReport {
                unusable: Some(why),
                ..ReadReport::default()
            },
            0,
        )
    };
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return (ReadReport::default(), 0),
        Err(e) => return unusable(format!("cannot stat it: {e}")),
        Ok(m) if !m.file_type().is_file() => {
            return unusable("it is not a regular file".into());
        }
        Ok(_) => {}
    }
    let file = match OpenOptions::new()
        .read(true)
        // Never block on a FIFO swapped in after the check above.
        .custom_flags(open_flags() | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) => return unusable(format!("cannot open it: {e}")),
    };
    let len = match file.metadata() {
        Ok(m) if m.is_file() => m.len(),
        Ok(_) => return unusable("it is not a regular file".into()),
        Err(e) => return unusable(format!("cannot stat it: {e}")),
    };
    let scratch = Store::new(store.config());
    let mut decoder = Decoder::new(BufReader::with_capacity(1 << 16, file), len);
    for record in decoder.by_ref() {
        // A clock stepped back must not keep rows past their retention.
        scratch.insert(record.row, record.arrived.min(now));
    }
    scratch.expire(now);
    let entries = scratch.entries();
    drop(scratch);
    let mut restored = 0;
    for (arrived, row) in entries {
        if store.insert(Arc::unwrap_or_clone(row), arrived).is_some() {
            restored += 1;
        }
    }
    (decoder.into_report(), restored)
}

impl Journal {
    /// A journal in `state_dir`, not yet attached (see [`Journal::attach`]).
    pub fn new(state_dir: impl Into<PathBuf>) -> Journal {
        Journal::with_limits(state_dir, Limits::default())
    }

    pub(crate) fn with_limits(state_dir: impl Into<PathBuf>, limits: Limits) -> Journal {
        Journal {
            dir_path: state_dir.into(),
            limits,
            inner: Mutex::new(Inner {
                writer: None,
                mode: Mode::NotOpened,
                restore_note: String::new(),
                missed: 0,
                write_error: None,
                needs_rewrite: false,
                oversized: 0,
                last_attempt: None,
            }),
            attached: AtomicBool::new(false),
            compacting: Mutex::new(()),
        }
    }

    /// The journal file's path.
    pub fn path(&self) -> PathBuf {
        self.dir_path.join(JOURNAL_FILE)
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every mutation below completes before anything can panic.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The writer's current counters.
    pub fn stats(&self) -> JournalStats {
        let inner = self.lock();
        let w = inner.writer.as_ref();
        JournalStats {
            attached: w.is_some(),
            records: w.map_or(0, |w| w.records),
            bytes: w.map_or(0, |w| w.bytes),
            missed: inner.missed,
        }
    }

    /// Opens the state directory, takes the journal lock, reads the journal
    /// into `store` and gets ready to append. Rows already in `store` (a
    /// second instance taking the journal over) are written to it too. Never
    /// fails the program: see the returned [`Attach`] and [`Journal::health`].
    pub fn attach(&self, store: &Store) -> Attach {
        let mut inner = self.lock();
        if inner.writer.is_some() {
            return Attach::Attached {
                restored: 0,
                report: ReadReport::default(),
                moved_aside: None,
            };
        }
        inner.last_attempt = Some(Instant::now());
        let outcome = self.attach_locked(&mut inner, store);
        inner.mode = match &outcome {
            Attach::Attached { .. } => Mode::Attached,
            Attach::Locked { holder } => Mode::Locked(*holder),
            Attach::Failed(why) => Mode::Failed(why.clone()),
        };
        outcome
    }

    fn attach_locked(&self, inner: &mut Inner, store: &Store) -> Attach {
        let dir = match StateDir::open(&self.dir_path) {
            Ok(d) => d,
            Err(e) => return Attach::Failed(e.to_string()),
        };
        let mut lock = match dir.try_lock(LOCK_FILE) {
            Ok(Some(lock)) => lock,
            Ok(None) => {
                return Attach::Locked {
                    holder: lock_holder(&dir, LOCK_FILE),
                }
            }
            Err(e) => {
                return Attach::Failed(format!(
                    "cannot lock {}: {e}",
                    dir.file(LOCK_FILE).display()
                ))
            }
        };
        if let Err(e) = lock.record_pid() {
            log::debug!("journal: cannot write our pid into the lock file: {e}");
        }
        let path = dir.file(JOURNAL_FILE);
        let before = inner.mode.clone();
        let ours = store.stats().rows;
        let now = unix_now();
        let (report, restored) = replay(&path, store, now);

        let mut moved_aside = None;
        if report.damaged() {
            match move_aside(&dir) {
                Ok(p) => {
                    log::error!(
                        "journal {} is damaged ({}); moved aside to {}; {restored} row(s) \
                         restored, a clean journal is written",
                        path.display(),
                        report.problems().join("; "),
                        p.display()
                    );
                    moved_aside = Some(p);
                }
                Err(e) => log::error!(
                    "journal {} is damaged ({}) and cannot be moved aside ({e}); it is \
                     replaced by a clean journal holding the {restored} row(s) restored",
                    path.display(),
                    report.problems().join("; ")
                ),
            }
        } else if report.torn_bytes > 0 {
            log::warn!(
                "journal {}: skipped a torn last record ({} bytes, cut short by a crash)",
                path.display(),
                report.torn_bytes
            );
        }

        let live = store.stats().rows as u64;
        let rewrite = report.damaged()
            || report.good_len < HEADER_LEN as u64
            || ours > 0
            || self.too_big(report.records, report.good_len, report.good_len, live);
        let writer = if rewrite {
            let entries = store.entries();
            write_new(&dir, &entries).and_then(|(file, bytes, records)| {
                install(&dir, &file)?;
                Ok(Writer {
                    dir: dir.clone(),
                    _lock: lock,
                    file: Arc::new(file),
                    bytes,
                    records,
                    base_bytes: bytes,
                    dirty: false,
                    broken: false,
                })
            })
        } else {
            OpenOptions::new()
                .read(true)
                .append(true)
                .custom_flags(open_flags())
                .open(&path)
                .and_then(|file| {
                    if report.torn_bytes > 0 {
                        file.set_len(report.good_len)?;
                        file.sync_all()?;
                    }
                    Ok(Writer {
                        dir: dir.clone(),
                        _lock: lock,
                        file: Arc::new(file),
                        bytes: report.good_len,
                        records: report.records,
                        base_bytes: report.good_len,
                        dirty: false,
                        broken: false,
                    })
                })
        };
        match writer {
            Ok(w) => {
                inner.writer = Some(w);
                inner.missed = 0;
                inner.needs_rewrite = false;
                inner.write_error = None;
                self.attached.store(true, Ordering::Release);
                let mut note = match before {
                    Mode::NotOpened => format!("{restored} row(s) restored at start"),
                    Mode::Locked(_) => format!(
                        "taken over from the instance that held it: {restored} row(s) \
                         restored, {ours} kept in memory meanwhile written in"
                    ),
                    Mode::Failed(_) | Mode::Attached => format!(
                        "usable again: {restored} row(s) restored, {ours} kept in memory \
                         meanwhile written in"
                    ),
                };
                let problems = report.problems();
                if !problems.is_empty() {
                    note.push_str(&format!(" ({})", problems.join("; ")));
                }
                if let Some(p) = &moved_aside {
                    note.push_str(&format!("; damaged journal moved aside to {}", p.display()));
                }
                inner.restore_note = note;
                Attach::Attached {
                    restored,
                    report,
                    moved_aside,
                }
            }
            Err(e) => {
                let _ = fs::remove_file(dir.file(TMP_FILE));
                Attach::Failed(format!("journal {}: {e}", path.display()))
            }
        }
    }

    fn too_big(&self, records: u64, bytes: u64, base_bytes: u64, live: u64) -> bool {
        records
            > live
                .saturating_mul(2)
                .saturating_add(self.limits.slack_records)
            || bytes
                > base_bytes
                    .saturating_mul(2)
                    .saturating_add(self.limits.slack_bytes)
    }

    /// Writes `row` to the journal, then makes it visible with `insert`
    /// (which stores it and returns it, or `None` for a duplicate), under
    /// the journal's lock so a compaction sees every row in exactly one of
    /// the store and the file. When no journal is attached, or the write
    /// fails, the row is still made visible: a detection is never dropped
    /// for want of a disk.
    pub fn record<T>(
        &self,
        row: Row,
        arrived: i64,
        insert: impl FnOnce(Row) -> Option<T>,
    ) -> Option<T> {
        let encoded = self
            .attached
            .load(Ordering::Acquire)
            .then(|| encode_record(arrived, &row));
        let mut inner = self.lock();
        let mut journaled = false;
        if let Some(w) = inner.writer.as_mut().filter(|w| !w.broken) {
            match encoded.unwrap_or_else(|| encode_record(arrived, &row)) {
                Ok(rec) => match w.append(&rec) {
                    Ok(()) => journaled = true,
                    Err(e) => {
                        if inner.write_error.is_none() {
                            log::error!(
                                "journal {}: write failed: {e}; rows are kept in memory and \
                                 the journal is rewritten when it can be",
                                self.path().display()
                            );
                        }
                        inner.write_error = Some(e.to_string());
                        inner.needs_rewrite = true;
                    }
                },
                Err(e) => {
                    if inner.oversized == 0 {
                        log::warn!("journal: row {} not journaled: {e}", row.eid);
                    }
                    inner.oversized += 1;
                }
            }
        }
        let stored = insert(row);
        if stored.is_some() && !journaled && inner.writer.is_some() {
            inner.missed += 1;
        }
        stored
    }

    /// fsyncs the journal if it changed since the last fsync. Returns
    /// whether it did. A failed fsync may have lost written pages, so the
    /// journal is then rewritten from the store.
    pub fn sync(&self) -> io::Result<bool> {
        let file = {
            let mut inner = self.lock();
            match inner.writer.as_mut() {
                Some(w) if w.dirty => {
                    w.dirty = false;
                    Arc::clone(&w.file)
                }
                _ => return Ok(false),
            }
        };
        match file.sync_data() {
            Ok(()) => Ok(true),
            Err(e) => {
                let mut inner = self.lock();
                if inner.write_error.is_none() {
                    log::error!(
                        "journal {}: fsync failed: {e}; the journal is rewritten",
                        self.path().display()
                    );
                }
                inner.write_error = Some(format!("fsync: {e}"));
                inner.needs_rewrite = true;
                Err(e)
            }
        }
    }

    /// Whether the file holds enough more than the store to be compacted.
    pub fn needs_compaction(&self, live_rows: usize) -> bool {
        let inner = self.lock();
        inner
            .writer
            .as_ref()
            .is_some_and(|w| self.too_big(w.records, w.bytes, w.base_bytes, live_rows as u64))
    }

    /// Rewrites the journal as the store's live rows. The bulk is written
    /// and fsynced without holding the journal lock (appends go on to the
    /// old file); then, under the lock, what was appended meanwhile is
    /// copied over and the new file renamed into place. Returns whether a
    /// new file was installed.
    pub fn compact(&self, store: &Store) -> io::Result<bool> {
        let _one = self.compacting.lock().unwrap_or_else(|e| e.into_inner());
        let (dir, old, bytes0, records0, entries) = {
            let mut inner = self.lock();
            if inner.needs_rewrite || inner.writer.as_ref().is_some_and(|w| w.broken) {
                return self.rewrite_locked(&mut inner, store).map(|()| true);
            }
            let Some(w) = inner.writer.as_ref() else {
                return Ok(false);
            };
            (
                w.dir.clone(),
                Arc::clone(&w.file),
                w.bytes,
                w.records,
                store.entries(),
            )
        };
        let written = write_new(&dir, &entries).and_then(|(file, bytes, records)| {
            file.sync_data()?;
            Ok((file, bytes, records))
        });
        drop(entries);
        let (file, mut bytes, mut records) = match written {
            Ok(w) => w,
            Err(e) => {
                let _ = fs::remove_file(dir.file(TMP_FILE));
                return Err(e);
            }
        };
        let mut inner = self.lock();
        let usable = !inner.needs_rewrite;
        let Some(w) = inner
            .writer
            .as_mut()
            .filter(|w| usable && !w.broken && Arc::ptr_eq(&w.file, &old))
        else {
            // A write failed meanwhile: the next tick rewrites under the lock.
            let _ = fs::remove_file(dir.file(TMP_FILE));
            return Ok(false);
        };
        let finished = (|| {
            if w.bytes > bytes0 {
                copy_range(&old, bytes0, w.bytes, &file)?;
                bytes += w.bytes - bytes0;
                records += w.records - records0;
            }
            install(&dir, &file)
        })();
        if let Err(e) = finished {
            let _ = fs::remove_file(dir.file(TMP_FILE));
            return Err(e);
        }
        w.file = Arc::new(file);
        w.bytes = bytes;
        w.records = records;
        w.base_bytes = bytes;
        w.dirty = false;
        Ok(true)
    }

    /// Rewrites the journal from the store while holding the lock (after a
    /// failed write, when the file may lack rows the store has).
    fn rewrite_locked(&self, inner: &mut Inner, store: &Store) -> io::Result<()> {
        let Some(w) = inner.writer.as_mut() else {
            return Ok(());
        };
        let entries = store.entries();
        let result = write_new(&w.dir, &entries).and_then(|(file, bytes, records)| {
            install(&w.dir, &file)?;
            Ok((file, bytes, records))
        });
        match result {
            Ok((file, bytes, records)) => {
                w.file = Arc::new(file);
                w.bytes = bytes;
                w.records = records;
                w.base_bytes = bytes;
                w.dirty = false;
                w.broken = false;
                if inner.write_error.take().is_some() {
                    log::info!(
                        "journal {}: rewritten after a write failure; it holds every stored row again",
                        self.path().display()
                    );
                }
                inner.needs_rewrite = false;
                inner.missed = 0;
                Ok(())
            }
            Err(e) => {
                let _ = fs::remove_file(w.dir.file(TMP_FILE));
                Err(e)
            }
        }
    }

    /// Periodic work: fsync, compaction or a rewrite after a failure, and,
    /// while another instance holds the journal or the directory is
    /// unusable, another try to attach (taking the journal over).
    pub fn tick(&self, store: &Store) {
        let _ = self.sync();
        let (attached, retry) = {
            let inner = self.lock();
            let every = match inner.mode {
                Mode::Locked(_) => RETRY_LOCKED,
                _ => RETRY_FAILED,
            };
            let due = inner.last_attempt.is_none_or(|t| t.elapsed() >= every);
            (inner.writer.is_some(), due)
        };
        if attached {
            let failed = self.lock().needs_rewrite;
            if failed || self.needs_compaction(store.stats().rows) {
                if let Err(e) = self.compact(store) {
                    log::warn!("journal {}: rewrite failed: {e}", self.path().display());
                }
            }
        } else if retry {
            self.attach(store);
        }
    }

    /// The store's state for the status table: journaling, or in memory
    /// and why.
    pub fn health(&self) -> (State, String) {
        let inner = self.lock();
        let path = self.path();
        let path = path.display();
        if let Some(e) = &inner.write_error {
            return (
                State::Failed,
                format!(
                    "journal {path}: write failed ({e}); {} row(s) are in memory only until \
                     the journal is rewritten",
                    inner.missed
                ),
            );
        }
        match &inner.mode {
            Mode::Attached => (
                State::Active,
                format!(
                    "journal {path}: {}; rows are written before they are visible (they \
                     survive a kill -9) and fsynced every {} ms",
                    inner.restore_note,
                    SYNC_INTERVAL.as_millis()
                ),
            ),
            Mode::Locked(holder) => (
                State::Unavailable,
                format!(
                    "journal {path} is in use by another instance{}: rows are kept in memory \
                     only; this instance takes the journal over when that one exits",
                    holder.map(|p| format!(" (pid {p})")).unwrap_or_default()
                ),
            ),
            Mode::Failed(why) => (
                State::Failed,
                format!("{why}: rows are kept in memory only and are lost on restart"),
            ),
            Mode::NotOpened => (State::Failed, "journal not opened yet".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::classify;
    use crate::event::ExecEvent;
    use crate::store::{RowFilter, StoreConfig};
    use proptest::prelude::*;
    use std::os::unix::fs::MetadataExt;

    fn row(i: i64) -> Row {
        let event = ExecEvent {
            time: 1_700_000_000 + i,
            time_nanos: 5,
            pid: 1000 + i,
            ppid: 1,
            path: b"/usr/bin/kcc".to_vec(),
            argv: vec![
                b"kcc".to_vec(),
                b"copy_cred_cache".to_vec(),
                format!("/tmp/é-{i}").into_bytes(),
                b"\xff\x00 \"q\"".to_vec(),
            ],
            uid: Some(501),
            ..ExecEvent::default()
        };
        let class = classify(&event.path, &event.argv).expect("kcc is classified");
        Row::from_event(&event, &class, "alice".into())
    }

    fn store(max_rows: usize) -> Store {
        Store::new(StoreConfig {
            max_rows,
            max_bytes: usize::MAX,
            retention: Duration::from_secs(3600),
        })
    }

    fn eids(store: &Store) -> Vec<String> {
        store
            .select(&RowFilter::default())
            .iter()
            .map(|r| r.eid.clone())
            .collect()
    }

    /// Records `rows` through a journal as the engine does.
    fn put(j: &Journal, s: &Store, rows: impl IntoIterator<Item = (i64, Row)>) {
        for (arrived, r) in rows {
            j.record(r, arrived, |r| s.insert(r, arrived));
        }
    }

    fn restart(dir: &Path, max_rows: usize) -> (Journal, Store, Attach) {
        let j = Journal::new(dir);
        let s = store(max_rows);
        let a = j.attach(&s);
        (j, s, a)
    }

    fn restored(a: &Attach) -> (u64, ReadReport) {
        match a {
            Attach::Attached {
                restored, report, ..
            } => (*restored, report.clone()),
            other => panic!("not attached: {other:?}"),
        }
    }

    fn corrupt_files(dir: &Path) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with(CORRUPT_PREFIX)
            })
            .collect();
        v.sort();
        v
    }

    /// A temporary directory and the state directory inside it (not made).
    fn state_dir() -> (tempfile::TempDir, PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("state");
        (tmp, dir)
    }

    /// Journals rows `0..n`, arrived at `now`, in `dir` and closes the
    /// journal; returns its file.
    fn journal_of(dir: &Path, n: i64, now: i64) -> PathBuf {
        let (j, s, _) = restart(dir, 100);
        put(&j, &s, (0..n).map(|i| (now, row(i))));
        drop(j);
        dir.join(JOURNAL_FILE)
    }

    /// The eids a new instance restores from `dir`.
    fn restored_eids(dir: &Path, max_rows: usize) -> Vec<String> {
        let (_j, s, _) = restart(dir, max_rows);
        eids(&s)
    }

    #[test]
    fn rows_round_trip_with_their_eids_values_and_arrival() {
        let (_tmp, dir) = state_dir();
        let now = unix_now();
        let (j, s, a) = restart(&dir, 100);
        assert_eq!(restored(&a).0, 0);
        put(&j, &s, (0..10).map(|i| (now - 100 + i, row(i))));
        assert_eq!(j.stats().records, 10);
        let before = s.entries();
        drop(j);

        let (j2, s2, a) = restart(&dir, 100);
        let (n, report) = restored(&a);
        assert_eq!(n, 10);
        assert_eq!(report.problems(), Vec::<String>::new());
        let after = s2.entries();
        assert_eq!(after.len(), 10);
        for ((a0, r0), (a1, r1)) in before.iter().zip(&after) {
            assert_eq!(a0, a1);
            assert_eq!(**r0, **r1);
        }
        // A clean journal is appended to, not rewritten, and restored
        // rows do not count as evictions or duplicates of this run.
        assert_eq!(j2.stats().records, 10);
        assert_eq!(s2.stats().evicted_capacity + s2.stats().duplicates, 0);
        let mode = fs::metadata(dir.join(JOURNAL_FILE)).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(j2.health().0, State::Active);
        assert!(
            j2.health().1.contains("10 row(s) restored"),
            "{:?}",
            j2.health()
        );
    }

    #[test]
    fn a_torn_tail_is_skipped_counted_and_cut_off() {
        let (_tmp, dir) = state_dir();
        let now = unix_now();
        let path = journal_of(&dir, 5, now);
        let full = fs::read(&path).unwrap();
        // Every cut inside the last record.
        let last = encode_record(now, &row(4)).unwrap().len();
        for cut in 1..last {
            fs::write(&path, &full[..full.len() - cut]).unwrap();
            let (j, s, a) = restart(&dir, 100);
            let (n, report) = restored(&a);
            assert_eq!(n, 4, "cut {cut}");
            assert_eq!(report.torn_bytes, (last - cut) as u64, "cut {cut}");
            assert!(!report.damaged());
            assert!(corrupt_files(&dir).is_empty());
            // Appends continue on a record boundary.
            put(&j, &s, [(now, row(99))]);
            drop(j);
            let (records, report) = decode(&fs::read(&path).unwrap());
            assert_eq!(records.len(), 5);
            assert_eq!(report.torn_bytes, 0);
        }
        // Zeros where the last writes were (a power loss) are a torn tail.
        let mut zeros = full.clone();
        zeros.extend_from_slice(&[0u8; 300]);
        let (records, report) = decode(&zeros);
        assert_eq!((records.len(), report.torn_bytes), (5, 300));
        assert!(!report.damaged());
    }

    #[test]
    fn a_bit_flip_skips_one_record_and_moves_the_journal_aside() {
        let (_tmp, dir) = state_dir();
        let now = unix_now();
        let path = journal_of(&dir, 5, now);
        let mut bytes = fs::read(&path).unwrap();
        let rec = encode_record(now, &row(0)).unwrap().len();
        // Inside the payload of the third record.
        bytes[HEADER_LEN + 2 * rec + 40] ^= 0x04;
        fs::write(&path, &bytes).unwrap();

        let (j, s, a) = restart(&dir, 100);
        let (n, report) = restored(&a);
        assert_eq!(n, 4);
        assert_eq!(report.corrupt, 1);
        let want: Vec<String> = [0, 1, 3, 4].iter().map(|i| row(*i).eid).collect();
        assert_eq!(eids(&s), want);
        let aside = corrupt_files(&dir);
        assert_eq!(aside.len(), 1);
        assert_eq!(fs::read(&aside[0]).unwrap(), bytes, "kept as it was");
        // The new journal is clean and holds what was restored.
        let (records, report) = decode(&fs::read(&path).unwrap());
        assert!(!report.damaged() && report.torn_bytes == 0);
        assert_eq!(records.len(), 4);
        let (state, reason) = j.health();
        assert_eq!(state, State::Active);
        assert!(reason.contains("moved aside"), "{reason}");

        // A flipped length: nothing after it can be trusted.
        let mut bytes = fs::read(&path).unwrap();
        bytes[HEADER_LEN + rec] ^= 0x01;
        let (records, report) = decode(&bytes);
        assert_eq!(records.len(), 1);
        assert_eq!(report.lost_bytes, (bytes.len() - HEADER_LEN - rec) as u64);
        assert!(report.damaged());
    }

    #[test]
    fn an_unreadable_journal_is_moved_aside_and_the_start_goes_on() {
        let (_tmp, dir) = state_dir();
        fs::create_dir(&dir).unwrap();
        let path = dir.join(JOURNAL_FILE);
        let mut bad_version = header();
        bad_version[8] = 9;
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("garbage", b"not a journal at all, just text\n".to_vec()),
            ("short", b"KCAJ".to_vec()),
            ("version", bad_version.to_vec()),
        ];
        for (i, (what, bytes)) in cases.iter().enumerate() {
            fs::write(&path, bytes).unwrap();
            let (j, s, a) = restart(&dir, 100);
            let (n, report) = restored(&a);
            assert_eq!(n, 0, "{what}");
            assert!(report.unusable.is_some(), "{what}");
            assert_eq!(corrupt_files(&dir).len(), i + 1, "{what}");
            assert_eq!(
                decode(&fs::read(&path).unwrap()).1,
                ReadReport {
                    good_len: HEADER_LEN as u64,
                    ..ReadReport::default()
                }
            );
            // And it journals.
            put(&j, &s, [(unix_now(), row(1))]);
            assert_eq!(j.stats().records, 1);
        }
        // A symlink is not followed, and a directory is not a journal.
        fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", &path).unwrap();
        let (_j, _s, a) = restart(&dir, 100);
        assert!(restored(&a).1.unusable.is_some());
        assert!(fs::symlink_metadata(&path).unwrap().is_file());
        // Only the newest few are kept.
        assert_eq!(corrupt_files(&dir).len(), KEEP_CORRUPT);
    }

    #[test]
    fn compaction_keeps_exactly_the_stores_rows() {
        let (_tmp, dir) = state_dir();
        let now = unix_now();
        let j = Journal::with_limits(
            &dir,
            Limits {
                slack_records: 4,
                slack_bytes: 1 << 30,
            },
        );
        let s = store(5);
        j.attach(&s);
        put(&j, &s, (0..20).map(|i| (now - 50 + i, row(i))));
        assert_eq!(j.stats().records, 20);
        assert!(j.needs_compaction(s.stats().rows));
        j.tick(&s);
        assert_eq!(j.stats().records, 5);
        let (records, report) = decode(&fs::read(dir.join(JOURNAL_FILE)).unwrap());
        assert!(!report.damaged() && report.torn_bytes == 0);
        let on_disk: Vec<(i64, Row)> = records.into_iter().map(|r| (r.arrived, r.row)).collect();
        let live: Vec<(i64, Row)> = s
            .entries()
            .iter()
            .map(|(a, r)| (*a, (**r).clone()))
            .collect();
        assert_eq!(on_disk, live);
        // Appends after a compaction land in the new file.
        put(&j, &s, [(now, row(50))]);
        drop(j);
        assert_eq!(restored_eids(&dir, 5), eids(&s));
    }

    #[test]
    fn compaction_keeps_rows_appended_while_it_writes() {
        let (_tmp, dir) = state_dir();
        let now = unix_now();
        let j = Arc::new(Journal::new(&dir));
        let s = Arc::new(store(100_000));
        j.attach(&s);
        put(&j, &s, (0..2000).map(|i| (now, row(i))));
        let writer = {
            let (j, s) = (Arc::clone(&j), Arc::clone(&s));
            std::thread::spawn(move || put(&j, &s, (2000..4000).map(|i| (now, row(i)))))
        };
        for _ in 0..5 {
            j.compact(&s).unwrap();
        }
        writer.join().unwrap();
        drop(j);
        let (_j, s2, _) = restart(&dir, 100_000);
        assert_eq!(s2.stats().rows, 4000);
        assert_eq!(eids(&s2), eids(&s));
    }

    #[test]
    fn evicted_and_expired_rows_do_not_come_back() {
        let (_tmp, dir) = state_dir();
        let now = unix_now();
        let (j, s, _) = restart(&dir, 3);
        put(&j, &s, (0..10).map(|i| (now, row(i))));
        assert_eq!(s.stats().evicted_capacity, 7);
        assert_eq!(j.stats().records, 10, "not compacted yet");
        drop(j);
        let (_j, s2, a) = restart(&dir, 3);
        assert_eq!(restored(&a).0, 3);
        assert_eq!(eids(&s2), eids(&s));
        assert_eq!(s2.stats().evicted_capacity, 0, "not counted again");
        drop(_j);

        // Retention counts from arrival, across the restart.
        let (_tmp2, dir) = state_dir();
        let (j, s, _) = restart(&dir, 100);
        put(&j, &s, [(now - 7200, row(1)), (now - 10, row(2))]);
        drop(j);
        let (_j, s2, a) = restart(&dir, 100);
        assert_eq!(restored(&a).0, 1);
        assert_eq!(eids(&s2), [row(2).eid]);
    }

    #[test]
    fn a_second_instance_runs_in_memory_then_takes_the_journal_over() {
        let (_tmp, dir) = state_dir();
        let now = unix_now();
        let (first, s1, _) = restart(&dir, 100);
        put(&first, &s1, (0..3).map(|i| (now, row(i))));

        let (second, s2, a) = restart(&dir, 100);
        assert!(matches!(a, Attach::Locked { holder: Some(p) } if p == std::process::id()));
        let (state, reason) = second.health();
        assert_eq!(state, State::Unavailable);
        assert!(reason.contains("in use by another instance"), "{reason}");
        // It keeps rows in memory meanwhile.
        put(&second, &s2, [(now, row(10)), (now, row(1))]);
        assert_eq!(s2.stats().rows, 2);
        second.tick(&s2);
        assert!(!second.stats().attached, "the lock is still held");

        drop(first);
        // The retry is due after RETRY_LOCKED.
        second.lock().last_attempt = None;
        second.tick(&s2);
        assert!(second.stats().attached);
        assert_eq!(second.health().0, State::Active);
        assert!(
            second.health().1.contains("taken over"),
            "{:?}",
            second.health()
        );
        assert_eq!(
            s2.stats().rows,
            4,
            "its own two and the first's three, once each"
        );
        put(&second, &s2, [(now, row(11))]);
        drop(second);
        let mut got = restored_eids(&dir, 100);
        got.sort();
        let mut want: Vec<String> = [0, 1, 2, 10, 11].iter().map(|i| row(*i).eid).collect();
        want.sort();
        assert_eq!(got, want);
    }

    #[test]
    fn an_unusable_directory_is_reported_and_rows_stay_in_memory() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("file");
        fs::write(&file, b"").unwrap();
        let (j, s, a) = restart(&file, 100);
        assert!(matches!(a, Attach::Failed(_)), "{a:?}");
        let (state, reason) = j.health();
        assert_eq!(state, State::Failed);
        assert!(reason.contains(&file.display().to_string()), "{reason}");
        assert!(reason.contains("in memory"), "{reason}");
        put(&j, &s, [(unix_now(), row(1))]);
        assert_eq!(s.stats().rows, 1);
    }

    #[test]
    fn a_failed_write_is_reported_and_healed_by_a_rewrite() {
        let (_tmp, dir) = state_dir();
        let now = unix_now();
        let (j, s, _) = restart(&dir, 100);
        put(&j, &s, [(now, row(1))]);
        // Make the next write fail: swap the file for a read-only handle.
        {
            let mut inner = j.lock();
            let w = inner.writer.as_mut().unwrap();
            w.file = Arc::new(File::open(dir.join(JOURNAL_FILE)).unwrap());
        }
        put(&j, &s, [(now, row(2))]);
        assert_eq!(s.stats().rows, 2, "the row is visible anyway");
        let (state, reason) = j.health();
        assert_eq!(state, State::Failed);
        assert!(reason.contains("write failed"), "{reason}");
        j.tick(&s);
        assert_eq!(j.health().0, State::Active);
        drop(j);
        assert_eq!(restored_eids(&dir, 100), [row(1).eid, row(2).eid]);
    }

    #[test]
    fn rows_gain_fields_compatibly() {
        // A row written with a field this build does not know, fields in
        // another order: read by name, the unknown one ignored.
        let mut v = serde_json::to_value(row(1)).unwrap();
        let obj = v.as_object_mut().unwrap();
        obj.insert("a_future_column".into(), 7.into());
        let mut reversed = serde_json::Map::new();
        for (k, val) in obj.iter().rev() {
            reversed.insert(k.clone(), val.clone());
        }
        let json = serde_json::to_vec(&reversed).unwrap();
        let mut payload = 42i64.to_le_bytes().to_vec();
        payload.extend_from_slice(&json);
        let mut bytes = header().to_vec();
        bytes.extend_from_slice(&frame_payload(&payload));
        let (records, report) = decode(&bytes);
        assert_eq!(report.records, 1, "{report:?}");
        assert_eq!(
            records[0],
            Record {
                arrived: 42,
                row: row(1)
            }
        );
    }

    /// A record as the build before `Row.source` became a `SourceKind`
    /// wrote it (the source a plain string), with `source` set to `source`.
    fn old_record(source: &str) -> Vec<u8> {
        let json = format!(
            concat!(
                r#"{{"time":1700000001,"eid":"1001-1700000001.000000005-00000000000000aa","#,
                r#""pid":1001,"parent":1,"path":"/usr/bin/kcc","name":"kcc","#,
                r#""cmdline":"kcc copy_cred_cache","args":"[\"kcc\",\"copy_cred_cache\"]","#,
                r#""cwd":"","uid":501,"euid":null,"gid":null,"egid":null,"auid":null,"#,
                r#""username":"alice","parent_path":"","parent_cmdline":"","tool":"kcc","#,
                r#""action":"copy_cred_cache","ccache":"","#,
                r#""indicator":"credential_cache_copy","#,
                r#""technique":"T1003,T1558,T1558.003,T1558.005","signing_id":"","#,
                r#""team_id":"","platform_binary":null,"sha256":"","source":"{}","#,
                r#""truncated":0}}"#
            ),
            source
        );
        let mut payload = 9i64.to_le_bytes().to_vec();
        payload.extend_from_slice(json.as_bytes());
        frame_payload(&payload)
    }

    #[test]
    fn a_journal_from_the_string_source_build_still_replays() {
        let mut bytes = header().to_vec();
        bytes.extend_from_slice(&old_record("eslogger"));
        let (records, report) = decode(&bytes);
        assert_eq!(report.records, 1, "{report:?}");
        let row = &records[0].row;
        assert_eq!(row.source, crate::event::SourceKind::Eslogger);
        assert_eq!(row.to_json()["source"], "eslogger");
        // Written back, the source is the same string it was read from.
        let again = serde_json::to_value(row).unwrap();
        assert_eq!(again["source"], "eslogger");
    }

    #[test]
    fn a_record_with_an_unknown_source_is_skipped_and_counted() {
        // A source this build does not have (a newer build's, or a damaged
        // byte): the record is undecodable, the ones after it are read.
        let mut bytes = header().to_vec();
        bytes.extend_from_slice(&old_record("dtrace"));
        bytes.extend_from_slice(&old_record("snapshot"));
        let (records, report) = decode(&bytes);
        assert_eq!((records.len(), report.undecodable), (1, 1), "{report:?}");
        assert_eq!(records[0].row.source, crate::event::SourceKind::Snapshot);
        // Damaged: the file is kept aside for a person and the count logged.
        assert!(report.damaged());
        assert_eq!(report.problems(), ["1 record(s) held no readable row"]);
    }

    #[test]
    fn framing_by_hand_matches_the_encoder() {
        let rec = encode_record(7, &row(3)).unwrap();
        assert_eq!(frame_payload(&rec[RECORD_HEADER_LEN..]), rec);
        // A well-framed record whose payload is not a row is skipped,
        // counted, and the records after it are read.
        let mut bytes = header().to_vec();
        bytes.extend_from_slice(&frame_payload(b"12345678{\"not\":\"a row\"}"));
        bytes.extend_from_slice(&rec);
        let (records, report) = decode(&bytes);
        assert_eq!((records.len(), report.undecodable), (1, 1));
        assert!(report.damaged());
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let (records, report) = decode(&bytes);
            prop_assert!(report.good_len <= bytes.len() as u64);
            prop_assert_eq!(records.len() as u64, report.records);
        }

        #[test]
        fn arbitrary_bytes_after_a_valid_header_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let mut bytes = header().to_vec();
            bytes.extend_from_slice(&tail);
            let (_, report) = decode(&bytes);
            prop_assert!(report.good_len >= HEADER_LEN as u64);
        }

        #[test]
        fn every_cut_keeps_the_whole_records_before_it(n in 1usize..6, cut in 0usize..4000) {
            let mut bytes = header().to_vec();
            let mut ends = vec![bytes.len()];
            for i in 0..n {
                bytes.extend_from_slice(&encode_record(i as i64, &row(i as i64)).unwrap());
                ends.push(bytes.len());
            }
            let cut = cut.min(bytes.len() - HEADER_LEN);
            let kept = &bytes[..bytes.len() - cut];
            let (records, report) = decode(kept);
            let whole = ends.iter().filter(|e| **e <= kept.len()).count() - 1;
            prop_assert_eq!(records.len(), whole);
            prop_assert!(!report.damaged());
            prop_assert_eq!(report.good_len as usize, ends[whole]);
        }
    }
}
