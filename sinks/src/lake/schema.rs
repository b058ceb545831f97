//! The lake's tables: their Arrow schemas (Delta types only: no unsigned integers) and how rows
//! become record batches.
//! Documented column by column in `docs/lake-schema.md`.

use std::ops::Range;
use std::sync::{Arc, LazyLock};

use arrow_array::builder::StringBuilder;
use arrow_array::{
    ArrayRef, BooleanArray, Float32Array, Float64Array, Int8Array, Int16Array, Int32Array, Int64Array, ListArray,
    RecordBatch, StructArray, TimestampMicrosecondArray,
};
use arrow_buffer::OffsetBuffer;
use arrow_schema::{ArrowError, DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use trackwire_codec::WorkoutId;
use trackwire_pipeline::{AthleteProfile, EndReason, Points, ShardOutput, WorkoutSummary};

use super::spec::TableSpec;

pub(crate) fn utc_micros() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

pub(crate) fn ids<'a>(ids: impl Iterator<Item = &'a WorkoutId>, len: usize) -> ArrayRef {
    let mut builder = StringBuilder::with_capacity(len, len * 36);
    let mut buf = [0u8; 36];
    for id in ids {
        builder.append_value(id.encode(&mut buf));
    }
    Arc::new(builder.finish())
}

/// A column of one device total (null where the workout has none).
fn device(rows: &[WorkoutSummary], field: fn(&trackwire_codec::DeviceTotals) -> Option<f64>) -> ArrayRef {
    Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.device_totals.as_ref().and_then(field))))
}

/// Seconds in heart-rate zone `zone` (0-based) of each workout.
fn zone(rows: &[WorkoutSummary], zone: usize) -> ArrayRef {
    Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.hr_zone_seconds.map(|z| z[zone]))))
}

/// A value of the athlete profile the workout's calories and load were computed with.
fn profile(rows: &[WorkoutSummary], field: fn(&AthleteProfile) -> Option<f64>) -> ArrayRef {
    Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.profile.as_ref().and_then(field))))
}

fn split_fields() -> Fields {
    Fields::from(vec![
        Field::new("km", DataType::Int32, false),
        Field::new("distance_m", DataType::Float64, false),
        Field::new("elapsed_s", DataType::Float64, false),
        Field::new("moving_s", DataType::Float64, false),
        Field::new("pace_s_per_km", DataType::Float64, true),
        Field::new("heart_rate_avg_bpm", DataType::Float64, true),
    ])
}

fn split_type() -> DataType {
    DataType::Struct(split_fields())
}

/// Each workout's per-kilometre splits as a list of structs.
fn splits(rows: &[WorkoutSummary]) -> ArrayRef {
    let all: Vec<&trackwire_pipeline::stages::Split> = rows.iter().flat_map(|r| r.splits.iter()).collect();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int32Array::from_iter_values(all.iter().map(|s| s.km as i32))),
        Arc::new(Float64Array::from_iter_values(all.iter().map(|s| s.distance_m))),
        Arc::new(Float64Array::from_iter_values(all.iter().map(|s| s.elapsed_s))),
        Arc::new(Float64Array::from_iter_values(all.iter().map(|s| s.moving_s))),
        Arc::new(Float64Array::from_iter(all.iter().map(|s| s.pace_s_per_km))),
        Arc::new(Float64Array::from_iter(all.iter().map(|s| s.heart_rate_avg_bpm))),
    ];
    let values = StructArray::new(split_fields(), columns, None);
    let offsets = OffsetBuffer::from_lengths(rows.iter().map(|r| r.splits.len()));
    Arc::new(ListArray::new(Arc::new(Field::new("element", split_type(), true)), offsets, Arc::new(values), None))
}

pub(crate) fn ms_to_us(ms: i64) -> i64 {
    ms.saturating_mul(1000)
}

/// `points`: one row per enriched sample, partitioned by the sample's UTC date and hour.
pub struct PointsTable;

/// The rows a points file is built from: the pipeline's columns, plus who and what each run of
/// them belongs to and when the log stored it (an output is one workout, so one run per output at
/// most).
#[derive(Debug, Default, Clone)]
pub struct PointRows {
    pub points: Points,
    /// Runs of rows of one owner, in row order (consecutive outputs of a workout share one).
    owners: Vec<Owner>,
    /// Runs of rows of one storage time (None: the log kept none), in row order: one per record,
    /// kept apart from the owners so a workout's run needs no new strings per record.
    stored: Vec<(Option<i64>, usize)>,
}

#[derive(Debug, Clone, PartialEq)]
struct Owner {
    user_id: String,
    sport: String,
    rows: usize,
}

impl PointRows {
    /// Rows that all belong to one user's workout of one sport, of a record stored when recorded.
    pub fn of_one_workout(points: Points, user_id: &str, sport: &str) -> Self {
        let rows = points.len();
        PointRows {
            points,
            owners: vec![Owner { user_id: user_id.to_owned(), sport: sport.to_owned(), rows }],
            stored: vec![(None, rows)],
        }
    }

    fn push_owner(&mut self, user_id: &str, sport: &str, stored_ms: Option<i64>, rows: usize) {
        match self.owners.last_mut() {
            Some(last) if last.user_id == user_id && last.sport == sport => last.rows += rows,
            _ => self.owners.push(Owner { user_id: user_id.to_owned(), sport: sport.to_owned(), rows }),
        }
        match self.stored.last_mut() {
            Some((last, run)) if *last == stored_ms => *run += rows,
            _ => self.stored.push((stored_ms, rows)),
        }
    }

    fn owner_column(&self, field: fn(&Owner) -> &str) -> ArrayRef {
        let mut builder = StringBuilder::with_capacity(self.points.len(), self.owners.len() * 36);
        for owner in &self.owners {
            for _ in 0..owner.rows {
                builder.append_value(field(owner));
            }
        }
        Arc::new(builder.finish())
    }

    /// When each row was stored: its record's storage time, or, where the log kept none, when
    /// the sample was recorded.
    fn stored_column(&self) -> ArrayRef {
        let mut stored = Vec::with_capacity(self.points.len());
        let mut row = 0;
        for (stored_ms, rows) in &self.stored {
            let times = &self.points.time_ms[row..row + rows];
            stored.extend(times.iter().map(|recorded| ms_to_us(stored_ms.unwrap_or(*recorded))));
            row += rows;
        }
        Arc::new(TimestampMicrosecondArray::from(stored).with_timezone("UTC"))
    }
}

static POINTS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    // Delta has no unsigned integers: each column takes the narrowest signed type that holds
    // every value (heart rate and cadence up to 255 need a short).
    Arc::new(Schema::new(vec![
        Field::new("workout_id", DataType::Utf8, false),
        Field::new("user_id", DataType::Utf8, false),
        Field::new("sport", DataType::Utf8, false),
        Field::new("seq", DataType::Int64, false),
        Field::new("sample_index", DataType::Int32, false),
        Field::new("lsn", DataType::Int64, false),
        Field::new("time", utc_micros(), false),
        Field::new("stored_at", utc_micros(), false),
        Field::new("lat", DataType::Float64, true),
        Field::new("lon", DataType::Float64, true),
        Field::new("altitude_m", DataType::Float32, true),
        Field::new("heart_rate_bpm", DataType::Int16, true),
        Field::new("cadence_rpm", DataType::Int16, true),
        Field::new("power_w", DataType::Int32, true),
        Field::new("h_accuracy_m", DataType::Float32, true),
        Field::new("flags", DataType::Int32, false),
        Field::new("paused", DataType::Boolean, false),
        Field::new("time_out_of_order", DataType::Boolean, false),
        Field::new("distance_m", DataType::Float64, false),
        Field::new("elapsed_s", DataType::Float64, false),
        Field::new("speed_mps", DataType::Float32, true),
        Field::new("moving", DataType::Boolean, false),
        Field::new("after_pause", DataType::Boolean, false),
        Field::new("position_rejected", DataType::Boolean, false),
        Field::new("hr_zone", DataType::Int8, true),
        Field::new("smoothed_lat", DataType::Float64, true),
        Field::new("smoothed_lon", DataType::Float64, true),
        Field::new("grade_pct", DataType::Float32, true),
    ]))
});

impl TableSpec for PointsTable {
    type Rows = PointRows;
    const NAME: &'static str = "points";
    const HOURLY: bool = true;
    const TIME_COLUMN: &'static str = "time";
    const LSN_COLUMN: &'static str = "lsn";
    const POSITION_COLUMNS: &'static [&'static str] = &["lat", "lon", "smoothed_lat", "smoothed_lon"];
    const STORED_COLUMN: &'static str = "stored_at";

    fn schema() -> SchemaRef {
        POINTS_SCHEMA.clone()
    }

    fn row_times(output: &ShardOutput) -> &[i64] {
        &output.points.time_ms
    }

    fn append(rows: &mut PointRows, output: &ShardOutput, range: Range<usize>) {
        let (user, sport) = output.summary.as_ref().map_or(("", ""), |s| (s.user_id.as_str(), s.sport.as_str()));
        rows.push_owner(user, sport, output.stored_ms, range.len());
        rows.points.extend_from(&output.points, range);
    }

    fn row_count(rows: &PointRows) -> usize {
        rows.points.len()
    }

    fn clear(rows: &mut PointRows) {
        rows.points.clear();
        rows.owners.clear();
        rows.stored.clear();
    }

    fn to_batch(rows: &PointRows) -> Result<RecordBatch, ArrowError> {
        let p = &rows.points;
        let columns: Vec<ArrayRef> = vec![
            ids(p.workout_id.iter(), p.len()),
            rows.owner_column(|o| &o.user_id),
            rows.owner_column(|o| &o.sport),
            Arc::new(Int64Array::from_iter_values(p.seq.iter().map(|v| *v as i64))),
            Arc::new(Int32Array::from_iter_values(p.index.iter().map(|v| *v as i32))),
            Arc::new(Int64Array::from_iter_values(p.lsn.iter().map(|v| *v as i64))),
            Arc::new(
                TimestampMicrosecondArray::from_iter_values(p.time_ms.iter().map(|ms| ms_to_us(*ms)))
                    .with_timezone("UTC"),
            ),
            rows.stored_column(),
            Arc::new(Float64Array::from_iter(p.lat_deg.iter().copied())),
            Arc::new(Float64Array::from_iter(p.lon_deg.iter().copied())),
            Arc::new(Float32Array::from_iter(p.altitude_m.iter().copied())),
            Arc::new(Int16Array::from_iter(p.heart_rate_bpm.iter().map(|v| v.map(i16::from)))),
            Arc::new(Int16Array::from_iter(p.cadence_rpm.iter().map(|v| v.map(i16::from)))),
            Arc::new(Int32Array::from_iter(p.power_w.iter().map(|v| v.map(i32::from)))),
            Arc::new(Float32Array::from_iter(p.h_accuracy_m.iter().copied())),
            Arc::new(Int32Array::from_iter_values(p.flags.iter().map(|v| i32::from(*v)))),
            Arc::new(BooleanArray::from(p.paused.clone())),
            Arc::new(BooleanArray::from(p.time_out_of_order.clone())),
            Arc::new(Float64Array::from(p.distance_m.clone())),
            Arc::new(Float64Array::from(p.elapsed_s.clone())),
            Arc::new(Float32Array::from_iter(p.speed_mps.iter().copied())),
            Arc::new(BooleanArray::from(p.moving.clone())),
            Arc::new(BooleanArray::from(p.after_pause.clone())),
            Arc::new(BooleanArray::from(p.position_rejected.clone())),
            // Zones are 1–5.
            Arc::new(Int8Array::from_iter(p.hr_zone.iter().map(|v| v.map(|z| z.min(127) as i8)))),
            Arc::new(Float64Array::from_iter(p.smoothed_lat.iter().copied())),
            Arc::new(Float64Array::from_iter(p.smoothed_lon.iter().copied())),
            Arc::new(Float32Array::from_iter(p.grade_pct.iter().copied())),
        ];
        RecordBatch::try_new(Self::schema(), columns)
    }
}

/// `workouts`: one row per finished (completed or cancelled) workout, by the UTC start date.
pub struct WorkoutsTable;

static WORKOUTS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("workout_id", DataType::Utf8, false),
        Field::new("user_id", DataType::Utf8, false),
        Field::new("device_id", DataType::Utf8, false),
        Field::new("device_model", DataType::Utf8, true),
        Field::new("sport", DataType::Utf8, false),
        Field::new("status", DataType::Utf8, false),
        Field::new("start_time", utc_micros(), false),
        Field::new("end_time", utc_micros(), false),
        Field::new("elapsed_s", DataType::Float64, false),
        Field::new("timer_s", DataType::Float64, false),
        Field::new("samples", DataType::Int64, false),
        Field::new("batches", DataType::Int64, false),
        Field::new("distance_m", DataType::Float64, false),
        Field::new("heart_rate_avg_bpm", DataType::Float64, true),
        Field::new("heart_rate_max_bpm", DataType::Int16, true),
        Field::new("first_lsn", DataType::Int64, false),
        Field::new("last_lsn", DataType::Int64, false),
        Field::new("moving_time_s", DataType::Float64, false),
        Field::new("elevation_gain_m", DataType::Float64, true),
        Field::new("elevation_loss_m", DataType::Float64, true),
        Field::new("max_speed_mps", DataType::Float64, true),
        Field::new("rejected_fixes", DataType::Int64, false),
        Field::new("rejected_altitudes", DataType::Int64, false),
        Field::new("calories_kcal", DataType::Float64, true),
        Field::new("calories_method", DataType::Utf8, true),
        Field::new("trimp_edwards", DataType::Float64, true),
        Field::new("trimp_banister", DataType::Float64, true),
        Field::new("device_distance_m", DataType::Float64, true),
        Field::new("device_timer_s", DataType::Float64, true),
        Field::new("device_ascent_m", DataType::Float64, true),
        Field::new("device_calories_kcal", DataType::Float64, true),
        Field::new("hr_zone_1_s", DataType::Float64, true),
        Field::new("hr_zone_2_s", DataType::Float64, true),
        Field::new("hr_zone_3_s", DataType::Float64, true),
        Field::new("hr_zone_4_s", DataType::Float64, true),
        Field::new("hr_zone_5_s", DataType::Float64, true),
        Field::new("splits", DataType::List(Arc::new(Field::new("element", split_type(), true))), false),
        Field::new("profile_weight_kg", DataType::Float64, true),
        Field::new("profile_age_years", DataType::Float64, true),
        Field::new("profile_male", DataType::Boolean, true),
        Field::new("profile_hr_max_bpm", DataType::Float64, true),
        Field::new("profile_hr_rest_bpm", DataType::Float64, true),
        // Added after the table's first release: columns only ever come last and nullable, so a
        // table written before them gains them on open (`delta.rs`) and its rows read null.
        Field::new("end_reason", DataType::Utf8, true),
    ]))
});

impl TableSpec for WorkoutsTable {
    type Rows = Vec<WorkoutSummary>;
    const NAME: &'static str = "workouts";
    const HOURLY: bool = false;
    const TIME_COLUMN: &'static str = "start_time";
    const LSN_COLUMN: &'static str = "last_lsn";
    const POSITION_COLUMNS: &'static [&'static str] = &[];
    const STORED_COLUMN: &'static str = "";

    fn schema() -> SchemaRef {
        WORKOUTS_SCHEMA.clone()
    }

    fn row_times(output: &ShardOutput) -> &[i64] {
        match (output.ended, &output.summary) {
            (true, Some(summary)) => std::slice::from_ref(&summary.start_time_ms),
            _ => &[],
        }
    }

    fn append(rows: &mut Vec<WorkoutSummary>, output: &ShardOutput, range: Range<usize>) {
        if let (true, Some(summary)) = (output.ended && range == (0..1), &output.summary) {
            rows.push(summary.clone());
        }
    }

    fn row_count(rows: &Vec<WorkoutSummary>) -> usize {
        rows.len()
    }

    fn clear(rows: &mut Vec<WorkoutSummary>) {
        rows.clear();
    }

    fn to_batch(rows: &Vec<WorkoutSummary>) -> Result<RecordBatch, ArrowError> {
        let strings = |f: fn(&WorkoutSummary) -> Option<&str>| -> ArrayRef {
            let mut b = StringBuilder::new();
            rows.iter().for_each(|r| b.append_option(f(r)));
            Arc::new(b.finish())
        };
        let columns: Vec<ArrayRef> = vec![
            ids(rows.iter().map(|r| &r.workout_id), rows.len()),
            strings(|r| Some(&r.user_id)),
            strings(|r| Some(&r.device_id)),
            strings(|r| r.device_model.as_deref()),
            strings(|r| Some(&r.sport)),
            strings(|r| {
                Some(if r.status == trackwire_pipeline::WorkoutStatus::Cancelled { "cancelled" } else { "completed" })
            }),
            Arc::new(
                TimestampMicrosecondArray::from_iter_values(rows.iter().map(|r| ms_to_us(r.start_time_ms)))
                    .with_timezone("UTC"),
            ),
            Arc::new(
                TimestampMicrosecondArray::from_iter_values(rows.iter().map(|r| ms_to_us(r.end_time_ms)))
                    .with_timezone("UTC"),
            ),
            Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.elapsed_s))),
            Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.timer_s))),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.samples as i64))),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.batches as i64))),
            Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.distance_m))),
            Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.heart_rate_avg_bpm))),
            Arc::new(Int16Array::from_iter(rows.iter().map(|r| r.heart_rate_max_bpm.map(i16::from)))),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.first_lsn as i64))),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.last_lsn as i64))),
            Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.moving_time_s))),
            Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.elevation_gain_m))),
            Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.elevation_loss_m))),
            Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.max_speed_mps))),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.rejected_fixes as i64))),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.rejected_altitudes as i64))),
            Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.calories_kcal))),
            strings(|r| r.calories_method.as_deref()),
            Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.trimp_edwards))),
            Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.trimp_banister))),
            device(rows, |d| d.distance_m),
            device(rows, |d| d.timer_s),
            device(rows, |d| d.ascent_m),
            device(rows, |d| d.calories_kcal),
            zone(rows, 0),
            zone(rows, 1),
            zone(rows, 2),
            zone(rows, 3),
            zone(rows, 4),
            splits(rows),
            profile(rows, |p| p.weight_kg),
            profile(rows, |p| p.age_years),
            Arc::new(BooleanArray::from_iter(rows.iter().map(|r| r.profile.as_ref().and_then(|p| p.male)))),
            profile(rows, |p| p.hr_max_bpm),
            profile(rows, |p| p.hr_rest_bpm),
            strings(|r| r.end_reason.map(EndReason::name)),
        ];
        RecordBatch::try_new(Self::schema(), columns)
    }
}
