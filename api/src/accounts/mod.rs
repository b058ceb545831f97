//! What the API itself owns: athlete profiles, gear and which workout used it, uploads and their
//! external ids, issued device tokens, erasures (kept so a restart's log replay cannot bring an
//! erased user back), the coordinate-retention watermark, and push subscriptions with their
//! pending deliveries ([`PushStore`]).
//!
//! Two backends behind [`Accounts`]: an embedded redb file beside the read store
//! ([`RedbAccounts`]), and the deployment's PostgreSQL database ([`PostgresAccounts`]), which every
//! API replica shares and from which the gateways learn the device tokens the API issues. The
//! accounts live where the read store does ([`open`]).

mod postgres;
mod push;
mod push_postgres;
mod push_redb;
mod redb;

use std::path::Path;
use std::sync::Arc;

use trackwire_codec::WorkoutId;
use trackwire_ingest::DeviceToken;

pub use self::postgres::PostgresAccounts;
pub use self::push::{Attempt, PendingDelivery, PushStore, StoredSubscription};
pub use self::redb::RedbAccounts;
use crate::views::{Gear, IssuedToken, Profile, Upload, WorkoutEdits};

#[derive(Debug, thiserror::Error)]
#[error("account store: {0}")]
pub struct AccountsError(pub(crate) String);

/// The account store. Synchronous: the API calls it from `spawn_blocking`.
pub trait Accounts: PushStore + Send + Sync {
    fn profile(&self, user_id: &str) -> Result<Option<Profile>, AccountsError>;
    fn profiles(&self) -> Result<Vec<(String, Profile)>, AccountsError>;
    fn set_profile(&self, user_id: &str, profile: &Profile) -> Result<(), AccountsError>;

    fn gear_of_user(&self, user_id: &str) -> Result<Vec<Gear>, AccountsError>;
    fn gear(&self, user_id: &str, gear_id: &str) -> Result<Option<Gear>, AccountsError>;
    fn put_gear(&self, user_id: &str, gear: &Gear) -> Result<(), AccountsError>;
    /// Deletes the gear and unassigns it from its workouts; false if it did not exist.
    fn delete_gear(&self, user_id: &str, gear_id: &str) -> Result<bool, AccountsError>;
    fn gear_of_workout(&self, workout: &WorkoutId) -> Result<Option<String>, AccountsError>;
    fn assign_gear(&self, workout: &WorkoutId, gear_id: Option<&str>) -> Result<(), AccountsError>;
    /// The workout's tags, in the order they were added.
    fn workout_tags(&self, workout: &WorkoutId) -> Result<Vec<String>, AccountsError>;
    /// Adds `tag` to the workout; false when it was there already.
    fn add_workout_tag(&self, workout: &WorkoutId, tag: &str) -> Result<bool, AccountsError>;
    /// Replaces the workout's tags (in this order).
    fn set_workout_tags(&self, workout: &WorkoutId, tags: &[String]) -> Result<(), AccountsError>;
    /// What the owner changed of the workout (`PATCH`).
    fn workout_edits(&self, workout: &WorkoutId) -> Result<Option<WorkoutEdits>, AccountsError>;
    fn put_workout_edits(&self, workout: &WorkoutId, edits: &WorkoutEdits) -> Result<(), AccountsError>;
    /// Deletes what the API holds of one workout its owner deleted: gear assignment, tags, edits.
    fn delete_workout(&self, workout: &WorkoutId) -> Result<(), AccountsError>;

    fn upload(&self, id: &str) -> Result<Option<Upload>, AccountsError>;
    fn upload_by_external_id(&self, user_id: &str, external_id: &str) -> Result<Option<Upload>, AccountsError>;
    fn put_upload(&self, upload: &Upload) -> Result<(), AccountsError>;
    /// Uploads left `processing` by a restart (their task died with the process).
    fn unfinished_uploads(&self) -> Result<Vec<Upload>, AccountsError>;

    fn device_tokens(&self) -> Result<Vec<IssuedToken>, AccountsError>;
    fn put_device_token(&self, token: &IssuedToken) -> Result<(), AccountsError>;
    fn delete_device_token(&self, id: &str) -> Result<Option<IssuedToken>, AccountsError>;

    fn erasures(&self) -> Result<Vec<(String, u64)>, AccountsError>;
    /// Records an erasure (before any sink acts on it, so a crash midway is redone at start).
    fn record_erasure(&self, user_id: &str, through_lsn: u64) -> Result<(), AccountsError>;
    /// Workouts their owners deleted, with the LSN through which each is erased.
    fn deletions(&self) -> Result<Vec<(WorkoutId, u64)>, AccountsError>;
    /// Records a deletion (before any sink acts on it, so a restart's replay keeps it out).
    fn record_deletion(&self, workout: &WorkoutId, through_lsn: u64) -> Result<(), AccountsError>;
    /// Deletes everything the API holds of the user except the erasure record itself (push
    /// subscriptions and their deliveries included).
    fn erase_user(&self, user_id: &str, workouts: &[WorkoutId]) -> Result<(), AccountsError>;

    fn positions_dropped_before(&self) -> Result<i64, AccountsError>;
    /// The deployment-wide workout owner registry, where the store is shared by every process
    /// (PostgreSQL); None for an embedded store, whose single process lets its log decide.
    fn owner_registry(self: Arc<Self>) -> Option<Arc<dyn trackwire_ingest::OwnerRegistry>> {
        None
    }
    fn set_positions_dropped_before(&self, before_ms: i64) -> Result<(), AccountsError>;
}

/// The accounts beside the read store: in the PostgreSQL database `store_url` names (`ca_file`
/// for TLS), or else in the redb file at `embedded_path`.
pub fn open(
    store_url: Option<&str>,
    ca_file: Option<&Path>,
    embedded_path: &Path,
) -> Result<Arc<dyn Accounts>, AccountsError> {
    match store_url {
        Some(url) => {
            if embedded_path.exists() {
                tracing::warn!(
                    file = %embedded_path.display(),
                    "the accounts are in PostgreSQL now; this embedded account file is not read (profiles, gear, uploads \
                     and device tokens in it are not carried over)"
                );
            }
            Ok(Arc::new(PostgresAccounts::connect(url, ca_file)?))
        }
        None => Ok(Arc::new(RedbAccounts::open(embedded_path)?)),
    }
}

impl IssuedToken {
    /// The binding the ingest check uses.
    pub fn binding(&self) -> DeviceToken {
        DeviceToken {
            token: self.token.clone(),
            device_id: self.device_id.clone(),
            user_id: Some(self.user_id.clone()),
        }
    }
}

/// How often a gateway reads the issued device tokens: a token the API issues is accepted, and
/// one it revokes (or an erasure removes) refused, within this.
pub const TOKEN_REFRESH: std::time::Duration = std::time::Duration::from_secs(2);

/// Keeps `tokens` (a gateway's) in step with the device tokens in `accounts` (which the API
/// replicas issue and revoke), every [`TOKEN_REFRESH`], until the task is dropped. Tokens from
/// the configuration stay as they are.
pub async fn follow_issued_tokens(accounts: Arc<dyn Accounts>, ingestor: Arc<trackwire_ingest::Ingestor>) {
    let mut followed: std::collections::HashSet<String> = std::collections::HashSet::new();
    let mut tick = tokio::time::interval(TOKEN_REFRESH);
    loop {
        tick.tick().await;
        let store = accounts.clone();
        let issued = match tokio::task::spawn_blocking(move || store.device_tokens()).await {
            Ok(Ok(issued)) => issued,
            Ok(Err(error)) => {
                tracing::warn!(%error, "issued device tokens not refreshed; the known ones stay, retried shortly");
                continue;
            }
            Err(_) => continue,
        };
        let now: std::collections::HashSet<String> = issued.iter().map(|t| t.token.clone()).collect();
        for revoked in followed.difference(&now) {
            ingestor.tokens().remove(revoked);
        }
        for token in issued.iter().filter(|t| !followed.contains(&t.token)) {
            ingestor.tokens().insert(token.binding());
        }
        followed = now;
    }
}
