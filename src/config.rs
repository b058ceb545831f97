//! The one configuration struct. Sources, later ones winning: built-in defaults, the TOML file
//! given by `--config`, `TRACKWIRE_*` environment variables (nested fields with `__`, e.g.
//! `TRACKWIRE_LAKE__MAX_FILE_AGE_SECS=5`), then command-line flags. `trackwire print-config`
//! shows the result.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, bail};
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use trackwire_ingest::DeviceToken;

/// The development token accepted when no tokens are configured.
pub const DEV_TOKEN: &str = "dev-token";
/// The issuer of development JWTs (`trackwire token`).
pub const DEV_ISSUER: &str = "trackwire-dev";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address of the HTTP listener, serving both ingest (`/v1/ingest`) and the API.
    pub http_addr: SocketAddr,
    /// UDP address of the QUIC listener (live ingest from wearables, ALPN `trackwire/1`).
    pub quic_addr: SocketAddr,
    /// Directory holding all state: `log/` (durable log), `lake/` (Parquet), `events/` (workout
    /// events, JSON lines) and `store/` (the API's read store).
    pub data_dir: PathBuf,
    pub ingest: IngestSection,
    pub quic: QuicSection,
    pub log: LogSection,
    pub pipeline: PipelineSection,
    pub lake: LakeSection,
    pub kafka: KafkaSection,
    pub sinks: SinksSection,
    pub store: StoreSection,
    /// Scale-out: this process's role, and a pipeline worker's share of the raw partitions.
    pub cluster: ClusterSection,
    /// Bearer JWTs for `/api/v1`: issuer, audience, keys (JWKS file or URL; HS256 secret for
    /// development) and the admin scope. With no key source, a development HS256 secret is kept in
    /// `<data_dir>/dev-jwt.secret` and `trackwire token --user ID` mints tokens with it.
    pub auth: trackwire_api::auth::AuthConfig,
    pub api: ApiSection,
    /// Coordinate retention: `coordinate_retention_days` (0 keeps positions forever) and how often
    /// the job runs (`retention_interval_secs`).
    pub privacy: trackwire_api::PrivacyConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiSection {
    /// Largest file `POST /api/v1/uploads` accepts, bytes (as sent; gzip may expand it 16×).
    pub max_upload_bytes: usize,
    /// Requests per token: `per_minute` sustained, `burst` at once (then `429`).
    pub rate_limit: trackwire_api::limits::RateLimitConfig,
}

impl Default for ApiSection {
    fn default() -> Self {
        ApiSection { max_upload_bytes: 64 << 20, rate_limit: Default::default() }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaSection {
    /// Broker list `host:port[,host:port…]`; unset = no Kafka sink (the embedded default: events
    /// go to `<data_dir>/events/*.jsonl` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub brokers: Option<String>,
    /// Topic of workout events (JSON, the seed's shape).
    pub events_topic: String,
    /// Topic of enriched points (Arrow IPC stream, the lake's `points` schema).
    pub points_topic: String,
    /// Partitions of the topics Trackwire creates when they are missing.
    pub partitions: i32,
    /// Largest message produced to the events and points topics (librdkafka's
    /// `message.max.bytes`; the brokers' `message.max.bytes` must allow it). A record's points
    /// beyond it go as several consecutive messages.
    pub max_message_bytes: usize,
    /// Scale-out only: the topic that is the durable log between gateways and pipeline workers
    /// (raw FlatBuffers batches, keyed by workout id).
    pub raw_topic: String,
    /// Scale-out only: partitions of `raw_topic`. Decides which partition (and so which worker)
    /// holds a workout: every gateway and worker must use the same value, and it must not change
    /// while workouts are in progress.
    pub raw_partitions: i32,
    /// `security.protocol`: plaintext, ssl, sasl_plaintext or sasl_ssl.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security_protocol: Option<String>,
    /// `sasl.mechanism`, e.g. PLAIN or SCRAM-SHA-512.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sasl_mechanism: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sasl_username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sasl_password: Option<String>,
    /// CA certificate (PEM) to verify the brokers' TLS certificates.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ssl_ca_location: Option<String>,
    /// Any other librdkafka producer setting, e.g. `{ "linger.ms" = "20" }`; these win.
    pub librdkafka: std::collections::BTreeMap<String, String>,
}

impl Default for KafkaSection {
    fn default() -> Self {
        let defaults = trackwire_sinks::kafka::KafkaConfig::new("");
        KafkaSection {
            brokers: None,
            events_topic: defaults.events_topic,
            points_topic: defaults.points_topic,
            partitions: defaults.partitions,
            max_message_bytes: defaults.max_message_bytes,
            raw_topic: "trackwire.raw.v1".into(),
            raw_partitions: 8,
            security_protocol: None,
            sasl_mechanism: None,
            sasl_username: None,
            sasl_password: None,
            ssl_ca_location: None,
            librdkafka: Default::default(),
        }
    }
}

impl KafkaSection {
    /// The sink's configuration, when brokers are configured.
    pub fn sink_config(&self) -> Option<trackwire_sinks::kafka::KafkaConfig> {
        let brokers = self.brokers.as_ref()?;
        let mut config = trackwire_sinks::kafka::KafkaConfig::new(brokers.clone());
        config.events_topic = self.events_topic.clone();
        config.points_topic = self.points_topic.clone();
        config.partitions = self.partitions;
        config.max_message_bytes = self.max_message_bytes;
        config.client = self.client_settings();
        Some(config)
    }

    /// The raw topic's configuration (scale-out), when brokers are configured.
    pub fn raw_topic_config(&self, queue_depth: usize) -> Option<trackwire_ingest::log::kafka::RawTopicConfig> {
        Some(trackwire_ingest::log::kafka::RawTopicConfig {
            brokers: self.brokers.clone()?,
            topic: self.raw_topic.clone(),
            partitions: self.raw_partitions,
            queue_depth,
            client: self.client_settings(),
        })
    }

    /// The security settings and `librdkafka` extras, as librdkafka keys.
    fn client_settings(&self) -> std::collections::BTreeMap<String, String> {
        let mut client = std::collections::BTreeMap::new();
        let named = [
            ("security.protocol", &self.security_protocol),
            ("sasl.mechanism", &self.sasl_mechanism),
            ("sasl.username", &self.sasl_username),
            ("sasl.password", &self.sasl_password),
            ("ssl.ca.location", &self.ssl_ca_location),
        ];
        for (key, value) in named {
            if let Some(value) = value {
                client.insert(key.into(), value.clone());
            }
        }
        client.extend(self.librdkafka.clone());
        client
    }
}

/// The least `kafka.max_message_bytes`: room for one event (a workout summary with its splits) and
/// a points message of a few samples with their schema.
const MIN_KAFKA_MESSAGE_BYTES: usize = 64 << 10;

/// Which part of Trackwire this process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
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

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterSection {
    /// `all` (default), `gateway`, `pipeline` or `api`. Every role but `all` needs
    /// `kafka.brokers`; `pipeline` and `api` need `store.url` (PostgreSQL).
    pub role: Role,
    /// Pipeline workers: `I/N`, this worker's index and the most workers there will be (e.g. the
    /// autoscaler's maximum). Worker I prefers the raw partitions p with p mod N = I; the others
    /// are shared out evenly, and a worker that stops renewing its leases (kept in PostgreSQL)
    /// loses its partitions to the rest.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partitions: Option<String>,
    /// A worker's claim on a partition lasts this long unless renewed (every third of it); a
    /// worker that stops renewing loses its partitions to the others after this many seconds.
    pub lease_secs: f64,
}

impl Default for ClusterSection {
    fn default() -> Self {
        ClusterSection { role: Role::All, partitions: None, lease_secs: 6.0 }
    }
}

impl ClusterSection {
    /// `(index, count)` from `partitions`, validated.
    pub fn worker(&self) -> anyhow::Result<(u32, u32)> {
        let Some(spec) = self.partitions.as_deref() else {
            return Ok((0, 1));
        };
        let parsed = spec.split_once('/').and_then(|(i, n)| Some((i.trim().parse().ok()?, n.trim().parse().ok()?)));
        match parsed {
            Some((index, count)) if count > 0 && index < count => Ok((index, count)),
            _ => bail!(
                "cluster.partitions '{spec}' is not I/N with 0 <= I < N (e.g. --partitions 0/2 for the first of two workers)"
            ),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestSection {
    /// Accepted bearer tokens, each bound to one `device_id` or to `"*"` (any device). The default
    /// is the single development token `dev-token` for any device: replace it in production.
    pub tokens: Vec<DeviceToken>,
    /// Largest request body accepted as sent, in bytes (HTTP 413 above it).
    pub max_body_bytes: usize,
    /// Largest body accepted after `Content-Encoding` decompression, in bytes (HTTP 413 above).
    pub max_decompressed_bytes: usize,
    /// Most samples accepted in one batch (HTTP 400 above).
    pub max_samples_per_batch: usize,
    /// Most control events accepted in one batch (HTTP 400 above).
    pub max_events_per_batch: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuicSection {
    /// PEM certificate chain of the QUIC server (with `key_path`). Both unset: a development
    /// self-signed certificate for localhost, generated once into the data directory
    /// (`quic-cert.pem`, `quic-key.pem`), its SHA-256 fingerprint logged and written to
    /// `quic-cert.sha256`. Devices trust that certificate (or pin the fingerprint).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_path: Option<PathBuf>,
    /// PEM private key matching `cert_path`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_path: Option<PathBuf>,
    /// Connections served at once; more are closed with code 4 (`LimitExceeded`, retry later).
    pub max_connections: usize,
    /// Workout streams one connection may have open at once (QUIC stream credit: the device waits).
    pub max_streams_per_connection: u32,
    /// Largest batch frame in bytes; a longer length prefix gets a `TooLarge` ack and the stream
    /// is stopped (code 3).
    pub max_frame_bytes: usize,
    /// Batches of one stream waiting for durability before the server stops reading the stream
    /// (backpressure through QUIC flow control).
    pub max_in_flight_per_stream: usize,
    /// A stream without a complete frame for this many seconds is stopped (code 5, `Stalled`).
    pub stream_idle_timeout_secs: f64,
    /// Seconds a new connection has to send its hello (bearer token) before it is closed.
    pub handshake_timeout_secs: f64,
    /// A connection with no packets at all (not even keep-alives) for this many seconds is dropped.
    pub idle_timeout_secs: f64,
    /// On shutdown, seconds to wait for streams to deliver their last acks before closing
    /// connections with code 6 (`GoingAway`).
    pub drain_timeout_secs: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSection {
    /// Size at which a log segment file is closed and a new one started, in bytes.
    pub segment_bytes: u64,
    /// Most bytes made durable by one fsync; more queued appends are committed in further groups.
    pub group_commit_bytes: usize,
    /// Appends that may wait for the log writer; beyond it ingest answers 503 with Retry-After.
    pub queue_depth: usize,
    /// Disk cap of the log in bytes: acked records are kept until every sink has delivered them,
    /// so while a sink's service (Kafka, S3) is down the log grows; at this size ingest pushes
    /// back (HTTP 503, QUIC stops reading) until the sink catches up.
    pub max_retained_bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineSection {
    /// Pipeline worker threads (shards); 0 means one per available core.
    pub shards: usize,
    /// Records queued per shard before the log writer waits (backpressure).
    pub queue_depth: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LakeSection {
    /// Where the lake lives: `s3://bucket/prefix` (S3 or any S3-compatible server) or a directory;
    /// unset = `<data_dir>/lake`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// S3-compatible endpoint, e.g. `http://127.0.0.1:9000`; unset = AWS (or `AWS_ENDPOINT`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3_endpoint: Option<String>,
    /// S3 region; unset = `AWS_REGION` / `AWS_DEFAULT_REGION`, else us-east-1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3_region: Option<String>,
    /// S3 credentials; unset = `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (or instance roles).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3_access_key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3_secret_access_key: Option<String>,
    /// Longest one S3 request may take, in seconds; a slower or failed upload is retried at the
    /// next flush (the sink's lag and last error show on /healthcheck meanwhile).
    pub s3_request_timeout_secs: f64,
    /// A Parquet file is committed once its encoded size reaches this many bytes.
    pub target_file_bytes: usize,
    /// A Parquet file is committed once its oldest row has waited this long, in seconds, however
    /// small it is. Until then its rows are safe in the log (replayed after a crash).
    pub max_file_age_secs: f64,
    /// Rows per Parquet row group (100k–1M: few enough for readers to skip by statistics, many enough to compress well).
    pub row_group_rows: usize,
    /// Most partitions (hours) with an open file per table; past it the oldest open file is
    /// committed early. Bounds memory when a backfill spans many hours.
    pub max_open_partitions: usize,
    /// Lake files larger than this many bytes are uploaded as multipart uploads (parts of 16 MiB).
    pub multipart_threshold_bytes: usize,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSection {
    /// Where the API's read store lives: `postgres://user:password@host:port/database`
    /// (PostgreSQL, shared by every process of a scale-out deployment; migrations are applied at
    /// start), or unset = the embedded file `<data_dir>/store/read.redb`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// PEM file of the CA certificates that sign the database's certificate (for RDS its
    /// `global-bundle.pem`). Set, the connection uses TLS (`sslmode=require` unless the URL says
    /// otherwise); unset, TLS only if the URL asks (`sslmode=require`), verified by the Mozilla roots.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SinksSection {
    /// How often sinks commit what is due (event log and read store commit at every tick), in
    /// milliseconds.
    pub flush_interval_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            http_addr: "127.0.0.1:8080".parse().expect("valid default address"),
            quic_addr: "127.0.0.1:4433".parse().expect("valid default address"),
            data_dir: PathBuf::from("data"),
            ingest: IngestSection::default(),
            quic: QuicSection::default(),
            log: LogSection::default(),
            pipeline: PipelineSection::default(),
            lake: LakeSection::default(),
            kafka: KafkaSection::default(),
            sinks: SinksSection::default(),
            store: StoreSection::default(),
            cluster: ClusterSection::default(),
            auth: Default::default(),
            api: ApiSection::default(),
            privacy: Default::default(),
        }
    }
}

impl Default for IngestSection {
    fn default() -> Self {
        IngestSection {
            tokens: vec![DeviceToken { token: DEV_TOKEN.into(), device_id: "*".into(), user_id: None }],
            max_body_bytes: 16 << 20,
            max_decompressed_bytes: 64 << 20,
            max_samples_per_batch: 100_000,
            max_events_per_batch: 10_000,
        }
    }
}

impl Default for QuicSection {
    fn default() -> Self {
        let defaults = trackwire_ingest::quic::QuicConfig::default();
        QuicSection {
            cert_path: None,
            key_path: None,
            max_connections: defaults.max_connections,
            max_streams_per_connection: defaults.max_streams_per_connection,
            max_frame_bytes: defaults.max_frame_bytes,
            max_in_flight_per_stream: defaults.max_in_flight_per_stream,
            stream_idle_timeout_secs: defaults.stream_idle_timeout.as_secs_f64(),
            handshake_timeout_secs: defaults.handshake_timeout.as_secs_f64(),
            idle_timeout_secs: defaults.idle_timeout.as_secs_f64(),
            drain_timeout_secs: defaults.drain_timeout.as_secs_f64(),
        }
    }
}

impl QuicSection {
    /// The server's view (validated first by [`Config::load`]).
    pub fn to_quic_config(&self) -> trackwire_ingest::quic::QuicConfig {
        use std::time::Duration;
        trackwire_ingest::quic::QuicConfig {
            cert_path: self.cert_path.clone(),
            key_path: self.key_path.clone(),
            max_connections: self.max_connections,
            max_streams_per_connection: self.max_streams_per_connection,
            max_frame_bytes: self.max_frame_bytes,
            max_in_flight_per_stream: self.max_in_flight_per_stream,
            stream_idle_timeout: Duration::from_secs_f64(self.stream_idle_timeout_secs),
            handshake_timeout: Duration::from_secs_f64(self.handshake_timeout_secs),
            idle_timeout: Duration::from_secs_f64(self.idle_timeout_secs),
            drain_timeout: Duration::from_secs_f64(self.drain_timeout_secs),
        }
    }
}

impl Default for LogSection {
    fn default() -> Self {
        LogSection {
            segment_bytes: 64 << 20,
            group_commit_bytes: 4 << 20,
            queue_depth: 1024,
            max_retained_bytes: 16 << 30,
        }
    }
}

impl Default for PipelineSection {
    fn default() -> Self {
        PipelineSection { shards: 0, queue_depth: 1024 }
    }
}

impl Default for LakeSection {
    fn default() -> Self {
        LakeSection {
            url: None,
            s3_endpoint: None,
            s3_region: None,
            s3_access_key_id: None,
            s3_secret_access_key: None,
            s3_request_timeout_secs: 30.0,
            target_file_bytes: 64 << 20,
            max_file_age_secs: 60.0,
            row_group_rows: 128 * 1024,
            max_open_partitions: 32,
            multipart_threshold_bytes: 16 << 20,
        }
    }
}

impl Default for SinksSection {
    fn default() -> Self {
        SinksSection { flush_interval_ms: 500 }
    }
}

/// Values given on the command line (None: not given).
#[derive(Debug, Default, Serialize)]
pub struct FlagOverrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_addr: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quic_addr: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lake: Option<LakeFlags>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kafka: Option<KafkaFlags>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store: Option<StoreFlags>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterFlags>,
}

/// Flags that set fields of `[cluster]`.
#[derive(Debug, Default, Serialize)]
pub struct ClusterFlags {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partitions: Option<String>,
}

/// Flags that set fields of `[store]`.
#[derive(Debug, Default, Serialize)]
pub struct StoreFlags {
    pub url: String,
}

/// Flags that set fields of `[kafka]`.
#[derive(Debug, Default, Serialize)]
pub struct KafkaFlags {
    pub brokers: String,
}

/// Flags that set fields of `[lake]`.
#[derive(Debug, Default, Serialize)]
pub struct LakeFlags {
    pub url: String,
}

const SECTIONS: [&str; 15] = [
    "http_addr",
    "quic_addr",
    "data_dir",
    "ingest",
    "quic",
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
];

impl Config {
    pub fn load(file: Option<&std::path::Path>, flags: FlagOverrides) -> anyhow::Result<Config> {
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
        figment = figment.merge(env).merge(Serialized::defaults(flags));
        let config: Config =
            figment.extract().context("invalid configuration (file, TRACKWIRE_* environment or flags)")?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> anyhow::Result<()> {
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
            ("lake.multipart_threshold_bytes", self.lake.multipart_threshold_bytes as u64),
            ("sinks.flush_interval_ms", self.sinks.flush_interval_ms),
            ("quic.max_connections", self.quic.max_connections as u64),
            ("quic.max_streams_per_connection", u64::from(self.quic.max_streams_per_connection)),
            ("quic.max_frame_bytes", self.quic.max_frame_bytes as u64),
            ("quic.max_in_flight_per_stream", self.quic.max_in_flight_per_stream as u64),
            ("api.max_upload_bytes", self.api.max_upload_bytes as u64),
            ("api.rate_limit.per_minute", u64::from(self.api.rate_limit.per_minute)),
            ("api.rate_limit.burst", u64::from(self.api.rate_limit.burst)),
            ("privacy.retention_interval_secs", self.privacy.retention_interval_secs),
        ];
        for (name, value) in positive {
            if value == 0 {
                bail!("{name} must be greater than 0");
            }
        }
        self.cluster.worker()?;
        if self.cluster.lease_secs.is_nan() || self.cluster.lease_secs <= 0.5 {
            bail!("cluster.lease_secs must be more than 0.5 seconds");
        }
        if self.kafka.raw_partitions < 1 {
            bail!("kafka.raw_partitions must be at least 1");
        }
        match self.cluster.role {
            Role::All => {}
            role => {
                if self.kafka.brokers.is_none() {
                    bail!(
                        "cluster.role {} needs kafka.brokers: the raw topic is the log between roles (give --kafka-brokers HOST:PORT, or run --role all)",
                        role.name()
                    );
                }
                if role != Role::Gateway && self.store.url.is_none() {
                    bail!(
                        "cluster.role {} needs store.url (postgres://…): the read store is shared between roles (give --store-url)",
                        role.name()
                    );
                }
            }
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
            ("quic.stream_idle_timeout_secs", self.quic.stream_idle_timeout_secs),
            ("quic.handshake_timeout_secs", self.quic.handshake_timeout_secs),
            ("quic.idle_timeout_secs", self.quic.idle_timeout_secs),
            ("quic.drain_timeout_secs", self.quic.drain_timeout_secs),
            ("lake.s3_request_timeout_secs", self.lake.s3_request_timeout_secs),
        ];
        for (name, value) in seconds {
            // Below 1e6 s (11 days): QUIC's idle timeout is a 62-bit count of milliseconds anyway.
            if !(value > 0.0 && value < 1e6) {
                bail!("{name} must be a positive number of seconds (below 1,000,000)");
            }
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
        if self.auth.hs256_secret.as_deref().is_some_and(|s| s.len() < 32) {
            bail!("auth.hs256_secret must be at least 32 characters (RFC 7518 §3.2: a key as long as the hash)");
        }
        Ok(())
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

    /// The lake's object store: `lake.url`, or `<data_dir>/lake`.
    pub fn lake_store(&self) -> anyhow::Result<std::sync::Arc<dyn object_store::ObjectStore>> {
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
    use super::*;

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
            let flags =
                FlagOverrides { http_addr: Some("127.0.0.1:9999".parse().unwrap()), ..FlagOverrides::default() };
            let config = Config::load(Some(std::path::Path::new("tw.toml")), flags).map_err(|e| e.to_string())?;
            assert_eq!(config.data_dir, PathBuf::from("from-file"));
            assert_eq!(config.lake.row_group_rows, 1000);
            assert_eq!(config.lake.max_file_age_secs, 0.5);
            assert_eq!(config.ingest.max_decompressed_bytes, 1_000_000);
            assert_eq!(config.http_addr.port(), 9999);
            assert_eq!((config.quic_addr.port(), config.quic.max_frame_bytes), (4999, 12345));
            Ok(())
        });
    }

    #[test]
    fn invalid_values_are_named() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("TRACKWIRE_LAKE__ROW_GROUP_ROWS", "0");
            let err = Config::load(None, FlagOverrides::default()).unwrap_err().to_string();
            assert!(err.contains("lake.row_group_rows"), "{err}");
            jail.set_env("TRACKWIRE_LAKE__ROW_GROUP_ROWS", "10");
            jail.set_env("TRACKWIRE_LAKE__NO_SUCH_FIELD", "1");
            let err = format!("{:#}", Config::load(None, FlagOverrides::default()).unwrap_err());
            assert!(err.contains("no_such_field"), "{err}");
            Ok(())
        });
    }
}
