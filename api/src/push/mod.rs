//! Push subscriptions: third-party apps hear of a user's workouts being created, edited and
//! deleted at a callback URL of theirs, instead of polling.
//!
//! **In:** the read store's change feed (`create` written by the data path when a workout is
//! first stored as completed; `update` and `delete` appended by the API's `PATCH` and `DELETE`).
//! **Out:** one signed `POST` per change to each subscription of the change's owner, retried
//! with exponential backoff until the receiver answers 2xx or the attempts run out.
//!
//! - [`verify`]: the challenge a callback answers before a subscription is created.
//! - [`address`]: callbacks are on the internet, never inside the deployment's network.
//! - [`retry`]: when to try a failed delivery again (sans-IO).
//! - [`signature`]: the `Trackwire-Signature` header, HMAC-SHA256 over timestamp and body.
//! - [`event`]: the JSON body a receiver gets.
//! - [`deliver`]: the loop that queues deliveries from the feed and makes them.
//!
//! Deliveries are at least once (a process that dies after the receiver accepted, before
//! recording it, sends it again): receivers deduplicate on `(subscription_id, change_id)`. Their
//! order is not guaranteed either: `event_time` says when each change happened.

pub mod address;
pub mod deliver;
pub mod event;
pub mod retry;
pub mod signature;
pub mod verify;

use std::time::Duration;

pub use deliver::deliver_loop;

/// Push delivery settings.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct PushConfig {
    /// Attempts per delivery before it is given up (counted as failed on the subscription).
    pub max_attempts: u32,
    /// Wait before the second attempt, seconds; each further wait doubles, up to
    /// `retry_max_secs`.
    pub retry_initial_secs: f64,
    /// Longest wait between two attempts, seconds.
    pub retry_max_secs: f64,
    /// How long a callback has to answer (the challenge, or a delivery), seconds.
    pub timeout_secs: f64,
    /// How often the feed is read and due deliveries are made, milliseconds.
    pub poll_interval_ms: u64,
    /// Subscriptions one user may hold.
    pub max_subscriptions_per_user: usize,
    /// Let callbacks be on loopback, private, link-local or other non-public addresses: for a
    /// receiver inside the deployment (or a test). Off, a subscription cannot make the API call
    /// into its own network.
    pub allow_private_callbacks: bool,
}

impl Default for PushConfig {
    fn default() -> Self {
        // 8 attempts over ≈ 21 minutes (10 s, 20 s, … 640 s apart), then given up.
        PushConfig {
            max_attempts: 8,
            retry_initial_secs: 10.0,
            retry_max_secs: 3600.0,
            timeout_secs: 5.0,
            poll_interval_ms: 1000,
            max_subscriptions_per_user: 5,
            allow_private_callbacks: false,
        }
    }
}

impl PushConfig {
    /// Checks every field; the message names the one that is wrong.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_attempts == 0 {
            return Err("push.max_attempts must be at least 1".into());
        }
        for (name, value) in [
            ("push.retry_initial_secs", self.retry_initial_secs),
            ("push.retry_max_secs", self.retry_max_secs),
            ("push.timeout_secs", self.timeout_secs),
        ] {
            if !(value > 0.0 && value < 1e6) {
                return Err(format!("{name} must be a positive number of seconds (below 1,000,000)"));
            }
        }
        if self.poll_interval_ms == 0 {
            return Err("push.poll_interval_ms must be greater than 0".into());
        }
        Ok(())
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_secs_f64(self.timeout_secs)
    }

    pub fn retry_policy(&self) -> retry::RetryPolicy {
        retry::RetryPolicy {
            max_attempts: self.max_attempts,
            initial: Duration::from_secs_f64(self.retry_initial_secs),
            max: Duration::from_secs_f64(self.retry_max_secs),
        }
    }
}

/// The HTTP client for callbacks: no redirects (a callback answers itself), the configured
/// timeout, statuses as values (a 503 is an outcome, not an error), and only public addresses
/// unless `allow_private_callbacks` ([`address`]).
pub(crate) fn agent(config: &PushConfig) -> ureq::Agent {
    let settings = ureq::Agent::config_builder()
        .timeout_global(Some(config.timeout()))
        .http_status_as_error(false)
        .max_redirects(0)
        .user_agent("Trackwire-Push/1")
        .build();
    let resolver = address::PublicOnly { allow_private: config.allow_private_callbacks };
    ureq::Agent::with_parts(settings, ureq::unversioned::transport::DefaultConnector::default(), resolver)
}
