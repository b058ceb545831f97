//! Commands that travel through the log, so that every reader carries them out at the same
//! position relative to the data: erasing a user or a workout, dropping old positions, publishing an event
//! the API raised (a profile changed, a workout tagged) in order with the workout's own.
//!
//! A scale-out deployment has no single process that could stop the data path and act: the API
//! appends the command to every partition of the raw topic, and each partition's reader hands it
//! on at its position ([`LogEntry::Command`](super::LogEntry::Command)). Everything before it in
//! the partition is covered; everything after is not. The encoding is JSON with a `type` tag,
//! marked by the record header [`COMMAND_HEADER`] = [`COMMAND_VERSION`]; a reader that does not
//! know a command (or a version) skips the position as a gap, with a warning.

use serde::{Deserialize, Serialize};

/// The record header that marks a command record, valued with its encoding version.
pub const COMMAND_HEADER: &str = "trackwire-command";
/// The encoding this build writes and reads.
pub const COMMAND_VERSION: &str = "v1";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LogCommand {
    /// Erase everything of the user that came before this position. `workouts`: those of the
    /// user's workouts whose records this log holds that the API knew of when it placed the
    /// command, with their spans: the API takes them out of the read store at once, and the
    /// log may no longer hold their records when the command is carried out, so without the
    /// list a reader would not find their lake rows. Absent in commands written before it was
    /// added (readers then go by what they hold themselves).
    EraseUser {
        user_id: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        workouts: Vec<WorkoutSpan>,
    },
    /// Erase one workout its owner deleted (placed in the workout's partition): everything of it
    /// that came before this position. `span`: the workout's, as the API knew it (absent in
    /// commands written before it was added, or for a workout the API had no summary of), so
    /// the lake looks only at those dates.
    DeleteWorkout {
        user_id: String,
        workout_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        span: Option<TimeSpan>,
    },
    /// Coordinate retention: null the positions of samples recorded in `[from_ms, before_ms)`.
    DropPositions { from_ms: i64, before_ms: i64 },
    /// Publish an event on the event stream (placed in one partition: the workout's, or one
    /// chosen by the user's id). `data` is the event's payload as published.
    PublishEvent {
        event_id: String,
        event_type: String,
        timestamp_ms: i64,
        workout_id: Option<String>,
        user_id: String,
        data: serde_json::Value,
    },
}

/// A workout an erasure names, and the times of its first and last sample.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkoutSpan {
    pub workout_id: String,
    pub start_time_ms: i64,
    pub end_time_ms: i64,
}

/// The times of a workout's first and last sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeSpan {
    pub start_time_ms: i64,
    pub end_time_ms: i64,
}

impl LogCommand {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a log command always serializes")
    }

    pub fn decode(bytes: &[u8]) -> Result<LogCommand, serde_json::Error> {
        serde_json::from_slice(bytes)
    }

    /// The user the command is about, if any (the key of its record).
    pub fn user_id(&self) -> Option<&str> {
        match self {
            LogCommand::EraseUser { user_id, .. } | LogCommand::DeleteWorkout { user_id, .. } => Some(user_id),
            LogCommand::DropPositions { .. } => None,
            LogCommand::PublishEvent { user_id, .. } => Some(user_id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_round_trip_and_their_encoding_is_stable() {
        // Commands written before the lists and spans were added read as they were meant.
        let erase = LogCommand::EraseUser { user_id: "u-1".into(), workouts: Vec::new() };
        assert_eq!(erase.encode(), br#"{"type":"erase_user","user_id":"u-1"}"#);
        let listed = LogCommand::EraseUser {
            user_id: "u-1".into(),
            workouts: vec![WorkoutSpan { workout_id: "w-1".into(), start_time_ms: 1, end_time_ms: 2 }],
        };
        assert_eq!(
            listed.encode(),
            br#"{"type":"erase_user","user_id":"u-1","workouts":[{"workout_id":"w-1","start_time_ms":1,"end_time_ms":2}]}"#
        );
        assert_eq!(LogCommand::decode(&listed.encode()).unwrap(), listed);
        let drop = LogCommand::DropPositions { from_ms: 0, before_ms: 86_400_000 };
        assert_eq!(LogCommand::decode(&drop.encode()).unwrap(), drop);
        assert!(LogCommand::decode(br#"{"type":"reformat_disk"}"#).is_err());
        let publish = LogCommand::PublishEvent {
            event_id: "e-1".into(),
            event_type: "WorkoutTagAdded".into(),
            timestamp_ms: 1_700_000_000_000,
            workout_id: Some("w-1".into()),
            user_id: "u-1".into(),
            data: serde_json::json!({"tag": "race"}),
        };
        assert_eq!(LogCommand::decode(&publish.encode()).unwrap(), publish);
        assert_eq!(publish.user_id(), Some("u-1"), "keyed by its user");
        let delete = LogCommand::DeleteWorkout { user_id: "u-1".into(), workout_id: "w-1".into(), span: None };
        assert_eq!(delete.encode(), br#"{"type":"delete_workout","user_id":"u-1","workout_id":"w-1"}"#);
        assert_eq!(LogCommand::decode(&delete.encode()).unwrap(), delete);
        let spanned = LogCommand::DeleteWorkout {
            user_id: "u-1".into(),
            workout_id: "w-1".into(),
            span: Some(TimeSpan { start_time_ms: 1, end_time_ms: 2 }),
        };
        assert_eq!(LogCommand::decode(&spanned.encode()).unwrap(), spanned);
        // And a reader of the version before ignores what it does not know.
        #[derive(Deserialize)]
        #[serde(tag = "type", rename_all = "snake_case")]
        enum Before {
            EraseUser { user_id: String },
        }
        let Before::EraseUser { user_id } = serde_json::from_slice(&listed.encode()).unwrap();
        assert_eq!(user_id, "u-1");
    }
}
