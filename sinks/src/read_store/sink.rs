use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use trackwire_codec::WorkoutId;
use trackwire_pipeline::{ShardOutput, WorkoutSummary};

use super::{ReadStore, SINK_NAME, StreamChunk, Streams};
use crate::{Command, Sink, SinkError};

/// Past this many records' streams waiting for the store, the coordinator waits for a flush.
const FULL_CHUNKS: usize = 100_000;

/// Keeps the read store current: the latest summary of each workout and each record's streams,
/// committed per flush.
pub struct ReadStoreSink {
    store: Arc<dyn ReadStore>,
    /// Which log's positions the LSNs are (see [`ReadStore::checkpoint`]).
    log: String,
    pending: HashMap<WorkoutId, WorkoutSummary>,
    /// Each record's samples since the last commit.
    chunks: Vec<StreamChunk>,
    committed: u64,
    last_fed: u64,
}

impl ReadStoreSink {
    /// A sink fed from `log` (`local` for the embedded log).
    pub fn new(store: Arc<dyn ReadStore>, log: impl Into<String>) -> Result<Self, SinkError> {
        let log = log.into();
        let committed = store.checkpoint(&log)?;
        Ok(ReadStoreSink { store, log, pending: HashMap::new(), chunks: Vec::new(), committed, last_fed: committed })
    }
}

impl Sink for ReadStoreSink {
    fn name(&self) -> &'static str {
        SINK_NAME
    }

    fn accept(&mut self, output: &ShardOutput) {
        if output.lsn <= self.committed {
            return;
        }
        self.last_fed = output.lsn;
        if let Some(workout_id) = output.points.workout_id.first() {
            self.chunks.push(StreamChunk {
                workout_id: *workout_id,
                lsn: output.lsn,
                encoded: Streams::from_points(&output.points).encode(),
            });
        }
        if let Some(summary) = &output.summary {
            self.pending.insert(summary.workout_id, summary.clone());
        }
    }

    fn is_full(&self) -> bool {
        self.chunks.len() >= FULL_CHUNKS
    }

    fn flush(&mut self, _now: Instant, _force: bool) -> Result<(), SinkError> {
        if self.last_fed == self.committed {
            return Ok(());
        }
        let summaries: Vec<WorkoutSummary> = self.pending.drain().map(|(_, summary)| summary).collect();
        if let Err(e) = self.store.apply(&self.log, &summaries, &self.chunks, self.last_fed) {
            self.pending.extend(summaries.into_iter().map(|s| (s.workout_id, s)));
            return Err(e);
        }
        self.chunks.clear();
        self.committed = self.last_fed;
        Ok(())
    }

    fn checkpoint(&self) -> u64 {
        self.committed
    }

    fn command(&mut self, command: &Command) -> Result<(), SinkError> {
        match command {
            Command::Erase(erasure) => {
                let mut ids: HashSet<WorkoutId> = erasure.workouts.iter().map(|w| w.workout_id).collect();
                ids.extend(self.pending.values().filter(|s| s.user_id == erasure.user_id).map(|s| s.workout_id));
                self.pending.retain(|id, _| !ids.contains(id));
                self.chunks.retain(|chunk| !ids.contains(&chunk.workout_id));
                let erased = self.store.erase(&erasure.user_id, &ids)?;
                tracing::info!(user = %erasure.user_id, workouts = erased, "read store: user erased");
            }
            Command::DropPositions { from_ms, before_ms } => {
                // Buffered chunks are recent; commit them first so one pass covers everything.
                self.flush(Instant::now(), true)?;
                let changed = self.store.drop_positions(*from_ms, *before_ms)?;
                tracing::info!(workouts = changed, before_ms, "read store: positions dropped");
            }
        }
        Ok(())
    }
}
