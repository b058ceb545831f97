use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};
use trackwire_codec::WorkoutId;

use crate::{ApiError, AppState};

/// Strava's default page size; the maximum keeps one page cheap.
const DEFAULT_LIMIT: usize = 30;
const MAX_LIMIT: usize = 200;

#[derive(Debug, Deserialize)]
pub struct ListParams {
    limit: Option<usize>,
    cursor: Option<String>,
}

/// `GET /api/v1/workouts?limit=&cursor=`: newest first; `next_cursor` is null on the last page.
pub async fn list(State(state): State<AppState>, Query(params): Query<ListParams>) -> Result<Json<Value>, ApiError> {
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_limit",
            format!("limit must be between 1 and {MAX_LIMIT}, got {limit}"),
        ));
    }
    let cursor = params.cursor.as_deref().map(decode_cursor).transpose()?;
    let store = state.store.clone();
    let (workouts, next) = tokio::task::spawn_blocking(move || store.list(cursor, limit))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?;
    let workouts: Vec<_> = workouts.into_iter().map(|w| state.live.get(&w.workout_id).unwrap_or(w)).collect();
    Ok(Json(json!({ "workouts": workouts, "next_cursor": next.map(|c| hex(&c)) })))
}

/// `GET /api/v1/workouts/{id}`: the summary, live if the workout is in progress.
pub async fn get_one(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let id: WorkoutId = id.parse().map_err(|e: trackwire_codec::ParseWorkoutIdError| {
        ApiError::bad_request("invalid_workout_id", e.to_string())
    })?;
    if let Some(live) = state.live.get(&id) {
        return Ok(Json(json!(live)));
    }
    let store = state.store.clone();
    match tokio::task::spawn_blocking(move || store.get(&id))
        .await
        .map_err(ApiError::internal)?
        .map_err(ApiError::internal)?
    {
        Some(summary) => Ok(Json(json!(summary))),
        None => Err(ApiError::not_found(format!(
            "no workout {id}: it was never ingested, or its first batch is still in the pipeline"
        ))),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_cursor(text: &str) -> Result<[u8; 24], ApiError> {
    let bad = || {
        ApiError::bad_request(
            "invalid_cursor",
            "cursor is not one this server issued: pass next_cursor from the previous page unchanged",
        )
    };
    if text.len() != 48 {
        return Err(bad());
    }
    let mut out = [0u8; 24];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2).ok_or_else(bad)?, 16).map_err(|_| bad())?;
    }
    Ok(out)
}
