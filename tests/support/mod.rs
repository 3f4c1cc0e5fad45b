//! Test support: a stand-in for osqueryd's extension manager that speaks the
//! real Thrift protocol on a Unix socket, and helpers to spawn the extension
//! the way osqueryd's watcher does.
//!
//! The double follows osqueryd's observable behaviour (see
//! shared/research/osquery-extension-protocol.md §1, §2): one thread per
//! connection like its TThreadedServer, the registerExtension checks in
//! osqueryd's order, random uint16 uuids, and a fresh connection per call
//! into an extension.

#![allow(dead_code)] // each test binary uses a different part of this module

#[cfg(target_os = "linux")]
pub mod audit_ext;
pub mod bounds;
pub mod bsm;
pub mod engines;
pub mod fixtures;
pub mod procs;
pub mod standalone;

use anyhow::{Context, Result};
use kerberos_cache_access::osquery::client::{
    ExtensionInfo, ManagerClient, PluginRows, Registry, Status,
};
use kerberos_cache_access::osquery::thrift_gen::{
    ExtensionManagerSyncHandler, ExtensionManagerSyncProcessor, ExtensionPluginRequest,
    ExtensionRegistry, ExtensionResponse, ExtensionRouteUUID, ExtensionStatus,
    ExtensionSyncHandler, InternalExtensionInfo, InternalExtensionList, InternalOptionInfo,
    InternalOptionList,
};
use std::collections::hash_map::RandomState;
use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::io::ErrorKind;
use std::net::Shutdown;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use thrift::protocol::{TBinaryInputProtocol, TBinaryOutputProtocol};
use thrift::server::TProcessor;
use thrift::transport::{TBufferedReadTransport, TBufferedWriteTransport};
use thrift::TransportErrorKind;

/// The extension binary under test.
pub const EXTENSION_BIN: &str = standalone::BIN;

/// Timeout of the double's own calls into an extension (osqueryd uses 300 s;
/// tests want to fail fast).
pub const EXT_CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The oldest extension SDK osqueryd accepts.
const MIN_SDK: [u64; 3] = [1, 7, 7];

/// Registries an osqueryd core knows; others are refused.
const CORE_REGISTRIES: &[&str] = &[
    "config",
    "config_parser",
    "database",
    "distributed",
    "enroll",
    "event_publisher",
    "event_subscriber",
    "killswitch",
    "logger",
    "numeric_monitoring",
    "sql",
    "table",
];

/// One extension registered with the double.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub uuid: i64,
    pub info: ExtensionInfo,
    pub registry: Registry,
}

impl Registration {
    /// The route info (column list) a table was registered with.
    pub fn table_routes(&self, table: &str) -> Option<&PluginRows> {
        self.registry
            .get("table")
            .and_then(|items| items.get(table))
    }
}

#[derive(Default)]
struct State {
    live: BTreeMap<i64, Registration>,
    deregistered: Vec<i64>,
    /// Method names in arrival order.
    calls: Vec<String>,
    options: BTreeMap<String, (String, String, String)>,
    /// Canned answers for query()/getQueryColumns(), by exact SQL.
    query_rows: BTreeMap<String, PluginRows>,
    column_rows: BTreeMap<String, PluginRows>,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    stopping: AtomicBool,
    /// osqueryd hangs: calls are read and never answered.
    hung: AtomicBool,
    /// Clones of every accepted stream, so go_away can cut them.
    conns: Mutex<Vec<UnixStream>>,
    conn_threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panicking handler thread must not hide the state from the test.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A fake osqueryd extension manager listening on a Unix socket.
pub struct FakeOsqueryd {
    socket: PathBuf,
    shared: Arc<Shared>,
    acceptor: Mutex<Option<JoinHandle<()>>>,
}

impl FakeOsqueryd {
    /// Binds `socket` and serves immediately.
    pub fn start(socket: &Path) -> FakeOsqueryd {
        let listener =
            UnixListener::bind(socket).unwrap_or_else(|e| panic!("bind {}: {e}", socket.display()));
        // Polled, so go_away can stop accepting without a wake-up connection.
        listener.set_nonblocking(true).unwrap();
        let mut state = State::default();
        for (name, value, default, ty) in [
            ("extensions_interval", "1", "3", "string"),
            ("extensions_timeout", "3", "3", "string"),
            ("disable_events", "true", "true", "bool"),
            ("host_identifier", "hostname", "hostname", "string"),
            ("config_plugin", "filesystem", "filesystem", "string"),
            ("logger_plugin", "filesystem", "filesystem", "string"),
        ] {
            state
                .options
                .insert(name.into(), (value.into(), default.into(), ty.into()));
        }
        let shared = Arc::new(Shared {
            state: Mutex::new(state),
            changed: Condvar::new(),
            stopping: AtomicBool::new(false),
            hung: AtomicBool::new(false),
            conns: Mutex::new(Vec::new()),
            conn_threads: Mutex::new(Vec::new()),
        });
        let processor = Arc::new(ExtensionManagerSyncProcessor::new(Handler {
            shared: shared.clone(),
        }));
        let acceptor = {
            let shared = shared.clone();
            std::thread::spawn(move || accept_loop(listener, processor, shared))
        };
        FakeOsqueryd {
            socket: socket.to_path_buf(),
            shared,
            acceptor: Mutex::new(Some(acceptor)),
        }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Adds a registration holding `name`, as if an earlier instance of the
    /// extension were still registered (osqueryd keeps it until a health
    /// check fails). Returns its uuid.
    pub fn preregister(&self, name: &str) -> i64 {
        let mut st = self.shared.state();
        let uuid = new_uuid(&st.live);
        st.live.insert(
            uuid,
            Registration {
                uuid,
                info: ExtensionInfo {
                    name: name.into(),
                    version: "0.0.1".into(),
                    sdk_version: "5.0.0".into(),
                    min_sdk_version: "5.0.0".into(),
                },
                registry: Registry::new(),
            },
        );
        self.shared.changed.notify_all();
        uuid
    }

    /// Drops a registration the way osqueryd does after one failed health
    /// check: the extension process lives on but is no longer listed.
    pub fn forget(&self, uuid: i64) -> bool {
        let removed = self.shared.state().live.remove(&uuid).is_some();
        self.shared.changed.notify_all();
        removed
    }

    /// Live registrations, by uuid.
    pub fn registrations(&self) -> Vec<Registration> {
        self.shared.state().live.values().cloned().collect()
    }

    /// Waits until an extension called `name` is registered.
    pub fn wait_for(&self, name: &str, timeout: Duration) -> Option<Registration> {
        self.wait_until(timeout, |st| {
            st.live.values().find(|r| r.info.name == name).cloned()
        })
    }

    /// Waits, until `timeout`, for `check` on the state to give Some: checked
    /// now and at every change.
    fn wait_until<T>(&self, timeout: Duration, check: impl Fn(&State) -> Option<T>) -> Option<T> {
        let deadline = Instant::now() + timeout;
        let mut st = self.shared.state();
        loop {
            if let Some(found) = check(&st) {
                return Some(found);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            st = self
                .shared
                .changed
                .wait_timeout(st, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Uuids that were deregistered through deregisterExtension().
    pub fn deregistered(&self) -> Vec<i64> {
        self.shared.state().deregistered.clone()
    }

    /// Names of the manager methods called so far, in order.
    pub fn calls(&self) -> Vec<String> {
        self.shared.state().calls.clone()
    }

    /// How many times `method` was called so far.
    pub fn call_count(&self, method: &str) -> usize {
        self.shared
            .state()
            .calls
            .iter()
            .filter(|m| *m == method)
            .count()
    }

    /// Waits until `method` has been called at least `count` times.
    pub fn wait_call_count(&self, method: &str, count: usize, timeout: Duration) -> bool {
        self.wait_until(timeout, |st| {
            (st.calls.iter().filter(|m| *m == method).count() >= count).then_some(())
        })
        .is_some()
    }

    /// Sets what options() reports for `name`.
    pub fn set_option(&self, name: &str, value: &str) {
        let mut st = self.shared.state();
        let entry = st
            .options
            .entry(name.into())
            .or_insert_with(|| (String::new(), String::new(), "string".into()));
        entry.0 = value.into();
    }

    /// Makes query(sql) succeed with `rows`.
    pub fn set_query_rows(&self, sql: &str, rows: PluginRows) {
        self.shared.state().query_rows.insert(sql.into(), rows);
    }

    /// What a healthy osqueryd 5.12 on macOS answers to the osquery_es
    /// source's checks, at clock `now`.
    pub fn answer_es_checks_healthy(&self, now: i64) {
        use kerberos_cache_access::sources::osquery_es::{
            probe_sql, FLAGS_SQL, PUBLISHER_SQL, VERSION_SQL,
        };
        self.set_query_rows(VERSION_SQL, vec![pairs(&[("version", "5.12.1")])]);
        self.set_query_rows(&probe_sql(now), Vec::new());
        self.set_query_rows(
            FLAGS_SQL,
            vec![
                pairs(&[("name", "disable_endpointsecurity"), ("value", "false")]),
                pairs(&[("name", "disable_events"), ("value", "false")]),
            ],
        );
        self.set_query_rows(PUBLISHER_SQL, vec![pairs(&[("active", "1")])]);
    }

    /// Makes getQueryColumns(sql) succeed with `rows`.
    pub fn set_query_columns(&self, sql: &str, rows: PluginRows) {
        self.shared.state().column_rows.insert(sql.into(), rows);
    }

    /// Where extension `uuid` must listen.
    pub fn ext_socket(&self, uuid: i64) -> PathBuf {
        let mut p = self.socket.clone().into_os_string();
        p.push(format!(".{uuid}"));
        PathBuf::from(p)
    }

    /// Waits for extension `uuid` to accept connections, polling every 20 ms
    /// as osqueryd does before its first health check of a new extension
    /// (an extension registers before it listens).
    pub fn wait_ext_socket(&self, uuid: i64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let path = self.ext_socket(uuid);
        loop {
            if UnixStream::connect(&path).is_ok() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Calls a plugin of extension `uuid` over a fresh connection, as
    /// osqueryd does for every call.
    pub fn ext_call(
        &self,
        uuid: i64,
        registry: &str,
        item: &str,
        req: BTreeMap<String, String>,
    ) -> Result<(Status, PluginRows)> {
        Ok(
            ManagerClient::connect(&self.ext_socket(uuid), EXT_CALL_TIMEOUT)?
                .call(registry, item, req)?,
        )
    }

    /// Pings extension `uuid` over a fresh connection.
    pub fn ext_ping(&self, uuid: i64) -> Result<Status> {
        Ok(ManagerClient::connect(&self.ext_socket(uuid), EXT_CALL_TIMEOUT)?.ping()?)
    }

    /// Sends shutdown() to extension `uuid`, as osqueryd does when it stops.
    pub fn ext_shutdown(&self, uuid: i64) -> Result<()> {
        Ok(ManagerClient::connect(&self.ext_socket(uuid), EXT_CALL_TIMEOUT)?.shutdown()?)
    }

    /// osqueryd hangs: it keeps its socket and accepts connections, but
    /// answers no call from now on (until go_away).
    pub fn hang(&self) {
        self.shared.hung.store(true, Ordering::SeqCst);
    }

    /// osqueryd dies: stop accepting, delete the socket, cut every open
    /// connection. Idempotent.
    pub fn go_away(&self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        let acceptor = self
            .acceptor
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(t) = acceptor {
            let _ = t.join(); // drops the listener
        }
        let _ = std::fs::remove_file(&self.socket);
        for c in self
            .shared
            .conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            let _ = c.shutdown(Shutdown::Both);
        }
        let threads: Vec<_> = self
            .shared
            .conn_threads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
            .collect();
        for t in threads {
            let _ = t.join();
        }
    }
}

impl Drop for FakeOsqueryd {
    fn drop(&mut self) {
        self.go_away();
    }
}

fn accept_loop(
    listener: UnixListener,
    processor: Arc<ExtensionManagerSyncProcessor<Handler>>,
    shared: Arc<Shared>,
) {
    while !shared.stopping.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                // BSD accept() inherits O_NONBLOCK from the listener.
                if stream.set_nonblocking(false).is_err() {
                    continue;
                }
                let (Ok(reader), Ok(handle)) = (stream.try_clone(), stream.try_clone()) else {
                    continue;
                };
                {
                    let mut conns = shared.conns.lock().unwrap_or_else(|p| p.into_inner());
                    // go_away may have drained the list between accept and here.
                    if shared.stopping.load(Ordering::SeqCst) {
                        let _ = handle.shutdown(Shutdown::Both);
                        break;
                    }
                    conns.push(handle);
                }
                let processor = processor.clone();
                let t = std::thread::spawn(move || serve(reader, stream, &*processor));
                shared
                    .conn_threads
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(t);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(2))
            }
            Err(e) => {
                eprintln!("fake osqueryd: accept failed: {e}");
                std::thread::sleep(Duration::from_millis(10))
            }
        }
    }
}

/// Serves one connection until the peer hangs up or go_away cuts it.
fn serve(reader: UnixStream, writer: UnixStream, processor: &dyn TProcessor) {
    // Same stack as osqueryd: buffered transport, binary protocol with
    // strict writes and lenient reads.
    let mut input = TBinaryInputProtocol::new(TBufferedReadTransport::new(reader), false);
    let mut output = TBinaryOutputProtocol::new(TBufferedWriteTransport::new(writer), true);
    loop {
        match processor.process(&mut input, &mut output) {
            Ok(()) => {}
            Err(thrift::Error::Transport(e)) if e.kind == TransportErrorKind::EndOfFile => break,
            Err(e) => {
                eprintln!("fake osqueryd: connection ended: {e}");
                break;
            }
        }
    }
}

struct Handler {
    shared: Arc<Shared>,
}

impl Handler {
    fn log(&self, method: &str) -> MutexGuard<'_, State> {
        while self.shared.hung.load(Ordering::SeqCst)
            && !self.shared.stopping.load(Ordering::SeqCst)
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        let mut st = self.shared.state();
        st.calls.push(method.into());
        // Waiters re-check once the guard is released.
        self.shared.changed.notify_all();
        st
    }

    fn record(&self, method: &str) {
        drop(self.log(method));
    }
}

fn status(code: i32, message: &str, uuid: i64) -> ExtensionStatus {
    ExtensionStatus::new(code, message.to_owned(), uuid)
}

fn response(code: i32, message: &str, rows: PluginRows) -> ExtensionResponse {
    ExtensionResponse::new(status(code, message, 0), rows)
}

impl ExtensionSyncHandler for Handler {
    fn handle_ping(&self) -> thrift::Result<ExtensionStatus> {
        self.record("ping");
        Ok(status(0, "pong", 0))
    }

    fn handle_call(
        &self,
        _registry: String,
        _item: String,
        _request: ExtensionPluginRequest,
    ) -> thrift::Result<ExtensionResponse> {
        self.record("call");
        Ok(response(0, "OK", Vec::new()))
    }

    fn handle_shutdown(&self) -> thrift::Result<()> {
        self.record("shutdown");
        Ok(())
    }
}

impl ExtensionManagerSyncHandler for Handler {
    fn handle_extensions(&self) -> thrift::Result<InternalExtensionList> {
        let st = self.log("extensions");
        Ok(st
            .live
            .values()
            .map(|r| {
                let i = &r.info;
                let info = InternalExtensionInfo::new(
                    i.name.clone(),
                    i.version.clone(),
                    i.sdk_version.clone(),
                    i.min_sdk_version.clone(),
                );
                (r.uuid, info)
            })
            .collect())
    }

    fn handle_options(&self) -> thrift::Result<InternalOptionList> {
        let st = self.log("options");
        Ok(st
            .options
            .iter()
            .map(|(name, (value, default, ty))| {
                let o = InternalOptionInfo::new(value.clone(), default.clone(), ty.clone());
                (name.clone(), o)
            })
            .collect())
    }

    fn handle_register_extension(
        &self,
        info: InternalExtensionInfo,
        registry: ExtensionRegistry,
    ) -> thrift::Result<ExtensionStatus> {
        let mut st = self.log("registerExtension");
        let info = ExtensionInfo {
            name: info.name.unwrap_or_default(),
            version: info.version.unwrap_or_default(),
            sdk_version: info.sdk_version.unwrap_or_default(),
            min_sdk_version: info.min_sdk_version.unwrap_or_default(),
        };
        if st.live.values().any(|r| r.info.name == info.name) {
            return Ok(status(1, "Duplicate extension registered", 0));
        }
        if !sdk_accepted(&info.sdk_version) {
            return Ok(status(1, "Incompatible extension SDK version", 0));
        }
        if let Err(why) = check_registry(&st.live, &registry) {
            return Ok(status(1, &format!("Failed adding registry: {why}"), 0));
        }
        let uuid = new_uuid(&st.live);
        st.live.insert(
            uuid,
            Registration {
                uuid,
                info,
                registry,
            },
        );
        drop(st);
        self.shared.changed.notify_all();
        Ok(status(0, "OK", uuid))
    }

    fn handle_deregister_extension(
        &self,
        uuid: ExtensionRouteUUID,
    ) -> thrift::Result<ExtensionStatus> {
        let mut st = self.log("deregisterExtension");
        if st.live.remove(&uuid).is_none() {
            return Ok(status(1, "No extension UUID found", 0));
        }
        st.deregistered.push(uuid);
        drop(st);
        self.shared.changed.notify_all();
        Ok(status(0, "OK", 0))
    }

    fn handle_query(&self, sql: String) -> thrift::Result<ExtensionResponse> {
        let st = self.log("query");
        Ok(match st.query_rows.get(&sql) {
            Some(rows) => response(0, "OK", rows.clone()),
            None => response(1, "not supported by the test double", Vec::new()),
        })
    }

    fn handle_get_query_columns(&self, sql: String) -> thrift::Result<ExtensionResponse> {
        let st = self.log("getQueryColumns");
        Ok(match st.column_rows.get(&sql) {
            Some(rows) => response(0, "OK", rows.clone()),
            None => response(1, "not supported by the test double", Vec::new()),
        })
    }
}

/// osqueryd's SDK gate: at least 1.7.7 by numeric dotted comparison;
/// empty, "0.0.0" and non-numeric versions (osquery-rust sends "Unknown")
/// are let through.
pub fn sdk_accepted(version: &str) -> bool {
    if version.is_empty() || version == "0.0.0" {
        return true;
    }
    let parts: Result<Vec<u64>, _> = version.split('.').map(str::parse::<u64>).collect();
    let Ok(mut parts) = parts else {
        return true;
    };
    parts.resize(parts.len().max(MIN_SDK.len()), 0);
    parts[..] >= MIN_SDK[..]
}

/// osqueryd's addBroadcast checks: known registries, no clash with another
/// extension's item, and non-empty table routes.
fn check_registry(
    live: &BTreeMap<i64, Registration>,
    registry: &ExtensionRegistry,
) -> Result<(), String> {
    for (name, items) in registry {
        if !CORE_REGISTRIES.contains(&name.as_str()) {
            return Err(format!("Unknown registry: {name}"));
        }
        for (item, routes) in items {
            let taken = live
                .values()
                .filter_map(|r| r.registry.get(name))
                .any(|other| other.contains_key(item));
            if taken {
                return Err(format!(
                    "Registry item {item} conflicts with another item of the same name"
                ));
            }
            if name == "table" && routes.is_empty() {
                return Err("Invalid route info".into());
            }
        }
    }
    Ok(())
}

/// A random uint16 uuid not in use, as osqueryd draws them.
fn new_uuid(live: &BTreeMap<i64, Registration>) -> i64 {
    loop {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(0);
        let uuid = (h.finish() % 65535) as i64 + 1;
        if !live.contains_key(&uuid) {
            return uuid;
        }
    }
}

/// One row of query results from (column, value) pairs.
pub fn pairs(items: &[(&str, &str)]) -> BTreeMap<String, String> {
    items
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A short temporary directory for sockets: Unix socket paths are limited to
/// about 104 bytes, and `<socket>.<uuid>` must still fit.
pub fn socket_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("kca")
        .tempdir_in("/tmp")
        .expect("temp dir in /tmp")
}

/// How the extension is launched.
#[derive(Debug, Clone)]
pub struct LaunchOptions {
    pub verbose: bool,
    pub timeout: u64,
    pub interval: u64,
    /// Appended after osqueryd's own arguments.
    pub extra: Vec<String>,
}

impl Default for LaunchOptions {
    fn default() -> Self {
        LaunchOptions {
            verbose: true,
            timeout: 3,
            interval: 1,
            extra: Vec::new(),
        }
    }
}

/// A spawned extension process; killed on drop if still running.
pub struct Extension {
    pub child: standalone::Running,
    stderr_path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Extension {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the extension wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Waits for the process to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_exit(&mut self.child, timeout)
    }

    /// Sends `signal` ("TERM", "INT", ...) with kill(1).
    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "kill -{signal} {} failed", self.pid());
    }
}

/// Launches the extension exactly as osqueryd's watcher does:
/// `PATH [--verbose] --socket P --timeout N --interval N` as separate tokens,
/// with `OSQUERY_EXTENSION=<pid>` in the environment.
pub fn spawn_extension(socket: &Path, opts: &LaunchOptions) -> Extension {
    let dir = tempfile::tempdir().expect("temp dir for stderr");
    let stderr_path = dir.path().join("stderr.log");
    let stderr = std::fs::File::create(&stderr_path).expect("stderr file");
    let mut cmd = Command::new(EXTENSION_BIN);
    if opts.verbose {
        cmd.arg("--verbose");
    }
    cmd.arg("--socket")
        .arg(socket)
        .arg("--timeout")
        .arg(opts.timeout.to_string())
        .arg("--interval")
        .arg(opts.interval.to_string())
        .args(&opts.extra);
    // Each extension its own journal and locks, unless the test passes a
    // --state-dir in `extra` (to restart on the same state).
    if !opts.extra.iter().any(|a| a == "--state-dir") {
        cmd.arg("--state-dir").arg(dir.path().join("state"));
    }
    cmd
        // osqueryd sets the child's own pid; the test's pid is close enough
        // (the variable only has to be present).
        .env("OSQUERY_EXTENSION", std::process::id().to_string())
        // The log level must come from --verbose alone.
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
    Extension {
        child: standalone::Running::spawn(&mut cmd),
        stderr_path,
        _dir: dir,
    }
}

pub use standalone::wait_exit;

/// A plugin request from key/value pairs.
pub fn request(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A client for the double's manager socket.
pub fn manager(socket: &Path) -> Result<ManagerClient> {
    ManagerClient::connect(socket, Duration::from_secs(5))
        .with_context(|| format!("connect to fake osqueryd at {}", socket.display()))
}
