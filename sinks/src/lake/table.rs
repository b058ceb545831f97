//! One lake table as a sink: rows buffered per partition, encoded a row group at a time into
//! Parquet files, and committed to the table's Delta log together with the sink's position in
//! the log, so a reader sees every row of a commit or none, and a restart knows where it was.

use std::collections::{BTreeMap, VecDeque};
use std::marker::PhantomData;
use std::ops::Range;
use std::time::{Duration, Instant};

use arrow_array::{RecordBatch, StructArray};
use arrow_schema::{ArrowError, SchemaRef};
use bytes::Bytes;
use delta_kernel_default_engine::stats::FileStatsAccumulator;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use parquet::arrow::ArrowWriter;
use trackwire_pipeline::ShardOutput;

use super::buffers::Buffers;
use super::delta::{Changes, Commit, DeltaTable, NewFile, StatsSpec};
use super::maintenance::Maintenance;
use super::paths::{ObjectKey, Partition};
use super::props::writer_properties;
use super::store::LakeLocation;
use crate::unheld::Unheld;
use crate::{Sink, SinkError};

/// What a table's rows are and how they are laid out.
pub trait TableSpec: Send + 'static {
    /// Rows waiting to be encoded (the points' columns, or finished workouts' summaries).
    type Rows: Default + Send;
    /// Folder of the table under the lake's root.
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
    /// The column holding the LSN each row came from (Int64).
    const LSN_COLUMN: &'static str;
    /// Columns that hold positions (nulled by coordinate retention).
    const POSITION_COLUMNS: &'static [&'static str];
}

/// File rolling, encoding and maintenance knobs.
#[derive(Debug, Clone)]
pub struct LakeConfig {
    /// A commit is due once an open file's encoded size reaches this; compaction merges files
    /// smaller than this.
    pub target_file_bytes: usize,
    /// A commit is due once the oldest uncommitted row is this old, however small the files.
    pub max_file_age: Duration,
    /// Rows per Parquet row group.
    pub row_group_rows: usize,
    /// Most partitions with an open file at once. Each open file holds encoder buffers, so a
    /// backfill spanning hundreds of hours would otherwise hold hundreds of them; past the cap the
    /// oldest open file is finished early (a smaller file, bounded memory).
    pub max_open_partitions: usize,
    /// Files larger than this are uploaded in parts of [`MULTIPART_PART_BYTES`] (multipart
    /// upload), smaller ones with a single put.
    pub multipart_threshold_bytes: usize,
    /// zstd level of the Parquet pages (1–22; see [`super::props::DEFAULT_ZSTD_LEVEL`]).
    pub zstd_level: i32,
    /// A partition is compacted once it holds more than this many files smaller than the target.
    pub compact_above_files: usize,
    /// How long a file replaced by compaction stays readable (for queries that started before
    /// the compaction) before it is deleted. Files replaced by an erasure or by coordinate
    /// retention are deleted at once.
    pub vacuum_retention: Duration,
}

impl Default for LakeConfig {
    fn default() -> Self {
        LakeConfig {
            target_file_bytes: 64 << 20,
            max_file_age: Duration::from_secs(60),
            row_group_rows: 1 << 20,
            max_open_partitions: 16,
            multipart_threshold_bytes: 64 << 20,
            zstd_level: super::props::DEFAULT_ZSTD_LEVEL,
            compact_above_files: 3,
            vacuum_retention: Duration::from_secs(3600),
        }
    }
}

/// Rows are handed to the Parquet writer in chunks of this many: big enough to amortise building
/// Arrow arrays, small enough that the writer's size estimate (used for rolling) stays current.
const ENCODE_CHUNK_ROWS: usize = 8192;

/// Attempts at one commit when other writers keep taking the next version first.
const COMMIT_ATTEMPTS: usize = 8;

/// A Parquet file being written, with the statistics the log records for it.
pub(super) struct FileWriter {
    writer: ArrowWriter<Vec<u8>>,
    stats: FileStatsAccumulator,
}

impl FileWriter {
    pub(super) fn new(
        stats: &StatsSpec,
        schema: SchemaRef,
        config: &LakeConfig,
        buffer: Vec<u8>,
    ) -> Result<Self, SinkError> {
        let props = writer_properties(&schema, config.row_group_rows, config.zstd_level)?;
        Ok(FileWriter { writer: ArrowWriter::try_new(buffer, schema, Some(props))?, stats: stats.accumulator() })
    }

    pub(super) fn write(&mut self, batch: &RecordBatch) -> Result<(), SinkError> {
        self.stats.merge(batch).map_err(|e| SinkError::Encoding(format!("file statistics: {e}")))?;
        self.writer.write(batch)?;
        Ok(())
    }

    pub(super) fn encoded_bytes(&self) -> usize {
        self.writer.bytes_written() + self.writer.in_progress_size()
    }

    /// The finished file and its statistics; None when no row was written.
    pub(super) fn finish(self) -> Result<Option<(Bytes, StructArray)>, SinkError> {
        let stats = self.stats.finish().map_err(|e| SinkError::Encoding(format!("file statistics: {e}")))?;
        let bytes = Bytes::from(self.writer.into_inner()?);
        Ok(stats.map(|stats| (bytes, stats)))
    }
}

struct OpenFile<R> {
    /// Rows not yet encoded into a row group.
    rows: R,
    writer: FileWriter,
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
}

/// A finished file waiting for the commit that adds it (kept, with its bytes, until then: a
/// conflict with another writer may mean rewriting it).
pub(super) struct Sealed {
    pub(super) key: ObjectKey,
    pub(super) bytes: Bytes,
    pub(super) stats: StructArray,
    pub(super) first_lsn: u64,
    pub(super) uploaded: bool,
}

pub struct LakeTable<T: TableSpec> {
    pub(super) location: LakeLocation,
    /// The table's root URL.
    pub(super) url: url::Url,
    /// The Delta table, once reached (opened or created): until then files are written and
    /// wait, and the first commit learns from the table's log what it already holds.
    table: Option<DeltaTable>,
    pub(super) stats: StatsSpec,
    pub(super) runtime: tokio::runtime::Runtime,
    pub(super) config: LakeConfig,
    /// Which log the LSNs are of: None for the embedded log, `Some(p)` for partition `p` of the
    /// raw topic. Each source commits its own position and maintains only its own files.
    pub(super) source: Option<u32>,
    /// The Delta application id this sink's commits carry.
    app_id: String,
    /// The LSN through which this source's rows are in the table.
    committed: u64,
    open: BTreeMap<Partition, OpenFile<T::Rows>>,
    sealed: VecDeque<Sealed>,
    last_fed: u64,
    /// Rows lost to an encoding failure (a bug): the checkpoint stays below them.
    unheld: Unheld,
    /// The partition of the previous row, by its hour (or day) number: consecutive samples almost
    /// always share it, so the calendar conversion runs once per partition change, not per row.
    last_partition: Option<(i64, Partition)>,
    /// Memory of uploaded files, for the next ones.
    buffers: Buffers,
    pub(super) maintenance: Maintenance,
    _table: PhantomData<T>,
}

impl<T: TableSpec> LakeTable<T> {
    /// Opens (or creates) the table fed by the embedded log and reads from its log how far it is.
    pub fn open(location: LakeLocation, config: LakeConfig) -> Result<Self, SinkError> {
        Self::open_source(location, config, None)
    }

    /// Opens the table fed by `source` (see the field): several sources share the table, each
    /// with its own position in the log.
    pub fn open_source(location: LakeLocation, config: LakeConfig, source: Option<u32>) -> Result<Self, SinkError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| SinkError::io("starting the object store runtime", e))?;
        let url = location.table_url(T::NAME);
        let app_id = match source {
            None => format!("trackwire/{}/embedded", T::NAME),
            Some(p) => format!("trackwire/{}/raw-{p}", T::NAME),
        };
        let mut lake = LakeTable {
            location,
            url,
            table: None,
            stats: StatsSpec::of(&T::schema())?,
            runtime,
            config,
            source,
            app_id,
            committed: 0,
            open: BTreeMap::new(),
            sealed: VecDeque::new(),
            last_fed: 0,
            unheld: Unheld::default(),
            last_partition: None,
            buffers: Buffers::default(),
            maintenance: Maintenance::default(),
            _table: PhantomData,
        };
        // A store that is away at start is no reason not to start: the rows wait in the log, and
        // the first flush that reaches the table finds out what it holds.
        match lake.reach_table() {
            Ok(table) => {
                tracing::info!(
                    table = T::NAME,
                    version = table.version(),
                    committed = lake.committed,
                    "lake table opened"
                );
                lake.last_fed = lake.committed;
                // Files a crash left uploaded but never committed are the first to go.
                if let Err(err) = lake.vacuum(None) {
                    tracing::warn!(table = T::NAME, error = %err, "lake vacuum at start failed; retried later");
                }
            }
            Err(err) => {
                tracing::warn!(table = T::NAME, error = %err, "lake table not reachable at start; retried at each flush")
            }
        }
        Ok(lake)
    }

    /// Opens (or creates) the Delta table if not done yet, and learns this source's position.
    pub(super) fn reach_table(&mut self) -> Result<&mut DeltaTable, SinkError> {
        if self.table.is_none() {
            let exists = self.runtime.block_on(self.location.has_delta_log(&self.url))?;
            if !exists && let Ok(dir) = self.url.to_file_path() {
                // The kernel creates a local table only in a directory that exists.
                std::fs::create_dir_all(&dir).map_err(|e| SinkError::io(format!("creating {}", dir.display()), e))?;
            }
            if !exists {
                self.warn_of_earlier_layout()?;
            }
            let table = DeltaTable::open_or_create(
                self.location.store.clone(),
                self.url.clone(),
                exists,
                &T::schema(),
                T::HOURLY,
            )?;
            let committed = table.app_version(&self.app_id)?.unwrap_or(0);
            self.committed = self.committed.max(committed);
            self.table = Some(table);
        }
        Ok(self.table.as_mut().expect("just reached"))
    }

    /// Files of the earlier, log-less layout (no unique id in their names) are not part of the
    /// Delta table this creates; they are left where they are, readable as plain Parquet, and
    /// vacuum never touches them. Said once, loudly, so nobody mistakes them for lost.
    fn warn_of_earlier_layout(&self) -> Result<(), SinkError> {
        use futures::StreamExt;
        let root = self.location.object(&self.url)?;
        let listed: Vec<_> = self.runtime.block_on(self.location.store.list(Some(&root)).collect());
        let earlier = listed
            .into_iter()
            .filter_map(Result::ok)
            .filter_map(|meta| {
                let relative: Vec<String> =
                    meta.location.prefix_match(&root)?.map(|p| p.as_ref().to_string()).collect();
                ObjectKey::parse(&relative.join("/"))
            })
            .filter(|key| key.unique.is_none())
            .count();
        if earlier > 0 {
            tracing::warn!(
                table = T::NAME,
                files = earlier,
                "the lake directory holds Parquet files of the earlier layout (no Delta log); they are not part of \
                 the new Delta table and stay readable as plain Parquet (read_parquet with hive partitioning)"
            );
        }
        Ok(())
    }

    /// The Delta table, which the caller has reached first.
    pub(super) fn delta(&self) -> Result<&DeltaTable, SinkError> {
        self.table.as_ref().ok_or_else(|| SinkError::Config(format!("lake table {} is not reachable yet", T::NAME)))
    }

    /// The Delta table's current version (0 before it was reached).
    pub fn version(&self) -> u64 {
        self.table.as_ref().map_or(0, DeltaTable::version)
    }

    /// Finishes a partition's open file in memory, named by the last LSN fed: so it must only be
    /// called between outputs, never inside one.
    fn seal(&mut self, partition: Partition) -> Result<(), SinkError> {
        let Some(mut file) = self.open.remove(&partition) else {
            return Ok(());
        };
        let first_lsn = file.first_lsn;
        let sealed = (|| -> Result<_, SinkError> {
            file.encode_pending::<T>()?;
            file.writer.finish()
        })();
        match sealed {
            Ok(Some((bytes, stats))) => {
                let key = ObjectKey::new(partition, self.source, self.last_fed);
                self.sealed.push_back(Sealed { key, bytes, stats, first_lsn, uploaded: false });
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(err) => Err(self.unheld.record(first_lsn, &err)),
        }
    }

    /// Finishes the files opened longest ago until at most `max_open_partitions` are open:
    /// bounded memory for a backfill over many hours. Runs after a whole output has been
    /// buffered; the finished files wait for the next commit.
    fn seal_oldest_beyond_cap(&mut self) {
        while self.open.len() > self.config.max_open_partitions.max(1) {
            let Some(oldest) = self.open.iter().min_by_key(|(_, f)| f.opened).map(|(p, _)| *p) else { return };
            // An error is recorded as unheld rows; flush reports it.
            let _ = self.seal(oldest);
        }
    }

    /// Uploads the finished files not uploaded yet. A file is only an object until a commit
    /// names it: readers of the table never see it, and vacuum removes it if no commit ever does.
    fn upload_sealed(&mut self) -> Result<(), SinkError> {
        for index in 0..self.sealed.len() {
            if self.sealed[index].uploaded {
                continue;
            }
            let path = self.file_path(&self.sealed[index].key)?;
            let bytes = self.sealed[index].bytes.clone();
            self.put(&path, bytes)?;
            self.sealed[index].uploaded = true;
        }
        Ok(())
    }

    /// Finishes every open file and commits all finished ones with this source's position: after
    /// it, every row fed so far is in the table.
    fn commit_all(&mut self) -> Result<(), SinkError> {
        let partitions: Vec<Partition> = self.open.keys().copied().collect();
        for partition in partitions {
            self.seal(partition)?;
        }
        if self.sealed.is_empty() {
            return Ok(());
        }
        let known = self.committed;
        self.reach_table()?;
        if self.committed > known {
            // The table was reached only now and already holds some of these rows.
            self.drop_committed_rows()?;
        }
        if self.sealed.is_empty() {
            return Ok(());
        }
        self.upload_sealed()?;
        let through = self.last_fed;
        for _ in 0..COMMIT_ATTEMPTS {
            let changes = Changes {
                add: self.sealed.iter().map(|s| self.new_file(&s.key, s.bytes.len(), s.stats.clone())).collect(),
                transaction: Some((self.app_id.clone(), through)),
                ..Changes::default()
            };
            match self.reach_table()?.commit(changes)? {
                Commit::Committed { version } => {
                    tracing::debug!(table = T::NAME, version, files = self.sealed.len(), through, "lake commit");
                    self.committed = through;
                    for file in std::mem::take(&mut self.sealed) {
                        self.buffers.give_back(file.bytes);
                    }
                    return Ok(());
                }
                // Appends remove nothing, so only a conflict can stop them.
                Commit::Conflict | Commit::Stale => self.resolve_conflict(through)?,
            }
            if self.sealed.is_empty() {
                return Ok(());
            }
        }
        Err(SinkError::Config(format!(
            "{}: other writers took every version in {COMMIT_ATTEMPTS} attempts; retrying at the next flush",
            T::NAME
        )))
    }

    /// Another writer committed first. If it was another worker with this source (a takeover),
    /// its rows may overlap ours: whatever it already committed is dropped from our files.
    fn resolve_conflict(&mut self, through: u64) -> Result<(), SinkError> {
        let theirs = self.delta()?.app_version(&self.app_id)?.unwrap_or(0);
        if theirs <= self.committed {
            return Ok(()); // Someone else's commit: ours goes on top.
        }
        tracing::warn!(table = T::NAME, ours = through, theirs, "another writer committed this log's rows");
        self.committed = theirs;
        self.drop_committed_rows()
    }

    /// Drops from the finished files every row at or below the committed position (whole files
    /// where all of them are), rewriting the rest under new names.
    fn drop_committed_rows(&mut self) -> Result<(), SinkError> {
        let theirs = self.committed;
        let files = std::mem::take(&mut self.sealed);
        // A commit of ours whose answer was lost (it landed, then failed to reply) also shows as
        // a position ahead of ours: its files are the table's now, to keep, not to delete.
        let active: std::collections::HashSet<String> = match self.table {
            Some(ref table) if files.iter().any(|f| f.uploaded) => {
                table.active_files()?.into_iter().map(|f| f.path).collect()
            }
            _ => Default::default(),
        };
        for file in files {
            let path = self.file_path(&file.key)?;
            if file.first_lsn > theirs {
                self.sealed.push_back(file);
                continue;
            }
            if active.contains(&file.key.relative()) {
                continue;
            }
            if file.uploaded {
                self.delete(&path)?;
            }
            if file.key.label <= theirs {
                continue; // Every row of it is in the table already.
            }
            let batches = read_batches(file.bytes)?;
            let kept = super::redact::keep_lsn_above(&batches, T::LSN_COLUMN, theirs)?;
            let mut writer = FileWriter::new(&self.stats, T::schema(), &self.config, Vec::new())?;
            for batch in &kept {
                writer.write(batch)?;
            }
            if let Some((bytes, stats)) = writer.finish()? {
                let key = ObjectKey::new(file.key.partition, self.source, file.key.label);
                self.sealed.push_back(Sealed { key, bytes, stats, first_lsn: theirs + 1, uploaded: false });
            }
        }
        self.upload_sealed()
    }

    pub(super) fn new_file(&self, key: &ObjectKey, size: usize, stats: StructArray) -> NewFile {
        NewFile { path: key.relative(), partition: key.partition, size: size as u64, stats }
    }

    /// The object of a file of this table.
    pub(super) fn file_path(&self, key: &ObjectKey) -> Result<Path, SinkError> {
        self.relative_path(&key.relative())
    }

    pub(super) fn relative_path(&self, relative: &str) -> Result<Path, SinkError> {
        let url = self.url.join(relative).map_err(|e| SinkError::Config(format!("lake file {relative}: {e}")))?;
        self.location.object(&url)
    }

    pub(super) fn put(&self, path: &Path, bytes: Bytes) -> Result<(), SinkError> {
        let upload = upload(self.location.store.as_ref(), path, bytes, self.config.multipart_threshold_bytes);
        self.runtime.block_on(upload).map_err(|(operation, source)| SinkError::ObjectStore {
            operation,
            path: path.to_string(),
            source,
        })
    }

    pub(super) fn get(&self, path: &Path) -> Result<Bytes, SinkError> {
        self.runtime
            .block_on(async { self.location.store.get(path).await?.bytes().await })
            .map_err(|source| SinkError::ObjectStore { operation: "get", path: path.to_string(), source })
    }

    pub(super) fn delete(&self, path: &Path) -> Result<(), SinkError> {
        match self.runtime.block_on(self.location.store.delete(path)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(source) => Err(SinkError::ObjectStore { operation: "delete", path: path.to_string(), source }),
        }
    }
}

/// The record batches of an encoded Parquet file.
pub(super) fn read_batches(bytes: Bytes) -> Result<Vec<RecordBatch>, SinkError> {
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)?.build()?;
    Ok(reader.collect::<Result<Vec<_>, _>>()?)
}

impl<T: TableSpec> Sink for LakeTable<T> {
    fn name(&self) -> &'static str {
        T::NAME
    }

    fn accept(&mut self, output: &ShardOutput) {
        let lsn = output.lsn;
        if lsn <= self.committed {
            return; // Replayed: the table's log says these rows are in.
        }
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
            let file = match self.open.entry(partition) {
                std::collections::btree_map::Entry::Occupied(file) => file.into_mut(),
                std::collections::btree_map::Entry::Vacant(slot) => {
                    match FileWriter::new(&self.stats, T::schema(), &self.config, self.buffers.take()) {
                        Ok(writer) => slot.insert(OpenFile {
                            rows: T::Rows::default(),
                            writer,
                            first_lsn: lsn,
                            opened: Instant::now(),
                        }),
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
            // Nothing came since the last commit: idle, so the spare memory goes back to the
            // system instead of waiting for a burst, and there is time for upkeep.
            self.buffers.release();
            return self.maintain(now);
        }
        let mut due = force || self.sealed_bytes() >= self.config.target_file_bytes;
        let mut encode_failed = None;
        for file in self.open.values_mut() {
            if let Err(err) = file.encode_pending::<T>() {
                encode_failed.get_or_insert((file.first_lsn, err));
                continue;
            }
            due |= file.writer.encoded_bytes() >= self.config.target_file_bytes
                || now.duration_since(file.opened) >= self.config.max_file_age;
        }
        if let Some((first_lsn, err)) = encode_failed {
            return Err(self.unheld.record(first_lsn, &err));
        }
        if !due {
            return Ok(());
        }
        self.commit_all()?;
        self.maintain(now)
    }

    /// Erasure and retention: commits what is buffered (so every row is in the table), then
    /// replaces each file the command touches.
    fn command(&mut self, command: &crate::Command) -> Result<(), SinkError> {
        self.flush(Instant::now(), true)?;
        self.redact(command)
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
            None => self.last_fed.max(self.committed),
        }
    }

    fn is_full(&self) -> bool {
        // Finished files wait here while the store is away; past this the coordinator waits too.
        self.sealed_bytes() >= self.config.target_file_bytes.saturating_mul(2).max(MIN_WAITING_BYTES)
    }
}

impl<T: TableSpec> LakeTable<T> {
    fn sealed_bytes(&self) -> usize {
        self.sealed.iter().map(|s| s.bytes.len()).sum()
    }
}

/// The least a table lets finished files wait in memory before it holds back new outputs.
const MIN_WAITING_BYTES: usize = 64 << 20;

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
