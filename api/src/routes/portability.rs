//! `GET /api/v1/users/{id}/export`: everything Trackwire holds about a user, in one archive they
//! can take elsewhere (GDPR Art. 20, data portability), as Strava's bulk export: a gzipped tar of
//! `profile.json`, `gear.json`, `workouts.json` (every workout's summary, tags, gear, laps and best
//! efforts), `workouts/<id>.gpx` for each workout with positions, and `originals/` with the files
//! as they were uploaded.

use std::io::Write;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use trackwire_codec::export::{LapSpan, Recording, gpx};
use trackwire_codec::sport_named;

use super::blocking;
use super::export::fixes_of;
use super::users::workouts_of;
use crate::auth::Caller;
use crate::extract::Path;
use crate::views::{ErrorBody, Workout};
use crate::{ApiError, AppState};

/// One workout in `workouts.json`.
#[derive(Serialize)]
struct ArchivedWorkout {
    #[serde(flatten)]
    summary: Workout,
    tags: Vec<String>,
    gear_id: Option<String>,
    laps: Vec<trackwire_pipeline::laps::Lap>,
    best_efforts: std::collections::BTreeMap<String, f64>,
    /// The archive's GPX of it, when it has positions.
    gpx: Option<String>,
    /// The uploaded file, when there is one.
    original: Option<String>,
}

/// A gzipped tar of everything held about the user.
#[utoipa::path(get, operation_id = "export_user", path = "/api/v1/users/{id}/export", tag = "privacy",
    params(("id" = String, Path, description = "User id, or `me`")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The archive", content_type = "application/gzip", body = String),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 429, body = ErrorBody),
    ))]
pub async fn export_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let user = caller.may_act_on(&id)?;
    let mut workouts = workouts_of(&state, &user).await?;
    workouts.sort_by_key(|w| (w.start_time_ms, w.workout_id));
    let originals = match &state.originals {
        Some(originals) => originals.all_of_user(&user).await.map_err(ApiError::internal)?,
        None => Vec::new(),
    };
    let gear = super::gear::gear_views(&state, &user).await?;
    let (store, accounts, u) = (state.store.clone(), state.accounts.clone(), user.clone());
    let archive = blocking(move || {
        let profile = accounts.profile(&u).map_err(ApiError::internal)?.unwrap_or_default();
        let mut files: Vec<(String, Vec<u8>)> = Vec::new();
        let mut listed = Vec::with_capacity(workouts.len());
        for summary in workouts {
            let id = summary.workout_id;
            let streams = store.streams(&id).map_err(ApiError::internal)?;
            let fixes = fixes_of(&streams);
            let gpx_name = fixes.iter().any(|f| f.lat.is_some()).then(|| format!("workouts/{id}.gpx"));
            if let Some(name) = &gpx_name {
                let laps: Vec<LapSpan> = summary
                    .laps
                    .iter()
                    .map(|l| LapSpan { start_ms: l.start_time_ms, end_ms: l.end_time_ms, distance_m: l.distance_m })
                    .collect();
                let title = format!("{} {}", summary.sport, crate::views::iso_instant(summary.start_time_ms));
                let recording = Recording {
                    sport: sport_named(&summary.sport),
                    name: &title,
                    fixes: &fixes,
                    laps: &laps,
                    pauses: &summary.pauses,
                };
                files.push((name.clone(), gpx(&recording)));
            }
            let prefix = format!("{id}.");
            listed.push(ArchivedWorkout {
                tags: accounts.workout_tags(&id).map_err(ApiError::internal)?,
                gear_id: accounts.gear_of_workout(&id).map_err(ApiError::internal)?,
                laps: summary.laps.clone(),
                best_efforts: store
                    .best_efforts(&id)
                    .map_err(ApiError::internal)?
                    .map(|e| e.seconds)
                    .unwrap_or_default(),
                gpx: gpx_name,
                original: originals
                    .iter()
                    .find(|(name, _)| name.starts_with(&prefix))
                    .map(|(name, _)| format!("originals/{name}")),
                summary: summary.into(),
            });
        }
        let mut entries = vec![
            ("profile.json".to_owned(), pretty(&profile)),
            ("gear.json".to_owned(), pretty(&gear)),
            ("workouts.json".to_owned(), pretty(&listed)),
        ];
        entries.extend(files);
        entries.extend(
            originals.into_iter().map(|(name, original)| (format!("originals/{name}"), original.bytes.to_vec())),
        );
        tar_gz(&u, entries).map_err(ApiError::internal)
    })
    .await?;
    let disposition = format!("attachment; filename=\"trackwire-{}.tar.gz\"", safe_name(&user));
    Ok(([(header::CONTENT_TYPE, "application/gzip".to_owned()), (header::CONTENT_DISPOSITION, disposition)], archive)
        .into_response())
}

fn pretty<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec_pretty(value).expect("API views serialise")
}

/// The entries under one directory named after the user, as a gzipped tar.
fn tar_gz(user: &str, entries: Vec<(String, Vec<u8>)>) -> std::io::Result<Vec<u8>> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    let now = chrono::Utc::now().timestamp().max(0) as u64;
    let top = format!("trackwire-{}", safe_name(user));
    for (name, bytes) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(now);
        header.set_cksum();
        tar.append_data(&mut header, format!("{top}/{name}"), &bytes[..])?;
    }
    let mut gz = tar.into_inner()?;
    gz.flush()?;
    gz.finish()
}

/// A user id fit for a file name: letters, digits, `-`, `_` and `.` kept, anything else `_`.
fn safe_name(user: &str) -> String {
    user.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect()
}
