//! The parts of the `trackwire` binary that its tests also use: offline processing of imported
//! files and the conformance report against recorded traces.

pub mod conformance;

use trackwire_codec::{BatchData, encode_batch};
use trackwire_pipeline::{ShardCore, WorkoutSummary};

/// Runs a file's batches through the pipeline core, exactly as the server would.
pub fn offline_summary(batches: &[BatchData]) -> Option<WorkoutSummary> {
    let mut core = ShardCore::default();
    let mut last = None;
    for (i, batch) in batches.iter().enumerate() {
        let out = core.process(i as u64 + 1, &encode_batch(batch));
        last = out.summary.or(last);
    }
    last
}
