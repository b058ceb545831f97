//! The JSON shape of a workout event, shared by every event sink (the event log's lines, the
//! Kafka topic's messages): the seed Workout service's envelope and payloads, field names as the
//! seed writes them, instants in ISO 8601 UTC, distances in metres, durations in seconds, speeds
//! in m/s, heart rates in beats per minute. One JSON Schema per event type in `docs/events/`.

use chrono::{DateTime, SecondsFormat};
use serde::{Deserialize, Serialize};
use trackwire_pipeline::{EndReason, EventData, EventKind, LatLon, WorkoutEvent, WorkoutProgress, WorkoutStatus};

/// The version of the records written now. 3: the seed's payloads and `user_id` in the envelope
/// (topic `trackwire.workout-events.v2`). 2 had the compact `WorkoutUpdated` and the whole
/// summary in every other event; 1 (no field) the whole summary in every event.
pub const EVENT_SCHEMA_VERSION: u32 = 3;

fn version_1() -> u32 {
    1
}

/// An event record as read back (the event log's recovery and erasure, tests): the envelope,
/// with `data` as it was written. Reads every version.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct EventRecord {
    /// Records of version 1 had no such field; they read as 1.
    #[serde(default = "version_1")]
    pub schema_version: u32,
    pub event_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// ISO 8601, UTC, milliseconds.
    pub timestamp: String,
    /// None for events about a user rather than a workout (`UserErased`).
    #[serde(default)]
    pub workout_id: Option<String>,
    /// Since version 3.
    #[serde(default)]
    pub user_id: Option<String>,
    pub lsn: u64,
    pub data: serde_json::Value,
}

/// The envelope as written: the seed's `event_id`, `type`, `timestamp`, `data`, plus the version,
/// the workout (the Kafka key), its owner, and the log position it came from (which makes a
/// redelivery detectable).
#[derive(Serialize)]
struct Envelope<'a> {
    schema_version: u32,
    event_id: &'a str,
    #[serde(rename = "type")]
    kind: EventKind,
    timestamp: String,
    workout_id: String,
    user_id: &'a str,
    lsn: u64,
    data: Payload<'a>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Payload<'a> {
    Started(Started<'a>),
    Updated(Updated),
    PausedOrResumed(PausedOrResumed),
    Completed(Completed<'a>),
    Cancelled(Cancelled),
}

#[derive(Serialize)]
struct Location {
    latitude: f64,
    longitude: f64,
}

impl From<&LatLon> for Location {
    fn from(p: &LatLon) -> Self {
        Location { latitude: p.lat, longitude: p.lon }
    }
}

/// `WorkoutStarted`.
#[derive(Serialize)]
struct Started<'a> {
    workout_id: String,
    user_id: &'a str,
    sport_type: &'a str,
    start_time: String,
    /// The first fix; null when the first batch had none.
    location: Option<Location>,
    device_model: Option<&'a str>,
    device_id: &'a str,
}

/// `WorkoutUpdated`: the seed's three figures and what a live view shows beside them.
#[derive(Serialize)]
struct Updated {
    workout_id: String,
    status: WorkoutStatus,
    current_distance_meters: f64,
    avg_heart_rate: Option<f64>,
    /// At the batch's latest sample that has one; null while paused.
    current_speed: Option<f64>,
    duration_sec: f64,
    moving_time_sec: f64,
    elevation_gain_meters: Option<f64>,
    calories_burned: Option<f64>,
    samples: u64,
    last_seq: u64,
}

/// `WorkoutPaused` and `WorkoutResumed`: the state it led to, and where the workout stood at
/// that instant.
#[derive(Serialize)]
struct PausedOrResumed {
    workout_id: String,
    status: WorkoutStatus,
    duration_sec: f64,
    distance_meters: f64,
}

/// `WorkoutCompleted`: the seed's figures, the route sketch, and the totals a feed shows.
#[derive(Serialize)]
struct Completed<'a> {
    workout_id: String,
    user_id: &'a str,
    sport_type: &'a str,
    start_time: String,
    end_time: String,
    duration_sec: f64,
    moving_time_sec: f64,
    distance_meters: f64,
    calories_burned: Option<f64>,
    avg_heart_rate: Option<f64>,
    max_heart_rate: Option<u8>,
    elevation_gain_meters: Option<f64>,
    route_coordinates: Vec<Location>,
    /// `device` (the device sent Complete) or `idle_timeout` (the server completed a workout
    /// whose device fell silent).
    end_reason: EndReason,
}

/// `WorkoutCancelled`.
#[derive(Serialize)]
struct Cancelled {
    workout_id: String,
    end_time: String,
    duration_sec: f64,
    distance_meters: f64,
}

/// Unix ms as ISO 8601 UTC with milliseconds (`…T05:00:00.000Z`).
pub fn iso_ms(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms).unwrap_or_default().to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn payload<'a>(event: &'a WorkoutEvent) -> Payload<'a> {
    let workout_id = event.workout_id.to_string();
    match &event.data {
        EventData::Started { summary, location } => Payload::Started(Started {
            workout_id,
            user_id: &summary.user_id,
            sport_type: &summary.sport,
            start_time: iso_ms(summary.start_time_ms),
            location: location.as_ref().map(Location::from),
            device_model: summary.device_model.as_deref(),
            device_id: &summary.device_id,
        }),
        EventData::Progress(progress) => Payload::Updated(updated(workout_id, progress)),
        EventData::Completed { summary, route } => Payload::Completed(Completed {
            workout_id,
            user_id: &summary.user_id,
            sport_type: &summary.sport,
            start_time: iso_ms(summary.start_time_ms),
            end_time: iso_ms(summary.end_time_ms),
            duration_sec: summary.elapsed_s,
            moving_time_sec: summary.moving_time_s,
            distance_meters: summary.distance_m,
            calories_burned: summary.calories_kcal,
            avg_heart_rate: summary.heart_rate_avg_bpm,
            max_heart_rate: summary.heart_rate_max_bpm,
            elevation_gain_meters: summary.elevation_gain_m,
            route_coordinates: route.iter().map(Location::from).collect(),
            end_reason: summary.end_reason.unwrap_or(EndReason::Device),
        }),
        EventData::Cancelled(summary) => Payload::Cancelled(Cancelled {
            workout_id,
            end_time: iso_ms(summary.end_time_ms),
            duration_sec: summary.elapsed_s,
            distance_meters: summary.distance_m,
        }),
        EventData::Transition(at) => Payload::PausedOrResumed(PausedOrResumed {
            workout_id,
            status: at.status,
            duration_sec: at.elapsed_s,
            distance_meters: at.distance_m,
        }),
    }
}

fn updated(workout_id: String, p: &WorkoutProgress) -> Updated {
    Updated {
        workout_id,
        status: p.status,
        current_distance_meters: p.distance_m,
        avg_heart_rate: p.heart_rate_avg_bpm,
        current_speed: p.current_speed_mps,
        duration_sec: p.elapsed_s,
        moving_time_sec: p.moving_time_s,
        elevation_gain_meters: p.elevation_gain_m,
        calories_burned: p.calories_kcal,
        samples: p.samples,
        last_seq: p.last_seq,
    }
}

/// What consumers are told of an erasure: one `UserErased` (keyed by the user: `None`), or for
/// workouts their owner deleted, one `WorkoutDeleted` each (keyed by the workout).
pub fn erasure_json(erasure: &crate::Erasure, now_ms: i64) -> Vec<(Option<trackwire_codec::WorkoutId>, Vec<u8>)> {
    match erasure.scope {
        crate::ErasureScope::User => {
            let mut ids: Vec<String> = erasure.workouts.iter().map(|w| w.workout_id.to_string()).collect();
            ids.sort();
            ids.dedup();
            vec![(None, user_erased_json(&erasure.user_id, &ids, erasure.through_lsn, now_ms))]
        }
        crate::ErasureScope::Workouts => erasure
            .workouts
            .iter()
            .map(|w| {
                let id = w.workout_id.to_string();
                (Some(w.workout_id), workout_deleted_json(&erasure.user_id, &id, erasure.through_lsn, now_ms))
            })
            .collect(),
    }
}

/// `WorkoutDeleted`: the owner deleted the workout; everything of it through log position
/// `through_lsn` was erased, and consumers erase their copies. Its id is derived from the workout
/// and the position, so a re-send has the same one.
pub fn workout_deleted_json(user_id: &str, workout_id: &str, through_lsn: u64, now_ms: i64) -> Vec<u8> {
    let name = format!("WorkoutDeleted/{workout_id}/{through_lsn}");
    let event_id = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, name.as_bytes()).hyphenated().to_string();
    let record = serde_json::json!({
        "schema_version": EVENT_SCHEMA_VERSION,
        "event_id": event_id,
        "type": "WorkoutDeleted",
        "timestamp": iso_ms(now_ms),
        "workout_id": workout_id,
        "user_id": user_id,
        "lsn": through_lsn,
        "data": {"workout_id": workout_id, "user_id": user_id},
    });
    serde_json::to_vec(&record).expect("event records always serialize")
}

/// `UserErased`: everything of `user_id` through log position `through_lsn` was erased, these
/// workouts with it; consumers erase their copies. Keyed by the user on Kafka. Its id is
/// derived from the user and the position, so a re-send has the same one; `now_ms` is when the
/// erasure was carried out.
pub fn user_erased_json(user_id: &str, workout_ids: &[String], through_lsn: u64, now_ms: i64) -> Vec<u8> {
    let name = format!("UserErased/{user_id}/{through_lsn}");
    let event_id = uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, name.as_bytes()).hyphenated().to_string();
    let record = serde_json::json!({
        "schema_version": EVENT_SCHEMA_VERSION,
        "event_id": event_id,
        "type": "UserErased",
        "timestamp": iso_ms(now_ms),
        "workout_id": null,
        "user_id": user_id,
        "lsn": through_lsn,
        "data": {"user_id": user_id, "workout_ids": workout_ids},
    });
    serde_json::to_vec(&record).expect("event records always serialize")
}

/// An event the API raised (`UserMetricsUpdated`, `WorkoutTagAdded`) in the same envelope, at
/// log position `lsn` (where the sinks were when they published it).
pub fn published_json(event: &crate::PublishedEvent, lsn: u64) -> Vec<u8> {
    let record = serde_json::json!({
        "schema_version": EVENT_SCHEMA_VERSION,
        "event_id": event.event_id,
        "type": event.event_type,
        "timestamp": iso_ms(event.timestamp_ms),
        "workout_id": event.workout_id.map(|id| id.to_string()),
        "user_id": event.user_id,
        "lsn": lsn,
        "data": event.data,
    });
    serde_json::to_vec(&record).expect("event records always serialize")
}

/// One event as a JSON object (no trailing newline).
pub fn event_json(event: &WorkoutEvent, lsn: u64) -> Vec<u8> {
    let record = Envelope {
        schema_version: EVENT_SCHEMA_VERSION,
        event_id: &event.event_id,
        kind: event.kind,
        timestamp: iso_ms(event.timestamp_ms),
        workout_id: event.workout_id.to_string(),
        user_id: &event.user_id,
        lsn,
        data: payload(event),
    };
    serde_json::to_vec(&record).expect("event records always serialize")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use trackwire_codec::{BatchData, ControlEvent, ControlKind, Sample, Sport, WorkoutId, encode_batch, missing};
    use trackwire_pipeline::ShardCore;

    use super::*;

    fn batch(workout: u8, seq: u64, samples: std::ops::Range<u32>, events: Vec<(u32, ControlKind)>) -> Vec<u8> {
        encode_batch(&BatchData {
            device_id: "watch".into(),
            user_id: "ada".into(),
            workout_id: WorkoutId([workout; 16]),
            sport: Sport::Running,
            seq,
            base_time_ms: 1_700_000_000_000,
            samples: samples
                .map(|t| {
                    let lat = 473_000_000 + t as i32 * 1000;
                    Sample::new(t * 1000, lat, 85_000_000, 40_000, 140, missing::CADENCE, missing::POWER, 50, 0)
                })
                .collect(),
            events: events.into_iter().map(|(t, k)| ControlEvent::new(t * 1000, k)).collect(),
            ..BatchData::default()
        })
    }

    /// Every event type, as the pipeline emits them: one workout started, paused, resumed and
    /// completed, another started and cancelled.
    fn every_kind() -> Vec<serde_json::Value> {
        let mut core = ShardCore::default();
        let batches = [
            batch(1, 0, 0..10, vec![(0, ControlKind::Start)]),
            batch(1, 1, 10..20, vec![(12, ControlKind::Pause), (15, ControlKind::Resume)]),
            batch(1, 2, 20..30, vec![(29, ControlKind::Complete)]),
            batch(2, 0, 0..5, vec![(0, ControlKind::Start), (4, ControlKind::Cancel)]),
        ];
        let mut records = Vec::new();
        for (lsn, bytes) in batches.iter().enumerate() {
            let out = core.process(lsn as u64 + 1, bytes);
            records.extend(out.events.iter().map(|e| serde_json::from_slice(&event_json(e, out.lsn)).unwrap()));
        }
        records
    }

    fn keys(value: &serde_json::Value) -> BTreeSet<String> {
        value.as_object().unwrap().keys().cloned().collect()
    }

    fn names(list: &serde_json::Value) -> BTreeSet<String> {
        list.as_array().unwrap().iter().map(|k| k.as_str().unwrap().to_owned()).collect()
    }

    /// The records carry exactly the fields their published schema lists (the Python tests
    /// validate them with a JSON Schema validator; this keeps code and schema from drifting
    /// without one).
    #[test]
    fn every_event_has_exactly_the_fields_of_its_published_schema() {
        let records = every_kind();
        let kinds: BTreeSet<_> = records.iter().map(|r| r["type"].as_str().unwrap().to_owned()).collect();
        assert_eq!(kinds.len(), 6, "every workout event type: {kinds:?}");
        let erased = user_erased_json("ada", &["w".into()], 9, 1_700_000_000_000);
        let deleted = workout_deleted_json("ada", "01010101-0101-0101-0101-010101010101", 9, 1_700_000_000_000);
        let records: Vec<_> = records
            .into_iter()
            .chain([serde_json::from_slice(&erased).unwrap(), serde_json::from_slice(&deleted).unwrap()])
            .collect();
        let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/events");
        for record in &records {
            let kind = record["type"].as_str().unwrap();
            let schema: serde_json::Value =
                serde_json::from_slice(&std::fs::read(docs.join(format!("{kind}.schema.json"))).unwrap()).unwrap();
            assert_eq!(keys(record), names(&schema["required"]), "{kind}: envelope");
            assert_eq!(schema["properties"]["type"]["const"], kind);
            assert_eq!(record["schema_version"], schema["properties"]["schema_version"]["const"]);
            let data = &schema["properties"]["data"];
            // Every field the schema lists is written; the required ones are those every
            // version-3 event has (fields added within the version are optional).
            assert!(names(&data["required"]).is_subset(&keys(&record["data"])), "{kind}: data");
            assert_eq!(keys(&record["data"]), keys(&data["properties"]), "{kind}: data");
            assert_eq!(record["user_id"], "ada");
        }
        let started = &records[0]["data"];
        assert_eq!(started["location"]["latitude"], 47.3);
        assert_eq!(started["start_time"], "2023-11-14T22:13:20.000Z");
        let completed = records.iter().find(|r| r["type"] == "WorkoutCompleted").unwrap();
        let route = completed["data"]["route_coordinates"].as_array().unwrap();
        assert!(route.len() >= 2 && route.len() <= trackwire_pipeline::route::ROUTE_SKETCH_POINTS + 1);
        assert_eq!(completed["data"]["duration_sec"], 29.0);
        assert_eq!(completed["data"]["end_reason"], "device");
    }

    /// The API's events (their payloads are the API's, validated by the Python tests) share the
    /// envelope of their published schemas.
    #[test]
    fn events_the_api_raises_have_the_envelope_of_their_schemas() {
        let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/events");
        for (kind, workout_id) in [("UserMetricsUpdated", None), ("WorkoutTagAdded", Some(WorkoutId([3; 16])))] {
            let event = crate::PublishedEvent {
                event_id: "00000000-0000-4000-8000-000000000000".into(),
                event_type: kind.into(),
                timestamp_ms: 1_700_000_000_000,
                workout_id,
                user_id: "ada".into(),
                data: serde_json::json!({}),
            };
            let record: serde_json::Value = serde_json::from_slice(&published_json(&event, 5)).unwrap();
            let schema: serde_json::Value =
                serde_json::from_slice(&std::fs::read(docs.join(format!("{kind}.schema.json"))).unwrap()).unwrap();
            assert_eq!(keys(&record), names(&schema["required"]), "{kind}");
            assert_eq!(record["type"], kind);
            assert_eq!(record["workout_id"].is_null(), workout_id.is_none());
            let read: EventRecord = serde_json::from_value(record).unwrap();
            assert_eq!((read.lsn, read.user_id.as_deref()), (5, Some("ada")));
        }
    }

    #[test]
    fn lines_of_every_version_still_read() {
        let v3 = serde_json::to_vec(&every_kind()[0]).unwrap();
        let record: EventRecord = serde_json::from_slice(&v3).unwrap();
        assert_eq!((record.schema_version, record.user_id.as_deref()), (EVENT_SCHEMA_VERSION, Some("ada")));
        assert_eq!(record.workout_id.as_deref(), Some("01010101-0101-0101-0101-010101010101"));
        let erased: EventRecord = serde_json::from_slice(&user_erased_json("ada", &[], 9, 0)).unwrap();
        assert_eq!((erased.kind.as_str(), erased.workout_id, erased.lsn), ("UserErased", None, 9));
        let v2 = br#"{"schema_version":2,"event_id":"e","type":"WorkoutUpdated","timestamp":"2023-11-14T22:13:20.000Z","workout_id":"w","lsn":7,"data":{"status":"active"}}"#;
        let record: EventRecord = serde_json::from_slice(v2).unwrap();
        assert_eq!((record.schema_version, record.lsn, record.user_id), (2, 7, None));
        let v1 = br#"{"event_id":"e","type":"WorkoutStarted","timestamp":"2023-11-14T22:13:20.000Z","workout_id":"w","lsn":3,"data":{}}"#;
        assert_eq!(serde_json::from_slice::<EventRecord>(v1).unwrap().schema_version, 1, "no field: version 1");
        assert_eq!(
            crate::kafka::EVENTS_SCHEMA_VERSION,
            EVENT_SCHEMA_VERSION.to_string(),
            "the Kafka header says the same"
        );
    }
}
