//! The classifier: decides whether an exec touches Kerberos credential caches
//! and, if so, what it does.
//!
//! It is pure and works on borrowed bytes, so the ingestion hot path can reject
//! the vast majority of execs (everything that is not a Kerberos tool and has
//! no credential-cache argument) without allocating.
//!
//! This is the rule set of Elastic's "Kerberos Cached Credentials Dumping"
//! (`kcc` with an argument equal to `copy_cred_cache`, case-insensitive), plus
//! tool identification. It is table-driven so that sub-command prefixes,
//! renamed copies and related techniques can be added as rows.

/// The outcome for an exec that is worth a row.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Classification {
    /// Kerberos tool identity, e.g. "kcc" or "klist"; "" if none.
    pub tool: &'static str,
    /// The operation, e.g. the kcc sub-command; "" if unknown.
    pub action: &'static str,
    /// The credential cache named as the target, e.g. "FILE:/tmp/x".
    pub ccache: String,
    /// The detection class; "" when benign.
    pub indicator: &'static str,
    /// MITRE ATT&CK ids for the indicator, comma-separated.
    pub technique: &'static str,
}

/// Indicator for Elastic's rule: kcc copying tickets out of a cache.
pub const CREDENTIAL_CACHE_COPY: &str = "credential_cache_copy";
/// The rule's MITRE mapping, kept exactly as Elastic has it.
pub const CREDENTIAL_CACHE_COPY_TECHNIQUE: &str = "T1003,T1558,T1558.003,T1558.005";

/// Executable names that are Kerberos credential-cache tools. On macOS,
/// klist, kswitch and friends are symlinks to kcc, which dispatches on argv[0].
const TOOLS: &[&str] = &[
    "kcc", "klist", "kswitch", "kinit", "kdestroy", "kgetcred", "kvno", "ktutil", "kdeltkt",
    "kcpytkt", "bifrost",
];

/// argv[0] names kcc dispatches to another command.
const KCC_ALIASES: &[&str] = &[
    "kinit", "klist", "kswitch", "kgetcred", "kvno", "kdeltkt", "kdestroy", "kcpytkt",
];

/// kcc sub-commands (Apple's kcc command set), matched exactly here.
const KCC_COMMANDS: &[&str] = &[
    "klist",
    "list",
    "kgetcred",
    "kswitch",
    "switch",
    "kvno",
    "kdc",
    "copy_cred_cache",
    "dump-credentials",
    "help",
];

/// Arguments that name a credential-cache operation even when the executable
/// is not a known tool (e.g. a renamed copy): such execs are kept as rows so
/// that the pack and analysts can see them.
const CACHE_KEYWORDS: &[&str] = &["copy_cred_cache", "dump-credentials"];

/// The last path component of `path` (the whole slice if it has no '/').
pub fn basename(path: &[u8]) -> &[u8] {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => &path[i + 1..],
        None => path,
    }
}

/// The entry of `table` equal to `name`, ignoring ASCII case (macOS volumes are
/// case-insensitive by default, so /usr/bin/KCC runs kcc).
fn lookup(table: &[&'static str], name: &[u8]) -> Option<&'static str> {
    table
        .iter()
        .copied()
        .find(|t| t.as_bytes().eq_ignore_ascii_case(name))
}

fn is(name: &[u8], want: &str) -> bool {
    name.eq_ignore_ascii_case(want.as_bytes())
}

/// Whether a process name is a Kerberos tool's: the snapshot's cheap
/// pre-filter, before it reads a process in full.
pub fn is_tool_name(name: &[u8]) -> bool {
    lookup(TOOLS, name).is_some()
}

/// The tool identity, from the executable's basename and argv[0].
fn tool_of(path_name: &[u8], argv0_name: &[u8]) -> &'static str {
    match lookup(TOOLS, path_name) {
        // kcc run under an alias's argv[0] behaves as that alias.
        Some("kcc") => lookup(KCC_ALIASES, argv0_name).unwrap_or("kcc"),
        Some(tool) => tool,
        None => lookup(TOOLS, argv0_name).unwrap_or(""),
    }
}

/// Prefixes a bare path with FILE:, as kcc does with a cache name that has no
/// type.
fn cache_name(arg: &[u8]) -> String {
    let text = crate::row::bytes_to_text(arg);
    let has_type = match text.find(':') {
        Some(i) => i > 0 && text[..i].bytes().all(|b| b.is_ascii_alphanumeric()),
        None => false,
    };
    if has_type {
        text
    } else {
        format!("FILE:{text}")
    }
}

/// Classifies one exec. Returns `None` when it has nothing to do with Kerberos
/// credential caches; this path does not allocate.
pub fn classify<A: AsRef<[u8]>>(path: &[u8], argv: &[A]) -> Option<Classification> {
    let path_name = basename(path);
    let argv0_name = argv.first().map_or(&[][..], |a| basename(a.as_ref()));
    let args = argv.get(1..).unwrap_or(&[]);

    let tool = tool_of(path_name, argv0_name);
    let has_keyword = args
        .iter()
        .any(|a| CACHE_KEYWORDS.iter().any(|k| is(a.as_ref(), k)));
    if tool.is_empty() && !has_keyword {
        return None;
    }

    let mut out = Classification {
        tool,
        ..Classification::default()
    };

    if tool == "kcc" {
        // Global options come before the sub-command.
        let mut operands = args
            .iter()
            .map(AsRef::as_ref)
            .skip_while(|a| a.starts_with(b"-"));
        if let Some(command) = operands.next() {
            out.action = lookup(KCC_COMMANDS, command).unwrap_or("");
            if out.action == "copy_cred_cache" {
                // copy_cred_cache [options] [source] destination
                let caches: Vec<&[u8]> = operands.filter(|a| !a.starts_with(b"-")).collect();
                if let Some(dest) = caches.last() {
                    out.ccache = cache_name(dest);
                }
            }
        }
    } else if KCC_ALIASES.contains(&tool) {
        out.action = tool;
    }

    // Elastic's rule: process.name (or argv[0]) is kcc, and some argument is
    // copy_cred_cache, case-insensitive.
    let named_kcc = is(path_name, "kcc") || is(argv0_name, "kcc");
    if named_kcc && args.iter().any(|a| is(a.as_ref(), "copy_cred_cache")) {
        out.indicator = CREDENTIAL_CACHE_COPY;
        out.technique = CREDENTIAL_CACHE_COPY_TECHNIQUE;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(path: &str, argv: &[&str]) -> Option<Classification> {
        classify(path.as_bytes(), argv)
    }

    #[test]
    fn elastic_rule_positive() {
        let c = run("/tmp/kcc", &["/tmp/kcc", "copy_cred_cache"]).unwrap();
        assert_eq!(c.tool, "kcc");
        assert_eq!(c.action, "copy_cred_cache");
        assert_eq!(c.indicator, CREDENTIAL_CACHE_COPY);
        assert_eq!(c.technique, "T1003,T1558,T1558.003,T1558.005");
    }

    #[test]
    fn argument_is_case_insensitive() {
        let c = run("/usr/bin/kcc", &["kcc", "COPY_Cred_Cache", "/tmp/a.ccache"]).unwrap();
        assert_eq!(c.indicator, CREDENTIAL_CACHE_COPY);
        assert_eq!(c.ccache, "FILE:/tmp/a.ccache");
    }

    #[test]
    fn two_operands_name_source_then_destination() {
        let c = run(
            "/usr/bin/kcc",
            &["kcc", "copy_cred_cache", "API:x", "KCM:501"],
        )
        .unwrap();
        assert_eq!(c.ccache, "KCM:501");
    }

    #[test]
    fn argv0_kcc_counts_as_the_name() {
        let c = run("/opt/x/renamed", &["kcc", "copy_cred_cache"]).unwrap();
        assert_eq!(c.indicator, CREDENTIAL_CACHE_COPY);
    }

    #[test]
    fn near_misses_are_not_the_indicator() {
        let c = run("/usr/bin/kcc", &["kcc", "list"]).unwrap();
        assert_eq!((c.tool, c.action, c.indicator), ("kcc", "list", ""));
        let c = run("/tmp/notkcc", &["notkcc", "copy_cred_cache"]).unwrap();
        assert_eq!((c.tool, c.indicator), ("", ""));
        let c = run("/usr/bin/kcc", &["kcc", "copy_cred_cachex"]).unwrap();
        assert_eq!((c.tool, c.action, c.indicator), ("kcc", "", ""));
    }

    #[test]
    fn aliases_dispatch_on_argv0() {
        let c = run("/usr/bin/kcc", &["klist", "-v"]).unwrap();
        assert_eq!((c.tool, c.action, c.indicator), ("klist", "klist", ""));
        let c = run("/usr/bin/kswitch", &["kswitch", "-p", "alice"]).unwrap();
        assert_eq!(c.tool, "kswitch");
    }

    #[test]
    fn unrelated_execs_are_rejected() {
        assert_eq!(run("/bin/ls", &["ls", "-l"]), None);
        assert_eq!(run("/bin/true", &[] as &[&str]), None);
        assert_eq!(run("", &[""]), None);
    }

    #[test]
    fn non_utf8_arguments_do_not_break_classification() {
        let argv: [&[u8]; 3] = [b"kcc", b"copy_cred_cache", b"/tmp/\xff.ccache"];
        let c = classify(b"/usr/bin/kcc", &argv).unwrap();
        assert_eq!(c.indicator, CREDENTIAL_CACHE_COPY);
        assert_eq!(c.ccache, "FILE:/tmp/\\xff.ccache");
    }
}
