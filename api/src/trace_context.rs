//! W3C Trace Context (<https://www.w3.org/TR/trace-context/>) for the request span: the trace id
//! a client or proxy sent in `traceparent`, or a new one, and a new span id for this server's
//! part. Both land in the request's log span (`trace_id`, `span_id`), beside its
//! `correlation_id` (the `X-Request-Id`), so every log line of a request can be found from any of
//! the three. With OTLP export on, the ids are the exported span's: the span continues the
//! caller's trace as a child of its `traceparent` span.

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The request's [`TraceContext`], for handlers that hand the trace on (ingest, to the raw
/// topic's headers). Put in the request's extensions before the trace layer makes the request
/// span, and filled when it does.
#[derive(Debug, Clone, Default)]
pub struct RequestTrace(pub std::sync::Arc<std::sync::OnceLock<TraceContext>>);

impl RequestTrace {
    /// The `traceparent` that continues this request's trace, once the span exists.
    pub fn traceparent(&self) -> Option<String> {
        self.0.get().map(TraceContext::traceparent)
    }
}

/// A trace id (32 lowercase hex digits) and this hop's span id (16).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: String,
    pub span_id: String,
}

impl TraceContext {
    /// Continues the trace of a valid `traceparent` header (`00-<trace>-<parent>-<flags>`), or
    /// starts a new one; either way with a fresh span id.
    pub fn from_traceparent(header: Option<&str>) -> TraceContext {
        TraceContext::continuing(header.and_then(parse).map(|(trace, _)| trace))
    }

    /// `trace_id` (or a new one) with a fresh span id.
    fn continuing(trace_id: Option<String>) -> TraceContext {
        let span_id = uuid::Uuid::new_v4().simple().to_string()[..16].to_owned();
        TraceContext { trace_id: trace_id.unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string()), span_id }
    }

    /// The ids of `span`: with an OpenTelemetry layer installed, the span is made a child of the
    /// caller's `traceparent` (when valid) and its own OTel ids are returned; without one, the
    /// caller's trace id (or a new one) and a new span id.
    pub fn for_span(span: &tracing::Span, traceparent: Option<&str>) -> TraceContext {
        let caller = traceparent.and_then(parse);
        if let Some((trace_id, parent_id)) = &caller
            && let (Ok(trace), Ok(parent)) = (TraceId::from_hex(trace_id), SpanId::from_hex(parent_id))
        {
            let remote = SpanContext::new(trace, parent, TraceFlags::SAMPLED, true, TraceState::default());
            let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(remote));
        }
        let exported = span.context().span().span_context().clone();
        if exported.is_valid() {
            return TraceContext { trace_id: exported.trace_id().to_string(), span_id: exported.span_id().to_string() };
        }
        TraceContext::continuing(caller.map(|(trace, _)| trace))
    }

    /// The `traceparent` value that hands this trace on (sampled).
    pub fn traceparent(&self) -> String {
        format!("00-{}-{}-01", self.trace_id, self.span_id)
    }
}

/// The trace id and parent span id of a version-00 `traceparent`, when well formed and not all
/// zeros (the spec's invalid values); anything else starts a new trace rather than failing the
/// request.
fn parse(header: &str) -> Option<(String, String)> {
    let mut parts = header.trim().split('-');
    let (version, trace, parent, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let valid = version == "00"
        && parts.next().is_none()
        && hex(trace, 32)
        && hex(parent, 16)
        && hex(flags, 2)
        && trace.bytes().any(|b| b != b'0')
        && parent.bytes().any(|b| b != b'0');
    valid.then(|| (trace.to_owned(), parent.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_traceparent_is_continued_and_anything_else_starts_a_trace() {
        let sent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let context = TraceContext::from_traceparent(Some(sent));
        assert_eq!(context.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(context.span_id.len(), 16);
        assert_ne!(context.span_id, "00f067aa0ba902b7");
        for bad in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        ] {
            let fresh = TraceContext::from_traceparent(Some(bad));
            assert_ne!(fresh.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736", "{bad:?}");
            assert_eq!(fresh.trace_id.len(), 32);
        }
        assert!(context.traceparent().starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
    }
}
