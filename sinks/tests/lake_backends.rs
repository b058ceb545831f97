//! One conformance suite for the lake, run against every object-store backend: in-memory, the
//! local filesystem, and an S3 server (moto, started by `scripts/test.sh`, which exports
//! `TRACKWIRE_TEST_S3_ENDPOINT`; without it the S3 case says so and is skipped).
mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type};
use bytes::Bytes;
use futures::StreamExt;
use object_store::ObjectStore;
use object_store::ObjectStoreExt;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use trackwire_sinks::lake::{LakeConfig, LakeLocation, LakeTable, PointsTable, S3Options, open_store, read_table};
use trackwire_sinks::{Command, ErasedWorkout, Erasure, Sink};

const HOUR_MS: i64 = 3_600_000;
const T0: i64 = 1_700_000_000_000 - 1_700_000_000_000 % HOUR_MS;

fn config(multipart_threshold_bytes: usize) -> LakeConfig {
    LakeConfig {
        target_file_bytes: 64 << 20,
        max_file_age: Duration::from_secs(3600),
        row_group_rows: 1000,
        max_open_partitions: 8,
        multipart_threshold_bytes,
        settle_every: Duration::ZERO,
        ..LakeConfig::default()
    }
}

fn records(n: u64) -> Vec<(u64, Vec<u8>)> {
    (1..=n).map(|lsn| (lsn, common::batch(lsn as u8, 0, T0 + (lsn as i64 % 3) * HOUR_MS + 60_000, 40))).collect()
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}

/// Every Parquet object under the points table, committed or not: path → bytes.
fn objects(lake: &LakeLocation) -> HashMap<String, Bytes> {
    let root = lake.object(&lake.table_url("points")).unwrap();
    block_on(async {
        let metas: Vec<_> = lake.store.list(Some(&root)).collect().await;
        let mut out = HashMap::new();
        for meta in metas {
            let meta = meta.unwrap();
            if meta.location.as_ref().ends_with(".parquet") && !meta.location.as_ref().contains("_delta_log") {
                let bytes = lake.store.get(&meta.location).await.unwrap().bytes().await.unwrap();
                out.insert(meta.location.to_string(), bytes);
            }
        }
        out
    })
}

/// `(lsn, sample_index) → copies` over batches.
fn count(batches: &[RecordBatch]) -> HashMap<(u64, u32), usize> {
    let mut out = HashMap::new();
    for batch in batches {
        let lsn = batch.column_by_name("lsn").unwrap().as_primitive::<Int64Type>();
        let idx = batch.column_by_name("sample_index").unwrap().as_primitive::<Int32Type>();
        for i in 0..batch.num_rows() {
            *out.entry((lsn.value(i) as u64, idx.value(i) as u32)).or_default() += 1;
        }
    }
    out
}

/// The table's current rows, as a Delta reader sees them.
fn rows(lake: &LakeLocation) -> HashMap<(u64, u32), usize> {
    count(&read_table(lake, "points").unwrap())
}

/// Rows in any Parquet object of the table, referenced by a version or not.
fn stored_rows(lake: &LakeLocation) -> HashMap<(u64, u32), usize> {
    let batches: Vec<RecordBatch> = objects(lake)
        .into_values()
        .flat_map(|bytes| ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap().build().unwrap().map(Result::unwrap))
        .collect();
    count(&batches)
}

fn feed(lake: &LakeLocation, config: LakeConfig, records: &[(u64, Vec<u8>)]) -> u64 {
    let mut table = LakeTable::<PointsTable>::open(lake.clone(), config).unwrap();
    for output in common::outputs(records) {
        table.accept(&output);
    }
    table.flush(Instant::now(), true).unwrap();
    assert_eq!(table.checkpoint(), records.last().unwrap().0, "everything committed");
    table.version()
}

/// The suite: rows land once, in whole Parquet files that a commit of the table's Delta log
/// names; a replay after a restart adds nothing; large files go up by multipart upload; two
/// writers of one log (a takeover) commit each row once; compaction and vacuum keep the rows
/// and drop the files; an erasure leaves nothing of the workout in any stored file.
fn conformance(name: &str, lake: LakeLocation) {
    let input = records(30);
    let version = feed(&lake, config(16 << 20), &input);
    assert_eq!(version, 1, "{name}: created, then one commit");
    let first = objects(&lake);
    assert_eq!(first.len(), 3, "{name}: one file per hour partition: {:?}", first.keys());
    assert!(first.keys().all(|k| k.contains("points/date=2023-11-1") && k.contains("/hour=")), "{name}");
    let counts = rows(&lake);
    assert_eq!(counts.len(), 30 * 40, "{name}: every sample");
    assert!(counts.values().all(|c| *c == 1), "{name}: once");
    let batches = read_table(&lake, "points").unwrap();
    let users = batches[0].column_by_name("user_id").unwrap().as_string::<i32>();
    let sports = batches[0].column_by_name("sport").unwrap().as_string::<i32>();
    assert_eq!((users.value(0), sports.value(0)), ("u", "cycling"), "{name}: join keys on every row");

    // A restarted sink replaying the same records commits nothing new.
    assert_eq!(feed(&lake, config(16 << 20), &input), 1, "{name}: the log's position says it is all in");
    assert_eq!(objects(&lake).len(), 3, "{name}");

    // New records, uploaded as multipart (threshold 1 byte), read back whole.
    let more: Vec<_> = (31..=40).map(|lsn| (lsn, common::batch(lsn as u8, 0, T0 + 60_000, 40))).collect();
    let mut all = input.clone();
    all.extend(more);
    feed(&lake, config(1), &all);
    assert_eq!(objects(&lake).len(), 4, "{name}: one more file");
    let counts = rows(&lake);
    assert_eq!(counts.len(), 40 * 40, "{name}");
    assert!(counts.values().all(|c| *c == 1), "{name}");

    // A takeover: the new owner opened the table before the old one's last commit, so both
    // hold records 41..=45; whoever commits second keeps only what the first did not.
    let next: Vec<_> = (41..=50).map(|lsn| (lsn, common::batch(lsn as u8, 0, T0 + 2 * HOUR_MS, 40))).collect();
    let outputs = common::outputs(&next);
    let mut old = LakeTable::<PointsTable>::open(lake.clone(), config(16 << 20)).unwrap();
    let mut new = LakeTable::<PointsTable>::open(lake.clone(), config(16 << 20)).unwrap();
    for output in &outputs[..5] {
        old.accept(output);
    }
    for output in &outputs {
        new.accept(output);
    }
    old.flush(Instant::now(), true).unwrap();
    new.flush(Instant::now(), true).unwrap();
    assert_eq!(new.checkpoint(), 50);
    let counts = rows(&lake);
    assert_eq!(counts.len(), 50 * 40, "{name}: every sample of both writers");
    assert!(counts.values().all(|c| *c == 1), "{name}: none twice after the takeover");
    drop((old, new));

    // Compaction: more than `compact_above_files` small files in one partition become one, in a
    // commit that changes no rows; vacuum then deletes the replaced files (retention 0 here).
    let mut small = config(16 << 20);
    small.vacuum_retention = Duration::ZERO;
    let mut table = LakeTable::<PointsTable>::open(lake.clone(), small).unwrap();
    for output in
        common::outputs(&(51..=55).map(|lsn| (lsn, common::batch(lsn as u8, 0, T0 + 60_000, 40))).collect::<Vec<_>>())
    {
        table.accept(&output);
        table.flush(Instant::now(), true).unwrap(); // one small file per commit
    }
    let hour0 = |lake: &LakeLocation| objects(lake).keys().filter(|k| k.contains("hour=22")).count();
    assert_eq!(hour0(&lake), 7, "{name}: hour 22 holds 7 small files");
    assert!(table.compact_one().unwrap(), "{name}: a partition over the limit is compacted");
    assert!(!table.compact_one().unwrap(), "{name}: and then no partition is over it");
    let counts = rows(&lake);
    assert_eq!(counts.len(), 55 * 40, "{name}: compaction keeps every row");
    assert!(counts.values().all(|c| *c == 1), "{name}");
    assert!(table.vacuum(None).unwrap() >= 7, "{name}: the replaced files are deleted");
    assert_eq!(hour0(&lake), 1, "{name}: one file left in hour 22");
    assert_eq!(stored_rows(&lake), counts, "{name}: storage holds exactly the table's rows");

    // Erasure: the workout's rows leave the table and every stored file.
    let command = Command::Erase(Erasure {
        user_id: "u".into(),
        scope: trackwire_sinks::ErasureScope::User,
        workouts: vec![ErasedWorkout {
            workout_id: trackwire_codec::WorkoutId([7; 16]),
            start_time_ms: T0,
            end_time_ms: T0 + 3 * HOUR_MS,
        }],
        through_lsn: 55,
    });
    table.command(&command).unwrap();
    let left = rows(&lake);
    assert!(!left.keys().any(|(lsn, _)| *lsn == 7), "{name}: the erased workout's rows are gone");
    assert_eq!(left.len(), 54 * 40, "{name}: and nothing else");
    assert_eq!(stored_rows(&lake), left, "{name}: no stored file still holds the erased rows");
    drop(table);

    // Settling: an hour partition whose files all reached the target size while it was live
    // (a busy hour) keeps them all under the rule above; once no commit has touched it for
    // `settled_after`, they are merged into files of `settled_target_file_bytes`.
    let mut live = config(16 << 20);
    live.target_file_bytes = 1_000; // every commit's file reaches it
    live.vacuum_retention = Duration::ZERO;
    live.settle_every = Duration::ZERO; // this test runs the settler's step itself
    let mut table = LakeTable::<PointsTable>::open(lake.clone(), live).unwrap();
    let busy_hour = T0 + 4 * HOUR_MS + 60_000; // hour=02 of the next day
    for output in
        common::outputs(&(56..=61).map(|lsn| (lsn, common::batch(lsn as u8, 0, busy_hour, 40))).collect::<Vec<_>>())
    {
        table.accept(&output);
        table.flush(Instant::now(), true).unwrap();
    }
    let hour2 = |lake: &LakeLocation| objects(lake).keys().filter(|k| k.contains("hour=02")).count();
    assert_eq!(hour2(&lake), 6, "{name}: six files at the target size");
    assert!(!table.compact_one().unwrap(), "{name}: files at the target size are not merged while live");
    let now = chrono::Utc::now().timestamp_millis();
    assert!(!table.settle_one(now).unwrap(), "{name}: just committed, so not settled yet");
    assert!(table.settle_one(now + HOUR_MS).unwrap(), "{name}: settled an hour later: merged");
    assert!(!table.settle_one(now + HOUR_MS).unwrap(), "{name}: and left alone after that");
    table.vacuum(None).unwrap();
    assert_eq!(hour2(&lake), 1, "{name}: one file left in the settled hour");
    let counts = rows(&lake);
    assert_eq!(counts.len(), 60 * 40, "{name}: settling keeps every row");
    assert!(counts.values().all(|c| *c == 1), "{name}: none twice");
    assert_eq!(stored_rows(&lake), counts, "{name}: storage holds exactly the table's rows");
}

#[test]
fn in_memory() {
    let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
    conformance("in-memory", LakeLocation { store, root: url::Url::parse("memory:///lake/").unwrap() });
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
