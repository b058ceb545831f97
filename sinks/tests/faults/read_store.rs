//! A read store whose transactions fail, before committing or after (the commit's answer lost).

use std::collections::HashSet;
use std::sync::Arc;

use trackwire_codec::WorkoutId;
use trackwire_pipeline::{AthleteProfile, WorkoutSummary};
use trackwire_sinks::SinkError;
use trackwire_sinks::read_store::{
    BestEfforts, Cursor, ListQuery, LogCommandRecord, NewChange, ReadStore, StreamChunk, Streams, WorkoutChange,
};

use super::{Fault, Faults};

pub struct FaultyReadStore {
    pub inner: Arc<dyn ReadStore>,
    pub faults: Faults,
}

fn injected() -> SinkError {
    SinkError::Store("injected fault: the transaction failed".into())
}

impl ReadStore for FaultyReadStore {
    fn checkpoint(&self, log: &str) -> Result<u64, SinkError> {
        self.inner.checkpoint(log)
    }
    fn set_checkpoint(&self, name: &str, through: u64) -> Result<(), SinkError> {
        self.inner.set_checkpoint(name, through)
    }
    fn get(&self, id: &WorkoutId) -> Result<Option<WorkoutSummary>, SinkError> {
        self.inner.get(id)
    }
    fn list(&self, user_id: &str, query: &ListQuery) -> Result<(Vec<WorkoutSummary>, Option<Cursor>), SinkError> {
        self.inner.list(user_id, query)
    }
    fn streams(&self, id: &WorkoutId) -> Result<Streams, SinkError> {
        self.inner.streams(id)
    }
    fn last_chunk(&self, id: &WorkoutId) -> Result<Option<Streams>, SinkError> {
        self.inner.last_chunk(id)
    }
    fn best_efforts(&self, id: &WorkoutId) -> Result<Option<BestEfforts>, SinkError> {
        self.inner.best_efforts(id)
    }
    fn apply(
        &self,
        log: &str,
        summaries: &[WorkoutSummary],
        chunks: &[StreamChunk],
        through: u64,
    ) -> Result<(), SinkError> {
        match self.faults.draw() {
            Fault::Before => Err(injected()),
            Fault::After => {
                self.inner.apply(log, summaries, chunks, through)?;
                Err(injected())
            }
            Fault::None => self.inner.apply(log, summaries, chunks, through),
        }
    }
    fn delete_workouts(&self, workouts: &HashSet<WorkoutId>) -> Result<(), SinkError> {
        self.inner.delete_workouts(workouts)
    }
    fn drop_positions(&self, from_ms: i64, before_ms: i64) -> Result<usize, SinkError> {
        self.inner.drop_positions(from_ms, before_ms)
    }
    fn put_athlete_profile(&self, user_id: &str, profile: Option<&AthleteProfile>) -> Result<(), SinkError> {
        self.inner.put_athlete_profile(user_id, profile)
    }
    fn athlete_profiles(&self) -> Result<Vec<(String, AthleteProfile)>, SinkError> {
        self.inner.athlete_profiles()
    }
    fn record_log_command(&self, record: &LogCommandRecord) -> Result<(), SinkError> {
        match self.faults.draw() {
            Fault::Before => Err(injected()),
            Fault::After => {
                self.inner.record_log_command(record)?;
                Err(injected())
            }
            Fault::None => self.inner.record_log_command(record),
        }
    }
    fn log_commands(&self, log: &str) -> Result<Vec<LogCommandRecord>, SinkError> {
        self.inner.log_commands(log)
    }
    fn log_commands_of_user(&self, user_id: &str) -> Result<Vec<LogCommandRecord>, SinkError> {
        self.inner.log_commands_of_user(user_id)
    }
    fn append_change(&self, change: &NewChange) -> Result<u64, SinkError> {
        self.inner.append_change(change)
    }
    fn changes_after(&self, seq: u64, limit: usize) -> Result<Vec<WorkoutChange>, SinkError> {
        self.inner.changes_after(seq, limit)
    }
    fn trim_changes_through(&self, seq: u64) -> Result<(), SinkError> {
        self.inner.trim_changes_through(seq)
    }
    fn delete_changes_of_user(&self, user_id: &str) -> Result<(), SinkError> {
        self.inner.delete_changes_of_user(user_id)
    }
}
