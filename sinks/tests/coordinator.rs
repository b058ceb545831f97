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
        let (pipeline, submitter) = Pipeline::spawn(&PipelineConfig { shards, queue_depth: queue, limits: Default::default(), profiles: Default::default(), update_interval_ms: trackwire_pipeline::DEFAULT_UPDATE_INTERVAL_MS, history: None }, tx, Arc::new(LiveWorkouts::default()));
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

/// A sink whose flushes fail while `down` is set (its service away, its store poisoned).
struct Flaky(Arc<std::sync::atomic::AtomicBool>);

impl Sink for Flaky {
    fn name(&self) -> &'static str {
        "flaky"
    }
    fn accept(&mut self, _: &ShardOutput) {}
    fn flush(&mut self, _: Instant, _: bool) -> Result<(), SinkError> {
        if self.0.load(std::sync::atomic::Ordering::Relaxed) {
            Err(SinkError::Store("Previous I/O error occurred".into()))
        } else {
            Ok(())
        }
    }
    fn checkpoint(&self) -> u64 {
        0
    }
}

/// `/healthcheck` reads how long a sink has failed without a good flush in between: the run
/// starts at its first error, keeps that start through later errors, and ends with a good flush.
#[test]
fn a_sink_counts_as_failing_from_its_first_error_until_a_flush_succeeds() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let down = Arc::new(AtomicBool::new(true));
    let mut coordinator = Coordinator::new(
        vec![Box::new(Flaky(down.clone()))],
        CoordinatorConfig { flush_interval: Duration::from_millis(5), first_lsn: 1 },
    );
    let progress = coordinator.progress().remove(0);
    let now_ms = || chrono::Utc::now().timestamp_millis();
    assert_eq!(progress.failing_for_ms(now_ms()), None);
    coordinator.flush(false);
    let began = progress.failing_since_ms.load(Ordering::Acquire);
    assert!(began > 0 && progress.failing_for_ms(now_ms() + 60_000).unwrap() >= 60_000);
    std::thread::sleep(Duration::from_millis(5));
    coordinator.flush(false);
    assert_eq!(progress.failing_since_ms.load(Ordering::Acquire), began, "the run's start, not the latest error");
    assert_eq!(progress.errors.load(Ordering::Acquire), 2);
    down.store(false, Ordering::Relaxed);
    coordinator.flush(false);
    assert_eq!(progress.failing_for_ms(now_ms()), None, "a good flush ends the run");
}
