use super::{Stage, untimed};
use crate::{EnrichedPoint, WorkoutSummary};

/// Below this speed the athlete is stopped: gpxpy's `stopped_speed_threshold` default of 1 km/h
/// (gpxpy/gpx.py, `get_moving_data`).
pub const STOPPED_SPEED_MPS: f64 = 1.0 / 3.6;

/// Moving time: steps whose speed is above the stopped threshold, never while the device reported
/// a pause (pause events win over speed). Without positions, a step counts as moving unless paused.
#[derive(Debug, Default, Clone)]
pub struct Moving {
    last_ms: Option<i64>,
    moving_ms: i64,
}

impl Stage for Moving {
    #[inline]
    fn on_sample(&mut self, point: &mut EnrichedPoint) {
        if untimed(point) || point.time_out_of_order {
            return;
        }
        let moving =
            !point.paused && !point.after_pause && point.speed_mps.is_none_or(|s| f64::from(s) > STOPPED_SPEED_MPS);
        if let Some(last) = self.last_ms
            && moving
        {
            self.moving_ms += point.time_ms - last;
        }
        point.moving = moving && self.last_ms.is_some();
        self.last_ms = Some(point.time_ms);
    }

    fn summarize(&self, summary: &mut WorkoutSummary) {
        summary.moving_time_s = self.moving_ms as f64 / 1000.0;
    }
}
