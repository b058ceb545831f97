//! The read store: what the API serves, surviving restarts: workout summaries (listed per user,
//! newest first), their streams, and their best efforts.
//!
//! One interface, [`ReadStore`], two backends: [`RedbStore`] (embedded, one file, the default)
//! and [`PostgresStore`] (selected by `--store-url postgres://…`, shared by every process of a
//! scale-out deployment). Both pass the same conformance suite (`sinks/tests/read_store.rs`).
//!
//! Written by [`ReadStoreSink`] in one transaction per flush, together with the position of the
//! log it is complete through, so the store and its checkpoint can never disagree.

mod changes;
mod efforts;
mod postgres;
mod redb;
mod sink;
mod streams;

pub use changes::{ChangeAspect, NewChange, WorkoutChange};
pub use efforts::{BestEfforts, EFFORT_DISTANCES, best_efforts};
pub use postgres::tls as postgres_tls;
pub use postgres::{PostgresStore, describe as describe_postgres_error};
pub use redb::RedbStore;
pub use sink::{ReadStoreSink, replay_start_name};
pub use streams::{Chunk, RecordSpan, Streams, StreamsError, assemble};

use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;

use trackwire_codec::WorkoutId;
use trackwire_pipeline::{AthleteProfile, WorkoutSummary};

use crate::SinkError;

/// The name this sink reports in metrics and health.
pub const SINK_NAME: &str = "read_store";

/// The log name of the embedded single-process log (see [`ReadStore::checkpoint`]).
pub const LOCAL_LOG: &str = "local";

/// An opaque position in a user's newest-first workout list: the start time in an order that
/// sorts newest first, then the workout id (ties broken by id, ascending).
pub type Cursor = [u8; 24];

/// Which of a user's workouts to list.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub after: Option<Cursor>,
    pub limit: usize,
    pub sport: Option<String>,
    /// Only workouts that started at or after this time (Unix ms).
    pub start_from_ms: Option<i64>,
    /// Only workouts that started before this time (Unix ms).
    pub start_before_ms: Option<i64>,
}

/// The samples of one or more consecutive records of one workout, as [`Chunk::encode`] bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamChunk {
    pub workout_id: WorkoutId,
    /// The position of the chunk's newest record in its log; chunks of a workout are read back in
    /// this order.
    pub lsn: u64,
    pub encoded: Vec<u8>,
}

/// The read side the API uses and the write side its sink uses. Synchronous: the API calls it
/// from `spawn_blocking`, the sink from the sinks thread.
pub trait ReadStore: Send + Sync {
    /// The position of `log` through which the store is complete (0 when it holds nothing of it).
    /// `log` names one totally ordered input: `local` for the embedded log, `raw.v1/<partition>`
    /// for a partition of the scale-out topic.
    fn checkpoint(&self, log: &str) -> Result<u64, SinkError>;

    /// Moves the checkpoint named `name` to `through`, for a sink other than the read store
    /// that keeps its position here (`kafka:<log>`), where every process of a deployment finds it.
    fn set_checkpoint(&self, name: &str, through: u64) -> Result<(), SinkError>;

    fn get(&self, id: &WorkoutId) -> Result<Option<WorkoutSummary>, SinkError>;

    /// Up to `query.limit` of the user's workouts that match the query, newest first, after the
    /// cursor; and the cursor of the next page: `Some` exactly when another workout matches.
    fn list(&self, user_id: &str, query: &ListQuery) -> Result<(Vec<WorkoutSummary>, Option<Cursor>), SinkError>;

    /// Every workout of the user, newest first (stats, training load, erasure).
    fn all_of_user(&self, user_id: &str) -> Result<Vec<WorkoutSummary>, SinkError> {
        Ok(self.list(user_id, &ListQuery { limit: usize::MAX, ..ListQuery::default() })?.0)
    }

    /// The workout's streams, all its chunks in log order (empty when it has no samples).
    fn streams(&self, id: &WorkoutId) -> Result<Streams, SinkError>;

    /// The newest chunk of the workout's streams (the live endpoint's latest sample).
    fn last_chunk(&self, id: &WorkoutId) -> Result<Option<Streams>, SinkError>;

    fn best_efforts(&self, id: &WorkoutId) -> Result<Option<BestEfforts>, SinkError>;

    /// The best efforts of each of `ids` that has them (records over a user's workouts).
    fn best_efforts_of(&self, ids: &[WorkoutId]) -> Result<Vec<(WorkoutId, BestEfforts)>, SinkError> {
        let mut found = Vec::new();
        for id in ids {
            if let Some(efforts) = self.best_efforts(id)? {
                found.push((*id, efforts));
            }
        }
        Ok(found)
    }

    /// In one transaction: stores the chunks (a chunk already held is replaced by the same bytes),
    /// replaces each workout's summary, computes the best efforts of those that ended, appends a
    /// `Create` change for each stored as completed for the first time, and moves `log`'s
    /// checkpoint to `through`.
    fn apply(
        &self,
        log: &str,
        summaries: &[WorkoutSummary],
        chunks: &[StreamChunk],
        through: u64,
    ) -> Result<(), SinkError>;

    /// Deletes every row of the user and of `workouts` (ids the caller knows of the user).
    /// Returns how many workouts it covered.
    fn erase(&self, user_id: &str, workouts: &HashSet<WorkoutId>) -> Result<usize, SinkError> {
        let mut ids = workouts.clone();
        ids.extend(self.all_of_user(user_id)?.iter().map(|s| s.workout_id));
        self.delete_workouts(&ids)?;
        self.delete_changes_of_user(user_id)?;
        Ok(ids.len())
    }

    /// Deletes every row of `workouts`: summaries, stream chunks, best efforts (in one
    /// transaction). Deleting what is not there is not an error.
    fn delete_workouts(&self, workouts: &HashSet<WorkoutId>) -> Result<(), SinkError>;

    /// Coordinate retention: nulls the positions of samples the log stored in `[from_ms,
    /// before_ms)` (for samples whose storage time it did not keep: recorded then) in every
    /// workout that may hold them. Returns how many workouts changed.
    fn drop_positions(&self, from_ms: i64, before_ms: i64) -> Result<usize, SinkError>;

    /// Sets (`Some`) or removes (`None`) the profile the pipeline enriches a user's workouts with.
    /// The API writes it; pipeline workers of a scale-out deployment read it with
    /// [`ReadStore::athlete_profiles`], so every process enriches alike.
    fn put_athlete_profile(&self, user_id: &str, profile: Option<&AthleteProfile>) -> Result<(), SinkError>;

    /// Every stored athlete profile.
    fn athlete_profiles(&self) -> Result<Vec<(String, AthleteProfile)>, SinkError>;

    /// Records a command placed in a log (`done: false`, by whoever placed it) or carried out by
    /// that log's sinks (`done: true`). A record never goes back from done. A command about no
    /// user (a retention cut) done on a log replaces the done ones before it there: the latest cut
    /// covers them, so the records stay few however often retention runs.
    fn record_log_command(&self, record: &LogCommandRecord) -> Result<(), SinkError>;

    /// The commands recorded for `log`, in position order.
    fn log_commands(&self, log: &str) -> Result<Vec<LogCommandRecord>, SinkError>;

    /// The commands recorded about `user_id`, on every log.
    fn log_commands_of_user(&self, user_id: &str) -> Result<Vec<LogCommandRecord>, SinkError>;

    /// Appends a change to the feed of [`WorkoutChange`]s; returns its `seq`. [`apply`]
    /// appends `Create` itself, when a workout is first stored as completed.
    ///
    /// [`apply`]: ReadStore::apply
    fn append_change(&self, change: &NewChange) -> Result<u64, SinkError>;

    /// Up to `limit` changes after `seq`, oldest first. A change is never seen before one with a
    /// lower `seq`: a reader that remembers the last `seq` it took misses none.
    fn changes_after(&self, seq: u64, limit: usize) -> Result<Vec<WorkoutChange>, SinkError>;

    /// Forgets the changes through `seq` (their reader has taken them).
    fn trim_changes_through(&self, seq: u64) -> Result<(), SinkError>;

    /// Forgets every change of the user (erasure).
    fn delete_changes_of_user(&self, user_id: &str) -> Result<(), SinkError>;
}

/// A command handed on through a log, where it was placed, and whether it has been carried out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogCommandRecord {
    pub log: String,
    pub lsn: u64,
    /// The command's own encoding (JSON), kept byte for byte: opaque to the store.
    pub command: String,
    /// The user it is about, if any.
    pub user_id: Option<String>,
    pub done: bool,
}

/// Opens the store `url` names: `postgres://…` / `postgresql://…` for PostgreSQL (migrations are
/// applied first; `ca_file` for TLS), or none for the embedded file at `embedded_path`.
pub fn open(url: Option<&str>, ca_file: Option<&Path>, embedded_path: &Path) -> Result<Arc<dyn ReadStore>, SinkError> {
    match url {
        None => Ok(Arc::new(RedbStore::open(embedded_path)?)),
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Ok(Arc::new(PostgresStore::connect(url, ca_file)?))
        }
        Some(url) => Err(SinkError::Config(format!(
            "store url '{}' is not supported: give postgres://user:password@host:port/database, or leave it unset \
             for the embedded store",
            redact_url(url)
        ))),
    }
}

/// A URL fit for a log line: the password, if any, replaced.
pub(crate) fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// A start time as 8 bytes that sort newest first: the sign bit flipped for an order-preserving
/// u64, then inverted.
fn newest_first(start_ms: i64) -> [u8; 8] {
    (!((start_ms as u64) ^ (1 << 63))).to_be_bytes()
}

fn cursor_of(summary: &WorkoutSummary) -> Cursor {
    let mut key = [0u8; 24];
    key[..8].copy_from_slice(&newest_first(summary.start_time_ms));
    key[8..].copy_from_slice(&summary.workout_id.0);
    key
}

fn start_of(cursor: &[u8]) -> i64 {
    let ordered = u64::from_be_bytes(cursor[..8].try_into().expect("8 bytes"));
    ((!ordered) ^ (1 << 63)) as i64
}

/// Whether a workout may hold samples stored in `[from_ms, before_ms)`: by the span of its
/// records' storage times, or, for a workout stored before the log kept them, by its recorded
/// span (the rule then).
pub(crate) fn may_hold_positions_stored_in(summary: &WorkoutSummary, from_ms: i64, before_ms: i64) -> bool {
    match (summary.stored_from_ms, summary.stored_through_ms) {
        (Some(from), Some(through)) => from < before_ms && through >= from_ms,
        _ => summary.start_time_ms < before_ms && summary.end_time_ms >= from_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_never_reaches_a_message() {
        assert_eq!(redact_url("postgres://tw:s3cret@db:5432/tw"), "postgres://tw:***@db:5432/tw");
        assert_eq!(redact_url("postgres://tw@db/tw"), "postgres://tw@db/tw");
        assert_eq!(redact_url("mysql://a:b@c/d"), "mysql://a:***@c/d");
    }

    #[test]
    fn cursors_sort_newest_first_and_decode() {
        for start in [i64::MIN, -1, 0, 1, 1_700_000_000_000, i64::MAX] {
            assert_eq!(start_of(&newest_first(start)), start);
        }
        assert!(newest_first(2) < newest_first(1));
        assert!(newest_first(0) < newest_first(-1));
    }
}
