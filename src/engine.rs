//! The pipeline every event goes through: source → classify → row → store.
//!
//! Sources call [`Engine::ingest`] from their own threads; tables read the
//! store. Everything a source needs from the rest of the program goes through
//! here, so sources stay independent of osquery and of each other.

/// What a source knows of an exec's identity, for `Engine::wants`.
pub use crate::classify::Identity;
use crate::classify::{
    cache_name, classify_checking_image, needs_engine, Classification, Indicator, IndicatorSet,
    KeytabCorrelator,
};
pub use crate::event::unix_now;
use crate::event::{ExecEvent, SourceKind};
use crate::exec_path;
use crate::identity::KccImage;
use crate::journal::Journal;
use crate::row::Row;
use crate::status::{Counters, StatusBoard};
use crate::store::{Store, StoreConfig};
use crate::ticket_replay::{self, ReplayLimiter};
use crate::users::UserNames;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// A scan a source registers to run before each query (see
/// [`Engine::set_on_demand`]).
pub(crate) type OnDemand = Box<OnDemandFn>;
type OnDemandFn = dyn Fn(&Engine) + Send + Sync;

/// Where new rows are copied to (the standalone printer).
struct Observer {
    tx: SyncSender<Arc<Row>>,
    give_up: Arc<AtomicBool>,
}

impl Observer {
    /// Waits while the channel is full, until the printer takes the row,
    /// goes away, or gives up (then the row stays in the store only).
    fn send(&self, row: &Arc<Row>) {
        let mut row = Arc::clone(row);
        loop {
            match self.tx.try_send(row) {
                Ok(()) | Err(TrySendError::Disconnected(_)) => return,
                Err(TrySendError::Full(back)) => {
                    if self.give_up.load(Ordering::Relaxed) {
                        return;
                    }
                    row = back;
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
    }
}

/// The one pipeline of the program: owns the row store, the status board and
/// the cross-event state (keytab correlation, replay limiting, the host's kcc
/// image), and is shared by every source thread and table.
pub struct Engine {
    store: Store,
    status: StatusBoard,
    users: Box<dyn UserNames>,
    observer: Mutex<Option<Observer>>,
    on_demand: Mutex<Option<Arc<OnDemandFn>>>,
    kcc_image: KccImage,
    keytabs: Mutex<KeytabCorrelator>,
    replays: Mutex<ReplayLimiter>,
    /// Where rows are written before they become visible, when journaling.
    journal: OnceLock<Arc<Journal>>,
}

impl Engine {
    /// An engine with an empty store of these budgets, resolving user names
    /// through `users`. Hashes the host's kcc, if it has one, for the
    /// renamed-copy check.
    pub fn new(config: StoreConfig, users: Box<dyn UserNames>) -> Engine {
        Engine {
            store: Store::new(config),
            status: StatusBoard::default(),
            users,
            observer: Mutex::new(None),
            on_demand: Mutex::new(None),
            kcc_image: KccImage::from_host(),
            keytabs: Mutex::new(KeytabCorrelator::default()),
            replays: Mutex::new(ReplayLimiter::default()),
            journal: OnceLock::new(),
        }
    }

    /// Uses these files as "the host's kcc" for recognising renamed copies
    /// by content.
    #[cfg(test)]
    pub(crate) fn with_kcc_references(mut self, paths: &[&std::path::Path]) -> Engine {
        self.kcc_image = KccImage::from_paths(paths);
        self
    }

    /// The row store the tables read.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Every source's health, for the status table.
    pub fn status(&self) -> &StatusBoard {
        &self.status
    }

    /// Journals every row added from now on (set once, before the sources
    /// start).
    pub(crate) fn set_journal(&self, journal: Arc<Journal>) {
        if self.journal.set(journal).is_err() {
            log::warn!("engine: a journal was already set; keeping the first");
        }
    }

    /// Every row added from now on is also sent to `tx` (the standalone
    /// printer). The channel is bounded, so a slow reader of stdout slows
    /// the sources down (a live source then drops and counts in the kernel)
    /// instead of queueing rows without limit; once `give_up` is set (the
    /// printer is stopping) a full channel no longer blocks.
    pub(crate) fn observe(&self, tx: SyncSender<Arc<Row>>, give_up: Arc<AtomicBool>) {
        *self.observer.lock().unwrap_or_else(|e| e.into_inner()) = Some(Observer { tx, give_up });
    }

    /// The hot path's cheap reject, for sources that see every exec on the
    /// host: whether this exec must go on to [`Engine::ingest`]. A false
    /// answer is final (not Kerberos-related); it does not allocate. Sources
    /// call this instead of the classifier, so only the engine classifies.
    pub(crate) fn wants<'a, A: AsRef<[u8]>>(
        path: &'a [u8],
        argv: &'a [A],
        identity: &Identity<'a>,
    ) -> bool {
        needs_engine(path, argv, identity)
    }

    /// Whether a process name is a Kerberos tool's: the process snapshot's
    /// cheap filter on the process list, before it reads a process in full.
    pub(crate) fn is_tool_name(name: &[u8]) -> bool {
        crate::classify::is_tool_name(name)
    }

    /// Classifies one event and stores it if it is Kerberos-related. Returns
    /// the new row, or `None` if the event was dropped as unrelated or was
    /// already stored.
    pub fn ingest(&self, event: &ExecEvent, counters: &Counters) -> Option<Arc<Row>> {
        counters.saw(event.time);
        if event.incomplete {
            counters.incomplete.fetch_add(1, Ordering::Relaxed);
        }
        let signing_id = event.code.signing_id.as_str();
        let krb5ccname = event.krb5ccname.as_deref().filter(|c| !c.is_empty());
        let identity = Identity {
            signing_id,
            kcc_image: None,
            uid: event.uid,
            euid: event.euid,
            krb5ccname,
        };
        // A file-content check only for execs that only the file's identity
        // can tell (an unknown name running kcc's commands) and whose source
        // gave no signing id; through the dynamic loader, of the program it
        // runs. Execs kept for a cache name or a replay are not looked at.
        let mut verdict = None;
        let mut class = classify_checking_image(&event.path, &event.argv, &identity, || {
            let (program, _, _) = exec_path::through_loader(&event.path, &event.argv);
            verdict = self.kcc_image.check(program);
            verdict.as_ref().map(|v| v.is_kcc)
        });
        if let Some(cc) = krb5ccname {
            let flagged = class
                .as_ref()
                .is_some_and(|c| c.has(Indicator::CcacheReplay));
            if !flagged && self.names_stolen_cache(cc, event.cwd.as_deref()) {
                let c = class.get_or_insert_with(Classification::default);
                c.add(Indicator::CcacheReplay);
                if c.ccache.is_empty() {
                    c.ccache = cache_name(cc);
                }
            }
            // A replay alone is reported once per user and cache a while.
            let replay_only = class
                .as_ref()
                .is_some_and(|c| c.indicators == IndicatorSet::only(Indicator::CcacheReplay));
            if replay_only
                && !self
                    .replays
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .first(event.uid, cc, event.time)
            {
                return None;
            }
        }
        let mut class = class?;
        if let Some(upgrade) = self
            .keytabs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .observe(&class, event.uid, event.time)
        {
            class.add(upgrade);
        }
        let username = event
            .uid
            .and_then(|uid| self.users.name_of(uid))
            .unwrap_or_default();
        let mut row = Row::from_event(event, &class, username);
        if row.sha256.is_empty() {
            if let Some(sha) = verdict.and_then(|v| v.sha256) {
                row.sha256 = sha;
            }
        }
        // One execution, one row: whichever of the snapshot and an exec
        // source saw it first keeps it.
        if self.store.has_same_execution(&row) {
            return None;
        }
        // Written to the journal before it is visible, so a row osqueryd
        // could have read survives a kill -9.
        let now = unix_now();
        let row = match self.journal.get() {
            Some(journal) => journal.record(row, now, |row| self.store.insert(row, now)),
            None => self.store.insert(row, now),
        }?;
        counters.rows_added.fetch_add(1, Ordering::Relaxed);
        let observer = self.observer.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(observer) = observer.as_ref() {
            observer.send(&row);
        }
        Some(row)
    }

    /// Registers the scan to run before each query reads the store (the
    /// process snapshot's, so a query sees what is running now). The source
    /// that registers it decides how often it really scans.
    pub(crate) fn set_on_demand(&self, scan: OnDemand) {
        *self.on_demand.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::from(scan));
    }

    /// Called before a query reads the store: adds live matching processes
    /// and applies retention.
    pub(crate) fn refresh_for_query(&self) {
        let scan = self
            .on_demand
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(scan) = scan {
            scan(self);
        }
        self.store.expire(unix_now());
    }

    /// Whether a stored theft (a copied or read cache) named the file this
    /// `KRB5CCNAME` points at.
    fn names_stolen_cache(&self, krb5ccname: &[u8], cwd: Option<&[u8]>) -> bool {
        let Some(target) = ticket_replay::replay_target(krb5ccname, cwd) else {
            return false;
        };
        self.store
            .any_detection(|row| ticket_replay::row_names(row, &target))
    }

    /// `source`'s counters on the status board (see
    /// [`StatusBoard::counters`]).
    pub fn counters(&self, source: SourceKind) -> Arc<Counters> {
        self.status.counters(source)
    }
}

#[cfg(test)]
impl Engine {
    /// The default store and no user names: what unit tests start from.
    pub(crate) fn for_tests() -> Engine {
        Engine::new(
            StoreConfig::default(),
            Box::new(crate::users::FixedUsers::default()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::State;

    fn kcc(source: SourceKind, time: i64) -> ExecEvent {
        ExecEvent {
            time,
            pid: 42,
            ppid: 1,
            path: b"/usr/bin/kcc".to_vec(),
            argv: vec![b"kcc".to_vec(), b"copy_cred_cache".to_vec()],
            source,
            ..ExecEvent::default()
        }
    }

    fn exec(path: &str, argv: &[&str]) -> ExecEvent {
        ExecEvent {
            time: 2000,
            pid: 7,
            ppid: 1,
            path: path.as_bytes().to_vec(),
            argv: argv.iter().map(|a| a.as_bytes().to_vec()).collect(),
            uid: Some(501),
            source: SourceKind::LinuxAudit,
            ..ExecEvent::default()
        }
    }

    /// An engine whose reference kcc is a temporary file, and a copy of it
    /// named `fontd` in the same directory (kept alive by the returned dir).
    fn engine_with_kcc_reference() -> (tempfile::TempDir, Engine) {
        let dir = tempfile::tempdir().unwrap();
        let kcc = dir.path().join("kcc");
        std::fs::write(&kcc, b"the host's kcc").unwrap();
        std::fs::copy(&kcc, dir.path().join("fontd")).unwrap();
        let engine = Engine::for_tests().with_kcc_references(&[kcc.as_path()]);
        (dir, engine)
    }

    #[test]
    fn a_renamed_kcc_is_recognised_by_its_content() {
        let (dir, engine) = engine_with_kcc_reference();
        let copy = dir.path().join("fontd");
        let c = engine.counters(SourceKind::LinuxAudit);
        let path = copy.to_str().unwrap();
        let row = engine
            .ingest(&exec(path, &["fontd", "c", "/tmp/stolen"]), &c)
            .expect("a renamed kcc copying a cache is a row");
        assert_eq!(row.indicator, "credential_cache_copy,renamed_kerberos_tool");
        assert_eq!(row.sha256.len(), 64);
        assert_eq!(row.ccache, "FILE:/tmp/stolen");
        // The same argv from a binary that is not kcc is not an indicator.
        let other = dir.path().join("other");
        std::fs::write(&other, b"something else entirely").unwrap();
        let e = exec(other.to_str().unwrap(), &["other", "c", "/tmp/stolen"]);
        let row = engine.ingest(&e, &c);
        assert!(row.is_none_or(|r| r.indicator.is_empty()));
    }

    #[test]
    fn a_signing_id_names_a_renamed_kcc_whatever_it_runs() {
        let engine = Engine::for_tests();
        let c = engine.counters(SourceKind::Eslogger);
        let mut e = exec("/private/tmp/helper", &["helper", "list"]);
        e.code.signing_id = "com.apple.kcc".into();
        let row = engine.ingest(&e, &c).expect("row");
        assert!(
            row.indicator.contains("renamed_kerberos_tool"),
            "{}",
            row.indicator
        );
    }

    #[test]
    fn a_forged_keytab_then_its_use_is_flagged() {
        let engine = Engine::for_tests();
        let c = engine.counters(SourceKind::LinuxAudit);
        let add = exec(
            "/usr/bin/ktutil",
            &[
                "ktutil",
                "-k",
                "/tmp/evil.keytab",
                "add",
                "-p",
                "svc@CORP",
                "-V",
                "1",
                "-e",
                "aes256-cts-hmac-sha1-96",
                "--hex",
            ],
        );
        let row = engine.ingest(&add, &c).expect("ktutil row");
        assert!(
            row.indicator.contains("forged_keytab_key"),
            "{}",
            row.indicator
        );
        let mut kinit = exec(
            "/usr/bin/kinit",
            &["kinit", "-t", "/tmp/evil.keytab", "svc@CORP"],
        );
        kinit.time = 2100;
        kinit.pid = 8;
        let row = engine.ingest(&kinit, &c).expect("kinit row");
        assert!(
            row.indicator.contains("forged_keytab_use"),
            "{}",
            row.indicator
        );
    }

    #[test]
    fn the_process_ids_decide_a_foreign_cache() {
        let engine = Engine::for_tests();
        let c = engine.counters(SourceKind::LinuxAudit);
        let mut e = exec("/bin/cp", &["cp", "/tmp/krb5cc_1000", "/tmp/x"]);
        e.uid = Some(1001);
        e.euid = Some(1001);
        let row = engine.ingest(&e, &c).expect("row");
        assert_eq!(row.indicator, "foreign_ccache_access");
        assert_eq!(row.ccache, "FILE:/tmp/krb5cc_1000");
        e.pid += 1;
        e.uid = Some(0);
        e.euid = Some(0);
        assert_eq!(
            engine.ingest(&e, &c).unwrap().indicator,
            "ccache_file_access"
        );
        // A Kerberos tool on its own cache stays benign; on another's, not.
        let mut k = exec("/usr/bin/klist", &["klist", "-c", "/tmp/krb5cc_501"]);
        assert_eq!(engine.ingest(&k, &c).unwrap().indicator, "");
        k.pid += 1;
        k.argv[2] = b"/tmp/krb5cc_502".to_vec();
        assert_eq!(
            engine.ingest(&k, &c).unwrap().indicator,
            "foreign_ccache_access"
        );
    }

    #[test]
    fn the_program_behind_the_loader_is_checked_by_content() {
        let (dir, engine) = engine_with_kcc_reference();
        let copy = dir.path().join("fontd");
        let c = engine.counters(SourceKind::LinuxAudit);
        let program = copy.to_str().unwrap();
        let e = exec(
            "/lib64/ld-linux-x86-64.so.2",
            &["ld-linux-x86-64.so.2", program, "c", "/tmp/stolen"],
        );
        let row = engine.ingest(&e, &c).expect("row");
        assert_eq!(row.indicator, "credential_cache_copy,renamed_kerberos_tool");
        assert_eq!(row.path, "/lib64/ld-linux-x86-64.so.2");
    }

    fn with_env(path: &str, argv: &[&str], krb5ccname: &str) -> ExecEvent {
        let mut e = exec(path, argv);
        e.source = SourceKind::Eslogger;
        e.krb5ccname = Some(krb5ccname.as_bytes().to_vec());
        e.cwd = Some(b"/Users/eve".to_vec());
        e
    }

    #[test]
    fn krb5ccname_pointing_at_a_stolen_copy_is_a_replay() {
        let engine = Engine::for_tests();
        let c = engine.counters(SourceKind::Eslogger);
        // Not suspicious by itself: a private directory, the user's own.
        let plain = with_env("/usr/bin/ssh", &["ssh", "host"], "FILE:/Users/eve/stash");
        assert!(engine.ingest(&plain, &c).is_none());
        // The theft: cp of another user's cache into that file (relative).
        let mut cp = exec("/bin/cp", &["cp", "/tmp/krb5cc_502", "stash"]);
        cp.pid = 20;
        cp.cwd = Some(b"/Users/eve".to_vec());
        assert_eq!(
            engine.ingest(&cp, &c).unwrap().indicator,
            "foreign_ccache_access"
        );
        let mut smb = with_env("/usr/bin/smbclient", &["smbclient", "-k"], "stash");
        smb.pid = 21;
        let row = engine.ingest(&smb, &c).expect("replay row");
        assert_eq!(
            (row.indicator.as_str(), row.ccache.as_str()),
            ("ccache_replay", "FILE:stash")
        );
        // The same replay again soon after: once is enough.
        smb.pid = 22;
        assert!(engine.ingest(&smb, &c).is_none());
        // A replay that also does something else keeps its row.
        let mut tool = with_env(
            "/usr/bin/python3",
            &["python3", "getST.py", "-k", "corp/x"],
            "FILE:/Users/eve/stash",
        );
        tool.pid = 23;
        assert_eq!(
            engine.ingest(&tool, &c).unwrap().indicator,
            "ccache_replay,kerberos_ticket_tool"
        );
    }

    #[test]
    fn the_replay_link_survives_a_restart_through_the_journal() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        {
            let engine = Engine::for_tests();
            let journal = Arc::new(Journal::new(&state));
            journal.attach(engine.store());
            engine.set_journal(Arc::clone(&journal));
            let c = engine.counters(SourceKind::Eslogger);
            let kcc = exec(
                "/usr/bin/kcc",
                &["kcc", "copy_cred_cache", "/Users/eve/t.cc"],
            );
            assert!(engine.ingest(&kcc, &c).is_some());
            journal.sync().unwrap();
        }
        let engine = Engine::for_tests();
        let journal = Arc::new(Journal::new(&state));
        journal.attach(engine.store());
        engine.set_journal(journal);
        assert_eq!(engine.store().stats().rows, 1, "restored");
        let c = engine.counters(SourceKind::Eslogger);
        let mut ssh = with_env("/usr/bin/ssh", &["ssh", "host"], "FILE:/Users/eve/t.cc");
        ssh.pid = 30;
        let row = engine.ingest(&ssh, &c).expect("replay row");
        assert_eq!(row.indicator, "ccache_replay");
    }

    #[test]
    fn the_snapshot_does_not_repeat_an_exec_an_event_source_reported() {
        let engine = Engine::for_tests();
        let audit = engine
            .status()
            .set(SourceKind::LinuxAudit, State::Active, "t");
        let snap = engine
            .status()
            .set(SourceKind::Snapshot, State::Active, "t");
        assert!(engine
            .ingest(&kcc(SourceKind::LinuxAudit, 1000), &audit)
            .is_some());
        // The same process seen running, with its (earlier) fork time.
        assert!(engine
            .ingest(&kcc(SourceKind::Snapshot, 999), &snap)
            .is_none());
        // A different image of that pid is a new execution.
        let mut other = kcc(SourceKind::Snapshot, 999);
        other.argv.push(b"/tmp/x".to_vec());
        assert!(engine.ingest(&other, &snap).is_some());
        assert_eq!(engine.store().stats().rows, 2);
    }

    #[test]
    fn an_exec_source_does_not_repeat_what_the_snapshot_reported() {
        let engine = Engine::for_tests();
        let es = engine
            .status()
            .set(SourceKind::OsqueryEs, State::Active, "t");
        let snap = engine
            .status()
            .set(SourceKind::Snapshot, State::Active, "t");
        let now = unix_now();
        // The snapshot sees the running process first (start time `now`).
        assert!(engine
            .ingest(&kcc(SourceKind::Snapshot, now), &snap)
            .is_some());
        // A slower source then delivers its exec: same image, no second row.
        assert!(engine
            .ingest(&kcc(SourceKind::OsqueryEs, now), &es)
            .is_none());
        // The pid reused later by the same command is a new execution.
        assert!(engine
            .ingest(&kcc(SourceKind::OsqueryEs, now + 30), &es)
            .is_some());
        assert_eq!(engine.store().stats().rows, 2);
    }
}
