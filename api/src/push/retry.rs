//! When to try a failed delivery again: exponential backoff from `initial`, doubling per
//! attempt up to `max`, for at most `max_attempts` attempts. Pure: it takes the attempt count and
//! `now`, and returns the instant of the next attempt.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub initial: Duration,
    pub max: Duration,
}

impl RetryPolicy {
    /// After the `attempts_made`-th attempt failed at `now_ms`: when to make the next one (Unix
    /// ms), or None when that was the last.
    pub fn next_attempt_ms(&self, attempts_made: u32, now_ms: i64) -> Option<i64> {
        if attempts_made >= self.max_attempts {
            return None;
        }
        let doublings = attempts_made.saturating_sub(1).min(40);
        let wait = self.initial.saturating_mul(1 << doublings.min(31)).min(self.max);
        Some(now_ms.saturating_add(wait.as_millis() as i64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_cap_and_stop_after_the_last_attempt() {
        let policy = RetryPolicy { max_attempts: 6, initial: Duration::from_secs(10), max: Duration::from_secs(60) };
        let waits: Vec<Option<i64>> = (1..=6).map(|made| policy.next_attempt_ms(made, 1_000)).collect();
        assert_eq!(waits, [Some(11_000), Some(21_000), Some(41_000), Some(61_000), Some(61_000), None]);
        let long = RetryPolicy { max_attempts: u32::MAX, initial: Duration::from_secs(1), max: Duration::MAX };
        assert!(long.next_attempt_ms(1_000, i64::MAX - 5).is_some_and(|t| t == i64::MAX), "no overflow");
    }
}
