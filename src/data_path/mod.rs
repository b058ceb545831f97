//! The data path: a log reader's entries → pipeline → coordinator → sinks, built in one place for
//! every role that processes data. The single process feeds it from the embedded log; a pipeline
//! worker runs one per raw-topic partition it holds.
//!
//! **In:** [`LogEntry`]s in position order, through the [`Forward`] it gives the reader.
//! **Out:** what its sinks commit (lake, event log, read store, Kafka), the live view of workouts
//! in progress, and the sinks' progress for retention, `/healthcheck` and `/metrics`.
//!
//! Starting is two steps because the reader decides where the stream starts: [`DataPath::open`]
//! opens the sinks (they learn what they already hold) and the pipeline, and hands out the
//! `Forward`; [`DataPath::start`] starts the coordinator at the reader's first position. Stopping
//! is one order for every role ([`Running::join`]): the reader stops and drops its `Forward`, the
//! pipeline finishes what it has, then the sinks commit everything.
//!
//! Commands that come through the log (erasures, retention cuts: `commands.rs`) go to the
//! coordinator at their position, which carries them out between the outputs before and after.
//! Each is recorded in the read store once done; the records also tell a later reader (after a
//! restart, or another worker taking the partition over) what to keep out of its replay.

mod commands;
mod idle;
mod released;

pub use idle::IdleSweeper;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context;
use crossbeam_channel::{Receiver, Sender};
use trackwire_codec::{DecodeLimits, WorkoutId};
use trackwire_ingest::log::{Forward, LogCommand, LogEntry};
use trackwire_pipeline::{EndedWorkouts, LiveWorkouts, Pipeline, PipelineConfig, Profiles, ShardOutput, Stored};
use trackwire_sinks::events::EventLogSink;
use trackwire_sinks::kafka::{KafkaSink, Position};
use trackwire_sinks::lake::{LakeConfig, LakeTable, PointsTable, WorkoutsTable};
use trackwire_sinks::read_store::{LOCAL_LOG, ReadStore, ReadStoreSink, replay_start_name};
use trackwire_sinks::{
    CommandSender, Coordinator, CoordinatorConfig, OrderedCommand, OwnThread, Redactions, Sink, SinkProgress,
};

use crate::config::Config;

/// Which log feeds a data path; it decides where the sinks keep their state and how they name
/// their positions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// The embedded segment log of the single process.
    Embedded,
    /// One partition of the scale-out raw topic.
    RawPartition(u32),
}

impl Input {
    /// Where this input's local sink state lives (event log, Kafka checkpoint).
    fn dir(self, data_dir: &Path) -> PathBuf {
        match self {
            Input::Embedded => data_dir.to_path_buf(),
            Input::RawPartition(p) => data_dir.join("partitions").join(format!("p{p:04}")),
        }
    }

    /// The lake's file-label namespace: None for the embedded log, `Some(p)` for partition p.
    fn lake_source(self) -> Option<u32> {
        match self {
            Input::Embedded => None,
            Input::RawPartition(p) => Some(p),
        }
    }

    /// The read store's name for this input's positions (its checkpoint key).
    pub fn log_name(self) -> String {
        match self {
            Input::Embedded => LOCAL_LOG.to_owned(),
            Input::RawPartition(p) => trackwire_ingest::log::kafka::partition_log_name(p),
        }
    }

    /// Pipeline shards: the configured number (0: one per core) for the single process; one per
    /// partition for a worker, which runs as many partitions as it holds side by side.
    fn shards(self, config: &Config) -> usize {
        match self {
            Input::Embedded if config.pipeline.shards == 0 => {
                std::thread::available_parallelism().map_or(2, |n| n.get())
            }
            Input::Embedded => config.pipeline.shards,
            Input::RawPartition(_) => 1,
        }
    }
}

/// A data path whose sinks and pipeline are open, waiting for the reader's first position.
pub struct DataPath {
    input: Input,
    store: Arc<dyn ReadStore>,
    sinks: Vec<Box<dyn Sink>>,
    flush_interval: Duration,
    pipeline: Pipeline,
    outputs: Receiver<ShardOutput>,
    feed: Option<Feed>,
    logged: Receiver<OrderedCommand>,
    live: Arc<LiveWorkouts>,
    /// Where the reader may start (see [`DataPath::replay_start`]).
    replay_start: u64,
}

/// The read store as the pipeline's memory of workouts that ended before it started (their
/// records may be gone from the log; their summaries stay).
struct StoredEnds(Arc<dyn ReadStore>);

impl std::fmt::Debug for StoredEnds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoredEnds")
    }
}

impl EndedWorkouts for StoredEnds {
    fn ended_span(&self, workout_id: &WorkoutId) -> Option<std::ops::RangeInclusive<u64>> {
        match self.0.get(workout_id) {
            Ok(summary) => summary.filter(|s| s.status.is_ended()).map(|s| s.first_lsn..=s.last_lsn),
            Err(err) => {
                // The store is failing (the sinks will say so on /healthcheck); the batch is
                // applied as a workout's first, as it would be without a store to ask.
                tracing::error!(workout = %workout_id, %err, "could not ask the read store whether the workout ended");
                None
            }
        }
    }
}

fn register(deletions: &trackwire_pipeline::Deletions, redactions: &Redactions) {
    for (&id, &through) in &redactions.deleted {
        deletions.delete_through(id, through);
    }
    for (user_id, &through) in &redactions.erased {
        deletions.erase_user_through(user_id, through);
    }
}

/// What the reader's entries go to: records to the pipeline, gaps straight to the coordinator
/// (which orders them with the records by position).
struct Feed {
    submitter: trackwire_pipeline::PipelineSubmitter,
    gaps: Sender<ShardOutput>,
    commands: Sender<OrderedCommand>,
}

impl DataPath {
    /// Opens `input`'s sinks over `store` and starts the pipeline (with `profiles`).
    pub fn open(
        config: &Config,
        store: Arc<dyn ReadStore>,
        input: Input,
        profiles: Arc<Profiles>,
    ) -> anyhow::Result<DataPath> {
        let dir = input.dir(&config.data_dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let live = Arc::new(LiveWorkouts::default());
        let Opened { sinks, first_not_held } = open_sinks(config, store.clone(), &dir, input, &live)?;
        live.replaying_through(sinks.iter().map(|sink| sink.checkpoint()).min().unwrap_or(0));
        let replay_start = match input {
            // The embedded log keeps exactly what a restart needs (see `single`).
            Input::Embedded => 1,
            Input::RawPartition(_) => {
                let recorded = store
                    .checkpoint(&replay_start_name(&input.log_name()))
                    .context("reading where the partition's replay starts")?;
                // Nothing recorded (a partition never run, or run by a build that recorded
                // nothing): only the whole partition rebuilds every workout.
                if recorded == 0 { 1 } else { recorded.min(first_not_held) }
            }
        };
        let shards = input.shards(config);
        let queue_depth = config.pipeline.queue_depth;
        let (output_tx, outputs) = crossbeam_channel::bounded(OUTPUTS_IN_FLIGHT_PER_SHARD * shards.max(2));
        let pipeline_config = PipelineConfig {
            shards,
            queue_depth,
            limits: decode_limits(config),
            profiles,
            update_interval_ms: (config.pipeline.update_interval_secs * 1000.0).round() as i64,
            history: Some(Arc::new(StoredEnds(store.clone()))),
        };
        let (pipeline, submitter) = Pipeline::spawn(&pipeline_config, output_tx.clone(), live.clone());
        // The coordinator starts with `start`, at the reader's first position; until then outputs
        // wait in the channel.
        let (commands, logged) = crossbeam_channel::unbounded();
        Ok(DataPath {
            input,
            store,
            sinks,
            flush_interval: Duration::from_millis(config.sinks.flush_interval_ms),
            pipeline,
            outputs,
            feed: Some(Feed { submitter, gaps: output_tx, commands }),
            logged,
            live,
            replay_start,
        })
    }

    /// The first position the reader must hand on, though the log may retain older ones: every
    /// sink holds everything before it, and the workouts it holds that are not stored as ended
    /// begin at or after it (recorded by the read store sink as it commits). 1, the whole log,
    /// where nothing was recorded; the embedded log's own first record is always right.
    pub fn replay_start(&self) -> u64 {
        self.replay_start
    }

    /// Tells the shards of deletions and erasures recorded outside the log: known before the
    /// log replays, they keep those records out of the shards' state as well as out of the sinks.
    pub fn register(&self, redactions: &Redactions) {
        register(self.live.deletions(), redactions);
    }

    /// The callback the log reader hands its entries to (once: the reader owns it, and dropping
    /// it is what lets the data path drain).
    pub fn forward(&mut self) -> Forward {
        let Feed { submitter, gaps, commands } = self.feed.take().expect("DataPath::forward is called once");
        let (log, store, live) = (self.input.log_name(), self.store.clone(), self.live.clone());
        Box::new(move |entry| match entry {
            LogEntry::Record(record) => {
                let stored = Stored { appended_ms: record.appended_ms, trace_id: record.trace_id };
                submitter.submit_record(record.lsn, record.key.workout_id, record.payload, stored).is_ok()
            }
            LogEntry::Gap { lsn } => gaps.send(ShardOutput { lsn, ..ShardOutput::default() }).is_ok(),
            LogEntry::Command { lsn, command } => {
                // A deletion reaches the shards before any later record does, so they apply
                // nothing more of the workout from its position on.
                match &command {
                    LogCommand::DeleteWorkout { workout_id, .. } => {
                        if let Ok(id) = workout_id.parse() {
                            live.deletions().delete_through(id, lsn);
                        }
                    }
                    LogCommand::EraseUser { user_id, .. } => live.deletions().erase_user_through(user_id, lsn),
                    _ => {}
                }
                // The command first: the coordinator looks for it when the gap at its position
                // comes up.
                let command =
                    commands::FromLog { lsn, command, log: log.clone(), store: store.clone(), live: live.clone() };
                commands.send(OrderedCommand { lsn, command: Box::new(command) }).is_ok()
                    && gaps.send(ShardOutput { lsn, ..ShardOutput::default() }).is_ok()
            }
        })
    }

    /// Starts the sinks' thread at `first_lsn`, the reader's first position, applying
    /// `redactions` (erasures and the retention cut recorded before a restart), and those of the
    /// commands recorded for this log, to what it replays. A recorded command not yet carried
    /// out whose position the log no longer holds is carried out first.
    pub fn start(self, first_lsn: u64, redactions: Redactions) -> anyhow::Result<Running> {
        let DataPath { input, store, sinks, flush_interval, pipeline, outputs, feed, logged, live, .. } = self;
        let records = store.log_commands(&input.log_name()).context("reading the commands recorded for the log")?;
        let (mut recorded, undone) = commands::recorded(&records, first_lsn, &store, &live);
        recorded.merge(redactions);
        register(live.deletions(), &recorded);
        if let Some(Feed { commands, .. }) = &feed {
            for command in undone {
                let _ = commands.send(command);
            }
        }
        drop(feed); // a Forward never asked for: nothing will be read
        let coordinator =
            Coordinator::with_redactions(sinks, CoordinatorConfig { flush_interval, first_lsn }, recorded)
                .with_logged_commands(logged);
        let status = Status {
            live,
            sinks: coordinator.progress().into(),
            fed_through: coordinator.fed_through(),
            commands: coordinator.commands(),
            stopping: coordinator.stopping(),
        };
        let sinks_thread = coordinator.spawn(outputs);
        Ok(Running { pipeline, sinks_thread, status })
    }
}

/// What a running data path shows: the live view, the sinks' progress and where commands go.
#[derive(Clone)]
pub struct Status {
    pub live: Arc<LiveWorkouts>,
    pub sinks: Arc<[Arc<SinkProgress>]>,
    /// Highest LSN handed (in order) to every sink.
    pub fed_through: Arc<AtomicU64>,
    pub commands: CommandSender,
    /// Set when the process stops, before the reader is stopped: the sinks then stop waiting for
    /// a full sink's service, so the drain cannot hang on it (what it could not commit is
    /// replayed from the log).
    pub stopping: Arc<std::sync::atomic::AtomicBool>,
}

/// A started data path.
pub struct Running {
    pipeline: Pipeline,
    sinks_thread: JoinHandle<()>,
    pub status: Status,
}

impl Running {
    /// Waits for the drain, once the reader has stopped and dropped its `Forward`: the pipeline
    /// finishes what it has, then the sinks commit everything and checkpoint.
    pub fn join(self) {
        self.pipeline.join();
        if self.sinks_thread.join().is_err() {
            tracing::error!("the sinks thread panicked; what it had not committed is replayed from the log");
        }
    }
}

fn decode_limits(config: &Config) -> DecodeLimits {
    DecodeLimits { max_samples: config.ingest.max_samples_per_batch, max_events: config.ingest.max_events_per_batch }
}

/// Outputs waiting between the shards and the coordinator, per shard. The coordinator only
/// reorders and hands them on, so a short queue keeps both sides busy; a long one only holds
/// memory: an output of a 1,000-sample upload is ≈ 170 KB of columns, and this queue was
/// `pipeline.queue_depth` (1,024) per shard deep, ≈ 350 MB when the sinks fall behind.
const OUTPUTS_IN_FLIGHT_PER_SHARD: usize = 64;

/// The sinks of one input, and the first position not every one of them holds.
struct Opened {
    sinks: Vec<Box<dyn Sink>>,
    first_not_held: u64,
}

/// Every sink of one input: the lake tables, the event log (in `dir/events`), the read store
/// (which tells `live` what it has committed, and for a raw partition where a replay must
/// start) and, with brokers, Kafka (checkpoint in `dir`).
fn open_sinks(
    config: &Config,
    store: Arc<dyn ReadStore>,
    dir: &Path,
    input: Input,
    live: &Arc<LiveWorkouts>,
) -> anyhow::Result<Opened> {
    let lake = config.lake_store().context("opening the lake")?;
    let lake_config = LakeConfig {
        target_file_bytes: config.lake.target_file_bytes,
        max_file_age: Duration::from_secs_f64(config.lake.max_file_age_secs),
        row_group_rows: config.lake.row_group_rows,
        max_open_partitions: config.lake.max_open_partitions,
        multipart_threshold_bytes: config.lake.multipart_threshold_bytes,
        zstd_level: config.lake.zstd_level,
        compact_above_files: config.lake.compact_above_files,
        vacuum_retention: Duration::from_secs_f64(config.lake.vacuum_retention_secs),
        settled_after: Duration::from_secs_f64(config.lake.settled_after_secs),
        settled_target_file_bytes: config.lake.settled_target_file_bytes,
        // A tenth of the quiet time, so a partition settles soon after it qualifies.
        settle_every: Duration::from_secs_f64(config.lake.settled_after_secs / 10.0)
            .clamp(Duration::from_secs(1), Duration::from_secs(60)),
    };
    let source = input.lake_source();
    let events = EventLogSink::open(&dir.join("events")).context("opening the event log")?;
    let mut read_store = ReadStoreSink::new(store.clone(), input.log_name())
        .context("opening the read store sink")?
        .telling(live.clone());
    if matches!(input, Input::RawPartition(_)) {
        read_store = read_store.recording_replay_start();
    }
    // The event log on a worker's own volume that holds nothing yet (a takeover on another
    // node) starts where the replay does; it is a local copy, the shared stream is Kafka's.
    let events_hold = events.checkpoint() > 0 || input == Input::Embedded;
    let mut first_not_held = if events_hold { events.checkpoint() + 1 } else { u64::MAX };
    let points = LakeTable::<PointsTable>::open_source(lake.clone(), lake_config.clone(), source)
        .context("opening lake table points")?;
    let workouts =
        LakeTable::<WorkoutsTable>::open_source(lake, lake_config, source).context("opening lake table workouts")?;
    for checkpoint in [points.checkpoint(), workouts.checkpoint(), read_store.checkpoint()] {
        first_not_held = first_not_held.min(checkpoint + 1);
    }
    let mut sinks: Vec<Box<dyn Sink>> =
        vec![Box::new(points), Box::new(workouts), Box::new(events), Box::new(read_store)];
    if let Some(kafka) = config.kafka.sink_config() {
        tracing::info!(brokers = %kafka.brokers, events = %kafka.events_topic, points = %kafka.points_topic, "kafka sink on");
        let file = dir.join("kafka.checkpoint");
        let position = match input {
            Input::Embedded => Position::File(file),
            // The partition's next owner may run on another node: it finds the position in the
            // shared store.
            Input::RawPartition(_) => Position::in_store(store.clone(), &input.log_name(), Some(file)),
        };
        let kafka = KafkaSink::open(kafka, position).context("opening the kafka sink")?;
        first_not_held = first_not_held.min(kafka.checkpoint() + 1);
        sinks.push(Box::new(kafka));
    }
    // Each sink works on its own thread, so their encoding and IO overlap instead of queueing
    // behind one another on the coordinator's.
    let sinks = sinks
        .into_iter()
        .map(|sink| Ok(Box::new(OwnThread::spawn(sink).context("starting a sink's thread")?) as Box<dyn Sink>))
        .collect::<anyhow::Result<_>>()?;
    Ok(Opened { sinks, first_not_held })
}
