//! Is this executable the host's kcc under another name?
//!
//! Sources that know the code signature (eslogger, osquery_es) give a
//! signing id; the others give only a path. For those, a renamed copy of kcc
//! is recognised by content: same size as the host's kcc, then the same
//! SHA-256. Results are cached by (device, inode, mtime, size), so a binary is
//! hashed once however often it runs, and only execs the classifier marks as
//! needing it are looked at.

use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Where the host's kcc lives: macOS ships it in /usr/bin; Heimdal builds
/// elsewhere may install it under these names too.
pub(crate) const DEFAULT_REFERENCES: &[&str] = &["/usr/bin/kcc", "/usr/local/bin/kcc"];

/// Files larger than this are not hashed (kcc is ~100–300 KiB).
const MAX_HASHED: u64 = 64 * 1024 * 1024;
const MAX_CACHED: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Reference {
    path: PathBuf,
    size: u64,
    sha256: [u8; 32],
}

type FileKey = (u64, u64, i64, i64, u64);

/// The verdict for one executable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Verdict {
    pub(crate) is_kcc: bool,
    /// Set when the file was hashed (same size as the reference).
    pub sha256: Option<String>,
}

pub(crate) struct KccImage {
    references: Vec<Reference>,
    cache: Mutex<HashMap<FileKey, Verdict>>,
}

fn hash_file(path: &Path) -> std::io::Result<[u8; 32]> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(buf.get(..n).unwrap_or_default());
    }
    Ok(hasher.finalize().into())
}

#[cfg(unix)]
fn os_path(bytes: &[u8]) -> &Path {
    use std::os::unix::ffi::OsStrExt;
    Path::new(std::ffi::OsStr::from_bytes(bytes))
}

impl KccImage {
    /// Reads the reference binaries that exist on this host. None exist on
    /// most Linux hosts: then nothing is ever called a renamed kcc by content.
    pub(crate) fn from_paths(paths: &[&Path]) -> KccImage {
        let mut references: Vec<Reference> = Vec::new();
        for path in paths {
            let Ok(meta) = std::fs::metadata(path) else {
                continue;
            };
            match hash_file(path) {
                Ok(sha256) if !references.iter().any(|r| r.sha256 == sha256) => {
                    references.push(Reference {
                        path: path.to_path_buf(),
                        size: meta.len(),
                        sha256,
                    });
                }
                Ok(_) => {}
                Err(e) => log::warn!("cannot hash {}: {e}", path.display()),
            }
        }
        KccImage {
            references,
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn from_host() -> KccImage {
        let paths: Vec<&Path> = DEFAULT_REFERENCES.iter().map(Path::new).collect();
        KccImage::from_paths(&paths)
    }

    #[cfg(test)]
    pub(crate) fn has_reference(&self) -> bool {
        !self.references.is_empty()
    }

    /// Whether `path` is byte-for-byte one of the host's kcc binaries. None
    /// when there is no reference or the file cannot be read (it may have
    /// been deleted after the exec).
    pub(crate) fn check(&self, path: &[u8]) -> Option<Verdict> {
        if self.references.is_empty() || path.is_empty() {
            return None;
        }
        let path = os_path(path);
        let meta = std::fs::metadata(path).ok()?;
        let key = (
            meta.dev(),
            meta.ino(),
            meta.mtime(),
            meta.mtime_nsec(),
            meta.len(),
        );
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = cache.get(&key) {
            return Some(v.clone());
        }
        let verdict = if !self.references.iter().any(|r| r.size == meta.len()) {
            Verdict {
                is_kcc: false,
                sha256: None,
            }
        } else if meta.len() > MAX_HASHED {
            return None;
        } else {
            let sha = hash_file(path).ok()?;
            Verdict {
                is_kcc: self.references.iter().any(|r| r.sha256 == sha),
                sha256: Some(hex::encode(sha)),
            }
        };
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        cache.insert(key, verdict.clone());
        Some(verdict)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;

    fn bytes(p: &Path) -> &[u8] {
        p.as_os_str().as_bytes()
    }

    #[test]
    fn a_renamed_copy_is_recognised_and_others_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let kcc = dir.path().join("kcc");
        std::fs::write(&kcc, b"pretend this is Heimdal's kcc").unwrap();
        let renamed = dir.path().join("innocent");
        std::fs::copy(&kcc, &renamed).unwrap();
        let same_size = dir.path().join("same_size");
        std::fs::write(&same_size, b"pretend this is Heimdal's kcC").unwrap();
        let other = dir.path().join("other");
        std::fs::write(&other, b"short").unwrap();

        let image = KccImage::from_paths(&[kcc.as_path(), Path::new("/nonexistent/kcc")]);
        assert!(image.has_reference());
        let v = image.check(bytes(&renamed)).unwrap();
        assert!(v.is_kcc);
        assert_eq!(v.sha256.as_deref().map(str::len), Some(64));
        // Same size, different bytes: hashed, not kcc.
        let v = image.check(bytes(&same_size)).unwrap();
        assert!(!v.is_kcc && v.sha256.is_some());
        // Different size: not even hashed.
        assert_eq!(
            image.check(bytes(&other)),
            Some(Verdict {
                is_kcc: false,
                sha256: None
            })
        );
        assert_eq!(image.check(b"/nonexistent/file"), None);
    }

    #[test]
    fn verdicts_are_cached_by_file_identity() {
        let dir = tempfile::tempdir().unwrap();
        let kcc = dir.path().join("kcc");
        std::fs::write(&kcc, b"kcc bytes").unwrap();
        let copy = dir.path().join("copy");
        std::fs::copy(&kcc, &copy).unwrap();
        let image = KccImage::from_paths(&[kcc.as_path()]);
        assert!(image.check(bytes(&copy)).unwrap().is_kcc);
        assert_eq!(image.cache.lock().unwrap().len(), 1);
        assert!(image.check(bytes(&copy)).unwrap().is_kcc);
        assert_eq!(image.cache.lock().unwrap().len(), 1);
    }

    #[test]
    fn no_reference_means_no_verdict() {
        let image = KccImage::from_paths(&[Path::new("/nonexistent/kcc")]);
        assert!(!image.has_reference());
        assert_eq!(image.check(b"/bin/sh"), None);
    }
}
