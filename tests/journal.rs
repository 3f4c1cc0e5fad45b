//! The row journal against the real binary: kill -9 at random points while
//! kcc runs are being recorded, and restarts on the same state directory;
//! and a second instance that takes the journal over when the first exits.
//!
//! The extension runs under the osqueryd double with `--source
//! proc_connector` only (no snapshot, so a row after a restart can only come
//! from the journal). The kcc runs are copies of /bin/sh named `kcc`, run as
//! `kcc copy_cred_cache <marker>` (the shell runs a script of that name that
//! sleeps 1 s); only our markers are looked at. Needs root (the proc
//! connector does); prints SKIPPED otherwise.
#![cfg(target_os = "linux")]

mod support;

use kerberos_cache_access::osquery::client::PluginRows;
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::procs::wait_until;
use support::standalone::{self, Running};
use support::{request, socket_dir, spawn_extension, Extension, FakeOsqueryd, LaunchOptions};

const NAME: &str = "kerberos_cache_access";
const TABLE: &str = "kerberos_cache_access";
const KILLS: usize = 50;

/// A small xorshift, seeded from the clock (printed, to replay a failure).
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        let seed = std::env::var("JOURNAL_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    | 1
            });
        eprintln!("journal test seed: {seed} (JOURNAL_TEST_SEED to replay)");
        Rng(seed)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// A directory with `kcc` (a copy of sh) and the script `copy_cred_cache`
/// it runs, and the marker prefix of this test run.
struct KccKit {
    dir: tempfile::TempDir,
    prefix: String,
}

impl KccKit {
    fn new(tag: &str) -> KccKit {
        let dir = tempfile::tempdir().unwrap();
        support::procs::copy_exe("/bin/sh", &dir.path().join("kcc"));
        std::fs::write(dir.path().join("copy_cred_cache"), "sleep 1\n").unwrap();
        let nonce = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        KccKit {
            dir,
            prefix: format!("jt{tag}{}x{nonce:x}m", std::process::id()),
        }
    }

    /// Starts `kcc copy_cred_cache <marker>`.
    fn run(&self, n: u64) -> (String, Child) {
        let marker = format!("{}{n}", self.prefix);
        let child = Command::new(self.dir.path().join("kcc"))
            .arg0("kcc")
            .args(["copy_cred_cache", &marker])
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        (marker, child)
    }

    /// Our marker in a row's command line, if any.
    fn marker_of(&self, row: &BTreeMap<String, String>) -> Option<String> {
        let cmdline = row.get("cmdline")?;
        let last = cmdline.rsplit(' ').next()?;
        (last.starts_with(&self.prefix) && cmdline.starts_with("kcc copy_cred_cache "))
            .then(|| last.to_string())
    }
}

/// Starts a kcc run every 100 ms until dropped.
struct Launcher {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<u64>>,
}

impl Launcher {
    fn start(kit: Arc<KccKit>) -> Launcher {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut children: Vec<Child> = Vec::new();
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    children.push(kit.run(n).1);
                    n += 1;
                    children.retain_mut(|c| !matches!(c.try_wait(), Ok(Some(_))));
                    std::thread::sleep(Duration::from_millis(100));
                }
                for mut c in children {
                    let _ = c.kill();
                    let _ = c.wait();
                }
                n
            })
        };
        Launcher {
            stop,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for Launcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn launch(state: &Path) -> LaunchOptions {
    LaunchOptions {
        verbose: true,
        timeout: 3,
        interval: 1,
        extra: [
            "--source",
            "proc_connector",
            "--state-dir",
            state.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
    }
}

/// Every row of the table, read as osqueryd reads it.
fn rows(fake: &FakeOsqueryd, uuid: i64) -> Option<PluginRows> {
    let (status, rows) = fake
        .ext_call(
            uuid,
            "table",
            TABLE,
            request(&[("action", "generate"), ("context", "{}")]),
        )
        .ok()?;
    (status.code == 0).then_some(rows)
}

/// Our rows by marker; panics on a marker that appears twice.
fn by_marker(kit: &KccKit, rows: &PluginRows) -> HashMap<String, BTreeMap<String, String>> {
    let mut out = HashMap::new();
    for row in rows {
        if let Some(m) = kit.marker_of(row) {
            if let Some(old) = out.insert(m.clone(), row.clone()) {
                panic!("marker {m} twice:\n{old:?}\n{row:?}");
            }
        }
    }
    out
}

/// Waits for the extension to register and listen; `None` if it did not
/// by `deadline`.
fn registered(fake: &FakeOsqueryd, deadline: Instant) -> Option<i64> {
    let left = deadline.checked_duration_since(Instant::now())?;
    let reg = fake.wait_for(NAME, left)?;
    let left = deadline.checked_duration_since(Instant::now())?;
    fake.wait_ext_socket(reg.uuid, left).then_some(reg.uuid)
}

/// Kills the extension with SIGKILL and makes the double forget it, as
/// osqueryd does after a failed health check.
fn kill9(fake: &FakeOsqueryd, ext: &mut Extension) {
    let _ = ext.child.kill();
    let _ = ext.child.wait();
    for r in fake.registrations() {
        if r.info.name == NAME {
            fake.forget(r.uuid);
        }
    }
}

struct Seen {
    row: BTreeMap<String, String>,
    first_seen: Instant,
    /// How long before the kill that ended its incarnation it was seen.
    before_kill: Option<Duration>,
}

#[test]
fn kill_9_at_random_points_loses_no_recorded_row() {
    // The proc connector needs root.
    if !support::fixtures::root_or_skip() {
        return;
    }
    let started = Instant::now();
    let mut rng = Rng::new();
    let sock_dir = socket_dir();
    let sock = sock_dir.path().join("osquery.em");
    let fake = FakeOsqueryd::start(&sock);
    let state_tmp = tempfile::tempdir().unwrap();
    let state = state_tmp.path().join("state");
    let kit = Arc::new(KccKit::new("k"));
    let launcher = Launcher::start(Arc::clone(&kit));

    let mut seen: HashMap<String, Seen> = HashMap::new();
    let mut checked_after_restart = 0usize;
    let mut old_enough_checked = 0usize;
    let mut incarnations_with_rows = 0usize;
    for cycle in 0..=KILLS {
        let last = cycle == KILLS;
        let mut ext = spawn_extension(&sock, &launch(&state));
        let spawned = Instant::now();
        // Anywhere from during start-up (replay, registration) to 2 s in.
        let kill_at = spawned + Duration::from_millis(20 + rng.below(2000));
        let mut uuid = None;
        let mut restore_checked = false;
        loop {
            let now = Instant::now();
            if !last && now >= kill_at {
                break;
            }
            // The last cycle waits for rows it can read: not for ever.
            assert!(
                now < spawned + support::bounds::RUN_LIMIT,
                "cycle {cycle}: no rows read within {:?}; stderr:\n{}",
                support::bounds::RUN_LIMIT,
                ext.stderr()
            );
            let Some(id) = uuid else {
                let until = if last {
                    now + Duration::from_secs(10)
                } else {
                    kill_at.min(now + Duration::from_millis(20))
                };
                uuid = registered(&fake, until);
                if last && uuid.is_none() {
                    panic!("the last start did not register:\n{}", ext.stderr());
                }
                continue;
            };
            let Some(rows) = rows(&fake, id) else {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            };
            let now = Instant::now();
            let ours = by_marker(&kit, &rows);
            if !restore_checked {
                // The first read after a start: every row any earlier
                // incarnation showed is back, byte for byte (same eid).
                for (marker, s) in &seen {
                    let Some(row) = ours.get(marker) else {
                        panic!(
                            "cycle {cycle}: {marker} (seen {:?} before its kill) is gone \
                             after the restart; stderr:\n{}",
                            s.before_kill,
                            ext.stderr()
                        );
                    };
                    assert_eq!(row, &s.row, "cycle {cycle}: {marker} changed");
                    checked_after_restart += 1;
                    if s.before_kill.is_some_and(|d| d > Duration::from_secs(1)) {
                        old_enough_checked += 1;
                    }
                }
                restore_checked = true;
            }
            for (marker, row) in ours {
                match seen.get(&marker) {
                    Some(s) => assert_eq!(row, s.row, "{marker} changed"),
                    None => {
                        seen.insert(
                            marker,
                            Seen {
                                row,
                                first_seen: now,
                                before_kill: None,
                            },
                        );
                    }
                }
            }
            if last {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if last {
            ext.signal("TERM");
            let status = ext.wait_exit(support::bounds::osquery_exit());
            assert!(
                status.is_some_and(|s| s.success()),
                "{status:?}\n{}",
                ext.stderr()
            );
            break;
        }
        kill9(&fake, &mut ext);
        let killed = Instant::now();
        let mut new_rows = false;
        for s in seen.values_mut().filter(|s| s.before_kill.is_none()) {
            s.before_kill = Some(killed - s.first_seen);
            new_rows = true;
        }
        incarnations_with_rows += usize::from(new_rows);
    }
    let launched = launcher.finish();

    // kill -9 never leaves more than a torn tail: nothing was moved aside.
    let names: Vec<String> = std::fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names.iter().any(|n| n.contains(".corrupt-")),
        "a journal was moved aside: {names:?}"
    );
    eprintln!(
        "{KILLS} kills in {:.1?}: {launched} kcc runs, {} rows seen ({} incarnations \
         recorded rows), {checked_after_restart} checks after restarts, \
         {old_enough_checked} of rows seen > 1 s before their kill",
        started.elapsed(),
        seen.len(),
        incarnations_with_rows
    );
    // The property was really exercised.
    assert!(old_enough_checked >= 20, "only {old_enough_checked}");
}

/// Reads the standalone's stdout (one JSON row per line) in the background.
fn collect_stdout(child: &mut Child) -> Arc<Mutex<String>> {
    let out = Arc::new(Mutex::new(String::new()));
    let mut stdout = child.stdout.take().unwrap();
    let sink = Arc::clone(&out);
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    out
}

fn stderr_of(path: &PathBuf) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn a_second_instance_keeps_rows_in_memory_then_takes_the_journal_over() {
    // The proc connector needs root.
    if !support::fixtures::root_or_skip() {
        return;
    }
    let sock_dir = socket_dir();
    let sock = sock_dir.path().join("osquery.em");
    let fake = FakeOsqueryd::start(&sock);
    let state_tmp = tempfile::tempdir().unwrap();
    let state = state_tmp.path().join("state");
    let kit = KccKit::new("t");

    // The first instance, under osqueryd, records a1.
    let mut first = spawn_extension(&sock, &launch(&state));
    let uuid = registered(&fake, Instant::now() + Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no registration:\n{}", first.stderr()));
    let run_and_wait = |n: u64, seen: &dyn Fn(&str) -> bool| {
        let (marker, mut child) = kit.run(n);
        let ok = wait_until(Duration::from_secs(5), || seen(&marker));
        let _ = child.kill();
        let _ = child.wait();
        assert!(ok, "{marker} was not recorded");
        marker
    };
    let in_first = |m: &str| rows(&fake, uuid).is_some_and(|r| by_marker(&kit, &r).contains_key(m));
    let a1 = run_and_wait(1, &in_first);

    // A second instance on the same state directory: in memory, and says so.
    let err_path = state_tmp.path().join("second.err");
    let mut second = Running::spawn(
        standalone::command(&state)
            .args(["--verbose", "--source", "proc_connector"])
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&err_path).unwrap()),
    );
    let printed = collect_stdout(&mut second);
    assert!(
        wait_until(Duration::from_secs(5), || stderr_of(&err_path)
            .contains("in use by another instance")),
        "{}",
        stderr_of(&err_path)
    );
    let in_second = |m: &str| printed.lock().unwrap().contains(m);
    // The proc connector is ready once it says so.
    assert!(wait_until(Duration::from_secs(5), || stderr_of(&err_path)
        .contains("proc_connector")));
    let b1 = run_and_wait(2, &|m| in_second(m) && in_first(m));

    // The first exits; the second takes the journal over.
    first.signal("TERM");
    assert!(first
        .wait_exit(support::bounds::osquery_exit())
        .is_some_and(|s| s.success()));
    assert!(
        wait_until(Duration::from_secs(5), || stderr_of(&err_path)
            .contains("taken over")),
        "{}",
        stderr_of(&err_path)
    );
    let b2 = run_and_wait(3, &in_second);
    // Written before printed: a kill -9 right away loses nothing.
    let _ = second.kill();
    let _ = second.wait();
    for r in fake.registrations() {
        fake.forget(r.uuid);
    }

    let mut third = spawn_extension(&sock, &launch(&state));
    let uuid = registered(&fake, Instant::now() + Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no registration:\n{}", third.stderr()));
    let all = rows(&fake, uuid).expect("generate");
    let markers: Vec<String> = all.iter().filter_map(|r| kit.marker_of(r)).collect();
    for m in [&a1, &b2] {
        assert_eq!(
            markers.iter().filter(|x| x == &m).count(),
            1,
            "{m} in {markers:?}"
        );
    }
    // b1 was recorded by both instances: it is there (the proc connector's
    // eid carries a wall time each instance computes, so it may be there
    // twice).
    assert!(markers.contains(&b1), "{b1} in {markers:?}");
    third.signal("TERM");
    assert!(third.wait_exit(support::bounds::osquery_exit()).is_some());
}
