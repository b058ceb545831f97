//! `/api/v1/users/{id}/records` and the personal records of one workout: the fastest time over
//! each best-effort distance and the longest workout, per sport.

use std::collections::BTreeMap;

use axum::extract::State;
use serde::Deserialize;
use trackwire_codec::WorkoutId;
use trackwire_pipeline::WorkoutSummary;
use trackwire_sinks::read_store::{BestEfforts, EFFORT_DISTANCES};
use utoipa::IntoParams;

use super::blocking;
use super::users::workouts_of;
use crate::auth::Caller;
use crate::extract::{Path, Query};
use crate::views::{
    BestEffortRecord, DistanceRecord, ErrorBody, PersonalRecords, SportFilter, SportRecords, iso_instant,
};
use crate::{ApiError, AppState};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RecordsParams {
    /// Only this sport.
    sport: Option<SportFilter>,
}

/// Per sport: the fastest time over each best-effort distance (400 m, 1 km, 1 mile, 5 km, 10 km,
/// half marathon, marathon) and the longest workout.
#[utoipa::path(get, operation_id = "get_records", path = "/api/v1/users/{id}/records", tag = "athlete",
    params(("id" = String, Path, description = "User id, or `me`"), RecordsParams),
    security(("bearer" = [])),
    responses(
        (status = 200, body = PersonalRecords),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 429, body = ErrorBody),
    ))]
pub async fn records(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(params): Query<RecordsParams>,
) -> Result<axum::Json<PersonalRecords>, ApiError> {
    let user = caller.may_act_on(&id)?;
    let workouts: Vec<WorkoutSummary> = workouts_of(&state, &user)
        .await?
        .into_iter()
        .filter(|w| params.sport.is_none_or(|s| s.as_str() == w.sport))
        .collect();
    let efforts = efforts_of(&state, &workouts).await?;
    let mut by_sport: BTreeMap<&str, Vec<&WorkoutSummary>> = BTreeMap::new();
    for w in &workouts {
        by_sport.entry(w.sport.as_str()).or_default().push(w);
    }
    let sports = by_sport
        .into_iter()
        .map(|(sport, workouts)| SportRecords {
            sport: sport.to_owned(),
            longest: workouts
                .iter()
                .filter(|w| w.distance_m > 0.0)
                .max_by(|a, b| a.distance_m.total_cmp(&b.distance_m))
                .map(|w| DistanceRecord { workout_id: w.workout_id, distance_m: w.distance_m }),
            best_efforts: EFFORT_DISTANCES
                .iter()
                .filter_map(|&(name, distance_m)| {
                    // Ties go to the earlier workout: it set the record first.
                    let (w, seconds) = workouts
                        .iter()
                        .filter_map(|w| Some((*w, *efforts.get(&w.workout_id)?.seconds.get(name)?)))
                        .min_by(|a, b| a.1.total_cmp(&b.1).then(a.0.start_time_ms.cmp(&b.0.start_time_ms)))?;
                    Some(BestEffortRecord {
                        effort: name.to_owned(),
                        distance_m,
                        seconds,
                        workout_id: w.workout_id,
                        start_time: iso_instant(w.start_time_ms),
                    })
                })
                .collect(),
        })
        .collect();
    Ok(axum::Json(PersonalRecords { user_id: user, sports }))
}

/// The best efforts of each of `workouts` that has them (those that ended), by workout.
pub async fn efforts_of(
    state: &AppState,
    workouts: &[WorkoutSummary],
) -> Result<BTreeMap<WorkoutId, BestEfforts>, ApiError> {
    let store = state.store.clone();
    let ids: Vec<WorkoutId> = workouts.iter().filter(|w| w.status.is_ended()).map(|w| w.workout_id).collect();
    Ok(blocking(move || store.best_efforts_of(&ids)).await?.into_iter().collect())
}

/// The efforts in which `workout` was a personal record when it was done: faster than every
/// earlier workout of the same sport (Strava's PR; a tie sets no record).
pub fn personal_records(
    workout: &WorkoutSummary,
    own: &BestEfforts,
    others: &[WorkoutSummary],
    efforts: &BTreeMap<WorkoutId, BestEfforts>,
) -> Vec<String> {
    let earlier: Vec<&BestEfforts> = others
        .iter()
        .filter(|w| w.workout_id != workout.workout_id && w.sport == workout.sport)
        .filter(|w| (w.start_time_ms, w.workout_id) < (workout.start_time_ms, workout.workout_id))
        .filter_map(|w| efforts.get(&w.workout_id))
        .collect();
    EFFORT_DISTANCES
        .iter()
        .filter_map(|&(name, _)| {
            let seconds = *own.seconds.get(name)?;
            earlier.iter().filter_map(|e| e.seconds.get(name)).all(|before| seconds < *before).then(|| name.to_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workout(id: u8, start_ms: i64, sport: &str) -> WorkoutSummary {
        serde_json::from_value(serde_json::json!({
            "workout_id": WorkoutId([id; 16]), "user_id": "ada", "device_id": "w", "device_model": null,
            "sport": sport, "status": trackwire_pipeline::WorkoutStatus::Completed, "start_time_ms": start_ms,
            "end_time_ms": start_ms + 1, "elapsed_s": 0.0, "timer_s": 0.0, "samples": 0, "batches": 0,
            "last_seq": 0, "distance_m": 0.0, "moving_time_s": 0.0, "elevation_gain_m": null,
            "elevation_loss_m": null, "max_speed_mps": null, "rejected_fixes": 0, "hr_zone_seconds": null,
            "trimp_edwards": null, "trimp_banister": null, "calories_kcal": null, "calories_method": null,
            "splits": [], "device_totals": null, "heart_rate_avg_bpm": null, "heart_rate_max_bpm": null,
            "first_lsn": 0, "last_lsn": 0
        }))
        .expect("a summary")
    }

    fn efforts(pairs: &[(&str, f64)]) -> BestEfforts {
        BestEfforts { seconds: pairs.iter().map(|(n, s)| ((*n).to_owned(), *s)).collect() }
    }

    #[test]
    fn a_record_is_faster_than_every_earlier_workout_of_the_sport() {
        let (first, second, ride, third) = (
            workout(1, 100, "running"),
            workout(2, 200, "running"),
            workout(3, 250, "cycling"),
            workout(4, 300, "running"),
        );
        let all = vec![first.clone(), second.clone(), ride.clone(), third.clone()];
        let map: BTreeMap<WorkoutId, BestEfforts> = [
            (first.workout_id, efforts(&[("1k", 300.0), ("5k", 1_600.0)])),
            (second.workout_id, efforts(&[("1k", 280.0), ("5k", 1_600.0)])),
            (ride.workout_id, efforts(&[("1k", 90.0), ("5k", 500.0)])),
            (third.workout_id, efforts(&[("1k", 290.0), ("5k", 1_550.0), ("10k", 3_300.0)])),
        ]
        .into();
        let prs = |w: &WorkoutSummary| personal_records(w, &map[&w.workout_id], &all, &map);
        assert_eq!(prs(&first), ["1k", "5k"], "the first of a sport sets every record it has");
        assert_eq!(prs(&second), ["1k"], "an equal 5k is no record");
        assert_eq!(prs(&third), ["5k", "10k"], "slower than the second over 1k; the ride does not count");
        assert_eq!(prs(&ride), ["1k", "5k"]);
    }
}
