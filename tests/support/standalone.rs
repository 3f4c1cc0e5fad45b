//! The binary as tests and benches start it: the one `--standalone` command
//! line, a child that never outlives a failed test, and the one way to
//! signal it and await its exit within a bound. Runs that end by
//! themselves (a replay drained, a snapshot taken once, a bad input refused)
//! go through [`run`], which reads stdout and stderr while the process runs,
//! so that a full pipe can never stall it, and has a deadline.
//!
//! Self-contained, so that benches can share it:
//! `#[path = "../tests/support/standalone.rs"] mod standalone;`.
#![allow(dead_code)] // each test binary and bench uses a different part

use serde_json::Value;
use std::io::Read;
use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The extension binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_kerberos_cache_access");

/// `BIN --state-dir <state>`: its own journal and locks, never the host's;
/// stdin null; RUST_LOG unset, so that the log level comes from the
/// arguments (`--verbose`) unless a caller sets it.
pub fn bin(state: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("--state-dir")
        .arg(state)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    cmd
}

/// [`bin`] with `--standalone`: rows to stdout, log to stderr.
pub fn command(state: &Path) -> Command {
    let mut cmd = bin(state);
    cmd.arg("--standalone");
    cmd
}

/// [`command`] reading `source` alone, without the periodic snapshot, so
/// that every row comes from that source.
pub fn source(source: &str, state: &Path) -> Command {
    let mut cmd = command(state);
    cmd.args(["--source", source, "--snapshot-interval", "0"]);
    cmd
}

/// A spawned child that is stopped and reaped on drop if it still runs, so
/// that a failed test never leaves one behind: SIGKILL at once, or SIGTERM
/// first with [`Running::term_on_drop`].
pub struct Running {
    child: Child,
    term_grace: Option<Duration>,
}

impl Running {
    /// Spawns `cmd`.
    pub fn spawn(cmd: &mut Command) -> Running {
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
        Running::from(child)
    }

    /// On drop, SIGTERM and up to `grace` for the exit before SIGKILL: a
    /// process that changed host state (audit rules) puts it back.
    pub fn term_on_drop(mut self, grace: Duration) -> Running {
        self.term_grace = Some(grace);
        self
    }

    /// Sends `sig`; see [`signal_exit_within`].
    pub fn signal_exit_within(
        &mut self,
        sig: libc::c_int,
        within: Duration,
    ) -> (Option<ExitStatus>, Duration) {
        signal_exit_within(&mut self.child, sig, within)
    }
}

impl From<Child> for Running {
    fn from(child: Child) -> Running {
        Running {
            child,
            term_grace: None,
        }
    }
}

impl Deref for Running {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.child
    }
}

impl DerefMut for Running {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.child
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(None)) {
            return;
        }
        if let Some(grace) = self.term_grace {
            if signal_exit_within(&mut self.child, libc::SIGTERM, grace)
                .0
                .is_some()
            {
                return;
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `sig` to `pid` (kill(2)); whether it was delivered.
pub fn signal(pid: u32, sig: libc::c_int) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill(2) has no memory effects; a stale pid is an error return.
    unsafe { libc::kill(pid, sig) == 0 }
}

/// Polls until `child` exits; None if it is still running after `timeout`.
pub fn wait_exit(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Sends `sig` to `child` (asserting delivery) and waits up to `within` for
/// its exit: the status (None if it still runs; it is left running) and the
/// time from the signal on.
pub fn signal_exit_within(
    child: &mut Child,
    sig: libc::c_int,
    within: Duration,
) -> (Option<ExitStatus>, Duration) {
    assert!(signal(child.id(), sig), "signal {sig} to {}", child.id());
    let t = Instant::now();
    let status = wait_exit(child, within);
    (status, t.elapsed())
}

/// What a finished run left behind.
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    /// The JSON rows it printed, one per stdout line.
    pub fn rows(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }
}

/// Runs `--standalone <args> --state-dir <state>` (RUST_LOG unset) until it
/// exits; panics, after killing it, when it runs longer than `limit`.
pub fn run(args: &[&str], state: &Path, limit: Duration) -> Finished {
    run_to_exit(command(state).args(args), limit)
}

/// Runs `cmd` until it exits, with stdout and stderr read meanwhile;
/// panics, after killing it, when it runs longer than `limit`.
pub fn run_to_exit(cmd: &mut Command, limit: Duration) -> Finished {
    let mut child = Running::spawn(cmd.stdout(Stdio::piped()).stderr(Stdio::piped()));
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let Some(status) = wait_exit(&mut child, limit) else {
        drop(child);
        panic!(
            "{cmd:?} still running after {limit:?}; stderr:\n{}",
            stderr.join().unwrap()
        );
    };
    Finished {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}
