//! macOS `/dev/auditpipe`: a private, cloned queue of the kernel's BSM
//! records, with its own preselection. The thinnest shim we can make: open,
//! the ioctls, poll + read. Everything it reads is parsed by `parse`.
//!
//! Request codes are `_IOR/_IOW('A', n, size)` from xnu's audit_ioctl.h,
//! computed (libc has none of them).

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::time::Duration;

const AUDITPIPE_GET_QLIMIT_MAX: libc::c_ulong = 0x4004_4105;
const AUDITPIPE_SET_QLIMIT: libc::c_ulong = 0x8004_4103;
const AUDITPIPE_SET_PRESELECT_FLAGS: libc::c_ulong = 0x8008_4107;
const AUDITPIPE_SET_PRESELECT_NAFLAGS: libc::c_ulong = 0x8008_4109;
const AUDITPIPE_SET_PRESELECT_MODE: libc::c_ulong = 0x8004_410F;
const AUDITPIPE_FLUSH: libc::c_ulong = 0x2000_4110;
const AUDITPIPE_GET_DROPS: libc::c_ulong = 0x4008_4166;
const AUDITPIPE_PRESELECT_MODE_LOCAL: libc::c_int = 2;

/// auditon(2) commands and values (OpenBSM's bsm/audit.h as macOS has it).
const A_GETPOLICY: libc::c_int = 33;
const A_GETCOND: libc::c_int = 37;
const AUC_AUDITING: libc::c_int = 1;
pub(crate) const AUDIT_ARGV: libc::c_int = 0x0004;

/// Audit classes from /etc/security/audit_class: process (`pc`) and exec
/// (`ex`).
pub(crate) const CLASS_PC: u32 = 0x0000_0080;
pub(crate) const CLASS_EX: u32 = 0x4000_0000;

extern "C" {
    // In libSystem; libc does not declare it.
    fn auditon(cmd: libc::c_int, data: *mut libc::c_void, length: libc::c_uint) -> libc::c_int;
}

#[repr(C)]
struct AuMask {
    success: u32,
    failure: u32,
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Whether the kernel is auditing at all (auditd gave it a trail). Without
/// it the kernel makes no records, so a pipe reads nothing.
pub(crate) fn kernel_auditing() -> io::Result<bool> {
    let mut cond: libc::c_int = 0;
    // SAFETY: A_GETCOND writes one int into `cond`, whose size we pass.
    let rc = unsafe {
        auditon(
            A_GETCOND,
            std::ptr::addr_of_mut!(cond).cast(),
            std::mem::size_of::<libc::c_int>() as libc::c_uint,
        )
    };
    check(rc)?;
    Ok(cond == AUC_AUDITING)
}

/// The global audit policy (AUDIT_ARGV decides whether exec records carry
/// argv).
pub(crate) fn policy() -> io::Result<libc::c_int> {
    let mut policy: libc::c_int = 0;
    // SAFETY: A_GETPOLICY writes one int into `policy`, whose size we pass.
    let rc = unsafe {
        auditon(
            A_GETPOLICY,
            std::ptr::addr_of_mut!(policy).cast(),
            std::mem::size_of::<libc::c_int>() as libc::c_uint,
        )
    };
    check(rc)?;
    Ok(policy)
}

pub(crate) struct AuditPipe {
    file: File,
}

impl AuditPipe {
    /// Opens a new pipe (each open is its own queue; closing frees it, so
    /// there is no global state to restore) and selects `classes` for
    /// attributable and non-attributable events alike.
    pub(crate) fn open(classes: u32, qlimit: u32) -> io::Result<AuditPipe> {
        let file = File::open("/dev/auditpipe")?;
        let pipe = AuditPipe { file };
        let fd = pipe.file.as_raw_fd();
        let mut mode = AUDITPIPE_PRESELECT_MODE_LOCAL;
        let mut mask = AuMask {
            success: classes,
            failure: classes,
        };
        let mut max: libc::c_uint = 0;
        // SAFETY: each request's argument is the type and size its code
        // encodes (int, au_mask_t, u_int), living for the call.
        unsafe {
            check(libc::ioctl(fd, AUDITPIPE_SET_PRESELECT_MODE, &mut mode))?;
            check(libc::ioctl(fd, AUDITPIPE_SET_PRESELECT_FLAGS, &mut mask))?;
            check(libc::ioctl(fd, AUDITPIPE_SET_PRESELECT_NAFLAGS, &mut mask))?;
            check(libc::ioctl(fd, AUDITPIPE_GET_QLIMIT_MAX, &mut max))?;
            let mut limit: libc::c_uint = qlimit.min(max.max(1));
            check(libc::ioctl(fd, AUDITPIPE_SET_QLIMIT, &mut limit))?;
            // Records queued before our preselection took effect.
            check(libc::ioctl(fd, AUDITPIPE_FLUSH))?;
        }
        Ok(pipe)
    }

    /// Records the pipe dropped (queue full). The kernel writes a 32-bit
    /// counter into the 64-bit argument, so it wraps at 2^32.
    pub(crate) fn drops(&self) -> io::Result<u64> {
        let mut drops: u64 = 0;
        // SAFETY: GET_DROPS writes at most 8 bytes into `drops`.
        check(unsafe { libc::ioctl(self.file.as_raw_fd(), AUDITPIPE_GET_DROPS, &mut drops) })?;
        Ok(drops & 0xffff_ffff)
    }

    /// Waits up to `timeout` for data, then reads what is there (possibly a
    /// partial record). Ok(0) on timeout.
    pub(crate) fn read(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        if !crate::sys::wait_readable(self.file.as_raw_fd(), Some(timeout))? {
            return Ok(0);
        }
        self.file.read(buf)
    }
}
