//! Once warm, the eslogger source handles a non-Kerberos exec line, a fork
//! line and an exit line without a heap allocation (the fast reader with
//! reused buffers, the parent cache's ring). A Kerberos exec still reaches
//! the engine.
//!
//! A counting global allocator counts the allocations made by this test's
//! own thread while armed, so the harness's other threads do not interfere.
#![cfg(unix)]

use kerberos_cache_access::engine::Engine;
use kerberos_cache_access::event::SourceKind;
use kerberos_cache_access::sources::eslogger::Eslogger;
use kerberos_cache_access::status::State;
use kerberos_cache_access::store::{RowFilter, StoreConfig};
use kerberos_cache_access::users::FixedUsers;
use serde_json::json;

#[path = "support/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::allocations_during;

#[path = "support/eslogger_lines.rs"]
mod eslogger_lines;
use eslogger_lines::{exec_message, exit_message, fork_message, kerberos_message, line};

#[test]
fn warm_lines_do_not_allocate() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("empty.jsonl");
    std::fs::write(&file, b"").unwrap();
    let engine = Engine::new(
        StoreConfig::default(),
        Box::new(FixedUsers(vec![(501, "t".into())])),
    );
    let counters = engine
        .status()
        .set(SourceKind::Eslogger, State::Active, "test");
    let mut source = Eslogger::replay(&file).unwrap();

    // Lines with consecutive sequence numbers and a new child pid each time,
    // so the parent cache's ring turns over as on a real host.
    // Templates with markers, filled in as text (building 30,000 messages
    // through serde_json would take most of the test's time).
    let fork = String::from_utf8(line(&fork_message(777_777_777, 888_888_888))).unwrap();
    let mut exec = exec_message();
    exec["global_seq_num"] = json!(777_777_777);
    exec["event"]["exec"]["target"]["audit_token"]["pid"] = json!(888_888_888);
    let exec = String::from_utf8(line(&exec)).unwrap();
    let exit = String::from_utf8(line(&exit_message(777_777_777))).unwrap();
    let mut seq = 0u64;
    let mut lines_for = |n: u64| -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for i in 0..n {
            let pid = (50_000 + i % 20_000).to_string();
            for template in [&fork, &exec, &exit] {
                seq += 1;
                let text = template
                    .replace("777777777", &seq.to_string())
                    .replace("888888888", &pid);
                out.push(text.into_bytes());
            }
        }
        out
    };
    // Past the cache's 8192 slots, so every slot's buffers exist.
    let warm = lines_for(10_000);
    let measured = lines_for(300);
    for l in &warm {
        source.feed_line(l, &engine, &counters);
    }
    let seen_before = counters
        .events_seen
        .load(std::sync::atomic::Ordering::Relaxed);
    let n = allocations_during(|| {
        for l in &measured {
            source.feed_line(l, &engine, &counters);
        }
    });
    assert_eq!(n, 0, "allocations for 300 fork/exec/exit triples");
    let seen = counters
        .events_seen
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(seen - seen_before, 300, "every exec counted");
    assert_eq!(source.drift().total(), 0);
    assert_eq!(source.lost_events(), 0);

    // Not a path that drops everything: kcc still becomes a row.
    source.feed_line(&line(&kerberos_message(seq + 1)), &engine, &counters);
    let rows = engine.store().select(&RowFilter::default());
    assert_eq!(rows.len(), 1, "{rows:#?}");
}
