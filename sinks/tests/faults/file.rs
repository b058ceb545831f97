//! Event-log files whose appends fail part-way (a disk that fills up) and whose fsync fails.

use std::fs::OpenOptions;
use std::path::Path;

use trackwire_sinks::events::{AppendFile, OpenAppend};

use super::{Fault, Faults};

pub struct FaultyFile {
    file: std::fs::File,
    faults: Faults,
}

fn injected() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::StorageFull, "injected fault: no space left on device")
}

impl AppendFile for FaultyFile {
    fn append(&mut self, data: &[u8]) -> std::io::Result<()> {
        match self.faults.draw() {
            Fault::Before => Err(injected()),
            Fault::After => {
                // Part of the data reached the file before the disk filled.
                let cut = (self.faults.next() as usize) % data.len().max(1);
                std::io::Write::write_all(&mut self.file, &data[..cut])?;
                Err(injected())
            }
            Fault::None => std::io::Write::write_all(&mut self.file, data),
        }
    }

    fn sync(&mut self) -> std::io::Result<()> {
        match self.faults.draw() {
            Fault::None => self.file.sync_data(),
            _ => Err(std::io::Error::other("injected fault: fsync failed")),
        }
    }

    fn truncate(&mut self, len: u64) -> std::io::Result<()> {
        self.file.set_len(len)
    }
}

/// Opens event-log files through [`FaultyFile`].
pub fn opener(faults: Faults) -> OpenAppend {
    Box::new(move |path: &Path| {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Box::new(FaultyFile { file, faults: faults.clone() }) as Box<dyn AppendFile>)
    })
}
