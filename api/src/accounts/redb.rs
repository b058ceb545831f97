//! The embedded account store: one redb file beside the read store.

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;
use trackwire_codec::WorkoutId;

use super::{Accounts, AccountsError};
use crate::views::{Gear, IssuedToken, Profile, Upload, WorkoutEdits};

const PROFILES: TableDefinition<&str, &[u8]> = TableDefinition::new("profiles");
/// Key: user key ++ gear id.
const GEAR: TableDefinition<&[u8], &[u8]> = TableDefinition::new("gear");
/// Workout id → gear id.
const GEAR_OF_WORKOUT: TableDefinition<&[u8], &str> = TableDefinition::new("gear_of_workout");
/// Workout id → its tags (JSON list, in the order added).
const TAGS_OF_WORKOUT: TableDefinition<&[u8], &[u8]> = TableDefinition::new("tags_of_workout");
/// Workout id → its edits (JSON).
const EDITS_OF_WORKOUT: TableDefinition<&[u8], &[u8]> = TableDefinition::new("edits_of_workout");
const UPLOADS: TableDefinition<&str, &[u8]> = TableDefinition::new("uploads");
/// Key: user key ++ external id → upload id.
const UPLOAD_KEYS: TableDefinition<&[u8], &str> = TableDefinition::new("upload_external_ids");
/// Token id → issued token (secret included: the ingest check needs it after a restart).
const DEVICE_TOKENS: TableDefinition<&str, &[u8]> = TableDefinition::new("device_tokens");
const ERASURES: TableDefinition<&str, u64> = TableDefinition::new("erasures");
/// Deleted workout id → the LSN through which it is erased.
const DELETIONS: TableDefinition<&[u8], u64> = TableDefinition::new("deletions");
pub(super) const META: TableDefinition<&str, i64> = TableDefinition::new("meta");
const POSITIONS_DROPPED_BEFORE: &str = "positions_dropped_before_ms";

pub(super) fn err(e: impl std::fmt::Display) -> AccountsError {
    AccountsError(e.to_string())
}

fn user_key(user_id: &str, rest: &str) -> Vec<u8> {
    let mut key = (user_id.len() as u32).to_be_bytes().to_vec();
    key.extend_from_slice(user_id.as_bytes());
    key.extend_from_slice(rest.as_bytes());
    key
}

pub(super) fn from_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AccountsError> {
    serde_json::from_slice(bytes).map_err(err)
}

pub(super) fn to_json(value: &impl Serialize) -> Vec<u8> {
    serde_json::to_vec(value).expect("account records always serialize")
}

pub struct RedbAccounts {
    pub(super) db: Database,
}

impl RedbAccounts {
    pub fn open(path: &Path) -> Result<RedbAccounts, AccountsError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let db = Database::create(path).map_err(|e| AccountsError(format!("opening {}: {e}", path.display())))?;
        let txn = db.begin_write().map_err(err)?;
        txn.open_table(PROFILES).map_err(err)?;
        txn.open_table(GEAR).map_err(err)?;
        txn.open_table(GEAR_OF_WORKOUT).map_err(err)?;
        txn.open_table(TAGS_OF_WORKOUT).map_err(err)?;
        txn.open_table(EDITS_OF_WORKOUT).map_err(err)?;
        txn.open_table(UPLOADS).map_err(err)?;
        txn.open_table(UPLOAD_KEYS).map_err(err)?;
        txn.open_table(DEVICE_TOKENS).map_err(err)?;
        txn.open_table(ERASURES).map_err(err)?;
        txn.open_table(DELETIONS).map_err(err)?;
        txn.open_table(META).map_err(err)?;
        txn.open_table(super::push_redb::PUSH_SUBSCRIPTIONS).map_err(err)?;
        txn.open_table(super::push_redb::PUSH_DELIVERIES).map_err(err)?;
        txn.commit().map_err(err)?;
        Ok(RedbAccounts { db })
    }
}

impl Accounts for RedbAccounts {
    fn profile(&self, user_id: &str) -> Result<Option<Profile>, AccountsError> {
        let txn = self.db.begin_read().map_err(err)?;
        let table = txn.open_table(PROFILES).map_err(err)?;
        table.get(user_id).map_err(err)?.map(|v| from_json(v.value())).transpose()
    }

    fn profiles(&self) -> Result<Vec<(String, Profile)>, AccountsError> {
        let txn = self.db.begin_read().map_err(err)?;
        let table = txn.open_table(PROFILES).map_err(err)?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(err)? {
            let (k, v) = entry.map_err(err)?;
            out.push((k.value().to_owned(), from_json(v.value())?));
        }
        Ok(out)
    }

    fn set_profile(&self, user_id: &str, profile: &Profile) -> Result<(), AccountsError> {
        let txn = self.db.begin_write().map_err(err)?;
        txn.open_table(PROFILES).map_err(err)?.insert(user_id, &to_json(profile)[..]).map_err(err)?;
        txn.commit().map_err(err)
    }

    fn gear_of_user(&self, user_id: &str) -> Result<Vec<Gear>, AccountsError> {
        let txn = self.db.begin_read().map_err(err)?;
        let table = txn.open_table(GEAR).map_err(err)?;
        let prefix = user_key(user_id, "");
        let mut out = Vec::new();
        for entry in table.range::<&[u8]>(&prefix[..]..).map_err(err)? {
            let (k, v) = entry.map_err(err)?;
            if !k.value().starts_with(&prefix) {
                break;
            }
            out.push(from_json(v.value())?);
        }
        Ok(out)
    }

    fn gear(&self, user_id: &str, gear_id: &str) -> Result<Option<Gear>, AccountsError> {
        let txn = self.db.begin_read().map_err(err)?;
        let table = txn.open_table(GEAR).map_err(err)?;
        table.get(&user_key(user_id, gear_id)[..]).map_err(err)?.map(|v| from_json(v.value())).transpose()
    }

    fn put_gear(&self, user_id: &str, gear: &Gear) -> Result<(), AccountsError> {
        let txn = self.db.begin_write().map_err(err)?;
        txn.open_table(GEAR).map_err(err)?.insert(&user_key(user_id, &gear.id)[..], &to_json(gear)[..]).map_err(err)?;
        txn.commit().map_err(err)
    }

    fn delete_gear(&self, user_id: &str, gear_id: &str) -> Result<bool, AccountsError> {
        let txn = self.db.begin_write().map_err(err)?;
        let existed =
            txn.open_table(GEAR).map_err(err)?.remove(&user_key(user_id, gear_id)[..]).map_err(err)?.is_some();
        txn.open_table(GEAR_OF_WORKOUT).map_err(err)?.retain(|_, g| g != gear_id).map_err(err)?;
        txn.commit().map_err(err)?;
        Ok(existed)
    }

    fn gear_of_workout(&self, workout: &WorkoutId) -> Result<Option<String>, AccountsError> {
        let txn = self.db.begin_read().map_err(err)?;
        let table = txn.open_table(GEAR_OF_WORKOUT).map_err(err)?;
        Ok(table.get(&workout.0[..]).map_err(err)?.map(|v| v.value().to_owned()))
    }

    fn assign_gear(&self, workout: &WorkoutId, gear_id: Option<&str>) -> Result<(), AccountsError> {
        let txn = self.db.begin_write().map_err(err)?;
        {
            let mut table = txn.open_table(GEAR_OF_WORKOUT).map_err(err)?;
            match gear_id {
                Some(gear) => table.insert(&workout.0[..], gear).map_err(err)?,
                None => table.remove(&workout.0[..]).map_err(err)?,
            };
        }
        txn.commit().map_err(err)
    }

    fn workout_tags(&self, workout: &WorkoutId) -> Result<Vec<String>, AccountsError> {
        let txn = self.db.begin_read().map_err(err)?;
        let table = txn.open_table(TAGS_OF_WORKOUT).map_err(err)?;
        table.get(&workout.0[..]).map_err(err)?.map_or(Ok(Vec::new()), |v| from_json(v.value()))
    }

    fn add_workout_tag(&self, workout: &WorkoutId, tag: &str) -> Result<bool, AccountsError> {
        let txn = self.db.begin_write().map_err(err)?;
        let added = {
            let mut table = txn.open_table(TAGS_OF_WORKOUT).map_err(err)?;
            let mut tags: Vec<String> =
                table.get(&workout.0[..]).map_err(err)?.map_or(Ok(Vec::new()), |v| from_json(v.value()))?;
            let added = !tags.iter().any(|t| t == tag);
            if added {
                tags.push(tag.to_owned());
                table.insert(&workout.0[..], &to_json(&tags)[..]).map_err(err)?;
            }
            added
        };
        txn.commit().map_err(err)?;
        Ok(added)
    }

    fn set_workout_tags(&self, workout: &WorkoutId, tags: &[String]) -> Result<(), AccountsError> {
        let txn = self.db.begin_write().map_err(err)?;
        {
            let mut table = txn.open_table(TAGS_OF_WORKOUT).map_err(err)?;
            if tags.is_empty() {
                table.remove(&workout.0[..]).map_err(err)?;
            } else {
                table.insert(&workout.0[..], &to_json(&tags)[..]).map_err(err)?;
            }
        }
        txn.commit().map_err(err)
    }

    fn workout_edits(&self, workout: &WorkoutId) -> Result<Option<WorkoutEdits>, AccountsError> {
        let txn = self.db.begin_read().map_err(err)?;
        let table = txn.open_table(EDITS_OF_WORKOUT).map_err(err)?;
        table.get(&workout.0[..]).map_err(err)?.map(|v| from_json(v.value())).transpose()
    }

    fn put_workout_edits(&self, workout: &WorkoutId, edits: &WorkoutEdits) -> Result<(), AccountsError> {
        let txn = self.db.begin_write().map_err(err)?;
        txn.open_table(EDITS_OF_WORKOUT).map_err(err)?.insert(&workout.0[..], &to_json(edits)[..]).map_err(err)?;
        txn.commit().map_err(err)
    }

    fn delete_workout(&self, workout: &WorkoutId) -> Result<(), AccountsError> {
        let txn = self.db.begin_write().map_err(err)?;
        txn.open_table(GEAR_OF_WORKOUT).map_err(err)?.remove(&workout.0[..]).map_err(err)?;
        txn.open_table(TAGS_OF_WORKOUT).map_err(err)?.remove(&workout.0[..]).map_err(err)?;
        txn.open_table(EDITS_OF_WORKOUT).map_err(err)?.remove(&workout.0[..]).map_err(err)?;
        txn.commit().map_err(err)
    }

    fn upload(&self, id: &str) -> Result<Option<Upload>, AccountsError> {
        let txn = self.db.begin_read().map_err(err)?;
        let table = txn.open_table(UPLOADS).map_err(err)?;
        table.get(id).map_err(err)?.map(|v| from_json(v.value())).transpose()
    }

    fn upload_by_external_id(&self, user_id: &str, external_id: &str) -> Result<Option<Upload>, AccountsError> {
        let id = {
            let txn = self.db.begin_read().map_err(err)?;
            let table = txn.open_table(UPLOAD_KEYS).map_err(err)?;
            table.get(&user_key(user_id, external_id)[..]).map_err(err)?.map(|v| v.value().to_owned())
        };
        match id {
            Some(id) => self.upload(&id),
            None => Ok(None),
        }
    }

    fn put_upload(&self, upload: &Upload) -> Result<(), AccountsError> {
        let txn = self.db.begin_write().map_err(err)?;
        txn.open_table(UPLOADS).map_err(err)?.insert(upload.id.as_str(), &to_json(upload)[..]).map_err(err)?;
        if let Some(external) = &upload.external_id {
            txn.open_table(UPLOAD_KEYS)
                .map_err(err)?
                .insert(&user_key(&upload.user_id, external)[..], upload.id.as_str())
                .map_err(err)?;
        }
        txn.commit().map_err(err)
    }

    fn unfinished_uploads(&self) -> Result<Vec<Upload>, AccountsError> {
        let txn = self.db.begin_read().map_err(err)?;
        let table = txn.open_table(UPLOADS).map_err(err)?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(err)? {
            let upload: Upload = from_json(entry.map_err(err)?.1.value())?;
            if upload.status == crate::views::UploadStatus::Processing {
                out.push(upload);
            }
        }
        Ok(out)
    }

    fn device_tokens(&self) -> Result<Vec<IssuedToken>, AccountsError> {
        let txn = self.db.begin_read().map_err(err)?;
        let table = txn.open_table(DEVICE_TOKENS).map_err(err)?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(err)? {
            out.push(from_json(entry.map_err(err)?.1.value())?);
        }
        Ok(out)
    }

    fn put_device_token(&self, token: &IssuedToken) -> Result<(), AccountsError> {
        let txn = self.db.begin_write().map_err(err)?;
        txn.open_table(DEVICE_TOKENS).map_err(err)?.insert(token.id.as_str(), &to_json(token)[..]).map_err(err)?;
        txn.commit().map_err(err)
    }

    fn delete_device_token(&self, id: &str) -> Result<Option<IssuedToken>, AccountsError> {
        let txn = self.db.begin_write().map_err(err)?;
        let removed =
            txn.open_table(DEVICE_TOKENS).map_err(err)?.remove(id).map_err(err)?.map(|v| from_json(v.value()));
        let removed = removed.transpose()?;
        txn.commit().map_err(err)?;
        Ok(removed)
    }

    fn erasures(&self) -> Result<Vec<(String, u64)>, AccountsError> {
        let txn = self.db.begin_read().map_err(err)?;
        let table = txn.open_table(ERASURES).map_err(err)?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(err)? {
            let (k, v) = entry.map_err(err)?;
            out.push((k.value().to_owned(), v.value()));
        }
        Ok(out)
    }

    fn record_erasure(&self, user_id: &str, through_lsn: u64) -> Result<(), AccountsError> {
        let txn = self.db.begin_write().map_err(err)?;
        {
            let mut table = txn.open_table(ERASURES).map_err(err)?;
            let previous = table.get(user_id).map_err(err)?.map_or(0, |v| v.value());
            table.insert(user_id, previous.max(through_lsn)).map_err(err)?;
        }
        txn.commit().map_err(err)
    }

    fn deletions(&self) -> Result<Vec<(WorkoutId, u64)>, AccountsError> {
        let txn = self.db.begin_read().map_err(err)?;
        let table = txn.open_table(DELETIONS).map_err(err)?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(err)? {
            let (k, v) = entry.map_err(err)?;
            let id = <[u8; 16]>::try_from(k.value())
                .map_err(|_| AccountsError("a deletion's key is not a workout id".into()))?;
            out.push((WorkoutId(id), v.value()));
        }
        Ok(out)
    }

    fn record_deletion(&self, workout: &WorkoutId, through_lsn: u64) -> Result<(), AccountsError> {
        let txn = self.db.begin_write().map_err(err)?;
        {
            let mut table = txn.open_table(DELETIONS).map_err(err)?;
            let previous = table.get(&workout.0[..]).map_err(err)?.map_or(0, |v| v.value());
            table.insert(&workout.0[..], previous.max(through_lsn)).map_err(err)?;
        }
        txn.commit().map_err(err)
    }

    fn erase_user(&self, user_id: &str, workouts: &[WorkoutId]) -> Result<(), AccountsError> {
        let txn = self.db.begin_write().map_err(err)?;
        {
            txn.open_table(PROFILES).map_err(err)?.remove(user_id).map_err(err)?;
            let prefix = user_key(user_id, "");
            txn.open_table(GEAR).map_err(err)?.retain(|k, _| !k.starts_with(&prefix)).map_err(err)?;
            txn.open_table(UPLOAD_KEYS).map_err(err)?.retain(|k, _| !k.starts_with(&prefix)).map_err(err)?;
            let mut assignments = txn.open_table(GEAR_OF_WORKOUT).map_err(err)?;
            let mut tags = txn.open_table(TAGS_OF_WORKOUT).map_err(err)?;
            let mut edits = txn.open_table(EDITS_OF_WORKOUT).map_err(err)?;
            for workout in workouts {
                assignments.remove(&workout.0[..]).map_err(err)?;
                tags.remove(&workout.0[..]).map_err(err)?;
                edits.remove(&workout.0[..]).map_err(err)?;
            }
            txn.open_table(UPLOADS)
                .map_err(err)?
                .retain(|_, v| serde_json::from_slice::<Upload>(v).map_or(true, |u| u.user_id != user_id))
                .map_err(err)?;
            txn.open_table(DEVICE_TOKENS)
                .map_err(err)?
                .retain(|_, v| serde_json::from_slice::<IssuedToken>(v).map_or(true, |t| t.user_id != user_id))
                .map_err(err)?;
            super::push_redb::erase_user(&txn, user_id)?;
        }
        txn.commit().map_err(err)
    }

    fn positions_dropped_before(&self) -> Result<i64, AccountsError> {
        let txn = self.db.begin_read().map_err(err)?;
        let table = txn.open_table(META).map_err(err)?;
        Ok(table.get(POSITIONS_DROPPED_BEFORE).map_err(err)?.map_or(0, |v| v.value()))
    }

    fn set_positions_dropped_before(&self, before_ms: i64) -> Result<(), AccountsError> {
        let txn = self.db.begin_write().map_err(err)?;
        {
            // Only forward, as in the shared store.
            let mut meta = txn.open_table(META).map_err(err)?;
            let current = meta.get(POSITIONS_DROPPED_BEFORE).map_err(err)?.map_or(0, |v| v.value());
            meta.insert(POSITIONS_DROPPED_BEFORE, current.max(before_ms)).map_err(err)?;
        }
        txn.commit().map_err(err)
    }
}
