//! The eslogger source with its fast reader on and off gives the same rows
//! (every column), the same status counters and the same schema-drift
//! account: over every case of the classifier corpus rendered as an eslogger
//! exec, forks and exits that set up parents, the shared fixtures when
//! present, and lines the fast reader must leave to the full parse.
#![cfg(unix)]

use kerberos_cache_access::engine::Engine;
use kerberos_cache_access::event::SourceKind;
use kerberos_cache_access::sources::eslogger::Eslogger;
use kerberos_cache_access::sources::Source;
use kerberos_cache_access::store::{RowFilter, StoreConfig};
use kerberos_cache_access::users::FixedUsers;
use serde_json::json;
use std::path::Path;
use std::sync::atomic::AtomicBool;

#[path = "support/eslogger_lines.rs"]
mod eslogger_lines;
use eslogger_lines::{exec_as, exit_message, fork_message, kerberos_message, line};

#[path = "support/classifier_corpus.rs"]
mod corpus;

/// JSON text can only carry UTF-8: how eslogger renders other argv bytes is
/// not known, so both paths get the same replacement characters.
fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Every corpus case as an eslogger exec line (path, argv, signing id, uid
/// and euid, KRB5CCNAME), each preceded by a fork of its parent.
fn corpus_lines() -> Vec<Vec<u8>> {
    let mut lines = Vec::new();
    let mut seq = 100;
    for case in corpus::corpus() {
        let argv: Vec<String> = case.argv.iter().map(|a| text(a)).collect();
        let pid = 20_000 + case.line as i64 - 1;
        seq += 1;
        lines.push(line(&fork_message(seq, pid)));
        seq += 1;
        let args: Vec<&str> = argv.iter().map(String::as_str).collect();
        let mut msg = exec_as(&text(&case.path), &args, &case.signing_id, pid, seq);
        let target = &mut msg["event"]["exec"]["target"];
        if let Some(uid) = case.uid {
            target["audit_token"]["ruid"] = json!(uid);
            target["audit_token"]["euid"] = json!(case.euid.unwrap_or(uid));
        }
        if let Some(value) = &case.krb5ccname {
            msg["event"]["exec"]["env"]
                .as_array_mut()
                .unwrap()
                .push(json!(format!("KRB5CCNAME={}", text(value))));
        }
        lines.push(line(&msg));
        seq += 1;
        lines.push(line(&exit_message(seq)));
    }
    lines
}

/// Lines the fast reader must hand to the full parse, mixed in.
fn odd_lines() -> Vec<Vec<u8>> {
    let base = String::from_utf8(line(&kerberos_message(5000))).unwrap();
    let benign = String::from_utf8(line(&exec_as("/bin/ls", &["ls"], "", 30_001, 5001))).unwrap();
    vec![
        // Missing time: counted, receipt time.
        benign.replace("\"time\":", "\"timex\":").into_bytes(),
        // Torn, not JSON, foreign JSON.
        base.get(..base.len() / 2).unwrap().as_bytes().to_vec(),
        b"not json at all".to_vec(),
        br#"{"hello":"world"}"#.to_vec(),
        // Invalid UTF-8 in an argument: repaired.
        {
            let mut b = benign.clone().into_bytes();
            let at = benign.find("\"ls\"]").unwrap() + 1;
            b[at] = 0xff;
            b
        },
        // An unpaired surrogate escape in kcc's argv: repaired, still kcc.
        base.replace("copy_cred_cache", "copy_cred_cache\\ud800")
            .into_bytes(),
        // A duplicate key, a sequence gap, a non-string argument.
        benign
            .replace("\"pid\":30001", "\"pid\":1,\"pid\":30001")
            .into_bytes(),
        line(&exit_message(6000)),
        benign.replace("[\"ls\"]", "[\"ls\",7]").into_bytes(),
        // Renamed kcc: benign name, kcc's signing id.
        line(&exec_as(
            "/tmp/dateish",
            &["dateish", "c", "/tmp/x.ccache"],
            "com.apple.kcc",
            30_002,
            6001,
        )),
        line(&exec_as(
            "/tmp/dateish",
            &["dateish"],
            "com.apple.kcc",
            30_003,
            6002,
        )),
    ]
}

fn fixture_lines() -> Vec<Vec<u8>> {
    let mut lines = Vec::new();
    for name in [
        "macmonitor-synthetic-lineage.jsonl",
        "macmonitor-synthetic-exit.jsonl",
    ] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/eslogger")
            .join(name);
        let text = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        lines.extend(
            text.split(|&b| b == b'\n')
                .filter(|l| !l.is_empty())
                .map(<[u8]>::to_vec),
        );
    }
    lines
}

struct Outcome {
    rows: Vec<kerberos_cache_access::row::Row>,
    status: (u64, u64, u64, u64, Option<i64>, String),
    drift: kerberos_cache_access::sources::eslogger::SchemaDrift,
    lost: u64,
    version: Option<i64>,
}

fn replay(file: &Path, fast: bool) -> Outcome {
    let engine = Engine::new(
        StoreConfig::default(),
        Box::new(FixedUsers(vec![(501, "alice".into())])),
    );
    let mut source = Eslogger::replay(file).unwrap().with_fast_path(fast);
    source.run(&engine, &AtomicBool::new(false)).unwrap();
    let s = engine.status().get(SourceKind::Eslogger).unwrap();
    let rows = engine
        .store()
        .select(&RowFilter::default())
        .iter()
        .map(|r| (**r).clone())
        .collect();
    Outcome {
        rows,
        // The reason names the file and is the same text either way.
        status: (
            s.events_seen,
            s.rows_added,
            s.dropped,
            s.incomplete,
            s.last_event_time.filter(|&t| t < 1_700_000_000),
            s.reason,
        ),
        drift: source.drift().clone(),
        lost: source.lost_events(),
        version: source.message_version(),
    }
}

#[test]
fn fast_and_full_paths_agree() {
    let mut lines = corpus_lines();
    let corpus = lines.len() / 3;
    assert!(corpus >= 290, "only {corpus} corpus cases");
    lines.extend(odd_lines());
    lines.extend(fixture_lines());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("lines.jsonl");
    let mut text = lines.join(&b'\n');
    text.push(b'\n');
    std::fs::write(&file, text).unwrap();

    let fast = replay(&file, true);
    let full = replay(&file, false);
    assert!(!full.rows.is_empty());
    assert_eq!(fast.rows.len(), full.rows.len());
    for (a, b) in fast.rows.iter().zip(&full.rows) {
        assert_eq!(a, b);
    }
    assert_eq!(fast.status, full.status);
    assert_eq!(fast.drift, full.drift);
    assert!(full.drift.total() > 0, "the odd lines were counted");
    assert_eq!(fast.lost, full.lost);
    assert_eq!(fast.version, full.version);
    // The renamed kcc (signing id, benign name) reached the engine.
    assert!(
        fast.rows.iter().any(|r| r.pid == 30_003),
        "{:#?}",
        fast.rows.len()
    );
}
