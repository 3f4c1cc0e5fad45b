//! The audit session: configure the kernel's audit subsystem so every exec is
//! recorded, read the records, and put the configuration back on exit.
//!
//! Two modes, chosen from who holds the kernel's audit pid:
//! - Multicast: a live audit daemon (auditd, osqueryd) holds it. We read
//!   the read-only multicast group beside it and leave it in charge.
//! - Receiver: nobody holds it. We register ourselves (set the audit pid),
//!   because with no registered receiver the kernel writes every record to
//!   the kernel log: an exec rule would flood dmesg, and printk rate
//!   limiting drops lines there without counting them. The cost: while
//!   we hold the pid, auditd cannot start (the kernel refuses a second
//!   receiver); if we stop reading, the kernel's backlog fills and, after
//!   `backlog_wait_time`, execs on the host stall, so we set that wait to 0
//!   (drop and count instead of stall). If we die, the kernel notices the
//!   closed socket on its next send and frees the pid; our rules, enabled
//!   flag and backlog limit stay until someone removes them, which is why
//!   every exit path restores them.

pub use super::netlink::RecvError;
use super::netlink::{self, rule_bytes, AuditSocket, ControlSocket};
use netlink_packet_audit::{
    RuleAction, RuleField, RuleFieldFlags, RuleFlags, RuleMessage, StatusMessage, AUDIT_ALWAYS,
    AUDIT_ARCH, AUDIT_EQUAL, AUDIT_FILTERKEY, AUDIT_FILTER_EXIT, AUDIT_FILTER_PREPEND,
    AUDIT_REPLACE, AUDIT_SET,
};
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::time::{Duration, Instant};

// AUDIT_SET mask bits (struct audit_status.mask).
const STATUS_ENABLED: u32 = 0x01;
const STATUS_PID: u32 = 0x04;
const STATUS_BACKLOG_LIMIT: u32 = 0x10;
const STATUS_BACKLOG_WAIT_TIME: u32 = 0x20;

/// enabled=2: the configuration is immutable until reboot.
const ENABLED_LOCKED: u32 = 2;

/// Longest filter key the kernel accepts.
const MAX_KEY_LEN: usize = 256;

/// The kernel's audit status (AUDIT_GET), minus the feature bitmap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditStatus {
    pub enabled: u32,
    pub failure: u32,
    pub pid: u32,
    pub rate_limit: u32,
    pub backlog_limit: u32,
    pub lost: u32,
    pub backlog: u32,
    pub backlog_wait_time: u32,
}

impl From<&StatusMessage> for AuditStatus {
    fn from(s: &StatusMessage) -> Self {
        AuditStatus {
            enabled: s.enabled,
            failure: s.failure,
            pid: s.pid,
            rate_limit: s.rate_limiting,
            backlog_limit: s.backlog_limit,
            lost: s.lost,
            backlog: s.backlog,
            backlog_wait_time: s.backlog_wait_time,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// auditd (or another live process) owns the audit pid: we read the
    /// read-only multicast group AUDIT_NLGRP_READLOG, beside it.
    Multicast,
    /// No live audit daemon: we become the audit receiver (set the audit pid
    /// to ourselves, unicast), as osquery does, so the kernel does not write
    /// every record to the kernel log; restored on exit.
    Receiver,
}

#[derive(Debug, Clone)]
pub struct SessionOptions {
    /// Raise the kernel's backlog limit to at least this many records.
    pub backlog_limit: u32,
    /// Receive buffer for the record socket, in bytes.
    pub rcvbuf: usize,
    /// Filter key our rules carry (`key=` in the SYSCALL record); empty for none.
    pub key: String,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            backlog_limit: 8192,
            rcvbuf: 8 << 20,
            key: "kerberos_cache_access".to_string(),
        }
    }
}

#[derive(Debug)]
pub enum StartError {
    /// Cannot run here: not root / missing CAP_AUDIT_CONTROL or
    /// CAP_AUDIT_READ, audit not in this kernel or namespace, audit locked
    /// with no exec rule.
    Unavailable(String),
    /// Unexpected failure.
    Failed(String),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Unavailable(why) | StartError::Failed(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for StartError {}

/// Maps a netlink error to a reason a person can act on.
fn start_error(e: &io::Error, doing: &str) -> StartError {
    match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) if euid_is_root() => {
            StartError::Unavailable(format!(
                "{doing} was refused (EPERM) although running as root: CAP_AUDIT_CONTROL \
                 was dropped, or this is not the initial PID namespace (a container?)"
            ))
        }
        Some(libc::EPERM) | Some(libc::EACCES) => StartError::Unavailable(format!(
            "not root: {doing} was refused (EPERM); the audit netlink needs CAP_AUDIT_CONTROL \
             in the initial user and PID namespace"
        )),
        Some(libc::ECONNREFUSED) => StartError::Unavailable(format!(
            "{doing} was refused (ECONNREFUSED): audit works only in the initial user \
             namespace, not inside a container"
        )),
        Some(libc::EPROTONOSUPPORT) | Some(libc::EAFNOSUPPORT) => StartError::Unavailable(
            "this kernel has no audit support (NETLINK_AUDIT is not available)".to_string(),
        ),
        _ => StartError::Failed(format!("{doing}: {e}")),
    }
}

/// /proc/self belongs to the effective uid of the process reading it.
fn euid_is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// One syscall ABI of this machine and its exec syscall numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecArch {
    /// auditctl's name for it: b64 (native) or b32 (compat).
    pub name: &'static str,
    /// AUDIT_ARCH_* value (ELF machine | 64-bit | little-endian flags).
    pub audit_arch: u32,
    pub execve: u32,
    pub execveat: u32,
}

/// The ABIs a process on this machine can exec through, native first.
#[cfg(target_arch = "x86_64")]
pub const MACHINE_ARCHES: &[ExecArch] = &[
    ExecArch {
        name: "b64",
        audit_arch: 0xc000_003e,
        execve: 59,
        execveat: 322,
    },
    ExecArch {
        name: "b32",
        audit_arch: 0x4000_0003,
        execve: 11,
        execveat: 358,
    },
];
#[cfg(target_arch = "aarch64")]
pub const MACHINE_ARCHES: &[ExecArch] = &[
    ExecArch {
        name: "b64",
        audit_arch: 0xc000_00b7,
        execve: 221,
        execveat: 281,
    },
    ExecArch {
        name: "b32",
        audit_arch: 0x4000_0028,
        execve: 11,
        execveat: 387,
    },
];
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
pub const MACHINE_ARCHES: &[ExecArch] = &[];

/// Field types whose value is a string length into the rule's buffer.
fn is_string_field(field: u32) -> bool {
    matches!(field, 13..=17 | 19..=23 | 105 | 107 | 112 | AUDIT_FILTERKEY)
}

/// One rule condition: field type, operator, and value (a number, or the
/// string for string-typed fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleCondition {
    pub field: u32,
    pub op: u32,
    pub value: u32,
    pub text: Option<String>,
}

/// A rule as the kernel lists it (`struct audit_rule_data`), parsed just
/// enough to judge what it covers, with its bytes kept for exact comparison
/// and deletion.
#[derive(Clone, PartialEq, Eq)]
pub struct AuditRule {
    raw: Vec<u8>,
    pub list: u32,
    pub action: u32,
    mask: Vec<u32>,
    pub conditions: Vec<RuleCondition>,
}

// Layout of struct audit_rule_data: flags, action, field_count, then four
// arrays of 64 u32 (syscall mask, fields, values, fieldflags), buflen, buf.
const RULE_WORDS: usize = 64;
const RULE_MASK_AT: usize = 12;
const RULE_FIELDS_AT: usize = RULE_MASK_AT + 4 * RULE_WORDS;
const RULE_VALUES_AT: usize = RULE_FIELDS_AT + 4 * RULE_WORDS;
const RULE_OPS_AT: usize = RULE_VALUES_AT + 4 * RULE_WORDS;
const RULE_BUFLEN_AT: usize = RULE_OPS_AT + 4 * RULE_WORDS;
const RULE_HEADER_LEN: usize = RULE_BUFLEN_AT + 4;

fn word(raw: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([raw[at], raw[at + 1], raw[at + 2], raw[at + 3]])
}

impl AuditRule {
    /// Parses a listed rule; None if it is malformed. Trailing padding the
    /// kernel may add is cut so equal rules have equal bytes.
    pub fn parse(raw: &[u8]) -> Option<AuditRule> {
        if raw.len() < RULE_HEADER_LEN {
            return None;
        }
        let buflen = word(raw, RULE_BUFLEN_AT) as usize;
        let strings = raw.get(RULE_HEADER_LEN..RULE_HEADER_LEN.checked_add(buflen)?)?;
        let count = word(raw, 8) as usize;
        if count > RULE_WORDS {
            return None;
        }
        let mut offset = 0usize;
        let mut conditions = Vec::with_capacity(count);
        for i in 0..count {
            let field = word(raw, RULE_FIELDS_AT + 4 * i);
            let value = word(raw, RULE_VALUES_AT + 4 * i);
            let op = word(raw, RULE_OPS_AT + 4 * i);
            let text = if is_string_field(field) {
                let end = offset.checked_add(value as usize)?;
                let s = String::from_utf8_lossy(strings.get(offset..end)?).into_owned();
                offset = end;
                Some(s)
            } else {
                None
            };
            conditions.push(RuleCondition {
                field,
                op,
                value,
                text,
            });
        }
        Some(AuditRule {
            raw: raw[..RULE_HEADER_LEN + buflen].to_vec(),
            list: word(raw, 0) & !AUDIT_FILTER_PREPEND,
            action: word(raw, 4),
            mask: (0..RULE_WORDS)
                .map(|i| word(raw, RULE_MASK_AT + 4 * i))
                .collect(),
            conditions,
        })
    }

    /// The bytes to send back to delete this rule.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    pub fn has_syscall(&self, nr: u32) -> bool {
        let (w, bit) = ((nr / 32) as usize, nr % 32);
        self.mask.get(w).is_some_and(|m| m & (1 << bit) != 0)
    }

    /// The filter key, if the rule has one.
    pub fn key(&self) -> Option<&str> {
        self.conditions
            .iter()
            .find(|c| c.field == AUDIT_FILTERKEY)
            .and_then(|c| c.text.as_deref())
    }

    /// Whether this rule already records every execve of `arch`: an
    /// exit-list always rule whose mask has execve and whose only conditions
    /// are that arch and/or a key (anything else would narrow it).
    pub fn covers_exec(&self, arch: &ExecArch) -> bool {
        self.list == AUDIT_FILTER_EXIT
            && self.action == AUDIT_ALWAYS
            && self.has_syscall(arch.execve)
            && self.conditions.iter().all(|c| match c.field {
                AUDIT_ARCH => c.op == AUDIT_EQUAL && c.value == arch.audit_arch,
                AUDIT_FILTERKEY => true,
                _ => false,
            })
    }

    /// auditctl-like one-liner, for messages.
    pub fn summary(&self) -> String {
        let mut out = format!("list={} action={}", self.list, self.action);
        if self.mask.iter().all(|&w| w == u32::MAX) {
            out.push_str(" syscalls=all");
        } else {
            let nrs: Vec<String> = (0..RULE_WORDS as u32 * 32)
                .filter(|&n| self.has_syscall(n))
                .map(|n| n.to_string())
                .collect();
            out.push_str(&format!(" syscalls={}", nrs.join(",")));
        }
        for c in &self.conditions {
            match &c.text {
                Some(t) => out.push_str(&format!(" f{}:{:#x}={t:?}", c.field, c.op)),
                None => out.push_str(&format!(" f{}:{:#x}={:#x}", c.field, c.op, c.value)),
            }
        }
        out
    }
}

impl fmt::Debug for AuditRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AuditRule({})", self.summary())
    }
}

/// The exit,always rule for execve and execveat of `arch`, tagged with
/// `key` (none when empty).
pub fn exec_rule(arch: &ExecArch, key: &str) -> Vec<u8> {
    let mut rule = RuleMessage::new();
    rule.flags = RuleFlags::FilterExit;
    rule.action = RuleAction::Always;
    rule.syscalls.set(arch.execve).set(arch.execveat);
    rule.fields
        .push((RuleField::Arch(arch.audit_arch), RuleFieldFlags::Equal));
    if !key.is_empty() {
        rule.fields
            .push((RuleField::Filterkey(key.to_string()), RuleFieldFlags::Equal));
    }
    rule_bytes(&rule)
}

/// Status and rule list, as the kernel has them now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditState {
    pub status: AuditStatus,
    pub rules: Vec<AuditRule>,
}

/// Reads the current audit configuration without changing it.
pub fn read_state() -> Result<AuditState, StartError> {
    let mut ctl =
        ControlSocket::open().map_err(|e| start_error(&e, "opening the audit netlink"))?;
    read_state_with(&mut ctl)
}

fn read_state_with(ctl: &mut ControlSocket) -> Result<AuditState, StartError> {
    let status = ctl
        .get_status()
        .map_err(|e| start_error(&e, "reading the audit status"))?;
    let raw = ctl
        .list_rules()
        .map_err(|e| start_error(&e, "listing audit rules"))?;
    let mut rules = Vec::with_capacity(raw.len());
    for r in raw {
        match AuditRule::parse(&r) {
            Some(rule) => rules.push(rule),
            None => {
                return Err(StartError::Failed(format!(
                    "the kernel listed a malformed audit rule ({} bytes)",
                    r.len()
                )))
            }
        }
    }
    Ok(AuditState {
        status: AuditStatus::from(&status),
        rules,
    })
}

/// Whether `pid` names a live (not zombie) process.
fn process_alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state letter follows the parenthesized command name.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next())
        .is_some_and(|state| state != 'Z' && state != 'X')
}

/// Something start() changed, with what is needed to undo it.
#[derive(Debug)]
enum Change {
    TookPid,
    Enabled { from: u32, to: u32 },
    BacklogLimit { from: u32, to: u32 },
    BacklogWait { from: u32, to: u32 },
    AddedRule { arch: &'static str, raw: Vec<u8> },
}

pub struct AuditSession {
    ctl: ControlSocket,
    rec: AuditSocket,
    mode: Mode,
    found: AuditStatus,
    /// Arches an existing rule already covered.
    covered: Vec<&'static str>,
    /// Notes for describe(): arches left uncovered and why, leftovers.
    uncovered: Vec<String>,
    changes: Vec<Change>,
    rcvbuf: usize,
    /// Records that arrived while we waited for the ack of our pid
    /// registration; delivered first.
    pending: VecDeque<(u16, Vec<u8>)>,
    restored: bool,
}

impl fmt::Debug for AuditSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditSession")
            .field("mode", &self.mode)
            .field("found", &self.found)
            .field("changes", &self.changes)
            .finish_non_exhaustive()
    }
}

impl AuditSession {
    /// Reads the current state, picks the mode, enables audit, raises the
    /// backlog limit, and adds exec rules for each arch no existing rule
    /// covers. A failure half-way undoes what was already changed.
    pub fn start(opts: &SessionOptions) -> Result<AuditSession, StartError> {
        if MACHINE_ARCHES.is_empty() {
            return Err(StartError::Unavailable(
                "the audit source knows the exec syscalls of x86_64 and aarch64 only".into(),
            ));
        }
        if opts.key.len() > MAX_KEY_LEN {
            return Err(StartError::Failed(format!(
                "audit rule key is longer than {MAX_KEY_LEN} bytes"
            )));
        }
        let mut ctl =
            ControlSocket::open().map_err(|e| start_error(&e, "opening the audit netlink"))?;
        let state = read_state_with(&mut ctl)?;
        let found = state.status.clone();
        let locked = found.enabled == ENABLED_LOCKED;

        let mut covered = Vec::new();
        let mut need = Vec::new();
        for arch in MACHINE_ARCHES {
            if state.rules.iter().any(|r| r.covers_exec(arch)) {
                covered.push(arch.name);
            } else {
                need.push(arch);
            }
        }
        let mut uncovered = Vec::new();
        if locked && !need.is_empty() {
            if need[0] == &MACHINE_ARCHES[0] {
                return Err(StartError::Unavailable(format!(
                    "audit is locked (enabled=2) and no existing rule records execve ({}); \
                     rules cannot change until reboot",
                    MACHINE_ARCHES[0].name
                )));
            }
            uncovered.extend(
                need.iter()
                    .map(|a| format!("{} not covered (audit locked)", a.name)),
            );
            need.clear();
        }

        let me = std::process::id();
        if found.pid == me {
            return Err(StartError::Failed(
                "this process already holds the audit pid (another session is running)".into(),
            ));
        }
        let mut mode = if found.pid != 0 && process_alive(found.pid) {
            Mode::Multicast
        } else {
            Mode::Receiver
        };

        // The record socket first: failing here changes nothing.
        let mut pending = VecDeque::new();
        let mut changes = Vec::new();
        let rec = if mode == Mode::Receiver {
            let mut rec =
                AuditSocket::open().map_err(|e| start_error(&e, "opening the audit netlink"))?;
            let rcv = rec.set_rcvbuf(opts.rcvbuf);
            match take_pid(&mut rec, me, &mut pending) {
                Ok(()) => {
                    changes.push(Change::TookPid);
                    rcv.map_err(|e| start_error(&e, "setting the receive buffer"))
                        .map(|n| (rec, n))
                }
                // A daemon registered between our status read and now.
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                    mode = Mode::Multicast;
                    open_multicast(opts.rcvbuf)
                }
                Err(e) => Err(start_error(&e, "registering as the audit receiver")),
            }
        } else {
            open_multicast(opts.rcvbuf)
        };
        let (rec, rcvbuf) = match rec {
            Ok(r) => r,
            Err(e) => {
                if !changes.is_empty() {
                    // Only the pid can have been taken: give it back.
                    let _ = set_status(&mut ctl, STATUS_PID, |s| s.pid = 0);
                }
                return Err(e);
            }
        };

        // As the receiver no sibling of ours can be running, so our key on
        // an existing rule means an earlier run died without restoring.
        if mode == Mode::Receiver
            && !opts.key.is_empty()
            && state
                .rules
                .iter()
                .any(|r| r.key() == Some(opts.key.as_str()))
        {
            uncovered.push(format!(
                "rules keyed {} were already there (left by a run that did not exit \
                 cleanly?); they are kept",
                opts.key
            ));
        }
        let mut session = AuditSession {
            ctl,
            rec,
            mode,
            found,
            covered,
            uncovered,
            changes,
            rcvbuf,
            pending,
            restored: false,
        };
        if let Err(e) = session.configure(opts, locked, &need) {
            if let Err(undo) = session.undo() {
                log::error!("audit: rolling back a failed start: {undo}");
            }
            session.restored = true;
            return Err(e);
        }
        Ok(session)
    }

    fn configure(
        &mut self,
        opts: &SessionOptions,
        locked: bool,
        need: &[&'static ExecArch],
    ) -> Result<(), StartError> {
        let found = self.found.clone();
        if !locked {
            if found.enabled == 0 {
                set_status(&mut self.ctl, STATUS_ENABLED, |s| s.enabled = 1)
                    .map_err(|e| start_error(&e, "enabling audit"))?;
                self.changes.push(Change::Enabled { from: 0, to: 1 });
            }
            if found.backlog_limit < opts.backlog_limit {
                let to = opts.backlog_limit;
                set_status(&mut self.ctl, STATUS_BACKLOG_LIMIT, |s| {
                    s.backlog_limit = to
                })
                .map_err(|e| start_error(&e, "raising the audit backlog limit"))?;
                self.changes.push(Change::BacklogLimit {
                    from: found.backlog_limit,
                    to,
                });
            }
            // As the receiver, a stalled reader must cost records, not make
            // every exec on the host wait for backlog room.
            if self.mode == Mode::Receiver && found.backlog_wait_time != 0 {
                set_status(&mut self.ctl, STATUS_BACKLOG_WAIT_TIME, |s| {
                    s.backlog_wait_time = 0
                })
                .map_err(|e| start_error(&e, "setting the audit backlog wait time"))?;
                self.changes.push(Change::BacklogWait {
                    from: found.backlog_wait_time,
                    to: 0,
                });
            }
        }
        for arch in need {
            let raw = exec_rule(arch, &opts.key);
            match self.ctl.add_rule(&raw) {
                Ok(()) => self.changes.push(Change::AddedRule {
                    arch: arch.name,
                    raw,
                }),
                Err(e) if arch != &&MACHINE_ARCHES[0] => {
                    // The compat ABI is rare; missing it is not worth failing.
                    log::warn!("audit: could not add the {} execve rule: {e}", arch.name);
                    self.uncovered.push(format!(
                        "{} not covered (adding its rule failed: {e})",
                        arch.name
                    ));
                }
                Err(e) => {
                    return Err(start_error(
                        &e,
                        &format!("adding the {} execve audit rule", arch.name),
                    ))
                }
            }
        }
        Ok(())
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// What the session found and changed, for the status table.
    pub fn describe(&self) -> String {
        let mut head = match self.mode {
            Mode::Multicast => format!(
                "reading audit multicast beside the audit daemon (pid {})",
                self.found.pid
            ),
            Mode::Receiver if self.found.pid != 0 => format!(
                "audit receiver (the audit daemon pid {} had exited)",
                self.found.pid
            ),
            Mode::Receiver => "audit receiver (no audit daemon was running)".to_string(),
        };
        let mut parts = Vec::new();
        if !self.covered.is_empty() {
            parts.push(format!(
                "existing execve rule covers {}",
                self.covered.join(",")
            ));
        }
        let added: Vec<&str> = self
            .changes
            .iter()
            .filter_map(|c| match c {
                Change::AddedRule { arch, .. } => Some(*arch),
                _ => None,
            })
            .collect();
        match added.len() {
            0 => {}
            1 => parts.push(format!("added execve rule {}", added[0])),
            _ => parts.push(format!("added execve rules {}", added.join(","))),
        }
        parts.extend(self.uncovered.iter().cloned());
        for c in &self.changes {
            match c {
                Change::Enabled { .. } => parts.push("enabled audit".to_string()),
                Change::BacklogLimit { from, to } => parts.push(format!("backlog {from}→{to}")),
                Change::BacklogWait { from, to } => parts.push(format!("backlog wait {from}→{to}")),
                Change::TookPid | Change::AddedRule { .. } => {}
            }
        }
        if self.found.enabled == ENABLED_LOCKED {
            parts.push("audit locked (enabled=2): settings left as found".to_string());
        }
        // The kernel reports twice the size asked for (its bookkeeping share).
        let asked = self.rcvbuf / 2;
        if asked % (1 << 20) == 0 {
            parts.push(format!("receive buffer {} MiB", asked >> 20));
        } else {
            parts.push(format!("receive buffer {} KiB", asked >> 10));
        }
        head.push_str(": ");
        head.push_str(&parts.join("; "));
        head
    }

    /// One audit record (type, text without trailing NULs). Ok(None) on
    /// timeout. Replies and the kernel's AUDIT_REPLACE probes are skipped.
    pub fn recv<'b>(
        &mut self,
        buf: &'b mut [u8],
        timeout: Duration,
    ) -> Result<Option<(u16, &'b [u8])>, RecvError> {
        if let Some((msg_type, data)) = self.pending.pop_front() {
            let Some(dst) = buf.get_mut(..data.len()) else {
                return Err(RecvError::Truncated {
                    len: data.len(),
                    buf_len: buf.len(),
                });
            };
            dst.copy_from_slice(&data);
            return Ok(Some((msg_type, &buf[..data.len()])));
        }
        let deadline = Instant::now() + timeout;
        let (msg_type, len) = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rec.recv(buf, Some(left))? {
                None => return Ok(None),
                Some(m) if is_wanted(m.msg_type) => {
                    break (m.msg_type, netlink::record_text(m.payload).len())
                }
                Some(_) if left.is_zero() => return Ok(None),
                Some(_) => {}
            }
        };
        let at = netlink::NLMSG_HDRLEN;
        Ok(Some((msg_type, &buf[at..at + len])))
    }

    /// Kernel counters now (lost, backlog), for loss accounting.
    pub fn status(&mut self) -> io::Result<AuditStatus> {
        self.ctl.get_status().map(|s| AuditStatus::from(&s))
    }

    /// Puts back what start() found: deletes only the rules we added,
    /// restores the backlog settings and the enabled flag, and gives the
    /// audit pid back if we took it. A setting someone else changed since
    /// is left alone.
    pub fn restore(mut self) -> Result<(), String> {
        let result = self.undo();
        self.restored = true;
        result
    }

    fn undo(&mut self) -> Result<(), String> {
        let now = self.ctl.get_status().ok();
        let mut errors = Vec::new();
        while let Some(change) = self.changes.pop() {
            let result = match &change {
                Change::AddedRule { arch, raw } => match self.ctl.del_rule(raw) {
                    // Someone removed it already: the end state is right.
                    Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
                    r => r.map_err(|e| format!("deleting our {arch} execve rule: {e}")),
                },
                Change::BacklogWait { from, to } => {
                    let (from, to) = (*from, *to);
                    revert(
                        now.as_ref().map(|s| s.backlog_wait_time),
                        to,
                        "backlog wait",
                        || {
                            set_status(&mut self.ctl, STATUS_BACKLOG_WAIT_TIME, |s| {
                                s.backlog_wait_time = from
                            })
                        },
                    )
                }
                Change::BacklogLimit { from, to } => {
                    let (from, to) = (*from, *to);
                    revert(
                        now.as_ref().map(|s| s.backlog_limit),
                        to,
                        "backlog limit",
                        || {
                            set_status(&mut self.ctl, STATUS_BACKLOG_LIMIT, |s| {
                                s.backlog_limit = from
                            })
                        },
                    )
                }
                Change::Enabled { from, to } => {
                    let (from, to) = (*from, *to);
                    revert(now.as_ref().map(|s| s.enabled), to, "enabled flag", || {
                        set_status(&mut self.ctl, STATUS_ENABLED, |s| s.enabled = from)
                    })
                }
                Change::TookPid => {
                    self.wait_delivered();
                    let me = std::process::id();
                    revert(now.as_ref().map(|s| s.pid), me, "audit pid", || {
                        set_status(&mut self.ctl, STATUS_PID, |s| s.pid = 0)
                    })
                }
            };
            if let Err(e) = result {
                errors.push(e);
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }
}

impl AuditSession {
    /// Lets the kernel hand us the records still queued (those of our own
    /// restore, mostly) before we unregister: whatever is queued once no
    /// receiver is registered goes to the kernel log instead.
    fn wait_delivered(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(1);
        while Instant::now() < deadline {
            match self.ctl.get_status() {
                Ok(s) if s.backlog == 0 => return,
                Ok(_) => std::thread::sleep(Duration::from_millis(5)),
                Err(_) => return,
            }
        }
    }
}

impl Drop for AuditSession {
    fn drop(&mut self) {
        if !self.restored {
            if let Err(e) = self.undo() {
                log::error!("audit: restoring the audit configuration: {e}");
            }
        }
    }
}

/// Records only; AUDIT_REPLACE is the kernel checking that we are alive.
fn is_wanted(msg_type: u16) -> bool {
    msg_type >= 1100 && msg_type != AUDIT_REPLACE
}

/// Undoes one setting unless it no longer holds the value we set.
fn revert(
    now: Option<u32>,
    ours: u32,
    what: &str,
    set: impl FnOnce() -> io::Result<()>,
) -> Result<(), String> {
    if let Some(now) = now {
        if now != ours {
            log::warn!("audit: {what} is {now}, not the {ours} we set; leaving it");
            return Ok(());
        }
    }
    set().map_err(|e| format!("restoring the {what}: {e}"))
}

fn set_status(
    ctl: &mut ControlSocket,
    mask: u32,
    fill: impl FnOnce(&mut StatusMessage),
) -> io::Result<()> {
    let mut s = StatusMessage::new();
    s.mask = mask;
    fill(&mut s);
    ctl.set_status(&s)
}

/// Registers `rec` as the audit receiver. The kernel sends records to the
/// port that sent this request, so it must be the socket we read.
fn take_pid(
    rec: &mut AuditSocket,
    pid: u32,
    pending: &mut VecDeque<(u16, Vec<u8>)>,
) -> io::Result<()> {
    let mut s = StatusMessage::new();
    s.mask = STATUS_PID;
    s.pid = pid;
    let mut payload = vec![0; netlink_packet_core::Emitable::buffer_len(&s)];
    netlink_packet_core::Emitable::emit(&s, &mut payload);
    let mut buf = vec![0; netlink::RECV_BUF_LEN];
    netlink::request_acked(rec, &mut buf, AUDIT_SET, &payload, |m| {
        if is_wanted(m.msg_type) {
            pending.push_back((m.msg_type, netlink::record_text(m.payload).to_vec()));
        }
    })
}

fn open_multicast(rcvbuf: usize) -> Result<(AuditSocket, usize), StartError> {
    let rec = AuditSocket::open_multicast().map_err(|e| match e.raw_os_error() {
        Some(libc::EPERM) => StartError::Unavailable(
            "not permitted to read the audit multicast group (EPERM): needs CAP_AUDIT_READ"
                .to_string(),
        ),
        _ => start_error(&e, "joining the audit multicast group"),
    })?;
    let n = rec
        .set_rcvbuf(rcvbuf)
        .map_err(|e| start_error(&e, "setting the receive buffer"))?;
    Ok((rec, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(arch: &ExecArch, key: &str) -> AuditRule {
        AuditRule::parse(&exec_rule(arch, key)).unwrap()
    }

    #[test]
    fn our_rule_round_trips() {
        for arch in MACHINE_ARCHES {
            let r = rule(arch, "kerberos_cache_access");
            assert_eq!(r.list, AUDIT_FILTER_EXIT);
            assert_eq!(r.action, AUDIT_ALWAYS);
            assert!(r.has_syscall(arch.execve) && r.has_syscall(arch.execveat));
            assert_eq!(r.key(), Some("kerberos_cache_access"));
            assert!(r.covers_exec(arch));
            for other in MACHINE_ARCHES.iter().filter(|a| *a != arch) {
                assert!(!r.covers_exec(other), "{r:?} must not cover {other:?}");
            }
        }
    }

    #[test]
    fn narrowed_or_other_rules_do_not_cover() {
        let Some(arch) = MACHINE_ARCHES.first() else {
            return;
        };
        let mut m = RuleMessage::new();
        m.flags = RuleFlags::FilterExit;
        m.action = RuleAction::Always;
        m.syscalls.set(arch.execve);
        m.fields
            .push((RuleField::Arch(arch.audit_arch), RuleFieldFlags::Equal));
        m.fields.push((RuleField::Uid(1000), RuleFieldFlags::Equal));
        assert!(!AuditRule::parse(&rule_bytes(&m)).unwrap().covers_exec(arch));

        m.fields.pop();
        m.action = RuleAction::Never;
        assert!(!AuditRule::parse(&rule_bytes(&m)).unwrap().covers_exec(arch));

        m.action = RuleAction::Always;
        m.flags = RuleFlags::FilterTask;
        assert!(!AuditRule::parse(&rule_bytes(&m)).unwrap().covers_exec(arch));

        // All syscalls, no arch condition, plus a key: covers every arch.
        let mut all = RuleMessage::new();
        all.flags = RuleFlags::FilterExit;
        all.action = RuleAction::Always;
        all.syscalls.set_all();
        all.fields
            .push((RuleField::Filterkey("x".into()), RuleFieldFlags::Equal));
        let all = AuditRule::parse(&rule_bytes(&all)).unwrap();
        assert!(MACHINE_ARCHES.iter().all(|a| all.covers_exec(a)));
        assert!(all.summary().contains("syscalls=all"));
    }

    #[test]
    fn string_fields_are_walked_in_order() {
        let mut m = RuleMessage::new();
        m.flags = RuleFlags::FilterExit;
        m.action = RuleAction::Always;
        m.fields.push((
            RuleField::Watch("/etc/krb5.keytab".into()),
            RuleFieldFlags::Equal,
        ));
        m.fields
            .push((RuleField::Filterkey("k".into()), RuleFieldFlags::Equal));
        let r = AuditRule::parse(&rule_bytes(&m)).unwrap();
        assert_eq!(r.conditions[0].text.as_deref(), Some("/etc/krb5.keytab"));
        assert_eq!(r.key(), Some("k"));
    }

    #[test]
    fn malformed_rules_are_rejected_and_padding_cut() {
        assert!(AuditRule::parse(&[0; 100]).is_none());
        let Some(arch) = MACHINE_ARCHES.first() else {
            return;
        };
        let raw = exec_rule(arch, "key");
        // buflen claims more strings than present.
        assert!(AuditRule::parse(&raw[..raw.len() - 1]).is_none());
        let mut padded = raw.clone();
        padded.extend_from_slice(&[0; 3]);
        assert_eq!(AuditRule::parse(&padded).unwrap().raw(), &raw[..]);
    }

    #[test]
    fn errno_maps_to_reasons() {
        let e = start_error(&io::Error::from_raw_os_error(libc::EPERM), "x");
        assert!(matches!(e, StartError::Unavailable(_)));
        assert_eq!(
            e.to_string().starts_with("not root"),
            !euid_is_root(),
            "{e}"
        );
        let e = start_error(&io::Error::from_raw_os_error(libc::ECONNREFUSED), "x");
        assert!(e.to_string().contains("container"), "{e}");
        let e = start_error(&io::Error::from_raw_os_error(libc::EPROTONOSUPPORT), "x");
        assert!(matches!(e, StartError::Unavailable(_)));
        let e = start_error(&io::Error::from_raw_os_error(libc::EIO), "x");
        assert!(matches!(e, StartError::Failed(_)));
    }

    #[test]
    fn session_can_move_to_a_reader_thread() {
        fn send<T: Send>() {}
        send::<AuditSession>();
    }

    #[test]
    fn liveness_of_pids() {
        assert!(process_alive(std::process::id()));
        assert!(!process_alive(u32::MAX));
    }
}
