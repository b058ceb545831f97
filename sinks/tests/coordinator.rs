//! The threaded pipeline plus the coordinator's reordering, checked against a model: one
//! single-threaded core fed the same records. Whatever the interleaving of the shard threads,
//! every sink sees exactly the model's outputs, in LSN order, with no gap.
mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use proptest::prelude::*;
use trackwire_codec::WorkoutId;
use trackwire_pipeline::{LiveWorkouts, Pipeline, PipelineConfig, ShardOutput};
use trackwire_sinks::{Coordinator, CoordinatorConfig, Sink, SinkError};

/// What a sink saw of one output: LSN, point count, event ids.
type Seen = (u64, usize, Vec<String>);

#[derive(Clone, Default)]
struct Recording(Arc<Mutex<Vec<Seen>>>);

impl Sink for Recording {
    fn name(&self) -> &'static str {
        "recording"
    }
    fn accept(&mut self, out: &ShardOutput) {
        self.0.lock().unwrap().push((
            out.lsn,
            out.points.len(),
            out.events.iter().map(|e| e.event_id.clone()).collect(),
        ));
    }
    fn flush(&mut self, _: Instant, _: bool) -> Result<(), SinkError> {
        Ok(())
    }
    fn checkpoint(&self) -> u64 {
        self.0.lock().unwrap().last().map_or(0, |r| r.0)
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn sinks_see_the_models_outputs_in_lsn_order(
        plan in proptest::collection::vec((0u8..6, 1u32..30), 1..120),
        shards in 1usize..5,
        queue in 1usize..4,
    ) {
        let mut seqs = [0u64; 6];
        let records: Vec<(u64, Vec<u8>)> = plan.iter().enumerate().map(|(i, (w, n))| {
            let seq = seqs[*w as usize];
            seqs[*w as usize] += 1;
            (i as u64 + 1, common::batch(*w, seq, 1_700_000_000_000 + seq as i64 * 60_000, *n))
        }).collect();
        let model: Vec<_> = common::outputs(&records).into_iter().map(|o| (o.lsn, o.points.len(), o.events.iter().map(|e| e.event_id.clone()).collect::<Vec<_>>())).collect();

        let recording = Recording::default();
        let (tx, rx) = crossbeam_channel::bounded(queue);
        let (pipeline, submitter) = Pipeline::spawn(&PipelineConfig { shards, queue_depth: queue, limits: Default::default(), profiles: Default::default(), update_interval_ms: trackwire_pipeline::DEFAULT_UPDATE_INTERVAL_MS }, tx, Arc::new(LiveWorkouts::default()));
        let coordinator = Coordinator::new(vec![Box::new(recording.clone())], CoordinatorConfig { flush_interval: Duration::from_millis(5), first_lsn: 1 });
        let sinks = coordinator.spawn(rx);
        for ((lsn, bytes), (workout, _)) in records.iter().zip(&plan) {
            submitter.submit(*lsn, WorkoutId([*workout; 16]), Bytes::copy_from_slice(bytes)).unwrap();
        }
        drop(submitter);
        pipeline.join();
        sinks.join().unwrap();
        prop_assert_eq!(&*recording.0.lock().unwrap(), &model);
    }
}
