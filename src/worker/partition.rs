//! One partition of the raw topic, run by this worker: the partition's reader
//! ([`PartitionReader`]) feeding a data path of its own (its own lake labels, read-store
//! checkpoint, event log and Kafka checkpoint), on a thread of its own.
//!
//! Every start (first start or takeover) replays the partition from the oldest record that a
//! sink lacks or that a workout not stored as ended began with (the read store sink records
//! that position as it commits; the whole retained partition when none is recorded): the
//! pipeline is deterministic, so this rebuilds every open workout's state exactly as the
//! previous owner had it, and the sinks skip what they already hold (their checkpoints are per
//! partition). A record's LSN is its offset + 1, the same for every owner; a batch stored twice
//! reaches the data path as a gap (the log's dedup rule), so each `(workout, seq)` reaches the
//! sinks once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use trackwire_ingest::log::kafka::{PartitionReader, RawTopicConfig, ReaderMetrics};
use trackwire_pipeline::{LiveWorkouts, Profiles};
use trackwire_sinks::read_store::ReadStore;
use trackwire_sinks::{Redactions, SinkProgress};

use crate::config::Config;
use crate::data_path::{DataPath, Input};

/// Progress of one partition, for `/healthcheck` and `/metrics`.
#[derive(Debug)]
pub struct PartitionStatus {
    pub partition: i32,
    /// The first LSN this run read (its replay's start).
    pub first_lsn: u64,
    /// Highest LSN (offset + 1) handed to every sink.
    pub delivered: Arc<AtomicU64>,
    /// The reader's end offset and the duplicates it dropped.
    pub reader: Arc<ReaderMetrics>,
    pub sinks: Arc<[Arc<SinkProgress>]>,
    /// The partition's workouts in progress, and how many ended.
    pub live: Arc<LiveWorkouts>,
    /// Set before the partition stops, so its drain does not wait for a full sink's service.
    stopping: Arc<AtomicBool>,
}

pub struct PartitionRunner {
    pub status: Arc<PartitionStatus>,
    /// The last LSN of the replay that started the partition.
    replay_through: u64,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<anyhow::Result<()>>,
}

impl PartitionRunner {
    /// Opens the partition's reader and data path and starts reading from its oldest record.
    pub fn start(
        partition: i32,
        config: &Config,
        raw: &RawTopicConfig,
        store: Arc<dyn ReadStore>,
        profiles: Arc<Profiles>,
    ) -> anyhow::Result<PartitionRunner> {
        let source = u32::try_from(partition).context("a negative partition")?;
        // Bounded by a third of the lease: the control loop that called this must renew in time.
        let lease_third = Duration::from_secs_f64(config.cluster.lease_secs / 3.0);
        let mut reader = PartitionReader::open(raw, partition, lease_third)?;
        // Sinks after the broker answered: opening them takes longer when it is away (the Kafka
        // sink waits for its topics), and the caller must renew its leases in time.
        let mut data_path = DataPath::open(config, store, Input::RawPartition(source), profiles)?;
        reader.start_at(data_path.replay_start())?;
        let (first_lsn, replay_through) = (reader.first_lsn(), reader.replay_through());
        let forward = data_path.forward();
        let running = data_path.start(first_lsn, Redactions::default())?;
        let released = running.status.clone();
        reader.releasing(Box::new(move || released.released_through()));
        let status = Arc::new(PartitionStatus {
            partition,
            first_lsn,
            delivered: running.status.fed_through.clone(),
            reader: reader.metrics(),
            sinks: running.status.sinks.clone(),
            live: running.status.live.clone(),
            stopping: running.status.stopping.clone(),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = stop.clone();
        let thread = std::thread::Builder::new()
            .name(format!("partition-{partition}"))
            .spawn(move || {
                // The reader's end drops its Forward, which lets the data path drain.
                let result = reader.run(&thread_stop, forward);
                running.join();
                result.context("reading the raw topic")
            })
            .context("spawning a partition thread")?;
        tracing::info!(
            partition,
            from_lsn = first_lsn,
            through_lsn = replay_through,
            "partition started: replaying it"
        );
        Ok(PartitionRunner { status, replay_through, stop, thread })
    }

    /// Stops reading, lets the pipeline and sinks drain and commit, and waits for them.
    pub fn stop(self) {
        self.status.stopping.store(true, Ordering::Release);
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.join() {
            Ok(Ok(())) => tracing::info!(partition = self.status.partition, "partition stopped and committed"),
            Ok(Err(err)) => tracing::error!(partition = self.status.partition, "partition failed: {err:#}"),
            Err(_) => tracing::error!(partition = self.status.partition, "partition thread panicked"),
        }
    }

    /// True once the replay that started the partition has been delivered: until then its
    /// workouts look as they were at some past record, not as they are.
    pub fn replayed(&self) -> bool {
        self.status.delivered.load(Ordering::Acquire) >= self.replay_through
    }

    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }
}
