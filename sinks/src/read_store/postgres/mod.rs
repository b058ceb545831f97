//! The PostgreSQL backend: one database shared by every process of a scale-out deployment (the
//! pipeline workers write it, API replicas read it). Schema in `sinks/migrations/postgres/`.
//!
//! Summaries are `jsonb` beside the columns queries filter and sort on; stream chunks are the
//! same bytes the embedded store keeps. Every write is one transaction, so the store and each
//! log's checkpoint never disagree, and every write is an upsert, so a replay after a takeover or
//! crash rewrites rows with the same values instead of duplicating them.

mod migrations;
pub mod tls;

use std::collections::HashSet;
use std::time::Duration;

use postgres::GenericClient;
use postgres::types::{Json, ToSql};
use r2d2_postgres::PostgresConnectionManager;
use trackwire_codec::WorkoutId;
use trackwire_pipeline::{AthleteProfile, WorkoutSummary};

use super::{
    BestEfforts, Chunk, Cursor, ListQuery, LogCommandRecord, NewChange, ReadStore, StreamChunk, Streams, WorkoutChange,
    assemble, best_efforts, cursor_of, start_of,
};
use crate::SinkError;

type Pool = r2d2::Pool<PostgresConnectionManager<tls::Tls>>;

/// Connections kept for API readers and the sinks thread together.
const POOL_SIZE: u32 = 8;
/// How long a caller waits for a connection (or the first connect) before an error.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The read store on PostgreSQL.
pub struct PostgresStore {
    pool: Pool,
}

/// A PostgreSQL error with its server message (the crate's own Display says only "db error").
pub fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} {}: {}", db.severity(), db.code().code(), db.message()),
        None => match std::error::Error::source(e) {
            Some(source) => format!("{e}: {source}"),
            None => e.to_string(),
        },
    }
}

fn store_error(e: postgres::Error) -> SinkError {
    SinkError::Store(format!("PostgreSQL: {}", describe(&e)))
}

fn lsn_param(lsn: u64) -> Result<i64, SinkError> {
    i64::try_from(lsn).map_err(|_| SinkError::Store(format!("log position {lsn} does not fit PostgreSQL's bigint")))
}

impl PostgresStore {
    /// Connects (waiting up to 10 s for the server) and applies the migrations it lacks.
    /// `ca_file`: PEM CA certificates for TLS (see [`tls`]).
    pub fn connect(url: &str, ca_file: Option<&std::path::Path>) -> Result<PostgresStore, SinkError> {
        let shown = super::redact_url(url);
        let mut config: postgres::Config = url.parse().map_err(|e| {
            SinkError::Config(format!(
                "store url '{shown}' is not a PostgreSQL connection URL ({e}): give postgres://user:password@host:port/database"
            ))
        })?;
        let tls = tls::connector(&mut config, url, ca_file)?;
        let manager = PostgresConnectionManager::new(config, tls);
        let pool = r2d2::Pool::builder()
            .max_size(POOL_SIZE)
            .min_idle(Some(1))
            .connection_timeout(CONNECT_TIMEOUT)
            .build(manager)
            .map_err(|e| {
                let hint = if e.to_string().contains("TLS") {
                    "the server's certificate was not accepted: check that store.ca_file names the CA bundle that \
                     signs it (and the URL's host matches the certificate)"
                } else {
                    "check that the server is up and the URL's host, port, user, password and database"
                };
                SinkError::Store(format!(
                    "could not connect to PostgreSQL at '{shown}' within {}s: {e}; {hint}",
                    CONNECT_TIMEOUT.as_secs()
                ))
            })?;
        let store = PostgresStore { pool };
        migrations::migrate(&mut *store.client()?)?;
        Ok(store)
    }

    /// A connection from the pool, for the other owners of tables in the same database (the API's
    /// account store).
    pub fn client(&self) -> Result<r2d2::PooledConnection<PostgresConnectionManager<tls::Tls>>, SinkError> {
        self.pool.get().map_err(|e| SinkError::Store(format!("no PostgreSQL connection: {e}")))
    }
}

fn summary_of(row: &postgres::Row) -> WorkoutSummary {
    let Json(summary) = row.get::<_, Json<WorkoutSummary>>("summary");
    summary
}

fn read_streams(client: &mut impl GenericClient, id: &WorkoutId) -> Result<Streams, SinkError> {
    let rows = client
        .query("SELECT lsn, chunk FROM workout_streams WHERE workout_id = $1 ORDER BY lsn", &[&&id.0[..]])
        .map_err(store_error)?;
    assemble(
        rows.iter()
            .map(|row| Chunk::decode(row.get::<_, &[u8]>(1), row.get::<_, i64>(0) as u64).map_err(SinkError::store)),
    )
}

impl ReadStore for PostgresStore {
    fn checkpoint(&self, log: &str) -> Result<u64, SinkError> {
        let row = self
            .client()?
            .query_opt("SELECT lsn FROM read_store_checkpoints WHERE log = $1", &[&log])
            .map_err(store_error)?;
        Ok(row.map_or(0, |row| row.get::<_, i64>(0) as u64))
    }

    fn set_checkpoint(&self, name: &str, through: u64) -> Result<(), SinkError> {
        self.client()?
            .execute(
                "INSERT INTO read_store_checkpoints (log, lsn) VALUES ($1, $2)
                 ON CONFLICT (log) DO UPDATE SET lsn = EXCLUDED.lsn",
                &[&name, &lsn_param(through)?],
            )
            .map_err(store_error)?;
        Ok(())
    }

    fn get(&self, id: &WorkoutId) -> Result<Option<WorkoutSummary>, SinkError> {
        let row = self
            .client()?
            .query_opt("SELECT summary FROM workout_summaries WHERE workout_id = $1", &[&&id.0[..]])
            .map_err(store_error)?;
        Ok(row.as_ref().map(summary_of))
    }

    fn list(&self, user_id: &str, query: &ListQuery) -> Result<(Vec<WorkoutSummary>, Option<Cursor>), SinkError> {
        let mut sql = String::from("SELECT summary FROM workout_summaries WHERE user_id = $1");
        let after = query.after.map(|cursor| (start_of(&cursor), cursor[8..].to_vec()));
        let limit = i64::try_from(query.limit).ok().and_then(|l| l.checked_add(1));
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&user_id];
        if let Some((start, id)) = &after {
            params.push(start);
            params.push(id);
            let (s, i) = (params.len() - 1, params.len());
            sql += &format!(" AND (start_time_ms < ${s} OR (start_time_ms = ${s} AND workout_id > ${i}))");
        }
        if let Some(sport) = &query.sport {
            params.push(sport);
            sql += &format!(" AND sport = ${}", params.len());
        }
        if let Some(from) = &query.start_from_ms {
            params.push(from);
            sql += &format!(" AND start_time_ms >= ${}", params.len());
        }
        if let Some(before) = &query.start_before_ms {
            params.push(before);
            sql += &format!(" AND start_time_ms < ${}", params.len());
        }
        sql += " ORDER BY start_time_ms DESC, workout_id";
        if let Some(limit) = &limit {
            params.push(limit);
            sql += &format!(" LIMIT ${}", params.len());
        }
        let rows = self.client()?.query(&sql, &params).map_err(store_error)?;
        let mut out: Vec<WorkoutSummary> = rows.iter().map(summary_of).collect();
        // One row past the page says whether another page exists.
        if out.len() > query.limit {
            out.truncate(query.limit);
            let next = out.last().map(cursor_of);
            return Ok((out, next));
        }
        Ok((out, None))
    }

    fn streams(&self, id: &WorkoutId) -> Result<Streams, SinkError> {
        read_streams(&mut *self.client()?, id)
    }

    fn last_chunk(&self, id: &WorkoutId) -> Result<Option<Streams>, SinkError> {
        let row = self
            .client()?
            .query_opt(
                "SELECT lsn, chunk FROM workout_streams WHERE workout_id = $1 ORDER BY lsn DESC LIMIT 1",
                &[&&id.0[..]],
            )
            .map_err(store_error)?;
        row.map(|row| Chunk::decode(row.get::<_, &[u8]>(1), row.get::<_, i64>(0) as u64).map(|chunk| chunk.streams))
            .transpose()
            .map_err(SinkError::store)
    }

    fn best_efforts(&self, id: &WorkoutId) -> Result<Option<BestEfforts>, SinkError> {
        let row = self
            .client()?
            .query_opt("SELECT efforts FROM workout_best_efforts WHERE workout_id = $1", &[&&id.0[..]])
            .map_err(store_error)?;
        Ok(row.map(|row| row.get::<_, Json<BestEfforts>>(0).0))
    }

    fn best_efforts_of(&self, ids: &[WorkoutId]) -> Result<Vec<(WorkoutId, BestEfforts)>, SinkError> {
        // One round trip for a user's whole history, not one per workout.
        let keys: Vec<&[u8]> = ids.iter().map(|id| &id.0[..]).collect();
        let rows = self
            .client()?
            .query("SELECT workout_id, efforts FROM workout_best_efforts WHERE workout_id = ANY($1)", &[&keys])
            .map_err(store_error)?;
        rows.iter()
            .map(|row| {
                let id = WorkoutId(row.get::<_, &[u8]>(0).try_into().map_err(SinkError::store)?);
                Ok((id, row.get::<_, Json<BestEfforts>>(1).0))
            })
            .collect()
    }

    fn apply(
        &self,
        log: &str,
        summaries: &[WorkoutSummary],
        chunks: &[StreamChunk],
        through: u64,
    ) -> Result<(), SinkError> {
        let mut client = self.client()?;
        let mut txn = client.transaction().map_err(store_error)?;
        if !chunks.is_empty() {
            let insert = txn
                .prepare(
                    "INSERT INTO workout_streams (workout_id, lsn, chunk) VALUES ($1, $2, $3)
                     ON CONFLICT (workout_id, lsn) DO UPDATE SET chunk = EXCLUDED.chunk",
                )
                .map_err(store_error)?;
            for chunk in chunks {
                txn.execute(&insert, &[&&chunk.workout_id.0[..], &lsn_param(chunk.lsn)?, &chunk.encoded])
                    .map_err(store_error)?;
            }
        }
        let mut created = Vec::new();
        for summary in summaries {
            let id = &summary.workout_id.0[..];
            if summary.status == trackwire_pipeline::WorkoutStatus::Completed {
                let previous = txn
                    .query_opt("SELECT summary FROM workout_summaries WHERE workout_id = $1", &[&id])
                    .map_err(store_error)?
                    .map(|row| row.get::<_, Json<WorkoutSummary>>(0).0);
                created.extend(super::changes::created(previous.as_ref(), summary));
            }
            txn.execute(
                "INSERT INTO workout_summaries (workout_id, user_id, sport, start_time_ms, end_time_ms, summary)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (workout_id) DO UPDATE SET user_id = EXCLUDED.user_id, sport = EXCLUDED.sport,
                     start_time_ms = EXCLUDED.start_time_ms, end_time_ms = EXCLUDED.end_time_ms,
                     summary = EXCLUDED.summary",
                &[&id, &summary.user_id, &summary.sport, &summary.start_time_ms, &summary.end_time_ms, &Json(summary)],
            )
            .map_err(store_error)?;
            if summary.status.is_ended() {
                let streams = read_streams(&mut txn, &summary.workout_id)?;
                let found = best_efforts(&streams.time_ms, &streams.distance_m);
                txn.execute(
                    "INSERT INTO workout_best_efforts (workout_id, efforts) VALUES ($1, $2)
                     ON CONFLICT (workout_id) DO UPDATE SET efforts = EXCLUDED.efforts",
                    &[&id, &Json(&found)],
                )
                .map_err(store_error)?;
            }
        }
        txn.execute(
            "INSERT INTO read_store_checkpoints (log, lsn) VALUES ($1, $2)
             ON CONFLICT (log) DO UPDATE SET lsn = EXCLUDED.lsn",
            &[&log, &lsn_param(through)?],
        )
        .map_err(store_error)?;
        for change in &created {
            append(&mut txn, change)?;
        }
        txn.commit().map_err(store_error)
    }

    fn delete_workouts(&self, workouts: &HashSet<WorkoutId>) -> Result<(), SinkError> {
        let mut client = self.client()?;
        let mut txn = client.transaction().map_err(store_error)?;
        let ids: Vec<Vec<u8>> = workouts.iter().map(|id| id.0.to_vec()).collect();
        for table in ["workout_summaries", "workout_streams", "workout_best_efforts"] {
            txn.execute(&format!("DELETE FROM {table} WHERE workout_id = ANY($1)"), &[&ids]).map_err(store_error)?;
        }
        txn.commit().map_err(store_error)
    }

    fn drop_positions(&self, from_ms: i64, before_ms: i64) -> Result<usize, SinkError> {
        let mut client = self.client()?;
        let mut txn = client.transaction().map_err(store_error)?;
        let chunks = txn
            .query(
                "SELECT s.workout_id, s.lsn, s.chunk FROM workout_streams s
                 JOIN workout_summaries w ON w.workout_id = s.workout_id
                 WHERE CASE WHEN w.summary ? 'stored_from_ms'
                     THEN (w.summary->>'stored_from_ms')::bigint < $1
                         AND (w.summary->>'stored_through_ms')::bigint >= $2
                     ELSE w.start_time_ms < $1 AND w.end_time_ms >= $2 END
                 FOR UPDATE OF s",
                &[&before_ms, &from_ms],
            )
            .map_err(store_error)?;
        let mut changed: HashSet<Vec<u8>> = HashSet::new();
        for row in chunks {
            let (id, lsn): (Vec<u8>, i64) = (row.get(0), row.get(1));
            let mut chunk = Chunk::decode(row.get::<_, &[u8]>(2), lsn as u64).map_err(SinkError::store)?;
            if chunk.drop_positions_stored_before(before_ms) {
                txn.execute(
                    "UPDATE workout_streams SET chunk = $3 WHERE workout_id = $1 AND lsn = $2",
                    &[&id, &lsn, &chunk.encode()],
                )
                .map_err(store_error)?;
                changed.insert(id);
            }
        }
        txn.commit().map_err(store_error)?;
        Ok(changed.len())
    }

    fn put_athlete_profile(&self, user_id: &str, profile: Option<&AthleteProfile>) -> Result<(), SinkError> {
        let mut client = self.client()?;
        match profile {
            Some(profile) => client.execute(
                "INSERT INTO athlete_profiles (user_id, profile) VALUES ($1, $2)
                 ON CONFLICT (user_id) DO UPDATE SET profile = EXCLUDED.profile, updated_at = now()",
                &[&user_id, &Json(profile)],
            ),
            None => client.execute("DELETE FROM athlete_profiles WHERE user_id = $1", &[&user_id]),
        }
        .map_err(store_error)?;
        Ok(())
    }

    fn athlete_profiles(&self) -> Result<Vec<(String, AthleteProfile)>, SinkError> {
        let rows = self.client()?.query("SELECT user_id, profile FROM athlete_profiles", &[]).map_err(store_error)?;
        Ok(rows.iter().map(|row| (row.get(0), row.get::<_, Json<AthleteProfile>>(1).0)).collect())
    }

    fn record_log_command(&self, record: &LogCommandRecord) -> Result<(), SinkError> {
        let lsn = lsn_param(record.lsn)?;
        let mut client = self.client()?;
        let mut txn = client.transaction().map_err(store_error)?;
        txn.execute(
            "INSERT INTO log_commands (log, lsn, command, user_id, done_at)
             VALUES ($1, $2, $3, $4, CASE WHEN $5 THEN now() END)
             ON CONFLICT (log, lsn) DO UPDATE SET done_at = COALESCE(log_commands.done_at, EXCLUDED.done_at)",
            &[&record.log, &lsn, &record.command, &record.user_id, &record.done],
        )
        .map_err(store_error)?;
        if record.done && record.user_id.is_none() {
            txn.execute(
                "DELETE FROM log_commands WHERE log = $1 AND lsn < $2 AND user_id IS NULL AND done_at IS NOT NULL",
                &[&record.log, &lsn],
            )
            .map_err(store_error)?;
        }
        txn.commit().map_err(store_error)
    }

    fn log_commands(&self, log: &str) -> Result<Vec<LogCommandRecord>, SinkError> {
        let rows = self
            .client()?
            .query(
                "SELECT log, lsn, command, user_id, done_at IS NOT NULL FROM log_commands WHERE log = $1 ORDER BY lsn",
                &[&log],
            )
            .map_err(store_error)?;
        Ok(rows.iter().map(log_command_of).collect())
    }

    fn log_commands_of_user(&self, user_id: &str) -> Result<Vec<LogCommandRecord>, SinkError> {
        let rows = self
            .client()?
            .query(
                "SELECT log, lsn, command, user_id, done_at IS NOT NULL FROM log_commands WHERE user_id = $1
                 ORDER BY log, lsn",
                &[&user_id],
            )
            .map_err(store_error)?;
        Ok(rows.iter().map(log_command_of).collect())
    }

    fn append_change(&self, change: &NewChange) -> Result<u64, SinkError> {
        let mut client = self.client()?;
        let mut txn = client.transaction().map_err(store_error)?;
        let seq = append(&mut txn, change)?;
        txn.commit().map_err(store_error)?;
        Ok(seq)
    }

    fn changes_after(&self, seq: u64, limit: usize) -> Result<Vec<WorkoutChange>, SinkError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .client()?
            .query(
                "SELECT seq, change FROM workout_changes WHERE seq > $1 ORDER BY seq LIMIT $2",
                &[&lsn_param(seq)?, &limit],
            )
            .map_err(store_error)?;
        Ok(rows
            .iter()
            .map(|row| WorkoutChange { seq: row.get::<_, i64>(0) as u64, change: row.get::<_, Json<NewChange>>(1).0 })
            .collect())
    }

    fn trim_changes_through(&self, seq: u64) -> Result<(), SinkError> {
        self.client()?
            .execute("DELETE FROM workout_changes WHERE seq <= $1", &[&lsn_param(seq)?])
            .map_err(store_error)?;
        Ok(())
    }

    fn delete_changes_of_user(&self, user_id: &str) -> Result<(), SinkError> {
        self.client()?.execute("DELETE FROM workout_changes WHERE user_id = $1", &[&user_id]).map_err(store_error)?;
        Ok(())
    }
}

/// Appends `change` in `txn`, behind the table lock that keeps the feed's seq order its commit
/// order.
fn append(txn: &mut postgres::Transaction<'_>, change: &NewChange) -> Result<u64, SinkError> {
    txn.batch_execute("LOCK TABLE workout_changes IN EXCLUSIVE MODE").map_err(store_error)?;
    let row = txn
        .query_one(
            "INSERT INTO workout_changes (user_id, change) VALUES ($1, $2) RETURNING seq",
            &[&change.user_id, &Json(change)],
        )
        .map_err(store_error)?;
    Ok(row.get::<_, i64>(0) as u64)
}

fn log_command_of(row: &postgres::Row) -> LogCommandRecord {
    LogCommandRecord {
        log: row.get(0),
        lsn: row.get::<_, i64>(1) as u64,
        command: row.get(2),
        user_id: row.get(3),
        done: row.get(4),
    }
}
