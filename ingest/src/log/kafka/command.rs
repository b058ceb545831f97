//! Appending a [`LogCommand`] to partitions of the raw topic: the scale-out way to have every
//! pipeline worker carry out an erasure or a retention cut in log order (every partition), or
//! one worker publish an event in order with a workout's (its partition).

use std::time::{Duration, Instant};

use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, ProducerContext};
use rdkafka::{ClientContext, Message};

use super::RawTopicConfig;
use crate::log::{COMMAND_HEADER, COMMAND_VERSION, LogCommand, LogError};

/// Where a command was stored in one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placed {
    pub partition: i32,
    /// The command's position in the partition (offset + 1, as the reader numbers it).
    pub lsn: u64,
}

struct Reports(crossbeam_channel::Sender<Result<Placed, String>>);

impl ClientContext for Reports {}

impl ProducerContext for Reports {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, (): ()) {
        let report = match result {
            Ok(message) => Ok(Placed { partition: message.partition(), lsn: message.offset() as u64 + 1 }),
            Err((error, message)) => Err(format!("partition {}: {error}", message.partition())),
        };
        let _ = self.0.send(report);
    }
}

/// Appends `command` to every partition and waits (at most `timeout`) until the broker has
/// stored each copy. Blocking: call it off the async runtime. Repeating it after an error is
/// safe (a command carried out twice changes nothing the second time).
pub fn append_to_every_partition(
    raw: &RawTopicConfig,
    command: &LogCommand,
    timeout: Duration,
) -> Result<Vec<Placed>, LogError> {
    append_to_partitions(raw, command, &(0..raw.partitions).collect::<Vec<_>>(), timeout)
}

/// Appends `command` to each of `partitions` and waits (at most `timeout`) until the broker has
/// stored each copy; see [`append_to_every_partition`].
pub fn append_to_partitions(
    raw: &RawTopicConfig,
    command: &LogCommand,
    partitions: &[i32],
    timeout: Duration,
) -> Result<Vec<Placed>, LogError> {
    let unavailable = |what: String| LogError::Unavailable(what);
    let (tx, rx) = crossbeam_channel::unbounded();
    let producer: BaseProducer<Reports> = raw
        .client_config(&[("enable.idempotence", "true"), ("acks", "all")])
        .create_with_context(Reports(tx))
        .map_err(|e| unavailable(format!("kafka producer for {}: {e}", raw.brokers)))?;
    let payload = command.encode();
    let key = command.user_id().unwrap_or_default().as_bytes();
    for &partition in partitions {
        let headers = OwnedHeaders::new().insert(Header { key: COMMAND_HEADER, value: Some(COMMAND_VERSION) });
        let record = BaseRecord::to(&raw.topic).partition(partition).key(key).payload(&payload[..]).headers(headers);
        producer.send(record).map_err(|(e, _)| {
            unavailable(format!("producing a command to {} partition {partition}: {e}", raw.topic))
        })?;
    }
    let deadline = Instant::now() + timeout;
    let mut placed = Vec::with_capacity(partitions.len());
    while placed.len() < partitions.len() {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            return Err(unavailable(format!(
                "the broker stored the command in {} of {} partitions of {} within {timeout:?}; repeat the request",
                placed.len(),
                partitions.len(),
                raw.topic
            )));
        };
        producer.poll(left.min(Duration::from_millis(50)));
        while let Ok(report) = rx.try_recv() {
            placed.push(report.map_err(|e| unavailable(format!("the broker did not store the command: {e}")))?);
        }
    }
    placed.sort_by_key(|p| p.partition);
    Ok(placed)
}
