use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The QUIC front door's identity and limits (the `[quic]` section of the configuration file).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields, default)]
pub struct QuicConfig {
    /// PEM certificate chain of the QUIC server (with `key_path`). Both unset: a development
    /// self-signed certificate for localhost, generated once into the data directory
    /// (`quic-cert.pem`, `quic-key.pem`), its SHA-256 fingerprint logged and written to
    /// `quic-cert.sha256`. Devices trust that certificate (or pin the fingerprint).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schema(value_type = Option<String>))]
    pub cert_path: Option<PathBuf>,
    /// PEM private key matching `cert_path`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schema(value_type = Option<String>))]
    pub key_path: Option<PathBuf>,
    /// A file holding the stateless-reset secret (any 32 bytes or more, e.g. from
    /// `openssl rand -base64 48`) that every replica of the gateway mounts. Unset: a random
    /// secret kept in the data directory (`quic-reset.key`), which is enough where the data
    /// directory outlives the process. With the secret shared, a restarted or surviving replica
    /// answers a dead replica's connections with a stateless reset and devices reconnect at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "schema", schema(value_type = Option<String>))]
    pub reset_key_path: Option<PathBuf>,
    /// Connections served at once; more are closed with code 4 (`LimitExceeded`, retry later).
    pub max_connections: usize,
    /// Workout streams one connection may have open at once (QUIC stream credit: the device waits).
    pub max_streams_per_connection: u32,
    /// Largest batch frame in bytes; a longer length prefix gets a `TooLarge` ack and the stream
    /// is stopped (code 3).
    pub max_frame_bytes: usize,
    /// Batches of one stream waiting for durability before the server stops reading the stream
    /// (backpressure through QUIC flow control).
    pub max_in_flight_per_stream: usize,
    /// A stream without a complete frame for this many seconds is stopped (code 5, `Stalled`).
    #[serde(rename = "stream_idle_timeout_secs", with = "crate::seconds")]
    #[cfg_attr(feature = "schema", schema(value_type = f64))]
    pub stream_idle_timeout: Duration,
    /// Seconds a new connection has to send its hello (bearer token) before it is closed.
    #[serde(rename = "handshake_timeout_secs", with = "crate::seconds")]
    #[cfg_attr(feature = "schema", schema(value_type = f64))]
    pub handshake_timeout: Duration,
    /// A connection with no packets at all (not even keep-alives) for this many seconds is dropped.
    #[serde(rename = "idle_timeout_secs", with = "crate::seconds")]
    #[cfg_attr(feature = "schema", schema(value_type = f64))]
    pub idle_timeout: Duration,
    /// On shutdown, seconds to wait for streams to deliver their last acks before closing
    /// connections with code 6 (`GoingAway`).
    #[serde(rename = "drain_timeout_secs", with = "crate::seconds")]
    #[cfg_attr(feature = "schema", schema(value_type = f64))]
    pub drain_timeout: Duration,
}

impl Default for QuicConfig {
    fn default() -> Self {
        QuicConfig {
            cert_path: None,
            key_path: None,
            reset_key_path: None,
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
