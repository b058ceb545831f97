//! Enrichment stages. Each is a small sans-IO unit that sees every sample of one workout in time
//! order, may fill columns of the [`EnrichedPoint`], and contributes to the [`WorkoutSummary`].

mod distance;
mod heart_rate;
mod timing;

pub use distance::Distance;
pub use heart_rate::HeartRate;
pub use timing::Timing;

use crate::{EnrichedPoint, WorkoutSummary};

/// One enrichment step. Implementations keep per-workout state in `self`.
pub trait Stage: Default + Send {
    /// Sees one sample (already decoded into `point`) in time order; may fill its columns.
    fn on_sample(&mut self, point: &mut EnrichedPoint);
    /// Writes this stage's totals into the summary.
    fn summarize(&self, summary: &mut WorkoutSummary);
}

/// All stages of a workout, called in order with static dispatch (no virtual calls per sample).
#[derive(Debug, Default, Clone)]
pub struct Stages {
    pub timing: Timing,
    pub distance: Distance,
    pub heart_rate: HeartRate,
}

impl Stages {
    #[inline]
    pub fn on_sample(&mut self, point: &mut EnrichedPoint) {
        self.timing.on_sample(point);
        self.distance.on_sample(point);
        self.heart_rate.on_sample(point);
    }

    pub fn summarize(&self, summary: &mut WorkoutSummary) {
        self.timing.summarize(summary);
        self.distance.summarize(summary);
        self.heart_rate.summarize(summary);
    }
}
