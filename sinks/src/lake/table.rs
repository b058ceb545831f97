//! One lake table as a sink: rows buffered per partition, encoded a row group at a time into
//! Parquet files, and committed to the table's Delta log together with the sink's position in
//! the log, so a reader sees every row of a commit or none, and a restart knows where it was.

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use arrow_array::StructArray;
use bytes::Bytes;
use trackwire_pipeline::ShardOutput;

use super::access::TableAccess;
use super::buffers::Buffers;
use super::delta::{Changes, Commit};
use super::files::{FileWriter, keep_lsn_above, read_batches};
use super::maintenance::Maintenance;
use super::paths::{ObjectKey, Partition};
use super::settler::Settler;
use super::spec::{LakeConfig, TableSpec};
use super::store::LakeLocation;
use crate::unheld::Unheld;
use crate::{Sink, SinkError};

/// Rows are handed to the Parquet writer in chunks of this many: big enough to amortise building
/// Arrow arrays, small enough that the writer's size estimate (used for rolling) stays current.
const ENCODE_CHUNK_ROWS: usize = 8192;

/// Attempts at one commit when other writers keep taking the next version first.
const COMMIT_ATTEMPTS: usize = 8;

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
    /// The table's storage, log and position.
    files: TableAccess<T>,
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
    maintenance: Maintenance,
    /// Compacts small files and merges settled partitions beside the sink (see [`super::settler`]).
    _settler: Option<Settler>,
}

impl<T: TableSpec> LakeTable<T> {
    /// Opens (or creates) the table fed by the embedded log and reads from its log how far it is.
    pub fn open(location: LakeLocation, config: LakeConfig) -> Result<Self, SinkError> {
        Self::open_source(location, config, None)
    }

    /// Opens the table fed by `source` (see the field): several sources share the table, each
    /// with its own position in the log.
    pub fn open_source(location: LakeLocation, config: LakeConfig, source: Option<u32>) -> Result<Self, SinkError> {
        let files = TableAccess::new(location.clone(), config.clone(), source)?;
        let settler = Settler::spawn::<T>(location, config, source, files.exclusive.clone());
        let mut lake = LakeTable {
            files,
            open: BTreeMap::new(),
            sealed: VecDeque::new(),
            last_fed: 0,
            unheld: Unheld::default(),
            last_partition: None,
            buffers: Buffers::default(),
            maintenance: Maintenance::default(),
            _settler: settler,
        };
        // A store that is away at start is no reason not to start: the rows wait in the log, and
        // the first flush that reaches the table finds out what it holds.
        match lake.files.reach_table() {
            Ok(table) => {
                tracing::info!(
                    table = T::NAME,
                    version = table.version(),
                    committed = lake.files.committed,
                    "lake table opened"
                );
                lake.last_fed = lake.files.committed;
                // Files a crash left uploaded but never committed are the first to go.
                let exclusive = lake.files.exclusive.clone();
                let _turn = exclusive.take();
                if let Err(err) = lake.files.vacuum(None) {
                    tracing::warn!(table = T::NAME, error = %err, "lake vacuum at start failed; retried later");
                }
            }
            Err(err) => {
                tracing::warn!(table = T::NAME, error = %err, "lake table not reachable at start; retried at each flush")
            }
        }
        Ok(lake)
    }

    /// The Delta table's current version (0 before it was reached).
    pub fn version(&self) -> u64 {
        self.files.version()
    }

    /// Merges the small files of the first partition over the limit (normally the settler's
    /// work, in the background); returns whether it committed a compaction.
    pub fn compact_one(&mut self) -> Result<bool, SinkError> {
        self.files.compact_one()
    }

    /// Merges the first settled partition over the file limit (normally the settler's work, in
    /// the background); `now_ms` is the wall clock. Returns whether it committed.
    pub fn settle_one(&mut self, now_ms: i64) -> Result<bool, SinkError> {
        self.files.settle_one(now_ms)
    }

    /// Deletes files no version names (see `TableAccess::vacuum`); returns how many.
    pub fn vacuum(&mut self, only: Option<&dyn Fn(&Partition) -> bool>) -> Result<usize, SinkError> {
        let exclusive = self.files.exclusive.clone();
        let _turn = exclusive.take();
        self.files.vacuum(only)
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
                let key = ObjectKey::new(partition, self.files.source, self.last_fed);
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
        while self.open.len() > self.files.config.max_open_partitions.max(1) {
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
            let path = self.files.file_path(&self.sealed[index].key)?;
            let bytes = self.sealed[index].bytes.clone();
            self.files.put(&path, bytes)?;
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
        let known = self.files.committed;
        self.files.reach_table()?;
        if self.files.committed > known {
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
                add: self.sealed.iter().map(|s| self.files.new_file(&s.key, s.bytes.len(), s.stats.clone())).collect(),
                transaction: Some((self.files.app_id.clone(), through)),
                ..Changes::default()
            };
            match self.files.reach_table()?.commit(changes)? {
                Commit::Committed { version } => {
                    tracing::debug!(table = T::NAME, version, files = self.sealed.len(), through, "lake commit");
                    self.files.committed = through;
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
        let theirs = self.files.delta()?.app_version(&self.files.app_id)?.unwrap_or(0);
        if theirs <= self.files.committed {
            return Ok(()); // Someone else's commit: ours goes on top.
        }
        tracing::warn!(table = T::NAME, ours = through, theirs, "another writer committed this log's rows");
        self.files.committed = theirs;
        self.drop_committed_rows()
    }

    /// Drops from the finished files every row at or below the committed position (whole files
    /// where all of them are), rewriting the rest under new names.
    fn drop_committed_rows(&mut self) -> Result<(), SinkError> {
        let theirs = self.files.committed;
        let files = std::mem::take(&mut self.sealed);
        // A commit of ours whose answer was lost (it landed, then failed to reply) also shows as
        // a position ahead of ours: its files are the table's now, to keep, not to delete.
        let active: std::collections::HashSet<String> = match self.files.delta() {
            Ok(table) if files.iter().any(|f| f.uploaded) => {
                table.active_files()?.into_iter().map(|f| f.path).collect()
            }
            _ => Default::default(),
        };
        for file in files {
            let path = self.files.file_path(&file.key)?;
            if file.first_lsn > theirs {
                self.sealed.push_back(file);
                continue;
            }
            if active.contains(&file.key.relative()) {
                continue;
            }
            if file.uploaded {
                self.files.delete(&path)?;
            }
            if file.key.label <= theirs {
                continue; // Every row of it is in the table already.
            }
            let batches = read_batches(file.bytes)?;
            let kept = keep_lsn_above(&batches, T::LSN_COLUMN, theirs)?;
            let mut writer = FileWriter::new(&self.files.stats, T::schema(), &self.files.config, Vec::new())?;
            for batch in &kept {
                writer.write(batch)?;
            }
            if let Some((bytes, stats)) = writer.finish()? {
                let key = ObjectKey::new(file.key.partition, self.files.source, file.key.label);
                self.sealed.push_back(Sealed { key, bytes, stats, first_lsn: theirs + 1, uploaded: false });
            }
        }
        self.upload_sealed()
    }
}

impl<T: TableSpec> Sink for LakeTable<T> {
    fn name(&self) -> &'static str {
        T::NAME
    }

    fn accept(&mut self, output: &ShardOutput) {
        let lsn = output.lsn;
        if lsn <= self.files.committed {
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
                    match FileWriter::new(&self.files.stats, T::schema(), &self.files.config, self.buffers.take()) {
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
            return self.files.maintain(&mut self.maintenance, now);
        }
        let mut due = force || self.sealed_bytes() >= self.files.config.target_file_bytes;
        let mut encode_failed = None;
        for file in self.open.values_mut() {
            if let Err(err) = file.encode_pending::<T>() {
                encode_failed.get_or_insert((file.first_lsn, err));
                continue;
            }
            due |= file.writer.encoded_bytes() >= self.files.config.target_file_bytes
                || now.duration_since(file.opened) >= self.files.config.max_file_age;
        }
        if let Some((first_lsn, err)) = encode_failed {
            return Err(self.unheld.record(first_lsn, &err));
        }
        if !due {
            return Ok(());
        }
        self.commit_all()?;
        self.files.maintain(&mut self.maintenance, now)
    }

    /// Erasure and retention: commits what is buffered (so every row is in the table), then
    /// replaces each file the command touches.
    fn command(&mut self, command: &crate::Command) -> Result<(), SinkError> {
        if matches!(command, crate::Command::Publish(_)) {
            return Ok(()); // events are not the lake's
        }
        self.flush(Instant::now(), true)?;
        self.files.redact(command)
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
            None => self.last_fed.max(self.files.committed),
        }
    }

    fn is_full(&self) -> bool {
        // Finished files wait here while the store is away; past this the coordinator waits too.
        self.sealed_bytes() >= self.files.config.target_file_bytes.saturating_mul(2).max(MIN_WAITING_BYTES)
    }
}

impl<T: TableSpec> LakeTable<T> {
    fn sealed_bytes(&self) -> usize {
        self.sealed.iter().map(|s| s.bytes.len()).sum()
    }
}

/// The least a table lets finished files wait in memory before it holds back new outputs.
const MIN_WAITING_BYTES: usize = 64 << 20;

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::cast::AsArray;
    use arrow_schema::Schema;
    use object_store::ObjectStoreExt;
    use trackwire_codec::{BatchData, ControlEvent, ControlKind, Sample, WorkoutId, encode_batch};
    use trackwire_pipeline::ShardCore;

    use super::*;
    use crate::lake::delta::{DeltaTable, NewFile, StatsSpec};
    use crate::lake::schema::WorkoutsTable;
    use crate::lake::{local_store, read_table};
    use crate::{Command, ErasedWorkout, Erasure, ErasureScope};

    const START_MS: i64 = 1_700_000_000_000;

    /// A finished workout of user `u<n>`, as the shard summarises it.
    fn workout(n: u8, lsn: u64) -> ShardOutput {
        let batch = encode_batch(&BatchData {
            device_id: "d".into(),
            user_id: format!("u{n}"),
            workout_id: WorkoutId([n; 16]),
            seq: 0,
            base_time_ms: START_MS,
            samples: (0..10)
                .map(|t| Sample::new(t * 1000, 470_000_000 + t as i32 * 90, 80_000_000, 0, 0, 0, 0, 0, 0))
                .collect(),
            events: vec![ControlEvent::new(0, ControlKind::Start), ControlEvent::new(9_000, ControlKind::Complete)],
            ..BatchData::default()
        });
        let out = ShardCore::default().process(lsn, &batch);
        assert!(out.ended, "the workout ends in its batch");
        out
    }

    #[test]
    fn a_table_from_before_a_column_gains_it_and_its_rows_read_null_there_even_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let lake = local_store(dir.path()).unwrap();
        let url = lake.table_url(WorkoutsTable::NAME);

        // The table as the build before the column made it: its schema without the last column,
        // one file with two workouts (log positions 1 and 2).
        let full = WorkoutsTable::schema();
        let old = Arc::new(Schema::new(full.fields()[..full.fields().len() - 1].to_vec()));
        let rows: Vec<_> = [workout(1, 1), workout(2, 2)].iter().map(|o| o.summary.clone().unwrap()).collect();
        let batch =
            WorkoutsTable::to_batch(&rows).unwrap().project(&(0..old.fields().len()).collect::<Vec<_>>()).unwrap();
        let config = LakeConfig::default();
        let mut writer = FileWriter::new(&StatsSpec::of(&old).unwrap(), old.clone(), &config, Vec::new()).unwrap();
        writer.write(&batch).unwrap();
        let (bytes, stats) = writer.finish().unwrap().unwrap();
        let partition = Partition::of_time_ms(START_MS, false);
        let key = ObjectKey::new(partition, None, 2);
        let path = lake.object(&url.join(&key.relative()).unwrap()).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(lake.store.put(&path, bytes.clone().into())).unwrap();
        let mut table = DeltaTable::open_or_create(lake.store.clone(), url.clone(), false, &old, false).unwrap();
        let add = NewFile { path: key.relative(), partition, size: bytes.len() as u64, stats };
        let changes = Changes {
            add: vec![add],
            transaction: Some(("trackwire/workouts/embedded".into(), 2)),
            ..Changes::default()
        };
        assert!(matches!(table.commit(changes).unwrap(), Commit::Committed { .. }));

        // This build opens it, writes a workout and erases one of the two old ones, which
        // rewrites their file.
        let mut sink = LakeTable::<WorkoutsTable>::open(lake.clone(), config).unwrap();
        sink.accept(&workout(3, 3));
        sink.flush(Instant::now(), true).unwrap();
        let erased =
            ErasedWorkout { workout_id: WorkoutId([1; 16]), start_time_ms: START_MS, end_time_ms: START_MS + 9_000 };
        let erasure =
            Erasure { user_id: "u1".into(), scope: ErasureScope::User, workouts: vec![erased], through_lsn: 3 };
        sink.command(&Command::Erase(erasure)).unwrap();
        drop(sink);

        let log = std::fs::read_dir(dir.path().join("workouts/_delta_log")).unwrap();
        let evolved = log
            .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap_or_default())
            .any(|text| text.contains("\"metaData\"") && text.contains("end_reason"));
        assert!(evolved, "the table's schema has the column");
        let mut reasons = std::collections::BTreeMap::new();
        for batch in read_table(&lake, WorkoutsTable::NAME).unwrap() {
            let ids = batch.column_by_name("workout_id").unwrap().as_string::<i32>().clone();
            let column =
                batch.column_by_name("end_reason").expect("every file has the column").as_string::<i32>().clone();
            for (id, reason) in ids.iter().zip(column.iter()) {
                reasons.insert(id.unwrap().to_owned(), reason.map(str::to_owned));
            }
        }
        let id = |n: u8| WorkoutId([n; 16]).to_string();
        assert_eq!(reasons, [(id(2), None), (id(3), Some("device".to_owned()))].into_iter().collect());
    }
}
