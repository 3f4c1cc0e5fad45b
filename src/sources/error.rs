//! The sources' errors: why a source could not start, why it stopped, why a
//! replay failed, and why `--source` could not be read. Typed so the
//! callers decide on the variant (a cut replay is not a failure); the
//! messages are the status table's reasons and the logs' lines.

use std::io;
use std::path::PathBuf;

/// Why a source could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A finite source that did not reach the end of its input because it
    /// was asked to stop: not a failure of the source, but the replay is
    /// incomplete. Returned by the eslogger and BSM replays on a stop
    /// request; `--standalone` logs it as an incomplete replay and exits
    /// with `EXIT_REPLAY_FAILED`.
    #[error("{0}")]
    Interrupted(String),
    /// A replay input could not be opened (`what`: "eslogger file", "BSM
    /// trail"): `open(2)` or `fstat(2)` on the `eslogger:FILE` / `bsm:PATH`
    /// argument failed. The operator fixes the path or its permissions.
    #[error("cannot open {what} {}: {err}", path.display())]
    Open {
        /// Which kind of input, for the message: "eslogger file" or "BSM trail".
        what: &'static str,
        /// The path as given after `eslogger:` or `bsm:`.
        path: PathBuf,
        /// Why opening or stat-ing it failed.
        err: io::Error,
    },
    /// A replay input is a directory; returned when the replay is opened,
    /// before anything is read.
    #[error("cannot read {what} {}: it is a directory", path.display())]
    IsADirectory {
        /// Which kind of input, for the message: "eslogger file" or "BSM trail".
        what: &'static str,
        /// The path as given after `eslogger:` or `bsm:`.
        path: PathBuf,
    },
    /// A replay input holds no byte: returned at the end of a replay that
    /// read nothing, so an empty capture is a failed replay, not a clean run.
    #[error("{what} {} is empty", path.display())]
    Empty {
        /// Which kind of input, for the message: "eslogger file" or "BSM trail".
        what: &'static str,
        /// The path as given after `eslogger:` or `bsm:`.
        path: PathBuf,
    },
    /// A thread of the source could not be started (`std::thread::Builder::spawn`
    /// failed, e.g. out of threads or memory); `start` returns it.
    #[error("{0}")]
    Thread(io::Error),
    /// osqueryd could not run one of `osquery_es`'s queries (`what`: "its
    /// version query", "a query on es_process_events"). Returned by the
    /// preflight checks on (re)connect; at start it makes the source
    /// unavailable.
    #[error("osqueryd could not run {what}: {err}")]
    Query {
        /// Which preflight query failed, for the message.
        what: &'static str,
        /// The binding's error, with osqueryd's own message when it refused.
        err: crate::osquery::Error,
    },
    /// `osquery_es` cannot reach osqueryd: connecting to the extension
    /// manager socket failed (osqueryd not running, wrong `--socket`). At
    /// start the source is unavailable; while running, the next poll retries.
    #[error("cannot reach osqueryd's extension socket {}: {err}", path.display())]
    Unreachable {
        /// osqueryd's extension manager socket (`--socket`).
        path: PathBuf,
        /// Why the connection failed.
        err: crate::osquery::Error,
    },
    /// `osquery_es`'s poll of es_process_events failed; the source is shown
    /// failed with this reason, drops the connection and retries at the next
    /// poll.
    #[error("es_process_events query failed: {0}")]
    EventsQuery(crate::osquery::Error),
    /// The source cannot run on this host (not a fault); the reason as the
    /// status table shows it.
    #[error("{0}")]
    Unavailable(String),
    /// Anything else that stopped the source; the reason as the status
    /// table shows it.
    #[error("{0}")]
    Failed(String),
}

/// Why the Linux audit configuration could not be read, restored or
/// cleaned up.
#[cfg(target_os = "linux")]
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// linux_audit could not start.
    #[error(transparent)]
    Start(#[from] crate::sources::linux_audit::control::StartError),
    /// The state directory cannot be used.
    #[error(transparent)]
    StateDir(#[from] crate::state::StateDirError),
    /// The audit netlink socket could not be opened.
    #[error("opening the audit netlink: {0}")]
    Netlink(io::Error),
    /// One of our exec rules could not be deleted (by `--cleanup-audit`,
    /// when no record says what an earlier instance added).
    #[error("deleting the {arch} execve rule: {err}")]
    DeleteRule {
        /// The rule's audit arch as auditctl names it: "b64" or "b32".
        arch: String,
        /// The kernel's answer to AUDIT_DEL_RULE.
        err: io::Error,
    },
    /// A recorded exec rule of ours could not be deleted while undoing the
    /// record (on stop, on recovery at start, or by `--cleanup-audit`); the
    /// change stays recorded for the next try. A rule already gone is no error.
    #[error("deleting our {arch} execve rule: {err}")]
    DeleteOurRule {
        /// The rule's audit arch as auditctl names it: "b64" or "b32".
        arch: String,
        /// The kernel's answer to AUDIT_DEL_RULE.
        err: io::Error,
    },
    /// A setting we changed could not be put back while undoing the record;
    /// it stays recorded for the next try. A setting someone else changed
    /// since is left alone, not an error.
    #[error("restoring the {what}: {err}")]
    Revert {
        /// Which setting: "backlog wait", "backlog limit", "enabled flag" or
        /// "audit pid".
        what: String,
        /// The kernel's answer to AUDIT_SET.
        err: io::Error,
    },
    /// The record of an earlier boot could not be deleted.
    #[error("removing the old audit record: {0}")]
    RemoveOldRecord(io::Error),
    /// The record could not be deleted after a full restore.
    #[error("removing the audit record: {0}")]
    RemoveRecord(io::Error),
    /// Changes that could not be undone (they stay recorded).
    #[error("{}", join(.0))]
    Undo(Vec<AuditError>),
    /// What we changed could not be written down (the reason as saving gave it).
    #[error("the audit record could not be saved: {0}")]
    RecordNotSaved(String),
    /// A live instance owns the audit session: `--cleanup-audit` refuses,
    /// since that instance restores the configuration itself when it exits.
    #[error(
        "a running instance (pid {pid}) owns the audit session in {}; stop it first \
         (it restores the audit configuration when it exits)",
        dir.display()
    )]
    Owned {
        /// The owner's pid as text, "?" when the lock file does not say.
        pid: String,
        /// The state directory whose owner lock is held.
        dir: PathBuf,
    },
    /// The owner lock could not be taken for a reason other than another
    /// owner (the lock file cannot be opened or locked).
    #[error("owner lock in {}: {err}", dir.display())]
    OwnerLock {
        /// The state directory holding the lock file.
        dir: PathBuf,
        /// Why opening or locking it failed.
        err: io::Error,
    },
}

#[cfg(target_os = "linux")]
fn join(errors: &[AuditError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Why `--source` could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ListError {
    /// A name that is no source (`known`: the names that are).
    #[error("unknown source {name:?}: expected auto or one of {known}")]
    Unknown { name: String, known: String },
    /// A source of another platform.
    #[error(
        "source {name} is not available in this build of kerberos_cache_access (platform {})",
        std::env::consts::OS
    )]
    NotInThisBuild { name: String },
    /// `NAME:ARG` for a source that reads no file.
    #[error("source {name} takes no argument (got {item:?})")]
    TakesNoArgument { name: String, item: String },
    /// `NAME:` with nothing after the colon.
    #[error("source {name}: empty file name in {item:?}")]
    EmptyFileName { name: String, item: String },
    /// Nothing but commas and spaces.
    #[error("--source lists no source")]
    Empty,
}
