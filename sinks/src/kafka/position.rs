//! Where the Kafka sink keeps the position it delivered through. A Kafka topic cannot say which
//! log positions it holds, so the sink writes it down after each confirmed flush, and a replay
//! skips what is at or below it.

use std::path::PathBuf;
use std::sync::Arc;

use crate::SinkError;
use crate::read_store::ReadStore;

pub enum Position {
    /// A file on the local disk, beside the log it counts (the single process).
    File(PathBuf),
    /// A checkpoint row of the shared read store (a scale-out partition): whichever worker, on
    /// whichever node, takes the partition over next reads it and does not re-send what the
    /// previous owner delivered.
    Store {
        store: Arc<dyn ReadStore>,
        /// The row's name, e.g. `kafka:raw.v1/3`.
        name: String,
        /// A file an older version kept the position in, taken when the store has none yet.
        legacy_file: Option<PathBuf>,
    },
}

impl Position {
    /// The position for the log the store names `log`, as the Kafka sink's row.
    pub fn in_store(store: Arc<dyn ReadStore>, log: &str, legacy_file: Option<PathBuf>) -> Position {
        Position::Store { store, name: format!("kafka:{log}"), legacy_file }
    }

    pub fn load(&self) -> Result<u64, SinkError> {
        match self {
            Position::File(path) => read_file(path),
            Position::Store { store, name, legacy_file } => {
                let stored = store.checkpoint(name)?;
                match legacy_file {
                    Some(path) if stored == 0 => read_file(path),
                    _ => Ok(stored),
                }
            }
        }
    }

    pub fn save(&self, through: u64) -> Result<(), SinkError> {
        match self {
            Position::File(path) => {
                let tmp = path.with_extension("tmp");
                let io = |e| SinkError::io(format!("writing {}", path.display()), e);
                std::fs::write(&tmp, format!("{through}\n")).map_err(io)?;
                std::fs::rename(&tmp, path).map_err(io)
            }
            Position::Store { store, name, .. } => store.set_checkpoint(name, through),
        }
    }
}

fn read_file(path: &std::path::Path) -> Result<u64, SinkError> {
    match std::fs::read_to_string(path) {
        Ok(text) => text.trim().parse().map_err(|_| {
            SinkError::Config(format!("{} is not an LSN; delete it to re-send the retained log", path.display()))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(SinkError::io(format!("reading {}", path.display()), e)),
    }
}
