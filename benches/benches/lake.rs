//! Parquet encoding of the `points` table, rows per second on one core: Arrow arrays from the
//! enriched points, then zstd Parquet. Each variant is a set of writer properties; the size each
//! produces (bytes per row) is printed once before it is timed.
//! Run: `cargo bench -p trackwire-benches --bench lake`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;
use trackwire_benches::{SAMPLES, run_batches};
use trackwire_pipeline::{Points, ShardCore};
use trackwire_sinks::lake::{DEFAULT_ZSTD_LEVEL, PointRows, PointsTable, TableSpec, writer_properties};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ROWS: u32 = 100_000;
const ROW_GROUP_ROWS: usize = 128 * 1024;

/// 100,000 enriched points of a realistic run (the pipeline's own output).
fn points() -> Points {
    let mut core = ShardCore::default();
    let batches = run_batches(u64::from(ROWS / SAMPLES));
    let mut points = Points::default();
    for (i, bytes) in batches.iter().enumerate() {
        let batch = core.process(i as u64 + 1, bytes).points;
        points.extend_from(&batch, 0..batch.len());
    }
    points
}

/// As the lake encodes: chunks of 8,192 rows appended to a column buffer, then Arrow, then Parquet.
fn encode(rows: &Points, props: WriterProperties) -> usize {
    let mut writer = ArrowWriter::try_new(Vec::new(), PointsTable::schema(), Some(props)).unwrap();
    for start in (0..rows.len()).step_by(8192) {
        let mut chunk = Points::default();
        chunk.extend_from(rows, start..(start + 8192).min(rows.len()));
        let chunk = PointRows::of_one_workout(chunk, "bench-user", "running");
        writer.write(&PointsTable::to_batch(&chunk).unwrap()).unwrap();
    }
    writer.into_inner().unwrap().len()
}

/// Every column PLAIN but strings (dictionary), zstd 3: the lake's properties until 2026-12.
fn plain_zstd3() -> WriterProperties {
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).unwrap()))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .set_dictionary_enabled(false);
    builder = builder.set_column_dictionary_enabled(ColumnPath::from("workout_id"), true);
    builder.build()
}

/// A name and the writer properties it stands for.
type Variant = (&'static str, fn() -> WriterProperties);

fn encode_points(c: &mut Criterion) {
    let rows = points();
    let variants: [Variant; 3] = [
        ("plain_zstd3", plain_zstd3),
        ("lake", || writer_properties(&PointsTable::schema(), ROW_GROUP_ROWS, DEFAULT_ZSTD_LEVEL).unwrap()),
        ("lake_zstd3", || writer_properties(&PointsTable::schema(), ROW_GROUP_ROWS, 3).unwrap()),
    ];
    let mut group = c.benchmark_group("lake_points");
    group.throughput(Throughput::Elements(u64::from(ROWS)));
    group.sample_size(10);
    for (name, props) in &variants {
        let bytes = encode(&rows, props());
        println!("lake_points/{name}: {:.2} bytes/row", bytes as f64 / f64::from(ROWS));
        group.bench_function(*name, |b| b.iter(|| encode(&rows, props())));
    }
    group.finish();
}

criterion_group!(benches, encode_points);
criterion_main!(benches);
