//! Source `osquery_es`: exec events from osqueryd's own Endpoint Security
//! table, `es_process_events`, read through the extension manager's `query()`
//! call from this source's thread (never from inside a table's generate: a
//! nested query there would reuse the outer scheduled query's event bookmark).
//!
//! Every query carries a `time >=` constraint. On osquery 5.9.0 and later
//! (`time` is an ADDITIONAL column there) that turns osquery's events
//! optimisation off, so our polls never read or advance the bookmark of a
//! scheduled query; older osqueryd is refused for that reason.
//!
//! Cursor: osquery stamps each event with a whole-second `time` when it stores
//! it. We ask for `time >= last - 1`, where `last` is the newest second
//! delivered so far, and skip the rows of those seconds we already delivered
//! (a fingerprint of each row, kept only for that overlap). Several execs in
//! one second split across two polls are therefore all delivered, once each.
//! At start the cursor is placed `DEFAULT_BACKLOG` in the past: rows are
//! only in memory, so after an extension restart this re-reads what the pack
//! query (540 s window) can still report; the store's eid dedup and the
//! deterministic event ids make re-reading harmless.
//!
//! Text columns are fetched as `hex(...)`: argv and paths need not be UTF-8,
//! and a single non-UTF-8 string would otherwise fail the whole Thrift reply,
//! so the cursor would stay behind it and every poll would fail until
//! osquery expired that event.

use crate::engine::{unix_now, Engine};
use crate::event::{CodeIdentity, ExecEvent, SourceKind};
use crate::osquery::client::{ManagerClient, PluginRows};
use crate::sources::exec_cache::ExecCache;
use crate::sources::{sleep_unless_stopped, Source, SourceError};
use crate::status::{Counters, State};
use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

/// How often `run` polls when the caller has no opinion.
pub(crate) const DEFAULT_POLL: Duration = Duration::from_secs(5);
/// Bound on every read and write to osqueryd, so a hung osqueryd cannot hold
/// the source (or shutdown) for long. Generous because the first poll may
/// carry the whole backlog.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// How far back the first poll reads. osqueryd buffers up to
/// `--events_expiry` (1 h), but it builds every row of the requested window
/// (fork and exit events and full environments included) in its worker
/// before SQLite filters them, and osquery ignores upper `time` bounds, so a
/// long window cannot be read in slices. Ten minutes covers the pack's 540 s
/// look-back plus an extension restart.
pub(crate) const DEFAULT_BACKLOG: Duration = Duration::from_secs(600);
/// Seconds re-read on every poll (see the module notes).
const REQUERY_SECONDS: i64 = 1;
/// How often the Endpoint Security publisher's state is re-checked while it
/// runs (every poll while it does not).
const PUBLISHER_CHECK_EVERY: Duration = Duration::from_secs(60);
/// Execs remembered for naming parents.
const PARENT_CACHE: usize = 4096;
/// First osquery version whose `time` constraint reaches es_process_events.
const MIN_VERSION: (u64, u64, u64) = (5, 9, 0);
/// First osquery version that quotes arguments containing spaces or quotes
/// in `cmdline` (osquery PR #8054).
const QUOTED_CMDLINE_VERSION: (u64, u64, u64) = (5, 10, 0);

/// osqueryd's version.
pub const VERSION_SQL: &str = "SELECT version FROM osquery_info";
/// The two flags that must be false for es_process_events to fill.
pub const FLAGS_SQL: &str = "SELECT name, value FROM osquery_flags \
     WHERE name IN ('disable_events','disable_endpointsecurity')";
/// Whether osqueryd's Endpoint Security client runs (it does not without
/// root, Full Disk Access or the entitlement, whatever the flags say).
pub const PUBLISHER_SQL: &str = "SELECT active FROM osquery_events WHERE name = 'endpointsecurity'";

/// The start-up probe: does the table exist? The time constraint keeps it
/// from touching any event bookmark and makes it return (almost) nothing.
pub fn probe_sql(now: i64) -> String {
    format!("SELECT time FROM es_process_events WHERE time > {now} LIMIT 1")
}

/// One poll: the exec events stored at or after `since`. Only columns that
/// es_process_events has had since osquery 5.9.0; `euid` is left out because
/// osquery fills it with the effective gid (es_utils.cpp), `cdhash` because
/// ExecEvent has no field for it.
pub fn exec_sql(since: i64) -> String {
    format!(
        "SELECT time, eid, pid, parent, uid, gid, egid, platform_binary, cmdline_count, \
         hex(path) AS path_hex, hex(cmdline) AS cmdline_hex, hex(cwd) AS cwd_hex, \
         hex(signing_id) AS signing_id_hex, hex(team_id) AS team_id_hex \
         FROM es_process_events WHERE time >= {since} AND event_type = 'exec'"
    )
}

/// How `open_with` sets the source up.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Pause between polls; raised to at least 100 ms when opened.
    pub poll: Duration,
    /// Thrift read/write timeout for every call to osqueryd.
    pub timeout: Duration,
    /// How far before start the first poll reads.
    pub backlog: Duration,
    /// The wall clock, unix seconds (tests freeze it to make the SQL known).
    pub clock: fn() -> i64,
}

impl Settings {
    /// The defaults (`DEFAULT_TIMEOUT`, `DEFAULT_BACKLOG`, the real
    /// clock) with this poll interval.
    pub fn new(poll: Duration) -> Settings {
        Settings {
            poll,
            timeout: DEFAULT_TIMEOUT,
            backlog: DEFAULT_BACKLOG,
            clock: unix_now,
        }
    }
}

/// osqueryd's dotted version, leading numbers only ("5.12.1-4-gabc" → 5.12.1).
fn parse_version(text: &str) -> Option<(u64, u64, u64)> {
    let mut parts = text.trim().split(['.', '-', '+', ' ']);
    let mut next = || parts.next().and_then(|p| p.parse::<u64>().ok());
    let major = next()?;
    Some((major, next().unwrap_or(0), next().unwrap_or(0)))
}

/// What the checks on a (re)connection found.
struct Preflight {
    version: String,
    /// osquery quotes arguments with spaces in `cmdline` (≥ 5.10.0).
    quoted: bool,
}

/// Checks that osqueryd can serve es_process_events to us: recent enough,
/// has the table, events not switched off.
fn preflight(client: &mut ManagerClient, now: i64) -> Result<Preflight, SourceError> {
    let rows = client
        .query(VERSION_SQL)
        .map_err(|err| SourceError::Query {
            what: "its version query",
            err,
        })?;
    let version = rows
        .first()
        .and_then(|r| r.get("version"))
        .cloned()
        .unwrap_or_default();
    let parsed = parse_version(&version);
    match parsed {
        Some(v) if v < MIN_VERSION => {
            return Err(SourceError::Unavailable(format!(
                "osqueryd {version} is older than 5.9.0: its es_process_events ignores a time \
                 constraint, so reading it could advance the event bookmarks of Fleet's \
                 scheduled queries; upgrade osquery to 5.9.0 or later"
            )));
        }
        Some(_) => {}
        None => log::warn!("osquery_es: cannot read osqueryd's version {version:?}"),
    }

    if let Err(err) = client.query(&probe_sql(now)) {
        let text = err.to_string();
        return Err(if text.contains("no such table") {
            SourceError::Unavailable(
                "osqueryd has no es_process_events table: it exists only in osqueryd on macOS \
                 (osquery 5.9.0 or later for this source)"
                    .to_string(),
            )
        } else {
            SourceError::Query {
                what: "a query on es_process_events",
                err,
            }
        });
    }

    // A failed flags query only means we cannot tell; the publisher check
    // in `run` still reports a silent table.
    match client.query(FLAGS_SQL) {
        Ok(rows) => {
            let on: Vec<String> = rows
                .iter()
                .filter(|r| r.get("value").is_some_and(|v| flag_is_true(v)))
                .filter_map(|r| r.get("name"))
                .map(|n| format!("--{n}=true"))
                .collect();
            if !on.is_empty() {
                return Err(SourceError::Unavailable(format!(
                    "es_process_events stays empty because osqueryd runs with {}: set \
                     disable_events and disable_endpointsecurity to false in Fleet's agent \
                     options (command_line_flags), and give osqueryd Full Disk Access",
                    on.join(" and ")
                )));
            }
        }
        Err(e) => log::debug!("osquery_es: cannot read osquery_flags: {e:#}"),
    }

    Ok(Preflight {
        // Unknown versions get the quoted parser, which falls back to
        // plain splitting on anything it cannot read.
        quoted: parsed.is_none_or(|v| v >= QUOTED_CMDLINE_VERSION),
        version,
    })
}

fn flag_is_true(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "true" | "1" | "t" | "yes"
    )
}

/// Connects and runs the preflight checks.
fn connect(socket: &Path, settings: &Settings) -> Result<(ManagerClient, Preflight), SourceError> {
    let mut client = ManagerClient::connect(socket, settings.timeout).map_err(|err| {
        SourceError::Unreachable {
            path: socket.to_path_buf(),
            err,
        }
    })?;
    let pre = preflight(&mut client, (settings.clock)())?;
    Ok((client, pre))
}

/// Splits es_process_events' `cmdline` back into argv. osquery writes each
/// argument followed by one space; from 5.10.0 on, an argument containing a
/// space or `"` is written C++-`std::quoted` (`"` and `\` escaped). Before
/// 5.10.0 nothing is quoted, so an argument containing a space comes back as
/// several (argument boundaries are lost; the text is not). Returns None if
/// quoted input is malformed.
fn split_cmdline(cmdline: &[u8], quoted: bool) -> Option<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < cmdline.len() {
        let mut arg = Vec::new();
        if quoted && cmdline.get(i) == Some(&b'"') {
            i += 1;
            loop {
                match *cmdline.get(i)? {
                    b'\\' => {
                        arg.push(*cmdline.get(i + 1)?);
                        i += 2;
                    }
                    b'"' => {
                        i += 1;
                        break;
                    }
                    c => {
                        arg.push(c);
                        i += 1;
                    }
                }
            }
            match cmdline.get(i) {
                None => {}
                Some(b' ') => i += 1,
                Some(_) => return None,
            }
        } else {
            let rest = cmdline.get(i..).unwrap_or_default();
            let len = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
            arg.extend_from_slice(rest.get(..len).unwrap_or_default());
            // Past the argument and its delimiter.
            i += len + 1;
        }
        out.push(arg);
    }
    Some(out)
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    hex::decode(text).ok()
}

/// Problems found in the rows so far; the status reason mentions them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Tally {
    /// Fields that were missing or unreadable (left empty on the event).
    bad_fields: u64,
    /// Rows without a readable time: not deliverable.
    bad_rows: u64,
    /// Command lines that did not split into `cmdline_count` arguments.
    argv_mismatch: u64,
}

/// One row read into an event, plus what the cursor needs.
struct Parsed {
    event: ExecEvent,
    eid: u64,
}

/// An integer column; None (and counted) when missing or unreadable.
fn int_field(row: &BTreeMap<String, String>, name: &str, bad: &mut u64) -> Option<i64> {
    let v = row.get(name).and_then(|s| s.trim().parse::<i64>().ok());
    if v.is_none() {
        *bad += 1;
    }
    v
}

/// A `hex(...)` column as bytes; None (and counted) when missing or not hex.
fn hex_field(row: &BTreeMap<String, String>, name: &str, bad: &mut u64) -> Option<Vec<u8>> {
    let v = row.get(name).and_then(|s| unhex(s));
    if v.is_none() {
        *bad += 1;
    }
    v
}

/// Reads one es_process_events row. None when it has no usable `time`.
fn parse_row(row: &BTreeMap<String, String>, quoted: bool, tally: &mut Tally) -> Option<Parsed> {
    let mut bad = 0u64;
    let Some(time) = int_field(row, "time", &mut bad) else {
        tally.bad_rows += 1;
        return None;
    };
    let pid = int_field(row, "pid", &mut bad);
    let ppid = int_field(row, "parent", &mut bad);
    let uid = int_field(row, "uid", &mut bad);
    let gid = int_field(row, "gid", &mut bad);
    let egid = int_field(row, "egid", &mut bad);
    let platform_binary = match int_field(row, "platform_binary", &mut bad) {
        Some(0) => Some(false),
        Some(1) => Some(true),
        Some(_) => {
            bad += 1;
            None
        }
        None => None,
    };
    let argc = int_field(row, "cmdline_count", &mut bad);
    let eid = row.get("eid").and_then(|s| s.trim().parse::<u64>().ok());
    if eid.is_none() {
        bad += 1;
    }
    let path = hex_field(row, "path_hex", &mut bad).unwrap_or_default();
    let cmdline = hex_field(row, "cmdline_hex", &mut bad).unwrap_or_default();
    let cwd = hex_field(row, "cwd_hex", &mut bad).filter(|c| !c.is_empty());
    let signing_id = hex_field(row, "signing_id_hex", &mut bad).unwrap_or_default();
    let team_id = hex_field(row, "team_id_hex", &mut bad).unwrap_or_default();

    // The reading that gives cmdline_count arguments, preferring the quoted
    // one; failing that, the first that parses.
    let counts = |a: &Vec<Vec<u8>>| argc.is_none_or(|n| a.len() as i64 == n);
    let readings: Vec<Vec<Vec<u8>>> = [quoted.then_some(true), Some(false)]
        .into_iter()
        .flatten()
        .filter_map(|q| split_cmdline(&cmdline, q))
        .collect();
    let pick = readings.iter().position(counts).unwrap_or(0);
    let argv = readings.into_iter().nth(pick).unwrap_or_default();
    if argc.is_some_and(|n| argv.len() as i64 != n) {
        tally.argv_mismatch += 1;
    }
    tally.bad_fields += bad;

    let event = ExecEvent {
        time,
        time_nanos: 0,
        pid: pid.unwrap_or(0),
        ppid: ppid.unwrap_or(0),
        path,
        argv,
        cwd,
        uid,
        // es_process_events' euid column holds the effective gid (osquery
        // es_utils.cpp), so it is not used.
        euid: None,
        gid,
        egid,
        auid: None,
        parent_path: None,
        parent_argv: None,
        code: CodeIdentity {
            signing_id: crate::text::bytes_to_text(&signing_id),
            team_id: crate::text::bytes_to_text(&team_id),
            platform_binary,
            sha256: String::new(),
        },
        source: SourceKind::OsqueryEs,
        // osquery's own event id: stored with the row, so the same row always
        // gives the same ExecEvent (and event id).
        discriminator: eid.unwrap_or(0),
        incomplete: bad > 0,
        // es_process_events' env is not read.
        krb5ccname: None,
    };
    Some(Parsed {
        event,
        eid: eid.unwrap_or(0),
    })
}

/// Identifies a row exactly, to skip it when a later poll returns it again.
fn fingerprint(row: &BTreeMap<String, String>) -> u64 {
    let mut h = DefaultHasher::new();
    row.hash(&mut h);
    h.finish()
}

/// Where the next poll starts, and the rows of the re-read seconds that were
/// already delivered.
#[derive(Debug)]
struct Cursor {
    /// Newest event second delivered (at start: start time minus backlog).
    last: i64,
    seen: BTreeSet<(i64, u64)>,
}

impl Cursor {
    fn new(start: i64) -> Cursor {
        Cursor {
            last: start,
            seen: BTreeSet::new(),
        }
    }

    /// The `time >=` bound of the next poll.
    fn since(&self) -> i64 {
        self.last.saturating_sub(REQUERY_SECONDS)
    }

    /// Records a row; false if it was delivered before.
    fn first_time(&mut self, time: i64, fp: u64) -> bool {
        self.seen.insert((time, fp))
    }

    /// Moves past the newest second delivered and forgets fingerprints the
    /// next poll can no longer return.
    fn advance(&mut self, newest: i64) {
        self.last = self.last.max(newest);
        let keep_from = self.since();
        self.seen = self.seen.split_off(&(keep_from, 0));
    }

    /// The wall clock went back (osquery stamps events with the same clock):
    /// new events would sort before `last` and never be asked for. Restart
    /// from `now`; re-read rows are caught by the store's eid dedup.
    fn rewind_if_clock_went_back(&mut self, now: i64) -> bool {
        // One second of slack: osquery may stamp an event in the second
        // after we read the clock.
        if now.saturating_add(1) >= self.last {
            return false;
        }
        self.last = now;
        self.seen.clear();
        true
    }
}

/// The `osquery_es` source: a connection to osqueryd's extension manager,
/// the time cursor of the polls, and recent execs for naming parents. Made
/// by [`open`] or [`open_with`].
pub struct OsqueryEs {
    socket: PathBuf,
    settings: Settings,
    /// None after a failure: the next poll reconnects.
    client: Option<ManagerClient>,
    version: String,
    quoted: bool,
    cursor: Cursor,
    parents: ExecCache,
    tally: Tally,
    /// Polls that failed since start, and the latest reason.
    failures: u64,
    last_failure: String,
    /// Last answer about osqueryd's Endpoint Security publisher: Some(false)
    /// when it is not running, None when osqueryd could not say.
    publisher: Option<bool>,
    publisher_checked: Option<Instant>,
}

impl std::fmt::Debug for OsqueryEs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OsqueryEs")
            .field("socket", &self.socket)
            .field("version", &self.version)
            .field("cursor", &self.cursor.last)
            .finish()
    }
}

/// Opens the source with default settings and a poll interval.
pub fn open(socket: &Path, poll: Duration) -> Result<OsqueryEs, SourceError> {
    open_with(socket, Settings::new(poll))
}

/// Connects to osqueryd's manager socket and checks that es_process_events
/// can be read; the Err is a reason for the status table.
pub fn open_with(socket: &Path, settings: Settings) -> Result<OsqueryEs, SourceError> {
    let settings = Settings {
        // sleep_unless_stopped with zero would spin.
        poll: settings.poll.max(Duration::from_millis(100)),
        ..settings
    };
    let (client, pre) = connect(socket, &settings)?;
    let backlog = i64::try_from(settings.backlog.as_secs()).unwrap_or(i64::MAX);
    let start = (settings.clock)().saturating_sub(backlog);
    Ok(OsqueryEs {
        socket: socket.to_path_buf(),
        settings,
        client: Some(client),
        version: pre.version,
        quoted: pre.quoted,
        cursor: Cursor::new(start),
        parents: ExecCache::new(PARENT_CACHE),
        tally: Tally::default(),
        failures: 0,
        last_failure: String::new(),
        publisher: None,
        publisher_checked: None,
    })
}

impl OsqueryEs {
    /// The `time >=` bound the next poll will use.
    pub fn next_since(&self) -> i64 {
        self.cursor.since()
    }

    fn reason(&self) -> String {
        let mut r = format!(
            "reading osqueryd {}'s es_process_events through query() every {}s",
            self.version,
            self.settings.poll.as_secs_f64()
        );
        if !self.quoted {
            r.push_str(
                "; this osquery does not quote cmdline, so an argument containing a space \
                 is split in two",
            );
        }
        let t = self.tally;
        if t.bad_fields > 0 || t.bad_rows > 0 {
            r.push_str(&format!(
                "; {} unreadable fields left empty, {} rows without a time dropped",
                t.bad_fields, t.bad_rows
            ));
        }
        if t.argv_mismatch > 0 {
            r.push_str(&format!(
                "; {} command lines did not split into cmdline_count arguments",
                t.argv_mismatch
            ));
        }
        if self.failures > 0 {
            r.push_str(&format!(
                "; {} polls failed since start (last: {})",
                self.failures, self.last_failure
            ));
        }
        r
    }

    fn client(&mut self) -> Result<&mut ManagerClient, SourceError> {
        if self.client.is_none() {
            let (client, pre) = connect(&self.socket, &self.settings)?;
            // An osquery upgrade behind our back changes the cmdline format.
            self.version = pre.version;
            self.quoted = pre.quoted;
            self.publisher_checked = None;
            self.client = Some(client);
        }
        self.client
            .as_mut()
            .ok_or_else(|| SourceError::Failed("no connection to osqueryd".to_string()))
    }

    /// Asks whether osqueryd's Endpoint Security publisher runs, when due.
    fn check_publisher(&mut self) -> Result<(), SourceError> {
        let every = if self.publisher == Some(false) {
            Duration::ZERO
        } else {
            PUBLISHER_CHECK_EVERY
        };
        if self
            .publisher_checked
            .is_some_and(|at| at.elapsed() < every)
        {
            return Ok(());
        }
        let answer = self.client()?.query(PUBLISHER_SQL);
        self.publisher_checked = Some(Instant::now());
        self.publisher = match answer {
            Ok(rows) => Some(
                rows.iter()
                    .any(|r| r.get("active").is_some_and(|a| a.trim() == "1")),
            ),
            Err(e) => {
                // An osqueryd that cannot say is not reported as blind. A
                // broken connection fails the exec query next, which
                // reconnects.
                log::debug!("osquery_es: cannot read osquery_events: {e:#}");
                None
            }
        };
        Ok(())
    }

    /// One poll: fetch, deliver, advance. Returns the rows delivered.
    fn poll(&mut self, engine: &Engine, counters: &Counters) -> Result<usize, SourceError> {
        self.check_publisher()?;
        let now = (self.settings.clock)();
        if self.cursor.rewind_if_clock_went_back(now) {
            log::warn!("osquery_es: the clock went back; reading es_process_events from {now}");
        }
        let sql = exec_sql(self.cursor.since());
        let rows = match self.client()?.query(&sql) {
            Ok(rows) => rows,
            Err(e) => {
                // A SQL error leaves the stream usable, but osqueryd may be
                // restarting: a fresh connection is cheap and re-checks it.
                self.client = None;
                return Err(SourceError::EventsQuery(e));
            }
        };
        Ok(self.deliver(rows, engine, counters))
    }

    /// Turns one poll's rows into events, oldest first, skipping rows an
    /// earlier poll delivered.
    fn deliver(&mut self, rows: PluginRows, engine: &Engine, counters: &Counters) -> usize {
        let mut fresh: Vec<Parsed> = Vec::with_capacity(rows.len());
        for row in &rows {
            let fp = fingerprint(row);
            let time = row.get("time").and_then(|t| t.trim().parse::<i64>().ok());
            // A row without a time is remembered under the current second,
            // so that a re-read does not count it again.
            if !self.cursor.first_time(time.unwrap_or(self.cursor.last), fp) {
                continue;
            }
            match parse_row(row, self.quoted, &mut self.tally) {
                Some(parsed) => fresh.push(parsed),
                None => counters.drop_events(1),
            }
        }
        // Exec order, so a parent is cached before its child asks for it.
        fresh.sort_by_key(|p| (p.event.time, p.eid));
        let delivered = fresh.len();
        let mut newest = None;
        for Parsed { mut event, .. } in fresh {
            newest = newest.max(Some(event.time));
            if let Some(parent) = self.parents.get(event.ppid) {
                event.parent_path = Some(parent.path.to_vec());
                // The cache keeps argv joined by spaces.
                event.parent_argv = Some(
                    parent
                        .cmdline
                        .split(|&b| b == b' ')
                        .map(<[u8]>::to_vec)
                        .collect(),
                );
            }
            self.parents.record(event.pid, &event.path, &event.argv);
            engine.ingest(&event, counters);
        }
        if let Some(newest) = newest {
            self.cursor.advance(newest);
        }
        delivered
    }
}

impl Source for OsqueryEs {
    fn kind(&self) -> SourceKind {
        SourceKind::OsqueryEs
    }

    fn run(&mut self, engine: &Engine, stop: &AtomicBool) -> Result<(), SourceError> {
        let board = engine.status();
        let counters = board.set(SourceKind::OsqueryEs, State::Active, self.reason());
        loop {
            match self.poll(engine, &counters) {
                Ok(n) => {
                    log::trace!("osquery_es: {n} new exec rows");
                    if self.publisher == Some(false) {
                        board.set(
                            SourceKind::OsqueryEs,
                            State::Failed,
                            format!(
                                "osqueryd {} has es_process_events but its Endpoint Security \
                                 publisher is not running, so no new events arrive: osqueryd \
                                 needs root, Full Disk Access and an official (ES-entitled) \
                                 build; its log says why after 'Event publisher not enabled: \
                                 endpointsecurity'",
                                self.version
                            ),
                        );
                    } else {
                        board.set(SourceKind::OsqueryEs, State::Active, self.reason());
                    }
                }
                Err(why) => {
                    self.failures += 1;
                    self.last_failure = why.to_string();
                    board.set(
                        SourceKind::OsqueryEs,
                        State::Failed,
                        format!(
                            "{why}; retrying every {}s",
                            self.settings.poll.as_secs_f64()
                        ),
                    );
                }
            }
            if !sleep_unless_stopped(self.settings.poll, stop) {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        hex::encode_upper(bytes)
    }

    fn row(
        time: i64,
        eid: u64,
        pid: i64,
        ppid: i64,
        path: &str,
        cmdline: &str,
    ) -> BTreeMap<String, String> {
        let mut r = BTreeMap::new();
        for (k, v) in [
            ("time", time.to_string()),
            ("eid", format!("{eid:010}")),
            ("pid", pid.to_string()),
            ("parent", ppid.to_string()),
            ("uid", "501".into()),
            ("gid", "20".into()),
            ("egid", "20".into()),
            ("platform_binary", "1".into()),
            (
                "cmdline_count",
                split_cmdline(cmdline.as_bytes(), true)
                    .unwrap()
                    .len()
                    .to_string(),
            ),
            ("path_hex", hex(path.as_bytes())),
            ("cmdline_hex", hex(cmdline.as_bytes())),
            ("cwd_hex", hex(b"/Users/a")),
            // Each binary's own identifier: a kcc signing id on another
            // binary would (rightly) make it a renamed kcc.
            (
                "signing_id_hex",
                hex(format!("com.apple.{}", path.rsplit('/').next().unwrap_or(path)).as_bytes()),
            ),
            ("team_id_hex", String::new()),
        ] {
            r.insert(k.to_string(), v);
        }
        r
    }

    #[test]
    fn splits_quoted_and_plain_command_lines() {
        let q = |s: &str| split_cmdline(s.as_bytes(), true).unwrap();
        assert_eq!(
            q("kcc copy_cred_cache "),
            [b"kcc".to_vec(), b"copy_cred_cache".to_vec()]
        );
        assert_eq!(
            q(r#"kcc "FILE:/tmp/a b" "say \"hi\" \\" x\y "#),
            [
                b"kcc".to_vec(),
                b"FILE:/tmp/a b".to_vec(),
                br#"say "hi" \"#.to_vec(),
                br"x\y".to_vec()
            ]
        );
        // An empty argument is just its delimiter.
        assert_eq!(q("a  b "), [b"a".to_vec(), Vec::new(), b"b".to_vec()]);
        assert_eq!(q(""), Vec::<Vec<u8>>::new());
        assert_eq!(split_cmdline(br#"a "open"#, true), None);
        assert_eq!(split_cmdline(br#""a"b "#, true), None);
        // Before 5.10 nothing is quoted.
        assert_eq!(
            split_cmdline(br#"echo "x y" "#, false).unwrap(),
            [b"echo".to_vec(), b"\"x".to_vec(), b"y\"".to_vec()]
        );
    }

    #[test]
    fn reads_versions() {
        assert_eq!(parse_version("5.12.1"), Some((5, 12, 1)));
        assert_eq!(parse_version("5.9.0-12-gabc"), Some((5, 9, 0)));
        assert_eq!(parse_version("6"), Some((6, 0, 0)));
        assert_eq!(parse_version("x"), None);
        assert!(parse_version("5.8.2").unwrap() < MIN_VERSION);
    }

    #[test]
    fn every_query_on_the_table_has_a_time_constraint() {
        assert!(exec_sql(7).contains("WHERE time >= 7 AND event_type = 'exec'"));
        assert!(probe_sql(9).contains("WHERE time > 9 "));
    }

    #[test]
    fn bad_values_become_none_and_are_counted() {
        let mut r = row(100, 3, 42, 1, "/usr/bin/kcc", "kcc list ");
        r.insert("uid".into(), "x".into());
        r.insert("platform_binary".into(), "7".into());
        r.insert("cwd_hex".into(), "ZZ".into());
        r.remove("eid");
        let mut t = Tally::default();
        let p = parse_row(&r, true, &mut t).unwrap();
        assert_eq!(p.event.uid, None);
        assert_eq!(p.event.code.platform_binary, None);
        assert_eq!(p.event.cwd, None);
        assert_eq!(p.event.gid, Some(20));
        assert!(p.event.incomplete);
        assert_eq!(t.bad_fields, 4);
        r.insert("time".into(), "soon".into());
        assert!(parse_row(&r, true, &mut t).is_none());
        assert_eq!(t.bad_rows, 1);
    }

    #[test]
    fn cmdline_count_picks_the_reading() {
        let mut r = row(100, 3, 42, 1, "/usr/bin/say", "say \"hi there\" ");
        let mut t = Tally::default();
        let p = parse_row(&r, true, &mut t).unwrap();
        assert_eq!(p.event.argv, [b"say".to_vec(), b"hi there".to_vec()]);
        // Three arguments: it was not quoting after all.
        r.insert("cmdline_count".into(), "3".into());
        let p = parse_row(&r, true, &mut t).unwrap();
        assert_eq!(p.event.argv[1], b"\"hi");
        assert_eq!(t.argv_mismatch, 0);
        r.insert("cmdline_count".into(), "5".into());
        let p = parse_row(&r, true, &mut t).unwrap();
        assert_eq!(p.event.argv.len(), 2, "neither fits: the quoted reading");
        assert_eq!(t.argv_mismatch, 1);
    }

    #[test]
    fn non_utf8_bytes_survive() {
        let mut r = row(100, 3, 42, 1, "/tmp/k", "k ");
        r.insert("cmdline_hex".into(), hex(b"k \xff "));
        r.insert("cmdline_count".into(), "2".into());
        let p = parse_row(&r, true, &mut Tally::default()).unwrap();
        assert_eq!(p.event.argv, [b"k".to_vec(), b"\xff".to_vec()]);
        assert!(!p.event.incomplete);
    }

    #[test]
    fn cursor_rereads_the_last_second_without_repeats() {
        let mut c = Cursor::new(1000);
        assert_eq!(c.since(), 999);
        assert!(c.first_time(1005, 1));
        c.advance(1005);
        assert_eq!(c.since(), 1004);
        // The same row again, and a new one of the same second.
        assert!(!c.first_time(1005, 1));
        assert!(c.first_time(1005, 2));
        c.advance(1007);
        assert_eq!(c.seen.len(), 0, "1005 is below the next bound 1006");
        assert!(!c.rewind_if_clock_went_back(1006));
        assert!(c.rewind_if_clock_went_back(900));
        assert_eq!(c.since(), 899);
        assert!(!c.rewind_if_clock_went_back(950));
    }

    fn source(quoted: bool) -> OsqueryEs {
        OsqueryEs {
            socket: PathBuf::from("/nonexistent"),
            settings: Settings::new(DEFAULT_POLL),
            client: None,
            version: "5.12.1".into(),
            quoted,
            cursor: Cursor::new(0),
            parents: ExecCache::new(16),
            tally: Tally::default(),
            failures: 0,
            last_failure: String::new(),
            publisher: None,
            publisher_checked: None,
        }
    }

    #[test]
    fn delivers_once_with_parents_in_exec_order() {
        let engine = Engine::for_tests();
        let counters = engine.counters(SourceKind::OsqueryEs);
        let mut s = source(true);
        let shell = row(
            100,
            1,
            40,
            1,
            "/bin/zsh",
            "zsh -c \"kcc copy_cred_cache /tmp/x\" ",
        );
        let kcc = row(
            100,
            2,
            42,
            40,
            "/usr/bin/kcc",
            "kcc copy_cred_cache /tmp/x ",
        );
        // Child first: sorting by eid puts the shell first.
        assert_eq!(
            s.deliver(vec![kcc.clone(), shell.clone()], &engine, &counters),
            2
        );
        assert_eq!(s.deliver(vec![shell, kcc], &engine, &counters), 0);
        let rows = engine.store().select(&Default::default());
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        assert_eq!(r.indicator, crate::classify::CREDENTIAL_CACHE_COPY);
        assert_eq!(r.parent_path, "/bin/zsh");
        assert_eq!(r.parent_cmdline, "zsh -c kcc copy_cred_cache /tmp/x");
        assert_eq!((r.pid, r.parent, r.time), (42, 40, 100));
        assert_eq!(r.signing_id, "com.apple.kcc");
        assert_eq!(r.platform_binary, Some(1));
        assert_eq!(r.euid, None);
        assert_eq!(r.source, crate::event::SourceKind::OsqueryEs);
        assert_eq!(s.next_since(), 99);
    }
}
