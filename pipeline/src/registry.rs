use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use dashmap::DashMap;
use trackwire_codec::WorkoutId;

use crate::{AthleteProfile, EndReason, NotApplied, WorkoutSummary};

/// The newest summary of every workout the pipeline is working on, updated by the shards and read
/// concurrently by the API. Ended workouts stay until the read store has committed them (see
/// [`LiveWorkouts::stored`]), so the API never loses sight of a workout in between, and no
/// longer: a server runs for months, and every workout of its users ends.
#[derive(Debug, Default)]
pub struct LiveWorkouts {
    map: DashMap<WorkoutId, WorkoutSummary>,
    /// The read store's checkpoint: every output through it is committed there.
    stored_through: AtomicU64,
    /// Workouts ended here since the process started, by reason (`EndReason` order), for
    /// `/metrics`.
    ended: [AtomicU64; EndReason::ALL.len()],
    /// Durable batches not applied since the process started, by reason (`NotApplied` order).
    not_applied: [AtomicU64; NotApplied::ALL.len()],
    /// Records up to here reached every sink before the process started: a replay goes over
    /// them again to rebuild the workouts' state, and they were counted by the process that
    /// first had them, so they are not counted again.
    replayed_through: AtomicU64,
    /// Workouts their owners deleted, which the shards stop applying.
    deletions: Arc<Deletions>,
}

impl LiveWorkouts {
    /// Has records up to `lsn` (every sink held them before the process started) counted as the
    /// replay they are (see [`LiveWorkouts::count_end`]).
    pub fn replaying_through(&self, lsn: u64) {
        self.replayed_through.store(lsn, Ordering::Release);
    }

    /// Counts a workout the pipeline ended with the record at `lsn`, for
    /// [`LiveWorkouts::ended`], unless the record is a replay.
    pub fn count_end(&self, lsn: u64, reason: EndReason) {
        if lsn > self.replayed_through.load(Ordering::Acquire) {
            self.ended[reason as usize].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Workouts ended for `reason` since the process started.
    pub fn ended(&self, reason: EndReason) -> u64 {
        self.ended[reason as usize].load(Ordering::Relaxed)
    }

    /// Counts the durable batch at `lsn` the pipeline did not apply, for
    /// [`LiveWorkouts::not_applied`], unless the record is a replay.
    pub fn count_not_applied(&self, lsn: u64, reason: NotApplied) {
        if lsn > self.replayed_through.load(Ordering::Acquire) {
            self.not_applied[reason as usize].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Durable batches not applied for `reason` since the process started.
    pub fn not_applied(&self, reason: NotApplied) -> u64 {
        self.not_applied[reason as usize].load(Ordering::Relaxed)
    }

    pub fn update(&self, summary: &WorkoutSummary) {
        self.map.insert(summary.workout_id, summary.clone());
    }

    pub fn get(&self, id: &WorkoutId) -> Option<WorkoutSummary> {
        self.map.get(id).map(|s| s.clone())
    }

    /// Workouts in progress (not ended).
    pub fn in_progress(&self) -> usize {
        self.map.iter().filter(|e| !e.status.is_ended()).count()
    }

    /// Forgets every workout of `user_id`, erased through log position `through`, and has the
    /// shards drop them (see [`Deletions`]).
    pub fn erase_user(&self, user_id: &str, through: u64) {
        self.deletions.erase_user_through(user_id, through);
        self.map.retain(|_, s| s.user_id != user_id);
    }

    /// Forgets one workout its owner deleted through log position `through`, and has the shards
    /// drop it (see [`Deletions`]).
    pub fn delete(&self, id: WorkoutId, through: u64) {
        self.deletions.delete_through(id, through);
        self.map.remove(&id);
    }

    /// The deletions the shards consult.
    pub fn deletions(&self) -> &Arc<Deletions> {
        &self.deletions
    }

    /// The ids of `user_id`'s workouts held here.
    pub fn of_user(&self, user_id: &str) -> Vec<WorkoutSummary> {
        self.map.iter().filter(|e| e.user_id == user_id).map(|e| e.clone()).collect()
    }

    /// The read store has committed every output through `lsn`, among them the newest summaries
    /// of `workouts`: those that ended there are forgotten here (a newer state, one the store
    /// does not have yet, stays).
    pub fn stored(&self, lsn: u64, workouts: impl IntoIterator<Item = WorkoutId>) {
        self.stored_through.fetch_max(lsn, Ordering::AcqRel);
        for id in workouts {
            self.map.remove_if(&id, |_, s| s.status.is_ended() && s.last_lsn <= lsn);
        }
    }

    /// `(workout, start, end)` of every workout of `user_id` held here: in progress, or ended
    /// and not yet in the read store. With the store's, what an erasure must reach.
    pub fn spans_of_user(&self, user_id: &str) -> Vec<(WorkoutId, i64, i64)> {
        self.map
            .iter()
            .filter(|e| e.user_id == user_id)
            .map(|e| (e.workout_id, e.start_time_ms, e.end_time_ms))
            .collect()
    }

    /// `(start, end)` of a workout held here (see [`LiveWorkouts::spans_of_user`]).
    pub fn span_of(&self, id: &WorkoutId) -> Option<(i64, i64)> {
        self.map.get(id).map(|s| (s.start_time_ms, s.end_time_ms))
    }

    /// Through which log position the read store has committed (see [`LiveWorkouts::stored`]).
    pub fn stored_through(&self) -> u64 {
        self.stored_through.load(Ordering::Acquire)
    }

    /// Workouts in progress whose latest batch the log stored at or before `cutoff_ms` (Unix
    /// ms). A workout whose log kept no storage times is never among them.
    pub fn idle_since(&self, cutoff_ms: i64) -> Vec<WorkoutSummary> {
        self.map
            .iter()
            .filter(|e| !e.status.is_ended() && e.stored_through_ms.is_some_and(|stored| stored <= cutoff_ms))
            .map(|e| e.clone())
            .collect()
    }

    /// The oldest LSN a workout held here was built from: one in progress, or ended here but not
    /// yet committed as ended by the read store (a restart without its first record would take
    /// its later ones for a new workout's, and store the fragment over it). The log must keep
    /// it. None when nothing is held.
    pub fn oldest_needed_lsn(&self) -> Option<u64> {
        self.map.iter().map(|e| e.first_lsn).min()
    }
}

/// Workouts their owners deleted, and users erased, each with the log position through which
/// it was. A shard drops what it holds of such a workout (every workout of such a user) and
/// applies none of its records up to that position, nor later ones while the recording goes on
/// (a watch that does not know); a record that starts the workout afresh after it (the same
/// file imported again, or a new workout) is applied. Rare, and kept for the process's life.
#[derive(Debug, Default)]
pub struct Deletions {
    workouts: DashMap<WorkoutId, u64>,
    users: DashMap<String, u64>,
    /// False until the first deletion: the shards' per-batch question costs nothing without any.
    any: AtomicBool,
}

impl Deletions {
    /// Deletes `id` through `lsn` (a deletion reaching further wins).
    pub fn delete_through(&self, id: WorkoutId, lsn: u64) {
        let mut through = self.workouts.entry(id).or_default();
        *through = (*through).max(lsn);
        self.any.store(true, Ordering::Release);
    }

    /// Erases every workout of `user_id` through `lsn` (an erasure reaching further wins).
    pub fn erase_user_through(&self, user_id: &str, lsn: u64) {
        let mut through = self.users.entry(user_id.to_owned()).or_default();
        *through = (*through).max(lsn);
        self.any.store(true, Ordering::Release);
    }

    /// How workout `id` of `user_id` was removed, if it was: the deletion or the erasure that
    /// reaches further.
    pub fn removal(&self, id: &WorkoutId, user_id: &str) -> Option<Removal> {
        if !self.any.load(Ordering::Acquire) {
            return None;
        }
        let workout = self.workouts.get(id).map(|through| *through);
        let user = self.users.get(user_id).map(|through| *through);
        match (workout, user) {
            (Some(deleted), user) if user.is_none_or(|erased| deleted >= erased) => Some(Removal::Deleted(deleted)),
            (_, Some(erased)) => Some(Removal::UserErased(erased)),
            _ => None,
        }
    }
}

/// How a workout was removed, with the log position through which it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// Its owner deleted it: none of its records up to the position is applied.
    Deleted(u64),
    /// Its user was erased: its records up to the position are still applied (their outputs are
    /// dropped on the way to the sinks), because the erasure finds the user's workouts, and the
    /// dates of their lake rows, among what the shards hold; nothing after it is.
    UserErased(u64),
}

impl Removal {
    pub fn through(self) -> u64 {
        match self {
            Removal::Deleted(through) | Removal::UserErased(through) => through,
        }
    }
}

/// Athlete profiles by user id, kept by the API (`PUT /api/v1/users/{id}/profile`) and read by the
/// shards when a workout starts: calories and heart-rate zones need weight, age, sex, HRmax and
/// HRrest, which are not on the wire.
#[derive(Debug, Default)]
pub struct Profiles {
    map: DashMap<String, AthleteProfile>,
}

impl Profiles {
    pub fn set(&self, user_id: &str, profile: AthleteProfile) {
        self.map.insert(user_id.to_owned(), profile);
    }

    pub fn get(&self, user_id: &str) -> Option<AthleteProfile> {
        self.map.get(user_id).map(|p| p.clone())
    }

    pub fn remove(&self, user_id: &str) {
        self.map.remove(user_id);
    }
}
