//! The sink: what the broker has not confirmed is kept (waiting to be handed over, or in flight),
//! and the checkpoint stops below the oldest of it.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use trackwire_pipeline::ShardOutput;

use super::KafkaConfig;
use super::encode::{points_messages, split_points_message};
use super::position::Position;
use super::producer::{Message, Produce, RdKafkaProducer, Refusal, Topic};
use crate::events::{erasure_json, event_json, published_json};
use crate::unheld::Unheld;
use crate::{Command, Sink, SinkError};

/// How long a forced flush (shutdown) waits for the broker to confirm what is outstanding;
/// what is still unconfirmed stays in the log and is sent again after the restart.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(30);

/// Past this many bytes waiting to be handed to the client, the coordinator waits for flushes.
const FULL_WAITING_BYTES: usize = 64 << 20;

/// Where a message sits in the order messages are handed over: the order it was made in, then,
/// for the parts of a message split after the broker refused it, the path of halves (so the
/// parts sort where the whole was).
type Order = (u64, Vec<u8>);

/// The Kafka sink: every workout event and every record's points, keyed by workout id, with
/// headers `schema-version`, `content-type` and `trace-id`. `accept` only encodes and queues
/// (and hands over what the client has room for); a refusal keeps the message for the next
/// flush, a points message the broker finds too large is split in two, and the checkpoint passes
/// a record only once the broker confirmed all its messages.
pub struct KafkaSink {
    producer: Box<dyn Produce>,
    max_message_bytes: usize,
    /// Not handed to the client yet: new, or to be sent again.
    waiting: BTreeMap<Order, Message>,
    waiting_bytes: usize,
    /// Handed to the client under an id, waiting for its delivery report.
    in_flight: HashMap<u64, (Order, Message)>,
    /// Unconfirmed messages per LSN: the checkpoint stops below the oldest.
    per_lsn: BTreeMap<u64, u32>,
    next_order: u64,
    next_id: u64,
    last_fed: u64,
    /// Delivered through this LSN, as recorded at `position` (replays skip it).
    delivered_through: u64,
    position: Position,
    /// What went wrong since the last flush, for `/healthcheck`.
    error: Option<String>,
    /// Outputs lost to an encoding failure (a bug): the checkpoint stays below them.
    unheld: Unheld,
}

impl KafkaSink {
    /// Connects (lazily: a broker that is down now is retried), creates missing topics, and reads
    /// the LSN it delivered through from `position`.
    pub fn open(config: KafkaConfig, position: Position) -> Result<KafkaSink, SinkError> {
        let producer = RdKafkaProducer::new(&config)?;
        Self::with_producer(Box::new(producer), &config, position)
    }

    /// The sink over any producer (tests inject faults through a fake one).
    pub fn with_producer(
        producer: Box<dyn Produce>,
        config: &KafkaConfig,
        position: Position,
    ) -> Result<KafkaSink, SinkError> {
        let delivered_through = position.load()?;
        Ok(KafkaSink {
            producer,
            max_message_bytes: config.max_message_bytes,
            waiting: BTreeMap::new(),
            waiting_bytes: 0,
            in_flight: HashMap::new(),
            per_lsn: BTreeMap::new(),
            next_order: 0,
            next_id: 0,
            last_fed: delivered_through,
            delivered_through,
            position,
            error: None,
            unheld: Unheld::default(),
        })
    }

    /// Messages not yet confirmed by the broker.
    pub fn outstanding(&self) -> usize {
        self.waiting.len() + self.in_flight.len()
    }

    fn queue(&mut self, message: Message) {
        *self.per_lsn.entry(message.lsn).or_default() += 1;
        let order = (self.next_order, Vec::new());
        self.next_order += 1;
        self.wait(order, message);
    }

    fn wait(&mut self, order: Order, message: Message) {
        self.waiting_bytes += message.payload.as_ref().map_or(0, Vec::len);
        self.waiting.insert(order, message);
    }

    fn confirmed(&mut self, lsn: u64) {
        if let Some(count) = self.per_lsn.get_mut(&lsn) {
            *count -= 1;
            if *count == 0 {
                self.per_lsn.remove(&lsn);
            }
        }
    }

    /// Hands waiting messages to the client in order until it refuses one; the refused one waits
    /// for the next call (a too-large points message is split first).
    fn hand_over(&mut self) {
        let mut queue_full_once = false;
        while let Some(entry) = self.waiting.first_entry() {
            let id = self.next_id;
            match self.producer.send(id, entry.get()) {
                Ok(()) => {
                    self.next_id += 1;
                    let (order, message) = entry.remove_entry();
                    self.waiting_bytes -= message.payload.as_ref().map_or(0, Vec::len);
                    self.in_flight.insert(id, (order, message));
                }
                Err(Refusal::QueueFull) if !queue_full_once => {
                    // Serve deliveries for a moment, which makes room, then try once more.
                    queue_full_once = true;
                    self.settle(Duration::from_millis(100));
                }
                Err(Refusal::QueueFull) => return,
                Err(Refusal::TooLarge(reason)) => {
                    let (order, message) = entry.remove_entry();
                    self.waiting_bytes -= message.payload.as_ref().map_or(0, Vec::len);
                    if let Some((order, message)) = self.split(order, message, &reason) {
                        // Cannot be split: kept, and reported until an operator raises the limit.
                        self.wait(order, message);
                        return;
                    }
                }
                Err(Refusal::Retriable(reason) | Refusal::Final(reason)) => {
                    self.error = Some(reason);
                    return;
                }
            }
        }
    }

    /// Splits a points message the client or broker refused as too large into halves that take
    /// its place in the order; gives the message back when it cannot be split.
    fn split(&mut self, order: Order, message: Message, reason: &str) -> Option<(Order, Message)> {
        let halves = match (&message.topic, &message.payload) {
            (Topic::Points, Some(payload)) => split_points_message(payload),
            _ => Ok(None),
        };
        match halves {
            Ok(Some(halves)) => {
                tracing::info!(lsn = message.lsn, reason, "kafka: points message split in two");
                *self.per_lsn.entry(message.lsn).or_default() += 1;
                for (half, payload) in halves.into_iter().enumerate() {
                    let mut path = order.1.clone();
                    path.push(half as u8);
                    let part = Message { payload: Some(payload), ..message.clone() };
                    self.wait((order.0, path), part);
                }
                None
            }
            Ok(None) => {
                self.error = Some(format!(
                    "LSN {}: {reason}; raise the broker's max.message.bytes (the message cannot be split)",
                    message.lsn
                ));
                Some((order, message))
            }
            Err(err) => {
                self.error = Some(format!("LSN {}: {reason}; splitting it failed: {err}", message.lsn));
                Some((order, message))
            }
        }
    }

    /// Applies the client's reports: confirmed messages are forgotten, refused ones wait to be
    /// sent again (split first when too large).
    fn settle(&mut self, timeout: Duration) {
        let reports = self.producer.poll(timeout);
        for id in reports.delivered {
            if let Some((_, message)) = self.in_flight.remove(&id) {
                self.confirmed(message.lsn);
            }
        }
        for (id, refusal) in reports.failed {
            let Some((order, message)) = self.in_flight.remove(&id) else { continue };
            match refusal {
                Refusal::TooLarge(reason) => {
                    if let Some((order, message)) = self.split(order, message, &reason) {
                        self.wait(order, message);
                    }
                }
                other => {
                    self.error = Some(format!("LSN {}: {other}; sent again", message.lsn));
                    self.wait(order, message);
                }
            }
        }
        if let Some(error) = reports.client_error
            && self.outstanding() > 0
        {
            self.error = Some(format!("{error} ({} messages waiting)", self.outstanding()));
        }
    }

    fn save_checkpoint(&mut self) -> Result<(), SinkError> {
        let through = self.checkpoint();
        if through <= self.delivered_through {
            return Ok(());
        }
        self.position.save(through)?;
        self.delivered_through = through;
        Ok(())
    }
}

impl Sink for KafkaSink {
    fn name(&self) -> &'static str {
        "kafka"
    }

    fn accept(&mut self, output: &ShardOutput) {
        if output.lsn <= self.delivered_through {
            return; // replayed: delivered before the restart
        }
        self.last_fed = output.lsn;
        let lsn = output.lsn;
        // One record is one workout's batch: its events and points share the key and trace id.
        let workout = output.events.first().map(|e| e.workout_id).or(output.points.workout_id.first().copied());
        let Some(workout) = workout else { return };
        let key = workout.to_string();
        let trace_id = output.trace_id.as_deref().map_or_else(|| trace_id(&workout.0, lsn), str::to_owned);
        for event in &output.events {
            let (key, trace_id, payload) = (key.clone(), trace_id.clone(), Some(event_json(event, lsn)));
            self.queue(Message { lsn, topic: Topic::Events, key, payload, trace_id });
        }
        if !output.points.is_empty() {
            match points_messages(&output.points, self.max_message_bytes) {
                Ok(parts) => {
                    for payload in parts {
                        let (key, trace_id) = (key.clone(), trace_id.clone());
                        self.queue(Message { lsn, topic: Topic::Points, key, payload: Some(payload), trace_id });
                    }
                }
                Err(err) => {
                    self.unheld.record(lsn, &err);
                }
            }
        }
        self.settle(Duration::ZERO);
        self.hand_over();
    }

    fn flush(&mut self, _now: Instant, force: bool) -> Result<(), SinkError> {
        self.settle(Duration::ZERO);
        self.hand_over();
        if force {
            let deadline = Instant::now() + SHUTDOWN_WAIT;
            while self.outstanding() > 0 && Instant::now() < deadline {
                self.settle(Duration::from_millis(100));
                self.hand_over();
            }
        }
        self.save_checkpoint()?;
        self.unheld.check()?;
        if force && self.outstanding() > 0 {
            return Err(SinkError::Kafka(format!(
                "{} message(s) unconfirmed at shutdown: they stay in the log and are sent after the restart",
                self.outstanding()
            )));
        }
        match self.error.take() {
            Some(error) => Err(SinkError::Kafka(error)),
            None => Ok(()),
        }
    }

    fn is_full(&self) -> bool {
        self.waiting_bytes >= FULL_WAITING_BYTES
    }

    /// Erasure: a tombstone for every erased workout on both topics (compacted topics then drop
    /// the key), then a `UserErased` event keyed by the user (a user's erasure) or a
    /// `WorkoutDeleted` keyed by the workout (a deletion) so consumers erase their copies.
    fn command(&mut self, command: &Command) -> Result<(), SinkError> {
        if let Command::Publish(event) = command {
            // Keyed like the workout's own events (same partition, in order), else by the user.
            let key = event.workout_id.map_or_else(|| event.user_id.clone(), |id| id.to_string());
            let lsn = self.last_fed;
            let trace_id = trace_id(&event.workout_id.map_or([0; 16], |id| id.0), lsn);
            let payload = Some(published_json(event, lsn));
            self.queue(Message { lsn, topic: Topic::Events, key, payload, trace_id });
            self.settle(Duration::ZERO);
            self.hand_over();
            return Ok(());
        }
        let Command::Erase(erasure) = command else { return Ok(()) };
        let lsn = self.last_fed;
        for workout in &erasure.workouts {
            let key = workout.workout_id.to_string();
            let trace_id = trace_id(&workout.workout_id.0, lsn);
            for topic in [Topic::Events, Topic::Points] {
                let (key, trace_id) = (key.clone(), trace_id.clone());
                self.queue(Message { lsn, topic, key, payload: None, trace_id });
            }
        }
        let now_ms = chrono::Utc::now().timestamp_millis();
        // A user's erasure is told under the user's key; a deleted workout's after its tombstone
        // under its own, so compaction keeps the deletion (which holds no personal data) as the
        // key's last word.
        for (workout, payload) in erasure_json(erasure, now_ms) {
            let (key, trace_id) = match workout {
                Some(id) => (id.to_string(), trace_id(&id.0, lsn)),
                None => (erasure.user_id.clone(), trace_id(&[0; 16], lsn)),
            };
            self.queue(Message { lsn, topic: Topic::Events, key, payload: Some(payload), trace_id });
        }
        self.settle(Duration::ZERO);
        self.hand_over();
        Ok(())
    }

    fn checkpoint(&self) -> u64 {
        let oldest = self.per_lsn.keys().next().copied().into_iter().chain(self.unheld.first_lsn()).min();
        match oldest {
            Some(oldest) => oldest - 1,
            None => self.last_fed,
        }
    }
}

/// A W3C-style trace id (32 hex digits) for one record of one workout: the same on a replay.
fn trace_id(workout: &[u8; 16], lsn: u64) -> String {
    let mut out = String::with_capacity(32);
    for b in &workout[..8] {
        out.push_str(&format!("{b:02x}"));
    }
    out.push_str(&format!("{lsn:016x}"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_ids_are_32_hex_digits_and_stable_per_record() {
        let id = trace_id(&[0xab; 16], 42);
        assert_eq!(id.len(), 32);
        assert_eq!(id, trace_id(&[0xab; 16], 42));
        assert_ne!(id, trace_id(&[0xab; 16], 43));
        assert!(id.ends_with("000000000000002a"));
    }
}
