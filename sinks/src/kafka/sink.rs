use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, ProducerContext};
use trackwire_pipeline::ShardOutput;

use super::KafkaConfig;
use super::encode::{POINTS_CONTENT_TYPE, SCHEMA_VERSION, points_message};
use crate::events::event_json;
use crate::{Command, Sink, SinkError};

/// How long a forced flush (shutdown) waits for the broker to confirm what is outstanding;
/// what is still unconfirmed stays in the log and is sent again after the restart.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(30);

/// A message the broker has not confirmed yet, kept so a retriable failure can send it again.
struct Outstanding {
    lsn: u64,
    points: bool,
    key: String,
    /// None: a tombstone (a null value that log compaction turns into deletion of the key).
    payload: Option<Vec<u8>>,
    trace_id: String,
}

/// What librdkafka reported during `poll` (delivery reports and client errors).
#[derive(Default)]
struct Reports {
    delivered: Vec<u64>,
    failed: Vec<(u64, KafkaError)>,
    client_error: Option<String>,
}

struct Context {
    reports: Arc<Mutex<Reports>>,
}

impl ClientContext for Context {
    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(%error, reason, "kafka client error");
        if let Ok(mut reports) = self.reports.lock() {
            reports.client_error = Some(format!("{error}: {reason}"));
        }
    }
}

impl ProducerContext for Context {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, id: usize) {
        if let Ok(mut reports) = self.reports.lock() {
            match result {
                Ok(_) => reports.delivered.push(id as u64),
                Err((error, _)) => reports.failed.push((id as u64, error.clone())),
            }
        }
    }
}

/// True when sending the message again can succeed (the broker or network was the problem).
fn retriable(error: &KafkaError) -> bool {
    use RDKafkaErrorCode::*;
    match error.rdkafka_error_code() {
        Some(code) => matches!(
            code,
            MessageTimedOut
                | QueueFull
                | BrokerTransportFailure
                | AllBrokersDown
                | NetworkException
                | RequestTimedOut
                | OperationTimedOut
                | NotEnoughReplicas
                | NotEnoughReplicasAfterAppend
                | LeaderNotAvailable
                | NotLeaderForPartition
                | UnknownTopicOrPartition
                | PurgeQueue
                | PurgeInflight
                | Retry
        ),
        None => true,
    }
}

/// The Kafka sink. Produces from the sink thread with a `BaseProducer` (delivery reports arrive
/// on `poll`, on this thread); a full librdkafka queue makes `accept` wait, which backs up the
/// pipeline and then ingest: backpressure, not an error.
pub struct KafkaSink {
    producer: BaseProducer<Context>,
    config: KafkaConfig,
    reports: Arc<Mutex<Reports>>,
    outstanding: HashMap<u64, Outstanding>,
    /// Unconfirmed messages per LSN: the checkpoint stops below the oldest.
    per_lsn: BTreeMap<u64, u32>,
    next_id: u64,
    last_fed: u64,
    /// Delivered through this LSN, as recorded in `checkpoint_path` (replays skip it).
    delivered_through: u64,
    checkpoint_path: PathBuf,
    final_error: Option<String>,
}

impl KafkaSink {
    /// Connects (lazily: a broker that is down now is retried), creates missing topics, and reads
    /// the LSN it delivered through from `checkpoint_path`.
    pub fn open(config: KafkaConfig, checkpoint_path: &Path) -> Result<KafkaSink, SinkError> {
        let mut client = ClientConfig::new();
        client
            .set("bootstrap.servers", &config.brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("compression.type", "zstd")
            .set("linger.ms", "5")
            // Never give up on a message: an outage is waited out (the log holds the records),
            // so only permanent errors reach the delivery report.
            .set("message.timeout.ms", "0");
        for (key, value) in &config.client {
            client.set(key, value);
        }
        create_topics(&client, &config);
        let reports = Arc::new(Mutex::new(Reports::default()));
        let producer = client
            .create_with_context(Context { reports: reports.clone() })
            .map_err(|e| SinkError::Config(format!("kafka producer for {}: {e}", config.brokers)))?;
        let delivered_through = match std::fs::read_to_string(checkpoint_path) {
            Ok(text) => text.trim().parse().map_err(|_| {
                SinkError::Config(format!(
                    "{} is not an LSN; delete it to re-send the retained log",
                    checkpoint_path.display()
                ))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(SinkError::io(format!("reading {}", checkpoint_path.display()), e)),
        };
        Ok(KafkaSink {
            producer,
            config,
            reports,
            outstanding: HashMap::new(),
            per_lsn: BTreeMap::new(),
            next_id: 0,
            last_fed: delivered_through,
            delivered_through,
            checkpoint_path: checkpoint_path.to_owned(),
            final_error: None,
        })
    }

    /// Messages not yet confirmed by the broker.
    pub fn outstanding(&self) -> usize {
        self.outstanding.len()
    }

    fn enqueue(&mut self, message: Outstanding) -> Result<(), SinkError> {
        let id = self.next_id;
        self.next_id += 1;
        *self.per_lsn.entry(message.lsn).or_default() += 1;
        self.send(id, &message)?;
        self.outstanding.insert(id, message);
        Ok(())
    }

    /// Produces one message, waiting (and serving delivery reports) while librdkafka's queue is
    /// full.
    fn send(&self, id: u64, message: &Outstanding) -> Result<(), SinkError> {
        let (topic, content_type) = if message.points {
            (&self.config.points_topic, POINTS_CONTENT_TYPE)
        } else {
            (&self.config.events_topic, "application/json")
        };
        let headers = OwnedHeaders::new()
            .insert(Header { key: "schema-version", value: Some(SCHEMA_VERSION) })
            .insert(Header { key: "content-type", value: Some(content_type) })
            .insert(Header { key: "trace-id", value: Some(&message.trace_id) });
        let mut record =
            BaseRecord::<String, Vec<u8>, usize>::with_opaque_to(topic, id as usize).key(&message.key).headers(headers);
        if let Some(payload) = &message.payload {
            record = record.payload(payload);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    self.producer.poll(Duration::from_millis(100));
                }
                Err((error, _)) => return Err(SinkError::Kafka(format!("producing to {topic}: {error}"))),
            }
        }
    }

    /// Applies delivery reports: confirmed messages are forgotten, retriable failures sent again.
    fn settle(&mut self) -> Result<(), SinkError> {
        self.producer.poll(Duration::ZERO);
        let (delivered, failed, client_error) = {
            let mut reports = self.reports.lock().map_err(|_| SinkError::Kafka("report lock poisoned".into()))?;
            (std::mem::take(&mut reports.delivered), std::mem::take(&mut reports.failed), reports.client_error.take())
        };
        for id in delivered {
            if let Some(message) = self.outstanding.remove(&id)
                && let Some(count) = self.per_lsn.get_mut(&message.lsn)
            {
                *count -= 1;
                if *count == 0 {
                    self.per_lsn.remove(&message.lsn);
                }
            }
        }
        let mut retried = 0;
        for (id, error) in failed {
            let Some(message) = self.outstanding.get(&id) else { continue };
            if retriable(&error) {
                self.send(id, message)?;
                retried += 1;
            } else {
                // Kept outstanding: the checkpoint stays below it and /healthcheck says why.
                self.final_error = Some(format!(
                    "final error for LSN {} ({}): {error}",
                    message.lsn,
                    if message.points { "points" } else { "event" }
                ));
            }
        }
        if let Some(error) = &self.final_error {
            return Err(SinkError::Kafka(error.clone()));
        }
        if retried > 0 {
            return Err(SinkError::Kafka(format!("{retried} message(s) failed and were sent again")));
        }
        if let Some(error) = client_error
            && !self.outstanding.is_empty()
        {
            return Err(SinkError::Kafka(format!("{error} ({} messages waiting)", self.outstanding.len())));
        }
        Ok(())
    }

    fn save_checkpoint(&mut self) -> Result<(), SinkError> {
        let through = self.checkpoint();
        if through <= self.delivered_through {
            return Ok(());
        }
        let tmp = self.checkpoint_path.with_extension("tmp");
        let io = |e| SinkError::io(format!("writing {}", self.checkpoint_path.display()), e);
        std::fs::write(&tmp, format!("{through}\n")).map_err(io)?;
        std::fs::rename(&tmp, &self.checkpoint_path).map_err(io)?;
        self.delivered_through = through;
        Ok(())
    }
}

impl Sink for KafkaSink {
    fn name(&self) -> &'static str {
        "kafka"
    }

    fn accept(&mut self, output: &ShardOutput) -> Result<(), SinkError> {
        if output.lsn <= self.delivered_through {
            return Ok(()); // replayed: delivered before the restart
        }
        self.last_fed = output.lsn;
        let lsn = output.lsn;
        // One record is one workout's batch: its events and points share the key and trace id.
        let workout = output.events.first().map(|e| e.workout_id).or(output.points.first().map(|p| p.workout_id));
        if let Some(workout) = workout {
            let key = workout.to_string();
            let trace_id = output.trace_id.as_deref().map_or_else(|| trace_id(&workout.0, lsn), str::to_owned);
            for event in &output.events {
                let (key, trace_id, payload) = (key.clone(), trace_id.clone(), Some(event_json(event, lsn)));
                self.enqueue(Outstanding { lsn, points: false, key, payload, trace_id })?;
            }
            if !output.points.is_empty() {
                let payload = Some(points_message(&output.points)?);
                self.enqueue(Outstanding { lsn, points: true, key, payload, trace_id })?;
            }
        }
        self.producer.poll(Duration::ZERO);
        Ok(())
    }

    fn flush(&mut self, _now: Instant, force: bool) -> Result<(), SinkError> {
        let settled = self.settle();
        if force {
            let deadline = Instant::now() + SHUTDOWN_WAIT;
            while !self.outstanding.is_empty() && Instant::now() < deadline && self.final_error.is_none() {
                self.producer.poll(Duration::from_millis(100));
                let _ = self.settle();
            }
        }
        self.save_checkpoint()?;
        if force && !self.outstanding.is_empty() {
            return Err(SinkError::Kafka(format!(
                "{} message(s) unconfirmed at shutdown: they stay in the log and are sent after the restart",
                self.outstanding.len()
            )));
        }
        settled
    }

    /// Erasure: a tombstone for every erased workout on both topics (compacted topics then drop
    /// the key), and a `UserErased` event keyed by the user so consumers erase their copies.
    fn command(&mut self, command: &Command) -> Result<(), SinkError> {
        let Command::Erase(erasure) = command else { return Ok(()) };
        let lsn = self.last_fed;
        for workout in &erasure.workouts {
            let key = workout.workout_id.to_string();
            let trace_id = trace_id(&workout.workout_id.0, lsn);
            for points in [false, true] {
                let (key, trace_id) = (key.clone(), trace_id.clone());
                self.enqueue(Outstanding { lsn, points, key, payload: None, trace_id })?;
            }
        }
        let event = serde_json::json!({
            "type": "UserErased",
            "user_id": erasure.user_id,
            "workout_ids": erasure.workouts.iter().map(|w| w.workout_id.to_string()).collect::<Vec<_>>(),
        });
        let payload = serde_json::to_vec(&event).map_err(|e| SinkError::Kafka(e.to_string()))?;
        let trace_id = trace_id(&[0; 16], lsn);
        self.enqueue(Outstanding {
            lsn,
            points: false,
            key: erasure.user_id.clone(),
            payload: Some(payload),
            trace_id,
        })?;
        self.producer.poll(Duration::ZERO);
        Ok(())
    }

    fn checkpoint(&self) -> u64 {
        match self.per_lsn.keys().next() {
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

/// Creates the topics if they are missing; a broker that is down now only gets a warning (the
/// producer retries, and the topics are created when it comes back).
fn create_topics(client: &ClientConfig, config: &KafkaConfig) {
    let result = (|| -> Result<(), String> {
        let admin: AdminClient<DefaultClientContext> = client.create().map_err(|e| e.to_string())?;
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
        let topics: Vec<NewTopic<'_>> = [&config.events_topic, &config.points_topic]
            .into_iter()
            .map(|t| NewTopic::new(t, config.partitions, TopicReplication::Fixed(1)))
            .collect();
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        let results = runtime
            .block_on(async {
                tokio::time::timeout(Duration::from_secs(15), admin.create_topics(&topics, &options)).await
            })
            .map_err(|_| "timed out".to_string())?
            .map_err(|e| e.to_string())?;
        for result in results {
            match result {
                Ok(topic) => tracing::info!(topic, "kafka topic created"),
                Err((topic, RDKafkaErrorCode::TopicAlreadyExists)) => tracing::debug!(topic, "kafka topic exists"),
                Err((topic, code)) => return Err(format!("creating {topic}: {code}")),
            }
        }
        Ok(())
    })();
    if let Err(error) = result {
        tracing::warn!(brokers = %config.brokers, %error, "kafka topics not created now; producing will retry");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_and_network_failures_are_retried_and_bad_messages_are_final() {
        let produce = |code| KafkaError::MessageProduction(code);
        for code in [
            RDKafkaErrorCode::MessageTimedOut,
            RDKafkaErrorCode::AllBrokersDown,
            RDKafkaErrorCode::NotEnoughReplicas,
            RDKafkaErrorCode::LeaderNotAvailable,
        ] {
            assert!(retriable(&produce(code)), "{code:?}");
        }
        for code in [
            RDKafkaErrorCode::MessageSizeTooLarge,
            RDKafkaErrorCode::TopicAuthorizationFailed,
            RDKafkaErrorCode::InvalidMessage,
        ] {
            assert!(!retriable(&produce(code)), "{code:?}");
        }
    }

    #[test]
    fn trace_ids_are_32_hex_digits_and_stable_per_record() {
        let id = trace_id(&[0xab; 16], 42);
        assert_eq!(id.len(), 32);
        assert_eq!(id, trace_id(&[0xab; 16], 42));
        assert_ne!(id, trace_id(&[0xab; 16], 43));
        assert!(id.ends_with("000000000000002a"));
    }
}
