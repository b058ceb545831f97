use std::sync::{Arc, LazyLock};

use trackwire_codec::Sport;

use super::{SharedTables, Stage, hr_max_from_age};
use crate::{AthleteProfile, EnrichedPoint, WorkoutSummary};

/// kcal per kJ (thermochemical calorie).
const KJ_PER_KCAL: f64 = 4.184;

/// Energy expenditure in kJ/min from heart rate (Keytel et al. 2005, J Sports Sci 23(3):289–297,
/// equations without VO2max): men −55.0969 + 0.6309·HR + 0.1988·W + 0.2017·A; women −20.4022 +
/// 0.4472·HR − 0.1263·W + 0.0740·A (HR bpm, W kg, A years). Negative values (rest) count as 0.
pub fn keytel_kj_per_min(hr: f64, weight_kg: f64, age_years: f64, male: bool) -> f64 {
    let kj = if male {
        -55.0969 + 0.6309 * hr + 0.1988 * weight_kg + 0.2017 * age_years
    } else {
        -20.4022 + 0.4472 * hr - 0.1263 * weight_kg + 0.0740 * age_years
    };
    kj.max(0.0)
}

/// Energy expenditure in kJ/min from heart rate and VO2max (Keytel et al. 2005, the equations
/// with fitness): men −95.7735 + 0.634·HR + 0.404·VO2max + 0.394·W + 0.271·A; women −59.3954 +
/// 0.45·HR + 0.380·VO2max + 0.103·W + 0.274·A (VO2max ml/kg/min). Keytel found it explains more of
/// the variance than the population equation (R² 0.913 vs 0.857), most for fit athletes.
pub fn keytel_fitness_kj_per_min(hr: f64, vo2max: f64, weight_kg: f64, age_years: f64, male: bool) -> f64 {
    let kj = if male {
        -95.7735 + 0.634 * hr + 0.404 * vo2max + 0.394 * weight_kg + 0.271 * age_years
    } else {
        -59.3954 + 0.45 * hr + 0.380 * vo2max + 0.103 * weight_kg + 0.274 * age_years
    };
    kj.max(0.0)
}

/// VO2max in ml/kg/min from the heart-rate ratio, 15.3 × HRmax / HRrest (Uth, Sørensen,
/// Overgaard & Pedersen 2004, Eur J Appl Physiol 91:111–115). None unless HRmax > HRrest > 0.
pub fn uth_vo2max(hr_max: f64, hr_rest: f64) -> Option<f64> {
    (hr_rest > 0.0 && hr_max > hr_rest).then(|| 15.3 * hr_max / hr_rest)
}

/// MET of a sport without heart rate (Ainsworth et al. 2011, Compendium of Physical Activities,
/// Med Sci Sports Exerc 43(8):1575–1581): running 6 mph (12050) 9.8; walking 3.0 mph (17190) 3.5;
/// cycling 12–13.9 mph (01040) 8.0; hiking cross-country (17080) 6.0; swimming freestyle,
/// light/moderate (18310) 5.8.
pub fn met(sport: Sport) -> Option<f64> {
    match sport {
        Sport::Running => Some(9.8),
        Sport::Walking => Some(3.5),
        Sport::Cycling => Some(8.0),
        Sport::Hiking => Some(6.0),
        Sport::Swimming => Some(5.8),
        _ => None,
    }
}

/// Oxygen cost of running or walking on the flat, ml/kg/min, from speed in m/min: running
/// 0.2·S + 3.5, walking 0.1·S + 3.5 (ACSM's metabolic equations, ACSM's Guidelines for Exercise
/// Testing and Prescription, 10th ed., Table 6.3). Grade terms are left out: per-step GPS grade is
/// too noisy to help.
pub fn acsm_vo2(sport: Sport, speed_m_per_min: f64) -> Option<f64> {
    match sport {
        Sport::Running => Some(0.2 * speed_m_per_min + 3.5),
        Sport::Walking | Sport::Hiking => Some(0.1 * speed_m_per_min + 3.5),
        _ => None,
    }
}

/// kcal per litre of oxygen consumed, the standard approximation (ACSM, as above).
const KCAL_PER_LITRE_O2: f64 = 5.0;

/// Calories over timer time, by the best method the data allows, per step:
/// 1. Keytel 2005 from heart rate, when the sample has one and the profile has weight, age, sex;
///    with the fitness term when the profile also gives resting heart rate (VO2max by Uth 2004,
///    HRmax from the profile or Tanaka's age formula);
/// 2. ACSM's equations from speed, for running and walking (a flat MET ignores pace: a jog at
///    6 km/h costs two thirds of the Compendium's 6 mph value);
/// 3. the Compendium MET of the sport × kg × hours.
///
/// Nothing without the athlete's weight.
#[derive(Debug, Clone, Default)]
pub struct Calories {
    profile: AthleteProfile,
    met: Option<f64>,
    vo2max: Option<f64>,
    /// kcal per millisecond at each heart rate (bpm is a u8), when the profile allows Keytel:
    /// computed once per workout, so a sample costs one multiply-add.
    keytel_kcal_per_ms: Option<Arc<[f64; 256]>>,
    kcal: f64,
    used_heart_rate: bool,
    used_speed: bool,
    used_met: bool,
    sport: Sport,
}

/// (weight, age, male, VO2max) as bits: the numbers a Keytel table is made from.
type KeytelKey = (u64, u64, bool, Option<u64>);

/// Keytel kcal per ms per heart rate, one table per (weight, age, sex, VO2max).
static TABLES: LazyLock<SharedTables<KeytelKey, [f64; 256]>> = LazyLock::new(SharedTables::new);

impl Calories {
    pub fn new(sport: Sport, profile: Option<&AthleteProfile>) -> Self {
        let profile = profile.cloned().unwrap_or_default();
        let hr_max = profile.hr_max_bpm.or(profile.age_years.map(hr_max_from_age));
        let vo2max = hr_max.zip(profile.hr_rest_bpm).and_then(|(max, rest)| uth_vo2max(max, rest));
        let keytel_kcal_per_ms = match (profile.weight_kg, profile.age_years, profile.male) {
            (Some(weight), Some(age), Some(male)) => {
                let key = (weight.to_bits(), age.to_bits(), male, vo2max.map(f64::to_bits));
                Some(TABLES.get_or_make(key, || {
                    let mut table = [0.0; 256];
                    for (hr, kcal_per_ms) in table.iter_mut().enumerate() {
                        let hr = hr as f64;
                        let kj_per_min = match vo2max {
                            Some(vo2max) => keytel_fitness_kj_per_min(hr, vo2max, weight, age, male),
                            None => keytel_kj_per_min(hr, weight, age, male),
                        };
                        *kcal_per_ms = kj_per_min / KJ_PER_KCAL / 60_000.0;
                    }
                    table
                }))
            }
            _ => None,
        };
        Calories { profile, met: met(sport), vo2max, keytel_kcal_per_ms, sport, ..Calories::default() }
    }
}

impl Stage for Calories {
    #[inline]
    fn on_sample(&mut self, point: &mut EnrichedPoint) {
        let Some(weight) = self.profile.weight_kg else { return };
        if point.active_step_ms == 0 {
            return;
        }
        let minutes = point.active_step_ms as f64 * (1.0 / 60_000.0);
        match (point.heart_rate_bpm, &self.keytel_kcal_per_ms) {
            (Some(hr), Some(table)) => {
                self.kcal += table[usize::from(hr)] * point.active_step_ms as f64;
                self.used_heart_rate = true;
            }
            _ => {
                let speed = point.speed_mps.map(|v| f64::from(v) * 60.0);
                if let Some(vo2) = speed.and_then(|s| acsm_vo2(self.sport, s)) {
                    self.kcal += vo2 * weight / 1000.0 * minutes * KCAL_PER_LITRE_O2;
                    self.used_speed = true;
                } else if let Some(met) = self.met {
                    self.kcal += met * weight * minutes / 60.0;
                    self.used_met = true;
                }
            }
        }
    }

    fn summarize(&self, summary: &mut WorkoutSummary) {
        if self.used_heart_rate || self.used_speed || self.used_met {
            summary.calories_kcal = Some(self.kcal);
            let method = if self.used_heart_rate && self.vo2max.is_some() {
                "keytel2005_vo2max"
            } else if self.used_heart_rate {
                "keytel2005"
            } else if self.used_speed {
                "acsm"
            } else {
                "met2011"
            };
            summary.calories_method = Some(method.into());
        }
    }
}
