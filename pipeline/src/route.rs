//! A workout's route for clients: Google's encoded polyline (what Strava's `summary_polyline`
//! is), and index-aligned downsampling of streams to a resolution.

/// Points per stream at each resolution, as Strava's streams API defines them
/// (`resolution=low|medium|high`: 100, 1,000 and 10,000 points).
pub const RESOLUTION_POINTS: [(&str, usize); 3] = [("low", 100), ("medium", 1_000), ("high", 10_000)];

/// Encodes (lat, lon) degrees with Google's polyline algorithm at 1e-5° precision (≈ 1.1 m):
/// deltas of rounded values, zig-zag signed, in 5-bit chunks offset by 63.
pub fn encode_polyline(points: impl IntoIterator<Item = (f64, f64)>) -> String {
    let mut out = String::new();
    let (mut last_lat, mut last_lon) = (0i64, 0i64);
    for (lat, lon) in points {
        let (lat, lon) = ((lat * 1e5).round() as i64, (lon * 1e5).round() as i64);
        push_value(&mut out, lat - last_lat);
        push_value(&mut out, lon - last_lon);
        (last_lat, last_lon) = (lat, lon);
    }
    out
}

fn push_value(out: &mut String, value: i64) {
    let mut v = if value < 0 { !(value << 1) } else { value << 1 } as u64;
    while v >= 0x20 {
        out.push(char::from((0x20 | (v & 0x1f)) as u8 + 63));
        v >>= 5;
    }
    out.push(char::from(v as u8 + 63));
}

/// Why a polyline could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an encoded polyline: {0}")]
pub struct PolylineError(&'static str);

/// Decodes a polyline back to (lat, lon) degrees.
pub fn decode_polyline(text: &str) -> Result<Vec<(f64, f64)>, PolylineError> {
    let mut bytes = text.bytes();
    let mut next = || -> Result<Option<i64>, PolylineError> {
        let (mut result, mut shift) = (0u64, 0u32);
        loop {
            let Some(b) = bytes.next() else {
                return if shift == 0 { Ok(None) } else { Err(PolylineError("ends inside a value")) };
            };
            let chunk = u64::from(b.checked_sub(63).filter(|c| *c < 64).ok_or(PolylineError("byte out of range"))?);
            if shift > 60 {
                return Err(PolylineError("value too long"));
            }
            result |= (chunk & 0x1f) << shift;
            shift += 5;
            if chunk < 0x20 {
                let v = (result >> 1) as i64;
                return Ok(Some(if result & 1 == 1 { !v } else { v }));
            }
        }
    };
    let mut out = Vec::new();
    let (mut lat, mut lon) = (0i64, 0i64);
    while let Some(dlat) = next()? {
        let dlon = next()?.ok_or(PolylineError("a latitude without its longitude"))?;
        // Wrapping: garbage input must give garbage points or an error, never a panic.
        lat = lat.wrapping_add(dlat);
        lon = lon.wrapping_add(dlon);
        // Divided, not multiplied by 1e-5: the nearest double to the decimal (47.3, not
        // 47.300000000000004), as a reader of the JSON expects.
        out.push((lat as f64 / 1e5, lon as f64 / 1e5));
    }
    Ok(out)
}

/// Indices to keep so that every stream of `len` samples shrinks to at most `target` points, the
/// same indices for every stream (so `time[i]`, `latlng[i]`, `heartrate[i]` stay aligned): evenly
/// spaced, always keeping the first and the last sample.
pub fn downsample_indices(len: usize, target: usize) -> Vec<usize> {
    match target {
        _ if len <= target => (0..len).collect(),
        0 => Vec::new(),
        1 => vec![0],
        // Nearest of k·(len−1)/(target−1): strictly increasing because len > target.
        _ => (0..target).map(|k| (k * (len - 1) + (target - 1) / 2) / (target - 1)).collect(),
    }
}

/// Most positions a [`RouteSketch`] keeps (the latest fix is added when it is read). Encoded,
/// a point of a sketch costs about four bytes (deltas of a few hundred metres at 1e-5°), so a
/// live workout's sketch stays under 200 bytes however long it runs.
pub const ROUTE_SKETCH_POINTS: usize = 48;

/// A bounded outline of a workout's route, kept as it streams: every `stride`-th fix, as an
/// encoded polyline; when it holds [`ROUTE_SKETCH_POINTS`], every other point goes and the
/// stride doubles. It begins at the first fix; the reader adds the latest one (which the
/// cleaning stage keeps anyway) so it ends where the workout did. Small on purpose: it lives in
/// every live workout's state.
#[derive(Debug, Clone)]
pub struct RouteSketch {
    /// Rebuilt at each kept point rather than grown, so it holds no spare capacity.
    encoded: Box<str>,
    stride: u32,
    /// Fixes since the last kept one.
    since_kept: u32,
    /// The last kept point, in 1e-5° units.
    last_kept: (i32, i32),
    kept: u8,
}

/// (lat, lon) degrees in the polyline's 1e-5° units (±18,000,000 fits an i32).
fn units(lat: f64, lon: f64) -> (i32, i32) {
    ((lat * 1e5).round() as i32, (lon * 1e5).round() as i32)
}

impl RouteSketch {
    /// A sketch that begins at this fix.
    pub fn new(lat: f64, lon: f64) -> Self {
        let mut sketch = RouteSketch { encoded: Box::from(""), stride: 1, since_kept: 0, last_kept: (0, 0), kept: 0 };
        sketch.keep(units(lat, lon));
        sketch
    }

    /// The next fix along the route.
    pub fn push(&mut self, lat: f64, lon: f64) {
        self.since_kept += 1;
        if self.since_kept < self.stride {
            return;
        }
        self.keep(units(lat, lon));
        if usize::from(self.kept) >= ROUTE_SKETCH_POINTS {
            self.thin();
        }
    }

    fn keep(&mut self, point: (i32, i32)) {
        let mut encoded = String::with_capacity(self.encoded.len() + 12);
        encoded.push_str(&self.encoded);
        push_value(&mut encoded, i64::from(point.0) - i64::from(self.last_kept.0));
        push_value(&mut encoded, i64::from(point.1) - i64::from(self.last_kept.1));
        self.encoded = encoded.into_boxed_str();
        self.last_kept = point;
        self.kept += 1;
        self.since_kept = 0;
    }

    /// Drops every other kept point (the first stays) and doubles the stride.
    fn thin(&mut self) {
        let points = self.kept_points();
        let dropped_last = points.len().is_multiple_of(2);
        let kept: Vec<(f64, f64)> = points.iter().step_by(2).copied().collect();
        self.encoded = encode_polyline(kept.iter().copied()).into_boxed_str();
        self.kept = kept.len() as u8;
        if let Some(&(lat, lon)) = kept.last() {
            self.last_kept = units(lat, lon);
        }
        if dropped_last {
            self.since_kept += self.stride;
        }
        self.stride *= 2;
    }

    fn kept_points(&self) -> Vec<(f64, f64)> {
        decode_polyline(&self.encoded).expect("a sketch encodes only what it was given")
    }

    /// Where the route began.
    pub fn first(&self) -> (f64, f64) {
        self.kept_points()[0]
    }

    /// The sketch, degrees: its kept points, then `latest` (the last fix) unless it is the last
    /// kept one.
    pub fn points(&self, latest: Option<(f64, f64)>) -> Vec<(f64, f64)> {
        let mut points = self.kept_points();
        if let Some((lat, lon)) = latest.filter(|(lat, lon)| units(*lat, *lon) != self.last_kept) {
            points.push((lat, lon));
        }
        points
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn googles_documented_example_round_trips() {
        // developers.google.com/maps/documentation/utilities/polylinealgorithm
        let points = [(38.5, -120.2), (40.7, -120.95), (43.252, -126.453)];
        let text = encode_polyline(points);
        assert_eq!(text, "_p~iF~ps|U_ulLnnqC_mqNvxq`@");
        let back = decode_polyline(&text).unwrap();
        for (a, b) in points.iter().zip(&back) {
            assert!((a.0 - b.0).abs() < 1e-9 && (a.1 - b.1).abs() < 1e-9);
        }
        assert!(decode_polyline("_p~iF").is_err(), "a latitude alone");
        assert!(decode_polyline("\u{1}").is_err());
        assert_eq!(decode_polyline("").unwrap(), vec![]);
    }

    #[test]
    fn a_sketch_stays_bounded_begins_at_the_first_fix_and_ends_at_the_latest() {
        let mut sketch = RouteSketch::new(46.0, 7.0);
        assert_eq!(sketch.points(Some((46.0, 7.0))).len(), 1);
        let mut latest = (46.0, 7.0);
        for n in 1..=10_000 {
            latest = (46.0 + f64::from(n) * 1e-4, 7.0);
            sketch.push(latest.0, latest.1);
            let points = sketch.points(Some(latest));
            assert!(points.len() <= ROUTE_SKETCH_POINTS + 1, "{} points after {n} fixes", points.len());
            assert!((points[0].0 - 46.0).abs() < 1e-9);
            assert!((points.last().unwrap().0 - (46.0 + f64::from(n) * 1e-4)).abs() < 1e-9, "latest after {n}");
            assert!(points.windows(2).all(|w| w[1].0 > w[0].0), "in order after {n}");
        }
        // Evenly spread: kept points are `stride` fixes apart.
        let points = sketch.points(Some(latest));
        let gaps: Vec<i64> = points.windows(2).map(|w| ((w[1].0 - w[0].0) * 1e4).round() as i64).collect();
        let stride = gaps[0];
        assert!(gaps[..gaps.len() - 1].iter().all(|g| *g == stride), "{gaps:?}");
        assert!(points.len() > ROUTE_SKETCH_POINTS / 2, "{}", points.len());
    }

    proptest::proptest! {
        #[test]
        fn any_route_round_trips_to_within_the_precision(points in proptest::collection::vec((-90.0f64..90.0, -180.0f64..180.0), 0..50)) {
            let back = decode_polyline(&encode_polyline(points.iter().copied())).unwrap();
            proptest::prop_assert_eq!(back.len(), points.len());
            for (a, b) in points.iter().zip(&back) {
                proptest::prop_assert!((a.0 - b.0).abs() <= 0.5e-5 + 1e-9 && (a.1 - b.1).abs() <= 0.5e-5 + 1e-9);
            }
        }

        #[test]
        fn any_text_decodes_or_errs_without_panicking(text in ".{0,200}") {
            let _ = decode_polyline(&text);
        }
    }

    #[test]
    fn downsampling_keeps_the_ends_and_the_same_indices_for_every_stream() {
        assert_eq!(downsample_indices(5, 100), vec![0, 1, 2, 3, 4]);
        let idx = downsample_indices(10_001, 100);
        assert_eq!(idx.len(), 100);
        assert_eq!((idx[0], idx[99]), (0, 10_000));
        assert!(idx.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(downsample_indices(0, 100), Vec::<usize>::new());
    }
}
