//! The one place that knows the lake's object key layout.

use std::fmt;

use chrono::{DateTime, Datelike, Timelike};
use object_store::path::Path;

/// A Hive partition: always by time, never by user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Partition {
    pub year: i32,
    pub month: u32,
    pub day: u32,
    /// Present for hourly tables (`points`), absent for daily ones (`workouts`).
    pub hour: Option<u32>,
}

impl Partition {
    /// The UTC date (and hour, when `hourly`) of a Unix-millisecond timestamp.
    pub fn of_time_ms(time_ms: i64, hourly: bool) -> Partition {
        let t = DateTime::from_timestamp_millis(time_ms).unwrap_or_default();
        Partition { year: t.year(), month: t.month(), day: t.day(), hour: hourly.then(|| t.hour()) }
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "date={:04}-{:02}-{:02}", self.year, self.month, self.day)?;
        if let Some(hour) = self.hour {
            write!(f, "/hour={hour:02}")?;
        }
        Ok(())
    }
}

/// `<table>/<partition>/part-<label>.parquet` (the embedded log's files) or
/// `<table>/<partition>/part-s<source>-<label>.parquet` (the files of partition `source` of the
/// scale-out raw topic: each source has its own LSNs, so its own labels), built and parsed only
/// here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectKey {
    pub table: &'static str,
    pub partition: Partition,
    pub source: Option<u32>,
    pub label: u64,
}

impl ObjectKey {
    pub fn path(&self) -> Path {
        match self.source {
            None => Path::from(format!("{}/{}/part-{:020}.parquet", self.table, self.partition, self.label)),
            Some(source) => {
                Path::from(format!("{}/{}/part-s{source:04}-{:020}.parquet", self.table, self.partition, self.label))
            }
        }
    }

    /// Parses a key of `table`; None for anything else (temporary files, foreign objects).
    pub fn parse(table: &'static str, path: &Path) -> Option<ObjectKey> {
        let mut parts = path.as_ref().split('/');
        if parts.next()? != table {
            return None;
        }
        let date = parts.next()?.strip_prefix("date=")?;
        let mut next = parts.next()?;
        let hour = match next.strip_prefix("hour=") {
            Some(h) => {
                let hour = h.parse().ok()?;
                next = parts.next()?;
                Some(hour)
            }
            None => None,
        };
        let name = next.strip_prefix("part-")?.strip_suffix(".parquet")?;
        let (source, label) = match name.strip_prefix('s') {
            Some(rest) => {
                let (source, label) = rest.split_once('-')?;
                (Some(source.parse().ok()?), label.parse().ok()?)
            }
            None => (None, name.parse().ok()?),
        };
        if parts.next().is_some() {
            return None;
        }
        let mut ymd = date.split('-');
        let partition = Partition {
            year: ymd.next()?.parse().ok()?,
            month: ymd.next()?.parse().ok()?,
            day: ymd.next()?.parse().ok()?,
            hour,
        };
        Some(ObjectKey { table, partition, source, label })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        let partition = Partition::of_time_ms(1_700_000_000_000, true);
        let key = ObjectKey { table: "points", partition, source: None, label: 42 };
        assert_eq!(key.path().as_ref(), "points/date=2023-11-14/hour=22/part-00000000000000000042.parquet");
        assert_eq!(ObjectKey::parse("points", &key.path()), Some(key));
        let daily = ObjectKey { table: "workouts", partition: Partition::of_time_ms(0, false), source: None, label: 7 };
        assert_eq!(daily.path().as_ref(), "workouts/date=1970-01-01/part-00000000000000000007.parquet");
        assert_eq!(ObjectKey::parse("workouts", &daily.path()), Some(daily));
        assert_eq!(ObjectKey::parse("points", &Path::from("points/date=2023-11-14/hour=22/part-1.parquet#1")), None);
        let sourced = ObjectKey { table: "points", partition, source: Some(3), label: 42 };
        assert_eq!(sourced.path().as_ref(), "points/date=2023-11-14/hour=22/part-s0003-00000000000000000042.parquet");
        assert_eq!(ObjectKey::parse("points", &sourced.path()), Some(sourced));
        assert_eq!(ObjectKey::parse("points", &Path::from("points/date=2023-11-14/hour=22/part-sx-1.parquet")), None);
    }
}
