//! One run of a scenario against one gateway: starts the senders, the server probe and the
//! progress bar, stops sending at the deadline or the request cap, waits for outstanding acks,
//! and hands back what was recorded.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::{RunArgs, Scenario};
use crate::cpu_time;
use crate::prepared::Prepared;
use crate::probe::{self, ServerSample};
use crate::recorder::{Recorded, Recorder};
use crate::schedule::Budget;
use crate::workload::Workload;

/// Where the load goes.
#[derive(Debug, Clone)]
pub struct Targets {
    pub http: String,
    pub quic: String,
    pub quic_cert: PathBuf,
    pub quic_server_name: String,
}

impl Targets {
    pub fn from_args(args: &RunArgs) -> Targets {
        Targets {
            http: args.target.clone(),
            quic: args.quic_target(),
            quic_cert: args.quic_cert.clone(),
            quic_server_name: args.quic_server_name.clone(),
        }
    }
}

/// What every sender of a run shares.
pub struct Run {
    pub args: RunArgs,
    pub targets: Targets,
    pub start: Instant,
    pub budget: Budget,
    pub recorder: Recorder,
    pub workload: Workload,
    /// Batches sent and neither acked nor given up on.
    pub inflight: AtomicU64,
}

/// What a run produced.
pub struct Outcome {
    pub recorded: Recorded,
    pub server: Vec<ServerSample>,
    /// From the start to the last ack (or the end of sending, if nothing was acked).
    pub elapsed: Duration,
    pub run_id: u64,
    /// Workouts simulated between the start and the last ack (none for uploads: they are
    /// prepared before; live devices simulate each next workout as they go).
    pub simulated_in_window: u64,
    /// CPU time this load generator used over the same span, all its threads.
    pub generator_cpu: Duration,
}

/// Runs `scenario` against `targets` with the uploads `prepared` before (for scenarios that
/// upload); `label` names the run on the progress bar.
pub async fn run(
    scenario: Scenario,
    args: &RunArgs,
    targets: Targets,
    workload: &Workload,
    prepared: Option<Arc<Prepared>>,
    acked_log: Option<&Path>,
    label: &str,
) -> anyhow::Result<Outcome> {
    probe::check_reachable(&targets.http).await?;
    // Simulating and encoding the first workouts takes a moment; start the clock after a short
    // lead so the first intended send times are not already late.
    let start = Instant::now() + Duration::from_millis(200);
    let run = Arc::new(Run {
        args: args.clone(),
        targets: targets.clone(),
        start,
        budget: Budget::new(start + args.duration(), args.max_requests),
        recorder: Recorder::new(start, start + Duration::from_secs_f64(ramp_up_secs(scenario, args)), acked_log)?,
        workload: workload.clone(),
        inflight: AtomicU64::new(0),
    });
    let (simulated_before, cpu_before) = (workload.simulated(), cpu_time::used());
    let (probe_stop, probe_stopped) = tokio::sync::watch::channel(false);
    let probe = tokio::spawn(probe::sample_every_second(targets.http.clone(), start, probe_stopped));
    let progress = progress_bar(args, label);
    let ticker = tokio::spawn({
        let (run, progress) = (run.clone(), progress.clone());
        async move {
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                let (samples, errors) = run.recorder.progress();
                let elapsed = run.start.elapsed().as_secs_f64();
                progress.set_position((elapsed * 10.0) as u64);
                progress.set_message(format!(
                    "{samples} samples acked ({:.0}/s), {} in flight, {errors} errors",
                    samples as f64 / elapsed.max(0.001),
                    run.inflight.load(Ordering::Relaxed)
                ));
            }
        }
    });

    let mut senders = tokio::task::JoinSet::new();
    if scenario.quic() {
        senders.spawn(crate::quic::fleet(run.clone()));
    }
    if scenario.http() {
        let run = run.clone();
        let prepared = prepared.context("an upload scenario without prepared workouts")?;
        senders.spawn(async move {
            crate::http::uploads(run, prepared).await;
            Ok(())
        });
    }
    let drain_deadline = run.budget.stop_at + Duration::from_secs_f64(args.drain_secs.max(0.0));
    let mut failure = None;
    loop {
        match tokio::time::timeout_at(drain_deadline.into(), senders.join_next()).await {
            Ok(Some(Ok(Ok(())))) => {}
            Ok(Some(Ok(Err(err)))) => failure = Some(err),
            Ok(Some(Err(join))) => failure = Some(anyhow::anyhow!("a sender task failed: {join}")),
            Ok(None) => break,
            Err(_) => {
                // Whatever is still in flight got no answer in time: an error, never a silent drop.
                senders.abort_all();
                let unanswered = run.inflight.swap(0, Ordering::Relaxed);
                for _ in 0..unanswered {
                    run.recorder.error("unanswered_at_drain_deadline");
                }
                break;
            }
        }
    }
    ticker.abort();
    progress.finish_and_clear();
    let _ = probe_stop.send(true);
    let server = probe.await.unwrap_or_default();
    let (simulated_in_window, generator_cpu) =
        (workload.simulated() - simulated_before, cpu_time::used().saturating_sub(cpu_before));
    if let Some(err) = failure {
        return Err(err);
    }
    let recorded = run.recorder.finish()?;
    let elapsed = recorded.last_ack.unwrap_or_else(|| run.budget.stop_at.saturating_duration_since(start));
    Ok(Outcome { recorded, server, elapsed, run_id: run.workload.run_id, simulated_in_window, generator_cpu })
}

/// The ramp-up of the scenario's fleet (uploads start at full rate).
fn ramp_up_secs(scenario: Scenario, args: &RunArgs) -> f64 {
    if scenario.quic() { args.ramp_up_secs.clamp(0.0, args.duration_secs) } else { 0.0 }
}

fn progress_bar(args: &RunArgs, label: &str) -> ProgressBar {
    if args.no_progress {
        return ProgressBar::hidden();
    }
    // Tenths of a second, so short runs move smoothly; hidden by indicatif when not a terminal.
    let bar = ProgressBar::new((args.duration_secs * 10.0) as u64);
    let style = ProgressStyle::with_template(&format!("{label} [{{elapsed_precise}}] {{wide_bar}} {{msg}}"))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

#[cfg(test)]
mod tests {

    use super::*;

    /// The client must not spend the run's cores making its load: uploads are simulated and
    /// encoded before the window, and the run reports what the generator cost.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_upload_run_simulates_nothing_in_its_window_and_reports_its_own_cpu() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move { axum::serve(listener, crate::discard::http::app()).await });
        let args = crate::cli::run_args(&[
            "--target",
            &addr,
            "--duration-secs",
            "1",
            "--concurrency",
            "2",
            "--upload-batch-size",
            "100",
            "--upload-workout-minutes",
            "2",
            "--prepared-workouts",
            "4",
            "--no-progress",
        ]);
        let targets = Targets::from_args(&args);
        let workload = Workload::new(args.seed);
        let prepared = Arc::new(Prepared::uploads(&workload, &args).unwrap());
        let outcome = run(Scenario::HttpUpload, &args, targets, &workload, Some(prepared), None, "test").await.unwrap();
        assert!(outcome.recorded.error_count() == 0, "{:?}", outcome.recorded.errors);
        // Two batches a workout: past 8, prepared workouts were sent again under new ids.
        let acked: u64 = outcome.recorded.totals.values().map(|t| t.batches_acked).sum();
        assert!(acked > 8, "only {acked} batches acked");
        assert_eq!(outcome.simulated_in_window, 0, "workouts simulated during the timed window");
        assert!(outcome.generator_cpu > Duration::ZERO, "the generator's CPU time is measured");
    }
}
