//! The JSON report: settings, totals, throughput, latency percentiles, errors by kind, a
//! per-second timeline, the server's memory, and the ceilings measured in the same run.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::cli::{RunArgs, Scenario};
use crate::probe::ServerSample;
use crate::recorder::{Totals, Transport};
use crate::run::{Outcome, Targets};

#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub count: u64,
    pub mean_ms: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    fn of(h: &Histogram<u64>) -> Latency {
        let ms = |us: u64| us as f64 / 1000.0;
        Latency {
            count: h.len(),
            mean_ms: if h.is_empty() { 0.0 } else { h.mean() / 1000.0 },
            p50_ms: ms(h.value_at_quantile(0.50)),
            p90_ms: ms(h.value_at_quantile(0.90)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
        }
    }
}

/// Totals and rates of one transport, or of all of them.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub batches_sent: u64,
    pub batches_acked: u64,
    pub duplicates: u64,
    pub samples_acked: u64,
    pub bytes_acked: u64,
    pub samples_per_s: f64,
    pub batches_per_s: f64,
    pub bytes_per_s: f64,
    pub ack_latency: Latency,
    /// The same for batches due after the ramp-up (all of them when there is none).
    pub ack_latency_after_ramp: Latency,
}

impl Summary {
    fn of(t: &Totals, elapsed: Duration) -> Summary {
        let secs = elapsed.as_secs_f64().max(1e-9);
        Summary {
            batches_sent: t.batches_sent,
            batches_acked: t.batches_acked,
            duplicates: t.duplicates,
            samples_acked: t.samples_acked,
            bytes_acked: t.bytes_acked,
            samples_per_s: t.samples_acked as f64 / secs,
            batches_per_s: t.batches_acked as f64 / secs,
            bytes_per_s: t.bytes_acked as f64 / secs,
            ack_latency: Latency::of(&t.latency),
            ack_latency_after_ramp: Latency::of(&t.latency_after_ramp),
        }
    }
}

/// One second of the run.
#[derive(Debug, Clone, Serialize)]
pub struct Second {
    pub t_s: u64,
    pub batches: u64,
    pub samples: u64,
    pub bytes: u64,
    pub errors: u64,
    pub p50_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
}

/// The gateway's memory during the run (from its `/metrics`).
#[derive(Debug, Clone, Serialize)]
pub struct Server {
    pub peak_rss_bytes: Option<u64>,
    pub peak_live_workouts: Option<u64>,
    pub peak_quic_connections: Option<u64>,
    pub samples: Vec<ServerSample>,
}

/// One run's results, as the report holds them for the main run and for the discard ceiling.
#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    pub run_id: String,
    pub elapsed_s: f64,
    pub total: Summary,
    pub by_transport: BTreeMap<Transport, Summary>,
    pub error_count: u64,
    pub errors: BTreeMap<String, u64>,
    pub retries: BTreeMap<String, u64>,
    /// What the load generator itself cost over the run.
    pub generator: Generator,
    pub timeline: Vec<Second>,
    pub server: Server,
}

impl RunResult {
    pub fn of(outcome: &Outcome) -> RunResult {
        let recorded = &outcome.recorded;
        let mut all = Totals::empty();
        for t in recorded.totals.values() {
            all.merge(t);
        }
        let timeline = recorded
            .windows
            .iter()
            .enumerate()
            .map(|(t, w)| {
                let q = |q: f64| (!w.latency.is_empty()).then(|| w.latency.value_at_quantile(q) as f64 / 1000.0);
                Second {
                    t_s: t as u64,
                    batches: w.batches,
                    samples: w.samples,
                    bytes: w.bytes,
                    errors: w.errors,
                    p50_ms: q(0.5),
                    p90_ms: q(0.9),
                    p99_ms: q(0.99),
                    max_ms: (!w.latency.is_empty()).then(|| w.latency.max() as f64 / 1000.0),
                }
            })
            .collect();
        let peak = |f: fn(&ServerSample) -> Option<u64>| outcome.server.iter().filter_map(f).max();
        RunResult {
            run_id: format!("{:016x}", outcome.run_id),
            elapsed_s: outcome.elapsed.as_secs_f64(),
            total: Summary::of(&all, outcome.elapsed),
            by_transport: recorded.totals.iter().map(|(k, t)| (*k, Summary::of(t, outcome.elapsed))).collect(),
            error_count: recorded.error_count(),
            errors: recorded.errors.clone(),
            retries: recorded.retries.clone(),
            generator: Generator::of(outcome),
            timeline,
            server: Server {
                peak_rss_bytes: peak(|s| s.rss_bytes),
                peak_live_workouts: peak(|s| s.live_workouts),
                peak_quic_connections: peak(|s| s.quic_connections),
                samples: outcome.server.clone(),
            },
        }
    }
}

/// The load generator's own cost: it shares the cores with the server it measures.
#[derive(Debug, Clone, Serialize)]
pub struct Generator {
    /// CPU seconds of the load generator (all threads) from the start to the last ack.
    pub cpu_s: f64,
    /// That, as a share of the machine over the same time (1.0: every core, the whole time).
    pub cpu_share: f64,
    /// Workouts simulated inside the timed window (uploads are prepared before it: 0).
    pub workouts_simulated_in_window: u64,
}

impl Generator {
    fn of(outcome: &Outcome) -> Generator {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let cpu_s = outcome.generator_cpu.as_secs_f64();
        Generator {
            cpu_s,
            cpu_share: cpu_s / (outcome.elapsed.as_secs_f64() * cores).max(f64::MIN_POSITIVE),
            workouts_simulated_in_window: outcome.simulated_in_window,
        }
    }
}

/// The same load against the discard server.
#[derive(Debug, Clone, Serialize)]
pub struct Ceiling {
    pub discard: RunResult,
    /// Our acked samples/s ÷ the discard server's (meaningful for closed-loop loads: with an
    /// open-loop rate both may simply keep up, and the latencies are what differ).
    pub ratio_samples_per_s: f64,
    pub ratio_batches_per_s: f64,
}

/// A bare rdkafka producer sending the run's batches to the same broker.
#[derive(Debug, Clone, Serialize)]
pub struct KafkaCeiling {
    pub brokers: String,
    pub topic: String,
    pub messages: u64,
    pub bytes: u64,
    pub samples: u64,
    pub seconds: f64,
    pub samples_per_s: f64,
    pub bytes_per_s: f64,
    /// Our end-to-end acked samples/s ÷ the bare producer's samples/s.
    pub ratio_samples_per_s: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TargetView {
    pub http: String,
    pub quic: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub tool: &'static str,
    pub version: &'static str,
    /// The shape of this report (`loadtest/report.schema.json`); raised when a field changes.
    pub report_format: u32,
    pub scenario: Scenario,
    pub started_at_unix_ms: i64,
    pub target: TargetView,
    pub settings: RunArgs,
    #[serde(flatten)]
    pub result: RunResult,
    pub ceiling: Option<Ceiling>,
    /// With `--ceiling`, for uploads: the same batches through verify, pipeline and lake
    /// encoding on every core, no IO.
    pub compute_ceiling: Option<crate::compute::ComputeCeiling>,
    pub kafka_ceiling: Option<KafkaCeiling>,
    /// Plot files written, relative to the working directory.
    pub plots: Vec<String>,
}

impl Report {
    pub fn new(
        scenario: Scenario,
        args: &RunArgs,
        targets: &Targets,
        started_at_unix_ms: i64,
        result: RunResult,
    ) -> Report {
        Report {
            tool: "trackwire-loadtest",
            report_format: 2,
            version: env!("CARGO_PKG_VERSION"),
            scenario,
            started_at_unix_ms,
            target: TargetView { http: targets.http.clone(), quic: targets.quic.clone() },
            settings: args.clone(),
            result,
            ceiling: None,
            compute_ceiling: None,
            kafka_ceiling: None,
            plots: Vec::new(),
        }
    }

    /// The few lines a person reads first.
    pub fn headline(&self) -> String {
        let r = &self.result;
        let l = &r.total.ack_latency;
        let mut out = format!(
            "{}: {} samples in {} batches acked in {:.1} s: {:.0} samples/s, {:.0} batches/s, {:.1} MB/s; \
             ack latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (after the ramp-up: p99 {:.1} ms); {} errors",
            self.scenario.name(),
            r.total.samples_acked,
            r.total.batches_acked,
            r.elapsed_s,
            r.total.samples_per_s,
            r.total.batches_per_s,
            r.total.bytes_per_s / 1e6,
            l.p50_ms,
            l.p99_ms,
            l.max_ms,
            r.total.ack_latency_after_ramp.p99_ms,
            r.error_count
        );
        for (kind, count) in &r.errors {
            out.push_str(&format!("\n  error {kind}: {count}"));
        }
        if let Some(rss) = r.server.peak_rss_bytes {
            out.push_str(&format!("\n  gateway peak RSS {:.0} MiB", rss as f64 / (1 << 20) as f64));
            if let Some(live) = r.server.peak_live_workouts {
                out.push_str(&format!(", {live} live workouts"));
            }
        }
        if let Some(c) = &self.ceiling {
            out.push_str(&format!(
                "\n  ceiling (discard server, same stack): {:.0} samples/s, p99 {:.1} ms; ours is {:.0} % of it",
                c.discard.total.samples_per_s,
                c.discard.total.ack_latency.p99_ms,
                c.ratio_samples_per_s * 100.0
            ));
        }
        if let Some(c) = &self.compute_ceiling {
            out.push_str(&format!(
                "\n  compute ceiling (verify + pipeline + lake encoding on {} cores, no IO): {:.0} samples/s; ours is {:.0} % of it",
                c.threads,
                c.samples_per_s,
                c.ratio_samples_per_s * 100.0
            ));
        }
        out.push_str(&format!(
            "\n  load generator: {:.1} CPU s, {:.0} % of the machine; {} workouts simulated during the run",
            r.generator.cpu_s,
            r.generator.cpu_share * 100.0,
            r.generator.workouts_simulated_in_window
        ));
        if let Some(k) = &self.kafka_ceiling {
            out.push_str(&format!(
                "\n  bare rdkafka producer: {:.0} samples/s ({:.1} MB/s); ours is {:.0} % of it",
                k.samples_per_s,
                k.bytes_per_s / 1e6,
                k.ratio_samples_per_s * 100.0
            ));
        }
        out
    }
}
