//! The stores every role opens the same way from the validated config: the read store and the
//! API's accounts, both in the PostgreSQL database `store.url` names, or embedded in the data
//! directory.

use std::sync::Arc;

use anyhow::Context;
use trackwire_api::accounts::{self, Accounts};
use trackwire_sinks::read_store::{self, ReadStore};

use crate::config::Config;

/// The read store `store.url` names, or the embedded one in the data directory.
pub fn open_read_store(config: &Config) -> anyhow::Result<Arc<dyn ReadStore>> {
    let embedded = config.data_dir.join("store").join("read.redb");
    read_store::open(config.store.url.as_deref(), config.store.ca_file.as_deref(), &embedded)
        .context("opening the read store")
}

/// The API's accounts, beside the read store.
pub fn open_accounts(config: &Config) -> anyhow::Result<Arc<dyn Accounts>> {
    let embedded = config.data_dir.join("store").join("accounts.redb");
    accounts::open(config.store.url.as_deref(), config.store.ca_file.as_deref(), &embedded)
        .context("opening the account store")
}
