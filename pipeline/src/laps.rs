//! Laps: the stretches between presses of the lap button (`ControlKind::Lap`, from the wire or
//! from an imported file's lap messages). A lap's figures are differences of the workout's running
//! totals at its two ends, so laps cost nothing until the first press: the first lap is the
//! workout up to it. A workout without presses has no laps stored; the API serves it as one lap.

use serde::{Deserialize, Serialize};

/// One lap.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Lap {
    /// 1-based.
    pub lap: u32,
    /// Unix ms: the press that began it (the workout's start for the first) and the one that ended
    /// it (the workout's last instant for the last).
    pub start_time_ms: i64,
    pub end_time_ms: i64,
    pub elapsed_s: f64,
    pub moving_s: f64,
    pub distance_m: f64,
    /// Moving pace, seconds per km (None without moving time or distance).
    pub pace_s_per_km: Option<f64>,
    pub heart_rate_avg_bpm: Option<f64>,
    pub heart_rate_max_bpm: Option<u8>,
    /// None without altitude.
    pub elevation_gain_m: Option<f64>,
}

/// A workout's running totals at one instant: what a lap is the difference of.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Totals {
    pub time_ms: i64,
    pub distance_m: f64,
    pub moving_ms: i64,
    pub elevation_gain_m: Option<f64>,
    pub hr_sum: u64,
    pub hr_count: u64,
}

/// The laps ended so far and where the running one began.
#[derive(Debug, Clone, PartialEq)]
pub struct LapMarks {
    done: Vec<Lap>,
    start: Totals,
    /// Highest heart rate since the running lap began.
    hr_max: Option<u8>,
}

impl LapMarks {
    /// The first press: lap 1 is the workout from `start_ms` up to `now`, whose highest heart rate
    /// was `hr_max`.
    pub fn first_press(start_ms: i64, hr_max: Option<u8>, now: Totals) -> Self {
        let mut marks = LapMarks { done: Vec::new(), start: Totals { time_ms: start_ms, ..Totals::default() }, hr_max };
        marks.press(now);
        marks
    }

    /// Ends the running lap at `now` and begins the next. A press at the instant the running lap
    /// began (a double press, a retried event) ends nothing.
    pub fn press(&mut self, now: Totals) {
        if now.time_ms <= self.start.time_ms {
            return;
        }
        let lap = self.lap_until(now);
        self.done.push(lap);
        self.start = now;
        self.hr_max = None;
    }

    /// A sample's heart rate, for the running lap's maximum.
    #[inline]
    pub fn observe(&mut self, heart_rate_bpm: Option<u8>) {
        if let Some(hr) = heart_rate_bpm {
            self.hr_max = Some(self.hr_max.map_or(hr, |max| max.max(hr)));
        }
    }

    /// Every lap, the running one ending at `now` (unless it has not begun: a press at the last
    /// instant leaves no empty lap behind).
    pub fn laps(&self, now: Totals) -> Vec<Lap> {
        let mut laps = self.done.clone();
        if now.time_ms > self.start.time_ms || now.distance_m > self.start.distance_m {
            laps.push(self.lap_until(now));
        }
        laps
    }

    fn lap_until(&self, now: Totals) -> Lap {
        let start = &self.start;
        let moving_s = (now.moving_ms - start.moving_ms) as f64 / 1000.0;
        let distance_m = now.distance_m - start.distance_m;
        let heartbeats = now.hr_count - start.hr_count;
        Lap {
            lap: self.done.len() as u32 + 1,
            start_time_ms: start.time_ms,
            end_time_ms: now.time_ms,
            elapsed_s: (now.time_ms - start.time_ms) as f64 / 1000.0,
            moving_s,
            distance_m,
            pace_s_per_km: (moving_s > 0.0 && distance_m > 0.0).then(|| moving_s / distance_m * 1000.0),
            heart_rate_avg_bpm: (heartbeats > 0).then(|| (now.hr_sum - start.hr_sum) as f64 / heartbeats as f64),
            heart_rate_max_bpm: self.hr_max,
            elevation_gain_m: now.elevation_gain_m.map(|gain| gain - start.elevation_gain_m.unwrap_or(0.0)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64, metres: f64, hr_sum: u64, hr_count: u64) -> Totals {
        Totals { time_ms: s * 1000, distance_m: metres, moving_ms: s * 1000, elevation_gain_m: None, hr_sum, hr_count }
    }

    #[test]
    fn laps_are_differences_of_the_running_totals() {
        let mut marks = LapMarks::first_press(0, Some(150), at(300, 1000.0, 300 * 140, 300));
        marks.observe(Some(170));
        marks.observe(None);
        marks.press(at(500, 2000.0, 300 * 140 + 200 * 160, 500));
        marks.press(at(500, 2000.0, 300 * 140 + 200 * 160, 500)); // a double press ends nothing
        let laps = marks.laps(at(560, 2200.0, 300 * 140 + 200 * 160 + 60 * 150, 560));
        let figures: Vec<_> = laps
            .iter()
            .map(|l| (l.lap, l.elapsed_s, l.distance_m, l.heart_rate_avg_bpm, l.heart_rate_max_bpm))
            .collect();
        assert_eq!(
            figures,
            [
                (1, 300.0, 1000.0, Some(140.0), Some(150)),
                (2, 200.0, 1000.0, Some(160.0), Some(170)),
                (3, 60.0, 200.0, Some(150.0), None),
            ]
        );
        assert_eq!(laps[1].pace_s_per_km, Some(200.0));
        assert_eq!(marks.laps(at(500, 2000.0, 0, 0)).len(), 2, "no empty lap after a press at the end");
    }
}
