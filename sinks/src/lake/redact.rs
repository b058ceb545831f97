//! Replacing committed lake files for an erasure (rows of the erased workouts removed) or for
//! coordinate retention (positions nulled): each touched file is rewritten under a new name, one
//! commit removes the old files and adds the new ones (a reader sees the table before or after,
//! never a mix), and the old files are deleted at once, with every other file of those
//! partitions that no version needs, so what was erased is gone from storage, not just hidden.

use std::collections::HashSet;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::TimestampMicrosecondType;
use arrow_array::{Array, ArrayRef, BooleanArray, Float64Array, RecordBatch};
use arrow_schema::ArrowError;
use chrono::{DateTime, Days, NaiveDate};

use super::access::TableAccess;
use super::delta::{Changes, Commit};
use super::files::batches_of;
use super::paths::{ObjectKey, Partition};
use super::spec::TableSpec;
use crate::{Command, SinkError};

/// Attempts at one redaction when other writers keep changing the files first.
const ATTEMPTS: usize = 8;

impl<T: TableSpec> TableAccess<T> {
    /// Applies an erasure or a retention cut to every file of this source it touches.
    pub(super) fn redact(&mut self, command: &Command) -> Result<(), SinkError> {
        let exclusive = self.exclusive.clone();
        let _turn = exclusive.take();
        let erased: HashSet<String>;
        let redaction = match command {
            Command::Erase(erasure) => {
                erased = erasure.workouts.iter().map(|w| w.workout_id.to_string()).collect();
                Redaction::EraseWorkouts(&erased)
            }
            Command::DropPositions { before_ms, .. } if !T::POSITION_COLUMNS.is_empty() => Redaction::DropPositions {
                columns: T::POSITION_COLUMNS,
                time_column: T::STORED_COLUMN,
                before_us: before_ms.saturating_mul(1000),
            },
            Command::DropPositions { .. } | Command::Publish(_) => return Ok(()),
        };
        let wanted = partition_filter(command);
        // Files whose statistics show no row stored in the cut's span are not read at all.
        let stored_span = match command {
            Command::DropPositions { from_ms, before_ms } => {
                Some((from_ms.saturating_mul(1000), before_ms.saturating_mul(1000)))
            }
            Command::Erase(_) | Command::Publish(_) => None,
        };
        let outside_cut = |file: &super::delta::ActiveFile| {
            stored_span.is_some_and(|(from_us, before_us)| {
                file.time_span_us(T::STORED_COLUMN).is_some_and(|(least, most)| least >= before_us || most < from_us)
            })
        };
        let mut touched: HashSet<Partition> = HashSet::new();
        self.reach_table()?.refresh()?;
        for _ in 0..ATTEMPTS {
            let mut changes = Changes::default();
            let mut written = Vec::new();
            for (partition, files) in self.own_files()? {
                if !wanted(&partition) {
                    continue;
                }
                for (file, key) in files {
                    if outside_cut(&file) {
                        continue;
                    }
                    // Decoded a batch at a time, twice for a file that changes (first to find
                    // out, then to rewrite it as it streams to storage): memory holds the file's
                    // bytes and one batch, however large settled files are.
                    let bytes = self.get(&self.file_path(&key)?)?;
                    if !redaction.changes_any(batches_of(bytes.clone())?)? {
                        continue;
                    }
                    let new = ObjectKey::new(partition, self.source, key.label);
                    let mut writer = self.streamed_file(&new)?;
                    for batch in batches_of(bytes)? {
                        let batch = batch?;
                        let batch = redaction.apply(&batch)?.unwrap_or(batch);
                        if batch.num_rows() > 0 {
                            writer.write(&batch)?;
                        }
                    }
                    touched.insert(partition);
                    changes.remove.push(file.path);
                    if let Some((size, stats)) = Self::finish_streamed(writer)? {
                        changes.add.push(self.new_file(&new, size as usize, stats));
                        written.push(new);
                    }
                }
            }
            let replaced = changes.remove.len();
            if replaced == 0 {
                break;
            }
            match self.reach_table()?.commit(changes)? {
                Commit::Committed { version } => {
                    tracing::info!(table = T::NAME, files = replaced, version, "lake files replaced");
                    break;
                }
                Commit::Conflict | Commit::Stale => {
                    for key in &written {
                        self.delete(&self.file_path(key)?)?;
                    }
                }
            }
        }
        // Only the partitions rewritten lose their old versions at once: elsewhere time travel
        // keeps its usual window.
        if !touched.is_empty() {
            self.vacuum(Some(&|partition: &Partition| touched.contains(partition)))?;
        }
        Ok(())
    }
}

/// What to do to each batch of a file.
pub enum Redaction<'a> {
    /// Keep only rows whose `workout_id` is not in the set.
    EraseWorkouts(&'a HashSet<String>),
    /// Null `columns` where `time_column` is before `before_us`.
    DropPositions { columns: &'static [&'static str], time_column: &'static str, before_us: i64 },
}

impl Redaction<'_> {
    /// Whether any batch of `batches` changes (decoding stops at the first that does).
    pub(super) fn changes_any(
        &self,
        batches: impl Iterator<Item = Result<RecordBatch, ArrowError>>,
    ) -> Result<bool, ArrowError> {
        for batch in batches {
            if self.apply(&batch?)?.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }

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
/// workout: a sample's time can precede the workout's recorded start). Partitions are by recorded
/// time and retention counts from storage time, so a retention cut can touch any partition.
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
        Command::DropPositions { .. } => spans.push((NaiveDate::MIN, NaiveDate::MAX)),
        Command::Publish(_) => {}
    }
    move |partition: &Partition| {
        NaiveDate::from_ymd_opt(partition.year, partition.month, partition.day)
            .is_some_and(|day| spans.iter().any(|(from, to)| *from <= day && day <= *to))
    }
}
