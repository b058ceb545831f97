//! Workout events as JSON lines: the embedded stand-in for the Kafka topic
//! `trackwire.workout-events.v2`, behind the same [`Sink`](crate::Sink) interface.

mod jsonl;
mod mark;
mod record;

pub use jsonl::{AppendFile, EventLogSink, OpenAppend};
pub use record::{EVENT_SCHEMA_VERSION, EventRecord, erasure_json, event_json, iso_ms, published_json};
