//! Log lines: text for a terminal, or one JSON object per line for a log pipeline (Loki, Elastic,
//! CloudWatch), with the fields every Trackwire service logs: `timestamp` (RFC 3339, UTC),
//! `level`, `service`, `trace_id`, `span_id`, `correlation_id` (null outside a request), then
//! `target`, `message` and the event's and its spans' own fields, innermost winning.

use std::fmt;

use serde_json::{Map, Value};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

pub use crate::otlp::OtlpGuard;

/// How log lines are written (`--log-format`, `TRACKWIRE_LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// The fields every line carries, null when unknown.
pub const CORRELATION_FIELDS: [&str; 3] = ["trace_id", "span_id", "correlation_id"];

/// The filter without `RUST_LOG`: `info`, except the Delta kernel, whose info events are
/// per-scan metrics (one structured event per log read, with no message), not news.
const DEFAULT_FILTER: &str = "info,delta_kernel=warn,delta_kernel_default_engine=warn";

/// Installs the global subscriber: `RUST_LOG` filters (default [`DEFAULT_FILTER`]), lines go to stderr, and
/// with an `otlp_endpoint` spans are exported there too. Keep the returned guard until exit: its
/// drop flushes the spans not yet exported.
pub fn init(format: LogFormat, service: &'static str, otlp_endpoint: Option<&str>) -> anyhow::Result<OtlpGuard> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let from_env = std::env::var("RUST_LOG").ok().filter(|v| !v.trim().is_empty());
    let mut filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| DEFAULT_FILTER.into());
    if from_env.as_deref().is_some_and(|v| !v.contains("delta_kernel")) {
        // `RUST_LOG=info` should not turn the kernel's per-scan metrics into log lines either.
        for quiet in ["delta_kernel=warn", "delta_kernel_default_engine=warn"] {
            filter = filter.add_directive(quiet.parse().expect("a valid directive"));
        }
    }
    let (otel, guard) = match otlp_endpoint {
        Some(endpoint) => {
            let (layer, guard) = crate::otlp::layer(endpoint, service)?;
            (Some(layer), guard)
        }
        None => (None, OtlpGuard::default()),
    };
    let registry = tracing_subscriber::registry().with(filter).with(otel);
    // Colour only for a person at a terminal: a file or a log collector gets the plain text.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let lines = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(colour);
    match format {
        LogFormat::Text => registry.with(lines).try_init()?,
        LogFormat::Json => {
            registry.with(lines.fmt_fields(JsonFields::new()).event_format(JsonLines { service })).try_init()?
        }
    }
    Ok(guard)
}

/// One JSON object per event. Span fields are recorded as JSON by [`JsonFields`] and merged
/// outermost first, so a request's `trace_id` reaches every line logged inside it.
pub struct JsonLines {
    pub service: &'static str,
}

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let mut line = Map::new();
        line.insert("timestamp".into(), chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true).into());
        line.insert("level".into(), event.metadata().level().as_str().into());
        line.insert("service".into(), self.service.into());
        for field in CORRELATION_FIELDS {
            line.insert(field.into(), Value::Null);
        }
        line.insert("target".into(), event.metadata().target().into());
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let extensions = span.extensions();
                let Some(fields) = extensions.get::<FormattedFields<N>>() else { continue };
                if let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(fields.as_str()) {
                    line.extend(fields);
                }
            }
        }
        let mut visitor = Fields(&mut line);
        event.record(&mut visitor);
        let text = serde_json::to_string(&line).map_err(|_| fmt::Error)?;
        writeln!(writer, "{text}")
    }
}

/// Records an event's fields into the line; `message` stays `message`.
struct Fields<'a>(&'a mut Map<String, Value>);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().into(), format!("{value:?}").into());
    }
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_f64(&mut self, field: &tracing::field::Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_line_inside_a_request_span_carries_its_ids_and_one_outside_carries_nulls() {
        let captured = Captured::default();
        let sink = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || sink.clone())
            .fmt_fields(JsonFields::new())
            .event_format(JsonLines { service: "trackwire-test" })
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(lsn = 7u64, "outside");
            let span = tracing::info_span!("http", correlation_id = "req-1", trace_id = "4bf9", span_id = "00f0");
            let _entered = span.enter();
            tracing::warn!(sink = "lake", "inside \"quoted\"");
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).expect(l)).collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0]["message"], "outside");
        assert_eq!(lines[0]["lsn"], 7);
        assert_eq!(lines[0]["trace_id"], Value::Null);
        assert_eq!(lines[0]["service"], "trackwire-test");
        assert_eq!(lines[1]["level"], "WARN");
        assert_eq!(lines[1]["message"], "inside \"quoted\"");
        assert_eq!(
            (&lines[1]["trace_id"], &lines[1]["span_id"], &lines[1]["correlation_id"]),
            (&"4bf9".into(), &"00f0".into(), &"req-1".into())
        );
        assert_eq!(lines[1]["sink"], "lake");
        assert!(chrono::DateTime::parse_from_rfc3339(lines[1]["timestamp"].as_str().unwrap()).is_ok());
    }
}
