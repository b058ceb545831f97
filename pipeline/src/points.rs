//! Enriched samples column by column: the shape every consumer encodes from.

use std::ops::Range;

use trackwire_codec::WorkoutId;

use crate::EnrichedPoint;

/// Generates [`Points`] from one list of its columns, so the struct, `push`, `get`,
/// `extend_from` and `reserve` cannot disagree about which columns there are.
macro_rules! columns {
    ($($(#[$doc:meta])* $name:ident: $ty:ty,)*) => {
        /// Enriched samples as columns, one per column of the lake's `points` table: entry `i` of
        /// every column is sample `i`. The pipeline writes a batch's samples straight into them;
        /// the lake, the Kafka points stream and the read store encode from them without first
        /// copying ~200-byte rows, and the lake appends whole runs of them to its open files.
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct Points {
            $($(#[$doc])* pub $name: Vec<$ty>,)*
        }

        impl Points {
            /// Appends one sample.
            #[inline]
            pub fn push(&mut self, point: &EnrichedPoint) {
                $(self.$name.push(point.$name);)*
            }

            /// Sample `i` as a row (tests and the rare consumer that wants rows).
            pub fn get(&self, i: usize) -> EnrichedPoint {
                EnrichedPoint { $($name: self.$name[i],)* ..EnrichedPoint::default() }
            }

            /// Appends samples `range` of `other`, column by column.
            pub fn extend_from(&mut self, other: &Points, range: Range<usize>) {
                $(self.$name.extend_from_slice(&other.$name[range.clone()]);)*
            }

            /// Room for `additional` more samples in every column.
            pub fn reserve(&mut self, additional: usize) {
                $(self.$name.reserve(additional);)*
            }

            /// Empties every column, keeping its memory.
            pub fn clear(&mut self) {
                $(self.$name.clear();)*
            }
        }
    };
}

columns! {
    workout_id: WorkoutId,
    seq: u64,
    /// Index of the sample within its batch.
    index: u32,
    lsn: u64,
    time_ms: i64,
    lat_deg: Option<f64>,
    lon_deg: Option<f64>,
    altitude_m: Option<f32>,
    heart_rate_bpm: Option<u8>,
    cadence_rpm: Option<u8>,
    power_w: Option<u16>,
    h_accuracy_m: Option<f32>,
    flags: u16,
    paused: bool,
    time_out_of_order: bool,
    distance_m: f64,
    elapsed_s: f64,
    speed_mps: Option<f32>,
    moving: bool,
    after_pause: bool,
    position_rejected: bool,
    hr_zone: Option<u8>,
    smoothed_lat: Option<f64>,
    smoothed_lon: Option<f64>,
    grade_pct: Option<f32>,
}

impl Points {
    pub fn len(&self) -> usize {
        self.time_ms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.time_ms.is_empty()
    }

    /// The first sample, as a row.
    pub fn first(&self) -> Option<EnrichedPoint> {
        (!self.is_empty()).then(|| self.get(0))
    }

    /// Every sample as a row, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = EnrichedPoint> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    /// Nulls the positions (recorded and smoothed) of samples recorded before `before_ms`.
    pub fn drop_positions_before(&mut self, before_ms: i64) {
        for (i, _) in self.time_ms.iter().enumerate().filter(|(_, time)| **time < before_ms) {
            self.lat_deg[i] = None;
            self.lon_deg[i] = None;
            self.smoothed_lat[i] = None;
            self.smoothed_lon[i] = None;
        }
    }
}

impl FromIterator<EnrichedPoint> for Points {
    fn from_iter<I: IntoIterator<Item = EnrichedPoint>>(rows: I) -> Self {
        let mut points = Points::default();
        for row in rows {
            points.push(&row);
        }
        points
    }
}

impl<'a> IntoIterator for &'a Points {
    type Item = EnrichedPoint;
    type IntoIter = Box<dyn ExactSizeIterator<Item = EnrichedPoint> + 'a>;
    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

impl IntoIterator for Points {
    type Item = EnrichedPoint;
    type IntoIter = std::vec::IntoIter<EnrichedPoint>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter().collect::<Vec<_>>().into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(i: u32) -> EnrichedPoint {
        EnrichedPoint {
            index: i,
            time_ms: i64::from(i) * 1000,
            lat_deg: Some(f64::from(i)),
            smoothed_lon: i.is_multiple_of(2).then_some(1.5),
            distance_m: f64::from(i) * 3.0,
            moving: i.is_multiple_of(3),
            heart_rate_bpm: Some(120),
            ..EnrichedPoint::default()
        }
    }

    #[test]
    fn rows_in_are_rows_out_and_runs_append_in_order() {
        let rows: Vec<EnrichedPoint> = (0..10).map(row).collect();
        let points: Points = rows.iter().cloned().collect();
        assert_eq!(points.len(), 10);
        assert_eq!(points.iter().collect::<Vec<_>>(), rows);
        let mut joined = Points::default();
        joined.extend_from(&points, 0..4);
        joined.extend_from(&points, 4..10);
        assert_eq!(joined, points);
        joined.clear();
        assert!(joined.is_empty() && joined.first().is_none());
    }

    #[test]
    fn dropping_positions_nulls_only_earlier_samples() {
        let mut points: Points = (0..4).map(row).collect();
        points.drop_positions_before(2000);
        assert_eq!(points.lat_deg, vec![None, None, Some(2.0), Some(3.0)]);
        assert_eq!(points.smoothed_lon, vec![None, None, Some(1.5), None]);
        assert_eq!(points.distance_m[0], 0.0);
    }
}
