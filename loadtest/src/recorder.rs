//! What a run observed: ack latencies in HDR histograms (whole run and per second), throughput
//! per second, retries and errors by kind, and optionally every acked batch (for checking the lake).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use trackwire_codec::WorkoutId;

/// Latencies are recorded in microseconds, 1 µs to 1 hour, 3 significant digits.
const MAX_LATENCY_US: u64 = 3_600_000_000;

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("static histogram bounds are valid")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Quic,
    Http,
}

/// One second of the run.
pub struct Window {
    pub latency: Histogram<u64>,
    pub batches: u64,
    pub samples: u64,
    pub bytes: u64,
    pub errors: u64,
}

impl Window {
    fn new() -> Window {
        Window { latency: histogram(), batches: 0, samples: 0, bytes: 0, errors: 0 }
    }
}

/// Totals of one transport.
pub struct Totals {
    pub latency: Histogram<u64>,
    /// Only batches due after the ramp-up: the steady state a fleet runs in.
    pub latency_after_ramp: Histogram<u64>,
    pub batches_sent: u64,
    pub batches_acked: u64,
    pub duplicates: u64,
    pub samples_acked: u64,
    pub bytes_acked: u64,
}

impl Totals {
    pub fn empty() -> Totals {
        Totals::new()
    }

    pub fn merge(&mut self, other: &Totals) {
        let _ = self.latency.add(&other.latency);
        let _ = self.latency_after_ramp.add(&other.latency_after_ramp);
        self.batches_sent += other.batches_sent;
        self.batches_acked += other.batches_acked;
        self.duplicates += other.duplicates;
        self.samples_acked += other.samples_acked;
        self.bytes_acked += other.bytes_acked;
    }

    fn new() -> Totals {
        Totals {
            latency: histogram(),
            latency_after_ramp: histogram(),
            batches_sent: 0,
            batches_acked: 0,
            duplicates: 0,
            samples_acked: 0,
            bytes_acked: 0,
        }
    }
}

struct State {
    windows: Vec<Window>,
    totals: BTreeMap<Transport, Totals>,
    errors: BTreeMap<String, u64>,
    retries: BTreeMap<String, u64>,
    last_ack: Option<Instant>,
    acked_log: Option<BufWriter<File>>,
}

/// Shared by every sender task; one short lock per event (thousands per second, not millions).
pub struct Recorder {
    start: Instant,
    ramp_end: Instant,
    state: Mutex<State>,
}

/// An acked batch, as the recorder takes it.
pub struct Ack {
    pub transport: Transport,
    pub workout_id: WorkoutId,
    pub seq: u64,
    pub samples: u32,
    pub bytes: usize,
    pub duplicate: bool,
    /// From the batch's intended send time to its ack.
    pub latency: Duration,
}

impl Recorder {
    pub fn new(start: Instant, ramp_end: Instant, acked_log: Option<&Path>) -> std::io::Result<Recorder> {
        let acked_log = match acked_log {
            Some(path) => Some(BufWriter::new(File::options().create(true).append(true).open(path)?)),
            None => None,
        };
        Ok(Recorder {
            start,
            ramp_end,
            state: Mutex::new(State {
                windows: Vec::new(),
                totals: BTreeMap::new(),
                errors: BTreeMap::new(),
                retries: BTreeMap::new(),
                last_ack: None,
                acked_log,
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panicking sender already failed the run; its half-recorded event does not matter.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn window<'a>(&self, state: &'a mut State, at: Instant) -> &'a mut Window {
        let second = at.saturating_duration_since(self.start).as_secs() as usize;
        while state.windows.len() <= second {
            state.windows.push(Window::new());
        }
        &mut state.windows[second]
    }

    pub fn sent(&self, transport: Transport) {
        self.lock().totals.entry(transport).or_insert_with(Totals::new).batches_sent += 1;
    }

    pub fn acked(&self, ack: Ack) {
        let now = Instant::now();
        let micros = (ack.latency.as_micros() as u64).clamp(1, MAX_LATENCY_US);
        let mut state = self.lock();
        state.last_ack = Some(now);
        let window = self.window(&mut state, now);
        window.latency.saturating_record(micros);
        window.batches += 1;
        if !ack.duplicate {
            window.samples += u64::from(ack.samples);
        }
        window.bytes += ack.bytes as u64;
        let totals = state.totals.entry(ack.transport).or_insert_with(Totals::new);
        totals.latency.saturating_record(micros);
        if now.checked_sub(ack.latency).is_some_and(|due| due >= self.ramp_end) {
            totals.latency_after_ramp.saturating_record(micros);
        }
        totals.batches_acked += 1;
        totals.bytes_acked += ack.bytes as u64;
        if ack.duplicate {
            totals.duplicates += 1;
        } else {
            totals.samples_acked += u64::from(ack.samples);
        }
        if let Some(log) = state.acked_log.as_mut() {
            let _ = writeln!(
                log,
                r#"{{"workout_id":"{}","seq":{},"samples":{},"duplicate":{}}}"#,
                ack.workout_id, ack.seq, ack.samples, ack.duplicate
            );
        }
    }

    /// A batch given up on, or a connection that could not be made: `kind` says which.
    pub fn error(&self, kind: impl Into<String>) {
        let now = Instant::now();
        let mut state = self.lock();
        self.window(&mut state, now).errors += 1;
        *state.errors.entry(kind.into()).or_default() += 1;
    }

    /// A batch the server could not take this time, sent again.
    pub fn retry(&self, kind: impl Into<String>) {
        *self.lock().retries.entry(kind.into()).or_default() += 1;
    }

    /// Samples acked and errors so far, for the progress bar.
    pub fn progress(&self) -> (u64, u64) {
        let state = self.lock();
        (state.totals.values().map(|t| t.samples_acked).sum(), state.errors.values().sum())
    }

    /// Flushes the acked log and hands out what was recorded.
    pub fn finish(&self) -> std::io::Result<Recorded> {
        let mut state = self.lock();
        if let Some(log) = state.acked_log.as_mut() {
            log.flush()?;
        }
        let windows = std::mem::take(&mut state.windows);
        let totals = std::mem::take(&mut state.totals);
        let errors = std::mem::take(&mut state.errors);
        let retries = std::mem::take(&mut state.retries);
        Ok(Recorded {
            windows,
            totals,
            errors,
            retries,
            last_ack: state.last_ack.map(|t| t.duration_since(self.start)),
        })
    }
}

/// Everything a run recorded.
pub struct Recorded {
    pub windows: Vec<Window>,
    pub totals: BTreeMap<Transport, Totals>,
    pub errors: BTreeMap<String, u64>,
    pub retries: BTreeMap<String, u64>,
    pub last_ack: Option<Duration>,
}

impl Recorded {
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}
