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
    let mid = ((lat1 + lat2) * 0.5).to_radians();
    let (m_north, m_east) = radii_of_curvature(mid);
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

    #[test]
    fn crossing_the_antimeridian_is_short() {
        let d = local_distance_m(0.0, 179.9999, 0.0, -179.9999);
        assert!((d - 22.26).abs() < 0.1, "{d}");
    }
}
