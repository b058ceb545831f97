//! A workout and a training day as the API shows them, in the API's time format (`time.rs`). The
//! read model ([`WorkoutSummary`]) keeps its own stored shape (epoch ms).

use serde::Serialize;
use trackwire_codec::{DeviceTotals, WorkoutId};
use trackwire_pipeline::stages::Split;
use trackwire_pipeline::training_load::LoadDay;
use trackwire_pipeline::{AthleteProfile, EndReason, WorkoutStatus, WorkoutSummary};
use utoipa::ToSchema;

use super::time::{iso_day, iso_instant};

/// One workout: its identity, times, totals and per-kilometre splits.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Workout {
    pub workout_id: WorkoutId,
    pub user_id: String,
    /// Set by the owner (`PATCH`); null until then.
    pub name: Option<String>,
    pub description: Option<String>,
    /// Who may see it: `private` until the owner says otherwise.
    pub visibility: super::Visibility,
    pub device_id: String,
    pub device_model: Option<String>,
    /// `running`, `cycling`, `walking`, `hiking`, `swimming`, `other` or `unknown`.
    pub sport: String,
    pub status: WorkoutStatus,
    /// Why it ended (null while in progress): `device` (Complete or Cancel from the device) or
    /// `idle_timeout` (no batch for `pipeline.idle_timeout_secs`: the server completed it as of
    /// its last sample).
    pub end_reason: Option<EndReason>,
    /// First sample (or start event), ISO 8601 UTC.
    #[schema(format = DateTime, example = "2026-12-03T10:15:00.000Z")]
    pub start_time: String,
    /// Last sample (or end event), ISO 8601 UTC.
    #[schema(format = DateTime, example = "2026-12-03T11:02:31.000Z")]
    pub end_time: String,
    /// `end - start`, seconds.
    pub elapsed_s: f64,
    /// Elapsed minus the time the device reported as paused, seconds.
    pub timer_s: f64,
    pub samples: u64,
    pub batches: u64,
    /// Highest batch seq applied.
    pub last_seq: u64,
    /// WGS84 distance over the valid fixes, metres.
    pub distance_m: f64,
    /// Time spent moving (not paused and above the stopped-speed threshold), seconds.
    pub moving_time_s: f64,
    /// Elevation gained and lost, metres (null without altitude).
    pub elevation_gain_m: Option<f64>,
    pub elevation_loss_m: Option<f64>,
    /// Fastest step speed between valid fixes, m/s.
    pub max_speed_mps: Option<f64>,
    /// Positions the cleaning stage rejected ((0,0), out of range, impossible speed).
    pub rejected_fixes: u64,
    /// Altitude readings the cleaning stage rejected (faster than any real climb or fall).
    pub rejected_altitudes: u64,
    /// Seconds in heart-rate zones 1–5 (50–60 … 90–100 % of HRmax); null without HRmax.
    #[schema(value_type = Option<Vec<f64>>)]
    pub hr_zone_seconds: Option<[f64; 5]>,
    /// Edwards TRIMP (zone-weighted minutes); null without HRmax.
    pub trimp_edwards: Option<f64>,
    /// Banister TRIMP; null without HRmax, HRrest and sex.
    pub trimp_banister: Option<f64>,
    /// Energy expenditure, kcal; null without the athlete's weight.
    pub calories_kcal: Option<f64>,
    /// `keytel2005` (heart rate), `acsm` (running/walking speed) or `met2011` (Compendium MET).
    pub calories_method: Option<String>,
    /// Per-kilometre splits (the last may be partial).
    pub splits: Vec<Split>,
    /// The device's own totals, when it sent them (imported files), kept beside ours.
    pub device_totals: Option<DeviceTotals>,
    pub heart_rate_avg_bpm: Option<f64>,
    pub heart_rate_max_bpm: Option<u8>,
    /// Log positions of the first and latest record of this workout.
    pub first_lsn: u64,
    pub last_lsn: u64,
    /// The athlete profile the calories and training load were computed with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<AthleteProfile>,
}

impl Workout {
    /// The workout with what its owner changed.
    pub fn with_edits(mut self, edits: Option<super::WorkoutEdits>) -> Self {
        if let Some(edits) = edits {
            if let Some(sport) = edits.sport {
                self.sport = sport;
            }
            self.name = edits.name;
            self.description = edits.description;
            self.visibility = edits.visibility;
        }
        self
    }
}

impl From<WorkoutSummary> for Workout {
    fn from(s: WorkoutSummary) -> Self {
        Workout {
            workout_id: s.workout_id,
            user_id: s.user_id,
            name: None,
            description: None,
            visibility: super::Visibility::Private,
            device_id: s.device_id,
            device_model: s.device_model,
            sport: s.sport,
            status: s.status,
            end_reason: s.end_reason,
            start_time: iso_instant(s.start_time_ms),
            end_time: iso_instant(s.end_time_ms),
            elapsed_s: s.elapsed_s,
            timer_s: s.timer_s,
            samples: s.samples,
            batches: s.batches,
            last_seq: s.last_seq,
            distance_m: s.distance_m,
            moving_time_s: s.moving_time_s,
            elevation_gain_m: s.elevation_gain_m,
            elevation_loss_m: s.elevation_loss_m,
            max_speed_mps: s.max_speed_mps,
            rejected_fixes: s.rejected_fixes,
            rejected_altitudes: s.rejected_altitudes,
            hr_zone_seconds: s.hr_zone_seconds,
            trimp_edwards: s.trimp_edwards,
            trimp_banister: s.trimp_banister,
            calories_kcal: s.calories_kcal,
            calories_method: s.calories_method,
            splits: s.splits,
            device_totals: s.device_totals,
            heart_rate_avg_bpm: s.heart_rate_avg_bpm,
            heart_rate_max_bpm: s.heart_rate_max_bpm,
            first_lsn: s.first_lsn,
            last_lsn: s.last_lsn,
            profile: s.profile,
        }
    }
}

/// One day of the training-load series.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TrainingDay {
    /// The day, UTC.
    #[schema(format = Date, example = "2026-12-03")]
    pub day: String,
    /// Sum of the day's workouts' TRIMP.
    pub trimp: f64,
    /// Fitness after the day: exponentially weighted load, τ = 42 d.
    pub ctl: f64,
    /// Fatigue after the day: exponentially weighted load, τ = 7 d.
    pub atl: f64,
    /// Form going into the day: yesterday's CTL − ATL.
    pub tsb: f64,
    /// Mean load of the last 7 days over the mean of the last 28 (today included); null until 28
    /// days of history exist or while the chronic load is 0.
    pub acwr: Option<f64>,
}

impl From<LoadDay> for TrainingDay {
    fn from(d: LoadDay) -> Self {
        TrainingDay { day: iso_day(d.day), trimp: d.trimp, ctl: d.ctl, atl: d.atl, tsb: d.tsb, acwr: d.acwr }
    }
}
