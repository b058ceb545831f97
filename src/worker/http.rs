//! The worker's HTTP endpoints, for probes and scraping: `/healthcheck` (200 with the partitions
//! it runs and their progress) and `/metrics` (Prometheus text; the families are documented in
//! docs/observability.md, consumer lag among them for the autoscaler).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde_json::json;
use trackwire_api::prometheus::PrometheusText;
use trackwire_pipeline::{EndReason, NotApplied};

use super::WorkerStatus;
use super::partition::PartitionStatus;
use crate::launch::Stop;

pub struct HttpThread {
    thread: std::thread::JoinHandle<()>,
}

impl HttpThread {
    pub fn join(self) {
        let _ = self.thread.join();
    }
}

/// Serves on `listener` until `stop`; sets `failed` if the server fails, so the control loop
/// stops too.
pub fn spawn(
    listener: std::net::TcpListener,
    status: Arc<WorkerStatus>,
    stop: Stop,
    failed: Arc<AtomicBool>,
) -> anyhow::Result<HttpThread> {
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("starting the HTTP runtime")?;
    listener.set_nonblocking(true).context("setting up the HTTP listener")?;
    let listener = {
        let _entered = runtime.enter();
        tokio::net::TcpListener::from_std(listener).context("setting up the HTTP listener")?
    };
    tracing::info!(http = %listener.local_addr()?, "worker health and metrics on /healthcheck and /metrics");
    let app = Router::new().route("/healthcheck", get(health)).route("/metrics", get(metrics)).with_state(status);
    let thread = std::thread::Builder::new()
        .name("worker-http".into())
        .spawn(move || {
            runtime.block_on(async move {
                if let Err(err) = axum::serve(listener, app).with_graceful_shutdown(stop.stopped()).await {
                    tracing::error!(%err, "worker HTTP server failed");
                    failed.store(true, Ordering::Relaxed);
                }
            })
        })
        .context("spawning the worker HTTP thread")?;
    Ok(HttpThread { thread })
}

/// 200 `ok`, or 503 `failing` when a sink of a partition has failed every flush for longer than
/// `sinks.unhealthy_after_secs` (for readiness and liveness alike: the worker holds its
/// partitions' leases, and a restart hands them on).
async fn health(State(status): State<Arc<WorkerStatus>>) -> (axum::http::StatusCode, axum::Json<serde_json::Value>) {
    let now_ms = chrono::Utc::now().timestamp_millis();
    let limit_ms = status.sink_unhealthy_after_ms;
    let mut failing = Vec::new();
    let partitions: Vec<_> = status
        .partitions
        .lock()
        .map(|p| p.clone())
        .unwrap_or_default()
        .iter()
        .map(|p| {
            for s in p.sinks.iter() {
                if let Some(for_ms) = s.failing_past(now_ms, limit_ms) {
                    failing.push(json!({
                        "reason": "sink_failing",
                        "partition": p.partition,
                        "sink": s.name,
                        "failing_secs": for_ms / 1000,
                        "detail": s.last_error.lock().ok().and_then(|e| e.clone()),
                    }));
                }
            }
            json!({
                "partition": p.partition,
                "replayed_from_lsn": p.first_lsn,
                "delivered_lsn": p.delivered.load(Ordering::Relaxed),
                "end_offset": p.reader.end_offset.load(Ordering::Relaxed),
                "duplicates_dropped": p.reader.duplicates_dropped.load(Ordering::Relaxed),
                "indexed_workouts": p.reader.indexed_workouts.load(Ordering::Relaxed),
                "sinks": p.sinks.iter().map(|s| json!({
                    "name": s.name,
                    "checkpoint_lsn": s.checkpoint.load(Ordering::Relaxed),
                    "errors": s.errors.load(Ordering::Acquire),
                    "last_error": s.last_error.lock().ok().and_then(|e| e.clone()),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let (code, state) = if failing.is_empty() {
        (axum::http::StatusCode::OK, "ok")
    } else {
        (axum::http::StatusCode::SERVICE_UNAVAILABLE, "failing")
    };
    let body = json!({ "status": state, "failing": failing, "role": "pipeline", "worker": status.worker, "owner": status.owner, "athlete_profiles": status.profiles.load(Ordering::Relaxed), "partitions": partitions });
    (code, axum::Json(body))
}

async fn metrics(State(status): State<Arc<WorkerStatus>>) -> impl axum::response::IntoResponse {
    let partitions = status.partitions.lock().map(|p| p.clone()).unwrap_or_default();
    let per_partition = |value: &dyn Fn(&PartitionStatus) -> u64| {
        partitions.iter().map(|p| (format!("partition=\"{}\"", p.partition), value(p))).collect::<Vec<_>>()
    };
    let mut out = PrometheusText::default();
    out.single(
        "trackwire_worker_partitions",
        "gauge",
        "Raw-topic partitions this worker runs now.",
        partitions.len() as u64,
    );
    out.family(
        "trackwire_worker_consumer_lag_records",
        "gauge",
        "Records of the partition not yet handed to every sink.",
        per_partition(&|p| {
            p.reader.end_offset.load(Ordering::Relaxed).saturating_sub(p.delivered.load(Ordering::Relaxed))
        }),
    );
    out.family(
        "trackwire_workouts_ended_total",
        "counter",
        "Workouts the pipeline ended, by partition and reason (device: Complete or Cancel; idle_timeout).",
        partitions.iter().flat_map(|p| {
            EndReason::ALL.map(|reason| {
                (format!("partition=\"{}\",reason=\"{}\"", p.partition, reason.name()), p.live.ended(reason))
            })
        }),
    );
    out.family(
        "trackwire_pipeline_batches_not_applied_total",
        "counter",
        "Acked batches the pipeline kept in the log but did not apply, by partition and reason (after_end: the \
         workout had ended; other_owner: another user or device; undecodable).",
        partitions.iter().flat_map(|p| {
            NotApplied::ALL.map(|reason| {
                (format!("partition=\"{}\",reason=\"{}\"", p.partition, reason.name()), p.live.not_applied(reason))
            })
        }),
    );
    out.family(
        "trackwire_worker_duplicates_dropped_total",
        "counter",
        "Raw records dropped as a batch already seen.",
        per_partition(&|p| p.reader.duplicates_dropped.load(Ordering::Relaxed)),
    );
    out.family(
        "trackwire_worker_indexed_workouts",
        "gauge",
        "Workouts the partition's reader remembers (batches read, owner): those with a record nothing has \
         released yet.",
        per_partition(&|p| p.reader.indexed_workouts.load(Ordering::Relaxed)),
    );
    out.family(
        "trackwire_worker_sink_checkpoint_lsn",
        "gauge",
        "What each sink of a partition has committed through.",
        partitions.iter().flat_map(|p| {
            p.sinks.iter().map(move |s| {
                (format!("partition=\"{}\",sink=\"{}\"", p.partition, s.name), s.checkpoint.load(Ordering::Relaxed))
            })
        }),
    );
    out.into_response()
}
