//! Bytes read back from a log segment (possibly torn or corrupted on disk): the record parser must
//! report an error, never panic or read past the buffer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trackwire_ingest::log::record::{Format, decode_record};

fuzz_target!(|data: &[u8]| {
    // The first byte picks the segment format, as a segment's magic does.
    let Some((&format, data)) = data.split_first() else { return };
    let format = if format & 1 == 0 { Format::V1 } else { Format::V2 };
    let mut offset = 0;
    while offset < data.len() {
        match decode_record(data, offset, format) {
            Ok((record, next)) => {
                assert!(next > offset && next <= data.len());
                assert!(record.payload_offset + record.payload.len() <= data.len());
                offset = next;
            }
            Err(_) => break,
        }
    }
});
