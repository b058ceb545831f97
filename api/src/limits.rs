//! Rate limits per bearer token: a token bucket each (GitHub's and Strava's `429` with limit
//! headers). Every `/api/v1` response says where the caller stands:
//! `X-RateLimit-Limit` (requests per minute), `X-RateLimit-Remaining`, `X-RateLimit-Reset`
//! (seconds until the bucket is full again); a refused request also gets `Retry-After`.

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
    /// By a hash of the token: a JWT is about a kilobyte, its bucket need not hold it.
    buckets: DashMap<u64, Bucket>,
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
        RateLimiter { config, buckets: DashMap::new() }
    }

    /// Takes one request from `key`'s bucket at `now`.
    pub fn check(&self, token: &str, now: Instant) -> Verdict {
        let rate = f64::from(self.config.per_minute.max(1)) / 60.0;
        let capacity = f64::from(self.config.burst.max(1));
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
}
