//! Whole Linux audit events as netlink payloads, each with a serial slot
//! rewritten in place per event so that a hot loop builds no text: for
//! tests/audit_alloc.rs and benches/audit_hot_path.rs. Include with
//! `#[path = "…/support/audit_events.rs"] mod audit_events;`.
#![allow(dead_code)]

use kerberos_cache_access::sources::linux_audit::record::{
    AUDIT_CWD, AUDIT_EOE, AUDIT_EXECVE, AUDIT_PATH, AUDIT_PROCTITLE, AUDIT_SYSCALL,
};

/// Prefix of every payload; the serial follows in a fixed 10-digit slot.
const PREFIX: &str = "audit(1700000000.123:";
const SERIAL_DIGITS: usize = 10;

/// The netlink payloads of one event, as the kernel sends them.
#[derive(Clone)]
pub struct Event {
    pub records: Vec<(u16, Vec<u8>)>,
}

impl Event {
    pub fn new<S: AsRef<str>>(records: &[(u16, S)]) -> Event {
        let records = records
            .iter()
            .map(|(rtype, body)| {
                let text = format!("{PREFIX}{}): {}", "0".repeat(SERIAL_DIGITS), body.as_ref());
                (*rtype, text.into_bytes())
            })
            .collect();
        Event { records }
    }

    /// Writes `serial` into every payload's slot.
    pub fn set_serial(&mut self, serial: u64) {
        let mut digits = [b'0'; SERIAL_DIGITS];
        let mut n = serial;
        for d in digits.iter_mut().rev() {
            *d = b'0' + (n % 10) as u8;
            n /= 10;
        }
        let at = PREFIX.len()..PREFIX.len() + SERIAL_DIGITS;
        for (_, payload) in &mut self.records {
            if let Some(slot) = payload.get_mut(at.clone()) {
                slot.copy_from_slice(&digits);
            }
        }
    }
}

/// An x86_64 execve of `exe` with `argv`, in the kernel's record order:
/// SYSCALL, EXECVE, CWD, PATH×2, PROCTITLE, EOE.
pub fn exec(exe: &str, argv: &[&str], cwd: &str) -> Event {
    let comm = exe.rsplit('/').next().unwrap_or(exe);
    let mut execve = format!("argc={}", argv.len());
    for (i, a) in argv.iter().enumerate() {
        execve.push_str(&format!(" a{i}=\"{a}\""));
    }
    let title = hex::encode_upper(argv.join("\0"));
    let path = |item: u32, name: &str| {
        format!(
            "item={item} name=\"{name}\" inode=524301 dev=fd:01 mode=0100755 ouid=0 \
             ogid=0 rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 \
             cap_frootid=0"
        )
    };
    Event::new(&[
        (
            AUDIT_SYSCALL,
            format!(
                "arch=c000003e syscall=59 success=yes exit=0 a0=5616f1a2b3c0 \
                 a1=5616f1a2b410 a2=5616f1a2b440 a3=7ffd5e6f7a80 items=2 ppid=3141 \
                 pid=3142 auid=1000 uid=1000 gid=1000 euid=1000 suid=1000 fsuid=1000 \
                 egid=1000 sgid=1000 fsgid=1000 tty=pts0 ses=2 comm=\"{comm}\" \
                 exe=\"{exe}\" subj=unconfined key=\"execs\""
            ),
        ),
        (AUDIT_EXECVE, execve),
        (AUDIT_CWD, format!("cwd=\"{cwd}\"")),
        (AUDIT_PATH, path(0, exe)),
        (AUDIT_PATH, path(1, "/lib64/ld-linux-x86-64.so.2")),
        (AUDIT_PROCTITLE, format!("proctitle={title}")),
        (AUDIT_EOE, String::new()),
    ])
}
