//! OpenTelemetry trace export over OTLP/HTTP (JSON encoding), off unless an endpoint is given
//! (`--otlp-endpoint`, `TRACKWIRE_OTLP_ENDPOINT`, e.g. `http://otel-collector:4318/v1/traces`).
//! Every `tracing` span becomes an OTel span; the HTTP request span continues the caller's
//! `traceparent` (api/src/trace_context.rs), so the trace ids in the logs and in the traces agree.

use anyhow::Context;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;

/// Flushes and stops the exporter when dropped (at the end of `main`).
#[derive(Default)]
pub struct OtlpGuard(Option<SdkTracerProvider>);

impl Drop for OtlpGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.0.take()
            && let Err(e) = provider.shutdown()
        {
            eprintln!("OTLP export did not flush at exit: {e}");
        }
    }
}

/// The tracing layer that exports spans to `endpoint`, and the guard that flushes it.
pub fn layer<S>(endpoint: &str, service: &'static str) -> anyhow::Result<(impl tracing_subscriber::Layer<S>, OtlpGuard)>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpJson)
        .with_endpoint(endpoint)
        .build()
        .with_context(|| {
            format!("cannot set up OTLP export to {endpoint}: give a URL like http://collector:4318/v1/traces")
        })?;
    let resource = opentelemetry_sdk::Resource::builder().with_service_name(service).build();
    let provider = SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build();
    let tracer = provider.tracer(service);
    Ok((tracing_opentelemetry::layer().with_tracer(tracer), OtlpGuard(Some(provider))))
}
