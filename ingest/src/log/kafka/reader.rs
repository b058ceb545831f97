//! The raw topic's reader: one partition, from its oldest retained record, every position handed
//! on in order: a record (LSN = offset + 1, the same for every reader), or a gap.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedHeaders, Headers};
use rdkafka::{Message, TopicPartitionList};
use trackwire_codec::WorkoutId;

use super::index::ReadIndex;
use super::{RawTopicConfig, SEQ_HEADER, TRACEPARENT_HEADER};
use crate::log::{COMMAND_HEADER, COMMAND_VERSION, DedupKey, Forward, LogCommand, LogEntry, LogError, LogRecord};

/// How often the partition's end offset is read for the lag metric, and the reader lets go of
/// the workouts nothing needs any more.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(2);

/// The highest position of the partition nothing needs any more (see
/// [`PartitionReader::releasing`]).
pub type Released = Box<dyn Fn() -> u64 + Send>;

/// What the reader publishes for `/metrics`.
#[derive(Debug, Default)]
pub struct ReaderMetrics {
    /// The partition's end offset when last read (the next offset to be written).
    pub end_offset: AtomicU64,
    /// Later copies of a batch already read (a retry through another gateway, a lost ack).
    pub duplicates_dropped: AtomicU64,
    /// Workouts the reader remembers (their batches' seqs and owner).
    pub indexed_workouts: AtomicU64,
}

/// Reads one partition of the raw topic, from its oldest retained record or from where the
/// caller says its replay must start ([`PartitionReader::start_at`]). The dedup index is rebuilt
/// by the replay, so whoever reads the partition drops the same copies of the batches of every
/// workout still open; it lets go of the others ([`PartitionReader::releasing`]).
pub struct PartitionReader {
    consumer: BaseConsumer,
    topic: String,
    partition: i32,
    next_offset: i64,
    /// The partition's end offset when the reader opened it: what its replay reads.
    end_at_open: i64,
    index: ReadIndex,
    released: Option<Released>,
    metrics: Arc<ReaderMetrics>,
}

impl PartitionReader {
    /// Assigns a consumer to `partition` at its oldest retained record, asking the broker for at
    /// most `timeout`.
    pub fn open(raw: &RawTopicConfig, partition: i32, timeout: Duration) -> Result<PartitionReader, LogError> {
        // librdkafka wants a group id even for a manual assignment; nothing is ever committed to
        // it (a partition's position lives in its sinks' checkpoints), so no broker group is used.
        let client = raw.client_config(&[
            ("group.id", "trackwire-pipeline"),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("enable.partition.eof", "false"),
        ]);
        let unavailable = |what: String| LogError::Unavailable(what);
        let consumer: BaseConsumer =
            client.create().map_err(|e| unavailable(format!("creating the raw-topic consumer: {e}")))?;
        let (low, high) = consumer
            .fetch_watermarks(&raw.topic, partition, timeout)
            .map_err(|e| unavailable(format!("reading the offsets of {} partition {partition}: {e}", raw.topic)))?;
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(&raw.topic, partition, rdkafka::Offset::Offset(low))
            .and_then(|()| consumer.assign(&assignment))
            .map_err(|e| unavailable(format!("assigning {} partition {partition}: {e}", raw.topic)))?;
        Ok(PartitionReader {
            consumer,
            topic: raw.topic.clone(),
            partition,
            next_offset: low,
            end_at_open: high.max(low),
            index: ReadIndex::default(),
            released: None,
            metrics: Arc::default(),
        })
    }

    /// Starts at `lsn` instead of the oldest retained record (where the data path's sinks and
    /// workouts need nothing older; see the worker), if the partition still holds it; before the
    /// first entry is read. Dedup then covers what is read from there on: a copy of an older
    /// batch reaches the pipeline, which holds that workout as ended and applies nothing of it.
    pub fn start_at(&mut self, lsn: u64) -> Result<(), LogError> {
        let offset = (lsn.saturating_sub(1) as i64).clamp(self.next_offset, self.end_at_open);
        if offset == self.next_offset {
            return Ok(());
        }
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(&self.topic, self.partition, rdkafka::Offset::Offset(offset))
            .and_then(|()| self.consumer.assign(&assignment))
            .map_err(|e| {
                LogError::Unavailable(format!("assigning {} partition {}: {e}", self.topic, self.partition))
            })?;
        self.next_offset = offset;
        Ok(())
    }

    /// Has the reader let go, every few seconds, of the workouts whose records all lie at or
    /// before `released()`: the highest position nothing needs any more (every sink holds it
    /// and every workout begun there is stored as ended; at most what it has handed on). A
    /// takeover starting past there would not know them either.
    pub fn releasing(&mut self, released: Released) {
        self.released = Some(released);
    }

    /// The LSN of the first entry the reader hands on.
    pub fn first_lsn(&self) -> u64 {
        self.next_offset as u64 + 1
    }

    /// The LSN of the last entry the partition held when the reader opened it (below
    /// [`PartitionReader::first_lsn`] when it held none): once that is delivered, the replay is
    /// over and the workouts in progress are as the log says they are now.
    pub fn replay_through(&self) -> u64 {
        self.end_at_open as u64
    }

    pub fn metrics(&self) -> Arc<ReaderMetrics> {
        self.metrics.clone()
    }

    /// Hands every position on to `forward` until `stop` is set; `Closed` when `forward` refuses.
    /// Broker errors are retried (logged): the reader keeps its place.
    pub fn run(mut self, stop: &AtomicBool, mut forward: Forward) -> Result<(), LogError> {
        let mut housekeeping_done = Instant::now() - HOUSEKEEPING_EVERY;
        while !stop.load(Ordering::Relaxed) {
            if housekeeping_done.elapsed() >= HOUSEKEEPING_EVERY {
                self.housekeeping();
                housekeeping_done = Instant::now();
            }
            let Some(message) = self.consumer.poll(Duration::from_millis(100)) else { continue };
            let message = match message {
                Ok(message) => message,
                Err(error) => {
                    tracing::warn!(partition = self.partition, %error, "raw topic: consumer error; retrying");
                    continue;
                }
            };
            let offset = message.offset();
            if offset < self.next_offset {
                continue; // already handed on (a re-delivery after a consumer reconnect)
            }
            let mut entries = Vec::with_capacity(1);
            // Offsets with no record (compaction, transaction markers) still move every sink on.
            entries.extend((self.next_offset..offset).map(|missing| LogEntry::Gap { lsn: missing as u64 + 1 }));
            self.next_offset = offset + 1;
            let lsn = offset as u64 + 1;
            if let Some(version) = command_version(message.headers()) {
                let entry = self.command(lsn, version, message.payload());
                // A deleted workout's (an erased user's) seqs before this point are no longer
                // what a later record can be a copy of: the same file imported again is new data.
                match &entry {
                    LogEntry::Command { command: LogCommand::DeleteWorkout { workout_id, .. }, .. } => {
                        if let Ok(id) = workout_id.parse() {
                            self.index.forget_workout(&id);
                        }
                    }
                    LogEntry::Command { command: LogCommand::EraseUser { user_id, workouts }, .. } => {
                        let listed = workouts.iter().filter_map(|w| w.workout_id.parse().ok());
                        self.index.forget_user(user_id, listed);
                    }
                    _ => {}
                }
                entries.push(entry);
                for entry in entries {
                    if !forward(entry) {
                        return Err(LogError::Closed);
                    }
                }
                continue;
            }
            let key = record_key(message.key(), message.headers());
            entries.push(match (key, message.payload()) {
                (Some(key), Some(payload)) if self.index.admit(key, payload, lsn) => LogEntry::Record(LogRecord {
                    lsn,
                    key,
                    payload: Bytes::copy_from_slice(payload),
                    // The producer stamps each record when the gateway appends it.
                    appended_ms: message.timestamp().to_millis(),
                    trace_id: trace_id(message.headers()),
                }),
                (Some(_), Some(_)) => {
                    self.metrics.duplicates_dropped.fetch_add(1, Ordering::Relaxed);
                    LogEntry::Gap { lsn }
                }
                _ => {
                    tracing::warn!(
                        partition = self.partition,
                        offset,
                        "raw record without a workout key, seq header or payload: skipped"
                    );
                    LogEntry::Gap { lsn }
                }
            });
            self.metrics.indexed_workouts.store(self.index.workouts() as u64, Ordering::Relaxed);
            for entry in entries {
                if !forward(entry) {
                    return Err(LogError::Closed);
                }
            }
        }
        Ok(())
    }

    /// Reads the partition's end offset for the lag metric, and lets go of what nothing needs.
    fn housekeeping(&mut self) {
        if let Ok((_, high)) = self.consumer.fetch_watermarks(&self.topic, self.partition, Duration::from_secs(1)) {
            self.metrics.end_offset.store(high.max(0) as u64, Ordering::Relaxed);
        }
        if let Some(released) = &self.released {
            self.index.forget_through(released());
        }
        self.metrics.indexed_workouts.store(self.index.workouts() as u64, Ordering::Relaxed);
    }

    /// A command record as an entry; one this build cannot read is a gap (with a warning: a
    /// newer writer's command is not carried out here).
    fn command(&self, lsn: u64, version: &[u8], payload: Option<&[u8]>) -> LogEntry {
        let decoded = (version == COMMAND_VERSION.as_bytes())
            .then(|| LogCommand::decode(payload.unwrap_or_default()))
            .transpose();
        match decoded {
            Ok(Some(command)) => LogEntry::Command { lsn, command },
            Ok(None) => {
                let version = String::from_utf8_lossy(version);
                tracing::warn!(partition = self.partition, lsn, %version, "a command of an unknown version: skipped (upgrade this worker)");
                LogEntry::Gap { lsn }
            }
            Err(error) => {
                tracing::warn!(partition = self.partition, lsn, %error, "an unreadable command: skipped");
                LogEntry::Gap { lsn }
            }
        }
    }
}

/// The value of the command header, when the record is a command.
fn command_version(headers: Option<&BorrowedHeaders>) -> Option<&[u8]> {
    headers?.iter().find(|h| h.key == COMMAND_HEADER).map(|h| h.value.unwrap_or_default())
}

/// The trace id of the record's `traceparent` header (`00-<trace id>-<span id>-<flags>`).
fn trace_id(headers: Option<&BorrowedHeaders>) -> Option<Arc<str>> {
    let value = headers?.iter().find(|h| h.key == TRACEPARENT_HEADER)?.value?;
    let trace = std::str::from_utf8(value).ok()?.split('-').nth(1)?;
    (trace.len() == 32 && trace.bytes().all(|b| b.is_ascii_hexdigit())).then(|| Arc::from(trace))
}

/// The batch's `(workout, seq)` from the record key and the seq header the gateway writes.
fn record_key(key: Option<&[u8]>, headers: Option<&BorrowedHeaders>) -> Option<DedupKey> {
    let workout_id = WorkoutId(key?.try_into().ok()?);
    let seq = headers?
        .iter()
        .find(|h| h.key == SEQ_HEADER)
        .and_then(|h| std::str::from_utf8(h.value?).ok())
        .and_then(|s| s.parse().ok())?;
    Some(DedupKey { workout_id, seq })
}
