//! Untrusted bytes from `POST /api/v1/uploads`: the gzip expander and the GPX, TCX and FIT
//! importers must never panic, and whatever they accept must split into wire batches the pipeline
//! processes without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trackwire_codec::import::{Packed, gunzip, import_bytes};
use trackwire_codec::{WorkoutId, encode_batch};

fuzz_target!(|data: &[u8]| {
    let expanded;
    let file = if data.starts_with(&[0x1f, 0x8b]) {
        match gunzip(data, Packed::File, 1 << 20) {
            Ok(bytes) => {
                expanded = bytes;
                &expanded[..]
            }
            Err(_) => return,
        }
    } else {
        data
    };
    if let Ok(imported) = import_bytes(file) {
        let mut core = trackwire_pipeline::ShardCore::default();
        for (lsn, batch) in imported.to_batches(WorkoutId([7; 16]), "fuzz", "fuzz", 64).iter().enumerate() {
            let _ = core.process(lsn as u64 + 1, &encode_batch(batch));
        }
    }
});
