//! The read store's change feed: one row per thing a third-party app may want to hear about a
//! workout (it was created, edited, deleted), in the order they happened. The store writes
//! `Create` itself, in the transaction that first stores a workout as completed, so a replay
//! cannot record it twice; the API appends `Update` and `Delete`. Push subscriptions are fed
//! from it, then trim it.

use trackwire_codec::WorkoutId;
use trackwire_pipeline::{WorkoutStatus, WorkoutSummary};

/// What happened to the workout (the names third-party apps know from Strava's webhooks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeAspect {
    /// The workout completed (streamed, uploaded or entered by hand).
    Create,
    /// Its owner edited it; [`WorkoutChange::updates`] holds the fields they set.
    Update,
    /// Its owner deleted it.
    Delete,
}

/// One change to a workout, before it has its place in the feed.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NewChange {
    pub workout_id: WorkoutId,
    pub user_id: String,
    pub aspect: ChangeAspect,
    /// The edited fields and their new values (`Update`); an empty object otherwise.
    pub updates: serde_json::Value,
    /// When it happened, Unix ms.
    pub at_ms: i64,
}

impl NewChange {
    pub fn new(workout_id: WorkoutId, user_id: &str, aspect: ChangeAspect, at_ms: i64) -> NewChange {
        NewChange {
            workout_id,
            user_id: user_id.to_owned(),
            aspect,
            updates: serde_json::Value::Object(Default::default()),
            at_ms,
        }
    }
}

/// A change in the feed: its position (`seq`, increasing, never reused) and what happened.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct WorkoutChange {
    pub seq: u64,
    #[serde(flatten)]
    pub change: NewChange,
}

/// The `Create` change when storing `summary` over `previous` is the workout's completion (not a
/// later update of a completed workout).
pub(crate) fn created(previous: Option<&WorkoutSummary>, summary: &WorkoutSummary) -> Option<NewChange> {
    let first_completion =
        summary.status == WorkoutStatus::Completed && previous.is_none_or(|p| p.status != WorkoutStatus::Completed);
    first_completion
        .then(|| NewChange::new(summary.workout_id, &summary.user_id, ChangeAspect::Create, summary.end_time_ms))
}
