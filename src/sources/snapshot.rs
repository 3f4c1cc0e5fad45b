//! The live process snapshot: finds Kerberos tools that are running now.
//!
//! It cannot see a process that lives a millisecond (the audit sources do),
//! but it needs no privileges or kernel support and catches long-lived ones,
//! such as a `kcc` blocked on a prompt, and everything running before we
//! started.
//!
//! It is kept cheap: the full process list is read with names only, and full
//! details (argv, exe, cwd, ids, parent) are read only for candidates, whose
//! name is a Kerberos tool. A process image is examined once: it is
//! remembered by (pid, start time, name) until it exits.

use crate::classify;
use crate::engine::Engine;
use crate::event::{ExecEvent, SourceKind};
use crate::status::State;
use std::collections::HashSet;

/// One entry of the cheap process listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcBrief {
    pub pid: i64,
    /// Process start time, unix seconds.
    pub start_time: i64,
    /// The short name (comm on Linux, at most 15 bytes).
    pub name: Vec<u8>,
}

/// Full details of one process.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcDetail {
    pub pid: i64,
    pub ppid: i64,
    pub start_time: i64,
    pub exe: Option<Vec<u8>>,
    pub cmd: Vec<Vec<u8>>,
    pub cwd: Option<Vec<u8>>,
    pub uid: Option<i64>,
    pub euid: Option<i64>,
    pub gid: Option<i64>,
    pub egid: Option<i64>,
    pub auid: Option<i64>,
}

/// The platform edge: how processes are listed and read.
pub trait ProcessTable: Send {
    /// Every process (not threads, not kernel threads), with names only.
    fn list(&mut self) -> anyhow::Result<Vec<ProcBrief>>;
    /// Details of the given pids; pids that have exited are left out.
    fn details(&mut self, pids: &[i64]) -> Vec<ProcDetail>;
}

pub struct Snapshot {
    table: Box<dyn ProcessTable>,
    /// Process images already examined, pruned to live ones on every scan.
    seen: HashSet<(i64, i64, Vec<u8>)>,
}

impl Snapshot {
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
        let list = match self.table.list() {
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
            if !self.seen.contains(&key) && classify::is_tool_name(&key.2) {
                candidates.push(key.0);
            }
            live.insert(key);
        }
        // Forget processes that are gone; remember everything live, so each
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

/// The real process table, through sysinfo.
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

    /// sysinfo with a fresh `System` per scan: a long-lived one keeps the old
    /// name of a process that exec'd in place (sh → exec kcc).
    #[derive(Default)]
    pub struct SystemProcesses {
        system: Option<System>,
        /// A start time that does not move when the wall clock is stepped:
        /// sysinfo derives it from the boot time the kernel reports now,
        /// which shifts with every clock step, and the start time is part of
        /// the row's time and id. On Linux we use the process's start ticks
        /// and the boot time read once.
        boot: Option<start::Boot>,
    }

    impl SystemProcesses {
        pub fn new() -> SystemProcesses {
            SystemProcesses {
                system: None,
                boot: start::Boot::read(),
            }
        }
    }

    fn stable_start(boot: Option<&start::Boot>, pid: i64, sysinfo_start: i64) -> i64 {
        boot.and_then(|b| b.start_of(pid)).unwrap_or(sysinfo_start)
    }

    #[cfg(not(target_os = "linux"))]
    mod start {
        // macOS reports a start time that does not depend on the clock.
        pub struct Boot;

        impl Boot {
            pub fn read() -> Option<Boot> {
                None
            }

            pub fn start_of(&self, _pid: i64) -> Option<i64> {
                None
            }
        }
    }

    #[cfg(target_os = "linux")]
    use crate::procfs as start;

    impl ProcessTable for SystemProcesses {
        fn list(&mut self) -> anyhow::Result<Vec<ProcBrief>> {
            let mut sys = System::new()?;
            sys.refresh_processes_specifics(
                ProcessesToUpdate::All,
                true,
                ProcessRefreshKind::nothing().without_tasks(),
            );
            let list = sys
                .processes()
                .values()
                // Threads and kernel threads have a kind; processes do not.
                .filter(|p| p.thread_kind().is_none())
                .map(|p| ProcBrief {
                    pid: i64::from(p.pid().as_u32()),
                    start_time: to_i64(p.start_time()),
                    name: bytes(p.name()),
                })
                .collect();
            self.system = Some(sys);
            Ok(list)
        }

        fn details(&mut self, pids: &[i64]) -> Vec<ProcDetail> {
            let boot = self.boot.as_ref();
            let Some(sys) = self.system.as_mut() else {
                return Vec::new();
            };
            let wanted: Vec<Pid> = pids
                .iter()
                .filter_map(|p| u32::try_from(*p).ok())
                .map(Pid::from_u32)
                .collect();
            if wanted.is_empty() {
                return Vec::new();
            }
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
            wanted
                .iter()
                .filter_map(|pid| sys.process(*pid))
                .map(|p| {
                    let pid = i64::from(p.pid().as_u32());
                    ProcDetail {
                        pid,
                        ppid: p.parent().map_or(0, |pp| i64::from(pp.as_u32())),
                        start_time: stable_start(boot, pid, to_i64(p.start_time())),
                        exe: p.exe().map(|e| bytes(e.as_os_str())),
                        cmd: p.cmd().iter().map(|a| bytes(a)).collect(),
                        cwd: p.cwd().map(|c| bytes(c.as_os_str())),
                        uid: p.user_id().map(|u| i64::from(**u)),
                        euid: p.effective_user_id().map(|u| i64::from(**u)),
                        gid: p.group_id().map(|g| i64::from(*g)),
                        egid: p.effective_group_id().map(|g| i64::from(*g)),
                        auid: login_uid(pid),
                    }
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
        fn list(&mut self) -> anyhow::Result<Vec<ProcBrief>> {
            Ok(self
                .0
                .lock()
                .unwrap()
                .names
                .iter()
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
        assert_eq!(r.source, "snapshot");
        // The candidate and its parent were read, once; nothing else.
        assert_eq!(fake.0.lock().unwrap().detail_reads, vec![11, 10]);
        let st = engine.status().get(SourceKind::Snapshot).unwrap();
        assert_eq!((st.events_seen, st.rows_added), (1, 1));
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
    fn the_real_process_table_lists_this_process() {
        let mut table = system::SystemProcesses::new();
        let list = table.list().unwrap();
        let me = i64::from(std::process::id());
        assert!(list.iter().any(|p| p.pid == me));
        let details = table.details(&[me]);
        assert_eq!(details.len(), 1);
        // The clock-step-proof start time agrees with sysinfo's.
        let listed = list.iter().find(|p| p.pid == me).unwrap().start_time;
        assert!((details[0].start_time - listed).abs() <= 1);
        assert!(details[0].start_time > 1_600_000_000);
        assert!(!details[0].cmd.is_empty());
        assert!(details[0].exe.is_some());
    }
}
