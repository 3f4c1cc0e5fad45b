use super::*;
use serde_json::json;

/// A plausible exec message in eslogger's layout (values made up here).
fn exec_message(version: i64, token: Value) -> Value {
    json!({
        "schema_version": 1,
        "version": version,
        "event_type": 9,
        "time": "2026-03-02T10:20:30.123456789Z",
        "mach_time": 987654321,
        "seq_num": 12,
        "global_seq_num": 40,
        "action_type": 1,
        "thread": {"thread_id": 77},
        "process": {
            "audit_token": {"auid": 501, "euid": 501, "egid": 20, "ruid": 501,
                            "rgid": 20, "pid": 3100, "asid": 100020, "pidversion": 9000},
            "executable": {"path": "/bin/zsh", "path_truncated": false},
            "ppid": 3000, "original_ppid": 3000,
            "signing_id": "com.apple.zsh", "team_id": null,
            "is_platform_binary": true, "cdhash": "AB".repeat(20)
        },
        "event": {"exec": {
            "target": {
                "audit_token": token,
                "executable": {"path": "/usr/bin/kcc", "path_truncated": false,
                               "stat": {"st_ino": 1152921500312999999u64}},
                "ppid": 3000, "original_ppid": 3000,
                "signing_id": "com.apple.kcc", "team_id": null,
                "is_platform_binary": true, "cdhash": "0123456789ABCDEF0123456789ABCDEF01234567",
                "start_time": "2026-03-02T10:20:30.100000Z",
                "tty": null
            },
            "args": ["kcc", "copy_cred_cache", "/tmp/bob.ccache"],
            "env": ["PATH=/usr/bin:/bin"],
            "cwd": {"path": "/Users/bob", "path_truncated": false},
            "script": null,
            "dyld_exec_path": "/usr/bin/kcc",
            "image_cputype": 16777228,
            "image_cpusubtype": -2147483646
        }}
    })
}

/// eslogger escapes every slash.
fn line_of(msg: &Value) -> Vec<u8> {
    msg.to_string().replace('/', "\\/").into_bytes()
}

fn object_token(pid: i64, pidversion: i64) -> Value {
    json!({"auid": 501, "euid": 0, "egid": 0, "ruid": 501, "rgid": 20,
           "pid": pid, "asid": 100020, "pidversion": pidversion})
}

fn exec_of(line: &[u8]) -> EsExec {
    match parse_line(line).unwrap() {
        Some(EsEvent::Exec(ex)) => ex,
        other => panic!("not an exec: {other:?}"),
    }
}

#[test]
fn rfc3339_nine_and_six_digits() {
    assert_eq!(
        parse_rfc3339("1970-01-01T00:00:00.000000000Z"),
        Some((0, 0))
    );
    // 2025-08-07T13:21:35Z is 1754572895 (date -u -d … +%s).
    assert_eq!(
        parse_rfc3339("2025-08-07T13:21:35.880814738Z"),
        Some((1_754_572_895, 880_814_738))
    );
    assert_eq!(
        parse_rfc3339("2025-08-07T13:21:35.877422Z"),
        Some((1_754_572_895, 877_422_000))
    );
    assert_eq!(
        parse_rfc3339("2025-08-07T13:21:35Z"),
        Some((1_754_572_895, 0))
    );
    assert_eq!(
        parse_rfc3339("2025-08-07t13:21:35.5z"),
        Some((1_754_572_895, 500_000_000))
    );
    // Digits below a nanosecond are ignored.
    assert_eq!(
        parse_rfc3339("2025-08-07T13:21:35.1234567891234Z"),
        Some((1_754_572_895, 123_456_789))
    );
    // Offsets are applied.
    assert_eq!(
        parse_rfc3339("2025-08-07T15:21:35+02:00"),
        Some((1_754_572_895, 0))
    );
    assert_eq!(
        parse_rfc3339("2025-08-07T12:51:35-00:30"),
        Some((1_754_572_895, 0))
    );
    assert_eq!(
        parse_rfc3339("2000-02-29T00:00:00Z"),
        Some((951_782_400, 0))
    );
    assert_eq!(parse_rfc3339("1969-12-31T23:59:59Z"), Some((-1, 0)));
    // A leap second counts as the second before it.
    assert_eq!(
        parse_rfc3339("2016-12-31T23:59:60Z"),
        parse_rfc3339("2016-12-31T23:59:59Z")
    );
}

#[test]
fn rfc3339_rejects() {
    for bad in [
        "",
        "2025-08-07",
        "2025-08-07T13:21:35",
        "2025-08-07 13:21:35Z",
        "2025-08-07T13:21:35.Z",
        "2025-08-07T13:21:35.88x Z",
        "2025-08-07T13:21:35.88 Z",
        "2025-13-07T13:21:35Z",
        "2025-00-07T13:21:35Z",
        "2025-08-00T13:21:35Z",
        "2025-08-32T13:21:35Z",
        "2023-02-29T00:00:00Z",
        "1900-02-29T00:00:00Z",
        "2025-04-31T00:00:00Z",
        "2025-08-07T24:00:00Z",
        "2025-08-07T13:60:00Z",
        "2025-08-07T13:21:61Z",
        "2025-08-07T13:21:35+0200",
        "2025-08-07T13:21:35+24:00",
        "2025-08-07T13:21:35ZZ",
        "+025-08-07T13:21:35Z",
        "2025-8-07T13:21:35Z",
        "２025-08-07T13:21:35Z",
        "2025-08-07T13:21:35.88\u{e9}Z",
    ] {
        assert_eq!(parse_rfc3339(bad), None, "{bad:?}");
    }
}

#[test]
fn days_match_the_calendar() {
    for (date, days) in [
        ("1970-01-01", 0),
        ("2000-03-01", 11_017),
        ("1969-12-31", -1),
        ("2026-10-05", 20_731),
        ("0000-03-01", -719_468),
    ] {
        let text = format!("{date}T00:00:00Z");
        assert_eq!(parse_rfc3339(&text), Some((days * 86_400, 0)), "{date}");
    }
    // Before 1970 the fraction still counts forward from the second.
    assert_eq!(
        parse_rfc3339("1969-12-31T23:59:59.25Z"),
        Some((-1, 250_000_000))
    );
}

#[test]
fn audit_token_object_and_array_read_the_same() {
    let object = object_token(4242, 77);
    let array = json!([501, 0, 0, 501, 20, 4242, 100020, 77]);
    let a = parse_audit_token(&object).unwrap();
    let b = parse_audit_token(&array).unwrap();
    assert_eq!(a, b);
    assert_eq!(
        a,
        AuditToken {
            auid: Some(501),
            euid: Some(0),
            egid: Some(0),
            ruid: Some(501),
            rgid: Some(20),
            pid: Some(4242),
            asid: Some(100020),
            pidversion: Some(77),
        }
    );
    // Distinct values in every slot pin the array order.
    let t = parse_audit_token(&json!([1, 2, 3, 4, 5, 6, 7, 8])).unwrap();
    assert_eq!(
        (
            t.auid,
            t.euid,
            t.egid,
            t.ruid,
            t.rgid,
            t.pid,
            t.asid,
            t.pidversion
        ),
        (
            Some(1),
            Some(2),
            Some(3),
            Some(4),
            Some(5),
            Some(6),
            Some(7),
            Some(8)
        )
    );
    assert_eq!(parse_audit_token(&json!([1, 2, 3])), None);
    assert_eq!(parse_audit_token(&json!("501")), None);
    assert_eq!(parse_audit_token(&Value::Null), None);
    // Unset auid, unsigned or (should a version write it so) signed.
    let unset = parse_audit_token(&json!([4294967295u64, 0, 0, 0, 0, 1, 0, 1])).unwrap();
    assert_eq!(unset.auid, Some(4_294_967_295));
    let signed = parse_audit_token(&json!([-1, 0, 0, 0, 0, 1, 0, 1])).unwrap();
    assert_eq!(signed.auid, Some(4_294_967_295));
    let partial = parse_audit_token(&json!({"pid": 5})).unwrap();
    assert_eq!(partial.pid, Some(5));
    assert!(!partial.is_complete());
}

#[test]
fn exec_takes_the_target_not_the_caller() {
    let token = json!([501, 0, 0, 501, 20, 3100, 100020, 9001]);
    let ex = exec_of(&line_of(&exec_message(10, token)));
    assert_eq!(ex.path, "/usr/bin/kcc");
    assert_eq!(ex.pid, 3100);
    assert_eq!(ex.pidversion, Some(9001));
    assert_eq!(ex.ppid, Some(3000));
    assert_eq!(ex.original_ppid, Some(3000));
    assert_eq!(
        ex.args.as_deref().unwrap(),
        ["kcc", "copy_cred_cache", "/tmp/bob.ccache"]
    );
    assert_eq!(ex.cwd.as_deref(), Some("/Users/bob"));
    assert_eq!(
        (ex.uid, ex.euid, ex.gid, ex.egid, ex.auid),
        (Some(501), Some(0), Some(20), Some(0), Some(501))
    );
    assert_eq!(ex.signing_id, "com.apple.kcc");
    assert_eq!(ex.team_id, "");
    assert_eq!(ex.platform_binary, Some(true));
    assert_eq!(ex.cdhash, "0123456789ABCDEF0123456789ABCDEF01234567");
    assert_eq!((ex.time, ex.time_nanos), (1_772_446_830, 123_456_789));
    assert_eq!(ex.envelope.version, Some(10));
    assert_eq!(ex.envelope.global_seq_num, Some(40));
    assert!(ex.envelope.drift.is_empty(), "{:?}", ex.envelope.drift);
    assert!(!ex.envelope.repaired);
}

#[test]
fn escaped_slashes_and_large_integers_parse() {
    let line = line_of(&exec_message(9, object_token(3100, 9001)));
    assert!(line.windows(2).any(|w| w == b"\\/"));
    assert!(std::str::from_utf8(&line)
        .unwrap()
        .contains("1152921500312999999"));
    let ex = exec_of(&line);
    assert_eq!(ex.path, "/usr/bin/kcc");
    assert_eq!(ex.args.unwrap()[2], "/tmp/bob.ccache");
}

#[test]
fn nulls_are_empty_not_drift() {
    let mut msg = exec_message(10, object_token(1, 2));
    msg["event"]["exec"]["target"]["signing_id"] = Value::Null;
    msg["event"]["exec"]["target"]["cdhash"] = Value::Null;
    msg["event"]["exec"]["target"]["team_id"] = json!("ABCDE12345");
    let ex = exec_of(&line_of(&msg));
    assert_eq!(ex.signing_id, "");
    assert_eq!(ex.cdhash, "");
    assert_eq!(ex.team_id, "ABCDE12345");
    assert!(ex.envelope.drift.is_empty());
}

#[test]
fn missing_fields_are_counted_not_fatal() {
    let mut msg = exec_message(10, object_token(3100, 1));
    let target = msg["event"]["exec"]["target"].as_object_mut().unwrap();
    target.remove("team_id");
    target.remove("signing_id");
    target.remove("ppid");
    target.insert("is_platform_binary".into(), json!("yes"));
    let exec = msg["event"]["exec"].as_object_mut().unwrap();
    exec.remove("args");
    exec.remove("cwd");
    msg.as_object_mut().unwrap().remove("time");
    let ex = exec_of(&line_of(&msg));
    assert_eq!(ex.path, "/usr/bin/kcc");
    assert_eq!(ex.pid, 3100);
    assert_eq!(ex.args, None);
    assert_eq!(ex.ppid, None);
    assert_eq!(ex.original_ppid, Some(3000));
    assert_eq!(ex.platform_binary, None);
    let drift: Vec<Field> = ex.envelope.drift.iter().collect();
    assert_eq!(
        drift,
        [
            Field::Time,
            Field::ExecArgs,
            Field::ExecCwd,
            Field::ExecPpid,
            Field::ExecSigningId,
            Field::ExecTeamId,
            Field::ExecPlatformBinary,
        ]
    );
    let event = to_exec_event(&ex, None);
    assert!(event.incomplete);
    assert_eq!(event.ppid, 3000, "original_ppid stands in");
}

#[test]
fn cwd_is_only_expected_from_version_3() {
    let mut msg = exec_message(2, object_token(1, 2));
    msg["event"]["exec"].as_object_mut().unwrap().remove("cwd");
    msg.as_object_mut().unwrap().remove("global_seq_num");
    let ex = exec_of(&line_of(&msg));
    assert!(ex.envelope.drift.is_empty(), "{:?}", ex.envelope.drift);
}

#[test]
fn pid_and_path_fall_back_and_otherwise_the_event_is_unusable() {
    // A token shape nobody has seen: the caller's token gives the pid.
    let mut msg = exec_message(12, json!("opaque"));
    msg["event"]["exec"]["target"]["executable"]
        .as_object_mut()
        .unwrap()
        .remove("path");
    let ex = exec_of(&line_of(&msg));
    assert_eq!(ex.pid, 3100);
    assert_eq!(ex.path, "/usr/bin/kcc", "from dyld_exec_path");
    assert_eq!(ex.uid, None);
    assert!(ex.envelope.drift.contains(Field::ExecAuditToken));
    assert!(ex.envelope.drift.contains(Field::ExecPath));

    msg["event"]["exec"]
        .as_object_mut()
        .unwrap()
        .remove("dyld_exec_path");
    assert_eq!(
        parse_line(&line_of(&msg)),
        Err(EsParseError::Unusable {
            event: "exec",
            field: Field::ExecPath
        })
    );
    let mut msg = exec_message(10, json!([1, 2]));
    msg["process"]
        .as_object_mut()
        .unwrap()
        .remove("audit_token");
    assert_eq!(
        parse_line(&line_of(&msg)),
        Err(EsParseError::Unusable {
            event: "exec",
            field: Field::ExecAuditToken
        })
    );
    // No target at all: reported as such, not field by field.
    let mut msg = exec_message(10, json!(null));
    msg["event"]["exec"]["target"] = json!(5);
    let ex = exec_of(&line_of(&msg));
    assert!(ex.envelope.drift.contains(Field::ExecTarget));
    assert!(!ex.envelope.drift.contains(Field::ExecSigningId));
    assert_eq!((ex.pid, ex.path.as_str()), (3100, "/usr/bin/kcc"));
}

#[test]
fn unknown_fields_and_other_events_are_ignored() {
    let mut msg = exec_message(11, object_token(1, 2));
    msg["brand_new"] = json!({"nested": [1, 2, {"x": null}]});
    msg["event"]["exec"]["entitlements"] = json!({"platform-application": true});
    msg["event"]["exec"]["target"]["cs_validation_category"] = json!(1);
    assert!(exec_of(&line_of(&msg)).envelope.drift.is_empty());

    let open = json!({"version": 10, "event_type": 10, "global_seq_num": 3,
                      "event": {"open": {"fflag": 1}}, "process": {}});
    assert_eq!(parse_line(&line_of(&open)), Ok(None));
    assert_eq!(parse_line(br#"{"event_type": 10}"#), Ok(None));
    assert_eq!(
        parse_line(br#"{"event_type": 9, "version": 10}"#),
        Err(EsParseError::Unusable {
            event: "exec",
            field: Field::Event
        })
    );
}

/// Reads `data`, then fails like a disk would.
struct FailsAfter<'a>(&'a [u8]);

impl Read for FailsAfter<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.0.is_empty() {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        let n = buf.len().min(self.0.len());
        buf[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        Ok(n)
    }
}

#[test]
fn a_read_error_mid_file_keeps_what_was_read_and_fails() {
    use crate::store::RowFilter;
    let engine = Engine::for_tests();
    let mut data = line_of(&exec_message(10, object_token(3101, 9001)));
    data.extend_from_slice(b"\nnot json\n");
    let path = Path::new("/var/audit/capture.jsonl");
    let mut source = Eslogger::with_input(Input::Replay {
        path: path.to_path_buf(),
        file: None,
    });
    let mut reader = BufReader::with_capacity(64, FailsAfter(&data));
    let err = source
        .replay_lines(&mut reader, path, &engine)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("reading eslogger file /var/audit/capture.jsonl failed after 2 line(s): "),
        "{err}"
    );
    assert_eq!(engine.store().select(&RowFilter::default()).len(), 1);
    assert_eq!(source.drift().not_json, 1);
}

#[test]
fn json_that_is_not_an_es_message_is_told_apart() {
    let shape = |line: &[u8]| match parse_message(line) {
        Ok((_, Parsed::Event(_))) => "event",
        Ok((_, Parsed::OtherEvent)) => "other",
        Ok((_, Parsed::Foreign)) => "foreign",
        Err(_) => "error",
    };
    assert_eq!(
        shape(&line_of(&exec_message(10, object_token(1, 2)))),
        "event"
    );
    assert_eq!(shape(br#"{"event_type": 10}"#), "other");
    assert_eq!(shape(br#"{"version": 10, "event": {"open": {}}}"#), "other");
    assert_eq!(
        shape(br#"{"name": "pack", "hostIdentifier": "h"}"#),
        "foreign"
    );
    assert_eq!(shape(br#"{"event_type": "exec"}"#), "foreign");
    assert_eq!(shape(b"root:x:0:0"), "error");
}

#[test]
fn non_json_lines_are_errors() {
    assert!(matches!(
        parse_line(b"eslogger: starting"),
        Err(EsParseError::NotJson(_))
    ));
    assert!(matches!(
        parse_line(br#"{"version": 10, "event": {"exec""#),
        Err(EsParseError::NotJson(_))
    ));
    assert_eq!(parse_line(b"[1, 2]"), Err(EsParseError::NotAnObject));
    assert_eq!(parse_line(b"42"), Err(EsParseError::NotAnObject));
    assert!(parse_line(b"\xff\xfe").is_err());
}

#[test]
fn odd_text_in_args_survives() {
    // Escaped control characters and U+FFFD parse as they are.
    let mut msg = exec_message(10, object_token(1, 2));
    msg["event"]["exec"]["args"] = json!(["kcc", "copy_cred_cache", "/tmp/a\u{1}\u{fffd}b"]);
    let ex = exec_of(&line_of(&msg));
    assert_eq!(ex.args.unwrap()[2], "/tmp/a\u{1}\u{fffd}b");
    assert!(!ex.envelope.repaired);

    // An unpaired surrogate escape, and a raw invalid byte: the line is
    // repaired, not lost.
    let text = String::from_utf8(line_of(&exec_message(10, object_token(1, 2)))).unwrap();
    let lone = text.replace("\\/tmp\\/bob.ccache", "\\/tmp\\/\\ud800x");
    let ex = exec_of(lone.as_bytes());
    assert!(ex.envelope.repaired);
    assert_eq!(ex.args.as_ref().unwrap()[2], "/tmp/\u{fffd}x");
    let mut raw = text.replace("bob.ccache", "b\u{1}").into_bytes();
    let at = raw.iter().position(|&b| b == 1).unwrap();
    raw[at] = 0xff;
    let ex = exec_of(&raw);
    assert!(ex.envelope.repaired);
    assert_eq!(ex.args.as_ref().unwrap()[2], "/tmp/b\u{fffd}");
    // A valid pair stays as it is.
    let pair = text.replace("bob.ccache", "\\ud83d\\ude00");
    let ex = exec_of(pair.as_bytes());
    assert!(!ex.envelope.repaired);
    assert_eq!(ex.args.unwrap()[2], "/tmp/\u{1f600}");
    // A non-string argument keeps its position.
    let mut msg = exec_message(10, object_token(1, 2));
    msg["event"]["exec"]["args"] = json!(["kcc", 7, null]);
    let ex = exec_of(&line_of(&msg));
    assert_eq!(ex.args.unwrap(), ["kcc", "7", "null"]);
    assert!(ex.envelope.drift.contains(Field::ExecArgs));
}

#[test]
fn repair_only_touches_what_serde_rejects() {
    assert_eq!(repair(br#"{"a":"x\\ud800"}"#), None);
    assert_eq!(
        repair(br#"{"a":"\udc00\ud800\u0041"}"#).as_deref(),
        Some(r#"{"a":"\uFFFD\uFFFD\u0041"}"#)
    );
    assert_eq!(
        repair(br#"{"a":"\ud800"#).as_deref(),
        Some(r#"{"a":"\uFFFD"#)
    );
    assert_eq!(repair(b"\"\\u12\"").as_deref(), None);
    assert_eq!(repair(b"x\\").as_deref(), None);
    assert_eq!(repair(b"\"\xc3\"").as_deref(), Some("\"\u{fffd}\""));
}

#[test]
fn fork_and_exit() {
    let fork = json!({
        "version": 10, "event_type": 11, "time": "2026-03-02T10:20:30.000000001Z",
        "global_seq_num": 5,
        "process": {"audit_token": [501, 501, 20, 501, 20, 700, 100020, 7000],
                    "executable": {"path": "/bin/bash"}},
        "event": {"fork": {"child": {
            "audit_token": [501, 501, 20, 501, 20, 701, 100020, 7010],
            "executable": {"path": "/bin/bash"}, "ppid": 700}}}
    });
    assert_eq!(
        parse_line(&line_of(&fork)).unwrap(),
        Some(EsEvent::Fork {
            envelope: Envelope {
                version: Some(10),
                global_seq_num: Some(5),
                ..Envelope::default()
            },
            parent_pid: Some(700),
            parent_path: Some("/bin/bash".into()),
            child_pid: 701,
        })
    );
    let mut no_parent = fork.clone();
    no_parent.as_object_mut().unwrap().remove("process");
    match parse_line(&line_of(&no_parent)).unwrap() {
        Some(EsEvent::Fork {
            parent_pid,
            parent_path,
            envelope,
            ..
        }) => {
            assert_eq!(parent_pid, Some(700), "from child.ppid");
            assert_eq!(parent_path.as_deref(), Some("/bin/bash"));
            assert!(envelope.drift.contains(Field::ProcessAuditToken));
            assert!(envelope.drift.contains(Field::ProcessPath));
        }
        other => panic!("{other:?}"),
    }
    let exit = json!({"version": 9, "event_type": 15, "global_seq_num": 6,
                      "process": {"audit_token": object_token(701, 7010)},
                      "event": {"exit": {"stat": 256}}});
    assert_eq!(
        parse_line(&line_of(&exit)).unwrap(),
        Some(EsEvent::Exit {
            envelope: Envelope {
                version: Some(9),
                global_seq_num: Some(6),
                ..Envelope::default()
            },
            pid: 701,
            stat: Some(256),
        })
    );
    let bad_fork = json!({"version": 10, "event": {"fork": {"child": {}}}, "global_seq_num": 1});
    assert_eq!(
        parse_line(&line_of(&bad_fork)),
        Err(EsParseError::Unusable {
            event: "fork",
            field: Field::ForkChildAuditToken
        })
    );
}

#[test]
fn exec_event_carries_identity_and_parent() {
    let ex = exec_of(&line_of(&exec_message(10, object_token(3100, 9001))));
    let event = to_exec_event(&ex, Some((b"/bin/zsh".to_vec(), b"-zsh".to_vec())));
    assert_eq!(event.source, SourceKind::Eslogger);
    assert_eq!(event.path, b"/usr/bin/kcc");
    assert_eq!(event.argv[1], b"copy_cred_cache");
    assert_eq!(event.cwd.as_deref(), Some(&b"/Users/bob"[..]));
    assert_eq!(event.parent_path.as_deref(), Some(&b"/bin/zsh"[..]));
    assert_eq!(event.parent_argv, Some(vec![b"-zsh".to_vec()]));
    assert_eq!(event.code.signing_id, "com.apple.kcc");
    assert_eq!(event.code.team_id, "");
    assert_eq!(event.code.platform_binary, Some(true));
    assert_eq!(event.code.sha256, "");
    assert_eq!(event.discriminator, 9001);
    assert_eq!((event.time, event.time_nanos), (1_772_446_830, 123_456_789));
    assert!(!event.incomplete);
    // A parent known only from a fork has no command line.
    let event = to_exec_event(&ex, Some((b"/bin/zsh".to_vec(), Vec::new())));
    assert_eq!(event.parent_argv, None);
    let mut cut = ex.clone();
    cut.path_truncated = true;
    assert!(to_exec_event(&cut, None).incomplete);
    cut.pidversion = None;
    assert_eq!(to_exec_event(&cut, None).discriminator, 123_456_789);
}

#[test]
fn only_krb5ccname_is_kept_from_the_environment() {
    let ex = exec_of(&line_of(&exec_message(10, object_token(3100, 9001))));
    assert_eq!(ex.krb5ccname, None);
    assert_eq!(to_exec_event(&ex, None).krb5ccname, None);
    let mut msg = exec_message(10, object_token(3100, 9001));
    msg["event"]["exec"]["env"] = json!([
        "PATH=/usr/bin:/bin",
        "KRB5CCNAMEX=no",
        "KRB5CCNAME=FILE:/tmp/krb5cc_502",
        "HOME=/Users/bob"
    ]);
    let ex = exec_of(&line_of(&msg));
    assert_eq!(ex.krb5ccname.as_deref(), Some("FILE:/tmp/krb5cc_502"));
    assert_eq!(
        to_exec_event(&ex, None).krb5ccname.as_deref(),
        Some(&b"FILE:/tmp/krb5cc_502"[..])
    );
    // Not an array, or no such variable: nothing, and no drift.
    msg["event"]["exec"]["env"] = json!("KRB5CCNAME=x");
    let ex = exec_of(&line_of(&msg));
    assert_eq!(ex.krb5ccname, None);
    assert!(ex.envelope.drift.0 == 0, "{:?}", ex.envelope.drift);
}

#[test]
fn drift_summary_reads_well() {
    let mut d = SchemaDrift::default();
    assert_eq!(d.summary(), None);
    assert_eq!(d.total(), 0);
    let mut set = FieldSet::default();
    set.insert(Field::ExecArgs);
    set.insert(Field::Time);
    d.note(set);
    d.note(set);
    d.not_json = 1;
    assert_eq!(d.count(Field::ExecArgs), 2);
    assert_eq!(d.total(), 5);
    assert_eq!(
        d.summary().unwrap(),
        "schema drift: 1 non-JSON line(s), event.exec.args missing or changed in 2, \
         time missing or changed in 2"
    );
}

#[test]
fn warnings_are_logged_once() {
    assert!(warn_once(WARN_TEST, || "first".into()));
    assert!(!warn_once(WARN_TEST, || "second".into()));
}

#[test]
fn lines_are_capped() {
    let mut input = io::Cursor::new(b"short\nthis one is too long\n\nlast".to_vec());
    let mut buf = Vec::new();
    let mut got = Vec::new();
    loop {
        let r = read_line_capped(&mut input, &mut buf, 10).unwrap();
        if r == LineRead::Eof {
            break;
        }
        got.push((r, String::from_utf8(buf.clone()).unwrap()));
    }
    assert_eq!(
        got,
        [
            (LineRead::Line, "short".to_string()),
            (LineRead::TooLong, String::new()),
            (LineRead::Line, String::new()),
            (LineRead::Line, "last".to_string()),
        ]
    );
    // Across BufReader refills.
    let long = [b'a'; 100];
    let mut small = BufReader::with_capacity(8, &long[..]);
    assert_eq!(
        read_line_capped(&mut small, &mut buf, 1000).unwrap(),
        LineRead::Line
    );
    assert_eq!(buf.len(), 100);
}

#[test]
fn stderr_tail_keeps_the_end() {
    let mut t = StderrTail::default();
    t.push(b"ERROR: one");
    t.push(b"");
    t.push(b"  two ");
    assert_eq!(t.text(), "ERROR: one; two");
    for _ in 0..1000 {
        t.push(b"filler line");
    }
    t.push(b"the end");
    assert!(t.bytes.len() <= STDERR_KEEP);
    assert!(t.text().ends_with("the end"));
}

#[test]
fn hints_name_the_missing_permission() {
    let r = exit_reason(
        Path::new("/usr/bin/eslogger"),
        "exited at start",
        None,
        "ERROR: ES_NEW_CLIENT_RESULT_ERR_NOT_PERMITTED",
    );
    assert!(r.contains("Full Disk Access"), "{r}");
    assert!(r.starts_with("/usr/bin/eslogger exited at start (status unknown): ERROR"));
    assert!(hint("es_new_client_result_err_not_privileged")
        .unwrap()
        .contains("root"));
    assert_eq!(hint("eslogger must be run as root").unwrap(), HINT_ROOT);
    assert_eq!(hint("Operation not permitted").unwrap(), HINT_FDA);
    assert_eq!(hint("something else"), None);
    assert!(exit_reason(Path::new("x"), "exited", None, "").ends_with("without a message"));
}

#[test]
fn backoff_doubles_up_to_the_cap() {
    let mut live = Live {
        program: PathBuf::new(),
        args: Vec::new(),
        child: None,
        first_backoff: BACKOFF_FIRST,
        max_backoff: BACKOFF_MAX,
        backoff: BACKOFF_FIRST,
        failure: None,
    };
    let seen: Vec<u64> = (0..9).map(|_| live.take_backoff().as_secs()).collect();
    assert_eq!(seen, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    assert_eq!(fmt_duration(Duration::from_millis(250)), "250ms");
    assert_eq!(fmt_duration(Duration::from_secs(4)), "4s");
}
