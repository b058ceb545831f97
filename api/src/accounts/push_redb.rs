//! [`PushStore`] in the embedded account file.

use redb::{ReadableDatabase, ReadableTable, TableDefinition};
use trackwire_sinks::read_store::{NewChange, WorkoutChange};

use super::AccountsError;
use super::push::{Attempt, PendingDelivery, PushStore, StoredSubscription};
use super::redb::{META, RedbAccounts, err, from_json, to_json};

/// Subscription id → [`StoredSubscription`] (JSON).
pub(super) const PUSH_SUBSCRIPTIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("push_subscriptions");
/// (subscription id, change seq) → [`Queued`] (JSON).
pub(super) const PUSH_DELIVERIES: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("push_deliveries");
/// Key in [`META`]: the change feed's position through which deliveries are queued.
const ENQUEUED_THROUGH: &str = "push_enqueued_through";

#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct Queued {
    user_id: String,
    attempts: u32,
    next_attempt_ms: i64,
    change: NewChange,
}

impl PushStore for RedbAccounts {
    fn push_subscriptions_of(&self, user_id: &str) -> Result<Vec<StoredSubscription>, AccountsError> {
        let txn = self.db.begin_read().map_err(err)?;
        let mut out = Vec::new();
        for entry in txn.open_table(PUSH_SUBSCRIPTIONS).map_err(err)?.iter().map_err(err)? {
            let subscription: StoredSubscription = from_json(entry.map_err(err)?.1.value())?;
            if subscription.user_id == user_id {
                out.push(subscription);
            }
        }
        out.sort_by_key(|s| s.created_ms);
        Ok(out)
    }

    fn push_subscription(&self, id: &str) -> Result<Option<StoredSubscription>, AccountsError> {
        let txn = self.db.begin_read().map_err(err)?;
        let table = txn.open_table(PUSH_SUBSCRIPTIONS).map_err(err)?;
        table.get(id).map_err(err)?.map(|v| from_json(v.value())).transpose()
    }

    fn put_push_subscription(&self, subscription: &StoredSubscription) -> Result<(), AccountsError> {
        let txn = self.db.begin_write().map_err(err)?;
        txn.open_table(PUSH_SUBSCRIPTIONS)
            .map_err(err)?
            .insert(subscription.id.as_str(), &to_json(subscription)[..])
            .map_err(err)?;
        txn.commit().map_err(err)
    }

    fn delete_push_subscription(&self, id: &str) -> Result<bool, AccountsError> {
        let txn = self.db.begin_write().map_err(err)?;
        let existed = txn.open_table(PUSH_SUBSCRIPTIONS).map_err(err)?.remove(id).map_err(err)?.is_some();
        txn.open_table(PUSH_DELIVERIES).map_err(err)?.retain_in((id, 0)..=(id, u64::MAX), |_, _| false).map_err(err)?;
        txn.commit().map_err(err)?;
        Ok(existed)
    }

    fn pending_push_deliveries(&self, subscription_id: &str) -> Result<u64, AccountsError> {
        let txn = self.db.begin_read().map_err(err)?;
        let table = txn.open_table(PUSH_DELIVERIES).map_err(err)?;
        Ok(table.range((subscription_id, 0)..=(subscription_id, u64::MAX)).map_err(err)?.count() as u64)
    }

    fn push_enqueued_through(&self) -> Result<u64, AccountsError> {
        let txn = self.db.begin_read().map_err(err)?;
        let table = txn.open_table(META).map_err(err)?;
        Ok(table.get(ENQUEUED_THROUGH).map_err(err)?.map_or(0, |v| v.value() as u64))
    }

    fn enqueue_push(
        &self,
        from: u64,
        changes: &[WorkoutChange],
        through: u64,
        now_ms: i64,
    ) -> Result<bool, AccountsError> {
        let txn = self.db.begin_write().map_err(err)?;
        {
            let mut meta = txn.open_table(META).map_err(err)?;
            if meta.get(ENQUEUED_THROUGH).map_err(err)?.map_or(0, |v| v.value() as u64) != from {
                return Ok(false);
            }
            meta.insert(ENQUEUED_THROUGH, through as i64).map_err(err)?;
            let mut subscriptions = Vec::new();
            for entry in txn.open_table(PUSH_SUBSCRIPTIONS).map_err(err)?.iter().map_err(err)? {
                subscriptions.push(from_json::<StoredSubscription>(entry.map_err(err)?.1.value())?);
            }
            let mut deliveries = txn.open_table(PUSH_DELIVERIES).map_err(err)?;
            for change in changes {
                for subscription in subscriptions.iter().filter(|s| s.user_id == change.change.user_id) {
                    let queued = Queued {
                        user_id: subscription.user_id.clone(),
                        attempts: 0,
                        next_attempt_ms: now_ms,
                        change: change.change.clone(),
                    };
                    deliveries.insert((subscription.id.as_str(), change.seq), &to_json(&queued)[..]).map_err(err)?;
                }
            }
        }
        txn.commit().map_err(err)?;
        Ok(true)
    }

    fn claim_push_deliveries(
        &self,
        now_ms: i64,
        claimed_until_ms: i64,
        limit: usize,
    ) -> Result<Vec<PendingDelivery>, AccountsError> {
        let txn = self.db.begin_write().map_err(err)?;
        let mut due = Vec::new();
        {
            let mut table = txn.open_table(PUSH_DELIVERIES).map_err(err)?;
            for entry in table.iter().map_err(err)? {
                let (key, value) = entry.map_err(err)?;
                let queued: Queued = from_json(value.value())?;
                if queued.next_attempt_ms <= now_ms {
                    let (subscription_id, seq) = key.value();
                    due.push((subscription_id.to_owned(), seq, queued));
                }
            }
            due.sort_by_key(|(_, seq, queued)| (queued.next_attempt_ms, *seq));
            due.truncate(limit);
            for (subscription_id, seq, queued) in &due {
                let claimed = Queued { next_attempt_ms: claimed_until_ms, ..queued.clone() };
                table.insert((subscription_id.as_str(), *seq), &to_json(&claimed)[..]).map_err(err)?;
            }
        }
        txn.commit().map_err(err)?;
        Ok(due
            .into_iter()
            .map(|(subscription_id, seq, queued)| PendingDelivery {
                subscription_id,
                seq,
                attempts: queued.attempts,
                next_attempt_ms: queued.next_attempt_ms,
                change: queued.change,
            })
            .collect())
    }

    fn finish_push_delivery(
        &self,
        delivery: &PendingDelivery,
        attempt: &Attempt,
        now_ms: i64,
    ) -> Result<(), AccountsError> {
        let txn = self.db.begin_write().map_err(err)?;
        {
            let mut subscriptions = txn.open_table(PUSH_SUBSCRIPTIONS).map_err(err)?;
            let id = delivery.subscription_id.as_str();
            let Some(mut subscription) =
                subscriptions.get(id).map_err(err)?.map(|v| from_json::<StoredSubscription>(v.value())).transpose()?
            else {
                return Ok(()); // deleted meanwhile, with its deliveries
            };
            let mut deliveries = txn.open_table(PUSH_DELIVERIES).map_err(err)?;
            let key = (id, delivery.seq);
            match attempt {
                Attempt::Delivered => {
                    deliveries.remove(key).map_err(err)?;
                    subscription.delivered += 1;
                }
                Attempt::Retry { next_attempt_ms, error } => {
                    let queued = Queued {
                        user_id: subscription.user_id.clone(),
                        attempts: delivery.attempts + 1,
                        next_attempt_ms: *next_attempt_ms,
                        change: delivery.change.clone(),
                    };
                    deliveries.insert(key, &to_json(&queued)[..]).map_err(err)?;
                    subscription.last_failure = Some(error.clone());
                    subscription.last_failure_ms = Some(now_ms);
                }
                Attempt::GaveUp { error } => {
                    deliveries.remove(key).map_err(err)?;
                    subscription.failed += 1;
                    subscription.last_failure = Some(error.clone());
                    subscription.last_failure_ms = Some(now_ms);
                }
            }
            subscriptions.insert(id, &to_json(&subscription)[..]).map_err(err)?;
        }
        txn.commit().map_err(err)
    }
}

/// Deletes the user's subscriptions and their deliveries in `txn` (erasure).
pub(super) fn erase_user(txn: &redb::WriteTransaction, user_id: &str) -> Result<(), AccountsError> {
    let mut subscriptions = txn.open_table(PUSH_SUBSCRIPTIONS).map_err(err)?;
    let mut ids = Vec::new();
    for entry in subscriptions.iter().map_err(err)? {
        let subscription: StoredSubscription = from_json(entry.map_err(err)?.1.value())?;
        if subscription.user_id == user_id {
            ids.push(subscription.id);
        }
    }
    let mut deliveries = txn.open_table(PUSH_DELIVERIES).map_err(err)?;
    for id in &ids {
        subscriptions.remove(id.as_str()).map_err(err)?;
        deliveries.retain_in((id.as_str(), 0)..=(id.as_str(), u64::MAX), |_, _| false).map_err(err)?;
    }
    Ok(())
}
