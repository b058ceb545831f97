//! `trackwire-loadtest`: how many devices one gateway holds, at what latency, and where the ceiling is.
//!
//! **In:** a scenario (`quic-fleet`, `http-upload`, `mix`) and a gateway (`--target`, local or remote).
//! **Out:** a JSON report (throughput in samples/s and bytes/s, HDR ack-latency percentiles from each
//! batch's intended send time, errors by kind, a per-second timeline, the gateway's memory), SVG
//! plots, and with `--ceiling` / `--kafka-brokers` the same load against a discard server on the
//! same stack and a bare rdkafka producer, as ratios. Exits non-zero when any batch failed.
//!
//! ```sh
//! trackwire-loadtest quic-fleet --devices 10000 --ramp-up-secs 60 --duration-secs 120 --quic-cert data/quic-cert.pem
//! trackwire-loadtest http-upload --concurrency 2 --duration-secs 30 --ceiling
//! ```

mod bare_producer;
mod cli;
mod compute;
mod cpu_time;
mod discard;
mod http;
mod kafka_ceiling;
mod plot;
mod prepared;
mod probe;
mod quic;
mod recorder;
mod report;
mod run;
mod schedule;
mod workload;

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use crate::cli::{Cli, Command, RunArgs, Scenario};
use crate::report::{Ceiling, Report, RunResult};
use crate::run::Targets;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Discard(args) => discard::serve(args).await.map(|()| true),
            Command::QuicFleet(args) => load(Scenario::QuicFleet, args).await,
            Command::HttpUpload(args) => load(Scenario::HttpUpload, args).await,
            Command::Mix(args) => load(Scenario::Mix, args).await,
        }
    });
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(2),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the scenario (and its ceilings), writes the report and plots; true when nothing failed.
async fn load(scenario: Scenario, args: RunArgs) -> anyhow::Result<bool> {
    args.validate(scenario)?;
    let started_at = workload::now_ms();
    let targets = Targets::from_args(&args);
    // Uploads are simulated and encoded before any timed window, once for every run below.
    let workload = workload::Workload::new(args.seed);
    let prepared = if scenario.http() {
        let (workload, args) = (workload.clone(), args.clone());
        let prepared = tokio::task::spawn_blocking(move || prepared::Prepared::uploads(&workload, &args))
            .await
            .context("preparing the upload workouts")??;
        Some(std::sync::Arc::new(prepared))
    } else {
        None
    };
    let outcome =
        run::run(scenario, &args, targets.clone(), &workload, prepared.clone(), args.acked_log.as_deref(), "gateway")
            .await?;
    let result = RunResult::of(&outcome);
    let mut report = Report::new(scenario, &args, &targets, started_at, result);

    if args.ceiling {
        let child = discard::DiscardChild::spawn()?;
        let discard_targets = Targets {
            http: child.listening.http.clone(),
            quic: child.listening.quic.clone(),
            quic_cert: child.listening.cert.clone(),
            quic_server_name: "localhost".into(),
        };
        let outcome = run::run(scenario, &args, discard_targets, &workload, prepared.clone(), None, "discard").await?;
        drop(child);
        let discard = RunResult::of(&outcome);
        let ratio = |ours: f64, ceiling: f64| if ceiling > 0.0 { ours / ceiling } else { 0.0 };
        report.ceiling = Some(Ceiling {
            ratio_samples_per_s: ratio(report.result.total.samples_per_s, discard.total.samples_per_s),
            ratio_batches_per_s: ratio(report.result.total.batches_per_s, discard.total.batches_per_s),
            discard,
        });
        if let Some(prepared) = prepared.clone() {
            let duration = args.duration();
            let mut measured = tokio::task::spawn_blocking(move || compute::measure(&prepared, duration))
                .await
                .context("the compute ceiling task")??;
            measured.ratio_samples_per_s =
                report.result.total.samples_per_s / measured.samples_per_s.max(f64::MIN_POSITIVE);
            report.compute_ceiling = Some(measured);
        }
    }
    if let Some(brokers) = args.kafka_brokers.clone() {
        let (args, ours) = (args.clone(), report.result.total.samples_per_s);
        let messages = report.result.total.batches_acked;
        let measured =
            tokio::task::spawn_blocking(move || kafka_ceiling::measure(scenario, &args, &brokers, messages, ours))
                .await
                .context("the Kafka ceiling task")??;
        report.kafka_ceiling = Some(measured);
    }

    let plots = plot::write_all(&args.plots, scenario.name(), &report.result)
        .with_context(|| format!("writing plots to {}", args.plots.display()))?;
    report.plots = plots.iter().map(|p| p.display().to_string()).collect();
    let json = serde_json::to_vec_pretty(&report)?;
    std::fs::write(&args.report, json).with_context(|| format!("writing the report {}", args.report.display()))?;
    println!("{}", report.headline());
    println!("report: {}; plots: {}", args.report.display(), report.plots.join(", "));
    Ok(report.result.error_count == 0)
}
