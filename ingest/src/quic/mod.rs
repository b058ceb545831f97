//! QUIC live ingest (quinn, TLS 1.3 via rustls): the server, the client library, and the wire
//! protocol they share (see `codec/PROTOCOL.md`).
//!
//! **In:** QUIC connections from devices: a hello with the bearer token on stream 0, then one
//! bidirectional stream per workout carrying length-prefixed `Batch` frames. **Out:** one `Ack`
//! frame per batch, in order, each sent only once the batch is durable in the log (the same
//! [`crate::Ingestor`] the HTTP front uses). A saturated log makes the server stop reading, so QUIC
//! flow control pushes back to the device: backpressure, never a dropped batch.

mod client;
mod config;
pub mod protocol;
mod server;
mod tls;

pub use client::{Client, ClientConfig, ClientError, WorkoutStream};
pub use config::QuicConfig;
pub use protocol::{ALPN, ErrorCode};
pub use server::{FrameError, QuicServer, ack_status, read_frame, server_config};
pub use tls::{
    DEV_CERT_FILE, DEV_FINGERPRINT_FILE, DEV_KEY_FILE, RESET_KEY_FILE, ServerIdentity, StatelessResetKey, fingerprint,
    read_certs,
};

use std::path::PathBuf;

/// Why the QUIC front door could not start.
#[derive(Debug, thiserror::Error)]
pub enum QuicError {
    #[error(
        "TLS identity {path}: {detail}; give quic.cert_path/quic.key_path as PEM files, or omit both for a development certificate"
    )]
    Identity { path: PathBuf, detail: String },
    #[error("TLS configuration: {0}")]
    Tls(String),
    #[error("QUIC configuration: {0}")]
    Config(String),
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
}
