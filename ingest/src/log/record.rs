//! Record framing inside a segment file. Pure functions over bytes: no IO.
//!
//! ```text
//! segment  := MAGIC record*
//! record   := body_len:u32le crc32:u32le body           (crc32 = CRC-32/ISO-HDLC of body)
//! body     := lsn:u64le appended_ms:i64le workout_id:[u8;16] seq:u64le payload     (TWLOG002)
//! body     := lsn:u64le workout_id:[u8;16] seq:u64le payload                      (TWLOG001)
//! ```
//! The dedup key travels in the header so that opening the log rebuilds the dedup index without
//! decoding any FlatBuffers. `appended_ms` is when the group commit that stored the record began
//! (Unix ms, the writer's clock): retention of what the record holds counts from it. Segments of
//! the first format are still read; their records have no append time.

use trackwire_codec::WorkoutId;

/// First bytes of every segment file written now; the trailing digits are the format version.
pub const MAGIC: &[u8; 8] = b"TWLOG002";
/// First bytes of a segment of the first format (records without an append time).
pub const MAGIC_V1: &[u8; 8] = b"TWLOG001";
/// Bytes before the body: length and CRC.
pub const FRAME_HEADER: usize = 8;

/// A segment's record format, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `TWLOG001`: no append time.
    V1,
    /// `TWLOG002`: each record carries its append time.
    V2,
}

impl Format {
    /// The format a segment starting with `magic` is written in, if it is a log segment at all.
    pub fn of_magic(magic: &[u8]) -> Option<Format> {
        match magic {
            m if m == MAGIC => Some(Format::V2),
            m if m == MAGIC_V1 => Some(Format::V1),
            _ => None,
        }
    }

    /// Bytes of the body before the payload.
    pub fn body_header(self) -> usize {
        match self {
            Format::V1 => 8 + 16 + 8,
            Format::V2 => 8 + 8 + 16 + 8,
        }
    }
}

/// Bytes of the body before the payload in the format written now.
pub const BODY_HEADER: usize = 8 + 8 + 16 + 8;

/// The identity of a batch: a retried batch has the same key and is stored once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DedupKey {
    pub workout_id: WorkoutId,
    pub seq: u64,
}

/// Appends one framed record, stored at `appended_ms`, to `out` (in the format written now).
pub fn encode_record(out: &mut Vec<u8>, lsn: u64, appended_ms: i64, key: DedupKey, payload: &[u8]) {
    let body_len = BODY_HEADER + payload.len();
    out.reserve(FRAME_HEADER + body_len);
    let body_start = out.len() + FRAME_HEADER;
    out.extend_from_slice(&(body_len as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&lsn.to_le_bytes());
    out.extend_from_slice(&appended_ms.to_le_bytes());
    out.extend_from_slice(&key.workout_id.0);
    out.extend_from_slice(&key.seq.to_le_bytes());
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out[body_start..]);
    out[body_start - 4..body_start].copy_from_slice(&crc.to_le_bytes());
}

/// A record parsed in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'a> {
    pub lsn: u64,
    /// When the record was stored (None in the first format).
    pub appended_ms: Option<i64>,
    pub key: DedupKey,
    pub payload: &'a [u8],
    /// Offset of the payload inside the buffer that was parsed.
    pub payload_offset: usize,
}

/// Why the bytes at an offset are not a whole record. At the tail of the last segment this is a
/// torn write from a crash; anywhere else it is corruption.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("{remaining} bytes left, fewer than a record header")]
    ShortHeader { remaining: usize },
    #[error("record length {body_len} is impossible (must be at least {least})")]
    BadLength { body_len: usize, least: usize },
    #[error("record claims {body_len} bytes but only {remaining} remain")]
    ShortBody { body_len: usize, remaining: usize },
    #[error("checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    Checksum { stored: u32, computed: u32 },
}

/// Parses the record at `buf[offset..]` of a segment in `format`; returns it and the offset of
/// the next record.
pub fn decode_record(buf: &[u8], offset: usize, format: Format) -> Result<(RecordRef<'_>, usize), FrameError> {
    let header = format.body_header();
    let rest = &buf[offset..];
    if rest.len() < FRAME_HEADER {
        return Err(FrameError::ShortHeader { remaining: rest.len() });
    }
    let body_len = u32::from_le_bytes(rest[0..4].try_into().expect("4 bytes")) as usize;
    let stored = u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes"));
    if body_len < header {
        return Err(FrameError::BadLength { body_len, least: header });
    }
    let remaining = rest.len() - FRAME_HEADER;
    if body_len > remaining {
        return Err(FrameError::ShortBody { body_len, remaining });
    }
    let body = &rest[FRAME_HEADER..FRAME_HEADER + body_len];
    let computed = crc32fast::hash(body);
    if computed != stored {
        return Err(FrameError::Checksum { stored, computed });
    }
    let lsn = u64::from_le_bytes(body[0..8].try_into().expect("8 bytes"));
    let (appended_ms, rest) = match format {
        Format::V1 => (None, &body[8..]),
        Format::V2 => (Some(i64::from_le_bytes(body[8..16].try_into().expect("8 bytes"))), &body[16..]),
    };
    let workout_id = WorkoutId(rest[0..16].try_into().expect("16 bytes"));
    let seq = u64::from_le_bytes(rest[16..24].try_into().expect("8 bytes"));
    let record = RecordRef {
        lsn,
        appended_ms,
        key: DedupKey { workout_id, seq },
        payload: &body[header..],
        payload_offset: offset + FRAME_HEADER + header,
    };
    Ok((record, offset + FRAME_HEADER + body_len))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn records_round_trip_and_any_cut_is_detected(
            payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 1..8),
            cut_back in 1usize..40,
        ) {
            let mut buf = Vec::new();
            for (i, p) in payloads.iter().enumerate() {
                encode_record(&mut buf, i as u64 + 10, 1_700_000_000_000 + i as i64, DedupKey { workout_id: WorkoutId([i as u8; 16]), seq: i as u64 }, p);
            }
            let mut offset = 0;
            for (i, p) in payloads.iter().enumerate() {
                let (rec, next) = decode_record(&buf, offset, Format::V2).unwrap();
                prop_assert_eq!(rec.lsn, i as u64 + 10);
                prop_assert_eq!(rec.appended_ms, Some(1_700_000_000_000 + i as i64));
                prop_assert_eq!(rec.payload, &p[..]);
                offset = next;
            }
            prop_assert_eq!(offset, buf.len());
            // A torn tail: the last record (at least 40 bytes) loses 1..=39 bytes of its end.
            let cut = buf.len() - cut_back;
            let mut offset = 0;
            let mut whole = 0;
            while let Ok((_, next)) = decode_record(&buf[..cut], offset, Format::V2) { offset = next; whole += 1; }
            prop_assert_eq!(whole, payloads.len() - 1);
            prop_assert!(offset <= cut);
        }
    }

    #[test]
    fn flipped_bit_is_a_checksum_error() {
        let mut buf = Vec::new();
        encode_record(&mut buf, 1, 0, DedupKey { workout_id: WorkoutId([0; 16]), seq: 0 }, b"hello");
        let last = buf.len() - 1;
        buf[last] ^= 1;
        assert!(matches!(decode_record(&buf, 0, Format::V2), Err(FrameError::Checksum { .. })));
    }

    /// A record of the first format, as that build framed it.
    fn v1_record(lsn: u64, key: DedupKey, payload: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&lsn.to_le_bytes());
        body.extend_from_slice(&key.workout_id.0);
        body.extend_from_slice(&key.seq.to_le_bytes());
        body.extend_from_slice(payload);
        let mut out = (body.len() as u32).to_le_bytes().to_vec();
        out.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        out.extend_from_slice(&body);
        out
    }

    #[test]
    fn records_of_the_first_format_still_read_without_an_append_time() {
        let key = DedupKey { workout_id: WorkoutId([7; 16]), seq: 3 };
        let buf = v1_record(42, key, b"batch");
        let (rec, next) = decode_record(&buf, 0, Format::V1).unwrap();
        assert_eq!((rec.lsn, rec.appended_ms, rec.key, rec.payload), (42, None, key, &b"batch"[..]));
        assert_eq!(next, buf.len());
        assert_eq!(Format::of_magic(MAGIC_V1), Some(Format::V1));
        assert_eq!(Format::of_magic(MAGIC), Some(Format::V2));
        assert_eq!(Format::of_magic(b"TWLOG999"), None);
    }
}
