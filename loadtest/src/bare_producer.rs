//! A bare rdkafka producer with our Kafka sink's settings (idempotent, acks=all, zstd, 5 ms
//! linger): the ceiling both `trackwire-kafka-bench` and `--kafka-brokers` compare against.

use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaResult;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

pub fn create(brokers: &str) -> KafkaResult<BaseProducer> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("compression.type", "zstd")
        .set("linger.ms", "5")
        .create()
}

/// Sends every `(topic, key, payload)` as fast as the producer's queue allows, then waits until
/// the broker has confirmed them all.
pub fn send_all<'a>(
    producer: &BaseProducer,
    messages: impl IntoIterator<Item = (&'a str, &'a str, &'a [u8])>,
) -> KafkaResult<()> {
    for (topic, key, payload) in messages {
        let mut record = BaseRecord::to(topic).key(key).payload(payload);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, back)) => {
                    // Queue full: serve delivery reports to make room, then try again.
                    record = back;
                    producer.poll(Duration::from_millis(10));
                }
            }
        }
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(120))
}
