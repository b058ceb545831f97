use super::Stage;
use crate::{EnrichedPoint, WorkoutSummary};

/// Below this speed the athlete is stopped: gpxpy's `stopped_speed_threshold` default of 1 km/h
/// (gpxpy/gpx.py, `get_moving_data`).
pub const STOPPED_SPEED_MPS: f64 = 1.0 / 3.6;

/// Moving time: activity steps whose speed is above the stopped threshold (pause events win over
/// speed, because a paused step is no activity step). Without positions, an activity step counts
/// as moving.
#[derive(Debug, Default, Clone)]
pub struct Moving {
    moving_ms: i64,
}

impl Moving {
    /// Moving time so far, ms.
    pub fn moving_ms(&self) -> i64 {
        self.moving_ms
    }
}

impl Stage for Moving {
    #[inline]
    fn on_sample(&mut self, point: &mut EnrichedPoint) {
        point.moving = point.active_step_ms > 0 && point.speed_mps.is_none_or(|s| f64::from(s) > STOPPED_SPEED_MPS);
        if point.moving {
            self.moving_ms += point.active_step_ms;
        }
    }

    fn summarize(&self, summary: &mut WorkoutSummary) {
        summary.moving_time_s = self.moving_ms as f64 / 1000.0;
    }
}
