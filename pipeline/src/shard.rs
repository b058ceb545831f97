//! One shard's state: the workouts it owns. Sans-IO: records in, outputs out.

use std::collections::HashMap;
use std::sync::Arc;

use trackwire_codec::{BatchView, ControlKind, DecodeLimits, WorkoutId, decode_batch};

use crate::workout::DEFAULT_UPDATE_INTERVAL_MS;
use crate::{AthleteProfile, Deletions, NotApplied, Profiles, Removal, ShardOutput, Workout};

/// What a durable store remembers of ended workouts whose records the log may no longer hold
/// in full. The one question a shard asks outside itself, and only about a workout it meets
/// without having seen its start since it started: without it, a replay that begins after a
/// workout's first record, or a late batch after a restart, would start the workout afresh (and
/// a second end would overwrite the stored one with a fragment).
pub trait EndedWorkouts: Send + Sync + std::fmt::Debug {
    /// The positions of the first and the last record applied to `workout_id`, when the store
    /// holds it as ended.
    fn ended_span(&self, workout_id: &WorkoutId) -> Option<std::ops::RangeInclusive<u64>>;
}

#[derive(Debug)]
pub struct ShardCore {
    /// Workouts in progress. Boxed: a workout is over a kilobyte, and an unboxed map would reserve that
    /// for every empty slot of the table too (more than doubling the memory per live workout).
    workouts: HashMap<WorkoutId, Box<Workout>>,
    /// Workouts that ended here, with the position of their end: their full state is dropped,
    /// only the id stays, so a late batch is still recognised and ignored instead of starting a
    /// new workout. With a `history` to ask, only until the store holds the end
    /// ([`ShardCore::forget_ended_through`]): a server sees millions of workouts end.
    ended: HashMap<WorkoutId, u64>,
    limits: DecodeLimits,
    /// Athlete profiles by user id, for calories and heart-rate zones.
    profiles: HashMap<String, AthleteProfile>,
    /// The server's profile registry, consulted after `profiles`.
    shared: Option<Arc<Profiles>>,
    /// Least device time between two `WorkoutUpdated` events of a workout.
    update_interval_ms: i64,
    /// Ended workouts from before this core started.
    history: Option<Arc<dyn EndedWorkouts>>,
    /// Workouts their owners deleted (shared with whoever deletes).
    deletions: Option<Arc<Deletions>>,
    /// What this core has done about each deletion it met.
    deleted: HashMap<WorkoutId, DeletedHere>,
}

/// A deletion as this core carries it out.
#[derive(Debug, Clone, Copy)]
struct DeletedHere {
    /// The removal's position: what the core held of the workout from before it was dropped.
    through: u64,
    /// A record after the deletion started the id afresh; until one does, the id's records are
    /// the deleted recording going on.
    restarted: bool,
}

impl Default for ShardCore {
    fn default() -> Self {
        ShardCore::new(DecodeLimits::default())
    }
}

impl ShardCore {
    pub fn new(limits: DecodeLimits) -> Self {
        ShardCore {
            workouts: HashMap::new(),
            ended: HashMap::new(),
            limits,
            profiles: HashMap::new(),
            shared: None,
            update_interval_ms: DEFAULT_UPDATE_INTERVAL_MS,
            history: None,
            deletions: None,
            deleted: HashMap::new(),
        }
    }

    /// A core that stops applying the workouts `deletions` names (see [`Deletions`]).
    pub fn with_deletions(mut self, deletions: Option<Arc<Deletions>>) -> Self {
        self.deletions = deletions;
        self
    }

    /// A core that asks `history` about workouts it meets without their start (see
    /// [`EndedWorkouts`]).
    pub fn with_history(mut self, history: Option<Arc<dyn EndedWorkouts>>) -> Self {
        self.history = history;
        self
    }

    /// Emits `WorkoutUpdated` at most once per `ms` of device time per workout (0: after every
    /// batch); pauses, resumes and the end always emit one.
    pub fn with_update_interval_ms(mut self, ms: i64) -> Self {
        self.update_interval_ms = ms.max(0);
        self
    }

    /// A core that also reads profiles from the server's registry.
    pub fn with_profiles(limits: DecodeLimits, profiles: Arc<Profiles>) -> Self {
        ShardCore { shared: Some(profiles), ..ShardCore::new(limits) }
    }

    /// Tells the core about an athlete; workouts that start afterwards use it.
    pub fn set_profile(&mut self, user_id: &str, profile: AthleteProfile) {
        self.profiles.insert(user_id.to_owned(), profile);
    }

    /// The store behind `history` holds every output through `lsn`: the ends up to there are
    /// its to remember from now on. Without a history the core keeps them all.
    pub fn forget_ended_through(&mut self, lsn: u64) {
        if self.history.is_some() {
            self.ended.retain(|_, end| *end > lsn);
        }
    }

    /// Applies one durable record whose storage time is unknown (see [`ShardCore::process_stored`]).
    pub fn process(&mut self, lsn: u64, payload: &[u8]) -> ShardOutput {
        self.process_stored(lsn, None, payload)
    }

    /// Applies one durable record, which the log stored at `stored_ms` (Unix ms, when the log
    /// kept it). Always returns an output for `lsn` (possibly empty), so the sinks' view of the
    /// log stays gap-free.
    pub fn process_stored(&mut self, lsn: u64, stored_ms: Option<i64>, payload: &[u8]) -> ShardOutput {
        let batch = match decode_batch(payload, &self.limits) {
            Ok(batch) => batch,
            Err(err) => {
                // Verified before it was appended; reaching this means the log was written by an
                // incompatible build. Skipping is the only option; say so loudly.
                tracing::error!(lsn, %err, "durable record does not decode; skipped");
                return not_applied(lsn, stored_ms, NotApplied::Undecodable);
            }
        };
        let id = batch.workout_id();
        if let Some(removal) = self.deletions.as_ref().and_then(|d| d.removal(&id, batch.user_id()))
            && self.is_removed(id, removal, lsn, &batch)
        {
            tracing::debug!(workout = %id, seq = batch.seq(), "batch of a deleted workout or an erased user; ignored");
            return not_applied(lsn, stored_ms, NotApplied::Deleted);
        }
        if self.ended.contains_key(&id) {
            // Late data for a finished workout: acknowledged and kept in the log, not applied.
            tracing::debug!(workout = %id, seq = batch.seq(), "batch after the workout ended; ignored");
            return not_applied(lsn, stored_ms, NotApplied::AfterEnd);
        }
        if !self.workouts.contains_key(&id)
            && let Some(span) = self.history.as_ref().and_then(|h| h.ended_span(&id))
            && lsn != *span.start()
        {
            // A workout that ended before this core started: its first record, replayed, starts it
            // again (the whole workout is being replayed); any other of its records is either
            // replayed without its start (the sinks hold its end already: the log keeps a
            // workout's first record until they do) or came after the end.
            let after_end = lsn > *span.end();
            if after_end {
                tracing::debug!(workout = %id, seq = batch.seq(), "batch after the workout ended; ignored");
                self.ended.insert(id, lsn);
            }
            let not_applied = after_end.then_some(NotApplied::AfterEnd);
            return ShardOutput { lsn, stored_ms, not_applied, ..ShardOutput::default() };
        }
        let out = match self.workouts.get_mut(&id) {
            Some(workout) if !workout.is_from(batch.user_id(), batch.device_id()) => {
                // Ingest refuses these; one in the log came through a gateway that could not ask
                // the owner registry. Only the user and device that started a workout write to it.
                tracing::warn!(workout = %id, seq = batch.seq(), "batch from another user or device than the workout's; ignored");
                return not_applied(lsn, stored_ms, NotApplied::OtherOwner);
            }
            Some(workout) => workout.apply(&batch, lsn, stored_ms, false, self.update_interval_ms),
            None if batch.seq() >= trackwire_codec::SERVER_SEQ_FLOOR => {
                // The server's idle timeout for a workout this shard does not hold (erased, or
                // its first batch no longer in the log): nothing to end, nothing to start.
                tracing::debug!(workout = %id, "server record for a workout not in progress here; ignored");
                return ShardOutput { lsn, stored_ms, ..ShardOutput::default() };
            }
            None => {
                let shared = self.shared.as_ref().and_then(|p| p.get(batch.user_id()));
                let profile = self.profiles.get(batch.user_id()).or(shared.as_ref());
                let mut workout = Box::new(Workout::new(&batch, lsn, profile));
                let out = workout.apply(&batch, lsn, stored_ms, true, self.update_interval_ms);
                self.workouts.insert(id, workout);
                out
            }
        };
        if out.ended {
            self.workouts.remove(&id);
            self.ended.insert(id, lsn);
        }
        out
    }

    /// True when the record at `lsn` belongs to a removed workout and is not to be applied: for
    /// a deletion, any record up to its position; for both a deletion and an erasure, a record
    /// after it while the recording goes on (a watch that does not know). A record that starts
    /// the workout afresh after it (seq 0, or a Start: the same file imported again, a new
    /// workout) is applied. The first record after the removal drops what the core held of the
    /// workout, so nothing from before is carried on.
    fn is_removed(&mut self, id: WorkoutId, removal: Removal, lsn: u64, batch: &BatchView<'_>) -> bool {
        let through = removal.through();
        if lsn <= through {
            return matches!(removal, Removal::Deleted(_));
        }
        let here = match self.deleted.get_mut(&id) {
            Some(here) if here.through >= through => here,
            _ => {
                self.workouts.remove(&id);
                self.ended.remove(&id);
                self.deleted.entry(id).insert_entry(DeletedHere { through, restarted: false }).into_mut()
            }
        };
        if !here.restarted {
            let starts = batch.seq() == 0 || batch.events().iter().any(|e| e.kind() == ControlKind::Start);
            here.restarted = starts;
        }
        !here.restarted
    }
}

/// The output for a durable record that is kept but not applied, saying why.
fn not_applied(lsn: u64, stored_ms: Option<i64>, reason: NotApplied) -> ShardOutput {
    ShardOutput { lsn, stored_ms, not_applied: Some(reason), ..ShardOutput::default() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct NothingEnded;

    impl EndedWorkouts for NothingEnded {
        fn ended_span(&self, _: &WorkoutId) -> Option<std::ops::RangeInclusive<u64>> {
            None
        }
    }

    #[test]
    fn ends_the_store_holds_are_let_go_and_only_those() {
        let mut core = ShardCore::default().with_history(Some(Arc::new(NothingEnded)));
        for (id, at) in [(1u8, 5u64), (2, 9)] {
            core.ended.insert(WorkoutId([id; 16]), at);
        }
        core.forget_ended_through(5);
        assert_eq!(core.ended.keys().collect::<Vec<_>>(), [&WorkoutId([2; 16])]);

        let mut alone = ShardCore::default();
        alone.ended.insert(WorkoutId([1; 16]), 5);
        alone.forget_ended_through(9);
        assert_eq!(alone.ended.len(), 1, "without a store, nothing else remembers the end");
    }
}
