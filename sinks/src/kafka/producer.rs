//! The producer seam: what the sink needs of a Kafka client (hand over a message, collect delivery
//! reports), with librdkafka behind it in production and a fault-injecting fake in tests.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, ProducerContext};

use super::KafkaConfig;
use super::encode::{EVENTS_SCHEMA_VERSION, POINTS_CONTENT_TYPE, POINTS_SCHEMA_VERSION};
use crate::SinkError;

/// Which of the sink's topics a message goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    Events,
    Points,
}

/// One message as the sink keeps it until the broker confirms it.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The log position of the output it carries (a part of).
    pub lsn: u64,
    pub topic: Topic,
    pub key: String,
    /// None: a tombstone (a null value that log compaction turns into deletion of the key).
    pub payload: Option<Vec<u8>>,
    pub trace_id: String,
}

/// Why a message could not be handed over or delivered.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// The client's queue is full: wait for deliveries, then send again.
    QueueFull,
    /// Larger than the client or broker takes: a points message is split and sent again.
    TooLarge(String),
    /// The broker or network failed; sending again can succeed.
    Retriable(String),
    /// Sending the same message again will fail the same way until an operator acts
    /// (authorisation, a missing topic that cannot be created); kept and retried all the same.
    Final(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::QueueFull => f.write_str("the producer's queue is full"),
            Refusal::TooLarge(e) => write!(f, "message too large: {e}"),
            Refusal::Retriable(e) | Refusal::Final(e) => f.write_str(e),
        }
    }
}

/// What the client reported since the last poll; ids are the ones given to [`Produce::send`].
#[derive(Debug, Default)]
pub struct Reports {
    pub delivered: Vec<u64>,
    pub failed: Vec<(u64, Refusal)>,
    /// A client-level error (brokers unreachable, authentication), for `/healthcheck`.
    pub client_error: Option<String>,
}

/// A Kafka producer as the sink uses it.
pub trait Produce: Send {
    /// Hands one message to the client (no waiting); its delivery is reported by `poll` under `id`.
    fn send(&mut self, id: u64, message: &Message) -> Result<(), Refusal>;
    /// Serves the client for up to `timeout` and returns what it reported.
    fn poll(&mut self, timeout: Duration) -> Reports;
}

/// librdkafka's producer: idempotent, `acks=all`, zstd, and no delivery timeout (an outage is
/// waited out, so only permanent errors reach the delivery report).
pub struct RdKafkaProducer {
    producer: BaseProducer<Context>,
    reports: Arc<Mutex<Reports>>,
    events_topic: String,
    points_topic: String,
}

impl RdKafkaProducer {
    /// Connects (lazily: a broker that is down now is retried). The topics must be provisioned
    /// (the binary does at start); until they exist, messages wait.
    pub fn new(config: &KafkaConfig) -> Result<Self, SinkError> {
        let mut client = ClientConfig::new();
        client
            .set("bootstrap.servers", &config.brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("compression.type", "zstd")
            .set("linger.ms", "5")
            .set("message.max.bytes", config.max_message_bytes.to_string())
            .set("message.timeout.ms", "0")
            // Topics are provisioned with their replication and retention by whoever runs the
            // sink; a broker that creates topics on first use would give them its defaults.
            .set("allow.auto.create.topics", "false");
        for (key, value) in &config.client {
            client.set(key, value);
        }
        let reports = Arc::new(Mutex::new(Reports::default()));
        let producer = client
            .create_with_context(Context { reports: reports.clone() })
            .map_err(|e| SinkError::Config(format!("kafka producer for {}: {e}", config.brokers)))?;
        Ok(RdKafkaProducer {
            producer,
            reports,
            events_topic: config.events_topic.clone(),
            points_topic: config.points_topic.clone(),
        })
    }
}

impl Produce for RdKafkaProducer {
    fn send(&mut self, id: u64, message: &Message) -> Result<(), Refusal> {
        let (topic, content_type, version) = match message.topic {
            Topic::Points => (&self.points_topic, POINTS_CONTENT_TYPE, POINTS_SCHEMA_VERSION),
            Topic::Events => (&self.events_topic, "application/json", EVENTS_SCHEMA_VERSION),
        };
        let headers = OwnedHeaders::new()
            .insert(Header { key: "schema-version", value: Some(version) })
            .insert(Header { key: "content-type", value: Some(content_type) })
            .insert(Header { key: "trace-id", value: Some(&message.trace_id) });
        let mut record =
            BaseRecord::<String, Vec<u8>, usize>::with_opaque_to(topic, id as usize).key(&message.key).headers(headers);
        if let Some(payload) = &message.payload {
            record = record.payload(payload);
        }
        self.producer.send(record).map_err(|(error, _)| classify(&error, topic))
    }

    fn poll(&mut self, timeout: Duration) -> Reports {
        self.producer.poll(timeout);
        self.reports.lock().map(|mut reports| std::mem::take(&mut *reports)).unwrap_or_default()
    }
}

pub struct Context {
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
                Err((error, message)) => {
                    use rdkafka::Message as _;
                    reports.failed.push((id as u64, classify(error, message.topic())));
                }
            }
        }
    }
}

/// Sorts a librdkafka error by what the sink should do about it.
fn classify(error: &KafkaError, topic: &str) -> Refusal {
    use RDKafkaErrorCode::*;
    let text = format!("producing to {topic}: {error}");
    match error.rdkafka_error_code() {
        Some(QueueFull) => Refusal::QueueFull,
        Some(MessageSizeTooLarge) => Refusal::TooLarge(text),
        Some(
            MessageTimedOut
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
            | Retry,
        )
        | None => Refusal::Retriable(text),
        Some(_) => Refusal::Final(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_and_network_failures_are_retriable_and_size_is_told_apart() {
        let produce = |code| KafkaError::MessageProduction(code);
        for code in [
            RDKafkaErrorCode::MessageTimedOut,
            RDKafkaErrorCode::AllBrokersDown,
            RDKafkaErrorCode::NotEnoughReplicas,
            RDKafkaErrorCode::LeaderNotAvailable,
        ] {
            assert!(matches!(classify(&produce(code), "t"), Refusal::Retriable(_)), "{code:?}");
        }
        assert_eq!(classify(&produce(RDKafkaErrorCode::QueueFull), "t"), Refusal::QueueFull);
        assert!(matches!(classify(&produce(RDKafkaErrorCode::MessageSizeTooLarge), "t"), Refusal::TooLarge(_)));
        for code in [RDKafkaErrorCode::TopicAuthorizationFailed, RDKafkaErrorCode::InvalidMessage] {
            assert!(matches!(classify(&produce(code), "t"), Refusal::Final(_)), "{code:?}");
        }
    }
}
