//! The command line: one subcommand per scenario, plus the discard server the ceilings run against.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "trackwire-loadtest",
    about = "Load test for a Trackwire gateway: live QUIC fleets, HTTP offline uploads, or both; open-loop \
             rate control, HDR latency histograms, JSON report and SVG plots, ceilings in the same run",
    version
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Live devices, each its own QUIC connection, sending a batch every `batch_size / hz` seconds.
    QuicFleet(RunArgs),
    /// The mobile SDK uploading offline workouts over HTTP: batches in order, `concurrency` connections.
    HttpUpload(RunArgs),
    /// Both at once: the fleet streams live while the uploads run.
    Mix(RunArgs),
    /// A discard server on the same HTTP (axum/hyper) and QUIC (quinn) stack as the gateway: it reads
    /// each batch, verifies its framing and FlatBuffers, acks and drops it. The ceiling runs use it.
    Discard(DiscardArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    QuicFleet,
    HttpUpload,
    Mix,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::QuicFleet => "quic-fleet",
            Scenario::HttpUpload => "http-upload",
            Scenario::Mix => "mix",
        }
    }

    pub fn quic(self) -> bool {
        matches!(self, Scenario::QuicFleet | Scenario::Mix)
    }

    pub fn http(self) -> bool {
        matches!(self, Scenario::HttpUpload | Scenario::Mix)
    }
}

#[derive(Args, Debug, Clone, serde::Serialize)]
pub struct RunArgs {
    /// The gateway's HTTP address (host:port): `POST /v1/ingest` and `GET /metrics`.
    #[arg(long, default_value = "127.0.0.1:8080", env = "TRACKWIRE_LOADTEST_TARGET")]
    pub target: String,
    /// The gateway's QUIC address (host:port). Default: the host of `--target`, port 4433.
    #[arg(long)]
    pub quic_target: Option<String>,
    /// PEM certificate(s) to trust for QUIC: the gateway's own (the development one is
    /// `<data-dir>/quic-cert.pem`) or a CA bundle such as /etc/ssl/certs/ca-certificates.crt.
    #[arg(long, default_value = "data/quic-cert.pem")]
    pub quic_cert: PathBuf,
    /// Name the gateway's certificate carries.
    #[arg(long, default_value = "localhost")]
    pub quic_server_name: String,
    /// Device bearer token (the same for every simulated device).
    #[arg(long, default_value = "dev-token", env = "TRACKWIRE_LOADTEST_TOKEN")]
    pub token: String,

    /// How long to generate load, in seconds (the ramp-up included); then outstanding acks are awaited.
    #[arg(long, default_value_t = 30.0)]
    pub duration_secs: f64,
    /// Stop after sending this many batches in all (0: no limit).
    #[arg(long, default_value_t = 0)]
    pub max_requests: u64,
    /// Most time to wait for outstanding acks once sending has stopped.
    #[arg(long, default_value_t = 30.0)]
    pub drain_secs: f64,
    /// Seed of the simulated workouts: the same seed sends the same samples (with new workout ids).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Live devices (QUIC), each its own connection.
    #[arg(long, default_value_t = 100)]
    pub devices: u32,
    /// Samples per second each device records.
    #[arg(long, default_value_t = 1.0)]
    pub hz: f64,
    /// Samples per live batch: a device sends every `batch_size / hz` seconds.
    #[arg(long, default_value_t = 1)]
    pub batch_size: u32,
    /// Devices connect evenly over this many seconds.
    #[arg(long, default_value_t = 5.0)]
    pub ramp_up_secs: f64,
    /// Connections sharing one UDP socket in the load generator (the gateway sees distinct
    /// connections either way; this only keeps the generator under its file-descriptor limit).
    #[arg(long, default_value_t = 250)]
    pub devices_per_socket: u32,
    /// Length of each simulated workout, minutes; a device starts the next one when one ends.
    #[arg(long, default_value_t = 30.0)]
    pub workout_minutes: f64,

    /// Samples per uploaded batch.
    #[arg(long, default_value_t = 1000)]
    pub upload_batch_size: u32,
    /// HTTP connections uploading at once.
    #[arg(long, default_value_t = 2)]
    pub concurrency: u32,
    /// Open-loop upload rate in batches per second over all connections: each batch has an
    /// intended send time and its latency is measured from it, so a slow server cannot hide its
    /// queueing. 0: closed loop, each connection sends its next batch when the last is acked.
    #[arg(long, default_value_t = 0.0)]
    pub upload_rate: f64,
    /// Length of each uploaded workout, minutes.
    #[arg(long, default_value_t = 60.0)]
    pub upload_workout_minutes: f64,
    /// Upload workouts simulated and encoded before the timed window; the senders reuse them
    /// round-robin, each time under a new workout id.
    #[arg(long, default_value_t = 64)]
    pub prepared_workouts: u32,
    /// Threads simulating the prepared upload workouts (before the timed window).
    #[arg(long, default_value_t = 2)]
    pub generator_threads: u32,
    /// Retries of a batch the server could not take (503, lost connection) before it counts as an error.
    #[arg(long, default_value_t = 5)]
    pub max_retries: u32,

    /// Also run the same load against a discard server (same HTTP and QUIC stack) and report
    /// our throughput as a ratio of it.
    #[arg(long)]
    pub ceiling: bool,
    /// Kafka bootstrap servers: also measure a bare rdkafka producer sending the same batches.
    #[arg(long)]
    pub kafka_brokers: Option<String>,

    /// Where to write the JSON report.
    #[arg(long, default_value = "loadtest-report.json")]
    pub report: PathBuf,
    /// Directory for the plots (latency.svg, throughput.svg, server.svg).
    #[arg(long, default_value = "loadtest-plots")]
    pub plots: PathBuf,
    /// Append one NDJSON line per acked batch (`workout_id`, `seq`, `samples`, `duplicate`):
    /// what a checker compares with the lake.
    #[arg(long)]
    pub acked_log: Option<PathBuf>,
    /// No progress bar (it is hidden anyway when stderr is not a terminal).
    #[arg(long)]
    pub no_progress: bool,
}

impl RunArgs {
    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.duration_secs.max(0.0))
    }

    pub fn quic_target(&self) -> String {
        self.quic_target.clone().unwrap_or_else(|| {
            let host = self.target.rsplit_once(':').map_or(self.target.as_str(), |(h, _)| h);
            format!("{host}:4433")
        })
    }

    /// Rejects settings that cannot describe a run, with what to change.
    pub fn validate(&self, scenario: Scenario) -> anyhow::Result<()> {
        anyhow::ensure!(self.duration_secs > 0.0, "--duration-secs must be positive");
        anyhow::ensure!(
            !self.token.is_empty() && self.token.chars().all(|c| c.is_ascii_graphic()),
            "--token must be printable ASCII without spaces (it is sent as `Authorization: Bearer <token>`)"
        );
        if scenario.quic() {
            anyhow::ensure!(self.devices > 0, "--devices must be at least 1");
            anyhow::ensure!(self.hz > 0.0 && self.hz <= 50.0, "--hz must be in (0, 50]");
            anyhow::ensure!(self.batch_size > 0, "--batch-size must be at least 1");
            anyhow::ensure!(self.devices_per_socket > 0, "--devices-per-socket must be at least 1");
        }
        if scenario.http() {
            anyhow::ensure!(self.concurrency > 0, "--concurrency must be at least 1");
            anyhow::ensure!(self.upload_batch_size > 0, "--upload-batch-size must be at least 1");
            anyhow::ensure!(self.upload_rate >= 0.0, "--upload-rate must be 0 (closed loop) or positive");
            anyhow::ensure!(self.generator_threads > 0, "--generator-threads must be at least 1");
            anyhow::ensure!(self.prepared_workouts > 0, "--prepared-workouts must be at least 1");
        }
        anyhow::ensure!(
            self.workout_minutes > 0.0 && self.upload_workout_minutes > 0.0,
            "workout lengths must be positive"
        );
        Ok(())
    }
}

/// `RunArgs` from command-line words (for tests).
#[cfg(test)]
pub fn run_args(words: &[&str]) -> RunArgs {
    #[derive(Parser)]
    struct Words {
        #[command(flatten)]
        args: RunArgs,
    }
    Words::parse_from(std::iter::once("trackwire-loadtest").chain(words.iter().copied())).args
}

#[derive(Args, Debug, Clone)]
pub struct DiscardArgs {
    /// HTTP address to listen on (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub http_addr: SocketAddr,
    /// QUIC (UDP) address to listen on.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub quic_addr: SocketAddr,
    /// Directory for the development certificate (`quic-cert.pem`), created if missing.
    #[arg(long)]
    pub cert_dir: PathBuf,
}
