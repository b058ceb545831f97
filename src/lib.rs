//! The `trackwire` binary's library: the validated configuration, the data path every role runs,
//! the roles themselves (so tests can start them in-process), offline processing of imported
//! files, the conformance report against recorded traces, and logging.

pub mod config;
pub mod conformance;
pub mod data_path;
mod front;
mod fronts;
pub mod launch;
pub mod logging;
pub mod otlp;
pub mod serve;
mod single;
pub mod stores;
pub mod surfaces;
pub mod topics;
mod worker;

use trackwire_codec::{BatchData, encode_batch, import};
use trackwire_pipeline::{AthleteProfile, ShardCore, WorkoutSummary};

/// Runs a file's batches through the pipeline core, exactly as the server would, for an athlete
/// with the profile the file carries (if any).
pub fn offline_summary(batches: &[BatchData], profile: Option<&import::AthleteProfile>) -> Option<WorkoutSummary> {
    let mut core = ShardCore::default();
    if let (Some(profile), Some(first)) = (profile, batches.first()) {
        core.set_profile(&first.user_id, athlete(profile));
    }
    let mut last = None;
    for (i, batch) in batches.iter().enumerate() {
        let out = core.process(i as u64 + 1, &encode_batch(batch));
        last = out.summary.or(last);
    }
    last
}

/// The pipeline's view of a profile read from a file.
pub fn athlete(p: &import::AthleteProfile) -> AthleteProfile {
    AthleteProfile {
        weight_kg: p.weight_kg,
        age_years: p.age_years,
        male: p.male,
        hr_max_bpm: p.hr_max,
        hr_rest_bpm: p.hr_rest,
    }
}
