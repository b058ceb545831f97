use super::{Stage, untimed};
use crate::geodesy::LocalDistance;
use crate::{EnrichedPoint, WorkoutSummary};

/// Cumulative WGS84 distance over consecutive valid fixes, not counting paused stretches, and the
/// speed of each step.
#[derive(Debug, Default, Clone)]
pub struct Distance {
    last_fix: Option<(i64, f64, f64)>,
    total_m: f64,
    max_speed: Option<f64>,
    geodesy: LocalDistance,
}

impl Stage for Distance {
    #[inline]
    fn on_sample(&mut self, point: &mut EnrichedPoint) {
        // A pause breaks the track even when the samples around it carry no position: the way
        // from the last fix before the pause to the first fix after it was not covered in the
        // activity (the COROS PACE 2 trace resumes 3 s before its first fix, 405 m away).
        if point.paused || point.after_pause {
            self.last_fix = None;
        }
        if let (Some(lat), Some(lon), false) = (point.lat_deg, point.lon_deg, point.time_out_of_order) {
            if let Some((t, plat, plon)) = self.last_fix {
                let step = self.geodesy.distance_m(plat, plon, lat, lon);
                self.total_m += step;
                let dt_ms = point.time_ms - t;
                if dt_ms > 0 && !untimed(point) {
                    let speed = step * 1000.0 / dt_ms as f64;
                    point.speed_mps = Some(speed as f32);
                    self.max_speed = Some(self.max_speed.map_or(speed, |m| m.max(speed)));
                }
            }
            self.last_fix = Some((point.time_ms, lat, lon));
        }
        point.distance_m = self.total_m;
    }

    fn summarize(&self, summary: &mut WorkoutSummary) {
        summary.distance_m = self.total_m;
        summary.max_speed_mps = self.max_speed;
    }
}
