//! The schema of points messages (version 1): the pipeline's columns with their own unsigned
//! types, as consumers have decoded them since the first release. The lake's `points` table has
//! its own (Delta-typed, with join keys); this one changes only with a new `schema-version`.

use std::sync::{Arc, LazyLock};

use arrow_array::{
    ArrayRef, BooleanArray, Float32Array, Float64Array, RecordBatch, TimestampMicrosecondArray, UInt8Array,
    UInt16Array, UInt32Array, UInt64Array,
};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef};
use trackwire_pipeline::Points;

use crate::lake::schema::{ids, ms_to_us, utc_micros};

static POINTS_MESSAGE_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
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

pub fn points_message_schema() -> SchemaRef {
    POINTS_MESSAGE_SCHEMA.clone()
}

/// One record's points as a batch of the message schema.
pub fn points_message_batch(rows: &Points) -> Result<RecordBatch, ArrowError> {
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
    RecordBatch::try_new(points_message_schema(), columns)
}
