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
    /// Erase everything of the user that came before this position.
    EraseUser { user_id: String },
    /// Erase one workout its owner deleted (placed in the workout's partition): everything of it
    /// that came before this position.
    DeleteWorkout { user_id: String, workout_id: String },
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
            LogCommand::EraseUser { user_id } | LogCommand::DeleteWorkout { user_id, .. } => Some(user_id),
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
        let erase = LogCommand::EraseUser { user_id: "u-1".into() };
        assert_eq!(erase.encode(), br#"{"type":"erase_user","user_id":"u-1"}"#);
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
        let delete = LogCommand::DeleteWorkout { user_id: "u-1".into(), workout_id: "w-1".into() };
        assert_eq!(delete.encode(), br#"{"type":"delete_workout","user_id":"u-1","workout_id":"w-1"}"#);
        assert_eq!(LogCommand::decode(&delete.encode()).unwrap(), delete);
    }
}
