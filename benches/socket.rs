//! generate through the real socket path: our osquery-rust-ng server,
//! registered with the osqueryd test double, answering `call` on its Unix
//! socket the way osqueryd calls it (a fresh connection per call). The clock
//! starts before connecting and stops at the last reply byte on the socket
//! (the client counts bytes and decodes nothing). Also the process's peak
//! RSS during a full read, over its RSS when idle (Linux).
//!
//! `cargo bench --bench socket`

mod common;
mod socket_client;

use kerberos_cache_access::engine::unix_now;
use kerberos_cache_access::table::{ExecTable, Table};
use socket_client::{call, generate_request};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

fn percentiles(name: &str, path: &Path, request: &[u8], iterations: usize) {
    let mut samples = Vec::with_capacity(iterations);
    let mut bytes = 0;
    for _ in 0..iterations {
        let (d, n) = call(path, request);
        samples.push(d);
        bytes = n;
    }
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "{name:<44} reply={:>9} B p50={:>8.3}ms p99={:>8.3}ms max={:>8.3}ms (n={iterations})",
        bytes,
        ms(at(0.5)),
        ms(at(0.99)),
        ms(*samples.last().unwrap()),
    );
}

/// (VmRSS, VmHWM) of this process in KiB.
fn rss() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

fn main() {
    let now = unix_now();
    let engine = common::engine_with_rows(10_000, now, 1);
    let table: Arc<dyn Table> = Arc::new(ExecTable::new(engine));
    let name = table.name();
    let (_dir, fake, running) = socket_client::serve(table);
    let path = running.listen_path().to_path_buf();

    println!("generate over 10,000 stored rows, through the socket");
    let full = generate_request(name, common::FULL_CONTEXT);
    let pack = generate_request(name, &common::pack_context(now));
    let count = generate_request(name, common::COUNT_CONTEXT);
    let pid = generate_request(name, common::PID_CONTEXT);
    // Warm up (first-touch allocations), then measure memory, then time.
    call(&path, &full);
    std::thread::sleep(Duration::from_millis(200));
    if let Some((idle, _)) = rss() {
        // Resets VmHWM to the current RSS (Linux >= 4.0).
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        call(&path, &full);
        if let Some((_, peak)) = rss() {
            println!(
                "RSS idle {idle} KiB, peak during a full read {peak} KiB (+{} KiB)",
                peak.saturating_sub(idle)
            );
        }
    }
    percentiles("no constraint, all columns", &path, &full, 200);
    percentiles("pack window 540 s (one exec/s)", &path, &pack, 2000);
    percentiles("count(*)", &path, &count, 500);
    percentiles("pid = N", &path, &pid, 2000);
    let _ = running.stop(Duration::from_secs(2), true);
    drop(fake);
}
