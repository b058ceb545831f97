//! A fake Kafka: a broker that keeps what it was sent (across the sink's restarts) and a producer
//! whose hand-overs and deliveries fail at random, including refusals of messages that are too
//! large for the broker.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use trackwire_sinks::kafka::{Message, Produce, Refusal, Reports};

use super::{Fault, Faults};

/// What the broker holds, in the order it stored it.
#[derive(Clone, Default)]
pub struct Broker(pub Arc<Mutex<Vec<Message>>>);

pub struct FakeProducer {
    broker: Broker,
    faults: Faults,
    /// Payloads above this are refused as too large, on hand-over or (if the client took them)
    /// on delivery.
    broker_limit: usize,
    /// The client's queue; lost when the process dies.
    queue: VecDeque<(u64, Message)>,
    capacity: usize,
}

impl FakeProducer {
    pub fn new(broker: Broker, faults: Faults, broker_limit: usize) -> FakeProducer {
        FakeProducer { broker, faults, broker_limit, queue: VecDeque::new(), capacity: 64 }
    }
}

impl Produce for FakeProducer {
    fn send(&mut self, id: u64, message: &Message) -> Result<(), Refusal> {
        if self.queue.len() >= self.capacity {
            return Err(Refusal::QueueFull);
        }
        match self.faults.draw() {
            Fault::Before => return Err(Refusal::Retriable("injected fault: broker transport failure".into())),
            Fault::After => return Err(Refusal::QueueFull),
            Fault::None => {}
        }
        let size = message.payload.as_ref().map_or(0, Vec::len);
        // Half the large messages are caught by the client, half only by the broker.
        if size > self.broker_limit && id.is_multiple_of(2) {
            return Err(Refusal::TooLarge(format!("{size} bytes")));
        }
        self.queue.push_back((id, message.clone()));
        Ok(())
    }

    fn poll(&mut self, _timeout: Duration) -> Reports {
        let mut reports = Reports::default();
        while let Some((id, message)) = self.queue.pop_front() {
            let size = message.payload.as_ref().map_or(0, Vec::len);
            if size > self.broker_limit {
                reports.failed.push((id, Refusal::TooLarge(format!("the broker refused {size} bytes"))));
                continue;
            }
            match self.faults.draw() {
                Fault::None => {
                    self.broker.0.lock().unwrap().push(message);
                    reports.delivered.push(id);
                }
                _ => reports.failed.push((id, Refusal::Retriable("injected fault: not enough replicas".into()))),
            }
        }
        reports
    }
}
