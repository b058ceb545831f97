//! Each enrichment stage on its own, per sample on one core: the stage runs over 64,000 points
//! of a realistic run as the pipeline hands them to it (the whole pipeline's output, so every
//! column a stage reads from the stages before it is filled), starting from fresh state.
//! Together they explain where `per_workout_of_64000_samples/enrich` spends its time; the rest
//! is decoding and materialising each `EnrichedPoint`.
//! Run: `cargo bench -p trackwire-benches --bench stages`.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use trackwire_benches::{SAMPLES, athlete, run_batches};
use trackwire_codec::Sport;
use trackwire_pipeline::stages::Stages;
use trackwire_pipeline::{EnrichedPoint, ShardCore, Stage};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BATCHES: u64 = 64;

fn points() -> Vec<EnrichedPoint> {
    let mut core = ShardCore::default();
    core.set_profile("athlete", athlete());
    let batches = run_batches(BATCHES);
    batches.iter().enumerate().flat_map(|(i, bytes)| core.process(i as u64 + 1, bytes).points).collect()
}

fn bench_stage<S: Stage>(c: &mut Criterion, name: &str, points: &[EnrichedPoint], make: impl Fn() -> S) {
    let mut group = c.benchmark_group("stage_per_64000_samples");
    group.throughput(Throughput::Elements(points.len() as u64));
    group.bench_function(name, |b| {
        b.iter_batched_ref(
            || (points.to_vec(), make()),
            |(points, stage)| {
                for point in points.iter_mut() {
                    stage.on_sample(point);
                }
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

fn stages(c: &mut Criterion) {
    let points = points();
    assert_eq!(points.len() as u64, BATCHES * u64::from(SAMPLES));
    let fresh = || Stages::new(Sport::Running, Some(&athlete()));
    bench_stage(c, "cleaning", &points, || fresh().cleaning);
    bench_stage(c, "smoothing", &points, || fresh().smoothing);
    bench_stage(c, "timing", &points, || fresh().timing);
    bench_stage(c, "distance", &points, || fresh().distance);
    bench_stage(c, "moving", &points, || fresh().moving);
    bench_stage(c, "elevation", &points, || fresh().elevation);
    bench_stage(c, "grade", &points, || fresh().grade);
    bench_stage(c, "splits", &points, || fresh().splits);
    bench_stage(c, "heart_rate", &points, || fresh().heart_rate);
    bench_stage(c, "calories", &points, || fresh().calories);
}

criterion_group!(benches, stages);
criterion_main!(benches);
