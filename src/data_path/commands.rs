//! Commands read from the log ([`LogCommand`]) as the sinks' [`LoggedCommand`]s, and the record
//! of them in the read store that makes a partition's next owner (or a restart) keep erased data
//! out and finish what was left undone.

use std::sync::Arc;

use trackwire_api::control::record_of;
use trackwire_codec::WorkoutId;
use trackwire_ingest::log::LogCommand;
use trackwire_pipeline::LiveWorkouts;
use trackwire_sinks::read_store::{LogCommandRecord, ReadStore};
use trackwire_sinks::{
    Command, ErasedWorkout, Erasure, ErasureScope, LoggedCommand, OrderedCommand, PublishedEvent, Redactions,
};

/// A command at `lsn` of the log the read store names `log`.
pub struct FromLog {
    pub lsn: u64,
    pub command: LogCommand,
    pub log: String,
    pub store: Arc<dyn ReadStore>,
    pub live: Arc<LiveWorkouts>,
}

impl LoggedCommand for FromLog {
    fn build(&mut self) -> Result<Option<Command>, String> {
        let records = self.store.log_commands(&self.log).map_err(|e| e.to_string())?;
        if records.iter().any(|r| r.lsn == self.lsn && r.done) {
            return Ok(None);
        }
        Ok(Some(match &self.command {
            LogCommand::EraseUser { user_id, workouts: listed } => {
                // The command lists the workouts the API knew of, and only those it took out of
                // the read store; every output before this position has reached the sinks by
                // now, so the store and the live registry know the rest (those that ended or
                // began since). The list matters most where neither could help: after a restart,
                // for workouts whose records the log no longer holds.
                let stored = self.store.all_of_user(user_id).map_err(|e| e.to_string())?;
                let mut workouts: Vec<ErasedWorkout> = stored
                    .iter()
                    .map(|w| (w.workout_id, w.start_time_ms, w.end_time_ms))
                    .chain(self.live.spans_of_user(user_id))
                    .chain(
                        listed
                            .iter()
                            .filter_map(|w| Some((w.workout_id.parse().ok()?, w.start_time_ms, w.end_time_ms))),
                    )
                    .map(|(workout_id, start_time_ms, end_time_ms)| ErasedWorkout {
                        workout_id,
                        start_time_ms,
                        end_time_ms,
                    })
                    .collect();
                workouts.sort_by_key(|w| w.workout_id);
                workouts.dedup_by_key(|w| w.workout_id);
                Command::Erase(Erasure {
                    user_id: user_id.clone(),
                    scope: ErasureScope::User,
                    workouts,
                    through_lsn: self.lsn,
                })
            }
            LogCommand::DeleteWorkout { user_id, workout_id, span } => {
                let Ok(id) = workout_id.parse::<WorkoutId>() else {
                    tracing::warn!(workout = %workout_id, "a deletion of a workout id that does not parse: nothing to do");
                    return Ok(None);
                };
                // Every output before this position has reached the sinks: the store or the live
                // registry knows the workout's span (the lake finds its rows by it), or else the
                // command carries the one the API knew (it took the workout out of the store).
                let known = match self.store.get(&id).map_err(|e| e.to_string())? {
                    Some(summary) => Some((summary.start_time_ms, summary.end_time_ms)),
                    None => self.live.span_of(&id),
                };
                let (start_time_ms, end_time_ms) =
                    known.or(span.map(|s| (s.start_time_ms, s.end_time_ms))).unwrap_or((i64::MIN, i64::MAX));
                Command::Erase(Erasure {
                    user_id: user_id.clone(),
                    scope: ErasureScope::Workouts,
                    workouts: vec![ErasedWorkout { workout_id: id, start_time_ms, end_time_ms }],
                    through_lsn: self.lsn,
                })
            }
            LogCommand::DropPositions { from_ms, before_ms } => {
                Command::DropPositions { from_ms: *from_ms, before_ms: *before_ms }
            }
            LogCommand::PublishEvent { event_id, event_type, timestamp_ms, workout_id, user_id, data } => {
                Command::Publish(PublishedEvent {
                    event_id: event_id.clone(),
                    event_type: event_type.clone(),
                    timestamp_ms: *timestamp_ms,
                    workout_id: workout_id.as_deref().and_then(|id| id.parse().ok()),
                    user_id: user_id.clone(),
                    data: data.clone(),
                })
            }
        }))
    }

    fn done(&mut self) -> Result<(), String> {
        match &self.command {
            LogCommand::EraseUser { user_id, .. } => self.live.erase_user(user_id, self.lsn),
            LogCommand::DeleteWorkout { workout_id, .. } => {
                if let Ok(id) = workout_id.parse() {
                    self.live.delete(id, self.lsn);
                }
            }
            _ => {}
        }
        self.store.record_log_command(&record_of(&self.log, self.lsn, &self.command, true)).map_err(|e| e.to_string())
    }
}

/// What the commands recorded for a log mean for a reader starting at `first_lsn`: the
/// redactions that keep replayed data out (each erasure through its position, the latest
/// retention cut), and the commands still to carry out whose records the log no longer holds.
pub fn recorded(
    records: &[LogCommandRecord],
    first_lsn: u64,
    store: &Arc<dyn ReadStore>,
    live: &Arc<LiveWorkouts>,
) -> (Redactions, Vec<OrderedCommand>) {
    let mut redactions = Redactions::default();
    let mut undone = Vec::new();
    for record in records {
        let command = match LogCommand::decode(record.command.as_bytes()) {
            Ok(command) => command,
            Err(error) => {
                tracing::warn!(log = %record.log, lsn = record.lsn, %error, "an unreadable command record: ignored");
                continue;
            }
        };
        match &command {
            LogCommand::EraseUser { user_id, .. } => redactions.erase_through(user_id, record.lsn),
            LogCommand::DeleteWorkout { workout_id, .. } => {
                if let Ok(id) = workout_id.parse() {
                    redactions.delete_through(id, record.lsn);
                }
            }
            LogCommand::DropPositions { before_ms, .. } => redactions.drop_positions_before(*before_ms),
            LogCommand::PublishEvent { .. } => {}
        }
        if !record.done && record.lsn < first_lsn {
            let command =
                FromLog { lsn: record.lsn, command, log: record.log.clone(), store: store.clone(), live: live.clone() };
            undone.push(OrderedCommand { lsn: record.lsn, command: Box::new(command) });
        }
    }
    (redactions, undone)
}
