//! The fronts every serving role shares: HTTP (the routes of the role's surface) and, for roles
//! that ingest, QUIC, stopped together by SIGINT/SIGTERM.

use anyhow::Context;
use trackwire_api::Surfaces;
use trackwire_ingest::quic::{QuicServer, ServerIdentity, StatelessResetKey};

use crate::config::{Config, Role};

/// Serves HTTP (the routes of `surfaces`) and, for roles that ingest, QUIC until SIGINT/SIGTERM;
/// returns once in-flight requests and streams are answered and every handle on the log has been
/// dropped.
pub async fn serve_fronts(config: &Config, surfaces: Surfaces, role: Role) -> anyhow::Result<()> {
    let data = &config.data_dir;
    let listener = tokio::net::TcpListener::bind(config.http_addr)
        .await
        .with_context(|| format!("binding HTTP listener on {}", config.http_addr))?;
    let addr = listener.local_addr()?;
    let quic = if matches!(surfaces, Surfaces::Api(_)) { None } else { Some(start_quic(config)?) };
    match &quic {
        Some(quic) => {
            let quic_addr = quic.local_addr()?;
            tracing::info!(http = %addr, quic = %quic_addr, data_dir = %data.display(), role = role.name(), "trackwire listening on http://{addr} (ingest: POST /v1/ingest, API: /api/v1) and quic://{quic_addr} (ALPN trackwire/1), data in {}", data.display());
        }
        None => tracing::info!(http = %addr, role = role.name(), "trackwire API listening on http://{addr}/api/v1"),
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
    // One signal stops both fronts.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };
    let signal = tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let ingestor = surfaces.ingest().ingestor.clone();
    let quic_task = quic.map(|quic| tokio::spawn(quic.run(ingestor, stopped())));
    let http = trackwire_api::serve_surfaces(listener, surfaces, stopped()).await.context("serving HTTP");
    signal.abort();
    if let Some(quic_task) = quic_task {
        quic_task.await.context("the QUIC server panicked")?;
    }
    http?;
    Ok(())
}

/// Binds the QUIC endpoint with the configured (or development) TLS identity.
fn start_quic(config: &Config) -> anyhow::Result<QuicServer> {
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
    let socket = std::net::UdpSocket::bind(config.quic_addr)
        .with_context(|| format!("binding QUIC (UDP) on {}", config.quic_addr))?;
    let reset_key = StatelessResetKey::load_or_create(&config.data_dir)?;
    Ok(QuicServer::new(socket, identity, &reset_key, config.quic.to_quic_config())?)
}

pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(err) => {
                tracing::warn!(%err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
