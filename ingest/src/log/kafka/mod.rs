//! The scale-out log: the Kafka topic `trackwire.raw.v1` in place of the embedded segments, its
//! writer and reader side by side.
//!
//! - **Writer** ([`open`], `writer.rs`): the same appends as the embedded log
//!   ([`DurableLog::try_append`]), answered once the broker has acknowledged them (`acks=all`,
//!   idempotent producer). A workout's batches all go to one partition ([`partition_of`]), keyed
//!   by the workout id, with the seq in a header.
//! - **Reader** ([`PartitionReader`], `reader.rs`): one partition from its oldest retained record,
//!   every position handed on in order as a [`LogEntry`](super::LogEntry): a record, or a gap.
//!
//! - **Commands** ([`append_to_every_partition`], [`append_each`], `command.rs`): an erasure or
//!   a retention cut, stored in every partition and handed on by the reader as a
//!   [`LogEntry::Command`](super::LogEntry::Command) at its position.
//!
//! Dedup: the rule is the embedded log's ([`DedupIndex`]: the first copy of a `(workout, seq)`
//! wins). A retry that reaches the same gateway within a minute or two after its first copy was
//! acknowledged is answered `Duplicate` without producing; any other retry (another gateway, a
//! restart, a lost ack, a later one) is produced again, and the reader, which rebuilds its index
//! from the partition it replays, turns the later copy into a gap. A deletion or erasure
//! command makes the reader forget the workouts it names (an erasure: those it lists and those
//! its owner index gives the user), so what is sent again after it is new data. The reader lets
//! go of a workout once nothing needs its records (`index.rs`): its memory follows the workouts
//! in progress, not every workout since it started.

mod command;
mod index;
mod reader;
mod topics;
mod writer;

use std::collections::BTreeMap;

use rdkafka::config::ClientConfig;
use trackwire_codec::WorkoutId;

#[cfg(doc)]
use super::{DedupIndex, DurableLog};
pub use command::{Placed, append_each, append_to_every_partition};
pub use reader::{PartitionReader, ReaderMetrics, Released};
pub use topics::{Drift, FoundTopic, TopicSettings, TopicSpec, provision};
pub use writer::open;

/// The record header carrying the batch's sequence number (decimal), so a worker can dedupe
/// without decoding the payload first.
pub const SEQ_HEADER: &str = "trackwire-seq";
/// The W3C `traceparent` of the request that brought the batch, when it had one.
pub const TRACEPARENT_HEADER: &str = "traceparent";

/// Where the raw topic lives and how to reach it.
#[derive(Debug, Clone)]
pub struct RawTopicConfig {
    /// `host:port[,host:port…]`.
    pub brokers: String,
    pub topic: String,
    /// Partitions of the topic (created with this many when missing). Every gateway and worker
    /// must agree on it: it decides which partition a workout lives in.
    pub partitions: i32,
    /// Appends waiting for the producer thread; when full, `try_append` answers `Full` (503).
    pub queue_depth: usize,
    /// Extra librdkafka settings (security, SASL, …); they win over ours.
    pub client: BTreeMap<String, String>,
    /// Replication and retention the topic is provisioned with.
    pub settings: TopicSettings,
}

impl RawTopicConfig {
    /// The topic as it should be: expired after the retention, never compacted (compaction by
    /// workout id would keep one batch per workout).
    pub fn spec(&self) -> TopicSpec {
        TopicSpec {
            name: self.topic.clone(),
            partitions: self.partitions,
            settings: self.settings.clone(),
            compacted: false,
            compaction_lag_ms: 0,
        }
    }

    /// A librdkafka configuration for a client of the topic: the brokers, then `defaults` (the
    /// client's own settings), then the configured extras, which win.
    pub fn client_config(&self, defaults: &[(&str, &str)]) -> ClientConfig {
        let mut client = ClientConfig::new();
        client.set("bootstrap.servers", &self.brokers);
        for (key, value) in defaults {
            client.set(*key, *value);
        }
        for (key, value) in &self.client {
            client.set(key, value);
        }
        client
    }
}

/// The name a partition's positions go by in the read store (its checkpoints, the commands
/// placed in it): `raw.v1/<partition>`.
pub fn partition_log_name(partition: u32) -> String {
    format!("raw.v1/{partition}")
}

/// The partition of the raw topic that holds a workout's batches. A hash of its own (not
/// [`WorkoutId::shard_hash`]), so that the shards inside a worker still spread a partition's
/// workouts.
pub fn partition_of(workout_id: &WorkoutId, partitions: i32) -> i32 {
    let tail = u32::from_be_bytes([workout_id.0[12], workout_id.0[13], workout_id.0[14], workout_id.0[15]]);
    let mixed = u64::from(tail).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32;
    (mixed % partitions.max(1) as u64) as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_workout_stays_in_one_partition_and_partitions_are_all_used() {
        let mut seen = [0usize; 8];
        for n in 0..8_000 {
            let id = WorkoutId(uuid_like(n));
            let p = partition_of(&id, 8);
            assert_eq!(p, partition_of(&id, 8));
            seen[p as usize] += 1;
        }
        assert!(seen.iter().all(|&c| c > 700), "{seen:?}");
    }

    fn uuid_like(n: u64) -> [u8; 16] {
        let mut id = [0u8; 16];
        id[8..].copy_from_slice(&n.wrapping_mul(0x2545_f491_4f6c_dd1d).to_be_bytes());
        id
    }
}
