//! Training load over days: fitness (CTL), fatigue (ATL), form (TSB) and the acute:chronic
//! workload ratio (ACWR), from each day's TRIMP. Pure functions over a daily series, for the API's
//! training-load endpoint and the recommendations built on it.

/// Time constant of fitness (chronic training load), days: Banister's impulse-response model
/// (Banister et al. 1975; Morton, Fitz-Clarke & Banister 1990, J Appl Physiol 69:1171) as
/// parameterised by Coggan's Performance Manager (CTL 42 d).
pub const CTL_DAYS: f64 = 42.0;
/// Time constant of fatigue (acute training load), days: the same model's 7 d.
pub const ATL_DAYS: f64 = 7.0;
/// Acute and chronic windows of the ACWR, days: rolling 7-day over rolling 28-day average load
/// (Gabbett 2016, Br J Sports Med 50:273; Hulin et al. 2016, Br J Sports Med 50:231).
pub const ACWR_ACUTE_DAYS: usize = 7;
pub const ACWR_CHRONIC_DAYS: usize = 28;

/// One day of the series.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoadDay {
    /// Days since 1970-01-01 (UTC).
    pub day: i64,
    /// Sum of the day's workouts' TRIMP.
    pub trimp: f64,
    /// Fitness after the day: exponentially weighted load, τ = 42 d.
    pub ctl: f64,
    /// Fatigue after the day: exponentially weighted load, τ = 7 d.
    pub atl: f64,
    /// Form going into the day: yesterday's CTL − ATL (what the athlete brings to today).
    pub tsb: f64,
    /// Mean load of the last 7 days over the mean of the last 28 (today included); None until
    /// 28 days of history exist or while the chronic load is 0.
    pub acwr: Option<f64>,
}

/// The series for every day from `first_day` to `last_day` (inclusive), given `(day, trimp)`
/// entries in any order (several per day add up; days outside the range are ignored, so pass
/// history from at least `first_day − 42·4` for CTL to have settled).
pub fn series(entries: &[(i64, f64)], first_day: i64, last_day: i64) -> Vec<LoadDay> {
    if last_day < first_day {
        return Vec::new();
    }
    let span = (last_day - first_day + 1) as usize;
    let mut daily = vec![0.0; span];
    for &(day, trimp) in entries {
        if (first_day..=last_day).contains(&day) {
            daily[(day - first_day) as usize] += trimp;
        }
    }
    let (ctl_decay, atl_decay) = ((-1.0 / CTL_DAYS).exp(), (-1.0 / ATL_DAYS).exp());
    let (mut ctl, mut atl) = (0.0f64, 0.0f64);
    let mut out = Vec::with_capacity(span);
    for (i, &trimp) in daily.iter().enumerate() {
        let tsb = ctl - atl;
        ctl = ctl * ctl_decay + trimp * (1.0 - ctl_decay);
        atl = atl * atl_decay + trimp * (1.0 - atl_decay);
        let acwr = (i + 1 >= ACWR_CHRONIC_DAYS).then(|| {
            let window = &daily[i + 1 - ACWR_CHRONIC_DAYS..=i];
            let chronic = window.iter().sum::<f64>() / ACWR_CHRONIC_DAYS as f64;
            let acute = window[ACWR_CHRONIC_DAYS - ACWR_ACUTE_DAYS..].iter().sum::<f64>() / ACWR_ACUTE_DAYS as f64;
            (chronic > 0.0).then(|| acute / chronic)
        });
        out.push(LoadDay { day: first_day + i as i64, trimp, ctl, atl, tsb, acwr: acwr.flatten() });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-6
    }

    #[test]
    fn one_workout_from_rest_matches_hand_computed_values() {
        // Day 0: TRIMP 100 from nothing. CTL = 100·(1 − e^(−1/42)) = 2.352831…,
        // ATL = 100·(1 − e^(−1/7)) = 13.312210…; day 1 (rest): TSB = 2.352831 − 13.312210.
        let s = series(&[(0, 100.0)], 0, 1);
        assert!(close(s[0].ctl, 2.352_831_3), "{}", s[0].ctl);
        assert!(close(s[0].atl, 13.312_210_2), "{}", s[0].atl);
        assert_eq!(s[0].tsb, 0.0);
        assert!(close(s[1].tsb, 2.352_831_3 - 13.312_210_2), "{}", s[1].tsb);
        // Rest decays both: CTL·e^(−1/42), ATL·e^(−1/7).
        assert!(close(s[1].ctl, 2.352_831_3 * (-1.0f64 / 42.0).exp()));
        assert!(close(s[1].atl, 13.312_210_2 * (-1.0f64 / 7.0).exp()));
        assert_eq!(s[1].acwr, None, "no 28-day history yet");
    }

    #[test]
    fn acwr_is_the_7_day_over_the_28_day_mean() {
        // 21 days at 50, then 7 at 100: acute 100, chronic (21·50 + 7·100)/28 = 62.5 → 1.6.
        let entries: Vec<_> = (0..28).map(|d| (d, if d < 21 { 50.0 } else { 100.0 })).collect();
        let s = series(&entries, 0, 27);
        assert!(close(s[27].acwr.unwrap(), 1.6));
        assert_eq!(s[26].acwr, None);
        // Steady load: ACWR 1, and CTL and ATL approach the daily load (ATL faster).
        let steady: Vec<_> = (0..400).map(|d| (d, 80.0)).collect();
        let s = series(&steady, 0, 399);
        assert!(close(s[399].acwr.unwrap(), 1.0));
        assert!((s[399].ctl - 80.0).abs() < 0.01 && (s[399].atl - 80.0).abs() < 1e-6);
        assert!(s[10].atl > s[10].ctl, "fatigue builds faster than fitness");
    }

    #[test]
    fn several_workouts_a_day_add_up_and_outside_days_are_ignored() {
        let s = series(&[(5, 30.0), (5, 20.0), (9, 1000.0), (-1, 1000.0)], 5, 6);
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].day, s[0].trimp, s[1].trimp), (5, 50.0, 0.0));
        assert!(series(&[], 3, 2).is_empty());
    }
}
