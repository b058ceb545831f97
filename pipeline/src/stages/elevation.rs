use trackwire_codec::SampleFlags;

use super::Stage;
use crate::{EnrichedPoint, WorkoutSummary};

/// GPS altitude must move this far from the last turning point to count as gain or loss:
/// GoldenCheetah's default hysteresis of 3.0 m (`BasicRideMetrics.cpp`, `ElevationGain`). GPS
/// altitude wanders by metres from one fix to the next.
pub const HYSTERESIS_M: f64 = 3.0;

/// The same for barometric altitude: 2.25 m. A barometric sensor's relative accuracy is ±1 m
/// (Bosch BMP280 datasheet: ±0.12 hPa, "equivalent to ±1 m"), so a reading that swings across
/// that whole band (2 m) once must not count; FIT records altitude in 0.2 m steps, and 2.25 sits
/// between two of them, so quantised readings never land on it. A barometer's small real climbs
/// are above its noise, and devices and services count them: Strava smooths barometric altitude
/// less than GPS-derived elevation (Strava support, "Elevation Gain"). Measured over the seven
/// barometric recordings of `docs/conformance.md`, 2.25 m gives the smallest mean and worst error
/// of every threshold from 1 to 3 m in 0.25 m steps (ARCHITECTURE.md, "Elevation per altitude
/// source").
pub const BAROMETRIC_HYSTERESIS_M: f64 = 2.25;

/// Elevation gain and loss with hysteresis, so GPS/barometer noise does not add up.
///
/// Barometric altitude wins: once a sample flags [`SampleFlags::BarometricAltitude`], GPS
/// altitudes of the same workout are ignored, because the two sources disagree by tens of metres
/// and every switch between them would count as a climb. Each source has its own threshold.
/// A sample whose altitude counts carries it in [`EnrichedPoint::counted_altitude_m`], so
/// grade is measured on the same series.
#[derive(Debug, Clone)]
pub struct Elevation {
    // f32: a live workout's state is budgeted to the byte (`tests/state_size.rs`).
    gps_hysteresis_m: f32,
    barometric_hysteresis_m: f32,
    anchor: Option<f64>,
    barometric: bool,
    gain: f64,
    loss: f64,
}

impl Default for Elevation {
    fn default() -> Self {
        Elevation {
            barometric_hysteresis_m: BAROMETRIC_HYSTERESIS_M as f32,
            ..Elevation::with_hysteresis(HYSTERESIS_M)
        }
    }
}

impl Elevation {
    /// Gain so far, metres (None before the first altitude).
    pub fn gain_m(&self) -> Option<f64> {
        self.anchor.is_some().then_some(self.gain)
    }

    /// A stage with one other threshold for both sources: to reproduce a device's own algorithm
    /// in a comparison.
    pub fn with_hysteresis(hysteresis_m: f64) -> Self {
        Elevation {
            gps_hysteresis_m: hysteresis_m as f32,
            barometric_hysteresis_m: hysteresis_m as f32,
            anchor: None,
            barometric: false,
            gain: 0.0,
            loss: 0.0,
        }
    }

    fn hysteresis_m(&self) -> f64 {
        f64::from(if self.barometric { self.barometric_hysteresis_m } else { self.gps_hysteresis_m })
    }

    /// Feeds one altitude reading (metres) of the source counted so far.
    #[inline]
    pub fn add(&mut self, alt: f64) {
        let anchor = *self.anchor.get_or_insert(alt);
        let hysteresis_m = self.hysteresis_m();
        if alt > anchor + hysteresis_m {
            self.gain += alt - anchor;
            self.anchor = Some(alt);
        } else if alt < anchor - hysteresis_m {
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
        point.counted_altitude_m = point.altitude_m;
        self.add(alt);
    }

    fn summarize(&self, summary: &mut WorkoutSummary) {
        if self.anchor.is_some() {
            summary.elevation_gain_m = Some(self.gain);
            summary.elevation_loss_m = Some(self.loss);
        }
    }
}
