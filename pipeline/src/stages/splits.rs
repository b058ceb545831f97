use serde::{Deserialize, Serialize};

use super::Stage;
use crate::{EnrichedPoint, WorkoutSummary};

/// One kilometre of the workout (the last one may be shorter).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Split {
    /// 1-based kilometre number.
    pub km: u32,
    pub distance_m: f64,
    /// Elapsed and moving time spent on this kilometre, seconds.
    pub elapsed_s: f64,
    pub moving_s: f64,
    /// Moving pace, seconds per km (None when no moving time).
    pub pace_s_per_km: Option<f64>,
    pub heart_rate_avg_bpm: Option<f64>,
}

/// Per-kilometre splits, Strava-style: cut where the cumulative distance crosses each full km.
#[derive(Debug, Clone, Default)]
pub struct Splits {
    done: Vec<Split>,
    start_distance: f64,
    start_elapsed: f64,
    moving_ms: i64,
    hr_sum: u64,
    hr_count: u64,
    last_elapsed: f64,
    last_distance: f64,
}

impl Splits {
    fn current(&self, km: u32, end_distance: f64, end_elapsed: f64) -> Split {
        let moving_s = self.moving_ms as f64 / 1000.0;
        let distance_m = end_distance - self.start_distance;
        Split {
            km,
            distance_m,
            elapsed_s: end_elapsed - self.start_elapsed,
            moving_s,
            pace_s_per_km: (moving_s > 0.0 && distance_m > 0.0).then(|| moving_s / distance_m * 1000.0),
            heart_rate_avg_bpm: (self.hr_count > 0).then(|| self.hr_sum as f64 / self.hr_count as f64),
        }
    }
}

impl Stage for Splits {
    #[inline]
    fn on_sample(&mut self, point: &mut EnrichedPoint) {
        if point.time_out_of_order {
            return;
        }
        if point.moving {
            self.moving_ms += point.active_step_ms;
        }
        if let Some(hr) = point.heart_rate_bpm {
            self.hr_sum += u64::from(hr);
            self.hr_count += 1;
        }
        self.last_elapsed = point.elapsed_s;
        self.last_distance = point.distance_m;
        while point.distance_m >= (self.done.len() + 1) as f64 * 1000.0 {
            let boundary = (self.done.len() + 1) as f64 * 1000.0;
            let split = self.current(self.done.len() as u32 + 1, boundary, point.elapsed_s);
            self.done.push(split);
            *self = Splits {
                done: std::mem::take(&mut self.done),
                start_distance: boundary,
                start_elapsed: point.elapsed_s,
                last_elapsed: point.elapsed_s,
                last_distance: point.distance_m,
                ..Splits::default()
            };
        }
    }

    fn summarize(&self, summary: &mut WorkoutSummary) {
        let mut splits = self.done.clone();
        if self.last_distance > self.start_distance {
            splits.push(self.current(self.done.len() as u32 + 1, self.last_distance, self.last_elapsed));
        }
        summary.splits = splits;
    }
}
