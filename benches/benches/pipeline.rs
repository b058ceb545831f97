//! Per-sample cost of the hot path, on one core:
//! - `verify`: FlatBuffers verification of a 1,000-sample batch (`decode_batch`);
//! - `verify_and_decode`: the same, then every field of every sample read;
//! - `enrich`: the whole pipeline core on it (`ShardCore::process`: verify, decode, state machine,
//!   every enrichment stage, summary and events).
//!
//! Target (BENCHMARKS.md): enrichment ≤ 60 ns per sample per core.
//! Run: `cargo bench -p trackwire-benches` (criterion prints time per batch and elements/s).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use trackwire_benches::{SAMPLES, athlete, run_batches};
use trackwire_codec::{DecodeLimits, decode_batch};
use trackwire_pipeline::ShardCore;

/// The server's allocator (src/main.rs), so allocation costs are the ones production pays.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn pipeline(c: &mut Criterion) {
    let input = run_batches(64);
    let mut group = c.benchmark_group("per_batch_of_1000_samples");
    group.throughput(Throughput::Elements(u64::from(SAMPLES)));
    group.bench_function("verify", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % input.len();
            decode_batch(&input[i], &DecodeLimits::default()).map(|v| v.samples().len())
        })
    });
    // Verification plus reading every field of every sample: what decoding costs before the
    // pipeline builds its points.
    group.bench_function("verify_and_decode", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % input.len();
            let view = decode_batch(&input[i], &DecodeLimits::default()).expect("valid batch");
            view.samples().iter().fold(0i64, |acc, s| {
                acc + i64::from(s.time_offset_ms())
                    + i64::from(s.lat_e7())
                    + i64::from(s.lon_e7())
                    + i64::from(s.altitude_cm())
                    + i64::from(s.heart_rate_bpm())
                    + i64::from(s.cadence_rpm())
            })
        })
    });
    group.finish();
    // A fresh core per iteration runs one 64,000-sample workout start to finish, so time always
    // moves forward and every stage does its real work.
    let mut group = c.benchmark_group("per_workout_of_64000_samples");
    group.throughput(Throughput::Elements(u64::from(SAMPLES) * input.len() as u64));
    group.bench_function("enrich", |b| {
        let profile = athlete();
        b.iter(|| {
            let mut core = ShardCore::default();
            core.set_profile("athlete", profile.clone());
            input.iter().enumerate().map(|(i, batch)| core.process(i as u64 + 1, batch).points.len()).sum::<usize>()
        })
    });
    group.finish();
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
