//! The one record the server writes into a workout itself: the idle timeout. A workout whose
//! device stopped sending (a watch that died, an app that was killed) would otherwise stay in
//! progress forever: no completion, no lake row, and the log pinned from its first batch.
//!
//! The record is an ordinary batch (so it travels through the log and replays like any other)
//! carrying one [`ControlKind::TimedOut`] event, under the workout's own user and device, with a
//! seq from the server's range. The seq also says how many batches the workout had when the
//! server decided: if another batch was applied in between, the record no longer matches and the
//! pipeline ignores it. So whether it ends the workout depends only on the log's order, and a
//! replay decides the same.

use crate::{BatchData, ControlEvent, ControlKind, Sport, WorkoutId};

/// Seqs at and above this are the server's (a device counts from 0 and never reaches them).
pub const SERVER_SEQ_FLOOR: u64 = 1 << 63;

/// The seq of the idle-timeout record for a workout that had `batches` batches applied when the
/// server decided to end it. A second decision before the first was applied is the same record
/// (the log stores it once); one after a new batch is a different one.
pub fn idle_timeout_seq(batches: u64) -> u64 {
    u64::MAX - batches.min(u64::MAX - SERVER_SEQ_FLOOR)
}

/// The idle-timeout record of a workout: `(workout, user, device, sport)` as its first batch
/// said, `batches` applied so far, ending at `end_ms` (its last sample or event: the workout
/// ended when the device fell silent, not when the server noticed).
pub fn idle_timeout_batch(
    workout_id: WorkoutId,
    user_id: &str,
    device_id: &str,
    sport: Sport,
    batches: u64,
    end_ms: i64,
) -> BatchData {
    BatchData {
        device_id: device_id.to_owned(),
        user_id: user_id.to_owned(),
        workout_id,
        sport,
        seq: idle_timeout_seq(batches),
        base_time_ms: end_ms,
        events: vec![ControlEvent::new(0, ControlKind::TimedOut)],
        ..BatchData::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DecodeLimits, decode_batch, encode_batch};

    #[test]
    fn the_record_decodes_and_matches_only_the_batch_count_it_was_made_for() {
        let record = idle_timeout_batch(WorkoutId([3; 16]), "ada", "watch", Sport::Running, 7, 1_700_000_000_000);
        let bytes = encode_batch(&record);
        let view = decode_batch(&bytes, &DecodeLimits::default()).unwrap();
        assert!(view.seq() >= SERVER_SEQ_FLOOR);
        assert_eq!(view.seq(), idle_timeout_seq(7));
        assert_ne!(view.seq(), idle_timeout_seq(8), "a batch applied since: stale");
        assert_eq!(view.events().iter().map(|e| e.kind()).collect::<Vec<_>>(), [ControlKind::TimedOut]);
        assert!(idle_timeout_seq(0) >= SERVER_SEQ_FLOOR, "a device's seq never matches");
        assert_eq!(idle_timeout_seq(u64::MAX), SERVER_SEQ_FLOOR, "stays in the server's range");
    }
}
