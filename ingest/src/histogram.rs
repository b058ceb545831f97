//! A latency histogram that many threads record into without a lock: one atomic counter per
//! bucket, the sum in microseconds, the count. Rendered as a Prometheus histogram (cumulative
//! `le` buckets, `_sum` in seconds, `_count`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the buckets, seconds: from a millisecond (a durable ack on a fast disk) to
/// ten seconds (a client's usual timeout); the SLOs in `deploy/prometheus/alerts.yml` sit on
/// bucket bounds (0.05 s, 0.25 s, 1 s) so their ratios are exact.
pub const BUCKET_BOUNDS_SECONDS: [f64; 14] =
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

#[derive(Debug, Default)]
pub struct LatencyHistogram {
    /// Observations at or below each bound (not cumulative; the last slot is above every bound).
    buckets: [AtomicU64; BUCKET_BOUNDS_SECONDS.len() + 1],
    sum_micros: AtomicU64,
    count: AtomicU64,
}

/// A point-in-time copy: cumulative counts per bound (then `+Inf`), sum in seconds, count.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    pub cumulative: Vec<u64>,
    pub sum_seconds: f64,
    pub count: u64,
}

impl LatencyHistogram {
    pub fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        let slot =
            BUCKET_BOUNDS_SECONDS.iter().position(|bound| seconds <= *bound).unwrap_or(BUCKET_BOUNDS_SECONDS.len());
        self.buckets[slot].fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX), Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut running = 0;
        let cumulative = self
            .buckets
            .iter()
            .map(|b| {
                running += b.load(Ordering::Relaxed);
                running
            })
            .collect();
        HistogramSnapshot {
            cumulative,
            sum_seconds: self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
            count: self.count.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_first_bucket_that_holds_them_and_buckets_are_cumulative() {
        let h = LatencyHistogram::default();
        for ms in [0, 1, 3, 40, 40, 900, 60_000] {
            h.observe(Duration::from_millis(ms));
        }
        let s = h.snapshot();
        assert_eq!(s.count, 7);
        assert_eq!(s.cumulative.len(), BUCKET_BOUNDS_SECONDS.len() + 1);
        assert_eq!(&s.cumulative[..3], &[2, 2, 3], "≤1 ms: 0 and 1 ms; ≤5 ms: also 3 ms");
        assert_eq!(s.cumulative[5], 5, "≤50 ms");
        assert_eq!(s.cumulative[9], 6, "≤1 s");
        assert_eq!(*s.cumulative.last().unwrap(), 7, "+Inf holds everything");
        assert!((s.sum_seconds - 60.984).abs() < 1e-9, "{}", s.sum_seconds);
    }
}
