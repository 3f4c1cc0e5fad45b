//! The classifier: decides whether an exec touches Kerberos credential caches
//! and, if so, what it does.
//!
//! It is pure and works on borrowed bytes, so the ingestion hot path can reject
//! the vast majority of execs without allocating: strings are only built for
//! an exec that is kept.
//!
//! Two entry points:
//! - [`classify`] is the hot-path filter. It knows only the path and argv.
//! - [`classify_with`] adds what the source or the engine knows
//!   ([`Identity`]): the executable's code identity, which finds renamed
//!   copies; the process's uid and euid, which tell another user's cache;
//!   the exec's `KRB5CCNAME`, which tells a replayed ticket.
//!   `classify(p, a)` is `classify_with(p, a, &Identity::UNKNOWN)`.
//!
//! # Tool and sub-command
//!
//! | Step | Rule |
//! | --- | --- |
//! | Loader | Through the dynamic loader (`ld-linux*.so*`, `ld.so`, `ld-musl-*`), the program is its first non-option argument, classified with the arguments after it (`exec_path::through_loader`). |
//! | Name | The path's basename without a memfd's `memfd:` or a ` (deleted)` suffix; argv\[0\]'s when the path is unusable (`<too_long>`, none). |
//! | Program | The code identity if known (signing id `com.apple.kcc`, or the file's sha256 equals the host's kcc), else the basename of the path, else of argv\[0\], looked up in `TOOLS` ignoring ASCII case (macOS volumes are case-insensitive). |
//! | argv\[0\] dispatch | kcc (and upstream's `heimtools`) run as kinit, klist, kswitch, kgetcred, kvno, kdeltkt, kdestroy or kcpytkt when argv\[0\]'s basename is *exactly* that name (kcc compares case-sensitively); otherwise they run as kcc. |
//! | Linked names | macOS installs klist and kswitch as links to kcc: when argv\[0\] is not exactly an alias (e.g. `KLIST`) and the arguments name a kcc credential command, the exec is classified as kcc. |
//! | kcc and ktutil sub-commands | Leading options are skipped (`--` ends them). The word is resolved by Heimdal's rule (`lib/sl/sl.c`): an exact name wins, else a prefix of exactly one command; aliases of one command count once; an ambiguous or unknown word gives no action. Unlike Heimdal, case is ignored, so an odd-case attempt is still seen. `action` is the full name the word spells or abbreviates (`l` → `list`, `c` → `copy_cred_cache`). |
//! | Options | Table-driven per command: short clusters (`-qe23`), values joined or separate, long names by unique prefix, `--name=value` and `--name value`. |
//!
//! # Indicators
//!
//! | Indicator | Trigger | Techniques |
//! | --- | --- | --- |
//! | `credential_cache_copy` | kcc runs `copy_cred_cache` (any unique prefix); or Elastic's predicate: the path's or argv\[0\]'s basename is `kcc` and an argument equals `copy_cred_cache` | T1003, T1558, T1558.003, T1558.005 |
//! | `credential_dump` | kcc runs `dump-credentials` (any unique prefix) | T1003, T1558.005 |
//! | `kerberoasting` | kgetcred or kvno (program or kcc sub-command) asks for an RC4 enctype | T1558.003 |
//! | `forged_keytab_key` | ktutil `add` with `--hex`/`-H`: a raw key, such as an NT hash, goes into a keytab | T1550.002 |
//! | `forged_keytab_use` | kinit with a keytab that ktutil filled from `--hex` shortly before (`KeytabCorrelator`) | T1550.002 |
//! | `bifrost_dump` | `-action dump` with `tickets` or `keytab` (any binary; the name `bifrost` alone suffices) | T1558.005, T1552.001 |
//! | `bifrost_kerberoast` | `-action` with `-kerberoast` anywhere, or `-action kerberoast` | T1558.003 |
//! | `bifrost_asktgt` | `-action asktgt` | T1550.002 |
//! | `bifrost_asktgs` | `-action asktgs` without `-kerberoast` | T1550.003 |
//! | `bifrost_askhash` | `-action askhash` | T1550.002 |
//! | `bifrost_s4u` | `-action s4u` | T1558, T1550.003 |
//! | `bifrost_ptt` | `-action ptt` with `-ticket` (the name `bifrost` alone suffices) | T1550.003 |
//! | `ccache_file_access` | a program that is no Kerberos tool names a credential cache (`ccname`); or root's Kerberos tool names another user's | T1558.005 |
//! | `foreign_ccache_access` | a cache name's uid is neither the process's uid nor euid, and it is not root | T1558.005 |
//! | `ccache_replay` | `KRB5CCNAME` names another user's cache or a world-writable directory (the engine adds a link to a stored theft) | T1550.003 |
//! | `kerberos_ticket_tool` | impacket's ticket scripts, Rubeus (`ticket_tools`) | T1558, T1550.003 |
//! | `kerberos_bruteforce_tool` | kerbrute | T1110, T1087.002 |
//! | `renamed_kerberos_tool` | the code identity is kcc but the file's name is not one kcc is installed under | T1036.003 |
//! | `unverified_kerberos_tool` | `copy_cred_cache` or `dump-credentials` in full, where kcc would run it, from a binary not known to be kcc (with the command's own indicator) | T1036 |
//! | `fileless_exec` | a Kerberos-shaped exec from a memfd, a deleted file, `/dev/shm` or a file descriptor | T1620 |
//! | `unresolved_exe_path` | a Kerberos-shaped exec whose path the source could not give | T1564 |
//!
//! Several indicators are comma-joined in the order of this table; the
//! technique list is the union, in the same order, without repeats.
//!
//! # Relevance
//!
//! An exec is kept (`Some`) when it has a tool, an indicator (a cache name in
//! its arguments is one), a credential-cache keyword argument (`copy_cred_cache`, `dump-credentials`),
//! or `needs_identity`: no known name, but the first operand after kcc's own
//! options is a kcc credential command whose arguments kcc would accept (or
//! an RC4 enctype is spelled out), so only the file's identity can tell.

use crate::ccname::{self, Ids};
pub(crate) use crate::exec_path::basename;
pub use crate::indicator::IndicatorSet;
pub use crate::indicator::{Indicator, CREDENTIAL_CACHE_COPY, CREDENTIAL_CACHE_COPY_TECHNIQUE};
use crate::{exec_path, ticket_tools};
use std::collections::VecDeque;

/// `source_ccache` when copy_cred_cache reads the process's default cache
/// (`KRB5CCNAME`, else `API:` on macOS).
pub(crate) const DEFAULT_CCACHE: &str = "default";
/// `action` of a kinit that authenticates with a keytab.
pub(crate) const ACTION_KINIT_KEYTAB: &str = "kinit_keytab";

/// What the source or the engine knows about the exec beyond its path and
/// argv: the executable's code identity, the process's ids, and the one
/// variable of its environment that matters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Identity<'a> {
    /// The code-signing identifier ("" when the source has none).
    pub signing_id: &'a str,
    /// Whether the file's sha256 equals the host's kcc; `None` = not checked.
    pub kcc_image: Option<bool>,
    /// Real and effective uid; they decide whether a cache named by its
    /// owner's uid is another user's.
    pub uid: Option<i64>,
    /// Effective uid (see `uid`); `None` when the source does not know it.
    pub euid: Option<i64>,
    /// The exec's `KRB5CCNAME`, when the source gives the environment.
    pub krb5ccname: Option<&'a [u8]>,
}

impl Identity<'static> {
    /// Nothing known beyond path and argv: what [`classify`] assumes.
    pub const UNKNOWN: Identity<'static> = Identity {
        signing_id: "",
        kcc_image: None,
        uid: None,
        euid: None,
        krb5ccname: None,
    };
}

/// The outcome for an exec that is worth a row.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Classification {
    /// Kerberos tool identity, e.g. "kcc" or "klist"; "" if none.
    pub tool: &'static str,
    /// The operation, e.g. the kcc sub-command; "" if unknown.
    pub action: &'static str,
    /// The credential cache the command targets: copy_cred_cache's
    /// destination, or a `-c` cache. Bare paths get `FILE:`.
    pub ccache: String,
    /// copy_cred_cache's (and kcpytkt's) source cache; `DEFAULT_CCACHE`
    /// when implicit; "" otherwise.
    pub source_ccache: String,
    /// The keytab named by ktutil `-k` or kinit `-t` ("" = none or default).
    pub keytab: String,
    /// What the exec does; empty when benign. The `indicator` and
    /// `technique` columns are derived from it.
    pub indicators: IndicatorSet,
    /// Only the file's identity can tell whether this is Kerberos: the engine
    /// should check it and call [`classify_with`].
    pub needs_identity: bool,
    /// The arguments name a cache by its owner's uid (`krb5cc_<uid>`): the
    /// process's ids decide whether it is another user's, so the engine
    /// should call [`classify_with`] with them.
    pub(crate) ids_matter: bool,
}

impl Classification {
    /// Whether the exec carries `indicator`.
    pub fn has(&self, indicator: Indicator) -> bool {
        self.indicators.contains(indicator)
    }

    /// Adds an indicator (e.g. what `KeytabCorrelator::observe` returns).
    pub fn add(&mut self, indicator: Indicator) {
        self.indicators.insert(indicator);
    }

    /// The `indicator` column: names, comma-joined; "" when benign.
    pub fn indicator(&self) -> String {
        self.indicators.names()
    }

    /// The `technique` column: MITRE ATT&CK ids, comma-joined.
    pub fn technique(&self) -> String {
        self.indicators.techniques()
    }
}

/// Executable names that are Kerberos credential-cache tools.
const TOOLS: &[&str] = &[
    "kcc",
    "heimtools",
    "klist",
    "kswitch",
    "kinit",
    "kdestroy",
    "kgetcred",
    "kvno",
    "ktutil",
    "kdeltkt",
    "kcpytkt",
    "bifrost",
];

/// argv\[0\] names on which kcc dispatches to another command.
const KCC_ALIASES: &[&str] = &[
    "kinit", "klist", "kswitch", "kgetcred", "kvno", "kdeltkt", "kdestroy", "kcpytkt",
];

/// Names macOS installs as links to /usr/bin/kcc.
const LINKED_TO_KCC: &[&str] = &["klist", "kswitch"];

/// Signing ids of Kerberos tools. Only kcc's is known; others go here.
const SIGNING_IDS: &[(&str, &str)] = &[("com.apple.kcc", "kcc")];

/// Arguments that name a credential-cache operation even when the executable
/// is not a known tool: such execs are kept so the pack can see them.
const CACHE_KEYWORDS: &[&str] = &["copy_cred_cache", "dump-credentials"];

/// Whether `arg` is one of the credential-cache keywords, in any case.
pub(crate) fn is_cache_keyword(arg: &[u8]) -> bool {
    CACHE_KEYWORDS
        .iter()
        .any(|k| arg.eq_ignore_ascii_case(k.as_bytes()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmd {
    Klist,
    Kgetcred,
    Kswitch,
    Kvno,
    Kdc,
    CopyCredCache,
    DumpCredentials,
    Kx509,
    Help,
}

/// Apple's kcc command set (`kuser/kcc-commands.in`, Heimdal-323 to 710).
const KCC_COMMANDS: &[(&str, Cmd)] = &[
    ("klist", Cmd::Klist),
    ("list", Cmd::Klist),
    ("kgetcred", Cmd::Kgetcred),
    ("kswitch", Cmd::Kswitch),
    ("switch", Cmd::Kswitch),
    ("kvno", Cmd::Kvno),
    ("kdc", Cmd::Kdc),
    ("copy_cred_cache", Cmd::CopyCredCache),
    ("dump-credentials", Cmd::DumpCredentials),
    ("help", Cmd::Help),
    ("?", Cmd::Help),
];

/// Upstream Heimdal's rename of kcc (no kdc, no dump-credentials; kx509).
const HEIMTOOLS_COMMANDS: &[(&str, Cmd)] = &[
    ("klist", Cmd::Klist),
    ("list", Cmd::Klist),
    ("kgetcred", Cmd::Kgetcred),
    ("kswitch", Cmd::Kswitch),
    ("switch", Cmd::Kswitch),
    ("kvno", Cmd::Kvno),
    ("copy_cred_cache", Cmd::CopyCredCache),
    ("kx509", Cmd::Kx509),
    ("help", Cmd::Help),
    ("?", Cmd::Help),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KtCmd {
    Add,
    Change,
    Copy,
    Get,
    List,
    Purge,
    Remove,
    Rename,
    Destroy,
    SrvConvert,
    SrvCreate,
    Help,
}

/// Heimdal ktutil's commands (Apple's set plus upstream's srvtab ones).
const KTUTIL_COMMANDS: &[(&str, KtCmd)] = &[
    ("add", KtCmd::Add),
    ("change", KtCmd::Change),
    ("copy", KtCmd::Copy),
    ("get", KtCmd::Get),
    ("list", KtCmd::List),
    ("purge", KtCmd::Purge),
    ("remove", KtCmd::Remove),
    ("delete", KtCmd::Remove),
    ("rename", KtCmd::Rename),
    ("destroy", KtCmd::Destroy),
    ("srvconvert", KtCmd::SrvConvert),
    ("srv2keytab", KtCmd::SrvConvert),
    ("srvcreate", KtCmd::SrvCreate),
    ("key2srvtab", KtCmd::SrvCreate),
    ("help", KtCmd::Help),
    ("?", KtCmd::Help),
];

/// bifrost's `-action` values, and its RTA's `kerberoast`.
const BIFROST_ACTIONS: &[&str] = &[
    "dump",
    "list",
    "askhash",
    "describe",
    "asktgt",
    "asktgs",
    "s4u",
    "ptt",
    "remove",
    "asklkdcdomain",
    "kerberoast",
];

/// RC4-HMAC enctype names (Heimdal, MIT, bifrost), with the export variant
/// (`-exp`, `-56`).
const RC4_NAMES: &[&str] = &[
    "arcfour-hmac-md5",
    "arcfour-hmac",
    "rc4-hmac",
    "rc4",
    "arcfour",
    "arcfour-hmac-exp",
    "rc4-hmac-exp",
    "arcfour-hmac-md5-exp",
    "arcfour-hmac-md5-56",
];

/// RC4-HMAC and its export variant by number.
const RC4_NUMBERS: &[&str] = &["23", "24"];

// ---------------------------------------------------------------------------
// Option tables

/// What an option means to the classifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Other,
    Cache,
    Enctype,
    Keytab,
    UseKeytab,
    Hex,
}

#[derive(Debug, Clone, Copy)]
struct Opt {
    long: &'static str,
    /// 0: none.
    short: u8,
    value: bool,
    role: Role,
}

const fn val(long: &'static str, short: u8, role: Role) -> Opt {
    Opt {
        long,
        short,
        value: true,
        role,
    }
}

const fn flag(long: &'static str, short: u8, role: Role) -> Opt {
    Opt {
        long,
        short,
        value: false,
        role,
    }
}

struct Spec {
    opts: &'static [Opt],
    /// GNU getopt keeps reading options after operands; Heimdal's getarg
    /// stops at the first operand.
    permute: bool,
}

use Role::{Cache, Enctype, Hex, Keytab, Other, UseKeytab};

const KCC_GLOBAL: Spec = Spec {
    opts: &[flag("version", 0, Other), flag("help", 0, Other)],
    permute: false,
};

/// klist (kcc's, Heimdal's, MIT's `-c`).
const KLIST: Spec = Spec {
    opts: &[
        val("cache", b'c', Cache),
        flag("flags", b'f', Other),
        flag("test", b't', Other),
        flag("s", b's', Other),
        flag("tokens", b'T', Other),
        flag("v5", b'5', Other),
        flag("all-content", b'A', Other),
        flag("list-all", b'l', Other),
        flag("verbose", b'v', Other),
        flag("json", 0, Other),
        flag("a", b'a', Other),
        flag("n", b'n', Other),
        flag("hidden", 0, Other),
        flag("version", 0, Other),
        flag("help", 0, Other),
    ],
    permute: true,
};

const KSWITCH: Spec = Spec {
    opts: &[
        val("type", b't', Other),
        val("cache", b'c', Cache),
        val("principal", b'p', Other),
        flag("interactive", b'i', Other),
        flag("version", 0, Other),
        flag("help", 0, Other),
    ],
    permute: true,
};

/// kcc's kgetcred and kvno, Heimdal's kgetcred and MIT's kvno, merged: only
/// the enctype and cache matter, the rest keeps values from being misread.
const KGETCRED: Spec = Spec {
    opts: &[
        val("enctype", b'e', Enctype),
        val("cache", b'c', Cache),
        val("keytab", b'k', Other),
        val("server", b'S', Other),
        flag("quiet", b'q', Other),
        val("out-cache", 0, Other),
        val("delegation-credential-cache", 0, Other),
        flag("canonicalize", 0, Other),
        flag("forwardable", 0, Other),
        flag("transit-check", 0, Other),
        val("impersonate", 0, Other),
        val("name-type", 0, Other),
        flag("cached-only", 0, Other),
        flag("no-store", 0, Other),
        val("", b'F', Other),
        val("", b'I', Other),
        val("", b'U', Other),
        flag("version", 0, Other),
        flag("help", 0, Other),
    ],
    permute: true,
};

const COPY_CRED_CACHE: Spec = Spec {
    opts: &[
        flag("krbtgt-only", 0, Other),
        val("service", 0, Other),
        val("enctype", 0, Other),
        val("flags", 0, Other),
        val("valid-for", 0, Other),
        val("fcache-version", 0, Other),
        flag("version", 0, Other),
        flag("help", 0, Other),
    ],
    permute: false,
};

const DUMP_CREDENTIALS: Spec = Spec {
    opts: &[
        val("type", 0, Other),
        flag("verbose", b'v', Other),
        flag("help", 0, Other),
    ],
    permute: false,
};

/// Heimdal's and MIT's kinit, merged.
const KINIT: Spec = Spec {
    opts: &[
        val("cache", b'c', Cache),
        val("keytab", b't', Keytab),
        flag("use-keytab", b'k', UseKeytab),
        // MIT: the default client keytab.
        flag("", b'i', UseKeytab),
        val("lifetime", b'l', Other),
        val("renewable-life", b'r', Other),
        val("server", b'S', Other),
        val("start-time", b's', Other),
        val("enctypes", b'e', Other),
        val("", b'T', Other),
        val("", b'X', Other),
        val("", b'I', Other),
        val("x509-anchors", b'D', Other),
        val("kdc-hostname", 0, Other),
        val("fcache-version", 0, Other),
        val("extra-addresses", 0, Other),
        val("password-file", 0, Other),
        val("pk-user", 0, Other),
        val("fast-armor-cache", 0, Other),
        val("bundle-acl", 0, Other),
        flag("afslog", 0, Other),
        flag("forwardable", b'f', Other),
        flag("proxiable", b'p', Other),
        flag("renew", b'R', Other),
        flag("renewable", 0, Other),
        flag("validate", b'v', Other),
        flag("addresses", b'A', Other),
        flag("anonymous", b'n', Other),
        flag("request-pac", 0, Other),
        flag("canonicalize", 0, Other),
        flag("enterprise", b'E', Other),
        flag("pk-enterprise", 0, Other),
        flag("pk-use-enckey", 0, Other),
        flag("change-default", 0, Other),
        flag("ok-as-delegate", 0, Other),
        flag("use-referrals", 0, Other),
        flag("verbose", b'V', Other),
        flag("home-directory", 0, Other),
        flag("keychain", 0, Other),
        flag("windows", 0, Other),
        flag("version", 0, Other),
        flag("help", 0, Other),
    ],
    permute: true,
};

/// kdestroy, kdeltkt and kcpytkt: the cache is `-c`.
const CACHE_ONLY: Spec = Spec {
    opts: &[
        val("cache", b'c', Cache),
        val("", b'e', Other),
        val("", b'f', Other),
        val("principal", b'p', Other),
        flag("all", b'A', Other),
        flag("version", 0, Other),
        flag("help", 0, Other),
    ],
    permute: true,
};

const KTUTIL: Spec = Spec {
    opts: &[
        val("keytab", b'k', Keytab),
        flag("verbose", b'v', Other),
        flag("version", 0, Other),
        flag("help", b'h', Other),
    ],
    permute: false,
};

const KTUTIL_ADD: Spec = Spec {
    opts: &[
        val("principal", b'p', Other),
        val("kvno", b'V', Other),
        val("enctype", b'e', Other),
        val("pw-file", 0, Other),
        val("password", b'w', Other),
        flag("salt", b's', Other),
        flag("random", b'r', Other),
        flag("hex", b'H', Hex),
        flag("help", 0, Other),
    ],
    permute: false,
};

// ---------------------------------------------------------------------------
// Small helpers

/// The entry of `table` equal to `name`, ignoring ASCII case (macOS volumes are
/// case-insensitive by default, so /usr/bin/KCC runs kcc).
#[inline]
fn lookup(table: &[&'static str], name: &[u8]) -> Option<&'static str> {
    table
        .iter()
        .copied()
        .find(|t| t.as_bytes().eq_ignore_ascii_case(name))
}

/// The entry of `table` equal to `name`, case-sensitively (kcc's own test).
#[inline]
fn exact(table: &[&'static str], name: &[u8]) -> Option<&'static str> {
    table.iter().copied().find(|t| t.as_bytes() == name)
}

#[inline]
fn is(name: &[u8], want: &str) -> bool {
    name.eq_ignore_ascii_case(want.as_bytes())
}

/// Whether a process name is a Kerberos tool's: the snapshot's cheap
/// pre-filter, before it reads a process in full.
pub fn is_tool_name(name: &[u8]) -> bool {
    lookup(TOOLS, name).is_some()
}

/// Heimdal's `sl_match` rule, ignoring ASCII case: an exact name wins;
/// otherwise `word` must be a prefix of names of exactly one entry id.
#[inline]
fn unique_prefix<T: Copy + PartialEq>(
    table: &[(&'static str, T)],
    word: &[u8],
) -> Option<(&'static str, T)> {
    let first = word.first()?.to_ascii_lowercase();
    let mut partial: Option<(&'static str, T)> = None;
    let mut ambiguous = false;
    for &(name, id) in table {
        let n = name.as_bytes();
        // Most words share no first letter with any name: reject them fast.
        if n.first().map(u8::to_ascii_lowercase) != Some(first) {
            continue;
        }
        if n.eq_ignore_ascii_case(word) {
            return Some((name, id));
        }
        if n.get(..word.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(word))
        {
            match partial {
                Some((_, seen)) if seen != id => ambiguous = true,
                Some(_) => {}
                None => partial = Some((name, id)),
            }
        }
    }
    if ambiguous {
        None
    } else {
        partial
    }
}

fn is_rc4(value: &[u8]) -> bool {
    value
        .split(|&b| b == b',' || b == b' ')
        .any(|v| lookup(RC4_NAMES, v).is_some() || exact(RC4_NUMBERS, v).is_some())
}

/// Whether `arg` ends with an RC4 enctype name (`-erc4-hmac`,
/// `--enctype=rc4-hmac`, `rc4-hmac`). Runs for every argument of an unknown
/// exec, so the last byte rejects most first.
#[inline]
fn ends_with_rc4_name(arg: &[u8]) -> bool {
    let Some(last) = arg.last() else {
        return false;
    };
    if !b"5c4rp6".contains(&last.to_ascii_lowercase()) {
        return false;
    }
    RC4_NAMES.iter().any(|e| {
        arg.len()
            .checked_sub(e.len())
            .and_then(|start| arg.get(start..))
            .is_some_and(|t| t.eq_ignore_ascii_case(e.as_bytes()))
    })
}

/// Prefixes a bare name with FILE:, as krb5_cc_resolve and krb5_kt_resolve do
/// with a name that has no type (the `ccache` column's form).
pub(crate) fn cache_name(arg: &[u8]) -> String {
    if arg.is_empty() {
        return String::new();
    }
    let text = crate::text::bytes_to_text(arg);
    let has_type = match text.split_once(':') {
        Some((kind, _)) => !kind.is_empty() && kind.bytes().all(|b| b.is_ascii_alphanumeric()),
        None => false,
    };
    if has_type {
        text
    } else {
        format!("FILE:{text}")
    }
}

// ---------------------------------------------------------------------------
// The option walker

#[derive(Debug, Clone, Copy)]
enum Item<'a> {
    /// A flag; `on` is false for `--no-x` and `--x=no`.
    Flag(Role, bool),
    /// An option with a value (`None` when the argv ended first).
    Value(Role, Option<&'a [u8]>),
    Unknown,
    Operand(&'a [u8]),
}

/// A long option by exact name or unique prefix, case-sensitively (getarg
/// and getopt_long both accept abbreviations).
fn long_opt(spec: &Spec, name: &[u8]) -> Option<Opt> {
    let mut partial: Option<Opt> = None;
    let mut count = 0;
    for o in spec.opts.iter().filter(|o| !o.long.is_empty()) {
        let l = o.long.as_bytes();
        if l == name {
            return Some(*o);
        }
        if !name.is_empty() && l.starts_with(name) {
            count += 1;
            partial = Some(*o);
        }
    }
    if count == 1 {
        partial
    } else {
        None
    }
}

/// Walks `args` as `spec`'s parser would, calling `f` for each item until it
/// returns false. Returns the index of the argument that stopped it, or
/// `args.len()`. Allocation-free.
fn walk<'a, A: AsRef<[u8]>>(
    args: &'a [A],
    spec: &Spec,
    mut f: impl FnMut(Item<'a>) -> bool,
) -> usize {
    let mut i = 0;
    let mut options_done = false;
    // The value of an option that takes the next argument.
    let next = |i: &mut usize| {
        let v = args.get(*i).map(AsRef::as_ref);
        if v.is_some() {
            *i += 1;
        }
        v
    };
    while let Some(arg) = args.get(i) {
        let start = i;
        let arg = arg.as_ref();
        i += 1;
        let item_ok = if options_done || !arg.starts_with(b"-") {
            if !spec.permute {
                options_done = true;
            }
            f(Item::Operand(arg))
        } else if arg == b"--" {
            options_done = true;
            true
        } else if let Some(long) = arg.strip_prefix(b"--") {
            let mut parts = long.splitn(2, |&b| b == b'=');
            let name = parts.next().unwrap_or_default();
            let inline = parts.next();
            let (negated, opt) = match long_opt(spec, name) {
                Some(o) => (false, Some(o)),
                None => match name.strip_prefix(b"no-").and_then(|n| long_opt(spec, n)) {
                    Some(o) if !o.value => (true, Some(o)),
                    _ => (false, None),
                },
            };
            match opt {
                Some(o) if o.value => {
                    let v = match inline {
                        Some(v) => Some(v),
                        None => next(&mut i),
                    };
                    f(Item::Value(o.role, v))
                }
                Some(o) => {
                    let on = !negated
                        && inline.is_none_or(|v| {
                            v.is_empty() || v == b"yes" || v == b"true" || v == b"maybe"
                        });
                    f(Item::Flag(o.role, on))
                }
                None => f(Item::Unknown),
            }
        } else {
            // A cluster of short options; "-" alone is a no-op, as in getarg.
            let mut rest = arg.get(1..).unwrap_or_default();
            let mut keep = true;
            while let Some((&c, tail)) = rest.split_first() {
                let opt = spec.opts.iter().find(|o| o.short != 0 && o.short == c);
                keep = match opt {
                    Some(o) if o.value => {
                        let v = if tail.is_empty() {
                            next(&mut i)
                        } else {
                            Some(tail)
                        };
                        rest = &[];
                        f(Item::Value(o.role, v))
                    }
                    Some(o) => {
                        rest = tail;
                        f(Item::Flag(o.role, true))
                    }
                    None => {
                        rest = tail;
                        f(Item::Unknown)
                    }
                };
                if !keep {
                    break;
                }
            }
            keep
        };
        if !item_ok {
            return start;
        }
    }
    args.len()
}

// ---------------------------------------------------------------------------
// Classification

#[derive(Debug, Clone, Copy)]
enum Source<'a> {
    Default,
    Named(&'a [u8]),
}

/// The classification while it is worked out, borrowing from argv.
#[derive(Debug, Default)]
struct Found<'a> {
    tool: &'static str,
    action: &'static str,
    ccache: Option<&'a [u8]>,
    source: Option<Source<'a>>,
    keytab: Option<&'a [u8]>,
    indicators: IndicatorSet,
    needs_identity: bool,
    ids_matter: bool,
    keyword: bool,
}

impl Found<'_> {
    fn relevant(&self) -> bool {
        !self.tool.is_empty() || !self.indicators.is_empty() || self.needs_identity || self.keyword
    }

    fn into_classification(self) -> Classification {
        Classification {
            tool: self.tool,
            action: self.action,
            ccache: self.ccache.map(cache_name).unwrap_or_default(),
            source_ccache: match self.source {
                Some(Source::Default) => DEFAULT_CCACHE.to_string(),
                Some(Source::Named(s)) => cache_name(s),
                None => String::new(),
            },
            keytab: self.keytab.map(cache_name).unwrap_or_default(),
            indicators: self.indicators,
            needs_identity: self.needs_identity,
            ids_matter: self.ids_matter,
        }
    }
}

/// The Kerberos program the identity names, if any.
fn image_of(identity: &Identity) -> Option<&'static str> {
    if identity.kcc_image == Some(true) {
        return Some("kcc");
    }
    SIGNING_IDS
        .iter()
        .find(|(id, _)| *id == identity.signing_id)
        .map(|(_, tool)| *tool)
}

/// Whether `name` is one `image` is installed or meant to run under.
fn legit_name(image: &str, name: &[u8]) -> bool {
    is(name, image)
        || (image == "kcc" && (is(name, "heimtools") || lookup(KCC_ALIASES, name).is_some()))
}

/// kcc's sub-command word (after its global options) and the rest of argv.
fn kcc_command<A: AsRef<[u8]>>(args: &[A]) -> (Option<&[u8]>, &[A]) {
    let at = walk(args, &KCC_GLOBAL, |item| !matches!(item, Item::Operand(_)));
    let word = args.get(at).map(AsRef::as_ref);
    (word, args.get(at + 1..).unwrap_or_default())
}

/// Whether kcc would run copy_cred_cache or dump-credentials for these
/// arguments.
fn kcc_credential_command<A: AsRef<[u8]>>(args: &[A]) -> bool {
    let (word, _) = kcc_command(args);
    matches!(
        word.and_then(|w| unique_prefix(KCC_COMMANDS, w)),
        Some((_, Cmd::CopyCredCache | Cmd::DumpCredentials))
    )
}

/// The cache a `-c` option names, and whether an RC4 enctype was asked for.
fn scan_cache_and_enctype<'a, A: AsRef<[u8]>>(
    args: &'a [A],
    spec: &Spec,
) -> (Option<&'a [u8]>, bool) {
    let mut cache = None;
    let mut rc4 = false;
    walk(args, spec, |item| {
        match item {
            Item::Value(Cache, v) => cache = v.or(cache),
            Item::Value(Enctype, Some(v)) => rc4 |= is_rc4(v),
            _ => {}
        }
        true
    });
    (cache, rc4)
}

fn run_kcc<'a, A: AsRef<[u8]>>(
    tool: &'static str,
    commands: &[(&'static str, Cmd)],
    args: &'a [A],
    found: &mut Found<'a>,
) {
    found.tool = tool;
    let (word, rest) = kcc_command(args);
    let Some((name, cmd)) = word.and_then(|w| unique_prefix(commands, w)) else {
        return;
    };
    found.action = name;
    match cmd {
        Cmd::Klist => found.ccache = scan_cache_and_enctype(rest, &KLIST).0,
        Cmd::Kswitch => found.ccache = scan_cache_and_enctype(rest, &KSWITCH).0,
        Cmd::Kgetcred | Cmd::Kvno => kgetcred(rest, found),
        Cmd::CopyCredCache => {
            found.indicators.insert(Indicator::CredentialCacheCopy);
            // copy_cred_cache [options] [from-cache] to-cache
            let mut operands: [Option<&[u8]>; 2] = [None, None];
            let mut count = 0usize;
            walk(rest, &COPY_CRED_CACHE, |item| {
                if let Item::Operand(o) = item {
                    if let Some(slot) = operands.get_mut(count) {
                        *slot = Some(o);
                    }
                    count += 1;
                }
                true
            });
            match operands {
                [Some(to), None] => {
                    found.source = Some(Source::Default);
                    found.ccache = Some(to);
                }
                [Some(from), Some(to)] => {
                    found.source = Some(Source::Named(from));
                    found.ccache = Some(to);
                }
                _ => {}
            }
        }
        Cmd::DumpCredentials => found.indicators.insert(Indicator::CredentialDump),
        Cmd::Kdc | Cmd::Kx509 | Cmd::Help => {}
    }
}

fn kgetcred<'a, A: AsRef<[u8]>>(args: &'a [A], found: &mut Found<'a>) {
    let (cache, rc4) = scan_cache_and_enctype(args, &KGETCRED);
    found.ccache = cache;
    if rc4 {
        found.indicators.insert(Indicator::Kerberoasting);
    }
}

/// A kcc alias, or the separate program of that name.
fn run_alias<'a, A: AsRef<[u8]>>(alias: &'static str, args: &'a [A], found: &mut Found<'a>) {
    found.tool = alias;
    found.action = alias;
    match alias {
        "klist" => {
            let mut cache = None;
            walk(args, &KLIST, |item| {
                match item {
                    Item::Value(Cache, v) => cache = v.or(cache),
                    // MIT's klist takes the cache as an operand.
                    Item::Operand(o) if cache.is_none() => cache = Some(o),
                    _ => {}
                }
                true
            });
            found.ccache = cache;
        }
        "kswitch" => found.ccache = scan_cache_and_enctype(args, &KSWITCH).0,
        "kgetcred" | "kvno" => kgetcred(args, found),
        "kinit" => {
            let mut use_keytab = false;
            walk(args, &KINIT, |item| {
                match item {
                    Item::Flag(UseKeytab, on) => use_keytab |= on,
                    Item::Value(Keytab, v) => {
                        use_keytab = true;
                        found.keytab = v.or(found.keytab);
                    }
                    Item::Value(Cache, v) => found.ccache = v.or(found.ccache),
                    _ => {}
                }
                true
            });
            if use_keytab {
                found.action = ACTION_KINIT_KEYTAB;
            }
        }
        "kcpytkt" => {
            // kcpytkt [-c from] to-cache service...
            let mut from = None;
            let mut to = None;
            walk(args, &CACHE_ONLY, |item| {
                match item {
                    Item::Value(Cache, v) => from = v.or(from),
                    Item::Operand(o) if to.is_none() => to = Some(o),
                    _ => {}
                }
                true
            });
            found.ccache = to;
            if to.is_some() {
                found.source = Some(from.map_or(Source::Default, Source::Named));
            }
        }
        _ => found.ccache = scan_cache_and_enctype(args, &CACHE_ONLY).0,
    }
}

fn run_ktutil<'a, A: AsRef<[u8]>>(args: &'a [A], found: &mut Found<'a>) {
    found.tool = "ktutil";
    let mut keytab = None;
    let at = walk(args, &KTUTIL, |item| match item {
        Item::Operand(_) => false,
        Item::Value(Keytab, v) => {
            keytab = v.or(keytab);
            true
        }
        _ => true,
    });
    found.keytab = keytab;
    let Some((name, cmd)) = args
        .get(at)
        .and_then(|w| unique_prefix(KTUTIL_COMMANDS, w.as_ref()))
    else {
        return;
    };
    found.action = name;
    if cmd == KtCmd::Add {
        let mut hex = false;
        walk(
            args.get(at + 1..).unwrap_or_default(),
            &KTUTIL_ADD,
            |item| {
                if let Item::Flag(Hex, on) = item {
                    hex = on;
                }
                true
            },
        );
        if hex {
            found.indicators.insert(Indicator::ForgedKeytabKey);
        }
    }
}

/// bifrost's `-action` arguments, from any binary.
fn bifrost<'a, A: AsRef<[u8]>>(args: &'a [A], named: bool, found: &mut Found<'a>) {
    let Some(at) = args.iter().position(|a| is(a.as_ref(), "-action")) else {
        return;
    };
    let any = |want: &str| args.iter().any(|a| is(a.as_ref(), want));
    let kerberoast_flag = any("-kerberoast");
    // The RTA writes the value with a dash: `-action -kerberoast`.
    let action = args.get(at + 1).and_then(|v| {
        let v = v.as_ref();
        lookup(BIFROST_ACTIONS, v.strip_prefix(b"-").unwrap_or(v))
    });
    let mut add = |i| found.indicators.insert(i);
    if kerberoast_flag || action == Some("kerberoast") {
        add(Indicator::BifrostKerberoast);
    }
    match action {
        Some("dump") if named || any("tickets") || any("keytab") => add(Indicator::BifrostDump),
        Some("asktgs") if !kerberoast_flag => add(Indicator::BifrostAsktgs),
        Some("asktgt") => add(Indicator::BifrostAsktgt),
        Some("askhash") => add(Indicator::BifrostAskhash),
        Some("s4u") => add(Indicator::BifrostS4u),
        Some("ptt") if named || any("-ticket") => add(Indicator::BifrostPtt),
        _ => {}
    }
    if found.action.is_empty() && (named || !found.indicators.is_empty()) {
        found.action = action.unwrap_or_default();
    }
}

/// kcc's sub-command word, when only options kcc itself accepts come before
/// it (any other makes kcc print its usage and exit), and the arguments
/// after it.
fn kcc_word_strict<A: AsRef<[u8]>>(args: &[A]) -> Option<(&[u8], &[A])> {
    let mut kcc_options = true;
    let at = walk(args, &KCC_GLOBAL, |item| match item {
        Item::Operand(_) => false,
        Item::Unknown => {
            kcc_options = false;
            false
        }
        _ => true,
    });
    if !kcc_options {
        return None;
    }
    let word = args.get(at).map_or(&[][..], AsRef::as_ref);
    Some((word, args.get(at + 1..).unwrap_or_default()))
}

/// Whether kcc would run `cmd` (spelled `word`) with the arguments `rest`:
/// options it knows, with their values, and the operands it takes.
fn kcc_accepts<A: AsRef<[u8]>>(cmd: Cmd, word: &[u8], rest: &[A]) -> bool {
    let strict = |spec: &Spec| {
        let mut known = true;
        let mut operands = 0usize;
        walk(rest, spec, |item| {
            match item {
                Item::Operand(_) => operands += 1,
                Item::Unknown | Item::Value(_, None) => known = false,
                _ => {}
            }
            true
        });
        (known, operands)
    };
    match cmd {
        Cmd::CopyCredCache => {
            let (known, n) = strict(&COPY_CRED_CACHE);
            // The full name alone is Elastic's RTA; an abbreviation needs the
            // destination kcc requires.
            known && n <= 2 && (n >= 1 || is(word, "copy_cred_cache"))
        }
        Cmd::DumpCredentials => strict(&DUMP_CREDENTIALS) == (true, 0),
        Cmd::Kgetcred | Cmd::Kvno => scan_cache_and_enctype(rest, &KGETCRED).1,
        _ => false,
    }
}

/// kcc's distinctive credential commands, spelled in full (any case), as
/// the command any build of kcc would run with these arguments. They are
/// rare enough to flag whatever binary runs them; the abbreviations (`c`,
/// `co`, `d`) are not (`git co`, `sudo du`).
fn full_kcc_credential_command<A: AsRef<[u8]>>(word: &[u8], rest: &[A]) -> bool {
    let cmd = if is(word, "copy_cred_cache") {
        Cmd::CopyCredCache
    } else if is(word, "dump-credentials") {
        Cmd::DumpCredentials
    } else {
        return false;
    };
    kcc_accepts(cmd, word, rest)
}

/// A kcc credential command under a name we do not know: the first operand
/// after kcc's own options (`--version`, `--help`, `--`) resolves to
/// copy_cred_cache or dump-credentials with arguments kcc accepts, or to
/// kgetcred/kvno with an RC4 enctype; or, for a renamed stand-alone
/// kgetcred/kvno, an RC4 enctype spelled by name. `word` is
/// [`kcc_word_strict`]'s.
fn looks_like_renamed_kcc<A: AsRef<[u8]>>(args: &[A], word: Option<(&[u8], &[A])>) -> bool {
    if let Some((word, rest)) = word {
        if let Some((_, cmd)) = unique_prefix(KCC_COMMANDS, word) {
            return kcc_accepts(cmd, word, rest);
        }
    }
    // Cheap textual test first: this runs for every unknown exec.
    if !args.iter().any(|a| ends_with_rc4_name(a.as_ref())) {
        return false;
    }
    let mut rc4 = false;
    walk(args, &KGETCRED, |item| {
        if let Item::Value(Enctype, Some(v)) = item {
            // Names only: `-e 23` is too common (grep -e 23).
            rc4 |= v
                .split(|&b| b == b',')
                .any(|e| lookup(RC4_NAMES, e).is_some());
        }
        true
    });
    rc4
}

/// Programs that only look at a file's name or metadata: naming a cache to
/// them (`ls -l /tmp/krb5cc_1000`, `rm`) reads nothing. Only from the
/// system's own directories, so a copy of `cat` named `ls` is not excused.
const METADATA_ONLY: &[&str] = &[
    "ls", "stat", "rm", "unlink", "touch", "test", "[", "realpath", "readlink", "basename",
    "dirname", "du",
];
const SYSTEM_DIRS: &[&[u8]] = &[b"/bin/", b"/usr/bin/", b"/sbin/", b"/usr/sbin/"];

fn metadata_only(path: &[u8], name: &[u8]) -> bool {
    exact(METADATA_ONLY, name).is_some()
        && SYSTEM_DIRS
            .iter()
            .any(|d| path.strip_prefix(*d).is_some_and(|rest| rest == name))
}

// In line into its one caller: the result is large, and copying it out cost
// more than the rest of the rejection of an unrelated exec.
#[inline(always)]
fn analyze<'a, A: AsRef<[u8]>>(
    exec_path: &'a [u8],
    exec_argv: &'a [A],
    identity: &Identity<'a>,
) -> Found<'a> {
    // Through the dynamic loader, the program is its first operand.
    let (path, argv, via_loader) = exec_path::through_loader(exec_path, exec_argv);
    let argv0_path = argv.first().map_or(&[][..], AsRef::as_ref);
    let argv0 = basename(argv0_path);
    let args = argv.get(1..).unwrap_or_default();
    // memfd: and (deleted) stripped; argv[0]'s when the path is unusable.
    let name = exec_path::program_name(path, argv0_path);

    let mut found = Found {
        keyword: args
            .iter()
            .any(|a| CACHE_KEYWORDS.iter().any(|k| is(a.as_ref(), k))),
        ..Found::default()
    };

    let image = image_of(identity);
    let program = image
        .or_else(|| lookup(TOOLS, name))
        .or_else(|| lookup(TOOLS, argv0));
    match program {
        Some(tool @ ("kcc" | "heimtools")) => match exact(KCC_ALIASES, argv0) {
            Some(alias) => run_alias(alias, args, &mut found),
            None if tool == "heimtools" => run_kcc(tool, HEIMTOOLS_COMMANDS, args, &mut found),
            None => run_kcc(tool, KCC_COMMANDS, args, &mut found),
        },
        Some(alias) if lookup(KCC_ALIASES, alias.as_bytes()).is_some() => {
            // A link to kcc given an argv[0] it does not recognise runs as
            // kcc; only worth it when that would be a credential command.
            if lookup(LINKED_TO_KCC, alias.as_bytes()).is_some()
                && exact(KCC_ALIASES, argv0).is_none()
                && kcc_credential_command(args)
            {
                run_kcc("kcc", KCC_COMMANDS, args, &mut found);
            } else {
                run_alias(alias, args, &mut found);
            }
        }
        Some("ktutil") => run_ktutil(args, &mut found),
        Some(tool) => found.tool = tool,
        None => {}
    }

    // Elastic's predicate, so the hardened query is a superset of the port:
    // the name is kcc and some argument is copy_cred_cache.
    if (is(name, "kcc") || is(argv0, "kcc"))
        && args.iter().any(|a| is(a.as_ref(), "copy_cred_cache"))
    {
        found.indicators.insert(Indicator::CredentialCacheCopy);
    }

    // kcc's credential commands in full, from a binary not known to be kcc
    // (a renamed copy, a hard link, the attacker's own build): flagged
    // whatever its name or content, with a marker of its own. A kcc alias
    // in argv[0] would make kcc run that alias instead.
    let kcc_word = kcc_word_strict(args);
    let credential = found.indicators.contains(Indicator::CredentialCacheCopy)
        || found.indicators.contains(Indicator::CredentialDump);
    if !credential
        && image.is_none()
        && exact(KCC_ALIASES, argv0).is_none()
        && kcc_word.is_some_and(|(w, rest)| full_kcc_credential_command(w, rest))
    {
        run_kcc("", KCC_COMMANDS, args, &mut found);
        found.indicators.insert(Indicator::UnverifiedKerberosTool);
    }

    bifrost(
        args,
        is(name, "bifrost") || is(argv0, "bifrost"),
        &mut found,
    );

    if let Some(m) = ticket_tools::find(name, argv) {
        found.indicators.insert(m.indicator);
        if found.tool.is_empty() {
            found.tool = m.tool;
        }
    }

    if let Some(image) = image {
        if !legit_name(image, name) {
            found.indicators.insert(Indicator::RenamedKerberosTool);
        }
    }

    // Credential caches named in the arguments. A Kerberos tool naming one
    // is its job, unless the cache is another user's; any other program
    // reading one is theft, and another user's cache read by a user who is
    // not root is theft across users.
    let ids = Ids::new(identity.uid, identity.euid);
    let caches = ccname::scan(args, ids);
    if caches.found() && !metadata_only(path, name) {
        found.ids_matter = caches.has_uid;
        let root = ids.is_some_and(Ids::is_root);
        let kerberos_program =
            !found.tool.is_empty() || found.indicators.contains(Indicator::UnverifiedKerberosTool);
        let before = found.indicators;
        if caches.other_user && !root {
            found.indicators.insert(Indicator::ForeignCcacheAccess);
        } else if !kerberos_program || caches.other_user {
            found.indicators.insert(Indicator::CcacheFileAccess);
        }
        if found.indicators != before && found.ccache.is_none() {
            found.ccache = caches.first;
        }
    }

    // A ticket replayed through the environment.
    if let Some(cc) = identity.krb5ccname.filter(|c| !c.is_empty()) {
        if ccname::replay_suspect(cc, ids) {
            found.indicators.insert(Indicator::CcacheReplay);
            if found.ccache.is_none() {
                found.ccache = Some(cc);
            }
        }
    }

    // Where a Kerberos-shaped command runs from a file no one can find
    // afterwards, or from a path the source could not give.
    if !found.tool.is_empty() || !found.indicators.is_empty() {
        if exec_path::is_fileless(exec_path) || (via_loader && exec_path::is_fileless(path)) {
            found.indicators.insert(Indicator::FilelessExec);
        }
        if !exec_path::is_usable(exec_path) || !exec_path::is_usable(path) {
            found.indicators.insert(Indicator::UnresolvedExePath);
        }
    }

    found.needs_identity = program.is_none()
        && identity.kcc_image.is_none()
        && identity.signing_id.is_empty()
        && looks_like_renamed_kcc(args, kcc_word);
    found
}

/// Classifies one exec from its path and argv alone: the hot-path filter.
/// Returns `None` when it has nothing to do with Kerberos credential caches;
/// that path does not allocate.
pub fn classify<A: AsRef<[u8]>>(path: &[u8], argv: &[A]) -> Option<Classification> {
    classify_with(path, argv, &Identity::UNKNOWN)
}

/// The full classification, with what is known of the executable's identity.
pub fn classify_with<'a, A: AsRef<[u8]>>(
    path: &'a [u8],
    argv: &'a [A],
    identity: &Identity<'a>,
) -> Option<Classification> {
    let found = analyze(path, argv, identity);
    found.relevant().then(|| found.into_classification())
}

/// The engine's classification of a kept exec: with what the source knew
/// of its identity and, only when the file's identity alone can tell (no
/// signing id, no known name), with `image()`'s verdict on whether the file
/// is the host's kcc. The classification is built once; the argv is walked a
/// second time only for that file check.
pub(crate) fn classify_checking_image<'a, A: AsRef<[u8]>>(
    path: &'a [u8],
    argv: &'a [A],
    identity: &Identity<'a>,
    image: impl FnOnce() -> Option<bool>,
) -> Option<Classification> {
    let mut found = analyze(path, argv, identity);
    if found.needs_identity && identity.signing_id.is_empty() && identity.kcc_image.is_none() {
        if let Some(is_kcc) = image() {
            let checked = Identity {
                kcc_image: Some(is_kcc),
                ..*identity
            };
            found = analyze(path, argv, &checked);
        }
    }
    found.relevant().then(|| found.into_classification())
}

/// The cheap reject, for sources that see every exec on the host: whether
/// this exec must go on to the engine. True when it carries `KRB5CCNAME`
/// (the engine links it to earlier thefts) or [`classify_with`] keeps it;
/// exactly `krb5ccname.is_some() || classify_with(..).is_some()`, without
/// building the classification. A false answer is final: the exec is not
/// Kerberos-related. It does not allocate.
pub fn needs_engine<'a, A: AsRef<[u8]>>(
    path: &'a [u8],
    argv: &'a [A],
    identity: &Identity<'a>,
) -> bool {
    identity.krb5ccname.is_some() || analyze(path, argv, identity).relevant()
}

// ---------------------------------------------------------------------------
// ktutil --hex, then kinit with that keytab

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeytabKey {
    /// FNV-1a of the keytab path: fixed size however long argv was.
    Path(u64),
    Uid(i64),
}

#[derive(Debug, Clone, Copy)]
struct Forged {
    key: KeytabKey,
    time: i64,
}

/// Remembers keytabs that ktutil filled with a raw (`--hex`) key, and marks a
/// later kinit that uses one of them as [`Indicator::ForgedKeytabUse`].
///
/// Keyed by the keytab path when the command names one (`FILE:`/`WRFILE:`
/// stripped; relative paths compared as written), else by uid (both used the
/// default keytab). Keeps at most `capacity` keytabs, each for `window`
/// seconds after its last `--hex` add. A kinit seen before its ktutil (events
/// out of order) is not matched.
#[derive(Debug)]
pub(crate) struct KeytabCorrelator {
    window: i64,
    capacity: usize,
    forged: VecDeque<Forged>,
}

impl Default for KeytabCorrelator {
    fn default() -> Self {
        KeytabCorrelator::new(
            KeytabCorrelator::DEFAULT_WINDOW_SECS,
            KeytabCorrelator::DEFAULT_CAPACITY,
        )
    }
}

impl KeytabCorrelator {
    /// Keytabs currently remembered.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.forged.len()
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.forged.is_empty()
    }

    pub(crate) const DEFAULT_WINDOW_SECS: i64 = 3600;
    pub(crate) const DEFAULT_CAPACITY: usize = 256;

    pub(crate) fn new(window_secs: i64, capacity: usize) -> KeytabCorrelator {
        KeytabCorrelator {
            window: window_secs.max(0),
            capacity: capacity.max(1),
            forged: VecDeque::new(),
        }
    }

    /// Feeds one classified exec (of `uid`, at unix `time`). Returns
    /// [`Indicator::ForgedKeytabUse`] for a kinit whose keytab was forged
    /// within the window; add it with [`Classification::add`].
    pub(crate) fn observe(
        &mut self,
        class: &Classification,
        uid: Option<i64>,
        time: i64,
    ) -> Option<Indicator> {
        let forging = class.has(Indicator::ForgedKeytabKey);
        if !forging && class.action != ACTION_KINIT_KEYTAB {
            return None;
        }
        let key = keytab_key(&class.keytab, uid)?;
        let window = self.window;
        self.forged
            .retain(|f| time.saturating_sub(f.time) <= window);
        if forging {
            match self.forged.iter_mut().find(|f| f.key == key) {
                Some(f) => f.time = f.time.max(time),
                None => {
                    if self.forged.len() >= self.capacity {
                        self.forged.pop_front();
                    }
                    self.forged.push_back(Forged { key, time });
                }
            }
            return None;
        }
        self.forged
            .iter()
            .any(|f| f.key == key && (0..=window).contains(&time.saturating_sub(f.time)))
            .then_some(Indicator::ForgedKeytabUse)
    }
}

fn keytab_key(keytab: &str, uid: Option<i64>) -> Option<KeytabKey> {
    if keytab.is_empty() {
        return uid.map(KeytabKey::Uid);
    }
    let path = keytab
        .strip_prefix("FILE:")
        .or_else(|| keytab.strip_prefix("WRFILE:"))
        .unwrap_or(keytab);
    Some(KeytabKey::Path(crate::hash::fnv1a(path.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(path: &str, argv: &[&str]) -> Option<Classification> {
        classify(path.as_bytes(), argv)
    }

    fn summary(c: &Classification) -> [String; 4] {
        [
            c.tool.into(),
            c.action.into(),
            c.ccache.clone(),
            c.indicator(),
        ]
    }

    #[test]
    fn elastic_rule_positive() {
        let c = run("/tmp/kcc", &["/tmp/kcc", "copy_cred_cache"]).unwrap();
        assert_eq!(
            summary(&c),
            ["kcc", "copy_cred_cache", "", CREDENTIAL_CACHE_COPY]
        );
        assert_eq!(c.technique(), "T1003,T1558,T1558.003,T1558.005");
        assert_eq!(c.technique(), CREDENTIAL_CACHE_COPY_TECHNIQUE);
    }

    #[test]
    fn argument_is_case_insensitive() {
        let c = run("/usr/bin/kcc", &["kcc", "COPY_Cred_Cache", "/tmp/a.ccache"]).unwrap();
        assert_eq!(c.indicator(), CREDENTIAL_CACHE_COPY);
        assert_eq!(c.ccache, "FILE:/tmp/a.ccache");
        assert_eq!(c.source_ccache, DEFAULT_CCACHE);
    }

    #[test]
    fn two_operands_name_source_then_destination() {
        let c = run(
            "/usr/bin/kcc",
            &["kcc", "copy_cred_cache", "API:x", "KCM:501"],
        )
        .unwrap();
        assert_eq!(
            (c.source_ccache.as_str(), c.ccache.as_str()),
            ("API:x", "KCM:501")
        );
    }

    #[test]
    fn argv0_kcc_counts_as_the_name() {
        let c = run("/opt/x/renamed", &["kcc", "copy_cred_cache"]).unwrap();
        assert_eq!(c.indicator(), CREDENTIAL_CACHE_COPY);
    }

    #[test]
    fn near_misses_are_not_the_indicator() {
        let c = run("/usr/bin/kcc", &["kcc", "list"]).unwrap();
        assert_eq!(summary(&c), ["kcc", "list", "", ""]);
        // An abbreviation from an unknown binary is not (git co, sudo du)…
        let c = run("/tmp/notkcc", &["notkcc", "co", "/tmp/x"]).unwrap();
        assert_eq!((c.tool, c.indicator().as_str()), ("", ""));
        assert!(c.needs_identity);
        // …the full word is, with its marker, and still asks for identity.
        let c = run("/tmp/notkcc", &["notkcc", "copy_cred_cache"]).unwrap();
        assert_eq!(
            summary(&c),
            [
                "",
                "copy_cred_cache",
                "",
                "credential_cache_copy,unverified_kerberos_tool"
            ]
        );
        assert!(c.needs_identity);
        let c = run("/usr/bin/kcc", &["kcc", "copy_cred_cachex"]).unwrap();
        assert_eq!(summary(&c), ["kcc", "", "", ""]);
    }

    #[test]
    fn full_credential_commands_from_any_binary() {
        // A renamed copy or hard link, its own name: flagged.
        let c = run("/tmp/ticketz", &["ticketz", "COPY_CRED_CACHE", "/tmp/t"]).unwrap();
        assert_eq!(
            summary(&c),
            [
                "",
                "copy_cred_cache",
                "FILE:/tmp/t",
                "credential_cache_copy,unverified_kerberos_tool"
            ]
        );
        let c = run("/tmp/x", &["x", "dump-credentials"]).unwrap();
        assert_eq!(c.indicator(), "credential_dump,unverified_kerberos_tool");
        // Checked and found to be the host's kcc: the rename marker instead.
        let id = Identity {
            kcc_image: Some(true),
            ..Identity::UNKNOWN
        };
        let c = classify_with(b"/tmp/x", &["x", "dump-credentials"], &id).unwrap();
        assert_eq!(c.indicator(), "credential_dump,renamed_kerberos_tool");
        // Not where kcc would run it (a wrapper), or with arguments kcc
        // refuses: no indicator.
        let c = run(
            "/bin/launchctl",
            &["launchctl", "asuser", "501", "kcc", "copy_cred_cache"],
        );
        assert_eq!(c.map(|c| c.indicator()), Some(String::new()));
        let c = run("/usr/bin/grep", &["grep", "copy_cred_cache", "a", "b", "c"]).unwrap();
        assert_eq!(c.indicator(), "");
        // A kcc alias in argv[0] makes kcc run the alias.
        let c = run("/tmp/x", &["kinit", "copy_cred_cache"]).unwrap();
        assert_eq!(c.indicator(), "");
    }

    #[test]
    fn the_loader_and_fileless_paths_are_seen_through() {
        let c = run(
            "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
            &["/lib64/ld-linux-x86-64.so.2", "/tmp/kcc", "copy_cred_cache"],
        )
        .unwrap();
        assert_eq!(
            summary(&c),
            ["kcc", "copy_cred_cache", "", "credential_cache_copy"]
        );
        let c = run("/memfd:x (deleted)", &["x", "copy_cred_cache"]).unwrap();
        assert_eq!(
            c.indicator(),
            "credential_cache_copy,unverified_kerberos_tool,fileless_exec"
        );
        let c = run("/memfd:kcc (deleted)", &["anything", "c", "/tmp/x"]).unwrap();
        assert_eq!(c.indicator(), "credential_cache_copy,fileless_exec");
        let c = run("<too_long>", &["kcc", "c", "/tmp/x"]).unwrap();
        assert_eq!(c.indicator(), "credential_cache_copy,unresolved_exe_path");
        // Not Kerberos-shaped: no marker, no row.
        assert_eq!(run("/memfd:x (deleted)", &["x", "-l"]), None);
        assert_eq!(run("<too_long>", &["ls", "-l"]), None);
    }

    #[test]
    fn caches_named_by_other_programs() {
        let me = |uid| Identity {
            uid: Some(uid),
            euid: Some(uid),
            ..Identity::UNKNOWN
        };
        let argv = ["cp", "/tmp/krb5cc_1000", "/tmp/x"];
        let c = run("/bin/cp", &argv).unwrap();
        assert_eq!(
            (c.indicator().as_str(), c.ccache.as_str(), c.ids_matter),
            ("ccache_file_access", "FILE:/tmp/krb5cc_1000", true)
        );
        let c = classify_with(b"/bin/cp", &argv, &me(1000)).unwrap();
        assert_eq!(c.indicator(), "ccache_file_access");
        let c = classify_with(b"/bin/cp", &argv, &me(1001)).unwrap();
        assert_eq!(c.indicator(), "foreign_ccache_access");
        assert_eq!(c.technique(), "T1558.005");
        // Root reading another user's cache is plain access.
        let c = classify_with(b"/bin/cp", &argv, &me(0)).unwrap();
        assert_eq!(c.indicator(), "ccache_file_access");
        // A Kerberos tool naming its own cache is benign; another user's is not.
        let klist = ["klist", "-c", "/tmp/krb5cc_1000"];
        let c = classify_with(b"/usr/bin/klist", &klist, &me(1000)).unwrap();
        assert_eq!(c.indicator(), "");
        let c = classify_with(b"/usr/bin/klist", &klist, &me(1001)).unwrap();
        assert_eq!(c.indicator(), "foreign_ccache_access");
        let c = classify_with(b"/usr/bin/klist", &klist, &me(0)).unwrap();
        assert_eq!(c.indicator(), "ccache_file_access");
        // Metadata only, from the system's directories.
        assert_eq!(run("/bin/ls", &["ls", "-l", "/tmp/krb5cc_1000"]), None);
        assert!(run("/tmp/ls", &["ls", "/tmp/krb5cc_1000"]).is_some());
    }

    #[test]
    fn krb5ccname_replays() {
        let id = |cc: &'static [u8]| Identity {
            uid: Some(501),
            euid: Some(501),
            krb5ccname: Some(cc),
            ..Identity::UNKNOWN
        };
        let c = classify_with(
            b"/usr/bin/smbclient",
            &["smbclient", "-k"],
            &id(b"FILE:/tmp/krb5cc_502"),
        )
        .unwrap();
        assert_eq!(
            (c.indicator().as_str(), c.ccache.as_str()),
            ("ccache_replay", "FILE:/tmp/krb5cc_502")
        );
        assert!(classify_with(b"/usr/bin/ssh", &["ssh"], &id(b"/Users/Shared/t")).is_some());
        assert_eq!(
            classify_with(b"/usr/bin/ssh", &["ssh"], &id(b"API:501")),
            None
        );
        assert_eq!(
            classify_with(b"/usr/bin/ssh", &["ssh"], &id(b"FILE:/Users/a/cc")),
            None
        );
    }

    #[test]
    fn prefixes_resolve_like_sl_match() {
        let word = |w: &str| unique_prefix(KCC_COMMANDS, w.as_bytes()).map(|(n, _)| n);
        assert_eq!(word("c"), Some("copy_cred_cache"));
        assert_eq!(word("d"), Some("dump-credentials"));
        assert_eq!(word("l"), Some("list"));
        assert_eq!(word("s"), Some("switch"));
        assert_eq!(word("ks"), Some("kswitch"));
        assert_eq!(word("kd"), Some("kdc"));
        assert_eq!(word("?"), Some("?"));
        assert_eq!(word("k"), None, "klist, kgetcred, kswitch, kvno, kdc");
        assert_eq!(word(""), None);
        assert_eq!(word("copy_cred_cachex"), None);
        // Two names of one command are not ambiguous.
        let t = [("list", 1), ("listing", 1), ("lost", 2)];
        assert_eq!(unique_prefix(&t, b"lis"), Some(("list", 1)));
        assert_eq!(unique_prefix(&t, b"l"), None);
    }

    #[test]
    fn aliases_dispatch_on_argv0() {
        let c = run("/usr/bin/kcc", &["klist", "-v"]).unwrap();
        assert_eq!(summary(&c), ["klist", "klist", "", ""]);
        let c = run("/usr/bin/kswitch", &["kswitch", "-p", "alice"]).unwrap();
        assert_eq!(c.tool, "kswitch");
        // kcc compares argv[0] case-sensitively: KLIST runs kcc.
        let c = run("/usr/bin/kcc", &["KLIST", "c", "/tmp/x"]).unwrap();
        assert_eq!(
            summary(&c),
            [
                "kcc",
                "copy_cred_cache",
                "FILE:/tmp/x",
                CREDENTIAL_CACHE_COPY
            ]
        );
    }

    #[test]
    fn unrelated_execs_are_rejected() {
        assert_eq!(run("/bin/ls", &["ls", "-l"]), None);
        assert_eq!(run("/bin/true", &[] as &[&str]), None);
        assert_eq!(run("", &[""]), None);
        assert_eq!(run("/usr/bin/git", &["git", "commit", "-m", "x"]), None);
        assert_eq!(run("/bin/cp", &["cp", "a", "b"]), None);
        assert_eq!(run("/bin/cat", &["cat", "c"]), None);
        assert_eq!(run("/usr/bin/du", &["du", "-sh", "/x"]), None);
    }

    #[test]
    fn non_utf8_arguments_do_not_break_classification() {
        let argv: [&[u8]; 3] = [b"kcc", b"copy_cred_cache", b"/tmp/\xff.ccache"];
        let c = classify(b"/usr/bin/kcc", &argv).unwrap();
        assert_eq!(c.indicator(), CREDENTIAL_CACHE_COPY);
        assert_eq!(c.ccache, "FILE:/tmp/\\xff.ccache");
    }

    #[test]
    fn enctype_option_forms() {
        for argv in [
            &["kgetcred", "-e", "arcfour-hmac-md5", "cifs/x"][..],
            &["kgetcred", "-earcfour-hmac-md5", "cifs/x"],
            &["kgetcred", "--enctype=rc4-hmac", "cifs/x"],
            &["kgetcred", "--enctype", "23", "cifs/x"],
            &["kgetcred", "--enc=RC4-HMAC", "cifs/x"],
            &["kvno", "-qe", "23", "cifs/x"],
            &["kvno", "cifs/x", "-e", "arcfour-hmac"],
        ] {
            let c = run("/usr/bin/x", argv).unwrap();
            assert_eq!(c.indicator(), "kerberoasting", "{argv:?}");
            assert_eq!(c.technique(), "T1558.003");
        }
        // -c takes the rest of the cluster: "e" is the cache here.
        let c = run("/usr/bin/kgetcred", &["kgetcred", "-ce", "23", "x"]).unwrap();
        assert_eq!((c.indicator().as_str(), c.ccache.as_str()), ("", "FILE:e"));
    }

    #[test]
    fn renamed_kcc_gets_both_indicators() {
        let id = Identity {
            signing_id: "com.apple.kcc",
            ..Identity::UNKNOWN
        };
        let c = classify_with(b"/tmp/x", &["/tmp/x", "c", "FILE:/tmp/y"], &id).unwrap();
        assert_eq!(c.indicator(), "credential_cache_copy,renamed_kerberos_tool");
        assert_eq!(c.technique(), "T1003,T1558,T1558.003,T1558.005,T1036.003");
        // Its real name is no rename.
        let c = classify_with(b"/usr/bin/kcc", &["kcc", "list"], &id).unwrap();
        assert_eq!(c.indicator(), "");
        let c = classify_with(b"/usr/bin/klist", &["klist"], &id).unwrap();
        assert_eq!(c.indicator(), "");
    }

    #[test]
    fn added_indicators_show_in_the_columns() {
        let mut c = run("/usr/bin/kinit", &["kinit", "-t", "/tmp/k.kt", "bob"]).unwrap();
        assert_eq!(
            (c.action, c.keytab.as_str()),
            (ACTION_KINIT_KEYTAB, "FILE:/tmp/k.kt")
        );
        assert_eq!(
            (c.indicator(), c.technique()),
            (String::new(), String::new())
        );
        c.add(Indicator::ForgedKeytabUse);
        assert_eq!(c.indicator(), "forged_keytab_use");
        assert_eq!(c.technique(), "T1550.002");
    }

    #[test]
    fn correlator_upgrades_kinit_after_hex_key() {
        let forge = run(
            "/usr/bin/ktutil",
            &[
                "ktutil",
                "-k",
                "/tmp/k.kt",
                "add",
                "-p",
                "bob",
                "-V",
                "1",
                "-e",
                "aes256-cts",
                "--hex",
            ],
        )
        .unwrap();
        assert_eq!(forge.indicator(), "forged_keytab_key");
        let use_it = run("/usr/bin/kinit", &["kinit", "-t", "FILE:/tmp/k.kt", "bob"]).unwrap();
        let other = run("/usr/bin/kinit", &["kinit", "-t", "/tmp/other.kt", "bob"]).unwrap();
        let plain = run("/usr/bin/kinit", &["kinit", "bob"]).unwrap();

        let mut c = KeytabCorrelator::new(600, 4);
        assert_eq!(
            c.observe(&use_it, Some(501), 90),
            None,
            "kinit first: nothing"
        );
        assert_eq!(c.observe(&forge, Some(501), 100), None);
        assert_eq!(c.len(), 1);
        assert_eq!(c.observe(&plain, Some(501), 110), None);
        assert_eq!(c.observe(&other, Some(501), 110), None);
        // The path decides, not the uid.
        assert_eq!(
            c.observe(&use_it, Some(0), 120),
            Some(Indicator::ForgedKeytabUse)
        );
        assert_eq!(
            c.observe(&use_it, Some(501), 700),
            Some(Indicator::ForgedKeytabUse)
        );
        assert_eq!(c.observe(&use_it, Some(501), 701), None, "window over");
        assert!(c.is_empty());

        // Default keytab on both sides: keyed by uid.
        let forge_default = run("/usr/bin/ktutil", &["ktutil", "a", "-p", "bob", "-H"]).unwrap();
        let kinit_default = run("/usr/bin/kinit", &["kinit", "-k", "bob"]).unwrap();
        assert_eq!(c.observe(&forge_default, Some(501), 1000), None);
        assert_eq!(c.observe(&kinit_default, Some(502), 1001), None);
        assert_eq!(
            c.observe(&kinit_default, Some(501), 1001),
            Some(Indicator::ForgedKeytabUse)
        );
        assert_eq!(c.observe(&kinit_default, None, 1001), None);

        // Bounded: the oldest keytab is forgotten first.
        let mut c = KeytabCorrelator::new(600, 2);
        for (i, p) in ["/a", "/b", "/c"].into_iter().enumerate() {
            let f = run("/usr/bin/ktutil", &["ktutil", "-k", p, "add", "--hex"]).unwrap();
            assert_eq!(c.observe(&f, Some(1), 10 + i as i64), None);
        }
        assert_eq!(c.len(), 2);
        let first = run("/usr/bin/kinit", &["kinit", "-t", "/a"]).unwrap();
        let last = run("/usr/bin/kinit", &["kinit", "-t", "/c"]).unwrap();
        assert_eq!(c.observe(&first, Some(1), 20), None);
        assert_eq!(
            c.observe(&last, Some(1), 20),
            Some(Indicator::ForgedKeytabUse)
        );
    }

    #[test]
    fn techniques_are_deduplicated_in_order() {
        let mut s = IndicatorSet::default();
        s.insert(Indicator::RenamedKerberosTool);
        s.insert(Indicator::BifrostAsktgs);
        s.insert(Indicator::BifrostS4u);
        s.insert(Indicator::BifrostPtt);
        assert_eq!(
            s.names(),
            "bifrost_asktgs,bifrost_s4u,bifrost_ptt,renamed_kerberos_tool"
        );
        assert_eq!(s.techniques(), "T1550.003,T1558,T1036.003");
        for i in Indicator::ALL {
            assert_eq!(Indicator::from_name(i.name()), Some(i));
        }
    }

    #[test]
    fn the_table_orders_and_names_every_indicator_once() {
        for (n, i) in Indicator::ALL.into_iter().enumerate() {
            assert_eq!(i as usize, n, "ALL is in declaration order");
            assert_eq!(IndicatorSet::only(i).names(), i.name());
            assert_eq!(IndicatorSet::only(i).techniques(), i.technique());
        }
        let mut names: Vec<&str> = Indicator::ALL.iter().map(|i| i.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Indicator::ALL.len(), "names are unique");
        assert_eq!(CREDENTIAL_CACHE_COPY, "credential_cache_copy");
    }

    #[test]
    fn column_text_reads_back_to_the_set() {
        let mut s = IndicatorSet::default();
        s.insert(Indicator::CredentialCacheCopy);
        s.insert(Indicator::RenamedKerberosTool);
        assert_eq!(IndicatorSet::from_names(&s.names()), s);
        assert_eq!(IndicatorSet::from_names(""), IndicatorSet::default());
        // A name from a newer build is left out, the rest kept.
        assert_eq!(
            IndicatorSet::from_names("some_future_indicator,credential_cache_copy"),
            IndicatorSet::only(Indicator::CredentialCacheCopy)
        );
    }
}
