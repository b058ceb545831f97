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

/// Delivery reports, each with the index of its command in the order given.
struct Reports(crossbeam_channel::Sender<(usize, Result<Placed, String>)>);

impl ClientContext for Reports {}

impl ProducerContext for Reports {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, index: usize) {
        let report = match result {
            Ok(message) => Ok(Placed { partition: message.partition(), lsn: message.offset() as u64 + 1 }),
            Err((error, message)) => Err(format!("partition {}: {error}", message.partition())),
        };
        let _ = self.0.send((index, report));
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
    let placements: Vec<(i32, LogCommand)> = (0..raw.partitions).map(|p| (p, command.clone())).collect();
    append_each(raw, &placements, timeout)
}

/// Appends each command to its partition (those for one partition in the order given) and waits
/// (at most `timeout`) until the broker has stored every one; where each was stored comes back
/// in the order given. Blocking, and safe to repeat, as [`append_to_every_partition`].
pub fn append_each(
    raw: &RawTopicConfig,
    placements: &[(i32, LogCommand)],
    timeout: Duration,
) -> Result<Vec<Placed>, LogError> {
    let unavailable = |what: String| LogError::Unavailable(what);
    let (tx, rx) = crossbeam_channel::unbounded();
    let producer: BaseProducer<Reports> = raw
        .client_config(&[("enable.idempotence", "true"), ("acks", "all")])
        .create_with_context(Reports(tx))
        .map_err(|e| unavailable(format!("kafka producer for {}: {e}", raw.brokers)))?;
    for (index, (partition, command)) in placements.iter().enumerate() {
        let partition = *partition;
        let payload = command.encode();
        let key = command.user_id().unwrap_or_default().as_bytes();
        let headers = OwnedHeaders::new().insert(Header { key: COMMAND_HEADER, value: Some(COMMAND_VERSION) });
        let record = BaseRecord::with_opaque_to(&raw.topic, index)
            .partition(partition)
            .key(key)
            .payload(&payload[..])
            .headers(headers);
        producer.send(record).map_err(|(e, _)| {
            unavailable(format!("producing a command to {} partition {partition}: {e}", raw.topic))
        })?;
    }
    let deadline = Instant::now() + timeout;
    let mut placed: Vec<Option<Placed>> = vec![None; placements.len()];
    let mut stored = 0;
    while stored < placements.len() {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            return Err(unavailable(format!(
                "the broker stored {stored} of {} commands in {} within {timeout:?}; repeat the request",
                placements.len(),
                raw.topic
            )));
        };
        producer.poll(left.min(Duration::from_millis(50)));
        while let Ok((index, report)) = rx.try_recv() {
            let report = report.map_err(|e| unavailable(format!("the broker did not store the command: {e}")))?;
            if let Some(slot) = placed.get_mut(index)
                && slot.replace(report).is_none()
            {
                stored += 1;
            }
        }
    }
    Ok(placed.into_iter().flatten().collect())
}
