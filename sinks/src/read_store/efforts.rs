//! Best efforts (Strava's fastest 400 m … marathon within a workout), from the distance and time
//! streams once a workout has ended.

use serde::{Deserialize, Serialize};

/// The distances we look for, metres, and their names: Strava's running best efforts. The mile is
/// the international mile (1,609.344 m); the half marathon and marathon are World Athletics'
/// road distances (21,097.5 m and 42,195 m).
pub const EFFORT_DISTANCES: [(&str, f64); 7] = [
    ("400m", 400.0),
    ("1k", 1_000.0),
    ("1mile", 1_609.344),
    ("5k", 5_000.0),
    ("10k", 10_000.0),
    ("half_marathon", 21_097.5),
    ("marathon", 42_195.0),
];

/// Fastest elapsed time over each distance of [`EFFORT_DISTANCES`] the workout covered.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BestEfforts {
    /// Seconds, by effort name (`400m`, `1k`, `1mile`, `5k`, `10k`, `half_marathon`, `marathon`);
    /// absent when the workout was shorter.
    pub seconds: std::collections::BTreeMap<String, f64>,
}

/// For each effort distance D: the shortest `t[i] − t[j]` over sample pairs with
/// `d[i] − d[j] ≥ D` (a two-pointer sweep, O(n)). `distance_m` is cumulative, so non-decreasing.
pub fn best_efforts(time_ms: &[i64], distance_m: &[f64]) -> BestEfforts {
    let mut out = BestEfforts::default();
    for (name, target) in EFFORT_DISTANCES {
        let mut best: Option<i64> = None;
        let mut j = 0;
        for i in 0..time_ms.len() {
            // Move the window's start forward while it still spans the distance.
            while j + 1 < i && distance_m[i] - distance_m[j + 1] >= target {
                j += 1;
            }
            if distance_m[i] - distance_m[j] >= target {
                let elapsed = time_ms[i] - time_ms[j];
                if elapsed > 0 && best.is_none_or(|b| elapsed < b) {
                    best = Some(elapsed);
                }
            }
        }
        if let Some(ms) = best {
            out.seconds.insert(name.to_owned(), ms as f64 / 1000.0);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_fastest_window_not_the_first() {
        // 12 km: the first 6 km at 5 min/km, then 6 km at 4 min/km, one sample every 100 m.
        let mut time = vec![0i64];
        let mut dist = vec![0.0];
        for k in 1..=120 {
            let pace_ms = if k <= 60 { 30_000 } else { 24_000 };
            time.push(time[k - 1] + pace_ms);
            dist.push(k as f64 * 100.0);
        }
        let efforts = best_efforts(&time, &dist);
        assert_eq!(efforts.seconds["5k"], 50.0 * 24.0, "the fast last 5 km");
        assert_eq!(efforts.seconds["10k"], 40.0 * 30.0 + 60.0 * 24.0, "the last 10 km");
    }

    #[test]
    fn every_distance_up_to_the_workouts_length_and_none_beyond() {
        // 22 km at a steady 4 min/km, one sample every 100 m (24 s).
        let time: Vec<i64> = (0..=220).map(|k| k * 24_000).collect();
        let dist: Vec<f64> = (0..=220).map(|k| k as f64 * 100.0).collect();
        let efforts = best_efforts(&time, &dist);
        let names: Vec<&str> = efforts.seconds.keys().map(String::as_str).collect();
        assert_eq!(names, ["10k", "1k", "1mile", "400m", "5k", "half_marathon"], "no marathon in 22 km");
        assert_eq!(efforts.seconds["400m"], 96.0);
        // The first sample pair spanning a mile is 1,700 m apart: the sweep never interpolates.
        assert_eq!(efforts.seconds["1mile"], 17.0 * 24.0);
        assert_eq!(efforts.seconds["half_marathon"], 211.0 * 24.0);
    }

    #[test]
    fn an_effort_needs_its_whole_distance() {
        assert!(best_efforts(&[0, 1000], &[0.0, 399.9]).seconds.is_empty());
        let just_short = best_efforts(&[0, 1000], &[0.0, 4_999.0]);
        assert!(!just_short.seconds.contains_key("5k") && just_short.seconds.contains_key("1mile"));
    }
}
