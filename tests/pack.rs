//! The shipped pack's SQL, run in a real SQLite against the real tables.
//!
//! `osquery_vtab` plays osqueryd: it attaches `kerberos_cache_access` and
//! `kerberos_cache_access_status` as virtual tables that forward constraints
//! and build the `context` JSON the way osqueryd does, and calls the real
//! `Table::generate_from_json`. Rows come from the real engine (classifier,
//! row builder, store). A plain `time` table holds the "now" that osquery's
//! `time` table would give, and a plain `osquery_registry` stands in for the
//! registry the discovery query reads.

#[path = "pack/osquery_vtab.rs"]
mod osquery_vtab;
#[path = "pack/pack_files.rs"]
mod pack_files;

use kerberos_cache_access::constraints::QueryContext;
use kerberos_cache_access::engine::Engine;
use kerberos_cache_access::event::{ExecEvent, SourceKind};
use kerberos_cache_access::schema::{EXEC_COLUMNS, EXEC_TABLE, STATUS_COLUMNS, STATUS_TABLE};
use kerberos_cache_access::status::{Counters, State};
use kerberos_cache_access::store::StoreConfig;
use kerberos_cache_access::table::{ExecTable, StatusTable};
use kerberos_cache_access::users::FixedUsers;
use osquery_vtab::{attach, Backend, GenerateCall};
use pack_files::{DETECTION, HEALTH};
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
        let event = ExecEvent {
            time,
            pid,
            ppid: 1,
            path: path.as_bytes().to_vec(),
            argv: argv.iter().map(|a| a.as_bytes().to_vec()).collect(),
            uid: Some(501),
            euid: Some(501),
            gid: Some(20),
            egid: Some(20),
            parent_path: Some(b"/bin/zsh".to_vec()),
            parent_argv: Some(vec![b"-zsh".to_vec()]),
            ..ExecEvent::default()
        };
        let row = self
            .engine
            .ingest(&event, &self.counters)
            .unwrap_or_else(|| panic!("the classifier dropped {argv:?}"));
        row.eid.clone()
    }

    fn detection(&self) -> Rows {
        run(&self.conn, &pack_files::conf_query(DETECTION))
    }

    fn query(&self, sql: &str) -> Rows {
        run(&self.conn, sql)
    }

    fn calls(&self) -> Vec<GenerateCall> {
        self.exec.take_calls()
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
    let first = host.detection();
    assert_eq!(first.len(), 2);
    assert_eq!(host.detection(), first, "same rows, same clock");

    // The next run, 300 s later, with one new exec: every row still in the
    // window must be identical, so a differential log adds only the new one.
    host.set_now(NOW + 300);
    let new = host.exec(NOW + 250, 303, "/usr/bin/kcc", &["kcc", "copy_cred_cache"]);
    let second = host.detection();
    assert_eq!(second.columns, first.columns);
    let added: Vec<&Vec<Value>> = second
        .rows
        .iter()
        .filter(|r| !first.rows.contains(r))
        .collect();
    assert_eq!(added.len(), 1, "{added:?}");
    let eid_col = second.columns.iter().position(|c| c == "eid").unwrap();
    assert_eq!(added[0][eid_col], text(&new));
    // Both old rows are still inside [NOW+300-540, …] and unchanged.
    for row in &first.rows {
        assert!(
            second.rows.contains(row),
            "row changed or vanished: {row:?}"
        );
    }
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
    let calls = host.calls();
    assert!(!calls.is_empty(), "generate was not called");
    for call in &calls {
        assert_eq!(
            constraints_on(&call.context, "time"),
            [(32, (NOW - WINDOW).to_string())],
            "{}",
            call.context
        );
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
    assert_eq!(got.texts("source"), ["linux_audit", "snapshot"]);
    assert_eq!(got.texts("state"), ["unavailable", "active"]);
    assert_eq!(got.texts("reason"), ["needs root", "test"]);
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
    assert_eq!(names, [HEALTH, DETECTION]);

    let d = &queries[DETECTION];
    assert_eq!(d["interval"], 300);
    assert_eq!(d["platform"], "darwin");
    assert_eq!(d["removed"], false);
    assert!(d.get("snapshot").is_none_or(|s| s == false), "differential");
    assert!(d["description"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(d["value"].as_str().is_some_and(|s| !s.is_empty()));

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
        for name in [DETECTION, HEALTH] {
            let entry = pack_files::fleet_entry(file, name);
            assert_eq!(
                entry["query"],
                pack_files::conf_query(name),
                "{file}: {name}"
            );
            assert!(!entry["description"].is_empty(), "{file}: {name}");
        }
        let d = pack_files::fleet_entry(file, DETECTION);
        assert_eq!(d["logging"], "differential_ignore_removals", "{file}");
        assert_eq!(d["automations_enabled"], "true", "{file}");
        assert_eq!(d["interval"], "300", "{file}");
        assert_eq!(d["platform"], "darwin", "{file}");
        let h = pack_files::fleet_entry(file, HEALTH);
        assert_eq!(h["logging"], "snapshot", "{file}");
        assert_eq!(h["interval"], "3600", "{file}");
        assert_eq!(h["platform"], "darwin,linux", "{file}");
    }
    // `fleetctl apply` documents: one v1 query per document.
    let docs = pack_files::yaml_documents(&pack_files::read(pack_files::FLEET_APPLY));
    assert_eq!(docs.len(), 2);
    for doc in &docs {
        assert_eq!(doc.top["apiVersion"], "v1");
        assert_eq!(doc.top["kind"], "query");
        assert_eq!(doc.named.len(), 1);
    }
    // GitOps: a bare list, no document keys.
    let docs = pack_files::yaml_documents(&pack_files::read(pack_files::FLEET_GITOPS));
    assert_eq!(docs.len(), 1);
    assert!(docs[0].top.is_empty(), "{:?}", docs[0].top);
    assert_eq!(docs[0].named.len(), 2);
}
