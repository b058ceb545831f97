//! `trackwire serve`: runs the configured role. Each role is a composition of the same parts
//! (the log's writer and reader, the data path, the ingest and API fronts) in a module of its own:
//! `all` in `crate::single`, `gateway` and `api` in `crate::front`, `pipeline` workers in
//! `crate::worker`. No role module imports another.

use crate::config::{Config, Role};

/// Runs the configured role until SIGINT/SIGTERM.
pub fn run(config: Config) -> anyhow::Result<()> {
    match config.cluster.role {
        Role::All => crate::single::run(config),
        Role::Gateway | Role::Api => crate::front::run(config),
        Role::Pipeline => crate::worker::run(config),
    }
}
