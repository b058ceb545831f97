//! The command-line flags that set configuration fields. Each is declared once, here: its clap
//! attributes make the flag (and name its `TRACKWIRE_*` variable in `--help`), its serde name is
//! the field's key path, which [`ServeFlags::given`] hands to the loader.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use serde::Serialize;

use super::role::Role;

/// Flags of `trackwire serve` and `trackwire print-config`; each wins over file and environment.
#[derive(Debug, Default, Clone, clap::Args, Serialize)]
pub struct ServeFlags {
    /// HTTP listen address for ingest and API (`http_addr`).
    #[arg(long, env = "TRACKWIRE_HTTP_ADDR")]
    #[serde(rename = "http_addr")]
    pub http_addr: Option<SocketAddr>,
    #[command(flatten)]
    #[serde(flatten)]
    pub data_dir: DataDirFlag,
    /// QUIC (UDP) listen address for live ingest (`quic_addr`).
    #[arg(long, env = "TRACKWIRE_QUIC_ADDR")]
    #[serde(rename = "quic_addr")]
    pub quic_addr: Option<SocketAddr>,
    /// Where the Parquet lake lives: s3://bucket/prefix or a directory (`lake.url`).
    #[arg(long, env = "TRACKWIRE_LAKE__URL")]
    #[serde(rename = "lake.url")]
    pub lake_url: Option<String>,
    /// Kafka brokers host:port[,…] for the raw, events and points topics (`kafka.brokers`).
    #[arg(long, env = "TRACKWIRE_KAFKA__BROKERS")]
    #[serde(rename = "kafka.brokers")]
    pub kafka_brokers: Option<String>,
    /// The shared store: postgres://user:password@host:port/database (`store.url`).
    #[arg(long, env = "TRACKWIRE_STORE__URL")]
    #[serde(rename = "store.url")]
    pub store_url: Option<String>,
    /// Which part to run: all (one process), gateway, pipeline or api (`cluster.role`).
    #[arg(long, env = "TRACKWIRE_CLUSTER__ROLE", value_enum)]
    #[serde(rename = "cluster.role")]
    pub role: Option<Role>,
    /// A pipeline worker's share, I/N: worker I of N (`cluster.partitions`).
    #[arg(long, env = "TRACKWIRE_CLUSTER__PARTITIONS")]
    #[serde(rename = "cluster.partitions")]
    pub partitions: Option<String>,
}

/// The data directory flag, shared by every command that reads or writes state.
#[derive(Debug, Default, Clone, clap::Args, Serialize)]
pub struct DataDirFlag {
    /// Directory for the log, lake, events, read store and development secrets (`data_dir`).
    #[arg(long, env = "TRACKWIRE_DATA_DIR")]
    #[serde(rename = "data_dir")]
    pub data_dir: Option<PathBuf>,
}

impl ServeFlags {
    /// The flags given, as (key path, value).
    pub(super) fn given(&self) -> anyhow::Result<Vec<(String, serde_json::Value)>> {
        let serde_json::Value::Object(fields) = serde_json::to_value(self).context("reading the flags")? else {
            anyhow::bail!("the flags are not a set of fields");
        };
        Ok(fields.into_iter().filter(|(_, value)| !value.is_null()).collect())
    }
}

impl From<DataDirFlag> for ServeFlags {
    fn from(data_dir: DataDirFlag) -> Self {
        ServeFlags { data_dir, ..ServeFlags::default() }
    }
}
