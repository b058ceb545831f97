use trackwire_codec::Sport;

use super::{Stage, untimed};
use crate::geodesy::LocalDistance;
use crate::{EnrichedPoint, WorkoutSummary};

/// The fastest speed a position fix may imply for a sport; faster means the fix is wrong.
///
/// - Running 12.5 m/s: above the fastest human sprint ever timed (Bolt, 2009 Berlin 100 m, peak
///   ≈ 12.4 m/s; Graubner & Nixdorf 2011, New Studies in Athletics 26:1/2).
/// - Walking/hiking 5 m/s: above race-walking world-record pace (20 km in 1:16:36 ≈ 4.35 m/s).
/// - Swimming 3 m/s: above the 50 m freestyle world record pace (≈ 2.4 m/s).
/// - Cycling 40 m/s (144 km/h): above any road descent; only speed-record bikes go faster.
/// - Unknown/other 100 m/s: only teleports (a fix at (0,0), a cold-start fix continents away).
pub fn max_speed_mps(sport: Sport) -> f64 {
    match sport {
        Sport::Running => 12.5,
        Sport::Walking | Sport::Hiking => 5.0,
        Sport::Swimming => 3.0,
        Sport::Cycling => 40.0,
        _ => 100.0,
    }
}

/// After this many consecutive rejections that agree with each other, the earlier anchor was the
/// wrong one (a bad first fix): re-anchor on the new track rather than reject it forever.
const REANCHOR_AFTER: u32 = 5;

/// Drops positions that cannot be real: exactly (0,0) (a receiver without a fix), and fixes whose
/// implied speed from the last accepted fix exceeds the sport's maximum. Never invents a position;
/// rejected samples keep their time, heart rate and the rest.
#[derive(Debug, Clone)]
pub struct Cleaning {
    max_speed: f64,
    last_accepted: Option<(i64, f64, f64)>,
    rejected_run: u32,
    last_rejected: Option<(i64, f64, f64)>,
    rejected: u64,
    geodesy: LocalDistance,
}

impl Cleaning {
    pub fn new(sport: Sport) -> Self {
        Cleaning {
            max_speed: max_speed_mps(sport),
            last_accepted: None,
            rejected_run: 0,
            last_rejected: None,
            rejected: 0,
            geodesy: LocalDistance::default(),
        }
    }

    fn plausible(&mut self, from: (i64, f64, f64), to: (i64, f64, f64), timed: bool) -> bool {
        let metres = self.geodesy.distance_m(from.1, from.2, to.1, to.2);
        if !timed {
            // Without time only a jump no sport makes between consecutive fixes (10 km) is wrong.
            return metres < 10_000.0;
        }
        let seconds = ((to.0 - from.0) as f64 / 1000.0).max(1.0);
        metres / seconds <= self.max_speed
    }
}

impl Stage for Cleaning {
    #[inline]
    fn on_sample(&mut self, point: &mut EnrichedPoint) {
        let (Some(lat), Some(lon)) = (point.lat_deg, point.lon_deg) else { return };
        let fix = (point.time_ms, lat, lon);
        let timed = !untimed(point);
        let accept = if lat == 0.0 && lon == 0.0 {
            false
        } else {
            let last_accepted = self.last_accepted;
            match last_accepted {
                None => true,
                Some(last) if self.plausible(last, fix, timed) => true,
                Some(_) => {
                    let consistent = match self.last_rejected {
                        None => true,
                        Some(prev) => self.plausible(prev, fix, timed),
                    };
                    self.rejected_run = if consistent { self.rejected_run + 1 } else { 1 };
                    self.rejected_run >= REANCHOR_AFTER
                }
            }
        };
        if accept {
            self.last_accepted = Some(fix);
            self.rejected_run = 0;
            self.last_rejected = None;
        } else {
            self.last_rejected = Some(fix);
            self.rejected += 1;
            point.lat_deg = None;
            point.lon_deg = None;
            point.position_rejected = true;
        }
    }

    fn summarize(&self, summary: &mut WorkoutSummary) {
        summary.rejected_fixes = self.rejected;
    }
}
