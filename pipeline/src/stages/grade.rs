use std::collections::VecDeque;

use super::Stage;
use crate::{EnrichedPoint, WorkoutSummary};

/// Grade is measured over at least this much distance: over a single 1 s step, altitude
/// quantisation (often 0.2 m) and GPS jitter would swing it by tens of percent.
pub const GRADE_WINDOW_M: f64 = 50.0;

/// Grade (rise over run, percent) over the last ≥ 50 m of distance, per sample.
#[derive(Debug, Clone, Default)]
pub struct Grade {
    /// (cumulative distance, altitude) of recent samples with altitude.
    window: VecDeque<(f64, f64)>,
}

impl Stage for Grade {
    #[inline]
    fn on_sample(&mut self, point: &mut EnrichedPoint) {
        if point.after_pause {
            self.window.clear();
        }
        let Some(alt) = point.altitude_m.map(f64::from) else { return };
        self.window.push_back((point.distance_m, alt));
        while self.window.len() > 2 && point.distance_m - self.window[1].0 >= GRADE_WINDOW_M {
            self.window.pop_front();
        }
        let (d0, a0) = self.window[0];
        let run = point.distance_m - d0;
        if run >= GRADE_WINDOW_M {
            point.grade_pct = Some(((alt - a0) / run * 100.0) as f32);
        }
    }

    fn summarize(&self, _summary: &mut WorkoutSummary) {}
}
