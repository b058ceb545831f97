//! HTTPS on the HTTP listener: requests are served over TLS, and a certificate renewed in place
//! (as cert-manager does) is presented to new connections without a restart, while a renewal
//! that is still half written keeps the previous certificate in service.
mod common;

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use trackwire_api::Surfaces;
use trackwire_api::tls::{ReloadingCertificate, TlsFiles};

/// A self-signed certificate for localhost: (certificate PEM, key PEM, certificate DER).
fn certificate() -> (String, String, CertificateDer<'static>) {
    let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    (generated.cert.pem(), generated.signing_key.serialize_pem(), generated.cert.der().clone())
}

/// GETs `/healthcheck` over TLS trusting `roots`; the certificate the server presented and the
/// response's status line.
async fn get_healthcheck(
    addr: std::net::SocketAddr,
    roots: &[CertificateDer<'static>],
) -> (CertificateDer<'static>, String) {
    let mut store = rustls::RootCertStore::empty();
    for root in roots {
        store.add(root.clone()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(store)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut tls = connector.connect(ServerName::try_from("localhost").unwrap(), tcp).await.unwrap();
    let presented = tls.get_ref().1.peer_certificates().unwrap()[0].clone().into_owned();
    tls.write_all(b"GET /healthcheck?probe=liveness HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = Vec::new();
    let _ = tls.read_to_end(&mut response).await;
    let status = String::from_utf8_lossy(&response).lines().next().unwrap_or_default().to_owned();
    (presented, status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_is_served_and_a_renewed_certificate_is_picked_up_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    let (first_pem, first_key, first_der) = certificate();
    std::fs::write(&cert_path, &first_pem).unwrap();
    std::fs::write(&key_path, &first_key).unwrap();
    let files =
        TlsFiles { cert_path: cert_path.clone(), key_path: key_path.clone(), reload_every: Duration::from_millis(50) };
    let certificate_in_use = Arc::new(ReloadingCertificate::load(files).unwrap());

    let state = common::state(&dir.path().join("state"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server =
        tokio::spawn(trackwire_api::serve_surfaces(listener, Surfaces::All(state), Some(certificate_in_use), async {
            let _ = stopped.await;
        }));

    let (second_pem, second_key, second_der) = certificate();
    let roots = [first_der.clone(), second_der.clone()];
    let (presented, status) = get_healthcheck(addr, &roots).await;
    assert_eq!(presented, first_der);
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");

    // Half a renewal: a new certificate beside the old key does not load; the old pair serves on.
    std::fs::write(&cert_path, &second_pem).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(get_healthcheck(addr, &roots).await.0, first_der, "a mismatched pair must not be served");

    std::fs::write(&key_path, &second_key).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (presented, status) = get_healthcheck(addr, &roots).await;
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        if presented == second_der {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the renewed certificate was never presented");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}
