//! The idle timeout's driver: finds workouts in progress whose latest batch the log stored more
//! than `pipeline.idle_timeout_secs` ago, and appends the server's idle-timeout record for each
//! to the log that feeds them (`trackwire_codec::idle_timeout_batch`). The pipeline then
//! completes them like any device's Complete, with reason `idle_timeout`.
//!
//! Deciding here, from the clock, is safe because the decision is itself a log record: a replay
//! reads it and decides the same, and a record that lost a race with a late batch (the batch
//! was stored first) no longer matches the workout's batch count, so the pipeline ignores it.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use trackwire_codec::{WorkoutId, encode_batch, idle_timeout_batch, sport_named};
use trackwire_ingest::log::{DedupKey, DurableLog, WorkoutOwner};
use trackwire_pipeline::LiveWorkouts;

/// Appends idle-timeout records to one log.
pub struct IdleSweeper {
    log: DurableLog,
    timeout_ms: i64,
    /// Records appended and not yet applied, by workout: the batch count they were made for, and
    /// the log's answer. Asked once, not again every sweep while the pipeline catches up, unless
    /// the log failed to store it.
    asked: HashMap<WorkoutId, (u64, Option<Pending>)>,
}

type Pending = tokio::sync::oneshot::Receiver<Result<trackwire_ingest::log::Appended, trackwire_ingest::log::LogError>>;

/// False once the log said it could not store the record (or dropped the request); the
/// answer is taken once (None: stored).
fn may_still_store(answer: &mut Option<Pending>) -> bool {
    use tokio::sync::oneshot::error::TryRecvError;
    let Some(pending) = answer else { return true };
    match pending.try_recv() {
        Err(TryRecvError::Empty) => true,
        Ok(Ok(_)) => {
            *answer = None;
            true
        }
        Ok(Err(_)) | Err(TryRecvError::Closed) => false,
    }
}

impl IdleSweeper {
    pub fn new(log: DurableLog, timeout: Duration) -> IdleSweeper {
        IdleSweeper { log, timeout_ms: timeout.as_millis().min(i64::MAX as u128) as i64, asked: HashMap::new() }
    }

    /// How often to sweep: a quarter of the timeout, so a workout ends at most a quarter late,
    /// between half a second and a minute.
    pub fn interval(timeout: Duration) -> Duration {
        (timeout / 4).clamp(Duration::from_millis(500), Duration::from_secs(60))
    }

    /// Appends the record of every workout of `live` idle at `now_ms`; returns how many were
    /// appended. A full log queue is left for the next sweep.
    pub fn sweep<'a>(&mut self, live: impl IntoIterator<Item = &'a LiveWorkouts>, now_ms: i64) -> usize {
        let cutoff = now_ms.saturating_sub(self.timeout_ms);
        let idle: Vec<_> = live.into_iter().flat_map(|live| live.idle_since(cutoff)).collect();
        let batches_now: HashMap<WorkoutId, u64> = idle.iter().map(|w| (w.workout_id, w.batches)).collect();
        self.asked.retain(|id, (batches, pending)| batches_now.get(id) == Some(batches) && may_still_store(pending));
        let mut appended = 0;
        for workout in idle {
            if self.asked.contains_key(&workout.workout_id) {
                continue;
            }
            let record = idle_timeout_batch(
                workout.workout_id,
                &workout.user_id,
                &workout.device_id,
                sport_named(&workout.sport),
                workout.batches,
                workout.end_time_ms,
            );
            let key = DedupKey { workout_id: record.workout_id, seq: record.seq };
            let owner =
                WorkoutOwner { user_id: workout.user_id.as_str().into(), device_id: workout.device_id.as_str().into() };
            match self.log.try_append_as(key, Bytes::from(encode_batch(&record)), None, Some(owner)) {
                Ok(pending) => {
                    tracing::info!(
                        workout = %workout.workout_id,
                        idle_secs = (now_ms - workout.stored_through_ms.unwrap_or(now_ms)) / 1000,
                        "no batch for longer than pipeline.idle_timeout_secs: completing the workout"
                    );
                    self.asked.insert(workout.workout_id, (workout.batches, Some(pending)));
                    appended += 1;
                }
                Err(err) => {
                    tracing::debug!(workout = %workout.workout_id, %err, "idle timeout not appended; next sweep");
                    break;
                }
            }
        }
        appended
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use trackwire_codec::{BatchData, Sample, Sport, decode_batch};
    use trackwire_ingest::log::{LogConfig, LogEntry};
    use trackwire_pipeline::ShardCore;

    use super::*;

    const HOUR_MS: i64 = 3_600_000;

    fn batch(seq: u64) -> Vec<u8> {
        encode_batch(&BatchData {
            device_id: "watch".into(),
            user_id: "ada".into(),
            workout_id: WorkoutId([5; 16]),
            sport: Sport::Cycling,
            seq,
            base_time_ms: 1_700_000_000_000 + seq as i64 * 1000,
            samples: vec![Sample::new(0, 473_000_000, 85_000_000, 40_000, 120, 255, u16::MAX, 50, 0)],
            ..BatchData::default()
        })
    }

    /// Waits until the log has handed on `n` entries, and returns their (seq, payload).
    fn wait_for(entries: &Mutex<Vec<(u64, Bytes)>>, n: usize) -> Vec<(u64, Bytes)> {
        for _ in 0..500 {
            if entries.lock().unwrap().len() >= n {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        entries.lock().unwrap().clone()
    }

    /// A workout silent for an hour past the timeout gets one record, however often the sweeper
    /// looks, until a batch changes it; the record is what the pipeline ends the workout with.
    #[test]
    fn a_silent_workout_is_asked_once_per_batch_count() {
        let dir = tempfile::tempdir().unwrap();
        let entries = Arc::new(Mutex::new(Vec::new()));
        let seen = entries.clone();
        let forward = Box::new(move |entry: LogEntry| {
            if let LogEntry::Record(record) = entry {
                seen.lock().unwrap().push((record.key.seq, record.payload));
            }
            true
        });
        let config = LogConfig { dir: dir.path().join("log"), ..LogConfig::default() };
        let (log, writer) = trackwire_ingest::log::DurableLog::open(config, forward).unwrap();

        let (live, mut core) = (LiveWorkouts::default(), ShardCore::default());
        let now = 1_800_000_000_000;
        let first = core.process_stored(1, Some(now - 3 * HOUR_MS), &batch(0));
        live.update(first.summary.as_ref().unwrap());
        let mut sweeper = IdleSweeper::new(log.clone(), Duration::from_secs(7200));
        assert_eq!(sweeper.sweep([&live], now - HOUR_MS - 1), 0, "not yet two hours");
        assert_eq!(sweeper.sweep([&live], now), 1);
        wait_for(&entries, 1);
        assert_eq!(sweeper.sweep([&live], now + 1000), 0, "asked already");

        // A batch came meanwhile (stored before the record was applied), still two hours ago.
        let second = core.process_stored(2, Some(now - 2 * HOUR_MS - 5), &batch(1));
        live.update(second.summary.as_ref().unwrap());
        assert_eq!(sweeper.sweep([&live], now + 2000), 1, "a new batch count: asked again");
        let stored = wait_for(&entries, 2);
        let seqs: Vec<u64> = stored.iter().map(|(seq, _)| *seq).collect();
        assert_eq!(seqs, [trackwire_codec::idle_timeout_seq(1), trackwire_codec::idle_timeout_seq(2)]);

        // In log order: the first record is stale, the second ends the workout at its last sample.
        assert!(core.process(3, &stored[0].1).summary.is_none());
        let ended = core.process(4, &stored[1].1);
        let summary = ended.summary.unwrap();
        assert_eq!(summary.end_reason, Some(trackwire_pipeline::EndReason::IdleTimeout));
        assert_eq!(summary.end_time_ms, second.summary.unwrap().end_time_ms);
        let view = decode_batch(&stored[1].1, &Default::default()).unwrap();
        assert_eq!((view.user_id(), view.device_id(), view.sport()), ("ada", "watch", Sport::Cycling));
        live.update(&summary);
        assert_eq!(sweeper.sweep([&live], now + 3000), 0, "ended: nothing to ask");

        drop((sweeper, log));
        writer.join().unwrap().unwrap();
    }
}
