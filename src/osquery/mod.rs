//! The osquery binding: everything that knows about osqueryd's extension
//! protocol lives under this module, so the binding can be swapped. It takes
//! its own [`Settings`]; the command line builds them.
//!
//! Our fork of osquery-rust-ng (`crates/osquery-rust-ng`) registers, checks
//! that osqueryd accepted, and serves our tables. Around it we add what an
//! autoloaded extension needs (the C++ SDK's behaviour): wait `--timeout` for
//! the socket, check on osqueryd every `--interval` and exit when it is gone
//! or has dropped us, and deregister on SIGTERM/SIGINT or osqueryd's
//! `shutdown()`.
//!
//! After an osqueryd restart the extension does not re-register: the new
//! osqueryd has removed our socket file and does not list us, so the health
//! check exits (0 when the socket vanished, 1 when osqueryd answers without
//! us) and osqueryd's watcher respawns the extension, which registers anew.

pub mod client;
mod error;
pub mod plugin;
/// The Thrift types of osquery's extension interface: the one generated copy
/// in our osquery-rust-ng fork, which its server also uses.
pub use osquery_rust_ng::thrift as thrift_gen;

use crate::engine::Engine;
use crate::schema::EXEC_TABLE;
use crate::sources::{self, Plan};
use crate::table::{ExecTable, StatusTable, Table};
use client::ManagerClient;
pub use error::{Error, Result};
use osquery_rust_ng::{Running, Server, StartError};
use plugin::TablePlugin;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The name osqueryd lists us under (`osquery_extensions.name`).
pub const EXTENSION_NAME: &str = EXEC_TABLE;

/// How long one call to osqueryd may take before we call it hung.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the server's shutdown (workers, then deregistration) may take.
const SERVER_STOP_WAIT: Duration = Duration::from_secs(3);
/// Everything after a stop request (sources, server, deregistration) ends
/// within this, even against a hung osqueryd: SIGTERM must end the process
/// within 5 s in every state.
pub const SHUTDOWN_BOUND: Duration = Duration::from_millis(4500);
/// `--timeout` values above this are taken as this (an absurd value must not
/// overflow a deadline).
const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// What the binding needs to know, from osqueryd's autoload flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// osqueryd's extension manager socket (`--socket`).
    pub socket: PathBuf,
    /// How long to wait for that socket (`--timeout`).
    pub timeout: Duration,
    /// Period of the health check of osqueryd (`--interval`; 1 s to 1 h).
    pub interval: Duration,
}

/// Why the extension stopped; decides the exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Exit {
    /// SIGTERM/SIGINT, or osqueryd asked us to shut down.
    Requested(&'static str),
    /// osqueryd went away; it respawns us when it comes back.
    CoreGone(String),
    /// osqueryd no longer lists us (or never accepted us).
    Deregistered(String),
}

impl Exit {
    /// The process exit code: 0 when asked to stop or when osqueryd went
    /// away (its watcher respawns us), 1 when osqueryd no longer lists or
    /// refused us, or our listener stopped ([`Exit::Deregistered`]).
    pub(crate) fn code(&self) -> i32 {
        match self {
            Exit::Requested(_) | Exit::CoreGone(_) => 0,
            Exit::Deregistered(_) => 1,
        }
    }
}

/// Waits until `socket` accepts connections, for at most `timeout`.
pub(crate) fn wait_for_socket(socket: &Path, timeout: Duration, stop: &AtomicBool) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if std::os::unix::net::UnixStream::connect(socket).is_ok() {
            return Ok(());
        }
        if stop.load(Ordering::Relaxed) {
            return Err(Error::Stopped);
        }
        if Instant::now() >= deadline {
            return Err(Error::SocketTimeout {
                path: socket.to_path_buf(),
                timeout,
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether osqueryd's socket exists and answers a ping.
fn core_answers(socket: &Path) -> Result<()> {
    if !socket.exists() {
        return Err(Error::SocketRemoved {
            path: socket.to_path_buf(),
        });
    }
    ManagerClient::connect(socket, CALL_TIMEOUT)
        .and_then(|mut c| c.ping())
        .map(|_| ())
        .map_err(|e| Error::NoAnswer(Box::new(e)))
}

/// One health check: osqueryd's socket exists, answers, and still lists us.
fn check_core(socket: &Path, uuid: i64) -> std::result::Result<(), Exit> {
    if !socket.exists() {
        return Err(Exit::CoreGone(format!(
            "osqueryd's socket {} was removed",
            socket.display()
        )));
    }
    let list = ManagerClient::connect(socket, CALL_TIMEOUT)
        .and_then(|mut c| c.extensions())
        .map_err(|e| Exit::CoreGone(format!("osqueryd does not answer: {e:#}")))?;
    if list.contains_key(&uuid) {
        Ok(())
    } else {
        Err(Exit::Deregistered(format!(
            "osqueryd no longer lists this extension (uuid {uuid})"
        )))
    }
}

/// Checks on osqueryd every `interval` until something ends the run. A
/// failed call is retried once after a short pause (a worker dropping
/// privileges can interrupt one call), so a dead osqueryd is still noticed
/// within two intervals. This is the only health check: the server itself
/// never pings osqueryd.
fn supervise(
    socket: &Path,
    server: &Running,
    interval: Duration,
    stop: &AtomicBool,
    core_shutdown: &AtomicBool,
) -> Exit {
    let stopped = || {
        if core_shutdown.load(Ordering::SeqCst) || server.shutdown_requested() {
            Exit::Requested("osqueryd called shutdown()")
        } else {
            Exit::Requested("signal")
        }
    };
    let retry_pause = (interval / 4).min(Duration::from_millis(500));
    loop {
        if !sources::sleep_unless_stopped(interval, stop) {
            return stopped();
        }
        if !server.is_serving() {
            return Exit::Deregistered("the extension's listener stopped".into());
        }
        if let Err(first) = check_core(socket, server.uuid()) {
            if matches!(first, Exit::CoreGone(_)) && socket.exists() {
                log::debug!("health check failed, retrying once: {first:?}");
                if !sources::sleep_unless_stopped(retry_pause, stop) {
                    return stopped();
                }
                if let Err(second) = check_core(socket, server.uuid()) {
                    return second;
                }
            } else {
                return first;
            }
        }
    }
}

/// Runs as an osqueryd extension until osqueryd goes away or we are told to
/// stop. Returns the exit code.
pub fn run_extension(
    settings: &Settings,
    engine: &Arc<Engine>,
    specs: &[Plan],
    options: sources::Options,
    stop: &Arc<AtomicBool>,
) -> Result<i32> {
    if let Ok(pid) = std::env::var("OSQUERY_EXTENSION") {
        log::debug!("autoloaded by osqueryd (OSQUERY_EXTENSION={pid})");
    }
    let socket = settings.socket.clone();
    let timeout = settings.timeout.min(MAX_TIMEOUT);
    let interval = settings
        .interval
        .clamp(Duration::from_secs(1), Duration::from_secs(3600));

    if let Err(e) = wait_for_socket(&socket, timeout, stop) {
        if stop.load(Ordering::Relaxed) {
            // A signal is a request, not a failure (exit 0).
            log::info!("stopping: signal while waiting for osqueryd's socket");
            return Ok(Exit::Requested("signal").code());
        }
        return Err(e);
    }
    let running =
        sources::start(engine, specs, options, stop).map_err(|e| Error::Sources(Box::new(e)))?;

    // osqueryd's shutdown() ends the run at once, not at the next check.
    let core_shutdown = Arc::new(AtomicBool::new(false));
    let mut server = Server::new(EXTENSION_NAME, &socket).on_shutdown({
        let stop = Arc::clone(stop);
        let core_shutdown = Arc::clone(&core_shutdown);
        move || {
            core_shutdown.store(true, Ordering::SeqCst);
            stop.store(true, Ordering::SeqCst);
        }
    });
    let tables: [Arc<dyn Table>; 2] = [
        Arc::new(ExecTable::new(Arc::clone(engine))),
        Arc::new(StatusTable::new(Arc::clone(engine))),
    ];
    for table in tables {
        server.register_plugin(TablePlugin::new(table));
    }

    let (server, exit) = match server.start() {
        Ok(server) => {
            log::info!(
                "registered with osqueryd as {EXTENSION_NAME} (uuid {}); health check every {} s",
                server.uuid(),
                interval.as_secs()
            );
            let exit = supervise(&socket, &server, interval, stop, &core_shutdown);
            (Some(server), exit)
        }
        Err(_) if stop.load(Ordering::Relaxed) => (None, Exit::Requested("signal")),
        // osqueryd keeps a dead instance's registration until its next
        // health check fails, and answers a quick respawn with "Duplicate
        // extension registered": exit at once; osqueryd respawns us.
        Err(e @ StartError::Refused { .. }) => (
            None,
            Exit::Deregistered(format!("{e}; exiting so osqueryd can respawn us")),
        ),
        // osqueryd vanishing while we start is not our failure.
        Err(e) => match core_answers(&socket) {
            Ok(()) => (None, Exit::Deregistered(format!("{e}"))),
            Err(why) => (None, Exit::CoreGone(why.to_string())),
        },
    };

    // Shut down. The server (workers, then deregistration when we were asked
    // to stop) and the sources (linux_audit restores the kernel's audit
    // state) stop in parallel; both count from the same moment, so their
    // bounds do not add up. Against a hung osqueryd the deregistration times
    // out within SERVER_STOP_WAIT.
    let shutdown = Instant::now();
    stop.store(true, Ordering::Relaxed);
    let deregister = matches!(exit, Exit::Requested(_));
    let server_stop = server.map(|server| {
        std::thread::Builder::new()
            .name("osquery-stop".into())
            .spawn(move || server.stop(SERVER_STOP_WAIT, deregister))
    });
    running.join();
    match server_stop {
        Some(Ok(t)) => {
            while !t.is_finished() && shutdown.elapsed() < SHUTDOWN_BOUND {
                std::thread::sleep(Duration::from_millis(10));
            }
            if !t.is_finished() {
                log::warn!("the extension server did not stop in time; exiting anyway");
            } else {
                match t.join() {
                    Ok(report) => {
                        if let Some(Err(e)) = report.deregistered {
                            log::warn!("could not deregister: {e}");
                        }
                    }
                    Err(_) => log::error!("the extension server's shutdown panicked"),
                }
            }
        }
        Some(Err(e)) => log::warn!("cannot stop the extension server: {e}"),
        None => {}
    }
    match &exit {
        Exit::Requested(why) => log::info!("stopping: {why}"),
        Exit::CoreGone(why) => log::warn!("osqueryd went away ({why}); exiting"),
        Exit::Deregistered(why) => log::error!("{why}; exiting"),
    }
    Ok(exit.code())
}
