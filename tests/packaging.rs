//! The release plumbing that cannot run here but must stay consistent: the
//! macOS GitHub workflow (parsed as YAML, and naming the build script), the
//! framework stubs against the checker's allowed libraries, the PPPC example,
//! and the command line's description of the sources.

mod support;

use kerberos_cache_access::event::SourceKind;
use std::path::{Path, PathBuf};
use std::process::Command;
use yaml_rust2::{Yaml, YamlLoader};

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn workflow() -> Yaml {
    let docs = YamlLoader::load_from_str(&read(".github/workflows/macos.yml"))
        .expect("the workflow is valid YAML");
    assert_eq!(docs.len(), 1);
    docs.into_iter().next().unwrap()
}

/// Every `run:` script of a job, in order.
fn runs(job: &Yaml) -> Vec<String> {
    job["steps"]
        .as_vec()
        .expect("steps")
        .iter()
        .filter_map(|s| s["run"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn macos_workflow_parses_and_builds_through_the_build_script() {
    let wf = workflow();
    assert!(wf["on"]["pull_request"].is_null() || !wf["on"]["pull_request"].is_badvalue());
    assert!(!wf["on"]["push"].is_badvalue(), "runs on push");
    let jobs = wf["jobs"].as_hash().expect("jobs");
    for (name, job) in jobs {
        let steps = job["steps"].as_vec().expect("steps");
        assert!(!steps.is_empty(), "{name:?}");
        for step in steps {
            assert!(
                step["run"].as_str().is_some() || step["uses"].as_str().is_some(),
                "{name:?}: a step without run or uses: {step:?}"
            );
        }
    }

    // Native: tests and the build script on a macOS runner.
    let native = &wf["jobs"]["native"];
    assert!(native["runs-on"].as_str().unwrap().starts_with("macos-"));
    let native_runs = runs(native).join("\n");
    assert!(native_runs.contains("scripts/test"));
    assert!(native_runs.contains("scripts/build-macos.sh"));

    // Zig: the same script on Linux, then the smoke test on Macs of both kinds.
    let zig = &wf["jobs"]["zig"];
    assert!(zig["runs-on"].as_str().unwrap().starts_with("ubuntu-"));
    assert!(runs(zig)
        .iter()
        .any(|r| r.contains("scripts/build-macos.sh")));
    let smoke = &wf["jobs"]["smoke"];
    assert_eq!(smoke["needs"].as_str(), Some("zig"));
    let runners: Vec<&str> = smoke["strategy"]["matrix"]["runner"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert!(runners.iter().all(|r| r.starts_with("macos-")));
    assert!(runners.iter().any(|r| r.contains("intel")), "{runners:?}");
    assert!(runs(smoke)
        .iter()
        .any(|r| r.contains("DYLD_BIND_AT_LAUNCH=1 dist/kerberos_cache_access.ext --help")));

    // Signing only when the secrets are there, through the same script.
    let sign = native["steps"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|s| {
            s["run"]
                .as_str()
                .is_some_and(|r| r.contains("--notary-profile"))
        })
        .expect("a signing step");
    let cond = sign["if"]
        .as_str()
        .expect("the signing step is conditional");
    assert!(cond.contains("env.MACOS_APP_P12_BASE64 != ''"), "{cond}");
    assert!(native["env"]["MACOS_APP_P12_BASE64"]
        .as_str()
        .unwrap()
        .contains("secrets.MACOS_APP_P12_BASE64"));
    let script = sign["run"].as_str().unwrap();
    for flag in ["--identity", "--installer-identity", "--notary-profile"] {
        assert!(script.contains(flag), "{flag}");
        assert!(
            read("scripts/build-macos.sh").contains(&format!("{flag})")),
            "{flag}"
        );
    }

    // Every repository script the workflow calls exists and is executable.
    let all = jobs.values().flat_map(runs).collect::<Vec<_>>().join("\n");
    for word in all.split_whitespace() {
        if let Some(rel) = word.strip_prefix("scripts/") {
            let path = repo(&format!("scripts/{rel}"));
            let mode = std::os::unix::fs::PermissionsExt::mode(
                &std::fs::metadata(&path)
                    .unwrap_or_else(|e| panic!("{word}: {e}"))
                    .permissions(),
            );
            assert!(mode & 0o111 != 0, "{word} is not executable");
        }
    }
}

#[test]
fn help_lists_the_real_sources() {
    let out = Command::new(env!("CARGO_BIN_EXE_kerberos_cache_access"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    // The --source paragraph, up to the next option.
    let start = help.find("--source <LIST>").expect("--source in --help");
    let end = help[start + 2..]
        .find("\n  -")
        .map_or(help.len(), |i| start + 2 + i);
    let text = help[start..end]
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(text.contains("auto"), "{text}");
    for kind in SourceKind::ALL {
        assert!(
            text.contains(kind.as_str()),
            "--help lacks {}: {text}",
            kind.as_str()
        );
    }
    assert!(
        text.contains("eslogger[:FILE]") && text.contains("bsm[:PATH]"),
        "{text}"
    );
    assert!(!text.contains("more sources are"), "{text}");
}

/// (install name, symbols) of every stub.
fn stubs() -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut dirs = vec![repo("packaging/macos/stubs")];
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
                continue;
            }
            let text = std::fs::read_to_string(&p).unwrap();
            let doc = &YamlLoader::load_from_str(&text).expect("a stub is YAML")[0];
            assert_eq!(doc["tbd-version"].as_i64(), Some(4), "{}", p.display());
            let targets: Vec<&str> = doc["targets"]
                .as_vec()
                .unwrap()
                .iter()
                .map(|t| t.as_str().unwrap())
                .collect();
            assert!(targets.contains(&"arm64-macos") && targets.contains(&"x86_64-macos"));
            let symbols = match doc["exports"].as_vec() {
                Some(v) => v[0]["symbols"]
                    .as_vec()
                    .unwrap()
                    .iter()
                    .map(|s| s.as_str().unwrap().to_string())
                    .collect(),
                None => Vec::new(),
            };
            out.push((doc["install-name"].as_str().unwrap().to_string(), symbols));
        }
    }
    out.sort();
    out
}

#[test]
fn framework_stubs_match_the_checkers_allowed_libraries() {
    let verify = read("scripts/macos/verify.py");
    let all = stubs();
    let names: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "/System/Library/Frameworks/CoreFoundation.framework/Versions/A/CoreFoundation",
            "/System/Library/Frameworks/Foundation.framework/Versions/C/Foundation",
            "/System/Library/Frameworks/IOKit.framework/Versions/A/IOKit",
            "/System/Library/Frameworks/OpenDirectory.framework/Versions/A/OpenDirectory",
            "/usr/lib/libobjc.A.dylib",
        ]
    );
    for (name, symbols) in &all {
        // A stub with symbols is a library the binary links: the checker
        // must allow it; an empty one must never end up linked.
        assert_eq!(
            verify.contains(&format!("\"{name}\"")),
            !symbols.is_empty(),
            "{name}"
        );
        // Apple's prefix for each framework's C API.
        let prefix = name.rsplit('/').next().unwrap();
        let want = match prefix {
            "CoreFoundation" => "CF",
            "IOKit" => "IO",
            "OpenDirectory" => "OD",
            _ => "",
        };
        for s in symbols {
            assert!(
                s.starts_with(&format!("_{want}")) || s.starts_with(&format!("_k{want}")),
                "{s} in {name}"
            );
        }
    }
    let count: Vec<usize> = all.iter().map(|(_, s)| s.len()).collect();
    assert_eq!(count, [16, 0, 7, 9, 0]);
}

#[test]
fn pppc_example_is_a_property_list_with_marked_placeholders() {
    let text = read("packaging/macos/osquery-full-disk-access.mobileconfig");
    for p in [
        "REPLACE_WITH_OSQUERYD_CODE_REQUIREMENT",
        "REPLACE_WITH_ORBIT_CODE_REQUIREMENT",
        "REPLACE_WITH_FLEETD_OSQUERYD_CODE_REQUIREMENT",
    ] {
        assert!(text.contains(p), "{p}");
        let fill = p.trim_start_matches("REPLACE_WITH_");
        assert!(
            read("docs/deploy-macos.md").contains(p),
            "docs explain {fill}"
        );
    }
    assert!(read("docs/deploy-macos.md").contains("codesign -dr -"));
    let check = Command::new("python3")
        .args([
            "-c",
            "import plistlib,sys; d=plistlib.load(open(sys.argv[1],'rb')); \
             e=d['PayloadContent'][0]['Services']['SystemPolicyAllFiles']; \
             assert d['PayloadContent'][0]['PayloadType']=='com.apple.TCC.configuration-profile-policy'; \
             assert all(x['Authorization']=='Allow' and x['IdentifierType']=='path' for x in e); \
             print(len(e))",
        ])
        .arg(repo("packaging/macos/osquery-full-disk-access.mobileconfig"))
        .output();
    match check {
        Ok(out) if out.status.success() => {
            assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "3")
        }
        Ok(out) => panic!("{}", String::from_utf8_lossy(&out.stderr)),
        Err(_) => support::fixtures::skip("no python3 to parse the property list"),
    }
}
