use dashmap::DashMap;
use trackwire_codec::WorkoutId;

use crate::WorkoutSummary;

/// The newest summary of every workout the pipeline is working on, updated by the shards and read
/// concurrently by the API. Ended workouts stay until the read store has committed them (see
/// [`LiveWorkouts::prune_ended_through`]), so the API never loses sight of a workout in between.
#[derive(Debug, Default)]
pub struct LiveWorkouts {
    map: DashMap<WorkoutId, WorkoutSummary>,
}

impl LiveWorkouts {
    pub fn update(&self, summary: &WorkoutSummary) {
        self.map.insert(summary.workout_id, summary.clone());
    }

    pub fn get(&self, id: &WorkoutId) -> Option<WorkoutSummary> {
        self.map.get(id).map(|s| s.clone())
    }

    /// Workouts in progress (not ended).
    pub fn in_progress(&self) -> usize {
        self.map.iter().filter(|e| !e.status.is_ended()).count()
    }

    /// Forgets ended workouts whose final state is committed at or below `lsn` elsewhere.
    pub fn prune_ended_through(&self, lsn: u64) {
        self.map.retain(|_, s| !(s.status.is_ended() && s.last_lsn <= lsn));
    }

    /// The oldest LSN a workout in progress was built from: the log must keep it to rebuild that
    /// workout's state on restart. None when nothing is in progress.
    pub fn oldest_needed_lsn(&self) -> Option<u64> {
        self.map.iter().filter(|e| !e.status.is_ended()).map(|e| e.first_lsn).min()
    }
}
