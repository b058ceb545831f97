use trackwire_codec::{DecodeError, WorkoutId};

/// Why a batch was not accepted. Each variant maps to one HTTP status (in `trackwire-api`) and one
/// QUIC ack status; the message tells the device what to change.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("no bearer token: send `Authorization: Bearer <token>` with a token from the server's ingest.tokens")]
    MissingToken,
    #[error("the bearer token is not known to this server: check the device's provisioning")]
    UnknownToken,
    #[error("this token belongs to device '{token_device}' but the batch is from device '{batch_device}'")]
    DeviceMismatch { token_device: String, batch_device: String },
    #[error("this token belongs to user '{token_user}' but the batch is for user '{batch_user}'")]
    UserMismatch { token_user: String, batch_user: String },
    #[error(
        "workout {workout_id} was started by another user or device, and only they may add batches to it: give a new \
         workout a new id"
    )]
    WorkoutOwnerMismatch { workout_id: WorkoutId },
    #[error("the body is {size} bytes, over the limit of {limit}: split the workout into smaller batches")]
    BodyTooLarge { size: usize, limit: usize },
    #[error("the body decompresses to more than {limit} bytes: split the workout into smaller batches")]
    DecompressedTooLarge { limit: usize },
    #[error("Content-Encoding '{encoding}' is not supported: use zstd, gzip or none")]
    UnsupportedEncoding { encoding: String },
    #[error("the body is not valid {encoding}: {detail}")]
    BadCompression { encoding: &'static str, detail: String },
    #[error("{0}")]
    Malformed(#[from] DecodeError),
    #[error(
        "a sample or event of the batch is at Unix ms {time_ms}, outside {earliest_ms}..={latest_ms} (no earlier than \
         ingest.earliest_sample_time, no later than ingest.max_sample_ahead_secs past the server's clock): set the \
         device's clock"
    )]
    TimeOutOfRange { time_ms: i64, earliest_ms: i64, latest_ms: i64 },
    #[error("the server is saturated: retry this batch after a short wait (it is idempotent)")]
    Overloaded,
    #[error("the server is shutting down: retry against another instance or after restart")]
    ShuttingDown,
    #[error("the batch could not be made durable: {0}")]
    Storage(String),
}

impl IngestError {
    /// A short stable code for the error body and for metrics labels.
    pub fn code(&self) -> &'static str {
        match self {
            IngestError::MissingToken => "missing_token",
            IngestError::UnknownToken => "unknown_token",
            IngestError::DeviceMismatch { .. } => "device_mismatch",
            IngestError::UserMismatch { .. } => "user_mismatch",
            IngestError::WorkoutOwnerMismatch { .. } => "workout_owner_mismatch",
            IngestError::BodyTooLarge { .. } => "body_too_large",
            IngestError::DecompressedTooLarge { .. } => "decompressed_too_large",
            IngestError::UnsupportedEncoding { .. } => "unsupported_encoding",
            IngestError::BadCompression { .. } => "bad_compression",
            IngestError::Malformed(e) => e.code(),
            IngestError::TimeOutOfRange { .. } => "invalid_time",
            IngestError::Overloaded => "overloaded",
            IngestError::ShuttingDown => "shutting_down",
            IngestError::Storage(_) => "storage_failure",
        }
    }

    /// The reject reasons, for pre-registering metric series.
    pub const REASONS: [&'static str; 14] = [
        "missing_token",
        "unknown_token",
        "device_mismatch",
        "user_mismatch",
        "workout_owner_mismatch",
        "body_too_large",
        "decompressed_too_large",
        "unsupported_encoding",
        "bad_compression",
        "malformed",
        "invalid_time",
        "overloaded",
        "shutting_down",
        "storage_failure",
    ];

    /// The metrics reason (decode errors are folded into `malformed`).
    pub fn reason(&self) -> &'static str {
        match self {
            IngestError::Malformed(_) => "malformed",
            other => other.code(),
        }
    }
}
