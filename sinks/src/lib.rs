//! # trackwire-sinks: delivering the pipeline's output, exactly once
//!
//! **In:** [`ShardOutput`](trackwire_pipeline::ShardOutput)s from the pipeline shards, in any order
//! across shards. **Out:** committed files and rows: the Parquet lake (`points/`, `workouts/`) on an
//! `object_store`, the workout-event log (JSON lines), and the embedded read store the API serves;
//! plus, per sink, a checkpoint: the LSN through which everything is committed, which lets the log
//! delete what every sink has delivered.
//!
//! The [`Coordinator`] puts outputs back into LSN order and feeds every [`Sink`] the same ordered
//! stream. Each sink recovers its own progress from what it committed (file names, an LSN stored
//! in the same transaction, the last line of a file), so a crash between "committed" and
//! "checkpointed" cannot duplicate anything: on replay a sink skips what it already holds.

mod command;
mod coordinator;
mod error;
pub mod events;
pub mod kafka;
pub mod lake;
pub mod originals;
mod own_thread;
pub mod read_store;
mod unheld;

pub use command::{
    Command, ErasedWorkout, Erasure, ErasureScope, LoggedCommand, OrderedCommand, PublishedEvent, Redactions,
};
pub use coordinator::{CommandSender, Coordinator, CoordinatorConfig, SinkProgress};
pub use error::SinkError;
pub use own_thread::OwnThread;

use std::sync::Arc;
use std::time::Instant;

use trackwire_pipeline::ShardOutput;

/// A destination for the pipeline's output.
///
/// The contract that makes an ack mean "delivered exactly once":
/// - `accept` only takes an output into the sink's buffer. It cannot fail, so an output the
///   coordinator hands over is never dropped on an error path; whatever can fail (IO, and the
///   encoding a sink may do early to bound its memory) is reported by `flush`.
/// - `flush` does the IO. It is idempotent: after a failure it is called again later and writes
///   the same content again (a torn or partial write is cut or overwritten first), until it
///   succeeds or the process stops and the log replays.
/// - `checkpoint` never passes an output the sink does not hold durably, so the log keeps (and
///   replays after a restart) everything not yet committed.
///
/// The coordinator calls `accept` with every output in strictly increasing, gap-free LSN order,
/// starting at the log's first retained LSN (replayed outputs included: the sink skips what it
/// has already committed), and `flush` periodically and at shutdown.
pub trait Sink: Send {
    fn name(&self) -> &'static str;
    /// Buffers one output. Must not block on IO; heavy work belongs in `flush`.
    fn accept(&mut self, output: &ShardOutput);
    /// [`Sink::accept`] of an output the coordinator shares between its sinks: a sink that
    /// hands it to another thread ([`OwnThread`]) keeps the `Arc` instead of copying the output.
    fn accept_shared(&mut self, output: &Arc<ShardOutput>) {
        self.accept(output);
    }
    /// Starts the next [`Sink::flush`] (with the same arguments) without waiting for it, so the
    /// coordinator can start every sink's flush before it waits for the first. Sinks that flush
    /// on the caller's thread keep the default, which does nothing.
    fn begin_flush(&mut self, _now: Instant, _force: bool) {}
    /// The coordinator has nothing more to deliver for now. A sink that holds outputs back to
    /// pass them on in groups passes on what it holds; the others keep the default.
    fn idle(&mut self) {}
    /// Commits what is due (by size or age), or everything when `force`.
    fn flush(&mut self, now: Instant, force: bool) -> Result<(), SinkError>;
    /// Every output with LSN ≤ this is committed (0: nothing yet).
    fn checkpoint(&self) -> u64;
    /// True while the sink buffers as much as it may: the coordinator then flushes it (retrying
    /// with a back-off) before handing it anything more, which backs up the pipeline and then
    /// ingest instead of growing memory while a service is away.
    fn is_full(&self) -> bool {
        false
    }
    /// Carries out a [`Command`] on what the sink holds, committed or buffered. Sinks that hold
    /// nothing a command touches keep the default.
    fn command(&mut self, _command: &Command) -> Result<(), SinkError> {
        Ok(())
    }
}
