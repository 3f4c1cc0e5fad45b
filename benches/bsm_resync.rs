//! What garbage costs the BSM reader, and that real trails do not pay for
//! it: MB/s and CPU seconds per GB of garbage resynchronised (random bytes,
//! bytes that are all header ids, fake headers with bad trailers), records/s
//! over the vendored real trails, and the real binary on `bsm:/dev/urandom`.
//! Inputs come from a seeded xorshift, so runs compare.
//!
//! `cargo bench --bench bsm_resync`.

#[path = "../tests/support/standalone.rs"]
mod standalone;

use kerberos_cache_access::sources::bsm::events::interpret;
use kerberos_cache_access::sources::bsm::parse::{parse_record, RecordReader};
use std::hint::black_box;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// What one read of the source hands the reader (its READ_BUF).
const CHUNK: usize = 128 * 1024;
const GARBAGE: usize = 256 << 20;

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn fill(&mut self, len: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(len + 8);
        while v.len() < len {
            v.extend_from_slice(&self.next().to_le_bytes());
        }
        v.truncate(len);
        v
    }
}

/// CPU time (user + system) of this process.
fn cpu() -> Duration {
    // SAFETY: getrusage fills the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; RUSAGE_SELF is always valid.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| {
        Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
            + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
    };
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Pushes `input` through a reader in read-sized chunks; returns records
/// found and CPU time.
fn read_all(input: &[u8]) -> (u64, Duration) {
    let t = cpu();
    let mut reader = RecordReader::new();
    let mut records = 0u64;
    for chunk in input.chunks(CHUNK) {
        reader.push(chunk);
        while let Some(r) = reader.next_record() {
            black_box(r);
            records += 1;
        }
    }
    reader.finish();
    while reader.next_record().is_some() {
        records += 1;
    }
    black_box(reader.stats());
    (records, cpu() - t)
}

fn garbage_case(name: &str, input: &[u8]) {
    let (records, took) = read_all(input);
    let mb = input.len() as f64 / 1e6;
    let s = took.as_secs_f64().max(1e-9);
    println!(
        "garbage {name:<22} {:>7.0} MB/s  {:>6.3} CPU s/GB  ({records} false record(s) in {mb:.0} MB)",
        mb / s,
        s / (mb / 1000.0),
    );
}

/// Real trails, repeated: reader + parse + interpret, records/s.
fn trails() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/bsm");
    let mut one = Vec::new();
    for f in ["apple.bsm", "openbsm.bsm"] {
        match std::fs::read(format!("{dir}/{f}")) {
            Ok(b) => one.extend(b),
            Err(e) => {
                println!("trails: {dir}/{f}: {e}; skipped");
                return;
            }
        }
    }
    let input = one.repeat(4000);
    let t = cpu();
    let mut reader = RecordReader::new();
    let (mut records, mut events) = (0u64, 0u64);
    for chunk in input.chunks(CHUNK) {
        reader.push(chunk);
        while let Some(r) = reader.next_record() {
            records += 1;
            if let Ok((rec, _)) = parse_record(r) {
                events += u64::from(interpret(&rec).is_some());
            }
        }
    }
    let s = (cpu() - t).as_secs_f64().max(1e-9);
    let st = reader.stats();
    println!(
        "real trails (apple+openbsm x4000)  {:>9.0} records/s  {:>6.0} MB/s  ({records} records, {events} exec/fork, {} byte(s) skipped)",
        records as f64 / s,
        input.len() as f64 / 1e6 / s,
        st.skipped_bytes
    );
}

/// CPU seconds of a child, from /proc (Linux).
fn child_cpu(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some(ticks / hz)
}

/// The binary on /dev/urandom: how long it runs and the CPU it burns (it
/// is killed after `limit` if it does not stop by itself).
fn urandom(limit: Duration) {
    if !cfg!(target_os = "linux") {
        println!("urandom: needs /proc; skipped");
        return;
    }
    let dir = std::env::temp_dir().join(format!("kca-bsm-resync-{}", std::process::id()));
    let mut child = match standalone::source("bsm:/dev/urandom", &dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            println!("urandom: cannot start {}: {e}", standalone::BIN);
            return;
        }
    };
    let start = Instant::now();
    let mut last_cpu = 0.0;
    let status = loop {
        if let Some(c) = child_cpu(child.id()) {
            last_cpu = c;
        }
        if let Ok(Some(status)) = child.try_wait() {
            break Some(status);
        }
        if start.elapsed() >= limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let wall = start.elapsed().as_secs_f64();
    match status {
        Some(s) => println!(
            "binary bsm:/dev/urandom  exited {s} after {wall:.2} s wall, >= {last_cpu:.2} CPU s"
        ),
        None => println!(
            "binary bsm:/dev/urandom  still running after {wall:.2} s wall ({last_cpu:.2} CPU s, {:.0}% of a core); killed",
            100.0 * last_cpu / wall
        ),
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    garbage_case("random", &rng.fill(GARBAGE));

    // Every byte a header or file-token id: a candidate at each position.
    let ids = [0x11u8, 0x14, 0x15, 0x74, 0x79];
    let dense: Vec<u8> = rng
        .fill(GARBAGE / 4)
        .iter()
        .map(|b| ids[usize::from(*b) % ids.len()])
        .collect();
    garbage_case("all header ids", &dense);

    // Plausible header32s (version 11, 4 KiB) whose trailer never matches.
    let mut fake = Vec::with_capacity(GARBAGE / 4);
    while fake.len() < GARBAGE / 4 {
        fake.extend_from_slice(&[0x14, 0, 0, 0x10, 0, 11, 0, 23, 0, 0]);
        fake.extend(rng.fill(54));
    }
    garbage_case("fake headers", &fake);

    trails();
    urandom(Duration::from_secs(10));
}
