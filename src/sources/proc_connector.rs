//! Source `proc_connector`: exec notifications from the kernel's process
//! events connector (netlink), with argv, exe and the rest read from /proc.
//!
//! It is the fallback for when audit cannot run. The kernel says only "pid N
//! exec'd at T"; everything else is read from `/proc/N` right after, which
//! races with the process: one that exits first (a `kcc` that lives a
//! millisecond often does) takes its argv with it. Those losses are counted
//! and put in the status reason rather than hidden.
//!
//! The hot path reads only `cmdline` and `exe` (the classifier needs both);
//! ids, cwd, parent and start time are read only for execs it keeps.

use crate::engine::{Engine, Identity};
use crate::event::{ExecEvent, SourceKind};
use crate::procfs::{clock_ticks, parse_stat, proc_path, read_into};
use crate::sources::{Source, SourceError};
use crate::status::{Counters, State};
use proc_connector::{
    Error as PcError, ProcEvent, CN_IDX_PROC, CN_VAL_PROC, NLMSG_DONE, PROC_CN_MCAST_LISTEN,
    PROC_EVENT_EXEC,
};
use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// How long one receive waits, so `stop` is noticed promptly.
const POLL: Duration = Duration::from_millis(200);
/// Receive buffer asked for; bursts of execs (a build, a fork bomb) queue
/// here while we read /proc. The kernel doubles the value.
const RECV_BUF_BYTES: usize = 8 << 20;
/// One connector message is under 100 bytes.
const MSG_BUF: usize = 4096;
/// The status reason changes at most this often.
const STATUS_EVERY: Duration = Duration::from_secs(1);
/// Overrun warnings are logged at most this often.
const WARN_EVERY: Duration = Duration::from_secs(10);
/// The kernel acknowledges a subscription at once; silence means it ignored
/// us (no CONFIG_PROC_EVENTS, or a namespace it does not serve).
pub const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(3);
/// Recently kept execs, to drop the second copy of one image (see
/// `Recent`).
const RECENT: usize = 64;

/// nsfs inode numbers of the initial pid and user namespaces (fixed by the
/// kernel since 3.8): the connector ignores subscriptions from any other.
const INIT_PID_NS_INO: u64 = 0xEFFF_FFFC;
const INIT_USER_NS_INO: u64 = 0xEFFF_FFFD;

const BASE_REASON: &str = "proc connector (fallback, argv read from /proc after the fact)";

/// What went missing so far; the status reason is made from it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Tally {
    /// Exec notifications received.
    execs: u64,
    /// Execs whose argv could not be read: the process had exited (or its pid
    /// was reused) before we got to /proc.
    argv_lost: u64,
    /// Receive-buffer overruns, each losing an unknown number of execs.
    overruns: u64,
}

impl Tally {
    fn losses(&self) -> (u64, u64) {
        (self.argv_lost, self.overruns)
    }
}

fn describe(t: &Tally, unprivileged: bool) -> String {
    let mut parts = Vec::new();
    if t.argv_lost > 0 {
        parts.push(format!(
            "{} of {} execs lost their argv because the process exited first",
            t.argv_lost, t.execs
        ));
    }
    if t.overruns > 0 {
        parts.push(format!(
            "the receive buffer overran {} time(s), losing an unknown number of execs",
            t.overruns
        ));
    }
    if parts.is_empty() {
        parts.push("no exec lost so far".to_string());
    }
    if unprivileged {
        parts.push("not root: the exe and cwd of other users' processes cannot be read".into());
    }
    format!("{BASE_REASON}: {}", parts.join("; "))
}

/// The `proc_connector` source: one netlink subscription and the state
/// needed to turn its notifications into events.
pub struct ProcConnector {
    conn: proc_connector::ProcConnector,
    /// Clock ticks per second of `/proc/<pid>/stat` times.
    hz: u64,
    unprivileged: bool,
    msg: Vec<u8>,
    /// Reused buffers for the two reads every exec needs.
    cmdline: Vec<u8>,
    path: String,
    recent: Recent,
    tally: Tally,
    /// Fallback discriminator when the kernel gave no timestamp.
    serial: u64,
}

impl ProcConnector {
    /// Subscribes to exec events. The error is a reason for the status table.
    pub fn open() -> Result<ProcConnector, SourceError> {
        if let Some(why) = namespace_problem() {
            return Err(SourceError::Unavailable(why));
        }
        let conn = subscribe()?;
        narrow_to_exec(&conn);
        set_recv_buffer(&conn);
        Ok(ProcConnector {
            conn,
            hz: clock_ticks(),
            unprivileged: crate::sys::euid() != 0,
            msg: vec![0; MSG_BUF],
            cmdline: Vec::new(),
            path: String::new(),
            recent: Recent::default(),
            tally: Tally::default(),
            serial: 0,
        })
    }

    /// The status reason as of now.
    pub fn reason(&self) -> String {
        describe(&self.tally, self.unprivileged)
    }

    fn on_exec(&mut self, engine: &Engine, counters: &Counters, tgid: u32, ts_ns: u64) {
        let pid = i64::from(tgid);
        // The process may be exiting as we speak, or exec'ing again (sh -c
        // 'exec kcc …' sends two events): the two reads are not atomic, so
        // the exe is read before and after the argv. If the image changed in
        // between, the argv may be the old image's: read it again, so that
        // argv and exe always describe one image.
        let exe_before = read_link(proc_path(&mut self.path, pid, "exe"));
        let mut argv_read = read_into(proc_path(&mut self.path, pid, "cmdline"), &mut self.cmdline)
            && !self.cmdline.is_empty();
        let mut exe = read_link(proc_path(&mut self.path, pid, "exe"));
        if exe_before.is_some() && exe.is_some() && exe_before != exe {
            argv_read = read_into(proc_path(&mut self.path, pid, "cmdline"), &mut self.cmdline)
                && !self.cmdline.is_empty();
            exe = read_link(proc_path(&mut self.path, pid, "exe"));
        }
        // A readable exe with an empty argv is an exec in progress (the new
        // image's argv is not laid out yet; a zombie has no exe): give it a
        // moment. Rare, so the sleeps do not slow the common path.
        let mut tries = 0;
        while !argv_read && exe.is_some() && tries < 5 {
            tries += 1;
            std::thread::sleep(std::time::Duration::from_micros(200));
            argv_read = read_into(proc_path(&mut self.path, pid, "cmdline"), &mut self.cmdline)
                && !self.cmdline.is_empty();
            exe = read_link(proc_path(&mut self.path, pid, "exe"));
        }
        let (time, time_nanos) = exec_wall_time(ts_ns);
        self.tally.execs += 1;
        if !argv_read && exe.is_none() {
            counters.saw(time);
            counters.drop_events(1);
            self.tally.argv_lost += 1;
            log::debug!("proc_connector: pid {pid} exited before its argv was read");
            return;
        }
        let argv: Vec<&[u8]> = if argv_read {
            split_cmdline(&self.cmdline)
        } else {
            Vec::new()
        };
        let path = exe.as_deref().unwrap_or_default();
        let keep = Engine::wants(path, &argv, &Identity::UNKNOWN);
        if argv_read && !keep {
            counters.saw(time);
            return;
        }
        if !argv_read {
            // The exe still names the tool; the event goes on without argv.
            counters.drop_events(1);
            self.tally.argv_lost += 1;
        }

        let discriminator = if ts_ns != 0 {
            ts_ns
        } else {
            self.serial += 1;
            self.serial
        };
        let mut event = ExecEvent {
            time,
            time_nanos,
            pid,
            path: path.to_vec(),
            argv: argv.iter().map(|a| a.to_vec()).collect(),
            source: SourceKind::ProcConnector,
            discriminator,
            incomplete: !argv_read || exe.is_none(),
            ..ExecEvent::default()
        };
        if keep {
            let start_ticks = match self.add_details(&mut event, ts_ns) {
                Details::Read(start) => start,
                Details::Gone => 0,
                Details::Reused => {
                    // /proc/<pid> is another process now: what we read is not
                    // this exec's.
                    counters.saw(time);
                    if argv_read {
                        // (Otherwise counted as lost above already.)
                        counters.drop_events(1);
                        self.tally.argv_lost += 1;
                    }
                    log::debug!("proc_connector: pid {pid} was reused before it was read");
                    return;
                }
            };
            if !self
                .recent
                .is_new(pid, start_ticks, &event.path, &event.argv)
            {
                counters.saw(time);
                return;
            }
        }
        engine.ingest(&event, counters);
    }

    /// Fills ids, cwd and parent for an exec the classifier keeps.
    fn add_details(&mut self, event: &mut ExecEvent, ts_ns: u64) -> Details {
        let pid = event.pid;
        let Some(stat) = read_small(proc_path(&mut self.path, pid, "stat"))
            .as_deref()
            .and_then(parse_stat)
        else {
            event.incomplete = true;
            return Details::Gone;
        };
        if ts_ns != 0 && started_after(stat.start_ticks, self.hz, exec_boot_ns(ts_ns)) {
            return Details::Reused;
        }
        event.ppid = stat.ppid;
        match read_small(proc_path(&mut self.path, pid, "status")) {
            Some(text) => {
                let ids = parse_status(&text);
                (event.uid, event.euid, event.gid, event.egid) =
                    (ids.uid, ids.euid, ids.gid, ids.egid);
            }
            None => event.incomplete = true,
        }
        event.auid = crate::event::known_auid(
            read_small(proc_path(&mut self.path, pid, "loginuid"))
                .as_deref()
                .and_then(parse_int),
        );
        event.cwd = read_link(proc_path(&mut self.path, pid, "cwd"));
        if stat.ppid > 0 {
            event.parent_path = read_link(proc_path(&mut self.path, stat.ppid, "exe"));
            event.parent_argv = read_small(proc_path(&mut self.path, stat.ppid, "cmdline"))
                .filter(|raw| !raw.is_empty())
                .map(|raw| split_cmdline(&raw).iter().map(|a| a.to_vec()).collect());
        }
        Details::Read(stat.start_ticks)
    }
}

enum Details {
    /// Read; the process's start time in clock ticks since boot.
    Read(u64),
    /// The process exited meanwhile.
    Gone,
    /// The pid belongs to a process started after the exec.
    Reused,
}

impl Source for ProcConnector {
    fn kind(&self) -> SourceKind {
        SourceKind::ProcConnector
    }

    fn run(&mut self, engine: &Engine, stop: &AtomicBool) -> Result<(), SourceError> {
        let board = engine.status();
        let counters = board.set(SourceKind::ProcConnector, State::Active, self.reason());
        let mut reported = self.tally.losses();
        let mut last_status = Instant::now();
        let mut unwarned_overruns = 0u64;
        let mut last_warning: Option<Instant> = None;

        while !stop.load(Ordering::Relaxed) {
            match self.conn.recv_timeout(&mut self.msg, POLL) {
                Ok(Some(ProcEvent::Exec {
                    tgid, timestamp_ns, ..
                })) => self.on_exec(engine, &counters, tgid, timestamp_ns),
                // Acks (ours and other listeners'), and every other event type
                // on kernels that ignore the subscription filter.
                Ok(Some(_) | None) | Err(PcError::Interrupted) => {}
                Err(PcError::Overrun) => {
                    // How many were lost is unknown; at least one was.
                    counters.drop_events(1);
                    self.tally.overruns += 1;
                    unwarned_overruns += 1;
                }
                Err(e @ (PcError::Truncated | PcError::UnexpectedConnector)) => {
                    log::debug!("proc_connector: skipping a malformed message: {e}");
                    counters.drop_events(1);
                }
                Err(e) => {
                    return Err(SourceError::Failed(format!(
                        "receiving from the proc connector: {e}"
                    )));
                }
            }

            if unwarned_overruns > 0 && last_warning.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
                log::warn!(
                    "proc_connector: receive buffer overran {unwarned_overruns} time(s); \
                     exec events were lost"
                );
                unwarned_overruns = 0;
                last_warning = Some(Instant::now());
            }
            if self.tally.losses() != reported && last_status.elapsed() >= STATUS_EVERY {
                board.set(SourceKind::ProcConnector, State::Active, self.reason());
                reported = self.tally.losses();
                last_status = Instant::now();
            }
        }
        if self.tally.losses() != reported {
            board.set(SourceKind::ProcConnector, State::Active, self.reason());
        }
        Ok(())
    }
}

/// Execs kept lately, by process and content. A shell that execs its last
/// command (`sh -c kcc …`) sends two exec events for one pid, and by the time
/// we read the first, /proc already shows the second image: without this,
/// that image would become two rows.
#[derive(Default)]
struct Recent {
    keys: VecDeque<(i64, u64, u64)>,
}

impl Recent {
    fn is_new(&mut self, pid: i64, start_ticks: u64, path: &[u8], argv: &[Vec<u8>]) -> bool {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        path.hash(&mut h);
        argv.hash(&mut h);
        let key = (pid, start_ticks, h.finish());
        if self.keys.contains(&key) {
            return false;
        }
        if self.keys.len() == RECENT {
            self.keys.pop_front();
        }
        self.keys.push_back(key);
        true
    }
}

// --- subscribing ----------------------------------------------------------

/// Why the connector cannot serve this process, when it is in a pid or user
/// namespace other than the initial ones (a container): the kernel drops such
/// subscriptions without an answer.
fn namespace_problem() -> Option<String> {
    let ino = |ns: &str| {
        std::fs::metadata(format!("/proc/self/ns/{ns}"))
            .ok()
            .map(|m| m.ino())
    };
    namespace_reason(ino("pid"), ino("user"))
}

fn namespace_reason(pid_ns: Option<u64>, user_ns: Option<u64>) -> Option<String> {
    let mut outside = Vec::new();
    if pid_ns.is_some_and(|i| i != INIT_PID_NS_INO) {
        outside.push("pid");
    }
    if user_ns.is_some_and(|i| i != INIT_USER_NS_INO) {
        outside.push("user");
    }
    if outside.is_empty() {
        return None;
    }
    Some(format!(
        "proc connector unavailable in this {} namespace: the kernel only accepts \
         subscriptions from the initial namespaces (run on the host, not in a container)",
        outside.join(" and ")
    ))
}

/// Subscribes on a helper thread, so that a kernel that never answers cannot
/// hang startup. The subscription is for every event type; `open` narrows it
/// afterwards.
fn subscribe() -> Result<proc_connector::ProcConnector, SourceError> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("proc_connector-subscribe".into())
        .spawn(move || {
            // open() may have given up waiting; nothing to do then.
            let _ = tx.send(proc_connector::ProcConnector::new());
        })
        .map_err(|e| {
            SourceError::Unavailable(format!(
                "proc connector: cannot start a thread to subscribe: {e}"
            ))
        })?;
    match rx.recv_timeout(SUBSCRIBE_TIMEOUT) {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(SourceError::Unavailable(reason_for(&e))),
        Err(_) => Err(SourceError::Unavailable(format!(
            "proc connector unavailable: the kernel did not answer the subscription within {}s \
             (kernel built without CONFIG_PROC_EVENTS?)",
            SUBSCRIBE_TIMEOUT.as_secs()
        ))),
    }
}

/// The subscription message that asks for exec events only (Linux 6.6+):
/// netlink header, connector header, then `proc_input`.
fn exec_filter_message() -> [u8; 44] {
    let mut m = [0u8; 44];
    m[0..4].copy_from_slice(&44u32.to_ne_bytes());
    m[4..6].copy_from_slice(&NLMSG_DONE.to_ne_bytes());
    m[16..20].copy_from_slice(&CN_IDX_PROC.to_ne_bytes());
    m[20..24].copy_from_slice(&CN_VAL_PROC.to_ne_bytes());
    m[32..34].copy_from_slice(&8u16.to_ne_bytes());
    m[36..40].copy_from_slice(&PROC_CN_MCAST_LISTEN.to_ne_bytes());
    m[40..44].copy_from_slice(&PROC_EVENT_EXEC.to_ne_bytes());
    m
}

/// Narrows the subscription to exec events. Sent by hand and not waited on:
/// the kernel filters its own acknowledgement of a filtered subscription
/// away (an ack is not an exec), so proc-connector's `subscribe_filtered`
/// blocks until the next exec and swallows it as the ack. Kernels before 6.6
/// ignore the message; we then get, and skip, every event type.
fn narrow_to_exec(conn: &proc_connector::ProcConnector) {
    let msg = exec_filter_message();
    // SAFETY: the fd is open for the life of `conn`; the buffer is live and
    // its length is passed.
    let sent = unsafe { libc::send(conn.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) };
    if usize::try_from(sent).ok() != Some(msg.len()) {
        log::warn!(
            "proc_connector: cannot narrow the subscription to exec events, \
             receiving all process events: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// A subscription error as a reason for the status table.
fn reason_for(e: &PcError) -> String {
    let PcError::Os(io) = e else {
        return format!("proc connector: cannot subscribe: {e}");
    };
    match io.raw_os_error() {
        Some(libc::EPERM | libc::EACCES) => {
            "not root: the proc connector needs CAP_NET_ADMIN".to_string()
        }
        // The connector's kernel socket exists only in the initial network
        // namespace.
        Some(libc::ECONNREFUSED) => format!(
            "proc connector unavailable in this network namespace: {io} \
             (it is served only in the host's)"
        ),
        Some(libc::EPROTONOSUPPORT | libc::EAFNOSUPPORT) => format!(
            "proc connector unavailable: this kernel has no netlink connector \
             (CONFIG_CONNECTOR, CONFIG_PROC_EVENTS): {io}"
        ),
        _ => format!("proc connector: cannot subscribe: {io}"),
    }
}

/// Asks for a large receive buffer: beyond net.core.rmem_max if we may
/// (SO_RCVBUFFORCE needs CAP_NET_ADMIN), else as much as the limit allows.
fn set_recv_buffer(conn: &proc_connector::ProcConnector) {
    let size = libc::c_int::try_from(RECV_BUF_BYTES).unwrap_or(libc::c_int::MAX);
    let len = libc::socklen_t::try_from(std::mem::size_of::<libc::c_int>()).unwrap_or(4);
    // SAFETY: the fd is open for the life of `conn`, and the option value is
    // a live c_int of the length passed.
    let forced = unsafe {
        libc::setsockopt(
            conn.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            std::ptr::from_ref(&size).cast(),
            len,
        )
    } == 0;
    if !forced {
        if let Err(e) = conn.set_recv_buf_size(RECV_BUF_BYTES) {
            log::warn!("proc_connector: cannot enlarge the receive buffer: {e}");
        }
    }
}

// --- time -----------------------------------------------------------------

fn clock_ns(clock: libc::clockid_t) -> Option<i128> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec to a valid pointer.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return None;
    }
    Some(i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec))
}

/// `ts_ns` (CLOCK_MONOTONIC, what the connector stamps) moved onto `target`,
/// by the two clocks' current offset.
fn from_monotonic(ts_ns: u64, target_now: i128, monotonic_now: i128) -> i128 {
    target_now - monotonic_now + i128::from(ts_ns)
}

/// The exec's wall-clock time: the connector's stamp if it has one, else now.
/// (Not via btime: btime counts suspended time, the stamp does not.)
fn exec_wall_time(ts_ns: u64) -> (i64, u32) {
    let real = clock_ns(libc::CLOCK_REALTIME).unwrap_or(0);
    let wall = match clock_ns(libc::CLOCK_MONOTONIC) {
        Some(mono) if ts_ns != 0 => from_monotonic(ts_ns, real, mono),
        _ => real,
    };
    split_ns(wall)
}

fn split_ns(ns: i128) -> (i64, u32) {
    let secs = i64::try_from(ns.div_euclid(1_000_000_000)).unwrap_or(0);
    let nanos = u32::try_from(ns.rem_euclid(1_000_000_000)).unwrap_or(0);
    (secs, nanos)
}

/// The exec's time on CLOCK_BOOTTIME, the clock of /proc/<pid>/stat start
/// times.
fn exec_boot_ns(ts_ns: u64) -> i128 {
    match (
        clock_ns(libc::CLOCK_BOOTTIME),
        clock_ns(libc::CLOCK_MONOTONIC),
    ) {
        (Some(boot), Some(mono)) => from_monotonic(ts_ns, boot, mono),
        // Without the offset, never call a pid reused.
        _ => i128::MAX / 2,
    }
}

/// Whether a process that started at `start_ticks` began after the exec at
/// `exec_boot_ns`, i.e. the pid now names someone else. Start times are
/// truncated to a tick, so one tick of slack covers rounding.
fn started_after(start_ticks: u64, hz: u64, exec_boot_ns: i128) -> bool {
    let hz = i128::from(hz.max(1));
    let start_ns = i128::from(start_ticks) * 1_000_000_000 / hz;
    start_ns > exec_boot_ns + 1_000_000_000 / hz
}

// --- /proc ----------------------------------------------------------------

fn read_small(path: &str) -> Option<Vec<u8>> {
    std::fs::read(path).ok()
}

fn read_link(path: &str) -> Option<Vec<u8>> {
    std::fs::read_link(path)
        .ok()
        .map(|p| p.into_os_string().into_vec())
}

/// argv from `/proc/<pid>/cmdline`: NUL-terminated strings, empty ones kept.
/// Empty input (a zombie, or a process already gone) gives no argv.
pub(crate) fn split_cmdline(raw: &[u8]) -> Vec<&[u8]> {
    if raw.is_empty() {
        return Vec::new();
    }
    // A process that rewrote its argv may lack the final NUL.
    let body = raw.strip_suffix(b"\0").unwrap_or(raw);
    body.split(|&b| b == 0).collect()
}

/// Real and effective user and group ids.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ids {
    pub uid: Option<i64>,
    pub euid: Option<i64>,
    pub gid: Option<i64>,
    pub egid: Option<i64>,
}

/// Reads the `Uid:` and `Gid:` lines (real, effective, saved, fs) of
/// `/proc/<pid>/status`.
pub(crate) fn parse_status(text: &[u8]) -> Ids {
    let mut ids = Ids::default();
    for line in text.split(|&b| b == b'\n') {
        if let Some(rest) = line.strip_prefix(b"Uid:") {
            (ids.uid, ids.euid) = first_two(rest);
        } else if let Some(rest) = line.strip_prefix(b"Gid:") {
            (ids.gid, ids.egid) = first_two(rest);
        }
    }
    ids
}

fn first_two(rest: &[u8]) -> (Option<i64>, Option<i64>) {
    let mut nums = rest
        .split(|b| b.is_ascii_whitespace())
        .filter(|f| !f.is_empty())
        .map(parse_int);
    (nums.next().flatten(), nums.next().flatten())
}

fn parse_int(text: &[u8]) -> Option<i64> {
    std::str::from_utf8(text).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmdline_keeps_empty_args_and_drops_the_terminator() {
        assert_eq!(
            split_cmdline(b"kcc\0\0copy_cred_cache\0"),
            [&b"kcc"[..], b"", b"copy_cred_cache"]
        );
        assert_eq!(split_cmdline(b"a\0b"), [&b"a"[..], b"b"]);
        assert_eq!(split_cmdline(b"\0"), [&b""[..]]);
        assert_eq!(split_cmdline(b"a\0\0"), [&b"a"[..], b""]);
        assert!(split_cmdline(b"").is_empty());
        assert_eq!(
            split_cmdline(b"/tmp/\xff\0x y\0"),
            [&b"/tmp/\xff"[..], b"x y"]
        );
    }

    #[test]
    fn status_gives_real_and_effective_ids() {
        let text = b"Name:\tkcc (x)\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t5\n\
            Uid:\t1000\t0\t0\t0\nGid:\t20\t30\t30\t30\nGroups:\t20 30\n";
        assert_eq!(
            parse_status(text),
            Ids {
                uid: Some(1000),
                euid: Some(0),
                gid: Some(20),
                egid: Some(30)
            }
        );
        assert_eq!(parse_status(b"Name:\tx\n"), Ids::default());
        let partial = parse_status(b"Uid:\t5\nGid:\tbad\t7\n");
        assert_eq!((partial.uid, partial.euid), (Some(5), None));
        assert_eq!((partial.gid, partial.egid), (None, Some(7)));
    }

    #[test]
    fn errors_become_status_reasons() {
        let os = |n| PcError::Os(std::io::Error::from_raw_os_error(n));
        assert_eq!(
            reason_for(&os(libc::EPERM)),
            "not root: the proc connector needs CAP_NET_ADMIN"
        );
        assert!(reason_for(&os(libc::ECONNREFUSED))
            .starts_with("proc connector unavailable in this network namespace: "));
        assert!(reason_for(&os(libc::EPROTONOSUPPORT)).contains("CONFIG_PROC_EVENTS"));
        assert!(reason_for(&os(libc::EIO)).starts_with("proc connector: cannot subscribe"));
        assert!(reason_for(&PcError::Truncated).contains("truncated"));
    }

    #[test]
    fn namespaces_other_than_the_initial_ones_are_refused() {
        assert_eq!(
            namespace_reason(Some(INIT_PID_NS_INO), Some(INIT_USER_NS_INO)),
            None
        );
        assert_eq!(namespace_reason(None, None), None);
        let why = namespace_reason(Some(4026532000), Some(INIT_USER_NS_INO)).unwrap();
        assert!(why.contains("this pid namespace"), "{why}");
        let why = namespace_reason(Some(1), Some(2)).unwrap();
        assert!(why.contains("pid and user namespace"), "{why}");
    }

    #[test]
    fn reason_summarises_losses() {
        let mut t = Tally {
            execs: 2000,
            ..Tally::default()
        };
        assert_eq!(
            describe(&t, false),
            format!("{BASE_REASON}: no exec lost so far")
        );
        t.argv_lost = 12;
        assert_eq!(
            describe(&t, false),
            format!(
                "{BASE_REASON}: 12 of 2000 execs lost their argv because the process exited first"
            )
        );
        t.overruns = 2;
        let r = describe(&t, true);
        assert!(r.contains("overran 2 time(s)"), "{r}");
        assert!(r.ends_with("cannot be read"), "{r}");
    }

    #[test]
    fn connector_stamps_convert_to_wall_time() {
        // Monotonic 100 s; the wall clock is 1_700_000_100 s; an exec 0.25 s
        // ago.
        let wall = from_monotonic(99_750_000_000, 1_700_000_100_000_000_000, 100_000_000_000);
        assert_eq!(split_ns(wall), (1_700_000_099, 750_000_000));
        assert_eq!(split_ns(-1), (-1, 999_999_999));
    }

    #[test]
    fn a_process_started_after_the_exec_is_a_reused_pid() {
        // 100 Hz: tick 500 is 5 s after boot.
        assert!(!started_after(500, 100, 5_000_000_000));
        assert!(!started_after(500, 100, 4_995_000_000));
        assert!(started_after(500, 100, 4_900_000_000));
        assert!(!started_after(u64::MAX, 0, i128::MAX / 2));
    }

    #[test]
    fn one_image_read_twice_is_kept_once() {
        let mut r = Recent::default();
        let argv = vec![b"kcc".to_vec(), b"copy_cred_cache".to_vec()];
        assert!(r.is_new(5, 10, b"/tmp/kcc", &argv));
        assert!(!r.is_new(5, 10, b"/tmp/kcc", &argv));
        assert!(r.is_new(5, 11, b"/tmp/kcc", &argv));
        assert!(r.is_new(5, 10, b"/tmp/kcc", &argv[..1]));
        for pid in 100..100 + RECENT as i64 {
            r.is_new(pid, 0, b"x", &argv);
        }
        assert!(r.is_new(5, 10, b"/tmp/kcc", &argv));
    }

    #[test]
    fn reads_this_process() {
        let pid = i64::from(std::process::id());
        let mut path = String::new();
        let stat = parse_stat(&read_small(proc_path(&mut path, pid, "stat")).unwrap()).unwrap();
        assert!(stat.ppid > 0 && stat.start_ticks > 0);
        let ids = parse_status(&read_small(proc_path(&mut path, pid, "status")).unwrap());
        assert!(ids.uid.is_some() && ids.egid.is_some());
        let mut buf = Vec::new();
        assert!(read_into(proc_path(&mut path, pid, "cmdline"), &mut buf));
        assert!(!split_cmdline(&buf).is_empty());
        // This process started before now.
        let now_boot = clock_ns(libc::CLOCK_BOOTTIME).unwrap();
        assert!(!started_after(stat.start_ticks, clock_ticks(), now_boot));
    }
}
