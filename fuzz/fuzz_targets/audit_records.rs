//! Linux audit text: audit.log lines and netlink payloads, through the
//! record parser and the exec assembler.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[cfg(target_os = "linux")]
fn run(data: &[u8]) {
    use kerberos_cache_access::sources::linux_audit::assemble::{Assembler, AssemblerConfig};
    use kerberos_cache_access::sources::linux_audit::record::{
        decode_into, fields, parse_log_line, split_payload, AUDIT_CWD, AUDIT_EOE, AUDIT_EXECVE,
        AUDIT_PATH, AUDIT_PROCTITLE, AUDIT_SYSCALL,
    };
    use std::time::{Duration, Instant};

    // Netlink gives the type out of band: the line's first byte picks one.
    const TYPES: [u16; 7] = [
        AUDIT_SYSCALL,
        AUDIT_EXECVE,
        AUDIT_CWD,
        AUDIT_PATH,
        AUDIT_PROCTITLE,
        AUDIT_EOE,
        1100,
    ];
    let config = AssemblerConfig {
        timeout: Duration::from_millis(500),
        max_pending: 8,
    };
    let mut assembler = Assembler::new(config);
    let start = Instant::now();
    let mut emitted = 0usize;
    let mut emit = |ex: &kerberos_cache_access::sources::linux_audit::assemble::AuditExec| {
        emitted += ex.argv().len() + usize::from(ex.exe().is_some());
        let _ = (ex.cwd(), ex.argc());
    };
    let mut scratch = Vec::new();
    for (i, line) in data.split(|&b| b == b'\n').enumerate() {
        let now = start + Duration::from_millis(i as u64 * 50);
        if let Some(Ok((rtype, header, body))) = parse_log_line(line) {
            for (_, value) in fields(body) {
                let _ = decode_into(value, &mut scratch);
            }
            assembler.push(rtype, header, body, now, &mut emit);
        }
        if let Ok((header, body)) = split_payload(line) {
            let pick = line.first().map_or(0, |&b| usize::from(b) % TYPES.len());
            assembler.push(TYPES[pick], header, body, now, &mut emit);
        }
        assembler.expire(now, &mut emit);
    }
    assembler.flush(&mut emit);
    assert_eq!(assembler.pending(), 0);
}

#[cfg(not(target_os = "linux"))]
fn run(_data: &[u8]) {}

fuzz_target!(|data: &[u8]| run(data));
