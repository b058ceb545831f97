//! A response body that blocking code writes while the client reads it.
//!
//! The writer hands the body over in chunks of at most [`CHUNK_BYTES`] through a channel of
//! [`CHUNKS_IN_FLIGHT`], and waits while the client is behind, so a body of any size costs the
//! server a few chunks of memory. When the client goes away, or takes nothing for
//! [`CLIENT_STALL`], the next write fails and the writer stops. The status line has left by the
//! time an error can happen, so an error cuts the body short: the stream ends with it and the
//! connection closes before the body's end, which a client sees as a broken transfer, never as a
//! complete-looking file.

use std::io::{self, Write};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use tokio::sync::mpsc;

/// The largest chunk the client is handed.
pub const CHUNK_BYTES: usize = 64 << 10;

/// Chunks written ahead of the client before the writer waits.
const CHUNKS_IN_FLIGHT: usize = 4;

/// How long the writer waits for the client to take a chunk before it gives up: a client that
/// stopped reading without closing its connection would otherwise hold the writer's thread (and
/// what it holds) for as long as the connection lives.
pub const CLIENT_STALL: Duration = Duration::from_secs(60);

/// A body that `write` produces on a blocking thread; `what` names it in the log when it fails.
pub fn body_written_by<F>(what: &'static str, write: F) -> Body
where
    F: FnOnce(&mut ChunkWriter) -> io::Result<()> + Send + 'static,
{
    body_written_by_within(what, CLIENT_STALL, write)
}

/// [`body_written_by`], giving up on a client that takes no chunk for `stall`.
pub fn body_written_by_within<F>(what: &'static str, stall: Duration, write: F) -> Body
where
    F: FnOnce(&mut ChunkWriter) -> io::Result<()> + Send + 'static,
{
    let (sender, mut chunks) = mpsc::channel(CHUNKS_IN_FLIGHT);
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let mut writer = ChunkWriter { sender, buffer: Vec::with_capacity(CHUNK_BYTES), runtime, stall };
        match write(&mut writer).and_then(|()| writer.flush()) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                tracing::debug!(body = what, "the client stopped reading");
            }
            Err(e) => {
                tracing::warn!(body = what, error = %e, "a streamed response was cut short");
                let _ = writer.send(Err(e));
            }
        }
    });
    Body::from_stream(futures::stream::poll_fn(move |cx| chunks.poll_recv(cx)))
}

/// The writing end of [`body_written_by`].
pub struct ChunkWriter {
    sender: mpsc::Sender<io::Result<Bytes>>,
    buffer: Vec<u8>,
    runtime: tokio::runtime::Handle,
    stall: Duration,
}

impl ChunkWriter {
    fn send_buffer(&mut self) -> io::Result<()> {
        let chunk = Bytes::from(std::mem::replace(&mut self.buffer, Vec::with_capacity(CHUNK_BYTES)));
        self.send(Ok(chunk))
    }

    /// Hands `item` to the client's side once there is room, waiting at most `stall`.
    fn send(&self, item: io::Result<Bytes>) -> io::Result<()> {
        match self.runtime.block_on(tokio::time::timeout(self.stall, self.sender.send(item))) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(io::Error::new(io::ErrorKind::BrokenPipe, "the client stopped reading")),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the client took nothing for {} s", self.stall.as_secs_f64()),
            )),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A client that stops reading without closing its connection must not hold the writer's
    /// thread for ever.
    #[tokio::test]
    async fn a_writer_gives_up_on_a_client_that_stopped_reading() {
        let (done, finished) = tokio::sync::oneshot::channel();
        let body = body_written_by_within("a test body", Duration::from_millis(200), move |out| {
            let written = (0..1_000).try_for_each(|_| out.write_all(&[7; CHUNK_BYTES]));
            let _ = done.send(written);
            Ok(())
        });
        let outcome = tokio::time::timeout(Duration::from_secs(30), finished).await;
        let written = outcome.expect("the writer still waits for a client that reads nothing").unwrap();
        assert_eq!(written.unwrap_err().kind(), io::ErrorKind::TimedOut);
        drop(body);
    }
}
