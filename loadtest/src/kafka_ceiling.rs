//! The Kafka ceiling: a bare rdkafka producer (the settings our sink uses: idempotent, acks=all,
//! zstd, 5 ms linger) sending the run's kind of batches to the same broker, as fast as it can.
//! Our end-to-end samples/s over its samples/s says how close the whole gateway gets to what the
//! broker alone allows.

use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::types::RDKafkaErrorCode;

use crate::bare_producer;
use crate::cli::{RunArgs, Scenario};
use crate::report::KafkaCeiling;
use crate::workload::{Sender, Workload, now_ms};

/// Most messages the ceiling sends (enough for a steady rate, bounded in time and memory).
const MAX_MESSAGES: u64 = 100_000;

/// Sends `messages` batches like the scenario's and times it. Blocking: call off the runtime.
pub fn measure(
    scenario: Scenario,
    args: &RunArgs,
    brokers: &str,
    messages: u64,
    ours_samples_per_s: f64,
) -> anyhow::Result<KafkaCeiling> {
    let messages = messages.clamp(1, MAX_MESSAGES);
    let workload = Workload::new(args.seed);
    let mut payloads = Vec::new();
    let mut samples = 0u64;
    let mut n = 0;
    while (payloads.len() as u64) < messages {
        let workout = if scenario == Scenario::QuicFleet {
            let duration_s = (args.workout_minutes * 60.0).min(600.0) as u32;
            workload.workout(Sender::Device(n as u32), 0, now_ms(), duration_s, args.hz, args.batch_size)
        } else {
            let duration_s = (args.upload_workout_minutes * 60.0) as u32;
            workload.workout(Sender::Upload, n, now_ms(), duration_s, 1.0, args.upload_batch_size)
        };
        for batch in workout.batches {
            if (payloads.len() as u64) < messages {
                samples += u64::from(batch.samples);
                payloads.push((workout.id.to_string(), batch.bytes));
            }
        }
        n += 1;
    }
    let topic = format!("trackwire.loadtest.ceiling.{:016x}", workload.run_id);
    create_topic(brokers, &topic)?;
    let producer = bare_producer::create(brokers).context("creating the bare Kafka producer")?;
    let bytes: u64 = payloads.iter().map(|(_, p)| p.len() as u64).sum();
    let started = Instant::now();
    bare_producer::send_all(
        &producer,
        payloads.iter().map(|(key, payload)| (topic.as_str(), key.as_str(), payload.as_ref())),
    )
    .context("waiting for the broker to confirm every message")?;
    let seconds = started.elapsed().as_secs_f64();
    let samples_per_s = samples as f64 / seconds;
    Ok(KafkaCeiling {
        brokers: brokers.to_owned(),
        topic,
        messages: payloads.len() as u64,
        bytes,
        samples,
        seconds,
        samples_per_s,
        bytes_per_s: bytes as f64 / seconds,
        ratio_samples_per_s: ours_samples_per_s / samples_per_s,
    })
}

/// Eight partitions, like the sink's topics.
fn create_topic(brokers: &str, topic: &str) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", brokers).create().context("creating a Kafka admin client")?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let topics = [NewTopic::new(topic, 8, TopicReplication::Fixed(1))];
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = runtime
        .block_on(async { tokio::time::timeout(Duration::from_secs(15), admin.create_topics(&topics, &options)).await })
        .context("the broker did not answer a topic creation in 15 s")??;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => anyhow::bail!("creating Kafka topic {topic}: {code}"),
        }
    }
    Ok(())
}
