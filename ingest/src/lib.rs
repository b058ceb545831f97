//! # trackwire-ingest: from untrusted bytes to durable records
//!
//! **In:** one request from a device: a body (possibly zstd- or gzip-compressed), its bearer token.
//! **Out:** an [`Accepted`] ack once the batch is durable in the [`log::DurableLog`], or an
//! [`IngestError`] that says what was wrong. The log forwards every durable record to the pipeline.
//!
//! Transport-agnostic: the HTTP handler (in `trackwire-api`) and, later, the QUIC server call the
//! same [`Ingestor::ingest`]. Order of checks: token → size → decompress (capped) → verify →
//! device/token match → append → wait for fsync → ack.

mod auth;
mod decompress;
mod error;
pub mod log;
mod service;

pub use auth::{DeviceToken, TokenAuth};
pub use decompress::{ContentEncoding, decompress_capped};
pub use error::IngestError;
pub use service::{Accepted, IngestConfig, IngestMetrics, Ingestor};
