//! The per-sample streams the API serves (Strava's `streams`), kept in compact chunks: the columns
//! of the enriched points of one or more consecutive log records of a workout, and which records
//! those are, so that chunks which overlap (two writers of one log, see [`assemble`]) still give
//! every record's samples exactly once.

use serde::{Deserialize, Serialize};
use trackwire_pipeline::Points;

/// Positions are stored as integer 1e-7 degrees (FIT and OSM do the same): 1.1 cm at the equator,
/// exact through any number of round trips, half the size of f64.
const E7: f64 = 1e7;

/// Largest decompressed chunk accepted: a chunk is sealed once it holds
/// [`CHUNK_SAMPLES`](super::sink) samples, so it is at most that less one plus one batch
/// (≤ 100,000 samples), each well under 100 bytes.
const MAX_CHUNK_BYTES: usize = 64 << 20;

/// The first byte of a chunk that lists its records without their storage times. Chunks written
/// before that had one record each and no such byte: they begin with the zstd frame's magic number
/// (0x28 …), never with a format byte.
const FORMAT_RECORDS: u8 = 2;
/// The first byte of a chunk that lists its records with when the log stored each.
const FORMAT_STORED: u8 = 3;

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
    #[error("stream chunk lists {listed} samples for its records but holds {held}")]
    Inconsistent { listed: usize, held: usize },
}

/// One log record's share of a chunk: its position, when the log stored it (Unix ms, where the
/// log kept the time) and how many samples it gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordSpan {
    pub lsn: u64,
    pub samples: u32,
    pub stored_ms: Option<i64>,
}

/// A chunk as [`FORMAT_RECORDS`] wrote it.
#[derive(Deserialize)]
struct ChunkWithoutTimes {
    records: Vec<(u64, u32)>,
    streams: Streams,
}

/// What one stored chunk holds: the samples of consecutive records of one workout, in log order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Chunk {
    pub records: Vec<RecordSpan>,
    pub streams: Streams,
}

impl Chunk {
    /// A chunk of one record's samples.
    pub fn of_record(lsn: u64, streams: Streams) -> Chunk {
        Chunk { records: vec![RecordSpan { lsn, samples: streams.len() as u32, stored_ms: None }], streams }
    }

    /// Appends the next record's points (its LSN above every one held), stored at `stored_ms`.
    pub fn push_record(&mut self, lsn: u64, stored_ms: Option<i64>, points: &Points) {
        self.records.push(RecordSpan { lsn, samples: points.len() as u32, stored_ms });
        self.streams.extend_from_points(points);
    }

    /// Coordinate retention: nulls the positions of the records stored before `before_ms` (of
    /// each sample recorded before it, for a record whose storage time the log did not keep).
    /// True if any changed.
    pub fn drop_positions_stored_before(&mut self, before_ms: i64) -> bool {
        let mut changed = false;
        let mut start = 0;
        for record in &self.records {
            let end = start + record.samples as usize;
            let cut = match record.stored_ms {
                Some(stored) if stored < before_ms => i64::MAX,
                Some(_) => i64::MIN,
                None => before_ms,
            };
            changed |= self.streams.drop_positions_in(start..end, cut);
            start = end;
        }
        changed
    }

    /// The newest record's position: the chunk's key.
    pub fn last_lsn(&self) -> u64 {
        self.records.last().map_or(0, |record| record.lsn)
    }

    pub fn len(&self) -> usize {
        self.streams.len()
    }

    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }

    /// A format byte, then zstd (level 1) of the postcard encoding: columns of neighbouring
    /// samples are alike, so a chunk takes about a third of its plain bytes for a few
    /// microseconds per 1,000 samples.
    pub fn encode(&self) -> Vec<u8> {
        let plain = postcard::to_allocvec(self).expect("chunks always serialize");
        let mut out = vec![FORMAT_STORED];
        ZSTD.with_borrow_mut(|zstd| {
            let frame = zstd.compressor.compress(&plain).expect("zstd compresses any input");
            out.extend_from_slice(&frame);
        });
        out
    }

    /// Decodes a stored chunk; `key_lsn` is the position it is stored under, which names the one
    /// record of a chunk written before chunks listed their records.
    pub fn decode(bytes: &[u8], key_lsn: u64) -> Result<Chunk, StreamsError> {
        match bytes.split_first() {
            Some((&format @ (FORMAT_RECORDS | FORMAT_STORED), frame)) => {
                let plain = decompress(frame)?;
                let chunk: Chunk = if format == FORMAT_STORED {
                    postcard::from_bytes(&plain).map_err(StreamsError::Encoding)?
                } else {
                    let old: ChunkWithoutTimes = postcard::from_bytes(&plain).map_err(StreamsError::Encoding)?;
                    let records = old
                        .records
                        .into_iter()
                        .map(|(lsn, samples)| RecordSpan { lsn, samples, stored_ms: None })
                        .collect();
                    Chunk { records, streams: old.streams }
                };
                let listed: usize = chunk.records.iter().map(|r| r.samples as usize).sum();
                if listed != chunk.len() {
                    return Err(StreamsError::Inconsistent { listed, held: chunk.len() });
                }
                Ok(chunk)
            }
            _ => {
                let streams: Streams = postcard::from_bytes(&decompress(bytes)?).map_err(StreamsError::Encoding)?;
                Ok(Chunk::of_record(key_lsn, streams))
            }
        }
    }
}

fn decompress(frame: &[u8]) -> Result<Vec<u8>, StreamsError> {
    ZSTD.with_borrow_mut(|zstd| zstd.decompressor.decompress(frame, MAX_CHUNK_BYTES)).map_err(StreamsError::Compression)
}

/// A workout's streams from its chunks in key order, each record's samples once: a record that
/// an earlier chunk already gave (a chunk of another writer that covered it too) is skipped.
/// Chunks are taken one at a time as the store reads them, so only one is decoded at once.
pub fn assemble<E>(chunks: impl IntoIterator<Item = Result<Chunk, E>>) -> Result<Streams, E> {
    let mut out = Streams::default();
    let mut through = None;
    for chunk in chunks {
        let chunk = chunk?;
        let mut start = 0;
        for record in &chunk.records {
            let end = start + record.samples as usize;
            if through.is_none_or(|t| record.lsn > t) {
                out.extend_range(&chunk.streams, start..end);
                through = Some(record.lsn);
            }
            start = end;
        }
    }
    Ok(out)
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
    pub fn from_points(points: &Points) -> Streams {
        let mut streams = Streams::default();
        streams.extend_from_points(points);
        streams
    }

    /// Appends the columns of a record's points (this runs for every record the read store takes).
    pub fn extend_from_points(&mut self, points: &Points) {
        self.time_ms.extend_from_slice(&points.time_ms);
        self.lat_e7.extend(points.lat_deg.iter().map(|deg| deg.map(to_e7)));
        self.lon_e7.extend(points.lon_deg.iter().map(|deg| deg.map(to_e7)));
        self.distance_m.extend_from_slice(&points.distance_m);
        self.altitude_m.extend_from_slice(&points.altitude_m);
        self.heart_rate_bpm.extend_from_slice(&points.heart_rate_bpm);
        self.cadence_rpm.extend_from_slice(&points.cadence_rpm);
        self.power_w.extend_from_slice(&points.power_w);
        self.moving.extend_from_slice(&points.moving);
        self.grade_pct.extend_from_slice(&points.grade_pct);
    }

    pub fn len(&self) -> usize {
        self.time_ms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.time_ms.is_empty()
    }

    /// Appends samples `range` of `other`.
    pub fn extend_range(&mut self, other: &Streams, range: std::ops::Range<usize>) {
        self.time_ms.extend_from_slice(&other.time_ms[range.clone()]);
        self.lat_e7.extend_from_slice(&other.lat_e7[range.clone()]);
        self.lon_e7.extend_from_slice(&other.lon_e7[range.clone()]);
        self.distance_m.extend_from_slice(&other.distance_m[range.clone()]);
        self.altitude_m.extend_from_slice(&other.altitude_m[range.clone()]);
        self.heart_rate_bpm.extend_from_slice(&other.heart_rate_bpm[range.clone()]);
        self.cadence_rpm.extend_from_slice(&other.cadence_rpm[range.clone()]);
        self.power_w.extend_from_slice(&other.power_w[range.clone()]);
        self.moving.extend_from_slice(&other.moving[range.clone()]);
        self.grade_pct.extend_from_slice(&other.grade_pct[range]);
    }

    /// `[lat, lon]` of sample `i` in degrees, when it has a position.
    pub fn latlng(&self, i: usize) -> Option<[f64; 2]> {
        Some([f64::from(self.lat_e7[i]?) / E7, f64::from(self.lon_e7[i]?) / E7])
    }

    /// Nulls the positions of samples recorded before `before_ms`; true if any changed.
    pub fn drop_positions_before(&mut self, before_ms: i64) -> bool {
        self.drop_positions_in(0..self.len(), before_ms)
    }

    /// Nulls the positions of the samples in `range` recorded before `before_ms`; true if any
    /// changed.
    fn drop_positions_in(&mut self, range: std::ops::Range<usize>, before_ms: i64) -> bool {
        let mut changed = false;
        for i in range {
            if self.time_ms[i] < before_ms && (self.lat_e7[i].is_some() || self.lon_e7[i].is_some()) {
                self.lat_e7[i] = None;
                self.lon_e7[i] = None;
                changed = true;
            }
        }
        changed
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
        let chunk = Chunk::of_record(7, Streams::from_points(&Points::from_iter([point])));
        let streams = Chunk::decode(&chunk.encode(), 7).unwrap().streams;
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

    fn numbered(from: i64, n: i64) -> Streams {
        let points: Points = (from..from + n).map(|i| EnrichedPoint { time_ms: i, ..Default::default() }).collect();
        Streams::from_points(&points)
    }

    fn chunk_of(records: &[(u64, i64, i64)]) -> Chunk {
        let mut chunk = Chunk::default();
        for &(lsn, from, n) in records {
            chunk.records.push(RecordSpan { lsn, samples: n as u32, stored_ms: None });
            let streams = numbered(from, n);
            chunk.streams.extend_range(&streams, 0..streams.len());
        }
        chunk
    }

    #[test]
    fn a_chunk_lists_its_records_through_a_round_trip() {
        let chunk = chunk_of(&[(3, 0, 2), (5, 2, 3)]);
        let decoded = Chunk::decode(&chunk.encode(), 5).unwrap();
        assert_eq!(decoded, chunk);
        assert_eq!(decoded.last_lsn(), 5);
    }

    #[test]
    fn a_chunk_of_the_earlier_format_is_one_record_at_its_key() {
        // The earlier format: zstd of the postcard streams alone.
        let streams = numbered(0, 4);
        let legacy = zstd::bulk::compress(&postcard::to_allocvec(&streams).unwrap(), 1).unwrap();
        let chunk = Chunk::decode(&legacy, 9).unwrap();
        assert_eq!(chunk.records, vec![RecordSpan { lsn: 9, samples: 4, stored_ms: None }]);
        assert_eq!(chunk.streams, streams);
    }

    #[test]
    fn a_chunk_whose_records_disagree_with_its_samples_is_refused() {
        let mut chunk = chunk_of(&[(3, 0, 2)]);
        chunk.records[0].samples = 3;
        assert!(matches!(Chunk::decode(&chunk.encode(), 3), Err(StreamsError::Inconsistent { listed: 3, held: 2 })));
    }

    #[test]
    fn overlapping_chunks_give_every_record_once() {
        // Two writers of one log from the same position: one merged records 1..=3, the other
        // stored 1 and 2..=3 apart; read in key order (last LSN, then as stored).
        let times = |chunks: Vec<Chunk>| assemble(chunks.into_iter().map(Ok::<_, StreamsError>)).unwrap().time_ms;
        let one = chunk_of(&[(1, 0, 2)]);
        let two_three = chunk_of(&[(2, 2, 2), (3, 4, 1)]);
        let merged = chunk_of(&[(1, 0, 2), (2, 2, 2), (3, 4, 1)]);
        assert_eq!(times(vec![one.clone(), merged.clone()]), vec![0, 1, 2, 3, 4]);
        assert_eq!(times(vec![one, two_three]), vec![0, 1, 2, 3, 4]);
        assert_eq!(times(vec![merged, chunk_of(&[(4, 5, 1)])]), vec![0, 1, 2, 3, 4, 5]);
    }
}
