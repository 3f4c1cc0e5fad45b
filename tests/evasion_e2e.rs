//! An attacker's variants of `kcc copy_cred_cache`, and the theft of another
//! user's credential cache, run for real and caught through `linux_audit`
//! (`--standalone --source linux_audit`): the dynamic loader, a memfd, a hard
//! link, a renamed copy, a path longer than PATH_MAX, fexecve, and `cp` of a
//! `krb5cc_<uid>` file by another user. Every "kcc" here is a copy of
//! /bin/true. Rows are matched by the pids these tests start, never by name.
//! Needs root; CI runs as root.
#![cfg(target_os = "linux")]

use serde_json::Value;
use std::collections::HashMap;
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod support;
use support::audit_ext;

use audit_ext::{AuditGuard, Extension};

/// The rows of these pids (one each), waiting up to `timeout` for all.
fn rows_of(ext: &Extension, pids: &[i64], timeout: Duration) -> HashMap<i64, Value> {
    let deadline = Instant::now() + timeout;
    let mut got: HashMap<i64, Value> = HashMap::new();
    while got.len() < pids.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        let next = ext.collect(1, left, |r| {
            r["pid"]
                .as_i64()
                .is_some_and(|p| pids.contains(&p) && !got.contains_key(&p))
        });
        let Some(row) = next.into_iter().next() else {
            break;
        };
        if let Some(pid) = row["pid"].as_i64() {
            got.insert(pid, row);
        }
    }
    got
}

/// Root, the audit lock, the state to restore and a running extension with
/// its own state directory; None (test skipped, with a `SKIPPED:` line) when
/// not root or when audit cannot run here.
struct Setup {
    guard: AuditGuard,
    _state: tempfile::TempDir,
    ext: Extension,
}

impl Setup {
    fn new() -> Option<Setup> {
        let guard = AuditGuard::take("evasion e2e")?;
        let state = tempfile::tempdir().unwrap();
        let ext = Extension::start(&state.path().join("state"))?;
        Some(Setup {
            guard,
            _state: state,
            ext,
        })
    }

    /// Stops the extension, asserts the audit state is the one found, and
    /// returns the extension's log.
    fn finish(self) -> String {
        let log = self.ext.stop();
        self.guard.finish();
        log
    }
}

fn cstring(bytes: &[u8]) -> CString {
    CString::new(bytes).unwrap()
}

/// argv as C strings and the NULL-terminated pointer array execve wants,
/// built before fork (a forked child must not allocate).
struct CArgv {
    _strings: Vec<CString>,
    ptrs: Vec<usize>,
}

impl CArgv {
    fn new(argv: &[&str]) -> CArgv {
        let strings: Vec<CString> = argv.iter().map(|a| cstring(a.as_bytes())).collect();
        let mut ptrs: Vec<usize> = strings.iter().map(|s| s.as_ptr() as usize).collect();
        ptrs.push(0);
        CArgv {
            _strings: strings,
            ptrs,
        }
    }
}

/// Starts a child that runs the file open at `fd` with `argv` by fexecve(3)
/// (execveat with AT_EMPTY_PATH): no path is ever given to exec.
fn spawn_fexecve(fd: i32, argv: &[&str]) -> std::io::Result<Child> {
    let args = Arc::new(CArgv::new(argv));
    let env = Arc::new(CArgv::new(&[]));
    let mut cmd = Command::new("/bin/false");
    // SAFETY: the closure only calls fexecve (async-signal-safe) on memory
    // prepared before fork, and returns the error if it fails.
    unsafe {
        cmd.pre_exec(move || {
            libc::fexecve(
                fd,
                args.ptrs.as_ptr() as *const *const libc::c_char,
                env.ptrs.as_ptr() as *const *const libc::c_char,
            );
            Err(std::io::Error::last_os_error())
        });
    }
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).spawn()
}

/// A memfd named `name` holding /bin/true.
fn memfd_true(name: &str) -> OwnedFd {
    let cname = cstring(name.as_bytes());
    // SAFETY: a valid C string; flags 0 (the fd is inherited, not sealed).
    let fd = unsafe { libc::memfd_create(cname.as_ptr(), 0) };
    assert!(fd >= 0, "memfd_create: {}", std::io::Error::last_os_error());
    // SAFETY: a fresh fd we own.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut file = std::fs::File::from(owned.try_clone().unwrap());
    std::io::Write::write_all(&mut file, &std::fs::read("/bin/true").unwrap()).unwrap();
    owned
}

/// A copy of /bin/true at `path`, executable.
fn true_at(path: &Path) -> PathBuf {
    support::procs::copy_exe("/bin/true", path)
}

/// A directory chain under `base` whose full path is longer than PATH_MAX
/// (made with *at calls: no path that long is ever passed to the kernel),
/// with /bin/true as `kcc` at the bottom. Returns the components.
fn deep_kcc(base: &Path) -> Vec<CString> {
    let component = "d".repeat(250);
    let parts: Vec<CString> = (0..20).map(|_| cstring(component.as_bytes())).collect();
    let base_c = cstring(base.as_os_str().as_bytes());
    // SAFETY: plain *at syscalls on fds this function owns and closes.
    unsafe {
        let mut dir = libc::open(base_c.as_ptr(), libc::O_DIRECTORY | libc::O_RDONLY);
        assert!(dir >= 0);
        for p in &parts {
            assert_eq!(libc::mkdirat(dir, p.as_ptr(), 0o755), 0);
            let next = libc::openat(dir, p.as_ptr(), libc::O_DIRECTORY | libc::O_RDONLY);
            assert!(next >= 0);
            libc::close(dir);
            dir = next;
        }
        let name = cstring(b"kcc");
        let fd = libc::openat(
            dir,
            name.as_ptr(),
            libc::O_CREAT | libc::O_WRONLY | libc::O_EXCL,
            0o755,
        );
        assert!(fd >= 0);
        let mut file = std::fs::File::from_raw_fd(fd);
        std::io::Write::write_all(&mut file, &std::fs::read("/bin/true").unwrap()).unwrap();
        libc::close(dir);
    }
    parts
}

/// Runs `./kcc copy_cred_cache` from the bottom of `deep_kcc`'s chain: the
/// child walks down with relative chdirs before its exec.
fn spawn_deep(base: &Path, parts: Vec<CString>) -> std::io::Result<Child> {
    let base_c = cstring(base.as_os_str().as_bytes());
    let mut cmd = Command::new("./kcc");
    cmd.arg("copy_cred_cache");
    // SAFETY: chdir is async-signal-safe; the strings were made before fork.
    unsafe {
        cmd.pre_exec(move || {
            if libc::chdir(base_c.as_ptr()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            for p in &parts {
                if libc::chdir(p.as_ptr()) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).spawn()
}

/// The dynamic loader of this host, if it has a known one.
fn loader() -> Option<&'static str> {
    [
        "/lib64/ld-linux-x86-64.so.2",
        "/lib/ld-linux-aarch64.so.1",
        "/lib/ld-linux-armhf.so.3",
        "/lib/ld-musl-x86_64.so.1",
        "/lib/ld-musl-aarch64.so.1",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists())
}

/// One variant: the pid it ran as and what its row must say.
struct Case {
    name: &'static str,
    pid: i64,
    indicator: &'static str,
    tool: &'static str,
    /// The row's `name` column, when it matters.
    row_name: Option<String>,
}

fn run(child: std::io::Result<Child>) -> i64 {
    let mut child = child.unwrap();
    let pid = i64::from(child.id());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    pid
}

#[test]
fn every_evasion_of_kcc_copy_cred_cache_is_reported() {
    let Some(setup) = Setup::new() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let kcc = true_at(&d.join("kcc"));
    let mut cases = Vec::new();

    // Through the dynamic loader.
    match loader() {
        Some(ld) => cases.push(Case {
            name: "loader",
            pid: run(Command::new(ld)
                .arg(&kcc)
                .arg("copy_cred_cache")
                .stdout(Stdio::null())
                .spawn()),
            indicator: "credential_cache_copy",
            tool: "kcc",
            row_name: None,
        }),
        // The other cases ran; the test still counts as skipped, since one did not.
        None => support::fixtures::skip("loader case: no known dynamic loader here"),
    }

    // memfd, named kcc and named x, run by fexecve.
    let mem_kcc = memfd_true("kcc");
    cases.push(Case {
        name: "memfd named kcc",
        pid: run(spawn_fexecve(
            mem_kcc.as_raw_fd(),
            &["kcc", "copy_cred_cache"],
        )),
        indicator: "credential_cache_copy,fileless_exec",
        tool: "kcc",
        row_name: Some("memfd:kcc (deleted)".into()),
    });
    let mem_x = memfd_true("x");
    cases.push(Case {
        name: "memfd named x",
        pid: run(spawn_fexecve(mem_x.as_raw_fd(), &["x", "copy_cred_cache"])),
        indicator: "credential_cache_copy,unverified_kerberos_tool,fileless_exec",
        tool: "",
        row_name: Some("memfd:x (deleted)".into()),
    });

    // A hard link under another name, and a renamed copy.
    let linked = d.join("ticketz");
    std::fs::hard_link(&kcc, &linked).unwrap();
    cases.push(Case {
        name: "hard link",
        pid: run(Command::new(&linked).arg("copy_cred_cache").spawn()),
        indicator: "credential_cache_copy,unverified_kerberos_tool",
        tool: "",
        row_name: Some("ticketz".into()),
    });
    let renamed = true_at(&d.join("update-helper"));
    cases.push(Case {
        name: "renamed copy",
        pid: run(Command::new(&renamed)
            .args(["COPY_CRED_CACHE", "/tmp/evasion-e2e-out"])
            .spawn()),
        indicator: "credential_cache_copy,unverified_kerberos_tool",
        tool: "",
        row_name: Some("update-helper".into()),
    });

    // fexecve of the file: no path in the exec at all.
    let file = std::fs::File::open(&kcc).unwrap();
    cases.push(Case {
        name: "fexecve",
        pid: run(spawn_fexecve(file.as_raw_fd(), &["kcc", "copy_cred_cache"])),
        indicator: "credential_cache_copy",
        tool: "kcc",
        row_name: Some("kcc".into()),
    });

    // A path longer than PATH_MAX: audit prints it as <too_long>.
    let parts = deep_kcc(d);
    cases.push(Case {
        name: "path over 4096 bytes",
        pid: run(spawn_deep(d, parts)),
        indicator: "credential_cache_copy,unresolved_exe_path",
        tool: "kcc",
        row_name: Some("kcc".into()),
    });

    let pids: Vec<i64> = cases.iter().map(|c| c.pid).collect();
    let rows = rows_of(&setup.ext, &pids, Duration::from_secs(15));
    let log = setup.finish();
    let mut failures = Vec::new();
    for case in &cases {
        let Some(row) = rows.get(&case.pid) else {
            failures.push(format!("{}: no row for pid {}", case.name, case.pid));
            continue;
        };
        let got = (
            row["indicator"].as_str().unwrap_or("?"),
            row["tool"].as_str().unwrap_or("?"),
            row["action"].as_str().unwrap_or("?"),
            row["source"].as_str().unwrap_or("?"),
        );
        let want = (case.indicator, case.tool, "copy_cred_cache", "linux_audit");
        if got != want {
            failures.push(format!(
                "{}: got {got:?}, want {want:?}; row {row}",
                case.name
            ));
        }
        if let Some(name) = &case.row_name {
            if row["name"] != name.as_str() {
                failures.push(format!("{}: name {}, want {name}", case.name, row["name"]));
            }
        }
        println!(
            "{}: path {} indicator {}",
            case.name, row["path"], row["indicator"]
        );
    }
    assert!(
        failures.is_empty(),
        "{}\nextension log:\n{log}",
        failures.join("\n")
    );
}

/// `uid` for a throwaway owner: no account is needed to own a file.
const OWNER: u32 = 54321;
const NOBODY: u32 = 65534;

#[test]
fn cp_of_another_users_cache_is_theft_across_users() {
    use std::os::unix::fs::PermissionsExt;
    let Some(setup) = Setup::new() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let cache = dir.path().join(format!("krb5cc_{OWNER}"));
    std::fs::write(&cache, b"\x05\x04not really a ticket").unwrap();
    std::os::unix::fs::chown(&cache, Some(OWNER), Some(OWNER)).unwrap();
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o600)).unwrap();
    let dest = dir.path().join("stolen");

    // cp by nobody (it fails: the cache is 0600), by its owner, by root.
    let cp_as = |uid: Option<u32>| {
        let mut cmd = Command::new("cp");
        cmd.arg(&cache).arg(&dest).stderr(Stdio::null());
        if let Some(uid) = uid {
            cmd.uid(uid).gid(uid);
        }
        let mut child = cmd.spawn().unwrap();
        let pid = i64::from(child.id());
        child.wait().unwrap();
        pid
    };
    let by_nobody = cp_as(Some(NOBODY));
    let by_owner = cp_as(Some(OWNER));
    let by_root = cp_as(None);

    let rows = rows_of(
        &setup.ext,
        &[by_nobody, by_owner, by_root],
        Duration::from_secs(15),
    );
    let log = setup.finish();
    let want_ccache = format!("FILE:{}", cache.display());
    for (pid, uid, indicator) in [
        (by_nobody, NOBODY, "foreign_ccache_access"),
        (by_owner, OWNER, "ccache_file_access"),
        (by_root, 0, "ccache_file_access"),
    ] {
        let row = rows
            .get(&pid)
            .unwrap_or_else(|| panic!("no row for the cp by uid {uid}; log:\n{log}"));
        assert_eq!(row["indicator"], indicator, "uid {uid}: {row}");
        assert_eq!(row["technique"], "T1558.005");
        assert_eq!(row["uid"], i64::from(uid));
        assert_eq!(row["ccache"], want_ccache.as_str());
        assert_eq!(row["source"], "linux_audit");
    }
}

/// An eslogger exec message (the layout of macOS 14's eslogger) for a
/// replayed capture: `env` is the exec's environment.
fn es_exec(seq: i64, pid: i64, uid: i64, path: &str, args: &[&str], env: &[&str]) -> String {
    let token = serde_json::json!({"auid": uid, "euid": uid, "egid": 20, "ruid": uid,
        "rgid": 20, "pid": pid, "asid": 100020, "pidversion": pid * 10});
    serde_json::json!({
        "schema_version": 1, "version": 7, "event_type": 9,
        "time": "2026-03-02T10:20:30.123456789Z", "mach_time": 1, "seq_num": seq,
        "global_seq_num": seq, "action_type": 1, "thread": {"thread_id": 1},
        "process": {
            "audit_token": token, "executable": {"path": "/bin/zsh", "path_truncated": false},
            "ppid": 3000, "original_ppid": 3000, "signing_id": "com.apple.zsh",
            "team_id": null, "is_platform_binary": true, "cdhash": "AB".repeat(20)
        },
        "event": {"exec": {
            "target": {
                "audit_token": token,
                "executable": {"path": path, "path_truncated": false},
                "ppid": 3000, "original_ppid": 3000, "signing_id": "com.example.x",
                "team_id": null, "is_platform_binary": false, "cdhash": "CD".repeat(20)
            },
            "args": args, "env": env,
            "cwd": {"path": "/Users/eve", "path_truncated": false}
        }}
    })
    .to_string()
}

/// Tickets replayed through KRB5CCNAME, from an eslogger capture (no root
/// needed): another user's cache, and a cache an earlier cp stole.
#[test]
fn krb5ccname_replays_are_reported_from_eslogger() {
    let dir = tempfile::tempdir().unwrap();
    let capture = dir.path().join("capture.jsonl");
    let lines = [
        // eve (501) copies bob's (502) cache into her home directory.
        es_exec(
            1,
            901,
            501,
            "/bin/cp",
            &["cp", "/tmp/krb5cc_502", "stash"],
            &[],
        ),
        // and replays it: the link to the cp.
        es_exec(
            2,
            902,
            501,
            "/usr/bin/smbclient",
            &["smbclient", "-k", "//fs/c$"],
            &["PATH=/usr/bin", "KRB5CCNAME=FILE:/Users/eve/stash"],
        ),
        // bob's cache by name.
        es_exec(
            3,
            903,
            501,
            "/usr/bin/ssh",
            &["ssh", "host"],
            &["KRB5CCNAME=/tmp/krb5cc_502"],
        ),
        // Her own in-memory cache: quiet.
        es_exec(
            4,
            904,
            501,
            "/usr/bin/ssh",
            &["ssh", "host"],
            &["KRB5CCNAME=API:501"],
        ),
    ];
    std::fs::write(&capture, lines.join("\n") + "\n").unwrap();
    let source = format!("eslogger:{}", capture.display());
    let out = support::standalone::run_to_exit(
        &mut support::standalone::source(&source, &dir.path().join("state")),
        support::bounds::RUN_LIMIT,
    );
    assert!(out.status.success(), "{:?}: {}", out.status, out.stderr);
    let rows: HashMap<i64, Value> = out
        .rows()
        .into_iter()
        .map(|r| (r["pid"].as_i64().unwrap(), r))
        .collect();
    let want = [
        (901, "foreign_ccache_access", "FILE:/tmp/krb5cc_502"),
        (902, "ccache_replay", "FILE:/Users/eve/stash"),
        (903, "ccache_replay", "FILE:/tmp/krb5cc_502"),
    ];
    for (pid, indicator, ccache) in want {
        let row = rows
            .get(&pid)
            .unwrap_or_else(|| panic!("no row for {pid}: {rows:?}"));
        assert_eq!(row["indicator"], indicator, "{row}");
        assert_eq!(row["ccache"], ccache, "{row}");
    }
    assert!(!rows.contains_key(&904), "{:?}", rows.get(&904));
    assert_eq!(rows.len(), 3);
}
