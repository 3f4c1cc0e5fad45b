//! Who owns the audit session among our instances that share a state
//! directory.
//!
//! Two locks, both flock(2) so the kernel drops them when a process dies:
//! - `audit.owner`, exclusive: its holder is the one instance that changes
//!   the audit configuration, records it, heals it and restores it.
//! - `audit.readers`, shared: held by every instance that reads beside an
//!   owner, waiting to take over. An owner that exits takes it exclusively
//!   (without waiting): if it cannot, readers exist, so it hands over (leaves
//!   rules and flags, and the record for the next owner) instead of
//!   restoring and blinding them. While the exiting owner holds it
//!   exclusively, a starting instance waits for it, so it never joins a
//!   session that is being torn down.
//!
//! Instances with different state directories do not see each other; the
//! session's self-healing covers them (see `control`).

use crate::state::{Lock, StateDir};
use std::fs::File;
use std::io;
use std::os::unix::io::AsRawFd;
use std::time::{Duration, Instant};

pub(crate) const OWNER_LOCK: &str = "audit.owner";
pub(crate) const READERS_LOCK: &str = "audit.readers";

/// How long a starting instance waits for an exiting owner to finish.
const JOIN_WAIT: Duration = Duration::from_secs(5);

/// A shared hold on the readers lock.
#[derive(Debug)]
pub(crate) struct ReaderHold {
    _file: File,
}

fn flock(file: &File, op: libc::c_int) -> io::Result<bool> {
    // SAFETY: flock on a descriptor we own; no memory is involved.
    let rc = unsafe { libc::flock(file.as_raw_fd(), op | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(e)
    }
}

/// Joins the readers (shared lock), waiting up to a few seconds while an
/// owner holds it exclusively to restore or hand over.
pub(crate) fn join_readers(dir: &StateDir) -> io::Result<ReaderHold> {
    let file = dir.open_file(READERS_LOCK)?;
    let deadline = Instant::now() + JOIN_WAIT;
    loop {
        if flock(&file, libc::LOCK_SH)? {
            return Ok(ReaderHold { _file: file });
        }
        if Instant::now() >= deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "an exiting instance held the readers lock for 5 s",
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The readers lock held exclusively: proof that no instance waits to take
/// over, kept while the owner restores.
#[derive(Debug)]
pub(crate) struct NoReaders {
    _file: File,
}

/// `Ok(Some)` when no instance reads beside us, `Ok(None)` when some do.
pub(crate) fn no_readers(dir: &StateDir) -> io::Result<Option<NoReaders>> {
    let file = dir.open_file(READERS_LOCK)?;
    Ok(flock(&file, libc::LOCK_EX)?.then_some(NoReaders { _file: file }))
}

/// Takes the owner lock if it is free, and writes our pid into it.
pub(crate) fn try_own(dir: &StateDir) -> io::Result<Option<Lock>> {
    let Some(mut lock) = dir.try_lock(OWNER_LOCK)? else {
        return Ok(None);
    };
    if let Err(e) = lock.record_pid() {
        log::warn!("audit: could not write our pid into the owner lock: {e}");
    }
    Ok(Some(lock))
}

/// The owner's pid, as it wrote it.
pub(crate) fn owner_pid(dir: &StateDir) -> Option<u32> {
    crate::state::lock_holder(dir, OWNER_LOCK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_block_the_exclusive_check_and_wait_for_it() {
        let tmp = tempfile::tempdir().unwrap();
        let d = StateDir::open(&tmp.path().join("s")).unwrap();
        assert!(no_readers(&d).unwrap().is_some());
        let r = join_readers(&d).unwrap();
        assert!(no_readers(&d).unwrap().is_none());
        let r2 = join_readers(&d).unwrap();
        drop(r);
        assert!(no_readers(&d).unwrap().is_none());
        drop(r2);
        let ex = no_readers(&d).unwrap().expect("no readers left");
        // A joiner waits while the exclusive hold lasts.
        let d2 = d.clone();
        let t = std::thread::spawn(move || {
            let start = Instant::now();
            let hold = join_readers(&d2).unwrap();
            (start.elapsed(), hold)
        });
        std::thread::sleep(Duration::from_millis(200));
        drop(ex);
        let (waited, _hold) = t.join().unwrap();
        assert!(waited >= Duration::from_millis(150), "{waited:?}");
    }

    #[test]
    fn one_owner_at_a_time() {
        let tmp = tempfile::tempdir().unwrap();
        let d = StateDir::open(&tmp.path().join("s")).unwrap();
        let own = try_own(&d).unwrap().expect("free");
        assert_eq!(owner_pid(&d), Some(std::process::id()));
        assert!(try_own(&d).unwrap().is_none());
        drop(own);
        assert!(try_own(&d).unwrap().is_some());
    }
}
