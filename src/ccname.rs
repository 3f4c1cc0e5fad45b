//! Credential-cache names in an exec's arguments and in its `KRB5CCNAME`.
//!
//! Stealing a cache takes no Kerberos tool: `cp /tmp/krb5cc_1000 …`, `base64`,
//! `curl -F f=@…`, `python3 -c "open('/tmp/krb5cc_…')"`. What these share is
//! a cache's name in their arguments. [`scan`] finds one in a single pass
//! over the argument bytes without allocating, so it can run on every exec;
//! the process's ids then tell whether the cache is another user's. Names
//! only: nothing here touches the file system.
//!
//! | Name | Recognised as |
//! | --- | --- |
//! | `krb5cc_<x>` | anywhere in a token, any case, with something after the `_` that is not a template (`%`, `$`, `{`); `<x>` starting with digits is the owner's uid |
//! | `…/krb5cc` | a path component (MIT's `DIR:` collection, e.g. `/run/user/<uid>/krb5cc`) |
//! | `*.ccache`, `*.kirbi` | a file name ending so, any case (`~/.ccache/`, the compiler cache's directory, has no stem and is not one) |
//! | `ccache_<x>` | a file name starting so, as sssd's `/var/lib/sss/db/ccache_<REALM>` |
//! | `FILE:`, `DIR:`, `KCM:`, `API:`, `KEYRING:` | a token starting with the type and something after it, except a keytab (`…keytab`, `….kt`); `KCM:<uid>` and `KEYRING:persistent:<uid>` carry a uid |
//!
//! A token is a run of bytes between delimiters (white space, quotes, `=`,
//! `@`, brackets, `,;<>|&`), so a name inside `file=@/tmp/krb5cc_1` or
//! `open('/tmp/x.ccache')` is found.

/// The process's real and effective uid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ids {
    pub uid: i64,
    pub euid: i64,
}

impl Ids {
    pub(crate) fn new(uid: Option<i64>, euid: Option<i64>) -> Option<Ids> {
        match (uid, euid) {
            (Some(uid), Some(euid)) => Some(Ids { uid, euid }),
            (Some(id), None) | (None, Some(id)) => Some(Ids { uid: id, euid: id }),
            (None, None) => None,
        }
    }

    pub(crate) fn is_root(self) -> bool {
        self.uid == 0 || self.euid == 0
    }

    /// Whether `owner` is neither the process's uid nor its euid.
    pub(crate) fn other_than(self, owner: i64) -> bool {
        owner != self.uid && owner != self.euid
    }
}

/// What [`scan`] found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Scan<'a> {
    /// The first cache name, as the token that holds it.
    pub first: Option<&'a [u8]>,
    /// Some name carries an owner's uid.
    pub(crate) has_uid: bool,
    /// Some name's uid is neither the process's uid nor its euid (only
    /// decided when the ids are known).
    pub other_user: bool,
}

impl Scan<'_> {
    pub(crate) fn found(&self) -> bool {
        self.first.is_some()
    }
}

const fn byte_set(bytes: &[u8]) -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < bytes.len() {
        t[bytes[i] as usize] = true;
        i += 1;
    }
    t
}

/// Bytes at which a name can be recognised: the `k` of `krb5cc` and
/// `.kirbi`, the `h` of `.ccache` and `ccache_`, the `:` of a cache type.
/// Dots and underscores, though closer to hand, are too common in paths and
/// class paths: every trigger costs a branch.
static TRIGGER: [bool; 256] = byte_set(b"kKhH:");

static DELIMITER: [bool; 256] = byte_set(b" \t\n\r\x0b\x0c\0'\"`=@(),;<>|&[]{}");

#[inline]
fn is_delim(b: u8) -> bool {
    DELIMITER[usize::from(b)]
}

/// Cache types whose names follow a `TYPE:` prefix (keytab types excluded).
const TYPES: &[&[u8]] = &[b"FILE", b"DIR", b"KCM", b"API", b"KEYRING"];

/// Directories anyone can write to, where a cache is not its owner's alone.
const WORLD_WRITABLE: &[&[u8]] = &[
    b"/tmp/",
    b"/private/tmp/",
    b"/var/tmp/",
    b"/private/var/tmp/",
    b"/Users/Shared/",
    b"/dev/shm/",
];

/// One recognised name: where its token starts and ends, and its uid.
struct Hit {
    start: usize,
    end: usize,
    uid: Option<i64>,
}

/// The cache names in `args`, in one pass; `ids` decides `other_user`.
#[inline]
pub(crate) fn scan<A: AsRef<[u8]>>(args: &[A], ids: Option<Ids>) -> Scan<'_> {
    let mut out = Scan::default();
    for arg in args {
        let a = arg.as_ref();
        // Most arguments are short and hold no trigger byte at all: that
        // test stays in line, the rest does not.
        if a.len() >= SIMD_FROM || a.iter().any(|&b| TRIGGER[usize::from(b)]) {
            scan_arg(a, ids, &mut out);
        }
    }
    out
}

/// Arguments at least this long are searched with SIMD (memchr); shorter
/// ones, most of them, byte by byte, which costs less than the calls.
const SIMD_FROM: usize = 128;

#[inline(never)]
fn scan_arg<'a>(a: &'a [u8], ids: Option<Ids>, out: &mut Scan<'a>) {
    // One pass over the argument. A trigger byte's neighbours are checked
    // in line (colons are common in class paths and URLs, k and h in
    // base64); only a likely name is looked at out of line.
    let mut first: Option<(usize, usize)> = None;
    let mut look = |i: usize, b: u8| {
        if likely(a, i, b) {
            if let Some(hit) = candidate(a, i, b, ids, out) {
                if first.is_none_or(|(s, _)| hit.start < s) {
                    first = Some((hit.start, hit.end));
                }
            }
        }
    };
    if a.len() < SIMD_FROM {
        for (i, &b) in a.iter().enumerate() {
            if TRIGGER[usize::from(b)] {
                look(i, b);
            }
        }
    } else {
        let hits =
            memchr::memchr3_iter(b'k', b'h', b':', a).chain(memchr::memchr2_iter(b'K', b'H', a));
        for i in hits {
            look(i, a.get(i).copied().unwrap_or_default());
        }
    }
    if out.first.is_none() {
        out.first = first.and_then(|(s, e)| a.get(s..e));
    }
}

/// The cheap neighbour test of a trigger byte.
#[inline(always)]
fn likely(a: &[u8], i: usize, b: u8) -> bool {
    let at = |p: Option<usize>| p.and_then(|p| a.get(p)).map(u8::to_ascii_lowercase);
    match b {
        // krb5cc, or .kirbi
        b'k' | b'K' => at(Some(i + 1)) == Some(b'r') || at(i.checked_sub(1)) == Some(b'.'),
        // ccache
        b'h' | b'H' => at(i.checked_sub(1)) == Some(b'c') && at(Some(i + 1)) == Some(b'e'),
        // FILE: DIR: KCM: API: KEYRING:
        _ => matches!(
            i.checked_sub(1).and_then(|p| a.get(p)),
            Some(b'E' | b'R' | b'M' | b'I' | b'G')
        ),
    }
}

#[inline(never)]
fn candidate(a: &[u8], i: usize, b: u8, ids: Option<Ids>, out: &mut Scan<'_>) -> Option<Hit> {
    let hit = match_at(a, i, b)?;
    if let Some(uid) = hit.uid {
        out.has_uid = true;
        out.other_user |= ids.is_some_and(|ids| ids.other_than(uid));
    }
    // The scan goes on inside the token: `FILE:/tmp/krb5cc_1001` also has
    // a uid.
    Some(hit)
}

/// The token around `a[from..to]`.
fn token(a: &[u8], from: usize, to: usize) -> (usize, usize) {
    let start = a
        .get(..from)
        .and_then(|head| head.iter().rposition(|&b| is_delim(b)))
        .map_or(0, |p| p + 1);
    let end = a
        .get(to..)
        .and_then(|tail| tail.iter().position(|&b| is_delim(b)))
        .map_or(a.len(), |p| to + p);
    (start, end)
}

/// Leading decimal digits of `a[at..]` as a uid (at most 10 of them).
fn uid_at(a: &[u8], at: usize) -> Option<i64> {
    let digits = a.get(at..)?;
    let n = digits
        .iter()
        .take(11)
        .take_while(|b| b.is_ascii_digit())
        .count();
    if n == 0 || n > 10 {
        return None;
    }
    std::str::from_utf8(digits.get(..n)?).ok()?.parse().ok()
}

fn match_at(a: &[u8], i: usize, b: u8) -> Option<Hit> {
    match b {
        b'k' | b'K' => {
            if a.get(i + 3) == Some(&b'5') {
                krb5cc(a, i + 3)
            } else {
                extension(a, i.checked_sub(1)?)
            }
        }
        b'h' | b'H' => {
            if a.get(i + 2) == Some(&b'_') {
                sssd(a, i + 2)
            } else {
                extension(a, i.checked_sub(5)?)
            }
        }
        _ => typed(a, i),
    }
}

/// `krb5cc_<x>` or a `/krb5cc` path component; `i` is at the `5`.
fn krb5cc(a: &[u8], i: usize) -> Option<Hit> {
    let start = i.checked_sub(3)?;
    if !a.get(start..i)?.eq_ignore_ascii_case(b"krb")
        || !a.get(i + 1..i + 3)?.eq_ignore_ascii_case(b"cc")
    {
        return None;
    }
    let after = i + 3;
    match a.get(after) {
        Some(b'_') => {
            let next = *a.get(after + 1)?;
            if is_delim(next) || matches!(next, b'%' | b'$') {
                return None;
            }
            let (s, e) = token(a, start, after + 1);
            Some(Hit {
                start: s,
                end: e,
                uid: uid_at(a, after + 1),
            })
        }
        Some(&c) if c != b'/' && !is_delim(c) => None,
        _ => {
            // A path component named krb5cc: /run/user/<uid>/krb5cc[/tkt…].
            let slash = start.checked_sub(1)?;
            if a.get(slash) != Some(&b'/') {
                return None;
            }
            let (s, e) = token(a, start, after);
            Some(Hit {
                start: s,
                end: e,
                uid: run_user_uid(a, slash),
            })
        }
    }
}

/// The uid of `/run/user/<uid>` ending at `slash`.
fn run_user_uid(a: &[u8], slash: usize) -> Option<i64> {
    let head = a.get(..slash)?;
    let comp = head.iter().rposition(|&b| b == b'/')? + 1;
    let digits = head.get(comp..)?;
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if !head.get(..comp)?.ends_with(b"/user/") {
        return None;
    }
    uid_at(a, comp)
}

/// `<stem>.ccache` or `<stem>.kirbi` ending a token; `i` is at the dot.
fn extension(a: &[u8], i: usize) -> Option<Hit> {
    if a.get(i) != Some(&b'.') {
        return None;
    }
    // Most dots start another extension: reject on the next byte first.
    if !matches!(a.get(i + 1)?.to_ascii_lowercase(), b'c' | b'k') {
        return None;
    }
    let ext_end = [&b"ccache"[..], b"kirbi"].iter().find_map(|ext| {
        a.get(i + 1..i + 1 + ext.len())
            .is_some_and(|e| e.eq_ignore_ascii_case(ext))
            .then_some(i + 1 + ext.len())
    })?;
    if a.get(ext_end).is_some_and(|&c| !is_delim(c)) {
        return None;
    }
    let before = *a.get(i.checked_sub(1)?)?;
    if before == b'/' || is_delim(before) {
        return None;
    }
    let (s, e) = token(a, i, ext_end);
    Some(Hit {
        start: s,
        end: e,
        uid: None,
    })
}

/// sssd's `ccache_<REALM>` file; `i` is at the underscore.
fn sssd(a: &[u8], i: usize) -> Option<Hit> {
    if a.get(i.checked_sub(1)?) != Some(&b'e') {
        return None;
    }
    let start = i.checked_sub(6)?;
    if a.get(start..i)? != b"ccache" {
        return None;
    }
    if let Some(p) = start.checked_sub(1) {
        let before = *a.get(p)?;
        if before != b'/' && !is_delim(before) {
            return None;
        }
    }
    if is_delim(*a.get(i + 1)?) {
        return None;
    }
    let (s, e) = token(a, start, i + 1);
    Some(Hit {
        start: s,
        end: e,
        uid: None,
    })
}

/// A token starting with a cache type (`FILE:…`); `i` is at the colon.
fn typed(a: &[u8], i: usize) -> Option<Hit> {
    // Every type ends in one of these upper-case letters.
    if !matches!(a.get(i.checked_sub(1)?)?, b'E' | b'R' | b'M' | b'I' | b'G') {
        return None;
    }
    let kind = TYPES.iter().copied().find(|t| {
        i.checked_sub(t.len()).is_some_and(|s| {
            a.get(s..i) == Some(*t)
                && s.checked_sub(1)
                    .is_none_or(|p| a.get(p).is_some_and(|&c| is_delim(c)))
        })
    })?;
    if is_delim(*a.get(i + 1)?) {
        return None;
    }
    let start = i - kind.len();
    let (_, end) = token(a, i, i + 1);
    let name = a.get(start..end)?;
    let lower_ends = |suffix: &[u8]| {
        name.len() >= suffix.len()
            && name
                .get(name.len() - suffix.len()..)
                .is_some_and(|t| t.eq_ignore_ascii_case(suffix))
    };
    // A keytab, or a template from a config file (`FILE:/tmp/krb5cc_%{uid}`).
    if lower_ends(b"keytab") || lower_ends(b".kt") || name.iter().any(|&c| c == b'%' || c == b'$') {
        return None;
    }
    let uid = match kind {
        b"KCM" => uid_at(a, i + 1),
        b"KEYRING" => a
            .get(i + 1..)
            .and_then(|r| r.strip_prefix(b"persistent:"))
            .and_then(|_| uid_at(a, i + 1 + b"persistent:".len())),
        _ => None,
    };
    Some(Hit { start, end, uid })
}

/// The file a cache name refers to: a bare path, or the rest of a `FILE:`
/// or `DIR:` name; `None` for caches that are not files (`API:`, `KCM:`, …).
pub(crate) fn cache_path(name: &[u8]) -> Option<&[u8]> {
    if let Some(p) = name
        .strip_prefix(b"FILE:")
        .or_else(|| name.strip_prefix(b"DIR:"))
    {
        return Some(p);
    }
    let colon = name.iter().position(|&b| b == b':');
    let slash = name.iter().position(|&b| b == b'/');
    match (colon, slash) {
        // A type prefix before any slash: not a file.
        (Some(c), Some(s)) if c < s => None,
        (Some(_), None) => None,
        _ => Some(name),
    }
}

/// Why a `KRB5CCNAME` looks like a replayed ticket: it names another user's
/// cache by the uid in it, or a cache in a directory anyone can write to.
/// (A link to an earlier copy is the engine's to find.)
pub(crate) fn replay_suspect(name: &[u8], ids: Option<Ids>) -> bool {
    if ids.is_some() && scan(&[name], ids).other_user {
        return true;
    }
    cache_path(name).is_some_and(|p| {
        WORLD_WRITABLE
            .iter()
            .any(|d| p.len() > d.len() && p.starts_with(d))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn first(arg: &str) -> Option<String> {
        scan(&[arg], None)
            .first
            .map(|t| String::from_utf8_lossy(t).into_owned())
    }

    const ME: Option<Ids> = Some(Ids {
        uid: 1000,
        euid: 1000,
    });

    #[test]
    fn names_are_found_inside_tokens() {
        let cases = [
            ("/tmp/krb5cc_1000", Some("/tmp/krb5cc_1000")),
            ("/tmp/KRB5CC_501", Some("/tmp/KRB5CC_501")),
            ("file=@/tmp/krb5cc_1000_AbC", Some("/tmp/krb5cc_1000_AbC")),
            (
                "open('/tmp/krb5cc_1001','rb').read()",
                Some("/tmp/krb5cc_1001"),
            ),
            ("FILE:/tmp/krb5cc_1000", Some("FILE:/tmp/krb5cc_1000")),
            ("KRB5CCNAME=FILE:/tmp/x", Some("FILE:/tmp/x")),
            ("/run/user/1000/krb5cc", Some("/run/user/1000/krb5cc")),
            (
                "/run/user/1000/krb5cc/tkt",
                Some("/run/user/1000/krb5cc/tkt"),
            ),
            ("/tmp/alice.ccache", Some("/tmp/alice.ccache")),
            ("ADMIN.CCACHE", Some("ADMIN.CCACHE")),
            ("ticket.kirbi", Some("ticket.kirbi")),
            (
                "/var/lib/sss/db/ccache_EXAMPLE.COM",
                Some("/var/lib/sss/db/ccache_EXAMPLE.COM"),
            ),
            ("ccache_EXAMPLE.COM", Some("ccache_EXAMPLE.COM")),
            ("KCM:1000", Some("KCM:1000")),
            ("API:ABCD-1234", Some("API:ABCD-1234")),
            ("KEYRING:persistent:1000", Some("KEYRING:persistent:1000")),
            (
                "DIR::/run/user/1000/krb5cc/tkt",
                Some("DIR::/run/user/1000/krb5cc/tkt"),
            ),
            ("/tmp/krb5cc_*", Some("/tmp/krb5cc_*")),
        ];
        for (arg, want) in cases {
            assert_eq!(first(arg).as_deref(), want, "{arg}");
        }
    }

    #[test]
    fn look_alikes_are_not_names() {
        for arg in [
            "krb5cc",
            "krb5cc_",
            "FILE:/tmp/krb5cc_%{uid}",
            "default_ccache_name",
            "/etc/krb5.conf",
            "KRB5CCNAME",
            "~/.ccache",
            "/home/u/.ccache/ccache.conf",
            "CCACHE_DIR=/x",
            "/usr/lib/ccache/gcc",
            "x.ccache.bak",
            "FILE:/etc/krb5.keytab",
            "FILE:/tmp/svc.kt",
            "WRFILE:/tmp/k",
            "API:",
            "http://example.com/",
            "notAPI:x",
            "krb5ccache",
            "-l",
            "",
        ] {
            assert_eq!(first(arg), None, "{arg}");
        }
    }

    #[test]
    fn uids_decide_another_users_cache() {
        let s = scan(&["/tmp/krb5cc_1000", "/tmp/x"], ME);
        assert!(s.has_uid && !s.other_user);
        let s = scan(&["/tmp/krb5cc_1000", "/tmp/krb5cc_1001_XyZ"], ME);
        assert!(s.other_user);
        assert_eq!(s.first, Some(&b"/tmp/krb5cc_1000"[..]));
        assert!(scan(&["/run/user/0/krb5cc"], ME).other_user);
        assert!(scan(&["KCM:0"], ME).other_user);
        assert!(scan(&["KEYRING:persistent:1001:x"], ME).other_user);
        // euid counts as the process's own.
        let setuid = Some(Ids {
            uid: 1000,
            euid: 1001,
        });
        assert!(!scan(&["/tmp/krb5cc_1001"], setuid).other_user);
        // Unknown ids decide nothing; no uid decides nothing.
        assert!(!scan(&["/tmp/krb5cc_1001"], None).other_user);
        let s = scan(&["/tmp/alice.ccache"], ME);
        assert!(s.found() && !s.has_uid && !s.other_user);
        assert_eq!(uid_at(b"krb5cc_99999999999", 7), None, "11 digits");
    }

    #[test]
    fn long_arguments_are_searched_whole() {
        let pad = "x".repeat(SIMD_FROM);
        let code = format!(
            "{pad} open('/tmp/KRB5CC_1001'); KRB5CCNAME=FILE:/tmp/y; /tmp/ALICE.CCACHE; {pad}"
        );
        let args = [code.as_str()];
        let s = scan(&args, ME);
        assert_eq!(s.first, Some(&b"/tmp/KRB5CC_1001"[..]), "the leftmost name");
        assert!(s.other_user);
        for name in [
            "FILE:/tmp/y;",
            "/tmp/ALICE.CCACHE;",
            "t.kirbi",
            "/var/lib/sss/db/ccache_X",
        ] {
            let arg = format!("{pad}:{pad} {name} {pad}");
            let want = name.trim_end_matches(';');
            assert_eq!(first(&arg).as_deref(), Some(want), "{name}");
        }
        let plain = format!("{pad}/opt/app/lib/a-1.2.3.jar:{pad}");
        assert_eq!(first(&plain), None);
    }

    #[test]
    fn replayed_names() {
        assert!(replay_suspect(b"FILE:/tmp/krb5cc_1001", ME));
        assert!(replay_suspect(b"/tmp/stolen", ME));
        assert!(replay_suspect(b"FILE:/private/tmp/x", None));
        assert!(replay_suspect(b"/Users/Shared/t.ccache", None));
        assert!(!replay_suspect(b"FILE:/home/u/.cache/krb5cc_1000", ME));
        assert!(!replay_suspect(b"API:ABCD", ME));
        assert!(!replay_suspect(b"KCM:1000", ME));
        assert!(replay_suspect(b"KCM:1001", ME));
        assert!(!replay_suspect(b"/tmp/", ME));
        assert_eq!(cache_path(b"FILE:/tmp/x"), Some(&b"/tmp/x"[..]));
        assert_eq!(cache_path(b"stolen"), Some(&b"stolen"[..]));
        assert_eq!(cache_path(b"KCM:1000"), None);
        assert_eq!(cache_path(b"/a:b"), Some(&b"/a:b"[..]));
    }
}
