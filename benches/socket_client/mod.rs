//! A client that calls an extension's table over its Unix socket the way
//! osqueryd does (fresh connection per call) and stops the clock at the
//! last reply byte: it counts bytes and decodes nothing. Shared by the
//! `socket` and `generate` benches.

use kerberos_cache_access::osquery::plugin::TablePlugin;
use kerberos_cache_access::table::Table;
use osquery_rust_ng::Server;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[path = "../../tests/support/mod.rs"]
pub mod support;

pub fn tstr(out: &mut Vec<u8>, s: &str) {
    out.extend((s.len() as i32).to_be_bytes());
    out.extend(s.as_bytes());
}

/// `call("table", table, {action: generate, context})` as osqueryd sends it.
pub fn generate_request(table: &str, context: &str) -> Vec<u8> {
    let mut m = vec![0x80, 0x01, 0x00, 0x01];
    tstr(&mut m, "call");
    m.extend(1i32.to_be_bytes());
    m.extend([11, 0, 1]);
    tstr(&mut m, "table");
    m.extend([11, 0, 2]);
    tstr(&mut m, table);
    m.extend([13, 0, 3, 11, 11]);
    m.extend(2i32.to_be_bytes());
    tstr(&mut m, "action");
    tstr(&mut m, "generate");
    tstr(&mut m, "context");
    tstr(&mut m, context);
    m.push(0); // end of args
    m
}

/// One call on a fresh connection; returns (time to the last reply byte,
/// reply bytes). Half-closing after the request makes the server close the
/// connection right after its reply, so EOF marks the last byte.
pub fn call(path: &Path, request: &[u8]) -> (Duration, usize) {
    let t = Instant::now();
    let mut s = UnixStream::connect(path).expect("connect");
    s.write_all(request).expect("send");
    s.shutdown(std::net::Shutdown::Write).expect("half-close");
    let mut buf = [0u8; 64 << 10];
    let mut n = 0;
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) => panic!("read: {e}"),
        }
    }
    (t.elapsed(), n)
}

/// Our osquery-rust-ng server serving `table`, registered with the
/// osqueryd double at a fresh socket. Keep all three alive while calling.
pub fn serve(
    table: Arc<dyn Table>,
) -> (
    tempfile::TempDir,
    support::FakeOsqueryd,
    osquery_rust_ng::Running,
) {
    let dir = support::socket_dir();
    let sock = dir.path().join("osquery.em");
    let fake = support::FakeOsqueryd::start(&sock);
    let mut server = Server::new("kca_bench", &sock);
    server.register_plugin(TablePlugin::new(table));
    let running = server.start().expect("register with the double");
    (dir, fake, running)
}
