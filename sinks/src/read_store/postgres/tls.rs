//! TLS to PostgreSQL (rustls, no OpenSSL). Managed databases (RDS, Cloud SQL, Azure) require or
//! offer it; their certificates chain to the provider's own CA, so `store.ca_file` names its PEM
//! bundle (for RDS: `global-bundle.pem`). Without one, the Mozilla roots (webpki-roots) verify
//! the server.
//!
//! Which connections use it: the URL's own `sslmode` wins (`disable`, `prefer`, `require`); a
//! CA file without an `sslmode` means `require`; neither means no TLS (the embedded test server
//! and a database on the pod's network).

use std::path::Path;
use std::sync::Arc;

use postgres::config::SslMode;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::SinkError;

/// The connector every PostgreSQL connection of the process uses.
pub type Tls = MakeRustlsConnect;

/// Settles `config`'s `sslmode` (see the module doc) and builds the connector.
pub fn connector(config: &mut postgres::Config, url: &str, ca_file: Option<&Path>) -> Result<Tls, SinkError> {
    if !url.contains("sslmode=") {
        config.ssl_mode(if ca_file.is_some() { SslMode::Require } else { SslMode::Disable });
    }
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let unreadable = |e: &dyn std::fmt::Display| {
                SinkError::Config(format!(
                    "store.ca_file {}: {e}; give a PEM file of the CA certificates that sign the database's certificate",
                    path.display()
                ))
            };
            let certs = CertificateDer::pem_file_iter(path).map_err(|e| unreadable(&e))?;
            for cert in certs {
                roots.add(cert.map_err(|e| unreadable(&e))?).map_err(|e| unreadable(&e))?;
            }
            if roots.is_empty() {
                return Err(unreadable(&"no certificate in it"));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| SinkError::Config(format!("TLS for PostgreSQL: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(tls))
}
