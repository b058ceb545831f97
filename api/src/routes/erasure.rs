//! `DELETE /api/v1/users/{id}` and `GET /api/v1/users/{id}/erasure`: erasing a user everywhere
//! (GDPR), and how far an erasure has got.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use trackwire_ingest::log::LogCommand;
use trackwire_sinks::read_store::LogCommandRecord;
use trackwire_sinks::{Command, ErasedWorkout, Erasure, ErasureScope};

use super::blocking;
use super::users::every_workout_of;
use crate::auth::Caller;
use crate::control::{self, Control};
use crate::extract::Path;
use crate::views::{Erased, ErasureState, ErasureStatus, ErrorBody};
use crate::{ApiError, AppState};

/// How long an API replica waits for the pipeline workers before answering `202` with the
/// erasure's status resource instead.
const ERASURE_WAIT: Duration = Duration::from_secs(10);

/// Erases the user: workouts, streams, lake rows (files rewritten), events, profile, gear,
/// uploads and device tokens; publishes a tombstone. Safe to repeat. In a scale-out deployment
/// the pipeline workers erase what they hold, each partition at its position in the log: the
/// answer is `200` once all have, or `202` with the status resource to poll.
#[utoipa::path(delete, operation_id = "erase_user", path = "/api/v1/users/{id}", tag = "privacy",
    params(("id" = String, Path, description = "User id, or `me`")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = Erased),
        (status = 202, description = "Accepted; still in progress on some partitions: poll the `Location`", body = ErasureStatus),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 429, body = ErrorBody),
        (status = 503, body = ErrorBody),
    ))]
pub async fn erase(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let user = caller.may_act_on(&id)?;
    // The user's device tokens go first so nothing new arrives.
    let revoked = state.ingestor().tokens().remove_user(&user);
    let workouts: Vec<ErasedWorkout> = every_workout_of(&state, &user)
        .await?
        .into_iter()
        .map(|w| ErasedWorkout { workout_id: w.workout_id, start_time_ms: w.start_time_ms, end_time_ms: w.end_time_ms })
        .collect();
    let ids: Vec<_> = workouts.iter().map(|w| w.workout_id).collect();
    let count = ids.len();
    let mut erased_through = None;
    let placed = match &state.control {
        Some(Control::Local(commands)) => {
            // Everything appended so far.
            let through = state.ingestor().log().metrics().durable_lsn.load(std::sync::atomic::Ordering::Acquire);
            erased_through = Some(through);
            let accounts = state.accounts.clone();
            let u = user.clone();
            blocking(move || accounts.record_erasure(&u, through)).await?;
            state.erased.entry(user.clone()).and_modify(|t| *t = (*t).max(through)).or_insert(through);
            // The shards stop applying the user's workouts before anything else happens to them.
            if let Some(live) = state.live() {
                live.erase_user(&user, through);
            }
            let erasure = Erasure { user_id: user.clone(), scope: ErasureScope::User, workouts, through_lsn: through };
            commands.run(Command::Erase(erasure)).await.map_err(|e| {
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "erasure_incomplete",
                    format!(
                        "part of the erasure failed ({e}); nothing is served any more, retry the DELETE to finish it"
                    ),
                )
            })?;
            None
        }
        Some(Control::Log(raw)) => {
            // The workouts go with the command: the read store's rows go below, and the workers
            // may find neither them nor the records any more when they carry it out.
            Some(control::place_erasure(raw, &state.store, &user, &workouts).await?)
        }
        None => None,
    };
    // What the user records from now on is new data, not a retry of what is erased.
    for workout_id in &ids {
        state.ingestor().log().forget_seqs(*workout_id);
    }
    // What the API itself holds; the read store's rows too, so nothing is served from now on
    // (the pipeline's own erasure covers what is still on its way). Where the workers carry the
    // erasure out, only the rows of the workouts the command lists: one the store gained since
    // stays for them to find there (they know no other way to find its lake rows).
    let accounts = state.accounts.clone();
    let u = user.clone();
    let store = state.store.clone();
    let listed_only = placed.is_some();
    blocking(move || {
        accounts.erase_user(&u, &ids).map_err(ApiError::internal)?;
        let ids = ids.iter().copied().collect();
        if listed_only {
            store.delete_workouts(&ids).map_err(ApiError::internal)?;
            store.delete_changes_of_user(&u).map_err(ApiError::internal)?;
        } else {
            store.erase(&u, &ids).map_err(ApiError::internal)?;
        }
        store.put_athlete_profile(&u, None).map_err(ApiError::internal)
    })
    .await?;
    if let Some(originals) = &state.originals {
        let kept = originals.erase_user(&user).await.map_err(ApiError::internal)?;
        tracing::debug!(user = %user, files = kept, "uploaded files erased");
    }
    if let Some(data_path) = &state.ingest.data_path {
        data_path.profiles.remove(&user);
    }
    // Again: a shard may have shown a workout of the user between the first time and the erasure.
    if let (Some(live), Some(through)) = (state.live(), erased_through) {
        live.erase_user(&user, through);
    }
    tracing::info!(user = %user, workouts = count, device_tokens = revoked, "user erased here; the data path erases the rest");
    let Some(placed) = placed else {
        return Ok(axum::Json(Erased { user_id: user, workouts_erased: count }).into_response());
    };
    let started = Instant::now();
    loop {
        let status = status_of(&state, &user, Some(&placed)).await?;
        if status.state == ErasureState::Complete {
            return Ok(axum::Json(Erased { user_id: user, workouts_erased: count }).into_response());
        }
        if started.elapsed() >= ERASURE_WAIT {
            let location = format!("/api/v1/users/{user}/erasure");
            return Ok((StatusCode::ACCEPTED, [(header::LOCATION, location)], axum::Json(status)).into_response());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// How far the user's erasure has got: `complete` once every partition's data path has carried
/// it out.
#[utoipa::path(get, operation_id = "get_erasure_status", path = "/api/v1/users/{id}/erasure", tag = "privacy",
    params(("id" = String, Path, description = "User id, or `me`")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = ErasureStatus),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "No erasure of this user was asked for", body = ErrorBody),
        (status = 429, body = ErrorBody),
    ))]
pub async fn status(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<ErasureStatus>, ApiError> {
    let user = caller.may_act_on(&id)?;
    Ok(axum::Json(status_of(&state, &user, None).await?))
}

/// The erasure's progress: over `placed` (the placements just made) or, without, the latest
/// erasure recorded on each log.
async fn status_of(
    state: &AppState,
    user: &str,
    placed: Option<&[LogCommandRecord]>,
) -> Result<ErasureStatus, ApiError> {
    let (store, accounts, u) = (state.store.clone(), state.accounts.clone(), user.to_owned());
    let (records, erased_here) = blocking(move || {
        let records = store.log_commands_of_user(&u).map_err(ApiError::internal)?;
        let erased_here = accounts.erasures().map_err(ApiError::internal)?.iter().any(|(who, _)| *who == u);
        Ok::<_, ApiError>((records, erased_here))
    })
    .await?;
    let erasures = records
        .into_iter()
        .filter(|r| matches!(LogCommand::decode(r.command.as_bytes()), Ok(LogCommand::EraseUser { .. })));
    // The latest erasure per log (a repeated DELETE places another).
    let mut latest: BTreeMap<String, LogCommandRecord> = BTreeMap::new();
    for record in erasures {
        let wanted = placed.is_none_or(|p| p.iter().any(|w| w.log == record.log && w.lsn == record.lsn));
        if wanted && latest.get(&record.log).is_none_or(|r| r.lsn < record.lsn) {
            latest.insert(record.log.clone(), record);
        }
    }
    let (partitions, partitions_done) = match (placed, latest.is_empty(), erased_here) {
        (Some(placed), _, _) => (placed.len(), latest.values().filter(|r| r.done).count()),
        (None, false, _) => (latest.len(), latest.values().filter(|r| r.done).count()),
        // The single process erases before it answers.
        (None, true, true) => (1, 1),
        (None, true, false) => {
            return Err(ApiError::not_found(format!(
                "no erasure of user '{user}' was asked for: DELETE /api/v1/users/{user} asks for one"
            )));
        }
    };
    let state = if partitions_done == partitions { ErasureState::Complete } else { ErasureState::InProgress };
    Ok(ErasureStatus { user_id: user.to_owned(), state, partitions, partitions_done })
}
