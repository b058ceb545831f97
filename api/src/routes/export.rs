//! `GET /api/v1/workouts/{id}/export?format=gpx|tcx|original`: a workout as a file another app can
//! import, written by the codec's writers from the stored streams and laps, or the file that was
//! uploaded, as it was.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use trackwire_codec::export::{LapSpan, Recording, gpx, tcx};
use trackwire_codec::import::Fix;
use trackwire_codec::sport_named;
use trackwire_pipeline::WorkoutSummary;
use trackwire_sinks::read_store::Streams;
use utoipa::{IntoParams, ToSchema};

use super::blocking;
use super::workouts::load;
use crate::auth::Caller;
use crate::extract::{Path, Query};
use crate::views::ErrorBody;
use crate::{ApiError, AppState};

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExportFormat {
    /// GPX 1.1 with Garmin's TrackPointExtension: positioned points only.
    Gpx,
    /// TCX with laps: every point.
    Tcx,
    /// The file as it was uploaded (GPX, TCX or FIT); 404 for a workout that was not uploaded.
    Original,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    format: ExportFormat,
}

/// The workout as a GPX or TCX file (an attachment named after the workout).
#[utoipa::path(get, operation_id = "export_workout", path = "/api/v1/workouts/{id}/export", tag = "workouts",
    params(("id" = String, Path, description = "Workout id (UUID)"), ExportParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The file", content(
            (String = "application/gpx+xml"), (String = "application/vnd.garmin.tcx+xml"),
            (String = "application/vnd.ant.fit"), (String = "application/octet-stream")
        )),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 429, body = ErrorBody),
    ))]
pub async fn export(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(params): Query<ExportParams>,
) -> Result<Response, ApiError> {
    let (summary, _) = load(&state, &caller, &id).await?;
    let workout = summary.workout_id;
    let write: fn(&Recording<'_>) -> Vec<u8> = match params.format {
        ExportFormat::Original => return original(&state, &summary).await,
        ExportFormat::Gpx => gpx,
        ExportFormat::Tcx => tcx,
    };
    let extension = if matches!(params.format, ExportFormat::Gpx) { "gpx" } else { "tcx" };
    let store = state.store.clone();
    let streams = blocking(move || store.streams(&workout)).await?;
    let bytes = tokio::task::spawn_blocking(move || file_of(&summary, &fixes_of(&streams), write))
        .await
        .map_err(ApiError::internal)?;
    let disposition = format!("attachment; filename=\"{workout}.{extension}\"");
    Ok((
        [(header::CONTENT_TYPE, content_type(extension).to_owned()), (header::CONTENT_DISPOSITION, disposition)],
        bytes,
    )
        .into_response())
}

async fn original(state: &AppState, summary: &WorkoutSummary) -> Result<Response, ApiError> {
    let workout = summary.workout_id;
    let not_kept = || {
        ApiError::not_found(format!(
            "workout {workout} has no original file: it was recorded live or before uploads were kept; \
             export it as gpx or tcx"
        ))
    };
    let originals = state.originals.as_ref().ok_or_else(not_kept)?;
    let original = originals.get(&summary.user_id, &workout).await.map_err(ApiError::internal)?.ok_or_else(not_kept)?;
    let disposition = format!("attachment; filename=\"{workout}.{}\"", original.format);
    Ok((
        [(header::CONTENT_TYPE, content_type(&original.format).to_owned()), (header::CONTENT_DISPOSITION, disposition)],
        original.bytes,
    )
        .into_response())
}

/// The media type of a file format.
pub fn content_type(format: &str) -> &'static str {
    match format {
        "gpx" => "application/gpx+xml",
        "tcx" => "application/vnd.garmin.tcx+xml",
        "fit" => "application/vnd.ant.fit",
        _ => "application/octet-stream",
    }
}

/// The stored samples as the codec's points: positions as cleaning kept them, our cumulative
/// distance where a file has the device's.
pub fn fixes_of(streams: &Streams) -> Vec<Fix> {
    (0..streams.len())
        .map(|i| {
            let [lat, lon] = streams.latlng(i).map_or([None, None], |[lat, lon]| [Some(lat), Some(lon)]);
            Fix {
                time_ms: Some(streams.time_ms[i]),
                lat,
                lon,
                altitude_m: streams.altitude_m[i].map(f64::from),
                heart_rate: streams.heart_rate_bpm[i],
                cadence: streams.cadence_rpm[i],
                power_w: streams.power_w[i],
                device_distance_m: Some(streams.distance_m[i]),
                device_speed_mps: None,
            }
        })
        .collect()
}

/// The workout as `write` writes it from its stored samples (`fixes`) and laps, named after its
/// sport and start.
pub fn file_of(summary: &WorkoutSummary, fixes: &[Fix], write: fn(&Recording<'_>) -> Vec<u8>) -> Vec<u8> {
    let laps: Vec<LapSpan> = summary
        .laps
        .iter()
        .map(|lap| LapSpan { start_ms: lap.start_time_ms, end_ms: lap.end_time_ms, distance_m: lap.distance_m })
        .collect();
    let name = format!("{} {}", summary.sport, crate::views::iso_instant(summary.start_time_ms));
    write(&Recording { sport: sport_named(&summary.sport), name: &name, fixes, laps: &laps, pauses: &summary.pauses })
}
