//! The row journal's decoder, on any bytes: whole files (as they may be
//! after a crash, a power loss or damage), the records after a valid header,
//! and any payload inside a record with valid checksums (which random bytes
//! would rarely reach).
#![no_main]

use kerberos_cache_access::journal::{decode, encode_record, frame_payload, header, HEADER_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (records, report) = decode(data);
    assert_eq!(records.len() as u64, report.records);
    assert!(report.good_len <= data.len() as u64);

    for file in [
        [header().as_slice(), data].concat(),
        [header().as_slice(), &frame_payload(data), &frame_payload(data)].concat(),
    ] {
        let (records, report) = decode(&file);
        assert!(report.good_len >= HEADER_LEN as u64);
        // Whatever decoded re-encodes and decodes to the same records.
        let mut again = header().to_vec();
        for r in &records {
            again.extend_from_slice(&encode_record(r.arrived, &r.row).expect("re-encode"));
        }
        let (back, report) = decode(&again);
        assert_eq!(back, records);
        assert!(!report.damaged() && report.torn_bytes == 0);
    }
});
