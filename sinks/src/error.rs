/// Why a sink could not commit. Sinks retry on the next flush; nothing is checkpointed past data
/// that is not committed, so an error delays delivery and never loses it.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("object store {operation} of '{path}' failed: {source}")]
    ObjectStore { operation: &'static str, path: String, source: object_store::Error },
    #[error("parquet encoding failed: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("arrow batch could not be built: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    #[error("{context}: {source}")]
    Io { context: String, source: std::io::Error },
    /// A Delta log operation failed (the store was unreachable, or the log is not one this
    /// version can read or write); the flush is retried, the rows stay pending.
    #[error("could not {operation}: {message}")]
    Delta { operation: String, message: String },
    #[error("read store: {0}")]
    Store(String),
    #[error("{0}")]
    Config(String),
    #[error("kafka: {0}")]
    Kafka(String),
    /// The sink could not encode what it was given (a bug, not bad input): it holds on to the
    /// checkpoint before it, so a restart replays the outputs.
    #[error("{0}")]
    Encoding(String),
    /// A sink's own thread ended (a panic, logged above it): nothing past its checkpoint is
    /// committed any more; a restart replays it from the log.
    #[error(
        "the thread of sink {0} has stopped (see the panic logged before); restart the process to replay from the log"
    )]
    ThreadStopped(&'static str),
}

impl SinkError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        SinkError::Io { context: context.into(), source }
    }
    pub(crate) fn store(err: impl std::fmt::Display) -> Self {
        SinkError::Store(err.to_string())
    }
}
