//! Per-sample cost of the hot path, on one core:
//! - `verify`: FlatBuffers verification of a 1,000-sample batch (`decode_batch`);
//! - `enrich`: the whole pipeline core on it (`ShardCore::process`: verify, decode, state machine,
//!   every enrichment stage, summary and events).
//!
//! Target (DESIGN §9): enrichment ≤ 60 ns per sample per core.
//! Run: `cargo bench -p trackwire-benches` (criterion prints time per batch and elements/s).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use trackwire_codec::{BatchData, DecodeLimits, Sample, Sport, WorkoutId, decode_batch, encode_batch};
use trackwire_pipeline::{AthleteProfile, ShardCore};

/// The server's allocator (src/main.rs), so allocation costs are the ones production pays.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SAMPLES: u32 = 1000;

/// A realistic 1 Hz run: ~3 m/s with GPS jitter, rolling altitude, heart rate and cadence.
fn batches(count: u64) -> Vec<Vec<u8>> {
    (0..count)
        .map(|seq| {
            let samples = (0..SAMPLES)
                .map(|i| {
                    let n = (seq * u64::from(SAMPLES) + u64::from(i)) as i32;
                    let jitter = (n.wrapping_mul(2_654_435_761u32 as i32) >> 26) % 20;
                    Sample::new(
                        i * 1000,
                        473_000_000 + n * 270 + jitter,
                        85_000_000 + n * 100 - jitter,
                        40_000 + ((n % 600) - 300).abs() * 10,
                        130 + (n % 40) as u8,
                        85,
                        u16::MAX,
                        40,
                        0,
                    )
                })
                .collect();
            encode_batch(&BatchData {
                device_id: "bench".into(),
                user_id: "athlete".into(),
                workout_id: WorkoutId([42; 16]),
                sport: Sport::Running,
                seq,
                base_time_ms: 1_700_000_000_000 + seq as i64 * i64::from(SAMPLES) * 1000,
                samples,
                ..BatchData::default()
            })
        })
        .collect()
}

fn pipeline(c: &mut Criterion) {
    let input = batches(64);
    let mut group = c.benchmark_group("per_batch_of_1000_samples");
    group.throughput(Throughput::Elements(u64::from(SAMPLES)));
    group.bench_function("verify", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % input.len();
            decode_batch(&input[i], &DecodeLimits::default()).map(|v| v.samples().len())
        })
    });
    group.finish();
    // A fresh core per iteration runs one 64,000-sample workout start to finish, so time always
    // moves forward and every stage does its real work.
    let mut group = c.benchmark_group("per_workout_of_64000_samples");
    group.throughput(Throughput::Elements(u64::from(SAMPLES) * input.len() as u64));
    group.bench_function("enrich", |b| {
        let profile = AthleteProfile {
            weight_kg: Some(70.0),
            age_years: Some(35.0),
            male: Some(true),
            hr_max_bpm: Some(185.0),
            hr_rest_bpm: Some(55.0),
        };
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
