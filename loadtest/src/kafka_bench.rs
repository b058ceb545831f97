//! Kafka sink throughput against a bare rdkafka producer sending the same bytes to the same
//! broker: the ratio is what the sink's encoding, bookkeeping and delivery tracking cost.
//!
//! `trackwire-kafka-bench --brokers 127.0.0.1:9092 --records 2000 --points 100`

mod bare_producer;

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use trackwire_codec::{BatchData, Sample, Sport, WorkoutId, encode_batch};
use trackwire_pipeline::{ShardCore, ShardOutput};
use trackwire_sinks::Sink;
use trackwire_sinks::events::event_json;
use trackwire_sinks::kafka::{KafkaConfig, KafkaSink, Position, points_message};

#[derive(Parser)]
struct Args {
    #[arg(long)]
    brokers: String,
    /// Log records (batches) to send; each gives one points message and one event.
    #[arg(long, default_value_t = 2000)]
    records: u64,
    /// Samples per record.
    #[arg(long, default_value_t = 100)]
    points: u32,
}

fn outputs(records: u64, points: u32) -> Vec<ShardOutput> {
    let mut core = ShardCore::default();
    (0..records)
        .map(|seq| {
            let samples = (0..points)
                .map(|i| {
                    let n = (seq * u64::from(points) + u64::from(i)) as i32;
                    Sample::new(i * 1000, 473_000_000 + n * 270, 85_000_000 + n * 100, 40_000, 140, 85, u16::MAX, 40, 0)
                })
                .collect();
            let bytes = encode_batch(&BatchData {
                device_id: "bench".into(),
                user_id: "u".into(),
                workout_id: WorkoutId([(seq % 64) as u8; 16]),
                sport: Sport::Running,
                seq: seq / 64,
                base_time_ms: 1_700_000_000_000 + seq as i64 * 100_000,
                samples,
                ..BatchData::default()
            });
            core.process(seq + 1, &bytes)
        })
        .collect()
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let outputs = outputs(args.records, args.points);
    let suffix = std::process::id();

    // The sink: encode, produce, track deliveries, until every message is confirmed.
    let dir = std::env::temp_dir().join(format!("trackwire-kafka-bench-{suffix}"));
    std::fs::create_dir_all(&dir)?;
    let mut config = KafkaConfig::new(&args.brokers);
    config.events_topic = format!("bench-events-{suffix}");
    config.points_topic = format!("bench-points-{suffix}");
    let mut sink =
        KafkaSink::open(config.clone(), Position::File(dir.join("checkpoint"))).context("opening the sink")?;
    let started = Instant::now();
    for output in &outputs {
        // As the coordinator does: a full sink is flushed before it takes more.
        while sink.is_full() {
            let _ = sink.flush(Instant::now(), false);
        }
        sink.accept(output);
    }
    sink.flush(Instant::now(), true)?;
    let sink_time = started.elapsed();
    anyhow::ensure!(sink.checkpoint() == args.records, "not everything confirmed");

    // The same bytes through a bare producer with the same settings.
    let payloads: Vec<(String, Vec<u8>, bool)> = outputs
        .iter()
        .flat_map(|o| {
            let key = o.points.workout_id[0].to_string();
            let mut v: Vec<_> = o.events.iter().map(|e| (key.clone(), event_json(e, o.lsn), false)).collect();
            v.push((key, points_message(&o.points).expect("encodes"), true));
            v
        })
        .collect();
    let bytes: usize = payloads.iter().map(|(_, p, _)| p.len()).sum();
    let producer = bare_producer::create(&args.brokers)?;
    // The topics the sink created: same broker, same partitions.
    let (events_topic, points_topic) = (config.events_topic.clone(), config.points_topic.clone());
    let started = Instant::now();
    bare_producer::send_all(
        &producer,
        payloads.iter().map(|(key, payload, points)| {
            let topic = if *points { points_topic.as_str() } else { events_topic.as_str() };
            (topic, key.as_str(), payload.as_slice())
        }),
    )?;
    let bare_time = started.elapsed();

    let rate = |t: Duration| payloads.len() as f64 / t.as_secs_f64();
    let mb = |t: Duration| bytes as f64 / t.as_secs_f64() / 1e6;
    println!("messages: {} ({:.1} MB)", payloads.len(), bytes as f64 / 1e6);
    println!("kafka sink:    {:>9.0} msg/s {:>7.1} MB/s ({:?})", rate(sink_time), mb(sink_time), sink_time);
    println!("bare producer: {:>9.0} msg/s {:>7.1} MB/s ({:?})", rate(bare_time), mb(bare_time), bare_time);
    println!("ratio sink/bare: {:.2}", bare_time.as_secs_f64() / sink_time.as_secs_f64());
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}
