use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::{Extension, Json};
use trackwire_ingest::IngestError;

use crate::trace_context::RequestTrace;
use crate::views::IngestAck;
use crate::{ApiError, IngestState};

/// `POST /v1/ingest`: one FlatBuffers batch; answers once it is durable.
/// The bytes of one batch, for the OpenAPI document (the handler reads the raw body).
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct BatchBytes(#[allow(dead_code)] Vec<u8>);

#[utoipa::path(post, operation_id = "ingest_batch", path = "/v1/ingest", tag = "ingest",
    request_body(
        description = "One Trackwire batch (codec/PROTOCOL.md); Content-Encoding zstd or gzip allowed. The server \
            reads the bytes whatever the Content-Type, so a client may send them as application/octet-stream.",
        content = BatchBytes, content_type = "application/x-flatbuffers",
    ),
    security(("device_token" = [])),
    responses(
        (status = 200, body = IngestAck),
        (status = 400, body = crate::views::ErrorBody), (status = 401, body = crate::views::ErrorBody),
        (status = 403, body = crate::views::ErrorBody), (status = 413, body = crate::views::ErrorBody),
        (status = 415, body = crate::views::ErrorBody), (status = 503, body = crate::views::ErrorBody),
    ))]
pub async fn ingest(
    State(state): State<IngestState>,
    headers: HeaderMap,
    trace: Option<Extension<RequestTrace>>,
    body: Body,
) -> Result<Json<IngestAck>, ApiError> {
    let started = std::time::Instant::now();
    let bearer = crate::auth::bearer(&headers);
    let encoding = headers.get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok());
    // The token first, from the headers: a stranger gets its 401 before the server reads (or
    // learns the size of) a byte of the body.
    let refuse = |err: IngestError| {
        state.ingestor.metrics().reject(&err);
        ApiError::from(err)
    };
    match bearer {
        None => return Err(refuse(IngestError::MissingToken)),
        Some(token) if !state.ingestor.knows_token(token) => return Err(refuse(IngestError::UnknownToken)),
        Some(_) => {}
    }
    let limit = state.ingestor.max_body_bytes();
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    if let Some(size) = declared.filter(|size| *size > limit) {
        return Err(refuse(IngestError::BodyTooLarge { size, limit }));
    }
    let body = axum::body::to_bytes(body, limit).await.map_err(|err| {
        let too_large = std::iter::successors(Some(&err as &dyn std::error::Error), |e| e.source())
            .any(|e| e.is::<http_body_util::LengthLimitError>());
        if too_large {
            // Chunked bodies have no Content-Length: all we know is that they exceed the limit.
            refuse(IngestError::BodyTooLarge { size: limit + 1, limit })
        } else {
            ApiError::bad_request("body_read_failed", format!("could not read the request body: {err}"))
                .with_details(serde_json::json!({ "field": "body" }))
        }
    })?;
    // Only a log that hands the trace on (the raw topic) gets one: no string per batch otherwise.
    let traceparent = if state.ingestor.log().carries_traceparent() {
        trace.and_then(|Extension(trace)| trace.traceparent())
    } else {
        None
    };
    let accepted = state.ingestor.ingest_traced(body, encoding, bearer, traceparent).await?;
    state.ingestor.metrics().ack_latency_http.observe(started.elapsed());
    Ok(Json(IngestAck {
        workout_id: accepted.workout_id,
        acked_seq: accepted.acked_seq,
        duplicate: accepted.duplicate,
    }))
}
