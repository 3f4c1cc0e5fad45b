//! Elastic's red-team emulation, end to end on Linux: a harmless binary named
//! kcc runs `kcc copy_cred_cache` and exits at once; the extension
//! (`--standalone --source linux_audit`) must report it with the right pid,
//! uid, parent, cwd and args. Needs root; CI runs as root.
#![cfg(target_os = "linux")]

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_kerberos_cache_access");

/// Kernel audit state is global: one test at a time.
static AUDIT: Mutex<()> = Mutex::new(());

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// What a restore must put back: the audit flags and the rule list (the
/// kernel's `lost` and `backlog` counters move by themselves).
fn audit_state() -> String {
    use kerberos_cache_access::sources::linux_audit::control;
    match control::read_state() {
        Ok(st) => format!(
            "enabled={} failure={} pid={} rate_limit={} backlog_limit={} wait={} rules={:?}",
            st.status.enabled,
            st.status.failure,
            st.status.pid,
            st.status.rate_limit,
            st.status.backlog_limit,
            st.status.backlog_wait_time,
            st.rules
        ),
        Err(e) => format!("unreadable: {e}"),
    }
}

/// Serializes with every other test process that changes audit state
/// (tests/linux_audit_session.rs takes the same lock).
fn audit_lock() -> (std::sync::MutexGuard<'static, ()>, std::fs::File) {
    use std::os::fd::AsRawFd;
    let guard = AUDIT.lock().unwrap_or_else(|e| e.into_inner());
    let file = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open("/tmp/kerberos_cache_access-audit-tests.lock")
        .unwrap();
    // SAFETY: a valid open fd; LOCK_EX blocks until the other holder is done.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(rc, 0);
    (guard, file)
}

struct Extension {
    child: Child,
    /// Its own state directory (journal, audit record, locks).
    _state: tempfile::TempDir,
    rows: Receiver<Value>,
    stderr: std::sync::Arc<Mutex<String>>,
}

impl Extension {
    /// Starts the extension and waits until the audit source is active.
    /// None when audit cannot run here (the test is then skipped).
    // The child is waited for in stop(), or killed on the failure paths.
    #[allow(clippy::zombie_processes)]
    fn start() -> Option<Extension> {
        let state = tempfile::tempdir().unwrap();
        let mut child = Command::new(BIN)
            .args([
                "--standalone",
                "--source",
                "linux_audit",
                "--snapshot-interval",
                "0",
            ])
            .arg("--state-dir")
            .arg(state.path().join("state"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (row_tx, rows) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    let _ = row_tx.send(v);
                }
            }
        });
        let stderr = std::sync::Arc::new(Mutex::new(String::new()));
        let (line_tx, lines) = mpsc::channel();
        let err = child.stderr.take().unwrap();
        let keep = std::sync::Arc::clone(&stderr);
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                keep.lock().unwrap().push_str(&format!("{line}\n"));
                let _ = line_tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let Ok(line) = lines.recv_timeout(Duration::from_millis(100)) else {
                continue;
            };
            if line.contains("source linux_audit:") {
                return Some(Extension {
                    _state: state,
                    child,
                    rows,
                    stderr,
                });
            }
            if line.contains("source linux_audit unavailable") {
                eprintln!("SKIPPED: audit cannot run here: {line}");
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
        let _ = child.kill();
        panic!(
            "linux_audit never became active; stderr:\n{}",
            stderr.lock().unwrap()
        );
    }

    /// Rows until `want` of them satisfy `pick`, or the timeout.
    fn collect(&self, want: usize, timeout: Duration, pick: impl Fn(&Value) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        let mut got = Vec::new();
        while got.len() < want {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rows.recv_timeout(left) {
                Ok(v) if pick(&v) => got.push(v),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        got
    }

    fn stop(mut self) -> String {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                assert!(status.success(), "exit {status:?}");
                break;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("extension did not stop on SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let text = self.stderr.lock().unwrap().clone();
        text
    }
}

/// A harmless binary under the name kcc, as Elastic's RTA does with /tmp/kcc.
fn masquerade(dir: &Path) -> std::path::PathBuf {
    let kcc = dir.join("kcc");
    std::fs::copy("/bin/true", &kcc).unwrap();
    kcc
}

fn args_of(row: &Value) -> Vec<String> {
    serde_json::from_str(row["args"].as_str().unwrap()).unwrap()
}

/// What both tests need: root, the audit lock, the state to restore, the
/// running extension and a masquerading kcc. None (test skipped) when not
/// root or when audit cannot run here.
struct Setup {
    _lock: (std::sync::MutexGuard<'static, ()>, std::fs::File),
    before: String,
    ext: Extension,
    dir: tempfile::TempDir,
    kcc: std::path::PathBuf,
}

impl Setup {
    fn new() -> Option<Setup> {
        if !is_root() {
            eprintln!("SKIPPED: needs root");
            return None;
        }
        let lock = audit_lock();
        let before = audit_state();
        let ext = Extension::start()?;
        let dir = tempfile::tempdir().unwrap();
        let kcc = masquerade(dir.path());
        Some(Setup {
            _lock: lock,
            before,
            ext,
            dir,
            kcc,
        })
    }
}

#[test]
fn red_team_kcc_copy_cred_cache_is_caught_with_its_context() {
    let Some(Setup {
        _lock,
        before,
        ext,
        dir,
        kcc,
    }) = Setup::new()
    else {
        return;
    };
    let child = Command::new(&kcc)
        .arg("copy_cred_cache")
        .current_dir(dir.path())
        .status()
        .unwrap();
    assert!(child.success());
    // `status()` does not tell the pid; find the row by its path.
    let kcc_path = kcc.to_str().unwrap().to_string();
    let rows = ext.collect(1, Duration::from_secs(10), |r| {
        r["path"] == kcc_path.as_str()
    });
    let log = ext.stop();
    assert_eq!(
        rows.len(),
        1,
        "no row for {kcc_path}; extension log:\n{log}"
    );
    let row = &rows[0];
    assert_eq!(row["source"], "linux_audit");
    assert_eq!(row["name"], "kcc");
    assert_eq!(row["indicator"], "credential_cache_copy");
    assert_eq!(row["technique"], "T1003,T1558,T1558.003,T1558.005");
    assert_eq!(args_of(row), [kcc_path.as_str(), "copy_cred_cache"]);
    assert_eq!(row["uid"], 0);
    assert_eq!(row["euid"], 0);
    assert_eq!(row["username"], "root");
    assert_eq!(row["parent"], i64::from(std::process::id()));
    let me = std::env::current_exe().unwrap();
    assert_eq!(row["parent_path"], me.to_str().unwrap());
    let cwd = std::fs::canonicalize(dir.path()).unwrap();
    assert_eq!(row["cwd"], cwd.to_str().unwrap());
    assert!(row["pid"].as_i64().unwrap() > 0);
    assert_eq!(audit_state(), before, "audit state not restored");
}

#[test]
fn one_hundred_runs_give_one_hundred_rows() {
    let Some(Setup {
        _lock,
        before,
        ext,
        dir: _dir,
        kcc,
    }) = Setup::new()
    else {
        return;
    };
    let mut pids = Vec::new();
    for i in 0..100 {
        let mut c = Command::new(&kcc)
            .args(["copy_cred_cache", &format!("run-{i}")])
            .spawn()
            .unwrap();
        pids.push(i64::from(c.id()));
        c.wait().unwrap();
    }
    // Other processes on the host may run a kcc too: only ours count.
    let kcc_path = kcc.to_str().unwrap().to_string();
    let rows = ext.collect(100, Duration::from_secs(20), |r| {
        r["path"] == kcc_path.as_str() && r["indicator"] == "credential_cache_copy"
    });
    let log = ext.stop();
    assert_eq!(rows.len(), 100, "extension log:\n{log}");
    let mut got: Vec<i64> = rows.iter().map(|r| r["pid"].as_i64().unwrap()).collect();
    got.sort_unstable();
    pids.sort_unstable();
    assert_eq!(got, pids);
    let mut eids: Vec<&str> = rows.iter().map(|r| r["eid"].as_str().unwrap()).collect();
    eids.sort_unstable();
    eids.dedup();
    assert_eq!(eids.len(), 100);
    assert_eq!(audit_state(), before, "audit state not restored");
}
