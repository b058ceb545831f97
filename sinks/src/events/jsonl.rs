use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use trackwire_pipeline::ShardOutput;

use super::mark::{MARK_FILE, Mark, MarkFile};
use super::record::{EventRecord, erasure_json, event_json, published_json};
use crate::{Command, Sink, SinkError};

/// A new file is started past this size.
const ROLL_BYTES: u64 = 64 << 20;

/// Past this many buffered bytes the coordinator waits for a flush before handing more.
const FULL_BUFFER_BYTES: usize = 64 << 20;

/// The writes the event log makes to its current file: a seam so tests can fail them part-way,
/// as a full disk does.
pub trait AppendFile: Send {
    fn append(&mut self, data: &[u8]) -> std::io::Result<()>;
    fn sync(&mut self) -> std::io::Result<()>;
    /// Cuts the file to `len` bytes; later appends go after it.
    fn truncate(&mut self, len: u64) -> std::io::Result<()>;
}

impl AppendFile for File {
    fn append(&mut self, data: &[u8]) -> std::io::Result<()> {
        Write::write_all(self, data)
    }
    fn sync(&mut self) -> std::io::Result<()> {
        File::sync_data(self)
    }
    fn truncate(&mut self, len: u64) -> std::io::Result<()> {
        File::set_len(self, len)
    }
}

/// Opens (creating if missing) a file of the event log for appending.
pub type OpenAppend = Box<dyn Fn(&Path) -> std::io::Result<Box<dyn AppendFile>> + Send>;

fn open_append(path: &Path) -> std::io::Result<Box<dyn AppendFile>> {
    Ok(Box::new(OpenOptions::new().create(true).append(true).open(path)?))
}

/// Appends events to `events-<first lsn>.jsonl` files, fsynced per flush, and after each commit
/// records in `events.commit` how long the current file is and through which LSN it is complete.
/// On open it cuts whatever lies past that mark: an append that failed part-way (a full disk) or
/// was interrupted by a crash was never reported committed, so the log replays it, and cutting
/// it leaves neither a torn line nor a partly written record's events behind.
pub struct EventLogSink {
    dir: PathBuf,
    open_file: OpenAppend,
    marks: MarkFile,
    /// The file appends go to; None until the first event.
    file: Option<Current>,
    /// A write went past the committed length and failed: cut back before writing again, or
    /// the retry would follow a torn line.
    torn: bool,
    /// Lines were appended and fsynced but the commit mark does not cover them yet.
    unmarked: bool,
    buffer: Vec<u8>,
    committed: u64,
    last_fed: u64,
}

/// The events file appends go to.
struct Current {
    handle: Box<dyn AppendFile>,
    /// `events-<number>.jsonl`.
    number: u64,
    /// Committed length: what the last successful flush left.
    len: u64,
}

impl EventLogSink {
    pub fn open(dir: &Path) -> Result<Self, SinkError> {
        Self::open_with(dir, Box::new(open_append))
    }

    /// Like [`open`](Self::open), with appends going through `open_file` (tests inject faults).
    pub fn open_with(dir: &Path, open_file: OpenAppend) -> Result<Self, SinkError> {
        std::fs::create_dir_all(dir).map_err(|e| SinkError::io(format!("creating {}", dir.display()), e))?;
        let files = event_files(dir)?;
        let (marks, mark) = MarkFile::open(dir)?;
        let (current, committed) = match mark {
            Some(mark) => recover_to_mark(dir, &files, mark)?,
            None => recover_from_last_line(&files)?,
        };
        let file = match current {
            Some((number, len)) => {
                let path = file_path(dir, number);
                let handle = open_file(&path).map_err(|e| SinkError::io(format!("opening {}", path.display()), e))?;
                Some(Current { handle, number, len })
            }
            None => None,
        };
        let mut sink = EventLogSink {
            dir: dir.to_path_buf(),
            open_file,
            marks,
            file,
            torn: false,
            unmarked: false,
            buffer: Vec::new(),
            committed,
            last_fed: committed,
        };
        sink.save_mark(committed)?;
        Ok(sink)
    }

    /// Records durably how far the current file is committed, and through which LSN: the next
    /// open cuts anything after it (a write that was never reported committed).
    fn save_mark(&mut self, lsn: u64) -> Result<(), SinkError> {
        let Some(file) = &self.file else { return Ok(()) };
        self.marks.save(Mark { file_number: file.number, len: file.len, lsn })
    }
}

fn file_path(dir: &Path, number: u64) -> PathBuf {
    dir.join(format!("events-{number:020}.jsonl"))
}

fn file_number(path: &Path) -> Option<u64> {
    path.file_name()?.to_str()?.strip_prefix("events-")?.strip_suffix(".jsonl")?.parse().ok()
}

fn event_files(dir: &Path) -> Result<Vec<PathBuf>, SinkError> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| SinkError::io(format!("listing {}", dir.display()), e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    Ok(files)
}

/// Cuts what was written after the last commit (a flush that failed or a crash mid-write, never
/// reported committed, so the log still holds it and the replay writes it again).
fn recover_to_mark(dir: &Path, files: &[PathBuf], mark: Mark) -> Result<(Option<(u64, u64)>, u64), SinkError> {
    let current = file_path(dir, mark.file_number);
    if !files.contains(&current) {
        return Err(SinkError::Store(format!(
            "{} names {} which is missing; delete {MARK_FILE} to recover from the last event line",
            dir.join(MARK_FILE).display(),
            current.display()
        )));
    }
    for later in files.iter().filter(|f| **f > current) {
        tracing::warn!(file = %later.display(), "removing an event file that was never committed");
        std::fs::remove_file(later).map_err(|e| SinkError::io(format!("removing {}", later.display()), e))?;
    }
    let len = cut(&current, mark.len)?;
    Ok((Some((mark.file_number, len)), mark.lsn))
}

/// A directory from before commit marks: the last complete line says how far it is committed.
fn recover_from_last_line(files: &[PathBuf]) -> Result<(Option<(u64, u64)>, u64), SinkError> {
    let Some(last) = files.last() else { return Ok((None, 0)) };
    let number = file_number(last).ok_or_else(|| {
        SinkError::Store(format!("{} is not named events-<number>.jsonl; move it out of the event log", last.display()))
    })?;
    let data = std::fs::read(last).map_err(|e| SinkError::io(format!("reading {}", last.display()), e))?;
    let complete = data.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let mut committed = 0;
    if let Some(line) = data[..complete].split(|b| *b == b'\n').rev().find(|l| !l.is_empty()) {
        let record: EventRecord = serde_json::from_slice(line).map_err(|e| {
            SinkError::Store(format!("last line of {} is not an event ({e}); move the file aside", last.display()))
        })?;
        committed = record.lsn;
    }
    let len = cut(last, complete as u64)?;
    Ok((Some((number, len)), committed))
}

/// Cuts `path` to `len` bytes, and returns its length: shorter than `len` only when an erasure
/// rewrote the file after the mark was saved (its lines were removed, nothing torn is left).
fn cut(path: &Path, len: u64) -> Result<u64, SinkError> {
    let handle = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| SinkError::io(format!("opening {}", path.display()), e))?;
    let size = handle.metadata().map_err(|e| SinkError::io(format!("reading {}", path.display()), e))?.len();
    if size > len {
        tracing::warn!(file = %path.display(), cut = size - len, "cutting event lines written after the last commit");
        handle.set_len(len).map_err(|e| SinkError::io(format!("truncating {}", path.display()), e))?;
        handle.sync_data().map_err(|e| SinkError::io(format!("fsync of {}", path.display()), e))?;
    }
    Ok(size.min(len))
}

impl Sink for EventLogSink {
    fn name(&self) -> &'static str {
        "event_log"
    }

    fn accept(&mut self, output: &ShardOutput) {
        if output.lsn <= self.committed {
            return;
        }
        self.last_fed = output.lsn;
        for event in &output.events {
            self.buffer.extend_from_slice(&event_json(event, output.lsn));
            self.buffer.push(b'\n');
        }
    }

    fn flush(&mut self, _now: Instant, _force: bool) -> Result<(), SinkError> {
        if !self.buffer.is_empty() {
            // Cut a failed append first, also from a file about to be rolled over.
            if self.torn
                && let Some(file) = &mut self.file
            {
                file.handle
                    .truncate(file.len)
                    .map_err(|e| SinkError::io("cutting a torn append of the event log", e))?;
                self.torn = false;
            }
            if self.file.as_ref().is_none_or(|file| file.len >= ROLL_BYTES) {
                let number = self.committed + 1;
                let path = file_path(&self.dir, number);
                let handle =
                    (self.open_file)(&path).map_err(|e| SinkError::io(format!("creating {}", path.display()), e))?;
                self.file = Some(Current { handle, number, len: 0 });
                // The mark names the new file before anything is written to it, so a crash
                // mid-write cuts it back to empty instead of trusting its last complete line.
                self.save_mark(self.committed)?;
            }
            let file = self.file.as_mut().expect("opened above");
            // Set until the write and its fsync both succeed: after a failed fsync the file's
            // state is unknown, so the whole buffer is written again rather than trusted.
            self.torn = true;
            file.handle.append(&self.buffer).map_err(|e| SinkError::io("appending events", e))?;
            file.handle.sync().map_err(|e| SinkError::io("fsync of the event log", e))?;
            self.torn = false;
            file.len += self.buffer.len() as u64;
            self.buffer.clear();
            self.unmarked = true;
        }
        if self.unmarked {
            // Committed only once the mark says so: a restart cuts whatever the mark does not cover.
            self.save_mark(self.last_fed)?;
            self.unmarked = false;
        }
        self.committed = self.last_fed;
        Ok(())
    }

    fn is_full(&self) -> bool {
        self.buffer.len() >= FULL_BUFFER_BYTES
    }

    fn checkpoint(&self) -> u64 {
        self.committed
    }

    /// Erasure: every event line of the erased workouts is removed from every file (each file
    /// rewritten beside itself and renamed over it), and a tombstone line is appended to
    /// `tombstones.ndjson` for consumers of this directory.
    /// An event the API raised is appended like the pipeline's, and committed before the answer.
    fn command(&mut self, command: &Command) -> Result<(), SinkError> {
        if let Command::Publish(event) = command {
            self.buffer.extend_from_slice(&published_json(event, self.last_fed));
            self.buffer.push(b'\n');
            return self.flush(Instant::now(), true);
        }
        let Command::Erase(erasure) = command else { return Ok(()) };
        self.flush(Instant::now(), true)?;
        let ids: std::collections::HashSet<String> =
            erasure.workouts.iter().map(|w| w.workout_id.to_string()).collect();
        let current = self.file.as_ref().map(|file| file_path(&self.dir, file.number));
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
                    .is_ok_and(|record| record.workout_id.is_some_and(|id| ids.contains(&id)));
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
                let handle =
                    (self.open_file)(&path).map_err(|e| SinkError::io(format!("opening {}", path.display()), e))?;
                if let Some(file) = &mut self.file {
                    file.handle = handle;
                    file.len = kept.len() as u64;
                }
                self.save_mark(self.committed)?;
            }
        }
        let mut told = Vec::new();
        for (_, line) in erasure_json(erasure, chrono::Utc::now().timestamp_millis()) {
            told.extend_from_slice(&line);
            told.push(b'\n');
        }
        let path = self.dir.join("tombstones.ndjson");
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| SinkError::io(format!("opening {}", path.display()), e))?;
        file.write_all(&told).map_err(|e| SinkError::io("appending a tombstone", e))?;
        file.sync_data().map_err(|e| SinkError::io("fsync of the tombstones", e))?;
        Ok(())
    }
}

fn write_synced(path: &Path, data: &[u8]) -> Result<(), SinkError> {
    let mut file = File::create(path).map_err(|e| SinkError::io(format!("creating {}", path.display()), e))?;
    file.write_all(data).map_err(|e| SinkError::io(format!("writing {}", path.display()), e))?;
    file.sync_data().map_err(|e| SinkError::io(format!("fsync of {}", path.display()), e))
}
