//! The real extension binary against the osqueryd double: launched with
//! osqueryd's argv, registered, called the way osqueryd calls tables, and
//! stopped every way osqueryd stops it.

mod support;

use kerberos_cache_access::osquery::client::{PluginRows, Status};
use kerberos_cache_access::schema::{Column, EXEC_COLUMNS, STATUS_COLUMNS};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{bounds, procs};
use support::{
    request, sdk_accepted, socket_dir, spawn_extension, wait_exit, Extension, FakeOsqueryd,
    LaunchOptions, Registration,
};

const NAME: &str = "kerberos_cache_access";
const EXEC_TABLE: &str = "kerberos_cache_access";
const STATUS_TABLE: &str = "kerberos_cache_access_status";
const INTERVAL: u64 = 1;
const TIMEOUT: u64 = 3;

fn launch(verbose: bool, extra: &[&str]) -> LaunchOptions {
    LaunchOptions {
        verbose,
        timeout: TIMEOUT,
        interval: INTERVAL,
        extra: extra.iter().map(|s| s.to_string()).collect(),
    }
}

/// Waits for the extension to register and then to listen on its own
/// socket (osqueryd waits up to --timeout for that); on failure shows its
/// stderr.
fn registered(fake: &FakeOsqueryd, ext: &mut Extension) -> Registration {
    let within = Duration::from_secs(TIMEOUT + 5);
    let Some(reg) = fake.wait_for(NAME, within) else {
        panic!(
            "no registration within {within:?}; exit: {:?}; stderr:\n{}",
            ext.child.try_wait(),
            ext.stderr()
        )
    };
    assert!(
        fake.wait_ext_socket(reg.uuid, Duration::from_secs(TIMEOUT)),
        "registered as {} but not listening on {}; stderr:\n{}",
        reg.uuid,
        fake.ext_socket(reg.uuid).display(),
        ext.stderr()
    );
    reg
}

/// Waits until the extension has finished starting up: past its own check
/// that osqueryd accepted it, and into its periodic health checks. Seen from
/// osqueryd's side: two more extensions() calls after it began listening
/// (the first may still belong to the start-up check).
fn settled(fake: &FakeOsqueryd, ext: &mut Extension) -> i64 {
    let uuid = registered(fake, ext).uuid;
    let seen = fake.call_count("extensions");
    assert!(
        fake.wait_call_count(
            "extensions",
            seen + 2,
            Duration::from_secs(3 * INTERVAL + 2)
        ),
        "no health checks (calls: {:?}); stderr:\n{}",
        fake.calls(),
        ext.stderr()
    );
    uuid
}

/// A fake osqueryd on `dir`/osquery.em with the extension (snapshot source)
/// settled into it; the uuid is the extension's.
fn start_settled(dir: &Path, verbose: bool) -> (FakeOsqueryd, Extension, i64) {
    let sock = dir.join("osquery.em");
    let fake = FakeOsqueryd::start(&sock);
    let mut ext = spawn_extension(&sock, &launch(verbose, &["--source", "snapshot"]));
    let uuid = settled(&fake, &mut ext);
    (fake, ext, uuid)
}

/// The route info osqueryd expects for `columns`, in declaration order.
fn expected_routes(columns: &[Column]) -> PluginRows {
    columns
        .iter()
        .map(|c| {
            request(&[
                ("id", "column"),
                ("name", c.name),
                ("type", c.ty.as_str()),
                ("op", &c.options.to_string()),
            ])
        })
        .collect()
}

/// An osquery query context as `TablePlugin::setRequestFromContext`
/// serializes it: one constraint entry per column, sorted by name.
fn context(columns: &[Column], constraints: &[(&str, u32, &str)]) -> String {
    let mut by_name: Vec<&Column> = columns.iter().collect();
    by_name.sort_by_key(|c| c.name);
    let entries: Vec<serde_json::Value> = by_name
        .iter()
        .map(|c| {
            let list: Vec<serde_json::Value> = constraints
                .iter()
                .filter(|(name, _, _)| *name == c.name)
                .map(|(_, op, expr)| serde_json::json!({"op": op, "expr": expr}))
                .collect();
            serde_json::json!({"name": c.name, "list": list, "affinity": c.ty.as_str()})
        })
        .collect();
    let used: Vec<&str> = columns.iter().map(|c| c.name).collect();
    let bitset: u64 = (1u64 << columns.len()) - 1;
    serde_json::json!({"constraints": entries, "colsUsed": used, "colsUsedBitset": bitset})
        .to_string()
}

fn generate(fake: &FakeOsqueryd, uuid: i64, table: &str, ctx: &str) -> (Status, PluginRows) {
    fake.ext_call(
        uuid,
        "table",
        table,
        request(&[("action", "generate"), ("context", ctx)]),
    )
    .unwrap_or_else(|e| panic!("generate on {table}: {e:#}"))
}

/// Checks everything osqueryd sees of a freshly started extension.
fn check_registration_and_calls(verbose: bool) {
    let dir = socket_dir();
    let sock = dir.path().join("osquery.em");
    let mut ext = spawn_extension(&sock, &launch(verbose, &["--source", "snapshot"]));
    // osqueryd's manager comes up after the extension: it must wait.
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        matches!(ext.child.try_wait(), Ok(None)),
        "exited before the socket appeared: {}",
        ext.stderr()
    );
    let fake = FakeOsqueryd::start(&sock);
    let reg = registered(&fake, &mut ext);
    let stderr = ext.stderr();

    assert_eq!(reg.info.name, NAME);
    assert!(
        sdk_accepted(&reg.info.sdk_version),
        "{:?}",
        reg.info.sdk_version
    );
    // osquery-rust-ng also sends empty "config" and "logger" registries,
    // which osqueryd accepts; only tables may be offered.
    for (registry, items) in &reg.registry {
        assert!(registry == "table" || items.is_empty(), "{reg:?}");
    }
    assert_eq!(
        reg.registry["table"].keys().collect::<Vec<_>>(),
        [EXEC_TABLE, STATUS_TABLE]
    );
    assert_eq!(
        reg.table_routes(EXEC_TABLE).unwrap(),
        &expected_routes(EXEC_COLUMNS)
    );
    assert_eq!(
        reg.table_routes(STATUS_TABLE).unwrap(),
        &expected_routes(STATUS_COLUMNS)
    );

    let uuid = reg.uuid;
    assert_eq!(fake.ext_ping(uuid).unwrap().code, 0);

    // columns over RPC, as osqueryd asks when it opens a new SQLite connection.
    for (table, columns) in [(EXEC_TABLE, EXEC_COLUMNS), (STATUS_TABLE, STATUS_COLUMNS)] {
        let (st, rows) = fake
            .ext_call(uuid, "table", table, request(&[("action", "columns")]))
            .unwrap();
        assert_eq!(st.code, 0, "{st:?}");
        assert_eq!(rows, expected_routes(columns), "{table}");
    }

    let (st, rows) = generate(&fake, uuid, EXEC_TABLE, &context(EXEC_COLUMNS, &[]));
    assert_eq!(st.code, 0, "{st:?}");
    // osqueryd ignores unknown keys; sending only real columns keeps it honest.
    for row in &rows {
        for key in row.keys() {
            assert!(EXEC_COLUMNS.iter().any(|c| c.name == key), "{key}: {row:?}");
        }
    }

    // time > far future: nothing can match.
    let ctx = context(EXEC_COLUMNS, &[("time", 4, "4102444800")]);
    let (st, rows) = generate(&fake, uuid, EXEC_TABLE, &ctx);
    assert_eq!(st.code, 0, "{st:?}");
    assert!(rows.is_empty(), "{rows:?}");

    let (st, _) = generate(&fake, uuid, EXEC_TABLE, "{oops");
    assert_ne!(st.code, 0, "{st:?}");
    assert!(!st.message.is_empty(), "{st:?}");
    assert!(st.message.contains("context"), "{st:?}");

    let (st, rows) = generate(&fake, uuid, STATUS_TABLE, &context(STATUS_COLUMNS, &[]));
    assert_eq!(st.code, 0, "{st:?}");
    let snapshot = rows
        .iter()
        .find(|r| r.get("source").map(String::as_str) == Some("snapshot"))
        .unwrap_or_else(|| panic!("no snapshot row in {rows:?}"));
    assert_eq!(snapshot["state"], "active", "{snapshot:?}");

    assert!(
        matches!(ext.child.try_wait(), Ok(None)),
        "extension died: {}",
        ext.stderr()
    );
    // --verbose (osqueryd passes it when verbose itself) turns on debug logs.
    assert_eq!(stderr.contains("DEBUG"), verbose, "stderr:\n{stderr}");
}

#[test]
fn registers_after_late_socket_verbose() {
    check_registration_and_calls(true);
}

#[test]
fn registers_after_late_socket_quiet() {
    check_registration_and_calls(false);
}

/// A harmless stand-in for Elastic's red-team `kcc copy_cred_cache`: /bin/sh
/// copied to `<dir>/kcc`, running two commands so the shell stays alive.
fn start_fake_kcc(dir: &Path) -> Child {
    let kcc = procs::copy_exe("/bin/sh", &dir.join("kcc"));
    procs::spawn_retrying(
        Command::new(&kcc)
            .args(["-c", "sleep 60; :", "copy_cred_cache"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn snapshot_reports_kcc_started_before_the_extension() {
    let dir = socket_dir();
    let kcc = KillOnDrop(start_fake_kcc(dir.path()));
    let pid = kcc.0.id().to_string();
    let sock = dir.path().join("osquery.em");
    let fake = FakeOsqueryd::start(&sock);
    let mut ext = spawn_extension(&sock, &launch(true, &["--source", "snapshot"]));
    let uuid = registered(&fake, &mut ext).uuid;

    // Ask for the pid the way `WHERE pid = N` reaches the extension.
    let ctx = context(EXEC_COLUMNS, &[("pid", 2, &pid)]);
    let deadline = Instant::now() + Duration::from_secs(5);
    let row = loop {
        let (st, rows) = generate(&fake, uuid, EXEC_TABLE, &ctx);
        assert_eq!(st.code, 0, "{st:?}");
        if let Some(r) = rows.into_iter().find(|r| r.get("pid") == Some(&pid)) {
            break r;
        }
        assert!(
            Instant::now() < deadline,
            "no row for pid {pid}; stderr:\n{}",
            ext.stderr()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(row["name"], "kcc", "{row:?}");
    assert_eq!(row["source"], "snapshot", "{row:?}");
    assert_eq!(row["indicator"], "credential_cache_copy", "{row:?}");
    assert_eq!(
        row["technique"], "T1003,T1558,T1558.003,T1558.005",
        "{row:?}"
    );
    assert!(row["args"].contains("copy_cred_cache"), "{row:?}");
    let args: serde_json::Value = serde_json::from_str(&row["args"])
        .unwrap_or_else(|e| panic!("args is not JSON ({e}): {:?}", row["args"]));
    assert!(args.is_array(), "{args}");
    drop(kcc);
}

#[test]
fn exits_within_two_intervals_when_osqueryd_goes_away() {
    let dir = socket_dir();
    let (fake, mut ext, uuid) = start_settled(dir.path(), true);
    assert_eq!(fake.ext_ping(uuid).unwrap().code, 0);

    let gone = Instant::now();
    fake.go_away();
    let bound = Duration::from_secs(2 * INTERVAL);
    let status = ext.wait_exit(bound);
    let took = gone.elapsed();
    let status = status.unwrap_or_else(|| {
        panic!(
            "still running {took:?} after osqueryd went away (bound {bound:?}); stderr:\n{}",
            ext.stderr()
        )
    });
    eprintln!("exited {took:?} after osqueryd went away");
    // Like the C++ SDK: the core going away is not the extension's failure.
    assert!(status.success(), "{status:?}; stderr:\n{}", ext.stderr());
}

#[test]
fn exits_when_osqueryd_drops_the_registration() {
    // osqueryd drops an extension after one failed health check while the
    // process lives on; it must notice it is no longer listed and exit.
    let dir = socket_dir();
    let (fake, mut ext, uuid) = start_settled(dir.path(), true);
    assert_eq!(fake.ext_ping(uuid).unwrap().code, 0);

    assert!(fake.forget(uuid));
    let bound = Duration::from_secs(2 * INTERVAL);
    let status = ext
        .wait_exit(bound)
        .unwrap_or_else(|| panic!("still running after being dropped; {}", ext.stderr()));
    assert!(!status.success(), "{status:?}; stderr:\n{}", ext.stderr());
}

#[test]
fn duplicate_registration_exits_nonzero() {
    let dir = socket_dir();
    let sock = dir.path().join("osquery.em");
    let fake = FakeOsqueryd::start(&sock);
    let stale = fake.preregister(NAME);
    // A long --timeout: the refusal must end the run at once, not after it.
    let opts = LaunchOptions {
        timeout: 30,
        ..launch(true, &["--source", "snapshot"])
    };
    let started = Instant::now();
    let mut ext = spawn_extension(&sock, &opts);
    let status = ext
        .wait_exit(Duration::from_secs(10))
        .unwrap_or_else(|| panic!("did not exit; stderr:\n{}", ext.stderr()));
    let took = started.elapsed();
    let stderr = ext.stderr();
    assert!(!status.success(), "{status:?}; stderr:\n{stderr}");
    assert_eq!(status.code(), Some(1), "{stderr}");
    // Ended by the refusal (then bounded shutdown), not by the 30 s timeout.
    assert!(
        took < bounds::osquery_exit(),
        "took {took:?}; stderr:\n{stderr}"
    );
    assert!(
        stderr.contains("Duplicate") || stderr.contains("already registered"),
        "{stderr}"
    );
    // No listening socket is left behind for the refused registration.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["osquery.em"], "{left:?}");
    // The stale registration is left alone.
    let live: Vec<i64> = fake.registrations().iter().map(|r| r.uuid).collect();
    assert_eq!(live, [stale]);
}

fn check_signal_deregisters(signal: &str) {
    let dir = socket_dir();
    let (fake, mut ext, uuid) = start_settled(dir.path(), true);
    assert_eq!(fake.ext_ping(uuid).unwrap().code, 0);

    ext.signal(signal);
    let status = ext
        .wait_exit(bounds::osquery_exit())
        .unwrap_or_else(|| panic!("SIG{signal}: did not exit; stderr:\n{}", ext.stderr()));
    assert!(
        status.success(),
        "SIG{signal}: {status:?}; stderr:\n{}",
        ext.stderr()
    );
    assert!(
        fake.deregistered().contains(&uuid),
        "SIG{signal}: uuid {uuid} not deregistered ({:?}); stderr:\n{}",
        fake.deregistered(),
        ext.stderr()
    );
    assert!(fake.registrations().is_empty());
    assert!(
        !fake.ext_socket(uuid).exists(),
        "SIG{signal}: extension socket left behind"
    );
}

#[test]
fn sigterm_deregisters_and_exits_zero() {
    check_signal_deregisters("TERM");
}

#[test]
fn sigint_deregisters_and_exits_zero() {
    check_signal_deregisters("INT");
}

#[test]
fn sigterm_ends_the_process_within_five_seconds_against_a_hung_osqueryd() {
    use kerberos_cache_access::osquery::SHUTDOWN_BOUND;
    // The promise, and our own bound on shutdown work.
    assert!(SHUTDOWN_BOUND < Duration::from_secs(5));
    let dir = socket_dir();
    let (fake, mut ext, _) = start_settled(dir.path(), true);
    // osqueryd keeps its socket but answers nothing any more.
    fake.hang();
    let signalled = Instant::now();
    ext.signal("TERM");
    let status = ext
        .wait_exit(bounds::osquery_exit())
        .unwrap_or_else(|| panic!("still running after SIGTERM; {}", ext.stderr()));
    let took = signalled.elapsed();
    assert!(status.success(), "{status:?}; stderr:\n{}", ext.stderr());
    // Process start-up and teardown around the bound are milliseconds.
    assert!(
        took <= SHUTDOWN_BOUND + Duration::from_millis(500),
        "{took:?}"
    );
}

#[test]
fn shutdown_call_stops_the_extension() {
    // What osqueryd sends every extension when its manager stops.
    let dir = socket_dir();
    let (fake, mut ext, uuid) = start_settled(dir.path(), true);
    fake.ext_shutdown(uuid).unwrap();
    let status = ext
        .wait_exit(Duration::from_secs(2 * INTERVAL) + bounds::osquery_exit())
        .unwrap_or_else(|| panic!("did not exit after shutdown(); {}", ext.stderr()));
    assert!(
        status.success(),
        "{status:?}; deregistered: {:?}; calls: {:?}; stderr:\n{}",
        fake.deregistered(),
        fake.calls(),
        ext.stderr()
    );
}

#[test]
fn missing_socket_exits_nonzero_after_timeout() {
    let dir = socket_dir();
    let sock = dir.path().join("osquery.em");
    let opts = LaunchOptions {
        timeout: 2,
        ..launch(false, &["--source", "snapshot"])
    };
    let started = Instant::now();
    let mut ext = spawn_extension(&sock, &opts);
    let status = wait_exit(&mut ext.child, Duration::from_secs(opts.timeout + 5))
        .unwrap_or_else(|| panic!("did not give up; stderr:\n{}", ext.stderr()));
    let took = started.elapsed();
    let stderr = ext.stderr();
    assert!(!status.success(), "{status:?}; stderr:\n{stderr}");
    assert!(
        took >= Duration::from_millis(opts.timeout * 1000 - 300),
        "gave up after {took:?}, before --timeout"
    );
    assert!(
        took < Duration::from_secs(opts.timeout + 3),
        "took {took:?}"
    );
    assert!(stderr.contains(&*sock.to_string_lossy()), "{stderr}");
}

#[test]
fn sdk_gate_matches_osqueryd_for_what_we_send() {
    // Guards the double's gate itself against the values SDKs really send.
    let sent: BTreeMap<&str, bool> = BTreeMap::from([
        ("Unknown", true), // osquery-rust-ng
        ("", true),        // osquery-go
        ("3.0.7", true),   // osquery-python
        ("0.1.0", false),
    ]);
    for (v, ok) in sent {
        assert_eq!(sdk_accepted(v), ok, "{v:?}");
    }
}

/// A `registerExtension` call of 63 bytes whose registry holds a list that
/// announces 0x7fffffff maps: thrift < 0.23 reserved 51 GB for it and
/// aborted the process (CVE-2026-43868).
fn huge_list_message() -> Vec<u8> {
    let mut m = vec![0x80, 0x01, 0x00, 0x01]; // strict header, CALL
    m.extend(17i32.to_be_bytes());
    m.extend(b"registerExtension");
    m.extend(1i32.to_be_bytes()); // sequence number
    m.extend([13, 0, 2]); // field 2: map (registry)
    m.extend([11, 13]);
    m.extend(1i32.to_be_bytes());
    m.extend(5i32.to_be_bytes());
    m.extend(b"table");
    m.extend([11, 15]);
    m.extend(1i32.to_be_bytes());
    m.extend(1i32.to_be_bytes());
    m.extend(b"t");
    m.push(13); // list of maps ...
    m.extend(i32::MAX.to_be_bytes()); // ... of 0x7fffffff elements
    assert_eq!(m.len(), 63);
    m
}

/// A `call` whose request map announces `size` entries.
fn call_with_map_size(size: i32) -> Vec<u8> {
    let mut m = vec![0x80, 0x01, 0x00, 0x01];
    m.extend(4i32.to_be_bytes());
    m.extend(b"call");
    m.extend(7i32.to_be_bytes());
    m.extend([13, 0, 3, 11, 11]);
    m.extend(size.to_be_bytes());
    m
}

/// A `call` whose registry string announces `len` bytes.
fn call_with_string_len(len: i32) -> Vec<u8> {
    let mut m = vec![0x80, 0x01, 0x00, 0x01];
    m.extend(4i32.to_be_bytes());
    m.extend(b"call");
    m.extend(7i32.to_be_bytes());
    m.extend([11, 0, 1]);
    m.extend(len.to_be_bytes());
    m
}

/// Sends raw bytes on a fresh connection and reads whatever comes back
/// until the extension closes the connection (or 5 s pass).
fn send_raw(path: &Path, bytes: &[u8]) -> Vec<u8> {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(path).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.write_all(bytes);
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut back = Vec::new();
    let _ = s.read_to_end(&mut back);
    back
}

/// Resident set size of `pid` in KiB (Linux).
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[test]
fn hostile_messages_leave_the_extension_serving() {
    let dir = socket_dir();
    let (fake, mut ext, uuid) = start_settled(dir.path(), false);
    let path = fake.ext_socket(uuid);
    let alive = |ext: &mut Extension, what: &str| {
        assert!(
            matches!(ext.child.try_wait(), Ok(None)),
            "died after {what}; stderr:\n{}",
            ext.stderr()
        );
        assert_eq!(fake.ext_ping(uuid).unwrap().code, 0, "after {what}");
    };

    send_raw(&path, &huge_list_message());
    alive(&mut ext, "the 63-byte registerExtension");
    for (what, bytes) in [
        ("a negative map size", call_with_map_size(-1)),
        ("a huge map size", call_with_map_size(i32::MAX)),
        ("a negative string length", call_with_string_len(-2)),
        ("a huge string length", call_with_string_len(i32::MAX)),
        (
            "an old-style header with a huge name",
            vec![0x7f, 0xff, 0xff, 0xf0, 1],
        ),
        ("a bad version", vec![0x80, 0x02, 0x00, 0x01, 0, 0, 0, 0]),
    ] {
        send_raw(&path, &bytes);
        alive(&mut ext, what);
    }

    // 3,000 of them (thrift 0.17 grew RSS from 4.5 to 41 MB with this),
    // then back near the baseline once they are done.
    let pid = ext.pid();
    let before = rss_kib(pid);
    let bad = call_with_map_size(-1);
    for _ in 0..3000 {
        send_raw(&path, &bad);
    }
    alive(&mut ext, "3,000 negative sizes");
    std::thread::sleep(Duration::from_millis(300));
    if let (Some(before), Some(after)) = (before, rss_kib(pid)) {
        eprintln!("RSS {before} KiB before, {after} KiB after 3,000 bad messages");
        assert!(
            after < before + 5 * 1024,
            "RSS grew from {before} to {after} KiB"
        );
    }
    // A real call still works, and nothing was logged per message above
    // debug level.
    let (st, _) = generate(&fake, uuid, EXEC_TABLE, &context(EXEC_COLUMNS, &[]));
    assert_eq!(st.code, 0, "{st:?}");
    let stderr = ext.stderr();
    assert!(
        stderr.lines().count() < 50,
        "{} lines logged",
        stderr.lines().count()
    );
}

/// Times one call; panics with the extension's stderr when it fails.
fn timed<T>(ext: &Extension, what: &str, f: impl FnOnce() -> anyhow::Result<T>) -> Duration {
    let t = Instant::now();
    if let Err(e) = f() {
        panic!("{what} failed: {e:#}; stderr:\n{}", ext.stderr());
    }
    t.elapsed()
}

fn hold_idle(path: &Path, n: usize) -> Vec<std::os::unix::net::UnixStream> {
    (0..n)
        .map(|i| {
            std::os::unix::net::UnixStream::connect(path)
                .unwrap_or_else(|e| panic!("idle connection {i}: {e}"))
        })
        .collect()
}

#[test]
fn idle_connections_do_not_starve_calls() {
    let dir = socket_dir();
    let (fake, mut ext, uuid) = start_settled(dir.path(), false);
    let path = fake.ext_socket(uuid);
    let ctx = context(EXEC_COLUMNS, &[]);

    // 100 connections that never send a byte (thrift 0.17's pool of 10
    // workers was exhausted by 10).
    let idle = hold_idle(&path, 100);
    std::thread::sleep(Duration::from_millis(100));
    let mut pings = Vec::new();
    let mut generates = Vec::new();
    for _ in 0..5 {
        pings.push(timed(&ext, "ping", || fake.ext_ping(uuid)));
        generates.push(timed(&ext, "generate", || {
            fake.ext_call(
                uuid,
                "table",
                EXEC_TABLE,
                request(&[("action", "generate"), ("context", &ctx)]),
            )
        }));
    }
    eprintln!("with 100 idle connections: ping {pings:?}, generate {generates:?}");
    let best = |d: &[Duration]| d.iter().min().copied().unwrap_or_default();
    let worst = |d: &[Duration]| d.iter().max().copied().unwrap_or_default();
    // The target is < 100 ms; the best of five keeps a busy shared host
    // from failing the test, the worst bounds starvation.
    assert!(best(&pings) < Duration::from_millis(100), "{pings:?}");
    assert!(
        best(&generates) < Duration::from_millis(100),
        "{generates:?}"
    );
    assert!(worst(&pings) < Duration::from_secs(1), "{pings:?}");
    assert!(worst(&generates) < Duration::from_secs(1), "{generates:?}");

    // Past the connection cap (256) the oldest idle ones make room.
    let more = hold_idle(&path, 300);
    std::thread::sleep(Duration::from_millis(100));
    let took = timed(&ext, "ping past the cap", || fake.ext_ping(uuid));
    assert!(took < Duration::from_secs(1), "{took:?}");
    assert!(matches!(ext.child.try_wait(), Ok(None)), "{}", ext.stderr());
    drop((idle, more));
}

#[test]
fn shutdown_call_and_a_vanished_osqueryd_are_told_apart() {
    // Both exit 0 (like the C++ SDK); the log says which.
    let dir = socket_dir();
    let (fake, mut ext, uuid) = start_settled(dir.path(), false);
    let asked = Instant::now();
    fake.ext_shutdown(uuid).unwrap();
    let status = ext
        .wait_exit(bounds::osquery_exit())
        .unwrap_or_else(|| panic!("did not exit after shutdown(); {}", ext.stderr()));
    // At once, not at the next health check but one.
    assert!(
        asked.elapsed() < Duration::from_secs(INTERVAL) + Duration::from_millis(500),
        "{:?}",
        asked.elapsed()
    );
    assert_eq!(status.code(), Some(0), "{}", ext.stderr());
    let stderr = ext.stderr();
    assert!(stderr.contains("osqueryd called shutdown()"), "{stderr}");
    assert!(!stderr.contains("went away"), "{stderr}");
    assert!(fake.deregistered().contains(&uuid), "{stderr}");
    drop(fake);

    let dir = socket_dir();
    let (fake, mut ext, _) = start_settled(dir.path(), false);
    fake.go_away();
    let status = ext
        .wait_exit(Duration::from_secs(2 * INTERVAL) + bounds::osquery_exit())
        .unwrap_or_else(|| panic!("did not exit; {}", ext.stderr()));
    assert_eq!(status.code(), Some(0), "{}", ext.stderr());
    let stderr = ext.stderr();
    assert!(stderr.contains("went away"), "{stderr}");
    assert!(!stderr.contains("shutdown()"), "{stderr}");
}

#[test]
fn osqueryd_restart_means_exit_then_a_fresh_registration() {
    // Documented behaviour: no re-registration in place. The restarted
    // osqueryd does not list us, so the extension exits (0 if it found the
    // socket gone, 1 if the new osqueryd answered without us); osqueryd's
    // watcher respawns it and the new process registers.
    let dir = socket_dir();
    let sock = dir.path().join("osquery.em");
    let (fake, mut ext, old) = start_settled(dir.path(), false);
    fake.go_away();
    drop(fake);
    // osqueryd removes stale <socket>.* files when its manager starts.
    let _ = std::fs::remove_file(format!("{}.{old}", sock.display()));
    let fake = FakeOsqueryd::start(&sock);
    let status = ext
        .wait_exit(Duration::from_secs(2 * INTERVAL) + bounds::osquery_exit())
        .unwrap_or_else(|| panic!("still running after the restart; {}", ext.stderr()));
    assert!(
        matches!(status.code(), Some(0) | Some(1)),
        "{status:?}; {}",
        ext.stderr()
    );
    assert!(fake.registrations().is_empty());
    // The watcher's respawn.
    let mut again = spawn_extension(&sock, &launch(false, &["--source", "snapshot"]));
    let uuid = registered(&fake, &mut again).uuid;
    assert_eq!(fake.ext_ping(uuid).unwrap().code, 0);
    let (st, _) = generate(&fake, uuid, EXEC_TABLE, &context(EXEC_COLUMNS, &[]));
    assert_eq!(st.code, 0, "{st:?}");
}
