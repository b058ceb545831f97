use super::Stage;
use crate::geodesy::local_distance_m;
use crate::{EnrichedPoint, WorkoutSummary};

/// Cumulative WGS84 distance over consecutive valid fixes, excluding paused stretches.
#[derive(Debug, Default, Clone)]
pub struct Distance {
    last_fix: Option<(f64, f64)>,
    total_m: f64,
}

impl Stage for Distance {
    #[inline]
    fn on_sample(&mut self, point: &mut EnrichedPoint) {
        if let (Some(lat), Some(lon), false) = (point.lat_deg, point.lon_deg, point.time_out_of_order) {
            if let Some((plat, plon)) = self.last_fix
                && !point.paused
            {
                self.total_m += local_distance_m(plat, plon, lat, lon);
            }
            self.last_fix = Some((lat, lon));
        }
        point.distance_m = self.total_m;
    }

    fn summarize(&self, summary: &mut WorkoutSummary) {
        summary.distance_m = self.total_m;
    }
}
