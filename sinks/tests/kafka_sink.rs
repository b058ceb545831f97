//! The Kafka sink's regressions, against a fake broker: a message the client refuses when it is
//! handed over is sent again (it used to be counted outstanding and never sent, freezing the
//! checkpoint), and a record's points larger than a message are split instead of refused forever.
mod common;
mod faults;

use std::collections::HashMap;
use std::time::Instant;

use trackwire_sinks::Sink;
use trackwire_sinks::kafka::{KafkaConfig, KafkaSink, Position, Topic};

use faults::Faults;
use faults::kafka::{Broker, FakeProducer};

const T0: i64 = 1_700_000_000_000;

fn rows_on(broker: &Broker) -> (usize, HashMap<(u64, u32), usize>) {
    let mut rows = HashMap::new();
    let mut messages = 0;
    for message in broker.0.lock().unwrap().iter().filter(|m| m.topic == Topic::Points) {
        messages += 1;
        for batch in arrow_ipc::reader::StreamReader::try_new(message.payload.as_deref().unwrap(), None).unwrap() {
            let batch = batch.unwrap();
            let lsn = batch.column_by_name("lsn").unwrap().as_any().downcast_ref::<arrow_array::UInt64Array>().unwrap();
            let index = batch
                .column_by_name("sample_index")
                .unwrap()
                .as_any()
                .downcast_ref::<arrow_array::UInt32Array>()
                .unwrap();
            for i in 0..batch.num_rows() {
                *rows.entry((lsn.value(i), index.value(i))).or_default() += 1;
            }
        }
    }
    (messages, rows)
}

#[test]
fn a_message_refused_at_hand_over_is_sent_on_a_later_flush() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::default();
    // Every operation fails until the faults are switched off.
    let faults = Faults::new(3, 100);
    let producer = FakeProducer::new(broker.clone(), faults.clone(), usize::MAX);
    let mut sink = KafkaSink::with_producer(
        Box::new(producer),
        &KafkaConfig::new("fake"),
        Position::File(dir.path().join("ckpt")),
    )
    .unwrap();
    let outputs = common::outputs(&[(1, common::batch(1, 0, T0, 10)), (2, common::batch(1, 1, T0 + 10_000, 10))]);
    for output in &outputs {
        sink.accept(output);
    }
    assert!(sink.flush(Instant::now(), false).is_err(), "the refusal is reported");
    assert_eq!(sink.checkpoint(), 0, "nothing confirmed, nothing checkpointed");
    faults.set_percent(0);
    sink.flush(Instant::now(), true).unwrap();
    assert_eq!(sink.checkpoint(), 2);
    let (_, rows) = rows_on(&broker);
    assert_eq!(rows.len(), 20);
    assert!(rows.values().all(|n| *n == 1));
}

#[test]
fn points_larger_than_a_message_are_split_and_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::default();
    // The broker takes less than the sink's own limit: the sink splits first by its limit, then
    // again when the broker refuses a part.
    let producer = FakeProducer::new(broker.clone(), Faults::new(1, 0), 60_000);
    let mut config = KafkaConfig::new("fake");
    config.max_message_bytes = 200_000;
    let mut sink =
        KafkaSink::with_producer(Box::new(producer), &config, Position::File(dir.path().join("ckpt"))).unwrap();
    let outputs = common::outputs(&[(1, common::batch(1, 0, T0, 5_000))]);
    sink.accept(&outputs[0]);
    sink.flush(Instant::now(), true).unwrap();
    assert_eq!(sink.checkpoint(), 1, "the large record is confirmed, not stuck");
    let (messages, rows) = rows_on(&broker);
    assert!(messages > 2, "{messages} messages");
    assert!(broker.0.lock().unwrap().iter().all(|m| m.payload.as_ref().is_none_or(|p| p.len() <= 60_000)));
    assert_eq!(rows.len(), 5_000);
    assert!(rows.values().all(|n| *n == 1));
}

#[test]
fn a_partition_taken_over_on_another_node_is_not_sent_again() {
    let store: std::sync::Arc<dyn trackwire_sinks::read_store::ReadStore> = {
        let dir = tempfile::tempdir().unwrap();
        std::sync::Arc::new(trackwire_sinks::read_store::RedbStore::open(&dir.keep().join("read.redb")).unwrap())
    };
    let broker = Broker::default();
    let outputs = common::outputs(&[(1, common::batch(1, 0, T0, 10)), (2, common::batch(1, 1, T0 + 10_000, 10))]);
    // Each owner has a volume of its own; the position is kept in the shared store.
    let owner = |volume: &std::path::Path| {
        let producer = FakeProducer::new(broker.clone(), Faults::new(1, 0), usize::MAX);
        let position = Position::in_store(store.clone(), "raw.v1/3", Some(volume.join("kafka.checkpoint")));
        KafkaSink::with_producer(Box::new(producer), &KafkaConfig::new("fake"), position).unwrap()
    };
    let (first_volume, second_volume) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut first = owner(first_volume.path());
    for output in &outputs {
        first.accept(output);
    }
    first.flush(Instant::now(), true).unwrap();
    assert_eq!(first.checkpoint(), 2);
    drop(first);

    // The next owner replays the partition from its first record.
    let mut second = owner(second_volume.path());
    assert_eq!(second.checkpoint(), 2, "the previous owner's position is found");
    for output in &outputs {
        second.accept(output);
    }
    second.flush(Instant::now(), true).unwrap();
    let (_, rows) = rows_on(&broker);
    assert_eq!(rows.len(), 20);
    assert!(rows.values().all(|n| *n == 1), "nothing sent twice");
}
