//! The compute ceiling: the run's own prepared batches through what the gateway computes for
//! each (verify the FlatBuffers, run the pipeline, encode the lake's `points` rows as zstd
//! Parquet) on every core of this machine, in-process, with no IO: no sockets, no log, no fsync,
//! no upload. What the server acks end to end, divided by this, is how much of the machine the
//! IO and the plumbing leave for the work itself.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parquet::arrow::ArrowWriter;
use trackwire_codec::{DecodeLimits, decode_batch};
use trackwire_pipeline::{Points, ShardCore};
use trackwire_sinks::lake::{DEFAULT_ZSTD_LEVEL, PointRows, PointsTable, TableSpec, writer_properties};

use crate::prepared::Prepared;

/// Rows handed to the Parquet writer at once, and per file, as the lake sink does by default.
const ENCODE_CHUNK_ROWS: usize = 8192;
const ROW_GROUP_ROWS: usize = 128 * 1024;

/// What the compute ceiling measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ComputeCeiling {
    /// Threads, one per core.
    pub threads: usize,
    pub elapsed_s: f64,
    pub samples: u64,
    pub samples_per_s: f64,
    /// Our acked samples/s ÷ this.
    pub ratio_samples_per_s: f64,
}

/// Runs the prepared uploads through verify + pipeline + lake encoding on every core for
/// `duration`.
pub fn measure(prepared: &Prepared, duration: Duration) -> anyhow::Result<ComputeCeiling> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let next = AtomicU64::new(0);
    let start = Instant::now();
    let deadline = start + duration;
    let samples = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads).map(|_| scope.spawn(|| worker(prepared, &next, deadline))).collect();
        workers
            .into_iter()
            .map(|w| w.join().map_err(|_| anyhow::anyhow!("a compute thread panicked"))?)
            .sum::<anyhow::Result<u64>>()
    })?;
    let elapsed = start.elapsed().as_secs_f64();
    Ok(ComputeCeiling {
        threads,
        elapsed_s: elapsed,
        samples,
        samples_per_s: samples as f64 / elapsed,
        ratio_samples_per_s: 0.0,
    })
}

fn worker(prepared: &Prepared, next: &AtomicU64, deadline: Instant) -> anyhow::Result<u64> {
    let limits = DecodeLimits::default();
    let mut core = ShardCore::default();
    let mut lake = PointsEncoder::new()?;
    let (mut samples, mut lsn) = (0, 0);
    while Instant::now() < deadline {
        let workout = prepared.upload(next.fetch_add(1, Ordering::Relaxed));
        for batch in &workout.batches {
            decode_batch(&batch.bytes, &limits)?;
            lsn += 1;
            lake.push(core.process(lsn, &batch.bytes).points)?;
            samples += u64::from(batch.samples);
        }
    }
    Ok(samples)
}

/// The lake's encoding of `points` rows, into memory.
struct PointsEncoder {
    pending: Points,
    writer: ArrowWriter<Vec<u8>>,
    rows_in_file: usize,
}

impl PointsEncoder {
    fn new() -> anyhow::Result<PointsEncoder> {
        Ok(PointsEncoder { pending: Points::default(), writer: Self::writer()?, rows_in_file: 0 })
    }

    fn writer() -> anyhow::Result<ArrowWriter<Vec<u8>>> {
        let schema = PointsTable::schema();
        let props = writer_properties(&schema, ROW_GROUP_ROWS, DEFAULT_ZSTD_LEVEL)?;
        Ok(ArrowWriter::try_new(Vec::new(), schema, Some(props))?)
    }

    fn push(&mut self, points: Points) -> anyhow::Result<()> {
        self.pending.extend_from(&points, 0..points.len());
        if self.pending.len() >= ENCODE_CHUNK_ROWS {
            // Owned by one workout, as the lake sink's rows of one record are.
            let rows = PointRows::of_one_workout(std::mem::take(&mut self.pending), "loadtest-user", "running");
            self.writer.write(&PointsTable::to_batch(&rows)?)?;
            self.rows_in_file += rows.points.len();
            self.pending = rows.points;
            self.pending.clear();
        }
        if self.rows_in_file >= ROW_GROUP_ROWS {
            let finished = std::mem::replace(&mut self.writer, Self::writer()?);
            std::hint::black_box(finished.into_inner()?.len());
            self.rows_in_file = 0;
        }
        Ok(())
    }
}
