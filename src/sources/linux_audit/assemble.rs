//! Assembles audit records into exec events.
//!
//! The kernel reports one exec as several records sharing an event id:
//! SYSCALL, EXECVE (one or more), CWD, PATH (one per name), PROCTITLE and,
//! last, EOE. Records of different events may interleave. The assembler keeps
//! the events in progress in a small table and emits an exec on its EOE, when
//! it has waited too long ([`Assembler::expire`]), or when the table is full.
//!
//! Every exec on the host passes through here and nearly all are dropped by
//! the classifier right after, so the steady state is kept cheap: only the
//! needed fields are read, the records of a non-exec event are dropped
//! unread once its SYSCALL is seen, and the buffers of finished events are
//! reused, so once warm a non-Kerberos exec costs no allocation.

use super::record::{
    self, decode_append, decode_into, encoded_len, fields, Header, AUDIT_CWD, AUDIT_EOE,
    AUDIT_EXECVE, AUDIT_PATH, AUDIT_PROCTITLE, AUDIT_SYSCALL,
};
use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

/// Arguments at or beyond this index are dropped (and the event marked
/// incomplete): a bound on what a corrupt stream can make us hold.
const MAX_ARGS: usize = 1 << 18;
/// The largest jump in argument index filled with empty arguments; a larger
/// one is corrupt input rather than a lost record.
const MAX_ARG_GAP: usize = 4096;
/// Raw argument text kept per event. Linux caps argv plus environment at
/// 6 MiB, hex doubles it; more than this is not a real exec.
const MAX_ARGV_TEXT: usize = 16 << 20;
/// What an argument costs against MAX_ARGV_TEXT besides its text, so that
/// many empty arguments are bounded too.
const ARG_OVERHEAD: usize = 32;
/// Pooled buffers above these sizes are freed rather than kept, so one huge
/// exec does not pin its memory for the life of the process.
const KEEP_ARG_BUFFERS: usize = 256;
const KEEP_BUFFER_BYTES: usize = 64 << 10;
/// How many finished event ids are remembered to recognise late records.
const DONE_RING: usize = 4096;

/// The assembler's bounds on time and memory.
#[derive(Debug, Clone, Copy)]
pub struct AssemblerConfig {
    /// How long an event may wait for its EOE before [`Assembler::expire`]
    /// emits it anyway.
    pub timeout: Duration,
    /// Events in progress at most; the oldest is forced out beyond it.
    pub max_pending: usize,
    /// Argument text held by events in progress at most; beyond it the
    /// oldest other events are forced out. Without it, megabyte argvs whose
    /// EOE was lost (a receive-buffer overrun) would each be held for the
    /// whole timeout: memory would follow argv size times exec rate.
    pub max_pending_bytes: usize,
}

impl Default for AssemblerConfig {
    fn default() -> Self {
        AssemblerConfig {
            timeout: Duration::from_millis(500),
            max_pending: 4096,
            max_pending_bytes: 16 << 20,
        }
    }
}

/// Counters over the assembler's life, for the status table and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AssemblerStats {
    /// Records pushed, of any type.
    pub records: u64,
    /// Records that could not be used: a SYSCALL without a syscall number,
    /// an EXECVE with no argument field, plus what the reader reports
    /// through [`Assembler::note_malformed`].
    pub(crate) malformed: u64,
    /// Events that turned out not to be execs.
    pub non_exec: u64,
    /// execve/execveat calls that failed (`success=no`); not emitted.
    pub failed_exec: u64,
    /// Exec events emitted, complete or not.
    pub emitted: u64,
    /// Of those, the ones marked incomplete.
    pub incomplete: u64,
    /// Events forced out because the pending table was full.
    pub(crate) overflow: u64,
    /// Records that arrived for an event already finished; dropped.
    pub(crate) late: u64,
}

/// One exec being assembled, or just completed when handed to `emit`.
///
/// Its buffers are pooled and reused across events, so the accessors borrow:
/// copy out what must outlive the `emit` call.
pub struct AuditExec {
    /// The event id (time and serial) its records share.
    pub header: Header,
    /// The SYSCALL's AUDIT_ARCH_* value; 0 without a SYSCALL.
    pub arch: u32,
    /// The syscall number; -1 without a SYSCALL.
    pub syscall: i64,
    /// The SYSCALL's `success=`: `Some(false)` for a failed exec (never
    /// emitted); `None` without a SYSCALL or when it said neither yes nor no.
    pub success: Option<bool>,
    /// 0 when unknown (no SYSCALL).
    pub pid: i64,
    /// 0 when unknown (no SYSCALL).
    pub ppid: i64,
    /// Real uid from the SYSCALL record; `None` without one.
    pub uid: Option<i64>,
    /// Effective uid from the SYSCALL record; `None` without one.
    pub euid: Option<i64>,
    /// Real gid from the SYSCALL record; `None` without one.
    pub gid: Option<i64>,
    /// Effective gid from the SYSCALL record; `None` without one.
    pub egid: Option<i64>,
    /// Kept as logged: 4294967295 means unset.
    pub auid: Option<i64>,
    /// Emitted without its SYSCALL, without (all of) its EXECVE records
    /// (fewer arguments than argc, a gap, a split argument short of its
    /// `aN_len`), or forced out of a full table: argv or ids may be missing
    /// or partial.
    pub incomplete: bool,
    has_syscall: bool,
    has_execve: bool,
    exe: Vec<u8>,
    has_exe: bool,
    /// PATH item 0's name: the exe when the SYSCALL is missing.
    path0: Vec<u8>,
    has_path0: bool,
    cwd: Vec<u8>,
    has_cwd: bool,
    /// `args[..nargs]` belong to this event; the rest are spare buffers.
    args: Vec<Vec<u8>>,
    nargs: usize,
    argc: Option<u32>,
    /// Raw argument text taken so far, against MAX_ARGV_TEXT.
    argv_text: usize,
    split: Split,
    /// PROCTITLE's raw value, decoded only if no EXECVE arrives.
    proctitle: Vec<u8>,
    has_proctitle: bool,
    scratch: Vec<u8>,
    /// Arguments were lost or unreadable.
    damaged: bool,
}

/// The argument being received in pieces (`aN_len=`, `aN[0]=`, `aN[1]=`…).
#[derive(Debug, Default, Clone, Copy)]
struct Split {
    active: bool,
    arg: usize,
    /// `aN_len`: the argument's length as logged (hex digits when hex).
    want: u64,
    got: u64,
    next_piece: u64,
}

/// What a SYSCALL record says about its event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Exec,
    NotExec,
    Failed,
    /// An arch this table does not know: EXECVE records will tell.
    Unknown,
    /// No syscall number.
    Malformed,
}

/// How an argument field names its argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ArgKey {
    /// `aN=`
    Whole(usize),
    /// `aN_len=`
    Len(usize),
    /// `aN[k]=`
    Piece(usize, u64),
}

impl AuditExec {
    fn empty() -> AuditExec {
        AuditExec {
            header: Header {
                sec: 0,
                msec: 0,
                serial: 0,
            },
            arch: 0,
            syscall: -1,
            success: None,
            pid: 0,
            ppid: 0,
            uid: None,
            euid: None,
            gid: None,
            egid: None,
            auid: None,
            incomplete: false,
            has_syscall: false,
            has_execve: false,
            exe: Vec::new(),
            has_exe: false,
            path0: Vec::new(),
            has_path0: false,
            cwd: Vec::new(),
            has_cwd: false,
            args: Vec::new(),
            nargs: 0,
            argc: None,
            argv_text: 0,
            split: Split::default(),
            proctitle: Vec::new(),
            has_proctitle: false,
            scratch: Vec::new(),
            damaged: false,
        }
    }

    /// The executable: the SYSCALL's `exe`, else PATH item 0's name.
    pub fn exe(&self) -> Option<&[u8]> {
        if self.has_exe {
            Some(&self.exe)
        } else if self.has_path0 {
            Some(&self.path0)
        } else {
            None
        }
    }

    /// argv in order, split arguments joined. Without any EXECVE record,
    /// the (truncated) PROCTITLE's argv.
    pub fn argv(&self) -> &[Vec<u8>] {
        self.args.get(..self.nargs).unwrap_or_default()
    }

    /// The working directory, from the CWD record; `None` without one or
    /// when it was empty or undecodable.
    pub fn cwd(&self) -> Option<&[u8]> {
        self.has_cwd.then_some(self.cwd.as_slice())
    }

    /// The EXECVE's `argc`.
    pub fn argc(&self) -> Option<u32> {
        self.argc
    }

    /// Makes a finished event's buffers ready for the next one, freeing
    /// those an unusually large event left behind.
    fn reset(&mut self) {
        let mut args = std::mem::take(&mut self.args);
        let nargs = self.nargs;
        let mut proctitle = std::mem::take(&mut self.proctitle);
        let mut scratch = std::mem::take(&mut self.scratch);
        let mut exe = std::mem::take(&mut self.exe);
        let mut path0 = std::mem::take(&mut self.path0);
        let mut cwd = std::mem::take(&mut self.cwd);
        for buf in [&mut proctitle, &mut scratch, &mut exe, &mut path0, &mut cwd] {
            drop_if_large(buf);
        }
        for buf in args.iter_mut().take(nargs) {
            drop_if_large(buf);
        }
        args.truncate(KEEP_ARG_BUFFERS);
        if args.capacity() > 4 * KEEP_ARG_BUFFERS {
            args.shrink_to(KEEP_ARG_BUFFERS);
        }
        *self = AuditExec {
            args,
            proctitle,
            scratch,
            exe,
            path0,
            cwd,
            ..AuditExec::empty()
        };
    }

    fn apply_syscall(&mut self, body: &[u8]) -> Verdict {
        self.has_syscall = true;
        let mut arch = None;
        let mut number = None;
        for (key, value) in fields(body) {
            match key {
                b"arch" => arch = record::parse_hex_u32(value),
                b"syscall" => number = record::parse_i64(value),
                b"success" => {
                    self.success = match value {
                        b"yes" => Some(true),
                        b"no" => Some(false),
                        _ => None,
                    };
                    if self.success == Some(false) {
                        // Failed: not emitted, so the rest is not needed.
                        break;
                    }
                }
                b"ppid" => self.ppid = record::parse_i64(value).unwrap_or(0),
                b"pid" => self.pid = record::parse_i64(value).unwrap_or(0),
                b"auid" => self.auid = record::parse_i64(value),
                b"uid" => self.uid = record::parse_i64(value),
                b"gid" => self.gid = record::parse_i64(value),
                b"euid" => self.euid = record::parse_i64(value),
                b"egid" => self.egid = record::parse_i64(value),
                b"exe" => {
                    self.has_exe = decode_into(value, &mut self.exe) && !self.exe.is_empty();
                    // Nothing after exe is used.
                    break;
                }
                _ => continue,
            }
            if let (Some(a), Some(n)) = (arch, number) {
                if super::arch::exec_syscall(a, n) == Some(false) {
                    // Another rule's syscall: two fields were enough.
                    break;
                }
            }
        }
        self.arch = arch.unwrap_or(0);
        self.syscall = number.unwrap_or(-1);
        let Some(number) = number else {
            return Verdict::Malformed;
        };
        match arch.and_then(|a| super::arch::exec_syscall(a, number)) {
            Some(false) => Verdict::NotExec,
            Some(true) if self.success == Some(false) => Verdict::Failed,
            Some(true) => Verdict::Exec,
            // A failed call of unknown kind cannot be a successful exec.
            None if self.success == Some(false) => Verdict::NotExec,
            None => Verdict::Unknown,
        }
    }

    /// Takes one EXECVE record (the first or a continuation). False when it
    /// held no argument field at all.
    fn apply_execve(&mut self, body: &[u8]) -> bool {
        self.has_execve = true;
        let mut any = false;
        for (key, value) in fields(body) {
            if key == b"argc" {
                any = true;
                self.argc = record::parse_u64(value).and_then(|n| u32::try_from(n).ok());
                self.damaged |= self.argc.is_none();
                continue;
            }
            let Some(arg) = arg_key(key) else {
                continue;
            };
            any = true;
            match arg {
                ArgKey::Whole(n) => {
                    self.end_split();
                    self.set_arg(n, value);
                }
                ArgKey::Len(n) => {
                    self.end_split();
                    if let Some(i) = self.arg_index(n) {
                        if let Some(buf) = self.args.get_mut(i) {
                            buf.clear();
                        }
                        let want = record::parse_u64(value);
                        self.damaged |= want.is_none();
                        self.split = Split {
                            active: true,
                            arg: n,
                            want: want.unwrap_or(0),
                            got: 0,
                            next_piece: 0,
                        };
                    }
                }
                ArgKey::Piece(n, k) => self.add_piece(n, k, value),
            }
        }
        any
    }

    fn set_arg(&mut self, n: usize, raw: &[u8]) {
        let Some(i) = self.arg_index(n) else {
            return;
        };
        if !self.take_text(raw.len()) {
            return;
        }
        if let Some(buf) = self.args.get_mut(i) {
            if !decode_into(raw, buf) {
                // Neither quoted nor hex: keep the text as it came.
                buf.extend_from_slice(raw);
            }
        }
    }

    fn add_piece(&mut self, n: usize, k: u64, raw: &[u8]) {
        let current = self.split.active && self.split.arg == n;
        if !current || self.split.next_piece != k {
            // The record with aN_len or an earlier piece was lost.
            self.damaged = true;
            if !current {
                self.end_split();
            }
        }
        let Some(i) = self.arg_index(n) else {
            return;
        };
        if !self.take_text(raw.len()) {
            return;
        }
        if let Some(buf) = self.args.get_mut(i) {
            if !decode_append(raw, buf) {
                buf.extend_from_slice(raw);
            }
        }
        if current {
            self.split.got = self.split.got.saturating_add(encoded_len(raw) as u64);
            self.split.next_piece = k.saturating_add(1);
        }
    }

    /// Closes the argument received in pieces; shorter than its `aN_len`
    /// means a continuation record was lost.
    fn end_split(&mut self) {
        if self.split.active && self.split.got < self.split.want {
            self.damaged = true;
        }
        self.split.active = false;
    }

    /// The index of argument `n`, adding it (and empty ones for any skipped)
    /// if it is new. None, and the event damaged, for an absurd index.
    fn arg_index(&mut self, n: usize) -> Option<usize> {
        if n < self.nargs {
            return Some(n);
        }
        if n >= MAX_ARGS || n - self.nargs > MAX_ARG_GAP {
            self.damaged = true;
            return None;
        }
        // Arguments between were in a lost record.
        self.damaged |= n > self.nargs;
        if !self.take_text((n + 1 - self.nargs) * ARG_OVERHEAD) {
            return None;
        }
        while self.nargs <= n {
            match self.args.get_mut(self.nargs) {
                Some(buf) => buf.clear(),
                None => self.args.push(Vec::new()),
            }
            self.nargs += 1;
        }
        Some(n)
    }

    fn take_text(&mut self, len: usize) -> bool {
        match self.argv_text.checked_add(len) {
            Some(total) if total <= MAX_ARGV_TEXT => {
                self.argv_text = total;
                true
            }
            _ => {
                self.damaged = true;
                false
            }
        }
    }

    fn apply_cwd(&mut self, body: &[u8]) {
        if let Some((_, value)) = fields(body).find(|(key, _)| *key == b"cwd") {
            self.has_cwd = decode_into(value, &mut self.cwd) && !self.cwd.is_empty();
        }
    }

    /// Only item 0's name is kept, and only while the SYSCALL's exe is
    /// missing: it is the exe's fallback.
    fn apply_path(&mut self, body: &[u8]) {
        if self.has_exe || self.has_path0 {
            return;
        }
        let mut item0 = false;
        let mut name = None;
        for (key, value) in fields(body) {
            match key {
                b"item" if value != b"0" => return,
                b"item" => item0 = true,
                b"name" => name = Some(value),
                _ => continue,
            }
            if item0 && name.is_some() {
                break;
            }
        }
        if let (true, Some(raw)) = (item0, name) {
            self.has_path0 = decode_into(raw, &mut self.path0) && !self.path0.is_empty();
        }
    }

    fn apply_proctitle(&mut self, body: &[u8]) {
        if self.has_execve {
            // EXECVE has the whole argv; PROCTITLE is a truncated copy.
            return;
        }
        if let Some((_, value)) = fields(body).find(|(key, _)| *key == b"proctitle") {
            self.proctitle.clear();
            self.proctitle.extend_from_slice(value);
            self.has_proctitle = true;
        }
    }

    /// Completes the event before it is emitted.
    fn finalize(&mut self, forced_incomplete: bool) {
        self.end_split();
        if !self.has_execve && self.has_proctitle {
            self.argv_from_proctitle();
        }
        let args_missing = match self.argc {
            Some(argc) => (self.nargs as u64) < u64::from(argc),
            None => true,
        };
        self.incomplete = forced_incomplete
            || self.damaged
            || !self.has_syscall
            || !self.has_execve
            || args_missing;
    }

    /// PROCTITLE is argv joined by NULs (and cut at 128 bytes).
    fn argv_from_proctitle(&mut self) {
        let mut text = std::mem::take(&mut self.scratch);
        if decode_into(&self.proctitle, &mut text) && !text.is_empty() {
            for (n, part) in text.split(|&b| b == 0).enumerate() {
                let Some(i) = self.arg_index(n) else {
                    break;
                };
                if let Some(buf) = self.args.get_mut(i) {
                    buf.extend_from_slice(part);
                }
            }
        }
        self.scratch = text;
    }
}

impl fmt::Debug for AuditExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        f.debug_struct("AuditExec")
            .field("header", &self.header)
            .field("arch", &format_args!("{:x}", self.arch))
            .field("syscall", &self.syscall)
            .field("success", &self.success)
            .field("pid", &self.pid)
            .field("ppid", &self.ppid)
            .field("uid", &self.uid)
            .field("euid", &self.euid)
            .field("gid", &self.gid)
            .field("egid", &self.egid)
            .field("auid", &self.auid)
            .field("exe", &self.exe().map(text))
            .field("argc", &self.argc)
            .field(
                "argv",
                &self.argv().iter().map(|a| text(a)).collect::<Vec<_>>(),
            )
            .field("cwd", &self.cwd().map(text))
            .field("incomplete", &self.incomplete)
            .finish()
    }
}

fn drop_if_large(buf: &mut Vec<u8>) {
    if buf.capacity() > KEEP_BUFFER_BYTES {
        *buf = Vec::new();
    }
}

/// Parses `aN`, `aN_len` and `aN[k]`.
fn arg_key(key: &[u8]) -> Option<ArgKey> {
    let rest = key.strip_prefix(b"a")?;
    let digits = rest
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(digits);
    let n = usize::try_from(record::parse_u64(number)?).ok()?;
    if suffix.is_empty() {
        return Some(ArgKey::Whole(n));
    }
    if suffix == b"_len" {
        return Some(ArgKey::Len(n));
    }
    let k = suffix.strip_prefix(b"[")?.strip_suffix(b"]")?;
    Some(ArgKey::Piece(n, record::parse_u64(k)?))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The SYSCALL says execve/execveat, and it succeeded.
    Exec,
    /// No SYSCALL yet, or one of an unknown arch: an EXECVE record decides.
    Undecided,
    /// Not an exec, or a failed one: later records are dropped unread.
    Skip,
}

struct Slot {
    header: Header,
    born: Instant,
    phase: Phase,
    /// None for Skip.
    exec: Option<Box<AuditExec>>,
}

/// Turns a stream of audit records into exec events.
pub struct Assembler {
    config: AssemblerConfig,
    /// Events in progress, oldest first.
    slots: VecDeque<Slot>,
    /// No pending event has a serial above this: new events skip the scan.
    pending_max: u64,
    /// Serial of the last event opened (late records have one at or below).
    last_opened: Option<u64>,
    /// Recently finished event ids, a ring.
    done: Vec<Header>,
    done_next: usize,
    /// Finished events' buffers. Boxed so that handing one to a slot is a
    /// pointer move and the slot table stays small to scan.
    #[allow(clippy::vec_box)]
    pool: Vec<Box<AuditExec>>,
    /// Sum of the pending events' `argv_text`.
    pending_bytes: usize,
    stats: AssemblerStats,
}

impl Assembler {
    /// An empty assembler; a `max_pending` of 0 is taken as 1.
    pub fn new(config: AssemblerConfig) -> Assembler {
        let config = AssemblerConfig {
            max_pending: config.max_pending.max(1),
            ..config
        };
        Assembler {
            slots: VecDeque::with_capacity(config.max_pending.min(64)),
            pending_max: 0,
            last_opened: None,
            done: Vec::with_capacity(DONE_RING),
            done_next: 0,
            pool: Vec::new(),
            pending_bytes: 0,
            stats: AssemblerStats::default(),
            config,
        }
    }

    /// Feeds one record. Calls `emit` for each exec event this completes (on
    /// EOE) or forces out (the pending table is full: the oldest event is
    /// emitted incomplete and counted as overflow). Never panics.
    pub fn push(
        &mut self,
        rtype: u16,
        header: Header,
        body: &[u8],
        now: Instant,
        emit: &mut dyn FnMut(&AuditExec),
    ) {
        self.stats.records += 1;
        if !matches!(
            rtype,
            AUDIT_SYSCALL | AUDIT_EXECVE | AUDIT_CWD | AUDIT_PATH | AUDIT_PROCTITLE | AUDIT_EOE
        ) {
            return;
        }
        let index = match self.find(header) {
            Some(i) => i,
            None if self.was_done(header) => {
                self.stats.late += 1;
                return;
            }
            // An end marker alone has nothing to emit.
            None if rtype == AUDIT_EOE => return,
            None => self.open(header, now, emit),
        };
        if rtype == AUDIT_EOE {
            if let Some(slot) = self.slots.remove(index) {
                self.finish(slot, false, emit);
            }
            return;
        }
        let Some(slot) = self.slots.get_mut(index) else {
            return;
        };
        let Some(exec) = slot.exec.as_deref_mut() else {
            return;
        };
        match rtype {
            AUDIT_SYSCALL => match exec.apply_syscall(body) {
                Verdict::Exec => slot.phase = Phase::Exec,
                Verdict::Unknown => {}
                Verdict::Malformed => self.stats.malformed += 1,
                verdict @ (Verdict::NotExec | Verdict::Failed) => {
                    if verdict == Verdict::Failed {
                        self.stats.failed_exec += 1;
                    } else {
                        self.stats.non_exec += 1;
                    }
                    slot.phase = Phase::Skip;
                    if let Some(exec) = slot.exec.take() {
                        self.pending_bytes = self.pending_bytes.saturating_sub(exec.argv_text);
                        recycle(&mut self.pool, exec);
                    }
                }
            },
            AUDIT_EXECVE => {
                let before = exec.argv_text;
                if !exec.apply_execve(body) {
                    self.stats.malformed += 1;
                }
                let grown = exec.argv_text.saturating_sub(before);
                if grown > 0 {
                    self.pending_bytes = self.pending_bytes.saturating_add(grown);
                    self.enforce_byte_budget(header, emit);
                }
            }
            AUDIT_CWD => exec.apply_cwd(body),
            AUDIT_PATH => exec.apply_path(body),
            AUDIT_PROCTITLE => exec.apply_proctitle(body),
            _ => {}
        }
    }

    /// Emits the events that have waited longer than the timeout without
    /// their EOE, marked incomplete unless they already have their SYSCALL
    /// and every EXECVE argument.
    pub fn expire(&mut self, now: Instant, emit: &mut dyn FnMut(&AuditExec)) {
        while let Some(oldest) = self.slots.front() {
            if now.saturating_duration_since(oldest.born) <= self.config.timeout {
                break;
            }
            if let Some(slot) = self.slots.pop_front() {
                self.finish(slot, false, emit);
            }
        }
    }

    /// Emits everything pending (end of a replayed file, shutdown), with the
    /// same rule for incomplete as [`Assembler::expire`].
    pub fn flush(&mut self, emit: &mut dyn FnMut(&AuditExec)) {
        while let Some(slot) = self.slots.pop_front() {
            self.finish(slot, false, emit);
        }
    }

    /// Events in progress, exec or not.
    pub fn pending(&self) -> usize {
        self.slots.len()
    }

    /// A copy of the counters so far.
    pub fn stats(&self) -> AssemblerStats {
        self.stats
    }

    /// Counts a record the reader could not parse (so that one set of
    /// counters covers the whole stream).
    pub fn note_malformed(&mut self) {
        self.stats.malformed += 1;
    }

    fn find(&self, header: Header) -> Option<usize> {
        if header.serial > self.pending_max {
            return None;
        }
        // The event being received is nearly always the newest.
        self.slots.iter().rposition(|s| s.header == header)
    }

    fn was_done(&self, header: Header) -> bool {
        match self.last_opened {
            Some(serial) if header.serial <= serial => self.done.contains(&header),
            _ => false,
        }
    }

    /// Forces out the oldest events other than `current` while the pending
    /// argument text is over budget (counted as overflow, like a full table).
    fn enforce_byte_budget(&mut self, current: Header, emit: &mut dyn FnMut(&AuditExec)) {
        while self.pending_bytes > self.config.max_pending_bytes {
            let Some(i) = self.slots.iter().position(|s| s.header != current) else {
                break;
            };
            let Some(oldest) = self.slots.remove(i) else {
                break;
            };
            self.stats.overflow += 1;
            self.finish(oldest, true, emit);
        }
    }

    /// Adds an event to the table, forcing out the oldest if it is full.
    fn open(&mut self, header: Header, now: Instant, emit: &mut dyn FnMut(&AuditExec)) -> usize {
        while self.slots.len() >= self.config.max_pending {
            let Some(oldest) = self.slots.pop_front() else {
                break;
            };
            self.stats.overflow += 1;
            self.finish(oldest, true, emit);
        }
        let mut exec = self
            .pool
            .pop()
            .unwrap_or_else(|| Box::new(AuditExec::empty()));
        exec.header = header;
        self.slots.push_back(Slot {
            header,
            born: now,
            phase: Phase::Undecided,
            exec: Some(exec),
        });
        self.pending_max = self.pending_max.max(header.serial);
        self.last_opened = Some(header.serial);
        self.slots.len() - 1
    }

    /// Emits a removed event if it is an exec, and recycles its buffers.
    fn finish(&mut self, slot: Slot, forced_incomplete: bool, emit: &mut dyn FnMut(&AuditExec)) {
        self.remember(slot.header);
        if self.slots.is_empty() {
            self.pending_max = 0;
        }
        let Some(mut exec) = slot.exec else {
            return;
        };
        self.pending_bytes = self.pending_bytes.saturating_sub(exec.argv_text);
        if slot.phase == Phase::Undecided && !exec.has_execve {
            // Neither an exec SYSCALL nor an EXECVE record: not an exec.
            self.stats.non_exec += 1;
        } else {
            exec.finalize(forced_incomplete);
            self.stats.emitted += 1;
            if exec.incomplete {
                self.stats.incomplete += 1;
            }
            emit(&exec);
        }
        recycle(&mut self.pool, exec);
    }

    fn remember(&mut self, header: Header) {
        if self.done.len() < DONE_RING {
            self.done.push(header);
        } else if let Some(entry) = self.done.get_mut(self.done_next) {
            *entry = header;
        }
        self.done_next = (self.done_next + 1) % DONE_RING;
    }
}

#[allow(clippy::vec_box)]
fn recycle(pool: &mut Vec<Box<AuditExec>>, mut exec: Box<AuditExec>) {
    exec.reset();
    pool.push(exec);
}

// Shared with tests/audit_records.rs, where its items must be `pub`.
#[cfg(test)]
#[allow(unreachable_pub)]
#[path = "../../../tests/support/audit_got.rs"]
mod audit_got;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::{classify, CREDENTIAL_CACHE_COPY};
    use crate::sources::linux_audit::record::{split_payload, AUDIT_BPRM_FCAPS};

    use super::audit_got::Got;

    struct Run {
        asm: Assembler,
        t0: Instant,
        out: Vec<Got>,
    }

    impl Run {
        fn new() -> Run {
            Run::with(AssemblerConfig::default())
        }

        fn with(config: AssemblerConfig) -> Run {
            Run {
                asm: Assembler::new(config),
                t0: Instant::now(),
                out: Vec::new(),
            }
        }

        /// Pushes a record in the kernel's netlink text form, at `ms` after t0.
        fn push_at(&mut self, ms: u64, rtype: u16, serial: u64, body: &str) {
            let payload = format!("audit(1700000000.250:{serial}): {body}");
            let (header, body) = split_payload(payload.as_bytes()).unwrap();
            let now = self.t0 + Duration::from_millis(ms);
            let out = &mut self.out;
            self.asm
                .push(rtype, header, body, now, &mut |e| out.push(Got::of(e)));
        }

        fn push(&mut self, rtype: u16, serial: u64, body: &str) {
            self.push_at(0, rtype, serial, body);
        }

        fn records(&mut self, serial: u64, records: &[(u16, String)]) {
            for (rtype, body) in records {
                self.push(*rtype, serial, body);
            }
        }

        fn expire(&mut self, ms: u64) {
            let out = &mut self.out;
            self.asm
                .expire(self.t0 + Duration::from_millis(ms), &mut |e| {
                    out.push(Got::of(e))
                });
        }

        fn flush(&mut self) {
            let out = &mut self.out;
            self.asm.flush(&mut |e| out.push(Got::of(e)));
        }
    }

    fn hex(bytes: &[u8]) -> String {
        hex::encode_upper(bytes)
    }

    fn syscall_x86(nr: u32, success: &str, exe: &str) -> String {
        format!(
            "arch=c000003e syscall={nr} success={success} exit=0 a0=55d0c0ffee10 \
             a1=55d0c0ffee40 a2=55d0c0ffee70 a3=7ffc00000000 items=2 ppid=2200 pid=2201 \
             auid=1000 uid=1000 gid=1001 euid=1000 suid=1000 fsuid=1000 egid=1001 \
             sgid=1001 fsgid=1001 tty=pts1 ses=4 comm=\"kcc\" exe=\"{exe}\" \
             subj=unconfined key=\"kerb\""
        )
    }

    fn path(item: u32, name: &str) -> String {
        format!(
            "item={item} name=\"{name}\" inode=1311 dev=fd:01 mode=0100755 ouid=0 ogid=0 \
             rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0"
        )
    }

    /// The seven records of `kcc copy_cred_cache FILE:/tmp/x`, in kernel order.
    fn kcc_exec() -> Vec<(u16, String)> {
        vec![
            (AUDIT_SYSCALL, syscall_x86(59, "yes", "/usr/bin/kcc")),
            (
                AUDIT_EXECVE,
                "argc=3 a0=\"/usr/bin/kcc\" a1=\"copy_cred_cache\" a2=\"FILE:/tmp/x\"".into(),
            ),
            (AUDIT_CWD, "cwd=\"/home/alice\"".into()),
            (AUDIT_PATH, path(0, "/usr/bin/kcc")),
            (AUDIT_PATH, path(1, "/lib64/ld-linux-x86-64.so.2")),
            (
                AUDIT_PROCTITLE,
                format!(
                    "proctitle={}",
                    hex(b"/usr/bin/kcc\0copy_cred_cache\0FILE:/tmp/x")
                ),
            ),
            (AUDIT_EOE, String::new()),
        ]
    }

    fn only(run: &Run) -> &Got {
        assert_eq!(run.out.len(), 1, "{:#?}", run.out);
        &run.out[0]
    }

    #[test]
    fn complete_exec_is_emitted_on_eoe() {
        let mut run = Run::new();
        let records = kcc_exec();
        for (rtype, body) in &records[..records.len() - 1] {
            run.push(*rtype, 9001, body);
        }
        assert!(run.out.is_empty());
        assert_eq!(run.asm.pending(), 1);
        run.push(AUDIT_EOE, 9001, "");
        let got = only(&run);
        assert_eq!(got.serial, 9001);
        assert_eq!((got.arch, got.syscall), (0xc000_003e, 59));
        assert_eq!(got.success, Some(true));
        assert_eq!((got.pid, got.ppid), (2201, 2200));
        assert_eq!(
            (got.uid, got.euid, got.auid),
            (Some(1000), Some(1000), Some(1000))
        );
        assert_eq!((got.gid, got.egid), (Some(1001), Some(1001)));
        assert_eq!(got.exe.as_deref(), Some(&b"/usr/bin/kcc"[..]));
        assert_eq!(got.argc, Some(3));
        assert_eq!(
            got.argv_text(),
            ["/usr/bin/kcc", "copy_cred_cache", "FILE:/tmp/x"]
        );
        assert_eq!(got.cwd.as_deref(), Some(&b"/home/alice"[..]));
        assert!(!got.incomplete);
        let class = classify(got.exe.as_deref().unwrap(), &got.argv).unwrap();
        assert_eq!(class.indicator(), CREDENTIAL_CACHE_COPY);
        assert_eq!(class.ccache, "FILE:/tmp/x");
        assert_eq!(run.asm.pending(), 0);
        let stats = run.asm.stats();
        assert_eq!((stats.records, stats.emitted, stats.incomplete), (7, 1, 0));
    }

    #[test]
    fn record_order_does_not_matter_before_eoe() {
        let mut expected = Run::new();
        expected.records(9001, &kcc_exec());
        let records = kcc_exec();
        let mut run = Run::new();
        for i in [5, 1, 4, 2, 0, 3, 6] {
            run.push(records[i].0, 9001, &records[i].1);
        }
        assert_eq!(run.out, expected.out);
        assert!(!only(&run).incomplete);
    }

    #[test]
    fn interleaved_events_are_kept_apart() {
        let a = kcc_exec();
        let mut run = Run::new();
        for (i, (rtype, body)) in a.iter().enumerate() {
            run.push(*rtype, 10, body);
            let other = body
                .replace("copy_cred_cache", "list")
                .replace("2201", "3301");
            run.push(*rtype, 11, &other);
            if i == 2 {
                assert_eq!(run.asm.pending(), 2);
            }
        }
        assert_eq!(run.out.len(), 2);
        assert_eq!((run.out[0].serial, run.out[0].pid), (10, 2201));
        assert_eq!((run.out[1].serial, run.out[1].pid), (11, 3301));
        assert_eq!(run.out[1].argv_text()[1], "list");
    }

    #[test]
    fn missing_eoe_is_emitted_by_expire() {
        let mut run = Run::new();
        let records = kcc_exec();
        for (rtype, body) in &records[..6] {
            run.push_at(0, *rtype, 9001, body);
        }
        // Only a SYSCALL and a PROCTITLE for the second one.
        run.push_at(100, AUDIT_SYSCALL, 9002, &records[0].1);
        run.push_at(100, AUDIT_PROCTITLE, 9002, &records[5].1);
        run.expire(500);
        assert!(run.out.is_empty());
        assert_eq!(run.asm.pending(), 2);
        run.expire(501);
        let got = only(&run).clone();
        assert!(!got.incomplete, "SYSCALL and every argument arrived");
        assert_eq!(got.argv.len(), 3);
        run.expire(601);
        assert_eq!(run.out.len(), 2);
        let second = &run.out[1];
        assert!(second.incomplete, "no EXECVE");
        // argv falls back on PROCTITLE.
        assert_eq!(
            second.argv_text(),
            ["/usr/bin/kcc", "copy_cred_cache", "FILE:/tmp/x"]
        );
        assert_eq!(run.asm.pending(), 0);
        // Its EOE, late, is counted and dropped.
        run.push_at(700, AUDIT_EOE, 9002, "");
        assert_eq!(run.out.len(), 2);
        assert_eq!(run.asm.stats().late, 1);
    }

    #[test]
    fn lost_syscall_gives_an_incomplete_exec() {
        let mut run = Run::new();
        let records = kcc_exec();
        for (rtype, body) in &records[1..] {
            run.push(*rtype, 77, body);
        }
        let got = only(&run);
        assert!(got.incomplete);
        assert_eq!(got.exe.as_deref(), Some(&b"/usr/bin/kcc"[..]), "from PATH");
        assert_eq!(got.argv.len(), 3);
        assert_eq!((got.pid, got.uid, got.syscall), (0, None, -1));
        assert_eq!(run.asm.stats().incomplete, 1);
    }

    #[test]
    fn failed_exec_is_counted_not_emitted() {
        let mut run = Run::new();
        run.push(AUDIT_SYSCALL, 5, &syscall_x86(59, "no", "/usr/bin/bash"));
        run.push(AUDIT_CWD, 5, "cwd=\"/tmp\"");
        run.push(AUDIT_PATH, 5, &path(0, "/usr/bin/kcc"));
        run.push(AUDIT_PROCTITLE, 5, "proctitle=\"bash\"");
        assert_eq!(run.asm.pending(), 1);
        run.push(AUDIT_EOE, 5, "");
        assert!(run.out.is_empty());
        let stats = run.asm.stats();
        assert_eq!(
            (stats.failed_exec, stats.non_exec, stats.emitted),
            (1, 0, 0)
        );
        assert_eq!(run.asm.pending(), 0);
    }

    #[test]
    fn other_syscalls_are_skipped() {
        let mut run = Run::new();
        // openat(2) from another rule on the host.
        run.push(AUDIT_SYSCALL, 6, &syscall_x86(257, "yes", "/usr/bin/cat"));
        run.push(AUDIT_CWD, 6, "cwd=\"/home/alice\"");
        run.push(AUDIT_PATH, 6, &path(0, "/etc/"));
        run.push(AUDIT_PATH, 6, &path(1, "/etc/krb5.conf"));
        run.push(
            AUDIT_PROCTITLE,
            6,
            &format!("proctitle={}", hex(b"cat\0/etc/krb5.conf")),
        );
        run.push(AUDIT_EOE, 6, "");
        assert!(run.out.is_empty());
        let stats = run.asm.stats();
        assert_eq!(
            (stats.non_exec, stats.failed_exec, stats.emitted),
            (1, 0, 0)
        );
        assert_eq!(run.asm.pending(), 0);
    }

    #[test]
    fn exec_numbers_per_arch() {
        let cases = [
            ("40000003", 11, true),
            ("40000003", 358, true),
            ("c00000b7", 221, true),
            ("c00000b7", 281, true),
            ("c00000b7", 59, false),
            ("40000028", 11, true),
            ("40000028", 387, true),
            ("c000003e", 322, true),
            ("c000003e", 1_073_742_344, true),
            ("c000003e", 11, false),
        ];
        for (i, (arch, nr, exec)) in cases.into_iter().enumerate() {
            let mut run = Run::new();
            let serial = 100 + i as u64;
            run.push(
                AUDIT_SYSCALL,
                serial,
                &format!("arch={arch} syscall={nr} success=yes exit=0 pid=9 exe=\"/bin/x\""),
            );
            run.push(AUDIT_EXECVE, serial, "argc=1 a0=\"x\"");
            run.push(AUDIT_EOE, serial, "");
            assert_eq!(run.out.len(), usize::from(exec), "{arch} {nr}");
        }
    }

    #[test]
    fn unknown_arch_is_decided_by_execve() {
        let mut run = Run::new();
        // s390x: not in the table.
        let syscall = "arch=80000016 syscall=11 success=yes exit=0 pid=7 exe=\"/usr/bin/id\"";
        run.push(AUDIT_SYSCALL, 1, syscall);
        run.push(AUDIT_EXECVE, 1, "argc=1 a0=\"id\"");
        run.push(AUDIT_EOE, 1, "");
        run.push(AUDIT_SYSCALL, 2, syscall);
        run.push(AUDIT_PATH, 2, &path(0, "/etc/passwd"));
        run.push(AUDIT_EOE, 2, "");
        let got = only(&run);
        assert_eq!((got.serial, got.pid, got.incomplete), (1, 7, false));
        assert_eq!(run.asm.stats().non_exec, 1);
    }

    #[test]
    fn execve_continued_in_a_second_record() {
        let mut run = Run::new();
        run.push(AUDIT_SYSCALL, 8, &syscall_x86(59, "yes", "/usr/bin/kcc"));
        run.push(AUDIT_EXECVE, 8, "argc=3 a0=\"kcc\" a1=\"copy_cred_cache\"");
        run.push(AUDIT_EXECVE, 8, " a2=\"FILE:/tmp/x\"");
        run.push(AUDIT_EOE, 8, "");
        let got = only(&run);
        assert_eq!(got.argv_text(), ["kcc", "copy_cred_cache", "FILE:/tmp/x"]);
        assert!(!got.incomplete);
    }

    #[test]
    fn argument_split_in_pieces_is_joined() {
        // aN_len counts the argument as logged: hex digits.
        let mut run = Run::new();
        run.push(AUDIT_SYSCALL, 9, &syscall_x86(59, "yes", "/usr/bin/kcc"));
        run.push(
            AUDIT_EXECVE,
            9,
            &format!("argc=3 a0=\"kcc\" a1_len=30 a1[0]={}", hex(b"copy_cred")),
        );
        run.push(
            AUDIT_EXECVE,
            9,
            &format!(" a1[1]={} a2=\"KCM:1000\"", hex(b"_cache")),
        );
        run.push(AUDIT_EOE, 9, "");
        let got = only(&run);
        assert_eq!(got.argv_text(), ["kcc", "copy_cred_cache", "KCM:1000"]);
        assert!(!got.incomplete);
    }

    #[test]
    fn quoted_pieces_count_their_characters() {
        let mut run = Run::new();
        run.push(AUDIT_SYSCALL, 9, &syscall_x86(59, "yes", "/usr/bin/kcc"));
        run.push(AUDIT_EXECVE, 9, "argc=2 a0=\"kcc\" a1_len=6 a1[0]=\"abc\"");
        run.push(AUDIT_EXECVE, 9, " a1[1]=\"def\"");
        run.push(AUDIT_EOE, 9, "");
        let got = only(&run);
        assert_eq!(got.argv_text(), ["kcc", "abcdef"]);
        assert!(!got.incomplete);
    }

    #[test]
    fn split_argument_short_of_its_length_is_incomplete() {
        let mut run = Run::new();
        run.push(AUDIT_SYSCALL, 9, &syscall_x86(59, "yes", "/usr/bin/kcc"));
        // Says 40 hex digits, only 18 arrive: the middle record was lost.
        run.push(
            AUDIT_EXECVE,
            9,
            &format!("argc=2 a0=\"kcc\" a1_len=40 a1[0]={}", hex(b"copy_cred")),
        );
        run.push(AUDIT_EOE, 9, "");
        let got = only(&run);
        assert_eq!(got.argv_text(), ["kcc", "copy_cred"]);
        assert!(got.incomplete);
    }

    #[test]
    fn piece_without_its_first_record_is_incomplete() {
        let mut run = Run::new();
        run.push(AUDIT_SYSCALL, 9, &syscall_x86(59, "yes", "/usr/bin/kcc"));
        run.push(AUDIT_EXECVE, 9, &format!(" a1[1]={}", hex(b"_cache")));
        run.push(AUDIT_EOE, 9, "");
        let got = only(&run);
        assert_eq!(got.argv_text(), ["", "_cache"]);
        assert!(got.incomplete);
    }

    #[test]
    fn empty_argument() {
        let mut run = Run::new();
        run.push(AUDIT_SYSCALL, 3, &syscall_x86(59, "yes", "/usr/bin/printf"));
        run.push(AUDIT_EXECVE, 3, "argc=3 a0=\"printf\" a1=\"\" a2=\"x\"");
        run.push(AUDIT_EOE, 3, "");
        let got = only(&run);
        assert_eq!(got.argv, [b"printf".to_vec(), Vec::new(), b"x".to_vec()]);
        assert!(!got.incomplete);
    }

    #[test]
    fn non_utf8_hex_argument() {
        let mut run = Run::new();
        run.push(AUDIT_SYSCALL, 4, &syscall_x86(59, "yes", "/usr/bin/kcc"));
        let arg = b"/tmp/\xff\xfe cache";
        run.push(
            AUDIT_EXECVE,
            4,
            &format!("argc=3 a0=\"kcc\" a1=\"copy_cred_cache\" a2={}", hex(arg)),
        );
        run.push(AUDIT_EOE, 4, "");
        let got = only(&run);
        assert_eq!(got.argv[2], arg.to_vec());
        let class = classify(b"/usr/bin/kcc", &got.argv).unwrap();
        assert_eq!(class.indicator(), CREDENTIAL_CACHE_COPY);
        assert_eq!(class.ccache, "FILE:/tmp/\\xff\\xfe cache");
    }

    #[test]
    fn hex_exe_and_cwd_are_decoded() {
        let mut run = Run::new();
        let syscall = syscall_x86(59, "yes", "X")
            .replace("exe=\"X\"", &format!("exe={}", hex(b"/opt/my tools/kcc")));
        run.push(AUDIT_SYSCALL, 12, &syscall);
        run.push(AUDIT_EXECVE, 12, "argc=1 a0=\"kcc\"");
        run.push(AUDIT_CWD, 12, &format!("cwd={}", hex(b"/home/a b")));
        run.push(AUDIT_EOE, 12, "");
        let got = only(&run);
        assert_eq!(got.exe.as_deref(), Some(&b"/opt/my tools/kcc"[..]));
        assert_eq!(got.cwd.as_deref(), Some(&b"/home/a b"[..]));
    }

    #[test]
    fn full_table_forces_out_the_oldest() {
        let mut run = Run::with(AssemblerConfig {
            max_pending: 2,
            ..AssemblerConfig::default()
        });
        let records = kcc_exec();
        for serial in [1, 2, 3] {
            for (rtype, body) in &records[..6] {
                run.push(*rtype, serial, body);
                assert!(run.asm.pending() <= 2);
            }
        }
        let got = only(&run);
        assert_eq!(got.serial, 1);
        assert!(got.incomplete, "forced out before its EOE");
        assert_eq!(got.argv.len(), 3);
        let stats = run.asm.stats();
        assert_eq!((stats.overflow, stats.emitted, stats.incomplete), (1, 1, 1));
        run.push(AUDIT_EOE, 2, "");
        assert_eq!(run.out.len(), 2);
        assert!(!run.out[1].incomplete);
        run.flush();
        assert_eq!(run.out.len(), 3);
        assert_eq!(run.asm.pending(), 0);
    }

    #[test]
    fn pending_argument_bytes_are_bounded() {
        // Each event's argv text is a few bytes: a budget of 20 bytes holds
        // about one event without its EOE, so older ones are forced out.
        let mut run = Run::with(AssemblerConfig {
            max_pending_bytes: 20,
            ..AssemblerConfig::default()
        });
        let records = kcc_exec();
        for serial in [1, 2, 3, 4] {
            for (rtype, body) in &records[..6] {
                run.push(*rtype, serial, body);
            }
            assert!(run.asm.pending() <= 1, "{} pending", run.asm.pending());
        }
        assert_eq!(run.out.len(), 3);
        assert!(run.out.iter().all(|e| e.incomplete));
        assert_eq!(run.out[0].argv.len(), 3, "forced out whole, not cut");
        assert_eq!(run.asm.stats().overflow, 3);
        // Finished events give their bytes back: a full event fits again.
        run.push(AUDIT_EOE, 4, "");
        assert_eq!(run.asm.pending(), 0);
        for (rtype, body) in &records {
            run.push(*rtype, 5, body);
        }
        assert_eq!(run.out.len(), 5);
        assert!(!run.out[4].incomplete);
        assert_eq!(run.asm.stats().overflow, 3);
    }

    #[test]
    fn zero_max_pending_still_works() {
        let mut run = Run::with(AssemblerConfig {
            max_pending: 0,
            ..AssemblerConfig::default()
        });
        run.records(1, &kcc_exec());
        assert!(!only(&run).incomplete);
    }

    #[test]
    fn late_records_are_counted_not_emitted_again() {
        let mut run = Run::new();
        run.records(21, &kcc_exec());
        run.records(22, &kcc_exec());
        assert_eq!(run.out.len(), 2);
        run.push(AUDIT_EXECVE, 21, "argc=1 a0=\"again\"");
        run.push(AUDIT_CWD, 22, "cwd=\"/\"");
        assert_eq!(run.out.len(), 2);
        assert_eq!(run.asm.pending(), 0);
        assert_eq!(run.asm.stats().late, 2);
    }

    #[test]
    fn unused_record_types_are_ignored() {
        let mut run = Run::new();
        let records = kcc_exec();
        run.push(AUDIT_SYSCALL, 30, &records[0].1);
        run.push(
            AUDIT_BPRM_FCAPS,
            30,
            "fver=0 fp=0 fi=0 fe=0 old_pp=0 pp=1ff",
        );
        run.push(1123, 31, "pid=1 uid=0 msg='cwd=\"/\" cmd=6C73 res=success'");
        run.push(1306, 32, "saddr=0100");
        assert_eq!(run.asm.pending(), 1);
        for (rtype, body) in &records[1..] {
            run.push(*rtype, 30, body);
        }
        assert!(!only(&run).incomplete);
        assert_eq!(run.asm.stats().records, 10);
    }

    #[test]
    fn absurd_argument_indexes_are_bounded() {
        let mut run = Run::new();
        run.push(AUDIT_SYSCALL, 40, &syscall_x86(59, "yes", "/usr/bin/kcc"));
        run.push(
            AUDIT_EXECVE,
            40,
            "argc=4294967295 a0=\"kcc\" a99999999999999999999=\"x\" a4000000=\"y\" a3000=\"z\"",
        );
        run.push(AUDIT_EOE, 40, "");
        let got = only(&run);
        assert!(got.incomplete);
        assert_eq!(got.argv.len(), 3001);
        assert_eq!(got.argv[3000], b"z");
    }

    #[test]
    fn malformed_records_are_counted() {
        let mut run = Run::new();
        run.push(AUDIT_SYSCALL, 50, "arch=c000003e success=yes pid=3");
        run.push(AUDIT_EXECVE, 50, "garbage");
        run.push(AUDIT_EOE, 50, "");
        assert_eq!(run.asm.stats().malformed, 2);
        // An EXECVE still makes it an exec.
        assert!(only(&run).incomplete);
        run.asm.note_malformed();
        assert_eq!(run.asm.stats().malformed, 3);
    }

    #[test]
    fn pooled_buffers_do_not_leak_into_the_next_event() {
        let mut run = Run::new();
        run.push(AUDIT_SYSCALL, 60, &syscall_x86(59, "yes", "/usr/bin/kcc"));
        run.push(
            AUDIT_EXECVE,
            60,
            "argc=4 a0=\"a\" a1=\"b\" a2=\"c\" a3=\"d\"",
        );
        run.push(AUDIT_CWD, 60, "cwd=\"/one\"");
        run.push(AUDIT_EOE, 60, "");
        run.push(AUDIT_EXECVE, 61, "argc=1 a0=\"e\"");
        run.push(AUDIT_EOE, 61, "");
        assert_eq!(run.out.len(), 2);
        let second = &run.out[1];
        assert_eq!(second.argv_text(), ["e"]);
        assert_eq!((second.cwd.as_ref(), second.exe.as_ref()), (None, None));
        assert_eq!((second.pid, second.uid, second.success), (0, None, None));
    }

    #[test]
    fn a_huge_exec_does_not_pin_its_memory() {
        let mut run = Run::new();
        let big = "61".repeat(100_000);
        let many: String = (1..2000).map(|i| format!(" a{i}=\"x\"")).collect();
        run.push(AUDIT_SYSCALL, 80, &syscall_x86(59, "yes", "/usr/bin/kcc"));
        run.push(AUDIT_EXECVE, 80, &format!("argc=2000 a0={big}{many}"));
        run.push(AUDIT_EOE, 80, "");
        let got = only(&run);
        assert_eq!((got.argv.len(), got.argv[0].len()), (2000, 100_000));
        assert!(!got.incomplete);
        let pooled = run.asm.pool.last().unwrap();
        assert!(pooled.args.len() <= KEEP_ARG_BUFFERS);
        assert!(pooled.args.capacity() <= 4 * KEEP_ARG_BUFFERS);
        assert!(pooled
            .args
            .iter()
            .all(|a| a.capacity() <= KEEP_BUFFER_BYTES));
    }

    #[test]
    fn flush_emits_everything_pending() {
        let mut run = Run::new();
        let records = kcc_exec();
        for serial in [70, 71] {
            for (rtype, body) in &records[..5] {
                run.push(*rtype, serial, body);
            }
        }
        run.push(AUDIT_SYSCALL, 72, &syscall_x86(2, "yes", "/usr/bin/cat"));
        run.flush();
        assert_eq!(run.out.len(), 2);
        assert!(run.out.iter().all(|g| !g.incomplete));
        assert_eq!(run.asm.pending(), 0);
    }

    #[test]
    fn defaults() {
        let config = AssemblerConfig::default();
        assert_eq!(config.timeout, Duration::from_millis(500));
        assert_eq!(config.max_pending, 4096);
        let asm = Assembler::new(config);
        assert_eq!((asm.pending(), asm.stats()), (0, AssemblerStats::default()));
    }

    #[test]
    fn arg_keys() {
        assert_eq!(arg_key(b"a0"), Some(ArgKey::Whole(0)));
        assert_eq!(arg_key(b"a12_len"), Some(ArgKey::Len(12)));
        assert_eq!(arg_key(b"a3[7]"), Some(ArgKey::Piece(3, 7)));
        assert_eq!(arg_key(b"argc"), None);
        assert_eq!(arg_key(b"a"), None);
        assert_eq!(arg_key(b"a1["), None);
        assert_eq!(arg_key(b"a1[x]"), None);
        assert_eq!(arg_key(b"a1_lenx"), None);
    }
}
