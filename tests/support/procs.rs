//! Processes and polling for tests: stand-in binaries (a copy of /bin/true or
//! /bin/sh under the name kcc, as Elastic's red-team emulation uses
//! /tmp/kcc), spawning a fresh copy safely, and the one polling loop, which
//! always has a deadline.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// How often `wait_for` looks again.
const POLL: Duration = Duration::from_millis(10);

/// Copies the executable `from` (e.g. "/bin/true", "/bin/sh") to `to`, mode
/// 0755; returns `to`. The copy lives in the caller's temporary directory, so
/// a test can match rows by this path and never by the name alone.
pub fn copy_exe(from: &str, to: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::fs::copy(from, to).unwrap_or_else(|e| panic!("copying {from} to {}: {e}", to.display()));
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o755)).unwrap();
    to.to_path_buf()
}

/// Spawns `cmd`. A fresh copy of a binary can be busy (ETXTBSY) for a moment
/// while a concurrent fork of this test process still holds the write fd
/// that copied it: retried for up to a second.
pub fn spawn_retrying(cmd: &mut Command) -> Child {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        match cmd.spawn() {
            Ok(child) => return child,
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("spawning {cmd:?}: {e}"),
        }
    }
}

/// Polls `f` until it gives Some, or None once `timeout` has passed.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(POLL);
    }
}

/// Polls `f` until it is true; false once `timeout` has passed.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    wait_for(timeout, || f().then_some(())).is_some()
}
