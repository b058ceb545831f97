//! The sections of the configuration file that are Trackwire's own; the others (`[quic]`,
//! `[log]`, `[auth]`, `[privacy]`, `[push]`, `[api.rate_limit]`) are the library configurations
//! themselves.

use std::path::PathBuf;

use anyhow::bail;
use serde::{Deserialize, Serialize};
use trackwire_ingest::DeviceToken;

use super::DEV_TOKEN;
use super::role::{Role, WorkerShare};
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ApiSection {
    /// Largest file `POST /api/v1/uploads` accepts, in bytes as sent; a gzipped file may expand
    /// to as much, and no further than a real file of its kind would.
    pub max_upload_bytes: usize,
    /// Uploaded files imported at once (each may take about four times its expanded size in
    /// memory while it is parsed); later uploads wait their turn.
    pub max_concurrent_imports: usize,
    /// Users' archives (`GET /api/v1/users/{id}/export`) written at once, each on a blocking
    /// thread while its client reads it; later ones wait their turn.
    pub max_concurrent_exports: usize,
    /// Requests per token: `per_minute` sustained, `burst` at once (then `429`).
    pub rate_limit: trackwire_api::limits::RateLimitConfig,
}

impl Default for ApiSection {
    fn default() -> Self {
        ApiSection {
            max_upload_bytes: 64 << 20,
            max_concurrent_imports: 2,
            max_concurrent_exports: 2,
            rate_limit: Default::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
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
    /// Partitions of the events and points topics Trackwire creates when they are missing.
    pub partitions: i32,
    /// Copies of every partition of the topics Trackwire creates (events, points, raw): 3 so an
    /// acked batch survives a broker; 1 for a single development broker.
    pub replication_factor: i32,
    /// Copies that must hold a message before the brokers confirm it (`min.insync.replicas`): at
    /// most `replication_factor`.
    pub min_insync_replicas: i32,
    /// Days the brokers keep messages of the events, points and raw topics (`retention.ms`; 0:
    /// forever). The events and points topics are also compacted (`cleanup.policy=compact,delete`,
    /// after a week) so the tombstones of erased and deleted workouts take effect.
    pub retention_days: u32,
    /// What an existing topic whose partitions, replication or retention differ from these
    /// settings does at start: `warn` (a warning per difference) or `refuse` (the process does
    /// not start: for production).
    pub on_topic_mismatch: TopicMismatch,
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
    /// `sasl.username`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sasl_username: Option<String>,
    /// `sasl.password`.
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
            partitions: 8,
            replication_factor: 3,
            min_insync_replicas: 2,
            retention_days: 90,
            on_topic_mismatch: TopicMismatch::Warn,
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

/// What an existing topic that differs from the configuration does at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TopicMismatch {
    Warn,
    Refuse,
}

/// Messages of the compacted topics stay this long before compaction may drop them, so a
/// consumer that keeps up sees every event, not only each workout's last.
const COMPACTION_LAG_MS: i64 = 7 * 86_400_000;

impl KafkaSection {
    /// Replication and retention of every topic Trackwire writes.
    pub fn topic_settings(&self) -> trackwire_ingest::log::kafka::TopicSettings {
        trackwire_ingest::log::kafka::TopicSettings {
            replication_factor: self.replication_factor,
            min_insync_replicas: self.min_insync_replicas,
            retention_ms: if self.retention_days == 0 { -1 } else { i64::from(self.retention_days) * 86_400_000 },
        }
    }

    /// The events and points topics as they should be: compacted too, for their tombstones.
    pub fn output_topic_specs(&self) -> Vec<trackwire_ingest::log::kafka::TopicSpec> {
        [&self.events_topic, &self.points_topic]
            .into_iter()
            .map(|name| trackwire_ingest::log::kafka::TopicSpec {
                name: name.clone(),
                partitions: self.partitions,
                settings: self.topic_settings(),
                compacted: true,
                compaction_lag_ms: COMPACTION_LAG_MS,
            })
            .collect()
    }

    /// The sink's configuration, when brokers are configured.
    pub fn sink_config(&self) -> Option<trackwire_sinks::kafka::KafkaConfig> {
        let brokers = self.brokers.as_ref()?;
        let mut config = trackwire_sinks::kafka::KafkaConfig::new(brokers.clone());
        config.events_topic = self.events_topic.clone();
        config.points_topic = self.points_topic.clone();
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
            settings: self.topic_settings(),
        })
    }

    /// A librdkafka configuration for an admin client of the brokers.
    pub fn admin_client(&self) -> rdkafka::config::ClientConfig {
        let mut client = rdkafka::config::ClientConfig::new();
        client.set("bootstrap.servers", self.brokers.as_deref().unwrap_or_default());
        for (key, value) in self.client_settings() {
            client.set(key, value);
        }
        client
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
pub(super) const MIN_KAFKA_MESSAGE_BYTES: usize = 64 << 10;

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
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
    /// This worker's share, from `partitions`, validated.
    pub fn worker(&self) -> anyhow::Result<WorkerShare> {
        let Some(spec) = self.partitions.as_deref() else {
            return Ok(WorkerShare { index: 0, count: 1 });
        };
        let parsed = spec.split_once('/').and_then(|(i, n)| Some((i.trim().parse().ok()?, n.trim().parse().ok()?)));
        match parsed {
            Some((index, count)) if count > 0 && index < count => Ok(WorkerShare { index, count }),
            _ => bail!(
                "cluster.partitions '{spec}' is not I/N with 0 <= I < N (e.g. --partitions 0/2 for the first of two workers)"
            ),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct IngestSection {
    /// Accepted bearer tokens, each bound to one `device_id` or to `"*"` (any device). The default
    /// is the single development token `dev-token` for any device: replace it in production.
    pub tokens: Vec<DeviceToken>,
    /// Largest request body accepted as sent, in bytes (HTTP 413 above it).
    pub max_body_bytes: usize,
    /// Largest body accepted after `Content-Encoding` decompression, in bytes (HTTP 413 above);
    /// a compressed body also expands no further than the largest batch the two limits below
    /// allow (about 2.5 MB with the defaults).
    pub max_decompressed_bytes: usize,
    /// Most samples accepted in one batch (HTTP 400 above).
    pub max_samples_per_batch: usize,
    /// Most control events accepted in one batch (HTTP 400 above).
    pub max_events_per_batch: usize,
    /// The earliest instant a sample or event may carry (ISO 8601); earlier ones are refused
    /// (`400 invalid_time`, an upload's file reported as `error`). Lower it to import files whose
    /// devices wrote placeholder times.
    pub earliest_sample_time: String,
    /// How far past the server's clock a sample or event may be, in seconds.
    pub max_sample_ahead_secs: f64,
}

impl IngestSection {
    /// The time bounds these settings give; Err says which is wrong.
    pub fn time_bounds(&self) -> Result<trackwire_ingest::TimeBounds, String> {
        let earliest = chrono::DateTime::parse_from_rfc3339(&self.earliest_sample_time).map_err(|e| {
            format!(
                "ingest.earliest_sample_time {:?} is not an ISO 8601 instant (2000-01-01T00:00:00Z): {e}",
                self.earliest_sample_time
            )
        })?;
        if !(self.max_sample_ahead_secs >= 0.0 && self.max_sample_ahead_secs < 1e9) {
            return Err("ingest.max_sample_ahead_secs must be 0 or a positive number of seconds".into());
        }
        Ok(trackwire_ingest::TimeBounds {
            earliest_ms: earliest.timestamp_millis(),
            max_ahead_ms: (self.max_sample_ahead_secs * 1000.0).round() as i64,
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineSection {
    /// Pipeline worker threads (shards); 0 means one per available core.
    pub shards: usize,
    /// Records queued per shard before the log writer waits (backpressure).
    pub queue_depth: usize,
    /// Least device time between two `WorkoutUpdated` events of a streaming workout, in
    /// seconds (0: after every batch). Pauses, resumes and the end always emit one.
    pub update_interval_secs: f64,
    /// A workout in progress with no batch stored for this long is completed by the server
    /// (`WorkoutCompleted` with `end_reason` `idle_timeout`: its lake row, best efforts, and the
    /// log released), in seconds; 0 never. The log (and in scale-out the raw topic's retention)
    /// keeps a workout from its first batch until it ends, so this bounds what one silent
    /// device pins.
    pub idle_timeout_secs: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
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
    /// The secret of `s3_access_key_id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub s3_secret_access_key: Option<String>,
    /// Longest one S3 request may take, in seconds; a slower or failed upload is retried at the
    /// next flush (the sink's lag and last error show on /healthcheck meanwhile).
    pub s3_request_timeout_secs: f64,
    /// A commit is due once a table's open Parquet file reaches this many bytes; compaction merges
    /// a partition's files smaller than this into files of about this size.
    pub target_file_bytes: usize,
    /// A commit is due once a table's oldest uncommitted row has waited this long, in seconds,
    /// however small its files. Until then its rows are safe in the log (replayed after a crash).
    pub max_file_age_secs: f64,
    /// A partition is compacted once it holds more than this many files smaller than
    /// `target_file_bytes` (each commit adds a file to every partition it wrote to).
    pub compact_above_files: usize,
    /// Files replaced by compaction stay readable this long, in seconds (for queries and time
    /// travel that started before), then vacuum deletes them. Files replaced by an erasure or by
    /// coordinate retention are deleted at once.
    pub vacuum_retention_secs: f64,
    /// A partition none of whose files was committed for this many seconds is settled (its hour
    /// is over) and is merged, in the background, into files of `settled_target_file_bytes`.
    pub settled_after_secs: f64,
    /// Size of the files settled partitions are merged into (written as multipart uploads, so
    /// memory holds a part or two, not the file): a few files per hour however high the rate.
    pub settled_target_file_bytes: usize,
    /// Rows per Parquet row group (100k–1M: few enough for readers to skip by statistics, many enough to compress well).
    pub row_group_rows: usize,
    /// Most partitions (hours) with an open file per table; past it the oldest open file is
    /// committed early. Bounds memory when a backfill spans many hours.
    pub max_open_partitions: usize,
    /// Lake files larger than this many bytes are uploaded as multipart uploads (parts of 16 MiB).
    pub multipart_threshold_bytes: usize,
    /// zstd level of the Parquet pages, 1–22: higher levels make files a little smaller for much
    /// more CPU (on the points table level 3 is 2 % smaller than level 1 and a third slower).
    pub zstd_level: i32,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
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
    #[schema(value_type = Option<String>)]
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SinksSection {
    /// How often sinks commit what is due (event log and read store commit at every tick), in
    /// milliseconds.
    pub flush_interval_ms: u64,
    /// How long a sink may keep failing (every flush an error: its service away, its store
    /// poisoned by an I/O error) before `/healthcheck` answers 503 so that an orchestrator
    /// restarts or replaces the process, in seconds; 0 never does.
    pub unhealthy_after_secs: u64,
}

impl PipelineSection {
    /// `idle_timeout_secs` as a duration; None when workouts never time out.
    pub fn idle_timeout(&self) -> Option<std::time::Duration> {
        (self.idle_timeout_secs > 0.0).then(|| std::time::Duration::from_secs_f64(self.idle_timeout_secs))
    }
}

impl SinksSection {
    /// `unhealthy_after_secs` in ms, as `/healthcheck` compares it.
    pub fn unhealthy_after_ms(&self) -> i64 {
        i64::try_from(self.unhealthy_after_secs.saturating_mul(1000)).unwrap_or(i64::MAX)
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
            earliest_sample_time: "2000-01-01T00:00:00Z".into(),
            max_sample_ahead_secs: 86_400.0,
        }
    }
}

impl Default for PipelineSection {
    fn default() -> Self {
        PipelineSection {
            shards: 0,
            queue_depth: 1024,
            update_interval_secs: trackwire_pipeline::DEFAULT_UPDATE_INTERVAL_MS as f64 / 1000.0,
            // Six hours: longer than any pause a device records through (an ultra's night
            // stop, a phone out of range on a mountain), short enough that a dead watch's
            // workout is in the day's lake and its log segments go within the day.
            idle_timeout_secs: 21_600.0,
        }
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
            compact_above_files: 3,
            vacuum_retention_secs: 3600.0,
            settled_after_secs: 600.0,
            settled_target_file_bytes: 1 << 30,
            row_group_rows: 128 * 1024,
            max_open_partitions: 32,
            multipart_threshold_bytes: 16 << 20,
            zstd_level: trackwire_sinks::lake::DEFAULT_ZSTD_LEVEL,
        }
    }
}

impl Default for SinksSection {
    fn default() -> Self {
        SinksSection { flush_interval_ms: 500, unhealthy_after_secs: 300 }
    }
}

/// HTTPS on the HTTP listener (ingest and the API).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSection {
    /// PEM certificate chain (with `key_path`); unset: plain HTTP, for a proxy or load balancer
    /// that terminates TLS. Read again when the files change (cert-manager renews them in place).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub cert_path: Option<PathBuf>,
    /// PEM private key matching `cert_path`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub key_path: Option<PathBuf>,
    /// Seconds between looks at the files for a renewed certificate.
    pub reload_interval_secs: f64,
}

impl Default for TlsSection {
    fn default() -> Self {
        TlsSection { cert_path: None, key_path: None, reload_interval_secs: 30.0 }
    }
}

impl TlsSection {
    /// The files to serve HTTPS with, when configured.
    pub fn files(&self) -> Option<trackwire_api::tls::TlsFiles> {
        Some(trackwire_api::tls::TlsFiles {
            cert_path: self.cert_path.clone()?,
            key_path: self.key_path.clone()?,
            reload_every: std::time::Duration::from_secs_f64(self.reload_interval_secs),
        })
    }
}
