//! The process snapshot's cost: milliseconds per scan and per 1,000
//! processes when no process is a candidate (the common case: it runs
//! before each query, at most once a second).
//!
//! `cargo bench --bench snapshot [-- --procs N --scans N]`
//!
//! To reach at least `--procs` processes (default 1,000) the bench starts
//! idle `sleep` children and kills them at the end, also on a panic (a
//! guard) and, on Linux, when the bench itself dies (PR_SET_PDEATHSIG).
//! Side by side it measures the old listing (sysinfo's narrowest refresh,
//! which the snapshot used before) and `Snapshot::scan` as it is now.

use kerberos_cache_access::classify::is_tool_name;
use kerberos_cache_access::engine::Engine;
use kerberos_cache_access::sources::snapshot::{system::SystemProcesses, Snapshot};
use kerberos_cache_access::store::StoreConfig;
use kerberos_cache_access::users::FixedUsers;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Idle children, killed and reaped when dropped.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
        }
        for c in &mut self.0 {
            let _ = c.wait();
        }
    }
}

fn idle_child() -> std::io::Result<Child> {
    let mut cmd = Command::new("sleep");
    cmd.arg("3600")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: prctl is async-signal-safe and touches only the child.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    cmd.spawn()
}

/// Processes on the host (every pid the listing visits).
fn process_count() -> usize {
    if let Ok(dir) = std::fs::read_dir("/proc") {
        return dir
            .filter_map(Result::ok)
            .filter(|e| {
                e.file_name()
                    .to_str()
                    .is_some_and(|n| n.parse::<u32>().is_ok())
            })
            .count();
    }
    Command::new("ps")
        .args(["-A", "-o", "pid="])
        .output()
        .map(|o| {
            o.stdout
                .split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .count()
        })
        .unwrap_or(0)
}

/// The listing the snapshot used before: sysinfo, names only, then the
/// name filter. Returns the number of candidates.
fn sysinfo_list() -> usize {
    use sysinfo::{ProcessRefreshKind, ProcessesToUpdate, System};
    let Ok(mut sys) = System::new() else {
        return 0;
    };
    sys.refresh_processes_specifics(
        ProcessesToUpdate::All,
        true,
        ProcessRefreshKind::nothing().without_tasks(),
    );
    sys.processes()
        .values()
        .filter(|p| p.thread_kind().is_none())
        .filter(|p| {
            use std::os::unix::ffi::OsStrExt;
            is_tool_name(p.name().as_bytes())
        })
        .count()
}

fn arg(args: &[String], name: &str, default: usize) -> usize {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// CPU time of this thread (user + system): less swayed than wall time by
/// other work on a shared machine.
fn cpu_time() -> Duration {
    #[cfg(target_os = "linux")]
    let who = libc::RUSAGE_THREAD;
    #[cfg(not(target_os = "linux"))]
    let who = libc::RUSAGE_SELF;
    // SAFETY: getrusage writes one rusage to a valid pointer.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::getrusage(who, &mut ru) } != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| {
        Duration::new(
            u64::try_from(t.tv_sec).unwrap_or(0),
            u32::try_from(t.tv_usec).unwrap_or(0) * 1000,
        )
    };
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn measure(label: &str, scans: usize, procs: usize, mut f: impl FnMut()) {
    for _ in 0..3 {
        f();
    }
    let mut wall = Vec::with_capacity(scans);
    let cpu_start = cpu_time();
    for _ in 0..scans {
        let t = Instant::now();
        f();
        wall.push(t.elapsed());
    }
    let cpu = (cpu_time() - cpu_start).as_secs_f64() * 1e3 / scans as f64;
    wall.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let median = ms(wall[wall.len() / 2]);
    let per_k = |v: f64| v * 1000.0 / procs as f64;
    println!(
        "{label:<24} wall median {median:6.2} ms/scan (min {:6.2}), CPU {cpu:6.2} ms/scan \
         -> wall {:5.2}, CPU {:5.2} ms per 1,000 processes",
        ms(wall[0]),
        per_k(median),
        per_k(cpu),
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // `cargo bench` passes --bench; a plain run (`cargo test --benches`)
    // only checks that it builds and runs.
    let quick = !args.iter().any(|a| a == "--bench");
    let want = arg(&args, "--procs", if quick { 0 } else { 1000 });
    let scans = arg(&args, "--scans", if quick { 2 } else { 30 });

    let mut children = Children(Vec::new());
    let before = process_count();
    while before + children.0.len() < want {
        match idle_child() {
            Ok(c) => children.0.push(c),
            Err(e) => {
                eprintln!("cannot start more children ({e}); measuring with fewer");
                break;
            }
        }
    }
    // Let the children exec before they are counted and listed.
    std::thread::sleep(Duration::from_millis(300));
    let procs = process_count().max(1);
    println!(
        "{procs} processes ({} idle children started), {} candidate(s) by name",
        children.0.len(),
        sysinfo_list()
    );

    measure("before: sysinfo listing", scans, procs, || {
        std::hint::black_box(sysinfo_list());
    });

    let engine = Engine::new(
        StoreConfig::default(),
        Box::new(FixedUsers(vec![(0, "root".into())])),
    );
    let mut snapshot = Snapshot::new(Box::new(SystemProcesses::new()));
    measure("now: Snapshot::scan", scans, procs, || {
        snapshot.scan(&engine);
    });
    drop(children);
}
