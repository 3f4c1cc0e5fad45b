//! generate over a full store, with and without a time constraint, in
//! process and through the extension's socket; and the snapshot step on
//! this host.
//!
//! `cargo bench --bench generate`

mod common;
mod socket_client;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use kerberos_cache_access::engine::unix_now;
use kerberos_cache_access::table::{ExecTable, Table};
use std::hint::black_box;
use std::sync::Arc;

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

/// The same calls through the socket, as osqueryd makes them: each sample
/// ends at the last reply byte.
fn through_socket(c: &mut Criterion) {
    let now = unix_now();
    let table: Arc<dyn Table> = Arc::new(ExecTable::new(common::engine_with_rows(10_000, now, 1)));
    let name = table.name();
    let (_dir, _fake, running) = socket_client::serve(table);
    let path = running.listen_path().to_path_buf();
    let full = socket_client::generate_request(name, common::FULL_CONTEXT);
    let pack = socket_client::generate_request(name, &common::pack_context(now));
    let mut group = c.benchmark_group("generate_10k_rows_socket");
    group.bench_function("no_constraint_all_columns", |b| {
        b.iter(|| black_box(socket_client::call(&path, &full)))
    });
    group.bench_function("time_window_540s_pack_columns", |b| {
        b.iter(|| black_box(socket_client::call(&path, &pack)))
    });
    group.finish();
}

fn snapshot(c: &mut Criterion) {
    use kerberos_cache_access::sources::snapshot::{system::SystemProcesses, ProcessTable};
    let mut group = c.benchmark_group("snapshot_host");
    group.sample_size(20);
    let mut table = SystemProcesses::new();
    let n = table.list(&|_| true).map(|l| l.len()).unwrap_or(0);
    group.bench_with_input(BenchmarkId::new("list_names", n), &n, |b, _| {
        b.iter(|| black_box(table.list(&|_| true)))
    });
    group.finish();
}

criterion_group!(benches, generate, through_socket, snapshot);
criterion_main!(benches);
