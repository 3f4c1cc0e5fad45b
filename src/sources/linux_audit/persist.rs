//! The audit record: what the host's audit configuration was before we
//! changed it, and each change we made, kept in the state directory so that
//! a kill -9 (which runs no cleanup) can be undone by the next start or by
//! `--cleanup-audit`.
//!
//! It is rewritten atomically before every change (so a crash between the
//! write and the change only lists a change that did not happen, which undo
//! tolerates) and deleted after a clean restore. Audit state does not
//! survive a reboot, so a record from another boot is discarded, never
//! "restored" onto the new boot's configuration.
//!
//! The file lives in the root-only state directory: anyone who could write
//! it could make us delete audit rules of their choosing. Even so, a rule it
//! names is only deleted if it is one of our exec rules (see
//! `restore::is_exec_rule_of`).

#[cfg(test)]
use super::arch::MACHINE_ARCHES;
use crate::state::StateDir;
use serde::{Deserialize, Serialize};
use std::io;

/// The record's file name in the state directory.
pub const RECORD_FILE: &str = "audit-session.json";
const VERSION: u32 = 1;

/// Something we changed in the audit configuration, with what undoing it
/// needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// We registered as the audit receiver (the audit pid).
    TookPid,
    /// We turned auditing on (the status `enabled` flag) because it was off.
    Enabled {
        /// The value found (0).
        from: u32,
        /// The value we set (1); undo restores `from` only while it still holds.
        to: u32,
    },
    /// We raised the kernel's backlog limit (records queued for the receiver).
    BacklogLimit {
        /// The limit found, in records.
        from: u32,
        /// The limit we set; undo restores `from` only while it still holds.
        to: u32,
    },
    /// As the receiver, we set the backlog wait time to 0, so a full backlog
    /// drops records instead of stalling every exec on the host.
    BacklogWait {
        /// The wait found, in the kernel's units (jiffies).
        from: u32,
        /// The wait we set (0); undo restores `from` only while it still holds.
        to: u32,
    },
    /// An exec rule we added, as the exact bytes to delete it with.
    AddedRule {
        /// The ABI the rule covers, by auditctl's name (`b64`, `b32`).
        arch: String,
        /// The rule's `struct audit_rule_data` bytes, as sent with
        /// AUDIT_ADD_RULE; stored as hex.
        #[serde(with = "hex_bytes")]
        raw: Vec<u8>,
    },
}

/// The flags found before the first change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Found {
    /// The status `enabled` flag: 0 off, 1 on, 2 locked until reboot.
    pub enabled: u32,
    /// The kernel's backlog limit, in records.
    pub backlog_limit: u32,
    /// How long an exec waits for backlog room, in the kernel's units (jiffies).
    pub backlog_wait_time: u32,
    /// The audit pid (the receiver) then; 0 for none.
    pub pid: u32,
}

/// The whole audit record file: what was found, and what we changed since.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The file format's version; a record of another version is set aside
    /// as corrupt.
    pub version: u32,
    /// The instance that wrote it.
    pub pid: u32,
    /// /proc/sys/kernel/random/boot_id when it was written.
    pub boot_id: String,
    /// The filter key of our rules.
    pub key: String,
    /// The configuration before our first change.
    pub found: Found,
    /// In the order made; undone in reverse.
    pub changes: Vec<Change>,
}

impl Record {
    /// A record of no changes yet, stamped with this process's pid and this
    /// boot's id (empty when unreadable).
    pub fn new(key: &str, found: Found) -> Record {
        Record {
            version: VERSION,
            pid: std::process::id(),
            boot_id: boot_id().unwrap_or_default(),
            key: key.to_string(),
            found,
            changes: Vec::new(),
        }
    }

    /// Whether the record was written during this boot. An unreadable boot
    /// id on either side counts as this boot: undo is careful enough
    /// (exact rule bytes, flags only when they still hold our values) that
    /// trying is safer than leaving our rules behind.
    pub(crate) fn written_this_boot(&self) -> bool {
        match boot_id() {
            Some(now) if !self.boot_id.is_empty() => now == self.boot_id,
            _ => true,
        }
    }
}

/// This boot's id, if the kernel exposes it.
pub fn boot_id() -> Option<String> {
    let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let id = id.trim();
    (!id.is_empty()).then(|| id.to_string())
}

/// Writes the record (atomically, durably, 0600).
pub(crate) fn save(dir: &StateDir, record: &Record) -> io::Result<()> {
    let mut text = serde_json::to_vec_pretty(record).map_err(io::Error::other)?;
    text.push(b'\n');
    dir.write_atomic(RECORD_FILE, &text)
}

/// Deletes the record; a missing one is fine.
pub fn remove(dir: &StateDir) -> io::Result<()> {
    match std::fs::remove_file(dir.file(RECORD_FILE)) {
        Ok(()) => dir.sync(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// What [`load`] found.
#[derive(Debug)]
pub enum Loaded {
    /// No record file: nothing to undo.
    None,
    /// A record of this format version (it may be from another boot).
    Record(Record),
    /// Unreadable or malformed: moved aside under this name.
    Corrupt {
        /// The file name in the state directory it was renamed to.
        moved_to: String,
        /// Why it was rejected, for the log.
        why: String,
    },
}

/// Reads the record, if there is one. A malformed one is renamed aside
/// (kept for a person to look at) and reported, never fatal.
pub fn load(dir: &StateDir) -> Loaded {
    let path = dir.file(RECORD_FILE);
    let bytes = match read_bounded(&path) {
        Ok(Some(b)) => b,
        Ok(None) => return Loaded::None,
        Err(e) => return set_aside(dir, format!("unreadable: {e}")),
    };
    match serde_json::from_slice::<Record>(&bytes) {
        Ok(r) if r.version == VERSION => Loaded::Record(r),
        Ok(r) => set_aside(dir, format!("unknown version {}", r.version)),
        Err(e) => set_aside(dir, format!("malformed: {e}")),
    }
}

/// A record is a few KiB; anything far larger is not ours.
const MAX_RECORD: u64 = 1 << 20;

fn read_bounded(path: &std::path::Path) -> io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if !file.metadata()?.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    let mut bytes = Vec::new();
    file.take(MAX_RECORD + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_RECORD {
        return Err(io::Error::other("larger than 1 MiB"));
    }
    Ok(Some(bytes))
}

fn set_aside(dir: &StateDir, why: String) -> Loaded {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let name = format!("{RECORD_FILE}.corrupt-{secs}");
    if let Err(e) = std::fs::rename(dir.file(RECORD_FILE), dir.file(&name)) {
        log::error!("audit: could not move the unreadable audit record aside: {e}");
        let _ = std::fs::remove_file(dir.file(RECORD_FILE));
    }
    Loaded::Corrupt {
        moved_to: name,
        why,
    }
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        decode(&text).ok_or_else(|| serde::de::Error::custom("invalid hex"))
    }

    pub(super) fn decode(text: &str) -> Option<Vec<u8>> {
        if text.len() % 2 != 0 || text.len() > 1 << 16 {
            return None;
        }
        hex::decode(text).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> (tempfile::TempDir, StateDir) {
        let tmp = tempfile::tempdir().unwrap();
        let d = StateDir::open(&tmp.path().join("state")).unwrap();
        (tmp, d)
    }

    fn sample() -> Record {
        let mut r = Record::new(
            "kerberos_cache_access",
            Found {
                enabled: 0,
                backlog_limit: 64,
                backlog_wait_time: 15000,
                pid: 0,
            },
        );
        r.changes.push(Change::Enabled { from: 0, to: 1 });
        if let Some(arch) = MACHINE_ARCHES.first() {
            r.changes.push(Change::AddedRule {
                arch: arch.name.to_string(),
                raw: super::super::kernel::exec_rule(arch, "kerberos_cache_access"),
            });
        }
        r.changes.push(Change::TookPid);
        r
    }

    #[test]
    fn round_trips_through_the_state_directory() {
        let (_tmp, d) = dir();
        assert!(matches!(load(&d), Loaded::None));
        let r = sample();
        save(&d, &r).unwrap();
        use std::os::unix::fs::MetadataExt;
        let mode = std::fs::metadata(d.file(RECORD_FILE)).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600);
        match load(&d) {
            Loaded::Record(back) => assert_eq!(back, r),
            other => panic!("{other:?}"),
        }
        assert!(r.written_this_boot());
        remove(&d).unwrap();
        remove(&d).unwrap();
        assert!(matches!(load(&d), Loaded::None));
    }

    #[test]
    fn another_boot_is_recognised() {
        if boot_id().is_none() {
            return;
        }
        let mut r = sample();
        r.boot_id = "00000000-0000-0000-0000-000000000000".into();
        assert!(!r.written_this_boot());
    }

    #[test]
    fn garbage_is_moved_aside_not_fatal() {
        let (_tmp, d) = dir();
        for junk in [
            &b"{not json"[..],
            b"",
            br#"{"version":9,"pid":1,"boot_id":"","key":"k","found":{"enabled":0,"backlog_limit":0,"backlog_wait_time":0,"pid":0},"changes":[]}"#,
            br#"{"version":1,"pid":1,"boot_id":"","key":"k","found":{"enabled":0,"backlog_limit":0,"backlog_wait_time":0,"pid":0},"changes":[{"kind":"added_rule","arch":"b64","raw":"zz"}]}"#,
        ] {
            std::fs::write(d.file(RECORD_FILE), junk).unwrap();
            match load(&d) {
                Loaded::Corrupt { moved_to, .. } => {
                    assert!(d.file(&moved_to).exists());
                    assert!(!d.file(RECORD_FILE).exists());
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn hex_decoding_rejects_bad_input() {
        assert_eq!(hex_bytes::decode("00ff10"), Some(vec![0, 255, 16]));
        assert_eq!(hex_bytes::decode("0"), None);
        assert_eq!(hex_bytes::decode("zz"), None);
        assert_eq!(hex_bytes::decode("é0"), None);
    }
}
