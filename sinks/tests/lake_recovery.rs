//! A lake table that crashes between commits never loses or duplicates a row on replay.
mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use trackwire_sinks::Sink;
use trackwire_sinks::lake::{LakeConfig, LakeTable, PointsTable, local_store, read_table};

const HOUR_MS: i64 = 3_600_000;
const T0: i64 = 1_700_000_000_000 - 1_700_000_000_000 % HOUR_MS;

fn config(target_file_bytes: usize) -> LakeConfig {
    LakeConfig {
        target_file_bytes,
        max_file_age: Duration::from_secs(3600),
        row_group_rows: 1000,
        max_open_partitions: 8,
        multipart_threshold_bytes: 16 << 20,
        settle_every: Duration::ZERO,
        ..LakeConfig::default()
    }
}

/// Records 1..=n: odd ones in hour 0 with 50 samples, even ones in hour 1 with 2 samples.
fn records(n: u64) -> Vec<(u64, Vec<u8>)> {
    (1..=n)
        .map(|lsn| {
            let (start, count) = if lsn % 2 == 1 { (T0, 50) } else { (T0 + HOUR_MS, 2) };
            (lsn, common::batch(lsn as u8, 0, start + lsn as i64 * 60_000, count))
        })
        .collect()
}

/// `(lsn, sample_index) → copies` over the points table's current version (what a Delta
/// reader sees).
fn rows_in(dir: &std::path::Path) -> HashMap<(u64, u32), usize> {
    let mut out = HashMap::new();
    for batch in read_table(&local_store(dir).unwrap(), "points").unwrap() {
        let lsn = batch.column_by_name("lsn").unwrap().as_primitive::<Int64Type>().clone();
        let idx = batch.column_by_name("sample_index").unwrap().as_primitive::<Int32Type>().clone();
        for i in 0..batch.num_rows() {
            *out.entry((lsn.value(i) as u64, idx.value(i) as u32)).or_default() += 1;
        }
    }
    out
}

/// Every Parquet file under `dir`, committed or not.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else if path.extension().is_some_and(|e| e == "parquet") {
            out.push(path);
        }
    }
    out
}

fn expected_rows(n: u64) -> usize {
    (1..=n).map(|lsn| if lsn % 2 == 1 { 50 } else { 2 }).sum()
}

#[test]
fn crash_after_a_partial_flush_replays_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let all = records(40);
    let outs = common::outputs(&all);
    {
        // First life: commit everything through lsn 20, then keep going, and "crash" with rows
        // buffered after a commit that the size of one partition triggered.
        let mut table = LakeTable::<PointsTable>::open(local_store(dir.path()).unwrap(), config(4 * 1024)).unwrap();
        for out in &outs[..20] {
            table.accept(out);
        }
        table.flush(Instant::now(), true).unwrap();
        assert_eq!(table.checkpoint(), 20);
        for out in &outs[20..35] {
            table.accept(out);
        }
        // Hour 0 reached the target size: one commit takes every open file with it (the commit
        // records one position for the whole table).
        table.flush(Instant::now(), false).unwrap();
        assert_eq!(rows_in(dir.path()).len(), expected_rows(35));
        assert_eq!(table.checkpoint(), 35);
        for out in &outs[35..38] {
            table.accept(out);
        }
        // Dropped without a final flush: the crash, with 36..=38 not in the table.
    }
    // Second life: replay the log from the start, as the server does.
    let mut table = LakeTable::<PointsTable>::open(local_store(dir.path()).unwrap(), config(4 * 1024)).unwrap();
    for out in &outs {
        table.accept(out);
    }
    table.flush(Instant::now(), true).unwrap();
    assert_eq!(table.checkpoint(), 40);
    let rows = rows_in(dir.path());
    assert_eq!(rows.len(), expected_rows(40), "every sample present");
    assert!(rows.values().all(|n| *n == 1), "no sample twice");
}

#[test]
fn files_are_only_visible_complete_and_named_by_partition() {
    let dir = tempfile::tempdir().unwrap();
    let outs = common::outputs(&records(4));
    let mut table = LakeTable::<PointsTable>::open(local_store(dir.path()).unwrap(), config(1 << 30)).unwrap();
    for out in &outs {
        table.accept(out);
    }
    assert!(walk(&dir.path().join("points")).is_empty(), "nothing written before commit");
    assert!(rows_in(dir.path()).is_empty());
    table.flush(Instant::now(), true).unwrap();
    let mut names: Vec<String> = walk(&dir.path().join("points"))
        .iter()
        .map(|p| p.strip_prefix(dir.path()).unwrap().display().to_string())
        .collect();
    names.sort();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names[0].starts_with("points/date=2023-11-14/hour=22/part-00000000000000000004-"), "{names:?}");
    assert!(names[1].starts_with("points/date=2023-11-14/hour=23/part-00000000000000000004-"), "{names:?}");
    assert!(
        dir.path().join("points/_delta_log/00000000000000000001.json").exists(),
        "one commit after the table's creation"
    );
    assert_eq!(rows_in(dir.path()).len(), expected_rows(4));
    // Timestamps are TIMESTAMP(MICROS, UTC) in the Parquet schema.
    let file = std::fs::File::open(dir.path().join(&names[0])).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    let time = reader.schema().field_with_name("time").unwrap().data_type().clone();
    assert_eq!(time.to_string(), "Timestamp(µs, \"UTC\")");
    let meta = reader.metadata().file_metadata().schema_descr().column(6).logical_type_ref().cloned();
    assert!(
        format!("{meta:?}").contains("is_adjusted_to_u_t_c: true") && format!("{meta:?}").contains("MICROS"),
        "{meta:?}"
    );
}

#[test]
fn a_backfill_over_many_hours_keeps_few_files_open_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // 12 records, each in its own hour; at most 3 partitions may be open.
    let records: Vec<(u64, Vec<u8>)> =
        (1..=12).map(|lsn| (lsn, common::batch(1, lsn - 1, T0 + lsn as i64 * HOUR_MS, 10))).collect();
    let outs = common::outputs(&records);
    let mut config = config(1 << 30);
    config.max_open_partitions = 3;
    let mut table = LakeTable::<PointsTable>::open(local_store(dir.path()).unwrap(), config).unwrap();
    for out in &outs {
        table.accept(out);
    }
    table.flush(Instant::now(), false).unwrap();
    assert!(rows_in(dir.path()).is_empty(), "the 9 oldest hours were finished early, but wait for the commit");
    assert_eq!(table.checkpoint(), 0);
    table.flush(Instant::now(), true).unwrap();
    assert_eq!(walk(&dir.path().join("points")).len(), 12);
    let rows = rows_in(dir.path());
    assert_eq!(rows.len(), 120);
    assert!(rows.values().all(|n| *n == 1));
}

/// One record whose samples visit `hours` distinct hour partitions in order and then come back to
/// the first: more partitions than may be open at once, inside a single acked batch.
fn record_over_hours(lsn: u64, hours: u32) -> (u64, Vec<u8>) {
    let offsets: Vec<u32> = (0..hours).chain([0]).map(|h| h * HOUR_MS as u32 + 60_000).collect();
    (lsn, common::batch_at(9, lsn - 1, T0, &offsets))
}

#[test]
fn a_batch_over_more_hours_than_may_be_open_keeps_every_row_after_a_clean_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let outs = common::outputs(&[record_over_hours(1, 33)]);
    assert_eq!(outs[0].points.len(), 34);
    let mut config = config(1 << 30);
    config.max_open_partitions = 32;
    let mut table = LakeTable::<PointsTable>::open(local_store(dir.path()).unwrap(), config).unwrap();
    table.accept(&outs[0]);
    table.flush(Instant::now(), true).unwrap();
    let rows = rows_in(dir.path());
    assert_eq!(rows.len(), 34, "every sample of the batch is in the lake");
    assert!(rows.values().all(|n| *n == 1));
}

#[test]
fn a_batch_over_more_hours_than_may_be_open_keeps_every_row_across_a_crash_and_replay() {
    let dir = tempfile::tempdir().unwrap();
    let records = [record_over_hours(1, 33), (2, common::batch(1, 0, T0 + 40 * HOUR_MS, 3))];
    let outs = common::outputs(&records);
    let mut config = config(1 << 30);
    config.max_open_partitions = 32;
    {
        let mut table = LakeTable::<PointsTable>::open(local_store(dir.path()).unwrap(), config.clone()).unwrap();
        table.accept(&outs[0]);
        // A periodic flush (nothing due yet), then the process is killed.
        table.flush(Instant::now(), false).unwrap();
        assert!(table.checkpoint() < 1, "the batch is not wholly committed: the log keeps it");
    }
    let mut table = LakeTable::<PointsTable>::open(local_store(dir.path()).unwrap(), config).unwrap();
    for out in &outs {
        table.accept(out);
    }
    table.flush(Instant::now(), true).unwrap();
    let rows = rows_in(dir.path());
    assert_eq!(rows.len(), 34 + 3, "every sample present after the replay");
    assert!(rows.values().all(|n| *n == 1), "no sample twice");
}

/// The settler merges settled hours beside the sink, on its own handle of the table. The sink's
/// view of the table dates from its own last commit, and its vacuum deletes this source's files
/// no version names: unless it reads the settler's commits first, it deletes the merged files,
/// and the rows with them.
#[test]
fn the_sinks_vacuum_keeps_the_files_the_settler_merged() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(1_000); // every commit's file reaches the target size
    config.vacuum_retention = Duration::ZERO;
    config.settled_after = Duration::ZERO;
    config.settle_every = Duration::from_millis(20);
    let outs = common::outputs(&records(12));
    let mut table = LakeTable::<PointsTable>::open(local_store(dir.path()).unwrap(), config).unwrap();
    for out in &outs {
        table.accept(out);
        table.flush(Instant::now(), true).unwrap();
    }
    let waited = Instant::now();
    while merge_commits(dir.path()) == 0 {
        assert!(waited.elapsed() < Duration::from_secs(60), "the settler merged nothing");
        std::thread::sleep(Duration::from_millis(20));
    }
    table.vacuum(None).unwrap();
    let rows = rows_in(dir.path());
    assert_eq!(rows.len(), expected_rows(12), "every sample present");
    assert!(rows.values().all(|n| *n == 1), "no sample twice");
}

/// How many of the points table's commits are merges (`OPTIMIZE`).
fn merge_commits(dir: &std::path::Path) -> usize {
    let log = dir.join("points/_delta_log");
    std::fs::read_dir(&log)
        .unwrap()
        .flatten()
        .filter(|entry| {
            entry.path().extension().is_some_and(|e| e == "json")
                && std::fs::read_to_string(entry.path()).unwrap().contains("OPTIMIZE")
        })
        .count()
}

/// A merge of a busy hour's small files takes seconds. Run in the sink's flush, it held back
/// every output behind it and, through the shards' full queues, every ack: an hour of live load
/// stalled for five seconds at each compaction. The sink's flushes never merge; the settler
/// compacts beside them, with nobody calling `compact_one`.
#[test]
fn the_sinks_flushes_never_merge_and_the_settler_compacts_beside_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(64 << 20); // every file far below the target: all small
    config.compact_above_files = 2;
    config.max_file_age = Duration::ZERO;
    let outs = common::outputs(&records(12));
    {
        let mut table = LakeTable::<PointsTable>::open(local_store(dir.path()).unwrap(), config.clone()).unwrap();
        for out in &outs {
            table.accept(out);
            table.flush(Instant::now(), false).unwrap();
            table.flush(Instant::now(), false).unwrap(); // an idle flush: the sink's upkeep
        }
        std::thread::sleep(Duration::from_millis(1100)); // upkeep looks at most once a second
        table.flush(Instant::now(), false).unwrap();
    }
    assert_eq!(merge_commits(dir.path()), 0, "the sink's flushes merged files");
    let data_files = walk(dir.path()).into_iter().filter(|p| !p.to_string_lossy().contains("_delta_log")).count();
    assert_eq!(data_files, 12, "a file per flush");

    config.settle_every = Duration::from_secs(3600); // a settler; its compaction looks every second
    let table = LakeTable::<PointsTable>::open(local_store(dir.path()).unwrap(), config).unwrap();
    let waited = Instant::now();
    while merge_commits(dir.path()) < 2 {
        assert!(waited.elapsed() < Duration::from_secs(60), "the settler compacted no partition");
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(table);
    let rows = rows_in(dir.path());
    assert_eq!(rows.len(), expected_rows(12), "every sample present");
    assert!(rows.values().all(|n| *n == 1), "no sample twice");
}

/// Files close to the target size, as merges leave them (a merge rolls its output when the
/// writer's estimate reaches the target, and the finished file is a little under it), are done:
/// merging them cannot make fewer files. Counted as small, they were merged again at every
/// look, and an hour-long load rewrote its busy hour whole every minute.
#[test]
fn files_near_the_target_size_are_not_merged_again() {
    let dir = tempfile::tempdir().unwrap();
    let outs =
        common::outputs(&(1..=6).map(|lsn| (lsn, common::batch(lsn as u8, 0, T0 + 60_000, 50))).collect::<Vec<_>>());
    // The size of one output's file.
    let mut probe = LakeTable::<PointsTable>::open(local_store(dir.path()).unwrap(), config(64 << 20)).unwrap();
    probe.accept(&outs[0]);
    probe.flush(Instant::now(), true).unwrap();
    drop(probe);
    let one_file = std::fs::metadata(&walk(dir.path())[0]).unwrap().len() as usize;
    // A target just above it: every file is at 95 % of the target.
    let mut table =
        LakeTable::<PointsTable>::open(local_store(dir.path()).unwrap(), config(one_file * 20 / 19)).unwrap();
    for out in &outs[1..] {
        table.accept(out);
        table.flush(Instant::now(), true).unwrap();
    }
    assert_eq!(walk(dir.path()).len(), 6, "six files near the target size in one hour");
    assert!(!table.compact_one().unwrap(), "merging them would not make fewer files");
    assert_eq!(rows_in(dir.path()).len(), 6 * 50);
}
