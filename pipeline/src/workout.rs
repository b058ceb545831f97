//! The per-workout state machine (the seed aggregate): Start, Update, Pause, Resume, Complete,
//! Cancel. Sans-IO: a batch in, points and events out.

use trackwire_codec::{BatchView, ControlEvent, ControlKind, Sample, SampleFlags, missing};

use crate::laps::{LapMarks, Totals};
use crate::route::RouteSketch;
use crate::stages::Stages;
use crate::{
    AthleteProfile, EndReason, EnrichedPoint, EventData, EventKind, LatLon, NotApplied, ShardOutput, Transition,
    WorkoutEvent, WorkoutProgress, WorkoutStatus, WorkoutSummary, sport_name,
};

/// One workout's state inside its shard.
#[derive(Debug, Clone)]
pub struct Workout {
    /// What the summary is built from besides the stages' totals: the stages keep those, so a
    /// copy of every derived figure (a 576-byte summary per workout) is not kept between batches.
    head: Head,
    stages: Stages,
    last_time_ms: Option<i64>,
    /// Time of the last timed, in-order sample (what activity steps are measured from).
    last_timed_ms: Option<i64>,
    /// A pause (or resume) happened since the last sample.
    paused_since_last_sample: bool,
    /// Device time of the last `WorkoutUpdated`, Unix ms (None before the first).
    last_update_ms: Option<i64>,
    /// The route's outline for `WorkoutCompleted`, from the first fix on (boxed: None until then,
    /// and for workouts without positions).
    route: Option<Box<RouteSketch>>,
}

/// A workout's identity, lifecycle and counters.
#[derive(Debug, Clone)]
struct Head {
    workout_id: trackwire_codec::WorkoutId,
    user_id: String,
    device_id: String,
    device_model: Option<String>,
    sport: &'static str,
    status: WorkoutStatus,
    end_reason: Option<EndReason>,
    start_time_ms: i64,
    end_time_ms: i64,
    samples: u64,
    batches: u64,
    last_seq: u64,
    first_lsn: u64,
    last_lsn: u64,
    stored_from_ms: Option<i64>,
    stored_through_ms: Option<i64>,
    /// What few workouts have, boxed together so the many without pay one pointer: device
    /// totals (imported files) and laps (lap presses).
    rare: Option<Box<Rare>>,
    /// What the calories and training load were computed with (boxed: often absent).
    profile: Option<Box<AthleteProfile>>,
}

/// A workout without samples (entered by hand, or a file of totals only) is what its device's
/// totals say: there is nothing to compute them from.
fn described_by_device(summary: &mut WorkoutSummary) {
    let Some(totals) = summary.device_totals.clone() else { return };
    summary.distance_m = totals.distance_m.unwrap_or(0.0);
    summary.moving_time_s = totals.timer_s.unwrap_or(0.0);
    summary.timer_s = totals.timer_s.unwrap_or(summary.timer_s);
    summary.elevation_gain_m = totals.ascent_m;
    summary.elevation_loss_m = totals.descent_m;
    summary.max_speed_mps = totals.max_speed_mps;
    summary.heart_rate_avg_bpm = totals.heart_rate_avg;
    summary.heart_rate_max_bpm = totals.heart_rate_max.map(|hr| hr.round().clamp(0.0, 255.0) as u8);
    if let Some(kcal) = totals.calories_kcal {
        summary.calories_kcal = Some(kcal);
        summary.calories_method = Some("device".into());
    }
}

/// See [`Head::rare`].
#[derive(Debug, Clone, Default)]
struct Rare {
    device_totals: Option<trackwire_codec::DeviceTotals>,
    laps: Option<LapMarks>,
    /// `[paused, resumed]`; `i64::MAX` while still paused.
    pauses: Vec<[i64; 2]>,
}

/// How often a streaming workout emits `WorkoutUpdated` by default: at most once per this much
/// device time (pauses, resumes and the end always emit one). Ten seconds keeps a live view
/// current while a 1 Hz watch sending a batch a second causes a tenth of the events.
pub const DEFAULT_UPDATE_INTERVAL_MS: i64 = 10_000;

/// The instants the pipeline computes with: years 0000 through 9999, the range an RFC 3339
/// timestamp can write. A batch's base time is clamped into it, so no sum or difference of two
/// instants (offsets add at most 2^32 ms) can overflow, whatever a decoded batch claims; whether
/// such a time is plausible is for ingest to judge before the batch is logged.
const REPRESENTABLE_TIME_MS: std::ops::RangeInclusive<i64> = -62_167_219_200_000..=253_402_300_799_999;

fn representable_base_ms(batch: &BatchView<'_>) -> i64 {
    batch.base_time_ms().clamp(*REPRESENTABLE_TIME_MS.start(), *REPRESENTABLE_TIME_MS.end())
}

impl Workout {
    /// True when the batch's sender is who started this workout.
    pub fn is_from(&self, user_id: &str, device_id: &str) -> bool {
        self.head.user_id == user_id && self.head.device_id == device_id
    }

    /// A workout that starts with this batch, by an athlete the pipeline may know.
    pub fn new(first: &BatchView<'_>, lsn: u64, profile: Option<&AthleteProfile>) -> Self {
        let start = representable_base_ms(first)
            + i64::from(
                first
                    .samples()
                    .iter()
                    .map(Sample::time_offset_ms)
                    .chain(first.events().iter().map(|e| e.time_offset_ms()))
                    .min()
                    .unwrap_or(0),
            );
        Workout {
            head: Head {
                workout_id: first.workout_id(),
                user_id: first.user_id().to_owned(),
                device_id: first.device_id().to_owned(),
                device_model: first.device_model().map(str::to_owned),
                sport: sport_name(first.sport()),
                status: WorkoutStatus::Active,
                end_reason: None,
                start_time_ms: start,
                end_time_ms: start,
                samples: 0,
                batches: 0,
                last_seq: 0,
                first_lsn: lsn,
                last_lsn: lsn,
                stored_from_ms: None,
                stored_through_ms: None,
                rare: None,
                profile: profile.map(|p| Box::new(p.clone())),
            },
            stages: Stages::new(first.sport(), profile),
            last_time_ms: None,
            last_timed_ms: None,
            paused_since_last_sample: false,
            last_update_ms: None,
            route: None,
        }
    }

    /// Applies one batch, which the log stored at `stored_ms` (when it says). `started` is true
    /// for the batch that created the workout; `update_interval_ms` is the least device time
    /// between two `WorkoutUpdated` events.
    pub fn apply(
        &mut self,
        batch: &BatchView<'_>,
        lsn: u64,
        stored_ms: Option<i64>,
        started: bool,
        update_interval_ms: i64,
    ) -> ShardOutput {
        let mut out = ShardOutput { lsn, stored_ms, ..ShardOutput::default() };
        if self.head.status.is_ended() {
            // Late data for a finished workout: acknowledged and kept in the log, not applied.
            tracing::debug!(workout = %self.head.workout_id, seq = batch.seq(), "batch after the workout ended; ignored");
            out.not_applied = Some(NotApplied::AfterEnd);
            return out;
        }
        let base = representable_base_ms(batch);
        let mut events = batch.events().to_vec();
        // The server's idle-timeout record ends the workout only if no batch was applied since
        // it was decided (the seq says how many there were); otherwise it is stale and nothing
        // of it applies. In a device's batch the kind means nothing.
        let timed_out = batch.seq() >= trackwire_codec::SERVER_SEQ_FLOOR
            && batch.events().iter().any(|e| e.kind() == ControlKind::TimedOut);
        if timed_out && batch.seq() != trackwire_codec::idle_timeout_seq(self.head.batches) {
            tracing::debug!(workout = %self.head.workout_id, "idle timeout decided before the latest batch; ignored");
            return out;
        }
        if !timed_out {
            events.retain(|e| e.kind() != ControlKind::TimedOut);
        }
        events.sort_by_key(|e| e.time_offset_ms());
        let mut pending_events = events.iter().peekable();
        // (kind, time, distance then) of state changes in this batch, in order.
        let mut transitions: Vec<(EventKind, i64, f64)> = Vec::new();
        if started {
            transitions.push((EventKind::WorkoutStarted, self.head.start_time_ms, 0.0));
        }
        out.points.reserve(batch.samples().len());
        let seq = batch.seq();
        for (index, sample) in batch.samples().iter().enumerate() {
            // Start/Resume at a sample's instant open the stretch that sample belongs to;
            // Pause/Complete/Cancel at that instant close it after the sample.
            let applies_before = |e: &&ControlEvent| {
                e.time_offset_ms() < sample.time_offset_ms()
                    || (e.time_offset_ms() == sample.time_offset_ms()
                        && matches!(e.kind(), ControlKind::Start | ControlKind::Resume))
            };
            while let Some(event) = pending_events.next_if(applies_before) {
                self.transition(event.kind(), base + i64::from(event.time_offset_ms()), &mut transitions);
            }
            if self.head.status.is_ended() {
                break;
            }
            let mut point = self.decode_sample(sample, base, seq, index as u32, lsn);
            self.stages.on_sample(&mut point);
            // Cleaning left only the fixes it accepted.
            if let (Some(lat), Some(lon)) = (point.lat_deg, point.lon_deg) {
                match &mut self.route {
                    Some(route) => route.push(lat, lon),
                    None => self.route = Some(Box::new(RouteSketch::new(lat, lon))),
                }
            }
            if let Some(marks) = self.head.rare.as_mut().and_then(|rare| rare.laps.as_mut()) {
                marks.observe(point.heart_rate_bpm);
            }
            out.points.push(&point);
        }
        for event in pending_events {
            self.transition(event.kind(), base + i64::from(event.time_offset_ms()), &mut transitions);
        }
        if let Some(totals) = batch.device_totals() {
            self.head.rare.get_or_insert_default().device_totals = Some(totals);
        }
        self.head.last_lsn = lsn;
        // The server's record is not one of the device's batches: counts, seqs and storage
        // times stay the device's.
        if !timed_out {
            self.head.batches += 1;
            self.head.samples += out.points.len() as u64;
            self.head.last_seq = self.head.last_seq.max(batch.seq());
        }
        if let Some(stored) = stored_ms.filter(|_| !timed_out) {
            self.head.stored_from_ms = Some(self.head.stored_from_ms.map_or(stored, |from| from.min(stored)));
            self.head.stored_through_ms = Some(self.head.stored_through_ms.map_or(stored, |to| to.max(stored)));
        }
        let mut summary = self.head.summary();
        self.stages.summarize(&mut summary);
        if let Some(end) = transitions.iter().map(|(_, t, _)| *t).max() {
            summary.end_time_ms = summary.end_time_ms.max(end);
            summary.elapsed_s = (summary.end_time_ms - summary.start_time_ms).max(0) as f64 / 1000.0;
        }
        if let Some(marks) = self.head.rare.as_ref().and_then(|rare| rare.laps.as_ref()) {
            summary.laps = marks.laps(self.totals(summary.end_time_ms));
        }
        if let Some(rare) = self.head.rare.as_ref().filter(|rare| !rare.pauses.is_empty()) {
            let end = summary.end_time_ms;
            summary.pauses = rare.pauses.iter().map(|[from, to]| [*from, (*to).min(end)]).collect();
        }
        if summary.samples == 0 {
            described_by_device(&mut summary);
        }
        // The stages may widen the workout's span (samples before the start event, after the
        // last one); the head keeps it for the next batch.
        self.head.start_time_ms = summary.start_time_ms;
        self.head.end_time_ms = summary.end_time_ms;

        // Updated comes after the batch's pause/resume and before a final Completed/Cancelled.
        // It is throttled by device time (so a replay emits the same ones), except that a
        // state change always brings the latest figures.
        let update_due = !out.points.is_empty()
            && (!transitions.is_empty()
                || self.last_update_ms.is_none_or(|last| summary.end_time_ms - last >= update_interval_ms));
        let (ending, mut ordered): (Vec<_>, Vec<_>) = transitions
            .into_iter()
            .partition(|(k, _, _)| matches!(k, EventKind::WorkoutCompleted | EventKind::WorkoutCancelled));
        if update_due {
            ordered.push((EventKind::WorkoutUpdated, summary.end_time_ms, summary.distance_m));
            self.last_update_ms = Some(summary.end_time_ms);
        }
        ordered.extend(ending);
        out.ended = self.head.status.is_ended();
        let latlon = |(lat, lon): (f64, f64)| LatLon { lat, lon };
        out.events = ordered
            .into_iter()
            .enumerate()
            .map(|(i, (kind, timestamp_ms, distance_m))| WorkoutEvent {
                event_id: event_id(lsn, i as u16, &self.head.workout_id),
                kind,
                timestamp_ms,
                workout_id: self.head.workout_id,
                user_id: self.head.user_id.clone(),
                data: match kind {
                    EventKind::WorkoutUpdated => EventData::Progress(progress(&summary, &out.points)),
                    EventKind::WorkoutStarted => EventData::Started {
                        summary: Box::new(summary.clone()),
                        location: self.route.as_ref().map(|route| latlon(route.first())),
                    },
                    EventKind::WorkoutCompleted => EventData::Completed {
                        summary: Box::new(summary.clone()),
                        route: self.route.as_ref().map_or_else(Vec::new, |r| {
                            r.points(self.stages.cleaning.last_fix()).into_iter().map(latlon).collect()
                        }),
                    },
                    EventKind::WorkoutPaused | EventKind::WorkoutResumed => EventData::Transition(Transition {
                        status: if kind == EventKind::WorkoutPaused {
                            WorkoutStatus::Paused
                        } else {
                            WorkoutStatus::Active
                        },
                        elapsed_s: (timestamp_ms - summary.start_time_ms).max(0) as f64 / 1000.0,
                        distance_m,
                    }),
                    EventKind::WorkoutCancelled => EventData::Cancelled(Box::new(summary.clone())),
                },
            })
            .collect();
        out.summary = Some(summary);
        out
    }

    fn transition(&mut self, kind: ControlKind, at_ms: i64, transitions: &mut Vec<(EventKind, i64, f64)>) {
        use WorkoutStatus::*;
        if kind == ControlKind::Lap {
            if !self.head.status.is_ended() {
                self.press_lap(at_ms);
            }
            return;
        }
        let (next, event) = match (self.head.status, kind) {
            (Active, ControlKind::Pause) => (Paused, EventKind::WorkoutPaused),
            (Paused, ControlKind::Resume) => (Active, EventKind::WorkoutResumed),
            (Active | Paused, ControlKind::Complete) => (Completed, EventKind::WorkoutCompleted),
            (Active | Paused, ControlKind::Cancel) => (Cancelled, EventKind::WorkoutCancelled),
            // Only reaches here from the server's record (`apply` drops it from other batches).
            (Active | Paused, ControlKind::TimedOut) => (Completed, EventKind::WorkoutCompleted),
            (status, kind) => {
                // Start of a running workout, double pause, resume while active, unknown kinds:
                // devices repeat control events on retry; ignoring them is the idempotent answer.
                tracing::debug!(workout = %self.head.workout_id, ?status, kind = kind.0, "control event does not apply in this state; ignored");
                return;
            }
        };
        self.head.status = next;
        if next.is_ended() {
            self.head.end_reason =
                Some(if kind == ControlKind::TimedOut { EndReason::IdleTimeout } else { EndReason::Device });
        }
        self.paused_since_last_sample = true;
        match event {
            EventKind::WorkoutPaused => self.head.rare.get_or_insert_default().pauses.push([at_ms, i64::MAX]),
            EventKind::WorkoutResumed => {
                if let Some(open) = self.head.rare.as_mut().and_then(|rare| rare.pauses.last_mut()) {
                    open[1] = at_ms;
                }
            }
            _ => {}
        }
        transitions.push((event, at_ms, self.stages.distance.distance_m()));
    }

    /// The lap button at `at_ms`: ends the running lap (the first press also makes lap 1 of the
    /// workout so far).
    fn press_lap(&mut self, at_ms: i64) {
        let now = self.totals(at_ms);
        let rare = self.head.rare.get_or_insert_default();
        match &mut rare.laps {
            Some(marks) => marks.press(now),
            None => {
                let (_, _, hr_max) = self.stages.heart_rate.running_totals();
                rare.laps = Some(LapMarks::first_press(self.head.start_time_ms, hr_max, now));
            }
        }
    }

    /// The workout's running totals, as of `time_ms`.
    fn totals(&self, time_ms: i64) -> Totals {
        let (hr_sum, hr_count, _) = self.stages.heart_rate.running_totals();
        Totals {
            time_ms,
            distance_m: self.stages.distance.distance_m(),
            moving_ms: self.stages.moving.moving_ms(),
            elevation_gain_m: self.stages.elevation.gain_m(),
            hr_sum,
            hr_count,
        }
    }

    fn decode_sample(&mut self, s: &Sample, base_ms: i64, seq: u64, index: u32, lsn: u64) -> EnrichedPoint {
        let time_ms = base_ms + i64::from(s.time_offset_ms());
        let time_out_of_order = self.last_time_ms.is_some_and(|last| time_ms <= last);
        if !time_out_of_order {
            self.last_time_ms = Some(time_ms);
        }
        let paused = self.head.status == WorkoutStatus::Paused;
        let after_pause = std::mem::take(&mut self.paused_since_last_sample);
        let timed = s.flags() & SampleFlags::Untimed.bits() == 0 && !time_out_of_order;
        let active_step_ms = match self.last_timed_ms {
            Some(last) if timed && !paused && !after_pause => time_ms - last,
            _ => 0,
        };
        if timed {
            self.last_timed_ms = Some(time_ms);
        }
        let (lat, lon) = (s.lat_e7(), s.lon_e7());
        let has_fix = lat != missing::COORDINATE
            && lon != missing::COORDINATE
            && (-900_000_000..=900_000_000).contains(&lat)
            && (-1_800_000_000..=1_800_000_000).contains(&lon);
        EnrichedPoint {
            workout_id: self.head.workout_id,
            seq,
            index,
            lsn,
            time_ms,
            lat_deg: has_fix.then(|| f64::from(lat) * 1e-7),
            lon_deg: has_fix.then(|| f64::from(lon) * 1e-7),
            smoothed_lat: None,
            smoothed_lon: None,
            altitude_m: (s.altitude_cm() != missing::ALTITUDE).then(|| s.altitude_cm() as f32 / 100.0),
            heart_rate_bpm: (s.heart_rate_bpm() != missing::HEART_RATE).then(|| s.heart_rate_bpm()),
            cadence_rpm: (s.cadence_rpm() != missing::CADENCE).then(|| s.cadence_rpm()),
            power_w: (s.power_w() != missing::POWER).then(|| s.power_w()),
            h_accuracy_m: (s.h_accuracy_dm() != missing::ACCURACY).then(|| f32::from(s.h_accuracy_dm()) / 10.0),
            flags: s.flags(),
            paused,
            time_out_of_order,
            after_pause,
            active_step_ms,
            position_rejected: false,
            step_from_accepted: None,
            speed_mps: None,
            hr_zone: None,
            grade_pct: None,
            counted_altitude_m: None,
            moving: false,
            distance_m: 0.0,
            elapsed_s: 0.0,
        }
    }
}

/// The compact payload of `WorkoutUpdated`, after the batch whose samples are `points`.
fn progress(s: &WorkoutSummary, points: &crate::Points) -> WorkoutProgress {
    let current_speed_mps = points.speed_mps.iter().rev().find_map(|speed| speed.map(f64::from));
    WorkoutProgress {
        status: s.status,
        elapsed_s: s.elapsed_s,
        timer_s: s.timer_s,
        moving_time_s: s.moving_time_s,
        distance_m: s.distance_m,
        // A paused athlete is not moving, whatever the last sample before the pause said.
        current_speed_mps: current_speed_mps.filter(|_| s.status == WorkoutStatus::Active),
        heart_rate_avg_bpm: s.heart_rate_avg_bpm,
        elevation_gain_m: s.elevation_gain_m,
        calories_kcal: s.calories_kcal,
        samples: s.samples,
        last_seq: s.last_seq,
    }
}

/// A UUIDv8 from `(lsn, index)` and the workout id: unique per log, and stable across replays.
fn event_id(lsn: u64, index: u16, workout_id: &trackwire_codec::WorkoutId) -> String {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&lsn.to_be_bytes());
    bytes[8..10].copy_from_slice(&index.to_be_bytes());
    bytes[10..].copy_from_slice(&workout_id.0[..6]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid().hyphenated().to_string()
}

impl Head {
    /// The summary before the stages add their totals.
    fn summary(&self) -> WorkoutSummary {
        WorkoutSummary {
            workout_id: self.workout_id,
            user_id: self.user_id.clone(),
            device_id: self.device_id.clone(),
            device_model: self.device_model.clone(),
            sport: self.sport.to_owned(),
            status: self.status,
            start_time_ms: self.start_time_ms,
            end_time_ms: self.end_time_ms,
            elapsed_s: 0.0,
            timer_s: 0.0,
            samples: self.samples,
            batches: self.batches,
            last_seq: self.last_seq,
            distance_m: 0.0,
            moving_time_s: 0.0,
            elevation_gain_m: None,
            elevation_loss_m: None,
            max_speed_mps: None,
            rejected_fixes: 0,
            rejected_altitudes: 0,
            hr_zone_seconds: None,
            trimp_edwards: None,
            trimp_banister: None,
            calories_kcal: None,
            calories_method: None,
            splits: Vec::new(),
            device_totals: self.rare.as_ref().and_then(|rare| rare.device_totals.clone()),
            laps: Vec::new(),
            pauses: Vec::new(),
            heart_rate_avg_bpm: None,
            heart_rate_max_bpm: None,
            first_lsn: self.first_lsn,
            last_lsn: self.last_lsn,
            stored_from_ms: self.stored_from_ms,
            stored_through_ms: self.stored_through_ms,
            profile: self.profile.as_deref().cloned(),
            end_reason: self.end_reason,
        }
    }
}
