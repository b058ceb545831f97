//! The event log's commit mark: which file appends go to, how long it is committed, and through
//! which LSN. Two checksummed slots written in turn, each commit one write and one `fdatasync`: a
//! write torn by a crash spoils only the slot it was writing, and the other still holds the
//! previous commit (which is all that was reported committed then).

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::SinkError;

/// Beside the event files.
pub const MARK_FILE: &str = "events.commit";

const SLOT_BYTES: u64 = 64;

/// One commit: events file `events-<file_number>.jsonl` holds `len` committed bytes, and the log
/// is complete through `lsn`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    pub file_number: u64,
    pub len: u64,
    pub lsn: u64,
}

pub struct MarkFile {
    file: File,
    /// Sequence number of the newest valid slot (0: none yet).
    seq: u64,
}

impl MarkFile {
    /// Opens (creating, durably, if missing) the mark in `dir` and reads its newest commit.
    pub fn open(dir: &Path) -> Result<(MarkFile, Option<Mark>), SinkError> {
        let path = dir.join(MARK_FILE);
        let io = |e| SinkError::io(format!("opening {}", path.display()), e);
        let existed = path.exists();
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path).map_err(io)?;
        if !existed {
            file.sync_all().map_err(io)?;
            File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
        }
        let mut newest: Option<(u64, Mark)> = None;
        for slot in 0..2 {
            let mut bytes = [0u8; SLOT_BYTES as usize];
            match file.read_exact_at(&mut bytes, slot * SLOT_BYTES) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => continue,
                Err(e) => return Err(io(e)),
            }
            if let Some((seq, mark)) = decode(&bytes)
                && newest.is_none_or(|(best, _)| seq > best)
            {
                newest = Some((seq, mark));
            }
        }
        let seq = newest.map_or(0, |(seq, _)| seq);
        Ok((MarkFile { file, seq }, newest.map(|(_, mark)| mark)))
    }

    /// Records `mark` durably, in the slot the newest commit is not in.
    pub fn save(&mut self, mark: Mark) -> Result<(), SinkError> {
        let seq = self.seq + 1;
        let io = |e| SinkError::io(format!("writing {MARK_FILE}"), e);
        self.file.write_all_at(&encode(seq, mark), (seq % 2) * SLOT_BYTES).map_err(io)?;
        self.file.sync_data().map_err(io)?;
        self.seq = seq;
        Ok(())
    }
}

fn encode(seq: u64, mark: Mark) -> [u8; SLOT_BYTES as usize] {
    let mut out = [0u8; SLOT_BYTES as usize];
    for (i, value) in [seq, mark.file_number, mark.len, mark.lsn].into_iter().enumerate() {
        out[i * 8..i * 8 + 8].copy_from_slice(&value.to_le_bytes());
    }
    let crc = crc32fast::hash(&out[..32]);
    out[32..36].copy_from_slice(&crc.to_le_bytes());
    out
}

fn decode(bytes: &[u8; SLOT_BYTES as usize]) -> Option<(u64, Mark)> {
    let crc = u32::from_le_bytes(bytes[32..36].try_into().ok()?);
    let word = |i: usize| u64::from_le_bytes(bytes[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
    (crc == crc32fast::hash(&bytes[..32]) && word(0) > 0)
        .then(|| (word(0), Mark { file_number: word(1), len: word(2), lsn: word(3) }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_intact_slot_wins_and_a_torn_one_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let (mut marks, none) = MarkFile::open(dir.path()).unwrap();
        assert_eq!(none, None);
        let first = Mark { file_number: 1, len: 10, lsn: 3 };
        let second = Mark { file_number: 1, len: 25, lsn: 7 };
        marks.save(first).unwrap();
        marks.save(second).unwrap();
        assert_eq!(MarkFile::open(dir.path()).unwrap().1, Some(second));
        // A torn third write (into the first commit's slot) leaves the second standing.
        let path = dir.path().join(MARK_FILE);
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.write_all_at(&[0xff; 20], SLOT_BYTES).unwrap();
        assert_eq!(MarkFile::open(dir.path()).unwrap().1, Some(second));
    }
}
