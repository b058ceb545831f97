//! Enrichment stages. Each is a small sans-IO unit that sees every sample of one workout in time
//! order, may fill columns of the [`EnrichedPoint`], and contributes to the [`WorkoutSummary`].
//! They run in the order of the fields of [`Stages`]: cleaning first, so every later stage sees
//! only positions it can trust.

mod calories;
mod cleaning;
mod distance;
mod elevation;
mod grade;
mod heart_rate;
mod moving;
mod smoothing;
mod splits;
mod timing;

pub use calories::{Calories, acsm_vo2, keytel_fitness_kj_per_min, keytel_kj_per_min, met, uth_vo2max};
pub use cleaning::{Cleaning, max_speed_mps};
pub use distance::Distance;
pub use elevation::{BAROMETRIC_HYSTERESIS_M, Elevation, HYSTERESIS_M};
pub use grade::{GRADE_WINDOW_M, Grade};
pub use heart_rate::{HeartRate, banister_weight, hr_max_from_age, zone};
pub use moving::Moving;
pub use smoothing::{DEFAULT_SIGMA_M, GATE_SIGMAS, Smoothing};
pub use splits::{Split, Splits};
pub use timing::Timing;

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, Weak};

use trackwire_codec::{SampleFlags, Sport};

use crate::{AthleteProfile, EnrichedPoint, WorkoutSummary};

/// One enrichment step. Implementations keep per-workout state in `self`.
pub trait Stage: Send {
    /// Sees one sample (already decoded into `point`) in time order; may fill its columns.
    fn on_sample(&mut self, point: &mut EnrichedPoint);
    /// Writes this stage's totals into the summary.
    fn summarize(&self, summary: &mut WorkoutSummary);
}

/// Per-profile lookup tables, shared by every live workout whose athlete has the same numbers: a
/// table is 2 KB, more than the rest of a workout's state, and thousands of live workouts of a few
/// athletes (or of athletes without a profile) need only a few tables. Entries die with their
/// last workout; dead ones are swept whenever the map has doubled.
pub(crate) struct SharedTables<K, T> {
    map: Mutex<(HashMap<K, Weak<T>>, usize)>,
}

impl<K: Hash + Eq, T> SharedTables<K, T> {
    pub(crate) fn new() -> Self {
        SharedTables { map: Mutex::new((HashMap::new(), 64)) }
    }

    pub(crate) fn get_or_make(&self, key: K, make: impl FnOnce() -> T) -> Arc<T> {
        // A panic while making a table leaves the map as it was: keep using it.
        let mut guard = self.map.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (map, sweep_at) = &mut *guard;
        if let Some(table) = map.get(&key).and_then(Weak::upgrade) {
            return table;
        }
        let table = Arc::new(make());
        if map.len() >= *sweep_at {
            map.retain(|_, table| table.strong_count() > 0);
            *sweep_at = (map.len() * 2).max(64);
        }
        map.insert(key, Arc::downgrade(&table));
        table
    }
}

/// True when the sample's time only orders it (an import with placeholder times).
#[inline]
pub(crate) fn untimed(point: &EnrichedPoint) -> bool {
    point.flags & SampleFlags::Untimed.bits() != 0
}

/// All stages of a workout, called in order with static dispatch (no virtual calls per sample).
#[derive(Debug, Clone)]
pub struct Stages {
    pub cleaning: Cleaning,
    pub smoothing: Smoothing,
    pub timing: Timing,
    pub distance: Distance,
    pub moving: Moving,
    pub elevation: Elevation,
    pub grade: Grade,
    pub splits: Splits,
    pub heart_rate: HeartRate,
    pub calories: Calories,
}

impl Stages {
    pub fn new(sport: Sport, profile: Option<&AthleteProfile>) -> Self {
        Stages {
            cleaning: Cleaning::new(sport),
            smoothing: Smoothing::default(),
            timing: Timing::default(),
            distance: Distance::new(sport),
            moving: Moving::default(),
            elevation: Elevation::default(),
            grade: Grade::default(),
            splits: Splits::default(),
            heart_rate: HeartRate::new(profile),
            calories: Calories::new(sport, profile),
        }
    }

    #[inline]
    pub fn on_sample(&mut self, point: &mut EnrichedPoint) {
        self.cleaning.on_sample(point);
        self.smoothing.on_sample(point);
        self.timing.on_sample(point);
        self.distance.on_sample(point);
        self.moving.on_sample(point);
        self.elevation.on_sample(point);
        self.grade.on_sample(point);
        self.splits.on_sample(point);
        self.heart_rate.on_sample(point);
        self.calories.on_sample(point);
    }

    pub fn summarize(&self, summary: &mut WorkoutSummary) {
        self.cleaning.summarize(summary);
        self.timing.summarize(summary);
        self.distance.summarize(summary);
        self.moving.summarize(summary);
        self.elevation.summarize(summary);
        self.splits.summarize(summary);
        self.heart_rate.summarize(summary);
        self.calories.summarize(summary);
    }
}
