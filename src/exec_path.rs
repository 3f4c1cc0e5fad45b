//! What an exec's path says about the program that really runs.
//!
//! An attacker who cannot rename a Kerberos tool's arguments can still hide
//! its file: run it through the dynamic loader (the path is then `ld-linux`),
//! from memory (`/memfd:x (deleted)`), from a deleted or tmpfs file, or from a
//! path too long for the audit subsystem to print (`<too_long>`). The
//! classifier uses these helpers to look through such paths. They only look
//! at bytes: no stat, no allocation, so they can run on every exec.

/// A glibc or musl dynamic loader, by file name: `ld-linux-x86-64.so.2`,
/// `ld-linux-aarch64.so.1`, `ld-2.31.so`, `ld.so`, `ld64.so.2`,
/// `ld-musl-x86_64.so.1`.
#[inline]
pub(crate) fn is_loader(name: &[u8]) -> bool {
    if !name.starts_with(b"ld") {
        return false;
    }
    let rest = if let Some(r) = name.strip_prefix(b"ld-") {
        r
    } else if let Some(r) = name.strip_prefix(b"ld64.") {
        r
    } else if let Some(r) = name.strip_prefix(b"ld.") {
        r
    } else {
        return false;
    };
    rest.starts_with(b"so") || contains(rest, b".so")
}

/// glibc's and musl's loader options that take the next argument as their
/// value (glibc `elf/rtld.c`, musl `ldso/dynlink.c`).
const LOADER_VALUE_OPTIONS: &[&[u8]] = &[
    b"--library-path",
    b"--inhibit-rpath",
    b"--audit",
    b"--preload",
    b"--argv0",
    b"--glibc-hwcaps-prefix",
    b"--glibc-hwcaps-mask",
];

/// Loader options without a value.
const LOADER_FLAGS: &[&[u8]] = &[
    b"--list",
    b"--verify",
    b"--inhibit-cache",
    b"--list-tunables",
    b"--list-diagnostics",
    b"--help",
    b"--version",
];

/// Loaders running loaders are looked through this many times at most.
const MAX_LOADER_DEPTH: usize = 4;

/// The program an exec runs and its argv: for the dynamic loader
/// (`ld-linux-x86-64.so.2 [options] PROGRAM ARGS…`) the loader's first
/// argument that is not one of its options, with the arguments from there
/// on (so the program's own argv\[0\] is its path); otherwise the exec itself.
/// The loader takes any argument it does not know as the program, as this
/// does. Returns whether a loader was looked through.
#[inline]
pub(crate) fn through_loader<'a, A: AsRef<[u8]>>(
    path: &'a [u8],
    argv: &'a [A],
) -> (&'a [u8], &'a [A], bool) {
    let mut path = path;
    let mut argv = argv;
    let mut looked = false;
    for _ in 0..MAX_LOADER_DEPTH {
        let name = if is_usable(path) {
            basename(path)
        } else {
            argv.first().map_or(&[][..], |a| basename(a.as_ref()))
        };
        if !is_loader(name) {
            break;
        }
        let mut i = 1;
        let program = loop {
            let Some(arg) = argv.get(i).map(AsRef::as_ref) else {
                break None;
            };
            if LOADER_FLAGS.contains(&arg) {
                i += 1;
            } else if LOADER_VALUE_OPTIONS.contains(&arg) {
                i += 2;
            } else if arg.starts_with(b"--")
                && LOADER_VALUE_OPTIONS
                    .iter()
                    .any(|o| arg.starts_with(o) && arg.get(o.len()) == Some(&b'='))
            {
                i += 1;
            } else {
                break Some(i);
            }
        };
        let Some(i) = program else {
            break;
        };
        let (Some(p), Some(rest)) = (argv.get(i), argv.get(i..)) else {
            break;
        };
        path = p.as_ref();
        argv = rest;
        looked = true;
    }
    (path, argv, looked)
}

/// Whether the path names the file at all. Linux audit prints `<too_long>`
/// for a path longer than PATH_MAX and `(null)` or `?` when it has none;
/// other sources may give nothing.
#[inline]
pub(crate) fn is_usable(path: &[u8]) -> bool {
    !(path.is_empty()
        || path == b"(null)"
        || path == b"?"
        || (path.first() == Some(&b'<') && path.last() == Some(&b'>')))
}

const DELETED: &[u8] = b" (deleted)";

/// A program that runs from no file a defender can find afterwards: a memfd
/// (`/memfd:NAME (deleted)`), a deleted file (`… (deleted)`), tmpfs shared
/// memory (`/dev/shm/…`), or a file descriptor (`/proc/self/fd/N`,
/// `/proc/PID/fd/N`, `/dev/fd/N`), as fexecve and loaders use.
pub(crate) fn is_fileless(path: &[u8]) -> bool {
    if path.ends_with(DELETED) || basename(path).starts_with(b"memfd:") {
        return true;
    }
    if path.starts_with(b"/dev/shm/")
        || path.starts_with(b"/run/shm/")
        || path.starts_with(b"/dev/fd/")
    {
        return true;
    }
    // /proc/self/fd/N, /proc/thread-self/fd/N, /proc/1234/fd/N
    let Some(rest) = path.strip_prefix(b"/proc/") else {
        return false;
    };
    let Some(slash) = rest.iter().position(|&b| b == b'/') else {
        return false;
    };
    let (who, tail) = rest.split_at(slash);
    let who_ok = who == b"self"
        || who == b"thread-self"
        || (!who.is_empty() && who.iter().all(u8::is_ascii_digit));
    who_ok && tail.starts_with(b"/fd/")
}

/// The name the program runs under, for looking it up: the path's file name
/// without a memfd's `memfd:` prefix or the ` (deleted)` suffix, or argv\[0\]'s
/// when the path is unusable (see [`is_usable`]).
#[inline]
pub(crate) fn program_name<'a>(path: &'a [u8], argv0: &'a [u8]) -> &'a [u8] {
    if !is_usable(path) {
        return basename(argv0);
    }
    let name = basename(path);
    // The common case: an ordinary file name.
    if !name.is_empty() && name.last() != Some(&b')') && !name.starts_with(b"memfd:") {
        return name;
    }
    let mut name = basename(path.strip_suffix(DELETED).unwrap_or(path));
    if let Some(n) = name.strip_prefix(b"memfd:") {
        name = n;
    }
    if name.is_empty() {
        basename(argv0)
    } else {
        name
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The last path component of `path` (the whole slice if it has no '/').
#[inline]
pub(crate) fn basename(path: &[u8]) -> &[u8] {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => path.get(i + 1..).unwrap_or_default(),
        None => path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loaders_by_name() {
        for n in [
            "ld-linux-x86-64.so.2",
            "ld-linux-aarch64.so.1",
            "ld-linux.so.2",
            "ld-linux-armhf.so.3",
            "ld-2.31.so",
            "ld.so",
            "ld64.so.2",
            "ld64.so.1",
            "ld-musl-x86_64.so.1",
        ] {
            assert!(is_loader(n.as_bytes()), "{n}");
        }
        for n in [
            "ld",
            "ldd",
            "ld.gold",
            "ld.bfd",
            "ld-wrapper",
            "ldconfig",
            "old.so",
            "",
        ] {
            assert!(!is_loader(n.as_bytes()), "{n}");
        }
    }

    #[test]
    fn the_loader_is_looked_through() {
        let argv = [
            "/lib64/ld-linux-x86-64.so.2",
            "--library-path",
            "/x",
            "--inhibit-cache",
            "--argv0=kcc",
            "/tmp/kcc",
            "copy_cred_cache",
        ];
        let (p, a, looked) =
            through_loader(b"/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", &argv);
        assert!(looked);
        assert_eq!(p, b"/tmp/kcc");
        assert_eq!(a, &argv[5..]);
        // A loader with no program runs nothing.
        let argv = ["ld.so", "--list"];
        let (p, a, looked) = through_loader(b"/lib/ld.so", &argv);
        assert_eq!((p, a.len(), looked), (&b"/lib/ld.so"[..], 2, false));
        // Not a loader.
        let argv = ["ls", "/tmp"];
        assert!(!through_loader(b"/bin/ls", &argv).2);
        // A loader running a loader.
        let argv = ["ld.so", "/lib/ld-musl-x86_64.so.1", "/tmp/k", "c"];
        let (p, a, _) = through_loader(b"/lib/ld.so", &argv);
        assert_eq!((p, a), (&b"/tmp/k"[..], &argv[2..]));
    }

    #[test]
    fn fileless_paths() {
        for p in [
            "/memfd:kcc (deleted)",
            "/memfd: (deleted)",
            "/tmp/kcc (deleted)",
            "/dev/shm/kcc",
            "/proc/self/fd/3",
            "/proc/4242/fd/7",
            "/proc/thread-self/fd/3",
            "/dev/fd/3",
        ] {
            assert!(is_fileless(p.as_bytes()), "{p}");
        }
        for p in [
            "/usr/bin/kcc",
            "/proc/self/exe",
            "/proc/x/fd/3",
            "/tmp/deleted",
            "",
        ] {
            assert!(!is_fileless(p.as_bytes()), "{p}");
        }
    }

    #[test]
    fn names_of_odd_paths() {
        assert_eq!(program_name(b"/memfd:kcc (deleted)", b"x"), b"kcc");
        assert_eq!(program_name(b"/tmp/kcc (deleted)", b"x"), b"kcc");
        assert_eq!(program_name(b"<too_long>", b"/a/b/kcc"), b"kcc");
        assert_eq!(program_name(b"", b"kcc"), b"kcc");
        assert_eq!(program_name(b"(null)", b"kcc"), b"kcc");
        assert_eq!(program_name(b"/memfd: (deleted)", b"kcc"), b"kcc");
        assert_eq!(program_name(b"/usr/bin/kcc", b"klist"), b"kcc");
        assert!(!is_usable(b"<too_long>"));
        assert!(is_usable(b"/usr/bin/kcc"));
    }
}
