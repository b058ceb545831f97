/// Why bytes are not a usable Trackwire batch. Every message says what was found and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error(
        "the buffer is {len} bytes, too short to hold a FlatBuffers batch (at least 8): the body was cut off or is empty"
    )]
    Truncated { len: usize },
    #[error(
        "the file identifier is {found:?}, expected \"TWB1\": encode the batch from codec/schema/telemetry.fbs and finish it with its file identifier"
    )]
    WrongFileIdentifier { found: String },
    #[error("the batch failed FlatBuffers verification: {detail}")]
    Invalid { detail: String },
    #[error(
        "schema_version {found} is not supported by this server (it reads version {supported}): upgrade the server or send version {supported}"
    )]
    UnsupportedSchemaVersion { found: u16, supported: u16 },
    #[error("field `{field}` is empty: every batch must name its {field}")]
    EmptyField { field: &'static str },
    #[error("the batch has {count} {what}, more than the limit of {limit}: split it into smaller batches")]
    TooMany { what: &'static str, count: usize, limit: usize },
    #[error(
        "seq {seq} is in the range the server keeps for its own records (2^63 and above): number a workout's batches from 0"
    )]
    ReservedSeq { seq: u64 },
}

impl DecodeError {
    /// A short stable code for metrics labels and the error body's `code`.
    pub fn code(&self) -> &'static str {
        match self {
            DecodeError::Truncated { .. } => "truncated",
            DecodeError::WrongFileIdentifier { .. } => "wrong_file_identifier",
            DecodeError::Invalid { .. } => "invalid_flatbuffer",
            DecodeError::UnsupportedSchemaVersion { .. } => "unsupported_schema_version",
            DecodeError::EmptyField { .. } => "empty_field",
            DecodeError::TooMany { .. } => "too_many_items",
            DecodeError::ReservedSeq { .. } => "reserved_seq",
        }
    }
}
