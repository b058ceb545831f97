//! What the workspace-level tests share: batches as a device sends them, and the lake's rows.

use std::collections::HashMap;
use std::path::Path;

use arrow_array::{Array, StringArray};
use trackwire_codec::{BatchData, ControlEvent, ControlKind, Sample, Sport, WorkoutId, encode_batch};

pub const T0: i64 = 1_700_000_000_000;

/// Batch `seq` of a running workout of `user`: ten one-second samples, the last batch completing it.
pub fn batch(user: &str, workout: WorkoutId, seq: u64, last: bool) -> Vec<u8> {
    let samples = (0..10u32)
        .map(|i| Sample::new(i * 1000, 470_000_000 + i as i32 * 50, 80_000_000, 0, 120, 80, 200, 30, 0))
        .collect();
    let events = if last { vec![ControlEvent::new(9_000, ControlKind::Complete)] } else { Vec::new() };
    encode_batch(&BatchData {
        device_id: "d".into(),
        user_id: user.into(),
        workout_id: workout,
        sport: Sport::Running,
        seq,
        base_time_ms: T0 + seq as i64 * 10_000,
        samples,
        events,
        ..BatchData::default()
    })
}

/// Rows of the lake's `points` table under `lake`, per workout id.
pub fn lake_rows(lake: &Path) -> HashMap<String, usize> {
    let mut rows = HashMap::new();
    let mut dirs = vec![lake.join("points")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "parquet") {
                let file = std::fs::File::open(&path).unwrap();
                let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
                    .unwrap()
                    .build()
                    .unwrap();
                for batch in reader {
                    let batch = batch.unwrap();
                    let ids = batch.column_by_name("workout_id").unwrap();
                    let ids = ids.as_any().downcast_ref::<StringArray>().unwrap();
                    for i in 0..ids.len() {
                        *rows.entry(ids.value(i).to_owned()).or_default() += 1;
                    }
                }
            }
        }
    }
    rows
}
