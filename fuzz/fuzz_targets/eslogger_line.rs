//! One line of `eslogger` JSON output.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = kerberos_cache_access::sources::eslogger::parse_line(data);
});
