//! The embedded read store (redb): workout summaries the API serves, surviving restarts.
//!
//! Written by [`ReadStoreSink`] in one transaction per flush, together with the LSN it is complete
//! through, so the store and its checkpoint can never disagree.

use std::collections::HashMap;
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use trackwire_codec::WorkoutId;
use trackwire_pipeline::{ShardOutput, WorkoutSummary};

use crate::{Sink, SinkError};

const SUMMARIES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("workout_summaries");
/// Key: start time (descending, order-preserving encoding) ++ workout id. Lists newest first.
const BY_START: TableDefinition<&[u8], ()> = TableDefinition::new("workouts_by_start");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const CHECKPOINT: &str = "checkpoint_lsn";

/// The name this sink reports in metrics and health.
pub const SINK_NAME: &str = "read_store";

/// An opaque position in the newest-first workout list.
pub type Cursor = [u8; 24];

pub struct ReadStore {
    db: Database,
}

fn order_key(summary: &WorkoutSummary) -> Cursor {
    let mut key = [0u8; 24];
    // Flip the sign bit for an order-preserving u64, then invert for newest first.
    let ordered = !((summary.start_time_ms as u64) ^ (1 << 63));
    key[..8].copy_from_slice(&ordered.to_be_bytes());
    key[8..].copy_from_slice(&summary.workout_id.0);
    key
}

impl ReadStore {
    pub fn open(path: &Path) -> Result<Arc<ReadStore>, SinkError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| SinkError::io(format!("creating {}", dir.display()), e))?;
        }
        let db = Database::create(path).map_err(|e| SinkError::Store(format!("opening {}: {e}", path.display())))?;
        let txn = db.begin_write().map_err(SinkError::store)?;
        txn.open_table(SUMMARIES).map_err(SinkError::store)?;
        txn.open_table(BY_START).map_err(SinkError::store)?;
        txn.open_table(META).map_err(SinkError::store)?;
        txn.commit().map_err(SinkError::store)?;
        Ok(Arc::new(ReadStore { db }))
    }

    /// The LSN through which the store is complete.
    pub fn checkpoint(&self) -> Result<u64, SinkError> {
        let txn = self.db.begin_read().map_err(SinkError::store)?;
        let meta = txn.open_table(META).map_err(SinkError::store)?;
        Ok(meta.get(CHECKPOINT).map_err(SinkError::store)?.map_or(0, |v| v.value()))
    }

    pub fn get(&self, id: &WorkoutId) -> Result<Option<WorkoutSummary>, SinkError> {
        let txn = self.db.begin_read().map_err(SinkError::store)?;
        let table = txn.open_table(SUMMARIES).map_err(SinkError::store)?;
        match table.get(&id.0[..]).map_err(SinkError::store)? {
            Some(v) => Ok(Some(serde_json::from_slice(v.value()).map_err(SinkError::store)?)),
            None => Ok(None),
        }
    }

    /// Up to `limit` workouts, newest first, after `cursor`; and the cursor of the next page.
    pub fn list(
        &self,
        after: Option<Cursor>,
        limit: usize,
    ) -> Result<(Vec<WorkoutSummary>, Option<Cursor>), SinkError> {
        let txn = self.db.begin_read().map_err(SinkError::store)?;
        let index = txn.open_table(BY_START).map_err(SinkError::store)?;
        let table = txn.open_table(SUMMARIES).map_err(SinkError::store)?;
        let lower = match &after {
            Some(c) => Bound::Excluded(&c[..]),
            None => Bound::Unbounded,
        };
        let mut out = Vec::new();
        let mut last = None;
        for entry in index.range::<&[u8]>((lower, Bound::Unbounded)).map_err(SinkError::store)? {
            let (key, _) = entry.map_err(SinkError::store)?;
            if out.len() == limit {
                return Ok((out, last));
            }
            let key: Cursor = key.value().try_into().map_err(SinkError::store)?;
            if let Some(v) = table.get(&key[8..]).map_err(SinkError::store)? {
                out.push(serde_json::from_slice(v.value()).map_err(SinkError::store)?);
            }
            last = Some(key);
        }
        Ok((out, None))
    }

    fn apply(&self, summaries: impl Iterator<Item = WorkoutSummary>, through: u64) -> Result<(), SinkError> {
        let txn = self.db.begin_write().map_err(SinkError::store)?;
        {
            let mut table = txn.open_table(SUMMARIES).map_err(SinkError::store)?;
            let mut index = txn.open_table(BY_START).map_err(SinkError::store)?;
            for summary in summaries {
                let id = &summary.workout_id.0[..];
                let previous: Option<WorkoutSummary> =
                    table.get(id).map_err(SinkError::store)?.and_then(|v| serde_json::from_slice(v.value()).ok());
                if let Some(previous) = previous {
                    index.remove(&order_key(&previous)[..]).map_err(SinkError::store)?;
                }
                let json = serde_json::to_vec(&summary).map_err(SinkError::store)?;
                table.insert(id, &json[..]).map_err(SinkError::store)?;
                index.insert(&order_key(&summary)[..], ()).map_err(SinkError::store)?;
            }
            let mut meta = txn.open_table(META).map_err(SinkError::store)?;
            meta.insert(CHECKPOINT, through).map_err(SinkError::store)?;
        }
        txn.commit().map_err(SinkError::store)
    }
}

/// Keeps the read store current: the latest summary of each workout, committed per flush.
pub struct ReadStoreSink {
    store: Arc<ReadStore>,
    pending: HashMap<WorkoutId, WorkoutSummary>,
    committed: u64,
    last_fed: u64,
}

impl ReadStoreSink {
    pub fn new(store: Arc<ReadStore>) -> Result<Self, SinkError> {
        let committed = store.checkpoint()?;
        Ok(ReadStoreSink { store, pending: HashMap::new(), committed, last_fed: committed })
    }
}

impl Sink for ReadStoreSink {
    fn name(&self) -> &'static str {
        SINK_NAME
    }

    fn accept(&mut self, output: &ShardOutput) -> Result<(), SinkError> {
        if output.lsn <= self.committed {
            return Ok(());
        }
        self.last_fed = output.lsn;
        if let Some(summary) = &output.summary {
            self.pending.insert(summary.workout_id, summary.clone());
        }
        Ok(())
    }

    fn flush(&mut self, _now: Instant, _force: bool) -> Result<(), SinkError> {
        if self.last_fed == self.committed {
            return Ok(());
        }
        self.store.apply(self.pending.values().cloned(), self.last_fed)?;
        self.pending.clear();
        self.committed = self.last_fed;
        Ok(())
    }

    fn checkpoint(&self) -> u64 {
        self.committed
    }
}
