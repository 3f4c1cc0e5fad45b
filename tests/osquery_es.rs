//! Source `osquery_es` against an osqueryd double: rows of es_process_events
//! come back from `query()`, are delivered once, and the source rides out an
//! osqueryd that goes away.
//!
//! The shared `FakeOsqueryd` answers `query()` only for SQL it was given
//! verbatim (anything else is an error), so the tests freeze the source's
//! clock to know every SQL it will send. A small scripted double below
//! records SQL and returns osqueryd's real error texts, which the shared one
//! cannot.

mod support;

use kerberos_cache_access::classify::CREDENTIAL_CACHE_COPY;
use kerberos_cache_access::engine::Engine;
use kerberos_cache_access::event::SourceKind;
use kerberos_cache_access::osquery::client::PluginRows;
use kerberos_cache_access::osquery::thrift_gen::{
    ExtensionManagerSyncHandler, ExtensionManagerSyncProcessor, ExtensionPluginRequest,
    ExtensionRegistry, ExtensionResponse, ExtensionRouteUUID, ExtensionStatus,
    ExtensionSyncHandler, InternalExtensionInfo, InternalExtensionList, InternalOptionList,
};
use kerberos_cache_access::row::Row;
use kerberos_cache_access::sources::osquery_es::{
    exec_sql, open, open_with, probe_sql, OsqueryEs, Settings, FLAGS_SQL, PUBLISHER_SQL,
    VERSION_SQL,
};
use kerberos_cache_access::sources::Source;
use kerberos_cache_access::status::{SourceStatus, State};
use kerberos_cache_access::store::RowFilter;
use std::collections::BTreeMap;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use support::{pairs, socket_dir, FakeOsqueryd};
use thrift::protocol::{TBinaryInputProtocol, TBinaryOutputProtocol};
use thrift::server::TProcessor;
use thrift::transport::{TBufferedReadTransport, TBufferedWriteTransport};

/// The source's frozen "now".
const T0: i64 = 1_700_000_600;
const BACKLOG: i64 = 600;
const WAIT: Duration = Duration::from_secs(10);

fn frozen() -> i64 {
    T0
}

fn settings() -> Settings {
    Settings {
        poll: Duration::from_millis(100),
        timeout: Duration::from_secs(2),
        backlog: Duration::from_secs(BACKLOG as u64),
        clock: frozen,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// One es_process_events exec row as the source's SQL returns it (text
/// columns through hex(), osquery ≥ 5.10 quoting in cmdline).
fn es_row(
    time: i64,
    eid: u64,
    pid: i64,
    parent: i64,
    path: &str,
    argv: &[&str],
) -> BTreeMap<String, String> {
    let mut cmdline = String::new();
    for a in argv {
        cmdline.push_str(a);
        cmdline.push(' ');
    }
    let mut r = BTreeMap::new();
    for (k, v) in [
        ("time", time.to_string()),
        ("eid", format!("{eid:010}")),
        ("pid", pid.to_string()),
        ("parent", parent.to_string()),
        ("uid", "501".to_string()),
        ("gid", "20".to_string()),
        ("egid", "20".to_string()),
        ("platform_binary", "1".to_string()),
        ("cmdline_count", argv.len().to_string()),
        ("path_hex", hex(path.as_bytes())),
        ("cmdline_hex", hex(cmdline.as_bytes())),
        ("cwd_hex", hex(b"/Users/alice")),
        // Each binary's own identifier (a kcc signing id on the shell would
        // make it a renamed kcc).
        (
            "signing_id_hex",
            hex(format!("com.apple.{}", path.rsplit('/').next().unwrap_or(path)).as_bytes()),
        ),
        ("team_id_hex", String::new()),
    ] {
        r.insert(k.to_string(), v);
    }
    r
}

fn kcc_row(time: i64, eid: u64, pid: i64) -> BTreeMap<String, String> {
    es_row(
        time,
        eid,
        pid,
        300,
        "/usr/bin/kcc",
        &["kcc", "copy_cred_cache", "/tmp/stolen.ccache"],
    )
}

fn shell_row(time: i64, eid: u64) -> BTreeMap<String, String> {
    es_row(time, eid, 300, 1, "/bin/zsh", &["-zsh"])
}

fn engine() -> Arc<Engine> {
    support::engines::with_alice()
}

struct Running {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Running {
    fn start(engine: &Arc<Engine>, mut source: OsqueryEs) -> Running {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let engine = Arc::clone(engine);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || source.run(&engine, &stop).unwrap())
        };
        Running {
            stop,
            thread: Some(thread),
        }
    }

    fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn status(engine: &Engine) -> SourceStatus {
    engine
        .status()
        .get(SourceKind::OsqueryEs)
        .expect("osquery_es has a status")
}

fn state_is(engine: &Engine, want: State) -> bool {
    engine
        .status()
        .get(SourceKind::OsqueryEs)
        .is_some_and(|s| s.state == want)
}

fn rows(engine: &Engine) -> Vec<Arc<Row>> {
    engine.store().select(&RowFilter::default())
}

#[test]
fn every_sql_on_the_table_carries_a_time_constraint() {
    let start = T0 - BACKLOG;
    for sql in [probe_sql(T0), exec_sql(start - 1), exec_sql(T0 - 11)] {
        assert!(sql.contains("FROM es_process_events WHERE time >"), "{sql}");
    }
    assert!(exec_sql(5).contains("WHERE time >= 5 AND event_type = 'exec'"));
}

#[test]
fn a_kcc_exec_is_delivered_once_across_polls() {
    let dir = socket_dir();
    let socket = dir.path().join("osquery.em");
    let fake = FakeOsqueryd::start(&socket);
    fake.answer_es_checks_healthy(T0);
    let t = T0 - 10;
    // The first poll reads the backlog: the shell and its kcc child.
    fake.set_query_rows(
        &exec_sql(T0 - BACKLOG - 1),
        vec![kcc_row(t, 8, 301), shell_row(t, 7)],
    );
    // Later polls re-read second t, where another exec arrived late.
    fake.set_query_rows(
        &exec_sql(t - 1),
        vec![shell_row(t, 7), kcc_row(t, 8, 301), kcc_row(t, 9, 302)],
    );

    let source = open_with(&socket, settings()).expect("open");
    assert_eq!(source.next_since(), T0 - BACKLOG - 1);
    let engine = engine();
    let run = Running::start(&engine, source);
    let before = fake.call_count("query");
    wait_until("five more polls", || fake.call_count("query") >= before + 6);

    let st = status(&engine);
    // Every query on es_process_events was one of the canned ones above (the
    // double errors on any other SQL, which would show here as a failure).
    assert_eq!(st.state, State::Active, "{}", st.reason);
    assert!(!st.reason.contains("failed"), "{}", st.reason);
    assert!(st.reason.contains("5.12.1"), "{}", st.reason);
    assert_eq!(st.events_seen, 3, "each exec counted once");

    let got = rows(&engine);
    let kcc: Vec<_> = got.iter().filter(|r| r.pid == 301).collect();
    assert_eq!(kcc.len(), 1, "{got:#?}");
    let r = kcc[0];
    assert_eq!(r.source, SourceKind::OsqueryEs);
    assert_eq!(r.indicator, CREDENTIAL_CACHE_COPY);
    assert_eq!(r.action, "copy_cred_cache");
    assert_eq!(r.ccache, "FILE:/tmp/stolen.ccache");
    assert_eq!(r.signing_id, "com.apple.kcc");
    assert_eq!(r.platform_binary, Some(1));
    assert_eq!((r.time, r.pid, r.parent), (t, 301, 300));
    assert_eq!(r.parent_path, "/bin/zsh");
    assert_eq!(r.parent_cmdline, "-zsh");
    assert_eq!(r.username, "alice");
    assert_eq!(r.cwd, "/Users/alice");
    assert_eq!(r.args, r#"["kcc","copy_cred_cache","/tmp/stolen.ccache"]"#);
    // The late exec of the same second is not lost.
    assert_eq!(got.iter().filter(|r| r.pid == 302).count(), 1);
    assert_eq!(got.len(), 2, "the shell is not Kerberos-related");
    assert!(run.is_running());
}

#[test]
fn a_vanished_osqueryd_fails_the_source_until_a_new_one_answers() {
    let dir = socket_dir();
    let socket = dir.path().join("osquery.em");
    let first = FakeOsqueryd::start(&socket);
    first.answer_es_checks_healthy(T0);
    let t = T0 - 10;
    first.set_query_rows(&exec_sql(T0 - BACKLOG - 1), vec![kcc_row(t, 8, 301)]);
    first.set_query_rows(&exec_sql(t - 1), vec![kcc_row(t, 8, 301)]);

    let engine = engine();
    let run = Running::start(&engine, open_with(&socket, settings()).expect("open"));
    wait_until("the first kcc row", || rows(&engine).len() == 1);

    first.go_away();
    wait_until("the source to fail", || state_is(&engine, State::Failed));
    let st = status(&engine);
    assert!(st.reason.contains("retrying"), "{}", st.reason);
    assert!(run.is_running());
    drop(first);

    // osqueryd is back (same socket, fresh process): reading resumes where
    // it stopped, and a new exec arrives.
    let second = FakeOsqueryd::start(&socket);
    second.answer_es_checks_healthy(T0);
    second.set_query_rows(
        &exec_sql(t - 1),
        vec![kcc_row(t, 8, 301), kcc_row(t + 5, 9, 305)],
    );
    second.set_query_rows(&exec_sql(t + 4), vec![kcc_row(t + 5, 9, 305)]);
    wait_until("the source to recover", || state_is(&engine, State::Active));
    wait_until("the second kcc row", || rows(&engine).len() == 2);
    let st = status(&engine);
    assert!(
        st.reason.contains("polls failed since start"),
        "{}",
        st.reason
    );
    let pids: Vec<i64> = rows(&engine).iter().map(|r| r.pid).collect();
    assert_eq!(pids, [301, 305]);
    assert!(run.is_running());
}

#[test]
fn disabled_events_are_explained() {
    let dir = socket_dir();
    let socket = dir.path().join("osquery.em");
    let fake = FakeOsqueryd::start(&socket);
    fake.answer_es_checks_healthy(T0);
    fake.set_query_rows(
        FLAGS_SQL,
        vec![
            pairs(&[("name", "disable_endpointsecurity"), ("value", "true")]),
            pairs(&[("name", "disable_events"), ("value", "false")]),
        ],
    );
    let err = open_with(&socket, settings())
        .expect_err("events are off")
        .to_string();
    assert!(err.contains("--disable_endpointsecurity=true"), "{err}");
    assert!(!err.contains("--disable_events=true"), "{err}");
    assert!(err.contains("Fleet's agent options"), "{err}");
}

#[test]
fn old_osquery_is_refused() {
    let dir = socket_dir();
    let socket = dir.path().join("osquery.em");
    let fake = FakeOsqueryd::start(&socket);
    fake.answer_es_checks_healthy(T0);
    fake.set_query_rows(VERSION_SQL, vec![pairs(&[("version", "5.8.2")])]);
    let err = open_with(&socket, settings())
        .expect_err("too old")
        .to_string();
    assert!(err.contains("5.8.2") && err.contains("5.9.0"), "{err}");
}

#[test]
fn a_stopped_endpoint_security_publisher_is_reported() {
    let dir = socket_dir();
    let socket = dir.path().join("osquery.em");
    let fake = FakeOsqueryd::start(&socket);
    fake.answer_es_checks_healthy(T0);
    fake.set_query_rows(PUBLISHER_SQL, vec![pairs(&[("active", "0")])]);
    fake.set_query_rows(&exec_sql(T0 - BACKLOG - 1), Vec::new());
    let engine = engine();
    let _run = Running::start(&engine, open_with(&socket, settings()).expect("open"));
    wait_until("the source to fail", || state_is(&engine, State::Failed));
    let st = status(&engine);
    assert!(st.reason.contains("Full Disk Access"), "{}", st.reason);
    // It is asked again on every poll while it is down.
    fake.set_query_rows(PUBLISHER_SQL, vec![pairs(&[("active", "1")])]);
    wait_until("the source to recover", || state_is(&engine, State::Active));
}

#[test]
fn no_socket_is_a_readable_reason() {
    let dir = socket_dir();
    let err = open(&dir.path().join("missing.em"), Duration::from_secs(5))
        .expect_err("no osqueryd")
        .to_string();
    assert!(err.contains("cannot reach osqueryd"), "{err}");
    assert!(err.contains("missing.em"), "{err}");
}

// A scripted osqueryd: answers query() through a function and records the
// SQL, so the tests can see osqueryd's real error texts and every statement.

type Answer = dyn Fn(&str) -> Result<PluginRows, String> + Send + Sync;

struct Scripted {
    sql: Arc<Mutex<Vec<String>>>,
    answer: Arc<Answer>,
}

fn ok_status() -> ExtensionStatus {
    ExtensionStatus::new(0, "OK".to_string(), 0)
}

impl ExtensionSyncHandler for Scripted {
    fn handle_ping(&self) -> thrift::Result<ExtensionStatus> {
        Ok(ok_status())
    }
    fn handle_call(
        &self,
        _registry: String,
        _item: String,
        _request: ExtensionPluginRequest,
    ) -> thrift::Result<ExtensionResponse> {
        Ok(ExtensionResponse::new(ok_status(), Vec::new()))
    }
    fn handle_shutdown(&self) -> thrift::Result<()> {
        Ok(())
    }
}

impl ExtensionManagerSyncHandler for Scripted {
    fn handle_extensions(&self) -> thrift::Result<InternalExtensionList> {
        Ok(BTreeMap::new())
    }
    fn handle_options(&self) -> thrift::Result<InternalOptionList> {
        Ok(BTreeMap::new())
    }
    fn handle_register_extension(
        &self,
        _info: InternalExtensionInfo,
        _registry: ExtensionRegistry,
    ) -> thrift::Result<ExtensionStatus> {
        Ok(ExtensionStatus::new(1, "not here".to_string(), 0))
    }
    fn handle_deregister_extension(
        &self,
        _uuid: ExtensionRouteUUID,
    ) -> thrift::Result<ExtensionStatus> {
        Ok(ExtensionStatus::new(1, "not here".to_string(), 0))
    }
    fn handle_query(&self, sql: String) -> thrift::Result<ExtensionResponse> {
        let answer = (self.answer)(&sql);
        self.sql.lock().unwrap().push(sql);
        Ok(match answer {
            Ok(rows) => ExtensionResponse::new(ok_status(), rows),
            Err(message) => ExtensionResponse::new(ExtensionStatus::new(1, message, 0), Vec::new()),
        })
    }
    fn handle_get_query_columns(&self, _sql: String) -> thrift::Result<ExtensionResponse> {
        Ok(ExtensionResponse::new(
            ExtensionStatus::new(1, "not here".to_string(), 0),
            Vec::new(),
        ))
    }
}

/// Serves `answer` on `socket` until the test process ends; returns the SQL
/// log.
fn scripted(socket: &Path, answer: Arc<Answer>) -> Arc<Mutex<Vec<String>>> {
    let sql = Arc::new(Mutex::new(Vec::new()));
    let processor = Arc::new(ExtensionManagerSyncProcessor::new(Scripted {
        sql: Arc::clone(&sql),
        answer,
    }));
    let listener = UnixListener::bind(socket).unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let processor = Arc::clone(&processor);
            std::thread::spawn(move || {
                let reader = stream.try_clone().unwrap();
                let mut input =
                    TBinaryInputProtocol::new(TBufferedReadTransport::new(reader), false);
                let mut output =
                    TBinaryOutputProtocol::new(TBufferedWriteTransport::new(stream), true);
                while processor.process(&mut input, &mut output).is_ok() {}
            });
        }
    });
    sql
}

#[test]
fn no_such_table_is_a_readable_reason() {
    let dir = socket_dir();
    let socket = dir.path().join("osquery.em");
    let log = scripted(
        &socket,
        Arc::new(|sql: &str| {
            if sql == VERSION_SQL {
                Ok(vec![pairs(&[("version", "5.12.1")])])
            } else if sql.contains("es_process_events") {
                Err("no such table: es_process_events".to_string())
            } else {
                Ok(Vec::new())
            }
        }),
    );
    let err = open(&socket, Duration::from_secs(5))
        .expect_err("Linux osqueryd")
        .to_string();
    assert!(err.contains("no es_process_events table"), "{err}");
    assert!(err.contains("macOS"), "{err}");
    assert_eq!(log.lock().unwrap().len(), 2, "version, then the probe");
}

#[test]
fn with_the_real_clock_every_statement_on_the_table_is_time_bounded() {
    let dir = socket_dir();
    let socket = dir.path().join("osquery.em");
    let now = kerberos_cache_access::engine::unix_now();
    let log = scripted(
        &socket,
        Arc::new(move |sql: &str| {
            Ok(if sql == VERSION_SQL {
                vec![pairs(&[("version", "5.12.1")])]
            } else if sql.contains("event_type = 'exec'") {
                vec![kcc_row(now - 2, 4, 77)]
            } else {
                Vec::new()
            })
        }),
    );
    let mut s = settings();
    s.clock = kerberos_cache_access::engine::unix_now;
    let engine = engine();
    let run = Running::start(&engine, open_with(&socket, s).expect("open"));
    wait_until("a few polls", || {
        log.lock()
            .unwrap()
            .iter()
            .filter(|q| q.contains("event_type = 'exec'"))
            .count()
            >= 4
    });
    drop(run);
    let log = log.lock().unwrap();
    let on_table: Vec<&String> = log
        .iter()
        .filter(|q| q.contains("es_process_events"))
        .collect();
    assert!(on_table.len() >= 5, "{log:#?}");
    for q in on_table {
        let bound = q
            .split("WHERE time >")
            .nth(1)
            .map(|rest| rest.trim_start_matches('=').trim_start())
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse::<i64>().ok());
        let bound = bound.unwrap_or_else(|| panic!("no time bound in {q}"));
        // Never earlier than the backlog, never an unbounded read.
        assert!(bound >= now - BACKLOG - 2, "{q}");
    }
    assert_eq!(rows(&engine).len(), 1);
}
