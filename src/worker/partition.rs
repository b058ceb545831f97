//! One partition of the raw topic, consumed by this worker: a Kafka consumer assigned to it, the
//! pipeline and the sinks of that partition (its own lake labels, read-store checkpoint, event
//! log and Kafka checkpoint), on threads of their own.
//!
//! Every start (first start or takeover) reads the partition from its oldest retained record:
//! the pipeline is deterministic, so this rebuilds every open workout's state exactly as the
//! previous owner had it, and the sinks skip what they already hold (their checkpoints are per
//! partition). A record's LSN is its offset + 1, the same for every owner. A batch stored twice
//! (a device retry that reached another gateway, or a lost ack) is dropped here by a dedup index
//! that the same replay rebuilds, so each `(workout, seq)` reaches the sinks once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use rdkafka::Message;
use rdkafka::TopicPartitionList;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use trackwire_codec::{DecodeLimits, WorkoutId};
use trackwire_ingest::log::DedupIndex;
use trackwire_ingest::log::kafka::{RawTopicConfig, SEQ_HEADER, TRACEPARENT_HEADER};
use trackwire_ingest::log::record::DedupKey;
use trackwire_pipeline::{LiveWorkouts, Pipeline, PipelineConfig, Profiles, ShardOutput};
use trackwire_sinks::read_store::ReadStore;
use trackwire_sinks::{Coordinator, CoordinatorConfig, SinkProgress};

use crate::config::Config;

/// How often the partition's end offset is read for the lag metric.
const WATERMARK_EVERY: Duration = Duration::from_secs(2);

/// Progress of one partition, for `/healthcheck` and `/metrics`.
#[derive(Debug)]
pub struct PartitionStatus {
    pub partition: i32,
    /// Highest LSN (offset + 1) handed to every sink.
    pub delivered: Arc<AtomicU64>,
    /// The partition's end offset when last read (the next offset to be written).
    pub end_offset: AtomicU64,
    pub duplicates_dropped: AtomicU64,
    pub sinks: Vec<Arc<SinkProgress>>,
}

pub struct PartitionRunner {
    pub status: Arc<PartitionStatus>,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<anyhow::Result<()>>,
}

impl PartitionRunner {
    /// Opens the partition's sinks and starts consuming it from its oldest retained record.
    pub fn start(
        partition: i32,
        config: &Config,
        raw: &RawTopicConfig,
        store: Arc<dyn ReadStore>,
        profiles: Arc<Profiles>,
    ) -> anyhow::Result<PartitionRunner> {
        let source = u32::try_from(partition).context("a negative partition")?;
        let dir = config.data_dir.join("partitions").join(format!("p{source:04}"));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        // librdkafka wants a group id even for a manual assignment; nothing is ever committed to
        // it (a partition's position lives in its sinks' checkpoints), so no broker group is used.
        let client = raw.client_config(&[
            ("group.id", "trackwire-pipeline"),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("enable.partition.eof", "false"),
        ]);
        let consumer: BaseConsumer = client.create().context("creating the raw-topic consumer")?;
        // Bounded by a third of the lease: the control loop that called this must renew in time.
        let lease_third = Duration::from_secs_f64(config.cluster.lease_secs / 3.0);
        let (low, _high) = consumer
            .fetch_watermarks(&raw.topic, partition, lease_third)
            .with_context(|| format!("reading the offsets of {} partition {partition}", raw.topic))?;
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(&raw.topic, partition, rdkafka::Offset::Offset(low))
            .map_err(|e| anyhow::anyhow!("assigning {} partition {partition}: {e}", raw.topic))?;
        consumer
            .assign(&assignment)
            .map_err(|e| anyhow::anyhow!("assigning {} partition {partition}: {e}", raw.topic))?;
        // Sinks after the broker answered: opening them takes longer when it is away (the Kafka
        // sink waits for its topics), and the caller must renew its leases in time.
        let sinks = crate::serve::open_sinks(config, store, &dir, Some(source))?;

        let coordinator = Coordinator::new(
            sinks,
            CoordinatorConfig {
                flush_interval: Duration::from_millis(config.sinks.flush_interval_ms),
                first_lsn: low as u64 + 1,
            },
        );
        let status = Arc::new(PartitionStatus {
            partition,
            delivered: coordinator.fed_through(),
            end_offset: AtomicU64::new(0),
            duplicates_dropped: AtomicU64::new(0),
            sinks: coordinator.progress(),
        });
        let queue_depth = config.pipeline.queue_depth;
        let (output_tx, output_rx) = crossbeam_channel::bounded(queue_depth * 2);
        let sinks_thread = coordinator.spawn(output_rx);
        let limits = DecodeLimits {
            max_samples: config.ingest.max_samples_per_batch,
            max_events: config.ingest.max_events_per_batch,
        };
        let pipeline_config = PipelineConfig { shards: 1, queue_depth, limits, profiles };
        let (pipeline, submitter) =
            Pipeline::spawn(&pipeline_config, output_tx.clone(), Arc::new(LiveWorkouts::default()));

        let stop = Arc::new(AtomicBool::new(false));
        let consume = Consume {
            consumer,
            topic: raw.topic.clone(),
            partition,
            next_offset: low,
            dedup: DedupIndex::default(),
            status: status.clone(),
        };
        let thread_stop = stop.clone();
        let thread = std::thread::Builder::new()
            .name(format!("partition-{partition}"))
            .spawn(move || {
                let result = consume.run(&thread_stop, &submitter, &output_tx);
                // Drain in order: the pipeline finishes what it has, then the sinks commit.
                drop(submitter);
                pipeline.join();
                drop(output_tx);
                let _ = sinks_thread.join();
                result
            })
            .context("spawning a partition thread")?;
        tracing::info!(partition, from_offset = low, "partition started: replaying it from its oldest record");
        Ok(PartitionRunner { status, stop, thread })
    }

    /// Stops consuming, lets the pipeline and sinks drain and commit, and waits for them.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.join() {
            Ok(Ok(())) => tracing::info!(partition = self.status.partition, "partition stopped and committed"),
            Ok(Err(err)) => tracing::error!(partition = self.status.partition, "partition failed: {err:#}"),
            Err(_) => tracing::error!(partition = self.status.partition, "partition thread panicked"),
        }
    }

    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }
}

struct Consume {
    consumer: BaseConsumer,
    topic: String,
    partition: i32,
    next_offset: i64,
    dedup: DedupIndex,
    status: Arc<PartitionStatus>,
}

impl Consume {
    fn run(
        mut self,
        stop: &AtomicBool,
        submitter: &trackwire_pipeline::PipelineSubmitter,
        outputs: &crossbeam_channel::Sender<ShardOutput>,
    ) -> anyhow::Result<()> {
        let mut watermark_read = Instant::now() - WATERMARK_EVERY;
        while !stop.load(Ordering::Relaxed) {
            if watermark_read.elapsed() >= WATERMARK_EVERY {
                if let Ok((_, high)) =
                    self.consumer.fetch_watermarks(&self.topic, self.partition, Duration::from_secs(1))
                {
                    self.status.end_offset.store(high.max(0) as u64, Ordering::Relaxed);
                }
                watermark_read = Instant::now();
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
                continue; // already seen (a re-delivery after a consumer reconnect)
            }
            // Offsets with no record (compaction, transaction markers) still move every sink on.
            for missing in self.next_offset..offset {
                skip(outputs, missing)?;
            }
            self.next_offset = offset + 1;
            let key = record_key(message.key(), message.headers());
            match (key, message.payload()) {
                (Some(key), Some(payload)) if self.dedup.insert(key) => {
                    let trace_id = trace_id(message.headers());
                    submitter
                        .submit_traced(offset as u64 + 1, key.workout_id, Bytes::copy_from_slice(payload), trace_id)
                        .map_err(|_| anyhow::anyhow!("the pipeline stopped"))?
                }
                (Some(_), Some(_)) => {
                    self.status.duplicates_dropped.fetch_add(1, Ordering::Relaxed);
                    skip(outputs, offset)?;
                }
                _ => {
                    tracing::warn!(
                        partition = self.partition,
                        offset,
                        "raw record without a workout key, seq header or payload: skipped"
                    );
                    skip(outputs, offset)?;
                }
            }
        }
        Ok(())
    }
}

/// An empty output for `offset`: nothing to store, but every sink's position moves past it.
fn skip(outputs: &crossbeam_channel::Sender<ShardOutput>, offset: i64) -> anyhow::Result<()> {
    outputs
        .send(ShardOutput { lsn: offset as u64 + 1, ..ShardOutput::default() })
        .map_err(|_| anyhow::anyhow!("the sinks stopped"))
}

/// The trace id of the record's `traceparent` header (`00-<trace id>-<span id>-<flags>`).
fn trace_id(headers: Option<&rdkafka::message::BorrowedHeaders>) -> Option<Arc<str>> {
    let value = headers?.iter().find(|h| h.key == TRACEPARENT_HEADER)?.value?;
    let trace = std::str::from_utf8(value).ok()?.split('-').nth(1)?;
    (trace.len() == 32 && trace.bytes().all(|b| b.is_ascii_hexdigit())).then(|| Arc::from(trace))
}

/// The batch's `(workout, seq)` from the record key and the seq header the gateway writes.
fn record_key(key: Option<&[u8]>, headers: Option<&rdkafka::message::BorrowedHeaders>) -> Option<DedupKey> {
    let workout_id = WorkoutId(key?.try_into().ok()?);
    let seq = headers?
        .iter()
        .find(|h| h.key == SEQ_HEADER)
        .and_then(|h| std::str::from_utf8(h.value?).ok())
        .and_then(|s| s.parse().ok())?;
    Some(DedupKey { workout_id, seq })
}
