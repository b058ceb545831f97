//! `/api/v1/users/{id}/gear…`: shoes and bikes, the distance of the workouts they were used in,
//! and when to replace them (the seed's equipment service).

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{SecondsFormat, Utc};

use super::blocking;
use super::users::workouts_of;
use crate::auth::Caller;
use crate::extract::{Json, Path};
use crate::views::{ErrorBody, Gear, GearKind, GearList, GearUpdate, GearView, NewGear};
use crate::{ApiError, AppState};

/// Replacement defaults, km: running shoes 500–800 km (the range shoe makers and the American
/// Academy of Podiatric Sports Medicine give; we take the top), a bike's chain and drivetrain
/// about 5000 km.
fn default_replace_after_km(kind: GearKind) -> f64 {
    match kind {
        GearKind::Shoes => 800.0,
        GearKind::Bike => 5000.0,
        GearKind::Other => 1000.0,
    }
}

/// The user's gear with distance from the workouts assigned to it.
pub async fn gear_views(state: &AppState, user: &str) -> Result<Vec<GearView>, ApiError> {
    let accounts = state.accounts.clone();
    let u = user.to_owned();
    let gear = blocking(move || accounts.gear_of_user(&u)).await?;
    if gear.is_empty() {
        return Ok(Vec::new());
    }
    let workouts = workouts_of(state, user).await?;
    let accounts = state.accounts.clone();
    let assigned = blocking(move || {
        workouts
            .into_iter()
            .map(|w| Ok((accounts.gear_of_workout(&w.workout_id)?, w.distance_m)))
            .collect::<Result<Vec<_>, crate::accounts::AccountsError>>()
    })
    .await?;
    Ok(gear
        .into_iter()
        .map(|g| {
            let mine = assigned.iter().filter(|(id, _)| id.as_deref() == Some(g.id.as_str()));
            let (workouts, distance_m) = mine.fold((0u64, 0.0), |(n, d), (_, m)| (n + 1, d + m));
            GearView { replacement_due: distance_m >= g.replace_after_km * 1000.0, distance_m, workouts, gear: g }
        })
        .collect())
}

/// The user's gear.
#[utoipa::path(get, operation_id = "list_gear", path = "/api/v1/users/{id}/gear", tag = "gear",
    params(("id" = String, Path, description = "User id, or `me`")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = GearList),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 429, body = ErrorBody),
    ))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<GearList>, ApiError> {
    let user = caller.may_act_on(&id)?;
    Ok(axum::Json(GearList { gear: gear_views(&state, &user).await? }))
}

/// Adds a piece of gear.
#[utoipa::path(post, operation_id = "create_gear", path = "/api/v1/users/{id}/gear", tag = "gear",
    params(("id" = String, Path, description = "User id, or `me`")),
    request_body = NewGear,
    security(("bearer" = [])),
    responses(
        (status = 201, body = GearView),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 429, body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(new): Json<NewGear>,
) -> Result<(StatusCode, axum::Json<GearView>), ApiError> {
    let user = caller.may_act_on(&id)?;
    let name = new.name.trim();
    if name.is_empty() || name.len() > 200 {
        return Err(name_error(name));
    }
    let replace_after_km = new.replace_after_km.unwrap_or_else(|| default_replace_after_km(new.kind));
    check_km(replace_after_km)?;
    let sport = new.sport.unwrap_or_else(|| {
        match new.kind {
            GearKind::Shoes => "running",
            GearKind::Bike => "cycling",
            GearKind::Other => "other",
        }
        .to_owned()
    });
    let gear = Gear {
        id: format!("g{}", uuid::Uuid::new_v4().simple()),
        name: name.to_owned(),
        kind: new.kind,
        sport,
        replace_after_km,
        retired: false,
        created_at: Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
    };
    let accounts = state.accounts.clone();
    let stored = gear.clone();
    blocking(move || accounts.put_gear(&user, &stored)).await?;
    Ok((StatusCode::CREATED, axum::Json(GearView { gear, distance_m: 0.0, workouts: 0, replacement_due: false })))
}

fn check_km(km: f64) -> Result<(), ApiError> {
    if (1.0..=1_000_000.0).contains(&km) {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "validation_failed",
            "replace_after_km",
            km,
            "replace_after_km must be between 1 and 1,000,000",
        )
        .with_detail("min", 1)
        .with_detail("max", 1_000_000))
    }
}

fn name_error(name: &str) -> ApiError {
    ApiError::invalid("validation_failed", "name", name, "name must be 1–200 characters").with_detail("max", 200)
}

async fn find(state: &AppState, user: &str, gear_id: &str) -> Result<GearView, ApiError> {
    gear_views(state, user)
        .await?
        .into_iter()
        .find(|g| g.gear.id == gear_id)
        .ok_or_else(|| ApiError::not_found(format!("no gear '{gear_id}': list yours with GET /api/v1/users/me/gear")))
}

/// One piece of gear.
#[utoipa::path(get, operation_id = "get_gear", path = "/api/v1/users/{id}/gear/{gear_id}", tag = "gear",
    params(("id" = String, Path, description = "User id, or `me`"), ("gear_id" = String, Path)),
    security(("bearer" = [])),
    responses(
        (status = 200, body = GearView),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 429, body = ErrorBody),
    ))]
pub async fn get_one(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, gear_id)): Path<(String, String)>,
) -> Result<axum::Json<GearView>, ApiError> {
    let user = caller.may_act_on(&id)?;
    Ok(axum::Json(find(&state, &user, &gear_id).await?))
}

/// Renames, retires or changes the replacement distance of a piece of gear.
#[utoipa::path(patch, operation_id = "update_gear", path = "/api/v1/users/{id}/gear/{gear_id}", tag = "gear",
    params(("id" = String, Path, description = "User id, or `me`"), ("gear_id" = String, Path)),
    request_body = GearUpdate,
    security(("bearer" = [])),
    responses(
        (status = 200, body = GearView),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 429, body = ErrorBody),
    ))]
pub async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, gear_id)): Path<(String, String)>,
    Json(change): Json<GearUpdate>,
) -> Result<axum::Json<GearView>, ApiError> {
    let user = caller.may_act_on(&id)?;
    let mut gear = find(&state, &user, &gear_id).await?.gear;
    if let Some(name) = change.name {
        let name = name.trim();
        if name.is_empty() || name.len() > 200 {
            return Err(name_error(name));
        }
        gear.name = name.to_owned();
    }
    if let Some(km) = change.replace_after_km {
        check_km(km)?;
        gear.replace_after_km = km;
    }
    if let Some(retired) = change.retired {
        gear.retired = retired;
    }
    let accounts = state.accounts.clone();
    let u = user.clone();
    blocking(move || accounts.put_gear(&u, &gear)).await?;
    Ok(axum::Json(find(&state, &user, &gear_id).await?))
}

/// Deletes a piece of gear (its workouts keep their distance, unassigned).
#[utoipa::path(delete, operation_id = "delete_gear", path = "/api/v1/users/{id}/gear/{gear_id}", tag = "gear",
    params(("id" = String, Path, description = "User id, or `me`"), ("gear_id" = String, Path)),
    security(("bearer" = [])),
    responses(
        (status = 204),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 429, body = ErrorBody),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, gear_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let user = caller.may_act_on(&id)?;
    let accounts = state.accounts.clone();
    let g = gear_id.clone();
    if blocking(move || accounts.delete_gear(&user, &g)).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("no gear '{gear_id}'")))
    }
}
