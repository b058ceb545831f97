//! A file written straight to the object store as it is encoded: what compaction uses for the
//! large files it merges settled partitions into, so memory holds a part or two, never the file.

use std::io;
use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};

/// Parts uploaded at once; a writer waits for one to finish before it queues more.
const PARTS_IN_FLIGHT: usize = 2;

/// Bytes of one file on their way to `path`. Up to one part they stay in memory and go up with a
/// single put at [`StreamedUpload::finish`]; past it a multipart upload starts and every full
/// part is sent as it fills. The object appears only when the upload completes, whole; an upload
/// dropped before that is aborted, so nothing partial is ever visible.
pub(crate) struct StreamedUpload<'a> {
    runtime: &'a tokio::runtime::Runtime,
    store: Arc<dyn ObjectStore>,
    path: Path,
    part_bytes: usize,
    pending: Vec<u8>,
    upload: Option<WriteMultipart>,
    written: u64,
}

impl<'a> StreamedUpload<'a> {
    /// `part_bytes` must be at least S3's 5 MiB minimum part size when the store is S3.
    pub(crate) fn new(
        runtime: &'a tokio::runtime::Runtime,
        store: Arc<dyn ObjectStore>,
        path: Path,
        part_bytes: usize,
    ) -> Self {
        StreamedUpload {
            runtime,
            store,
            path,
            part_bytes: part_bytes.max(1),
            pending: Vec::new(),
            upload: None,
            written: 0,
        }
    }

    /// Sends what is pending as parts, starting the multipart upload first if needed, and waits
    /// until few enough parts are in flight.
    fn send_pending(&mut self) -> io::Result<()> {
        if self.upload.is_none() {
            let upload =
                self.runtime.block_on(self.store.put_multipart(&self.path)).map_err(|e| self.failed("start", e))?;
            self.upload = Some(WriteMultipart::new_with_chunk_size(upload, self.part_bytes));
        }
        let bytes = Bytes::from(std::mem::take(&mut self.pending));
        let Some(upload) = self.upload.as_mut() else { return Ok(()) };
        {
            // Parts are sent by tasks of this runtime, run while it waits below.
            let _context = self.runtime.enter();
            upload.put(bytes);
        }
        let waited = self.runtime.block_on(upload.wait_for_capacity(PARTS_IN_FLIGHT));
        waited.map_err(|e| self.failed("send a part of", e))
    }

    /// Completes the upload: the object appears, whole. Returns its size.
    pub(crate) fn finish(mut self) -> io::Result<u64> {
        match self.upload.take() {
            None => {
                let payload = PutPayload::from(std::mem::take(&mut self.pending));
                self.runtime.block_on(self.store.put(&self.path, payload)).map_err(|e| self.failed("put", e))?;
            }
            Some(mut upload) => {
                // `put` sends a part as soon as one is full, from a task of the runtime: the
                // remainder it kept and these bytes together may fill one here.
                let _context = self.runtime.enter();
                upload.put(Bytes::from(std::mem::take(&mut self.pending)));
                let completed = self.runtime.block_on(upload.finish());
                completed.map_err(|e| self.failed("complete the upload of", e))?;
            }
        }
        Ok(self.written)
    }

    fn failed(&self, operation: &str, error: object_store::Error) -> io::Error {
        io::Error::other(format!("could not {operation} {}: {error}", self.path))
    }
}

impl io::Write for StreamedUpload<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        self.written += buf.len() as u64;
        if self.pending.len() >= self.part_bytes {
            self.send_pending()?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for StreamedUpload<'_> {
    fn drop(&mut self) {
        if let Some(upload) = self.upload.take() {
            // Not finished: the parts sent so far are discarded (S3 keeps them until aborted).
            let _context = self.runtime.enter();
            if let Err(err) = self.runtime.block_on(upload.abort()) {
                tracing::warn!(path = %self.path, error = %err, "aborting an unfinished multipart upload failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use object_store::memory::InMemory;

    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    }

    fn stored(runtime: &tokio::runtime::Runtime, store: &InMemory, path: &Path) -> Option<Vec<u8>> {
        runtime.block_on(async { Some(store.get(path).await.ok()?.bytes().await.ok()?.to_vec()) })
    }

    #[test]
    fn a_file_larger_than_a_part_arrives_whole_and_only_when_finished() {
        let runtime = runtime();
        let store = Arc::new(InMemory::new());
        let path = Path::from("t/big.parquet");
        let data: Vec<u8> = (0..10_000u32).flat_map(|i| i.to_le_bytes()).collect();
        let mut upload = StreamedUpload::new(&runtime, store.clone(), path.clone(), 4096);
        for chunk in data.chunks(777) {
            upload.write_all(chunk).unwrap();
        }
        assert!(upload.upload.is_some(), "a multipart upload started");
        assert!(upload.pending.len() < 4096, "full parts were sent, not kept");
        assert_eq!(stored(&runtime, &store, &path), None, "nothing visible before the upload completes");
        assert_eq!(upload.finish().unwrap(), data.len() as u64);
        assert_eq!(stored(&runtime, &store, &path), Some(data));
    }

    #[test]
    fn finishing_may_send_a_full_part_and_needs_no_runtime_of_the_caller() {
        // The remainder kept by the multipart writer plus the bytes still pending fill a whole
        // part at `finish`: that part is sent there, from a thread outside any runtime (as the
        // settler's is), which once panicked with "no reactor running".
        let runtime = runtime();
        let store = Arc::new(InMemory::new());
        let path = Path::from("t/remainder.parquet");
        let mut upload = StreamedUpload::new(&runtime, store.clone(), path.clone(), 4096);
        upload.write_all(&[1; 5000]).unwrap();
        upload.write_all(&[2; 4000]).unwrap();
        assert_eq!(upload.pending.len(), 4000, "under a part: still pending");
        assert_eq!(upload.finish().unwrap(), 9000);
        let mut expected = vec![1; 5000];
        expected.extend([2; 4000]);
        assert_eq!(stored(&runtime, &store, &path), Some(expected));
    }

    #[test]
    fn a_small_file_is_one_put_and_an_unfinished_one_never_appears() {
        let runtime = runtime();
        let store = Arc::new(InMemory::new());
        let small = Path::from("t/small.parquet");
        let mut upload = StreamedUpload::new(&runtime, store.clone(), small.clone(), 4096);
        upload.write_all(b"PAR1").unwrap();
        assert!(upload.upload.is_none());
        upload.finish().unwrap();
        assert_eq!(stored(&runtime, &store, &small), Some(b"PAR1".to_vec()));

        let dropped = Path::from("t/dropped.parquet");
        let mut upload = StreamedUpload::new(&runtime, store.clone(), dropped.clone(), 4096);
        upload.write_all(&[7; 10_000]).unwrap();
        drop(upload);
        assert_eq!(stored(&runtime, &store, &dropped), None);
    }
}
