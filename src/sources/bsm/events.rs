//! BSM records → exec and fork events.
//!
//! What xnu writes (bsd/security/audit/audit_bsm.c, kern_exec.c):
//!
//! * execve / posix_spawn (optional tokens in parentheses): (arg32 0 "child
//!   PID", posix_spawn only), exec_args, (exec_env), path as given, path
//!   resolved, attr32, (path and attr32 of the interpreter for a `#!`
//!   script), (data: the new image's cdhash, on success), subject, return,
//!   (identity), trailer.
//! * fork / vfork: arg32 0 "child PID", subject, return (value = child pid).
//!
//! The subject is the caller, with the credentials it had when it entered
//! the kernel: for execve the process itself (before any setuid change),
//! for posix_spawn the parent. The identity token is taken at the same
//! moment, so it describes the caller's code, not the new image; that is
//! why [`to_exec_event`] does not fill the event's code identity from it.

#![forbid(unsafe_code)]

use super::parse::{Attr, Identity, Record, Subject, Token, AUT_ARG32, AUT_SEQ};
use crate::event::{CodeIdentity, ExecEvent, SourceKind};
use crate::hash::Fnv1a;

// Event numbers (OpenBSM sys/bsm/audit_kevents.h; the same in xnu).
/// fork(2): read as a fork event (parent and child pid).
pub const AUE_FORK: u16 = 2;
pub(crate) const AUE_EXEC: u16 = 7;
/// execve(2): read as an exec; the subject is the process itself, so the
/// record names no parent (fork tracking supplies it).
pub const AUE_EXECVE: u16 = 23;
/// vfork(2): read as a fork event, like [`AUE_FORK`].
pub const AUE_VFORK: u16 = 25;
pub(crate) const AUE_FORK1: u16 = 241;
pub(crate) const AUE_DARWIN_RFORK: u16 = 353;
pub(crate) const AUE_RFORK: u16 = 43043;
pub(crate) const AUE_MAC_EXECVE: u16 = 43131;
pub(crate) const AUE_FEXECVE: u16 = 43144;
/// posix_spawn(2): read as an exec; the subject is the parent and an arg
/// token labelled "child PID" names the new process.
pub const AUE_POSIX_SPAWN: u16 = 43190;

/// The arg token text xnu uses for a new process's pid.
const CHILD_PID: &[u8] = b"child PID";
/// Data token print format and unit xnu uses for the cdhash.
const AUP_HEX: u8 = 3;
const AUR_BYTE: u8 = 0;
const CDHASH_LEN: usize = 20;

/// A successful exec, read from one record. Borrows from the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BsmExec<'a> {
    /// The audit event (AUE_EXECVE, AUE_POSIX_SPAWN, …).
    pub event: u16,
    /// Unix seconds and nanoseconds (millisecond resolution).
    pub time: (i64, u32),
    /// The process that runs the new image.
    pub pid: i64,
    /// Known for posix_spawn (the subject); not for execve.
    pub ppid: Option<i64>,
    /// Audit (login) user id from the subject; `u32::MAX` when never set
    /// (the event turns that into `None`).
    pub auid: u32,
    /// Effective user id from the subject: the caller's on entry, so before
    /// a setuid image takes effect.
    pub euid: u32,
    /// Effective group id from the subject, likewise before any setgid.
    pub egid: u32,
    /// Real user id from the subject (the event's `uid`).
    pub ruid: u32,
    /// Real group id from the subject (the event's `gid`).
    pub rgid: u32,
    /// Audit session id from the subject.
    pub sid: u32,
    /// The last path token: the resolved path of the image loaded (for a
    /// `#!` script that is the interpreter; the script is in `paths`).
    pub path: Option<&'a [u8]>,
    /// Every path token, in record order (as given, resolved, interpreter).
    pub paths: Vec<&'a [u8]>,
    /// The exec_args strings found, `argv[0]` first; empty when the record
    /// has none (see `argc`).
    pub argv: Vec<&'a [u8]>,
    /// The exec_args count field; `None` when the record has no exec_args
    /// (the kernel's `argv` audit policy is off).
    pub argc: Option<u32>,
    /// Fewer argv strings than the count (the kernel's 16 KiB cap).
    pub argv_truncated: bool,
    /// BSM records carry no working directory; always `None`.
    pub cwd: Option<&'a [u8]>,
    /// Attributes of the image loaded (the attr token after the last path).
    pub attr: Option<Attr>,
    /// The new image's cdhash (data token), upper-case hex.
    pub cdhash: Option<String>,
    /// The caller's code identity (identity token; see the module notes).
    pub caller_identity: Option<Identity<'a>>,
    /// The record could not be read to its end.
    pub partial: bool,
    /// Tells apart execs of one pid within one millisecond (header time,
    /// event, pids, record length, sequence number if present).
    pub discriminator: u64,
}

/// What a record means for process tracking.
// One value per record, matched on at once: boxing the exec would only add
// an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BsmEvent<'a> {
    /// A successful exec or posix_spawn.
    Exec(BsmExec<'a>),
    /// A successful fork (fork, vfork, rfork): remembered so a later execve by the
    /// child, whose record names no parent, gets one.
    Fork {
        /// The process that forked (the record's subject).
        parent_pid: i64,
        /// The new process (the "child PID" arg, else the return value).
        child_pid: i64,
        /// Header time, unix seconds and nanoseconds.
        time: (i64, u32),
    },
}

/// The tokens of a record that matter here.
#[derive(Default)]
struct Parts<'a> {
    subject: Option<Subject>,
    status: Option<u8>,
    return_value: Option<u64>,
    child_pid: Option<i64>,
    paths: Vec<&'a [u8]>,
    attr: Option<Attr>,
    args: Option<(Vec<&'a [u8]>, u32, bool)>,
    cdhash: Option<&'a [u8]>,
    identity: Option<Identity<'a>>,
    seq: Option<u32>,
}

fn parts<'a>(record: &Record<'a>) -> Parts<'a> {
    let mut p = Parts::default();
    for token in &record.tokens {
        match token {
            // The first subject is the record's actor.
            Token::Subject(s) if p.subject.is_none() => p.subject = Some(*s),
            Token::Return(r) => {
                p.status = Some(r.status);
                p.return_value = Some(r.value);
            }
            Token::Arg(a) if a.text == CHILD_PID => {
                p.child_pid = if a.id == AUT_ARG32 {
                    Some(pid_from_u32(u32::try_from(a.value).unwrap_or(0)))
                } else {
                    i64::try_from(a.value).ok()
                };
            }
            Token::Path(path) => p.paths.push(path),
            Token::Attr(a) => p.attr = Some(*a),
            Token::ExecArgs(a) => p.args = Some((a.strings.clone(), a.count, a.truncated)),
            Token::Data(d)
                if d.how_to_print == AUP_HEX
                    && d.unit_type == AUR_BYTE
                    && d.bytes.len() == CDHASH_LEN =>
            {
                p.cdhash = Some(d.bytes);
            }
            Token::Identity(id) => p.identity = Some(*id),
            Token::Other { id: AUT_SEQ, body } => {
                p.seq = body
                    .get(..4)
                    .and_then(|b| b.try_into().ok())
                    .map(u32::from_be_bytes);
            }
            _ => {}
        }
    }
    p
}

/// pid_t is signed: reinterpret the 32 bits.
fn pid_from_u32(v: u32) -> i64 {
    i64::from(i32::from_be_bytes(v.to_be_bytes()))
}

/// Upper-case hex, as eslogger and codesign print cdhashes.
pub fn hex_upper(bytes: &[u8]) -> String {
    hex::encode_upper(bytes)
}

/// Reads an exec or fork out of a record; `None` for other events, for a
/// failed exec or fork (return status ≠ 0: posix_spawnp writes one failed
/// record per `$PATH` entry it tries), and for records missing what is
/// needed (the subject; the child pid of a posix_spawn or fork).
pub fn interpret<'a>(record: &Record<'a>) -> Option<BsmEvent<'a>> {
    match record.header.event {
        AUE_EXEC | AUE_EXECVE | AUE_MAC_EXECVE | AUE_FEXECVE | AUE_POSIX_SPAWN => {
            exec(record).map(BsmEvent::Exec)
        }
        AUE_FORK | AUE_VFORK | AUE_FORK1 | AUE_DARWIN_RFORK | AUE_RFORK => fork(record),
        _ => None,
    }
}

fn exec<'a>(record: &Record<'a>) -> Option<BsmExec<'a>> {
    let p = parts(record);
    match p.status {
        Some(0) => {}
        Some(_) => return None,
        // Every xnu record has a return token; without one only a record cut
        // short is worth reporting (marked partial).
        None if record.partial.is_some() => {}
        None => return None,
    }
    let subject = p.subject?;
    let subject_pid = pid_from_u32(subject.pid);
    let (pid, ppid) = if record.header.event == AUE_POSIX_SPAWN {
        (p.child_pid.filter(|&c| c > 0)?, Some(subject_pid))
    } else {
        (subject_pid, None)
    };
    let (argv, argc, argv_truncated) = match p.args {
        Some((strings, count, truncated)) => (strings, Some(count), truncated),
        None => (Vec::new(), None, false),
    };
    let mut h = Fnv1a::new();
    h.write(&record.header.seconds.to_be_bytes());
    h.write(&record.header.millis.to_be_bytes());
    h.write(&record.header.event.to_be_bytes());
    h.write(&pid.to_be_bytes());
    h.write(&subject_pid.to_be_bytes());
    h.write(&u64::try_from(record.len).unwrap_or(u64::MAX).to_be_bytes());
    if let Some(seq) = p.seq {
        h.write(&seq.to_be_bytes());
    }
    Some(BsmExec {
        event: record.header.event,
        time: record.header.time(),
        pid,
        ppid,
        auid: subject.auid,
        euid: subject.euid,
        egid: subject.egid,
        ruid: subject.ruid,
        rgid: subject.rgid,
        sid: subject.sid,
        path: p.paths.last().copied(),
        paths: p.paths,
        argv,
        argc,
        argv_truncated,
        cwd: None,
        attr: p.attr,
        cdhash: p.cdhash.map(hex_upper),
        caller_identity: p.identity,
        partial: record.partial.is_some(),
        discriminator: h.finish(),
    })
}

fn fork<'a>(record: &Record<'a>) -> Option<BsmEvent<'a>> {
    let p = parts(record);
    if p.status.is_some_and(|s| s != 0) {
        return None;
    }
    let parent_pid = pid_from_u32(p.subject?.pid);
    // Prefer the labelled argument; the parent's return value is the child
    // pid too (return32 holds it in its low 32 bits).
    let child_pid = p.child_pid.or_else(|| {
        p.status?;
        let v = p.return_value?;
        Some(pid_from_u32(u32::try_from(v & 0xffff_ffff).ok()?))
    })?;
    if child_pid <= 0 {
        return None;
    }
    Some(BsmEvent::Fork {
        parent_pid,
        child_pid,
        time: record.header.time(),
    })
}

/// The normalized event. The record's own parent (posix_spawn) is exact
/// and wins; otherwise `ppid` (from fork tracking) is used; unknown stays
/// 0, as in the other sources. Code identity is left
/// empty: the record names the new image's cdhash only, which the event has
/// no field for, and its identity token is the caller's (see
/// [`caller_code_identity`]).
pub fn to_exec_event(exec: &BsmExec<'_>, ppid: Option<i64>) -> ExecEvent {
    ExecEvent {
        time: exec.time.0,
        time_nanos: exec.time.1,
        pid: exec.pid,
        ppid: exec.ppid.or(ppid).unwrap_or(0),
        path: exec.path.unwrap_or_default().to_vec(),
        argv: exec.argv.iter().map(|a| a.to_vec()).collect(),
        cwd: exec.cwd.map(<[u8]>::to_vec),
        uid: Some(i64::from(exec.ruid)),
        euid: Some(i64::from(exec.euid)),
        gid: Some(i64::from(exec.rgid)),
        egid: Some(i64::from(exec.egid)),
        auid: crate::event::known_auid(Some(i64::from(exec.auid))),
        parent_path: None,
        parent_argv: None,
        code: CodeIdentity::default(),
        source: SourceKind::Bsm,
        discriminator: exec.discriminator,
        incomplete: exec.partial || exec.argv_truncated,
        krb5ccname: None,
    }
}

/// The identity token as a [`CodeIdentity`]: the code signature of the
/// process that made the exec call (for execve, the image being replaced;
/// for posix_spawn, the parent), not of the program started.
pub fn caller_code_identity(exec: &BsmExec<'_>) -> Option<CodeIdentity> {
    let id = exec.caller_identity?;
    Some(CodeIdentity {
        signing_id: String::from_utf8_lossy(id.signing_id).into_owned(),
        team_id: String::from_utf8_lossy(id.team_id).into_owned(),
        platform_binary: Some(id.platform_binary()),
        sha256: String::new(),
    })
}
