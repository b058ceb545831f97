//! The durable log's append path, per batch and per byte: 256 batches of 1,000 samples (24 KB
//! each) queued at once and awaited until fsynced, on the machine's real disk (group commit:
//! everything queued while one fsync runs goes into the next). Segments are released after each
//! iteration, so the disk does not fill.
//! Run: `cargo bench -p trackwire-benches --bench log`.

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use trackwire_benches::run_batches;
use trackwire_codec::WorkoutId;
use trackwire_ingest::log::{DedupKey, DurableLog, LogConfig};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BATCHES: usize = 256;

fn append(c: &mut Criterion) {
    let payload = Bytes::from(run_batches(1).remove(0));
    let dir = tempfile::tempdir().expect("a temporary directory");
    // The server's defaults, without a disk cap.
    let config = LogConfig { dir: dir.path().to_path_buf(), max_retained_bytes: u64::MAX, ..LogConfig::default() };
    let (log, writer) = DurableLog::open(config, Box::new(|_| true)).expect("opening the log");
    let seq = AtomicU64::new(0);
    let mut group = c.benchmark_group("log_append_256_batches_of_1000_samples");
    group.throughput(Throughput::Bytes((BATCHES * payload.len()) as u64));
    group.sample_size(20);
    group.bench_function("append_and_fsync", |b| {
        b.iter(|| {
            let pending: Vec<_> = (0..BATCHES)
                .map(|_| {
                    let key = DedupKey { workout_id: WorkoutId([7; 16]), seq: seq.fetch_add(1, Ordering::Relaxed) };
                    log.try_append(key, payload.clone()).expect("queue has room")
                })
                .collect();
            for rx in pending {
                rx.blocking_recv().expect("the writer answers").expect("appended");
            }
            log.release_through(seq.load(Ordering::Relaxed));
        })
    });
    group.finish();
    drop(log);
    writer.join().expect("writer thread").expect("clean shutdown");
}

criterion_group!(benches, append);
criterion_main!(benches);
