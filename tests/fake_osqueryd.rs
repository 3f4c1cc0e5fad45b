//! Checks the osqueryd test double together with ManagerClient, so the
//! extension tests can trust both.

mod support;

use kerberos_cache_access::osquery::client::{ExtensionInfo, ManagerClient, Registry};
use std::collections::BTreeMap;
use std::time::Duration;
use support::{manager, request, sdk_accepted, socket_dir, FakeOsqueryd};

fn info(name: &str, sdk: &str) -> ExtensionInfo {
    ExtensionInfo {
        name: name.into(),
        version: "1.0.0".into(),
        sdk_version: sdk.into(),
        min_sdk_version: sdk.into(),
    }
}

fn one_table(table: &str) -> Registry {
    let column = request(&[
        ("id", "column"),
        ("name", "x"),
        ("type", "TEXT"),
        ("op", "0"),
    ]);
    let mut tables = BTreeMap::new();
    tables.insert(table.to_string(), vec![column]);
    let mut registry = Registry::new();
    registry.insert("table".into(), tables);
    registry
}

#[test]
fn ping_and_options() {
    let dir = socket_dir();
    let sock = dir.path().join("osquery.em");
    let fake = FakeOsqueryd::start(&sock);
    let mut c = manager(&sock).unwrap();
    let pong = c.ping().unwrap();
    assert_eq!(
        (pong.code, pong.message.as_str(), pong.uuid),
        (0, "pong", 0)
    );
    fake.set_option("extensions_interval", "7");
    let options = c.options().unwrap();
    assert_eq!(options["extensions_interval"].value, "7");
    assert_eq!(options["disable_events"].value_type, "bool");
    assert_eq!(fake.calls(), ["ping", "options"]);
}

#[test]
fn register_list_and_deregister() {
    let dir = socket_dir();
    let sock = dir.path().join("osquery.em");
    let fake = FakeOsqueryd::start(&sock);
    let mut c = manager(&sock).unwrap();

    let st = c
        .register(info("ext_a", "5.0.0"), one_table("a_table"))
        .unwrap();
    assert_eq!((st.code, st.message.as_str()), (0, "OK"));
    assert!((1..=65535).contains(&st.uuid), "{st:?}");

    let listed = c.extensions().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[&st.uuid], info("ext_a", "5.0.0"));

    let reg = fake.wait_for("ext_a", Duration::from_secs(1)).unwrap();
    assert_eq!(reg.uuid, st.uuid);
    assert_eq!(reg.table_routes("a_table").unwrap()[0]["name"], "x");
    assert_eq!(
        fake.ext_socket(st.uuid).to_str().unwrap(),
        format!("{}.{}", sock.display(), st.uuid)
    );

    let gone = c.deregister(st.uuid).unwrap();
    assert_eq!((gone.code, gone.message.as_str(), gone.uuid), (0, "OK", 0));
    assert_eq!(fake.deregistered(), [st.uuid]);
    assert!(c.extensions().unwrap().is_empty());
    assert!(fake.registrations().is_empty());

    let again = c.deregister(st.uuid).unwrap();
    assert_eq!(
        (again.code, again.message.as_str()),
        (1, "No extension UUID found")
    );
}

#[test]
fn duplicate_name_is_refused_first() {
    let dir = socket_dir();
    let sock = dir.path().join("osquery.em");
    let fake = FakeOsqueryd::start(&sock);
    let stale = fake.preregister("ext_a");
    let mut c = manager(&sock).unwrap();
    // Also an incompatible SDK: the duplicate check comes first.
    let st = c.register(info("ext_a", "0.1.0"), one_table("t")).unwrap();
    assert_eq!(
        (st.code, st.message.as_str()),
        (1, "Duplicate extension registered")
    );
    assert_eq!(c.extensions().unwrap().keys().collect::<Vec<_>>(), [&stale]);
    // Once the stale one is gone the name is free.
    assert!(fake.forget(stale));
    assert_eq!(
        c.register(info("ext_a", ""), one_table("t")).unwrap().code,
        0
    );
}

#[test]
fn sdk_version_gate() {
    for ok in [
        "", "Unknown", "0.0.0", "1.7.7", "1.8", "3.0.7", "5.12.1", "10.0.0",
    ] {
        assert!(sdk_accepted(ok), "{ok:?} should pass");
    }
    for bad in ["0.1.0", "1.7.6", "1.0", "1"] {
        assert!(!sdk_accepted(bad), "{bad:?} should fail");
    }

    let dir = socket_dir();
    let sock = dir.path().join("osquery.em");
    let _fake = FakeOsqueryd::start(&sock);
    let mut c = manager(&sock).unwrap();
    let st = c.register(info("old", "0.1.0"), one_table("t1")).unwrap();
    assert_eq!(
        (st.code, st.message.as_str()),
        (1, "Incompatible extension SDK version")
    );
    let st = c
        .register(info("rusty", "Unknown"), one_table("t2"))
        .unwrap();
    assert_eq!(st.code, 0, "{st:?}");
}

#[test]
fn registry_checks() {
    let dir = socket_dir();
    let sock = dir.path().join("osquery.em");
    let _fake = FakeOsqueryd::start(&sock);
    let mut c = manager(&sock).unwrap();

    let mut bogus = one_table("t");
    bogus.insert("tables".into(), BTreeMap::new());
    let st = c.register(info("a", "5.0.0"), bogus).unwrap();
    assert_eq!(st.code, 1);
    assert!(st.message.contains("Unknown registry: tables"), "{st:?}");

    assert_eq!(
        c.register(info("a", "5.0.0"), one_table("t")).unwrap().code,
        0
    );
    let st = c.register(info("b", "5.0.0"), one_table("t")).unwrap();
    assert_eq!(st.code, 1);
    assert!(st.message.contains("conflicts"), "{st:?}");

    let mut empty = Registry::new();
    empty.insert("table".into(), BTreeMap::from([("u".to_string(), vec![])]));
    let st = c.register(info("c", "5.0.0"), empty).unwrap();
    assert!(st.message.contains("Invalid route info"), "{st:?}");
}

#[test]
fn query_is_refused_unless_canned() {
    let dir = socket_dir();
    let sock = dir.path().join("osquery.em");
    let fake = FakeOsqueryd::start(&sock);
    let mut c = manager(&sock).unwrap();
    let err = c.query("SELECT 1").unwrap_err();
    assert!(
        err.to_string().contains("not supported by the test double"),
        "{err:#}"
    );
    // A status refusal is a whole reply: the connection stays usable.
    fake.set_query_rows("SELECT 1", vec![request(&[("1", "1")])]);
    assert_eq!(c.query("SELECT 1").unwrap(), [request(&[("1", "1")])]);
    fake.set_query_columns("SELECT 1", vec![request(&[("1", "INTEGER")])]);
    assert_eq!(c.query_columns("SELECT 1").unwrap()[0]["1"], "INTEGER");
    let (st, rows) = c
        .call("table", "x", request(&[("action", "columns")]))
        .unwrap();
    assert_eq!((st.code, rows.len()), (0, 0));
    c.shutdown().unwrap();
}

#[test]
fn go_away_cuts_connections_and_removes_the_socket() {
    let dir = socket_dir();
    let sock = dir.path().join("osquery.em");
    let fake = FakeOsqueryd::start(&sock);
    let mut c = manager(&sock).unwrap();
    assert_eq!(c.ping().unwrap().code, 0);

    fake.go_away();
    assert!(!sock.exists());
    let err = c.ping().unwrap_err();
    assert!(format!("{err:#}").contains("ping()"), "{err:#}");
    // The broken connection is not reused.
    let err = c.extensions().unwrap_err();
    assert!(err.to_string().contains("reconnect"), "{err:#}");
    let err = ManagerClient::connect(&sock, Duration::from_secs(1)).unwrap_err();
    assert!(
        err.to_string().contains(&*sock.to_string_lossy()),
        "{err:#}"
    );
    fake.go_away(); // idempotent
}

#[test]
fn ext_calls_fail_cleanly_without_an_extension() {
    let dir = socket_dir();
    let sock = dir.path().join("osquery.em");
    let fake = FakeOsqueryd::start(&sock);
    let err = fake.ext_ping(42).unwrap_err();
    assert!(err.to_string().contains("osquery.em.42"), "{err:#}");
}

#[test]
fn a_silent_peer_times_out() {
    // A server that accepts and never answers must not hang the client.
    let dir = socket_dir();
    let sock = dir.path().join("silent.em");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let _holder = std::thread::spawn(move || {
        let conn = listener.accept();
        // Far past the client's timeout: only the timeout can end the call.
        std::thread::sleep(Duration::from_secs(30));
        drop(conn);
    });
    let timeout = Duration::from_millis(300);
    let mut c = ManagerClient::connect(&sock, timeout).unwrap();
    let started = std::time::Instant::now();
    assert!(c.ping().is_err());
    assert!(started.elapsed() < timeout + support::bounds::SLACK);
}

/// The bytes the client puts on the wire for one call, read by a bare
/// socket that never answers.
fn wire_bytes(len: usize, call: impl FnOnce(&mut ManagerClient)) -> Vec<u8> {
    use std::io::Read;
    let dir = socket_dir();
    let sock = dir.path().join("raw.em");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let reader = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut buf = vec![0; len];
        conn.read_exact(&mut buf).unwrap();
        buf
    });
    let mut c = ManagerClient::connect(&sock, Duration::from_millis(500)).unwrap();
    call(&mut c); // fails: no reply comes
    reader.join().unwrap()
}

/// A strict binary-protocol call header: version 1, type CALL, seqid 1.
fn call_header(method: &str) -> Vec<u8> {
    let mut v = vec![0x80, 0x01, 0x00, 0x01];
    v.extend((method.len() as u32).to_be_bytes());
    v.extend(method.as_bytes());
    v.extend(1i32.to_be_bytes());
    v
}

#[test]
fn wire_format_matches_osqueryd() {
    // getQueryColumns(1: string sql)
    let mut want = call_header("getQueryColumns");
    want.extend([11, 0, 1, 0, 0, 0, 1, b'x', 0]);
    let got = wire_bytes(want.len(), |c| assert!(c.query_columns("x").is_err()));
    assert_eq!(got, want);

    // deregisterExtension(1: i64 uuid)
    let mut want = call_header("deregisterExtension");
    want.extend([10, 0, 1]);
    want.extend(7i64.to_be_bytes());
    want.push(0);
    let got = wire_bytes(want.len(), |c| assert!(c.deregister(7).is_err()));
    assert_eq!(got, want);

    // registerExtension(1: InternalExtensionInfo{1..4 strings}, 2: map)
    let mut want = call_header("registerExtension");
    want.extend([12, 0, 1]);
    for (id, s) in [(1u8, "n"), (2, "v"), (3, "s"), (4, "m")] {
        want.extend([11, 0, id, 0, 0, 0, 1, s.as_bytes()[0]]);
    }
    want.push(0); // end of info
    want.extend([13, 0, 2, 11, 13, 0, 0, 0, 0]); // empty map<string, map>
    want.push(0);
    let info = ExtensionInfo {
        name: "n".into(),
        version: "v".into(),
        sdk_version: "s".into(),
        min_sdk_version: "m".into(),
    };
    let got = wire_bytes(want.len(), |c| {
        assert!(c.register(info, Registry::new()).is_err())
    });
    assert_eq!(got, want);

    // call(1: registry, 2: item, 3: map<string,string> request)
    let mut want = call_header("call");
    want.extend([11, 0, 1, 0, 0, 0, 1, b't']);
    want.extend([11, 0, 2, 0, 0, 0, 1, b'i']);
    want.extend([13, 0, 3, 11, 11, 0, 0, 0, 1]);
    want.extend([0, 0, 0, 1, b'a', 0, 0, 0, 1, b'b']);
    want.push(0);
    let got = wire_bytes(want.len(), |c| {
        assert!(c.call("t", "i", request(&[("a", "b")])).is_err())
    });
    assert_eq!(got, want);

    for method in ["ping", "extensions", "options", "shutdown"] {
        let mut want = call_header(method);
        want.push(0);
        let got = wire_bytes(want.len(), |c| {
            let failed = match method {
                "ping" => c.ping().is_err(),
                "extensions" => c.extensions().is_err(),
                "options" => c.options().is_err(),
                _ => c.shutdown().is_err(),
            };
            assert!(failed);
        });
        assert_eq!(got, want, "{method}");
    }
}
