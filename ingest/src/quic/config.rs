use std::path::PathBuf;
use std::time::Duration;

/// The QUIC front door's address, identity and limits.
#[derive(Debug, Clone)]
pub struct QuicConfig {
    /// PEM certificate chain and key; both None = the development identity in the data directory.
    pub cert_path: Option<PathBuf>,
    pub key_path: Option<PathBuf>,
    /// Connections served at once; one more is closed with `LimitExceeded`.
    pub max_connections: usize,
    /// Workout streams a connection may have open at once (QUIC stream credit: the device waits).
    pub max_streams_per_connection: u32,
    /// Largest batch frame; a longer length prefix gets a `TooLarge` ack and the stream stopped.
    pub max_frame_bytes: usize,
    /// Batches of one stream waiting to become durable before the server stops reading it.
    pub max_in_flight_per_stream: usize,
    /// A stream without a complete frame for this long is stopped with `Stalled`.
    pub stream_idle_timeout: Duration,
    /// Time a new connection has to send its hello.
    pub handshake_timeout: Duration,
    /// A connection silent (no QUIC packets, not even keep-alives) this long is dropped.
    pub idle_timeout: Duration,
    /// How long shutdown waits for streams to drain before closing connections anyway.
    pub drain_timeout: Duration,
}

impl Default for QuicConfig {
    fn default() -> Self {
        QuicConfig {
            cert_path: None,
            key_path: None,
            max_connections: 10_000,
            max_streams_per_connection: 16,
            max_frame_bytes: 4 << 20,
            max_in_flight_per_stream: 32,
            stream_idle_timeout: Duration::from_secs(300),
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            drain_timeout: Duration::from_secs(10),
        }
    }
}
