//! The enrichment stages against hand-computed values and properties.
use proptest::prelude::*;
use trackwire_codec::{BatchData, ControlEvent, Sample, Sport, WorkoutId, encode_batch, missing};
use trackwire_pipeline::stages::{
    DEFAULT_SIGMA_M, GATE_SIGMAS, acsm_vo2, banister_weight, hr_max_from_age, keytel_kj_per_min, zone,
};
use trackwire_pipeline::{AthleteProfile, ShardCore, WorkoutSummary};

fn run(sport: Sport, samples: Vec<Sample>, batch_size: usize, profile: Option<AthleteProfile>) -> WorkoutSummary {
    let mut core = ShardCore::default();
    if let Some(p) = profile {
        core.set_profile("u", p);
    }
    let mut last = None;
    for (seq, chunk) in samples.chunks(batch_size.max(1)).enumerate() {
        let base = 1_700_000_000_000;
        let bytes = encode_batch(&BatchData {
            device_id: "d".into(),
            user_id: "u".into(),
            workout_id: WorkoutId([5; 16]),
            sport,
            seq: seq as u64,
            base_time_ms: base,
            samples: chunk.to_vec(),
            events: Vec::<ControlEvent>::new(),
            ..BatchData::default()
        });
        last = core.process(seq as u64 + 1, &bytes).summary.or(last);
    }
    last.unwrap()
}

fn fix(t_s: u32, lat_e7: i32, lon_e7: i32, alt_cm: i32, hr: u8) -> Sample {
    Sample::new(t_s * 1000, lat_e7, lon_e7, alt_cm, hr, missing::CADENCE, missing::POWER, missing::ACCURACY, 0)
}

#[test]
fn published_equations_give_hand_computed_values() {
    // Keytel 2005, male, HR 155, 75 kg, 32 y: −55.0969 + 97.7895 + 14.91 + 6.4544 = 64.0570 kJ/min.
    assert!((keytel_kj_per_min(155.0, 75.0, 32.0, true) - 64.057).abs() < 1e-3);
    assert_eq!(keytel_kj_per_min(40.0, 50.0, 20.0, true), 0.0, "rest never counts negative");
    assert_eq!(hr_max_from_age(40.0), 180.0);
    assert_eq!(
        (zone(89.0, 180.0), zone(90.0, 180.0), zone(126.0, 180.0), zone(171.0, 180.0), zone(200.0, 180.0)),
        (0, 1, 3, 5, 5)
    );
    assert!((banister_weight(1.0, true) - 0.64 * 1.92f64.exp()).abs() < 1e-12);
    assert_eq!(acsm_vo2(Sport::Running, 100.0), Some(23.5));
    assert_eq!(acsm_vo2(Sport::Cycling, 100.0), None);
}

#[test]
fn elevation_noise_inside_the_hysteresis_adds_nothing() {
    // ±1 m of noise: 2 m swings, under the 3 m hysteresis.
    let noisy: Vec<Sample> = (0..100)
        .map(|t| fix(t, 470_000_000 + t as i32 * 100, 80_000_000, 100_000 + if t % 2 == 0 { 100 } else { -100 }, 0))
        .collect();
    let s = run(Sport::Running, noisy, 1000, None);
    assert_eq!((s.elevation_gain_m, s.elevation_loss_m), (Some(0.0), Some(0.0)));
    let climb: Vec<Sample> =
        (0..100).map(|t| fix(t, 470_000_000 + t as i32 * 100, 80_000_000, 100_000 + t as i32 * 50, 0)).collect();
    let s = run(Sport::Running, climb, 1000, None);
    assert!((s.elevation_gain_m.unwrap() - 48.0).abs() < 3.0, "{:?}", s.elevation_gain_m);
}

#[test]
fn cleaning_drops_altitude_spikes_and_barometric_altitude_wins() {
    // Flat at 100 m with a 3 s jump to 187 m (the fēnix 2's start): the jump is dropped.
    let mut samples: Vec<Sample> =
        (0..60).map(|t| fix(t, 470_000_000 + t as i32 * 100, 80_000_000, 10_000, 0)).collect();
    for (t, sample) in samples.iter_mut().enumerate().take(5).skip(2) {
        *sample = fix(t as u32, 470_000_000 + t as i32 * 100, 80_000_000, 18_700, 0);
    }
    let s = run(Sport::Running, samples, 1000, None);
    assert_eq!((s.rejected_altitudes, s.elevation_gain_m), (3, Some(0.0)));
    // GPS altitude says +18 m, the barometer (flagged) says flat: the barometer wins.
    let samples: Vec<Sample> = (0..60)
        .map(|t| {
            let (alt, flags) = if t % 2 == 0 { (5_000 + t as i32 * 30, 0) } else { (5_000, 1) };
            let lat = 470_000_000 + t as i32 * 100;
            Sample::new(t * 1000, lat, 80_000_000, alt, 0, missing::CADENCE, missing::POWER, missing::ACCURACY, flags)
        })
        .collect();
    let s = run(Sport::Running, samples, 1000, None);
    assert_eq!(s.elevation_gain_m, Some(0.0));
}

/// A fix `t` seconds in, 3.3 m per second north, with altitude in cm and the barometric flag.
fn baro(t: u32, alt_cm: i32, barometric: bool) -> Sample {
    let flags = if barometric { trackwire_codec::SampleFlags::BarometricAltitude.bits() } else { 0 };
    let lat = 470_000_000 + t as i32 * 300;
    Sample::new(t * 1000, lat, 80_000_000, alt_cm, 0, missing::CADENCE, missing::POWER, missing::ACCURACY, flags)
}

#[test]
fn a_barometer_counts_small_real_climbs_that_gps_altitude_does_not() {
    // Rolling terrain: up 2.5 m over 10 s, down again, ten times. A barometer resolves such
    // climbs; GPS altitude wanders by as much, so its 3 m hysteresis ignores them.
    let rolling = |barometric: bool| -> Vec<Sample> {
        (0..200)
            .map(|t| {
                let phase = (t % 20) as i32;
                let alt_cm = 10_000 + if phase <= 10 { phase * 25 } else { (20 - phase) * 25 };
                baro(t, alt_cm, barometric)
            })
            .collect()
    };
    let s = run(Sport::Cycling, rolling(true), 1000, None);
    // Each climb counts from where it passes the 2.25 m threshold on: between 20 and 25 m in all.
    let gain = s.elevation_gain_m.unwrap();
    assert!((20.0..=25.0).contains(&gain), "barometric: {gain}");
    let s = run(Sport::Cycling, rolling(false), 1000, None);
    assert_eq!(s.elevation_gain_m, Some(0.0), "GPS altitude");
}

#[test]
fn grade_is_measured_on_the_series_the_ascent_counts() {
    // A steady 5 % barometric climb with every fourth sample a GPS altitude 15 m higher (an even-
    // numbered one, so it lands in grade's window): ascent
    // ignores the GPS altitudes, and so must grade, or it swings by ±30 %.
    let samples: Vec<Sample> = (0..100)
        .map(|t| {
            let climb_cm = (t as f64 * 3.336 * 5.0) as i32; // 5 % of 3.336 m per second, in cm
            if t % 4 == 2 { baro(t, 10_000 + climb_cm + 1_500, false) } else { baro(t, 10_000 + climb_cm, true) }
        })
        .collect();
    let mut core = ShardCore::default();
    let bytes = encode_batch(&BatchData {
        device_id: "d".into(),
        user_id: "u".into(),
        workout_id: WorkoutId([8; 16]),
        sport: Sport::Cycling,
        base_time_ms: 1_700_000_000_000,
        samples,
        ..BatchData::default()
    });
    let points = core.process(1, &bytes).points;
    for i in (20..100).filter(|i| i % 4 != 2) {
        let grade = points.grade_pct[i].unwrap();
        assert!((grade - 5.0).abs() < 0.5, "sample {i}: grade {grade} %");
    }
}

#[test]
fn cleaning_drops_null_island_and_teleports_but_reanchors_on_a_bad_first_fix() {
    // (0,0) twice, then a real track: the (0,0) fixes are dropped, nothing else.
    let mut samples = vec![fix(0, 0, 0, 0, 0), fix(1, 0, 0, 0, 0)];
    samples.extend((2..60).map(|t| fix(t, 470_000_000 + t as i32 * 300, 80_000_000, 0, 0)));
    let s = run(Sport::Running, samples, 1000, None);
    assert_eq!(s.rejected_fixes, 2);
    assert!((s.distance_m - 57.0 * 3.336).abs() < 1.0, "{}", s.distance_m);
    // A single teleport in the middle of a run is dropped.
    let mut samples: Vec<Sample> = (0..60).map(|t| fix(t, 470_000_000 + t as i32 * 300, 80_000_000, 0, 0)).collect();
    samples[30] = fix(30, 480_000_000, 80_000_000, 0, 0);
    assert_eq!(run(Sport::Running, samples, 1000, None).rejected_fixes, 1);
    // A wrong first fix 100 km away: after 5 agreeing rejections the real track wins.
    let mut samples = vec![fix(0, 460_000_000, 80_000_000, 0, 0)];
    samples.extend((1..60).map(|t| fix(t, 470_000_000 + t as i32 * 300, 80_000_000, 0, 0)));
    let s = run(Sport::Running, samples, 1000, None);
    assert_eq!(s.rejected_fixes, 4);
}

#[test]
fn calories_follow_the_best_available_method() {
    let track = |hr: u8| -> Vec<Sample> {
        (0..=600).map(|t| fix(t, 470_000_000 + t as i32 * 270, 80_000_000, 0, hr)).collect()
    };
    let athlete = AthleteProfile {
        weight_kg: Some(75.0),
        age_years: Some(32.0),
        male: Some(true),
        hr_max_bpm: Some(185.0),
        hr_rest_bpm: Some(60.0),
    };
    // With resting HR: VO2max = 15.3 × 185/60 = 47.175 (Uth 2004); Keytel's fitness equation:
    // −95.7735 + 98.27 + 19.0587 + 29.55 + 8.672 = 59.7772 kJ/min.
    let s = run(Sport::Running, track(155), 100, Some(athlete.clone()));
    assert_eq!(s.calories_method.as_deref(), Some("keytel2005_vo2max"));
    assert!((s.calories_kcal.unwrap() - 59.7772 * 10.0 / 4.184).abs() < 0.5, "{:?}", s.calories_kcal);
    assert!(s.trimp_edwards.unwrap() > 0.0 && s.trimp_banister.unwrap() > 0.0);
    assert_eq!(s.hr_zone_seconds.unwrap()[3], 600.0, "155/185 = 84 %: zone 4 for all 600 s");
    let without_rest = AthleteProfile { hr_rest_bpm: None, ..athlete.clone() };
    let s = run(Sport::Running, track(155), 100, Some(without_rest));
    assert_eq!(s.calories_method.as_deref(), Some("keytel2005"));
    assert!((s.calories_kcal.unwrap() - 64.057 * 10.0 / 4.184).abs() < 0.5, "{:?}", s.calories_kcal);
    let s =
        run(Sport::Running, track(0), 100, Some(AthleteProfile { weight_kg: Some(70.0), ..AthleteProfile::default() }));
    assert_eq!(s.calories_method.as_deref(), Some("acsm"));
    let s = run(Sport::Running, track(0), 100, None);
    assert_eq!(s.calories_kcal, None, "no weight, no calories");
}

#[test]
fn kilometre_splits_and_grade() {
    // 2.5 km north at ~3.34 m/s (300e-7° of latitude per second), climbing 0.5 m per second.
    let samples: Vec<Sample> =
        (0..=750).map(|t| fix(t, 470_000_000 + t as i32 * 300, 80_000_000, 100_000 + t as i32 * 50, 150)).collect();
    let s = run(Sport::Running, samples, 200, None);
    assert_eq!(s.splits.len(), 3, "{:?}", s.splits);
    assert_eq!((s.splits[0].km, s.splits[2].km), (1, 3));
    assert!((s.splits[0].distance_m - 1000.0).abs() < 1e-9 && (s.splits[1].distance_m - 1000.0).abs() < 1e-9);
    let pace = s.splits[0].pace_s_per_km.unwrap();
    assert!((pace - 1000.0 / 3.336).abs() < 2.0, "{pace}");
    assert!((s.splits[2].distance_m - (s.distance_m - 2000.0)).abs() < 1e-6);
    assert_eq!(s.splits[1].heart_rate_avg_bpm, Some(150.0));

    let mut core = ShardCore::default();
    let bytes = encode_batch(&BatchData {
        device_id: "d".into(),
        user_id: "u".into(),
        workout_id: WorkoutId([7; 16]),
        sport: Sport::Running,
        base_time_ms: 1_700_000_000_000,
        samples: (0..100)
            .map(|t| fix(t, 470_000_000 + t as i32 * 300, 80_000_000, 100_000 + t as i32 * 50, 0))
            .collect(),
        ..BatchData::default()
    });
    let points = core.process(1, &bytes).points;
    assert_eq!(points.grade_pct[5], None, "under 50 m");
    let grade = points.grade_pct[60].unwrap();
    assert!((grade - 0.5 / 3.336 * 100.0).abs() < 0.5, "{grade}");
}

proptest! {
    /// Smoothing never moves a point farther from its raw fix than the gate allows (5σ per axis).
    #[test]
    fn smoothing_stays_within_the_gate_of_the_raw_fix(steps in proptest::collection::vec((-3000i32..3000, -3000i32..3000, 1u32..30), 2..150)) {
        let mut core = ShardCore::default();
        let (mut lat, mut lon, mut t) = (470_000_000i32, 80_000_000i32, 0u32);
        let samples: Vec<Sample> = steps.iter().map(|(dlat, dlon, dt)| {
            lat += dlat;
            lon += dlon;
            t += dt;
            fix(t, lat, lon, 0, 0)
        }).collect();
        let bytes = encode_batch(&BatchData { device_id: "d".into(), user_id: "u".into(), workout_id: WorkoutId([6; 16]), sport: Sport::Other, base_time_ms: 1_700_000_000_000, samples, ..BatchData::default() });
        let bound = GATE_SIGMAS * DEFAULT_SIGMA_M * std::f64::consts::SQRT_2 + 1e-6;
        for p in core.process(1, &bytes).points {
            let (Some(lat), Some(lon), Some(slat), Some(slon)) = (p.lat_deg, p.lon_deg, p.smoothed_lat, p.smoothed_lon) else { continue };
            let moved = trackwire_pipeline::geodesy::local_distance_m(lat, lon, slat, slon);
            prop_assert!(moved <= bound, "moved {moved} m > {bound} m");
        }
    }

    /// Distance is non-negative and the same however the samples are split into batches.
    #[test]
    fn distance_is_additive_over_batch_splits(steps in proptest::collection::vec((-500i32..500, -500i32..500), 2..200), split in 1usize..50) {
        let mut lat = 470_000_000;
        let mut lon = 80_000_000;
        let samples: Vec<Sample> = steps.iter().enumerate().map(|(t, (dlat, dlon))| {
            lat += dlat;
            lon += dlon;
            fix(t as u32, lat, lon, 0, 0)
        }).collect();
        let whole = run(Sport::Cycling, samples.clone(), samples.len(), None);
        let split = run(Sport::Cycling, samples, split, None);
        prop_assert!(whole.distance_m >= 0.0);
        prop_assert!((whole.distance_m - split.distance_m).abs() < 1e-6);
        prop_assert_eq!(whole.moving_time_s, split.moving_time_s);
    }
}

fn run_with_events(sport: Sport, samples: Vec<Sample>, events: Vec<ControlEvent>) -> WorkoutSummary {
    let bytes = encode_batch(&BatchData {
        device_id: "d".into(),
        user_id: "u".into(),
        workout_id: WorkoutId([6; 16]),
        sport,
        base_time_ms: 1_700_000_000_000,
        samples,
        events,
        ..BatchData::default()
    });
    ShardCore::default().process(1, &bytes).summary.expect("a summary")
}

/// 3.336 m north per second at 47° N (300 × 1e-7°).
const STEP_E7: i32 = 300;

#[test]
fn standing_still_with_a_wandering_fix_adds_no_distance() {
    // Ten minutes at a trailhead, the fix wandering within a metre (±9e-6° ≈ 1 m): the sum of
    // the 1 s steps is ~600 m; none of it was walked.
    let samples = (0..600).map(|t| fix(t, 470_000_000 + [0, 90, 45, -30][t as usize % 4], 80_000_000, 0, 0)).collect();
    let s = run(Sport::Hiking, samples, 1000, None);
    assert!(s.distance_m < 3.0, "{}", s.distance_m);
}

#[test]
fn a_fix_found_after_the_resume_counts_the_way_since_if_it_could_have_been_covered() {
    use trackwire_codec::ControlKind;
    let at = |t: u32| 470_000_000 + t as i32 * STEP_E7;
    let events = || {
        vec![
            ControlEvent::new(0, ControlKind::Start),
            ControlEvent::new(10_000, ControlKind::Pause),
            ControlEvent::new(70_000, ControlKind::Resume),
        ]
    };
    // Ran 10 s, stopped for a minute, resumed and found the fix 30 s later, 100 m on (a ride out
    // of a tunnel): the 30 s after the resume were run.
    let mut samples: Vec<Sample> = (0..=10).map(|t| fix(t, at(t), 80_000_000, 0, 0)).collect();
    samples.extend((11..70).map(|t| fix(t, at(10), 80_000_000, 0, 0)));
    samples.extend((70..100).map(|t| fix(t, missing::COORDINATE, missing::COORDINATE, 0, 0)));
    samples.extend((100..=120).map(|t| fix(t, at(10 + t - 70), 80_000_000, 0, 0)));
    let s = run_with_events(Sport::Running, samples.clone(), events());
    assert!((s.distance_m - 60.0 * 3.336).abs() < 1.5, "{}", s.distance_m);
    // The first fix 3 s after the resume is 405 m away: no runner covers that in 3 s, so the
    // watch was carried while paused (the COROS PACE 2 trace). Cleaning holds the new track back
    // until five fixes agree (four rejected); the chord to the first accepted one, 7 s after the
    // resume, is still too long to have been run, so only the 43 steps from there count.
    let mut carried: Vec<Sample> = samples[..=72].to_vec();
    carried.extend((73..=120).map(|t| fix(t, at(10) + 121 * STEP_E7 + (t as i32 - 73) * STEP_E7, 80_000_000, 0, 0)));
    let s = run_with_events(Sport::Running, carried, events());
    assert_eq!(s.rejected_fixes, 4);
    assert!((s.distance_m - (10.0 + 43.0) * 3.336).abs() < 1.5, "{}", s.distance_m);
}
