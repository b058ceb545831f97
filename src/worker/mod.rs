//! `trackwire serve --role pipeline --partitions I/N`: a pipeline worker of a scale-out
//! deployment.
//!
//! **In:** partitions of the raw topic (`kafka.raw_topic`), as leases in the PostgreSQL store
//! grant them ([`lease`]). **Out:** what the single process's sinks write (lake, read store,
//! events, Kafka topics), per partition ([`partition`]). HTTP: `/healthcheck` and `/metrics` only.
//!
//! The control loop renews and claims leases every third of `cluster.lease_secs`; a partition
//! whose lease is lost stops at once, one handed back stops (committing) before its lease is
//! released, and a newly claimed one starts by replaying the partition; one that cannot start
//! (the broker away) is released at once and tried again next round. SIGTERM stops every
//! partition (each commits what it has) and releases their leases so the others take over
//! without waiting for expiry.

mod http;
pub mod lease;
mod partition;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use partition::{PartitionRunner, PartitionStatus};

use trackwire_ingest::log::kafka::RawTopicConfig;

use crate::config::{Config, WorkerShare};
use crate::data_path::IdleSweeper;
use crate::launch::{Listeners, Stop};

/// What the HTTP endpoints show: the partitions this worker runs now.
#[derive(Default)]
pub struct WorkerStatus {
    pub owner: String,
    pub worker: String,
    pub partitions: std::sync::Mutex<Vec<Arc<PartitionStatus>>>,
    /// Athlete profiles read from the shared store at the last refresh.
    pub profiles: std::sync::atomic::AtomicUsize,
    /// How long a sink may fail every flush before `/healthcheck` answers 503, in ms; 0 never.
    pub sink_unhealthy_after_ms: i64,
}

/// Runs worker `share` over the raw topic `raw`, its leases in the store at `store_url`, until
/// `stop`; `/healthcheck` and `/metrics` on `listeners`.
pub fn run(
    config: &Config,
    raw: RawTopicConfig,
    store_url: &str,
    share: WorkerShare,
    listeners: Listeners,
    stop: Stop,
) -> anyhow::Result<()> {
    let WorkerShare { index, count } = share;
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    // Opening the store applies the migrations, the lease table among them.
    let store = crate::stores::open_read_store(config)?;
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "worker".into());
    let owner = format!("{host}/{index}of{count}/{}", uuid::Uuid::new_v4().simple());
    let ttl = Duration::from_secs_f64(config.cluster.lease_secs);
    let ca_file = config.store.ca_file.as_deref();
    let mut leases = lease::Leases::connect(store_url, ca_file, &raw.topic, owner.clone(), ttl, (index, count))?;
    // Dropped last: the leases stay renewed until every partition has committed and released.
    let _keeper = lease::Keeper::spawn(store_url, ca_file, &raw.topic, &owner, ttl)?;
    let status = Arc::new(WorkerStatus {
        owner: owner.clone(),
        worker: format!("{index}/{count}"),
        sink_unhealthy_after_ms: config.sinks.unhealthy_after_ms(),
        ..Default::default()
    });

    // The idle timeout's records go into the raw topic like a gateway's batches, each to its
    // workout's partition, so whichever worker holds the partition (now or after a takeover)
    // reads the same decision.
    let mut idle = match config.pipeline.idle_timeout() {
        Some(timeout) => {
            let (log, writer) =
                trackwire_ingest::log::kafka::open(raw.clone()).context("opening the raw topic for idle timeouts")?;
            Some((IdleSweeper::new(log, timeout), writer))
        }
        None => None,
    };

    let http_failed = Arc::new(AtomicBool::new(false));
    let http = http::spawn(listeners.http, status.clone(), stop.clone(), http_failed.clone())?;
    let stopping = || stop.is_stopped() || http_failed.load(Ordering::Relaxed);
    tracing::info!(owner = %leases.owner(), topic = %raw.topic, partitions = raw.partitions, "pipeline worker {index}/{count} running");

    // Athlete profiles come from the shared store (the API writes them), refreshed every round.
    let profiles = Arc::new(trackwire_pipeline::Profiles::default());
    let mut profiled_users = BTreeSet::new();
    let mut runners: BTreeMap<i32, PartitionRunner> = BTreeMap::new();
    let mut last_renewed = Instant::now();
    let tick = ttl / 3;
    while !stopping() {
        match store.athlete_profiles() {
            Ok(all) => {
                status.profiles.store(all.len(), Ordering::Relaxed);
                let now: BTreeSet<String> = all.iter().map(|(user, _)| user.clone()).collect();
                for gone in profiled_users.difference(&now) {
                    profiles.remove(gone); // erased users
                }
                for (user, profile) in all {
                    profiles.set(&user, profile);
                }
                profiled_users = now;
            }
            Err(err) => tracing::warn!(%err, "athlete profiles not refreshed; retrying next round"),
        }
        let held: BTreeSet<i32> = runners.keys().copied().collect();
        match leases.round(&held, raw.partitions) {
            Ok(round) => {
                last_renewed = Instant::now();
                for partition in round.lost.iter().chain(&round.hand_back) {
                    if let Some(runner) = runners.remove(partition) {
                        tracing::warn!(partition, "partition lease lost or wanted back: stopping it");
                        runner.stop();
                    }
                }
                release(&mut leases, &round.hand_back);
                let mut failed = BTreeSet::new();
                for partition in round.gained {
                    tracing::info!(partition, "partition lease taken");
                    match PartitionRunner::start(partition, config, &raw, store.clone(), profiles.clone()) {
                        Ok(runner) => {
                            runners.insert(partition, runner);
                        }
                        Err(err) => {
                            // A broker or object store that is briefly away: give the partition
                            // up (another worker, or this one next round, tries again).
                            tracing::warn!(partition, "partition not started, lease released: {err:#}");
                            failed.insert(partition);
                        }
                    }
                }
                release(&mut leases, &failed);
            }
            Err(err) if last_renewed.elapsed() < ttl => {
                tracing::warn!("partition leases not renewed (retrying): {err:#}");
            }
            Err(err) => {
                // Past the lease, others may hold our partitions: stop before writing twice.
                tracing::error!(
                    "partition leases could not be renewed for a whole lease: stopping every partition: {err:#}"
                );
                for (_, runner) in std::mem::take(&mut runners) {
                    runner.stop();
                }
            }
        }
        if let Some((partition, _)) = runners.iter().find(|(_, r)| r.is_finished()) {
            let partition = *partition;
            let runner = runners.remove(&partition).expect("present");
            runner.stop(); // logs why it ended
            anyhow::bail!("partition {partition} stopped on its own; restarting the worker replays it");
        }
        *status.partitions.lock().expect("status lock") = runners.values().map(|r| r.status.clone()).collect();
        if let Some((sweeper, _)) = &mut idle {
            let replayed = runners.values().filter(|r| r.replayed());
            sweeper.sweep(replayed.map(|r| r.status.live.as_ref()), chrono::Utc::now().timestamp_millis());
        }
        let deadline = Instant::now() + tick;
        while Instant::now() < deadline && !stopping() {
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    tracing::info!("shutting down: every partition commits, then its lease is released");
    let held: BTreeSet<i32> = runners.keys().copied().collect();
    for (_, runner) in runners {
        runner.stop();
    }
    release(&mut leases, &held);
    if let Some((sweeper, writer)) = idle {
        drop(sweeper); // its log handle: the producer confirms what is in flight and stops
        if let Ok(Err(err)) = writer.join() {
            tracing::warn!(%err, "the idle-timeout producer ended with an error; the next sweep (here or on another worker) asks again");
        }
    }
    http.join();
    Ok(())
}

/// Gives `partitions` up at once; if PostgreSQL does not answer, their leases simply expire (the
/// others then take them a lease later), so that is no reason to stop.
fn release(leases: &mut lease::Leases, partitions: &BTreeSet<i32>) {
    if partitions.is_empty() {
        return;
    }
    if let Err(err) = leases.release(partitions) {
        tracing::warn!(?partitions, "leases not released ({err:#}); the others take over when they expire");
    }
}
