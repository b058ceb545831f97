//! What a partition's reader remembers of the workouts it has read: which batches it has handed
//! on (so a copy is dropped), whose each workout is (an erasure names a user), and where each
//! workout's newest record is, so that it can let go of workouts nothing will ask about again.
//! Without that it would hold every workout of its partition since it started, for months.

use std::collections::HashMap;

use trackwire_codec::WorkoutId;

use crate::log::{DedupIndex, DedupKey, OwnerIndex};

#[derive(Debug, Default)]
pub(super) struct ReadIndex {
    dedup: DedupIndex,
    owners: OwnerIndex,
    /// The LSN of each workout's newest record in the partition.
    newest_record: HashMap<WorkoutId, u64>,
}

impl ReadIndex {
    /// Notes the batch `key` at `lsn`; false when it is a copy of a batch already handed on.
    pub fn admit(&mut self, key: DedupKey, payload: &[u8], lsn: u64) -> bool {
        if !self.owners.knows(&key.workout_id) {
            self.owners.learn(payload);
        }
        self.newest_record.insert(key.workout_id, lsn);
        self.dedup.insert(key)
    }

    /// A deleted workout's seqs are no longer what a later record can be a copy of: the same
    /// file imported again is new data.
    pub fn forget_workout(&mut self, workout_id: &WorkoutId) {
        self.dedup.forget(workout_id);
    }

    /// Forgets the seqs of every workout of an erased user: those it knows the owner of, and
    /// those the erasure lists (whose first records it may never have read).
    pub fn forget_user(&mut self, user_id: &str, listed: impl IntoIterator<Item = WorkoutId>) {
        for id in self.owners.workouts_of(user_id).into_iter().chain(listed) {
            self.dedup.forget(&id);
        }
    }

    /// Lets go of every workout whose records all lie at or before `lsn`, where nothing needs the
    /// partition any more (every sink holds it, and each workout begun there is stored as
    /// ended): a reader started past there knows nothing of them either. A copy of one of their
    /// batches then reaches the pipeline, which holds the workout as ended and applies nothing.
    pub fn forget_through(&mut self, lsn: u64) {
        let (dedup, owners) = (&mut self.dedup, &mut self.owners);
        self.newest_record.retain(|workout_id, newest| {
            let kept = *newest > lsn;
            if !kept {
                dedup.forget(workout_id);
                owners.forget(workout_id);
            }
            kept
        });
    }

    /// Workouts it remembers.
    pub fn workouts(&self) -> usize {
        self.newest_record.len()
    }
}

#[cfg(test)]
mod tests {
    use trackwire_codec::{BatchData, encode_batch};

    use super::*;

    fn batch(user: &str, workout: u8) -> Vec<u8> {
        encode_batch(&BatchData {
            device_id: "watch".into(),
            user_id: user.into(),
            workout_id: WorkoutId([workout; 16]),
            ..BatchData::default()
        })
    }

    fn key(workout: u8, seq: u64) -> DedupKey {
        DedupKey { workout_id: WorkoutId([workout; 16]), seq }
    }

    #[test]
    fn copies_are_dropped_until_every_record_of_the_workout_is_released() {
        let mut index = ReadIndex::default();
        let (ada, bob) = (batch("ada", 1), batch("bob", 2));
        assert!(index.admit(key(1, 0), &ada, 1));
        assert!(index.admit(key(2, 0), &bob, 2));
        assert!(index.admit(key(1, 1), &ada, 3));
        assert!(!index.admit(key(1, 0), &ada, 4), "a copy");
        assert_eq!(index.workouts(), 2);

        index.forget_through(3);
        assert_eq!(index.workouts(), 1, "ada's workout has a record after 3 (the copy at 4)");
        index.forget_through(4);
        assert_eq!(index.workouts(), 0, "nothing of either is needed any more");
        assert!(index.admit(key(1, 0), &ada, 5), "no longer remembered: the pipeline judges it");
    }

    #[test]
    fn an_erasure_forgets_what_the_user_owns_and_what_it_lists() {
        let mut index = ReadIndex::default();
        assert!(index.admit(key(1, 0), &batch("ada", 1), 1));
        assert!(index.admit(key(2, 0), &batch("bob", 2), 2));
        // A workout of ada's whose first batch this reader never read: only the list names it.
        assert!(index.admit(key(3, 4), b"not a first batch this reader could read", 3));
        index.forget_user("ada", [WorkoutId([3; 16])]);
        assert!(index.admit(key(1, 0), &batch("ada", 1), 4), "ada's seqs are new data again");
        assert!(index.admit(key(3, 4), b"again", 5), "the listed workout's too");
        assert!(!index.admit(key(2, 0), &batch("bob", 2), 6), "bob's copy is still a copy");
    }
}
