//! The row journal: cost per row appended, start-up replay of a 10,000-row
//! journal, compaction, one fsync, and the measured durability window.
//!
//! `cargo bench --bench journal` (the journal lives in a temporary directory
//! under $TMPDIR, so it measures that file system).

use criterion::{BatchSize, Criterion};
use kerberos_cache_access::classify::classify;
use kerberos_cache_access::engine::unix_now;
use kerberos_cache_access::event::{ExecEvent, SourceKind};
use kerberos_cache_access::journal::{encode_record, Journal, SYNC_INTERVAL};
use kerberos_cache_access::row::Row;
use kerberos_cache_access::store::{Store, StoreConfig};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Row `i`: one in ten a `kcc copy_cred_cache`, the rest `klist -v`, with the
/// fields a Linux audit row carries.
fn row(i: i64) -> Row {
    let argv: Vec<Vec<u8>> = if i % 10 == 0 {
        vec![
            b"kcc".to_vec(),
            b"copy_cred_cache".to_vec(),
            format!("/tmp/alice-{i}.ccache").into_bytes(),
        ]
    } else {
        vec![b"klist".to_vec(), b"-v".to_vec()]
    };
    let path: &[u8] = if i % 10 == 0 {
        b"/usr/bin/kcc"
    } else {
        b"/usr/bin/klist"
    };
    let event = ExecEvent {
        time: 1_764_000_000 + i,
        time_nanos: 123_456_789,
        pid: 10_000 + i,
        ppid: 500,
        path: path.to_vec(),
        argv,
        cwd: Some(b"/home/alice".to_vec()),
        uid: Some(501),
        euid: Some(501),
        gid: Some(20),
        egid: Some(20),
        auid: Some(501),
        parent_path: Some(b"/bin/bash".to_vec()),
        parent_argv: Some(vec![b"-bash".to_vec()]),
        source: SourceKind::LinuxAudit,
        discriminator: u64::try_from(i).unwrap_or(0),
        ..ExecEvent::default()
    };
    let class = classify(&event.path, &event.argv).expect("a Kerberos tool");
    Row::from_event(&event, &class, "alice".into())
}

fn store(max_rows: usize) -> Store {
    Store::new(StoreConfig {
        max_rows,
        ..StoreConfig::default()
    })
}

/// A state directory holding a journal of `n` rows.
fn journal_of(n: i64) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let j = Journal::new(tmp.path().join("state"));
    let s = store(usize::try_from(n).unwrap() + 1);
    j.attach(&s);
    let now = unix_now();
    for i in 0..n {
        j.record(row(i), now, |r| s.insert(r, now));
    }
    j.sync().unwrap();
    tmp
}

fn append(c: &mut Criterion) {
    let now = unix_now();
    let mut group = c.benchmark_group("journal_append");
    let sample = row(0);
    let len = encode_record(now, &sample).unwrap().len();
    group.bench_function(format!("encode_one_kcc_row_{len}_bytes"), |b| {
        b.iter(|| black_box(encode_record(now, black_box(&sample))))
    });
    // Store insert alone (no journal): the baseline.
    let s = store(10_000);
    let mut next = 0i64;
    group.bench_function("store_insert_only", |b| {
        b.iter_batched(
            || {
                next += 1;
                row(next)
            },
            |r| black_box(s.insert(r, now)),
            BatchSize::SmallInput,
        )
    });
    // Journal write (one write(2)) + insert, as Engine::ingest does, with the
    // store at its 10,000-row cap; compactions happen between samples.
    let tmp = tempfile::tempdir().unwrap();
    let j = Journal::new(tmp.path().join("state"));
    let s = store(10_000);
    j.attach(&s);
    let mut next = 0i64;
    group.bench_function("journal_record_and_insert", |b| {
        b.iter_batched(
            || {
                next += 1;
                if j.needs_compaction(s.stats().rows) {
                    j.compact(&s).unwrap();
                }
                row(next)
            },
            |r| black_box(j.record(r, now, |r| s.insert(r, now))),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn replay(c: &mut Criterion) {
    let mut group = c.benchmark_group("journal_replay");
    group.sample_size(20);
    let tmp = journal_of(10_000);
    let dir = tmp.path().join("state");
    let size = std::fs::metadata(dir.join("rows.journal")).unwrap().len();
    group.bench_function(format!("start_with_10k_rows_{}_KiB", size / 1024), |b| {
        b.iter(|| {
            let j = Journal::new(&dir);
            let s = store(10_000);
            j.attach(&s);
            assert_eq!(s.stats().rows, 10_000);
            black_box((j, s))
        })
    });
    // Compaction of a 10,000-row store (written and fsynced to a new file).
    let j = Journal::new(&dir);
    let s = store(10_000);
    j.attach(&s);
    group.bench_function("compact_10k_rows", |b| b.iter(|| j.compact(&s).unwrap()));
    // One fsync after 100 appended rows (a 500 ms batch at 200 rows/s).
    let now = unix_now();
    let mut next = 1_000_000i64;
    group.bench_function("fsync_after_100_rows", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                for _ in 0..100 {
                    next += 1;
                    j.record(row(next), now, |r| s.insert(r, now));
                }
                let t = Instant::now();
                j.sync().unwrap();
                total += t.elapsed();
                if j.needs_compaction(s.stats().rows) {
                    j.compact(&s).unwrap();
                }
            }
            total
        })
    });
    group.finish();
}

/// The power-loss window as run: rows are appended at `rate` per second
/// while a thread ticks the journal every SYNC_INTERVAL, as the program
/// does. For each row, the time from its append to the end of the first
/// fsync that covers it.
fn durability_window(rate: u64, run: Duration) {
    let tmp = tempfile::tempdir().unwrap();
    let j = Arc::new(Journal::new(tmp.path().join("state")));
    let s = Arc::new(store(10_000));
    j.attach(&s);
    let appended = Arc::new(AtomicU64::new(0));
    let times: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let syncs: Arc<Mutex<Vec<(u64, Instant)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let ticker = {
        let (j, s, appended, syncs, stop) = (
            Arc::clone(&j),
            Arc::clone(&s),
            Arc::clone(&appended),
            Arc::clone(&syncs),
            Arc::clone(&stop),
        );
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(SYNC_INTERVAL);
                // Every row appended before the tick is covered by its fsync.
                let covered = appended.load(Ordering::SeqCst);
                j.tick(&s);
                syncs.lock().unwrap().push((covered, Instant::now()));
            }
        })
    };
    let now = unix_now();
    let gap = Duration::from_nanos(1_000_000_000 / rate);
    let start = Instant::now();
    let mut i = 0i64;
    while start.elapsed() < run {
        i += 1;
        j.record(row(i), now, |r| s.insert(r, now));
        times.lock().unwrap().push(Instant::now());
        appended.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(gap);
    }
    std::thread::sleep(SYNC_INTERVAL * 3);
    stop.store(true, Ordering::Relaxed);
    ticker.join().unwrap();
    let times = times.lock().unwrap();
    let syncs = syncs.lock().unwrap();
    let mut windows: Vec<Duration> = times
        .iter()
        .enumerate()
        .filter_map(|(k, t)| {
            let (_, done) = syncs.iter().find(|(covered, _)| *covered > k as u64)?;
            Some(done.duration_since(*t))
        })
        .collect();
    assert_eq!(windows.len(), times.len(), "every row was synced");
    windows.sort();
    let pct = |p: f64| windows[((windows.len() - 1) as f64 * p) as usize];
    println!(
        "durability_window rate={rate}/s rows={} ticks={}: p50 {:.0?}, p99 {:.0?}, max {:.0?} \
         (append to the end of the fsync that covers it; tick {:?})",
        windows.len(),
        syncs.len(),
        pct(0.5),
        pct(0.99),
        windows[windows.len() - 1],
        SYNC_INTERVAL
    );
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    append(&mut c);
    replay(&mut c);
    c.final_summary();
    // Not a criterion benchmark: a measurement of the running system. Skipped
    // under `cargo test --benches` (criterion's --test mode).
    if !std::env::args().any(|a| a == "--test") {
        durability_window(200, Duration::from_secs(10));
        durability_window(2000, Duration::from_secs(5));
    }
}
