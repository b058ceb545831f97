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

/// The fastest an altitude reading may change, 20 m/s: the fastest passenger lift in service
/// (Shanghai Tower, 20.5 m/s, Guinness World Records 2016) and beyond any skier's or diver's
/// sustained vertical rate. Faster changes are sensor faults, like the fēnix 2 trace's 87 m
/// barometer jump for 3 s at its start (`fitparse__activity-small-fenix2-run.fit`).
pub const MAX_VERTICAL_SPEED_MPS: f64 = 20.0;

/// After this many consecutive rejections that agree with each other, the earlier anchor was the
/// wrong one (a bad first fix): re-anchor on the new track rather than reject it forever.
const REANCHOR_AFTER: u32 = 5;

/// Drops altitudes that jump faster than any person climbs or falls, and positions that cannot be real: exactly (0,0) (a receiver without a fix), and fixes whose
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
    altitude: AltitudeGuard,
}

/// Drops altitude readings that jump faster than [`MAX_VERTICAL_SPEED_MPS`] from the last accepted
/// one, re-anchoring like positions do when the new level persists.
#[derive(Debug, Clone, Default)]
struct AltitudeGuard {
    last_accepted: Option<(i64, f64)>,
    last_rejected: Option<(i64, f64)>,
    rejected_run: u32,
    rejected: u64,
}

impl AltitudeGuard {
    fn plausible(from: (i64, f64), to: (i64, f64)) -> bool {
        let seconds = ((to.0 - from.0) as f64 * 1e-3).max(1.0);
        (to.1 - from.1).abs() <= MAX_VERTICAL_SPEED_MPS * seconds
    }

    /// True when `reading` should be kept.
    fn accept(&mut self, reading: (i64, f64), timed: bool) -> bool {
        let accept = match self.last_accepted {
            None => true,
            // Without time, only order is known: every reading stands.
            Some(_) if !timed => true,
            Some(last) if Self::plausible(last, reading) => true,
            Some(_) => {
                let consistent = self.last_rejected.is_none_or(|prev| Self::plausible(prev, reading));
                self.rejected_run = if consistent { self.rejected_run + 1 } else { 1 };
                self.rejected_run >= REANCHOR_AFTER
            }
        };
        if accept {
            self.last_accepted = Some(reading);
            self.last_rejected = None;
            self.rejected_run = 0;
        } else {
            self.last_rejected = Some(reading);
            self.rejected += 1;
        }
        accept
    }
}

impl Cleaning {
    /// The last position it accepted, degrees.
    pub fn last_fix(&self) -> Option<(f64, f64)> {
        self.last_accepted.map(|(_, lat, lon)| (lat, lon))
    }

    pub fn new(sport: Sport) -> Self {
        Cleaning {
            max_speed: max_speed_mps(sport),
            last_accepted: None,
            rejected_run: 0,
            last_rejected: None,
            rejected: 0,
            geodesy: LocalDistance::default(),
            altitude: AltitudeGuard::default(),
        }
    }

    fn plausible(&mut self, from: (i64, f64, f64), to: (i64, f64, f64), timed: bool) -> bool {
        let metres_sq = self.geodesy.distance_sq_m2(from.1, from.2, to.1, to.2);
        self.within_reach(from, to, metres_sq, timed)
    }

    /// Squared distances: no square root or division on the hot path.
    fn within_reach(&self, from: (i64, f64, f64), to: (i64, f64, f64), metres_sq: f64, timed: bool) -> bool {
        if !timed {
            // Without time only a jump no sport makes between consecutive fixes (10 km) is wrong.
            return metres_sq < 10_000.0 * 10_000.0;
        }
        let reach = ((to.0 - from.0) as f64 * 1e-3).max(1.0) * self.max_speed;
        metres_sq <= reach * reach
    }
}

impl Stage for Cleaning {
    #[inline]
    fn on_sample(&mut self, point: &mut EnrichedPoint) {
        let timed = !untimed(point);
        if let Some(alt) = point.altitude_m
            && !point.time_out_of_order
            && !self.altitude.accept((point.time_ms, f64::from(alt)), timed)
        {
            point.altitude_m = None;
        }
        let (Some(lat), Some(lon)) = (point.lat_deg, point.lon_deg) else { return };
        let fix = (point.time_ms, lat, lon);
        let accept = if lat == 0.0 && lon == 0.0 {
            false
        } else {
            let last_accepted = self.last_accepted;
            let step = last_accepted.map(|last| (last, self.geodesy.distance_sq_m2(last.1, last.2, lat, lon)));
            point.step_from_accepted = step.map(|(last, metres_sq)| (last.1, last.2, metres_sq));
            match step {
                None => true,
                Some((last, metres_sq)) if self.within_reach(last, fix, metres_sq, timed) => true,
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
        summary.rejected_altitudes = self.altitude.rejected;
    }
}
