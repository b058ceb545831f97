//! `trackwire serve --role gateway|api`: the stateless fronts of a scale-out deployment.
//!
//! A **gateway** serves ingest (HTTP `/v1/ingest`, QUIC) and acks a batch once the raw topic's
//! broker has it (`trackwire_ingest::log::kafka`); it accepts the configured device tokens and
//! those the API issued, read from the shared store every few seconds. An **API** replica serves
//! `/api/v1` from the shared PostgreSQL read store and account store, sends uploads to the raw
//! topic like any device, and places erasures and retention cuts in it for the workers. Neither
//! runs a pipeline or a sink: pipeline workers do (`crate::worker`). Several of each can run
//! behind a load balancer; what they keep on local disk (the development JWT secret and QUIC
//! certificate) is documented as per-replica in ARCHITECTURE.md.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use anyhow::Context;
use trackwire_api::AppState;
use trackwire_api::accounts::follow_issued_tokens;
use trackwire_api::auth::Authenticator;
use trackwire_api::control::Control;
use trackwire_api::limits::RateLimiter;
use trackwire_codec::DecodeLimits;
use trackwire_ingest::{IngestConfig, Ingestor};
use trackwire_pipeline::{LiveWorkouts, Profiles};

use crate::config::{Config, Role};
use crate::fronts::serve_fronts;
use crate::stores::{open_accounts, open_read_store};

pub fn run(config: Config) -> anyhow::Result<()> {
    let role = config.cluster.role;
    let data = &config.data_dir;
    std::fs::create_dir_all(data).with_context(|| format!("creating data directory {}", data.display()))?;
    let raw =
        config.kafka.raw_topic_config(config.log.queue_depth).context("kafka.brokers is required for this role")?;
    tracing::info!(brokers = %raw.brokers, topic = %raw.topic, partitions = raw.partitions, role = role.name(), "acking after the raw topic's broker");
    // An API replica has erasures and retention cuts carried out by placing them in the raw
    // topic; a gateway commands nothing.
    let control = (role == Role::Api).then(|| Control::Log(Arc::new(raw.clone())));
    let (log, producer) = trackwire_ingest::log::kafka::open(raw).context("opening the raw topic")?;
    let store = open_read_store(&config)?;
    let accounts = open_accounts(&config)?;
    let ingestor = Arc::new(Ingestor::new(
        IngestConfig {
            tokens: config.ingest.tokens.clone(),
            max_body_bytes: config.ingest.max_body_bytes,
            max_decompressed_bytes: config.ingest.max_decompressed_bytes,
            limits: DecodeLimits {
                max_samples: config.ingest.max_samples_per_batch,
                max_events: config.ingest.max_events_per_batch,
            },
        },
        log,
    ));
    let auth = Authenticator::new(config.effective_auth()?).context("setting up API authentication")?;
    let state = AppState {
        ingestor,
        store,
        // Workouts in progress live in the workers: the API serves them from the store.
        live: Arc::new(LiveWorkouts::default()),
        sinks: Arc::new([]),
        pipeline_through: Arc::new(AtomicU64::new(0)),
        accounts,
        profiles: Arc::new(Profiles::default()),
        auth: Arc::new(auth),
        limiter: Arc::new(RateLimiter::new(config.api.rate_limit.clone())),
        control,
        erased: Default::default(),
        privacy: config.privacy.clone(),
        max_upload_bytes: config.api.max_upload_bytes,
    };
    // The sync PostgreSQL client blocks on a runtime of its own when a connection closes, which
    // must not happen on this runtime's threads: the last handles on the stores are dropped here.
    let (store, accounts) = (state.store.clone(), state.accounts.clone());
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")?;
    runtime.block_on(async {
        // An API replica runs coordinate retention; a gateway follows the device tokens the API
        // replicas issue and revoke.
        let background = match role {
            Role::Api => tokio::spawn(trackwire_api::retention_loop(state.clone())),
            _ => tokio::spawn(follow_issued_tokens(state.accounts.clone(), state.ingestor.clone())),
        };
        let served = serve_fronts(&config, state, role).await;
        background.abort();
        let _ = background.await;
        served
    })?;
    drop(runtime);
    drop((store, accounts));
    tracing::info!("shutting down: waiting for the broker to confirm the batches in flight");
    match producer.join() {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) => Err(err).context("the raw-topic producer failed"),
        Err(_) => anyhow::bail!("the raw-topic producer panicked"),
    }
}
