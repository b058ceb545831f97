//! Versioned schema migrations, embedded from `sinks/migrations/postgres/`.
//!
//! Applied at connect in one transaction (PostgreSQL's DDL is transactional) under an advisory
//! lock, so processes starting together (a gateway, workers, API replicas) apply each migration
//! exactly once and none sees half a schema. Each applied version is a row of
//! `trackwire_schema_migrations`.

use postgres::Client;

use crate::SinkError;

/// `(version, name, SQL)`, in the order they apply. Append only: never edit an applied one.
pub(crate) const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "read_store", include_str!("../../../migrations/postgres/0001_read_store.sql")),
    (2, "pipeline_leases", include_str!("../../../migrations/postgres/0002_pipeline_leases.sql")),
    (3, "athlete_profiles", include_str!("../../../migrations/postgres/0003_athlete_profiles.sql")),
    (4, "log_commands", include_str!("../../../migrations/postgres/0004_log_commands.sql")),
    (5, "accounts", include_str!("../../../migrations/postgres/0005_accounts.sql")),
    (6, "stored_span", include_str!("../../../migrations/postgres/0006_stored_span.sql")),
    (7, "workout_tags", include_str!("../../../migrations/postgres/0007_workout_tags.sql")),
    (
        8,
        "workout_edits_and_deletions",
        include_str!("../../../migrations/postgres/0008_workout_edits_and_deletions.sql"),
    ),
    (9, "push_subscriptions", include_str!("../../../migrations/postgres/0009_push_subscriptions.sql")),
    (10, "workout_owners", include_str!("../../../migrations/postgres/0010_workout_owners.sql")),
];

/// The advisory lock key of Trackwire's migrations (an arbitrary constant: "trackwir").
const MIGRATION_LOCK: i64 = 0x7472_6163_6b77_6972;

/// Applies every migration the database does not have yet. Returns the versions applied.
pub fn migrate(client: &mut Client) -> Result<Vec<i32>, SinkError> {
    let fail = |step: &str, e: postgres::Error| {
        SinkError::Store(format!("migrating the PostgreSQL schema ({step}): {}", super::describe(&e)))
    };
    let mut txn = client.transaction().map_err(|e| fail("begin", e))?;
    txn.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).map_err(|e| fail("lock", e))?;
    // "relation already exists, skipping" is not news at every start.
    txn.batch_execute("SET LOCAL client_min_messages = warning").map_err(|e| fail("settings", e))?;
    txn.batch_execute(
        "CREATE TABLE IF NOT EXISTS trackwire_schema_migrations (
             version    integer     PRIMARY KEY,
             name       text        NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .map_err(|e| fail("creating trackwire_schema_migrations", e))?;
    let have: Vec<i32> = txn
        .query("SELECT version FROM trackwire_schema_migrations", &[])
        .map_err(|e| fail("reading trackwire_schema_migrations", e))?
        .iter()
        .map(|row| row.get(0))
        .collect();
    if let Some(newer) = have.iter().find(|v| !MIGRATIONS.iter().any(|(known, _, _)| known == *v)) {
        return Err(SinkError::Store(format!(
            "the PostgreSQL schema has migration {newer}, which this build does not know: it was written by a newer \
             Trackwire; run that version (or newer) against this database"
        )));
    }
    let mut applied = Vec::new();
    for &(version, name, sql) in MIGRATIONS.iter().filter(|(v, _, _)| !have.contains(v)) {
        txn.batch_execute(sql).map_err(|e| fail(&format!("{version:04}_{name}"), e))?;
        txn.execute("INSERT INTO trackwire_schema_migrations (version, name) VALUES ($1, $2)", &[&version, &name])
            .map_err(|e| fail("recording the migration", e))?;
        applied.push(version);
    }
    txn.commit().map_err(|e| fail("commit", e))?;
    for version in &applied {
        tracing::info!(version, "read store: PostgreSQL migration applied");
    }
    Ok(applied)
}
