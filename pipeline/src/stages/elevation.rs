use super::Stage;
use crate::{EnrichedPoint, WorkoutSummary};

/// Altitude must move this far from the last turning point to count as gain or loss:
/// GoldenCheetah's default hysteresis of 3.0 m (`BasicRideMetrics.cpp`, `ElevationGain`).
pub const HYSTERESIS_M: f64 = 3.0;

/// Elevation gain and loss with hysteresis, so GPS/barometer noise does not add up.
#[derive(Debug, Default, Clone)]
pub struct Elevation {
    anchor: Option<f64>,
    gain: f64,
    loss: f64,
}

impl Stage for Elevation {
    #[inline]
    fn on_sample(&mut self, point: &mut EnrichedPoint) {
        let Some(alt) = point.altitude_m.map(f64::from) else { return };
        let anchor = *self.anchor.get_or_insert(alt);
        if alt > anchor + HYSTERESIS_M {
            self.gain += alt - anchor;
            self.anchor = Some(alt);
        } else if alt < anchor - HYSTERESIS_M {
            self.loss += anchor - alt;
            self.anchor = Some(alt);
        }
    }

    fn summarize(&self, summary: &mut WorkoutSummary) {
        if self.anchor.is_some() {
            summary.elevation_gain_m = Some(self.gain);
            summary.elevation_loss_m = Some(self.loss);
        }
    }
}
