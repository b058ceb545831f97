use std::collections::BTreeMap;

/// Where and how to produce.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// `host:port[,host:port…]`.
    pub brokers: String,
    pub events_topic: String,
    pub points_topic: String,
    /// Largest message produced (librdkafka's `message.max.bytes`; the broker's and topic's
    /// `max.message.bytes` must be at least this). A record's points larger than this are sent as
    /// several consecutive messages.
    pub max_message_bytes: usize,
    /// Extra librdkafka settings (`security.protocol`, `sasl.mechanism`, `sasl.username`,
    /// `sasl.password`, `ssl.ca.location`, `linger.ms`, …); they win over ours.
    pub client: BTreeMap<String, String>,
}

impl KafkaConfig {
    pub fn new(brokers: impl Into<String>) -> Self {
        KafkaConfig {
            brokers: brokers.into(),
            events_topic: "trackwire.workout-events.v2".into(),
            points_topic: "trackwire.points.v1".into(),
            // librdkafka's and Kafka's own default.
            max_message_bytes: 1_000_000,
            client: BTreeMap::new(),
        }
    }
}
