//! `/api/v1/workouts…`: the caller's workouts, their streams, route, splits and live state.

use axum::extract::State;
use serde::Deserialize;
use trackwire_codec::WorkoutId;
use trackwire_pipeline::WorkoutSummary;
use trackwire_pipeline::route::encode_polyline;
use trackwire_pipeline::stages::Split;
use trackwire_sinks::PublishedEvent;
use trackwire_sinks::read_store::{ListQuery, Streams};
use utoipa::IntoParams;

use super::blocking;
use super::streams::{Resolution, route_points, select_streams};
use crate::auth::Caller;
use crate::extract::{Json, Path, Query};
use crate::views::{
    ErrorBody, LapView, LastSample, LineString, LiveState, NewTag, RouteFeature, RouteMap, RouteProperties,
    SportFilter, StreamSet, Workout, WorkoutDetails, WorkoutList, WorkoutTags, WorkoutUpdate, iso_instant,
    parse_instant_ms,
};
use crate::{ApiError, AppState};

/// Strava's default page size; the maximum keeps one page cheap.
const DEFAULT_LIMIT: usize = 30;
const MAX_LIMIT: usize = 200;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Page size, 1–200 (default 30).
    limit: Option<usize>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Only this sport.
    sport: Option<SportFilter>,
    /// Only workouts that started at or after this instant: ISO 8601 (`2026-12-01T00:00:00Z`) or
    /// Unix seconds (Strava's `after`).
    after: Option<String>,
    /// Only workouts that started before this instant: ISO 8601 or Unix seconds (Strava's
    /// `before`).
    before: Option<String>,
}

/// The caller's workouts, newest first.
#[utoipa::path(get, operation_id = "list_workouts", path = "/api/v1/workouts", tag = "workouts", params(ListParams),
    security(("bearer" = [])),
    responses(
        (status = 200, body = WorkoutList),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<ListParams>,
) -> Result<axum::Json<WorkoutList>, ApiError> {
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid(
            "invalid_limit",
            "limit",
            limit,
            format!("limit must be between 1 and {MAX_LIMIT}, got {limit}"),
        )
        .with_detail("min", 1)
        .with_detail("max", MAX_LIMIT));
    }
    let instant = |text: &str, name: &str| {
        parse_instant_ms(text).ok_or_else(|| {
            let message =
                format!("{name}={text:?} is not an instant: give ISO 8601 (2026-12-01T00:00:00Z) or Unix seconds");
            ApiError::invalid("invalid_time", name, text, message)
        })
    };
    let query = ListQuery {
        after: params.cursor.as_deref().map(decode_cursor).transpose()?,
        limit,
        sport: params.sport.map(|s| s.as_str().to_owned()),
        start_from_ms: params.after.as_deref().map(|t| instant(t, "after")).transpose()?,
        start_before_ms: params.before.as_deref().map(|t| instant(t, "before")).transpose()?,
    };
    let store = state.store.clone();
    let user = caller.user_id.clone();
    let (workouts, next) = blocking(move || store.list(&user, &query)).await?;
    let workouts: Vec<_> = workouts
        .into_iter()
        .map(|w| {
            let live = state.live().and_then(|live| live.get(&w.workout_id)).filter(|l| state.visible(l));
            newest(live, w)
        })
        .collect();
    let accounts = state.accounts.clone();
    let workouts = blocking(move || {
        workouts
            .into_iter()
            .map(|w| accounts.workout_edits(&w.workout_id).map(|edits| Workout::from(w).with_edits(edits)))
            .collect::<Result<Vec<_>, crate::accounts::AccountsError>>()
    })
    .await?;
    Ok(axum::Json(WorkoutList { workouts, next_cursor: next.map(|c| hex(&c)) }))
}

/// The newer of a workout's live state and its stored summary. The live state is usually ahead,
/// but after a restart it is rebuilt by replaying the log and lags the store until the replay
/// catches up: a read must not go back in time meanwhile.
pub(crate) fn newest(live: Option<WorkoutSummary>, stored: WorkoutSummary) -> WorkoutSummary {
    match live {
        Some(live) if live.last_lsn >= stored.last_lsn => live,
        _ => stored,
    }
}

/// A workout the caller may see: the newer of its live state and its stored summary. Another user's
/// workout is "not found", never "forbidden": ids are not to be probed.
pub async fn load(state: &AppState, caller: &Caller, id: &str) -> Result<(WorkoutSummary, bool), ApiError> {
    let id: WorkoutId = id.parse().map_err(|e: trackwire_codec::ParseWorkoutIdError| {
        ApiError::invalid("invalid_workout_id", "id", id, format!("{e}: workout ids are UUIDs"))
    })?;
    let not_found = || {
        ApiError::not_found(format!(
            "no workout {id} of yours: it was never ingested, belongs to someone else, or its first batch is still in the pipeline"
        ))
    };
    let live = state.live().and_then(|live| live.get(&id)).filter(|s| state.visible(s));
    let store = state.store.clone();
    let stored = blocking(move || store.get(&id)).await?.filter(|s| state.visible(s));
    let mut summary = match (live, stored) {
        (Some(live), Some(stored)) => newest(Some(live), stored),
        (live, stored) => live.or(stored).ok_or_else(not_found)?,
    };
    if !caller.may_see(&summary.user_id) {
        return Err(not_found());
    }
    // A scale-out API replica has no live registry: the store's summary says whether the workout
    // is still in progress (it is at most a flush interval old).
    let in_progress = !summary.status.is_ended();
    // The owner's sport, if they changed it, for everything shown of the workout.
    let accounts = state.accounts.clone();
    if let Some(sport) = blocking(move || accounts.workout_edits(&id)).await?.and_then(|e| e.sport) {
        summary.sport = sport;
    }
    Ok((summary, in_progress))
}

async fn streams_of(state: &AppState, id: WorkoutId) -> Result<Streams, ApiError> {
    let store = state.store.clone();
    blocking(move || store.streams(&id)).await
}

/// Summary, route polyline, best efforts and gear of one workout.
#[utoipa::path(get, operation_id = "get_workout", path = "/api/v1/workouts/{id}", tag = "workouts",
    params(("id" = String, Path, description = "Workout id (UUID)")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = WorkoutDetails),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 429, body = ErrorBody),
    ))]
pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<WorkoutDetails>, ApiError> {
    let (summary, live) = load(&state, &caller, &id).await?;
    let id = summary.workout_id;
    let streams = streams_of(&state, id).await?;
    let route = route_points(&streams, Resolution::Low.points());
    let all_positions = (0..streams.len()).filter(|i| streams.latlng(*i).is_some()).count();
    let personal_records = personal_records_of(&state, &summary).await?;
    let (store, accounts) = (state.store.clone(), state.accounts.clone());
    let (efforts, gear_id, tags, edits) = blocking(move || {
        let efforts = store.best_efforts(&id).map_err(ApiError::internal)?;
        let gear = accounts.gear_of_workout(&id).map_err(ApiError::internal)?;
        let tags = accounts.workout_tags(&id).map_err(ApiError::internal)?;
        let edits = accounts.workout_edits(&id).map_err(ApiError::internal)?;
        Ok::<_, ApiError>((efforts, gear, tags, edits))
    })
    .await?;
    Ok(axum::Json(WorkoutDetails {
        map: RouteMap {
            summary_polyline: (!route.is_empty()).then(|| encode_polyline(route.iter().copied())),
            points: all_positions,
        },
        best_efforts: efforts.map(|e| e.seconds).unwrap_or_default(),
        personal_records,
        gear_id,
        tags,
        live,
        summary: Workout::from(summary).with_edits(edits),
    }))
}

/// The efforts in which an ended workout was a personal record (none while in progress).
async fn personal_records_of(state: &AppState, workout: &WorkoutSummary) -> Result<Vec<String>, ApiError> {
    if !workout.status.is_ended() {
        return Ok(Vec::new());
    }
    let mine = super::users::workouts_of(state, &workout.user_id).await?;
    let efforts = super::records::efforts_of(state, &mine).await?;
    Ok(match efforts.get(&workout.workout_id) {
        Some(own) => super::records::personal_records(workout, own, &mine, &efforts),
        None => Vec::new(),
    })
}

/// Longest tag, in characters.
const MAX_TAG_CHARS: usize = 64;

/// A tag as given (`field` names it in the error), without its surrounding spaces.
pub fn valid_tag(given: &str, field: &str) -> Result<String, ApiError> {
    let tag = given.trim().to_owned();
    if tag.is_empty() || tag.chars().count() > MAX_TAG_CHARS || tag.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "validation_failed",
            field,
            given,
            format!("a tag is 1 to {MAX_TAG_CHARS} characters without control characters"),
        )
        .with_detail("max", MAX_TAG_CHARS));
    }
    Ok(tag)
}

/// Adds a tag to the workout (its owner only) and publishes `WorkoutTagAdded`, in order with the
/// workout's own events. Adding a tag it has already changes nothing and publishes nothing.
#[utoipa::path(post, operation_id = "add_workout_tag", path = "/api/v1/workouts/{id}/tags", tag = "workouts",
    params(("id" = String, Path, description = "Workout id (UUID)")),
    request_body = NewTag,
    security(("bearer" = [])),
    responses(
        (status = 200, body = WorkoutTags),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 429, body = ErrorBody), (status = 503, body = ErrorBody),
    ))]
pub async fn add_tag(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(new): Json<NewTag>,
) -> Result<axum::Json<WorkoutTags>, ApiError> {
    let (summary, _) = load(&state, &caller, &id).await?;
    let tag = valid_tag(&new.tag, "tag")?;
    let (accounts, workout) = (state.accounts.clone(), summary.workout_id);
    let t = tag.clone();
    let (added, tags) = blocking(move || {
        let added = accounts.add_workout_tag(&workout, &t).map_err(ApiError::internal)?;
        Ok::<_, ApiError>((added, accounts.workout_tags(&workout).map_err(ApiError::internal)?))
    })
    .await?;
    if added {
        let now = chrono::Utc::now().timestamp_millis();
        let event = PublishedEvent {
            event_id: uuid::Uuid::new_v4().hyphenated().to_string(),
            event_type: "WorkoutTagAdded".into(),
            timestamp_ms: now,
            workout_id: Some(workout),
            user_id: summary.user_id.clone(),
            data: serde_json::json!({
                "workout_id": workout.to_string(),
                "user_id": summary.user_id,
                "tag": tag,
                "tags": tags,
            }),
        };
        crate::control::publish(state.control.as_ref(), &state.store, event).await?;
    }
    Ok(axum::Json(WorkoutTags { workout_id: workout.to_string(), tags }))
}

/// Changes what the owner may change: the gear used.
#[utoipa::path(put, operation_id = "update_workout", path = "/api/v1/workouts/{id}", tag = "workouts",
    params(("id" = String, Path, description = "Workout id (UUID)")),
    request_body = WorkoutUpdate,
    security(("bearer" = [])),
    responses(
        (status = 200, body = WorkoutDetails),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 429, body = ErrorBody),
    ))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(update): Json<WorkoutUpdate>,
) -> Result<axum::Json<WorkoutDetails>, ApiError> {
    let (summary, _) = load(&state, &caller, &id).await?;
    let accounts = state.accounts.clone();
    let owner = summary.user_id.clone();
    let workout = summary.workout_id;
    blocking(move || {
        if let Some(gear) = &update.gear_id
            && accounts.gear(&owner, gear).map_err(ApiError::internal)?.is_none()
        {
            return Err(ApiError::invalid(
                "unknown_gear",
                "gear_id",
                gear.as_str(),
                format!("the owner has no gear '{gear}': create it with POST /api/v1/users/me/gear first"),
            ));
        }
        accounts.assign_gear(&workout, update.gear_id.as_deref()).map_err(ApiError::internal)
    })
    .await?;
    get_one(State(state), caller, Path(id)).await
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamParams {
    /// Comma-separated stream types (default: all of them): `time`, `latlng`, `distance`,
    /// `altitude`, `velocity_smooth`, `heartrate`, `cadence`, `watts`, `moving`, `grade_smooth`.
    keys: Option<String>,
    /// `low` (100 points), `medium` (1,000) or `high` (10,000); every sample when absent.
    resolution: Option<Resolution>,
}

/// Index-aligned streams (Strava's streams, keyed by type).
#[utoipa::path(get, operation_id = "get_workout_streams", path = "/api/v1/workouts/{id}/streams", tag = "workouts",
    params(("id" = String, Path, description = "Workout id (UUID)"), StreamParams),
    security(("bearer" = [])),
    responses(
        (status = 200, body = StreamSet),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 429, body = ErrorBody),
    ))]
pub async fn streams(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(params): Query<StreamParams>,
) -> Result<axum::Json<StreamSet>, ApiError> {
    let (summary, _) = load(&state, &caller, &id).await?;
    let streams = streams_of(&state, summary.workout_id).await?;
    Ok(axum::Json(select_streams(&streams, params.keys.as_deref(), params.resolution)?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RouteParams {
    /// `low` (100 points), `medium` (1,000) or `high` (10,000); every position when absent.
    resolution: Option<Resolution>,
}

/// The route as a GeoJSON Feature with a LineString.
#[utoipa::path(get, operation_id = "get_workout_route", path = "/api/v1/workouts/{id}/route", tag = "workouts",
    params(("id" = String, Path, description = "Workout id (UUID)"), RouteParams),
    security(("bearer" = [])),
    responses(
        (status = 200, body = RouteFeature, content_type = "application/geo+json"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 429, body = ErrorBody),
    ))]
pub async fn route(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(params): Query<RouteParams>,
) -> Result<([(axum::http::HeaderName, &'static str); 1], axum::Json<RouteFeature>), ApiError> {
    let (summary, _) = load(&state, &caller, &id).await?;
    let streams = streams_of(&state, summary.workout_id).await?;
    let target = params.resolution.map_or(usize::MAX, Resolution::points);
    let points = route_points(&streams, target);
    let original_size = (0..streams.len()).filter(|i| streams.latlng(*i).is_some()).count();
    let feature = RouteFeature {
        kind: "Feature".into(),
        geometry: LineString {
            kind: "LineString".into(),
            coordinates: points.iter().map(|(lat, lon)| [*lon, *lat]).collect(),
        },
        properties: RouteProperties {
            workout_id: summary.workout_id,
            resolution: params.resolution.map_or("full", Resolution::name).to_owned(),
            original_size,
        },
    };
    Ok(([(axum::http::header::CONTENT_TYPE, "application/geo+json")], axum::Json(feature)))
}

/// Per-kilometre splits (the last may be partial).
#[utoipa::path(get, operation_id = "get_workout_splits", path = "/api/v1/workouts/{id}/splits", tag = "workouts",
    params(("id" = String, Path, description = "Workout id (UUID)")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = Vec<Split>),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 429, body = ErrorBody),
    ))]
pub async fn splits(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<Vec<Split>>, ApiError> {
    let (summary, _) = load(&state, &caller, &id).await?;
    Ok(axum::Json(summary.splits))
}

/// The laps: one per press of the lap button (and imported lap), or the whole workout as one lap.
#[utoipa::path(get, operation_id = "get_workout_laps", path = "/api/v1/workouts/{id}/laps", tag = "workouts",
    params(("id" = String, Path, description = "Workout id (UUID)")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = Vec<LapView>),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 429, body = ErrorBody),
    ))]
pub async fn laps(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<Vec<LapView>>, ApiError> {
    let (summary, _) = load(&state, &caller, &id).await?;
    if !summary.laps.is_empty() {
        return Ok(axum::Json(summary.laps.iter().map(LapView::from).collect()));
    }
    let moving_s = summary.moving_time_s;
    Ok(axum::Json(vec![LapView {
        lap: 1,
        start_time: iso_instant(summary.start_time_ms),
        elapsed_s: summary.elapsed_s,
        moving_s,
        distance_m: summary.distance_m,
        pace_s_per_km: (moving_s > 0.0 && summary.distance_m > 0.0).then(|| moving_s / summary.distance_m * 1000.0),
        heart_rate_avg_bpm: summary.heart_rate_avg_bpm,
        heart_rate_max_bpm: summary.heart_rate_max_bpm,
        elevation_gain_m: summary.elevation_gain_m,
    }]))
}

/// The live state of a workout: status, running totals, latest sample.
#[utoipa::path(get, operation_id = "get_workout_live", path = "/api/v1/workouts/{id}/live", tag = "workouts",
    params(("id" = String, Path, description = "Workout id (UUID)")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = LiveState),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 429, body = ErrorBody),
    ))]
pub async fn live(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<LiveState>, ApiError> {
    let (summary, in_progress) = load(&state, &caller, &id).await?;
    let store = state.store.clone();
    let workout = summary.workout_id;
    let last = blocking(move || store.last_chunk(&workout)).await?;
    let last_sample = last.filter(|c| !c.is_empty()).map(|chunk| {
        let i = chunk.len() - 1;
        LastSample {
            time: iso_instant(chunk.time_ms[i]),
            latlng: chunk.latlng(i),
            distance_m: chunk.distance_m[i],
            heart_rate_bpm: chunk.heart_rate_bpm[i],
        }
    });
    Ok(axum::Json(LiveState {
        workout_id: workout,
        status: summary.status,
        in_progress,
        summary: summary.into(),
        last_sample,
    }))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_cursor(text: &str) -> Result<[u8; 24], ApiError> {
    let bad = || {
        ApiError::invalid(
            "invalid_cursor",
            "cursor",
            text,
            "cursor is not one this server issued: pass next_cursor from the previous page unchanged",
        )
    };
    if text.len() != 48 || !text.is_ascii() {
        return Err(bad());
    }
    let mut out = [0u8; 24];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2).ok_or_else(bad)?, 16).map_err(|_| bad())?;
    }
    Ok(out)
}
