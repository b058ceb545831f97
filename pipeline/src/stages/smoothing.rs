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

/// A constant-velocity Kalman filter on the east and north axes. Both axes share one model,
/// one measurement noise and one time step, and they restart together, so their covariances are
/// always equal: one covariance and one gain serve both (half the arithmetic, one division).
#[derive(Debug, Clone, Copy, Default)]
struct Filter {
    /// (position, velocity) east and north, metres and m/s.
    east: (f64, f64),
    north: (f64, f64),
    p00: f64,
    p01: f64,
    p11: f64,
}

impl Filter {
    fn reset(&mut self, x: f64, y: f64, sigma: f64) {
        *self = Filter { east: (x, 0.0), north: (y, 0.0), p00: sigma * sigma, p01: 0.0, p11: 25.0 };
    }

    /// Predicts `dt` seconds ahead, then updates with the fix (`x`, `y`) of std-dev `sigma`.
    /// Returns false (without updating) when either coordinate is outside the gate.
    #[inline]
    fn step(&mut self, dt: f64, x: f64, y: f64, sigma: f64) -> bool {
        let q = ACCELERATION_NOISE;
        let (east, north) = (self.east.0 + self.east.1 * dt, self.north.0 + self.north.1 * dt);
        let (ix, iy) = (x - east, y - north);
        let gate = GATE_SIGMAS * sigma;
        if ix.abs() > gate || iy.abs() > gate {
            return false;
        }
        let dt2 = dt * dt;
        let p00 = self.p00 + 2.0 * dt * self.p01 + dt2 * self.p11 + q * dt2 * dt * (1.0 / 3.0);
        let p01 = self.p01 + dt * self.p11 + q * dt2 * 0.5;
        let p11 = self.p11 + q * dt;
        let inv_s = 1.0 / (p00 + sigma * sigma);
        let (k0, k1) = (p00 * inv_s, p01 * inv_s);
        self.east = (east + k0 * ix, self.east.1 + k1 * ix);
        self.north = (north + k0 * iy, self.north.1 + k1 * iy);
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
    origin: Option<Origin>,
    filter: Filter,
    last_ms: Option<i64>,
}

/// The plane's origin (degrees), metres per degree there, and degrees per metre.
#[derive(Debug, Clone, Copy)]
struct Origin {
    lat: f64,
    lon: f64,
    m_north: f64,
    m_east: f64,
    deg_north: f64,
    deg_east: f64,
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
        let o = *self.origin.get_or_insert_with(|| {
            let (m, n) = radii_of_curvature(lat.to_radians());
            let (m_north, m_east) = (m.to_radians(), n.to_radians());
            Origin { lat, lon, m_north, m_east, deg_north: 1.0 / m_north, deg_east: 1.0 / m_east }
        });
        let (x, y) = ((lon - o.lon) * o.m_east, (lat - o.lat) * o.m_north);
        let dt = match self.last_ms {
            Some(last) if !untimed(point) && point.time_ms > last => Some((point.time_ms - last) as f64 * 1e-3),
            _ => None,
        };
        if !dt.is_some_and(|dt| self.filter.step(dt, x, y, sigma)) {
            self.filter.reset(x, y, sigma);
        }
        if !untimed(point) {
            self.last_ms = Some(point.time_ms);
        }
        point.smoothed_lat = Some(o.lat + self.filter.north.0 * o.deg_north);
        point.smoothed_lon = Some(o.lon + self.filter.east.0 * o.deg_east);
    }

    fn summarize(&self, _summary: &mut WorkoutSummary) {}
}
