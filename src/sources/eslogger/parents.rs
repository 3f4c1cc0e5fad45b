//! Parent tracking: every exec and fork is remembered in an [`ExecCache`] so
//! that an event can name its parent as it was; live, a parent seen neither way
//! is read from the running process.

use super::*;

/// A live process's path and command line, for a parent that has not exec'd
/// since we started.
pub(super) fn live_process(pid: i64) -> Option<(Vec<u8>, Vec<u8>)> {
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

impl Eslogger {
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

    /// The child starts as a copy of the parent: it gets the parent's cached
    /// exec, or the image the fork message names.
    pub(super) fn on_fork(
        &mut self,
        parent_pid: Option<i64>,
        parent_path: Option<&[u8]>,
        child_pid: i64,
    ) {
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
                self.scratch_path.extend_from_slice(path);
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
}
