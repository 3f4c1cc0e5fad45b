//! Once warm, the audit hot path (split_payload → Assembler::push → emit →
//! classify) makes no heap allocation for an exec that is not Kerberos.
//!
//! A counting global allocator counts the allocations made by this test's
//! own thread while armed, so the harness's other threads do not interfere.
#![cfg(target_os = "linux")]

use kerberos_cache_access::classify::classify;
use kerberos_cache_access::sources::linux_audit::assemble::{Assembler, AssemblerConfig};
use kerberos_cache_access::sources::linux_audit::record::{
    split_payload, AUDIT_CWD, AUDIT_EOE, AUDIT_PATH, AUDIT_PROCTITLE, AUDIT_SYSCALL,
};
use std::time::Instant;

#[path = "support/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::allocations_during;

#[path = "support/audit_events.rs"]
mod audit_events;
use audit_events::{exec, Event};

/// `/usr/bin/ls -l /tmp`: SYSCALL, EXECVE, CWD, PATH×2, PROCTITLE, EOE.
fn ls_exec() -> Event {
    exec("/usr/bin/ls", &["ls", "-l", "/tmp"], "/home/bob")
}

/// An openat(2) another rule on the host reports: dropped after its SYSCALL.
fn openat() -> Event {
    Event::new(&[
        (
            AUDIT_SYSCALL,
            "arch=c000003e syscall=257 success=yes exit=3 a0=ffffff9c a1=7ffd5e6f8000 a2=0 \
             a3=0 items=1 ppid=3141 pid=3150 auid=1000 uid=1000 gid=1000 euid=1000 \
             suid=1000 fsuid=1000 egid=1000 sgid=1000 fsgid=1000 tty=pts0 ses=2 \
             comm=\"cat\" exe=\"/usr/bin/cat\" subj=unconfined key=\"files\"",
        ),
        (AUDIT_CWD, "cwd=\"/home/bob\""),
        (
            AUDIT_PATH,
            "item=0 name=\"/etc/hosts\" inode=131 dev=fd:01 mode=0100644 ouid=0 ogid=0 \
             rdev=00:00 nametype=NORMAL cap_fp=0 cap_fi=0 cap_fe=0 cap_fver=0 cap_frootid=0",
        ),
        (AUDIT_PROCTITLE, "proctitle=636174002F6574632F686F737473"),
        (AUDIT_EOE, ""),
    ])
}

// Inside `linux_audit` so that `cargo test … linux_audit` selects these too.
mod linux_audit {
    use super::*;

    #[test]
    fn warm_hot_path_does_not_allocate() {
        let mut asm = Assembler::new(AssemblerConfig::default());
        let mut exec = ls_exec();
        let mut other = openat();
        let now = Instant::now();
        let mut serial = 1_000_000_000u64;
        let mut dropped = 0u64;
        let mut kerberos = 0u64;

        let mut run = |count: u64, asm: &mut Assembler| {
            for _ in 0..count {
                for event in [&mut exec, &mut other] {
                    serial += 1;
                    event.set_serial(serial);
                    for (rtype, payload) in &event.records {
                        let (header, body) = split_payload(payload).expect("valid payload");
                        asm.push(*rtype, header, body, now, &mut |e| {
                            let class = classify(e.exe().unwrap_or_default(), e.argv());
                            if class.is_none() {
                                dropped += 1;
                            } else {
                                kerberos += 1;
                            }
                        });
                    }
                }
            }
        };

        run(10, &mut asm);
        let allocations = allocations_during(|| run(1_000, &mut asm));

        assert_eq!(
            allocations, 0,
            "1,000 warm non-Kerberos execs made {allocations} allocations"
        );
        assert_eq!((dropped, kerberos), (1_010, 0));
        let stats = asm.stats();
        assert_eq!((stats.emitted, stats.incomplete), (1_010, 0));
        assert_eq!(stats.non_exec, 1_010);
        assert_eq!(asm.pending(), 0);
    }

    /// Writes `pid` into the fixed-width ` pid=NNNNNNN ` slot of the SYSCALL
    /// record (the template's pid has 7 digits).
    fn set_pid(event: &mut Event, pid: u32) {
        let Some((_, syscall)) = event.records.first_mut() else {
            return;
        };
        let at = syscall
            .windows(5)
            .position(|w| w == b" pid=")
            .expect("pid field")
            + 5;
        let mut n = pid;
        for digit in syscall[at..at + 7].iter_mut().rev() {
            *digit = b'0' + (n % 10) as u8;
            n /= 10;
        }
    }

    /// The source's real per-exec path, parent cache included: once every
    /// cache slot has been used, new pids reuse slot buffers.
    #[test]
    fn warm_delivery_with_the_parent_cache_does_not_allocate() {
        use kerberos_cache_access::engine::Engine;
        use kerberos_cache_access::event::SourceKind;
        use kerberos_cache_access::sources::exec_cache::ExecCache;
        use kerberos_cache_access::sources::linux_audit::deliver;
        use kerberos_cache_access::store::StoreConfig;
        use kerberos_cache_access::users::FixedUsers;

        let engine = Engine::new(StoreConfig::default(), Box::new(FixedUsers::default()));
        let counters = engine.counters(SourceKind::LinuxAudit);
        let mut cache = ExecCache::new(64);
        let mut asm = Assembler::new(AssemblerConfig::default());
        let mut exec = ls_exec();
        // Seven digits, so set_pid can rewrite it in place.
        for (_, body) in &mut exec.records {
            let text = String::from_utf8(body.clone()).unwrap();
            *body = text.replace(" pid=3142 ", " pid=1000000 ").into_bytes();
        }
        let now = Instant::now();
        let mut serial = 1_000_000_000u64;
        let mut pid = 1_000_000u32;
        let mut run = |count: u32, asm: &mut Assembler, cache: &mut ExecCache| {
            for _ in 0..count {
                serial += 1;
                pid += 1;
                exec.set_serial(serial);
                set_pid(&mut exec, pid);
                for (rtype, payload) in &exec.records {
                    let (header, body) = split_payload(payload).expect("valid payload");
                    asm.push(*rtype, header, body, now, &mut |e| {
                        deliver(e, &engine, &counters, cache);
                    });
                }
            }
        };
        run(200, &mut asm, &mut cache);
        let allocations = allocations_during(|| run(1_000, &mut asm, &mut cache));
        assert_eq!(
            allocations, 0,
            "1,000 warm execs through deliver made {allocations} allocations"
        );
        assert_eq!(cache.len(), 64);
        assert_eq!(
            counters
                .events_seen
                .load(std::sync::atomic::Ordering::Relaxed),
            1_200
        );
        assert_eq!(engine.store().stats().rows, 0);
    }

    #[test]
    fn the_counter_sees_allocations() {
        let n = allocations_during(|| {
            let v: Vec<u8> = std::hint::black_box(Vec::with_capacity(64));
            drop(v);
        });
        assert_eq!(n, 1);
    }
}
