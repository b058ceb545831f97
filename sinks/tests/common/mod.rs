#![allow(dead_code)]
use trackwire_codec::{BatchData, Sample, Sport, WorkoutId, encode_batch};
use trackwire_pipeline::{ShardCore, ShardOutput};

/// A batch of `n` samples one second apart starting at `start_ms`.
pub fn batch(workout: u8, seq: u64, start_ms: i64, n: u32) -> Vec<u8> {
    batch_at(workout, seq, start_ms, &(0..n).map(|i| i * 1000).collect::<Vec<_>>())
}

/// A batch with one sample at each of `offsets_ms` after `start_ms`.
pub fn batch_at(workout: u8, seq: u64, start_ms: i64, offsets_ms: &[u32]) -> Vec<u8> {
    encode_batch(&BatchData {
        device_id: "d".into(),
        user_id: "u".into(),
        workout_id: WorkoutId([workout; 16]),
        sport: Sport::Cycling,
        seq,
        base_time_ms: start_ms,
        samples: offsets_ms
            .iter()
            .enumerate()
            .map(|(i, t)| Sample::new(*t, 470_000_000 + i as i32 * 50, 80_000_000, 0, 100, 80, 200, 30, 0))
            .collect(),
        ..BatchData::default()
    })
}

/// Runs records through a single-threaded core: the model of what the pipeline produces.
pub fn outputs(records: &[(u64, Vec<u8>)]) -> Vec<ShardOutput> {
    let mut core = ShardCore::default();
    records.iter().map(|(lsn, b)| core.process(*lsn, b)).collect()
}
