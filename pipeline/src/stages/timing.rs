use super::Stage;
use crate::{EnrichedPoint, WorkoutSummary};

/// Elapsed time since the first sample, and timer time (elapsed minus device-reported pauses).
#[derive(Debug, Default, Clone)]
pub struct Timing {
    first_ms: Option<i64>,
    last_ms: i64,
    /// Milliseconds between consecutive samples while not paused.
    timer_ms: i64,
}

impl Stage for Timing {
    #[inline]
    fn on_sample(&mut self, point: &mut EnrichedPoint) {
        let first = *self.first_ms.get_or_insert(point.time_ms);
        if point.time_out_of_order {
            point.elapsed_s = (self.last_ms - first) as f64 / 1000.0;
            return;
        }
        if !point.paused && self.last_ms > 0 && point.time_ms > self.last_ms {
            self.timer_ms += point.time_ms - self.last_ms;
        }
        self.last_ms = point.time_ms;
        point.elapsed_s = (point.time_ms - first) as f64 / 1000.0;
    }

    fn summarize(&self, summary: &mut WorkoutSummary) {
        if let Some(first) = self.first_ms {
            summary.start_time_ms = summary.start_time_ms.min(first);
            summary.end_time_ms = summary.end_time_ms.max(self.last_ms);
        }
        summary.elapsed_s = (summary.end_time_ms - summary.start_time_ms).max(0) as f64 / 1000.0;
        summary.timer_s = self.timer_ms as f64 / 1000.0;
    }
}
