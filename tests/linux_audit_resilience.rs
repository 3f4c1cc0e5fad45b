//! The audit source on its worst days, against the real kernel (root only):
//! killed with SIGKILL, started twice on one state directory, its rules
//! wiped, auditd starting beside it, and `--cleanup-audit`. Every test
//! checks that the audit state afterwards is exactly the one before (flags,
//! and rules byte for byte), and repairs it if a test fails half-way.
#![cfg(target_os = "linux")]

mod support;
use support::procs::wait_until;
use support::{audit_ext, standalone};

use audit_ext::{marker, run_bin, AuditGuard, AuditSnapshot, Extension, Kcc};
use kerberos_cache_access::sources::linux_audit::control::{
    exec_rule, DEFAULT_KEY, MACHINE_ARCHES,
};
use kerberos_cache_access::sources::linux_audit::netlink::ControlSocket;
use kerberos_cache_access::sources::linux_audit::persist::RECORD_FILE;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long a kcc row may take to show up.
const CATCH: Duration = Duration::from_secs(10);

fn state_dir() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("state");
    (tmp, dir)
}

/// Our exec rules are there, once per arch.
fn assert_rules_in_place(what: &str) {
    let now = AuditSnapshot::now();
    for arch in MACHINE_ARCHES {
        let n = now.rules.iter().filter(|r| r.covers_exec(arch)).count();
        assert!(n >= 1, "{what}: no execve rule for {}: {now:#?}", arch.name);
    }
    let ours = now.keyed(DEFAULT_KEY);
    let mut raws: Vec<&[u8]> = ours.iter().map(|r| r.raw()).collect();
    raws.sort_unstable();
    raws.dedup();
    assert_eq!(raws.len(), ours.len(), "{what}: duplicate rules: {now:#?}");
}

#[test]
fn kill9_then_restart_then_sigterm_restores_the_original_state() {
    let Some(guard) = AuditGuard::take("kill9_then_restart_then_sigterm") else {
        return;
    };
    let (_tmp, dir) = state_dir();
    let kcc = Kcc::new();
    let Some(first) = Extension::start(&dir) else {
        return;
    };
    let first_pid = first.pid();
    let during = AuditSnapshot::now();
    let record = std::fs::read_to_string(dir.join(RECORD_FILE)).expect("audit record");
    assert!(
        record.contains(&format!("\"pid\": {first_pid}")),
        "{record}"
    );
    let m = marker("before-kill");
    kcc.run(&m);
    assert!(first.caught(&m, CATCH), "{}", first.log());
    first.kill9();

    // What issue 8 found: a SIGKILL leaves our changes behind.
    let left = AuditSnapshot::now();
    assert!(
        !left.keyed(DEFAULT_KEY).is_empty() || during.keyed(DEFAULT_KEY).is_empty(),
        "the kill left nothing to recover: {left:#?}"
    );

    let second = Extension::start(&dir).expect("second start");
    let log = second.log();
    if during != guard.before {
        assert!(
            log.contains(&format!(
                "restored the audit configuration left by pid {first_pid}"
            )),
            "{log}"
        );
    }
    assert_rules_in_place("after recovery and restart");
    let m = marker("after-restart");
    kcc.run(&m);
    assert!(second.caught(&m, CATCH), "{}", second.log());
    second.stop();
    assert!(
        !dir.join(RECORD_FILE).exists(),
        "the record outlived a clean restore"
    );
    guard.finish();
}

#[test]
fn overlapping_instances_always_leave_one_catching() {
    let Some(guard) = AuditGuard::take("overlapping_instances") else {
        return;
    };
    let (_tmp, dir) = state_dir();
    let kcc = Kcc::new();
    let Some(a) = Extension::start(&dir) else {
        return;
    };
    let b = Extension::start(&dir).expect("second instance");
    assert!(
        b.log().contains("takes over when it exits"),
        "the second instance did not read beside the first:\n{}",
        b.log()
    );
    let m = marker("both");
    kcc.run(&m);
    assert!(a.caught(&m, CATCH), "owner missed it:\n{}", a.log());
    assert!(b.caught(&m, CATCH), "reader missed it:\n{}", b.log());

    // The owner exits cleanly while the second reads: it must hand over,
    // not restore. A run right after its exit is caught.
    let a_log = a.stop();
    assert!(a_log.contains("handing the audit session over"), "{a_log}");
    let m = marker("after-sigterm");
    kcc.run(&m);
    assert!(
        b.caught(&m, CATCH),
        "blind after the owner exited:\n{}",
        b.log()
    );
    assert!(
        b.wait_log("took the session over", Duration::from_secs(5)),
        "{}",
        b.log()
    );
    assert_rules_in_place("after the clean handover");

    // Again, with the owner killed.
    let c = Extension::start(&dir).expect("third instance");
    assert!(c.log().contains("takes over when it exits"), "{}", c.log());
    b.kill9();
    let m = marker("after-kill");
    kcc.run(&m);
    assert!(
        c.caught(&m, CATCH),
        "blind after the owner was killed:\n{}",
        c.log()
    );
    assert!(
        c.wait_log("took the session over", Duration::from_secs(5)),
        "{}",
        c.log()
    );
    let m = marker("later");
    std::thread::sleep(Duration::from_secs(1));
    kcc.run(&m);
    assert!(c.caught(&m, CATCH), "{}", c.log());
    c.stop();
    assert!(!dir.join(RECORD_FILE).exists());
    guard.finish();
}

/// `auditctl` if installed: the tests that need it are skipped otherwise.
fn tool(name: &str) -> Option<PathBuf> {
    ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.exists())
}

fn auditctl(args: &[&str]) {
    let bin = tool("auditctl").expect("auditctl");
    let out = Command::new(bin).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "auditctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn wiped_rules_and_disabled_audit_are_put_back() {
    let Some(guard) = AuditGuard::take("wiped_rules_and_disabled_audit_are_put_back") else {
        return;
    };
    let (_tmp, dir) = state_dir();
    let kcc = Kcc::new();
    let Some(ext) = Extension::start(&dir) else {
        return;
    };
    // Audit is disabled too, unless it was on before the test: turning it
    // off then would leave the host as we "found" it at the repair, off.
    let disable = guard.before.enabled == 0;
    match tool("auditctl") {
        // `auditctl -D` deletes every rule: only when there are no rules of
        // anyone else's to lose.
        Some(_) if guard.before.rules.is_empty() => {
            auditctl(&["-D"]);
            if disable {
                auditctl(&["-e", "0"]);
            }
        }
        _ => {
            // The same over netlink, for our rules only.
            let mut ctl = ControlSocket::open().unwrap();
            for rule in AuditSnapshot::now().keyed(DEFAULT_KEY) {
                ctl.del_rule(rule.raw()).unwrap();
            }
            if disable {
                let mut s = netlink_packet_audit::StatusMessage::new();
                s.mask = 0x01;
                s.enabled = 0;
                ctl.set_status(&s).unwrap();
            }
        }
    }
    assert!(
        ext.wait_log("reinstalled", Duration::from_secs(5)),
        "{}",
        ext.log()
    );
    std::thread::sleep(Duration::from_secs(6));
    assert_rules_in_place("6 s after the wipe");
    assert_eq!(AuditSnapshot::now().enabled, 1);
    let m = marker("after-wipe");
    kcc.run(&m);
    assert!(
        ext.caught(&m, CATCH),
        "not caught 6 s after the wipe:\n{}",
        ext.log()
    );
    let log = ext.stop();
    assert!(!disable || log.contains("enabled it again"), "{log}");
    guard.finish();
}

/// Where auditd writes its pid.
const AUDITD_PIDFILE: &str = "/var/run/auditd.pid";

/// auditd started as systemd starts it (`Type=forking`: the launcher exits
/// 0 once the forked daemon has registered with the kernel, 1 if it could
/// not), with its own configuration and log in a temp directory. The
/// daemon is stopped (SIGTERM, then SIGKILL) when this is dropped, so it
/// never outlives the test.
struct Auditd {
    /// The daemon's pid, once it is known.
    pid: Option<u32>,
    _dir: tempfile::TempDir,
}

impl Auditd {
    /// Launches it; the launcher's exit status says whether it registered.
    fn start(bin: &Path) -> (Auditd, std::process::ExitStatus) {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("conf");
        std::fs::create_dir_all(conf.join("plugins.d")).unwrap();
        let log = dir.path().join("audit.log");
        std::fs::write(
            conf.join("auditd.conf"),
            format!(
                "local_events = yes\nwrite_logs = yes\nlog_file = {}\nlog_group = root\n\
                 log_format = RAW\nflush = NONE\nfreq = 0\nmax_log_file = 8\nnum_logs = 2\n\
                 priority_boost = 0\nname_format = NONE\nmax_log_file_action = ROTATE\n\
                 space_left = 2\nspace_left_action = IGNORE\nadmin_space_left = 1\n\
                 admin_space_left_action = IGNORE\ndisk_full_action = IGNORE\n\
                 disk_error_action = IGNORE\nuse_libwrap = no\ntcp_listen_queue = 5\n\
                 tcp_max_per_addr = 1\ntcp_client_max_idle = 0\ntransport = TCP\n\
                 distribute_network = no\nq_depth = 2000\noverflow_action = IGNORE\n\
                 max_restarts = 10\nplugin_dir = {}\nend_of_event_timeout = 2\n",
                log.display(),
                conf.join("plugins.d").display()
            ),
        )
        .unwrap();
        let _ = std::fs::remove_file(AUDITD_PIDFILE);
        let status = Command::new(bin)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        let mut auditd = Auditd {
            pid: None,
            _dir: dir,
        };
        auditd.pid = auditd.find_daemon();
        (auditd, status)
    }

    /// The forked daemon, from its pid file, if it runs.
    fn find_daemon(&self) -> Option<u32> {
        let pid: u32 = std::fs::read_to_string(AUDITD_PIDFILE)
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
        (comm.trim() == "auditd").then_some(pid)
    }

    fn running(&self) -> bool {
        self.pid
            .is_some_and(|p| Path::new(&format!("/proc/{p}")).exists())
    }

    /// Stops it; false if it was not running.
    fn stop(&mut self) -> bool {
        let Some(pid) = self.pid.take() else {
            return false;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            return false;
        }
        standalone::signal(pid, libc::SIGTERM);
        let gone = || !Path::new(&format!("/proc/{pid}")).exists();
        if !wait_until(Duration::from_secs(5), gone) {
            standalone::signal(pid, libc::SIGKILL);
            std::thread::sleep(Duration::from_millis(100));
        }
        true
    }
}

impl Drop for Auditd {
    fn drop(&mut self) {
        self.stop();
    }
}

#[test]
fn auditd_starts_normally_and_its_rule_load_does_not_blind_us() {
    let Some(guard) = AuditGuard::take("auditd_starts_normally") else {
        return;
    };
    let (Some(auditd_bin), Some(_)) = (tool("auditd"), tool("auditctl")) else {
        support::fixtures::skip("auditd/auditctl not installed");
        return;
    };
    if guard.before.daemon_running() {
        support::fixtures::skip(format_args!(
            "an audit daemon (pid {}) already runs",
            guard.before.pid
        ));
        return;
    }
    let (tmp, dir) = state_dir();
    let kcc = Kcc::new();
    let Some(ext) = Extension::start(&dir) else {
        return;
    };
    assert!(ext.log().contains("audit receiver"), "{}", ext.log());

    let (mut auditd, status) = Auditd::start(&auditd_bin);
    let daemon = auditd.pid;
    assert!(
        status.success() && daemon.is_some(),
        "auditd did not start normally (exit {status}, daemon {daemon:?}; it logs why to \
         syslog: \"Error setting audit daemon pid\")\nextension:\n{}",
        ext.log()
    );
    assert_eq!(AuditSnapshot::now().pid, daemon.unwrap_or(0));
    assert!(ext.log().contains("released the audit receiver role"));

    // auditd's own rule load, which begins with -D.
    let rules = tmp.path().join("audit.rules");
    std::fs::write(
        &rules,
        "-D\n-w /etc/hostname -p w -k kcc_test_auditd_watch\n",
    )
    .unwrap();
    auditctl(&["-R", rules.to_str().unwrap()]);
    std::thread::sleep(Duration::from_secs(6));
    let m = marker("beside-auditd");
    kcc.run(&m);
    assert!(
        ext.caught(&m, CATCH),
        "not caught 6 s after auditd's rule load:\n{}",
        ext.log()
    );
    assert!(ext.log().contains("reinstalled"), "{}", ext.log());
    assert_eq!(
        Some(AuditSnapshot::now().pid),
        daemon,
        "auditd lost the receiver role"
    );

    assert!(auditd.running(), "auditd died early");
    auditd.stop();
    // The extension takes the receiver role back; then the test's own rule
    // goes, and the extension restores the rest when it stops.
    assert!(
        ext.wait_log("registered as the audit receiver", Duration::from_secs(5)),
        "{}",
        ext.log()
    );
    let mut ctl = ControlSocket::open().unwrap();
    for rule in AuditSnapshot::now().keyed("kcc_test_auditd_watch") {
        ctl.del_rule(rule.raw()).unwrap();
    }
    let m = marker("after-auditd");
    kcc.run(&m);
    assert!(ext.caught(&m, CATCH), "{}", ext.log());
    ext.stop();
    guard.finish();
}

#[test]
fn cleanup_audit_refuses_while_an_owner_runs_and_undoes_after_a_kill() {
    let Some(guard) = AuditGuard::take("cleanup_audit") else {
        return;
    };
    let (_tmp, dir) = state_dir();
    let Some(ext) = Extension::start(&dir) else {
        return;
    };
    let out = run_bin(&["--cleanup-audit"], &dir);
    assert!(!out.status.success());
    let err = &out.stderr;
    assert!(err.contains("owns the audit session"), "{err}");
    assert_rules_in_place("after a refused cleanup");

    ext.kill9();
    let out = run_bin(&["--cleanup-audit"], &dir);
    let err = &out.stderr;
    assert!(out.status.success(), "{err}");
    assert!(err.contains("restored the audit configuration"), "{err}");
    assert!(!dir.join(RECORD_FILE).exists());
    assert_eq!(AuditSnapshot::now(), guard.before, "{err}");

    // Without a record: only our exact rules go.
    let native = &MACHINE_ARCHES[0];
    let ours = exec_rule(native, DEFAULT_KEY);
    let theirs = exec_rule(native, "kcc_test_not_ours");
    let mut ctl = ControlSocket::open().unwrap();
    ctl.add_rule(&theirs).unwrap();
    let with_theirs = AuditSnapshot::now();
    ctl.add_rule(&ours).unwrap();
    let out = run_bin(&["--cleanup-audit"], &dir);
    let err = &out.stderr;
    assert!(out.status.success(), "{err}");
    assert!(err.contains("deleted 1 execve rule"), "{err}");
    assert_eq!(AuditSnapshot::now(), with_theirs);
    ctl.del_rule(&theirs).unwrap();

    // A record from another boot describes a kernel state that is gone:
    // it is discarded, never applied.
    let now = AuditSnapshot::now();
    let record = format!(
        r#"{{"version":1,"pid":1,"boot_id":"00000000-0000-0000-0000-000000000000","key":"{DEFAULT_KEY}",
        "found":{{"enabled":0,"backlog_limit":64,"backlog_wait_time":0,"pid":0}},
        "changes":[{{"kind":"backlog_limit","from":{},"to":{}}}]}}"#,
        now.backlog_limit + 1,
        now.backlog_limit
    );
    std::fs::write(dir.join(RECORD_FILE), record).unwrap();
    let out = run_bin(&["--cleanup-audit"], &dir);
    let err = &out.stderr;
    assert!(out.status.success(), "{err}");
    assert!(err.contains("earlier boot"), "{err}");
    assert!(!dir.join(RECORD_FILE).exists());
    guard.finish();
}

#[test]
fn a_reader_says_failed_while_blind_and_active_once_repaired() {
    let Some(guard) = AuditGuard::take("a_reader_says_failed_while_blind") else {
        return;
    };
    let (_tmp, dir) = state_dir();
    let Some(owner) = Extension::start(&dir) else {
        return;
    };
    let reader = Extension::start(&dir).expect("second instance");
    assert!(reader.log().contains("takes over when it exits"));
    // The owner cannot repair while stopped; the reader must not claim to see.
    standalone::signal(owner.pid(), libc::SIGSTOP);
    let mut ctl = ControlSocket::open().unwrap();
    for rule in AuditSnapshot::now().keyed(DEFAULT_KEY) {
        ctl.del_rule(rule.raw()).unwrap();
    }
    let failed = reader.wait_log("source linux_audit failed: blind:", Duration::from_secs(5));
    standalone::signal(owner.pid(), libc::SIGCONT);
    assert!(failed, "{}", reader.log());
    assert!(
        owner.wait_log("reinstalled", Duration::from_secs(5)),
        "{}",
        owner.log()
    );
    assert!(
        reader.wait_log("source linux_audit: ", Duration::from_secs(5)),
        "the reader did not become active again:\n{}",
        reader.log()
    );
    let kcc = Kcc::new();
    let m = marker("repaired");
    kcc.run(&m);
    assert!(reader.caught(&m, CATCH), "{}", reader.log());
    reader.stop();
    owner.stop();
    guard.finish();
}

#[test]
fn a_daemon_that_never_registers_gets_the_receiver_role_back() {
    let Some(guard) = AuditGuard::take("a_daemon_that_never_registers") else {
        return;
    };
    if guard.before.daemon_running() {
        support::fixtures::skip("an audit daemon already runs");
        return;
    }
    let (_tmp, dir) = state_dir();
    let Some(ext) = Extension::start(&dir) else {
        return;
    };
    let me = ext.pid();
    assert_eq!(AuditSnapshot::now().pid, me);
    // Something named auditd that exits at once, as a daemon that fails
    // its start (or a prank) does.
    let fake = tempfile::tempdir().unwrap();
    let auditd = fake.path().join("auditd");
    std::fs::copy("/bin/true", &auditd).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        match Command::new(&auditd).status() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20))
            }
            r => break r.unwrap(),
        }
    };
    assert!(status.success());
    assert!(
        ext.wait_log("released the audit receiver role", Duration::from_secs(5)),
        "{}",
        ext.log()
    );
    assert_eq!(AuditSnapshot::now().pid, 0);
    // Without a receiver we still read everything (multicast).
    let kcc = Kcc::new();
    let m = marker("no-receiver");
    kcc.run(&m);
    assert!(ext.caught(&m, CATCH), "{}", ext.log());
    assert!(
        ext.wait_log("never registered", Duration::from_secs(15)),
        "{}",
        ext.log()
    );
    assert_eq!(AuditSnapshot::now().pid, me);
    ext.stop();
    guard.finish();
}
