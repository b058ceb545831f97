use std::io;

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};

use super::{LapSpan, Recording, degrees, instant, metres};
use crate::Sport;

const NAMESPACE: &str = "http://www.garmin.com/xmlschemas/TrainingCenterDatabase/v2";

/// The recording as TCX: one activity, one `Lap` per lap (each with the points in its span, its
/// time and distance; a `Track` per stretch between pauses), every point with its time and
/// whatever else it has.
pub fn tcx(recording: &Recording<'_>) -> Vec<u8> {
    write(recording).expect("writing XML into memory cannot fail")
}

/// TCX knows three sports.
fn sport(sport: Sport) -> &'static str {
    match sport {
        Sport::Running => "Running",
        Sport::Cycling => "Biking",
        _ => "Other",
    }
}

fn write(recording: &Recording<'_>) -> io::Result<Vec<u8>> {
    let timed = || recording.fixes.iter().filter_map(|f| f.time_ms);
    let (start, end) = (timed().min().unwrap_or(0), timed().max().unwrap_or(0));
    let whole = [LapSpan { start_ms: start, end_ms: end, distance_m: f64::NAN }];
    let laps = if recording.laps.is_empty() { &whole[..] } else { recording.laps };
    let mut writer = Writer::new_with_indent(Vec::new(), b' ', 1);
    writer.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    writer.create_element("TrainingCenterDatabase").with_attribute(("xmlns", NAMESPACE)).write_inner_content(|w| {
        w.create_element("Activities").write_inner_content(|w| {
            w.create_element("Activity").with_attribute(("Sport", sport(recording.sport))).write_inner_content(
                |w| {
                    w.create_element("Id").write_text_content(BytesText::new(&instant(start)))?;
                    let mut next = 0;
                    let stretches = recording.stretches();
                    for (i, lap) in laps.iter().enumerate() {
                        // A point belongs to the lap its time falls in; the last lap takes the rest.
                        let last = i + 1 == laps.len();
                        let from = next;
                        while next < recording.fixes.len()
                            && (last || recording.fixes[next].time_ms.is_none_or(|t| t <= lap.end_ms))
                        {
                            next += 1;
                        }
                        let points = &recording.fixes[from..next];
                        let lap_from = from;
                        let distance = if lap.distance_m.is_finite() {
                            lap.distance_m
                        } else {
                            points.iter().filter_map(|f| f.device_distance_m).fold(0.0, f64::max)
                        };
                        w.create_element("Lap")
                            .with_attribute(("StartTime", instant(lap.start_ms).as_str()))
                            .write_inner_content(|w| {
                                let seconds = (lap.end_ms - lap.start_ms).max(0) as f64 / 1000.0;
                                w.create_element("TotalTimeSeconds")
                                    .write_text_content(BytesText::new(&format!("{seconds:.3}")))?;
                                w.create_element("DistanceMeters")
                                    .write_text_content(BytesText::new(&metres(distance)))?;
                                w.create_element("Calories").write_text_content(BytesText::new("0"))?;
                                w.create_element("Intensity").write_text_content(BytesText::new("Active"))?;
                                w.create_element("TriggerMethod").write_text_content(BytesText::new("Manual"))?;
                                // A track per stretch between pauses, as Garmin writes them.
                                for stretch in &stretches {
                                    let (from, to) =
                                        (stretch.start.max(lap_from), stretch.end.min(lap_from + points.len()));
                                    if from >= to {
                                        continue;
                                    }
                                    w.create_element("Track").write_inner_content(|w| {
                                        for fix in &recording.fixes[from..to] {
                                            trackpoint(w, fix)?;
                                        }
                                        Ok(())
                                    })?;
                                }
                                Ok(())
                            })?;
                    }
                    Ok(())
                },
            )?;
            Ok(())
        })?;
        Ok(())
    })?;
    Ok(writer.into_inner())
}

fn trackpoint(w: &mut Writer<Vec<u8>>, fix: &crate::import::Fix) -> io::Result<()> {
    w.create_element("Trackpoint").write_inner_content(|w| {
        if let Some(t) = fix.time_ms {
            w.create_element("Time").write_text_content(BytesText::new(&instant(t)))?;
        }
        if let (Some(lat), Some(lon)) = (fix.lat, fix.lon) {
            w.create_element("Position").write_inner_content(|w| {
                w.create_element("LatitudeDegrees").write_text_content(BytesText::new(&degrees(lat)))?;
                w.create_element("LongitudeDegrees").write_text_content(BytesText::new(&degrees(lon)))?;
                Ok(())
            })?;
        }
        if let Some(altitude) = fix.altitude_m {
            w.create_element("AltitudeMeters").write_text_content(BytesText::new(&metres(altitude)))?;
        }
        if let Some(distance) = fix.device_distance_m {
            w.create_element("DistanceMeters").write_text_content(BytesText::new(&metres(distance)))?;
        }
        if let Some(hr) = fix.heart_rate {
            w.create_element("HeartRateBpm").write_inner_content(|w| {
                w.create_element("Value").write_text_content(BytesText::new(&hr.to_string()))?;
                Ok(())
            })?;
        }
        if let Some(cadence) = fix.cadence {
            w.create_element("Cadence").write_text_content(BytesText::new(&cadence.to_string()))?;
        }
        Ok(())
    })?;
    Ok(())
}
