//! Linux `/proc` helpers shared by the process snapshot and the
//! `proc_connector` source: the process list, `stat` and `comm` parsing,
//! and the clocks `/proc` times are counted in.
//!
//! Reads go into caller-owned buffers so a scan over every process does not
//! allocate per process. A pid that vanishes between the listing and a read
//! is normal and reads as `None`.

use std::fmt::Write as _;
use std::io::Read;

/// The longest `comm` the kernel keeps (TASK_COMM_LEN - 1): a longer
/// executable name is cut to its first 15 bytes.
pub(crate) const COMM_MAX: usize = 15;

/// `PF_KTHREAD` in the flags of `/proc/<pid>/stat` (include/linux/sched.h).
const PF_KTHREAD: u64 = 0x0020_0000;

/// Clock ticks per second of /proc's process times (USER_HZ).
pub(crate) fn clock_ticks() -> u64 {
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(hz).ok().filter(|&h| h > 0).unwrap_or(100)
}

/// Process start times as unix seconds, on the boot time read once.
///
/// Not via sysinfo's start time: that is derived from the boot time the
/// kernel reports now, which shifts with every wall-clock step, and the start
/// time is part of a row's time and id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Boot {
    /// Boot time, unix seconds (`btime` of /proc/stat).
    pub(crate) btime: i64,
    pub(crate) ticks_per_sec: u64,
}

impl Boot {
    pub(crate) fn read() -> Option<Boot> {
        let stat = std::fs::read("/proc/stat").ok()?;
        Some(Boot {
            btime: parse_btime(&stat)?,
            ticks_per_sec: clock_ticks(),
        })
    }

    /// Unix seconds of a start time in ticks since boot (stat field 22).
    pub(crate) fn start_secs(&self, start_ticks: u64) -> i64 {
        let secs = i64::try_from(start_ticks / self.ticks_per_sec.max(1)).unwrap_or(i64::MAX);
        self.btime.saturating_add(secs)
    }

    /// The start time of `pid`, if it is still there.
    pub(crate) fn start_of(&self, pid: i64) -> Option<i64> {
        let mut path = String::new();
        let mut buf = Vec::new();
        read_into(proc_path(&mut path, pid, "stat"), &mut buf)
            .then(|| parse_stat(&buf))
            .flatten()
            .map(|s| self.start_secs(s.start_ticks))
    }
}

/// `btime` (boot time, unix seconds) from the text of /proc/stat.
pub(crate) fn parse_btime(stat: &[u8]) -> Option<i64> {
    let line = stat
        .split(|&b| b == b'\n')
        .find_map(|l| l.strip_prefix(b"btime "))?;
    std::str::from_utf8(line).ok()?.trim().parse().ok()
}

/// The fields of `/proc/<pid>/stat` we use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stat {
    pub ppid: i64,
    /// Kernel `PF_*` flags (field 9).
    pub(crate) flags: u64,
    /// Start time, clock ticks since boot (field 22).
    pub(crate) start_ticks: u64,
}

impl Stat {
    /// A kernel thread: its flags say so, or it is kthreadd or its child
    /// (for kernels whose flags we would misread).
    pub(crate) fn is_kernel_thread(&self, pid: i64) -> bool {
        self.flags & PF_KTHREAD != 0 || pid == 2 || self.ppid == 2
    }
}

/// Parses `/proc/<pid>/stat`.
pub(crate) fn parse_stat(text: &[u8]) -> Option<Stat> {
    split_stat(text).map(|(_, stat)| stat)
}

/// Parses `/proc/<pid>/stat` and returns its command name (field 2) too.
/// The name may hold spaces and parentheses, so it runs from the first '('
/// to the last ')', and the other fields are counted from there.
pub(crate) fn split_stat(text: &[u8]) -> Option<(&[u8], Stat)> {
    let open = text.iter().position(|&b| b == b'(')?;
    let close = text.iter().rposition(|&b| b == b')')?;
    let comm = text.get(open + 1..close)?;
    let mut fields = text
        .get(close + 1..)?
        .split(|b| b.is_ascii_whitespace())
        .filter(|f| !f.is_empty());
    let _state = fields.next()?; // field 3
    let ppid = parse_int(fields.next()?)?; // field 4
    let flags = parse_u64(fields.nth(9 - 5)?)?; // fields 5..=9
    let start_ticks = parse_u64(fields.nth(22 - 10)?)?; // fields 10..=22
    Some((
        comm,
        Stat {
            ppid,
            flags,
            start_ticks,
        },
    ))
}

/// `/proc/<pid>/<leaf>` written into a reused buffer.
pub(crate) fn proc_path<'a>(buf: &'a mut String, pid: i64, leaf: &str) -> &'a str {
    buf.clear();
    // Writing to a String cannot fail.
    let _ = write!(buf, "/proc/{pid}/{leaf}");
    buf
}

/// Reads a whole file into `buf`; false if it cannot be opened or read.
pub(crate) fn read_into(path: &str, buf: &mut Vec<u8>) -> bool {
    buf.clear();
    match std::fs::File::open(path) {
        Ok(mut f) => f.read_to_end(buf).is_ok(),
        Err(_) => false,
    }
}

fn parse_int(text: &[u8]) -> Option<i64> {
    std::str::from_utf8(text).ok()?.trim().parse().ok()
}

fn parse_u64(text: &[u8]) -> Option<u64> {
    std::str::from_utf8(text).ok()?.parse().ok()
}

/// The pids in `/proc` (processes, not threads: those live under
/// `/proc/<pid>/task`), read with `readdir` so no entry allocates.
pub(crate) struct Pids {
    dir: std::ptr::NonNull<libc::DIR>,
}

// SAFETY: the DIR stream is owned by this value alone and used only through
// `&mut self`, so moving it to another thread is sound.
unsafe impl Send for Pids {}

impl Pids {
    pub(crate) fn open() -> std::io::Result<Pids> {
        // SAFETY: the path is a valid NUL-terminated string.
        let dir = unsafe { libc::opendir(c"/proc".as_ptr()) };
        std::ptr::NonNull::new(dir)
            .map(|dir| Pids { dir })
            .ok_or_else(std::io::Error::last_os_error)
    }
}

impl Pids {
    /// The command name of `pid` (no newline), read with one `read` (cheaper for
    /// the kernel than `stat`, which also gathers times and memory), opened
    /// relative to the open `/proc` directory: the kernel resolves
    /// `<pid>/comm` without walking `/proc` again, which is a measurable part
    /// of a scan that opens one file per process.
    pub(crate) fn read_comm<'a>(&self, pid: i64, buf: &'a mut [u8; 64]) -> Option<&'a [u8]> {
        // "<pid>/comm\0": a pid has at most 19 digits.
        let mut path = [0u8; 32];
        let mut digits = itoa::Buffer::new();
        let digits = digits.format(pid).as_bytes();
        let leaf = b"/comm\0";
        let end = digits.len() + leaf.len();
        path.get_mut(..digits.len())?.copy_from_slice(digits);
        path.get_mut(digits.len()..end)?.copy_from_slice(leaf);
        // SAFETY: `dir` is an open stream owned by self, so its descriptor
        // is valid; `path` is NUL-terminated (leaf ends with NUL).
        let fd = unsafe {
            libc::openat(
                libc::dirfd(self.dir.as_ptr()),
                path.as_ptr().cast(),
                libc::O_RDONLY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return None;
        }
        // SAFETY: `fd` is open and ours; `buf` is writable for its length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        // SAFETY: `fd` is open, ours, and closed once, here.
        unsafe { libc::close(fd) };
        let comm = buf.get(..usize::try_from(n).ok()?)?;
        let comm = comm.strip_suffix(b"\n").unwrap_or(comm);
        (!comm.is_empty()).then_some(comm)
    }
}

impl Iterator for Pids {
    type Item = i64;

    fn next(&mut self) -> Option<i64> {
        loop {
            // SAFETY: `dir` is an open stream owned by self; the entry it
            // returns stays valid until the next readdir on it, and we copy
            // what we need before that.
            let entry = unsafe { libc::readdir(self.dir.as_ptr()) };
            if entry.is_null() {
                return None;
            }
            // SAFETY: d_name of a non-null entry is NUL-terminated.
            let name = unsafe { std::ffi::CStr::from_ptr((*entry).d_name.as_ptr()) };
            if let Some(pid) = parse_pid(name.to_bytes()) {
                return Some(pid);
            }
        }
    }
}

impl Drop for Pids {
    fn drop(&mut self) {
        // SAFETY: `dir` came from opendir and is closed once, here.
        unsafe { libc::closedir(self.dir.as_ptr()) };
    }
}

/// A `/proc` entry name that is a pid: ASCII digits only.
fn parse_pid(name: &[u8]) -> Option<i64> {
    if name.is_empty() || name.len() > 10 || !name.iter().all(u8::is_ascii_digit) {
        return None;
    }
    name.iter()
        .try_fold(0i64, |n, d| {
            n.checked_mul(10)?.checked_add(i64::from(d - b'0'))
        })
        .filter(|&p| p > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: &str = "S 4321 4321 4321 0 -1 4194304 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 100";

    #[test]
    fn stat_is_read_after_the_last_parenthesis() {
        let text = format!("1234 (a (b) c) ) {FIELDS}\n");
        let (comm, stat) = split_stat(text.as_bytes()).unwrap();
        assert_eq!(comm, b"a (b) c) ");
        assert_eq!(
            stat,
            Stat {
                ppid: 4321,
                flags: 4_194_304,
                start_ticks: 987654
            }
        );
        let plain = format!("7 (kcc) {FIELDS}");
        assert_eq!(split_stat(plain.as_bytes()).unwrap().0, b"kcc");
        let spaced = format!("7 (my tool) {FIELDS}");
        assert_eq!(split_stat(spaced.as_bytes()).unwrap().0, b"my tool");
        let odd = b"9 (\xff)\n) S 1 0 0 0 0 7 0 0 0 0 0 0 0 0 0 0 0 0 55";
        assert_eq!(
            parse_stat(odd),
            Some(Stat {
                ppid: 1,
                flags: 7,
                start_ticks: 55
            })
        );
        assert_eq!(split_stat(odd).unwrap().0, b"\xff)\n");
        assert_eq!(parse_stat(b"1 (x) S 1 2 3"), None);
        assert_eq!(parse_stat(b"no parenthesis"), None);
        assert_eq!(parse_stat(b") 1 (x"), None);
        assert_eq!(parse_stat(b""), None);
    }

    #[test]
    fn kernel_threads_are_told_by_flags_or_kthreadd() {
        let user = Stat {
            ppid: 1,
            flags: 0x0040_0100,
            start_ticks: 0,
        };
        assert!(!user.is_kernel_thread(100));
        let kthread = Stat {
            flags: 0x0020_8040,
            ..user
        };
        assert!(kthread.is_kernel_thread(100));
        assert!(Stat { ppid: 2, ..user }.is_kernel_thread(100));
        assert!(Stat { ppid: 0, ..user }.is_kernel_thread(2));
    }

    #[test]
    fn kthreadd_children_on_this_host_are_kernel_threads() {
        let mut path = String::new();
        let mut buf = Vec::new();
        assert!(read_into(proc_path(&mut path, 2, "stat"), &mut buf));
        let stat = parse_stat(&buf).unwrap();
        if stat.flags & PF_KTHREAD == 0 {
            println!("SKIPPED: pid 2 is not kthreadd here (a pid namespace)");
            return;
        }
        assert!(stat.is_kernel_thread(2));
        let me = i64::from(std::process::id());
        assert!(read_into(proc_path(&mut path, me, "stat"), &mut buf));
        assert!(!parse_stat(&buf).unwrap().is_kernel_thread(me));
    }

    #[test]
    fn btime_is_found_among_the_lines() {
        assert_eq!(
            parse_btime(b"cpu  1 2 3\nintr 5\nbtime 1700000000\nprocesses 9\n"),
            Some(1_700_000_000)
        );
        assert_eq!(parse_btime(b"cpu 1\n"), None);
        assert_eq!(parse_btime(b"btime x\n"), None);
        let boot = Boot {
            btime: 1_700_000_000,
            ticks_per_sec: 100,
        };
        assert_eq!(boot.start_secs(250), 1_700_000_002);
        assert!(Boot::read().unwrap().btime > 1_600_000_000);
    }

    #[test]
    fn pids_are_digit_names_and_include_this_process() {
        assert_eq!(parse_pid(b"1234"), Some(1234));
        for bad in [&b"self"[..], b"", b"0", b"12a", b"99999999999", b"-1"] {
            assert_eq!(parse_pid(bad), None, "{bad:?}");
        }
        let me = i64::from(std::process::id());
        assert!(Pids::open().unwrap().any(|p| p == me));
    }

    #[test]
    fn comm_of_this_process_and_of_a_vanished_pid() {
        let mut buf = [0; 64];
        let me = i64::from(std::process::id());
        let comm = Pids::open()
            .unwrap()
            .read_comm(me, &mut buf)
            .unwrap()
            .to_vec();
        assert!(!comm.is_empty() && comm.len() <= COMM_MAX && !comm.ends_with(b"\n"));
        let expected = std::fs::read(format!("/proc/{me}/comm")).unwrap();
        assert_eq!(comm, expected.strip_suffix(b"\n").unwrap());
        // A child that has exited and been reaped: its pid is gone (and
        // cannot be reused while we hold no other reference soon after).
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = i64::from(child.id());
        child.wait().unwrap();
        if Pids::open().unwrap().any(|p| p == pid) {
            println!("SKIPPED: pid {pid} was reused at once");
            return;
        }
        assert_eq!(Pids::open().unwrap().read_comm(pid, &mut buf), None);
        assert_eq!(Boot::read().unwrap().start_of(pid), None);
    }
}
