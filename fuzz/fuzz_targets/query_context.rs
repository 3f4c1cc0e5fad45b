//! The query context JSON osqueryd sends with each table call.
#![no_main]

use kerberos_cache_access::constraints::QueryContext;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(ctx) = QueryContext::parse(text) {
        for column in ["time", "pid", "path", "cmdline", "uid"] {
            let range = ctx.int_range(column);
            let _ = range.contains(0);
            let _ = ctx.int_equals(column);
            let _ = ctx.on(column).count();
        }
    }
});
