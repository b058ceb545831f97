//! FIT (Garmin/ANT): records, timer events, laps, sessions with their totals, user profile. `fitparser` decodes the
//! messages (and the 1989-12-31 epoch); positions stay in semicircles, converted here.

use std::collections::HashMap;
use std::ops::ControlFlow;

use fitparser::de::{FitObject, FitStreamProcessor};
use fitparser::{FitDataRecord, Value, profile::MesgNum};

use super::{AthleteProfile, Fix, Format, ImportError, Imported, Session};
use crate::{ControlKind, Sport};

/// Degrees per semicircle: a FIT position is a signed 32-bit fraction of 180° (FIT SDK profile,
/// "semicircles": deg = sc × 180 / 2^31).
const DEGREES_PER_SEMICIRCLE: f64 = 180.0 / 2_147_483_648.0;

pub(super) fn import(bytes: &[u8]) -> Result<Imported, ImportError> {
    let mut imported = Imported::empty(Format::Fit);
    // Each message is taken in as it is decoded: the decoded form is many times the size of the
    // bytes, so a file's messages are never all held at once.
    let skipped = decode_lenient(bytes, |record| {
        let fields = fields(record);
        match record.kind() {
            MesgNum::Record => imported.fixes.push(fix(&fields)),
            MesgNum::Event => event(&fields, &mut imported.events),
            // A lap ends at its timestamp: the lap button there (the last lap's end is the
            // recording's end, which the pipeline does not count as a press).
            MesgNum::Lap => imported.events.extend(time_ms(&fields).map(|t| (t, ControlKind::Lap))),
            MesgNum::Session => session(&fields, &mut imported),
            MesgNum::UserProfile => imported.profile = Some(profile(&fields)),
            MesgNum::FileId | MesgNum::DeviceInfo if imported.device_model.is_none() => {
                imported.device_model = text(&fields, "garmin_product")
                    .or_else(|| text(&fields, "product_name"))
                    .or_else(|| text(&fields, "manufacturer"));
            }
            _ => {}
        }
        imported.within_points_bound()
    })?;
    imported.check_points_bound()?;
    if let Some(reason) = skipped {
        imported
            .warnings
            .insert(0, format!("stopped decoding at a damaged message ({reason}); everything before it is imported"));
    }
    imported.sessions.sort_by_key(|s| s.start_ms);
    imported.check_times();
    Ok(imported)
}

/// Decodes message by message, handing each to `take` until it answers `Break`; on a damaged
/// message keeps what came before it and says why it stopped.
fn decode_lenient(
    mut buffer: &[u8],
    mut take: impl FnMut(&FitDataRecord) -> ControlFlow<()>,
) -> Result<Option<String>, ImportError> {
    let mut processor = FitStreamProcessor::new();
    let mut decoded_any = false;
    let mut at_header = true;
    while !buffer.is_empty() {
        if at_header && let Err(detail) = check_header(buffer) {
            if !decoded_any {
                return Err(ImportError::Malformed { format: Format::Fit, detail });
            }
            return Ok(Some(detail));
        }
        let (rest, object) = match processor.deserialize_next(buffer) {
            Ok(next) => next,
            Err(err) if !decoded_any => {
                return Err(ImportError::Malformed { format: Format::Fit, detail: err.to_string() });
            }
            Err(err) => return Ok(Some(err.to_string())),
        };
        at_header = matches!(object, FitObject::Crc(..));
        match object {
            FitObject::Crc(..) => processor.reset(),
            FitObject::DataMessage(message) => match processor.decode_message(message) {
                Ok(record) => {
                    decoded_any = true;
                    if take(&record).is_break() {
                        return Ok(None);
                    }
                }
                Err(err) => return Ok(Some(err.to_string())),
            },
            FitObject::Header(..) | FitObject::DefinitionMessage(..) => {}
        }
        buffer = rest;
    }
    Ok(None)
}

/// What fitparser 0.11 assumes of a file header without checking it: the size in byte 0 is at
/// least the 12 bytes of a FIT header and no more than the bytes there are (it slices by that
/// size and panics otherwise; found by the `import_file` fuzz target).
fn check_header(buffer: &[u8]) -> Result<(), String> {
    let size = usize::from(buffer[0]);
    if buffer.len() < 12 || size < 12 || size > buffer.len() {
        return Err(format!("the FIT header claims {size} bytes but {} remain (a header has 12 or 14)", buffer.len()));
    }
    Ok(())
}

fn fields(record: &FitDataRecord) -> HashMap<&str, &Value> {
    record.fields().iter().map(|f| (f.name(), f.value())).collect()
}

fn number(fields: &HashMap<&str, &Value>, name: &str) -> Option<f64> {
    match fields.get(name)? {
        Value::SInt8(v) => Some(f64::from(*v)),
        Value::UInt8(v) | Value::UInt8z(v) | Value::Byte(v) | Value::Enum(v) => Some(f64::from(*v)),
        Value::SInt16(v) => Some(f64::from(*v)),
        Value::UInt16(v) | Value::UInt16z(v) => Some(f64::from(*v)),
        Value::SInt32(v) => Some(f64::from(*v)),
        Value::UInt32(v) | Value::UInt32z(v) => Some(f64::from(*v)),
        Value::SInt64(v) => Some(*v as f64),
        Value::UInt64(v) | Value::UInt64z(v) => Some(*v as f64),
        Value::Float32(v) => Some(f64::from(*v)),
        Value::Float64(v) => Some(*v),
        _ => None,
    }
    .filter(|v| v.is_finite())
}

fn text(fields: &HashMap<&str, &Value>, name: &str) -> Option<String> {
    match fields.get(name)? {
        Value::String(s) => Some(s.clone()),
        other => number(fields, name).map(|_| other.to_string()),
    }
}

fn time_ms(fields: &HashMap<&str, &Value>) -> Option<i64> {
    match fields.get("timestamp")? {
        Value::Timestamp(t) => Some(t.timestamp_millis()),
        _ => None,
    }
}

fn fix(fields: &HashMap<&str, &Value>) -> Fix {
    let position = |name| number(fields, name).map(|sc| sc * DEGREES_PER_SEMICIRCLE);
    Fix {
        time_ms: time_ms(fields),
        lat: position("position_lat"),
        lon: position("position_long"),
        altitude_m: number(fields, "enhanced_altitude").or_else(|| number(fields, "altitude")),
        heart_rate: number(fields, "heart_rate").map(|v| v as u8),
        cadence: number(fields, "cadence").map(|v| v as u8),
        power_w: number(fields, "power").map(|v| v as u16),
        device_distance_m: number(fields, "distance"),
        device_speed_mps: number(fields, "enhanced_speed").or_else(|| number(fields, "speed")),
    }
}

/// Timer start/stop events become Start/Pause/Resume (FIT profile: event `timer`, event_type
/// `start`, `stop`, `stop_all`, `stop_disable`, `stop_disable_all`).
fn event(fields: &HashMap<&str, &Value>, events: &mut Vec<(i64, ControlKind)>) {
    let (Some(t), Some(kind), Some(event_type)) = (time_ms(fields), text(fields, "event"), text(fields, "event_type"))
    else {
        return;
    };
    if kind != "timer" {
        return;
    }
    let started_before = events.iter().any(|(_, k)| *k == ControlKind::Start);
    let control = if event_type == "start" {
        if started_before { ControlKind::Resume } else { ControlKind::Start }
    } else if event_type.starts_with("stop") {
        ControlKind::Pause
    } else {
        return;
    };
    events.push((t, control));
}

fn session(fields: &HashMap<&str, &Value>, imported: &mut Imported) {
    let sport = match text(fields, "sport").as_deref() {
        Some("running") => Sport::Running,
        Some("cycling") => Sport::Cycling,
        Some("walking") => Sport::Walking,
        Some("hiking") => Sport::Hiking,
        Some("swimming") => Sport::Swimming,
        Some(_) => Sport::Other,
        None => imported.sport,
    };
    imported.sport = sport;
    let d = &mut imported.device;
    d.distance_m = number(fields, "total_distance");
    d.timer_s = number(fields, "total_timer_time");
    d.elapsed_s = number(fields, "total_elapsed_time");
    d.ascent_m = number(fields, "total_ascent");
    d.descent_m = number(fields, "total_descent");
    d.calories_kcal = number(fields, "total_calories");
    d.heart_rate_avg = number(fields, "avg_heart_rate");
    d.heart_rate_max = number(fields, "max_heart_rate");
    d.max_speed_mps = number(fields, "enhanced_max_speed").or_else(|| number(fields, "max_speed"));
    let start = match fields.get("start_time") {
        Some(Value::Timestamp(t)) => Some(t.timestamp_millis()),
        _ => None,
    };
    // A session without a start time cannot be told apart from the others: it only sets the
    // file's sport and totals, as before sessions were kept.
    if let Some(start_ms) = start {
        let end_ms = time_ms(fields).unwrap_or(start_ms).max(start_ms);
        imported.sessions.push(Session { sport, start_ms, end_ms, device: imported.device.clone() });
    }
}

fn profile(fields: &HashMap<&str, &Value>) -> AthleteProfile {
    AthleteProfile {
        weight_kg: number(fields, "weight").filter(|v| *v > 0.0),
        age_years: number(fields, "age").filter(|v| *v > 0.0),
        male: text(fields, "gender").map(|g| g == "male"),
        height_m: number(fields, "height"),
        // 0 means "not set" in these profile fields.
        hr_max: number(fields, "default_max_heart_rate").filter(|v| *v > 0.0),
        hr_rest: number(fields, "resting_heart_rate").filter(|v| *v > 0.0),
    }
}
