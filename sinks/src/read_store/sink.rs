use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use trackwire_codec::WorkoutId;
use trackwire_pipeline::{LiveWorkouts, ShardOutput, WorkoutSummary};

use super::{Chunk, ReadStore, SINK_NAME, StreamChunk};
use crate::{Command, ErasureScope, Sink, SinkError};

/// A workout's chunk is sealed (encoded, ready to store) once it holds this many samples, so a
/// long offline upload is not one huge chunk; otherwise at the flush.
pub(super) const CHUNK_SAMPLES: usize = 50_000;

/// Past this many samples waiting for the store (≈ 50 MB), the coordinator waits for a flush.
const FULL_SAMPLES: usize = 1_000_000;

/// How often a sink [recording the replay start](ReadStoreSink::recording_replay_start) records
/// it at most: an older value is an earlier start, as safe, only longer to replay.
const REPLAY_START_EVERY: Duration = Duration::from_secs(5);

/// The name under which the read store keeps where a replay of `log` must start (see
/// [`ReadStoreSink::recording_replay_start`]).
pub fn replay_start_name(log: &str) -> String {
    format!("replay-start:{log}")
}

/// Keeps the read store current: the latest summary of each workout and its streams, committed
/// per flush. A workout's records between two flushes become one chunk: one zstd frame and one
/// key where a record each cost both (a closed-loop client sends a workout's batches back to
/// back, dozens per flush).
pub struct ReadStoreSink {
    store: Arc<dyn ReadStore>,
    /// Which log's positions the LSNs are (see [`ReadStore::checkpoint`]).
    log: String,
    pending: HashMap<WorkoutId, WorkoutSummary>,
    /// Each workout's records since its last sealed chunk.
    open: HashMap<WorkoutId, Chunk>,
    /// Chunks waiting for the next commit.
    sealed: Vec<StreamChunk>,
    waiting_samples: usize,
    committed: u64,
    last_fed: u64,
    /// The newest output handed to it, replays of what it holds included: the live view knows
    /// every workout begun up to there.
    accepted_through: u64,
    /// Told what is committed, so it holds ended workouts only until the store has them.
    live: Option<Arc<LiveWorkouts>>,
    /// The replay start last recorded, and when; None when the sink records none.
    replay_start: Option<(u64, Option<Instant>)>,
}

fn seal(workout_id: WorkoutId, chunk: &Chunk) -> StreamChunk {
    StreamChunk { workout_id, lsn: chunk.last_lsn(), encoded: chunk.encode() }
}

impl ReadStoreSink {
    /// A sink fed from `log` (`local` for the embedded log).
    pub fn new(store: Arc<dyn ReadStore>, log: impl Into<String>) -> Result<Self, SinkError> {
        let log = log.into();
        let committed = store.checkpoint(&log)?;
        Ok(ReadStoreSink {
            store,
            log,
            pending: HashMap::new(),
            open: HashMap::new(),
            sealed: Vec::new(),
            waiting_samples: 0,
            committed,
            last_fed: committed,
            accepted_through: 0,
            live: None,
            replay_start: None,
        })
    }

    /// A sink that tells `live` what it has committed (see [`LiveWorkouts::stored`]).
    pub fn telling(mut self, live: Arc<LiveWorkouts>) -> Self {
        live.stored(self.committed, []);
        self.live = Some(live);
        self
    }

    /// A sink (telling a live view) that also records in the store, every few seconds, where a
    /// replay of its log must start to rebuild every workout the store does not hold as ended:
    /// the first record of the oldest workout the live view holds, or the first one the store
    /// does not hold. A pipeline worker taking the partition over starts there, not at the
    /// oldest record the topic retains (weeks of it), under [`replay_start_name`].
    pub fn recording_replay_start(mut self) -> Self {
        self.replay_start = Some((0, None));
        self
    }

    /// Records the replay start when it is due (see [`ReadStoreSink::recording_replay_start`]).
    /// A failure is only logged: the start recorded before is earlier, and as safe.
    fn record_replay_start(&mut self, now: Instant, force: bool) {
        let (Some((recorded, at)), Some(live)) = (self.replay_start, &self.live) else { return };
        if self.accepted_through < self.committed {
            // Replaying what the store holds: the live view does not know the workouts begun
            // further on yet, and the start recorded before is still right.
            return;
        }
        let start = live.oldest_needed_lsn().map_or(self.committed + 1, |first| first.min(self.committed + 1));
        let due = force || at.is_none_or(|at| now.saturating_duration_since(at) >= REPLAY_START_EVERY);
        if start == recorded || !due {
            return;
        }
        match self.store.set_checkpoint(&replay_start_name(&self.log), start) {
            Ok(()) => self.replay_start = Some((start, Some(now))),
            Err(error) => {
                tracing::warn!(log = %self.log, %error, "could not record the replay start; an earlier one stands")
            }
        }
    }
}

impl Sink for ReadStoreSink {
    fn name(&self) -> &'static str {
        SINK_NAME
    }

    fn accept(&mut self, output: &ShardOutput) {
        self.accepted_through = self.accepted_through.max(output.lsn);
        if output.lsn <= self.committed {
            // Replayed after a restart: the store has its end already.
            if let (Some(live), Some(summary)) = (&self.live, &output.summary)
                && summary.status.is_ended()
            {
                live.stored(self.committed, [summary.workout_id]);
            }
            return;
        }
        self.last_fed = output.lsn;
        if let Some(&workout_id) = output.points.workout_id.first() {
            let chunk = self.open.entry(workout_id).or_default();
            chunk.push_record(output.lsn, output.stored_ms, &output.points);
            self.waiting_samples += output.points.len();
            if chunk.len() >= CHUNK_SAMPLES {
                self.sealed.push(seal(workout_id, chunk));
                self.open.remove(&workout_id);
            }
        }
        if let Some(summary) = &output.summary {
            self.pending.insert(summary.workout_id, summary.clone());
        }
    }

    fn is_full(&self) -> bool {
        self.waiting_samples >= FULL_SAMPLES
    }

    fn flush(&mut self, now: Instant, force: bool) -> Result<(), SinkError> {
        if self.last_fed == self.committed {
            self.record_replay_start(now, force);
            return Ok(());
        }
        self.sealed.extend(self.open.drain().map(|(workout_id, chunk)| seal(workout_id, &chunk)));
        let summaries: Vec<WorkoutSummary> = self.pending.drain().map(|(_, summary)| summary).collect();
        if let Err(e) = self.store.apply(&self.log, &summaries, &self.sealed, self.last_fed) {
            self.pending.extend(summaries.into_iter().map(|s| (s.workout_id, s)));
            return Err(e);
        }
        self.sealed.clear();
        self.waiting_samples = 0;
        self.committed = self.last_fed;
        if let Some(live) = &self.live {
            live.stored(self.committed, summaries.iter().filter(|s| s.status.is_ended()).map(|s| s.workout_id));
        }
        self.record_replay_start(now, force);
        Ok(())
    }

    fn checkpoint(&self) -> u64 {
        self.committed
    }

    fn command(&mut self, command: &Command) -> Result<(), SinkError> {
        match command {
            Command::Erase(erasure) => {
                let mut ids: HashSet<WorkoutId> = erasure.workouts.iter().map(|w| w.workout_id).collect();
                if erasure.scope == ErasureScope::User {
                    ids.extend(self.pending.values().filter(|s| s.user_id == erasure.user_id).map(|s| s.workout_id));
                }
                self.pending.retain(|id, _| !ids.contains(id));
                self.open.retain(|id, _| !ids.contains(id));
                self.sealed.retain(|chunk| !ids.contains(&chunk.workout_id));
                match erasure.scope {
                    ErasureScope::User => {
                        let erased = self.store.erase(&erasure.user_id, &ids)?;
                        tracing::info!(user = %erasure.user_id, workouts = erased, "read store: user erased");
                    }
                    ErasureScope::Workouts => {
                        self.store.delete_workouts(&ids)?;
                        tracing::info!(user = %erasure.user_id, workouts = ids.len(), "read store: workouts deleted");
                    }
                }
            }
            Command::DropPositions { from_ms, before_ms } => {
                // Buffered chunks are recent; commit them first so one pass covers everything.
                self.flush(Instant::now(), true)?;
                let changed = self.store.drop_positions(*from_ms, *before_ms)?;
                tracing::info!(workouts = changed, before_ms, "read store: positions dropped");
            }
            Command::Publish(_) => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use trackwire_pipeline::{EnrichedPoint, Points};

    use super::*;
    use crate::read_store::RedbStore;

    fn output(lsn: u64, workout: u8, times: std::ops::Range<i64>) -> ShardOutput {
        let points: Points = times
            .map(|time_ms| EnrichedPoint { workout_id: WorkoutId([workout; 16]), time_ms, ..Default::default() })
            .collect();
        ShardOutput { lsn, points, ..ShardOutput::default() }
    }

    #[test]
    fn a_workouts_records_between_flushes_become_one_chunk() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ReadStore> = Arc::new(RedbStore::open(&dir.path().join("read.redb")).unwrap());
        let mut sink = ReadStoreSink::new(store.clone(), "local").unwrap();
        sink.accept(&output(1, 1, 0..3));
        sink.accept(&output(2, 2, 0..2));
        sink.accept(&output(3, 1, 3..5));
        sink.flush(Instant::now(), false).unwrap();
        let (one, two) = (WorkoutId([1; 16]), WorkoutId([2; 16]));
        assert_eq!(store.last_chunk(&one).unwrap().unwrap().time_ms, vec![0, 1, 2, 3, 4], "both records, one chunk");
        sink.accept(&output(4, 1, 5..6));
        sink.flush(Instant::now(), false).unwrap();
        assert_eq!(store.last_chunk(&one).unwrap().unwrap().time_ms, vec![5], "the second flush's own chunk");
        assert_eq!(store.streams(&one).unwrap().time_ms, vec![0, 1, 2, 3, 4, 5]);
        assert_eq!(store.streams(&two).unwrap().time_ms, vec![0, 1]);
        assert_eq!(store.checkpoint("local").unwrap(), 4);
    }

    /// A takeover replays records the store holds before the pipeline has rebuilt the workouts
    /// begun further on: a start recorded from the live view then would skip them, and the
    /// takeover after the next would take their later records for new workouts'.
    #[test]
    fn no_replay_start_is_recorded_before_the_replay_reaches_what_the_store_holds() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ReadStore> = Arc::new(RedbStore::open(&dir.path().join("read.redb")).unwrap());
        let (log, start) = ("raw.v1/0", replay_start_name("raw.v1/0"));
        // The previous owner committed through 10; a workout still open began at 3.
        store.apply(log, &[], &[], 10).unwrap();
        store.set_checkpoint(&start, 3).unwrap();
        let live = Arc::new(LiveWorkouts::default());
        let mut sink = ReadStoreSink::new(store.clone(), log).unwrap().telling(live).recording_replay_start();
        // The replay has reached 2 (an ended workout's records); the open one is not rebuilt yet.
        sink.accept(&output(1, 1, 0..1));
        sink.accept(&output(2, 1, 1..2));
        sink.flush(Instant::now(), true).unwrap();
        assert_eq!(store.checkpoint(&start).unwrap(), 3, "the start recorded before stands");
        // Caught up, and nothing open (the workout ended within the replay): past what it holds.
        for lsn in 3..=11 {
            sink.accept(&output(lsn, 2, lsn as i64..lsn as i64 + 1));
        }
        sink.flush(Instant::now(), true).unwrap();
        assert_eq!(store.checkpoint(&start).unwrap(), 12);
    }

    #[test]
    fn a_long_upload_is_cut_into_chunks_of_bounded_size() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ReadStore> = Arc::new(RedbStore::open(&dir.path().join("read.redb")).unwrap());
        let mut sink = ReadStoreSink::new(store.clone(), "local").unwrap();
        let batch = 20_000;
        for lsn in 1..=4 {
            let from = (lsn as i64 - 1) * batch;
            sink.accept(&output(lsn, 1, from..from + batch));
        }
        assert_eq!(sink.sealed.len(), 1, "sealed at {CHUNK_SAMPLES} samples, before the flush");
        sink.flush(Instant::now(), false).unwrap();
        let streams = store.streams(&WorkoutId([1; 16])).unwrap();
        assert_eq!(streams.time_ms, (0..4 * batch).collect::<Vec<_>>());
    }
}
