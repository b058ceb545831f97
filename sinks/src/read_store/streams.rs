//! The per-sample streams the API serves (Strava's `streams`), kept as one compact chunk per log
//! record: the columns of that record's enriched points.

use serde::{Deserialize, Serialize};
use trackwire_pipeline::Points;

/// Positions are stored as integer 1e-7 degrees (FIT and OSM do the same): 1.1 cm at the equator,
/// exact through any number of round trips, half the size of f64.
const E7: f64 = 1e7;

/// Largest decompressed chunk accepted (a chunk is one batch's samples).
const MAX_CHUNK_BYTES: usize = 64 << 20;

/// zstd contexts, one pair per thread: making one per chunk was 3 % of the sinks thread under
/// offline uploads (a context is a few hundred kilobytes of tables, set up on every call).
struct Zstd {
    compressor: zstd::bulk::Compressor<'static>,
    decompressor: zstd::bulk::Decompressor<'static>,
}

thread_local! {
    static ZSTD: std::cell::RefCell<Zstd> = std::cell::RefCell::new(Zstd {
        compressor: zstd::bulk::Compressor::new(1).expect("zstd level 1 exists"),
        decompressor: zstd::bulk::Decompressor::new().expect("a zstd decompression context"),
    });
}

/// A stored chunk that cannot be read back (a corrupt store, or one from an incompatible build).
#[derive(Debug, thiserror::Error)]
pub enum StreamsError {
    #[error("stream chunk is not valid zstd: {0}")]
    Compression(std::io::Error),
    #[error("stream chunk does not decode: {0}")]
    Encoding(postcard::Error),
}

/// Index-aligned columns: entry `i` of every column is sample `i`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Streams {
    pub time_ms: Vec<i64>,
    /// Cleaned recorded position (None where the device had no fix or cleaning rejected it).
    pub lat_e7: Vec<Option<i32>>,
    pub lon_e7: Vec<Option<i32>>,
    /// Cumulative distance, metres.
    pub distance_m: Vec<f64>,
    pub altitude_m: Vec<Option<f32>>,
    pub heart_rate_bpm: Vec<Option<u8>>,
    pub cadence_rpm: Vec<Option<u8>>,
    pub power_w: Vec<Option<u16>>,
    pub moving: Vec<bool>,
    pub grade_pct: Vec<Option<f32>>,
}

impl Streams {
    /// One exactly-sized column per stream (this runs for every record the read store takes).
    pub fn from_points(points: &Points) -> Streams {
        let e7 = |column: &[Option<f64>]| column.iter().map(|deg| deg.map(to_e7)).collect();
        Streams {
            time_ms: points.time_ms.clone(),
            lat_e7: e7(&points.lat_deg),
            lon_e7: e7(&points.lon_deg),
            distance_m: points.distance_m.clone(),
            altitude_m: points.altitude_m.clone(),
            heart_rate_bpm: points.heart_rate_bpm.clone(),
            cadence_rpm: points.cadence_rpm.clone(),
            power_w: points.power_w.clone(),
            moving: points.moving.clone(),
            grade_pct: points.grade_pct.clone(),
        }
    }

    pub fn len(&self) -> usize {
        self.time_ms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.time_ms.is_empty()
    }

    pub fn extend(&mut self, other: Streams) {
        self.time_ms.extend(other.time_ms);
        self.lat_e7.extend(other.lat_e7);
        self.lon_e7.extend(other.lon_e7);
        self.distance_m.extend(other.distance_m);
        self.altitude_m.extend(other.altitude_m);
        self.heart_rate_bpm.extend(other.heart_rate_bpm);
        self.cadence_rpm.extend(other.cadence_rpm);
        self.power_w.extend(other.power_w);
        self.moving.extend(other.moving);
        self.grade_pct.extend(other.grade_pct);
    }

    /// `[lat, lon]` of sample `i` in degrees, when it has a position.
    pub fn latlng(&self, i: usize) -> Option<[f64; 2]> {
        Some([f64::from(self.lat_e7[i]?) / E7, f64::from(self.lon_e7[i]?) / E7])
    }

    /// Nulls the positions of samples recorded before `before_ms`; true if any changed.
    pub fn drop_positions_before(&mut self, before_ms: i64) -> bool {
        let mut changed = false;
        for (i, time) in self.time_ms.iter().enumerate() {
            if *time < before_ms && (self.lat_e7[i].is_some() || self.lon_e7[i].is_some()) {
                self.lat_e7[i] = None;
                self.lon_e7[i] = None;
                changed = true;
            }
        }
        changed
    }

    /// postcard, then zstd level 1: columns of neighbouring samples are alike, so this stores a
    /// chunk in about a third of the bytes for a few microseconds per 1,000 samples.
    pub fn encode(&self) -> Vec<u8> {
        let plain = postcard::to_allocvec(self).expect("streams always serialize");
        ZSTD.with_borrow_mut(|zstd| zstd.compressor.compress(&plain)).expect("zstd compresses any input")
    }

    pub fn decode(bytes: &[u8]) -> Result<Streams, StreamsError> {
        // A chunk is at most one batch: bounded by the ingest sample limit (100,000 × < 64 B).
        let plain = ZSTD
            .with_borrow_mut(|zstd| zstd.decompressor.decompress(bytes, MAX_CHUNK_BYTES))
            .map_err(StreamsError::Compression)?;
        postcard::from_bytes(&plain).map_err(StreamsError::Encoding)
    }
}

fn to_e7(degrees: f64) -> i32 {
    (degrees * E7).round() as i32
}

#[cfg(test)]
mod tests {
    use trackwire_pipeline::EnrichedPoint;

    use super::*;

    #[test]
    fn positions_survive_the_round_trip_within_a_centimetre() {
        let point = EnrichedPoint {
            time_ms: 5,
            lat_deg: Some(46.123_456_78),
            lon_deg: Some(-13.987_654_32),
            distance_m: 12.5,
            ..Default::default()
        };
        let streams = Streams::decode(&Streams::from_points(&Points::from_iter([point])).encode()).unwrap();
        let [lat, lon] = streams.latlng(0).unwrap();
        assert!((lat - 46.123_456_78).abs() < 1e-7 && (lon + 13.987_654_32).abs() < 1e-7);
        assert_eq!(streams.distance_m, vec![12.5]);
    }

    #[test]
    fn dropping_positions_keeps_every_other_column() {
        let points: Points = (0..3)
            .map(|i| EnrichedPoint {
                time_ms: i * 1000,
                lat_deg: Some(1.0),
                lon_deg: Some(2.0),
                heart_rate_bpm: Some(100),
                ..Default::default()
            })
            .collect();
        let mut streams = Streams::from_points(&points);
        assert!(streams.drop_positions_before(2000));
        assert_eq!(streams.lat_e7, vec![None, None, Some(10_000_000)]);
        assert_eq!(streams.heart_rate_bpm, vec![Some(100); 3]);
        assert!(!streams.drop_positions_before(2000), "a second run changes nothing");
    }
}
