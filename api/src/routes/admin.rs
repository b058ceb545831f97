//! Operations that need the admin scope.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use chrono::Utc;
use serde::Deserialize;

use super::blocking;
use crate::auth::Caller;
use crate::control::Control;
use crate::views::{ErrorBody, RetentionRun, iso_instant, parse_instant_ms};
use crate::{ApiError, AppState};

/// Where an operator wants the retention cut.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RetentionQuery {
    /// Drop the positions of everything stored before this instant (ISO 8601, or Unix seconds)
    /// instead of `privacy.coordinate_retention_days` ago: a stricter cut, e.g. after the policy
    /// changed. It cannot be in the future; the cut never moves back.
    pub before: Option<String>,
}

/// Coordinate retention now (it also runs in the background): positions of samples Trackwire
/// stored more than `privacy.coordinate_retention_days` ago (or before `before`) are dropped from
/// the read store and the lake; totals stay. Age counts from storage, not from when a sample was
/// recorded, so an imported years-old recording keeps its route for the whole window.
#[utoipa::path(post, operation_id = "run_retention", path = "/api/v1/admin/retention", tag = "privacy",
    security(("bearer" = [])),
    params(RetentionQuery),
    responses(
        (status = 200, body = RetentionRun),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 429, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ))]
pub async fn retention(
    State(state): State<AppState>,
    caller: Caller,
    Query(query): Query<RetentionQuery>,
) -> Result<axum::Json<RetentionRun>, ApiError> {
    if !caller.admin {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("running retention needs the '{}' scope", state.auth.config().admin_scope()),
        ));
    }
    let now_ms = Utc::now().timestamp_millis();
    let before = match query.before.as_deref() {
        None => None,
        Some(text) => Some(parse_instant_ms(text).filter(|ms| *ms <= now_ms).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_before",
                format!(
                    "before={text:?} is not an instant up to now: give ISO 8601 (2026-01-31T00:00:00Z) or Unix seconds"
                ),
            )
            .with_details(serde_json::json!({ "field": "before", "value": text }))
        })?),
    };
    let before = run_retention(&state, now_ms, before).await?;
    Ok(axum::Json(RetentionRun { positions_dropped_before: iso_instant(before) }))
}

/// One retention pass at `now_ms`: drops the positions of samples stored in `[watermark, cut)`,
/// where the cut is `now − retention` or, when later, `stricter` (Unix ms), and moves the
/// watermark. Returns the cut.
pub async fn run_retention(state: &AppState, now_ms: i64, stricter: Option<i64>) -> Result<i64, ApiError> {
    let days = state.privacy.coordinate_retention_days;
    if days == 0 && stricter.is_none() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "retention_disabled",
            "privacy.coordinate_retention_days is 0: positions are kept forever (give `before` to drop them once)",
        ));
    }
    let by_policy = if days == 0 { i64::MIN } else { now_ms - i64::from(days) * 86_400_000 };
    let before = by_policy.max(stricter.unwrap_or(i64::MIN));
    let accounts = state.accounts.clone();
    let from = blocking(move || accounts.positions_dropped_before()).await?;
    if before <= from {
        return Ok(from);
    }
    match &state.control {
        Some(Control::Local(commands)) => {
            let command = trackwire_sinks::Command::DropPositions { from_ms: from, before_ms: before };
            commands.run(command).await.map_err(|e| {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "retention_incomplete", format!("{e}; it is retried"))
            })?
        }
        // Each partition's data path drops the positions at the command's place in the log.
        Some(Control::Log(raw)) => {
            let command = trackwire_ingest::log::LogCommand::DropPositions { from_ms: from, before_ms: before };
            crate::control::place(raw, &state.store, command).await?;
        }
        None => {
            let store = state.store.clone();
            blocking(move || store.drop_positions(from, before)).await?;
        }
    }
    let accounts = state.accounts.clone();
    blocking(move || accounts.set_positions_dropped_before(before)).await?;
    Ok(before)
}

/// Coordinate retention in the background: every `privacy.retention_interval_secs`, positions
/// stored more than `privacy.coordinate_retention_days` ago are dropped everywhere (totals stay).
pub async fn retention_loop(state: AppState) {
    if state.privacy.coordinate_retention_days == 0 {
        return;
    }
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(state.privacy.retention_interval_secs));
    loop {
        tick.tick().await;
        match run_retention(&state, Utc::now().timestamp_millis(), None).await {
            Ok(before) => tracing::debug!(before_ms = before, "coordinate retention ran"),
            Err(err) => tracing::warn!(message = %err.message, "coordinate retention failed; retried next interval"),
        }
    }
}
