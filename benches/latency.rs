//! Latency percentiles of generate (criterion reports means, the target is a
//! p99), and the snapshot's cost against a full argv read of every process.
//!
//! `cargo bench --bench latency`

mod common;

use kerberos_cache_access::engine::unix_now;
use kerberos_cache_access::engine::Engine;
use kerberos_cache_access::sources::snapshot::{system::SystemProcesses, ProcessTable, Snapshot};
use kerberos_cache_access::store::StoreConfig;
use kerberos_cache_access::table::{ExecTable, Table};
use kerberos_cache_access::users::FixedUsers;
use std::hint::black_box;
use std::process::{Child, Command};
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

    println!("\nsnapshot on this host, with 500 extra idle processes");
    snapshot_scaling();
}

/// Children that live until dropped.
struct Procs(Vec<Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn spawn(program: &std::path::Path, n: usize) -> Procs {
    Procs(
        (0..n)
            .filter_map(|_| Command::new(program).arg("600").spawn().ok())
            .collect(),
    )
}

/// A scan's cost should follow the number of candidates (Kerberos tool
/// names), not the number of processes: compare with reading every process
/// in full.
fn snapshot_scaling() {
    let dir = std::env::temp_dir().join(format!("kca-bench-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let kcc = dir.join("kcc");
    if std::fs::copy("/bin/sleep", &kcc).is_err() {
        println!("cannot copy /bin/sleep; skipped");
        return;
    }
    let _idle = spawn(std::path::Path::new("/bin/sleep"), 500);
    let mut candidates = Procs(Vec::new());
    for k in [0usize, 10, 50] {
        let mut more = spawn(&kcc, k - candidates.0.len());
        candidates.0.append(&mut more.0);
        std::thread::sleep(Duration::from_millis(200));
        let engine = Engine::new(StoreConfig::default(), Box::new(FixedUsers::default()));
        let n = SystemProcesses::new()
            .list(&|_| true)
            .map(|l| l.len())
            .unwrap_or(0);
        // A fresh Snapshot each time, so every candidate is read again.
        percentiles(&format!("scan: {n} processes, {k} candidates"), 30, || {
            Snapshot::new(Box::new(SystemProcesses::new())).scan(&engine);
            k
        });
    }
    let mut table = SystemProcesses::new();
    let pids: Vec<i64> = table
        .list(&|_| true)
        .unwrap_or_default()
        .iter()
        .map(|p| p.pid)
        .collect();
    percentiles(
        &format!("baseline: list + full read of all {}", pids.len()),
        30,
        || {
            let _ = table.list(&|_| true);
            table.details(&pids).len()
        },
    );
    drop(candidates);
    let _ = std::fs::remove_dir_all(&dir);
}
