//! One conformance suite for the read store, run against both backends: the embedded redb file,
//! and PostgreSQL (started by `scripts/test.sh`, which exports `TRACKWIRE_TEST_POSTGRES_URL`;
//! each case gets a database of its own). Without that variable the PostgreSQL cases say so and
//! are skipped.
//!
//! Each case states one promise of the `ReadStore` trait; the API relies on all of them.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use trackwire_codec::WorkoutId;
use trackwire_pipeline::{AthleteProfile, WorkoutStatus, WorkoutSummary};
use trackwire_sinks::read_store::{
    self, ChangeAspect, Chunk, ListQuery, LogCommandRecord, NewChange, PostgresStore, ReadStore, RecordSpan, RedbStore,
    StreamChunk, Streams, best_efforts,
};

const T0: i64 = 1_700_000_000_000;
const MINUTE: i64 = 60_000;

fn summary(user: &str, id: u8, start_ms: i64, sport: &str, status: WorkoutStatus) -> WorkoutSummary {
    serde_json::from_value(serde_json::json!({
        "workout_id": WorkoutId([id; 16]), "user_id": user, "device_id": "watch-1", "device_model": "Forerunner 265",
        "sport": sport, "status": status, "start_time_ms": start_ms, "end_time_ms": start_ms + 30 * MINUTE,
        "elapsed_s": 1800.0, "timer_s": 1790.5, "samples": 1800, "batches": 360, "last_seq": 359,
        "distance_m": 5123.456789012345, "moving_time_s": 1755.25, "elevation_gain_m": 41.2, "elevation_loss_m": 40.9,
        "max_speed_mps": 4.4, "rejected_fixes": 3, "hr_zone_seconds": [10.0, 200.5, 900.0, 600.0, 89.5],
        "trimp_edwards": 123.4, "trimp_banister": 0.1 + 0.2, "calories_kcal": 1e-7, "calories_method": "keytel2005",
        "splits": [], "device_totals": null, "heart_rate_avg_bpm": 151.3, "heart_rate_max_bpm": 178,
        "first_lsn": u64::from(id), "last_lsn": u64::from(id) + 10
    }))
    .unwrap()
}

/// `n` samples one second apart from `start_ms`, 3 m each, every position set.
fn streams(start_ms: i64, start_m: f64, n: usize) -> Streams {
    Streams {
        time_ms: (0..n).map(|i| start_ms + i as i64 * 1000).collect(),
        lat_e7: (0..n).map(|i| Some(473_000_000 + i as i32 * 27)).collect(),
        lon_e7: (0..n).map(|_| Some(85_000_000)).collect(),
        distance_m: (0..n).map(|i| start_m + i as f64 * 3.0).collect(),
        altitude_m: vec![Some(410.5); n],
        heart_rate_bpm: vec![Some(150); n],
        cadence_rpm: vec![None; n],
        power_w: vec![Some(250); n],
        moving: vec![true; n],
        grade_pct: vec![Some(1.5); n],
    }
}

fn chunk(id: u8, lsn: u64, streams: &Streams) -> StreamChunk {
    StreamChunk { workout_id: WorkoutId([id; 16]), lsn, encoded: Chunk::of_record(lsn, streams.clone()).encode() }
}

fn ids(summaries: &[WorkoutSummary]) -> Vec<u8> {
    summaries.iter().map(|s| s.workout_id.0[0]).collect()
}

// ---- the cases ------------------------------------------------------------------------------

fn an_empty_store_holds_nothing(store: &dyn ReadStore) {
    assert_eq!(store.checkpoint("local").unwrap(), 0);
    assert_eq!(store.get(&WorkoutId([1; 16])).unwrap(), None);
    assert_eq!(store.list("u", &ListQuery { limit: 10, ..Default::default() }).unwrap(), (vec![], None));
    assert!(store.streams(&WorkoutId([1; 16])).unwrap().is_empty());
    assert_eq!(store.last_chunk(&WorkoutId([1; 16])).unwrap(), None);
    assert_eq!(store.best_efforts(&WorkoutId([1; 16])).unwrap(), None);
}

fn a_summary_reads_back_exactly(store: &dyn ReadStore) {
    let written = summary("ada", 1, T0, "run", WorkoutStatus::Completed);
    store.apply("local", std::slice::from_ref(&written), &[], 7).unwrap();
    assert_eq!(store.get(&written.workout_id).unwrap(), Some(written.clone()), "every field, floats bit for bit");
    assert_eq!(store.checkpoint("local").unwrap(), 7);
}

fn checkpoints_are_per_log(store: &dyn ReadStore) {
    store.apply("raw.v1/0", &[], &[], 40).unwrap();
    store.apply("raw.v1/1", &[], &[], 3).unwrap();
    store.apply("raw.v1/0", &[], &[], 41).unwrap();
    assert_eq!(store.checkpoint("raw.v1/0").unwrap(), 41);
    assert_eq!(store.checkpoint("raw.v1/1").unwrap(), 3);
    assert_eq!(store.checkpoint("local").unwrap(), 0);
}

fn a_newer_summary_replaces_the_old_one_everywhere(store: &dyn ReadStore) {
    let first = summary("ada", 1, T0, "run", WorkoutStatus::Active);
    store.apply("local", &[first], &[], 1).unwrap();
    // A late first sample moves the start: the list must not show the workout twice.
    let mut later = summary("ada", 1, T0 - MINUTE, "run", WorkoutStatus::Completed);
    later.distance_m = 9000.0;
    store.apply("local", std::slice::from_ref(&later), &[], 2).unwrap();
    assert_eq!(store.get(&later.workout_id).unwrap(), Some(later.clone()));
    let (listed, next) = store.list("ada", &ListQuery { limit: 10, ..Default::default() }).unwrap();
    assert_eq!((listed, next), (vec![later], None));
}

fn lists_are_newest_first_per_user_and_page_exactly(store: &dyn ReadStore) {
    // Ids 1..=9 for ada, two sharing a start time (ties go by id); 20 for another user.
    let mut all = Vec::new();
    for id in 1..=9u8 {
        let start = if id == 5 { T0 + 4 * MINUTE } else { T0 + i64::from(id) * MINUTE };
        let sport = if id % 3 == 0 { "ride" } else { "run" };
        all.push(summary("ada", id, start, sport, WorkoutStatus::Completed));
    }
    all.push(summary("bob", 20, T0 + 100 * MINUTE, "run", WorkoutStatus::Completed));
    // A user id that is a prefix of another must not see the other's workouts.
    all.push(summary("ad", 21, T0, "run", WorkoutStatus::Completed));
    store.apply("local", &all, &[], 1).unwrap();

    let everything = store.all_of_user("ada").unwrap();
    assert_eq!(ids(&everything), vec![9, 8, 7, 6, 4, 5, 3, 2, 1], "newest first; equal starts by id");
    assert_eq!(ids(&store.all_of_user("ad").unwrap()), vec![21]);

    for limit in 1..=10 {
        let (mut seen, mut after, mut pages) = (Vec::new(), None, 0);
        loop {
            let (page, next) = store.list("ada", &ListQuery { after, limit, ..Default::default() }).unwrap();
            assert!(page.len() <= limit);
            pages += 1;
            seen.extend(ids(&page));
            match next {
                Some(cursor) => {
                    assert_eq!(page.len(), limit, "a next page only after a full one");
                    after = Some(cursor);
                }
                None => break,
            }
        }
        assert_eq!(seen, ids(&everything), "limit {limit}: every workout once, in order");
        assert_eq!(pages, 9usize.div_ceil(limit), "limit {limit}: no empty last page");
    }

    let rides = ListQuery { limit: 2, sport: Some("ride".into()), ..Default::default() };
    let (page, next) = store.list("ada", &rides).unwrap();
    assert_eq!(ids(&page), vec![9, 6]);
    let (page, next) = store.list("ada", &ListQuery { after: next, ..rides.clone() }).unwrap();
    assert_eq!((ids(&page), next), (vec![3], None), "no cursor when no further ride exists");

    let window = ListQuery {
        limit: 100,
        start_from_ms: Some(T0 + 2 * MINUTE),
        start_before_ms: Some(T0 + 6 * MINUTE),
        ..Default::default()
    };
    assert_eq!(ids(&store.list("ada", &window).unwrap().0), vec![4, 5, 3, 2], "from inclusive, before exclusive");
}

fn streams_come_back_in_log_order_once(store: &dyn ReadStore) {
    let (a, b, c) = (streams(T0, 0.0, 5), streams(T0 + 5000, 15.0, 5), streams(T0 + 10_000, 30.0, 3));
    // Applied out of order, and the middle chunk twice (a replay after a takeover).
    store.apply("local", &[], &[chunk(1, 30, &c), chunk(1, 10, &a)], 30).unwrap();
    store.apply("local", &[], &[chunk(1, 20, &b), chunk(1, 20, &b)], 31).unwrap();
    store.apply("local", &[], &[chunk(2, 25, &a)], 32).unwrap();
    assert_eq!(store.streams(&WorkoutId([1; 16])).unwrap(), joined(&[&a, &b, &c]));
    assert_eq!(store.last_chunk(&WorkoutId([1; 16])).unwrap(), Some(c));
    assert_eq!(store.streams(&WorkoutId([2; 16])).unwrap(), a);
}

fn joined(parts: &[&Streams]) -> Streams {
    let mut out = Streams::default();
    for part in parts {
        out.extend_range(part, 0..part.len());
    }
    out
}

/// One chunk of several records: `(lsn, samples)` in log order.
fn merged(id: u8, records: &[(u64, &Streams)]) -> StreamChunk {
    let mut chunk = Chunk::default();
    for (lsn, streams) in records {
        chunk.records.push(RecordSpan { lsn: *lsn, samples: streams.len() as u32, stored_ms: None });
        chunk.streams.extend_range(streams, 0..streams.len());
    }
    StreamChunk { workout_id: WorkoutId([id; 16]), lsn: chunk.last_lsn(), encoded: chunk.encode() }
}

fn overlapping_chunks_give_each_record_once(store: &dyn ReadStore) {
    let (a, b, c, d) = (
        streams(T0, 0.0, 5),
        streams(T0 + 5000, 15.0, 5),
        streams(T0 + 10_000, 30.0, 3),
        streams(T0 + 13_000, 39.0, 2),
    );
    // One writer merged records 10..=30 of workout 1; a second, replaying the same positions after
    // a takeover, stored 10 alone, then 20..=30 (replacing the first's chunk under key 30), then 40.
    store.apply("local", &[], &[merged(1, &[(10, &a), (20, &b), (30, &c)])], 30).unwrap();
    store.apply("local", &[], &[merged(1, &[(10, &a)]), merged(1, &[(20, &b), (30, &c)])], 30).unwrap();
    store.apply("local", &[], &[merged(1, &[(40, &d)])], 40).unwrap();
    assert_eq!(store.streams(&WorkoutId([1; 16])).unwrap(), joined(&[&a, &b, &c, &d]));
    // And the other way round on workout 2: record by record first, then one merged chunk.
    store.apply("local", &[], &[chunk(2, 10, &a), chunk(2, 20, &b)], 41).unwrap();
    store.apply("local", &[], &[merged(2, &[(10, &a), (20, &b), (30, &c)])], 42).unwrap();
    assert_eq!(store.streams(&WorkoutId([2; 16])).unwrap(), joined(&[&a, &b, &c]));
    assert_eq!(store.last_chunk(&WorkoutId([2; 16])).unwrap(), Some(joined(&[&a, &b, &c])));
}

fn best_efforts_are_kept_once_a_workout_ends(store: &dyn ReadStore) {
    // 2,000 samples, 3 m/s: 6 km, so a 5k effort of 1,666 s or so.
    let s = streams(T0, 0.0, 2000);
    store.apply("local", &[summary("ada", 1, T0, "run", WorkoutStatus::Active)], &[chunk(1, 1, &s)], 1).unwrap();
    assert_eq!(store.best_efforts(&WorkoutId([1; 16])).unwrap(), None, "none while in progress");
    store.apply("local", &[summary("ada", 1, T0, "run", WorkoutStatus::Completed)], &[], 2).unwrap();
    let found = store.best_efforts(&WorkoutId([1; 16])).unwrap().expect("best efforts of an ended workout");
    assert_eq!(found, best_efforts(&s.time_ms, &s.distance_m));
    assert!(found.seconds.contains_key("5k"), "{found:?}");
}

fn best_efforts_of_many_workouts_come_back_for_those_that_have_them(store: &dyn ReadStore) {
    let (short, long) = (streams(T0, 0.0, 200), streams(T0, 0.0, 2000));
    let rows = [
        summary("ada", 1, T0, "run", WorkoutStatus::Completed),
        summary("ada", 2, T0 + MINUTE, "run", WorkoutStatus::Active),
        summary("ada", 3, T0 + 2 * MINUTE, "run", WorkoutStatus::Completed),
    ];
    store.apply("local", &rows, &[chunk(1, 1, &short), chunk(2, 2, &long), chunk(3, 3, &long)], 3).unwrap();
    let asked = [1, 2, 3, 9].map(|id| WorkoutId([id; 16]));
    let mut found = store.best_efforts_of(&asked).unwrap();
    found.sort_by_key(|(id, _)| id.0);
    let expected = vec![
        (WorkoutId([1; 16]), best_efforts(&short.time_ms, &short.distance_m)),
        (WorkoutId([3; 16]), best_efforts(&long.time_ms, &long.distance_m)),
    ];
    assert_eq!(found, expected, "the ended workouts only; an unknown id is no error");
    assert_eq!(found[0].1.seconds.keys().collect::<Vec<_>>(), ["400m"], "597 m hold a 400 m effort only");
    assert!(store.best_efforts_of(&[]).unwrap().is_empty());
}

fn erasure_removes_every_row_of_the_user_only(store: &dyn ReadStore) {
    let s = streams(T0, 0.0, 10);
    let rows = [
        summary("ada", 1, T0, "run", WorkoutStatus::Completed),
        summary("ada", 2, T0 + MINUTE, "run", WorkoutStatus::Completed),
        summary("bob", 3, T0, "run", WorkoutStatus::Completed),
    ];
    store.apply("local", &rows, &[chunk(1, 1, &s), chunk(2, 2, &s), chunk(3, 3, &s), chunk(4, 4, &s)], 4).unwrap();
    // Workout 4 has streams but no summary yet (the caller knows it is ada's from the pipeline).
    let named: HashSet<WorkoutId> = [WorkoutId([4; 16])].into();
    // Deleting one workout takes its rows and nothing else of the user.
    store.delete_workouts(&[WorkoutId([2; 16])].into()).unwrap();
    assert_eq!(store.get(&WorkoutId([2; 16])).unwrap(), None);
    assert!(store.streams(&WorkoutId([2; 16])).unwrap().is_empty());
    assert_eq!(ids(&store.all_of_user("ada").unwrap()), vec![1]);
    assert_eq!(store.streams(&WorkoutId([1; 16])).unwrap(), s);
    assert_eq!(store.erase("ada", &named).unwrap(), 2);
    for id in [1, 2, 4] {
        let id = WorkoutId([id; 16]);
        assert_eq!(store.get(&id).unwrap(), None);
        assert!(store.streams(&id).unwrap().is_empty());
        assert_eq!(store.best_efforts(&id).unwrap(), None);
    }
    assert!(store.all_of_user("ada").unwrap().is_empty());
    assert_eq!(ids(&store.all_of_user("bob").unwrap()), vec![3]);
    assert_eq!(store.streams(&WorkoutId([3; 16])).unwrap(), s);
}

fn retention_nulls_old_positions_and_nothing_else(store: &dyn ReadStore) {
    let old = streams(T0, 0.0, 10); // T0 .. T0+9 s
    let new = streams(T0 + 10 * MINUTE, 0.0, 10);
    let rows = [
        summary("ada", 1, T0, "run", WorkoutStatus::Completed),
        summary("ada", 2, T0 + 10 * MINUTE, "run", WorkoutStatus::Completed),
    ];
    store.apply("local", &rows, &[chunk(1, 1, &old), chunk(2, 2, &new)], 2).unwrap();
    // Cut in the middle of workout 1: its first 5 samples lose their positions.
    assert_eq!(store.drop_positions(0, T0 + 5000).unwrap(), 1);
    let after = store.streams(&WorkoutId([1; 16])).unwrap();
    assert_eq!(after.lat_e7[..5], [None; 5]);
    assert_eq!(after.lon_e7[..5], [None; 5]);
    assert_eq!(after.lat_e7[5..], old.lat_e7[5..]);
    assert_eq!(after.distance_m, old.distance_m, "totals and other columns stay");
    assert_eq!(after.heart_rate_bpm, old.heart_rate_bpm);
    assert_eq!(store.streams(&WorkoutId([2; 16])).unwrap(), new);
    assert_eq!(store.drop_positions(0, T0 + 5000).unwrap(), 0, "running it again changes nothing");
}

fn athlete_profiles_are_set_replaced_and_removed(store: &dyn ReadStore) {
    assert!(store.athlete_profiles().unwrap().is_empty());
    let mut ada = AthleteProfile {
        weight_kg: Some(61.5),
        age_years: Some(36.0),
        male: Some(false),
        hr_max_bpm: Some(187.0),
        hr_rest_bpm: Some(48.0),
    };
    store.put_athlete_profile("ada", Some(&ada)).unwrap();
    store.put_athlete_profile("bob", Some(&AthleteProfile::default())).unwrap();
    ada.hr_max_bpm = Some(185.0);
    store.put_athlete_profile("ada", Some(&ada)).unwrap();
    let mut all = store.athlete_profiles().unwrap();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(all, vec![("ada".to_owned(), ada), ("bob".to_owned(), AthleteProfile::default())]);
    store.put_athlete_profile("bob", None).unwrap();
    store.put_athlete_profile("nobody", None).unwrap();
    assert_eq!(store.athlete_profiles().unwrap().len(), 1);
}

fn log_commands_are_recorded_per_log_and_never_undone(store: &dyn ReadStore) {
    let record = |log: &str, lsn, user: Option<&str>, done| LogCommandRecord {
        log: log.into(),
        lsn,
        command: match user {
            Some(user) => format!(r#"{{"type":"erase_user","user_id":"{user}"}}"#),
            None => r#"{"type":"drop_positions","from_ms":0,"before_ms":5}"#.into(),
        },
        user_id: user.map(str::to_owned),
        done,
    };
    store.record_log_command(&record("raw.v1/1", 9, Some("ada"), false)).unwrap();
    store.record_log_command(&record("raw.v1/0", 7, Some("ada"), false)).unwrap();
    store.record_log_command(&record("raw.v1/0", 3, None, false)).unwrap();
    store.record_log_command(&record("raw.v1/0", 7, Some("ada"), true)).unwrap();
    // Placed again after it was done (a worker finished before the API wrote its record).
    store.record_log_command(&record("raw.v1/0", 7, Some("ada"), false)).unwrap();
    let on_0 = store.log_commands("raw.v1/0").unwrap();
    assert_eq!(on_0, vec![record("raw.v1/0", 3, None, false), record("raw.v1/0", 7, Some("ada"), true)]);
    let mut of_ada = store.log_commands_of_user("ada").unwrap();
    of_ada.sort_by(|a, b| a.log.cmp(&b.log));
    assert_eq!(of_ada, vec![record("raw.v1/0", 7, Some("ada"), true), record("raw.v1/1", 9, Some("ada"), false)]);
    assert!(store.log_commands_of_user("bob").unwrap().is_empty());
    assert!(store.log_commands("local").unwrap().is_empty());
    // A retention cut done replaces the done cuts before it; erasures and undone cuts stay.
    store.record_log_command(&record("raw.v1/0", 3, None, true)).unwrap();
    store.record_log_command(&record("raw.v1/0", 8, None, false)).unwrap();
    store.record_log_command(&record("raw.v1/0", 10, None, true)).unwrap();
    store.record_log_command(&record("raw.v1/0", 11, None, true)).unwrap();
    let on_0: Vec<_> = store.log_commands("raw.v1/0").unwrap().iter().map(|r| (r.lsn, r.done)).collect();
    assert_eq!(on_0, vec![(7, true), (8, false), (11, true)]);
    assert_eq!(store.log_commands("raw.v1/1").unwrap().len(), 1, "other logs untouched");
}

fn the_change_feed_records_each_completion_once_in_order(store: &dyn ReadStore) {
    let aspects = |changes: &[read_store::WorkoutChange]| -> Vec<(u8, ChangeAspect)> {
        changes.iter().map(|c| (c.change.workout_id.0[0], c.change.aspect)).collect()
    };
    // In progress: nothing yet. Completed: created. Completed again (a late batch, a replay): no
    // second create.
    store.apply("local", &[summary("ada", 1, T0, "run", WorkoutStatus::Active)], &[], 1).unwrap();
    assert!(store.changes_after(0, 10).unwrap().is_empty());
    let done = summary("ada", 1, T0, "run", WorkoutStatus::Completed);
    store.apply("local", std::slice::from_ref(&done), &[], 2).unwrap();
    store.apply("local", std::slice::from_ref(&done), &[], 3).unwrap();
    store.apply("local", &[summary("bob", 2, T0, "ride", WorkoutStatus::Cancelled)], &[], 4).unwrap();
    let created = store.changes_after(0, 10).unwrap();
    assert_eq!(aspects(&created), [(1, ChangeAspect::Create)]);
    assert_eq!((created[0].change.user_id.as_str(), created[0].change.at_ms), ("ada", done.end_time_ms));

    let mut edited = NewChange::new(WorkoutId([1; 16]), "ada", ChangeAspect::Update, T0 + MINUTE);
    edited.updates = serde_json::json!({"name": "Lunch run"});
    let seq = store.append_change(&edited).unwrap();
    assert!(seq > created[0].seq);
    store.append_change(&NewChange::new(WorkoutId([3; 16]), "bob", ChangeAspect::Delete, T0)).unwrap();
    let all = store.changes_after(0, 10).unwrap();
    assert_eq!(aspects(&all), [(1, ChangeAspect::Create), (1, ChangeAspect::Update), (3, ChangeAspect::Delete)]);
    assert_eq!(all[1].change, edited);
    assert_eq!(aspects(&store.changes_after(created[0].seq, 1).unwrap()), [(1, ChangeAspect::Update)]);

    // Trimmed changes are gone and their seqs are never given again; an erased user's go too.
    store.trim_changes_through(seq).unwrap();
    assert_eq!(aspects(&store.changes_after(0, 10).unwrap()), [(3, ChangeAspect::Delete)]);
    let next = store.append_change(&NewChange::new(WorkoutId([4; 16]), "ada", ChangeAspect::Delete, T0)).unwrap();
    assert!(next > all[2].seq);
    store.erase("bob", &HashSet::new()).unwrap();
    assert_eq!(aspects(&store.changes_after(0, 10).unwrap()), [(4, ChangeAspect::Delete)]);
}

type Case = fn(&dyn ReadStore);

const CASES: &[(&str, Case)] = &[
    ("an_empty_store_holds_nothing", an_empty_store_holds_nothing),
    ("a_summary_reads_back_exactly", a_summary_reads_back_exactly),
    ("checkpoints_are_per_log", checkpoints_are_per_log),
    ("a_newer_summary_replaces_the_old_one_everywhere", a_newer_summary_replaces_the_old_one_everywhere),
    ("lists_are_newest_first_per_user_and_page_exactly", lists_are_newest_first_per_user_and_page_exactly),
    ("streams_come_back_in_log_order_once", streams_come_back_in_log_order_once),
    ("overlapping_chunks_give_each_record_once", overlapping_chunks_give_each_record_once),
    ("best_efforts_are_kept_once_a_workout_ends", best_efforts_are_kept_once_a_workout_ends),
    (
        "best_efforts_of_many_workouts_come_back_for_those_that_have_them",
        best_efforts_of_many_workouts_come_back_for_those_that_have_them,
    ),
    ("erasure_removes_every_row_of_the_user_only", erasure_removes_every_row_of_the_user_only),
    ("retention_nulls_old_positions_and_nothing_else", retention_nulls_old_positions_and_nothing_else),
    ("athlete_profiles_are_set_replaced_and_removed", athlete_profiles_are_set_replaced_and_removed),
    ("log_commands_are_recorded_per_log_and_never_undone", log_commands_are_recorded_per_log_and_never_undone),
    ("the_change_feed_records_each_completion_once_in_order", the_change_feed_records_each_completion_once_in_order),
];

// ---- the backends ---------------------------------------------------------------------------

#[test]
fn redb_passes_the_suite() {
    for (name, case) in CASES {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(&dir.path().join("read.redb")).unwrap();
        eprintln!("redb: {name}");
        case(&store);
    }
}

#[test]
fn redb_keeps_everything_across_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("read.redb");
    let written = summary("ada", 1, T0, "run", WorkoutStatus::Completed);
    RedbStore::open(&path).unwrap().apply("local", std::slice::from_ref(&written), &[], 9).unwrap();
    let store = read_store::open(None, None, &path).unwrap();
    assert_eq!((store.get(&written.workout_id).unwrap(), store.checkpoint("local").unwrap()), (Some(written), 9));
}

/// A fresh database on the test server per call, so cases never see each other's rows.
fn postgres_database() -> Option<String> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let Ok(url) = std::env::var("TRACKWIRE_TEST_POSTGRES_URL") else {
        eprintln!("TRACKWIRE_TEST_POSTGRES_URL is not set: PostgreSQL cases skipped (scripts/test.sh starts one)");
        return None;
    };
    let name = format!("rs_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).expect("connecting to the test server");
    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name}")).unwrap();
    admin.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
    let (base, _) = url.rsplit_once('/').expect("a URL with a database");
    Some(format!("{base}/{name}"))
}

#[test]
fn postgres_passes_the_suite() {
    for (name, case) in CASES {
        let Some(url) = postgres_database() else { return };
        let store = PostgresStore::connect(&url, None).unwrap();
        eprintln!("postgres: {name}");
        case(&store);
    }
}

#[test]
fn postgres_migrations_apply_once_even_when_processes_start_together() {
    let Some(url) = postgres_database() else { return };
    let stores: Vec<Arc<dyn ReadStore>> = std::thread::scope(|scope| {
        let starts: Vec<_> =
            (0..4).map(|_| scope.spawn(|| read_store::open(Some(&url), None, "unused".as_ref()))).collect();
        starts.into_iter().map(|s| s.join().unwrap().unwrap()).collect()
    });
    let written = summary("ada", 1, T0, "run", WorkoutStatus::Completed);
    stores[0].apply("local", std::slice::from_ref(&written), &[], 1).unwrap();
    assert_eq!(stores[3].get(&written.workout_id).unwrap(), Some(written));
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let versions: Vec<i32> = client
        .query("SELECT version FROM trackwire_schema_migrations ORDER BY version", &[])
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(versions, vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
}

#[test]
fn postgres_over_tls_verifies_the_server_against_the_given_ca() {
    let Some(url) = postgres_database() else { return };
    let Ok(ca) = std::env::var("TRACKWIRE_TEST_POSTGRES_CA") else {
        eprintln!("TRACKWIRE_TEST_POSTGRES_CA is not set: TLS case skipped (scripts/test.sh sets it)");
        return;
    };
    // With the CA: TLS (sslmode=require implied), and the store works.
    let store = PostgresStore::connect(&url, Some(ca.as_ref())).unwrap();
    a_summary_reads_back_exactly(&store);
    let database = url.rsplit_once('/').unwrap().1.to_owned();
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let row = admin
        .query_one(
            "SELECT count(*), coalesce(bool_and(s.ssl), false) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
             WHERE a.datname = $1 AND a.pid <> pg_backend_pid()",
            &[&database],
        )
        .unwrap();
    let (connections, all_tls): (i64, bool) = (row.get(0), row.get(1));
    assert!(connections >= 1 && all_tls, "{connections} connections, all over TLS: {all_tls}");
    drop(store);
    // Asking for TLS without the CA: the Mozilla roots do not know the test CA, so no connection.
    let err =
        PostgresStore::connect(&format!("{url}?sslmode=require&connect_timeout=2"), None).err().unwrap().to_string();
    assert!(err.contains("TLS") && err.contains("store.ca_file"), "{err}");
    // A CA file that is not PEM says so.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.pem"), "not a certificate").unwrap();
    let err = PostgresStore::connect(&url, Some(&dir.path().join("ca.pem"))).err().unwrap().to_string();
    assert!(err.contains("store.ca_file") && err.contains("PEM"), "{err}");
}

#[test]
fn a_bad_store_url_says_what_to_give() {
    let err = read_store::open(Some("mysql://tw:secret@db/tw"), None, "unused".as_ref()).err().unwrap().to_string();
    assert!(err.contains("postgres://") && !err.contains("secret"), "{err}");
    // Nothing listens on port 1: the error names the server and what to check, not the password.
    let err = read_store::open(Some("postgres://tw:secret@127.0.0.1:1/tw?connect_timeout=1"), None, "unused".as_ref())
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("127.0.0.1:1") && err.contains("check that the server is up") && !err.contains("secret"),
        "{err}"
    );
}
