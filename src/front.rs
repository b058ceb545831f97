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

use anyhow::Context;
use trackwire_api::Surfaces;
use trackwire_api::accounts::follow_issued_tokens;
use trackwire_api::control::Control;
use trackwire_ingest::log::kafka::RawTopicConfig;

use crate::config::{Config, Role};
use crate::fronts::serve_fronts;
use crate::launch::{Listeners, Stop};
use crate::stores::{open_accounts, open_read_store};
use crate::surfaces::{api_state, ingest_state};

/// Which front this process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Front {
    Gateway,
    Api,
}

impl Front {
    fn role(self) -> Role {
        match self {
            Front::Gateway => Role::Gateway,
            Front::Api => Role::Api,
        }
    }
}

/// Runs the `front` over the raw topic `raw` on `listeners` until `stop`.
pub fn run(config: &Config, front: Front, raw: RawTopicConfig, listeners: Listeners, stop: Stop) -> anyhow::Result<()> {
    let data = &config.data_dir;
    std::fs::create_dir_all(data).with_context(|| format!("creating data directory {}", data.display()))?;
    tracing::info!(brokers = %raw.brokers, topic = %raw.topic, partitions = raw.partitions, role = front.role().name(), "acking after the raw topic's broker");
    let (log, producer) = trackwire_ingest::log::kafka::open(raw.clone()).context("opening the raw topic")?;
    // An API replica has erasures and retention cuts carried out by placing them in the raw
    // topic. A gateway commands nothing, and reads the accounts only for the device tokens the
    // API issues, which are in the shared store.
    let accounts = match front {
        Front::Api => Some(open_accounts(config)?),
        Front::Gateway => config.store.url.is_some().then(|| open_accounts(config)).transpose()?,
    };
    // Every front appends to the raw topic (an API replica its uploads), and no log writer sees
    // all of it: workout ownership is decided in the shared store.
    let owners = accounts.clone().and_then(|accounts| accounts.owner_registry());
    if owners.is_none() {
        tracing::warn!(
            "no shared store (store.url): batches for another user's workout are acked here and only ignored by the \
             workers; configure store.url so that they are refused"
        );
    }
    // Workouts in progress live in the workers: neither front runs a data path.
    let ingest = ingest_state(config, log, None, owners);
    let (surfaces, store) = match front {
        Front::Api => {
            let (accounts, store) = (accounts.clone().expect("opened above"), open_read_store(config)?);
            let api = api_state(config, ingest, store.clone(), accounts, Control::Log(Arc::new(raw)))?;
            (Surfaces::Api(api), Some(store))
        }
        Front::Gateway => (Surfaces::Ingest(ingest), None),
    };
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")?;
    runtime.block_on(async {
        // An API replica runs coordinate retention and push deliveries; a gateway follows the
        // device tokens the API replicas issue and revoke.
        let background = match (&surfaces, &accounts) {
            (Surfaces::Api(state) | Surfaces::All(state), _) => {
                Some(tokio::spawn(trackwire_api::background(state.clone())))
            }
            (Surfaces::Ingest(ingest), Some(accounts)) => {
                Some(tokio::spawn(follow_issued_tokens(accounts.clone(), ingest.ingestor.clone())))
            }
            (Surfaces::Ingest(_), None) => None,
        };
        let served = serve_fronts(config, surfaces, front.role(), listeners, stop).await;
        if let Some(background) = background {
            background.abort();
            let _ = background.await;
        }
        served
    })?;
    drop(runtime);
    // The sync PostgreSQL client blocks on a runtime of its own when a connection closes, which
    // must not happen on the async runtime's threads: the last handles on the stores go here.
    drop((store, accounts));
    tracing::info!("shutting down: waiting for the broker to confirm the batches in flight");
    match producer.join() {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) => Err(err).context("the raw-topic producer failed"),
        Err(_) => anyhow::bail!("the raw-topic producer panicked"),
    }
}
