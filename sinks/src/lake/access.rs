//! How a lake table reaches its storage and its Delta log: the table (opened or created on
//! first use), this source's position in it, and its files as objects. Shared by the sink, its
//! compaction and vacuum, and its erasure rewrites.

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arrow_array::StructArray;
use bytes::Bytes;
use object_store::ObjectStoreExt;
use object_store::path::Path;

use super::delta::{ActiveFile, DeltaTable, NewFile, StatsSpec};
use super::files::{FileWriter, MULTIPART_PART_BYTES, upload};
use super::paths::{ObjectKey, Partition};
use super::spec::{LakeConfig, TableSpec};
use super::store::LakeLocation;
use super::streamed::StreamedUpload;
use crate::SinkError;

/// What the sink and its settler take turns at. Both write to the same source's files, so a
/// vacuum (which deletes this source's files no version names) must not run while a merge has
/// uploaded files it has not committed yet, nor an erasure's rewrite race a merge of the same
/// files. Merges, vacuums and rewrites hold `turn`; the sink's appends never wait for it.
#[derive(Default)]
pub(crate) struct Exclusive {
    turn: std::sync::Mutex<()>,
    /// Set while the sink waits for its turn: a merge under way gives up at its next batch.
    wanted: AtomicBool,
}

impl Exclusive {
    /// The settler's turn: waits quietly for the sink to finish what it does.
    pub(crate) fn take_quietly(&self) -> std::sync::MutexGuard<'_, ()> {
        self.turn.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The sink's turn: waits, asking a merge under way to give it up.
    pub(crate) fn take(&self) -> std::sync::MutexGuard<'_, ()> {
        self.wanted.store(true, Ordering::Release);
        let turn = self.turn.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.wanted.store(false, Ordering::Release);
        turn
    }

    /// The turn if nobody holds it (the sink's routine upkeep skips a round rather than wait).
    pub(crate) fn try_take(&self) -> Option<std::sync::MutexGuard<'_, ()>> {
        match self.turn.try_lock() {
            Ok(turn) => Some(turn),
            Err(std::sync::TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    /// Whether the sink is waiting: a merge should give up its turn.
    pub(crate) fn is_wanted(&self) -> bool {
        self.wanted.load(Ordering::Acquire)
    }
}

pub(crate) struct TableAccess<T: TableSpec> {
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
    /// The Delta application id this source's commits carry.
    pub(super) app_id: String,
    /// The LSN through which this source's rows are in the table (as far as it knows).
    pub(super) committed: u64,
    /// Set when the owner stops: a long merge gives up at its next batch.
    pub(super) stop: Arc<AtomicBool>,
    /// Shared by the sink and its settler (see [`Exclusive`]).
    pub(super) exclusive: Arc<Exclusive>,
    _table: PhantomData<T>,
}

impl<T: TableSpec> TableAccess<T> {
    pub(crate) fn new(location: LakeLocation, config: LakeConfig, source: Option<u32>) -> Result<Self, SinkError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| SinkError::io("starting the object store runtime", e))?;
        let url = location.table_url(T::NAME);
        let app_id = match source {
            None => format!("trackwire/{}/embedded", T::NAME),
            Some(p) => format!("trackwire/{}/raw-{p}", T::NAME),
        };
        Ok(TableAccess {
            location,
            url,
            table: None,
            stats: StatsSpec::of(&T::schema())?,
            runtime,
            config,
            source,
            app_id,
            committed: 0,
            stop: Arc::default(),
            exclusive: Arc::default(),
            _table: PhantomData,
        })
    }

    /// The same access for a settler: giving up long merges once `stop` is set, and taking
    /// turns with the sink through `exclusive`.
    pub(crate) fn settler_of(mut self, stop: Arc<AtomicBool>, exclusive: Arc<Exclusive>) -> Self {
        self.stop = stop;
        self.exclusive = exclusive;
        self
    }

    /// Opens (or creates) the Delta table if not done yet, and learns this source's position.
    pub(crate) fn reach_table(&mut self) -> Result<&mut DeltaTable, SinkError> {
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
    pub(crate) fn delta(&self) -> Result<&DeltaTable, SinkError> {
        self.table.as_ref().ok_or_else(|| SinkError::Config(format!("lake table {} is not reachable yet", T::NAME)))
    }

    /// The Delta table's current version (0 before it was reached).
    pub(crate) fn version(&self) -> u64 {
        self.table.as_ref().map_or(0, DeltaTable::version)
    }

    pub(crate) fn new_file(&self, key: &ObjectKey, size: usize, stats: StructArray) -> NewFile {
        NewFile { path: key.relative(), partition: key.partition, size: size as u64, stats }
    }

    /// A new file `key`, written straight to storage as it is encoded (merges and rewrites).
    pub(crate) fn streamed_file(&self, key: &ObjectKey) -> Result<FileWriter<StreamedUpload<'_>>, SinkError> {
        let upload =
            StreamedUpload::new(&self.runtime, self.location.store.clone(), self.file_path(key)?, MULTIPART_PART_BYTES);
        FileWriter::to(&self.stats, T::schema(), &self.config, upload)
    }

    /// Completes a file from [`Self::streamed_file`]: its size and statistics, None when it got
    /// no rows (then nothing was stored).
    pub(crate) fn finish_streamed(
        writer: FileWriter<StreamedUpload<'_>>,
    ) -> Result<Option<(u64, StructArray)>, SinkError> {
        let Some((upload, stats)) = writer.finish_into()? else { return Ok(None) };
        let size = upload.finish().map_err(|e| SinkError::io("uploading a lake file", e))?;
        Ok(Some((size, stats)))
    }

    /// The object of a file of this table.
    pub(crate) fn file_path(&self, key: &ObjectKey) -> Result<Path, SinkError> {
        self.relative_path(&key.relative())
    }

    pub(crate) fn relative_path(&self, relative: &str) -> Result<Path, SinkError> {
        let url = self.url.join(relative).map_err(|e| SinkError::Config(format!("lake file {relative}: {e}")))?;
        self.location.object(&url)
    }

    pub(crate) fn put(&self, path: &Path, bytes: Bytes) -> Result<(), SinkError> {
        let upload = upload(self.location.store.as_ref(), path, bytes, self.config.multipart_threshold_bytes);
        self.runtime.block_on(upload).map_err(|(operation, source)| SinkError::ObjectStore {
            operation,
            path: path.to_string(),
            source,
        })
    }

    pub(crate) fn get(&self, path: &Path) -> Result<Bytes, SinkError> {
        self.runtime
            .block_on(async { self.location.store.get(path).await?.bytes().await })
            .map_err(|source| SinkError::ObjectStore { operation: "get", path: path.to_string(), source })
    }

    pub(crate) fn delete(&self, path: &Path) -> Result<(), SinkError> {
        match self.runtime.block_on(self.location.store.delete(path)) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(source) => Err(SinkError::ObjectStore { operation: "delete", path: path.to_string(), source }),
        }
    }

    /// This source's active files, by partition, in the order they were written.
    pub(crate) fn own_files(&self) -> Result<BTreeMap<Partition, Vec<(ActiveFile, ObjectKey)>>, SinkError> {
        let mut out: BTreeMap<Partition, Vec<(ActiveFile, ObjectKey)>> = BTreeMap::new();
        for file in self.delta()?.active_files()? {
            if let Some(key) = ObjectKey::parse(&file.path).filter(|key| key.source == self.source) {
                out.entry(key.partition).or_default().push((file, key));
            }
        }
        for files in out.values_mut() {
            files.sort_by_key(|(_, key)| key.label);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::Exclusive;

    /// Waits (up to a minute) until `check` holds.
    fn eventually(check: impl Fn() -> bool) -> bool {
        for _ in 0..6000 {
            if check() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    #[test]
    fn only_the_sink_waiting_makes_a_merge_give_way() {
        let exclusive = Arc::new(Exclusive::default());
        let held = exclusive.try_take().unwrap(); // the sink's own compaction, say
        let settler = {
            let exclusive = exclusive.clone();
            std::thread::spawn(move || drop(exclusive.take_quietly()))
        };
        std::thread::sleep(Duration::from_millis(50));
        assert!(!exclusive.is_wanted(), "a waiting settler does not interrupt the sink's merge");
        drop(held);
        settler.join().unwrap();

        let held = exclusive.take_quietly(); // the settler merging
        let sink = {
            let exclusive = exclusive.clone();
            std::thread::spawn(move || drop(exclusive.take()))
        };
        assert!(eventually(|| exclusive.is_wanted()), "a waiting sink asks the merge to give way");
        drop(held);
        sink.join().unwrap();
        assert!(!exclusive.is_wanted(), "and stops asking once it has its turn");
    }
}
