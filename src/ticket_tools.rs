//! Well-known Kerberos attack tooling, recognised by name in argv.
//!
//! Stolen caches are converted and replayed with a handful of public tools:
//! impacket's example scripts, kerbrute, Rubeus. They are scripts or .NET
//! assemblies as often as binaries, so the name is looked for in three
//! places: the executable, argv\[0\], and the first operand of an
//! interpreter (`python3 …/getTGT.py`, `mono Rubeus.exe`, `wine Rubeus.exe`;
//! a `#!` script's exec is its interpreter's). The table is the one place to
//! add a tool; docs/indicators.md lists the references.

use crate::exec_path::basename;
use crate::indicator::Indicator;

/// How a table entry's name may be spelled.
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// The name without decoration, lower case.
    stem: &'static str,
    /// The `tool` column value.
    tool: &'static str,
    indicator: Indicator,
    /// Any name that starts with the stem (kerbrute's release binaries are
    /// `kerbrute_linux_amd64` and the like).
    prefix: bool,
    /// Only with this exact argument (secretsdump authenticates with a
    /// Kerberos cache only with `-k`).
    requires: Option<&'static str>,
}

const fn tool(stem: &'static str, tool: &'static str, indicator: Indicator) -> Entry {
    Entry {
        stem,
        tool,
        indicator,
        prefix: false,
        requires: None,
    }
}

/// impacket (`examples/*.py`, installed as `getTGT.py` by pip and as
/// `impacket-getTGT` by Debian and Kali), kerbrute, Rubeus.
const TABLE: &[Entry] = &[
    tool(
        "ticketconverter",
        "ticketConverter.py",
        Indicator::KerberosTicketTool,
    ),
    tool("gettgt", "getTGT.py", Indicator::KerberosTicketTool),
    tool("getst", "getST.py", Indicator::KerberosTicketTool),
    tool("ticketer", "ticketer.py", Indicator::KerberosTicketTool),
    tool(
        "describeticket",
        "describeTicket.py",
        Indicator::KerberosTicketTool,
    ),
    Entry {
        requires: Some("-k"),
        ..tool(
            "secretsdump",
            "secretsdump.py",
            Indicator::KerberosTicketTool,
        )
    },
    Entry {
        prefix: true,
        ..tool("kerbrute", "kerbrute", Indicator::KerberosBruteforceTool)
    },
    tool("rubeus", "Rubeus", Indicator::KerberosTicketTool),
];

/// A table entry matched: the `tool` column and the indicator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Match {
    pub tool: &'static str,
    pub indicator: Indicator,
}

/// `name` without the decorations the tools are installed with: an
/// `impacket-` prefix, a `.py` or `.exe` suffix.
fn undecorated(name: &[u8]) -> &[u8] {
    let mut n = name;
    if n.len() > 9
        && n.get(..9)
            .is_some_and(|p| p.eq_ignore_ascii_case(b"impacket-"))
    {
        n = n.get(9..).unwrap_or_default();
    }
    for suffix in [&b".py"[..], b".exe", b".dll"] {
        if n.len() > suffix.len()
            && n.get(n.len() - suffix.len()..)
                .is_some_and(|s| s.eq_ignore_ascii_case(suffix))
        {
            n = n.get(..n.len() - suffix.len()).unwrap_or_default();
            break;
        }
    }
    n
}

/// First letters of the table's names as installed (`impacket-…` too), any
/// case: most names are rejected on their first byte.
static FIRST: [bool; 256] = {
    let mut t = [false; 256];
    let letters = b"tgsdkrTGSDKRiI";
    let mut i = 0;
    while i < letters.len() {
        t[letters[i] as usize] = true;
        i += 1;
    }
    t
};

fn lookup(name: &[u8]) -> Option<&'static Entry> {
    if !FIRST[usize::from(*name.first()?)] {
        return None;
    }
    let stem = undecorated(name);
    // Most names share no first letter with the table: reject them fast.
    let first = stem.first()?.to_ascii_lowercase();
    TABLE.iter().find(|e| {
        let s = e.stem.as_bytes();
        s.first() == Some(&first)
            && if e.prefix {
                stem.len() >= s.len()
                    && stem
                        .get(..s.len())
                        .is_some_and(|p| p.eq_ignore_ascii_case(s))
            } else {
                stem.eq_ignore_ascii_case(s)
            }
    })
}

/// Interpreters a tool runs under, by the start of their name
/// (`python3.11`, `pypy3`, `mono-sgen`, `wine64-preloader`).
const INTERPRETERS: &[&[u8]] = &[b"python", b"pypy", b"mono", b"wine", b"dotnet"];

fn is_interpreter(name: &[u8]) -> bool {
    matches!(name.first(), Some(b'p' | b'm' | b'w' | b'd'))
        && INTERPRETERS.iter().any(|i| name.starts_with(i))
}

/// The script or assembly an interpreter runs: its first operand, after
/// its own options. `python -c`/`-m` run no file. Python's `-W`/`-X` take
/// the next argument as their value.
fn interpreted<A: AsRef<[u8]>>(args: &[A]) -> Option<(&[u8], usize)> {
    let mut i = 0;
    while let Some(arg) = args.get(i).map(AsRef::as_ref) {
        if arg == b"--" {
            return args.get(i + 1).map(|a| (a.as_ref(), i + 1));
        }
        match arg.strip_prefix(b"-") {
            Some(b"") | None => return Some((arg, i)),
            Some(opts) if !arg.starts_with(b"--") => {
                if opts.contains(&b'c') || opts.contains(&b'm') {
                    return None;
                }
                i += if opts == b"W" || opts == b"X" { 2 } else { 1 };
            }
            Some(_) => i += 1,
        }
    }
    None
}

/// Whether `name` could be a table entry's or an interpreter's, by its
/// first byte: most execs stop here.
#[inline]
fn maybe(name: &[u8]) -> bool {
    name.first()
        .is_some_and(|&b| FIRST[usize::from(b)] || matches!(b, b'p' | b'm' | b'w' | b'd'))
}

/// The attack tool an exec runs, if any: by the executable's name, argv\[0\]'s,
/// or the script an interpreter runs.
#[inline]
pub(crate) fn find<A: AsRef<[u8]>>(name: &[u8], argv: &[A]) -> Option<Match> {
    let argv0 = argv.first().map_or(&[][..], |a| basename(a.as_ref()));
    if !maybe(name) && !maybe(argv0) {
        return None;
    }
    find_slow(name, argv0, argv)
}

#[inline(never)]
fn find_slow<A: AsRef<[u8]>>(name: &[u8], argv0: &[u8], argv: &[A]) -> Option<Match> {
    let args = argv.get(1..).unwrap_or_default();
    let (entry, rest) = if let Some(e) = lookup(name).or_else(|| lookup(argv0)) {
        (e, args)
    } else if is_interpreter(name) || is_interpreter(argv0) {
        let (script, at) = interpreted(args)?;
        // wine takes Windows paths too.
        let file = script
            .iter()
            .rposition(|&b| b == b'/' || b == b'\\')
            .map_or(script, |i| script.get(i + 1..).unwrap_or_default());
        (lookup(file)?, args.get(at + 1..).unwrap_or_default())
    } else {
        return None;
    };
    if let Some(required) = entry.requires {
        if !rest.iter().any(|a| a.as_ref() == required.as_bytes()) {
            return None;
        }
    }
    Some(Match {
        tool: entry.tool,
        indicator: entry.indicator,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool_of(path: &str, argv: &[&str]) -> Option<&'static str> {
        let name = basename(path.as_bytes());
        find(name, argv).map(|m| m.tool)
    }

    #[test]
    fn names_as_installed() {
        assert_eq!(
            tool_of(
                "/usr/local/bin/getTGT.py",
                &["getTGT.py", "-hashes", ":x", "d/u"]
            ),
            Some("getTGT.py")
        );
        assert_eq!(
            tool_of("/usr/bin/impacket-getTGT", &["impacket-getTGT", "d/u"]),
            Some("getTGT.py")
        );
        assert_eq!(
            tool_of(
                "/usr/bin/python3.11",
                &[
                    "python3",
                    "-u",
                    "/opt/impacket/examples/ticketConverter.py",
                    "a.kirbi",
                    "a.ccache"
                ]
            ),
            Some("ticketConverter.py")
        );
        assert_eq!(
            tool_of(
                "/usr/bin/python3",
                &[
                    "/usr/bin/python3",
                    "-W",
                    "ignore",
                    "/usr/bin/impacket-getST",
                    "-spn",
                    "x"
                ]
            ),
            Some("getST.py")
        );
        assert_eq!(
            tool_of(
                "/opt/kerbrute_linux_amd64",
                &["./kerbrute_linux_amd64", "userenum"]
            ),
            Some("kerbrute")
        );
        assert_eq!(
            tool_of(
                "/usr/bin/mono-sgen",
                &["mono", "--debug", "Rubeus.exe", "dump"]
            ),
            Some("Rubeus")
        );
        for script in ["C:\\x\\Rubeus.exe", "/tmp/rubeus.exe"] {
            assert_eq!(
                tool_of("/usr/bin/wine64-preloader", &["wine64", script, "asktgt"]),
                Some("Rubeus")
            );
        }
    }

    #[test]
    fn secretsdump_only_with_kerberos() {
        assert_eq!(
            tool_of(
                "/usr/bin/python3",
                &["python3", "secretsdump.py", "-k", "-no-pass", "dc01"]
            ),
            Some("secretsdump.py")
        );
        assert_eq!(
            tool_of(
                "/usr/bin/python3",
                &["python3", "secretsdump.py", "-hashes", ":x", "dc01"]
            ),
            None
        );
    }

    #[test]
    fn look_alikes_are_not_tools() {
        for (path, argv) in [
            ("/usr/bin/python3", &["python3", "-c", "import getTGT"][..]),
            ("/usr/bin/python3", &["python3", "-m", "getTGT"]),
            ("/usr/bin/python3", &["python3", "manage.py", "getTGT.py"]),
            ("/usr/bin/git", &["git", "log", "getTGT.py"]),
            ("/usr/bin/vim", &["vim", "getTGT.py"]),
            ("/bin/ls", &["ls"]),
            ("/usr/bin/getty", &["getty"]),
            ("/usr/bin/py", &["py"]),
            ("", &[]),
        ] {
            assert_eq!(tool_of(path, argv), None, "{argv:?}");
        }
    }
}
