//! The data path a pipeline worker runs for one raw partition, in-process over the embedded
//! stores: an erasure read from the log is carried out at its position in every sink, and a
//! later owner of the partition, replaying it from the first record, brings nothing of the user
//! back (the store's record of the command keeps the replay out).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

mod common;

use bytes::Bytes;
use trackwire::config::Config;
use trackwire::data_path::{DataPath, Input};
use trackwire::stores::open_read_store;
use trackwire_codec::WorkoutId;
use trackwire_ingest::log::{DedupKey, LogCommand, LogEntry, LogRecord, WorkoutSpan};
use trackwire_sinks::Redactions;

fn record(lsn: u64, user: &str, workout: u8, seq: u64, last: bool) -> LogEntry {
    stored_record(lsn, user, workout, seq, last, None)
}

/// A record the log stored at `appended_ms` (None: a log that kept no time).
fn stored_record(lsn: u64, user: &str, workout: u8, seq: u64, last: bool, appended_ms: Option<i64>) -> LogEntry {
    let key = DedupKey { workout_id: WorkoutId([workout; 16]), seq };
    let payload = Bytes::from(common::batch(user, key.workout_id, seq, last));
    LogEntry::Record(LogRecord { lsn, key, payload, appended_ms, trace_id: None })
}

/// (rows, rows with a position) of the lake's `points` per workout id, at the table's newest version.
fn lake_positions(config: &Config) -> HashMap<String, (usize, usize)> {
    use arrow_array::Array;
    use arrow_array::cast::AsArray;
    let mut out: HashMap<String, (usize, usize)> = HashMap::new();
    let location = config.lake_store().unwrap();
    for batch in trackwire_sinks::lake::read_table(&location, "points").unwrap() {
        let ids = batch.column_by_name("workout_id").unwrap().as_string::<i32>().clone();
        let (lat, lon) = (batch.column_by_name("lat").unwrap(), batch.column_by_name("lon").unwrap());
        let smoothed = batch.column_by_name("smoothed_lat").unwrap();
        for i in 0..batch.num_rows() {
            let row = out.entry(ids.value(i).to_owned()).or_default();
            row.0 += 1;
            row.1 += usize::from(lat.is_valid(i) || lon.is_valid(i) || smoothed.is_valid(i));
        }
    }
    out
}

/// A configuration whose lake commits at once.
fn quick_lake(data_dir: &std::path::Path) -> Config {
    let mut config = Config { data_dir: data_dir.to_owned(), ..Config::default() };
    config.lake.max_file_age_secs = 0.01;
    config
}

/// One owner's run of partition 0: every entry through the data path, then the drain; where the
/// data path said its replay could start.
fn run_partition(config: &Config, entries: &[LogEntry]) -> u64 {
    run_partition_from(config, 1, entries)
}

/// One owner's run of partition 0 whose oldest retained record is at `first_lsn`; where the data
/// path said its replay could start.
fn run_partition_from(config: &Config, first_lsn: u64, entries: &[LogEntry]) -> u64 {
    let store = open_read_store(config).unwrap();
    let mut data_path = DataPath::open(config, store, Input::RawPartition(0), Arc::default()).unwrap();
    let replay_start = data_path.replay_start();
    let mut forward = data_path.forward();
    let running = data_path.start(first_lsn, Redactions::default()).unwrap();
    for entry in entries {
        assert!(forward(entry.clone()));
    }
    drop(forward);
    running.join();
    replay_start
}

/// Lake rows per workout id.
fn lake_rows(config: &Config) -> HashMap<String, usize> {
    common::lake_rows(&config.data_dir.join("lake"))
}

/// The partition's event log, every line.
fn event_lines(config: &Config) -> String {
    let dir = config.data_dir.join("partitions").join("p0000").join("events");
    let mut text = String::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        if entry.path().extension().is_some_and(|e| e == "jsonl") {
            text.push_str(&std::fs::read_to_string(entry.path()).unwrap());
        }
    }
    text
}

/// The partition's next owner, on another node with its own volume (no event log, no local
/// positions): the shared parts move with the deployment, the lake and the read store.
fn on_another_node(config: Config) -> (tempfile::TempDir, Config) {
    let other_node = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(other_node.path().join("store")).unwrap();
    let moved = |from: std::path::PathBuf, to: std::path::PathBuf| std::fs::rename(from, to).unwrap();
    moved(config.data_dir.join("lake"), other_node.path().join("lake"));
    moved(config.data_dir.join("store").join("read.redb"), other_node.path().join("store").join("read.redb"));
    let config = Config { data_dir: other_node.path().to_owned(), ..config };
    (other_node, config)
}

#[test]
fn an_erasure_from_the_log_is_carried_out_at_its_position_and_a_replay_brings_nothing_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config { data_dir: dir.path().to_owned(), ..Config::default() };
    config.lake.max_file_age_secs = 0.01;
    let (ada_before, bob, ada_after) = (1u8, 2u8, 3u8);
    let entries = vec![
        record(1, "ada", ada_before, 0, false),
        record(2, "bob", bob, 0, false),
        record(3, "ada", ada_before, 1, true),
        record(4, "bob", bob, 1, true),
        LogEntry::Command { lsn: 5, command: LogCommand::EraseUser { user_id: "ada".into(), workouts: Vec::new() } },
        // After the erasure's position: new data, kept.
        record(6, "ada", ada_after, 0, true),
    ];
    let id = |w: u8| WorkoutId([w; 16]);
    let check = |config: &Config, when: &str| {
        let store = open_read_store(config).unwrap();
        assert_eq!(store.get(&id(ada_before)).unwrap(), None, "{when}: the erased workout left the store");
        assert!(store.get(&id(bob)).unwrap().is_some(), "{when}: another user's workout stays");
        assert!(store.get(&id(ada_after)).unwrap().is_some(), "{when}: data after the erasure stays");
        let lake = lake_rows(config);
        assert_eq!(lake.get(&id(ada_before).to_string()), None, "{when}: no lake row of the erased workout");
        assert_eq!(lake.get(&id(bob).to_string()), Some(&20), "{when}: {lake:?}");
        assert_eq!(lake.get(&id(ada_after).to_string()), Some(&10), "{when}: {lake:?}");
        let events = event_lines(config);
        assert!(!events.contains(&id(ada_before).to_string()), "{when}: no event of the erased workout");
        assert!(events.contains(&id(bob).to_string()), "{when}: another user's events stay");
        let records = store.log_commands("raw.v1/0").unwrap();
        assert!(records.iter().any(|r| r.lsn == 5 && r.done), "{when}: the erasure is recorded done");
    };
    run_partition(&config, &entries);
    check(&config, "after the first run");

    // The next owner, on another node (its own volume: no event log, no local positions),
    // replays the partition from its first record.
    let (_other_node, config) = on_another_node(config);
    run_partition(&config, &entries);
    check(&config, "after the takeover's replay");
}

/// The API takes an erased user's workouts out of the read store as it places the erasure; a
/// worker that restarts before carrying it out, on a log whose retention has dropped their
/// records, knows them only from the command, which lists them: their lake rows go too.
#[test]
fn an_erasure_finds_the_lake_rows_of_workouts_gone_from_the_log_and_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let config = quick_lake(dir.path());
    let (ada, bob) = (1u8, 2u8);
    let id = |w: u8| WorkoutId([w; 16]);
    let recorded = [
        record(1, "ada", ada, 0, false),
        record(2, "bob", bob, 0, false),
        record(3, "ada", ada, 1, true),
        record(4, "bob", bob, 1, true),
    ];
    run_partition(&config, &recorded);
    let store = open_read_store(&config).unwrap();
    let summary = store.get(&id(ada)).unwrap().expect("the ended workout is stored");
    assert_eq!(lake_rows(&config).get(&id(ada).to_string()), Some(&20), "the lake has its rows");
    // What the API does as it places the erasure.
    store.erase("ada", &HashSet::from([id(ada)])).unwrap();
    drop(store);
    let listed = WorkoutSpan {
        workout_id: id(ada).to_string(),
        start_time_ms: summary.start_time_ms,
        end_time_ms: summary.end_time_ms,
    };
    let erasure =
        LogEntry::Command { lsn: 5, command: LogCommand::EraseUser { user_id: "ada".into(), workouts: vec![listed] } };

    run_partition_from(&config, 5, &[erasure]);

    let lake = lake_rows(&config);
    assert_eq!(lake.get(&id(ada).to_string()), None, "no lake row of the erased workout: {lake:?}");
    assert_eq!(lake.get(&id(bob).to_string()), Some(&20), "another user's rows stay: {lake:?}");
    let records = open_read_store(&config).unwrap().log_commands("raw.v1/0").unwrap();
    assert!(records.iter().any(|r| r.lsn == 5 && r.done), "the erasure is recorded done");
}

/// The command deleting ada's workout `w` at `lsn`.
fn deletion(lsn: u64, w: u8) -> LogEntry {
    let workout_id = WorkoutId([w; 16]).to_string();
    LogEntry::Command { lsn, command: LogCommand::DeleteWorkout { user_id: "ada".into(), workout_id, span: None } }
}

/// Nothing of workout `deleted` in the read store, the lake or the events; the owner's other
/// workout `kept` in the store, with `rows` lake rows.
fn assert_only_the_other_workout_left(config: &Config, deleted: u8, (kept, rows): (u8, usize), when: &str) {
    let id = |w: u8| WorkoutId([w; 16]);
    let store = open_read_store(config).unwrap();
    assert_eq!(store.get(&id(deleted)).unwrap(), None, "{when}: nothing of the deleted workout in the store");
    assert!(store.get(&id(kept)).unwrap().is_some(), "{when}: the owner's other workout is there");
    let lake = lake_rows(config);
    assert_eq!(lake.get(&id(deleted).to_string()), None, "{when}: no lake row of the deleted workout");
    assert_eq!(lake.get(&id(kept).to_string()), Some(&rows), "{when}: {lake:?}");
    assert!(!event_lines(config).contains(&id(deleted).to_string()), "{when}: no event of the deleted workout");
}

/// A workout its owner deleted goes from every sink at the command's position, the owner's other
/// workouts stay, consumers are told with `WorkoutDeleted`, and a takeover's replay brings
/// nothing of it back.
#[test]
fn a_deleted_workout_leaves_every_sink_and_a_replay_brings_nothing_back() {
    let dir = tempfile::tempdir().unwrap();
    let config = quick_lake(dir.path());
    let (deleted, kept) = (1u8, 2u8);
    let id = |w: u8| WorkoutId([w; 16]);
    let entries = vec![
        record(1, "ada", deleted, 0, false),
        record(2, "ada", kept, 0, false),
        record(3, "ada", deleted, 1, true),
        record(4, "ada", kept, 1, true),
        deletion(5, deleted),
    ];
    let check = |config: &Config, when: &str| {
        assert_only_the_other_workout_left(config, deleted, (kept, 20), when);
        assert!(event_lines(config).contains(&id(kept).to_string()), "{when}: the other workout's events stay");
        let records = open_read_store(config).unwrap().log_commands("raw.v1/0").unwrap();
        assert!(records.iter().any(|r| r.lsn == 5 && r.done), "{when}: the deletion is recorded done");
    };
    run_partition(&config, &entries);
    check(&config, "after the first run");
    let told = std::fs::read_to_string(
        config.data_dir.join("partitions").join("p0000").join("events").join("tombstones.ndjson"),
    )
    .unwrap();
    let told: serde_json::Value = serde_json::from_str(told.lines().last().unwrap()).unwrap();
    assert_eq!(
        (told["type"].as_str(), told["workout_id"].as_str(), told["lsn"].as_u64()),
        (Some("WorkoutDeleted"), Some(id(deleted).to_string().as_str()), Some(5))
    );

    let (_other_node, config) = on_another_node(config);
    run_partition(&config, &entries);
    check(&config, "after the takeover's replay");
}

/// The deletion reaches the worker's shard at its position in the partition: the watch that kept
/// recording and then completed the workout brings nothing of it back, and a replay neither.
#[test]
fn a_workout_deleted_mid_recording_in_a_partition_takes_nothing_more() {
    let dir = tempfile::tempdir().unwrap();
    let config = quick_lake(dir.path());
    let (deleted, kept) = (1u8, 2u8);
    let entries = vec![
        record(1, "ada", deleted, 0, false),
        deletion(2, deleted),
        record(3, "ada", deleted, 1, false),
        record(4, "ada", kept, 0, true),
        record(5, "ada", deleted, 2, true),
    ];
    let check = |config: &Config, when: &str| assert_only_the_other_workout_left(config, deleted, (kept, 10), when);
    run_partition(&config, &entries);
    check(&config, "after the first run");
    let (_other_node, config) = on_another_node(config);
    run_partition(&config, &entries);
    check(&config, "after the takeover's replay");
}

/// Coordinate retention counts from when the log stored a record, not from when its samples were
/// recorded: a years-old recording imported today keeps its positions for the whole window.
#[test]
fn retention_counts_from_when_the_log_stored_the_data_not_from_when_it_was_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config { data_dir: dir.path().to_owned(), ..Config::default() };
    config.lake.max_file_age_secs = 0.01;
    let now = chrono::Utc::now().timestamp_millis();
    let day = 86_400_000;
    let (imported, stored_long_ago, unknown) = (1u8, 2u8, 3u8);
    // Every sample was recorded in 2023 (common::T0); only the storage times differ.
    let mut entries = vec![
        stored_record(1, "ada", imported, 0, false, Some(now - 5_000)),
        stored_record(2, "ada", imported, 1, true, Some(now - 4_000)),
        stored_record(3, "bob", stored_long_ago, 0, true, Some(now - 200 * day)),
        stored_record(4, "cy", unknown, 0, true, None),
        // The policy's cut, 183 days ago.
        LogEntry::Command { lsn: 5, command: LogCommand::DropPositions { from_ms: 0, before_ms: now - 183 * day } },
    ];
    let id = |w: u8| WorkoutId([w; 16]);
    let positioned = |config: &Config, w: u8| {
        let store = open_read_store(config).unwrap();
        let streams = store.streams(&id(w)).unwrap();
        let in_store = streams.lat_e7.iter().filter(|p| p.is_some()).count();
        let (rows, in_lake) = lake_positions(config).get(&id(w).to_string()).copied().unwrap_or_default();
        assert_eq!((rows, streams.len()), ((1 + usize::from(w == imported)) * 10, rows), "every sample stays");
        (in_store, in_lake)
    };
    run_partition(&config, &entries);
    assert_eq!(positioned(&config, imported), (20, 20), "imported today: positions kept");
    assert_eq!(positioned(&config, stored_long_ago), (0, 0), "stored 200 days ago: positions dropped");
    assert_eq!(positioned(&config, unknown), (0, 0), "no storage time: the recorded time (2023) stands in");

    // A later cut that reaches past the import drops its positions too, everywhere.
    entries.push(LogEntry::Command {
        lsn: 6,
        command: LogCommand::DropPositions { from_ms: now - 183 * day, before_ms: now },
    });
    run_partition(&config, &entries);
    assert_eq!(positioned(&config, imported), (0, 0));
}

/// The live view holds what is in progress and what ended but is not yet in the read store; once
/// the store has a workout's end, the API reads it there, and the live view lets it go (a server
/// runs for months and sees every workout of its users end).
#[test]
fn an_ended_workout_leaves_the_live_view_once_the_read_store_has_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = quick_lake(dir.path());
    let store = open_read_store(&config).unwrap();
    let mut data_path = DataPath::open(&config, store.clone(), Input::RawPartition(0), Arc::default()).unwrap();
    let mut forward = data_path.forward();
    let running = data_path.start(1, Redactions::default()).unwrap();
    let live = running.status.live.clone();
    for entry in [record(1, "ada", 1, 0, false), record(2, "ada", 2, 0, false), record(3, "ada", 1, 1, true)] {
        assert!(forward(entry));
    }
    drop(forward);
    running.join();

    let (ended, going_on) = (WorkoutId([1; 16]), WorkoutId([2; 16]));
    assert!(store.get(&ended).unwrap().is_some_and(|s| s.status.is_ended()), "the store has the end");
    assert_eq!(live.get(&ended), None, "an ended workout the store holds stays in memory");
    assert!(live.get(&going_on).is_some_and(|s| !s.status.is_ended()), "a workout in progress is live");
    // Nothing of it is kept here: an erasure finds it in the store, or in the command's list
    // when the API has taken the store's copy away.
    let spans: Vec<WorkoutId> = live.spans_of_user("ada").into_iter().map(|(id, ..)| id).collect();
    assert_eq!(spans, [going_on]);
}

/// `/metrics` counts what the process did: a restart replays the records every sink already
/// holds (to rebuild the workouts' state), and counts neither the ends nor the batches not
/// applied among them again, so a dashboard or an alert on them sees no burst at each restart.
#[test]
fn a_restarts_replay_counts_no_end_and_no_refused_batch_again() {
    use trackwire_pipeline::{EndReason, NotApplied};
    let dir = tempfile::tempdir().unwrap();
    let config = quick_lake(dir.path());
    let entries = [record(1, "ada", 1, 0, false), record(2, "ada", 1, 1, true), record(3, "ada", 1, 2, false)];
    let run = |entries: &[LogEntry]| {
        let store = open_read_store(&config).unwrap();
        let mut data_path = DataPath::open(&config, store, Input::RawPartition(0), Arc::default()).unwrap();
        let mut forward = data_path.forward();
        let running = data_path.start(1, Redactions::default()).unwrap();
        let live = running.status.live.clone();
        for entry in entries {
            assert!(forward(entry.clone()));
        }
        drop(forward);
        running.join();
        (live.ended(EndReason::Device), live.not_applied(NotApplied::AfterEnd))
    };
    assert_eq!(run(&entries), (1, 1), "the end and the late batch, counted");
    assert_eq!(run(&entries), (0, 0), "the restart's replay counts neither again");
    let mut more = entries.to_vec();
    more.push(record(4, "ada", 1, 3, false));
    assert_eq!(run(&more), (0, 1), "a late batch new since the restart is counted");
}

/// A takeover replays the partition from the first record of the oldest workout the read store
/// does not hold as ended (or the first record a sink lacks), not from the oldest record the topic
/// retains, which may be weeks back; and what it rebuilds from there is whole.
#[test]
fn a_takeover_replays_from_where_the_workouts_not_stored_as_ended_begin() {
    let dir = tempfile::tempdir().unwrap();
    let config = quick_lake(dir.path());
    let id = |w: u8| WorkoutId([w; 16]);
    let (ended_first, open, ended_later) = (1u8, 2u8, 3u8);
    let first_run = [
        record(1, "ada", ended_first, 0, false),
        record(2, "ada", ended_first, 1, true),
        record(3, "bob", open, 0, false),
        record(4, "cy", ended_later, 0, false),
        record(5, "cy", ended_later, 1, true),
    ];
    assert_eq!(run_partition(&config, &first_run), 1, "nothing recorded yet: the whole partition");

    let (_other_node, config) = on_another_node(config);
    let mut retained = first_run.to_vec();
    retained.push(record(6, "bob", open, 1, true));
    let start = run_partition_from(&config, 3, &retained[2..]);
    assert_eq!(start, 3, "bob's workout, still open, began at 3");
    let stored = open_read_store(&config).unwrap().get(&id(open)).unwrap().expect("bob's workout is stored");
    assert!(stored.status.is_ended() && stored.samples == 20, "rebuilt whole from its first record: {stored:?}");
    assert_eq!(lake_rows(&config).get(&id(open).to_string()), Some(&20));

    retained.push(record(7, "cy", 4, 0, true));
    assert_eq!(
        run_partition_from(&config, 7, &retained[6..]),
        7,
        "every workout ended: from the first record not held"
    );
    let lake = lake_rows(&config);
    assert_eq!(
        [ended_first, open, ended_later, 4].map(|w| lake.get(&id(w).to_string()).copied()),
        [Some(20), Some(20), Some(20), Some(10)],
        "each workout's rows once: {lake:?}"
    );
}
