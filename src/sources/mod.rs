//! Event sources: where exec events come from, and which ones run.
//!
//! A source turns whatever the platform offers into [`ExecEvent`]s and hands
//! them to [`Engine::ingest`]. Streaming sources run on their own thread;
//! the snapshot also registers a scan the engine runs before each query.
//!
//! [`ExecEvent`]: crate::event::ExecEvent

pub mod bsm;
mod error;
pub mod eslogger;
pub mod exec_cache;
#[cfg(target_os = "linux")]
pub mod linux_audit;
pub mod osquery_es;
#[cfg(target_os = "linux")]
pub mod proc_connector;
pub mod replay;
pub mod snapshot;

use crate::engine::Engine;
use crate::event::SourceKind;
use crate::status::State;
#[cfg(target_os = "linux")]
pub use error::AuditError;
pub(crate) use error::ListError;
pub use error::SourceError;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A streaming event source (audit netlink, eslogger, …).
pub trait Source: Send {
    /// Which source this is: names its thread, its status-table row and the
    /// `source` column of the rows it adds.
    fn kind(&self) -> SourceKind;
    /// Delivers events until `stop` is set or, for a finite source (a replayed
    /// file), until the input is drained. Problems are reported through the
    /// engine's status board; an `Err` marks the source failed.
    fn run(&mut self, engine: &Engine, stop: &AtomicBool) -> Result<(), SourceError>;
    /// Whether `run` returns by itself once its input is exhausted.
    fn is_finite(&self) -> bool {
        false
    }
    /// Runs on the starting thread before `run`, so what it does is in
    /// place when [`start`] returns (the snapshot scans once and registers
    /// its on-demand scan with the engine).
    fn prepare(&mut self, _engine: &Engine) {}
    /// Whether `run` has work of its own after `prepare`; false starts no
    /// thread (the snapshot with no interval only scans on demand).
    fn needs_thread(&self) -> bool {
        true
    }
}

/// One item of `--source`: a source name and its optional argument
/// (`eslogger:FILE`, `bsm:PATH`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSpec {
    /// The source named before the colon.
    pub kind: SourceKind,
    /// What follows the colon: the file to replay (`eslogger:FILE`,
    /// `bsm:PATH`); `None` runs the source live. Only eslogger and bsm take
    /// one, and it is never empty (`parse_list` rejects both).
    pub arg: Option<String>,
}

impl SourceSpec {
    /// The live source `kind`, with no argument.
    pub fn new(kind: SourceKind) -> SourceSpec {
        SourceSpec { kind, arg: None }
    }
}

/// What to start: a named source, or the first of several that can run here
/// (how `auto` picks the best exec-event source of the platform).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Start this source; if it cannot run, its status row says why and
    /// nothing replaces it. Each item of an explicit `--source` list.
    One(SourceSpec),
    /// Try these in order and start the first that opens; each one tried
    /// before it keeps a status row saying why it could not run, and the
    /// rest are not tried. What `auto` uses for the exec-event source.
    FirstOf(Vec<SourceSpec>),
}

/// The sources this build implements on this platform.
pub(crate) fn implemented(kind: SourceKind) -> bool {
    match kind {
        SourceKind::Snapshot => true,
        SourceKind::LinuxAudit | SourceKind::ProcConnector => cfg!(target_os = "linux"),
        SourceKind::OsqueryEs | SourceKind::Eslogger | SourceKind::Bsm => true,
    }
}

/// Parses `--source`: `auto`, or a comma-separated list of source names.
pub(crate) fn parse_list(list: &str) -> Result<Vec<Plan>, ListError> {
    let mut out: Vec<Plan> = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if item == "auto" {
            for plan in auto() {
                if !out.contains(&plan) {
                    out.push(plan);
                }
            }
            continue;
        }
        let (name, arg) = match item.split_once(':') {
            Some((n, a)) => (n, Some(a.to_string())),
            None => (item, None),
        };
        let Some(kind) = SourceKind::from_name(name) else {
            let known: Vec<&str> = SourceKind::ALL.iter().map(|k| k.as_str()).collect();
            return Err(ListError::Unknown {
                name: name.to_string(),
                known: known.join(", "),
            });
        };
        if !implemented(kind) {
            return Err(ListError::NotInThisBuild {
                name: name.to_string(),
            });
        }
        let takes_arg = matches!(kind, SourceKind::Eslogger | SourceKind::Bsm);
        if arg.is_some() && !takes_arg {
            return Err(ListError::TakesNoArgument {
                name: name.to_string(),
                item: item.to_string(),
            });
        }
        if arg.as_deref().is_some_and(str::is_empty) {
            return Err(ListError::EmptyFileName {
                name: name.to_string(),
                item: item.to_string(),
            });
        }
        let plan = Plan::One(SourceSpec { kind, arg });
        if !out.contains(&plan) {
            out.push(plan);
        }
    }
    if out.is_empty() {
        return Err(ListError::Empty);
    }
    Ok(out)
}

/// What `auto` means on this platform: the best exec-event source that can
/// run, and the snapshot, always.
pub fn auto() -> Vec<Plan> {
    let mut plans = Vec::new();
    if cfg!(target_os = "macos") {
        plans.push(Plan::FirstOf(vec![
            SourceSpec::new(SourceKind::Eslogger),
            SourceSpec::new(SourceKind::OsqueryEs),
            SourceSpec::new(SourceKind::Bsm),
        ]));
    }
    if cfg!(target_os = "linux") {
        plans.push(Plan::FirstOf(vec![
            SourceSpec::new(SourceKind::LinuxAudit),
            SourceSpec::new(SourceKind::ProcConnector),
        ]));
    }
    plans.push(Plan::One(SourceSpec::new(SourceKind::Snapshot)));
    plans
}

/// How long shutdown waits for a source thread to stop before it leaves it
/// to process exit. Sources that undo something on the host on their way out
/// are always waited for (their own cleanup is bounded): `linux_audit` puts
/// the kernel's audit state back, live `eslogger` stops and reaps its child.
pub(crate) const STOP_WAIT: Duration = Duration::from_secs(2);

/// How a source ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It returned by itself: a replay read its input to the end; a live
    /// source stopped when asked.
    Done,
    /// A replay was asked to stop before the end of its input.
    Interrupted(String),
    /// It could not start, could not read, or (a replay) read nothing of its
    /// format; the status table says the same.
    Failed(String),
}

/// One started (or failed) source.
struct Slot {
    kind: SourceKind,
    /// Replays a file (`eslogger:FILE`, `bsm:PATH`): it ends by itself.
    finite: bool,
    /// Waited for on shutdown however long it takes (see [`STOP_WAIT`]).
    awaited: bool,
    handle: Option<JoinHandle<Outcome>>,
    outcome: Option<Outcome>,
}

impl Slot {
    fn finished(&self) -> bool {
        self.handle.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Collects the outcome of a thread that ended.
    fn reap(&mut self) {
        if self.handle.as_ref().is_some_and(JoinHandle::is_finished) {
            if let Some(handle) = self.handle.take() {
                self.outcome = Some(handle.join().unwrap_or_else(|_| {
                    log::error!("source {} thread panicked", self.kind);
                    Outcome::Failed(format!("source {} panicked", self.kind))
                }));
            }
        }
    }
}

/// Running sources: the threads to join on shutdown, and how the replays
/// went.
///
/// Dropping it stops and joins the sources, so an error anywhere after
/// `start` still lets `linux_audit` put the kernel's audit state back.
pub struct Running {
    slots: Vec<Slot>,
    stop: Arc<AtomicBool>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.slots.iter().any(|s| s.handle.is_some()) {
            self.stop.store(true, Ordering::Relaxed);
            self.wait(STOP_WAIT);
        }
    }
}

impl Running {
    /// True when every source is finite and has finished.
    pub(crate) fn all_finished(&self) -> bool {
        self.slots.iter().all(|s| s.finite && s.finished())
    }

    /// The first replay that failed so far, as "source: reason".
    pub(crate) fn replay_failure(&mut self) -> Option<String> {
        self.slots.iter_mut().find_map(|s| {
            s.reap();
            match (&s.outcome, s.finite) {
                (Some(Outcome::Failed(why)), true) => Some(format!("{}: {why}", s.kind)),
                _ => None,
            }
        })
    }

    /// Stops every source and waits for it: at most `STOP_WAIT`, except
    /// for the sources that clean up after themselves (`linux_audit`
    /// restoring the audit state), which are waited for until they are done.
    /// Returns each source's outcome (`None`: left running).
    pub fn join(mut self) -> Vec<(SourceKind, bool, Option<Outcome>)> {
        self.stop.store(true, Ordering::Relaxed);
        self.wait(STOP_WAIT);
        self.slots
            .drain(..)
            .map(|s| (s.kind, s.finite, s.outcome))
            .collect()
    }

    fn wait(&mut self, bound: Duration) {
        let deadline = Instant::now() + bound;
        let mut warned = false;
        loop {
            for slot in &mut self.slots {
                slot.reap();
            }
            let waiting: Vec<&Slot> = self.slots.iter().filter(|s| s.handle.is_some()).collect();
            if waiting.is_empty() {
                return;
            }
            if Instant::now() >= deadline {
                if !waiting.iter().any(|s| s.awaited) {
                    for slot in waiting {
                        log::warn!(
                            "source {} did not stop within {} s; leaving it to process exit",
                            slot.kind,
                            bound.as_secs()
                        );
                    }
                    // Detached: the process ends without it.
                    for slot in &mut self.slots {
                        slot.handle = None;
                    }
                    return;
                }
                if !warned {
                    for slot in waiting.iter().filter(|s| s.awaited) {
                        log::warn!("waiting for source {} to clean up", slot.kind);
                    }
                    warned = true;
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Settings for the sources that `start` builds.
#[derive(Debug, Clone)]
pub struct Options {
    /// How often the snapshot runs by itself; zero runs it once at start
    /// (and, inside osqueryd, before each query).
    pub(crate) snapshot_interval: Duration,
    /// osqueryd's extension manager socket (for `osquery_es`).
    pub socket: std::path::PathBuf,
    /// Where state that outlives the process lives (see `state`): the audit
    /// configuration found at start and the audit-owner lock.
    pub state_dir: std::path::PathBuf,
}

/// Why a source could not start: it cannot run here (`Unavailable`, not a
/// fault), or it broke (`Failed`).
pub(crate) enum StartFailure {
    Unavailable(String),
    Failed(String),
}

/// Builds a streaming source.
fn open(spec: &SourceSpec, options: &Options) -> Result<Box<dyn Source>, StartFailure> {
    match spec.kind {
        SourceKind::Eslogger => match &spec.arg {
            Some(file) => eslogger::Eslogger::replay(std::path::Path::new(file))
                .map(|s| Box::new(s) as Box<dyn Source>)
                .map_err(|e| StartFailure::Failed(e.to_string())),
            None if cfg!(target_os = "macos") => eslogger::Eslogger::live()
                .map(|s| Box::new(s) as Box<dyn Source>)
                .map_err(|e| StartFailure::Unavailable(e.to_string())),
            None => Err(StartFailure::Unavailable(
                "eslogger is Apple's (macOS 13+); use eslogger:FILE to replay a capture".into(),
            )),
        },
        SourceKind::Bsm => match &spec.arg {
            Some(path) => bsm::Bsm::trail(std::path::Path::new(path))
                .map(|s| Box::new(s) as Box<dyn Source>)
                .map_err(|e| StartFailure::Failed(e.to_string())),
            #[cfg(target_os = "macos")]
            None => bsm::Bsm::pipe()
                .map(|s| Box::new(s) as Box<dyn Source>)
                .map_err(|e| StartFailure::Unavailable(e.to_string())),
            #[cfg(not(target_os = "macos"))]
            None => Err(StartFailure::Unavailable(
                "/dev/auditpipe is macOS only; use bsm:PATH to read a trail file".into(),
            )),
        },
        SourceKind::OsqueryEs => osquery_es::open(&options.socket, osquery_es::DEFAULT_POLL)
            .map(|s| Box::new(s) as Box<dyn Source>)
            .map_err(|e| StartFailure::Unavailable(e.to_string())),
        #[cfg(target_os = "linux")]
        SourceKind::LinuxAudit => match linux_audit::LinuxAudit::start(&options.state_dir) {
            Ok(s) => Ok(Box::new(s)),
            Err(linux_audit::control::StartError::Unavailable(why)) => {
                Err(StartFailure::Unavailable(why))
            }
            Err(linux_audit::control::StartError::Failed(why)) => Err(StartFailure::Failed(why)),
        },
        #[cfg(target_os = "linux")]
        SourceKind::ProcConnector => proc_connector::ProcConnector::open()
            .map(|s| Box::new(s) as Box<dyn Source>)
            .map_err(|e| StartFailure::Unavailable(e.to_string())),
        SourceKind::Snapshot => Ok(Box::new(snapshot::SnapshotSource::system(
            options.snapshot_interval,
        ))),
        #[allow(unreachable_patterns)]
        other => Err(StartFailure::Unavailable(format!(
            "source {other} is not available in this build"
        ))),
    }
}

/// Starts the planned sources. The snapshot scans once before this returns,
/// so the first query already sees what was running at start. A source that
/// cannot run is recorded in the status table with the reason, and the rest
/// run without it.
pub fn start(
    engine: &Arc<Engine>,
    plans: &[Plan],
    options: Options,
    stop: &Arc<AtomicBool>,
) -> Result<Running, SourceError> {
    // Built first, so an error below stops what already started (Drop).
    let mut running = Running {
        slots: Vec::new(),
        stop: Arc::clone(stop),
    };
    let slots = &mut running.slots;
    for plan in plans {
        let candidates = match plan {
            Plan::One(spec) => std::slice::from_ref(spec),
            Plan::FirstOf(specs) => specs.as_slice(),
        };
        let mut previous: Option<SourceKind> = None;
        for spec in candidates {
            match open(spec, &options) {
                Ok(source) => {
                    if let Some(prev) = previous {
                        log::warn!("source {prev} cannot run; falling back to {}", spec.kind);
                    }
                    slots.extend(spawn(engine, source, stop)?);
                    break;
                }
                Err(StartFailure::Unavailable(why)) => {
                    engine.status().set(spec.kind, State::Unavailable, why);
                }
                Err(StartFailure::Failed(why)) => {
                    engine.status().set(spec.kind, State::Failed, why.clone());
                    if spec.arg.is_some() {
                        // A replay that cannot open: `--standalone` exits on it.
                        slots.push(Slot {
                            kind: spec.kind,
                            finite: true,
                            awaited: false,
                            handle: None,
                            outcome: Some(Outcome::Failed(why)),
                        });
                    }
                }
            }
            previous = Some(spec.kind);
        }
    }
    Ok(running)
}

/// Runs a streaming source on its own thread; an error marks it failed.
/// `None` when the source needs no thread.
fn spawn(
    engine: &Arc<Engine>,
    mut source: Box<dyn Source>,
    stop: &Arc<AtomicBool>,
) -> Result<Option<Slot>, SourceError> {
    let kind = source.kind();
    let finite = source.is_finite();
    source.prepare(engine);
    if !source.needs_thread() {
        return Ok(None);
    }
    let engine = Arc::clone(engine);
    let stop = Arc::clone(stop);
    let handle = std::thread::Builder::new()
        .name(kind.as_str().into())
        .spawn(move || match source.run(&engine, &stop) {
            Ok(()) => Outcome::Done,
            Err(e) => match e {
                SourceError::Interrupted(why) => Outcome::Interrupted(why),
                e => {
                    // A replay's error is the whole story; a live source's
                    // says what stopped it.
                    let why = if finite {
                        e.to_string()
                    } else {
                        format!("stopped: {e}")
                    };
                    engine.status().set(kind, State::Failed, why.clone());
                    Outcome::Failed(why)
                }
            },
        })
        .map_err(SourceError::Thread)?;
    Ok(Some(Slot {
        kind,
        finite,
        awaited: matches!(kind, SourceKind::LinuxAudit | SourceKind::Eslogger) && !finite,
        handle: Some(handle),
        outcome: None,
    }))
}

/// Sleeps for `total` in small steps; false as soon as `stop` is set.
pub(crate) fn sleep_unless_stopped(total: Duration, stop: &AtomicBool) -> bool {
    let step = Duration::from_millis(100);
    let mut left = total;
    while !left.is_zero() {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        let d = left.min(step);
        std::thread::sleep(d);
        left -= d;
    }
    !stop.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(kind: SourceKind, awaited: bool, f: impl FnOnce() -> Outcome + Send + 'static) -> Slot {
        Slot {
            kind,
            finite: false,
            awaited,
            handle: Some(std::thread::spawn(f)),
            outcome: None,
        }
    }

    #[test]
    fn join_leaves_a_stuck_source_but_waits_for_one_that_cleans_up() {
        let stop = Arc::new(AtomicBool::new(false));
        let (release, stuck) = std::sync::mpsc::channel::<()>();
        let cleanup = STOP_WAIT + Duration::from_millis(300);
        let s = Arc::clone(&stop);
        let running = Running {
            slots: vec![
                // Ignores the stop flag until released.
                slot(SourceKind::Eslogger, false, move || {
                    let _ = stuck.recv();
                    Outcome::Done
                }),
                // Restores host state for longer than STOP_WAIT after stop.
                slot(SourceKind::LinuxAudit, true, move || {
                    while !s.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    std::thread::sleep(cleanup);
                    Outcome::Done
                }),
            ],
            stop: Arc::clone(&stop),
        };
        let t = Instant::now();
        let outcomes = running.join();
        assert!(t.elapsed() >= cleanup, "{:?}", t.elapsed());
        assert_eq!(
            outcomes,
            [
                (SourceKind::Eslogger, false, None),
                (SourceKind::LinuxAudit, false, Some(Outcome::Done))
            ]
        );
        drop(release);
    }

    #[test]
    fn a_replay_that_cannot_open_is_a_failure_at_once() {
        let engine = Arc::new(Engine::for_tests());
        let stop = Arc::new(AtomicBool::new(false));
        let plans = parse_list("bsm:/nonexistent/trail").unwrap();
        let options = Options {
            snapshot_interval: Duration::ZERO,
            socket: "/nonexistent/osquery.em".into(),
            state_dir: "/nonexistent/state".into(),
        };
        let mut running = start(&engine, &plans, options, &stop).unwrap();
        let why = running.replay_failure().unwrap();
        assert!(
            why.starts_with("bsm: cannot open BSM trail /nonexistent/trail"),
            "{why}"
        );
        assert!(running.all_finished());
        let st = engine.status().get(SourceKind::Bsm).unwrap();
        assert_eq!(st.state, State::Failed);
    }

    /// A finite source that ends with the given error.
    struct Ends(Option<SourceError>);

    impl Source for Ends {
        fn kind(&self) -> SourceKind {
            SourceKind::Eslogger
        }
        fn run(&mut self, _: &Engine, _: &AtomicBool) -> Result<(), SourceError> {
            self.0.take().map_or(Ok(()), Err)
        }
        fn is_finite(&self) -> bool {
            true
        }
    }

    #[test]
    fn a_cut_replay_is_interrupted_and_other_errors_fail_it() {
        let engine = Arc::new(Engine::for_tests());
        let stop = Arc::new(AtomicBool::new(false));
        let outcome = |e: SourceError| {
            let slot = spawn(&engine, Box::new(Ends(Some(e))), &stop).unwrap();
            let running = Running {
                slots: slot.into_iter().collect(),
                stop: Arc::new(AtomicBool::new(false)),
            };
            running.join().pop().and_then(|(_, _, o)| o)
        };
        let cut = outcome(SourceError::Interrupted("cut short".into()));
        assert_eq!(cut, Some(Outcome::Interrupted("cut short".into())));
        assert!(
            engine.status().get(SourceKind::Eslogger).is_none(),
            "a cut replay is not a failure"
        );
        let empty = SourceError::Empty {
            what: "eslogger file",
            path: "/x".into(),
        };
        let failed = outcome(empty);
        assert_eq!(
            failed,
            Some(Outcome::Failed("eslogger file /x is empty".into()))
        );
        let st = engine.status().get(SourceKind::Eslogger).unwrap();
        assert_eq!(st.state, State::Failed);
        assert_eq!(st.reason, "eslogger file /x is empty");
    }

    #[test]
    fn parses_source_lists() {
        assert_eq!(parse_list("auto").unwrap(), auto());
        assert_eq!(
            parse_list("snapshot").unwrap(),
            [Plan::One(SourceSpec::new(SourceKind::Snapshot))]
        );
        assert_eq!(parse_list(" auto , snapshot").unwrap(), auto());
        let err = parse_list("nope").unwrap_err().to_string();
        assert!(err.contains("unknown source \"nope\""), "{err}");
        assert!(parse_list("").is_err());
        assert_eq!(parse_list("snapshot,snapshot").unwrap().len(), 1);
        assert!(parse_list("snapshot:x").is_err());
    }

    #[test]
    fn auto_always_includes_the_snapshot() {
        assert!(auto().contains(&Plan::One(SourceSpec::new(SourceKind::Snapshot))));
        #[cfg(target_os = "linux")]
        assert_eq!(
            auto()[0],
            Plan::FirstOf(vec![
                SourceSpec::new(SourceKind::LinuxAudit),
                SourceSpec::new(SourceKind::ProcConnector)
            ])
        );
    }

    #[test]
    fn file_arguments() {
        assert_eq!(
            parse_list("eslogger:/tmp/x.jsonl,snapshot").unwrap(),
            [
                Plan::One(SourceSpec {
                    kind: SourceKind::Eslogger,
                    arg: Some("/tmp/x.jsonl".into())
                }),
                Plan::One(SourceSpec::new(SourceKind::Snapshot))
            ]
        );
        assert!(parse_list("eslogger:").is_err());
        assert!(parse_list("osquery_es:x").is_err());
    }

    #[test]
    fn unimplemented_sources_say_so() {
        // The replayable sources build everywhere; the live variants say why
        // they cannot run when started.
        for kind in [
            SourceKind::Snapshot,
            SourceKind::Eslogger,
            SourceKind::OsqueryEs,
            SourceKind::Bsm,
        ] {
            assert!(implemented(kind), "{kind}");
        }
        assert_eq!(
            implemented(SourceKind::LinuxAudit),
            cfg!(target_os = "linux")
        );
        #[cfg(not(target_os = "linux"))]
        assert!(parse_list("linux_audit").is_err());
    }
}
