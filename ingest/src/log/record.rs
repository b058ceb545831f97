//! Record framing inside a segment file. Pure functions over bytes: no IO.
//!
//! ```text
//! segment  := MAGIC record*
//! record   := body_len:u32le crc32:u32le body           (crc32 = CRC-32/ISO-HDLC of body)
//! body     := lsn:u64le workout_id:[u8;16] seq:u64le payload
//! ```
//! The dedup key travels in the header so that opening the log rebuilds the dedup index without
//! decoding any FlatBuffers.

use trackwire_codec::WorkoutId;

/// First bytes of every segment file; the trailing digits are the format version.
pub const MAGIC: &[u8; 8] = b"TWLOG001";
/// Bytes before the body: length and CRC.
pub const FRAME_HEADER: usize = 8;
/// Bytes of the body before the payload: lsn, workout id, seq.
pub const BODY_HEADER: usize = 8 + 16 + 8;

/// The identity of a batch: a retried batch has the same key and is stored once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DedupKey {
    pub workout_id: WorkoutId,
    pub seq: u64,
}

/// Appends one framed record to `out`.
pub fn encode_record(out: &mut Vec<u8>, lsn: u64, key: DedupKey, payload: &[u8]) {
    let body_len = BODY_HEADER + payload.len();
    out.reserve(FRAME_HEADER + body_len);
    let body_start = out.len() + FRAME_HEADER;
    out.extend_from_slice(&(body_len as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&lsn.to_le_bytes());
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
    #[error("record length {body_len} is impossible (must be at least {BODY_HEADER})")]
    BadLength { body_len: usize },
    #[error("record claims {body_len} bytes but only {remaining} remain")]
    ShortBody { body_len: usize, remaining: usize },
    #[error("checksum mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    Checksum { stored: u32, computed: u32 },
}

/// Parses the record at `buf[offset..]`; returns it and the offset of the next record.
pub fn decode_record(buf: &[u8], offset: usize) -> Result<(RecordRef<'_>, usize), FrameError> {
    let rest = &buf[offset..];
    if rest.len() < FRAME_HEADER {
        return Err(FrameError::ShortHeader { remaining: rest.len() });
    }
    let body_len = u32::from_le_bytes(rest[0..4].try_into().expect("4 bytes")) as usize;
    let stored = u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes"));
    if body_len < BODY_HEADER {
        return Err(FrameError::BadLength { body_len });
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
    let workout_id = WorkoutId(body[8..24].try_into().expect("16 bytes"));
    let seq = u64::from_le_bytes(body[24..32].try_into().expect("8 bytes"));
    let record = RecordRef {
        lsn,
        key: DedupKey { workout_id, seq },
        payload: &body[BODY_HEADER..],
        payload_offset: offset + FRAME_HEADER + BODY_HEADER,
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
                encode_record(&mut buf, i as u64 + 10, DedupKey { workout_id: WorkoutId([i as u8; 16]), seq: i as u64 }, p);
            }
            let mut offset = 0;
            for (i, p) in payloads.iter().enumerate() {
                let (rec, next) = decode_record(&buf, offset).unwrap();
                prop_assert_eq!(rec.lsn, i as u64 + 10);
                prop_assert_eq!(rec.payload, &p[..]);
                offset = next;
            }
            prop_assert_eq!(offset, buf.len());
            // A torn tail: the last record (at least 40 bytes) loses 1..=39 bytes of its end.
            let cut = buf.len() - cut_back;
            let mut offset = 0;
            let mut whole = 0;
            while let Ok((_, next)) = decode_record(&buf[..cut], offset) { offset = next; whole += 1; }
            prop_assert_eq!(whole, payloads.len() - 1);
            prop_assert!(offset <= cut);
        }
    }

    #[test]
    fn flipped_bit_is_a_checksum_error() {
        let mut buf = Vec::new();
        encode_record(&mut buf, 1, DedupKey { workout_id: WorkoutId([0; 16]), seq: 0 }, b"hello");
        let last = buf.len() - 1;
        buf[last] ^= 1;
        assert!(matches!(decode_record(&buf, 0), Err(FrameError::Checksum { .. })));
    }
}
