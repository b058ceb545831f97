//! The one configuration struct. Sources, later ones winning: built-in defaults, the TOML file
//! given by `--config`, `TRACKWIRE_*` environment variables (nested fields with `__`, e.g.
//! `TRACKWIRE_LAKE__MAX_FILE_AGE_SECS=5`), then command-line flags ([`ServeFlags`]). Loading
//! validates the result into [`Settings`]: the config and what its role runs on.
//! `trackwire print-config` shows every field with its doc line ([`documented`]).
//!
//! Sections that configure one library are that library's config type (`[quic]`, `[log]`,
//! `[auth]`, `[privacy]`, `[push]`, `[api.rate_limit]`); the others are in [`sections`].

pub mod documented;
mod flags;
mod role;
mod sections;

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use trackwire_ingest::log::LogConfig;
use trackwire_ingest::quic::QuicConfig;

pub use flags::{DataDirFlag, ServeFlags};
pub use role::{Role, RoleSettings, WorkerShare};
pub use sections::*;

/// The development token accepted when no tokens are configured.
pub const DEV_TOKEN: &str = "dev-token";
/// The issuer of development JWTs (`trackwire token`).
pub const DEV_ISSUER: &str = "trackwire-dev";

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address of the HTTP listener, serving both ingest (`/v1/ingest`) and the API.
    #[schema(value_type = String)]
    pub http_addr: SocketAddr,
    /// UDP address of the QUIC listener (live ingest from wearables, ALPN `trackwire/1`).
    #[schema(value_type = String)]
    pub quic_addr: SocketAddr,
    /// Directory holding all state: `log/` (durable log), `lake/` (Parquet), `events/` (workout
    /// events, JSON lines) and `store/` (the API's read store).
    #[schema(value_type = String)]
    pub data_dir: PathBuf,
    /// The ingest front door (HTTP and QUIC): device tokens and the limits of a batch.
    pub ingest: IngestSection,
    /// The QUIC listener's TLS identity and limits.
    pub quic: QuicConfig,
    /// HTTPS on the HTTP listener: certificate and key files, reloaded when they change.
    pub tls: TlsSection,
    /// The embedded durable log (`<data_dir>/log/`) of the single process.
    pub log: LogConfig,
    /// The pipeline's shards.
    pub pipeline: PipelineSection,
    /// The Parquet lake: where it lives and how its files roll.
    pub lake: LakeSection,
    /// Kafka: the events and points topics, and (scale-out) the raw topic between roles.
    pub kafka: KafkaSection,
    /// What every sink shares.
    pub sinks: SinksSection,
    /// The read store and the API's accounts: embedded, or PostgreSQL shared by every role.
    pub store: StoreSection,
    /// Scale-out: this process's role, and a pipeline worker's share of the raw partitions.
    pub cluster: ClusterSection,
    /// Bearer JWTs for `/api/v1`: issuer, audience, keys (JWKS file or URL; HS256 secret for
    /// development) and the admin scope. With no key source, a development HS256 secret is kept in
    /// `<data_dir>/dev-jwt.secret` and `trackwire token --user ID` mints tokens with it.
    pub auth: trackwire_api::auth::AuthConfig,
    /// The REST API's limits.
    pub api: ApiSection,
    /// Coordinate retention: `coordinate_retention_days` (0 keeps positions forever) and how often
    /// the job runs (`retention_interval_secs`).
    pub privacy: trackwire_api::PrivacyConfig,
    /// Push subscriptions: attempts per delivery and the backoff between them, the callbacks'
    /// timeout, how often deliveries are made, and subscriptions per user.
    pub push: trackwire_api::push::PushConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            http_addr: "127.0.0.1:8080".parse().expect("valid default address"),
            quic_addr: "127.0.0.1:4433".parse().expect("valid default address"),
            data_dir: PathBuf::from("data"),
            ingest: IngestSection::default(),
            quic: QuicConfig::default(),
            tls: TlsSection::default(),
            log: LogConfig::default(),
            pipeline: PipelineSection::default(),
            lake: LakeSection::default(),
            kafka: KafkaSection::default(),
            sinks: SinksSection::default(),
            store: StoreSection::default(),
            cluster: ClusterSection::default(),
            auth: Default::default(),
            api: ApiSection::default(),
            privacy: Default::default(),
            push: Default::default(),
        }
    }
}

/// A validated configuration and what its role runs on.
#[derive(Debug, Clone)]
pub struct Settings {
    pub config: Config,
    pub role: RoleSettings,
}

impl Settings {
    /// Validates `config` (as loaded, or built by a test).
    pub fn new(config: Config) -> anyhow::Result<Settings> {
        let role = config.validate()?;
        Ok(Settings { config, role })
    }
}

const SECTIONS: [&str; 17] = [
    "http_addr",
    "quic_addr",
    "data_dir",
    "ingest",
    "quic",
    "tls",
    "log",
    "pipeline",
    "lake",
    "kafka",
    "sinks",
    "store",
    "cluster",
    "auth",
    "api",
    "privacy",
    "push",
];

impl Config {
    /// Defaults, then `file`, then the environment, then `flags`; validated.
    pub fn load(file: Option<&std::path::Path>, flags: &ServeFlags) -> anyhow::Result<Settings> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = file {
            if !file.exists() {
                bail!("config file {} does not exist", file.display());
            }
            figment = figment.merge(Toml::file(file));
        }
        // Only our own keys: the scripts also export TRACKWIRE_CACHE and friends.
        // (figment filters keys before lowercasing them.)
        let env = Env::prefixed("TRACKWIRE_").split("__").filter(|key| {
            let key = key.as_str().to_ascii_lowercase();
            SECTIONS.iter().any(|s| key == *s || key.starts_with(&format!("{s}.")))
        });
        figment = figment.merge(env);
        for (key, value) in flags.given()? {
            figment = figment.merge(Serialized::default(&key, value));
        }
        let config: Config =
            figment.extract().context("invalid configuration (file, TRACKWIRE_* environment or flags)")?;
        Settings::new(config)
    }

    /// Checks every field, and what the role needs.
    fn validate(&self) -> anyhow::Result<RoleSettings> {
        let positive = [
            ("ingest.max_body_bytes", self.ingest.max_body_bytes as u64),
            ("ingest.max_decompressed_bytes", self.ingest.max_decompressed_bytes as u64),
            ("ingest.max_samples_per_batch", self.ingest.max_samples_per_batch as u64),
            ("log.segment_bytes", self.log.segment_bytes),
            ("log.group_commit_bytes", self.log.group_commit_bytes as u64),
            ("log.queue_depth", self.log.queue_depth as u64),
            ("log.max_retained_bytes", self.log.max_retained_bytes),
            ("pipeline.queue_depth", self.pipeline.queue_depth as u64),
            ("lake.target_file_bytes", self.lake.target_file_bytes as u64),
            ("lake.row_group_rows", self.lake.row_group_rows as u64),
            ("lake.max_open_partitions", self.lake.max_open_partitions as u64),
            ("lake.compact_above_files", self.lake.compact_above_files as u64),
            ("lake.settled_target_file_bytes", self.lake.settled_target_file_bytes as u64),
            ("lake.multipart_threshold_bytes", self.lake.multipart_threshold_bytes as u64),
            ("sinks.flush_interval_ms", self.sinks.flush_interval_ms),
            ("quic.max_connections", self.quic.max_connections as u64),
            ("quic.max_streams_per_connection", u64::from(self.quic.max_streams_per_connection)),
            ("quic.max_frame_bytes", self.quic.max_frame_bytes as u64),
            ("quic.max_in_flight_per_stream", self.quic.max_in_flight_per_stream as u64),
            ("api.max_upload_bytes", self.api.max_upload_bytes as u64),
            ("api.max_concurrent_imports", self.api.max_concurrent_imports as u64),
            ("api.max_concurrent_exports", self.api.max_concurrent_exports as u64),
            ("api.rate_limit.per_minute", u64::from(self.api.rate_limit.per_minute)),
            ("api.rate_limit.burst", u64::from(self.api.rate_limit.burst)),
            ("privacy.retention_interval_secs", self.privacy.retention_interval_secs),
        ];
        for (name, value) in positive {
            if value == 0 {
                bail!("{name} must be greater than 0");
            }
        }
        self.push.validate().map_err(anyhow::Error::msg)?;
        self.ingest.time_bounds().map_err(anyhow::Error::msg)?;
        self.cluster.worker()?;
        if self.cluster.lease_secs.is_nan() || self.cluster.lease_secs <= 0.5 {
            bail!("cluster.lease_secs must be more than 0.5 seconds");
        }
        if self.kafka.raw_partitions < 1 {
            bail!("kafka.raw_partitions must be at least 1");
        }
        if self.ingest.tokens.is_empty() && self.store.url.is_none() {
            bail!(
                "ingest.tokens is empty and there is no shared store (store.url) to hold tokens the API issues: no device \
                 could authenticate; add at least one {{ token, device_id }}"
            );
        }
        if self.ingest.tokens.iter().any(|t| t.token.trim().is_empty()) {
            bail!("ingest.tokens contains an empty token");
        }
        let seconds = [
            ("lake.max_file_age_secs", self.lake.max_file_age_secs),
            ("lake.vacuum_retention_secs", self.lake.vacuum_retention_secs),
            ("lake.settled_after_secs", self.lake.settled_after_secs),
            ("quic.stream_idle_timeout_secs", self.quic.stream_idle_timeout.as_secs_f64()),
            ("quic.handshake_timeout_secs", self.quic.handshake_timeout.as_secs_f64()),
            ("quic.idle_timeout_secs", self.quic.idle_timeout.as_secs_f64()),
            ("quic.drain_timeout_secs", self.quic.drain_timeout.as_secs_f64()),
            ("lake.s3_request_timeout_secs", self.lake.s3_request_timeout_secs),
        ];
        for (name, value) in seconds {
            // Below 1e6 s (11 days): QUIC's idle timeout is a 62-bit count of milliseconds anyway.
            if !(value > 0.0 && value < 1e6) {
                bail!("{name} must be a positive number of seconds (below 1,000,000)");
            }
        }
        if !(self.pipeline.update_interval_secs >= 0.0 && self.pipeline.update_interval_secs < 1e6) {
            bail!("pipeline.update_interval_secs must be 0 (after every batch) or a positive number of seconds");
        }
        if !(self.pipeline.idle_timeout_secs >= 0.0 && self.pipeline.idle_timeout_secs < 1e8) {
            bail!("pipeline.idle_timeout_secs must be 0 (never) or a positive number of seconds (below 100,000,000)");
        }
        if self.kafka.replication_factor < 1 || self.kafka.min_insync_replicas < 1 {
            bail!("kafka.replication_factor and kafka.min_insync_replicas must be at least 1");
        }
        if self.kafka.min_insync_replicas > self.kafka.replication_factor {
            bail!(
                "kafka.min_insync_replicas ({}) is more than kafka.replication_factor ({}): no write could ever be confirmed",
                self.kafka.min_insync_replicas,
                self.kafka.replication_factor
            );
        }
        if self.tls.cert_path.is_some() != self.tls.key_path.is_some() {
            bail!("tls.cert_path and tls.key_path go together: give both for HTTPS, or neither for plain HTTP");
        }
        if !(self.tls.reload_interval_secs > 0.0 && self.tls.reload_interval_secs.is_finite()) {
            bail!("tls.reload_interval_secs must be a positive number of seconds");
        }
        if self.quic.cert_path.is_some() != self.quic.key_path.is_some() {
            bail!("quic.cert_path and quic.key_path go together: give both, or neither for a development certificate");
        }
        if self.kafka.brokers.as_deref().is_some_and(|b| b.trim().is_empty()) {
            bail!("kafka.brokers is empty: give host:port[,host:port…] or leave it unset for no Kafka sink");
        }
        if self.kafka.partitions < 1 {
            bail!("kafka.partitions must be at least 1");
        }
        if self.kafka.max_message_bytes < MIN_KAFKA_MESSAGE_BYTES {
            bail!(
                "kafka.max_message_bytes must be at least {MIN_KAFKA_MESSAGE_BYTES}: a message must hold one sample and one event"
            );
        }
        if self.log.max_retained_bytes / 4 < self.log.segment_bytes {
            bail!(
                "log.max_retained_bytes ({}) must be at least 4 × log.segment_bytes ({}): retention frees whole segments, never the active one",
                self.log.max_retained_bytes,
                self.log.segment_bytes
            );
        }
        if self.log.segment_bytes < self.quic.max_frame_bytes as u64 {
            bail!(
                "log.segment_bytes ({}) must be at least quic.max_frame_bytes ({}) so any accepted batch fits in a segment",
                self.log.segment_bytes,
                self.quic.max_frame_bytes
            );
        }
        if self.log.segment_bytes < self.ingest.max_decompressed_bytes as u64 {
            bail!(
                "log.segment_bytes ({}) must be at least ingest.max_decompressed_bytes ({}) so any accepted batch fits in a segment",
                self.log.segment_bytes,
                self.ingest.max_decompressed_bytes
            );
        }
        if !(1..=22).contains(&self.lake.zstd_level) {
            bail!("lake.zstd_level must be between 1 and 22 (zstd's levels; 1 is the fastest)");
        }
        if self.auth.hs256_secret.as_deref().is_some_and(|s| s.len() < 32) {
            bail!("auth.hs256_secret must be at least 32 characters (RFC 7518 §3.2: a key as long as the hash)");
        }
        self.role_settings()
    }

    /// What the configured role cannot run without, or what is missing for it.
    fn role_settings(&self) -> anyhow::Result<RoleSettings> {
        let role = self.cluster.role;
        if role == Role::All {
            return Ok(RoleSettings::All);
        }
        let Some(raw) = self.kafka.raw_topic_config(self.log.queue_depth) else {
            bail!(
                "cluster.role {} needs kafka.brokers: the raw topic is the log between roles (give --kafka-brokers HOST:PORT, or run --role all)",
                role.name()
            );
        };
        let store_url = || match &self.store.url {
            Some(url) => Ok(url.clone()),
            None => Err(anyhow::anyhow!(
                "cluster.role {} needs store.url (postgres://…): the read store is shared between roles (give --store-url)",
                role.name()
            )),
        };
        Ok(match role {
            Role::All => RoleSettings::All,
            Role::Gateway => RoleSettings::Gateway { raw },
            Role::Api => RoleSettings::Api { raw, store_url: store_url()? },
            Role::Pipeline => RoleSettings::Pipeline { raw, store_url: store_url()?, share: self.cluster.worker()? },
        })
    }

    /// True when no key source is configured: the server uses a development HS256 secret.
    pub fn uses_dev_auth(&self) -> bool {
        self.auth.hs256_secret.is_none() && self.auth.jwks_file.is_none() && self.auth.jwks_url.is_none()
    }

    /// The auth configuration the server runs with: as configured, or (with no key source) the
    /// development secret kept in `<data_dir>/dev-jwt.secret` (created on first use).
    pub fn effective_auth(&self) -> anyhow::Result<trackwire_api::auth::AuthConfig> {
        if !self.uses_dev_auth() {
            return Ok(self.auth.clone());
        }
        let path = self.data_dir.join("dev-jwt.secret");
        let secret = match std::fs::read_to_string(&path) {
            Ok(text) => text.trim().to_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(&self.data_dir)
                    .with_context(|| format!("creating {}", self.data_dir.display()))?;
                let secret = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
                std::fs::write(&path, &secret).with_context(|| format!("writing {}", path.display()))?;
                secret
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        Ok(trackwire_api::auth::AuthConfig {
            hs256_secret: Some(secret),
            issuer: Some(DEV_ISSUER.into()),
            ..self.auth.clone()
        })
    }

    /// The auth configuration `trackwire token` signs with: the configured secret, or the
    /// development secret a server on this data directory created. Unlike the server it never
    /// creates one: a token signed with a new secret would be refused by the running server.
    pub fn minting_auth(&self) -> anyhow::Result<trackwire_api::auth::AuthConfig> {
        let path = self.data_dir.join("dev-jwt.secret");
        if self.uses_dev_auth() && !path.exists() {
            anyhow::bail!(
                "no development secret at {}: a server creates it in its data directory at first start. \
                 Give `trackwire token` the server's --data-dir (or TRACKWIRE_DATA_DIR, or the same --config), \
                 or configure auth.hs256_secret",
                path.display()
            );
        }
        self.effective_auth()
    }

    /// Where the lake lives: `lake.url`, or `<data_dir>/lake`.
    pub fn lake_store(&self) -> anyhow::Result<trackwire_sinks::lake::LakeLocation> {
        let url = match &self.lake.url {
            Some(url) => url.clone(),
            None => self.data_dir.join("lake").display().to_string(),
        };
        let s3 = trackwire_sinks::lake::S3Options {
            endpoint: self.lake.s3_endpoint.clone(),
            region: self.lake.s3_region.clone(),
            access_key_id: self.lake.s3_access_key_id.clone(),
            secret_access_key: self.lake.s3_secret_access_key.clone(),
            allow_http: self.lake.s3_endpoint.as_deref().is_some_and(|e| e.starts_with("http://")),
            request_timeout: std::time::Duration::from_secs_f64(self.lake.s3_request_timeout_secs),
        };
        Ok(trackwire_sinks::lake::open_store(&url, &s3)?)
    }

    pub fn uses_dev_token(&self) -> bool {
        self.ingest.tokens.iter().any(|t| t.token == DEV_TOKEN)
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closures return figment's own (large) error.
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        flags: ServeFlags,
    }

    fn flags(args: &[&str]) -> ServeFlags {
        Cli::parse_from(std::iter::once("trackwire").chain(args.iter().copied())).flags
    }

    #[test]
    fn a_token_is_minted_only_with_the_secret_the_server_uses() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config { data_dir: dir.path().join("elsewhere"), ..Config::default() };
        let refused = config.minting_auth().unwrap_err().to_string();
        assert!(refused.contains("dev-jwt.secret") && refused.contains("--data-dir"), "{refused}");
        assert!(!dir.path().join("elsewhere").exists(), "no secret is invented: {refused}");

        let served = Config { data_dir: dir.path().to_owned(), ..Config::default() };
        let server = served.effective_auth().unwrap();
        assert_eq!(served.minting_auth().unwrap().hs256_secret, server.hs256_secret);
        let configured = Config {
            auth: trackwire_api::auth::AuthConfig { hs256_secret: Some("s".repeat(32)), ..Default::default() },
            ..config
        };
        assert_eq!(configured.minting_auth().unwrap().hs256_secret, Some("s".repeat(32)));
    }

    #[test]
    fn file_then_env_then_flags() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "tw.toml",
                "data_dir = \"from-file\"\n[lake]\nrow_group_rows = 1000\nmax_file_age_secs = 9.0\n",
            )?;
            jail.set_env("TRACKWIRE_LAKE__MAX_FILE_AGE_SECS", "0.5");
            jail.set_env("TRACKWIRE_INGEST__MAX_DECOMPRESSED_BYTES", "1000000");
            jail.set_env("TRACKWIRE_CACHE", "/not/a/config/key");
            jail.set_env("TRACKWIRE_QUIC_ADDR", "127.0.0.1:4999");
            jail.set_env("TRACKWIRE_QUIC__MAX_FRAME_BYTES", "12345");
            jail.set_env("TRACKWIRE_QUIC__IDLE_TIMEOUT_SECS", "2.5");
            let flags = flags(&["--http-addr", "127.0.0.1:9999"]);
            let config = Config::load(Some(std::path::Path::new("tw.toml")), &flags).map_err(|e| e.to_string())?.config;
            assert_eq!(config.data_dir, PathBuf::from("from-file"));
            assert_eq!(config.lake.row_group_rows, 1000);
            assert_eq!(config.lake.max_file_age_secs, 0.5);
            assert_eq!(config.ingest.max_decompressed_bytes, 1_000_000);
            assert_eq!(config.http_addr.port(), 9999);
            assert_eq!((config.quic_addr.port(), config.quic.max_frame_bytes), (4999, 12345));
            assert_eq!(config.quic.idle_timeout, std::time::Duration::from_millis(2500));
            Ok(())
        });
    }

    #[test]
    fn every_flag_sets_the_field_it_names() {
        figment::Jail::expect_with(|_| {
            let flags = flags(&[
                "--http-addr=127.0.0.1:1",
                "--data-dir=d",
                "--quic-addr=127.0.0.1:2",
                "--lake-url=s3://lake/prefix",
                "--kafka-brokers=k:9092",
                "--store-url=postgres://u:p@h/db",
                "--role=pipeline",
                "--partitions=1/3",
            ]);
            let Settings { config, role } = Config::load(None, &flags).map_err(|e| format!("{e:#}"))?;
            assert_eq!((config.http_addr.port(), config.quic_addr.port()), (1, 2));
            assert_eq!(config.data_dir, PathBuf::from("d"));
            assert_eq!(config.lake.url.as_deref(), Some("s3://lake/prefix"));
            let RoleSettings::Pipeline { raw, store_url, share } = role else { panic!("not a worker: {role:?}") };
            assert_eq!((raw.brokers.as_str(), store_url.as_str()), ("k:9092", "postgres://u:p@h/db"));
            assert_eq!(share, WorkerShare { index: 1, count: 3 });
            Ok(())
        });
    }

    #[test]
    fn a_role_is_refused_without_what_it_runs_on() {
        figment::Jail::expect_with(|_| {
            let err = format!("{:#}", Config::load(None, &flags(&["--role=gateway"])).unwrap_err());
            assert!(err.contains("kafka.brokers"), "{err}");
            let err = format!("{:#}", Config::load(None, &flags(&["--role=api", "--kafka-brokers=k:1"])).unwrap_err());
            assert!(err.contains("store.url"), "{err}");
            let err = format!(
                "{:#}",
                Config::load(
                    None,
                    &flags(&[
                        "--role=pipeline",
                        "--kafka-brokers=k:1",
                        "--store-url=postgres://h/d",
                        "--partitions=3/3"
                    ])
                )
                .unwrap_err()
            );
            assert!(err.contains("cluster.partitions"), "{err}");
            let gateway =
                Config::load(None, &flags(&["--role=gateway", "--kafka-brokers=k:1"])).map_err(|e| e.to_string())?;
            assert!(matches!(gateway.role, RoleSettings::Gateway { .. }), "{:?}", gateway.role);
            assert!(matches!(
                Config::load(None, &ServeFlags::default()).map_err(|e| e.to_string())?.role,
                RoleSettings::All
            ));
            Ok(())
        });
    }

    #[test]
    fn invalid_values_are_named() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("TRACKWIRE_LAKE__ROW_GROUP_ROWS", "0");
            let err = Config::load(None, &ServeFlags::default()).unwrap_err().to_string();
            assert!(err.contains("lake.row_group_rows"), "{err}");
            jail.set_env("TRACKWIRE_LAKE__ROW_GROUP_ROWS", "10");
            jail.set_env("TRACKWIRE_LAKE__NO_SUCH_FIELD", "1");
            let err = format!("{:#}", Config::load(None, &ServeFlags::default()).unwrap_err());
            assert!(err.contains("no_such_field"), "{err}");
            jail.set_env("TRACKWIRE_LAKE__NO_SUCH_FIELD", "");
            Ok(())
        });
    }

    #[test]
    fn every_field_has_a_doc_line() {
        assert_eq!(documented::undocumented_fields().unwrap(), Vec::<String>::new());
    }

    #[test]
    fn the_printed_configuration_loads_back_as_it_was_with_unset_fields_commented() {
        figment::Jail::expect_with(|jail| {
            let flags = flags(&["--kafka-brokers=k:9092", "--http-addr=127.0.0.1:8181"]);
            let config = Config::load(None, &flags).map_err(|e| e.to_string())?.config;
            let printed = documented::render(&config).map_err(|e| e.to_string())?;
            jail.create_file("printed.toml", &printed)?;
            let reloaded = Config::load(Some(std::path::Path::new("printed.toml")), &ServeFlags::default())
                .map_err(|e| format!("{e:#}\n{printed}"))?
                .config;
            assert_eq!(toml::to_string(&reloaded).unwrap(), toml::to_string(&config).unwrap());
            // Set fields print their value, unset optional ones are commented out, each under its doc.
            for expected in [
                "[kafka]\n\n# Broker list",
                "brokers = \"k:9092\"",
                "# sasl_password = \"\"",
                "[quic]",
                "# cert_path = \"\"",
                "idle_timeout_secs = 60.0",
                "[api.rate_limit]",
                "# How often the retention job runs, seconds.\nretention_interval_secs = 3600",
            ] {
                assert!(printed.contains(expected), "{expected:?} not in\n{printed}");
            }
            Ok(())
        });
    }

    /// The environment is read for exactly the configuration's own top-level fields.
    #[test]
    fn every_top_level_field_is_read_from_the_environment() {
        let serialized = serde_json::to_value(Config::default()).unwrap();
        let mut fields: Vec<&str> = serialized.as_object().unwrap().keys().map(String::as_str).collect();
        let mut sections = SECTIONS.to_vec();
        fields.sort_unstable();
        sections.sort_unstable();
        assert_eq!(fields, sections);
    }
}
