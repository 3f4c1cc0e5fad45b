//! Command line: osqueryd's autoload flags plus our own, and the two modes.

use crate::engine::Engine;
use crate::journal::Journal;
use crate::journaling;
use crate::sources;
use crate::status::State;
use crate::store::StoreConfig;
use crate::users::SystemUsers;
use clap::Parser;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

/// Exit code for anything that stopped the run other than a replay: could
/// not start, osqueryd refused or dropped us.
pub(crate) const EXIT_ERROR: i32 = 1;
/// Exit code for a bad command line (clap's own convention, kept for a bad
/// `--source` list too).
pub(crate) const EXIT_USAGE: i32 = 2;

const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  ok: stopped by SIGTERM/SIGINT or osqueryd, or (--standalone) every replay read to its end
  1  error: could not start, or osqueryd refused or dropped the extension
  2  bad command line (unknown flag, bad --source list)
  3  --standalone replay failed: eslogger:FILE or bsm:PATH could not be opened or read,
     is empty, holds no records of its format, or was stopped by a signal before its end
     or before its rows were printed (the reason is the last line on stderr)";

/// Where osqueryd listens by default on Linux and macOS.
pub(crate) const DEFAULT_SOCKET: &str = "/var/osquery/osquery.em";

/// osqueryd autoloads an extension as
/// `PATH [--verbose] --socket P --timeout N --interval N`; those flags are
/// accepted exactly as it passes them, in any order, next to ours.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "kerberos_cache_access",
    version,
    about = "osquery extension: process executions that touch Kerberos credential caches",
    after_help = EXIT_CODES_HELP
)]
pub(crate) struct Args {
    /// Path of osqueryd's extension manager socket.
    #[arg(long, value_name = "PATH", default_value = DEFAULT_SOCKET)]
    pub socket: PathBuf,

    /// Seconds to wait for the socket to appear.
    #[arg(long, value_name = "SECONDS", default_value_t = 3)]
    pub timeout: u64,

    /// Seconds between health checks of osqueryd.
    #[arg(long, value_name = "SECONDS", default_value_t = 3)]
    pub interval: u64,

    /// Log at debug level (osqueryd passes this when it is verbose itself).
    #[arg(long)]
    pub verbose: bool,

    /// Accepted for compatibility with osqueryd builds that pass it.
    #[arg(long, hide = true)]
    pub(crate) noverbose: bool,

    /// Run without osqueryd and print each new row as one JSON object per line.
    #[arg(long)]
    pub standalone: bool,

    /// Event sources, comma-separated: auto (the platform's best exec source
    /// plus snapshot), or any of linux_audit, proc_connector (Linux),
    /// eslogger[:FILE], osquery_es, bsm[:PATH] (macOS; FILE and PATH replay
    /// a capture on any system), snapshot.
    #[arg(long, value_name = "LIST", default_value = "auto")]
    pub source: String,

    /// Keep at most this many rows; the oldest are evicted first.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub max_rows: usize,

    /// Evict rows stored longer ago than this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 24 * 3600)]
    pub retention: u64,

    /// Seconds between process snapshots; 0 scans only at start (and, under
    /// osqueryd, before each query).
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub(crate) snapshot_interval: u64,

    /// Directory for state that outlives the process (row journal, audit
    /// state found at start, instance locks). Default: /var/lib/kerberos_cache_access
    /// (Linux), /var/db/kerberos_cache_access (macOS). `--standalone` keeps a
    /// journal only when this is given.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Bound on the bytes the store holds (rows and their encoded forms).
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_BYTES)]
    pub max_bytes: usize,

    /// Put the host's audit configuration back as an earlier instance found
    /// it (or delete only our tagged rules), then exit. Refuses while another
    /// instance owns the audit session.
    #[arg(long)]
    pub cleanup_audit: bool,
}

/// Default store byte budget: far below the RSS an agent may use, far above
/// what 10,000 ordinary rows need (about 2 KB each).
pub(crate) const DEFAULT_MAX_BYTES: usize = 32 << 20;

impl Args {
    /// The state directory to use: `--state-dir`, or the platform default.
    pub(crate) fn state_dir_path(&self) -> PathBuf {
        self.state_dir
            .clone()
            .unwrap_or_else(crate::state::default_path)
    }

    /// Whether rows are journaled: always under osqueryd, and in
    /// `--standalone` only with an explicit `--state-dir`.
    pub(crate) fn journal_wanted(&self) -> bool {
        (!self.standalone || self.state_dir.is_some()) && !self.replays()
    }

    /// Whether `--source` replays a file (`eslogger:FILE`, `bsm:PATH`): such
    /// rows are not this host's present, so they are never journaled.
    pub(crate) fn replays(&self) -> bool {
        sources::parse_list(&self.source).is_ok_and(|plans| {
            plans
                .iter()
                .any(|p| matches!(p, sources::Plan::One(spec) if spec.arg.is_some()))
        })
    }

    /// What the osquery binding needs from the command line.
    pub(crate) fn osquery_settings(&self) -> crate::osquery::Settings {
        crate::osquery::Settings {
            socket: self.socket.clone(),
            timeout: Duration::from_secs(self.timeout),
            interval: Duration::from_secs(self.interval),
        }
    }

    pub(crate) fn store_config(&self) -> StoreConfig {
        StoreConfig {
            max_rows: self.max_rows.max(1),
            max_bytes: self.max_bytes.max(1),
            retention: Duration::from_secs(self.retention),
        }
    }
}

/// SIGTERM and SIGINT set `stop`; every loop polls it.
fn install_signal_handlers(stop: &Arc<AtomicBool>) -> anyhow::Result<()> {
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(stop))?;
    }
    Ok(())
}

fn init_logging(verbose: bool) {
    let level = if verbose { "debug" } else { "info" };
    let env = env_logger::Env::default().default_filter_or(level);
    // Logs go to stderr: osqueryd does not redirect an extension's output,
    // so they land wherever osqueryd's own stderr goes.
    let _ = env_logger::Builder::from_env(env)
        .target(env_logger::Target::Stderr)
        .try_init();
}

/// Runs the program and returns its exit code.
pub fn main() -> i32 {
    let args = Args::parse();
    init_logging(args.verbose && !args.noverbose);
    match run(&args) {
        Ok(code) => code,
        Err(e) => {
            log::error!("{e:#}");
            EXIT_ERROR
        }
    }
}

/// Runs what `args` ask for (`--cleanup-audit`, `--standalone`, or the
/// extension under osqueryd) and returns the exit code; usage errors are
/// logged and returned as an exit code, not as an `Err`.
pub(crate) fn run(args: &Args) -> anyhow::Result<i32> {
    if args.cleanup_audit {
        return Ok(cleanup_audit(args));
    }
    let specs = match sources::parse_list(&args.source) {
        Ok(specs) => specs,
        Err(e) => {
            log::error!("--source: {e:#}");
            return Ok(EXIT_USAGE);
        }
    };
    let engine = Arc::new(Engine::new(
        args.store_config(),
        Box::new(SystemUsers::new()),
    ));
    // Rows of earlier runs are back before any source or query runs; the
    // journal is fsynced once more when this returns.
    let _journal = start_journal(args, &engine);
    let stop = Arc::new(AtomicBool::new(false));
    install_signal_handlers(&stop)?;
    let options = sources::Options {
        snapshot_interval: Duration::from_secs(args.snapshot_interval),
        socket: args.socket.clone(),
        state_dir: args.state_dir_path(),
    };
    if args.standalone {
        Ok(crate::standalone::run(&engine, &specs, options, &stop)?)
    } else {
        Ok(crate::osquery::run_extension(
            &args.osquery_settings(),
            &engine,
            &specs,
            options,
            &stop,
        )?)
    }
}

/// Starts the journal the command line asks for: reads it into the engine's
/// store, makes the engine journal every new row, and reports the store's
/// state. `None` when rows are kept in memory by design (`--standalone`
/// without `--state-dir`, or a replay source).
fn start_journal(args: &Args, engine: &Arc<Engine>) -> Option<journaling::Running> {
    if !args.journal_wanted() {
        let why = if args.replays() {
            "a replayed file is never journaled"
        } else {
            "--standalone without --state-dir"
        };
        engine
            .status()
            .set_store(State::Active, format!("in memory only ({why})"));
        return None;
    }
    Some(journaling::Running::start(
        engine,
        Journal::new(args.state_dir_path()),
    ))
}

/// `--cleanup-audit`: 0 when the host's audit configuration is back (or
/// there was nothing to do), 1 with the reason otherwise.
fn cleanup_audit(args: &Args) -> i32 {
    #[cfg(target_os = "linux")]
    {
        match sources::linux_audit::cleanup(&args.state_dir_path()) {
            Ok(notes) => {
                for n in notes {
                    log::info!("cleanup-audit: {n}");
                }
                0
            }
            Err(e) => {
                log::error!("cleanup-audit: {e}");
                1
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = args;
        log::info!("cleanup-audit: nothing to do (this build changes no audit configuration)");
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_osqueryd_autoload_argv() {
        let a = Args::try_parse_from([
            "kerberos_cache_access.ext",
            "--verbose",
            "--socket",
            "/var/osquery/osquery.em",
            "--timeout",
            "3",
            "--interval",
            "5",
        ])
        .unwrap();
        assert!(a.verbose);
        assert_eq!(a.socket, PathBuf::from("/var/osquery/osquery.em"));
        assert_eq!((a.timeout, a.interval), (3, 5));
        assert!(!a.standalone);
        assert_eq!(a.source, "auto");
    }

    #[test]
    fn accepts_our_flags_alongside_in_any_order() {
        let a = Args::try_parse_from([
            "x",
            "--interval",
            "1",
            "--source",
            "snapshot",
            "--socket",
            "/tmp/s",
            "--max-rows",
            "10",
            "--retention",
            "60",
            "--timeout",
            "2",
            "--noverbose",
        ])
        .unwrap();
        assert_eq!(a.store_config().max_rows, 10);
        assert_eq!(a.store_config().retention, Duration::from_secs(60));
        assert!(a.noverbose);
    }

    #[test]
    fn journals_under_osqueryd_and_in_standalone_only_with_a_state_dir_never_a_replay() {
        let wanted = |argv: &[&str]| {
            let mut all = vec!["x"];
            all.extend_from_slice(argv);
            Args::try_parse_from(all).unwrap().journal_wanted()
        };
        assert!(wanted(&["--socket", "/tmp/s"]));
        assert!(!wanted(&["--standalone"]));
        assert!(wanted(&["--standalone", "--state-dir", "/tmp/d"]));
        assert!(!wanted(&[
            "--standalone",
            "--state-dir",
            "/tmp/d",
            "--source",
            "eslogger:/tmp/cap.jsonl",
        ]));
        assert!(!wanted(&["--source", "snapshot,bsm:/tmp/trail"]));
        assert!(wanted(&["--source", "bsm,snapshot"]));
    }

    #[test]
    fn rejects_bad_numbers() {
        assert!(Args::try_parse_from(["x", "--timeout", "soon"]).is_err());
    }
}
