//! Replay input (`eslogger:FILE`, `bsm:PATH`): a file, FIFO or device opened
//! and read so that a stop request is always heard.
//!
//! A plain `open(2)` of a FIFO waits for a writer, and `read(2)` of a FIFO or
//! device waits for data; neither wakes for SIGTERM (our handlers restart
//! system calls), so one stuck call would keep the process alive until
//! SIGKILL. The path is opened `O_NONBLOCK`, and whatever is not a regular
//! file is read only once poll(2) says it is ready, looking at the stop flag
//! every `POLL_STEP`.

use crate::sources::SourceError;
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The longest a read waits before it looks at the stop flag again.
pub(crate) const POLL_STEP: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Reads never wait.
    Regular,
    Fifo,
    /// Character or block device, socket-like files: read when poll says so.
    Device,
}

/// An opened replay input and how much was read from it.
#[derive(Debug)]
pub(crate) struct ReplayFile {
    file: File,
    path: PathBuf,
    kind: Kind,
    bytes: u64,
}

/// A stop request ended a read: the input was not read to its end.
#[derive(Debug, thiserror::Error)]
#[error("stopped before the end of the input")]
pub(crate) struct Stopped;

/// Whether `e` is a read cut short by a stop request.
pub(crate) fn is_stopped(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<Stopped>())
}

impl ReplayFile {
    /// Opens `path` without waiting for anything (a FIFO's writer, a
    /// device's carrier). `what` names the input in the error ("eslogger
    /// file", "BSM trail").
    pub(crate) fn open(path: &Path, what: &'static str) -> Result<ReplayFile, SourceError> {
        let file = OpenOptions::new()
            .read(true)
            // O_NOCTTY: a terminal named as input must not become ours.
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(path)
            .map_err(|err| SourceError::Open {
                what,
                path: path.to_path_buf(),
                err,
            })?;
        let meta = file.metadata().map_err(|err| SourceError::Open {
            what,
            path: path.to_path_buf(),
            err,
        })?;
        let ft = meta.file_type();
        let kind = if ft.is_dir() {
            return Err(SourceError::IsADirectory {
                what,
                path: path.to_path_buf(),
            });
        } else if ft.is_file() {
            Kind::Regular
        } else if ft.is_fifo() {
            Kind::Fifo
        } else {
            Kind::Device
        };
        Ok(ReplayFile {
            file,
            path: path.to_path_buf(),
            kind,
            bytes: 0,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes read so far.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// A reader that returns a [`Stopped`] error (see [`is_stopped`]) once
    /// `stop` is set, instead of waiting on.
    pub(crate) fn reader<'a>(&'a mut self, stop: &'a AtomicBool) -> Reader<'a> {
        Reader { input: self, stop }
    }

    /// Waits until the input is readable, for at most [`POLL_STEP`]; false
    /// on timeout.
    fn ready(&self) -> io::Result<bool> {
        crate::sys::wait_readable(self.file.as_raw_fd(), Some(POLL_STEP))
    }
}

/// [`ReplayFile`] as [`Read`], bound to a stop flag.
pub(crate) struct Reader<'a> {
    input: &'a mut ReplayFile,
    stop: &'a AtomicBool,
}

impl Read for Reader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            // Checked on every call, so even an endless device (/dev/zero)
            // stops.
            if self.stop.load(Ordering::Relaxed) {
                return Err(io::Error::other(Stopped));
            }
            // Linux reports a FIFO readable only once a writer wrote or came
            // and went, so a FIFO without a writer waits here.
            if self.input.kind != Kind::Regular && !self.input.ready()? {
                continue;
            }
            match self.input.file.read(buf) {
                // Other systems may call a FIFO that never had a writer
                // readable, at end of file: wait for the writer's first bytes.
                Ok(0)
                    if cfg!(not(target_os = "linux"))
                        && self.input.kind == Kind::Fifo
                        && self.input.bytes == 0
                        && !buf.is_empty() =>
                {
                    std::thread::sleep(POLL_STEP);
                }
                Ok(n) => {
                    self.input.bytes += n as u64;
                    return Ok(n);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::Instant;

    fn fifo(dir: &Path) -> PathBuf {
        let path = dir.join("fifo");
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid C string.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        path
    }

    #[test]
    fn regular_files_read_to_the_end_and_count_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"hello").unwrap();
        let mut f = ReplayFile::open(&path, "test file").unwrap();
        let stop = AtomicBool::new(false);
        let mut out = Vec::new();
        f.reader(&stop).read_to_end(&mut out).unwrap();
        assert_eq!(out, b"hello");
        assert_eq!(f.bytes(), 5);
    }

    #[test]
    fn open_errors_name_the_input() {
        let err = ReplayFile::open(Path::new("/nonexistent/x"), "BSM trail")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("cannot open BSM trail /nonexistent/x: "),
            "{err}"
        );
        let dir = tempfile::tempdir().unwrap();
        let err = ReplayFile::open(dir.path(), "eslogger file")
            .unwrap_err()
            .to_string();
        assert!(err.ends_with("it is a directory"), "{err}");
    }

    #[test]
    fn a_fifo_without_writer_neither_blocks_open_nor_outlives_stop() {
        let dir = tempfile::tempdir().unwrap();
        let path = fifo(dir.path());
        let t = Instant::now();
        let mut f = ReplayFile::open(&path, "test FIFO").unwrap();
        assert!(t.elapsed() < Duration::from_secs(1));
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(POLL_STEP * 3);
                stop.store(true, Ordering::Relaxed);
            });
            let mut buf = [0u8; 16];
            let e = f.reader(&stop).read(&mut buf).unwrap_err();
            assert!(is_stopped(&e), "{e}");
        });
    }

    #[test]
    fn a_fifo_reads_what_a_later_writer_sends_then_ends() {
        let dir = tempfile::tempdir().unwrap();
        let path = fifo(dir.path());
        let mut f = ReplayFile::open(&path, "test FIFO").unwrap();
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(POLL_STEP * 3);
                let mut w = OpenOptions::new().write(true).open(&path).unwrap();
                w.write_all(b"late\n").unwrap();
            });
            let mut out = Vec::new();
            f.reader(&stop).read_to_end(&mut out).unwrap();
            assert_eq!(out, b"late\n");
        });
    }

    #[test]
    fn an_endless_device_stops() {
        let mut f = ReplayFile::open(Path::new("/dev/zero"), "device").unwrap();
        let stop = AtomicBool::new(false);
        let mut buf = [1u8; 64];
        assert_eq!(f.reader(&stop).read(&mut buf).unwrap(), 64);
        stop.store(true, Ordering::Relaxed);
        assert!(is_stopped(&f.reader(&stop).read(&mut buf).unwrap_err()));
    }
}
