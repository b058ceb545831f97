//! The seed aggregate's lifecycle, driven through the sans-IO shard core.
use proptest::prelude::*;
use trackwire_codec::{BatchData, ControlEvent, ControlKind, Sample, Sport, WorkoutId, encode_batch, missing};
use trackwire_pipeline::{EventData, EventKind, NotApplied, ShardCore, ShardOutput, WorkoutStatus};

const ID: WorkoutId = WorkoutId([9; 16]);
const BASE: i64 = 1_700_000_000_000;

/// A sample one second apart moving ~11 m north each second, with a heart rate.
fn sample(t_s: u32, hr: u8) -> Sample {
    Sample::new(
        t_s * 1000,
        473_000_000 + t_s as i32 * 1000,
        85_000_000,
        40_000,
        hr,
        missing::CADENCE,
        missing::POWER,
        50,
        0,
    )
}

fn batch(seq: u64, samples: Vec<Sample>, events: Vec<(u32, ControlKind)>) -> Vec<u8> {
    encode_batch(&BatchData {
        device_id: "watch".into(),
        user_id: "athlete".into(),
        workout_id: ID,
        sport: Sport::Running,
        seq,
        base_time_ms: BASE,
        samples,
        events: events.into_iter().map(|(t, k)| ControlEvent::new(t * 1000, k)).collect(),
        ..BatchData::default()
    })
}

fn kinds(out: &ShardOutput) -> Vec<EventKind> {
    out.events.iter().map(|e| e.kind).collect()
}

/// Live batches of 5 one-second samples: `WorkoutUpdated` comes at most once per interval of
/// device time, always with a pause, resume or the end, and carries a small fixed payload, so
/// the per-batch work does not grow with the workout (no summary with its splits each time).
#[test]
fn updates_are_throttled_per_interval_and_compact() {
    let mut core = ShardCore::default().with_update_interval_ms(10_000);
    let mut updated_at = Vec::new();
    for seq in 0..12u32 {
        let events = match seq {
            0 => vec![(0, ControlKind::Start)],
            7 => vec![(36, ControlKind::Pause)],
            _ => vec![],
        };
        let out = core.process(
            u64::from(seq) + 1,
            &batch(u64::from(seq), (seq * 5..seq * 5 + 5).map(|t| sample(t, 120)).collect(), events),
        );
        for event in out.events.iter().filter(|e| e.kind == EventKind::WorkoutUpdated) {
            updated_at.push(seq);
            let EventData::Progress(progress) = &event.data else { panic!("updates carry the progress only") };
            assert_eq!(progress.samples, u64::from(seq + 1) * 5);
            assert!(progress.distance_m > 0.0, "{progress:?}");
            assert_eq!(progress.current_speed_mps.is_some(), seq < 7, "no speed while paused: {progress:?}");
            let json = serde_json::to_vec(progress).unwrap();
            assert!(json.len() < 400, "compact: {} bytes", json.len());
        }
        if seq == 0 {
            let started = &out.events[0];
            assert!(
                matches!(started.data, EventData::Started { .. }),
                "WorkoutStarted carries the summary and the start"
            );
        }
    }
    // 0: the first batch; 2: 10 s later; 4; 6; 7: the pause; 9 and 11: every 10 s after it.
    assert_eq!(updated_at, [0, 2, 4, 6, 7, 9, 11]);
    let out =
        core.process(13, &batch(12, (60..62).map(|t| sample(t, 120)).collect(), vec![(61, ControlKind::Complete)]));
    assert_eq!(kinds(&out), [EventKind::WorkoutUpdated, EventKind::WorkoutCompleted], "the end always updates");
    assert!(matches!(out.events[1].data, EventData::Completed { .. }));
}

/// `WorkoutStarted` says where the workout began (its first fix) and `WorkoutCompleted` carries
/// a sketch of the route, from the first fix to the last, of a bounded number of points however
/// long the workout: what a feed draws a map thumbnail from.
#[test]
fn the_start_has_its_location_and_the_completion_a_bounded_route() {
    let mut core = ShardCore::default();
    let no_fix = |t: u32| {
        Sample::new(
            t * 1000,
            missing::COORDINATE,
            missing::COORDINATE,
            40_000,
            120,
            missing::CADENCE,
            missing::POWER,
            50,
            0,
        )
    };
    let out = core.process(1, &batch(0, vec![no_fix(0)], vec![(0, ControlKind::Start)]));
    let EventData::Started { location, .. } = &out.events[0].data else { panic!("{:?}", out.events[0]) };
    assert_eq!(*location, None, "no fix yet: no location");

    let mut core = ShardCore::default();
    let out = core.process(1, &batch(0, (0..10).map(|t| sample(t, 120)).collect(), vec![(0, ControlKind::Start)]));
    let EventData::Started { location, .. } = &out.events[0].data else { panic!("{:?}", out.events[0]) };
    let start = location.expect("the first fix");
    assert!((start.lat - 47.3).abs() < 2e-5 && (start.lon - 8.5).abs() < 2e-5, "{start:?}");

    // Two hours at 1 Hz, in batches of 100 samples.
    let mut last = None;
    for seq in 1..72u32 {
        let samples: Vec<Sample> = (seq * 100..seq * 100 + 100).map(|t| sample(t, 120)).collect();
        let events = if seq == 71 { vec![(seq * 100 + 99, ControlKind::Complete)] } else { vec![] };
        last = Some(core.process(u64::from(seq) + 1, &batch(u64::from(seq), samples, events)));
    }
    let out = last.unwrap();
    let completed = out.events.iter().find(|e| e.kind == EventKind::WorkoutCompleted).unwrap();
    let EventData::Completed { route, .. } = &completed.data else { panic!("{completed:?}") };
    assert!((2..=trackwire_pipeline::route::ROUTE_SKETCH_POINTS + 1).contains(&route.len()), "{} points", route.len());
    assert!((route[0].lat - start.lat).abs() < 1e-9 && (route[0].lon - start.lon).abs() < 1e-9, "begins at the start");
    let end = route.last().unwrap();
    assert!((end.lat - (47.3 + 7_199.0 * 1e-4)).abs() < 1e-4, "ends at the last fix: {end:?}");
    assert!(route.windows(2).all(|w| w[1].lat > w[0].lat), "in order along the route");
}

#[test]
fn an_interval_of_zero_updates_after_every_batch() {
    let mut core = ShardCore::default().with_update_interval_ms(0);
    for seq in 0..5u32 {
        let out = core.process(u64::from(seq) + 1, &batch(u64::from(seq), vec![sample(seq, 120)], vec![]));
        assert_eq!(kinds(&out).last(), Some(&EventKind::WorkoutUpdated));
    }
}

#[test]
fn start_pause_resume_complete_emit_the_seed_events_in_order() {
    let mut core = ShardCore::default();
    let out = core.process(1, &batch(0, (0..10).map(|t| sample(t, 120)).collect(), vec![(0, ControlKind::Start)]));
    assert_eq!(kinds(&out), [EventKind::WorkoutStarted, EventKind::WorkoutUpdated]);
    assert_eq!(out.points.len(), 10);

    let out = core.process(
        2,
        &batch(
            1,
            (10..20).map(|t| sample(t, 130)).collect(),
            vec![(14, ControlKind::Pause), (17, ControlKind::Resume)],
        ),
    );
    assert_eq!(kinds(&out), [EventKind::WorkoutPaused, EventKind::WorkoutResumed, EventKind::WorkoutUpdated]);
    // Each says where the workout stood at its own instant, not at the end of the batch.
    let EventData::Transition(paused) = out.events[0].data else { panic!("{:?}", out.events[0]) };
    let EventData::Transition(resumed) = out.events[1].data else { panic!("{:?}", out.events[1]) };
    assert_eq!((paused.status, paused.elapsed_s), (WorkoutStatus::Paused, 14.0));
    assert_eq!((resumed.status, resumed.elapsed_s), (WorkoutStatus::Active, 17.0));
    assert!((paused.distance_m - 14.0 * 11.12).abs() < 0.5, "{paused:?}");
    assert_eq!(resumed.distance_m, paused.distance_m, "nothing counted while paused");
    let paused: Vec<bool> = out.points.iter().map(|p| p.paused).collect();
    assert_eq!(
        paused,
        [false, false, false, false, false, true, true, false, false, false],
        "the sample at the pause instant still counts"
    );

    let out = core.process(3, &batch(2, (20..25).map(|t| sample(t, 180)).collect(), vec![(24, ControlKind::Complete)]));
    assert_eq!(kinds(&out), [EventKind::WorkoutUpdated, EventKind::WorkoutCompleted]);
    assert!(out.ended);
    let summary = out.summary.unwrap();
    assert_eq!(summary.status, WorkoutStatus::Completed);
    assert_eq!(summary.samples, 25);
    assert_eq!(summary.heart_rate_max_bpm, Some(180));
    assert_eq!(summary.elapsed_s, 24.0);
    // Paused from 14 s to 17 s: those 3 s are neither timer time, moving time nor distance.
    assert_eq!(summary.timer_s, 21.0);
    assert_eq!(summary.moving_time_s, 21.0);
    assert!((summary.distance_m - 21.0 * 11.12).abs() < 0.5, "{}", summary.distance_m);
    assert_eq!(summary.first_lsn, 1);
    assert_eq!(summary.last_lsn, 3);
}

#[test]
fn a_batch_after_completion_changes_nothing() {
    let mut core = ShardCore::default();
    core.process(1, &batch(0, vec![sample(0, 100)], vec![(0, ControlKind::Complete)]));
    let out = core.process(2, &batch(1, vec![sample(5, 100)], vec![]));
    assert!(out.points.is_empty() && out.events.is_empty() && out.summary.is_none());
    assert_eq!(out.not_applied, Some(NotApplied::AfterEnd), "kept in the log, not applied: counted");
}

/// Ingest refuses such batches before they are stored; where a log holds one anyway (written by
/// a gateway that could not ask the owner registry), the workout still only takes its owner's.
#[test]
fn a_batch_from_another_user_or_device_is_not_applied_to_the_workout() {
    let mut core = ShardCore::default();
    core.process(1, &batch(0, vec![sample(0, 100)], vec![]));
    for (user, device) in [("intruder", "watch"), ("athlete", "other-watch")] {
        let foreign = encode_batch(&BatchData {
            device_id: device.into(),
            user_id: user.into(),
            workout_id: ID,
            seq: 1,
            base_time_ms: BASE,
            samples: vec![sample(5, 180)],
            ..BatchData::default()
        });
        let out = core.process(2, &foreign);
        assert!(out.points.is_empty() && out.events.is_empty() && out.summary.is_none(), "{user}/{device}: {out:?}");
        assert_eq!(out.not_applied, Some(NotApplied::OtherOwner));
    }
    let out = core.process(3, &batch(1, vec![sample(5, 100)], vec![(5, ControlKind::Complete)]));
    let summary = out.summary.expect("the owner's batches still apply");
    assert_eq!(summary.heart_rate_avg_bpm, Some(100.0), "no heart rate of the intruder's");
}

#[test]
fn transitions_that_do_not_apply_are_ignored() {
    let mut core = ShardCore::default();
    let out = core.process(
        1,
        &batch(
            0,
            vec![sample(0, 100), sample(9, 100)],
            vec![
                (1, ControlKind::Resume),
                (2, ControlKind::Pause),
                (3, ControlKind::Pause),
                (4, ControlKind::Start),
                (5, ControlKind(77)),
            ],
        ),
    );
    assert_eq!(kinds(&out), [EventKind::WorkoutStarted, EventKind::WorkoutPaused, EventKind::WorkoutUpdated]);
    assert_eq!(out.summary.unwrap().status, WorkoutStatus::Paused);
}

#[test]
fn cancel_ends_the_workout() {
    let mut core = ShardCore::default();
    let out = core
        .process(1, &batch(0, vec![sample(0, 100), sample(1, 100), sample(2, 100)], vec![(1, ControlKind::Cancel)]));
    assert_eq!(kinds(&out), [EventKind::WorkoutStarted, EventKind::WorkoutUpdated, EventKind::WorkoutCancelled]);
    assert_eq!(out.points.len(), 2, "samples after the cancel instant are dropped with the workout");
    assert!(out.ended);
}

#[test]
fn lap_presses_split_the_workout_into_laps() {
    let mut core = ShardCore::default();
    // 0–59 s at HR 120, a press at 30 s, 60–119 s at HR 160 with a pause 80–90 s, a press at 100 s.
    let first: Vec<Sample> = (0..60).map(|t| sample(t, 120)).collect();
    core.process(1, &batch(0, first, vec![(0, ControlKind::Start), (30, ControlKind::Lap)]));
    let second: Vec<Sample> = (60..120).map(|t| sample(t, 160)).collect();
    let events =
        vec![(80, ControlKind::Pause), (90, ControlKind::Resume), (100, ControlKind::Lap), (100, ControlKind::Lap)];
    let out = core.process(2, &batch(1, second, events));
    let summary = out.summary.expect("a summary");
    let laps = &summary.laps;
    assert_eq!(laps.iter().map(|l| l.lap).collect::<Vec<_>>(), [1, 2, 3], "a double press ends nothing: {laps:?}");
    assert_eq!(laps.iter().map(|l| l.elapsed_s).collect::<Vec<_>>(), [30.0, 70.0, 19.0]);
    assert_eq!(laps[1].start_time_ms, BASE + 30_000);
    assert!(laps[1].moving_s < laps[1].elapsed_s - 9.0, "the pause is not moving time: {:?}", laps[1]);
    assert_eq!((laps[0].heart_rate_avg_bpm, laps[0].heart_rate_max_bpm), (Some(120.0), Some(120)));
    assert_eq!(laps[1].heart_rate_max_bpm, Some(160));
    let total: f64 = laps.iter().map(|l| l.distance_m).sum();
    assert!((total - summary.distance_m).abs() < 1e-6, "laps add up to the workout: {total} vs {}", summary.distance_m);
    // The same presses after the end change nothing.
    let done = core.process(3, &batch(2, vec![sample(120, 160)], vec![(120, ControlKind::Complete)]));
    assert_eq!(done.summary.expect("a summary").laps.len(), 3);
    let late = core.process(4, &batch(3, vec![], vec![(130, ControlKind::Lap)]));
    assert!(late.summary.is_none());
}

#[test]
fn a_workout_without_samples_is_what_its_device_totals_say() {
    let mut core = ShardCore::default();
    let totals = trackwire_codec::DeviceTotals {
        distance_m: Some(10_000.0),
        timer_s: Some(2_950.0),
        elapsed_s: Some(3_000.0),
        calories_kcal: Some(640.0),
        heart_rate_avg: Some(151.0),
        heart_rate_max: Some(178.0),
        ..Default::default()
    };
    let out = core.process(
        1,
        &encode_batch(&BatchData {
            device_id: "manual".into(),
            user_id: "athlete".into(),
            workout_id: ID,
            sport: Sport::Running,
            base_time_ms: BASE,
            events: vec![ControlEvent::new(0, ControlKind::Start), ControlEvent::new(3_000_000, ControlKind::Complete)],
            device_totals: Some(totals),
            ..BatchData::default()
        }),
    );
    assert_eq!(kinds(&out), [EventKind::WorkoutStarted, EventKind::WorkoutCompleted]);
    let s = out.summary.expect("a summary");
    assert_eq!((s.samples, s.elapsed_s, s.moving_time_s, s.distance_m), (0, 3000.0, 2950.0, 10_000.0));
    assert_eq!((s.calories_kcal, s.calories_method.as_deref()), (Some(640.0), Some("device")));
    assert_eq!((s.heart_rate_avg_bpm, s.heart_rate_max_bpm), (Some(151.0), Some(178)));
    assert!(out.ended && out.points.is_empty());
}

#[test]
fn a_workout_without_presses_stores_no_laps() {
    let mut core = ShardCore::default();
    let out = core.process(1, &batch(0, (0..10).map(|t| sample(t, 120)).collect(), vec![(0, ControlKind::Start)]));
    assert!(out.summary.unwrap().laps.is_empty());
}

#[test]
fn missing_channels_and_out_of_range_fixes_are_none() {
    let mut core = ShardCore::default();
    let s = Sample::new(
        0,
        missing::COORDINATE,
        missing::COORDINATE,
        missing::ALTITUDE,
        missing::HEART_RATE,
        missing::CADENCE,
        missing::POWER,
        missing::ACCURACY,
        0,
    );
    let bad = Sample::new(1000, 950_000_000, 0, 0, 60, 0, 250, 10, 0);
    let out = core.process(1, &batch(0, vec![s, bad], vec![]));
    let p = out.points.get(0);
    assert_eq!(
        (p.lat_deg, p.altitude_m, p.heart_rate_bpm, p.cadence_rpm, p.power_w, p.h_accuracy_m),
        (None, None, None, None, None, None)
    );
    let q = out.points.get(1);
    assert_eq!((q.lat_deg, q.cadence_rpm, q.power_w, q.h_accuracy_m), (None, Some(0), Some(250), Some(1.0)));
}

fn arbitrary_batches() -> impl Strategy<Value = Vec<Vec<u8>>> {
    proptest::collection::vec(
        (
            0u64..6,
            proptest::collection::vec((0u32..120, -10_000i32..10_000, 0u8..220), 0..20),
            proptest::collection::vec((0u32..120, 0u8..6), 0..3),
        ),
        1..12,
    )
    .prop_map(|batches| {
        batches
            .into_iter()
            .map(|(seq, samples, events)| {
                batch(
                    seq,
                    samples
                        .into_iter()
                        .map(|(t, d, hr)| Sample::new(t * 1000, 473_000_000 + d, 85_000_000 - d, 0, hr, 0, 0, 0, 0))
                        .collect(),
                    events.into_iter().map(|(t, k)| (t, ControlKind(k))).collect(),
                )
            })
            .collect()
    })
}

proptest! {
    /// Shuffled, duplicated or nonsensical input never panics, distance never decreases, and the
    /// same records give the same outputs (what makes log replay exact).
    #[test]
    fn any_batch_sequence_is_safe_and_deterministic(batches in arbitrary_batches()) {
        let run = || {
            let mut core = ShardCore::default();
            batches.iter().enumerate().map(|(i, b)| core.process(i as u64 + 1, b)).collect::<Vec<_>>()
        };
        let (first, second) = (run(), run());
        let mut last_distance = 0.0;
        for (a, b) in first.iter().zip(&second) {
            prop_assert_eq!(&a.points, &b.points);
            prop_assert_eq!(&a.summary, &b.summary);
            if let Some(summary) = a.summary.as_ref().filter(|s| !s.laps.is_empty()) {
                let total: f64 = summary.laps.iter().map(|l| l.distance_m).sum();
                prop_assert!((total - summary.distance_m).abs() < 1e-6, "laps {:?} vs {}", summary.laps, summary.distance_m);
            }
            prop_assert_eq!(a.events.iter().map(|e| (&e.event_id, e.kind)).collect::<Vec<_>>(), b.events.iter().map(|e| (&e.event_id, e.kind)).collect::<Vec<_>>());
            for p in &a.points {
                prop_assert!(p.distance_m >= last_distance);
                last_distance = p.distance_m;
            }
        }
    }
}

/// A batch the fuzzer found: `base_time_ms = i64::MAX` with a lap press and pauses. Times that
/// near the end of `i64` must not overflow anywhere in the pipeline (a debug build panics).
#[test]
fn times_at_the_end_of_the_clock_do_not_overflow() {
    const FOUND_BY_FUZZING: &str = "20000000545742311800400000003c00380028002700180010000c0008000400180000003c0000004c0000000c010000ffffffffffffff7f0300000074000000010000000000001000000000000000000000000000000007f8000000040100000200000000000000000000009336000001000000080000000008000066a3321616804cb7a02800004a4fffffffff0000e803000068a23216f27f4cb7a02800004a00ffffffff0000701700003b9e3216df824cb7642800004600ffffffff0000581b0000309e281654844cb7642800004700ffffffff000010270000f99a321631864cb73c2900004a50ffff00fff8002aff00008f9a321689864cb73c2800005050ffffffff0000e02e0000479a3216c3874cb73c2800005550ffffffff0000b0360000e198321681884cb73c2800005b50ffffffff000012000000707974686f6e2d666c617462756666657273000009000000702d2d757365722d320000000b0000000000000009006963652d3100";
    let bytes: Vec<u8> = (0..FOUND_BY_FUZZING.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&FOUND_BY_FUZZING[i..i + 2], 16).expect("hex"))
        .collect();
    let mut core = ShardCore::default();
    let first = core.process(1, &bytes);
    let second = core.process(2, &bytes);
    assert_eq!((first.lsn, second.lsn), (1, 2));
}

/// The server's idle-timeout record for the workout of this file, made when it had `batches`
/// batches, at the device's last instant `end_ms`.
fn idle_timeout(batches: u64, end_ms: i64) -> Vec<u8> {
    encode_batch(&trackwire_codec::idle_timeout_batch(ID, "athlete", "watch", Sport::Running, batches, end_ms))
}

#[test]
fn the_servers_idle_timeout_completes_a_silent_workout_as_of_its_last_sample() {
    let mut core = ShardCore::default();
    core.process(1, &batch(0, (0..5).map(|t| sample(t, 120)).collect(), vec![(0, ControlKind::Start)]));
    let before = core.process(2, &batch(1, (5..10).map(|t| sample(t, 121)).collect(), vec![])).summary.unwrap();
    assert_eq!(before.end_reason, None, "in progress: no end reason yet");

    let out = core.process(3, &idle_timeout(2, before.end_time_ms));
    assert_eq!(kinds(&out), [EventKind::WorkoutCompleted]);
    assert!(out.ended && out.points.is_empty());
    let summary = out.summary.unwrap();
    assert_eq!(summary.status, WorkoutStatus::Completed);
    assert_eq!(summary.end_reason, Some(trackwire_pipeline::EndReason::IdleTimeout));
    // Ended when the device fell silent; the device's counts are the device's.
    assert_eq!((summary.end_time_ms, summary.elapsed_s), (before.end_time_ms, before.elapsed_s));
    assert_eq!((summary.batches, summary.last_seq, summary.samples), (2, 1, 10));
    assert_eq!((summary.distance_m, summary.last_lsn), (before.distance_m, 3));
    let EventData::Completed { summary: completed, .. } = &out.events[0].data else { panic!("a completion") };
    assert_eq!(completed.end_reason, Some(trackwire_pipeline::EndReason::IdleTimeout));

    // Late data after it: ignored, as after a device's Complete.
    let late = core.process(4, &batch(2, (10..15).map(|t| sample(t, 122)).collect(), vec![]));
    assert!(late.summary.is_none() && late.events.is_empty());
    assert_eq!(late.not_applied, Some(NotApplied::AfterEnd));
}

#[test]
fn an_idle_timeout_decided_before_the_latest_batch_is_ignored() {
    let mut core = ShardCore::default();
    core.process(1, &batch(0, (0..5).map(|t| sample(t, 120)).collect(), vec![(0, ControlKind::Start)]));
    // The server decided after one batch, but the device's next batch was stored first.
    core.process(2, &batch(1, (5..10).map(|t| sample(t, 121)).collect(), vec![]));
    let stale = core.process(3, &idle_timeout(1, BASE + 4_000));
    assert!(stale.summary.is_none() && stale.events.is_empty() && !stale.ended);
    let next = core.process(4, &batch(2, (10..15).map(|t| sample(t, 122)).collect(), vec![]));
    let summary = next.summary.unwrap();
    assert_eq!((summary.status, summary.batches, summary.samples), (WorkoutStatus::Active, 3, 15));
}

#[test]
fn a_devices_complete_has_reason_device_and_its_timed_out_kind_means_nothing() {
    let mut core = ShardCore::default();
    // A device sending the server's kind in its own batch: ignored, the samples applied.
    let out = core.process(1, &batch(0, (0..5).map(|t| sample(t, 120)).collect(), vec![(4, ControlKind::TimedOut)]));
    let summary = out.summary.unwrap();
    assert_eq!((summary.status, summary.samples), (WorkoutStatus::Active, 5));
    let done = core.process(2, &batch(1, vec![], vec![(5, ControlKind::Complete)])).summary.unwrap();
    assert_eq!((done.status, done.end_reason), (WorkoutStatus::Completed, Some(trackwire_pipeline::EndReason::Device)));
}

#[test]
fn an_idle_timeout_for_a_workout_not_in_progress_starts_nothing() {
    let mut core = ShardCore::default();
    let out = core.process(1, &idle_timeout(0, BASE));
    assert!(out.summary.is_none() && out.events.is_empty());
    // The workout's real first batch still starts it.
    let first = core.process(2, &batch(0, (0..5).map(|t| sample(t, 120)).collect(), vec![]));
    assert_eq!(first.summary.unwrap().status, WorkoutStatus::Active);
}

/// The read store's memory of a workout that ended (records 1 to 3) before the core started.
#[derive(Debug)]
struct EndedBefore;

impl trackwire_pipeline::EndedWorkouts for EndedBefore {
    fn ended_span(&self, workout_id: &WorkoutId) -> Option<std::ops::RangeInclusive<u64>> {
        (*workout_id == ID).then_some(1..=3)
    }
}

/// The records of the workout [`EndedBefore`] remembers: start, one more, complete.
fn ended_workout() -> [Vec<u8>; 3] {
    [
        batch(0, vec![sample(0, 100)], vec![(0, ControlKind::Start)]),
        batch(1, vec![sample(5, 110)], vec![]),
        batch(2, vec![sample(10, 120)], vec![(10, ControlKind::Complete)]),
    ]
}

fn core_after_a_restart() -> ShardCore {
    ShardCore::default().with_history(Some(std::sync::Arc::new(EndedBefore)))
}

#[test]
fn a_workout_that_ended_before_a_restart_is_replayed_whole_or_not_at_all() {
    let records = ended_workout();
    // The log still holds its first record: the whole workout is replayed, as it was.
    let mut whole = core_after_a_restart();
    let outs: Vec<ShardOutput> = records.iter().zip(1..).map(|(record, lsn)| whole.process(lsn, record)).collect();
    assert!(outs[2].ended && outs.iter().all(|o| o.not_applied.is_none()), "{outs:?}");
    assert_eq!(outs[2].summary.as_ref().map(|s| s.samples), Some(3));

    // The log released its first record (the sinks hold the end): the rest of it, replayed, starts
    // nothing, and is no late data either.
    let mut fragment = core_after_a_restart();
    for (record, lsn) in records.iter().zip(1..).skip(1) {
        let out = fragment.process(lsn, record);
        assert!(out.summary.is_none() && out.events.is_empty() && out.points.is_empty(), "{out:?}");
        assert_eq!(out.not_applied, None);
    }
}

#[test]
fn a_batch_for_a_workout_that_ended_before_a_restart_is_late_data() {
    let mut core = core_after_a_restart();
    for (lsn, seq) in [(7, 3), (8, 0)] {
        let late = core.process(lsn, &batch(seq, vec![sample(20, 100)], vec![(20, ControlKind::Start)]));
        assert!(late.summary.is_none() && late.events.is_empty() && late.points.is_empty(), "{late:?}");
        assert_eq!(late.not_applied, Some(NotApplied::AfterEnd));
    }
    // Another workout is not affected.
    let other = another_workout();
    assert!(core.process(9, &other).summary.is_some());
}

/// A core that knows the deletions in `deletions`.
fn core_with(deletions: &std::sync::Arc<trackwire_pipeline::Deletions>) -> ShardCore {
    ShardCore::default().with_deletions(Some(deletions.clone()))
}

#[test]
fn a_workout_deleted_in_progress_takes_nothing_more_until_its_recording_starts_again() {
    let deletions = std::sync::Arc::new(trackwire_pipeline::Deletions::default());
    let mut core = core_with(&deletions);
    assert!(core.process(1, &batch(0, vec![sample(0, 100)], vec![(0, ControlKind::Start)])).summary.is_some());
    assert!(core.process(2, &batch(1, vec![sample(5, 110)], vec![])).summary.is_some());
    deletions.delete_through(ID, 2);

    // The watch does not know: its later batches, its Complete, and a retry of a deleted seq.
    for (lsn, seq, events) in [(3, 2, vec![]), (4, 3, vec![(20, ControlKind::Complete)]), (5, 1, vec![])] {
        let out = core.process(lsn, &batch(seq, vec![sample(15 + lsn as u32, 120)], events));
        assert!(out.summary.is_none() && out.events.is_empty() && out.points.is_empty(), "{out:?}");
        assert_eq!(out.not_applied, Some(NotApplied::Deleted));
    }
    // The same recording from its start again: a workout of its own samples only.
    let again = core.process(6, &batch(0, vec![sample(0, 100)], vec![(0, ControlKind::Start)]));
    assert_eq!(kinds(&again)[0], EventKind::WorkoutStarted);
    let summary = again.summary.expect("a new start is applied");
    assert_eq!((summary.samples, summary.first_lsn), (1, 6));
    assert_eq!(core.process(7, &batch(1, vec![sample(5, 110)], vec![])).summary.map(|s| s.samples), Some(2));
}

#[test]
fn a_deletion_known_before_replay_keeps_every_record_up_to_it_out_of_the_state() {
    // A restart: the deletion is known before the log replays the deleted workout.
    let deletions = std::sync::Arc::new(trackwire_pipeline::Deletions::default());
    deletions.delete_through(ID, 2);
    let mut core = core_with(&deletions);
    let records = [
        batch(0, vec![sample(0, 100)], vec![(0, ControlKind::Start)]),
        batch(1, vec![sample(5, 110)], vec![]),
        batch(2, vec![sample(10, 120)], vec![]),
    ];
    for (record, lsn) in records.iter().zip(1..) {
        assert_eq!(core.process(lsn, record).not_applied, Some(NotApplied::Deleted), "lsn {lsn}");
    }
    // Another workout is not affected.
    let other = another_workout();
    assert!(core.process(4, &other).summary.is_some());
}

#[test]
fn a_user_erased_while_recording_has_nothing_more_applied_but_a_new_workout_is() {
    let deletions = std::sync::Arc::new(trackwire_pipeline::Deletions::default());
    let mut core = core_with(&deletions);
    assert!(core.process(1, &batch(0, vec![sample(0, 100)], vec![(0, ControlKind::Start)])).summary.is_some());
    deletions.erase_user_through("athlete", 1);
    let on = core.process(2, &batch(1, vec![sample(5, 110)], vec![(5, ControlKind::Complete)]));
    assert!(on.summary.is_none() && on.events.is_empty() && on.points.is_empty(), "{on:?}");
    assert_eq!(on.not_applied, Some(NotApplied::Deleted));
    // The same user id starting a workout after the erasure: new data, applied.
    let new = encode_batch(&BatchData {
        device_id: "watch".into(),
        user_id: "athlete".into(),
        workout_id: WorkoutId([2; 16]),
        samples: vec![sample(0, 100)],
        events: vec![ControlEvent::new(0, ControlKind::Start)],
        ..BatchData::default()
    });
    assert_eq!(core.process(3, &new).summary.map(|s| s.first_lsn), Some(3));
}

/// One batch of another workout of the same athlete.
fn another_workout() -> Vec<u8> {
    encode_batch(&BatchData {
        device_id: "watch".into(),
        user_id: "athlete".into(),
        workout_id: WorkoutId([1; 16]),
        samples: vec![sample(0, 100)],
        ..BatchData::default()
    })
}

#[test]
fn a_late_batch_is_late_data_also_once_the_store_holds_the_end() {
    let records = ended_workout();
    let late = batch(3, vec![sample(20, 100)], vec![]);
    // With the store to ask, the core leaves the end to it once the store has committed it; without
    // one, it keeps the end itself.
    for mut core in [core_after_a_restart(), ShardCore::default()] {
        let outs: Vec<ShardOutput> = records.iter().zip(1..).map(|(record, lsn)| core.process(lsn, record)).collect();
        assert!(outs[2].ended, "{outs:?}");
        core.forget_ended_through(3);
        let out = core.process(7, &late);
        assert!(out.summary.is_none() && out.points.is_empty(), "{out:?}");
        assert_eq!(out.not_applied, Some(NotApplied::AfterEnd));
    }
}

/// The log keeps what a restart needs to rebuild a workout the read store does not hold as
/// ended: also one that has ended here but whose end the store has not committed yet (a crash
/// then would replay its end without its start, and store a fragment over it).
#[test]
fn the_log_keeps_a_workouts_first_record_until_the_store_holds_its_end() {
    let live = trackwire_pipeline::LiveWorkouts::default();
    let mut core = ShardCore::default();
    let outs: Vec<ShardOutput> =
        ended_workout().iter().zip(5..).map(|(record, lsn)| core.process(lsn, record)).collect();
    for out in &outs[..2] {
        live.update(out.summary.as_ref().expect("a summary for each batch"));
    }
    assert_eq!(live.oldest_needed_lsn(), Some(5), "in progress: its first record is needed");
    let ended = outs[2].summary.as_ref().expect("the end's summary");
    live.update(ended);
    assert_eq!(live.oldest_needed_lsn(), Some(5), "ended here, not yet in the store: still needed");
    live.stored(7, [ended.workout_id]);
    assert_eq!(live.oldest_needed_lsn(), None, "the store holds the end: nothing needed");
}
