//! The osquery binding: everything that knows about osqueryd's extension
//! protocol lives under this module, so the binding can be swapped.
//!
//! osquery-rust-ng serves our tables and registers them. Around it we add what
//! an autoloaded extension needs and the crate does not do (see the C++ SDK's
//! behaviour): wait `--timeout` for the socket, confirm that osqueryd really
//! accepted the registration, check on osqueryd every `--interval` and exit
//! when it is gone or has dropped us, and deregister on SIGTERM/SIGINT.

pub mod client;
pub mod plugin;
#[allow(
    clippy::all,
    clippy::pedantic,
    dead_code,
    unused_imports,
    unused_extern_crates,
    non_camel_case_types,
    missing_docs
)]
pub mod thrift_gen;

use crate::cli::Args;
use crate::engine::Engine;
use crate::schema::EXEC_TABLE;
use crate::sources::{self, Plan};
use crate::table::{ExecTable, StatusTable, Table};
use anyhow::{anyhow, bail, Context, Result};
use client::ManagerClient;
use osquery_rust_ng::Server;
use plugin::{Instance, TablePlugin, IDENTIFY_ACTION};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The name osqueryd lists us under (`osquery_extensions.name`).
pub const EXTENSION_NAME: &str = EXEC_TABLE;

/// How long one call to osqueryd may take before we call it hung.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// How long shutdown waits for osquery-rust-ng's thread.
const SERVER_STOP_WAIT: Duration = Duration::from_secs(3);
/// Everything after a stop request (sources, server, deregistration) ends
/// within this, even against a hung osqueryd: SIGTERM must end the process
/// within 5 s in every state.
pub const SHUTDOWN_BOUND: Duration = Duration::from_millis(4500);
/// `--timeout` values above this are taken as this (an absurd value must not
/// overflow a deadline).
const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// Why the extension stopped; decides the exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// SIGTERM/SIGINT, or osqueryd asked us to shut down.
    Requested(&'static str),
    /// osqueryd went away; it respawns us when it comes back.
    CoreGone(String),
    /// osqueryd no longer lists us (or never accepted us).
    Deregistered(String),
}

impl Exit {
    pub fn code(&self) -> i32 {
        match self {
            Exit::Requested(_) | Exit::CoreGone(_) => 0,
            Exit::Deregistered(_) => 1,
        }
    }
}

/// Waits until `socket` accepts connections, for at most `timeout`.
pub fn wait_for_socket(socket: &Path, timeout: Duration, stop: &AtomicBool) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if std::os::unix::net::UnixStream::connect(socket).is_ok() {
            return Ok(());
        }
        if stop.load(Ordering::Relaxed) {
            bail!("stopped while waiting for osqueryd's socket");
        }
        if Instant::now() >= deadline {
            bail!(
                "osqueryd's extension socket {} did not accept connections within {} s (--timeout)",
                socket.display(),
                timeout.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn extension_socket(socket: &Path, uuid: i64) -> PathBuf {
    let mut s = socket.as_os_str().to_owned();
    s.push(format!(".{uuid}"));
    PathBuf::from(s)
}

/// Finds our registration among the ones osqueryd lists: the one whose
/// socket answers [`IDENTIFY_ACTION`] with our pid and nonce. Returns the
/// uuid, or the uuids of other live extensions that hold our name.
fn find_own_uuid(socket: &Path, me: &Instance) -> Result<std::result::Result<i64, Vec<i64>>> {
    let list = ManagerClient::connect(socket, CALL_TIMEOUT)?.extensions()?;
    let mut others = Vec::new();
    for (uuid, info) in list.iter().filter(|(_, i)| i.name == EXTENSION_NAME) {
        let probe = ManagerClient::connect(&extension_socket(socket, *uuid), CALL_TIMEOUT)
            .and_then(|mut c| {
                c.call(
                    "table",
                    EXEC_TABLE,
                    BTreeMap::from([("action".to_string(), IDENTIFY_ACTION.to_string())]),
                )
            });
        match probe {
            Ok((_, rows)) if rows.first().is_some_and(|r| me.matches(r)) => return Ok(Ok(*uuid)),
            _ => {
                log::debug!("registration {uuid} ({}) is not ours", info.version);
                others.push(*uuid);
            }
        }
    }
    Ok(Err(others))
}

/// Confirms that osqueryd accepted our registration, for up to `timeout`:
/// osquery-rust-ng 2.0.0 ignores a refused registration and keeps running.
fn confirm_registration(
    socket: &Path,
    me: &Instance,
    timeout: Duration,
    server: &JoinHandle<()>,
    stop: &AtomicBool,
) -> Result<i64> {
    let deadline = Instant::now() + timeout;
    let mut last_error = None;
    loop {
        if stop.load(Ordering::Relaxed) {
            bail!("stopped before osqueryd confirmed the registration");
        }
        match find_own_uuid(socket, me) {
            Ok(Ok(uuid)) => return Ok(uuid),
            Ok(Err(others)) if !others.is_empty() && Instant::now() >= deadline => {
                bail!(
                    "osqueryd refused the registration: an extension named {EXTENSION_NAME} is \
                     already registered (uuid {others:?}; osqueryd answers \"Duplicate extension \
                     registered\" to a quick respawn). Exiting so osqueryd can respawn us."
                );
            }
            Ok(Err(_)) => {}
            Err(e) => last_error = Some(e),
        }
        if server.is_finished() {
            bail!("the extension server stopped before osqueryd confirmed the registration");
        }
        if Instant::now() >= deadline {
            return Err(match last_error {
                Some(e) => e.context("could not confirm the registration with osqueryd"),
                None => anyhow!("osqueryd did not register the extension"),
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether osqueryd's socket exists and answers a ping.
fn core_answers(socket: &Path) -> std::result::Result<(), String> {
    if !socket.exists() {
        return Err(format!(
            "osqueryd's socket {} was removed",
            socket.display()
        ));
    }
    ManagerClient::connect(socket, CALL_TIMEOUT)
        .and_then(|mut c| c.ping())
        .map(|_| ())
        .map_err(|e| format!("osqueryd does not answer: {e:#}"))
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
/// within two intervals.
fn supervise(
    socket: &Path,
    uuid: i64,
    interval: Duration,
    stop: &AtomicBool,
    server: &JoinHandle<()>,
) -> Exit {
    let retry_pause = (interval / 4).min(Duration::from_millis(500));
    loop {
        if !sources::sleep_unless_stopped(interval, stop) {
            return Exit::Requested("signal");
        }
        if server.is_finished() {
            // osquery-rust-ng stops, and deregisters itself, when osqueryd
            // calls shutdown() or when one of its own pings fails.
            return match check_core(socket, uuid) {
                Err(gone @ Exit::CoreGone(_)) => gone,
                _ => Exit::Requested("osqueryd called shutdown()"),
            };
        }
        if let Err(first) = check_core(socket, uuid) {
            if matches!(first, Exit::CoreGone(_)) && socket.exists() {
                log::debug!("health check failed, retrying once: {first:?}");
                if !sources::sleep_unless_stopped(retry_pause, stop) {
                    return Exit::Requested("signal");
                }
                if let Err(second) = check_core(socket, uuid) {
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
    args: &Args,
    engine: &Arc<Engine>,
    specs: &[Plan],
    options: sources::Options,
    stop: &Arc<AtomicBool>,
) -> Result<i32> {
    if let Ok(pid) = std::env::var("OSQUERY_EXTENSION") {
        log::debug!("autoloaded by osqueryd (OSQUERY_EXTENSION={pid})");
    }
    let socket = args.socket.clone();
    let socket_str = socket
        .to_str()
        .ok_or_else(|| anyhow!("--socket {} is not valid UTF-8", socket.display()))?
        .to_string();
    let timeout = Duration::from_secs(args.timeout).min(MAX_TIMEOUT);
    let interval = Duration::from_secs(args.interval.clamp(1, 3600));

    if let Err(e) = wait_for_socket(&socket, timeout, stop) {
        if stop.load(Ordering::Relaxed) {
            // A signal is a request, not a failure (exit 0).
            log::info!("stopping: signal while waiting for osqueryd's socket");
            return Ok(Exit::Requested("signal").code());
        }
        return Err(e);
    }
    let running = sources::start(engine, specs, options, stop)?;

    let me = Arc::new(Instance::current());
    let tables: [Arc<dyn Table>; 2] = [
        Arc::new(ExecTable::new(Arc::clone(engine))),
        Arc::new(StatusTable::new(Arc::clone(engine))),
    ];
    let mut server = Server::new(Some(EXTENSION_NAME), &socket_str)
        .with_context(|| format!("cannot connect to osqueryd at {socket_str}"))?;
    for table in tables {
        server.register_plugin(TablePlugin::new(table, Arc::clone(&me)));
    }
    let handle = server.get_stop_handle();
    let server_thread = std::thread::Builder::new()
        .name("osquery-server".into())
        .spawn(move || {
            if let Err(e) = server.run() {
                log::error!("extension server failed: {e}");
            }
        })?;

    let confirm_within = timeout.max(Duration::from_secs(2));
    let (uuid, exit) = match confirm_registration(
        &socket,
        &me,
        confirm_within,
        &server_thread,
        stop,
    ) {
        Ok(uuid) => {
            log::info!(
                "registered with osqueryd as {EXTENSION_NAME} (uuid {uuid}); health check every {} s",
                interval.as_secs()
            );
            (
                Some(uuid),
                supervise(&socket, uuid, interval, stop, &server_thread),
            )
        }
        Err(_) if stop.load(Ordering::Relaxed) => (None, Exit::Requested("signal")),
        // osqueryd vanishing while we start is not our failure.
        Err(e) => match core_answers(&socket) {
            Ok(()) => (None, Exit::Deregistered(format!("{e:#}"))),
            Err(why) => (None, Exit::CoreGone(why)),
        },
    };

    // Shut down. Sources first (linux_audit restores the kernel's audit
    // state), then osquery-rust-ng, which deregisters and removes its socket.
    // Its client has no timeouts, so against a hung osqueryd its thread may
    // never end: wait a bounded time and leave it to process exit.
    // The server stops in parallel with the sources; both waits count from
    // the same moment, so their bounds do not add up.
    let shutdown = Instant::now();
    handle.stop();
    stop.store(true, Ordering::Relaxed);
    running.join();
    while !server_thread.is_finished() && shutdown.elapsed() < SERVER_STOP_WAIT {
        std::thread::sleep(Duration::from_millis(20));
    }
    if server_thread.is_finished() {
        if server_thread.join().is_err() {
            log::error!("extension server thread panicked");
        }
    } else {
        log::warn!("the extension server did not stop (osqueryd not answering); exiting anyway");
    }

    // Two calls at most, in what is left of the shutdown bound.
    let per_call = SHUTDOWN_BOUND.saturating_sub(shutdown.elapsed()) / 2;
    if let (Some(uuid), Exit::Requested(_), true) =
        (uuid, &exit, per_call >= Duration::from_millis(50))
    {
        // Make sure the registration is gone even if the crate's own
        // deregistration failed, so a quick restart is not refused.
        if let Ok(mut c) = ManagerClient::connect(&socket, per_call.min(CALL_TIMEOUT)) {
            if c.extensions().is_ok_and(|l| l.contains_key(&uuid)) {
                if let Err(e) = c.deregister(uuid) {
                    log::warn!("could not deregister uuid {uuid}: {e:#}");
                }
            }
        }
    }
    match &exit {
        Exit::Requested(why) => log::info!("stopping: {why}"),
        Exit::CoreGone(why) => log::warn!("osqueryd went away ({why}); exiting"),
        Exit::Deregistered(why) => log::error!("{why}; exiting"),
    }
    Ok(exit.code())
}
