//! Push subscriptions as the account store keeps them: each user's callback URLs with the secret
//! their deliveries are signed with, the deliveries still to make, and how far the read store's
//! change feed has been turned into deliveries. The delivery loop (`crate::push`) is their only
//! writer besides the subscription routes.

use trackwire_sinks::read_store::{NewChange, WorkoutChange};

use super::AccountsError;

/// One push subscription.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StoredSubscription {
    pub id: String,
    pub user_id: String,
    pub callback_url: String,
    /// The HMAC key of the signature header (shown to the subscriber once, at creation).
    pub secret: String,
    pub created_ms: i64,
    /// Deliveries the receiver accepted (2xx).
    pub delivered: u64,
    /// Deliveries given up after the last attempt.
    pub failed: u64,
    /// Why the latest failed attempt failed, and when (Unix ms).
    pub last_failure: Option<String>,
    pub last_failure_ms: Option<i64>,
}

/// A change still to deliver to one subscription.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingDelivery {
    pub subscription_id: String,
    /// The change's place in the feed (with the subscription, the delivery's identity).
    pub seq: u64,
    /// Attempts made so far.
    pub attempts: u32,
    pub next_attempt_ms: i64,
    pub change: NewChange,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempt {
    Delivered,
    /// Failed; try again at `next_attempt_ms`.
    Retry {
        next_attempt_ms: i64,
        error: String,
    },
    /// Failed for the last time: the delivery is dropped and counted as failed.
    GaveUp {
        error: String,
    },
}

/// The push half of the account store.
pub trait PushStore {
    fn push_subscriptions_of(&self, user_id: &str) -> Result<Vec<StoredSubscription>, AccountsError>;
    fn push_subscription(&self, id: &str) -> Result<Option<StoredSubscription>, AccountsError>;
    fn put_push_subscription(&self, subscription: &StoredSubscription) -> Result<(), AccountsError>;
    /// Deletes the subscription and its pending deliveries; false if there was none.
    fn delete_push_subscription(&self, id: &str) -> Result<bool, AccountsError>;
    /// Deliveries still to make to the subscription.
    fn pending_push_deliveries(&self, subscription_id: &str) -> Result<u64, AccountsError>;

    /// The change feed's position through which deliveries are made.
    fn push_enqueued_through(&self) -> Result<u64, AccountsError>;
    /// In one transaction, if the position is still `from` (no other API replica moved it): one
    /// delivery, due at `now_ms`, per subscription of each change's user; the position moves to
    /// `through`. False (and nothing written) when another replica got there first.
    fn enqueue_push(
        &self,
        from: u64,
        changes: &[WorkoutChange],
        through: u64,
        now_ms: i64,
    ) -> Result<bool, AccountsError>;
    /// Up to `limit` deliveries due at `now_ms`, oldest due first, each claimed until
    /// `claimed_until_ms` (no other replica takes it meanwhile; if this one dies, it is retried
    /// then).
    fn claim_push_deliveries(
        &self,
        now_ms: i64,
        claimed_until_ms: i64,
        limit: usize,
    ) -> Result<Vec<PendingDelivery>, AccountsError>;
    /// Records how an attempt ended: the delivery goes (delivered, given up) or is rescheduled,
    /// and the subscription's counts follow. A subscription deleted meanwhile is not an error.
    fn finish_push_delivery(
        &self,
        delivery: &PendingDelivery,
        attempt: &Attempt,
        now_ms: i64,
    ) -> Result<(), AccountsError>;
}
