//! Recent execs by pid, so an event can name its parent as it was at exec
//! time, even when the parent has exited since.
//!
//! Every exec is recorded, Kerberos-related or not, so this sits on the hot
//! path: it is a fixed ring of slots whose buffers are reused, and a map sized
//! once, so recording does not allocate once the ring is warm.

use std::collections::HashMap;

/// Longest path and command line kept per exec; longer ones are cut (the
/// parent columns are context, not evidence).
const MAX_PATH: usize = 1024;
const MAX_CMDLINE: usize = 1024;

#[derive(Default)]
struct Slot {
    pid: i64,
    used: bool,
    path: Vec<u8>,
    /// argv joined by single spaces, as `cmdline` is.
    cmdline: Vec<u8>,
}

/// The last `capacity` execs by pid, oldest overwritten first. The exec
/// sources (`linux_audit`, `eslogger`, `osquery_es`, `bsm`) each keep one to
/// fill an event's `parent_path` and `parent_argv`.
pub struct ExecCache {
    slots: Vec<Slot>,
    index: HashMap<i64, usize>,
    next: usize,
}

/// A cached exec: the process's path and command line as of its last exec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cached<'a> {
    /// Executable path, cut to 1 KiB.
    pub path: &'a [u8],
    /// argv joined by single spaces, cut to 1 KiB.
    pub cmdline: &'a [u8],
}

fn copy_capped(dst: &mut Vec<u8>, src: &[u8], cap: usize) {
    dst.clear();
    dst.extend_from_slice(src.get(..cap).unwrap_or(src));
}

impl ExecCache {
    /// A cache of `capacity` execs (at least 1), with every buffer and the
    /// index allocated up front.
    pub fn new(capacity: usize) -> ExecCache {
        let capacity = capacity.max(1);
        let mut slots = Vec::with_capacity(capacity);
        slots.resize_with(capacity, Slot::default);
        ExecCache {
            slots,
            // Twice the entries: pids come and go, and with the table at most
            // half full, hashbrown clears its tombstones in place instead of
            // growing (an allocation on the hot path).
            index: HashMap::with_capacity(capacity * 2),
            next: 0,
        }
    }

    /// Records that `pid` exec'd `path` with `argv`, replacing what the
    /// oldest slot held.
    pub fn record<A: AsRef<[u8]>>(&mut self, pid: i64, path: &[u8], argv: &[A]) {
        let i = match self.index.get(&pid) {
            // The same process exec'd again: update in place.
            Some(&i) => i,
            None => {
                let i = self.next;
                self.next = (self.next + 1) % self.slots.len();
                if let Some(old) = self.slots.get(i) {
                    if old.used {
                        self.index.remove(&old.pid);
                    }
                }
                self.index.insert(pid, i);
                i
            }
        };
        let Some(slot) = self.slots.get_mut(i) else {
            return;
        };
        slot.pid = pid;
        slot.used = true;
        copy_capped(&mut slot.path, path, MAX_PATH);
        slot.cmdline.clear();
        for (n, a) in argv.iter().enumerate() {
            if slot.cmdline.len() >= MAX_CMDLINE {
                break;
            }
            if n > 0 {
                slot.cmdline.push(b' ');
            }
            let room = MAX_CMDLINE.saturating_sub(slot.cmdline.len());
            let a = a.as_ref();
            slot.cmdline.extend_from_slice(a.get(..room).unwrap_or(a));
        }
    }

    /// What `pid` last exec'd, if that is still among the last `capacity`
    /// execs recorded.
    pub fn get(&self, pid: i64) -> Option<Cached<'_>> {
        let slot = self.slots.get(*self.index.get(&pid)?)?;
        Some(Cached {
            path: &slot.path,
            cmdline: &slot.cmdline,
        })
    }

    /// Pids held (at most `capacity`).
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// No exec recorded yet.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }
}

/// A live process's path and command line from /proc, for a parent we did
/// not see exec (it started before us).
#[cfg(target_os = "linux")]
pub(crate) fn read_proc(pid: i64) -> Option<(Vec<u8>, Vec<u8>)> {
    use std::os::unix::ffi::OsStrExt;
    let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
        .map(|p| p.as_os_str().as_bytes().to_vec())
        .unwrap_or_default();
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let trimmed = raw.strip_suffix(b"\0").unwrap_or(&raw);
    let cmdline = trimmed
        .iter()
        .map(|&b| if b == 0 { b' ' } else { b })
        .collect();
    Some((exe, cmdline))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_recent_execs_and_forgets_the_oldest() {
        let mut c = ExecCache::new(2);
        c.record(1, b"/bin/sh", &["sh", "-c", "x"]);
        c.record(2, b"/bin/zsh", &["-zsh"]);
        assert_eq!(c.get(1).unwrap().cmdline, b"sh -c x");
        c.record(3, b"/usr/bin/kcc", &["kcc"]);
        assert!(c.get(1).is_none());
        assert_eq!(c.get(2).unwrap().path, b"/bin/zsh");
        assert_eq!(c.get(3).unwrap().path, b"/usr/bin/kcc");
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn a_second_exec_of_a_pid_replaces_the_first() {
        let mut c = ExecCache::new(4);
        c.record(7, b"/bin/sh", &["sh"]);
        c.record(7, b"/usr/bin/kcc", &["kcc", "list"]);
        assert_eq!(c.get(7).unwrap().cmdline, b"kcc list");
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn long_values_are_capped() {
        let mut c = ExecCache::new(1);
        let big = vec![b'a'; 10_000];
        c.record(1, &big, &[&big[..], &big[..]]);
        let got = c.get(1).unwrap();
        assert_eq!(got.path.len(), MAX_PATH);
        assert_eq!(got.cmdline.len(), MAX_CMDLINE);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn reads_a_live_process() {
        let (exe, cmdline) = read_proc(i64::from(std::process::id())).unwrap();
        assert!(!exe.is_empty());
        assert!(!cmdline.is_empty());
    }
}
