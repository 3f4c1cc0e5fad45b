//! The shipped pack's SQL, run in a real SQLite against the real tables.
//!
//! `osquery_vtab` plays osqueryd: it attaches `kerberos_cache_access` and
//! `kerberos_cache_access_status` as virtual tables that forward constraints
//! and build the `context` JSON the way osqueryd does, and calls the real
//! `Table::generate_from_json`. Rows come from the real engine (classifier,
//! row builder, store); for indicator values this build's classifier may not
//! produce, engine rows are edited and stored directly (`Host::insert_row`).
//! A plain `time` table holds the "now" that osquery's `time` table would
//! give, and a plain `osquery_registry` stands in for the registry the
//! discovery query reads.

#[path = "pack/osquery_vtab.rs"]
mod osquery_vtab;
#[path = "pack/pack_files.rs"]
mod pack_files;

use kerberos_cache_access::constraints::QueryContext;
use kerberos_cache_access::engine::{unix_now, Engine};
use kerberos_cache_access::event::{ExecEvent, SourceKind};
use kerberos_cache_access::row::Row;
use kerberos_cache_access::schema::{EXEC_COLUMNS, EXEC_TABLE, STATUS_COLUMNS, STATUS_TABLE};
use kerberos_cache_access::status::{Counters, State};
use kerberos_cache_access::store::StoreConfig;
use kerberos_cache_access::table::{ExecTable, StatusTable};
use kerberos_cache_access::users::FixedUsers;
use osquery_vtab::{attach, Backend, GenerateCall};
use pack_files::{DETECTION, FLEET_POLICIES, HARDENED, HEALTH};
use rusqlite::types::Value;
use rusqlite::Connection;
use serde_json::Value as Json;
use std::sync::Arc;

/// The wall clock of the simulated host at the first scheduled run.
const NOW: i64 = 1_760_000_000;
/// Elastic's look-back (now-9m) as the pack writes it.
const WINDOW: i64 = 540;

/// The literal columns the detection adds, with their expected values.
fn rule_metadata() -> Vec<(&'static str, Value)> {
    vec![
        ("rule_id", text("ad88231f-e2ab-491c-8fc6-64746da26cfe")),
        ("rule_name", text("Kerberos Cached Credentials Dumping")),
        ("severity", text("high")),
        ("risk_score", Value::Integer(73)),
        ("mitre_techniques", text("T1003,T1558,T1558.003,T1558.005")),
        ("mitre_tactic", text("TA0006")),
    ]
}

fn text(s: &str) -> Value {
    Value::Text(s.to_string())
}

/// Query results: column names and rows of SQL values.
#[derive(Debug, Clone, PartialEq)]
struct Rows {
    columns: Vec<String>,
    rows: Vec<Vec<Value>>,
}

impl Rows {
    fn len(&self) -> usize {
        self.rows.len()
    }

    fn get(&self, row: usize, column: &str) -> &Value {
        let i = self
            .columns
            .iter()
            .position(|c| c == column)
            .unwrap_or_else(|| panic!("no column {column} in {:?}", self.columns));
        &self.rows[row][i]
    }

    fn texts(&self, column: &str) -> Vec<String> {
        (0..self.len())
            .map(|r| match self.get(r, column) {
                Value::Text(s) => s.clone(),
                other => panic!("{column} is not text: {other:?}"),
            })
            .collect()
    }

    fn ints(&self, column: &str) -> Vec<i64> {
        (0..self.len())
            .map(|r| match self.get(r, column) {
                Value::Integer(i) => *i,
                other => panic!("{column} is not an integer: {other:?}"),
            })
            .collect()
    }
}

fn run(conn: &Connection, sql: &str) -> Rows {
    let mut stmt = conn
        .prepare(sql)
        .unwrap_or_else(|e| panic!("{e}\nin: {sql}"));
    let columns: Vec<String> = stmt.column_names().map(str::to_string).collect();
    let n = columns.len();
    let rows = stmt
        .query_map([], |r| (0..n).map(|i| r.get::<_, Value>(i)).collect())
        .and_then(|it| it.collect::<rusqlite::Result<Vec<Vec<Value>>>>())
        .unwrap_or_else(|e| panic!("{e}\nin: {sql}"));
    Rows { columns, rows }
}

/// A simulated osqueryd with our extension's tables attached.
struct Host {
    engine: Arc<Engine>,
    counters: Arc<Counters>,
    exec: Arc<Backend>,
    conn: Connection,
}

impl Host {
    fn new() -> Host {
        let engine = Arc::new(Engine::new(
            StoreConfig::default(),
            Box::new(FixedUsers(vec![(501, "alice".to_string())])),
        ));
        let counters = engine
            .status()
            .set(SourceKind::Snapshot, State::Active, "test");
        let conn = Connection::open_in_memory().unwrap();
        let exec = Backend::new(Arc::new(ExecTable::new(Arc::clone(&engine))));
        attach(&conn, Arc::clone(&exec)).unwrap();
        let status = Backend::new(Arc::new(StatusTable::new(Arc::clone(&engine))));
        attach(&conn, status).unwrap();
        conn.execute_batch(
            "CREATE TABLE time(unix_time INTEGER);
             CREATE TABLE osquery_registry(registry TEXT, name TEXT, owner_uuid INTEGER,
                                           internal INTEGER, active INTEGER);",
        )
        .unwrap();
        let host = Host {
            engine,
            counters,
            exec,
            conn,
        };
        host.set_now(NOW);
        host
    }

    fn set_now(&self, now: i64) {
        self.conn.execute("DELETE FROM time", []).unwrap();
        self.conn
            .execute("INSERT INTO time(unix_time) VALUES (?1)", [now])
            .unwrap();
    }

    /// Feeds one exec through the real engine and returns the row's eid. The
    /// exec must be one the classifier keeps.
    fn exec(&self, time: i64, pid: i64, path: &str, argv: &[&str]) -> String {
        self.ingest(exec_event(time, pid, path, argv, "/bin/zsh", "-zsh"))
    }

    /// Like `exec`, run by another parent program.
    fn exec_from(&self, time: i64, pid: i64, path: &str, argv: &[&str], parent: &str) -> String {
        self.ingest(exec_event(time, pid, path, argv, parent, parent))
    }

    fn ingest(&self, event: ExecEvent) -> String {
        let row = self
            .engine
            .ingest(&event, &self.counters)
            .unwrap_or_else(|| panic!("the classifier dropped {:?}", event.argv));
        row.eid.clone()
    }

    /// Stores a row for `kcc copy_cred_cache` made by the real engine, after
    /// `edit` has changed it: for indicator values (and code identities) that
    /// the classifier of this build may not produce. The pack has to handle
    /// every value the table can hold. Returns the eid.
    fn insert_row(&self, time: i64, pid: i64, edit: impl FnOnce(&mut Row)) -> String {
        let scratch = Engine::new(
            StoreConfig::default(),
            Box::new(FixedUsers(vec![(501, "alice".to_string())])),
        );
        let counters = scratch
            .status()
            .set(SourceKind::Snapshot, State::Active, "template");
        let event = exec_event(
            time,
            pid,
            "/usr/bin/kcc",
            &["kcc", "copy_cred_cache"],
            "/bin/zsh",
            "-zsh",
        );
        let template = scratch.ingest(&event, &counters).expect("a template row");
        let mut row = Row::clone(&template);
        edit(&mut row);
        let eid = row.eid.clone();
        // Arrival time is the real clock, as in `Engine::ingest`, so retention
        // keeps the row.
        assert!(
            self.engine.store().insert(row, unix_now()).is_some(),
            "{eid} is stored already"
        );
        eid
    }

    fn detection(&self) -> Rows {
        run(&self.conn, &pack_files::conf_query(DETECTION))
    }

    fn hardened(&self) -> Rows {
        run(&self.conn, &pack_files::conf_query(HARDENED))
    }

    fn query(&self, sql: &str) -> Rows {
        run(&self.conn, sql)
    }

    fn calls(&self) -> Vec<GenerateCall> {
        self.exec.take_calls()
    }

    /// `calls`, each checked to carry the pack's window to generate as a
    /// `time >= now - WINDOW` constraint.
    fn calls_in_window(&self) -> Vec<GenerateCall> {
        let calls = self.calls();
        assert!(!calls.is_empty(), "generate was not called");
        for call in &calls {
            assert_eq!(
                constraints_on(&call.context, "time"),
                [(32, (NOW - WINDOW).to_string())],
                "{}",
                call.context
            );
        }
        calls
    }
}

/// One exec as a source reports it, by user 501 (alice).
fn exec_event(
    time: i64,
    pid: i64,
    path: &str,
    argv: &[&str],
    parent_path: &str,
    parent_argv0: &str,
) -> ExecEvent {
    ExecEvent {
        time,
        pid,
        ppid: 1,
        path: path.as_bytes().to_vec(),
        argv: argv.iter().map(|a| a.as_bytes().to_vec()).collect(),
        uid: Some(501),
        euid: Some(501),
        gid: Some(20),
        egid: Some(20),
        parent_path: Some(parent_path.as_bytes().to_vec()),
        parent_argv: Some(vec![parent_argv0.as_bytes().to_vec()]),
        ..ExecEvent::default()
    }
}

/// `query` gives the same `count` rows twice at one clock; the next run, 300 s
/// later with one new exec (by `new_pid`), gives the same rows unchanged plus
/// the new one's, so a differential log adds only the new exec.
fn assert_next_run_adds_only_the_new_row(
    host: &Host,
    query: fn(&Host) -> Rows,
    count: usize,
    new_pid: i64,
) {
    let first = query(host);
    assert_eq!(first.len(), count);
    assert_eq!(query(host), first, "same rows, same clock");

    host.set_now(NOW + 300);
    let new = host.exec(
        NOW + 250,
        new_pid,
        "/usr/bin/kcc",
        &["kcc", "copy_cred_cache"],
    );
    let second = query(host);
    assert_eq!(second.columns, first.columns);
    let added: Vec<&Vec<Value>> = second
        .rows
        .iter()
        .filter(|r| !first.rows.contains(r))
        .collect();
    assert_eq!(added.len(), 1, "{added:?}");
    let eid_col = second.columns.iter().position(|c| c == "eid").unwrap();
    assert_eq!(added[0][eid_col], text(&new));
    for row in &first.rows {
        assert!(
            second.rows.contains(row),
            "row changed or vanished: {row:?}"
        );
    }
}

/// The constraint list osqueryd sent for `column`, as (op, expr) pairs.
fn constraints_on(context: &str, column: &str) -> Vec<(i64, String)> {
    let ctx: Json = serde_json::from_str(context).expect("context is JSON");
    let entry = ctx["constraints"]
        .as_array()
        .expect("constraints array")
        .iter()
        .find(|e| e["name"] == column)
        .unwrap_or_else(|| panic!("no entry for {column} in {context}"));
    entry["list"]
        .as_array()
        .expect("list array")
        .iter()
        .map(|c| {
            (
                c["op"].as_i64().expect("numeric op"),
                c["expr"].as_str().expect("string expr").to_string(),
            )
        })
        .collect()
}

#[test]
fn masquerading_kcc_copy_cred_cache_matches_with_rule_metadata() {
    let host = Host::new();
    let eid = host.exec(NOW - 60, 4242, "/tmp/kcc", &["/tmp/kcc", "copy_cred_cache"]);
    let got = host.detection();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got.get(0, "eid"), &text(&eid));
    assert_eq!(got.get(0, "time"), &Value::Integer(NOW - 60));
    assert_eq!(got.get(0, "pid"), &Value::Integer(4242));
    assert_eq!(got.get(0, "path"), &text("/tmp/kcc"));
    assert_eq!(got.get(0, "name"), &text("kcc"));
    assert_eq!(got.get(0, "cmdline"), &text("/tmp/kcc copy_cred_cache"));
    assert_eq!(
        got.get(0, "args"),
        &text(r#"["/tmp/kcc","copy_cred_cache"]"#)
    );
    assert_eq!(got.get(0, "username"), &text("alice"));
    assert_eq!(got.get(0, "uid"), &Value::Integer(501));
    assert_eq!(got.get(0, "parent_path"), &text("/bin/zsh"));
    assert_eq!(got.get(0, "indicator"), &text("credential_cache_copy"));
    // Unknown code identity: an empty BIGINT/INTEGER cell arrives as NULL.
    assert_eq!(got.get(0, "platform_binary"), &Value::Null);
    for (column, value) in rule_metadata() {
        assert_eq!(got.get(0, column), &value, "{column}");
    }
}

#[test]
fn detection_selects_only_stored_columns_and_rule_literals() {
    // Differential logging re-reports a row when any byte of it changes, so
    // every column must be frozen per exec: a table column or a constant.
    let host = Host::new();
    host.exec(NOW - 60, 4242, "/tmp/kcc", &["/tmp/kcc", "copy_cred_cache"]);
    let got = host.detection();
    let literals: Vec<&str> = rule_metadata().iter().map(|(c, _)| *c).collect();
    for column in &got.columns {
        assert!(
            EXEC_COLUMNS.iter().any(|c| c.name == column) || literals.contains(&column.as_str()),
            "{column} is neither a stored column nor a rule literal"
        );
    }
    assert!(
        got.columns.iter().any(|c| c == "eid"),
        "eid identifies the exec"
    );
    assert!(got.columns.iter().any(|c| c == "time"));
}

#[test]
fn copy_cred_cache_argument_matches_in_any_case() {
    let host = Host::new();
    host.exec(
        NOW - 30,
        100,
        "/usr/bin/kcc",
        &["kcc", "COPY_CRED_CACHE", "/tmp/t.ccache"],
    );
    host.exec(NOW - 20, 101, "/usr/bin/kcc", &["kcc", "Copy_Cred_Cache"]);
    let got = host.detection();
    assert_eq!(got.ints("pid"), [100, 101]);
    assert_eq!(got.texts("ccache")[0], "FILE:/tmp/t.ccache");
}

#[test]
fn near_misses_and_old_execs_do_not_match() {
    let host = Host::new();
    let misses = [
        host.exec(NOW - 60, 200, "/usr/bin/kcc", &["kcc", "list"]),
        host.exec(NOW - 60, 201, "/tmp/notkcc", &["notkcc", "copy_cred_cache"]),
        host.exec(NOW - 60, 202, "/usr/bin/kcc", &["kcc", "copy_cred_cachex"]),
        host.exec(
            NOW - WINDOW - 1,
            203,
            "/usr/bin/kcc",
            &["kcc", "copy_cred_cache"],
        ),
    ];
    // On the window's edge: still inside, as `>=` says.
    let edge = host.exec(
        NOW - WINDOW,
        204,
        "/usr/bin/kcc",
        &["kcc", "copy_cred_cache"],
    );

    // The near misses really are rows of the table…
    let all = host.query("SELECT eid FROM kerberos_cache_access");
    for eid in &misses {
        assert!(all.texts("eid").contains(eid), "{eid} is not in the table");
    }
    // …and the detection leaves them out.
    let got = host.detection();
    assert_eq!(got.texts("eid"), [edge]);
}

#[test]
fn unchanged_rows_come_back_byte_identical() {
    let host = Host::new();
    host.exec(NOW - 200, 300, "/tmp/kcc", &["/tmp/kcc", "copy_cred_cache"]);
    host.exec(
        NOW - 100,
        301,
        "/usr/bin/kcc",
        &["kcc", "copy_cred_cache", "/tmp/x"],
    );
    host.exec(NOW - 90, 302, "/usr/bin/kcc", &["kcc", "list"]);
    // Both rows are still inside the next run's window [NOW+300-540, …].
    assert_next_run_adds_only_the_new_row(&host, Host::detection, 2, 303);
}

#[test]
fn at_most_100_rows_oldest_first() {
    let host = Host::new();
    // Stored newest first, so only the ORDER BY puts the oldest in front.
    for i in (0..150).rev() {
        host.exec(
            NOW - 500 + i,
            1000 + i,
            "/usr/bin/kcc",
            &["kcc", "copy_cred_cache"],
        );
    }
    let got = host.detection();
    assert_eq!(got.len(), 100);
    let expected: Vec<i64> = (0..100).map(|i| NOW - 500 + i).collect();
    assert_eq!(got.ints("time"), expected);
}

#[test]
fn time_window_reaches_generate_as_a_constraint() {
    let host = Host::new();
    for i in 0..5 {
        host.exec(
            NOW - 5000 - i,
            400 + i,
            "/usr/bin/kcc",
            &["kcc", "copy_cred_cache"],
        );
    }
    let recent = host.exec(NOW - 10, 410, "/usr/bin/kcc", &["kcc", "copy_cred_cache"]);
    host.calls();

    let got = host.detection();
    assert_eq!(got.texts("eid"), [recent]);
    for call in &host.calls_in_window() {
        // `name` is not INDEX/ADDITIONAL: SQLite filters it, osqueryd does
        // not forward it.
        assert!(constraints_on(&call.context, "name").is_empty());
        // The store applied the window: the five old rows never left it.
        assert_eq!(call.rows, 1, "{}", call.context);
        // And the real parser reads the bound back.
        let ctx = QueryContext::parse(&call.context).unwrap();
        assert_eq!(ctx.int_range("time").min, Some(NOW - WINDOW));
    }
}

#[test]
fn context_has_osquery_shape() {
    let host = Host::new();
    host.exec(NOW - 10, 500, "/usr/bin/kcc", &["kcc", "copy_cred_cache"]);
    host.calls();
    host.query("SELECT pid, name FROM kerberos_cache_access WHERE time > 5");
    let calls = host.calls();
    assert_eq!(calls.len(), 1);
    let ctx: Json = serde_json::from_str(&calls[0].context).unwrap();
    let entries = ctx["constraints"].as_array().unwrap();
    let names: Vec<&str> = entries
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    let mut sorted: Vec<&str> = EXEC_COLUMNS.iter().map(|c| c.name).collect();
    sorted.sort_unstable();
    assert_eq!(names, sorted, "one entry per column, sorted by name");
    for (entry, column) in entries.iter().zip(&sorted) {
        let ty = EXEC_COLUMNS.iter().find(|c| c.name == *column).unwrap().ty;
        assert_eq!(entry["affinity"], ty.as_str());
    }
    assert_eq!(
        constraints_on(&calls[0].context, "time"),
        [(4, "5".to_string())]
    );
    // SQLite asks for the selected and the constrained columns.
    assert_eq!(ctx["colsUsed"], serde_json::json!(["time", "pid", "name"]));
    assert_eq!(ctx["colsUsedBitset"], (1 << 0) | (1 << 2) | (1 << 5));
}

#[test]
fn pid_equality_reaches_generate_as_op_2() {
    let host = Host::new();
    host.exec(NOW - 10, 600, "/usr/bin/kcc", &["kcc", "copy_cred_cache"]);
    host.exec(NOW - 10, 601, "/usr/bin/kcc", &["kcc", "list"]);
    host.calls();
    let got = host.query("SELECT pid, action FROM kerberos_cache_access WHERE pid = 601");
    assert_eq!(got.ints("pid"), [601]);
    assert_eq!(got.texts("action"), ["list"]);
    let calls = host.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(
        constraints_on(&calls[0].context, "pid"),
        [(2, "601".to_string())]
    );
    assert_eq!(calls[0].rows, 1, "the store filtered on pid");
}

#[test]
fn sqlite_rechecks_terms_osquery_does_not_forward() {
    // osqueryd never sets `omit`: what the extension returns is filtered
    // again, so returning more than asked is harmless.
    let host = Host::new();
    host.exec(NOW - 10, 700, "/usr/bin/kcc", &["kcc", "copy_cred_cache"]);
    host.exec(NOW - 10, 701, "/tmp/notkcc", &["notkcc", "copy_cred_cache"]);
    host.calls();
    let got = host.query("SELECT pid FROM kerberos_cache_access WHERE name = 'notkcc'");
    assert_eq!(got.ints("pid"), [701]);
    let calls = host.calls();
    assert_eq!(calls[0].rows, 2, "generate got no name constraint");
    assert!(constraints_on(&calls[0].context, "name").is_empty());
}

#[test]
fn tables_are_declared_from_the_schema() {
    let host = Host::new();
    for (table, columns) in [(EXEC_TABLE, EXEC_COLUMNS), (STATUS_TABLE, STATUS_COLUMNS)] {
        let info = host.query(&format!(
            "SELECT name, type, pk FROM pragma_table_info('{table}')"
        ));
        let declared: Vec<(String, String)> = info
            .texts("name")
            .into_iter()
            .zip(info.texts("type"))
            .collect();
        let expected: Vec<(String, String)> = columns
            .iter()
            .map(|c| (c.name.to_string(), c.ty.as_str().to_string()))
            .collect();
        assert_eq!(declared, expected, "{table}");
        // Keys: time (ADDITIONAL) and pid (INDEX) for the exec table, none
        // for the status table.
        let keys: Vec<String> = info
            .texts("name")
            .into_iter()
            .zip(info.ints("pk"))
            .filter(|(_, pk)| *pk > 0)
            .map(|(n, _)| n)
            .collect();
        let want: &[&str] = if table == EXEC_TABLE {
            &["time", "pid"]
        } else {
            &[]
        };
        assert_eq!(keys, want, "{table}");
    }
}

#[test]
fn discovery_needs_the_table_registered_by_an_extension() {
    let queries = pack_files::discovery();
    assert_eq!(
        queries,
        ["SELECT 1 FROM osquery_registry WHERE registry = 'table' AND name = 'kerberos_cache_access' AND owner_uuid > 0;"]
    );
    // Before the extension registers, osqueryd has no such table at all: the
    // discovery must run anyway and return nothing.
    let bare = Connection::open_in_memory().unwrap();
    bare.execute_batch(
        "CREATE TABLE osquery_registry(registry TEXT, name TEXT, owner_uuid INTEGER,
                                       internal INTEGER, active INTEGER);
         INSERT INTO osquery_registry VALUES ('table', 'processes', 0, 1, 1),
                                             ('table', 'time', 0, 1, 1),
                                             ('config', 'filesystem', 0, 1, 1);",
    )
    .unwrap();
    assert_eq!(run(&bare, &queries[0]).len(), 0);

    // A core table of that name (owner 0) does not count, nor does another
    // registry with the name.
    bare.execute_batch(
        "INSERT INTO osquery_registry VALUES ('table', 'kerberos_cache_access', 0, 1, 1),
                                             ('logger', 'kerberos_cache_access', 7, 0, 0);",
    )
    .unwrap();
    assert_eq!(run(&bare, &queries[0]).len(), 0);

    bare.execute(
        "INSERT INTO osquery_registry VALUES ('table', 'kerberos_cache_access', 23117, 0, 1)",
        [],
    )
    .unwrap();
    let got = run(&bare, &queries[0]);
    assert_eq!(got.rows, [vec![Value::Integer(1)]]);

    // packs/README.md tells users to pass --extensions_require with this name.
    assert_eq!(
        kerberos_cache_access::osquery::EXTENSION_NAME,
        "kerberos_cache_access"
    );
}

#[test]
fn health_query_reports_every_source() {
    let host = Host::new();
    host.exec(NOW - 10, 800, "/usr/bin/kcc", &["kcc", "copy_cred_cache"]);
    host.exec(NOW - 5, 801, "/usr/bin/kcc", &["kcc", "list"]);
    // Seen, not kept.
    let ls = ExecEvent {
        time: NOW - 1,
        pid: 802,
        path: b"/bin/ls".to_vec(),
        argv: vec![b"ls".to_vec()],
        ..ExecEvent::default()
    };
    assert!(host.engine.ingest(&ls, &host.counters).is_none());
    host.counters.drop_events(3);
    host.engine
        .status()
        .set(SourceKind::LinuxAudit, State::Unavailable, "needs root");

    let got = host.query(&pack_files::conf_query(HEALTH));
    let want_columns: Vec<&str> = STATUS_COLUMNS.iter().map(|c| c.name).collect();
    assert_eq!(got.columns, want_columns);
    assert_eq!(got.texts("source"), ["linux_audit", "snapshot", "store"]);
    assert_eq!(got.texts("state"), ["unavailable", "active", "active"]);
    assert_eq!(&got.texts("reason")[..2], ["needs root", "test"]);
    // The store's row: what it holds, and detections it had to evict.
    assert_eq!(got.get(2, "rows"), &Value::Integer(2));
    assert_eq!(got.get(2, "evicted_detections"), &Value::Integer(0));
    assert_eq!(got.get(2, "events_seen"), &Value::Null);
    assert_eq!(got.get(1, "rows"), &Value::Integer(2));
    assert_eq!(got.get(1, "events_seen"), &Value::Integer(3));
    assert_eq!(got.get(1, "rows_added"), &Value::Integer(2));
    assert_eq!(got.get(1, "dropped"), &Value::Integer(3));
    assert_eq!(got.get(1, "evicted"), &Value::Integer(0));
    assert_eq!(got.get(1, "last_event_time"), &Value::Integer(NOW - 1));
    // No event yet: osqueryd turns the empty cell into NULL.
    assert_eq!(got.get(0, "last_event_time"), &Value::Null);
    assert_eq!(got.get(0, "events_seen"), &Value::Integer(0));
    assert_eq!(got.get(1, "incomplete"), &Value::Integer(0));
}

#[test]
fn osquery_pack_schedules_the_queries_as_documented() {
    let conf = pack_files::conf();
    let queries = conf["queries"].as_object().expect("queries object");
    let mut names: Vec<&str> = queries.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(names, [HEALTH, DETECTION, HARDENED]);

    let d = &queries[DETECTION];
    assert_eq!(d["interval"], 300);
    assert_eq!(d["platform"], "darwin");
    assert_eq!(d["removed"], false);
    assert!(d.get("snapshot").is_none_or(|s| s == false), "differential");
    assert!(d["description"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(d["value"].as_str().is_some_and(|s| !s.is_empty()));

    // The hardened variant: the port's schedule, on macOS and Linux.
    let x = &queries[HARDENED];
    assert_eq!(x["interval"], d["interval"]);
    assert_eq!(x["platform"], "darwin,linux");
    assert_eq!(x["removed"], false);
    assert!(x.get("snapshot").is_none_or(|s| s == false), "differential");
    assert!(x["description"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(x["value"].as_str().is_some_and(|s| !s.is_empty()));
    let platform = x["platform"].as_str().unwrap();
    assert!(osquery_runs_on(platform, "darwin"));
    assert!(osquery_runs_on(platform, "linux"));
    assert!(!osquery_runs_on(platform, "windows"));
    assert!(osquery_runs_on(d["platform"].as_str().unwrap(), "darwin"));
    assert!(!osquery_runs_on(d["platform"].as_str().unwrap(), "linux"));

    let h = &queries[HEALTH];
    assert_eq!(h["interval"], 3600);
    assert_eq!(h["snapshot"], true);
    assert!(h["platform"].as_str().is_some_and(|p| p.contains("posix")));

    // osqueryd drops a query with an interval outside (0, 604800].
    for (name, q) in queries {
        let interval = q["interval"].as_i64().unwrap_or(0);
        assert!((1..=604_800).contains(&interval), "{name}");
    }
}

#[test]
fn fleet_files_carry_the_same_sql_and_logging() {
    for file in [pack_files::FLEET_APPLY, pack_files::FLEET_GITOPS] {
        for name in [DETECTION, HARDENED, HEALTH] {
            let entry = pack_files::fleet_entry(file, name);
            assert_eq!(
                entry["query"],
                pack_files::conf_query(name),
                "{file}: {name}"
            );
            assert!(!entry["description"].is_empty(), "{file}: {name}");
            assert!(fleet_accepts_platform(&entry["platform"]), "{file}: {name}");
        }
        let d = pack_files::fleet_entry(file, DETECTION);
        assert_eq!(d["logging"], "differential_ignore_removals", "{file}");
        assert_eq!(d["automations_enabled"], "true", "{file}");
        assert_eq!(d["interval"], "300", "{file}");
        assert_eq!(d["platform"], "darwin", "{file}");
        let x = pack_files::fleet_entry(file, HARDENED);
        assert_eq!(x["logging"], "differential_ignore_removals", "{file}");
        assert_eq!(x["automations_enabled"], "true", "{file}");
        assert_eq!(x["interval"], "300", "{file}");
        assert_eq!(x["platform"], "darwin,linux", "{file}");
        assert_eq!(x["observer_can_run"], d["observer_can_run"], "{file}");
        let h = pack_files::fleet_entry(file, HEALTH);
        assert_eq!(h["logging"], "snapshot", "{file}");
        assert_eq!(h["interval"], "3600", "{file}");
        assert_eq!(h["platform"], "darwin,linux", "{file}");
    }
    // `fleetctl apply` documents: one v1 query per document.
    let docs = pack_files::yaml_documents(&pack_files::read(pack_files::FLEET_APPLY));
    assert_eq!(docs.len(), 3);
    for doc in &docs {
        assert_eq!(doc.top["apiVersion"], "v1");
        assert_eq!(doc.top["kind"], "query");
        assert_eq!(doc.named.len(), 1);
    }
    // GitOps: a bare list, no document keys.
    let docs = pack_files::yaml_documents(&pack_files::read(pack_files::FLEET_GITOPS));
    assert_eq!(docs.len(), 1);
    assert!(docs[0].top.is_empty(), "{:?}", docs[0].top);
    assert_eq!(docs[0].named.len(), 3);
}

// ---------------------------------------------------------------------------
// The hardened query: every indicator, with an allow-list kept in the pack.
// ---------------------------------------------------------------------------

/// The port's SQL as shipped. The port stays Elastic's rule, exactly: no
/// exception list, no other indicator. Change this only together with a
/// change of Elastic's rule.
const ELASTIC_SQL: &str = "SELECT k.time, k.eid, k.pid, k.parent, k.path, k.name, k.cmdline, k.args, k.cwd, k.uid, k.euid, k.gid, k.egid, k.auid, k.username, k.parent_path, k.parent_cmdline, k.tool, k.action, k.ccache, k.indicator, k.signing_id, k.team_id, k.platform_binary, k.sha256, k.source, 'ad88231f-e2ab-491c-8fc6-64746da26cfe' AS rule_id, 'Kerberos Cached Credentials Dumping' AS rule_name, 'high' AS severity, 73 AS risk_score, 'T1003,T1558,T1558.003,T1558.005' AS mitre_techniques, 'TA0006' AS mitre_tactic FROM kerberos_cache_access AS k WHERE k.time >= (SELECT unix_time FROM time) - 540 AND k.name = 'kcc' AND EXISTS (SELECT 1 FROM json_each(k.args) AS a WHERE lower(a.value) = 'copy_cred_cache') ORDER BY k.time ASC, k.eid ASC LIMIT 100;";

/// The shipped entry of the hardened query's allow-list, as an SQL literal.
const EXAMPLE_EXCEPTION: &str = "'example: replace with the exception_key of a row to allow'";

/// The hardened rule's own id and name.
const HARDENED_RULE_ID: &str = "812a24e2-2f3f-4736-bf1e-68a259d87bf7";
const HARDENED_RULE_NAME: &str = "Kerberos Credential Access (hardened)";

/// The columns the hardened query computes rather than reads.
const HARDENED_COMPUTED: &[&str] = &[
    "exception_key",
    "rule_id",
    "rule_name",
    "severity",
    "risk_score",
    "mitre_techniques",
    "mitre_tactic",
];

/// Exception clauses shown in packs/README.md, as a user adds them before
/// `ORDER BY`.
const BACKUP_CLAUSE: &str = "AND NOT (k.indicator = 'ccache_file_access' AND k.uid IS 0 AND k.path = '/usr/bin/tar' AND k.parent_path = '/opt/backup/bin/agent')";
const OWN_REPLAY_CLAUSE: &str =
    "AND NOT (k.indicator = 'ccache_replay' AND k.ccache = 'FILE:/tmp/krb5cc_' || k.uid)";
const ROOT_READERS_CLAUSE: &str = "AND NOT (k.indicator = 'ccache_file_access' AND k.uid IS 0 AND (k.path IN ('/usr/sbin/sssd', '/usr/sbin/rpc.gssd', '/usr/sbin/gssd') OR k.path LIKE '/usr/lib%/sssd/%'))";
const GOKRB5_CLAUSE: &str = "AND NOT (k.indicator = 'credential_cache_copy' AND k.path = '/usr/bin/kcc' AND k.parent_path = '/usr/local/bin/corp-dbtool' AND k.ccache LIKE 'FILE:/Users/%/Library/Caches/corp-dbtool/%')";
const TEAM_CLAUSE: &str =
    "AND NOT (k.team_id = 'ABCDE12345' AND k.signing_id LIKE 'com.example.%' AND k.platform_binary = 0)";

/// osquery's `checkPlatform` (`osquery/core/system.cpp`): substring tests on
/// the query's `platform`, against the build's SDK platform name.
fn osquery_runs_on(platform: &str, host: &str) -> bool {
    if platform.is_empty() || platform == "null" {
        return true;
    }
    if platform.contains("any") || platform.contains("all") {
        return true;
    }
    let linux = ["linux", "ubuntu", "centos"]
        .iter()
        .any(|p| platform.contains(p));
    if linux && host == "linux" {
        return true;
    }
    if platform.contains("posix") && host != "windows" {
        return true;
    }
    platform.contains(host)
}

/// Fleet's `verifyQueryPlatforms` (`server/fleet/queries.go`): empty, or a
/// comma-separated list of darwin, linux, windows and chrome.
fn fleet_accepts_platform(platform: &str) -> bool {
    platform.trim().is_empty()
        || platform
            .split(',')
            .all(|p| matches!(p.trim(), "darwin" | "linux" | "windows" | "chrome"))
}

/// An SQL string literal.
fn sql_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The hardened query with its allow-list set to `entries`, as a user would
/// edit it: the shipped example entry replaced.
fn with_exceptions(entries: &[&str]) -> String {
    let sql = pack_files::conf_query(HARDENED);
    assert_eq!(sql.matches(EXAMPLE_EXCEPTION).count(), 1, "{sql}");
    let list: Vec<String> = entries.iter().map(|e| sql_quote(e)).collect();
    let edited = sql.replace(EXAMPLE_EXCEPTION, &list.join(", "));
    assert_ne!(edited, sql);
    edited
}

/// The hardened query with `clause` added before `ORDER BY`.
fn with_clause(clause: &str) -> String {
    let sql = pack_files::conf_query(HARDENED);
    assert_eq!(sql.matches(" ORDER BY ").count(), 1, "{sql}");
    sql.replace(" ORDER BY ", &format!(" {clause} ORDER BY "))
}

/// `exception_key` as packs/README.md defines it, from a row's own columns.
fn documented_key(rows: &Rows, row: usize) -> String {
    ["indicator", "path", "parent_path", "signing_id", "team_id"]
        .iter()
        .map(|c| match rows.get(row, c) {
            Value::Text(s) => s.clone(),
            other => panic!("{c} is not text: {other:?}"),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Whitespace collapsed, so SQL wrapped over lines in the README compares.
fn squeeze(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The exec's indicator as stored, read straight from the table.
fn stored_indicator(host: &Host, eid: &str) -> String {
    let got = host.query(&format!(
        "SELECT indicator FROM kerberos_cache_access WHERE eid = {}",
        sql_quote(eid)
    ));
    assert_eq!(got.len(), 1, "{eid} is not in the table");
    got.texts("indicator").remove(0)
}

#[test]
fn elastic_port_sql_is_unchanged_and_has_no_exceptions() {
    let sql = pack_files::conf_query(DETECTION);
    assert_eq!(sql, ELASTIC_SQL);
    assert!(!sql.contains("exception_key"));
    assert!(!sql.contains("indicator !="));
}

#[test]
fn hardened_reports_every_non_empty_indicator() {
    let host = Host::new();
    // From the engine: a copy (the classifier's indicator is certainly set)
    // and the benign aliases (certainly not).
    let copy = host.exec(
        NOW - 100,
        10,
        "/usr/bin/kcc",
        &["kcc", "copy_cred_cache", "FILE:/tmp/a.ccache"],
    );
    let benign = [
        host.exec(NOW - 95, 11, "/usr/bin/kcc", &["klist"]),
        host.exec(NOW - 94, 12, "/usr/bin/klist", &["klist", "-v"]),
        host.exec(NOW - 93, 13, "/usr/bin/kcc", &["kswitch", "-p", "alice"]),
        host.exec(NOW - 92, 14, "/usr/bin/kswitch", &["kswitch", "-p", "bob"]),
    ];
    assert_ne!(stored_indicator(&host, &copy), "");
    for eid in &benign {
        assert_eq!(stored_indicator(&host, eid), "", "{eid}");
    }
    // Stored rows with the indicator values the table may hold, including a
    // name the query has never heard of: it must not depend on the names.
    let indicators = [
        "credential_cache_copy,renamed_kerberos_tool",
        "credential_dump",
        "kerberoasting",
        "bifrost_kerberoast",
        "forged_keytab",
        "an_indicator_added_later",
    ];
    let mut want = vec![copy];
    for (i, indicator) in (0i64..).zip(indicators) {
        want.push(host.insert_row(NOW - 80 + i, 30 + i, |r| {
            r.indicator = indicator.to_string();
        }));
    }
    let blank = host.insert_row(NOW - 5, 40, |r| {
        r.indicator = String::new();
        r.technique = String::new();
    });

    let got = host.hardened();
    assert_eq!(got.texts("eid"), want);
    assert!(!got.texts("eid").contains(&blank));
    assert_eq!(&got.texts("indicator")[1..], indicators);
    assert!(got.texts("indicator").iter().all(|i| !i.is_empty()));
}

#[test]
fn hardened_is_a_superset_of_the_elastic_port() {
    let host = Host::new();
    host.exec(NOW - 60, 50, "/tmp/kcc", &["/tmp/kcc", "copy_cred_cache"]);
    host.exec(
        NOW - 50,
        51,
        "/usr/bin/kcc",
        &["kcc", "COPY_CRED_CACHE", "/tmp/t.ccache"],
    );
    host.exec(NOW - 40, 52, "/usr/bin/kcc", &["kcc", "Copy_Cred_Cache"]);
    host.exec(NOW - 30, 53, "/usr/bin/kcc", &["klist"]);
    // An abbreviated sub-command: kcc runs copy_cred_cache, the port's exact
    // argument test does not see it.
    let extra = host.insert_row(NOW - 20, 54, |r| {
        r.cmdline = "kcc copy FILE:/tmp/x".into();
        r.args = r#"["kcc","copy","FILE:/tmp/x"]"#.into();
        r.ccache = "FILE:/tmp/x".into();
    });

    let port = host.detection().texts("eid");
    let hardened = host.hardened().texts("eid");
    assert_eq!(port.len(), 3, "{port:?}");
    for eid in &port {
        assert!(hardened.contains(eid), "{eid} only in the port");
    }
    assert!(hardened.contains(&extra));
    assert!(!port.contains(&extra));
}

#[test]
fn hardened_metadata_and_severity_follow_the_indicator() {
    let host = Host::new();
    // (indicator, severity, risk_score)
    let cases = [
        ("credential_cache_copy", "high", 73),
        (
            "credential_cache_copy,renamed_kerberos_tool",
            "critical",
            99,
        ),
        ("renamed_kerberos_tool", "critical", 99),
        ("bifrost_dump", "critical", 99),
        ("credential_dump,bifrost_asktgt", "critical", 99),
        ("kerberoasting", "high", 73),
        ("credential_dump", "high", 73),
        ("not_renamed_kerberos_tool", "high", 73),
        ("xbifrost_dump", "high", 73),
        ("an_indicator_added_later", "high", 73),
        ("foreign_ccache_access", "critical", 99),
        (
            "credential_cache_copy,foreign_ccache_access",
            "critical",
            99,
        ),
        (
            "credential_cache_copy,unverified_kerberos_tool",
            "critical",
            99,
        ),
        ("credential_cache_copy,fileless_exec", "critical", 99),
        ("kerberos_ticket_tool", "critical", 99),
        ("ccache_replay,kerberos_ticket_tool", "critical", 99),
        ("ccache_file_access", "medium", 47),
        ("ccache_file_access,fileless_exec", "critical", 99),
        ("ccache_file_access,unresolved_exe_path", "high", 73),
        ("xccache_file_access", "high", 73),
        ("ccache_replay", "high", 73),
        ("kerberos_bruteforce_tool", "high", 73),
        ("credential_cache_copy,unresolved_exe_path", "high", 73),
        ("not_foreign_ccache_access", "high", 73),
    ];
    for (i, (indicator, _, _)) in (0i64..).zip(cases) {
        host.insert_row(NOW - 100 + i, 100 + i, |r| {
            r.indicator = indicator.to_string();
            r.technique = format!("T{i}");
        });
    }
    let got = host.hardened();
    assert_eq!(got.len(), cases.len());
    for (row, (indicator, severity, risk)) in cases.iter().enumerate() {
        assert_eq!(got.get(row, "indicator"), &text(indicator));
        assert_eq!(got.get(row, "severity"), &text(severity), "{indicator}");
        assert_eq!(
            got.get(row, "risk_score"),
            &Value::Integer(*risk),
            "{indicator}"
        );
        assert_eq!(got.get(row, "rule_id"), &text(HARDENED_RULE_ID));
        assert_eq!(got.get(row, "rule_name"), &text(HARDENED_RULE_NAME));
        assert_eq!(got.get(row, "mitre_tactic"), &text("TA0006"));
        assert_eq!(got.get(row, "mitre_techniques"), got.get(row, "technique"));
        assert_eq!(got.get(row, "technique"), &text(&format!("T{row}")));
    }
    // Its own rule id, not Elastic's.
    assert_ne!(HARDENED_RULE_ID, "ad88231f-e2ab-491c-8fc6-64746da26cfe");
}

/// The new indicators, made by the real engine from execs, reach the
/// hardened query with their severity; benign look-alikes do not.
#[test]
fn hardened_reports_theft_and_evasion_rows_with_their_severity() {
    let host = Host::new();
    // (path, argv, indicator, severity); all by uid 501.
    let cases = [
        (
            "/bin/cp",
            &["cp", "/tmp/krb5cc_502", "/tmp/x"][..],
            "foreign_ccache_access",
            "critical",
        ),
        (
            "/bin/cat",
            &["cat", "/tmp/krb5cc_501"],
            "ccache_file_access",
            "medium",
        ),
        (
            "/tmp/ticketz",
            &["ticketz", "copy_cred_cache", "/tmp/t"],
            "credential_cache_copy,unverified_kerberos_tool",
            "critical",
        ),
        (
            "/memfd:kcc (deleted)",
            &["kcc", "copy_cred_cache"],
            "credential_cache_copy,fileless_exec",
            "critical",
        ),
        (
            "/lib64/ld-linux-x86-64.so.2",
            &["ld-linux-x86-64.so.2", "/tmp/kcc", "copy_cred_cache"],
            "credential_cache_copy",
            "high",
        ),
        (
            "<too_long>",
            &["kcc", "copy_cred_cache"],
            "credential_cache_copy,unresolved_exe_path",
            "high",
        ),
        (
            "/usr/bin/python3",
            &["python3", "getTGT.py", "corp/alice"],
            "kerberos_ticket_tool",
            "critical",
        ),
    ];
    let mut want = Vec::new();
    for (i, (path, argv, _, _)) in (0i64..).zip(cases) {
        want.push(host.exec(NOW - 100 + i, 200 + i, path, argv));
    }
    // Quiet: the user's own klist and kinit, ls of a cache, git co.
    host.exec(
        NOW - 50,
        300,
        "/usr/bin/klist",
        &["klist", "-c", "/tmp/krb5cc_501"],
    );
    host.exec(NOW - 49, 301, "/usr/bin/kinit", &["kinit", "alice"]);
    let got = host.hardened();
    assert_eq!(got.texts("eid"), want);
    for (row, (_, _, indicator, severity)) in cases.iter().enumerate() {
        assert_eq!(got.get(row, "indicator"), &text(indicator));
        assert_eq!(got.get(row, "severity"), &text(severity), "{indicator}");
    }
    // Elastic's port, unchanged, sees none of the renamed, memfd or loader
    // rows (not named kcc). It does see the `<too_long>` one: that row's
    // name comes from argv[0].
    let port = host.detection();
    assert_eq!(port.texts("name"), ["kcc"]);
    assert_eq!(port.texts("path"), ["<too_long>"]);
}

#[test]
fn known_root_readers_are_excepted_by_path_only_as_root() {
    let host = Host::new();
    let reader = |time, pid, path: &'static str, uid, indicator: &'static str| {
        host.insert_row(time, pid, move |r| {
            r.path = path.into();
            r.name = path.rsplit('/').next().unwrap().into();
            r.uid = uid;
            r.euid = uid;
            r.indicator = indicator.into();
        })
    };
    let excepted = [
        reader(
            NOW - 90,
            400,
            "/usr/libexec/sssd/krb5_child",
            Some(0),
            "ccache_file_access",
        ),
        reader(
            NOW - 89,
            401,
            "/usr/lib/x86_64-linux-gnu/sssd/sssd_kcm",
            Some(0),
            "ccache_file_access",
        ),
        reader(
            NOW - 88,
            402,
            "/usr/sbin/rpc.gssd",
            Some(0),
            "ccache_file_access",
        ),
        reader(
            NOW - 87,
            403,
            "/usr/sbin/gssd",
            Some(0),
            "ccache_file_access",
        ),
    ];
    let reported = [
        // Not root, unknown ids, another indicator, another path.
        reader(
            NOW - 80,
            410,
            "/usr/sbin/rpc.gssd",
            Some(1000),
            "ccache_file_access",
        ),
        reader(
            NOW - 79,
            411,
            "/usr/sbin/rpc.gssd",
            None,
            "ccache_file_access",
        ),
        reader(
            NOW - 78,
            412,
            "/usr/sbin/rpc.gssd",
            Some(0),
            "ccache_file_access,fileless_exec",
        ),
        reader(
            NOW - 77,
            413,
            "/usr/libexec/sssd/krb5_child",
            Some(1000),
            "foreign_ccache_access",
        ),
        reader(
            NOW - 76,
            414,
            "/tmp/sssd/krb5_child",
            Some(0),
            "ccache_file_access",
        ),
        reader(NOW - 75, 415, "/usr/bin/tar", Some(0), "ccache_file_access"),
    ];
    let got = host.hardened().texts("eid");
    assert_eq!(got, reported);
    for eid in &excepted {
        assert!(!got.contains(eid));
    }
}

#[test]
fn the_shipped_root_reader_clause_is_the_documented_one() {
    let sql = pack_files::conf_query(HARDENED);
    assert!(sql.contains(&format!(
        "AND k.indicator != '' {ROOT_READERS_CLAUSE} AND exception_key NOT IN"
    )));
}

#[test]
fn documented_backup_agent_clause_allows_only_roots_tar_from_the_agent() {
    let host = Host::new();
    let agent = "/opt/backup/bin/agent";
    let as_root = |mut e: ExecEvent| {
        e.uid = Some(0);
        e.euid = Some(0);
        e
    };
    let tar = ["tar", "cf", "/b/x.tar", "/tmp/krb5cc_501"];
    let allowed = host.ingest(as_root(exec_event(
        NOW - 40,
        600,
        "/usr/bin/tar",
        &tar,
        agent,
        agent,
    )));
    let by_shell = host.ingest(as_root(exec_event(
        NOW - 39,
        601,
        "/usr/bin/tar",
        &tar,
        "/bin/zsh",
        "-zsh",
    )));
    let by_user = host.exec_from(NOW - 38, 602, "/usr/bin/tar", &tar, agent);
    let cat = host.ingest(as_root(exec_event(
        NOW - 37,
        603,
        "/bin/cat",
        &["cat", "/tmp/krb5cc_501"],
        agent,
        agent,
    )));
    assert_eq!(host.hardened().len(), 4);
    let got = host.query(&with_clause(BACKUP_CLAUSE)).texts("eid");
    assert_eq!(got, [&by_shell, &by_user, &cat].map(String::as_str));
    assert!(!got.contains(&allowed));
}

#[test]
fn documented_own_replay_clause_allows_only_the_users_default_name() {
    let host = Host::new();
    let replay = |pid, krb5ccname: &str| {
        let mut e = exec_event(
            NOW - 30 + pid,
            700 + pid,
            "/usr/bin/ssh",
            &["ssh", "host"],
            "/bin/zsh",
            "-zsh",
        );
        e.krb5ccname = Some(krb5ccname.as_bytes().to_vec());
        host.ingest(e)
    };
    let own = replay(0, "FILE:/tmp/krb5cc_501");
    let other_file = replay(1, "FILE:/tmp/stolen");
    let other_user = replay(2, "FILE:/tmp/krb5cc_502");
    let got = host.hardened();
    assert_eq!(got.len(), 3);
    assert!(got.texts("indicator").iter().all(|i| i == "ccache_replay"));
    let got = host.query(&with_clause(OWN_REPLAY_CLAUSE)).texts("eid");
    assert_eq!(got, [&other_file, &other_user].map(String::as_str));
    assert!(!got.contains(&own));
}

#[test]
fn an_exception_key_for_cache_access_leaves_theft_across_users_reported() {
    let host = Host::new();
    let backup = "/opt/backup/bin/agent";
    let own = host.exec_from(
        NOW - 30,
        500,
        "/usr/bin/tar",
        &["tar", "cf", "/b/x.tar", "/tmp/krb5cc_501"],
        backup,
    );
    let foreign = host.exec_from(
        NOW - 20,
        501,
        "/usr/bin/tar",
        &["tar", "cf", "/b/y.tar", "/tmp/krb5cc_502"],
        backup,
    );
    let got = host.hardened();
    assert_eq!(got.texts("eid"), [&own, &foreign].map(String::as_str));
    let key = documented_key(&got, 0);
    assert_eq!(key, format!("ccache_file_access,/usr/bin/tar,{backup},,"));
    let got = host.query(&with_exceptions(&[&key]));
    assert_eq!(got.texts("eid"), [foreign.as_str()]);
    assert_eq!(got.get(0, "indicator"), &text("foreign_ccache_access"));
}

#[test]
fn hardened_selects_only_stored_columns_the_key_and_literals() {
    let host = Host::new();
    // Linux-like: no code identity at all.
    host.exec(
        NOW - 60,
        60,
        "/usr/bin/kcc",
        &["kcc", "copy_cred_cache", "/tmp/x"],
    );
    // macOS-like: Apple's kcc.
    host.insert_row(NOW - 50, 61, |r| {
        r.signing_id = "com.apple.kcc".into();
        r.platform_binary = Some(1);
        r.sha256 = "ab".repeat(32);
    });
    let got = host.hardened();
    assert_eq!(got.len(), 2);
    for column in &got.columns {
        assert!(
            EXEC_COLUMNS.iter().any(|c| c.name == column)
                || HARDENED_COMPUTED.contains(&column.as_str()),
            "{column} is neither a stored column nor a computed one"
        );
    }
    for column in [
        "time",
        "eid",
        "indicator",
        "technique",
        "tool",
        "action",
        "ccache",
        "signing_id",
        "team_id",
        "platform_binary",
        "sha256",
        "parent",
        "parent_path",
        "parent_cmdline",
    ] {
        assert!(got.columns.iter().any(|c| c == column), "{column} missing");
    }
    for column in HARDENED_COMPUTED {
        assert!(got.columns.iter().any(|c| c == column), "{column} missing");
    }
    // The key is the documented join of stored columns, never NULL (a NULL
    // key would make `NOT IN` drop the row).
    for row in 0..got.len() {
        assert_eq!(
            got.get(row, "exception_key"),
            &text(&documented_key(&got, row))
        );
    }
    assert_eq!(
        got.texts("exception_key")[1],
        "credential_cache_copy,/usr/bin/kcc,/bin/zsh,com.apple.kcc,"
    );
}

#[test]
fn hardened_window_reaches_generate_as_a_constraint() {
    let host = Host::new();
    let old = host.exec(
        NOW - WINDOW - 1,
        70,
        "/usr/bin/kcc",
        &["kcc", "copy_cred_cache"],
    );
    let old_synthetic = host.insert_row(NOW - WINDOW - 100, 71, |r| {
        r.indicator = "kerberoasting".into();
    });
    let edge = host.exec(
        NOW - WINDOW,
        72,
        "/usr/bin/kcc",
        &["kcc", "copy_cred_cache"],
    );
    let recent = host.insert_row(NOW - 1, 73, |r| r.indicator = "credential_dump".into());
    host.calls();

    let got = host.hardened();
    assert_eq!(got.texts("eid"), [edge, recent]);
    assert!(!got.texts("eid").contains(&old));
    assert!(!got.texts("eid").contains(&old_synthetic));
    for call in &host.calls_in_window() {
        // `indicator` is not INDEX/ADDITIONAL: SQLite filters it.
        assert!(constraints_on(&call.context, "indicator").is_empty());
        assert_eq!(call.rows, 2, "the store applied the window");
    }
}

#[test]
fn hardened_returns_at_most_100_rows_oldest_first() {
    let host = Host::new();
    // Stored newest first, with a benign klist at every second that must not
    // take a place among the 100.
    for i in (0..150).rev() {
        host.exec(NOW - 500 + i, 2000 + i, "/usr/bin/kcc", &["klist"]);
        host.exec(
            NOW - 500 + i,
            3000 + i,
            "/usr/bin/kcc",
            &["kcc", "copy_cred_cache"],
        );
    }
    let got = host.hardened();
    assert_eq!(got.len(), 100);
    let expected: Vec<i64> = (0..100).map(|i| NOW - 500 + i).collect();
    assert_eq!(got.ints("time"), expected);
    let pids: Vec<i64> = (0..100).map(|i| 3000 + i).collect();
    assert_eq!(got.ints("pid"), pids);
}

#[test]
fn hardened_breaks_time_ties_by_eid() {
    let host = Host::new();
    // Stored in the opposite order of their eids.
    let second = host.insert_row(NOW - 3, 902, |r| r.indicator = "kerberoasting".into());
    let first = host.insert_row(NOW - 3, 901, |r| r.indicator = "credential_dump".into());
    assert!(first < second);
    assert_eq!(host.hardened().texts("eid"), [first, second]);
}

#[test]
fn hardened_rows_are_deterministic_across_runs() {
    let host = Host::new();
    host.exec(NOW - 200, 80, "/tmp/kcc", &["/tmp/kcc", "copy_cred_cache"]);
    host.insert_row(NOW - 150, 81, |r| {
        r.indicator = "credential_cache_copy,renamed_kerberos_tool".into();
        r.signing_id = "com.apple.kcc".into();
        r.platform_binary = Some(1);
    });
    host.insert_row(NOW - 120, 82, |r| r.indicator = "bifrost_dump".into());
    host.exec(NOW - 90, 83, "/usr/bin/kcc", &["klist"]);
    assert_next_run_adds_only_the_new_row(&host, Host::hardened, 3, 84);
}

#[test]
fn shipped_exception_list_holds_only_an_entry_that_cannot_match() {
    let sql = pack_files::conf_query(HARDENED);
    assert!(sql.contains(&format!(
        "AND exception_key NOT IN ({EXAMPLE_EXCEPTION}) ORDER BY"
    )));
    // Every key joins five columns with four commas; the example has none.
    assert!(!EXAMPLE_EXCEPTION.contains(','));

    let host = Host::new();
    host.exec(NOW - 10, 90, "/usr/bin/kcc", &["kcc", "copy_cred_cache"]);
    // Even a row whose every column is the example's text comes back.
    let example = EXAMPLE_EXCEPTION.trim_matches('\'').to_string();
    let lookalike = host.insert_row(NOW - 5, 91, |r| {
        r.indicator = example.clone();
        r.path = example.clone();
        r.parent_path = example.clone();
        r.signing_id = example.clone();
        r.team_id = example.clone();
    });
    let got = host.hardened();
    assert_eq!(got.len(), 2);
    assert!(got.texts("eid").contains(&lookalike));
    for key in got.texts("exception_key") {
        assert!(key.matches(',').count() >= 4, "{key}");
    }
}

#[test]
fn an_exception_key_in_the_list_suppresses_exactly_that_program() {
    let host = Host::new();
    let dest = "FILE:/Users/alice/Library/Caches/corp-dbtool/krb5cc";
    let tool = "/usr/local/bin/corp-dbtool";
    let allowed = host.exec_from(
        NOW - 60,
        20,
        "/usr/bin/kcc",
        &["kcc", "copy_cred_cache", dest],
        tool,
    );
    // Same kcc and arguments, another parent.
    let other_parent = host.exec(
        NOW - 50,
        21,
        "/usr/bin/kcc",
        &["kcc", "copy_cred_cache", dest],
    );
    // Same parent, another executable.
    let other_path = host.exec_from(
        NOW - 40,
        22,
        "/tmp/kcc",
        &["kcc", "copy_cred_cache", dest],
        tool,
    );
    // Same parent and executable, another indicator.
    let dump = host.insert_row(NOW - 30, 23, |r| {
        r.cmdline = "kcc dump-credentials".into();
        r.args = r#"["kcc","dump-credentials"]"#.into();
        r.action = "dump-credentials".into();
        r.ccache = String::new();
        r.indicator = "credential_dump".into();
        r.parent_path = tool.into();
    });
    // The allowed program again, later: same key.
    let again = host.exec_from(
        NOW - 20,
        24,
        "/usr/bin/kcc",
        &["kcc", "copy_cred_cache", dest],
        tool,
    );

    let before = host.hardened();
    assert_eq!(
        before.texts("eid"),
        [&allowed, &other_parent, &other_path, &dump, &again].map(String::as_str)
    );
    // The user copies the key from the logged row.
    let key = before.texts("exception_key")[0].clone();
    assert_eq!(key, documented_key(&before, 0));
    assert!(
        key.ends_with(",/usr/bin/kcc,/usr/local/bin/corp-dbtool,,"),
        "{key}"
    );

    // Replacing the example entry with the key.
    let after = host.query(&with_exceptions(&[&key]));
    assert_eq!(
        after.texts("eid"),
        [&other_parent, &other_path, &dump].map(String::as_str)
    );
    assert_eq!(after.columns, before.columns);
    // Adding the key after the example entry does the same.
    let example = EXAMPLE_EXCEPTION.trim_matches('\'');
    let after = host.query(&with_exceptions(&[example, &key]));
    assert_eq!(
        after.texts("eid"),
        [&other_parent, &other_path, &dump].map(String::as_str)
    );
    // A key that is almost right (other case) allows nothing.
    let after = host.query(&with_exceptions(&[&key.to_uppercase()]));
    assert_eq!(after.len(), 5);
    // The port ignores the hardened query's list.
    assert_eq!(host.detection().len(), 4);
}

#[test]
fn documented_parent_and_cache_exception_allows_only_that_copy() {
    let host = Host::new();
    let tool = "/usr/local/bin/corp-dbtool";
    let alice = host.exec_from(
        NOW - 60,
        120,
        "/usr/bin/kcc",
        &[
            "kcc",
            "copy_cred_cache",
            "FILE:/Users/alice/Library/Caches/corp-dbtool/krb5cc",
        ],
        tool,
    );
    let bob = host.exec_from(
        NOW - 55,
        121,
        "/usr/bin/kcc",
        &[
            "kcc",
            "copy_cred_cache",
            "FILE:/Users/bob/Library/Caches/corp-dbtool/krb5cc.1234",
        ],
        tool,
    );
    // The same parent writing elsewhere, and another parent writing there.
    let elsewhere = host.exec_from(
        NOW - 50,
        122,
        "/usr/bin/kcc",
        &["kcc", "copy_cred_cache", "FILE:/tmp/stolen.ccache"],
        tool,
    );
    let shell = host.exec(
        NOW - 45,
        123,
        "/usr/bin/kcc",
        &[
            "kcc",
            "copy_cred_cache",
            "FILE:/Users/alice/Library/Caches/corp-dbtool/krb5cc",
        ],
    );
    let dropped = host.exec_from(
        NOW - 40,
        124,
        "/tmp/kcc",
        &[
            "kcc",
            "copy_cred_cache",
            "FILE:/Users/alice/Library/Caches/corp-dbtool/krb5cc",
        ],
        tool,
    );
    assert_eq!(host.hardened().len(), 5);
    let got = host.query(&with_clause(GOKRB5_CLAUSE));
    assert_eq!(
        got.texts("eid"),
        [&elsewhere, &shell, &dropped].map(String::as_str)
    );
    assert!(!got.texts("eid").contains(&alice));
    assert!(!got.texts("eid").contains(&bob));
}

#[test]
fn documented_code_identity_exception_needs_the_team_id() {
    let host = Host::new();
    let signed = host.insert_row(NOW - 60, 130, |r| {
        r.indicator = "credential_dump".into();
        r.path = "/Applications/Helper.app/Contents/MacOS/helper".into();
        r.signing_id = "com.example.kerberos-helper".into();
        r.team_id = "ABCDE12345".into();
        r.platform_binary = Some(0);
    });
    // An ad-hoc signature can carry any identifier, but no team id.
    let ad_hoc = host.insert_row(NOW - 50, 131, |r| {
        r.indicator = "credential_dump".into();
        r.path = "/tmp/helper".into();
        r.signing_id = "com.example.kerberos-helper".into();
        r.platform_binary = Some(0);
    });
    let other_team = host.insert_row(NOW - 40, 132, |r| {
        r.indicator = "credential_dump".into();
        r.signing_id = "com.example.kerberos-helper".into();
        r.team_id = "ZZZZZ99999".into();
        r.platform_binary = Some(0);
    });
    // Apple's kcc, the binary an attacker runs.
    let apple = host.insert_row(NOW - 30, 133, |r| {
        r.signing_id = "com.apple.kcc".into();
        r.platform_binary = Some(1);
    });
    assert_eq!(host.hardened().len(), 4);
    let got = host.query(&with_clause(TEAM_CLAUSE));
    assert_eq!(
        got.texts("eid"),
        [&ad_hoc, &other_team, &apple].map(String::as_str)
    );
    assert!(!got.texts("eid").contains(&signed));
}

#[test]
fn readme_documents_the_hardened_query_and_its_exceptions() {
    let readme = squeeze(&pack_files::read(pack_files::README));
    for needle in [
        HARDENED,
        DETECTION,
        HARDENED_RULE_ID,
        GOKRB5_CLAUSE,
        TEAM_CLAUSE,
        BACKUP_CLAUSE,
        OWN_REPLAY_CLAUSE,
        ROOT_READERS_CLAUSE,
        EXAMPLE_EXCEPTION,
        "k.indicator || ',' || k.path || ',' || k.parent_path || ',' || k.signing_id || ',' || k.team_id AS exception_key",
    ] {
        assert!(readme.contains(&squeeze(needle)), "README lacks {needle}");
    }
    // The key's definition in the README is the one the query uses.
    let sql = pack_files::conf_query(HARDENED);
    assert!(sql.contains(
        "k.indicator || ',' || k.path || ',' || k.parent_path || ',' || k.signing_id || ',' || k.team_id AS exception_key"
    ));
}

const POLICY_LOADED: &str = "kerberos_cache_access extension loaded";
const POLICY_EXEC: &str = "kerberos_cache_access exec source active";

fn policy_sql(name: &str) -> String {
    let entry = pack_files::fleet_entry(FLEET_POLICIES, name);
    assert_eq!(entry["platform"], "darwin,linux", "{name}");
    assert!(entry.contains_key("resolution"), "{name}");
    entry["query"].clone()
}

#[test]
fn exec_source_policy_fails_where_only_the_snapshot_runs() {
    let host = Host::new();
    let sql = policy_sql(POLICY_EXEC);
    let status = host.engine.status();
    // Host::new has the snapshot active, and the store's row.
    assert_eq!(host.query(&sql).len(), 0, "snapshot alone is blind");
    let exec_kinds: Vec<SourceKind> = SourceKind::ALL
        .into_iter()
        .filter(|k| *k != SourceKind::Snapshot)
        .collect();
    for kind in &exec_kinds {
        status.set(*kind, State::Unavailable, "cannot run here");
    }
    assert_eq!(host.query(&sql).len(), 0, "tried and unavailable");
    // Any one exec source active passes, and only while it is.
    for kind in &exec_kinds {
        status.set(*kind, State::Active, "reading");
        assert_eq!(host.query(&sql).len(), 1, "{kind:?} active");
        status.set(*kind, State::Failed, "died");
        assert_eq!(host.query(&sql).len(), 0, "{kind:?} failed");
    }
    status.set(SourceKind::LinuxAudit, State::Active, "reading");
    status.set(SourceKind::ProcConnector, State::Active, "reading");
    assert_eq!(
        host.query(&sql).len(),
        1,
        "one row, however many are active"
    );
}

#[test]
fn loaded_policy_fails_without_the_extension_and_never_errors() {
    let host = Host::new();
    let sql = policy_sql(POLICY_LOADED);
    assert_eq!(host.query(&sql).len(), 0, "nothing registered");
    host.query(
        "INSERT INTO osquery_registry VALUES ('table', 'kerberos_cache_access', 4242, 0, 1)",
    );
    assert_eq!(
        host.query(&sql).len(),
        0,
        "the status table is what it checks"
    );
    host.query(
        "INSERT INTO osquery_registry VALUES ('table', 'kerberos_cache_access_status', 4242, 0, 1)",
    );
    assert_eq!(host.query(&sql).len(), 1);

    // A host without the extension: the registry query still answers (and
    // fails the policy), while the exec-source query errors, which Fleet
    // shows as no response; docs/deploy-macos.md says so.
    let bare = Connection::open_in_memory().unwrap();
    bare.execute_batch(
        "CREATE TABLE osquery_registry(registry TEXT, name TEXT, owner_uuid INTEGER,
                                       internal INTEGER, active INTEGER);",
    )
    .unwrap();
    assert_eq!(run(&bare, &sql).len(), 0);
    let err = bare
        .prepare(&policy_sql(POLICY_EXEC))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no such table: kerberos_cache_access_status"),
        "{err}"
    );
}
