//! Work the API asks of every sink, run on the sinks thread between outputs so it is ordered with
//! the data: erasing a user (GDPR), dropping old positions (coordinate retention), and publishing
//! an event no log record produced (a profile changed, a workout tagged).
//!
//! It arrives one of two ways: from the API of the same process ([`CommandSender`]: run after
//! the outputs already delivered, and answered), or through the log ([`LoggedCommand`]: run at
//! its position, after every output before it and before any after it, and retried until done).

use std::collections::HashMap;

use trackwire_codec::WorkoutId;
use trackwire_pipeline::ShardOutput;

#[cfg(doc)]
use crate::CommandSender;

/// One workout to erase, with the time span its rows can be found in.
#[derive(Debug, Clone, PartialEq)]
pub struct ErasedWorkout {
    pub workout_id: WorkoutId,
    pub start_time_ms: i64,
    pub end_time_ms: i64,
}

/// What an [`Erasure`] covers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ErasureScope {
    /// Everything of the user (GDPR erasure): the listed workouts and any other the sink finds.
    #[default]
    User,
    /// Only the listed workouts (their owner deleted them); the user's other data stays.
    Workouts,
}

/// Erase what `scope` says of `user_id` that the log held through `through_lsn`.
#[derive(Debug, Clone, PartialEq)]
pub struct Erasure {
    pub user_id: String,
    pub scope: ErasureScope,
    /// Every workout of the user the read store or the live registry knows. Outputs still on their
    /// way (LSN ≤ `through_lsn`) are stopped by the coordinator, so no sink sees them.
    pub workouts: Vec<ErasedWorkout>,
    pub through_lsn: u64,
}

/// An event the API raised, for the event sinks (event log, Kafka) to publish; the others ignore
/// it. Its id is derived from what raised it, so a repeat (a retried request, a replayed command)
/// publishes the same event and consumers deduplicate.
#[derive(Debug, Clone, PartialEq)]
pub struct PublishedEvent {
    pub event_id: String,
    /// `UserMetricsUpdated`, `WorkoutTagAdded`.
    pub event_type: String,
    /// When it happened, Unix ms.
    pub timestamp_ms: i64,
    /// The workout it is about (the Kafka key), if any; else the user is the key.
    pub workout_id: Option<WorkoutId>,
    pub user_id: String,
    /// The payload as published (schemas in `docs/events/`).
    pub data: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Erase(Erasure),
    /// Coordinate retention: null every position of samples the log stored in
    /// `[from_ms, before_ms)`, keeping every other column and every total. (A sample whose storage
    /// time the log did not keep counts as stored when it was recorded.)
    DropPositions {
        from_ms: i64,
        before_ms: i64,
    },
    Publish(PublishedEvent),
}

/// A command that came through the log. The coordinator runs it once every output before its
/// position has been handed to the sinks, and retries whatever failed (build, sinks, `done`) on
/// each flush until all of it succeeded: every step may be repeated.
pub trait LoggedCommand: Send {
    /// The command for the sinks, built when its turn comes (an erasure lists the user's workouts
    /// then, when every earlier output has reached the sinks); `None` when there is nothing left
    /// to do (it was carried out before a restart).
    fn build(&mut self) -> Result<Option<Command>, String>;
    /// Every sink has carried the command out: record that where the log's next reader finds it.
    fn done(&mut self) -> Result<(), String>;
}

/// A [`LoggedCommand`] at its log position.
pub struct OrderedCommand {
    pub lsn: u64,
    pub command: Box<dyn LoggedCommand>,
}

/// What the coordinator keeps to stop data that must no longer land anywhere: erased users' outputs
/// up to their erasure, and positions older than the retention cut.
#[derive(Debug, Clone, Default)]
pub struct Redactions {
    /// User → the LSN through which their data is erased.
    pub erased: HashMap<String, u64>,
    /// Deleted workout → the LSN through which its data is erased.
    pub deleted: HashMap<WorkoutId, u64>,
    /// Samples stored before this time (Unix ms) lose their positions (0: none).
    pub positions_before_ms: i64,
}

impl Redactions {
    /// Erases `user_id` through `lsn` (an earlier, later erasure is kept if it reaches further).
    pub fn erase_through(&mut self, user_id: &str, lsn: u64) {
        let through = self.erased.entry(user_id.to_owned()).or_default();
        *through = (*through).max(lsn);
    }

    /// Erases the workouts an erasure lists (every one of the user's, for a user erasure).
    pub fn erase(&mut self, erasure: &Erasure) {
        match erasure.scope {
            ErasureScope::User => self.erase_through(&erasure.user_id, erasure.through_lsn),
            ErasureScope::Workouts => {
                for workout in &erasure.workouts {
                    self.delete_through(workout.workout_id, erasure.through_lsn);
                }
            }
        }
    }

    /// Erases the workout `id` through `lsn` (an earlier, later deletion is kept if it reaches
    /// further).
    pub fn delete_through(&mut self, id: WorkoutId, lsn: u64) {
        let through = self.deleted.entry(id).or_default();
        *through = (*through).max(lsn);
    }

    /// Moves the retention cut to `before_ms` (never back).
    pub fn drop_positions_before(&mut self, before_ms: i64) {
        self.positions_before_ms = self.positions_before_ms.max(before_ms);
    }

    /// Everything `other` redacts too.
    pub fn merge(&mut self, other: Redactions) {
        for (user, through) in other.erased {
            self.erase_through(&user, through);
        }
        for (workout, through) in other.deleted {
            self.delete_through(workout, through);
        }
        self.drop_positions_before(other.positions_before_ms);
    }

    /// Applies the redactions to an output on its way to the sinks.
    pub fn apply(&self, output: &mut ShardOutput) {
        let user = output.summary.as_ref().map(|s| s.user_id.as_str());
        let workout = output.summary.as_ref().map(|s| s.workout_id);
        let erased_through = user.and_then(|u| self.erased.get(u)).into_iter();
        let deleted_through = workout.and_then(|w| self.deleted.get(&w)).into_iter();
        if erased_through.chain(deleted_through).any(|through| output.lsn <= *through) {
            output.points.clear();
            output.events.clear();
            output.summary = None;
            output.ended = false;
            return;
        }
        match output.stored_ms {
            Some(stored) if stored < self.positions_before_ms => output.points.drop_positions_before(i64::MAX),
            Some(_) => {}
            None => output.points.drop_positions_before(self.positions_before_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use trackwire_pipeline::{EnrichedPoint, Points};

    use super::*;

    /// An output of two samples recorded at 1,000 and 3,000 ms, stored at `stored_ms`.
    fn output(stored_ms: Option<i64>) -> ShardOutput {
        let point = |time_ms| EnrichedPoint { time_ms, lat_deg: Some(46.0), lon_deg: Some(7.0), ..Default::default() };
        ShardOutput { lsn: 1, stored_ms, points: Points::from_iter([point(1_000), point(3_000)]), ..Default::default() }
    }

    fn positioned(output: &ShardOutput) -> usize {
        output.points.lat_deg.iter().filter(|p| p.is_some()).count()
    }

    #[test]
    fn the_retention_cut_applies_to_when_a_record_was_stored() {
        let redactions = Redactions { positions_before_ms: 2_000, ..Default::default() };
        let mut stored_after = output(Some(5_000));
        redactions.apply(&mut stored_after);
        assert_eq!(positioned(&stored_after), 2, "stored after the cut: kept, however old the samples");
        let mut stored_before = output(Some(1_500));
        redactions.apply(&mut stored_before);
        assert_eq!(positioned(&stored_before), 0, "stored before the cut: every position goes");
        let mut unknown = output(None);
        redactions.apply(&mut unknown);
        assert_eq!(positioned(&unknown), 1, "no storage time: each sample's recorded time stands in");
    }
}
