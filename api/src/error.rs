//! The one HTTP error type. Every error response has the body
//! `{"error": <status name>, "message": <what went wrong and what to do>, "code": <stable machine
//! code>, "details": <object>}`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use trackwire_ingest::IngestError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Value,
    /// Seconds for a `Retry-After` header (503/429).
    pub retry_after: Option<u32>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), details: json!({}), retry_after: None }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", what)
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn internal(err: impl std::fmt::Display) -> Self {
        tracing::error!(%err, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("the server failed: {err}; retry, and report it if it persists"),
        )
    }
}

impl From<trackwire_sinks::SinkError> for ApiError {
    fn from(err: trackwire_sinks::SinkError) -> Self {
        ApiError::internal(err)
    }
}

impl From<crate::accounts::AccountsError> for ApiError {
    fn from(err: crate::accounts::AccountsError) -> Self {
        ApiError::internal(err)
    }
}

impl From<IngestError> for ApiError {
    fn from(err: IngestError) -> Self {
        let status = match &err {
            IngestError::MissingToken | IngestError::UnknownToken => StatusCode::UNAUTHORIZED,
            IngestError::DeviceMismatch { .. } | IngestError::UserMismatch { .. } => StatusCode::FORBIDDEN,
            IngestError::BodyTooLarge { .. } | IngestError::DecompressedTooLarge { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            IngestError::UnsupportedEncoding { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            IngestError::BadCompression { .. } | IngestError::Malformed(_) => StatusCode::BAD_REQUEST,
            IngestError::Overloaded | IngestError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            IngestError::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let details = match &err {
            IngestError::BodyTooLarge { size, limit } => json!({ "size": size, "limit": limit }),
            IngestError::DecompressedTooLarge { limit } => json!({ "limit": limit }),
            IngestError::Malformed(decode) => json!({ "reason": decode.code() }),
            _ => json!({}),
        };
        let retry_after = matches!(err, IngestError::Overloaded | IngestError::ShuttingDown).then_some(1);
        ApiError { status, code: err.code(), message: err.to_string(), details, retry_after }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let name = self.status.canonical_reason().unwrap_or("error").to_ascii_lowercase().replace(' ', "_");
        let body = json!({ "error": name, "message": self.message, "code": self.code, "details": self.details });
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
