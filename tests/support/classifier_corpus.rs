//! tests/data/classifier_corpus.tsv read into cases (the format is
//! described at the top of that file): for the classifier's corpus test and
//! the eslogger fast-reader test, which renders each case as an exec line.
//! Include with `#[path = "support/classifier_corpus.rs"] mod corpus;`.
#![allow(dead_code)]

const CORPUS: &str = include_str!("../data/classifier_corpus.tsv");

/// One corpus line.
pub struct Case {
    pub line: usize,
    pub name: String,
    pub path: Vec<u8>,
    pub argv: Vec<Vec<u8>>,
    pub signing_id: String,
    pub kcc_image: Option<bool>,
    pub uid: Option<i64>,
    pub euid: Option<i64>,
    pub krb5ccname: Option<Vec<u8>>,
    pub identity_given: bool,
    /// None: the exec must be dropped.
    pub expect: Option<Expect>,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Expect {
    pub tool: String,
    pub action: String,
    pub ccache: String,
    pub source: String,
    pub keytab: String,
    pub indicator: String,
    pub needs_identity: bool,
}

/// `\xNN` escapes to bytes; everything else as written.
pub fn unescape(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(b"\\x") && i + 4 <= bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 2..i + 4]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

fn dash(field: &str) -> String {
    if field == "-" {
        String::new()
    } else {
        field.to_string()
    }
}

pub fn corpus() -> Vec<Case> {
    let mut cases = Vec::new();
    for (n, line) in CORPUS.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 11, "line {}: 11 tab-separated fields", n + 1);
        let argv = if f[2].is_empty() {
            Vec::new()
        } else {
            f[2].split(' ')
                .map(|a| if a == "\"\"" { Vec::new() } else { unescape(a) })
                .collect()
        };
        let mut signing_id = String::new();
        let mut kcc_image = None;
        let (mut uid, mut euid, mut krb5ccname) = (None, None, None);
        if f[3] != "-" {
            for part in f[3].split(',') {
                match part.split_once('=') {
                    Some(("sid", v)) => signing_id = v.to_string(),
                    Some(("image", "yes")) => kcc_image = Some(true),
                    Some(("image", "no")) => kcc_image = Some(false),
                    Some(("uid", v)) => uid = Some(v.parse().unwrap()),
                    Some(("euid", v)) => euid = Some(v.parse().unwrap()),
                    Some(("env", v)) => krb5ccname = Some(unescape(v)),
                    _ => panic!("line {}: bad identity {part:?}", n + 1),
                }
            }
        }
        // `uid=N` alone means real and effective uid N.
        euid = euid.or(uid);
        let expect = (f[4] != "NONE").then(|| Expect {
            tool: dash(f[4]),
            action: dash(f[5]),
            ccache: dash(f[6]),
            source: dash(f[7]),
            keytab: dash(f[8]),
            indicator: dash(f[9]),
            needs_identity: match f[10] {
                "y" => true,
                "-" => false,
                other => panic!("line {}: needs is y or -, not {other:?}", n + 1),
            },
        });
        cases.push(Case {
            line: n + 1,
            name: f[0].to_string(),
            path: unescape(f[1]),
            argv,
            signing_id,
            kcc_image,
            uid,
            euid,
            krb5ccname,
            identity_given: f[3] != "-",
            expect,
        });
    }
    cases
}
