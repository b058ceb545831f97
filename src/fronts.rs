//! The fronts every serving role shares: HTTP (the routes of the role's surface) and, for roles
//! that ingest, QUIC, stopped together.

use anyhow::Context;
use trackwire_api::Surfaces;
use trackwire_ingest::quic::{QuicServer, ServerIdentity, StatelessResetKey};

use crate::config::{Config, Role};
use crate::launch::{Listeners, Stop};

/// Serves HTTP (the routes of `surfaces`) and, where given a QUIC socket, QUIC until `stop`;
/// returns once in-flight requests and streams are answered and every handle on the log has been
/// dropped.
pub async fn serve_fronts(
    config: &Config,
    surfaces: Surfaces,
    role: Role,
    listeners: Listeners,
    stop: Stop,
) -> anyhow::Result<()> {
    let data = &config.data_dir;
    listeners.http.set_nonblocking(true).context("setting up the HTTP listener")?;
    let listener = tokio::net::TcpListener::from_std(listeners.http).context("setting up the HTTP listener")?;
    let addr = listener.local_addr()?;
    let tls = match config.tls.files() {
        Some(files) => Some(std::sync::Arc::new(
            trackwire_api::tls::ReloadingCertificate::load(files)
                .context("loading the HTTPS certificate (tls.cert_path, tls.key_path)")?,
        )),
        None => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let quic = listeners.quic.map(|socket| start_quic(config, socket)).transpose()?;
    match &quic {
        Some(quic) => {
            let quic_addr = quic.local_addr()?;
            tracing::info!(http = %addr, quic = %quic_addr, data_dir = %data.display(), role = role.name(), "trackwire listening on {scheme}://{addr} (ingest: POST /v1/ingest, API: /api/v1) and quic://{quic_addr} (ALPN trackwire/1), data in {}", data.display());
        }
        None => tracing::info!(http = %addr, role = role.name(), "trackwire API listening on {scheme}://{addr}/api/v1"),
    }
    if config.uses_dev_auth() {
        tracing::warn!(
            "API tokens use a development HS256 secret in {}: mint one with `trackwire token --user ID`; configure auth.jwks_url (your OIDC provider) before exposing this server",
            data.join("dev-jwt.secret").display()
        );
    }
    if config.uses_dev_token() {
        tracing::warn!(
            "accepting the development token 'dev-token' for any device: configure ingest.tokens before exposing this server"
        );
    }
    // One stop ends both fronts.
    let ingestor = surfaces.ingest().ingestor.clone();
    let quic_task = quic.map(|quic| tokio::spawn(quic.run(ingestor, stop.clone().stopped())));
    let http = trackwire_api::serve_surfaces(listener, surfaces, tls, stop.stopped()).await.context("serving HTTP");
    if let Some(quic_task) = quic_task {
        quic_task.await.context("the QUIC server panicked")?;
    }
    http?;
    Ok(())
}

/// The QUIC endpoint on `socket`, with the configured (or development) TLS identity.
fn start_quic(config: &Config, socket: std::net::UdpSocket) -> anyhow::Result<QuicServer> {
    let identity = match (&config.quic.cert_path, &config.quic.key_path) {
        (Some(cert), Some(key)) => ServerIdentity::from_pem_files(cert, key)?,
        _ => {
            let identity = ServerIdentity::development(&config.data_dir)?;
            tracing::warn!(
                fingerprint_sha256 = %identity.fingerprint_sha256,
                cert = %identity.cert_path.display(),
                "QUIC uses a development self-signed certificate for localhost: configure quic.cert_path/key_path before exposing this server"
            );
            identity
        }
    };
    let reset_key = StatelessResetKey::load(config.quic.reset_key_path.as_deref(), &config.data_dir)?;
    Ok(QuicServer::new(socket, identity, &reset_key, config.quic.clone())?)
}
