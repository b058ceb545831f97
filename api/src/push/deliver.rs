//! The delivery loop, in every process that serves the API: each round it turns the change feed
//! into queued deliveries (one per subscription of the change's owner), then makes the ones due.
//! Everything it knows is in the stores, so a restart (or another API replica) carries on where
//! it stopped: queued deliveries, attempts made, when the next is due.

use std::time::Duration;

use chrono::Utc;

use super::event::PushEvent;
use super::signature;
use crate::AppState;
use crate::accounts::{Attempt, PendingDelivery, StoredSubscription};

/// Changes taken from the feed per round.
const FEED_BATCH: usize = 500;
/// Deliveries made per round (side by side).
const DELIVERY_BATCH: usize = 32;
/// How long past its timeout a claimed delivery stays with the process that claimed it; if the
/// process dies, any replica retries it then.
const CLAIM_MARGIN: Duration = Duration::from_secs(30);

/// Runs rounds every `push.poll_interval_ms` until the task is dropped.
pub async fn deliver_loop(state: AppState) {
    let mut tick = tokio::time::interval(Duration::from_millis(state.push.poll_interval_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match round(&state).await {
            Ok(0) => {}
            Ok(made) => tracing::debug!(made, "push deliveries attempted"),
            Err(err) => tracing::warn!("push deliveries: {err}; retried next round"),
        }
    }
}

/// One round: queue what the feed has, then attempt what is due. Returns the attempts made.
pub async fn round(state: &AppState) -> Result<usize, String> {
    enqueue(state).await?;
    let now_ms = Utc::now().timestamp_millis();
    let claim = state.push.timeout() + CLAIM_MARGIN;
    let accounts = state.accounts.clone();
    let due = tokio::task::spawn_blocking(move || {
        accounts.claim_push_deliveries(now_ms, now_ms + claim.as_millis() as i64, DELIVERY_BATCH)
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())?;
    let made = due.len();
    let mut attempts = tokio::task::JoinSet::new();
    for delivery in due {
        let state = state.clone();
        attempts.spawn(async move { attempt(&state, delivery).await });
    }
    while let Some(done) = attempts.join_next().await {
        if let Ok(Err(err)) = done {
            tracing::warn!("push delivery outcome not recorded ({err}); it is retried when its claim runs out");
        }
    }
    Ok(made)
}

/// Moves the feed into the delivery queue, and trims what was moved.
async fn enqueue(state: &AppState) -> Result<(), String> {
    let (store, accounts) = (state.store.clone(), state.accounts.clone());
    tokio::task::spawn_blocking(move || -> Result<(), String> {
        loop {
            let from = accounts.push_enqueued_through().map_err(|e| e.to_string())?;
            let changes = store.changes_after(from, FEED_BATCH).map_err(|e| e.to_string())?;
            let Some(last) = changes.last().map(|c| c.seq) else { return Ok(()) };
            let now_ms = Utc::now().timestamp_millis();
            if accounts.enqueue_push(from, &changes, last, now_ms).map_err(|e| e.to_string())? {
                store.trim_changes_through(last).map_err(|e| e.to_string())?;
            }
            if changes.len() < FEED_BATCH {
                return Ok(());
            }
        }
    })
    .await
    .map_err(|e| e.to_string())?
}

/// Sends one delivery and records how it went.
async fn attempt(state: &AppState, delivery: PendingDelivery) -> Result<(), String> {
    let accounts = state.accounts.clone();
    let id = delivery.subscription_id.clone();
    let subscription = tokio::task::spawn_blocking(move || accounts.push_subscription(&id))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let Some(subscription) = subscription else { return Ok(()) }; // deleted meanwhile
    let agent = super::agent(&state.push);
    let made = delivery.attempts + 1;
    let body = serde_json::to_vec(&PushEvent::new(&subscription.id, delivery.seq, &delivery.change))
        .map_err(|e| e.to_string())?;
    let sent = tokio::task::spawn_blocking(move || send(&agent, &subscription, &body, made))
        .await
        .map_err(|e| e.to_string())?;
    let now_ms = Utc::now().timestamp_millis();
    let outcome = match sent {
        Ok(()) => Attempt::Delivered,
        Err(error) => match state.push.retry_policy().next_attempt_ms(made, now_ms) {
            Some(next_attempt_ms) => {
                tracing::info!(subscription = %delivery.subscription_id, change = delivery.seq, attempt = made, %error, "push delivery failed; retried later");
                Attempt::Retry { next_attempt_ms, error }
            }
            None => {
                tracing::warn!(subscription = %delivery.subscription_id, change = delivery.seq, attempts = made, %error, "push delivery given up");
                Attempt::GaveUp { error: format!("given up after {made} attempts: {error}") }
            }
        },
    };
    let accounts = state.accounts.clone();
    tokio::task::spawn_blocking(move || accounts.finish_push_delivery(&delivery, &outcome, now_ms))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}

/// One `POST`; Ok when the receiver answered 2xx.
fn send(agent: &ureq::Agent, subscription: &StoredSubscription, body: &[u8], attempt: u32) -> Result<(), String> {
    let signed = signature::sign(&subscription.secret, Utc::now().timestamp(), body);
    let response = agent
        .post(&subscription.callback_url)
        .header("Content-Type", "application/json")
        .header(signature::HEADER, &signed)
        .header("Trackwire-Delivery-Attempt", attempt.to_string())
        .send(body)
        .map_err(|e| format!("the callback could not be reached: {e}"))?;
    let status = response.status();
    if status.is_success() { Ok(()) } else { Err(format!("the callback answered HTTP {}", status.as_u16())) }
}
