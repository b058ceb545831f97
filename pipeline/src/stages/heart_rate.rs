use std::sync::{Arc, LazyLock};

use super::{SharedTables, Stage};
use crate::{AthleteProfile, EnrichedPoint, WorkoutSummary};

/// Maximum heart rate from age when the athlete has not given theirs: 208 − 0.7 × age
/// (Tanaka, Monahan & Seals 2001, J Am Coll Cardiol 37(1):153–156).
pub fn hr_max_from_age(age_years: f64) -> f64 {
    208.0 - 0.7 * age_years
}

/// Zone of a heart rate by %HRmax: 1 = 50–60 %, 2 = 60–70 %, 3 = 70–80 %, 4 = 80–90 %,
/// 5 = 90–100 % (and above); 0 below 50 %. Edwards' five zones (Edwards 1993, The Heart Rate
/// Monitor Book).
pub fn zone(hr: f64, hr_max: f64) -> u8 {
    // Tenths of HRmax, nudged so an exact boundary (126/180 = 70 %) lands in the upper zone
    // despite binary floating point.
    let tenths = (10.0 * hr / hr_max + 1e-9).floor();
    if tenths < 5.0 { 0 } else { (tenths - 4.0).min(5.0) as u8 }
}

/// Banister's TRIMP weighting per minute at heart-rate reserve fraction `hrr`:
/// men 0.64·e^(1.92·HRr), women 0.86·e^(1.67·HRr) (Banister 1991, in Physiological Testing of
/// the High-Performance Athlete, pp. 403–424; Morton, Fitz-Clarke & Banister 1990).
pub fn banister_weight(hrr: f64, male: bool) -> f64 {
    if male { 0.64 * (1.92 * hrr).exp() } else { 0.86 * (1.67 * hrr).exp() }
}

/// Average and maximum heart rate; with HRmax, time in zones and Edwards TRIMP; with HRrest and
/// sex too, Banister TRIMP (integrated per step rather than from the average, which
/// underestimates interval sessions).
#[derive(Debug, Default, Clone)]
pub struct HeartRate {
    sum: u64,
    count: u64,
    max: u8,
    hr_max: Option<f64>,
    hr_rest: Option<f64>,
    male: Option<bool>,
    zone_seconds: [f64; 5],
    banister: f64,
    /// Per heart rate (bpm is a u8): its zone and its Banister weight per minute (HRr·weight),
    /// computed once per workout instead of a floor and an exp per sample.
    tables: Option<Arc<HeartRateTables>>,
}

/// Zone and Banister weight per heart rate, for one (HRmax, HRrest, sex).
type HeartRateTables = ([u8; 256], [f64; 256]);

/// (HRmax, HRrest, male) as bits: the numbers the tables are made from.
type HeartRateKey = (Option<u64>, Option<u64>, Option<bool>);

static TABLES: LazyLock<SharedTables<HeartRateKey, HeartRateTables>> = LazyLock::new(SharedTables::new);

impl HeartRate {
    /// Sum, count and maximum of the heart rates so far.
    pub fn running_totals(&self) -> (u64, u64, Option<u8>) {
        (self.sum, self.count, (self.count > 0).then_some(self.max))
    }

    pub fn new(profile: Option<&AthleteProfile>) -> Self {
        let profile = profile.cloned().unwrap_or_default();
        let hr_max = profile.hr_max_bpm.or(profile.age_years.map(hr_max_from_age));
        let key = (hr_max.map(f64::to_bits), profile.hr_rest_bpm.map(f64::to_bits), profile.male);
        let tables = hr_max.map(|hr_max| {
            TABLES.get_or_make(key, || {
                let mut zones = [0u8; 256];
                let mut banister = [0f64; 256];
                for hr in 0..256 {
                    zones[hr] = zone(hr as f64, hr_max);
                    if let (Some(rest), Some(male)) = (profile.hr_rest_bpm, profile.male)
                        && hr_max > rest
                    {
                        let hrr = ((hr as f64 - rest) / (hr_max - rest)).clamp(0.0, 1.0);
                        banister[hr] = hrr * banister_weight(hrr, male);
                    }
                }
                (zones, banister)
            })
        });
        HeartRate { hr_max, hr_rest: profile.hr_rest_bpm, male: profile.male, tables, ..HeartRate::default() }
    }
}

impl Stage for HeartRate {
    #[inline]
    fn on_sample(&mut self, point: &mut EnrichedPoint) {
        let dt_s = point.active_step_ms as f64 * 1e-3;
        let Some(hr) = point.heart_rate_bpm else { return };
        self.sum += u64::from(hr);
        self.count += 1;
        self.max = self.max.max(hr);
        let Some(tables) = &self.tables else { return };
        let z = tables.0[usize::from(hr)];
        point.hr_zone = Some(z);
        if z > 0 {
            self.zone_seconds[usize::from(z) - 1] += dt_s;
        }
        self.banister += dt_s * (1.0 / 60.0) * tables.1[usize::from(hr)];
    }

    fn summarize(&self, summary: &mut WorkoutSummary) {
        if self.count > 0 {
            summary.heart_rate_avg_bpm = Some(self.sum as f64 / self.count as f64);
            summary.heart_rate_max_bpm = Some(self.max);
            if self.hr_max.is_some() {
                summary.hr_zone_seconds = Some(self.zone_seconds);
                summary.trimp_edwards =
                    Some(self.zone_seconds.iter().enumerate().map(|(i, s)| s / 60.0 * (i + 1) as f64).sum());
                if self.hr_rest.is_some() && self.male.is_some() {
                    summary.trimp_banister = Some(self.banister);
                }
            }
        }
    }
}
