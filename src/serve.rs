//! `trackwire serve`: runs the configured role. The default, `all`, wires log → pipeline →
//! sinks and the HTTP and QUIC fronts in one process (here); `gateway` and `api` are in
//! `crate::front`, `pipeline` workers in `crate::worker`. The sink set and the HTTP/QUIC fronts
//! built here are shared with those roles.
//!
//! Shutdown runs the data path dry in order: stop accepting requests and connections and finish
//! the ones in flight (QUIC streams send their last acks, then connections close with
//! `GoingAway`); drop the last log handle so the writer drains its queue and stops; the shards drain;
//! the sinks commit everything and checkpoint. Nothing acked is left only in memory.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use trackwire_api::AppState;
use trackwire_api::accounts::Accounts;
use trackwire_api::auth::Authenticator;
use trackwire_api::limits::RateLimiter;
use trackwire_codec::DecodeLimits;
use trackwire_ingest::log::{DurableLog, LogConfig};
use trackwire_ingest::quic::{QuicServer, ServerIdentity, StatelessResetKey};
use trackwire_ingest::{IngestConfig, Ingestor};
use trackwire_pipeline::{LiveWorkouts, Pipeline, PipelineConfig, Profiles};
use trackwire_sinks::events::EventLogSink;
use trackwire_sinks::kafka::KafkaSink;
use trackwire_sinks::lake::{LakeConfig, LakeTable, PointsTable, WorkoutsTable};
use trackwire_sinks::read_store::{self, LOCAL_LOG, ReadStore, ReadStoreSink};
use trackwire_sinks::{Coordinator, CoordinatorConfig, Redactions, Sink};

use crate::config::{Config, Role};

/// How often released log segments are computed and handed to the log for deletion.
const RETENTION_TICK: Duration = Duration::from_secs(1);

/// Runs the configured role until SIGINT/SIGTERM.
pub fn run(config: Config) -> anyhow::Result<()> {
    match config.cluster.role {
        Role::All => run_single_process(config),
        Role::Gateway | Role::Api => crate::front::run(config),
        Role::Pipeline => crate::worker::run(config),
    }
}

fn run_single_process(config: Config) -> anyhow::Result<()> {
    // The data path is plain threads (each sink drives its object store on a runtime of its own),
    // so it is built and joined outside the async runtime that serves HTTP.
    let data_path = DataPath::start(&config)?;
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")?;
    let DataPath { state, log_writer, pipeline, sinks_thread } = data_path;
    // The sync PostgreSQL client blocks on a runtime of its own when a connection closes, which
    // must not happen on this runtime's threads: the last handle on the store is dropped here.
    let store = state.store.clone();
    runtime.block_on(serve_fronts(&config, state, Role::All))?;
    drop(runtime);

    tracing::info!("shutting down: draining the log, pipeline and sinks");
    let log_result = log_writer.join();
    pipeline.join();
    let _ = sinks_thread.join();
    match log_result {
        Ok(Ok(())) => {}
        Ok(Err(err)) => return Err(err).context("the log writer failed"),
        Err(_) => anyhow::bail!("the log writer panicked"),
    }
    drop(store);
    tracing::info!("shutdown complete: everything acked is committed");
    Ok(())
}

/// The running log → pipeline → sinks threads, and the state the HTTP front reads.
struct DataPath {
    state: AppState,
    log_writer: std::thread::JoinHandle<Result<(), trackwire_ingest::log::LogError>>,
    pipeline: Pipeline,
    sinks_thread: std::thread::JoinHandle<()>,
}

impl DataPath {
    fn start(config: &Config) -> anyhow::Result<DataPath> {
        let data = &config.data_dir;
        std::fs::create_dir_all(data).with_context(|| format!("creating data directory {}", data.display()))?;
        let limits = DecodeLimits {
            max_samples: config.ingest.max_samples_per_batch,
            max_events: config.ingest.max_events_per_batch,
        };

        // What the API owns comes first: profiles, erasures and the retention cut shape replay.
        let accounts =
            Arc::new(Accounts::open(&data.join("store").join("accounts.redb")).context("opening the account store")?);
        let this_year = chrono_year();
        let profiles = Arc::new(Profiles::default());
        for (user, profile) in accounts.profiles()? {
            profiles.set(&user, trackwire_api::pipeline_profile(&profile, this_year));
        }
        let redactions = Redactions {
            erased: accounts.erasures()?.into_iter().collect(),
            positions_before_ms: accounts.positions_dropped_before()?,
        };
        let erased: dashmap::DashMap<String, u64> = redactions.erased.clone().into_iter().collect();

        // Sinks next: they learn what they already hold before replay starts feeding them.
        let store = open_read_store(config)?;
        let sinks = open_sinks(config, store.clone(), data, None)?;

        // Pipeline, then the log that feeds it (replay starts as soon as the log opens).
        let shards = if config.pipeline.shards == 0 {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        } else {
            config.pipeline.shards
        };
        let (output_tx, output_rx) = crossbeam_channel::bounded(config.pipeline.queue_depth * shards);
        let live = Arc::new(LiveWorkouts::default());
        let (pipeline, submitter) = Pipeline::spawn(
            &PipelineConfig { shards, queue_depth: config.pipeline.queue_depth, limits, profiles: profiles.clone() },
            output_tx,
            live.clone(),
        );
        let log_config = LogConfig {
            dir: data.join("log"),
            segment_bytes: config.log.segment_bytes,
            group_commit_bytes: config.log.group_commit_bytes,
            queue_depth: config.log.queue_depth,
            max_retained_bytes: config.log.max_retained_bytes,
        };
        let forward = Box::new(move |record: trackwire_ingest::log::LogRecord| {
            submitter.submit(record.lsn, record.key.workout_id, record.payload).is_ok()
        });
        let (log, log_writer) = DurableLog::open(log_config, forward).context("opening the durable log")?;
        let coordinator = Coordinator::with_redactions(
            sinks,
            CoordinatorConfig {
                flush_interval: Duration::from_millis(config.sinks.flush_interval_ms),
                first_lsn: log.first_lsn(),
            },
            redactions,
        );
        let commands = coordinator.commands();
        let progress: Arc<[_]> = coordinator.progress().into();
        let pipeline_through = coordinator.fed_through();
        let sinks_thread = coordinator.spawn(output_rx);

        let ingestor = Arc::new(Ingestor::new(
            IngestConfig {
                tokens: config.ingest.tokens.clone(),
                max_body_bytes: config.ingest.max_body_bytes,
                max_decompressed_bytes: config.ingest.max_decompressed_bytes,
                limits,
            },
            log,
        ));
        for issued in accounts.device_tokens()? {
            ingestor.tokens().insert(issued.binding());
        }
        for mut upload in accounts.unfinished_uploads()? {
            upload.status = trackwire_api::views::UploadStatus::Error;
            upload.error =
                Some("interrupted by a server restart: upload the file again (the same external_id is fine)".into());
            accounts.put_upload(&upload)?;
        }
        let auth = Authenticator::new(config.effective_auth()?).context("setting up API authentication")?;
        let state = AppState {
            ingestor,
            store,
            live,
            sinks: progress,
            pipeline_through,
            accounts,
            profiles,
            auth: Arc::new(auth),
            limiter: Arc::new(RateLimiter::new(config.api.rate_limit.clone())),
            commands: Some(commands),
            erased: Arc::new(erased),
            privacy: config.privacy.clone(),
            max_upload_bytes: config.api.max_upload_bytes,
            scale_out: false,
        };
        Ok(DataPath { state, log_writer, pipeline, sinks_thread })
    }
}

/// The read store `store.url` names, or the embedded one in the data directory.
pub(crate) fn open_read_store(config: &Config) -> anyhow::Result<Arc<dyn ReadStore>> {
    let embedded = config.data_dir.join("store").join("read.redb");
    read_store::open(config.store.url.as_deref(), config.store.ca_file.as_deref(), &embedded)
        .context("opening the read store")
}

/// Every sink of one input log: the lake tables, the event log (in `dir/events`), the read store
/// and, with brokers, Kafka (checkpoint in `dir`). `source`: None for the embedded log, `Some(p)`
/// for partition p of the raw topic (its own lake file labels and read-store checkpoint).
pub(crate) fn open_sinks(
    config: &Config,
    store: Arc<dyn ReadStore>,
    dir: &std::path::Path,
    source: Option<u32>,
) -> anyhow::Result<Vec<Box<dyn Sink>>> {
    let lake = config.lake_store().context("opening the lake")?;
    let lake_config = LakeConfig {
        target_file_bytes: config.lake.target_file_bytes,
        max_file_age: Duration::from_secs_f64(config.lake.max_file_age_secs),
        row_group_rows: config.lake.row_group_rows,
        max_open_partitions: config.lake.max_open_partitions,
        multipart_threshold_bytes: config.lake.multipart_threshold_bytes,
    };
    let log_name = match source {
        None => LOCAL_LOG.to_owned(),
        Some(partition) => raw_log_name(partition),
    };
    let mut sinks: Vec<Box<dyn Sink>> = vec![
        Box::new(
            LakeTable::<PointsTable>::open_source(lake.clone(), lake_config.clone(), source)
                .context("opening lake table points")?,
        ),
        Box::new(
            LakeTable::<WorkoutsTable>::open_source(lake, lake_config, source)
                .context("opening lake table workouts")?,
        ),
        Box::new(EventLogSink::open(&dir.join("events")).context("opening the event log")?),
        Box::new(ReadStoreSink::new(store, log_name).context("opening the read store sink")?),
    ];
    if let Some(kafka) = config.kafka.sink_config() {
        tracing::info!(brokers = %kafka.brokers, events = %kafka.events_topic, points = %kafka.points_topic, "kafka sink on");
        sinks.push(Box::new(KafkaSink::open(kafka, &dir.join("kafka.checkpoint")).context("opening the kafka sink")?));
    }
    Ok(sinks)
}

/// The read store's name for partition `p` of the raw topic (its checkpoint key).
pub(crate) fn raw_log_name(partition: u32) -> String {
    format!("raw.v1/{partition}")
}

/// Serves HTTP (the routes of `role`) and, for roles that ingest, QUIC until SIGINT/SIGTERM;
/// returns once in-flight requests and streams are answered and every handle on the log has been
/// dropped.
pub(crate) async fn serve_fronts(config: &Config, state: AppState, role: Role) -> anyhow::Result<()> {
    let data = &config.data_dir;
    // Log retention and coordinate retention belong to the process that owns the log and sinks.
    let background = (role == Role::All).then(|| {
        (
            tokio::spawn(retention_loop(state.ingestor.log().clone(), state.sinks.clone(), state.live.clone())),
            tokio::spawn(coordinate_retention_loop(state.clone())),
        )
    });
    let surface = match role {
        Role::Gateway => trackwire_api::Surface::Ingest,
        Role::Api => trackwire_api::Surface::Api,
        Role::All | Role::Pipeline => trackwire_api::Surface::All,
    };
    let listener = tokio::net::TcpListener::bind(config.http_addr)
        .await
        .with_context(|| format!("binding HTTP listener on {}", config.http_addr))?;
    let addr = listener.local_addr()?;
    let quic = if role == Role::Api { None } else { Some(start_quic(config)?) };
    match &quic {
        Some(quic) => {
            let quic_addr = quic.local_addr()?;
            tracing::info!(http = %addr, quic = %quic_addr, data_dir = %data.display(), role = role.name(), "trackwire listening on http://{addr} (ingest: POST /v1/ingest, API: /api/v1) and quic://{quic_addr} (ALPN trackwire/1), data in {}", data.display());
        }
        None => tracing::info!(http = %addr, role = role.name(), "trackwire API listening on http://{addr}/api/v1"),
    }
    if config.uses_dev_auth() {
        tracing::warn!(
            "API tokens use a development HS256 secret in {}: mint one with `trackwire token --user ID`; configure auth.jwks_url (your OIDC provider) before exposing this server",
            data.join("dev-jwt.secret").display()
        );
    }
    if config.uses_dev_token() {
        tracing::warn!(
            "accepting the development token 'dev-token' for any device: configure ingest.tokens before exposing this server"
        );
    }
    // One signal stops both fronts.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };
    let signal = tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let quic_task = quic.map(|quic| tokio::spawn(quic.run(state.ingestor.clone(), stopped())));
    let http = trackwire_api::serve_surface(listener, state, surface, stopped()).await.context("serving HTTP");
    signal.abort();
    if let Some(quic_task) = quic_task {
        quic_task.await.context("the QUIC server panicked")?;
    }
    http?;

    if let Some((retention, coordinates)) = background {
        retention.abort();
        let _ = retention.await;
        coordinates.abort();
        let _ = coordinates.await;
    }
    Ok(())
}

/// Binds the QUIC endpoint with the configured (or development) TLS identity.
fn start_quic(config: &Config) -> anyhow::Result<QuicServer> {
    let identity = match (&config.quic.cert_path, &config.quic.key_path) {
        (Some(cert), Some(key)) => ServerIdentity::from_pem_files(cert, key)?,
        _ => {
            let identity = ServerIdentity::development(&config.data_dir)?;
            tracing::warn!(
                fingerprint_sha256 = %identity.fingerprint_sha256,
                cert = %identity.cert_path.display(),
                "QUIC uses a development self-signed certificate for localhost: configure quic.cert_path/key_path before exposing this server"
            );
            identity
        }
    };
    let socket = std::net::UdpSocket::bind(config.quic_addr)
        .with_context(|| format!("binding QUIC (UDP) on {}", config.quic_addr))?;
    let reset_key = StatelessResetKey::load_or_create(&config.data_dir)?;
    Ok(QuicServer::new(socket, identity, &reset_key, config.quic.to_quic_config())?)
}

/// Lets the log delete segments that every sink has committed and no live workout still needs.
async fn retention_loop(log: DurableLog, sinks: Arc<[Arc<trackwire_sinks::SinkProgress>]>, live: Arc<LiveWorkouts>) {
    let mut tick = tokio::time::interval(RETENTION_TICK);
    loop {
        tick.tick().await;
        let committed =
            sinks.iter().map(|s| s.checkpoint.load(std::sync::atomic::Ordering::Acquire)).min().unwrap_or(0);
        let needed = live.oldest_needed_lsn().map_or(u64::MAX, |lsn| lsn - 1);
        log.release_through(committed.min(needed));
    }
}

/// Coordinate retention: every `privacy.retention_interval_secs`, positions older than
/// `privacy.coordinate_retention_days` are dropped everywhere (totals stay).
async fn coordinate_retention_loop(state: AppState) {
    if state.privacy.coordinate_retention_days == 0 {
        return;
    }
    let mut tick = tokio::time::interval(Duration::from_secs(state.privacy.retention_interval_secs));
    loop {
        tick.tick().await;
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        match trackwire_api::run_retention(&state, now).await {
            Ok(before) => tracing::debug!(before_ms = before, "coordinate retention ran"),
            Err(err) => tracing::warn!(message = %err.message, "coordinate retention failed; retried next interval"),
        }
    }
}

fn chrono_year() -> i32 {
    use chrono::Datelike;
    chrono::Utc::now().year()
}

pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(err) => {
                tracing::warn!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
