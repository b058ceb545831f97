//! Which sequence numbers of each workout are already in the log.

use std::collections::{BTreeSet, HashMap};

use trackwire_codec::WorkoutId;

use super::record::DedupKey;

/// The set of seqs seen for one workout, compact for the usual in-order stream: everything up to
/// `contiguous_end` (exclusive) plus a sparse set above it for out-of-order arrivals.
#[derive(Debug, Default, Clone)]
pub struct SeqSet {
    contiguous_end: u64,
    above: BTreeSet<u64>,
}

impl SeqSet {
    pub fn contains(&self, seq: u64) -> bool {
        seq < self.contiguous_end || self.above.contains(&seq)
    }

    /// Inserts `seq`; false when it was already present.
    pub fn insert(&mut self, seq: u64) -> bool {
        if self.contains(seq) {
            return false;
        }
        if seq == self.contiguous_end {
            self.contiguous_end += 1;
            while self.above.remove(&self.contiguous_end) {
                self.contiguous_end += 1;
            }
        } else {
            self.above.insert(seq);
        }
        true
    }

    pub fn remove(&mut self, seq: u64) {
        if !self.above.remove(&seq) && seq < self.contiguous_end {
            // Rare (only after a failed fsync): split the contiguous run.
            self.above.extend(seq + 1..self.contiguous_end);
            self.contiguous_end = seq;
        }
    }
}

/// Seqs seen per workout. Owned by the log writer thread alone, so it needs no lock.
#[derive(Debug, Default)]
pub struct DedupIndex {
    workouts: HashMap<WorkoutId, SeqSet>,
}

impl DedupIndex {
    /// True when `key` was recorded.
    pub fn contains(&self, key: DedupKey) -> bool {
        self.workouts.get(&key.workout_id).is_some_and(|set| set.contains(key.seq))
    }

    /// Records `key`; false when it was already present (a retry).
    pub fn insert(&mut self, key: DedupKey) -> bool {
        self.workouts.entry(key.workout_id).or_default().insert(key.seq)
    }

    pub fn remove(&mut self, key: DedupKey) {
        if let Some(set) = self.workouts.get_mut(&key.workout_id) {
            set.remove(key.seq);
        }
    }

    /// Drops every seq of `workout_id`.
    pub fn forget(&mut self, workout_id: &WorkoutId) {
        self.workouts.remove(workout_id);
    }

    pub fn workouts(&self) -> usize {
        self.workouts.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    proptest! {
        #[test]
        fn seq_set_behaves_like_a_hash_set(ops in proptest::collection::vec((any::<bool>(), 0u64..64), 0..300)) {
            let mut model = HashSet::new();
            let mut set = SeqSet::default();
            for (insert, seq) in ops {
                if insert {
                    prop_assert_eq!(set.insert(seq), model.insert(seq));
                } else {
                    set.remove(seq);
                    model.remove(&seq);
                }
                for probe in 0..64 {
                    prop_assert_eq!(set.contains(probe), model.contains(&probe));
                }
            }
        }
    }
}
