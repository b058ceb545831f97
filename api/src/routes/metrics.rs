//! `GET /metrics` in the Prometheus text format, rendered from the components' own counters.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State;
use axum::response::IntoResponse;

use trackwire_pipeline::{EndReason, NotApplied};

use crate::IngestState;
use crate::prometheus::PrometheusText;

fn load(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// Prometheus metrics.
#[utoipa::path(get, operation_id = "metrics", path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format", body = String, content_type = "text/plain")))]
pub async fn metrics(State(state): State<IngestState>) -> impl IntoResponse {
    let ingest = state.ingestor.metrics();
    let log = state.ingestor.log().metrics();
    let durable = load(&log.durable_lsn);
    let mut out = PrometheusText::default();
    out.single(
        "trackwire_ingest_samples_total",
        "counter",
        "Samples in acked batches (retries not counted twice).",
        load(&ingest.samples_acked),
    );
    out.single(
        "trackwire_ingest_batches_acked_total",
        "counter",
        "Batches acked after being made durable (retries included).",
        load(&ingest.batches_acked),
    );
    out.single(
        "trackwire_ingest_duplicate_batches_total",
        "counter",
        "Acked retries of batches already stored.",
        load(&ingest.duplicates_acked),
    );
    out.single(
        "trackwire_ingest_bytes_received_total",
        "counter",
        "Request body bytes received from authenticated devices.",
        load(&ingest.bytes_received),
    );
    out.family(
        "trackwire_ingest_rejects_total",
        "counter",
        "Batches refused, by reason.",
        ingest.rejects().map(|(reason, n)| (format!("reason=\"{reason}\""), n)),
    );
    out.single(
        "trackwire_log_records_appended_total",
        "counter",
        "Records appended to the durable log.",
        load(&log.records_appended),
    );
    out.single(
        "trackwire_log_bytes_appended_total",
        "counter",
        "Bytes appended to the durable log.",
        load(&log.bytes_appended),
    );
    out.single("trackwire_log_fsyncs_total", "counter", "Group commits (one fsync each).", load(&log.fsyncs));
    out.single("trackwire_log_bytes", "gauge", "Bytes of log segments on disk.", load(&log.bytes_on_disk));
    out.single("trackwire_log_segments", "gauge", "Log segment files on disk.", load(&log.segments));
    out.single(
        "trackwire_log_indexed_workouts",
        "gauge",
        "Workouts with a record in the embedded log, which its dedup and owner indexes hold.",
        load(&log.indexed_workouts),
    );
    out.single(
        "trackwire_log_at_cap",
        "gauge",
        "1 while the log is at log.max_retained_bytes and ingest pushes back (a sink is behind).",
        u64::from(log.at_cap.load(std::sync::atomic::Ordering::Relaxed)),
    );
    out.single(
        "trackwire_quic_connections",
        "gauge",
        "Authenticated QUIC connections open now.",
        load(&state.ingestor.metrics().quic_connections),
    );
    out.single("trackwire_log_durable_lsn", "gauge", "Highest durable log sequence number.", durable);
    out.single(
        "trackwire_log_queue_depth",
        "gauge",
        "Appends waiting for the log writer.",
        state.ingestor.log().queued() as u64,
    );
    out.histogram(
        "trackwire_ingest_ack_duration_seconds",
        "Time from a batch's arrival (HTTP request, QUIC frame) to its durable ack, by transport.",
        [
            ("transport=\"http\"".to_owned(), ingest.ack_latency_http.snapshot()),
            ("transport=\"quic\"".to_owned(), ingest.ack_latency_quic.snapshot()),
        ],
    );
    out.histogram(
        "trackwire_upload_processing_seconds",
        "Time from an upload's acceptance to its final status (parsing, checks, durable), by status.",
        trackwire_ingest::UPLOAD_OUTCOMES
            .iter()
            .zip(&ingest.upload_processing)
            .map(|(status, h)| (format!("status=\"{status}\""), h.snapshot())),
    );
    state.http.render(&mut out);
    if let Some(data_path) = &state.data_path {
        data_path_metrics(&mut out, data_path, durable);
    }
    if let Some(rss) = resident_memory_bytes() {
        out.single("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", rss);
    }
    out.into_response()
}

/// The pipeline's and the sinks' progress, where this process runs them.
fn data_path_metrics(out: &mut PrometheusText, data_path: &crate::DataPathView, durable: u64) {
    out.single(
        "trackwire_pipeline_fed_lsn",
        "gauge",
        "Highest LSN handed in order to the sinks.",
        load(&data_path.fed_through),
    );
    out.single("trackwire_live_workouts", "gauge", "Workouts in progress.", data_path.live.in_progress() as u64);
    out.family(
        "trackwire_workouts_ended_total",
        "counter",
        "Workouts the pipeline ended, by reason (device: Complete or Cancel; idle_timeout).",
        EndReason::ALL.map(|reason| (format!("reason=\"{}\"", reason.name()), data_path.live.ended(reason))),
    );
    out.family(
        "trackwire_pipeline_batches_not_applied_total",
        "counter",
        "Acked batches the pipeline kept in the log but did not apply, by reason (after_end: the workout had \
         ended; other_owner: another user or device; undecodable).",
        NotApplied::ALL.map(|reason| (format!("reason=\"{}\"", reason.name()), data_path.live.not_applied(reason))),
    );
    let sinks = &data_path.sinks;
    out.per_sink(sinks, "trackwire_sink_lag_records", "gauge", "Durable records not yet committed by the sink.", |s| {
        durable.saturating_sub(load(&s.checkpoint))
    });
    out.per_sink(
        sinks,
        "trackwire_sink_checkpoint_lsn",
        "gauge",
        "LSN through which the sink has committed everything.",
        |s| load(&s.checkpoint),
    );
    out.per_sink(sinks, "trackwire_sink_errors_total", "counter", "Failed sink commits (retried).", |s| {
        load(&s.errors)
    });
}

/// This process's resident set size (Linux `/proc/self/status` VmRSS), under the name the
/// Prometheus client libraries use, so load tests and dashboards read memory the usual way.
pub fn resident_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line.trim_start_matches("VmRSS:").trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}
