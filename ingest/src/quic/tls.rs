//! The server's TLS identity: certificate and key from files, or in development a self-signed
//! certificate generated once and kept in the data directory (so a restart keeps the identity
//! that clients pinned).

use std::path::{Path, PathBuf};

use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::QuicError;

/// File names of the development identity inside the data directory.
pub const DEV_CERT_FILE: &str = "quic-cert.pem";
pub const DEV_KEY_FILE: &str = "quic-key.pem";
pub const DEV_FINGERPRINT_FILE: &str = "quic-cert.sha256";

/// A certificate chain and its private key.
#[derive(Debug)]
pub struct ServerIdentity {
    pub cert_chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    /// SHA-256 of the end-entity certificate (DER), lowercase hex: what a device pins.
    pub fingerprint_sha256: String,
    /// Where the PEM certificate is, for clients that trust it as a root.
    pub cert_path: PathBuf,
    /// Where its PEM key is: the server reads both again when they change.
    pub key_path: PathBuf,
}

impl ServerIdentity {
    /// Reads a PEM certificate chain and a PEM private key.
    pub fn from_pem_files(cert_path: &Path, key_path: &Path) -> Result<ServerIdentity, QuicError> {
        let cert_chain = read_certs(cert_path)?;
        let key = crate::tls::pem_key(key_path)
            .map_err(|detail| QuicError::Identity { path: key_path.to_owned(), detail })?;
        let fingerprint_sha256 = fingerprint(&cert_chain[0]);
        Ok(ServerIdentity {
            cert_chain,
            key,
            fingerprint_sha256,
            cert_path: cert_path.to_owned(),
            key_path: key_path.to_owned(),
        })
    }

    /// The development identity in `dir`: reused when present, generated (for `localhost` and
    /// 127.0.0.1) and written otherwise, with its fingerprint beside it.
    pub fn development(dir: &Path) -> Result<ServerIdentity, QuicError> {
        let (cert_path, key_path) = (dir.join(DEV_CERT_FILE), dir.join(DEV_KEY_FILE));
        if !cert_path.exists() || !key_path.exists() {
            let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()];
            let generated = rcgen::generate_simple_self_signed(names)
                .map_err(|e| QuicError::Identity { path: cert_path.clone(), detail: e.to_string() })?;
            write_private(&key_path, generated.signing_key.serialize_pem().as_bytes())?;
            write(&cert_path, generated.cert.pem().as_bytes())?;
        }
        let identity = ServerIdentity::from_pem_files(&cert_path, &key_path)?;
        write(&dir.join(DEV_FINGERPRINT_FILE), format!("{}\n", identity.fingerprint_sha256).as_bytes())?;
        Ok(identity)
    }
}

/// File name of the stateless-reset secret inside the data directory.
pub const RESET_KEY_FILE: &str = "quic-reset.key";

/// The secret behind QUIC stateless resets (RFC 9000 §10.3), kept across restarts.
///
/// A server that restarts forgets its connections; when a device's next packet arrives, the
/// server answers with a stateless reset whose token is an HMAC of the connection id under this
/// key. Because the key survives the restart, the device recognises the reset at once and
/// reconnects, instead of waiting out its idle timeout with unacked batches.
pub struct StatelessResetKey([u8; 32]);

impl StatelessResetKey {
    /// The key in `dir`, created (random, 0600) when missing.
    pub fn load_or_create(dir: &Path) -> Result<StatelessResetKey, QuicError> {
        let path = dir.join(RESET_KEY_FILE);
        let identity_error = |detail: String| QuicError::Identity { path: path.clone(), detail };
        match std::fs::read(&path) {
            Ok(bytes) => {
                let key: [u8; 32] =
                    bytes.try_into().map_err(|_| identity_error("not 32 bytes: delete it to make a new one".into()))?;
                Ok(StatelessResetKey(key))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut key)
                    .map_err(|_| identity_error("no system randomness".into()))?;
                write_private(&path, &key)?;
                Ok(StatelessResetKey(key))
            }
            Err(e) => Err(identity_error(e.to_string())),
        }
    }

    /// The key held in `path`, a secret every replica shares (a Kubernetes Secret): whatever the
    /// file holds (at least 32 bytes, e.g. `openssl rand -base64 48`), the key is its SHA-256.
    /// Replicas whose data directories do not outlive them (a Deployment's `emptyDir`) then still
    /// recognise their predecessors' connections, and any replica a dead one's devices reach
    /// answers them with a stateless reset.
    pub fn from_file(path: &Path) -> Result<StatelessResetKey, QuicError> {
        let identity_error = |detail: String| QuicError::Identity { path: path.to_owned(), detail };
        let secret = std::fs::read(path).map_err(|e| {
            identity_error(format!(
                "cannot read the stateless-reset secret ({e}); create it with `openssl rand -base64 48`"
            ))
        })?;
        if secret.trim_ascii().len() < 32 {
            return Err(identity_error(format!(
                "the stateless-reset secret is {} bytes, fewer than 32: create it with `openssl rand -base64 48`",
                secret.trim_ascii().len()
            )));
        }
        let digest = ring::digest::digest(&ring::digest::SHA256, secret.trim_ascii());
        Ok(StatelessResetKey(digest.as_ref().try_into().expect("SHA-256 is 32 bytes")))
    }

    /// The configured shared secret when there is one, else the one in the data directory.
    pub fn load(shared: Option<&Path>, data_dir: &Path) -> Result<StatelessResetKey, QuicError> {
        match shared {
            Some(path) => StatelessResetKey::from_file(path),
            None => StatelessResetKey::load_or_create(data_dir),
        }
    }

    pub(crate) fn hmac_key(&self) -> ring::hmac::Key {
        ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &self.0)
    }

    /// The key that makes our connection ids recognisable (quinn drops packets whose id it did not
    /// issue, without a reset): derived from the same secret, so a restarted server still
    /// recognises its predecessor's ids and answers them with a stateless reset.
    pub(crate) fn connection_id_key(&self) -> u64 {
        let tag = ring::hmac::sign(&self.hmac_key(), b"trackwire connection id key");
        u64::from_be_bytes(tag.as_ref()[..8].try_into().expect("HMAC-SHA256 is 32 bytes"))
    }
}

/// Every certificate in a PEM file (a client's trusted roots, or a server's chain).
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, QuicError> {
    crate::tls::pem_chain(path).map_err(|detail| QuicError::Identity { path: path.to_owned(), detail })
}

/// SHA-256 of a DER certificate, lowercase hex.
pub fn fingerprint(cert: &CertificateDer<'_>) -> String {
    ring::digest::digest(&ring::digest::SHA256, cert.as_ref()).as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), QuicError> {
    std::fs::write(path, bytes).map_err(|e| QuicError::Identity { path: path.to_owned(), detail: e.to_string() })
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), QuicError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let identity_error = |e: std::io::Error| QuicError::Identity { path: path.to_owned(), detail: e.to_string() };
    let mut file = options.open(path).map_err(identity_error)?;
    file.write_all(bytes).map_err(identity_error)
}
