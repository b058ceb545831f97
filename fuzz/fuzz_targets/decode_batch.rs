//! Untrusted bytes from the network: the batch and ack decoders must never panic or read out of
//! bounds, and whatever they accept the pipeline must process without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trackwire_codec::{DecodeLimits, decode_ack, decode_batch};

fuzz_target!(|data: &[u8]| {
    let _ = decode_ack(data);
    if let Ok(batch) = decode_batch(data, &DecodeLimits::default()) {
        let _ = (batch.workout_id(), batch.device_id(), batch.samples().len(), batch.events().len());
        let mut core = trackwire_pipeline::ShardCore::default();
        let _ = core.process(1, data);
        let _ = core.process(2, data);
    }
});
