//! Commands that come through the log: each runs at its position (after every output before it,
//! before any after it), is retried until every sink has carried it out and its `done` has been
//! recorded, and is reported done exactly once.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use trackwire_pipeline::ShardOutput;
use trackwire_sinks::{Command, Coordinator, CoordinatorConfig, LoggedCommand, OrderedCommand, Sink, SinkError};

/// What a sink saw, in order: an output's LSN, or a command (by its `before_ms`).
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Output(u64),
    Command(i64),
}

/// A sink whose first `failures` commands fail.
#[derive(Clone)]
struct Recording {
    seen: Arc<Mutex<Vec<Seen>>>,
    failures: Arc<Mutex<usize>>,
}

impl Sink for Recording {
    fn name(&self) -> &'static str {
        "recording"
    }
    fn accept(&mut self, out: &ShardOutput) {
        self.seen.lock().unwrap().push(Seen::Output(out.lsn));
    }
    fn flush(&mut self, _: Instant, _: bool) -> Result<(), SinkError> {
        Ok(())
    }
    fn checkpoint(&self) -> u64 {
        0
    }
    fn command(&mut self, command: &Command) -> Result<(), SinkError> {
        let mut failures = self.failures.lock().unwrap();
        if *failures > 0 {
            *failures -= 1;
            return Err(SinkError::Store("injected: the command failed".into()));
        }
        let Command::DropPositions { before_ms, .. } = command else { unreachable!() };
        self.seen.lock().unwrap().push(Seen::Command(*before_ms));
        Ok(())
    }
}

/// A logged command whose `build` and `done` fail a given number of times first.
struct Logged {
    before_ms: i64,
    build_failures: usize,
    done_failures: usize,
    done: Arc<Mutex<Vec<i64>>>,
}

impl LoggedCommand for Logged {
    fn build(&mut self) -> Result<Option<Command>, String> {
        if self.build_failures > 0 {
            self.build_failures -= 1;
            return Err("injected: the store is away".into());
        }
        Ok(Some(Command::DropPositions { from_ms: 0, before_ms: self.before_ms }))
    }
    fn done(&mut self) -> Result<(), String> {
        if self.done_failures > 0 {
            self.done_failures -= 1;
            return Err("injected: the record was not written".into());
        }
        self.done.lock().unwrap().push(self.before_ms);
        Ok(())
    }
}

fn output(lsn: u64) -> ShardOutput {
    ShardOutput { lsn, ..ShardOutput::default() }
}

#[test]
fn a_logged_command_runs_at_its_position_and_is_retried_until_done() {
    let sink = Recording { seen: Arc::default(), failures: Arc::new(Mutex::new(0)) };
    let done = Arc::new(Mutex::new(Vec::new()));
    let (commands, logged) = crossbeam_channel::unbounded();
    let mut coordinator = Coordinator::new(
        vec![Box::new(sink.clone())],
        CoordinatorConfig { flush_interval: Duration::from_secs(3600), first_lsn: 1 },
    )
    .with_logged_commands(logged);
    let command = |lsn: u64, build_failures, done_failures| OrderedCommand {
        lsn,
        command: Box::new(Logged { before_ms: lsn as i64, build_failures, done_failures, done: done.clone() }),
    };
    // Positions 3 and 6 are commands (their gap outputs arrive like any other position), and
    // the outputs arrive out of order, as shards deliver them.
    commands.send(command(3, 0, 0)).unwrap();
    commands.send(command(6, 1, 1)).unwrap();
    for lsn in [2, 1, 4, 3, 5, 7, 6] {
        coordinator.receive(output(lsn));
    }
    let at_positions = vec![
        Seen::Output(1),
        Seen::Output(2),
        Seen::Output(3),
        Seen::Command(3),
        Seen::Output(4),
        Seen::Output(5),
        Seen::Output(6),
        Seen::Output(7),
    ];
    assert_eq!(*sink.seen.lock().unwrap(), at_positions, "the command at 6 failed to build: not run yet");
    assert_eq!(*done.lock().unwrap(), vec![3]);

    *sink.failures.lock().unwrap() = 1;
    coordinator.flush(false); // builds 6; the sink refuses it
    assert_eq!(*done.lock().unwrap(), vec![3]);
    coordinator.flush(false); // the sink carries it out; recording it fails
    coordinator.flush(false); // recorded: the sink is not asked again
    coordinator.flush(false);
    let mut expected = at_positions;
    expected.push(Seen::Command(6));
    assert_eq!(*sink.seen.lock().unwrap(), expected);
    assert_eq!(*done.lock().unwrap(), vec![3, 6], "each command is reported done once");

    // One whose position is behind (its record no longer in the log) runs at once.
    commands.send(command(2, 0, 0)).unwrap();
    coordinator.flush(false);
    assert_eq!(*done.lock().unwrap(), vec![3, 6, 2]);
}

/// A sink whose service is away: always full, every flush fails.
struct Away;

impl Sink for Away {
    fn name(&self) -> &'static str {
        "away"
    }
    fn accept(&mut self, _: &ShardOutput) {}
    fn flush(&mut self, _: Instant, _: bool) -> Result<(), SinkError> {
        Err(SinkError::Store("injected: the service is away".into()))
    }
    fn checkpoint(&self) -> u64 {
        0
    }
    fn is_full(&self) -> bool {
        true
    }
}

#[test]
fn stopping_does_not_wait_for_a_full_sink_whose_service_is_away() {
    let coordinator = Coordinator::new(
        vec![Box::new(Away)],
        CoordinatorConfig { flush_interval: Duration::from_millis(10), first_lsn: 1 },
    );
    let stopping = coordinator.stopping();
    let (tx, rx) = crossbeam_channel::bounded(1);
    let sinks = coordinator.spawn(rx);
    tx.send(output(1)).unwrap(); // the coordinator now waits for room in the sink
    std::thread::sleep(Duration::from_millis(50));
    assert!(!sinks.is_finished(), "a full sink is waited for while running");
    stopping.store(true, std::sync::atomic::Ordering::Release);
    tx.send(output(2)).unwrap();
    drop(tx);
    let (done_tx, done_rx) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        let _ = done_tx.send(sinks.join().is_ok());
    });
    // Generous: the back-off sleeps at most a second between looks at the flag.
    assert_eq!(done_rx.recv_timeout(Duration::from_secs(30)), Ok(true), "the drain finished");
}
