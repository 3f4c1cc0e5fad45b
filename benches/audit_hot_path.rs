//! Per-exec cost of the Linux audit hot path: the seven netlink records of
//! one exec through split_payload and Assembler::push, then classify on the
//! emitted exec, then drop. The target is ≤ 1 µs for a non-Kerberos exec.
//!
//! `cargo bench --bench audit_hot_path`
//!
//! Each exec gets a fresh serial (the assembler drops records of an event it
//! has finished): writing it into the payloads (7 copies of 10 bytes) is
//! part of the timed loop, a few ns.

#[cfg(target_os = "linux")]
mod linux {
    use criterion::{criterion_group, Criterion, Throughput};
    use kerberos_cache_access::classify::classify;
    use kerberos_cache_access::engine::Engine;
    use kerberos_cache_access::event::SourceKind;
    use kerberos_cache_access::sources::exec_cache::ExecCache;
    use kerberos_cache_access::sources::linux_audit::assemble::{Assembler, AssemblerConfig};
    use kerberos_cache_access::sources::linux_audit::deliver;
    use kerberos_cache_access::sources::linux_audit::record::{
        split_payload, AUDIT_CWD, AUDIT_EOE, AUDIT_EXECVE, AUDIT_PATH, AUDIT_PROCTITLE,
        AUDIT_SYSCALL,
    };
    use kerberos_cache_access::store::StoreConfig;
    use kerberos_cache_access::users::FixedUsers;
    use std::time::Instant;

    const PREFIX: &str = "audit(1700000000.123:";
    const SERIAL_DIGITS: usize = 10;

    /// One event's netlink payloads, with a rewritable serial.
    #[derive(Clone)]
    struct Event {
        records: Vec<(u16, Vec<u8>)>,
    }

    impl Event {
        fn new(records: &[(u16, String)]) -> Event {
            let records = records
                .iter()
                .map(|(rtype, body)| {
                    let text = format!("{PREFIX}{}): {body}", "0".repeat(SERIAL_DIGITS));
                    (*rtype, text.into_bytes())
                })
                .collect();
            Event { records }
        }

        fn set_serial(&mut self, serial: u64) {
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

    /// An x86_64 execve of `exe` with `argv`, in the kernel's record order.
    fn exec(exe: &str, argv: &[&str], cwd: &str) -> Event {
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

    /// Events in flight in the ring below, and how far ahead of its use an
    /// event gets its serial: reading bytes just written would stall on
    /// store forwarding, which real netlink input (written by the kernel
    /// well before) does not.
    const RING: usize = 8;
    const AHEAD: u64 = 4;

    fn per_exec(c: &mut Criterion, name: &str, template: Event, expect_kerberos: bool) {
        let mut asm = Assembler::new(AssemblerConfig::default());
        let engine = Engine::new(StoreConfig::default(), Box::new(FixedUsers::default()));
        let counters = engine.counters(SourceKind::LinuxAudit);
        let mut cache = ExecCache::new(8192);
        let now = Instant::now();
        let mut ring: Vec<Event> = (0..RING).map(|_| template.clone()).collect();
        let mut serial = 1_000_000_000u64;
        for ahead in 0..AHEAD {
            ring[(serial + ahead) as usize % RING].set_serial(serial + ahead);
        }
        let mut kerberos = 0u64;
        let mut group = c.benchmark_group("audit_hot_path");
        group.throughput(Throughput::Elements(1));
        group.bench_function(name, |b| {
            b.iter(|| {
                let next = serial + AHEAD;
                ring[next as usize % RING].set_serial(next);
                let event = &ring[serial as usize % RING];
                serial += 1;
                for (rtype, payload) in &event.records {
                    let Ok((header, body)) = split_payload(payload) else {
                        continue;
                    };
                    asm.push(*rtype, header, body, now, &mut |e| {
                        // What the source does with every exec: classify,
                        // record it for parent lookups, keep or drop it.
                        kerberos +=
                            u64::from(classify(e.exe().unwrap_or_default(), e.argv()).is_some());
                        deliver(e, &engine, &counters, &mut cache);
                    });
                }
            })
        });
        group.finish();
        let stats = asm.stats();
        assert_eq!(stats.emitted, stats.records / 7, "one exec per 7 records");
        assert_eq!(stats.incomplete, 0);
        let want = if expect_kerberos { stats.emitted } else { 0 };
        assert_eq!(kerberos, want, "classifier verdicts");
    }

    fn hot_path(c: &mut Criterion) {
        per_exec(
            c,
            "non_kerberos_exec",
            exec("/usr/bin/ls", &["ls", "-l", "/tmp"], "/home/bob"),
            false,
        );
        per_exec(
            c,
            "kcc_copy_cred_cache_exec",
            exec(
                "/usr/bin/kcc",
                &["kcc", "copy_cred_cache", "FILE:/tmp/x"],
                "/home/alice",
            ),
            true,
        );
    }

    criterion_group!(benches, hot_path);
}

#[cfg(target_os = "linux")]
criterion::criterion_main!(linux::benches);

#[cfg(not(target_os = "linux"))]
fn main() {}
