//! Kafka: workout events (JSON, the seed's shape) and enriched points (Arrow IPC) for the
//! platform's other services, with delivery reports deciding what counts as delivered.
//!
//! **In:** [`ShardOutput`](trackwire_pipeline::ShardOutput)s in LSN order. **Out:** one message
//! per workout event on the events topic and one message per record's points on the points topic,
//! keyed by workout id (a workout's messages share a partition, so they stay in order), with
//! headers `schema-version`, `content-type` and `trace-id`. The checkpoint advances only over
//! records whose every message the broker acknowledged (`acks=all`, idempotent producer), so the
//! log keeps — and after a restart replays — whatever was not confirmed.

mod config;
mod encode;
mod sink;

pub use config::KafkaConfig;
pub use encode::{POINTS_CONTENT_TYPE, SCHEMA_VERSION, points_message};
pub use sink::KafkaSink;
