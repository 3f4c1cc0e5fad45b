//! Replay bench: what the file-replay sources cost the extension per event,
//! measured on the real binary as a user runs it
//! (`--standalone --source KIND:FILE`), from inputs built out of the real
//! captures vendored in `tests/data/` (so a fresh clone can run it).
//!
//! For each run it reports events, bytes, wall time, CPU time (user + sys of
//! the child, from `wait4`'s rusage), CPU ms per 1,000 events, µs per line,
//! MB/s and peak RSS, and ends with a markdown table to paste. Beside each
//! eslogger replay, `python3` `json.loads` every line of the same file, timed
//! the same way, and the CPU ratio extension / Python is printed (issue 10's
//! target: ≤ 0.15).
//!
//! ```text
//! cargo bench --bench replay                        # every source, default sizes
//! cargo bench --bench replay -- eslogger 100000     # one source, COUNT lines
//! cargo bench --bench replay -- bsm 1000000 3       # COUNT records, best of 3 runs
//! cargo bench --bench replay -- all default 3       # every source, best of 3
//! ```
//!
//! Sources: `eslogger` (COUNT identical copies of the macOS 13 `/bin/date`
//! exec message compacted to one line, about 5 KB each, as issue 10 measured
//! it), `eslogger_fork` and `eslogger_exit` (COUNT fork or exit lines built
//! from its `process` object, about 3.5 and 1.9 KB), `eslogger_mixed` (COUNT
//! lines of fork, exec, exit in turn), these three with distinct pids and
//! increasing `global_seq_num`; `bsm`
//! (the vendored trails back to back until COUNT records, default 1,000,000:
//! they hold no exec record, so this is framing and skipping) and `bsm_exec`
//! (COUNT xnu-shaped execve records of that message's `/bin/date`, with its
//! argv and environment, about 1.2 KB each). `osquery_es` has no file
//! replay: its source runs in this process against the osqueryd double of
//! tests/support (COUNT `es_process_events` rows, default 20,000), and only
//! its thread's CPU is reported, not osqueryd's cost of building the rows.
//! `linux_audit` and `proc_connector` are live sources: `benches/storm.rs`
//! measures them (root).
//!
//! Measured on a 2-core VM (nproc 2, "AMD EPYC" in /proc/cpuinfo) shared with
//! other jobs; the bench prints the machine it runs on.
#![cfg(unix)]

#[path = "../tests/support/mod.rs"]
mod support;

use kerberos_cache_access::sources::bsm::events::AUE_EXECVE;
use kerberos_cache_access::sources::bsm::parse::RecordReader;
use serde_json::{json, Value};
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};
use support::bsm::Writer;
use support::standalone::BIN;

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");
const SOURCES: [&str; 7] = [
    "eslogger",
    "eslogger_fork",
    "eslogger_exit",
    "eslogger_mixed",
    "bsm",
    "bsm_exec",
    "osquery_es",
];
const ES_EXEC: i64 = 9;
const ES_FORK: i64 = 11;
const ES_EXIT: i64 = 15;
/// Reads each line of argv[1] and parses it, nothing else.
const PYTHON_JSON: &str =
    "import json, sys\nwith open(sys.argv[1], 'rb') as f:\n    for line in f:\n        json.loads(line)\n";

/// What `wait4` says about one finished child.
#[derive(Clone, Copy)]
struct Usage {
    wall: Duration,
    cpu: Duration,
    peak_rss_kib: u64,
}

/// One measured run of the extension (or of Python) over one file.
struct Measure {
    label: String,
    events: u64,
    lines: u64,
    bytes: u64,
    usage: Usage,
}

impl Measure {
    fn cpu_ms_per_1000(&self) -> f64 {
        self.usage.cpu.as_secs_f64() * 1e6 / self.events.max(1) as f64
    }
    fn us_per_line(&self) -> f64 {
        self.usage.cpu.as_secs_f64() * 1e6 / self.lines.max(1) as f64
    }
    /// Bytes per CPU second (what one core gets through).
    fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.usage.cpu.as_secs_f64().max(1e-9)
    }
    /// Peak RSS, or n/a for a run measured in this process.
    fn rss(&self, unit: &str) -> String {
        match self.usage.peak_rss_kib {
            0 => "n/a".to_string(),
            kib if unit == "MiB" => format!("{:.1} MiB", kib as f64 / 1024.0),
            kib => format!("{kib} KiB"),
        }
    }
    fn print(&self) {
        println!(
            "{:<28} events {:>9} bytes {:>11} wall {:>7.3} s cpu {:>7.3} s  {:>8.2} ms/1000 events  {:>7.3} µs/line  {:>7.1} MB/s  peak RSS {}",
            self.label,
            self.events,
            self.bytes,
            self.usage.wall.as_secs_f64(),
            self.usage.cpu.as_secs_f64(),
            self.cpu_ms_per_1000(),
            self.us_per_line(),
            self.mb_per_s(),
            self.rss("KiB")
        );
    }
}

fn timeval(tv: libc::timeval) -> Duration {
    Duration::from_secs(u64::try_from(tv.tv_sec).unwrap_or(0))
        + Duration::from_micros(u64::try_from(tv.tv_usec).unwrap_or(0))
}

/// Runs `cmd` to its end, stdout counted and dropped, stderr into
/// `stderr_path`, and returns its rusage, or why it failed.
fn run_measured(mut cmd: Command, stderr_path: &Path) -> Result<(Usage, u64), String> {
    let stderr =
        File::create(stderr_path).map_err(|e| format!("{}: {e}", stderr_path.display()))?;
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .map_err(|e| format!("cannot start {:?}: {e}", cmd.get_program()))?;
    let pid = libc::pid_t::try_from(child.id()).map_err(|e| format!("pid: {e}"))?;
    let mut stdout = child
        .stdout
        .take()
        .ok_or_else(|| "no stdout pipe".to_string())?;
    // Count rows in another thread so a full pipe never stalls the child.
    let counter = std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        let mut lines = 0u64;
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            lines += memchr::memchr_iter(b'\n', &buf[..n]).count() as u64;
        }
        lines
    });
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain data, filled in by wait4.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: pid is our own unwaited child; both pointers are valid.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r == pid {
            break;
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(format!("wait4: {err}"));
        }
    }
    let wall = start.elapsed();
    // The child is reaped: `Child` must not wait again (dropping it does not).
    drop(child);
    let rows = counter.join().unwrap_or(0);
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        let how = if libc::WIFEXITED(status) {
            format!("exit code {}", libc::WEXITSTATUS(status))
        } else {
            format!("signal {}", libc::WTERMSIG(status))
        };
        let log = std::fs::read_to_string(stderr_path).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(5).collect();
        return Err(format!(
            "{:?} failed ({how}); stderr ends:\n  {}",
            cmd.get_program(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n  ")
        ));
    }
    // ru_maxrss is KiB on Linux, bytes on macOS.
    let maxrss = u64::try_from(ru.ru_maxrss).unwrap_or(0);
    let peak_rss_kib = if cfg!(target_os = "macos") {
        maxrss / 1024
    } else {
        maxrss
    };
    Ok((
        Usage {
            wall,
            cpu: timeval(ru.ru_utime) + timeval(ru.ru_stime),
            peak_rss_kib,
        },
        rows,
    ))
}

/// The extension replaying `file` as `kind`; checks that it read every line
/// it was given when its log says so.
fn run_extension(
    kind: &str,
    file: &Path,
    dir: &Path,
    expect_lines: Option<u64>,
) -> Result<Usage, String> {
    let state = dir.join("state");
    let cmd = support::standalone::source(&format!("{kind}:{}", file.display()), &state);
    let stderr = dir.join("stderr.log");
    let (usage, rows) = run_measured(cmd, &stderr)?;
    let _ = std::fs::remove_dir_all(&state);
    if rows > 0 {
        println!("  ({rows} row(s) printed)");
    }
    let log = std::fs::read_to_string(&stderr).unwrap_or_default();
    // The source's closing status (lines read, drift, drops), as a check
    // that the input was read as meant.
    if let Some(last) = log
        .lines()
        .rev()
        .find(|l| l.contains(&format!(" {kind}: ")))
    {
        let text = last.split_once("] ").map_or(last, |(_, t)| t);
        println!("  {text}");
    }
    if let Some(want) = expect_lines {
        // "... N line(s) read ..." in the replay's last status line.
        let read = log
            .lines()
            .rev()
            .find_map(|l| {
                l.split(" line(s) read")
                    .next()
                    .filter(|h| h.len() < l.len())
            })
            .and_then(|h| h.rsplit(' ').next())
            .and_then(|n| n.parse::<u64>().ok());
        match read {
            Some(n) if n != want => {
                return Err(format!("the extension read {n} line(s) of {want}"));
            }
            Some(_) => {}
            None => println!("  (the log does not say how many lines were read)"),
        }
    }
    Ok(usage)
}

/// Python's `json.loads` over every line of `file`.
fn run_python(file: &Path, dir: &Path) -> Result<Usage, String> {
    let mut cmd = Command::new("python3");
    cmd.arg("-c").arg(PYTHON_JSON).arg(file);
    run_measured(cmd, &dir.join("python.log")).map(|(usage, _)| usage)
}

fn python3_present() -> bool {
    Command::new("python3")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

// --- inputs --------------------------------------------------------------

fn fixture() -> Value {
    let path = Path::new(DATA).join("eslogger/exec-macos13.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("the vendored eslogger message is JSON")
}

fn set_pid(process: &mut Value, pid: u64, ppid: u64) {
    process["audit_token"]["pid"] = json!(pid);
    process["ppid"] = json!(ppid);
}

/// COUNT copies of the real exec message, one line each (as the issue
/// measured it).
fn write_eslogger_exec(path: &Path, count: u64) -> u64 {
    let line = serde_json::to_string(&fixture()).expect("serialize");
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path).expect("create input"));
    for _ in 0..count {
        out.write_all(line.as_bytes()).expect("write input");
        out.write_all(b"\n").expect("write input");
    }
    out.flush().expect("write input");
    count * (line.len() as u64 + 1)
}

#[derive(Clone, Copy)]
enum EsKind {
    Fork,
    Exec,
    Exit,
}

/// The lines of each synthetic eslogger source, repeated in this order.
fn pattern(source: &str) -> &'static [EsKind] {
    match source {
        "eslogger_fork" => &[EsKind::Fork],
        "eslogger_exit" => &[EsKind::Exit],
        // A shell forks a child that execs /bin/date and exits.
        _ => &[EsKind::Fork, EsKind::Exec, EsKind::Exit],
    }
}

/// COUNT lines of `kinds` in turn, built from the fixture's `process`
/// object, with a new pid per round and increasing sequence numbers.
fn write_eslogger_lines(path: &Path, count: u64, kinds: &[EsKind]) -> u64 {
    let exec = fixture();
    let shell = exec["process"].clone();
    let shell_pid = exec["process"]["ppid"].as_u64().unwrap_or(1);
    let mut envelope = exec.clone();
    if let Some(m) = envelope.as_object_mut() {
        m.shift_remove("event");
        m.shift_remove("process");
    }
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path).expect("create input"));
    let mut bytes = 0u64;
    for i in 0..count {
        let child_pid = 100_000 + i / kinds.len() as u64;
        let mut msg = envelope.clone();
        msg["global_seq_num"] = json!(1000 + i);
        msg["seq_num"] = json!(1000 + i);
        let mut child = shell.clone();
        set_pid(&mut child, child_pid, shell_pid);
        match kinds[(i % kinds.len() as u64) as usize] {
            EsKind::Fork => {
                let mut parent = shell.clone();
                set_pid(&mut parent, shell_pid, 1);
                msg["event_type"] = json!(ES_FORK);
                msg["event"] = json!({"fork": {"child": child}});
                msg["process"] = parent;
            }
            EsKind::Exec => {
                let mut m = exec.clone();
                m["global_seq_num"] = msg["global_seq_num"].clone();
                m["seq_num"] = msg["seq_num"].clone();
                m["event_type"] = json!(ES_EXEC);
                set_pid(&mut m["process"], child_pid, shell_pid);
                set_pid(&mut m["event"]["exec"]["target"], child_pid, shell_pid);
                msg = m;
            }
            EsKind::Exit => {
                msg["event_type"] = json!(ES_EXIT);
                msg["event"] = json!({"exit": {"stat": 0}});
                msg["process"] = child;
            }
        }
        let line = serde_json::to_string(&msg).expect("serialize");
        out.write_all(line.as_bytes()).expect("write input");
        out.write_all(b"\n").expect("write input");
        bytes += line.len() as u64 + 1;
    }
    out.flush().expect("write input");
    bytes
}

/// The vendored trails back to back until at least COUNT records; returns
/// (records, bytes).
fn write_bsm(path: &Path, count: u64) -> (u64, u64) {
    let mut one = Vec::new();
    for name in ["apple.bsm", "openbsm.bsm"] {
        let p = Path::new(DATA).join("bsm").join(name);
        one.extend(std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())));
    }
    let mut reader = RecordReader::new();
    reader.push(&one);
    reader.finish();
    let mut per_copy = 0u64;
    while reader.next_record().is_some() {
        per_copy += 1;
    }
    assert!(per_copy > 0, "no records in the vendored BSM trails");
    let copies = count.div_ceil(per_copy);
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path).expect("create input"));
    for _ in 0..copies {
        out.write_all(&one).expect("write input");
    }
    out.flush().expect("write input");
    (copies * per_copy, copies * one.len() as u64)
}

/// One execve record as macOS's auditpipe gives it with the `argv` and
/// `arge` policies: header32, exec args and env, the path as given and
/// resolved, attr32, subject32_ex, return32, trailer.
fn bsm_execve(pid: u32, sec: u32, argv: &[&str], env: &[&str], path: &str) -> Vec<u8> {
    let argc = u32::try_from(argv.len()).expect("argc");
    Writer::header32(AUE_EXECVE, sec, 0)
        .exec_args(argc, argv)
        .exec_env(env)
        .path(path)
        .path(path)
        .attr32(0o100_755, 0, 0)
        .subject32_ex([501, 501, 20, 501, 20], pid, 100_019)
        .return32(0, 0)
        .finish()
}

/// COUNT execve records of the real message's command (`/bin/date` with its
/// argv and its 30-variable environment), as macOS's auditpipe would give
/// them with the `argv` and `arge` policies; a new pid each.
fn write_bsm_exec(path: &Path, count: u64) -> u64 {
    let msg = fixture();
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let argv = strings(&msg["event"]["exec"]["args"]);
    let env = strings(&msg["event"]["exec"]["env"]);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let env: Vec<&str> = env.iter().map(String::as_str).collect();
    let exe = msg["event"]["exec"]["target"]["executable"]["path"]
        .as_str()
        .unwrap_or("/bin/date")
        .to_string();
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path).expect("create input"));
    let mut bytes = 0u64;
    for i in 0..count {
        let pid = 100_000 + u32::try_from(i % 4_000_000).unwrap_or(0);
        let rec = bsm_execve(pid, 1_683_469_544 + (i / 1000) as u32, &argv, &env, &exe);
        out.write_all(&rec).expect("write input");
        bytes += rec.len() as u64;
    }
    out.flush().expect("write input");
    bytes
}

// --- runs ----------------------------------------------------------------

/// A finished comparison, for the closing table.
struct Row {
    source: String,
    ext: Measure,
    python: Option<Measure>,
}

/// Best (least CPU) of `runs` runs of `f`.
fn best_of(runs: u32, mut f: impl FnMut() -> Result<Usage, String>) -> Result<Usage, String> {
    let mut best: Option<Usage> = None;
    for _ in 0..runs.max(1) {
        let u = f()?;
        if best.as_ref().is_none_or(|b| u.cpu < b.cpu) {
            best = Some(u);
        }
    }
    best.ok_or_else(|| "no run".to_string())
}

fn eslogger(source: &str, count: u64, runs: u32, dir: &Path) -> Result<Row, String> {
    let file = dir.join(format!("{source}.jsonl"));
    let bytes = if source == "eslogger" {
        write_eslogger_exec(&file, count)
    } else {
        write_eslogger_lines(&file, count, pattern(source))
    };
    let usage = best_of(runs, || run_extension("eslogger", &file, dir, Some(count)))?;
    let ext = Measure {
        label: format!("{source} (extension)"),
        events: count,
        lines: count,
        bytes,
        usage,
    };
    ext.print();
    let python = if python3_present() {
        let p = Measure {
            label: format!("{source} (python json.loads)"),
            events: count,
            lines: count,
            bytes,
            usage: best_of(runs, || run_python(&file, dir))?,
        };
        p.print();
        println!(
            "  extension / python: cpu {:.3}, wall {:.3} (target cpu ≤ 0.15)",
            ext.usage.cpu.as_secs_f64() / p.usage.cpu.as_secs_f64().max(1e-9),
            ext.usage.wall.as_secs_f64() / p.usage.wall.as_secs_f64().max(1e-9)
        );
        Some(p)
    } else {
        println!("SKIPPED: python3 not found (no json.loads comparison)");
        None
    };
    let _ = std::fs::remove_file(&file);
    Ok(Row {
        source: source.to_string(),
        ext,
        python,
    })
}

fn bsm(source: &str, count: u64, runs: u32, dir: &Path) -> Result<Row, String> {
    let file = dir.join(format!("{source}.bsm"));
    let (records, bytes) = if source == "bsm_exec" {
        (count, write_bsm_exec(&file, count))
    } else {
        write_bsm(&file, count)
    };
    let usage = best_of(runs, || run_extension("bsm", &file, dir, None))?;
    let ext = Measure {
        label: format!("{source} (extension)"),
        events: records,
        lines: records,
        bytes,
        usage,
    };
    ext.print();
    let _ = std::fs::remove_file(&file);
    Ok(Row {
        source: source.to_string(),
        ext,
        python: None,
    })
}

/// The frozen clock of the in-process osquery_es run, so its SQL is known.
const OSQ_NOW: i64 = 1_700_000_600;

fn osq_now() -> i64 {
    OSQ_NOW
}

fn thread_cpu() -> Duration {
    // SAFETY: timespec is plain data, filled in by clock_gettime.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: a valid clock id and pointer.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

/// `osquery_es` has no file replay: its source runs here, in process,
/// against the osqueryd double of tests/support, which answers the first
/// poll with COUNT es_process_events rows of the real message's `/bin/date`.
/// Only the source thread's CPU is counted (the double's Thrift encoding is
/// not); osqueryd's own cost of building the rows is not in this figure.
fn osquery_es(count: u64, runs: u32) -> Result<Row, String> {
    use kerberos_cache_access::engine::Engine;
    use kerberos_cache_access::event::SourceKind;
    use kerberos_cache_access::sources::osquery_es::{exec_sql, open_with, Settings};
    use kerberos_cache_access::sources::Source;
    use kerberos_cache_access::store::StoreConfig;
    use kerberos_cache_access::users::FixedUsers;
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let msg = fixture();
    let exec = &msg["event"]["exec"];
    let hex = |b: &[u8]| hex::encode_upper(b);
    let mut cmdline = String::new();
    for a in exec["args"].as_array().into_iter().flatten() {
        cmdline.push_str(a.as_str().unwrap_or(""));
        cmdline.push(' ');
    }
    let text = |v: &Value| v.as_str().unwrap_or("").to_string();
    let backlog = 600;
    let row_time = OSQ_NOW - 10;
    let rows: Vec<BTreeMap<String, String>> = (0..count)
        .map(|i| {
            [
                ("time", row_time.to_string()),
                ("eid", format!("{i:010}")),
                ("pid", (100_000 + i).to_string()),
                ("parent", "14518".to_string()),
                ("uid", "501".to_string()),
                ("gid", "20".to_string()),
                ("egid", "20".to_string()),
                ("platform_binary", "1".to_string()),
                (
                    "cmdline_count",
                    exec["args"].as_array().map_or(0, Vec::len).to_string(),
                ),
                (
                    "path_hex",
                    hex(text(&exec["target"]["executable"]["path"]).as_bytes()),
                ),
                ("cmdline_hex", hex(cmdline.as_bytes())),
                ("cwd_hex", hex(text(&exec["cwd"]["path"]).as_bytes())),
                (
                    "signing_id_hex",
                    hex(text(&exec["target"]["signing_id"]).as_bytes()),
                ),
                ("team_id_hex", String::new()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect()
        })
        .collect();
    let bytes: u64 = rows
        .iter()
        .flat_map(|r| r.iter())
        .map(|(k, v)| (k.len() + v.len()) as u64)
        .sum();
    let mut best: Option<Usage> = None;
    for _ in 0..runs.max(1) {
        let dir = support::socket_dir();
        let socket = dir.path().join("osquery.em");
        let fake = support::FakeOsqueryd::start(&socket);
        fake.answer_es_checks_healthy(OSQ_NOW);
        fake.set_query_rows(&exec_sql(OSQ_NOW - backlog - 1), rows.clone());
        // Later polls: nothing new.
        fake.set_query_rows(&exec_sql(row_time - 1), Vec::new());
        let settings = Settings {
            poll: Duration::from_millis(50),
            timeout: Duration::from_secs(30),
            backlog: Duration::from_secs(backlog as u64),
            clock: osq_now,
        };
        let mut source = open_with(&socket, settings).map_err(|e| format!("osquery_es: {e}"))?;
        let engine = Arc::new(Engine::new(
            StoreConfig::default(),
            Box::new(FixedUsers(vec![(501, "alice".into())])),
        ));
        let stop = Arc::new(AtomicBool::new(false));
        let start = Instant::now();
        let thread = {
            let engine = Arc::clone(&engine);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let before = thread_cpu();
                let result = source.run(&engine, &stop).map_err(|e| format!("{e:#}"));
                result.map(|()| thread_cpu().saturating_sub(before))
            })
        };
        let seen = || {
            engine
                .status()
                .get(SourceKind::OsqueryEs)
                .map_or(0, |s| s.events_seen)
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while seen() < count && Instant::now() < deadline && !thread.is_finished() {
            std::thread::sleep(Duration::from_millis(5));
        }
        let wall = start.elapsed();
        stop.store(true, Ordering::Relaxed);
        let cpu = thread
            .join()
            .map_err(|_| "the osquery_es thread panicked".to_string())??;
        if seen() < count {
            return Err(format!(
                "osquery_es delivered {} of {count} rows: {:?}",
                seen(),
                engine.status().get(SourceKind::OsqueryEs)
            ));
        }
        let u = Usage {
            wall,
            cpu,
            peak_rss_kib: 0,
        };
        if best.as_ref().is_none_or(|b| u.cpu < b.cpu) {
            best = Some(u);
        }
    }
    let usage = best.ok_or_else(|| "no run".to_string())?;
    let ext = Measure {
        label: "osquery_es (in process)".to_string(),
        events: count,
        lines: count,
        bytes,
        usage,
    };
    ext.print();
    Ok(Row {
        source: "osquery_es".to_string(),
        ext,
        python: None,
    })
}

fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".to_string());
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|t| t.split_whitespace().next().map(str::to_string))
        .map_or_else(String::new, |l| format!(", load average {l}"));
    format!("{cores} cores, {model}{load}")
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let which = args.first().map_or("all", String::as_str);
    // "default" keeps each source's own COUNT (to give RUNS for `all`).
    let count: Option<u64> = match args.get(1).filter(|c| *c != "default").map(|c| c.parse()) {
        None => None,
        Some(Ok(c)) if c > 0 => Some(c),
        Some(_) => {
            eprintln!("replay: COUNT must be a positive number");
            return ExitCode::from(2);
        }
    };
    let runs: u32 = args.get(2).and_then(|r| r.parse().ok()).unwrap_or(1);
    let sources: Vec<&str> = match which {
        "all" => SOURCES.to_vec(),
        s if SOURCES.contains(&s) => vec![s],
        other => {
            eprintln!(
                "replay: unknown source {other:?} ({}, all)",
                SOURCES.join(", ")
            );
            return ExitCode::from(2);
        }
    };
    if !Path::new(BIN).is_file() {
        eprintln!("replay: the extension binary {BIN} is missing");
        return ExitCode::FAILURE;
    }
    let dir = tempfile::Builder::new()
        .prefix("kca-replay-")
        .tempdir()
        .expect("temp dir");
    println!("machine: {}", machine());
    println!("binary: {BIN}");
    let mut rows = Vec::new();
    let mut failed = false;
    for source in sources {
        let result = match source {
            "bsm" => bsm(source, count.unwrap_or(1_000_000), runs, dir.path()),
            "bsm_exec" => bsm(source, count.unwrap_or(100_000), runs, dir.path()),
            "osquery_es" => osquery_es(count.unwrap_or(20_000), runs),
            s => eslogger(s, count.unwrap_or(100_000), runs, dir.path()),
        };
        match result {
            Ok(row) => rows.push(row),
            Err(e) => {
                eprintln!("replay: {source}: {e}");
                failed = true;
            }
        }
    }
    print_table(&rows);
    println!(
        "\nlinux_audit, proc_connector (live, root): sudo cargo bench --bench storm -- linux_audit 1400\n\
         osquery_es is measured in this process (the source thread's CPU, no RSS), without \
         osqueryd's own cost of building the rows"
    );
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn print_table(rows: &[Row]) {
    println!("\nmachine: {}\n", machine());
    println!("| source | input | events | CPU ms / 1,000 events | µs / line | MB/s | wall s | peak RSS | Python json.loads CPU s | ext / Python |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        let (py, ratio) = match &r.python {
            Some(p) => (
                format!("{:.2}", p.usage.cpu.as_secs_f64()),
                format!(
                    "{:.3}",
                    r.ext.usage.cpu.as_secs_f64() / p.usage.cpu.as_secs_f64().max(1e-9)
                ),
            ),
            None => ("n/a".to_string(), "n/a".to_string()),
        };
        println!(
            "| {} | {:.1} MB | {} | {:.2} | {:.2} | {:.0} | {:.2} | {} | {} | {} |",
            r.source,
            r.ext.bytes as f64 / 1e6,
            r.ext.events,
            r.ext.cpu_ms_per_1000(),
            r.ext.us_per_line(),
            r.ext.mb_per_s(),
            r.ext.usage.wall.as_secs_f64(),
            r.ext.rss("MiB"),
            py,
            ratio
        );
    }
}
