//! Event sources: where exec events come from, and which ones run.
//!
//! A source turns whatever the platform offers into [`ExecEvent`]s and hands
//! them to [`Engine::ingest`]. Streaming sources run on their own thread;
//! the snapshot is also run by the engine on demand (before each query).
//!
//! [`ExecEvent`]: crate::event::ExecEvent

pub mod snapshot;

use crate::engine::Engine;
use crate::event::SourceKind;
use crate::status::State;
use anyhow::{bail, Result};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// A streaming event source (audit netlink, eslogger, …).
pub trait Source: Send {
    fn kind(&self) -> SourceKind;
    /// Delivers events until `stop` is set or, for a finite source (a replayed
    /// file), until the input is drained. Problems are reported through the
    /// engine's status board; an `Err` marks the source failed.
    fn run(&mut self, engine: &Engine, stop: &AtomicBool) -> Result<()>;
    /// Whether `run` returns by itself once its input is exhausted.
    fn is_finite(&self) -> bool {
        false
    }
}

/// One item of `--source`: a source name and its optional argument
/// (`eslogger:FILE`, `bsm:PATH`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSpec {
    pub kind: SourceKind,
    pub arg: Option<String>,
}

/// The sources this build implements.
pub const IMPLEMENTED: &[SourceKind] = &[SourceKind::Snapshot];

/// Parses `--source`: `auto`, or a comma-separated list of source names.
pub fn parse_list(list: &str) -> Result<Vec<SourceSpec>> {
    let mut out: Vec<SourceSpec> = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if item == "auto" {
            for spec in auto() {
                if !out.iter().any(|s| s.kind == spec.kind) {
                    out.push(spec);
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
            bail!(
                "unknown source {name:?}: expected auto or one of {}",
                known.join(", ")
            );
        };
        if !IMPLEMENTED.contains(&kind) {
            bail!("source {name} is not available in this version of kerberos_cache_access");
        }
        if kind == SourceKind::Snapshot && arg.is_some() {
            bail!("source snapshot takes no argument (got {item:?})");
        }
        if let Some(prev) = out.iter().find(|s| s.kind == kind) {
            if prev.arg != arg {
                bail!("source {name} is listed twice with different arguments");
            }
            continue;
        }
        out.push(SourceSpec { kind, arg });
    }
    if out.is_empty() {
        bail!("--source lists no source");
    }
    Ok(out)
}

/// What `auto` means on this platform: the best exec-event source available
/// (added by the platform source issues) and the snapshot, always.
pub fn auto() -> Vec<SourceSpec> {
    vec![SourceSpec {
        kind: SourceKind::Snapshot,
        arg: None,
    }]
}

/// Running sources: the threads to join on shutdown.
pub struct Running {
    threads: Vec<(SourceKind, bool, JoinHandle<()>)>,
}

impl Running {
    /// True when every source is finite and has finished.
    pub fn all_finished(&self) -> bool {
        self.threads
            .iter()
            .all(|(_, finite, handle)| *finite && handle.is_finished())
    }

    pub fn join(self) {
        for (kind, _, handle) in self.threads {
            if handle.join().is_err() {
                log::error!("source {kind} thread panicked");
            }
        }
    }
}

/// Settings for the sources that `start` builds.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// How often the snapshot runs by itself; zero runs it once at start
    /// (and, inside osqueryd, before each query).
    pub snapshot_interval: Duration,
}

/// Starts the listed sources. The snapshot scans once before this returns, so
/// the first query already sees what was running at start.
pub fn start(
    engine: &Arc<Engine>,
    specs: &[SourceSpec],
    options: Options,
    stop: &Arc<AtomicBool>,
) -> Result<Running> {
    let mut threads = Vec::new();
    for spec in specs {
        match spec.kind {
            SourceKind::Snapshot => {
                let table = Box::new(snapshot::system::SystemProcesses::new());
                engine.install_snapshot(snapshot::Snapshot::new(table));
                engine.status().set(
                    SourceKind::Snapshot,
                    State::Active,
                    snapshot_reason(options.snapshot_interval),
                );
                engine.scan_snapshot(None);
                if !options.snapshot_interval.is_zero() {
                    let engine = Arc::clone(engine);
                    let stop = Arc::clone(stop);
                    let every = options.snapshot_interval;
                    let handle =
                        std::thread::Builder::new()
                            .name("snapshot".into())
                            .spawn(move || {
                                while sleep_unless_stopped(every, &stop) {
                                    engine.scan_snapshot(Some(every / 2));
                                }
                            })?;
                    threads.push((SourceKind::Snapshot, false, handle));
                }
            }
            other => bail!("source {other} is not available in this version"),
        }
    }
    Ok(Running { threads })
}

fn snapshot_reason(interval: Duration) -> String {
    let base = "live process list: sees processes running at scan time, not short-lived execs";
    if interval.is_zero() {
        format!("{base}; scans at start and before each query")
    } else {
        format!(
            "{base}; scans every {}s and before each query",
            interval.as_secs()
        )
    }
}

/// Sleeps for `total` in small steps; false as soon as `stop` is set.
pub fn sleep_unless_stopped(total: Duration, stop: &AtomicBool) -> bool {
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

    #[test]
    fn parses_source_lists() {
        assert_eq!(parse_list("auto").unwrap(), auto());
        assert_eq!(
            parse_list("snapshot").unwrap()[0].kind,
            SourceKind::Snapshot
        );
        assert_eq!(parse_list(" auto , snapshot").unwrap().len(), 1);
        let err = parse_list("nope").unwrap_err().to_string();
        assert!(err.contains("unknown source \"nope\""), "{err}");
        assert!(parse_list("").is_err());
        assert_eq!(parse_list("snapshot,snapshot").unwrap().len(), 1);
        assert!(parse_list("snapshot:x").is_err());
    }

    #[test]
    fn unimplemented_sources_say_so() {
        let err = parse_list("linux_audit").unwrap_err().to_string();
        assert!(err.contains("not available"), "{err}");
    }
}
