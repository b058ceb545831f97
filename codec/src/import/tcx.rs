//! TCX (Garmin Training Center): activity sport, laps (their totals are the device's, their ends
//! lap presses), tracks (a second track in a lap follows a pause), track points with heart rate,
//! cadence and device distance.

use super::xml::{Node, walk};
use super::{DeviceTotals, Fix, Format, ImportError, Imported};
use crate::ControlKind;

pub(super) fn import(bytes: &[u8]) -> Result<Imported, ImportError> {
    let mut imported = Imported::empty(Format::Tcx);
    let mut current: Option<Fix> = None;
    let (mut lap_time, mut lap_distance, mut lap_calories, mut max_speed) = (0.0, 0.0, 0.0, 0.0f64);
    let (mut hr_weighted, mut laps) = (0.0, 0);
    let mut lap_hr: Option<f64> = None;
    let mut lap_seconds = 0.0;
    // Where a second or later track of a lap begins: the timer was paused there (a lap's first
    // track is just the lap's).
    let (mut pause_cuts, mut first_track_of_lap) = (Vec::new(), true);
    walk(bytes, |stack, node| {
        let parent = stack.len().checked_sub(2).map(|i| stack[i].as_str());
        match node {
            Node::Open { name: "Activity", attributes } => {
                if let Some((_, sport)) = attributes.into_iter().find(|(k, _)| k == "Sport") {
                    imported.sport = super::gpx::sport_from_text(&sport);
                }
            }
            Node::Open { name: "Lap", .. } => first_track_of_lap = true,
            Node::Open { name: "Track", .. } => {
                if !first_track_of_lap && !imported.fixes.is_empty() {
                    pause_cuts.push(imported.fixes.len());
                }
                first_track_of_lap = false;
            }
            Node::Open { name: "Trackpoint", .. } => current = Some(Fix::default()),
            Node::Close { name: "Trackpoint" } => imported.fixes.extend(current.take()),
            Node::Close { name: "Lap" } => {
                laps += 1;
                // The lap ended at its last track point: a press of the lap button there.
                if let Some(end) = imported.fixes.iter().rev().find_map(|f| f.time_ms)
                    && imported.events.last().is_none_or(|(t, _)| *t < end)
                {
                    imported.events.push((end, ControlKind::Lap));
                }
                if let Some(hr) = lap_hr.take() {
                    hr_weighted += hr * lap_seconds;
                }
            }
            Node::Text(text) => {
                let value = text.parse::<f64>().ok();
                let here = stack.last().map(String::as_str);
                if let Some(fix) = current.as_mut() {
                    match (parent, here) {
                        (_, Some("Time")) => {
                            fix.time_ms = chrono::DateTime::parse_from_rfc3339(text).ok().map(|t| t.timestamp_millis())
                        }
                        (Some("Position"), Some("LatitudeDegrees")) => fix.lat = value,
                        (Some("Position"), Some("LongitudeDegrees")) => fix.lon = value,
                        (_, Some("AltitudeMeters")) => fix.altitude_m = value,
                        (_, Some("DistanceMeters")) => fix.device_distance_m = value,
                        (Some("HeartRateBpm"), Some("Value")) => fix.heart_rate = value.map(|v| v.round() as u8),
                        (_, Some("Cadence")) => fix.cadence = value.map(|v| v.round() as u8),
                        (_, Some("Watts")) => fix.power_w = value.map(|v| v.round() as u16),
                        _ => {}
                    }
                } else if parent == Some("Lap") {
                    match here {
                        Some("TotalTimeSeconds") => {
                            lap_seconds = value.unwrap_or(0.0);
                            lap_time += lap_seconds;
                        }
                        Some("DistanceMeters") => lap_distance += value.unwrap_or(0.0),
                        Some("Calories") => lap_calories += value.unwrap_or(0.0),
                        Some("MaximumSpeed") => max_speed = max_speed.max(value.unwrap_or(0.0)),
                        _ => {}
                    }
                } else if parent == Some("AverageHeartRateBpm") && here == Some("Value") {
                    lap_hr = value;
                } else if parent == Some("Name") || (here == Some("Name") && stack.iter().any(|s| s == "Creator")) {
                    imported.device_model.get_or_insert_with(|| text.to_owned());
                }
            }
            _ => {}
        }
        imported.within_points_bound()
    })
    .map_err(|detail| ImportError::Malformed { format: Format::Tcx, detail })?;
    imported.check_points_bound()?;
    if laps > 0 {
        imported.device = DeviceTotals {
            distance_m: Some(lap_distance),
            timer_s: Some(lap_time),
            calories_kcal: (lap_calories > 0.0).then_some(lap_calories),
            max_speed_mps: (max_speed > 0.0).then_some(max_speed),
            heart_rate_avg: (hr_weighted > 0.0 && lap_time > 0.0).then(|| hr_weighted / lap_time),
            ..DeviceTotals::default()
        };
    }
    for cut in pause_cuts {
        let before = imported.fixes[..cut].iter().rev().find_map(|f| f.time_ms);
        let after = imported.fixes[cut..].iter().find_map(|f| f.time_ms);
        if let (Some(pause), Some(resume)) = (before, after)
            && resume > pause
        {
            imported.events.push((pause, ControlKind::Pause));
            imported.events.push((resume, ControlKind::Resume));
        }
    }
    let without_position = imported.fixes.iter().filter(|f| f.lat.is_none()).count();
    if without_position > 0 {
        imported
            .warnings
            .push(format!("{without_position} trackpoint(s) without position kept for time and heart rate"));
    }
    imported.check_times();
    Ok(imported)
}
