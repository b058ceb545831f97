//! `/api/v1/users/{id}…`: profile, stats, training load, recommendations, erasure. `{id}` may be
//! `me`; another user's id needs the admin scope (403 otherwise).

use std::collections::{BTreeMap, HashMap};

use axum::extract::State;
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::Deserialize;
use trackwire_pipeline::recommend::{self, Recommendation};
use trackwire_pipeline::training_load::{self, CTL_DAYS};
use trackwire_pipeline::{AthleteProfile, WorkoutSummary};
use trackwire_sinks::PublishedEvent;
use utoipa::IntoParams;

use super::blocking;
use crate::auth::Caller;
use crate::extract::{Json, Path, Query};
use crate::views::{
    DistanceRecord, EffortRecord, ErrorBody, Profile, Recommendations, Records, Sex, SportFilter, Stats, StatsBucket,
    TrainingDay, TrainingLoad,
};
use crate::{ApiError, AppState};

/// The athlete profile.
#[utoipa::path(get, operation_id = "get_profile", path = "/api/v1/users/{id}/profile", tag = "athlete",
    params(("id" = String, Path, description = "User id, or `me`")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = Profile),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 429, body = ErrorBody),
    ))]
pub async fn get_profile(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<Profile>, ApiError> {
    let user = caller.may_act_on(&id)?;
    let accounts = state.accounts.clone();
    let profile = blocking(move || accounts.profile(&user)).await?;
    Ok(axum::Json(profile.unwrap_or_default()))
}

/// Replaces the athlete profile; workouts that start afterwards use it for calories and zones.
/// Publishes `UserMetricsUpdated` on the event stream.
#[utoipa::path(put, operation_id = "put_profile", path = "/api/v1/users/{id}/profile", tag = "athlete",
    params(("id" = String, Path, description = "User id, or `me`")),
    request_body = Profile,
    security(("bearer" = [])),
    responses(
        (status = 200, body = Profile),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 429, body = ErrorBody), (status = 503, body = ErrorBody),
    ))]
pub async fn put_profile(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Json(profile): Json<Profile>,
) -> Result<axum::Json<Profile>, ApiError> {
    let user = caller.may_act_on(&id)?;
    validate_profile(&profile, Utc::now().year())?;
    let (accounts, store) = (state.accounts.clone(), state.store.clone());
    let (stored, u) = (profile.clone(), user.clone());
    let athlete = pipeline_profile(&profile, Utc::now().year());
    let shared = athlete.clone();
    blocking(move || {
        accounts.set_profile(&u, &stored).map_err(ApiError::internal)?;
        // Pipeline workers of a scale-out deployment read it from the shared store.
        store.put_athlete_profile(&u, Some(&shared)).map_err(ApiError::internal)
    })
    .await?;
    if let Some(data_path) = &state.ingest.data_path {
        data_path.profiles.set(&user, athlete);
    }
    // Consumers recompute what depends on the athlete's numbers (recommendations, zones).
    let now = Utc::now();
    let event = PublishedEvent {
        event_id: uuid::Uuid::new_v4().hyphenated().to_string(),
        event_type: "UserMetricsUpdated".into(),
        timestamp_ms: now.timestamp_millis(),
        workout_id: None,
        user_id: user.clone(),
        data: serde_json::json!({
            "user_id": user,
            "weight_kg": profile.weight_kg,
            "birth_year": profile.birth_year,
            "sex": profile.sex,
            "hr_max_bpm": profile.hr_max_bpm,
            "hr_rest_bpm": profile.hr_rest_bpm,
            "updated_at": trackwire_sinks::events::iso_ms(now.timestamp_millis()),
        }),
    };
    crate::control::publish(state.control.as_ref(), &state.store, event).await?;
    Ok(axum::Json(profile))
}

fn validate_profile(p: &Profile, this_year: i32) -> Result<(), ApiError> {
    let check = |ok: bool, field: &str, range: &str| {
        if ok {
            Ok(())
        } else {
            let value = serde_json::to_value(p).ok().and_then(|v| v.get(field).cloned()).unwrap_or_default();
            Err(ApiError::invalid("validation_failed", field, value, format!("{field} must be {range}"))
                .with_detail("allowed", range))
        }
    };
    check(p.weight_kg.is_none_or(|w| (20.0..=350.0).contains(&w)), "weight_kg", "between 20 and 350")?;
    check(p.birth_year.is_none_or(|y| (1900..=this_year).contains(&y)), "birth_year", "between 1900 and this year")?;
    check(p.hr_max_bpm.is_none_or(|h| (100.0..=230.0).contains(&h)), "hr_max_bpm", "between 100 and 230")?;
    check(p.hr_rest_bpm.is_none_or(|h| (25.0..=120.0).contains(&h)), "hr_rest_bpm", "between 25 and 120")?;
    if let (Some(rest), Some(max)) = (p.hr_rest_bpm, p.hr_max_bpm) {
        check(rest < max, "hr_rest_bpm", "below hr_max_bpm")?;
    }
    Ok(())
}

/// What the pipeline's stages take from a profile.
pub fn pipeline_profile(p: &Profile, this_year: i32) -> AthleteProfile {
    AthleteProfile {
        weight_kg: p.weight_kg,
        age_years: p.birth_year.map(|y| f64::from(this_year - y)),
        male: p.sex.map(|s| s == Sex::Male),
        hr_max_bpm: p.hr_max_bpm,
        hr_rest_bpm: p.hr_rest_bpm,
    }
}

/// Every workout of the user the API can serve (read store, plus live ones not yet in it).
pub async fn workouts_of(state: &AppState, user: &str) -> Result<Vec<WorkoutSummary>, ApiError> {
    Ok(every_workout_of(state, user).await?.into_iter().filter(|w| state.visible(w)).collect())
}

/// Every workout of the user the read store or the live registry holds, erased ones included.
pub(super) async fn every_workout_of(state: &AppState, user: &str) -> Result<Vec<WorkoutSummary>, ApiError> {
    let store = state.store.clone();
    let u = user.to_owned();
    let mut all: HashMap<_, _> =
        blocking(move || store.all_of_user(&u)).await?.into_iter().map(|w| (w.workout_id, w)).collect();
    for live in state.live().into_iter().flat_map(|live| live.of_user(user)) {
        let newest = match all.remove(&live.workout_id) {
            Some(stored) => super::workouts::newest(Some(live), stored),
            None => live,
        };
        all.insert(newest.workout_id, newest);
    }
    Ok(all.into_values().collect())
}

#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    Week,
    Month,
    Year,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsParams {
    /// `week` (ISO, from Monday), `month` or `year` (default `week`).
    period: Option<Period>,
    /// Only this sport.
    sport: Option<SportFilter>,
}

/// Totals per period and sport, and records.
#[utoipa::path(get, operation_id = "get_stats", path = "/api/v1/users/{id}/stats", tag = "athlete",
    params(("id" = String, Path, description = "User id, or `me`"), StatsParams),
    security(("bearer" = [])),
    responses(
        (status = 200, body = Stats),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 429, body = ErrorBody),
    ))]
pub async fn stats(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(params): Query<StatsParams>,
) -> Result<axum::Json<Stats>, ApiError> {
    let user = caller.may_act_on(&id)?;
    let period = params.period.unwrap_or(Period::Week);
    let workouts: Vec<WorkoutSummary> = workouts_of(&state, &user)
        .await?
        .into_iter()
        .filter(|w| params.sport.is_none_or(|s| s.as_str() == w.sport))
        .collect();
    let mut buckets: BTreeMap<(NaiveDate, String), StatsBucket> = BTreeMap::new();
    for w in &workouts {
        let day = day_of(w.start_time_ms);
        let start = match period {
            Period::Week => day - chrono::Duration::days(i64::from(day.weekday().num_days_from_monday())),
            Period::Month => day.with_day(1).unwrap_or(day),
            Period::Year => NaiveDate::from_ymd_opt(day.year(), 1, 1).unwrap_or(day),
        };
        for sport in [w.sport.as_str(), "all"] {
            let b = buckets.entry((start, sport.to_owned())).or_insert_with(|| StatsBucket {
                period_start: start.to_string(),
                sport: sport.to_owned(),
                count: 0,
                distance_m: 0.0,
                moving_time_s: 0.0,
                elevation_gain_m: 0.0,
                calories_kcal: 0.0,
            });
            b.count += 1;
            b.distance_m += w.distance_m;
            b.moving_time_s += w.moving_time_s;
            b.elevation_gain_m += w.elevation_gain_m.unwrap_or(0.0);
            b.calories_kcal += w.calories_kcal.unwrap_or(0.0);
        }
    }
    let longest = workouts
        .iter()
        .filter(|w| w.distance_m > 0.0)
        .max_by(|a, b| a.distance_m.total_cmp(&b.distance_m))
        .map(|w| DistanceRecord { workout_id: w.workout_id, distance_m: w.distance_m });
    let efforts = super::records::efforts_of(&state, &workouts).await?;
    let fastest = |name: &str| {
        efforts
            .iter()
            .filter_map(|(id, e)| Some((*id, *e.seconds.get(name)?)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(workout_id, seconds)| EffortRecord { workout_id, seconds })
    };
    let records = Records { longest, fastest_5k: fastest("5k"), fastest_10k: fastest("10k") };
    let period_name = match period {
        Period::Week => "week",
        Period::Month => "month",
        Period::Year => "year",
    };
    Ok(axum::Json(Stats {
        user_id: user,
        period: period_name.into(),
        buckets: buckets.into_values().rev().collect(),
        records,
    }))
}

fn day_of(ms: i64) -> NaiveDate {
    DateTime::from_timestamp_millis(ms).unwrap_or_default().date_naive()
}

fn day_number(ms: i64) -> i64 {
    ms.div_euclid(86_400_000)
}

/// The load a workout puts on the athlete: Banister TRIMP when the profile allows it, else
/// Edwards TRIMP (both need heart rate; a workout without either adds no load).
fn trimp(w: &WorkoutSummary) -> Option<f64> {
    w.trimp_banister.or(w.trimp_edwards)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LoadParams {
    /// Days to return, ending today (1–730, default 90).
    days: Option<i64>,
    /// Only this sport's workouts.
    sport: Option<SportFilter>,
}

/// Per-day TRIMP with fitness (CTL), fatigue (ATL), form (TSB) and ACWR.
#[utoipa::path(get, operation_id = "get_training_load", path = "/api/v1/users/{id}/training-load", tag = "athlete",
    params(("id" = String, Path, description = "User id, or `me`"), LoadParams),
    security(("bearer" = [])),
    responses(
        (status = 200, body = TrainingLoad),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 429, body = ErrorBody),
    ))]
pub async fn training_load(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(params): Query<LoadParams>,
) -> Result<axum::Json<TrainingLoad>, ApiError> {
    let user = caller.may_act_on(&id)?;
    let days = params.days.unwrap_or(90);
    if !(1..=730).contains(&days) {
        return Err(ApiError::invalid(
            "invalid_days",
            "days",
            days,
            format!("days must be between 1 and 730, got {days}"),
        )
        .with_detail("min", 1)
        .with_detail("max", 730));
    }
    let workouts = workouts_of(&state, &user).await?;
    let entries: Vec<(i64, f64)> = workouts
        .iter()
        .filter(|w| params.sport.is_none_or(|s| s.as_str() == w.sport))
        .filter_map(|w| Some((day_number(w.start_time_ms), trimp(w)?)))
        .collect();
    let today = day_number(Utc::now().timestamp_millis());
    let series = load_series(&entries, today - days + 1, today);
    Ok(axum::Json(TrainingLoad {
        user_id: user,
        sport: params.sport.map(|s| s.as_str().to_owned()),
        days: series.into_iter().map(TrainingDay::from).collect(),
    }))
}

/// The series over `[first, last]`, computed from far enough back for CTL to have settled.
fn load_series(entries: &[(i64, f64)], first: i64, last: i64) -> Vec<training_load::LoadDay> {
    let earliest = entries.iter().map(|e| e.0).min().unwrap_or(first).min(first);
    let warmup = (first - (4.0 * CTL_DAYS) as i64).max(earliest);
    let full = training_load::series(entries, warmup, last);
    full.into_iter().filter(|d| d.day >= first).collect()
}

/// A workout is a long session from this much moving time: 90 min running (the usual long-run
/// threshold in marathon plans, e.g. Pfitzinger & Douglas, *Advanced Marathoning*, 2009), 3 h
/// cycling, 2 h for other sports.
fn long_session_s(sport: &str) -> f64 {
    match sport {
        "running" => 90.0 * 60.0,
        "cycling" => 3.0 * 3600.0,
        _ => 2.0 * 3600.0,
    }
}

/// Typed recommendations per sport, each with its reason and numbers.
#[utoipa::path(get, operation_id = "get_recommendations", path = "/api/v1/users/{id}/recommendations", tag = "athlete",
    params(("id" = String, Path, description = "User id, or `me`")),
    security(("bearer" = [])),
    responses(
        (status = 200, body = Recommendations),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 429, body = ErrorBody),
    ))]
pub async fn recommendations(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<axum::Json<Recommendations>, ApiError> {
    let user = caller.may_act_on(&id)?;
    let workouts = workouts_of(&state, &user).await?;
    let gear = super::gear::gear_views(&state, &user).await?;
    let today = day_number(Utc::now().timestamp_millis());
    let mut sports: Vec<String> = workouts.iter().map(|w| w.sport.clone()).collect();
    sports.extend(gear.iter().map(|g| g.gear.sport.clone()));
    sports.sort();
    sports.dedup();
    let mut out: Vec<Recommendation> = Vec::new();
    for sport in sports {
        let of_sport: Vec<&WorkoutSummary> = workouts.iter().filter(|w| w.sport == sport).collect();
        let entries: Vec<(i64, f64)> =
            of_sport.iter().filter_map(|w| Some((day_number(w.start_time_ms), trimp(w)?))).collect();
        let series = if entries.is_empty() { Vec::new() } else { load_series(&entries, today - 27, today) };
        let days_since_long = of_sport
            .iter()
            .filter(|w| w.moving_time_s >= long_session_s(&sport))
            .map(|w| today - day_number(w.start_time_ms))
            .min();
        let gear: Vec<recommend::Gear> = gear
            .iter()
            .filter(|g| !g.gear.retired)
            .map(|g| recommend::Gear {
                name: g.gear.name.clone(),
                sport: g.gear.sport.clone(),
                distance_m: g.distance_m,
                replace_after_m: g.gear.replace_after_km * 1000.0,
            })
            .collect();
        out.extend(recommend::recommend(&sport, &series, days_since_long, &gear));
    }
    let day = DateTime::from_timestamp_millis(today * 86_400_000).unwrap_or_default().date_naive().to_string();
    Ok(axum::Json(Recommendations { user_id: user, day, recommendations: out }))
}
