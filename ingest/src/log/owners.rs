//! Who may write to each workout: the user and device of its first durable batch.
//!
//! The binding lives with the data. The embedded log's writer decides it in the same step that
//! decides whether a batch is new (so two devices racing for one id are ordered by the log), and
//! rebuilds it on open from the batches it retains. A workout's first batch stays in the log
//! until the workout has ended and been delivered; after that its stored summary names its user
//! and device, and the writer asks [`PastOwners`] about a workout it holds no batch of before
//! letting anyone bind it.

use std::collections::HashMap;

use trackwire_codec::{BatchView, DecodeLimits, WorkoutId, decode_batch};

/// The user and device a workout belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkoutOwner {
    pub user_id: Box<str>,
    pub device_id: Box<str>,
}

impl WorkoutOwner {
    /// The sender of `batch`.
    pub fn of(batch: &BatchView<'_>) -> Self {
        WorkoutOwner { user_id: batch.user_id().into(), device_id: batch.device_id().into() }
    }
}

/// Who owns workouts whose batches have all left the log (their stored summaries).
pub trait PastOwners: Send + Sync {
    /// The owner of `workout_id` when one is on record; an error when the record could not be
    /// read (the batch is then refused for a retry, never bound to whoever sent it).
    fn owner_of(&self, workout_id: &WorkoutId) -> Result<Option<WorkoutOwner>, String>;
}

/// The owner of every workout the log has a batch of. Owned by the log writer thread alone.
#[derive(Debug, Default)]
pub struct OwnerIndex {
    owners: HashMap<WorkoutId, WorkoutOwner>,
}

impl OwnerIndex {
    /// True when `claimant` may write to `workout_id`: it owns it, or nobody does yet, and then
    /// it does from now on.
    pub fn claim(&mut self, workout_id: WorkoutId, claimant: &WorkoutOwner) -> bool {
        match self.owners.get(&workout_id) {
            Some(owner) => owner == claimant,
            None => {
                self.owners.insert(workout_id, claimant.clone());
                true
            }
        }
    }

    /// True when the index has an owner for `workout_id`.
    pub fn knows(&self, workout_id: &WorkoutId) -> bool {
        self.owners.contains_key(workout_id)
    }

    /// The owner of `workout_id`, when the index has one.
    pub fn owner(&self, workout_id: &WorkoutId) -> Option<&WorkoutOwner> {
        self.owners.get(workout_id)
    }

    /// Binds `workout_id` to the owner a record outside the log names.
    pub fn remember(&mut self, workout_id: WorkoutId, owner: WorkoutOwner) {
        self.owners.entry(workout_id).or_insert(owner);
    }

    /// Binds the workout of a stored batch to its sender unless it already has an owner (replay:
    /// the first stored batch decides). Payloads that are not batches bind nothing.
    pub fn learn(&mut self, payload: &[u8]) {
        let everything = DecodeLimits { max_samples: usize::MAX, max_events: usize::MAX };
        if let Ok(batch) = decode_batch(payload, &everything) {
            self.owners.entry(batch.workout_id()).or_insert_with(|| WorkoutOwner::of(&batch));
        }
    }

    /// The workouts `user_id` owns.
    pub fn workouts_of(&self, user_id: &str) -> Vec<WorkoutId> {
        self.owners.iter().filter(|(_, owner)| &*owner.user_id == user_id).map(|(id, _)| *id).collect()
    }

    /// Drops the owner of `workout_id` (its records have left the log; its summary names it).
    pub fn forget(&mut self, workout_id: &WorkoutId) {
        self.owners.remove(workout_id);
    }

    pub fn workouts(&self) -> usize {
        self.owners.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(user: &str, device: &str) -> WorkoutOwner {
        WorkoutOwner { user_id: user.into(), device_id: device.into() }
    }

    #[test]
    fn the_first_claim_binds_and_only_the_same_user_and_device_may_claim_again() {
        let mut index = OwnerIndex::default();
        let workout = WorkoutId([1; 16]);
        assert!(index.claim(workout, &owner("alice", "watch")));
        assert!(index.claim(workout, &owner("alice", "watch")));
        assert!(!index.claim(workout, &owner("bob", "watch")));
        assert!(!index.claim(workout, &owner("alice", "phone")));
        assert!(index.claim(WorkoutId([2; 16]), &owner("bob", "watch")));
        assert_eq!(index.workouts(), 2);
    }

    #[test]
    fn replay_learns_the_first_sender_and_ignores_what_is_not_a_batch() {
        let mut index = OwnerIndex::default();
        index.learn(b"not a batch");
        assert_eq!(index.workouts(), 0);
        let batch = |user: &str| {
            trackwire_codec::encode_batch(&trackwire_codec::BatchData {
                device_id: "watch".into(),
                user_id: user.into(),
                workout_id: WorkoutId([3; 16]),
                ..Default::default()
            })
        };
        index.learn(&batch("alice"));
        index.learn(&batch("bob"));
        assert!(index.claim(WorkoutId([3; 16]), &owner("alice", "watch")));
        assert!(!index.claim(WorkoutId([3; 16]), &owner("bob", "watch")));
    }
}
