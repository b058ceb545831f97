//! Inputs shared by the benchmarks in `benches/`.

use trackwire_codec::{BatchData, Sample, Sport, WorkoutId, encode_batch};
use trackwire_pipeline::AthleteProfile;

/// Samples per generated batch.
pub const SAMPLES: u32 = 1000;

/// `count` encoded batches of a realistic 1 Hz run: ~3 m/s with GPS jitter, rolling altitude,
/// heart rate and cadence; one workout, seq 0, 1, 2, …
pub fn run_batches(count: u64) -> Vec<Vec<u8>> {
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

/// The athlete of the generated run: a full profile, so every stage (zones, TRIMP, Keytel
/// calories) does its real work.
pub fn athlete() -> AthleteProfile {
    AthleteProfile {
        weight_kg: Some(70.0),
        age_years: Some(35.0),
        male: Some(true),
        hr_max_bpm: Some(185.0),
        hr_rest_bpm: Some(55.0),
    }
}
