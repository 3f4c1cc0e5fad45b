//! The normalized exec event: what every source produces, whatever it reads.
//!
//! Fields keep raw bytes because argv and paths are not guaranteed UTF-8; the
//! conversion to text happens once, when a row is made (see `row`).

/// Which event source produced an event or row. The names are the `source`
/// column values and the `--source` names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SourceKind {
    /// The live process list (`snapshot`): processes running at scan time,
    /// not short-lived ones. The default, and the only source without root.
    #[default]
    Snapshot,
    /// Linux's kernel audit subsystem over netlink (`linux_audit`): every
    /// exec with its full argv, copied at exec time. Needs root.
    LinuxAudit,
    /// Linux's netlink process connector (`proc_connector`), the fallback
    /// when audit cannot run: argv and ids are read from `/proc` after the
    /// exec, so a process that already exited is lost (counted as dropped).
    ProcConnector,
    /// Apple's `/usr/bin/eslogger` Endpoint Security JSON lines
    /// (`eslogger`), live on macOS 13+ or replayed from a file.
    Eslogger,
    /// osqueryd's own `es_process_events` table, read through the extension
    /// manager (`osquery_es`); macOS under osqueryd only.
    OsqueryEs,
    /// OpenBSM records from `/dev/auditpipe` or a trail file (`bsm`);
    /// live only where auditd runs on macOS.
    Bsm,
}

impl SourceKind {
    /// Every source kind, whether or not this build implements it; the
    /// order in which an unknown `--source` name's error lists them.
    pub const ALL: [SourceKind; 6] = [
        SourceKind::Snapshot,
        SourceKind::LinuxAudit,
        SourceKind::ProcConnector,
        SourceKind::Eslogger,
        SourceKind::OsqueryEs,
        SourceKind::Bsm,
    ];

    /// Every name, in [`SourceKind::ALL`] order.
    pub(crate) const NAMES: [&'static str; SourceKind::ALL.len()] = {
        let mut names = [""; SourceKind::ALL.len()];
        let mut i = 0;
        while i < names.len() {
            names[i] = SourceKind::ALL[i].as_str();
            i += 1;
        }
        names
    };

    /// The source's name: its `source` column value, `--source` name and
    /// journal spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            SourceKind::Snapshot => "snapshot",
            SourceKind::LinuxAudit => "linux_audit",
            SourceKind::ProcConnector => "proc_connector",
            SourceKind::Eslogger => "eslogger",
            SourceKind::OsqueryEs => "osquery_es",
            SourceKind::Bsm => "bsm",
        }
    }

    /// The source named `name` (exactly, as [`SourceKind::as_str`] spells
    /// it); `None` for an unknown name.
    pub fn from_name(name: &str) -> Option<SourceKind> {
        SourceKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// Serialized as its name, the `source` column value, so the journal's row
/// JSON reads `"source":"snapshot"` as it did when the field was a string.
impl serde::Serialize for SourceKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// An unknown name is an error: a journal record naming a source this build
/// does not have is skipped and counted as undecodable, not guessed at.
impl<'de> serde::Deserialize<'de> for SourceKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<SourceKind, D::Error> {
        // A visitor rather than a `String`: no allocation per journal record.
        struct Name;
        impl serde::de::Visitor<'_> for Name {
            type Value = SourceKind;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a source name")
            }
            fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<SourceKind, E> {
                SourceKind::from_name(name)
                    .ok_or_else(|| E::unknown_variant(name, &SourceKind::NAMES))
            }
        }
        d.deserialize_str(Name)
    }
}

impl std::fmt::Display for SourceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The executable's code identity, when the source knows it (Endpoint
/// Security and eslogger do; a Linux snapshot does not).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CodeIdentity {
    /// Code-signing identifier (e.g. `com.apple.kcc`); empty when unknown
    /// or unsigned.
    pub signing_id: String,
    /// Code-signing team id; empty when unknown or for Apple's own binaries.
    pub team_id: String,
    /// Whether the executable is an Apple platform binary; `None` when the
    /// source does not say.
    pub platform_binary: Option<bool>,
    /// SHA-256 of the executable as lowercase hex; empty when unknown (the
    /// engine may fill it in for a suspected renamed kcc).
    pub sha256: String,
}

/// The audit user id of a process that never logged in: `(uid_t)-1`, as
/// Linux's loginuid and audit records and macOS's `AU_DEFAUDITID` write it.
pub(crate) const AUID_UNSET: i64 = 4_294_967_295;

/// An audit user id as rows show it: `None` (NULL) when it was never set,
/// in its unsigned or signed spelling, as the schema promises for unknown ids.
pub(crate) fn known_auid(auid: Option<i64>) -> Option<i64> {
    auid.filter(|&a| a != AUID_UNSET && a != -1)
}

/// One process execution, as seen by one source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecEvent {
    /// Exec time, unix seconds. For a snapshot, the process start time.
    pub time: i64,
    /// Sub-second part of the exec time, when the source has it. Only used to
    /// make the event id unique; it is not a column.
    pub time_nanos: u32,
    /// Process id of the exec'd process, as the source reported it.
    pub pid: i64,
    /// Parent pid at exec time.
    pub ppid: i64,
    /// Executable path.
    pub path: Vec<u8>,
    /// argv, `argv[0]` first.
    pub argv: Vec<Vec<u8>>,
    /// Working directory at exec; `None` when the source does not give it.
    pub cwd: Option<Vec<u8>>,
    /// Real user id at exec; `None` when the source does not know it.
    pub uid: Option<i64>,
    /// Effective user id at exec; `None` when unknown.
    pub euid: Option<i64>,
    /// Real group id at exec; `None` when unknown.
    pub gid: Option<i64>,
    /// Effective group id at exec; `None` when unknown.
    pub egid: Option<i64>,
    /// Audit (login) user id; `None` when unknown or never set (sources
    /// pass it through `known_auid`).
    pub auid: Option<i64>,
    /// The parent's executable path at exec time; `None` when unknown.
    pub parent_path: Option<Vec<u8>>,
    /// The parent's argv at exec time; `None` when unknown.
    pub parent_argv: Option<Vec<Vec<u8>>>,
    /// Code-signing identity and hash of the executable, when known.
    pub code: CodeIdentity,
    /// Which source saw the exec; becomes the row's `source` column.
    pub source: SourceKind,
    /// A source-specific discriminator (an audit serial, an ES sequence
    /// number, a snapshot's process start time) that keeps two execs with the
    /// same pid and second apart in the event id.
    pub discriminator: u64,
    /// Some of the event's records were lost or never arrived (audit): the
    /// event was emitted from what did arrive.
    pub incomplete: bool,
    /// The exec's `KRB5CCNAME`, when the source gives the environment
    /// (eslogger) and it is set. No other variable is kept.
    pub krb5ccname: Option<Vec<u8>>,
}

/// Now, in unix seconds (0 before 1970).
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod auid_tests {
    use super::*;

    #[test]
    fn unset_audit_ids_become_unknown() {
        assert_eq!(known_auid(Some(AUID_UNSET)), None);
        assert_eq!(known_auid(Some(-1)), None);
        assert_eq!(known_auid(None), None);
        assert_eq!(known_auid(Some(0)), Some(0));
        assert_eq!(known_auid(Some(501)), Some(501));
        assert_eq!(known_auid(Some(4_294_967_294)), Some(4_294_967_294));
    }
}
