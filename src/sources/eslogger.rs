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

use crate::classify::{classify_with, Identity};
use crate::engine::{unix_now, Engine};
use crate::event::{CodeIdentity, ExecEvent, SourceKind};
use crate::sources::exec_cache::ExecCache;
use crate::sources::replay::{self, Interrupted, ReplayFile};
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
pub const ESLOGGER: &str = "/usr/bin/eslogger";
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
const EARLY_EXIT_WINDOW: Duration = Duration::from_millis(1500);
/// Time between SIGTERM and SIGKILL when stopping eslogger.
const TERM_GRACE: Duration = Duration::from_secs(2);
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

// --- what the parser reports ---------------------------------------------

/// A JSON field the parser reads; used to report schema drift.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Field {
    Version,
    Time,
    GlobalSeqNum,
    Event,
    ExecTarget,
    ExecPath,
    ExecPathTruncated,
    ExecAuditToken,
    ExecArgs,
    ExecCwd,
    ExecPpid,
    ExecOriginalPpid,
    ExecSigningId,
    ExecTeamId,
    ExecPlatformBinary,
    ExecCdhash,
    ProcessAuditToken,
    ProcessPath,
    ForkChild,
    ForkChildAuditToken,
    ExitStat,
}

impl Field {
    pub const ALL: [Field; 21] = [
        Field::Version,
        Field::Time,
        Field::GlobalSeqNum,
        Field::Event,
        Field::ExecTarget,
        Field::ExecPath,
        Field::ExecPathTruncated,
        Field::ExecAuditToken,
        Field::ExecArgs,
        Field::ExecCwd,
        Field::ExecPpid,
        Field::ExecOriginalPpid,
        Field::ExecSigningId,
        Field::ExecTeamId,
        Field::ExecPlatformBinary,
        Field::ExecCdhash,
        Field::ProcessAuditToken,
        Field::ProcessPath,
        Field::ForkChild,
        Field::ForkChildAuditToken,
        Field::ExitStat,
    ];

    /// The field's JSON path in eslogger's output.
    pub fn path(self) -> &'static str {
        match self {
            Field::Version => "version",
            Field::Time => "time",
            Field::GlobalSeqNum => "global_seq_num",
            Field::Event => "event",
            Field::ExecTarget => "event.exec.target",
            Field::ExecPath => "event.exec.target.executable.path",
            Field::ExecPathTruncated => "event.exec.target.executable.path_truncated",
            Field::ExecAuditToken => "event.exec.target.audit_token",
            Field::ExecArgs => "event.exec.args",
            Field::ExecCwd => "event.exec.cwd.path",
            Field::ExecPpid => "event.exec.target.ppid",
            Field::ExecOriginalPpid => "event.exec.target.original_ppid",
            Field::ExecSigningId => "event.exec.target.signing_id",
            Field::ExecTeamId => "event.exec.target.team_id",
            Field::ExecPlatformBinary => "event.exec.target.is_platform_binary",
            Field::ExecCdhash => "event.exec.target.cdhash",
            Field::ProcessAuditToken => "process.audit_token",
            Field::ProcessPath => "process.executable.path",
            Field::ForkChild => "event.fork.child",
            Field::ForkChildAuditToken => "event.fork.child.audit_token",
            Field::ExitStat => "event.exit.stat",
        }
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.path())
    }
}

/// A set of [`Field`]s: the ones one message lacked or had in another type.
/// A bit set, so noting drift on the hot path does not allocate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FieldSet(u32);

impl FieldSet {
    pub fn insert(&mut self, field: Field) {
        self.0 |= field.bit();
    }

    pub fn contains(self, field: Field) -> bool {
        self.0 & field.bit() != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Field> {
        Field::ALL.into_iter().filter(move |f| self.contains(*f))
    }
}

/// What every message carries besides its event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Envelope {
    /// ES message version (`.version`): it decides which fields exist.
    pub version: Option<i64>,
    /// eslogger's sequence number over all event types it subscribed to; a
    /// gap means ES dropped events for it.
    pub global_seq_num: Option<u64>,
    /// Fields that were absent or of an unexpected type.
    pub drift: FieldSet,
    /// The line held invalid UTF-8 or an unpaired UTF-16 surrogate escape;
    /// they were replaced by U+FFFD before parsing.
    pub repaired: bool,
}

/// An audit token's fields (`audit_token_t.val[]`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuditToken {
    pub auid: Option<i64>,
    pub euid: Option<i64>,
    pub egid: Option<i64>,
    pub ruid: Option<i64>,
    pub rgid: Option<i64>,
    pub pid: Option<i64>,
    pub asid: Option<i64>,
    pub pidversion: Option<i64>,
}

impl AuditToken {
    fn is_complete(&self) -> bool {
        [
            self.auid,
            self.euid,
            self.egid,
            self.ruid,
            self.rgid,
            self.pid,
            self.asid,
            self.pidversion,
        ]
        .iter()
        .all(Option::is_some)
    }
}

/// The token's keys in `audit_token_t.val[]` order, which is also the order
/// of eslogger's array form (message version 10, macOS 26): libbsm's
/// `audit_token_to_au32` reads val[0..8] as auid, euid, egid, ruid, rgid,
/// pid, asid, and the pid version (SCHEMA.md §4).
const TOKEN_KEYS: [&str; 8] = [
    "auid",
    "euid",
    "egid",
    "ruid",
    "rgid",
    "pid",
    "asid",
    "pidversion",
];

/// Reads an audit token in either shape: an object with named fields, or an
/// array of exactly 8 integers. Any other shape gives `None`: an array of
/// another length cannot be mapped to fields safely.
pub fn parse_audit_token(value: &Value) -> Option<AuditToken> {
    let mut vals = [None; 8];
    match value {
        Value::Object(map) => {
            for (slot, key) in vals.iter_mut().zip(TOKEN_KEYS) {
                *slot = map.get(key).and_then(Value::as_i64);
            }
        }
        Value::Array(items) if items.len() == TOKEN_KEYS.len() => {
            for (slot, item) in vals.iter_mut().zip(items) {
                *slot = item.as_i64();
            }
        }
        _ => return None,
    }
    let [auid, euid, egid, ruid, rgid, pid, asid, pidversion] = vals;
    Some(AuditToken {
        auid: id32(auid),
        euid: id32(euid),
        egid: id32(egid),
        ruid: id32(ruid),
        rgid: id32(rgid),
        pid,
        asid,
        pidversion,
    })
}

/// uid_t/gid_t are unsigned 32-bit: eslogger writes "unset" (AU_DEFAUDITID)
/// as 4294967295. Should a version write them signed, map -1 to the same.
fn id32(v: Option<i64>) -> Option<i64> {
    v.map(|n| {
        if (-(1i64 << 31)..0).contains(&n) {
            n + (1i64 << 32)
        } else {
            n
        }
    })
}

/// One exec, as eslogger reported it. Values are the exec's target (the new
/// image), not `.process` (the image that called exec).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EsExec {
    pub envelope: Envelope,
    /// `.time` as unix seconds and nanoseconds; (0, 0) when unreadable (then
    /// `envelope.drift` has [`Field::Time`]).
    pub time: i64,
    pub time_nanos: u32,
    pub pid: i64,
    /// The target's pid version: with the pid, it names this one execution.
    pub pidversion: Option<i64>,
    /// Parent pid at exec time.
    pub ppid: Option<i64>,
    /// Parent pid at process creation (unchanged by reparenting).
    pub original_ppid: Option<i64>,
    pub path: String,
    /// ES cut the path (over about 16 KiB).
    pub path_truncated: bool,
    /// argv, `argv[0]` first; `None` when the message had none.
    pub args: Option<Vec<String>>,
    pub cwd: Option<String>,
    pub uid: Option<i64>,
    pub euid: Option<i64>,
    pub gid: Option<i64>,
    pub egid: Option<i64>,
    pub auid: Option<i64>,
    pub signing_id: String,
    /// "" for platform binaries and ad-hoc code (eslogger writes null).
    pub team_id: String,
    pub platform_binary: Option<bool>,
    /// Code directory hash, 40 hex digits.
    pub cdhash: String,
    /// `KRB5CCNAME` from the exec's environment, when set; the only
    /// variable kept.
    pub krb5ccname: Option<String>,
}

/// An eslogger message this source uses.
// Exec is the common variant; boxing it would cost an allocation per exec.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EsEvent {
    Exec(EsExec),
    /// `parent_pid` forked `child_pid`; the child runs the parent's image.
    Fork {
        envelope: Envelope,
        parent_pid: Option<i64>,
        parent_path: Option<String>,
        child_pid: i64,
    },
    /// `stat` is the wait(2) status word, not an exit code.
    Exit {
        envelope: Envelope,
        pid: i64,
        stat: Option<i64>,
    },
}

impl EsEvent {
    pub fn envelope(&self) -> &Envelope {
        match self {
            EsEvent::Exec(e) => &e.envelope,
            EsEvent::Fork { envelope, .. } | EsEvent::Exit { envelope, .. } => envelope,
        }
    }
}

/// Why a line gave no event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EsParseError {
    /// Not JSON, even after repairing its encoding (serde_json's message).
    NotJson(String),
    /// JSON, but not an object.
    NotAnObject,
    /// An exec, fork or exit without what identifies it (pid, path).
    Unusable { event: &'static str, field: Field },
}

impl fmt::Display for EsParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EsParseError::NotJson(e) => write!(f, "not JSON: {e}"),
            EsParseError::NotAnObject => f.write_str("JSON, but not an object"),
            EsParseError::Unusable { event, field } => {
                write!(f, "{event} event without a usable {field}")
            }
        }
    }
}

impl std::error::Error for EsParseError {}

/// What a source could not read, for the status reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchemaDrift {
    /// Lines that were not a JSON object.
    pub not_json: u64,
    /// JSON objects that are not ES messages (neither an `event` object nor
    /// an integer `event_type`): a file of something else.
    pub not_eslogger: u64,
    /// Lines over [`MAX_LINE`], dropped.
    pub oversized: u64,
    /// Lines parsed only after replacing invalid UTF-8 or unpaired surrogate
    /// escapes.
    pub repaired: u64,
    /// Exec, fork or exit messages dropped for lack of a pid or path.
    pub unusable: u64,
    /// Per field path: messages where it was absent or of another type.
    pub fields: BTreeMap<&'static str, u64>,
}

impl SchemaDrift {
    pub fn note(&mut self, drift: FieldSet) {
        for f in drift.iter() {
            *self.fields.entry(f.path()).or_default() += 1;
        }
    }

    pub fn count(&self, field: Field) -> u64 {
        self.fields.get(field.path()).copied().unwrap_or(0)
    }

    /// Everything counted; 0 when the output looked as expected.
    pub fn total(&self) -> u64 {
        self.not_json
            + self.not_eslogger
            + self.oversized
            + self.repaired
            + self.unusable
            + self.fields.values().sum::<u64>()
    }

    /// A short account for the status reason; `None` when nothing drifted.
    pub fn summary(&self) -> Option<String> {
        let mut parts = Vec::new();
        if self.not_json > 0 {
            parts.push(format!("{} non-JSON line(s)", self.not_json));
        }
        if self.not_eslogger > 0 {
            parts.push(format!(
                "{} JSON line(s) that are not eslogger messages",
                self.not_eslogger
            ));
        }
        if self.oversized > 0 {
            parts.push(format!(
                "{} line(s) over {} MiB dropped",
                self.oversized,
                MAX_LINE >> 20
            ));
        }
        if self.unusable > 0 {
            parts.push(format!(
                "{} event(s) without pid or path dropped",
                self.unusable
            ));
        }
        if self.repaired > 0 {
            parts.push(format!(
                "{} line(s) with invalid text repaired",
                self.repaired
            ));
        }
        for (path, n) in &self.fields {
            parts.push(format!("{path} missing or changed in {n}"));
        }
        if parts.is_empty() {
            None
        } else {
            Some(format!("schema drift: {}", parts.join(", ")))
        }
    }
}

// --- log once ------------------------------------------------------------

/// Warnings already logged in this process, one bit each: the fields' bits
/// (0..21) and the ones below. Process-wide, because an output change hits
/// every source instance alike; atomic, so the check costs no lock.
static WARNED: AtomicU32 = AtomicU32::new(0);
const WARN_OVERSIZED: u32 = 1 << 27;
#[cfg(test)]
const WARN_TEST: u32 = 1 << 28;
const WARN_NOT_JSON: u32 = 1 << 29;
const WARN_REPAIRED: u32 = 1 << 30;
const WARN_VERSION: u32 = 1 << 31;

/// Logs `message` the first time `bit` is seen; true if it logged.
fn warn_once(bit: u32, message: impl FnOnce() -> String) -> bool {
    if WARNED.load(Ordering::Relaxed) & bit != 0 {
        return false;
    }
    if WARNED.fetch_or(bit, Ordering::Relaxed) & bit != 0 {
        return false;
    }
    log::warn!("{} (logged once)", message());
    true
}

fn warn_drift(envelope: &Envelope) {
    let version = envelope
        .version
        .map_or_else(|| "unknown".to_string(), |v| v.to_string());
    for field in envelope.drift.iter() {
        warn_once(field.bit(), || {
            format!(
                "eslogger output changed: {field} is missing or has an unexpected type \
                 (message version {version}); events are kept without it"
            )
        });
    }
    if envelope.repaired {
        warn_once(WARN_REPAIRED, || {
            "eslogger wrote invalid UTF-8 or an unpaired surrogate escape; \
             replaced by U+FFFD"
                .to_string()
        });
    }
}

// --- parsing ---------------------------------------------------------------

/// Parses one line of eslogger output. Exec, fork and exit messages give an
/// event; other event types give `Ok(None)`. Missing or changed fields do not
/// fail the line: they are listed in the event's `envelope.drift` (and logged
/// once per field). Only a message without pid or path is an error.
pub fn parse_line(line: &[u8]) -> Result<Option<EsEvent>, EsParseError> {
    parse_message(line).map(|(_, parsed)| match parsed {
        Parsed::Event(event) => Some(event),
        Parsed::OtherEvent | Parsed::Foreign => None,
    })
}

/// What a JSON object turned out to be.
// Same as EsEvent: the event is the common case, boxing it would allocate.
#[allow(clippy::large_enum_variant)]
enum Parsed {
    Event(EsEvent),
    /// An ES message of a type this source does not use.
    OtherEvent,
    /// Not an ES message at all: no `event` object, no integer `event_type`.
    Foreign,
}

/// [`parse_line`], plus the envelope of messages of other types (their
/// sequence numbers count too when looking for gaps), and whether the object
/// was an ES message at all (a replay of some other JSON is an error).
fn parse_message(line: &[u8]) -> Result<(Envelope, Parsed), EsParseError> {
    let (mut root, repaired) = match serde_json::from_slice::<Value>(line) {
        Ok(v) => (v, false),
        Err(first) => match repair(line).and_then(|t| serde_json::from_str::<Value>(&t).ok()) {
            Some(v) => (v, true),
            None => {
                warn_once(WARN_NOT_JSON, || {
                    format!(
                        "eslogger wrote a line that is not JSON ({first}): {}",
                        preview(line)
                    )
                });
                return Err(EsParseError::NotJson(first.to_string()));
            }
        },
    };
    if !root.is_object() {
        warn_once(WARN_NOT_JSON, || {
            format!(
                "eslogger wrote JSON that is not an object: {}",
                preview(line)
            )
        });
        return Err(EsParseError::NotAnObject);
    }

    let mut envelope = Envelope {
        repaired,
        ..Envelope::default()
    };
    envelope.version = root.get("version").and_then(Value::as_i64);
    if envelope.version.is_none() {
        envelope.drift.insert(Field::Version);
    }
    if let Some(v) = envelope.version.filter(|&v| v > NEWEST_KNOWN_VERSION) {
        warn_once(WARN_VERSION, || {
            format!(
                "eslogger message version {v} is newer than this parser knows \
                 ({NEWEST_KNOWN_VERSION}); reading it the same way"
            )
        });
    }
    envelope.global_seq_num = root.get("global_seq_num").and_then(Value::as_u64);
    if envelope.global_seq_num.is_none() && since(envelope.version, 4) {
        envelope.drift.insert(Field::GlobalSeqNum);
    }

    let mut event = match root.get_mut("event").map(Value::take) {
        Some(Value::Object(map)) => map,
        _ => {
            let kind = match root.get("event_type").and_then(Value::as_i64) {
                Some(EVENT_TYPE_EXEC) => "exec",
                Some(EVENT_TYPE_FORK) => "fork",
                Some(EVENT_TYPE_EXIT) => "exit",
                Some(_) => return Ok((envelope, Parsed::OtherEvent)),
                None => return Ok((envelope, Parsed::Foreign)),
            };
            warn_once(Field::Event.bit(), || {
                format!("eslogger wrote a {kind} message without its `event` object")
            });
            return Err(EsParseError::Unusable {
                event: kind,
                field: Field::Event,
            });
        }
    };
    let result = if let Some(exec) = event.get_mut("exec") {
        parse_exec(&mut root, exec.take(), envelope).map(EsEvent::Exec)
    } else if let Some(fork) = event.get_mut("fork") {
        parse_fork(&mut root, fork.take(), envelope)
    } else if let Some(exit) = event.get("exit") {
        parse_exit(&root, exit, envelope)
    } else {
        return Ok((envelope, Parsed::OtherEvent));
    };
    match &result {
        Ok(ev) => warn_drift(ev.envelope()),
        Err(EsParseError::Unusable { event, field }) => {
            warn_once(field.bit(), || {
                format!(
                    "eslogger output changed: {event} messages without a usable {field} \
                     are dropped"
                )
            });
        }
        Err(_) => {}
    }
    result.map(|event| (*event.envelope(), Parsed::Event(event)))
}

/// Whether a field introduced in message version `min` should be there (an
/// unknown version is assumed recent).
fn since(version: Option<i64>, min: i64) -> bool {
    version.is_none_or(|v| v >= min)
}

/// A string value taken out of the tree (no copy); `None` if absent, null or
/// another type.
fn take_string(value: Option<&mut Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(std::mem::take(s)),
        _ => None,
    }
}

/// A string that may be null: null reads as "", absent or another type as
/// `None`.
fn take_nullable_string(value: Option<&mut Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(std::mem::take(s)),
        Value::Null => Some(String::new()),
        _ => None,
    }
}

fn parse_exec(root: &mut Value, exec: Value, envelope: Envelope) -> Result<EsExec, EsParseError> {
    let mut exec = exec;
    let mut envelope = envelope;
    let unusable = |field| EsParseError::Unusable {
        event: "exec",
        field,
    };
    let mut out = EsExec::default();

    match root
        .get("time")
        .and_then(Value::as_str)
        .and_then(parse_rfc3339)
    {
        Some((secs, nanos)) => (out.time, out.time_nanos) = (secs, nanos),
        None => envelope.drift.insert(Field::Time),
    }

    let mut target = exec
        .get_mut("target")
        .map(Value::take)
        .unwrap_or(Value::Null);
    // Fields of a missing target are not reported one by one: the target is.
    let target_ok = target.is_object();
    let mut tdrift = FieldSet::default();

    match take_string(target.pointer_mut("/executable/path")).filter(|p| !p.is_empty()) {
        Some(p) => out.path = p,
        None => {
            tdrift.insert(Field::ExecPath);
            // The path given to execve (before symlinks), v7+: better than
            // losing the exec.
            out.path = take_string(exec.get_mut("dyld_exec_path"))
                .filter(|p| !p.is_empty())
                .ok_or_else(|| unusable(Field::ExecPath))?;
        }
    }
    match target
        .pointer("/executable/path_truncated")
        .and_then(Value::as_bool)
    {
        Some(t) => out.path_truncated = t,
        None => tdrift.insert(Field::ExecPathTruncated),
    }

    let token = target.get("audit_token").and_then(parse_audit_token);
    if !token.is_some_and(|t| t.is_complete()) {
        tdrift.insert(Field::ExecAuditToken);
    }
    let token = token.unwrap_or_default();
    out.pid = match token.pid {
        Some(pid) => pid,
        // exec keeps the pid: the caller's token names it too.
        None => root
            .pointer("/process/audit_token")
            .and_then(parse_audit_token)
            .and_then(|t| t.pid)
            .ok_or_else(|| unusable(Field::ExecAuditToken))?,
    };
    out.pidversion = token.pidversion;
    out.uid = token.ruid;
    out.euid = token.euid;
    out.gid = token.rgid;
    out.egid = token.egid;
    out.auid = token.auid;

    out.ppid = target.get("ppid").and_then(Value::as_i64);
    if out.ppid.is_none() {
        tdrift.insert(Field::ExecPpid);
    }
    out.original_ppid = target.get("original_ppid").and_then(Value::as_i64);
    if out.original_ppid.is_none() {
        tdrift.insert(Field::ExecOriginalPpid);
    }
    match take_nullable_string(target.get_mut("signing_id")) {
        Some(s) => out.signing_id = s,
        None => tdrift.insert(Field::ExecSigningId),
    }
    match take_nullable_string(target.get_mut("team_id")) {
        Some(s) => out.team_id = s,
        None => tdrift.insert(Field::ExecTeamId),
    }
    out.platform_binary = target.get("is_platform_binary").and_then(Value::as_bool);
    if out.platform_binary.is_none() {
        tdrift.insert(Field::ExecPlatformBinary);
    }
    match take_nullable_string(target.get_mut("cdhash")) {
        Some(s) => out.cdhash = s,
        None => tdrift.insert(Field::ExecCdhash),
    }
    if target_ok {
        envelope.drift.0 |= tdrift.0;
    } else {
        envelope.drift.insert(Field::ExecTarget);
    }

    out.args = match exec.get_mut("args").map(Value::take) {
        Some(Value::Array(items)) => Some(
            items
                .into_iter()
                .map(|item| match item {
                    Value::String(s) => s,
                    // Keep the position and whatever text there was.
                    other => {
                        envelope.drift.insert(Field::ExecArgs);
                        other.to_string()
                    }
                })
                .collect(),
        ),
        _ => {
            envelope.drift.insert(Field::ExecArgs);
            None
        }
    };
    out.krb5ccname = take_krb5ccname(exec.get_mut("env"));
    out.cwd = take_string(exec.pointer_mut("/cwd/path"));
    if out.cwd.is_none() && since(envelope.version, 3) {
        envelope.drift.insert(Field::ExecCwd);
    }
    out.envelope = envelope;
    Ok(out)
}

/// `KRB5CCNAME`'s value from eslogger's `env` (an array of `NAME=value`),
/// taken out of the tree; nothing is allocated when it is not set.
fn take_krb5ccname(env: Option<&mut Value>) -> Option<String> {
    const NAME: &str = "KRB5CCNAME=";
    let Value::Array(items) = env? else {
        return None;
    };
    let mut value = items.iter_mut().find_map(|item| match item {
        Value::String(s) if s.starts_with(NAME) => Some(std::mem::take(s)),
        _ => None,
    })?;
    value.drain(..NAME.len());
    Some(value)
}

fn parse_fork(root: &mut Value, fork: Value, envelope: Envelope) -> Result<EsEvent, EsParseError> {
    let mut fork = fork;
    let mut envelope = envelope;
    let mut child = fork
        .get_mut("child")
        .map(Value::take)
        .unwrap_or(Value::Null);
    if !child.is_object() {
        return Err(EsParseError::Unusable {
            event: "fork",
            field: Field::ForkChild,
        });
    }
    let child_token = child.get("audit_token").and_then(parse_audit_token);
    if !child_token.is_some_and(|t| t.is_complete()) {
        envelope.drift.insert(Field::ForkChildAuditToken);
    }
    let child_pid = child_token
        .and_then(|t| t.pid)
        .ok_or(EsParseError::Unusable {
            event: "fork",
            field: Field::ForkChildAuditToken,
        })?;

    let parent_token = root
        .pointer("/process/audit_token")
        .and_then(parse_audit_token);
    if !parent_token.is_some_and(|t| t.is_complete()) {
        envelope.drift.insert(Field::ProcessAuditToken);
    }
    let parent_pid = parent_token
        .and_then(|t| t.pid)
        .or_else(|| child.get("ppid").and_then(Value::as_i64));
    let mut parent_path = take_string(root.pointer_mut("/process/executable/path"));
    if parent_path.is_none() {
        envelope.drift.insert(Field::ProcessPath);
        // Right after fork the child runs the parent's image.
        parent_path = take_string(child.pointer_mut("/executable/path"));
    }
    Ok(EsEvent::Fork {
        envelope,
        parent_pid,
        parent_path,
        child_pid,
    })
}

fn parse_exit(root: &Value, exit: &Value, envelope: Envelope) -> Result<EsEvent, EsParseError> {
    let mut envelope = envelope;
    let token = root
        .pointer("/process/audit_token")
        .and_then(parse_audit_token);
    if !token.is_some_and(|t| t.is_complete()) {
        envelope.drift.insert(Field::ProcessAuditToken);
    }
    let pid = token.and_then(|t| t.pid).ok_or(EsParseError::Unusable {
        event: "exit",
        field: Field::ProcessAuditToken,
    })?;
    let stat = exit.get("stat").and_then(Value::as_i64);
    if stat.is_none() {
        envelope.drift.insert(Field::ExitStat);
    }
    Ok(EsEvent::Exit {
        envelope,
        pid,
        stat,
    })
}

/// The line made parseable, if it can be: invalid UTF-8 and unpaired UTF-16
/// surrogate escapes (`\ud800` alone) become U+FFFD, which serde_json would
/// otherwise reject along with the whole event. How eslogger renders argv
/// bytes that are not UTF-8 is not known; an exec must not vanish over it.
/// `None` when there is nothing to repair.
fn repair(line: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(line);
    let bytes = text.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b != b'\\' {
            out.push(b);
            i += 1;
            continue;
        }
        // A backslash only occurs inside strings in valid JSON, so escapes
        // can be read without tracking string boundaries.
        match bytes.get(i + 1) {
            Some(b'u') => match hex4(bytes, i + 2) {
                Some(0xD800..=0xDBFF) => {
                    let low = (bytes.get(i + 6) == Some(&b'\\') && bytes.get(i + 7) == Some(&b'u'))
                        .then(|| hex4(bytes, i + 8))
                        .flatten();
                    if low.is_some_and(|lo| (0xDC00..=0xDFFF).contains(&lo)) {
                        out.extend_from_slice(bytes.get(i..i + 12).unwrap_or_default());
                        i += 12;
                    } else {
                        out.extend_from_slice(b"\\uFFFD");
                        i += 6;
                    }
                }
                Some(0xDC00..=0xDFFF) => {
                    out.extend_from_slice(b"\\uFFFD");
                    i += 6;
                }
                Some(_) => {
                    out.extend_from_slice(bytes.get(i..i + 6).unwrap_or_default());
                    i += 6;
                }
                None => {
                    out.extend_from_slice(b"\\u");
                    i += 2;
                }
            },
            Some(&next) => {
                out.extend_from_slice(&[b'\\', next]);
                i += 2;
            }
            None => {
                out.push(b'\\');
                i += 1;
            }
        }
    }
    if out == line {
        return None;
    }
    // Only ASCII escapes were replaced in valid UTF-8, so this cannot fail;
    // still, no panic on outside data.
    Some(
        String::from_utf8(out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
    )
}

fn hex4(bytes: &[u8], at: usize) -> Option<u32> {
    let digits = bytes.get(at..at + 4)?;
    let text = std::str::from_utf8(digits).ok()?;
    if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(text, 16).ok()
}

/// The start of a line, for a log message.
fn preview(line: &[u8]) -> String {
    let cut = line.get(..200).unwrap_or(line);
    let mut text = String::from_utf8_lossy(cut).into_owned();
    if cut.len() < line.len() {
        text.push('…');
    }
    text
}

// --- time ----------------------------------------------------------------

/// Parses an RFC 3339 date-time such as eslogger's
/// `2025-08-07T13:21:35.880814738Z` into unix seconds and nanoseconds.
/// Strict: fixed field widths, a real calendar date, `T` between date and
/// time, and `Z` or a `±hh:mm` offset. Any number of fractional digits is
/// accepted; those past the ninth (below a nanosecond) are ignored. A leap
/// second (`:60`) counts as the second before it.
pub fn parse_rfc3339(text: &str) -> Option<(i64, u32)> {
    let b = text.as_bytes();
    let num = |from: usize, len: usize| -> Option<u32> {
        let digits = b.get(from..from + len)?;
        digits.iter().try_fold(0u32, |n, &d| {
            d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
        })
    };
    let at = |i: usize, c: u8| b.get(i).is_some_and(|x| x.eq_ignore_ascii_case(&c));
    if !(at(4, b'-') && at(7, b'-') && at(10, b'T') && at(13, b':') && at(16, b':')) {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }

    let mut i = 19;
    let mut nanos = 0u32;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while let Some(&d) = b.get(i).filter(|d| d.is_ascii_digit()) {
            if i - start < 9 {
                nanos = nanos * 10 + u32::from(d - b'0');
            }
            i += 1;
        }
        let digits = i - start;
        if digits == 0 {
            return None;
        }
        for _ in digits..9 {
            nanos *= 10;
        }
    }
    let offset: i64 = match b.get(i..)? {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (h, m) = (num(i + 1, 2)?, num(i + 4, 2)?);
            if h > 23 || m > 59 {
                return None;
            }
            let secs = i64::from(h * 3600 + m * 60);
            if *sign == b'-' {
                -secs
            } else {
                secs
            }
        }
        _ => return None,
    };
    let days = days_from_civil(i64::from(year), month, day);
    let clock = i64::from(hour * 3600 + minute * 60 + second.min(59));
    Some((days * 86_400 + clock - offset, nanos))
}

fn is_leap(year: u32) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date. Years are counted from
/// March, so that February's variable length falls at the end of a year, and
/// grouped in 400-year cycles of 146097 days.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let cycle = y.div_euclid(400);
    let year_of_cycle = y.rem_euclid(400);
    // March = 0 … February = 11.
    let m = i64::from((month + 9) % 12);
    // Days before month m in a March-based year: 31,30,31,30,31 repeating.
    let day_of_year = (153 * m + 2) / 5 + i64::from(day) - 1;
    let day_of_cycle = year_of_cycle * 365 + year_of_cycle / 4 - year_of_cycle / 100 + day_of_year;
    // 719468 days separate 0000-03-01 from 1970-01-01.
    cycle * 146_097 + day_of_cycle - 719_468
}

// --- to the engine ---------------------------------------------------------

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
        let newline = chunk.iter().position(|&b| b == b'\n');
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

enum LineMsg {
    Line(Vec<u8>),
    TooLong,
}

enum Poll {
    Line(LineMsg),
    Idle,
    /// eslogger exited or closed its output.
    Gone,
}

/// The end of eslogger's stderr.
#[derive(Default)]
struct StderrTail {
    bytes: Vec<u8>,
}

impl StderrTail {
    fn push(&mut self, line: &[u8]) {
        self.bytes.extend_from_slice(line);
        self.bytes.push(b'\n');
        let excess = self.bytes.len().saturating_sub(STDERR_KEEP);
        if excess > 0 {
            self.bytes.drain(..excess);
        }
    }

    /// Its non-empty lines, joined by "; ".
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// One running eslogger. Dropping it stops and reaps the process, so none
/// outlives its owner, on any path.
struct EsloggerProcess {
    child: Child,
    lines: Receiver<LineMsg>,
    stderr: Arc<Mutex<StderrTail>>,
    stderr_thread: Option<JoinHandle<()>>,
    started: Instant,
    /// Reported active: it printed a line or outlived the early-exit window.
    confirmed: bool,
    /// When it was first seen exited (lines may still be queued).
    exited_at: Option<Instant>,
}

impl EsloggerProcess {
    fn spawn(program: &Path, args: &[OsString]) -> Result<EsloggerProcess, String> {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        #[cfg(unix)]
        {
            // eslogger suppresses events from its own process group. In ours,
            // it would hide execs of whatever shares it (a script that starts
            // this program and then runs kcc). Its own group also keeps a
            // terminal's Ctrl-C from reaching it before we stop it.
            use std::os::unix::process::CommandExt;
            cmd.process_group(0);
        }
        let mut child = cmd.spawn().map_err(|e| spawn_error(program, &e))?;
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let (tx, rx) = sync_channel(LINE_QUEUE);
        let tail = Arc::new(Mutex::new(StderrTail::default()));
        // From here on, dropping `proc` stops and reaps the child.
        let mut proc = EsloggerProcess {
            child,
            lines: rx,
            stderr: Arc::clone(&tail),
            stderr_thread: None,
            started: Instant::now(),
            confirmed: false,
            exited_at: None,
        };
        let pid = proc.pid();
        let stdout = stdout.ok_or("eslogger: no stdout pipe")?;
        // Detached: it ends at end of stream, or when the receiver is gone.
        std::thread::Builder::new()
            .name("eslogger-stdout".into())
            .spawn(move || pump_lines(stdout, &tx))
            .map_err(|e| format!("eslogger: cannot start a reader thread: {e}"))?;
        if let Some(stderr) = stderr {
            let handle = std::thread::Builder::new()
                .name("eslogger-stderr".into())
                .spawn(move || collect_stderr(stderr, &tail, pid))
                .map_err(|e| format!("eslogger: cannot start a reader thread: {e}"))?;
            proc.stderr_thread = Some(handle);
        }
        Ok(proc)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The next line, or what happened instead within `timeout`.
    fn poll(&mut self, timeout: Duration) -> Poll {
        match self.lines.recv_timeout(timeout) {
            Ok(msg) => Poll::Line(msg),
            Err(RecvTimeoutError::Disconnected) => Poll::Gone,
            Err(RecvTimeoutError::Timeout) => {
                // A descendant may still hold stdout open after eslogger
                // itself exited: notice the exit anyway.
                if self.exited().is_some() {
                    let since = *self.exited_at.get_or_insert_with(Instant::now);
                    if since.elapsed() >= EXIT_DRAIN {
                        return Poll::Gone;
                    }
                }
                Poll::Idle
            }
        }
    }

    /// Stops it: SIGTERM, then SIGKILL after [`TERM_GRACE`]; reaped either
    /// way. Its status, if it could be read.
    fn terminate(&mut self) -> Option<ExitStatus> {
        if let Some(status) = self.exited() {
            return Some(status);
        }
        // Not reaped yet, so the pid cannot have been reused.
        send_sigterm(self.pid());
        let deadline = Instant::now() + TERM_GRACE;
        while Instant::now() < deadline {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Err(e) = self.child.kill() {
            log::warn!("eslogger (pid {}): SIGKILL failed: {e}", self.pid());
        }
        self.child.wait().ok()
    }

    /// What it wrote on stderr, once that stream has ended (or after a short
    /// wait, if a descendant holds it open).
    fn stderr_text(&mut self) -> String {
        let deadline = Instant::now() + STDERR_DRAIN;
        if let Some(handle) = self.stderr_thread.take() {
            while !handle.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if handle.is_finished() {
                let _ = handle.join();
            }
        }
        self.stderr.lock().unwrap_or_else(|e| e.into_inner()).text()
    }
}

impl Drop for EsloggerProcess {
    fn drop(&mut self) {
        self.terminate();
    }
}

fn pump_lines(stdout: impl Read, tx: &SyncSender<LineMsg>) {
    let mut reader = BufReader::with_capacity(64 << 10, stdout);
    let mut buf = Vec::with_capacity(8 << 10);
    loop {
        let msg = match read_line_capped(&mut reader, &mut buf, MAX_LINE) {
            Ok(LineRead::Eof) => return,
            Ok(LineRead::Line) => {
                LineMsg::Line(std::mem::replace(&mut buf, Vec::with_capacity(8 << 10)))
            }
            Ok(LineRead::TooLong) => LineMsg::TooLong,
            Err(e) => {
                log::warn!("eslogger: reading its output failed: {e}");
                return;
            }
        };
        if tx.send(msg).is_err() {
            return;
        }
    }
}

fn collect_stderr(stderr: impl Read, tail: &Mutex<StderrTail>, pid: u32) {
    let mut reader = BufReader::new(stderr);
    let mut line = Vec::new();
    let mut logged = 0;
    loop {
        match read_line_capped(&mut reader, &mut line, STDERR_KEEP) {
            Ok(LineRead::Line) => {}
            Ok(LineRead::TooLong) => line.extend_from_slice(b"(long stderr line skipped)"),
            Ok(LineRead::Eof) | Err(_) => return,
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        if logged < STDERR_LOG_LINES {
            log::warn!("eslogger (pid {pid}): {text}");
            logged += 1;
        } else {
            log::debug!("eslogger (pid {pid}): {text}");
        }
        tail.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(text.as_bytes());
    }
}

/// SIGTERM through sysinfo: libc is a dependency on Linux only.
fn send_sigterm(pid: u32) {
    use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, Signal, System};
    let pid = Pid::from_u32(pid);
    let Ok(mut sys) = System::new() else {
        return;
    };
    sys.refresh_processes_specifics(
        ProcessesToUpdate::Some(&[pid]),
        false,
        ProcessRefreshKind::nothing().without_tasks(),
    );
    if let Some(p) = sys.process(pid) {
        let _ = p.kill_with(Signal::Term);
    }
}

/// A live process's path and command line, for a parent that has not exec'd
/// since we started.
fn live_process(pid: i64) -> Option<(Vec<u8>, Vec<u8>)> {
    use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System, UpdateKind};
    let pid = Pid::from_u32(u32::try_from(pid).ok().filter(|&p| p > 0)?);
    let mut sys = System::new().ok()?;
    sys.refresh_processes_specifics(
        ProcessesToUpdate::Some(&[pid]),
        false,
        ProcessRefreshKind::nothing()
            .without_tasks()
            .with_exe(UpdateKind::Always)
            .with_cmd(UpdateKind::Always),
    );
    let p = sys.process(pid)?;
    let path = p
        .exe()
        .map(|e| e.to_string_lossy().into_owned().into_bytes())
        .unwrap_or_default();
    let cmdline = p
        .cmd()
        .iter()
        .map(|a| a.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
        .into_bytes();
    (!path.is_empty() || !cmdline.is_empty()).then_some((path, cmdline))
}

fn spawn_error(program: &Path, e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => format!(
            "{} not found: eslogger comes with macOS 13 and later",
            program.display()
        ),
        _ => format!("cannot start {}: {e}", program.display()),
    }
}

const HINT_FDA: &str = "grant Full Disk Access to the process responsible for this one \
                        (osqueryd, or the terminal app when run by hand)";
const HINT_ROOT: &str = "eslogger must run as root";
/// eslogger's exact error texts are not documented; when it says nothing on
/// stderr, this names both requirements and where else it may have logged.
const HINT_SILENT: &str = "eslogger needs root, macOS 13+, and Full Disk Access for the \
                           responsible process (osqueryd, or the terminal app); its errors \
                           may be in the unified log: log show --predicate 'process == \"eslogger\"'";

/// A hint for the errors eslogger reports when it cannot create its ES
/// client: by the `es_new_client_result_t` name, or by plain words.
fn hint(stderr: &str) -> Option<&'static str> {
    let s = stderr.to_ascii_uppercase();
    if ["NOT_PERMITTED", "NOT PERMITTED", "FULL DISK ACCESS", "TCC"]
        .iter()
        .any(|k| s.contains(k))
    {
        Some(HINT_FDA)
    } else if ["NOT_PRIVILEGED", "ROOT", "SUPER-USER", "SUPERUSER"]
        .iter()
        .any(|k| s.contains(k))
    {
        Some(HINT_ROOT)
    } else if s.contains("TOO_MANY_CLIENTS") {
        Some("the system has too many Endpoint Security clients")
    } else {
        None
    }
}

/// The status reason for an eslogger that exited.
fn exit_reason(program: &Path, when: &str, status: Option<ExitStatus>, stderr: &str) -> String {
    let status = status.map_or_else(|| "status unknown".to_string(), |s| s.to_string());
    let mut why = format!("{} {when} ({status})", program.display());
    if stderr.is_empty() {
        why.push_str(" without a message");
    } else {
        why.push_str(": ");
        why.push_str(stderr);
    }
    if let Some(h) = hint(stderr) {
        why.push_str(" (");
        why.push_str(h);
        why.push(')');
    }
    why
}

fn fmt_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

// --- the source ----------------------------------------------------------

struct Live {
    program: PathBuf,
    args: Vec<OsString>,
    child: Option<EsloggerProcess>,
    first_backoff: Duration,
    max_backoff: Duration,
    /// The wait before the next start attempt.
    backoff: Duration,
    /// Why eslogger is not running, while it is not.
    failure: Option<String>,
}

impl Live {
    fn take_backoff(&mut self) -> Duration {
        let d = self.backoff;
        self.backoff = (self.backoff * 2).min(self.max_backoff);
        d
    }
}

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
            scratch_path: Vec::new(),
            scratch_cmdline: Vec::new(),
        }
    }

    /// Reads eslogger JSON lines from a file, FIFO or device
    /// (`eslogger:FILE`); opening never waits. The error is a reason for the
    /// status table.
    pub fn replay(path: &Path) -> Result<Eslogger, String> {
        let file = ReplayFile::open(path, "eslogger file")?;
        Ok(Eslogger::with_input(Input::Replay {
            path: path.to_path_buf(),
            file: Some(file),
        }))
    }

    /// Starts `/usr/bin/eslogger exec fork exit`.
    pub fn live() -> Result<Eslogger, String> {
        Eslogger::live_with(Path::new(ESLOGGER), &ESLOGGER_ARGS)
    }

    /// Starts `program args…` in eslogger's place and watches it for 1.5 s:
    /// if it exits by then, what it wrote on stderr becomes the error (the
    /// status reason).
    pub fn live_with(program: &Path, args: &[&str]) -> Result<Eslogger, String> {
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
                return Err(why);
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

    /// The path and command line to report for parent `ppid`: its last exec
    /// or fork seen; live, the running process when we saw neither (a shell
    /// started before us) or only a fork (which gives no argv).
    pub fn parent_of(&self, ppid: i64) -> Option<(Vec<u8>, Vec<u8>)> {
        let cached = self
            .cache
            .get(ppid)
            .map(|c| (c.path.to_vec(), c.cmdline.to_vec()));
        let live = matches!(self.input, Input::Live(_));
        if live
            && cached
                .as_ref()
                .is_none_or(|(_, cmdline)| cmdline.is_empty())
        {
            if let Some(found) = live_process(ppid) {
                return Some(found);
            }
        }
        cached
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
                    } => self.on_fork(parent_pid, parent_path.as_deref(), child_pid),
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
        // An exec with KRB5CCNAME goes on: the engine links it to earlier
        // thefts.
        if ex.krb5ccname.is_none() && classify_with(ex.path.as_bytes(), args, &identity).is_none() {
            counters.saw(ex.time);
            self.cache.record(ex.pid, ex.path.as_bytes(), args);
            return;
        }
        let parent = ex.ppid.and_then(|ppid| self.parent_of(ppid));
        let event = to_exec_event(&ex, parent);
        engine.ingest(&event, counters);
        self.cache.record(ex.pid, ex.path.as_bytes(), args);
    }

    /// The child starts as a copy of the parent: it gets the parent's cached
    /// exec, or the image the fork message names.
    fn on_fork(&mut self, parent_pid: Option<i64>, parent_path: Option<&str>, child_pid: i64) {
        self.scratch_path.clear();
        self.scratch_cmdline.clear();
        match parent_pid.and_then(|p| self.cache.get(p)) {
            Some(cached) => {
                self.scratch_path.extend_from_slice(cached.path);
                self.scratch_cmdline.extend_from_slice(cached.cmdline);
            }
            None => {
                let Some(path) = parent_path else {
                    return;
                };
                self.scratch_path.extend_from_slice(path.as_bytes());
                // The parent started before we did: remember what it runs.
                if let Some(ppid) = parent_pid {
                    self.cache.record::<&[u8]>(ppid, &self.scratch_path, &[]);
                }
            }
        }
        // The cached command line is already joined: one argument keeps it.
        self.cache
            .record(child_pid, &self.scratch_path, &[&self.scratch_cmdline]);
    }

    /// Reads the file to its end. Fails when it cannot be read, is empty,
    /// or holds no eslogger message (a replay that finds nothing must be
    /// told apart from one that read something else); a stop request before
    /// the end gives [`Interrupted`].
    fn run_replay(&mut self, engine: &Engine, stop: &AtomicBool) -> anyhow::Result<()> {
        let Input::Replay { path, file } = &mut self.input else {
            return Ok(());
        };
        let path = path.clone();
        let Some(mut file) = file.take() else {
            anyhow::bail!("eslogger replay of {} already ran", path.display());
        };
        let mut reader = BufReader::with_capacity(256 << 10, file.reader(stop));
        let result = self.replay_lines(&mut reader, &path, engine);
        drop(reader);
        result?;
        if file.bytes() == 0 {
            anyhow::bail!("eslogger file {} is empty", path.display());
        }
        if self.messages == 0 {
            anyhow::bail!(
                "no eslogger JSON in {}: {} line(s), none an eslogger message",
                path.display(),
                self.lines
            );
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
    ) -> anyhow::Result<()> {
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
                    break Err(anyhow::Error::new(Interrupted(format!(
                        "eslogger replay of {} stopped before its end ({} line(s) read)",
                        path.display(),
                        self.lines
                    ))))
                }
                Err(e) => {
                    break Err(anyhow::anyhow!(
                        "reading eslogger file {} failed after {} line(s): {e}",
                        path.display(),
                        self.lines
                    ))
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

    fn run_live(&mut self, engine: &Engine, stop: &AtomicBool) -> anyhow::Result<()> {
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

    fn run(&mut self, engine: &Engine, stop: &AtomicBool) -> anyhow::Result<()> {
        match self.input {
            Input::Replay { .. } => self.run_replay(engine, stop),
            Input::Live(_) => self.run_live(engine, stop),
        }
    }

    fn is_finite(&self) -> bool {
        matches!(self.input, Input::Replay { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A plausible exec message in eslogger's layout (values made up here).
    fn exec_message(version: i64, token: Value) -> Value {
        json!({
            "schema_version": 1,
            "version": version,
            "event_type": 9,
            "time": "2026-03-02T10:20:30.123456789Z",
            "mach_time": 987654321,
            "seq_num": 12,
            "global_seq_num": 40,
            "action_type": 1,
            "thread": {"thread_id": 77},
            "process": {
                "audit_token": {"auid": 501, "euid": 501, "egid": 20, "ruid": 501,
                                "rgid": 20, "pid": 3100, "asid": 100020, "pidversion": 9000},
                "executable": {"path": "/bin/zsh", "path_truncated": false},
                "ppid": 3000, "original_ppid": 3000,
                "signing_id": "com.apple.zsh", "team_id": null,
                "is_platform_binary": true, "cdhash": "AB".repeat(20)
            },
            "event": {"exec": {
                "target": {
                    "audit_token": token,
                    "executable": {"path": "/usr/bin/kcc", "path_truncated": false,
                                   "stat": {"st_ino": 1152921500312999999u64}},
                    "ppid": 3000, "original_ppid": 3000,
                    "signing_id": "com.apple.kcc", "team_id": null,
                    "is_platform_binary": true, "cdhash": "0123456789ABCDEF0123456789ABCDEF01234567",
                    "start_time": "2026-03-02T10:20:30.100000Z",
                    "tty": null
                },
                "args": ["kcc", "copy_cred_cache", "/tmp/bob.ccache"],
                "env": ["PATH=/usr/bin:/bin"],
                "cwd": {"path": "/Users/bob", "path_truncated": false},
                "script": null,
                "dyld_exec_path": "/usr/bin/kcc",
                "image_cputype": 16777228,
                "image_cpusubtype": -2147483646
            }}
        })
    }

    /// eslogger escapes every slash.
    fn line_of(msg: &Value) -> Vec<u8> {
        msg.to_string().replace('/', "\\/").into_bytes()
    }

    fn object_token(pid: i64, pidversion: i64) -> Value {
        json!({"auid": 501, "euid": 0, "egid": 0, "ruid": 501, "rgid": 20,
               "pid": pid, "asid": 100020, "pidversion": pidversion})
    }

    fn exec_of(line: &[u8]) -> EsExec {
        match parse_line(line).unwrap() {
            Some(EsEvent::Exec(ex)) => ex,
            other => panic!("not an exec: {other:?}"),
        }
    }

    #[test]
    fn rfc3339_nine_and_six_digits() {
        assert_eq!(
            parse_rfc3339("1970-01-01T00:00:00.000000000Z"),
            Some((0, 0))
        );
        // 2025-08-07T13:21:35Z is 1754572895 (date -u -d … +%s).
        assert_eq!(
            parse_rfc3339("2025-08-07T13:21:35.880814738Z"),
            Some((1_754_572_895, 880_814_738))
        );
        assert_eq!(
            parse_rfc3339("2025-08-07T13:21:35.877422Z"),
            Some((1_754_572_895, 877_422_000))
        );
        assert_eq!(
            parse_rfc3339("2025-08-07T13:21:35Z"),
            Some((1_754_572_895, 0))
        );
        assert_eq!(
            parse_rfc3339("2025-08-07t13:21:35.5z"),
            Some((1_754_572_895, 500_000_000))
        );
        // Digits below a nanosecond are ignored.
        assert_eq!(
            parse_rfc3339("2025-08-07T13:21:35.1234567891234Z"),
            Some((1_754_572_895, 123_456_789))
        );
        // Offsets are applied.
        assert_eq!(
            parse_rfc3339("2025-08-07T15:21:35+02:00"),
            Some((1_754_572_895, 0))
        );
        assert_eq!(
            parse_rfc3339("2025-08-07T12:51:35-00:30"),
            Some((1_754_572_895, 0))
        );
        assert_eq!(
            parse_rfc3339("2000-02-29T00:00:00Z"),
            Some((951_782_400, 0))
        );
        assert_eq!(parse_rfc3339("1969-12-31T23:59:59Z"), Some((-1, 0)));
        // A leap second counts as the second before it.
        assert_eq!(
            parse_rfc3339("2016-12-31T23:59:60Z"),
            parse_rfc3339("2016-12-31T23:59:59Z")
        );
    }

    #[test]
    fn rfc3339_rejects() {
        for bad in [
            "",
            "2025-08-07",
            "2025-08-07T13:21:35",
            "2025-08-07 13:21:35Z",
            "2025-08-07T13:21:35.Z",
            "2025-08-07T13:21:35.88x Z",
            "2025-08-07T13:21:35.88 Z",
            "2025-13-07T13:21:35Z",
            "2025-00-07T13:21:35Z",
            "2025-08-00T13:21:35Z",
            "2025-08-32T13:21:35Z",
            "2023-02-29T00:00:00Z",
            "1900-02-29T00:00:00Z",
            "2025-04-31T00:00:00Z",
            "2025-08-07T24:00:00Z",
            "2025-08-07T13:60:00Z",
            "2025-08-07T13:21:61Z",
            "2025-08-07T13:21:35+0200",
            "2025-08-07T13:21:35+24:00",
            "2025-08-07T13:21:35ZZ",
            "+025-08-07T13:21:35Z",
            "2025-8-07T13:21:35Z",
            "２025-08-07T13:21:35Z",
            "2025-08-07T13:21:35.88\u{e9}Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn days_match_the_calendar() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        assert_eq!(days_from_civil(2026, 10, 5), 20_731);
        assert_eq!(days_from_civil(0, 3, 1), -719_468);
    }

    #[test]
    fn audit_token_object_and_array_read_the_same() {
        let object = object_token(4242, 77);
        let array = json!([501, 0, 0, 501, 20, 4242, 100020, 77]);
        let a = parse_audit_token(&object).unwrap();
        let b = parse_audit_token(&array).unwrap();
        assert_eq!(a, b);
        assert_eq!(
            a,
            AuditToken {
                auid: Some(501),
                euid: Some(0),
                egid: Some(0),
                ruid: Some(501),
                rgid: Some(20),
                pid: Some(4242),
                asid: Some(100020),
                pidversion: Some(77),
            }
        );
        // Distinct values in every slot pin the array order.
        let t = parse_audit_token(&json!([1, 2, 3, 4, 5, 6, 7, 8])).unwrap();
        assert_eq!(
            (
                t.auid,
                t.euid,
                t.egid,
                t.ruid,
                t.rgid,
                t.pid,
                t.asid,
                t.pidversion
            ),
            (
                Some(1),
                Some(2),
                Some(3),
                Some(4),
                Some(5),
                Some(6),
                Some(7),
                Some(8)
            )
        );
        assert_eq!(parse_audit_token(&json!([1, 2, 3])), None);
        assert_eq!(parse_audit_token(&json!("501")), None);
        assert_eq!(parse_audit_token(&Value::Null), None);
        // Unset auid, unsigned or (should a version write it so) signed.
        let unset = parse_audit_token(&json!([4294967295u64, 0, 0, 0, 0, 1, 0, 1])).unwrap();
        assert_eq!(unset.auid, Some(4_294_967_295));
        let signed = parse_audit_token(&json!([-1, 0, 0, 0, 0, 1, 0, 1])).unwrap();
        assert_eq!(signed.auid, Some(4_294_967_295));
        let partial = parse_audit_token(&json!({"pid": 5})).unwrap();
        assert_eq!(partial.pid, Some(5));
        assert!(!partial.is_complete());
    }

    #[test]
    fn exec_takes_the_target_not_the_caller() {
        let token = json!([501, 0, 0, 501, 20, 3100, 100020, 9001]);
        let ex = exec_of(&line_of(&exec_message(10, token)));
        assert_eq!(ex.path, "/usr/bin/kcc");
        assert_eq!(ex.pid, 3100);
        assert_eq!(ex.pidversion, Some(9001));
        assert_eq!(ex.ppid, Some(3000));
        assert_eq!(ex.original_ppid, Some(3000));
        assert_eq!(
            ex.args.as_deref().unwrap(),
            ["kcc", "copy_cred_cache", "/tmp/bob.ccache"]
        );
        assert_eq!(ex.cwd.as_deref(), Some("/Users/bob"));
        assert_eq!(
            (ex.uid, ex.euid, ex.gid, ex.egid, ex.auid),
            (Some(501), Some(0), Some(20), Some(0), Some(501))
        );
        assert_eq!(ex.signing_id, "com.apple.kcc");
        assert_eq!(ex.team_id, "");
        assert_eq!(ex.platform_binary, Some(true));
        assert_eq!(ex.cdhash, "0123456789ABCDEF0123456789ABCDEF01234567");
        assert_eq!((ex.time, ex.time_nanos), (1_772_446_830, 123_456_789));
        assert_eq!(ex.envelope.version, Some(10));
        assert_eq!(ex.envelope.global_seq_num, Some(40));
        assert!(ex.envelope.drift.is_empty(), "{:?}", ex.envelope.drift);
        assert!(!ex.envelope.repaired);
    }

    #[test]
    fn escaped_slashes_and_large_integers_parse() {
        let line = line_of(&exec_message(9, object_token(3100, 9001)));
        assert!(line.windows(2).any(|w| w == b"\\/"));
        assert!(std::str::from_utf8(&line)
            .unwrap()
            .contains("1152921500312999999"));
        let ex = exec_of(&line);
        assert_eq!(ex.path, "/usr/bin/kcc");
        assert_eq!(ex.args.unwrap()[2], "/tmp/bob.ccache");
    }

    #[test]
    fn nulls_are_empty_not_drift() {
        let mut msg = exec_message(10, object_token(1, 2));
        msg["event"]["exec"]["target"]["signing_id"] = Value::Null;
        msg["event"]["exec"]["target"]["cdhash"] = Value::Null;
        msg["event"]["exec"]["target"]["team_id"] = json!("ABCDE12345");
        let ex = exec_of(&line_of(&msg));
        assert_eq!(ex.signing_id, "");
        assert_eq!(ex.cdhash, "");
        assert_eq!(ex.team_id, "ABCDE12345");
        assert!(ex.envelope.drift.is_empty());
    }

    #[test]
    fn missing_fields_are_counted_not_fatal() {
        let mut msg = exec_message(10, object_token(3100, 1));
        let target = msg["event"]["exec"]["target"].as_object_mut().unwrap();
        target.remove("team_id");
        target.remove("signing_id");
        target.remove("ppid");
        target.insert("is_platform_binary".into(), json!("yes"));
        let exec = msg["event"]["exec"].as_object_mut().unwrap();
        exec.remove("args");
        exec.remove("cwd");
        msg.as_object_mut().unwrap().remove("time");
        let ex = exec_of(&line_of(&msg));
        assert_eq!(ex.path, "/usr/bin/kcc");
        assert_eq!(ex.pid, 3100);
        assert_eq!(ex.args, None);
        assert_eq!(ex.ppid, None);
        assert_eq!(ex.original_ppid, Some(3000));
        assert_eq!(ex.platform_binary, None);
        let drift: Vec<Field> = ex.envelope.drift.iter().collect();
        assert_eq!(
            drift,
            [
                Field::Time,
                Field::ExecArgs,
                Field::ExecCwd,
                Field::ExecPpid,
                Field::ExecSigningId,
                Field::ExecTeamId,
                Field::ExecPlatformBinary,
            ]
        );
        let event = to_exec_event(&ex, None);
        assert!(event.incomplete);
        assert_eq!(event.ppid, 3000, "original_ppid stands in");
    }

    #[test]
    fn cwd_is_only_expected_from_version_3() {
        let mut msg = exec_message(2, object_token(1, 2));
        msg["event"]["exec"].as_object_mut().unwrap().remove("cwd");
        msg.as_object_mut().unwrap().remove("global_seq_num");
        let ex = exec_of(&line_of(&msg));
        assert!(ex.envelope.drift.is_empty(), "{:?}", ex.envelope.drift);
    }

    #[test]
    fn pid_and_path_fall_back_and_otherwise_the_event_is_unusable() {
        // A token shape nobody has seen: the caller's token gives the pid.
        let mut msg = exec_message(12, json!("opaque"));
        msg["event"]["exec"]["target"]["executable"]
            .as_object_mut()
            .unwrap()
            .remove("path");
        let ex = exec_of(&line_of(&msg));
        assert_eq!(ex.pid, 3100);
        assert_eq!(ex.path, "/usr/bin/kcc", "from dyld_exec_path");
        assert_eq!(ex.uid, None);
        assert!(ex.envelope.drift.contains(Field::ExecAuditToken));
        assert!(ex.envelope.drift.contains(Field::ExecPath));

        msg["event"]["exec"]
            .as_object_mut()
            .unwrap()
            .remove("dyld_exec_path");
        assert_eq!(
            parse_line(&line_of(&msg)),
            Err(EsParseError::Unusable {
                event: "exec",
                field: Field::ExecPath
            })
        );
        let mut msg = exec_message(10, json!([1, 2]));
        msg["process"]
            .as_object_mut()
            .unwrap()
            .remove("audit_token");
        assert_eq!(
            parse_line(&line_of(&msg)),
            Err(EsParseError::Unusable {
                event: "exec",
                field: Field::ExecAuditToken
            })
        );
        // No target at all: reported as such, not field by field.
        let mut msg = exec_message(10, json!(null));
        msg["event"]["exec"]["target"] = json!(5);
        let ex = exec_of(&line_of(&msg));
        assert!(ex.envelope.drift.contains(Field::ExecTarget));
        assert!(!ex.envelope.drift.contains(Field::ExecSigningId));
        assert_eq!((ex.pid, ex.path.as_str()), (3100, "/usr/bin/kcc"));
    }

    #[test]
    fn unknown_fields_and_other_events_are_ignored() {
        let mut msg = exec_message(11, object_token(1, 2));
        msg["brand_new"] = json!({"nested": [1, 2, {"x": null}]});
        msg["event"]["exec"]["entitlements"] = json!({"platform-application": true});
        msg["event"]["exec"]["target"]["cs_validation_category"] = json!(1);
        assert!(exec_of(&line_of(&msg)).envelope.drift.is_empty());

        let open = json!({"version": 10, "event_type": 10, "global_seq_num": 3,
                          "event": {"open": {"fflag": 1}}, "process": {}});
        assert_eq!(parse_line(&line_of(&open)), Ok(None));
        assert_eq!(parse_line(br#"{"event_type": 10}"#), Ok(None));
        assert_eq!(
            parse_line(br#"{"event_type": 9, "version": 10}"#),
            Err(EsParseError::Unusable {
                event: "exec",
                field: Field::Event
            })
        );
    }

    /// Reads `data`, then fails like a disk would.
    struct FailsAfter<'a>(&'a [u8]);

    impl Read for FailsAfter<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Err(io::Error::from_raw_os_error(libc::EIO));
            }
            let n = buf.len().min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn a_read_error_mid_file_keeps_what_was_read_and_fails() {
        use crate::store::{RowFilter, StoreConfig};
        let engine = Engine::new(
            StoreConfig::default(),
            Box::new(crate::users::FixedUsers::default()),
        );
        let mut data = line_of(&exec_message(10, object_token(3101, 9001)));
        data.extend_from_slice(b"\nnot json\n");
        let path = Path::new("/var/audit/capture.jsonl");
        let mut source = Eslogger::with_input(Input::Replay {
            path: path.to_path_buf(),
            file: None,
        });
        let mut reader = BufReader::with_capacity(64, FailsAfter(&data));
        let err = source
            .replay_lines(&mut reader, path, &engine)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(
                "reading eslogger file /var/audit/capture.jsonl failed after 2 line(s): "
            ),
            "{err}"
        );
        assert_eq!(engine.store().select(&RowFilter::default()).len(), 1);
        assert_eq!(source.drift().not_json, 1);
    }

    #[test]
    fn json_that_is_not_an_es_message_is_told_apart() {
        let shape = |line: &[u8]| match parse_message(line) {
            Ok((_, Parsed::Event(_))) => "event",
            Ok((_, Parsed::OtherEvent)) => "other",
            Ok((_, Parsed::Foreign)) => "foreign",
            Err(_) => "error",
        };
        assert_eq!(
            shape(&line_of(&exec_message(10, object_token(1, 2)))),
            "event"
        );
        assert_eq!(shape(br#"{"event_type": 10}"#), "other");
        assert_eq!(shape(br#"{"version": 10, "event": {"open": {}}}"#), "other");
        assert_eq!(
            shape(br#"{"name": "pack", "hostIdentifier": "h"}"#),
            "foreign"
        );
        assert_eq!(shape(br#"{"event_type": "exec"}"#), "foreign");
        assert_eq!(shape(b"root:x:0:0"), "error");
    }

    #[test]
    fn non_json_lines_are_errors() {
        assert!(matches!(
            parse_line(b"eslogger: starting"),
            Err(EsParseError::NotJson(_))
        ));
        assert!(matches!(
            parse_line(br#"{"version": 10, "event": {"exec""#),
            Err(EsParseError::NotJson(_))
        ));
        assert_eq!(parse_line(b"[1, 2]"), Err(EsParseError::NotAnObject));
        assert_eq!(parse_line(b"42"), Err(EsParseError::NotAnObject));
        assert!(parse_line(b"\xff\xfe").is_err());
    }

    #[test]
    fn odd_text_in_args_survives() {
        // Escaped control characters and U+FFFD parse as they are.
        let mut msg = exec_message(10, object_token(1, 2));
        msg["event"]["exec"]["args"] = json!(["kcc", "copy_cred_cache", "/tmp/a\u{1}\u{fffd}b"]);
        let ex = exec_of(&line_of(&msg));
        assert_eq!(ex.args.unwrap()[2], "/tmp/a\u{1}\u{fffd}b");
        assert!(!ex.envelope.repaired);

        // An unpaired surrogate escape, and a raw invalid byte: the line is
        // repaired, not lost.
        let text = String::from_utf8(line_of(&exec_message(10, object_token(1, 2)))).unwrap();
        let lone = text.replace("\\/tmp\\/bob.ccache", "\\/tmp\\/\\ud800x");
        let ex = exec_of(lone.as_bytes());
        assert!(ex.envelope.repaired);
        assert_eq!(ex.args.as_ref().unwrap()[2], "/tmp/\u{fffd}x");
        let mut raw = text.replace("bob.ccache", "b\u{1}").into_bytes();
        let at = raw.iter().position(|&b| b == 1).unwrap();
        raw[at] = 0xff;
        let ex = exec_of(&raw);
        assert!(ex.envelope.repaired);
        assert_eq!(ex.args.as_ref().unwrap()[2], "/tmp/b\u{fffd}");
        // A valid pair stays as it is.
        let pair = text.replace("bob.ccache", "\\ud83d\\ude00");
        let ex = exec_of(pair.as_bytes());
        assert!(!ex.envelope.repaired);
        assert_eq!(ex.args.unwrap()[2], "/tmp/\u{1f600}");
        // A non-string argument keeps its position.
        let mut msg = exec_message(10, object_token(1, 2));
        msg["event"]["exec"]["args"] = json!(["kcc", 7, null]);
        let ex = exec_of(&line_of(&msg));
        assert_eq!(ex.args.unwrap(), ["kcc", "7", "null"]);
        assert!(ex.envelope.drift.contains(Field::ExecArgs));
    }

    #[test]
    fn repair_only_touches_what_serde_rejects() {
        assert_eq!(repair(br#"{"a":"x\\ud800"}"#), None);
        assert_eq!(
            repair(br#"{"a":"\udc00\ud800\u0041"}"#).as_deref(),
            Some(r#"{"a":"\uFFFD\uFFFD\u0041"}"#)
        );
        assert_eq!(
            repair(br#"{"a":"\ud800"#).as_deref(),
            Some(r#"{"a":"\uFFFD"#)
        );
        assert_eq!(repair(b"\"\\u12\"").as_deref(), None);
        assert_eq!(repair(b"x\\").as_deref(), None);
        assert_eq!(repair(b"\"\xc3\"").as_deref(), Some("\"\u{fffd}\""));
    }

    #[test]
    fn fork_and_exit() {
        let fork = json!({
            "version": 10, "event_type": 11, "time": "2026-03-02T10:20:30.000000001Z",
            "global_seq_num": 5,
            "process": {"audit_token": [501, 501, 20, 501, 20, 700, 100020, 7000],
                        "executable": {"path": "/bin/bash"}},
            "event": {"fork": {"child": {
                "audit_token": [501, 501, 20, 501, 20, 701, 100020, 7010],
                "executable": {"path": "/bin/bash"}, "ppid": 700}}}
        });
        assert_eq!(
            parse_line(&line_of(&fork)).unwrap(),
            Some(EsEvent::Fork {
                envelope: Envelope {
                    version: Some(10),
                    global_seq_num: Some(5),
                    ..Envelope::default()
                },
                parent_pid: Some(700),
                parent_path: Some("/bin/bash".into()),
                child_pid: 701,
            })
        );
        let mut no_parent = fork.clone();
        no_parent.as_object_mut().unwrap().remove("process");
        match parse_line(&line_of(&no_parent)).unwrap() {
            Some(EsEvent::Fork {
                parent_pid,
                parent_path,
                envelope,
                ..
            }) => {
                assert_eq!(parent_pid, Some(700), "from child.ppid");
                assert_eq!(parent_path.as_deref(), Some("/bin/bash"));
                assert!(envelope.drift.contains(Field::ProcessAuditToken));
                assert!(envelope.drift.contains(Field::ProcessPath));
            }
            other => panic!("{other:?}"),
        }
        let exit = json!({"version": 9, "event_type": 15, "global_seq_num": 6,
                          "process": {"audit_token": object_token(701, 7010)},
                          "event": {"exit": {"stat": 256}}});
        assert_eq!(
            parse_line(&line_of(&exit)).unwrap(),
            Some(EsEvent::Exit {
                envelope: Envelope {
                    version: Some(9),
                    global_seq_num: Some(6),
                    ..Envelope::default()
                },
                pid: 701,
                stat: Some(256),
            })
        );
        let bad_fork =
            json!({"version": 10, "event": {"fork": {"child": {}}}, "global_seq_num": 1});
        assert_eq!(
            parse_line(&line_of(&bad_fork)),
            Err(EsParseError::Unusable {
                event: "fork",
                field: Field::ForkChildAuditToken
            })
        );
    }

    #[test]
    fn exec_event_carries_identity_and_parent() {
        let ex = exec_of(&line_of(&exec_message(10, object_token(3100, 9001))));
        let event = to_exec_event(&ex, Some((b"/bin/zsh".to_vec(), b"-zsh".to_vec())));
        assert_eq!(event.source, SourceKind::Eslogger);
        assert_eq!(event.path, b"/usr/bin/kcc");
        assert_eq!(event.argv[1], b"copy_cred_cache");
        assert_eq!(event.cwd.as_deref(), Some(&b"/Users/bob"[..]));
        assert_eq!(event.parent_path.as_deref(), Some(&b"/bin/zsh"[..]));
        assert_eq!(event.parent_argv, Some(vec![b"-zsh".to_vec()]));
        assert_eq!(event.code.signing_id, "com.apple.kcc");
        assert_eq!(event.code.team_id, "");
        assert_eq!(event.code.platform_binary, Some(true));
        assert_eq!(event.code.sha256, "");
        assert_eq!(event.discriminator, 9001);
        assert_eq!((event.time, event.time_nanos), (1_772_446_830, 123_456_789));
        assert!(!event.incomplete);
        // A parent known only from a fork has no command line.
        let event = to_exec_event(&ex, Some((b"/bin/zsh".to_vec(), Vec::new())));
        assert_eq!(event.parent_argv, None);
        let mut cut = ex.clone();
        cut.path_truncated = true;
        assert!(to_exec_event(&cut, None).incomplete);
        cut.pidversion = None;
        assert_eq!(to_exec_event(&cut, None).discriminator, 123_456_789);
    }

    #[test]
    fn only_krb5ccname_is_kept_from_the_environment() {
        let ex = exec_of(&line_of(&exec_message(10, object_token(3100, 9001))));
        assert_eq!(ex.krb5ccname, None);
        assert_eq!(to_exec_event(&ex, None).krb5ccname, None);
        let mut msg = exec_message(10, object_token(3100, 9001));
        msg["event"]["exec"]["env"] = json!([
            "PATH=/usr/bin:/bin",
            "KRB5CCNAMEX=no",
            "KRB5CCNAME=FILE:/tmp/krb5cc_502",
            "HOME=/Users/bob"
        ]);
        let ex = exec_of(&line_of(&msg));
        assert_eq!(ex.krb5ccname.as_deref(), Some("FILE:/tmp/krb5cc_502"));
        assert_eq!(
            to_exec_event(&ex, None).krb5ccname.as_deref(),
            Some(&b"FILE:/tmp/krb5cc_502"[..])
        );
        // Not an array, or no such variable: nothing, and no drift.
        msg["event"]["exec"]["env"] = json!("KRB5CCNAME=x");
        let ex = exec_of(&line_of(&msg));
        assert_eq!(ex.krb5ccname, None);
        assert!(ex.envelope.drift.0 == 0, "{:?}", ex.envelope.drift);
    }

    #[test]
    fn drift_summary_reads_well() {
        let mut d = SchemaDrift::default();
        assert_eq!(d.summary(), None);
        assert_eq!(d.total(), 0);
        let mut set = FieldSet::default();
        set.insert(Field::ExecArgs);
        set.insert(Field::Time);
        d.note(set);
        d.note(set);
        d.not_json = 1;
        assert_eq!(d.count(Field::ExecArgs), 2);
        assert_eq!(d.total(), 5);
        assert_eq!(
            d.summary().unwrap(),
            "schema drift: 1 non-JSON line(s), event.exec.args missing or changed in 2, \
             time missing or changed in 2"
        );
    }

    #[test]
    fn warnings_are_logged_once() {
        assert!(warn_once(WARN_TEST, || "first".into()));
        assert!(!warn_once(WARN_TEST, || "second".into()));
    }

    #[test]
    fn lines_are_capped() {
        let mut input = io::Cursor::new(b"short\nthis one is too long\n\nlast".to_vec());
        let mut buf = Vec::new();
        let mut got = Vec::new();
        loop {
            let r = read_line_capped(&mut input, &mut buf, 10).unwrap();
            if r == LineRead::Eof {
                break;
            }
            got.push((r, String::from_utf8(buf.clone()).unwrap()));
        }
        assert_eq!(
            got,
            [
                (LineRead::Line, "short".to_string()),
                (LineRead::TooLong, String::new()),
                (LineRead::Line, String::new()),
                (LineRead::Line, "last".to_string()),
            ]
        );
        // Across BufReader refills.
        let long = [b'a'; 100];
        let mut small = BufReader::with_capacity(8, &long[..]);
        assert_eq!(
            read_line_capped(&mut small, &mut buf, 1000).unwrap(),
            LineRead::Line
        );
        assert_eq!(buf.len(), 100);
    }

    #[test]
    fn stderr_tail_keeps_the_end() {
        let mut t = StderrTail::default();
        t.push(b"ERROR: one");
        t.push(b"");
        t.push(b"  two ");
        assert_eq!(t.text(), "ERROR: one; two");
        for _ in 0..1000 {
            t.push(b"filler line");
        }
        t.push(b"the end");
        assert!(t.bytes.len() <= STDERR_KEEP);
        assert!(t.text().ends_with("the end"));
    }

    #[test]
    fn hints_name_the_missing_permission() {
        let r = exit_reason(
            Path::new("/usr/bin/eslogger"),
            "exited at start",
            None,
            "ERROR: ES_NEW_CLIENT_RESULT_ERR_NOT_PERMITTED",
        );
        assert!(r.contains("Full Disk Access"), "{r}");
        assert!(r.starts_with("/usr/bin/eslogger exited at start (status unknown): ERROR"));
        assert!(hint("es_new_client_result_err_not_privileged")
            .unwrap()
            .contains("root"));
        assert_eq!(hint("eslogger must be run as root").unwrap(), HINT_ROOT);
        assert_eq!(hint("Operation not permitted").unwrap(), HINT_FDA);
        assert_eq!(hint("something else"), None);
        assert!(exit_reason(Path::new("x"), "exited", None, "").ends_with("without a message"));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let mut live = Live {
            program: PathBuf::new(),
            args: Vec::new(),
            child: None,
            first_backoff: BACKOFF_FIRST,
            max_backoff: BACKOFF_MAX,
            backoff: BACKOFF_FIRST,
            failure: None,
        };
        let seen: Vec<u64> = (0..9).map(|_| live.take_backoff().as_secs()).collect();
        assert_eq!(seen, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(fmt_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(fmt_duration(Duration::from_secs(4)), "4s");
    }
}
