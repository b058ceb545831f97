//! What every role is given to run: its sockets, already bound, and a stop it ends on. Roles
//! import this, never `crate::serve` (which imports the roles).

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
