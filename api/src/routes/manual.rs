//! `POST /api/v1/workouts`: a workout entered by hand (gym, treadmill, a run without a watch).
//! It becomes one batch with no samples, a Start and a Complete and the entered figures as its
//! device totals, and goes through the same checks and durable log as any batch, so the pipeline,
//! the lake, the events and Kafka see it like every other workout.

use axum::extract::State;
use axum::http::{StatusCode, header};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use trackwire_codec::{BatchData, ControlEvent, ControlKind, DeviceTotals, WorkoutId, encode_batch, sport_named};
use trackwire_ingest::DeviceToken;
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::extract::Json;
use crate::views::{ErrorBody, SportFilter, parse_instant_ms};
use crate::{ApiError, AppState};

/// The device id of workouts entered by hand.
pub const MANUAL_DEVICE: &str = "manual";
/// Longest workout that can be entered: a week (a multi-day ultra still fits).
const MAX_ELAPSED_S: f64 = 7.0 * 86_400.0;
/// Workout ids of entered workouts: UUIDv5 in this namespace of (user, start, sport).
const MANUAL_NAMESPACE: uuid::Uuid = uuid::uuid!("6c1f9a52-83d4-4b0e-9e57-1f2b8d3c4a61");

/// `POST /workouts`: what was done.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWorkout {
    pub sport: SportFilter,
    /// ISO 8601 instant (or Unix seconds).
    pub start_time: String,
    /// Seconds from start to end, 1 to 604,800.
    pub elapsed_s: f64,
    /// Seconds moving (default: all of `elapsed_s`).
    pub moving_time_s: Option<f64>,
    /// Metres (default 0: a gym session).
    pub distance_m: Option<f64>,
    pub heart_rate_avg_bpm: Option<f64>,
    pub heart_rate_max_bpm: Option<f64>,
    pub calories_kcal: Option<f64>,
    pub elevation_gain_m: Option<f64>,
}

/// The workout the entry became.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedWorkout {
    pub workout_id: WorkoutId,
    /// Where it can be read, once the pipeline has processed it (at most a flush interval).
    pub location: String,
}

/// Enters a workout by hand. The same entry again is the same workout (stored once).
#[utoipa::path(post, operation_id = "create_workout", path = "/api/v1/workouts", tag = "workouts",
    request_body = NewWorkout,
    security(("bearer" = [])),
    responses(
        (status = 201, body = CreatedWorkout, headers(("location" = String, description = "The workout"))),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(new): Json<NewWorkout>,
) -> Result<(StatusCode, [(header::HeaderName, String); 1], axum::Json<CreatedWorkout>), ApiError> {
    let batch = batch_of(&caller.user_id, &new)?;
    let workout_id = batch.workout_id;
    let binding =
        DeviceToken { token: String::new(), device_id: MANUAL_DEVICE.into(), user_id: Some(caller.user_id.clone()) };
    let verified =
        state.ingestor().verify(Bytes::from(encode_batch(&batch)), &binding).map_err(|refused| refused.error)?;
    let accepted = state.ingestor().submit(verified).await?.await?;
    state.ingestor().count_ack(&accepted);
    let location = format!("/api/v1/workouts/{workout_id}");
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location.clone())],
        axum::Json(CreatedWorkout { workout_id, location }),
    ))
}

/// The entry as one batch: no samples, Start at 0 and Complete at `elapsed_s`, the figures as the
/// device's totals (which the pipeline takes for a workout without samples).
fn batch_of(user: &str, new: &NewWorkout) -> Result<BatchData, ApiError> {
    let start_ms = parse_instant_ms(&new.start_time).ok_or_else(|| {
        ApiError::invalid(
            "invalid_time",
            "start_time",
            new.start_time.as_str(),
            "start_time is not an instant: give ISO 8601 (2026-12-01T07:30:00Z) or Unix seconds",
        )
    })?;
    let range = |field: &'static str, value: Option<f64>, min: f64, max: f64| -> Result<Option<f64>, ApiError> {
        match value {
            Some(v) if !(v.is_finite() && (min..=max).contains(&v)) => Err(ApiError::invalid(
                "validation_failed",
                field,
                v,
                format!("{field} must be between {min} and {max}"),
            )
            .with_detail("min", min)
            .with_detail("max", max)),
            other => Ok(other),
        }
    };
    let elapsed_s = range("elapsed_s", Some(new.elapsed_s), 1.0, MAX_ELAPSED_S)?.unwrap_or(1.0);
    let moving_s = range("moving_time_s", new.moving_time_s, 0.0, elapsed_s)?.unwrap_or(elapsed_s);
    let totals = DeviceTotals {
        distance_m: Some(range("distance_m", new.distance_m, 0.0, 1_000_000.0)?.unwrap_or(0.0)),
        timer_s: Some(moving_s),
        elapsed_s: Some(elapsed_s),
        ascent_m: range("elevation_gain_m", new.elevation_gain_m, 0.0, 100_000.0)?,
        descent_m: None,
        calories_kcal: range("calories_kcal", new.calories_kcal, 0.0, 100_000.0)?,
        heart_rate_avg: range("heart_rate_avg_bpm", new.heart_rate_avg_bpm, 20.0, 255.0)?,
        heart_rate_max: range("heart_rate_max_bpm", new.heart_rate_max_bpm, 20.0, 255.0)?,
        max_speed_mps: None,
    };
    let sport = sport_named(new.sport.as_str());
    let name = format!("{user}\n{start_ms}\n{}", new.sport.as_str());
    let workout_id = WorkoutId(*uuid::Uuid::new_v5(&MANUAL_NAMESPACE, name.as_bytes()).as_bytes());
    let end_offset = (elapsed_s * 1000.0).round() as u32;
    Ok(BatchData {
        device_id: MANUAL_DEVICE.into(),
        user_id: user.to_owned(),
        workout_id,
        sport,
        seq: 0,
        base_time_ms: start_ms,
        device_model: Some("entered by hand".into()),
        samples: Vec::new(),
        events: vec![ControlEvent::new(0, ControlKind::Start), ControlEvent::new(end_offset, ControlKind::Complete)],
        device_totals: Some(totals),
    })
}
