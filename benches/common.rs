//! Shared fixtures for the benchmarks: a store filled with realistic rows.

use kerberos_cache_access::engine::Engine;
use kerberos_cache_access::event::{ExecEvent, SourceKind};
use kerberos_cache_access::status::State;
use kerberos_cache_access::store::StoreConfig;
use kerberos_cache_access::users::FixedUsers;
use std::sync::Arc;

/// An engine holding `n` rows, one exec every `spacing` seconds ending at
/// `now`, a mix of benign klist runs and `kcc copy_cred_cache` dumps.
pub fn engine_with_rows(n: i64, now: i64, spacing: i64) -> Arc<Engine> {
    let engine = Arc::new(Engine::new(
        StoreConfig {
            max_rows: usize::try_from(n).unwrap_or(usize::MAX) + 1,
            ..StoreConfig::default()
        },
        Box::new(FixedUsers(vec![(501, "alice".into())])),
    ));
    let counters = engine
        .status()
        .set(SourceKind::LinuxAudit, State::Active, "bench");
    for i in 0..n {
        let argv: Vec<Vec<u8>> = if i % 10 == 0 {
            vec![
                b"/usr/bin/kcc".to_vec(),
                b"copy_cred_cache".to_vec(),
                format!("/tmp/alice-{i}.ccache").into_bytes(),
            ]
        } else {
            vec![b"klist".to_vec(), b"-v".to_vec()]
        };
        let event = ExecEvent {
            time: now - (n - i) * spacing,
            time_nanos: 123_456_789,
            pid: 10_000 + i,
            ppid: 500,
            path: b"/usr/bin/kcc".to_vec(),
            argv,
            cwd: Some(b"/Users/alice".to_vec()),
            uid: Some(501),
            euid: Some(501),
            gid: Some(20),
            egid: Some(20),
            auid: Some(501),
            parent_path: Some(b"/bin/zsh".to_vec()),
            parent_argv: Some(vec![b"-zsh".to_vec()]),
            source: SourceKind::LinuxAudit,
            ..ExecEvent::default()
        };
        engine.ingest(&event, &counters);
    }
    assert_eq!(engine.store().stats().rows, usize::try_from(n).unwrap_or(0));
    engine
}

/// osqueryd's context for the pack's detection query: a time window and the
/// columns it reads.
pub fn pack_context(now: i64) -> String {
    format!(
        r#"{{"constraints":[{{"name":"time","list":[{{"op":32,"expr":"{}"}}],"affinity":"BIGINT"}}],"colsUsed":["time","eid","pid","parent","path","name","cmdline","args","cwd","uid","euid","username","parent_path","parent_cmdline","tool","action","ccache","indicator","technique","signing_id","team_id","source"],"colsUsedBitset":0}}"#,
        now - 540
    )
}

/// No constraint, every column: the worst case (`SELECT * FROM …`).
pub const FULL_CONTEXT: &str = r#"{"constraints":[],"colsUsedBitset":0}"#;

/// `SELECT count(*)`: no columns used.
pub const COUNT_CONTEXT: &str = r#"{"constraints":[],"colsUsed":[],"colsUsedBitset":0}"#;

/// A pid lookup, as a JOIN on pid would send.
pub const PID_CONTEXT: &str =
    r#"{"constraints":[{"name":"pid","list":[{"op":2,"expr":"15000"}],"affinity":"BIGINT"}]}"#;
