//! How far back nothing needs the log any more: what the embedded log may delete, and what a
//! raw-topic reader may stop remembering.

use std::sync::atomic::{AtomicU64, Ordering};

use trackwire_pipeline::LiveWorkouts;
use trackwire_sinks::SinkProgress;

use super::Status;

impl Status {
    /// The highest log position nothing needs any more: every sink has committed it, the
    /// pipeline has been through it, and every workout not stored as ended begins after it.
    pub fn released_through(&self) -> u64 {
        released_through(&self.fed_through, &self.sinks, &self.live)
    }
}

/// The highest log position nothing needs any more: every sink has committed it, the pipeline
/// has been through it, and every workout not stored as ended begins after it. A restart's
/// replay could start just past it and rebuild the same state.
///
/// The pipeline bound matters while a replay runs: the sinks then hold far more than the
/// pipeline has gone over again, and the live view knows only the workouts rebuilt so far.
fn released_through(fed_through: &AtomicU64, sinks: &[std::sync::Arc<SinkProgress>], live: &LiveWorkouts) -> u64 {
    // Read before the live view: a shard updates the view before the sinks are fed its output,
    // so every workout begun up to here is in the view read next.
    let fed = fed_through.load(Ordering::Acquire);
    let committed = sinks.iter().map(|s| s.checkpoint.load(Ordering::Acquire)).min().unwrap_or(0);
    let needed = live.oldest_needed_lsn().map_or(u64::MAX, |lsn| lsn - 1);
    fed.min(committed).min(needed)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use trackwire_codec::{BatchData, Sample, Sport, WorkoutId, encode_batch};
    use trackwire_pipeline::ShardCore;

    use super::*;

    fn sink(checkpoint: u64) -> Arc<SinkProgress> {
        Arc::new(SinkProgress {
            name: "lake",
            checkpoint: AtomicU64::new(checkpoint),
            errors: AtomicU64::new(0),
            last_error: Default::default(),
            failing_since_ms: Default::default(),
        })
    }

    /// A workout's first batch, through a shard, in the live view as the pipeline puts it there.
    fn started(live: &LiveWorkouts, lsn: u64) {
        let batch = encode_batch(&BatchData {
            device_id: "watch".into(),
            user_id: "ada".into(),
            workout_id: WorkoutId([lsn as u8; 16]),
            sport: Sport::Running,
            base_time_ms: 1_700_000_000_000,
            samples: vec![Sample::new(0, 473_000_000, 85_000_000, 40_000, 120, 255, u16::MAX, 50, 0)],
            ..BatchData::default()
        });
        let out = ShardCore::default().process(lsn, &batch);
        live.update(out.summary.as_ref().expect("a first batch has a summary"));
    }

    #[test]
    fn what_the_sinks_committed_is_released_up_to_the_first_open_workout() {
        let live = LiveWorkouts::default();
        let sinks = [sink(40), sink(55)];
        assert_eq!(released_through(&AtomicU64::new(55), &sinks, &live), 40, "the slowest sink decides");
        started(&live, 30);
        assert_eq!(released_through(&AtomicU64::new(55), &sinks, &live), 29, "an open workout keeps its start");
    }

    /// A restart's sinks hold far more than the pipeline has replayed: the live view knows only
    /// the workouts replayed so far, so the workouts further on are not in it yet and nothing
    /// past what the pipeline has been through can be released.
    #[test]
    fn during_a_replay_nothing_past_what_the_pipeline_went_through_is_released() {
        let live = LiveWorkouts::default();
        let sinks = [sink(1_000)];
        assert_eq!(released_through(&AtomicU64::new(50), &sinks, &live), 50);
    }
}
