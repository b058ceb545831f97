//! What a receiver is sent: one change to one workout, named the way Strava's webhooks name it,
//! so an app written for those reads it unchanged. It carries ids, not data: the app reads the
//! workout with the user's token, under the usual access rules.

use serde::Serialize;
use trackwire_codec::WorkoutId;
use trackwire_sinks::read_store::{ChangeAspect, NewChange};

use crate::views::iso_instant;

/// What happened to the workout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AspectType {
    /// It completed (streamed, uploaded or entered by hand).
    Create,
    /// Its owner edited it (`updates` has the fields set).
    Update,
    /// Its owner deleted it.
    Delete,
}

impl From<ChangeAspect> for AspectType {
    fn from(aspect: ChangeAspect) -> Self {
        match aspect {
            ChangeAspect::Create => AspectType::Create,
            ChangeAspect::Update => AspectType::Update,
            ChangeAspect::Delete => AspectType::Delete,
        }
    }
}

/// The body of a delivery (`POST` to the callback URL, `Content-Type: application/json`,
/// signed in `Trackwire-Signature`).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PushEvent {
    pub subscription_id: String,
    /// The change's number; with `subscription_id` it identifies the delivery, and every retry
    /// of it carries the same: deduplicate on the pair.
    pub change_id: u64,
    /// Always `workout`.
    pub object_type: &'static str,
    pub object_id: WorkoutId,
    pub aspect_type: AspectType,
    /// The workout's owner.
    pub owner_id: String,
    /// When the change happened (ISO 8601, UTC).
    pub event_time: String,
    /// For `update`: each field set and its new value; empty otherwise.
    #[schema(value_type = Object)]
    pub updates: serde_json::Value,
}

impl PushEvent {
    pub fn new(subscription_id: &str, change_id: u64, change: &NewChange) -> PushEvent {
        PushEvent {
            subscription_id: subscription_id.to_owned(),
            change_id,
            object_type: "workout",
            object_id: change.workout_id,
            aspect_type: change.aspect.into(),
            owner_id: change.user_id.clone(),
            event_time: iso_instant(change.at_ms),
            updates: change.updates.clone(),
        }
    }
}
