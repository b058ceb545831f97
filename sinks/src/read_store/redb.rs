//! The embedded backend: one redb file, no server. Keys are laid out so that a user's workouts
//! are one range scan, newest first.

use std::collections::HashSet;
use std::ops::Bound;
use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use trackwire_codec::WorkoutId;
use trackwire_pipeline::{AthleteProfile, WorkoutSummary};

use super::{
    BestEfforts, Chunk, Cursor, ListQuery, LogCommandRecord, NewChange, ReadStore, StreamChunk, Streams, WorkoutChange,
    assemble, best_efforts, cursor_of, newest_first, start_of,
};
use crate::SinkError;

const SUMMARIES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("workout_summaries");
/// Key: [`user_key`] ++ [`order_key`]: one user's workouts, newest first.
const BY_USER: TableDefinition<&[u8], ()> = TableDefinition::new("workouts_by_user");
/// Key: workout id ++ LSN (big-endian) of the chunk's newest record: a workout's [`Chunk`]s in
/// log order.
const STREAMS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("workout_streams");
const EFFORTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("workout_best_efforts");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const PROFILES: TableDefinition<&str, &[u8]> = TableDefinition::new("athlete_profiles");
/// Key: (log, LSN) → (command, user id or "", done).
const LOG_COMMANDS: TableDefinition<(&str, u64), (&str, &str, bool)> = TableDefinition::new("log_commands");
/// seq → [`NewChange`] (JSON): the change feed.
const CHANGES: TableDefinition<u64, &[u8]> = TableDefinition::new("workout_changes");
/// Key in [`META`]: the last `seq` the feed gave (trimming keeps it: a seq is never reused).
const LAST_CHANGE_SEQ: &str = "last_change_seq";
/// Key `checkpoint_lsn/<log>`: the LSN of that log through which the store is complete.
const CHECKPOINT_PREFIX: &str = "checkpoint_lsn/";

/// The embedded read store.
pub struct RedbStore {
    db: Database,
}

/// Length-prefixed, so no user id is a prefix of another's key range.
fn user_key(user_id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(4 + user_id.len() + 24);
    key.extend_from_slice(&(user_id.len() as u32).to_be_bytes());
    key.extend_from_slice(user_id.as_bytes());
    key
}

fn stream_key(id: &WorkoutId, lsn: u64) -> [u8; 24] {
    let mut key = [0u8; 24];
    key[..16].copy_from_slice(&id.0);
    key[16..].copy_from_slice(&lsn.to_be_bytes());
    key
}

/// redb's page cache. Its default, 1 GiB, filled up under offline uploads (every record's stream
/// chunk passes through it) and was never given back: the gateway stayed near 2 GiB after the
/// load had ended. The API's reads are a workout's summary and streams; the kernel's page cache
/// keeps the file's recent pages anyway.
const CACHE_BYTES: usize = 64 << 20;

fn decode_summary(bytes: &[u8]) -> Result<WorkoutSummary, SinkError> {
    serde_json::from_slice(bytes).map_err(SinkError::store)
}

impl RedbStore {
    pub fn open(path: &Path) -> Result<RedbStore, SinkError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| SinkError::io(format!("creating {}", dir.display()), e))?;
        }
        let db = redb::Builder::new()
            .set_cache_size(CACHE_BYTES)
            .create(path)
            .map_err(|e| SinkError::Store(format!("opening {}: {e}", path.display())))?;
        let txn = db.begin_write().map_err(SinkError::store)?;
        txn.open_table(SUMMARIES).map_err(SinkError::store)?;
        txn.open_table(BY_USER).map_err(SinkError::store)?;
        txn.open_table(STREAMS).map_err(SinkError::store)?;
        txn.open_table(EFFORTS).map_err(SinkError::store)?;
        txn.open_table(META).map_err(SinkError::store)?;
        txn.open_table(PROFILES).map_err(SinkError::store)?;
        txn.open_table(LOG_COMMANDS).map_err(SinkError::store)?;
        txn.open_table(CHANGES).map_err(SinkError::store)?;
        txn.commit().map_err(SinkError::store)?;
        Ok(RedbStore { db })
    }
}

impl ReadStore for RedbStore {
    fn checkpoint(&self, log: &str) -> Result<u64, SinkError> {
        let txn = self.db.begin_read().map_err(SinkError::store)?;
        let meta = txn.open_table(META).map_err(SinkError::store)?;
        let key = format!("{CHECKPOINT_PREFIX}{log}");
        Ok(meta.get(key.as_str()).map_err(SinkError::store)?.map_or(0, |v| v.value()))
    }

    fn set_checkpoint(&self, name: &str, through: u64) -> Result<(), SinkError> {
        let txn = self.db.begin_write().map_err(SinkError::store)?;
        let key = format!("{CHECKPOINT_PREFIX}{name}");
        txn.open_table(META).map_err(SinkError::store)?.insert(key.as_str(), through).map_err(SinkError::store)?;
        commit(txn)
    }

    fn get(&self, id: &WorkoutId) -> Result<Option<WorkoutSummary>, SinkError> {
        let txn = self.db.begin_read().map_err(SinkError::store)?;
        let table = txn.open_table(SUMMARIES).map_err(SinkError::store)?;
        match table.get(&id.0[..]).map_err(SinkError::store)? {
            Some(v) => Ok(Some(decode_summary(v.value())?)),
            None => Ok(None),
        }
    }

    /// Up to `query.limit` of the user's workouts, newest first, after the cursor; and the cursor
    /// of the next page (None on the last).
    fn list(&self, user_id: &str, query: &ListQuery) -> Result<(Vec<WorkoutSummary>, Option<Cursor>), SinkError> {
        let txn = self.db.begin_read().map_err(SinkError::store)?;
        let index = txn.open_table(BY_USER).map_err(SinkError::store)?;
        let table = txn.open_table(SUMMARIES).map_err(SinkError::store)?;
        let prefix = user_key(user_id);
        let mut lower = prefix.clone();
        match (&query.after, query.start_before_ms) {
            (Some(cursor), _) => lower.extend_from_slice(cursor),
            // Newest first: "started before T" begins at the key of time T − 1 ms.
            (None, Some(before)) => lower.extend_from_slice(&newest_first(before.saturating_sub(1))),
            (None, None) => {}
        }
        let mut upper = prefix.clone();
        upper.extend_from_slice(&[0xff; 25]);
        let lower_bound = if query.after.is_some() { Bound::Excluded(&lower[..]) } else { Bound::Included(&lower[..]) };
        let mut out = Vec::new();
        let mut last = None;
        for entry in index.range::<&[u8]>((lower_bound, Bound::Included(&upper[..]))).map_err(SinkError::store)? {
            let (key, _) = entry.map_err(SinkError::store)?;
            let key = key.value();
            let Some(cursor) = key.get(prefix.len()..).and_then(|c| Cursor::try_from(c).ok()) else { continue };
            let start = start_of(&cursor);
            if query.start_from_ms.is_some_and(|from| start < from) {
                return Ok((out, None)); // older than the range: nothing further qualifies
            }
            if query.start_before_ms.is_some_and(|before| start >= before) {
                continue;
            }
            let Some(v) = table.get(&cursor[8..]).map_err(SinkError::store)? else { continue };
            let summary = decode_summary(v.value())?;
            if query.sport.as_deref().is_some_and(|s| s != summary.sport) {
                continue;
            }
            if out.len() == query.limit {
                return Ok((out, last)); // one more qualifies: there is a next page
            }
            last = Some(cursor);
            out.push(summary);
        }
        Ok((out, None))
    }

    /// The workout's streams, all its chunks in log order (empty when it has no samples).
    fn streams(&self, id: &WorkoutId) -> Result<Streams, SinkError> {
        let txn = self.db.begin_read().map_err(SinkError::store)?;
        let table = txn.open_table(STREAMS).map_err(SinkError::store)?;
        read_streams(&table, id)
    }

    /// The newest chunk of the workout's streams (the live endpoint's latest sample).
    fn last_chunk(&self, id: &WorkoutId) -> Result<Option<Streams>, SinkError> {
        let txn = self.db.begin_read().map_err(SinkError::store)?;
        let table = txn.open_table(STREAMS).map_err(SinkError::store)?;
        let (from, to) = (stream_key(id, 0), stream_key(id, u64::MAX));
        match table.range::<&[u8]>(&from[..]..=&to[..]).map_err(SinkError::store)?.next_back() {
            Some(entry) => {
                let (key, value) = entry.map_err(SinkError::store)?;
                Ok(Some(decode_chunk(key.value(), value.value())?.streams))
            }
            None => Ok(None),
        }
    }

    fn best_efforts(&self, id: &WorkoutId) -> Result<Option<BestEfforts>, SinkError> {
        let txn = self.db.begin_read().map_err(SinkError::store)?;
        let table = txn.open_table(EFFORTS).map_err(SinkError::store)?;
        match table.get(&id.0[..]).map_err(SinkError::store)? {
            Some(v) => Ok(Some(serde_json::from_slice(v.value()).map_err(SinkError::store)?)),
            None => Ok(None),
        }
    }

    fn apply(
        &self,
        log: &str,
        summaries: &[WorkoutSummary],
        chunks: &[StreamChunk],
        through: u64,
    ) -> Result<(), SinkError> {
        let txn = self.db.begin_write().map_err(SinkError::store)?;
        {
            let mut streams = txn.open_table(STREAMS).map_err(SinkError::store)?;
            for chunk in chunks {
                let key = stream_key(&chunk.workout_id, chunk.lsn);
                streams.insert(&key[..], &chunk.encoded[..]).map_err(SinkError::store)?;
            }
            let mut table = txn.open_table(SUMMARIES).map_err(SinkError::store)?;
            let mut index = txn.open_table(BY_USER).map_err(SinkError::store)?;
            let mut efforts = txn.open_table(EFFORTS).map_err(SinkError::store)?;
            let mut created = Vec::new();
            for summary in summaries {
                let id = &summary.workout_id.0[..];
                let previous =
                    table.get(id).map_err(SinkError::store)?.map(|v| decode_summary(v.value())).transpose()?;
                created.extend(super::changes::created(previous.as_ref(), summary));
                if let Some(previous) = previous {
                    index.remove(&index_key(&previous)[..]).map_err(SinkError::store)?;
                }
                let json = serde_json::to_vec(summary).map_err(SinkError::store)?;
                table.insert(id, &json[..]).map_err(SinkError::store)?;
                index.insert(&index_key(summary)[..], ()).map_err(SinkError::store)?;
                if summary.status.is_ended() {
                    let s = read_streams(&streams, &summary.workout_id)?;
                    let found = best_efforts(&s.time_ms, &s.distance_m);
                    let json = serde_json::to_vec(&found).map_err(SinkError::store)?;
                    efforts.insert(id, &json[..]).map_err(SinkError::store)?;
                }
            }
            let mut meta = txn.open_table(META).map_err(SinkError::store)?;
            meta.insert(format!("{CHECKPOINT_PREFIX}{log}").as_str(), through).map_err(SinkError::store)?;
            drop(meta);
            for change in &created {
                append(&txn, change)?;
            }
        }
        txn.commit().map_err(SinkError::store)
    }

    fn delete_workouts(&self, ids: &HashSet<WorkoutId>) -> Result<(), SinkError> {
        let txn = self.db.begin_write().map_err(SinkError::store)?;
        {
            let mut table = txn.open_table(SUMMARIES).map_err(SinkError::store)?;
            let mut index = txn.open_table(BY_USER).map_err(SinkError::store)?;
            let mut streams = txn.open_table(STREAMS).map_err(SinkError::store)?;
            let mut efforts = txn.open_table(EFFORTS).map_err(SinkError::store)?;
            for id in ids {
                if let Some(previous) =
                    table.remove(&id.0[..]).map_err(SinkError::store)?.map(|v| decode_summary(v.value())).transpose()?
                {
                    index.remove(&index_key(&previous)[..]).map_err(SinkError::store)?;
                }
                efforts.remove(&id.0[..]).map_err(SinkError::store)?;
                let (from, to) = (stream_key(id, 0), stream_key(id, u64::MAX));
                streams.retain_in::<&[u8], _>(&from[..]..=&to[..], |_, _| false).map_err(SinkError::store)?;
            }
        }
        commit(txn)
    }

    /// Coordinate retention: nulls the positions of samples stored in `[from_ms, before_ms)` in
    /// every workout whose records the log stored then. Returns how many workouts changed.
    fn drop_positions(&self, from_ms: i64, before_ms: i64) -> Result<usize, SinkError> {
        let txn = self.db.begin_write().map_err(SinkError::store)?;
        let mut changed = 0;
        {
            let table = txn.open_table(SUMMARIES).map_err(SinkError::store)?;
            let mut streams = txn.open_table(STREAMS).map_err(SinkError::store)?;
            let mut affected = Vec::new();
            for entry in table.iter().map_err(SinkError::store)? {
                let (_, value) = entry.map_err(SinkError::store)?;
                let summary = decode_summary(value.value())?;
                if super::may_hold_positions_stored_in(&summary, from_ms, before_ms) {
                    affected.push(summary.workout_id);
                }
            }
            for id in affected {
                let (from, to) = (stream_key(&id, 0), stream_key(&id, u64::MAX));
                let mut rewritten = Vec::new();
                for entry in streams.range::<&[u8]>(&from[..]..=&to[..]).map_err(SinkError::store)? {
                    let (key, value) = entry.map_err(SinkError::store)?;
                    let mut chunk = decode_chunk(key.value(), value.value())?;
                    if chunk.drop_positions_stored_before(before_ms) {
                        rewritten.push((key.value().to_vec(), chunk.encode()));
                    }
                }
                changed += usize::from(!rewritten.is_empty());
                for (key, chunk) in rewritten {
                    streams.insert(&key[..], &chunk[..]).map_err(SinkError::store)?;
                }
            }
        }
        commit(txn)?;
        Ok(changed)
    }

    fn put_athlete_profile(&self, user_id: &str, profile: Option<&AthleteProfile>) -> Result<(), SinkError> {
        let txn = self.db.begin_write().map_err(SinkError::store)?;
        {
            let mut table = txn.open_table(PROFILES).map_err(SinkError::store)?;
            match profile {
                Some(profile) => {
                    let json = serde_json::to_vec(profile).map_err(SinkError::store)?;
                    table.insert(user_id, &json[..]).map_err(SinkError::store)?;
                }
                None => {
                    table.remove(user_id).map_err(SinkError::store)?;
                }
            }
        }
        commit(txn)
    }

    fn athlete_profiles(&self) -> Result<Vec<(String, AthleteProfile)>, SinkError> {
        let txn = self.db.begin_read().map_err(SinkError::store)?;
        let table = txn.open_table(PROFILES).map_err(SinkError::store)?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(SinkError::store)? {
            let (user, json) = entry.map_err(SinkError::store)?;
            out.push((user.value().to_owned(), serde_json::from_slice(json.value()).map_err(SinkError::store)?));
        }
        Ok(out)
    }

    fn record_log_command(&self, record: &LogCommandRecord) -> Result<(), SinkError> {
        let txn = self.db.begin_write().map_err(SinkError::store)?;
        {
            let mut table = txn.open_table(LOG_COMMANDS).map_err(SinkError::store)?;
            let key = (record.log.as_str(), record.lsn);
            let was_done = table.get(key).map_err(SinkError::store)?.is_some_and(|v| v.value().2);
            let user = record.user_id.as_deref().unwrap_or_default();
            table.insert(key, (record.command.as_str(), user, record.done || was_done)).map_err(SinkError::store)?;
            if record.done && record.user_id.is_none() {
                let log = record.log.as_str();
                table
                    .retain_in((log, 0)..(log, record.lsn), |_, (_, user, done)| !(user.is_empty() && done))
                    .map_err(SinkError::store)?;
            }
        }
        commit(txn)
    }

    fn log_commands(&self, log: &str) -> Result<Vec<LogCommandRecord>, SinkError> {
        let txn = self.db.begin_read().map_err(SinkError::store)?;
        let table = txn.open_table(LOG_COMMANDS).map_err(SinkError::store)?;
        let mut out = Vec::new();
        for entry in table.range((log, 0)..=(log, u64::MAX)).map_err(SinkError::store)? {
            let (key, value) = entry.map_err(SinkError::store)?;
            out.push(log_command_of(key.value(), value.value()));
        }
        Ok(out)
    }

    fn log_commands_of_user(&self, user_id: &str) -> Result<Vec<LogCommandRecord>, SinkError> {
        let txn = self.db.begin_read().map_err(SinkError::store)?;
        let table = txn.open_table(LOG_COMMANDS).map_err(SinkError::store)?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(SinkError::store)? {
            let (key, value) = entry.map_err(SinkError::store)?;
            if value.value().1 == user_id {
                out.push(log_command_of(key.value(), value.value()));
            }
        }
        Ok(out)
    }

    fn append_change(&self, change: &NewChange) -> Result<u64, SinkError> {
        let txn = self.db.begin_write().map_err(SinkError::store)?;
        let seq = append(&txn, change)?;
        commit(txn)?;
        Ok(seq)
    }

    fn changes_after(&self, seq: u64, limit: usize) -> Result<Vec<WorkoutChange>, SinkError> {
        let txn = self.db.begin_read().map_err(SinkError::store)?;
        let table = txn.open_table(CHANGES).map_err(SinkError::store)?;
        let mut out = Vec::new();
        for entry in table.range((Bound::Excluded(seq), Bound::Unbounded)).map_err(SinkError::store)?.take(limit) {
            let (seq, json) = entry.map_err(SinkError::store)?;
            let change = serde_json::from_slice(json.value()).map_err(SinkError::store)?;
            out.push(WorkoutChange { seq: seq.value(), change });
        }
        Ok(out)
    }

    fn trim_changes_through(&self, seq: u64) -> Result<(), SinkError> {
        let txn = self.db.begin_write().map_err(SinkError::store)?;
        txn.open_table(CHANGES).map_err(SinkError::store)?.retain_in(..=seq, |_, _| false).map_err(SinkError::store)?;
        commit(txn)
    }

    fn delete_changes_of_user(&self, user_id: &str) -> Result<(), SinkError> {
        let txn = self.db.begin_write().map_err(SinkError::store)?;
        txn.open_table(CHANGES)
            .map_err(SinkError::store)?
            .retain(|_, json| serde_json::from_slice::<NewChange>(json).map_or(true, |c| c.user_id != user_id))
            .map_err(SinkError::store)?;
        commit(txn)
    }
}

fn append(txn: &WriteTransaction, change: &NewChange) -> Result<u64, SinkError> {
    let mut meta = txn.open_table(META).map_err(SinkError::store)?;
    let seq = meta.get(LAST_CHANGE_SEQ).map_err(SinkError::store)?.map_or(0, |v| v.value()) + 1;
    meta.insert(LAST_CHANGE_SEQ, seq).map_err(SinkError::store)?;
    let json = serde_json::to_vec(change).map_err(SinkError::store)?;
    txn.open_table(CHANGES).map_err(SinkError::store)?.insert(seq, &json[..]).map_err(SinkError::store)?;
    Ok(seq)
}

fn log_command_of((log, lsn): (&str, u64), (command, user, done): (&str, &str, bool)) -> LogCommandRecord {
    LogCommandRecord {
        log: log.to_owned(),
        lsn,
        command: command.to_owned(),
        user_id: (!user.is_empty()).then(|| user.to_owned()),
        done,
    }
}

fn commit(txn: WriteTransaction) -> Result<(), SinkError> {
    txn.commit().map_err(SinkError::store)
}

fn index_key(summary: &WorkoutSummary) -> Vec<u8> {
    let mut key = user_key(&summary.user_id);
    key.extend_from_slice(&cursor_of(summary));
    key
}

fn read_streams(
    table: &impl ReadableTable<&'static [u8], &'static [u8]>,
    id: &WorkoutId,
) -> Result<Streams, SinkError> {
    let (from, to) = (stream_key(id, 0), stream_key(id, u64::MAX));
    assemble(table.range::<&[u8]>(&from[..]..=&to[..]).map_err(SinkError::store)?.map(|entry| {
        let (key, value) = entry.map_err(SinkError::store)?;
        decode_chunk(key.value(), value.value())
    }))
}

fn decode_chunk(key: &[u8], value: &[u8]) -> Result<Chunk, SinkError> {
    let lsn = key.get(16..24).and_then(|b| b.try_into().ok()).map(u64::from_be_bytes);
    let lsn = lsn.ok_or_else(|| SinkError::Store(format!("a stream key of {} bytes, not 24", key.len())))?;
    Chunk::decode(value, lsn).map_err(SinkError::store)
}
