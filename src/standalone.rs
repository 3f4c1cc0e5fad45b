//! `--standalone`: the sources and the store without osqueryd. Each new row is
//! printed as one JSON object per line on stdout.
//!
//! Rows are printed from a thread of their own, so a stdout nobody reads (a
//! full pipe) can hold back rows but never the process: the main thread
//! only watches for the end (a signal, the replays drained or failed, stdout
//! closed) and then gives the printer a bounded time to finish.
//!
//! Exit codes (also in the README and `--help`): [`EXIT_OK`] when every
//! replay was read to its end (or, live, when stopped by a signal or a closed
//! stdout); [`EXIT_REPLAY_FAILED`] when a replay could not be opened or read,
//! held nothing of its format, or was stopped before its end; errors before
//! the sources run exit 1 (`cli`).

use crate::engine::Engine;
use crate::event::SourceKind;
use crate::row::Row;
use crate::sources::{self, Outcome, Plan, SourceError};
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Exit code: ran as asked; every replay read to its end.
pub const EXIT_OK: i32 = 0;
/// Exit code: a replay source (`eslogger:FILE`, `bsm:PATH`) could not be
/// opened or read, held no records of its format, or was stopped before
/// its end or before its rows were printed.
pub const EXIT_REPLAY_FAILED: i32 = 3;

/// How often the main thread looks for the end.
const TICK: Duration = Duration::from_millis(100);
/// After a signal, how long the rows still queued may take to print before
/// the process exits without them (stdout may be a pipe nobody reads).
pub(crate) const PRINT_GRACE: Duration = Duration::from_secs(1);
/// The longest a signal takes to end a standalone run: noticing it, the
/// sources stopping, the printer's grace.
pub const SHUTDOWN_BOUND: Duration = Duration::from_millis(
    (TICK.as_millis() + sources::STOP_WAIT.as_millis() + PRINT_GRACE.as_millis()) as u64,
);

/// Why the main loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Signal,
    StdoutClosed,
    ReplayFailed,
    Drained,
}

/// The thread that writes rows to stdout.
/// Rows waiting for the printer at most.
const PRINT_QUEUE: usize = 1024;

struct Printer {
    handle: JoinHandle<()>,
    /// Set when no more rows will come: print what is queued, then end.
    last: Arc<AtomicBool>,
    /// Set by the printer when stdout refused a write.
    closed: Arc<AtomicBool>,
    printed: Arc<AtomicU64>,
}

impl Printer {
    fn spawn(rx: Receiver<Arc<Row>>) -> std::io::Result<Printer> {
        let last = Arc::new(AtomicBool::new(false));
        let closed = Arc::new(AtomicBool::new(false));
        let printed = Arc::new(AtomicU64::new(0));
        let handle = {
            let (last, closed, printed) = (last.clone(), closed.clone(), printed.clone());
            std::thread::Builder::new()
                .name("printer".into())
                .spawn(move || {
                    let stdout = std::io::stdout();
                    let mut out = stdout.lock();
                    let mut print = |row: &Row| {
                        let ok = writeln!(out, "{}", row.to_json())
                            .and_then(|()| out.flush())
                            .is_ok();
                        if ok {
                            printed.fetch_add(1, Ordering::Relaxed);
                        } else {
                            // Closed (piped into head, say): we are done.
                            closed.store(true, Ordering::Relaxed);
                        }
                        ok
                    };
                    loop {
                        match rx.recv_timeout(TICK) {
                            Ok(row) if print(&row) => {}
                            Ok(_) | Err(RecvTimeoutError::Disconnected) => return,
                            Err(RecvTimeoutError::Timeout) if last.load(Ordering::Relaxed) => {
                                for row in rx.try_iter() {
                                    if !print(&row) {
                                        return;
                                    }
                                }
                                return;
                            }
                            Err(RecvTimeoutError::Timeout) => {}
                        }
                    }
                })?
        };
        Ok(Printer {
            handle,
            last,
            closed,
            printed,
        })
    }
}

/// Why `--standalone` could not run.
#[derive(Debug, thiserror::Error)]
pub enum StandaloneError {
    /// The SIGTERM/SIGINT handlers could not be installed.
    #[error("{0}")]
    Signals(std::io::Error),
    /// The printer thread could not be started.
    #[error("{0}")]
    Printer(std::io::Error),
    /// The sources could not be started.
    #[error(transparent)]
    Sources(#[from] SourceError),
}

/// Starts the sources in `specs` and prints every new row as a JSON line
/// until `stop` is set or a signal arrives, stdout closes, or every replay
/// is drained (or one fails); then stops the sources. Returns the exit code
/// ([`EXIT_OK`] or [`EXIT_REPLAY_FAILED`]); an `Err` when it could not
/// start (signal handlers, printer thread, sources).
pub(crate) fn run(
    engine: &Arc<Engine>,
    specs: &[Plan],
    options: sources::Options,
    stop: &Arc<AtomicBool>,
) -> Result<i32, StandaloneError> {
    // Our own record of signals: `stop` is also set by us, to stop the
    // sources, and a signal after that must still cut the printer short.
    let signalled = Arc::new(AtomicBool::new(false));
    let mut signal_ids = Vec::new();
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_ids.push(
            signal_hook::flag::register(sig, Arc::clone(&signalled))
                .map_err(StandaloneError::Signals)?,
        );
    }
    // Bounded: a slow reader of stdout holds the sources back rather than
    // letting rows pile up in memory; a stop request releases them.
    let (tx, rx) = mpsc::sync_channel(PRINT_QUEUE);
    engine.observe(tx, Arc::clone(stop));
    let printer = Printer::spawn(rx).map_err(StandaloneError::Printer)?;
    let mut running = sources::start(engine, specs, options, stop)?;

    let end = loop {
        if stop.load(Ordering::Relaxed) || signalled.load(Ordering::Relaxed) {
            break End::Signal;
        }
        if printer.closed.load(Ordering::Relaxed) {
            break End::StdoutClosed;
        }
        if running.replay_failure().is_some() {
            break End::ReplayFailed;
        }
        if running.all_finished() {
            break End::Drained;
        }
        std::thread::sleep(TICK);
    };
    if end == End::StdoutClosed {
        log::info!("standalone: stdout closed, stopping");
    }

    // Stop the sources (bounded; linux_audit restores the audit state), then
    // let the printer finish: all the rows, unless a signal says to give up
    // after PRINT_GRACE.
    let outcomes = running.join();
    printer.last.store(true, Ordering::Relaxed);
    let mut grace_from = (end == End::Signal).then(Instant::now);
    while !printer.handle.is_finished() {
        if grace_from.is_none() && signalled.load(Ordering::Relaxed) {
            grace_from = Some(Instant::now());
        }
        if grace_from.is_some_and(|t| t.elapsed() >= PRINT_GRACE) {
            log::warn!(
                "standalone: stdout is not being read; exiting with rows unprinted ({} printed)",
                printer.printed.load(Ordering::Relaxed)
            );
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let unprinted = !printer.handle.is_finished();
    if !unprinted && printer.handle.join().is_err() {
        log::error!("standalone: the printer thread panicked");
    }
    for id in signal_ids {
        signal_hook::low_level::unregister(id);
    }
    // What each finished replay read and skipped, without --verbose.
    for (kind, _, _) in outcomes
        .iter()
        .filter(|(_, finite, o)| *finite && *o == Some(Outcome::Done))
    {
        if let Some(st) = engine.status().get(*kind) {
            log::info!("{kind}: {}; dropped {}", st.reason, st.dropped);
        }
    }
    log::info!(
        "standalone: printed {} row(s)",
        printer.printed.load(Ordering::Relaxed)
    );
    Ok(exit_code(end, &outcomes, unprinted))
}

/// The exit code, and the one line on stderr that says why a replay failed.
/// `unprinted`: rows were left unprinted (a signal while stdout was not
/// read), so a replay's report is incomplete.
fn exit_code(end: End, outcomes: &[(SourceKind, bool, Option<Outcome>)], unprinted: bool) -> i32 {
    let mut code = EXIT_OK;
    if unprinted && outcomes.iter().any(|(_, finite, _)| *finite) {
        log::error!("replay incomplete: stopped before every row was printed");
        code = EXIT_REPLAY_FAILED;
    }
    for (kind, finite, outcome) in outcomes {
        if !finite {
            continue;
        }
        match outcome {
            Some(Outcome::Done) => {}
            Some(Outcome::Failed(why)) => {
                log::error!("replay failed: {kind}: {why}");
                code = EXIT_REPLAY_FAILED;
            }
            // A reader that closed stdout has all it wants.
            _ if end == End::StdoutClosed => {}
            Some(Outcome::Interrupted(why)) => {
                log::error!("replay incomplete: {why}");
                code = EXIT_REPLAY_FAILED;
            }
            None => {
                log::error!("replay incomplete: source {kind} did not stop in time");
                code = EXIT_REPLAY_FAILED;
            }
        }
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        use Outcome::*;
        let es = SourceKind::Eslogger;
        let live = |o| vec![(SourceKind::LinuxAudit, false, o)];
        let replay = |o| vec![(es, true, o)];
        let failed = || Some(Failed("x".into()));
        let cut = || Some(Interrupted("x".into()));
        for (end, outcomes, unprinted, want) in [
            (End::Drained, replay(Some(Done)), false, EXIT_OK),
            (
                End::ReplayFailed,
                replay(failed()),
                false,
                EXIT_REPLAY_FAILED,
            ),
            (End::Signal, replay(cut()), false, EXIT_REPLAY_FAILED),
            (End::Signal, replay(None), false, EXIT_REPLAY_FAILED),
            // The replay was read, but not all its rows printed.
            (End::Signal, replay(Some(Done)), true, EXIT_REPLAY_FAILED),
            // A reader that closed stdout has what it wanted...
            (End::StdoutClosed, replay(cut()), false, EXIT_OK),
            // ...but a failure is still one.
            (
                End::StdoutClosed,
                replay(failed()),
                false,
                EXIT_REPLAY_FAILED,
            ),
            // Live sources never decide the exit code.
            (End::Signal, live(failed()), true, EXIT_OK),
            (End::Signal, live(None), false, EXIT_OK),
        ] {
            assert_eq!(
                exit_code(end, &outcomes, unprinted),
                want,
                "{end:?} {outcomes:?} {unprinted}"
            );
        }
    }

    #[test]
    fn a_signal_ends_a_run_within_five_seconds() {
        assert!(
            SHUTDOWN_BOUND <= Duration::from_secs(5),
            "{SHUTDOWN_BOUND:?}"
        );
    }
}
