//! The live process snapshot: finds Kerberos tools that are running now.
//!
//! It cannot see a process that lives a millisecond (the audit sources do),
//! but it needs no privileges or kernel support and catches long-lived ones,
//! such as a `kcc` blocked on a prompt, and everything running before we
//! started.
//!
//! It runs before each query (at most once a second), so it costs per
//! candidate: per process it reads the name only, and start time, kind and
//! details (argv, exe, cwd, ids, parent) only for candidates, whose name is
//! a Kerberos tool. A process image is examined once: it is remembered by
//! (pid, start time, name) until it exits; an exec in place (sh → exec kcc)
//! changes the name, so the new image is examined.
//!
//! ## Listing without sysinfo
//!
//! sysinfo's narrowest refresh still reads more than the name: on Linux the
//! whole `stat` of every process (plus bookkeeping for CPU and memory), on
//! macOS `KERN_PROCARGS2` (the process's argv and environment) to name it.
//! So the listing is our own, and sysinfo (a fresh `System` per scan) reads
//! only the candidates' details.
//!
//! - **Linux**: the pids of `/proc` (`readdir`: processes only; threads live
//!   under `task/`), one `read` of `/proc/<pid>/comm` each (cheaper for the
//!   kernel than `stat`), into reused buffers: no allocation per process.
//!   A candidate's `stat` then gives its start time (start ticks on the boot
//!   time read once: clock-step proof) and whether it is a kernel thread
//!   (`PF_KTHREAD`, or kthreadd and its children), which is skipped.
//! - **macOS**: `proc_listallpids`, then one `proc_pidinfo(PROC_PIDTBSDINFO)`
//!   per pid, the very call `proc_name` makes, which gives name and start
//!   time together. Without root, another user's process refuses it; then
//!   `PROC_PIDT_SHORTBSDINFO`, open to all, gives the comm. pid 0
//!   (kernel_task) is skipped. Not measured here (no Mac): the cost per
//!   process is one syscall that copies a fixed struct, where sysinfo made
//!   two `sysctl`s copying the argv and environment of every process.
//!
//! ## Names cut by the kernel
//!
//! Linux keeps 15 bytes of the name (`comm`); macOS 31 (`p_name`, else 15 of
//! `p_comm`). The name is the basename of the file exec'd: for a script run
//! through its `#!` line, the script's. Every name `classify::is_tool_name`
//! takes today is shorter than 15 bytes, so an exact match cannot miss, and
//! sysinfo matched the same 15-byte comm on Linux. So that a longer tool
//! name can never be missed, a name that fills its field is completed: it is
//! a candidate if the basename of the executable (`/proc/<pid>/exe`,
//! `proc_pidpath`) or, on Linux, of one of the first three arguments (where
//! a script's path is) is longer, starts with it, and is a tool's. The
//! process is listed under the kernel's name, which is what the seen key
//! needs. A process can rename itself (`prctl(PR_SET_NAME)`); sysinfo's
//! listing had the same blind spot, which the exec sources do not have.
//!
//! ## Cost
//!
//! `cargo bench --bench snapshot` (1,000 processes, 0 candidates, 2-core
//! VM, quiet): sysinfo's listing 31.9 ms of CPU per 1,000 processes, this
//! one 6.6 ms (8.3 ms before `comm` was opened relative to the `/proc`
//! directory descriptor). 92% of it is in the kernel: the open, read and
//! close of one `/proc` file per process (about 4.6 µs on this VM). Holding
//! a `comm` descriptor per process would make a rescan one `pread` each
//! (about 1 µs), at the price of one open descriptor per process on the
//! host, against a default limit of 1,024 that the osquery connections
//! share; we do not pay it. On macOS the same listing is one
//! `proc_listallpids` and one `proc_pidinfo` call per process, a third of
//! the system calls.

use super::{sleep_unless_stopped, Source};
use crate::engine::Engine;
use crate::event::{ExecEvent, SourceKind};
use crate::status::State;
use std::collections::HashSet;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One entry of the cheap process listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcBrief {
    /// Process id.
    pub pid: i64,
    /// Process start time, unix seconds.
    pub start_time: i64,
    /// The short name (comm on Linux, at most 15 bytes).
    pub name: Vec<u8>,
}

/// Full details of one process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcDetail {
    /// Process id.
    pub pid: i64,
    /// Parent pid now (not necessarily at exec); 0 when unknown.
    pub ppid: i64,
    /// Process start time, unix seconds, steady across wall-clock steps on
    /// Linux (start ticks on the boot time); it stands in for the exec time.
    pub start_time: i64,
    /// Executable path; `None` when it cannot be read (another user's
    /// process without root, a process gone meanwhile).
    pub exe: Option<Vec<u8>>,
    /// argv, `argv[0]` first; empty when it cannot be read.
    pub cmd: Vec<Vec<u8>>,
    /// Working directory; `None` when it cannot be read.
    pub cwd: Option<Vec<u8>>,
    /// Real user id; `None` when unknown.
    pub uid: Option<i64>,
    /// Effective user id; `None` when unknown.
    pub euid: Option<i64>,
    /// Real group id; `None` when unknown.
    pub gid: Option<i64>,
    /// Effective group id; `None` when unknown.
    pub egid: Option<i64>,
    /// Audit login uid from `/proc/<pid>/loginuid` (Linux only; 4294967295
    /// when unset, which the event turns into `None`); `None` elsewhere.
    pub auid: Option<i64>,
}

/// The platform edge: how processes are listed and read.
pub trait ProcessTable: Send {
    /// The processes (not threads, not kernel threads) whose name passes
    /// `wanted`. Per process it reads the name only; start time and kind
    /// only for names that pass.
    fn list(
        &mut self,
        wanted: &dyn Fn(&[u8]) -> bool,
    ) -> Result<Vec<ProcBrief>, crate::sources::SourceError>;
    /// Details of the given pids; pids that have exited are left out.
    fn details(&mut self, pids: &[i64]) -> Vec<ProcDetail>;
}

/// The `snapshot` source: scans a [`ProcessTable`] for running Kerberos
/// tools and hands each process image to the engine once.
pub struct Snapshot {
    table: Box<dyn ProcessTable>,
    /// Candidate process images already examined, pruned to live ones on
    /// every scan.
    seen: HashSet<(i64, i64, Vec<u8>)>,
}

impl Snapshot {
    /// A snapshot over `table` that has examined nothing yet.
    pub fn new(table: Box<dyn ProcessTable>) -> Snapshot {
        Snapshot {
            table,
            seen: HashSet::new(),
        }
    }

    /// Lists processes and ingests the new candidates. Errors become the
    /// source's status, never a panic.
    pub fn scan(&mut self, engine: &Engine) {
        let board = engine.status();
        let counters = engine.counters(SourceKind::Snapshot);
        let list = match self.table.list(&Engine::is_tool_name) {
            Ok(list) => list,
            Err(e) => {
                board.set(
                    SourceKind::Snapshot,
                    State::Failed,
                    format!("cannot list processes: {e:#}"),
                );
                return;
            }
        };

        let mut live = HashSet::with_capacity(list.len());
        let mut candidates = Vec::new();
        for p in list {
            let key = (p.pid, p.start_time, p.name);
            if !self.seen.contains(&key) {
                candidates.push(key.0);
            }
            live.insert(key);
        }
        // Forget processes that are gone; remember the live ones, so each
        // image is examined once.
        self.seen = live;
        if candidates.is_empty() {
            return;
        }

        let details = self.table.details(&candidates);
        let parents: Vec<i64> = details.iter().map(|d| d.ppid).filter(|p| *p > 0).collect();
        let parent_details = self.table.details(&parents);
        let lost = candidates.len().saturating_sub(details.len());
        if lost > 0 {
            log::debug!("snapshot: {lost} candidate(s) exited before their details were read");
            counters.drop_events(u64::try_from(lost).unwrap_or(u64::MAX));
        }
        for d in details {
            let parent = parent_details.iter().find(|p| p.pid == d.ppid);
            engine.ingest(&to_event(d, parent), &counters);
        }
    }
}

/// The snapshot runs at most this often on behalf of queries, so a join that
/// calls generate once per outer row does not rescan the process table each
/// time.
const MIN_QUERY_SNAPSHOT_GAP: Duration = Duration::from_secs(1);

/// The snapshot and when it last ran, shared by the source's own thread and
/// the scan the engine runs before each query.
struct Scanner {
    state: Mutex<(Snapshot, Option<Instant>)>,
}

impl Scanner {
    /// Runs the snapshot now; with `min_gap`, skips it when the last scan is
    /// more recent than that.
    fn scan(&self, engine: &Engine, min_gap: Option<Duration>) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (snapshot, last_scan) = &mut *state;
        if let (Some(gap), Some(last)) = (min_gap, *last_scan) {
            if last.elapsed() < gap {
                return;
            }
        }
        snapshot.scan(engine);
        *last_scan = Some(Instant::now());
    }
}

/// The snapshot as a source: it scans once when started, then every
/// `interval` (zero: never by itself), and before each query through the
/// engine's on-demand hook.
pub(crate) struct SnapshotSource {
    scanner: Arc<Scanner>,
    interval: Duration,
}

impl SnapshotSource {
    pub(crate) fn new(table: Box<dyn ProcessTable>, interval: Duration) -> SnapshotSource {
        SnapshotSource {
            scanner: Arc::new(Scanner {
                state: Mutex::new((Snapshot::new(table), None)),
            }),
            interval,
        }
    }

    /// Over this host's process table.
    pub(crate) fn system(interval: Duration) -> SnapshotSource {
        SnapshotSource::new(Box::new(system::SystemProcesses::new()), interval)
    }
}

impl Source for SnapshotSource {
    fn kind(&self) -> SourceKind {
        SourceKind::Snapshot
    }

    /// Scans once, so the first query already sees what was running at
    /// start, and registers the scan the engine runs before each query.
    fn prepare(&mut self, engine: &Engine) {
        engine.status().set(
            SourceKind::Snapshot,
            State::Active,
            snapshot_reason(self.interval),
        );
        let scanner = Arc::clone(&self.scanner);
        engine.set_on_demand(Box::new(move |engine| {
            scanner.scan(engine, Some(MIN_QUERY_SNAPSHOT_GAP));
        }));
        self.scanner.scan(engine, None);
    }

    fn needs_thread(&self) -> bool {
        !self.interval.is_zero()
    }

    fn run(
        &mut self,
        engine: &Engine,
        stop: &AtomicBool,
    ) -> Result<(), crate::sources::SourceError> {
        if self.interval.is_zero() {
            return Ok(());
        }
        while sleep_unless_stopped(self.interval, stop) {
            self.scanner.scan(engine, Some(self.interval / 2));
        }
        Ok(())
    }
}

fn snapshot_reason(interval: Duration) -> String {
    let base = "live process list: sees processes running at scan time, not short-lived execs";
    if interval.is_zero() {
        format!("{base}; scans at start and before each query")
    } else {
        format!(
            "{base}; scans every {}s and before each query",
            interval.as_secs()
        )
    }
}

fn to_event(d: ProcDetail, parent: Option<&ProcDetail>) -> ExecEvent {
    ExecEvent {
        time: d.start_time,
        time_nanos: 0,
        pid: d.pid,
        ppid: d.ppid,
        path: d.exe.unwrap_or_default(),
        argv: d.cmd,
        cwd: d.cwd,
        uid: d.uid,
        euid: d.euid,
        gid: d.gid,
        egid: d.egid,
        auid: crate::event::known_auid(d.auid),
        parent_path: parent.and_then(|p| p.exe.clone()),
        parent_argv: parent.map(|p| p.cmd.clone()),
        source: SourceKind::Snapshot,
        ..ExecEvent::default()
    }
}

/// Whether a process name the kernel may have cut at its limit completes
/// to a wanted name: one of `full` (the executable's path, the first
/// arguments, where a script's path is) has a longer basename that starts
/// with the cut name and is wanted.
fn completes_to_wanted<'a>(
    cut: &[u8],
    wanted: &dyn Fn(&[u8]) -> bool,
    full: impl IntoIterator<Item = &'a [u8]>,
) -> bool {
    full.into_iter()
        .map(crate::exec_path::basename)
        .any(|b| b.len() > cut.len() && b.starts_with(cut) && wanted(b))
}

/// The name macOS reports for a process, as `proc_name` does: `p_name` (the
/// executable's name, 31 bytes at most) if set, else `p_comm` (15 bytes),
/// each from its NUL-padded field; and whether it may have been cut (it
/// fills its field).
#[cfg_attr(not(target_os = "macos"), allow(dead_code))]
fn bsd_name<'a>(name_field: &'a [u8], comm_field: &'a [u8]) -> (&'a [u8], bool) {
    let until_nul = |f: &'a [u8]| f.iter().position(|&b| b == 0).map_or(f, |end| &f[..end]);
    let name = until_nul(name_field);
    let (name, field) = if name.is_empty() {
        (until_nul(comm_field), comm_field)
    } else {
        (name, name_field)
    };
    (name, name.len() + 1 >= field.len())
}

/// The real process table: a cheap name listing of our own (see the module
/// docs), sysinfo for the candidates' details.
pub mod system {
    use super::{ProcBrief, ProcDetail, ProcessTable};
    use std::ffi::OsStr;
    use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System, UpdateKind};

    #[cfg(unix)]
    fn bytes(s: &OsStr) -> Vec<u8> {
        use std::os::unix::ffi::OsStrExt;
        s.as_bytes().to_vec()
    }

    fn to_i64(v: u64) -> i64 {
        i64::try_from(v).unwrap_or(i64::MAX)
    }

    /// The process table. sysinfo gets a fresh `System` per scan: a
    /// long-lived one keeps the old name of a process that exec'd in place
    /// (sh → exec kcc).
    #[derive(Default)]
    pub struct SystemProcesses {
        lister: lister::Lister,
        system: Option<System>,
        /// A start time that does not move when the wall clock is stepped:
        /// sysinfo derives it from the boot time the kernel reports now,
        /// which shifts with every clock step, and the start time is part of
        /// the row's time and id. On Linux we use the process's start ticks
        /// and the boot time read once.
        #[cfg(target_os = "linux")]
        boot: Option<crate::procfs::Boot>,
    }

    impl SystemProcesses {
        /// The live process table; on Linux reads the boot time once.
        pub fn new() -> SystemProcesses {
            #[cfg(target_os = "linux")]
            let boot = crate::procfs::Boot::read();
            SystemProcesses {
                #[cfg(target_os = "linux")]
                lister: lister::Lister::new(boot),
                #[cfg(not(target_os = "linux"))]
                lister: lister::Lister::default(),
                system: None,
                #[cfg(target_os = "linux")]
                boot,
            }
        }

        #[cfg(target_os = "linux")]
        fn stable_start(&self, pid: i64, sysinfo_start: i64) -> i64 {
            self.boot
                .and_then(|b| b.start_of(pid))
                .unwrap_or(sysinfo_start)
        }

        // macOS reports a start time that does not depend on the clock.
        #[cfg(not(target_os = "linux"))]
        fn stable_start(&self, _pid: i64, sysinfo_start: i64) -> i64 {
            sysinfo_start
        }
    }

    /// Linux: the pids in /proc, and `/proc/<pid>/comm` for each.
    #[cfg(target_os = "linux")]
    mod lister {
        use crate::procfs::{self, Boot, COMM_MAX};
        use crate::sources::snapshot::ProcBrief;

        pub(super) struct Lister {
            boot: Option<Boot>,
            /// Reused across processes and scans.
            path: String,
            comm: [u8; 64],
            more: Vec<u8>,
        }

        impl Default for Lister {
            fn default() -> Lister {
                Lister::new(None)
            }
        }

        impl Lister {
            pub(super) fn new(boot: Option<Boot>) -> Lister {
                Lister {
                    boot,
                    path: String::new(),
                    comm: [0; 64],
                    more: Vec::new(),
                }
            }

            pub(super) fn list(
                &mut self,
                wanted: &dyn Fn(&[u8]) -> bool,
            ) -> Result<Vec<ProcBrief>, crate::sources::SourceError> {
                let mut pids = procfs::Pids::open().map_err(|e| {
                    crate::sources::SourceError::Failed(format!("cannot read /proc: {e}"))
                })?;
                let mut out = Vec::new();
                while let Some(pid) = pids.next() {
                    out.extend(self.brief(&pids, pid, wanted));
                }
                Ok(out)
            }

            /// The brief of `pid` if its name is wanted, it is not a kernel
            /// thread, and it is still there.
            pub(super) fn brief(
                &mut self,
                pids: &procfs::Pids,
                pid: i64,
                wanted: &dyn Fn(&[u8]) -> bool,
            ) -> Option<ProcBrief> {
                let Lister {
                    boot,
                    path,
                    comm,
                    more,
                } = self;
                let name = pids.read_comm(pid, comm)?;
                let cut = name.len() >= COMM_MAX;
                if !(wanted(name) || (cut && completes(pid, name, wanted, path, more))) {
                    return None;
                }
                // A candidate: one more read, for its kind and start time.
                if !procfs::read_into(procfs::proc_path(path, pid, "stat"), more) {
                    return None;
                }
                let stat = procfs::parse_stat(more)?;
                if stat.is_kernel_thread(pid) {
                    return None;
                }
                Some(ProcBrief {
                    pid,
                    start_time: boot.map_or(0, |b| b.start_secs(stat.start_ticks)),
                    name: name.to_vec(),
                })
            }
        }

        /// A comm at the 15-byte limit may be a longer name cut: complete it
        /// from the executable's name or, for a script, its path among the
        /// first arguments (comm is the name of the file exec'd: the
        /// script's, not the interpreter's).
        fn completes(
            pid: i64,
            cut: &[u8],
            wanted: &dyn Fn(&[u8]) -> bool,
            path: &mut String,
            buf: &mut Vec<u8>,
        ) -> bool {
            use std::os::unix::ffi::OsStrExt;
            let exe = std::fs::read_link(procfs::proc_path(path, pid, "exe")).ok();
            let exe = exe.as_ref().map(|e| {
                let e = e.as_os_str().as_bytes();
                e.strip_suffix(b" (deleted)").unwrap_or(e)
            });
            let args: &[u8] = if procfs::read_into(procfs::proc_path(path, pid, "cmdline"), buf) {
                buf
            } else {
                &[]
            };
            let first_args = args.split(|&b| b == 0).take(3);
            super::super::completes_to_wanted(cut, wanted, exe.into_iter().chain(first_args))
        }
    }

    /// macOS: `proc_listallpids`, then one `proc_pidinfo` per pid.
    #[cfg(target_os = "macos")]
    mod lister {
        use crate::sources::snapshot::{bsd_name, completes_to_wanted, ProcBrief};
        use std::ffi::{c_int, c_void};
        use std::mem::size_of;

        #[derive(Default)]
        pub(super) struct Lister {
            /// Reused across scans.
            pids: Vec<libc::pid_t>,
        }

        impl Lister {
            pub(super) fn list(
                &mut self,
                wanted: &dyn Fn(&[u8]) -> bool,
            ) -> Result<Vec<ProcBrief>, crate::sources::SourceError> {
                self.read_pids()?;
                Ok(self
                    .pids
                    .iter()
                    .filter_map(|&pid| brief(pid, wanted))
                    .collect())
            }

            fn read_pids(&mut self) -> Result<(), crate::sources::SourceError> {
                let os_error = || {
                    crate::sources::SourceError::Failed(format!(
                        "proc_listallpids: {}",
                        std::io::Error::last_os_error()
                    ))
                };
                // SAFETY: a null buffer asks only for the count.
                let count = unsafe { libc::proc_listallpids(std::ptr::null_mut(), 0) };
                let mut room = usize::try_from(count)
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(os_error)?;
                // Processes start meanwhile: leave room, and grow if it fills.
                for _ in 0..4 {
                    room += room / 4 + 64;
                    self.pids.resize(room, 0);
                    let bytes = c_int::try_from(room * size_of::<libc::pid_t>()).map_err(|_| {
                        crate::sources::SourceError::Failed("too many processes".into())
                    })?;
                    // SAFETY: the buffer holds `bytes` bytes of pid_t.
                    let got = unsafe {
                        libc::proc_listallpids(self.pids.as_mut_ptr().cast::<c_void>(), bytes)
                    };
                    let got = usize::try_from(got).map_err(|_| os_error())?;
                    if got < room {
                        self.pids.truncate(got);
                        return Ok(());
                    }
                }
                Err(crate::sources::SourceError::Failed(
                    "proc_listallpids: the list kept growing".into(),
                ))
            }
        }

        /// The brief of `pid` if its name is wanted and it is still there.
        /// PROC_PIDTBSDINFO (one syscall, what `proc_name` itself calls)
        /// gives name and start time; for another user's process without
        /// root it is refused, and PROC_PIDT_SHORTBSDINFO, open to all,
        /// gives the comm.
        fn brief(pid: libc::pid_t, wanted: &dyn Fn(&[u8]) -> bool) -> Option<ProcBrief> {
            // kernel_task: not a process that runs programs.
            if pid <= 0 {
                return None;
            }
            let mut name_field = [0u8; 2 * libc::MAXCOMLEN];
            let comm_field;
            let start;
            match pid_info::<libc::proc_bsdinfo>(pid) {
                Some(info) => {
                    name_field = c_bytes(&info.pbi_name);
                    comm_field = c_bytes(&info.pbi_comm);
                    start = i64::try_from(info.pbi_start_tvsec).unwrap_or(0);
                }
                None => {
                    comm_field = c_bytes(&pid_info::<libc::proc_bsdshortinfo>(pid)?.pbsi_comm);
                    start = 0;
                }
            }
            let (name, maybe_cut) = bsd_name(&name_field, &comm_field);
            if !(wanted(name) || (maybe_cut && completes(pid, name, wanted))) {
                return None;
            }
            Some(ProcBrief {
                pid: i64::from(pid),
                start_time: start,
                name: name.to_vec(),
            })
        }

        fn c_bytes<const N: usize>(field: &[libc::c_char; N]) -> [u8; N] {
            // c_char is i8 on Apple targets: the same byte, reinterpreted.
            field.map(|c| c as u8)
        }

        /// A `proc_pidinfo` answer and the flavor that fills it.
        ///
        /// # Safety
        /// Implemented only for plain C data, for which all zeroes is valid.
        unsafe trait PidInfo: Sized {
            const FLAVOR: c_int;
        }
        // SAFETY: libc's proc_bsdinfo is plain C data.
        unsafe impl PidInfo for libc::proc_bsdinfo {
            const FLAVOR: c_int = libc::PROC_PIDTBSDINFO;
        }
        // SAFETY: libc's proc_bsdshortinfo is plain C data.
        unsafe impl PidInfo for libc::proc_bsdshortinfo {
            const FLAVOR: c_int = libc::PROC_PIDT_SHORTBSDINFO;
        }

        fn pid_info<T: PidInfo>(pid: libc::pid_t) -> Option<T> {
            // SAFETY: a PidInfo is plain data; all zeroes is a valid value.
            let mut info: T = unsafe { std::mem::zeroed() };
            let size = c_int::try_from(size_of::<T>()).ok()?;
            // SAFETY: the buffer is one T of `size` bytes.
            let got = unsafe {
                libc::proc_pidinfo(
                    pid,
                    T::FLAVOR,
                    0,
                    std::ptr::addr_of_mut!(info).cast::<c_void>(),
                    size,
                )
            };
            (got == size).then_some(info)
        }

        /// A name at its limit may be cut: complete it from the executable's
        /// path (`proc_pidpath`, open to all users).
        fn completes(pid: libc::pid_t, cut: &[u8], wanted: &dyn Fn(&[u8]) -> bool) -> bool {
            let mut buf = [0u8; libc::PROC_PIDPATHINFO_MAXSIZE as usize];
            let size = u32::try_from(buf.len()).unwrap_or(0);
            // SAFETY: the buffer holds `size` bytes.
            let got = unsafe { libc::proc_pidpath(pid, buf.as_mut_ptr().cast::<c_void>(), size) };
            let Some(path) = usize::try_from(got).ok().and_then(|n| buf.get(..n)) else {
                return false;
            };
            completes_to_wanted(cut, wanted, [path])
        }
    }

    /// Elsewhere: sysinfo's names.
    #[cfg(not(any(target_os = "linux", target_os = "macos")))]
    mod lister {
        use crate::sources::snapshot::ProcBrief;
        use sysinfo::{ProcessRefreshKind, ProcessesToUpdate, System};

        #[derive(Default)]
        pub(crate) struct Lister;

        impl Lister {
            pub fn list(
                &mut self,
                wanted: &dyn Fn(&[u8]) -> bool,
            ) -> Result<Vec<ProcBrief>, crate::sources::SourceError> {
                let mut sys = System::new()?;
                sys.refresh_processes_specifics(
                    ProcessesToUpdate::All,
                    true,
                    ProcessRefreshKind::nothing().without_tasks(),
                );
                Ok(sys
                    .processes()
                    .values()
                    .filter(|p| p.thread_kind().is_none())
                    .map(|p| ProcBrief {
                        pid: i64::from(p.pid().as_u32()),
                        start_time: super::to_i64(p.start_time()),
                        name: super::bytes(p.name()),
                    })
                    .filter(|p| wanted(&p.name))
                    .collect())
            }
        }
    }

    impl ProcessTable for SystemProcesses {
        fn list(
            &mut self,
            wanted: &dyn Fn(&[u8]) -> bool,
        ) -> Result<Vec<ProcBrief>, crate::sources::SourceError> {
            // The details of this scan come from a fresh System.
            self.system = None;
            self.lister.list(wanted)
        }

        fn details(&mut self, pids: &[i64]) -> Vec<ProcDetail> {
            let wanted: Vec<Pid> = pids
                .iter()
                .filter_map(|p| u32::try_from(*p).ok())
                .map(Pid::from_u32)
                .collect();
            if wanted.is_empty() {
                return Vec::new();
            }
            if self.system.is_none() {
                match System::new() {
                    Ok(sys) => self.system = Some(sys),
                    Err(e) => {
                        log::debug!("snapshot: cannot read process details: {e:#}");
                        return Vec::new();
                    }
                }
            }
            let Some(sys) = self.system.as_mut() else {
                return Vec::new();
            };
            sys.refresh_processes_specifics(
                ProcessesToUpdate::Some(&wanted),
                true,
                ProcessRefreshKind::nothing()
                    .without_tasks()
                    .with_cmd(UpdateKind::Always)
                    .with_exe(UpdateKind::Always)
                    .with_cwd(UpdateKind::Always)
                    .with_user(UpdateKind::Always),
            );
            let found: Vec<(i64, i64, ProcDetail)> = wanted
                .iter()
                .filter_map(|pid| sys.process(*pid))
                .map(|p| {
                    let pid = i64::from(p.pid().as_u32());
                    let detail = ProcDetail {
                        pid,
                        ppid: p.parent().map_or(0, |pp| i64::from(pp.as_u32())),
                        start_time: 0,
                        exe: p.exe().map(|e| bytes(e.as_os_str())),
                        cmd: p.cmd().iter().map(|a| bytes(a)).collect(),
                        cwd: p.cwd().map(|c| bytes(c.as_os_str())),
                        uid: p.user_id().map(|u| i64::from(**u)),
                        euid: p.effective_user_id().map(|u| i64::from(**u)),
                        gid: p.group_id().map(|g| i64::from(*g)),
                        egid: p.effective_group_id().map(|g| i64::from(*g)),
                        auid: login_uid(pid),
                    };
                    (pid, to_i64(p.start_time()), detail)
                })
                .collect();
            found
                .into_iter()
                .map(|(pid, sysinfo_start, mut d)| {
                    d.start_time = self.stable_start(pid, sysinfo_start);
                    d
                })
                .collect()
        }
    }

    /// The audit login uid (Linux keeps it in /proc; 4294967295 means unset,
    /// reported as is, like osquery's process_events).
    #[cfg(target_os = "linux")]
    fn login_uid(pid: i64) -> Option<i64> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/loginuid")).ok()?;
        text.trim().parse::<i64>().ok()
    }

    #[cfg(not(target_os = "linux"))]
    fn login_uid(_pid: i64) -> Option<i64> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{RowFilter, StoreConfig};
    use crate::users::FixedUsers;
    use std::sync::{Arc, Mutex};

    #[derive(Default)]
    struct FakeState {
        procs: Vec<ProcDetail>,
        names: Vec<(i64, Vec<u8>)>,
        detail_reads: Vec<i64>,
    }

    /// A scripted process table that records which pids were read in full.
    #[derive(Clone, Default)]
    struct Fake(Arc<Mutex<FakeState>>);

    impl Fake {
        fn add(&self, pid: i64, ppid: i64, name: &str, argv: &[&str]) {
            let mut st = self.0.lock().unwrap();
            st.names.push((pid, name.as_bytes().to_vec()));
            st.procs.push(ProcDetail {
                pid,
                ppid,
                start_time: 1000 + pid,
                exe: Some(format!("/bin/{name}").into_bytes()),
                cmd: argv.iter().map(|a| a.as_bytes().to_vec()).collect(),
                uid: Some(501),
                ..ProcDetail::default()
            });
        }
    }

    impl ProcessTable for Fake {
        fn list(
            &mut self,
            wanted: &dyn Fn(&[u8]) -> bool,
        ) -> Result<Vec<ProcBrief>, crate::sources::SourceError> {
            Ok(self
                .0
                .lock()
                .unwrap()
                .names
                .iter()
                .filter(|(_, name)| wanted(name))
                .map(|(pid, name)| ProcBrief {
                    pid: *pid,
                    start_time: 1000 + pid,
                    name: name.clone(),
                })
                .collect())
        }

        fn details(&mut self, pids: &[i64]) -> Vec<ProcDetail> {
            let mut st = self.0.lock().unwrap();
            st.detail_reads.extend_from_slice(pids);
            pids.iter()
                .filter_map(|p| st.procs.iter().find(|d| d.pid == *p).cloned())
                .collect()
        }
    }

    fn engine() -> Engine {
        Engine::new(
            StoreConfig::default(),
            Box::new(FixedUsers(vec![(501, "alice".into())])),
        )
    }

    #[test]
    fn candidates_only_are_read_in_full_and_added_once() {
        let fake = Fake::default();
        fake.add(1, 0, "launchd", &["/sbin/launchd"]);
        fake.add(10, 1, "zsh", &["-zsh"]);
        fake.add(11, 10, "kcc", &["kcc", "copy_cred_cache", "/tmp/a.ccache"]);
        fake.add(12, 10, "ls", &["ls"]);
        let engine = engine();
        let mut snap = Snapshot::new(Box::new(fake.clone()));
        snap.scan(&engine);
        snap.scan(&engine);

        let rows = engine.store().select(&RowFilter::default());
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        assert_eq!((r.pid, r.parent, r.time), (11, 10, 1011));
        assert_eq!(r.username, "alice");
        assert_eq!(r.parent_path, "/bin/zsh");
        assert_eq!(r.parent_cmdline, "-zsh");
        assert_eq!(r.indicator, "credential_cache_copy");
        assert_eq!(r.source, crate::event::SourceKind::Snapshot);
        // The candidate and its parent were read, once; nothing else.
        assert_eq!(fake.0.lock().unwrap().detail_reads, vec![11, 10]);
        let st = engine.status().get(SourceKind::Snapshot).unwrap();
        assert_eq!((st.events_seen, st.rows_added), (1, 1));
    }

    #[test]
    fn as_a_source_it_scans_when_started_and_before_queries() {
        let fake = Fake::default();
        fake.add(11, 1, "kcc", &["kcc", "copy_cred_cache", "/tmp/a.ccache"]);
        let engine = engine();
        let mut source = SnapshotSource::new(Box::new(fake.clone()), Duration::ZERO);
        source.prepare(&engine);
        assert_eq!(engine.store().select(&RowFilter::default()).len(), 1);
        let stop = AtomicBool::new(false);
        // Interval zero: no scanning thread of its own.
        assert!(!source.needs_thread());
        source.run(&engine, &stop).unwrap();
        assert_eq!(
            engine.status().get(SourceKind::Snapshot).unwrap().state,
            State::Active
        );

        fake.add(12, 1, "kcc", &["kcc", "copy_cred_cache", "/tmp/b.ccache"]);
        std::thread::sleep(MIN_QUERY_SNAPSHOT_GAP + Duration::from_millis(200));
        engine.refresh_for_query();
        let pids: Vec<i64> = engine
            .store()
            .select(&RowFilter::default())
            .iter()
            .map(|r| r.pid)
            .collect();
        assert!(pids.contains(&12), "{pids:?}");
    }

    #[test]
    fn exited_candidates_are_counted_as_dropped() {
        let fake = Fake::default();
        fake.add(11, 1, "kcc", &["kcc", "list"]);
        fake.0.lock().unwrap().procs.clear();
        let engine = engine();
        Snapshot::new(Box::new(fake)).scan(&engine);
        let st = engine.status().get(SourceKind::Snapshot).unwrap();
        assert_eq!(st.dropped, 1);
    }

    #[test]
    fn a_cut_name_completes_from_the_executable_or_a_script_path() {
        let wanted = |n: &[u8]| n == b"kerberos-long-tool";
        let cut = &b"kerberos-long-t"[..];
        let exe = &b"/opt/bin/kerberos-long-tool"[..];
        assert!(completes_to_wanted(cut, &wanted, [exe]));
        let script = [&b"/bin/sh"[..], b"/tmp/kerberos-long-tool", b"x"];
        assert!(completes_to_wanted(cut, &wanted, script));
        // Only a longer name that starts with the cut one completes it.
        assert!(!completes_to_wanted(
            cut,
            &wanted,
            [&b"/bin/kerberos-long-tool-x"[..]]
        ));
        assert!(!completes_to_wanted(b"kerberos-long-x", &wanted, [exe]));
        assert!(!completes_to_wanted(
            cut,
            &wanted,
            [&b"kerberos-long-t"[..], b""]
        ));
    }

    #[test]
    fn the_macos_name_is_p_name_else_p_comm() {
        let mut name = [0u8; 32];
        let mut comm = [0u8; 16];
        comm[..3].copy_from_slice(b"kcc");
        assert_eq!(bsd_name(&name, &comm), (&b"kcc"[..], false));
        name[..5].copy_from_slice(b"klist");
        assert_eq!(bsd_name(&name, &comm), (&b"klist"[..], false));
        // A field filled to its last byte before the NUL may be cut.
        comm = *b"0123456789abcde\0";
        assert_eq!(bsd_name(&[0; 32], &comm), (&comm[..15], true));
        name = [b'n'; 32];
        name[31] = 0;
        assert_eq!(bsd_name(&name, &comm), (&name[..31], true));
        // No NUL at all: the whole field, never past it.
        assert_eq!(bsd_name(&[b'x'; 32], &comm).0.len(), 32);
    }

    #[test]
    fn the_real_process_table_lists_this_process() {
        use std::os::unix::ffi::OsStrExt;
        let mut table = system::SystemProcesses::new();
        let me = i64::from(std::process::id());
        let list = table.list(&|_| true).unwrap();
        let listed = list.iter().find(|p| p.pid == me).unwrap();
        let details = table.details(&[me]);
        assert_eq!(details.len(), 1);
        // The clock-step-proof start time agrees with sysinfo's.
        let mut sys = sysinfo::System::new().unwrap();
        let pid = sysinfo::Pid::from_u32(std::process::id());
        sys.refresh_processes(sysinfo::ProcessesToUpdate::Some(&[pid]), true);
        let sysinfo_me = sys.process(pid).unwrap();
        let sysinfo_start = i64::try_from(sysinfo_me.start_time()).unwrap();
        assert!((listed.start_time - sysinfo_start).abs() <= 1);
        assert!((details[0].start_time - listed.start_time).abs() <= 1);
        assert!(details[0].start_time > 1_600_000_000);
        assert_eq!(listed.name, sysinfo_me.name().as_bytes());
        assert!(!details[0].cmd.is_empty());
        assert!(details[0].exe.is_some());
        // Nothing is listed that the filter refuses.
        assert!(table.list(&|_| false).unwrap().is_empty());
    }

    /// A copy of a system program under a new name, running until dropped.
    #[cfg(target_os = "linux")]
    struct Running {
        child: std::process::Child,
        path: std::path::PathBuf,
        _dir: tempfile::TempDir,
    }

    #[cfg(target_os = "linux")]
    impl Running {
        /// `program` copied as `name` (or, with `script`, a `#!/bin/sh`
        /// script named `name`), blocked reading its stdin.
        fn start(name: &str, args: &[&str], script: bool) -> Running {
            use std::os::unix::fs::PermissionsExt;
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join(name);
            let mut cmd = if script {
                std::fs::write(&path, "#!/bin/sh\nread x\n").unwrap();
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
                std::process::Command::new(&path)
            } else {
                std::fs::copy("/bin/sh", &path).unwrap();
                let mut c = std::process::Command::new(&path);
                c.args(["-c", "read x"]);
                c
            };
            let child = cmd
                .args(args)
                .stdin(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            // Until it has exec'd, the child is still named like us.
            let pid = i64::from(child.id());
            let want = &name.as_bytes()[..name.len().min(15)];
            let comm = format!("/proc/{pid}/comm");
            for _ in 0..500 {
                let now = std::fs::read(&comm).unwrap_or_default();
                if now.strip_suffix(b"\n") == Some(want) {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            Running {
                child,
                path,
                _dir: dir,
            }
        }

        fn pid(&self) -> i64 {
            i64::from(self.child.id())
        }
    }

    #[cfg(target_os = "linux")]
    impl Drop for Running {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_running_tool_is_found_by_name_and_read_in_full() {
        use std::os::unix::ffi::OsStrExt;
        let marker = format!("/tmp/kca-snapshot-{}.ccache", std::process::id());
        let kcc = Running::start("kcc", &["copy_cred_cache", &marker], false);
        let mut table = system::SystemProcesses::new();
        let list = table.list(&crate::classify::is_tool_name).unwrap();
        let listed = list.iter().find(|p| p.pid == kcc.pid()).unwrap();
        assert_eq!(listed.name, b"kcc");
        let d = table.details(&[kcc.pid()]);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].exe.as_deref(), Some(kcc.path.as_os_str().as_bytes()));
        assert_eq!(d[0].cmd.last().unwrap(), marker.as_bytes());
        assert_eq!(d[0].ppid, i64::from(std::process::id()));

        // And the scan turns it into a row, once.
        let engine = engine();
        let mut snap = Snapshot::new(Box::new(system::SystemProcesses::new()));
        snap.scan(&engine);
        snap.scan(&engine);
        let rows: Vec<_> = engine
            .store()
            .select(&RowFilter::default())
            .into_iter()
            .filter(|r| r.pid == kcc.pid())
            .collect();
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(rows[0].path, kcc.path.to_str().unwrap());
        assert!(rows[0].cmdline.ends_with(&marker));
        assert_eq!(rows[0].source, crate::event::SourceKind::Snapshot);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_name_cut_at_15_bytes_is_completed_for_binaries_and_scripts() {
        let long = "kerberos-long-tool-name";
        let wanted = move |n: &[u8]| n == long.as_bytes();
        let binary = Running::start(long, &[], false);
        let script = Running::start(long, &[], true);
        let mut table = system::SystemProcesses::new();
        let list = table.list(&wanted).unwrap();
        for pid in [binary.pid(), script.pid()] {
            let p = list.iter().find(|p| p.pid == pid).unwrap();
            // Listed under the kernel's name, as the seen key needs.
            assert_eq!(p.name, &long.as_bytes()[..15]);
        }
        // Not a tool: the real filter does not take them.
        let tools = table.list(&crate::classify::is_tool_name).unwrap();
        assert!(!tools
            .iter()
            .any(|p| p.pid == binary.pid() || p.pid == script.pid()));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn kernel_threads_are_not_listed() {
        let mut table = system::SystemProcesses::new();
        let all = table.list(&|_| true).unwrap();
        let stat = std::fs::read("/proc/2/stat").unwrap_or_default();
        let kthreadd = crate::procfs::parse_stat(&stat);
        if !kthreadd.is_some_and(|s| s.is_kernel_thread(2)) {
            println!("SKIPPED: no kthreadd in this pid namespace");
            return;
        }
        assert!(!all.iter().any(|p| p.pid == 2));
        for p in &all {
            let stat = std::fs::read(format!("/proc/{}/stat", p.pid)).unwrap_or_default();
            if let Some(s) = crate::procfs::parse_stat(&stat) {
                assert!(!s.is_kernel_thread(p.pid), "{p:?}");
            }
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_vanished_candidate_is_skipped() {
        let kcc = Running::start("kcc", &[], false);
        let pid = kcc.pid();
        drop(kcc);
        let mut table = system::SystemProcesses::new();
        let list = table.list(&crate::classify::is_tool_name).unwrap();
        assert!(!list.iter().any(|p| p.pid == pid));
        assert!(table.details(&[pid]).is_empty());
    }
}
