//! Distance on the WGS84 ellipsoid, the fast way.
//!
//! For the metre-scale steps between consecutive GPS fixes, the ellipsoid is flat to far below GPS
//! noise once we use its radii of curvature at the segment's latitude: the meridional radius M and
//! the prime-vertical radius N. Costs a few nanoseconds (one sin, one cos, one sqrt); checked against
//! Karney's geodesic (the `geo` crate) in the tests. Sphere-based tools (gpxpy, sports-lib, Traccar:
//! R = 6,378,137 m) differ from the ellipsoid by up to ~0.3 % depending on latitude and heading.

/// WGS84 semi-major axis, metres (NIMA TR8350.2, 3rd ed., Table 3.1).
pub const WGS84_A: f64 = 6_378_137.0;
/// WGS84 flattening (NIMA TR8350.2, Table 3.1).
pub const WGS84_F: f64 = 1.0 / 298.257_223_563;
/// First eccentricity squared, e² = f(2 − f).
pub const WGS84_E2: f64 = WGS84_F * (2.0 - WGS84_F);

/// Metres per radian north (M) and east (N cos φ) at latitude `lat_rad`.
#[inline]
pub fn radii_of_curvature(lat_rad: f64) -> (f64, f64) {
    let (sin, cos) = lat_rad.sin_cos();
    let w2 = 1.0 - WGS84_E2 * sin * sin;
    let w = w2.sqrt();
    let n = WGS84_A / w;
    let m = n * (1.0 - WGS84_E2) / w2;
    (m, n * cos)
}

/// Distance in metres between two nearby fixes (degrees), on the WGS84 ellipsoid.
#[inline]
pub fn local_distance_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (sin, cos) = ((lat1 + lat2) * 0.5).to_radians().sin_cos();
    distance_at(sin, cos, lat1, lon1, lat2, lon2)
}

/// The flat-ellipsoid step distance, given sin and cos of the segment's mid-latitude.
#[inline]
fn distance_at(sin: f64, cos: f64, lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let w2 = 1.0 - WGS84_E2 * sin * sin;
    let w = w2.sqrt();
    let n = WGS84_A / w;
    let m_north = n * (1.0 - WGS84_E2) / w2;
    let m_east = n * cos;
    let mut dlon = lon2 - lon1;
    if dlon > 180.0 {
        dlon -= 360.0;
    } else if dlon < -180.0 {
        dlon += 360.0;
    }
    let dn = (lat2 - lat1).to_radians() * m_north;
    let de = dlon.to_radians() * m_east;
    (dn * dn + de * de).sqrt()
}

/// [`local_distance_m`] for a stream of nearby fixes, without a division, sin or cos per step.
///
/// Keeps the radii of curvature and sin/cos of a reference latitude, recomputed only when the track
/// has moved more than [`LocalDistance::REFERENCE_SPAN_RAD`] (~640 m) in latitude: over that span
/// M and N change by under 1e-6 relative (dM/M ≈ 3e²·sinφ·cosφ·dφ), far below GPS noise. The
/// east radius N·cos φ changes faster (tan φ · dφ), so cos φ is carried to each segment's
/// mid-latitude exactly enough with a Taylor step (angle addition, sin d and cos d to 3rd order).
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalDistance {
    reference: Option<Reference>,
}

#[derive(Debug, Clone, Copy)]
struct Reference {
    lat_rad: f64,
    sin: f64,
    cos: f64,
    /// Metres per radian of latitude (M).
    m_north: f64,
    /// Prime-vertical radius N (metres per radian of longitude at the equator of this ellipse).
    n: f64,
}

impl LocalDistance {
    /// How far (radians of latitude) the track may move before the radii are recomputed.
    pub const REFERENCE_SPAN_RAD: f64 = 1e-4;

    /// Squared distance in m² (compare it with a squared limit to skip the square root).
    #[inline]
    pub fn distance_sq_m2(&mut self, lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
        let mid = ((lat1 + lat2) * 0.5).to_radians();
        let r = match self.reference {
            Some(r) if (mid - r.lat_rad).abs() <= Self::REFERENCE_SPAN_RAD => r,
            _ => {
                let (sin, cos) = mid.sin_cos();
                let w2 = 1.0 - WGS84_E2 * sin * sin;
                let n = WGS84_A / w2.sqrt();
                let r = Reference { lat_rad: mid, sin, cos, m_north: n * (1.0 - WGS84_E2) / w2, n };
                self.reference = Some(r);
                r
            }
        };
        let d = mid - r.lat_rad;
        let d2 = d * d;
        let (sin_d, cos_d) = (d * (1.0 - d2 * (1.0 / 6.0)), 1.0 - d2 * 0.5 * (1.0 - d2 * (1.0 / 12.0)));
        let cos = r.cos * cos_d - r.sin * sin_d;
        let mut dlon = lon2 - lon1;
        if dlon > 180.0 {
            dlon -= 360.0;
        } else if dlon < -180.0 {
            dlon += 360.0;
        }
        let dn = (lat2 - lat1).to_radians() * r.m_north;
        let de = dlon.to_radians() * r.n * cos;
        dn * dn + de * de
    }

    #[inline]
    pub fn distance_m(&mut self, lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
        self.distance_sq_m2(lat1, lon1, lat2, lon2).sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::{Distance, Geodesic, Point};
    use proptest::prelude::*;

    proptest! {
        /// Steps up to ~1 km anywhere below 85° latitude agree with Karney's geodesic to 1 mm + 1e-5.
        #[test]
        fn matches_karney_for_gps_sized_steps(lat in -85.0f64..85.0, lon in -180.0f64..180.0, dlat in -0.01f64..0.01, dlon in -0.01f64..0.01) {
            let ours = local_distance_m(lat, lon, lat + dlat, lon + dlon);
            let karney = Geodesic.distance(Point::new(lon, lat), Point::new(lon + dlon, lat + dlat));
            prop_assert!((ours - karney).abs() <= 1e-3 + karney * 1e-5, "ours {ours} karney {karney}");
        }
    }

    proptest! {
        /// The cached-trig stream version agrees with the direct formula along a wandering track.
        #[test]
        fn cached_version_matches_the_direct_formula(start in -80.0f64..80.0, steps in proptest::collection::vec((-0.02f64..0.02, -0.02f64..0.02), 1..300)) {
            let mut stream = LocalDistance::default();
            let (mut lat, mut lon) = (start, 10.0);
            for (dlat, dlon) in steps {
                let (nlat, nlon) = ((lat + dlat).clamp(-85.0, 85.0), lon + dlon);
                let direct = local_distance_m(lat, lon, nlat, nlon);
                let cached = stream.distance_m(lat, lon, nlat, nlon);
                prop_assert!((direct - cached).abs() <= 2e-6 * direct.max(1.0), "{direct} vs {cached}");
                (lat, lon) = (nlat, nlon);
            }
        }
    }

    #[test]
    fn crossing_the_antimeridian_is_short() {
        let d = local_distance_m(0.0, 179.9999, 0.0, -179.9999);
        assert!((d - 22.26).abs() < 0.1, "{d}");
    }
}
