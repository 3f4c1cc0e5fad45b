//! The osquery binding's error: what can go wrong talking to osqueryd
//! (connecting, a Thrift call, a refusing status, waiting for its socket),
//! typed so callers can tell the cases apart; the messages are the ones the
//! logs, the status table and the tests read.

use std::path::PathBuf;
use std::time::Duration;

/// Why a call to osqueryd (or to an extension's socket) failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A zero Thrift timeout: the OS would read it as "no timeout".
    /// Returned by `ManagerClient::connect` before it touches the socket; a
    /// caller's bug, not the host's.
    #[error("cannot connect to {}: the Thrift timeout must be greater than zero", path.display())]
    ZeroTimeout {
        /// The socket the client was asked to connect to.
        path: PathBuf,
    },
    /// The socket is absent or refuses connections: osqueryd (or the
    /// extension) is not running there, or we may not open it.
    #[error("cannot connect to osquery socket {}: {err}", path.display())]
    Connect {
        /// The socket the client was asked to connect to.
        path: PathBuf,
        /// Why `connect(2)` failed (ENOENT, ECONNREFUSED, EACCES, ...).
        err: std::io::Error,
    },
    /// The connected socket could not be set up (`what`: "set timeouts
    /// on", "clone the stream of"); returned by `ManagerClient::connect`.
    #[error("cannot {what} socket {}: {err}", path.display())]
    Socket {
        /// The step that failed, worded to fit the message.
        what: &'static str,
        /// The socket just connected to.
        path: PathBuf,
        /// The OS's error for that step.
        err: std::io::Error,
    },
    /// An earlier call on this connection failed, so the stream may hold
    /// half a reply and is not reused: the call was not sent. Connect again.
    #[error("osquery {call} call not sent: the connection to {} failed earlier; reconnect", path.display())]
    Broken {
        /// The Thrift method that was not sent, e.g. "ping()".
        call: &'static str,
        /// The socket of the broken connection.
        path: PathBuf,
    },
    /// The Thrift call failed: transport (including a timeout), protocol,
    /// or an application exception. The connection is marked broken.
    #[error("osquery {call} call on {} failed: {err}", path.display())]
    Call {
        /// The Thrift method that failed, e.g. "query()".
        call: &'static str,
        /// The socket the call went to.
        path: PathBuf,
        /// The Thrift library's error.
        err: thrift::Error,
    },
    /// osqueryd answered with a non-zero status (`call`: "query",
    /// "getQueryColumns"), e.g. for bad SQL or a missing table; the
    /// connection stays usable.
    #[error("osqueryd {call} failed (code {code}): {message}")]
    Refused {
        /// The call osqueryd refused: "query" or "getQueryColumns".
        call: &'static str,
        /// osqueryd's `ExtensionStatus.code`, never 0 here.
        code: i32,
        /// osqueryd's `ExtensionStatus.message`, e.g. SQLite's "no such
        /// table: ...".
        message: String,
    },
    /// A stop request came while waiting for osqueryd's socket; the
    /// extension exits 0 (a request, not a failure).
    #[error("stopped while waiting for osqueryd's socket")]
    Stopped,
    /// osqueryd's socket did not accept connections within `--timeout`;
    /// the extension exits with an error before registering.
    #[error("osqueryd's extension socket {} did not accept connections within {} s (--timeout)", path.display(), timeout.as_secs())]
    SocketTimeout {
        /// osqueryd's extension manager socket (`--socket`).
        path: PathBuf,
        /// How long we waited: `--timeout`, capped at a day.
        timeout: Duration,
    },
    /// osqueryd's socket file is gone (checked after registration failed):
    /// osqueryd stopped or restarted, so the extension exits 0 and waits to
    /// be respawned.
    #[error("osqueryd's socket {} was removed", path.display())]
    SocketRemoved {
        /// osqueryd's extension manager socket (`--socket`).
        path: PathBuf,
    },
    /// osqueryd's socket is there but a ping failed (checked after
    /// registration failed); holds the ping's own error. The extension
    /// exits 0, as when osqueryd is gone.
    #[error("osqueryd does not answer: {0}")]
    NoAnswer(Box<Error>),
    /// The event sources could not be started (boxed: a source's error
    /// may hold one of ours); `run_extension` returns it before
    /// registering.
    #[error(transparent)]
    Sources(Box<crate::sources::SourceError>),
}

/// A result of the osquery binding.
pub type Result<T, E = Error> = std::result::Result<T, E>;
