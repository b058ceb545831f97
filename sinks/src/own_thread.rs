//! A sink on a thread of its own, so that the sinks' work runs side by side instead of one
//! after another on the coordinator's thread.
//!
//! Profiled under offline uploads, the coordinator's thread was the gateway's bottleneck: one
//! core busy encoding Parquet, then the read store's chunks, then writing each, while the other
//! core waited. [`OwnThread`] is itself a [`Sink`], so the coordinator and the contract are
//! unchanged: outputs reach the inner sink in the same order (a channel keeps it), `flush` and
//! `command` return the inner sink's own result, and the checkpoint is the inner sink's, published
//! after each step. Only `accept` changes character: it queues the shared output and returns, and
//! the queue is bounded, so a slow sink still holds the coordinator back instead of growing memory.
//!
//! Outputs travel in groups: each message wakes the sink's thread, and with live 5-sample batches
//! the wake-ups (one per output per sink) were a large part of the gateway's time. A group goes
//! when it is large enough, when the coordinator has nothing more to deliver ([`Sink::idle`]), and
//! before every flush or command, so no output waits longer than the coordinator's next idle
//! moment.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use trackwire_pipeline::ShardOutput;

use crate::{Command, Sink, SinkError};

/// Groups queued per sink: enough to keep its thread busy while the coordinator flushes the
/// others, few enough that the queue stays near 10 MB (a group is at most [`GROUP_SAMPLES`] plus
/// one output, at ≈ 170 bytes a sample).
const QUEUE: usize = 8;

/// A group is passed on once it holds this many outputs…
const GROUP_OUTPUTS: usize = 64;
/// …or this many samples (eight 1,000-sample offline batches).
const GROUP_SAMPLES: usize = 8_000;

enum Message {
    Outputs(Vec<Arc<ShardOutput>>),
    Flush { now: Instant, force: bool, reply: Sender<Result<(), SinkError>> },
    Command { command: Command, reply: Sender<Result<(), SinkError>> },
}

/// What the thread publishes for the coordinator after every step.
struct Published {
    checkpoint: AtomicU64,
    full: AtomicBool,
}

pub struct OwnThread {
    name: &'static str,
    queue: Option<Sender<Message>>,
    /// Outputs accepted and not yet passed on, and their samples.
    group: Vec<Arc<ShardOutput>>,
    group_samples: usize,
    published: Arc<Published>,
    /// The answer to a flush started by [`Sink::begin_flush`] and not yet waited for.
    flushing: Option<Receiver<Result<(), SinkError>>>,
    thread: Option<JoinHandle<()>>,
}

impl OwnThread {
    /// Moves `sink` onto a new thread named after it.
    pub fn spawn(mut sink: Box<dyn Sink>) -> Result<OwnThread, SinkError> {
        let name = sink.name();
        let published = Arc::new(Published {
            checkpoint: AtomicU64::new(sink.checkpoint()),
            full: AtomicBool::new(sink.is_full()),
        });
        let (queue, messages) = crossbeam_channel::bounded(QUEUE);
        let shared = published.clone();
        let thread = std::thread::Builder::new()
            .name(format!("sink-{name}"))
            .spawn(move || {
                for message in messages {
                    match message {
                        Message::Outputs(outputs) => {
                            for output in outputs {
                                sink.accept(&output);
                            }
                        }
                        Message::Flush { now, force, reply } => {
                            let _ = reply.send(sink.flush(now, force));
                        }
                        Message::Command { command, reply } => {
                            let _ = reply.send(sink.command(&command));
                        }
                    }
                    shared.checkpoint.store(sink.checkpoint(), Ordering::Release);
                    shared.full.store(sink.is_full(), Ordering::Release);
                }
                // The queue closed without a last flush: a stop (or a crash, in tests) leaves
                // what is not committed in the log, as it would without a thread.
            })
            .map_err(|e| SinkError::io(format!("starting the thread of sink {name}"), e))?;
        Ok(OwnThread {
            name,
            queue: Some(queue),
            group: Vec::with_capacity(GROUP_OUTPUTS),
            group_samples: 0,
            published,
            flushing: None,
            thread: Some(thread),
        })
    }

    /// Passes the held group on to the thread.
    fn pass_on(&mut self) {
        if self.group.is_empty() {
            return;
        }
        let group = std::mem::replace(&mut self.group, Vec::with_capacity(GROUP_OUTPUTS));
        self.group_samples = 0;
        let first = group[0].lsn;
        if self.send(Message::Outputs(group)).is_err() {
            // The thread panicked: its checkpoint no longer moves, so the log keeps these outputs
            // for the replay after a restart, and every flush reports the stop.
            tracing::error!(sink = self.name, from_lsn = first, "sink thread has stopped; outputs left to the log");
        }
    }

    /// Sends a request and waits for the answer.
    fn ask(&self, message: impl FnOnce(Sender<Result<(), SinkError>>) -> Message) -> Result<(), SinkError> {
        let (reply, answer) = crossbeam_channel::bounded(1);
        self.send(message(reply))?;
        self.wait(&answer)
    }

    /// Waits for an answer, or for the thread to end without giving one: a panicking thread
    /// leaves the request in the queue, where nothing would ever drop its reply channel.
    fn wait(&self, answer: &Receiver<Result<(), SinkError>>) -> Result<(), SinkError> {
        loop {
            match answer.recv_timeout(Duration::from_millis(100)) {
                Ok(result) => return result,
                Err(RecvTimeoutError::Timeout) if !self.thread.as_ref().is_none_or(|t| t.is_finished()) => {}
                Err(_) => return Err(self.stopped()),
            }
        }
    }

    fn send(&self, message: Message) -> Result<(), SinkError> {
        let queue = self.queue.as_ref().expect("the queue lives until drop");
        queue.send(message).map_err(|_| self.stopped())
    }

    fn stopped(&self) -> SinkError {
        SinkError::ThreadStopped(self.name)
    }
}

impl Sink for OwnThread {
    fn name(&self) -> &'static str {
        self.name
    }

    fn accept(&mut self, output: &ShardOutput) {
        self.accept_shared(&Arc::new(output.clone()));
    }

    fn accept_shared(&mut self, output: &Arc<ShardOutput>) {
        self.group_samples += output.points.len();
        self.group.push(output.clone());
        if self.group.len() >= GROUP_OUTPUTS || self.group_samples >= GROUP_SAMPLES {
            self.pass_on();
        }
    }

    fn idle(&mut self) {
        self.pass_on();
    }

    fn begin_flush(&mut self, now: Instant, force: bool) {
        if self.flushing.is_some() {
            return;
        }
        self.pass_on();
        let (reply, answer) = crossbeam_channel::bounded(1);
        if self.send(Message::Flush { now, force, reply }).is_ok() {
            self.flushing = Some(answer);
        }
    }

    fn flush(&mut self, now: Instant, force: bool) -> Result<(), SinkError> {
        self.pass_on();
        match self.flushing.take() {
            Some(answer) => self.wait(&answer),
            None => self.ask(|reply| Message::Flush { now, force, reply }),
        }
    }

    fn checkpoint(&self) -> u64 {
        self.published.checkpoint.load(Ordering::Acquire)
    }

    fn is_full(&self) -> bool {
        self.published.full.load(Ordering::Acquire)
    }

    fn command(&mut self, command: &Command) -> Result<(), SinkError> {
        self.pass_on();
        self.ask(|reply| Message::Command { command: command.clone(), reply })
    }
}

impl Drop for OwnThread {
    fn drop(&mut self) {
        // What is held is dropped with the rest of the uncommitted outputs: the log keeps them.
        self.flushing = None;
        self.queue = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Commits on flush; panics when it meets `panic_at`.
    struct Counting {
        fed: u64,
        committed: u64,
        panic_at: u64,
    }

    impl Sink for Counting {
        fn name(&self) -> &'static str {
            "counting"
        }
        fn accept(&mut self, output: &ShardOutput) {
            assert_ne!(output.lsn, self.panic_at, "told to panic here");
            assert_eq!(output.lsn, self.fed + 1, "outputs arrive in order");
            self.fed = output.lsn;
        }
        fn flush(&mut self, _now: Instant, _force: bool) -> Result<(), SinkError> {
            self.committed = self.fed;
            Ok(())
        }
        fn checkpoint(&self) -> u64 {
            self.committed
        }
    }

    fn output(lsn: u64) -> Arc<ShardOutput> {
        Arc::new(ShardOutput { lsn, ..ShardOutput::default() })
    }

    #[test]
    fn outputs_arrive_in_order_and_the_checkpoint_is_the_inner_sink_s() {
        let mut sink = OwnThread::spawn(Box::new(Counting { fed: 0, committed: 0, panic_at: 0 })).unwrap();
        for lsn in 1..=1000 {
            sink.accept_shared(&output(lsn));
        }
        assert!(sink.checkpoint() < 1000 || sink.checkpoint() == 0, "nothing is committed before a flush");
        sink.begin_flush(Instant::now(), false);
        sink.flush(Instant::now(), false).unwrap();
        assert_eq!(sink.checkpoint(), 1000);
    }

    #[test]
    fn a_sink_whose_thread_died_says_so_and_its_checkpoint_stays() {
        let mut sink = OwnThread::spawn(Box::new(Counting { fed: 0, committed: 0, panic_at: 3 })).unwrap();
        sink.accept_shared(&output(1));
        sink.accept_shared(&output(2));
        sink.flush(Instant::now(), false).unwrap();
        assert_eq!(sink.checkpoint(), 2);
        for lsn in 3..=5 {
            sink.accept_shared(&output(lsn));
        }
        let err = sink.flush(Instant::now(), true).unwrap_err();
        assert!(matches!(err, SinkError::ThreadStopped("counting")), "{err}");
        assert!(err.to_string().contains("restart"), "{err}");
        assert_eq!(sink.checkpoint(), 2);
    }
}
