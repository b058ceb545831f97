//! Parquet encoding of the `points` table, rows per second on one core: Arrow arrays from the
//! enriched points, then zstd Parquet with the lake's writer properties.
//! Run: `cargo bench -p trackwire-benches --bench lake`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use parquet::arrow::ArrowWriter;
use trackwire_codec::{BatchData, Sample, Sport, WorkoutId, encode_batch};
use trackwire_pipeline::{EnrichedPoint, ShardCore};
use trackwire_sinks::lake::{PointsTable, TableSpec, writer_properties};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ROWS: u32 = 100_000;

/// 100,000 enriched points of a realistic run (the pipeline's own output).
fn points() -> Vec<EnrichedPoint> {
    let mut core = ShardCore::default();
    let mut out = Vec::new();
    for seq in 0..u64::from(ROWS / 1000) {
        let samples = (0..1000u32)
            .map(|i| {
                let n = (seq * 1000 + u64::from(i)) as i32;
                let jitter = (n.wrapping_mul(2_654_435_761u32 as i32) >> 26) % 20;
                Sample::new(
                    i * 1000,
                    473_000_000 + n * 270 + jitter,
                    85_000_000 + n * 100 - jitter,
                    40_000 + ((n % 600) - 300).abs() * 10,
                    130 + (n % 40) as u8,
                    85,
                    u16::MAX,
                    40,
                    0,
                )
            })
            .collect();
        let bytes = encode_batch(&BatchData {
            device_id: "bench".into(),
            user_id: "athlete".into(),
            workout_id: WorkoutId([7; 16]),
            sport: Sport::Running,
            seq,
            base_time_ms: 1_700_000_000_000 + seq as i64 * 1_000_000,
            samples,
            ..BatchData::default()
        });
        out.extend(core.process(seq + 1, &bytes).points);
    }
    out
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
