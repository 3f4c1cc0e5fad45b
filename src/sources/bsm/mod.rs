//! Source `bsm`: OpenBSM audit records, from macOS `/dev/auditpipe` (live)
//! or from a trail file such as /var/audit/* (`bsm:PATH`, any OS).
//!
//! BSM is deprecated on macOS and off by default since macOS 14; it works
//! where fleets turn auditd back on (CIS/STIG). [`parse`] frames and reads
//! records, [`events`] turns exec and fork records into events; this module
//! reads the input, tracks fork parents and hands Kerberos-related execs to
//! the engine.
//!
//! Garbage (bytes that are not records) must not cost a core. The reader
//! resynchronises by searching for the next header id with memchr and takes
//! a header only when it is plausible and its trailer, where its byte count
//! puts it, is a trailer token with the same count ([`parse::RecordReader`]).
//! A replay (`bsm:PATH`) that skips [`GARBAGE_CAP`] bytes without a record,
//! from its start or since its last record, stops and fails: in
//! `--standalone` it exits 3 with `replay failed: bsm: no BSM record in …`
//! as the last line on stderr, after the rows of the records before. The
//! live `/dev/auditpipe` never stops for garbage, since that would end
//! detection: it logs once per cap of garbage, counts it in the status
//! reason and keeps resyncing; it only reads what the kernel writes.

#[cfg(target_os = "macos")]
pub(crate) mod auditpipe;
pub mod events;
pub mod parse;

use crate::engine::{Engine, Identity};
use crate::event::SourceKind;
use crate::sources::exec_cache::ExecCache;
use crate::sources::replay::{self, ReplayFile};
use crate::sources::Source;
use crate::sources::SourceError;
use crate::status::{Counters, State};
use events::BsmEvent;
use parse::RecordReader;
use std::collections::{HashMap, VecDeque};
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// One exec record can reach ~32 KiB (argv and env near their 16 KiB caps).
const READ_BUF: usize = 128 * 1024;
/// Fork parents remembered for AUE_EXECVE records, which do not carry one.
const MAX_FORKS: usize = 16_384;
const EXEC_CACHE: usize = 8192;
/// Bytes skipped without a record (from the start, or since the last
/// record) after which a replay stops and fails. auditd writes records back
/// to back and we frame none longer than [`parse::MAX_RECORD_LEN`] (1 MiB),
/// so 64 MiB without one is not a trail we can read (`/dev/urandom`, a disk
/// image). Resync runs at about 1.4 GB/s over random bytes and 225 MB/s at
/// worst, bytes that are all header ids (benches/bsm_resync.rs), so this
/// bounds what such an input costs to well under a second of CPU.
pub const GARBAGE_CAP: u64 = 64 << 20;
// Room for many of the largest records we frame, lost to a cut or a bad trailer.
const _: () = assert!(GARBAGE_CAP >= 16 * parse::MAX_RECORD_LEN as u64);

enum Input {
    Trail(ReplayFile),
    #[cfg(target_os = "macos")]
    Pipe(auditpipe::AuditPipe),
}

/// The `bsm` source: reads records from a trail or /dev/auditpipe, tracks
/// fork parents (up to 16,384 pids) for execve records, and hands
/// Kerberos-related execs to the engine. Built by [`Bsm::trail`] or
/// `Bsm::pipe` (macOS).
pub(crate) struct Bsm {
    input: Input,
    label: String,
    reader: RecordReader,
    cache: ExecCache,
    forks: HashMap<i64, i64>,
    fork_order: VecDeque<i64>,
    buf: Vec<u8>,
    unreadable: u64,
    pipe_drops: u64,
    note: String,
    /// [`GARBAGE_CAP`]; smaller in tests.
    garbage_cap: u64,
    /// Caps of garbage already logged (the live pipe only warns).
    garbage_warned: u64,
}

impl Bsm {
    fn new(input: Input, label: String, note: String) -> Bsm {
        Bsm {
            input,
            label,
            reader: RecordReader::new(),
            cache: ExecCache::new(EXEC_CACHE),
            forks: HashMap::new(),
            fork_order: VecDeque::new(),
            buf: vec![0; READ_BUF],
            unreadable: 0,
            pipe_drops: 0,
            note,
            garbage_cap: GARBAGE_CAP,
            garbage_warned: 0,
        }
    }

    #[cfg(test)]
    fn with_garbage_cap(mut self, cap: u64) -> Bsm {
        self.garbage_cap = cap.max(1);
        self
    }

    /// Applies the garbage cap. A replay that has skipped
    /// [`GARBAGE_CAP`] bytes since its last record (or its start) gets the
    /// reason to stop. The live pipe never stops for it (that would end
    /// detection): it logs once per cap of garbage and keeps resyncing; it
    /// reads only what the kernel writes, at memchr speed, so the cost
    /// follows the kernel's own output.
    fn garbage_check(&mut self) -> Option<String> {
        let stats = self.reader.stats();
        let runs = stats.skipped_since_record / self.garbage_cap;
        if runs == 0 {
            self.garbage_warned = 0;
            return None;
        }
        let mib = self.garbage_cap >> 20;
        let cap = if mib > 0 {
            format!("{mib} MiB")
        } else {
            format!("{} bytes", self.garbage_cap)
        };
        match &self.input {
            Input::Trail(file) => Some(if stats.records == 0 {
                format!(
                    "no BSM record in the first {cap} of {}: stopped reading (not a BSM trail?)",
                    file.path().display()
                )
            } else {
                format!(
                    "no BSM record in {cap} of {} after record {}: stopped reading, \
                     the rest is taken for garbage",
                    file.path().display(),
                    stats.records
                )
            }),
            #[cfg(target_os = "macos")]
            Input::Pipe(_) => {
                if runs > self.garbage_warned {
                    self.garbage_warned = runs;
                    log::warn!(
                        "bsm: {} byte(s) of {} without a record; still searching",
                        stats.skipped_since_record,
                        self.label
                    );
                }
                None
            }
        }
    }

    /// `bsm:PATH`: replays a trail file, FIFO or device (finite); opening
    /// never waits.
    pub(crate) fn trail(path: &Path) -> Result<Bsm, SourceError> {
        let file = ReplayFile::open(path, "BSM trail")?;
        Ok(Bsm::new(
            Input::Trail(file),
            format!("BSM trail {}", path.display()),
            String::new(),
        ))
    }

    /// `bsm`: the live /dev/auditpipe, preselecting the process (pc) and exec
    /// (ex) classes. Unavailable, with the reason, when auditd is not running:
    /// the kernel then makes no records at all.
    #[cfg(target_os = "macos")]
    pub(crate) fn pipe() -> Result<Bsm, SourceError> {
        match auditpipe::kernel_auditing() {
            Ok(true) => {}
            Ok(false) => {
                return Err(SourceError::Unavailable(
                    "BSM audit is off (auditd is not running; it is disabled by \
                            default since macOS 14: enable com.apple.auditd and \
                            /etc/security/audit_control)"
                        .into(),
                ))
            }
            Err(e) => {
                return Err(SourceError::Unavailable(format!(
                    "cannot query the audit state (auditon): {e}"
                )))
            }
        }
        let note = match auditpipe::policy() {
            Ok(p) if p & auditpipe::AUDIT_ARGV == 0 => {
                "; the audit policy lacks argv, so exec records carry no arguments \
                 (add argv to policy: in /etc/security/audit_control)"
                    .to_string()
            }
            _ => String::new(),
        };
        let pipe = auditpipe::AuditPipe::open(auditpipe::CLASS_PC | auditpipe::CLASS_EX, 1024)
            .map_err(|e| SourceError::Unavailable(format!("cannot open /dev/auditpipe: {e}")))?;
        Ok(Bsm::new(Input::Pipe(pipe), "/dev/auditpipe".into(), note))
    }

    fn reason(&self) -> String {
        let stats = self.reader.stats();
        let mut r = format!("{} (OpenBSM){}", self.label, self.note);
        if self.pipe_drops > 0 {
            r.push_str(&format!("; the pipe dropped {} record(s)", self.pipe_drops));
        }
        if self.unreadable > 0 || stats.skipped_bytes > 0 {
            r.push_str(&format!(
                "; {} unreadable record(s), {} byte(s) skipped",
                self.unreadable, stats.skipped_bytes
            ));
        }
        r
    }

    /// Whether a trail read as far as `ended` says was a good replay.
    fn trail_verdict(&self, file: &ReplayFile, ended: bool) -> Result<(), SourceError> {
        let stats = self.reader.stats();
        if !ended {
            return Err(SourceError::Interrupted(format!(
                "BSM replay of {} stopped before its end ({} record(s) read)",
                file.path().display(),
                stats.records
            )));
        }
        if file.bytes() == 0 {
            return Err(SourceError::Empty {
                what: "BSM trail",
                path: file.path().to_path_buf(),
            });
        }
        if stats.records == 0 && stats.file_tokens == 0 {
            return Err(SourceError::Failed(format!(
                "no BSM records in {}: {} byte(s), none of them a BSM record or trail token",
                file.path().display(),
                file.bytes()
            )));
        }
        Ok(())
    }

    /// Interprets every whole record the reader holds.
    fn drain(&mut self, engine: &Engine, counters: &Counters) {
        while let Some(bytes) = self.reader.next_record() {
            let record = match parse::parse_record(bytes) {
                Ok((record, _)) => record,
                Err(e) => {
                    self.unreadable += 1;
                    counters.drop_events(1);
                    log::debug!("bsm: unreadable record: {e}");
                    continue;
                }
            };
            match events::interpret(&record) {
                Some(BsmEvent::Fork {
                    parent_pid,
                    child_pid,
                    ..
                }) => {
                    if self.forks.insert(child_pid, parent_pid).is_none() {
                        self.fork_order.push_back(child_pid);
                    }
                    while self.fork_order.len() > MAX_FORKS {
                        if let Some(old) = self.fork_order.pop_front() {
                            self.forks.remove(&old);
                        }
                    }
                }
                Some(BsmEvent::Exec(exec)) => {
                    let path = exec.path.unwrap_or_default();
                    let ppid = exec.ppid.or_else(|| self.forks.get(&exec.pid).copied());
                    if !Engine::wants(path, &exec.argv, &Identity::UNKNOWN) {
                        counters.saw(exec.time.0);
                    } else {
                        let mut event = events::to_exec_event(&exec, ppid);
                        if let Some(parent) = ppid.and_then(|p| self.cache.get(p)) {
                            event.parent_path = Some(parent.path.to_vec());
                            event.parent_argv = Some(vec![parent.cmdline.to_vec()]);
                        }
                        engine.ingest(&event, counters);
                    }
                    self.cache.record(exec.pid, path, &exec.argv);
                }
                None => {}
            }
        }
    }
}

impl Source for Bsm {
    fn kind(&self) -> SourceKind {
        SourceKind::Bsm
    }

    fn is_finite(&self) -> bool {
        matches!(self.input, Input::Trail(_))
    }

    /// A trail is read to its end; it fails when it cannot be read, is
    /// empty, or holds no BSM record (a replay that finds nothing must be told
    /// apart from one that read something else), and a stop request before
    /// the end gives [`SourceError::Interrupted`].
    fn run(&mut self, engine: &Engine, stop: &AtomicBool) -> Result<(), SourceError> {
        let counters = engine.counters(SourceKind::Bsm);
        engine
            .status()
            .set(SourceKind::Bsm, State::Active, self.reason());
        let mut last_status = Instant::now();
        let mut ended = false;
        while !stop.load(Ordering::Relaxed) {
            let n = match &mut self.input {
                Input::Trail(file) => file.reader(stop).read(&mut self.buf),
                #[cfg(target_os = "macos")]
                Input::Pipe(pipe) => pipe.read(&mut self.buf, Duration::from_millis(200)),
            };
            match n {
                Ok(0) if self.is_finite() => {
                    // End of the trail: whatever is left is a cut record.
                    self.reader.finish();
                    self.drain(engine, &counters);
                    ended = true;
                }
                Ok(n) => {
                    self.reader.push(self.buf.get(..n).unwrap_or_default());
                    self.drain(engine, &counters);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if replay::is_stopped(&e) => break,
                Err(e) => {
                    let why = format!("reading {} failed: {e}", self.label);
                    engine
                        .status()
                        .set(SourceKind::Bsm, State::Failed, why.clone());
                    return Err(SourceError::Failed(why));
                }
            }
            if let Some(why) = self.garbage_check() {
                engine
                    .status()
                    .set(SourceKind::Bsm, State::Failed, why.clone());
                return Err(SourceError::Failed(why));
            }
            if ended {
                break;
            }
            if last_status.elapsed() >= Duration::from_secs(1) {
                last_status = Instant::now();
                #[cfg(target_os = "macos")]
                if let Input::Pipe(pipe) = &self.input {
                    if let Ok(drops) = pipe.drops() {
                        let new = drops.saturating_sub(self.pipe_drops);
                        if new > 0 {
                            log::warn!("bsm: the audit pipe dropped {new} record(s)");
                            counters.drop_events(new);
                        }
                        self.pipe_drops = drops;
                    }
                }
                engine
                    .status()
                    .set(SourceKind::Bsm, State::Active, self.reason());
            }
        }
        match &self.input {
            Input::Trail(file) => self.trail_verdict(file, ended)?,
            #[cfg(target_os = "macos")]
            Input::Pipe(_) => {}
        }
        engine
            .status()
            .set(SourceKind::Bsm, State::Active, self.reason());
        Ok(())
    }
}

// Shared with the integration tests and benches, where its items must be `pub`.
#[cfg(test)]
#[allow(unreachable_pub, dead_code)]
#[path = "../../../tests/support/bsm.rs"]
mod test_bsm;

#[cfg(test)]
mod tests {
    use super::test_bsm::{garbage, real_trail};
    use super::*;

    /// Replays `bytes` with a garbage cap of `cap`: the outcome and the
    /// records read.
    fn replay(bytes: &[u8], cap: u64) -> (Result<(), SourceError>, u64) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("trail");
        std::fs::write(&path, bytes).unwrap();
        let engine = Engine::for_tests();
        let mut bsm = Bsm::trail(&path).unwrap().with_garbage_cap(cap);
        let result = bsm.run(&engine, &AtomicBool::new(false));
        (result, bsm.reader.stats().records)
    }

    const CAP: u64 = 100_000;
    const APPLE_RECORDS: u64 = 54;
    const OPENBSM_RECORDS: u64 = 50;

    #[test]
    fn garbage_below_the_cap_between_records_is_skipped() {
        let (apple, openbsm) = (real_trail("apple.bsm"), real_trail("openbsm.bsm"));
        let under = usize::try_from(CAP).unwrap() - 1000;
        let bytes = [
            &garbage(under, 1)[..],
            &apple,
            &garbage(under, 2),
            &openbsm,
            &garbage(under, 3),
            &apple,
        ]
        .concat();
        let (result, records) = replay(&bytes, CAP);
        result.unwrap();
        assert_eq!(records, 2 * APPLE_RECORDS + OPENBSM_RECORDS);
    }

    #[test]
    fn garbage_from_the_start_stops_the_replay() {
        let bytes = garbage(4 * usize::try_from(CAP).unwrap(), 4);
        let (result, records) = replay(&bytes, CAP);
        let why = result.unwrap_err().to_string();
        assert!(
            why.contains("no BSM record in the first 100000 bytes of"),
            "{why}"
        );
        assert_eq!(records, 0);
    }

    #[test]
    fn garbage_after_records_stops_the_replay_after_them() {
        let apple = real_trail("apple.bsm");
        let bytes = [
            &apple[..],
            &garbage(4 * usize::try_from(CAP).unwrap(), 5),
            &apple,
        ]
        .concat();
        let (result, records) = replay(&bytes, CAP);
        let why = result.unwrap_err().to_string();
        assert!(
            why.contains(&format!("after record {APPLE_RECORDS}: stopped reading")),
            "{why}"
        );
        // The records before the garbage were all handed on; none after.
        assert_eq!(records, APPLE_RECORDS);
    }
}
