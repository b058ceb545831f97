use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use trackwire_pipeline::ShardOutput;

use super::record::{EventRecord, event_json};
use crate::{Command, Sink, SinkError};

/// A new file is started past this size.
const ROLL_BYTES: u64 = 64 << 20;

/// Appends events to `events-<first lsn>.jsonl` files, fsynced per flush. On open it reads the
/// last complete line to learn the LSN it holds through, and cuts a torn last line.
pub struct EventLogSink {
    dir: PathBuf,
    file: Option<(File, u64)>,
    buffer: Vec<u8>,
    committed: u64,
    last_fed: u64,
}

impl EventLogSink {
    pub fn open(dir: &Path) -> Result<Self, SinkError> {
        std::fs::create_dir_all(dir).map_err(|e| SinkError::io(format!("creating {}", dir.display()), e))?;
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| SinkError::io(format!("listing {}", dir.display()), e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
            .collect();
        files.sort();
        let mut committed = 0;
        let mut file = None;
        if let Some(last) = files.last() {
            let data = std::fs::read(last).map_err(|e| SinkError::io(format!("reading {}", last.display()), e))?;
            let complete = data.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            if complete < data.len() {
                tracing::warn!(file = %last.display(), "cutting a torn last event line (crash during write)");
            }
            if let Some(line) = data[..complete].split(|b| *b == b'\n').rev().find(|l| !l.is_empty()) {
                let record: EventRecord = serde_json::from_slice(line).map_err(|e| {
                    SinkError::Store(format!(
                        "last line of {} is not an event ({e}); move the file aside",
                        last.display()
                    ))
                })?;
                committed = record.lsn;
            }
            let handle = OpenOptions::new()
                .write(true)
                .open(last)
                .map_err(|e| SinkError::io(format!("opening {}", last.display()), e))?;
            handle.set_len(complete as u64).map_err(|e| SinkError::io(format!("truncating {}", last.display()), e))?;
            drop(handle);
            let handle = OpenOptions::new()
                .append(true)
                .open(last)
                .map_err(|e| SinkError::io(format!("opening {}", last.display()), e))?;
            file = Some((handle, complete as u64));
        }
        Ok(EventLogSink { dir: dir.to_path_buf(), file, buffer: Vec::new(), committed, last_fed: committed })
    }
}

impl Sink for EventLogSink {
    fn name(&self) -> &'static str {
        "event_log"
    }

    fn accept(&mut self, output: &ShardOutput) -> Result<(), SinkError> {
        if output.lsn <= self.committed {
            return Ok(());
        }
        self.last_fed = output.lsn;
        for event in &output.events {
            self.buffer.extend_from_slice(&event_json(event, output.lsn));
            self.buffer.push(b'\n');
        }
        Ok(())
    }

    fn flush(&mut self, _now: Instant, _force: bool) -> Result<(), SinkError> {
        if !self.buffer.is_empty() {
            if self.file.as_ref().is_none_or(|(_, len)| *len >= ROLL_BYTES) {
                let path = self.dir.join(format!("events-{:020}.jsonl", self.committed + 1));
                let handle = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .map_err(|e| SinkError::io(format!("creating {}", path.display()), e))?;
                self.file = Some((handle, 0));
            }
            let (file, len) = self.file.as_mut().expect("opened above");
            file.write_all(&self.buffer).map_err(|e| SinkError::io("appending events", e))?;
            file.sync_data().map_err(|e| SinkError::io("fsync of the event log", e))?;
            *len += self.buffer.len() as u64;
            self.buffer.clear();
        }
        self.committed = self.last_fed;
        Ok(())
    }

    fn checkpoint(&self) -> u64 {
        self.committed
    }

    /// Erasure: every event line of the erased workouts is removed from every file (each file
    /// rewritten beside itself and renamed over it), and a tombstone line is appended to
    /// `tombstones.ndjson` for consumers of this directory.
    fn command(&mut self, command: &Command) -> Result<(), SinkError> {
        let Command::Erase(erasure) = command else { return Ok(()) };
        self.flush(Instant::now(), true)?;
        let ids: std::collections::HashSet<String> =
            erasure.workouts.iter().map(|w| w.workout_id.to_string()).collect();
        let current = self.file.as_ref().map(|_| self.current_path()).transpose()?;
        for entry in
            std::fs::read_dir(&self.dir).map_err(|e| SinkError::io(format!("listing {}", self.dir.display()), e))?
        {
            let path = entry.map_err(|e| SinkError::io("listing the event log", e))?.path();
            if path.extension().is_none_or(|x| x != "jsonl") {
                continue;
            }
            let data = std::fs::read(&path).map_err(|e| SinkError::io(format!("reading {}", path.display()), e))?;
            let mut kept = Vec::with_capacity(data.len());
            for line in data.split_inclusive(|b| *b == b'\n') {
                let erased = serde_json::from_slice::<EventRecord>(line.trim_ascii_end())
                    .is_ok_and(|record| ids.contains(&record.workout_id));
                if !erased {
                    kept.extend_from_slice(line);
                }
            }
            if kept.len() == data.len() {
                continue;
            }
            let tmp = path.with_extension("jsonl.tmp");
            write_synced(&tmp, &kept)?;
            std::fs::rename(&tmp, &path).map_err(|e| SinkError::io(format!("replacing {}", path.display()), e))?;
            if current.as_ref() == Some(&path) {
                let handle = OpenOptions::new()
                    .append(true)
                    .open(&path)
                    .map_err(|e| SinkError::io(format!("opening {}", path.display()), e))?;
                self.file = Some((handle, kept.len() as u64));
            }
        }
        let tombstone = serde_json::json!({
            "type": "UserErased",
            "user_id": erasure.user_id,
            "workout_ids": ids,
            "through_lsn": erasure.through_lsn,
        });
        let path = self.dir.join("tombstones.ndjson");
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| SinkError::io(format!("opening {}", path.display()), e))?;
        let mut line = serde_json::to_vec(&tombstone).map_err(SinkError::store)?;
        line.push(b'\n');
        file.write_all(&line).map_err(|e| SinkError::io("appending a tombstone", e))?;
        file.sync_data().map_err(|e| SinkError::io("fsync of the tombstones", e))?;
        Ok(())
    }
}

impl EventLogSink {
    /// The file appends go to: the newest `events-*.jsonl`.
    fn current_path(&self) -> Result<PathBuf, SinkError> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map_err(|e| SinkError::io(format!("listing {}", self.dir.display()), e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
            .collect();
        files.sort();
        files.pop().ok_or_else(|| SinkError::Store("the event log has an open file but none on disk".into()))
    }
}

fn write_synced(path: &Path, data: &[u8]) -> Result<(), SinkError> {
    let mut file = File::create(path).map_err(|e| SinkError::io(format!("creating {}", path.display()), e))?;
    file.write_all(data).map_err(|e| SinkError::io(format!("writing {}", path.display()), e))?;
    file.sync_data().map_err(|e| SinkError::io(format!("fsync of {}", path.display()), e))
}
