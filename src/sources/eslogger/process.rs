//! The live eslogger child: spawn, read its stdout and stderr on threads,
//! stop it (SIGTERM, then SIGKILL), and the restart backoff.

use super::*;

pub(super) enum LineMsg {
    Line(Vec<u8>),
    TooLong,
}

pub(super) enum Poll {
    Line(LineMsg),
    Idle,
    /// eslogger exited or closed its output.
    Gone,
}

/// The end of eslogger's stderr.
#[derive(Default)]
pub(super) struct StderrTail {
    pub(super) bytes: Vec<u8>,
}

impl StderrTail {
    pub(super) fn push(&mut self, line: &[u8]) {
        self.bytes.extend_from_slice(line);
        self.bytes.push(b'\n');
        let excess = self.bytes.len().saturating_sub(STDERR_KEEP);
        if excess > 0 {
            self.bytes.drain(..excess);
        }
    }

    /// Its non-empty lines, joined by "; ".
    pub(super) fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// One running eslogger. Dropping it stops and reaps the process, so none
/// outlives its owner, on any path.
pub(super) struct EsloggerProcess {
    pub(super) child: Child,
    pub(super) lines: Receiver<LineMsg>,
    pub(super) stderr: Arc<Mutex<StderrTail>>,
    pub(super) stderr_thread: Option<JoinHandle<()>>,
    pub(super) started: Instant,
    /// Reported active: it printed a line or outlived the early-exit window.
    pub(super) confirmed: bool,
    /// When it was first seen exited (lines may still be queued).
    pub(super) exited_at: Option<Instant>,
}

impl EsloggerProcess {
    pub(super) fn spawn(program: &Path, args: &[OsString]) -> Result<EsloggerProcess, SourceError> {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        #[cfg(unix)]
        {
            // eslogger suppresses events from its own process group. In ours,
            // it would hide execs of whatever shares it (a script that starts
            // this program and then runs kcc). Its own group also keeps a
            // terminal's Ctrl-C from reaching it before we stop it.
            use std::os::unix::process::CommandExt;
            cmd.process_group(0);
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| SourceError::Unavailable(spawn_error(program, &e)))?;
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let (tx, rx) = sync_channel(LINE_QUEUE);
        let tail = Arc::new(Mutex::new(StderrTail::default()));
        // From here on, dropping `proc` stops and reaps the child.
        let mut proc = EsloggerProcess {
            child,
            lines: rx,
            stderr: Arc::clone(&tail),
            stderr_thread: None,
            started: Instant::now(),
            confirmed: false,
            exited_at: None,
        };
        let pid = proc.pid();
        let stdout =
            stdout.ok_or_else(|| SourceError::Failed("eslogger: no stdout pipe".into()))?;
        // Detached: it ends at end of stream, or when the receiver is gone.
        std::thread::Builder::new()
            .name("eslogger-stdout".into())
            .spawn(move || pump_lines(stdout, &tx))
            .map_err(|e| {
                SourceError::Failed(format!("eslogger: cannot start a reader thread: {e}"))
            })?;
        if let Some(stderr) = stderr {
            let handle = std::thread::Builder::new()
                .name("eslogger-stderr".into())
                .spawn(move || collect_stderr(stderr, &tail, pid))
                .map_err(|e| {
                    SourceError::Failed(format!("eslogger: cannot start a reader thread: {e}"))
                })?;
            proc.stderr_thread = Some(handle);
        }
        Ok(proc)
    }

    pub(super) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(super) fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The next line, or what happened instead within `timeout`.
    pub(super) fn poll(&mut self, timeout: Duration) -> Poll {
        match self.lines.recv_timeout(timeout) {
            Ok(msg) => Poll::Line(msg),
            Err(RecvTimeoutError::Disconnected) => Poll::Gone,
            Err(RecvTimeoutError::Timeout) => {
                // A descendant may still hold stdout open after eslogger
                // itself exited: notice the exit anyway.
                if self.exited().is_some() {
                    let since = *self.exited_at.get_or_insert_with(Instant::now);
                    if since.elapsed() >= EXIT_DRAIN {
                        return Poll::Gone;
                    }
                }
                Poll::Idle
            }
        }
    }

    /// Stops it: SIGTERM, then SIGKILL after [`TERM_GRACE`]; reaped either
    /// way. Its status, if it could be read.
    pub(super) fn terminate(&mut self) -> Option<ExitStatus> {
        if let Some(status) = self.exited() {
            return Some(status);
        }
        // Not reaped yet, so the pid cannot have been reused.
        send_sigterm(self.pid());
        let deadline = Instant::now() + TERM_GRACE;
        while Instant::now() < deadline {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Err(e) = self.child.kill() {
            log::warn!("eslogger (pid {}): SIGKILL failed: {e}", self.pid());
        }
        self.child.wait().ok()
    }

    /// What it wrote on stderr, once that stream has ended (or after a short
    /// wait, if a descendant holds it open).
    pub(super) fn stderr_text(&mut self) -> String {
        let deadline = Instant::now() + STDERR_DRAIN;
        if let Some(handle) = self.stderr_thread.take() {
            while !handle.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if handle.is_finished() {
                let _ = handle.join();
            }
        }
        self.stderr.lock().unwrap_or_else(|e| e.into_inner()).text()
    }
}

impl Drop for EsloggerProcess {
    fn drop(&mut self) {
        self.terminate();
    }
}

pub(super) fn pump_lines(stdout: impl Read, tx: &SyncSender<LineMsg>) {
    let mut reader = BufReader::with_capacity(64 << 10, stdout);
    let mut buf = Vec::with_capacity(8 << 10);
    loop {
        let msg = match read_line_capped(&mut reader, &mut buf, MAX_LINE) {
            Ok(LineRead::Eof) => return,
            Ok(LineRead::Line) => {
                LineMsg::Line(std::mem::replace(&mut buf, Vec::with_capacity(8 << 10)))
            }
            Ok(LineRead::TooLong) => LineMsg::TooLong,
            Err(e) => {
                log::warn!("eslogger: reading its output failed: {e}");
                return;
            }
        };
        if tx.send(msg).is_err() {
            return;
        }
    }
}

pub(super) fn collect_stderr(stderr: impl Read, tail: &Mutex<StderrTail>, pid: u32) {
    let mut reader = BufReader::new(stderr);
    let mut line = Vec::new();
    let mut logged = 0;
    loop {
        match read_line_capped(&mut reader, &mut line, STDERR_KEEP) {
            Ok(LineRead::Line) => {}
            Ok(LineRead::TooLong) => line.extend_from_slice(b"(long stderr line skipped)"),
            Ok(LineRead::Eof) | Err(_) => return,
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        if logged < STDERR_LOG_LINES {
            log::warn!("eslogger (pid {pid}): {text}");
            logged += 1;
        } else {
            log::debug!("eslogger (pid {pid}): {text}");
        }
        tail.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(text.as_bytes());
    }
}

/// SIGTERM through sysinfo: libc is a dependency on Linux only.
pub(super) fn send_sigterm(pid: u32) {
    use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, Signal, System};
    let pid = Pid::from_u32(pid);
    let Ok(mut sys) = System::new() else {
        return;
    };
    sys.refresh_processes_specifics(
        ProcessesToUpdate::Some(&[pid]),
        false,
        ProcessRefreshKind::nothing().without_tasks(),
    );
    if let Some(p) = sys.process(pid) {
        let _ = p.kill_with(Signal::Term);
    }
}

pub(super) fn spawn_error(program: &Path, e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::NotFound => format!(
            "{} not found: eslogger comes with macOS 13 and later",
            program.display()
        ),
        _ => format!("cannot start {}: {e}", program.display()),
    }
}

pub(super) const HINT_FDA: &str = "grant Full Disk Access to the process responsible for this one \
                        (osqueryd, or the terminal app when run by hand)";
pub(super) const HINT_ROOT: &str = "eslogger must run as root";
/// eslogger's exact error texts are not documented; when it says nothing on
/// stderr, this names both requirements and where else it may have logged.
pub(super) const HINT_SILENT: &str = "eslogger needs root, macOS 13+, and Full Disk Access for the \
                           responsible process (osqueryd, or the terminal app); its errors \
                           may be in the unified log: log show --predicate 'process == \"eslogger\"'";

/// A hint for the errors eslogger reports when it cannot create its ES
/// client: by the `es_new_client_result_t` name, or by plain words.
pub(super) fn hint(stderr: &str) -> Option<&'static str> {
    let s = stderr.to_ascii_uppercase();
    if ["NOT_PERMITTED", "NOT PERMITTED", "FULL DISK ACCESS", "TCC"]
        .iter()
        .any(|k| s.contains(k))
    {
        Some(HINT_FDA)
    } else if ["NOT_PRIVILEGED", "ROOT", "SUPER-USER", "SUPERUSER"]
        .iter()
        .any(|k| s.contains(k))
    {
        Some(HINT_ROOT)
    } else if s.contains("TOO_MANY_CLIENTS") {
        Some("the system has too many Endpoint Security clients")
    } else {
        None
    }
}

/// The status reason for an eslogger that exited.
pub(super) fn exit_reason(
    program: &Path,
    when: &str,
    status: Option<ExitStatus>,
    stderr: &str,
) -> String {
    let status = status.map_or_else(|| "status unknown".to_string(), |s| s.to_string());
    let mut why = format!("{} {when} ({status})", program.display());
    if stderr.is_empty() {
        why.push_str(" without a message");
    } else {
        why.push_str(": ");
        why.push_str(stderr);
    }
    if let Some(h) = hint(stderr) {
        why.push_str(" (");
        why.push_str(h);
        why.push(')');
    }
    why
}

pub(super) fn fmt_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

// --- the source ----------------------------------------------------------

pub(super) struct Live {
    pub(super) program: PathBuf,
    pub(super) args: Vec<OsString>,
    pub(super) child: Option<EsloggerProcess>,
    pub(super) first_backoff: Duration,
    pub(super) max_backoff: Duration,
    /// The wait before the next start attempt.
    pub(super) backoff: Duration,
    /// Why eslogger is not running, while it is not.
    pub(super) failure: Option<String>,
}

impl Live {
    pub(super) fn take_backoff(&mut self) -> Duration {
        let d = self.backoff;
        self.backoff = (self.backoff * 2).min(self.max_backoff);
        d
    }
}
