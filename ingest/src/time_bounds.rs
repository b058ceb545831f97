//! Clock sanity: the instants a batch's samples and events may carry. A device with a reset
//! clock sends 1970 or 2099; such batches would land in the wrong lake partition and sit at the
//! top of every newest-first list forever. Refused at the door instead, with the bounds said.

use trackwire_codec::BatchView;

use crate::IngestError;

/// 2000-01-01T00:00:00Z: older than any GPS watch's recordings, newer than the placeholder
/// times of devices without a clock fix (1970, and FIT's 1989-12-31 epoch).
pub const DEFAULT_EARLIEST_MS: i64 = 946_684_800_000;
/// A day: time zones and drifting clocks stay inside it, a wrong year does not.
pub const DEFAULT_MAX_AHEAD_MS: i64 = 86_400_000;

/// What a sample's or event's time may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeBounds {
    /// No earlier than this (Unix ms).
    pub earliest_ms: i64,
    /// No later than this far past the server's clock (ms).
    pub max_ahead_ms: i64,
}

impl Default for TimeBounds {
    fn default() -> Self {
        TimeBounds { earliest_ms: DEFAULT_EARLIEST_MS, max_ahead_ms: DEFAULT_MAX_AHEAD_MS }
    }
}

impl TimeBounds {
    /// The refusal for `batch` at `now_ms`, if one of its instants (its base time, each sample,
    /// each event) is out of bounds.
    pub fn check(&self, batch: &BatchView<'_>, now_ms: i64) -> Result<(), IngestError> {
        let offsets =
            batch.samples().iter().map(|s| s.time_offset_ms()).chain(batch.events().iter().map(|e| e.time_offset_ms()));
        // No samples or events (a manual entry): the base time alone.
        let (low, high) = offsets
            .fold(None, |span: Option<(u32, u32)>, t| Some(span.map_or((t, t), |(lo, hi)| (lo.min(t), hi.max(t)))))
            .unwrap_or((0, 0));
        let base = batch.base_time_ms();
        let latest_ms = now_ms.saturating_add(self.max_ahead_ms);
        let (first, last) = (base.saturating_add(i64::from(low)), base.saturating_add(i64::from(high)));
        let outside = if first < self.earliest_ms {
            Some(first)
        } else if last > latest_ms {
            Some(last)
        } else {
            None
        };
        match outside {
            Some(time_ms) => Err(IngestError::TimeOutOfRange { time_ms, earliest_ms: self.earliest_ms, latest_ms }),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use trackwire_codec::{BatchData, ControlKind, DecodeLimits, Sample, WorkoutId, decode_batch, encode_batch};

    use super::*;

    const NOW: i64 = 1_764_000_000_000;

    fn batch(base_time_ms: i64, offsets: &[u32], event_offset: Option<u32>) -> Vec<u8> {
        encode_batch(&BatchData {
            device_id: "watch-1".into(),
            user_id: "u".into(),
            workout_id: WorkoutId([1; 16]),
            base_time_ms,
            samples: offsets.iter().map(|t| Sample::new(*t, 1, 2, 3, 4, 5, 6, 7, 0)).collect(),
            events: event_offset
                .map(|t| vec![trackwire_codec::ControlEvent::new(t, ControlKind::Lap)])
                .unwrap_or_default(),
            ..BatchData::default()
        })
    }

    fn verdict(bytes: &[u8]) -> Result<(), i64> {
        let view = decode_batch(bytes, &DecodeLimits::default()).unwrap();
        TimeBounds::default().check(&view, NOW).map_err(|e| match e {
            IngestError::TimeOutOfRange { time_ms, .. } => time_ms,
            other => panic!("{other}"),
        })
    }

    #[test]
    fn instants_from_2000_to_a_day_ahead_pass_and_the_first_one_outside_is_named() {
        assert_eq!(verdict(&batch(NOW - 3_600_000, &[0, 1000, 2000], Some(1500))), Ok(()));
        assert_eq!(verdict(&batch(DEFAULT_EARLIEST_MS, &[0], None)), Ok(()));
        assert_eq!(verdict(&batch(NOW + DEFAULT_MAX_AHEAD_MS, &[], None)), Ok(()), "the bound itself passes");
        assert_eq!(verdict(&batch(0, &[0, 1000], None)), Err(0), "a reset clock: 1970");
        assert_eq!(verdict(&batch(i64::MIN, &[5], None)), Err(i64::MIN + 5));
        assert_eq!(verdict(&batch(i64::MAX, &[0], None)), Err(i64::MAX));
        // 49 days of offsets: the batch starts now and ends far ahead.
        assert_eq!(verdict(&batch(NOW, &[0, 4_233_600_000], None)), Err(NOW + 4_233_600_000));
        assert_eq!(verdict(&batch(NOW, &[0], Some(200_000_000))), Err(NOW + 200_000_000), "events count too");
        assert_eq!(
            verdict(&batch(DEFAULT_EARLIEST_MS - 1, &[], None)),
            Err(DEFAULT_EARLIEST_MS - 1),
            "no samples: the base"
        );
    }
}
