//! The JSON shape of a workout event, shared by every event sink (file now, Kafka later).

use chrono::{DateTime, SecondsFormat};
use serde::{Deserialize, Serialize};
use trackwire_pipeline::{EventData, EventKind, WorkoutEvent};

/// The version of the records written now: 2 since `WorkoutUpdated` carries the compact
/// progress (version 1, every event with the whole summary, had no field).
pub const EVENT_SCHEMA_VERSION: u32 = 2;

fn version_1() -> u32 {
    1
}

/// The seed's event shape (`event_id`, `type`, `timestamp`, `data`) plus the workout id (the Kafka
/// key), the log position it came from, which makes redelivery detectable, and the version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    /// Records of version 1 had no such field; they read as 1.
    #[serde(default = "version_1")]
    pub schema_version: u32,
    pub event_id: String,
    #[serde(rename = "type")]
    pub kind: EventKind,
    /// RFC 3339, UTC, milliseconds.
    pub timestamp: String,
    pub workout_id: String,
    pub lsn: u64,
    pub data: EventData,
}

/// One event as a JSON object (no trailing newline).
pub fn event_json(event: &WorkoutEvent, lsn: u64) -> Vec<u8> {
    let record = EventRecord {
        schema_version: EVENT_SCHEMA_VERSION,
        event_id: event.event_id.clone(),
        kind: event.kind,
        timestamp: DateTime::from_timestamp_millis(event.timestamp_ms)
            .unwrap_or_default()
            .to_rfc3339_opts(SecondsFormat::Millis, true),
        workout_id: event.workout_id.to_string(),
        lsn,
        data: event.data.clone(),
    };
    serde_json::to_vec(&record).expect("event records always serialize")
}

#[cfg(test)]
mod tests {
    use trackwire_codec::WorkoutId;
    use trackwire_pipeline::WorkoutProgress;

    use super::*;

    #[test]
    fn a_version_1_line_still_reads_and_new_lines_say_version_2() {
        let progress = WorkoutProgress {
            status: trackwire_pipeline::WorkoutStatus::Active,
            elapsed_s: 10.0,
            timer_s: 10.0,
            moving_time_s: 9.0,
            distance_m: 31.5,
            current_speed_mps: Some(3.1),
            heart_rate_avg_bpm: None,
            elevation_gain_m: None,
            calories_kcal: None,
            samples: 10,
            last_seq: 1,
        };
        let event = WorkoutEvent {
            event_id: "e".into(),
            kind: EventKind::WorkoutUpdated,
            timestamp_ms: 1_700_000_000_000,
            workout_id: WorkoutId([1; 16]),
            data: EventData::Progress(progress.clone()),
        };
        let line = event_json(&event, 7);
        let record: EventRecord = serde_json::from_slice(&line).unwrap();
        assert_eq!(record.schema_version, EVENT_SCHEMA_VERSION);
        assert_eq!(record.data, EventData::Progress(progress));
        let mut value: serde_json::Value = serde_json::from_slice(&line).unwrap();
        value.as_object_mut().unwrap().remove("schema_version");
        let old: EventRecord = serde_json::from_value(value).unwrap();
        assert_eq!(old.schema_version, 1, "a line without the field is version 1");
    }
}
