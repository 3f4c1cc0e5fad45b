//! Memory under megabyte argvs: 600 `kcc copy_cred_cache` execs with 1.4 MB
//! of arguments each (14 × 100,000 bytes), through `linux_audit`, against the
//! real binary. Reports the extension's RSS idle and its peak (VmHWM), and
//! the rows it printed. Store rows are capped after classification, so the
//! peak follows the row count, not the argv size.
//!
//! Needs root. `cargo bench --bench bigargv`.

#[allow(dead_code)] // the standalone bound only
#[path = "../tests/support/bounds.rs"]
mod bounds;
#[path = "../tests/support/standalone.rs"]
mod standalone;

use standalone::Running;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const EXECS: usize = 600;

fn kib(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    if kib(std::process::id(), "Uid:") != 0 {
        println!("bigargv: needs root (audit); skipped");
        return;
    }
    let dir = std::env::temp_dir().join(format!("kca-bigargv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let kcc = dir.join("kcc");
    std::fs::copy("/bin/true", &kcc).expect("copy /bin/true");
    let mut ext = Running::spawn(
        standalone::source("linux_audit", &dir.join("state"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )
    .term_on_drop(bounds::standalone_exit());
    let pid = ext.id();
    let stderr = ext.stderr.take().expect("piped");
    let mut lines = BufReader::new(stderr).lines();
    loop {
        match lines.next() {
            Some(Ok(l)) if l.contains("source linux_audit:") => break,
            Some(Ok(l)) if l.contains("linux_audit unavailable") => {
                println!("bigargv: {l}; skipped");
                return;
            }
            Some(_) => {}
            None => {
                let _ = ext.wait();
                panic!("extension exited");
            }
        }
    }
    std::thread::spawn(move || for _ in lines {});
    let stdout = ext.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .filter(|l| l.contains("bigargv-"))
            .count()
    });
    std::thread::sleep(Duration::from_millis(500));
    let idle = kib(pid, "VmRSS:");
    let big = "A".repeat(100_000);
    let start = Instant::now();
    for i in 0..EXECS {
        let tag = format!("bigargv-{i}");
        let mut args = vec!["copy_cred_cache", tag.as_str()];
        args.extend(std::iter::repeat_n(big.as_str(), 14));
        let _ = Command::new(&kcc).args(&args).status();
    }
    let took = start.elapsed();
    std::thread::sleep(Duration::from_secs(3));
    let peak = kib(pid, "VmHWM:");
    // SIGTERM, and SIGKILL if it does not exit within the bound.
    drop(ext);
    let rows = reader.join().unwrap_or(0);
    println!(
        "bigargv: {EXECS} execs of 1.4 MB argv in {:.1} s: rows {rows}, RSS idle {idle} KiB, peak {peak} KiB",
        took.as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
