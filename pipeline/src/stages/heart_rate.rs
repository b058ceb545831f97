use super::Stage;
use crate::{EnrichedPoint, WorkoutSummary};

/// Average (per sample) and maximum heart rate over the samples that carry one.
#[derive(Debug, Default, Clone)]
pub struct HeartRate {
    sum: u64,
    count: u64,
    max: u8,
}

impl Stage for HeartRate {
    #[inline]
    fn on_sample(&mut self, point: &mut EnrichedPoint) {
        if let Some(hr) = point.heart_rate_bpm {
            self.sum += u64::from(hr);
            self.count += 1;
            self.max = self.max.max(hr);
        }
    }

    fn summarize(&self, summary: &mut WorkoutSummary) {
        if self.count > 0 {
            summary.heart_rate_avg_bpm = Some(self.sum as f64 / self.count as f64);
            summary.heart_rate_max_bpm = Some(self.max);
        }
    }
}
