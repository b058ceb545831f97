use super::Stage;
use crate::{EnrichedPoint, WorkoutSummary};

/// Grade is measured over at least this much distance: over a single 1 s step, altitude
/// quantisation (often 0.2 m) and GPS jitter would swing it by tens of percent.
pub const GRADE_WINDOW_M: f64 = 50.0;

/// Window entries are kept at least this far apart, so the window holds at most
/// `GRADE_WINDOW_M / GRADE_STEP_M + 3` of them at any speed: a fixed inline ring, no heap per
/// live workout (a walker's 50 m would otherwise be ~40 samples, a growing buffer).
const GRADE_STEP_M: f64 = 5.0;
const SLOTS: usize = 16;

/// Grade (rise over run, percent) over the last ≥ 50 m of distance, per sample, on the altitude
/// series the elevation stage counts (one source per workout, barometric when there is one).
#[derive(Debug, Clone, Default)]
pub struct Grade {
    /// (cumulative distance, altitude) of recent samples with altitude, ≥ 5 m apart, oldest at `start`.
    ring: [(f64, f64); SLOTS],
    start: usize,
    len: usize,
}

impl Grade {
    fn at(&self, i: usize) -> (f64, f64) {
        self.ring[(self.start + i) % SLOTS]
    }

    fn pop_front(&mut self) {
        self.start = (self.start + 1) % SLOTS;
        self.len -= 1;
    }
}

impl Stage for Grade {
    #[inline]
    fn on_sample(&mut self, point: &mut EnrichedPoint) {
        if point.after_pause {
            self.len = 0;
        }
        let Some(alt) = point.counted_altitude_m.map(f64::from) else { return };
        if self.len == 0 || point.distance_m - self.at(self.len - 1).0 >= GRADE_STEP_M {
            if self.len == SLOTS {
                self.pop_front();
            }
            self.ring[(self.start + self.len) % SLOTS] = (point.distance_m, alt);
            self.len += 1;
        }
        while self.len > 2 && point.distance_m - self.at(1).0 >= GRADE_WINDOW_M {
            self.pop_front();
        }
        let (d0, a0) = self.at(0);
        let run = point.distance_m - d0;
        if run >= GRADE_WINDOW_M {
            point.grade_pct = Some(((alt - a0) / run * 100.0) as f32);
        }
    }

    fn summarize(&self, _summary: &mut WorkoutSummary) {}
}
