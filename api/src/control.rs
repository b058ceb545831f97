//! How a process has erasures and coordinate retention carried out by every copy of the data
//! (lake, event streams, read store): its control handle. A process has one only where it can
//! carry commands out.

use std::sync::Arc;
use std::time::Duration;

use trackwire_codec::WorkoutId;
use trackwire_ingest::log::LogCommand;
use trackwire_ingest::log::kafka::{
    Placed, RawTopicConfig, append_to_every_partition, append_to_partitions, partition_log_name, partition_of,
};
use trackwire_sinks::read_store::LogCommandRecord;
use trackwire_sinks::{Command, CommandSender, PublishedEvent};

use crate::ApiError;

/// How long placing a command in every partition may take before the request fails (and may be
/// repeated).
const PLACE_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub enum Control {
    /// The sinks thread of this process (the single process): a command is run after the
    /// outputs already delivered, and answered when every sink has carried it out.
    Local(CommandSender),
    /// The pipeline workers of a scale-out deployment (an API replica): a command is placed in
    /// every partition of the raw topic, and each partition's sinks carry it out at its position;
    /// the read store records how far that got.
    Log(Arc<RawTopicConfig>),
}

/// A command placed in one partition, as the read store records it.
pub fn record_of(log: &str, lsn: u64, command: &LogCommand, done: bool) -> LogCommandRecord {
    LogCommandRecord {
        log: log.to_owned(),
        lsn,
        command: String::from_utf8(command.encode()).expect("JSON is UTF-8"),
        user_id: command.user_id().map(str::to_owned),
        done,
    }
}

/// Places `command` in every partition of the raw topic and records each placement in `store`
/// (not done yet). Returns the records.
pub async fn place(
    raw: &Arc<RawTopicConfig>,
    store: &Arc<dyn trackwire_sinks::read_store::ReadStore>,
    command: LogCommand,
) -> Result<Vec<LogCommandRecord>, ApiError> {
    place_in(raw, store, command, None).await
}

/// Places `command` in the partition of the raw topic that holds `workout`'s records (so it is
/// carried out in order with them) and records the placement in `store` (not done yet).
pub async fn place_with_workout(
    raw: &Arc<RawTopicConfig>,
    store: &Arc<dyn trackwire_sinks::read_store::ReadStore>,
    command: LogCommand,
    workout: &WorkoutId,
) -> Result<Vec<LogCommandRecord>, ApiError> {
    let partition = partition_of(workout, raw.partitions);
    place_in(raw, store, command, Some(partition)).await
}

/// Like [`place`], in one partition only (`Some`), or in every one (`None`).
async fn place_in(
    raw: &Arc<RawTopicConfig>,
    store: &Arc<dyn trackwire_sinks::read_store::ReadStore>,
    command: LogCommand,
    partition: Option<i32>,
) -> Result<Vec<LogCommandRecord>, ApiError> {
    let (raw, store) = (raw.clone(), store.clone());
    super::routes::blocking(move || {
        let placed = match partition {
            Some(partition) => append_to_partitions(&raw, &command, &[partition], PLACE_TIMEOUT),
            None => append_to_every_partition(&raw, &command, PLACE_TIMEOUT),
        };
        let placed = placed.map_err(|e| {
            ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "log_unavailable",
                format!("{e}; nothing is lost: repeat the request"),
            )
        })?;
        let mut records = Vec::with_capacity(placed.len());
        for Placed { partition, lsn } in placed {
            let record = record_of(&partition_log_name(partition as u32), lsn, &command, false);
            store.record_log_command(&record).map_err(ApiError::internal)?;
            records.push(record);
        }
        Ok::<_, ApiError>(records)
    })
    .await
}

/// Publishes an event the API raised on the event stream, in order with the workout's own events
/// where it is about one: through this process's sinks (answered once the event log holds it),
/// or placed in the workout's partition of the raw topic (the user's, by a hash of their id, for
/// an event about a user) for that partition's worker to publish. A process with neither
/// publishes nothing.
pub async fn publish(
    control: Option<&Control>,
    store: &Arc<dyn trackwire_sinks::read_store::ReadStore>,
    event: PublishedEvent,
) -> Result<(), ApiError> {
    match control {
        Some(Control::Local(commands)) => commands.run(Command::Publish(event)).await.map_err(|e| {
            ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "event_unpublished",
                format!("the change is saved but its event could not be published ({e}); repeat the request"),
            )
        }),
        Some(Control::Log(raw)) => {
            let key = event.workout_id.unwrap_or_else(|| {
                WorkoutId(*uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, event.user_id.as_bytes()).as_bytes())
            });
            let partition = partition_of(&key, raw.partitions);
            let command = LogCommand::PublishEvent {
                event_id: event.event_id,
                event_type: event.event_type,
                timestamp_ms: event.timestamp_ms,
                workout_id: event.workout_id.map(|id| id.to_string()),
                user_id: event.user_id,
                data: event.data,
            };
            place_in(raw, store, command, Some(partition)).await.map(drop)
        }
        None => Ok(()),
    }
}
