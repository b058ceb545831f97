//! One lake table as a sink: rows buffered per partition, encoded a row group at a time, and
//! committed as whole objects, so a reader never sees a partial file.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::marker::PhantomData;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use arrow_schema::{ArrowError, SchemaRef};
use bytes::Bytes;
use futures::StreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use parquet::arrow::ArrowWriter;
use trackwire_pipeline::ShardOutput;

use super::buffers::Buffers;
use super::paths::{ObjectKey, Partition};
use super::props::writer_properties;
use super::redact::{Redaction, partition_filter};
use crate::unheld::Unheld;
use crate::{Command, Sink, SinkError};

/// What a table's rows are and how they are laid out.
pub trait TableSpec: Send + 'static {
    /// Rows waiting to be encoded (the points' columns, or finished workouts' summaries).
    type Rows: Default + Send;
    /// Top-level folder of the table.
    const NAME: &'static str;
    /// Partition by hour as well as date.
    const HOURLY: bool;
    fn schema() -> SchemaRef;
    /// The partitioning time (Unix ms) of each of this table's rows in `output`, in row order.
    fn row_times(output: &ShardOutput) -> &[i64];
    /// Appends rows `range` of `output` (indexes into [`TableSpec::row_times`]) to `rows`.
    fn append(rows: &mut Self::Rows, output: &ShardOutput, range: Range<usize>);
    fn row_count(rows: &Self::Rows) -> usize;
    /// Empties `rows`, keeping their memory for the next ones.
    fn clear(rows: &mut Self::Rows);
    fn to_batch(rows: &Self::Rows) -> Result<RecordBatch, ArrowError>;
    /// The timestamp column rows are partitioned by.
    const TIME_COLUMN: &'static str;
    /// Columns that hold positions (nulled by coordinate retention).
    const POSITION_COLUMNS: &'static [&'static str];
}

/// File rolling and encoding knobs.
#[derive(Debug, Clone)]
pub struct LakeConfig {
    /// A file is committed once its encoded size reaches this.
    pub target_file_bytes: usize,
    /// A file is committed once its first row is this old, however small.
    pub max_file_age: Duration,
    /// Rows per Parquet row group.
    pub row_group_rows: usize,
    /// Most partitions with an open file at once. Each open file holds encoder buffers, so a
    /// backfill spanning hundreds of hours would otherwise hold hundreds of them; past the cap the
    /// oldest open file is committed early (a smaller file, bounded memory).
    pub max_open_partitions: usize,
    /// Files larger than this are uploaded in parts of [`MULTIPART_PART_BYTES`] (multipart
    /// upload), smaller ones with a single put.
    pub multipart_threshold_bytes: usize,
    /// zstd level of the Parquet pages (1–22; see [`super::props::DEFAULT_ZSTD_LEVEL`]).
    pub zstd_level: i32,
}

/// Rows are handed to the Parquet writer in chunks of this many: big enough to amortise building
/// Arrow arrays, small enough that the writer's size estimate (used for rolling) stays current.
const ENCODE_CHUNK_ROWS: usize = 8192;

struct OpenFile<R> {
    /// Rows not yet encoded into a row group.
    rows: R,
    writer: ArrowWriter<Vec<u8>>,
    first_lsn: u64,
    opened: Instant,
}

impl<R> OpenFile<R> {
    /// Encodes the buffered rows into the open row group.
    fn encode_pending<T: TableSpec<Rows = R>>(&mut self) -> Result<(), SinkError> {
        if T::row_count(&self.rows) > 0 {
            let batch = T::to_batch(&self.rows)?;
            self.writer.write(&batch)?;
            T::clear(&mut self.rows);
        }
        Ok(())
    }

    fn encoded_bytes(&self) -> usize {
        self.writer.bytes_written() + self.writer.in_progress_size()
    }
}

/// A finished file waiting to be uploaded (kept across failed attempts, uploaded in order).
struct Sealed {
    key: ObjectKey,
    bytes: Bytes,
    first_lsn: u64,
}

pub struct LakeTable<T: TableSpec> {
    store: Arc<dyn ObjectStore>,
    runtime: tokio::runtime::Runtime,
    config: LakeConfig,
    /// Which log the LSNs are of: None for the embedded log, `Some(p)` for partition `p` of the
    /// raw topic. The table reads and writes only that source's files.
    source: Option<u32>,
    open: BTreeMap<Partition, OpenFile<T::Rows>>,
    sealed: VecDeque<Sealed>,
    /// Per partition, the label of its newest committed file: its rows with LSN ≤ label are stored.
    committed: HashMap<Partition, u64>,
    last_fed: u64,
    /// Rows lost to an encoding failure (a bug): the checkpoint stays below them.
    unheld: Unheld,
    /// The partition of the previous row, by its hour (or day) number: consecutive samples almost
    /// always share it, so the calendar conversion runs once per partition change, not per row.
    last_partition: Option<(i64, Partition)>,
    /// Memory of uploaded files, for the next ones.
    buffers: Buffers,
    _table: PhantomData<T>,
}

impl<T: TableSpec> LakeTable<T> {
    /// Opens the table fed by the embedded log and learns from the committed file names what it
    /// already holds.
    pub fn open(store: Arc<dyn ObjectStore>, config: LakeConfig) -> Result<Self, SinkError> {
        Self::open_source(store, config, None)
    }

    /// Opens the table fed by `source` (see the field): several sources share the lake's
    /// partitions, each with its own file labels.
    pub fn open_source(
        store: Arc<dyn ObjectStore>,
        config: LakeConfig,
        source: Option<u32>,
    ) -> Result<Self, SinkError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| SinkError::io("starting the object store runtime", e))?;
        let prefix = Path::from(T::NAME);
        let mut committed: HashMap<Partition, u64> = HashMap::new();
        let listed: Vec<_> = runtime.block_on(store.list(Some(&prefix)).collect());
        for meta in listed {
            let meta =
                meta.map_err(|source| SinkError::ObjectStore { operation: "list", path: T::NAME.into(), source })?;
            if let Some(key) = ObjectKey::parse(T::NAME, &meta.location).filter(|key| key.source == source) {
                let label = committed.entry(key.partition).or_default();
                *label = (*label).max(key.label);
            }
        }
        tracing::info!(table = T::NAME, partitions = committed.len(), "lake table opened");
        Ok(LakeTable {
            store,
            runtime,
            config,
            source,
            open: BTreeMap::new(),
            sealed: VecDeque::new(),
            committed,
            last_fed: 0,
            unheld: Unheld::default(),
            last_partition: None,
            buffers: Buffers::default(),
            _table: PhantomData,
        })
    }

    /// Finishes a partition's open file in memory, named by the last LSN fed: so it must only be
    /// called when every row of that LSN has been buffered (between outputs, never inside one),
    /// or a later row of the same output would land in a second file under the same name.
    fn seal(&mut self, partition: Partition) -> Result<(), SinkError> {
        let Some(mut file) = self.open.remove(&partition) else {
            return Ok(());
        };
        let first_lsn = file.first_lsn;
        let sealed = (|| -> Result<Bytes, SinkError> {
            file.encode_pending::<T>()?;
            Ok(Bytes::from(file.writer.into_inner()?))
        })();
        match sealed {
            Ok(bytes) => {
                let key = ObjectKey { table: T::NAME, partition, source: self.source, label: self.last_fed };
                self.sealed.push_back(Sealed { key, bytes, first_lsn });
                Ok(())
            }
            Err(err) => Err(self.unheld.record(first_lsn, &err)),
        }
    }

    /// Commits the files opened longest ago until at most `max_open_partitions` are open: bounded
    /// memory for a backfill over many hours. Runs after a whole output has been buffered.
    fn seal_oldest_beyond_cap(&mut self) {
        while self.open.len() > self.config.max_open_partitions.max(1) {
            let Some(oldest) = self.open.iter().min_by_key(|(_, f)| f.opened).map(|(p, _)| *p) else { return };
            // An error is recorded as unheld rows; flush reports it.
            let _ = self.seal(oldest);
        }
    }

    /// Uploads sealed files oldest first, stopping at the first failure so that a partition's
    /// files always commit in label order (recovery relies on it).
    fn upload_sealed(&mut self) -> Result<(), SinkError> {
        while let Some(file) = self.sealed.front() {
            let path = file.key.path();
            let upload = upload(self.store.as_ref(), &path, file.bytes.clone(), self.config.multipart_threshold_bytes);
            self.runtime.block_on(upload).map_err(|(operation, source)| SinkError::ObjectStore {
                operation,
                path: path.to_string(),
                source,
            })?;
            let file = self.sealed.pop_front().expect("front exists");
            self.committed.insert(file.key.partition, file.key.label);
            tracing::debug!(path = %path, bytes = file.bytes.len(), "lake file committed");
            self.buffers.give_back(file.bytes);
        }
        Ok(())
    }
}

impl<T: TableSpec> Sink for LakeTable<T> {
    fn name(&self) -> &'static str {
        T::NAME
    }

    fn accept(&mut self, output: &ShardOutput) {
        let lsn = output.lsn;
        let mut encode_failed = None;
        let times = T::row_times(output);
        let bucket_ms = if T::HOURLY { 3_600_000 } else { 86_400_000 };
        let mut start = 0;
        // Consecutive rows almost always share a partition: each run of them is appended whole,
        // and the calendar conversion runs once per partition change, not per row.
        while start < times.len() {
            let bucket = times[start].div_euclid(bucket_ms);
            let end = start + times[start..].iter().take_while(|t| t.div_euclid(bucket_ms) == bucket).count();
            let run = start..end;
            start = end;
            let partition = match self.last_partition {
                Some((b, p)) if b == bucket => p,
                _ => {
                    let p = Partition::of_time_ms(times[run.start], T::HOURLY);
                    self.last_partition = Some((bucket, p));
                    p
                }
            };
            if self.committed.get(&partition).is_some_and(|label| *label >= lsn) {
                continue; // Replayed: this partition already holds this record's rows.
            }
            let file = match self.open.entry(partition) {
                std::collections::btree_map::Entry::Occupied(file) => file.into_mut(),
                std::collections::btree_map::Entry::Vacant(slot) => {
                    match new_file::<T>(&self.config, lsn, self.buffers.take()) {
                        Ok(file) => slot.insert(file),
                        Err(err) => {
                            encode_failed.get_or_insert((lsn, err));
                            continue;
                        }
                    }
                }
            };
            T::append(&mut file.rows, output, run);
            if T::row_count(&file.rows) >= ENCODE_CHUNK_ROWS
                && let Err(err) = file.encode_pending::<T>()
            {
                encode_failed.get_or_insert((file.first_lsn, err));
            }
        }
        self.last_fed = lsn;
        if let Some((first_lsn, err)) = encode_failed {
            self.unheld.record(first_lsn, &err);
        }
        self.seal_oldest_beyond_cap();
    }

    fn flush(&mut self, now: Instant, force: bool) -> Result<(), SinkError> {
        self.unheld.check()?;
        if self.open.is_empty() && self.sealed.is_empty() {
            // Nothing came since the last flush committed everything: idle, so the spare
            // memory goes back to the system instead of waiting for a burst.
            self.buffers.release();
        }
        let mut due = Vec::new();
        let mut encode_failed = None;
        for (partition, file) in &mut self.open {
            if let Err(err) = file.encode_pending::<T>() {
                encode_failed.get_or_insert((file.first_lsn, err));
                continue;
            }
            if force
                || file.encoded_bytes() >= self.config.target_file_bytes
                || now.duration_since(file.opened) >= self.config.max_file_age
            {
                due.push(*partition);
            }
        }
        if let Some((first_lsn, err)) = encode_failed {
            return Err(self.unheld.record(first_lsn, &err));
        }
        for partition in due {
            self.seal(partition)?;
        }
        self.upload_sealed()
    }

    /// Erasure and retention: commits what is buffered (so every row is in a file), then rewrites
    /// each committed file the command touches.
    fn command(&mut self, command: &Command) -> Result<(), SinkError> {
        let erased: HashSet<String>;
        let redaction = match command {
            Command::Erase(erasure) => {
                erased = erasure.workouts.iter().map(|w| w.workout_id.to_string()).collect();
                Redaction::EraseWorkouts(&erased)
            }
            Command::DropPositions { before_ms, .. } if !T::POSITION_COLUMNS.is_empty() => Redaction::DropPositions {
                columns: T::POSITION_COLUMNS,
                time_column: T::TIME_COLUMN,
                before_us: before_ms.saturating_mul(1000),
            },
            Command::DropPositions { .. } => return Ok(()),
        };
        self.flush(Instant::now(), true)?;
        let wanted = partition_filter(command);
        let prefix = Path::from(T::NAME);
        let listed: Vec<_> = self.runtime.block_on(self.store.list(Some(&prefix)).collect());
        let mut rewritten = 0;
        for meta in listed {
            let meta =
                meta.map_err(|source| SinkError::ObjectStore { operation: "list", path: T::NAME.into(), source })?;
            let Some(key) = ObjectKey::parse(T::NAME, &meta.location) else { continue };
            // Each source redacts its own files (every source receives the command).
            if key.source != self.source || !wanted(&key.partition) {
                continue;
            }
            rewritten += usize::from(self.rewrite(&meta.location, &redaction)?);
        }
        tracing::info!(table = T::NAME, files = rewritten, "lake files rewritten");
        Ok(())
    }

    fn checkpoint(&self) -> u64 {
        let oldest_pending = self
            .open
            .values()
            .map(|f| f.first_lsn)
            .chain(self.sealed.iter().map(|s| s.first_lsn))
            .chain(self.unheld.first_lsn())
            .min();
        match oldest_pending {
            Some(first) => first - 1,
            None => self.last_fed,
        }
    }

    fn is_full(&self) -> bool {
        // Sealed files wait here while the store is away; past this the coordinator waits too.
        let waiting: usize = self.sealed.iter().map(|s| s.bytes.len()).sum();
        waiting >= self.config.target_file_bytes.saturating_mul(2).max(MIN_WAITING_BYTES)
    }
}

/// The least a table lets sealed files wait in memory before it holds back new outputs.
const MIN_WAITING_BYTES: usize = 64 << 20;

fn new_file<T: TableSpec>(
    config: &LakeConfig,
    first_lsn: u64,
    buffer: Vec<u8>,
) -> Result<OpenFile<T::Rows>, SinkError> {
    let writer = ArrowWriter::try_new(
        buffer,
        T::schema(),
        Some(writer_properties(&T::schema(), config.row_group_rows, config.zstd_level)?),
    )?;
    Ok(OpenFile { rows: T::Rows::default(), writer, first_lsn, opened: Instant::now() })
}

impl<T: TableSpec> LakeTable<T> {
    /// Rewrites one committed file under the same key; false when the redaction changes nothing.
    fn rewrite(&self, path: &Path, redaction: &Redaction<'_>) -> Result<bool, SinkError> {
        let fail = |operation, source| SinkError::ObjectStore { operation, path: path.to_string(), source };
        let bytes =
            self.runtime.block_on(async { self.store.get(path).await?.bytes().await }).map_err(|e| fail("get", e))?;
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)?.build()?;
        let mut changed = false;
        let mut batches = Vec::new();
        for batch in reader {
            let batch = batch?;
            match redaction.apply(&batch)? {
                Some(redacted) => {
                    changed = true;
                    batches.push(redacted);
                }
                None => batches.push(batch),
            }
        }
        if !changed {
            return Ok(false);
        }
        // An emptied file is kept (with no rows): its name still records the partition's label.
        let mut writer = ArrowWriter::try_new(
            Vec::new(),
            T::schema(),
            Some(writer_properties(&T::schema(), self.config.row_group_rows, self.config.zstd_level)?),
        )?;
        for batch in &batches {
            writer.write(batch)?;
        }
        let bytes = Bytes::from(writer.into_inner()?);
        self.runtime
            .block_on(upload(self.store.as_ref(), path, bytes, self.config.multipart_threshold_bytes))
            .map_err(|(operation, e)| fail(operation, e))?;
        Ok(true)
    }
}

/// Size of each part of a multipart upload: above S3's 5 MiB minimum for every part but the last.
/// Multipart because S3's single PUT tops out at 5 GiB and a failed part is retried alone.
pub const MULTIPART_PART_BYTES: usize = 16 << 20;

/// Puts one file so that it becomes visible only complete: a single put, or a multipart upload
/// that S3 assembles atomically when completed (an upload that fails before completing stays
/// invisible; the next flush uploads the file again).
async fn upload(
    store: &dyn ObjectStore,
    path: &Path,
    bytes: Bytes,
    multipart_threshold: usize,
) -> Result<(), (&'static str, object_store::Error)> {
    if bytes.len() <= multipart_threshold {
        store.put(path, PutPayload::from(bytes)).await.map_err(|e| ("put", e))?;
        return Ok(());
    }
    let upload = store.put_multipart(path).await.map_err(|e| ("put_multipart", e))?;
    let mut writer = object_store::WriteMultipart::new_with_chunk_size(upload, MULTIPART_PART_BYTES);
    writer.put(bytes);
    match writer.finish().await {
        Ok(_) => Ok(()),
        Err(e) => Err(("complete multipart upload", e)),
    }
}
