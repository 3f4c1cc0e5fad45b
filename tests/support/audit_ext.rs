//! Shared by the tests that run the extension against the real kernel audit
//! subsystem: root check, the audit test lock, the audit state before and
//! after (compared flags and rules byte for byte, repaired if a test fails),
//! the extension in `--standalone`, and a harmless binary named kcc.
#![allow(dead_code)] // each test binary uses a different part

use super::standalone::{self, Finished, Running};
use kerberos_cache_access::sources::linux_audit::control::{self, AuditRule, StartError};
use kerberos_cache_access::sources::linux_audit::netlink::ControlSocket;
use netlink_packet_audit::StatusMessage;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Every test process that changes audit state takes this flock
/// (tests/linux_audit_session.rs too).
pub const LOCK_PATH: &str = "/tmp/kerberos_cache_access-audit-tests.lock";

/// Kernel audit state is global: one test at a time within a binary.
static AUDIT: Mutex<()> = Mutex::new(());

pub use super::fixtures::is_root;

/// The test lock: a mutex against the other tests of this binary, an flock
/// against other test processes.
pub struct AuditLock {
    _file: std::fs::File,
    _guard: MutexGuard<'static, ()>,
}

pub fn audit_lock() -> AuditLock {
    use std::os::fd::AsRawFd;
    let guard = AUDIT.lock().unwrap_or_else(|e| e.into_inner());
    let file = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(LOCK_PATH)
        .unwrap();
    // SAFETY: a valid open fd; LOCK_EX blocks until the other holder is done.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(rc, 0);
    AuditLock {
        _file: file,
        _guard: guard,
    }
}

/// What a restore must put back: the audit flags and the rule list, byte
/// for byte (the kernel's `lost` and `backlog` counters move by themselves).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditSnapshot {
    pub enabled: u32,
    pub failure: u32,
    pub pid: u32,
    pub rate_limit: u32,
    pub backlog_limit: u32,
    pub backlog_wait_time: u32,
    pub rules: Vec<AuditRule>,
}

impl AuditSnapshot {
    pub fn now() -> AuditSnapshot {
        AuditSnapshot::read().expect("reading the audit state")
    }

    pub fn read() -> Result<AuditSnapshot, StartError> {
        let st = control::read_state()?;
        Ok(AuditSnapshot {
            enabled: st.status.enabled,
            failure: st.status.failure,
            pid: st.status.pid,
            rate_limit: st.status.rate_limit,
            backlog_limit: st.status.backlog_limit,
            backlog_wait_time: st.status.backlog_wait_time,
            rules: st.rules,
        })
    }

    /// The rules tagged `key`.
    pub fn keyed(&self, key: &str) -> Vec<&AuditRule> {
        self.rules.iter().filter(|r| r.key() == Some(key)).collect()
    }

    /// Whether a live process (a real audit daemon) holds the audit pid.
    pub fn daemon_running(&self) -> bool {
        self.pid != 0 && Path::new(&format!("/proc/{}", self.pid)).exists()
    }
}

/// The audit state when the test began; checked by [`finish`], repaired on
/// drop if a test failed half-way (so it never leaks into other tests).
///
/// [`finish`]: AuditGuard::finish
pub struct AuditGuard {
    pub before: AuditSnapshot,
    checked: bool,
    _lock: AuditLock,
}

impl AuditGuard {
    /// None (test skipped, with a `SKIPPED:` line) when not root or audit
    /// is not available here; panics when reading the audit state fails
    /// otherwise.
    pub fn take(test: &str) -> Option<AuditGuard> {
        if !is_root() {
            let _ = test;
            super::fixtures::skip("needs root");
            return None;
        }
        match control::read_state() {
            Ok(_) => {}
            Err(StartError::Unavailable(why)) => {
                super::fixtures::skip(format_args!("audit netlink unavailable: {why}"));
                return None;
            }
            Err(e @ StartError::Failed(_)) => panic!("reading the audit state: {e}"),
        }
        let lock = audit_lock();
        Some(AuditGuard {
            before: AuditSnapshot::now(),
            checked: false,
            _lock: lock,
        })
    }

    /// Asserts the audit state is the one found (flags, rules byte for byte).
    pub fn finish(mut self) {
        self.checked = true;
        let after = AuditSnapshot::now();
        if after != self.before {
            repair(&self.before);
            panic!(
                "audit state not restored\nbefore: {:#?}\nafter:  {after:#?}",
                self.before
            );
        }
    }
}

impl Drop for AuditGuard {
    fn drop(&mut self) {
        // Unwinding from a failed assertion: put the kernel back anyway
        // (never a second panic here).
        if !self.checked && AuditSnapshot::read().is_ok_and(|now| now != self.before) {
            eprintln!("repairing the audit state after a failed test");
            repair(&self.before);
        }
    }
}

/// Best effort: rules and flags back as they were, and the audit pid given
/// back if this process holds it (a test's own audit session).
pub fn repair(before: &AuditSnapshot) {
    let Ok(mut ctl) = ControlSocket::open() else {
        return;
    };
    let Ok(now) = AuditSnapshot::read() else {
        return;
    };
    for rule in now.rules.iter().filter(|r| !before.rules.contains(r)) {
        let _ = ctl.del_rule(rule.raw());
    }
    let Ok(now) = AuditSnapshot::read() else {
        return;
    };
    if now.rules != before.rules {
        // Order matters for byte-for-byte equality: rebuild the list.
        for rule in &now.rules {
            let _ = ctl.del_rule(rule.raw());
        }
        for rule in &before.rules {
            let _ = ctl.add_rule(rule.raw());
        }
    }
    let mut s = StatusMessage::new();
    // enabled, backlog limit, backlog wait time.
    s.mask = 0x01 | 0x10 | 0x20;
    s.enabled = before.enabled;
    s.backlog_limit = before.backlog_limit;
    s.backlog_wait_time = before.backlog_wait_time;
    let _ = ctl.set_status(&s);
    if now.pid == std::process::id() {
        let mut s = StatusMessage::new();
        s.mask = 0x04;
        let _ = ctl.set_status(&s);
    }
}

/// The extension in `--standalone --source linux_audit`, with its rows
/// (stdout) and its log (stderr) collected.
pub struct Extension {
    pub child: Running,
    rows: Receiver<Value>,
    lines: Receiver<String>,
    stderr: Arc<Mutex<String>>,
}

impl Extension {
    /// Starts it with `state_dir` and waits until the audit source says
    /// what it does. None (skipped) when audit cannot run here.
    pub fn start(state_dir: &Path) -> Option<Extension> {
        let mut child = Running::spawn(
            standalone::source("linux_audit", state_dir)
                .env("RUST_LOG", "info")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped()),
        )
        // A failed test: SIGTERM, so that it restores what it changed.
        .term_on_drop(super::bounds::standalone_exit());
        let (row_tx, rows) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    let _ = row_tx.send(v);
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let (line_tx, lines) = mpsc::channel();
        let err = child.stderr.take().unwrap();
        let keep = Arc::clone(&stderr);
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                keep.lock().unwrap().push_str(&format!("{line}\n"));
                let _ = line_tx.send(line);
            }
        });
        let ext = Extension {
            child,
            rows,
            lines,
            stderr,
        };
        match ext.wait_log_any(
            &["source linux_audit:", "source linux_audit unavailable"],
            Duration::from_secs(15),
        ) {
            Some(line) if line.contains("unavailable") => {
                super::fixtures::skip(format_args!("audit cannot run here: {line}"));
                None
            }
            Some(_) => Some(ext),
            None => panic!("linux_audit never started; log:\n{}", ext.log()),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything it logged so far.
    pub fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits for a log line containing `needle` (logged since the last
    /// wait); false on timeout.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        self.wait_log_any(&[needle], timeout).is_some()
    }

    /// The first new log line containing any of `needles`.
    pub fn wait_log_any(&self, needles: &[&str], timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if needles.iter().any(|n| line.contains(n)) => return Some(line),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }

    /// Rows until `want` of them satisfy `pick`, or the timeout.
    pub fn collect(
        &self,
        want: usize,
        timeout: Duration,
        pick: impl Fn(&Value) -> bool,
    ) -> Vec<Value> {
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

    /// Whether a row for the kcc run with `marker` arrives within `timeout`.
    pub fn caught(&self, marker: &str, timeout: Duration) -> bool {
        !self
            .collect(1, timeout, |r| args_of(r).iter().any(|a| a == marker))
            .is_empty()
    }

    /// SIGTERM; asserts a clean exit within the shutdown bound and returns
    /// the log.
    pub fn stop(mut self) -> String {
        let (status, _) = self
            .child
            .signal_exit_within(libc::SIGTERM, super::bounds::standalone_exit());
        let Some(status) = status else {
            panic!("extension did not stop on SIGTERM; log:\n{}", self.log());
        };
        assert!(status.success(), "exit {status:?}; log:\n{}", self.log());
        // Let the reader thread take the last lines.
        std::thread::sleep(Duration::from_millis(50));
        self.log()
    }

    /// SIGKILL: no cleanup runs.
    pub fn kill9(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.log()
    }
}

pub fn args_of(row: &Value) -> Vec<String> {
    row["args"]
        .as_str()
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default()
}

/// A harmless binary under the name kcc (a copy of /bin/true), as Elastic's
/// red-team emulation does with /tmp/kcc.
pub struct Kcc {
    pub dir: tempfile::TempDir,
    pub path: PathBuf,
}

impl Kcc {
    pub fn new() -> Kcc {
        let dir = tempfile::tempdir().unwrap();
        let path = super::procs::copy_exe("/bin/true", &dir.path().join("kcc"));
        Kcc { dir, path }
    }

    /// Runs `kcc copy_cred_cache <marker>`; returns its pid.
    pub fn run(&self, marker: &str) -> u32 {
        self.run_args(&["copy_cred_cache", marker])
    }

    /// Runs kcc with `args` to its end; returns its pid.
    pub fn run_args(&self, args: &[&str]) -> u32 {
        let mut child = super::procs::spawn_retrying(Command::new(&self.path).args(args));
        let pid = child.id();
        assert!(child.wait().unwrap().success());
        pid
    }
}

/// A marker no other run on the host uses.
pub fn marker(what: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "kcc-test-{what}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs the extension binary (not `--standalone`) with `args` to its exit,
/// within the bound of runs that end by themselves.
pub fn run_bin(args: &[&str], state_dir: &Path) -> Finished {
    standalone::run_to_exit(
        standalone::bin(state_dir)
            .args(args)
            .env("RUST_LOG", "info"),
        super::bounds::RUN_LIMIT,
    )
}
