//! When each batch is meant to go out.
//!
//! Open loop: every batch has an intended send time fixed before the run (a device's clock, or
//! the upload rate), and its latency is measured from that time, not from when a busy sender got
//! round to it. A server that falls behind therefore shows its queueing in the percentiles instead
//! of slowing the load down ("coordinated omission", Gil Tene, *How NOT to Measure Latency*, 2015).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The run's bounds: a deadline for sending and an optional cap on batches sent, over all senders.
pub struct Budget {
    pub stop_at: Instant,
    max_requests: u64,
    taken: AtomicU64,
}

impl Budget {
    pub fn new(stop_at: Instant, max_requests: u64) -> Budget {
        Budget { stop_at, max_requests, taken: AtomicU64::new(0) }
    }

    /// Takes one batch from the budget if sending at `at` is still within the run.
    pub fn take(&self, at: Instant) -> bool {
        if at >= self.stop_at {
            return false;
        }
        if self.max_requests == 0 {
            return true;
        }
        self.taken.fetch_add(1, Ordering::Relaxed) < self.max_requests
    }

    pub fn exhausted(&self) -> bool {
        Instant::now() >= self.stop_at
            || (self.max_requests > 0 && self.taken.load(Ordering::Relaxed) >= self.max_requests)
    }
}

/// Intended send times of a stream of batches shared by several senders: slot `k` is due at
/// `start + k / rate`. Without a rate (closed loop) a batch is due when a sender is free.
pub struct Pacer {
    start: Instant,
    interval: Option<Duration>,
    next_slot: AtomicU64,
}

impl Pacer {
    pub fn new(start: Instant, rate_per_s: f64) -> Pacer {
        let interval = (rate_per_s > 0.0).then(|| Duration::from_secs_f64(1.0 / rate_per_s));
        Pacer { start, interval, next_slot: AtomicU64::new(0) }
    }

    /// The intended send time of the next batch.
    pub fn next(&self) -> Instant {
        match self.interval {
            Some(interval) => {
                let slot = self.next_slot.fetch_add(1, Ordering::Relaxed);
                self.start + interval.mul_f64(slot as f64)
            }
            None => Instant::now(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_loop_slots_do_not_wait_for_the_senders() {
        let start = Instant::now();
        let pacer = Pacer::new(start, 100.0);
        let due: Vec<Duration> = (0..4).map(|_| pacer.next() - start).collect();
        assert_eq!(due, [0, 10, 20, 30].map(Duration::from_millis));
    }

    #[test]
    fn budget_stops_at_the_cap_or_the_deadline() {
        let now = Instant::now();
        let budget = Budget::new(now + Duration::from_secs(10), 2);
        assert!(budget.take(now) && budget.take(now));
        assert!(!budget.take(now), "the third batch is over the cap");
        assert!(budget.exhausted());
        let timed = Budget::new(now + Duration::from_secs(1), 0);
        assert!(timed.take(now));
        assert!(!timed.take(now + Duration::from_secs(1)));
    }
}
