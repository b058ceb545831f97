//! How a process has erasures and coordinate retention carried out by every copy of the data
//! (lake, event streams, read store): its control handle. A process has one only where it can
//! carry commands out.

use std::sync::Arc;
use std::time::Duration;

use trackwire_codec::WorkoutId;
use trackwire_ingest::log::kafka::{Placed, RawTopicConfig, append_each, partition_log_name, partition_of};
use trackwire_ingest::log::{LogCommand, WorkoutSpan};
use trackwire_sinks::read_store::LogCommandRecord;
use trackwire_sinks::{Command, CommandSender, PublishedEvent};

use crate::ApiError;

/// How long placing a command in every partition may take before the request fails (and may be
/// repeated).
const PLACE_TIMEOUT: Duration = Duration::from_secs(30);

/// Most workouts one erasure command lists (≈ 100 bytes each, so a command stays far below a
/// broker's 1 MB message limit); a partition holding more of the user's gets several commands
/// in a row.
const LISTED_PER_COMMAND: usize = 2_000;

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
    let placements = (0..raw.partitions).map(|p| (p, command.clone())).collect();
    place_each(raw, store, placements).await
}

/// Places the erasure of `user_id` in every partition, each listing the workouts (of `known`,
/// what the API has of the user) whose records that partition holds, and records each
/// placement in `store`. Returns the records.
pub async fn place_erasure(
    raw: &Arc<RawTopicConfig>,
    store: &Arc<dyn trackwire_sinks::read_store::ReadStore>,
    user_id: &str,
    known: &[trackwire_sinks::ErasedWorkout],
) -> Result<Vec<LogCommandRecord>, ApiError> {
    let mut placements = Vec::new();
    for partition in 0..raw.partitions {
        let held: Vec<WorkoutSpan> = known
            .iter()
            .filter(|w| partition_of(&w.workout_id, raw.partitions) == partition)
            .map(|w| WorkoutSpan {
                workout_id: w.workout_id.to_string(),
                start_time_ms: w.start_time_ms,
                end_time_ms: w.end_time_ms,
            })
            .collect();
        let mut chunks: Vec<Vec<WorkoutSpan>> = held.chunks(LISTED_PER_COMMAND).map(<[_]>::to_vec).collect();
        if chunks.is_empty() {
            chunks.push(Vec::new()); // every partition erases what it holds of the user
        }
        for workouts in chunks {
            placements.push((partition, LogCommand::EraseUser { user_id: user_id.to_owned(), workouts }));
        }
    }
    place_each(raw, store, placements).await
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
    place_each(raw, store, vec![(partition, command)]).await
}

/// Places each command in its partition and records each placement in `store` (not done yet).
async fn place_each(
    raw: &Arc<RawTopicConfig>,
    store: &Arc<dyn trackwire_sinks::read_store::ReadStore>,
    placements: Vec<(i32, LogCommand)>,
) -> Result<Vec<LogCommandRecord>, ApiError> {
    let (raw, store) = (raw.clone(), store.clone());
    super::routes::blocking(move || {
        let placed = append_each(&raw, &placements, PLACE_TIMEOUT).map_err(|e| {
            ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "log_unavailable",
                format!("{e}; nothing is lost: repeat the request"),
            )
        })?;
        let mut records = Vec::with_capacity(placed.len());
        for (Placed { partition, lsn }, (_, command)) in placed.into_iter().zip(&placements) {
            let record = record_of(&partition_log_name(partition as u32), lsn, command, false);
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
            place_each(raw, store, vec![(partition, command)]).await.map(drop)
        }
        None => Ok(()),
    }
}
