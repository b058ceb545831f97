//! File writers, the importers' counterparts: a recorded workout as GPX 1.1 (with Garmin's
//! TrackPointExtension for heart rate and cadence) or TCX (with its laps), written with quick-xml
//! so every file is well-formed and escaped. What the importers read back from them is what was
//! written, up to the formats' precision.

mod gpx;
mod tcx;

pub use gpx::gpx;
pub use tcx::tcx;

use crate::Sport;
use crate::import::Fix;

/// A workout to write: its points in time order, and its laps.
#[derive(Debug, Clone, Copy)]
pub struct Recording<'a> {
    pub sport: Sport,
    /// The workout's name or id, for the file's `name`.
    pub name: &'a str,
    pub fixes: &'a [Fix],
    /// In time order; the whole recording is one lap when empty.
    pub laps: &'a [LapSpan],
    /// When the timer was paused, `[paused, resumed]` Unix ms, in time order: the points after
    /// each pause begin a new track segment (GPX) or track (TCX), which the importers read back
    /// as a pause and a resume, so the moving stretches stay apart (see `stretches`).
    pub pauses: &'a [[i64; 2]],
}

impl Recording<'_> {
    /// The moving stretches, as ranges of `fixes`: each ends with the last fix at or before a
    /// pause began, the next begins with the first fix at or after the resume. Fixes recorded
    /// while the timer was paused (some watches keep recording) are in none: a file has no way to
    /// mark them, and read back inside a stretch they would count as moving.
    fn stretches(&self) -> Vec<std::ops::Range<usize>> {
        let len = self.fixes.len();
        let first_from = |from: usize, after: &dyn Fn(i64) -> bool| {
            from + self.fixes[from..].iter().position(|f| f.time_ms.is_some_and(after)).unwrap_or(len - from)
        };
        let mut stretches = Vec::new();
        let mut start = 0;
        for &[paused, resumed] in self.pauses {
            let end = first_from(start, &|t| t > paused);
            if end > start {
                stretches.push(start..end);
            }
            start = first_from(end, &|t| t >= resumed);
        }
        if start < len {
            stretches.push(start..len);
        }
        stretches
    }
}

/// One lap: from `start_ms` to `end_ms` (Unix ms), with its totals.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LapSpan {
    pub start_ms: i64,
    pub end_ms: i64,
    pub distance_m: f64,
}

/// ISO 8601 UTC with milliseconds, as both formats take (`xsd:dateTime`).
fn instant(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Coordinates and heights as the wire keeps them: 1e-7 degrees, centimetres.
fn degrees(value: f64) -> String {
    format!("{value:.7}")
}

fn metres(value: f64) -> String {
    format!("{value:.2}")
}
