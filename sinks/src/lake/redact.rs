//! Rewriting committed lake files for an erasure (rows of the erased workouts removed) or for
//! coordinate retention (positions nulled). A rewritten file keeps its key, and so its label: the
//! sink's exactly-once bookkeeping is untouched, and a reader sees the old file or the new one,
//! never a mix (object stores replace an object atomically).

use std::collections::HashSet;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::TimestampMicrosecondType;
use arrow_array::{Array, ArrayRef, BooleanArray, Float64Array, RecordBatch};
use arrow_schema::ArrowError;
use chrono::{DateTime, Days, NaiveDate};

use super::paths::Partition;
use crate::Command;

/// What to do to each batch of a file.
pub enum Redaction<'a> {
    /// Keep only rows whose `workout_id` is not in the set.
    EraseWorkouts(&'a HashSet<String>),
    /// Null `columns` where `time_column` is before `before_us`.
    DropPositions { columns: &'static [&'static str], time_column: &'static str, before_us: i64 },
}

impl Redaction<'_> {
    /// The rewritten batch, or None when nothing in it changes.
    pub fn apply(&self, batch: &RecordBatch) -> Result<Option<RecordBatch>, ArrowError> {
        match self {
            Redaction::EraseWorkouts(ids) => {
                let column = batch.column_by_name("workout_id").ok_or_else(|| missing("workout_id"))?;
                let keep: BooleanArray =
                    column.as_string::<i32>().iter().map(|id| Some(!id.is_some_and(|id| ids.contains(id)))).collect();
                if keep.true_count() == batch.num_rows() {
                    return Ok(None);
                }
                Ok(Some(arrow_select::filter::filter_record_batch(batch, &keep)?))
            }
            Redaction::DropPositions { columns, time_column, before_us } => {
                let times = batch
                    .column_by_name(time_column)
                    .ok_or_else(|| missing(time_column))?
                    .as_primitive::<TimestampMicrosecondType>();
                let old: Vec<bool> = times.iter().map(|t| t.is_some_and(|t| t < *before_us)).collect();
                let mut changed = false;
                let mut arrays: Vec<ArrayRef> = batch.columns().to_vec();
                for name in *columns {
                    let Ok(index) = batch.schema().index_of(name) else { continue };
                    let values = batch.column(index).as_primitive::<arrow_array::types::Float64Type>();
                    if (0..values.len()).any(|i| old[i] && values.is_valid(i)) {
                        changed = true;
                        let redacted: Float64Array =
                            values.iter().zip(&old).map(|(v, old)| if *old { None } else { v }).collect();
                        arrays[index] = Arc::new(redacted);
                    }
                }
                if !changed {
                    return Ok(None);
                }
                Ok(Some(RecordBatch::try_new(batch.schema(), arrays)?))
            }
        }
    }
}

fn missing(column: &str) -> ArrowError {
    ArrowError::SchemaError(format!("lake file has no '{column}' column"))
}

/// Whether a partition can hold rows a command touches (a day of slack either side of each
/// workout: a sample's time can precede the workout's recorded start).
pub fn partition_filter(command: &Command) -> impl Fn(&Partition) -> bool + use<> {
    let day_of = |ms: i64| DateTime::from_timestamp_millis(ms).map(|t| t.date_naive());
    let mut spans: Vec<(NaiveDate, NaiveDate)> = Vec::new();
    match command {
        Command::Erase(erasure) => {
            for w in &erasure.workouts {
                if let (Some(from), Some(to)) = (day_of(w.start_time_ms), day_of(w.end_time_ms)) {
                    let from = from.checked_sub_days(Days::new(1)).unwrap_or(from);
                    let to = to.checked_add_days(Days::new(1)).unwrap_or(to);
                    spans.push((from, to));
                }
            }
        }
        Command::DropPositions { from_ms, before_ms } => {
            if let (Some(from), Some(to)) = (day_of(*from_ms), day_of(*before_ms)) {
                spans.push((from, to));
            }
        }
    }
    move |partition: &Partition| {
        NaiveDate::from_ymd_opt(partition.year, partition.month, partition.day)
            .is_some_and(|day| spans.iter().any(|(from, to)| *from <= day && day <= *to))
    }
}
