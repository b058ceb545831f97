//! One Delta Lake table through `delta_kernel`: creating it, reading which files are active, and
//! committing added and removed files as one atomic log entry (`_delta_log/<version>.json`,
//! written with put-if-absent, so two writers can never both take a version).
//!
//! Kernel chosen over the `deltalake` crate: it is maintained by the Delta project, builds on the
//! same arrow/parquet and object_store versions as the rest of Trackwire, and brings neither
//! DataFusion nor a second Arrow. What it leaves to the engine (rolling files, compaction,
//! vacuum) the lake table does itself in a few hundred lines.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{Array, StructArray};
use arrow_schema::SchemaRef as ArrowSchemaRef;
use delta_kernel::committer::FileSystemCommitter;
use delta_kernel::engine::arrow_conversion::TryFromArrow;
use delta_kernel::engine::arrow_data::ArrowEngineData;
use delta_kernel::engine_data::FilteredEngineData;
use delta_kernel::expressions::{ColumnName, Scalar};
use delta_kernel::schema::{DataType, SchemaRef, StructField, StructType};
use delta_kernel::transaction::create_table::create_table;
use delta_kernel::transaction::data_layout::DataLayout;
use delta_kernel::transaction::{CommitResult, UpdateTableOperation};
use delta_kernel::{FileMeta, Snapshot, SnapshotRef};
use delta_kernel_default_engine::DefaultEngine;
use delta_kernel_default_engine::executor::tokio::TokioMultiThreadExecutor;
use delta_kernel_default_engine::parquet::DataFileMetadata;
use delta_kernel_default_engine::stats::FileStatsAccumulator;
use object_store::ObjectStore;
use url::Url;

use super::paths::Partition;
use crate::SinkError;

/// What the commit log names as the writer of every version Trackwire commits.
const ENGINE_INFO: &str = concat!("trackwire/", env!("CARGO_PKG_VERSION"));

/// How many commits between Delta checkpoints (a Parquet snapshot of the log, so a reader
/// replays at most this many JSON entries). The protocol's usual default.
pub const CHECKPOINT_INTERVAL: u64 = 10;

/// Columns, from the first, that carry min/max statistics in the log: ids, LSN, time, the join
/// keys and (in `points`) `stored_at`, which is what readers and coordinate retention filter on. Statistics of every column would cost encoding
/// time on every file for columns nobody skips by.
const INDEXED_COLUMNS: &str = "8";

/// A file the table holds (path relative to the table root).
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveFile {
    pub path: String,
    pub size: u64,
    /// When the commit that added it was made (Unix ms; the add action's `modificationTime`).
    pub modified_ms: i64,
    /// Rows, from the file's statistics (None when a writer recorded none).
    pub rows: Option<u64>,
    /// The file's statistics as the log holds them (JSON), when a writer recorded some.
    pub stats: Option<String>,
}

impl ActiveFile {
    /// The least and greatest value (Unix µs) of timestamp `column` in the file, from its
    /// statistics; None when they do not say.
    pub fn time_span_us(&self, column: &str) -> Option<(i64, i64)> {
        let stats: serde_json::Value = serde_json::from_str(self.stats.as_deref()?).ok()?;
        let bound = |which: &str| {
            let text = stats.get(which)?.get(column)?.as_str()?;
            chrono::DateTime::parse_from_rfc3339(text).ok().map(|t| t.timestamp_micros())
        };
        Some((bound("minValues")?, bound("maxValues")?))
    }
}

/// A new file to add: written already, named relative to the table root.
pub struct NewFile {
    pub path: String,
    pub partition: Partition,
    pub size: u64,
    pub stats: StructArray,
}

/// One commit's changes.
#[derive(Default)]
pub struct Changes {
    pub add: Vec<NewFile>,
    pub remove: Vec<String>,
    /// False for compaction: the rows are the same, only their files change (readers of the
    /// table's changes skip such commits).
    pub rewrite_only: bool,
    /// `(app id, version)`: the position through which this writer's rows are in the table.
    pub transaction: Option<(String, u64)>,
}

/// How a commit ended when it did not simply succeed.
#[derive(Debug, PartialEq)]
pub enum Commit {
    Committed {
        version: u64,
    },
    /// Another writer took the version first; the snapshot has been refreshed, so the caller
    /// can check what changed and try again.
    Conflict,
    /// A file to remove is no longer active (another writer replaced it): the caller decided on
    /// a state that has changed and must decide again.
    Stale,
}

/// Which columns of a table's files get statistics in the log, and the files' schema: known
/// from the table's definition, so files can be written before the table is reachable.
pub struct StatsSpec {
    columns: Vec<ColumnName>,
    physical_schema: SchemaRef,
}

impl StatsSpec {
    /// The statistics `create` declares (`delta.dataSkippingNumIndexedCols`) for `schema`.
    pub fn of(schema: &ArrowSchemaRef) -> Result<Self, SinkError> {
        let physical_schema = delta_schema(schema)?;
        let indexed: usize = INDEXED_COLUMNS.parse().unwrap_or(0);
        let columns = schema.fields().iter().take(indexed).map(|f| ColumnName::new([f.name().clone()])).collect();
        Ok(StatsSpec { columns, physical_schema: Arc::new(physical_schema) })
    }

    /// Statistics for a new file, to fill batch by batch as it is written.
    pub fn accumulator(&self) -> FileStatsAccumulator {
        FileStatsAccumulator::new(&self.columns, &self.physical_schema)
    }
}

pub struct DeltaTable {
    engine: DefaultEngine<TokioMultiThreadExecutor>,
    url: Url,
    snapshot: SnapshotRef,
    hourly: bool,
}

impl DeltaTable {
    /// Opens the table at `url` (a directory URL ending in `/`), or creates it (`exists` false:
    /// the caller found no `_delta_log`) with `schema` (the data columns) plus the partition
    /// columns `date` and, when `hourly`, `hour`.
    pub fn open_or_create(
        store: Arc<dyn ObjectStore>,
        url: Url,
        exists: bool,
        schema: &ArrowSchemaRef,
        hourly: bool,
    ) -> Result<Self, SinkError> {
        let engine = engine(store, &url)?;
        let snapshot = if exists {
            let snapshot = Snapshot::builder_for(url.as_str()).build(&engine).map_err(|e| delta(&url, "open", e))?;
            add_missing_columns(&engine, &url, snapshot, schema)?
        } else {
            create(&engine, &url, schema, hourly)?
        };
        Ok(DeltaTable { engine, url, snapshot, hourly })
    }

    /// Opens a table that exists (to read it).
    pub fn open_existing(store: Arc<dyn ObjectStore>, url: Url) -> Result<Self, SinkError> {
        let engine = engine(store, &url)?;
        let snapshot = Snapshot::builder_for(url.as_str()).build(&engine).map_err(|e| delta(&url, "open", e))?;
        Ok(DeltaTable { engine, url, snapshot, hourly: false })
    }

    pub fn version(&self) -> u64 {
        self.snapshot.version()
    }

    /// The version `app_id` last committed (its log position), if it ever did.
    pub fn app_version(&self, app_id: &str) -> Result<Option<u64>, SinkError> {
        let version = self
            .snapshot
            .get_app_id_version(app_id, &self.engine)
            .map_err(|e| delta(&self.url, "read the transaction of", e))?;
        Ok(version.map(|v| u64::try_from(v).unwrap_or(0)))
    }

    /// Re-reads the log up to its newest version.
    pub fn refresh(&mut self) -> Result<(), SinkError> {
        self.snapshot = Snapshot::builder_from(self.snapshot.clone())
            .build(&self.engine)
            .map_err(|e| delta(&self.url, "refresh", e))?;
        Ok(())
    }

    /// Every active file of the current snapshot.
    pub fn active_files(&self) -> Result<Vec<ActiveFile>, SinkError> {
        let mut files = Vec::new();
        self.scan_files(|_, rows| {
            files.extend(rows.into_iter().map(|(_, file)| file));
            None
        })?;
        Ok(files)
    }

    /// Visits the scan metadata: `visit` gets each chunk's selected files (row index, file) and
    /// may return a selection of those rows to remove.
    fn scan_files(
        &self,
        mut visit: impl FnMut(&FilteredEngineData, Vec<(usize, ActiveFile)>) -> Option<Vec<bool>>,
    ) -> Result<Vec<FilteredEngineData>, SinkError> {
        let fail = |e| delta(&self.url, "list the files of", e);
        let scan = self.snapshot.clone().scan_builder().build().map_err(fail)?;
        let mut removals = Vec::new();
        for metadata in scan.scan_metadata(&self.engine).map_err(fail)? {
            let metadata = metadata.map_err(fail)?;
            let files = metadata.scan_files;
            let Some(data) = files.data().any_ref().downcast_ref::<ArrowEngineData>() else {
                return Err(SinkError::Config("the Delta engine returned non-Arrow scan metadata".into()));
            };
            let batch = data.record_batch();
            let column = |name: &str| {
                batch.column_by_name(name).ok_or_else(|| SinkError::Config(format!("scan metadata has no {name}")))
            };
            let paths = column("path")?.as_string::<i32>().clone();
            let sizes = column("size")?.as_primitive::<arrow_array::types::Int64Type>().clone();
            let stats = column("stats")?.as_string::<i32>().clone();
            let modified = column("modificationTime")?.as_primitive::<arrow_array::types::Int64Type>().clone();
            let selected = files.selection_vector();
            let rows: Vec<(usize, ActiveFile)> = (0..batch.num_rows())
                .filter(|i| selected.get(*i).copied().unwrap_or(true) && paths.is_valid(*i))
                .map(|i| {
                    let stats = stats.is_valid(i).then(|| stats.value(i).to_owned());
                    let file = ActiveFile {
                        path: percent_decode(paths.value(i)),
                        size: u64::try_from(sizes.value(i)).unwrap_or(0),
                        modified_ms: modified.value(i),
                        rows: stats.as_deref().and_then(num_records),
                        stats,
                    };
                    (i, file)
                })
                .collect();
            if let Some(selection) = visit(&files, rows) {
                let (data, _) = files.into_parts();
                removals.push(FilteredEngineData::try_new(data, selection).map_err(fail)?);
            }
        }
        Ok(removals)
    }

    /// Commits `changes` as the next version.
    pub fn commit(&mut self, changes: Changes) -> Result<Commit, SinkError> {
        let fail = |url: &Url, e| delta(url, "commit to", e);
        let operation = if changes.rewrite_only {
            UpdateTableOperation::Optimize
        } else if changes.remove.is_empty() {
            UpdateTableOperation::StreamingUpdate
        } else {
            UpdateTableOperation::Delete
        };
        let mut builder = self.snapshot.clone().update_table(operation, ENGINE_INFO, !changes.rewrite_only);
        if let Some((app_id, version)) = &changes.transaction {
            builder = builder.with_transaction_id(app_id.clone(), i64::try_from(*version).unwrap_or(i64::MAX));
        }
        let mut txn =
            builder.build(&self.engine, Box::new(FileSystemCommitter::new())).map_err(|e| fail(&self.url, e))?;
        if !changes.remove.is_empty() {
            let wanted: std::collections::HashSet<&str> = changes.remove.iter().map(String::as_str).collect();
            let mut found = 0;
            let removals = self.scan_files(|files, rows| {
                let mut selection = vec![false; files.data().len()];
                for (i, file) in rows {
                    if wanted.contains(file.path.as_str()) {
                        selection[i] = true;
                        found += 1;
                    }
                }
                Some(selection)
            })?;
            if found != wanted.len() {
                return Ok(Commit::Stale);
            }
            for removal in removals {
                txn.remove_files(removal);
            }
        }
        if !changes.add.is_empty() {
            let state = txn.write_state().map_err(|e| fail(&self.url, e))?;
            for file in changes.add {
                let context = state
                    .write_context_builder()
                    .with_partition_values(partition_values(&file.partition, self.hourly))
                    .build()
                    .map_err(|e| fail(&self.url, e))?;
                let location = self.url.join(&file.path).map_err(|e| SinkError::Config(e.to_string()))?;
                let modified = chrono::Utc::now().timestamp_millis();
                let metadata = DataFileMetadata::new(FileMeta::new(location, modified, file.size), file.stats);
                let add = delta_kernel_default_engine::build_add_file_metadata(metadata, &context)
                    .map_err(|e| fail(&self.url, e))?;
                txn.add_files(add);
            }
        }
        match txn.commit(&self.engine).map_err(|e| fail(&self.url, e))? {
            CommitResult::Committed(committed) => {
                let version = committed.commit_version();
                self.snapshot = match committed.post_commit_snapshot() {
                    Some(snapshot) => snapshot.clone(),
                    None => {
                        self.refresh()?;
                        self.snapshot.clone()
                    }
                };
                if version > 0 && version.is_multiple_of(CHECKPOINT_INTERVAL) {
                    // A missed checkpoint only makes readers replay more JSON: logged, not fatal.
                    if let Err(err) = self.snapshot.checkpoint(&self.engine, None) {
                        tracing::warn!(table = %self.url, version, error = %err, "Delta checkpoint failed");
                    }
                }
                Ok(Commit::Committed { version })
            }
            CommitResult::Conflicted(_) => {
                self.refresh()?;
                Ok(Commit::Conflict)
            }
            CommitResult::Retryable(retry) => {
                Err(SinkError::Config(format!("committing to {} failed and can be retried: {}", self.url, retry.error)))
            }
        }
    }
}

/// The kernel's engine over `store`, on a small runtime of its own: writing a checkpoint blocks
/// on I/O from inside the engine's tasks, which a single background thread would deadlock on.
fn engine(store: Arc<dyn ObjectStore>, url: &Url) -> Result<DefaultEngine<TokioMultiThreadExecutor>, SinkError> {
    let executor = TokioMultiThreadExecutor::new_owned_runtime(Some(2), Some(8))
        .map_err(|e| delta(url, "start the engine of", e))?;
    Ok(DefaultEngine::builder(store).with_task_executor(Arc::new(executor)).build())
}

fn create(
    engine: &DefaultEngine<TokioMultiThreadExecutor>,
    url: &Url,
    schema: &ArrowSchemaRef,
    hourly: bool,
) -> Result<SnapshotRef, SinkError> {
    let data = delta_schema(schema)?;
    let mut fields: Vec<StructField> = data.fields().cloned().collect();
    fields.push(StructField::not_null("date", DataType::DATE));
    let mut partitions = vec!["date"];
    if hourly {
        fields.push(StructField::not_null("hour", DataType::INTEGER));
        partitions.push("hour");
    }
    let full = Arc::new(StructType::try_new(fields).map_err(|e| delta(url, "define", e))?);
    let created = create_table(url.as_str(), full, ENGINE_INFO, true)
        .with_data_layout(DataLayout::partitioned(partitions))
        .with_table_properties([
            ("delta.checkpointInterval", CHECKPOINT_INTERVAL.to_string().as_str()),
            ("delta.dataSkippingNumIndexedCols", INDEXED_COLUMNS),
        ])
        .build(engine, Box::new(FileSystemCommitter::new()))
        .map_err(|e| delta(url, "create", e))?
        .commit(engine)
        .map_err(|e| delta(url, "create", e))?;
    match created {
        CommitResult::Committed(committed) => match committed.post_commit_snapshot() {
            Some(snapshot) => Ok(snapshot.clone()),
            None => Snapshot::builder_for(url.as_str()).build(engine).map_err(|e| delta(url, "open", e)),
        },
        // Another worker created it first: use theirs.
        _ => Snapshot::builder_for(url.as_str()).build(engine).map_err(|e| delta(url, "open", e)),
    }
}

/// Adds to an existing table the columns of `schema` it lacks (a newer build's, nullable): one
/// metadata-only commit, no file rewritten; the rows written before read null in them. Another
/// writer adding them at the same moment is fine: the table is looked at again.
fn add_missing_columns(
    engine: &DefaultEngine<TokioMultiThreadExecutor>,
    url: &Url,
    mut snapshot: SnapshotRef,
    schema: &ArrowSchemaRef,
) -> Result<SnapshotRef, SinkError> {
    let wanted = delta_schema(schema)?;
    for _ in 0..3 {
        let table_schema = snapshot.schema();
        let missing: Vec<StructField> =
            wanted.fields().filter(|f| table_schema.field(f.name()).is_none()).cloned().collect();
        if missing.is_empty() {
            return Ok(snapshot);
        }
        if let Some(field) = missing.iter().find(|f| !f.is_nullable()) {
            return Err(SinkError::Config(format!(
                "the lake table {url} has no column '{}', which this build writes and cannot add to the rows the table \
                 holds (it may not be null): point lake.url at a new location",
                field.name()
            )));
        }
        let names: Vec<String> = missing.iter().map(|f| f.name().clone()).collect();
        let mut alter = snapshot.clone().update_table(UpdateTableOperation::AlterTable, ENGINE_INFO, false);
        for field in missing {
            alter = alter.add_column(field);
        }
        let committed = alter
            .build(engine, Box::new(FileSystemCommitter::new()))
            .map_err(|e| delta(url, "add columns to", e))?
            .commit(engine)
            .map_err(|e| delta(url, "add columns to", e))?;
        if let CommitResult::Committed(committed) = &committed {
            tracing::info!(table = %url, columns = ?names, version = committed.commit_version(), "lake table: columns added");
        }
        snapshot = Snapshot::builder_from(snapshot).build(engine).map_err(|e| delta(url, "open", e))?;
    }
    Err(SinkError::Config(format!("the lake table {url} kept changing while its new columns were added: try again")))
}

/// The Delta schema of a table's Arrow schema.
fn delta_schema(schema: &ArrowSchemaRef) -> Result<StructType, SinkError> {
    StructType::try_from_arrow(schema.as_ref())
        .map_err(|e| SinkError::Config(format!("lake schema is not a Delta schema: {e}")))
}

fn partition_values(partition: &Partition, hourly: bool) -> HashMap<String, Scalar> {
    let mut values = HashMap::from([("date".to_string(), Scalar::Date(partition.days_since_epoch()))]);
    if hourly {
        values.insert("hour".to_string(), Scalar::Integer(partition.hour.unwrap_or(0) as i32));
    }
    values
}

fn num_records(stats: &str) -> Option<u64> {
    serde_json::from_str::<serde_json::Value>(stats).ok()?.get("numRecords")?.as_u64()
}

/// `add.path` is URI-encoded; our own names only use unreserved characters, but a file written
/// by another tool may not.
fn percent_decode(path: &str) -> String {
    if !path.contains('%') {
        return path.to_string();
    }
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 3 <= bytes.len()
            && let Ok(byte) = u8::from_str_radix(&path[i + 1..i + 3], 16)
        {
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn delta(url: &Url, operation: &str, err: delta_kernel::KernelError) -> SinkError {
    SinkError::Delta { operation: format!("{operation} the Delta table {url}"), message: err.to_string() }
}
