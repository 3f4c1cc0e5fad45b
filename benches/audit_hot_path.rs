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
#[path = "../tests/support/audit_events.rs"]
mod audit_events;

#[cfg(target_os = "linux")]
mod linux {
    use criterion::{criterion_group, Criterion, Throughput};
    use kerberos_cache_access::classify::classify;
    use kerberos_cache_access::engine::Engine;
    use kerberos_cache_access::event::SourceKind;
    use kerberos_cache_access::sources::exec_cache::ExecCache;
    use kerberos_cache_access::sources::linux_audit::assemble::{Assembler, AssemblerConfig};
    use kerberos_cache_access::sources::linux_audit::deliver;
    use kerberos_cache_access::sources::linux_audit::record::split_payload;
    use kerberos_cache_access::store::StoreConfig;
    use kerberos_cache_access::users::FixedUsers;
    use std::time::Instant;

    use super::audit_events::{exec, Event};

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
