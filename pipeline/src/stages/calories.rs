use trackwire_codec::Sport;

use super::Stage;
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
/// 2. ACSM's equations from speed, for running and walking (a flat MET ignores pace: a jog at
///    6 km/h costs two thirds of the Compendium's 6 mph value);
/// 3. the Compendium MET of the sport × kg × hours.
///
/// Nothing without the athlete's weight.
#[derive(Debug, Clone, Default)]
pub struct Calories {
    profile: AthleteProfile,
    met: Option<f64>,
    kcal: f64,
    used_heart_rate: bool,
    used_speed: bool,
    used_met: bool,
    sport: Sport,
}

impl Calories {
    pub fn new(sport: Sport, profile: Option<&AthleteProfile>) -> Self {
        Calories { profile: profile.cloned().unwrap_or_default(), met: met(sport), sport, ..Calories::default() }
    }
}

impl Stage for Calories {
    #[inline]
    fn on_sample(&mut self, point: &mut EnrichedPoint) {
        let Some(weight) = self.profile.weight_kg else { return };
        if point.active_step_ms == 0 {
            return;
        }
        let minutes = point.active_step_ms as f64 / 60_000.0;
        match (point.heart_rate_bpm, self.profile.age_years, self.profile.male) {
            (Some(hr), Some(age), Some(male)) => {
                self.kcal += keytel_kj_per_min(f64::from(hr), weight, age, male) * minutes / KJ_PER_KCAL;
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
            let method = if self.used_heart_rate {
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
