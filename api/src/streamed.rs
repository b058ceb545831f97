//! A response body that blocking code writes while the client reads it.
//!
//! The writer hands the body over in chunks of at most [`CHUNK_BYTES`] through a channel of
//! [`CHUNKS_IN_FLIGHT`], and waits while the client is behind, so a body of any size costs the
//! server a few chunks of memory. When the client goes away the next write fails and the writer
//! stops. The status line has left by the time an error can happen, so an error cuts the body
//! short: the stream ends with it and the connection closes before the body's end, which a client
//! sees as a broken transfer, never as a complete-looking file.

use std::io::{self, Write};

use axum::body::Body;
use bytes::Bytes;
use tokio::sync::mpsc;

/// The largest chunk the client is handed.
pub const CHUNK_BYTES: usize = 64 << 10;

/// Chunks written ahead of the client before the writer waits.
const CHUNKS_IN_FLIGHT: usize = 4;

/// A body that `write` produces on a blocking thread; `what` names it in the log when it fails.
pub fn body_written_by<F>(what: &'static str, write: F) -> Body
where
    F: FnOnce(&mut ChunkWriter) -> io::Result<()> + Send + 'static,
{
    let (sender, mut chunks) = mpsc::channel(CHUNKS_IN_FLIGHT);
    tokio::task::spawn_blocking(move || {
        let mut writer = ChunkWriter { sender, buffer: Vec::with_capacity(CHUNK_BYTES) };
        match write(&mut writer).and_then(|()| writer.flush()) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                tracing::debug!(body = what, "the client stopped reading");
            }
            Err(e) => {
                tracing::warn!(body = what, error = %e, "a streamed response was cut short");
                let _ = writer.sender.blocking_send(Err(e));
            }
        }
    });
    Body::from_stream(futures::stream::poll_fn(move |cx| chunks.poll_recv(cx)))
}

/// The writing end of [`body_written_by`].
pub struct ChunkWriter {
    sender: mpsc::Sender<io::Result<Bytes>>,
    buffer: Vec<u8>,
}

impl ChunkWriter {
    fn send_buffer(&mut self) -> io::Result<()> {
        let chunk = Bytes::from(std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK_BYTES)));
        self.sender
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client stopped reading"))
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        // A partial write keeps every chunk within its size; `write_all` comes back for the rest.
        let taken = data.len().min(CHUNK_BYTES - self.buffer.len());
        self.buffer.extend_from_slice(&data[..taken]);
        if self.buffer.len() == CHUNK_BYTES {
            self.send_buffer()?;
        }
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() { Ok(()) } else { self.send_buffer() }
    }
}
