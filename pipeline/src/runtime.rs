//! The threaded driver: one worker per shard, bounded queues in and out.

use std::sync::Arc;
use std::thread::JoinHandle;

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender};
use trackwire_codec::{DecodeLimits, WorkoutId};

use crate::{EndedWorkouts, LiveWorkouts, Profiles, ShardCore, ShardOutput};

#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// Worker threads; each owns the workouts whose id hashes to it.
    pub shards: usize,
    /// Records queued per shard before the log writer blocks (backpressure).
    pub queue_depth: usize,
    pub limits: DecodeLimits,
    /// Athlete profiles the shards read when a workout starts.
    pub profiles: Arc<Profiles>,
    /// Least device time between two `WorkoutUpdated` events of a workout, ms.
    pub update_interval_ms: i64,
    /// The store of ended workouts a shard asks about a workout it meets without its start.
    pub history: Option<Arc<dyn EndedWorkouts>>,
}

struct ShardInput {
    lsn: u64,
    stored_ms: Option<i64>,
    payload: Bytes,
    trace_id: Option<Arc<str>>,
}

/// What the log tells of a record besides its bytes.
#[derive(Debug, Clone, Default)]
pub struct Stored {
    /// When the log stored it (Unix ms), if it kept the time.
    pub appended_ms: Option<i64>,
    pub trace_id: Option<Arc<str>>,
}

/// The pipeline has stopped: nothing more can be submitted.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the pipeline has stopped")]
pub struct PipelineStopped;

/// Routes durable records to their shard. Dropping every submitter drains and stops the pipeline.
#[derive(Clone)]
pub struct PipelineSubmitter {
    inputs: Arc<[Sender<ShardInput>]>,
}

impl PipelineSubmitter {
    /// Hands a durable record to the shard that owns its workout; blocks while that shard's queue
    /// is full (which is how a slow pipeline pushes back on the log and then on ingest).
    pub fn submit(&self, lsn: u64, workout_id: WorkoutId, payload: Bytes) -> Result<(), PipelineStopped> {
        self.submit_record(lsn, workout_id, payload, Stored::default())
    }

    /// [`PipelineSubmitter::submit`] for a record with what the log knows of it: when it was
    /// stored, and the trace id of the request that brought it (scale-out: from the raw topic's
    /// `traceparent` header). The record's output carries both on to the sinks.
    pub fn submit_record(
        &self,
        lsn: u64,
        workout_id: WorkoutId,
        payload: Bytes,
        stored: Stored,
    ) -> Result<(), PipelineStopped> {
        let shard = (workout_id.shard_hash() % self.inputs.len() as u64) as usize;
        let input = ShardInput { lsn, stored_ms: stored.appended_ms, payload, trace_id: stored.trace_id };
        self.inputs[shard].send(input).map_err(|_| PipelineStopped)
    }
}

pub struct Pipeline {
    handles: Vec<JoinHandle<()>>,
}

impl Pipeline {
    /// Starts the shard workers. Every record submitted yields exactly one [`ShardOutput`] on
    /// `output` (in LSN order per shard; the sinks reorder across shards).
    pub fn spawn(
        config: &PipelineConfig,
        output: Sender<ShardOutput>,
        live: Arc<LiveWorkouts>,
    ) -> (Pipeline, PipelineSubmitter) {
        let shards = config.shards.max(1);
        let mut inputs = Vec::with_capacity(shards);
        let mut handles = Vec::with_capacity(shards);
        for index in 0..shards {
            let (tx, rx) = crossbeam_channel::bounded(config.queue_depth.max(1));
            inputs.push(tx);
            let output = output.clone();
            let live = live.clone();
            let limits = config.limits;
            let profiles = config.profiles.clone();
            let update_interval_ms = config.update_interval_ms;
            let history = config.history.clone();
            let handle = std::thread::Builder::new()
                .name(format!("shard-{index}"))
                .spawn(move || {
                    run_shard(
                        ShardCore::with_profiles(limits, profiles)
                            .with_update_interval_ms(update_interval_ms)
                            .with_history(history)
                            .with_deletions(Some(live.deletions().clone())),
                        rx,
                        output,
                        live,
                    )
                })
                .expect("spawn a pipeline shard thread");
            handles.push(handle);
        }
        (Pipeline { handles }, PipelineSubmitter { inputs: inputs.into() })
    }

    /// Waits until every shard has drained its queue (after all submitters were dropped).
    pub fn join(self) {
        for handle in self.handles {
            if handle.join().is_err() {
                tracing::error!("a pipeline shard panicked");
            }
        }
    }
}

fn run_shard(mut core: ShardCore, input: Receiver<ShardInput>, output: Sender<ShardOutput>, live: Arc<LiveWorkouts>) {
    let mut stored_through = 0;
    for record in input {
        let stored_now = live.stored_through();
        if stored_now != stored_through {
            stored_through = stored_now;
            core.forget_ended_through(stored_through);
        }
        let mut out = core.process_stored(record.lsn, record.stored_ms, &record.payload);
        out.trace_id = record.trace_id;
        if let Some(reason) = out.not_applied {
            live.count_not_applied(record.lsn, reason);
        }
        if let Some(summary) = &out.summary {
            live.update(summary);
            if let Some(reason) = summary.end_reason.filter(|_| out.ended) {
                live.count_end(record.lsn, reason);
            }
        }
        if output.send(out).is_err() {
            tracing::error!("sinks stopped before the pipeline; shard exiting");
            return;
        }
    }
}
