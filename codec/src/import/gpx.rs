//! GPX 1.1 with Garmin's TrackPointExtension (`gpxtpx:hr`, `gpxtpx:cad`) and common power tags.
//! Track and segment boundaries become pause/resume events, so a gap between segments is neither
//! moving time nor distance.

use std::ops::ControlFlow;

use super::xml::{Node, walk};
use super::{Fix, Format, ImportError, Imported};
use crate::{ControlKind, Sport};

pub(super) fn import(bytes: &[u8]) -> Result<Imported, ImportError> {
    let mut imported = Imported::empty(Format::Gpx);
    let mut current: Option<Fix> = None;
    let mut segment_starts: Vec<usize> = Vec::new();
    let mut empty_segments = 0;
    let mut bad_points = 0;
    walk(bytes, |stack, node| {
        match node {
            Node::Open { name: "gpx", attributes } => {
                imported.device_model = attributes.into_iter().find(|(k, _)| k == "creator").map(|(_, v)| v);
            }
            Node::Open { name: "trkseg", .. } => segment_starts.push(imported.fixes.len()),
            Node::Close { name: "trkseg" } if segment_starts.last() == Some(&imported.fixes.len()) => {
                segment_starts.pop();
                empty_segments += 1;
            }
            Node::Open { name: "trkpt", attributes } => {
                let attr = |key: &str| {
                    attributes.iter().find(|(k, _)| k == key).and_then(|(_, v)| v.trim().parse::<f64>().ok())
                };
                let (lat, lon) = (attr("lat"), attr("lon"));
                if lat.is_none() || lon.is_none() {
                    bad_points += 1;
                }
                current = Some(Fix { lat, lon, ..Fix::default() });
            }
            Node::Close { name: "trkpt" } => imported.fixes.extend(current.take()),
            Node::Text(text) => {
                let Some(fix) = current.as_mut() else {
                    if stack.last().map(String::as_str) == Some("type") && stack.iter().any(|s| s == "trk") {
                        imported.sport = sport_from_text(text);
                    }
                    return ControlFlow::Continue(());
                };
                match stack.last().map(String::as_str) {
                    Some("ele") => fix.altitude_m = text.parse().ok(),
                    Some("time") => {
                        fix.time_ms = chrono::DateTime::parse_from_rfc3339(text).ok().map(|t| t.timestamp_millis())
                    }
                    Some("hr") => fix.heart_rate = text.parse::<f64>().ok().map(|v| v.round() as u8),
                    Some("cad") => fix.cadence = text.parse::<f64>().ok().map(|v| v.round() as u8),
                    Some("power" | "PowerInWatts" | "watts") => {
                        fix.power_w = text.parse::<f64>().ok().map(|v| v.round() as u16)
                    }
                    _ => {}
                }
            }
            _ => {}
        }
        imported.within_points_bound()
    })
    .map_err(|detail| ImportError::Malformed { format: Format::Gpx, detail })?;
    imported.check_points_bound()?;
    // Between segments: pause at the last timed point of one, resume at the first of the next.
    for start in segment_starts.iter().skip(1).copied() {
        let before = imported.fixes[..start].iter().rev().find_map(|f| f.time_ms);
        let after = imported.fixes[start..].iter().find_map(|f| f.time_ms);
        if let (Some(pause), Some(resume)) = (before, after)
            && resume > pause
        {
            imported.events.push((pause, ControlKind::Pause));
            imported.events.push((resume, ControlKind::Resume));
        }
    }
    if empty_segments > 0 {
        imported.warnings.push(format!("{empty_segments} empty track segment(s) skipped"));
    }
    if bad_points > 0 {
        imported.warnings.push(format!("{bad_points} track point(s) without a valid lat/lon kept without position"));
    }
    let untimed = imported.fixes.iter().filter(|f| f.time_ms.is_none()).count();
    if untimed > 0 {
        imported.warnings.push(format!("{untimed} track point(s) have no time; imported as untimed"));
    }
    imported.check_times();
    Ok(imported)
}

pub(super) fn sport_from_text(text: &str) -> Sport {
    let t = text.to_ascii_lowercase();
    if t.contains("run") {
        Sport::Running
    } else if t.contains("cycl") || t.contains("bik") || t.contains("ride") {
        Sport::Cycling
    } else if t.contains("walk") {
        Sport::Walking
    } else if t.contains("hik") {
        Sport::Hiking
    } else if t.contains("swim") {
        Sport::Swimming
    } else {
        Sport::Other
    }
}
