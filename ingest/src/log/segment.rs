//! Segment files on disk: naming, scanning with torn-tail repair, reading back for replay.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::LogError;
use super::record::{self, Format, FrameError, MAGIC};
use super::{DedupIndex, LogRecord};

/// One segment file: the records with LSN in `first_lsn..next_lsn`.
#[derive(Debug, Clone)]
pub struct SegmentMeta {
    pub path: PathBuf,
    pub first_lsn: u64,
    /// One past the last record's LSN (== first_lsn for an empty segment).
    pub next_lsn: u64,
    pub len: u64,
    /// The record format it is written in (new records go only to segments of today's format).
    pub format: Format,
}

pub fn segment_path(dir: &Path, first_lsn: u64) -> PathBuf {
    dir.join(format!("{first_lsn:020}.twlog"))
}

/// Segment files in `dir`, oldest first.
pub fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, LogError> {
    let mut out = Vec::new();
    let entries = fs::read_dir(dir).map_err(|e| LogError::io(format!("listing log directory {}", dir.display()), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| LogError::io(format!("listing log directory {}", dir.display()), e))?;
        let name = entry.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".twlog")) else {
            continue;
        };
        let Ok(first_lsn) = stem.parse::<u64>() else {
            continue;
        };
        out.push((first_lsn, entry.path()));
    }
    out.sort();
    Ok(out)
}

/// Reads and verifies a whole segment. A bad record in the last segment is a torn write: the file
/// is truncated to the last whole record. A bad record anywhere else is corruption and an error.
pub fn scan_segment(
    path: &Path,
    first_lsn: u64,
    is_last: bool,
    dedup: &mut DedupIndex,
    mut each: impl FnMut(LogRecord) -> Result<(), LogError>,
) -> Result<SegmentMeta, LogError> {
    let data =
        Bytes::from(fs::read(path).map_err(|e| LogError::io(format!("reading log segment {}", path.display()), e))?);
    let corrupt = |offset: usize, reason: String| LogError::Corrupt { segment: path.to_path_buf(), offset, reason };
    let format = data.get(..MAGIC.len()).and_then(Format::of_magic);
    let Some(format) = format else {
        if is_last && data.len() < MAGIC.len() {
            // Crashed while creating the segment: start it again.
            write_new_segment_file(path)?;
            return Ok(SegmentMeta {
                path: path.to_path_buf(),
                first_lsn,
                next_lsn: first_lsn,
                len: MAGIC.len() as u64,
                format: Format::V2,
            });
        }
        return Err(corrupt(0, "not a Trackwire log segment (bad magic)".into()));
    };
    let mut offset = MAGIC.len();
    let mut next_lsn = first_lsn;
    while offset < data.len() {
        match record::decode_record(&data, offset, format) {
            Ok((rec, next)) => {
                if rec.lsn != next_lsn {
                    return Err(corrupt(offset, format!("expected lsn {next_lsn}, found {}", rec.lsn)));
                }
                dedup.insert(rec.key);
                let payload = data.slice(rec.payload_offset..rec.payload_offset + rec.payload.len());
                each(LogRecord { lsn: rec.lsn, key: rec.key, payload, appended_ms: rec.appended_ms, trace_id: None })?;
                next_lsn += 1;
                offset = next;
            }
            Err(err) if is_last => {
                tracing::warn!(segment = %path.display(), offset, %err, "torn write at the log tail (crash during append); truncating it: those batches were never acked");
                truncate(path, offset as u64)?;
                break;
            }
            Err(
                err @ (FrameError::ShortHeader { .. }
                | FrameError::BadLength { .. }
                | FrameError::ShortBody { .. }
                | FrameError::Checksum { .. }),
            ) => {
                return Err(corrupt(offset, err.to_string()));
            }
        }
    }
    Ok(SegmentMeta { path: path.to_path_buf(), first_lsn, next_lsn, len: offset as u64, format })
}

fn truncate(path: &Path, len: u64) -> Result<(), LogError> {
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| LogError::io(format!("opening {} to truncate a torn tail", path.display()), e))?;
    file.set_len(len).map_err(|e| LogError::io(format!("truncating {}", path.display()), e))?;
    file.sync_all().map_err(|e| LogError::io(format!("syncing {}", path.display()), e))
}

/// Creates (or re-creates) an empty segment holding only the magic, durably.
pub fn write_new_segment_file(path: &Path) -> Result<File, LogError> {
    let mut file = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(path)
        .map_err(|e| LogError::io(format!("creating log segment {}", path.display()), e))?;
    file.write_all(MAGIC).map_err(|e| LogError::io(format!("writing {}", path.display()), e))?;
    file.sync_all().map_err(|e| LogError::io(format!("syncing {}", path.display()), e))?;
    if let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(file)
}

/// Makes a created, renamed or deleted directory entry durable.
pub fn sync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| LogError::io(format!("syncing directory {}", dir.display()), e))
}

pub fn open_for_append(path: &Path) -> Result<File, LogError> {
    OpenOptions::new()
        .append(true)
        .open(path)
        .map_err(|e| LogError::io(format!("opening log segment {} for append", path.display()), e))
}
