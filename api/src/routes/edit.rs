//! `PATCH /api/v1/workouts/{id}`: what the owner may change of a workout (name, description,
//! sport, visibility, tags, gear), published as `WorkoutEdited` in order with the workout's own
//! events.

use axum::extract::State;
use trackwire_sinks::PublishedEvent;
use trackwire_sinks::read_store::{ChangeAspect, NewChange};

use super::blocking;
use super::workouts::{get_one, load, valid_tag};
use crate::auth::Caller;
use crate::extract::{Json, Path};
use crate::views::{ErrorBody, WorkoutDetails, WorkoutEdits, WorkoutPatch};
use crate::{ApiError, AppState};

/// Longest name, in characters.
const MAX_NAME_CHARS: usize = 100;
/// Longest description, in characters.
const MAX_DESCRIPTION_CHARS: usize = 10_000;
/// Most tags on one workout.
const MAX_TAGS: usize = 20;

/// Changes the fields given (an absent field keeps its value; `null` clears a name, description
/// or gear) and answers with the workout as it now is. When anything changed, `WorkoutEdited`
/// is published with every editable field's new value and the names of those that changed.
#[utoipa::path(patch, operation_id = "edit_workout", path = "/api/v1/workouts/{id}", tag = "workouts",
    params(("id" = String, Path, description = "Workout id (UUID)")),
    request_body = WorkoutPatch,
    security(("bearer" = [])),
    responses(
        (status = 200, body = WorkoutDetails),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 429, body = ErrorBody), (status = 503, body = ErrorBody),
    ))]
pub async fn edit(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(patch): Json<WorkoutPatch>,
) -> Result<axum::Json<WorkoutDetails>, ApiError> {
    let (summary, _) = load(&state, &caller, &id).await?;
    let name = patch.name.map(|n| n.map(|n| valid_text(&n, "name", MAX_NAME_CHARS, false)).transpose()).transpose()?;
    let description = patch
        .description
        .map(|d| d.map(|d| valid_text(&d, "description", MAX_DESCRIPTION_CHARS, true)).transpose())
        .transpose()?;
    let tags = patch.tags.map(|tags| valid_tags(&tags)).transpose()?;
    let (accounts, workout, owner) = (state.accounts.clone(), summary.workout_id, summary.user_id.clone());
    let recorded_sport = summary.sport.clone();
    let edited = blocking(move || {
        if let Some(Some(gear)) = &patch.gear_id
            && accounts.gear(&owner, gear)?.is_none()
        {
            return Err(ApiError::invalid(
                "unknown_gear",
                "gear_id",
                gear.as_str(),
                format!("the owner has no gear '{gear}': create it with POST /api/v1/users/me/gear first"),
            ));
        }
        let before = accounts.workout_edits(&workout)?.unwrap_or_default();
        let (tags_before, gear_before) = (accounts.workout_tags(&workout)?, accounts.gear_of_workout(&workout)?);
        let mut after = before.clone();
        let mut changed = Vec::new();
        if let Some(name) = name {
            after.name = name;
        }
        if let Some(description) = description {
            after.description = description;
        }
        if let Some(sport) = patch.sport {
            after.sport = Some(sport.as_str().to_owned());
        }
        if let Some(visibility) = patch.visibility {
            after.visibility = visibility;
        }
        for (field, differs) in [
            ("name", after.name != before.name),
            ("description", after.description != before.description),
            (
                "sport",
                after.sport.as_deref().unwrap_or(&recorded_sport) != before.sport.as_deref().unwrap_or(&recorded_sport),
            ),
            ("visibility", after.visibility != before.visibility),
        ] {
            if differs {
                changed.push(field);
            }
        }
        if after != before {
            accounts.put_workout_edits(&workout, &after)?;
        }
        let tags = match tags {
            Some(tags) if tags != tags_before => {
                accounts.set_workout_tags(&workout, &tags)?;
                changed.push("tags");
                tags
            }
            _ => tags_before,
        };
        let gear_id = match patch.gear_id {
            Some(gear) if gear != gear_before => {
                accounts.assign_gear(&workout, gear.as_deref())?;
                changed.push("gear_id");
                gear
            }
            _ => gear_before,
        };
        Ok::<_, ApiError>((after, tags, gear_id, changed))
    })
    .await?;
    let (edits, tags, gear_id, changed) = edited;
    if !changed.is_empty() {
        let event =
            edited_event(&summary.user_id, summary.workout_id, &summary.sport, &edits, &tags, gear_id, &changed);
        // Push subscribers get the fields that changed, with their new values.
        let mut change = NewChange::new(summary.workout_id, &summary.user_id, ChangeAspect::Update, event.timestamp_ms);
        change.updates = changed.iter().map(|field| ((*field).to_owned(), event.data[*field].clone())).collect();
        let store = state.store.clone();
        blocking(move || store.append_change(&change)).await?;
        crate::control::publish(state.control.as_ref(), &state.store, event).await?;
    }
    get_one(State(state), caller, Path(id)).await
}

/// `WorkoutEdited`: every editable field as it now is (`sport` the one shown: edited or recorded).
fn edited_event(
    user: &str,
    workout: trackwire_codec::WorkoutId,
    recorded_sport: &str,
    edits: &WorkoutEdits,
    tags: &[String],
    gear_id: Option<String>,
    changed: &[&str],
) -> PublishedEvent {
    PublishedEvent {
        event_id: uuid::Uuid::new_v4().hyphenated().to_string(),
        event_type: "WorkoutEdited".into(),
        timestamp_ms: chrono::Utc::now().timestamp_millis(),
        workout_id: Some(workout),
        user_id: user.to_owned(),
        data: serde_json::json!({
            "workout_id": workout.to_string(),
            "user_id": user,
            "name": edits.name,
            "description": edits.description,
            "sport": edits.sport.as_deref().unwrap_or(recorded_sport),
            "visibility": edits.visibility,
            "tags": tags,
            "gear_id": gear_id,
            "changed": changed,
        }),
    }
}

/// Text of at most `max` characters; a name must not be blank nor hold line breaks.
fn valid_text(given: &str, field: &str, max: usize, multiline: bool) -> Result<String, ApiError> {
    let text = given.trim().to_owned();
    let bad_control = |c: char| c.is_control() && !(multiline && matches!(c, '\n' | '\r' | '\t'));
    if (!multiline && text.is_empty()) || text.chars().count() > max || text.chars().any(bad_control) {
        let rule = if multiline {
            format!("a {field} is at most {max} characters (line breaks allowed, no other control characters)")
        } else {
            format!("a {field} is 1 to {max} characters without control characters")
        };
        return Err(ApiError::invalid("validation_failed", field, given, rule).with_detail("max", max));
    }
    Ok(text)
}

/// The tags given, each valid, without repeats (first occurrence kept).
fn valid_tags(given: &[String]) -> Result<Vec<String>, ApiError> {
    let mut tags: Vec<String> = Vec::with_capacity(given.len());
    for tag in given {
        let tag = valid_tag(tag, "tags")?;
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(ApiError::invalid(
            "validation_failed",
            "tags",
            format!("{} tags", tags.len()),
            format!("a workout has at most {MAX_TAGS} tags"),
        )
        .with_detail("max", MAX_TAGS));
    }
    Ok(tags)
}
