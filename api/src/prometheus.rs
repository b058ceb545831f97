//! The Prometheus text exposition format, written by hand: the process's own `/metrics` and a
//! pipeline worker's render their counters through this one writer.

use std::fmt::Write;

/// A `/metrics` body being written.
#[derive(Default)]
pub struct PrometheusText(String);

impl PrometheusText {
    /// One metric family: `samples` are `(labels, value)`, labels already rendered (`k="v"`).
    pub fn family(&mut self, name: &str, kind: &str, help: &str, samples: impl IntoIterator<Item = (String, u64)>) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, value) in samples {
            if labels.is_empty() {
                let _ = writeln!(self.0, "{name} {value}");
            } else {
                let _ = writeln!(self.0, "{name}{{{labels}}} {value}");
            }
        }
    }

    /// A family of one unlabelled sample.
    pub fn single(&mut self, name: &str, kind: &str, help: &str, value: u64) {
        self.family(name, kind, help, [(String::new(), value)]);
    }

    /// One sample per sink, labelled `sink`.
    pub fn per_sink(
        &mut self,
        sinks: &[std::sync::Arc<trackwire_sinks::SinkProgress>],
        name: &str,
        kind: &str,
        help: &str,
        value: impl Fn(&trackwire_sinks::SinkProgress) -> u64,
    ) {
        self.family(name, kind, help, sinks.iter().map(|s| (format!("sink=\"{}\"", s.name), value(s))));
    }

    /// One histogram family: per series its labels (already rendered) and a snapshot; writes the
    /// cumulative `_bucket{le}` lines, `_sum` (seconds) and `_count`.
    pub fn histogram(
        &mut self,
        name: &str,
        help: &str,
        series: impl IntoIterator<Item = (String, trackwire_ingest::histogram::HistogramSnapshot)>,
    ) {
        use trackwire_ingest::histogram::BUCKET_BOUNDS_SECONDS;
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (labels, snapshot) in series {
            let sep = if labels.is_empty() { "" } else { "," };
            let bounds = BUCKET_BOUNDS_SECONDS.iter().map(|b| b.to_string()).chain(["+Inf".to_owned()]);
            for (le, count) in bounds.zip(&snapshot.cumulative) {
                let _ = writeln!(self.0, "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {count}");
            }
            let braces = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
            let _ = writeln!(self.0, "{name}_sum{braces} {}", snapshot.sum_seconds);
            let _ = writeln!(self.0, "{name}_count{braces} {}", snapshot.count);
        }
    }

    /// The body, with the content type Prometheus expects.
    pub fn into_response(self) -> impl axum::response::IntoResponse {
        ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], self.0)
    }
}
