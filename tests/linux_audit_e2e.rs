//! Elastic's red-team emulation, end to end on Linux: a harmless binary named
//! kcc runs `kcc copy_cred_cache` and exits at once; the extension
//! (`--standalone --source linux_audit`) must report it with the right pid,
//! uid, parent, cwd and args, and leave the audit state as it found it.
//! Needs root; CI runs as root.
#![cfg(target_os = "linux")]

mod support;
use support::audit_ext;

use audit_ext::{args_of, AuditGuard, Extension, Kcc};
use std::process::Command;
use std::time::Duration;

/// What both tests need: the audit lock and the state to restore, the
/// running extension and a masquerading kcc. None (test skipped) when not
/// root or when audit cannot run here.
struct Setup {
    guard: AuditGuard,
    ext: Extension,
    kcc: Kcc,
    _state: tempfile::TempDir,
}

impl Setup {
    fn new(test: &str) -> Option<Setup> {
        let guard = AuditGuard::take(test)?;
        let state = tempfile::tempdir().unwrap();
        let ext = Extension::start(&state.path().join("state"))?;
        Some(Setup {
            guard,
            ext,
            kcc: Kcc::new(),
            _state: state,
        })
    }
}

#[test]
fn red_team_kcc_copy_cred_cache_is_caught_with_its_context() {
    let Some(Setup {
        guard,
        ext,
        kcc,
        _state,
    }) = Setup::new("red_team_kcc_copy_cred_cache_is_caught_with_its_context")
    else {
        return;
    };
    let child = Command::new(&kcc.path)
        .arg("copy_cred_cache")
        .current_dir(kcc.dir.path())
        .status()
        .unwrap();
    assert!(child.success());
    // `status()` does not tell the pid; find the row by its path.
    let kcc_path = kcc.path.to_str().unwrap().to_string();
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
    let cwd = std::fs::canonicalize(kcc.dir.path()).unwrap();
    assert_eq!(row["cwd"], cwd.to_str().unwrap());
    assert!(row["pid"].as_i64().unwrap() > 0);
    guard.finish();
}

#[test]
fn one_hundred_runs_give_one_hundred_rows() {
    let Some(Setup {
        guard,
        ext,
        kcc,
        _state,
    }) = Setup::new("one_hundred_runs_give_one_hundred_rows")
    else {
        return;
    };
    let mut pids = Vec::new();
    for i in 0..100 {
        let mut c = Command::new(&kcc.path)
            .args(["copy_cred_cache", &format!("run-{i}")])
            .spawn()
            .unwrap();
        pids.push(i64::from(c.id()));
        c.wait().unwrap();
    }
    // Other processes on the host may run a kcc too: only ours count.
    let kcc_path = kcc.path.to_str().unwrap().to_string();
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
    guard.finish();
}
