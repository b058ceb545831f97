//! Parquet encoding of the `points` table, rows per second on one core: Arrow arrays from the
//! enriched points, then zstd Parquet with the lake's writer properties.
//! Run: `cargo bench -p trackwire-benches --bench lake`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use parquet::arrow::ArrowWriter;
use trackwire_benches::{SAMPLES, run_batches};
use trackwire_pipeline::{EnrichedPoint, ShardCore};
use trackwire_sinks::lake::{PointsTable, TableSpec, writer_properties};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ROWS: u32 = 100_000;

/// 100,000 enriched points of a realistic run (the pipeline's own output).
fn points() -> Vec<EnrichedPoint> {
    let mut core = ShardCore::default();
    let batches = run_batches(u64::from(ROWS / SAMPLES));
    batches.iter().enumerate().flat_map(|(i, bytes)| core.process(i as u64 + 1, bytes).points).collect()
}

fn encode(c: &mut Criterion) {
    let rows = points();
    let mut group = c.benchmark_group("lake_points");
    group.throughput(Throughput::Elements(u64::from(ROWS)));
    group.sample_size(10);
    group.bench_function("parquet_encode_100k_rows", |b| {
        b.iter(|| {
            let schema = PointsTable::schema();
            let props = writer_properties(&schema, 128 * 1024);
            let mut writer = ArrowWriter::try_new(Vec::new(), schema, Some(props)).unwrap();
            for chunk in rows.chunks(8192) {
                writer.write(&PointsTable::to_batch(chunk).unwrap()).unwrap();
            }
            writer.into_inner().unwrap().len()
        })
    });
    group.finish();
}

criterion_group!(benches, encode);
criterion_main!(benches);
