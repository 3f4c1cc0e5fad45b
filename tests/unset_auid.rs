//! An audit user id that was never set ((uid_t)-1, 4294967295) is shown as
//! NULL, as the schema promises for unknown ids, whichever source saw the
//! exec: checked end to end through `--standalone` for an eslogger replay
//! and, on Linux, for the process snapshot (whose loginuid is read from
//! /proc).

mod support;

use serde_json::{json, Value};
use std::path::Path;

const UNSET: i64 = 4_294_967_295;

/// Runs `--standalone` with its own state directory until it exits and
/// returns the rows it printed.
fn standalone(args: &[&str], state: &Path) -> Vec<Value> {
    let run = support::standalone::run(args, state, support::bounds::RUN_LIMIT);
    assert!(run.status.success(), "{:?}: {}", run.status, run.stderr);
    run.rows()
}

/// An eslogger exec of kcc copy_cred_cache (message version 10, array audit
/// tokens: auid, euid, egid, ruid, rgid, pid, asid, pidversion).
fn eslogger_kcc(seq: u64, pid: i64, auid: i64) -> String {
    let stat = json!({"st_dev": 1, "st_ino": 2, "st_mode": 33261, "st_nlink": 1, "st_uid": 0,
        "st_gid": 0, "st_size": 100, "st_atimespec": "2026-11-01T08:00:00.000000000Z",
        "st_mtimespec": "2026-11-01T08:00:00.000000000Z",
        "st_ctimespec": "2026-11-01T08:00:00.000000000Z",
        "st_birthtimespec": "1970-01-01T00:00:00.000000000Z"});
    let shell = json!([501, 501, 20, 501, 20, 801, 100031, 8010]);
    let process = |path: &str, token: Value| {
        json!({
            "audit_token": token, "parent_audit_token": shell, "responsible_audit_token": shell,
            "ppid": 801, "original_ppid": 801, "group_id": 801, "session_id": 801,
            "codesigning_flags": 570522385, "is_platform_binary": true, "is_es_client": false,
            "cdhash": "5E1B9C0D2A3F4E5D6C7B8A9F0E1D2C3B4A596877",
            "signing_id": "com.apple.kcc", "team_id": null,
            "executable": {"path": path, "path_truncated": false, "stat": stat},
            "tty": null, "start_time": "2026-11-20T09:15:41.998877Z"
        })
    };
    let token = json!([auid, 501, 20, 501, 20, pid, 100031, pid * 10]);
    json!({
        "schema_version": 1, "version": 10, "event_type": 9,
        "time": "2026-11-20T09:15:42.123456789Z", "mach_time": 59321000042u64,
        "seq_num": seq, "global_seq_num": seq,
        "action_type": 1, "action": {"result": {"result_type": 0, "result": {"auth": 0}}},
        "thread": {"thread_id": 1200345},
        "process": process("/bin/zsh", token.clone()),
        "event": {"exec": {
            "target": process("/usr/bin/kcc", token),
            "args": ["kcc", "copy_cred_cache", "/tmp/alice.ccache"],
            "env": [], "cwd": {"path": "/Users/alice", "path_truncated": false, "stat": stat},
            "script": null, "dyld_exec_path": "/usr/bin/kcc", "last_fd": 2, "fds": [],
            "image_cputype": 16777228, "image_cpusubtype": -2147483646
        }}
    })
    .to_string()
}

#[test]
fn eslogger_rows_show_an_unset_auid_as_null() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("capture.jsonl");
    std::fs::write(
        &file,
        format!(
            "{}\n{}\n{}\n",
            eslogger_kcc(1, 802, UNSET),
            eslogger_kcc(2, 803, 501),
            eslogger_kcc(3, 804, -1)
        ),
    )
    .unwrap();
    let source = format!("eslogger:{}", file.display());
    let rows = standalone(
        &["--source", &source, "--snapshot-interval", "0"],
        &dir.path().join("state"),
    );
    let auid = |pid: i64| {
        rows.iter()
            .find(|r| r["pid"] == pid)
            .unwrap_or_else(|| panic!("no row for pid {pid}: {rows:?}"))["auid"]
            .clone()
    };
    assert_eq!(auid(802), Value::Null);
    assert_eq!(auid(803), json!(501));
    assert_eq!(auid(804), Value::Null);
}

#[cfg(target_os = "linux")]
#[test]
fn snapshot_rows_show_an_unset_loginuid_as_null() {
    let dir = tempfile::tempdir().unwrap();
    // A shell under the name kcc, waiting, with copy_cred_cache among its
    // arguments: what the snapshot keeps.
    let kcc = support::procs::copy_exe("/bin/sh", &dir.path().join("kcc"));
    let mut child = support::procs::spawn_retrying(std::process::Command::new(&kcc).args([
        "-c",
        "sleep 30; :",
        "copy_cred_cache",
    ]));
    let pid = i64::from(child.id());
    let loginuid: i64 = std::fs::read_to_string(format!("/proc/{pid}/loginuid"))
        .map(|s| s.trim().parse().unwrap())
        .unwrap_or(UNSET);
    let rows = standalone(
        &["--source", "snapshot", "--snapshot-interval", "0"],
        &dir.path().join("state"),
    );
    let _ = child.kill();
    let _ = child.wait();
    let row = rows
        .iter()
        .find(|r| r["pid"] == pid)
        .unwrap_or_else(|| panic!("no row for pid {pid}: {rows:?}"));
    let want = if loginuid == UNSET {
        Value::Null
    } else {
        json!(loginuid)
    };
    assert_eq!(row["auid"], want, "loginuid {loginuid}");
}
