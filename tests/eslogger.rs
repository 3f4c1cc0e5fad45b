//! The eslogger source on Linux: the parser against the shared fixture files
//! and against lines written here, replay end to end through the engine, and
//! the process machinery (early failure, restart, stop) with stand-in
//! programs in place of /usr/bin/eslogger.
#![cfg(unix)]

mod support;

use kerberos_cache_access::engine::Engine;
use kerberos_cache_access::event::SourceKind;
use kerberos_cache_access::sources::eslogger::{
    parse_line, EsEvent, EsExec, Eslogger, Field, EARLY_EXIT_WINDOW, ESLOGGER_ARGS, MAX_LINE,
    TERM_GRACE,
};
use kerberos_cache_access::sources::Source;
use kerberos_cache_access::status::State;
use kerberos_cache_access::store::RowFilter;
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::procs::wait_for;

// --- helpers ---------------------------------------------------------------

/// A vendored Mac Monitor eslogger file (BSD-3-Clause), one entry per line.
fn fixture_lines(name: &str) -> Vec<Vec<u8>> {
    let text = std::fs::read(support::fixtures::vendored(&format!("eslogger/{name}"))).unwrap();
    text.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

fn engine() -> Arc<Engine> {
    support::engines::with_alice()
}

/// A message as eslogger prints it: one line, every slash escaped.
fn line(msg: &Value) -> String {
    msg.to_string().replace('/', "\\/")
}

fn exec(line: &[u8]) -> EsExec {
    match parse_line(line).unwrap() {
        Some(EsEvent::Exec(ex)) => ex,
        other => panic!("not an exec: {other:?}"),
    }
}

fn stat_blob() -> Value {
    json!({"st_dev": 16777232, "st_ino": 1152921500312811234u64, "st_mode": 33261,
           "st_nlink": 1, "st_uid": 0, "st_gid": 0, "st_size": 168432,
           "st_atimespec": "2026-11-01T08:00:00.000000000Z",
           "st_mtimespec": "2026-11-01T08:00:00.000000000Z",
           "st_ctimespec": "2026-11-01T08:00:00.000000000Z",
           "st_birthtimespec": "1970-01-01T00:00:00.000000000Z"})
}

/// A process object; `token` and `parent` are audit tokens in whatever shape
/// the message version uses.
fn process(path: &str, signing_id: &str, token: Value, parent: Value, ppid: i64) -> Value {
    json!({
        "audit_token": token,
        "parent_audit_token": parent.clone(),
        "responsible_audit_token": parent,
        "ppid": ppid, "original_ppid": ppid, "group_id": ppid, "session_id": ppid,
        "codesigning_flags": 570522385,
        "is_platform_binary": true, "is_es_client": false,
        "cdhash": "5E1B9C0D2A3F4E5D6C7B8A9F0E1D2C3B4A596877",
        "signing_id": signing_id, "team_id": null,
        "executable": {"path": path, "path_truncated": false, "stat": stat_blob()},
        "tty": {"path": "/dev/ttys002", "path_truncated": false, "stat": stat_blob()},
        "start_time": "2026-11-20T09:15:41.998877Z"
    })
}

/// An exec message: `caller` exec'd `target`.
fn exec_message(
    version: i64,
    seq: u64,
    time: &str,
    caller: Value,
    target: Value,
    args: Option<&[&str]>,
) -> Value {
    let mut exec = json!({
        "target": target,
        "env": ["HOME=/Users/alice", "SHELL=/bin/zsh"],
        "cwd": {"path": "/Users/alice", "path_truncated": false, "stat": stat_blob()},
        "script": null, "dyld_exec_path": "/usr/bin/kcc",
        "last_fd": 2, "fds": [{"fd": 0, "fdtype": 1}, {"fd": 1, "fdtype": 1}],
        "image_cputype": 16777228, "image_cpusubtype": -2147483646
    });
    if let Some(args) = args {
        exec["args"] = json!(args);
    }
    json!({
        "schema_version": 1, "version": version, "event_type": 9,
        "time": time, "mach_time": 59321000042u64,
        "seq_num": seq, "global_seq_num": seq,
        "action_type": 1, "action": {"result": {"result_type": 0, "result": {"auth": 0}}},
        "thread": {"thread_id": 1200345},
        "process": caller,
        "event": {"exec": exec}
    })
}

/// v10 (macOS 26): alice's shell (pid 801) forked 802, which execs kcc.
/// Tokens are arrays: [auid, euid, egid, ruid, rgid, pid, asid, pidversion].
fn kcc_v10(seq: u64) -> Value {
    let shell = json!([501, 501, 20, 501, 20, 801, 100031, 8010]);
    let before = json!([501, 501, 20, 501, 20, 802, 100031, 8020]);
    let after = json!([501, 501, 20, 501, 20, 802, 100031, 8021]);
    exec_message(
        10,
        seq,
        "2026-11-20T09:15:42.123456789Z",
        process("/bin/zsh", "com.apple.zsh", before, shell.clone(), 801),
        process("/usr/bin/kcc", "com.apple.kcc", after, shell, 801),
        Some(&["kcc", "copy_cred_cache", "/tmp/alice.ccache"]),
    )
}

fn fork_v10(seq: u64) -> Value {
    let launchd = json!([4294967295u64, 0, 0, 0, 0, 1, 100000, 1]);
    let shell = json!([501, 501, 20, 501, 20, 801, 100031, 8010]);
    let child = json!([501, 501, 20, 501, 20, 802, 100031, 8020]);
    json!({
        "schema_version": 1, "version": 10, "event_type": 11,
        "time": "2026-11-20T09:15:42.100000000Z", "mach_time": 59321000001u64,
        "seq_num": seq, "global_seq_num": seq, "action_type": 1,
        "thread": null,
        "process": process("/bin/zsh", "com.apple.zsh", shell.clone(), launchd, 1),
        "event": {"fork": {"child": process("/bin/zsh", "com.apple.zsh", child, shell, 801)}}
    })
}

/// v9 (macOS 15): object tokens; root (via sudo, auid 501) lists caches.
fn klist_v9(seq: u64) -> Value {
    let token = |pid: i64, pv: i64, uid: i64| {
        json!({"pidversion": pv, "asid": 100031, "ruid": uid, "euid": uid, "rgid": 0,
               "egid": 0, "auid": 501, "pid": pid})
    };
    exec_message(
        9,
        seq,
        "2026-11-20T09:16:10.500000000Z",
        process(
            "/usr/bin/sudo",
            "com.apple.sudo",
            token(900, 9000, 0),
            token(801, 8010, 501),
            801,
        ),
        process(
            "/usr/bin/klist",
            "com.apple.kcc",
            token(900, 9001, 0),
            token(801, 8010, 501),
            801,
        ),
        Some(&["klist", "-c", "/tmp/alice.ccache"]),
    )
}

fn write_lines(dir: &Path, name: &str, lines: &[String]) -> PathBuf {
    let path = dir.join(name);
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(&path, text).unwrap();
    path
}

fn write_script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// Whether a process exists; a zombie counts, so false also means reaped.
fn alive(pid: u32) -> bool {
    Command::new("sh")
        .args(["-c", &format!("kill -0 {pid} 2>/dev/null")])
        .status()
        .unwrap()
        .success()
}

fn pids_in(file: &Path) -> Vec<u32> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// Runs a source on its own thread; the handle gives the source back.
fn start(
    mut source: Eslogger,
    engine: &Arc<Engine>,
    stop: &Arc<AtomicBool>,
) -> std::thread::JoinHandle<Eslogger> {
    let (engine, stop) = (Arc::clone(engine), Arc::clone(stop));
    std::thread::spawn(move || {
        source.run(&engine, &stop).unwrap();
        source
    })
}

// --- the shared fixtures ---------------------------------------------------

#[test]
fn mac_monitor_exit_fixture() {
    let lines = fixture_lines("macmonitor-synthetic-exit.jsonl");
    assert_eq!(lines.len(), 1);
    match parse_line(&lines[0]).unwrap() {
        Some(EsEvent::Exit {
            envelope,
            pid,
            stat,
        }) => {
            assert_eq!(pid, 4242);
            assert_eq!(stat, Some(9), "SIGKILL status word");
            assert_eq!(envelope.version, Some(10));
            assert_eq!(envelope.global_seq_num, Some(7));
            assert!(envelope.drift.is_empty(), "{:?}", envelope.drift);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn mac_monitor_lineage_fixture() {
    let lines = fixture_lines("macmonitor-synthetic-lineage.jsonl");
    assert_eq!(lines.len(), 10);
    let events: Vec<EsEvent> = lines
        .iter()
        .map(|l| parse_line(l).unwrap().unwrap())
        .collect();
    for e in &events {
        assert!(e.envelope().drift.is_empty(), "{e:?}");
        assert_eq!(e.envelope().version, Some(10));
    }
    let seqs: Vec<u64> = events
        .iter()
        .map(|e| e.envelope().global_seq_num.unwrap())
        .collect();
    assert_eq!(seqs, (101..=110).collect::<Vec<_>>());

    assert_eq!(
        events[0],
        EsEvent::Fork {
            envelope: *events[0].envelope(),
            parent_pid: Some(401),
            parent_path: Some("/bin/zsh".into()),
            child_pid: 402,
        }
    );
    let EsEvent::Exec(ex) = &events[1] else {
        panic!("{:?}", events[1]);
    };
    // The target (the new image), not the zsh that called exec.
    assert_eq!(ex.path, "/usr/bin/true");
    assert_eq!((ex.pid, ex.pidversion), (402, Some(4021)));
    assert_eq!((ex.ppid, ex.original_ppid), (Some(401), Some(401)));
    assert_eq!(ex.signing_id, "com.example.true");
    assert_eq!(ex.team_id, "");
    assert_eq!(ex.platform_binary, Some(true));
    assert_eq!(ex.cdhash, "00112233445566778899AABBCCDDEEFF01234567");
    assert_eq!(ex.args.as_deref().unwrap(), ["/usr/bin/true"]);
    assert_eq!(ex.cwd.as_deref(), Some("/"));
    assert_eq!(
        (ex.uid, ex.euid, ex.gid, ex.egid, ex.auid),
        (Some(0), Some(0), Some(0), Some(0), Some(4_294_967_295))
    );
    // 2026-10-05T00:00:02.000000000Z
    assert_eq!((ex.time, ex.time_nanos), (1_791_158_402, 0));
    assert!(!ex.path_truncated);

    // pid, path, ppid, original ppid, signing id
    type Summary<'a> = (i64, &'a str, Option<i64>, Option<i64>, &'a str);
    let execs: Vec<Summary> = events
        .iter()
        .filter_map(|e| match e {
            EsEvent::Exec(x) => Some((
                x.pid,
                x.path.as_str(),
                x.ppid,
                x.original_ppid,
                x.signing_id.as_str(),
            )),
            _ => None,
        })
        .collect();
    assert_eq!(
        execs,
        [
            (402, "/usr/bin/true", Some(401), Some(401), "com.example.true"),
            (410, "/usr/libexec/xpcproxy", Some(1), Some(1), "com.example.xpcproxy"),
            (410, "/usr/libexec/exampled", Some(1), Some(1), "com.example.exampled"),
            (
                500,
                "/Applications/Example.app/Contents/MacOS/Example",
                Some(1),
                Some(1),
                "com.example.example"
            ),
            (
                420,
                "/Applications/Example.app/Contents/XPCServices/ExampleService.xpc/Contents/MacOS/ExampleService",
                Some(1),
                Some(1),
                "com.example.exampleservice"
            ),
            // Reparented to launchd; created by the shell.
            (430, "/usr/bin/true", Some(1), Some(401), "com.example.true"),
            (440, "/usr/bin/true", Some(1), Some(1), "com.example.true"),
            (451, "/usr/bin/true", Some(410), Some(410), "com.example.true"),
        ]
    );
    assert!(matches!(
        events[2],
        EsEvent::Fork {
            parent_pid: Some(1),
            child_pid: 410,
            ..
        }
    ));
}

#[test]
fn lineage_fixture_names_parents_through_the_cache() {
    let lines = fixture_lines("macmonitor-synthetic-lineage.jsonl");
    let dir = tempfile::tempdir().unwrap();
    let engine = engine();
    let stop = AtomicBool::new(false);

    // The shell's fork, then the exec in the child.
    let text = |ls: &[Vec<u8>]| -> Vec<String> {
        ls.iter()
            .map(|l| String::from_utf8(l.clone()).unwrap())
            .collect()
    };
    let first = write_lines(dir.path(), "fork.jsonl", &text(&lines[..1]));
    let mut source = Eslogger::replay(&first).unwrap();
    source.run(&engine, &stop).unwrap();
    let ex = exec(&lines[1]);
    assert_eq!(ex.path, "/usr/bin/true");
    let parent = source.parent_of(ex.ppid.unwrap());
    assert_eq!(parent, Some((b"/bin/zsh".to_vec(), Vec::new())));

    // The whole file: every exec counted, none Kerberos-related.
    let all = write_lines(dir.path(), "all.jsonl", &text(&lines));
    let mut source = Eslogger::replay(&all).unwrap();
    assert!(source.is_finite());
    assert_eq!(source.kind(), SourceKind::Eslogger);
    let engine = self::engine();
    source.run(&engine, &stop).unwrap();
    let status = engine.status().get(SourceKind::Eslogger).unwrap();
    assert_eq!(status.events_seen, 8);
    assert_eq!(status.dropped, 0);
    assert_eq!(status.rows_added, 0);
    assert_eq!(status.last_event_time, Some(1_791_158_410));
    assert_eq!(source.drift().total(), 0);
    assert_eq!(source.lost_events(), 0);
    assert_eq!(source.message_version(), Some(10));
    // The job's child (451) names the job; the job's pid went through a fork
    // of launchd and two execs.
    assert_eq!(
        source.parent_of(410),
        Some((
            b"/usr/libexec/exampled".to_vec(),
            b"/usr/libexec/exampled".to_vec()
        ))
    );
    assert_eq!(
        source.parent_of(401),
        Some((b"/bin/zsh".to_vec(), Vec::new()))
    );
}

// --- lines written here ------------------------------------------------------

#[test]
fn v10_array_tokens() {
    let text = line(&kcc_v10(50));
    assert!(text.contains(r#""audit_token":[501,501,20,501,20,802,100031,8021]"#));
    assert!(text.contains(r#"\/tmp\/alice.ccache"#));
    let ex = exec(text.as_bytes());
    assert_eq!(ex.path, "/usr/bin/kcc");
    assert_eq!(
        ex.args.as_deref().unwrap(),
        ["kcc", "copy_cred_cache", "/tmp/alice.ccache"]
    );
    assert_eq!(
        (ex.pid, ex.pidversion, ex.ppid),
        (802, Some(8021), Some(801))
    );
    assert_eq!(
        (ex.uid, ex.euid, ex.gid, ex.egid, ex.auid),
        (Some(501), Some(501), Some(20), Some(20), Some(501))
    );
    assert_eq!(ex.signing_id, "com.apple.kcc");
    assert_eq!(ex.platform_binary, Some(true));
    assert_eq!(ex.cwd.as_deref(), Some("/Users/alice"));
    assert_eq!((ex.time, ex.time_nanos), (1_795_166_142, 123_456_789));
    assert!(ex.envelope.drift.is_empty(), "{:?}", ex.envelope.drift);
}

#[test]
fn v9_object_tokens() {
    let ex = exec(line(&klist_v9(60)).as_bytes());
    assert_eq!(ex.path, "/usr/bin/klist");
    assert_eq!((ex.pid, ex.pidversion), (900, Some(9001)));
    // The target's ids (root after sudo), not the caller's.
    assert_eq!(
        (ex.uid, ex.euid, ex.gid, ex.auid),
        (Some(0), Some(0), Some(0), Some(501))
    );
    assert_eq!(ex.envelope.version, Some(9));
    assert_eq!((ex.time, ex.time_nanos), (1_795_166_170, 500_000_000));
    assert!(ex.envelope.drift.is_empty(), "{:?}", ex.envelope.drift);
}

#[test]
fn unknown_extra_fields_are_ignored() {
    let mut msg = kcc_v10(70);
    msg["version"] = json!(12);
    msg["provenance"] = json!({"kind": "new", "values": [1, 2.5, null, {"deep": [[]]}]});
    msg["event"]["exec"]["entitlements"] = json!({"com.apple.private.kcc": true});
    msg["event"]["exec"]["target"]["cs_validation_category"] = json!(1);
    msg["event"]["exec"]["target"]["cdhash_full"] = json!("AA".repeat(32));
    msg["event"]["exec"]["target"]["executable"]["stat"]["st_new"] = json!(u64::MAX);
    let ex = exec(line(&msg).as_bytes());
    assert_eq!(ex.path, "/usr/bin/kcc");
    assert_eq!(ex.envelope.version, Some(12));
    assert!(ex.envelope.drift.is_empty(), "{:?}", ex.envelope.drift);
}

#[test]
fn missing_args_keep_the_exec() {
    let mut msg = kcc_v10(80);
    msg["event"]["exec"].as_object_mut().unwrap().remove("args");
    let ex = exec(line(&msg).as_bytes());
    assert_eq!(ex.args, None);
    assert_eq!(ex.path, "/usr/bin/kcc");
    assert!(ex.envelope.drift.contains(Field::ExecArgs));
    assert_eq!(ex.envelope.drift.iter().count(), 1);
}

// --- replay end to end ---------------------------------------------------------

#[test]
fn replay_reports_kcc_copy_cred_cache() {
    let dir = tempfile::tempdir().unwrap();
    let mut no_args = kcc_v10(105);
    no_args["event"]["exec"]
        .as_object_mut()
        .unwrap()
        .remove("args");
    no_args["event"]["exec"]["target"]["audit_token"] =
        json!([501, 501, 20, 501, 20, 805, 100031, 8050]);
    no_args["time"] = json!("2026-11-20T09:17:00.000000001Z");
    let lines = vec![
        line(&fork_v10(100)),
        line(&kcc_v10(101)),
        "eslogger: a stray banner".to_string(),
        String::new(),
        line(
            &json!({"version": 10, "event_type": 13, "global_seq_num": 102,
                     "event": {"mmap": {}}, "process": {}}),
        ),
        line(&klist_v9(103)),
        // A sequence gap: 104 never came.
        line(&no_args),
    ];
    let file = write_lines(dir.path(), "capture.jsonl", &lines);
    let engine = engine();
    let stop = AtomicBool::new(false);
    let mut source = Eslogger::replay(&file).unwrap();
    source.run(&engine, &stop).unwrap();

    let rows = engine.store().select(&RowFilter::default());
    assert_eq!(rows.len(), 3, "{rows:#?}");
    let kcc = rows
        .iter()
        .find(|r| r.indicator == "credential_cache_copy" && r.pid == 802)
        .expect("the kcc copy_cred_cache row");
    assert_eq!(kcc.source, SourceKind::Eslogger);
    assert_eq!(kcc.path, "/usr/bin/kcc");
    assert_eq!(kcc.tool, "kcc");
    assert_eq!(kcc.action, "copy_cred_cache");
    assert_eq!(kcc.ccache, "FILE:/tmp/alice.ccache");
    assert_eq!(kcc.cmdline, "kcc copy_cred_cache /tmp/alice.ccache");
    assert_eq!(kcc.signing_id, "com.apple.kcc");
    assert_eq!(kcc.team_id, "");
    assert_eq!(kcc.platform_binary, Some(1));
    assert_eq!(kcc.sha256, "");
    assert_eq!(kcc.uid, Some(501));
    assert_eq!(kcc.euid, Some(501));
    assert_eq!(kcc.gid, Some(20));
    assert_eq!(kcc.auid, Some(501));
    assert_eq!(kcc.username, "alice");
    assert_eq!(kcc.cwd, "/Users/alice");
    assert_eq!(kcc.parent, 801);
    // Named through the fork, which copied the shell to the cache.
    assert_eq!(kcc.parent_path, "/bin/zsh");
    assert_eq!(kcc.time, 1_795_166_142);
    assert!(
        kcc.eid.starts_with("802-1795166142.123456789-"),
        "{}",
        kcc.eid
    );

    let klist = rows.iter().find(|r| r.pid == 900).expect("the klist row");
    assert_eq!(klist.tool, "klist");
    assert_eq!(klist.uid, Some(0));
    assert_eq!(klist.auid, Some(501));
    assert_eq!(klist.indicator, "");
    assert_eq!(klist.parent_path, "/bin/zsh");

    let partial = rows
        .iter()
        .find(|r| r.pid == 805)
        .expect("the argv-less row");
    assert_eq!(partial.tool, "kcc");
    assert_eq!(partial.cmdline, "");

    let status = engine.status().get(SourceKind::Eslogger).unwrap();
    assert_eq!(status.state, State::Active);
    assert_eq!(status.events_seen, 3);
    assert_eq!(status.rows_added, 3);
    assert_eq!(status.incomplete, 1);
    // The banner, and the one event ES skipped.
    assert_eq!(status.dropped, 2);
    for part in [
        "eslogger replay of",
        "6 line(s) read",
        "message version 10",
        "Endpoint Security dropped 1 event(s)",
        "1 non-JSON line(s)",
        "event.exec.args missing or changed in 1",
        "(finished)",
    ] {
        assert!(
            status.reason.contains(part),
            "{part:?} in {}",
            status.reason
        );
    }
    assert_eq!(source.drift().not_json, 1);
    assert_eq!(source.drift().count(Field::ExecArgs), 1);
    assert_eq!(source.lost_events(), 1);

    // The same file again adds nothing: the event ids are stable.
    let mut again = Eslogger::replay(&file).unwrap();
    again.run(&engine, &stop).unwrap();
    assert_eq!(engine.store().select(&RowFilter::default()).len(), 3);
}

#[test]
fn replay_of_a_missing_file_says_so() {
    let err = Eslogger::replay(Path::new("/nonexistent/capture.jsonl"))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("/nonexistent/capture.jsonl"), "{err}");
}

#[test]
fn replay_drops_oversized_lines_and_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let huge = format!("{{\"pad\":\"{}\"}}", "x".repeat(MAX_LINE));
    let file = write_lines(dir.path(), "big.jsonl", &[huge, line(&kcc_v10(1))]);
    let engine = engine();
    let mut source = Eslogger::replay(&file).unwrap();
    source.run(&engine, &AtomicBool::new(false)).unwrap();
    assert_eq!(source.drift().oversized, 1);
    assert_eq!(engine.store().select(&RowFilter::default()).len(), 1);
}

// --- the live process, with stand-ins ----------------------------------------

#[test]
fn an_early_failure_becomes_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let script = write_script(
        dir.path(),
        "eslogger",
        "echo 'ERROR: Failed to create client: ES_NEW_CLIENT_RESULT_ERR_NOT_PERMITTED' >&2\nexit 1",
    );
    let started = Instant::now();
    let err = Eslogger::live_with(&script, &["exec", "fork", "exit"])
        .err()
        .unwrap()
        .to_string();
    assert!(
        started.elapsed() < EARLY_EXIT_WINDOW,
        "no need to wait out the window"
    );
    assert!(
        err.contains("exited at start (exit status: 1): ERROR: Failed to create client"),
        "{err}"
    );
    assert!(err.contains("Full Disk Access"), "{err}");

    // Silent: the reason says what eslogger needs.
    let silent = write_script(dir.path(), "silent", "exit 70");
    let err = Eslogger::live_with(&silent, &[]).err().unwrap().to_string();
    assert!(
        err.contains("exited at start (exit status: 70) without a message"),
        "{err}"
    );
    assert!(
        err.contains("needs root, macOS 13+, and Full Disk Access"),
        "{err}"
    );

    let err = Eslogger::live_with(&dir.path().join("absent"), &[])
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("not found"), "{err}");
}

#[test]
fn live_lines_become_rows_and_stop_reaps_the_process() {
    let dir = tempfile::tempdir().unwrap();
    // Its parent is this test process: not in the cache, so read live.
    let mut msg = kcc_v10(1);
    let me = i64::from(std::process::id());
    msg["event"]["exec"]["target"]["ppid"] = json!(me);
    write_lines(
        dir.path(),
        "lines.jsonl",
        &["not json".to_string(), line(&msg)],
    );
    let script = write_script(
        dir.path(),
        "eslogger",
        "d=$(dirname \"$0\")\necho $$ > \"$d/pid\"\ncat \"$d/lines.jsonl\"\nexec sleep 60",
    );
    let source = Eslogger::live_with(&script, &["exec"]).unwrap();
    let pid = source.child_pid().unwrap();
    assert_eq!(pids_in(&dir.path().join("pid")), [pid]);
    assert!(!source.is_finite());

    let engine = engine();
    let stop = Arc::new(AtomicBool::new(false));
    let runner = start(source, &engine, &stop);
    let rows = wait_for(Duration::from_secs(5), || {
        Some(engine.store().select(&RowFilter::default())).filter(|r| !r.is_empty())
    })
    .expect("a row within 5 s");
    assert_eq!(rows[0].path, "/usr/bin/kcc");
    assert_eq!(rows[0].parent, me);
    let exe = std::env::current_exe().unwrap().canonicalize().unwrap();
    assert_eq!(
        Path::new(&rows[0].parent_path).canonicalize().unwrap(),
        exe,
        "the parent, read from the live process table"
    );
    let reason = wait_for(Duration::from_secs(3), || {
        let s = engine.status().get(SourceKind::Eslogger)?;
        s.reason.contains("message version 10").then_some(s.reason)
    })
    .expect("the status names the message version");
    assert!(
        reason.starts_with(&format!(
            "eslogger (Endpoint Security, macOS 13+): pid {pid}, message version 10"
        )),
        "{reason}"
    );
    assert!(reason.contains("1 non-JSON line(s)"), "{reason}");

    let stopping = Instant::now();
    stop.store(true, Ordering::Relaxed);
    let source = runner.join().unwrap();
    // It left on SIGTERM: no wait for the SIGKILL.
    assert!(stopping.elapsed() < TERM_GRACE, "{:?}", stopping.elapsed());
    assert_eq!(source.child_pid(), None);
    assert!(!alive(pid), "eslogger stand-in {pid} survived");
}

#[test]
fn stop_kills_a_process_that_ignores_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let script = write_script(
        dir.path(),
        "eslogger",
        "trap '' TERM\necho $$ > \"$(dirname \"$0\")/pid\"\nexec sleep 60",
    );
    let source = Eslogger::live_with(&script, &[]).unwrap();
    let pid = source.child_pid().unwrap();
    let engine = engine();
    let stop = Arc::new(AtomicBool::new(false));
    let runner = start(source, &engine, &stop);
    std::thread::sleep(Duration::from_millis(200));
    let stopping = Instant::now();
    stop.store(true, Ordering::Relaxed);
    runner.join().unwrap();
    let took = stopping.elapsed();
    assert!(took >= TERM_GRACE, "SIGKILL came after {took:?}");
    assert!(took < TERM_GRACE + support::bounds::SLACK, "{took:?}");
    assert!(!alive(pid));
}

#[test]
fn dropping_the_source_kills_the_process() {
    let dir = tempfile::tempdir().unwrap();
    let script = write_script(dir.path(), "eslogger", "exec sleep 60");
    let source = Eslogger::live_with(&script, &[]).unwrap();
    let pid = source.child_pid().unwrap();
    assert!(alive(pid));
    drop(source);
    assert!(!alive(pid));
}

#[test]
fn a_dying_eslogger_is_restarted_with_backoff() {
    let dir = tempfile::tempdir().unwrap();
    write_lines(dir.path(), "lines.jsonl", &[line(&kcc_v10(1))]);
    // Run 1 works for 2 s and dies; runs 2 and 3 die at once; run 4 stays.
    let script = write_script(
        dir.path(),
        "eslogger",
        r#"d=$(dirname "$0")
n=$(( $(cat "$d/count" 2>/dev/null || echo 0) + 1 ))
echo "$n" > "$d/count"
echo $$ >> "$d/pids"
case "$n" in
  1) cat "$d/lines.jsonl"; sleep 2; echo "lost the Endpoint Security client" >&2; exit 3 ;;
  2|3) echo "boom $n" >&2; exit 4 ;;
  *) cat "$d/lines.jsonl"; exec sleep 60 ;;
esac"#,
    );
    let source = Eslogger::live_with(&script, &ESLOGGER_ARGS)
        .unwrap()
        .with_restart_backoff(Duration::from_millis(300), Duration::from_secs(1));
    let engine = engine();
    let stop = Arc::new(AtomicBool::new(false));
    let runner = start(source, &engine, &stop);

    let mut seen: Vec<(State, String)> = Vec::new();
    let done = wait_for(Duration::from_secs(15), || {
        let s = engine.status().get(SourceKind::Eslogger)?;
        if seen
            .last()
            .is_none_or(|(st, r)| *st != s.state || *r != s.reason)
        {
            seen.push((s.state, s.reason.clone()));
        }
        (s.state == State::Active && s.reason.contains("restarted 3 time(s)")).then_some(())
    });
    stop.store(true, Ordering::Relaxed);
    let source = runner.join().unwrap();
    assert!(done.is_some(), "{seen:#?}");

    let failures: Vec<&str> = seen
        .iter()
        .filter(|(st, _)| *st == State::Failed)
        .map(|(_, r)| r.as_str())
        .collect();
    assert_eq!(failures.len(), 3, "{seen:#?}");
    assert!(failures[0].contains("exited (exit status: 3): lost the Endpoint Security client; restarting in 300ms (restart 1)"), "{}", failures[0]);
    assert!(
        failures[1].contains("(exit status: 4): boom 2; restarting in 600ms (restart 2)"),
        "{}",
        failures[1]
    );
    assert!(
        failures[2].contains("(exit status: 4): boom 3; restarting in 1s (restart 3)"),
        "{}",
        failures[2]
    );
    assert_eq!(source.restarts(), 3);

    let pids = pids_in(&dir.path().join("pids"));
    assert_eq!(pids.len(), 4);
    for pid in pids {
        assert!(!alive(pid), "stand-in {pid} survived");
    }
    // Both working runs sent the same exec: one row.
    assert_eq!(engine.store().select(&RowFilter::default()).len(), 1);
}

/// `--standalone --source eslogger:FILE` replays the file, prints the row and
/// exits by itself once the (finite) source is drained.
#[test]
fn standalone_replay_prints_rows_and_exits_when_drained() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("capture.jsonl");
    std::fs::write(
        &file,
        format!("{}\n{}\n", line(&fork_v10(1)), line(&kcc_v10(2))),
    )
    .unwrap();
    // A finite source: the process must end by itself.
    let run = support::standalone::run(
        &[
            "--snapshot-interval",
            "0",
            "--source",
            &format!("eslogger:{}", file.display()),
        ],
        &dir.path().join("state"),
        support::bounds::RUN_LIMIT,
    );
    assert!(run.status.success(), "{:?}: {}", run.status, run.stderr);
    let rows = run.rows();
    assert_eq!(rows.len(), 1, "{}", run.stdout);
    assert_eq!(rows[0]["source"], "eslogger");
    assert_eq!(rows[0]["indicator"], "credential_cache_copy");
    assert_eq!(rows[0]["signing_id"], "com.apple.kcc");
    assert_eq!(rows[0]["pid"], 802);
}

use proptest::prelude::*;

proptest! {
    /// Any bytes: an error or an event, never a panic.
    #[test]
    fn parse_line_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = parse_line(&bytes);
    }

    /// A real message with one byte changed anywhere.
    #[test]
    fn parse_line_never_panics_on_mutated_messages(at in 0usize..10_000, byte in any::<u8>()) {
        let mut l = line(&kcc_v10(1)).into_bytes();
        let i = at % l.len();
        l[i] = byte;
        let _ = parse_line(&l);
    }

    /// Fields that change type (Apple's output is not an API).
    #[test]
    fn parse_line_never_panics_on_retyped_fields(
        which in 0usize..6,
        value in prop_oneof![
            Just(Value::Null),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            ".{0,20}".prop_map(Value::from),
            Just(json!([1, "x", null])),
            Just(json!({"a": {"b": []}})),
        ]
    ) {
        let mut msg = kcc_v10(1);
        let slot = match which {
            0 => &mut msg["event"]["exec"]["args"],
            1 => &mut msg["event"]["exec"]["target"]["audit_token"],
            2 => &mut msg["time"],
            3 => &mut msg["event"]["exec"]["target"]["executable"],
            4 => &mut msg["version"],
            _ => &mut msg["event"]["exec"]["cwd"],
        };
        *slot = value;
        let _ = parse_line(line(&msg).as_bytes());
    }
}
