//! The shared account store: tables `account_*` of the deployment's PostgreSQL database
//! (migration 0005, applied with the read store's). Each write is one statement or one
//! transaction, so replicas writing side by side never see half of another's change.

use postgres::types::Json;
use trackwire_codec::WorkoutId;
use trackwire_ingest::OwnerRegistry;
use trackwire_ingest::log::WorkoutOwner;
use trackwire_sinks::read_store::PostgresStore;

use super::{Accounts, AccountsError};
use crate::views::{Gear, IssuedToken, Profile, Upload, UploadStatus, WorkoutEdits};

const POSITIONS_DROPPED_BEFORE: &str = "positions_dropped_before_ms";

pub struct PostgresAccounts {
    /// The read store's connection pool and migrations, reused for the account tables.
    db: PostgresStore,
}

fn err(e: impl std::fmt::Display) -> AccountsError {
    AccountsError(e.to_string())
}

pub(super) fn sql(e: postgres::Error) -> AccountsError {
    AccountsError(format!("PostgreSQL: {}", trackwire_sinks::read_store::describe_postgres_error(&e)))
}

impl PostgresAccounts {
    /// Connects (waiting up to 10 s) and applies the migrations the database lacks.
    pub fn connect(url: &str, ca_file: Option<&std::path::Path>) -> Result<PostgresAccounts, AccountsError> {
        Ok(PostgresAccounts { db: PostgresStore::connect(url, ca_file).map_err(err)? })
    }

    pub(super) fn client(&self) -> Result<impl std::ops::DerefMut<Target = postgres::Client>, AccountsError> {
        self.db.client().map_err(err)
    }
}

impl OwnerRegistry for PostgresAccounts {
    fn bind(&self, workout_id: WorkoutId, claimant: &WorkoutOwner) -> Result<WorkoutOwner, String> {
        let mut client = self.client().map_err(|e| e.0)?;
        // The INSERT sees rows committed by others (ON CONFLICT waits for them); the SELECT in the
        // same statement only sees its snapshot. A row committed in between shows in neither's
        // answer, and a second try (a new snapshot) finds it.
        for _ in 0..3 {
            let row = client
                .query_opt(
                    "WITH bound AS (
                         INSERT INTO workout_owners (workout_id, user_id, device_id) VALUES ($1, $2, $3)
                         ON CONFLICT (workout_id) DO NOTHING RETURNING user_id, device_id)
                     SELECT user_id, device_id FROM bound
                     UNION ALL SELECT user_id, device_id FROM workout_owners WHERE workout_id = $1
                     LIMIT 1",
                    &[&&workout_id.0[..], &&*claimant.user_id, &&*claimant.device_id],
                )
                .map_err(|e| sql(e).0)?;
            if let Some(row) = row {
                let (user_id, device_id): (String, String) = (row.get(0), row.get(1));
                return Ok(WorkoutOwner { user_id: user_id.into(), device_id: device_id.into() });
            }
        }
        Err(format!("workout {workout_id} has an owner that could not be read back; send the batch again"))
    }
}

impl Accounts for PostgresAccounts {
    fn profile(&self, user_id: &str) -> Result<Option<Profile>, AccountsError> {
        let row = self
            .client()?
            .query_opt("SELECT profile FROM account_profiles WHERE user_id = $1", &[&user_id])
            .map_err(sql)?;
        Ok(row.map(|row| row.get::<_, Json<Profile>>(0).0))
    }

    fn profiles(&self) -> Result<Vec<(String, Profile)>, AccountsError> {
        let rows = self.client()?.query("SELECT user_id, profile FROM account_profiles", &[]).map_err(sql)?;
        Ok(rows.iter().map(|row| (row.get(0), row.get::<_, Json<Profile>>(1).0)).collect())
    }

    fn set_profile(&self, user_id: &str, profile: &Profile) -> Result<(), AccountsError> {
        self.client()?
            .execute(
                "INSERT INTO account_profiles (user_id, profile) VALUES ($1, $2)
                 ON CONFLICT (user_id) DO UPDATE SET profile = EXCLUDED.profile",
                &[&user_id, &Json(profile)],
            )
            .map_err(sql)?;
        Ok(())
    }

    fn gear_of_user(&self, user_id: &str) -> Result<Vec<Gear>, AccountsError> {
        let rows = self
            .client()?
            .query("SELECT gear FROM account_gear WHERE user_id = $1 ORDER BY gear_id", &[&user_id])
            .map_err(sql)?;
        Ok(rows.iter().map(|row| row.get::<_, Json<Gear>>(0).0).collect())
    }

    fn gear(&self, user_id: &str, gear_id: &str) -> Result<Option<Gear>, AccountsError> {
        let row = self
            .client()?
            .query_opt("SELECT gear FROM account_gear WHERE user_id = $1 AND gear_id = $2", &[&user_id, &gear_id])
            .map_err(sql)?;
        Ok(row.map(|row| row.get::<_, Json<Gear>>(0).0))
    }

    fn put_gear(&self, user_id: &str, gear: &Gear) -> Result<(), AccountsError> {
        self.client()?
            .execute(
                "INSERT INTO account_gear (user_id, gear_id, gear) VALUES ($1, $2, $3)
                 ON CONFLICT (user_id, gear_id) DO UPDATE SET gear = EXCLUDED.gear",
                &[&user_id, &gear.id, &Json(gear)],
            )
            .map_err(sql)?;
        Ok(())
    }

    fn delete_gear(&self, user_id: &str, gear_id: &str) -> Result<bool, AccountsError> {
        let mut client = self.client()?;
        let mut txn = client.transaction().map_err(sql)?;
        let deleted = txn
            .execute("DELETE FROM account_gear WHERE user_id = $1 AND gear_id = $2", &[&user_id, &gear_id])
            .map_err(sql)?;
        txn.execute("DELETE FROM account_gear_of_workout WHERE gear_id = $1", &[&gear_id]).map_err(sql)?;
        txn.commit().map_err(sql)?;
        Ok(deleted > 0)
    }

    fn gear_of_workout(&self, workout: &WorkoutId) -> Result<Option<String>, AccountsError> {
        let row = self
            .client()?
            .query_opt("SELECT gear_id FROM account_gear_of_workout WHERE workout_id = $1", &[&&workout.0[..]])
            .map_err(sql)?;
        Ok(row.map(|row| row.get(0)))
    }

    fn assign_gear(&self, workout: &WorkoutId, gear_id: Option<&str>) -> Result<(), AccountsError> {
        let mut client = self.client()?;
        match gear_id {
            Some(gear) => client.execute(
                "INSERT INTO account_gear_of_workout (workout_id, gear_id) VALUES ($1, $2)
                 ON CONFLICT (workout_id) DO UPDATE SET gear_id = EXCLUDED.gear_id",
                &[&&workout.0[..], &gear],
            ),
            None => client.execute("DELETE FROM account_gear_of_workout WHERE workout_id = $1", &[&&workout.0[..]]),
        }
        .map_err(sql)?;
        Ok(())
    }

    fn upload(&self, id: &str) -> Result<Option<Upload>, AccountsError> {
        let row = self.client()?.query_opt("SELECT upload FROM account_uploads WHERE id = $1", &[&id]).map_err(sql)?;
        Ok(row.map(|row| row.get::<_, Json<Upload>>(0).0))
    }

    fn upload_by_external_id(&self, user_id: &str, external_id: &str) -> Result<Option<Upload>, AccountsError> {
        let row = self
            .client()?
            .query_opt(
                "SELECT upload FROM account_uploads WHERE user_id = $1 AND external_id = $2",
                &[&user_id, &external_id],
            )
            .map_err(sql)?;
        Ok(row.map(|row| row.get::<_, Json<Upload>>(0).0))
    }

    fn put_upload(&self, upload: &Upload) -> Result<(), AccountsError> {
        let processing = upload.status == UploadStatus::Processing;
        self.client()?
            .execute(
                "INSERT INTO account_uploads (id, user_id, external_id, processing, upload) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (id) DO UPDATE SET external_id = EXCLUDED.external_id,
                     processing = EXCLUDED.processing, upload = EXCLUDED.upload",
                &[&upload.id, &upload.user_id, &upload.external_id, &processing, &Json(upload)],
            )
            .map_err(sql)?;
        Ok(())
    }

    fn unfinished_uploads(&self) -> Result<Vec<Upload>, AccountsError> {
        let rows = self.client()?.query("SELECT upload FROM account_uploads WHERE processing", &[]).map_err(sql)?;
        Ok(rows.iter().map(|row| row.get::<_, Json<Upload>>(0).0).collect())
    }

    fn device_tokens(&self) -> Result<Vec<IssuedToken>, AccountsError> {
        let rows = self.client()?.query("SELECT token FROM account_device_tokens ORDER BY id", &[]).map_err(sql)?;
        Ok(rows.iter().map(|row| row.get::<_, Json<IssuedToken>>(0).0).collect())
    }

    fn put_device_token(&self, token: &IssuedToken) -> Result<(), AccountsError> {
        self.client()?
            .execute(
                "INSERT INTO account_device_tokens (id, user_id, token) VALUES ($1, $2, $3)
                 ON CONFLICT (id) DO UPDATE SET token = EXCLUDED.token",
                &[&token.id, &token.user_id, &Json(token)],
            )
            .map_err(sql)?;
        Ok(())
    }

    fn delete_device_token(&self, id: &str) -> Result<Option<IssuedToken>, AccountsError> {
        let row = self
            .client()?
            .query_opt("DELETE FROM account_device_tokens WHERE id = $1 RETURNING token", &[&id])
            .map_err(sql)?;
        Ok(row.map(|row| row.get::<_, Json<IssuedToken>>(0).0))
    }

    fn erasures(&self) -> Result<Vec<(String, u64)>, AccountsError> {
        let rows = self.client()?.query("SELECT user_id, through_lsn FROM account_erasures", &[]).map_err(sql)?;
        Ok(rows.iter().map(|row| (row.get(0), row.get::<_, i64>(1) as u64)).collect())
    }

    fn record_erasure(&self, user_id: &str, through_lsn: u64) -> Result<(), AccountsError> {
        let through = i64::try_from(through_lsn).map_err(err)?;
        self.client()?
            .execute(
                "INSERT INTO account_erasures (user_id, through_lsn) VALUES ($1, $2)
                 ON CONFLICT (user_id) DO UPDATE SET through_lsn = GREATEST(account_erasures.through_lsn, EXCLUDED.through_lsn)",
                &[&user_id, &through],
            )
            .map_err(sql)?;
        Ok(())
    }

    fn deletions(&self) -> Result<Vec<(WorkoutId, u64)>, AccountsError> {
        let rows =
            self.client()?.query("SELECT workout_id, through_lsn FROM account_workout_deletions", &[]).map_err(sql)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let id: Vec<u8> = row.get(0);
            let id = <[u8; 16]>::try_from(id).map_err(|_| err("a deletion's key is not a workout id"))?;
            out.push((WorkoutId(id), row.get::<_, i64>(1) as u64));
        }
        Ok(out)
    }

    fn record_deletion(&self, workout: &WorkoutId, through_lsn: u64) -> Result<(), AccountsError> {
        let through = i64::try_from(through_lsn).map_err(err)?;
        self.client()?
            .execute(
                "INSERT INTO account_workout_deletions (workout_id, through_lsn) VALUES ($1, $2)
                 ON CONFLICT (workout_id) DO UPDATE
                 SET through_lsn = GREATEST(account_workout_deletions.through_lsn, EXCLUDED.through_lsn)",
                &[&&workout.0[..], &through],
            )
            .map_err(sql)?;
        Ok(())
    }

    fn workout_tags(&self, workout: &WorkoutId) -> Result<Vec<String>, AccountsError> {
        let rows = self
            .client()?
            .query(
                "SELECT tag FROM account_workout_tags WHERE workout_id = $1 ORDER BY added_at, tag",
                &[&&workout.0[..]],
            )
            .map_err(sql)?;
        Ok(rows.iter().map(|row| row.get(0)).collect())
    }

    fn add_workout_tag(&self, workout: &WorkoutId, tag: &str) -> Result<bool, AccountsError> {
        let added = self
            .client()?
            .execute(
                "INSERT INTO account_workout_tags (workout_id, tag) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&&workout.0[..], &tag],
            )
            .map_err(sql)?;
        Ok(added == 1)
    }

    fn set_workout_tags(&self, workout: &WorkoutId, tags: &[String]) -> Result<(), AccountsError> {
        let mut client = self.client()?;
        let mut txn = client.transaction().map_err(sql)?;
        txn.execute("DELETE FROM account_workout_tags WHERE workout_id = $1", &[&&workout.0[..]]).map_err(sql)?;
        // Consecutive instants keep the order given.
        for (position, tag) in tags.iter().enumerate() {
            txn.execute(
                "INSERT INTO account_workout_tags (workout_id, tag, added_at)
                 VALUES ($1, $2, now() + make_interval(secs => $3::int * 0.001))",
                &[&&workout.0[..], tag, &(position as i32)],
            )
            .map_err(sql)?;
        }
        txn.commit().map_err(sql)
    }

    fn workout_edits(&self, workout: &WorkoutId) -> Result<Option<WorkoutEdits>, AccountsError> {
        let row = self
            .client()?
            .query_opt("SELECT edits FROM account_workout_edits WHERE workout_id = $1", &[&&workout.0[..]])
            .map_err(sql)?;
        Ok(row.map(|row| row.get::<_, Json<WorkoutEdits>>(0).0))
    }

    fn put_workout_edits(&self, workout: &WorkoutId, edits: &WorkoutEdits) -> Result<(), AccountsError> {
        self.client()?
            .execute(
                "INSERT INTO account_workout_edits (workout_id, edits) VALUES ($1, $2)
                 ON CONFLICT (workout_id) DO UPDATE SET edits = EXCLUDED.edits",
                &[&&workout.0[..], &Json(edits)],
            )
            .map_err(sql)?;
        Ok(())
    }

    fn delete_workout(&self, workout: &WorkoutId) -> Result<(), AccountsError> {
        let mut client = self.client()?;
        let mut txn = client.transaction().map_err(sql)?;
        for table in ["account_gear_of_workout", "account_workout_tags", "account_workout_edits"] {
            txn.execute(&format!("DELETE FROM {table} WHERE workout_id = $1"), &[&&workout.0[..]]).map_err(sql)?;
        }
        txn.commit().map_err(sql)
    }

    fn erase_user(&self, user_id: &str, workouts: &[WorkoutId]) -> Result<(), AccountsError> {
        let ids: Vec<&[u8]> = workouts.iter().map(|w| &w.0[..]).collect();
        let mut client = self.client()?;
        let mut txn = client.transaction().map_err(sql)?;
        for statement in [
            "DELETE FROM account_profiles WHERE user_id = $1",
            "DELETE FROM account_gear WHERE user_id = $1",
            "DELETE FROM account_uploads WHERE user_id = $1",
            "DELETE FROM account_device_tokens WHERE user_id = $1",
        ] {
            txn.execute(statement, &[&user_id]).map_err(sql)?;
        }
        txn.execute("DELETE FROM account_gear_of_workout WHERE workout_id = ANY($1)", &[&ids]).map_err(sql)?;
        txn.execute("DELETE FROM account_workout_tags WHERE workout_id = ANY($1)", &[&ids]).map_err(sql)?;
        txn.execute("DELETE FROM account_workout_edits WHERE workout_id = ANY($1)", &[&ids]).map_err(sql)?;
        // Their deliveries go with them (ON DELETE CASCADE).
        txn.execute("DELETE FROM account_push_subscriptions WHERE user_id = $1", &[&user_id]).map_err(sql)?;
        txn.execute("DELETE FROM workout_owners WHERE user_id = $1", &[&user_id]).map_err(sql)?;
        txn.commit().map_err(sql)
    }

    fn owner_registry(self: std::sync::Arc<Self>) -> Option<std::sync::Arc<dyn OwnerRegistry>> {
        Some(self)
    }

    fn positions_dropped_before(&self) -> Result<i64, AccountsError> {
        let row = self
            .client()?
            .query_opt("SELECT value FROM account_meta WHERE key = $1", &[&POSITIONS_DROPPED_BEFORE])
            .map_err(sql)?;
        Ok(row.map_or(0, |row| row.get(0)))
    }

    fn set_positions_dropped_before(&self, before_ms: i64) -> Result<(), AccountsError> {
        // Replicas may run retention side by side: the watermark only moves forward.
        self.client()?
            .execute(
                "INSERT INTO account_meta (key, value) VALUES ($1, $2)
                 ON CONFLICT (key) DO UPDATE SET value = GREATEST(account_meta.value, EXCLUDED.value)",
                &[&POSITIONS_DROPPED_BEFORE, &before_ms],
            )
            .map_err(sql)?;
        Ok(())
    }
}
