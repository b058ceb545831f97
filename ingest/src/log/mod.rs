//! The durable log: the one source of truth between "acked" and "delivered", with two backends
//! behind one interface. The **writer** side is [`DurableLog`]: an append is answered once it is
//! durable. The **reader** side hands every position on, in order, as a [`LogEntry`] (a record,
//! a gap, or a [`LogCommand`]) to a [`Forward`] callback.
//!
//! - Embedded (here, `segment.rs`, `writer.rs`): segment files on the local disk. **In:** batches
//!   to append, each with its [`DedupKey`]. **Out:** an answer per append once it is on disk
//!   (fsynced), and every durable record, in LSN order, to the `forward` callback given to
//!   [`DurableLog::open`]: first the retained history (replay), then each new record after its
//!   fsync.
//! - Kafka ([`kafka`]): the raw topic; gateways write it, pipeline workers read its partitions.
//!
//! One dedup rule for both ([`DedupIndex`]): the first copy of a `(workout, seq)` is the record,
//! later copies are not. The embedded writer applies it before a record gets an LSN (a retry is
//! never stored); the Kafka reader after (a copy produced through another gateway is stored), so
//! there a later copy's position is a gap.
//!
//! One writer thread owns the files and the dedup index, so appends need no locks and a retried
//! batch can never be stored twice. It commits in groups: everything queued while the previous
//! fsync ran is written and fsynced together (capped by `group_commit_bytes`), so the fsync rate
//! adapts to the load by itself instead of waiting a fixed time.

mod command;
mod dedup;
#[cfg(feature = "kafka")]
pub mod kafka;
mod owners;
pub mod record;
mod segment;
mod writer;

pub(crate) use writer::unix_ms_now;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use bytes::Bytes;
use crossbeam_channel::{Sender, TrySendError};

/// Receives every position of the log in order; returns false once the consumer has stopped.
pub type Forward = Box<dyn FnMut(LogEntry) -> bool + Send>;
use tokio::sync::oneshot;
use trackwire_codec::WorkoutId;

pub use command::{COMMAND_HEADER, COMMAND_VERSION, LogCommand, TimeSpan, WorkoutSpan};
pub use dedup::{DedupIndex, SeqSet};
pub use owners::{OwnerIndex, PastOwners, WorkoutOwner};
pub use record::DedupKey;

/// Where and how the log keeps its files (the `[log]` section of the configuration file; the
/// directory is the data directory's `log/`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// Directory of the segment files (created if missing).
    #[serde(skip)]
    pub dir: PathBuf,
    /// Size at which a log segment file is closed and a new one started, in bytes.
    pub segment_bytes: u64,
    /// Most bytes made durable by one fsync; more queued appends are committed in further groups.
    pub group_commit_bytes: usize,
    /// Appends that may wait for the log writer; beyond it ingest answers 503 with Retry-After.
    pub queue_depth: usize,
    /// Disk cap of the log in bytes: acked records are kept until every sink has delivered them,
    /// so while a sink's service (Kafka, S3) is down the log grows; at this size ingest pushes
    /// back (HTTP 503, QUIC stops reading) until the sink catches up. Appends already queued
    /// still commit, so the cap can be passed by at most one queue's worth.
    pub max_retained_bytes: u64,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            dir: PathBuf::new(),
            segment_bytes: 64 << 20,
            group_commit_bytes: 4 << 20,
            queue_depth: 1024,
            max_retained_bytes: 16 << 30,
        }
    }
}

/// A durable record, as handed to the pipeline.
#[derive(Debug, Clone)]
pub struct LogRecord {
    pub lsn: u64,
    pub key: DedupKey,
    pub payload: Bytes,
    /// When the log stored it (Unix ms): the embedded log's group-commit time, the raw topic's
    /// record timestamp. None for records of the embedded log's first format, which kept none.
    pub appended_ms: Option<i64>,
    /// The W3C trace id of the request that brought the batch, where the log carries it (the
    /// Kafka backend's `traceparent` header; the embedded record format has no room for it).
    pub trace_id: Option<Arc<str>>,
}

/// One position of a log, as its reader hands it on.
#[derive(Debug, Clone)]
pub enum LogEntry {
    Record(LogRecord),
    /// A position with no record to process (a later copy of a batch, an offset the broker
    /// holds nothing at, a record without a workout key): consumers move past it.
    Gap {
        lsn: u64,
    },
    /// A command (erasure, retention) to carry out after everything before this position.
    Command {
        lsn: u64,
        command: LogCommand,
    },
}

/// The outcome of an append, sent once the record is durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// Stored under this LSN.
    New { lsn: u64 },
    /// Already stored earlier (a client retry): not stored again, and durable.
    Duplicate,
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
    #[error("log segment {} is corrupt at byte {offset}: {reason}. It is not the last segment, so this is not a torn write from a crash; move the file aside to start (the batches in it are lost) or restore it from a backup", segment.display())]
    Corrupt { segment: PathBuf, offset: usize, reason: String },
    #[error(
        "the log stopped accepting writes after an earlier I/O failure ({0}); restart the server once the disk is healthy, unacked batches are retried by clients"
    )]
    Failed(String),
    #[error("the log is shutting down")]
    Closed,
    /// The batch is for a workout another user or device started (the embedded log decides
    /// this with the append; see `owners`). The owner is not named: it is not the sender's
    /// business.
    #[error(
        "workout {0} was started by another user or device, and only they may add batches to it: give a new workout \
         a new id"
    )]
    OwnedByAnother(trackwire_codec::WorkoutId),
    /// The Kafka-backed log could not store a batch (broker down past the timeout, refused).
    /// Nothing was acked; the client re-sends.
    #[error("{0}; the batch was not stored, send it again")]
    Unavailable(String),
}

impl LogError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        LogError::Io { context: context.into(), source }
    }
}

/// Why an append was not even queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TryAppendError {
    #[error("the log's append queue is full")]
    Full,
    #[error("the log is shut down")]
    Closed,
}

/// Counters the writer publishes for `/metrics`.
#[derive(Debug, Default)]
pub struct LogMetrics {
    pub records_appended: AtomicU64,
    pub bytes_appended: AtomicU64,
    pub duplicates: AtomicU64,
    pub fsyncs: AtomicU64,
    /// Highest durable LSN (0 when the log is empty).
    pub durable_lsn: AtomicU64,
    pub segments: AtomicU64,
    pub bytes_on_disk: AtomicU64,
    pub replayed_records: AtomicU64,
    /// Workouts the writer's dedup and owner indexes hold: those with a record in the log.
    pub indexed_workouts: AtomicU64,
    /// Set once replay of the retained history has been handed to the pipeline.
    pub replay_done: AtomicBool,
    /// True while the retained segments are at `max_retained_bytes`: appends are refused.
    pub at_cap: AtomicBool,
    /// Why the writer stopped accepting appends (a failed write or fsync; see `LogError::Failed`):
    /// set once, for good, until a restart.
    pub failure: std::sync::Mutex<Option<String>>,
}

pub(crate) struct AppendRequest {
    key: DedupKey,
    payload: Bytes,
    /// The W3C `traceparent` of the request that brought the batch. The Kafka-backed log sends
    /// it as a record header; the embedded log's record format has no room for it (its trace
    /// stops here).
    traceparent: Option<String>,
    /// The sender, for a log that decides workout ownership (the embedded one); None appends
    /// without that check.
    owner: Option<WorkoutOwner>,
    reply: oneshot::Sender<Result<Appended, LogError>>,
}

pub(crate) struct Shared {
    metrics: LogMetrics,
    /// Segments whose every record has an LSN at or below this may be deleted.
    release_through: AtomicU64,
    /// LSN of the oldest retained record (what replay starts from).
    first_lsn: AtomicU64,
    /// True when appends carry their `traceparent` on (the Kafka-backed log).
    carries_traceparent: bool,
    /// True when `Duplicate` comes from a front's memory of acks rather than from the log's own
    /// dedup (the Kafka-backed log; see [`DurableLog::forget_remembered_acks`]).
    remembers_acks: bool,
    /// Workouts whose stored seqs the writer is to forget (see [`DurableLog::forget_seqs`]).
    forget_seqs: Mutex<Vec<WorkoutId>>,
}

/// What the log is told of workouts beyond the records it holds.
#[derive(Clone, Default)]
pub struct Remembered {
    /// Owners of workouts whose batches have all left the log: a batch for one of those is
    /// refused unless it comes from that owner, as if its first batch were still here.
    pub past_owners: Option<Arc<dyn PastOwners>>,
    /// Workouts their owners deleted, each with the position through which it was: its seqs
    /// stored up to there are not what a later batch can be a retry of (see
    /// [`DurableLog::forget_seqs`]).
    pub deleted_through: HashMap<WorkoutId, u64>,
    /// Users erased, each with the position through which they were: the seqs of their
    /// workouts stored up to there are forgotten the same way.
    pub erased_through: HashMap<String, u64>,
}

/// A handle to append to the log. Cloneable; the writer stops when every handle is dropped.
#[derive(Clone)]
pub struct DurableLog {
    tx: Sender<AppendRequest>,
    shared: Arc<Shared>,
}

impl DurableLog {
    /// Opens (or creates) the log in `config.dir`, verifies every segment, repairs a torn tail, and
    /// starts the writer thread, which first replays the retained records into `forward`.
    ///
    /// `forward` may block: that is how a saturated pipeline pushes back on the log.
    /// The returned handle joins the writer; it finishes after all `DurableLog` handles are dropped
    /// and the queue is drained, and then drops `forward`, which lets the pipeline drain in turn.
    pub fn open(
        config: LogConfig,
        forward: Forward,
    ) -> Result<(DurableLog, JoinHandle<Result<(), LogError>>), LogError> {
        Self::open_remembering(config, forward, Remembered::default())
    }

    /// [`DurableLog::open`] told what it no longer holds itself (see [`Remembered`]).
    pub fn open_remembering(
        config: LogConfig,
        forward: Forward,
        remembered: Remembered,
    ) -> Result<(DurableLog, JoinHandle<Result<(), LogError>>), LogError> {
        std::fs::create_dir_all(&config.dir)
            .map_err(|e| LogError::io(format!("creating log directory {}", config.dir.display()), e))?;
        let shared = Arc::new(Shared {
            metrics: LogMetrics::default(),
            release_through: AtomicU64::new(0),
            first_lsn: AtomicU64::new(1),
            carries_traceparent: false,
            remembers_acks: false,
            forget_seqs: Mutex::default(),
        });
        let (tx, rx) = crossbeam_channel::bounded(config.queue_depth.max(1));
        let writer = writer::Writer::open(config, rx, forward, shared.clone(), remembered)?;
        let handle = std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || writer.run())
            .map_err(|e| LogError::io("spawning the log writer thread", e))?;
        Ok((DurableLog { tx, shared }, handle))
    }

    /// Queues `payload` for durable append. The receiver resolves once it is fsynced (or was
    /// already stored: a retry). Never blocks: a full queue is `Full`, for the caller to push back.
    pub fn try_append(
        &self,
        key: DedupKey,
        payload: Bytes,
    ) -> Result<oneshot::Receiver<Result<Appended, LogError>>, TryAppendError> {
        self.try_append_traced(key, payload, None)
    }

    /// [`DurableLog::try_append`] with the request's `traceparent`, for a log that carries it.
    pub fn try_append_traced(
        &self,
        key: DedupKey,
        payload: Bytes,
        traceparent: Option<String>,
    ) -> Result<oneshot::Receiver<Result<Appended, LogError>>, TryAppendError> {
        self.try_append_as(key, payload, traceparent, None)
    }

    /// [`DurableLog::try_append_traced`] on behalf of `owner`: the embedded log refuses it with
    /// [`LogError::OwnedByAnother`] when the workout's first stored batch came from someone else,
    /// and binds the workout to `owner` when this is its first batch. The Kafka-backed log
    /// ignores `owner`: its gateways share no writer, so they ask an owner registry instead.
    pub fn try_append_as(
        &self,
        key: DedupKey,
        payload: Bytes,
        traceparent: Option<String>,
        owner: Option<WorkoutOwner>,
    ) -> Result<oneshot::Receiver<Result<Appended, LogError>>, TryAppendError> {
        if self.shared.metrics.at_cap.load(Ordering::Relaxed) {
            return Err(TryAppendError::Full);
        }
        let (reply, rx) = oneshot::channel();
        match self.tx.try_send(AppendRequest { key, payload, traceparent, owner, reply }) {
            Ok(()) => Ok(rx),
            Err(TrySendError::Full(_)) => Err(TryAppendError::Full),
            Err(TrySendError::Disconnected(_)) => Err(TryAppendError::Closed),
        }
    }

    /// Forgets which seqs of `workout_id` are stored, once everything appended so far is: its
    /// owner deleted it (or was erased), and a batch of the same seq is new data from now on (the
    /// same file imported again), not a retry to ack without storing. The Kafka-backed log
    /// forgets the batches it would answer `Duplicate` from memory; its readers forget their
    /// dedup at the deletion's position.
    pub fn forget_seqs(&self, workout_id: WorkoutId) {
        self.shared.forget_seqs.lock().unwrap_or_else(|p| p.into_inner()).push(workout_id);
    }

    /// Forgets the acked batches of `workout_id` this front remembers, where that memory is a
    /// front's and not the log's own dedup (the Kafka-backed log, whose memory a deletion
    /// through another replica never reaches). For a file whose workout the read store does
    /// not hold: its batches are new data (the workout was deleted) or a copy the workers'
    /// dedup drops, never a retry to answer `Duplicate` without storing. The embedded log's
    /// dedup is the log's own, and is kept.
    pub fn forget_remembered_acks(&self, workout_id: WorkoutId) {
        if self.shared.remembers_acks {
            self.forget_seqs(workout_id);
        }
    }

    /// Allows deleting segments whose records all have LSN ≤ `lsn`: every sink has delivered them
    /// and no live workout needs them to rebuild its state.
    pub fn release_through(&self, lsn: u64) {
        self.shared.release_through.fetch_max(lsn, Ordering::Relaxed);
    }

    /// True when [`DurableLog::try_append_traced`] does something with the `traceparent`
    /// (the Kafka-backed log's record header); callers need not build one otherwise.
    pub fn carries_traceparent(&self) -> bool {
        self.shared.carries_traceparent
    }

    /// The LSN replay started from: the oldest record retained when the log was opened.
    pub fn first_lsn(&self) -> u64 {
        self.shared.first_lsn.load(Ordering::Relaxed)
    }

    pub fn metrics(&self) -> &LogMetrics {
        &self.shared.metrics
    }

    /// Appends waiting in the queue right now.
    pub fn queued(&self) -> usize {
        self.tx.len()
    }
}
