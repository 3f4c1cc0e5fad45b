//! The full parse of one eslogger line: serde_json into a `Value` tree,
//! then every field the source uses read by name, with drift noted.

use super::*;
use jiff::fmt::temporal::DateTimeParser;

// --- what the parser reports ---------------------------------------------

/// A JSON field the parser reads; used to report schema drift.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
///
/// The declaration order is each field's bit in [`FieldSet`] and in the
/// warn-once mask (bits 0..21): append new fields, do not reorder.
pub enum Field {
    /// `.version`, the ES message version.
    Version,
    /// `.time`, the event's RFC 3339 timestamp.
    Time,
    /// `.global_seq_num`, expected from message version 4 on.
    GlobalSeqNum,
    /// `.event`, the object holding the event by type (an exec, fork or
    /// exit message without it is dropped).
    Event,
    /// `.event.exec.target`, the process after exec.
    ExecTarget,
    /// The exec'd executable's path; without it `dyld_exec_path` is used.
    ExecPath,
    /// Whether ES cut the exec'd path.
    ExecPathTruncated,
    /// The exec'd process's audit token (pid, pid version, ids).
    ExecAuditToken,
    /// The exec's argv.
    ExecArgs,
    /// The exec's working directory, expected from message version 3 on.
    ExecCwd,
    /// The exec'd process's parent pid.
    ExecPpid,
    /// The exec'd process's parent pid at creation.
    ExecOriginalPpid,
    /// The exec'd image's code-signing id.
    ExecSigningId,
    /// The exec'd image's team id.
    ExecTeamId,
    /// Whether the exec'd image is an Apple platform binary.
    ExecPlatformBinary,
    /// The exec'd image's code directory hash.
    ExecCdhash,
    /// The audit token of the process the event is about (the caller of
    /// fork, the exiting process).
    ProcessAuditToken,
    /// The executable path of the process the event is about (a fork's parent).
    ProcessPath,
    /// `.event.fork.child`, the new process.
    ForkChild,
    /// The fork child's audit token, which gives its pid.
    ForkChildAuditToken,
    /// The exit's wait(2) status word.
    ExitStat,
}

impl Field {
    /// Every field, in declaration (bit) order.
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

    pub(super) fn bit(self) -> u32 {
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
pub struct FieldSet(pub(super) u32);

impl FieldSet {
    /// Adds `field` to the set.
    pub fn insert(&mut self, field: Field) {
        self.0 |= field.bit();
    }

    /// Whether `field` is in the set.
    pub fn contains(self, field: Field) -> bool {
        self.0 & field.bit() != 0
    }

    /// True when no field drifted.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The fields in the set, in [`Field::ALL`] order.
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
pub(crate) struct AuditToken {
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
    pub(super) fn is_complete(&self) -> bool {
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
pub(super) const TOKEN_KEYS: [&str; 8] = [
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
pub(crate) fn parse_audit_token(value: &Value) -> Option<AuditToken> {
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
pub(super) fn id32(v: Option<i64>) -> Option<i64> {
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
    /// The message's version, sequence number and drift.
    pub envelope: Envelope,
    /// `.time` as unix seconds and nanoseconds; (0, 0) when unreadable (then
    /// `envelope.drift` has [`Field::Time`]).
    pub time: i64,
    /// Nanoseconds within `time`'s second (0..1e9).
    pub time_nanos: u32,
    /// Pid of the exec'd process, from the target's audit token (exec keeps
    /// the pid, so the caller's token stands in when the target's lacks it).
    pub pid: i64,
    /// The target's pid version: with the pid, it names this one execution.
    pub pidversion: Option<i64>,
    /// Parent pid at exec time.
    pub ppid: Option<i64>,
    /// Parent pid at process creation (unchanged by reparenting).
    pub original_ppid: Option<i64>,
    /// The exec'd executable's path; never empty. When ES gave none, the
    /// path as passed to execve (`dyld_exec_path`, before symlinks).
    pub path: String,
    /// ES cut the path (over about 16 KiB).
    pub path_truncated: bool,
    /// argv, `argv[0]` first; `None` when the message had none.
    pub args: Option<Vec<String>>,
    /// Working directory at exec (`.event.exec.cwd.path`, message version 3+).
    pub cwd: Option<String>,
    /// Real uid, from the target's audit token (`ruid`).
    pub uid: Option<i64>,
    /// Effective uid, from the target's audit token.
    pub euid: Option<i64>,
    /// Real gid, from the target's audit token (`rgid`).
    pub gid: Option<i64>,
    /// Effective gid, from the target's audit token.
    pub egid: Option<i64>,
    /// Audit (login) uid, from the target's audit token; 4294967295
    /// (`AU_DEFAUDITID`) when unset.
    pub auid: Option<i64>,
    /// Code-signing identifier; "" when eslogger wrote null or the field was
    /// missing.
    pub signing_id: String,
    /// "" for platform binaries and ad-hoc code (eslogger writes null).
    pub team_id: String,
    /// Whether the image is an Apple platform binary; `None` when not reported.
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
    /// A process replaced its image.
    Exec(EsExec),
    /// `parent_pid` forked `child_pid`; the child runs the parent's image.
    Fork {
        /// The message's version, sequence number and drift.
        envelope: Envelope,
        /// The forking process's pid, from `.process`'s audit token or else
        /// the child's `ppid`.
        parent_pid: Option<i64>,
        /// The forking process's executable (`.process.executable.path`, else
        /// the child's, which is the same image).
        parent_path: Option<String>,
        /// The new process's pid, from its audit token.
        child_pid: i64,
    },
    /// `stat` is the wait(2) status word, not an exit code.
    Exit {
        /// The message's version, sequence number and drift.
        envelope: Envelope,
        /// The exiting process's pid, from `.process`'s audit token.
        pid: i64,
        /// The wait(2) status; `None` when the message had none.
        stat: Option<i64>,
    },
}

impl EsEvent {
    /// The envelope, whichever the event.
    pub fn envelope(&self) -> &Envelope {
        match self {
            EsEvent::Exec(e) => &e.envelope,
            EsEvent::Fork { envelope, .. } | EsEvent::Exit { envelope, .. } => envelope,
        }
    }
}

/// Why a line gave no event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EsParseError {
    /// Not JSON, even after repairing its encoding (serde_json's message).
    #[error("not JSON: {0}")]
    NotJson(String),
    /// JSON, but not an object.
    #[error("JSON, but not an object")]
    NotAnObject,
    /// An exec, fork or exit without what identifies it (pid, path).
    #[error("{event} event without a usable {field}")]
    Unusable {
        /// Which event: "exec", "fork" or "exit".
        event: &'static str,
        /// The field that was missing or unreadable.
        field: Field,
    },
}

/// What a source could not read, for the status reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchemaDrift {
    /// Lines that were not a JSON object.
    pub not_json: u64,
    /// JSON objects that are not ES messages (neither an `event` object nor
    /// an integer `event_type`): a file of something else.
    pub(crate) not_eslogger: u64,
    /// Lines over [`MAX_LINE`], dropped.
    pub oversized: u64,
    /// Lines parsed only after replacing invalid UTF-8 or unpaired surrogate
    /// escapes.
    pub repaired: u64,
    /// Exec, fork or exit messages dropped for lack of a pid or path.
    pub(crate) unusable: u64,
    /// Per field path: messages where it was absent or of another type.
    pub fields: BTreeMap<&'static str, u64>,
}

impl SchemaDrift {
    pub(crate) fn note(&mut self, drift: FieldSet) {
        for f in drift.iter() {
            *self.fields.entry(f.path()).or_default() += 1;
        }
    }

    /// Messages in which `field` was absent or of another type.
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
pub(super) static WARNED: AtomicU32 = AtomicU32::new(0);
pub(super) const WARN_OVERSIZED: u32 = 1 << 27;
#[cfg(test)]
pub(super) const WARN_TEST: u32 = 1 << 28;
pub(super) const WARN_NOT_JSON: u32 = 1 << 29;
pub(super) const WARN_REPAIRED: u32 = 1 << 30;
pub(super) const WARN_VERSION: u32 = 1 << 31;

/// Logs `message` the first time `bit` is seen; true if it logged.
pub(super) fn warn_once(bit: u32, message: impl FnOnce() -> String) -> bool {
    if WARNED.load(Ordering::Relaxed) & bit != 0 {
        return false;
    }
    if WARNED.fetch_or(bit, Ordering::Relaxed) & bit != 0 {
        return false;
    }
    log::warn!("{} (logged once)", message());
    true
}

pub(super) fn warn_drift(envelope: &Envelope) {
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
pub(super) enum Parsed {
    Event(EsEvent),
    /// An ES message of a type this source does not use.
    OtherEvent,
    /// Not an ES message at all: no `event` object, no integer `event_type`.
    Foreign,
}

/// [`parse_line`], plus the envelope of messages of other types (their
/// sequence numbers count too when looking for gaps), and whether the object
/// was an ES message at all (a replay of some other JSON is an error).
pub(super) fn parse_message(line: &[u8]) -> Result<(Envelope, Parsed), EsParseError> {
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
pub(super) fn since(version: Option<i64>, min: i64) -> bool {
    version.is_none_or(|v| v >= min)
}

/// A string value taken out of the tree (no copy); `None` if absent, null or
/// another type.
pub(super) fn take_string(value: Option<&mut Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(std::mem::take(s)),
        _ => None,
    }
}

/// A string that may be null: null reads as "", absent or another type as
/// `None`.
pub(super) fn take_nullable_string(value: Option<&mut Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(std::mem::take(s)),
        Value::Null => Some(String::new()),
        _ => None,
    }
}

pub(super) fn parse_exec(
    root: &mut Value,
    exec: Value,
    envelope: Envelope,
) -> Result<EsExec, EsParseError> {
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
pub(super) fn take_krb5ccname(env: Option<&mut Value>) -> Option<String> {
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

pub(super) fn parse_fork(
    root: &mut Value,
    fork: Value,
    envelope: Envelope,
) -> Result<EsEvent, EsParseError> {
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

pub(super) fn parse_exit(
    root: &Value,
    exit: &Value,
    envelope: Envelope,
) -> Result<EsEvent, EsParseError> {
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
pub(super) fn repair(line: &[u8]) -> Option<String> {
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

pub(super) fn hex4(bytes: &[u8], at: usize) -> Option<u32> {
    let mut be = [0u8; 2];
    hex::decode_to_slice(bytes.get(at..at + 4)?, &mut be).ok()?;
    Some(u32::from(u16::from_be_bytes(be)))
}

/// The start of a line, for a log message.
pub(super) fn preview(line: &[u8]) -> String {
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
///
/// jiff does the parsing and the calendar. Its Temporal grammar is wider
/// than RFC 3339 (a space for `T`, `,` for `.`, `±hhmm` and `±hh` offsets,
/// offsets up to 25 hours, expanded years, bracketed zones) and narrower in
/// one place (at most nine fractional digits), so the shape is checked here
/// first and extra fractional digits are cut.
pub(crate) fn parse_rfc3339(text: &str) -> Option<(i64, u32)> {
    static PARSER: DateTimeParser = DateTimeParser::new();
    let b = text.as_bytes();
    let at = |i: usize, c: u8| b.get(i).is_some_and(|x| x.eq_ignore_ascii_case(&c));
    if !(at(4, b'-') && at(7, b'-') && at(10, b'T') && at(13, b':') && at(16, b':')) {
        return None;
    }
    // End of the fraction digits kept (at most nine), and of all of them.
    let (mut keep, mut end) = (19, 19);
    if b.get(19) == Some(&b'.') {
        end = 20;
        while b.get(end).is_some_and(u8::is_ascii_digit) {
            end += 1;
        }
        if end == 20 {
            return None;
        }
        keep = end.min(29);
    }
    let offset = b.get(end..)?;
    if !matches!(
        offset,
        [b'Z' | b'z']
            | [b'+' | b'-', b'0' | b'1', b'0'..=b'9', b':', _, _]
            | [b'+' | b'-', b'2', b'0'..=b'3', b':', _, _]
    ) {
        return None;
    }
    let parsed = if keep == end {
        PARSER.parse_timestamp(b)
    } else {
        // At most 19 + 10 + 6 bytes.
        let mut buf = [0u8; 35];
        let len = keep + offset.len();
        buf.get_mut(..keep)?.copy_from_slice(b.get(..keep)?);
        buf.get_mut(keep..len)?.copy_from_slice(offset);
        PARSER.parse_timestamp(buf.get(..len)?)
    };
    let ts = parsed.ok()?;
    // jiff's fraction has the sign of the timestamp; ours is never negative.
    let (secs, nanos) = (ts.as_second(), ts.subsec_nanosecond());
    if nanos < 0 {
        Some((secs - 1, u32::try_from(nanos + 1_000_000_000).ok()?))
    } else {
        Some((secs, u32::try_from(nanos).ok()?))
    }
}

// --- to the engine ---------------------------------------------------------
