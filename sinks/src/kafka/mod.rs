//! Kafka: workout events (JSON, the seed's shape) and enriched points (Arrow IPC) for the
//! platform's other services, with delivery reports deciding what counts as delivered.
//!
//! **In:** [`ShardOutput`](trackwire_pipeline::ShardOutput)s in LSN order. **Out:** one message
//! per workout event on the events topic and, per record, its points on the points topic (one
//! message, or several consecutive ones when they would exceed `max_message_bytes`), keyed by
//! workout id (a workout's messages share a partition, so they stay in order), with headers
//! `schema-version`, `content-type` and `trace-id`. The checkpoint advances only over records
//! whose every message the broker acknowledged (`acks=all`, idempotent producer), so the log
//! keeps — and after a restart replays — whatever was not confirmed.
//!
//! - `config.rs`: where and how to produce;
//! - `encode.rs`: message bodies, and splitting points to fit a message;
//! - `position.rs`: where the delivered-through position is kept (a file, or the shared store);
//! - `producer.rs`: the producer seam and its librdkafka implementation;
//! - `sink.rs`: what is waiting, in flight and confirmed; the checkpoint;
//! - `topics.rs`: creating missing topics.

mod config;
mod encode;
mod points_schema;
mod position;
mod producer;
mod sink;

pub use config::KafkaConfig;
pub use encode::{
    EVENTS_SCHEMA_VERSION, POINTS_CONTENT_TYPE, POINTS_SCHEMA_VERSION, points_message, points_messages,
    split_points_message,
};
pub use position::Position;
pub use producer::{Message, Produce, RdKafkaProducer, Refusal, Reports, Topic};
pub use sink::KafkaSink;
