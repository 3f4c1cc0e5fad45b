//! The audit session: configure the kernel's audit subsystem so every exec is
//! recorded, read the records, keep the configuration in place while we run
//! (self-healing), and put it back on exit.
//!
//! Records are always read from the read-only multicast group
//! (AUDIT_NLGRP_READLOG), which gets a copy of every record whoever the
//! receiver is. Who holds the kernel's audit pid (the receiver) decides the
//! mode:
//! - Multicast: a live audit daemon (auditd, osqueryd) holds it and stays in
//!   charge; we read beside it.
//! - Receiver: nobody holds it. We register a second socket as the receiver,
//!   because with no registered receiver the kernel writes every record to
//!   the kernel log: an exec rule would flood dmesg, and printk rate
//!   limiting drops lines there without counting them. That socket's
//!   records (the same ones) are discarded unread. The cost: while we hold
//!   the pid, auditd cannot start (the kernel refuses a second receiver), so
//!   we release it when we see an audit daemon exec (`AuditSession::yield_receiver`);
//!   if we stopped reading, the kernel's backlog would fill and, after
//!   `backlog_wait_time`, execs on the host would stall, so we set that wait
//!   to 0 (drop and count instead of stall).
//!
//! Because reading never depends on the mode, switching modes (yielding to
//! auditd, taking over from a daemon that died) opens no gap.
//!
//! Every change is written to the record in the state directory before it
//! is made ([`persist`]), so a kill -9 can be undone by the next start
//! ([`recover`](super::restore::recover)) or `--cleanup-audit`. If we die as the receiver, the kernel
//! notices the closed socket on its next send and frees the pid.

pub use super::kernel::{exec_rule, read_state, AuditRule, AuditState, StartError};
use super::kernel::{process_alive, AuditStatus};
use super::kernel::{
    read_state_with, set_status, start_error, STATUS_BACKLOG_LIMIT, STATUS_BACKLOG_WAIT_TIME,
    STATUS_ENABLED, STATUS_PID,
};
pub use super::netlink::RecvError;
use super::netlink::{self, AuditSocket, ControlSocket};
pub use super::persist::Change;
use super::persist::{self, Found, Record};
use super::restore::{is_exec_rule_of, undo_changes, UndoContext};
use crate::sources::AuditError;
use crate::state::StateDir;
use netlink_packet_audit::{StatusMessage, AUDIT_REPLACE, AUDIT_SET};
use std::fmt;
use std::io;
use std::time::{Duration, Instant, SystemTime};

/// enabled=2: the configuration is immutable until reboot.
const ENABLED_LOCKED: u32 = 2;

/// Longest filter key the kernel accepts.
const MAX_KEY_LEN: usize = 256;

/// How we stand towards the kernel's audit pid (see the module docs); records
/// are read from multicast in both.
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

/// The filter key our rules carry.
pub const DEFAULT_KEY: &str = "kerberos_cache_access";

/// What [`AuditSession::start`] sets up.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    /// Raise the kernel's backlog limit to at least this many records.
    pub backlog_limit: u32,
    /// Receive buffer for the record socket, in bytes.
    pub rcvbuf: usize,
    /// Filter key our rules carry (`key=` in the SYSCALL record); empty for none.
    pub key: String,
    /// Where the record of our changes is kept; None: not kept, so a
    /// kill -9 leaves them.
    pub record_dir: Option<StateDir>,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            backlog_limit: 8192,
            rcvbuf: 8 << 20,
            key: DEFAULT_KEY.to_string(),
            record_dir: None,
        }
    }
}

pub use super::arch::ExecArch;
pub use super::arch::MACHINE_ARCHES;

/// After releasing the receiver role to a starting audit daemon, how long
/// it has to register before we take the role back.
const YIELD_GRACE: Duration = Duration::from_secs(10);
/// How often the receiver socket is emptied. The kernel stalls all audit
/// delivery when it is full; 8 MiB hold seconds of a heavy exec storm.
const DRAIN_EVERY: Duration = Duration::from_millis(10);

/// How often one kind of repair happened, and the last time.
#[derive(Debug, Default, Clone)]
struct Tally {
    times: u64,
    last: Option<(SystemTime, String)>,
}

impl Tally {
    fn note(&mut self, what: String) {
        self.times += 1;
        self.last = Some((SystemTime::now(), what));
    }

    fn describe(&self, done: &str) -> Option<String> {
        let (at, what) = self.last.as_ref()?;
        let times = if self.times == 1 { "time" } else { "times" };
        Some(format!(
            "{done} {} {times}, last: {} ({what})",
            self.times,
            utc(*at)
        ))
    }
}

/// What self-healing did, for the status reason.
#[derive(Debug, Default)]
struct HealStats {
    rules: Tally,
    enabled: Tally,
    receiver: Tally,
    yielded: Tally,
}

#[derive(Debug)]
struct Yielded {
    at: Instant,
}

/// Our hold on the kernel's audit configuration: the sockets, the mode, what
/// was found and what we changed, so it can be kept in place and put back.
pub struct AuditSession {
    ctl: ControlSocket,
    /// The multicast socket. Every record is read from here, in every mode,
    /// so that becoming or ceasing to be the receiver never opens a gap or
    /// repeats a record.
    rec: AuditSocket,
    /// In receiver mode, the socket registered as the audit pid. The kernel
    /// blocks when it is full, so it is kept empty; its records are the
    /// multicast ones again and are discarded unread.
    unicast: Option<AuditSocket>,
    mode: Mode,
    /// False for an instance reading beside another instance of ours that
    /// owns the session: it changes nothing until it takes over.
    owner: bool,
    found: AuditStatus,
    /// The receiver we read beside in multicast mode; 0 for none.
    beside: u32,
    key: String,
    /// Arches whose exec rule (ours or an equivalent) we keep in place.
    watched: Vec<&'static ExecArch>,
    /// Arches an existing rule already covered.
    covered: Vec<&'static str>,
    /// Notes for describe(): arches left uncovered and why, leftovers.
    uncovered: Vec<String>,
    changes: Vec<Change>,
    /// Where the record of our changes is kept (None: not kept).
    record_dir: Option<StateDir>,
    record_error: Option<String>,
    rcvbuf: usize,
    heal: HealStats,
    yielded: Option<Yielded>,
    last_drain: Instant,
    /// Why we cannot see execs right now, from the last check.
    blind: Option<String>,
    restored: bool,
}

impl fmt::Debug for AuditSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuditSession")
            .field("mode", &self.mode)
            .field("owner", &self.owner)
            .field("found", &self.found)
            .field("changes", &self.changes)
            .finish_non_exhaustive()
    }
}

fn precheck(opts: &SessionOptions) -> Result<(), StartError> {
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
    Ok(())
}

impl AuditSession {
    fn new(
        ctl: ControlSocket,
        (rec, rcvbuf): (AuditSocket, usize),
        found: AuditStatus,
        opts: &SessionOptions,
        owner: bool,
    ) -> AuditSession {
        let beside = if found.pid != 0 && process_alive(found.pid) {
            found.pid
        } else {
            0
        };
        AuditSession {
            ctl,
            rec,
            unicast: None,
            mode: Mode::Multicast,
            owner,
            found,
            beside,
            key: opts.key.clone(),
            watched: MACHINE_ARCHES.iter().collect(),
            covered: Vec::new(),
            uncovered: Vec::new(),
            changes: Vec::new(),
            record_dir: if owner { opts.record_dir.clone() } else { None },
            record_error: None,
            rcvbuf,
            heal: HealStats::default(),
            yielded: None,
            last_drain: Instant::now(),
            blind: None,
            restored: false,
        }
    }

    /// Reads the current state, picks the mode, enables audit, raises the
    /// backlog limit, and adds exec rules for each arch no existing rule
    /// covers. Each change is written to the record (if any) before it is
    /// made. A failure half-way undoes what was already changed.
    pub fn start(opts: &SessionOptions) -> Result<AuditSession, StartError> {
        precheck(opts)?;
        let mut ctl =
            ControlSocket::open().map_err(|e| start_error(&e, "opening the audit netlink"))?;
        let state = read_state_with(&mut ctl)?;
        let found = state.status.clone();
        let locked = found.enabled == ENABLED_LOCKED;

        let mut covered = Vec::new();
        let mut need = Vec::new();
        for arch in MACHINE_ARCHES {
            if state.rules.iter().any(|r| r.covers_exec(arch)) {
                covered.push(arch);
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
        // The record socket first: failing here changes nothing.
        let rec = open_multicast(opts.rcvbuf)?;
        let mut session = AuditSession::new(ctl, rec, found.clone(), opts, true);
        session.watched = covered.iter().chain(need.iter()).copied().collect();
        session.covered = covered.iter().map(|a| a.name).collect();

        // With no live receiver, no sibling of ours can be running, so our
        // key on an existing rule means an earlier run died without a record.
        if session.beside == 0
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
        session.uncovered = uncovered;
        let result = if session.beside == 0 {
            session.become_receiver().map(|_| ())
        } else {
            Ok(())
        };
        if let Err(e) = result.and_then(|()| session.configure(opts, locked, &need)) {
            if let Err(undo) = session.undo() {
                log::error!("audit: rolling back a failed start: {undo}");
            }
            session.restored = true;
            return Err(e);
        }
        Ok(session)
    }

    /// Opens a session that only reads (multicast) and changes nothing: for
    /// an instance beside another instance of ours that owns the audit
    /// configuration. [`adopt`](Self::adopt) makes it the owner.
    pub(crate) fn observe(opts: &SessionOptions) -> Result<AuditSession, StartError> {
        precheck(opts)?;
        let mut ctl =
            ControlSocket::open().map_err(|e| start_error(&e, "opening the audit netlink"))?;
        let state = read_state_with(&mut ctl)?;
        let rec = open_multicast(opts.rcvbuf)?;
        let mut session = AuditSession::new(ctl, rec, state.status, opts, false);
        session.record_dir = None;
        Ok(session)
    }

    /// Makes a reading session the owner, taking over the previous owner's
    /// record (what it found and changed), so that our exit restores the
    /// host as it was before the first instance. Call [`check`](Self::check)
    /// next: it takes the receiver role and reinstalls what is missing.
    pub(crate) fn adopt(&mut self, record: Option<Record>, dir: Option<StateDir>) {
        self.owner = true;
        self.record_dir = dir;
        self.watched = MACHINE_ARCHES.iter().collect();
        self.covered.clear();
        match record {
            Some(r) => {
                self.found.enabled = r.found.enabled;
                self.found.backlog_limit = r.found.backlog_limit;
                self.found.backlog_wait_time = r.found.backlog_wait_time;
                self.found.pid = r.found.pid;
                // The previous owner's registration died with it.
                self.changes = r
                    .changes
                    .into_iter()
                    .filter(|c| *c != Change::TookPid)
                    .collect();
            }
            None => {
                if let Ok(s) = self.ctl.get_status() {
                    self.found = AuditStatus::from(&s);
                }
            }
        }
        self.save();
    }

    /// Registers a new socket as the audit receiver. Ok(false) when a
    /// daemon registered first (we then stay beside it).
    fn become_receiver(&mut self) -> Result<bool, StartError> {
        let mut u =
            AuditSocket::open().map_err(|e| start_error(&e, "opening the audit netlink"))?;
        if let Err(e) = u.set_rcvbuf(self.rcvbuf / 2) {
            log::debug!("audit: receive buffer of the receiver socket: {e}");
        }
        let me = std::process::id();
        match self.apply(Change::TookPid, |_| take_pid(&mut u, me)) {
            Ok(()) => {
                self.unicast = Some(u);
                self.mode = Mode::Receiver;
                self.beside = 0;
                Ok(true)
            }
            // A daemon registered between our status read and now.
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                if let Ok(s) = self.ctl.get_status() {
                    self.beside = s.pid;
                }
                Ok(false)
            }
            Err(e) => Err(start_error(&e, "registering as the audit receiver")),
        }
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
                self.apply(Change::Enabled { from: 0, to: 1 }, |s| {
                    set_status(&mut s.ctl, STATUS_ENABLED, |m| m.enabled = 1)
                })
                .map_err(|e| start_error(&e, "enabling audit"))?;
            }
            if found.backlog_limit < opts.backlog_limit {
                let to = opts.backlog_limit;
                self.apply(
                    Change::BacklogLimit {
                        from: found.backlog_limit,
                        to,
                    },
                    |s| set_status(&mut s.ctl, STATUS_BACKLOG_LIMIT, |m| m.backlog_limit = to),
                )
                .map_err(|e| start_error(&e, "raising the audit backlog limit"))?;
            }
            // As the receiver, a stalled reader must cost records, not make
            // every exec on the host wait for backlog room.
            if self.mode == Mode::Receiver && found.backlog_wait_time != 0 {
                self.zero_backlog_wait(found.backlog_wait_time)
                    .map_err(|e| start_error(&e, "setting the audit backlog wait time"))?;
            }
        }
        for arch in need {
            let raw = exec_rule(arch, &opts.key);
            let change = Change::AddedRule {
                arch: arch.name.to_string(),
                raw: raw.clone(),
            };
            match self.apply(change, |s| s.ctl.add_rule(&raw)) {
                Ok(()) => {}
                Err(e) if arch != &&MACHINE_ARCHES[0] => {
                    // The compat ABI is rare; missing it is not worth failing.
                    log::warn!("audit: could not add the {} execve rule: {e}", arch.name);
                    self.unwatch(arch, format!("adding its rule failed: {e}"));
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

    fn zero_backlog_wait(&mut self, from: u32) -> io::Result<()> {
        self.apply(Change::BacklogWait { from, to: 0 }, |s| {
            set_status(&mut s.ctl, STATUS_BACKLOG_WAIT_TIME, |m| {
                m.backlog_wait_time = 0
            })
        })
    }

    fn unwatch(&mut self, arch: &ExecArch, why: String) {
        self.watched.retain(|a| a.name != arch.name);
        self.uncovered
            .push(format!("{} not covered ({why})", arch.name));
    }

    /// Records `change` (before making it, so a crash cannot lose it), then
    /// makes it with `op`; on failure the record is put back.
    fn apply(
        &mut self,
        change: Change,
        op: impl FnOnce(&mut Self) -> io::Result<()>,
    ) -> io::Result<()> {
        let known = self.changes.contains(&change);
        if !known {
            self.changes.push(change);
            self.save();
        }
        let result = op(self);
        if result.is_err() && !known {
            self.changes.pop();
            self.save();
        }
        result
    }

    /// Writes the record of what we found and changed.
    fn save(&mut self) {
        let Some(dir) = &self.record_dir else {
            return;
        };
        let mut record = Record::new(
            &self.key,
            Found {
                enabled: self.found.enabled,
                backlog_limit: self.found.backlog_limit,
                backlog_wait_time: self.found.backlog_wait_time,
                pid: self.found.pid,
            },
        );
        record.changes = self.changes.clone();
        match persist::save(dir, &record) {
            Ok(()) => self.record_error = None,
            Err(e) => {
                if self.record_error.is_none() {
                    log::error!(
                        "audit: cannot write the audit record in {}: {e}; a kill -9 would \
                         leave our audit changes behind",
                        dir.path().display()
                    );
                }
                self.record_error = Some(e.to_string());
            }
        }
    }

    /// The mode now; it changes when we yield to or take over from a daemon.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// What the session found and changed, for the status table.
    pub fn describe(&self) -> String {
        let mut head = match self.mode {
            Mode::Multicast if !self.owner => "reading audit multicast beside another instance \
                 of ours that owns the audit session; takes over when it exits"
                .to_string(),
            Mode::Multicast if self.beside != 0 => format!(
                "reading audit multicast beside the audit daemon (pid {})",
                self.beside
            ),
            Mode::Multicast if self.yielded.is_some() => "reading audit multicast; released the \
                 audit receiver role to a starting audit daemon"
                .to_string(),
            Mode::Multicast => "reading audit multicast (no audit receiver)".to_string(),
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
                Change::AddedRule { arch, .. } => Some(arch.as_str()),
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
        let h = &self.heal;
        parts.extend(
            [
                h.rules.describe("rules reinstalled"),
                h.enabled.describe("audit re-enabled"),
                h.receiver.describe("audit receiver role taken"),
                h.yielded.describe("receiver role yielded"),
            ]
            .into_iter()
            .flatten(),
        );
        if let Some(e) = &self.record_error {
            parts.push(format!(
                "audit record not saved ({e}): a kill -9 would leave our changes"
            ));
        }
        head.push_str(": ");
        head.push_str(&parts.join("; "));
        head
    }

    /// Why the session cannot see execs, as of the last [`check`](Self::check).
    pub fn blind(&self) -> Option<&str> {
        self.blind.as_deref()
    }

    /// One audit record (type, text without trailing NULs). Ok(None) on
    /// timeout. Replies and the kernel's AUDIT_REPLACE probes are skipped.
    pub fn recv<'b>(
        &mut self,
        buf: &'b mut [u8],
        timeout: Duration,
    ) -> Result<Option<(u16, &'b [u8])>, RecvError> {
        let deadline = Instant::now() + timeout;
        let (msg_type, len) = loop {
            let now = Instant::now();
            // The receiver socket gets the same records as the multicast
            // one, so it only fills while records flow, that is while this
            // loop turns: emptying it on a timer here is enough.
            if now.duration_since(self.last_drain) >= DRAIN_EVERY {
                self.last_drain = now;
                self.drain_unicast();
            }
            let left = deadline.saturating_duration_since(now);
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

    fn drain_unicast(&mut self) {
        let Some(u) = &self.unicast else {
            return;
        };
        if let Err(e) = u.discard_queued(usize::MAX) {
            // Registered again by the next check.
            log::warn!("audit: the receiver socket failed ({e}); dropping it");
            self.unicast = None;
        }
    }

    /// Kernel counters now (lost, backlog), for loss accounting.
    pub fn status(&mut self) -> io::Result<AuditStatus> {
        self.ctl.get_status().map(|s| AuditStatus::from(&s))
    }

    /// Self-healing: checks that audit is enabled, that an execve rule is in
    /// place for every arch we watch, and that someone receives records,
    /// and puts back what is ours when not. Returns why we are blind, if we
    /// are and could not repair it. A reading (non-owner) session only
    /// looks: its owner repairs.
    pub fn check(&mut self) -> Option<String> {
        let blind = self.check_inner();
        if blind != self.blind {
            match &blind {
                Some(why) => log::warn!("audit: blind: {why}"),
                None if self.blind.is_some() => log::info!("audit: seeing execs again"),
                None => {}
            }
        }
        self.blind = blind.clone();
        blind
    }

    fn check_inner(&mut self) -> Option<String> {
        let state = match read_state_with(&mut self.ctl) {
            Ok(s) => s,
            Err(e) => return Some(format!("cannot read the audit state: {e}")),
        };
        let st = &state.status;
        let locked = st.enabled == ENABLED_LOCKED;
        let missing: Vec<&'static ExecArch> = self
            .watched
            .iter()
            .copied()
            .filter(|a| !state.rules.iter().any(|r| r.covers_exec(a)))
            .collect();
        if !self.owner {
            let mut problems = Vec::new();
            if st.enabled == 0 {
                problems.push("audit is disabled".to_string());
            }
            // The compat ABI uncovered is a partial view, not blindness.
            if let Some(a) = missing.iter().find(|a| a.name == MACHINE_ARCHES[0].name) {
                problems.push(format!("no audit rule records execve ({})", a.name));
            }
            if problems.is_empty() {
                return None;
            }
            return Some(format!(
                "{}; the instance that owns the audit session repairs it",
                problems.join("; ")
            ));
        }

        let mut problems = Vec::new();
        if st.enabled == 0 {
            match self.apply(Change::Enabled { from: 0, to: 1 }, |s| {
                set_status(&mut s.ctl, STATUS_ENABLED, |m| m.enabled = 1)
            }) {
                Ok(()) => {
                    log::warn!("audit: audit had been disabled; enabled it again");
                    self.heal.enabled.note("audit was disabled".into());
                }
                Err(e) => problems.push(format!(
                    "audit is disabled and enabling it failed: {}",
                    start_error(&e, "enabling audit")
                )),
            }
        }
        let mut reinstalled = Vec::new();
        for arch in missing {
            if locked {
                problems.push(format!(
                    "audit is locked (enabled=2) and no rule records execve ({}); it cannot \
                     be reinstalled until reboot",
                    arch.name
                ));
                continue;
            }
            let raw = exec_rule(arch, &self.key);
            let change = Change::AddedRule {
                arch: arch.name.to_string(),
                raw: raw.clone(),
            };
            match self.apply(change, |s| s.ctl.add_rule(&raw)) {
                Ok(()) => reinstalled.push(arch.name),
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => reinstalled.push(arch.name),
                Err(e) if arch.name != MACHINE_ARCHES[0].name => {
                    log::warn!(
                        "audit: could not reinstall the {} execve rule: {e}",
                        arch.name
                    );
                    self.unwatch(arch, format!("reinstalling its rule failed: {e}"));
                }
                Err(e) => problems.push(format!(
                    "our execve rule ({}) is gone and reinstalling it failed: {}",
                    arch.name,
                    start_error(&e, "adding the execve rule")
                )),
            }
        }
        if !reinstalled.is_empty() {
            let what = format!("execve rule {} was gone", reinstalled.join(","));
            log::warn!("audit: {what}; reinstalled it");
            self.heal.rules.note(what);
        }
        self.check_receiver(st, locked);
        if problems.is_empty() {
            None
        } else {
            Some(problems.join("; "))
        }
    }

    /// Makes sure some live process receives records: without one, the
    /// kernel writes each record to its log. Records reach us through
    /// multicast either way, so a failure here does not blind us.
    fn check_receiver(&mut self, st: &AuditStatus, locked: bool) {
        let me = std::process::id();
        let alive = st.pid != 0 && st.pid != me && process_alive(st.pid);
        match self.mode {
            Mode::Receiver if st.pid == me && self.unicast.is_some() => {}
            Mode::Receiver if alive => {
                // The kernel dropped us and a daemon registered since.
                log::info!("audit: pid {} is the audit receiver now", st.pid);
                self.unicast = None;
                self.mode = Mode::Multicast;
                self.beside = st.pid;
                self.forget_pid();
            }
            Mode::Receiver => {
                // The kernel dropped our registration (or our socket broke).
                self.unicast = None;
                self.mode = Mode::Multicast;
                self.forget_pid();
                self.take_receiver("the kernel had dropped our registration".into(), locked);
            }
            Mode::Multicast if alive => {
                if self.beside != st.pid {
                    log::info!("audit: reading beside audit daemon pid {}", st.pid);
                }
                self.beside = st.pid;
                self.yielded = None;
            }
            Mode::Multicast => {
                if self
                    .yielded
                    .as_ref()
                    .is_some_and(|y| y.at.elapsed() < YIELD_GRACE)
                {
                    return;
                }
                let why = match (self.beside, self.yielded.take()) {
                    (_, Some(_)) => "the audit daemon we yielded to never registered".to_string(),
                    (0, None) => "nobody received audit records".to_string(),
                    (pid, None) => format!("the audit receiver (pid {pid}) was gone"),
                };
                self.take_receiver(why, locked);
            }
        }
    }

    fn take_receiver(&mut self, why: String, locked: bool) {
        match self.become_receiver() {
            Ok(true) => {
                log::warn!("audit: {why}; registered as the audit receiver");
                self.heal.receiver.note(why);
                if !locked {
                    if let Ok(s) = self.ctl.get_status() {
                        if s.backlog_wait_time != 0 {
                            if let Err(e) = self.zero_backlog_wait(s.backlog_wait_time) {
                                log::warn!("audit: setting the backlog wait time to 0: {e}");
                            }
                        }
                    }
                }
            }
            Ok(false) => {}
            Err(e) => log::warn!("audit: {why}, and registering as the receiver failed: {e}"),
        }
    }

    fn forget_pid(&mut self) {
        if self.changes.contains(&Change::TookPid) {
            self.changes.retain(|c| *c != Change::TookPid);
            self.save();
        }
    }

    /// An audit daemon (`to`, pid `pid`) is starting: if we hold the
    /// receiver role, give it up now, before the daemon asks for it (the
    /// kernel refuses a second receiver, and the daemon would exit). We
    /// keep reading multicast, so nothing is missed. In any mode, we then
    /// leave the role to the daemon for a while (a quick restart of auditd
    /// must not find us registered in between). True if we yielded.
    pub(crate) fn yield_receiver(&mut self, to: &str, pid: i64) -> bool {
        if !self.owner {
            return false;
        }
        self.yielded = Some(Yielded { at: Instant::now() });
        if self.mode != Mode::Receiver {
            return false;
        }
        if let Err(e) = set_status(&mut self.ctl, STATUS_PID, |s| s.pid = 0) {
            log::warn!("audit: could not release the receiver role to {to} (pid {pid}): {e}");
            return false;
        }
        self.unicast = None;
        self.mode = Mode::Multicast;
        self.beside = 0;
        self.forget_pid();
        log::info!("audit: {to} (pid {pid}) is starting; released the audit receiver role to it");
        self.heal.yielded.note(format!("to {to}, pid {pid}"));
        true
    }

    /// Exits without restoring, for an instance of ours that takes over:
    /// rules and flags stay, the record stays (with the receiver role given
    /// back) for the next owner to adopt.
    pub(crate) fn hand_over(mut self) -> Result<(), AuditError> {
        self.restored = true;
        if self.mode == Mode::Receiver {
            self.wait_delivered();
            if let Err(e) = set_status(&mut self.ctl, STATUS_PID, |s| s.pid = 0) {
                log::warn!("audit: releasing the receiver role: {e}");
            }
            self.unicast = None;
        }
        self.changes.retain(|c| *c != Change::TookPid);
        self.save();
        match &self.record_error {
            Some(e) => Err(AuditError::RecordNotSaved(e.clone())),
            None => Ok(()),
        }
    }

    /// Puts back what start() found: deletes only the rules we added,
    /// restores the backlog settings and the enabled flag, and gives the
    /// audit pid back if we took it. A setting someone else changed since
    /// is left alone, and so are the settings an audit daemon that started
    /// after us relies on. The record is deleted when all went well.
    pub fn restore(mut self) -> Result<(), AuditError> {
        let result = self.undo();
        self.restored = true;
        result
    }

    fn undo(&mut self) -> Result<(), AuditError> {
        let now = self.ctl.get_status().ok().map(|s| AuditStatus::from(&s));
        if self.unicast.is_some() && self.changes.contains(&Change::TookPid) {
            self.wait_delivered();
        }
        let me = std::process::id();
        let ctx = UndoContext {
            now,
            holder: self.unicast.is_some().then_some(me),
            writer: me,
            found_pid: self.found.pid,
        };
        let key = self.key.clone();
        let changes = std::mem::take(&mut self.changes);
        let (left, errors) = undo_changes(&mut self.ctl, changes, &ctx, &|raw| {
            is_exec_rule_of(raw, &key)
        });
        self.unicast = None;
        self.changes = left;
        if self.owner {
            if self.changes.is_empty() {
                if let Some(dir) = &self.record_dir {
                    if let Err(e) = persist::remove(dir) {
                        log::warn!("audit: removing the audit record: {e}");
                    }
                }
            } else {
                // Keep what could not be undone for the next start.
                self.save();
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(AuditError::Undo(errors))
        }
    }

    /// Lets the kernel hand the records still queued (those of our own
    /// restore, mostly) to our receiver before we unregister: whatever is
    /// queued once no receiver is registered goes to the kernel log instead.
    fn wait_delivered(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(1);
        while Instant::now() < deadline {
            self.drain_unicast();
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

/// Registers `rec` as the audit receiver. The kernel sends records to the
/// port that sent this request. Records that arrive meanwhile are dropped:
/// we read them from the multicast socket.
fn take_pid(rec: &mut AuditSocket, pid: u32) -> io::Result<()> {
    let mut s = StatusMessage::new();
    s.mask = STATUS_PID;
    s.pid = pid;
    let mut payload = vec![0; netlink_packet_core::Emitable::buffer_len(&s)];
    netlink_packet_core::Emitable::emit(&s, &mut payload);
    let mut buf = vec![0; netlink::RECV_BUF_LEN];
    netlink::request_acked(rec, &mut buf, AUDIT_SET, &payload, |_| {})
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

/// `YYYY-MM-DD HH:MM:SS UTC`, for status reasons.
fn utc(t: SystemTime) -> String {
    // Before the epoch only by a broken clock: shown as the epoch.
    let ts =
        jiff::Timestamp::try_from(t.max(SystemTime::UNIX_EPOCH)).unwrap_or(jiff::Timestamp::MAX);
    ts.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_can_move_to_a_reader_thread() {
        fn send<T: Send>() {}
        send::<AuditSession>();
    }

    #[test]
    fn times_in_reasons_are_utc() {
        let at = |secs| SystemTime::UNIX_EPOCH + Duration::from_secs(secs);
        assert_eq!(utc(at(0)), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(at(951_868_800)), "2000-03-01 00:00:00 UTC");
        assert_eq!(utc(at(1_709_251_199)), "2024-02-29 23:59:59 UTC");
    }

    #[test]
    fn repairs_are_counted_and_the_last_one_named() {
        let mut t = Tally::default();
        assert_eq!(t.describe("rules reinstalled"), None);
        t.note("execve rule b64 was gone".into());
        let one = t.describe("rules reinstalled").unwrap();
        assert!(one.starts_with("rules reinstalled 1 time, last: "), "{one}");
        t.note("execve rule b64,b32 was gone".into());
        let two = t.describe("rules reinstalled").unwrap();
        assert!(
            two.starts_with("rules reinstalled 2 times, last: "),
            "{two}"
        );
        assert!(
            two.ends_with(" UTC (execve rule b64,b32 was gone)"),
            "{two}"
        );
    }
}
