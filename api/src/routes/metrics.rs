//! `GET /metrics` in the Prometheus text format, rendered from the components' own counters.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::AppState;

struct Out(String);

impl Out {
    fn metric(&mut self, name: &str, kind: &str, help: &str, samples: &[(&str, u64)]) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, value) in samples {
            if labels.is_empty() {
                let _ = writeln!(self.0, "{name} {value}");
            } else {
                let _ = writeln!(self.0, "{name}{{{labels}}} {value}");
            }
        }
    }
}

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let ingest = state.ingestor.metrics();
    let log = state.ingestor.log().metrics();
    let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    let mut out = Out(String::with_capacity(4096));
    out.metric(
        "trackwire_ingest_samples_total",
        "counter",
        "Samples in acked batches (retries not counted twice).",
        &[("", load(&ingest.samples_acked))],
    );
    out.metric(
        "trackwire_ingest_batches_acked_total",
        "counter",
        "Batches acked after being made durable (retries included).",
        &[("", load(&ingest.batches_acked))],
    );
    out.metric(
        "trackwire_ingest_duplicate_batches_total",
        "counter",
        "Acked retries of batches already stored.",
        &[("", load(&ingest.duplicates_acked))],
    );
    out.metric(
        "trackwire_ingest_bytes_received_total",
        "counter",
        "Request body bytes received from authenticated devices.",
        &[("", load(&ingest.bytes_received))],
    );
    let rejects: Vec<(String, u64)> = ingest
        .rejects()
        .map(|(reason, n)| (format!("reason=\"{reason}\""), n))
        .collect();
    let rejects: Vec<(&str, u64)> = rejects.iter().map(|(l, n)| (l.as_str(), *n)).collect();
    out.metric(
        "trackwire_ingest_rejects_total",
        "counter",
        "Batches refused, by reason.",
        &rejects,
    );
    out.metric(
        "trackwire_log_records_appended_total",
        "counter",
        "Records appended to the durable log.",
        &[("", load(&log.records_appended))],
    );
    out.metric(
        "trackwire_log_bytes_appended_total",
        "counter",
        "Bytes appended to the durable log.",
        &[("", load(&log.bytes_appended))],
    );
    out.metric(
        "trackwire_log_fsyncs_total",
        "counter",
        "Group commits (one fsync each).",
        &[("", load(&log.fsyncs))],
    );
    out.metric(
        "trackwire_log_bytes",
        "gauge",
        "Bytes of log segments on disk.",
        &[("", load(&log.bytes_on_disk))],
    );
    out.metric(
        "trackwire_log_segments",
        "gauge",
        "Log segment files on disk.",
        &[("", load(&log.segments))],
    );
    out.metric(
        "trackwire_log_durable_lsn",
        "gauge",
        "Highest durable log sequence number.",
        &[("", load(&log.durable_lsn))],
    );
    out.metric(
        "trackwire_log_queue_depth",
        "gauge",
        "Appends waiting for the log writer.",
        &[("", state.ingestor.log().queued() as u64)],
    );
    out.metric(
        "trackwire_pipeline_fed_lsn",
        "gauge",
        "Highest LSN handed in order to the sinks.",
        &[("", load(&state.pipeline_through))],
    );
    out.metric(
        "trackwire_live_workouts",
        "gauge",
        "Workouts in progress.",
        &[("", state.live.in_progress() as u64)],
    );
    let durable = load(&log.durable_lsn);
    let labels: Vec<String> = state
        .sinks
        .iter()
        .map(|s| format!("sink=\"{}\"", s.name))
        .collect();
    let lag: Vec<(&str, u64)> = state
        .sinks
        .iter()
        .zip(&labels)
        .map(|(s, l)| (l.as_str(), durable.saturating_sub(load(&s.checkpoint))))
        .collect();
    out.metric(
        "trackwire_sink_lag_records",
        "gauge",
        "Durable records not yet committed by the sink.",
        &lag,
    );
    let checkpoints: Vec<(&str, u64)> = state
        .sinks
        .iter()
        .zip(&labels)
        .map(|(s, l)| (l.as_str(), load(&s.checkpoint)))
        .collect();
    out.metric(
        "trackwire_sink_checkpoint_lsn",
        "gauge",
        "LSN through which the sink has committed everything.",
        &checkpoints,
    );
    let errors: Vec<(&str, u64)> = state
        .sinks
        .iter()
        .zip(&labels)
        .map(|(s, l)| (l.as_str(), load(&s.errors)))
        .collect();
    out.metric(
        "trackwire_sink_errors_total",
        "counter",
        "Failed sink commits (retried).",
        &errors,
    );
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out.0,
    )
}
