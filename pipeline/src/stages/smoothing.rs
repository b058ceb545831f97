use super::{Stage, untimed};
use crate::geodesy::radii_of_curvature;
use crate::{EnrichedPoint, WorkoutSummary};

/// Horizontal accuracy assumed when the device reports none: consumer GPS is typically within
/// 4.9 m under open sky (GPS.gov, "GPS Accuracy": smartphones, 95 %), so σ ≈ 4.9 / 2 ≈ 2.5 m;
/// we take a conservative 5 m.
pub const DEFAULT_SIGMA_M: f64 = 5.0;

/// Acceleration noise of the constant-velocity model, m²/s³ per axis: lets the filter follow a
/// runner's or rider's changes of pace (~1 m/s² bursts) without chasing jitter.
pub const ACCELERATION_NOISE: f64 = 1.0;

/// Innovation gate in standard deviations: a fix farther than this from the prediction restarts
/// the filter on that fix (a new track after a gap or a jump), which also bounds how far a
/// smoothed point can sit from its raw fix: at most GATE·σ per axis.
pub const GATE_SIGMAS: f64 = 5.0;

/// One axis of a constant-velocity Kalman filter.
#[derive(Debug, Clone, Copy, Default)]
struct Axis {
    pos: f64,
    vel: f64,
    p00: f64,
    p01: f64,
    p11: f64,
}

impl Axis {
    fn reset(&mut self, pos: f64, sigma: f64) {
        *self = Axis { pos, vel: 0.0, p00: sigma * sigma, p01: 0.0, p11: 25.0 };
    }

    /// Predicts `dt` seconds ahead, then updates with measurement `z` of std-dev `sigma`.
    /// Returns false (without updating) when `z` is outside the gate.
    fn step(&mut self, dt: f64, z: f64, sigma: f64) -> bool {
        let q = ACCELERATION_NOISE;
        let pos = self.pos + self.vel * dt;
        let p00 = self.p00 + 2.0 * dt * self.p01 + dt * dt * self.p11 + q * dt * dt * dt / 3.0;
        let p01 = self.p01 + dt * self.p11 + q * dt * dt / 2.0;
        let p11 = self.p11 + q * dt;
        let r = sigma * sigma;
        let innovation = z - pos;
        if innovation.abs() > GATE_SIGMAS * sigma {
            return false;
        }
        let s = p00 + r;
        let (k0, k1) = (p00 / s, p01 / s);
        self.pos = pos + k0 * innovation;
        self.vel += k1 * innovation;
        self.p00 = (1.0 - k0) * p00;
        self.p01 = (1.0 - k0) * p01;
        self.p11 = p11 - k1 * p01;
        true
    }
}

/// Smooths positions with a constant-velocity Kalman filter in a local east/north plane around
/// the workout's first fix, the measurement noise taken from each fix's reported accuracy. Fills
/// `smoothed_lat`/`smoothed_lon`; raw positions stay as they were.
#[derive(Debug, Clone, Default)]
pub struct Smoothing {
    /// Origin (degrees) and metres per degree north/east there.
    origin: Option<(f64, f64, f64, f64)>,
    east: Axis,
    north: Axis,
    last_ms: Option<i64>,
}

impl Stage for Smoothing {
    #[inline]
    fn on_sample(&mut self, point: &mut EnrichedPoint) {
        if point.after_pause {
            // The filter restarts at the first fix after a pause, even if it comes samples later.
            self.last_ms = None;
        }
        let (Some(lat), Some(lon)) = (point.lat_deg, point.lon_deg) else { return };
        let sigma = point.h_accuracy_m.map_or(DEFAULT_SIGMA_M, |a| f64::from(a).max(1.0));
        let (lat0, lon0, m_north, m_east) = *self.origin.get_or_insert_with(|| {
            let (m, n) = radii_of_curvature(lat.to_radians());
            (lat, lon, m.to_radians(), n.to_radians())
        });
        let (x, y) = ((lon - lon0) * m_east, (lat - lat0) * m_north);
        let dt = match self.last_ms {
            Some(last) if !untimed(point) && point.time_ms > last => Some((point.time_ms - last) as f64 / 1000.0),
            _ => None,
        };
        let kept = dt.is_some_and(|dt| {
            let (mut east, mut north) = (self.east, self.north);
            let ok = east.step(dt, x, sigma) && north.step(dt, y, sigma);
            if ok {
                (self.east, self.north) = (east, north);
            }
            ok
        });
        if !kept {
            self.east.reset(x, sigma);
            self.north.reset(y, sigma);
        }
        if !untimed(point) {
            self.last_ms = Some(point.time_ms);
        }
        point.smoothed_lat = Some(lat0 + self.north.pos / m_north);
        point.smoothed_lon = Some(lon0 + self.east.pos / m_east);
    }

    fn summarize(&self, _summary: &mut WorkoutSummary) {}
}
