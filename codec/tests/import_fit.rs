//! FIT decoding equals, record by record, python-fitparse's published decode of the same file.
use std::path::PathBuf;

use trackwire_codec::import::{Format, import_bytes};

fn traces() -> PathBuf {
    std::env::var_os("TRACKWIRE_TRACES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/traces"))
}

/// Degrees per semicircle (FIT SDK).
const DEG_PER_SC: f64 = 180.0 / 2_147_483_648.0;

/// "Sun Sep 25 06:00:22 PDT 2011" → Unix ms (the CSV was written in US Pacific time).
fn csv_time(text: &str) -> i64 {
    let parts: Vec<&str> = text.split_whitespace().collect();
    let offset = match parts[4] {
        "PDT" => "-07:00",
        "PST" => "-08:00",
        other => panic!("unexpected zone {other}"),
    };
    let stamp = format!("{} {} {} {} {}", parts[5], parts[1], parts[2], parts[3], offset);
    chrono::DateTime::parse_from_str(&stamp, "%Y %b %d %H:%M:%S %:z").unwrap().timestamp_millis()
}

#[test]
fn edge_500_records_equal_the_reference_csv() {
    let dir = traces();
    let bytes = std::fs::read(dir.join("fitparse__garmin-edge-500-activity.fit"))
        .expect("read ../shared/traces (set TRACKWIRE_TRACES)");
    let imported = import_bytes(&bytes).unwrap();
    assert_eq!(imported.format, Format::Fit);
    let csv = std::fs::read_to_string(dir.join("fitparse__garmin-edge-500-activity-records.csv")).unwrap();
    let rows: Vec<Vec<&str>> = csv.lines().skip(1).map(|l| l.split(',').collect()).collect();
    assert_eq!(imported.fixes.len(), rows.len(), "one fix per record");
    // The CSV was written by the ANT FIT SDK dump tool, which logs invalid values badly; python-
    // fitparse's own test (tests/test.py, `_csv_test_helper`) applies exactly these two fixups:
    // an invalid cadence is logged as 0, an invalid position as the last valid one.
    let (mut last_lat, mut last_lon) = (None, None);
    for (i, (fix, row)) in imported.fixes.iter().zip(&rows).enumerate() {
        let num = |c: usize| (!row[c].is_empty()).then(|| row[c].parse::<f64>().unwrap());
        let lat = fix.lat.map(|d| (d / DEG_PER_SC).round()).or(last_lat);
        let lon = fix.lon.map(|d| (d / DEG_PER_SC).round()).or(last_lon);
        (last_lat, last_lon) = (lat, lon);
        let cadence = fix.cadence.map(f64::from).or(if row[2] == "0" { Some(0.0) } else { None });
        assert_eq!(fix.time_ms, Some(csv_time(row[0])), "record {i} timestamp");
        assert_eq!(fix.heart_rate.map(f64::from), num(1), "record {i} heart_rate");
        assert_eq!(cadence, num(2), "record {i} cadence");
        assert_eq!(fix.device_speed_mps.map(|v| (v * 1000.0).round() / 1000.0), num(3), "record {i} speed");
        assert_eq!(fix.device_distance_m.map(|v| (v * 100.0).round() / 100.0), num(4), "record {i} distance");
        assert_eq!(lat, num(5), "record {i} position_lat");
        assert_eq!(lon, num(6), "record {i} position_long");
        assert_eq!(fix.altitude_m.map(|v| (v * 10.0).round() / 10.0), num(7), "record {i} altitude");
    }
    let d = &imported.device;
    assert_eq!((d.distance_m, d.timer_s.map(|t| t.round())), (Some(92622.34), Some(10641.0)));
}
