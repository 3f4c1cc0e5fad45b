//! Source `linux_audit`: every exec, with its full argv, from the kernel's
//! audit subsystem over netlink.
//!
//! The kernel copies argv into the EXECVE record at exec time, so a `kcc`
//! that lives a millisecond is still seen whole. The pieces:
//! [`control`] sets audit up (and puts it back), [`netlink`] carries the
//! records, [`record`] reads their text, [`assemble`] joins the records of one
//! exec. This module runs them and hands Kerberos-related execs to the engine;
//! everything else is dropped on the hot path without allocating.

pub mod assemble;
pub mod control;
pub mod netlink;
pub mod record;

use crate::classify::classify;
use crate::engine::Engine;
use crate::event::{ExecEvent, SourceKind};
use crate::sources::exec_cache::{self, ExecCache};
use crate::sources::Source;
use crate::status::{Counters, State};
use assemble::{Assembler, AssemblerConfig, AuditExec};
use control::{AuditSession, RecvError, SessionOptions, StartError};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Records of one netlink datagram are at most a page or so; a split EXECVE
/// record is ~7.5 KB.
const RECV_BUF: usize = 64 * 1024;
/// How often pending events are expired and the status is refreshed.
const HOUSEKEEPING: Duration = Duration::from_millis(500);
/// Recent execs remembered for naming parents.
const EXEC_CACHE: usize = 8192;

pub struct LinuxAudit {
    session: Option<AuditSession>,
    assembler: Assembler,
    cache: ExecCache,
    buf: Vec<u8>,
    overruns: u64,
    kernel_lost: Option<u32>,
}

impl LinuxAudit {
    /// Sets up audit (see [`AuditSession::start`]). The error says why it
    /// cannot run here, for the status table.
    pub fn start() -> Result<LinuxAudit, StartError> {
        let session = AuditSession::start(&SessionOptions::default())?;
        Ok(LinuxAudit {
            session: Some(session),
            assembler: Assembler::new(AssemblerConfig::default()),
            cache: ExecCache::new(EXEC_CACHE),
            buf: vec![0; RECV_BUF],
            overruns: 0,
            kernel_lost: None,
        })
    }

    fn reason(&self) -> String {
        let stats = self.assembler.stats();
        let mut reason = self
            .session
            .as_ref()
            .map_or_else(String::new, AuditSession::describe);
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
}

/// Hands one assembled exec on: every exec updates the parent cache; only
/// Kerberos-related ones become events (and allocate). This is the per-exec
/// hot path (public for the benchmark).
pub fn deliver(ex: &AuditExec, engine: &Engine, counters: &Counters, cache: &mut ExecCache) {
    let exe = ex.exe().unwrap_or_default();
    let argv = ex.argv();
    // An event missing its SYSCALL has no pid (0): never cache or look it up.
    if classify(exe, argv).is_none() {
        counters.saw(ex.header.sec);
        if ex.pid > 0 {
            cache.record(ex.pid, exe, argv);
        }
        return;
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
}

impl Source for LinuxAudit {
    fn kind(&self) -> SourceKind {
        SourceKind::LinuxAudit
    }

    fn run(&mut self, engine: &Engine, stop: &AtomicBool) -> anyhow::Result<()> {
        let counters = engine.counters(SourceKind::LinuxAudit);
        engine
            .status()
            .set(SourceKind::LinuxAudit, State::Active, self.reason());
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
            let mut emit = |ex: &AuditExec| deliver(ex, engine, &counters, cache);
            match session.recv(buf, Duration::from_millis(100)) {
                Ok(Some((rtype, payload))) => match record::split_payload(payload) {
                    Ok((header, body)) => {
                        assembler.push(rtype, header, body, Instant::now(), &mut emit);
                    }
                    Err(e) => {
                        // Counted: a lost record may be part of an exec.
                        assembler.note_malformed();
                        counters.drop_events(1);
                        log::debug!("linux_audit: unreadable record ({rtype}): {e}");
                    }
                },
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
                    result = Err(anyhow::anyhow!("linux_audit: {e}"));
                    break;
                }
            }
            if last_housekeeping.elapsed() >= HOUSEKEEPING {
                last_housekeeping = Instant::now();
                let Self {
                    assembler, cache, ..
                } = self;
                assembler.expire(Instant::now(), &mut |ex: &AuditExec| {
                    deliver(ex, engine, &counters, cache)
                });
                self.account_kernel_losses(&counters);
                if result.is_ok() {
                    engine
                        .status()
                        .set(SourceKind::LinuxAudit, State::Active, self.reason());
                }
            }
        }
        let Self {
            assembler, cache, ..
        } = self;
        assembler.flush(&mut |ex: &AuditExec| deliver(ex, engine, &counters, cache));
        if let Some(session) = self.session.take() {
            if let Err(e) = session.restore() {
                log::error!("linux_audit: could not restore the audit state: {e}");
            }
        }
        result
    }
}
