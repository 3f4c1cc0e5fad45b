//! Putting the host's audit configuration back: undoing a list of changes
//! (ours at exit, or a dead instance's from its record), carefully enough
//! that nothing of anyone else's is touched: rules are deleted only when
//! they are exactly ours, and a flag is restored only if it still holds the
//! value we set, and not while an audit daemon that started after us
//! relies on it.

use super::arch::MACHINE_ARCHES;
use super::kernel::{
    exec_rule, process_alive, read_state, set_status, AuditStatus, STATUS_BACKLOG_LIMIT,
    STATUS_BACKLOG_WAIT_TIME, STATUS_ENABLED, STATUS_PID,
};
use super::netlink::ControlSocket;
use super::persist::{self, Change, Loaded};
use crate::sources::AuditError;
use crate::state::StateDir;
use std::io;

/// Whether `raw` is exactly our exec rule for some arch of this machine.
pub(crate) fn is_exec_rule_of(raw: &[u8], key: &str) -> bool {
    MACHINE_ARCHES.iter().any(|a| exec_rule(a, key) == raw)
}

/// What undo needs to know about the host and about who made the changes.
pub(super) struct UndoContext {
    /// The status when undo began.
    pub now: Option<AuditStatus>,
    /// Our pid, if we hold the receiver role and are to give it back.
    pub(crate) holder: Option<u32>,
    /// The instance that made the changes.
    pub writer: u32,
    /// The audit pid found before the changes.
    pub(crate) found_pid: u32,
}

impl UndoContext {
    /// A live audit daemon that registered after the changes were made: it
    /// relies on audit being enabled and on its own settings, so flags are
    /// left as they are.
    fn later_daemon(&self) -> Option<u32> {
        let pid = self.now.as_ref()?.pid;
        let ours = Some(pid) == self.holder || pid == self.writer;
        (pid != 0 && !ours && pid != self.found_pid && process_alive(pid)).then_some(pid)
    }
}

/// Undoes `changes` in reverse order. Returns the changes that could not be
/// undone (to keep in the record) and the errors.
pub(super) fn undo_changes(
    ctl: &mut ControlSocket,
    changes: Vec<Change>,
    ctx: &UndoContext,
    is_ours: &dyn Fn(&[u8]) -> bool,
) -> (Vec<Change>, Vec<AuditError>) {
    let now = ctx.now.as_ref();
    let daemon = ctx.later_daemon();
    let mut left = Vec::new();
    let mut errors = Vec::new();
    for change in changes.into_iter().rev() {
        let flag = |what: &str| {
            if let Some(pid) = daemon {
                log::info!(
                    "audit: leaving the {what} as it is: audit daemon pid {pid}, which started \
                     after us, relies on it"
                );
                true
            } else {
                false
            }
        };
        let result = match &change {
            Change::AddedRule { arch, raw } => {
                if !is_ours(raw) {
                    log::warn!("audit: a recorded {arch} rule is not one of our exec rules; left");
                    Ok(())
                } else {
                    match ctl.del_rule(raw) {
                        // Someone removed it already: the end state is right.
                        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
                        r => r.map_err(|err| AuditError::DeleteOurRule {
                            arch: arch.to_string(),
                            err,
                        }),
                    }
                }
            }
            Change::BacklogWait { .. } if flag("backlog wait time") => Ok(()),
            Change::BacklogLimit { .. } if flag("backlog limit") => Ok(()),
            Change::Enabled { .. } if flag("enabled flag") => Ok(()),
            Change::BacklogWait { from, to } => {
                let from = *from;
                revert(
                    now.map(|s| s.backlog_wait_time),
                    *to,
                    "backlog wait",
                    || {
                        set_status(ctl, STATUS_BACKLOG_WAIT_TIME, |s| {
                            s.backlog_wait_time = from
                        })
                    },
                )
            }
            Change::BacklogLimit { from, to } => {
                let from = *from;
                revert(now.map(|s| s.backlog_limit), *to, "backlog limit", || {
                    set_status(ctl, STATUS_BACKLOG_LIMIT, |s| s.backlog_limit = from)
                })
            }
            Change::Enabled { from, to } => {
                let from = *from;
                revert(now.map(|s| s.enabled), *to, "enabled flag", || {
                    set_status(ctl, STATUS_ENABLED, |s| s.enabled = from)
                })
            }
            Change::TookPid => match ctx.holder {
                Some(me) => revert(now.map(|s| s.pid), me, "audit pid", || {
                    set_status(ctl, STATUS_PID, |s| s.pid = 0)
                }),
                // A dead writer's registration. The kernel would drop it on
                // its next failed send; asking now makes it test the
                // connection first, so the request succeeds (a live holder
                // would refuse it, which is fine).
                None if now.is_some_and(|s| s.pid == ctx.writer && !process_alive(s.pid)) => {
                    let _ = set_status(ctl, STATUS_PID, |s| s.pid = 0);
                    Ok(())
                }
                None => Ok(()),
            },
        };
        if let Err(e) = result {
            errors.push(e);
            left.push(change);
        }
    }
    left.reverse();
    (left, errors)
}

/// What [`recover`] did.
#[derive(Debug, Default)]
pub struct Recovery {
    /// One line per thing done or found, for the log and the status reason.
    pub(crate) notes: Vec<String>,
}

/// Puts the host back as an earlier instance's record says (it must be
/// gone: the caller holds the owner lock), then deletes the record. A
/// record from another boot is discarded; an unreadable one is moved aside
/// and our exact exec rules are deleted instead. Err when some change could
/// not be undone (the record then keeps it, for a later try).
pub fn recover(dir: &StateDir, key: &str) -> Result<Recovery, AuditError> {
    let mut out = Recovery::default();
    let record = match persist::load(dir) {
        Loaded::None => return Ok(out),
        Loaded::Corrupt { moved_to, why } => {
            out.notes.push(format!(
                "the audit record was {why}; moved aside as {moved_to}"
            ));
            let n = remove_exec_rules(key)?;
            if n > 0 {
                out.notes
                    .push(format!("deleted {n} leftover execve rule(s) keyed {key}"));
            }
            return Ok(out);
        }
        Loaded::Record(r) => r,
    };
    if !record.written_this_boot() {
        out.notes.push(format!(
            "discarded the audit record of pid {} from an earlier boot (audit state does not \
             survive a reboot)",
            record.pid
        ));
        persist::remove(dir).map_err(AuditError::RemoveOldRecord)?;
        return Ok(out);
    }
    let mut ctl = ControlSocket::open().map_err(AuditError::Netlink)?;
    let now = ctl.get_status().ok().map(|s| AuditStatus::from(&s));
    let ctx = UndoContext {
        now,
        holder: None,
        writer: record.pid,
        found_pid: record.found.pid,
    };
    let count = record.changes.len();
    // Only our exec rules (any arch of this machine, the record's key) may
    // be deleted on a record's word.
    let (left, errors) = undo_changes(&mut ctl, record.changes.clone(), &ctx, &|raw| {
        is_exec_rule_of(raw, &record.key)
    });
    if left.is_empty() {
        persist::remove(dir).map_err(AuditError::RemoveRecord)?;
        out.notes.push(format!(
            "restored the audit configuration left by pid {} ({count} change(s) undone)",
            record.pid
        ));
        Ok(out)
    } else {
        let mut keep = record;
        keep.changes = left;
        if let Err(e) = persist::save(dir, &keep) {
            log::error!("audit: updating the audit record: {e}");
        }
        Err(AuditError::Undo(errors))
    }
}

/// Deletes our exact exec rules (every arch, tagged `key`), wherever they
/// came from; for leftovers no record describes. Returns how many.
pub(crate) fn remove_exec_rules(key: &str) -> Result<usize, AuditError> {
    let state = read_state()?;
    let mut ctl = ControlSocket::open().map_err(AuditError::Netlink)?;
    let mut n = 0;
    for arch in MACHINE_ARCHES {
        let raw = exec_rule(arch, key);
        if state.rules.iter().any(|r| r.raw() == raw.as_slice()) {
            ctl.del_rule(&raw).map_err(|err| AuditError::DeleteRule {
                arch: arch.name.to_string(),
                err,
            })?;
            n += 1;
        }
    }
    Ok(n)
}

/// Undoes one setting unless it no longer holds the value we set.
fn revert(
    now: Option<u32>,
    ours: u32,
    what: &str,
    set: impl FnOnce() -> io::Result<()>,
) -> Result<(), AuditError> {
    if let Some(now) = now {
        if now != ours {
            log::warn!("audit: {what} is {now}, not the {ours} we set; leaving it");
            return Ok(());
        }
    }
    set().map_err(|err| AuditError::Revert {
        what: what.to_string(),
        err,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_exec_rules_count_as_ours() {
        let key = "kerberos_cache_access";
        for arch in MACHINE_ARCHES {
            assert!(is_exec_rule_of(&exec_rule(arch, key), key));
            assert!(!is_exec_rule_of(&exec_rule(arch, "someone_else"), key));
        }
        assert!(!is_exec_rule_of(&[0; 10], key));
        assert!(!is_exec_rule_of(&[0; 2000], key));
    }
}
