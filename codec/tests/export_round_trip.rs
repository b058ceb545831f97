//! What the writers write, the importers read back: every recorded trace, exported as GPX and as
//! TCX and imported again, keeps its points (to the formats' precision), its sport and its laps.
use std::path::PathBuf;

use trackwire_codec::ControlKind;
use trackwire_codec::export::{LapSpan, Recording, gpx, tcx};
use trackwire_codec::import::{Fix, Format, import_bytes};

fn traces() -> PathBuf {
    std::env::var_os("TRACKWIRE_TRACES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/traces"))
}

fn close(a: Option<f64>, b: Option<f64>, tolerance: f64) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() <= tolerance,
        (None, None) => true,
        _ => false,
    }
}

fn same_point(a: &Fix, b: &Fix) -> bool {
    a.time_ms == b.time_ms
        && close(a.lat, b.lat, 1e-7)
        && close(a.lon, b.lon, 1e-7)
        && close(a.altitude_m, b.altitude_m, 0.005)
        && a.heart_rate == b.heart_rate
        && a.cadence == b.cadence
}

#[test]
fn every_trace_survives_a_round_trip_through_gpx_and_tcx() {
    let mut seen = 0;
    for entry in std::fs::read_dir(traces()).expect("read ../shared/traces (set TRACKWIRE_TRACES)") {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !matches!(path.extension().and_then(|e| e.to_str()), Some("gpx" | "tcx" | "fit")) {
            continue;
        }
        let original = import_bytes(&std::fs::read(&path).unwrap()).unwrap();
        let recording =
            Recording { sport: original.sport, name: &name, fixes: &original.fixes, laps: &[], pauses: &[] };

        let from_gpx = import_bytes(&gpx(&recording)).unwrap_or_else(|e| panic!("{name} as GPX: {e}"));
        assert_eq!(from_gpx.format, Format::Gpx);
        let positioned: Vec<&Fix> = original.fixes.iter().filter(|f| f.lat.is_some() && f.lon.is_some()).collect();
        assert_eq!(from_gpx.fixes.len(), positioned.len(), "{name}: GPX keeps every point with a position");
        for (i, (a, b)) in positioned.iter().zip(&from_gpx.fixes).enumerate() {
            assert!(same_point(a, b), "{name} GPX point {i}: {a:?} became {b:?}");
        }
        if !matches!(original.sport, trackwire_codec::Sport::Unknown) {
            assert_eq!(from_gpx.sport, original.sport, "{name}");
        }

        let from_tcx = import_bytes(&tcx(&recording)).unwrap_or_else(|e| panic!("{name} as TCX: {e}"));
        assert_eq!(from_tcx.fixes.len(), original.fixes.len(), "{name}: TCX keeps every point");
        for (i, (a, b)) in original.fixes.iter().zip(&from_tcx.fixes).enumerate() {
            assert!(same_point(a, b), "{name} TCX point {i}: {a:?} became {b:?}");
        }
        seen += 1;
    }
    assert_eq!(seen, 20);
}

#[test]
fn tcx_laps_come_back_as_lap_ends() {
    let fixes: Vec<Fix> = (0..600)
        .map(|i| Fix {
            time_ms: Some(1_780_000_000_000 + i * 1000),
            lat: Some(46.0 + i as f64 * 3e-5),
            lon: Some(14.5),
            ..Fix::default()
        })
        .collect();
    let t = |s: i64| 1_780_000_000_000 + s * 1000;
    let laps = [
        LapSpan { start_ms: t(0), end_ms: t(199), distance_m: 660.0 },
        LapSpan { start_ms: t(199), end_ms: t(399), distance_m: 667.0 },
        LapSpan { start_ms: t(399), end_ms: t(599), distance_m: 667.0 },
    ];
    let recording =
        Recording { sport: trackwire_codec::Sport::Running, name: "laps", fixes: &fixes, laps: &laps, pauses: &[] };
    let back = import_bytes(&tcx(&recording)).unwrap();
    let ends: Vec<i64> = back.events.iter().filter(|(_, k)| *k == ControlKind::Lap).map(|(t, _)| *t).collect();
    assert_eq!(ends, [t(199), t(399), t(599)]);
    assert_eq!(back.device.distance_m, Some(1994.0), "the laps' distances are the file's totals");
    assert_eq!(back.fixes.len(), 600);
}
