//! `trackwire`: the telemetry ingestion engine's binary. See README.md for a tour.

mod import;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use trackwire::{config, serve};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "trackwire", version, about = "Telemetry ingestion engine for wearables")]
struct Cli {
    /// TOML configuration file (see `trackwire print-config` for every field and its default).
    #[arg(long, global = true, env = "TRACKWIRE_CONFIG")]
    config: Option<PathBuf>,
    /// Log lines as text, or as JSON objects with timestamp, level, service, trace_id, span_id
    /// and correlation_id (see docs/observability.md); RUST_LOG filters them.
    #[arg(long, global = true, env = "TRACKWIRE_LOG_FORMAT", value_enum, default_value_t = trackwire::logging::LogFormat::Text)]
    log_format: trackwire::logging::LogFormat,
    /// Export spans by OTLP/HTTP (JSON) to this URL, e.g. http://otel-collector:4318/v1/traces;
    /// unset = no export.
    #[arg(long, global = true, env = "TRACKWIRE_OTLP_ENDPOINT")]
    otlp_endpoint: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run ingest, pipeline, sinks and API on embedded defaults (no external services), or one
    /// role of a scaled-out deployment (--role).
    Serve(config::ServeFlags),
    /// Import GPX/TCX/FIT files: print each workout's summary, or upload with --server.
    Import(import::ImportArgs),
    /// Compare every recorded trace in DIR with its device and published values (Markdown).
    Conformance {
        /// Folder of GPX/TCX/FIT files (the project's tests use ../shared/traces).
        dir: PathBuf,
    },
    /// Exit 0 when the server at URL answers its /healthcheck with 200, else 1 (for a container's
    /// HEALTHCHECK: the runtime image has no shell and no curl).
    Healthcheck {
        /// The server's health URL.
        #[arg(long, default_value = "http://127.0.0.1:8080/healthcheck")]
        url: String,
    },
    /// Print the effective configuration as TOML, every field with its doc line (defaults merged
    /// with file, env and flags; unset optional fields commented out).
    PrintConfig(config::ServeFlags),
    /// Mint a bearer JWT for the API with the configured (or development) HS256 secret.
    Token {
        /// The user id (the token's `sub`).
        #[arg(long)]
        user: String,
        /// Grant the admin scope (erasure of any user, retention runs).
        #[arg(long)]
        admin: bool,
        /// Hours until it expires.
        #[arg(long, default_value_t = 24)]
        hours: u64,
        #[command(flatten)]
        data_dir: config::DataDirFlag,
    },
}

/// An HTTP client that returns every status as a response (callers read error bodies) and gives
/// up after `timeout`.
fn http_agent(timeout: std::time::Duration) -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(timeout)).build().into()
}

fn main() -> anyhow::Result<std::process::ExitCode> {
    let cli = Cli::parse();
    let _otlp = trackwire::logging::init(cli.log_format, "trackwire", cli.otlp_endpoint.as_deref())?;
    match cli.command {
        Command::Serve(flags) => {
            serve::run(config::Config::load(cli.config.as_deref(), &flags)?)?;
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Import(args) => import::run(args),
        Command::Healthcheck { url } => match http_agent(std::time::Duration::from_secs(5)).get(&url).call() {
            Ok(response) if response.status() == 200 => Ok(std::process::ExitCode::SUCCESS),
            Ok(response) => {
                eprintln!("{url}: {} (the server is still replaying its log)", response.status());
                Ok(std::process::ExitCode::FAILURE)
            }
            Err(e) => {
                eprintln!("{url}: {e} (is the server running and listening there?)");
                Ok(std::process::ExitCode::FAILURE)
            }
        },
        Command::Conformance { dir } => {
            print!("{}", trackwire::conformance::markdown(&trackwire::conformance::compare_dir(&dir)?));
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Token { user, admin, hours, data_dir } => {
            let config = config::Config::load(cli.config.as_deref(), &data_dir.into())?.config;
            let auth = config.minting_auth()?;
            let Some(secret) = auth.hs256_secret.as_deref() else {
                anyhow::bail!("auth uses a JWKS: tokens come from the identity provider, not from trackwire");
            };
            let exp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs() + hours * 3600;
            let claims = trackwire_api::auth::Claims {
                sub: user,
                exp,
                iss: auth.issuer.clone(),
                aud: auth.audience.clone().map(serde_json::Value::String),
                scope: admin.then(|| auth.admin_scope().to_owned()),
                scp: None,
                realm_access: None,
            };
            println!("{}", trackwire_api::auth::mint_hs256(secret, &claims));
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::PrintConfig(flags) => {
            let settings = config::Config::load(cli.config.as_deref(), &flags)?;
            print!("{}", config::documented::render(&settings.config)?);
            Ok(std::process::ExitCode::SUCCESS)
        }
    }
}
