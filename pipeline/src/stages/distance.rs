use trackwire_codec::Sport;

use super::cleaning::max_speed_mps;
use super::{Stage, untimed};
use crate::geodesy::LocalDistance;
use crate::{EnrichedPoint, WorkoutSummary};

/// Shortest step that counts towards the distance, m: a fix closer than this to the last counted
/// one waits until the track has moved that far. GPS error wanders a few centimetres a second
/// (a slowly varying bias, not white noise), and at walking pace that wander, added sideways to
/// every 1 s step, lengthens the track by ~1 % (σ²/2v² per step); measured over steps of
/// several metres the same wander adds a fraction of that, while the chord lost on a bend of
/// that length is ~0.04 %. Traccar's `filter.distance` drops fixes closer than a set distance to
/// the previous one for the same reason. 3 m is under the 4.9 m (95 %) accuracy of consumer GPS
/// (GPS.gov, "GPS Accuracy"), so at running pace and faster nearly every step counts alone.
pub const MIN_COUNTED_STEP_M: f64 = 3.0;

/// Cumulative WGS84 distance over valid fixes, not counting paused stretches, and the speed of
/// each step. The distance grows by steps of at least [`MIN_COUNTED_STEP_M`]; a point between
/// them carries the distance to the last counted fix plus how far it has come since (never
/// less than the point before), so the cumulative distance never decreases.
#[derive(Debug, Clone)]
pub struct Distance {
    /// The last valid fix (time, lat, lon), kept across a pause for the resume's chord.
    last_fix: Option<(i64, f64, f64)>,
    /// Anchored while the track runs on from `last_fix`; any other state means a pause lies
    /// between `last_fix` and the next fix: no step, no speed over it.
    track: Track,
    /// How far the farthest fix since the anchor has been from it.
    beyond_anchor_m: f64,
    total_m: f64,
    max_speed: Option<f64>,
    /// The sport's fastest plausible speed ([`max_speed_mps`]), for the chord after a resume.
    plausible_mps: f32,
    geodesy: LocalDistance,
}

/// Where the counted track stands.
#[derive(Debug, Clone, Copy)]
enum Track {
    /// No fix yet, or paused: the next fix starts the track.
    Broken,
    /// Resumed at this instant and no fix since: the next fix may count the way from the last fix
    /// before the pause.
    Resumed { at_ms: i64 },
    /// The last fix whose step was counted.
    Anchored { lat: f64, lon: f64 },
}

impl Distance {
    pub fn new(sport: Sport) -> Self {
        Distance {
            last_fix: None,
            track: Track::Broken,
            beyond_anchor_m: 0.0,
            total_m: 0.0,
            max_speed: None,
            plausible_mps: max_speed_mps(sport) as f32,
            geodesy: LocalDistance::default(),
        }
    }

    /// Distance counted so far, metres.
    pub fn distance_m(&self) -> f64 {
        self.total_m + self.beyond_anchor_m
    }

    /// The way from the last fix before a pause to the first fix after the resume counts when it
    /// could have been covered since the resume: the receiver lost its fix during the stop and
    /// found it again on the move (a ride out of a car park). When it could not (the COROS PACE 2
    /// trace resumes 3 s before its first fix, 405 m away: the watch was carried while paused),
    /// it does not.
    fn chord_after_resume_m(&mut self, time_ms: i64, lat: f64, lon: f64) -> f64 {
        let (Track::Resumed { at_ms: resumed_ms }, Some((_, plat, plon))) = (self.track, self.last_fix) else {
            return 0.0;
        };
        let chord = self.geodesy.distance_m(plat, plon, lat, lon);
        let since_resume_s = (time_ms - resumed_ms).max(0) as f64 / 1000.0;
        if chord >= MIN_COUNTED_STEP_M && chord <= f64::from(self.plausible_mps) * since_resume_s { chord } else { 0.0 }
    }
}

impl Stage for Distance {
    #[inline]
    fn on_sample(&mut self, point: &mut EnrichedPoint) {
        // A pause breaks the track even when the samples around it carry no position; the way
        // covered since the last counted fix before the pause is kept.
        if point.paused || point.after_pause {
            self.total_m += std::mem::take(&mut self.beyond_anchor_m);
            self.track = match point.after_pause && !untimed(point) {
                true => Track::Resumed { at_ms: point.time_ms },
                false => Track::Broken,
            };
        }
        if let (Some(lat), Some(lon), false) = (point.lat_deg, point.lon_deg, point.time_out_of_order) {
            // The step from the last fix: its speed, and (when the last fix was the one counted,
            // as at running pace and faster) the distance from the anchor too.
            let mut step_from = None;
            if let (Some((t, plat, plon)), Track::Anchored { .. }) = (self.last_fix, self.track) {
                let step = match point.step_from_accepted {
                    // Cleaning measured from the same fix: the same step, without measuring again.
                    Some((from_lat, from_lon, metres_sq)) if from_lat == plat && from_lon == plon => metres_sq.sqrt(),
                    _ => self.geodesy.distance_m(plat, plon, lat, lon),
                };
                step_from = Some((plat, plon, step));
                let dt_ms = point.time_ms - t;
                if dt_ms > 0 && !untimed(point) {
                    let speed = step * 1000.0 / dt_ms as f64;
                    point.speed_mps = Some(speed as f32);
                    self.max_speed = Some(self.max_speed.map_or(speed, |m| m.max(speed)));
                }
            }
            match self.track {
                Track::Anchored { lat: alat, lon: alon } => {
                    let from_anchor = match step_from {
                        Some((plat, plon, step)) if plat == alat && plon == alon => step,
                        _ => self.geodesy.distance_m(alat, alon, lat, lon),
                    };
                    if from_anchor >= MIN_COUNTED_STEP_M {
                        self.total_m += from_anchor.max(self.beyond_anchor_m);
                        self.beyond_anchor_m = 0.0;
                        self.track = Track::Anchored { lat, lon };
                    } else {
                        self.beyond_anchor_m = self.beyond_anchor_m.max(from_anchor);
                    }
                }
                Track::Broken | Track::Resumed { .. } => {
                    self.total_m += self.chord_after_resume_m(point.time_ms, lat, lon);
                    self.track = Track::Anchored { lat, lon };
                }
            }
            self.last_fix = Some((point.time_ms, lat, lon));
        }
        point.distance_m = self.distance_m();
    }

    fn summarize(&self, summary: &mut WorkoutSummary) {
        summary.distance_m = self.distance_m();
        summary.max_speed_mps = self.max_speed;
    }
}
