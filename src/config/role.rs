//! Which part of Trackwire a process runs, and what each part cannot run without.

use serde::{Deserialize, Serialize};
use trackwire_ingest::log::kafka::RawTopicConfig;

/// Which part of Trackwire this process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything in one process on the embedded log (no external service needed).
    #[default]
    All,
    /// Ingest only (HTTP `/v1/ingest`, QUIC): acks once the raw topic's broker has the batch.
    Gateway,
    /// A pipeline worker: consumes partitions of the raw topic, runs the pipeline and the sinks.
    Pipeline,
    /// The REST API, reading the shared read store; uploads go to the raw topic.
    Api,
}

impl Role {
    /// As on the command line and in the configuration file.
    pub fn name(self) -> &'static str {
        match self {
            Role::All => "all",
            Role::Gateway => "gateway",
            Role::Pipeline => "pipeline",
            Role::Api => "api",
        }
    }
}

/// What the configured role runs on, checked once when the configuration is loaded: each
/// variant holds what that role cannot run without, so a role never checks its configuration
/// again.
#[derive(Debug, Clone)]
pub enum RoleSettings {
    /// The single process on the embedded log; Kafka, PostgreSQL and S3 are optional.
    All,
    /// Ingest acked once the raw topic's broker has the batch. With a shared store (`store.url`)
    /// it also accepts the device tokens the API issues.
    Gateway { raw: RawTopicConfig },
    /// Pipeline worker `share` over the raw topic, its partitions leased in the shared store.
    Pipeline { raw: RawTopicConfig, store_url: String, share: WorkerShare },
    /// The REST API over the shared store; uploads, erasures and retention cuts go to the raw
    /// topic.
    Api { raw: RawTopicConfig, store_url: String },
}

impl RoleSettings {
    pub fn role(&self) -> Role {
        match self {
            RoleSettings::All => Role::All,
            RoleSettings::Gateway { .. } => Role::Gateway,
            RoleSettings::Pipeline { .. } => Role::Pipeline,
            RoleSettings::Api { .. } => Role::Api,
        }
    }
}

/// A pipeline worker's share of the raw partitions: worker `index` of at most `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerShare {
    pub index: u32,
    pub count: u32,
}
