//! Restores LSN order across shards and drives every sink.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, select};
use trackwire_pipeline::ShardOutput;

use crate::{Command, LoggedCommand, OrderedCommand, Redactions, Sink, SinkError};

/// A command with the channel its outcome goes back on: per sink, `Ok` or what failed.
type Request = (Command, tokio::sync::oneshot::Sender<Result<(), String>>);

/// Hands [`Command`]s to the sinks thread. Cheap to clone.
#[derive(Clone)]
pub struct CommandSender {
    tx: Sender<Request>,
}

impl CommandSender {
    /// Runs `command` on every sink, after the outputs already delivered, and waits for it.
    /// An error names the sinks that failed; the command is safe to repeat.
    pub async fn run(&self, command: Command) -> Result<(), String> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.tx.send((command, reply)).map_err(|_| "the sinks have stopped".to_owned())?;
        answer.await.map_err(|_| "the sinks stopped before answering".to_owned())?
    }
}

#[derive(Debug, Clone)]
pub struct CoordinatorConfig {
    /// How often sinks are asked to commit what is due.
    pub flush_interval: Duration,
    /// The first LSN the log will replay (outputs start there).
    pub first_lsn: u64,
}

/// Progress of one sink, for `/metrics`, `/healthcheck` and log retention.
#[derive(Debug)]
pub struct SinkProgress {
    pub name: &'static str,
    pub checkpoint: AtomicU64,
    pub errors: AtomicU64,
    pub last_error: std::sync::Mutex<Option<String>>,
    /// Unix ms of the first error of the current run of failures; 0 while the sink is healthy
    /// (a flush that succeeds ends the run).
    pub failing_since_ms: std::sync::atomic::AtomicI64,
}

impl SinkProgress {
    /// How long the sink has been failing without a successful flush in between, at `now_ms`.
    pub fn failing_for_ms(&self, now_ms: i64) -> Option<i64> {
        let since = self.failing_since_ms.load(Ordering::Acquire);
        (since != 0).then(|| now_ms.saturating_sub(since))
    }

    /// How long the sink has been failing, when that is at least `limit_ms` (0: never unhealthy).
    pub fn failing_past(&self, now_ms: i64, limit_ms: i64) -> Option<i64> {
        self.failing_for_ms(now_ms).filter(|ms| limit_ms > 0 && *ms >= limit_ms)
    }

    fn flushed(&self) {
        self.failing_since_ms.store(0, Ordering::Release);
    }
}

pub struct Coordinator {
    sinks: Vec<Box<dyn Sink>>,
    progress: Vec<Arc<SinkProgress>>,
    /// Outputs that arrived before an earlier LSN; shards run side by side, so this stays small.
    reorder: BTreeMap<u64, ShardOutput>,
    next_lsn: u64,
    delivered: Arc<AtomicU64>,
    config: CoordinatorConfig,
    redactions: Redactions,
    commands: (Sender<Request>, Receiver<Request>),
    /// Commands from the log's reader (none for a coordinator fed without one).
    logged: Receiver<OrderedCommand>,
    /// Logged commands by position, waiting for every output before them.
    due: BTreeMap<u64, Vec<Box<dyn LoggedCommand>>>,
    /// Logged commands whose turn came but that did not finish; retried on every flush.
    unfinished: Vec<Unfinished>,
    /// Set when the process stops: a full sink is no longer waited for (see [`Coordinator::stopping`]).
    stopping: Arc<AtomicBool>,
}

/// A logged command part of which failed, and how far it got.
struct Unfinished {
    lsn: u64,
    logged: Box<dyn LoggedCommand>,
    built: Option<Command>,
    carried_out: bool,
}

impl Coordinator {
    pub fn new(sinks: Vec<Box<dyn Sink>>, config: CoordinatorConfig) -> Self {
        Self::with_redactions(sinks, config, Redactions::default())
    }

    /// A coordinator that keeps applying the redactions (erasures, retention cut) recorded
    /// before a restart to outputs replayed from the log.
    pub fn with_redactions(sinks: Vec<Box<dyn Sink>>, config: CoordinatorConfig, redactions: Redactions) -> Self {
        let floor = config.first_lsn.saturating_sub(1);
        let progress = sinks
            .iter()
            .map(|s| {
                Arc::new(SinkProgress {
                    name: s.name(),
                    checkpoint: AtomicU64::new(s.checkpoint().max(floor)),
                    errors: AtomicU64::new(0),
                    last_error: std::sync::Mutex::new(None),
                    failing_since_ms: std::sync::atomic::AtomicI64::new(0),
                })
            })
            .collect();
        Coordinator {
            sinks,
            progress,
            reorder: BTreeMap::new(),
            next_lsn: config.first_lsn.max(1),
            delivered: Arc::new(AtomicU64::new(config.first_lsn.saturating_sub(1))),
            config,
            redactions,
            commands: crossbeam_channel::unbounded(),
            logged: crossbeam_channel::never(),
            due: BTreeMap::new(),
            unfinished: Vec::new(),
            stopping: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Set it when the process stops. From then on a full sink is not waited for: what is still
    /// on its way is buffered past the sink's limit (the queues before it bound that), the last
    /// flush tries once, and whatever a sink whose service is away could not commit stays in the
    /// log, below its checkpoint, for the replay. Without it, stopping while such a sink is full
    /// would wait for the service forever.
    pub fn stopping(&self) -> Arc<AtomicBool> {
        self.stopping.clone()
    }

    /// Carries out the commands the log's reader sends on `commands`. The reader sends each
    /// before the output (or gap) at its position: the coordinator looks for commands before
    /// delivering each output. One whose position is already behind runs at once.
    pub fn with_logged_commands(mut self, commands: Receiver<OrderedCommand>) -> Self {
        self.logged = commands;
        self
    }

    /// Where the API sends erasures and retention runs.
    pub fn commands(&self) -> CommandSender {
        CommandSender { tx: self.commands.0.clone() }
    }

    pub fn progress(&self) -> Vec<Arc<SinkProgress>> {
        self.progress.clone()
    }

    /// Highest LSN handed (in order) to every sink; outputs above it are still in flight.
    pub fn fed_through(&self) -> Arc<AtomicU64> {
        self.delivered.clone()
    }

    /// Runs on its own thread until `input` is closed and drained, then commits everything.
    pub fn spawn(mut self, input: Receiver<ShardOutput>) -> JoinHandle<()> {
        std::thread::Builder::new()
            .name("sinks".into())
            .spawn(move || {
                let mut last_flush = Instant::now();
                let commands = self.commands.1.clone();
                loop {
                    select! {
                        recv(input) -> output => match output {
                            Ok(output) => {
                                self.receive(output);
                                if input.is_empty() {
                                    self.idle();
                                }
                            }
                            Err(_) => break,
                        },
                        recv(commands) -> request => {
                            if let Ok((command, reply)) = request {
                                let _ = reply.send(self.command(&command));
                            }
                        },
                        default(self.config.flush_interval) => {},
                    }
                    if last_flush.elapsed() >= self.config.flush_interval {
                        self.flush(false);
                        last_flush = Instant::now();
                    }
                }
                if !self.reorder.is_empty() {
                    tracing::error!(
                        missing = self.next_lsn,
                        waiting = self.reorder.len(),
                        "pipeline stopped with a gap in the LSN sequence; later outputs stay in the log for replay"
                    );
                }
                self.flush(true);
                tracing::info!(delivered = self.delivered.load(Ordering::Relaxed), "sinks drained and committed");
            })
            .expect("spawn the sinks thread")
    }

    /// Takes one output from a shard: delivered at once when it is the next LSN, else held until
    /// the ones before it arrive.
    pub fn receive(&mut self, output: ShardOutput) {
        self.take_logged_commands();
        if output.lsn != self.next_lsn {
            self.reorder.insert(output.lsn, output);
            return;
        }
        self.deliver(output);
        while let Some(next) = self.reorder.remove(&self.next_lsn) {
            self.deliver(next);
        }
    }

    /// Tells every sink that nothing more is waiting, so outputs held back for grouping move on.
    pub fn idle(&mut self) {
        for sink in &mut self.sinks {
            sink.idle();
        }
    }

    /// Records the command's redaction (so outputs still on their way are stopped too), then has
    /// every sink carry it out.
    fn command(&mut self, command: &Command) -> Result<(), String> {
        match command {
            Command::Erase(erasure) => self.redactions.erase(erasure),
            Command::DropPositions { before_ms, .. } => self.redactions.drop_positions_before(*before_ms),
            Command::Publish(_) => {}
        }
        let mut failed = Vec::new();
        for (sink, progress) in self.sinks.iter_mut().zip(&self.progress) {
            if let Err(err) = sink.command(command) {
                record_error(progress, sink.name(), &err);
                failed.push(format!("{}: {err}", sink.name()));
            }
            publish(progress, sink.as_ref(), self.config.first_lsn);
        }
        if failed.is_empty() { Ok(()) } else { Err(failed.join("; ")) }
    }

    fn deliver(&mut self, mut output: ShardOutput) {
        self.redactions.apply(&mut output);
        let output = Arc::new(output);
        for (sink, progress) in self.sinks.iter_mut().zip(&self.progress) {
            wait_until_not_full(sink.as_mut(), progress, &self.stopping, self.config.first_lsn);
            sink.accept_shared(&output);
        }
        self.next_lsn = output.lsn + 1;
        self.delivered.store(output.lsn, Ordering::Release);
        self.run_due_commands();
    }

    /// Moves what the reader sent into `due`. Before each output: the reader sends a command
    /// before the gap at its position, so it is here when that gap is delivered.
    fn take_logged_commands(&mut self) {
        while let Ok(OrderedCommand { lsn, command }) = self.logged.try_recv() {
            self.due.entry(lsn).or_default().push(command);
        }
    }

    /// Runs the logged commands every output before which has been delivered.
    fn run_due_commands(&mut self) {
        while let Some(entry) = self.due.first_entry() {
            if *entry.key() >= self.next_lsn {
                break;
            }
            let (lsn, commands) = entry.remove_entry();
            for logged in commands {
                self.carry_out(Unfinished { lsn, logged, built: None, carried_out: false });
            }
        }
    }

    /// Takes a logged command as far as it goes; what fails waits for the next flush.
    fn carry_out(&mut self, mut step: Unfinished) {
        let result = (|| {
            if step.built.is_none() {
                match step.logged.build()? {
                    Some(command) => step.built = Some(command),
                    None => return Ok(()),
                }
            }
            if !step.carried_out {
                let command = step.built.as_ref().expect("built above");
                self.command(command)?;
                step.carried_out = true;
            }
            step.logged.done()
        })();
        if let Err(error) = result {
            tracing::warn!(lsn = step.lsn, %error, "a command from the log is not done yet; retried on the next flush");
            self.unfinished.push(step);
        }
    }

    /// Asks every sink to commit what is due (everything when `force`) and publishes the
    /// checkpoints. A sink that fails keeps its buffer and is asked again next time.
    pub fn flush(&mut self, force: bool) {
        // Commands whose position is already behind (their records gone from the log) run here.
        self.take_logged_commands();
        self.run_due_commands();
        for step in std::mem::take(&mut self.unfinished) {
            self.carry_out(step);
        }
        let now = Instant::now();
        for sink in &mut self.sinks {
            sink.begin_flush(now, force);
        }
        for (sink, progress) in self.sinks.iter_mut().zip(&self.progress) {
            match sink.flush(now, force) {
                Ok(()) => progress.flushed(),
                Err(err) => record_error(progress, sink.name(), &err),
            }
            publish(progress, sink.as_ref(), self.config.first_lsn);
        }
    }
}

/// Longest pause between two flushes of a full sink.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Flushes a full sink, backing off while it fails, until it has room: the coordinator (and so
/// the pipeline, then ingest) waits for a sink whose service is away instead of dropping or
/// buffering without bound.
fn wait_until_not_full(sink: &mut dyn Sink, progress: &SinkProgress, stopping: &AtomicBool, first_lsn: u64) {
    let mut backoff = Duration::from_millis(10);
    while sink.is_full() && !stopping.load(Ordering::Acquire) {
        match sink.flush(Instant::now(), false) {
            Ok(()) => progress.flushed(),
            Err(err) => record_error(progress, sink.name(), &err),
        }
        publish(progress, sink, first_lsn);
        if sink.is_full() {
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}

/// Publishes how far `sink` holds every output. Everything before the log's first replayed LSN
/// counts as held: the log released it only once every sink had it. A sink with nothing durable
/// to show for it (a workouts table that saw only unfinished workouts commits no version) would
/// otherwise report a position behind the log's start until its next row, and look stuck.
fn publish(progress: &SinkProgress, sink: &dyn Sink, first_lsn: u64) {
    progress.checkpoint.store(sink.checkpoint().max(first_lsn.saturating_sub(1)), Ordering::Release);
}

fn record_error(progress: &SinkProgress, name: &str, err: &SinkError) {
    tracing::warn!(sink = name, %err, "sink error; what it holds is kept and retried on the next flush");
    // The error first, then the count: whoever sees the count (/healthcheck reads it first) also
    // sees what the error was.
    if let Ok(mut last) = progress.last_error.lock() {
        *last = Some(err.to_string());
    }
    let now_ms = chrono::Utc::now().timestamp_millis().max(1);
    let _ = progress.failing_since_ms.compare_exchange(0, now_ms, Ordering::AcqRel, Ordering::Relaxed);
    progress.errors.fetch_add(1, Ordering::Release);
}
