//! The JSON the API reads and writes, each type with its OpenAPI schema.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use trackwire_codec::WorkoutId;
use trackwire_pipeline::WorkoutStatus;
use trackwire_pipeline::recommend::Recommendation;
use utoipa::ToSchema;

mod time;
mod workout;
pub use time::{iso_day, iso_instant, parse_instant_ms};
pub use workout::{TrainingDay, Workout};

/// A sport to filter by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SportFilter {
    Running,
    Cycling,
    Walking,
    Hiking,
    Swimming,
    Other,
    Unknown,
}

impl SportFilter {
    /// The sport's name in workouts (`sport`).
    pub fn as_str(self) -> &'static str {
        match self {
            SportFilter::Running => "running",
            SportFilter::Cycling => "cycling",
            SportFilter::Walking => "walking",
            SportFilter::Hiking => "hiking",
            SportFilter::Swimming => "swimming",
            SportFilter::Other => "other",
            SportFilter::Unknown => "unknown",
        }
    }
}

/// Every error: `{"error","message","code","details"}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// A stable machine-readable reason (`validation_failed`, `not_found`, …; listed in the
    /// API's documentation).
    #[schema(example = "validation_failed")]
    pub error: String,
    /// What went wrong and what to do about it.
    pub message: String,
    /// The HTTP status.
    #[schema(example = 400)]
    pub code: u16,
    /// The field, limit and value where there is one: `field`, `value`, `allowed`, `limit`,
    /// `min`, `max`, `reason`.
    #[schema(value_type = Object)]
    pub details: BTreeMap<String, Value>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WorkoutList {
    pub workouts: Vec<Workout>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// The route in Google's encoded polyline format (precision 5), as Strava's `map`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RouteMap {
    /// The route downsampled to at most 100 points; null without positions.
    pub summary_polyline: Option<String>,
    /// Positions in the full route.
    pub points: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WorkoutDetails {
    #[serde(flatten)]
    pub summary: Workout,
    pub map: RouteMap,
    /// Fastest elapsed seconds over each distance the workout covered (`400m`, `1k`, `1mile`,
    /// `5k`, `10k`, `half_marathon`, `marathon`), once it has ended.
    pub best_efforts: BTreeMap<String, f64>,
    /// The efforts in which this workout was faster than every earlier workout of its sport.
    pub personal_records: Vec<String>,
    pub gear_id: Option<String>,
    /// The owner's tags, in the order added.
    pub tags: Vec<String>,
    /// True while the workout is still in progress (served from the live registry).
    pub live: bool,
}

/// One lap of a workout (`GET /workouts/{id}/laps`).
#[derive(Debug, Serialize, ToSchema)]
pub struct LapView {
    /// 1-based.
    pub lap: u32,
    pub start_time: String,
    pub elapsed_s: f64,
    pub moving_s: f64,
    pub distance_m: f64,
    /// Moving pace, seconds per km.
    pub pace_s_per_km: Option<f64>,
    pub heart_rate_avg_bpm: Option<f64>,
    pub heart_rate_max_bpm: Option<u8>,
    pub elevation_gain_m: Option<f64>,
}

impl From<&trackwire_pipeline::laps::Lap> for LapView {
    fn from(lap: &trackwire_pipeline::laps::Lap) -> Self {
        LapView {
            lap: lap.lap,
            start_time: iso_instant(lap.start_time_ms),
            elapsed_s: lap.elapsed_s,
            moving_s: lap.moving_s,
            distance_m: lap.distance_m,
            pace_s_per_km: lap.pace_s_per_km,
            heart_rate_avg_bpm: lap.heart_rate_avg_bpm,
            heart_rate_max_bpm: lap.heart_rate_max_bpm,
            elevation_gain_m: lap.elevation_gain_m,
        }
    }
}

/// `POST /workouts/{id}/tags`: one tag to add.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTag {
    /// 1–64 characters (surrounding spaces are dropped), no control characters.
    pub tag: String,
}

/// A workout's tags.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkoutTags {
    pub workout_id: String,
    /// In the order added.
    pub tags: Vec<String>,
}

/// `PUT /workouts/{id}`: what the owner may change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkoutUpdate {
    /// Gear used (one of the owner's gear ids), or null to unassign.
    pub gear_id: Option<String>,
}

/// Who may see a workout, as the owner set it (`PATCH /workouts/{id}`); carried in the
/// `WorkoutEdited` event so a feed can respect it. A workout is `private` until its owner says
/// otherwise.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    #[default]
    Private,
    Followers,
    Public,
}

/// What the owner changed of a workout, as stored: each field as last set (none: as recorded).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkoutEdits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Replaces the recorded sport in what the API shows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sport: Option<String>,
    #[serde(default)]
    pub visibility: Visibility,
}

/// A field of a JSON body that may be absent (keep), `null` (clear) or a value (set).
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// `PATCH /workouts/{id}`: the fields to change; an absent field keeps its value, `null` clears
/// it (name, description, gear).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkoutPatch {
    /// 1–100 characters.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable)]
    pub name: Option<Option<String>>,
    /// Up to 10,000 characters.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable)]
    pub description: Option<Option<String>>,
    pub sport: Option<SportFilter>,
    pub visibility: Option<Visibility>,
    /// Replaces the workout's tags (each 1–64 characters, no control characters; at most 20).
    pub tags: Option<Vec<String>>,
    /// Gear used (one of the owner's gear ids), or null to unassign.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable)]
    pub gear_id: Option<Option<String>>,
}

/// One stream, index-aligned with every other stream of the same request.
#[derive(Debug, Serialize, ToSchema)]
pub struct Stream {
    /// One entry per sample: a number, `[lat, lng]` for `latlng`, a boolean for `moving`, or null
    /// where the sample has no value.
    pub data: Vec<Value>,
    /// `time` or `distance`, as Strava names the series the streams are indexed by.
    pub series_type: String,
    /// Samples before downsampling.
    pub original_size: usize,
    /// `low`, `medium` or `high`.
    pub resolution: String,
}

/// Streams keyed by type (`time`, `latlng`, `distance`, `altitude`, `velocity_smooth`,
/// `heartrate`, `cadence`, `watts`, `moving`, `grade_smooth`).
#[derive(Debug, Default, Serialize, ToSchema)]
#[serde(transparent)]
pub struct StreamSet(pub BTreeMap<String, Stream>);

#[derive(Debug, Serialize, ToSchema)]
pub struct LineString {
    /// Always `LineString`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `[longitude, latitude]` pairs (GeoJSON order).
    pub coordinates: Vec<[f64; 2]>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RouteProperties {
    pub workout_id: WorkoutId,
    pub resolution: String,
    pub original_size: usize,
}

/// A GeoJSON Feature (RFC 7946) with the route as a LineString.
#[derive(Debug, Serialize, ToSchema)]
pub struct RouteFeature {
    /// Always `Feature`.
    #[serde(rename = "type")]
    pub kind: String,
    pub geometry: LineString,
    pub properties: RouteProperties,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LastSample {
    /// When the sample was recorded, ISO 8601 UTC.
    #[schema(format = DateTime)]
    pub time: String,
    pub latlng: Option<[f64; 2]>,
    pub distance_m: f64,
    pub heart_rate_bpm: Option<u8>,
}

/// The live state of a workout: its running summary and the latest sample the API holds.
#[derive(Debug, Serialize, ToSchema)]
pub struct LiveState {
    pub workout_id: WorkoutId,
    pub status: WorkoutStatus,
    pub in_progress: bool,
    pub summary: Workout,
    pub last_sample: Option<LastSample>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StatsBucket {
    /// First day of the period (ISO week from Monday, calendar month, calendar year), UTC.
    pub period_start: String,
    /// The sport, or `all` for the period's total.
    pub sport: String,
    pub count: u64,
    pub distance_m: f64,
    pub moving_time_s: f64,
    pub elevation_gain_m: f64,
    pub calories_kcal: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DistanceRecord {
    pub workout_id: WorkoutId,
    pub distance_m: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EffortRecord {
    pub workout_id: WorkoutId,
    pub seconds: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Records {
    pub longest: Option<DistanceRecord>,
    pub fastest_5k: Option<EffortRecord>,
    pub fastest_10k: Option<EffortRecord>,
}

/// One sport's fastest time over a best-effort distance.
#[derive(Debug, Serialize, ToSchema)]
pub struct BestEffortRecord {
    /// `400m`, `1k`, `1mile`, `5k`, `10k`, `half_marathon` or `marathon`.
    pub effort: String,
    pub distance_m: f64,
    pub seconds: f64,
    pub workout_id: WorkoutId,
    /// When that workout started.
    pub start_time: String,
}

/// The records of one sport.
#[derive(Debug, Serialize, ToSchema)]
pub struct SportRecords {
    pub sport: String,
    pub longest: Option<DistanceRecord>,
    /// Shortest distance first; an effort no workout covered is absent.
    pub best_efforts: Vec<BestEffortRecord>,
}

/// `GET /users/{id}/records`: per sport, in name order.
#[derive(Debug, Serialize, ToSchema)]
pub struct PersonalRecords {
    pub user_id: String,
    pub sports: Vec<SportRecords>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Stats {
    pub user_id: String,
    pub period: String,
    /// Newest period first.
    pub buckets: Vec<StatsBucket>,
    pub records: Records,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    Male,
    Female,
}

/// The athlete: what the calorie and heart-rate stages need. Every field optional; workouts that
/// start after a change use it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub weight_kg: Option<f64>,
    pub birth_year: Option<i32>,
    pub sex: Option<Sex>,
    pub hr_max_bpm: Option<f64>,
    pub hr_rest_bpm: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GearKind {
    Shoes,
    Bike,
    Other,
}

/// A piece of gear as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Gear {
    pub id: String,
    pub name: String,
    pub kind: GearKind,
    /// The sport it is used for (`running`, `cycling`, …).
    pub sport: String,
    /// Distance after which to replace it, km.
    pub replace_after_km: f64,
    pub retired: bool,
    pub created_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GearView {
    #[serde(flatten)]
    pub gear: Gear,
    /// Distance of the workouts it was used in, metres.
    pub distance_m: f64,
    pub workouts: u64,
    /// True once `distance_m` has reached `replace_after_km`.
    pub replacement_due: bool,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewGear {
    pub name: String,
    pub kind: GearKind,
    /// Defaults to `running` for shoes and `cycling` for bikes.
    pub sport: Option<String>,
    /// Defaults: shoes 800 km, bikes 5000 km (the drivetrain), other 1000 km.
    pub replace_after_km: Option<f64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GearUpdate {
    pub name: Option<String>,
    pub replace_after_km: Option<f64>,
    pub retired: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GearList {
    pub gear: Vec<GearView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TrainingLoad {
    pub user_id: String,
    pub sport: Option<String>,
    /// One entry per day, oldest first, ending today (UTC).
    pub days: Vec<TrainingDay>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Recommendations {
    pub user_id: String,
    /// The day (UTC) the recommendations are for.
    pub day: String,
    pub recommendations: Vec<Recommendation>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UploadStatus {
    /// Being read and made durable.
    Processing,
    /// Durable; the workout appears in the API as the pipeline processes it.
    Ready,
    /// The same workout was already stored (`duplicate_of`); nothing was stored again.
    Duplicate,
    /// The file could not be imported (`error` says why); nothing was stored.
    Error,
}

/// An upload and what became of it (Strava's upload status resource).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Upload {
    pub id: String,
    pub user_id: String,
    pub external_id: Option<String>,
    pub file_name: Option<String>,
    /// `gpx`, `tcx`, `fit` or `batches`, as detected.
    pub data_type: Option<String>,
    pub status: UploadStatus,
    /// The (first) workout the file became.
    pub workout_id: Option<WorkoutId>,
    /// Every workout the file became: one per session of a multisport file, else just
    /// `workout_id`.
    #[serde(default)] // uploads recorded before multisport files were split
    pub workout_ids: Vec<WorkoutId>,
    /// Set when the whole file was already stored (every one of its workouts).
    pub duplicate_of: Option<WorkoutId>,
    pub error: Option<String>,
    pub samples: u64,
    pub created_at: String,
}

/// A device token as stored (the secret is shown once, when issued).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IssuedToken {
    pub id: String,
    pub token: String,
    pub user_id: String,
    pub device_id: String,
    pub created_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceTokenView {
    pub id: String,
    pub device_id: String,
    pub created_at: String,
    /// The secret for `Authorization: Bearer` on `/v1/ingest` and the QUIC hello; only in the
    /// answer that issues it.
    pub token: Option<String>,
}

/// `POST /push-subscriptions`: where to deliver the caller's workout changes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPushSubscription {
    /// An absolute http(s) URL your app answers: the challenge (`GET`) and the deliveries
    /// (`POST`).
    pub callback_url: String,
    /// Echoed to the callback in the challenge as `hub.verify_token`, so it can tell the
    /// challenge is yours (at most 256 characters).
    #[serde(default)]
    pub verify_token: Option<String>,
}

/// A push subscription and how its deliveries went.
#[derive(Debug, Serialize, ToSchema)]
pub struct PushSubscriptionView {
    pub id: String,
    pub callback_url: String,
    pub created_at: String,
    /// Deliveries the callback accepted (answered 2xx).
    pub delivered: u64,
    /// Deliveries queued or waiting for a retry.
    pub pending: u64,
    /// Deliveries given up after the last attempt.
    pub failed: u64,
    /// Why the latest failed attempt failed, and when.
    pub last_failure: Option<String>,
    pub last_failure_at: Option<String>,
    /// The key of the `Trackwire-Signature` HMAC; only in the answer that creates the
    /// subscription.
    pub secret: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PushSubscriptionList {
    pub subscriptions: Vec<PushSubscriptionView>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceTokenList {
    pub tokens: Vec<DeviceTokenView>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDeviceToken {
    /// The device the token may send for (its batches' `device_id`).
    pub device_id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Erased {
    pub user_id: String,
    pub workouts_erased: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErasureState {
    InProgress,
    Complete,
}

/// How far a user's erasure has got across the log's partitions (one in the single process).
#[derive(Debug, Serialize, ToSchema)]
pub struct ErasureStatus {
    pub user_id: String,
    pub state: ErasureState,
    /// Partitions whose lake files, event streams and read-store rows hold the user no more.
    pub partitions_done: usize,
    pub partitions: usize,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RetentionRun {
    /// Positions of samples recorded before this instant (RFC 3339) are gone.
    pub positions_dropped_before: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IngestAck {
    pub workout_id: WorkoutId,
    pub acked_seq: u64,
    pub duplicate: bool,
}
