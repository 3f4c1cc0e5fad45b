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
    #[error("cannot connect to {}: the Thrift timeout must be greater than zero", path.display())]
    ZeroTimeout { path: PathBuf },
    /// The socket is absent or refuses connections.
    #[error("cannot connect to osquery socket {}: {err}", path.display())]
    Connect { path: PathBuf, err: std::io::Error },
    /// The connected socket could not be set up (`what`: "set timeouts
    /// on", "clone the stream of").
    #[error("cannot {what} socket {}: {err}", path.display())]
    Socket {
        what: &'static str,
        path: PathBuf,
        err: std::io::Error,
    },
    /// An earlier call on this connection failed; it is not reused.
    #[error("osquery {call} call not sent: the connection to {} failed earlier; reconnect", path.display())]
    Broken { call: &'static str, path: PathBuf },
    /// The Thrift call failed: transport (including a timeout), protocol,
    /// or an application exception.
    #[error("osquery {call} call on {} failed: {err}", path.display())]
    Call {
        call: &'static str,
        path: PathBuf,
        err: thrift::Error,
    },
    /// osqueryd answered with a non-zero status (`call`: "query",
    /// "getQueryColumns").
    #[error("osqueryd {call} failed (code {code}): {message}")]
    Refused {
        call: &'static str,
        code: i32,
        message: String,
    },
    /// A stop request came while waiting for osqueryd's socket.
    #[error("stopped while waiting for osqueryd's socket")]
    Stopped,
    /// osqueryd's socket did not accept connections within `--timeout`.
    #[error("osqueryd's extension socket {} did not accept connections within {} s (--timeout)", path.display(), timeout.as_secs())]
    SocketTimeout { path: PathBuf, timeout: Duration },
    /// osqueryd's socket file is gone.
    #[error("osqueryd's socket {} was removed", path.display())]
    SocketRemoved { path: PathBuf },
    /// osqueryd's socket is there but a ping failed.
    #[error("osqueryd does not answer: {0}")]
    NoAnswer(Box<Error>),
    /// The event sources could not be started (boxed: a source's error
    /// may hold one of ours).
    #[error(transparent)]
    Sources(Box<crate::sources::SourceError>),
}

/// A result of the osquery binding.
pub type Result<T, E = Error> = std::result::Result<T, E>;
