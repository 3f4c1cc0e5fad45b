//! The fast reader: a selective scanner over one eslogger line that pulls out
//! only what the hot path needs, so that the execs, forks and exits that have
//! nothing to do with Kerberos (nearly all of them) cost a few microseconds
//! and no allocation.
//!
//! # Why a hand-written scanner
//!
//! eslogger reports every exec, fork and exit on the host, 2–5 KB of JSON
//! each. Measured on the 5.2 KB exec line of `tests/data/eslogger` (2-core
//! AMD EPYC VM, release, `cargo bench --bench eslogger_parse -- --warm-up-time
//! 1 --measurement-time 4`, median of three runs):
//!
//! | how                                   | µs per line |
//! |---------------------------------------|-------------|
//! | `serde_json::Value` (the full parse)  | 36–38       |
//! | serde_json into a borrowed struct     | 6.1         |
//! | serde_json `IgnoredAny` (validation)  | 3.5         |
//! | this scanner, whole source line path  | 3.4         |
//!
//! and through the whole source line path 1.8 µs for the 3.3 KB fork line,
//! 1.0 µs for the 1.9 KB exit line (the targets: 5 and 2 µs).
//!
//! Typed serde does not reach the target: eslogger escapes every `/` as
//! `\/`, so a borrowed `&str` never borrows a path and serde_json copies
//! it into its scratch buffer, which each new `Deserializer` allocates
//! again; even skipping everything (`IgnoredAny`) costs as much as this
//! whole path. SIMD parsers (simd-json, sonic-rs) first build a tape or DOM
//! of the whole message, and bring unsafe code and a larger dependency for
//! a line whose useful part is a few hundred bytes.
//!
//! This scanner walks the JSON grammar once: strings are skipped eight
//! bytes at a time to the next `"` or `\` (eslogger's strings are short
//! and escaped every few bytes, so a SIMD search costs more to start than it
//! saves), skipped containers by a loop over a stack of bits, numbers by
//! their grammar without computing skipped values; only the fields of
//! [`FastLine`] are decoded, into buffers reused from line to line. A
//! branchless escape mask per word and a SWAR digit count were tried and
//! measured slower: the branches they remove are well predicted. One vectorized pass first checks
//! the whole line for control bytes and non-ASCII (then UTF-8 validity).
//!
//! # The exactness rule
//!
//! [`FastLine::scan`] either gives fields that are exactly what the full
//! parse would give for the line, with no schema drift, or [`Unsure`], and
//! then the line goes to the full parse (which counts drift, repairs text
//! and reports errors). So it is `Unsure` for anything it does not
//! fully understand: whitespace between tokens (eslogger writes compact
//! JSON), bytes below 0x20, invalid UTF-8, invalid or surrogate
//! `\u` escapes, escaped keys, duplicate keys among those it reads, floats
//! and out-of-range integers, nesting deeper than [`MAX_DEPTH`], text after
//! the object, a missing or mistyped field the full parse would count as
//! drift, a non-string argument, an event object that is not exactly one of
//! `exec`, `fork`, `exit`, and a message version newer than the parser knows.
//! The source uses the result only to reject: an exec goes on to the full
//! parse and the engine unless [`crate::engine::Engine::wants`] says no.
//! Tests check it against the full parse over the classifier corpus and the
//! fixtures, and under random mutations (`fast::tests`,
//! `tests/eslogger_fast.rs`).
//!
//! # Adding a field
//!
//! Add its buffer or value to [`FastLine`], read it in the function for its
//! object (`target`, `exec`, `fork`, ...) under a new bit of that object's
//! `seen` mask (so a duplicate key is `Unsure`), require the bit at the end
//! if the full parse counts its absence as drift, and compare it in
//! `fast::tests::same_as_full`.

#[cfg(test)]
use super::parse::EsEvent;
use super::parse::{id32, parse_rfc3339};
use super::NEWEST_KNOWN_VERSION;

/// The scanner cannot vouch for the line: use the full parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Unsure;

type Scan<T> = Result<T, Unsure>;

/// Nesting allowed: serde_json's limit is 128, and eslogger's messages nest
/// about 6 deep.
pub(super) const MAX_DEPTH: u32 = 64;

/// The event a scanned line holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FastKind {
    Exec,
    Fork,
    Exit,
}

/// The fields of one line that the hot path uses, in buffers reused from
/// line to line. Which ones are set depends on the [`FastKind`].
#[derive(Debug, Default)]
pub(super) struct FastLine {
    pub version: i64,
    pub global_seq_num: u64,
    // exec
    pub time: i64,
    pub time_nanos: u32,
    pub pid: i64,
    pub pidversion: i64,
    pub ppid: i64,
    pub original_ppid: i64,
    pub uid: i64,
    pub euid: i64,
    pub gid: i64,
    pub egid: i64,
    pub auid: i64,
    pub path: Vec<u8>,
    pub path_truncated: bool,
    /// `args` holds `argc` arguments; slots past it are spare buffers.
    args: Vec<Vec<u8>>,
    argc: usize,
    /// Whether `cwd.path` was there (it may be absent before version 3).
    has_cwd: bool,
    cwd: Vec<u8>,
    pub signing_id: Vec<u8>,
    pub team_id: Vec<u8>,
    pub platform_binary: bool,
    pub cdhash: Vec<u8>,
    /// The first `KRB5CCNAME=` entry's value, when there is one.
    pub(crate) has_krb5ccname: bool,
    krb5ccname: Vec<u8>,
    /// Scratch for an environment entry whose name holds an escape.
    scratch: Vec<u8>,
    // fork
    pub parent_pid: i64,
    pub parent_path: Vec<u8>,
    pub child_pid: i64,
    // exit
    pub stat: i64,
}

impl FastLine {
    pub(super) fn new() -> FastLine {
        FastLine::default()
    }

    /// The exec's argv.
    pub(super) fn args(&self) -> &[Vec<u8>] {
        self.args.get(..self.argc).unwrap_or_default()
    }

    #[cfg(test)]
    pub(super) fn cwd(&self) -> Option<&[u8]> {
        self.has_cwd.then_some(self.cwd.as_slice())
    }

    pub(super) fn krb5ccname(&self) -> Option<&[u8]> {
        self.has_krb5ccname.then_some(self.krb5ccname.as_slice())
    }

    /// Scans `line` (already trimmed). See the module doc for when it is
    /// [`Unsure`].
    pub(super) fn scan(&mut self, line: &[u8]) -> Scan<FastKind> {
        check_bytes(line)?;
        let mut c = Cur { b: line, i: 0 };
        let mut seen = 0u32;
        let mut version = None;
        let mut seq = None;
        let mut time: &[u8] = &[];
        let mut kind = None;
        c.object(0, |c, key| {
            match key {
                b"version" => {
                    once(&mut seen, 1)?;
                    version = Some(c.i64()?);
                }
                b"global_seq_num" => {
                    once(&mut seen, 2)?;
                    seq = Some(c.u64()?);
                }
                b"time" => {
                    once(&mut seen, 4)?;
                    let start = c.i;
                    c.skip(1)?;
                    time = line.get(start..c.i).ok_or(Unsure)?;
                }
                b"process" => {
                    once(&mut seen, 8)?;
                    // Read in passing: the event type may come later.
                    self.process(c)?;
                }
                b"event" => {
                    once(&mut seen, 16)?;
                    kind = Some(self.event(c, 1)?);
                }
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        if c.i != line.len() {
            return Err(Unsure);
        }
        let version = version.ok_or(Unsure)?;
        if version > NEWEST_KNOWN_VERSION {
            // The full parse logs it once.
            return Err(Unsure);
        }
        self.version = version;
        self.global_seq_num = seq.ok_or(Unsure)?;
        let kind = kind.ok_or(Unsure)?;
        match kind {
            FastKind::Exec => {
                // A JSON string without escapes, else the full parse.
                let text = time
                    .strip_prefix(b"\"")
                    .and_then(|t| t.strip_suffix(b"\""))
                    .filter(|t| !t.contains(&b'\\'))
                    .and_then(|t| std::str::from_utf8(t).ok())
                    .ok_or(Unsure)?;
                (self.time, self.time_nanos) = parse_rfc3339(text).ok_or(Unsure)?;
                // cwd is expected from message version 3.
                if !self.has_cwd && version >= 3 {
                    return Err(Unsure);
                }
            }
            // The caller's pid and path, from `.process`.
            FastKind::Fork | FastKind::Exit if seen & 8 == 0 => return Err(Unsure),
            FastKind::Fork | FastKind::Exit => {}
        }
        Ok(kind)
    }

    /// `.event`: exactly one of exec, fork, exit.
    fn event(&mut self, c: &mut Cur, depth: u32) -> Scan<FastKind> {
        let mut kind = None;
        c.object(depth, |c, key| {
            if kind.is_some() {
                return Err(Unsure);
            }
            kind = Some(match key {
                b"exec" => {
                    self.exec(c, depth + 1)?;
                    FastKind::Exec
                }
                b"fork" => {
                    self.fork(c, depth + 1)?;
                    FastKind::Fork
                }
                b"exit" => {
                    self.exit(c, depth + 1)?;
                    FastKind::Exit
                }
                _ => return Err(Unsure),
            });
            Ok(true)
        })?;
        kind.ok_or(Unsure)
    }

    fn exec(&mut self, c: &mut Cur, depth: u32) -> Scan<()> {
        let mut seen = 0u32;
        self.argc = 0;
        self.has_cwd = false;
        self.has_krb5ccname = false;
        c.object(depth, |c, key| {
            match key {
                b"target" => {
                    once(&mut seen, 1)?;
                    self.target(c, depth + 1)?;
                }
                b"args" => {
                    once(&mut seen, 2)?;
                    self.args_array(c)?;
                }
                b"env" => {
                    once(&mut seen, 4)?;
                    self.env(c, depth + 1)?;
                }
                b"cwd" => {
                    once(&mut seen, 8)?;
                    self.cwd_object(c, depth + 1)?;
                }
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        // Without target or args the full parse counts drift.
        if seen & 3 != 3 {
            return Err(Unsure);
        }
        Ok(())
    }

    fn target(&mut self, c: &mut Cur, depth: u32) -> Scan<()> {
        let mut seen = 0u32;
        c.object(depth, |c, key| {
            match key {
                b"executable" => {
                    once(&mut seen, 1)?;
                    self.executable(c, depth + 1)?;
                }
                b"audit_token" => {
                    once(&mut seen, 2)?;
                    let [auid, euid, egid, ruid, rgid, pid, _asid, pidversion] =
                        c.token(depth + 1)?;
                    self.pid = pid;
                    self.pidversion = pidversion;
                    self.uid = ruid;
                    self.euid = euid;
                    self.gid = rgid;
                    self.egid = egid;
                    self.auid = auid;
                }
                b"ppid" => {
                    once(&mut seen, 4)?;
                    self.ppid = c.i64()?;
                }
                b"original_ppid" => {
                    once(&mut seen, 8)?;
                    self.original_ppid = c.i64()?;
                }
                b"signing_id" => {
                    once(&mut seen, 16)?;
                    c.nullable_string(&mut self.signing_id)?;
                }
                b"team_id" => {
                    once(&mut seen, 32)?;
                    c.nullable_string(&mut self.team_id)?;
                }
                b"cdhash" => {
                    once(&mut seen, 64)?;
                    c.nullable_string(&mut self.cdhash)?;
                }
                b"is_platform_binary" => {
                    once(&mut seen, 128)?;
                    self.platform_binary = c.bool()?;
                }
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        if seen != 255 {
            return Err(Unsure);
        }
        Ok(())
    }

    fn executable(&mut self, c: &mut Cur, depth: u32) -> Scan<()> {
        let mut seen = 0u32;
        c.object(depth, |c, key| {
            match key {
                b"path" => {
                    once(&mut seen, 1)?;
                    c.string_into(&mut self.path)?;
                }
                b"path_truncated" => {
                    once(&mut seen, 2)?;
                    self.path_truncated = c.bool()?;
                }
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        // An empty path sends the full parse to its fallback.
        if seen != 3 || self.path.is_empty() {
            return Err(Unsure);
        }
        Ok(())
    }

    /// argv: strings only (anything else is drift).
    fn args_array(&mut self, c: &mut Cur) -> Scan<()> {
        c.expect(b'[')?;
        if c.eat(b']') {
            return Ok(());
        }
        loop {
            if self.args.len() <= self.argc {
                self.args.push(Vec::new());
            }
            let slot = self.args.get_mut(self.argc).ok_or(Unsure)?;
            c.string_into(slot)?;
            self.argc += 1;
            if c.eat(b']') {
                return Ok(());
            }
            c.expect(b',')?;
        }
    }

    /// The environment: only whether, and to what, `KRB5CCNAME` is set (the
    /// first entry wins, as in the full parse); anything but an array, and
    /// entries that are not strings, are ignored as there.
    fn env(&mut self, c: &mut Cur, depth: u32) -> Scan<()> {
        const NAME: &[u8] = b"KRB5CCNAME=";
        if !c.eat(b'[') {
            return c.skip(depth);
        }
        if c.eat(b']') {
            return Ok(());
        }
        loop {
            if c.peek() == Some(b'"') {
                c.i += 1;
                let (raw, escaped) = c.raw_string()?;
                if !self.has_krb5ccname {
                    let head = raw.get(..NAME.len()).unwrap_or(raw);
                    if escaped && head.contains(&b'\\') {
                        unescape(raw, &mut self.scratch)?;
                        if let Some(value) = self.scratch.strip_prefix(NAME) {
                            self.krb5ccname.clear();
                            self.krb5ccname.extend_from_slice(value);
                            self.has_krb5ccname = true;
                        }
                    } else if let Some(value) = raw.strip_prefix(NAME) {
                        unescape(value, &mut self.krb5ccname)?;
                        self.has_krb5ccname = true;
                    }
                }
            } else {
                c.skip(depth + 1)?;
            }
            if c.eat(b']') {
                return Ok(());
            }
            c.expect(b',')?;
        }
    }

    /// `cwd.path`, when cwd is an object and path a string.
    fn cwd_object(&mut self, c: &mut Cur, depth: u32) -> Scan<()> {
        if c.peek() != Some(b'{') {
            return c.skip(depth);
        }
        let mut seen = 0u32;
        c.object(depth, |c, key| {
            if key != b"path" {
                return Ok(false);
            }
            once(&mut seen, 1)?;
            if c.peek() == Some(b'"') {
                c.string_into(&mut self.cwd)?;
                self.has_cwd = true;
            } else {
                c.skip(depth + 1)?;
            }
            Ok(true)
        })
    }

    fn fork(&mut self, c: &mut Cur, depth: u32) -> Scan<()> {
        let mut seen = 0u32;
        c.object(depth, |c, key| {
            if key != b"child" {
                return Ok(false);
            }
            once(&mut seen, 1)?;
            let mut token = 0u32;
            c.object(depth + 1, |c, key| {
                if key != b"audit_token" {
                    return Ok(false);
                }
                once(&mut token, 1)?;
                self.child_pid = c.token(depth + 2)?[5];
                Ok(true)
            })?;
            if token != 1 {
                return Err(Unsure);
            }
            Ok(true)
        })?;
        if seen != 1 {
            return Err(Unsure);
        }
        Ok(())
    }

    fn exit(&mut self, c: &mut Cur, depth: u32) -> Scan<()> {
        let mut seen = 0u32;
        c.object(depth, |c, key| {
            if key != b"stat" {
                return Ok(false);
            }
            once(&mut seen, 1)?;
            self.stat = c.i64()?;
            Ok(true)
        })?;
        if seen != 1 {
            return Err(Unsure);
        }
        Ok(())
    }

    /// `.process`: the pid and path of the process that forked or exited
    /// (an exec's caller, unused then). Strict, for all three: complete
    /// token and a string path, or `Unsure`.
    fn process(&mut self, c: &mut Cur) -> Scan<()> {
        let mut seen = 0u32;
        c.object(1, |c, key| {
            match key {
                b"audit_token" => {
                    once(&mut seen, 1)?;
                    self.parent_pid = c.token(2)?[5];
                }
                b"executable" => {
                    once(&mut seen, 2)?;
                    let mut path = 0u32;
                    c.object(2, |c, key| {
                        if key != b"path" {
                            return Ok(false);
                        }
                        once(&mut path, 1)?;
                        c.string_into(&mut self.parent_path)?;
                        Ok(true)
                    })?;
                    if path != 1 {
                        return Err(Unsure);
                    }
                }
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        if seen != 3 {
            return Err(Unsure);
        }
        Ok(())
    }

    #[cfg(test)]
    /// Whether the scanned exec, fork or exit equals what the full parse
    /// made of the same line (for tests).
    pub(super) fn same_as(&self, kind: FastKind, full: &EsEvent) -> bool {
        let envelope = full.envelope();
        if envelope.version != Some(self.version)
            || envelope.global_seq_num != Some(self.global_seq_num)
            || !envelope.drift.is_empty()
            || envelope.repaired
        {
            return false;
        }
        match (kind, full) {
            (FastKind::Exec, EsEvent::Exec(ex)) => {
                let args: Option<Vec<&[u8]>> = ex
                    .args
                    .as_ref()
                    .map(|a| a.iter().map(|s| s.as_bytes()).collect());
                let mine: Vec<&[u8]> = self.args().iter().map(Vec::as_slice).collect();
                ex.time == self.time
                    && ex.time_nanos == self.time_nanos
                    && ex.pid == self.pid
                    && ex.pidversion == Some(self.pidversion)
                    && ex.ppid == Some(self.ppid)
                    && ex.original_ppid == Some(self.original_ppid)
                    && ex.path.as_bytes() == self.path
                    && ex.path_truncated == self.path_truncated
                    && args == Some(mine)
                    && ex.cwd.as_deref().map(str::as_bytes) == self.cwd()
                    && ex.uid == Some(self.uid)
                    && ex.euid == Some(self.euid)
                    && ex.gid == Some(self.gid)
                    && ex.egid == Some(self.egid)
                    && ex.auid == Some(self.auid)
                    && ex.signing_id.as_bytes() == self.signing_id
                    && ex.team_id.as_bytes() == self.team_id
                    && ex.platform_binary == Some(self.platform_binary)
                    && ex.cdhash.as_bytes() == self.cdhash
                    && ex.krb5ccname.as_deref().map(str::as_bytes) == self.krb5ccname()
            }
            (
                FastKind::Fork,
                EsEvent::Fork {
                    parent_pid,
                    parent_path,
                    child_pid,
                    ..
                },
            ) => {
                *parent_pid == Some(self.parent_pid)
                    && parent_path.as_deref().map(str::as_bytes) == Some(&self.parent_path[..])
                    && *child_pid == self.child_pid
            }
            (FastKind::Exit, EsEvent::Exit { pid, stat, .. }) => {
                *pid == self.parent_pid && *stat == Some(self.stat)
            }
            _ => false,
        }
    }
}

/// Sets `bit` in `seen`; a key read twice is `Unsure` (serde_json keeps the
/// last, a reader the first: an evasion either way).
fn once(seen: &mut u32, bit: u32) -> Scan<()> {
    if *seen & bit != 0 {
        return Err(Unsure);
    }
    *seen |= bit;
    Ok(())
}

/// No byte below 0x20 (JSON forbids them in strings, and eslogger puts no
/// whitespace between tokens), and valid UTF-8. In blocks of 32
/// bytes folded without branches, so the compiler vectorizes the common
/// all-ASCII case.
fn check_bytes(line: &[u8]) -> Scan<()> {
    // Printable ASCII is 0x20..0x80: anything else wraps to 0x60 or more.
    let odd = |b: &u8| u8::from(b.wrapping_sub(0x20) >= 0x60);
    let mut any_odd = 0u8;
    let mut chunks = line.chunks_exact(32);
    for chunk in chunks.by_ref() {
        any_odd |= chunk.iter().map(odd).fold(0, |a, x| a | x);
    }
    any_odd |= chunks.remainder().iter().map(odd).fold(0, |a, x| a | x);
    if any_odd == 0 {
        return Ok(());
    }
    if line.iter().any(|&b| b < 0x20) || std::str::from_utf8(line).is_err() {
        return Err(Unsure);
    }
    Ok(())
}

/// The offset of the first `"` or `\\` from `i`, eight bytes at a time:
/// eslogger's strings are short and escaped every few bytes (`\\/`), where a
/// SIMD search costs more to start than it saves.
#[inline(always)]
fn quote_or_backslash(b: &[u8], mut i: usize) -> Scan<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const QUOTES: u64 = ONES * b'"' as u64;
    const SLASHES: u64 = ONES * b'\\' as u64;
    while let Some(word) = b.get(i..).and_then(<[u8]>::first_chunk::<8>) {
        let w = u64::from_le_bytes(*word);
        let (q, s) = (w ^ QUOTES, w ^ SLASHES);
        // The lowest flagged byte is exact (borrows only run upwards).
        let m = (q.wrapping_sub(ONES) & !q | s.wrapping_sub(ONES) & !s) & HIGH;
        if m != 0 {
            return Ok(i + (m.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    let tail = b.get(i..).unwrap_or_default();
    let k = tail.iter().position(|&c| c == b'"' || c == b'\\');
    k.map(|k| i + k).ok_or(Unsure)
}

/// After a string's opening quote at `i - 1`: the offset of its closing
/// quote, and whether it holds an escape. Escapes are checked; UTF-16
/// surrogates are left to the full parse.
#[inline]
fn string_end(b: &[u8], mut i: usize) -> Scan<(usize, bool)> {
    let mut escaped = false;
    loop {
        let at = quote_or_backslash(b, i)?;
        // `b[at]` is a quote or a backslash.
        if b.get(at) == Some(&b'"') {
            return Ok((at, escaped));
        }
        match b.get(at + 1) {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => i = at + 2,
            Some(b'u') => {
                if (0xD800..0xE000).contains(&hex4(b, at + 2)?) {
                    return Err(Unsure);
                }
                i = at + 6;
            }
            _ => return Err(Unsure),
        }
        escaped = true;
    }
}

/// An integer at `i` skipped, to its end: its grammar checked, its value
/// not computed (a multiply per digit is most of the cost of the `stat`
/// blocks). Floats and `-0` are `Unsure` as in [`Cur::integer`]; so are
/// more than 20 digits, though serde_json would read them as a float.
#[inline]
fn skip_integer(b: &[u8], i: usize) -> Scan<usize> {
    let negative = b.get(i) == Some(&b'-');
    let start = i + usize::from(negative);
    let mut end = start;
    while let Some(b'0'..=b'9') = b.get(end) {
        end += 1;
    }
    let digits = end - start;
    if digits == 0
        || digits > 20
        || (b.get(start) == Some(&b'0') && (digits > 1 || negative))
        || matches!(b.get(end), Some(b'.' | b'e' | b'E'))
    {
        return Err(Unsure);
    }
    Ok(end)
}

/// Four hex digits at `at`.
fn hex4(b: &[u8], at: usize) -> Scan<u32> {
    super::parse::hex4(b, at).ok_or(Unsure)
}

/// The text of a JSON string's raw contents (escapes already validated by
/// [`Cur::raw_string`]) into `out`.
fn unescape(raw: &[u8], out: &mut Vec<u8>) -> Scan<()> {
    out.clear();
    // Unescaping never lengthens; a byte loop, as escapes come every few
    // bytes (`\/`) and a search call per escape costs more.
    out.reserve(raw.len());
    let mut k = 0;
    while let Some(&c) = raw.get(k) {
        k += 1;
        if c != b'\\' {
            out.push(c);
            continue;
        }
        let byte = match raw.get(k) {
            Some(b'/') => b'/',
            Some(b'"') => b'"',
            Some(b'\\') => b'\\',
            Some(b'b') => 8,
            Some(b'f') => 0x0c,
            Some(b'n') => b'\n',
            Some(b'r') => b'\r',
            Some(b't') => b'\t',
            Some(b'u') => {
                let ch = char::from_u32(hex4(raw, k + 1)?).ok_or(Unsure)?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                k += 5;
                continue;
            }
            _ => return Err(Unsure),
        };
        out.push(byte);
        k += 1;
    }
    Ok(())
}

/// `"key":` at `i`, with no escape in the key: the offset after the colon.
/// Keys are never escaped here, so this is [`string_end`] without its
/// escape handling, small enough to inline in the skip loop.
#[inline(always)]
fn key_end(b: &[u8], i: usize) -> Scan<usize> {
    if b.get(i) != Some(&b'"') {
        return Err(Unsure);
    }
    let at = quote_or_backslash(b, i + 1)?;
    // The first quote or backslash: a quote then a colon, or `Unsure`.
    match b.get(at..at + 2) {
        Some(b"\":") => Ok(at + 2),
        _ => Err(Unsure),
    }
}

/// `word` at `i`: the offset after it.
#[inline]
fn literal(b: &[u8], i: usize, word: &[u8]) -> Scan<usize> {
    if b.get(i..i + word.len()) == Some(word) {
        Ok(i + word.len())
    } else {
        Err(Unsure)
    }
}

/// A cursor over the line. Every method leaves `i` after what it read, and
/// fails rather than accept anything serde_json would not.
struct Cur<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Cur<'a> {
    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    #[inline]
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    #[inline]
    fn expect(&mut self, c: u8) -> Scan<()> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(Unsure)
        }
    }

    /// After the opening quote: the raw contents up to the closing quote
    /// (consumed), and whether they hold an escape (see [`string_end`]).
    #[inline]
    fn raw_string(&mut self) -> Scan<(&'a [u8], bool)> {
        let (end, escaped) = string_end(self.b, self.i)?;
        let raw = self.b.get(self.i..end).ok_or(Unsure)?;
        self.i = end + 1;
        Ok((raw, escaped))
    }

    /// A string value, decoded into `out`.
    fn string_into(&mut self, out: &mut Vec<u8>) -> Scan<()> {
        self.expect(b'"')?;
        let (raw, escaped) = self.raw_string()?;
        if escaped {
            unescape(raw, out)
        } else {
            out.clear();
            out.extend_from_slice(raw);
            Ok(())
        }
    }

    /// A string or null (read as ""), as the full parse reads signing ids.
    fn nullable_string(&mut self, out: &mut Vec<u8>) -> Scan<()> {
        if self.peek() == Some(b'n') {
            self.literal(b"null")?;
            out.clear();
            return Ok(());
        }
        self.string_into(out)
    }

    fn literal(&mut self, word: &[u8]) -> Scan<()> {
        self.i = literal(self.b, self.i, word)?;
        Ok(())
    }

    fn bool(&mut self) -> Scan<bool> {
        match self.peek() {
            Some(b't') => self.literal(b"true").map(|()| true),
            Some(b'f') => self.literal(b"false").map(|()| false),
            _ => Err(Unsure),
        }
    }

    /// An integer as JSON writes it: sign and magnitude. Floats, `-0`
    /// (serde_json makes it a float), leading zeros and magnitudes past
    /// u64 are `Unsure`.
    fn integer(&mut self) -> Scan<(bool, u64)> {
        let negative = self.eat(b'-');
        let start = self.i;
        let mut n: u64 = 0;
        while let Some(d) = self.peek().filter(u8::is_ascii_digit) {
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(d - b'0')))
                .ok_or(Unsure)?;
            self.i += 1;
        }
        let digits = self.i - start;
        if digits == 0
            || (digits > 1 && self.b.get(start) == Some(&b'0'))
            || (negative && n == 0)
            || matches!(self.peek(), Some(b'.' | b'e' | b'E'))
        {
            return Err(Unsure);
        }
        Ok((negative, n))
    }

    /// As `Value::as_i64` reads it.
    fn i64(&mut self) -> Scan<i64> {
        match self.integer()? {
            (false, n) => i64::try_from(n).map_err(|_| Unsure),
            (true, n) if n <= 1 << 63 => Ok(0i64.wrapping_sub_unsigned(n)),
            _ => Err(Unsure),
        }
    }

    /// As `Value::as_u64` reads it.
    fn u64(&mut self) -> Scan<u64> {
        match self.integer()? {
            (false, n) => Ok(n),
            _ => Err(Unsure),
        }
    }

    /// An audit token in either shape, complete, in `audit_token_t.val[]`
    /// order with the ids widened as [`id32`] does.
    fn token(&mut self, depth: u32) -> Scan<[i64; 8]> {
        let mut vals = [0i64; 8];
        if self.eat(b'[') {
            for (n, slot) in vals.iter_mut().enumerate() {
                if n > 0 {
                    self.expect(b',')?;
                }
                *slot = self.i64()?;
            }
            self.expect(b']')?;
        } else {
            let mut seen = 0u32;
            self.object(depth, |c, key| {
                let n = match key {
                    b"auid" => 0,
                    b"euid" => 1,
                    b"egid" => 2,
                    b"ruid" => 3,
                    b"rgid" => 4,
                    b"pid" => 5,
                    b"asid" => 6,
                    b"pidversion" => 7,
                    _ => return Ok(false),
                };
                once(&mut seen, 1 << n)?;
                *vals.get_mut(n).ok_or(Unsure)? = c.i64()?;
                Ok(true)
            })?;
            if seen != 0xff {
                return Err(Unsure);
            }
        }
        for n in 0..5 {
            if let Some(v) = vals.get_mut(n) {
                *v = id32(Some(*v)).ok_or(Unsure)?;
            }
        }
        Ok(vals)
    }

    /// An object; `field` is called with each key (escaped keys are
    /// `Unsure`) and the cursor at its value, and returns whether it read the
    /// value; if not, it is skipped.
    #[inline]
    fn object(
        &mut self,
        depth: u32,
        mut field: impl FnMut(&mut Self, &'a [u8]) -> Scan<bool>,
    ) -> Scan<()> {
        if depth > MAX_DEPTH {
            return Err(Unsure);
        }
        self.expect(b'{')?;
        if self.eat(b'}') {
            return Ok(());
        }
        loop {
            let start = self.i;
            self.i = key_end(self.b, start)?;
            // Between the quotes.
            let key = self.b.get(start + 1..self.i - 2).ok_or(Unsure)?;
            if !field(self, key)? {
                self.skip_scalar(depth + 1)?;
            }
            if !self.eat(b',') {
                return self.expect(b'}');
            }
        }
    }

    /// [`Cur::skip`], with a string without escapes or a small number
    /// skipped inline: most fields passed over in a read object are one.
    #[inline(always)]
    fn skip_scalar(&mut self, depth: u32) -> Scan<()> {
        let b = self.b;
        match b.get(self.i) {
            Some(b'"') => {
                let at = quote_or_backslash(b, self.i + 1)?;
                if b.get(at) == Some(&b'"') {
                    self.i = at + 1;
                    return Ok(());
                }
            }
            Some(b'1'..=b'9') => {
                let mut i = self.i + 1;
                while let Some(b'0'..=b'9') = b.get(i) {
                    i += 1;
                }
                if i - self.i <= 20 {
                    self.i = i;
                    return Ok(());
                }
            }
            _ => {}
        }
        self.skip(depth)
    }

    /// Skips one value at `depth`, checking it as serde_json would (escaped
    /// keys are `Unsure`, as in [`Cur::object`]); every caller then checks
    /// that a `,` or a close follows, which rejects `01` and `1.5` too.
    /// Without recursion: the open containers are a stack of bits, 1 for an
    /// object.
    fn skip(&mut self, depth: u32) -> Scan<()> {
        let b = self.b;
        let mut i = self.i;
        let mut stack = 0u64;
        let mut open = 0u32;
        loop {
            // A value at `i`.
            match b.get(i) {
                Some(b'"') => {
                    // Most skipped strings have no escape: their end inline.
                    let at = quote_or_backslash(b, i + 1)?;
                    i = match b.get(at) {
                        Some(b'"') => at,
                        _ => string_end(b, at)?.0,
                    } + 1;
                }
                // What follows a number is checked below (`,` or a close),
                // so `01` and `1.5` fail there.
                Some(b'0') => i += 1,
                Some(b'1'..=b'9') => {
                    let start = i;
                    i += 1;
                    while let Some(b'0'..=b'9') = b.get(i) {
                        i += 1;
                    }
                    // serde_json reads more digits as a float.
                    if i - start > 20 {
                        return Err(Unsure);
                    }
                }
                Some(b'-') => i = skip_integer(b, i)?,
                Some(b't') => i = literal(b, i, b"true")?,
                Some(b'f') => i = literal(b, i, b"false")?,
                Some(b'n') => i = literal(b, i, b"null")?,
                Some(&c @ (b'{' | b'[')) => {
                    if depth + open > MAX_DEPTH || open >= 64 {
                        return Err(Unsure);
                    }
                    let object = c == b'{';
                    i += 1;
                    let close = if object { b'}' } else { b']' };
                    if b.get(i) == Some(&close) {
                        i += 1;
                    } else {
                        stack = stack << 1 | u64::from(object);
                        open += 1;
                        if object {
                            i = key_end(b, i)?;
                        }
                        continue;
                    }
                }
                _ => return Err(Unsure),
            }
            // After a value: close containers, or on to the next value.
            loop {
                if open == 0 {
                    self.i = i;
                    return Ok(());
                }
                let object = stack & 1 != 0;
                match b.get(i) {
                    Some(b',') => {
                        i += 1;
                        if object {
                            i = key_end(b, i)?;
                        }
                        break;
                    }
                    Some(b'}') if object => {}
                    Some(b']') if !object => {}
                    _ => return Err(Unsure),
                }
                i += 1;
                stack >>= 1;
                open -= 1;
            }
        }
    }
}

#[cfg(test)]
#[path = "fast_tests.rs"]
mod tests;
