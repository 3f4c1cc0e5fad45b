//! Source `eslogger`: exec events from Apple's Endpoint Security, read from
//! `/usr/bin/eslogger exec fork exit` (macOS 13+), or replayed from a file of
//! its output (`eslogger:FILE`, for tests and retro-hunting).
//!
//! eslogger writes one JSON object per ES notify message. It needs root and
//! Full Disk Access for the responsible process, but no entitlement of ours,
//! and ES copies argv into the message at exec time, so a `kcc` that lives a
//! millisecond is still seen whole.
//!
//! Apple documents the output as "NOT API". So the parser reads fields by
//! name, accepts both audit-token shapes seen so far (an object, and the
//! 8-integer array of message version 10), and keeps any exec whose pid and
//! path it found even if other fields are gone. Fields it could not read are
//! logged once each, counted in [`SchemaDrift`], and shown in the status
//! reason. Field paths and version history are in
//! shared/fixtures/eslogger/SCHEMA.md.
//!
//! Layout: `parse` is the full parse (serde_json, drift accounting, text
//! repair); `fast` the scanner that lets forks, exits and non-Kerberos execs
//! skip it; `process` the live eslogger child; `parents` the parent tracking.
//! This file drives replay and live reading and hands lines to them.

use crate::engine::{unix_now, Engine, Identity};
use crate::event::{CodeIdentity, ExecEvent, SourceKind};
use crate::sources::exec_cache::ExecCache;
use crate::sources::replay::{self, ReplayFile};
use crate::sources::SourceError;
use crate::sources::{sleep_unless_stopped, Source};
use crate::status::{Counters, State, StatusBoard};
use serde_json::Value;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Where macOS 13+ installs eslogger.
pub(crate) const ESLOGGER: &str = "/usr/bin/eslogger";
/// The event types asked for: exec for detection, fork so that a child can
/// name its parent, exit for completeness of the stream.
pub const ESLOGGER_ARGS: [&str; 3] = ["exec", "fork", "exit"];
/// Lines longer than this are dropped and counted instead of being buffered
/// without bound. argv plus environment are at most ARG_MAX (1 MiB on macOS),
/// so even with JSON escaping a real message stays far below it.
pub const MAX_LINE: usize = 16 << 20;

/// How long `live` watches a new eslogger for an early exit. When it cannot
/// create its ES client (not root, no Full Disk Access, macOS < 13), it exits
/// within milliseconds.
pub const EARLY_EXIT_WINDOW: Duration = Duration::from_millis(1500);
/// Time between SIGTERM and SIGKILL when stopping eslogger.
pub const TERM_GRACE: Duration = Duration::from_secs(2);
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// A child that ran this long was healthy: the next failure restarts after
/// the first backoff step again.
const BACKOFF_RESET_AFTER: Duration = Duration::from_secs(60);
/// How long one wait for a line lasts, so `stop` is noticed promptly.
const POLL: Duration = Duration::from_millis(100);
/// After eslogger itself has exited, lines still in the pipe are read for
/// this long; a descendant holding stdout open must not hide the exit.
const EXIT_DRAIN: Duration = Duration::from_millis(500);
/// How long a dead eslogger's stderr reader gets to reach end of stream.
const STDERR_DRAIN: Duration = Duration::from_millis(500);
/// The status reason changes at most this often.
const STATUS_EVERY: Duration = Duration::from_secs(1);
/// Lines queued between the stdout reader thread and the source thread.
const LINE_QUEUE: usize = 1024;
/// The end of eslogger's stderr kept for the status reason.
const STDERR_KEEP: usize = 4096;
/// stderr lines logged as warnings per eslogger process (then debug).
const STDERR_LOG_LINES: usize = 20;
/// Recent execs remembered for naming parents.
const EXEC_CACHE: usize = 8192;
/// The newest ES message version this parser was checked against (macOS 27
/// beta); newer ones are read the same way, with a note in the log.
const NEWEST_KNOWN_VERSION: i64 = 11;
/// `es_event_type_t` values (ESTypes.h), to recognise an event whose `event`
/// object is missing.
const EVENT_TYPE_EXEC: i64 = 9;
const EVENT_TYPE_FORK: i64 = 11;
const EVENT_TYPE_EXIT: i64 = 15;

const DESCRIPTION: &str = "eslogger (Endpoint Security, macOS 13+)";

mod fast;
mod parents;
mod parse;
mod process;
#[cfg(test)]
mod tests;

use fast::{FastKind, FastLine};
pub use parse::*;
use process::*;

/// The normalized event for an exec. `parent` is the parent's path and
/// command line when known (from the exec cache). eslogger gives no hash of
/// the file, so `sha256` stays empty; its cdhash has no column.
pub fn to_exec_event(ex: &EsExec, parent: Option<(Vec<u8>, Vec<u8>)>) -> ExecEvent {
    let (parent_path, parent_argv) = match parent {
        Some((path, cmdline)) => (Some(path), (!cmdline.is_empty()).then(|| vec![cmdline])),
        None => (None, None),
    };
    ExecEvent {
        time: ex.time,
        time_nanos: ex.time_nanos,
        pid: ex.pid,
        ppid: ex.ppid.or(ex.original_ppid).unwrap_or(0),
        path: ex.path.as_bytes().to_vec(),
        argv: ex
            .args
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|a| a.as_bytes().to_vec())
            .collect(),
        cwd: ex.cwd.as_ref().map(|c| c.as_bytes().to_vec()),
        uid: ex.uid,
        euid: ex.euid,
        gid: ex.gid,
        egid: ex.egid,
        auid: crate::event::known_auid(ex.auid),
        parent_path,
        parent_argv,
        code: CodeIdentity {
            signing_id: ex.signing_id.clone(),
            team_id: ex.team_id.clone(),
            platform_binary: ex.platform_binary,
            sha256: String::new(),
        },
        source: SourceKind::Eslogger,
        // (pid, pidversion) names one execution; the time is the fallback.
        // The pid version is never negative; `as` keeps any value distinct.
        discriminator: ex.pidversion.map_or(u64::from(ex.time_nanos), |v| v as u64),
        incomplete: ex.args.is_none() || ex.path_truncated,
        krb5ccname: ex.krb5ccname.as_ref().map(|c| c.as_bytes().to_vec()),
    }
}

// --- reading lines ---------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineRead {
    Eof,
    /// A line is in the buffer (without its newline).
    Line,
    /// A line longer than the cap was skipped.
    TooLong,
}

/// Reads one line into `buf`, at most `max` bytes of it; a longer line is
/// consumed and reported as `TooLong`, so memory stays bounded.
fn read_line_capped<R: BufRead>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> io::Result<LineRead> {
    buf.clear();
    let mut any = false;
    let mut too_long = false;
    loop {
        let chunk = match reader.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            return Ok(match (any, too_long) {
                (false, _) => LineRead::Eof,
                (true, true) => LineRead::TooLong,
                (true, false) => LineRead::Line,
            });
        }
        any = true;
        let newline = memchr::memchr(b'\n', chunk);
        let used = newline.map_or(chunk.len(), |i| i + 1);
        let part = chunk.get(..newline.unwrap_or(chunk.len())).unwrap_or(chunk);
        if !too_long {
            if buf.len() + part.len() > max {
                too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(part);
            }
        }
        reader.consume(used);
        if newline.is_some() {
            return Ok(if too_long {
                LineRead::TooLong
            } else {
                LineRead::Line
            });
        }
    }
}

// --- the eslogger process --------------------------------------------------
enum Input {
    /// The file is taken out while `run` reads it.
    Replay {
        path: PathBuf,
        file: Option<ReplayFile>,
    },
    Live(Live),
}

/// The `eslogger` source: a live eslogger process, or a file of its output.
pub struct Eslogger {
    input: Input,
    cache: ExecCache,
    drift: SchemaDrift,
    version: Option<i64>,
    last_seq: Option<u64>,
    /// Events ES dropped, from gaps in `global_seq_num`.
    lost: u64,
    /// How many gaps: the warning is logged at powers of two of it.
    gaps: u64,
    /// Non-empty lines read.
    lines: u64,
    /// Lines that were ES messages (of any type, usable or not).
    messages: u64,
    restarts: u64,
    line: Vec<u8>,
    /// The fast reader's fields, reused from line to line.
    fast: FastLine,
    /// Whether lines go through the fast reader first (see `fast`).
    fast_path: bool,
    scratch_path: Vec<u8>,
    scratch_cmdline: Vec<u8>,
}

impl Eslogger {
    fn with_input(input: Input) -> Eslogger {
        Eslogger {
            input,
            cache: ExecCache::new(EXEC_CACHE),
            drift: SchemaDrift::default(),
            version: None,
            last_seq: None,
            lost: 0,
            gaps: 0,
            lines: 0,
            messages: 0,
            restarts: 0,
            line: Vec::new(),
            fast: FastLine::new(),
            fast_path: true,
            scratch_path: Vec::new(),
            scratch_cmdline: Vec::new(),
        }
    }

    /// Reads eslogger JSON lines from a file, FIFO or device
    /// (`eslogger:FILE`); opening never waits. The error is a reason for the
    /// status table.
    pub fn replay(path: &Path) -> Result<Eslogger, SourceError> {
        let file = ReplayFile::open(path, "eslogger file")?;
        Ok(Eslogger::with_input(Input::Replay {
            path: path.to_path_buf(),
            file: Some(file),
        }))
    }

    /// Starts `/usr/bin/eslogger exec fork exit`.
    pub fn live() -> Result<Eslogger, SourceError> {
        Eslogger::live_with(Path::new(ESLOGGER), &ESLOGGER_ARGS)
    }

    /// Starts `program args…` in eslogger's place and watches it for 1.5 s:
    /// if it exits by then, what it wrote on stderr becomes the error (the
    /// status reason).
    pub fn live_with(program: &Path, args: &[&str]) -> Result<Eslogger, SourceError> {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        let mut proc = EsloggerProcess::spawn(program, &args)?;
        let deadline = Instant::now() + EARLY_EXIT_WINDOW;
        while Instant::now() < deadline {
            if let Some(status) = proc.exited() {
                let stderr = proc.stderr_text();
                let mut why = exit_reason(program, "exited at start", Some(status), &stderr);
                if stderr.is_empty() {
                    why.push_str(&format!(" ({HINT_SILENT})"));
                }
                return Err(SourceError::Unavailable(why));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        proc.confirmed = true;
        Ok(Eslogger::with_input(Input::Live(Live {
            program: program.to_path_buf(),
            args,
            child: Some(proc),
            first_backoff: BACKOFF_FIRST,
            max_backoff: BACKOFF_MAX,
            backoff: BACKOFF_FIRST,
            failure: None,
        })))
    }

    /// Sets the restart delays (doubling from `first` up to `max`); the
    /// defaults are 1 s and 60 s.
    pub fn with_restart_backoff(mut self, first: Duration, max: Duration) -> Eslogger {
        if let Input::Live(live) = &mut self.input {
            live.first_backoff = first;
            live.max_backoff = max.max(first);
            live.backoff = first;
        }
        self
    }

    /// Turns the fast reader off or on (on by default). For tests and
    /// benches, which compare the two paths; the results are the same.
    pub fn with_fast_path(mut self, on: bool) -> Eslogger {
        self.fast_path = on;
        self
    }

    /// Handles one line of eslogger output as the source does. Public for
    /// benches and the allocation test.
    pub fn feed_line(&mut self, line: &[u8], engine: &Engine, counters: &Counters) {
        self.handle_line(line, engine, counters);
    }

    /// What could not be read so far.
    pub fn drift(&self) -> &SchemaDrift {
        &self.drift
    }

    /// How many times eslogger was started again after dying.
    pub fn restarts(&self) -> u64 {
        self.restarts
    }

    /// Events Endpoint Security dropped, from sequence-number gaps.
    pub fn lost_events(&self) -> u64 {
        self.lost
    }

    /// The ES message version of the latest message.
    pub fn message_version(&self) -> Option<i64> {
        self.version
    }

    /// The running eslogger's pid.
    pub fn child_pid(&self) -> Option<u32> {
        match &self.input {
            Input::Live(live) => live.child.as_ref().map(EsloggerProcess::pid),
            Input::Replay { .. } => None,
        }
    }

    /// The status reason as of now.
    pub fn reason(&self) -> String {
        let mut reason = match &self.input {
            Input::Replay { path, .. } => format!(
                "eslogger replay of {}: {} line(s) read",
                path.display(),
                self.lines
            ),
            Input::Live(live) => match &live.child {
                Some(p) => format!("{DESCRIPTION}: pid {}", p.pid()),
                None => format!("{DESCRIPTION}: not running"),
            },
        };
        if let Some(v) = self.version {
            reason.push_str(&format!(", message version {v}"));
        }
        if self.restarts > 0 {
            reason.push_str(&format!("; restarted {} time(s)", self.restarts));
        }
        if self.lost > 0 {
            reason.push_str(&format!(
                "; Endpoint Security dropped {} event(s) (sequence gaps)",
                self.lost
            ));
        }
        if let Some(d) = self.drift.summary() {
            reason.push_str("; ");
            reason.push_str(&d);
        }
        reason
    }

    /// What the status reason is made of, to refresh it only on change.
    fn status_key(&self) -> (Option<i64>, u64, u64, u64) {
        (self.version, self.restarts, self.lost, self.drift.total())
    }

    /// One line of output: parsed, counted, and handed on.
    fn handle_line(&mut self, line: &[u8], engine: &Engine, counters: &Counters) {
        let line = line.trim_ascii();
        if line.is_empty() {
            return;
        }
        self.lines += 1;
        if self.fast_path && self.handle_fast(line, counters) {
            return;
        }
        let parsed = parse_message(line);
        if matches!(
            parsed,
            Ok((_, Parsed::Event(_) | Parsed::OtherEvent)) | Err(EsParseError::Unusable { .. })
        ) {
            self.messages += 1;
        }
        match parsed {
            Ok((_, Parsed::Event(event))) => {
                self.note_envelope(event.envelope(), counters);
                match event {
                    EsEvent::Exec(ex) => self.on_exec(ex, engine, counters),
                    EsEvent::Fork {
                        parent_pid,
                        parent_path,
                        child_pid,
                        ..
                    } => self.on_fork(
                        parent_pid,
                        parent_path.as_deref().map(str::as_bytes),
                        child_pid,
                    ),
                    EsEvent::Exit { .. } => {}
                }
            }
            Ok((envelope, Parsed::OtherEvent)) => self.note_envelope(&envelope, counters),
            Ok((_, Parsed::Foreign)) => {
                self.drift.not_eslogger += 1;
                counters.drop_events(1);
            }
            Err(EsParseError::NotJson(_) | EsParseError::NotAnObject) => {
                // Each line is meant to be one event: count it as lost.
                self.drift.not_json += 1;
                counters.drop_events(1);
            }
            Err(EsParseError::Unusable { field, .. }) => {
                self.drift.unusable += 1;
                let mut set = FieldSet::default();
                set.insert(field);
                self.drift.note(set);
                counters.drop_events(1);
            }
        }
    }

    /// The fast reader's share of [`Eslogger::handle_line`]: a fork, an exit
    /// or an exec the classifier rejects, read without the full parse. True
    /// when the line was handled; false sends it to the full parse (the
    /// reader was unsure, or the exec must reach the engine).
    fn handle_fast(&mut self, line: &[u8], counters: &Counters) -> bool {
        let Ok(kind) = self.fast.scan(line) else {
            return false;
        };
        let f = &self.fast;
        if kind == FastKind::Exec {
            let Ok(signing_id) = std::str::from_utf8(&f.signing_id) else {
                return false;
            };
            let identity = Identity {
                signing_id,
                uid: Some(f.uid),
                euid: Some(f.euid),
                krb5ccname: f.krb5ccname(),
                ..Identity::UNKNOWN
            };
            if Engine::wants(&f.path, f.args(), &identity) {
                return false;
            }
        }
        self.messages += 1;
        let envelope = Envelope {
            version: Some(f.version),
            global_seq_num: Some(f.global_seq_num),
            ..Envelope::default()
        };
        self.note_envelope(&envelope, counters);
        match kind {
            FastKind::Exec => {
                counters.saw(self.fast.time);
                self.cache
                    .record(self.fast.pid, &self.fast.path, self.fast.args());
            }
            FastKind::Fork => {
                // Taken out and put back: on_fork borrows self whole.
                let path = std::mem::take(&mut self.fast.parent_path);
                self.on_fork(Some(self.fast.parent_pid), Some(&path), self.fast.child_pid);
                self.fast.parent_path = path;
            }
            FastKind::Exit => {}
        }
        true
    }

    fn on_too_long(&mut self, counters: &Counters) {
        self.lines += 1;
        self.drift.oversized += 1;
        counters.drop_events(1);
        warn_once(WARN_OVERSIZED, || {
            format!("eslogger wrote a line over {} MiB; dropped", MAX_LINE >> 20)
        });
    }

    fn note_envelope(&mut self, envelope: &Envelope, counters: &Counters) {
        self.drift.note(envelope.drift);
        if envelope.repaired {
            self.drift.repaired += 1;
        }
        if envelope.version.is_some() {
            self.version = envelope.version;
        }
        if let Some(seq) = envelope.global_seq_num {
            if let Some(last) = self.last_seq {
                if seq > last.saturating_add(1) {
                    let gap = seq - last - 1;
                    self.lost += gap;
                    self.gaps += 1;
                    counters.drop_events(gap);
                    if self.gaps.is_power_of_two() {
                        log::warn!(
                            "eslogger: Endpoint Security dropped {gap} event(s) \
                             (sequence {last} to {seq}; {} lost so far)",
                            self.lost
                        );
                    }
                }
                // A lower number: a new eslogger (or a file of several runs)
                // started counting again.
            }
            self.last_seq = Some(seq);
        }
    }

    /// Every exec is cached for naming parents, and counted; only
    /// Kerberos-related ones become events (and allocate).
    fn on_exec(&mut self, mut ex: EsExec, engine: &Engine, counters: &Counters) {
        if ex.envelope.drift.contains(Field::Time) {
            // Better a receipt time than 1970: retention works on it.
            ex.time = unix_now();
            ex.time_nanos = 0;
        }
        let args: &[String] = ex.args.as_deref().unwrap_or_default();
        // The signing id is known here, so a renamed kcc doing anything is
        // kept, not only one with a suspicious argv.
        let identity = Identity {
            signing_id: &ex.signing_id,
            uid: ex.uid,
            euid: ex.euid,
            krb5ccname: ex.krb5ccname.as_deref().map(str::as_bytes),
            ..Identity::UNKNOWN
        };
        if !Engine::wants(ex.path.as_bytes(), args, &identity) {
            counters.saw(ex.time);
            self.cache.record(ex.pid, ex.path.as_bytes(), args);
            return;
        }
        let parent = ex.ppid.and_then(|ppid| self.parent_of(ppid));
        let event = to_exec_event(&ex, parent);
        engine.ingest(&event, counters);
        self.cache.record(ex.pid, ex.path.as_bytes(), args);
    }

    /// Reads the file to its end. Fails when it cannot be read, is empty,
    /// or holds no eslogger message (a replay that finds nothing must be
    /// told apart from one that read something else); a stop request before
    /// the end gives [`SourceError::Interrupted`].
    fn run_replay(&mut self, engine: &Engine, stop: &AtomicBool) -> Result<(), SourceError> {
        let Input::Replay { path, file } = &mut self.input else {
            return Ok(());
        };
        let path = path.clone();
        let Some(mut file) = file.take() else {
            return Err(SourceError::Failed(format!(
                "eslogger replay of {} already ran",
                path.display()
            )));
        };
        let mut reader = BufReader::with_capacity(256 << 10, file.reader(stop));
        let result = self.replay_lines(&mut reader, &path, engine);
        drop(reader);
        result?;
        if file.bytes() == 0 {
            return Err(SourceError::Empty {
                what: "eslogger file",
                path,
            });
        }
        if self.messages == 0 {
            return Err(SourceError::Failed(format!(
                "no eslogger JSON in {}: {} line(s), none an eslogger message",
                path.display(),
                self.lines
            )));
        }
        engine.status().set(
            SourceKind::Eslogger,
            State::Active,
            format!("{} (finished)", self.reason()),
        );
        Ok(())
    }

    /// Handles every line of `reader`. A read error ends the replay with an
    /// error, even mid-file: what was read before it is kept, but the replay
    /// is incomplete.
    fn replay_lines<R: BufRead>(
        &mut self,
        reader: &mut R,
        path: &Path,
        engine: &Engine,
    ) -> Result<(), SourceError> {
        let board = engine.status();
        let counters = board.set(SourceKind::Eslogger, State::Active, self.reason());
        let mut reported = self.status_key();
        let mut last_status = Instant::now();
        let mut line = std::mem::take(&mut self.line);
        let result = loop {
            match read_line_capped(reader, &mut line, MAX_LINE) {
                Ok(LineRead::Eof) => break Ok(()),
                Ok(LineRead::TooLong) => self.on_too_long(&counters),
                Ok(LineRead::Line) => self.handle_line(&line, engine, &counters),
                Err(e) if replay::is_stopped(&e) => {
                    break Err(SourceError::Interrupted(format!(
                        "eslogger replay of {} stopped before its end ({} line(s) read)",
                        path.display(),
                        self.lines
                    )))
                }
                Err(e) => {
                    break Err(SourceError::Failed(format!(
                        "reading eslogger file {} failed after {} line(s): {e}",
                        path.display(),
                        self.lines
                    )))
                }
            }
            if self.status_key() != reported && last_status.elapsed() >= STATUS_EVERY {
                board.set(SourceKind::Eslogger, State::Active, self.reason());
                reported = self.status_key();
                last_status = Instant::now();
            }
        };
        self.line = line;
        result
    }

    fn run_live(&mut self, engine: &Engine, stop: &AtomicBool) -> Result<(), SourceError> {
        let board = engine.status();
        let counters = board.set(SourceKind::Eslogger, State::Active, self.reason());
        let mut reported = self.status_key();
        let mut last_status = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            let Input::Live(live) = &mut self.input else {
                break;
            };
            let Some(proc) = live.child.as_mut() else {
                // Not running: wait out the backoff, then start it again.
                let delay = live.take_backoff();
                if !sleep_unless_stopped(delay, stop) {
                    break;
                }
                self.restart(board);
                continue;
            };
            let got_line = match proc.poll(POLL) {
                Poll::Line(LineMsg::Line(line)) => {
                    self.handle_line(&line, engine, &counters);
                    true
                }
                Poll::Line(LineMsg::TooLong) => {
                    self.on_too_long(&counters);
                    true
                }
                Poll::Idle => false,
                Poll::Gone => {
                    self.on_death(board);
                    continue;
                }
            };
            if self.confirm_if_due(got_line) {
                board.set(SourceKind::Eslogger, State::Active, self.reason());
                reported = self.status_key();
            }
            if self.status_key() != reported
                && last_status.elapsed() >= STATUS_EVERY
                && self.failure().is_none()
            {
                board.set(SourceKind::Eslogger, State::Active, self.reason());
                reported = self.status_key();
                last_status = Instant::now();
            }
        }
        if let Input::Live(live) = &mut self.input {
            if let Some(mut proc) = live.child.take() {
                proc.terminate();
            }
        }
        Ok(())
    }

    fn failure(&self) -> Option<&str> {
        match &self.input {
            Input::Live(live) => live.failure.as_deref(),
            Input::Replay { .. } => None,
        }
    }

    /// Marks a restarted eslogger as running once it has shown it is: a line
    /// read, or the early-exit window passed. True when it just did.
    fn confirm_if_due(&mut self, got_line: bool) -> bool {
        let Input::Live(live) = &mut self.input else {
            return false;
        };
        let Some(proc) = live.child.as_mut() else {
            return false;
        };
        if proc.confirmed || proc.exited_at.is_some() {
            return false;
        }
        if got_line || proc.started.elapsed() >= EARLY_EXIT_WINDOW {
            proc.confirmed = true;
            live.failure = None;
            return true;
        }
        false
    }

    /// eslogger exited or closed its output: reap it, say why, and schedule
    /// a restart.
    fn on_death(&mut self, board: &StatusBoard) {
        let Input::Live(live) = &mut self.input else {
            return;
        };
        let Some(mut proc) = live.child.take() else {
            return;
        };
        let pid = proc.pid();
        // Normally already gone; if it only closed stdout, it is stopped here.
        let status = proc.terminate();
        let stderr = proc.stderr_text();
        if proc.started.elapsed() >= BACKOFF_RESET_AFTER {
            live.backoff = live.first_backoff;
        }
        drop(proc);
        let why = format!(
            "{}; restarting in {} (restart {})",
            exit_reason(
                &live.program,
                &format!("(pid {pid}) exited"),
                status,
                &stderr
            ),
            fmt_duration(live.backoff),
            self.restarts + 1
        );
        live.failure = Some(why.clone());
        board.set(SourceKind::Eslogger, State::Failed, why);
        // A new eslogger numbers its messages from scratch.
        self.last_seq = None;
    }

    fn restart(&mut self, board: &StatusBoard) {
        let Input::Live(live) = &mut self.input else {
            return;
        };
        match EsloggerProcess::spawn(&live.program, &live.args) {
            Ok(proc) => {
                log::info!(
                    "eslogger: restarted {} (pid {})",
                    live.program.display(),
                    proc.pid()
                );
                live.child = Some(proc);
                self.restarts += 1;
            }
            Err(why) => {
                let why = format!("{why}; next attempt in {}", fmt_duration(live.backoff));
                live.failure = Some(why.clone());
                board.set(SourceKind::Eslogger, State::Failed, why);
            }
        }
    }
}

impl Source for Eslogger {
    fn kind(&self) -> SourceKind {
        SourceKind::Eslogger
    }

    fn run(&mut self, engine: &Engine, stop: &AtomicBool) -> Result<(), SourceError> {
        match self.input {
            Input::Replay { .. } => self.run_replay(engine, stop),
            Input::Live(_) => self.run_live(engine, stop),
        }
    }

    fn is_finite(&self) -> bool {
        matches!(self.input, Input::Replay { .. })
    }
}
