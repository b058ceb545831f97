//! Upkeep of a lake table: compaction merges a partition's small files into files of the target
//! size (a commit that changes no rows), and vacuum deletes files no version needs any more.
//!
//! Each source maintains only the files it wrote (their names carry the source), so workers of
//! a scale-out deployment never compete for the same files; the Delta log's put-if-absent
//! commits and the stale-file check settle any race that remains.

use std::time::{Duration, Instant};

use futures::StreamExt;
use object_store::path::Path;

use super::access::TableAccess;
use super::delta::ActiveFile;
use super::delta::{Changes, Commit};
use super::files::{FileWriter, batches_of};
use super::paths::{ObjectKey, Partition};
use super::spec::TableSpec;
use super::streamed::StreamedUpload;
use crate::SinkError;

/// Settled merges take files up to this fraction of the settled target size: a merge holds one
/// input file's bytes at a time (256 MiB at the default 1 GiB target).
const SETTLED_INPUT_FRACTION: u64 = 4;

/// Commits of one merge tried while other writers keep taking the next version first.
const MERGE_COMMIT_ATTEMPTS: usize = 8;

/// The least time between two full vacuums (each lists every object of the table).
const VACUUM_EVERY_AT_LEAST: Duration = Duration::from_secs(5);

/// The sink's own upkeep: when vacuum last ran. Merges are never the sink's: a merge of a busy
/// hour's small files takes seconds, and on the sink's thread it held back every output behind
/// it, and through the shards' full queues every ack (see [`super::settler`]).
#[derive(Default)]
pub(crate) struct Maintenance {
    last_vacuum: Option<Instant>,
}

impl<T: TableSpec> TableAccess<T> {
    /// Runs a vacuum if one is due. Skipped while the settler merges (it holds the turn): the
    /// next flush looks again.
    pub(super) fn maintain(&mut self, schedule: &mut Maintenance, now: Instant) -> Result<(), SinkError> {
        let exclusive = self.exclusive.clone();
        let Some(_turn) = exclusive.try_take() else { return Ok(()) };
        let every = (self.config.vacuum_retention / 2).max(VACUUM_EVERY_AT_LEAST);
        if schedule.last_vacuum.is_none_or(|t| now.duration_since(t) >= every) {
            schedule.last_vacuum = Some(now);
            self.vacuum(None)?;
        }
        Ok(())
    }

    /// Merges the small files of the first partition that has more than `compact_above_files`
    /// of them. Returns whether it committed a compaction.
    ///
    /// A file of three quarters of the target size or more is done, not small: a merge rolls its
    /// output when the writer's estimate reaches the target, and the finished file comes out a
    /// little under it. Counted as small, merged files were merged again at every look, and a
    /// busy hour was rewritten whole every minute.
    /// Takes the turn quietly (see [`super::access::Exclusive`]): the sink's erasures and
    /// vacuums come first.
    pub(super) fn compact_one(&mut self) -> Result<bool, SinkError> {
        let exclusive = self.exclusive.clone();
        let _turn = exclusive.take_quietly();
        self.reach_table()?.refresh()?;
        let target = self.config.target_file_bytes as u64;
        let limit = self.config.compact_above_files.max(1);
        let candidate = self.own_files()?.into_iter().find_map(|(partition, files)| {
            let small: Vec<_> = files.into_iter().filter(|(file, _)| file.size < target * 3 / 4).collect();
            (small.len() > limit && fewer_after_merging(&small, target)).then_some((partition, small))
        });
        let Some((partition, files)) = candidate else { return Ok(false) };
        self.merge(partition, files, target, "small files")
    }

    /// Merges the files of the first settled partition (none of its files committed in the last
    /// `settled_after`: its hour is over, no live workout writes to it) that holds more than
    /// `compact_above_files` files, into files of `settled_target_file_bytes`. Files larger than
    /// a quarter of that (earlier merges' output) stay as they are, which bounds the memory of a
    /// merge; nothing is merged unless it leaves fewer files. `now_ms` is the
    /// wall clock (Unix ms), compared with the commits' times. Returns whether it committed.
    pub fn settle_one(&mut self, now_ms: i64) -> Result<bool, SinkError> {
        let exclusive = self.exclusive.clone();
        let _turn = exclusive.take_quietly();
        self.reach_table()?.refresh()?;
        let quiet_since =
            now_ms.saturating_sub(i64::try_from(self.config.settled_after.as_millis()).unwrap_or(i64::MAX));
        let target = self.config.settled_target_file_bytes.max(self.config.target_file_bytes) as u64;
        let limit = self.config.compact_above_files.max(1);
        let candidate = self.own_files()?.into_iter().find_map(|(partition, files)| {
            let settled = files.iter().all(|(file, _)| file.modified_ms < quiet_since);
            if !settled || files.len() <= limit {
                return None;
            }
            // A merge holds one input file in memory at a time: larger ones stay as they are.
            let most = target / SETTLED_INPUT_FRACTION;
            let merged: Vec<_> = files.into_iter().filter(|(file, _)| file.size < most).collect();
            fewer_after_merging(&merged, target).then_some((partition, merged))
        });
        let Some((partition, files)) = candidate else { return Ok(false) };
        self.merge(partition, files, target, "settled")
    }

    /// Rewrites `files` of `partition` into files of about `target` bytes, each streamed to
    /// storage as it is encoded, and commits the swap as a change of no rows. Memory: one input
    /// file's bytes, one decoded batch, one row group and a few upload parts. Returns false when
    /// another writer replaced some of the files first (the merge is dropped).
    fn merge(
        &mut self,
        partition: Partition,
        files: Vec<(ActiveFile, ObjectKey)>,
        target: u64,
        why: &'static str,
    ) -> Result<bool, SinkError> {
        let label = files.iter().map(|(_, key)| key.label).max().unwrap_or(0);
        let mut written: Vec<(ObjectKey, u64, arrow_array::StructArray)> = Vec::new();
        let result = (|| -> Result<(), SinkError> {
            let mut output: Option<(ObjectKey, FileWriter<StreamedUpload<'_>>)> = None;
            for (_, key) in &files {
                for batch in batches_of(self.get(&self.file_path(key)?)?)? {
                    let batch = batch?;
                    if self.stop.load(std::sync::atomic::Ordering::Acquire) {
                        return Err(SinkError::Config(format!("{}: merge stopped: the process is stopping", T::NAME)));
                    }
                    if self.exclusive.is_wanted() {
                        return Err(SinkError::Config(format!(
                            "{}: merge gave way to the sink; retried later",
                            T::NAME
                        )));
                    }
                    let (_, writer) = match &mut output {
                        Some(open) => open,
                        None => {
                            let key = ObjectKey::new(partition, self.source, label);
                            let writer = self.streamed_file(&key)?;
                            output.insert((key, writer))
                        }
                    };
                    writer.write(&batch)?;
                    if writer.encoded_bytes() as u64 >= target
                        && let Some((key, full)) = output.take()
                    {
                        written.extend(Self::finish_streamed(full)?.map(|(size, stats)| (key, size, stats)));
                    }
                }
            }
            if let Some((key, last)) = output.take() {
                written.extend(Self::finish_streamed(last)?.map(|(size, stats)| (key, size, stats)));
            }
            Ok(())
        })();
        if let Err(err) = result {
            self.delete_written(&written);
            return Err(err);
        }
        // Another writer's commit meanwhile (the sink's appends) conflicts only by taking the
        // version: the merge is committed on top of it. Files replaced meanwhile (Stale: an
        // erasure, another merge) void it.
        for _ in 0..MERGE_COMMIT_ATTEMPTS {
            let changes = Changes {
                add: written
                    .iter()
                    .map(|(key, size, stats)| self.new_file(key, *size as usize, stats.clone()))
                    .collect(),
                remove: files.iter().map(|(file, _)| file.path.clone()).collect(),
                rewrite_only: true,
                transaction: None,
            };
            match self.reach_table()?.commit(changes) {
                Ok(Commit::Committed { version }) => {
                    tracing::info!(table = T::NAME, %partition, version, why, merged = files.len(), into = written.len(), "lake partition compacted");
                    return Ok(true);
                }
                Ok(Commit::Conflict) => continue,
                Ok(Commit::Stale) => break,
                // The commit may have landed without an answer: its files stay (vacuum removes them if not).
                Err(err) => return Err(err),
            }
        }
        self.delete_written(&written);
        Ok(false)
    }

    /// Deletes files written for a merge that will not be committed (vacuum would, later).
    fn delete_written(&self, written: &[(ObjectKey, u64, arrow_array::StructArray)]) {
        for (key, _, _) in written {
            if let Err(err) = self.file_path(key).and_then(|path| self.delete(&path)) {
                tracing::warn!(table = T::NAME, error = %err, "deleting an uncommitted compaction file failed; vacuum retries");
            }
        }
    }

    /// Deletes this source's files that no current version of the table names: with `only`, at
    /// once in the partitions it accepts (an erasure: no file there may still hold what was
    /// erased); otherwise once they are older than `vacuum_retention` (files compaction replaced,
    /// and uploads a crash left uncommitted). Returns how many it deleted.
    ///
    /// The caller holds the turn: no merge has files uploaded but not committed meanwhile. The
    /// table is re-read first, so files the settler committed since this handle's last commit
    /// count as named.
    pub(super) fn vacuum(&mut self, only: Option<&dyn Fn(&Partition) -> bool>) -> Result<usize, SinkError> {
        self.reach_table()?.refresh()?;
        let active: std::collections::HashSet<String> =
            self.delta()?.active_files()?.into_iter().map(|file| file.path).collect();
        let root = self.location.object(&self.url)?;
        let listed: Vec<_> = self.runtime.block_on(self.location.store.list(Some(&root)).collect());
        let retention = chrono::Duration::from_std(self.config.vacuum_retention).unwrap_or(chrono::Duration::MAX);
        let cutoff = chrono::Utc::now() - retention;
        let mut doomed: Vec<Path> = Vec::new();
        for meta in listed {
            let meta =
                meta.map_err(|source| SinkError::ObjectStore { operation: "list", path: root.to_string(), source })?;
            let Some(relative) = meta
                .location
                .prefix_match(&root)
                .map(|parts| parts.map(|p| p.as_ref().to_string()).collect::<Vec<_>>().join("/"))
            else {
                continue;
            };
            // Files of the log-less layout (no unique part) were never this table's to delete.
            let Some(key) = ObjectKey::parse(&relative).filter(|key| key.source == self.source && key.unique.is_some())
            else {
                continue;
            };
            if active.contains(&relative) {
                continue;
            }
            let due = match only {
                Some(partitions) => partitions(&key.partition),
                None => meta.last_modified < cutoff,
            };
            if due {
                doomed.push(meta.location);
            }
        }
        for path in &doomed {
            self.delete(path)?;
        }
        if !doomed.is_empty() {
            tracing::info!(table = T::NAME, files = doomed.len(), "lake files vacuumed");
        }
        Ok(doomed.len())
    }
}

/// Whether merging `files` into files of `target` bytes leaves fewer of them (merged files come
/// out about as large as their inputs together): what keeps any merge from repeating itself.
fn fewer_after_merging(files: &[(ActiveFile, ObjectKey)], target: u64) -> bool {
    let bytes: u64 = files.iter().map(|(file, _)| file.size).sum();
    bytes.div_ceil(target.max(1)) < files.len() as u64
}
