//! `POST /v1/ingest` that verifies and drops; `/healthcheck` and `/metrics` (memory) like the gateway.

use axum::Router;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use trackwire_api::views::IngestAck;
use trackwire_codec::{DecodeLimits, decode_batch};
use trackwire_ingest::{ContentEncoding, decompress_capped};

/// The gateway's default body limits.
const MAX_BODY_BYTES: usize = 16 << 20;

pub fn app() -> Router {
    Router::new()
        .route("/v1/ingest", post(ingest))
        .route("/healthcheck", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
}

fn refuse(code: &str, message: String) -> Response {
    let body = serde_json::json!({"error": code, "message": message, "code": 400, "details": {}});
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

async fn ingest(headers: HeaderMap, body: Bytes) -> Response {
    let encoding = headers.get(header::CONTENT_ENCODING).and_then(|v| v.to_str().ok());
    let plain = match ContentEncoding::parse(encoding).and_then(|e| decompress_capped(&body, e, MAX_BODY_BYTES)) {
        Ok(Some(plain)) => Bytes::from(plain),
        Ok(None) => body,
        Err(e) => return refuse("bad_encoding", e.to_string()),
    };
    match decode_batch(&plain, &DecodeLimits::default()) {
        Ok(batch) => {
            Json(IngestAck { workout_id: batch.workout_id(), acked_seq: batch.seq(), duplicate: false }).into_response()
        }
        Err(e) => refuse("malformed_batch", e.to_string()),
    }
}

async fn metrics() -> String {
    let rss = trackwire_api::resident_memory_bytes().unwrap_or(0);
    format!("# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes {rss}\n")
}
