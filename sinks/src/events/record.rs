//! The JSON shape of a workout event, shared by every event sink (file now, Kafka later).

use chrono::{DateTime, SecondsFormat};
use serde::{Deserialize, Serialize};
use trackwire_pipeline::{EventKind, WorkoutEvent, WorkoutSummary};

/// The seed's event shape (`event_id`, `type`, `timestamp`, `data`) plus the workout id (the Kafka
/// key) and the log position it came from, which makes redelivery detectable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    pub event_id: String,
    #[serde(rename = "type")]
    pub kind: EventKind,
    /// RFC 3339, UTC, milliseconds.
    pub timestamp: String,
    pub workout_id: String,
    pub lsn: u64,
    pub data: WorkoutSummary,
}

/// One event as a JSON object (no trailing newline).
pub fn event_json(event: &WorkoutEvent, lsn: u64) -> Vec<u8> {
    let record = EventRecord {
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
