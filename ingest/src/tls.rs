//! The certificate the HTTP and QUIC listeners present, read from PEM files and read again when
//! they change (cert-manager renews them in place), without a restart or a dropped connection.
//! The files are looked at from the handshakes themselves, at most once per interval: no task
//! of its own, and a listener nobody connects to has nothing to renew.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// Where the certificate chain and its key are (PEM), and how often to look for changes.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
    pub reload_every: Duration,
}

/// Why a certificate could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("TLS certificate {path}: {detail}; give the certificate chain and its private key as PEM files")]
    Files { path: PathBuf, detail: String },
}

/// The current certificate, for every handshake; replaced by [`ReloadingCertificate::reload`]
/// when the files changed and still hold a valid pair (a half-written renewal keeps the old one).
#[derive(Debug)]
pub struct ReloadingCertificate {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
    /// The files' modification times when `current` was read.
    read_at: Mutex<(Option<SystemTime>, Option<SystemTime>)>,
    /// When the files were last looked at.
    looked_at: Mutex<Instant>,
}

impl ReloadingCertificate {
    pub fn load(files: TlsFiles) -> Result<ReloadingCertificate, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let read_at = modified(&files);
        let current = read(&files, &provider)?;
        Ok(ReloadingCertificate {
            files,
            provider,
            current: RwLock::new(current),
            read_at: Mutex::new(read_at),
            looked_at: Mutex::new(Instant::now()),
        })
    }

    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    pub fn provider(&self) -> Arc<CryptoProvider> {
        self.provider.clone()
    }

    /// Reads the files again if either changed since they were last read; true when the
    /// certificate was replaced.
    pub fn reload(&self) -> bool {
        let now = modified(&self.files);
        let mut read_at = self.read_at.lock().unwrap_or_else(|p| p.into_inner());
        if *read_at == now {
            return false;
        }
        match read(&self.files, &self.provider) {
            Ok(certificate) => {
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = certificate;
                *read_at = now;
                tracing::info!(cert = %self.files.cert_path.display(), "TLS certificate reloaded");
                true
            }
            Err(error) => {
                // Perhaps the renewal is half written: keep serving the old pair, try again later.
                tracing::warn!(%error, "TLS certificate files changed but do not load; still serving the previous one");
                false
            }
        }
    }
}

impl ResolvesServerCert for ReloadingCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let due = {
            let mut looked_at = self.looked_at.lock().unwrap_or_else(|p| p.into_inner());
            let due = looked_at.elapsed() >= self.files.reload_every;
            if due {
                *looked_at = Instant::now();
            }
            due
        };
        if due {
            self.reload();
        }
        Some(self.current.read().unwrap_or_else(|p| p.into_inner()).clone())
    }
}

fn modified(files: &TlsFiles) -> (Option<SystemTime>, Option<SystemTime>) {
    let at = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    (at(&files.cert_path), at(&files.key_path))
}

fn read(files: &TlsFiles, provider: &CryptoProvider) -> Result<Arc<CertifiedKey>, TlsError> {
    let error = |path: &Path, detail: String| TlsError::Files { path: path.to_owned(), detail };
    let chain = pem_chain(&files.cert_path).map_err(|detail| error(&files.cert_path, detail))?;
    let key = pem_key(&files.key_path).map_err(|detail| error(&files.key_path, detail))?;
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| error(&files.key_path, format!("unusable private key ({e})")))?;
    let certified = CertifiedKey::new(chain, signing_key);
    certified.keys_match().map_err(|e| error(&files.key_path, format!("the key is not the certificate's ({e})")))?;
    Ok(Arc::new(certified))
}

/// Every certificate in a PEM file, or what is wrong with the file.
pub(crate) fn pem_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let chain = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read PEM ({e})"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("bad PEM certificate ({e})"))?;
    if chain.is_empty() {
        return Err("no certificate in the file".into());
    }
    Ok(chain)
}

/// The private key in a PEM file, or what is wrong with the file.
pub(crate) fn pem_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| format!("no PEM private key ({e})"))
}
