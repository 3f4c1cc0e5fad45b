//! The audit session against the real kernel (root only; skipped otherwise).
//!
//! These tests change global kernel audit state (enabled flag, audit pid,
//! backlog, rules). They run one at a time — a process-wide mutex, plus an
//! flock on `LOCK_PATH` against other test processes — and each checks that
//! the configuration afterwards is exactly the one before; if not, it
//! repairs what it can and fails (support::audit_ext::AuditGuard).
#![cfg(target_os = "linux")]

mod support;
use support::audit_ext::{AuditGuard, AuditSnapshot, Kcc};
use support::fixtures::skip;

use kerberos_cache_access::sources::linux_audit::control::{
    exec_rule, AuditSession, Mode, RecvError, SessionOptions, MACHINE_ARCHES,
};
use kerberos_cache_access::sources::linux_audit::netlink::{ControlSocket, RECV_BUF_LEN};
use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

const OUR_KEY: &str = "kerberos_cache_access";
const HELPER_ENV: &str = "KCC_AUDIT_TEST_HELPER";
const HELPER_READY: &str = "KCC_AUDIT_HELPER_READY";
const HELPER_FAILED: &str = "KCC_AUDIT_HELPER_FAILED";
const HELPER_DONE: &str = "KCC_AUDIT_HELPER_DONE";
const AUDIT_SYSCALL: u16 = 1300;
const AUDIT_EXECVE: u16 = 1309;
/// "arg with space", as the kernel hex-encodes an argument with a space.
const ARG_WITH_SPACE_HEX: &str = "6172672077697468207370616365";

/// The `<sec>.<msec>:<serial>` of a record.
fn audit_id(text: &str) -> Option<&str> {
    let rest = text.strip_prefix("audit(")?;
    Some(&rest[..rest.find(')')?])
}

/// Reads records until an EXECVE mentioning copy_cred_cache and a SYSCALL
/// of `pid` with the same audit id have arrived.
fn await_exec(session: &mut AuditSession, pid: u32) -> Result<String, String> {
    let mut buf = vec![0; RECV_BUF_LEN];
    let pid_field = format!(" pid={pid} ");
    let mut execve = std::collections::HashMap::new();
    let mut syscall = HashSet::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        match session.recv(&mut buf, Duration::from_millis(200)) {
            Ok(Some((msg_type, text))) => {
                let text = String::from_utf8_lossy(text);
                let Some(id) = audit_id(&text) else {
                    continue;
                };
                if msg_type == AUDIT_EXECVE && text.contains("copy_cred_cache") {
                    execve.insert(id.to_string(), text.to_string());
                }
                if msg_type == AUDIT_SYSCALL && text.contains(&pid_field) {
                    syscall.insert(id.to_string());
                }
                if let Some(record) = syscall.iter().find_map(|id| execve.get(id)) {
                    return Ok(record.clone());
                }
            }
            Ok(None) => {}
            Err(RecvError::Overrun) => eprintln!("overrun while waiting for the exec"),
            Err(e) => return Err(e.to_string()),
        }
    }
    Err(format!(
        "no EXECVE+SYSCALL pair for pid {pid}: {} matching EXECVE, {} matching SYSCALL",
        execve.len(),
        syscall.len()
    ))
}

#[test]
fn start_records_exec_and_restore_puts_everything_back() {
    let Some(fx) = AuditGuard::take("start_records_exec_and_restore_puts_everything_back") else {
        return;
    };
    let mut session = AuditSession::start(&SessionOptions::default()).expect("start");
    let desc = session.describe();
    println!("{desc}");
    let during = AuditSnapshot::now();
    if fx.before.daemon_running() {
        assert_eq!(session.mode(), Mode::Multicast, "{desc}");
        assert_eq!(during.pid, fx.before.pid);
    } else {
        assert_eq!(session.mode(), Mode::Receiver, "{desc}");
        assert!(desc.starts_with("audit receiver"), "{desc}");
        assert_eq!(during.pid, std::process::id());
        assert_eq!(during.enabled, 1);
        assert!(during.backlog_limit >= 8192);
        assert_eq!(during.backlog_wait_time, 0);
    }
    let uncovered = MACHINE_ARCHES
        .iter()
        .filter(|a| !fx.before.rules.iter().any(|r| r.covers_exec(a)))
        .count();
    let added = during.keyed(OUR_KEY).len() - fx.before.keyed(OUR_KEY).len();
    assert_eq!(added, uncovered, "{during:#?}");

    let kcc = Kcc::new();
    let pid = kcc.run_args(&["copy_cred_cache", "arg with space"]);
    let execve = await_exec(&mut session, pid).unwrap_or_else(|e| panic!("{e}\n{desc}"));
    assert!(execve.contains(ARG_WITH_SPACE_HEX), "{execve}");

    let status = session.status().expect("status");
    assert_eq!(status.enabled, during.enabled);
    session.restore().expect("restore");
    fx.finish();
}

#[test]
fn drop_without_restore_also_restores() {
    let Some(fx) = AuditGuard::take("drop_without_restore_also_restores") else {
        return;
    };
    let session = AuditSession::start(&SessionOptions::default()).expect("start");
    let during = AuditSnapshot::now();
    assert_ne!(
        during, fx.before,
        "start changed nothing, so the test proves nothing"
    );
    drop(session);
    fx.finish();
}

#[test]
fn existing_equivalent_rule_is_used_and_left_in_place() {
    let Some(fx) = AuditGuard::take("existing_equivalent_rule_is_used_and_left_in_place") else {
        return;
    };
    let native = &MACHINE_ARCHES[0];
    let preexisting = exec_rule(native, "kcc_test_preexisting");
    let mut ctl = ControlSocket::open().expect("control socket");
    ctl.add_rule(&preexisting)
        .expect("adding the pre-existing rule");
    let with_rule = AuditSnapshot::now();

    let session = AuditSession::start(&SessionOptions::default()).expect("start");
    let desc = session.describe();
    println!("{desc}");
    let during = AuditSnapshot::now();
    assert!(
        during.keyed(OUR_KEY).iter().all(|r| !r.covers_exec(native)),
        "added a {} rule although one existed: {during:#?}",
        native.name
    );
    assert!(
        desc.contains(&format!("existing execve rule covers {}", native.name)),
        "{desc}"
    );
    for compat in &MACHINE_ARCHES[1..] {
        if !fx.before.rules.iter().any(|r| r.covers_exec(compat)) {
            assert!(
                during.keyed(OUR_KEY).iter().any(|r| r.covers_exec(compat)),
                "no {} rule added: {during:#?}",
                compat.name
            );
        }
    }
    session.restore().expect("restore");

    assert_eq!(
        AuditSnapshot::now(),
        with_rule,
        "the pre-existing rule must stay"
    );
    ctl.del_rule(&preexisting)
        .expect("removing the pre-existing rule");
    fx.finish();
}

/// A child process (this test binary, running `audit_pid_holder_helper`)
/// that holds the audit pid as the receiver until its stdin closes.
struct Helper {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

impl Helper {
    fn spawn() -> Helper {
        let exe = std::env::current_exe().expect("current_exe");
        let mut child = Command::new(exe)
            .args([
                "audit_pid_holder_helper",
                "--ignored",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(HELPER_ENV, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawning the helper");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("helper stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut helper = Helper {
            child,
            stdin,
            lines,
        };
        let ready = helper.wait_line(&[HELPER_READY, HELPER_FAILED]);
        assert!(ready.starts_with(HELPER_READY), "helper: {ready}");
        assert!(ready.ends_with("Receiver"), "helper: {ready}");
        helper
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn wait_line(&mut self, prefixes: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                // The harness may print "test name ... " on the same line.
                Ok(line) => {
                    if let Some(at) = prefixes.iter().find_map(|p| line.find(p)) {
                        return line[at..].to_string();
                    }
                }
                Err(e) => panic!("helper said none of {prefixes:?}: {e}"),
            }
        }
    }

    /// Tells the helper to restore and exit; checks it did.
    fn finish(mut self) {
        self.stdin = None;
        self.wait_line(&[HELPER_DONE]);
        let status = self.child.wait().expect("waiting for the helper");
        assert!(status.success(), "helper exited with {status}");
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        self.stdin = None;
        if support::wait_exit(&mut self.child, Duration::from_secs(10)).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Not a test on its own: the body of the helper process. Holds the audit
/// pid (Receiver mode), reads and discards records so the kernel never
/// blocks on it, and restores when its stdin closes. Ignored, so that a plain
/// run does not count it as a passing test.
#[test]
#[ignore = "the body of a helper process that Helper::spawn runs"]
fn audit_pid_holder_helper() {
    if std::env::var_os(HELPER_ENV).is_none() {
        return;
    }
    let mut session = match AuditSession::start(&SessionOptions::default()) {
        Ok(s) => s,
        Err(e) => {
            println!("{HELPER_FAILED} {e}");
            return;
        }
    };
    println!("{HELPER_READY} {:?}", session.mode());
    let _ = std::io::stdout().flush();
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
            stop.store(true, Ordering::Relaxed);
        });
    }
    let mut buf = vec![0; RECV_BUF_LEN];
    let deadline = Instant::now() + Duration::from_secs(120);
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        let _ = session.recv(&mut buf, Duration::from_millis(100));
    }
    session.restore().expect("helper restore");
    println!("{HELPER_DONE}");
}

#[test]
fn multicast_beside_another_audit_receiver() {
    let Some(fx) = AuditGuard::take("multicast_beside_another_audit_receiver") else {
        return;
    };
    if fx.before.daemon_running() {
        skip("an audit daemon already runs; the first test covers multicast");
        return fx.finish();
    }
    let helper = Helper::spawn();
    let with_helper = AuditSnapshot::now();
    assert_eq!(with_helper.pid, helper.pid());

    let mut session = AuditSession::start(&SessionOptions::default()).expect("start");
    let desc = session.describe();
    println!("{desc}");
    assert_eq!(session.mode(), Mode::Multicast, "{desc}");
    assert!(
        desc.starts_with(&format!(
            "reading audit multicast beside the audit daemon (pid {})",
            helper.pid()
        )),
        "{desc}"
    );
    // The helper's rules already cover every arch: nothing to add.
    assert_eq!(AuditSnapshot::now(), with_helper, "{desc}");

    let kcc = Kcc::new();
    let pid = kcc.run_args(&["copy_cred_cache", "arg with space"]);
    await_exec(&mut session, pid).unwrap_or_else(|e| panic!("{e}\n{desc}"));
    session.restore().expect("restore");
    assert_eq!(
        AuditSnapshot::now(),
        with_helper,
        "restore took from the helper"
    );

    helper.finish();
    fx.finish();
}

#[test]
fn overrun_is_reported_and_reading_continues() {
    let Some(fx) = AuditGuard::take("overrun_is_reported_and_reading_continues") else {
        return;
    };
    if fx.before.daemon_running() {
        skip("needs to run its own audit receiver, and an audit daemon already runs");
        return fx.finish();
    }
    // Overruns happen on the multicast socket; a unicast receiver instead
    // makes the kernel wait (and count lost records past the backlog).
    let helper = Helper::spawn();
    let opts = SessionOptions {
        rcvbuf: 1,
        ..SessionOptions::default()
    };
    let mut session = AuditSession::start(&opts).expect("start");
    assert_eq!(session.mode(), Mode::Multicast);
    let lost_before = session.status().expect("status").lost;

    for _ in 0..40 {
        Command::new("/bin/true").status().expect("running true");
    }
    let mut buf = vec![0; RECV_BUF_LEN];
    let (mut overruns, mut after_overrun) = (0, 0);
    // Other processes on the host may exec without pause: stop at a deadline
    // as well as at a quiet 300 ms.
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        match session.recv(&mut buf, Duration::from_millis(300)) {
            Ok(Some(_)) if overruns > 0 => after_overrun += 1,
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(RecvError::Overrun) => overruns += 1,
            Err(e) => panic!("recv: {e}"),
        }
    }
    let lost_after = session.status().expect("status").lost;
    println!(
        "overruns {overruns}, records read after the first {after_overrun}, \
         kernel lost counter {lost_before}→{lost_after}"
    );
    assert!(
        overruns >= 1,
        "40 execs into a minimal buffer did not overrun"
    );
    assert!(after_overrun >= 1, "no record read after an overrun");

    session.restore().expect("restore");
    helper.finish();
    fx.finish();
}
