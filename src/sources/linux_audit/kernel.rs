//! The kernel's audit status and rule list: reading them, setting status
//! fields, and our exec rule. Both the session (control) and undo (restore)
//! stand on these, so they live below both and import neither.

use super::arch::ExecArch;
use super::netlink::{rule_bytes, ControlSocket};
use netlink_packet_audit::{
    RuleAction, RuleBuffer, RuleField, RuleFieldFlags, RuleFlags, RuleMessage, StatusMessage,
    AUDIT_ALWAYS, AUDIT_ARCH, AUDIT_BITMASK_SIZE, AUDIT_EQUAL, AUDIT_FILTERKEY, AUDIT_FILTER_EXIT,
    AUDIT_FILTER_PREPEND, AUDIT_MAX_FIELDS,
};
use std::fmt;
use std::io;

// AUDIT_SET mask bits (struct audit_status.mask).
pub(super) const STATUS_ENABLED: u32 = 0x01;
pub(super) const STATUS_PID: u32 = 0x04;
pub(super) const STATUS_BACKLOG_LIMIT: u32 = 0x10;
pub(super) const STATUS_BACKLOG_WAIT_TIME: u32 = 0x20;

/// The kernel's audit status (AUDIT_GET), minus the feature bitmap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditStatus {
    pub enabled: u32,
    pub failure: u32,
    pub pid: u32,
    pub rate_limit: u32,
    pub backlog_limit: u32,
    pub lost: u32,
    pub backlog: u32,
    pub backlog_wait_time: u32,
}

impl From<&StatusMessage> for AuditStatus {
    fn from(s: &StatusMessage) -> Self {
        AuditStatus {
            enabled: s.enabled,
            failure: s.failure,
            pid: s.pid,
            rate_limit: s.rate_limiting,
            backlog_limit: s.backlog_limit,
            lost: s.lost,
            backlog: s.backlog,
            backlog_wait_time: s.backlog_wait_time,
        }
    }
}

/// Why the audit session could not start (or the configuration could not be
/// read); the message goes to the status table.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Cannot run here: not root / missing CAP_AUDIT_CONTROL or
    /// CAP_AUDIT_READ, audit not in this kernel or namespace, audit locked
    /// with no exec rule.
    #[error("{0}")]
    Unavailable(String),
    /// Unexpected failure.
    #[error("{0}")]
    Failed(String),
}

/// Maps a netlink error to a reason a person can act on.
pub(super) fn start_error(e: &io::Error, doing: &str) -> StartError {
    match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) if euid_is_root() => {
            StartError::Unavailable(format!(
                "{doing} was refused (EPERM) although running as root: CAP_AUDIT_CONTROL \
                 was dropped, or this is not the initial PID namespace (a container?)"
            ))
        }
        Some(libc::EPERM) | Some(libc::EACCES) => StartError::Unavailable(format!(
            "not root: {doing} was refused (EPERM); the audit netlink needs CAP_AUDIT_CONTROL \
             in the initial user and PID namespace"
        )),
        Some(libc::ECONNREFUSED) => StartError::Unavailable(format!(
            "{doing} was refused (ECONNREFUSED): audit works only in the initial user \
             namespace, not inside a container"
        )),
        Some(libc::EPROTONOSUPPORT) | Some(libc::EAFNOSUPPORT) => StartError::Unavailable(
            "this kernel has no audit support (NETLINK_AUDIT is not available)".to_string(),
        ),
        _ => StartError::Failed(format!("{doing}: {e}")),
    }
}

fn euid_is_root() -> bool {
    crate::sys::euid() == 0
}

/// Field types whose value is a string length into the rule's buffer.
fn is_string_field(field: u32) -> bool {
    matches!(field, 13..=17 | 19..=23 | 105 | 107 | 112 | AUDIT_FILTERKEY)
}

/// One rule condition: field type, operator, and value (a number, or the
/// string for string-typed fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RuleCondition {
    pub field: u32,
    pub op: u32,
    pub value: u32,
    pub text: Option<String>,
}

/// A rule as the kernel lists it (`struct audit_rule_data`), parsed just
/// enough to judge what it covers, with its bytes kept for exact comparison
/// and deletion.
#[derive(Clone, PartialEq, Eq)]
pub struct AuditRule {
    raw: Vec<u8>,
    /// The filter list (AUDIT_FILTER_*); ours is AUDIT_FILTER_EXIT.
    pub list: u32,
    /// The rule's action (AUDIT_NEVER, AUDIT_ALWAYS, …); ours is AUDIT_ALWAYS.
    pub action: u32,
    mask: Vec<u32>,
    pub(crate) conditions: Vec<RuleCondition>,
}

/// The fixed part of `struct audit_rule_data` (flags, action, field_count,
/// four arrays of 64 u32, buflen): the strings follow it.
const RULE_HEADER_LEN: usize = 12 + 4 * (AUDIT_BITMASK_SIZE + 3 * AUDIT_MAX_FIELDS) + 4;

/// A native-endian u32 array of `audit_rule_data`.
fn words(bytes: &[u8]) -> impl Iterator<Item = u32> + '_ {
    bytes
        .chunks_exact(4)
        .map(|w| u32::from_ne_bytes([w[0], w[1], w[2], w[3]]))
}

impl AuditRule {
    /// Parses a listed rule; None if it is malformed. Trailing padding the
    /// kernel may add is cut so equal rules have equal bytes.
    ///
    /// Read through netlink-packet-audit's [`RuleBuffer`] (layout and length
    /// checks), but not its `RuleMessage` parser: that one fails on field
    /// types it does not know and reads AUDIT_EXE as a number, which would
    /// shift every string after it in a rule of another tool.
    pub fn parse(raw: &[u8]) -> Option<AuditRule> {
        let buf = RuleBuffer::new_checked(raw).ok()?;
        let count = buf.field_count() as usize;
        if count > AUDIT_MAX_FIELDS {
            return None;
        }
        let strings = buf.buf();
        let mut offset = 0usize;
        let mut conditions = Vec::with_capacity(count);
        let columns = words(buf.fields())
            .zip(words(buf.values()))
            .zip(words(buf.field_flags()));
        for ((field, value), op) in columns.take(count) {
            let text = if is_string_field(field) {
                let end = offset.checked_add(value as usize)?;
                let s = String::from_utf8_lossy(strings.get(offset..end)?).into_owned();
                offset = end;
                Some(s)
            } else {
                None
            };
            conditions.push(RuleCondition {
                field,
                op,
                value,
                text,
            });
        }
        Some(AuditRule {
            raw: raw
                .get(..RULE_HEADER_LEN.checked_add(strings.len())?)?
                .to_vec(),
            list: buf.flags() & !AUDIT_FILTER_PREPEND,
            action: buf.action(),
            mask: words(buf.syscalls()).collect(),
            conditions,
        })
    }

    /// The bytes to send back to delete this rule.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    pub(crate) fn has_syscall(&self, nr: u32) -> bool {
        let (w, bit) = ((nr / 32) as usize, nr % 32);
        self.mask.get(w).is_some_and(|m| m & (1 << bit) != 0)
    }

    /// The filter key, if the rule has one.
    pub fn key(&self) -> Option<&str> {
        self.conditions
            .iter()
            .find(|c| c.field == AUDIT_FILTERKEY)
            .and_then(|c| c.text.as_deref())
    }

    /// Whether this rule already records every execve of `arch`: an
    /// exit-list always rule whose mask has execve and whose only conditions
    /// are that arch and/or a key (anything else would narrow it).
    pub fn covers_exec(&self, arch: &ExecArch) -> bool {
        self.list == AUDIT_FILTER_EXIT
            && self.action == AUDIT_ALWAYS
            && self.has_syscall(arch.execve)
            && self.conditions.iter().all(|c| match c.field {
                AUDIT_ARCH => c.op == AUDIT_EQUAL && c.value == arch.audit_arch,
                AUDIT_FILTERKEY => true,
                _ => false,
            })
    }

    /// auditctl-like one-liner, for messages.
    pub fn summary(&self) -> String {
        let mut out = format!("list={} action={}", self.list, self.action);
        if self.mask.iter().all(|&w| w == u32::MAX) {
            out.push_str(" syscalls=all");
        } else {
            let nrs: Vec<String> = (0..AUDIT_BITMASK_SIZE as u32 * 32)
                .filter(|&n| self.has_syscall(n))
                .map(|n| n.to_string())
                .collect();
            out.push_str(&format!(" syscalls={}", nrs.join(",")));
        }
        for c in &self.conditions {
            match &c.text {
                Some(t) => out.push_str(&format!(" f{}:{:#x}={t:?}", c.field, c.op)),
                None => out.push_str(&format!(" f{}:{:#x}={:#x}", c.field, c.op, c.value)),
            }
        }
        out
    }
}

impl fmt::Debug for AuditRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AuditRule({})", self.summary())
    }
}

/// The exit,always rule for execve and execveat of `arch`, tagged with
/// `key` (none when empty).
pub fn exec_rule(arch: &ExecArch, key: &str) -> Vec<u8> {
    let mut rule = RuleMessage::new();
    rule.flags = RuleFlags::FilterExit;
    rule.action = RuleAction::Always;
    rule.syscalls.set(arch.execve).set(arch.execveat);
    rule.fields
        .push((RuleField::Arch(arch.audit_arch), RuleFieldFlags::Equal));
    if !key.is_empty() {
        rule.fields
            .push((RuleField::Filterkey(key.to_string()), RuleFieldFlags::Equal));
    }
    rule_bytes(&rule)
}

/// Status and rule list, as the kernel has them now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditState {
    /// The AUDIT_GET reply.
    pub status: AuditStatus,
    /// Every rule the kernel lists (AUDIT_LIST_RULES), in its order.
    pub rules: Vec<AuditRule>,
}

/// Reads the current audit configuration without changing it.
pub fn read_state() -> Result<AuditState, StartError> {
    let mut ctl =
        ControlSocket::open().map_err(|e| start_error(&e, "opening the audit netlink"))?;
    read_state_with(&mut ctl)
}

pub(super) fn read_state_with(ctl: &mut ControlSocket) -> Result<AuditState, StartError> {
    let status = ctl
        .get_status()
        .map_err(|e| start_error(&e, "reading the audit status"))?;
    let raw = ctl
        .list_rules()
        .map_err(|e| start_error(&e, "listing audit rules"))?;
    let mut rules = Vec::with_capacity(raw.len());
    for r in raw {
        match AuditRule::parse(&r) {
            Some(rule) => rules.push(rule),
            None => {
                return Err(StartError::Failed(format!(
                    "the kernel listed a malformed audit rule ({} bytes)",
                    r.len()
                )))
            }
        }
    }
    Ok(AuditState {
        status: AuditStatus::from(&status),
        rules,
    })
}

/// Whether `pid` names a live (not zombie) process.
pub(crate) fn process_alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state letter follows the parenthesized command name.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next())
        .is_some_and(|state| state != 'Z' && state != 'X')
}

pub(super) fn set_status(
    ctl: &mut ControlSocket,
    mask: u32,
    fill: impl FnOnce(&mut StatusMessage),
) -> io::Result<()> {
    let mut s = StatusMessage::new();
    s.mask = mask;
    fill(&mut s);
    ctl.set_status(&s)
}

#[cfg(test)]
mod tests {
    use super::super::arch::MACHINE_ARCHES;
    use super::*;

    fn rule(arch: &ExecArch, key: &str) -> AuditRule {
        AuditRule::parse(&exec_rule(arch, key)).unwrap()
    }

    #[test]
    fn our_rule_round_trips() {
        for arch in MACHINE_ARCHES {
            let r = rule(arch, "kerberos_cache_access");
            assert_eq!(r.list, AUDIT_FILTER_EXIT);
            assert_eq!(r.action, AUDIT_ALWAYS);
            assert!(r.has_syscall(arch.execve) && r.has_syscall(arch.execveat));
            assert_eq!(r.key(), Some("kerberos_cache_access"));
            assert!(r.covers_exec(arch));
            for other in MACHINE_ARCHES.iter().filter(|a| *a != arch) {
                assert!(!r.covers_exec(other), "{r:?} must not cover {other:?}");
            }
        }
    }

    #[test]
    fn string_fields_of_other_tools_keep_their_offsets() {
        // auditctl -a exit,always -F exe=/bin/x -k k, plus two pad bytes:
        // an exe string (AUDIT_EXE, 112) then the key.
        let strings = b"/bin/xk";
        let mut raw = vec![0u8; RULE_HEADER_LEN + strings.len() + 2];
        let mut b = RuleBuffer::new(&mut raw[..]);
        b.set_flags(AUDIT_FILTER_EXIT);
        b.set_action(AUDIT_ALWAYS);
        b.set_field_count(2);
        b.set_field(0, 112);
        b.set_value(0, 6);
        b.set_field(1, AUDIT_FILTERKEY);
        b.set_value(1, 1);
        b.set_buflen(7);
        b.buf_mut().copy_from_slice(strings);
        let r = AuditRule::parse(&raw).unwrap();
        assert_eq!(r.conditions[0].text.as_deref(), Some("/bin/x"));
        assert_eq!(r.key(), Some("k"));
        // Padding is cut: the kept bytes are the rule itself.
        assert_eq!(r.raw(), &raw[..RULE_HEADER_LEN + strings.len()]);
        // Short, or strings past the end: malformed, not a panic.
        assert!(AuditRule::parse(&raw[..RULE_HEADER_LEN - 1]).is_none());
        assert!(AuditRule::parse(&raw[..RULE_HEADER_LEN + 3]).is_none());
    }

    #[test]
    fn narrowed_or_other_rules_do_not_cover() {
        let Some(arch) = MACHINE_ARCHES.first() else {
            return;
        };
        let mut m = RuleMessage::new();
        m.flags = RuleFlags::FilterExit;
        m.action = RuleAction::Always;
        m.syscalls.set(arch.execve);
        m.fields
            .push((RuleField::Arch(arch.audit_arch), RuleFieldFlags::Equal));
        m.fields.push((RuleField::Uid(1000), RuleFieldFlags::Equal));
        assert!(!AuditRule::parse(&rule_bytes(&m)).unwrap().covers_exec(arch));

        m.fields.pop();
        m.action = RuleAction::Never;
        assert!(!AuditRule::parse(&rule_bytes(&m)).unwrap().covers_exec(arch));

        m.action = RuleAction::Always;
        m.flags = RuleFlags::FilterTask;
        assert!(!AuditRule::parse(&rule_bytes(&m)).unwrap().covers_exec(arch));

        // All syscalls, no arch condition, plus a key: covers every arch.
        let mut all = RuleMessage::new();
        all.flags = RuleFlags::FilterExit;
        all.action = RuleAction::Always;
        all.syscalls.set_all();
        all.fields
            .push((RuleField::Filterkey("x".into()), RuleFieldFlags::Equal));
        let all = AuditRule::parse(&rule_bytes(&all)).unwrap();
        assert!(MACHINE_ARCHES.iter().all(|a| all.covers_exec(a)));
        assert!(all.summary().contains("syscalls=all"));
    }

    #[test]
    fn string_fields_are_walked_in_order() {
        let mut m = RuleMessage::new();
        m.flags = RuleFlags::FilterExit;
        m.action = RuleAction::Always;
        m.fields.push((
            RuleField::Watch("/etc/krb5.keytab".into()),
            RuleFieldFlags::Equal,
        ));
        m.fields
            .push((RuleField::Filterkey("k".into()), RuleFieldFlags::Equal));
        let r = AuditRule::parse(&rule_bytes(&m)).unwrap();
        assert_eq!(r.conditions[0].text.as_deref(), Some("/etc/krb5.keytab"));
        assert_eq!(r.key(), Some("k"));
    }

    #[test]
    fn malformed_rules_are_rejected_and_padding_cut() {
        assert!(AuditRule::parse(&[0; 100]).is_none());
        let Some(arch) = MACHINE_ARCHES.first() else {
            return;
        };
        let raw = exec_rule(arch, "key");
        // buflen claims more strings than present.
        assert!(AuditRule::parse(&raw[..raw.len() - 1]).is_none());
        let mut padded = raw.clone();
        padded.extend_from_slice(&[0; 3]);
        assert_eq!(AuditRule::parse(&padded).unwrap().raw(), &raw[..]);
    }

    #[test]
    fn errno_maps_to_reasons() {
        let e = start_error(&io::Error::from_raw_os_error(libc::EPERM), "x");
        assert!(matches!(e, StartError::Unavailable(_)));
        assert_eq!(
            e.to_string().starts_with("not root"),
            !euid_is_root(),
            "{e}"
        );
        let e = start_error(&io::Error::from_raw_os_error(libc::ECONNREFUSED), "x");
        assert!(e.to_string().contains("container"), "{e}");
        let e = start_error(&io::Error::from_raw_os_error(libc::EPROTONOSUPPORT), "x");
        assert!(matches!(e, StartError::Unavailable(_)));
        let e = start_error(&io::Error::from_raw_os_error(libc::EIO), "x");
        assert!(matches!(e, StartError::Failed(_)));
    }

    #[test]
    fn liveness_of_pids() {
        assert!(process_alive(std::process::id()));
        assert!(!process_alive(u32::MAX));
    }
}
