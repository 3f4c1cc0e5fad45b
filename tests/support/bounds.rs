//! Time bounds for tests: the code's own constant plus one slack, so that a
//! test never promises less time than the code allows itself, and a slow CI
//! box (debug build, 2 shared cores) has one agreed margin.

use std::time::Duration;

/// Added to the code's own bound: process start and teardown of a debug
/// build on a loaded 2-core box.
pub const SLACK: Duration = Duration::from_secs(3);

/// How long an osqueryd-mode extension may take to exit once told to stop.
pub fn osquery_exit() -> Duration {
    kerberos_cache_access::osquery::SHUTDOWN_BOUND + SLACK
}

/// How long a `--standalone` run may take to exit after a signal.
pub fn standalone_exit() -> Duration {
    kerberos_cache_access::standalone::SHUTDOWN_BOUND + SLACK
}

/// For runs that end by themselves (a replay drained, a bad input refused):
/// generous, since nothing in the code bounds a debug build's start-up.
pub const RUN_LIMIT: Duration = Duration::from_secs(30);
