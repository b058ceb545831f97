//! How a process has erasures and coordinate retention carried out by every copy of the data
//! (lake, event streams, read store): its control handle. A process has one only where it can
//! carry commands out.

use std::sync::Arc;
use std::time::Duration;

use trackwire_ingest::log::LogCommand;
use trackwire_ingest::log::kafka::{Placed, RawTopicConfig, append_to_every_partition, partition_log_name};
use trackwire_sinks::CommandSender;
use trackwire_sinks::read_store::LogCommandRecord;

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
    let (raw, store) = (raw.clone(), store.clone());
    super::routes::blocking(move || {
        let placed = append_to_every_partition(&raw, &command, PLACE_TIMEOUT).map_err(|e| {
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
