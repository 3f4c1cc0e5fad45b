//! The binary as a retro-hunt script runs it: `--standalone` replays of
//! `eslogger:FILE` and `bsm:PATH` exit non-zero, with the reason on stderr,
//! for input that cannot be replayed, and 0 only when the input was read to
//! its end. And SIGTERM/SIGINT end the process within the shutdown bound in
//! every state: a FIFO without a writer, a FIFO or device that never sends,
//! a stdout nobody reads, a live run, the wait for osqueryd's socket.
#![cfg(unix)]

mod support;

use kerberos_cache_access::schema::STATUS_COLUMNS;
use kerberos_cache_access::standalone::{EXIT_OK, EXIT_REPLAY_FAILED};
use serde_json::{json, Value};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{ChildStdout, ExitStatus, Stdio};
use std::time::{Duration, Instant};
use support::standalone::{self, Running};
use support::{request, socket_dir, spawn_extension, Extension, FakeOsqueryd, LaunchOptions};

use support::bounds::RUN_LIMIT;

/// A `--standalone` run's exit after a signal.
fn shutdown_deadline() -> Duration {
    support::bounds::standalone_exit()
}

/// A `--standalone` run with its own state directory and stderr file.
struct Run {
    child: Running,
    stderr_path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Run {
    fn start(source: &str, stdout: Stdio, verbose: bool) -> Run {
        let dir = tempfile::tempdir().unwrap();
        let stderr_path = dir.path().join("stderr.log");
        let mut cmd = standalone::source(source, &dir.path().join("state"));
        cmd.stdout(stdout)
            .stderr(File::create(&stderr_path).unwrap());
        if verbose {
            cmd.arg("--verbose");
        }
        Run {
            child: Running::spawn(&mut cmd),
            stderr_path,
            _dir: dir,
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    fn wait_stderr(&mut self, needle: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while !self.stderr().contains(needle) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "exited ({status}) before logging {needle:?}:\n{}",
                    self.stderr()
                );
            }
            assert!(
                Instant::now() < deadline,
                "no {needle:?} within {within:?}:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the exit; panics (after killing it) if it takes longer.
    fn exit_within(&mut self, limit: Duration) -> ExitStatus {
        match support::wait_exit(&mut self.child, limit) {
            Some(status) => status,
            None => panic!("still running after {limit:?}; stderr:\n{}", self.stderr()),
        }
    }

    /// Sends `sig` and requires the exit within the shutdown bound.
    fn stop_with(&mut self, sig: libc::c_int, what: &str) -> ExitStatus {
        let (status, took) = self.child.signal_exit_within(sig, shutdown_deadline());
        let Some(status) = status else {
            panic!(
                "{what}: still running {took:?} after signal {sig}; stderr:\n{}",
                self.stderr()
            );
        };
        eprintln!("{what}: exited {status} {took:?} after signal {sig}");
        status
    }

    fn stdout(&mut self) -> String {
        let mut out = String::new();
        if let Some(mut s) = self.child.stdout.take() {
            s.read_to_string(&mut out).unwrap();
        }
        out
    }
}

/// Runs a replay that ends by itself: exit code, stdout, stderr.
fn replay(source: &str) -> (Option<i32>, String, String) {
    let mut run = Run::start(source, Stdio::piped(), false);
    let status = run.exit_within(RUN_LIMIT);
    let out = run.stdout();
    (status.code(), out, run.stderr())
}

/// A replay of `kind:path` that must fail: the replay-failed exit code, no
/// rows, and `want` in the last line of stderr.
fn assert_refused(kind: &str, path: &Path, want: &str) {
    let source = format!("{kind}:{}", path.display());
    let (code, out, err) = replay(&source);
    assert_eq!(code, Some(EXIT_REPLAY_FAILED), "{source}: {err}");
    assert_eq!(out, "", "{source}");
    assert!(last_line(&err).contains(want), "{source}: {err}");
}

/// The last line of stderr, which carries the reason of a failure.
fn last_line(stderr: &str) -> &str {
    stderr.lines().last().unwrap_or_default()
}

/// An eslogger (message version 10) exec of `kcc copy_cred_cache` by `pid`.
fn kcc_line(pid: u32, seq: u64) -> String {
    let token = |pv: u32| json!([501, 501, 20, 501, 20, pid, 100_031, pv]);
    let process = |path: &str, signing_id: &str, pv: u32| {
        json!({"audit_token": token(pv), "ppid": 801, "original_ppid": 801,
               "executable": {"path": path, "path_truncated": false},
               "signing_id": signing_id, "team_id": null, "is_platform_binary": true})
    };
    json!({
        "schema_version": 1, "version": 10, "event_type": 9,
        "time": "2026-11-20T09:15:42.123456789Z", "seq_num": seq, "global_seq_num": seq,
        "process": process("/bin/zsh", "com.apple.zsh", 1),
        "event": {"exec": {
            "target": process("/usr/bin/kcc", "com.apple.kcc", 2),
            "args": ["kcc", "copy_cred_cache", format!("/tmp/{pid}.ccache")],
            "cwd": {"path": "/Users/alice", "path_truncated": false}
        }}
    })
    .to_string()
    .replace('/', "\\/")
}

fn rows(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid C string.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

/// Opens the FIFO for writing once the extension has it open for reading
/// (never blocks the test on an extension that did not get that far).
fn fifo_writer(path: &Path, run: &mut Run) -> File {
    let deadline = Instant::now() + RUN_LIMIT;
    loop {
        match OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
        {
            Ok(f) => {
                // Blocking writes from here on.
                // SAFETY: fcntl on an fd we own.
                unsafe {
                    use std::os::fd::AsRawFd;
                    let fl = libc::fcntl(f.as_raw_fd(), libc::F_GETFL);
                    libc::fcntl(f.as_raw_fd(), libc::F_SETFL, fl & !libc::O_NONBLOCK);
                }
                return f;
            }
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {}
            Err(e) => panic!("open {} for writing: {e}", path.display()),
        }
        if let Ok(Some(status)) = run.child.try_wait() {
            panic!(
                "exited ({status}) without opening the FIFO:\n{}",
                run.stderr()
            );
        }
        assert!(Instant::now() < deadline, "FIFO never opened for reading");
        std::thread::sleep(Duration::from_millis(20));
    }
}

// --- inputs that cannot be replayed ------------------------------------------

#[test]
fn a_missing_file_fails_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    for (kind, what) in [("eslogger", "eslogger file"), ("bsm", "BSM trail")] {
        let path = dir.path().join(format!("missing.{kind}"));
        let want = format!("cannot open {what} {}: No such file", path.display());
        assert_refused(kind, &path, &want);
    }
}

#[test]
fn an_empty_input_fails_as_empty() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    File::create(&empty).unwrap();
    for input in [Path::new("/dev/null"), &empty] {
        for (kind, what) in [("eslogger", "eslogger file"), ("bsm", "BSM trail")] {
            let want = format!("{what} {} is empty", input.display());
            assert_refused(kind, input, &want);
        }
    }
}

#[test]
fn text_is_neither_a_trail_nor_a_capture() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("passwd");
    std::fs::write(
        &text,
        "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n",
    )
    .unwrap();
    let json = dir.path().join("results.log");
    std::fs::write(&json, "{\"name\":\"pack_x\",\"hostIdentifier\":\"h\"}\n").unwrap();
    let mut cases = vec![
        ("bsm", text.clone(), "no BSM records in"),
        ("eslogger", text, "no eslogger JSON in"),
        // JSON, but not eslogger's.
        ("eslogger", json, "no eslogger JSON in"),
    ];
    if Path::new("/etc/passwd").is_file() {
        cases.push(("bsm", "/etc/passwd".into(), "no BSM records in"));
        cases.push(("eslogger", "/etc/passwd".into(), "no eslogger JSON in"));
    }
    for (kind, path, want) in cases {
        let want = format!("{want} {}", path.display());
        assert_refused(kind, &path, &want);
    }
}

/// A read error fails the replay (here at once; mid-file is the same path,
/// unit-tested in eslogger.rs).
#[cfg(target_os = "linux")]
#[test]
fn a_read_error_fails_with_the_reason() {
    // Reading a process's memory from offset 0 is EIO.
    for (kind, want) in [
        ("eslogger", "reading eslogger file /proc/self/mem failed"),
        ("bsm", "reading BSM trail /proc/self/mem failed"),
    ] {
        let (code, _, err) = replay(&format!("{kind}:/proc/self/mem"));
        assert_eq!(code, Some(EXIT_REPLAY_FAILED), "{kind}: {err}");
        assert!(last_line(&err).contains(want), "{kind}: {err}");
        assert!(
            last_line(&err).contains("Input/output error"),
            "{kind}: {err}"
        );
    }
}

#[test]
fn a_bad_source_list_is_a_usage_error() {
    let (code, _, err) = replay("eslogger:/x,nope");
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("unknown source \"nope\""), "{err}");
}

// --- good replays --------------------------------------------------------------

/// Garbage between good records is counted and skipped; the replay exits 0.
#[test]
fn a_capture_with_garbage_replays_the_good_lines_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("capture.jsonl");
    let text = [
        "eslogger: starting".to_string(),
        kcc_line(4101, 1),
        "{\"name\":\"not es\"}".to_string(),
        String::new(),
        kcc_line(4102, 2),
        "\u{0}\u{1}garbage".to_string(),
    ]
    .join("\n");
    std::fs::write(&file, text).unwrap();
    let mut run = Run::start(
        &format!("eslogger:{}", file.display()),
        Stdio::piped(),
        false,
    );
    let status = run.exit_within(RUN_LIMIT);
    let err = run.stderr();
    assert_eq!(status.code(), Some(EXIT_OK), "{err}");
    let rows = rows(&run.stdout());
    let pids: Vec<i64> = rows.iter().map(|r| r["pid"].as_i64().unwrap()).collect();
    assert_eq!(pids, [4101, 4102], "{rows:?}");
    assert!(rows
        .iter()
        .all(|r| r["indicator"] == "credential_cache_copy"));
    // The finished status says what was skipped, without --verbose.
    assert!(err.contains("2 non-JSON line(s)"), "{err}");
    assert!(
        err.contains("1 JSON line(s) that are not eslogger messages"),
        "{err}"
    );
    assert!(err.contains("(finished); dropped 3"), "{err}");
}

/// OpenBSM's reference trail (vendored): a real trail exits 0.
#[test]
fn a_real_bsm_trail_exits_0() {
    let trail = support::fixtures::vendored("bsm/openbsm/execve-long-args.trail");
    let (code, _, err) = replay(&format!("bsm:{}", trail.display()));
    assert_eq!(code, Some(EXIT_OK), "{err}");
}

// --- FIFOs and devices -----------------------------------------------------------

/// A replay of `kind` from a new FIFO in `dir`, which has no writer yet.
fn fifo_replay(dir: &Path, kind: &str, stdout: Stdio) -> (PathBuf, Run) {
    let fifo = dir.join(format!("{kind}.fifo"));
    mkfifo(&fifo);
    let run = Run::start(&format!("{kind}:{}", fifo.display()), stdout, false);
    (fifo, run)
}

/// No writer ever comes: opening does not block, and a signal ends the
/// wait. The replay did not reach an end, so the exit says it failed.
#[test]
fn a_signal_ends_the_wait_for_a_fifo_writer() {
    let dir = tempfile::tempdir().unwrap();
    for (kind, sig) in [("eslogger", libc::SIGTERM), ("bsm", libc::SIGINT)] {
        let (_fifo, mut run) = fifo_replay(dir.path(), kind, Stdio::null());
        // Its status line is logged on the source's thread, after start.
        run.wait_stderr(&format!("source {kind}:"), RUN_LIMIT);
        std::thread::sleep(Duration::from_millis(300));
        let status = run.stop_with(sig, &format!("{kind} FIFO without writer"));
        let err = run.stderr();
        assert_eq!(status.code(), Some(EXIT_REPLAY_FAILED), "{err}");
        assert!(last_line(&err).contains("stopped before its end"), "{err}");
    }
}

/// A writer that comes later is read, and its close ends the replay.
#[test]
fn a_fifo_writer_that_comes_later_is_read_to_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let (fifo, mut run) = fifo_replay(dir.path(), "eslogger", Stdio::piped());
    std::thread::sleep(Duration::from_millis(500));
    let mut w = fifo_writer(&fifo, &mut run);
    writeln!(w, "{}\n{}", kcc_line(4201, 1), kcc_line(4202, 2)).unwrap();
    drop(w);
    let status = run.exit_within(RUN_LIMIT);
    let err = run.stderr();
    assert_eq!(status.code(), Some(EXIT_OK), "{err}");
    let pids: Vec<i64> = rows(&run.stdout())
        .iter()
        .map(|r| r["pid"].as_i64().unwrap())
        .collect();
    assert_eq!(pids, [4201, 4202], "{err}");
}

/// A writer that sent one record and then keeps the FIFO open, silent: the
/// row comes through, and a signal still ends the read.
#[test]
fn a_signal_ends_the_read_of_a_silent_fifo() {
    let dir = tempfile::tempdir().unwrap();
    let (fifo, mut run) = fifo_replay(dir.path(), "eslogger", Stdio::piped());
    let mut w = fifo_writer(&fifo, &mut run);
    writeln!(w, "{}", kcc_line(4301, 1)).unwrap();
    // Read the row as it is printed (the printer flushes per row).
    let (row, _stdout) = read_line(run.child.stdout.take().unwrap(), RUN_LIMIT);
    assert_eq!(serde_json::from_str::<Value>(&row).unwrap()["pid"], 4301);
    let status = run.stop_with(libc::SIGTERM, "silent FIFO with writer");
    drop(w);
    assert_eq!(status.code(), Some(EXIT_REPLAY_FAILED), "{}", run.stderr());
}

/// One line from the child's stdout, with a time limit (a thread does the
/// blocking read and hands the pipe back, still open).
fn read_line(stdout: ChildStdout, within: Duration) -> (String, ChildStdout) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut stdout = stdout;
        let mut line = Vec::new();
        let mut b = [0u8; 1];
        while stdout.read(&mut b).unwrap_or(0) == 1 && b[0] != b'\n' {
            line.push(b[0]);
        }
        let _ = tx.send((String::from_utf8_lossy(&line).into_owned(), stdout));
    });
    rx.recv_timeout(within).expect("no row printed")
}

/// A terminal nobody types on: a device that never sends.
#[cfg(target_os = "linux")]
#[test]
fn a_signal_ends_the_read_of_a_silent_device() {
    // SAFETY: posix_openpt/grantpt/unlockpt/ptsname_r on a fd we own, with a
    // buffer of the size we pass.
    let (master, name) = unsafe {
        let fd = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
        assert!(fd >= 0);
        assert_eq!(libc::grantpt(fd), 0);
        assert_eq!(libc::unlockpt(fd), 0);
        let mut buf = [0 as libc::c_char; 128];
        assert_eq!(libc::ptsname_r(fd, buf.as_mut_ptr(), buf.len()), 0);
        let name = std::ffi::CStr::from_ptr(buf.as_ptr())
            .to_string_lossy()
            .into_owned();
        (
            <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd),
            name,
        )
    };
    let mut run = Run::start(&format!("bsm:{name}"), Stdio::null(), false);
    run.wait_stderr("source bsm:", RUN_LIMIT);
    std::thread::sleep(Duration::from_millis(300));
    let status = run.stop_with(libc::SIGTERM, "silent terminal");
    drop(master);
    assert_eq!(status.code(), Some(EXIT_REPLAY_FAILED), "{}", run.stderr());
}

// --- stdout nobody reads -----------------------------------------------------

/// More rows than a pipe holds, and nobody reading them: the replay itself
/// finishes, the printer blocks, and a signal still ends the process. Rows
/// were left unprinted, so the exit says the replay is incomplete.
#[test]
fn a_signal_ends_a_run_whose_stdout_is_not_read() {
    const ROWS: u32 = 3000;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("many.jsonl");
    let lines: Vec<String> = (0..ROWS)
        .map(|i| kcc_line(10_000 + i, u64::from(i) + 1))
        .collect();
    std::fs::write(&file, lines.join("\n")).unwrap();
    let mut run = Run::start(
        &format!("eslogger:{}", file.display()),
        Stdio::piped(),
        true,
    );
    // The printer fills the pipe, then the bounded print queue holds the
    // replay back: it cannot finish while nobody reads.
    run.wait_stderr("source eslogger", RUN_LIMIT);
    std::thread::sleep(Duration::from_millis(1000));
    assert!(
        matches!(run.child.try_wait(), Ok(None)),
        "exited although stdout was not read:\n{}",
        run.stderr()
    );
    assert!(!run.stderr().contains("(finished)"), "{}", run.stderr());
    let status = run.stop_with(libc::SIGTERM, "stdout not read");
    let err = run.stderr();
    assert_eq!(status.code(), Some(EXIT_REPLAY_FAILED), "{err}");
    assert!(err.contains("stdout is not being read"), "{err}");
    // What reached the pipe is whole rows, and not all of them.
    let printed = rows(&run.stdout()).len();
    assert!(printed > 0 && printed < ROWS as usize, "{printed}");
}

// --- live runs ------------------------------------------------------------------

/// A live standalone run (snapshot only: no audit state touched) ends on
/// SIGTERM with 0.
#[test]
fn a_signal_ends_a_live_standalone_run_with_0() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Running::spawn(
        standalone::command(&dir.path().join("state"))
            .args(["--source", "snapshot", "--snapshot-interval", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    std::thread::sleep(Duration::from_millis(1500));
    let (status, took) = child.signal_exit_within(libc::SIGTERM, shutdown_deadline());
    eprintln!("live standalone: {status:?} {took:?} after SIGTERM");
    assert_eq!(status.and_then(|s| s.code()), Some(EXIT_OK));
}

// --- under osqueryd -------------------------------------------------------------

/// Under osqueryd nothing exits on a replay: a missing trail is a `failed`
/// source, a FIFO without a writer does not hold up the start, and the
/// extension keeps serving until SIGTERM, which ends it within the bound.
#[test]
fn under_osqueryd_a_failed_replay_is_a_failed_source() {
    let sockets = socket_dir();
    let socket = sockets.path().join("osquery.em");
    let fake = FakeOsqueryd::start(&socket);
    let fifo = sockets.path().join("es.fifo");
    mkfifo(&fifo);
    let source = format!(
        "bsm:{}/missing,eslogger:{},snapshot",
        sockets.path().display(),
        fifo.display()
    );
    let mut ext = spawn_extension(
        &socket,
        &LaunchOptions {
            extra: vec![
                "--source".into(),
                source,
                "--snapshot-interval".into(),
                "0".into(),
            ],
            ..LaunchOptions::default()
        },
    );
    let Some(reg) = fake.wait_for("kerberos_cache_access", Duration::from_secs(10)) else {
        panic!("no registration; stderr:\n{}", ext.stderr());
    };
    assert!(fake.wait_ext_socket(reg.uuid, Duration::from_secs(5)));
    // Past two health checks: still serving.
    let seen = fake.call_count("extensions");
    assert!(fake.wait_call_count("extensions", seen + 2, Duration::from_secs(10)));
    let used: Vec<&str> = STATUS_COLUMNS.iter().map(|c| c.name).collect();
    let ctx = json!({"constraints": [], "colsUsed": used}).to_string();
    let (st, rows) = fake
        .ext_call(
            reg.uuid,
            "table",
            "kerberos_cache_access_status",
            request(&[("action", "generate"), ("context", &ctx)]),
        )
        .unwrap();
    assert_eq!(st.code, 0, "{st:?}");
    let row = |name: &str| {
        rows.iter()
            .find(|r| r.get("source").map(String::as_str) == Some(name))
            .unwrap_or_else(|| panic!("no {name} row in {rows:?}"))
            .clone()
    };
    let bsm = row("bsm");
    assert_eq!(bsm["state"], "failed", "{bsm:?}");
    assert!(bsm["reason"].contains("cannot open BSM trail"), "{bsm:?}");
    assert_eq!(row("eslogger")["state"], "active");
    assert!(matches!(ext.child.try_wait(), Ok(None)), "{}", ext.stderr());

    // A signal is a request, not a failure.
    term_exits_0(&mut ext, "extension with a FIFO replay");
}

/// SIGTERM while waiting (up to --timeout) for osqueryd's socket.
#[test]
fn a_signal_ends_the_wait_for_osqueryd() {
    let sockets = socket_dir();
    let socket = sockets.path().join("never.em");
    let mut ext = spawn_extension(
        &socket,
        &LaunchOptions {
            timeout: 600,
            extra: vec!["--source".into(), "snapshot".into()],
            ..LaunchOptions::default()
        },
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(matches!(ext.child.try_wait(), Ok(None)), "{}", ext.stderr());
    // A signal is a request, not a failure.
    term_exits_0(&mut ext, "waiting for osqueryd");
}

/// SIGTERM ends an osqueryd-mode extension with 0 within its own shutdown
/// bound (not standalone's).
fn term_exits_0(ext: &mut Extension, what: &str) {
    let (status, took) = ext
        .child
        .signal_exit_within(libc::SIGTERM, support::bounds::osquery_exit());
    eprintln!("{what}: {status:?} {took:?} after SIGTERM");
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{}", ext.stderr());
}

// --- linux_audit's cleanup is never skipped ----------------------------------

/// With stdout not read and rows queued, SIGTERM still ends the process
/// within the bound, and only after linux_audit put the audit state back
/// (flags and rules as found). Root only; holds the audit tests' lock.
#[cfg(target_os = "linux")]
#[test]
fn a_signal_with_stdout_not_read_still_restores_the_audit_state() {
    // Root, the audit test lock, and the audit state to compare at the end.
    let Some(guard) = support::audit_ext::AuditGuard::take("stdout not read") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let kcc = support::procs::copy_exe("/bin/true", &dir.path().join("kcc"));
    let mut run = Run::start("linux_audit", Stdio::piped(), false);
    let t = Instant::now();
    while !run.stderr().contains("source linux_audit") {
        assert!(t.elapsed() < RUN_LIMIT, "{}", run.stderr());
        std::thread::sleep(Duration::from_millis(20));
    }
    if run.stderr().contains("source linux_audit unavailable") {
        support::fixtures::skip(format_args!("audit cannot run here: {}", run.stderr()));
        return;
    }
    // About 1 KB a row: well past a 64 KiB pipe.
    for i in 0..300 {
        std::process::Command::new(&kcc)
            .args(["copy_cred_cache", &format!("/tmp/replay-cli-{i}.ccache")])
            .status()
            .unwrap();
    }
    std::thread::sleep(Duration::from_millis(500));
    let status = run.stop_with(libc::SIGTERM, "linux_audit, stdout not read");
    let err = run.stderr();
    // A live run: no replay was cut short.
    assert_eq!(status.code(), Some(EXIT_OK), "{err}");
    assert!(err.contains("stdout is not being read"), "{err}");
    guard.finish();
    // Rows of our own kcc (other processes may run one at the same time).
    let ours = kcc.to_str().unwrap();
    let mine = rows(&run.stdout())
        .into_iter()
        .filter(|r| r["path"] == ours)
        .count();
    assert!(mine > 0, "no row for {ours}:\n{err}");
}
