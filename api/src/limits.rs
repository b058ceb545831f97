//! Rate limits per bearer token: a token bucket each (GitHub's and Strava's `429` with limit
//! headers). Every `/api/v1` response says where the caller stands:
//! `X-RateLimit-Limit` (requests per minute), `X-RateLimit-Remaining`, `X-RateLimit-Reset`
//! (seconds until the bucket is full again); a refused request also gets `Retry-After`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use dashmap::DashMap;
use serde::{Deserialize, Serialize};

use crate::{ApiError, AppState};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Sustained requests per minute per token.
    pub per_minute: u32,
    /// Requests a token may make at once before the sustained rate applies.
    pub burst: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig { per_minute: 600, burst: 100 }
    }
}

struct Bucket {
    tokens: f64,
    updated: Instant,
}

pub struct RateLimiter {
    config: RateLimitConfig,
    /// By a hash of the token: a JWT is about a kilobyte, its bucket need not hold it. Only the
    /// buckets not yet full again: a full one says nothing a new one would not, and keeping
    /// them would keep every token ever presented, made-up ones too (the token is not checked
    /// before its bucket is).
    buckets: DashMap<u64, Bucket>,
    /// When the limiter started, and (in ms since then) when it last let go of full buckets.
    origin: Instant,
    swept_ms: AtomicU64,
}

/// Where a caller stands after a request.
pub struct Verdict {
    pub allowed: bool,
    pub remaining: u32,
    /// Seconds until the bucket is full (for `Reset`) or until one request is allowed (when refused).
    pub reset_secs: u64,
    pub retry_after_secs: u64,
}

impl RateLimiter {
    pub fn new(config: RateLimitConfig) -> Self {
        RateLimiter { config, buckets: DashMap::new(), origin: Instant::now(), swept_ms: AtomicU64::new(0) }
    }

    /// (tokens per second, tokens a bucket holds).
    fn rate_and_capacity(&self) -> (f64, f64) {
        (f64::from(self.config.per_minute.max(1)) / 60.0, f64::from(self.config.burst.max(1)))
    }

    /// Lets go of the buckets full again at `now`, at most once per the time an empty bucket
    /// takes to fill (at least a second): the limiter then holds the callers of about that long.
    fn forget_full(&self, now: Instant) {
        let (rate, capacity) = self.rate_and_capacity();
        let every_ms = ((capacity / rate) * 1000.0).max(1000.0) as u64;
        let now_ms = now.saturating_duration_since(self.origin).as_millis() as u64;
        let swept_ms = self.swept_ms.load(Ordering::Relaxed);
        if now_ms < swept_ms + every_ms
            || self.swept_ms.compare_exchange(swept_ms, now_ms, Ordering::Relaxed, Ordering::Relaxed).is_err()
        {
            return;
        }
        self.buckets.retain(|_, bucket| {
            bucket.tokens + now.saturating_duration_since(bucket.updated).as_secs_f64() * rate < capacity
        });
    }

    /// Takes one request from `key`'s bucket at `now`.
    pub fn check(&self, token: &str, now: Instant) -> Verdict {
        self.forget_full(now);
        let (rate, capacity) = self.rate_and_capacity();
        let mut bucket = self.buckets.entry(key_of(token)).or_insert_with(|| Bucket { tokens: capacity, updated: now });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(capacity);
        bucket.updated = now;
        let allowed = bucket.tokens >= 1.0;
        if allowed {
            bucket.tokens -= 1.0;
        }
        Verdict {
            allowed,
            remaining: bucket.tokens.floor() as u32,
            reset_secs: ((capacity - bucket.tokens) / rate).ceil() as u64,
            retry_after_secs: ((1.0 - bucket.tokens).max(0.0) / rate).ceil() as u64,
        }
    }

    pub fn limit(&self) -> u32 {
        self.config.per_minute
    }
}

fn key_of(token: &str) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    BuildHasherDefault::<DefaultHasher>::default().hash_one(token)
}

/// The middleware: one bucket per bearer token (requests without one share a bucket).
pub async fn rate_limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let verdict = state.limiter.check(crate::auth::bearer(request.headers()).unwrap_or(""), Instant::now());
    let mut response = if verdict.allowed {
        next.run(request).await
    } else {
        let mut error = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "more than {} requests per minute with this token: wait {} s and retry",
                state.limiter.limit(),
                verdict.retry_after_secs
            ),
        );
        error.retry_after = Some(verdict.retry_after_secs.max(1) as u32);
        error.into_response()
    };
    let headers = response.headers_mut();
    headers.insert("x-ratelimit-limit", HeaderValue::from(state.limiter.limit()));
    headers.insert("x-ratelimit-remaining", HeaderValue::from(verdict.remaining));
    headers.insert("x-ratelimit-reset", HeaderValue::from(verdict.reset_secs));
    response
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_burst_is_allowed_then_the_sustained_rate() {
        let limiter = RateLimiter::new(RateLimitConfig { per_minute: 60, burst: 3 });
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check("a", t0).allowed);
        }
        let refused = limiter.check("a", t0);
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after_secs, 1);
        assert!(limiter.check("b", t0).allowed, "buckets are per token");
        assert!(limiter.check("a", t0 + Duration::from_millis(1_001)).allowed, "one per second refills");
    }

    /// Callers come and go (a token per hour per user, or a stream of made-up ones): once a
    /// bucket is full again it is forgotten, so the limiter holds the callers of the last refill
    /// period, not every token it ever saw.
    #[test]
    fn a_bucket_full_again_is_forgotten() {
        let limiter = RateLimiter::new(RateLimitConfig { per_minute: 60, burst: 10 });
        let t0 = Instant::now();
        for i in 0..10_000 {
            assert!(limiter.check(&format!("made-up-{i}"), t0).allowed);
        }
        limiter.check("regular", t0 + Duration::from_secs(10));
        assert_eq!(limiter.buckets.len(), 1, "only the caller still below a full bucket");
    }

    /// What the limiter would answer if it kept every bucket for ever.
    #[derive(Default)]
    struct Unforgetting(std::collections::HashMap<u8, (f64, Instant)>);

    impl Unforgetting {
        fn allowed(&mut self, config: &RateLimitConfig, token: u8, now: Instant) -> bool {
            let (rate, capacity) = (f64::from(config.per_minute) / 60.0, f64::from(config.burst));
            let (tokens, updated) = self.0.entry(token).or_insert((capacity, now));
            *tokens = (*tokens + now.saturating_duration_since(*updated).as_secs_f64() * rate).min(capacity);
            *updated = now;
            let allowed = *tokens >= 1.0;
            if allowed {
                *tokens -= 1.0;
            }
            allowed
        }
    }

    proptest::proptest! {
        /// Forgetting full buckets never changes an answer.
        #[test]
        fn forgetting_full_buckets_answers_as_keeping_them(
            per_minute in 1u32..600,
            burst in 1u32..20,
            requests in proptest::collection::vec((0u8..6, 0u64..5_000), 1..300),
        ) {
            let config = RateLimitConfig { per_minute, burst };
            let (limiter, mut model) = (RateLimiter::new(config.clone()), Unforgetting::default());
            let mut now = Instant::now();
            for (token, advance_ms) in requests {
                now += Duration::from_millis(advance_ms);
                let verdict = limiter.check(&format!("token-{token}"), now);
                proptest::prop_assert_eq!(verdict.allowed, model.allowed(&config, token, now));
            }
        }
    }
}
