//! The module graph has no import cycles: `scripts/import-cycles` (also the
//! command the README gives) run over src/ must find none.

use std::process::Command;

#[test]
fn no_import_cycles() {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new("python3")
        .arg(format!("{root}/scripts/import-cycles"))
        .arg(format!("{root}/src"))
        .output()
        .expect("python3 runs scripts/import-cycles; install python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let cycles: Vec<&str> = text.lines().filter(|l| l.starts_with("cycle:")).collect();
    assert!(cycles.is_empty(), "{text}");
    // A changed output format must not pass as "no cycles".
    assert!(text.contains(" 0 import cycle(s)"), "{text}");
}
