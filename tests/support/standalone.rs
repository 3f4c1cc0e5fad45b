//! `--standalone` runs of the binary that end by themselves (a replay
//! drained, a snapshot taken once, a bad input refused): one way to run
//! them, with stdout and stderr read while the process runs, so that a full
//! pipe can never stall it, and a deadline.

use serde_json::Value;
use std::io::Read;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

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
    let mut child = Command::new(super::EXTENSION_BIN)
        .arg("--standalone")
        .args(args)
        .arg("--state-dir")
        .arg(state)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let Some(status) = super::wait_exit(&mut child, limit) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "--standalone {args:?} still running after {limit:?}; stderr:\n{}",
            stderr.join().unwrap()
        );
    };
    Finished {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}
