//! The extension server's request decoding: the bytes one connection sends,
//! through osquery-rust-ng's request loop (strict binary protocol, the
//! server's limits and byte budget) into our real table plugins.
#![no_main]

use kerberos_cache_access::engine::Engine;
use kerberos_cache_access::event::{ExecEvent, SourceKind};
use kerberos_cache_access::status::State;
use kerberos_cache_access::osquery::plugin::TablePlugin;
use kerberos_cache_access::store::StoreConfig;
use kerberos_cache_access::table::{ExecTable, StatusTable};
use kerberos_cache_access::users::FixedUsers;
use libfuzzer_sys::fuzz_target;
use osquery_rust_ng::{serve_bytes, ServerConfig};
use std::sync::{Arc, OnceLock};

fn plugins() -> &'static [TablePlugin] {
    static PLUGINS: OnceLock<Vec<TablePlugin>> = OnceLock::new();
    PLUGINS.get_or_init(|| {
        let engine = Arc::new(Engine::new(
            StoreConfig::default(),
            Box::new(FixedUsers(vec![(501, "alice".into())])),
        ));
        // A few rows, so generate's streamed replies carry data.
        let counters = engine
            .status()
            .set(SourceKind::Snapshot, State::Active, "fuzz");
        for i in 0..20 {
            let event = ExecEvent {
                time: 1_700_000_000 + i,
                pid: 100 + i,
                ppid: 1,
                path: b"/usr/bin/kcc".to_vec(),
                argv: vec![b"kcc".to_vec(), b"copy_cred_cache".to_vec()],
                uid: (i % 2 == 0).then_some(501),
                ..ExecEvent::default()
            };
            engine.ingest(&event, &counters);
        }
        vec![
            TablePlugin::new(Arc::new(ExecTable::new(Arc::clone(&engine)))),
            TablePlugin::new(Arc::new(StatusTable::new(engine))),
        ]
    })
}

fuzz_target!(|data: &[u8]| {
    let config = ServerConfig::default();
    let Ok(out) = serve_bytes(plugins(), &config, data) else {
        return;
    };
    // Whatever is answered is strict binary protocol replies, and never
    // more than a bounded amount for a bounded request.
    if !out.is_empty() {
        assert_eq!(&out[..2], &[0x80, 0x01], "reply without a strict header");
    }
});
