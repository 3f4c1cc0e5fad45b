//! generate over a full store, with and without a time constraint; and the
//! snapshot step on this host.
//!
//! `cargo bench --bench generate`

mod common;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use kerberos_cache_access::engine::unix_now;
use kerberos_cache_access::table::{ExecTable, Table};
use std::hint::black_box;

fn generate(c: &mut Criterion) {
    let now = unix_now();
    // One exec per second: 540 rows fall in the pack's window.
    let table = ExecTable::new(common::engine_with_rows(10_000, now, 1));
    let mut group = c.benchmark_group("generate_10k_rows");
    group.bench_function("no_constraint_all_columns", |b| {
        b.iter(|| black_box(table.generate_from_json(Some(common::FULL_CONTEXT))))
    });
    let ctx = common::pack_context(now);
    group.bench_function("time_window_540s_pack_columns", |b| {
        b.iter(|| black_box(table.generate_from_json(Some(&ctx))))
    });
    group.bench_function("pid_equals", |b| {
        b.iter(|| black_box(table.generate_from_json(Some(common::PID_CONTEXT))))
    });
    group.bench_function("count_star", |b| {
        b.iter(|| black_box(table.generate_from_json(Some(common::COUNT_CONTEXT))))
    });
    group.finish();
}

fn snapshot(c: &mut Criterion) {
    use kerberos_cache_access::sources::snapshot::{system::SystemProcesses, ProcessTable};
    let mut group = c.benchmark_group("snapshot_host");
    group.sample_size(20);
    let mut table = SystemProcesses::new();
    let n = table.list().map(|l| l.len()).unwrap_or(0);
    group.bench_with_input(BenchmarkId::new("list_names", n), &n, |b, _| {
        b.iter(|| black_box(table.list()))
    });
    group.finish();
}

criterion_group!(benches, generate, snapshot);
criterion_main!(benches);
