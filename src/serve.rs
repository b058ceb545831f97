//! `trackwire serve`: runs the configured role. Each role is a composition of the same parts
//! (the log's writer and reader, the data path, the ingest and API fronts) in a module of its own:
//! `all` in `crate::single`, `gateway` and `api` in `crate::front`, `pipeline` workers in
//! `crate::worker`. No role module imports another.
//!
//! A role is given its sockets already bound and a [`Stop`] to end it (`crate::launch`), so tests
//! run roles in-process on port 0 and stop them as SIGTERM would ([`start`]); [`run`] binds the
//! configured addresses and stops on SIGINT/SIGTERM.

use anyhow::Context;

use crate::config::{RoleSettings, Settings};
use crate::launch::{Listeners, Stop};

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
    crate::topics::provision_at_start(&config, &role)?;
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
