//! The state of each surface a process serves, built once from the validated config: ingest
//! (`/v1/ingest`, QUIC, `/healthcheck`, `/metrics`) for every serving role, the API (`/api/v1`)
//! where it is served. Each role passes what only it has: its log, the data path it runs, how it
//! carries out erasures and retention cuts.

use std::sync::Arc;

use anyhow::Context;
use trackwire_api::accounts::Accounts;
use trackwire_api::auth::Authenticator;
use trackwire_api::control::Control;
use trackwire_api::limits::RateLimiter;
use trackwire_api::{AppParts, AppState, DataPathView, IngestParts, IngestState, UploadLimits};
use trackwire_codec::DecodeLimits;
use trackwire_ingest::log::DurableLog;
use trackwire_ingest::{IngestConfig, Ingestor, OwnerRegistry};
use trackwire_sinks::originals::Originals;
use trackwire_sinks::read_store::ReadStore;

use crate::config::Config;

/// Ingest over `log`, with the data path this process runs, if any. `owners` decides workout
/// ownership where the log cannot (a raw topic many gateways write).
pub fn ingest_state(
    config: &Config,
    log: DurableLog,
    data_path: Option<DataPathView>,
    owners: Option<Arc<dyn OwnerRegistry>>,
) -> IngestState {
    let ingest = &config.ingest;
    let ingestor = Ingestor::new(
        IngestConfig {
            tokens: ingest.tokens.clone(),
            max_body_bytes: ingest.max_body_bytes,
            max_decompressed_bytes: ingest.max_decompressed_bytes,
            limits: DecodeLimits { max_samples: ingest.max_samples_per_batch, max_events: ingest.max_events_per_batch },
            time_bounds: ingest.time_bounds().expect("validated with the configuration"),
        },
        log,
    );
    let ingestor = match owners {
        Some(registry) => ingestor.with_owner_registry(registry),
        None => ingestor,
    };
    IngestParts { ingestor: Arc::new(ingestor), data_path, http: Default::default() }.into()
}

/// The API over `store` and `accounts`, on top of `ingest`; `control` carries erasures and
/// retention cuts out. The erasures already recorded keep hiding what is still on its way.
pub fn api_state(
    config: &Config,
    ingest: IngestState,
    store: Arc<dyn ReadStore>,
    accounts: Arc<dyn Accounts>,
    control: Control,
) -> anyhow::Result<AppState> {
    let auth = Authenticator::new(config.effective_auth()?).context("setting up API authentication")?;
    let erased = accounts.erasures().context("reading the recorded erasures")?.into_iter().collect();
    let deleted = accounts.deletions().context("reading the recorded deletions")?.into_iter().collect();
    Ok(AppParts {
        ingest,
        store,
        accounts,
        auth: Arc::new(auth),
        limiter: Arc::new(RateLimiter::new(config.api.rate_limit.clone())),
        control: Some(control),
        erased: Arc::new(erased),
        deleted: Arc::new(deleted),
        privacy: config.privacy.clone(),
        push: config.push.clone(),
        uploads: UploadLimits::new(config.api.max_upload_bytes, config.api.max_concurrent_imports),
        originals: Some(Arc::new(
            Originals::new(config.lake_store().context("opening the lake's store for uploaded files")?)
                .context("the lake's location")?,
        )),
        exports: Arc::new(tokio::sync::Semaphore::new(config.api.max_concurrent_exports.max(1))),
    }
    .into())
}
