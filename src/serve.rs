//! `trackwire serve`: runs the configured role. Each role is a composition of the same parts
//! (the log's writer and reader, the data path, the ingest and API fronts) in a module of its own:
//! `all` in `crate::single`, `gateway` and `api` in `crate::front`, `pipeline` workers in
//! `crate::worker`. No role module imports another.
//!
//! A role is given its sockets already bound and a [`Stop`] to end it, so tests run roles
//! in-process on port 0 and stop them as SIGTERM would ([`start`]); [`run`] binds the configured
//! addresses and stops on SIGINT/SIGTERM.

use anyhow::Context;

use crate::config::{RoleSettings, Settings};

/// The sockets a role serves on: HTTP always, QUIC for roles that ingest.
pub struct Listeners {
    pub http: std::net::TcpListener,
    pub quic: Option<std::net::UdpSocket>,
}

impl Listeners {
    /// Binds `http_addr`, and `quic_addr` where the role ingests.
    pub fn bind(settings: &Settings) -> anyhow::Result<Listeners> {
        let config = &settings.config;
        let http = std::net::TcpListener::bind(config.http_addr)
            .with_context(|| format!("binding HTTP listener on {}", config.http_addr))?;
        let quic = match settings.role {
            RoleSettings::All | RoleSettings::Gateway { .. } => Some(
                std::net::UdpSocket::bind(config.quic_addr)
                    .with_context(|| format!("binding QUIC (UDP) on {}", config.quic_addr))?,
            ),
            RoleSettings::Api { .. } | RoleSettings::Pipeline { .. } => None,
        };
        Ok(Listeners { http, quic })
    }
}

/// Tells a running role to stop, as SIGTERM does: it answers what is in flight, commits what it
/// holds and returns.
pub struct StopHandle(tokio::sync::watch::Sender<bool>);

impl StopHandle {
    pub fn stop(&self) {
        self.0.send_replace(true);
    }
}

/// A role's side of a [`StopHandle`], for sync and async code alike.
#[derive(Clone)]
pub struct Stop(tokio::sync::watch::Receiver<bool>);

impl Stop {
    pub fn pair() -> (StopHandle, Stop) {
        let (tx, rx) = tokio::sync::watch::channel(false);
        (StopHandle(tx), Stop(rx))
    }

    pub fn is_stopped(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once stopped (or once the handle is gone).
    pub async fn stopped(self) {
        let mut rx = self.0;
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

/// Runs the configured role on the configured addresses until SIGINT/SIGTERM.
pub fn run(settings: Settings) -> anyhow::Result<()> {
    let listeners = Listeners::bind(&settings)?;
    let (handle, stop) = Stop::pair();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
            match runtime {
                Ok(runtime) => runtime.block_on(shutdown_signal()),
                Err(err) => tracing::error!(%err, "cannot listen for SIGINT/SIGTERM"),
            }
            handle.stop();
        })
        .context("spawning the signal thread")?;
    start(settings, listeners, stop)
}

/// Runs the role `settings` names on `listeners` until `stop`.
pub fn start(settings: Settings, listeners: Listeners, stop: Stop) -> anyhow::Result<()> {
    let Settings { config, role } = settings;
    match role {
        RoleSettings::All => crate::single::run(&config, listeners, stop),
        RoleSettings::Gateway { raw } => crate::front::run(&config, crate::front::Front::Gateway, raw, listeners, stop),
        RoleSettings::Api { raw, .. } => crate::front::run(&config, crate::front::Front::Api, raw, listeners, stop),
        RoleSettings::Pipeline { raw, store_url, share } => {
            crate::worker::run(&config, raw, &store_url, share, listeners, stop)
        }
    }
}

async fn shutdown_signal() {
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
