//! The state directory: what outlives the process (the row journal, the
//! audit configuration we found, the locks that make one instance the owner).
//!
//! It must be root's alone: anyone who can write there could forge rows,
//! delete a journal, or make us "restore" audit rules they chose. So it is
//! created 0700, and an existing directory is used only when it is a real
//! directory (not a symlink) owned by our effective uid with no group or
//! other write bit. Files in it are created 0600.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// The platform's usual place for a daemon's state.
pub(crate) fn default_path() -> PathBuf {
    if cfg!(target_os = "macos") {
        PathBuf::from("/var/db/kerberos_cache_access")
    } else {
        PathBuf::from("/var/lib/kerberos_cache_access")
    }
}

/// A checked, usable state directory. `pub` (in a private module) only
/// because the Linux audit session's public options name it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(not(target_os = "linux"), allow(unreachable_pub))]
pub struct StateDir {
    path: PathBuf,
}

/// Why a state directory cannot be used (shown in the status table).
#[derive(Debug, thiserror::Error)]
#[error("state directory {}: {reason}", path.display())]
#[cfg_attr(not(target_os = "linux"), allow(unreachable_pub))]
pub struct StateDirError {
    pub path: PathBuf,
    pub reason: String,
}

impl StateDir {
    /// Creates the directory (0700, parents 0755) if missing, and checks
    /// that it is ours alone.
    pub(crate) fn open(path: &Path) -> Result<StateDir, StateDirError> {
        let err = |reason: String| StateDirError {
            path: path.to_path_buf(),
            reason,
        };
        if let Some(parent) = path.parent() {
            if !parent.as_os_str().is_empty() && !parent.exists() {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o755)
                    .create(parent)
                    .map_err(|e| err(format!("cannot create its parent: {e}")))?;
            }
        }
        match fs::DirBuilder::new().mode(0o700).create(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(err(format!("cannot create it: {e}"))),
        }
        let meta = fs::symlink_metadata(path).map_err(|e| err(format!("cannot stat it: {e}")))?;
        if meta.file_type().is_symlink() {
            return Err(err("is a symbolic link; refusing to follow it".into()));
        }
        if !meta.is_dir() {
            return Err(err("is not a directory".into()));
        }
        if meta.uid() != crate::sys::euid() {
            return Err(err(format!(
                "is owned by uid {}, not by us (uid {})",
                meta.uid(),
                crate::sys::euid()
            )));
        }
        if meta.mode() & 0o022 != 0 {
            return Err(err(format!(
                "is writable by others (mode {:o}); it must be 0700",
                meta.mode() & 0o7777
            )));
        }
        Ok(StateDir {
            path: path.to_path_buf(),
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The path of a file in the directory.
    pub(crate) fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Opens (creating 0600) a file for reading and writing, never through a
    /// symlink.
    pub(crate) fn open_file(&self, name: &str) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(self.file(name))
    }

    /// Replaces `name` with `bytes` atomically and durably: a crash leaves
    /// either the old content or the new, never a mix. Only the Linux audit
    /// source keeps such a file.
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    pub(crate) fn write_atomic(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        let tmp = self.file(&format!(".{name}.tmp"));
        let _ = fs::remove_file(&tmp);
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, self.file(name))?;
        self.sync()
    }

    /// Makes renames and creations in the directory durable.
    pub(crate) fn sync(&self) -> io::Result<()> {
        File::open(&self.path)?.sync_all()
    }

    /// Takes an exclusive advisory lock on `name` without waiting. `Ok(None)`
    /// when another process holds it. The kernel releases it when the
    /// process dies, however it dies, so a lock is never stale.
    pub(crate) fn try_lock(&self, name: &str) -> io::Result<Option<Lock>> {
        let file = self.open_file(name)?;
        // SAFETY: flock on a descriptor we own; no memory is involved.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            return Ok(Some(Lock { file }));
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
            Ok(None)
        } else {
            Err(e)
        }
    }
}

/// A held lock; released when dropped (or when the process dies).
#[derive(Debug)]
pub(crate) struct Lock {
    file: File,
}

impl Lock {
    /// Writes our pid into the lock file, so another instance can name us.
    pub(crate) fn record_pid(&mut self) -> io::Result<()> {
        use std::io::{Seek, SeekFrom};
        self.file.set_len(0)?;
        self.file.seek(SeekFrom::Start(0))?;
        writeln!(self.file, "{}", std::process::id())?;
        self.file.flush()
    }
}

/// The pid written in a lock file by its holder, if readable.
pub(crate) fn lock_holder(dir: &StateDir, name: &str) -> Option<u32> {
    fs::read_to_string(dir.file(name)).ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn creates_a_private_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("a/b/state");
        let d = StateDir::open(&p).unwrap();
        let mode = fs::metadata(d.path()).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o700);
        d.write_atomic("x", b"hello").unwrap();
        assert_eq!(fs::read(d.file("x")).unwrap(), b"hello");
        let fmode = fs::metadata(d.file("x")).unwrap().mode() & 0o777;
        assert_eq!(fmode, 0o600);
        // Opening it again is fine.
        StateDir::open(&p).unwrap();
    }

    #[test]
    fn refuses_unsafe_directories() {
        let tmp = tempfile::tempdir().unwrap();
        let open = tmp.path().join("open");
        fs::create_dir(&open).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
        let e = StateDir::open(&open).unwrap_err();
        assert!(e.reason.contains("writable by others"), "{e}");
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(tmp.path(), &link).unwrap();
        let e = StateDir::open(&link).unwrap_err();
        assert!(e.reason.contains("symbolic link"), "{e}");
        let file = tmp.path().join("file");
        fs::write(&file, b"").unwrap();
        assert!(StateDir::open(&file).is_err());
    }

    #[test]
    fn a_lock_is_exclusive_until_dropped() {
        let tmp = tempfile::tempdir().unwrap();
        let d = StateDir::open(&tmp.path().join("s")).unwrap();
        let mut held = d.try_lock("l").unwrap().expect("free");
        held.record_pid().unwrap();
        // flock locks belong to the open file description: a second open in
        // the same process conflicts, as another process would.
        assert!(d.try_lock("l").unwrap().is_none());
        assert_eq!(lock_holder(&d, "l"), Some(std::process::id()));
        drop(held);
        assert!(d.try_lock("l").unwrap().is_some());
    }
}
