use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::IngestState;

/// `GET /healthcheck`: 200 when serving, 503 while the log is still replaying at start-up.
#[utoipa::path(get, operation_id = "healthcheck", path = "/healthcheck", tag = "operations",
    responses((status = 200, description = "Serving; log, pipeline and sink progress", body = Object),
              (status = 503, description = "Still replaying the log", body = Object)))]
pub async fn healthcheck(State(state): State<IngestState>) -> (StatusCode, Json<Value>) {
    let log = state.ingestor.log().metrics();
    let durable = log.durable_lsn.load(Ordering::Relaxed);
    let replayed = log.replay_done.load(Ordering::Acquire);
    let no_sinks: &[std::sync::Arc<trackwire_sinks::SinkProgress>] = &[];
    let sinks: Vec<Value> = state
        .data_path
        .as_ref()
        .map_or(no_sinks, |d| &d.sinks[..])
        .iter()
        .map(|s| {
            let checkpoint = s.checkpoint.load(Ordering::Relaxed);
            json!({
                "name": s.name,
                "checkpoint_lsn": checkpoint,
                "lag_records": durable.saturating_sub(checkpoint),
                "errors": s.errors.load(Ordering::Acquire),
                "last_error": s.last_error.lock().ok().and_then(|e| e.clone()),
            })
        })
        .collect();
    let status = if replayed { "ok" } else { "starting" };
    let code = if replayed { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (
        code,
        Json(json!({
            "status": status,
            "durable_lsn": durable,
            "log_at_cap": log.at_cap.load(Ordering::Relaxed),
            "live_workouts": state.data_path.as_ref().map_or(0, |d| d.live.in_progress()),
            "sinks": sinks
        })),
    )
}
