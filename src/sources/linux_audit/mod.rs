//! Source `linux_audit`: every exec, with its full argv, from the kernel's
//! audit subsystem over netlink.
//!
//! The kernel copies argv into the EXECVE record at exec time, so a `kcc`
//! that lives a millisecond is still seen whole. The pieces:
//! [`control`] sets audit up and keeps it in place, [`restore`] puts it
//! back, [`persist`] records what we changed so a kill -9 can be undone,
//! [`owner`] decides which of our instances owns the audit session,
//! [`netlink`] carries the records, [`record`] reads their text,
//! [`assemble`] joins the records of one exec. This module runs them and
//! hands Kerberos-related execs to the engine; everything else is dropped on
//! the hot path without allocating.

mod arch;
pub mod assemble;
pub mod control;
mod kernel;
pub mod netlink;
pub mod owner;
pub mod persist;
pub mod record;
pub mod restore;

use crate::engine::{Engine, Identity};
use crate::event::{ExecEvent, SourceKind};
use crate::sources::exec_cache::{self, ExecCache};
use crate::sources::{AuditError, Source, SourceError};
use crate::state::{Lock, StateDir};
use crate::status::{Counters, State};
use assemble::{Assembler, AssemblerConfig, AuditExec};
use control::{AuditSession, RecvError, SessionOptions, StartError};
use owner::ReaderHold;
use persist::Loaded;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Records of one netlink datagram are at most a page or so; a split EXECVE
/// record is ~7.5 KB.
const RECV_BUF: usize = 64 * 1024;
/// How often pending events are expired and the status is refreshed.
const HOUSEKEEPING: Duration = Duration::from_millis(500);
/// Recent execs remembered for naming parents.
const EXEC_CACHE: usize = 8192;
/// How often the audit configuration is checked (and repaired).
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// After someone changed the audit configuration (a CONFIG_CHANGE record),
/// it is checked at once, but at most this often during a burst (a rule
/// load). At once, because a rule file that deletes our rule (`-D`) may end
/// by locking the configuration (`-e 2`).
const CHECK_SPACING: Duration = Duration::from_millis(20);
/// How often an instance reading beside the owner looks whether it is gone.
const OWNER_POLL: Duration = Duration::from_millis(200);
/// AUDIT_CONFIG_CHANGE: a rule or an audit setting changed.
const AUDIT_CONFIG_CHANGE: u16 = 1305;

/// Audit receivers that register as the audit pid when they start. When one
/// of them execs and we hold that role, we release it to them.
pub(crate) const AUDIT_DAEMONS: &[&str] = &["auditd", "go-audit", "auditbeat"];

/// Which table entry `exe` runs, by file name. Cheap: it runs for every exec.
pub(crate) fn audit_daemon(exe: &[u8]) -> Option<&'static str> {
    let name = match exe.iter().rposition(|&b| b == b'/') {
        Some(at) => &exe[at + 1..],
        None => exe,
    };
    AUDIT_DAEMONS.iter().copied().find(|d| d.as_bytes() == name)
}

/// Our place among the instances sharing the state directory.
enum Role {
    /// No usable state directory: we own the session but record nothing.
    Alone,
    Owner {
        dir: StateDir,
        _lock: Lock,
    },
    /// Another instance owns the session; we read beside it.
    Reader {
        dir: StateDir,
        hold: Option<ReaderHold>,
    },
}

/// The `linux_audit` source: the audit session (or a reader beside another
/// instance's), the assembler that joins records into execs, and the
/// bookkeeping that keeps the configuration in place and counts losses.
pub struct LinuxAudit {
    session: Option<AuditSession>,
    role: Role,
    /// What happened at start (recovery, state directory problems).
    notes: Vec<String>,
    assembler: Assembler,
    cache: ExecCache,
    buf: Vec<u8>,
    overruns: u64,
    kernel_lost: Option<u32>,
    last_check: Instant,
    check_due: Option<Instant>,
    last_owner_poll: Instant,
}

impl LinuxAudit {
    /// Sets up audit (see [`AuditSession::start`]), coordinating with other
    /// instances through `state_dir`: the first becomes the owner (after
    /// undoing what a dead predecessor left), later ones read beside it. The
    /// error says why it cannot run here, for the status table.
    pub fn start(state_dir: &Path) -> Result<LinuxAudit, StartError> {
        let mut notes = Vec::new();
        let mut opts = SessionOptions::default();
        let dir = match StateDir::open(state_dir) {
            Ok(d) => Some(d),
            Err(e) => {
                log::warn!("linux_audit: {e}");
                notes.push(format!(
                    "{e}: audit changes are not recorded (a kill -9 would leave them) and \
                     other instances are not seen"
                ));
                None
            }
        };
        let role = match dir {
            None => Role::Alone,
            Some(dir) => {
                let hold = match owner::join_readers(&dir) {
                    Ok(h) => Some(h),
                    Err(e) => {
                        log::warn!("linux_audit: joining the readers lock: {e}");
                        None
                    }
                };
                match owner::try_own(&dir) {
                    Ok(Some(lock)) => {
                        drop(hold);
                        match restore::recover(&dir, &opts.key) {
                            Ok(r) => {
                                for n in &r.notes {
                                    log::warn!("linux_audit: {n}");
                                }
                                notes.extend(r.notes);
                            }
                            Err(e) => {
                                log::error!(
                                    "linux_audit: could not undo what an earlier instance \
                                     left: {e}"
                                );
                                notes.push(format!(
                                    "could not fully undo what an earlier instance left: {e}"
                                ));
                            }
                        }
                        opts.record_dir = Some(dir.clone());
                        Role::Owner { dir, _lock: lock }
                    }
                    Ok(None) => Role::Reader { dir, hold },
                    Err(e) => {
                        notes.push(format!(
                            "owner lock in {} unusable ({e}): other instances are not seen",
                            dir.path().display()
                        ));
                        Role::Alone
                    }
                }
            }
        };
        let session = match &role {
            Role::Reader { .. } => AuditSession::observe(&opts)?,
            Role::Alone | Role::Owner { .. } => AuditSession::start(&opts)?,
        };
        Ok(LinuxAudit {
            session: Some(session),
            role,
            notes,
            assembler: Assembler::new(AssemblerConfig::default()),
            cache: ExecCache::new(EXEC_CACHE),
            buf: vec![0; RECV_BUF],
            overruns: 0,
            kernel_lost: None,
            last_check: Instant::now(),
            check_due: None,
            last_owner_poll: Instant::now(),
        })
    }

    fn reason(&self) -> String {
        let stats = self.assembler.stats();
        let mut reason = self
            .session
            .as_ref()
            .map_or_else(String::new, AuditSession::describe);
        if let Role::Reader { dir, .. } = &self.role {
            let pid = owner::owner_pid(dir).map_or_else(|| "?".to_string(), |p| p.to_string());
            reason.push_str(&format!(
                "; owner: pid {pid} (state dir {})",
                dir.path().display()
            ));
        }
        for n in &self.notes {
            reason.push_str("; ");
            reason.push_str(n);
        }
        if self.overruns > 0 {
            reason.push_str(&format!(
                "; receive buffer overran {} time(s) (records lost)",
                self.overruns
            ));
        }
        if stats.incomplete > 0 {
            reason.push_str(&format!(
                "; {} exec(s) emitted from partial records",
                stats.incomplete
            ));
        }
        if stats.overflow > 0 || stats.late > 0 || stats.malformed > 0 {
            reason.push_str(&format!(
                "; {} forced out of a full pending table, {} late and {} unreadable record(s)",
                stats.overflow, stats.late, stats.malformed
            ));
        }
        reason
    }

    /// Sets the status: never `active` while the session knows it is blind.
    fn publish(&self, engine: &Engine) {
        let blind = self.session.as_ref().and_then(AuditSession::blind);
        match blind {
            Some(why) => engine.status().set(
                SourceKind::LinuxAudit,
                State::Failed,
                format!("blind: {why}; {}", self.reason()),
            ),
            None => engine
                .status()
                .set(SourceKind::LinuxAudit, State::Active, self.reason()),
        };
    }

    /// Counts records the kernel itself could not deliver (backlog full,
    /// rate limit) since the last look.
    fn account_kernel_losses(&mut self, counters: &Counters) {
        let Some(session) = self.session.as_mut() else {
            return;
        };
        if let Ok(status) = session.status() {
            if let Some(before) = self.kernel_lost {
                let lost = status.lost.wrapping_sub(before);
                if lost > 0 {
                    log::warn!("linux_audit: the kernel lost {lost} audit record(s)");
                    counters.drop_events(u64::from(lost));
                }
            }
            self.kernel_lost = Some(status.lost);
        }
    }

    /// The periodic (or prompted) self-check of the audit configuration.
    fn check(&mut self, engine: &Engine) {
        self.last_check = Instant::now();
        self.check_due = None;
        if let Some(session) = self.session.as_mut() {
            session.check();
        }
        self.publish(engine);
    }

    /// As a reader: if the owner has gone (its lock is free), take over
    /// its session and record, then check at once.
    fn poll_owner(&mut self, engine: &Engine) {
        self.last_owner_poll = Instant::now();
        let Role::Reader { dir, .. } = &self.role else {
            return;
        };
        let lock = match owner::try_own(dir) {
            Ok(Some(lock)) => lock,
            Ok(None) => return,
            Err(e) => {
                log::debug!("linux_audit: trying the owner lock: {e}");
                return;
            }
        };
        let dir = dir.clone();
        // Readers must not count us once we own the session.
        self.role = Role::Owner {
            dir: dir.clone(),
            _lock: lock,
        };
        let record = match persist::load(&dir) {
            Loaded::Record(r) if r.written_this_boot() => Some(r),
            Loaded::Record(r) => {
                log::warn!(
                    "linux_audit: discarding the audit record of pid {} from an earlier boot",
                    r.pid
                );
                None
            }
            Loaded::Corrupt { moved_to, why } => {
                log::error!("linux_audit: the audit record was {why}; moved aside as {moved_to}");
                None
            }
            Loaded::None => None,
        };
        let previous = record.as_ref().map(|r| r.pid);
        if let Some(session) = self.session.as_mut() {
            session.adopt(record, Some(dir));
        }
        match previous {
            Some(pid) => log::warn!(
                "linux_audit: the instance that owned the audit session (pid {pid}) is gone; \
                 took the session over"
            ),
            None => log::warn!(
                "linux_audit: the instance that owned the audit session is gone; took over"
            ),
        }
        self.check(engine);
    }

    /// Ends the session: restores the host, or, when instances of ours read
    /// beside us, leaves everything to the one that takes over.
    fn finish(&mut self) {
        let Some(session) = self.session.take() else {
            return;
        };
        match std::mem::replace(&mut self.role, Role::Alone) {
            Role::Alone => {
                if let Err(e) = session.restore() {
                    log::error!("linux_audit: could not restore the audit state: {e}");
                }
            }
            Role::Owner { dir, _lock } => match owner::no_readers(&dir) {
                Ok(None) => {
                    log::info!(
                        "linux_audit: another instance reads beside us; handing the audit \
                         session over instead of restoring"
                    );
                    if let Err(e) = session.hand_over() {
                        log::error!("linux_audit: handing over: {e}");
                    }
                }
                // The readers lock, held exclusively while we restore, keeps
                // a starting instance from joining a session being torn down.
                Ok(Some(_no_readers)) => {
                    if let Err(e) = session.restore() {
                        log::error!("linux_audit: could not restore the audit state: {e}");
                    }
                    drop(_lock);
                }
                Err(e) => {
                    log::warn!("linux_audit: readers lock: {e}; restoring");
                    if let Err(e) = session.restore() {
                        log::error!("linux_audit: could not restore the audit state: {e}");
                    }
                }
            },
            Role::Reader { dir, hold } => {
                drop(session);
                drop(hold);
                reader_exit(&dir);
            }
        }
    }
}

/// A reader leaving: if the owner handed the session over to us just before
/// (its lock is free and no other reader will take over), nobody else would
/// restore the host, so we do.
fn reader_exit(dir: &StateDir) {
    for _ in 0..10 {
        match owner::try_own(dir) {
            Ok(Some(_lock)) => {
                if let Ok(Some(_no_readers)) = owner::no_readers(dir) {
                    match restore::recover(dir, control::DEFAULT_KEY) {
                        Ok(r) => r.notes.iter().for_each(|n| log::info!("linux_audit: {n}")),
                        Err(e) => log::error!("linux_audit: restoring the audit state: {e}"),
                    }
                }
                return;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(_) => return,
        }
    }
}

/// `--cleanup-audit`: undoes what an earlier instance recorded in
/// `state_dir` (or, with no record, deletes our exact exec rules). Refuses
/// while a live instance owns the session. Returns what was done.
pub fn cleanup(state_dir: &Path) -> Result<Vec<String>, AuditError> {
    let dir = StateDir::open(state_dir)?;
    let _lock = match owner::try_own(&dir) {
        Ok(Some(lock)) => lock,
        Ok(None) => {
            let pid = owner::owner_pid(&dir).map_or_else(|| "?".to_string(), |p| p.to_string());
            return Err(AuditError::Owned {
                pid,
                dir: dir.path().to_path_buf(),
            });
        }
        Err(err) => {
            return Err(AuditError::OwnerLock {
                dir: dir.path().to_path_buf(),
                err,
            })
        }
    };
    let had_record = dir.file(persist::RECORD_FILE).exists();
    let mut notes = restore::recover(&dir, control::DEFAULT_KEY)?.notes;
    if !had_record {
        let n = restore::remove_exec_rules(control::DEFAULT_KEY)?;
        notes.push(format!(
            "no audit record in {}; deleted {n} execve rule(s) keyed {}",
            dir.path().display(),
            control::DEFAULT_KEY
        ));
    }
    Ok(notes)
}

/// Hands one assembled exec on: every exec updates the parent cache; only
/// Kerberos-related ones become events (and allocate). Returns the name of
/// the audit daemon this exec starts, if it is one. This is the per-exec hot
/// path (public for the benchmark).
pub fn deliver(
    ex: &AuditExec,
    engine: &Engine,
    counters: &Counters,
    cache: &mut ExecCache,
) -> Option<&'static str> {
    let exe = ex.exe().unwrap_or_default();
    let argv = ex.argv();
    // An event missing its SYSCALL has no pid (0): never cache or look it up.
    if !Engine::wants(exe, argv, &Identity::UNKNOWN) {
        counters.saw(ex.header.sec);
        if ex.pid > 0 {
            cache.record(ex.pid, exe, argv);
        }
        return audit_daemon(exe);
    }
    let cached = if ex.ppid > 0 {
        cache.get(ex.ppid)
    } else {
        None
    };
    let (parent_path, parent_cmdline) = match cached {
        Some(p) => (Some(p.path.to_vec()), Some(vec![p.cmdline.to_vec()])),
        None if ex.ppid <= 0 => (None, None),
        None => match exec_cache::read_proc(ex.ppid) {
            Some((path, cmdline)) => (Some(path), Some(vec![cmdline])),
            None => (None, None),
        },
    };
    let event = ExecEvent {
        time: ex.header.sec,
        time_nanos: ex.header.msec.saturating_mul(1_000_000),
        pid: ex.pid,
        ppid: ex.ppid,
        path: exe.to_vec(),
        argv: argv.to_vec(),
        cwd: ex.cwd().map(<[u8]>::to_vec),
        uid: ex.uid,
        euid: ex.euid,
        gid: ex.gid,
        egid: ex.egid,
        auid: crate::event::known_auid(ex.auid),
        parent_path,
        parent_argv: parent_cmdline,
        source: SourceKind::LinuxAudit,
        discriminator: ex.header.serial,
        incomplete: ex.incomplete,
        ..ExecEvent::default()
    };
    engine.ingest(&event, counters);
    if ex.pid > 0 {
        cache.record(ex.pid, exe, argv);
    }
    None
}

impl Source for LinuxAudit {
    fn kind(&self) -> SourceKind {
        SourceKind::LinuxAudit
    }

    fn run(&mut self, engine: &Engine, stop: &AtomicBool) -> Result<(), SourceError> {
        let counters = engine.counters(SourceKind::LinuxAudit);
        self.check(engine);
        self.account_kernel_losses(&counters);
        let mut last_housekeeping = Instant::now();
        let mut result = Ok(());
        while !stop.load(Ordering::Relaxed) {
            let Some(session) = self.session.as_mut() else {
                break;
            };
            let Self {
                assembler,
                cache,
                buf,
                ..
            } = self;
            // The last audit daemon exec seen in this batch of records.
            let mut daemon = None;
            let mut emit = |ex: &AuditExec| {
                if let Some(name) = deliver(ex, engine, &counters, cache) {
                    daemon = Some((name, ex.pid));
                }
            };
            let mut config_changed = false;
            match session.recv(buf, Duration::from_millis(100)) {
                Ok(Some((rtype, payload))) => {
                    config_changed = rtype == AUDIT_CONFIG_CHANGE;
                    match record::split_payload(payload) {
                        Ok((header, body)) => {
                            assembler.push(rtype, header, body, Instant::now(), &mut emit);
                        }
                        Err(e) => {
                            // Counted: a lost record may be part of an exec.
                            assembler.note_malformed();
                            counters.drop_events(1);
                            log::debug!("linux_audit: unreadable record ({rtype}): {e}");
                        }
                    }
                }
                Ok(None) => {}
                Err(RecvError::Overrun) => {
                    // The kernel dropped records for us; how many is unknown.
                    // Events missing records come out incomplete on expiry.
                    self.overruns += 1;
                    counters.drop_events(1);
                    if self.overruns.is_power_of_two() {
                        log::warn!(
                            "linux_audit: netlink receive buffer overran ({} so far); records lost",
                            self.overruns
                        );
                    }
                }
                Err(RecvError::Truncated { len, buf_len }) => {
                    // One record longer than our buffer: lost, counted.
                    counters.drop_events(1);
                    log::warn!("linux_audit: dropped a {len}-byte record (buffer {buf_len})");
                    assembler.note_malformed();
                }
                Err(RecvError::Io(e)) => {
                    engine.status().set(
                        SourceKind::LinuxAudit,
                        State::Failed,
                        format!("reading audit records failed: {e}"),
                    );
                    result = Err(SourceError::Failed(format!("linux_audit: {e}")));
                    break;
                }
            }
            if let Some((name, pid)) = daemon {
                if session.yield_receiver(name, pid) {
                    self.publish(engine);
                }
            }
            let now = Instant::now();
            if config_changed && self.check_due.is_none() {
                self.check_due = Some(now.max(self.last_check + CHECK_SPACING));
            }
            if now.duration_since(self.last_check) >= CHECK_EVERY
                || self.check_due.is_some_and(|due| now >= due)
            {
                self.check(engine);
            }
            if matches!(self.role, Role::Reader { .. })
                && now.duration_since(self.last_owner_poll) >= OWNER_POLL
            {
                self.poll_owner(engine);
            }
            if now.duration_since(last_housekeeping) >= HOUSEKEEPING {
                last_housekeeping = now;
                let Self {
                    assembler, cache, ..
                } = self;
                assembler.expire(now, &mut |ex: &AuditExec| {
                    deliver(ex, engine, &counters, cache);
                });
                self.account_kernel_losses(&counters);
                self.publish(engine);
            }
        }
        let Self {
            assembler, cache, ..
        } = self;
        assembler.flush(&mut |ex: &AuditExec| {
            deliver(ex, engine, &counters, cache);
        });
        self.finish();
        result
    }
}

impl Drop for LinuxAudit {
    fn drop(&mut self) {
        // A source dropped without running still restores or hands over.
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_daemons_are_named_by_file_name() {
        assert_eq!(audit_daemon(b"/usr/sbin/auditd"), Some("auditd"));
        assert_eq!(audit_daemon(b"auditd"), Some("auditd"));
        assert_eq!(audit_daemon(b"/opt/go-audit/go-audit"), Some("go-audit"));
        assert_eq!(
            audit_daemon(b"/usr/share/auditbeat/bin/auditbeat"),
            Some("auditbeat")
        );
        assert_eq!(audit_daemon(b"/usr/sbin/auditctl"), None);
        assert_eq!(audit_daemon(b"/usr/sbin/auditd/"), None);
        assert_eq!(audit_daemon(b"/tmp/xauditd"), None);
        assert_eq!(audit_daemon(b""), None);
    }
}
