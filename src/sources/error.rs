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
    /// incomplete.
    #[error("{0}")]
    Interrupted(String),
    /// A replay input could not be opened (`what`: "eslogger file", "BSM
    /// trail").
    #[error("cannot open {what} {}: {err}", path.display())]
    Open {
        what: &'static str,
        path: PathBuf,
        err: io::Error,
    },
    /// A replay input is a directory.
    #[error("cannot read {what} {}: it is a directory", path.display())]
    IsADirectory { what: &'static str, path: PathBuf },
    /// A replay input holds no byte.
    #[error("{what} {} is empty", path.display())]
    Empty { what: &'static str, path: PathBuf },
    /// A thread of the source could not be started.
    #[error("{0}")]
    Thread(io::Error),
    /// osqueryd could not run one of `osquery_es`'s queries (`what`: "its
    /// version query", "a query on es_process_events").
    #[error("osqueryd could not run {what}: {err}")]
    Query {
        what: &'static str,
        err: crate::osquery::Error,
    },
    /// `osquery_es` cannot reach osqueryd.
    #[error("cannot reach osqueryd's extension socket {}: {err}", path.display())]
    Unreachable {
        path: PathBuf,
        err: crate::osquery::Error,
    },
    /// `osquery_es`'s poll of es_process_events failed.
    #[error("es_process_events query failed: {0}")]
    EventsQuery(crate::osquery::Error),
    /// The Linux audit source.
    #[cfg(target_os = "linux")]
    #[error(transparent)]
    Audit(#[from] AuditError),
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
    /// One of our exec rules could not be deleted (by `--cleanup-audit`).
    #[error("deleting the {arch} execve rule: {err}")]
    DeleteRule { arch: String, err: io::Error },
    /// A recorded exec rule of ours could not be deleted.
    #[error("deleting our {arch} execve rule: {err}")]
    DeleteOurRule { arch: String, err: io::Error },
    /// A setting we changed could not be put back.
    #[error("restoring the {what}: {err}")]
    Revert { what: String, err: io::Error },
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
    /// A live instance owns the audit session.
    #[error(
        "a running instance (pid {pid}) owns the audit session in {}; stop it first \
         (it restores the audit configuration when it exits)",
        dir.display()
    )]
    Owned { pid: String, dir: PathBuf },
    /// The owner lock could not be taken.
    #[error("owner lock in {}: {err}", dir.display())]
    OwnerLock { dir: PathBuf, err: io::Error },
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
