//! Per-line cost of the eslogger source: real-shaped lines through the
//! source's whole line handling (`Eslogger::feed_line`: parse, sequence
//! accounting, classifier, parent cache, engine) into an Engine, with the
//! fast reader (the default) and without it (the full serde_json parse,
//! the "before" figure). Targets: ≤ 5 µs per 5 KB non-Kerberos exec line,
//! ≤ 2 µs per fork or exit line.
//!
//! `cargo bench --bench eslogger_parse`
//!
//! Lines are built from the real macOS 13 exec message in tests/data/eslogger
//! (see tests/support/eslogger_lines.rs): the exec itself (`/bin/date`, 5.2 KB),
//! a fork and an exit carrying its `process` object (3.3 and 1.9 KB), and
//! the same exec as `kcc copy_cred_cache` (which reaches the engine). The
//! `serde_json` group measures typed serde on the exec line, for the fast
//! reader's module doc.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kerberos_cache_access::engine::Engine;
use kerberos_cache_access::event::SourceKind;
use kerberos_cache_access::sources::eslogger::Eslogger;
use kerberos_cache_access::status::State;
use kerberos_cache_access::store::StoreConfig;
use kerberos_cache_access::users::FixedUsers;
use serde::de::IgnoredAny;
use serde::Deserialize;
use std::borrow::Cow;
use std::collections::HashMap;

#[path = "../tests/support/eslogger_lines.rs"]
mod eslogger_lines;
use eslogger_lines::{exec_message, exit_message, fork_message, kerberos_message, line};

fn engine() -> Engine {
    Engine::new(
        StoreConfig::default(),
        Box::new(FixedUsers(vec![(501, "t".into())])),
    )
}

fn per_line(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("empty.jsonl");
    std::fs::write(&file, b"").unwrap();
    let cases = [
        ("exec", line(&exec_message())),
        ("fork", line(&fork_message(6, 14600))),
        ("exit", line(&exit_message(6))),
        ("kerberos_exec", line(&kerberos_message(6))),
    ];
    let mut group = c.benchmark_group("eslogger_line");
    for (name, bytes) in &cases {
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        for (mode, fast) in [("fast", true), ("full", false)] {
            let engine = engine();
            let counters = engine
                .status()
                .set(SourceKind::Eslogger, State::Active, "bench");
            let mut source = Eslogger::replay(&file).unwrap().with_fast_path(fast);
            group.bench_function(format!("{name}/{mode}"), |b| {
                b.iter(|| source.feed_line(bytes, &engine, &counters))
            });
        }
    }
    group.finish();
}

/// The exec fields borrowed where serde_json can: with eslogger's `\/`
/// every path and most strings are copied anyway.
#[derive(Deserialize)]
#[allow(dead_code)]
struct Msg<'a> {
    version: i64,
    global_seq_num: u64,
    #[serde(borrow)]
    time: Cow<'a, str>,
    #[serde(borrow)]
    event: HashMap<Cow<'a, str>, Exec<'a>>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Exec<'a> {
    #[serde(borrow)]
    target: Target<'a>,
    #[serde(borrow)]
    args: Vec<Cow<'a, str>>,
    #[serde(borrow)]
    env: Vec<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Target<'a> {
    #[serde(borrow)]
    signing_id: Option<Cow<'a, str>>,
    ppid: i64,
    #[serde(borrow)]
    executable: Executable<'a>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct Executable<'a> {
    #[serde(borrow)]
    path: Cow<'a, str>,
}

fn serde_baseline(c: &mut Criterion) {
    let bytes = line(&exec_message());
    let mut group = c.benchmark_group("serde_json_exec");
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("value", |b| {
        b.iter(|| serde_json::from_slice::<serde_json::Value>(&bytes).unwrap())
    });
    group.bench_function("ignored_any", |b| {
        b.iter(|| serde_json::from_slice::<IgnoredAny>(&bytes).unwrap())
    });
    group.bench_function("borrowed_struct", |b| {
        b.iter(|| serde_json::from_slice::<Msg>(&bytes).unwrap())
    });
    group.finish();
}

criterion_group!(benches, per_line, serde_baseline);
criterion_main!(benches);
