use trackwire_codec::SampleFlags;

use super::Stage;
use crate::{EnrichedPoint, WorkoutSummary};

/// Altitude must move this far from the last turning point to count as gain or loss:
/// GoldenCheetah's default hysteresis of 3.0 m (`BasicRideMetrics.cpp`, `ElevationGain`).
pub const HYSTERESIS_M: f64 = 3.0;

/// Elevation gain and loss with hysteresis, so GPS/barometer noise does not add up.
///
/// Barometric altitude wins: once a sample flags [`SampleFlags::BarometricAltitude`], GPS
/// altitudes of the same workout are ignored, because the two sources disagree by tens of metres
/// and every switch between them would count as a climb.
#[derive(Debug, Clone)]
pub struct Elevation {
    hysteresis_m: f64,
    anchor: Option<f64>,
    barometric: bool,
    gain: f64,
    loss: f64,
}

impl Default for Elevation {
    fn default() -> Self {
        Elevation::with_hysteresis(HYSTERESIS_M)
    }
}

impl Elevation {
    /// Gain so far, metres (None before the first altitude).
    pub fn gain_m(&self) -> Option<f64> {
        self.anchor.is_some().then_some(self.gain)
    }

    /// A stage with another threshold: to reproduce a device's own algorithm in a comparison.
    pub fn with_hysteresis(hysteresis_m: f64) -> Self {
        Elevation { hysteresis_m, anchor: None, barometric: false, gain: 0.0, loss: 0.0 }
    }

    /// Feeds one altitude reading (metres).
    #[inline]
    pub fn add(&mut self, alt: f64) {
        let anchor = *self.anchor.get_or_insert(alt);
        if alt > anchor + self.hysteresis_m {
            self.gain += alt - anchor;
            self.anchor = Some(alt);
        } else if alt < anchor - self.hysteresis_m {
            self.loss += anchor - alt;
            self.anchor = Some(alt);
        }
    }

    /// (gain, loss) so far, metres.
    pub fn totals(&self) -> (f64, f64) {
        (self.gain, self.loss)
    }
}

impl Stage for Elevation {
    #[inline]
    fn on_sample(&mut self, point: &mut EnrichedPoint) {
        let Some(alt) = point.altitude_m.map(f64::from) else { return };
        let barometric = point.flags & SampleFlags::BarometricAltitude.bits() != 0;
        if barometric && !self.barometric {
            self.barometric = true;
            self.anchor = None; // start over on the barometer's level
        } else if !barometric && self.barometric {
            return;
        }
        self.add(alt);
    }

    fn summarize(&self, summary: &mut WorkoutSummary) {
        if self.anchor.is_some() {
            summary.elevation_gain_m = Some(self.gain);
            summary.elevation_loss_m = Some(self.loss);
        }
    }
}
