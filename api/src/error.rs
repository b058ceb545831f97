//! The one HTTP error type. Every error response has the platform's error body
//! `{"error": <stable machine code>, "message": <what went wrong and what to do>, "code": <the HTTP
//! status, a number>, "details": <object: the field, limit and value where there is one>}`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use trackwire_codec::DecodeError;
use trackwire_ingest::IngestError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    /// The stable machine code, the body's `error` (listed in `docs/api.md`).
    pub error: &'static str,
    pub message: String,
    pub details: Value,
    /// Seconds for a `Retry-After` header (503/429).
    pub retry_after: Option<u32>,
}

impl ApiError {
    pub fn new(status: StatusCode, error: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, error, message: message.into(), details: json!({}), retry_after: None }
    }

    /// A 400 for one bad input: `details` names the field and the value refused; add what is
    /// allowed with [`ApiError::with_detail`] (`min`/`max`, `limit`, `allowed`).
    pub fn invalid(error: &'static str, field: &str, value: impl Into<Value>, message: impl Into<String>) -> Self {
        ApiError::bad_request(error, message).with_details(json!({ "field": field, "value": value.into() }))
    }

    /// Adds entries to `details`.
    pub fn with_detail(mut self, key: &str, value: impl Into<Value>) -> Self {
        if let Value::Object(map) = &mut self.details {
            map.insert(key.to_owned(), value.into());
        }
        self
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", what)
    }

    pub fn bad_request(error: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, error, message)
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
            IngestError::DeviceMismatch { .. }
            | IngestError::UserMismatch { .. }
            | IngestError::WorkoutOwnerMismatch { .. } => StatusCode::FORBIDDEN,
            IngestError::BodyTooLarge { .. } | IngestError::DecompressedTooLarge { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            IngestError::UnsupportedEncoding { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            IngestError::BadCompression { .. } | IngestError::Malformed(_) | IngestError::TimeOutOfRange { .. } => {
                StatusCode::BAD_REQUEST
            }
            IngestError::Overloaded | IngestError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            IngestError::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let details = match &err {
            IngestError::BodyTooLarge { size, limit } => json!({ "field": "body", "size": size, "limit": limit }),
            IngestError::DecompressedTooLarge { limit } => json!({ "field": "body", "limit": limit }),
            IngestError::DeviceMismatch { token_device, batch_device } => {
                json!({ "field": "device_id", "value": batch_device, "allowed": [token_device] })
            }
            IngestError::UserMismatch { token_user, batch_user } => {
                json!({ "field": "user_id", "value": batch_user, "allowed": [token_user] })
            }
            IngestError::WorkoutOwnerMismatch { workout_id } => json!({ "field": "workout_id", "value": workout_id }),
            IngestError::UnsupportedEncoding { encoding } => {
                json!({ "field": "Content-Encoding", "value": encoding, "allowed": ["zstd", "gzip", "identity"] })
            }
            IngestError::BadCompression { encoding, .. } => json!({ "field": "body", "encoding": encoding }),
            IngestError::Malformed(decode) => match decode {
                DecodeError::WrongFileIdentifier { found } => {
                    json!({ "field": "file_identifier", "value": found, "allowed": ["TWB1"] })
                }
                DecodeError::UnsupportedSchemaVersion { found, supported } => {
                    json!({ "field": "schema_version", "value": found, "allowed": [supported] })
                }
                DecodeError::EmptyField { field } => json!({ "field": field }),
                DecodeError::TooMany { what, count, limit } => json!({ "field": what, "value": count, "limit": limit }),
                DecodeError::Truncated { len } => json!({ "field": "body", "size": len }),
                DecodeError::Invalid { .. } => json!({ "field": "body" }),
                DecodeError::ReservedSeq { seq } => {
                    json!({ "field": "seq", "value": seq, "max": trackwire_codec::SERVER_SEQ_FLOOR - 1 })
                }
            },
            IngestError::MissingToken | IngestError::UnknownToken => json!({ "field": "Authorization" }),
            IngestError::TimeOutOfRange { time_ms, earliest_ms, latest_ms } => {
                json!({ "field": "time", "value": time_ms, "min": earliest_ms, "max": latest_ms })
            }
            _ => json!({}),
        };
        let retry_after = matches!(err, IngestError::Overloaded | IngestError::ShuttingDown).then_some(1);
        ApiError { status, error: err.code(), message: err.to_string(), details, retry_after }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "error": self.error,
            "message": self.message,
            "code": self.status.as_u16(),
            "details": self.details,
        });
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
