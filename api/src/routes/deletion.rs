//! `DELETE /api/v1/workouts/{id}`: the owner deletes one workout, from every copy of the data.

use std::collections::HashSet;
use std::time::{Duration, Instant};
use trackwire_sinks::read_store::{ChangeAspect, NewChange};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use trackwire_ingest::log::{LogCommand, TimeSpan};
use trackwire_sinks::{Command, ErasedWorkout, Erasure, ErasureScope};

use super::blocking;
use super::workouts::load;
use crate::auth::Caller;
use crate::control::{self, Control};
use crate::extract::Path;
use crate::views::ErrorBody;
use crate::{ApiError, AppState};

/// How long an API replica waits for the workout's pipeline worker before answering `202`.
const DELETION_WAIT: Duration = Duration::from_secs(10);

/// Deletes the workout (its owner only): summary, streams, best efforts, lake rows (files
/// rewritten), event lines, the uploaded original, gear assignment, tags and edits. Kafka gets a
/// tombstone for the workout on both topics and a `WorkoutDeleted` event. Ordered with the data
/// as a user's erasure is: everything the log held of the workout when it was asked is erased.
/// In a scale-out deployment the answer is `204` once the workout's pipeline worker has carried
/// it out, or `202` while it still is (the workout is no longer served either way).
#[utoipa::path(delete, operation_id = "delete_workout", path = "/api/v1/workouts/{id}", tag = "workouts",
    params(("id" = String, Path, description = "Workout id (UUID)")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Deleted everywhere"),
        (status = 202, description = "Deleted here; the workout's pipeline worker is still erasing its copies"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 429, body = ErrorBody), (status = 503, body = ErrorBody),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let (summary, _) = load(&state, &caller, &id).await?;
    let (workout_id, user) = (summary.workout_id, summary.user_id.clone());
    let erased = ErasedWorkout { workout_id, start_time_ms: summary.start_time_ms, end_time_ms: summary.end_time_ms };
    let mut deleted_through = None;
    let placed = match &state.control {
        Some(Control::Local(commands)) => {
            // Everything appended so far.
            let through = state.ingestor().log().metrics().durable_lsn.load(std::sync::atomic::Ordering::Acquire);
            deleted_through = Some(through);
            // The shards stop applying the workout before anything else happens to it, and the
            // log takes its seqs as new from here on (the same file may be imported again).
            if let Some(live) = state.live() {
                live.delete(workout_id, through);
            }
            let accounts = state.accounts.clone();
            blocking(move || accounts.record_deletion(&workout_id, through)).await?;
            state.deleted.entry(workout_id).and_modify(|t| *t = (*t).max(through)).or_insert(through);
            let erasure = Erasure {
                user_id: user.clone(),
                scope: ErasureScope::Workouts,
                workouts: vec![erased],
                through_lsn: through,
            };
            commands.run(Command::Erase(erasure)).await.map_err(|e| {
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "deletion_incomplete",
                    format!("part of the deletion failed ({e}); retry the DELETE to finish it"),
                )
            })?;
            None
        }
        Some(Control::Log(raw)) => {
            let span = TimeSpan { start_time_ms: erased.start_time_ms, end_time_ms: erased.end_time_ms };
            let command = LogCommand::DeleteWorkout {
                user_id: user.clone(),
                workout_id: workout_id.to_string(),
                span: Some(span),
            };
            Some(control::place_with_workout(raw, &state.store, command, &workout_id).await?)
        }
        None => None,
    };
    // The same file uploaded again is new data, not a retry: the embedded log forgets the
    // workout's seqs, a raw-topic front its memory of acked batches (the workers forget their
    // dedup at the command).
    state.ingestor().log().forget_seqs(workout_id);
    // What the API itself holds, and the read store's rows, so nothing is served from now on.
    // Push subscribers hear of it first: if what follows fails, the repeated DELETE tells them
    // again, which they tolerate, where a lost notice could not be made good.
    let (accounts, store, owner) = (state.accounts.clone(), state.store.clone(), user.clone());
    blocking(move || {
        let now_ms = chrono::Utc::now().timestamp_millis();
        store.append_change(&NewChange::new(workout_id, &owner, ChangeAspect::Delete, now_ms))?;
        accounts.delete_workout(&workout_id).map_err(ApiError::internal)?;
        store.delete_workouts(&HashSet::from([workout_id])).map_err(ApiError::internal)
    })
    .await?;
    if let Some(originals) = &state.originals {
        originals.erase_workout(&user, &workout_id).await.map_err(ApiError::internal)?;
    }
    if let (Some(live), Some(through)) = (state.live(), deleted_through) {
        live.delete(workout_id, through);
    }
    tracing::info!(user = %user, workout = %workout_id, "workout deleted here; the data path erases the rest");
    let Some(placed) = placed else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    let started = Instant::now();
    loop {
        let (store, owner) = (state.store.clone(), user.clone());
        let records = blocking(move || store.log_commands_of_user(&owner)).await?;
        let done = placed.iter().all(|p| records.iter().any(|r| r.log == p.log && r.lsn == p.lsn && r.done));
        if done {
            return Ok(StatusCode::NO_CONTENT.into_response());
        }
        if started.elapsed() >= DELETION_WAIT {
            return Ok(StatusCode::ACCEPTED.into_response());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
