//! Workout ownership where no single log writer sees every batch: gateways in front of a
//! partitioned raw topic each ask a registry they share (the deployment's database) and
//! remember what it answered.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use trackwire_codec::WorkoutId;

use crate::IngestError;
use crate::log::WorkoutOwner;

/// The deployment-wide record of who owns each workout.
pub trait OwnerRegistry: Send + Sync {
    /// Binds `workout_id` to `claimant` unless it has an owner already; returns the owner it
    /// has now (the claimant when it won). Atomic across every caller of every process.
    fn bind(&self, workout_id: WorkoutId, claimant: &WorkoutOwner) -> Result<WorkoutOwner, String>;
}

/// Owners remembered per process: a workout's owner never changes once bound, so an answer
/// stays true; when the table is full it starts over rather than evict one by one.
const REMEMBERED_OWNERS: usize = 100_000;

/// A registry and what it has answered this process.
pub(crate) struct AskRegistry {
    registry: Arc<dyn OwnerRegistry>,
    known: Mutex<HashMap<WorkoutId, WorkoutOwner>>,
}

impl AskRegistry {
    pub fn new(registry: Arc<dyn OwnerRegistry>) -> Self {
        AskRegistry { registry, known: Mutex::default() }
    }

    /// Ok when `claimant` owns `workout_id` (binding it if nobody does).
    pub async fn check(&self, workout_id: WorkoutId, claimant: &WorkoutOwner) -> Result<(), IngestError> {
        let known = self.known.lock().unwrap_or_else(|p| p.into_inner()).get(&workout_id).cloned();
        let owner =
            match known {
                Some(owner) => owner,
                None => {
                    let (registry, who) = (self.registry.clone(), claimant.clone());
                    let owner = tokio::task::spawn_blocking(move || registry.bind(workout_id, &who))
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|bound| bound)
                    .map_err(|e| IngestError::Storage(format!(
                        "the workout's owner could not be looked up ({e}); nothing was stored, send the batch again"
                    )))?;
                    let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
                    if known.len() >= REMEMBERED_OWNERS {
                        known.clear();
                    }
                    known.insert(workout_id, owner.clone());
                    owner
                }
            };
        if owner == *claimant { Ok(()) } else { Err(IngestError::WorkoutOwnerMismatch { workout_id }) }
    }
}
