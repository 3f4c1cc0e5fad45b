//! The audit record parser and exec assembler against real audit.log
//! samples (the Apache-2.0 ones vendored in tests/data/linux-audit; the
//! copyleft ones read in place from ../shared/fixtures/linux-audit), plus
//! property tests on arbitrary input.
#![cfg(target_os = "linux")]

mod support;

// Shared with the assembler's unit tests.
#[path = "support/audit_got.rs"]
mod audit_got;
use kerberos_cache_access::sources::linux_audit::assemble::AuditExec;

// Inside `linux_audit` so that `cargo test … linux_audit` selects these too.
mod linux_audit {
    use kerberos_cache_access::classify::classify;
    use kerberos_cache_access::sources::linux_audit::assemble::{
        Assembler, AssemblerConfig, AssemblerStats, AuditExec,
    };
    use kerberos_cache_access::sources::linux_audit::record::{
        decode_into, fields, parse_log_line, split_payload, RecordError, AUDIT_CWD, AUDIT_EOE,
        AUDIT_EXECVE, AUDIT_PATH, AUDIT_PROCTITLE, AUDIT_SYSCALL,
    };
    use proptest::prelude::*;
    use std::path::{Path, PathBuf};
    use std::time::{Duration, Instant};

    use super::support::fixtures;

    /// A go-libaudit sample (Apache-2.0, vendored): always there.
    fn fixture(name: &str) -> Vec<u8> {
        std::fs::read(fixtures::vendored(&format!("linux-audit/{name}"))).unwrap()
    }

    /// A copyleft sample, read in place from ../shared: None, after a
    /// SKIPPED line, without it (a failure under CI=true).
    fn shared_fixture(name: &str) -> Option<Vec<u8>> {
        let path = fixtures::shared(&format!("linux-audit/{name}"))?;
        Some(std::fs::read(path).unwrap())
    }

    use super::audit_got::Got;

    struct Replay {
        execs: Vec<Got>,
        /// Emitted before the final flush (by EOE or overflow).
        before_flush: usize,
        /// (line number, error) of lines that did not parse.
        errors: Vec<(usize, RecordError)>,
        stats: AssemblerStats,
    }

    /// Replays audit.log text through parse_log_line and the assembler, then
    /// flushes, as a file replay does.
    fn replay(text: &[u8]) -> Replay {
        let mut asm = Assembler::new(AssemblerConfig::default());
        let now = Instant::now();
        let mut execs = Vec::new();
        let mut errors = Vec::new();
        for (i, line) in text.split(|&b| b == b'\n').enumerate() {
            match parse_log_line(line) {
                None => {}
                Some(Err(err)) => {
                    errors.push((i + 1, err));
                    asm.note_malformed();
                }
                Some(Ok((rtype, header, body))) => {
                    asm.push(rtype, header, body, now, &mut |e| execs.push(Got::of(e)));
                    assert!(asm.pending() <= AssemblerConfig::default().max_pending);
                }
            }
        }
        let before_flush = execs.len();
        asm.flush(&mut |e| execs.push(Got::of(e)));
        assert_eq!(asm.pending(), 0);
        Replay {
            execs,
            before_flush,
            errors,
            stats: asm.stats(),
        }
    }

    fn replay_fixture(name: &str) -> Replay {
        replay(&fixture(name))
    }

    fn replay_shared(name: &str) -> Option<Replay> {
        shared_fixture(name).map(|text| replay(&text))
    }

    /// The raw value of `key` on the first line of `text` that holds `marker`.
    fn raw_field(text: &[u8], marker: &str, key: &[u8]) -> Vec<u8> {
        let line = text
            .split(|&b| b == b'\n')
            .find(|l| l.windows(marker.len()).any(|w| w == marker.as_bytes()))
            .expect("marker line");
        let (_, _, body) = parse_log_line(line).unwrap().unwrap();
        fields(body)
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.to_vec())
            .expect("field")
    }

    fn decoded(raw: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        assert!(
            decode_into(raw, &mut out),
            "{}",
            String::from_utf8_lossy(raw)
        );
        out
    }

    /// A missing copyleft sample is a skip on a developer's clone...
    #[test]
    fn a_missing_shared_fixture_is_skipped_outside_ci() {
        let empty = tempfile::tempdir().unwrap();
        let gone = fixtures::shared_in(empty.path(), "linux-audit/x.log", false);
        assert!(gone.unwrap_err().contains("x.log is absent"));
        let here = fixtures::shared_in(Path::new(fixtures::DATA), "linux-audit", false);
        assert_eq!(here, Ok(Path::new(fixtures::DATA).join("linux-audit")));
    }

    /// ...and a failure under CI=true.
    #[test]
    #[should_panic(expected = "CI=true")]
    fn a_missing_shared_fixture_fails_under_ci() {
        let empty = tempfile::tempdir().unwrap();
        let _ = fixtures::shared_in(empty.path(), "linux-audit/x.log", true);
    }

    #[test]
    fn every_fixture_parses_and_assembles_without_panic() {
        // The vendored samples always; the copyleft ones when ../shared is here.
        let mut dirs = vec![fixtures::vendored("linux-audit")];
        dirs.extend(fixtures::shared("linux-audit"));
        let mut files: Vec<PathBuf> = dirs
            .iter()
            .flat_map(|dir| std::fs::read_dir(dir).unwrap())
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "log"))
            .collect();
        files.sort();
        assert!(files.len() >= 6, "{files:?}");
        let mut scratch = Vec::new();
        for path in &files {
            let text = std::fs::read(path).unwrap();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let run = replay(&text);
            // The netlink form is the log form without its `type=… msg=` prefix.
            for line in text.split(|&b| b == b'\n') {
                let Some(Ok((_, header, body))) = parse_log_line(line) else {
                    continue;
                };
                let at = line.windows(6).position(|w| w == b"audit(").unwrap();
                let (h2, b2) = split_payload(&line[at..]).unwrap();
                assert_eq!((h2, b2), (header, body), "{name}");
                for (_, value) in fields(body) {
                    decode_into(value, &mut scratch);
                }
            }
            let expected_errors = usize::from(name == "golibaudit-rhel7-mixed-hexarg.log");
            assert_eq!(
                run.errors.len(),
                expected_errors,
                "{name}: {:?}",
                run.errors
            );
            eprintln!(
                "{name}: {} execs ({} incomplete), {:?}",
                run.execs.len(),
                run.execs.iter().filter(|g| g.incomplete).count(),
                run.stats
            );
        }
    }

    #[test]
    fn ubuntu_1610_uname_with_eoe() {
        let run = replay_fixture("golibaudit-ubuntu1610-execve-eoe.log");
        assert_eq!(run.execs.len(), 1);
        assert_eq!(run.before_flush, 1, "completed by its EOE");
        let g = &run.execs[0];
        assert_eq!((g.sec, g.msec, g.serial), (1_492_752_522, 985, 8972));
        assert_eq!(g.argv_text(), ["uname", "-a"]);
        assert_eq!(g.argc, Some(2));
        assert_eq!(g.cwd_text().as_deref(), Some("/home/andrew_kroh"));
        assert_eq!((g.pid, g.ppid), (10043, 10027));
        assert_eq!(
            (g.uid, g.euid, g.auid),
            (Some(1001), Some(1001), Some(1001))
        );
        assert_eq!((g.gid, g.egid), (Some(1002), Some(1002)));
        assert_eq!(g.exe_text().as_deref(), Some("/bin/uname"));
        assert_eq!((g.arch, g.syscall), (0xc000_003e, 59));
        assert!(!g.incomplete);
        assert_eq!(classify(g.exe.as_deref().unwrap(), &g.argv), None);
    }

    fn assert_rhel7_execs(run: &Replay) {
        assert_eq!(run.before_flush, 0, "no EOE: nothing until the flush");
        let summary: Vec<(u64, i64, Vec<String>)> = run
            .execs
            .iter()
            .map(|g| (g.serial, g.pid, g.argv_text()))
            .collect();
        assert_eq!(
            summary,
            [
                (
                    59,
                    13393,
                    vec!["grep".into(), "--color=auto".into(), "mapping".into()]
                ),
                (60, 13392, vec!["cat".into(), "securitybeat".into()]),
            ]
        );
        for g in &run.execs {
            assert!(!g.incomplete, "SYSCALL and every argument arrived: {g:?}");
            assert_eq!(g.cwd_text().as_deref(), Some("/home/andrew_kroh"));
            assert_eq!(
                (g.uid, g.gid, g.auid, g.ppid),
                (Some(1000), Some(1001), Some(1000), 12041)
            );
        }
        assert_eq!(run.execs[0].exe_text().as_deref(), Some("/usr/bin/grep"));
        assert_eq!(run.execs[1].exe_text().as_deref(), Some("/usr/bin/cat"));
        // connect (failed), connect, accept4: other rules' syscalls.
        assert_eq!(
            (run.stats.non_exec, run.stats.failed_exec, run.stats.emitted),
            (3, 0, 2)
        );
    }

    #[test]
    fn rhel7_sequence_without_eoe_is_emitted_by_flush() {
        let run = replay_fixture("golibaudit-rhel7-execve-sequence.log");
        assert_rhel7_execs(&run);
    }

    #[test]
    fn rhel7_out_of_order_gives_the_same_execs() {
        let ordered = replay_fixture("golibaudit-rhel7-execve-sequence.log");
        let shuffled = replay_fixture("golibaudit-rhel7-execve-out-of-order.log");
        assert_rhel7_execs(&shuffled);
        assert_eq!(shuffled.execs, ordered.execs);
    }

    #[test]
    fn rhel7_hex_exe_and_selinux_fields() {
        let text = fixture("golibaudit-rhel7-execve-sequence.log");
        let exe = raw_field(&text, "audit(1492037289.295:58)", b"exe");
        assert_eq!(decoded(&exe), b"/usr/bin/python2.7;58d1ccfb (deleted)");
        // `:  cwd=` (two spaces) reads like one.
        let cwd = raw_field(&text, "type=CWD msg=audit(1492037291.036:59)", b"cwd");
        assert_eq!(decoded(&cwd), b"/home/andrew_kroh");
    }

    #[test]
    fn rhel7_mixed_records() {
        let text = fixture("golibaudit-rhel7-mixed-hexarg.log");
        let run = replay(&text);
        assert_eq!(run.errors.len(), 1);
        assert_eq!(
            run.errors[0].1,
            RecordError::NoHeader,
            "UNKNOWN[1329] msg=?"
        );
        // Four EXECVE records without their SYSCALL.
        let argv0: Vec<String> = run.execs.iter().map(|g| g.argv_text()[0].clone()).collect();
        assert_eq!(argv0, ["auditctl", "cat", "grep", "jq"]);
        assert!(run.execs.iter().all(|g| g.incomplete && g.pid == 0));
        // auditctl's PATH and CWD share its id: exe falls back on PATH item 0.
        let auditctl = &run.execs[0];
        assert_eq!(auditctl.argc, Some(7));
        assert_eq!(auditctl.argv.len(), 7);
        assert_eq!(auditctl.argv_text()[4], "arch=b32");
        assert_eq!(auditctl.exe_text().as_deref(), Some("/sbin/auditctl"));
        assert_eq!(auditctl.cwd_text().as_deref(), Some("/home/andrew_kroh"));
        // jq's document argument was hex: newlines and spaces come back.
        let doc = &run.execs[3].argv[2];
        assert!(doc.starts_with(b"{\n        \"dev\": \"08:01\",\n"));
        assert!(doc.windows(21).any(|w| w == b"\"name\": \"/usr/bin/jq\""));
        // The hex cwd.
        let cwd = raw_field(&text, "audit(1500661699.656:1208725)", b"cwd");
        assert_eq!(decoded(&cwd), b"/tmp/a b c");
    }

    #[test]
    fn hex_cwd_record_in_an_exec() {
        let text = fixture("golibaudit-rhel7-mixed-hexarg.log");
        // The sample's lone CWD record, completed by records written here.
        let cwd_line = text
            .split(|&b| b == b'\n')
            .find(|l| l.starts_with(b"type=CWD msg=audit(1500661699.656:1208725)"))
            .unwrap();
        let own = [
        &b"type=SYSCALL msg=audit(1500661699.656:1208725): arch=c000003e syscall=59 success=yes exit=0 ppid=1 pid=2 uid=0 exe=\"/usr/bin/ls\""[..],
        b"type=EXECVE msg=audit(1500661699.656:1208725): argc=1 a0=\"ls\"",
        cwd_line,
        b"type=EOE msg=audit(1500661699.656:1208725):",
    ];
        let run = replay(&own.join(&b'\n'));
        assert_eq!(run.execs.len(), 1);
        assert_eq!(run.execs[0].cwd_text().as_deref(), Some("/tmp/a b c"));
        assert!(!run.execs[0].incomplete);
    }

    #[test]
    fn ubuntu_1704_stray_quote_and_hex_key() {
        let text = fixture("golibaudit-ubuntu1704-execve-multikey.log");
        let run = replay(&text);
        assert_eq!(run.execs.len(), 1);
        let g = &run.execs[0];
        assert_eq!(g.argv_text(), ["docker", "inspect", "721df12151a7"]);
        assert_eq!((g.uid, g.euid, g.auid), (Some(0), Some(0), Some(1002)));
        assert_eq!(g.pid, 5821);
        assert!(!g.incomplete);
        let key = raw_field(&text, "type=SYSCALL", b"key");
        assert_eq!(decoded(&key), b"exec\x0164bit");
    }

    #[test]
    fn ubuntu_2004_setuid_exec_without_cwd() {
        let run = replay_fixture("golibaudit-ubuntu2004-setuid-exec.log");
        assert_eq!(run.execs.len(), 1);
        let g = &run.execs[0];
        assert_eq!(g.argv_text(), ["dash", "-p"]);
        assert_eq!((g.uid, g.euid), (Some(1005), Some(0)));
        assert_eq!((g.gid, g.egid), (Some(1006), Some(0)));
        assert_eq!(g.auid, Some(1005));
        assert_eq!(g.cwd, None);
        assert_eq!(g.exe_text().as_deref(), Some("/usr/bin/dash"));
        assert!(!g.incomplete, "a missing CWD does not make it incomplete");
    }

    #[test]
    fn node_prefix_and_enriched_fields() {
        let Some(run) = replay_shared("laurel-execve-enriched-node.log") else {
            return;
        };
        assert_eq!(run.execs.len(), 1);
        assert_eq!(run.before_flush, 1);
        let g = &run.execs[0];
        assert_eq!(g.argv_text(), ["whoami"]);
        assert_eq!(g.exe_text().as_deref(), Some("/usr/bin/whoami"));
        assert_eq!(g.cwd_text().as_deref(), Some("/home/user/tmp"));
        assert_eq!((g.pid, g.ppid), (10884, 10883));
        assert_eq!((g.uid, g.auid), (Some(0), Some(1000)));
        // The ENRICHED part (SYSCALL=execve, UID="root") is not read as fields.
        assert_eq!((g.arch, g.syscall), (0xc000_003e, 59));
        assert!(!g.incomplete);
    }

    #[test]
    fn hex_argument_with_quotes_and_dollars() {
        let Some(text) = shared_fixture("laurel-execve-hex-arg-perl.log") else {
            return;
        };
        let run = replay(&text);
        assert_eq!(run.execs.len(), 1);
        let g = &run.execs[0];
        assert_eq!(g.argv.len(), 3);
        assert_eq!(&g.argv_text()[..2], ["perl", "-e"]);
        let script = &g.argv[2];
        // Hex on the wire; the decoded script has what forced hex.
        let raw = raw_field(&text, "type=EXECVE", b"a2");
        assert_eq!(script.len() * 2, raw.len());
        for byte in [b' ', b'"', b'$', b';'] {
            assert!(script.contains(&byte), "{}", byte as char);
        }
        assert!(script.starts_with(b"use Socket;"));
        // PROCTITLE holds the same argv, NUL-joined and cut short.
        let title = decoded(&raw_field(&text, "type=PROCTITLE", b"proctitle"));
        let mut joined = b"perl\0-e\0".to_vec();
        joined.extend_from_slice(script);
        assert!(title.len() < joined.len());
        assert!(joined.starts_with(&title));
        assert_eq!((g.uid, g.auid), (Some(0), Some(1000)));
        assert!(!g.incomplete);
    }

    #[test]
    fn split_argument_is_joined() {
        let Some(text) = shared_fixture("laurel-execve-split-arg.log") else {
            return;
        };
        let run = replay(&text);
        assert_eq!(run.execs.len(), 1);
        let g = &run.execs[0];
        assert_eq!(g.argc, Some(2));
        assert_eq!(g.argv.len(), 2);
        assert_eq!(g.argv_text()[0], "/bin/echo");
        let arg = &g.argv[1];
        assert_eq!(arg.len(), 8192);
        assert!(arg.iter().all(u8::is_ascii_lowercase));
        // a1_len=16384 counts hex digits (the kernel doubles the length of a
        // hex-encoded argument), and the three pieces hold 16384 of them: the
        // argument is whole, so the exec is complete.
        let want: usize = String::from_utf8(raw_field(&text, "a1_len=", b"a1_len"))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(want, 16384);
        assert_eq!(arg.len() * 2, want);
        assert!(!g.incomplete);
        assert_eq!(g.cwd_text().as_deref(), Some("/tmp"));
    }

    #[test]
    fn split_argument_missing_its_last_record_is_incomplete() {
        let Some(text) = shared_fixture("laurel-execve-split-arg.log") else {
            return;
        };
        let cut: Vec<&[u8]> = text
            .split(|&b| b == b'\n')
            .filter(|l| !l.windows(6).any(|w| w == b" a1[2]"))
            .collect();
        let run = replay(&cut.join(&b'\n'));
        assert_eq!(run.execs.len(), 1);
        assert!(run.execs[0].incomplete);
        assert!(run.execs[0].argv[1].len() < 8192);
    }

    #[test]
    fn shell_trace_with_comments() {
        let Some(run) = replay_shared("laurel-shell-proc-trace.log") else {
            return;
        };
        assert!(run.errors.is_empty());
        assert_eq!(run.before_flush, 4);
        let summary: Vec<(i64, i64, String)> = run
            .execs
            .iter()
            .map(|g| (g.pid, g.ppid, g.argv_text().join(" ")))
            .collect();
        assert_eq!(
            summary,
            [
                (
                    71505,
                    71432,
                    "/bin/sh ./src/testdata/double-fork/test-script.sh".into()
                ),
                (71507, 71505, "grep baz".into()),
                (71508, 71506, "/bin/echo foo".into()),
                (71509, 71506, "/bin/sed -e s/foo/bar/".into()),
            ]
        );
        assert_eq!(run.execs[0].exe_text().as_deref(), Some("/usr/bin/dash"));
        assert!(run.execs.iter().all(|g| !g.incomplete));
        assert_eq!(run.stats.non_exec, 5, "the clones");
    }

    #[test]
    fn large_argc_keeps_argument_order() {
        let Some(run) = replay_shared("audit-userspace-large-argc.log") else {
            return;
        };
        assert_eq!(run.execs.len(), 2);
        let (ld, m4) = (&run.execs[0], &run.execs[1]);
        assert_eq!((ld.argc, ld.argv.len()), (Some(48), 48));
        assert_eq!((m4.argc, m4.argv.len()), (Some(216), 216));
        assert!(!ld.incomplete && !m4.incomplete);
        let argv = m4.argv_text();
        assert_eq!(argv[0], "/usr/bin/m4");
        // a10 follows a9 (not a1, as a sorted map of names would put it).
        assert_eq!(argv[9], "--trace=AC_CONFIG_MACRO_DIR_TRACE");
        assert_eq!(argv[10], "--trace=AC_DEFUN");
        assert_eq!(argv[215], "configure.ac");
        assert_eq!(
            m4.cwd_text().as_deref(),
            Some("/usr/src/RPM/BUILD/zlib-1.2.11-alt1/contrib/minizip")
        );
    }

    // ---- property tests ----

    /// Text fragments that steer random bodies into the parsers' branches.
    const PIECES: &[&str] = &[
        " ",
        "  ",
        "=",
        "\"",
        "'",
        "\x1d",
        "argc=3",
        "argc=4294967296",
        "a0=\"kcc\"",
        "a1=\"copy_cred_cache\"",
        "a2=4B434D3A31",
        "a1=",
        "a1_len=8",
        "a1_len=x",
        "a1[0]=4142",
        "a1[1]=\"cd\"",
        "a1[7]=zz",
        "a262143=\"x\"",
        "a99999999999=\"y\"",
        "arch=c000003e",
        "arch=c00000b7",
        "arch=ffffffffff",
        "syscall=59",
        "syscall=221",
        "syscall=257",
        "syscall=-1",
        "success=yes",
        "success=no",
        "pid=12",
        "ppid=-3",
        "uid=4294967295",
        "exe=\"/usr/bin/kcc\"",
        "exe=(null)",
        "item=0",
        "item=1",
        "name=2F62696E2F6B6363",
        "cwd=\"/tmp\"",
        "cwd=?",
        "proctitle=6B636300636F70795F637265645F6361636865",
        "proctitle=\"kcc\"",
        "subj==unconfined",
    ];

    fn body_strategy() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..120),
            proptest::collection::vec(proptest::sample::select(PIECES), 0..12)
                .prop_map(|parts| parts.join(" ").into_bytes()),
        ]
    }

    #[derive(Debug, Clone)]
    enum Step {
        Push {
            rtype: u16,
            serial: u64,
            body: Vec<u8>,
        },
        Expire(u64),
        Flush,
    }

    fn step_strategy() -> impl Strategy<Value = Step> {
        let rtype = proptest::sample::select(vec![
            AUDIT_SYSCALL,
            AUDIT_EXECVE,
            AUDIT_EXECVE,
            AUDIT_CWD,
            AUDIT_PATH,
            AUDIT_PROCTITLE,
            AUDIT_EOE,
            1321,
            1306,
            1123,
            0,
            u16::MAX,
        ]);
        prop_oneof![
            8 => (rtype, 0u64..12, body_strategy())
                .prop_map(|(rtype, serial, body)| Step::Push { rtype, serial, body }),
            1 => (0u64..2000).prop_map(Step::Expire),
            1 => Just(Step::Flush),
        ]
    }

    fn touch(e: &AuditExec) -> usize {
        let _ = classify(e.exe().unwrap_or_default(), e.argv());
        e.argv().len() + e.cwd().map_or(0, <[u8]>::len) + e.exe().map_or(0, <[u8]>::len)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = split_payload(&bytes);
            let _ = parse_log_line(&bytes);
            let mut out = Vec::new();
            for (key, value) in fields(&bytes) {
                prop_assert!(key.len() + value.len() <= bytes.len());
                decode_into(value, &mut out);
            }
            decode_into(&bytes, &mut out);
        }

        #[test]
        fn structured_text_never_panics(body in body_strategy(), serial in any::<u64>()) {
            let payload = [format!("audit(1700000000.001:{serial}): ").as_bytes(), &body].concat();
            let (header, parsed) = split_payload(&payload).unwrap();
            prop_assert_eq!(header.serial, serial);
            let line = [b"node=n type=EXECVE msg=".as_slice(), &payload].concat();
            let (_, _, from_log) = parse_log_line(&line).unwrap().unwrap();
            prop_assert_eq!(from_log, parsed);
            let mut out = Vec::new();
            for (_, value) in fields(parsed) {
                decode_into(value, &mut out);
            }
        }

        #[test]
        fn assembler_never_panics_and_stays_bounded(
            max_pending in 1usize..6,
            steps in proptest::collection::vec(step_strategy(), 0..60),
        ) {
            let mut asm = Assembler::new(AssemblerConfig {
                timeout: Duration::from_millis(500),
                max_pending,
                ..AssemblerConfig::default()
            });
            let t0 = Instant::now();
            let mut clock = 0u64;
            let mut emitted = 0u64;
            let mut seen = 0usize;
            for step in steps {
                let mut emit = |e: &AuditExec| {
                    emitted += 1;
                    seen += touch(e);
                };
                match step {
                    Step::Push { rtype, serial, body } => {
                        clock += 7;
                        let header = kerberos_cache_access::sources::linux_audit::record::Header {
                            sec: 1_700_000_000,
                            msec: 1,
                            serial,
                        };
                        asm.push(rtype, header, &body, t0 + Duration::from_millis(clock), &mut emit);
                    }
                    Step::Expire(ms) => {
                        clock += ms;
                        asm.expire(t0 + Duration::from_millis(clock), &mut emit);
                    }
                    Step::Flush => asm.flush(&mut emit),
                }
                prop_assert!(asm.pending() <= max_pending);
            }
            asm.flush(&mut |e| {
                emitted += 1;
                seen += touch(e);
            });
            prop_assert_eq!(asm.pending(), 0);
            let stats = asm.stats();
            prop_assert_eq!(stats.emitted, emitted);
            prop_assert!(stats.incomplete <= stats.emitted);
            let _ = seen;
        }
    }
}
