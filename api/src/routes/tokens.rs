//! `/api/v1/users/{id}/device-tokens…`: ingest tokens issued per user. A token binds one device to
//! its owner: `/v1/ingest` and the QUIC hello refuse batches for any other device or user.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{SecondsFormat, Utc};

use super::blocking;
use crate::auth::Caller;
use crate::extract::{Json, Path};
use crate::views::{DeviceTokenList, DeviceTokenView, ErrorBody, IssuedToken, NewDeviceToken};
use crate::{ApiError, AppState};

/// Issues a device token; the secret is in this answer only.
#[utoipa::path(post, operation_id = "issue_device_token", path = "/api/v1/users/{id}/device-tokens", tag = "devices",
    params(("id" = String, Path, description = "User id, or `me`")),
    request_body = NewDeviceToken,
    security(("bearer" = [])),
    responses(
        (status = 201, body = DeviceTokenView),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 429, body = ErrorBody),
    ))]
pub async fn issue(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(new): Json<NewDeviceToken>,
) -> Result<(StatusCode, axum::Json<DeviceTokenView>), ApiError> {
    let user = caller.may_act_on(&id)?;
    let device = new.device_id.trim();
    if device.is_empty() || device.len() > 128 || device == "*" {
        return Err(ApiError::invalid(
            "validation_failed",
            "device_id",
            device,
            "device_id must be 1–128 characters and not '*'",
        )
        .with_detail("max", 128));
    }
    // 256 random bits (two v4 UUIDs' worth of randomness from the OS generator).
    let secret = format!("twd_{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    let issued = IssuedToken {
        id: format!("dt{}", uuid::Uuid::new_v4().simple()),
        token: secret.clone(),
        user_id: user,
        device_id: device.to_owned(),
        created_at: Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
    };
    let accounts = state.accounts.clone();
    let stored = issued.clone();
    blocking(move || accounts.put_device_token(&stored)).await?;
    state.ingestor().tokens().insert(issued.binding());
    Ok((
        StatusCode::CREATED,
        axum::Json(DeviceTokenView {
            id: issued.id,
            device_id: issued.device_id,
            created_at: issued.created_at,
            token: Some(secret),
        }),
    ))
}

/// The user's device tokens (without their secrets).
#[utoipa::path(get, operation_id = "list_device_tokens", path = "/api/v1/users/{id}/device-tokens", tag = "devices",
    params(("id" = String, Path, description = "User id, or `me`")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = DeviceTokenList),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 429, body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<DeviceTokenList>, ApiError> {
    let user = caller.may_act_on(&id)?;
    let accounts = state.accounts.clone();
    let tokens = blocking(move || accounts.device_tokens()).await?;
    let tokens = tokens
        .into_iter()
        .filter(|t| t.user_id == user)
        .map(|t| DeviceTokenView { id: t.id, device_id: t.device_id, created_at: t.created_at, token: None })
        .collect();
    Ok(axum::Json(DeviceTokenList { tokens }))
}

/// Revokes a device token at once (new batches with it get 401).
#[utoipa::path(delete, operation_id = "revoke_device_token", path = "/api/v1/users/{id}/device-tokens/{token_id}", tag = "devices",
    params(("id" = String, Path, description = "User id, or `me`"), ("token_id" = String, Path)),
    security(("bearer" = [])),
    responses(
        (status = 204),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 429, body = ErrorBody),
    ))]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, token_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let user = caller.may_act_on(&id)?;
    let accounts = state.accounts.clone();
    let tid = token_id.clone();
    let owned = blocking(move || {
        let tokens = accounts.device_tokens()?;
        match tokens.into_iter().find(|t| t.id == tid && t.user_id == user) {
            Some(t) => accounts.delete_device_token(&t.id),
            None => Ok(None),
        }
    })
    .await?;
    match owned {
        Some(token) => {
            state.ingestor().tokens().remove(&token.token);
            Ok(StatusCode::NO_CONTENT)
        }
        None => Err(ApiError::not_found(format!("no device token '{token_id}' of this user"))),
    }
}
