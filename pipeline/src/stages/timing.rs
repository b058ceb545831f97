use super::{Stage, untimed};
use crate::{EnrichedPoint, WorkoutSummary};

/// Elapsed time since the first sample, and timer time: the activity steps (time between
/// consecutive samples unless the device was paused in between).
#[derive(Debug, Default, Clone)]
pub struct Timing {
    first_ms: Option<i64>,
    last_ms: Option<i64>,
    timer_ms: i64,
}

impl Stage for Timing {
    #[inline]
    fn on_sample(&mut self, point: &mut EnrichedPoint) {
        if untimed(point) {
            return;
        }
        let first = *self.first_ms.get_or_insert(point.time_ms);
        if point.time_out_of_order {
            point.elapsed_s = (self.last_ms.unwrap_or(first) - first) as f64 / 1000.0;
            return;
        }
        self.timer_ms += point.active_step_ms;
        self.last_ms = Some(point.time_ms);
        point.elapsed_s = (point.time_ms - first) as f64 * 1e-3;
    }

    fn summarize(&self, summary: &mut WorkoutSummary) {
        if let (Some(first), Some(last)) = (self.first_ms, self.last_ms) {
            summary.start_time_ms = summary.start_time_ms.min(first);
            summary.end_time_ms = summary.end_time_ms.max(last);
        }
        summary.elapsed_s = (summary.end_time_ms - summary.start_time_ms).max(0) as f64 / 1000.0;
        summary.timer_s = self.timer_ms as f64 / 1000.0;
    }
}
