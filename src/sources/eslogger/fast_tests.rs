//! The fast reader against the full parse: the real lines, hand-made
//! corner cases, and random mutations.

use super::super::parse::parse_line;
use super::*;
use proptest::prelude::*;
use serde_json::{json, Value};

// Shared with the integration tests, where its items must be `pub`.
#[allow(unreachable_pub)]
#[path = "../../../tests/support/eslogger_lines.rs"]
mod lines;
use lines::{exec_message, exit_message, fork_message, kerberos_message, line};

/// The scanner's answer, checked against the full parse: `Unsure`, or the
/// same fields.
fn check(bytes: &[u8]) -> Option<FastKind> {
    let mut fast = FastLine::new();
    let kind = fast.scan(bytes).ok()?;
    match parse_line(bytes) {
        Ok(Some(full)) => assert!(
            fast.same_as(kind, &full),
            "fast {fast:?} vs full {full:?} for {}",
            String::from_utf8_lossy(bytes)
        ),
        other => panic!(
            "fast said {kind:?}, full {other:?} for {}",
            String::from_utf8_lossy(bytes)
        ),
    }
    Some(kind)
}

#[test]
fn real_lines_are_read_fast() {
    assert_eq!(check(&line(&exec_message())), Some(FastKind::Exec));
    assert_eq!(check(&line(&fork_message(7, 900))), Some(FastKind::Fork));
    assert_eq!(check(&line(&exit_message(8))), Some(FastKind::Exit));
    assert_eq!(check(&line(&kerberos_message(9))), Some(FastKind::Exec));
    let mut fast = FastLine::new();
    fast.scan(&line(&exec_message())).unwrap();
    assert_eq!(fast.path, b"/bin/date");
    assert_eq!(fast.args(), [b"date".to_vec(), b"+%c".to_vec()]);
    assert_eq!(fast.cwd(), Some(&b"/Users/t"[..]));
    assert_eq!((fast.pid, fast.uid, fast.version), (14522, 501, 6));
    assert_eq!(fast.krb5ccname(), None);
}

#[test]
fn array_tokens_and_krb5ccname() {
    let mut msg = exec_message();
    msg["version"] = json!(10);
    msg["event"]["exec"]["target"]["audit_token"] =
        json!([4294967295u64, 0, 0, -1, 0, 77, 100000, 5]);
    msg["event"]["exec"]["env"]
        .as_array_mut()
        .unwrap()
        .extend([json!("KRB5CCNAME=FILE:/tmp/x"), json!("KRB5CCNAME=second")]);
    assert_eq!(check(&line(&msg)), Some(FastKind::Exec));
    let mut fast = FastLine::new();
    fast.scan(&line(&msg)).unwrap();
    assert_eq!(
        (fast.pid, fast.uid, fast.auid),
        (77, 4294967295, 4294967295)
    );
    assert_eq!(fast.krb5ccname(), Some(&b"FILE:/tmp/x"[..]));
    // An escaped name is decoded as serde_json does.
    let text = String::from_utf8(line(&msg)).unwrap();
    let text = text.replace("\"KRB5CCNAME=FILE", "\"KRB5CC\\u004eAME=FILE");
    assert_eq!(check(text.as_bytes()), Some(FastKind::Exec));
}

#[test]
fn unsure_where_the_full_parse_would_differ() {
    let base = String::from_utf8(line(&exec_message())).unwrap();
    let unsure = |text: &str| {
        let mut fast = FastLine::new();
        assert_eq!(fast.scan(text.as_bytes()), Err(Unsure), "{text}");
    };
    unsure(&base.replace("\"pid\":14522", "\"pid\":14522,\"pid\":1"));
    unsure(&base.replace("\"ppid\":14518", "\"ppid\":14518.0"));
    unsure(&base.replace("\"ppid\":14518", "\"ppid\":-0"));
    unsure(&base.replace("\"ppid\":14518", "\"ppid\":014518"));
    unsure(&base.replace("\"date\"", "\"da\\ud800te\""));
    unsure(&base.replace("\"date\"", "\"da\\qte\""));
    unsure(&base.replace("\"date\"", "\"da\u{1}te\""));
    unsure(&base.replace("\"date\"", "1"));
    unsure(&base.replace("\"version\":6", "\"version\":12"));
    unsure(&base.replace("\"cwd\"", "\"cwx\""));
    unsure(&base.replace("\"signing_id\"", "\"signing\\u005fid\""));
    unsure(&format!("{base},"));
    unsure(&format!("{base}{{}}"));
    unsure(base.get(..base.len() - 1).unwrap());
    let mut bytes = base.clone().into_bytes();
    let at = base.find("date\"").unwrap();
    bytes[at] = 0xff;
    assert_eq!(FastLine::new().scan(&bytes), Err(Unsure));
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    unsure(&base.replace("\"script\":null", &format!("\"script\":{deep}")));
}

/// A JSON path the scanner or the full parse reads.
const PATHS: &[&[&str]] = &[
    &["version"],
    &["global_seq_num"],
    &["time"],
    &["event"],
    &["event", "exec"],
    &["event", "exec", "target"],
    &["event", "exec", "target", "executable"],
    &["event", "exec", "target", "executable", "path"],
    &["event", "exec", "target", "executable", "path_truncated"],
    &["event", "exec", "target", "audit_token"],
    &["event", "exec", "target", "audit_token", "pid"],
    &["event", "exec", "target", "audit_token", "ruid"],
    &["event", "exec", "target", "ppid"],
    &["event", "exec", "target", "original_ppid"],
    &["event", "exec", "target", "signing_id"],
    &["event", "exec", "target", "team_id"],
    &["event", "exec", "target", "cdhash"],
    &["event", "exec", "target", "is_platform_binary"],
    &["event", "exec", "args"],
    &["event", "exec", "env"],
    &["event", "exec", "cwd"],
    &["event", "exec", "cwd", "path"],
    &["event", "exec", "dyld_exec_path"],
    &["process"],
    &["process", "audit_token"],
    &["process", "audit_token", "pid"],
    &["process", "executable", "path"],
    &["event", "fork", "child"],
    &["event", "fork", "child", "audit_token"],
    &["event", "exit", "stat"],
];

fn odd_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        Just(json!(true)),
        Just(json!(1.5)),
        Just(json!(-1)),
        Just(json!(0)),
        Just(json!(u64::MAX)),
        Just(json!(i64::MIN)),
        Just(json!([])),
        Just(json!({})),
        Just(json!([1, 2, 3, 4, 5, 6, 7, 8])),
        Just(json!(["a", 1])),
        Just(json!("")),
        Just(json!("2023-05-07T14:25:44Z")),
        ".{0,12}".prop_map(Value::String),
    ]
}

/// Edits at the JSON level: remove or retype a field, new argv or env.
#[derive(Debug, Clone)]
enum Edit {
    Remove(usize),
    Set(usize, Value),
    Args(Vec<String>),
    Env(String),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (0..PATHS.len()).prop_map(Edit::Remove),
        (0..PATHS.len(), odd_value()).prop_map(|(p, v)| Edit::Set(p, v)),
        prop::collection::vec("(\\PC|[\\x00-\\x1f\"\\\\/]){0,20}", 0..6).prop_map(Edit::Args),
        "(KRB5CCNAME=)?\\PC{0,10}".prop_map(Edit::Env),
    ]
}

fn apply(msg: &mut Value, edit: &Edit) {
    let at = |msg: &mut Value, p: usize| -> Option<(*mut Value, String)> {
        let path = PATHS.get(p)?;
        let (last, parents) = path.split_last()?;
        let mut v = msg;
        for k in parents {
            v = v.get_mut(*k)?;
        }
        Some((v as *mut Value, (*last).to_string()))
    };
    match edit {
        Edit::Remove(p) => {
            if let Some((v, k)) = at(msg, *p) {
                // SAFETY: the pointer comes from `msg`, borrowed here alone.
                if let Some(obj) = unsafe { &mut *v }.as_object_mut() {
                    obj.shift_remove(&k);
                }
            }
        }
        Edit::Set(p, value) => {
            if let Some((v, k)) = at(msg, *p) {
                // SAFETY: as above.
                if let Some(obj) = unsafe { &mut *v }.as_object_mut() {
                    obj.insert(k, value.clone());
                }
            }
        }
        Edit::Args(args) => {
            if let Some(exec) = msg
                .pointer_mut("/event/exec")
                .and_then(Value::as_object_mut)
            {
                exec.insert("args".into(), json!(args));
            }
        }
        Edit::Env(entry) => {
            if let Some(env) = msg
                .pointer_mut("/event/exec/env")
                .and_then(Value::as_array_mut)
            {
                env.insert(0, json!(entry));
            }
        }
    }
}

/// Edits at the byte level, on the line as printed.
#[derive(Debug, Clone)]
enum Bytes {
    Insert(usize, Vec<u8>),
    Truncate(usize),
    Duplicate(usize, u8),
    Replace(usize, u8),
}

fn bytes_edit() -> impl Strategy<Value = Bytes> {
    let snippets = prop_oneof![
        Just(b"\\u0000".to_vec()),
        Just(b"\\ud800".to_vec()),
        Just(b"\\ud83d\\ude00".to_vec()),
        Just(b"\\u0041".to_vec()),
        Just(b"\\\\".to_vec()),
        Just(vec![0xff]),
        Just(vec![0xc3, 0xa9]),
        Just(vec![0]),
        Just(b"\"".to_vec()),
        Just(b",".to_vec()),
        Just(b" ".to_vec()),
        Just(b"\t".to_vec()),
        Just(b"{".to_vec()),
        Just(b"]".to_vec()),
        Just(b"1e5".to_vec()),
        prop::collection::vec(any::<u8>(), 1..4),
    ];
    prop_oneof![
        (any::<usize>(), snippets).prop_map(|(at, s)| Bytes::Insert(at, s)),
        any::<usize>().prop_map(Bytes::Truncate),
        (any::<usize>(), any::<u8>()).prop_map(|(k, v)| Bytes::Duplicate(k, v)),
        (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Bytes::Replace(at, b)),
    ]
}

const DUP_KEYS: &[&str] = &[
    "version",
    "global_seq_num",
    "time",
    "event",
    "process",
    "target",
    "executable",
    "path",
    "audit_token",
    "pid",
    "ruid",
    "ppid",
    "signing_id",
    "args",
    "env",
    "cwd",
    "child",
    "stat",
];

fn apply_bytes(line: &mut Vec<u8>, edit: &Bytes) {
    match edit {
        Bytes::Insert(at, s) => {
            let at = at % (line.len() + 1);
            line.splice(at..at, s.iter().copied());
        }
        Bytes::Truncate(at) => line.truncate(at % (line.len() + 1)),
        Bytes::Duplicate(k, v) => {
            let key = DUP_KEYS[k % DUP_KEYS.len()];
            let needle = format!("\"{key}\":");
            let text = String::from_utf8_lossy(line).into_owned();
            if let Some(at) = text.find(&needle) {
                let dup = format!("{needle}{v},");
                line.splice(at..at, dup.into_bytes());
            }
        }
        Bytes::Replace(at, b) => {
            if !line.is_empty() {
                let at = at % line.len();
                line[at] = *b;
            }
        }
    }
}

fn base() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(exec_message()),
        Just(kerberos_message(3)),
        Just(fork_message(4, 901)),
        Just(exit_message(5)),
        Just({
            let mut m = exec_message();
            m["version"] = json!(10);
            m["event"]["exec"]["target"]["audit_token"] =
                json!([501, 501, 20, 501, 20, 88, 100019, 9]);
            m
        }),
        Just({
            let mut m = exec_message();
            m["version"] = json!(2);
            m
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Whatever the mutation: no panic, and `Unsure` or the full parse's
    /// fields.
    #[test]
    fn mutations_are_unsure_or_exact(
        msg in base(),
        edits in prop::collection::vec(edit(), 0..3),
        byte_edits in prop::collection::vec(bytes_edit(), 0..2),
        huge in prop::option::weighted(0.1, 1usize..100_000),
    ) {
        let mut msg = msg;
        for e in &edits {
            apply(&mut msg, e);
        }
        if let Some(n) = huge {
            if let Some(exec) = msg
                .pointer_mut("/event/exec")
                .and_then(Value::as_object_mut)
            {
                exec.insert("args".into(), json!(["date", "x/".repeat(n)]));
            }
        }
        let mut bytes = line(&msg);
        for e in &byte_edits {
            apply_bytes(&mut bytes, e);
        }
        check(&bytes);
    }
}

/// A skipped value is checked as strictly as serde_json checks it: what
/// serde_json rejects is `Unsure`, and compact valid JSON is read fast.
#[test]
fn skipped_values_follow_the_grammar() {
    let base = String::from_utf8(line(&exec_message())).unwrap();
    let with = |value: &str| base.replace("\"script\":null", &format!("\"script\":{value}"));
    let fast = [
        "0",
        "-5",
        "12345678901234567890",
        "true",
        "\"\"",
        "\"a\\/b\\\"c\\\\\"",
        "\"\\\\\\\\\\/\"",
        "\"\\u00e9\\n\"",
        "[]",
        "{}",
        "[1,{\"a\":\"x\\/y\",\"b\":[[],{}]},-10]",
    ];
    for value in fast {
        let text = with(value);
        assert_eq!(check(text.as_bytes()), Some(FastKind::Exec), "{value}");
    }
    let rejected = [
        "01",
        "-",
        "--1",
        "1.5",
        "1e5",
        "0.",
        "-01",
        "tru",
        "nul",
        "\"a",
        "\"\\x\"",
        "\"\\u00g0\"",
        "-0",
        "[1,]",
        "[,1]",
        "[1 ]",
        "[1}",
        "{\"a\":1,}",
        "{,}",
        "{\"a\"}",
        "{\"a\" :1}",
        "{1:1}",
        "[{]}",
        "{\"a\":[}]",
        "[[]",
        " 1",
        "{\"a\":1\"b\":2}",
    ];
    for value in rejected {
        let text = with(value);
        let mut scanner = FastLine::new();
        assert_eq!(scanner.scan(text.as_bytes()), Err(Unsure), "{value}");
        check(text.as_bytes());
    }
}
