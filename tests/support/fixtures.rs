//! Whether a test can run here, and where its input lives: the one root
//! check, the one `SKIPPED:` line (scripts/test counts them, since cargo
//! counts a test that returns early as passed), and the one fixture lookup.
//!
//! Permissively licensed fixtures are vendored in tests/data and always
//! present. The copyleft Linux audit samples stay in ../shared/fixtures: a
//! test that needs them is skipped without them, and fails under `CI=true`,
//! where a missing fixture is a broken checkout rather than a developer's
//! clone.

use std::fmt::Display;
use std::path::{Path, PathBuf};

/// The vendored fixtures.
pub const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");
/// Fixtures that may not be copied into the repository.
pub const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/fixtures");

/// True when the tests run as root (euid 0).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The running test's name: libtest names each test's thread after it.
pub fn test_name() -> String {
    std::thread::current()
        .name()
        .unwrap_or("unnamed test")
        .to_string()
}

/// Reports the running test as skipped, in the form scripts/test counts.
pub fn skip(reason: impl Display) {
    println!("SKIPPED: {}: {reason}", test_name());
}

/// True when root; otherwise reports the test as skipped.
pub fn root_or_skip() -> bool {
    if is_root() {
        return true;
    }
    skip("needs root");
    false
}

/// A vendored fixture, e.g. `vendored("bsm/openbsm/execve-long-args.trail")`.
/// Vendored files are part of the checkout, so a missing one is a failure.
pub fn vendored(rel: &str) -> PathBuf {
    let path = Path::new(DATA).join(rel);
    assert!(
        path.exists(),
        "vendored fixture {} is missing",
        path.display()
    );
    path
}

/// A fixture (file or directory) under ../shared/fixtures, or None after a
/// SKIPPED line when it is absent. Panics when absent under `CI=true`.
pub fn shared(rel: &str) -> Option<PathBuf> {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    shared_in(Path::new(SHARED), rel, ci).map_err(skip).ok()
}

/// The rule of `shared`, with its root and CI flag given: the path, or why
/// it is absent; panics when absent and `ci`.
pub fn shared_in(root: &Path, rel: &str, ci: bool) -> Result<PathBuf, String> {
    let path = root.join(rel);
    if path.exists() {
        return Ok(path);
    }
    let why = format!("{} is absent (../shared/fixtures)", path.display());
    if ci {
        panic!("CI=true: {why}; the copyleft fixtures must be beside the clone in CI");
    }
    Err(why)
}
