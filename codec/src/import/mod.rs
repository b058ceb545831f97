//! File importers: GPX 1.1 (with Garmin TrackPointExtension), TCX and FIT, turned into the same
//! batches as the wire. One module per format; [`import_bytes`] sniffs the format from content.
//!
//! An importer keeps what it can: a file with some bad records imports the rest and lists what it
//! skipped in [`Imported::warnings`]; only a file with nothing usable is an [`ImportError`].

mod altimeter;
mod fit;
mod gpx;
mod gzip;
mod tcx;
mod xml;

pub use gzip::{Packed, gunzip};

use std::ops::ControlFlow;

use crate::{BatchData, ControlEvent, ControlKind, Sample, Sport, WorkoutId, missing};

/// The formats we read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Gpx,
    Tcx,
    Fit,
}

/// One recorded point, in absolute time, before it becomes a wire [`Sample`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fix {
    /// Unix milliseconds; None when the file has no usable time for it.
    pub time_ms: Option<i64>,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub altitude_m: Option<f64>,
    pub heart_rate: Option<u8>,
    pub cadence: Option<u8>,
    pub power_w: Option<u16>,
    /// Cumulative distance the device recorded (FIT/TCX), metres.
    pub device_distance_m: Option<f64>,
    /// Speed the device recorded (FIT), m/s.
    pub device_speed_mps: Option<f64>,
}

pub use crate::DeviceTotals;

/// The athlete as the device knew them (FIT user_profile).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct AthleteProfile {
    pub weight_kg: Option<f64>,
    pub age_years: Option<f64>,
    /// true = male, as FIT records it.
    pub male: Option<bool>,
    pub height_m: Option<f64>,
    pub hr_max: Option<f64>,
    pub hr_rest: Option<f64>,
}

/// What a file holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    pub format: Format,
    pub sport: Sport,
    pub device_model: Option<String>,
    pub fixes: Vec<Fix>,
    /// Timer events and lap ends in absolute time (start, pause, resume, complete, lap).
    pub events: Vec<(i64, ControlKind)>,
    pub device: DeviceTotals,
    pub profile: Option<AthleteProfile>,
    /// Records skipped and oddities handled, in words a user can act on.
    pub warnings: Vec<String>,
    /// The sessions the file records, when it says (FIT `session` messages), in time order: a
    /// multisport file (triathlon) has one per leg, see [`Imported::into_sessions`].
    pub sessions: Vec<Session>,
}

/// One session of a file: a sport over a span of time, with the device's totals for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    pub sport: Sport,
    /// Unix ms: the session's first and last instant.
    pub start_ms: i64,
    pub end_ms: i64,
    pub device: DeviceTotals,
}

/// Why a file could not be imported at all.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("not a GPX, TCX or FIT file (it starts with {start:?}): export the activity as GPX, TCX or FIT")]
    UnknownFormat { start: String },
    #[error(
        "{format:?} file is unreadable ({detail}); export the activity again from the app or device that recorded it"
    )]
    Malformed { format: Format, detail: String },
    #[error("{format:?} file has no track points: nothing to import (a route or course file without a recording?)")]
    Empty { format: Format },
    #[error(
        "{format:?} file has more than {max} track points, more than almost six days recorded once a second: split it into one file per activity"
    )]
    TooManyPoints { format: Format, max: usize },
    #[error("the file is not valid gzip ({detail}): upload it as exported, or gzip it again")]
    BadGzip { detail: String },
    #[error(
        "the gzipped file expands to more than {limit} bytes, more than a real {kind} file of its size would: upload it uncompressed"
    )]
    ExpandsTooFar { kind: &'static str, limit: usize },
}

/// Most track points one file may hold: a bound on the memory an import takes (about 120 bytes
/// per point), far above a real recording (a 24-hour race at one point per second is 86,400).
pub const MAX_POINTS: usize = 500_000;

/// Reads a file's bytes in whichever supported format they are.
pub fn import_bytes(bytes: &[u8]) -> Result<Imported, ImportError> {
    let imported = match sniff(bytes) {
        Some(Format::Fit) => fit::import(bytes)?,
        Some(Format::Gpx) => gpx::import(bytes)?,
        Some(Format::Tcx) => tcx::import(bytes)?,
        None => {
            let start = String::from_utf8_lossy(&bytes[..bytes.len().min(16)]).into_owned();
            return Err(ImportError::UnknownFormat { start });
        }
    };
    if imported.fixes.is_empty() {
        return Err(ImportError::Empty { format: imported.format });
    }
    Ok(imported)
}

/// FIT files say ".FIT" at bytes 8..12; XML files are told apart by their root element.
pub fn sniff(bytes: &[u8]) -> Option<Format> {
    if bytes.len() >= 12 && &bytes[8..12] == b".FIT" {
        return Some(Format::Fit);
    }
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(4096)]);
    if head.contains("<gpx") {
        Some(Format::Gpx)
    } else if head.contains("<TrainingCenterDatabase") {
        Some(Format::Tcx)
    } else {
        None
    }
}

/// Times earlier than this are not real recordings (GPSBabel writes 1901-12-13 for "no time").
const EARLIEST_PLAUSIBLE_MS: i64 = 631_065_600_000; // 1989-12-31T00:00Z, the FIT epoch

/// The namespace of recorded-workout ids (UUIDv5).
const RECORDING_NAMESPACE: uuid::Uuid = uuid::uuid!("0b6f2f0e-4f8e-4d55-8f3c-2a9e51b7c6d4");

impl Imported {
    /// The workout id of this recording for `user`: UUIDv5 of (user, first fix time, sport), so
    /// the same recording is the same workout whatever file format it comes in and whichever way
    /// it arrives (`trackwire import` or an upload). A file without times (a route export) has
    /// only its first 64 positions to go by.
    pub fn workout_id(&self, user: &str) -> WorkoutId {
        let name = match self.fixes.iter().find_map(|f| f.time_ms) {
            Some(start) => format!("{user}\n{start}\n{}", crate::sport_name(self.sport)),
            None => {
                let mut name = format!("{user}\nuntimed");
                for fix in self.fixes.iter().take(64) {
                    name.push_str(&format!("\n{:?},{:?}", fix.lat, fix.lon));
                }
                name
            }
        };
        WorkoutId(*uuid::Uuid::new_v5(&RECORDING_NAMESPACE, name.as_bytes()).as_bytes())
    }

    /// `Break` once the file holds more points than an import may: a reader stops there.
    pub(crate) fn within_points_bound(&self) -> ControlFlow<()> {
        if self.fixes.len() > MAX_POINTS { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
    }

    /// The error a reader that stopped at the bound answers with.
    pub(crate) fn check_points_bound(&self) -> Result<(), ImportError> {
        match self.within_points_bound() {
            ControlFlow::Continue(()) => Ok(()),
            ControlFlow::Break(()) => Err(ImportError::TooManyPoints { format: self.format, max: MAX_POINTS }),
        }
    }

    /// Nothing yet, for an importer to fill.
    pub(crate) fn empty(format: Format) -> Self {
        Imported {
            format,
            sport: Sport::Unknown,
            device_model: None,
            fixes: Vec::new(),
            events: Vec::new(),
            device: DeviceTotals::default(),
            profile: None,
            warnings: Vec::new(),
            sessions: Vec::new(),
        }
    }

    /// One recording per session (a triathlon's swim, transitions, ride and run become one
    /// workout each, with its session's sport and totals, as Strava does), or the file as it is
    /// when it records fewer than two sessions. Each fix and event goes to the last session that
    /// started at or before it (an untimed fix stays with the fix before it); the first session
    /// also takes what precedes every session. A session left without fixes is dropped.
    pub fn into_sessions(self) -> Vec<Imported> {
        if self.sessions.len() < 2 {
            return vec![self];
        }
        let index_of = |t: i64| self.sessions.iter().rposition(|s| s.start_ms <= t).unwrap_or(0);
        let mut parts: Vec<Imported> = self
            .sessions
            .iter()
            .map(|session| Imported {
                format: self.format,
                sport: session.sport,
                device_model: self.device_model.clone(),
                fixes: Vec::new(),
                events: Vec::new(),
                device: session.device.clone(),
                profile: self.profile.clone(),
                warnings: Vec::new(),
                sessions: vec![session.clone()],
            })
            .collect();
        let mut current = 0;
        for fix in self.fixes {
            if let Some(t) = fix.time_ms {
                current = index_of(t);
            }
            parts[current].fixes.push(fix);
        }
        for (t, kind) in self.events {
            parts[index_of(t)].events.push((t, kind));
        }
        parts.retain(|part| !part.fixes.is_empty());
        if let Some(first) = parts.first_mut() {
            first.warnings = self.warnings;
        }
        parts
    }

    /// Drops implausible times, keeping the fixes as untimed, and says so once.
    pub(crate) fn check_times(&mut self) {
        let bad = self.fixes.iter().filter(|f| f.time_ms.is_some_and(|t| t < EARLIEST_PLAUSIBLE_MS)).count();
        if bad > 0 {
            for fix in &mut self.fixes {
                if fix.time_ms.is_some_and(|t| t < EARLIEST_PLAUSIBLE_MS) {
                    fix.time_ms = None;
                }
            }
            self.warnings.push(format!(
                "{bad} points have timestamps before 1990 (placeholder times); they are imported as untimed"
            ));
        }
    }

    /// True when the device that wrote the file measures altitude with a barometer (by its model
    /// name): its samples' altitudes then carry the `BarometricAltitude` flag.
    pub fn altitude_is_barometric(&self) -> bool {
        self.device_model.as_deref().is_some_and(altimeter::records_barometric_altitude)
    }

    /// Splits the file into wire batches of up to `batch_size` samples, seq 0, 1, … with a
    /// Complete event at the end. Untimed fixes get times one second apart after the last real
    /// time (or from the Unix epoch when the file has none) and the `Untimed` sample flag;
    /// altitudes from a device with a barometer carry the `BarometricAltitude` flag.
    pub fn to_batches(
        &self,
        workout_id: WorkoutId,
        device_id: &str,
        user_id: &str,
        batch_size: usize,
    ) -> Vec<BatchData> {
        let mut clock = self.fixes.iter().find_map(|f| f.time_ms).unwrap_or(0);
        let barometric = self.altitude_is_barometric();
        let altitude_flag = |f: &Fix| {
            if barometric && f.altitude_m.is_some() { crate::SampleFlags::BarometricAltitude.bits() } else { 0 }
        };
        let timed: Vec<(i64, u16, &Fix)> = self
            .fixes
            .iter()
            .map(|f| match f.time_ms {
                Some(t) => {
                    clock = t;
                    (t, altitude_flag(f), f)
                }
                None => {
                    clock += 1000;
                    (clock, crate::SampleFlags::Untimed.bits() | altitude_flag(f), f)
                }
            })
            .collect();
        let end_ms = timed.iter().map(|t| t.0).max().unwrap_or(0);
        let chunks: Vec<_> = timed.chunks(batch_size.max(1)).collect();
        let bases: Vec<i64> = chunks.iter().map(|c| c.iter().map(|t| t.0).min().unwrap_or(0)).collect();
        let mut batches = Vec::with_capacity(chunks.len());
        for (seq, chunk) in chunks.iter().enumerate() {
            let base = bases[seq];
            let last_batch = seq + 1 == chunks.len();
            let offset = |t: i64| (t - base).clamp(0, i64::from(u32::MAX)) as u32;
            let samples = chunk.iter().map(|(t, flags, f)| to_sample(f, offset(*t), *flags)).collect();
            // Each event belongs to exactly one batch: the one whose time span it falls in (the
            // first batch also takes events before the first sample, the last those after).
            let in_span = |t: i64| (seq == 0 || t >= base) && (last_batch || t < bases[seq + 1]);
            let mut events: Vec<ControlEvent> = self
                .events
                .iter()
                .filter(|(t, k)| in_span(*t) && !(*t == end_ms && *k == ControlKind::Complete))
                .map(|(t, k)| ControlEvent::new(offset(*t), *k))
                .collect();
            if last_batch {
                events.push(ControlEvent::new(offset(end_ms), ControlKind::Complete));
            }
            batches.push(BatchData {
                device_totals: (last_batch && !self.device.is_empty()).then(|| self.device.clone()),
                device_id: device_id.to_owned(),
                user_id: user_id.to_owned(),
                workout_id,
                sport: self.sport,
                seq: seq as u64,
                base_time_ms: base,
                device_model: self.device_model.clone(),
                samples,
                events,
            });
        }
        batches
    }
}

fn to_sample(f: &Fix, offset_ms: u32, flags: u16) -> Sample {
    let e7 = |deg: Option<f64>| deg.map_or(missing::COORDINATE, |d| (d * 1e7).round() as i32);
    let (lat, lon) = match (f.lat, f.lon) {
        (Some(lat), Some(lon)) => (e7(Some(lat)), e7(Some(lon))),
        _ => (missing::COORDINATE, missing::COORDINATE),
    };
    Sample::new(
        offset_ms,
        lat,
        lon,
        f.altitude_m.map_or(missing::ALTITUDE, |a| (a * 100.0).round() as i32),
        f.heart_rate.unwrap_or(missing::HEART_RATE),
        f.cadence.unwrap_or(missing::CADENCE),
        f.power_w.unwrap_or(missing::POWER),
        missing::ACCURACY,
        flags,
    )
}
