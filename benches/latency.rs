//! Latency percentiles of generate (criterion reports means, the target is a
//! p99), and the snapshot's cost against a full argv read of every process.
//!
//! `cargo bench --bench latency`

mod common;

use kerberos_cache_access::engine::unix_now;
use kerberos_cache_access::sources::snapshot::{system::SystemProcesses, ProcessTable};
use kerberos_cache_access::table::{ExecTable, Table};
use std::hint::black_box;
use std::time::{Duration, Instant};

fn percentiles(name: &str, iterations: usize, mut f: impl FnMut() -> usize) {
    let mut samples = Vec::with_capacity(iterations);
    let mut rows = 0;
    for _ in 0..iterations {
        let t = Instant::now();
        rows = black_box(f());
        samples.push(t.elapsed());
    }
    samples.sort();
    let at = |q: f64| {
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples[i.min(samples.len() - 1)]
    };
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{name:<48} rows={rows:<6} p50={:>8.3}ms p99={:>8.3}ms max={:>8.3}ms (n={iterations})",
        ms(at(0.5)),
        ms(at(0.99)),
        ms(*samples.last().unwrap_or(&Duration::ZERO)),
    );
}

fn generate(label: &str, table: &ExecTable, ctx: &str, iterations: usize) {
    percentiles(label, iterations, || {
        table
            .generate_from_json(Some(ctx))
            .map(|r| r.len())
            .unwrap_or(0)
    });
}

fn main() {
    // cargo bench passes --bench; nothing to parse.
    let now = unix_now();
    println!("generate over 10,000 stored rows");
    for (label, spacing) in [("one exec/s", 1), ("spread over 24 h", 8)] {
        let table = ExecTable::new(common::engine_with_rows(10_000, now, spacing));
        let ctx = common::pack_context(now);
        generate(&format!("pack window 540 s ({label})"), &table, &ctx, 2000);
        generate(
            &format!("pid = N ({label})"),
            &table,
            common::PID_CONTEXT,
            2000,
        );
        generate(
            &format!("count(*) ({label})"),
            &table,
            common::COUNT_CONTEXT,
            500,
        );
        generate(
            &format!("no constraint, all columns ({label})"),
            &table,
            common::FULL_CONTEXT,
            60,
        );
    }

    println!("\nsnapshot on this host");
    let mut table = SystemProcesses::new();
    let n = table.list().map(|l| l.len()).unwrap_or(0);
    percentiles(&format!("list names ({n} processes)"), 50, || {
        table.list().map(|l| l.len()).unwrap_or(0)
    });
    let pids: Vec<i64> = table
        .list()
        .unwrap_or_default()
        .iter()
        .map(|p| p.pid)
        .collect();
    for k in [1usize, 10, 50] {
        let some: Vec<i64> = pids.iter().copied().take(k).collect();
        percentiles(&format!("details of {k} candidates"), 50, || {
            table.details(&some).len()
        });
    }
    percentiles(&format!("baseline: full argv read of all {n}"), 20, || {
        table.list().ok();
        table.details(&pids).len()
    });
}
