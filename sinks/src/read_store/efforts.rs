//! Best efforts (Strava's fastest 5 km / 10 km within a workout), from the distance and time
//! streams once a workout has ended.

use serde::{Deserialize, Serialize};

/// The distances we look for, metres, and their names.
pub const EFFORT_DISTANCES: [(&str, f64); 2] = [("5k", 5_000.0), ("10k", 10_000.0)];

/// Fastest elapsed time over each distance of [`EFFORT_DISTANCES`] the workout covered.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BestEfforts {
    /// Seconds, by effort name (`5k`, `10k`); absent when the workout was shorter.
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
    fn short_workouts_have_none() {
        assert!(best_efforts(&[0, 1000], &[0.0, 4_999.0]).seconds.is_empty());
    }
}
