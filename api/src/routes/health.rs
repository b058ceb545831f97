use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::IngestState;

/// Which probe is asking (`?probe=liveness`; readiness when absent).
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Probe {
    /// `readiness` (default): 200 only when serving. `liveness`: 200 while starting up too (a
    /// long replay is progress, not a hang); 503 only when the process cannot recover by itself
    /// and should be restarted.
    probe: Option<String>,
}

/// `GET /healthcheck`: 200 `ok` when serving; 503 `starting` while the log is still replaying at
/// start-up (not ready, alive), 503 `failing` with the reasons when the process cannot recover
/// without a restart: the log writer stopped after a failed write or fsync, or a sink has failed
/// every flush for longer than `sinks.unhealthy_after_secs`.
#[utoipa::path(get, operation_id = "healthcheck", path = "/healthcheck", tag = "operations", params(Probe),
    responses((status = 200, description = "Serving (or, for liveness, starting); log, pipeline and sink progress", body = Object),
              (status = 503, description = "Still replaying the log, or failing (with the reasons)", body = Object)))]
pub async fn healthcheck(State(state): State<IngestState>, Query(probe): Query<Probe>) -> (StatusCode, Json<Value>) {
    let liveness = probe.probe.as_deref() == Some("liveness");
    let log = state.ingestor.log().metrics();
    let durable = log.durable_lsn.load(Ordering::Relaxed);
    let replayed = log.replay_done.load(Ordering::Acquire);
    let now_ms = chrono::Utc::now().timestamp_millis();
    let mut failing: Vec<Value> = Vec::new();
    if let Some(reason) = log.failure.lock().unwrap_or_else(|p| p.into_inner()).clone() {
        failing.push(json!({ "reason": "log_failed", "detail": reason }));
    }
    let no_sinks: &[std::sync::Arc<trackwire_sinks::SinkProgress>] = &[];
    let unhealthy_after_ms = state.data_path.as_ref().map_or(0, |d| d.sink_unhealthy_after_ms);
    let sinks: Vec<Value> = state
        .data_path
        .as_ref()
        .map_or(no_sinks, |d| &d.sinks[..])
        .iter()
        .map(|s| {
            let checkpoint = s.checkpoint.load(Ordering::Relaxed);
            let last_error = s.last_error.lock().ok().and_then(|e| e.clone());
            let failing_for_ms = s.failing_for_ms(now_ms);
            if let Some(for_ms) = s.failing_past(now_ms, unhealthy_after_ms) {
                failing.push(json!({
                    "reason": "sink_failing",
                    "sink": s.name,
                    "failing_secs": for_ms / 1000,
                    "detail": last_error,
                }));
            }
            json!({
                "name": s.name,
                "checkpoint_lsn": checkpoint,
                "lag_records": durable.saturating_sub(checkpoint),
                "errors": s.errors.load(Ordering::Acquire),
                "last_error": last_error,
                "failing_secs": failing_for_ms.map(|ms| ms / 1000),
            })
        })
        .collect();
    let (status, code) = match (failing.is_empty(), replayed) {
        (false, _) => ("failing", StatusCode::SERVICE_UNAVAILABLE),
        (true, false) if liveness => ("starting", StatusCode::OK),
        (true, false) => ("starting", StatusCode::SERVICE_UNAVAILABLE),
        (true, true) => ("ok", StatusCode::OK),
    };
    (
        code,
        Json(json!({
            "status": status,
            "failing": failing,
            "durable_lsn": durable,
            "log_at_cap": log.at_cap.load(Ordering::Relaxed),
            "live_workouts": state.data_path.as_ref().map_or(0, |d| d.live.in_progress()),
            "sinks": sinks
        })),
    )
}
