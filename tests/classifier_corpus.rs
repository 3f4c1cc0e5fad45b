//! The classifier against tests/data/classifier_corpus.tsv (the format is
//! described at the top of that file), and property tests that it never
//! panics, whatever argv it is given.

use kerberos_cache_access::classify::{
    classify, classify_with, needs_engine, Classification, Identity, Indicator,
    CREDENTIAL_CACHE_COPY, CREDENTIAL_CACHE_COPY_TECHNIQUE,
};
use proptest::prelude::*;

/// Counts this thread's allocations while armed (other test threads do not
/// interfere).
#[path = "support/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::allocations_during;

#[path = "support/classifier_corpus.rs"]
mod corpus;
use corpus::{corpus, Case, Expect};

const INDICATORS_DOC: &str = include_str!("../docs/indicators.md");

impl Expect {
    fn of(c: &Classification) -> Expect {
        Expect {
            tool: c.tool.to_string(),
            action: c.action.to_string(),
            ccache: c.ccache.clone(),
            source: c.source_ccache.clone(),
            keytab: c.keytab.clone(),
            indicator: c.indicator(),
            needs_identity: c.needs_identity,
        }
    }
}

fn identity_of(case: &Case) -> Identity<'_> {
    Identity {
        signing_id: &case.signing_id,
        kcc_image: case.kcc_image,
        uid: case.uid,
        euid: case.euid,
        krb5ccname: case.krb5ccname.as_deref(),
    }
}

/// The technique column a set of indicator names must have.
fn techniques_of(indicator: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for name in indicator.split(',').filter(|n| !n.is_empty()) {
        let i = Indicator::from_name(name).unwrap_or_else(|| panic!("unknown {name}"));
        for t in i.technique().split(',') {
            if !out.contains(&t) {
                out.push(t);
            }
        }
    }
    out.join(",")
}

/// Internal consistency of one classification.
fn check_consistent(c: &Classification) -> Result<(), String> {
    let indicator = c.indicator();
    let technique = c.technique();
    if technique != techniques_of(&indicator) {
        return Err(format!("technique {technique:?} for {indicator:?}"));
    }
    if indicator == CREDENTIAL_CACHE_COPY && technique != CREDENTIAL_CACHE_COPY_TECHNIQUE {
        return Err("Elastic's technique list changed".into());
    }
    Ok(())
}

#[test]
fn corpus_matches() {
    let cases = corpus();
    assert!(cases.len() >= 290, "only {} cases", cases.len());
    let mut names = std::collections::HashSet::new();
    let mut failures = Vec::new();
    for case in &cases {
        assert!(
            names.insert(case.name.as_str()),
            "duplicate case {}",
            case.name
        );
        let identity = identity_of(case);
        let got = classify_with(&case.path, &case.argv, &identity);
        let hot = classify(&case.path, &case.argv);
        let label = format!("line {} {}", case.line, case.name);

        let got_expect = got.as_ref().map(Expect::of);
        if got_expect != case.expect {
            failures.push(format!(
                "{label}:\n    want {:?}\n    got  {:?}",
                case.expect, got_expect
            ));
        }
        if !case.identity_given && got != hot {
            failures.push(format!(
                "{label}: classify and classify_with(UNKNOWN) differ"
            ));
        }
        if let Some(c) = &got {
            if let Err(e) = check_consistent(c) {
                failures.push(format!("{label}: {e}"));
            }
            // The hot path must keep every exec that identity turns into a
            // credential indicator (a rename alone it cannot see). An exec
            // with KRB5CCNAME skips it: the source hands those on whole.
            let credential = c
                .indicators
                .iter()
                .any(|i| i != Indicator::RenamedKerberosTool);
            if credential && hot.is_none() && case.krb5ccname.is_none() {
                failures.push(format!("{label}: the hot path drops it"));
            }
        }
    }
    for f in &failures {
        eprintln!("{f}");
    }
    assert!(
        failures.is_empty(),
        "{} of {} corpus cases failed (listed above)",
        failures.len(),
        cases.len()
    );
}

/// The hot path's promise: an exec it drops costs no allocation, whatever
/// part of the classifier looked at it.
#[test]
fn dropped_execs_do_not_allocate() {
    let cases = corpus();
    let mut checked = 0;
    for case in cases.iter().filter(|c| c.expect.is_none()) {
        let identity = identity_of(case);
        let n = allocations_during(|| {
            let got = classify_with(&case.path, &case.argv, &identity);
            assert!(std::hint::black_box(got).is_none());
        });
        assert_eq!(n, 0, "line {} {} allocated {n} times", case.line, case.name);
        checked += 1;
    }
    assert!(checked >= 15, "{checked} dropped cases");
    assert_eq!(
        allocations_during(|| drop(std::hint::black_box(Vec::<u8>::with_capacity(8)))),
        1,
        "the counter sees allocations"
    );
}

/// Long arguments take the SIMD path of the cache-name scan: dropping them
/// does not allocate either, and names deep inside them are still found.
#[test]
fn long_arguments_are_scanned_without_allocating() {
    let classpath = "/opt/app/lib/a-1.2.3.jar:/opt/app/lib/b_c-4.5.jar:".repeat(80);
    let code = "k".repeat(300) + &"h:H:K".repeat(300);
    let dropped: [(&str, Vec<&str>); 3] = [
        ("/usr/bin/java", vec!["java", "-cp", &classpath, "Main"]),
        ("/usr/bin/python3", vec!["python3", "-c", &code]),
        ("/bin/echo", vec!["echo", &classpath, &code]),
    ];
    for (path, argv) in &dropped {
        let n = allocations_during(|| {
            assert!(std::hint::black_box(classify(path.as_bytes(), argv)).is_none());
        });
        assert_eq!(n, 0, "{path} allocated {n} times");
    }
    let hidden = format!("{code} open('/tmp/krb5cc_1001') {classpath}");
    let c = classify(b"/usr/bin/python3", &["python3", "-c", hidden.as_str()]).unwrap();
    assert_eq!(
        (c.indicator().as_str(), c.ccache.as_str()),
        ("ccache_file_access", "FILE:/tmp/krb5cc_1001")
    );
}

#[test]
fn corpus_covers_every_indicator() {
    let cases = corpus();
    for i in Indicator::ALL {
        if i == Indicator::ForgedKeytabUse {
            // Stateful: the correlator's tests cover it.
            continue;
        }
        assert!(
            cases.iter().any(|c| c
                .expect
                .as_ref()
                .is_some_and(|e| e.indicator.split(',').any(|n| n == i.name()))),
            "no corpus case for {}",
            i.name()
        );
    }
}

#[test]
fn the_indicator_doc_lists_every_indicator_and_technique() {
    for i in Indicator::ALL {
        let row = INDICATORS_DOC
            .lines()
            .find(|l| l.starts_with(&format!("| `{}` |", i.name())))
            .unwrap_or_else(|| panic!("docs/indicators.md has no row for {}", i.name()));
        for t in i.technique().split(',') {
            assert!(row.contains(t), "{}: {t} missing from its row", i.name());
        }
    }
}

#[test]
fn huge_argv_is_handled() {
    let mut argv: Vec<Vec<u8>> = vec![b"kcc".to_vec(), b"c".to_vec()];
    argv.extend((0..200_000).map(|i| format!("-{i}").into_bytes()));
    argv.push(vec![b'x'; 4 << 20]);
    let c = classify(b"/usr/bin/kcc", &argv).unwrap();
    assert_eq!(c.action, "copy_cred_cache");
    assert_eq!(c.ccache.len(), "FILE:".len() + (4 << 20));
    // The same bulk under an unknown name is dropped.
    argv[0] = b"ls".to_vec();
    argv[1] = b"-l".to_vec();
    assert_eq!(classify(b"/bin/ls", &argv), None);
    let huge_path = vec![b'/'; 1 << 20];
    assert_eq!(classify(&huge_path, &argv), None);
}

fn identities() -> [Identity<'static>; 4] {
    [
        Identity::UNKNOWN,
        Identity {
            signing_id: "com.apple.kcc",
            ..Identity::UNKNOWN
        },
        Identity {
            kcc_image: Some(true),
            uid: Some(1000),
            euid: Some(1000),
            ..Identity::UNKNOWN
        },
        Identity {
            signing_id: "com.example.x",
            kcc_image: Some(false),
            uid: Some(0),
            euid: Some(0),
            krb5ccname: Some(b"FILE:/tmp/krb5cc_1001"),
        },
    ]
}

fn check_all(path: &[u8], argv: &[Vec<u8>]) -> Result<(), TestCaseError> {
    let hot = classify(path, argv);
    prop_assert_eq!(&hot, &classify_with(path, argv, &Identity::UNKNOWN));
    for id in identities() {
        if let Some(c) = classify_with(path, argv, &id) {
            check_consistent(&c).map_err(TestCaseError::fail)?;
            prop_assert_eq!(c.indicator().is_empty(), c.indicators.is_empty());
        }
    }
    Ok(())
}

/// Words the classifier reacts to, so random argv reaches its deep paths.
const TOKENS: &[&str] = &[
    "kcc",
    "klist",
    "KLIST",
    "kinit",
    "ktutil",
    "bifrost",
    "heimtools",
    "c",
    "co",
    "copy_cred_cache",
    "d",
    "dump-credentials",
    "k",
    "ks",
    "kg",
    "kv",
    "?",
    "-e",
    "-e23",
    "-qe",
    "--enctype",
    "--enctype=rc4-hmac",
    "--enc",
    "rc4-hmac",
    "arcfour-hmac-md5",
    "23",
    "aes256-cts",
    "--",
    "-",
    "-c",
    "-kt",
    "-t",
    "--keytab=",
    "--no-use-keytab",
    "-action",
    "-kerberoast",
    "dump",
    "tickets",
    "ptt",
    "-ticket",
    "add",
    "a",
    "--hex",
    "--hex=no",
    "-H",
    "-k",
    "/tmp/x",
    "FILE:/tmp/y",
    "API:1",
    ":",
    "",
    "/tmp/krb5cc_1000",
    "krb5cc_",
    "/run/user/1001/krb5cc",
    "x.ccache",
    ".kirbi",
    "ccache_X",
    "FILE:",
    "FILE:/tmp/krb5cc_1001",
    "KCM:0",
    "KEYRING:persistent:",
    "/lib64/ld-linux-x86-64.so.2",
    "--library-path",
    "--argv0",
    "/proc/self/fd/3",
    "python3",
    "-W",
    "getTGT.py",
    "impacket-secretsdump",
    "mono",
    "Rubeus.exe",
    "kerbrute",
];

const PATHS: &[&str] = &[
    "/usr/bin/kcc",
    "/usr/bin/KCC",
    "/tmp/x",
    "/usr/bin/klist",
    "/usr/bin/kinit",
    "/usr/bin/ktutil",
    "/tmp/bifrost",
    "/bin/ls",
    "",
    "/",
    "/lib64/ld-linux-x86-64.so.2",
    "/memfd:kcc (deleted)",
    "/dev/shm/x",
    "<too_long>",
    "/usr/bin/python3",
];

fn token() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => prop::sample::select(TOKENS).prop_map(|t| t.as_bytes().to_vec()),
        1 => prop::collection::vec(any::<u8>(), 0..12),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn never_panics_on_arbitrary_bytes(
        path in prop::collection::vec(any::<u8>(), 0..64),
        argv in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..48), 0..16),
    ) {
        check_all(&path, &argv)?;
    }

    #[test]
    fn never_panics_on_token_soup(
        path in prop::sample::select(PATHS),
        argv in prop::collection::vec(token(), 0..12),
    ) {
        check_all(path.as_bytes(), &argv)?;
    }

    /// A renamed kcc running a credential command kcc accepts is kept by the
    /// hot path, so the engine gets to check its identity.
    #[test]
    fn hot_path_keeps_valid_renamed_credential_commands(
        which in 0usize..2,
        len in 1usize..20,
        upper in any::<bool>(),
        operands in prop::collection::vec(
            prop::sample::select(&["/tmp/x", "FILE:/tmp/y", "API:1", "KCM:501"][..]), 0..3),
    ) {
        let full = ["copy_cred_cache", "dump-credentials"][which];
        let mut word = full[..len.min(full.len())].to_string();
        if upper {
            word = word.to_uppercase();
        }
        let operands = if which == 1 {
            &operands[..0]
        } else if word.len() < full.len() && operands.is_empty() {
            // kcc needs the destination.
            return Ok(());
        } else {
            &operands[..]
        };
        let mut argv = vec![b"helper".to_vec(), word.into_bytes()];
        argv.extend(operands.iter().map(|o| o.as_bytes().to_vec()));
        let id = Identity { kcc_image: Some(true), ..Identity::UNKNOWN };
        let full_class = classify_with(b"/tmp/helper", &argv, &id).unwrap();
        prop_assert!(full_class.indicators.iter().any(|i| i != Indicator::RenamedKerberosTool));
        let hot = classify(b"/tmp/helper", &argv);
        prop_assert!(hot.is_some_and(|c| c.needs_identity), "{:?}", argv);
    }
}

/// The cheap reject that eslogger's fast reader uses is exactly
/// `KRB5CCNAME set || classify_with(..).is_some()`, case by case.
#[test]
fn needs_engine_is_the_classifier_decision() {
    for case in &corpus() {
        let identity = identity_of(case);
        assert_eq!(
            needs_engine(&case.path, &case.argv, &identity),
            case.krb5ccname.is_some() || classify_with(&case.path, &case.argv, &identity).is_some(),
            "line {} ({})",
            case.line,
            case.name
        );
    }
}
