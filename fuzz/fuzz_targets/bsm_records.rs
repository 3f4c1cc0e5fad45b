//! BSM bytes, cut into chunks the way auditpipe reads cut them, through the
//! stream reader, the record parser and the exec/fork interpreter.
#![no_main]

use kerberos_cache_access::sources::bsm::events::{interpret, to_exec_event, BsmEvent};
use kerberos_cache_access::sources::bsm::parse::{
    parse_record, parse_token, RecordReader, MAX_RECORD_LEN,
};
use libfuzzer_sys::fuzz_target;

fn consume(bytes: &[u8]) {
    let Ok((record, used)) = parse_record(bytes) else {
        return;
    };
    assert_eq!(used, record.len);
    assert!(used <= bytes.len());
    if let Some(BsmEvent::Exec(exec)) = interpret(&record) {
        let event = to_exec_event(&exec, None);
        assert_eq!(event.argv.len(), exec.argv.len());
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = parse_token(data);
    consume(data);

    // The last byte picks the read size, the rest is the stream (so a seed
    // that is a record plus one byte also parses as a record above).
    let Some((&size, stream)) = data.split_last() else {
        return;
    };
    let size = usize::from(size).max(1);
    let mut reader = RecordReader::new();
    for chunk in stream.chunks(size) {
        reader.push(chunk);
        while let Some(record) = reader.next_record() {
            // What the reader frames, the parser must accept whole.
            let (_, used) = parse_record(record).expect("framed record parses");
            assert_eq!(used, record.len());
            consume(record);
        }
        assert!(reader.buffered() <= MAX_RECORD_LEN + 64);
    }
    reader.finish();
    while let Some(record) = reader.next_record() {
        consume(record);
    }
    assert_eq!(reader.buffered(), 0);
});
