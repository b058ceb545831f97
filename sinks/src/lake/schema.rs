//! The lake's tables: their Arrow schemas and how rows become record batches.
//! Documented column by column in `docs/lake-schema.md`.

use std::ops::Range;
use std::sync::{Arc, LazyLock};

use arrow_array::builder::StringBuilder;
use arrow_array::{
    ArrayRef, BooleanArray, Float32Array, Float64Array, RecordBatch, TimestampMicrosecondArray, UInt8Array,
    UInt16Array, UInt32Array, UInt64Array,
};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef, TimeUnit};
use trackwire_codec::WorkoutId;
use trackwire_pipeline::{Points, ShardOutput, WorkoutSummary};

use super::table::TableSpec;

fn utc_micros() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn ids<'a>(ids: impl Iterator<Item = &'a WorkoutId>, len: usize) -> ArrayRef {
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

fn ms_to_us(ms: i64) -> i64 {
    ms.saturating_mul(1000)
}

/// `points/`: one row per enriched sample, partitioned by the sample's UTC date and hour.
pub struct PointsTable;

static POINTS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("workout_id", DataType::Utf8, false),
        Field::new("seq", DataType::UInt64, false),
        Field::new("sample_index", DataType::UInt32, false),
        Field::new("lsn", DataType::UInt64, false),
        Field::new("time", utc_micros(), false),
        Field::new("lat", DataType::Float64, true),
        Field::new("lon", DataType::Float64, true),
        Field::new("altitude_m", DataType::Float32, true),
        Field::new("heart_rate_bpm", DataType::UInt8, true),
        Field::new("cadence_rpm", DataType::UInt8, true),
        Field::new("power_w", DataType::UInt16, true),
        Field::new("h_accuracy_m", DataType::Float32, true),
        Field::new("flags", DataType::UInt16, false),
        Field::new("paused", DataType::Boolean, false),
        Field::new("time_out_of_order", DataType::Boolean, false),
        Field::new("distance_m", DataType::Float64, false),
        Field::new("elapsed_s", DataType::Float64, false),
        Field::new("speed_mps", DataType::Float32, true),
        Field::new("moving", DataType::Boolean, false),
        Field::new("after_pause", DataType::Boolean, false),
        Field::new("position_rejected", DataType::Boolean, false),
        Field::new("hr_zone", DataType::UInt8, true),
        Field::new("smoothed_lat", DataType::Float64, true),
        Field::new("smoothed_lon", DataType::Float64, true),
        Field::new("grade_pct", DataType::Float32, true),
    ]))
});

impl TableSpec for PointsTable {
    type Rows = Points;
    const NAME: &'static str = "points";
    const HOURLY: bool = true;
    const TIME_COLUMN: &'static str = "time";
    const POSITION_COLUMNS: &'static [&'static str] = &["lat", "lon", "smoothed_lat", "smoothed_lon"];

    fn schema() -> SchemaRef {
        POINTS_SCHEMA.clone()
    }

    fn row_times(output: &ShardOutput) -> &[i64] {
        &output.points.time_ms
    }

    fn append(rows: &mut Points, output: &ShardOutput, range: Range<usize>) {
        rows.extend_from(&output.points, range);
    }

    fn row_count(rows: &Points) -> usize {
        rows.len()
    }

    fn clear(rows: &mut Points) {
        rows.clear();
    }

    fn to_batch(rows: &Points) -> Result<RecordBatch, ArrowError> {
        let columns: Vec<ArrayRef> = vec![
            ids(rows.workout_id.iter(), rows.len()),
            Arc::new(UInt64Array::from(rows.seq.clone())),
            Arc::new(UInt32Array::from(rows.index.clone())),
            Arc::new(UInt64Array::from(rows.lsn.clone())),
            Arc::new(
                TimestampMicrosecondArray::from_iter_values(rows.time_ms.iter().map(|ms| ms_to_us(*ms)))
                    .with_timezone("UTC"),
            ),
            Arc::new(Float64Array::from_iter(rows.lat_deg.iter().copied())),
            Arc::new(Float64Array::from_iter(rows.lon_deg.iter().copied())),
            Arc::new(Float32Array::from_iter(rows.altitude_m.iter().copied())),
            Arc::new(UInt8Array::from_iter(rows.heart_rate_bpm.iter().copied())),
            Arc::new(UInt8Array::from_iter(rows.cadence_rpm.iter().copied())),
            Arc::new(UInt16Array::from_iter(rows.power_w.iter().copied())),
            Arc::new(Float32Array::from_iter(rows.h_accuracy_m.iter().copied())),
            Arc::new(UInt16Array::from(rows.flags.clone())),
            Arc::new(BooleanArray::from(rows.paused.clone())),
            Arc::new(BooleanArray::from(rows.time_out_of_order.clone())),
            Arc::new(Float64Array::from(rows.distance_m.clone())),
            Arc::new(Float64Array::from(rows.elapsed_s.clone())),
            Arc::new(Float32Array::from_iter(rows.speed_mps.iter().copied())),
            Arc::new(BooleanArray::from(rows.moving.clone())),
            Arc::new(BooleanArray::from(rows.after_pause.clone())),
            Arc::new(BooleanArray::from(rows.position_rejected.clone())),
            Arc::new(UInt8Array::from_iter(rows.hr_zone.iter().copied())),
            Arc::new(Float64Array::from_iter(rows.smoothed_lat.iter().copied())),
            Arc::new(Float64Array::from_iter(rows.smoothed_lon.iter().copied())),
            Arc::new(Float32Array::from_iter(rows.grade_pct.iter().copied())),
        ];
        RecordBatch::try_new(Self::schema(), columns)
    }
}

/// `workouts/`: one row per finished (completed or cancelled) workout, by the UTC start date.
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
        Field::new("samples", DataType::UInt64, false),
        Field::new("batches", DataType::UInt64, false),
        Field::new("distance_m", DataType::Float64, false),
        Field::new("heart_rate_avg_bpm", DataType::Float64, true),
        Field::new("heart_rate_max_bpm", DataType::UInt8, true),
        Field::new("first_lsn", DataType::UInt64, false),
        Field::new("last_lsn", DataType::UInt64, false),
        Field::new("moving_time_s", DataType::Float64, false),
        Field::new("elevation_gain_m", DataType::Float64, true),
        Field::new("elevation_loss_m", DataType::Float64, true),
        Field::new("max_speed_mps", DataType::Float64, true),
        Field::new("rejected_fixes", DataType::UInt64, false),
        Field::new("rejected_altitudes", DataType::UInt64, false),
        Field::new("calories_kcal", DataType::Float64, true),
        Field::new("calories_method", DataType::Utf8, true),
        Field::new("trimp_edwards", DataType::Float64, true),
        Field::new("trimp_banister", DataType::Float64, true),
        Field::new("device_distance_m", DataType::Float64, true),
        Field::new("device_timer_s", DataType::Float64, true),
        Field::new("device_ascent_m", DataType::Float64, true),
        Field::new("device_calories_kcal", DataType::Float64, true),
    ]))
});

impl TableSpec for WorkoutsTable {
    type Rows = Vec<WorkoutSummary>;
    const NAME: &'static str = "workouts";
    const HOURLY: bool = false;
    const TIME_COLUMN: &'static str = "start_time";
    const POSITION_COLUMNS: &'static [&'static str] = &[];

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
            Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.samples))),
            Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.batches))),
            Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.distance_m))),
            Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.heart_rate_avg_bpm))),
            Arc::new(UInt8Array::from_iter(rows.iter().map(|r| r.heart_rate_max_bpm))),
            Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.first_lsn))),
            Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.last_lsn))),
            Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.moving_time_s))),
            Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.elevation_gain_m))),
            Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.elevation_loss_m))),
            Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.max_speed_mps))),
            Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.rejected_fixes))),
            Arc::new(UInt64Array::from_iter_values(rows.iter().map(|r| r.rejected_altitudes))),
            Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.calories_kcal))),
            strings(|r| r.calories_method.as_deref()),
            Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.trimp_edwards))),
            Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.trimp_banister))),
            device(rows, |d| d.distance_m),
            device(rows, |d| d.timer_s),
            device(rows, |d| d.ascent_m),
            device(rows, |d| d.calories_kcal),
        ];
        RecordBatch::try_new(Self::schema(), columns)
    }
}
