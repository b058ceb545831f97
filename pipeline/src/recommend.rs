//! Training recommendations from the load series (served at
//! `GET /api/v1/users/{id}/recommendations`): each one typed, with its reason in words and the
//! numbers behind it, so a client can show why.

use std::collections::BTreeMap;

use crate::training_load::LoadDay;

/// Below this form (TSB) the athlete is overreached: recover. Allen & Coggan, *Training and
/// Racing with a Power Meter* (3rd ed. 2019), Performance Manager chapter: TSB below −30 is the
/// high-risk zone.
pub const TSB_RECOVER: f64 = -30.0;
/// Between this and [`TSB_RECOVER`] is productive training: keep it easy and aerobic (same source:
/// −10 to −30 is the optimal training zone).
pub const TSB_EASY: f64 = -10.0;
/// ACWR above this is the "danger zone" for injury (Gabbett 2016, Br J Sports Med 50:273).
pub const ACWR_DANGER: f64 = 1.5;
/// Upper end of the ACWR "sweet spot" 0.8–1.3 (Gabbett 2016): room for a quality session.
pub const ACWR_SWEET_SPOT_MAX: f64 = 1.3;
/// Fitness (CTL) gained per week beyond which the ramp is too steep: TrainingPeaks' guideline of
/// 5–8 CTL points per week (Friel, *The Triathlete's Training Bible*, 4th ed. 2016).
pub const CTL_RAMP_PER_WEEK_MAX: f64 = 8.0;
/// Days without a long session after which one is due: one long session a week.
pub const LONG_SESSION_EVERY_DAYS: i64 = 7;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = RecommendationKind))]
pub enum Kind {
    Recover,
    RampRateWarning,
    EasyAerobic,
    QualitySession,
    LongSession,
    ReplaceGear,
}

/// One recommendation: what, for which sport, why, and the numbers.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Recommendation {
    pub kind: Kind,
    pub sport: String,
    pub reason: String,
    #[cfg_attr(feature = "openapi", schema(value_type = std::collections::HashMap<String, f64>))]
    pub numbers: BTreeMap<&'static str, f64>,
}

/// A piece of gear and how far it has gone.
#[derive(Debug, Clone, PartialEq)]
pub struct Gear {
    pub name: String,
    pub sport: String,
    pub distance_m: f64,
    /// Distance after which it should be replaced (e.g. running shoes 800 km).
    pub replace_after_m: f64,
}

/// What the athlete should do next in `sport`, given the sport's load series up to today
/// (at least 8 days for the ramp rate), the days since the last long session, and their gear.
pub fn recommend(sport: &str, series: &[LoadDay], days_since_long: Option<i64>, gear: &[Gear]) -> Vec<Recommendation> {
    let mut out = Vec::new();
    let mut push = |kind, reason: String, numbers: &[(&'static str, f64)]| {
        out.push(Recommendation { kind, sport: sport.to_owned(), reason, numbers: numbers.iter().copied().collect() });
    };
    if let Some(today) = series.last() {
        // Form going into tomorrow: today's CTL − ATL.
        let tsb = today.ctl - today.atl;
        let ramp = (series.len() >= 8).then(|| today.ctl - series[series.len() - 8].ctl);
        if tsb < TSB_RECOVER {
            push(
                Kind::Recover,
                format!("form is {tsb:.0}, below {TSB_RECOVER}: take a rest day"),
                &[("tsb", tsb), ("ctl", today.ctl), ("atl", today.atl)],
            );
        } else if tsb < TSB_EASY {
            push(Kind::EasyAerobic, format!("form is {tsb:.0}: train, but easy and aerobic"), &[("tsb", tsb)]);
        }
        if let Some(acwr) = today.acwr
            && acwr > ACWR_DANGER
        {
            push(
                Kind::RampRateWarning,
                format!(
                    "the last 7 days' load is {acwr:.2}× the 28-day average (above {ACWR_DANGER}): injury risk rises"
                ),
                &[("acwr", acwr)],
            );
        }
        if let Some(ramp) = ramp
            && ramp > CTL_RAMP_PER_WEEK_MAX
        {
            push(
                Kind::RampRateWarning,
                format!(
                    "fitness rose {ramp:.1} points this week (more than {CTL_RAMP_PER_WEEK_MAX}): ramp more slowly"
                ),
                &[("ctl_ramp_per_week", ramp)],
            );
        }
        let fresh = tsb >= TSB_EASY;
        if fresh && today.acwr.is_none_or(|a| a <= ACWR_SWEET_SPOT_MAX) {
            // Only numbers that exist: JSON has no NaN or infinity.
            let numbers: Vec<_> = [("tsb", Some(tsb)), ("acwr", today.acwr)]
                .into_iter()
                .filter_map(|(name, value)| Some((name, value?)))
                .collect();
            push(
                Kind::QualitySession,
                format!("form is {tsb:.0} and the load is steady: a good day for intervals"),
                &numbers,
            );
        }
        if fresh && days_since_long.is_none_or(|d| d >= LONG_SESSION_EVERY_DAYS) {
            let numbers: Vec<_> = days_since_long.map(|d| ("days_since_long", d as f64)).into_iter().collect();
            push(Kind::LongSession, "no long session this week: plan one".into(), &numbers);
        }
    }
    for g in gear.iter().filter(|g| g.sport == sport && g.distance_m >= g.replace_after_m) {
        push(
            Kind::ReplaceGear,
            format!(
                "{} has {:.0} km (replace after {:.0} km)",
                g.name,
                g.distance_m / 1000.0,
                g.replace_after_m / 1000.0
            ),
            &[("distance_m", g.distance_m), ("replace_after_m", g.replace_after_m)],
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::training_load::series;

    fn kinds(r: &[Recommendation]) -> Vec<Kind> {
        r.iter().map(|r| r.kind).collect()
    }

    #[test]
    fn each_recommendation_has_a_history_that_triggers_it() {
        // A steady 60/day for 120 days: fresh and steady → quality and, without a long run, long.
        let steady: Vec<_> = (0..120).map(|d| (d, 60.0)).collect();
        let s = series(&steady, 0, 119);
        assert_eq!(kinds(&recommend("running", &s, Some(2), &[])), vec![Kind::QualitySession]);
        assert_eq!(kinds(&recommend("running", &s, Some(9), &[])), vec![Kind::QualitySession, Kind::LongSession]);

        // The same, then a brutal week at 250/day: form far below −30, ACWR above 1.5, CTL ramp.
        let mut hard = steady.clone();
        hard.extend((120..127).map(|d| (d, 250.0)));
        let s = series(&hard, 0, 126);
        let k = kinds(&recommend("running", &s, Some(1), &[]));
        assert_eq!(k, vec![Kind::Recover, Kind::RampRateWarning, Kind::RampRateWarning], "{k:?}");

        // A moderately harder week at 110/day: tired but not overreached → easy aerobic.
        let mut busy = steady.clone();
        busy.extend((120..124).map(|d| (d, 110.0)));
        let s = series(&busy, 0, 123);
        let tsb = s.last().map(|d| d.ctl - d.atl).unwrap();
        assert!((TSB_RECOVER..TSB_EASY).contains(&tsb), "{tsb}");
        assert_eq!(kinds(&recommend("running", &s, Some(1), &[])), vec![Kind::EasyAerobic]);

        // Worn shoes, for running only.
        let shoes =
            Gear { name: "Pegasus".into(), sport: "running".into(), distance_m: 812_000.0, replace_after_m: 800_000.0 };
        let r = recommend("running", &[], None, std::slice::from_ref(&shoes));
        assert_eq!(kinds(&r), vec![Kind::ReplaceGear]);
        assert_eq!(r[0].numbers["distance_m"], 812_000.0);
        assert!(recommend("cycling", &[], None, &[shoes]).is_empty());
    }
}
