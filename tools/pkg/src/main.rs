//! Writes the flat `.pkg` that installs the extension on a Mac. Exists
//! because Apple's `pkgbuild` runs only on macOS; `embala-pkg` writes the
//! same structure (Distribution, PackageInfo, Bom, Payload, Scripts) here.
//!
//! ```text
//! kca-pkg --out FILE --version V --install-location DIR
//!         --file NAME=PATH ... [--postinstall PATH] [--identifier ID]
//! ```
//!
//! Every payload file is installed root:wheel, mode 0755, in DIR (the BOM
//! says so; Installer applies it), and DIR itself is 0755: not sticky, not
//! writable by anyone but root, as osqueryd's autoload check wants.

use embala_pkg::{DirSpec, FileSpec, PkgSpec};
use std::path::PathBuf;
use std::process::ExitCode;

struct Args {
    out: PathBuf,
    version: String,
    identifier: String,
    install_location: String,
    files: Vec<(String, PathBuf)>,
    postinstall: Option<PathBuf>,
}

fn parse(mut argv: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut out = None;
    let mut version = None;
    let mut identifier = "io.kerberos-cache-access.extension".to_string();
    let mut install_location = None;
    let mut files = Vec::new();
    let mut postinstall = None;
    while let Some(flag) = argv.next() {
        let mut value = || argv.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--out" => out = Some(PathBuf::from(value()?)),
            "--version" => version = Some(value()?),
            "--identifier" => identifier = value()?,
            "--install-location" => install_location = Some(value()?),
            "--postinstall" => postinstall = Some(PathBuf::from(value()?)),
            "--file" => {
                let v = value()?;
                let (name, path) = v
                    .split_once('=')
                    .ok_or(format!("--file wants NAME=PATH, got {v:?}"))?;
                if name.is_empty() || name.contains('/') {
                    return Err(format!("--file: {name:?} must be a plain file name"));
                }
                files.push((name.to_string(), PathBuf::from(path)));
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Args {
        out: out.ok_or("--out is required")?,
        version: version.ok_or("--version is required")?,
        identifier,
        install_location: install_location.ok_or("--install-location is required")?,
        files,
        postinstall,
    })
}

fn build(args: &Args) -> Result<(), String> {
    if args.files.is_empty() {
        return Err("no --file to package".into());
    }
    // embala-pkg packs a whole directory as the Scripts archive.
    let scripts = match &args.postinstall {
        Some(p) => {
            let dir = std::env::temp_dir().join(format!("kca-pkg-scripts-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            let dest = dir.join("postinstall");
            std::fs::copy(p, &dest).map_err(|e| format!("{}: {e}", p.display()))?;
            set_mode(&dest, 0o755)?;
            Some(dir)
        }
        None => None,
    };
    let name = args
        .out
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("kerberos_cache_access")
        .to_string();
    let spec = PkgSpec {
        name,
        display_name: "kerberos_cache_access osquery extension".into(),
        identifier: args.identifier.clone(),
        version: args.version.clone(),
        install_location: args.install_location.clone(),
        enable_user_home: false,
        files: args
            .files
            .iter()
            .map(|(name, src)| FileSpec {
                src: src.clone(),
                dest: name.clone(),
                mode: Some(0o755),
            })
            .collect(),
        directories: Vec::<DirSpec>::new(),
        scripts: scripts.clone(),
    };
    let result = embala_pkg::build(&spec, &args.out).map_err(|e| e.to_string());
    if let Some(dir) = scripts {
        let _ = std::fs::remove_dir_all(dir);
    }
    result
}

#[cfg(unix)]
fn set_mode(path: &std::path::Path, mode: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(not(unix))]
fn set_mode(_: &std::path::Path, _: u32) -> Result<(), String> {
    Ok(())
}

fn main() -> ExitCode {
    match parse(std::env::args().skip(1)).and_then(|a| build(&a)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kca-pkg: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Result<Args, String> {
        parse(v.iter().map(|s| s.to_string()))
    }

    #[test]
    fn parses_files_and_rejects_paths_as_names() {
        let a = args(&[
            "--out",
            "x.pkg",
            "--version",
            "1",
            "--install-location",
            "/opt/x",
            "--file",
            "a.ext=/tmp/a",
        ])
        .unwrap();
        assert_eq!(
            a.files,
            vec![("a.ext".to_string(), PathBuf::from("/tmp/a"))]
        );
        assert!(args(&["--file", "../a=/tmp/a"]).is_err());
        assert!(args(&["--file", "a"]).is_err());
        assert!(args(&["--out"]).is_err());
        assert!(args(&["--version", "1"]).is_err(), "--out missing");
    }
}
