//! [`PushStore`] in the deployment's PostgreSQL database (migration 0009), shared by every API
//! replica: the feed position moves under a row lock, and deliveries are claimed with
//! `FOR UPDATE SKIP LOCKED`, so two replicas never queue or send the same delivery at once.

use postgres::types::Json;
use trackwire_sinks::read_store::{NewChange, WorkoutChange};

use super::AccountsError;
use super::postgres::{PostgresAccounts, sql};
use super::push::{Attempt, PendingDelivery, PushStore, StoredSubscription};

/// Key in `account_meta`: the change feed's position through which deliveries are queued.
const ENQUEUED_THROUGH: &str = "push_enqueued_through";

fn seq_param(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

impl PushStore for PostgresAccounts {
    fn push_subscriptions_of(&self, user_id: &str) -> Result<Vec<StoredSubscription>, AccountsError> {
        let rows = self
            .client()?
            .query(
                "SELECT subscription FROM account_push_subscriptions WHERE user_id = $1
                 ORDER BY (subscription->>'created_ms')::bigint",
                &[&user_id],
            )
            .map_err(sql)?;
        Ok(rows.iter().map(|row| row.get::<_, Json<StoredSubscription>>(0).0).collect())
    }

    fn push_subscription(&self, id: &str) -> Result<Option<StoredSubscription>, AccountsError> {
        let row = self
            .client()?
            .query_opt("SELECT subscription FROM account_push_subscriptions WHERE id = $1", &[&id])
            .map_err(sql)?;
        Ok(row.map(|row| row.get::<_, Json<StoredSubscription>>(0).0))
    }

    fn put_push_subscription(&self, subscription: &StoredSubscription) -> Result<(), AccountsError> {
        self.client()?
            .execute(
                "INSERT INTO account_push_subscriptions (id, user_id, subscription) VALUES ($1, $2, $3)
                 ON CONFLICT (id) DO UPDATE SET subscription = EXCLUDED.subscription",
                &[&subscription.id, &subscription.user_id, &Json(subscription)],
            )
            .map_err(sql)?;
        Ok(())
    }

    fn delete_push_subscription(&self, id: &str) -> Result<bool, AccountsError> {
        let deleted =
            self.client()?.execute("DELETE FROM account_push_subscriptions WHERE id = $1", &[&id]).map_err(sql)?;
        Ok(deleted > 0)
    }

    fn pending_push_deliveries(&self, subscription_id: &str) -> Result<u64, AccountsError> {
        let row = self
            .client()?
            .query_one("SELECT count(*) FROM account_push_deliveries WHERE subscription_id = $1", &[&subscription_id])
            .map_err(sql)?;
        Ok(row.get::<_, i64>(0) as u64)
    }

    fn push_enqueued_through(&self) -> Result<u64, AccountsError> {
        let row = self
            .client()?
            .query_opt("SELECT value FROM account_meta WHERE key = $1", &[&ENQUEUED_THROUGH])
            .map_err(sql)?;
        Ok(row.map_or(0, |row| row.get::<_, i64>(0) as u64))
    }

    fn enqueue_push(
        &self,
        from: u64,
        changes: &[WorkoutChange],
        through: u64,
        now_ms: i64,
    ) -> Result<bool, AccountsError> {
        let mut client = self.client()?;
        let mut txn = client.transaction().map_err(sql)?;
        txn.execute(
            "INSERT INTO account_meta (key, value) VALUES ($1, 0) ON CONFLICT (key) DO NOTHING",
            &[&ENQUEUED_THROUGH],
        )
        .map_err(sql)?;
        let current: i64 = txn
            .query_one("SELECT value FROM account_meta WHERE key = $1 FOR UPDATE", &[&ENQUEUED_THROUGH])
            .map_err(sql)?
            .get(0);
        if current != seq_param(from) {
            return Ok(false);
        }
        for change in changes {
            txn.execute(
                "INSERT INTO account_push_deliveries
                     (subscription_id, seq, user_id, attempts, next_attempt_ms, change)
                 SELECT id, $2, user_id, 0, $3, $4 FROM account_push_subscriptions WHERE user_id = $1
                 ON CONFLICT (subscription_id, seq) DO NOTHING",
                &[&change.change.user_id, &seq_param(change.seq), &now_ms, &Json(&change.change)],
            )
            .map_err(sql)?;
        }
        txn.execute("UPDATE account_meta SET value = $2 WHERE key = $1", &[&ENQUEUED_THROUGH, &seq_param(through)])
            .map_err(sql)?;
        txn.commit().map_err(sql)?;
        Ok(true)
    }

    fn claim_push_deliveries(
        &self,
        now_ms: i64,
        claimed_until_ms: i64,
        limit: usize,
    ) -> Result<Vec<PendingDelivery>, AccountsError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .client()?
            .query(
                "UPDATE account_push_deliveries d SET next_attempt_ms = $2
                 FROM (SELECT subscription_id, seq, next_attempt_ms FROM account_push_deliveries
                       WHERE next_attempt_ms <= $1 ORDER BY next_attempt_ms, seq LIMIT $3
                       FOR UPDATE SKIP LOCKED) due
                 WHERE d.subscription_id = due.subscription_id AND d.seq = due.seq
                 RETURNING d.subscription_id, d.seq, d.attempts, due.next_attempt_ms, d.change",
                &[&now_ms, &claimed_until_ms, &limit],
            )
            .map_err(sql)?;
        let mut due: Vec<PendingDelivery> = rows
            .iter()
            .map(|row| PendingDelivery {
                subscription_id: row.get(0),
                seq: row.get::<_, i64>(1) as u64,
                attempts: row.get::<_, i32>(2) as u32,
                next_attempt_ms: row.get(3),
                change: row.get::<_, Json<NewChange>>(4).0,
            })
            .collect();
        due.sort_by_key(|d| (d.next_attempt_ms, d.seq));
        Ok(due)
    }

    fn finish_push_delivery(
        &self,
        delivery: &PendingDelivery,
        attempt: &Attempt,
        now_ms: i64,
    ) -> Result<(), AccountsError> {
        let mut client = self.client()?;
        let mut txn = client.transaction().map_err(sql)?;
        let id = &delivery.subscription_id;
        let seq = seq_param(delivery.seq);
        let Some(row) = txn
            .query_opt("SELECT subscription FROM account_push_subscriptions WHERE id = $1 FOR UPDATE", &[id])
            .map_err(sql)?
        else {
            return Ok(()); // deleted meanwhile, with its deliveries
        };
        let mut subscription = row.get::<_, Json<StoredSubscription>>(0).0;
        match attempt {
            Attempt::Delivered | Attempt::GaveUp { .. } => {
                txn.execute("DELETE FROM account_push_deliveries WHERE subscription_id = $1 AND seq = $2", &[id, &seq])
                    .map_err(sql)?;
            }
            Attempt::Retry { next_attempt_ms, .. } => {
                txn.execute(
                    "UPDATE account_push_deliveries SET attempts = $3, next_attempt_ms = $4
                     WHERE subscription_id = $1 AND seq = $2",
                    &[id, &seq, &(delivery.attempts as i32 + 1), next_attempt_ms],
                )
                .map_err(sql)?;
            }
        }
        match attempt {
            Attempt::Delivered => subscription.delivered += 1,
            Attempt::Retry { error, .. } | Attempt::GaveUp { error } => {
                if matches!(attempt, Attempt::GaveUp { .. }) {
                    subscription.failed += 1;
                }
                subscription.last_failure = Some(error.clone());
                subscription.last_failure_ms = Some(now_ms);
            }
        }
        txn.execute(
            "UPDATE account_push_subscriptions SET subscription = $2 WHERE id = $1",
            &[id, &Json(&subscription)],
        )
        .map_err(sql)?;
        txn.commit().map_err(sql)
    }
}
