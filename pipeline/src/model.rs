//! What the pipeline emits.

use serde::{Deserialize, Serialize};
use trackwire_codec::WorkoutId;

/// A workout's lifecycle, as the seed aggregate defines it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum WorkoutStatus {
    Active,
    Paused,
    Completed,
    Cancelled,
}

impl WorkoutStatus {
    pub fn is_ended(self) -> bool {
        matches!(self, WorkoutStatus::Completed | WorkoutStatus::Cancelled)
    }
}

/// Why a workout ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum EndReason {
    /// The device sent Complete or Cancel.
    Device,
    /// No batch came for `pipeline.idle_timeout_secs`: the server completed it.
    IdleTimeout,
}

impl EndReason {
    pub const ALL: [EndReason; 2] = [EndReason::Device, EndReason::IdleTimeout];

    /// The name in JSON, events and metric labels.
    pub fn name(self) -> &'static str {
        match self {
            EndReason::Device => "device",
            EndReason::IdleTimeout => "idle_timeout",
        }
    }
}

/// Why a durable batch was kept in the log but not applied to its workout. Each is counted
/// (`/metrics`), so a device that keeps sending into a finished workout is visible.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotApplied {
    /// The workout had ended (the device's Complete or Cancel, or the idle timeout).
    AfterEnd,
    /// The batch came from another user or device than the one that started the workout.
    OtherOwner,
    /// The record does not decode (a log written by an incompatible build).
    Undecodable,
    /// The workout's owner deleted it, or its user was erased (the batch came before that, or
    /// while the recording went on).
    Deleted,
}

impl NotApplied {
    pub const ALL: [NotApplied; 4] =
        [NotApplied::AfterEnd, NotApplied::OtherOwner, NotApplied::Undecodable, NotApplied::Deleted];

    /// The name in metric labels.
    pub fn name(self) -> &'static str {
        match self {
            NotApplied::AfterEnd => "after_end",
            NotApplied::OtherOwner => "other_owner",
            NotApplied::Undecodable => "undecodable",
            NotApplied::Deleted => "deleted",
        }
    }
}

/// What the pipeline knows of the athlete (from their profile, or an imported file).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AthleteProfile {
    pub weight_kg: Option<f64>,
    pub age_years: Option<f64>,
    /// true = male (the Keytel and Banister equations differ by sex).
    pub male: Option<bool>,
    pub hr_max_bpm: Option<f64>,
    pub hr_rest_bpm: Option<f64>,
}

/// The seed's event names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    WorkoutStarted,
    WorkoutUpdated,
    WorkoutPaused,
    WorkoutResumed,
    WorkoutCompleted,
    WorkoutCancelled,
}

/// A workout event: what happened, when on the device, and what it carries. Sinks publish it in
/// the seed's payload shape (`trackwire-sinks`' event record).
#[derive(Debug, Clone, PartialEq)]
pub struct WorkoutEvent {
    /// Deterministic from `(lsn, index)`, so a replayed event has the same id and consumers can
    /// deduplicate.
    pub event_id: String,
    pub kind: EventKind,
    /// When it happened on the device, Unix milliseconds.
    pub timestamp_ms: i64,
    pub workout_id: WorkoutId,
    /// The workout's owner (an erasure of the event stream finds a user's events by it).
    pub user_id: String,
    /// What the event carries (see [`EventData`]).
    pub data: EventData,
}

/// A position, degrees (WGS84).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LatLon {
    pub lat: f64,
    pub lon: f64,
}

/// An event's payload. `WorkoutUpdated` is emitted while a workout streams, so it carries the
/// compact [`WorkoutProgress`]; every other event carries the summary right after it.
#[derive(Debug, Clone, PartialEq)]
pub enum EventData {
    /// `WorkoutStarted`, with where the workout began: its first fix (None when the first
    /// batch had none).
    Started { summary: Box<WorkoutSummary>, location: Option<LatLon> },
    /// `WorkoutUpdated`.
    Progress(WorkoutProgress),
    /// `WorkoutPaused`, `WorkoutResumed`: where the workout stood at that instant.
    Transition(Transition),
    /// `WorkoutCancelled`.
    Cancelled(Box<WorkoutSummary>),
    /// `WorkoutCompleted`, with a sketch of the route: at most
    /// [`ROUTE_SKETCH_POINTS`](crate::route::ROUTE_SKETCH_POINTS) + 1 positions from the first
    /// fix to the last (empty without fixes).
    Completed { summary: Box<WorkoutSummary>, route: Vec<LatLon> },
}

impl EventData {
    /// The summary the event carries (None for the compact `WorkoutUpdated`).
    pub fn summary(&self) -> Option<&WorkoutSummary> {
        match self {
            EventData::Started { summary, .. }
            | EventData::Cancelled(summary)
            | EventData::Completed { summary, .. } => Some(summary),
            EventData::Progress(_) | EventData::Transition(_) => None,
        }
    }
}

/// A pause or a resume, at its instant (not at the end of the batch that brought it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Transition {
    /// The state it led to.
    pub status: WorkoutStatus,
    /// Seconds since the workout's start.
    pub elapsed_s: f64,
    /// Distance counted up to it, metres.
    pub distance_m: f64,
}

/// Where a streaming workout stands: what a live view or a feed needs, of a fixed size however
/// long the workout is (no splits, no strings).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorkoutProgress {
    pub status: WorkoutStatus,
    /// Seconds since the first sample.
    pub elapsed_s: f64,
    /// Elapsed minus paused time, seconds.
    pub timer_s: f64,
    pub moving_time_s: f64,
    pub distance_m: f64,
    /// Speed at the batch's latest sample that has one, m/s; None while paused.
    pub current_speed_mps: Option<f64>,
    pub heart_rate_avg_bpm: Option<f64>,
    pub elevation_gain_m: Option<f64>,
    pub calories_kcal: Option<f64>,
    pub samples: u64,
    /// Highest batch seq applied.
    pub last_seq: u64,
}

/// One sample as the stages see it, one at a time: decoded, then filled in by each stage, then
/// appended to the batch's [`crate::Points`] columns (the rows of the `points` lake table).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EnrichedPoint {
    pub workout_id: WorkoutId,
    pub seq: u64,
    /// Index of the sample within its batch.
    pub index: u32,
    pub lsn: u64,
    pub time_ms: i64,
    pub lat_deg: Option<f64>,
    pub lon_deg: Option<f64>,
    /// Kalman-smoothed position (degrees); None where the raw position is None.
    pub smoothed_lat: Option<f64>,
    pub smoothed_lon: Option<f64>,
    pub altitude_m: Option<f32>,
    pub heart_rate_bpm: Option<u8>,
    pub cadence_rpm: Option<u8>,
    pub power_w: Option<u16>,
    pub h_accuracy_m: Option<f32>,
    /// Device flags (`SampleFlags` bits).
    pub flags: u16,
    /// True while the device reported the workout as paused.
    pub paused: bool,
    /// True when the timestamp is not after the previous sample's (kept, excluded from totals).
    pub time_out_of_order: bool,
    /// True for the first sample after a pause (or a gap between recorded segments): the time
    /// and distance since the previous sample are not part of the activity.
    pub after_pause: bool,
    /// Milliseconds since the previous timed, in-order sample that count as activity: 0 for the
    /// first sample, while paused, right after a pause, and for untimed or out-of-order samples.
    /// Derived once here so every time-integrating stage agrees.
    pub active_step_ms: i64,
    /// True when the cleaning stage rejected this sample's position (lat/lon are then None).
    pub position_rejected: bool,
    /// The cleaning stage's step to this fix from the last fix it accepted: that fix's
    /// `(lat, lon)` and the squared distance, m². The distance stage's step is almost always the
    /// same one, so it takes the square root of this instead of measuring again. Not a column.
    pub step_from_accepted: Option<(f64, f64, f64)>,
    /// Speed over the step from the previous valid fix, m/s.
    pub speed_mps: Option<f32>,
    /// Heart-rate zone 1–5 by %HRmax (0 below 50 %); None without heart rate or HRmax.
    pub hr_zone: Option<u8>,
    /// Grade over the last ≥ 50 m, percent; None without altitude or before 50 m.
    pub grade_pct: Option<f32>,
    /// The altitude the elevation stage counted for this sample: None when it has none or when
    /// it is GPS altitude in a workout with barometric altitude. Grade is measured on it, so
    /// grade and ascent come from one series. Not a column.
    pub counted_altitude_m: Option<f32>,
    /// True when the athlete was moving at this sample (not paused, above the stopped threshold).
    pub moving: bool,
    /// Distance covered since the start of the workout, metres.
    pub distance_m: f64,
    /// Seconds since the workout's first sample.
    pub elapsed_s: f64,
}

/// The read model of one workout, kept current by the pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WorkoutSummary {
    pub workout_id: WorkoutId,
    pub user_id: String,
    pub device_id: String,
    pub device_model: Option<String>,
    pub sport: String,
    pub status: WorkoutStatus,
    /// First sample (or start event), Unix ms.
    pub start_time_ms: i64,
    /// Last sample (or end event), Unix ms.
    pub end_time_ms: i64,
    /// `end - start`, seconds.
    pub elapsed_s: f64,
    /// Elapsed minus the time the device reported as paused, seconds.
    pub timer_s: f64,
    pub samples: u64,
    pub batches: u64,
    /// Highest batch seq applied.
    pub last_seq: u64,
    /// WGS84 distance over the valid fixes, metres.
    pub distance_m: f64,
    /// Time spent moving (not paused and above the stopped-speed threshold), seconds.
    pub moving_time_s: f64,
    /// Elevation gained and lost with 3 m hysteresis, metres (None without altitude).
    pub elevation_gain_m: Option<f64>,
    pub elevation_loss_m: Option<f64>,
    /// Fastest step speed between valid fixes, m/s.
    pub max_speed_mps: Option<f64>,
    /// Positions the cleaning stage rejected ((0,0), out of range, impossible speed).
    pub rejected_fixes: u64,
    /// Altitude readings the cleaning stage rejected (faster than any real climb or fall).
    #[serde(default)] // summaries stored before this field existed read as 0
    pub rejected_altitudes: u64,
    /// Seconds in heart-rate zones 1–5 (50–60 … 90–100 % of HRmax); None without HRmax.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<f64>>))]
    pub hr_zone_seconds: Option<[f64; 5]>,
    /// Edwards TRIMP (zone-weighted minutes); None without HRmax.
    pub trimp_edwards: Option<f64>,
    /// Banister TRIMP; None without HRmax, HRrest and sex.
    pub trimp_banister: Option<f64>,
    /// Energy expenditure, kcal; None without the athlete's weight.
    pub calories_kcal: Option<f64>,
    /// `keytel2005` (heart rate), `acsm` (running/walking speed), `met2011` (Compendium MET), or
    /// `device` (a workout without samples: the figure entered or recorded with it).
    pub calories_method: Option<String>,
    /// Per-kilometre splits (the last may be partial).
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<crate::stages::Split>))]
    pub splits: Vec<crate::stages::Split>,
    /// The laps, once the lap button was pressed (empty without presses: the whole workout is
    /// then its one lap).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<crate::laps::Lap>))]
    pub laps: Vec<crate::laps::Lap>,
    /// When the timer was paused: `[paused, resumed]`, Unix ms (a pause still open ends at
    /// `end_time_ms`). What an exported file needs to keep the moving stretches apart.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pauses: Vec<[i64; 2]>,
    /// The device's own totals, when it sent them (imported files), kept beside ours.
    pub device_totals: Option<trackwire_codec::DeviceTotals>,
    pub heart_rate_avg_bpm: Option<f64>,
    pub heart_rate_max_bpm: Option<u8>,
    /// LSN of the first and latest record of this workout.
    pub first_lsn: u64,
    pub last_lsn: u64,
    /// When the log stored the first and the latest record of this workout (Unix ms), where the
    /// log said: coordinate retention counts from these, not from when the samples were recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored_from_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stored_through_ms: Option<i64>,
    /// The athlete profile the calories and training load were computed with, so they can be
    /// recomputed (None when the pipeline knew none; summaries stored before it read as None).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<AthleteProfile>,
    /// Why the workout ended, once it has (summaries stored before it read as None).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_reason: Option<EndReason>,
}

/// Everything one durable record produced.
#[derive(Debug, Clone, Default)]
pub struct ShardOutput {
    pub lsn: u64,
    /// When the log stored the record (Unix ms); None when the log kept no time (the embedded
    /// log's first format), and then a sample's recorded time stands in for it.
    pub stored_ms: Option<i64>,
    /// The record's enriched samples, as columns.
    pub points: crate::Points,
    pub events: Vec<WorkoutEvent>,
    /// The workout's summary after this record (None if the record was rejected).
    pub summary: Option<WorkoutSummary>,
    /// The W3C trace id of the request that brought the record, when it travelled with it
    /// (scale-out); sinks that can carry it (Kafka headers) do.
    pub trace_id: Option<std::sync::Arc<str>>,
    /// True when this record ended the workout (Complete or Cancel).
    pub ended: bool,
    /// Set when a device's batch was not applied, and why.
    pub not_applied: Option<NotApplied>,
}

pub use trackwire_codec::sport_name;
