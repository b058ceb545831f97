//! Bytes read back from a log segment (possibly torn or corrupted on disk): the record parser must
//! report an error, never panic or read past the buffer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trackwire_ingest::log::record::decode_record;

fuzz_target!(|data: &[u8]| {
    let mut offset = 0;
    while offset < data.len() {
        match decode_record(data, offset) {
            Ok((record, next)) => {
                assert!(next > offset && next <= data.len());
                assert!(record.payload_offset + record.payload.len() <= data.len());
                offset = next;
            }
            Err(_) => break,
        }
    }
});
