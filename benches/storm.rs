//! Exec storm: how many short-lived `kcc copy_cred_cache` runs an event
//! source catches while the host execs /bin/true N times a second, and what
//! that costs the extension (CPU time per 1,000 execs, peak RSS).
//!
//! Needs root (audit and proc connector). Runs the real binary in
//! `--standalone` mode and counts the rows it prints.
//!
//! `cargo bench --bench storm` (or `-- linux_audit 2000` for one source and
//! rate; `max` probes the highest rate the generator sustains here).

#[allow(dead_code)] // the standalone bound only
#[path = "../tests/support/bounds.rs"]
mod bounds;
#[path = "../tests/support/standalone.rs"]
mod standalone;

use standalone::Running;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One exec in this many is a `kcc copy_cred_cache`.
const KCC_EVERY: u64 = 20;
const SECONDS: u64 = 5;
const WORKERS: u64 = 8;

struct Outcome {
    target_rate: u64,
    achieved_rate: f64,
    execs: u64,
    kcc_launched: u64,
    kcc_caught: u64,
    cpu_ms_per_1000: f64,
    peak_rss_kib: u64,
}

fn proc_field(pid: u32, file: &str, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/{file}")).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// utime + stime of a process, in milliseconds.
fn cpu_ms(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    // /proc reports clock ticks of USER_HZ, which is 100 on every Linux
    // architecture we run on.
    Some(ticks * 10.0)
}

fn start_extension(source: &str) -> Running {
    // Its own state directory, never the host's.
    let state = std::env::temp_dir().join(format!("kca-storm-state-{}", std::process::id()));
    let mut child = Running::spawn(
        standalone::source(source, &state)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )
    .term_on_drop(bounds::standalone_exit());
    // Wait until the source reports itself active (or gives up).
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
            eprintln!("  ext: {line}");
            if line.contains(&format!("source {source}:")) {
                break;
            }
            if line.contains(&format!("source {source} unavailable"))
                || line.contains(&format!("source {source} failed"))
            {
                panic!("{source} cannot run here: {line}");
            }
        }
    }
    std::thread::spawn(move || for _ in rx {});
    child
}

fn storm(source: &str, rate: u64, kcc: &Path, marker: &str) -> Outcome {
    let mut ext = start_extension(source);
    let pid = ext.id();
    let stdout = ext.stdout.take().expect("piped stdout");
    let marker_owned = marker.to_string();
    let reader = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .filter(|l| l.contains(&marker_owned) && l.contains("credential_cache_copy"))
            .count() as u64
    });
    std::thread::sleep(Duration::from_millis(500));
    let cpu_before = cpu_ms(pid).unwrap_or(0.0);

    let execs = Arc::new(AtomicU64::new(0));
    let kccs = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let total = rate * SECONDS;
    let workers: Vec<_> = (0..WORKERS)
        .map(|w| {
            let execs = Arc::clone(&execs);
            let kccs = Arc::clone(&kccs);
            let kcc = kcc.to_path_buf();
            let marker = marker.to_string();
            std::thread::spawn(move || {
                let mut i = w;
                while i < total {
                    // Pace: exec number i is due at i / rate seconds.
                    let due = Duration::from_secs_f64(i as f64 / rate as f64);
                    if let Some(wait) = due.checked_sub(start.elapsed()) {
                        std::thread::sleep(wait);
                    }
                    let status = if i % KCC_EVERY == 0 {
                        kccs.fetch_add(1, Ordering::Relaxed);
                        Command::new(&kcc)
                            .args(["copy_cred_cache", &format!("{marker}-{i}")])
                            .status()
                    } else {
                        Command::new("/bin/true").status()
                    };
                    if status.is_ok() {
                        execs.fetch_add(1, Ordering::Relaxed);
                    }
                    i += WORKERS;
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
    let elapsed = start.elapsed();
    // Let the source drain its backlog.
    std::thread::sleep(Duration::from_secs(2));
    let cpu_after = cpu_ms(pid).unwrap_or(cpu_before);
    let peak_rss_kib = proc_field(pid, "status", "VmHWM:").unwrap_or(0);
    // SIGTERM, and SIGKILL if it does not exit within the bound.
    drop(ext);
    let caught = reader.join().unwrap_or(0);
    let execs = execs.load(Ordering::Relaxed);
    Outcome {
        target_rate: rate,
        achieved_rate: execs as f64 / elapsed.as_secs_f64(),
        execs,
        kcc_launched: kccs.load(Ordering::Relaxed),
        kcc_caught: caught,
        cpu_ms_per_1000: (cpu_after - cpu_before) / (execs.max(1) as f64) * 1000.0,
        peak_rss_kib,
    }
}

fn report(source: &str, o: &Outcome) {
    println!(
        "{source:<15} target {:>5}/s achieved {:>7.0}/s execs {:>6} kcc caught {:>4}/{:<4} ({:>6.2}%) cpu {:>6.1} ms/1000 execs peak RSS {:>6} KiB",
        o.target_rate,
        o.achieved_rate,
        o.execs,
        o.kcc_caught,
        o.kcc_launched,
        100.0 * o.kcc_caught as f64 / o.kcc_launched.max(1) as f64,
        o.cpu_ms_per_1000,
        o.peak_rss_kib
    );
}

fn main() {
    // Root check without libc: the real uid in /proc/self/status.
    if proc_field(std::process::id(), "status", "Uid:") != Some(0) {
        println!("storm: needs root (audit and proc connector); skipped");
        return;
    }
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let sources: Vec<String> = match args.first() {
        Some(s) => vec![s.clone()],
        None => vec!["linux_audit".into(), "proc_connector".into()],
    };
    let rates: Vec<String> = match args.get(1) {
        Some(r) => vec![r.clone()],
        None => vec!["200".into(), "2000".into(), "max".into()],
    };
    let dir: PathBuf = std::env::temp_dir().join(format!("kca-storm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let kcc = dir.join("kcc");
    std::fs::copy("/bin/true", &kcc).expect("copy /bin/true");
    let marker = format!("storm{}", std::process::id());
    for source in &sources {
        for rate in &rates {
            if rate == "max" {
                // Raise the target until the generator falls behind; the
                // run with the highest achieved rate is this host's ceiling.
                let mut best: Option<Outcome> = None;
                for r in [2500, 3000, 4000, 6000, 8000] {
                    let o = storm(source, r, &kcc, &marker);
                    report(source, &o);
                    let keeps_up = o.achieved_rate >= 0.9 * r as f64;
                    if best
                        .as_ref()
                        .is_none_or(|b| o.achieved_rate > b.achieved_rate)
                    {
                        best = Some(o);
                    }
                    if !keeps_up {
                        break;
                    }
                }
                if let Some(b) = best {
                    print!("  highest achieved: ");
                    report(source, &b);
                }
            } else if let Ok(r) = rate.parse::<u64>() {
                report(source, &storm(source, r, &kcc, &marker));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
