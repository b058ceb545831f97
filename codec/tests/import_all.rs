//! Every recorded trace beside the project imports without panicking, and the messy ones are
//! handled the way ../shared/traces/SOURCES.md describes.
use std::path::PathBuf;

use trackwire_codec::import::{Format, Imported, import_bytes};
use trackwire_codec::{DecodeLimits, WorkoutId, decode_batch, encode_batch};

fn traces() -> PathBuf {
    std::env::var_os("TRACKWIRE_TRACES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/traces"))
}

fn import(name: &str) -> Imported {
    let bytes = std::fs::read(traces().join(name)).unwrap_or_else(|e| panic!("{name}: {e} (set TRACKWIRE_TRACES)"));
    import_bytes(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn every_trace_imports_and_round_trips_through_the_wire() {
    let mut seen = 0;
    for entry in std::fs::read_dir(traces()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !matches!(path.extension().and_then(|e| e.to_str()), Some("gpx" | "tcx" | "fit")) {
            continue;
        }
        let imported = import(&name);
        assert!(!imported.fixes.is_empty(), "{name}: no fixes");
        let batches = imported.to_batches(WorkoutId([1; 16]), "device", "user", 500);
        let samples: usize = batches.iter().map(|b| b.samples.len()).sum();
        assert_eq!(samples, imported.fixes.len(), "{name}: every fix becomes a sample");
        for batch in &batches {
            let bytes = encode_batch(batch);
            decode_batch(&bytes, &DecodeLimits::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        seen += 1;
    }
    assert_eq!(seen, 20, "all 20 recorded activity files of SOURCES.md (the 21st is the CSV)");
}

#[test]
fn sample_counts_match_sources_md() {
    for (name, format, count) in [
        ("sportslib__runs_2067489619.fit", Format::Fit, 503),
        ("sportslib__runs_2067489619.gpx", Format::Gpx, 502),
        ("sportslib__rides_3939576645.fit", Format::Fit, 2547),
        ("sportslib__rides_3939576645.gpx", Format::Gpx, 2547),
        ("sportslib__rides_6791039036.tcx", Format::Tcx, 2547),
        ("georust-gpx__garmin-activity.gpx", Format::Gpx, 988),
        ("fitparse__activity-small-fenix2-run.fit", Format::Fit, 2809),
        ("fitparse__garmin-edge-500-activity.fit", Format::Fit, 10686),
        ("goldencheetah__10kUNLP2014-Garmin15.tcx", Format::Tcx, 686),
        ("gpsbabel__history.tcx", Format::Tcx, 1205),
        ("gpxpy__korita-zbevnica.gpx", Format::Gpx, 871),
        ("gpxpy__Mojstrovka.gpx", Format::Gpx, 184),
        ("fittrackee__example.fit", Format::Fit, 25),
        ("fittrackee__gpx_file_fixture.gpx", Format::Gpx, 25),
    ] {
        let imported = import(name);
        assert_eq!((imported.format, imported.fixes.len()), (format, count), "{name}");
    }
}

#[test]
fn messy_files_are_handled_and_reported() {
    let mojstrovka = import("gpxpy__Mojstrovka.gpx");
    assert!(mojstrovka.fixes.iter().all(|f| f.time_ms.is_none()), "1901 placeholder times are dropped");
    assert!(mojstrovka.warnings.iter().any(|w| w.contains("before 1990")), "{:?}", mojstrovka.warnings);

    let korita = import("gpxpy__korita-zbevnica.gpx");
    assert!(korita.warnings.iter().any(|w| w.contains("empty track segment")), "{:?}", korita.warnings);
    assert!(korita.warnings.iter().any(|w| w.contains("no time")), "{:?}", korita.warnings);

    let history = import("gpsbabel__history.tcx");
    assert_eq!(history.fixes.iter().filter(|f| f.lat.is_none()).count(), 3, "3 trackpoints without position kept");
    assert_eq!(history.device.distance_m.map(|d| d.round()), Some(56818.0));

    let race = import("goldencheetah__10kUNLP2014-Garmin15.tcx");
    assert_eq!(race.device.distance_m.map(|d| (d * 100.0).round() / 100.0), Some(10010.82), "sum of 11 laps");

    let run = import("sportslib__runs_2067489619.fit");
    assert_eq!(run.device.distance_m, Some(4489.39));
    assert_eq!(
        run.events.iter().filter(|(_, k)| *k == trackwire_codec::ControlKind::Pause).count(),
        2,
        "2 timer stops"
    );
    assert!(run.profile.is_some());

    let garbage = import_bytes(b"definitely not a workout file");
    assert!(garbage.unwrap_err().to_string().contains("not a GPX, TCX or FIT file"));
    let bytes = std::fs::read(traces().join("fittrackee__apple_watch.fit")).unwrap();
    let truncated = import_bytes(&bytes[..bytes.len() * 2 / 3]).expect("a truncated FIT keeps what decoded");
    assert!(truncated.warnings.iter().any(|w| w.contains("damaged")), "{:?}", truncated.warnings);

    // A FIT header whose size byte claims more than the file holds (fitparser 0.11 panicked on
    // it; found by the import_file fuzz target): refused with a clear error, and after a whole
    // file it ends the import with a warning.
    let lying = b"<?xm ver.FIT=\"1.0\" en?>\ng=\xa2UTF-1\"?>";
    let refused = import_bytes(lying).unwrap_err().to_string();
    assert!(refused.contains("FIT header claims 60 bytes but 35 remain"), "{refused}");
    let chained = [&bytes[..], &lying[..]].concat();
    let kept = import_bytes(&chained).expect("the whole file before the bad header is kept");
    assert_eq!(kept.fixes.len(), import_bytes(&bytes).unwrap().fixes.len());
    assert!(kept.warnings.iter().any(|w| w.contains("FIT header claims")), "{:?}", kept.warnings);
}

#[test]
fn device_totals_travel_with_the_last_batch() {
    let imported = import("fitparse__garmin-edge-500-activity.fit");
    let batches = imported.to_batches(WorkoutId([2; 16]), "d", "u", 1000);
    let (last, rest) = batches.split_last().unwrap();
    assert!(rest.iter().all(|b| b.device_totals.is_none()));
    let bytes = encode_batch(last);
    let view = decode_batch(&bytes, &DecodeLimits::default()).unwrap();
    assert_eq!(view.device_totals().as_ref(), Some(&imported.device));
    assert_eq!(imported.device.distance_m, Some(92622.34));
}

#[test]
fn every_timer_event_lands_in_exactly_one_batch() {
    for name in
        ["fitparse__garmin-edge-500-activity.fit", "sportslib__rides_3939576645.fit", "gpxpy__korita-zbevnica.gpx"]
    {
        let imported = import(name);
        for size in [1, 7, 100, 1000] {
            let batches = imported.to_batches(WorkoutId([4; 16]), "d", "u", size);
            let sent: usize = batches.iter().map(|b| b.events.len()).sum();
            // Every recorded event once, plus the final Complete.
            assert_eq!(sent, imported.events.len() + 1, "{name} in batches of {size}");
        }
    }
}

/// A file of more points than any recording holds is refused, and the reader stops at the bound
/// instead of first taking in the whole file (about 120 bytes per point held).
#[test]
fn a_file_of_more_points_than_any_recording_is_refused() {
    use trackwire_codec::import::{ImportError, MAX_POINTS};
    let point = "<trkpt lat=\"1\" lon=\"1\"/>";
    let gpx = format!("<gpx version=\"1.1\"><trk><trkseg>{}</trkseg></trk></gpx>", point.repeat(MAX_POINTS + 1));
    let err = import_bytes(gpx.as_bytes()).unwrap_err();
    assert!(matches!(err, ImportError::TooManyPoints { format: Format::Gpx, max: MAX_POINTS }), "{err}");
    assert!(err.to_string().contains("split it"), "{err}");
    let just_enough = format!("<gpx version=\"1.1\"><trk><trkseg>{}</trkseg></trk></gpx>", point.repeat(MAX_POINTS));
    assert_eq!(import_bytes(just_enough.as_bytes()).unwrap().fixes.len(), MAX_POINTS);

    let trackpoint = "<Trackpoint><Position><LatitudeDegrees>1</LatitudeDegrees><LongitudeDegrees>1</LongitudeDegrees></Position></Trackpoint>";
    let tcx = format!(
        "<TrainingCenterDatabase><Activities><Activity Sport=\"Running\"><Lap><Track>{}</Track></Lap></Activity></Activities></TrainingCenterDatabase>",
        trackpoint.repeat(MAX_POINTS + 1)
    );
    let err = import_bytes(tcx.as_bytes()).unwrap_err();
    assert!(matches!(err, ImportError::TooManyPoints { format: Format::Tcx, .. }), "{err}");
}

/// Altitude from a device with a barometer is flagged so: the pipeline counts its ascent with a
/// barometer's threshold. A GPS-only watch's altitude is not.
#[test]
fn altitude_from_a_device_with_a_barometer_is_flagged_barometric() {
    let flagged = |file: &str| -> (usize, usize) {
        let bytes = std::fs::read(traces().join(file)).expect("read ../shared/traces (set TRACKWIRE_TRACES)");
        let imported = trackwire_codec::import::import_bytes(&bytes).unwrap();
        let batches = imported.to_batches(trackwire_codec::WorkoutId([1; 16]), "d", "u", 1000);
        let samples: Vec<_> = batches.iter().flat_map(|b| b.samples.iter()).collect();
        let with_altitude = samples.iter().filter(|s| s.altitude_cm() != trackwire_codec::missing::ALTITUDE);
        let barometric = trackwire_codec::SampleFlags::BarometricAltitude.bits();
        (with_altitude.clone().filter(|s| s.flags() & barometric != 0).count(), with_altitude.count())
    };
    for file in [
        "fitparse__garmin-edge-500-activity.fit",
        "fitparse__activity-small-fenix2-run.fit",
        "sportslib__rides_3939576645.fit",
        "sportslib__rides_6791039036.tcx",
        "gpsbabel__history.tcx",
    ] {
        let (barometric, with_altitude) = flagged(file);
        assert!(with_altitude > 0 && barometric == with_altitude, "{file}: {barometric} of {with_altitude} flagged");
    }
    for file in ["fitparse__2013-02-06-12-11-14.fit", "sportslib__rides_3939576645.gpx"] {
        assert_eq!(flagged(file).0, 0, "{file}: a GPS-only watch, or a file that does not say which device");
    }
}
