use dashmap::DashMap;
use trackwire_codec::WorkoutId;

use crate::WorkoutSummary;

/// Live (not yet ended) workouts, updated by the shards and read concurrently by the API.
#[derive(Debug, Default)]
pub struct LiveWorkouts {
    map: DashMap<WorkoutId, WorkoutSummary>,
}

impl LiveWorkouts {
    pub fn update(&self, summary: &WorkoutSummary) {
        if summary.status.is_ended() {
            self.map.remove(&summary.workout_id);
        } else {
            self.map.insert(summary.workout_id, summary.clone());
        }
    }

    pub fn get(&self, id: &WorkoutId) -> Option<WorkoutSummary> {
        self.map.get(id).map(|s| s.clone())
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The oldest LSN a live workout was built from: the log must keep it to rebuild that
    /// workout's state on restart. None when nothing is live.
    pub fn oldest_needed_lsn(&self) -> Option<u64> {
        self.map.iter().map(|e| e.first_lsn).min()
    }
}
