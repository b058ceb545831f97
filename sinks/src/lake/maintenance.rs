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
use super::delta::{Changes, Commit};
use super::files::{FileWriter, read_batches};
use super::paths::{ObjectKey, Partition};
use super::spec::TableSpec;
use crate::SinkError;

/// Bounds of how often a table looks for a partition to compact (each look reads the log's file
/// list): as often as files are committed by age, within these.
const COMPACTION_EVERY_AT_LEAST: Duration = Duration::from_secs(1);
const COMPACTION_EVERY_AT_MOST: Duration = Duration::from_secs(60);

/// The least time between two full vacuums (each lists every object of the table).
const VACUUM_EVERY_AT_LEAST: Duration = Duration::from_secs(5);

#[derive(Default)]
pub(crate) struct Maintenance {
    last_compaction: Option<Instant>,
    last_vacuum: Option<Instant>,
}

impl<T: TableSpec> TableAccess<T> {
    /// Runs what upkeep is due: compaction of at most one partition, then a vacuum.
    pub(super) fn maintain(&mut self, schedule: &mut Maintenance, now: Instant) -> Result<(), SinkError> {
        let every = self.config.max_file_age.clamp(COMPACTION_EVERY_AT_LEAST, COMPACTION_EVERY_AT_MOST);
        if schedule.last_compaction.is_none_or(|t| now.duration_since(t) >= every) {
            schedule.last_compaction = Some(now);
            self.compact_one()?;
        }
        let every = (self.config.vacuum_retention / 2).max(VACUUM_EVERY_AT_LEAST);
        if schedule.last_vacuum.is_none_or(|t| now.duration_since(t) >= every) {
            schedule.last_vacuum = Some(now);
            self.vacuum(None)?;
        }
        Ok(())
    }

    /// Merges the small files of the first partition that has more than `compact_above_files`
    /// of them. Returns whether it committed a compaction.
    pub fn compact_one(&mut self) -> Result<bool, SinkError> {
        self.reach_table()?;
        let target = self.config.target_file_bytes as u64;
        let limit = self.config.compact_above_files.max(1);
        let candidate = self.own_files()?.into_iter().find_map(|(partition, files)| {
            let small: Vec<_> = files.into_iter().filter(|(file, _)| file.size < target).collect();
            (small.len() > limit).then_some((partition, small))
        });
        let Some((partition, files)) = candidate else { return Ok(false) };
        let label = files.iter().map(|(_, key)| key.label).max().unwrap_or(0);
        let mut written: Vec<(ObjectKey, usize, arrow_array::StructArray)> = Vec::new();
        let mut writer = FileWriter::new(&self.stats, T::schema(), &self.config, Vec::new())?;
        for (_, key) in &files {
            for batch in read_batches(self.get(&self.file_path(key)?)?)? {
                writer.write(&batch)?;
                if writer.encoded_bytes() as u64 >= target {
                    let full = std::mem::replace(
                        &mut writer,
                        FileWriter::new(&self.stats, T::schema(), &self.config, Vec::new())?,
                    );
                    self.put_new(full, partition, label, &mut written)?;
                }
            }
        }
        self.put_new(writer, partition, label, &mut written)?;
        let changes = Changes {
            add: written.iter().map(|(key, size, stats)| self.new_file(key, *size, stats.clone())).collect(),
            remove: files.iter().map(|(file, _)| file.path.clone()).collect(),
            rewrite_only: true,
            transaction: None,
        };
        match self.reach_table()?.commit(changes)? {
            Commit::Committed { version } => {
                tracing::info!(table = T::NAME, %partition, version, merged = files.len(), into = written.len(), "lake partition compacted");
                Ok(true)
            }
            Commit::Conflict | Commit::Stale => {
                // Someone changed the table meanwhile: drop this attempt, the next look decides again.
                for (key, _, _) in &written {
                    self.delete(&self.file_path(key)?)?;
                }
                Ok(false)
            }
        }
    }

    fn put_new(
        &self,
        writer: FileWriter,
        partition: Partition,
        label: u64,
        written: &mut Vec<(ObjectKey, usize, arrow_array::StructArray)>,
    ) -> Result<(), SinkError> {
        if let Some((bytes, stats)) = writer.finish()? {
            let key = ObjectKey::new(partition, self.source, label);
            let size = bytes.len();
            self.put(&self.file_path(&key)?, bytes)?;
            written.push((key, size, stats));
        }
        Ok(())
    }

    /// Deletes this source's files that no current version of the table names: with `only`, at
    /// once in the partitions it accepts (an erasure: no file there may still hold what was
    /// erased); otherwise once they are older than `vacuum_retention` (files compaction replaced,
    /// and uploads a crash left uncommitted). Returns how many it deleted.
    pub fn vacuum(&mut self, only: Option<&dyn Fn(&Partition) -> bool>) -> Result<usize, SinkError> {
        self.reach_table()?;
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
