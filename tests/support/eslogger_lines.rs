//! eslogger lines for tests and benches, all built from the real macOS 13
//! exec message vendored in tests/data/eslogger (compacted to one line, every
//! `/` escaped as eslogger writes it). Include with
//! `#[path = "…/support/eslogger_lines.rs"] mod eslogger_lines;`.
#![allow(dead_code)]

use serde_json::{json, Value};

const EXEC: &str = include_str!("../data/eslogger/exec-macos13.json");

/// The real exec message (`/bin/date +%c`, version 6, object tokens).
pub fn exec_message() -> Value {
    serde_json::from_str(EXEC).unwrap()
}

/// One line as eslogger prints it: compact, every slash escaped.
pub fn line(msg: &Value) -> Vec<u8> {
    msg.to_string().replace('/', "\\/").into_bytes()
}

/// The envelope of the real message with `event` replaced: the fork and exit
/// lines are shaped like the real exec (same envelope and process object).
fn with_event(event: Value, event_type: i64, seq: u64) -> Value {
    let mut msg = exec_message();
    msg["event_type"] = json!(event_type);
    msg["seq_num"] = json!(seq);
    msg["global_seq_num"] = json!(seq);
    msg["event"] = event;
    msg
}

/// The process of the real message forks: `child` is a copy of its process
/// object with `child_pid`.
pub fn fork_message(seq: u64, child_pid: i64) -> Value {
    let msg = exec_message();
    let mut child = msg["process"].clone();
    child["audit_token"]["pid"] = json!(child_pid);
    child["ppid"] = msg["process"]["audit_token"]["pid"].clone();
    with_event(json!({"fork": {"child": child}}), 11, seq)
}

/// The process of the real message exits.
pub fn exit_message(seq: u64) -> Value {
    with_event(json!({"exit": {"stat": 0}}), 15, seq)
}

/// The real exec with another target path, argv, signing id and pid.
pub fn exec_as(path: &str, args: &[&str], signing_id: &str, pid: i64, seq: u64) -> Value {
    let mut msg = exec_message();
    msg["seq_num"] = json!(seq);
    msg["global_seq_num"] = json!(seq);
    let exec = &mut msg["event"]["exec"];
    exec["target"]["executable"]["path"] = json!(path);
    exec["target"]["signing_id"] = json!(signing_id);
    exec["target"]["audit_token"]["pid"] = json!(pid);
    exec["args"] = json!(args);
    msg
}

/// `kcc copy_cred_cache` as EmPyre's kerberosdump runs it.
pub fn kerberos_message(seq: u64) -> Value {
    exec_as(
        "/usr/bin/kcc",
        &["kcc", "copy_cred_cache", "/tmp/alice.ccache"],
        "com.apple.kcc",
        14522,
        seq,
    )
}
