//! # trackwire-ingest: from untrusted bytes to durable records
//!
//! **In:** one request from a device: a body (possibly zstd- or gzip-compressed), its bearer token.
//! **Out:** an [`Accepted`] ack once the batch is durable in the [`log::DurableLog`], or an
//! [`IngestError`] that says what was wrong. The log's reader side hands every position on, in
//! order, as a [`log::LogEntry`] (a record, or a gap): the embedded log from its writer thread, the
//! Kafka raw topic through [`log::kafka::PartitionReader`].
//!
//! Transport-agnostic: the HTTP handler (in `trackwire-api`) calls [`Ingestor::ingest`]; the QUIC
//! server ([`quic`]) authenticates once per connection and calls [`Ingestor::submit`], which waits
//! for log capacity instead of refusing. Order of checks: token → size → decompress (capped) → verify →
//! device/token match → append → wait for fsync → ack.

mod auth;
mod decompress;
mod error;
pub mod histogram;
pub mod log;
mod owner_registry;
pub mod quic;
pub mod seconds;
mod service;
mod time_bounds;
pub mod tls;

pub use auth::{DeviceToken, TokenAuth};
pub use decompress::{ContentEncoding, decompress_capped};
pub use error::IngestError;
pub use owner_registry::OwnerRegistry;
pub use service::{Accepted, IngestConfig, IngestMetrics, Ingestor, Refused, UPLOAD_OUTCOMES, Verified};
pub use time_bounds::TimeBounds;
