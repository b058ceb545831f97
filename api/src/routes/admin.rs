//! Operations that need the admin scope.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, SecondsFormat, Utc};

use super::blocking;
use crate::auth::Caller;
use crate::control::Control;
use crate::views::{ErrorBody, RetentionRun};
use crate::{ApiError, AppState};

/// Coordinate retention now (it also runs in the background): positions of samples older than
/// `privacy.coordinate_retention_days` are dropped from the read store, the lake and the streams;
/// totals stay.
#[utoipa::path(post, path = "/api/v1/admin/retention", tag = "privacy",
    security(("bearer" = [])),
    responses(
        (status = 200, body = RetentionRun),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 429, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ))]
pub async fn retention(State(state): State<AppState>, caller: Caller) -> Result<axum::Json<RetentionRun>, ApiError> {
    if !caller.admin {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("running retention needs the '{}' scope", state.auth.config().admin_scope()),
        ));
    }
    let before = run_retention(&state, Utc::now().timestamp_millis()).await?;
    Ok(axum::Json(RetentionRun {
        positions_dropped_before: DateTime::from_timestamp_millis(before)
            .unwrap_or_default()
            .to_rfc3339_opts(SecondsFormat::Millis, true),
    }))
}

/// One retention pass at `now_ms`: drops positions in `[watermark, now − retention)` and moves the
/// watermark. Returns the cut.
pub async fn run_retention(state: &AppState, now_ms: i64) -> Result<i64, ApiError> {
    let days = state.privacy.coordinate_retention_days;
    if days == 0 {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "retention_disabled",
            "privacy.coordinate_retention_days is 0: positions are kept forever",
        ));
    }
    let before = now_ms - i64::from(days) * 86_400_000;
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
/// older than `privacy.coordinate_retention_days` are dropped everywhere (totals stay).
pub async fn retention_loop(state: AppState) {
    if state.privacy.coordinate_retention_days == 0 {
        return;
    }
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(state.privacy.retention_interval_secs));
    loop {
        tick.tick().await;
        match run_retention(&state, Utc::now().timestamp_millis()).await {
            Ok(before) => tracing::debug!(before_ms = before, "coordinate retention ran"),
            Err(err) => tracing::warn!(message = %err.message, "coordinate retention failed; retried next interval"),
        }
    }
}
