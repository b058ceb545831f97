//! One conformance suite for the lake, run against every object-store backend: in-memory, the
//! local filesystem, and an S3 server (moto, started by `scripts/test.sh`, which exports
//! `TRACKWIRE_TEST_S3_ENDPOINT`; without it the S3 case says so and is skipped).
mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use object_store::ObjectStore;
use object_store::ObjectStoreExt;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use trackwire_sinks::Sink;
use trackwire_sinks::lake::{LakeConfig, LakeTable, PointsTable, S3Options, open_store};

const HOUR_MS: i64 = 3_600_000;
const T0: i64 = 1_700_000_000_000 - 1_700_000_000_000 % HOUR_MS;

fn config(multipart_threshold_bytes: usize) -> LakeConfig {
    LakeConfig {
        target_file_bytes: 64 << 20,
        max_file_age: Duration::from_secs(3600),
        row_group_rows: 1000,
        max_open_partitions: 8,
        multipart_threshold_bytes,
        zstd_level: trackwire_sinks::lake::DEFAULT_ZSTD_LEVEL,
    }
}

fn records(n: u64) -> Vec<(u64, Vec<u8>)> {
    (1..=n).map(|lsn| (lsn, common::batch(lsn as u8, 0, T0 + (lsn as i64 % 3) * HOUR_MS + 60_000, 40))).collect()
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}

/// Every object under `points/`: key → bytes.
fn objects(store: &Arc<dyn ObjectStore>) -> HashMap<String, Bytes> {
    block_on(async {
        let metas: Vec<_> = store.list(Some(&"points".into())).collect().await;
        let mut out = HashMap::new();
        for meta in metas {
            let meta = meta.unwrap();
            let bytes = store.get(&meta.location).await.unwrap().bytes().await.unwrap();
            out.insert(meta.location.to_string(), bytes);
        }
        out
    })
}

/// `(lsn, sample_index) → copies` over the objects.
fn rows(objects: &HashMap<String, Bytes>) -> HashMap<(u64, u32), usize> {
    let mut out = HashMap::new();
    for bytes in objects.values() {
        for batch in ParquetRecordBatchReaderBuilder::try_new(bytes.clone()).unwrap().build().unwrap() {
            let batch = batch.unwrap();
            let col = |name: &str| batch.column_by_name(name).unwrap().clone();
            let lsn = col("lsn");
            let lsn = lsn.as_any().downcast_ref::<arrow_array::UInt64Array>().unwrap();
            let idx = col("sample_index");
            let idx = idx.as_any().downcast_ref::<arrow_array::UInt32Array>().unwrap();
            for i in 0..batch.num_rows() {
                *out.entry((lsn.value(i), idx.value(i))).or_default() += 1;
            }
        }
    }
    out
}

fn feed(store: &Arc<dyn ObjectStore>, config: LakeConfig, records: &[(u64, Vec<u8>)]) {
    let mut table = LakeTable::<PointsTable>::open(store.clone(), config).unwrap();
    for output in common::outputs(records) {
        table.accept(&output);
    }
    table.flush(Instant::now(), true).unwrap();
    assert_eq!(table.checkpoint(), records.last().unwrap().0, "everything committed");
}

/// The suite: rows land once in Hive-partitioned whole Parquet objects; a replay after a restart
/// adds nothing; large files go up by multipart upload and read back the same.
fn conformance(name: &str, store: Arc<dyn ObjectStore>) {
    let input = records(30);
    feed(&store, config(16 << 20), &input);
    let first = objects(&store);
    assert_eq!(first.len(), 3, "{name}: one file per hour partition: {:?}", first.keys());
    assert!(
        first.keys().all(|k| k.starts_with("points/date=2023-11-1") && k.contains("/hour=") && k.ends_with(".parquet")),
        "{name}"
    );
    let counts = rows(&first);
    assert_eq!(counts.len(), 30 * 40, "{name}: every sample");
    assert!(counts.values().all(|c| *c == 1), "{name}: once");

    // A restarted sink replaying the same records writes nothing new.
    feed(&store, config(16 << 20), &input);
    assert_eq!(objects(&store).keys().collect::<std::collections::BTreeSet<_>>(), first.keys().collect(), "{name}");

    // New records, uploaded as multipart (threshold 1 byte), read back whole.
    let more: Vec<_> = (31..=40).map(|lsn| (lsn, common::batch(lsn as u8, 0, T0 + 60_000, 40))).collect();
    let mut all = input.clone();
    all.extend(more);
    feed(&store, config(1), &all);
    let after = objects(&store);
    assert_eq!(after.len(), 4, "{name}: one more file: {:?}", after.keys());
    let counts = rows(&after);
    assert_eq!(counts.len(), 40 * 40, "{name}");
    assert!(counts.values().all(|c| *c == 1), "{name}");
}

#[test]
fn in_memory() {
    conformance("in-memory", Arc::new(object_store::memory::InMemory::new()));
}

#[test]
fn local_filesystem() {
    let dir = tempfile::tempdir().unwrap();
    conformance("local", open_store(&dir.path().display().to_string(), &S3Options::default()).unwrap());
}

#[test]
fn s3_server() {
    let Ok(endpoint) = std::env::var("TRACKWIRE_TEST_S3_ENDPOINT") else {
        eprintln!("TRACKWIRE_TEST_S3_ENDPOINT is not set: S3 case skipped (scripts/test.sh starts moto and sets it)");
        return;
    };
    let options = S3Options {
        endpoint: Some(endpoint),
        region: Some("us-east-1".into()),
        access_key_id: Some("test".into()),
        secret_access_key: Some("test".into()),
        allow_http: true,
        request_timeout: Duration::from_secs(10),
    };
    let prefix = format!("s3://conformance/run-{}", std::process::id());
    conformance("s3", open_store(&prefix, &options).unwrap());
}
