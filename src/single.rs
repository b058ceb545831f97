//! `trackwire serve --role all`, the single process: the embedded log feeding the data path
//! (`crate::data_path`), and the HTTP and QUIC fronts, with log and coordinate retention.
//!
//! Shutdown runs the data path dry in order: stop accepting requests and connections and finish
//! the ones in flight (QUIC streams send their last acks, then connections close with
//! `GoingAway`); drop the last log handle so the writer drains its queue and stops; the shards drain;
//! the sinks commit everything and checkpoint. Nothing acked is left only in memory.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use trackwire_api::control::Control;
use trackwire_api::{AppState, DataPathView, Surfaces};
use trackwire_codec::WorkoutId;
use trackwire_ingest::log::{DurableLog, LogConfig, PastOwners, Remembered, WorkoutOwner};
use trackwire_pipeline::{LiveWorkouts, Profiles};
use trackwire_sinks::Redactions;
use trackwire_sinks::read_store::ReadStore;

use crate::config::{Config, Role};
use crate::data_path::{DataPath, IdleSweeper, Input, Running};
use crate::fronts::serve_fronts;
use crate::launch::{Listeners, Stop};
use crate::stores::{open_accounts, open_read_store};
use crate::surfaces::{api_state, ingest_state};

/// How often released log segments are computed and handed to the log for deletion.
const RETENTION_TICK: Duration = Duration::from_secs(1);

/// Runs on `listeners` until `stop`, then drains.
pub fn run(config: &Config, listeners: Listeners, stop: Stop) -> anyhow::Result<()> {
    // The data path is plain threads (each sink drives its object store on a runtime of its own),
    // so it is built and joined outside the async runtime that serves HTTP.
    let SingleProcess { state, log_writer, data_path } = SingleProcess::start(config)?;
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")?;
    // The sync PostgreSQL client blocks on a runtime of its own when a connection closes, which
    // must not happen on this runtime's threads: the last handles on the stores are dropped here.
    let (store, accounts) = (state.store.clone(), state.accounts.clone());
    runtime.block_on(async {
        // Log retention belongs to the process that owns the log and sinks; coordinate retention
        // and push deliveries to every process that serves the API.
        let status = data_path.status.clone();
        let log = state.ingestor().log().clone();
        let idle = config
            .pipeline
            .idle_timeout()
            .map(|timeout| tokio::spawn(idle_loop(log.clone(), status.live.clone(), timeout)));
        let retention = tokio::spawn(retention_loop(log, status));
        let api_background = tokio::spawn(trackwire_api::background(state.clone()));
        let served = serve_fronts(config, Surfaces::All(state), Role::All, listeners, stop).await;
        retention.abort();
        let _ = retention.await;
        if let Some(idle) = idle {
            idle.abort();
            let _ = idle.await;
        }
        api_background.abort();
        let _ = api_background.await;
        served
    })?;
    drop(runtime);

    tracing::info!("shutting down: draining the log, pipeline and sinks");
    data_path.status.stopping.store(true, std::sync::atomic::Ordering::Release);
    let log_result = log_writer.join();
    data_path.join();
    match log_result {
        Ok(Ok(())) => {}
        Ok(Err(err)) => return Err(err).context("the log writer failed"),
        Err(_) => anyhow::bail!("the log writer panicked"),
    }
    drop((store, accounts));
    tracing::info!("shutdown complete: everything acked is committed");
    Ok(())
}

/// The embedded log feeding the data path, and the state the HTTP front reads.
struct SingleProcess {
    state: AppState,
    log_writer: std::thread::JoinHandle<Result<(), trackwire_ingest::log::LogError>>,
    data_path: Running,
}

impl SingleProcess {
    fn start(config: &Config) -> anyhow::Result<SingleProcess> {
        let data = &config.data_dir;
        std::fs::create_dir_all(data).with_context(|| format!("creating data directory {}", data.display()))?;

        // What the API owns comes first: profiles, erasures and the retention cut shape replay.
        let accounts = open_accounts(config)?;
        let this_year = chrono_year();
        let profiles = Arc::new(Profiles::default());
        for (user, profile) in accounts.profiles()? {
            profiles.set(&user, trackwire_api::pipeline_profile(&profile, this_year));
        }
        let redactions = Redactions {
            erased: accounts.erasures()?.into_iter().collect(),
            deleted: accounts.deletions()?.into_iter().collect(),
            positions_before_ms: accounts.positions_dropped_before()?,
        };

        // Sinks and pipeline next (the sinks learn what they already hold), then the log that
        // feeds them: replay starts as soon as the log opens.
        let store = open_read_store(config)?;
        let mut data_path = DataPath::open(config, store.clone(), Input::Embedded, profiles.clone())?;
        data_path.register(&redactions);
        let log_config = LogConfig { dir: data.join("log"), ..config.log.clone() };
        let remembered = Remembered {
            past_owners: Some(Arc::new(StoredOwners(store.clone()))),
            deleted_through: redactions.deleted.clone(),
            erased_through: redactions.erased.clone(),
        };
        let (log, log_writer) = DurableLog::open_remembering(log_config, data_path.forward(), remembered)
            .context("opening the durable log")?;
        let data_path = data_path.start(log.first_lsn(), redactions)?;

        let status = data_path.status.clone();
        let view = DataPathView {
            live: status.live,
            sinks: status.sinks,
            fed_through: status.fed_through,
            profiles,
            sink_unhealthy_after_ms: config.sinks.unhealthy_after_ms(),
        };
        // The embedded log decides workout ownership itself, with each append.
        let ingest = ingest_state(config, log, Some(view), None);
        for issued in accounts.device_tokens()? {
            ingest.ingestor.tokens().insert(issued.binding());
        }
        for mut upload in accounts.unfinished_uploads()? {
            upload.status = trackwire_api::views::UploadStatus::Error;
            upload.error =
                Some("interrupted by a server restart: upload the file again (the same external_id is fine)".into());
            accounts.put_upload(&upload)?;
        }
        let state = api_state(config, ingest, store, accounts, Control::Local(status.commands))?;
        Ok(SingleProcess { state, log_writer, data_path })
    }
}

/// The read store as the log's memory of who owns a workout whose batches have all been delivered
/// and deleted: its summary names the user and device of its first batch.
struct StoredOwners(Arc<dyn ReadStore>);

impl PastOwners for StoredOwners {
    fn owner_of(&self, workout_id: &WorkoutId) -> Result<Option<WorkoutOwner>, String> {
        let summary = self.0.get(workout_id).map_err(|e| format!("the read store: {e}"))?;
        Ok(summary.map(|s| WorkoutOwner { user_id: s.user_id.into(), device_id: s.device_id.into() }))
    }
}

/// Lets the log delete segments that every sink has committed and no live workout still needs.
async fn retention_loop(log: DurableLog, status: crate::data_path::Status) {
    let mut tick = tokio::time::interval(RETENTION_TICK);
    loop {
        tick.tick().await;
        log.release_through(status.released_through());
    }
}

/// Completes workouts whose device fell silent for `timeout` (see [`IdleSweeper`]).
async fn idle_loop(log: DurableLog, live: Arc<LiveWorkouts>, timeout: Duration) {
    let mut tick = tokio::time::interval(IdleSweeper::interval(timeout));
    // During the replay the workouts look as they were at some past record: a silent one there
    // may have batches further on.
    while !log.metrics().replay_done.load(std::sync::atomic::Ordering::Acquire) {
        tick.tick().await;
    }
    let mut sweeper = IdleSweeper::new(log, timeout);
    loop {
        tick.tick().await;
        sweeper.sweep([live.as_ref()], chrono::Utc::now().timestamp_millis());
    }
}

fn chrono_year() -> i32 {
    use chrono::Datelike;
    chrono::Utc::now().year()
}
