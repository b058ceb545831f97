//! `POST /api/v1/uploads`: a GPX, TCX or FIT file (optionally gzipped), or a file of
//! length-prefixed wire batches, from the mobile SDK's offline sessions. Answers `202` with a status
//! resource at once; the file is read, deduplicated and made durable in the background.
//!
//! Idempotency: a retry with the same `external_id` gets the same upload back (unless that one
//! failed, which is tried again). Duplicates: the workout id is derived from the user, the first
//! fix's time and the sport, so the same recording uploaded twice (even as another format) maps to
//! the same workout; it and any workout of the user starting within a minute of it are
//! reported as `duplicate`, never stored twice. A multisport file (a triathlon FIT) becomes one
//! workout per session, each with its session's sport.

use axum::extract::State;
use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::http::{StatusCode, header};
use bytes::Bytes;
use chrono::{SecondsFormat, Utc};
use trackwire_codec::import::{Imported, Packed, gunzip, import_bytes};
use trackwire_codec::{BatchData, DecodeLimits, WorkoutId, decode_batch, encode_batch};
use trackwire_ingest::DeviceToken;
use trackwire_sinks::read_store::ListQuery;

use super::blocking;
use crate::auth::Caller;
use crate::extract::Path;
use crate::views::{ErrorBody, Upload, UploadStatus};
use crate::{ApiError, AppState};

/// Workout ids of uploads are UUIDv5 in this namespace.
/// Samples per wire batch when splitting a file.
const BATCH_SAMPLES: usize = 1000;
/// Two workouts of one athlete starting this close are the same recording (whatever sport each
/// file claims: GPX often has none).
const DUPLICATE_START_WINDOW_MS: i64 = 60_000;

/// The multipart form (for the OpenAPI document).
#[allow(dead_code)]
#[derive(utoipa::ToSchema)]
pub struct UploadForm {
    /// The file: GPX, TCX, FIT, or length-prefixed batches (4-byte big-endian length, then a
    /// FlatBuffers batch, repeated); gzip allowed.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    /// `gpx`, `tcx`, `fit` or `batches`, optionally with `.gz`; detected from the content when
    /// absent (`batches` must be given).
    data_type: Option<String>,
    /// The client's id for this upload: a retry with the same id is not processed twice.
    external_id: Option<String>,
}

/// Uploads a recorded workout file.
#[utoipa::path(post, operation_id = "create_upload", path = "/api/v1/uploads", tag = "uploads",
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    security(("bearer" = [])),
    responses(
        (status = 202, body = Upload, headers(("location" = String, description = "The upload's status resource"))),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 429, body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<(StatusCode, [(header::HeaderName, String); 1], axum::Json<Upload>), ApiError> {
    let mut multipart = multipart.map_err(|e| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not_multipart",
            format!("send the file as multipart/form-data with a 'file' part: {}", e.body_text()),
        )
        .with_details(serde_json::json!({ "field": "Content-Type", "allowed": ["multipart/form-data"] }))
    })?;
    let (mut file, mut file_name, mut data_type, mut external_id) = (None, None, None, None);
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => return Err(multipart_error(e)),
        };
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "file" => {
                file_name = field.file_name().map(str::to_owned);
                file = Some(field.bytes().await.map_err(multipart_error)?);
            }
            "data_type" => data_type = Some(field.text().await.map_err(multipart_error)?.trim().to_ascii_lowercase()),
            "external_id" => external_id = Some(field.text().await.map_err(multipart_error)?.trim().to_owned()),
            _ => {} // unknown parts are ignored, as Strava does
        }
    }
    let file = file.filter(|f| !f.is_empty()).ok_or_else(|| {
        ApiError::bad_request("missing_file", "the form has no non-empty 'file' part: attach the GPX, TCX or FIT file")
            .with_details(serde_json::json!({ "field": "file" }))
    })?;
    if let Some(t) = &data_type
        && !["gpx", "tcx", "fit", "batches"].contains(&t.trim_end_matches(".gz"))
    {
        return Err(ApiError::invalid(
            "validation_failed",
            "data_type",
            t.as_str(),
            format!("data_type '{t}' is not gpx, tcx, fit or batches (optionally .gz)"),
        )
        .with_detail("allowed", ["gpx", "tcx", "fit", "batches", "gpx.gz", "tcx.gz", "fit.gz", "batches.gz"]));
    }
    let external_id = external_id.filter(|e| !e.is_empty());
    if external_id.as_ref().is_some_and(|e| e.len() > 256) {
        return Err(ApiError::invalid(
            "validation_failed",
            "external_id",
            external_id.as_deref().unwrap_or_default(),
            "external_id is at most 256 characters",
        )
        .with_detail("max", 256));
    }
    if let Some(external) = external_id.clone() {
        let (accounts, user) = (state.accounts.clone(), caller.user_id.clone());
        if let Some(existing) = blocking(move || accounts.upload_by_external_id(&user, &external)).await?
            && existing.status != UploadStatus::Error
        {
            return Ok(accepted(existing));
        }
    }
    let upload = Upload {
        id: format!("up{}", uuid::Uuid::new_v4().simple()),
        user_id: caller.user_id.clone(),
        external_id,
        file_name,
        data_type: data_type.clone(),
        status: UploadStatus::Processing,
        workout_id: None,
        workout_ids: Vec::new(),
        duplicate_of: None,
        error: None,
        samples: 0,
        created_at: Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
    };
    let (accounts, stored) = (state.accounts.clone(), upload.clone());
    blocking(move || accounts.put_upload(&stored)).await?;
    tokio::spawn(process(state, upload.clone(), file, data_type));
    Ok(accepted(upload))
}

fn accepted(upload: Upload) -> (StatusCode, [(header::HeaderName, String); 1], axum::Json<Upload>) {
    let location = format!("/api/v1/uploads/{}", upload.id);
    (StatusCode::ACCEPTED, [(header::LOCATION, location)], axum::Json(upload))
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    let status = e.status();
    let code = if status == StatusCode::PAYLOAD_TOO_LARGE { "upload_too_large" } else { "bad_multipart" };
    ApiError::new(status, code, format!("the upload could not be read: {}", e.body_text()))
        .with_details(serde_json::json!({ "field": "body" }))
}

/// An upload's status.
#[utoipa::path(get, operation_id = "get_upload", path = "/api/v1/uploads/{id}", tag = "uploads",
    params(("id" = String, Path, description = "Upload id")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = Upload),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 429, body = ErrorBody),
    ))]
pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<Upload>, ApiError> {
    let accounts = state.accounts.clone();
    let upload_id = id.clone();
    match blocking(move || accounts.upload(&upload_id)).await? {
        Some(upload) if caller.may_see(&upload.user_id) => Ok(axum::Json(upload)),
        _ => Err(ApiError::not_found(format!("no upload '{id}' of yours"))),
    }
}

/// Reads, deduplicates and stores the file; records the outcome on the upload.
async fn process(state: AppState, mut upload: Upload, file: Bytes, data_type: Option<String>) {
    let started = std::time::Instant::now();
    let outcome = store_file(&state, &upload.user_id, file, data_type.as_deref()).await;
    match outcome {
        Ok(Stored { workout_ids, samples, duplicate_of, data_type }) => {
            upload.workout_id = workout_ids.first().copied();
            upload.workout_ids = workout_ids;
            upload.samples = samples;
            upload.data_type = Some(data_type);
            upload.status = if duplicate_of.is_some() { UploadStatus::Duplicate } else { UploadStatus::Ready };
            upload.duplicate_of = duplicate_of;
        }
        Err(message) => {
            upload.status = UploadStatus::Error;
            upload.error = Some(message);
        }
    }
    let status = match upload.status {
        UploadStatus::Duplicate => "duplicate",
        UploadStatus::Error => "error",
        UploadStatus::Ready | UploadStatus::Processing => "ready",
    };
    state.ingestor().metrics().observe_upload(status, started.elapsed());
    tracing::info!(upload = %upload.id, status = ?upload.status, workout = ?upload.workout_id.map(|w| w.to_string()), "upload processed");
    let accounts = state.accounts.clone();
    let id = upload.id.clone();
    if let Err(err) = blocking(move || accounts.put_upload(&upload)).await {
        tracing::error!(upload = %id, ?err, "could not record the upload's outcome");
    }
}

struct Stored {
    /// One per session of the file (most files have one), in time order.
    workout_ids: Vec<WorkoutId>,
    samples: u64,
    duplicate_of: Option<WorkoutId>,
    data_type: String,
}

/// A file read and parsed, ready to be stored.
enum Decoded {
    /// Wire batches, as the file holds them.
    Batches(Bytes),
    /// A recording, and the file it was read from (kept as the original).
    File { imported: Box<Imported>, original: Bytes },
}

/// Expands (when gzipped) and parses the file on a blocking thread: both take CPU time in
/// proportion to the file, which the async workers serving every other request must not pay.
fn decode(file: Bytes, gzipped: bool, batches: bool, max_bytes: usize) -> Result<Decoded, String> {
    let packed = if batches { Packed::Batches } else { Packed::File };
    let bytes = if gzipped { Bytes::from(gunzip(&file, packed, max_bytes).map_err(|e| e.to_string())?) } else { file };
    if batches {
        return Ok(Decoded::Batches(bytes));
    }
    let imported = import_bytes(&bytes).map_err(|e| e.to_string())?;
    Ok(Decoded::File { imported: Box::new(imported), original: bytes })
}

async fn store_file(state: &AppState, user: &str, file: Bytes, data_type: Option<&str>) -> Result<Stored, String> {
    // An import holds its permit from expanding the file until its batches are durable, so the
    // memory imports take is bounded by the permits, however many uploads arrive at once.
    let _permit = state
        .uploads
        .imports
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| "the server is shutting down: upload again".to_owned())?;
    let gzipped = file.starts_with(&[0x1f, 0x8b]) || data_type.is_some_and(|t| t.ends_with(".gz"));
    let batches = data_type.is_some_and(|t| t.trim_end_matches(".gz") == "batches");
    let max_bytes = state.uploads.max_bytes;
    let decoded = tokio::task::spawn_blocking(move || decode(file, gzipped, batches, max_bytes))
        .await
        .map_err(|e| format!("the import failed: {e}"))??;
    let binding = DeviceToken { token: String::new(), device_id: "*".into(), user_id: Some(user.to_owned()) };
    let (imported, original) = match decoded {
        Decoded::Batches(bytes) => return store_batches(state, &binding, bytes).await,
        Decoded::File { imported, original } => (*imported, original),
    };
    let kind = format!("{:?}", imported.format).to_ascii_lowercase();
    // A multisport file is one workout per session; the upload reports them all.
    let mut stored = Stored { workout_ids: Vec::new(), samples: 0, duplicate_of: None, data_type: kind };
    let mut all_duplicates = true;
    for part in imported.into_sessions() {
        let workout_id = part.workout_id(user);
        stored.workout_ids.push(workout_id);
        let start = part.fixes.iter().find_map(|f| f.time_ms);
        if let Some(existing) = find_duplicate(state, user, workout_id, start).await? {
            stored.duplicate_of.get_or_insert(existing);
            continue;
        }
        // Not stored: what a front remembers of its batches is from before a deletion (perhaps
        // through another replica), or a copy still on its way, which the workers' dedup drops.
        state.ingestor().log().forget_remembered_acks(workout_id);
        // The file is kept before its batches are stored: an upload that fails here stored
        // nothing, and a retry keeps it.
        if let Some(originals) = &state.originals {
            originals
                .put(user, &workout_id, &stored.data_type, original.clone())
                .await
                .map_err(|e| format!("the file could not be kept ({e}); upload again"))?;
        }
        let device = part.device_model.clone().unwrap_or_else(|| "upload".into());
        let batches: Vec<BatchData> = part.to_batches(workout_id, &device, user, BATCH_SAMPLES);
        let payloads: Vec<Bytes> = batches.iter().map(|b| Bytes::from(encode_batch(b))).collect();
        let outcome = submit_all(state, &binding, payloads).await?;
        stored.samples += outcome.samples;
        if outcome.all_duplicates {
            stored.duplicate_of.get_or_insert(workout_id);
        } else {
            all_duplicates = false;
        }
    }
    if !all_duplicates {
        stored.duplicate_of = None;
    }
    Ok(stored)
}

async fn find_duplicate(
    state: &AppState,
    user: &str,
    workout_id: WorkoutId,
    start: Option<i64>,
) -> Result<Option<WorkoutId>, String> {
    // An erased user's workout the shards still hold is on its way out, not a copy to report.
    if state.live().and_then(|live| live.get(&workout_id)).is_some_and(|summary| state.visible(&summary)) {
        return Ok(Some(workout_id));
    }
    let store = state.store.clone();
    let user = user.to_owned();
    tokio::task::spawn_blocking(move || {
        if store.get(&workout_id)?.is_some() {
            return Ok(Some(workout_id));
        }
        let Some(start) = start else { return Ok(None) };
        let query = ListQuery {
            limit: 10,
            start_from_ms: Some(start - DUPLICATE_START_WINDOW_MS),
            start_before_ms: Some(start + DUPLICATE_START_WINDOW_MS + 1),
            ..ListQuery::default()
        };
        Ok(store.list(&user, &query)?.0.first().map(|w| w.workout_id))
    })
    .await
    .map_err(|e| format!("duplicate check failed: {e}"))?
    .map_err(|e: trackwire_sinks::SinkError| format!("duplicate check failed: {e}; upload again"))
}

struct Submitted {
    samples: u64,
    all_duplicates: bool,
}

/// Verifies and appends every batch in order, and waits until all are durable.
async fn submit_all(state: &AppState, binding: &DeviceToken, payloads: Vec<Bytes>) -> Result<Submitted, String> {
    let mut pending = Vec::with_capacity(payloads.len());
    for (i, payload) in payloads.into_iter().enumerate() {
        let verified =
            state.ingestor().verify(payload, binding).map_err(|r| format!("batch {i} was refused: {}", r.error))?;
        pending.push(state.ingestor().submit(verified).await.map_err(|e| format!("batch {i}: {e}"))?);
    }
    let mut out = Submitted { samples: 0, all_duplicates: true };
    for (i, durable) in pending.into_iter().enumerate() {
        let accepted = durable.await.map_err(|e| format!("batch {i} was not stored: {e}; upload again"))?;
        state.ingestor().count_ack(&accepted);
        out.all_duplicates &= accepted.duplicate;
        if !accepted.duplicate {
            out.samples += accepted.samples as u64;
        }
    }
    Ok(out)
}

async fn store_batches(state: &AppState, binding: &DeviceToken, bytes: Bytes) -> Result<Stored, String> {
    let mut payloads = Vec::new();
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        let Some((len, tail)) = rest.split_first_chunk::<4>() else {
            return Err(format!("batch {} is cut off in its length prefix", payloads.len()));
        };
        let len = u32::from_be_bytes(*len) as usize;
        if tail.len() < len {
            return Err(format!("batch {} says {len} bytes but {} remain", payloads.len(), tail.len()));
        }
        let start = bytes.len() - tail.len();
        payloads.push(bytes.slice(start..start + len));
        rest = &tail[len..];
    }
    let first = payloads.first().ok_or(
        "the file holds no batches: a batches file is, repeated, a 4-byte big-endian length and then one FlatBuffers batch",
    )?;
    let workout_id = decode_batch(first, &DecodeLimits::default())
        .map_err(|e| format!("batch 0 is not a Trackwire batch: {e}"))?
        .workout_id();
    let outcome = submit_all(state, binding, payloads).await?;
    Ok(Stored {
        workout_ids: vec![workout_id],
        samples: outcome.samples,
        duplicate_of: outcome.all_duplicates.then_some(workout_id),
        data_type: "batches".into(),
    })
}
