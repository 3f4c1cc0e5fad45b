//! scripts/install.sh, the .deb and the .pkg postinstall, run against
//! temporary roots, and the result checked with osqueryd's own autoload
//! rules (reimplemented below from osquery's `loadExtensions` and
//! `safePermissions`, see shared/research/osquery-extension-protocol.md §1.3–1.4).
//! The binary installed is a small script that records how it was called,
//! so the uninstall's `--cleanup-audit` can be checked without touching the
//! host's audit configuration.

mod support;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const EXT: &str = "/opt/kerberos_cache_access/kerberos_cache_access.ext";

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// install.sh chowns to root, as it must for osqueryd to load the file.
macro_rules! need_root {
    () => {
        if !support::fixtures::is_root() {
            support::fixtures::skip("install.sh makes root-owned files; run the tests as root");
            return;
        }
    };
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Os {
    Linux,
    Macos,
}

impl Os {
    fn flag(self) -> &'static str {
        match self {
            Os::Linux => "linux",
            Os::Macos => "macos",
        }
    }
    fn load_file(self) -> &'static str {
        match self {
            Os::Linux => "/etc/osquery/extensions.load",
            Os::Macos => "/var/osquery/extensions.load",
        }
    }
    fn state_dir(self) -> &'static str {
        match self {
            Os::Linux => "/var/lib/kerberos_cache_access",
            Os::Macos => "/var/db/kerberos_cache_access",
        }
    }
}

/// A staging root, and a stand-in binary that appends its argv to `calls`.
struct Root {
    dir: tempfile::TempDir,
    fake: PathBuf,
    calls: PathBuf,
}

impl Root {
    fn new() -> Root {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        fs::create_dir(&root).unwrap();
        let calls = dir.path().join("calls");
        let fake = dir.path().join("build").join("kerberos_cache_access");
        fs::create_dir(fake.parent().unwrap()).unwrap();
        fs::write(
            &fake,
            format!("#!/bin/sh\necho \"$*\" >> '{}'\n", calls.display()),
        )
        .unwrap();
        fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).unwrap();
        Root { dir, fake, calls }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    /// `rel` (absolute on the target) inside the root.
    fn at(&self, rel: &str) -> PathBuf {
        self.path().join(rel.trim_start_matches('/'))
    }

    fn install(&self, os: Os, extra: &[&str]) -> Output {
        let root = self.path();
        let mut args = vec!["--root", root.to_str().unwrap(), "--os", os.flag()];
        args.extend_from_slice(extra);
        run(&repo("scripts/install.sh"), &args)
    }

    fn calls(&self) -> String {
        fs::read_to_string(&self.calls).unwrap_or_default()
    }

    fn load_lines(&self, os: Os) -> Vec<String> {
        fs::read_to_string(self.at(os.load_file()))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

fn run(program: &Path, args: &[&str]) -> Output {
    let out = Command::new(program).args(args).output().unwrap();
    eprintln!(
        "$ {} {}\n{}{}",
        program.display(),
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn ok(out: &Output) {
    assert!(out.status.success(), "exit {:?}", out.status);
}

/// What osqueryd would autoload from `load_file`, with `root` standing for
/// `/`, and why it refuses the rest. osqueryd runs as `osqueryd_uid`.
fn osquery_autoload(root: &Path, load_file: &str, osqueryd_uid: u32) -> (Vec<String>, Vec<String>) {
    let text = fs::read_to_string(root.join(load_file.trim_start_matches('/'))).unwrap_or_default();
    let (mut loaded, mut refused) = (Vec::new(), Vec::new());
    for line in text.split('\n') {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let mut paths = vec![line.to_string()];
        let host = root.join(line.trim_start_matches('/'));
        if host.is_dir() {
            // A directory entry means every file below it.
            paths = walk(&host)
                .into_iter()
                .map(|p| format!("/{}", p.strip_prefix(root).unwrap().display()))
                .collect();
        }
        for p in paths {
            match safe_for_autoload(&root.join(p.trim_start_matches('/')), osqueryd_uid) {
                Ok(()) => loaded.push(p),
                Err(why) => refused.push(format!("{p}: {why}")),
            }
        }
    }
    (loaded, refused)
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// osquery's `safePermissions(dir, path, executable=true)` plus the `.ext`
/// suffix test of `loadExtensions`.
fn safe_for_autoload(path: &Path, osqueryd_uid: u32) -> Result<(), String> {
    let meta = fs::symlink_metadata(path).map_err(|_| "doesn't exist".to_string())?;
    let parent = fs::metadata(path.parent().unwrap()).map_err(|e| e.to_string())?;
    if parent.mode() & 0o1000 != 0 {
        return Err("unsafe directory permissions (sticky parent)".into());
    }
    if meta.is_dir() || fs::File::open(path).is_err() {
        return Err("not a readable file".into());
    }
    if meta.uid() != 0 && meta.uid() != osqueryd_uid {
        return Err(format!("owned by uid {}", meta.uid()));
    }
    if meta.mode() & 0o100 == 0 {
        return Err("not executable by its owner".into());
    }
    if meta.mode() & 0o002 != 0 {
        return Err("world-writable".into());
    }
    if !path.to_string_lossy().ends_with(".ext") {
        return Err("not ending in .ext".into());
    }
    Ok(())
}

fn assert_installed(root: &Root, os: Os) {
    let (loaded, refused) = osquery_autoload(&root.path(), os.load_file(), 0);
    assert_eq!(loaded, [EXT], "refused: {refused:?}");
    // Only other entries (a test's missing neighbour) may be refused.
    assert!(!refused.iter().any(|r| r.starts_with(EXT)), "{refused:?}");
    let ext = root.at(EXT);
    let meta = fs::metadata(&ext).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o7777),
        (0, 0, 0o755)
    );
    assert_eq!(fs::read(&ext).unwrap(), fs::read(&root.fake).unwrap());
    let dir = fs::metadata(ext.parent().unwrap()).unwrap();
    assert_eq!((dir.uid(), dir.mode() & 0o7777), (0, 0o755));
    for s in ["install.sh", "uninstall.sh"] {
        let copy = root.at(&format!("/opt/kerberos_cache_access/{s}"));
        assert_eq!(
            fs::read(&copy).unwrap(),
            fs::read(repo(&format!("scripts/{s}"))).unwrap()
        );
        assert_eq!(fs::metadata(&copy).unwrap().mode() & 0o777, 0o755);
    }
}

#[test]
fn install_passes_osqueryds_autoload_rules_on_both_systems() {
    need_root!();
    for os in [Os::Linux, Os::Macos] {
        let root = Root::new();
        ok(&root.install(os, &[root.fake.to_str().unwrap()]));
        assert_installed(&root, os);
        assert_eq!(root.load_lines(os), [EXT]);
        let load = fs::metadata(root.at(os.load_file())).unwrap();
        assert_eq!(
            load.mode() & 0o022,
            0,
            "the load file is not writable by others"
        );
        // Nothing is run at install time.
        assert_eq!(root.calls(), "");
    }
}

#[test]
fn install_is_idempotent_and_keeps_other_entries() {
    need_root!();
    let root = Root::new();
    let os = Os::Linux;
    let load = root.at(os.load_file());
    fs::create_dir_all(load.parent().unwrap()).unwrap();
    // An existing entry, without a final newline.
    fs::write(&load, "# ours below\n/usr/lib/other/other.ext").unwrap();
    for _ in 0..3 {
        ok(&root.install(os, &[root.fake.to_str().unwrap()]));
    }
    assert_eq!(
        root.load_lines(os),
        ["# ours below", "/usr/lib/other/other.ext", EXT]
    );
    assert_installed(&root, os);
    // An upgrade replaces the binary in place.
    fs::write(&root.fake, "#!/bin/sh\n# v2\n").unwrap();
    ok(&root.install(os, &[root.fake.to_str().unwrap()]));
    assert_eq!(fs::read(root.at(EXT)).unwrap(), b"#!/bin/sh\n# v2\n");
    assert_eq!(root.load_lines(os).len(), 3);
}

#[test]
fn uninstall_reverses_the_install_and_cleans_up() {
    need_root!();
    for os in [Os::Linux, Os::Macos] {
        let root = Root::new();
        let load = root.at(os.load_file());
        fs::create_dir_all(load.parent().unwrap()).unwrap();
        fs::write(&load, "/usr/lib/other/other.ext\n").unwrap();
        ok(&root.install(os, &[root.fake.to_str().unwrap()]));
        let state = root.at(os.state_dir());
        fs::create_dir_all(&state).unwrap();
        fs::write(state.join("journal"), "rows").unwrap();

        // Through the copy install.sh left next to the binary, as a user would.
        let root_s = root.path().to_str().unwrap().to_string();
        ok(&run(
            &root.at("/opt/kerberos_cache_access/uninstall.sh"),
            &["--root", &root_s, "--os", os.flag()],
        ));
        assert_eq!(root.load_lines(os), ["/usr/lib/other/other.ext"]);
        assert!(!root.at("/opt/kerberos_cache_access").exists());
        assert!(!state.exists(), "state directory removed");
        assert_eq!(
            root.calls(),
            format!("--cleanup-audit --state-dir {}\n", state.display())
        );
        // Again: nothing left to do, still fine.
        ok(&root.install(os, &["--uninstall"]));
    }
}

#[test]
fn uninstall_options_keep_state_and_skip_cleanup() {
    need_root!();
    let root = Root::new();
    let os = Os::Linux;
    ok(&root.install(os, &[root.fake.to_str().unwrap()]));
    let state = root.at(os.state_dir());
    fs::create_dir_all(&state).unwrap();
    ok(&root.install(os, &["--uninstall", "--keep-state", "--no-cleanup-audit"]));
    assert!(state.exists());
    assert_eq!(root.calls(), "");
    assert!(!root.at(EXT).exists());
    assert!(root.load_lines(os).is_empty());
}

#[test]
fn install_refuses_directories_others_could_write_or_own() {
    need_root!();
    type Prepare<'a> = &'a dyn Fn(&Root);
    let cases: [(&str, Prepare); 4] = [
        ("sticky", &|r: &Root| {
            fs::create_dir_all(r.at("/opt")).unwrap();
            fs::set_permissions(r.at("/opt"), fs::Permissions::from_mode(0o1777)).unwrap();
        }),
        ("writable by others", &|r: &Root| {
            fs::create_dir_all(r.at("/opt/kerberos_cache_access")).unwrap();
            fs::set_permissions(
                r.at("/opt/kerberos_cache_access"),
                fs::Permissions::from_mode(0o775),
            )
            .unwrap();
        }),
        ("not root", &|r: &Root| {
            fs::create_dir_all(r.at("/opt/kerberos_cache_access")).unwrap();
            std::os::unix::fs::chown(r.at("/opt/kerberos_cache_access"), Some(4242), None).unwrap();
        }),
        ("symbolic link", &|r: &Root| {
            fs::create_dir_all(r.at("/opt")).unwrap();
            let elsewhere = r.dir.path().join("elsewhere");
            fs::create_dir(&elsewhere).unwrap();
            std::os::unix::fs::symlink(&elsewhere, r.at("/opt/kerberos_cache_access")).unwrap();
        }),
    ];
    for (what, prepare) in cases {
        let root = Root::new();
        prepare(&root);
        let out = root.install(Os::Linux, &[root.fake.to_str().unwrap()]);
        assert!(!out.status.success(), "{what}: installed anyway");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("refusing") || err.contains("sticky"),
            "{what}: {err}"
        );
        assert!(!root.at(EXT).exists(), "{what}");
        assert!(root.load_lines(Os::Linux).is_empty(), "{what}");
    }
}

#[test]
fn autoload_checker_refuses_what_osqueryd_refuses() {
    need_root!();
    let root = Root::new();
    ok(&root.install(Os::Linux, &[root.fake.to_str().unwrap()]));
    let ext = root.at(EXT);
    let refused = |root: &Root| osquery_autoload(&root.path(), Os::Linux.load_file(), 0).1;

    fs::set_permissions(&ext, fs::Permissions::from_mode(0o757)).unwrap();
    assert!(refused(&root)[0].ends_with("world-writable"));
    fs::set_permissions(&ext, fs::Permissions::from_mode(0o655)).unwrap();
    assert!(refused(&root)[0].ends_with("not executable by its owner"));
    fs::set_permissions(&ext, fs::Permissions::from_mode(0o775)).unwrap();
    assert!(refused(&root).is_empty(), "group-writable is accepted");
    std::os::unix::fs::chown(&ext, Some(4242), None).unwrap();
    assert!(refused(&root)[0].ends_with("owned by uid 4242"));
    assert!(osquery_autoload(&root.path(), Os::Linux.load_file(), 4242)
        .1
        .is_empty());
    std::os::unix::fs::chown(&ext, Some(0), None).unwrap();
    let dir = ext.parent().unwrap();
    fs::set_permissions(dir, fs::Permissions::from_mode(0o1755)).unwrap();
    assert!(refused(&root)[0].contains("sticky"));
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();

    // A directory entry: every file below it, each checked on its own.
    let load = root.at(Os::Linux.load_file());
    fs::write(&load, "/opt/kerberos_cache_access\n; comment\n").unwrap();
    let (loaded, refused) = osquery_autoload(&root.path(), Os::Linux.load_file(), 0);
    assert_eq!(loaded, [EXT]);
    assert_eq!(
        refused.len(),
        2,
        "the scripts do not end in .ext: {refused:?}"
    );
    assert!(refused.iter().all(|r| r.ends_with("not ending in .ext")));
    // A missing entry.
    fs::write(&load, "/nowhere/x.ext\n").unwrap();
    assert!(
        osquery_autoload(&root.path(), Os::Linux.load_file(), 0).1[0].ends_with("doesn't exist")
    );
}

#[test]
fn deb_installs_registers_removes_and_purges_like_install_sh() {
    need_root!();
    if !have("dpkg-deb") || !have("dpkg") {
        support::fixtures::skip("no dpkg/dpkg-deb on this host");
        return;
    }
    let root = Root::new();
    let out_dir = root.dir.path().join("deb");
    let built = run(
        &repo("scripts/build-deb.sh"),
        &[
            "--binary",
            root.fake.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
        ],
    );
    ok(&built);
    let deb = String::from_utf8(built.stdout).unwrap().trim().to_string();
    assert!(deb.ends_with(".deb"), "{deb}");

    // An empty dpkg database in the root; maintainer scripts run outside a
    // chroot with DPKG_ROOT set, the mode dpkg has for staging roots.
    let db = root.at("/var/lib/dpkg");
    fs::create_dir_all(db.join("info")).unwrap();
    fs::create_dir_all(db.join("updates")).unwrap();
    fs::write(db.join("status"), "").unwrap();
    fs::write(db.join("available"), "").unwrap();
    let root_arg = format!("--root={}", root.path().display());
    let dpkg = |args: &[&str]| {
        let mut all = vec![
            root_arg.as_str(),
            "--force-script-chrootless",
            "--log=/dev/null",
        ];
        all.extend_from_slice(args);
        run(Path::new("dpkg"), &all)
    };

    ok(&dpkg(&["-i", &deb]));
    assert_installed(&root, Os::Linux);
    assert_eq!(root.load_lines(Os::Linux), [EXT]);
    let state = root.at(Os::Linux.state_dir());
    fs::create_dir_all(&state).unwrap();

    ok(&dpkg(&["-r", "kerberos-cache-access"]));
    assert!(root.load_lines(Os::Linux).is_empty());
    assert!(!root.at(EXT).exists());
    assert_eq!(
        root.calls(),
        format!("--cleanup-audit --state-dir {}\n", state.display())
    );
    assert!(state.exists(), "removal keeps the state until purge");
    ok(&dpkg(&["-P", "kerberos-cache-access"]));
    assert!(!state.exists());
}

#[test]
fn pkg_postinstall_registers_with_plain_osqueryd_only() {
    need_root!();
    let root = Root::new();
    // What the .pkg payload lays down (root:wheel, 0755), then the
    // postinstall as Installer calls it: package, location, target volume.
    let dir = root.at("/opt/kerberos_cache_access");
    fs::create_dir_all(&dir).unwrap();
    for (name, src) in [
        ("kerberos_cache_access.ext", root.fake.clone()),
        ("install.sh", repo("scripts/install.sh")),
        ("uninstall.sh", repo("scripts/uninstall.sh")),
    ] {
        // Copied by a child process: a file this (multi-threaded) test
        // process had open for writing could be inherited by another test's
        // fork and make the exec below fail with ETXTBSY.
        assert!(Command::new("cp")
            .arg(&src)
            .arg(dir.join(name))
            .status()
            .unwrap()
            .success());
        fs::set_permissions(dir.join(name), fs::Permissions::from_mode(0o755)).unwrap();
    }
    let orbit_load = root.at("/opt/orbit/extensions.load");
    fs::create_dir_all(orbit_load.parent().unwrap()).unwrap();
    fs::write(&orbit_load, "").unwrap();
    let root_s = format!("{}/", root.path().display());
    for _ in 0..2 {
        ok(&run(
            &repo("packaging/macos/postinstall"),
            &["/tmp/x.pkg", "/opt/kerberos_cache_access", &root_s],
        ));
    }
    assert_installed(&root, Os::Macos);
    assert_eq!(root.load_lines(Os::Macos), [EXT]);
    assert_eq!(
        fs::read(&orbit_load).unwrap(),
        b"",
        "fleetd's file untouched"
    );
}

/// The fenced block in `text` that follows the line containing `marker`.
fn block_after(text: &str, marker: &str) -> String {
    let start = text.find(marker).unwrap_or_else(|| panic!("no {marker:?}"));
    let rest = &text[start..];
    let open = rest.find("```sh\n").expect("a ```sh block") + "```sh\n".len();
    let close = rest[open..].find("```").expect("closing ```");
    rest[open..open + close].to_string()
}

#[test]
fn readme_install_lines_are_the_scripts() {
    let readme = fs::read_to_string(repo("README.md")).unwrap();
    for (os, binary, marker) in [
        (
            Os::Linux,
            "target/release/kerberos_cache_access",
            "By hand on Linux",
        ),
        (Os::Macos, "kerberos_cache_access.ext", "By hand on macOS"),
    ] {
        let out = run(
            &repo("scripts/install.sh"),
            &["--dry-run", "--os", os.flag(), binary],
        );
        ok(&out);
        let script = String::from_utf8(out.stdout).unwrap();
        assert_eq!(block_after(&readme, marker), script, "README.md, {marker}");
        // The paths are the ones the tests above install to.
        assert!(script.contains(EXT) && script.contains(os.load_file()));
        // Numeric group: `-g wheel` is no group on Linux, `-g root` none on macOS.
        assert!(script.contains("-g 0 ") && !script.contains("wheel"));
    }
    // One extension directory in all the docs.
    for doc in ["README.md", "docs/deploy-macos.md", "packs/README.md"] {
        let text = fs::read_to_string(repo(doc)).unwrap();
        for old in [
            "/usr/local/osquery/extensions",
            "/usr/local/osquery_extensions",
        ] {
            assert!(!text.contains(old), "{doc} still names {old}");
        }
    }
}
