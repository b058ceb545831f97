//! The one place that knows the lake's object key layout.

use std::fmt;

use chrono::{DateTime, Datelike, Timelike};

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

impl Partition {
    /// The partition's date as days since 1970-01-01 (Delta's DATE).
    pub fn days_since_epoch(&self) -> i32 {
        chrono::NaiveDate::from_ymd_opt(self.year, self.month, self.day)
            .map_or(0, |day| (day - chrono::NaiveDate::default()).num_days() as i32)
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

/// A data file's path relative to its table's root:
/// `<partition>/part-<label>-<unique>.parquet` (the embedded log's files) or
/// `<partition>/part-s<source>-<label>-<unique>.parquet` (partition `source` of the scale-out raw
/// topic, which has its own LSNs). `<label>` is the newest LSN the file's rows come from; `<unique>`
/// keeps two writers (or a writer and its own retry) from ever replacing each other's file.
/// Files of the earlier, log-less layout have no `-<unique>`. Built and parsed only here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectKey {
    pub partition: Partition,
    pub source: Option<u32>,
    pub label: u64,
    pub unique: Option<String>,
}

impl ObjectKey {
    /// A new file's key, unique however often it is written.
    pub fn new(partition: Partition, source: Option<u32>, label: u64) -> ObjectKey {
        let unique = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
        ObjectKey { partition, source, label, unique: Some(unique) }
    }

    /// The path relative to the table root.
    pub fn relative(&self) -> String {
        let source = self.source.map(|s| format!("s{s:04}-")).unwrap_or_default();
        let unique = self.unique.as_ref().map(|u| format!("-{u}")).unwrap_or_default();
        format!("{}/part-{source}{:020}{unique}.parquet", self.partition, self.label)
    }

    /// Parses a path relative to the table root; None for anything else (the log, temporary
    /// files, foreign objects).
    pub fn parse(path: &str) -> Option<ObjectKey> {
        let mut parts = path.split('/');
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
        let (source, rest) = match name.strip_prefix('s') {
            Some(rest) => {
                let (source, rest) = rest.split_once('-')?;
                (Some(source.parse().ok()?), rest)
            }
            None => (None, name),
        };
        let (label, unique) = match rest.split_once('-') {
            Some((label, unique)) => (label, Some(unique.to_string())),
            None => (rest, None),
        };
        let label = label.parse().ok()?;
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
        Some(ObjectKey { partition, source, label, unique })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        let partition = Partition::of_time_ms(1_700_000_000_000, true);
        let key = ObjectKey::new(partition, None, 42);
        let path = key.relative();
        assert!(path.starts_with("date=2023-11-14/hour=22/part-00000000000000000042-"), "{path}");
        assert_eq!(ObjectKey::parse(&path), Some(key.clone()));
        assert_ne!(ObjectKey::new(partition, None, 42), key, "every new key is unique");
        let daily = ObjectKey::new(Partition::of_time_ms(0, false), Some(3), 7);
        assert!(daily.relative().starts_with("date=1970-01-01/part-s0003-00000000000000000007-"));
        assert_eq!(ObjectKey::parse(&daily.relative()), Some(daily));
        let legacy = ObjectKey::parse("date=2023-11-14/hour=22/part-s0003-00000000000000000042.parquet").unwrap();
        assert_eq!((legacy.source, legacy.label, legacy.unique), (Some(3), 42, None));
        assert_eq!(ObjectKey::parse("_delta_log/00000000000000000000.json"), None);
        assert_eq!(ObjectKey::parse("date=2023-11-14/hour=22/part-sx-1.parquet"), None);
        assert_eq!(Partition::of_time_ms(86_400_000 * 3, false).days_since_epoch(), 3);
    }
}
