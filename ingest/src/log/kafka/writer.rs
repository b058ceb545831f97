//! The raw topic's writer: a producer thread that answers each append once the broker has it.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use rdkafka::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use trackwire_codec::WorkoutId;

use super::{RawTopicConfig, SEQ_HEADER, TRACEPARENT_HEADER, partition_of};
use crate::log::{AppendRequest, Appended, DedupIndex, DedupKey, DurableLog, LogError, Shared};

/// Workouts per generation of [`Acked`]: about 100 bytes each, so the gateway keeps at most
/// ~10 MB of them whatever its uptime.
const ACKED_GENERATION_WORKOUTS: usize = 50_000;

/// How long a generation of [`Acked`] takes batches: an acked batch is remembered for one to two
/// of these. Devices retry within seconds; a batch sent again much later is more likely new data
/// under an old key (a deleted workout's file uploaded again through another front), which the
/// worker's dedup, told of the deletion, judges rightly and this memory cannot.
const ACKED_GENERATION_AGE: Duration = Duration::from_secs(60);

/// Batches the broker acknowledged, so that a retry reaching this gateway is answered
/// `Duplicate` without producing it again. Two generations, the older dropped when the newer
/// fills or ages: memory stays bounded, and a retry older than that is produced again and
/// dropped by the worker's own dedup. Time is passed in, never read.
struct Acked {
    current: DedupIndex,
    previous: DedupIndex,
    /// When the first generation began; generations are consecutive windows from it.
    epoch: Instant,
    /// The window `current` takes batches in.
    window: u64,
}

impl Acked {
    fn new(now: Instant) -> Self {
        Acked { current: DedupIndex::default(), previous: DedupIndex::default(), epoch: now, window: 0 }
    }

    fn contains(&mut self, key: DedupKey, now: Instant) -> bool {
        self.age(now);
        self.current.contains(key) || self.previous.contains(key)
    }

    fn insert(&mut self, key: DedupKey, now: Instant) {
        self.age(now);
        if self.current.workouts() >= ACKED_GENERATION_WORKOUTS {
            self.previous = std::mem::take(&mut self.current);
        }
        self.current.insert(key);
    }

    /// Drops what it holds of `workout_id`: deleted, so its seqs are no longer retries.
    fn forget(&mut self, workout_id: &WorkoutId) {
        self.current.forget(workout_id);
        self.previous.forget(workout_id);
    }

    /// Moves to the window `now` falls in: one window on, the current generation becomes the
    /// previous; further, both are older than a window and go.
    fn age(&mut self, now: Instant) {
        let window = (now.saturating_duration_since(self.epoch).as_millis() / ACKED_GENERATION_AGE.as_millis()) as u64;
        if window == self.window + 1 {
            self.previous = std::mem::take(&mut self.current);
        } else if window > self.window + 1 {
            self.previous = DedupIndex::default();
            self.current = DedupIndex::default();
        }
        self.window = self.window.max(window);
    }
}

/// An append on its way to the broker.
struct InFlight {
    key: DedupKey,
    bytes: usize,
    reply: tokio::sync::oneshot::Sender<Result<Appended, LogError>>,
}

struct Context {
    shared: Arc<Shared>,
    acked: Arc<Mutex<Acked>>,
}

impl ClientContext for Context {
    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(%error, reason, "kafka client error (raw topic)");
    }
}

impl ProducerContext for Context {
    type DeliveryOpaque = Box<InFlight>;

    fn delivery(&self, result: &DeliveryResult<'_>, in_flight: Box<InFlight>) {
        let InFlight { key, bytes, reply } = *in_flight;
        let answer = match result {
            Ok(message) => {
                use rdkafka::Message;
                let metrics = &self.shared.metrics;
                metrics.records_appended.fetch_add(1, Ordering::Relaxed);
                metrics.bytes_appended.fetch_add(bytes as u64, Ordering::Relaxed);
                metrics.durable_lsn.fetch_max(message.offset() as u64 + 1, Ordering::Relaxed);
                if let Ok(mut acked) = self.acked.lock() {
                    acked.insert(key, Instant::now());
                }
                Ok(Appended::New { lsn: message.offset() as u64 + 1 })
            }
            Err((error, _)) => Err(LogError::Unavailable(format!("the broker did not take the batch: {error}"))),
        };
        let _ = reply.send(answer);
    }
}

/// Opens the Kafka-backed log: starts the producer thread. The topic is provisioned by whoever
/// runs the role ([`super::provision`]); producing never creates it with the brokers' defaults.
/// The returned handle joins the thread, which ends (after waiting up to 30 s for the broker to
/// confirm what is in flight) once every `DurableLog` handle is dropped.
pub fn open(config: RawTopicConfig) -> Result<(DurableLog, JoinHandle<Result<(), LogError>>), LogError> {
    let client = config.client_config(&[
        ("enable.idempotence", "true"),
        ("acks", "all"),
        ("linger.ms", "1"),
        ("compression.type", "lz4"),
        // Give up on a batch after a minute: the device is told (500) and re-sends it, rather
        // than waiting on an ack that may never come.
        ("message.timeout.ms", "60000"),
        // The topic is provisioned with its replication and retention; a broker that creates
        // topics on first use would give it its own defaults.
        ("allow.auto.create.topics", "false"),
    ]);
    let shared = Arc::new(Shared {
        metrics: Default::default(),
        release_through: Default::default(),
        first_lsn: std::sync::atomic::AtomicU64::new(1),
        carries_traceparent: true,
        remembers_acks: true,
        forget_seqs: std::sync::Mutex::default(),
    });
    // Nothing to replay here: the gateway is ready at once.
    shared.metrics.replay_done.store(true, Ordering::Relaxed);
    let acked = Arc::new(Mutex::new(Acked::new(Instant::now())));
    let producer: BaseProducer<Context> = client
        .create_with_context(Context { shared: shared.clone(), acked: acked.clone() })
        .map_err(|e| LogError::Unavailable(format!("kafka producer for {}: {e}", config.brokers)))?;
    let (tx, rx) = crossbeam_channel::bounded(config.queue_depth.max(1));
    let thread_shared = shared.clone();
    let handle = std::thread::Builder::new()
        .name("raw-producer".into())
        .spawn(move || run(&producer, &rx, &config.topic, config.partitions, &acked, &thread_shared))
        .map_err(|e| LogError::io("spawning the raw-topic producer thread", e))?;
    Ok((DurableLog { tx, shared }, handle))
}

/// How long a forced stop waits for the broker to confirm what is in flight.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(30);

fn run(
    producer: &BaseProducer<Context>,
    rx: &Receiver<AppendRequest>,
    topic: &str,
    partitions: i32,
    acked: &Mutex<Acked>,
    shared: &Shared,
) -> Result<(), LogError> {
    loop {
        // Delivery reports arrive on poll: poll often while anything is in flight.
        let wait = if producer.in_flight_count() > 0 { Duration::from_millis(1) } else { Duration::from_millis(50) };
        match rx.recv_timeout(wait) {
            Ok(request) => {
                produce(producer, request, topic, partitions, acked, shared);
                while let Ok(request) = rx.try_recv() {
                    produce(producer, request, topic, partitions, acked, shared);
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        forget_asked(shared, acked);
        producer.poll(Duration::ZERO);
    }
    if let Err(error) = producer.flush(SHUTDOWN_WAIT) {
        tracing::warn!(%error, in_flight = producer.in_flight_count(), "raw topic: not every batch confirmed at shutdown; devices re-send the unacked ones");
    }
    Ok(())
}

/// Forgets the workouts [`DurableLog::forget_seqs`] named.
fn forget_asked(shared: &Shared, acked: &Mutex<Acked>) {
    let asked = std::mem::take(&mut *shared.forget_seqs.lock().unwrap_or_else(|p| p.into_inner()));
    if !asked.is_empty()
        && let Ok(mut acked) = acked.lock()
    {
        for workout_id in &asked {
            acked.forget(workout_id);
        }
    }
}

fn produce(
    producer: &BaseProducer<Context>,
    request: AppendRequest,
    topic: &str,
    partitions: i32,
    acked: &Mutex<Acked>,
    shared: &Shared,
) {
    let AppendRequest { key, payload, traceparent, reply, .. } = request;
    // A workout forgotten before this batch was sent is forgotten before it is looked up.
    forget_asked(shared, acked);
    // Only batches the broker acknowledged count as held (the delivery report records them).
    if acked.lock().is_ok_and(|mut index| index.contains(key, Instant::now())) {
        shared.metrics.duplicates.fetch_add(1, Ordering::Relaxed);
        let _ = reply.send(Ok(Appended::Duplicate));
        return;
    }
    let seq = key.seq.to_string();
    let mut headers = OwnedHeaders::new().insert(Header { key: SEQ_HEADER, value: Some(seq.as_str()) });
    if let Some(traceparent) = &traceparent {
        headers = headers.insert(Header { key: TRACEPARENT_HEADER, value: Some(traceparent.as_str()) });
    }
    let in_flight = Box::new(InFlight { key, bytes: payload.len(), reply });
    let mut record = BaseRecord::with_opaque_to(topic, in_flight)
        .partition(partition_of(&key.workout_id, partitions))
        .key(&key.workout_id.0[..])
        .payload(&payload[..])
        .headers(headers);
    loop {
        match producer.send(record) {
            Ok(()) => return,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                producer.poll(Duration::from_millis(10));
            }
            Err((error, back)) => {
                let InFlight { reply, .. } = *back.delivery_opaque;
                let _ = reply.send(Err(LogError::Unavailable(format!("producing to {topic}: {error}"))));
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trackwire_codec::WorkoutId;

    fn key(n: usize) -> DedupKey {
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&(n as u64).to_be_bytes());
        DedupKey { workout_id: WorkoutId(id), seq: 3 }
    }

    #[test]
    fn acked_batches_are_remembered_for_at_least_a_generation_and_memory_stays_bounded() {
        let now = Instant::now();
        let mut acked = Acked::new(now);
        let total = 2 * ACKED_GENERATION_WORKOUTS + 1;
        for n in 0..total {
            acked.insert(key(n), now);
        }
        assert!(acked.current.workouts() + acked.previous.workouts() <= 2 * ACKED_GENERATION_WORKOUTS);
        for n in total - ACKED_GENERATION_WORKOUTS..total {
            assert!(acked.contains(key(n), now), "recent batch {n} forgotten");
        }
        assert!(!acked.contains(key(0), now), "the oldest generation is dropped");
        assert!(!acked.contains(DedupKey { seq: 4, ..key(total - 1) }, now));
    }

    #[test]
    fn acked_batches_are_remembered_for_one_to_two_generations_of_time() {
        let start = Instant::now();
        let at = |secs: f64| start + Duration::from_secs_f64(secs);
        let age = ACKED_GENERATION_AGE.as_secs_f64();
        let mut acked = Acked::new(start);
        acked.insert(key(1), at(0.0));
        acked.insert(key(2), at(age - 1.0));
        assert!(
            acked.contains(key(1), at(age + 1.0)) && acked.contains(key(2), at(age + 1.0)),
            "remembered into the next generation"
        );
        assert!(!acked.contains(key(1), at(2.0 * age)), "two generations on");
        assert!(!acked.contains(key(2), at(2.0 * age)));
        // A long quiet spell drops everything at once.
        acked.insert(key(3), at(2.0 * age));
        assert!(!acked.contains(key(3), at(10.0 * age)), "batches from long ago are not retries");
    }

    #[test]
    fn a_deleted_workouts_acked_batches_are_forgotten() {
        let now = Instant::now();
        let mut acked = Acked::new(now);
        acked.insert(key(1), now);
        acked.insert(key(2), now);
        acked.forget(&key(1).workout_id);
        assert!(!acked.contains(key(1), now) && acked.contains(key(2), now));
    }
}
