//! One kernel audit record's text: the `audit(SECONDS.MILLIS:SERIAL):` event
//! id, the `key=value` fields of its body and the encodings of their values.
//!
//! The kernel sends the bare text (`audit(…): arch=… syscall=…`) over
//! netlink, with the record type in the netlink header; auditd writes the
//! same text to audit.log behind `[node=NAME ]type=NAME msg=`. Both forms are
//! read here. Nothing allocates except [`decode_into`], which writes into a
//! buffer the caller reuses.

// Record types, from include/uapi/linux/audit.h.

/// SYSCALL: the syscall, its result, the process's ids and `exe`.
pub const AUDIT_SYSCALL: u16 = 1300;
/// PATH: a file the syscall touched; item 0 of an exec is the executable.
pub const AUDIT_PATH: u16 = 1302;
/// CWD: the process's working directory.
pub const AUDIT_CWD: u16 = 1307;
/// EXECVE: the exec's argc and argv (split over several records when long).
pub const AUDIT_EXECVE: u16 = 1309;
/// EOE: end of event; every record of the event has been sent.
pub const AUDIT_EOE: u16 = 1320;
pub(crate) const AUDIT_BPRM_FCAPS: u16 = 1321;
/// PROCTITLE: the process's command line, cut by the kernel to 128 bytes.
pub const AUDIT_PROCTITLE: u16 = 1327;

/// auditd's ENRICHED format appends interpreted fields after this byte (GS).
const ENRICHED_SEPARATOR: u8 = 0x1d;

/// The event id shared by every record of one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// Unix seconds.
    pub sec: i64,
    /// Milliseconds within `sec`.
    pub msec: u32,
    /// The kernel's event serial number.
    pub serial: u64,
}

/// Why a record's text could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// No `audit(` where the event id should start.
    #[error("no audit(...) header")]
    NoHeader,
    /// `audit(` is not followed by `SECONDS.MILLIS:SERIAL)`.
    #[error("malformed audit(SECONDS.MILLIS:SERIAL) header")]
    BadHeader,
    /// An audit.log line without `type=NAME`.
    #[error("no type= field")]
    NoType,
    /// An audit.log line whose `type=` name is not one we know.
    #[error("unknown record type name")]
    UnknownType,
}

/// One audit.log record: its type number, event id and body.
pub(crate) type LogRecord<'a> = (u16, Header, &'a [u8]);

/// A netlink audit payload, `audit(1700000000.123:456): field=value …`
/// (possibly NUL-padded), split into its event id and its body.
pub fn split_payload(payload: &[u8]) -> Result<(Header, &[u8]), RecordError> {
    let text = trim_spaces_start(trim_end(payload));
    let rest = text.strip_prefix(b"audit(").ok_or(RecordError::NoHeader)?;
    parse_header(rest)
}

/// One audit.log line, `[node=X ]type=NAME msg=audit(…): body`, as
/// (record type, event id, body). `None` for blank lines and `#` comments.
pub fn parse_log_line(line: &[u8]) -> Option<Result<LogRecord<'_>, RecordError>> {
    let line = trim_spaces_start(trim_end(line));
    match line.first() {
        None | Some(b'#') => return None,
        _ => {}
    }
    Some(parse_log_text(line))
}

fn parse_log_text(line: &[u8]) -> Result<LogRecord<'_>, RecordError> {
    let mut rest = line;
    if rest.starts_with(b"node=") {
        rest = after_space(rest).ok_or(RecordError::NoType)?;
    }
    // Tolerate a prefix such as a syslog header in front of `type=`.
    if !rest.starts_with(b"type=") {
        let at = find(rest, b" type=").ok_or(RecordError::NoType)?;
        rest = rest.get(at + 1..).unwrap_or_default();
    }
    let rest = rest.get(b"type=".len()..).unwrap_or_default();
    let end = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
    let (name, rest) = rest.split_at(end);
    let rtype = type_from_name(name).ok_or(RecordError::UnknownType)?;
    let rest = trim_spaces_start(rest)
        .strip_prefix(b"msg=audit(")
        .ok_or(RecordError::NoHeader)?;
    let (header, body) = parse_header(rest)?;
    Ok((rtype, header, body))
}

/// Parses `SECONDS.MILLIS:SERIAL)` and an optional `:` (auditd's own
/// DAEMON_* lines have none), returning the body after it.
fn parse_header(rest: &[u8]) -> Result<(Header, &[u8]), RecordError> {
    let ((sec, msec), rest) = match usual_time(rest) {
        Some(found) => found,
        None => {
            let (sec, rest) = take_number(rest, b'.')?;
            let (msec, rest) = take_number(rest, b':')?;
            ((sec, msec), rest)
        }
    };
    let (serial, rest) = take_number(rest, b')')?;
    let rest = rest.strip_prefix(b":").unwrap_or(rest);
    let header = Header {
        sec: i64::try_from(sec).map_err(|_| RecordError::BadHeader)?,
        msec: u32::try_from(msec).map_err(|_| RecordError::BadHeader)?,
        serial,
    };
    Ok((header, trim_spaces_start(rest)))
}

/// `SSSSSSSSSS.mmm:` (ten digits of seconds until the year 2286, and the
/// kernel's three of milliseconds) read at fixed places, without the
/// dependent steps of the general case: it is every record's first field.
fn usual_time(s: &[u8]) -> Option<((u64, u64), &[u8])> {
    let (head, rest) = s.split_at_checked(15)?;
    let [first @ .., s8, s9, b'.', m0, m1, m2, b':'] = <[u8; 15]>::try_from(head).ok()? else {
        return None;
    };
    let tail = [s8, s9, m0, m1, m2];
    let word = u64::from_le_bytes(first);
    if digit_run(word) != 8 || !tail.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let digit = |b: u8| u64::from(b.wrapping_sub(b'0'));
    let sec = eight_digit_values(word.wrapping_sub(0x3030_3030_3030_3030)) * 100
        + digit(s8) * 10
        + digit(s9);
    let msec = digit(m0) * 100 + digit(m1) * 10 + digit(m2);
    Some(((sec, msec), rest))
}

/// A run of decimal digits ended by `end`, and what follows `end`.
fn take_number(s: &[u8], end: u8) -> Result<(u64, &[u8]), RecordError> {
    let (n, len) = leading_number(s).ok_or(RecordError::BadHeader)?;
    match s.split_at_checked(len) {
        Some((_, [first, rest @ ..])) if *first == end => Ok((n, rest)),
        _ => Err(RecordError::BadHeader),
    }
}

/// The value and length of the decimal digits that start `s`; None if there
/// are none or they overflow. Every record starts with three numbers, so
/// they are read eight bytes at a time.
fn leading_number(s: &[u8]) -> Option<(u64, usize)> {
    let mut n = 0u64;
    let mut len = 0;
    while let Some(chunk) = s
        .get(len..len + 8)
        .and_then(|c| <[u8; 8]>::try_from(c).ok())
    {
        let word = u64::from_le_bytes(chunk);
        let count = digit_run(word);
        if count > 0 {
            // Keep the digits' values, moved to the top (zeros below are
            // leading zeros), then combine them.
            let values = word.wrapping_sub(0x3030_3030_3030_3030) << (8 * (8 - count));
            let scale = POW10.get(count).copied().unwrap_or(1);
            n = n
                .checked_mul(scale)?
                .checked_add(eight_digit_values(values))?;
            len += count;
        }
        if count < 8 {
            return (len > 0).then_some((n, len));
        }
    }
    // Fewer than eight bytes left.
    for &b in s.get(len..).unwrap_or_default() {
        if !b.is_ascii_digit() {
            break;
        }
        n = n
            .checked_mul(10)?
            .checked_add(u64::from(b.wrapping_sub(b'0')))?;
        len += 1;
    }
    (len > 0).then_some((n, len))
}

const POW10: [u64; 9] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
];

/// How many of the bytes of a little-endian word, from the first, are
/// ASCII digits.
fn digit_run(word: u64) -> usize {
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // Digits become 0..=9; adding 0x76 sets the high bit of anything above
    // 9, and `| x` catches bytes that had it already. A carry can only
    // disturb bytes after the first non-digit, which are not looked at.
    let x = word ^ 0x3030_3030_3030_3030;
    let non_digits = (x.wrapping_add(0x7676_7676_7676_7676) | x) & HIGHS;
    (non_digits.trailing_zeros() / 8) as usize
}

/// The number whose eight digit values (0..=9) are the bytes of `v`, most
/// significant in the lowest byte.
fn eight_digit_values(v: u64) -> u64 {
    const LANES: u64 = 0x0000_00FF_0000_00FF;
    // Combine neighbours into 2-digit, then 4-digit, then 8-digit values.
    let v = v.wrapping_mul(10).wrapping_add(v >> 8);
    let high = (v & LANES).wrapping_mul(100 + (1_000_000 << 32));
    let low = ((v >> 16) & LANES).wrapping_mul(1 + (10_000 << 32));
    high.wrapping_add(low) >> 32
}

/// The record type number for an audit.log `type=` name. `UNKNOWN[N]` (what
/// auditd writes for numbers it has no name for) gives N.
pub(crate) fn type_from_name(name: &[u8]) -> Option<u16> {
    if let Some(inner) = name
        .strip_prefix(b"UNKNOWN[")
        .and_then(|s| s.strip_suffix(b"]"))
    {
        return parse_u64(inner).and_then(|n| u16::try_from(n).ok());
    }
    TYPE_NAMES
        .iter()
        .find(|(n, _)| n.as_bytes() == name)
        .map(|&(_, number)| number)
}

/// Record type names as auditd writes them (linux/audit.h and libaudit.h).
/// The exec types come first: they are the ones replay looks up most.
const TYPE_NAMES: &[(&str, u16)] = &[
    ("SYSCALL", AUDIT_SYSCALL),
    ("EXECVE", AUDIT_EXECVE),
    ("CWD", AUDIT_CWD),
    ("PATH", AUDIT_PATH),
    ("PROCTITLE", AUDIT_PROCTITLE),
    ("EOE", AUDIT_EOE),
    ("BPRM_FCAPS", AUDIT_BPRM_FCAPS),
    ("USER", 1005),
    ("LOGIN", 1006),
    ("USER_AUTH", 1100),
    ("USER_ACCT", 1101),
    ("USER_MGMT", 1102),
    ("CRED_ACQ", 1103),
    ("CRED_DISP", 1104),
    ("USER_START", 1105),
    ("USER_END", 1106),
    ("USER_AVC", 1107),
    ("USER_CHAUTHTOK", 1108),
    ("USER_ERR", 1109),
    ("CRED_REFR", 1110),
    ("USYS_CONFIG", 1111),
    ("USER_LOGIN", 1112),
    ("USER_LOGOUT", 1113),
    ("ADD_USER", 1114),
    ("DEL_USER", 1115),
    ("ADD_GROUP", 1116),
    ("DEL_GROUP", 1117),
    ("DAC_CHECK", 1118),
    ("CHGRP_ID", 1119),
    ("TEST", 1120),
    ("TRUSTED_APP", 1121),
    ("USER_SELINUX_ERR", 1122),
    ("USER_CMD", 1123),
    ("USER_TTY", 1124),
    ("CHUSER_ID", 1125),
    ("GRP_AUTH", 1126),
    ("SYSTEM_BOOT", 1127),
    ("SYSTEM_SHUTDOWN", 1128),
    ("SYSTEM_RUNLEVEL", 1129),
    ("SERVICE_START", 1130),
    ("SERVICE_STOP", 1131),
    ("GRP_MGMT", 1132),
    ("GRP_CHAUTHTOK", 1133),
    ("MAC_CHECK", 1134),
    ("ACCT_LOCK", 1135),
    ("ACCT_UNLOCK", 1136),
    ("USER_DEVICE", 1137),
    ("SOFTWARE_UPDATE", 1138),
    ("DAEMON_START", 1200),
    ("DAEMON_END", 1201),
    ("DAEMON_ABORT", 1202),
    ("DAEMON_CONFIG", 1203),
    ("DAEMON_RECONFIG", 1204),
    ("DAEMON_ROTATE", 1205),
    ("DAEMON_RESUME", 1206),
    ("DAEMON_ACCEPT", 1207),
    ("DAEMON_CLOSE", 1208),
    ("DAEMON_ERR", 1209),
    ("FS_WATCH", 1301),
    ("IPC", 1303),
    ("SOCKETCALL", 1304),
    ("CONFIG_CHANGE", 1305),
    ("SOCKADDR", 1306),
    ("IPC_SET_PERM", 1311),
    ("MQ_OPEN", 1312),
    ("MQ_SENDRECV", 1313),
    ("MQ_NOTIFY", 1314),
    ("MQ_GETSETATTR", 1315),
    ("KERNEL_OTHER", 1316),
    ("FD_PAIR", 1317),
    ("OBJ_PID", 1318),
    ("TTY", 1319),
    ("CAPSET", 1322),
    ("MMAP", 1323),
    ("NETFILTER_PKT", 1324),
    ("NETFILTER_CFG", 1325),
    ("SECCOMP", 1326),
    ("FEATURE_CHANGE", 1328),
    ("REPLACE", 1329),
    ("KERN_MODULE", 1330),
    ("FANOTIFY", 1331),
    ("TIME_INJOFFSET", 1332),
    ("TIME_ADJNTPVAL", 1333),
    ("BPF", 1334),
    ("EVENT_LISTENER", 1335),
    ("URINGOP", 1336),
    ("OPENAT2", 1337),
    ("AVC", 1400),
    ("SELINUX_ERR", 1401),
    ("AVC_PATH", 1402),
    ("MAC_POLICY_LOAD", 1403),
    ("MAC_STATUS", 1404),
    ("MAC_CONFIG_CHANGE", 1405),
    ("APPARMOR_AUDIT", 1501),
    ("APPARMOR_ALLOWED", 1502),
    ("APPARMOR_DENIED", 1503),
    ("APPARMOR_HINT", 1504),
    ("APPARMOR_STATUS", 1505),
    ("APPARMOR_ERROR", 1506),
    ("ANOM_PROMISCUOUS", 1700),
    ("ANOM_ABEND", 1701),
    ("ANOM_LINK", 1702),
    ("ANOM_CREAT", 1703),
    ("INTEGRITY_DATA", 1800),
    ("INTEGRITY_METADATA", 1801),
    ("INTEGRITY_STATUS", 1802),
    ("INTEGRITY_HASH", 1803),
    ("INTEGRITY_PCR", 1804),
    ("INTEGRITY_RULE", 1805),
    ("KERNEL", 2000),
    ("USER_ROLE_CHANGE", 2300),
    ("CRYPTO_KEY_USER", 2404),
    ("CRYPTO_SESSION", 2407),
];

/// The `key=value` pairs of a record body, in order. See [`fields`].
#[derive(Debug, Clone)]
pub struct Fields<'a> {
    rest: &'a [u8],
}

/// Iterates over the `key=value` pairs of `body` without allocating. Values
/// are raw: still quoted or hex (see [`decode_into`]). A quoted value keeps
/// its quotes and ends at its closing quote, so a stray byte glued to it
/// (`a2="x"'`) is dropped. Words without `=` are skipped, `subj==x` gives
/// the value `=x`, and iteration stops at auditd's ENRICHED part (GS byte).
pub fn fields(body: &[u8]) -> Fields<'_> {
    Fields { rest: body }
}

impl<'a> Iterator for Fields<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let start = self.rest.iter().position(|&b| b != b' ')?;
            let (_, token) = self.rest.split_at(start);
            // A token runs to the next space; GS ends the raw fields.
            let token_len = token_end(token);
            if token_len == 0 {
                self.rest = &[];
                return None;
            }
            let (word, after_word) = token.split_at(token_len);
            let Some(eq) = word.iter().position(|&b| b == b'=') else {
                // A word without `=` (auditd's own messages have some).
                self.rest = after_word;
                continue;
            };
            let (key, from_eq) = token.split_at(eq);
            let value_start = from_eq.get(1..).unwrap_or_default();
            let (value, rest) = match quoted_value(value_start) {
                Some(split) => split,
                None => value_start.split_at(token_len - eq - 1),
            };
            self.rest = rest;
            return Some((key, value));
        }
    }
}

/// A value that starts with a quote ends at its closing quote, even past a
/// space; what is glued to that quote (a stray `'`) is dropped. None if the
/// value is not quoted or the quote is not closed.
fn quoted_value(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let &quote @ (b'"' | b'\'') = s.first()? else {
        return None;
    };
    let close = s
        .iter()
        .skip(1)
        .position(|&b| b == quote || b == ENRICHED_SEPARATOR)?;
    if s.get(close + 1) != Some(&quote) {
        return None;
    }
    let (value, rest) = s.split_at(close + 2);
    Some((value, rest.split_at(token_end(rest)).1))
}

/// The index of the first space or GS in `s` (its length if none). Eight
/// bytes at a time: this scan is most of the cost of reading a record.
fn token_end(s: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut i = 0;
    while let Some(chunk) = s.get(i..i + 8).and_then(|c| <[u8; 8]>::try_from(c).ok()) {
        let word = u64::from_le_bytes(chunk);
        let spaces = word ^ (ONES * u64::from(b' '));
        let gs = word ^ (ONES * u64::from(ENRICHED_SEPARATOR));
        // High bit set in each zero byte; only bytes after the first zero
        // can be flagged wrongly, and the first is all that is used.
        let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
        let found = zero(spaces) | zero(gs);
        if found != 0 {
            return i + (found.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    let tail = s.get(i..).unwrap_or_default();
    i + tail
        .iter()
        .position(|&b| b == b' ' || b == ENRICHED_SEPARATOR)
        .unwrap_or(tail.len())
}

/// Decodes a raw value into `out` (cleared first): `"text"` gives text (an
/// unterminated quote is tolerated), a hex string of even length (upper or
/// lower case) gives its bytes. Returns false, with `out` empty, for
/// `(null)`, `?` and anything else that is neither.
pub fn decode_into(raw: &[u8], out: &mut Vec<u8>) -> bool {
    out.clear();
    decode_append(raw, out)
}

/// [`decode_into`] without clearing `out`: for pieces of a split argument.
/// On failure `out` is left as it was.
pub(crate) fn decode_append(raw: &[u8], out: &mut Vec<u8>) -> bool {
    if let Some(inner) = raw.strip_prefix(b"\"") {
        out.extend_from_slice(inner.strip_suffix(b"\"").unwrap_or(inner));
        return true;
    }
    if raw.is_empty() || raw.len() % 2 != 0 {
        return false;
    }
    let start = out.len();
    out.resize(start + raw.len() / 2, 0);
    let ok = out
        .get_mut(start..)
        .is_some_and(|tail| hex::decode_to_slice(raw, tail).is_ok());
    if !ok {
        out.truncate(start);
    }
    ok
}

/// The length of a raw value in the record (quotes excluded): what the
/// kernel's `aN_len` counts.
pub(crate) fn encoded_len(raw: &[u8]) -> usize {
    match raw.strip_prefix(b"\"") {
        Some(inner) => inner.strip_suffix(b"\"").unwrap_or(inner).len(),
        None => raw.len(),
    }
}

/// A decimal number, optionally negative (`exit=-2`).
pub(crate) fn parse_i64(raw: &[u8]) -> Option<i64> {
    match raw.strip_prefix(b"-") {
        Some(digits) => parse_u64(digits)
            .and_then(|n| i64::try_from(n).ok())
            .map(|n| -n),
        None => parse_u64(raw).and_then(|n| i64::try_from(n).ok()),
    }
}

/// An unsigned decimal number.
pub(crate) fn parse_u64(raw: &[u8]) -> Option<u64> {
    if raw.is_empty() {
        return None;
    }
    raw.iter().try_fold(0u64, |n, &b| {
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        n.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// A hex number without prefix (`arch=c000003e`).
pub(crate) fn parse_hex_u32(raw: &[u8]) -> Option<u32> {
    if raw.is_empty() {
        return None;
    }
    // The kernel prints %x: pad to eight digits and decode four bytes.
    let mut digits = [b'0'; 8];
    digits
        .get_mut(8usize.checked_sub(raw.len())?..)?
        .copy_from_slice(raw);
    let mut be = [0u8; 4];
    hex::decode_to_slice(digits, &mut be).ok()?;
    Some(u32::from_be_bytes(be))
}

/// Drops trailing NUL padding and line ends.
fn trim_end(mut s: &[u8]) -> &[u8] {
    while let [rest @ .., last] = s {
        if matches!(last, 0 | b'\n' | b'\r') {
            s = rest;
        } else {
            break;
        }
    }
    s
}

fn trim_spaces_start(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&b| b != b' ').unwrap_or(s.len());
    s.split_at(start).1
}

/// What follows the first space of `s`.
fn after_space(s: &[u8]) -> Option<&[u8]> {
    let at = s.iter().position(|&b| b == b' ')?;
    Some(trim_spaces_start(s.split_at(at).1))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(body: &[u8]) -> Vec<(String, String)> {
        fields(body)
            .map(|(k, v)| {
                (
                    String::from_utf8_lossy(k).into_owned(),
                    String::from_utf8_lossy(v).into_owned(),
                )
            })
            .collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn decoded(raw: &[u8]) -> Option<Vec<u8>> {
        let mut out = vec![b'x'];
        decode_into(raw, &mut out).then_some(out)
    }

    #[test]
    fn splits_a_netlink_payload() {
        let (h, body) = split_payload(b"audit(1700000000.123:456): argc=1 a0=\"id\"").unwrap();
        assert_eq!(
            h,
            Header {
                sec: 1_700_000_000,
                msec: 123,
                serial: 456
            }
        );
        assert_eq!(body, b"argc=1 a0=\"id\"");
    }

    #[test]
    fn headers_of_every_shape() {
        for (text, sec, msec, serial) in [
            ("audit(1700000000.123:456):", 1_700_000_000, 123, 456),
            ("audit(0000000000.000:0):", 0, 0, 0),
            (
                "audit(9999999999.999:18446744073709551615):",
                9_999_999_999,
                999,
                u64::MAX,
            ),
            ("audit(1.2:3):", 1, 2, 3),
            ("audit(123456789.5:7):", 123_456_789, 5, 7),
            ("audit(12345678901.1234:7):", 12_345_678_901, 1234, 7),
        ] {
            let (h, body) = split_payload(text.as_bytes()).unwrap();
            assert_eq!((h.sec, h.msec, h.serial), (sec, msec, serial), "{text}");
            assert_eq!(body, b"");
        }
        for bad in [
            "audit(170000000x.123:4):",
            "audit(1700000000.12x:4):",
            "audit(1700000000:123:4):",
            "audit(1700000000.123.4):",
            "audit(1700000000.123:):",
            "audit(1700000000.123:4",
        ] {
            assert_eq!(
                split_payload(bad.as_bytes()),
                Err(RecordError::BadHeader),
                "{bad}"
            );
        }
    }

    #[test]
    fn payload_padding_and_empty_bodies() {
        let (h, body) = split_payload(b"audit(1.002:3): \0\0\0").unwrap();
        assert_eq!((h.sec, h.msec, h.serial), (1, 2, 3));
        assert_eq!(body, b"");
        let (_, body) = split_payload(b"audit(5.000:6):  cwd=\"/\"\n\0").unwrap();
        assert_eq!(body, b"cwd=\"/\"");
        // An EOE record has no body at all.
        let (h, body) = split_payload(b"audit(5.000:7):").unwrap();
        assert_eq!((h.serial, body), (7, &b""[..]));
    }

    #[test]
    fn payload_errors_say_what_is_wrong() {
        assert_eq!(split_payload(b""), Err(RecordError::NoHeader));
        assert_eq!(split_payload(b"type=SYSCALL"), Err(RecordError::NoHeader));
        assert_eq!(split_payload(b"audit(1.2:)"), Err(RecordError::BadHeader));
        assert_eq!(split_payload(b"audit(1.2:3"), Err(RecordError::BadHeader));
        assert_eq!(split_payload(b"audit(x.2:3):"), Err(RecordError::BadHeader));
        assert_eq!(
            split_payload(b"audit(1.2:99999999999999999999999):"),
            Err(RecordError::BadHeader)
        );
        assert_eq!(
            split_payload(b"audit(1.99999999999:3):"),
            Err(RecordError::BadHeader)
        );
        assert_eq!(RecordError::NoHeader.to_string(), "no audit(...) header");
    }

    #[test]
    fn reads_log_lines() {
        let (t, h, body) =
            parse_log_line(b"type=EXECVE msg=audit(1600000000.001:77): argc=1 a0=\"ls\"\n")
                .unwrap()
                .unwrap();
        assert_eq!((t, h.serial, h.msec), (AUDIT_EXECVE, 77, 1));
        assert_eq!(body, b"argc=1 a0=\"ls\"");

        let (t, h, body) = parse_log_line(b"node=host-a type=EOE msg=audit(1600000000.001:77): ")
            .unwrap()
            .unwrap();
        assert_eq!((t, h.serial, body), (AUDIT_EOE, 77, &b""[..]));

        let (t, ..) = parse_log_line(b"type=UNKNOWN[1334] msg=audit(1.000:2): x=1")
            .unwrap()
            .unwrap();
        assert_eq!(t, 1334);
    }

    #[test]
    fn log_line_oddities() {
        assert!(parse_log_line(b"").is_none());
        assert!(parse_log_line(b"   \r\n").is_none());
        assert!(parse_log_line(b"# a comment").is_none());
        assert_eq!(
            parse_log_line(b"type=UNKNOWN[1329] msg=?"),
            Some(Err(RecordError::NoHeader))
        );
        assert_eq!(
            parse_log_line(b"type=NOT_A_TYPE msg=audit(1.000:2): x=1"),
            Some(Err(RecordError::UnknownType))
        );
        assert_eq!(
            parse_log_line(b"type=UNKNOWN[99999] msg=audit(1.000:2): x=1"),
            Some(Err(RecordError::UnknownType))
        );
        assert_eq!(parse_log_line(b"hello"), Some(Err(RecordError::NoType)));
        assert_eq!(parse_log_line(b"node=x"), Some(Err(RecordError::NoType)));
        // auditd's own DAEMON_* lines have no colon after the header.
        let (t, h, body) =
            parse_log_line(b"type=DAEMON_CONFIG msg=audit(1.500:9) config changed, auid=0")
                .unwrap()
                .unwrap();
        assert_eq!((t, h.serial), (1203, 9));
        assert_eq!(body, b"config changed, auid=0");
        // A syslog-style prefix in front of type=.
        let (t, ..) =
            parse_log_line(b"Jan  1 host audispd: type=CWD msg=audit(1.000:2): cwd=\"/\"")
                .unwrap()
                .unwrap();
        assert_eq!(t, AUDIT_CWD);
    }

    #[test]
    fn every_exec_type_name_maps_to_its_constant() {
        for (name, want) in [
            ("SYSCALL", AUDIT_SYSCALL),
            ("PATH", AUDIT_PATH),
            ("CWD", AUDIT_CWD),
            ("EXECVE", AUDIT_EXECVE),
            ("EOE", AUDIT_EOE),
            ("BPRM_FCAPS", AUDIT_BPRM_FCAPS),
            ("PROCTITLE", AUDIT_PROCTITLE),
        ] {
            assert_eq!(type_from_name(name.as_bytes()), Some(want), "{name}");
        }
        assert_eq!(type_from_name(b"USER_CMD"), Some(1123));
        assert_eq!(type_from_name(b"syscall"), None);
        assert_eq!(type_from_name(b"UNKNOWN[]"), None);
    }

    #[test]
    fn fields_in_order_with_raw_values() {
        assert_eq!(
            all(b"arch=c000003e syscall=59 comm=\"ls\" exe=2F62696E key=(null)"),
            pairs(&[
                ("arch", "c000003e"),
                ("syscall", "59"),
                ("comm", "\"ls\""),
                ("exe", "2F62696E"),
                ("key", "(null)"),
            ])
        );
    }

    #[test]
    fn fields_tolerate_what_real_logs_contain() {
        // Double space before the first field (CWD), trailing space (EOE).
        assert_eq!(all(b"  cwd=\"/root\" "), pairs(&[("cwd", "\"/root\"")]));
        // A stray quote glued to the last value.
        assert_eq!(
            all(b"a1=\"inspect\" a2=\"c0ffee\"'"),
            pairs(&[("a1", "\"inspect\""), ("a2", "\"c0ffee\"")])
        );
        // AppArmor's doubled `=`.
        assert_eq!(
            all(b"subj==unconfined key=(null)"),
            pairs(&[("subj", "=unconfined"), ("key", "(null)")])
        );
        // Words without `=`, and empty values.
        assert_eq!(
            all(b"auditd normal halt, sending auid=? mac= pfs=x"),
            pairs(&[("auid", "?"), ("mac", ""), ("pfs", "x")])
        );
        // A single-quoted user message keeps its spaces.
        assert_eq!(
            all(b"pid=1 msg='op=login acct=\"a b\" res=success' x=2"),
            pairs(&[
                ("pid", "1"),
                ("msg", "'op=login acct=\"a b\" res=success'"),
                ("x", "2"),
            ])
        );
        // An unterminated quote runs to the next space.
        assert_eq!(
            all(b"a1=\"d\" a0=\"abc def"),
            pairs(&[("a1", "\"d\""), ("a0", "\"abc")])
        );
        assert_eq!(all(b""), pairs(&[]));
        assert_eq!(all(b"   "), pairs(&[]));
        assert_eq!(all(b"=v k"), pairs(&[("", "v")]));
    }

    #[test]
    fn fields_stop_at_the_enriched_part() {
        let body =
            b"syscall=59 exe=\"/bin/id\" key=(null)\x1dARCH=x86_64 SYSCALL=execve UID=\"root\"";
        assert_eq!(
            all(body),
            pairs(&[("syscall", "59"), ("exe", "\"/bin/id\""), ("key", "(null)")])
        );
        assert_eq!(all(b"a=1\x1d"), pairs(&[("a", "1")]));
        assert_eq!(all(b"a=\"x\x1dB=2\""), pairs(&[("a", "\"x")]));
    }

    #[test]
    fn decodes_values() {
        assert_eq!(decoded(b"\"uname\""), Some(b"uname".to_vec()));
        assert_eq!(decoded(b"\"\""), Some(Vec::new()));
        assert_eq!(decoded(b"\"open"), Some(b"open".to_vec()));
        assert_eq!(
            decoded(b"2F746D702F6120622063"),
            Some(b"/tmp/a b c".to_vec())
        );
        assert_eq!(decoded(b"2f746d70"), Some(b"/tmp".to_vec()));
        assert_eq!(decoded(b"FF00fe"), Some(vec![0xff, 0, 0xfe]));
        assert_eq!(decoded(b"(null)"), None);
        assert_eq!(decoded(b"?"), None);
        assert_eq!(decoded(b""), None);
        assert_eq!(decoded(b"ABC"), None);
        assert_eq!(decoded(b"GG"), None);
        assert_eq!(decoded(b"zz12"), None);
    }

    #[test]
    fn failed_append_leaves_the_buffer_alone() {
        let mut out = b"keep".to_vec();
        assert!(!decode_append(b"41ZZ", &mut out));
        assert_eq!(out, b"keep");
        assert!(decode_append(b"4142", &mut out));
        assert_eq!(out, b"keepAB");
    }

    #[test]
    fn digit_runs() {
        for n in [
            0u64,
            7,
            12_345_678,
            99_999_999,
            100_000_000,
            1_700_000_000,
            123_456_789_012_345_678,
            u64::MAX,
        ] {
            let text = format!("{n}:rest");
            assert_eq!(
                leading_number(text.as_bytes()),
                Some((n, text.len() - 5)),
                "{n}"
            );
        }
        assert_eq!(leading_number(b"00000000012"), Some((12, 11)));
        assert_eq!(leading_number(b"18446744073709551616"), None);
        assert_eq!(leading_number(b"1234567/"), Some((1_234_567, 7)));
        assert_eq!(leading_number(b"12345678\x2f"), Some((12_345_678, 8)));
        assert_eq!(leading_number(b":12"), None);
        assert_eq!(leading_number(b""), None);
        // Every digit count, at and around each power of ten.
        let mut p = 1u64;
        while let Some(next) = p.checked_mul(10) {
            for n in [p - 1, p, p + 1, next - 1, p * 7 + 3] {
                let text = format!("{n}.");
                assert_eq!(leading_number(text.as_bytes()), Some((n, text.len() - 1)));
            }
            p = next;
        }
    }

    #[test]
    fn digit_runs_match_a_byte_by_byte_reading() {
        let naive = |s: &[u8]| {
            let len = s.iter().take_while(|b| b.is_ascii_digit()).count();
            let text = std::str::from_utf8(&s[..len]).unwrap();
            text.parse::<u64>().ok().map(|n| (n, len))
        };
        // Every byte value at every position, in runs shorter and longer
        // than a word.
        for base in [&b"12345678901234567"[..], b"9876543210", b"1234"] {
            for pos in 0..base.len() {
                for byte in 0..=255u8 {
                    let mut s = base.to_vec();
                    s[pos] = byte;
                    assert_eq!(leading_number(&s), naive(&s), "{s:?}");
                }
            }
        }
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_i64(b"4294967295"), Some(4_294_967_295));
        assert_eq!(parse_i64(b"-115"), Some(-115));
        assert_eq!(parse_i64(b"-"), None);
        assert_eq!(parse_i64(b""), None);
        assert_eq!(parse_i64(b"12a"), None);
        assert_eq!(parse_i64(b"99999999999999999999"), None);
        assert_eq!(parse_hex_u32(b"c000003e"), Some(0xc000_003e));
        assert_eq!(parse_hex_u32(b"C00000B7"), Some(0xc000_00b7));
        assert_eq!(parse_hex_u32(b"1c000003e"), None);
        assert_eq!(parse_hex_u32(b"x"), None);
        assert_eq!(encoded_len(b"\"abc\""), 3);
        assert_eq!(encoded_len(b"616263"), 6);
    }
}
