//! The libc calls several modules share, each wrapped once with its SAFETY
//! argument: the effective uid, and poll(2) on one descriptor.

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

/// The effective uid of this process.
pub(crate) fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Waits until `fd` is readable, for at most `timeout` (`None`: without
/// limit). False on timeout or EINTR. POLLHUP/POLLERR count as readable, so
/// the following read reports what happened (EOF, ENOBUFS).
pub(crate) fn wait_readable(fd: RawFd, timeout: Option<Duration>) -> io::Result<bool> {
    let ms = match timeout {
        None => -1,
        // Round up so a sub-millisecond timeout still waits.
        Some(t) => libc::c_int::try_from(t.as_micros().div_ceil(1000)).unwrap_or(libc::c_int::MAX),
    };
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: pfd is one valid pollfd for the duration of the call and nfds
    // is 1; a bad fd is reported in revents (POLLNVAL), not undefined.
    let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        return if e.kind() == io::ErrorKind::Interrupted {
            Ok(false)
        } else {
            Err(e)
        };
    }
    Ok(rc > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsRawFd;

    #[test]
    fn euid_matches_proc_self() {
        use std::os::unix::fs::MetadataExt;
        // /proc/self belongs to the effective uid (Linux only).
        if let Ok(m) = std::fs::metadata("/proc/self") {
            assert_eq!(m.uid(), euid());
        }
    }

    #[test]
    fn readable_only_once_written() {
        let (mut tx, rx) = std::os::unix::net::UnixStream::pair().unwrap();
        let fd = rx.as_raw_fd();
        assert!(!wait_readable(fd, Some(Duration::from_micros(10))).unwrap());
        tx.write_all(b"x").unwrap();
        assert!(wait_readable(fd, None).unwrap());
    }
}
