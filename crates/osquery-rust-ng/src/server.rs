//! The extension side of osqueryd's protocol: register with the manager,
//! then serve osqueryd's calls on `<socket>.<uuid>`.
//!
//! Anyone who can reach that socket (root, or osqueryd's user) is a possible
//! attacker, so the server is built to be neither crashed nor starved:
//! requests are decoded under a strict [`ServerConfig`] (sizes checked before
//! anything is allocated, a byte budget per request), every connection has
//! its own thread with read and write timeouts (no fixed pool that idle
//! sockets can exhaust, up to a cap), and stopping ends the listener and the
//! workers instead of orphaning them.
//!
//! Health checks are the embedding program's job: the server never pings
//! osqueryd itself, and reports osqueryd's `shutdown()` call as such.

use std::cell::Cell;
use std::collections::HashMap;
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::io::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};
use strum::VariantNames;
use thrift::protocol::{
    TBinaryInputProtocol, TBinaryOutputProtocol, TFieldIdentifier, TInputProtocol, TListIdentifier,
    TMessageIdentifier, TMessageType, TOutputProtocol, TSerializable, TStructIdentifier, TType,
};
use thrift::transport::{
    TBufferedReadTransport, TBufferedWriteTransport, TReadTransport, TWriteTransport,
};
use thrift::{
    ApplicationError, ApplicationErrorKind, ProtocolError, ProtocolErrorKind, TConfiguration,
    TransportErrorKind,
};

use crate::_osquery as osquery;
use crate::client::Client;
use crate::plugin::{CallReply, OsqueryPlugin, Registry};
use crate::util::OptionToThriftResult;

/// How the server treats its peers. The defaults are sized to what osqueryd
/// sends an extension: `ping()`, `shutdown()` and `call(registry, item,
/// request)`, where `request` is a handful of keys and the largest value is
/// a query context (JSON; a few KB, more with long `IN` lists).
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Protocol limits for decoding requests ([`server_limits`]).
    pub limits: TConfiguration,
    /// Bytes one request may take on the wire. Counted on the socket,
    /// because thrift's Rust transports keep no per-message count.
    pub max_request_bytes: usize,
    /// Longest wait for any single read (including the wait for the next
    /// request on an idle connection) and write.
    pub io_timeout: Duration,
    /// Longest time one request may take to arrive, from the moment the
    /// server starts waiting for it: a peer trickling bytes cannot hold a
    /// worker longer than this.
    pub request_timeout: Duration,
    /// Connections served at once. When full, the oldest connection that
    /// waits for a request is closed to make room; only when every one is
    /// busy is the new one closed.
    pub max_connections: usize,
    /// Stack of each connection's thread.
    pub worker_stack: usize,
    /// Timeout of each registration and deregistration call to osqueryd.
    pub call_timeout: Duration,
}

/// Largest request accepted by default (bytes on the wire, and largest
/// string). osqueryd's own server allows 100 MB per message; a query context
/// over 8 MiB means tens of thousands of constraint values.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 8 << 20;

/// The strict protocol configuration for requests: every length is checked
/// against these before anything is allocated.
pub fn server_limits() -> TConfiguration {
    TConfiguration::builder()
        .max_message_size(Some(DEFAULT_MAX_REQUEST_BYTES))
        .max_frame_size(Some(DEFAULT_MAX_REQUEST_BYTES))
        .max_string_size(Some(DEFAULT_MAX_REQUEST_BYTES))
        // A request map has a few keys; registry maps (never meaningful
        // here, but decodable) a few hundred entries at most.
        .max_container_size(Some(4096))
        // Our messages nest 4 deep (call -> map); skip() of unknown fields
        // must not recurse further than this.
        .max_recursion_depth(Some(16))
        .build()
        .unwrap_or_default()
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            limits: server_limits(),
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            io_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            max_connections: 256,
            worker_stack: 1 << 20,
            call_timeout: Duration::from_secs(2),
        }
    }
}

/// Why [`Server::start`] failed.
#[derive(Debug)]
pub enum StartError {
    /// osqueryd's socket could not be reached.
    Connect(io::Error),
    /// The registration call failed on the wire.
    Call(thrift::Error),
    /// osqueryd answered, and refused the registration (e.g. "Duplicate
    /// extension registered").
    Refused { code: i32, message: String },
    /// Registered, but `<socket>.<uuid>` could not be served (the
    /// registration was withdrawn again).
    Listen { uuid: i64, error: io::Error },
    /// The plugins do not form a valid registry.
    Plugins(thrift::Error),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Connect(e) => write!(f, "cannot connect to osqueryd: {e}"),
            StartError::Call(e) => write!(f, "registerExtension() failed: {e}"),
            StartError::Refused { code, message } => {
                write!(
                    f,
                    "osqueryd refused the registration (code {code}): {message}"
                )
            }
            StartError::Listen { uuid, error } => {
                write!(f, "registered as {uuid} but cannot listen: {error}")
            }
            StartError::Plugins(e) => write!(f, "invalid plugins: {e}"),
        }
    }
}

impl std::error::Error for StartError {}

type ShutdownHook = Arc<dyn Fn() + Send + Sync>;

/// An extension not yet registered: its name, plugins and configuration.
pub struct Server<P: OsqueryPlugin + Clone + Send + Sync + 'static> {
    name: String,
    version: String,
    socket_path: PathBuf,
    plugins: Vec<P>,
    config: ServerConfig,
    on_shutdown: Option<ShutdownHook>,
}

impl<P: OsqueryPlugin + Clone + Send + Sync + 'static> Server<P> {
    /// An extension called `name` for the manager at `socket_path`. Nothing
    /// is connected until [`Server::start`].
    pub fn new(name: &str, socket_path: impl Into<PathBuf>) -> Self {
        Server {
            name: name.to_string(),
            version: "1.0".to_string(),
            socket_path: socket_path.into(),
            plugins: Vec::new(),
            config: ServerConfig::default(),
            on_shutdown: None,
        }
    }

    pub fn with_config(mut self, config: ServerConfig) -> Self {
        self.config = config;
        self
    }

    /// Called (from a worker thread) when osqueryd calls `shutdown()`.
    pub fn on_shutdown(mut self, hook: impl Fn() + Send + Sync + 'static) -> Self {
        self.on_shutdown = Some(Arc::new(hook));
        self
    }

    /// Registers a plugin, something which implements the OsqueryPlugin trait.
    pub fn register_plugin(&mut self, plugin: P) -> &Self {
        self.plugins.push(plugin);
        self
    }

    fn generate_registry(&self) -> thrift::Result<osquery::ExtensionRegistry> {
        let mut registry = osquery::ExtensionRegistry::new();
        for var in Registry::VARIANTS {
            registry.insert((*var).to_string(), osquery::ExtensionRouteTable::new());
        }
        for plugin in self.plugins.iter() {
            registry
                .get_mut(plugin.registry().to_string().as_str())
                .ok_or_thrift_err(|| format!("Failed to register plugin {}", plugin.name()))?
                .insert(plugin.name(), plugin.routes());
        }
        Ok(registry)
    }

    /// Registers with osqueryd and, once osqueryd accepted, serves
    /// `<socket>.<uuid>` from a background thread. A refused registration is
    /// an error and leaves no socket behind.
    pub fn start(self) -> Result<Running, StartError> {
        let registry = self.generate_registry().map_err(StartError::Plugins)?;
        let handler = Handler::new(&self.plugins).map_err(StartError::Plugins)?;
        let info = osquery::InternalExtensionInfo {
            name: Some(self.name.clone()),
            version: Some(self.version.clone()),
            sdk_version: Some("Unknown".to_string()),
            min_sdk_version: Some("Unknown".to_string()),
        };
        let status = Client::connect(&self.socket_path, self.config.call_timeout)
            .map_err(StartError::Connect)?
            .register_extension(info, registry)
            .map_err(StartError::Call)?;
        let code = status.code.unwrap_or(0);
        let uuid = status.uuid.unwrap_or(0);
        if code != 0 || uuid <= 0 {
            return Err(StartError::Refused {
                code,
                message: status
                    .message
                    .unwrap_or_else(|| "no message (and no uuid)".to_string()),
            });
        }
        log::debug!("osqueryd accepted {} as uuid {uuid}", self.name);

        let listen_path = extension_socket(&self.socket_path, uuid);
        let listener = match bind(&listen_path) {
            Ok(l) => l,
            Err(error) => {
                // Not servable: do not stay registered.
                let _ = Client::connect(&self.socket_path, self.config.call_timeout)
                    .map(|mut c| c.deregister_extension(uuid));
                return Err(StartError::Listen { uuid, error });
            }
        };
        let identity = std::fs::metadata(&listen_path)
            .map(|m| (m.dev(), m.ino()))
            .ok();

        let shutdown_requested = Arc::clone(&handler.shutdown_requested);
        let shared = Arc::new(Shared {
            handler: handler.with_hook(self.on_shutdown.clone()),
            config: self.config.clone(),
            stopping: AtomicBool::new(false),
            shutdown_requested,
            conns: Mutex::new(HashMap::new()),
            threads: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(0),
            refused_logged: Mutex::new(None),
        });
        let acceptor = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name("osquery-accept".into())
                .spawn(move || accept_loop(&listener, &shared))
        };
        let acceptor = match acceptor {
            Ok(t) => t,
            Err(error) => {
                let _ = std::fs::remove_file(&listen_path);
                let _ = Client::connect(&self.socket_path, self.config.call_timeout)
                    .map(|mut c| c.deregister_extension(uuid));
                return Err(StartError::Listen { uuid, error });
            }
        };
        Ok(Running {
            uuid,
            manager_path: self.socket_path,
            listen_path,
            identity,
            plugins: self
                .plugins
                .into_iter()
                .map(|p| Arc::new(p) as Arc<dyn PluginShutdown>)
                .collect(),
            shared,
            acceptor: Some(acceptor),
        })
    }
}

/// `<manager socket>.<uuid>`, where osqueryd expects extension `uuid`.
pub fn extension_socket(manager: &Path, uuid: i64) -> PathBuf {
    let mut s = manager.as_os_str().to_owned();
    s.push(format!(".{uuid}"));
    PathBuf::from(s)
}

/// Binds `path`; a stale socket file left by a killed process (nobody
/// accepts on it) is replaced, anything else is left alone.
fn bind(path: &Path) -> io::Result<UnixListener> {
    match UnixListener::bind(path) {
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
            let is_socket = std::fs::symlink_metadata(path)
                .map(|m| m.file_type().is_socket())
                .unwrap_or(false);
            if !is_socket || UnixStream::connect(path).is_ok() {
                return Err(e);
            }
            std::fs::remove_file(path)?;
            UnixListener::bind(path)
        }
        other => other,
    }
}

/// What [`Running::stop`] did.
#[derive(Debug)]
pub struct StopReport {
    /// Worker threads still running when the wait ended (left to process
    /// exit; their connections are already shut down).
    pub workers_left: usize,
    /// The deregistration's outcome, when one was asked for.
    pub deregistered: Option<Result<(), String>>,
}

/// A registered extension being served.
pub struct Running {
    uuid: i64,
    manager_path: PathBuf,
    listen_path: PathBuf,
    /// dev/ino of our socket file, so stop never removes a file that is not
    /// ours any more (osqueryd deletes `<socket>.*` when it restarts).
    identity: Option<(u64, u64)>,
    plugins: Vec<Arc<dyn PluginShutdown>>,
    shared: Arc<dyn SharedState>,
    acceptor: Option<JoinHandle<()>>,
}

/// The parts of the plugin type [`Running`] needs, so it is not generic.
trait PluginShutdown: Send + Sync {
    fn name(&self) -> String;
    fn shutdown(&self);
}

impl<P: OsqueryPlugin> PluginShutdown for P {
    fn name(&self) -> String {
        OsqueryPlugin::name(self)
    }
    fn shutdown(&self) {
        OsqueryPlugin::shutdown(self)
    }
}

trait SharedState: Send + Sync {
    fn begin_stop(&self);
    fn shutdown_requested(&self) -> bool;
    fn cut_connections(&self);
    fn live_threads(&self) -> usize;
    fn join_finished(&self);
}

impl Running {
    /// The uuid osqueryd gave this extension.
    pub fn uuid(&self) -> i64 {
        self.uuid
    }

    /// Where the extension listens (`<socket>.<uuid>`).
    pub fn listen_path(&self) -> &Path {
        &self.listen_path
    }

    /// Whether osqueryd called `shutdown()`.
    pub fn shutdown_requested(&self) -> bool {
        self.shared.shutdown_requested()
    }

    /// Whether the listener is still accepting.
    pub fn is_serving(&self) -> bool {
        self.acceptor.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Stops serving: the listener ends, open connections are shut down,
    /// workers are joined for up to half of `wait`, the socket file is removed, the
    /// plugins are told, and, with `deregister`, osqueryd is asked to drop
    /// the registration within what is left of `wait` (at most the call
    /// timeout).
    pub fn stop(mut self, wait: Duration, deregister: bool) -> StopReport {
        let started = Instant::now();
        self.shared.begin_stop();
        if let Some(t) = self.acceptor.take() {
            // The acceptor polls the stop flag every ACCEPT_POLL.
            while !t.is_finished() && started.elapsed() < wait {
                thread::sleep(Duration::from_millis(5));
            }
            if t.is_finished() && t.join().is_err() {
                log::warn!("listener thread panicked");
            }
        }
        self.remove_socket();
        self.shared.cut_connections();
        // Half the wait for the workers, the rest for the deregistration.
        while self.shared.live_threads() > 0 && started.elapsed() < wait / 2 {
            thread::sleep(Duration::from_millis(5));
        }
        self.shared.join_finished();
        let workers_left = self.shared.live_threads();
        if workers_left > 0 {
            log::warn!("{workers_left} connection thread(s) still busy at shutdown");
        }
        for plugin in &self.plugins {
            let name = plugin.name();
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| plugin.shutdown())).is_err()
            {
                log::error!("plugin {name} panicked during shutdown");
            }
        }
        let deregistered = deregister.then(|| {
            let left = wait.saturating_sub(started.elapsed());
            let timeout = left.min(Duration::from_secs(2));
            if timeout < Duration::from_millis(10) {
                return Err("no time left to deregister".to_string());
            }
            Client::connect(&self.manager_path, timeout)
                .map_err(|e| format!("cannot connect to osqueryd: {e}"))?
                .deregister_extension(self.uuid)
                .map_err(|e| format!("deregisterExtension() failed: {e}"))
                .and_then(|s| match s.code.unwrap_or(0) {
                    0 => Ok(()),
                    code => Err(format!(
                        "osqueryd answered deregisterExtension() with code {code}: {}",
                        s.message.unwrap_or_default()
                    )),
                })
        });
        StopReport {
            workers_left,
            deregistered,
        }
    }

    fn remove_socket(&mut self) {
        let Some(identity) = self.identity.take() else {
            return;
        };
        let ours = std::fs::symlink_metadata(&self.listen_path)
            .is_ok_and(|m| (m.dev(), m.ino()) == identity);
        if ours {
            if let Err(e) = std::fs::remove_file(&self.listen_path) {
                log::warn!("cannot remove {}: {e}", self.listen_path.display());
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Without stop(): at least stop accepting and cut the connections.
        self.shared.begin_stop();
        self.shared.cut_connections();
        self.remove_socket();
    }
}

/// How often the acceptor looks at the stop flag while no one connects.
const ACCEPT_POLL: Duration = Duration::from_millis(100);

struct Shared<P: OsqueryPlugin + Clone> {
    handler: Handler<P>,
    config: ServerConfig,
    stopping: AtomicBool,
    /// Set by the handler when osqueryd calls shutdown().
    shutdown_requested: Arc<AtomicBool>,
    /// The live connections, so stop can shut them down and a full server
    /// can make room.
    conns: Mutex<HashMap<u64, Conn>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    next_id: AtomicU64,
    /// When a connection over the cap was last logged.
    refused_logged: Mutex<Option<Instant>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking worker must not take the server down with it.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl<P: OsqueryPlugin + Clone + Send + Sync + 'static> SharedState for Shared<P> {
    fn begin_stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    fn shutdown_requested(&self) -> bool {
        self.shutdown_requested.load(Ordering::SeqCst)
    }

    fn cut_connections(&self) {
        for c in lock(&self.conns).values() {
            let _ = c.stream.shutdown(std::net::Shutdown::Both);
        }
    }

    fn live_threads(&self) -> usize {
        lock(&self.threads)
            .iter()
            .filter(|t| !t.is_finished())
            .count()
    }

    fn join_finished(&self) {
        let mut threads = lock(&self.threads);
        let (done, busy): (Vec<_>, Vec<_>) = threads.drain(..).partition(|t| t.is_finished());
        *threads = busy;
        drop(threads);
        for t in done {
            let _ = t.join();
        }
    }
}

/// Waits up to `timeout` for `listener` to have a connection pending.
#[allow(unsafe_code)] // poll(2): std has no accept with a timeout
fn readable(listener: &UnixListener, timeout: Duration) -> io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd: listener.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    // SAFETY: `pfd` is one valid, initialised pollfd that outlives the call,
    // and nfds is 1; poll only writes `revents`.
    let n = unsafe { libc::poll(&mut pfd, 1, ms) };
    match n {
        n if n < 0 => {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                Ok(false)
            } else {
                Err(e)
            }
        }
        0 => Ok(false),
        _ => Ok(true),
    }
}

fn accept_loop<P: OsqueryPlugin + Clone + Send + Sync + 'static>(
    listener: &UnixListener,
    shared: &Arc<Shared<P>>,
) {
    if let Err(e) = listener.set_nonblocking(true) {
        log::warn!("listener: cannot set non-blocking: {e}");
    }
    while !shared.stopping.load(Ordering::SeqCst) {
        match readable(listener, ACCEPT_POLL) {
            Ok(true) => {}
            Ok(false) => continue,
            Err(e) => {
                log::warn!("listener: poll failed: {e}");
                thread::sleep(ACCEPT_POLL);
                continue;
            }
        }
        match listener.accept() {
            Ok((stream, _)) => spawn_worker(shared, stream),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => {
                // EMFILE and the like: back off instead of spinning.
                log::warn!("listener: accept failed: {e}");
                thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// One live connection: its stream (shared by its reader and writer; one
/// file descriptor per connection) and whether it waits for a request.
struct Conn {
    stream: Arc<UnixStream>,
    idle: Arc<AtomicBool>,
}

fn spawn_worker<P: OsqueryPlugin + Clone + Send + Sync + 'static>(
    shared: &Arc<Shared<P>>,
    stream: UnixStream,
) {
    shared.join_finished();
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let stream = Arc::new(stream);
    // Starts idle: a peer that connects and sends nothing is idle.
    let idle = Arc::new(AtomicBool::new(true));
    {
        let mut conns = lock(&shared.conns);
        if conns.len() >= shared.config.max_connections {
            // Full: make room by closing the oldest connection that waits
            // for a request (ids grow with time), so idle peers can never
            // lock osqueryd out; refuse only when every one is busy.
            let oldest_idle = conns
                .iter()
                .filter(|(_, c)| c.idle.load(Ordering::SeqCst))
                .map(|(id, _)| *id)
                .min();
            let evicted = oldest_idle.and_then(|old| conns.remove(&old));
            let full = evicted.is_none();
            if let Some(old) = evicted {
                let _ = old.stream.shutdown(std::net::Shutdown::Both);
            }
            let mut last = lock(&shared.refused_logged);
            if last.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                *last = Some(Instant::now());
                log::warn!(
                    "{} connections open: {}",
                    shared.config.max_connections,
                    if full {
                        "all busy, closing new ones until some end"
                    } else {
                        "closing the oldest idle ones to make room"
                    }
                );
            }
            if full {
                return; // dropping `stream` closes it
            }
        }
        conns.insert(
            id,
            Conn {
                stream: Arc::clone(&stream),
                idle: Arc::clone(&idle),
            },
        );
    }
    let worker = {
        let shared = Arc::clone(shared);
        thread::Builder::new()
            .name("osquery-conn".into())
            .stack_size(shared.config.worker_stack)
            .spawn(move || {
                serve(&shared, stream, &idle);
                lock(&shared.conns).remove(&id);
            })
    };
    match worker {
        Ok(t) => lock(&shared.threads).push(t),
        Err(e) => {
            log::warn!("cannot start a connection thread: {e}");
            lock(&shared.conns).remove(&id);
        }
    }
}

/// The write half of a shared stream.
struct Writer(Arc<UnixStream>);

impl io::Write for Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self.0).write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        (&*self.0).flush()
    }
}

/// A connection's read half, read under a per-request byte budget and
/// deadline.
struct Budgeted<R> {
    stream: R,
    left: Rc<Cell<usize>>,
    deadline: Rc<Cell<Instant>>,
    /// Cleared once a request's first bytes arrive.
    idle: Arc<AtomicBool>,
}

impl<R: Read> Read for Budgeted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.left.get();
        if left == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "request larger than the server accepts",
            ));
        }
        if Instant::now() >= self.deadline.get() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "request took too long to arrive",
            ));
        }
        let want = buf.len().min(left);
        let n = self.stream.read(buf.get_mut(..want).unwrap_or_default())?;
        if n > 0 {
            self.idle.store(false, Ordering::SeqCst);
        }
        self.left.set(left - n);
        Ok(n)
    }
}

/// Serves one connection until the peer hangs up, misbehaves or times out.
/// Any decoding error closes the connection (the generated processor has
/// already answered what it could answer).
fn serve<P: OsqueryPlugin + Clone + Send + Sync + 'static>(
    shared: &Shared<P>,
    stream: Arc<UnixStream>,
    idle: &Arc<AtomicBool>,
) {
    let config = &shared.config;
    // BSD accept() inherits O_NONBLOCK from the listener.
    let setup = stream
        .set_nonblocking(false)
        .and_then(|()| stream.set_read_timeout(Some(config.io_timeout)))
        .and_then(|()| stream.set_write_timeout(Some(config.io_timeout)));
    if let Err(e) = setup {
        log::debug!("connection setup failed: {e}");
        return;
    }
    serve_on(
        &shared.handler,
        config,
        Reader(Arc::clone(&stream)),
        Writer(stream),
        idle,
        &shared.stopping,
    );
}

/// The read half of a shared stream.
struct Reader(Arc<UnixStream>);

impl Read for Reader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self.0).read(buf)
    }
}

/// The request loop of one connection, over any byte stream.
fn serve_on<P: OsqueryPlugin + Clone, R: Read, W: io::Write>(
    handler: &Handler<P>,
    config: &ServerConfig,
    reader: R,
    writer: W,
    idle: &Arc<AtomicBool>,
    stopping: &AtomicBool,
) {
    let left = Rc::new(Cell::new(config.max_request_bytes));
    let deadline = Rc::new(Cell::new(Instant::now() + config.request_timeout));
    let budgeted = Budgeted {
        stream: reader,
        left: Rc::clone(&left),
        deadline: Rc::clone(&deadline),
        idle: Arc::clone(idle),
    };
    // Strict read: osqueryd always writes the versioned header.
    let mut input = TBinaryInputProtocol::with_config(
        TBufferedReadTransport::new(budgeted),
        true,
        config.limits.clone(),
    );
    let reply_type = Rc::new(Cell::new(None));
    let watched = Watch {
        inner: writer,
        reply_type: Rc::clone(&reply_type),
    };
    // 64 KiB: a full table read is megabytes, and each buffer's worth is
    // one write(2) (the default 4 KiB made that thousands).
    let mut output = TBinaryOutputProtocol::new(
        TBufferedWriteTransport::with_capacity(WRITE_BUFFER, watched),
        true,
    );
    while !stopping.load(Ordering::SeqCst) {
        idle.store(true, Ordering::SeqCst);
        left.set(config.max_request_bytes);
        deadline.set(Instant::now() + config.request_timeout);
        reply_type.set(None);
        match dispatch(handler, &mut input, &mut output) {
            // The generated processor answers a request it could not decode
            // with an exception reply and carries on; what follows on the
            // stream may be the rest of that request, so stop here.
            Ok(()) if reply_type.get() == Some(EXCEPTION) => {
                log::debug!("connection closed after an exception reply");
                break;
            }
            Ok(()) => {}
            Err(thrift::Error::Transport(e)) if e.kind == TransportErrorKind::EndOfFile => break,
            Err(e) => {
                log::debug!("connection closed: {e}");
                break;
            }
        }
    }
}

/// Reads one request and answers it: `call` here (so rows can be written
/// straight to the connection), everything else through the generated
/// functions, as the generated processor would.
fn dispatch<P: OsqueryPlugin + Clone, RT: TReadTransport, WT: TWriteTransport>(
    handler: &Handler<P>,
    i: &mut TBinaryInputProtocol<RT>,
    o: &mut TBinaryOutputProtocol<WT>,
) -> thrift::Result<()> {
    use osquery::{TExtensionManagerProcessFunctions as M, TExtensionProcessFunctions as E};
    let ident = i.read_message_begin()?;
    let seq = ident.sequence_number;
    let res = match ident.name.as_str() {
        "call" => {
            let mut begun = false;
            let res = process_call(handler, seq, i, o, &mut begun);
            if begun && res.is_err() {
                // Part of the reply is on its way: an exception reply now
                // would only garble it; end the connection instead.
                return res;
            }
            res
        }
        "ping" => E::process_ping(handler, seq, i, o),
        "shutdown" => E::process_shutdown(handler, seq, i, o),
        "extensions" => M::process_extensions(handler, seq, i, o),
        "options" => M::process_options(handler, seq, i, o),
        "registerExtension" => M::process_register_extension(handler, seq, i, o),
        "deregisterExtension" => M::process_deregister_extension(handler, seq, i, o),
        "query" => M::process_query(handler, seq, i, o),
        "getQueryColumns" => M::process_get_query_columns(handler, seq, i, o),
        method => Err(thrift::Error::Application(ApplicationError::new(
            ApplicationErrorKind::UnknownMethod,
            format!("unknown method {method}"),
        ))),
    };
    thrift::server::handle_process_result(&ident, res, o)
}

fn bad_args(what: &str) -> thrift::Error {
    thrift::Error::Protocol(ProtocolError::new(
        ProtocolErrorKind::InvalidData,
        format!("call(): {what}"),
    ))
}

/// `call`'s arguments: registry, item, request.
fn read_call_args(
    i: &mut dyn TInputProtocol,
) -> thrift::Result<(String, String, osquery::ExtensionPluginRequest)> {
    let (mut registry, mut item, mut request) = (None, None, None);
    i.read_struct_begin()?;
    loop {
        let field = i.read_field_begin()?;
        match (field.id, field.field_type) {
            (_, TType::Stop) => break,
            (Some(1), TType::String) => registry = Some(i.read_string()?),
            (Some(2), TType::String) => item = Some(i.read_string()?),
            (Some(3), TType::Map) => {
                let m = i.read_map_begin()?;
                if m.size > 0
                    && (m.key_type != Some(TType::String) || m.value_type != Some(TType::String))
                {
                    return Err(bad_args("request is not a map of strings"));
                }
                let mut map = osquery::ExtensionPluginRequest::new();
                for _ in 0..m.size {
                    let k = i.read_string()?;
                    let v = i.read_string()?;
                    map.insert(k, v);
                }
                i.read_map_end()?;
                request = Some(map);
            }
            (_, other) => i.skip(other)?,
        }
        i.read_field_end()?;
    }
    i.read_struct_end()?;
    match (registry, item, request) {
        (Some(r), Some(it), Some(req)) => Ok((r, it, req)),
        _ => Err(bad_args("registry, item and request are all required")),
    }
}

/// Answers `call`. A [`CallReply::Rows`] reply is written by hand: the
/// ExtensionResponse struct with its status, then the list header, then the
/// plugin's rows straight into the connection's buffered transport.
fn process_call<P: OsqueryPlugin + Clone, WT: TWriteTransport>(
    handler: &Handler<P>,
    seq: i32,
    i: &mut dyn TInputProtocol,
    o: &mut TBinaryOutputProtocol<WT>,
    begun: &mut bool,
) -> thrift::Result<()> {
    let (registry, item, request) = read_call_args(i)?;
    i.read_message_end()?;
    let reply = handler.plugin(&registry, &item)?.handle_call_reply(request);
    *begun = true;
    o.write_message_begin(&TMessageIdentifier::new("call", TMessageType::Reply, seq))?;
    o.write_struct_begin(&TStructIdentifier::new("call_result"))?;
    o.write_field_begin(&TFieldIdentifier::new("success", TType::Struct, 0))?;
    match reply {
        CallReply::Plain(response) => response.write_to_out_protocol(o)?,
        CallReply::Rows(rows) => {
            o.write_struct_begin(&TStructIdentifier::new("ExtensionResponse"))?;
            o.write_field_begin(&TFieldIdentifier::new("status", TType::Struct, 1))?;
            osquery::ExtensionStatus::new(0, "OK".to_string(), None).write_to_out_protocol(o)?;
            o.write_field_end()?;
            o.write_field_begin(&TFieldIdentifier::new("response", TType::List, 2))?;
            let n = rows.len();
            let announced = i32::try_from(n).map_err(|_| bad_args("too many rows"))?;
            o.write_list_begin(&TListIdentifier::new(TType::Map, announced))?;
            let written = rows.write_rows(&mut o.transport)?;
            if written != n {
                // The list header is sent: the reply cannot be repaired.
                return Err(thrift::Error::Transport(thrift::TransportError::new(
                    TransportErrorKind::Unknown,
                    format!("plugin wrote {written} of the {n} rows it announced"),
                )));
            }
            o.write_list_end()?;
            o.write_field_end()?;
            o.write_field_stop()?;
            o.write_struct_end()?;
        }
    }
    o.write_field_end()?;
    o.write_field_stop()?;
    o.write_struct_end()?;
    o.write_message_end()?;
    o.flush()
}

/// Reply bytes buffered before a write to the connection.
const WRITE_BUFFER: usize = 64 << 10;

/// The message type byte of a strict binary exception reply.
const EXCEPTION: u8 = 3;

/// A connection's write half that notes the message type of each reply
/// (byte 3 of the strict header, which the buffered transport hands down
/// whole in its first write of a reply).
struct Watch<W> {
    inner: W,
    reply_type: Rc<Cell<Option<u8>>>,
}

impl<W: io::Write> io::Write for Watch<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.reply_type.get().is_none() {
            if let [0x80, 0x01, _, kind, ..] = buf {
                self.reply_type.set(Some(*kind));
            }
        }
        self.inner.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Feeds `input` to the server's request loop as if one connection had
/// sent it, with `plugins` registered and `config`'s limits, and returns
/// the bytes it would have written back. For fuzzing and tests of the
/// request decoding; nothing is registered and no socket is opened.
pub fn serve_bytes<P: OsqueryPlugin + Clone + Send + Sync + 'static>(
    plugins: &[P],
    config: &ServerConfig,
    input: &[u8],
) -> thrift::Result<Vec<u8>> {
    let handler = Handler::new(plugins)?;
    let mut out = Vec::new();
    serve_on(
        &handler,
        config,
        input,
        &mut out,
        &Arc::new(AtomicBool::new(true)),
        &AtomicBool::new(false),
    );
    Ok(out)
}

struct Handler<P: OsqueryPlugin + Clone> {
    registry: HashMap<String, HashMap<String, P>>,
    shutdown_requested: Arc<AtomicBool>,
    on_shutdown: Option<ShutdownHook>,
}

impl<P: OsqueryPlugin + Clone> Handler<P> {
    fn new(plugins: &[P]) -> thrift::Result<Self> {
        let mut reg: HashMap<String, HashMap<String, P>> = HashMap::new();
        for var in Registry::VARIANTS {
            reg.insert((*var).to_string(), HashMap::new());
        }
        for plugin in plugins.iter() {
            reg.get_mut(plugin.registry().to_string().as_str())
                .ok_or_thrift_err(|| format!("Failed to register plugin {}", plugin.name()))?
                .insert(plugin.name(), plugin.clone());
        }
        Ok(Handler {
            registry: reg,
            shutdown_requested: Arc::new(AtomicBool::new(false)),
            on_shutdown: None,
        })
    }

    fn plugin(&self, registry: &str, item: &str) -> thrift::Result<&P> {
        self.registry
            .get(registry)
            .ok_or_thrift_err(|| format!("no registry {registry:?}"))?
            .get(item)
            .ok_or_thrift_err(|| format!("no item {item:?} in registry {registry:?}"))
    }

    fn with_hook(mut self, hook: Option<ShutdownHook>) -> Self {
        self.on_shutdown = hook;
        self
    }
}

impl<P: OsqueryPlugin + Clone> osquery::ExtensionSyncHandler for Handler<P> {
    fn handle_ping(&self) -> thrift::Result<osquery::ExtensionStatus> {
        Ok(osquery::ExtensionStatus {
            code: Some(0),
            message: Some("OK".to_string()),
            uuid: None,
        })
    }

    fn handle_call(
        &self,
        registry: String,
        item: String,
        request: osquery::ExtensionPluginRequest,
    ) -> thrift::Result<osquery::ExtensionResponse> {
        log::trace!("call {registry}/{item}: {request:?}");
        Ok(self.plugin(&registry, &item)?.handle_call(request))
    }

    fn handle_shutdown(&self) -> thrift::Result<()> {
        log::debug!("osqueryd called shutdown()");
        self.shutdown_requested.store(true, Ordering::SeqCst);
        if let Some(hook) = &self.on_shutdown {
            hook();
        }
        Ok(())
    }
}

fn not_supported(what: &str) -> osquery::ExtensionStatus {
    osquery::ExtensionStatus {
        code: Some(1),
        message: Some(format!("{what} not supported by an extension")),
        uuid: None,
    }
}

impl<P: OsqueryPlugin + Clone> osquery::ExtensionManagerSyncHandler for Handler<P> {
    fn handle_extensions(&self) -> thrift::Result<osquery::InternalExtensionList> {
        Ok(osquery::InternalExtensionList::new())
    }

    fn handle_options(&self) -> thrift::Result<osquery::InternalOptionList> {
        Ok(osquery::InternalOptionList::new())
    }

    fn handle_register_extension(
        &self,
        _info: osquery::InternalExtensionInfo,
        _registry: osquery::ExtensionRegistry,
    ) -> thrift::Result<osquery::ExtensionStatus> {
        Ok(not_supported("registerExtension"))
    }

    fn handle_deregister_extension(
        &self,
        _uuid: osquery::ExtensionRouteUUID,
    ) -> thrift::Result<osquery::ExtensionStatus> {
        Ok(not_supported("deregisterExtension"))
    }

    fn handle_query(&self, _sql: String) -> thrift::Result<osquery::ExtensionResponse> {
        Ok(osquery::ExtensionResponse::new(
            not_supported("query"),
            vec![],
        ))
    }

    fn handle_get_query_columns(&self, _sql: String) -> thrift::Result<osquery::ExtensionResponse> {
        Ok(osquery::ExtensionResponse::new(
            not_supported("getQueryColumns"),
            vec![],
        ))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::plugin::Registry;
    use std::collections::BTreeMap;

    #[derive(Clone)]
    struct Echo;

    impl OsqueryPlugin for Echo {
        fn name(&self) -> String {
            "echo".into()
        }
        fn registry(&self) -> Registry {
            Registry::Table
        }
        fn routes(&self) -> osquery::ExtensionPluginResponse {
            vec![]
        }
        fn ping(&self) -> osquery::ExtensionStatus {
            osquery::ExtensionStatus::default()
        }
        fn handle_call(
            &self,
            request: osquery::ExtensionPluginRequest,
        ) -> osquery::ExtensionResponse {
            osquery::ExtensionResponse::new(osquery::ExtensionStatus::default(), vec![request])
        }
        fn shutdown(&self) {}
    }

    /// Answers with `announced` rows but writes `written`.
    #[derive(Clone)]
    struct Streamer {
        announced: usize,
        written: usize,
    }

    struct Rows(usize, usize);

    impl crate::plugin::RowStream for Rows {
        fn len(&self) -> usize {
            self.0
        }
        fn write_rows(&self, out: &mut dyn std::io::Write) -> std::io::Result<usize> {
            let mut b = Vec::new();
            for i in 0..self.1 {
                crate::wire::map_header(&mut b, 1);
                crate::wire::string(&mut b, b"n");
                crate::wire::string(&mut b, i.to_string().as_bytes());
            }
            out.write_all(&b)?;
            Ok(self.1)
        }
    }

    impl OsqueryPlugin for Streamer {
        fn name(&self) -> String {
            "echo".into()
        }
        fn registry(&self) -> Registry {
            Registry::Table
        }
        fn routes(&self) -> osquery::ExtensionPluginResponse {
            vec![]
        }
        fn ping(&self) -> osquery::ExtensionStatus {
            osquery::ExtensionStatus::default()
        }
        fn handle_call(&self, _: osquery::ExtensionPluginRequest) -> osquery::ExtensionResponse {
            osquery::ExtensionResponse::default()
        }
        fn handle_call_reply(&self, _: osquery::ExtensionPluginRequest) -> CallReply {
            CallReply::Rows(Box::new(Rows(self.announced, self.written)))
        }
        fn shutdown(&self) {}
    }

    #[test]
    fn streamed_rows_decode_as_a_call_reply() {
        use thrift::protocol::TSerializable;
        let plugin = Streamer {
            announced: 3,
            written: 3,
        };
        let mut input = echo_call(1);
        input.extend(call("ping", &[]));
        let out = serve_bytes(&[plugin], &ServerConfig::default(), &input).unwrap();
        let mut p = TBinaryInputProtocol::new(&out[..], true);
        let ident = p.read_message_begin().unwrap();
        assert_eq!(
            (ident.name.as_str(), ident.message_type),
            ("call", TMessageType::Reply)
        );
        // The result struct: field 0 is the ExtensionResponse.
        p.read_struct_begin().unwrap();
        let f = p.read_field_begin().unwrap();
        assert_eq!((f.id, f.field_type), (Some(0), TType::Struct));
        let r = osquery::ExtensionResponse::read_from_in_protocol(&mut p).unwrap();
        assert_eq!(r.status.unwrap().code, Some(0));
        let rows = r.response.unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[2]["n"], "2");
        p.read_field_end().unwrap();
        assert_eq!(p.read_field_begin().unwrap().field_type, TType::Stop);
        p.read_struct_end().unwrap();
        // ... and the connection went on to answer the ping.
        assert_eq!(p.read_message_begin().unwrap().name, "ping");

        // A plugin that writes fewer rows than it announced ends the
        // connection; no exception reply is mixed into the rows.
        let liar = Streamer {
            announced: 3,
            written: 2,
        };
        let out = serve_bytes(&[liar], &ServerConfig::default(), &input).unwrap();
        let replies = out.windows(2).filter(|w| *w == [0x80, 0x01]).count();
        assert!(replies <= 1, "{out:?}");
        assert!(out.is_empty() || out[3] == 2, "{out:?}");
    }

    fn call(name: &str, args: &[u8]) -> Vec<u8> {
        let mut m = vec![0x80, 0x01, 0x00, 0x01];
        m.extend((name.len() as i32).to_be_bytes());
        m.extend(name.as_bytes());
        m.extend(9i32.to_be_bytes());
        m.extend(args);
        m.push(0);
        m
    }

    fn tstr(s: &str) -> Vec<u8> {
        let mut v = (s.len() as i32).to_be_bytes().to_vec();
        v.extend(s.as_bytes());
        v
    }

    fn echo_call(value_len: usize) -> Vec<u8> {
        let mut args = vec![11, 0, 1];
        args.extend(tstr("table"));
        args.extend([11, 0, 2]);
        args.extend(tstr("echo"));
        args.extend([13, 0, 3, 11, 11]);
        args.extend(1i32.to_be_bytes());
        args.extend(tstr("k"));
        args.extend(tstr(&"v".repeat(value_len)));
        call("call", &args)
    }

    fn serve(input: &[u8]) -> Vec<u8> {
        serve_bytes(&[Echo], &ServerConfig::default(), input).unwrap()
    }

    #[test]
    fn answers_calls_in_order_on_one_connection() {
        let mut input = call("ping", &[]);
        input.extend(echo_call(3));
        let out = serve(&input);
        // Two strict replies; the second carries the echoed request.
        assert_eq!(&out[..4], &[0x80, 0x01, 0x00, 0x02]);
        let echoed = out.windows(3).any(|w| w == b"vvv");
        assert!(echoed, "{out:?}");
        let _ = BTreeMap::<String, String>::new();
    }

    /// `bad` followed by a ping gets no answer but, at most, one exception
    /// reply: the connection ends at the bad request.
    fn at_most_an_exception(bad: &[u8]) {
        let mut input = bad.to_vec();
        input.extend(call("ping", &[]));
        let out = serve(&input);
        if !out.is_empty() {
            assert_eq!(&out[..4], &[0x80, 0x01, 0x00, EXCEPTION], "{out:?}");
            let replies = out.windows(2).filter(|w| *w == [0x80, 0x01]).count();
            assert_eq!(replies, 1, "{out:?}");
        }
    }

    #[test]
    fn hostile_sizes_close_the_connection() {
        // 0x7fffffff-element list in registerExtension (CVE-2026-43868).
        let mut args = vec![13, 0, 2, 11, 13];
        args.extend(1i32.to_be_bytes());
        args.extend(tstr("table"));
        args.extend([11, 15]);
        args.extend(1i32.to_be_bytes());
        args.extend(tstr("t"));
        args.push(13);
        args.extend(i32::MAX.to_be_bytes());
        at_most_an_exception(&call("registerExtension", &args));
        // Negative map size and string length.
        let mut neg = vec![13, 0, 3, 11, 11];
        neg.extend((-1i32).to_be_bytes());
        at_most_an_exception(&call("call", &neg));
        let mut neg = vec![11, 0, 1];
        neg.extend((-7i32).to_be_bytes());
        at_most_an_exception(&call("call", &neg));
        // Non-strict (old) header: refused by the strict server.
        let mut old = tstr("ping");
        old.push(1);
        old.extend(1i32.to_be_bytes());
        old.push(0);
        assert!(serve(&old).is_empty());
    }

    #[test]
    fn requests_over_the_byte_budget_are_refused() {
        let config = ServerConfig {
            max_request_bytes: 1024,
            ..ServerConfig::default()
        };
        let small = serve_bytes(&[Echo], &config, &echo_call(100)).unwrap();
        assert!(!small.is_empty());
        let mut input = echo_call(2000);
        input.extend(call("ping", &[]));
        let big = serve_bytes(&[Echo], &config, &input).unwrap();
        assert_eq!(&big[..4], &[0x80, 0x01, 0x00, EXCEPTION], "{big:?}");
        assert_eq!(big.windows(2).filter(|w| *w == [0x80, 0x01]).count(), 1);
    }

    #[test]
    fn unknown_items_get_an_error_reply() {
        let mut args = vec![11, 0, 1];
        args.extend(tstr("table"));
        args.extend([11, 0, 2]);
        args.extend(tstr("nosuch"));
        args.extend([13, 0, 3, 11, 11]);
        args.extend(0i32.to_be_bytes());
        let out = serve(&call("call", &args));
        // An exception reply (type 3).
        assert_eq!(&out[..4], &[0x80, 0x01, 0x00, EXCEPTION]);
    }
}
