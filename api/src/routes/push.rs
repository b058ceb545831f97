//! `/api/v1/push-subscriptions…`: the caller's push subscriptions. Creating one sends the
//! verification challenge to its callback first; the answer carries the signing secret, once.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;

use super::blocking;
use crate::accounts::StoredSubscription;
use crate::auth::Caller;
use crate::extract::{Json, Path};
use crate::push::verify;
use crate::views::{ErrorBody, NewPushSubscription, PushSubscriptionList, PushSubscriptionView, iso_instant};
use crate::{ApiError, AppState};

/// Longest `verify_token`.
const MAX_VERIFY_TOKEN: usize = 256;

/// Subscribes a callback URL to the caller's workout changes (created, edited, deleted). The
/// callback must first answer the challenge; the signing secret is in this answer only.
#[utoipa::path(post, operation_id = "create_push_subscription", path = "/api/v1/push-subscriptions", tag = "push",
    request_body = NewPushSubscription,
    security(("bearer" = [])),
    responses(
        (status = 201, body = PushSubscriptionView),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 429, body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Json(new): Json<NewPushSubscription>,
) -> Result<(StatusCode, axum::Json<PushSubscriptionView>), ApiError> {
    let url = new.callback_url.trim().to_owned();
    if let Err(reason) = verify::check_url(&url, state.push.allow_private_callbacks) {
        return Err(ApiError::invalid(
            "invalid_callback_url",
            "callback_url",
            url.chars().take(200).collect::<String>(),
            format!("callback_url is refused: {reason}; give an absolute http(s) URL your app answers at"),
        )
        .with_detail("reason", reason));
    }
    if new.verify_token.as_ref().is_some_and(|t| t.len() > MAX_VERIFY_TOKEN) {
        return Err(ApiError::invalid(
            "validation_failed",
            "verify_token",
            "(too long)",
            format!("verify_token must be at most {MAX_VERIFY_TOKEN} characters"),
        )
        .with_detail("max", MAX_VERIFY_TOKEN));
    }
    let limit = state.push.max_subscriptions_per_user;
    let (accounts, user) = (state.accounts.clone(), caller.user_id.clone());
    let held = blocking(move || accounts.push_subscriptions_of(&user)).await?;
    if held.len() >= limit {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "too_many_subscriptions",
            format!("you hold {limit} push subscriptions already, the most allowed: delete one first"),
        )
        .with_detail("limit", limit));
    }

    let (agent, challenged, token) = (crate::push::agent(&state.push), url.clone(), new.verify_token.clone());
    let verified = tokio::task::spawn_blocking(move || verify::challenge(&agent, &challenged, token.as_deref()))
        .await
        .map_err(ApiError::internal)?;
    if let Err(reason) = verified {
        return Err(ApiError::invalid(
            "callback_not_verified",
            "callback_url",
            url,
            format!(
                "{reason}: answer GET ?hub.mode=subscribe&hub.challenge=…&hub.verify_token=… with 200 and \
                 {{\"hub.challenge\": <the challenge>}} within {} s",
                state.push.timeout_secs
            ),
        )
        .with_detail("reason", reason));
    }

    // 256 random bits (two v4 UUIDs' worth of randomness from the OS generator).
    let secret = format!("tws_{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    let subscription = StoredSubscription {
        id: format!("ps{}", uuid::Uuid::new_v4().simple()),
        user_id: caller.user_id.clone(),
        callback_url: url,
        secret: secret.clone(),
        created_ms: Utc::now().timestamp_millis(),
        delivered: 0,
        failed: 0,
        last_failure: None,
        last_failure_ms: None,
    };
    let (accounts, stored) = (state.accounts.clone(), subscription.clone());
    blocking(move || accounts.put_push_subscription(&stored)).await?;
    let mut view = view(subscription, 0);
    view.secret = Some(secret);
    Ok((StatusCode::CREATED, axum::Json(view)))
}

/// The caller's push subscriptions, with what was delivered, what is pending and what failed.
#[utoipa::path(get, operation_id = "list_push_subscriptions", path = "/api/v1/push-subscriptions", tag = "push",
    security(("bearer" = [])),
    responses(
        (status = 200, body = PushSubscriptionList),
        (status = 401, body = ErrorBody), (status = 429, body = ErrorBody),
    ))]
pub async fn list(State(state): State<AppState>, caller: Caller) -> Result<axum::Json<PushSubscriptionList>, ApiError> {
    let (accounts, user) = (state.accounts.clone(), caller.user_id.clone());
    let subscriptions = blocking(move || {
        accounts
            .push_subscriptions_of(&user)?
            .into_iter()
            .map(|s| Ok((accounts.pending_push_deliveries(&s.id)?, s)))
            .collect::<Result<Vec<_>, crate::accounts::AccountsError>>()
    })
    .await?;
    Ok(axum::Json(PushSubscriptionList {
        subscriptions: subscriptions.into_iter().map(|(pending, s)| view(s, pending)).collect(),
    }))
}

/// Ends a push subscription at once: nothing more is sent, pending deliveries included.
#[utoipa::path(delete, operation_id = "delete_push_subscription", path = "/api/v1/push-subscriptions/{id}", tag = "push",
    params(("id" = String, Path, description = "Subscription id")),
    security(("bearer" = [])),
    responses(
        (status = 204),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 429, body = ErrorBody),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let (accounts, user, sid) = (state.accounts.clone(), caller.user_id.clone(), id.clone());
    let deleted = blocking(move || match accounts.push_subscription(&sid)? {
        Some(s) if s.user_id == user => accounts.delete_push_subscription(&sid),
        _ => Ok(false),
    })
    .await?;
    if deleted {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("no push subscription '{id}' of yours")))
    }
}

fn view(s: StoredSubscription, pending: u64) -> PushSubscriptionView {
    PushSubscriptionView {
        id: s.id,
        callback_url: s.callback_url,
        created_at: iso_instant(s.created_ms),
        delivered: s.delivered,
        pending,
        failed: s.failed,
        last_failure: s.last_failure,
        last_failure_at: s.last_failure_ms.map(iso_instant),
        secret: None,
    }
}
