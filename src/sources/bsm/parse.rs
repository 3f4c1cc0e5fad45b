//! OpenBSM audit records: a token parser and a stream reassembler.
//!
//! A record is a header token, some tokens and a trailer token. Every
//! integer is big-endian. The header's byte count covers the whole record
//! (header and trailer too), and the trailer repeats it after the magic
//! `0xb105`. A trail file is records back to back, with a file token (0x11)
//! at its start and end. `/dev/auditpipe` hands out the same records, but a
//! `read` may stop in the middle of one.
//!
//! Everything here reads untrusted bytes: no indexing that can panic, no
//! allocation sized by a field of the input (only by what is actually
//! present), and the header's byte count bounds every token of a record.

#![forbid(unsafe_code)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

// Token ids (OpenBSM sys/bsm/audit_record.h; 0xed–0xef are Apple's).
pub(crate) const AUT_OTHER_FILE32: u8 = 0x11;
pub(crate) const AUT_TRAILER: u8 = 0x13;
/// header32: the plain record header, time as 32-bit seconds and
/// milliseconds. What xnu and auditd write on macOS.
pub const AUT_HEADER32: u8 = 0x14;
pub(crate) const AUT_HEADER32_EX: u8 = 0x15;
pub(crate) const AUT_DATA: u8 = 0x21;
pub(crate) const AUT_IPC: u8 = 0x22;
pub(crate) const AUT_PATH: u8 = 0x23;
/// subject32: the caller's ids, pid, session and terminal (32-bit port,
/// IPv4 terminal address).
pub const AUT_SUBJECT32: u8 = 0x24;
/// process32: like subject32, but describes a process the call acts on
/// (a signal's target), not the caller.
pub const AUT_PROCESS32: u8 = 0x26;
pub(crate) const AUT_RETURN32: u8 = 0x27;
pub(crate) const AUT_TEXT: u8 = 0x28;
pub(crate) const AUT_OPAQUE: u8 = 0x29;
pub(crate) const AUT_IN_ADDR: u8 = 0x2a;
pub(crate) const AUT_IP: u8 = 0x2b;
pub(crate) const AUT_IPORT: u8 = 0x2c;
pub(crate) const AUT_ARG32: u8 = 0x2d;
pub(crate) const AUT_SOCKET: u8 = 0x2e;
pub(crate) const AUT_SEQ: u8 = 0x2f;
pub(crate) const AUT_IPC_PERM: u8 = 0x32;
pub(crate) const AUT_NEWGROUPS: u8 = 0x3b;
pub(crate) const AUT_EXEC_ARGS: u8 = 0x3c;
pub(crate) const AUT_EXEC_ENV: u8 = 0x3d;
pub(crate) const AUT_ATTR32: u8 = 0x3e;
pub(crate) const AUT_EXIT: u8 = 0x52;
pub(crate) const AUT_ZONENAME: u8 = 0x60;
pub(crate) const AUT_ARG64: u8 = 0x71;
pub(crate) const AUT_RETURN64: u8 = 0x72;
pub(crate) const AUT_ATTR64: u8 = 0x73;
pub(crate) const AUT_HEADER64: u8 = 0x74;
pub(crate) const AUT_SUBJECT64: u8 = 0x75;
/// process64: process32 with a 64-bit terminal port.
pub const AUT_PROCESS64: u8 = 0x77;
pub(crate) const AUT_HEADER64_EX: u8 = 0x79;
/// subject32_ex: subject32 with a typed terminal address (IPv4 or IPv6).
pub const AUT_SUBJECT32_EX: u8 = 0x7a;
/// process32_ex: process32 with a typed terminal address (IPv4 or IPv6).
pub const AUT_PROCESS32_EX: u8 = 0x7b;
pub(crate) const AUT_SUBJECT64_EX: u8 = 0x7c;
/// process64_ex: process64 with a typed terminal address (IPv4 or IPv6).
pub const AUT_PROCESS64_EX: u8 = 0x7d;
pub(crate) const AUT_IN_ADDR_EX: u8 = 0x7e;
pub(crate) const AUT_SOCKET_EX: u8 = 0x7f;
pub(crate) const AUT_SOCKINET32: u8 = 0x80;
pub(crate) const AUT_SOCKINET128: u8 = 0x81;
pub(crate) const AUT_SOCKUNIX: u8 = 0x82;
pub(crate) const AUT_ARG_UUID: u8 = 0x84;
pub(crate) const AUT_RETURN_UUID: u8 = 0x85;
pub(crate) const AUT_IDENTITY: u8 = 0xed;
pub(crate) const AUT_KRB5_PRINCIPAL: u8 = 0xee;
pub(crate) const AUT_CERT_HASH: u8 = 0xef;

/// The trailer's magic number.
pub(crate) const TRAILER_MAGIC: u16 = 0xb105;
/// Id, magic and byte count.
pub(crate) const TRAILER_LEN: usize = 7;
/// Records claiming more than this are taken for garbage. Real ones stay
/// far below: xnu caps exec_args and exec_env at 16 KiB each.
pub const MAX_RECORD_LEN: usize = 1 << 20;

/// Terminal / host address types (`au_tid_addr.at_type`): the address length.
const AU_IPV4: u32 = 4;
const AU_IPV6: u32 = 16;
/// `sizeof(sockaddr_un.sun_path)` on the BSDs: the longest sockunix path.
const SOCKUNIX_PATH_MAX: usize = 104;
/// Longest trail-file name a file token is believed to carry (MAXPATHLEN).
const FILE_NAME_MAX: usize = 1024;
/// How deep a token check may nest exec-string searches (args, then env).
const MAX_SEARCH_DEPTH: u8 = 2;

/// Why bytes could not be read as a record or token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BsmError {
    /// The bytes end inside a token.
    #[error("bytes end inside a token")]
    Truncated,
    /// The record needs `need` bytes and fewer are present.
    #[error("record incomplete: needs {need} bytes")]
    Incomplete {
        /// The whole record's length in bytes, from its header.
        need: usize,
    },
    /// A token id this parser cannot size.
    #[error("unknown token id {0:#04x}")]
    UnknownToken(u8),
    /// A record must start with a header token; this is another id.
    #[error("token id {0:#04x} where a header should be")]
    NotAHeader(u8),
    /// A header byte count smaller than a header plus trailer, or above
    /// [`MAX_RECORD_LEN`].
    #[error("implausible record byte count {0}")]
    BadByteCount(u32),
    /// A header version OpenBSM never wrote.
    #[error("unknown header version {0}")]
    BadVersion(u8),
    /// An address type other than 4 (IPv4) or 16 (IPv6).
    #[error("unknown address type {0}")]
    BadAddressType(u32),
    /// No trailer with the header's byte count where the count says the
    /// record ends (or a trailer token with the wrong magic).
    #[error("trailer missing or not matching the header")]
    BadTrailer,
    /// A data token whose unit type is not 0–3.
    #[error("unknown data unit type {0}")]
    BadDataUnit(u8),
    /// A header or trailer among a record's tokens.
    #[error("token id {0:#04x} inside a record")]
    UnexpectedToken(u8),
    /// The end of an exec_args or exec_env token could not be found (its
    /// count overstates the strings and what follows is not recognisable).
    #[error("end of exec strings not found")]
    ExecStringsUnbounded,
}

/// A header token (header32, header32_ex, header64, header64_ex).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Which of the four header tokens.
    pub id: u8,
    /// The record length the header claims (see [`Record::len`] for the
    /// length actually used).
    pub byte_count: u32,
    /// Record format version: 11 (OpenBSM 1.1) from current xnu and
    /// auditd; framing a record accepts only 1–4, 10 and 11.
    pub version: u8,
    /// The audit event (AUE_*).
    pub event: u16,
    /// Event modifier bits (`PAD_*` flags in OpenBSM); not used here.
    pub modifier: u16,
    /// The host address of an `_ex` header.
    pub host: Option<IpAddr>,
    /// Event time, unix seconds (32 bits in the 32-bit headers).
    pub seconds: u64,
    /// Milliseconds within `seconds` (the kernel writes `tv_usec / 1000`).
    pub millis: u64,
}

impl Header {
    /// The header time as unix seconds and nanoseconds. Out-of-range values
    /// saturate rather than wrap.
    pub fn time(&self) -> (i64, u32) {
        let seconds = self.seconds.saturating_add(self.millis / 1000);
        let nanos = (self.millis % 1000) * 1_000_000;
        (
            i64::try_from(seconds).unwrap_or(i64::MAX),
            u32::try_from(nanos).unwrap_or(0),
        )
    }
}

/// A subject or process token (32/64-bit, with or without `_ex`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subject {
    /// Which token this came from.
    pub id: u8,
    /// Audit (login) user id; `u32::MAX` (AU_DEFAUDITID) when never set.
    pub auid: u32,
    /// Effective user id.
    pub euid: u32,
    /// Effective group id.
    pub egid: u32,
    /// Real user id.
    pub ruid: u32,
    /// Real group id.
    pub rgid: u32,
    /// Process id, as the kernel's `pid_t` bits (reinterpret as `i32`).
    pub pid: u32,
    /// Audit session id.
    pub sid: u32,
    /// Terminal port (32 bits in the 32-bit tokens).
    pub port: u64,
    /// Terminal address, written in network order.
    pub addr: IpAddr,
}

/// An exec_args or exec_env token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecStrings<'a> {
    /// The count field. Since macOS 12 it can exceed `strings.len()`: the
    /// kernel stops copying strings at 16 KiB but keeps the original count.
    pub count: u32,
    /// The strings found, without their NUL terminators.
    pub strings: Vec<&'a [u8]>,
    /// Fewer strings than `count` were found.
    pub truncated: bool,
}

/// A file attribute token (attr32, attr64).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attr {
    /// Which token this came from (attr32 or attr64).
    pub id: u8,
    /// File type and permission bits (a 16-bit BSD mode, zero-extended).
    pub mode: u32,
    /// Owner user id of the file.
    pub uid: u32,
    /// Owner group id of the file.
    pub gid: u32,
    /// File system id.
    pub fsid: u32,
    /// Inode number.
    pub node: u64,
    /// Device number (32 bits in attr32, zero-extended).
    pub dev: u64,
}

/// An argument token (arg32, arg64): a syscall argument and its label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arg<'a> {
    /// Which token this came from (arg32 or arg64).
    pub id: u8,
    /// Which syscall argument, counting from 1; xnu writes 0 for values
    /// that are no argument, such as a new process's "child PID".
    pub number: u8,
    /// Zero-extended for arg32.
    pub value: u64,
    /// The label, without its NUL.
    pub text: &'a [u8],
}

/// A return token (return32, return64).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Return {
    /// Which token this came from (return32 or return64).
    pub id: u8,
    /// BSM error number; 0 is success.
    pub status: u8,
    /// The syscall's return value, zero-extended for return32.
    pub value: u64,
}

/// Apple's identity token (0xed): the code signature of the process that
/// made the syscall, taken when it entered the kernel (xnu
/// `audit_syscall_enter`). For an exec that is the image before the exec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity<'a> {
    /// xnu writes 1 for a platform binary, 0 otherwise.
    pub(crate) signer_type: u32,
    /// Code-signing identifier (e.g. `com.apple.kcc`), without its NUL;
    /// empty for unsigned code.
    pub signing_id: &'a [u8],
    /// xnu cut `signing_id` short.
    pub signing_id_truncated: bool,
    /// Team identifier, without its NUL; empty when the code has none
    /// (Apple's platform binaries, unsigned code).
    pub team_id: &'a [u8],
    /// xnu cut `team_id` short.
    pub team_id_truncated: bool,
    /// The caller's code directory hash, raw bytes (not hex).
    pub cdhash: &'a [u8],
}

impl Identity<'_> {
    /// Whether the caller is an Apple platform binary (signer type 1).
    pub fn platform_binary(&self) -> bool {
        self.signer_type == 1
    }
}

/// An arbitrary-data token. xnu puts the new image's 20-byte cdhash in one
/// (printed as hex, byte units) when an exec succeeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Data<'a> {
    /// 0 binary, 1 octal, 2 decimal, 3 hex, 4 string.
    pub how_to_print: u8,
    /// 0 byte, 1 u16, 2 u32, 3 u64.
    pub unit_type: u8,
    /// How many units follow; `bytes` holds `unit_count` times the unit
    /// size.
    pub unit_count: u8,
    /// The data, as written (big-endian units).
    pub bytes: &'a [u8],
}

/// One token. Text-like fields borrow from the input and stop at the first
/// NUL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token<'a> {
    /// A record's first token; [`parse_token`] returns it, a record keeps
    /// it in [`Record::header`].
    Header(Header),
    /// A record's last token (after the magic `0xb105`).
    Trailer {
        /// The record length it repeats; framing a record requires it to
        /// equal the header's.
        byte_count: u32,
    },
    /// The process that made the call, with the credentials it had when
    /// it entered the kernel.
    Subject(Subject),
    /// A process the call acts on (a signal's target), not the caller.
    Process(Subject),
    /// The exec's argv (`argv[0]` first).
    ExecArgs(ExecStrings<'a>),
    /// The exec's environment, `NAME=value` strings; present only when the
    /// audit policy has `arge`.
    ExecEnv(ExecStrings<'a>),
    /// A path, without its NUL: for an exec, as given, then resolved.
    Path(&'a [u8]),
    /// Free text, without its NUL.
    Text(&'a [u8]),
    /// Attributes of the file a path token names.
    Attr(Attr),
    /// A syscall argument and its label.
    Arg(Arg<'a>),
    /// The syscall's outcome.
    Return(Return),
    /// Apple's code-signing identity of the caller.
    Identity(Identity<'a>),
    /// Arbitrary data (xnu: the new image's cdhash).
    Data(Data<'a>),
    /// A trail file's name and time (also seen inside records).
    File {
        /// When the trail was opened or closed, unix seconds.
        seconds: u32,
        /// Milliseconds within `seconds`.
        millis: u32,
        /// The trail file's name, without its NUL.
        name: &'a [u8],
    },
    /// A token this parser can size but does not decode; `body` is what
    /// follows the id.
    Other {
        /// The token id.
        id: u8,
        /// The token's bytes after the id.
        body: &'a [u8],
    },
}

impl Token<'_> {
    /// The token id.
    pub fn id(&self) -> u8 {
        match self {
            Token::Header(h) => h.id,
            Token::Trailer { .. } => AUT_TRAILER,
            Token::Subject(s) | Token::Process(s) => s.id,
            Token::ExecArgs(_) => AUT_EXEC_ARGS,
            Token::ExecEnv(_) => AUT_EXEC_ENV,
            Token::Path(_) => AUT_PATH,
            Token::Text(_) => AUT_TEXT,
            Token::Attr(a) => a.id,
            Token::Arg(a) => a.id,
            Token::Return(r) => r.id,
            Token::Identity(_) => AUT_IDENTITY,
            Token::Data(_) => AUT_DATA,
            Token::File { .. } => AUT_OTHER_FILE32,
            Token::Other { id, .. } => *id,
        }
    }
}

/// Where and why a record's tokens stopped being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stop {
    /// Offset in the record of the token that could not be read.
    pub(crate) offset: usize,
    /// Why that token could not be read.
    pub error: BsmError,
}

/// One record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    /// The record's header token.
    pub header: Header,
    /// The tokens between the header and the trailer, in order.
    pub tokens: Vec<Token<'a>>,
    /// The byte count in the trailer (it matched the header's).
    pub trailer_count: u32,
    /// Bytes the record occupies. Differs from `header.byte_count` only for
    /// an `_ex` header written by xnu, which counts a plain header's size.
    pub len: usize,
    /// Set when the tokens could not all be read: `tokens` holds those
    /// before the problem, and the record's length is still known.
    pub partial: Option<Stop>,
}

/// Reads a single token at the start of `bytes` (for example one of
/// OpenBSM's reference token files). Returns the token and its length. An
/// exec_args/exec_env token trusts its count, bounded by `bytes`.
pub fn parse_token(bytes: &[u8]) -> Result<(Token<'_>, usize), BsmError> {
    let mut ctx = Ctx::new(bytes.len(), false);
    token_at(bytes, 0, &mut ctx)
}

/// Reads the record at the start of `bytes`. Returns the record and the
/// number of bytes it occupies; bytes after it are not looked at.
///
/// Errors are about framing (the record's extent cannot be trusted). A
/// record whose extent is sound but whose tokens cannot all be read is
/// returned with [`Record::partial`] set.
pub fn parse_record(bytes: &[u8]) -> Result<(Record<'_>, usize), BsmError> {
    let len = match frame(bytes) {
        Frame::Record(len) => len,
        Frame::NeedMore(need) => return Err(BsmError::Incomplete { need }),
        Frame::File(_) => return Err(BsmError::NotAHeader(AUT_OTHER_FILE32)),
        Frame::Bad(e) => return Err(e),
    };
    let rec = bytes.get(..len).ok_or(BsmError::Truncated)?;
    let trailer_pos = len.checked_sub(TRAILER_LEN).ok_or(BsmError::BadTrailer)?;
    let area = rec.get(..trailer_pos).ok_or(BsmError::BadTrailer)?;
    let trailer_count = match token_at(rec, trailer_pos, &mut Ctx::new(0, false))? {
        (Token::Trailer { byte_count }, _) => byte_count,
        _ => return Err(BsmError::BadTrailer),
    };
    let mut ctx = Ctx::new(area.len(), true);
    let (header, mut pos) = match token_at(area, 0, &mut ctx)? {
        (Token::Header(h), end) => (h, end),
        (other, _) => return Err(BsmError::NotAHeader(other.id())),
    };
    let mut tokens = Vec::new();
    let mut partial = None;
    while pos < area.len() {
        match token_at(area, pos, &mut ctx) {
            Ok((tok @ (Token::Header(_) | Token::Trailer { .. }), _)) => {
                partial = Some(Stop {
                    offset: pos,
                    error: BsmError::UnexpectedToken(tok.id()),
                });
                break;
            }
            Ok((tok, end)) => {
                tokens.push(tok);
                if ctx.lost {
                    partial = Some(Stop {
                        offset: end,
                        error: BsmError::ExecStringsUnbounded,
                    });
                    break;
                }
                pos = end;
            }
            Err(error) => {
                partial = Some(Stop { offset: pos, error });
                break;
            }
        }
    }
    let record = Record {
        header,
        tokens,
        trailer_count,
        len,
        partial,
    };
    Ok((record, len))
}

/// What the bytes at some position are, framing-wise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frame {
    /// A whole record of this many bytes, trailer checked.
    Record(usize),
    /// A standalone file token of this many bytes (trail files).
    File(usize),
    /// Plausible so far; this many bytes are needed to decide.
    NeedMore(usize),
    /// Not the start of a record.
    Bad(BsmError),
}

fn valid_version(v: u8) -> bool {
    // OLDDARWIN 1, SOLARIS 2, TSOL25 3, TSOL 4, OPENBSM10, OPENBSM11.
    matches!(v, 1..=4 | 10 | 11)
}

fn frame(b: &[u8]) -> Frame {
    match b.first() {
        None => Frame::NeedMore(1),
        Some(&AUT_OTHER_FILE32) => frame_file(b),
        Some(&id @ (AUT_HEADER32 | AUT_HEADER32_EX | AUT_HEADER64 | AUT_HEADER64_EX)) => {
            frame_header(b, id)
        }
        Some(&id) => Frame::Bad(BsmError::NotAHeader(id)),
    }
}

fn frame_file(b: &[u8]) -> Frame {
    const FIXED: usize = 11;
    let mut c = Cursor::at(b, 9);
    let Ok(name_len) = c.u16() else {
        return Frame::NeedMore(FIXED);
    };
    let name_len = usize::from(name_len);
    if name_len == 0 || name_len > FILE_NAME_MAX {
        return Frame::Bad(BsmError::NotAHeader(AUT_OTHER_FILE32));
    }
    // auditd writes `tv_usec / 1000`: a random u32 is below 1000 once in
    // four million, which keeps garbage from passing for a trail boundary.
    let mut m = Cursor::at(b, 5);
    if m.u32().is_ok_and(|millis| millis >= 1000) {
        return Frame::Bad(BsmError::NotAHeader(AUT_OTHER_FILE32));
    }
    let total = FIXED + name_len;
    match b.get(total - 1) {
        None => Frame::NeedMore(total),
        // auditd writes the name with its NUL; requiring it keeps random
        // 0x11 bytes from passing for a file token while resynchronising.
        Some(0) => Frame::File(total),
        Some(_) => Frame::Bad(BsmError::NotAHeader(AUT_OTHER_FILE32)),
    }
}

fn frame_header(b: &[u8], id: u8) -> Frame {
    let ex = matches!(id, AUT_HEADER32_EX | AUT_HEADER64_EX);
    let time_len = if matches!(id, AUT_HEADER64 | AUT_HEADER64_EX) {
        16
    } else {
        8
    };
    // id, byte count, version, event, modifier [, address type]
    let prefix = if ex { 14 } else { 10 };
    let mut c = Cursor::at(b, 1);
    let (Ok(count), Ok(version)) = (c.u32(), c.u8()) else {
        return Frame::NeedMore(prefix);
    };
    // The cheapest test first: garbage of header ids fails here.
    if u64::from(count) > MAX_RECORD_LEN as u64 {
        return Frame::Bad(BsmError::BadByteCount(count));
    }
    if !valid_version(version) {
        return Frame::Bad(BsmError::BadVersion(version));
    }
    let mut c = Cursor::at(b, 10);
    let addr_len = if ex {
        match c.u32() {
            Err(_) => return Frame::NeedMore(prefix),
            Ok(AU_IPV4) => 4,
            Ok(AU_IPV6) => 16,
            Ok(t) => return Frame::Bad(BsmError::BadAddressType(t)),
        }
    } else {
        0
    };
    let header_len = prefix + addr_len + time_len;
    // What xnu's kau_close counts for an _ex header: the plain header size.
    let extra = if ex { 4 + addr_len } else { 0 };
    let Ok(declared) = usize::try_from(count) else {
        return Frame::Bad(BsmError::BadByteCount(count));
    };
    if declared < header_len - extra + TRAILER_LEN || declared > MAX_RECORD_LEN {
        return Frame::Bad(BsmError::BadByteCount(count));
    }
    if declared >= header_len + TRAILER_LEN {
        if b.len() < declared {
            return Frame::NeedMore(declared);
        }
        if trailer_matches(b, declared, count) {
            return Frame::Record(declared);
        }
    }
    if ex {
        // xnu sizes records with an _ex header as if the header were plain,
        // so header and trailer both claim `extra` bytes too few.
        let actual = declared + extra;
        if b.len() < actual {
            return Frame::NeedMore(actual);
        }
        if trailer_matches(b, actual, count) {
            return Frame::Record(actual);
        }
    }
    Frame::Bad(BsmError::BadTrailer)
}

fn trailer_matches(b: &[u8], end: usize, count: u32) -> bool {
    let Some(start) = end.checked_sub(TRAILER_LEN) else {
        return false;
    };
    let mut c = Cursor::at(b, start);
    matches!(
        (c.u8(), c.u16(), c.u32()),
        (Ok(AUT_TRAILER), Ok(TRAILER_MAGIC), Ok(n)) if n == count
    )
}

/// A bounds-checked big-endian reader.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn at(buf: &'a [u8], pos: usize) -> Cursor<'a> {
        Cursor { buf, pos }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], BsmError> {
        let end = self.pos.checked_add(n).ok_or(BsmError::Truncated)?;
        let s = self.buf.get(self.pos..end).ok_or(BsmError::Truncated)?;
        self.pos = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], BsmError> {
        self.take(N)?.try_into().map_err(|_| BsmError::Truncated)
    }

    fn u8(&mut self) -> Result<u8, BsmError> {
        Ok(u8::from_be_bytes(self.array()?))
    }

    fn u16(&mut self) -> Result<u16, BsmError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, BsmError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, BsmError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    fn ipv4(&mut self) -> Result<IpAddr, BsmError> {
        Ok(IpAddr::V4(Ipv4Addr::from(self.array::<4>()?)))
    }

    /// An address preceded by nothing: its type is already known.
    fn addr_of_type(&mut self, kind: u32) -> Result<IpAddr, BsmError> {
        match kind {
            AU_IPV4 => self.ipv4(),
            AU_IPV6 => Ok(IpAddr::V6(Ipv6Addr::from(self.array::<16>()?))),
            other => Err(BsmError::BadAddressType(other)),
        }
    }

    /// A u16 length and that many bytes.
    fn counted(&mut self) -> Result<&'a [u8], BsmError> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }
}

/// Up to the first NUL.
fn c_str(bytes: &[u8]) -> &[u8] {
    match bytes.iter().position(|&b| b == 0) {
        Some(n) => bytes.get(..n).unwrap_or(bytes),
        None => bytes,
    }
}

/// State shared by the token reads of one record.
struct Ctx {
    /// Inside a record whose end is known: exec strings may be searched.
    in_record: bool,
    /// Work units left for exec-string searches (bytes scanned plus tokens
    /// tried), so that a hostile record costs a bounded amount of time.
    budget: usize,
    depth: u8,
    /// An exec-strings token whose end could not be found was returned.
    lost: bool,
}

impl Ctx {
    fn new(area_len: usize, in_record: bool) -> Ctx {
        Ctx {
            in_record,
            budget: area_len.saturating_mul(16).saturating_add(4096),
            depth: 0,
            lost: false,
        }
    }

    fn spend(&mut self, units: usize) -> bool {
        match self.budget.checked_sub(units) {
            Some(left) => {
                self.budget = left;
                true
            }
            None => {
                self.budget = 0;
                false
            }
        }
    }
}

/// Reads the token at `pos` of `buf`; `buf` ends where the token area ends.
fn token_at<'a>(buf: &'a [u8], pos: usize, ctx: &mut Ctx) -> Result<(Token<'a>, usize), BsmError> {
    let mut c = Cursor::at(buf, pos);
    let id = c.u8()?;
    let token = match id {
        AUT_HEADER32 | AUT_HEADER32_EX | AUT_HEADER64 | AUT_HEADER64_EX => {
            let byte_count = c.u32()?;
            let version = c.u8()?;
            let event = c.u16()?;
            let modifier = c.u16()?;
            let host = if matches!(id, AUT_HEADER32_EX | AUT_HEADER64_EX) {
                let kind = c.u32()?;
                Some(c.addr_of_type(kind)?)
            } else {
                None
            };
            let (seconds, millis) = if matches!(id, AUT_HEADER64 | AUT_HEADER64_EX) {
                (c.u64()?, c.u64()?)
            } else {
                (u64::from(c.u32()?), u64::from(c.u32()?))
            };
            Token::Header(Header {
                id,
                byte_count,
                version,
                event,
                modifier,
                host,
                seconds,
                millis,
            })
        }
        AUT_TRAILER => {
            if c.u16()? != TRAILER_MAGIC {
                return Err(BsmError::BadTrailer);
            }
            Token::Trailer {
                byte_count: c.u32()?,
            }
        }
        AUT_SUBJECT32 | AUT_PROCESS32 | AUT_SUBJECT64 | AUT_PROCESS64 | AUT_SUBJECT32_EX
        | AUT_PROCESS32_EX | AUT_SUBJECT64_EX | AUT_PROCESS64_EX => {
            let s = subject(&mut c, id)?;
            if matches!(
                id,
                AUT_SUBJECT32 | AUT_SUBJECT64 | AUT_SUBJECT32_EX | AUT_SUBJECT64_EX
            ) {
                Token::Subject(s)
            } else {
                Token::Process(s)
            }
        }
        AUT_EXEC_ARGS | AUT_EXEC_ENV => {
            let count = c.u32()?;
            let (strings, end) = exec_strings(buf, c.pos, count, ctx);
            c.pos = end;
            if id == AUT_EXEC_ARGS {
                Token::ExecArgs(strings)
            } else {
                Token::ExecEnv(strings)
            }
        }
        AUT_PATH => Token::Path(c_str(c.counted()?)),
        AUT_TEXT => Token::Text(c_str(c.counted()?)),
        AUT_ATTR32 | AUT_ATTR64 => Token::Attr(Attr {
            id,
            mode: c.u32()?,
            uid: c.u32()?,
            gid: c.u32()?,
            fsid: c.u32()?,
            node: c.u64()?,
            dev: if id == AUT_ATTR32 {
                u64::from(c.u32()?)
            } else {
                c.u64()?
            },
        }),
        AUT_ARG32 | AUT_ARG64 => {
            let number = c.u8()?;
            let value = if id == AUT_ARG32 {
                u64::from(c.u32()?)
            } else {
                c.u64()?
            };
            Token::Arg(Arg {
                id,
                number,
                value,
                text: c_str(c.counted()?),
            })
        }
        AUT_RETURN32 | AUT_RETURN64 => {
            let status = c.u8()?;
            let value = if id == AUT_RETURN32 {
                u64::from(c.u32()?)
            } else {
                c.u64()?
            };
            Token::Return(Return { id, status, value })
        }
        AUT_IDENTITY => {
            // Layout from xnu au_to_identity (audit_bsm_token.c).
            let signer_type = c.u32()?;
            let signing_id = c_str(c.counted()?);
            let signing_id_truncated = c.u8()? != 0;
            let team_id = c_str(c.counted()?);
            let team_id_truncated = c.u8()? != 0;
            let cdhash = c.counted()?;
            Token::Identity(Identity {
                signer_type,
                signing_id,
                signing_id_truncated,
                team_id,
                team_id_truncated,
                cdhash,
            })
        }
        AUT_DATA => {
            let how_to_print = c.u8()?;
            let unit_type = c.u8()?;
            let unit_count = c.u8()?;
            let unit = match unit_type {
                0 => 1,
                1 => 2,
                2 => 4,
                3 => 8,
                other => return Err(BsmError::BadDataUnit(other)),
            };
            Token::Data(Data {
                how_to_print,
                unit_type,
                unit_count,
                bytes: c.take(unit * usize::from(unit_count))?,
            })
        }
        AUT_OTHER_FILE32 => Token::File {
            seconds: c.u32()?,
            millis: c.u32()?,
            name: c_str(c.counted()?),
        },
        _ => {
            let body_start = c.pos;
            skip_other(&mut c, id, ctx)?;
            Token::Other {
                id,
                body: buf.get(body_start..c.pos).ok_or(BsmError::Truncated)?,
            }
        }
    };
    Ok((token, c.pos))
}

fn subject(c: &mut Cursor<'_>, id: u8) -> Result<Subject, BsmError> {
    let auid = c.u32()?;
    let euid = c.u32()?;
    let egid = c.u32()?;
    let ruid = c.u32()?;
    let rgid = c.u32()?;
    let pid = c.u32()?;
    let sid = c.u32()?;
    let port = match id {
        AUT_SUBJECT64 | AUT_PROCESS64 | AUT_SUBJECT64_EX | AUT_PROCESS64_EX => c.u64()?,
        _ => u64::from(c.u32()?),
    };
    let addr = match id {
        AUT_SUBJECT32_EX | AUT_PROCESS32_EX | AUT_SUBJECT64_EX | AUT_PROCESS64_EX => {
            let kind = c.u32()?;
            c.addr_of_type(kind)?
        }
        _ => c.ipv4()?,
    };
    Ok(Subject {
        id,
        auid,
        euid,
        egid,
        ruid,
        rgid,
        pid,
        sid,
        port,
        addr,
    })
}

/// Moves past the body of a token kept as [`Token::Other`].
fn skip_other(c: &mut Cursor<'_>, id: u8, ctx: &mut Ctx) -> Result<(), BsmError> {
    match id {
        AUT_IPC => drop(c.take(1 + 4)?),
        AUT_OPAQUE | AUT_ZONENAME => drop(c.counted()?),
        AUT_IN_ADDR => drop(c.take(4)?),
        AUT_IN_ADDR_EX => {
            let kind = c.u32()?;
            c.addr_of_type(kind)?;
        }
        AUT_IP => drop(c.take(20)?),
        AUT_IPORT => drop(c.take(2)?),
        // type, local port, local address, remote port, remote address
        AUT_SOCKET => drop(c.take(2 + 2 + 4 + 2 + 4)?),
        AUT_SEQ => drop(c.take(4)?),
        // uid, gid, creator uid, creator gid, mode, sequence, key
        AUT_IPC_PERM => drop(c.take(7 * 4)?),
        AUT_NEWGROUPS => {
            let n = c.u16()?;
            c.take(usize::from(n) * 4)?;
        }
        // exit status, return value
        AUT_EXIT => drop(c.take(8)?),
        AUT_SOCKET_EX => {
            c.take(4)?; // domain, type
            let kind = u32::from(c.u16()?);
            c.take(2)?; // local port
            c.addr_of_type(kind)?;
            c.take(2)?; // remote port
            c.addr_of_type(kind)?;
        }
        // family, port, address
        AUT_SOCKINET32 => drop(c.take(2 + 2 + 4)?),
        AUT_SOCKINET128 => drop(c.take(2 + 2 + 16)?),
        AUT_SOCKUNIX => {
            c.take(2)?; // family
            let rest = c.buf.get(c.pos..).unwrap_or_default();
            let window = rest.get(..SOCKUNIX_PATH_MAX).unwrap_or(rest);
            let n = match window.iter().position(|&b| b == 0) {
                Some(nul) => nul + 1,
                None => window.len(),
            };
            c.take(n)?;
        }
        // number, 16-byte UUID, text
        AUT_ARG_UUID | AUT_RETURN_UUID => {
            c.take(1 + 16)?;
            c.counted()?;
        }
        // Apple's: a count and NUL-terminated strings, like exec_args.
        AUT_KRB5_PRINCIPAL | AUT_CERT_HASH => {
            let count = c.u32()?;
            c.pos = skip_strings(c.buf, c.pos, count, ctx).ok_or(BsmError::Truncated)?;
        }
        other => return Err(BsmError::UnknownToken(other)),
    }
    Ok(())
}

/// The position after `count` NUL-terminated strings starting at `start`,
/// if they all end inside `buf`.
fn skip_strings(buf: &[u8], start: usize, count: u32, ctx: &mut Ctx) -> Option<usize> {
    let mut pos = start;
    // Each round consumes at least one byte, so this ends within buf.len().
    for _ in 0..count {
        let rest = buf.get(pos..)?;
        let found = rest.iter().position(|&b| b == 0);
        let scanned = found.map_or(rest.len(), |nul| nul + 1);
        if ctx.in_record && !ctx.spend(scanned) {
            return None;
        }
        pos += found? + 1;
    }
    Some(pos)
}

/// The complete (NUL-terminated) strings in `buf[start..end]`.
fn strings_in(buf: &[u8], start: usize, end: usize) -> Vec<&[u8]> {
    buf.get(start..end)
        .unwrap_or_default()
        .split_inclusive(|&b| b == 0)
        .filter_map(|s| s.strip_suffix(&[0]))
        .collect()
}

fn exec_token(buf: &[u8], start: usize, end: usize, count: u32) -> ExecStrings<'_> {
    let strings = strings_in(buf, start, end);
    let truncated = u32::try_from(strings.len()).map_or(true, |n| n < count);
    ExecStrings {
        count,
        strings,
        truncated,
    }
}

/// Whether the bytes from `from` read as known tokens up to the end of the
/// token area (where the trailer starts).
fn tail_is_clean(buf: &[u8], from: usize, ctx: &mut Ctx) -> bool {
    let saved_lost = ctx.lost;
    ctx.depth += 1;
    let mut pos = from;
    let clean = loop {
        if pos == buf.len() {
            break true;
        }
        if !ctx.spend(1) {
            break false;
        }
        match token_at(buf, pos, ctx) {
            Ok((Token::Header(_) | Token::Trailer { .. }, _)) => break false,
            Ok(_) if ctx.lost => break false,
            // Charge the bytes the token covered: a search over many
            // boundaries must not re-read the record for free.
            Ok((_, end)) if ctx.spend(end.saturating_sub(pos)) => pos = end,
            Ok(_) | Err(_) => break false,
        }
    };
    ctx.depth -= 1;
    ctx.lost = saved_lost;
    clean
}

/// Reads an exec_args/exec_env body: `count` NUL-terminated strings from
/// `start`, with no byte length. The count cannot be trusted on macOS 12+
/// (it keeps argc although the strings stop at 16 KiB), so inside a record
/// the end is where the rest of the record reads as tokens up to the
/// trailer: first where the count says, else at the first string boundary
/// that works, else where the count says if the strings fit. If none of
/// that works, the strings found are kept, the token is marked truncated
/// and `ctx.lost` tells the caller to stop.
fn exec_strings<'a>(
    buf: &'a [u8],
    start: usize,
    count: u32,
    ctx: &mut Ctx,
) -> (ExecStrings<'a>, usize) {
    let trusted = skip_strings(buf, start, count, ctx);
    if !ctx.in_record {
        return match trusted {
            Some(end) => (exec_token(buf, start, end, count), end),
            // A bare token cut short: keep what is there.
            None => (exec_token(buf, start, buf.len(), count), buf.len()),
        };
    }
    if let Some(end) = trusted {
        if tail_is_clean(buf, end, ctx) {
            return (exec_token(buf, start, end, count), end);
        }
    }
    if ctx.depth < MAX_SEARCH_DEPTH {
        // Boundaries before the trusted end (already tried), or all of
        // them up to the area's end when the count does not even fit.
        let limit = trusted.unwrap_or(buf.len());
        let mut at = start;
        while (at < limit || (at == limit && trusted.is_none())) && ctx.budget > 0 {
            if tail_is_clean(buf, at, ctx) {
                return (exec_token(buf, start, at, count), at);
            }
            let rest = buf.get(at..limit).unwrap_or_default();
            match rest.iter().position(|&b| b == 0) {
                Some(nul) => at += nul + 1,
                None => break,
            }
        }
    }
    if let Some(end) = trusted {
        // The count fits but what follows is not all known tokens (a
        // token this parser does not know, say): believe the count and let
        // the record stop at the problem.
        return (exec_token(buf, start, end, count), end);
    }
    ctx.lost = true;
    let mut strings = exec_token(buf, start, buf.len(), count);
    strings.truncated = true;
    (strings, buf.len())
}

/// Whether a candidate fails on its first bytes, without [`frame`]'s
/// fuller reading: a file token's milliseconds above 65535, or a header's
/// byte count above 1 MiB + 64 KiB. Most candidates in garbage fail here.
fn hopeless(b: &[u8]) -> bool {
    match b {
        [AUT_OTHER_FILE32, _, _, _, _, m0, m1, ..] => *m0 != 0 || *m1 != 0,
        [AUT_OTHER_FILE32, ..] => false,
        [_, c0, c1, ..] => *c0 != 0 || *c1 > 0x10,
        _ => false,
    }
}

/// Bytes looked up one by one after a failed candidate before memchr.
const NEAR: usize = 4;

/// The ids that can start a record (the four headers) or a file token.
static STARTS: [bool; 256] = {
    let mut t = [false; 256];
    t[AUT_OTHER_FILE32 as usize] = true;
    t[AUT_HEADER32 as usize] = true;
    t[AUT_HEADER32_EX as usize] = true;
    t[AUT_HEADER64 as usize] = true;
    t[AUT_HEADER64_EX as usize] = true;
    t
};

/// Counters of a [`RecordReader`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReaderStats {
    /// Whole records handed out.
    pub records: u64,
    /// Standalone file tokens (trail-file boundaries) skipped.
    pub file_tokens: u64,
    /// Bytes dropped because they did not frame as a record: garbage, a
    /// record with a bad trailer, or an incomplete record at the end.
    pub skipped_bytes: u64,
    /// Times the stream lost record framing and had to search for a header.
    pub resyncs: u64,
    /// Bytes skipped since the last record (or the start): how much garbage
    /// the current search has cost. File tokens do not reset it.
    pub skipped_since_record: u64,
}

/// Cuts a byte stream (auditpipe reads, a trail file read in chunks) into
/// whole records.
///
/// Feed it with [`push`](Self::push), then call
/// [`next_record`](Self::next_record) until it returns `None`. After that the
/// reader holds at most one incomplete record, so less than
/// [`MAX_RECORD_LEN`] plus a header. Bytes that do not frame as a record
/// are skipped up to the next header with a matching trailer (or a trail
/// file token), found with memchr (see `resync_point`).
/// In that search, a false header can hold back the records behind it until
/// its claimed length has arrived or [`finish`](Self::finish) is called; it
/// is never handed out, since its trailer does not match.
#[derive(Debug, Default)]
pub struct RecordReader {
    buf: Vec<u8>,
    pos: usize,
    eof: bool,
    resyncing: bool,
    stats: ReaderStats,
}

impl RecordReader {
    /// An empty reader.
    pub fn new() -> RecordReader {
        RecordReader::default()
    }

    /// Appends bytes read from the source.
    pub fn push(&mut self, chunk: &[u8]) {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
            // Give back the room a big chunk or a long wait left behind.
            if self.buf.capacity() > 4 * MAX_RECORD_LEN && self.buf.len() < MAX_RECORD_LEN {
                self.buf.shrink_to(2 * MAX_RECORD_LEN);
            }
        }
        self.buf.extend_from_slice(chunk);
        self.eof = false;
    }

    /// Marks the end of the input: a record still waiting for bytes will
    /// not get them, and the bytes it held are searched for records again.
    pub fn finish(&mut self) {
        self.eof = true;
    }

    /// The next whole record, header to trailer, or `None` until more bytes
    /// are pushed. Parse it with [`parse_record`].
    pub fn next_record(&mut self) -> Option<&[u8]> {
        loop {
            let avail = self.buf.get(self.pos..).unwrap_or_default();
            if avail.is_empty() {
                return None;
            }
            match frame(avail) {
                Frame::Record(len) => {
                    let start = self.pos;
                    self.pos += len;
                    self.resyncing = false;
                    self.stats.records += 1;
                    self.stats.skipped_since_record = 0;
                    return self.buf.get(start..self.pos);
                }
                Frame::File(len) => {
                    self.pos += len;
                    self.resyncing = false;
                    self.stats.file_tokens += 1;
                }
                Frame::NeedMore(_) if !self.eof => return None,
                Frame::NeedMore(_) | Frame::Bad(_) => self.skip_garbage(),
            }
        }
    }

    /// Drops the byte at the read position and every following byte up to
    /// the next plausible start of a record or file token (see
    /// [`resync_point`](Self::resync_point)).
    fn skip_garbage(&mut self) {
        if !self.resyncing {
            self.resyncing = true;
            self.stats.resyncs += 1;
        }
        let rest = self.buf.get(self.pos + 1..).unwrap_or_default();
        let n = 1 + self.resync_point(rest);
        self.pos += n;
        self.stats.skipped_bytes += n as u64;
        self.stats.skipped_since_record += n as u64;
    }

    /// The offset in `hay` of the first byte that may start a record: a
    /// header id whose header is plausible (version, address type, byte
    /// count within bounds) and whose trailer, where the byte count puts it,
    /// is a trailer token with the same count; or a file token. A candidate
    /// that cannot be decided until more bytes arrive is one too (the
    /// reader waits for them), unless the input has ended. `hay.len()` when
    /// there is none.
    ///
    /// The ids are found with memchr (SIMD, two searches whose hits are
    /// kept, so each byte is searched once), after a short byte-by-byte look
    /// past each failed candidate; random bytes cost about one check per 50
    /// bytes. A check reads a few bytes at fixed offsets, so bytes that are
    /// all ids cost one check each and nothing more.
    fn resync_point(&self, hay: &[u8]) -> usize {
        let mut at = 0;
        // The next hit of each memchr search; still good while >= `at`.
        let (mut common, mut rare) = (0, 0);
        loop {
            // A few bytes are looked up one by one first: in garbage dense
            // with ids the next one is near, and a memchr call costs more.
            let mut near = hay.get(at..).unwrap_or_default().iter().take(NEAR);
            let candidate = match near.position(|&b| STARTS[usize::from(b)]) {
                Some(i) => at + i,
                None => {
                    let from = at + NEAR;
                    let rest = hay.get(from..).unwrap_or_default();
                    if rest.is_empty() {
                        return hay.len();
                    }
                    if common < from {
                        common = from
                            + memchr::memchr3(AUT_HEADER32, AUT_HEADER32_EX, AUT_HEADER64, rest)
                                .unwrap_or(rest.len());
                    }
                    if rare < from {
                        rare = from
                            + memchr::memchr2(AUT_HEADER64_EX, AUT_OTHER_FILE32, rest)
                                .unwrap_or(rest.len());
                    }
                    common.min(rare)
                }
            };
            let Some(bytes) = hay.get(candidate..).filter(|b| !b.is_empty()) else {
                return hay.len();
            };
            if !hopeless(bytes) {
                match frame(bytes) {
                    Frame::Bad(_) => {}
                    Frame::NeedMore(_) if self.eof => {}
                    Frame::Record(_) | Frame::File(_) | Frame::NeedMore(_) => return candidate,
                }
            }
            at = candidate + 1;
        }
    }

    /// Bytes held: an incomplete record, or input not yet looked at.
    pub fn buffered(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// Counters over everything pushed so far: records handed out, bytes
    /// skipped as garbage.
    pub fn stats(&self) -> ReaderStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(event: u16, body: &[u8]) -> Vec<u8> {
        let len = u32::try_from(18 + body.len() + TRAILER_LEN).unwrap();
        let mut r = vec![AUT_HEADER32];
        r.extend_from_slice(&len.to_be_bytes());
        r.push(11);
        r.extend_from_slice(&event.to_be_bytes());
        r.extend_from_slice(&[0, 0]);
        r.extend_from_slice(&1_700_000_000u32.to_be_bytes());
        r.extend_from_slice(&250u32.to_be_bytes());
        r.extend_from_slice(body);
        r.push(AUT_TRAILER);
        r.extend_from_slice(&TRAILER_MAGIC.to_be_bytes());
        r.extend_from_slice(&len.to_be_bytes());
        r
    }

    #[test]
    fn header_time_carries_whole_seconds() {
        let bytes = record(23, &[]);
        let (rec, _) = parse_record(&bytes).unwrap();
        assert_eq!(rec.header.time(), (1_700_000_000, 250_000_000));
        let h = Header {
            millis: 2_500,
            ..rec.header
        };
        assert_eq!(h.time(), (1_700_000_002, 500_000_000));
    }

    #[test]
    fn exec_args_end_found_when_count_overstates() {
        // count 5, two strings, then a text token.
        let mut body = vec![AUT_EXEC_ARGS];
        body.extend_from_slice(&5u32.to_be_bytes());
        body.extend_from_slice(b"a\0bc\0");
        body.extend_from_slice(&[AUT_TEXT, 0, 3, b'h', b'i', 0]);
        let bytes = record(23, &body);
        let (rec, _) = parse_record(&bytes).unwrap();
        assert_eq!(rec.partial, None);
        match &rec.tokens[..] {
            [Token::ExecArgs(a), Token::Text(t)] => {
                assert_eq!(a.strings, [&b"a"[..], b"bc"]);
                assert!(a.truncated);
                assert_eq!(*t, b"hi");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn exec_args_count_zero_strings_present() {
        let mut body = vec![AUT_EXEC_ARGS];
        body.extend_from_slice(&7u32.to_be_bytes());
        body.extend_from_slice(&[AUT_RETURN32, 0, 0, 0, 0, 0]);
        let bytes = record(23, &body);
        let (rec, _) = parse_record(&bytes).unwrap();
        assert_eq!(rec.partial, None);
        assert!(
            matches!(&rec.tokens[0], Token::ExecArgs(a) if a.strings.is_empty() && a.truncated)
        );
        assert!(matches!(rec.tokens[1], Token::Return(_)));
    }

    #[test]
    fn exec_args_unbounded_marks_partial() {
        let mut body = vec![AUT_EXEC_ARGS];
        body.extend_from_slice(&9u32.to_be_bytes());
        body.extend_from_slice(b"x\0y\0\x99zz");
        let bytes = record(23, &body);
        let (rec, _) = parse_record(&bytes).unwrap();
        assert_eq!(rec.partial.unwrap().error, BsmError::ExecStringsUnbounded);
        assert!(
            matches!(&rec.tokens[0], Token::ExecArgs(a) if a.strings.len() == 2 && a.truncated)
        );
    }

    #[test]
    fn ex_header_with_xnu_byte_count() {
        // header32_ex, IPv4 host: 26 bytes, but counted as 18.
        let mut r = vec![AUT_HEADER32_EX];
        let count = 18u32 + 6 + 7;
        r.extend_from_slice(&count.to_be_bytes());
        r.push(11);
        r.extend_from_slice(&23u16.to_be_bytes());
        r.extend_from_slice(&[0, 0, 0, 0, 0, 4, 10, 0, 0, 1]);
        r.extend_from_slice(&5u32.to_be_bytes());
        r.extend_from_slice(&6u32.to_be_bytes());
        r.extend_from_slice(&[AUT_RETURN32, 0, 0, 0, 0, 0]);
        r.push(AUT_TRAILER);
        r.extend_from_slice(&TRAILER_MAGIC.to_be_bytes());
        r.extend_from_slice(&count.to_be_bytes());
        let (rec, used) = parse_record(&r).unwrap();
        assert_eq!(used, r.len());
        assert_eq!(rec.len, usize::try_from(count).unwrap() + 8);
        assert_eq!(
            rec.header.host,
            Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)))
        );
        assert_eq!(rec.partial, None);
    }

    #[test]
    fn reader_skips_file_tokens_and_garbage() {
        let mut s = vec![AUT_OTHER_FILE32, 0, 0, 0, 1, 0, 0, 0, 2, 0, 2, b'f', 0];
        s.extend_from_slice(b"junk");
        let r = record(2, &[]);
        s.extend_from_slice(&r);
        let mut reader = RecordReader::new();
        reader.push(&s);
        assert_eq!(reader.next_record(), Some(&r[..]));
        assert_eq!(reader.next_record(), None);
        let st = reader.stats();
        assert_eq!((st.file_tokens, st.skipped_bytes, st.resyncs), (1, 4, 1));
    }
}
