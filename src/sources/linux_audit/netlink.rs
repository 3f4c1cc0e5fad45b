//! Audit netlink sockets: the request/reply conversation with the kernel
//! (status, rules) and the datagram reader the records arrive on.
//!
//! Framing facts this module relies on:
//! - the kernel's audit code puts exactly one netlink message in each
//!   datagram (records, replies and acks alike), so one `recv` is one message;
//! - the `nlmsg_len` of records sent unicast to the registered audit receiver
//!   does not count the 16-byte header (multicast copies are corrected), so
//!   a payload is always sized from the datagram length, never from the header;
//! - record text may carry trailing NUL padding.

use netlink_packet_audit::{
    RuleMessage, StatusMessage, StatusMessageBuffer, AUDIT_ADD_RULE, AUDIT_DEL_RULE, AUDIT_GET,
    AUDIT_LIST_RULES, AUDIT_NLGRP_READLOG, AUDIT_SET,
};
use netlink_packet_core::{
    Emitable, NetlinkBuffer, NetlinkHeader, Parseable, NLMSG_DONE, NLMSG_ERROR, NLM_F_ACK,
    NLM_F_REQUEST,
};
use netlink_sys::{protocols::NETLINK_AUDIT, Socket, SocketAddr};
use std::io;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// Size of `struct nlmsghdr`.
pub(crate) const NLMSG_HDRLEN: usize = 16;

/// A receive buffer that holds any audit record. Records are usually under
/// 9 KiB, but a PATH record with a long hex-encoded name can be larger.
pub const RECV_BUF_LEN: usize = 64 * 1024;

/// How long a control request may take before we give up on the kernel.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(5);

/// Smallest buffer that holds any control reply (a status reply is 60
/// bytes; a rule is 1040 bytes plus its strings, at most a few KiB).
const CONTROL_BUF_LEN: usize = 16 * 1024;

/// Audit message types below this are requests/replies, not records.
const FIRST_RECORD_TYPE: u16 = 1100;

/// Failure to read the next message.
#[derive(Debug, thiserror::Error)]
pub enum RecvError {
    /// ENOBUFS: the socket's receive queue overflowed and the kernel dropped
    /// messages for us. The socket stays usable.
    #[error("audit socket overrun (ENOBUFS): the kernel dropped records")]
    Overrun,
    /// The datagram was longer than the buffer; it was consumed and lost.
    #[error("audit message of {len} bytes did not fit the {buf_len}-byte buffer")]
    Truncated {
        /// The datagram's length, in bytes.
        len: usize,
        /// The receive buffer's length, in bytes.
        buf_len: usize,
    },
    /// Any other receive error from the socket.
    #[error("audit socket: {0}")]
    Io(#[source] io::Error),
}

impl From<io::Error> for RecvError {
    fn from(e: io::Error) -> Self {
        if e.raw_os_error() == Some(libc::ENOBUFS) {
            RecvError::Overrun
        } else {
            RecvError::Io(e)
        }
    }
}

/// One received netlink message, borrowed from the caller's buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Message<'b> {
    pub msg_type: u16,
    pub seq: u32,
    /// Datagram length minus the header, untrimmed (binary replies end in
    /// meaningful zero bytes).
    pub payload: &'b [u8],
}

impl<'b> Message<'b> {
    /// The message in the first `len` bytes of `buf` (a datagram of at
    /// least `NLMSG_HDRLEN` bytes; callers check). The payload's length
    /// comes from the datagram, not from the header's `nlmsg_len`, which the
    /// kernel does not fill in as documented for audit records (see the
    /// module doc).
    fn read(buf: &'b [u8], len: usize) -> Message<'b> {
        let header = NetlinkBuffer::new(&buf[..len]);
        Message {
            msg_type: header.message_type(),
            seq: header.sequence_number(),
            payload: &buf[NLMSG_HDRLEN..len],
        }
    }

    /// Whether this is an audit record (as opposed to an ack, a reply to a
    /// request, or other netlink traffic).
    pub(crate) fn is_record(&self) -> bool {
        self.msg_type >= FIRST_RECORD_TYPE
    }
}

/// Record text without the NUL padding the kernel may leave at the end.
pub(crate) fn record_text(payload: &[u8]) -> &[u8] {
    let end = payload
        .iter()
        .rposition(|&b| b != 0)
        .map_or(0, |last| last + 1);
    &payload[..end]
}

/// A NETLINK_AUDIT socket.
pub(crate) struct AuditSocket {
    sock: Socket,
    port: u32,
    seq: u32,
}

impl AuditSocket {
    /// A unicast socket with a kernel-assigned port id.
    pub(crate) fn open() -> io::Result<Self> {
        Self::bind(0)
    }

    /// A socket in the read-only multicast group AUDIT_NLGRP_READLOG, which
    /// gets a copy of every record without registering as the audit daemon.
    /// Binding fails with EPERM without CAP_AUDIT_READ.
    pub(crate) fn open_multicast() -> io::Result<Self> {
        Self::bind(1 << (AUDIT_NLGRP_READLOG - 1))
    }

    fn bind(groups: u32) -> io::Result<Self> {
        let mut sock = Socket::new(NETLINK_AUDIT)?;
        sock.bind(&SocketAddr::new(0, groups))?;
        let mut addr = SocketAddr::new(0, 0);
        sock.get_address(&mut addr)?;
        Ok(AuditSocket {
            sock,
            port: addr.port_number(),
            // Start away from zero so a stray seq-0 message never matches.
            seq: 1,
        })
    }

    pub(crate) fn fd(&self) -> libc::c_int {
        self.sock.as_raw_fd()
    }

    /// Reads and throws away what is queued (at most `max` messages)
    /// without copying it out, 64 messages per system call; returns how
    /// many. For the registered receiver socket whose records are read from
    /// the multicast copy: the kernel blocks on a full receiver, so it must
    /// be emptied regularly.
    pub(crate) fn discard_queued(&self, max: usize) -> io::Result<usize> {
        const BATCH: usize = 64;
        // SAFETY: mmsghdr is plain data; all-zero is a valid value (no
        // name, no iovecs, no control data).
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        let mut n = 0;
        while n < max {
            // SAFETY: hdrs holds BATCH valid headers with no buffers; the
            // kernel consumes each datagram (it is longer than the zero
            // bytes asked for) and writes only the headers' lengths and flags.
            let rc = unsafe {
                libc::recvmmsg(
                    self.fd(),
                    hdrs.as_mut_ptr(),
                    BATCH as libc::c_uint,
                    libc::MSG_DONTWAIT as _,
                    std::ptr::null_mut(),
                )
            };
            if rc > 0 {
                let got = rc as usize;
                n += got;
                if got < BATCH {
                    return Ok(n);
                }
                continue;
            }
            if rc == 0 {
                return Ok(n);
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EAGAIN) => return Ok(n),
                Some(libc::EINTR) | Some(libc::ENOBUFS) => {}
                _ => return Err(e),
            }
        }
        Ok(n)
    }

    /// Asks for a receive buffer of `bytes`. SO_RCVBUFFORCE (root, i.e.
    /// CAP_NET_ADMIN) may exceed net.core.rmem_max; otherwise SO_RCVBUF is
    /// silently capped there. Returns what the kernel granted (which counts
    /// its bookkeeping overhead, about double the request).
    pub(crate) fn set_rcvbuf(&self, bytes: usize) -> io::Result<usize> {
        let want = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
        if setsockopt_int(self.sock.as_raw_fd(), libc::SO_RCVBUFFORCE, want).is_err() {
            self.sock.set_rx_buf_sz(want)?;
        }
        self.sock.get_rx_buf_sz()
    }

    /// Sends one request to the kernel; returns its sequence number.
    pub(crate) fn send(&mut self, msg_type: u16, flags: u16, payload: &[u8]) -> io::Result<u32> {
        self.seq = self.seq.wrapping_add(1).max(1);
        let len = NLMSG_HDRLEN + payload.len();
        let nlmsg_len = u32::try_from(len)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "request too large"))?;
        let mut header = NetlinkHeader::default();
        header.length = nlmsg_len;
        header.message_type = msg_type;
        header.flags = flags;
        header.sequence_number = self.seq;
        header.port_number = self.port;
        let mut msg = vec![0; len];
        header.emit(&mut msg[..NLMSG_HDRLEN]);
        msg[NLMSG_HDRLEN..].copy_from_slice(payload);
        let sent = self.sock.send_to(&msg, &SocketAddr::new(0, 0), 0)?;
        if sent != msg.len() {
            return Err(io::Error::other("short send on the audit socket"));
        }
        Ok(self.seq)
    }

    /// Waits up to `timeout` (None: forever) for one message and reads it
    /// into `buf`. Ok(None) on timeout or EINTR. A zero timeout reads what
    /// is queued without polling first.
    pub(crate) fn recv<'b>(
        &self,
        buf: &'b mut [u8],
        timeout: Option<Duration>,
    ) -> Result<Option<Message<'b>>, RecvError> {
        if timeout != Some(Duration::ZERO)
            && !crate::sys::wait_readable(self.sock.as_raw_fd(), timeout)?
        {
            return Ok(None);
        }
        let buf_len = buf.len();
        // MSG_TRUNC makes recv report the full datagram length, so an
        // oversized message is detected instead of silently cut.
        let len = match self
            .sock
            .recv(&mut &mut buf[..], libc::MSG_TRUNC | libc::MSG_DONTWAIT)
        {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if len > buf_len {
            return Err(RecvError::Truncated { len, buf_len });
        }
        if len < NLMSG_HDRLEN {
            return Err(RecvError::Io(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("audit datagram of {len} bytes is shorter than a netlink header"),
            )));
        }
        Ok(Some(Message::read(buf, len)))
    }
}

/// The request/reply side of the audit netlink: status and rules. Kept on
/// its own socket so replies never mix with the record stream.
pub struct ControlSocket {
    sock: AuditSocket,
    buf: Vec<u8>,
}

impl ControlSocket {
    /// Opens a netlink audit socket for requests, with its reply buffer.
    pub fn open() -> io::Result<Self> {
        Ok(ControlSocket {
            sock: AuditSocket::open()?,
            buf: vec![0; CONTROL_BUF_LEN],
        })
    }

    /// AUDIT_GET.
    pub(crate) fn get_status(&mut self) -> io::Result<StatusMessage> {
        // No NLM_F_ACK: the kernel sends the reply from a separate thread, so
        // an ack could arrive before it; errors are reported either way.
        let seq = self.sock.send(AUDIT_GET, NLM_F_REQUEST, &[])?;
        let deadline = Instant::now() + CONTROL_TIMEOUT;
        loop {
            let msg = self.reply(seq, deadline)?;
            match msg.msg_type {
                AUDIT_GET => {
                    let buf = StatusMessageBuffer::new_checked(msg.payload).map_err(invalid)?;
                    return StatusMessage::parse(&buf).map_err(invalid);
                }
                NLMSG_ERROR => check_ack(msg.payload)?,
                _ => {}
            }
        }
    }

    /// AUDIT_SET: changes the fields selected by `status.mask`. Registering
    /// a pid belongs on the socket that is to receive the records (the
    /// kernel sends to the requesting port), not here; giving it back (0)
    /// works from any socket of the registered process.
    pub fn set_status(&mut self, status: &StatusMessage) -> io::Result<()> {
        let mut payload = vec![0; status.buffer_len()];
        status.emit(&mut payload);
        request_acked(&mut self.sock, &mut self.buf, AUDIT_SET, &payload, |_| {})
    }

    /// AUDIT_LIST_RULES: every rule as the kernel's raw `audit_rule_data`.
    pub(crate) fn list_rules(&mut self) -> io::Result<Vec<Vec<u8>>> {
        let seq = self.sock.send(AUDIT_LIST_RULES, NLM_F_REQUEST, &[])?;
        let deadline = Instant::now() + CONTROL_TIMEOUT;
        let mut rules = Vec::new();
        loop {
            let msg = self.reply(seq, deadline)?;
            match msg.msg_type {
                AUDIT_LIST_RULES => rules.push(msg.payload.to_vec()),
                NLMSG_DONE => return Ok(rules),
                NLMSG_ERROR => check_ack(msg.payload)?,
                _ => {}
            }
        }
    }

    /// AUDIT_ADD_RULE with a raw `audit_rule_data`.
    pub fn add_rule(&mut self, rule: &[u8]) -> io::Result<()> {
        request_acked(&mut self.sock, &mut self.buf, AUDIT_ADD_RULE, rule, |_| {})
    }

    /// AUDIT_DEL_RULE with a raw `audit_rule_data`; the kernel deletes the
    /// rule that compares equal (same list, action, fields, strings, mask).
    pub fn del_rule(&mut self, rule: &[u8]) -> io::Result<()> {
        request_acked(&mut self.sock, &mut self.buf, AUDIT_DEL_RULE, rule, |_| {})
    }

    fn reply(&mut self, seq: u32, deadline: Instant) -> io::Result<Message<'_>> {
        next_reply(&self.sock, &mut self.buf, seq, deadline, &mut |_| {})
    }
}

/// Serializes a rule built with netlink-packet-audit's builder.
pub(crate) fn rule_bytes(rule: &RuleMessage) -> Vec<u8> {
    let mut out = vec![0; rule.buffer_len()];
    rule.emit(&mut out);
    out
}

/// Sends `payload` with NLM_F_ACK on `sock` and waits for the ack. Records
/// that arrive first (on a socket that is, or is becoming, the audit
/// receiver) are handed to `on_record` rather than dropped.
pub(crate) fn request_acked(
    sock: &mut AuditSocket,
    buf: &mut [u8],
    msg_type: u16,
    payload: &[u8],
    mut on_record: impl FnMut(Message<'_>),
) -> io::Result<()> {
    let seq = sock.send(msg_type, NLM_F_REQUEST | NLM_F_ACK, payload)?;
    let deadline = Instant::now() + CONTROL_TIMEOUT;
    loop {
        let msg = next_reply(sock, buf, seq, deadline, &mut on_record)?;
        if msg.msg_type == NLMSG_ERROR {
            return check_ack(msg.payload);
        }
    }
}

/// The next message answering request `seq`; records go to `on_record`,
/// anything else (stale replies) is skipped.
fn next_reply<'b>(
    sock: &AuditSocket,
    buf: &'b mut [u8],
    seq: u32,
    deadline: Instant,
    on_record: &mut dyn FnMut(Message<'_>),
) -> io::Result<Message<'b>> {
    // Two passes through the borrow checker: find the reply's length while
    // borrowing temporarily, then return a borrow that lives as long as buf.
    let found = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the kernel did not answer the audit request",
            ));
        }
        match sock.recv(buf, Some(left)) {
            Ok(Some(msg)) if msg.is_record() && msg.seq != seq => on_record(msg),
            Ok(Some(msg)) if msg.seq == seq => break msg.payload.len(),
            Ok(_) => {}
            Err(RecvError::Io(e)) => return Err(e),
            // A control reply cannot be lost to an overrun of the record
            // stream: keep waiting for it.
            Err(RecvError::Overrun) => {}
            Err(e @ RecvError::Truncated { .. }) => return Err(io::Error::other(e.to_string())),
        }
    };
    Ok(Message::read(buf, NLMSG_HDRLEN + found))
}

/// NLMSG_ERROR payload: a negative errno (0 = ack) then the request header.
fn check_ack(payload: &[u8]) -> io::Result<()> {
    let Some(code) = payload.get(..4) else {
        return Err(invalid("short netlink error message"));
    };
    let code = i32::from_ne_bytes([code[0], code[1], code[2], code[3]]);
    // Positive is success too: resetting the lost counter acks with the
    // old count in this field.
    if code >= 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(code.saturating_neg()))
    }
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

fn setsockopt_int(fd: libc::c_int, opt: libc::c_int, value: libc::c_int) -> io::Result<()> {
    // SAFETY: fd is an open socket owned by the caller; the option value is
    // a c_int that lives for the duration of the call and its size is given.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            opt,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_trailing_nuls_only() {
        assert_eq!(record_text(b"a=1 b=2\0\0\0"), b"a=1 b=2");
        assert_eq!(record_text(b"a=\0x"), b"a=\0x");
        assert_eq!(record_text(b"\0\0"), b"");
        assert_eq!(record_text(b""), b"");
    }

    #[test]
    fn enobufs_is_an_overrun() {
        let e = RecvError::from(io::Error::from_raw_os_error(libc::ENOBUFS));
        assert!(matches!(e, RecvError::Overrun));
        let e = RecvError::from(io::Error::from_raw_os_error(libc::EBADF));
        assert!(matches!(e, RecvError::Io(_)));
    }

    #[test]
    fn acks_carry_negative_errno() {
        let mut payload = (-libc::EPERM).to_ne_bytes().to_vec();
        payload.extend_from_slice(&[0; 16]);
        let e = check_ack(&payload).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EPERM));
        assert!(check_ack(&0i32.to_ne_bytes()).is_ok());
        assert!(check_ack(&97i32.to_ne_bytes()).is_ok());
        assert!(check_ack(&[0, 0]).is_err());
    }
}
