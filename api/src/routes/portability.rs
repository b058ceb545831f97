//! `GET /api/v1/users/{id}/export`: everything Trackwire holds about a user, in one archive they
//! can take elsewhere (GDPR Art. 20, data portability), as Strava's bulk export: a gzipped tar of
//! `profile.json`, `gear.json`, `workouts.json` (every workout's summary, tags, gear, laps and best
//! efforts), `workouts/<id>.gpx` for each workout with positions, and `originals/` with the files
//! as they were uploaded. The archive is written as it is sent ([`crate::streamed`]): a long
//! history costs the server one workout's files at a time.

use std::io::Write;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use trackwire_codec::export::gpx;
use trackwire_pipeline::WorkoutSummary;

use super::blocking;
use super::export::{file_of, fixes_of};
use super::users::workouts_of;
use crate::auth::Caller;
use crate::extract::Path;
use crate::streamed::{ChunkWriter, body_written_by};
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
    // What can fail before the first byte is read here, so it still answers an error status.
    let mut workouts = workouts_of(&state, &user).await?;
    workouts.sort_by_key(|w| (w.start_time_ms, w.workout_id));
    let original_names = match &state.originals {
        Some(originals) => originals.names_of_user(&user).await.map_err(ApiError::internal)?,
        None => Vec::new(),
    };
    let gear = super::gear::gear_views(&state, &user).await?;
    let (accounts, u) = (state.accounts.clone(), user.clone());
    let profile = blocking(move || accounts.profile(&u)).await?.unwrap_or_default();
    // Held until the archive is written: each holds a blocking thread while its client reads.
    let place = state.exports.clone().acquire_owned().await.map_err(ApiError::internal)?;
    let archive = Archive { user: user.clone(), state };
    let body = body_written_by("a user's archive", move |out| {
        let written = archive.write(workouts, original_names, (profile, gear), out);
        drop(place);
        written
    });
    let disposition = format!("attachment; filename=\"trackwire-{}.tar.gz\"", safe_name(&user));
    Ok(([(header::CONTENT_TYPE, "application/gzip".to_owned()), (header::CONTENT_DISPOSITION, disposition)], body)
        .into_response())
}

/// One user's archive, written entry by entry as the client reads it: a workout's GPX and its
/// original are in memory only while they are written, and `workouts.json`, which lists them,
/// comes last.
struct Archive {
    user: String,
    state: AppState,
}

impl Archive {
    /// `workouts` oldest first; `original_names` as [`Originals::names_of_user`] lists them.
    ///
    /// [`Originals::names_of_user`]: trackwire_sinks::originals::Originals::names_of_user
    fn write(
        &self,
        workouts: Vec<WorkoutSummary>,
        original_names: Vec<String>,
        (profile, gear): (impl Serialize, impl Serialize),
        out: &mut ChunkWriter,
    ) -> std::io::Result<()> {
        let mut tar = Entries::new(&self.user, out);
        tar.append("profile.json", &pretty(&profile))?;
        tar.append("gear.json", &pretty(&gear))?;
        // `<workout id>.<format>` by workout id.
        let mut originals: std::collections::HashMap<String, String> = original_names
            .into_iter()
            .map(|name| (name.split_once('.').map_or(name.as_str(), |(id, _)| id).to_owned(), name))
            .collect();
        let mut listed = Vec::with_capacity(workouts.len());
        for summary in workouts {
            let id = summary.workout_id;
            let gpx_name = match self.workout_gpx(&summary).map_err(std::io::Error::other)? {
                Some(file) => {
                    let name = format!("workouts/{id}.gpx");
                    tar.append(&name, &file)?;
                    Some(name)
                }
                None => None,
            };
            let original = match originals.remove(&id.to_string()) {
                Some(name) => Some(self.append_original(&mut tar, name)?),
                None => None,
            };
            listed.push(self.archived(summary, gpx_name, original).map_err(std::io::Error::other)?);
        }
        // Originals whose workout is gone from the list (a multisport file's other sessions
        // erased) are still the user's.
        for name in originals.into_values() {
            self.append_original(&mut tar, name)?;
        }
        tar.append("workouts.json", &pretty(&listed))?;
        tar.finish()
    }

    fn append_original(&self, tar: &mut Entries<'_>, name: String) -> std::io::Result<String> {
        let originals = self.state.originals.as_ref().expect("names come from the originals");
        // A blocking thread of the runtime: it may wait on the runtime's IO.
        let fetched = tokio::runtime::Handle::current().block_on(originals.get_named(&self.user, &name));
        let bytes = fetched.map_err(std::io::Error::other)?;
        let entry = format!("originals/{name}");
        tar.append(&entry, &bytes)?;
        Ok(entry)
    }

    /// The workout as GPX, when it has positions.
    fn workout_gpx(&self, summary: &WorkoutSummary) -> Result<Option<Vec<u8>>, trackwire_sinks::SinkError> {
        let fixes = fixes_of(&self.state.store.streams(&summary.workout_id)?);
        Ok(fixes.iter().any(|f| f.lat.is_some()).then(|| file_of(summary, &fixes, gpx)))
    }

    fn archived(
        &self,
        summary: WorkoutSummary,
        gpx: Option<String>,
        original: Option<String>,
    ) -> Result<ArchivedWorkout, Box<dyn std::error::Error + Send + Sync>> {
        let id = summary.workout_id;
        Ok(ArchivedWorkout {
            tags: self.state.accounts.workout_tags(&id)?,
            gear_id: self.state.accounts.gear_of_workout(&id)?,
            laps: summary.laps.clone(),
            best_efforts: self.state.store.best_efforts(&id)?.map(|e| e.seconds).unwrap_or_default(),
            gpx,
            original,
            summary: summary.into(),
        })
    }
}

fn pretty<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec_pretty(value).expect("API views serialise")
}

/// A gzipped tar whose entries sit under one directory named after the user.
struct Entries<'a> {
    tar: tar::Builder<flate2::write::GzEncoder<&'a mut ChunkWriter>>,
    top: String,
    mtime: u64,
}

impl<'a> Entries<'a> {
    fn new(user: &str, out: &'a mut ChunkWriter) -> Self {
        let gz = flate2::write::GzEncoder::new(out, flate2::Compression::default());
        Entries {
            tar: tar::Builder::new(gz),
            top: format!("trackwire-{}", safe_name(user)),
            mtime: chrono::Utc::now().timestamp().max(0) as u64,
        }
    }

    fn append(&mut self, name: &str, bytes: &[u8]) -> std::io::Result<()> {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(self.mtime);
        header.set_cksum();
        self.tar.append_data(&mut header, format!("{}/{name}", self.top), bytes)
    }

    fn finish(self) -> std::io::Result<()> {
        self.tar.into_inner()?.finish()?.flush()
    }
}

/// A user id fit for a file name: letters, digits, `-`, `_` and `.` kept, anything else `_`.
fn safe_name(user: &str) -> String {
    user.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect()
}
