//! `trackwire import FILE...`: GPX/TCX/FIT files through the same batches as the wire.
//!
//! Offline (the default) each file runs through the pipeline's sans-IO core right here and its
//! summary is printed; with `--server` the batches are uploaded to `POST /v1/ingest` instead, with
//! `--quic` streamed over QUIC like a watch would (optionally paced as if live: `--live-speed`).
//! The workout id is a UUIDv5 of the user, first fix time and sport, so importing the same file
//! twice is the same workout (and, uploaded, stored once). A multisport file becomes one workout
//! per session.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::json;
use trackwire_codec::import::{Imported, import_bytes};
use trackwire_codec::{WorkoutId, encode_batch};
use trackwire_ingest::quic::{Client, ClientConfig, read_certs};
use trackwire_pipeline::WorkoutSummary;

#[derive(clap::Args)]
pub struct ImportArgs {
    /// GPX, TCX or FIT files.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Print one JSON object per workout instead of a line of text (a multisport file holds one
    /// workout per session).
    #[arg(long)]
    json: bool,
    /// Upload to this server (e.g. http://127.0.0.1:8080) instead of computing offline.
    #[arg(long)]
    server: Option<String>,
    /// Stream to this QUIC address (e.g. 127.0.0.1:4433) instead, one stream per workout, each
    /// batch kept until acked and re-sent after a reconnect.
    #[arg(long, conflicts_with = "server")]
    quic: Option<std::net::SocketAddr>,
    /// PEM certificate(s) to trust for --quic: the server's certificate (in development
    /// `<data_dir>/quic-cert.pem`) or its CA.
    #[arg(long, default_value = "data/quic-cert.pem")]
    ca: PathBuf,
    /// Name the server's certificate must carry, for --quic.
    #[arg(long, default_value = "localhost")]
    server_name: String,
    /// With --quic, pace the batches like a live recording played N times faster (0: no pacing).
    #[arg(long, default_value_t = 0.0)]
    live_speed: f64,
    /// Bearer token for --server and --quic.
    #[arg(long, env = "TRACKWIRE_TOKEN", default_value = "dev-token")]
    token: String,
    /// User id the imported workouts belong to.
    #[arg(long, default_value = "importer")]
    user: String,
    /// Samples per uploaded batch.
    #[arg(long, default_value_t = 1000)]
    batch_size: usize,
}

pub fn run(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let quic = match args.quic {
        Some(addr) => Some(QuicUploader::connect(&args, addr)?),
        None => None,
    };
    let progress = indicatif::ProgressBar::new(args.files.len() as u64);
    if args.files.len() < 2 {
        progress.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    progress.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut failed = 0;
    for path in &args.files {
        progress.set_message(path.display().to_string());
        match import_one(&args, path, quic.as_ref()) {
            Ok(line) => {
                use std::io::Write;
                let written = progress.suspend(|| writeln!(std::io::stdout(), "{line}"));
                if written.is_err() {
                    // stdout closed (`| head`): the reader has what it wanted; stop quietly.
                    break;
                }
            }
            Err(err) => {
                failed += 1;
                progress.suspend(|| eprintln!("{}: {err:#}", path.display()));
            }
        }
        progress.inc(1);
    }
    progress.finish_and_clear();
    if let Some(quic) = quic {
        quic.close();
    }
    if failed > 0 {
        eprintln!("{failed} of {} file(s) failed", args.files.len());
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// One line per workout the file holds: a multisport file (a triathlon FIT) is one per session.
fn import_one(args: &ImportArgs, path: &Path, quic: Option<&QuicUploader>) -> anyhow::Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut lines = Vec::new();
    for imported in import_bytes(&bytes)?.into_sessions() {
        lines.push(import_workout(args, path, quic, &imported)?);
    }
    Ok(lines.join("\n"))
}

fn import_workout(
    args: &ImportArgs,
    path: &Path,
    quic: Option<&QuicUploader>,
    imported: &Imported,
) -> anyhow::Result<String> {
    let workout_id = imported.workout_id(&args.user);
    let device = imported.device_model.clone().unwrap_or_else(|| "import".into());
    let batches = imported.to_batches(workout_id, &device, &args.user, args.batch_size);
    let mut streamed = None;
    let summary = match (&args.server, quic) {
        (Some(server), _) => {
            upload(server, &args.token, &batches)?;
            None
        }
        (None, Some(quic)) => {
            streamed = Some(quic.stream(&batches, args.live_speed)?);
            None
        }
        (None, None) => trackwire::offline_summary(&batches, imported.profile.as_ref()),
    };
    let report = Report { path, id: workout_id, imported, summary: summary.as_ref(), streamed: streamed.as_ref() };
    Ok(if args.json { report.json_line() } else { report.text_line() })
}

fn upload(server: &str, token: &str, batches: &[trackwire_codec::BatchData]) -> anyhow::Result<()> {
    let agent = crate::http_agent(Duration::from_secs(60));
    let url = format!("{}/v1/ingest", server.trim_end_matches('/'));
    for batch in batches {
        let body = encode_batch(batch);
        for attempt in 0.. {
            let mut response = agent
                .post(&url)
                .header("Authorization", &format!("Bearer {token}"))
                .header("Content-Type", "application/x-flatbuffers")
                .send(&body[..])
                .with_context(|| format!("cannot reach {url}"))?;
            let status = response.status().as_u16();
            if status == 200 {
                break;
            }
            let text = response.body_mut().read_to_string().unwrap_or_default();
            if status == 503 && attempt < 30 {
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
            let message = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v["message"].as_str().map(str::to_owned))
                .unwrap_or(text);
            bail!("the server refused batch {} ({status}): {message}", batch.seq);
        }
    }
    Ok(())
}

/// What one file's import produced, for printing.
struct Report<'a> {
    path: &'a Path,
    id: WorkoutId,
    imported: &'a Imported,
    /// The offline summary (None when uploaded).
    summary: Option<&'a WorkoutSummary>,
    streamed: Option<&'a Streamed>,
}

impl Report<'_> {
    fn text_line(&self) -> String {
        let Report { path, id, imported, summary, streamed } = *self;
        let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
        let mut line = match summary {
            Some(s) => format!(
                "{name}: {} {:.2} km, elapsed {}, timer {}, HR avg {} max {}, {} samples",
                s.sport,
                s.distance_m / 1000.0,
                hms(s.elapsed_s),
                hms(s.timer_s),
                s.heart_rate_avg_bpm.map_or("-".into(), |h| format!("{h:.0}")),
                s.heart_rate_max_bpm.map_or("-".into(), |h| h.to_string()),
                s.samples
            ),
            None => format!("{name}: uploaded as workout {id} ({} samples)", imported.fixes.len()),
        };
        if let Some(d) = imported.device.distance_m {
            line.push_str(&format!(" | device: {:.2} km", d / 1000.0));
        }
        if let Some(s) = streamed {
            line.push_str(&format!(
                " | quic: {} batches acked, ack latency p50 {:.1} ms, p99 {:.1} ms, {} reconnects",
                s.acked, s.p50_ms, s.p99_ms, s.reconnects
            ));
        }
        for warning in &imported.warnings {
            line.push_str(&format!("\n  warning: {warning}"));
        }
        line
    }

    fn json_line(&self) -> String {
        let Report { path, id, imported, summary, streamed } = *self;
        json!({
            "quic": streamed,
            "file": path.display().to_string(),
            "format": format!("{:?}", imported.format).to_ascii_lowercase(),
            "workout_id": id.to_string(),
            "summary": summary,
            "device": imported.device,
            "profile": imported.profile,
            "warnings": imported.warnings,
        })
        .to_string()
    }
}

fn hms(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// A QUIC client shared by every file of one `trackwire import --quic`.
struct QuicUploader {
    runtime: tokio::runtime::Runtime,
    client: Client,
}

/// What streaming one workout over QUIC did.
#[derive(serde::Serialize)]
struct Streamed {
    batches: usize,
    acked: u64,
    reconnects: u64,
    p50_ms: f64,
    p99_ms: f64,
}

impl QuicUploader {
    fn connect(args: &ImportArgs, addr: std::net::SocketAddr) -> anyhow::Result<QuicUploader> {
        let roots = read_certs(&args.ca).with_context(|| {
            format!("--ca {}: the server's certificate (in development <data_dir>/quic-cert.pem)", args.ca.display())
        })?;
        let mut config = ClientConfig::new(addr, roots, args.token.clone());
        config.server_name = args.server_name.clone();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let client =
            runtime.block_on(Client::connect(config)).with_context(|| format!("cannot connect to quic://{addr}"))?;
        Ok(QuicUploader { runtime, client })
    }

    /// Streams a workout's batches; `live_speed` > 0 paces them by their recorded time.
    fn stream(&self, batches: &[trackwire_codec::BatchData], live_speed: f64) -> anyhow::Result<Streamed> {
        self.runtime.block_on(async {
            let reconnects_before = self.client.reconnects();
            let mut stream = self.client.open_workout().await?;
            let started = tokio::time::Instant::now();
            let first_ms = batches.first().map_or(0, |b| b.base_time_ms);
            for batch in batches {
                if live_speed > 0.0 {
                    let offset = (batch.base_time_ms - first_ms).max(0) as f64 / 1000.0 / live_speed;
                    tokio::time::sleep_until(started + Duration::from_secs_f64(offset)).await;
                }
                stream.send(&encode_batch(batch)).await?;
            }
            let stats = stream.finish().await?;
            let mut ms: Vec<f64> = stats.ack_latencies.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
            ms.sort_by(f64::total_cmp);
            let quantile = |q: f64| ms.get(((ms.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(0.0);
            Ok(Streamed {
                batches: batches.len(),
                acked: stats.acked,
                reconnects: self.client.reconnects() - reconnects_before,
                p50_ms: quantile(0.5),
                p99_ms: quantile(0.99),
            })
        })
    }

    fn close(self) {
        self.runtime.block_on(self.client.close());
    }
}
